//! The EVE `alert` record: the flow's header, the `alert` object of the signature, the
//! transaction's protocol object, the optional payload and packet, and the flow's counters so
//! far.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::{ser::SerializeMap as _, Serialize, Serializer};
use serde_json::Value;

use super::{
    header::{Header, Keyed, Timestamp},
    protocol::FlowView,
    Record, Traffic,
};
use crate::{
    applayer::{Buffer, Dir},
    flows,
};

/// `[alerts]`: optional parts of EVE `alert` records (Suricata's `payload`,
/// `payload-printable` and `packet` settings), off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// `payload`: the inspected bytes, base64.
    pub payload: bool,
    /// `payload_printable`: the inspected bytes, non-printable ones as `.`.
    pub payload_printable: bool,
    /// `packet`: the whole frame that triggered the alert, base64, with `packet_info`.
    pub packet: bool,
}

/// The `alert` object, as Suricata writes it in IDS mode.
#[derive(Clone, Debug, Serialize)]
pub struct AlertObject<'a> {
    /// `allowed`: the sensor does not drop what it alerts on.
    pub action: &'static str,
    /// The signature's `gid`.
    pub gid: u32,
    /// Its `sid`.
    pub signature_id: u32,
    /// Its `rev`.
    pub rev: u32,
    /// Its `msg`.
    pub signature: &'a str,
    /// Its classtype's description (empty without one).
    pub category: &'a str,
    /// Its priority.
    pub severity: u8,
    /// Its `metadata`.
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata<'a>,
}

/// A rule's `metadata` entries, written as Suricata does: each key once, in the order it first
/// appears, with the list of its values.
#[derive(Clone, Copy, Debug)]
pub struct Metadata<'a>(pub &'a [(String, String)]);

impl Metadata<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Metadata<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut keys: Vec<&str> = Vec::new();
        for (k, _) in self.0 {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        let mut m = s.serialize_map(Some(keys.len()))?;
        for k in keys {
            let values: Vec<&str> = self
                .0
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect();
            m.serialize_entry(k, &values)?;
        }
        m.end()
    }
}

/// `packet_info`: what `packet` holds.
#[derive(Clone, Copy, Debug, Serialize)]
struct PacketInfo {
    linktype: u32,
}

/// `flow.*` in an alert: the counters so far.
#[derive(Clone, Debug, Serialize)]
struct FlowSoFar {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: Timestamp,
}

/// An `alert` record.
#[derive(Clone, Debug, Serialize)]
pub struct AlertRecord<'a> {
    #[serde(flatten)]
    header: Header<'a>,
    pkt_src: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<u64>,
    alert: AlertObject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic: Option<Traffic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    #[serde(flatten)]
    app: Option<Keyed<'static, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_printable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packet_info: Option<PacketInfo>,
    flow: FlowSoFar,
    #[serde(skip)]
    severity: u8,
}

impl Record for AlertRecord<'_> {
    fn event_type(&self) -> &'static str {
        "alert"
    }

    fn alert_severity(&self) -> Option<u8> {
        Some(self.severity)
    }
}

/// The bytes an alert may carry: what the rule inspected and the frame that triggered it.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlertBytes<'a> {
    /// The inspected payload or stream bytes.
    pub payload: Option<&'a [u8]>,
    /// The whole frame (Ethernet).
    pub packet: Option<&'a [u8]>,
}

/// Everything an alert record is made of besides its flow.
pub struct AlertParts<'a> {
    /// The `alert` object of the signature that matched.
    pub alert: AlertObject<'a>,
    /// When.
    pub ts_ns: u64,
    /// The match was on the client's side.
    pub to_server: bool,
    /// The transaction the match was on, for app-layer rules.
    pub tx_id: Option<u64>,
    /// The flow's application protocol and the transaction's protocol object.
    pub app: Option<(&'static str, Option<Value>)>,
    /// The flow's traffic ids and labels.
    pub traffic: Option<Traffic>,
    /// Bytes the record may carry.
    pub bytes: AlertBytes<'a>,
    /// Which of the optional parts to write.
    pub want: AlertsSection,
    /// The flow is a reassembled TCP stream.
    pub stream: bool,
}

/// Builds the alert record of `parts` on `flow`.
pub fn alert_record<'a>(flow: &FlowView<'a>, parts: AlertParts<'a>) -> AlertRecord<'a> {
    let severity = parts.alert.severity;
    let dir = if parts.to_server {
        Dir::ToServer
    } else {
        Dir::ToClient
    };
    let want = parts.want;
    let payload = parts
        .bytes
        .payload
        .filter(|_| want.payload || want.payload_printable);
    let packet = parts.bytes.packet.filter(|_| want.packet);
    let o = flows::orient(flow.key, flow.stats);
    let s = flow.stats;
    let (app_proto, app) = match parts.app {
        Some((proto, object)) => (Some(proto), object.map(|value| Keyed { key: proto, value })),
        None => (None, None),
    };
    AlertRecord {
        header: flow.header("alert", parts.ts_ns, dir),
        pkt_src: "wire/pcap",
        tx_id: parts.tx_id,
        alert: parts.alert,
        traffic: parts.traffic,
        app_proto,
        app,
        payload: payload.filter(|_| want.payload).map(|p| STANDARD.encode(p)),
        payload_printable: payload.filter(|_| want.payload_printable).map(printable),
        stream: payload.map(|_| u8::from(parts.stream)),
        packet: packet.map(|p| STANDARD.encode(p)),
        packet_info: packet.map(|_| PacketInfo { linktype: 1 }),
        flow: FlowSoFar {
            pkts_toserver: s.pkts[o.ts],
            pkts_toclient: s.pkts[o.ts ^ 1],
            bytes_toserver: s.bytes[o.ts],
            bytes_toclient: s.bytes[o.ts ^ 1],
            start: Timestamp(s.first_ns),
        },
        severity,
    }
}

/// Bytes as `payload_printable` writes them: printable ASCII as is, the rest as `.`.
fn printable(payload: &[u8]) -> String {
    payload
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// The protocol object of an alert whose transaction has no record of its own yet, from the
/// buffers detection has seen of it (`buffer(to_server, b)`).
pub fn app_object_from_buffers<'b>(
    app: &str,
    buffer: impl Fn(bool, Buffer) -> Option<&'b [u8]>,
) -> Option<Value> {
    use serde_json::{json, Map};
    let text = |ts: bool, b: Buffer| buffer(ts, b).map(|b| String::from_utf8_lossy(b).into_owned());
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    match app {
        "http" => {
            put("hostname", text(true, Buffer::HttpHost));
            put("url", text(true, Buffer::HttpUriRaw));
            put("http_user_agent", text(true, Buffer::HttpUserAgent));
            put("http_method", text(true, Buffer::HttpMethod));
            put("protocol", text(true, Buffer::HttpProtocol));
            if let Some(code) =
                text(false, Buffer::HttpStatCode).and_then(|c| c.parse::<u16>().ok())
            {
                m.insert("status".into(), json!(code));
            }
        }
        "tls" => {
            put("sni", text(true, Buffer::TlsSni));
            put("subject", text(false, Buffer::TlsCertSubject));
            put("issuerdn", text(false, Buffer::TlsCertIssuer));
        }
        "ssh" => {
            for (ts, side) in [(true, "client"), (false, "server")] {
                let mut o = Map::new();
                if let Some(v) = text(ts, Buffer::SshProto) {
                    o.insert("proto_version".into(), json!(v));
                }
                if let Some(v) = text(ts, Buffer::SshSoftware) {
                    o.insert("software_version".into(), json!(v));
                }
                if !o.is_empty() {
                    m.insert(side.into(), Value::Object(o));
                }
            }
        }
        "dns" => {
            if let Some(q) = text(true, Buffer::DnsQuery) {
                m.insert("queries".into(), json!([{ "rrname": q }]));
            }
        }
        _ => {}
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_groups_values_by_key_in_first_seen_order() {
        let md = vec![
            ("b".to_string(), "1".to_string()),
            ("a".to_string(), "2".to_string()),
            ("b".to_string(), "3".to_string()),
        ];
        assert_eq!(
            serde_json::to_string(&Metadata(&md)).expect("json"),
            r#"{"b":["1","3"],"a":["2"]}"#
        );
    }

    #[test]
    fn printable_payload_masks_control_bytes() {
        assert_eq!(printable(b"GET /\r\n\x00\xff~"), "GET /....~");
    }
}
