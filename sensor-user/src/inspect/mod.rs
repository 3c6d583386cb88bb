//! The deep-inspection pipeline shared by `precinct replay` (capture files) and, later, the
//! live agent: link-layer decode, the shared header parser, a flow table keyed like the
//! kernel's, TCP reassembly, application-layer detection and parsers, and EVE records.

pub mod defrag;
pub mod stream;
pub mod tunnel;

use std::collections::HashMap;

use sensor_common::{
    flow::{tcp as tcpf, FlowKey, FlowStats},
    parse::{ethertype, ipproto, parse_into, parse_l3, Fragment, Outcome, Parsed},
};
use serde_json::{json, Map, Value};

use std::sync::Arc;

use crate::{
    applayer::{self, AppParser, AppRecord, Dir, Output},
    detect::{self, Detector, FlowState, Hit, PacketInfo, RuleSet},
    eve::{self, EveWriter},
    flows::{self, Clock, Reason, Timeouts},
};
use stream::{Chunk, HalfStream, Reassembly, StreamLimits, StreamStats};

/// Settings of the pipeline.
#[derive(Clone, Debug)]
pub struct InspectConfig {
    /// Pick up TCP sessions whose handshake was not seen.
    pub midstream: bool,
    /// Reassembly limits per direction.
    pub stream: StreamLimits,
    /// Out-of-order bytes all streams together may hold.
    pub stream_memcap: usize,
    /// Flows tracked at once; beyond it new flows are counted and not inspected.
    pub max_flows: usize,
    /// Flow timeouts (by capture time).
    pub timeouts: Timeouts,
    /// `in_iface` written into records.
    pub iface: Option<String>,
    /// Write a `flow` record when a flow ends. Off in the live agent, whose flow records come
    /// from the kernel's flow map.
    pub flow_records: bool,
    /// Optional parts of alert records.
    pub alerts: crate::config::AlertsSection,
}

impl Default for InspectConfig {
    fn default() -> Self {
        InspectConfig {
            midstream: false,
            stream: StreamLimits::default(),
            stream_memcap: 256 << 20,
            max_flows: 1 << 20,
            timeouts: Timeouts::default(),
            iface: None,
            flow_records: true,
            alerts: crate::config::AlertsSection::default(),
        }
    }
}

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct InspectStats {
    /// Packets processed.
    pub packets: u64,
    /// Bytes processed (captured lengths).
    pub bytes: u64,
    /// Flows created.
    pub flows: u64,
    /// Packets that were not IP or whose headers could not be parsed, by outcome name.
    pub undecoded: HashMap<&'static str, u64>,
    /// Packets of a link type this build cannot decode.
    pub unsupported_link: u64,
    /// New flows not tracked because the flow table was full.
    pub flows_over_limit: u64,
    /// Alert records written.
    pub alerts: u64,
}

enum App {
    /// Not detected yet: the first bytes of each direction, kept for probing.
    Probing([Vec<u8>; 2]),
    Active(Box<dyn AppParser>),
    Failed,
    None,
}

struct Tcp {
    half: [HalfStream; 2],
    /// In-order bytes not yet handed to the application layer, per direction.
    unacked: [std::collections::VecDeque<Chunk>; 2],
    /// Stream offset up to which the peer acknowledged each direction.
    acked: [u64; 2],
    /// The app layer has had client data.
    client_spoke: bool,
    syn: bool,
    syn_ack: bool,
    fin: [bool; 2],
    rst: bool,
}

struct Flow {
    key: FlowKey,
    id: u64,
    stats: FlowStats,
    tcp: Option<Tcp>,
    app: App,
    app_proto: Option<&'static str>,
    detect: FlowState,
    alerted: bool,
    /// The app-layer transaction in progress (id, EVE object), for alert records.
    tx: Option<(u64, Value)>,
    /// Signatures are evaluated on this flow: parsers must produce buffers.
    inspect: bool,
}

/// Bytes of each direction inspected before giving up on detection.
const PROBE_LIMIT: usize = 4096;

/// The pipeline: feed it packets, it writes EVE records.
pub struct Pipeline {
    cfg: InspectConfig,
    flows: HashMap<FlowKey, Flow, ahash::RandomState>,
    eve: EveWriter,
    reassembly: Reassembly,
    last_sweep_ns: u64,
    pcap_cnt: u64,
    rules: Option<Arc<RuleSet>>,
    detector: Detector,
    defrag: defrag::Defrag,
    /// Flow id for a flow the current packet creates (see [`Pipeline::packet_with_flow_id`]).
    flow_id_hint: Option<u64>,
    /// Counters so far.
    pub stats: InspectStats,
}

/// LINKTYPE_ values handled.
mod link {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    /// Some systems write raw IP as DLT 12 or 14.
    pub const RAW_ALT: [u32; 2] = [12, 14];
}

fn raw_ip_type(data: &[u8]) -> u16 {
    match data.first().map(|b| b >> 4) {
        Some(4) => ethertype::IPV4,
        Some(6) => ethertype::IPV6,
        _ => 0,
    }
}

/// Decodes one frame of `linktype`; `None` for a link type this build does not know.
pub fn decode(linktype: u32, data: &[u8]) -> Option<Parsed> {
    let mut p = Parsed::default();
    match linktype {
        link::ETHERNET => parse_into(data, &mut p),
        link::RAW | link::IPV4 | link::IPV6 => parse_l3(data, 0, raw_ip_type(data), &mut p),
        lt if link::RAW_ALT.contains(&lt) => parse_l3(data, 0, raw_ip_type(data), &mut p),
        link::LINUX_SLL => {
            let et = data
                .get(14..16)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0);
            if data.len() < 16 {
                p.outcome = Outcome::TruncatedEthernet;
            } else {
                parse_l3(data, 16, et, &mut p);
            }
        }
        link::LINUX_SLL2 => {
            let et = data
                .get(0..2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0);
            if data.len() < 20 {
                p.outcome = Outcome::TruncatedEthernet;
            } else {
                parse_l3(data, 20, et, &mut p);
            }
        }
        link::NULL | link::LOOP => {
            let Some(af) = data.get(0..4) else {
                p.outcome = Outcome::TruncatedEthernet;
                return Some(p);
            };
            // NULL stores the address family in the capturing host's order, LOOP in network
            // order; IPv4 is 2 everywhere, IPv6 24, 28 or 30 depending on the OS.
            let fam = if linktype == link::NULL && af[0] != 0 {
                u32::from(af[0])
            } else {
                u32::from(af[3])
            };
            let et = match fam {
                2 => ethertype::IPV4,
                24 | 28 | 30 => ethertype::IPV6,
                _ => 0,
            };
            parse_l3(data, 4, et, &mut p);
        }
        _ => return None,
    }
    Some(p)
}

fn probe(proto: u8, data: &[u8], ports: (u16, u16)) -> Option<Box<dyn AppParser>> {
    let tcp = proto == ipproto::TCP;
    let dns_port = ports.0 == 53 || ports.1 == 53;
    if tcp {
        if applayer::http::probe(data) {
            return Some(Box::new(applayer::http::HttpParser::new()));
        }
        if applayer::tls::probe(data) {
            return Some(Box::new(applayer::tls::TlsParser::new()));
        }
        if applayer::imap::probe(data) {
            return Some(Box::new(applayer::imap::ImapParser));
        }
        if applayer::ssh::probe(data) {
            return Some(Box::new(applayer::ssh::SshParser::new()));
        }
        if dns_port && applayer::dns::probe(data, true) {
            return Some(Box::new(applayer::dns::DnsParser::new(true)));
        }
    } else if proto == ipproto::UDP && dns_port && applayer::dns::probe(data, false) {
        return Some(Box::new(applayer::dns::DnsParser::new(false)));
    }
    None
}

impl Pipeline {
    /// A pipeline writing to `eve`.
    pub fn new(cfg: InspectConfig, eve: EveWriter) -> Pipeline {
        Pipeline {
            reassembly: Reassembly::new(cfg.stream, cfg.stream_memcap),
            cfg,
            // aHash with random keys: fast, and an attacker who picks addresses and ports cannot
            // aim at collisions as with a fixed hash.
            flows: HashMap::with_hasher(ahash::RandomState::new()),
            eve,
            last_sweep_ns: 0,
            pcap_cnt: 0,
            rules: None,
            detector: Detector::new(),
            defrag: defrag::Defrag::new(defrag::DefragLimits::default()),
            flow_id_hint: None,
            stats: InspectStats::default(),
        }
    }

    /// Inspects with these signatures from the next packet on; returns the set it replaces.
    /// Flows and their detection state stay: flowbits and transactions carry over, and what
    /// already alerted is remembered by rule identity, so a rule in both sets does not alert
    /// twice for one transaction (see [`FlowState`]).
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) -> Option<Arc<RuleSet>> {
        // An empty set is no set: no per-packet candidate search for nothing.
        let rules = (!rules.signatures().is_empty()).then_some(rules);
        std::mem::replace(&mut self.rules, rules)
    }

    /// Fragment reassembly counters.
    pub fn defrag_stats(&self) -> defrag::DefragStats {
        self.defrag.stats
    }

    /// Detection work counters.
    pub fn detect_stats(&self) -> detect::engine::DetectStats {
        self.detector.stats
    }

    /// Reassembly counters.
    pub fn stream_stats(&self) -> StreamStats {
        self.reassembly.stats
    }

    /// The EVE writer (for its counts).
    pub fn eve(&self) -> &EveWriter {
        &self.eve
    }

    /// Flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// [`Pipeline::packet`], where a flow the packet creates (outside any tunnel) takes
    /// `flow_id`: the live agent passes the kernel flow's id, so that protocol records and
    /// the kernel's flow record share it.
    pub fn packet_with_flow_id(
        &mut self,
        ts_ns: u64,
        linktype: u32,
        data: &[u8],
        flow_id: u64,
    ) -> anyhow::Result<()> {
        self.flow_id_hint = Some(flow_id);
        let r = self.packet(ts_ns, linktype, data);
        self.flow_id_hint = None;
        r
    }

    /// Processes one captured frame.
    pub fn packet(&mut self, ts_ns: u64, linktype: u32, data: &[u8]) -> anyhow::Result<()> {
        self.pcap_cnt += 1;
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        if self.sweep_due(ts_ns) {
            self.sweep(ts_ns)?;
            self.last_sweep_ns = ts_ns;
        }
        let Some(p) = decode(linktype, data) else {
            self.stats.unsupported_link += 1;
            return Ok(());
        };
        if !p.is_trackable() {
            *self.stats.undecoded.entry(p.outcome.name()).or_default() += 1;
            return Ok(());
        }
        // A tunnelled packet is inspected as the packet it carries. The table keeps the
        // tunnel depth where the kernel's keys keep the interface index, so flows at
        // different depths stay apart.
        let (p, data, depth) = tunnel::decapsulate(p, data);
        // Fragments wait for their datagram; the rebuilt packet is inspected instead.
        let rebuilt;
        let (p, data) = if p.fragment == Fragment::None {
            (p, data)
        } else {
            match self.defrag.fragment(&p, data, ts_ns) {
                None => return Ok(()),
                Some(packet) => {
                    rebuilt = packet;
                    let mut q = Parsed::default();
                    let et = if p.family == sensor_common::parse::FAMILY_IPV4 {
                        ethertype::IPV4
                    } else {
                        ethertype::IPV6
                    };
                    parse_l3(rebuilt.as_slice(), 0, et, &mut q);
                    if !q.is_trackable() {
                        *self.stats.undecoded.entry(q.outcome.name()).or_default() += 1;
                        return Ok(());
                    }
                    (q, rebuilt.as_slice())
                }
            }
        };
        let (key, dir) = FlowKey::from_parsed(&p, u32::from(depth));
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= self.cfg.max_flows {
                self.stats.flows_over_limit += 1;
                return Ok(());
            }
            self.stats.flows += 1;
            let tcp = (key.proto == ipproto::TCP).then(|| Tcp {
                half: [HalfStream::default(), HalfStream::default()],
                unacked: Default::default(),
                acked: [0; 2],
                client_spoke: false,
                syn: false,
                syn_ack: false,
                fin: [false; 2],
                rst: false,
            });
            let app = if matches!(key.proto, ipproto::TCP | ipproto::UDP)
                && p.fragment != Fragment::Later
            {
                App::Probing([Vec::new(), Vec::new()])
            } else {
                App::None
            };
            self.flows.insert(
                key,
                Flow {
                    key,
                    id: match self.flow_id_hint {
                        Some(id) if depth == 0 => id,
                        _ => flows::flow_id(&key, ts_ns),
                    },
                    stats: FlowStats::default(),
                    tcp,
                    app,
                    app_proto: None,
                    detect: FlowState::default(),
                    alerted: false,
                    tx: None,
                    inspect: self.rules.is_some(),
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return Ok(());
        };
        flow.stats
            .account(&p, dir, 1, data.len() as u64, ts_ns.max(1));
        let end = usize::from(p.ip_end).min(data.len());
        let start = usize::from(p.payload_off).min(end);
        let payload = &data[start..end];
        if p.fragment == Fragment::Later {
            return Ok(());
        }
        let mut outputs: Vec<(Dir, Output)> = Vec::new();
        let to_server = usize::from(flow.stats.client_dir) == dir;
        let app_dir = if to_server {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        // What packet signatures inspect: for a reassembled TCP stream the in-order bytes
        // this packet made available, otherwise the packet's payload.
        let mut inspected: Option<Vec<u8>> = None;
        match key.proto {
            ipproto::TCP => {
                let (arrived, released) = self.tcp_segment(&key, &p, data, dir, payload);
                let Some(flow) = self.flows.get_mut(&key) else {
                    return Ok(());
                };
                // Raw packet inspection when the segment added nothing in order (data on
                // a SYN before the handshake, retransmissions, early segments).
                if !arrived.is_empty() {
                    inspected = Some(arrived);
                }
                for (chunk_dir, chunk) in released {
                    feed_app(flow, chunk_dir, chunk, &mut outputs);
                }
            }
            ipproto::UDP if !payload.is_empty() => {
                feed_app(flow, app_dir, Chunk::Data(payload.to_vec()), &mut outputs);
            }
            _ => {}
        }
        let alerts = self.detect(
            &key,
            &p,
            dir,
            (inspected.as_deref().unwrap_or(payload), data),
            payload.len(),
            &outputs,
            ts_ns,
        );
        self.write_outputs(&key, ts_ns, outputs)?;
        self.stats.alerts += alerts.len() as u64;
        for a in &alerts {
            self.eve.write(a)?;
        }
        Ok(())
    }

    /// Runs the signatures on this packet and on the app-layer buffers it produced; returns
    /// the alert records.
    #[expect(
        clippy::too_many_arguments,
        reason = "the packet's parts, computed once by the caller"
    )]
    fn detect(
        &mut self,
        key: &FlowKey,
        p: &Parsed,
        dir: usize,
        (inspected, frame): (&[u8], &[u8]),
        dsize: usize,
        outputs: &[(Dir, Output)],
        ts_ns: u64,
    ) -> Vec<Value> {
        let Some(rules) = self.rules.clone() else {
            return Vec::new();
        };
        let Some(flow) = self.flows.get_mut(key) else {
            return Vec::new();
        };
        let to_server = usize::from(flow.stats.client_dir) == dir;
        let established = match &flow.tcp {
            Some(t) => {
                (t.syn && t.syn_ack)
                    || (self.cfg.midstream && (t.half[0].started() || t.half[1].started()))
            }
            None => flow.stats.pkts[0] > 0 && flow.stats.pkts[1] > 0,
        };
        let (src, dst) = (
            flows::ip_of(p.family, &p.src),
            flows::ip_of(p.family, &p.dst),
        );
        let has_ports = matches!(key.proto, ipproto::TCP | ipproto::UDP);
        let info = PacketInfo {
            ts_ns,
            src,
            sport: if has_ports { p.sport } else { 0 },
            dst,
            dport: if has_ports { p.dport } else { 0 },
            proto: p.proto,
            ttl: p.ttl,
            tcp_flags: p.tcp_flags,
            icmp_type: p.icmp_type,
            icmp_code: p.icmp_code,
            payload: inspected,
            dsize,
            to_server,
            established,
            app_proto: flow.app_proto,
            flow_id: flow.id,
        };
        let hits: Vec<Hit> = self.detector.packet(&rules, &info, &mut flow.detect);
        let iface = self.cfg.iface.as_deref();
        let mut alerts: Vec<Value> = hits
            .iter()
            .map(|h| {
                alert_record(
                    flow,
                    &rules.signatures()[h.sig as usize],
                    h,
                    ts_ns,
                    self.pcap_cnt,
                    iface,
                    to_server,
                    (
                        self.cfg.alerts,
                        AlertBytes {
                            payload: Some(inspected),
                            packet: Some(frame),
                        },
                    ),
                )
            })
            .collect();
        let pkt_dir = if to_server {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        alerts.extend(self.detect_app(
            key,
            outputs,
            ts_ns,
            established,
            Some((pkt_dir, inspected)),
            Some(frame),
        ));
        if !alerts.is_empty() {
            if let Some(flow) = self.flows.get_mut(key) {
                flow.alerted = true;
            }
        }
        alerts
    }

    /// App-layer signatures on the buffers parsers produced. The transaction's direction,
    /// not the packet that released the data (often the peer's acknowledgement), orients the
    /// match and the alert, as in Suricata.
    fn detect_app(
        &mut self,
        key: &FlowKey,
        outputs: &[(Dir, Output)],
        ts_ns: u64,
        established: bool,
        pkt: Option<(Dir, &[u8])>,
        frame: Option<&[u8]>,
    ) -> Vec<Value> {
        let Some(rules) = self.rules.clone() else {
            return Vec::new();
        };
        let Some(flow) = self.flows.get_mut(key) else {
            return Vec::new();
        };
        let Some(app) = flow.app_proto else {
            return Vec::new();
        };
        let o = flows::orient(&flow.key, &flow.stats);
        let iface = self.cfg.iface.as_deref();
        let mut alerts = Vec::new();
        // Detection runs once the packet's data is parsed, so alerts carry the transaction
        // as it stands after the whole packet.
        if let Some(tx) = outputs.iter().rev().find_map(|(_, o)| o.tx.clone()) {
            flow.tx = Some(tx);
        }
        let mut hits = Vec::new();
        for (_, out) in outputs {
            // Buffers of one call share a direction in practice; group them anyway.
            for dir in [Dir::ToServer, Dir::ToClient] {
                let bufs: Vec<(Dir, &'static str, Vec<u8>)> =
                    out.buffers.iter().filter(|b| b.0 == dir).cloned().collect();
                if bufs.is_empty() {
                    continue;
                }
                let to_server = dir == Dir::ToServer;
                let (src, sport, dst, dport) = if to_server {
                    (o.src, o.sport, o.dst, o.dport)
                } else {
                    (o.dst, o.dport, o.src, o.sport)
                };
                let info = PacketInfo {
                    ts_ns,
                    src,
                    sport,
                    dst,
                    dport,
                    proto: flow.key.proto,
                    ttl: 0,
                    tcp_flags: 0,
                    icmp_type: 0,
                    icmp_code: 0,
                    payload: pkt
                        .filter(|(d, _)| *d == dir)
                        .map(|(_, p)| p)
                        .unwrap_or(&[]),
                    dsize: 0,
                    to_server,
                    established,
                    app_proto: Some(app),
                    flow_id: flow.id,
                };
                for h in self
                    .detector
                    .app(&rules, &info, &mut flow.detect, app, &bufs)
                {
                    hits.push((h, to_server));
                }
            }
        }
        // Records are built once the packet's outputs are all absorbed, so an alert on the
        // client's banner also shows the server's that arrived with the same packet.
        for (h, to_server) in hits {
            let same_side = pkt.is_some_and(|(d, _)| (d == Dir::ToServer) == to_server);
            let bytes = AlertBytes {
                payload: pkt.filter(|_| same_side).map(|(_, p)| p),
                packet: frame,
            };
            alerts.push(alert_record(
                flow,
                &rules.signatures()[h.sig as usize],
                &h,
                ts_ns,
                self.pcap_cnt,
                iface,
                to_server,
                (self.cfg.alerts, bytes),
            ));
        }
        alerts
    }

    /// Reassembly for one TCP segment. Returns the in-order bytes this segment made
    /// available in its own direction (what packet signatures inspect), and the bytes of
    /// either direction that became visible to the application layer: as in Suricata's IDS
    /// mode, data reaches the parsers once the other side has acknowledged it (or when the
    /// connection is reset).
    fn tcp_segment(
        &mut self,
        key: &FlowKey,
        p: &Parsed,
        data: &[u8],
        dir: usize,
        payload: &[u8],
    ) -> (Vec<u8>, Vec<(Dir, Chunk)>) {
        let l4 = usize::from(p.l4_off);
        let word = |at: usize| {
            data.get(l4 + at..l4 + at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        };
        let (seq, ackn) = (word(4), word(8));
        let flags = p.tcp_flags;
        let midstream = self.cfg.midstream;
        let detecting = self.rules.is_some();
        let Some(flow) = self.flows.get_mut(key) else {
            return (Vec::new(), Vec::new());
        };
        let client = usize::from(flow.stats.client_dir);
        let as_dir = |d: usize| {
            if d == client {
                Dir::ToServer
            } else {
                Dir::ToClient
            }
        };
        let Some(tcp) = flow.tcp.as_mut() else {
            return (Vec::new(), Vec::new());
        };
        let r = &mut self.reassembly;
        let mut chunks = Vec::new();
        let syn = flags & tcpf::SYN != 0;
        let ack = flags & tcpf::ACK != 0;
        let mut data_seq = seq;
        if syn {
            // The SYN takes one sequence number; data on a SYN (TCP Fast Open) follows it.
            data_seq = seq.wrapping_add(1);
            if ack {
                tcp.syn_ack = true;
            } else {
                tcp.syn = true;
            }
            tcp.half[dir].start(data_seq);
        }
        let handshake = tcp.syn && tcp.syn_ack;
        if !payload.is_empty() {
            if !tcp.half[dir].started() && midstream {
                tcp.half[dir].start(seq);
            }
            // Data on a SYN (TCP Fast Open) is reassembled before the handshake completes.
            if handshake || midstream || syn {
                tcp.half[dir].segment(data_seq, payload, r, &mut chunks);
            }
        }
        if flags & tcpf::FIN != 0 {
            tcp.fin[dir] = true;
            tcp.half[dir].flush(r, &mut chunks);
        }
        // The in-order bytes for packet signatures (only needed when there are any).
        let mut arrived = Vec::new();
        for c in chunks.iter().filter(|_| detecting) {
            if let Chunk::Data(d) = c {
                arrived.extend_from_slice(d);
            }
        }
        tcp.unacked[dir].extend(chunks);
        let mut released = Vec::new();
        if flags & tcpf::RST != 0 {
            tcp.rst = true;
            for d in 0..2 {
                let mut rest = Vec::new();
                tcp.half[d].flush(r, &mut rest);
                tcp.unacked[d].extend(rest);
                released.extend(tcp.unacked[d].drain(..).map(|c| (as_dir(d), c)));
            }
            return (arrived, released);
        }
        // This direction's data the peer acknowledged earlier is handed over now; the other
        // direction's data this packet acknowledges is handed over now only when the packet
        // carries none of its own (Suricata's IDS-mode timing, seen in its test captures).
        release_acked(tcp, dir, &mut released, &as_dir);
        let other = 1 - dir;
        if ack {
            if let Some(upto) = tcp.half[other].offset_of(ackn) {
                tcp.acked[other] = tcp.acked[other].max(upto);
            }
            if payload.is_empty() {
                release_acked(tcp, other, &mut released, &as_dir);
            }
        }
        // Server data waits until the client's side has given the app layer something, so
        // detection sees the client speak first when it did (as Suricata holds it back); a
        // reset or the end of the flow hands everything over.
        if released.iter().any(|(d, _)| *d == Dir::ToServer) {
            tcp.client_spoke = true;
        }
        if !tcp.client_spoke {
            let server = if client == 0 { 1 } else { 0 };
            for (_, c) in released.drain(..).rev() {
                tcp.unacked[server].push_front(c);
            }
        }
        (arrived, released)
    }

    fn write_outputs(
        &mut self,
        key: &FlowKey,
        ts_ns: u64,
        outputs: Vec<(Dir, Output)>,
    ) -> anyhow::Result<()> {
        let Some(flow) = self.flows.get(key) else {
            return Ok(());
        };
        let mut records = Vec::new();
        for (_, out) in &outputs {
            for r in &out.records {
                records.push(app_record(
                    flow,
                    r,
                    ts_ns,
                    self.pcap_cnt,
                    self.cfg.iface.as_deref(),
                ));
            }
            for a in &out.anomalies {
                records.push(anomaly_record(
                    flow,
                    a,
                    ts_ns,
                    self.pcap_cnt,
                    self.cfg.iface.as_deref(),
                ));
            }
        }
        for r in &records {
            self.eve.write(r)?;
        }
        Ok(())
    }

    /// Ends flows idle past their timeout at `now_ns` when no packet has done so for a second
    /// (the live agent calls it when no packets arrive).
    pub fn tick(&mut self, now_ns: u64) -> anyhow::Result<()> {
        if self.sweep_due(now_ns) {
            self.sweep(now_ns)?;
            self.last_sweep_ns = now_ns;
        }
        Ok(())
    }

    /// A second has passed since the last sweep. Saturating: a capture's timestamps can be
    /// anything up to `u64::MAX` (a pcapng timestamp in units beyond what fits in ns).
    fn sweep_due(&self, now_ns: u64) -> bool {
        now_ns >= self.last_sweep_ns.saturating_add(1_000_000_000)
    }

    /// Ends flows idle past their timeout at capture time `now_ns`.
    fn sweep(&mut self, now_ns: u64) -> anyhow::Result<()> {
        let mut ended: Vec<(u64, FlowKey)> = self
            .flows
            .iter()
            .filter(|(k, f)| {
                flows::expiry(k, &f.stats, now_ns, &self.cfg.timeouts) == Some(Reason::Timeout)
            })
            .map(|(k, f)| (f.stats.first_ns, *k))
            .collect();
        // In the order the flows began, as at shutdown: the table's hash order is random per
        // run, and the same capture should give the same log.
        ended.sort_unstable();
        for (_, key) in ended {
            self.end_flow(&key, Reason::Timeout, now_ns)?;
        }
        Ok(())
    }

    /// Ends one flow: flushes its streams and parser, then writes its flow record.
    fn end_flow(&mut self, key: &FlowKey, reason: Reason, now_ns: u64) -> anyhow::Result<()> {
        let Some(mut flow) = self.flows.remove(key) else {
            return Ok(());
        };
        let mut outputs = Vec::new();
        let client = usize::from(flow.stats.client_dir);
        let mut flushed = Vec::new();
        if let Some(tcp) = flow.tcp.as_mut() {
            for d in 0..2 {
                let mut chunks: Vec<Chunk> = tcp.unacked[d].drain(..).collect();
                tcp.half[d].flush(&mut self.reassembly, &mut chunks);
                let dir = if d == client {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                };
                flushed.extend(chunks.into_iter().map(|c| (dir, c)));
            }
        }
        for (dir, c) in flushed {
            feed_app(&mut flow, dir, c, &mut outputs);
        }
        if let App::Active(parser) = &mut flow.app {
            let mut out = Output::new(flow.inspect);
            parser.finish(&mut out);
            outputs.push((Dir::ToServer, out));
        }
        let ts = flow.stats.last_ns.max(now_ns.min(flow.stats.last_ns));
        // Detection on what the flush released runs with the flow back in the table.
        let established = flow.stats.pkts[0] > 0 && flow.stats.pkts[1] > 0
            || flow.tcp.as_ref().is_some_and(|t| t.syn && t.syn_ack);
        let fkey = flow.key;
        self.flows.insert(fkey, flow);
        let alerts = self.detect_app(&fkey, &outputs, ts, established, None, None);
        let Some(flow) = self.flows.remove(&fkey) else {
            return Ok(());
        };
        let iface = self.cfg.iface.clone();
        let mut records = Vec::new();
        for (_, out) in &outputs {
            for r in &out.records {
                records.push(app_record(&flow, r, ts, self.pcap_cnt, iface.as_deref()));
            }
            for a in &out.anomalies {
                records.push(anomaly_record(
                    &flow,
                    a,
                    ts,
                    self.pcap_cnt,
                    iface.as_deref(),
                ));
            }
        }
        let mut flow = flow;
        flow.alerted |= !alerts.is_empty();
        self.stats.alerts += alerts.len() as u64;
        records.extend(alerts);
        if self.cfg.flow_records {
            records.push(flow_record(&flow, reason, iface.as_deref()));
        }
        for r in &records {
            self.eve.write(r)?;
        }
        Ok(())
    }

    /// Ends every flow (`reason: shutdown`), in the order they were created, and flushes.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        let mut keys: Vec<(u64, FlowKey)> = self
            .flows
            .values()
            .map(|f| (f.stats.first_ns, f.key))
            .collect();
        keys.sort();
        for (_, key) in keys {
            self.end_flow(&key, Reason::Shutdown, 0)?;
        }
        self.eve.flush()
    }
}

/// Moves `d`'s unacknowledged chunks that the peer has acknowledged to `out`, splitting a
/// chunk that is acknowledged in part.
fn release_acked(
    tcp: &mut Tcp,
    d: usize,
    out: &mut Vec<(Dir, Chunk)>,
    as_dir: &dyn Fn(usize) -> Dir,
) {
    let upto = tcp.acked[d];
    let mut at = tcp.half[d].delivered() - tcp.unacked[d].iter().map(chunk_len).sum::<u64>();
    while let Some(front) = tcp.unacked[d].front_mut() {
        let len = chunk_len(front);
        if at + len <= upto {
            at += len;
            if let Some(c) = tcp.unacked[d].pop_front() {
                out.push((as_dir(d), c));
            }
            continue;
        }
        if let Chunk::Data(bytes) = front {
            let n = upto.saturating_sub(at) as usize;
            if n > 0 && n < bytes.len() {
                let head: Vec<u8> = bytes.drain(..n).collect();
                out.push((as_dir(d), Chunk::Data(head)));
            }
        }
        break;
    }
}

fn chunk_len(c: &Chunk) -> u64 {
    match c {
        Chunk::Data(d) => d.len() as u64,
        Chunk::Gap(n) => *n,
    }
}

/// Hands reassembled bytes (or a gap) to the flow's parser, detecting the protocol first.
fn feed_app(flow: &mut Flow, dir: Dir, chunk: Chunk, outputs: &mut Vec<(Dir, Output)>) {
    let idx = match dir {
        Dir::ToServer => 0,
        Dir::ToClient => 1,
    };
    match (&mut flow.app, chunk) {
        (App::Active(parser), Chunk::Data(data)) => {
            let mut out = Output::new(flow.inspect);
            parser.parse(dir, &data, &mut out);
            let switch = out.switch_protocol.take();
            outputs.push((dir, out));
            if let Some(left) = switch {
                flow.app = App::Probing([Vec::new(), Vec::new()]);
                for (d, bytes) in [
                    (Dir::ToServer, left.to_server),
                    (Dir::ToClient, left.to_client),
                ] {
                    if !bytes.is_empty() {
                        feed_app(flow, d, Chunk::Data(bytes), outputs);
                    }
                }
            }
        }
        (App::Active(parser), Chunk::Gap(len)) => {
            let mut out = Output::new(flow.inspect);
            parser.gap(dir, usize::try_from(len).unwrap_or(usize::MAX), &mut out);
            outputs.push((dir, out));
        }
        (App::Probing(seen), Chunk::Data(data)) => {
            if dir == Dir::ToServer
                && seen[0].is_empty()
                && seen[1].is_empty()
                && data.starts_with(b"HTTP/1.")
            {
                // Picked up mid-stream with the server speaking first: the side we took for
                // the client is the server. Turn the flow around, as Suricata does.
                flow.stats.client_dir ^= 1;
                return feed_app(flow, Dir::ToClient, Chunk::Data(data), outputs);
            }
            let first = seen[0].is_empty() && seen[1].is_empty();
            let dns_port = flow.key.port_a == 53 || flow.key.port_b == 53;
            if first && flow.key.proto == ipproto::UDP && dns_port {
                if let Some(real) = applayer::dns::probe_dir(&data, false) {
                    if real != dir {
                        // The first datagram seen is a response: its sender is the server.
                        flow.stats.client_dir ^= 1;
                        return feed_app(flow, real, Chunk::Data(data), outputs);
                    }
                }
            }
            seen[idx].extend_from_slice(&data);
            let ports = (flow.key.port_a, flow.key.port_b);
            if let Some(parser) = probe(flow.key.proto, &seen[idx], ports) {
                let buffered = std::mem::take(seen);
                flow.app_proto.get_or_insert(parser.name());
                flow.app = App::Active(parser);
                // The detecting direction first, then what the other side already sent.
                let other = 1 - idx;
                let order = [(idx, dir), (other, dir.flip())];
                for (i, d) in order {
                    if !buffered[i].is_empty() {
                        feed_app(flow, d, Chunk::Data(buffered[i].clone()), outputs);
                    }
                }
            } else if seen[idx].len() > PROBE_LIMIT
                || (!seen[0].is_empty() && !seen[1].is_empty() && flow.key.proto == ipproto::UDP)
            {
                flow.app = App::Failed;
                flow.app_proto.get_or_insert("failed");
            }
        }
        (App::Probing(_), Chunk::Gap(_)) => {
            flow.app = App::Failed;
            flow.app_proto.get_or_insert("failed");
        }
        (App::Failed | App::None, _) => {}
    }
}

fn header(
    flow: &Flow,
    event_type: &str,
    ts_ns: u64,
    pcap_cnt: u64,
    iface: Option<&str>,
    dir: Dir,
) -> Map<String, Value> {
    let o = flows::orient(&flow.key, &flow.stats);
    let (src, sport, dst, dport) = match dir {
        Dir::ToServer => (o.src, o.sport, o.dst, o.dport),
        Dir::ToClient => (o.dst, o.dport, o.src, o.sport),
    };
    let mut r = Map::new();
    r.insert("timestamp".into(), json!(eve::format_timestamp(ts_ns)));
    r.insert("flow_id".into(), json!(flow.id));
    if let Some(i) = iface {
        r.insert("in_iface".into(), json!(i));
    }
    r.insert("pcap_cnt".into(), json!(pcap_cnt));
    r.insert("event_type".into(), json!(event_type));
    if flow.key.vlan != 0 {
        r.insert("vlan".into(), json!([flow.key.vlan]));
    }
    r.insert("src_ip".into(), json!(src.to_string()));
    if matches!(flow.key.proto, ipproto::TCP | ipproto::UDP) {
        r.insert("src_port".into(), json!(sport));
    }
    r.insert("dest_ip".into(), json!(dst.to_string()));
    if matches!(flow.key.proto, ipproto::TCP | ipproto::UDP) {
        r.insert("dest_port".into(), json!(dport));
    }
    r.insert("proto".into(), json!(eve::proto_name(flow.key.proto)));
    r.insert("pkt_src".into(), json!("wire/pcap"));
    r
}

/// The bytes an alert may carry: what the rule inspected and the frame that triggered it.
#[derive(Clone, Copy, Default)]
struct AlertBytes<'a> {
    payload: Option<&'a [u8]>,
    packet: Option<&'a [u8]>,
}

#[expect(
    clippy::too_many_arguments,
    reason = "the record's parts, each computed once by the caller"
)]
fn alert_record(
    flow: &Flow,
    sig: &detect::sig::Signature,
    hit: &Hit,
    ts_ns: u64,
    pcap_cnt: u64,
    iface: Option<&str>,
    to_server: bool,
    extra: (crate::config::AlertsSection, AlertBytes<'_>),
) -> Value {
    let dir = if to_server {
        Dir::ToServer
    } else {
        Dir::ToClient
    };
    let mut r = header(flow, "alert", ts_ns, pcap_cnt, iface, dir);
    let tx = hit.tx_id.and(flow.tx.as_ref());
    if let Some(id) = tx.map(|t| t.0).or(hit.tx_id) {
        r.insert("tx_id".into(), json!(id));
    }
    r.insert("alert".into(), detect::alert_object(sig));
    if let Some(t) = flow.detect.traffic() {
        r.insert("traffic".into(), t);
    }
    if let Some(app) = flow.app_proto {
        r.insert("app_proto".into(), json!(app));
        let obj = match tx {
            Some((_, o)) => Some(o.clone()),
            None if hit.tx_id.is_some() => alert_app_object(app, &flow.detect),
            None => None,
        };
        if let Some(obj) = obj {
            r.insert(app.into(), obj);
        }
    }
    let (want, bytes) = extra;
    if let Some(payload) = bytes
        .payload
        .filter(|_| want.payload || want.payload_printable)
    {
        use base64::Engine as _;
        if want.payload {
            r.insert(
                "payload".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(payload)),
            );
        }
        if want.payload_printable {
            let text: String = payload
                .iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            r.insert("payload_printable".into(), json!(text));
        }
        r.insert("stream".into(), json!(u8::from(flow.tcp.is_some())));
    }
    if let Some(packet) = bytes.packet.filter(|_| want.packet) {
        use base64::Engine as _;
        r.insert(
            "packet".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(packet)),
        );
        r.insert("packet_info".into(), json!({"linktype": 1}));
    }
    let o = flows::orient(&flow.key, &flow.stats);
    let s = &flow.stats;
    r.insert(
        "flow".into(),
        json!({
            "pkts_toserver": s.pkts[o.ts],
            "pkts_toclient": s.pkts[o.ts ^ 1],
            "bytes_toserver": s.bytes[o.ts],
            "bytes_toclient": s.bytes[o.ts ^ 1],
            "start": eve::format_timestamp(s.first_ns),
        }),
    );
    Value::Object(r)
}

/// The protocol object of an alert, from the transaction's buffers seen so far.
fn alert_app_object(app: &str, st: &FlowState) -> Option<Value> {
    let text = |ts: bool, n: &str| {
        st.buffer(ts, n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    match app {
        "http" => {
            put("hostname", text(true, "http.host"));
            put("url", text(true, "http.uri.raw"));
            put("http_user_agent", text(true, "http.user_agent"));
            put("http_method", text(true, "http.method"));
            put("protocol", text(true, "http.protocol"));
            if let Some(code) = text(false, "http.stat_code").and_then(|c| c.parse::<u16>().ok()) {
                m.insert("status".into(), json!(code));
            }
        }
        "tls" => {
            put("sni", text(true, "tls.sni"));
            put("subject", text(false, "tls.cert_subject"));
            put("issuerdn", text(false, "tls.cert_issuer"));
        }
        "ssh" => {
            for (ts, side) in [(true, "client"), (false, "server")] {
                let mut o = Map::new();
                if let Some(v) = text(ts, "ssh.proto") {
                    o.insert("proto_version".into(), json!(v));
                }
                if let Some(v) = text(ts, "ssh.software") {
                    o.insert("software_version".into(), json!(v));
                }
                if !o.is_empty() {
                    m.insert(side.into(), Value::Object(o));
                }
            }
        }
        "dns" => {
            if let Some(q) = text(true, "dns.query") {
                m.insert("queries".into(), json!([{ "rrname": q }]));
            }
        }
        _ => {}
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn app_record(
    flow: &Flow,
    rec: &AppRecord,
    ts_ns: u64,
    pcap_cnt: u64,
    iface: Option<&str>,
) -> Value {
    // DNS records follow the packet (a response goes server to client); the others are
    // written from the client's side, as Suricata does.
    let dir = if rec.event_type == "dns" {
        rec.dir
    } else {
        Dir::ToServer
    };
    let mut r = header(flow, rec.event_type, ts_ns, pcap_cnt, iface, dir);
    let mut object = rec.object.clone();
    if let Value::Object(m) = &mut object {
        if let Some(tx) = m.remove("__tx_id") {
            r.insert("tx_id".into(), tx);
        }
    }
    r.insert(rec.event_type.into(), object);
    Value::Object(r)
}

fn anomaly_record(
    flow: &Flow,
    event: &str,
    ts_ns: u64,
    pcap_cnt: u64,
    iface: Option<&str>,
) -> Value {
    let mut r = header(flow, "anomaly", ts_ns, pcap_cnt, iface, Dir::ToServer);
    let app_proto = flow.app_proto.unwrap_or("unknown");
    r.insert("app_proto".into(), json!(app_proto));
    r.insert(
        "anomaly".into(),
        json!({"app_proto": app_proto, "type": "applayer", "event": event, "layer": "proto_parser"}),
    );
    Value::Object(r)
}

fn tcp_state(tcp: &Tcp) -> &'static str {
    match (tcp.rst, tcp.fin[0], tcp.fin[1], tcp.syn, tcp.syn_ack) {
        (true, ..) | (_, true, true, ..) => "closed",
        (_, true, false, ..) | (_, false, true, ..) => "fin_wait1",
        (_, _, _, true, true) => "established",
        (_, _, _, true, false) => "syn_sent",
        (_, _, _, false, true) => "syn_recv",
        _ => "established",
    }
}

fn flow_record(flow: &Flow, reason: Reason, iface: Option<&str>) -> Value {
    let mut v = flows::flow_record(
        &flow.key,
        &flow.stats,
        reason,
        &Clock { offset_ns: 0 },
        iface,
    );
    let Value::Object(m) = &mut v else { return v };
    m.insert("flow_id".into(), json!(flow.id));
    if let Some(Value::Object(f)) = m.get_mut("flow") {
        f.insert("alerted".into(), json!(flow.alerted));
    }
    if let Some(t) = flow.detect.traffic() {
        m.insert("traffic".into(), t);
    }
    if let Some(app) = flow.app_proto {
        // After `proto`, where Suricata writes it.
        let mut out = Map::new();
        for (k, val) in std::mem::take(m) {
            let after_proto = k == "proto";
            out.insert(k, val);
            if after_proto {
                out.insert("app_proto".into(), json!(app));
            }
        }
        *m = out;
    }
    if let (Some(tcp), Some(Value::Object(t))) = (&flow.tcp, m.get_mut("tcp")) {
        t.insert("state".into(), json!(tcp_state(tcp)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame from 192.0.2.1:1000 to 192.0.2.2:2000.
    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        let total = (20 + 8 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        // id, flags, TTL, protocol, checksum (unchecked), addresses
        f.extend_from_slice(&[0, 0, 0, 0, 64, ipproto::UDP, 0, 0]);
        f.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        f.extend_from_slice(&1000u16.to_be_bytes());
        f.extend_from_slice(&2000u16.to_be_bytes());
        f.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn timestamps_at_the_end_of_time_do_not_overflow() {
        // Found by the pcap_reader fuzz target: a pcapng timestamp that saturates to u64::MAX
        // ns made the next packet's sweep check overflow.
        let eve = EveWriter::from_writer(Box::new(std::io::sink()));
        let mut p = Pipeline::new(InspectConfig::default(), eve);
        let frame = udp_frame(b"x");
        p.packet(u64::MAX, 1, &frame).expect("first packet");
        p.packet(u64::MAX, 1, &frame).expect("second packet");
        p.tick(u64::MAX).expect("tick");
        p.finish().expect("finish");
        assert_eq!(p.stats.packets, 2);
        assert_eq!(p.stats.flows, 1);
    }
}
