//! The rule set: rule files compiled into signatures with a load report, and the prefilter
//! that picks, for a packet or a transaction, the few rules worth evaluating in full: one
//! Aho-Corasick automaton per buffer over each rule's fast pattern, an index of the
//! pattern-less rules that list addresses, and the rules that are always candidates.

use std::{collections::HashMap, net::IpAddr, path::Path};

use super::{
    classification::Classifications,
    home::{HomeNet, CLASSES},
    parse::{parse_rule, split_rules},
    prefilter::{Matcher, Prefilter, Seen},
    sig::{compile, Action, CompileEnv, Flowbit, Refusal, Signature},
};
use crate::applayer::{buffer::PerBuffer, Buffer};

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
    /// Prefilters compiled with Hyperscan, and in all.
    pub prefilters_hyperscan: usize,
    /// Prefilters in all.
    pub prefilters: usize,
    /// Bytes of the Hyperscan databases.
    pub hyperscan_bytes: usize,
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

/// Masked address to the signatures listing that network.
type NetMap = HashMap<u128, Vec<u32>, ahash::RandomState>;

/// Signatures found by address: for rules without a pattern whose source or destination is
/// a list of networks (the IP reputation rules of public rule sets, by the thousand), one
/// hash set per prefix length, so a packet costs a few lookups instead of a scan.
#[derive(Default)]
struct AddrIndex {
    /// (prefix length over the 128-bit mapped address, masked address → signatures).
    by_len: Vec<(u8, NetMap)>,
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
                self.by_len
                    .push((len, HashMap::with_hasher(ahash::RandomState::new())));
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

/// Signatures found by port: for rules without a pattern whose destination (or else source)
/// port is a short list (the port-scan and service-access rules of public rule sets, which
/// name `$HOME_NET` as the address and so gain nothing from the address index).
#[derive(Default)]
struct PortIndex {
    by_port: HashMap<u16, Vec<u32>, ahash::RandomState>,
}

/// Packet patterns shorter than this are not searched for by a packet prefilter when the rule
/// lists its ports: it is found by port ([`PortIndex`]). With ET Open this takes 81 of the 117
/// patterns under four bytes out of the packet prefilters (every one-byte pattern), and cuts
/// processing of the merged real-traffic corpus by a few percent (docs/performance.md).
const MIN_PACKET_PATTERN: usize = 4;

/// Ports a rule may list to be found by [`PortIndex`]; a longer list (`1024:`) is no index.
const MAX_INDEXED_PORTS: usize = 256;

impl PortIndex {
    fn insert(&mut self, ranges: &[(u16, u16)], sig: u32) {
        for &(lo, hi) in ranges {
            for port in lo..=hi {
                self.by_port.entry(port).or_default().push(sig);
            }
        }
    }

    fn lookup(&self, port: u16, out: &mut Vec<u32>) {
        if let Some(sigs) = self.by_port.get(&port) {
            out.extend_from_slice(sigs);
        }
    }
}

/// The ranges of a port expression that lists at most [`MAX_INDEXED_PORTS`] ports (no
/// `any`, no negation).
fn listed_ports(e: &super::addr::PortExpr) -> Option<Vec<(u16, u16)>> {
    use super::addr::PortExpr;
    fn walk(e: &PortExpr, out: &mut Vec<(u16, u16)>) -> bool {
        match e {
            PortExpr::Range(a, b) => {
                out.push((*a.min(b), *a.max(b)));
                true
            }
            PortExpr::Group(items) => items.iter().all(|i| walk(i, out)),
            PortExpr::Any | PortExpr::Not(_) => false,
        }
    }
    let mut out = Vec::new();
    let count: usize = if walk(e, &mut out) {
        out.iter().map(|(a, b)| usize::from(b - a) + 1).sum()
    } else {
        usize::MAX
    };
    (count <= MAX_INDEXED_PORTS).then_some(out)
}

/// Whether every network is narrow enough (an IPv4 /16 or IPv6 /48, or longer) for the
/// address index to pick few rules: reputation lists are, `$HOME_NET`'s private ranges not.
fn narrow(nets: &[(IpAddr, u8)]) -> bool {
    nets.iter().all(|(ip, len)| match ip {
        IpAddr::V4(_) => *len >= 16,
        IpAddr::V6(_) => *len >= 48,
    })
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

/// Packet-payload prefilters, one per transport and direction a packet can have: a rule is in
/// those its protocol and `flow` direction allow, so a packet's search runs over the patterns
/// of the rules that could match it (a server's reply over far fewer than the requests).
const PKT_SLOTS: usize = 6;

/// The packet prefilter of a transport (TCP, UDP, anything else) and direction.
fn pkt_slot(proto: u8, to_server: bool) -> usize {
    let t = match proto {
        6 => 0,
        17 => 1,
        _ => 2,
    };
    t * 2 + usize::from(!to_server)
}

/// The packet prefilters a signature belongs in.
fn pkt_slots(s: &Signature) -> impl Iterator<Item = usize> + '_ {
    (0..PKT_SLOTS).filter(move |&slot| {
        let (t, to_server) = (slot / 2, slot % 2 == 0);
        let proto_ok = match s.proto.l4 {
            None => true,
            Some(6) => t == 0,
            Some(17) => t == 1,
            Some(_) => t == 2,
        };
        proto_ok && s.flow.to_server.is_none_or(|d| d == to_server)
    })
}

/// Compiled rules, ready to evaluate.
pub struct RuleSet {
    pub(super) sigs: Vec<Signature>,
    /// App-layer buffers' prefilters (and, at [`Buffer::Pkt`], the payload patterns of
    /// app-layer rules without a sticky buffer).
    prefilters: PerBuffer<Option<Prefilter>>,
    /// Packet rules' payload prefilters: a transport and direction's ([`pkt_slot`]) over all
    /// its rules, and for an address class ([`HomeNet`]) whose rules are far fewer, one over
    /// those.
    pkt_prefilters: Vec<Prefilter>,
    /// The prefilter of each (slot, class): `pkt_prefilters[pkt_route[slot * CLASSES +
    /// class]]`.
    pkt_route: Vec<Option<usize>>,
    /// `$HOME_NET` as the rules were compiled with it.
    home: Option<HomeNet>,
    /// Signatures without a fast pattern or an address list: always candidates of the
    /// packets of their transport and direction, by [`pkt_slot`].
    always_pkt: [Vec<u32>; PKT_SLOTS],
    always_app: Vec<u32>,
    /// Pattern-less packet rules found by the addresses they list.
    by_addr: AddrIndex,
    /// Pattern-less packet rules found by the ports they list.
    by_port: PortIndex,
    /// The load report.
    pub report: LoadReport,
    /// Steps one rule's keyword list may take on one buffer (`rules.inspection_limit`).
    pub inspection_limit: u32,
    /// Distinguishes this set from every other one of the process (per-flow caches of
    /// prefilter results are only valid for the set that made them).
    id: u64,
}

impl RuleSet {
    /// Compiles the rules in `files` (in order). Only an unreadable file is an error.
    pub fn load(
        files: &[&Path],
        vars: &HashMap<String, String>,
        classes: &Classifications,
        matcher: Matcher,
    ) -> anyhow::Result<RuleSet> {
        let mut texts = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("reading the rule file {}: {e}", f.display()))?;
            texts.push((f.display().to_string(), text));
        }
        let (sigs, report) = compile_texts(&texts, vars, classes);
        // The rule text is no longer needed: freeing it before the prefilters are compiled
        // lets their (transient, tens of MiB) compile memory reuse it, which lowers the
        // process's peak.
        drop(texts);
        Ok(RuleSet::index(
            sigs,
            report,
            matcher,
            HomeNet::from_vars(vars),
        ))
    }

    /// Compiles rules from `(origin, text)` pairs, the prefilters with the default matcher.
    pub fn from_texts(
        texts: &[(String, String)],
        vars: &HashMap<String, String>,
        classes: &Classifications,
    ) -> RuleSet {
        let (sigs, report) = compile_texts(texts, vars, classes);
        RuleSet::index(sigs, report, Matcher::Auto, HomeNet::from_vars(vars))
    }

    /// Orders compiled signatures for evaluation and builds their prefilters.
    fn index(
        mut sigs: Vec<Signature>,
        mut report: LoadReport,
        matcher: Matcher,
        home: Option<HomeNet>,
    ) -> RuleSet {
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
        /// A buffer's distinct patterns in first-use order, the signatures of each, and
        /// where each pattern is (a linear search made loading ET Open quadratic).
        #[derive(Default)]
        struct Patterns {
            pats: Vec<Vec<u8>>,
            sigs: Vec<Vec<u32>>,
            at: HashMap<Vec<u8>, usize>,
        }
        let mut patterns: HashMap<Buffer, Patterns> = HashMap::new();
        // Per slot: its patterns of every class, then of each class.
        let mut pkt_patterns: Vec<Patterns> = (0..PKT_SLOTS * (1 + CLASSES))
            .map(|_| Patterns::default())
            .collect();
        let add = |entry: &mut Patterns, lower: &[u8], i: usize| match entry.at.get(lower) {
            Some(&j) => entry.sigs[j].push(i as u32),
            None => {
                entry.at.insert(lower.to_vec(), entry.pats.len());
                entry.pats.push(lower.to_vec());
                entry.sigs.push(vec![i as u32]);
            }
        };
        let mut always_pkt: [Vec<u32>; PKT_SLOTS] = Default::default();
        let mut by_addr = AddrIndex::default();
        let mut by_port = PortIndex::default();
        let mut always_app = Vec::new();
        for (i, s) in sigs.iter().enumerate() {
            match &s.fast_pattern {
                Some((buf, pat, _nocase)) => {
                    let lower = pat.to_ascii_lowercase();
                    let packet = *buf == Buffer::Pkt && !s.is_app();
                    // A pattern of a few bytes says little (`|00|`, `cwd`) and slows every
                    // search of the prefilter it is in; a rule that lists its ports is found
                    // by them instead, so only packets to those ports evaluate it.
                    let ports = (packet && lower.len() < MIN_PACKET_PATTERN)
                        .then(|| listed_ports(&s.dport).or_else(|| listed_ports(&s.sport)))
                        .flatten();
                    if let Some(ports) = ports {
                        by_port.insert(&ports, i as u32);
                    } else if packet {
                        // Without a `$HOME_NET` every packet takes its slot's prefilter.
                        let classes: Vec<usize> = home.iter().flat_map(|h| h.classes(s)).collect();
                        for slot in pkt_slots(s) {
                            let at = slot * (1 + CLASSES);
                            add(&mut pkt_patterns[at], &lower, i);
                            for &c in &classes {
                                add(&mut pkt_patterns[at + 1 + c], &lower, i);
                            }
                        }
                    } else {
                        add(patterns.entry(*buf).or_default(), &lower, i);
                    }
                }
                None if s.is_app() => always_app.push(i as u32),
                None => {
                    // The most selective index the rule's header allows: a side that lists
                    // narrow networks, then a short port list, then a side that lists any
                    // networks; else it is always a candidate.
                    let side = |e: &super::addr::AddrExpr| {
                        let mut nets = Vec::new();
                        listed_networks(e, &mut nets).then_some(nets)
                    };
                    let (src, dst) = (side(&s.src), side(&s.dst));
                    let narrow_nets = [&src, &dst]
                        .into_iter()
                        .flatten()
                        .find(|n| narrow(n))
                        .cloned();
                    let ports = listed_ports(&s.dport).or_else(|| listed_ports(&s.sport));
                    match (narrow_nets, ports, src.or(dst)) {
                        (Some(nets), _, _) | (None, None, Some(nets)) => {
                            for (ip, len) in nets {
                                by_addr.insert(ip, len, i as u32);
                            }
                        }
                        (None, Some(ports), _) => by_port.insert(&ports, i as u32),
                        (None, None, None) => {
                            for slot in pkt_slots(s) {
                                always_pkt[slot].push(i as u32);
                            }
                        }
                    }
                }
            }
        }
        let mut prefilters: PerBuffer<Option<Prefilter>> = PerBuffer::default();
        for (buf, p) in patterns {
            prefilters[buf] = Prefilter::build(p.pats, p.sigs, matcher);
        }
        // A class's own prefilter only where it leaves out most of the slot's patterns: one
        // nearly as large searches hardly faster, and each costs its compile time and memory
        // (Hyperscan's compile of some mid-sized sets takes over 100 MiB for a moment).
        let mut pkt_prefilters = Vec::new();
        // The new prefilter's index, or none when there is nothing to search for.
        let mut compile = |p: Patterns| {
            let f = Prefilter::build(p.pats, p.sigs, matcher)?;
            pkt_prefilters.push(f);
            Some(pkt_prefilters.len() - 1)
        };
        let mut pkt_route = vec![None; PKT_SLOTS * CLASSES];
        for (slot, group) in pkt_patterns.chunks_mut(1 + CLASSES).enumerate() {
            let (all, classes) = group.split_at_mut(1);
            let n = all[0].pats.len();
            let mut whole = None;
            for (c, p) in classes.iter_mut().enumerate() {
                pkt_route[slot * CLASSES + c] = if home.is_some() && p.pats.len() * 2 <= n {
                    compile(std::mem::take(p))
                } else {
                    *whole.get_or_insert_with(|| compile(std::mem::take(&mut all[0])))
                };
            }
        }
        let mut set = RuleSet {
            sigs,
            prefilters,
            pkt_prefilters,
            pkt_route,
            home,
            always_pkt,
            always_app,
            by_addr,
            by_port,
            report,
            inspection_limit: super::matcher::DEFAULT_INSPECTION_LIMIT,
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        };
        let (mut n, mut hs, mut bytes) = (0, 0, 0);
        for p in set.each_prefilter() {
            n += 1;
            hs += usize::from(p.is_hyperscan());
            bytes += p.bytes();
        }
        (set.report.prefilters, set.report.prefilters_hyperscan) = (n, hs);
        set.report.hyperscan_bytes = bytes;
        set
    }

    /// Every prefilter of the set: app-layer buffers' and packet slots'.
    fn each_prefilter(&self) -> impl Iterator<Item = &Prefilter> {
        self.prefilters
            .iter()
            .filter_map(|(_, p)| p.as_ref())
            .chain(&self.pkt_prefilters)
    }

    /// The signatures, in evaluation order.
    pub fn signatures(&self) -> &[Signature] {
        &self.sigs
    }

    /// This set's identity within the process.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// App-layer rules without a fast pattern: candidates of every app-layer evaluation.
    pub(super) fn always_app(&self) -> &[u32] {
        &self.always_app
    }

    /// Fits `seen`'s scratch space to this set's prefilters (once per set).
    fn fit(&self, seen: &mut Seen) {
        if seen.fitted == self.id {
            return;
        }
        for p in self.each_prefilter() {
            p.fit(seen);
        }
        seen.fitted = self.id;
    }

    /// Adds to `out` the app-layer rules whose fast pattern is in `data`, app buffer `b`.
    pub(super) fn scan(&self, b: Buffer, data: &[u8], seen: &mut Seen, out: &mut Vec<u32>) {
        self.fit(seen);
        if let Some(p) = &self.prefilters[b] {
            p.scan(data, seen, out);
        }
    }

    /// The packet rules worth evaluating in full on a packet from `a` port `sp` to `b` port
    /// `dp` of transport `proto` (`to_server`: its direction) whose payload, when inspected,
    /// is `payload`.
    #[cfg(test)]
    pub(super) fn candidates(
        &self,
        payload: Option<&[u8]>,
        (a, sp, b, dp, proto, to_server): (IpAddr, u16, IpAddr, u16, u8, bool),
        seen: &mut Seen,
        out: &mut Vec<u32>,
    ) {
        let mut cache = None;
        let (indexed, class) = self.indexed_for(&mut cache, (a, sp), (b, dp));
        self.candidates_with(payload, (proto, to_server), (indexed, class), seen, out);
    }

    /// The pattern-less packet rules found by the addresses and ports of a packet's ends,
    /// sorted and each once. Either end may be the one a rule lists (and `<>` rules swap
    /// them), so the answer is the same for both directions of a flow.
    pub(super) fn indexed(&self, ((a, sp), (b, dp)): Ends, out: &mut Vec<u32>) {
        out.clear();
        self.by_addr.lookup(a, out);
        self.by_addr.lookup(b, out);
        self.by_port.lookup(sp, out);
        if dp != sp {
            self.by_port.lookup(dp, out);
        }
        out.sort_unstable();
        out.dedup();
    }

    /// [`RuleSet::indexed`] for a packet from `src` to `dst`, and the packet's address
    /// class ([`HomeNet`]), kept in `cache` (a flow's: see [`IndexedEnds`]) and looked up
    /// again only when the set or the ends change.
    pub(super) fn indexed_for<'c>(
        &self,
        cache: &'c mut Option<IndexedEnds>,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
    ) -> (&'c [u32], usize) {
        let ends = if src <= dst { (src, dst) } else { (dst, src) };
        let fresh = matches!(cache, Some(c) if c.set == self.id && c.ends == ends);
        if !fresh {
            let mut sigs = cache.take().map(|c| c.sigs).unwrap_or_default();
            self.indexed(ends, &mut sigs);
            let home = self
                .home
                .as_ref()
                .map(|h| [h.holds(ends.0 .0), h.holds(ends.1 .0)]);
            *cache = Some(IndexedEnds {
                set: self.id,
                ends,
                sigs,
                home,
            });
        }
        let Some(c) = cache.as_ref() else {
            return (&[], 0);
        };
        let class = c.home.map_or(0, |[a, b]| {
            if src == c.ends.0 {
                HomeNet::class(a, b)
            } else {
                HomeNet::class(b, a)
            }
        });
        (&c.sigs, class)
    }

    /// The packet rules worth evaluating in full on a packet of transport `proto` (its
    /// direction `to_server`) whose ends' indexed rules and address class are `indexed`
    /// ([`RuleSet::indexed_for`]) and whose payload, when inspected, is `payload`.
    pub(super) fn candidates_with(
        &self,
        payload: Option<&[u8]>,
        (proto, to_server): (u8, bool),
        (indexed, class): (&[u32], usize),
        seen: &mut Seen,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        self.fit(seen);
        let slot = pkt_slot(proto, to_server);
        out.extend_from_slice(&self.always_pkt[slot]);
        out.extend_from_slice(indexed);
        let route = self
            .pkt_route
            .get(slot * CLASSES + class)
            .copied()
            .flatten();
        if let (Some(data), Some(p)) = (payload, route.map(|i| &self.pkt_prefilters[i])) {
            p.scan(data, seen, out);
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// A packet's two ends, (address, port) each.
pub(super) type Ends = ((IpAddr, u16), (IpAddr, u16));

/// What [`RuleSet::indexed_for`] keeps per flow: the same for every packet of the flow.
#[derive(Debug)]
pub(super) struct IndexedEnds {
    /// The rule set's [`RuleSet::id`].
    set: u64,
    /// The flow's ends, in a fixed order.
    ends: Ends,
    /// The pattern-less packet rules the ends index ([`RuleSet::indexed`]).
    sigs: Vec<u32>,
    /// Whether each end is in `$HOME_NET`, when the set has one.
    home: Option<[bool; 2]>,
}

/// Compiles the rules of `(origin, text)` pairs, in order; the refused ones are in the report.
fn compile_texts(
    texts: &[(String, String)],
    vars: &HashMap<String, String>,
    classes: &Classifications,
) -> (Vec<Signature>, LoadReport) {
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
    (sigs, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::addr::default_vars;

    fn set(text: &str) -> RuleSet {
        RuleSet::from_texts(
            &[("t.rules".into(), text.into())],
            &default_vars(),
            &Classifications::builtin(),
        )
    }

    fn sids(s: &RuleSet, cands: &[u32]) -> Vec<u32> {
        let mut v: Vec<u32> = cands.iter().map(|&i| s.sigs[i as usize].sid).collect();
        v.sort_unstable();
        v
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn the_prefilter_picks_rules_whose_pattern_is_there_in_any_case() {
        let s = set(r#"
alert tcp any any -> any any (msg:"a"; content:"EVIL"; sid:1;)
alert tcp any any -> any any (msg:"b"; content:"other"; content:"longer pattern"; sid:2;)
alert http any any -> any any (msg:"c"; http.uri; content:"/admin"; sid:3;)
"#);
        assert!(s.report.skipped.is_empty(), "{:?}", s.report.skipped);
        let mut out = Vec::new();
        let seen = &mut Seen::default();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        s.candidates(
            Some(&b"xx evil xx"[..]),
            (a, 1024, b, 80, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(sids(&s, &out), vec![1], "case-insensitive prefilter");
        s.candidates(
            Some(&b"a longer pattern"[..]),
            (a, 1024, b, 80, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(
            sids(&s, &out),
            vec![2],
            "the longest content is the fast pattern"
        );
        s.candidates(
            Some(&b"/admin"[..]),
            (a, 1024, b, 80, 6, true),
            seen,
            &mut out,
        );
        assert!(
            out.is_empty(),
            "a URI pattern is not looked for in the payload"
        );
        out.clear();
        s.scan(Buffer::HttpUri, b"/admin/x", seen, &mut out);
        assert_eq!(sids(&s, &out), vec![3]);
    }

    #[test]
    fn packet_patterns_are_searched_for_the_packets_transport_and_direction() {
        let s = set(r#"
alert tcp any any -> any any (msg:"requests"; flow:to_server; content:"evil"; sid:1;)
alert tcp any any -> any any (msg:"replies"; flow:to_client; content:"evil"; sid:2;)
alert tcp any any -> any any (msg:"both ways"; content:"evil"; sid:3;)
alert udp any any -> any any (msg:"udp"; content:"evil"; sid:4;)
alert ip any any -> any any (msg:"any ip"; content:"evil"; sid:5;)
alert icmp any any -> any any (msg:"icmp"; content:"evil"; sid:6;)
alert icmp any any -> any any (msg:"icmp, no pattern"; itype:8; sid:7;)
alert tcp any any -> any any (msg:"replies, no pattern"; flow:to_client; dsize:>10; sid:8;)
"#);
        assert!(s.report.skipped.is_empty(), "{:?}", s.report.skipped);
        let mut out = Vec::new();
        let seen = &mut Seen::default();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let evil: &[u8] = b"an evil payload";
        s.candidates(Some(evil), (a, 1024, b, 80, 6, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![1, 3, 5], "TCP to the server");
        s.candidates(Some(evil), (a, 1024, b, 80, 6, false), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![2, 3, 5, 8], "TCP to the client");
        s.candidates(Some(evil), (a, 1024, b, 53, 17, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![4, 5]);
        s.candidates(Some(evil), (a, 0, b, 0, 58, false), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![5, 6, 7], "ICMPv6 takes the ICMP rules");
        s.candidates(Some(evil), (a, 0, b, 0, 47, true), seen, &mut out);
        assert_eq!(
            sids(&s, &out),
            vec![5, 6, 7],
            "another transport: any-IP rules (and ICMP ones, which the header check refuses)"
        );
    }

    #[test]
    fn rules_without_patterns_are_found_by_transport_and_by_address() {
        let s = set(r#"
alert icmp any any -> any any (msg:"ping"; itype:8; sid:10;)
alert udp any any -> any any (msg:"any udp"; dsize:>1000; sid:11;)
alert ip [198.51.100.0/24,203.0.113.7] any -> any any (msg:"listed"; sid:12;)
alert ip any any -> any any (msg:"all"; ttl:1; sid:13;)
alert http any any -> any any (msg:"app, no pattern"; urilen:>500; sid:14;)
"#);
        assert!(s.report.skipped.is_empty(), "{:?}", s.report.skipped);
        let mut out = Vec::new();
        let seen = &mut Seen::default();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        s.candidates(None, (a, 0, b, 0, 1, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![10, 13]);
        s.candidates(None, (a, 0, b, 0, 58, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![10, 13], "ICMPv6 takes the ICMP rules");
        s.candidates(None, (a, 1024, b, 53, 17, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![11, 13]);
        // Either side of the packet may be the listed one.
        s.candidates(
            None,
            (a, 1024, ip("198.51.100.9"), 80, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(sids(&s, &out), vec![12, 13]);
        s.candidates(
            None,
            (ip("203.0.113.7"), 1024, b, 80, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(sids(&s, &out), vec![12, 13]);
        s.candidates(
            None,
            (ip("203.0.113.8"), 1024, b, 80, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(sids(&s, &out), vec![13]);
        // App-layer evaluation sees only app rules.
        assert_eq!(sids(&s, s.always_app()), vec![14]);
    }

    #[test]
    fn rules_without_patterns_that_list_few_ports_are_found_by_port() {
        let s = set(r#"
alert tcp $HOME_NET any -> any 445 (msg:"to 445"; flags:S; sid:20;)
alert tcp $EXTERNAL_NET any -> $HOME_NET [5900:5920,3389] (msg:"remote desktops"; sid:21;)
alert tcp any 3389 -> any any (msg:"from 3389"; sid:22;)
alert tcp 198.51.100.7 any -> any 22 (msg:"narrow network and a port"; sid:23;)
alert ip $HOME_NET any -> [192.0.2.66] any (msg:"a wide side and a narrow one"; sid:26;)
alert tcp any any -> any 1024: (msg:"too many ports to index"; sid:24;)
alert tcp any any <> any 445 (msg:"either way"; sid:25;)
"#);
        assert!(s.report.skipped.is_empty(), "{:?}", s.report.skipped);
        let mut out = Vec::new();
        let seen = &mut Seen::default();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        s.candidates(None, (a, 40000, b, 445, 6, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![20, 24, 25]);
        s.candidates(None, (b, 445, a, 40000, 6, false), seen, &mut out);
        assert_eq!(
            sids(&s, &out),
            vec![20, 24, 25],
            "either port may be listed"
        );
        s.candidates(None, (a, 40000, b, 5910, 6, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![21, 24], "a port in a listed range");
        s.candidates(None, (a, 3389, b, 40000, 6, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![21, 22, 24]);
        s.candidates(None, (a, 40000, b, 22, 6, true), seen, &mut out);
        assert_eq!(
            sids(&s, &out),
            vec![24],
            "found by its network, not its port"
        );
        s.candidates(
            None,
            (ip("198.51.100.7"), 40000, b, 22, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(sids(&s, &out), vec![23, 24]);
        s.candidates(None, (a, 40000, b, 80, 6, true), seen, &mut out);
        assert_eq!(sids(&s, &out), vec![24], "not found by $HOME_NET");
        s.candidates(
            None,
            (a, 40000, ip("192.0.2.66"), 80, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(sids(&s, &out), vec![24, 26], "found by the narrow side");
    }

    #[test]
    fn rules_with_short_patterns_that_list_ports_are_found_by_port() {
        let s = set(r#"
alert tcp any any -> any 5100 (msg:"short, one port"; content:"<r"; sid:30;)
alert tcp any any -> any 5100 (msg:"long, one port"; content:"<rect"; sid:31;)
alert tcp any any -> any any (msg:"short, any port"; content:"<r"; sid:32;)
alert http any any -> any 5100 (msg:"payload rule on HTTP flows"; content:"<r"; sid:33;)
"#);
        assert!(s.report.skipped.is_empty(), "{:?}", s.report.skipped);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let seen = &mut Seen::default();
        let mut out = Vec::new();
        s.candidates(
            Some(b"<rect>"),
            (a, 40000, b, 5100, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(sids(&s, &out), vec![30, 31, 32, 33]);
        s.candidates(
            Some(b"nothing"),
            (a, 40000, b, 5100, 6, true),
            seen,
            &mut out,
        );
        assert_eq!(
            sids(&s, &out),
            vec![30, 33],
            "found by their port, whatever the payload"
        );
        s.candidates(Some(b"<rect>"), (a, 40000, b, 80, 6, true), seen, &mut out);
        assert_eq!(
            sids(&s, &out),
            vec![31, 32],
            "patterns are searched for whatever the port; a short one of a rule on any port \
             stays in the prefilter"
        );
    }

    #[test]
    fn load_reports_duplicates_and_refusals_and_orders_pass_rules_first() {
        let s = set(r#"
alert tcp any any -> any any (msg:"x"; content:"a"; sid:1;)
alert tcp any any -> any any (msg:"again"; content:"b"; sid:1;)
alert tcp any any -> any any (msg:"bad"; frobnicate; sid:2;)
alert tcp any any -> any any (msg:"checks"; flowbits:isset,seen; content:"c"; sid:3;)
alert tcp any any -> any any (msg:"sets"; flowbits:set,seen; content:"d"; sid:4;)
pass tcp any any -> any any (msg:"pass"; content:"e"; sid:5;)
"#);
        assert_eq!(s.report.loaded, 4);
        let reasons: Vec<String> = s
            .report
            .skipped
            .iter()
            .map(|k| k.reason.to_string())
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].starts_with("duplicate sid 1"), "{reasons:?}");
        assert_eq!(reasons[1], "unsupported keyword frobnicate");
        let order: Vec<u32> = s.signatures().iter().map(|g| g.sid).collect();
        assert_eq!(order, vec![5, 4, 1, 3], "pass, setters, the rest, checkers");
        assert_eq!(
            s.report.by_reason(),
            vec![
                ("invalid rule".to_string(), 1),
                ("unsupported keyword frobnicate".to_string(), 1)
            ]
        );
    }
}
