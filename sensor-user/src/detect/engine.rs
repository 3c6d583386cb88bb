//! The rule set and its evaluation: loading rule files into compiled signatures with a load
//! report, one multi-pattern prefilter (Aho-Corasick) per buffer over each rule's fast
//! pattern so that only candidate rules are evaluated, and the per-flow state detection keeps
//! (flowbits, the current transaction's buffers, what already alerted) plus thresholds.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::Path,
};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{
    classification::Classifications,
    matcher::match_list,
    parse::{parse_rule, split_rules},
    sig::{
        compile, Action, CompileEnv, FlagMode, Flowbit, PacketCheck, Rate, Refusal, Signature,
        Track,
    },
};
use crate::applayer::Dir;

/// A rule that was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// `file:line`.
    pub origin: String,
    /// Its sid, when one could be read.
    pub sid: Option<u32>,
    /// Why.
    pub reason: Refusal,
}

/// What loading the rule files did.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Rules loaded.
    pub loaded: usize,
    /// Rules refused.
    pub skipped: Vec<Skipped>,
}

impl LoadReport {
    /// Skipped rules counted by reason kind, most frequent first.
    pub fn by_reason(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<String, usize> = HashMap::new();
        for s in &self.skipped {
            *m.entry(s.reason.kind()).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

struct Prefilter {
    automaton: AhoCorasick,
    /// Pattern index to the signatures that use it.
    sigs: Vec<Vec<u32>>,
}

/// Signatures found by address: for rules without a pattern whose source or destination is
/// a list of networks (the IP reputation rules of public rule sets, by the thousand), one
/// hash set per prefix length, so a packet costs a few lookups instead of a scan.
#[derive(Default)]
struct AddrIndex {
    /// (prefix length over the 128-bit mapped address, masked address → signatures).
    by_len: Vec<(u8, HashMap<u128, Vec<u32>>)>,
}

fn mapped(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn mask(v: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        v & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

impl AddrIndex {
    fn insert(&mut self, ip: IpAddr, len: u8, sig: u32) {
        let len = if ip.is_ipv4() {
            len.min(32) + 96
        } else {
            len.min(128)
        };
        let key = mask(mapped(ip), len);
        let slot = match self.by_len.iter().position(|(l, _)| *l == len) {
            Some(i) => i,
            None => {
                self.by_len.push((len, HashMap::new()));
                self.by_len.len() - 1
            }
        };
        self.by_len[slot].1.entry(key).or_default().push(sig);
    }

    fn lookup(&self, ip: IpAddr, out: &mut Vec<u32>) {
        let v = mapped(ip);
        for (len, set) in &self.by_len {
            if let Some(sigs) = set.get(&mask(v, *len)) {
                out.extend_from_slice(sigs);
            }
        }
    }
}

/// The networks of an address expression that lists only networks (no `any`, no negation).
fn listed_networks(e: &super::addr::AddrExpr, out: &mut Vec<(IpAddr, u8)>) -> bool {
    use super::addr::AddrExpr;
    match e {
        AddrExpr::Net(ip, len) => {
            out.push((*ip, *len));
            true
        }
        AddrExpr::Group(items) => items.iter().all(|i| listed_networks(i, out)),
        AddrExpr::Any | AddrExpr::Not(_) => false,
    }
}

/// Slot of a transport in the per-transport candidate lists.
fn proto_slot(l4: Option<u8>) -> usize {
    match l4 {
        Some(6) => 1,
        Some(17) => 2,
        Some(1) => 3,
        _ => 0,
    }
}

/// Compiled rules, ready to evaluate.
pub struct RuleSet {
    sigs: Vec<Signature>,
    prefilters: HashMap<String, Prefilter>,
    /// Signatures without a fast pattern or an address list: always candidates, by the
    /// transport they ask for (index 0: any; 1: TCP; 2: UDP; 3: ICMP).
    always_pkt: [Vec<u32>; 4],
    always_app: Vec<u32>,
    /// Pattern-less packet rules found by the addresses they list.
    by_addr: AddrIndex,
    /// The load report.
    pub report: LoadReport,
}

impl RuleSet {
    /// Compiles the rules in `files` (in order). Only an unreadable file is an error.
    pub fn load(
        files: &[&Path],
        vars: &HashMap<String, String>,
        classes: &Classifications,
    ) -> anyhow::Result<RuleSet> {
        let mut texts = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("reading the rule file {}: {e}", f.display()))?;
            texts.push((f.display().to_string(), text));
        }
        Ok(RuleSet::from_texts(&texts, vars, classes))
    }

    /// Compiles rules from `(origin, text)` pairs.
    pub fn from_texts(
        texts: &[(String, String)],
        vars: &HashMap<String, String>,
        classes: &Classifications,
    ) -> RuleSet {
        let env = CompileEnv { vars, classes };
        let mut report = LoadReport::default();
        let mut sigs: Vec<Signature> = Vec::new();
        let mut seen: HashMap<(u32, u32), usize> = HashMap::new();
        for (origin, text) in texts {
            for rule in split_rules(text) {
                let at = format!("{origin}:{}", rule.line);
                let raw = match parse_rule(&rule.text) {
                    Ok(r) => r,
                    Err(e) => {
                        report.skipped.push(Skipped {
                            origin: format!("{at}:{}", e.column),
                            sid: None,
                            reason: Refusal::Invalid(e.message),
                        });
                        continue;
                    }
                };
                match compile(&raw, &env, &at) {
                    Ok(sig) => {
                        if let Some(&i) = seen.get(&(sig.gid, sig.sid)) {
                            report.skipped.push(Skipped {
                                origin: at,
                                sid: Some(sig.sid),
                                reason: Refusal::Invalid(format!(
                                    "duplicate sid {} (first at {})",
                                    sig.sid, sigs[i].origin
                                )),
                            });
                            continue;
                        }
                        seen.insert((sig.gid, sig.sid), sigs.len());
                        sigs.push(sig);
                    }
                    Err((sid, reason)) => report.skipped.push(Skipped {
                        origin: at,
                        sid,
                        reason,
                    }),
                }
            }
        }
        // Evaluation order: pass rules first, then rules that set flowbits, so that a bit set
        // by one rule is visible to another on the same packet.
        sigs.sort_by_key(|s| {
            let sets = s
                .flowbits
                .iter()
                .any(|f| matches!(f, Flowbit::Set(_) | Flowbit::Unset(_) | Flowbit::Toggle(_)));
            let checks = s
                .flowbits
                .iter()
                .any(|f| matches!(f, Flowbit::IsSet(..) | Flowbit::IsNotSet(..)));
            // Pass rules, then rules that only set bits, then the rest, then bit checkers.
            (s.action != Action::Pass, !sets || checks, checks)
        });
        report.loaded = sigs.len();
        // Per buffer: the distinct patterns, and the signatures using each.
        type Patterns = (Vec<Vec<u8>>, Vec<Vec<u32>>);
        let mut patterns: HashMap<String, Patterns> = HashMap::new();
        let mut always_pkt: [Vec<u32>; 4] = Default::default();
        let mut by_addr = AddrIndex::default();
        let mut always_app = Vec::new();
        for (i, s) in sigs.iter().enumerate() {
            match &s.fast_pattern {
                Some((buf, pat, _nocase)) => {
                    let entry = patterns.entry(buf.clone()).or_default();
                    let lower = pat.to_ascii_lowercase();
                    match entry.0.iter().position(|p| *p == lower) {
                        Some(j) => entry.1[j].push(i as u32),
                        None => {
                            entry.0.push(lower);
                            entry.1.push(vec![i as u32]);
                        }
                    }
                }
                None if s.is_app() => always_app.push(i as u32),
                None => {
                    let mut nets = Vec::new();
                    if listed_networks(&s.src, &mut nets) || {
                        nets.clear();
                        listed_networks(&s.dst, &mut nets)
                    } {
                        for (ip, len) in nets {
                            by_addr.insert(ip, len, i as u32);
                        }
                    } else {
                        always_pkt[proto_slot(s.proto.l4)].push(i as u32);
                    }
                }
            }
        }
        let prefilters = patterns
            .into_iter()
            .filter_map(|(buf, (pats, ids))| {
                // Case-insensitive prefilter: a case-sensitive pattern is verified exactly
                // by the full match afterwards.
                let automaton = AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&pats)
                    .ok()?;
                Some((
                    buf,
                    Prefilter {
                        automaton,
                        sigs: ids,
                    },
                ))
            })
            .collect();
        RuleSet {
            sigs,
            prefilters,
            always_pkt,
            always_app,
            by_addr,
            report,
        }
    }

    /// The signatures, in evaluation order.
    pub fn signatures(&self) -> &[Signature] {
        &self.sigs
    }

    fn candidates(
        &self,
        buffers: &[(&str, &[u8])],
        addrs: Option<(IpAddr, IpAddr, u8)>,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        match addrs {
            None => out.extend_from_slice(&self.always_app),
            Some((a, b, proto)) => {
                out.extend_from_slice(&self.always_pkt[0]);
                let slot = proto_slot(Some(if proto == 58 { 1 } else { proto }));
                if slot != 0 {
                    out.extend_from_slice(&self.always_pkt[slot]);
                }
                // Either address may be the one a rule lists (and `<>` rules swap them).
                self.by_addr.lookup(a, out);
                self.by_addr.lookup(b, out);
            }
        }
        for (name, data) in buffers {
            let Some(p) = self.prefilters.get(*name) else {
                continue;
            };
            for m in p.automaton.find_overlapping_iter(*data) {
                out.extend_from_slice(&p.sigs[m.pattern().as_usize()]);
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

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
    /// Client to server.
    pub to_server: bool,
    /// TCP handshake done (or picked up mid-stream), UDP seen both ways.
    pub established: bool,
    /// The flow's application protocol, once known.
    pub app_proto: Option<&'a str>,
    /// A flow id, for `track by_flow`.
    pub flow_id: u64,
}

/// Detection state of one flow.
#[derive(Debug, Default)]
pub struct FlowState {
    bits: HashSet<String>,
    /// Buffers of the current request (ToServer) and response (ToClient).
    bufs: HashMap<(bool, String), Vec<u8>>,
    tx_req: u64,
    tx_resp: u64,
    /// App-layer signatures that already matched a transaction: (gid, sid), request and
    /// response transaction numbers. Keyed by the rule's identity rather than its index in the
    /// rule set because the live agent swaps rule sets under running flows (SIGHUP), and
    /// indexes are not stable across sets. Clearing the set at a swap instead would alert a
    /// second time for a rule that is in both sets and already alerted on the transaction in
    /// progress, and keeping indexes would silence whichever new rule took an old one's index;
    /// (gid, sid) is the identity Suricata and SOC tooling use, and also what the loader
    /// refuses to see twice.
    alerted: HashSet<(RuleId, u64, u64)>,
}

/// A signature's identity across rule sets: (gid, sid).
type RuleId = (u32, u32);

impl FlowState {
    /// Buffers of the current transaction, for alert records.
    pub fn buffer(&self, to_server: bool, name: &str) -> Option<&[u8]> {
        self.bufs
            .get(&(to_server, name.to_string()))
            .map(|v| v.as_slice())
    }

    /// The EVE `traffic` object from flowbits named `traffic/id/NAME` or
    /// `traffic/label/NAME`, as Suricata writes it.
    pub fn traffic(&self) -> Option<serde_json::Value> {
        let mut ids: Vec<&str> = Vec::new();
        let mut labels: Vec<&str> = Vec::new();
        for b in &self.bits {
            if let Some(x) = b.strip_prefix("traffic/id/") {
                ids.push(x);
            } else if let Some(x) = b.strip_prefix("traffic/label/") {
                labels.push(x);
            }
        }
        if ids.is_empty() && labels.is_empty() {
            return None;
        }
        ids.sort_unstable();
        labels.sort_unstable();
        let mut m = serde_json::Map::new();
        if !ids.is_empty() {
            m.insert("id".into(), serde_json::json!(ids));
        }
        if !labels.is_empty() {
            m.insert("label".into(), serde_json::json!(labels));
        }
        Some(serde_json::Value::Object(m))
    }

    /// 0-based id of the current request transaction.
    pub fn tx_id(&self) -> u64 {
        self.tx_req.saturating_sub(1)
    }
}

/// A signature that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index into [`RuleSet::signatures`] of the set that was evaluated.
    pub sig: u32,
    /// Transaction id for app-layer matches.
    pub tx_id: Option<u64>,
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
    let fwd = s.src.matches(p.src)
        && s.sport.matches(p.sport)
        && s.dst.matches(p.dst)
        && s.dport.matches(p.dport);
    let fwd = fwd
        || (s.bidirectional
            && s.src.matches(p.dst)
            && s.sport.matches(p.dport)
            && s.dst.matches(p.src)
            && s.dport.matches(p.sport));
    if !fwd {
        return false;
    }
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
    s.checks.iter().all(|c| match c {
        // `dsize:!N` means "a payload, but not of N bytes" in Suricata.
        PacketCheck::Dsize(r) => {
            r.test(p.dsize as i64) && !(matches!(r, super::matcher::Range::Ne(_)) && p.dsize == 0)
        }
        PacketCheck::Ttl(r) => r.test(i64::from(p.ttl)),
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

/// Which side of a transaction a buffer belongs to.
fn buffer_side(name: &str) -> Option<bool> {
    match name {
        "http.stat_code" | "http.stat_msg" | "http.response_body" | "http.server"
        | "http.location" | "http.response_line" | "file.data.tc" => Some(false),
        "file.data.ts" => Some(true),
        n if n.starts_with("http.") => Some(true),
        "dns.query" => Some(true),
        _ => None,
    }
}

impl Detector {
    /// A detector with empty threshold state.
    pub fn new() -> Detector {
        Detector {
            thresholds: HashMap::new(),
            scratch: Vec::new(),
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
        &mut self,
        rules: &RuleSet,
        idx: u32,
        p: &PacketInfo<'_>,
        flow: &mut FlowState,
        bufs: &HashMap<&str, &[u8]>,
    ) -> bool {
        let s = &rules.sigs[idx as usize];
        if !header_matches(s, p) || !flowbits_ok(s, &flow.bits) {
            return false;
        }
        let mut vars = HashMap::new();
        for list in &s.lists {
            let Some(buf) = bufs.get(list.buffer.as_str()) else {
                return false;
            };
            let ok = if list.transforms.is_empty() {
                match_list(&list.matchers, buf, &mut vars)
            } else {
                let mut data = buf.to_vec();
                for t in &list.transforms {
                    data = t.apply(&data);
                }
                match_list(&list.matchers, &data, &mut vars)
            };
            if !ok {
                return false;
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
        let mut bufs: HashMap<&str, &[u8]> = HashMap::new();
        if !p.payload.is_empty() {
            bufs.insert("pkt", p.payload);
        }
        let mut cands = std::mem::take(&mut self.scratch);
        rules.candidates(
            &[("pkt", p.payload)],
            Some((p.src, p.dst, p.proto)),
            &mut cands,
        );
        self.stats.packets += 1;
        self.stats.packet_candidates += cands.len() as u64;
        let mut hits = Vec::new();
        for &i in &cands {
            let s = &rules.sigs[i as usize];
            if s.is_app() {
                continue;
            }
            if !self.evaluate(rules, i, p, flow, &bufs) {
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
    pub fn absorb(
        &mut self,
        flow: &mut FlowState,
        app: &str,
        buffers: &[(Dir, &'static str, Vec<u8>)],
    ) {
        for (dir, name, data) in buffers {
            let to_server = *dir == Dir::ToServer;
            // A new request or response starts a new transaction for that side.
            let new_tx = match (app, *name) {
                ("http", "http.method") | ("dns", "dns.query") => Some(true),
                ("http", "http.stat_code") => Some(false),
                ("dns", "dns.queries.rrname") if !to_server => Some(false),
                _ => None,
            };
            if let Some(side) = new_tx {
                flow.bufs.retain(|(ts, _), _| *ts != side);
                if side {
                    flow.tx_req += 1;
                } else {
                    flow.tx_resp += 1;
                }
            }
            flow.bufs
                .insert((to_server, name.to_string()), data.clone());
        }
    }

    /// Application-layer rules, after a parser produced `buffers` (with their directions)
    /// for the flow's protocol `app`: [`Detector::absorb`] then [`Detector::evaluate_app`].
    pub fn app(
        &mut self,
        rules: &RuleSet,
        p: &PacketInfo<'_>,
        flow: &mut FlowState,
        app: &str,
        buffers: &[(Dir, &'static str, Vec<u8>)],
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
        let owned: Vec<((bool, String), Vec<u8>)> = flow
            .bufs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // A name both sides use (`ssh.proto`, `http.header`, …) means the side being
        // evaluated; the other side's value fills in names only it has.
        let mut bufs: HashMap<&str, &[u8]> = HashMap::new();
        for ((to_server, name), data) in &owned {
            if *to_server == p.to_server || !bufs.contains_key(name.as_str()) {
                bufs.insert(name.as_str(), data.as_slice());
            }
        }
        if !p.payload.is_empty() {
            bufs.insert("pkt", p.payload);
        }
        let list: Vec<(&str, &[u8])> = bufs.iter().map(|(k, v)| (*k, *v)).collect();
        let mut cands = std::mem::take(&mut self.scratch);
        rules.candidates(&list, None, &mut cands);
        self.stats.app_events += 1;
        self.stats.app_candidates += cands.len() as u64;
        let mut hits = Vec::new();
        for &i in &cands {
            let s = &rules.sigs[i as usize];
            if !s.is_app() {
                continue;
            }
            let uses_req = s.lists.iter().any(|l| buffer_side(&l.buffer) == Some(true));
            let uses_resp = s
                .lists
                .iter()
                .any(|l| buffer_side(&l.buffer) == Some(false));
            let key = (
                (s.gid, s.sid),
                if uses_req { flow.tx_req } else { 0 },
                if uses_resp { flow.tx_resp } else { 0 },
            );
            if flow.alerted.contains(&key) {
                continue;
            }
            if !self.evaluate(rules, i, p, flow, &bufs) {
                continue;
            }
            flow.alerted.insert(key);
            apply_flowbits(&rules.sigs[i as usize], &mut flow.bits);
            let s = &rules.sigs[i as usize];
            if s.action == Action::Pass {
                break;
            }
            if !s.noalert && self.rate_ok(s, p) {
                hits.push(Hit {
                    sig: i,
                    tx_id: Some(flow.tx_id()),
                });
            }
        }
        self.scratch = cands;
        hits
    }
}
