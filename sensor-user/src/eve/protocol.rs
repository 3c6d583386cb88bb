//! Records of the inspection pipeline besides alerts and flows: protocol records (`dns`,
//! `http`, `tls`, `ssh`, …, whose object the protocol's parser builds) and `anomaly` records,
//! and [`FlowView`], what every pipeline record knows of its flow.

use sensor_common::{
    flow::{FlowKey, FlowStats},
    parse::ipproto,
};
use serde::Serialize;
use serde_json::Value;

use super::{
    header::{vlan, Header, Keyed, Proto, Timestamp},
    Record,
};
use crate::{
    applayer::{AppRecord, Dir},
    flows,
};

/// The flow a pipeline record belongs to, and where in the capture it was written.
#[derive(Clone, Copy, Debug)]
pub struct FlowView<'a> {
    /// The flow's key.
    pub key: &'a FlowKey,
    /// Its counters (and which side is the client).
    pub stats: &'a FlowStats,
    /// Its id.
    pub id: u64,
    /// `in_iface`, when known.
    pub iface: Option<&'a str>,
    /// Packets processed so far.
    pub pcap_cnt: u64,
}

impl<'a> FlowView<'a> {
    /// The record header of an event of `dir` at `ts_ns`.
    pub fn header(&self, event_type: &'static str, ts_ns: u64, dir: Dir) -> Header<'a> {
        let o = flows::orient(self.key, self.stats);
        let (src, sport, dst, dport) = match dir {
            Dir::ToServer => (o.src, o.sport, o.dst, o.dport),
            Dir::ToClient => (o.dst, o.dport, o.src, o.sport),
        };
        let ports = matches!(self.key.proto, ipproto::TCP | ipproto::UDP);
        Header {
            timestamp: Timestamp(ts_ns),
            flow_id: Some(self.id),
            in_iface: self.iface,
            out_iface: None,
            pcap_cnt: Some(self.pcap_cnt),
            event_type,
            vlan: vlan(self.key.vlan, flows::inner_vlan(self.key)),
            src_ip: src,
            src_port: ports.then_some(sport),
            dest_ip: dst,
            dest_port: ports.then_some(dport),
            proto: Proto(self.key.proto),
        }
    }
}

/// A protocol record: the header, then the parser's object under the event type's name.
#[derive(Clone, Debug, Serialize)]
pub struct ProtocolRecord<'a> {
    #[serde(flatten)]
    header: Header<'a>,
    pkt_src: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<u64>,
    #[serde(flatten)]
    object: Keyed<'a, &'a Value>,
}

impl Record for ProtocolRecord<'_> {
    fn event_type(&self) -> &'static str {
        self.header.event_type
    }
}

/// The record of parser output `rec` on `flow` at `ts_ns`.
pub fn protocol_record<'a>(
    flow: &FlowView<'a>,
    rec: &'a AppRecord,
    ts_ns: u64,
) -> ProtocolRecord<'a> {
    // DNS records follow the packet (a response goes server to client); the others are
    // written from the client's side, as Suricata does.
    let dir = if rec.event_type == "dns" {
        rec.dir
    } else {
        Dir::ToServer
    };
    ProtocolRecord {
        header: flow.header(rec.event_type, ts_ns, dir),
        pkt_src: "wire/pcap",
        tx_id: rec.tx_id,
        object: Keyed {
            key: rec.event_type,
            value: &rec.object,
        },
    }
}

/// `anomaly.*` of an application-layer anomaly.
#[derive(Clone, Debug, Serialize)]
struct Anomaly<'a> {
    app_proto: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'a str,
    layer: &'static str,
}

/// An `anomaly` record.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyRecord<'a> {
    #[serde(flatten)]
    header: Header<'a>,
    pkt_src: &'static str,
    app_proto: &'a str,
    anomaly: Anomaly<'a>,
}

impl Record for AnomalyRecord<'_> {
    fn event_type(&self) -> &'static str {
        "anomaly"
    }
}

/// The record of a protocol anomaly `event` (Suricata's event name) on `flow`.
pub fn anomaly_record<'a>(
    flow: &FlowView<'a>,
    app_proto: Option<&'a str>,
    event: &'a str,
    ts_ns: u64,
) -> AnomalyRecord<'a> {
    let app_proto = app_proto.unwrap_or("unknown");
    AnomalyRecord {
        header: flow.header("anomaly", ts_ns, Dir::ToServer),
        pkt_src: "wire/pcap",
        app_proto,
        anomaly: Anomaly {
            app_proto,
            kind: "applayer",
            event,
            // Protocol detection's own events (Suricata's `APPLAYER_*`) come from detection,
            // the others from the protocol's parser.
            layer: if event.starts_with("APPLAYER_") {
                "proto_detect"
            } else {
                "proto_parser"
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::parse::FAMILY_IPV4;

    fn key() -> FlowKey {
        let mut k = FlowKey {
            proto: ipproto::UDP,
            family: FAMILY_IPV4,
            port_a: 53,
            port_b: 40000,
            vlan: 5,
            ..Default::default()
        };
        k.addr_a[..4].copy_from_slice(&[192, 0, 2, 53]);
        k.addr_b[..4].copy_from_slice(&[192, 0, 2, 10]);
        k
    }

    #[test]
    fn protocol_and_anomaly_records_byte_for_byte() {
        let k = key();
        // The client is side B (192.0.2.10:40000).
        let s = FlowStats {
            client_dir: 1,
            ..Default::default()
        };
        let view = FlowView {
            key: &k,
            stats: &s,
            id: 9,
            iface: Some("eth1"),
            pcap_cnt: 4,
        };
        let rec = AppRecord {
            event_type: "dns",
            object: serde_json::json!({"type": "response"}),
            dir: Dir::ToClient,
            tx_id: None,
        };
        assert_eq!(
            serde_json::to_string(&protocol_record(&view, &rec, 2_000_000_000)).expect("json"),
            r#"{"timestamp":"1970-01-01T00:00:02.000000+0000","flow_id":9,"in_iface":"eth1","pcap_cnt":4,"event_type":"dns","vlan":[5],"src_ip":"192.0.2.53","src_port":53,"dest_ip":"192.0.2.10","dest_port":40000,"proto":"UDP","pkt_src":"wire/pcap","dns":{"type":"response"}}"#
        );
        let http = AppRecord {
            event_type: "http",
            object: serde_json::json!({"url": "/"}),
            dir: Dir::ToClient,
            tx_id: Some(3),
        };
        let text = serde_json::to_string(&protocol_record(&view, &http, 0)).expect("json");
        assert!(
            text.contains(r#""src_ip":"192.0.2.10","src_port":40000,"dest_ip":"192.0.2.53""#),
            "written from the client's side: {text}"
        );
        assert!(
            text.ends_with(r#""pkt_src":"wire/pcap","tx_id":3,"http":{"url":"/"}}"#),
            "{text}"
        );
        assert_eq!(
            serde_json::to_string(&anomaly_record(&view, None, "INVALID_RECORD_TYPE", 0))
                .expect("json"),
            r#"{"timestamp":"1970-01-01T00:00:00.000000+0000","flow_id":9,"in_iface":"eth1","pcap_cnt":4,"event_type":"anomaly","vlan":[5],"src_ip":"192.0.2.10","src_port":40000,"dest_ip":"192.0.2.53","dest_port":53,"proto":"UDP","pkt_src":"wire/pcap","app_proto":"unknown","anomaly":{"app_proto":"unknown","type":"applayer","event":"INVALID_RECORD_TYPE","layer":"proto_parser"}}"#
        );
        let text = serde_json::to_string(&anomaly_record(
            &view,
            Some("http"),
            "APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION",
            0,
        ))
        .expect("json");
        assert!(
            text.ends_with(
                r#""event":"APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION","layer":"proto_detect"}}"#
            ),
            "detection's events are detection's: {text}"
        );
    }
}
