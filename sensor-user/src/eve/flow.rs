//! The EVE `flow` record: one per flow when it ends, from the kernel's flow map (the live
//! agent) or from the inspection pipeline's table (replay), oriented from the client.

use sensor_common::{
    flow::{tcp, FlowKey, FlowStats},
    parse::ipproto,
};
use serde::Serialize;

use super::{
    header::{vlan, Header, Proto, Timestamp},
    Record, Traffic,
};
use crate::{
    community_id::community_id_v1,
    flows::{self, orient, Clock, Reason},
};

/// What inspection adds to a flow's record beyond the kernel's counters.
#[derive(Clone, Debug, Default)]
pub struct Inspected {
    /// The flow id to write instead of the one derived from the key and start time.
    pub flow_id: Option<u64>,
    /// The application protocol, once detected (or `failed`).
    pub app_proto: Option<&'static str>,
    /// The protocol that handed the connection over to `app_proto` (STARTTLS).
    pub app_proto_orig: Option<&'static str>,
    /// An alert was written for the flow.
    pub alerted: bool,
    /// The `traffic` object of the flow's flowbits.
    pub traffic: Option<Traffic>,
    /// The TCP session state (`established`, `closed`, …) as reassembly saw it.
    pub tcp_state: Option<&'static str>,
}

/// `flow.*`: counters and life of the flow.
#[derive(Clone, Debug, Serialize)]
pub struct FlowCounts {
    /// Packets client to server.
    pub pkts_toserver: u64,
    /// Packets server to client.
    pub pkts_toclient: u64,
    /// Bytes client to server.
    pub bytes_toserver: u64,
    /// Bytes server to client.
    pub bytes_toclient: u64,
    /// First packet.
    pub start: Timestamp,
    /// Last packet.
    pub end: Timestamp,
    /// Whole seconds between the timestamps' second fields, as Suricata counts it.
    pub age: u64,
    /// `new`, `established` or `closed`.
    pub state: &'static str,
    /// Why the record was written.
    pub reason: &'static str,
    /// Whether an alert was written for the flow.
    pub alerted: bool,
}

/// `tcp.*`: the flags seen, each direction and together; a flag that was never seen is left
/// out, as Suricata does.
#[derive(Clone, Debug, Serialize)]
pub struct TcpFlags {
    /// All flags, hex.
    pub tcp_flags: String,
    /// Client's flags, hex.
    pub tcp_flags_ts: String,
    /// Server's flags, hex.
    pub tcp_flags_tc: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    syn: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fin: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rst: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    psh: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ack: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    urg: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ecn: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cwr: bool,
    /// Session state as reassembly saw it (pipeline records only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
}

impl TcpFlags {
    fn new(all: u8, ts: u8, tc: u8, state: Option<&'static str>) -> TcpFlags {
        let has = |bit: u8| all & bit != 0;
        TcpFlags {
            tcp_flags: format!("{all:02x}"),
            tcp_flags_ts: format!("{ts:02x}"),
            tcp_flags_tc: format!("{tc:02x}"),
            syn: has(tcp::SYN),
            fin: has(tcp::FIN),
            rst: has(tcp::RST),
            psh: has(tcp::PSH),
            ack: has(tcp::ACK),
            urg: has(tcp::URG),
            ecn: has(tcp::ECE),
            cwr: has(tcp::CWR),
            state,
        }
    }
}

/// A `flow` record.
#[derive(Clone, Debug, Serialize)]
pub struct FlowRecord<'a> {
    /// The leading fields (the timestamp is the flow's start).
    #[serde(flatten)]
    pub header: Header<'a>,
    /// Detected application protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    /// The protocol the flow started with, when another took over (`smtp` for a STARTTLS
    /// session whose `app_proto` is `tls`), as Suricata writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_orig: Option<&'static str>,
    /// ICMP type the client sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code the client sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// ICMP type of the response, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_icmp_type: Option<u8>,
    /// ICMP code of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_icmp_code: Option<u8>,
    /// Community ID v1.
    pub community_id: String,
    /// Counters.
    pub flow: FlowCounts,
    /// TCP flags, for TCP flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpFlags>,
    /// Flowbit-named traffic ids and labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
}

impl Record for FlowRecord<'_> {
    fn event_type(&self) -> &'static str {
        "flow"
    }
}

/// The record of a flow that ended for `reason`; `clock` turns its timestamps into UNIX
/// time (the kernel's are monotonic).
pub fn flow_record<'a>(
    key: &FlowKey,
    s: &FlowStats,
    reason: Reason,
    clock: &Clock,
    iface: Option<&'a str>,
    inspected: Inspected,
) -> FlowRecord<'a> {
    let o = orient(key, s);
    let (ts, tc) = (o.ts, o.ts ^ 1);
    let start = clock.unix_ns(s.first_ns);
    let end = clock.unix_ns(s.last_ns);
    let is_icmp = key.proto == ipproto::ICMP || key.proto == ipproto::ICMPV6;
    let has_ports = ipproto::has_ports(key.proto);
    let (cid_sport, cid_dport) = if is_icmp {
        (u16::from(s.icmp_type[ts]), u16::from(s.icmp_code[ts]))
    } else {
        (o.sport, o.dport)
    };
    let responded = is_icmp && s.pkts[tc] > 0;
    FlowRecord {
        header: Header {
            timestamp: Timestamp(start),
            flow_id: Some(
                inspected
                    .flow_id
                    .unwrap_or_else(|| flows::flow_id(key, s.first_ns)),
            ),
            in_iface: iface,
            out_iface: None,
            pcap_cnt: None,
            event_type: "flow",
            vlan: vlan(key.vlan, flows::inner_vlan(key)),
            src_ip: o.src,
            src_port: has_ports.then_some(o.sport),
            dest_ip: o.dst,
            dest_port: has_ports.then_some(o.dport),
            proto: Proto(key.proto),
        },
        app_proto: inspected.app_proto,
        app_proto_orig: inspected.app_proto_orig,
        icmp_type: is_icmp.then_some(s.icmp_type[ts]),
        icmp_code: is_icmp.then_some(s.icmp_code[ts]),
        response_icmp_type: responded.then_some(s.icmp_type[tc]),
        response_icmp_code: responded.then_some(s.icmp_code[tc]),
        community_id: community_id_v1(0, o.src, o.dst, key.proto, cid_sport, cid_dport),
        flow: FlowCounts {
            pkts_toserver: s.pkts[ts],
            pkts_toclient: s.pkts[tc],
            bytes_toserver: s.bytes[ts],
            bytes_toclient: s.bytes[tc],
            start: Timestamp(start),
            end: Timestamp(end),
            age: (end / 1_000_000_000).saturating_sub(start / 1_000_000_000),
            state: flows::state(key, s),
            reason: reason.as_str(),
            alerted: inspected.alerted,
        },
        tcp: (key.proto == ipproto::TCP).then(|| {
            TcpFlags::new(
                s.tcp_flags[0] | s.tcp_flags[1],
                s.tcp_flags[ts],
                s.tcp_flags[tc],
                inspected.tcp_state,
            )
        }),
        traffic: inspected.traffic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::parse::FAMILY_IPV4;

    fn key_v4(a: [u8; 4], pa: u16, b: [u8; 4], pb: u16, proto: u8) -> FlowKey {
        let mut k = FlowKey {
            proto,
            family: FAMILY_IPV4,
            port_a: pa,
            port_b: pb,
            ..Default::default()
        };
        k.addr_a[..4].copy_from_slice(&a);
        k.addr_b[..4].copy_from_slice(&b);
        k
    }

    fn json(r: &FlowRecord<'_>) -> serde_json::Value {
        serde_json::to_value(r).expect("json")
    }

    #[test]
    fn tcp_record_is_oriented_from_the_client() {
        let k = key_v4([10, 0, 0, 1], 80, [10, 0, 0, 2], 40000, ipproto::TCP);
        // Side B (10.0.0.2:40000) opened the flow.
        let s = FlowStats {
            pkts: [4, 5],
            bytes: [400, 500],
            first_ns: 1_000_000_000,
            last_ns: 3_500_000_000,
            tcp_flags: [0x12 | 0x01, 0x02 | 0x10 | 0x08 | 0x01],
            client_dir: 1,
            ..Default::default()
        };
        let clock = Clock {
            offset_ns: 1_700_000_000_000_000_000,
        };
        let r = json(&flow_record(
            &k,
            &s,
            Reason::Timeout,
            &clock,
            Some("veth0"),
            Inspected::default(),
        ));
        assert_eq!(r["src_ip"], "10.0.0.2");
        assert_eq!(r["src_port"], 40000);
        assert_eq!(r["dest_ip"], "10.0.0.1");
        assert_eq!(r["dest_port"], 80);
        assert_eq!(r["proto"], "TCP");
        assert_eq!(r["in_iface"], "veth0");
        assert_eq!(r["flow"]["pkts_toserver"], 5);
        assert_eq!(r["flow"]["pkts_toclient"], 4);
        assert_eq!(r["flow"]["bytes_toserver"], 500);
        assert_eq!(r["flow"]["bytes_toclient"], 400);
        assert_eq!(r["flow"]["age"], 2);
        assert_eq!(r["flow"]["state"], "closed");
        assert_eq!(r["flow"]["reason"], "timeout");
        assert_eq!(r["tcp"]["tcp_flags"], "1b");
        assert_eq!(r["tcp"]["tcp_flags_ts"], "1b");
        assert_eq!(r["tcp"]["tcp_flags_tc"], "13");
        assert_eq!(r["tcp"]["syn"], true);
        assert!(r["tcp"].get("rst").is_none());
        assert!(r["tcp"].get("state").is_none());
        assert_eq!(r["timestamp"], "2023-11-14T22:13:21.000000+0000");
        assert!(r["community_id"].as_str().expect("cid").starts_with("1:"));
    }

    #[test]
    fn icmp_record_has_types_and_no_ports() {
        let k = key_v4([10, 0, 0, 1], 7, [10, 0, 0, 2], 7, ipproto::ICMP);
        let s = FlowStats {
            pkts: [3, 3],
            bytes: [294, 294],
            first_ns: 5,
            last_ns: 6,
            icmp_type: [8, 0],
            client_dir: 0,
            ..Default::default()
        };
        let r = json(&flow_record(
            &k,
            &s,
            Reason::Shutdown,
            &Clock { offset_ns: 0 },
            None,
            Inspected::default(),
        ));
        assert!(r.get("src_port").is_none());
        assert_eq!(r["icmp_type"], 8);
        assert_eq!(r["response_icmp_type"], 0);
        assert_eq!(r["flow"]["state"], "established");
        assert_eq!(r["flow"]["reason"], "shutdown");
        assert!(r.get("tcp").is_none());
    }

    #[test]
    fn what_inspection_learned_goes_where_suricata_writes_it() {
        let k = key_v4([10, 0, 0, 1], 80, [10, 0, 0, 2], 40000, ipproto::TCP);
        let s = FlowStats {
            pkts: [1, 1],
            client_dir: 1,
            tcp_flags: [0x12, 0x02],
            ..Default::default()
        };
        let r = flow_record(
            &k,
            &s,
            Reason::Timeout,
            &Clock { offset_ns: 0 },
            None,
            Inspected {
                flow_id: Some(42),
                app_proto: Some("http"),
                app_proto_orig: None,
                alerted: true,
                traffic: None,
                tcp_state: Some("established"),
            },
        );
        let text = serde_json::to_string(&r).expect("json");
        assert!(
            text.starts_with(r#"{"timestamp":"1970-01-01T00:00:00.000000+0000","flow_id":42,"event_type":"flow","src_ip":"10.0.0.2","src_port":40000,"dest_ip":"10.0.0.1","dest_port":80,"proto":"TCP","app_proto":"http","community_id":"#),
            "{text}"
        );
        assert!(
            text.ends_with(r#""reason":"timeout","alerted":true},"tcp":{"tcp_flags":"12","tcp_flags_ts":"02","tcp_flags_tc":"12","syn":true,"ack":true,"state":"established"}}"#),
            "{text}"
        );
    }
}
