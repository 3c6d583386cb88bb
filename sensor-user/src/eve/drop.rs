//! The EVE `drop` record of the in-kernel protection: Suricata's `drop` object (the IP and
//! transport header fields of the packet), and what Precinct adds: the reason, the list, the
//! mode and the hook.

use sensor_common::{
    head::HeadRecord,
    parse::{self, ipproto, FAMILY_IPV4},
    protect::{action, reason},
    Hook,
};
use serde::Serialize;

use super::{
    header::{vlan, Header, Proto, Timestamp},
    Record,
};
use crate::flows::{self, Clock};

/// Names the record needs: lists by id, interfaces by index.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// List names by id.
    pub lists: Vec<String>,
    /// Interface names by index.
    pub ifaces: std::collections::HashMap<u32, String>,
}

/// IPv4 header fields.
#[derive(Clone, Debug, Serialize)]
struct V4Fields {
    tos: u8,
    ttl: u8,
    ipid: u16,
}

/// IPv6 header fields.
#[derive(Clone, Debug, Serialize)]
struct V6Fields {
    tc: u8,
    hoplimit: u8,
    flowlbl: u32,
}

/// The IP header's fields, by family.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
enum IpFields {
    V4(V4Fields),
    V6(V6Fields),
}

/// TCP header fields: sequence numbers when captured, flags always.
#[derive(Clone, Debug, Serialize)]
struct TcpFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpseq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpack: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpwin: Option<u16>,
    syn: bool,
    ack: bool,
    psh: bool,
    rst: bool,
    urg: bool,
    fin: bool,
}

/// The `drop` object.
#[derive(Clone, Debug, Serialize)]
struct DropObject<'a> {
    len: u32,
    #[serde(flatten)]
    ip: IpFields,
    #[serde(flatten)]
    tcp: Option<TcpFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udplen: Option<u16>,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    list: Option<&'a str>,
    mode: &'static str,
    hook: &'static str,
}

/// A `drop` record.
#[derive(Clone, Debug, Serialize)]
pub struct DropRecord<'a> {
    #[serde(flatten)]
    header: Header<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    drop: DropObject<'a>,
}

impl Record for DropRecord<'_> {
    fn event_type(&self) -> &'static str {
        "drop"
    }
}

/// The record of one drop event (its header and the frame bytes the kernel sent).
pub fn drop_record<'a>(
    rec: &HeadRecord,
    frame: &[u8],
    clock: &Clock,
    names: &'a Names,
) -> DropRecord<'a> {
    let p = parse::parse(frame);
    let [why, list, act] = rec._pad;
    let egress = rec.hook == Hook::Egress as u8;
    let iface = names.ifaces.get(&rec.key.ifindex).map(String::as_str);
    // A frame cut before its transport header has no transport fields to report: the parser
    // leaves the transport offset at 0, and reading there would report Ethernet bytes.
    let l4_parsed = p.l4_off != 0;
    let ports = ipproto::has_ports(p.proto) && l4_parsed;
    let icmp = matches!(p.proto, ipproto::ICMP | ipproto::ICMPV6);
    let l3 = p.l3_off as usize;
    let byte = |i: usize| frame.get(l3 + i).copied().unwrap_or(0);
    let ip = if p.family == FAMILY_IPV4 {
        IpFields::V4(V4Fields {
            tos: byte(1),
            ttl: p.ttl,
            ipid: u16::from_be_bytes([byte(4), byte(5)]),
        })
    } else {
        IpFields::V6(V6Fields {
            tc: ((byte(0) & 0x0f) << 4) | (byte(1) >> 4),
            hoplimit: p.ttl,
            flowlbl: (u32::from(byte(1) & 0x0f) << 16)
                | (u32::from(byte(2)) << 8)
                | u32::from(byte(3)),
        })
    };
    let l4 = p.l4_off as usize;
    let get = |i: usize, n: usize| frame.get(l4 + i..l4 + i + n);
    let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let tcp = (p.proto == ipproto::TCP && l4_parsed).then(|| {
        // All three or none: a frame cut inside the TCP header shows only the flags.
        let seqs = match (get(4, 4), get(8, 4), get(14, 2)) {
            (Some(seq), Some(ack), Some(win)) => {
                Some((word(seq), word(ack), u16::from_be_bytes([win[0], win[1]])))
            }
            _ => None,
        };
        let f = p.tcp_flags;
        TcpFields {
            tcpseq: seqs.map(|s| s.0),
            tcpack: seqs.map(|s| s.1),
            tcpwin: seqs.map(|s| s.2),
            syn: f & 0x02 != 0,
            ack: f & 0x10 != 0,
            psh: f & 0x08 != 0,
            rst: f & 0x04 != 0,
            urg: f & 0x20 != 0,
            fin: f & 0x01 != 0,
        }
    });
    let udplen = (p.proto == ipproto::UDP && l4_parsed)
        .then(|| get(4, 2).map(|b| u16::from_be_bytes([b[0], b[1]])))
        .flatten();
    DropRecord {
        header: Header {
            timestamp: Timestamp(clock.unix_ns(rec.ts_ns)),
            flow_id: None,
            in_iface: iface.filter(|_| !egress),
            out_iface: iface.filter(|_| egress),
            pcap_cnt: None,
            event_type: "drop",
            vlan: vlan(p.vlan, p.vlan_inner),
            src_ip: flows::ip_of(p.family, &p.src),
            src_port: ports.then_some(p.sport),
            dest_ip: flows::ip_of(p.family, &p.dst),
            dest_port: ports.then_some(p.dport),
            proto: Proto(p.proto),
        },
        icmp_type: icmp.then_some(p.icmp_type),
        icmp_code: icmp.then_some(p.icmp_code),
        drop: DropObject {
            len: ip_len(frame, &p, rec.orig_len),
            ip,
            tcp,
            udplen,
            reason: reason::NAMES
                .get(usize::from(why))
                .copied()
                .unwrap_or("unknown"),
            list: names
                .lists
                .get(usize::from(list))
                .map(String::as_str)
                .filter(|n| !n.is_empty() && *n != "none"),
            mode: if act == action::DROP {
                "prevent"
            } else {
                "monitor"
            },
            hook: if egress { "egress" } else { "ingress" },
        },
    }
}

/// The IP packet's length (its header says), or the frame's length less L2.
fn ip_len(frame: &[u8], p: &parse::Parsed, orig_len: u32) -> u32 {
    let l3 = p.l3_off as usize;
    match (p.family, frame.get(l3 + 2..l3 + 6)) {
        (FAMILY_IPV4, Some(b)) => u32::from(u16::from_be_bytes([b[0], b[1]])),
        (_, Some(b)) if p.family != 0 => 40 + u32::from(u16::from_be_bytes([b[2], b[3]])),
        _ => orig_len.saturating_sub(l3 as u32),
    }
}
