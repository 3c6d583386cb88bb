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
mod settings;
pub mod tcp;
pub mod tunnel;

use std::sync::Arc;

use sensor_common::{
    flow::FlowKey,
    parse::{ipproto, Fragment},
};

pub use decode::decode;
pub use settings::{EncryptionHandling, InspectConfig, InspectStats};

use crate::{
    applayer::{
        dns::{self, DnsVersion},
        AppRecord, Chunk, Dir, Output,
    },
    detect::{
        self,
        flow::{Detection, Match, Packet},
        RuleSet,
    },
    eve::{
        flow::{flow_record, Inspected},
        protocol::{anomaly_record, protocol_record, FlowView},
        EveWriter, Traffic,
    },
    flows::{Clock, Reason},
};
use decode::{Decoder, Skip};
use flow::{Flow, FlowTable, NewFlow};
use tcp::stream::{Reassembly, StreamStats};

/// The pipeline: feed it packets, it writes EVE records.
pub struct Pipeline {
    cfg: InspectConfig,
    decoder: Decoder,
    flows: FlowTable,
    reassembly: Reassembly,
    /// The last delivery's released chunks, kept to reuse the allocation.
    released: Vec<(Dir, Chunk)>,
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
            if r.event_type == "dns" && cfg.dns_version == DnsVersion::V2 {
                for object in dns::v2_objects(&r.object) {
                    // Suricata 7 writes every version-2 record from the client's side.
                    let v2 = AppRecord {
                        object,
                        dir: Dir::ToServer,
                        ..r.clone()
                    };
                    eve.write(&protocol_record(&v, &v2, ts_ns))?;
                }
                continue;
            }
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
            released: Vec::new(),
            flows: FlowTable::new(cfg.max_flows),
            decoder: Decoder::with_limits(cfg.defrag),
            cfg,
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

    /// Flows tracked now.
    pub fn flows_tracked(&self) -> usize {
        self.flows.len()
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
        let (key, dir) = crate::flows::pipeline_key(p, d.depth);
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
        let end = (p.ip_end as usize).min(data.len());
        let payload = &data[(p.payload_off as usize).min(end)..end];
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
        let mut arrived = tcp::Arrived::Nothing;
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
                    &mut self.released,
                );
                arrived = delivery.arrived;
                let mut released = delivery.released;
                for (chunk_dir, chunk) in released.drain(..) {
                    let cd = &mut flow.stats.client_dir;
                    flow.app.feed(&flow.key, cd, chunk_dir, chunk, &mut outputs);
                }
                self.released = released;
            }
            (ipproto::UDP, _) if !payload.is_empty() => {
                let chunk = Chunk::Data(payload.to_vec());
                let cd = &mut flow.stats.client_dir;
                flow.app.feed(&flow.key, cd, app_dir, chunk, &mut outputs);
            }
            _ => {}
        }
        let inspected = match arrived.bytes(payload) {
            [] => payload,
            b => b,
        };
        let established = match &flow.tcp {
            Some(t) => t.established(self.cfg.midstream),
            None => flow.stats.pkts[0] > 0 && flow.stats.pkts[1] > 0,
        };
        let (facts, detect) = flow.facts(established);
        let packet = Packet {
            p,
            dir,
            inspected,
            frame,
            dsize: payload.len(),
            ts_ns,
        };
        if self.cfg.encryption == EncryptionHandling::Default
            && outputs.iter().any(|(_, o)| o.encrypted)
        {
            detect.payload_off = true;
        }
        let matches = self.detection.on_packet(detect, &facts, &packet, &outputs);
        flow.detect.alerted |= !matches.is_empty();
        if !matches.is_empty() {
            let app = &flow.app;
            flow.detect.tx_object(&outputs, |id| app.tx_object(id));
        }
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
            self.flows.reclaim();
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
        let (facts, detect) = flow.facts(established);
        let matches = self.detection.on_end(detect, &facts, &outputs, ts);
        flow.detect.alerted |= !matches.is_empty();
        if !matches.is_empty() {
            let app = &flow.app;
            flow.detect.tx_object(&outputs, |id| app.tx_object(id));
        }
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
                app_proto_orig: flow.app.orig(),
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
