//! Both engines' EVE records in one canonical form per event type: a key that names the same
//! event in either engine (the flow's endpoints, whatever their order, and what identifies the
//! event within the flow), and the fields an analyst reads, as text. Suricata 7's DNS
//! "version 2" records are mapped onto version 3's request/response shape here.

use std::{collections::BTreeMap, net::IpAddr};

use serde_json::Value;

/// One event in canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canon {
    /// `flow`, `dns`, `http`, `tls`, `ssh`, `anomaly`, `alert`.
    pub kind: &'static str,
    /// What names the event in both engines.
    pub key: String,
    /// Key fields, by name.
    pub fields: BTreeMap<String, String>,
    /// When it happened (for pairing records with equal keys in order).
    pub ts: String,
}

/// An address as text in one spelling (IPv6 compressed), whichever the engine wrote.
fn ip(v: &Value) -> String {
    let s = v.as_str().unwrap_or_default();
    s.parse::<IpAddr>()
        .map_or_else(|_| s.to_string(), |a| a.to_string())
}

fn endpoint(r: &Value, side: &str) -> String {
    let addr = ip(&r[format!("{side}_ip")]);
    match r[format!("{side}_port")].as_u64() {
        Some(p) => format!("{addr}:{p}"),
        None => addr,
    }
}

/// The flow's endpoints in a fixed order, and which of them sent the record's first side.
fn endpoints(r: &Value) -> (String, String, String) {
    let (s, d) = (endpoint(r, "src"), endpoint(r, "dest"));
    let proto = r["proto"].as_str().unwrap_or_default().to_string();
    let vlan = r["vlan"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    let (a, b) = if s <= d {
        (s.clone(), d)
    } else {
        (d, s.clone())
    };
    (format!("{proto} {a} {b} vlan{vlan}"), a, s)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn put(fields: &mut BTreeMap<String, String>, name: &str, v: &Value) {
    if let Some(t) = text(v) {
        fields.insert(name.to_string(), t);
    }
}

fn ts(r: &Value) -> String {
    r["timestamp"].as_str().unwrap_or_default().to_string()
}

fn flow(r: &Value) -> Option<Canon> {
    let (pair, a, src) = endpoints(r);
    let f = &r["flow"];
    let mut fields = BTreeMap::new();
    // Per endpoint rather than per direction, so a flow the engines orient differently still
    // compares its counts; the orientation is a field of its own.
    let (from_a, from_b) = if src == a {
        ("toserver", "toclient")
    } else {
        ("toclient", "toserver")
    };
    put(&mut fields, "pkts_a", &f[format!("pkts_{from_a}")]);
    put(&mut fields, "pkts_b", &f[format!("pkts_{from_b}")]);
    put(&mut fields, "bytes_a", &f[format!("bytes_{from_a}")]);
    put(&mut fields, "bytes_b", &f[format!("bytes_{from_b}")]);
    fields.insert("client".into(), src);
    put(&mut fields, "state", &f["state"]);
    // The protocols Precinct parses, by name; any other (and "failed", and none) is "-": a
    // protocol one engine has a parser for and the other not is not a disagreement.
    let app = match r["app_proto"].as_str() {
        Some(a @ ("http" | "tls" | "dns" | "ssh" | "imap" | "smtp" | "ftp")) => a,
        Some("http1") => "http",
        _ => "-",
    };
    fields.insert("app_proto".into(), app.to_string());
    put(&mut fields, "tcp_flags", &r["tcp"]["tcp_flags"]);
    put(&mut fields, "community_id", &r["community_id"]);
    put(&mut fields, "icmp_type", &r["icmp_type"]);
    let start = f["start"].as_str().unwrap_or_default();
    Some(Canon {
        kind: "flow",
        key: format!("{pair} {start}"),
        fields,
        ts: start.to_string(),
    })
}

fn answers(list: &Value) -> String {
    let mut v: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{}/{}/{}",
                a["rrname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                a["rrtype"].as_str().unwrap_or_default(),
                text(&a["rdata"]).unwrap_or_default()
            )
        })
        .collect();
    v.sort();
    v.join(" ")
}

/// DNS, v2 (Suricata 7) or v3 (Suricata 8, Precinct): one canonical record per question of a
/// request, one per response.
fn dns(r: &Value) -> Vec<Canon> {
    let (pair, _, _) = endpoints(r);
    let d = &r["dns"];
    let id = d["id"].as_u64().unwrap_or_default();
    let kind = match d["type"].as_str() {
        Some("query" | "request") => "request",
        Some("answer" | "response") => "response",
        _ => return Vec::new(),
    };
    // (rrname, rrtype) of the questions: v3 lists them, v2 has the record's own.
    let questions: Vec<(String, String)> = match d["queries"].as_array() {
        Some(q) => q
            .iter()
            .map(|q| {
                (
                    q["rrname"]
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_lowercase(),
                    q["rrtype"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        None => vec![(
            d["rrname"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            d["rrtype"].as_str().unwrap_or_default().to_string(),
        )],
    };
    let one = |(name, rrtype): &(String, String)| {
        let mut fields = BTreeMap::new();
        fields.insert("rrtype".into(), rrtype.clone());
        if kind == "response" {
            put(&mut fields, "rcode", &d["rcode"]);
            put(&mut fields, "flags", &d["flags"]);
            fields.insert("answers".into(), answers(&d["answers"]));
            fields.insert("authorities".into(), answers(&d["authorities"]));
        }
        Canon {
            kind: "dns",
            key: format!("{pair} id{id} {kind} {name}"),
            fields,
            ts: ts(r),
        }
    };
    if kind == "request" {
        questions.iter().map(one).collect()
    } else {
        questions.first().map(one).into_iter().collect()
    }
}

fn http(r: &Value) -> Option<Canon> {
    let (pair, _, _) = endpoints(r);
    let h = &r["http"];
    let mut fields = BTreeMap::new();
    for f in [
        "status",
        "length",
        "http_user_agent",
        "http_content_type",
        "protocol",
        "http_refer",
        "redirect",
    ] {
        put(&mut fields, f, &h[f]);
    }
    Some(Canon {
        kind: "http",
        key: format!(
            "{pair} {} {} {}",
            h["http_method"].as_str().unwrap_or("-"),
            h["hostname"].as_str().unwrap_or("-").to_ascii_lowercase(),
            h["url"].as_str().unwrap_or("-")
        ),
        fields,
        ts: ts(r),
    })
}

fn tls(r: &Value) -> Option<Canon> {
    let (pair, _, _) = endpoints(r);
    let t = &r["tls"];
    let mut fields = BTreeMap::new();
    for f in [
        "sni",
        "version",
        "subject",
        "issuerdn",
        "serial",
        "fingerprint",
        "notbefore",
        "notafter",
    ] {
        put(&mut fields, f, &t[f]);
    }
    put(&mut fields, "ja3", &t["ja3"]["hash"]);
    put(&mut fields, "ja3s", &t["ja3s"]["hash"]);
    put(&mut fields, "ja4", &t["ja4"]);
    Some(Canon {
        kind: "tls",
        key: pair,
        fields,
        ts: ts(r),
    })
}

fn ssh(r: &Value) -> Option<Canon> {
    let (pair, _, _) = endpoints(r);
    let s = &r["ssh"];
    let mut fields = BTreeMap::new();
    for side in ["client", "server"] {
        put(
            &mut fields,
            &format!("{side}.proto_version"),
            &s[side]["proto_version"],
        );
        put(
            &mut fields,
            &format!("{side}.software_version"),
            &s[side]["software_version"],
        );
        put(
            &mut fields,
            &format!("{side}.hassh"),
            &s[side]["hassh"]["hash"],
        );
    }
    Some(Canon {
        kind: "ssh",
        key: pair,
        fields,
        ts: ts(r),
    })
}

fn anomaly(r: &Value) -> Option<Canon> {
    let pair = if r["src_ip"].is_null() {
        "-".to_string()
    } else {
        endpoints(r).0
    };
    let a = &r["anomaly"];
    Some(Canon {
        kind: "anomaly",
        key: format!(
            "{pair} {} {}",
            a["type"].as_str().unwrap_or_default(),
            a["event"].as_str().unwrap_or_default().to_ascii_lowercase()
        ),
        fields: BTreeMap::new(),
        ts: ts(r),
    })
}

fn alert(r: &Value) -> Option<Canon> {
    let (pair, _, _) = endpoints(r);
    Some(Canon {
        kind: "alert",
        key: format!("sid{} {pair}", r["alert"]["signature_id"]),
        fields: BTreeMap::new(),
        ts: ts(r),
    })
}

/// The canonical records of one EVE record (none for types not compared).
pub fn canon(r: &Value) -> Vec<Canon> {
    match r["event_type"].as_str() {
        Some("flow") => flow(r).into_iter().collect(),
        Some("dns") => dns(r),
        Some("http") => http(r).into_iter().collect(),
        Some("tls") => tls(r).into_iter().collect(),
        Some("ssh") => ssh(r).into_iter().collect(),
        Some("anomaly") => anomaly(r).into_iter().collect(),
        Some("alert") => alert(r).into_iter().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dns_v2_and_v3_meet_in_one_form() {
        let head = json!({"src_ip": "10.0.0.1", "src_port": 5000, "dest_ip": "10.0.0.2",
            "dest_port": 53, "proto": "UDP", "timestamp": "t"});
        let with = |dns: Value, swap: bool| {
            let mut r = head.clone();
            if swap {
                r["src_ip"] = json!("10.0.0.2");
                r["src_port"] = json!(53);
                r["dest_ip"] = json!("10.0.0.1");
                r["dest_port"] = json!(5000);
            }
            r["event_type"] = json!("dns");
            r["dns"] = dns;
            canon(&r)
        };
        let v2q = with(
            json!({"version": 2, "type": "query", "id": 7, "rrname": "A.Example", "rrtype": "A"}),
            false,
        );
        let v3q = with(
            json!({"version": 3, "type": "request", "id": 7, "queries": [{"rrname": "a.example", "rrtype": "A"}]}),
            false,
        );
        assert_eq!(v2q, v3q);
        let ans = json!([{"rrname": "a.example", "rrtype": "A", "ttl": 5, "rdata": "192.0.2.1"}]);
        let v2a = with(
            json!({"version": 2, "type": "answer", "id": 7, "rrname": "a.example", "rrtype": "A", "rcode": "NOERROR", "flags": "8180", "answers": ans}),
            true,
        );
        let v3a = with(
            json!({"version": 3, "type": "response", "id": 7, "rcode": "NOERROR", "flags": "8180", "queries": [{"rrname": "a.example", "rrtype": "A"}], "answers": ans}),
            true,
        );
        assert_eq!(v2a, v3a);
        assert_eq!(v2a[0].fields["answers"], "a.example/A/192.0.2.1");
    }

    #[test]
    fn flows_compare_per_endpoint_and_ipv6_in_one_spelling() {
        let r = |src: (&str, u16), dst: (&str, u16), pkts: (u64, u64)| {
            canon(
                &json!({"event_type": "flow", "proto": "TCP", "src_ip": src.0, "src_port": src.1,
                "dest_ip": dst.0, "dest_port": dst.1, "flow": {"pkts_toserver": pkts.0,
                "pkts_toclient": pkts.1, "start": "s"}}),
            )
        };
        let a = r(
            ("2001:0db8:0000:0000:0000:0000:0000:0001", 1),
            ("2001:db8::2", 2),
            (3, 4),
        );
        let b = r(("2001:db8::1", 1), ("2001:db8::2", 2), (3, 4));
        assert_eq!(a, b);
        // The same flow oriented the other way: same key and counts, another client.
        let c = r(("2001:db8::2", 2), ("2001:db8::1", 1), (4, 3));
        assert_eq!(c[0].key, b[0].key);
        assert_eq!(c[0].fields["pkts_a"], b[0].fields["pkts_a"]);
        assert_ne!(c[0].fields["client"], b[0].fields["client"]);
    }
}
