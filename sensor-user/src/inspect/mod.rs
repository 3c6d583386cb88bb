//! The deep-inspection pipeline shared by `precinct replay` (capture files) and the live
//! agent. This module orchestrates the stages, each in its own module with its own tests:
//!
//! 1. [`decode`]: link layer, the shared header parser, tunnels, fragments;
//! 2. [`flow`]: the flow table, keyed like the kernel's flow map, with timeouts and a bound;
//! 3. [`tcp`]: TCP session state and reassembly, and when bytes reach the application layer;
//! 4. [`crate::applayer::Session`]: protocol detection and the parsers;
//! 5. [`crate::detect::flow`]: packet and app-layer rules, and what matched;
//! 6. [`crate::eve`]: the records, written through one [`EveWriter`].

pub mod decode;
pub mod defrag;
pub mod flow;
pub mod tcp;
pub mod tunnel;

use std::{collections::HashMap, sync::Arc};

use sensor_common::{
    flow::FlowKey,
    parse::{ipproto, Fragment, Parsed},
};

pub use decode::decode;

use crate::{
    applayer::{Chunk, Dir, Output},
    detect::{
        self,
        flow::{Detection, Match},
        PacketInfo, RuleSet,
    },
    eve::{
        flow::{flow_record, Inspected},
        protocol::{anomaly_record, protocol_record, FlowView},
        EveWriter, Traffic,
    },
    flows::{self, Clock, Reason, Timeouts},
};
use decode::{Decoder, Skip};
use flow::{Flow, FlowTable, NewFlow};
use tcp::stream::{Reassembly, StreamLimits, StreamStats};

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

/// The pipeline: feed it packets, it writes EVE records.
pub struct Pipeline {
    cfg: InspectConfig,
    decoder: Decoder,
    flows: FlowTable,
    reassembly: Reassembly,
    detection: Detection,
    eve: EveWriter,
    last_sweep_ns: u64,
    pcap_cnt: u64,
    /// Flow id for a flow the current packet creates (see [`Pipeline::packet_with_flow_id`]).
    flow_id_hint: Option<u64>,
    /// Counters so far.
    pub stats: InspectStats,
}

/// What every record of `flow` starts from.
fn view<'a>(flow: &'a Flow, iface: Option<&'a str>, pcap_cnt: u64) -> FlowView<'a> {
    FlowView {
        key: &flow.key,
        stats: &flow.stats,
        id: flow.id,
        iface,
        pcap_cnt,
    }
}

/// The packet context of app-layer rules on `flow`: the client's side, no packet fields.
fn app_context(flow: &Flow, ts_ns: u64, established: bool) -> PacketInfo<'static> {
    let o = flows::orient(&flow.key, &flow.stats);
    PacketInfo {
        ts_ns,
        src: o.src,
        sport: o.sport,
        dst: o.dst,
        dport: o.dport,
        proto: flow.key.proto,
        ttl: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        payload: &[],
        dsize: 0,
        to_server: true,
        established,
        app_proto: flow.app.proto(),
        flow_id: flow.id,
    }
}

/// Writes the protocol and anomaly records `outputs` hold, then the alert records of
/// `matches`; returns how many alerts were written.
#[expect(
    clippy::too_many_arguments,
    reason = "the stage outputs and where they go, each computed once by the caller"
)]
fn write_records(
    eve: &mut EveWriter,
    detection: &Detection,
    cfg: &InspectConfig,
    flow: &Flow,
    pcap_cnt: u64,
    ts_ns: u64,
    outputs: &[(Dir, Output)],
    matches: Vec<Match<'_>>,
) -> anyhow::Result<u64> {
    let v = view(flow, cfg.iface.as_deref(), pcap_cnt);
    for (_, out) in outputs {
        for r in &out.records {
            eve.write(&protocol_record(&v, r, ts_ns))?;
        }
        for a in &out.anomalies {
            eve.write(&anomaly_record(&v, flow.app.proto(), a, ts_ns))?;
        }
    }
    let n = matches.len() as u64;
    let (app, stream) = (flow.app.proto(), flow.tcp.is_some());
    for m in matches {
        let Some(a) = detection.record(m, &v, &flow.detect, app, ts_ns, cfg.alerts, stream) else {
            continue;
        };
        eve.write(&a)?;
    }
    Ok(n)
}

impl Pipeline {
    /// A pipeline writing to `eve`.
    pub fn new(cfg: InspectConfig, eve: EveWriter) -> Pipeline {
        Pipeline {
            reassembly: Reassembly::new(cfg.stream, cfg.stream_memcap),
            flows: FlowTable::new(cfg.max_flows),
            cfg,
            decoder: Decoder::new(),
            detection: Detection::new(),
            eve,
            last_sweep_ns: 0,
            pcap_cnt: 0,
            flow_id_hint: None,
            stats: InspectStats::default(),
        }
    }

    /// Inspects with these signatures from the next packet on; returns the set it replaces.
    /// Flows and their detection state stay: flowbits and transactions carry over, and what
    /// already alerted is remembered by rule identity, so a rule in both sets does not alert
    /// twice for one transaction (see [`detect::FlowState`]).
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) -> Option<Arc<RuleSet>> {
        self.detection.set_rules(rules)
    }

    /// Fragment reassembly counters.
    pub fn defrag_stats(&self) -> defrag::DefragStats {
        self.decoder.defrag_stats()
    }

    /// Detection work counters.
    pub fn detect_stats(&self) -> detect::DetectStats {
        self.detection.stats()
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
    pub fn packet(&mut self, ts_ns: u64, linktype: u32, frame: &[u8]) -> anyhow::Result<()> {
        self.pcap_cnt += 1;
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        self.tick(ts_ns)?;
        let d = match self.decoder.decode(linktype, frame, ts_ns) {
            Ok(d) => d,
            Err(Skip::UnsupportedLink) => {
                self.stats.unsupported_link += 1;
                return Ok(());
            }
            Err(Skip::Undecoded(why)) => {
                *self.stats.undecoded.entry(why).or_default() += 1;
                return Ok(());
            }
            Err(Skip::Held) => return Ok(()),
        };
        let (p, data) = (&d.p, d.data.as_ref());
        let (key, dir) = FlowKey::from_parsed(p, u32::from(d.depth));
        let new = NewFlow {
            ts_ns,
            id: self.flow_id_hint.filter(|_| d.depth == 0),
            has_transport: p.fragment != Fragment::Later,
            inspect: self.detection.is_on(),
        };
        let Some((flow, created)) = self.flows.get_or_create(key, new) else {
            self.stats.flows_over_limit += 1;
            return Ok(());
        };
        self.stats.flows += u64::from(created);
        flow.stats
            .account(p, dir, 1, data.len() as u64, ts_ns.max(1));
        if p.fragment == Fragment::Later {
            return Ok(());
        }
        let end = usize::from(p.ip_end).min(data.len());
        let payload = &data[usize::from(p.payload_off).min(end)..end];
        let app_dir = if usize::from(flow.stats.client_dir) == dir {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let mut outputs: Vec<(Dir, Output)> = Vec::new();
        // What packet signatures inspect: for a reassembled TCP stream the in-order bytes
        // this packet made available, otherwise the packet's payload. Raw packet inspection
        // when the segment added nothing in order (data on a SYN before the handshake,
        // retransmissions, early segments).
        let mut arrived = Vec::new();
        match (key.proto, flow.tcp.as_mut()) {
            (ipproto::TCP, Some(tcp)) => {
                let client = usize::from(flow.stats.client_dir);
                let (midstream, want) = (self.cfg.midstream, self.detection.is_on());
                let delivery = tcp.segment(
                    p,
                    data,
                    payload,
                    dir,
                    client,
                    midstream,
                    want,
                    &mut self.reassembly,
                );
                arrived = delivery.arrived;
                for (chunk_dir, chunk) in delivery.released {
                    let cd = &mut flow.stats.client_dir;
                    flow.app.feed(&flow.key, cd, chunk_dir, chunk, &mut outputs);
                }
            }
            (ipproto::UDP, _) if !payload.is_empty() => {
                let chunk = Chunk::Data(payload.to_vec());
                let cd = &mut flow.stats.client_dir;
                flow.app.feed(&flow.key, cd, app_dir, chunk, &mut outputs);
            }
            _ => {}
        }
        let inspected = if arrived.is_empty() {
            payload
        } else {
            &arrived
        };
        let packet = (p, dir, inspected, frame, payload.len());
        let matches = detect_packet(
            &mut self.detection,
            self.cfg.midstream,
            flow,
            packet,
            &outputs,
            ts_ns,
        );
        flow.detect.alerted |= !matches.is_empty();
        let n = write_records(
            &mut self.eve,
            &self.detection,
            &self.cfg,
            flow,
            self.pcap_cnt,
            ts_ns,
            &outputs,
            matches,
        )?;
        self.stats.alerts += n;
        Ok(())
    }
}

/// Runs the signatures on a packet (its headers, direction index, inspected bytes, frame and
/// payload size) and on the app-layer buffers it produced.
fn detect_packet<'a>(
    detection: &mut Detection,
    midstream: bool,
    flow: &mut Flow,
    (p, dir, inspected, frame, dsize): (&Parsed, usize, &'a [u8], &'a [u8], usize),
    outputs: &[(Dir, Output)],
    ts_ns: u64,
) -> Vec<Match<'a>> {
    if !detection.is_on() {
        return Vec::new();
    }
    // After the app layer, which may have turned the flow around.
    let to_server = usize::from(flow.stats.client_dir) == dir;
    let established = match &flow.tcp {
        Some(t) => t.established(midstream),
        None => flow.stats.pkts[0] > 0 && flow.stats.pkts[1] > 0,
    };
    let has_ports = matches!(flow.key.proto, ipproto::TCP | ipproto::UDP);
    let info = PacketInfo {
        ts_ns,
        src: flows::ip_of(p.family, &p.src),
        sport: if has_ports { p.sport } else { 0 },
        dst: flows::ip_of(p.family, &p.dst),
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
        app_proto: flow.app.proto(),
        flow_id: flow.id,
    };
    let mut matches = detection.packet(&mut flow.detect, &info, frame);
    let pkt_dir = if to_server {
        Dir::ToServer
    } else {
        Dir::ToClient
    };
    let base = app_context(flow, ts_ns, established);
    matches.extend(detection.app(
        &mut flow.detect,
        &base,
        outputs,
        Some((pkt_dir, inspected)),
        Some(frame),
    ));
    matches
}

impl Pipeline {
    /// Ends flows idle past their timeout at `now_ns` when no packet has done so for a second
    /// (the live agent calls it when no packets arrive).
    pub fn tick(&mut self, now_ns: u64) -> anyhow::Result<()> {
        // Saturating: a capture's timestamps can be anything up to `u64::MAX` (a pcapng
        // timestamp in units beyond what fits in ns).
        if now_ns >= self.last_sweep_ns.saturating_add(1_000_000_000) {
            for key in self.flows.timed_out(now_ns, &self.cfg.timeouts) {
                self.end_flow(&key, Reason::Timeout)?;
            }
            self.last_sweep_ns = now_ns;
        }
        Ok(())
    }

    /// Ends one flow: flushes its streams and parser, then writes its flow record.
    fn end_flow(&mut self, key: &FlowKey, reason: Reason) -> anyhow::Result<()> {
        let Some(mut flow) = self.flows.remove(key) else {
            return Ok(());
        };
        let mut outputs = Vec::new();
        let client = usize::from(flow.stats.client_dir);
        if let Some(tcp) = flow.tcp.as_mut() {
            for (dir, c) in tcp.flush(client, &mut self.reassembly) {
                let cd = &mut flow.stats.client_dir;
                flow.app.feed(&flow.key, cd, dir, c, &mut outputs);
            }
        }
        flow.app.finish(&mut outputs);
        let ts = flow.stats.last_ns;
        let established = flow.stats.pkts[0] > 0 && flow.stats.pkts[1] > 0
            || flow.tcp.as_ref().is_some_and(|t| t.handshake_seen());
        let base = app_context(&flow, ts, established);
        let matches = self
            .detection
            .app(&mut flow.detect, &base, &outputs, None, None);
        flow.detect.alerted |= !matches.is_empty();
        let n = write_records(
            &mut self.eve,
            &self.detection,
            &self.cfg,
            &flow,
            self.pcap_cnt,
            ts,
            &outputs,
            matches,
        )?;
        self.stats.alerts += n;
        if self.cfg.flow_records {
            let inspected = Inspected {
                flow_id: Some(flow.id),
                app_proto: flow.app.proto(),
                alerted: flow.detect.alerted,
                traffic: Traffic::from_flowbits(flow.detect.state.flowbits()),
                tcp_state: flow.tcp.as_ref().map(tcp::Session::state),
            };
            let clock = Clock { offset_ns: 0 };
            let iface = self.cfg.iface.as_deref();
            let record = flow_record(&flow.key, &flow.stats, reason, &clock, iface, inspected);
            self.eve.write(&record)?;
        }
        Ok(())
    }

    /// Ends every flow (`reason: shutdown`), in the order they were created, and flushes.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        for key in self.flows.all() {
            self.end_flow(&key, Reason::Shutdown)?;
        }
        self.eve.flush()
    }
}

#[cfg(test)]
mod tests;
