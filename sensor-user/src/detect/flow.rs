//! Detection on the flows of the inspection pipeline: the rule set in use, packet rules on
//! each packet, app-layer rules on what the parsers produced for it, and the `alert` records
//! of what matched, with the transaction they matched on.

use std::sync::Arc;

use sensor_common::{
    flow::{FlowKey, FlowStats},
    parse::{ipproto, Parsed},
};
use serde_json::Value;

use super::{eval::DetectStats, sig::Signature, Detector, FlowState, Hit, PacketInfo, RuleSet};
use crate::{
    applayer::{Buffer, Dir, Output},
    eve::{
        alert::{
            alert_record, app_object_from_buffers, AlertBytes, AlertObject, AlertParts,
            AlertRecord, AlertsSection, Metadata,
        },
        protocol::FlowView,
        Traffic,
    },
    flows,
};

/// What detection keeps for one flow.
#[derive(Debug, Default)]
pub struct FlowDetect {
    /// Flowbits, transaction buffers, what already alerted.
    pub state: FlowState,
    /// An alert was written for the flow.
    pub alerted: bool,
    /// The app-layer transaction in progress, for alert records.
    pub tx: Option<TxInProgress>,
    /// The flow's session is encrypted and its payload is no longer inspected (set by the
    /// pipeline, see [`crate::inspect::EncryptionHandling`]).
    pub payload_off: bool,
}

/// A flow's app-layer transaction in progress ([`Output::tx`]).
#[derive(Debug)]
pub struct TxInProgress {
    id: u64,
    /// The parser that named it.
    proto: Option<&'static str>,
    /// Its EVE object, once an alert needed it ([`FlowDetect::tx_object`]); none again
    /// whenever a packet moves the transaction on.
    object: Option<Value>,
}

impl FlowDetect {
    /// Builds the EVE object of the transaction in progress if it is not built yet, for the
    /// alerts of the packet whose parser calls made `outputs`: from the record written for
    /// it when the packet completed it, else from `live` (the parser, which still holds it).
    pub fn tx_object(
        &mut self,
        outputs: &[(Dir, Output)],
        live: impl FnOnce(u64) -> Option<Value>,
    ) {
        let Some(tx @ TxInProgress { object: None, .. }) = &mut self.tx else {
            return;
        };
        let done = outputs
            .iter()
            .filter(|(_, o)| o.proto == tx.proto)
            .flat_map(|(_, o)| &o.records)
            .find(|r| r.tx_id == Some(tx.id))
            .map(|r| r.object.clone());
        tx.object = done.or_else(|| live(tx.id));
    }
}

/// The `alert` object of signature `s`.
pub fn alert_object(s: &Signature) -> AlertObject<'_> {
    AlertObject {
        action: "allowed",
        gid: s.gid,
        signature_id: s.sid,
        rev: s.rev,
        signature: &s.msg,
        category: s.category.as_deref().unwrap_or_default(),
        severity: s.severity,
        metadata: Metadata(&s.metadata),
    }
}

/// What detection needs to know of a flow besides its own state.
#[derive(Clone, Copy, Debug)]
pub struct FlowFacts<'a> {
    /// The flow's key.
    pub key: &'a FlowKey,
    /// Its counters and orientation.
    pub stats: &'a FlowStats,
    /// Its id (for `track by_flow`).
    pub id: u64,
    /// The application protocol detected so far.
    pub app_proto: Option<&'static str>,
    /// TCP handshake done (or picked up mid-stream), UDP seen both ways.
    pub established: bool,
    /// A TCP flow's stream sizes, client's then server's (`stream_size`).
    pub stream_size: Option<(u64, u64)>,
}

impl FlowFacts<'_> {
    /// The context of app-layer rules: the client's side, no packet fields.
    fn app_context(&self, ts_ns: u64) -> PacketInfo<'static> {
        let o = flows::orient(self.key, self.stats);
        PacketInfo {
            ts_ns,
            src: o.src,
            sport: o.sport,
            dst: o.dst,
            dport: o.dport,
            proto: self.key.proto,
            ttl: 0,
            tcp_flags: 0,
            icmp_type: 0,
            icmp_code: 0,
            payload: &[],
            dsize: 0,
            stream_size: self.stream_size,
            to_server: true,
            established: self.established,
            app_proto: self.app_proto,
            flow_id: self.id,
            inspect_payload: true,
        }
    }
}

/// One packet as detection sees it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Its headers.
    pub p: &'a Parsed,
    /// Its direction within the flow key.
    pub dir: usize,
    /// What packet rules inspect: the in-order stream bytes it made available, or its payload.
    pub inspected: &'a [u8],
    /// The whole frame.
    pub frame: &'a [u8],
    /// The payload size (`dsize`).
    pub dsize: usize,
    /// Capture time.
    pub ts_ns: u64,
}

/// A rule that matched on a flow, ready to become an alert record.
#[derive(Debug)]
pub struct Match<'a> {
    hit: Hit,
    to_server: bool,
    bytes: AlertBytes<'a>,
    /// Flowbit names when it matched: a later rule on the same packet may set more.
    traffic: Option<Traffic>,
    /// The buffers of its transaction, when that is not the last one the packet's data
    /// completed (pipelined requests): its alert shows this transaction, not the newest.
    tx_bufs: Option<Vec<(Dir, Buffer, Vec<u8>)>>,
}

/// The rules in use and the detector's state across flows (thresholds).
pub struct Detection {
    rules: Option<Arc<RuleSet>>,
    detector: Detector,
}

impl Default for Detection {
    fn default() -> Self {
        Detection::new()
    }
}

impl Detection {
    /// No rules yet.
    pub fn new() -> Detection {
        Detection {
            rules: None,
            detector: Detector::new(),
        }
    }

    /// Inspects with these signatures from now on; returns the set it replaces. An empty set
    /// is no set: no per-packet candidate search for nothing.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) -> Option<Arc<RuleSet>> {
        let rules = (!rules.signatures().is_empty()).then_some(rules);
        std::mem::replace(&mut self.rules, rules)
    }

    /// The rules in use, when there are any.
    pub fn rules(&self) -> Option<&Arc<RuleSet>> {
        self.rules.as_ref()
    }

    /// `true` when signatures are evaluated.
    pub fn is_on(&self) -> bool {
        self.rules.is_some()
    }

    /// Detection work counters.
    pub fn stats(&self) -> DetectStats {
        self.detector.stats
    }

    /// Packet rules on `pkt`, then app-layer rules on what the parsers produced for it.
    pub fn on_packet<'a>(
        &mut self,
        flow: &mut FlowDetect,
        facts: &FlowFacts<'_>,
        pkt: &Packet<'a>,
        outputs: &[(Dir, Output)],
    ) -> Vec<Match<'a>> {
        if !self.is_on() {
            return Vec::new();
        }
        let p = pkt.p;
        // After the app layer, which may have turned the flow around.
        let to_server = usize::from(facts.stats.client_dir) == pkt.dir;
        let has_ports = ipproto::has_ports(facts.key.proto);
        let info = PacketInfo {
            ts_ns: pkt.ts_ns,
            src: flows::ip_of(p.family, &p.src),
            sport: if has_ports { p.sport } else { 0 },
            dst: flows::ip_of(p.family, &p.dst),
            dport: if has_ports { p.dport } else { 0 },
            proto: p.proto,
            ttl: p.ttl,
            tcp_flags: p.tcp_flags,
            icmp_type: p.icmp_type,
            icmp_code: p.icmp_code,
            payload: pkt.inspected,
            dsize: pkt.dsize,
            stream_size: facts.stream_size,
            to_server,
            established: facts.established,
            app_proto: facts.app_proto,
            flow_id: facts.id,
            inspect_payload: !flow.payload_off,
        };
        let mut matches = self.packet(flow, &info, pkt.frame);
        let pkt_dir = if to_server {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let base = PacketInfo {
            inspect_payload: !flow.payload_off,
            ..facts.app_context(pkt.ts_ns)
        };
        let inspected = if flow.payload_off {
            &[][..]
        } else {
            pkt.inspected
        };
        matches.extend(self.app(
            flow,
            &base,
            outputs,
            Some((pkt_dir, inspected)),
            Some(pkt.frame),
        ));
        matches
    }

    /// App-layer rules on what the parsers produced when the flow ended.
    pub fn on_end(
        &mut self,
        flow: &mut FlowDetect,
        facts: &FlowFacts<'_>,
        outputs: &[(Dir, Output)],
        ts_ns: u64,
    ) -> Vec<Match<'static>> {
        let base = facts.app_context(ts_ns);
        self.app(flow, &base, outputs, None, None)
    }

    /// Packet rules on one packet (`p.payload` is what they inspect; `frame` the whole frame).
    pub fn packet<'a>(
        &mut self,
        flow: &mut FlowDetect,
        p: &PacketInfo<'a>,
        frame: &'a [u8],
    ) -> Vec<Match<'a>> {
        let Some(rules) = &self.rules else {
            return Vec::new();
        };
        let hits = self.detector.packet(rules, p, &mut flow.state);
        let traffic = (!hits.is_empty())
            .then(|| Traffic::from_flowbits(flow.state.flowbits()))
            .flatten();
        hits.into_iter()
            .map(|hit| Match {
                hit,
                to_server: p.to_server,
                bytes: AlertBytes {
                    payload: Some(p.payload),
                    packet: Some(frame),
                },
                traffic: traffic.clone(),
                tx_bufs: None,
            })
            .collect()
    }

    /// App-layer rules on the buffers `outputs` produced. The transaction's direction, not
    /// the packet that released the data (often the peer's acknowledgement), orients the
    /// match and the alert, as in Suricata. `base` is the flow's packet context with the
    /// client's addresses; `pkt` the packet's direction and payload, when a packet is behind
    /// the outputs (not at the end of the flow).
    pub fn app<'a>(
        &mut self,
        flow: &mut FlowDetect,
        base: &PacketInfo<'_>,
        outputs: &[(Dir, Output)],
        pkt: Option<(Dir, &'a [u8])>,
        frame: Option<&'a [u8]>,
    ) -> Vec<Match<'a>> {
        let Some(rules) = &self.rules else {
            return Vec::new();
        };
        let Some(app) = base.app_proto else {
            return Vec::new();
        };
        // Detection runs once the packet's data is parsed, so alerts carry the transaction
        // as it stands after the whole packet.
        if let Some((id, proto)) = outputs
            .iter()
            .rev()
            .find_map(|(_, o)| Some((o.tx?, o.proto)))
        {
            flow.tx = Some(TxInProgress {
                id,
                proto,
                object: None,
            });
        }
        let mut hits = Vec::new();
        for (_, out) in outputs {
            // Rules of the protocol that produced the buffers: inside a CONNECT tunnel that
            // is TLS, though the flow was detected as HTTP.
            let app = out.proto.unwrap_or(app);
            // Buffers of one call share a direction in practice; group them anyway.
            for dir in [Dir::ToServer, Dir::ToClient] {
                // Borrowed when all are of this direction (nearly always), else copied apart.
                let apart: Vec<_>;
                let bufs: &[(Dir, Buffer, Vec<u8>)] = if out.buffers.iter().all(|b| b.0 == dir) {
                    &out.buffers
                } else {
                    apart = out.buffers.iter().filter(|b| b.0 == dir).cloned().collect();
                    &apart
                };
                if bufs.is_empty() {
                    continue;
                }
                let to_server = dir == Dir::ToServer;
                let info = PacketInfo {
                    src: if to_server { base.src } else { base.dst },
                    sport: if to_server { base.sport } else { base.dport },
                    dst: if to_server { base.dst } else { base.src },
                    dport: if to_server { base.dport } else { base.sport },
                    payload: pkt
                        .filter(|(d, _)| *d == dir)
                        .map(|(_, p)| p)
                        .unwrap_or(&[]),
                    to_server,
                    app_proto: Some(app),
                    ..base.clone()
                };
                // One evaluation per transaction: pipelined requests in one segment are each
                // inspected, as Suricata inspects each transaction.
                let segments = split_by_tx(app, bufs);
                let last = segments.len().saturating_sub(1);
                for (i, segment) in segments.into_iter().enumerate() {
                    for h in self
                        .detector
                        .app(rules, &info, &mut flow.state, app, segment)
                    {
                        let own = (i < last).then(|| segment.to_vec());
                        hits.push((h, to_server, own));
                    }
                }
            }
        }
        // Records are built once the packet's outputs are all absorbed, so an alert on the
        // client's banner also shows the server's that arrived with the same packet.
        let traffic = (!hits.is_empty())
            .then(|| Traffic::from_flowbits(flow.state.flowbits()))
            .flatten();
        hits.into_iter()
            .map(|(hit, to_server, tx_bufs)| {
                let same_side = pkt.is_some_and(|(d, _)| (d == Dir::ToServer) == to_server);
                Match {
                    hit,
                    to_server,
                    bytes: AlertBytes {
                        payload: pkt.filter(|_| same_side).map(|(_, p)| p),
                        packet: frame,
                    },
                    traffic: traffic.clone(),
                    tx_bufs,
                }
            })
            .collect()
    }

    /// The alert record of `m` on `flow`, as its flow stands now.
    #[expect(
        clippy::too_many_arguments,
        reason = "the record's parts, each computed once by the caller"
    )]
    pub fn record<'a>(
        &'a self,
        m: Match<'a>,
        view: &FlowView<'a>,
        fd: &FlowDetect,
        app_proto: Option<&'static str>,
        ts_ns: u64,
        want: AlertsSection,
        stream: bool,
    ) -> Option<AlertRecord<'a>> {
        let sig = self.rules.as_ref()?.signatures().get(m.hit.sig as usize)?;
        let tx = m
            .hit
            .tx_id
            .and(fd.tx.as_ref())
            .and_then(|t| Some((t.id, t.object.as_ref()?)))
            .filter(|_| m.tx_bufs.is_none());
        let app = app_proto.map(|app| {
            let object = match tx {
                Some((_, o)) => Some(o.clone()),
                None if m.tx_bufs.is_some() => {
                    let own = m.tx_bufs.as_deref().unwrap_or_default();
                    app_object_from_buffers(app, |ts, b| {
                        own.iter()
                            .find(|(d, n, _)| (*d == Dir::ToServer) == ts && *n == b)
                            .map(|(_, _, v)| v.as_slice())
                    })
                }
                None if m.hit.tx_id.is_some() => {
                    app_object_from_buffers(app, |ts, b| fd.state.buffer(ts, b))
                }
                None => None,
            };
            (app, object)
        });
        Some(alert_record(
            view,
            AlertParts {
                alert: alert_object(sig),
                ts_ns,
                to_server: m.to_server,
                tx_id: tx.map(|t| t.0).or(m.hit.tx_id),
                app,
                traffic: m.traffic,
                bytes: m.bytes,
                want,
                stream,
            },
        ))
    }
}

/// `bufs` cut where a new transaction starts (see [`super::state::starts_tx`]).
fn split_by_tx<'b>(
    app: &str,
    bufs: &'b [(Dir, Buffer, Vec<u8>)],
) -> Vec<&'b [(Dir, Buffer, Vec<u8>)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, (dir, b, _)) in bufs.iter().enumerate() {
        if i > start && super::state::starts_tx(app, *b, *dir == Dir::ToServer).is_some() {
            out.push(&bufs[start..i]);
            start = i;
        }
    }
    if start < bufs.len() {
        out.push(&bufs[start..]);
    }
    out
}
