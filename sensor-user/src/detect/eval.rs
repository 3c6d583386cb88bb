//! Evaluating signatures: a packet's rules on its payload, app-layer rules on the
//! transaction's buffers, after the rule set's prefilter picked the candidates; flowbits,
//! and the threshold and detection-filter windows.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use super::{
    matcher::{lowered, match_list_lowered, Matcher, Verdict},
    prefilter::Seen,
    ruleset::RuleSet,
    sig::{Action, FlagMode, Flowbit, PacketCheck, Rate, Signature, StreamSide, Track},
    state::{FlowState, RuleId},
};
use crate::applayer::{
    buffer::{PerBuffer, Side},
    Buffer, Dir,
};

/// The packet being inspected, in its own direction.
#[derive(Clone, Debug)]
pub struct PacketInfo<'a> {
    /// Capture time.
    pub ts_ns: u64,
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// TTL / hop limit.
    pub ttl: u8,
    /// TCP flags.
    pub tcp_flags: u8,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// Payload (or the in-order stream bytes that arrived with it).
    pub payload: &'a [u8],
    /// The packet's own payload size (`dsize`).
    pub dsize: usize,
    /// A TCP flow's stream sizes, client's then server's (`stream_size`); `None` otherwise.
    pub stream_size: Option<(u64, u64)>,
    /// Client to server.
    pub to_server: bool,
    /// TCP handshake done (or picked up mid-stream), UDP seen both ways.
    pub established: bool,
    /// The flow's application protocol, once known.
    pub app_proto: Option<&'a str>,
    /// A flow id, for `track by_flow`.
    pub flow_id: u64,
    /// Rules that inspect the payload (contents, `dsize`, …) are evaluated. Off once the
    /// flow is encrypted (see [`crate::inspect::EncryptionHandling`]); header rules still are.
    pub inspect_payload: bool,
}

/// A signature that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index into [`RuleSet::signatures`] of the set that was evaluated.
    pub sig: u32,
    /// Transaction id for app-layer matches.
    pub tx_id: Option<u64>,
}

/// The buffers of one packet or event lowercased, each once, for the case-insensitive
/// contents of every rule evaluated on them.
#[derive(Default)]
struct Lowered {
    /// (buffer, lowercased for the current packet, bytes): allocations are kept across packets.
    slots: Vec<(Buffer, bool, Vec<u8>)>,
}

impl Lowered {
    /// Forgets the previous packet's buffers.
    fn reset(&mut self) {
        for s in &mut self.slots {
            s.1 = false;
        }
    }

    /// `data` (buffer `b` of the current packet) lowercased.
    fn get(&mut self, b: Buffer, data: &[u8]) -> &[u8] {
        let i = match self.slots.iter().position(|s| s.0 == b) {
            Some(i) => i,
            None => {
                self.slots.push((b, false, Vec::new()));
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[i];
        if !slot.1 {
            slot.2.clear();
            slot.2.extend(data.iter().map(u8::to_ascii_lowercase));
            slot.1 = true;
        }
        &slot.2
    }
}

fn has_nocase(ms: &[Matcher]) -> bool {
    ms.iter()
        .any(|m| matches!(m, Matcher::Content(c) if c.nocase))
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ns: u64,
    count: u64,
    alerts: u64,
}

/// Evaluates packets and app-layer buffers against a rule set.
pub struct Detector {
    /// Threshold and detection-filter windows, by rule identity (not index: the detector
    /// outlives rule-set swaps, see [`FlowState`]), tracking mode and tracked key.
    thresholds: HashMap<(RuleId, Track, Vec<u8>), Window>,
    scratch: Vec<u32>,
    seen: Seen,
    lowered: Lowered,
    /// Work done, for reports and tuning.
    pub stats: DetectStats,
}

/// How much work detection did.
#[derive(Clone, Copy, Debug, Default)]
pub struct DetectStats {
    /// Packets inspected by packet rules.
    pub packets: u64,
    /// App-layer events inspected.
    pub app_events: u64,
    /// Rules evaluated in full after the prefilter (packet rules).
    pub packet_candidates: u64,
    /// Rules evaluated in full after the prefilter (app rules).
    pub app_candidates: u64,
    /// Rule evaluations that gave up at the step limit (`rules.inspection_limit`): no match.
    pub inspection_limit: u64,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

fn addr_key(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn header_matches(s: &Signature, p: &PacketInfo<'_>) -> bool {
    if let Some(l4) = s.proto.l4 {
        let ok = match l4 {
            1 => p.proto == 1 || p.proto == 58,
            other => p.proto == other,
        };
        if !ok {
            return false;
        }
    }
    if let Some(app) = s.proto.app {
        if p.app_proto != Some(app) {
            return false;
        }
    }
    // The cheap tests first: flow state, then ports, then address expressions (variables
    // such as $HOME_NET are lists of networks).
    if let Some(ts) = s.flow.to_server {
        if ts != p.to_server {
            return false;
        }
    }
    if let Some(est) = s.flow.established {
        if est != p.established {
            return false;
        }
    }
    let fwd = s.sport.matches(p.sport)
        && s.dport.matches(p.dport)
        && s.src.matches(p.src)
        && s.dst.matches(p.dst);
    let fwd = fwd
        || (s.bidirectional
            && s.sport.matches(p.dport)
            && s.dport.matches(p.sport)
            && s.src.matches(p.dst)
            && s.dst.matches(p.src));
    if !fwd {
        return false;
    }
    s.checks.iter().all(|c| match c {
        // `dsize:!N` means "a payload, but not of N bytes" in Suricata.
        PacketCheck::Dsize(r) => {
            r.test(p.dsize as i64) && !(matches!(r, super::matcher::Range::Ne(_)) && p.dsize == 0)
        }
        PacketCheck::Ttl(r) => r.test(i64::from(p.ttl)),
        PacketCheck::StreamSize(side, r) => p.stream_size.is_some_and(|(client, server)| {
            let t = |v: u64| r.test(i64::try_from(v).unwrap_or(i64::MAX));
            match side {
                StreamSide::Client => t(client),
                StreamSide::Server => t(server),
                StreamSide::Both => t(client) && t(server),
                StreamSide::Either => t(client) || t(server),
            }
        }),
        PacketCheck::Itype(r) => (p.proto == 1 || p.proto == 58) && r.test(i64::from(p.icmp_type)),
        PacketCheck::Icode(r) => (p.proto == 1 || p.proto == 58) && r.test(i64::from(p.icmp_code)),
        PacketCheck::IpProto(r) => r.test(i64::from(p.proto)),
        PacketCheck::Flags { bits, mode, ignore } => {
            p.proto == 6 && {
                let f = p.tcp_flags & !ignore;
                match mode {
                    FlagMode::Exact => f == *bits,
                    FlagMode::All => f & bits == *bits,
                    FlagMode::Any => f & bits != 0,
                    FlagMode::Not => f & bits == 0,
                }
            }
        }
        PacketCheck::AppProto(neg, name) => match p.app_proto {
            // Nothing is known yet: only a positive test for "unknown" matches.
            None => !*neg && name == "unknown",
            Some(have) => {
                let norm = |n: &str| if n == "http1" { "http" } else { n }.to_string();
                (norm(have) == norm(name)) != *neg
            }
        },
    })
}

fn flowbits_ok(s: &Signature, bits: &HashSet<String>) -> bool {
    s.flowbits.iter().all(|f| match f {
        Flowbit::IsSet(names, and) => {
            if *and {
                names.iter().all(|n| bits.contains(n))
            } else {
                names.iter().any(|n| bits.contains(n))
            }
        }
        Flowbit::IsNotSet(names, and) => {
            if *and {
                !names.iter().all(|n| bits.contains(n))
            } else {
                names.iter().all(|n| !bits.contains(n))
            }
        }
        _ => true,
    })
}

fn apply_flowbits(s: &Signature, bits: &mut HashSet<String>) {
    for f in &s.flowbits {
        match f {
            Flowbit::Set(n) => bits.extend(n.iter().cloned()),
            Flowbit::Unset(n) => n.iter().for_each(|x| {
                bits.remove(x);
            }),
            Flowbit::Toggle(n) => {
                for x in n {
                    if !bits.remove(x) {
                        bits.insert(x.clone());
                    }
                }
            }
            _ => {}
        }
    }
}

impl Detector {
    /// A detector with empty threshold state.
    pub fn new() -> Detector {
        Detector {
            thresholds: HashMap::new(),
            scratch: Vec::new(),
            seen: Seen::default(),
            lowered: Lowered::default(),
            stats: DetectStats::default(),
        }
    }

    /// Applies thresholds and detection filters: whether this match alerts.
    fn rate_ok(&mut self, s: &Signature, p: &PacketInfo<'_>) -> bool {
        let mut ok = true;
        for t in [s.detection_filter, s.threshold].into_iter().flatten() {
            let key = match t.track {
                Track::BySrc => addr_key(p.src),
                Track::ByDst => addr_key(p.dst),
                Track::ByRule => Vec::new(),
                Track::ByBoth => [addr_key(p.src), addr_key(p.dst)].concat(),
                Track::ByFlow => p.flow_id.to_le_bytes().to_vec(),
            };
            let window_ns = t.seconds.saturating_mul(1_000_000_000);
            let w = self
                .thresholds
                .entry(((s.gid, s.sid), t.track, key))
                .or_insert(Window {
                    start_ns: p.ts_ns,
                    count: 0,
                    alerts: 0,
                });
            if p.ts_ns.saturating_sub(w.start_ns) >= window_ns && window_ns > 0 {
                *w = Window {
                    start_ns: p.ts_ns,
                    count: 0,
                    alerts: 0,
                };
            }
            w.count += 1;
            let pass = match t.rate {
                Rate::Limit => w.count <= t.count,
                Rate::Threshold => w.count.is_multiple_of(t.count.max(1)),
                Rate::Both => w.count == t.count,
                Rate::DetectionFilter => w.count > t.count,
            };
            if pass {
                w.alerts += 1;
            }
            ok &= pass;
        }
        ok
    }

    fn evaluate(
        rules: &RuleSet,
        idx: u32,
        p: &PacketInfo<'_>,
        bits: &HashSet<String>,
        bufs: &PerBuffer<Option<&[u8]>>,
        low: &mut Lowered,
        limited: &mut u64,
    ) -> bool {
        let s = &rules.sigs[idx as usize];
        if !header_matches(s, p) || !flowbits_ok(s, bits) {
            return false;
        }
        let mut vars = HashMap::new();
        for list in &s.lists {
            let Some(buf) = bufs[list.buffer] else {
                return false;
            };
            let ok = if list.transforms.is_empty() {
                let l = if has_nocase(&list.matchers) {
                    low.get(list.buffer, buf)
                } else {
                    &[]
                };
                match_list_lowered(&list.matchers, buf, l, &mut vars, rules.inspection_limit)
            } else {
                let mut data = buf.to_vec();
                for t in &list.transforms {
                    data = t.apply(&data);
                }
                let mut l = Vec::new();
                let l = lowered(&list.matchers, &data, &mut l);
                match_list_lowered(&list.matchers, &data, l, &mut vars, rules.inspection_limit)
            };
            match ok {
                Verdict::Match => {}
                Verdict::NoMatch => return false,
                Verdict::Limit => {
                    *limited += 1;
                    return false;
                }
            }
        }
        true
    }

    /// Packet rules (no application buffers) on one packet or stream chunk.
    pub fn packet(
        &mut self,
        rules: &RuleSet,
        p: &PacketInfo<'_>,
        flow: &mut FlowState,
    ) -> Vec<Hit> {
        let mut bufs: PerBuffer<Option<&[u8]>> = PerBuffer::default();
        if !p.payload.is_empty() && p.inspect_payload {
            bufs[Buffer::Pkt] = Some(p.payload);
        }
        let mut cands = std::mem::take(&mut self.scratch);
        let indexed = rules.indexed_for(&mut flow.indexed, (p.src, p.sport), (p.dst, p.dport));
        rules.candidates_with(
            p.inspect_payload.then_some(p.payload),
            (p.proto, p.to_server),
            indexed,
            &mut self.seen,
            &mut cands,
        );
        self.stats.packets += 1;
        self.lowered.reset();
        self.stats.packet_candidates += cands.len() as u64;
        let mut hits = Vec::new();
        for &i in &cands {
            let s = &rules.sigs[i as usize];
            if s.is_app() || (!p.inspect_payload && s.needs_payload()) {
                continue;
            }
            if !Self::evaluate(
                rules,
                i,
                p,
                &flow.bits,
                &bufs,
                &mut self.lowered,
                &mut self.stats.inspection_limit,
            ) {
                continue;
            }
            apply_flowbits(&rules.sigs[i as usize], &mut flow.bits);
            let s = &rules.sigs[i as usize];
            if s.action == Action::Pass {
                break;
            }
            if !s.noalert && self.rate_ok(s, p) {
                hits.push(Hit {
                    sig: i,
                    tx_id: None,
                });
            }
        }
        self.scratch = cands;
        hits
    }

    /// Adds buffers a parser produced to the flow's current transactions (a new request or
    /// query starts a new one for its side). Call it for everything a packet produced before
    /// [`Detector::evaluate_app`], so rules and alerts see the whole packet's work.
    pub fn absorb(&mut self, flow: &mut FlowState, app: &str, buffers: &[(Dir, Buffer, Vec<u8>)]) {
        flow.absorb(app, buffers);
    }

    /// Application-layer rules, after a parser produced `buffers` (with their directions)
    /// for the flow's protocol `app`: [`Detector::absorb`] then [`Detector::evaluate_app`].
    pub fn app(
        &mut self,
        rules: &RuleSet,
        p: &PacketInfo<'_>,
        flow: &mut FlowState,
        app: &str,
        buffers: &[(Dir, Buffer, Vec<u8>)],
    ) -> Vec<Hit> {
        if buffers.is_empty() {
            return Vec::new();
        }
        self.absorb(flow, app, buffers);
        self.evaluate_app(rules, p, flow)
    }

    /// Application-layer rules on the flow's current transaction buffers.
    pub fn evaluate_app(
        &mut self,
        rules: &RuleSet,
        p: &PacketInfo<'_>,
        flow: &mut FlowState,
    ) -> Vec<Hit> {
        let FlowState {
            bits,
            bufs: held,
            scanned,
            tx_req,
            tx_resp,
            alerted,
            indexed: _,
        } = flow;
        // A buffer both sides have (`ssh.proto`, `http.header`, …) means the side being
        // evaluated; the other side's value fills in buffers only it has.
        let mut bufs: PerBuffer<Option<&[u8]>> = PerBuffer::default();
        let mut chosen: Vec<(bool, Buffer, &[u8])> = Vec::new();
        for (to_server, b, data) in held.iter() {
            if *to_server == p.to_server || bufs[*b].is_none() {
                bufs[*b] = Some(data.as_slice());
                chosen.retain(|c| c.1 != *b);
                chosen.push((*to_server, *b, data.as_slice()));
            }
        }
        if !p.payload.is_empty() && p.inspect_payload {
            bufs[Buffer::Pkt] = Some(p.payload);
        }
        let mut cands = std::mem::take(&mut self.scratch);
        cands.clear();
        cands.extend_from_slice(rules.always_app());
        // A transaction's buffers stay while its later parts arrive: each is searched once
        // per value and rule set, and its candidates remembered with the flow.
        for (to_server, b, data) in chosen {
            match scanned
                .iter()
                .find(|s| s.0 == to_server && s.1 == b && s.2 == rules.id())
            {
                Some(s) => cands.extend_from_slice(&s.3),
                None => {
                    let mut found = Vec::new();
                    rules.scan(b, data, &mut self.seen, &mut found);
                    cands.extend_from_slice(&found);
                    scanned.retain(|s| !(s.0 == to_server && s.1 == b));
                    scanned.push((to_server, b, rules.id(), found));
                }
            }
        }
        if let Some(payload) = bufs[Buffer::Pkt] {
            rules.scan(Buffer::Pkt, payload, &mut self.seen, &mut cands);
        }
        cands.sort_unstable();
        cands.dedup();
        self.stats.app_events += 1;
        self.lowered.reset();
        self.stats.app_candidates += cands.len() as u64;
        let mut hits = Vec::new();
        for &i in &cands {
            let s = &rules.sigs[i as usize];
            if !s.is_app() || (!p.inspect_payload && s.needs_payload()) {
                continue;
            }
            let on = |side: Side| s.lists.iter().any(|l| l.buffer.side() == side);
            let (req, resp) = (on(Side::Request), on(Side::Response));
            // A rule whose buffers all belong to either side (`dns.opcode`,
            // `dns.queries.rrname`) is about the transaction of the direction they came from,
            // so it alerts once per message each way, as Suricata's per-direction
            // inspection does; a request or response buffer fixes the rule's side.
            let either = !req && !resp && s.lists.iter().any(|l| l.buffer != Buffer::Pkt);
            let uses_req = req || (either && p.to_server);
            let uses_resp = resp || (either && !p.to_server);
            let key = (
                (s.gid, s.sid),
                if uses_req { *tx_req } else { 0 },
                if uses_resp { *tx_resp } else { 0 },
            );
            if alerted.contains(&key) {
                continue;
            }
            if !Self::evaluate(
                rules,
                i,
                p,
                bits,
                &bufs,
                &mut self.lowered,
                &mut self.stats.inspection_limit,
            ) {
                continue;
            }
            alerted.insert(key);
            apply_flowbits(&rules.sigs[i as usize], bits);
            let s = &rules.sigs[i as usize];
            if s.action == Action::Pass {
                break;
            }
            if !s.noalert && self.rate_ok(s, p) {
                hits.push(Hit {
                    sig: i,
                    tx_id: Some(tx_req.saturating_sub(1)),
                });
            }
        }
        self.scratch = cands;
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{addr::default_vars, classification::Classifications};

    fn set(text: &str) -> RuleSet {
        let s = RuleSet::from_texts(
            &[("t.rules".into(), text.into())],
            &default_vars(),
            &Classifications::builtin(),
        );
        assert!(s.report.skipped.is_empty(), "{:?}", s.report.skipped);
        s
    }

    fn pkt(ts_ns: u64, payload: &[u8]) -> PacketInfo<'_> {
        PacketInfo {
            ts_ns,
            src: "10.0.0.5".parse().expect("ip"),
            sport: 40000,
            dst: "203.0.113.9".parse().expect("ip"),
            dport: 80,
            proto: 6,
            ttl: 64,
            tcp_flags: 0x18,
            icmp_type: 0,
            icmp_code: 0,
            payload,
            dsize: payload.len(),
            stream_size: None,
            to_server: true,
            established: true,
            app_proto: Some("http"),
            flow_id: 1,
            inspect_payload: true,
        }
    }

    fn alerts(d: &mut Detector, s: &RuleSet, f: &mut FlowState, p: &PacketInfo<'_>) -> usize {
        d.packet(s, p, f).len()
    }

    #[test]
    fn thresholds_and_detection_filters_count_per_window() {
        let s = set(r#"
alert tcp any any -> any any (msg:"limit"; content:"L"; threshold:type limit, track by_src, count 2, seconds 10; sid:1;)
alert tcp any any -> any any (msg:"every 3rd"; content:"T"; threshold:type threshold, track by_rule, count 3, seconds 10; sid:2;)
alert tcp any any -> any any (msg:"after 2"; content:"D"; detection_filter:track by_dst, count 2, seconds 10; sid:3;)
"#);
        let (mut d, mut f) = (Detector::new(), FlowState::default());
        let sec = 1_000_000_000;
        let limit: Vec<usize> = (0..4)
            .map(|i| alerts(&mut d, &s, &mut f, &pkt(i, b"L")))
            .collect();
        assert_eq!(limit, vec![1, 1, 0, 0]);
        // A new window starts after the seconds pass.
        assert_eq!(alerts(&mut d, &s, &mut f, &pkt(11 * sec, b"L")), 1);
        let third: Vec<usize> = (0..6)
            .map(|i| alerts(&mut d, &s, &mut f, &pkt(i, b"T")))
            .collect();
        assert_eq!(third, vec![0, 0, 1, 0, 0, 1]);
        let after: Vec<usize> = (0..4)
            .map(|i| alerts(&mut d, &s, &mut f, &pkt(i, b"D")))
            .collect();
        assert_eq!(after, vec![0, 0, 1, 1]);
    }

    #[test]
    fn header_checks_direction_and_state() {
        let s = set(r#"
alert tcp any any -> any 80 (msg:"to 80"; flow:to_server,established; content:"x"; sid:1;)
alert tcp any 80 -> any any (msg:"from 80"; flow:to_client; content:"x"; sid:2;)
alert tcp any any <> any 80 (msg:"both ways"; content:"x"; flags:PA; sid:3;)
alert udp any any -> any any (msg:"udp"; content:"x"; sid:4;)
"#);
        let (mut d, mut f) = (Detector::new(), FlowState::default());
        let to_server = pkt(0, b"x");
        let sids = |d: &mut Detector, f: &mut FlowState, p: &PacketInfo<'_>| {
            let mut v: Vec<u32> = d
                .packet(&s, p, f)
                .iter()
                .map(|h| s.sigs[h.sig as usize].sid)
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(sids(&mut d, &mut f, &to_server), vec![1, 3]);
        let reply = PacketInfo {
            src: to_server.dst,
            sport: 80,
            dst: to_server.src,
            dport: 40000,
            to_server: false,
            ..to_server.clone()
        };
        assert_eq!(sids(&mut d, &mut f, &reply), vec![2, 3]);
        let not_established = PacketInfo {
            established: false,
            tcp_flags: 0x02,
            ..to_server.clone()
        };
        assert!(sids(&mut d, &mut f, &not_established).is_empty());
    }

    #[test]
    fn flag_modifiers_come_before_or_after_the_flags() {
        let s = set(r#"
alert tcp any any -> any any (msg:"ack and more, after"; flags:A+; sid:1;)
alert tcp any any -> any any (msg:"ack and more, before"; flags:+A; sid:2;)
alert tcp any any -> any any (msg:"any of"; flags:RSF*; sid:3;)
alert tcp any any -> any any (msg:"not"; flags:!R; sid:4;)
alert tcp any any -> any any (msg:"exact, CWR and ECE ignored"; flags:S,12; sid:5;)
"#);
        let sids = |flags: u8| {
            let (mut d, mut f) = (Detector::new(), FlowState::default());
            let p = PacketInfo {
                tcp_flags: flags,
                ..pkt(0, b"")
            };
            let mut v: Vec<u32> = d
                .packet(&s, &p, &mut f)
                .iter()
                .map(|h| s.sigs[h.sig as usize].sid)
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(sids(0x10), vec![1, 2, 4], "ACK");
        assert_eq!(sids(0x18), vec![1, 2, 4], "PSH ACK");
        assert_eq!(sids(0x02), vec![3, 4, 5], "SYN");
        assert_eq!(sids(0x02 | 0xc0), vec![3, 4, 5], "SYN with ECN bits");
        assert_eq!(sids(0x14), vec![1, 2, 3], "RST ACK");
        let bad = RuleSet::from_texts(
            &[(
                "t.rules".into(),
                r#"alert tcp any any -> any any (msg:"two"; flags:+A*; sid:9;)"#.into(),
            )],
            &default_vars(),
            &Classifications::builtin(),
        );
        assert_eq!(bad.report.skipped.len(), 1, "two modifiers are refused");
    }

    #[test]
    fn an_app_rule_alerts_once_per_transaction_and_again_for_the_next() {
        let s = set(
            r#"alert http any any -> any any (msg:"admin"; flow:to_server; http.uri; content:"/admin"; sid:7;)"#,
        );
        let (mut d, mut f) = (Detector::new(), FlowState::default());
        let p = pkt(0, b"");
        let req = |uri: &[u8]| {
            vec![
                (Dir::ToServer, Buffer::HttpMethod, b"GET".to_vec()),
                (Dir::ToServer, Buffer::HttpUri, uri.to_vec()),
            ]
        };
        let first = d.app(&s, &p, &mut f, "http", &req(b"/admin"));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].tx_id, Some(0));
        // The same transaction again (its response, say): no second alert.
        let again = d.app(
            &s,
            &p,
            &mut f,
            "http",
            &[(Dir::ToClient, Buffer::HttpStatCode, b"200".to_vec())],
        );
        assert!(again.is_empty());
        let next = d.app(&s, &p, &mut f, "http", &req(b"/admin/2"));
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].tx_id, Some(1));
        assert_eq!(d.stats.app_events, 3);
    }

    #[test]
    fn remembered_candidates_follow_the_buffer_value_and_the_rule_set() {
        let a = set(
            r#"alert http any any -> any any (msg:"ua"; flow:to_server; http.user_agent; content:"evil"; sid:1;)"#,
        );
        let b = set(
            r#"alert http any any -> any any (msg:"ua2"; flow:to_server; http.user_agent; content:"bot"; sid:2;)"#,
        );
        let (mut d, mut f) = (Detector::new(), FlowState::default());
        let p = pkt(0, b"");
        let ua = |v: &[u8]| vec![(Dir::ToServer, Buffer::HttpUserAgent, v.to_vec())];
        // A request whose user agent is first seen clean, then (a later header block of the
        // same transaction) replaced: the new value is searched, not the remembered result.
        d.absorb(
            &mut f,
            "http",
            &[(Dir::ToServer, Buffer::HttpMethod, b"GET".to_vec())],
        );
        assert!(d.app(&a, &p, &mut f, "http", &ua(b"curl bot")).is_empty());
        let sids = |s: &RuleSet, hits: &[Hit]| -> Vec<u32> {
            hits.iter()
                .map(|h| s.signatures()[h.sig as usize].sid)
                .collect()
        };
        let hits = d.app(&a, &p, &mut f, "http", &ua(b"evil bot"));
        assert_eq!(sids(&a, &hits), [1]);
        // Another rule set (a reload) on the same flow and value: searched again with its own
        // patterns, although the value did not change.
        let hits = d.evaluate_app(&b, &p, &mut f);
        assert_eq!(sids(&b, &hits), [2]);
    }
}
