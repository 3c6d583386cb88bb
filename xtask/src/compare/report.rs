//! Matching both engines' canonical records and what the comparison says: per event type the
//! records matched and those only one engine wrote, per field how often matched records
//! differ, with examples.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{by_kind, canon::Canon};

/// How matched records differ on one field.
#[derive(Debug, Default, Clone)]
pub struct FieldReport {
    /// Matched pairs where either engine has the field.
    pub compared: usize,
    /// Pairs where the values differ (or one engine lacks the field).
    pub differ: usize,
    /// (key, Suricata's value, Precinct's value).
    pub examples: Vec<(String, String, String)>,
}

/// One event type.
#[derive(Debug, Default, Clone)]
pub struct TypeReport {
    /// Records Suricata wrote.
    pub suricata: usize,
    /// Records Precinct wrote.
    pub precinct: usize,
    /// Pairs with the same key.
    pub matched: usize,
    /// Examples of keys only Suricata has.
    pub only_suricata: Vec<String>,
    /// Examples of keys only Precinct has.
    pub only_precinct: Vec<String>,
    /// By field.
    pub fields: BTreeMap<String, FieldReport>,
    /// Matched pairs that agree on every field.
    pub agree: usize,
}

impl TypeReport {
    /// Share of Suricata's records that Precinct matched, 0–1 (1 when Suricata has none).
    pub fn coverage(&self) -> f64 {
        if self.suricata == 0 {
            1.0
        } else {
            self.matched as f64 / self.suricata as f64
        }
    }

    /// Share of matched pairs that agree on every field, 0–1.
    pub fn agreement(&self) -> f64 {
        if self.matched == 0 {
            1.0
        } else {
            self.agree as f64 / self.matched as f64
        }
    }
}

/// The whole comparison.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Captures compared.
    pub captures: usize,
    /// By event type.
    pub types: BTreeMap<&'static str, TypeReport>,
    /// Alerts per sid: (Suricata, Precinct).
    pub sids: BTreeMap<String, (usize, usize)>,
    /// Captures an engine failed on.
    pub problems: Vec<String>,
    /// Records per capture and event type: (Suricata, Precinct). Two reports of the same
    /// captures can be told apart capture by capture.
    pub by_capture: BTreeMap<String, BTreeMap<&'static str, (usize, usize)>>,
}

const KINDS: [&str; 7] = ["flow", "dns", "http", "tls", "ssh", "anomaly", "alert"];

impl Report {
    /// Matches `suricata` and `precinct` records key by key, in time order within a key.
    pub fn build(
        captures: usize,
        suricata: Vec<Canon>,
        precinct: Vec<Canon>,
        problems: Vec<String>,
        examples: usize,
    ) -> Report {
        let (s, p) = (by_kind(suricata), by_kind(precinct));
        let mut report = Report {
            captures,
            problems,
            ..Report::default()
        };
        let empty = BTreeMap::new();
        for kind in KINDS {
            let (sk, pk) = (s.get(kind).unwrap_or(&empty), p.get(kind).unwrap_or(&empty));
            for (side, recs) in [(0, sk), (1, pk)] {
                for (key, list) in recs {
                    let capture = key.split(" | ").next().unwrap_or_default();
                    let n = report
                        .by_capture
                        .entry(capture.to_string())
                        .or_default()
                        .entry(kind)
                        .or_default();
                    if side == 0 {
                        n.0 += list.len();
                    } else {
                        n.1 += list.len();
                    }
                }
            }
            let mut t = TypeReport {
                suricata: sk.values().map(Vec::len).sum(),
                precinct: pk.values().map(Vec::len).sum(),
                ..TypeReport::default()
            };
            for (key, srecs) in sk {
                let precs = pk.get(key).map(Vec::as_slice).unwrap_or(&[]);
                for (i, sr) in srecs.iter().enumerate() {
                    let Some(pr) = precs.get(i) else {
                        if t.only_suricata.len() < examples {
                            t.only_suricata.push(key.clone());
                        }
                        continue;
                    };
                    t.matched += 1;
                    let mut all_equal = true;
                    let names: std::collections::BTreeSet<&String> =
                        sr.fields.keys().chain(pr.fields.keys()).collect();
                    for name in names {
                        let f = t.fields.entry(name.clone()).or_default();
                        f.compared += 1;
                        let (a, b) = (sr.fields.get(name), pr.fields.get(name));
                        if a != b {
                            all_equal = false;
                            f.differ += 1;
                            if f.examples.len() < examples {
                                let show =
                                    |v: Option<&String>| v.cloned().unwrap_or("(none)".into());
                                f.examples.push((key.clone(), show(a), show(b)));
                            }
                        }
                    }
                    t.agree += usize::from(all_equal);
                }
            }
            for (key, precs) in pk {
                let have = sk.get(key).map_or(0, Vec::len);
                if precs.len() > have && t.only_precinct.len() < examples {
                    t.only_precinct.push(key.clone());
                }
            }
            if kind == "alert" {
                for (key, list) in sk {
                    let sid = key
                        .split(" | ")
                        .nth(1)
                        .and_then(|k| k.split(' ').next())
                        .unwrap_or("?");
                    report.sids.entry(sid.to_string()).or_default().0 += list.len();
                }
                for (key, list) in pk {
                    let sid = key
                        .split(" | ")
                        .nth(1)
                        .and_then(|k| k.split(' ').next())
                        .unwrap_or("?");
                    report.sids.entry(sid.to_string()).or_default().1 += list.len();
                }
            }
            report.types.insert(kind, t);
        }
        report
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let mut o = format!("compare: {} captures\n", self.captures);
        o.push_str(&format!(
            "{:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}\n",
            "type", "suricata", "precinct", "matched", "only S", "only P", "cover", "agree"
        ));
        for (kind, t) in &self.types {
            o.push_str(&format!(
                "{kind:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7.1}% {:>7.1}%\n",
                t.suricata,
                t.precinct,
                t.matched,
                t.suricata - t.matched,
                t.precinct.saturating_sub(t.matched),
                t.coverage() * 100.0,
                t.agreement() * 100.0
            ));
        }
        for (kind, t) in &self.types {
            let differing: Vec<_> = t.fields.iter().filter(|(_, f)| f.differ > 0).collect();
            if differing.is_empty() && t.only_suricata.is_empty() && t.only_precinct.is_empty() {
                continue;
            }
            o.push_str(&format!("\n{kind}:\n"));
            for (name, f) in differing {
                o.push_str(&format!(
                    "  field {name}: {} of {} differ\n",
                    f.differ, f.compared
                ));
                for (k, a, b) in &f.examples {
                    o.push_str(&format!(
                        "    {k}\n      suricata: {a}\n      precinct: {b}\n"
                    ));
                }
            }
            for k in &t.only_suricata {
                o.push_str(&format!("  only suricata: {k}\n"));
            }
            for k in &t.only_precinct {
                o.push_str(&format!("  only precinct: {k}\n"));
            }
        }
        let unequal: Vec<_> = self.sids.iter().filter(|(_, (a, b))| a != b).collect();
        if !self.sids.is_empty() {
            o.push_str(&format!(
                "\nalerts: {} sids alerted by either, {} with equal counts\n",
                self.sids.len(),
                self.sids.len() - unequal.len()
            ));
            for (sid, (a, b)) in unequal {
                o.push_str(&format!("  {sid}: suricata {a}, precinct {b}\n"));
            }
        }
        for p in &self.problems {
            o.push_str(&format!("problem: {p}\n"));
        }
        o
    }

    /// The report as JSON (for tiers and scripts).
    pub fn json(&self) -> Value {
        let types: serde_json::Map<String, Value> = self
            .types
            .iter()
            .map(|(k, t)| {
                let fields: serde_json::Map<String, Value> = t
                    .fields
                    .iter()
                    .map(|(n, f)| {
                        (
                            n.clone(),
                            json!({"compared": f.compared, "differ": f.differ}),
                        )
                    })
                    .collect();
                (
                    k.to_string(),
                    json!({"suricata": t.suricata, "precinct": t.precinct, "matched": t.matched,
                        "agree": t.agree, "coverage": t.coverage(), "agreement": t.agreement(),
                        "fields": fields}),
                )
            })
            .collect();
        let by_capture: serde_json::Map<String, Value> = self
            .by_capture
            .iter()
            .map(|(c, kinds)| {
                let kinds: serde_json::Map<String, Value> = kinds
                    .iter()
                    .map(|(k, (s, p))| (k.to_string(), json!([s, p])))
                    .collect();
                (c.clone(), Value::Object(kinds))
            })
            .collect();
        json!({"captures": self.captures, "types": types, "problems": self.problems,
            "by_capture": by_capture})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &'static str, key: &str, fields: &[(&str, &str)]) -> Canon {
        Canon {
            kind,
            key: key.into(),
            fields: fields
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ts: String::new(),
        }
    }

    #[test]
    fn records_pair_by_key_and_fields_are_counted() {
        let s = vec![
            rec("http", "f | a", &[("status", "200")]),
            rec("http", "f | a", &[("status", "404")]),
            rec("http", "f | b", &[("status", "200")]),
        ];
        let p = vec![
            rec("http", "f | a", &[("status", "200")]),
            rec("http", "f | a", &[("status", "500")]),
            rec("http", "f | c", &[]),
        ];
        let r = Report::build(1, s, p, Vec::new(), 3);
        let t = &r.types["http"];
        assert_eq!((t.suricata, t.precinct, t.matched, t.agree), (3, 3, 2, 1));
        assert_eq!(t.fields["status"].differ, 1);
        assert_eq!(t.only_suricata, vec!["f | b".to_string()]);
        assert_eq!(t.only_precinct, vec!["f | c".to_string()]);
        assert!((t.coverage() - 2.0 / 3.0).abs() < 1e-9);
        assert!(r.text().contains("field status: 1 of 2 differ"));
    }

    #[test]
    fn records_are_counted_per_capture() {
        let s = vec![
            rec("dns", "one.pcap | q", &[]),
            rec("dns", "one.pcap | q", &[]),
            rec("flow", "two.pcap | f", &[]),
        ];
        let p = vec![
            rec("dns", "one.pcap | q", &[]),
            rec("dns", "two.pcap | r", &[]),
        ];
        let r = Report::build(2, s, p, Vec::new(), 0);
        assert_eq!(r.by_capture["one.pcap"]["dns"], (2, 1));
        assert_eq!(r.by_capture["two.pcap"]["dns"], (0, 1));
        assert_eq!(r.by_capture["two.pcap"]["flow"], (1, 0));
        assert_eq!(r.json()["by_capture"]["one.pcap"]["dns"], json!([2, 1]));
    }
}
