//! The multi-pattern prefilter of one buffer: which rules' fast patterns occur in it, each
//! pattern reported once however often it occurs.
//!
//! An overlapping Aho-Corasick search reports every position a pattern ends at. On real
//! traffic most of those reports come from a few patterns that are runs of one byte
//! (`|00 00 00|`, `AAAAAAAA`) inside zero padding and filler: on the merged corpus with ET
//! Open, three runs of zeros made 12 of the 15 million reports. Runs (and single bytes) are
//! therefore not in the automaton: for each byte, the shortest run is looked for with
//! `memchr`, and longer ones only when it is there. The automaton's own reports are
//! deduplicated per pattern, so a pattern's rules are added once per buffer.
//!
//! Where the host has Hyperscan ([`super::hyperscan`]), the patterns are compiled into a
//! Hyperscan database instead (`rules.matcher`): on the merged real-traffic corpus with ET
//! Open it searches packet payloads several times faster than the automaton, as it does in
//! Suricata, and reports each pattern once by construction.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Deserialize;

use super::hyperscan::{self, Database, Scratch};

/// The multi-pattern matcher the prefilters are built with (`rules.matcher`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Matcher {
    /// Hyperscan where the host has it, Aho-Corasick otherwise.
    #[default]
    Auto,
    /// Hyperscan; loading rules fails where the host does not have it.
    Hyperscan,
    /// The `aho-corasick` crate's automaton, whatever the host has.
    AhoCorasick,
}

impl Matcher {
    /// Whether prefilters should be compiled with Hyperscan.
    fn hyperscan(self) -> bool {
        self != Matcher::AhoCorasick && hyperscan::available().is_ok()
    }

    /// What prefilters built with this choice run on, for the load log and the doctor.
    pub fn describe(self) -> String {
        match (self, hyperscan::available()) {
            (Matcher::AhoCorasick, _) => "aho-corasick (rules.matcher)".into(),
            (_, Ok(v)) => format!("hyperscan {v}"),
            (_, Err(why)) => format!("aho-corasick ({why})"),
        }
    }
}

/// The rules of one run length of one byte.
type RunLen = (usize, Vec<u32>);

/// One buffer's fast patterns, compiled.
pub(super) struct Prefilter {
    /// The shortest pattern's length: a shorter buffer holds none of them and is not
    /// searched (on real traffic, one-byte segments of interactive sessions and keep-alives
    /// are a large share of the packets with a payload, and a search has a fixed cost).
    shortest: usize,
    kind: Kind,
}

/// The matcher behind a [`Prefilter`].
enum Kind {
    /// An Aho-Corasick automaton and one-byte runs.
    Ac(AcFilter),
    /// A Hyperscan database.
    Hs(HsFilter),
}

/// The patterns in a Hyperscan database.
pub(super) struct HsFilter {
    db: Database,
    /// Pattern index to the signatures that use it.
    sigs: Vec<Vec<u32>>,
    /// Every signature of the prefilter: the candidates when a scan fails.
    all: Vec<u32>,
}

/// The patterns in an Aho-Corasick automaton, one-byte runs apart.
pub(super) struct AcFilter {
    /// Every pattern that is not a run of one byte (case-insensitive).
    automaton: Option<AhoCorasick>,
    /// Automaton pattern index to the signatures that use it.
    sigs: Vec<Vec<u32>>,
    /// Runs of one byte: (the byte, lowercased; its lengths, shortest first, with their rules).
    runs: Vec<(u8, Vec<RunLen>)>,
}

/// Per-scan marks of the patterns already reported and the Hyperscan scratch space, reused
/// across buffers and packets (one per [`super::Detector`]).
#[derive(Debug, Default)]
pub struct Seen {
    stamp: u32,
    marks: Vec<u32>,
    scratch: Scratch,
    /// The rule set whose databases `scratch` was last fitted to.
    pub(super) fitted: u64,
}

impl Seen {
    /// Starts a scan over `patterns` patterns: nothing is marked.
    fn start(&mut self, patterns: usize) {
        if self.marks.len() < patterns {
            self.marks.resize(patterns, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            // After 2^32 scans the old stamps could come back: clear them once.
            self.marks.fill(0);
            self.stamp = 1;
        }
    }

    /// Marks pattern `i`; whether it was not marked yet in this scan.
    fn first(&mut self, i: usize) -> bool {
        let fresh = self.marks[i] != self.stamp;
        self.marks[i] = self.stamp;
        fresh
    }
}

/// The pattern's byte when it is that byte repeated (a single byte included).
fn run_byte(p: &[u8]) -> Option<u8> {
    let (&b, rest) = p.split_first()?;
    rest.iter().all(|&c| c == b).then_some(b)
}

/// Whether `hay` holds `k` consecutive bytes equal to `b` (ASCII case-insensitively; `b` is
/// lowercase). Cost: one `memchr` per run of `b` shorter than `k`.
fn has_run(hay: &[u8], b: u8, k: usize) -> bool {
    let up = b.to_ascii_uppercase();
    let mut i = 0;
    while i + k <= hay.len() {
        let found = if up == b {
            memchr::memchr(b, &hay[i..])
        } else {
            memchr::memchr2(b, up, &hay[i..])
        };
        let Some(p) = found else { return false };
        let s = i + p;
        let mut e = s + 1;
        while e < hay.len() && e - s < k && hay[e].to_ascii_lowercase() == b {
            e += 1;
        }
        if e - s >= k {
            return true;
        }
        // hay[e] is not `b` (or the end): no run of `b` covers it.
        i = e + 1;
    }
    false
}

impl Prefilter {
    /// Compiles lowercased patterns, `sigs[i]` the signatures of `pats[i]`, with `matcher`;
    /// `None` when there are none or no matcher can be built (it then finds nothing, as a
    /// missing prefilter does).
    pub(super) fn build(
        pats: Vec<Vec<u8>>,
        sigs: Vec<Vec<u32>>,
        matcher: Matcher,
    ) -> Option<Prefilter> {
        // Empty patterns are in no matcher (they would match everything and say nothing).
        let shortest = pats.iter().map(Vec::len).filter(|&n| n > 0).min()?;
        let kind = Self::kind(pats, sigs, matcher)?;
        Some(Prefilter { shortest, kind })
    }

    fn kind(pats: Vec<Vec<u8>>, sigs: Vec<Vec<u32>>, matcher: Matcher) -> Option<Kind> {
        if matcher.hyperscan() {
            match Database::literals(&pats) {
                Ok(db) => {
                    let mut all: Vec<u32> = sigs.iter().flatten().copied().collect();
                    all.sort_unstable();
                    all.dedup();
                    return Some(Kind::Hs(HsFilter { db, sigs, all }));
                }
                Err(why) => log::warn!(
                    "Hyperscan could not compile {} patterns ({why}); using Aho-Corasick for them",
                    pats.len()
                ),
            }
        }
        AcFilter::build(pats.into_iter().zip(sigs).collect()).map(Kind::Ac)
    }

    /// Makes `scratch` fit for this prefilter's scans.
    pub(super) fn fit(&self, seen: &mut Seen) {
        if let Kind::Hs(h) = &self.kind {
            if let Err(why) = seen.scratch.fit(&h.db) {
                log::warn!("Hyperscan scratch space: {why}; its rules are evaluated in full");
            }
        }
    }

    /// Bytes the compiled patterns take (Hyperscan's database; 0 for the automaton).
    pub(super) fn bytes(&self) -> usize {
        match &self.kind {
            Kind::Hs(h) => h.db.bytes(),
            Kind::Ac(_) => 0,
        }
    }

    /// Whether this prefilter runs on Hyperscan.
    pub(super) fn is_hyperscan(&self) -> bool {
        matches!(self.kind, Kind::Hs(_))
    }

    /// Adds to `out` the signatures whose pattern occurs in `hay` (possibly with duplicates
    /// across patterns; each pattern's once).
    pub(super) fn scan(&self, hay: &[u8], seen: &mut Seen, out: &mut Vec<u32>) {
        if hay.len() < self.shortest {
            return;
        }
        match &self.kind {
            Kind::Ac(a) => a.scan(hay, seen, out),
            Kind::Hs(h) => {
                let sigs = &h.sigs;
                let res = h.db.scan(hay, &mut seen.scratch, &mut |i| {
                    out.extend_from_slice(&sigs[i as usize]);
                });
                if let Err(why) = res {
                    // Nothing is known about the buffer: every rule is a candidate, so no
                    // alert is lost, only time.
                    static ONCE: std::sync::Once = std::sync::Once::new();
                    ONCE.call_once(|| {
                        log::warn!("Hyperscan scan failed ({why}); rules evaluated in full")
                    });
                    out.extend_from_slice(&h.all);
                }
            }
        }
    }
}

impl AcFilter {
    fn build(patterns: Vec<(Vec<u8>, Vec<u32>)>) -> Option<AcFilter> {
        let mut pats = Vec::new();
        let mut sigs = Vec::new();
        let mut runs: Vec<(u8, Vec<RunLen>)> = Vec::new();
        for (p, ids) in patterns {
            match run_byte(&p) {
                Some(b) => {
                    let slot = match runs.iter().position(|r| r.0 == b) {
                        Some(i) => i,
                        None => {
                            runs.push((b, Vec::new()));
                            runs.len() - 1
                        }
                    };
                    runs[slot].1.push((p.len(), ids));
                }
                None => {
                    pats.push(p);
                    sigs.push(ids);
                }
            }
        }
        for (_, lens) in &mut runs {
            lens.sort_by_key(|l| l.0);
        }
        let automaton = if pats.is_empty() {
            None
        } else {
            // Case-insensitive: a case-sensitive pattern is verified exactly by the full
            // match afterwards.
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&pats)
                    .ok()?,
            )
        };
        Some(AcFilter {
            automaton,
            sigs,
            runs,
        })
    }

    fn scan(&self, hay: &[u8], seen: &mut Seen, out: &mut Vec<u32>) {
        if let Some(a) = &self.automaton {
            seen.start(self.sigs.len());
            for m in a.find_overlapping_iter(hay) {
                let i = m.pattern().as_usize();
                if seen.first(i) {
                    out.extend_from_slice(&self.sigs[i]);
                }
            }
        }
        for (b, lens) in &self.runs {
            for (k, ids) in lens {
                if !has_run(hay, *b, *k) {
                    // Longer runs of the same byte are not there either.
                    break;
                }
                out.extend_from_slice(ids);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pats: &[(&[u8], u32)]) -> Prefilter {
        filter_with(pats, Matcher::AhoCorasick)
    }

    fn filter_with(pats: &[(&[u8], u32)], m: Matcher) -> Prefilter {
        let (lower, sigs) = pats
            .iter()
            .map(|(p, s)| (p.to_ascii_lowercase(), vec![*s]))
            .unzip();
        Prefilter::build(lower, sigs, m).expect("builds")
    }

    fn found(f: &Prefilter, hay: &[u8]) -> Vec<u32> {
        let mut seen = Seen::default();
        f.fit(&mut seen);
        let mut out = Vec::new();
        f.scan(hay, &mut seen, &mut out);
        out.sort_unstable();
        out
    }

    /// Both matchers (Hyperscan must be there: `cargo xtask setup` installs it).
    const BOTH: [Matcher; 2] = [Matcher::AhoCorasick, Matcher::Hyperscan];

    #[test]
    fn each_matcher_is_what_was_asked_for() {
        hyperscan::available().expect("Hyperscan (`cargo xtask setup` installs libhyperscan5)");
        for m in BOTH {
            let f = filter_with(&[(b"ab", 1)], m);
            assert_eq!(f.is_hyperscan(), m == Matcher::Hyperscan, "{m:?}");
        }
        assert!(filter_with(&[(b"ab", 1)], Matcher::Auto).is_hyperscan());
        assert!(Prefilter::build(Vec::new(), Vec::new(), Matcher::Auto).is_none());
    }

    #[test]
    fn a_buffer_shorter_than_every_pattern_is_not_searched_and_one_as_long_is() {
        for m in BOTH {
            let f = filter_with(&[(b"abc", 1), (b"|x|", 2), (b"zz", 3)], m);
            assert_eq!(f.shortest, 2, "{m:?}");
            assert!(found(&f, b"z").is_empty(), "{m:?}");
            assert!(found(&f, b"").is_empty(), "{m:?}");
            assert_eq!(found(&f, b"ZZ"), vec![3], "{m:?}");
            assert_eq!(found(&f, b"abc"), vec![1], "{m:?}");
        }
        // A one-byte pattern keeps one-byte buffers searched.
        for m in BOTH {
            let f = filter_with(&[(b"\x01", 1), (b"abcd", 2)], m);
            assert_eq!(found(&f, b"\x01"), vec![1], "{m:?}");
            assert!(found(&f, b"\x02").is_empty(), "{m:?}");
        }
        // Short buffers: every pattern that fits, in any case, once each; none that does not
        // fit.
        for m in BOTH {
            let f = filter_with(
                &[(b"a", 1), (b"bc", 2), (b"abc", 3), (b"c", 4), (b"abcd", 5)],
                m,
            );
            assert_eq!(found(&f, b"ABC"), vec![1, 2, 3, 4], "{m:?}");
            assert_eq!(found(&f, b"cc"), vec![4], "{m:?}");
            assert_eq!(found(&f, b"xbC"), vec![2, 4], "{m:?}");
            assert_eq!(found(&f, b"aBcD"), vec![1, 2, 3, 4, 5], "{m:?}");
        }
        // Only empty patterns: nothing to build.
        assert!(Prefilter::build(vec![Vec::new()], vec![vec![1]], Matcher::Auto).is_none());
    }

    #[test]
    fn a_failed_scan_makes_every_rule_a_candidate() {
        let f = filter_with(&[(b"ab", 1), (b"cd", 2), (b"ef", 2)], Matcher::Hyperscan);
        // A scratch never fitted to the database: the scan cannot run.
        let mut out = Vec::new();
        f.scan(b"nothing here", &mut Seen::default(), &mut out);
        assert_eq!(out, vec![1, 2]);
        assert_eq!(found(&f, b"nothing here"), Vec::<u32>::new());
    }

    #[test]
    fn runs_of_one_byte_are_found_by_length_and_case() {
        for m in BOTH {
            runs_of_one_byte(m);
        }
    }

    fn runs_of_one_byte(m: Matcher) {
        let f = filter_with(
            &[
                (b"\0\0\0", 1),
                (b"\0\0\0\0\0", 2),
                (b"\x03", 3),
                (b"AAAA", 4),
                (b"evil", 5),
            ],
            m,
        );
        assert_eq!(
            found(&f, b"x\0\0y\0\0\0z"),
            vec![1],
            "three zeros, not five"
        );
        assert_eq!(
            found(&f, b"\0\0\0\0\0"),
            vec![1, 2],
            "a run holds its shorter runs"
        );
        assert_eq!(found(&f, b"\0\0\0\0"), vec![1]);
        assert_eq!(found(&f, b"ab\x03"), vec![3], "a single byte at the end");
        assert_eq!(found(&f, b"aAaA"), vec![4], "letters in any case");
        assert_eq!(found(&f, b"AAA-A"), Vec::<u32>::new(), "a broken run");
        assert_eq!(found(&f, b"..EVIL.."), vec![5]);
        assert_eq!(found(&f, b""), Vec::<u32>::new());
    }

    #[test]
    fn each_pattern_reports_its_rules_once_per_buffer() {
        for m in BOTH {
            each_pattern_once(m);
        }
    }

    fn each_pattern_once(m: Matcher) {
        let f = filter_with(&[(b"ab", 1), (b"bc", 2), (b"abc", 3)], m);
        let mut seen = Seen::default();
        f.fit(&mut seen);
        let mut out = Vec::new();
        f.scan(b"abcabcabcab", &mut seen, &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![1, 2, 3], "overlapping patterns, each once");
        // The next buffer starts afresh.
        out.clear();
        f.scan(b"xbc", &mut seen, &mut out);
        assert_eq!(out, vec![2]);
    }

    #[test]
    fn stamps_wrap_without_forgetting_to_report() {
        let f = filter(&[(b"ab", 1)]);
        let mut seen = Seen {
            stamp: u32::MAX - 1,
            ..Seen::default()
        };
        for _ in 0..4 {
            let mut out = Vec::new();
            f.scan(b"ab", &mut seen, &mut out);
            assert_eq!(out, vec![1]);
        }
    }
}
