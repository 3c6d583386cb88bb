//! Matching one buffer against a rule's list of payload keywords, with Suricata's semantics:
//! `content` with its positional modifiers (absolute `offset`/`depth`, relative
//! `distance`/`within` measured from the end of the previous match, `startswith`,
//! `endswith`, negation), `pcre`, `byte_test`, `byte_jump`, `byte_extract`, `isdataat` and
//! `bsize`. Later relative keywords that fail make earlier contents try their next
//! occurrence (backtracking), as in Suricata.

use std::collections::HashMap;

pub use super::pcre::{Pcre, PcreOpts};

/// Why a `pcre` or `byte_test` does not build.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    /// PCRE2 refused the pattern.
    #[error("pcre /{pattern}/ does not compile: {error}")]
    Pcre {
        /// The pattern as written in the rule.
        pattern: String,
        /// PCRE2's reason.
        error: pcre2::Error,
    },
    /// An operator that is not `<`, `>`, `=`, `<=`, `>=`, `&` or `^`.
    #[error("byte_test operator {0:?}")]
    ByteTestOperator(String),
    /// A constant byte count outside 1-8 (23 with `string`).
    #[error("byte_test bytes must be 1-8 (or up to 23 with string)")]
    ByteTestBytes,
}

/// A number or a `byte_extract` variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    /// A constant.
    Const(i64),
    /// A variable set by `byte_extract` earlier in the rule.
    Var(String),
}

impl Val {
    fn get(&self, vars: &HashMap<String, i64>) -> Option<i64> {
        match self {
            Val::Const(n) => Some(*n),
            Val::Var(v) => vars.get(v).copied(),
        }
    }
}

/// Numeric comparisons (`dsize`, `ttl`, `bsize`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// `N`.
    Eq(i64),
    /// `!N`.
    Ne(i64),
    /// `<N`.
    Lt(i64),
    /// `>N`.
    Gt(i64),
    /// `<=N`.
    Le(i64),
    /// `>=N`.
    Ge(i64),
    /// `N<>M`: strictly between.
    Between(i64, i64),
    /// `N-M`: inclusive.
    Inclusive(i64, i64),
}

impl Range {
    /// Whether `v` satisfies the comparison.
    pub fn test(&self, v: i64) -> bool {
        match *self {
            Range::Eq(n) => v == n,
            Range::Ne(n) => v != n,
            Range::Lt(n) => v < n,
            Range::Gt(n) => v > n,
            Range::Le(n) => v <= n,
            Range::Ge(n) => v >= n,
            Range::Between(a, b) => v > a && v < b,
            Range::Inclusive(a, b) => v >= a && v <= b,
        }
    }
}

/// `content` and its modifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// The bytes.
    pub pattern: Vec<u8>,
    /// `!content`.
    pub negated: bool,
    /// `nocase`.
    pub nocase: bool,
    /// `offset`.
    pub offset: Option<Val>,
    /// `depth`.
    pub depth: Option<Val>,
    /// `distance`.
    pub distance: Option<Val>,
    /// `within`.
    pub within: Option<Val>,
    /// `startswith`.
    pub startswith: bool,
    /// `endswith`.
    pub endswith: bool,
    /// `fast_pattern`.
    pub fast_pattern: bool,
    /// `fast_pattern:offset,length`.
    pub fast_slice: Option<(usize, usize)>,
    /// The substring searcher, built on first use (after every modifier, `nocase` among them,
    /// has been applied).
    pub finder: Searcher,
}

/// A lazily built [`memchr::memmem::Finder`]; equal to every other, as it only caches what
/// the pattern and `nocase` already say.
#[derive(Clone, Debug, Default)]
pub struct Searcher(std::sync::OnceLock<Box<memchr::memmem::Finder<'static>>>);

impl PartialEq for Searcher {
    fn eq(&self, _: &Searcher) -> bool {
        true
    }
}

impl Eq for Searcher {}

impl std::ops::Deref for Searcher {
    type Target = std::sync::OnceLock<Box<memchr::memmem::Finder<'static>>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Content {
    /// A content with no modifiers yet.
    pub fn new(pattern: Vec<u8>, negated: bool) -> Content {
        Content {
            pattern,
            negated,
            nocase: false,
            offset: None,
            depth: None,
            distance: None,
            within: None,
            startswith: false,
            endswith: false,
            fast_pattern: false,
            fast_slice: None,
            finder: Searcher::default(),
        }
    }

    fn relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }

    /// Whether its window depends on nothing earlier keywords did (not relative, no
    /// `byte_extract` variable in `offset` or `depth`).
    fn fixed(&self) -> bool {
        !self.relative()
            && !matches!(self.offset, Some(Val::Var(_)))
            && !matches!(self.depth, Some(Val::Var(_)))
    }
}

/// `byte_test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteTest {
    bytes: Val,
    op: u8,
    not: bool,
    value: Val,
    offset: Val,
    relative: bool,
    little: bool,
    string: Option<u32>,
    bitmask: Option<u64>,
}

impl ByteTest {
    /// Builds a test; `op` is `<`, `>`, `=`, `<=`, `>=`, `&`, `^`, optionally prefixed `!`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per byte_test field"
    )]
    pub fn new(
        bytes: Val,
        op: &str,
        value: Val,
        offset: Val,
        relative: bool,
        little: bool,
        string: Option<u32>,
        bitmask: Option<u64>,
    ) -> Result<ByteTest, MatcherError> {
        let (not, op) = match op.strip_prefix('!') {
            Some(rest) => (true, if rest.is_empty() { "=" } else { rest }),
            None => (false, op),
        };
        let op = match op {
            "<" => b'<',
            ">" => b'>',
            "=" => b'=',
            "<=" => b'l',
            ">=" => b'g',
            "&" => b'&',
            "^" => b'^',
            other => return Err(MatcherError::ByteTestOperator(other.to_owned())),
        };
        if let Val::Const(n) = bytes {
            // 0 with `string` reads every digit there is (Suricata 7+).
            if (n < 1 && string.is_none()) || n < 0 || (string.is_none() && n > 8) || n > 23 {
                return Err(MatcherError::ByteTestBytes);
            }
        }
        Ok(ByteTest {
            bytes,
            op,
            not,
            value,
            offset,
            relative,
            little,
            string,
            bitmask,
        })
    }
}

/// `byte_jump`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteJump {
    /// Bytes to read.
    pub bytes: u8,
    /// Offset of the read.
    pub offset: Val,
    /// From the previous match.
    pub relative: bool,
    /// Little-endian.
    pub little: bool,
    /// Read as a number in this radix.
    pub string: Option<u32>,
    /// Mask applied to the value.
    pub bitmask: Option<u64>,
    /// Value multiplier.
    pub multiplier: i64,
    /// Round the jump up to 4 bytes.
    pub align: bool,
    /// Jump from the start of the buffer.
    pub from_beginning: bool,
    /// Jump from the end of the buffer.
    pub from_end: bool,
    /// Added after the jump.
    pub post_offset: i64,
}

/// `byte_extract`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteExtract {
    /// Bytes to read.
    pub bytes: u8,
    /// Offset of the read.
    pub offset: i64,
    /// Variable name.
    pub var: String,
    /// From the previous match.
    pub relative: bool,
    /// Little-endian.
    pub little: bool,
    /// Read as a number in this radix.
    pub string: Option<u32>,
    /// Mask.
    pub bitmask: Option<u64>,
    /// Multiplier.
    pub multiplier: i64,
    /// Round the value up to this multiple.
    pub align: i64,
}

/// `isdataat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsDataAt {
    /// Offset that must (not) hold data.
    pub n: Val,
    /// From the previous match.
    pub relative: bool,
    /// `!`.
    pub negated: bool,
}

/// One payload keyword.
#[derive(Clone, Debug, PartialEq)]
pub enum Matcher {
    /// `content`.
    Content(Content),
    /// `pcre`.
    Pcre(Pcre),
    /// `byte_test`.
    ByteTest(ByteTest),
    /// `byte_jump`.
    ByteJump(ByteJump),
    /// `byte_extract`.
    ByteExtract(ByteExtract),
    /// `isdataat`.
    IsDataAt(IsDataAt),
    /// `bsize` (and `urilen`).
    Bsize(Range),
    /// A buffer that holds one number in its first byte (`dns.opcode`), compared.
    Number(Range),
}

/// Reads `bytes` at `at` as a number: binary (big or little endian) or text in `radix`.
fn read_number(
    buf: &[u8],
    at: usize,
    bytes: usize,
    little: bool,
    string: Option<u32>,
) -> Option<u64> {
    let raw = buf.get(at..at.checked_add(bytes)?)?;
    match string {
        Some(radix) => {
            let text = std::str::from_utf8(raw).ok()?;
            u64::from_str_radix(text.trim(), radix).ok()
        }
        None => {
            let mut v = 0u64;
            if little {
                for b in raw.iter().rev() {
                    v = (v << 8) | u64::from(*b);
                }
            } else {
                for b in raw {
                    v = (v << 8) | u64::from(*b);
                }
            }
            Some(v)
        }
    }
}

/// Where a byte keyword reads: `offset` from the buffer's start, or from the end of the
/// previous match when `relative`; `None` before the start.
fn read_at(relative: bool, prev: usize, offset: i64) -> Option<usize> {
    let base = if relative { prev as i64 } else { 0 };
    usize::try_from(base + offset).ok()
}

fn apply_mask(v: u64, mask: Option<u64>) -> u64 {
    match mask {
        Some(m) if m != 0 => (v & m) >> m.trailing_zeros(),
        _ => v,
    }
}

/// Where `c` next occurs in `window` (of the raw buffer) and `low` (the same window of the
/// lowercased buffer): a case-insensitive content is searched exactly in the lowercased bytes,
/// which has the same positions, so both cases run a SIMD substring search instead of
/// comparing every window.
fn find(c: &Content, window: &[u8], low: &[u8]) -> Option<usize> {
    if c.pattern.is_empty() || c.pattern.len() > window.len() {
        return None;
    }
    if c.nocase && low.len() != window.len() {
        // A caller that did not lowercase the buffer: compare window by window.
        debug_assert!(false, "nocase content without a lowercased buffer");
        return window
            .windows(c.pattern.len())
            .position(|w| w.eq_ignore_ascii_case(&c.pattern));
    }
    let f = c.finder.get_or_init(|| {
        let p = if c.nocase {
            c.pattern.to_ascii_lowercase()
        } else {
            c.pattern.clone()
        };
        Box::new(memchr::memmem::Finder::new(&p).into_owned())
    });
    f.find(if c.nocase { low } else { window })
}

/// `buf` lowercased into `out` when a case-insensitive content of `ms` will need it.
pub fn lowered<'a>(ms: &[Matcher], buf: &[u8], out: &'a mut Vec<u8>) -> &'a [u8] {
    out.clear();
    if ms
        .iter()
        .any(|m| matches!(m, Matcher::Content(c) if c.nocase))
    {
        out.extend(buf.iter().map(u8::to_ascii_lowercase));
    }
    out
}

/// What inspecting one buffer with a list of keywords found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The list matches.
    Match,
    /// It does not.
    NoMatch,
    /// The search gave up after its step budget ([`DEFAULT_INSPECTION_LIMIT`]): no match,
    /// as in Suricata, but counted.
    Limit,
}

/// Steps (one per keyword tried at one position) one list may take on one buffer: Suricata's
/// `detect.inspection-recursion-limit` default. Backtracking over relative keywords is
/// otherwise exponential in the number of keywords: on real traffic one ET Open rule (five
/// relative keywords over a script body) took 0.7 ms a body, and crafted input can take far
/// longer.
pub const DEFAULT_INSPECTION_LIMIT: u32 = 3000;

/// Whether `buf` satisfies `ms`. `vars` receives `byte_extract` values.
pub fn match_list(ms: &[Matcher], buf: &[u8], vars: &mut HashMap<String, i64>) -> bool {
    let mut low = Vec::new();
    let low = lowered(ms, buf, &mut low);
    match_list_lowered(ms, buf, low, vars, DEFAULT_INSPECTION_LIMIT) == Verdict::Match
}

/// [`match_list`] with `buf` already lowercased in `low` (as [`lowered`] does; it may be
/// empty when no content of `ms` is case-insensitive), so several lists and rules on the same
/// buffer lowercase it once, and at most `limit` steps.
pub fn match_list_lowered(
    ms: &[Matcher],
    buf: &[u8],
    low: &[u8],
    vars: &mut HashMap<String, i64>,
    limit: u32,
) -> Verdict {
    let mut w = Walk {
        left: limit,
        stop: None,
    };
    match (step(ms, buf, low, 0, 0, vars, &mut w), w.stop) {
        (true, _) => Verdict::Match,
        (false, Some(Stop::Limit)) => Verdict::Limit,
        (false, _) => Verdict::NoMatch,
    }
}

/// Why a search ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// No other position of an earlier keyword can make the list match (Suricata's
    /// "discontinue matching"): a keyword that does not depend on earlier matches failed.
    Fatal,
    /// The step budget is spent.
    Limit,
}

/// The state of one list's search.
struct Walk {
    left: u32,
    stop: Option<Stop>,
}

impl Walk {
    /// Ends the whole search: `false`, and no earlier keyword tries another position.
    fn give_up(&mut self, why: Stop) -> bool {
        self.stop.get_or_insert(why);
        false
    }
}

fn step(
    ms: &[Matcher],
    buf: &[u8],
    low: &[u8],
    idx: usize,
    prev: usize,
    vars: &mut HashMap<String, i64>,
    w: &mut Walk,
) -> bool {
    if w.left == 0 {
        return w.give_up(Stop::Limit);
    }
    w.left -= 1;
    let Some(m) = ms.get(idx) else { return true };
    match m {
        Matcher::Content(c) => {
            let len = c.pattern.len();
            let (start, end) = if c.startswith {
                (0usize, len.min(buf.len()))
            } else if c.relative() {
                let d = c.distance.as_ref().and_then(|v| v.get(vars)).unwrap_or(0);
                let s = (prev as i64 + d).max(0) as usize;
                let e = match c.within.as_ref().and_then(|v| v.get(vars)) {
                    Some(w) => ((prev as i64 + d + w).max(0) as usize).min(buf.len()),
                    None => buf.len(),
                };
                (s, e)
            } else {
                let o = c
                    .offset
                    .as_ref()
                    .and_then(|v| v.get(vars))
                    .unwrap_or(0)
                    .max(0) as usize;
                let e = match c.depth.as_ref().and_then(|v| v.get(vars)) {
                    Some(dp) => (o + dp.max(0) as usize).min(buf.len()),
                    None => buf.len(),
                };
                (o, e)
            };
            let (window, low_window) = if start <= end && start <= buf.len() {
                (&buf[start..end], low.get(start..end).unwrap_or_default())
            } else {
                (&[][..], &[][..])
            };
            if c.negated {
                let found = if c.endswith {
                    end == buf.len() && window.len() >= len && {
                        let tail = &window[window.len() - len..];
                        if c.nocase {
                            tail.eq_ignore_ascii_case(&c.pattern)
                        } else {
                            tail == c.pattern.as_slice()
                        }
                    }
                } else {
                    find(c, window, low_window).is_some()
                };
                if found {
                    // Its window does not depend on earlier matches: it fails wherever they
                    // matched.
                    return if c.fixed() {
                        w.give_up(Stop::Fatal)
                    } else {
                        false
                    };
                }
                return step(ms, buf, low, idx + 1, prev, vars, w);
            }
            let next_relative = ms.get(idx + 1).is_some_and(is_relative);
            // When the next keyword is a content searched from this match's end to the end
            // of the buffer (`distance` without `within`), a later position of this one
            // gives it a window inside the one it already searched, so every continuation
            // was already tried: without this, each failed position re-scans the rest of
            // the buffer (quadratic in a long body, cubic with three such contents).
            let retry = next_relative
                && !matches!(ms.get(idx + 1),
                    Some(Matcher::Content(n)) if !n.negated && n.within.is_none());
            let mut from = 0usize;
            while let Some(p) = find(
                c,
                &window[from.min(window.len())..],
                low_window.get(from..).unwrap_or_default(),
            ) {
                let at = start + from + p;
                let mend = at + len;
                from += p + 1;
                if c.endswith && mend != buf.len() {
                    continue;
                }
                if step(ms, buf, low, idx + 1, mend, vars, w) {
                    return true;
                }
                if w.stop.is_some() {
                    return false;
                }
                if !retry {
                    // Later keywords do not depend on where this one matched.
                    return false;
                }
            }
            if c.fixed() {
                // Its window does not depend on earlier matches: trying their other
                // positions would search the same bytes again.
                return w.give_up(Stop::Fatal);
            }
            false
        }
        Matcher::Pcre(p) => {
            let start = if p.relative { prev } else { 0 };
            let first = p.find_from(buf, start);
            if p.negated || first.is_none() {
                return match first {
                    None if p.negated => step(ms, buf, low, idx + 1, prev, vars, w),
                    // An absolute pattern fails wherever earlier keywords matched.
                    _ if !p.relative => w.give_up(Stop::Fatal),
                    _ => false,
                };
            }
            // As for a content, later relative keywords that fail make the pattern try its
            // next match (one starting after the last one's start), as Suricata does.
            let next_relative = ms.get(idx + 1).is_some_and(is_relative);
            let mut found = first;
            while let Some((s, e)) = found {
                if step(ms, buf, low, idx + 1, e, vars, w) {
                    return true;
                }
                if w.stop.is_some() || !next_relative {
                    return false;
                }
                found = p.find_from_at(buf, start, s + 1 - start);
            }
            false
        }
        Matcher::ByteTest(t) => {
            let Some(at) = t
                .offset
                .get(vars)
                .and_then(|o| read_at(t.relative, prev, o))
            else {
                return false;
            };
            let Some(mut n) = t.bytes.get(vars).filter(|n| (0..=23).contains(n)) else {
                return false;
            };
            if n == 0 {
                let radix = t.string.unwrap_or(10);
                let from = at.min(buf.len());
                n = buf[from..]
                    .iter()
                    .take(23)
                    .take_while(|b| (**b as char).is_digit(radix))
                    .count() as i64;
                if n == 0 {
                    return false;
                }
            }
            let Some(v) = read_number(buf, at, n as usize, t.little, t.string) else {
                return false;
            };
            let v = apply_mask(v, t.bitmask);
            let Some(want) = t.value.get(vars) else {
                return false;
            };
            let want = want as u64;
            let ok = match t.op {
                b'<' => v < want,
                b'>' => v > want,
                b'=' => v == want,
                b'l' => v <= want,
                b'g' => v >= want,
                b'&' => v & want != 0,
                b'^' => v ^ want != 0,
                _ => false,
            };
            ok != t.not && step(ms, buf, low, idx + 1, prev, vars, w)
        }
        Matcher::ByteJump(j) => {
            let Some(at) = j
                .offset
                .get(vars)
                .and_then(|o| read_at(j.relative, prev, o))
            else {
                return false;
            };
            let Some(v) = read_number(buf, at, usize::from(j.bytes), j.little, j.string) else {
                return false;
            };
            let mut jump = apply_mask(v, j.bitmask) as i64 * j.multiplier;
            if j.align && jump % 4 != 0 {
                jump += 4 - jump % 4;
            }
            let pos = if j.from_beginning {
                jump
            } else if j.from_end {
                buf.len() as i64 + jump
            } else {
                at as i64 + i64::from(j.bytes) + jump
            } + j.post_offset;
            if pos < 0 || pos as usize > buf.len() {
                return false;
            }
            step(ms, buf, low, idx + 1, pos as usize, vars, w)
        }
        Matcher::ByteExtract(e) => {
            let Some(at) = read_at(e.relative, prev, e.offset) else {
                return false;
            };
            let Some(v) = read_number(buf, at, usize::from(e.bytes), e.little, e.string) else {
                return false;
            };
            let mut v = apply_mask(v, e.bitmask) as i64 * e.multiplier;
            if e.align > 0 && v % e.align != 0 {
                v += e.align - v % e.align;
            }
            vars.insert(e.var.clone(), v);
            step(ms, buf, low, idx + 1, at + usize::from(e.bytes), vars, w)
        }
        Matcher::IsDataAt(d) => {
            let Some(n) = d.n.get(vars) else { return false };
            let pos = if d.relative { prev as i64 + n } else { n };
            let has = pos >= 0 && (pos as usize) < buf.len();
            if has == d.negated {
                // At a fixed offset, the answer is the same whatever matched before.
                let fixed = !d.relative && matches!(d.n, Val::Const(_));
                return if fixed { w.give_up(Stop::Fatal) } else { false };
            }
            step(ms, buf, low, idx + 1, prev, vars, w)
        }
        Matcher::Bsize(r) => r.test(buf.len() as i64) && step(ms, buf, low, idx + 1, prev, vars, w),
        Matcher::Number(r) => {
            buf.first().is_some_and(|&v| r.test(i64::from(v)))
                && step(ms, buf, low, idx + 1, prev, vars, w)
        }
    }
}

fn is_relative(m: &Matcher) -> bool {
    match m {
        Matcher::Content(c) => c.relative(),
        Matcher::Pcre(p) => p.relative,
        Matcher::ByteTest(t) => t.relative,
        Matcher::ByteJump(j) => j.relative,
        Matcher::ByteExtract(e) => e.relative,
        Matcher::IsDataAt(d) => d.relative,
        Matcher::Bsize(_) | Matcher::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(p: &str) -> Content {
        Content::new(p.as_bytes().to_vec(), false)
    }

    fn run(ms: Vec<Matcher>, buf: &[u8]) -> bool {
        match_list(&ms, buf, &mut HashMap::new())
    }

    #[test]
    fn content_positions() {
        assert!(run(vec![Matcher::Content(content("abc"))], b"xxabcxx"));
        assert!(!run(vec![Matcher::Content(content("ABC"))], b"xxabcxx"));
        let mut c = content("ABC");
        c.nocase = true;
        assert!(run(vec![Matcher::Content(c)], b"xxabcxx"));
        let mut c = content("abc");
        c.depth = Some(Val::Const(4));
        assert!(!run(vec![Matcher::Content(c.clone())], b"xxabcxx"));
        c.depth = Some(Val::Const(5));
        assert!(run(vec![Matcher::Content(c)], b"xxabcxx"));
        let mut c = content("abc");
        c.offset = Some(Val::Const(3));
        assert!(!run(vec![Matcher::Content(c.clone())], b"xxabcxx"));
        assert!(run(vec![Matcher::Content(c)], b"xxabcxabcx"));
        let mut s = content("GET");
        s.startswith = true;
        assert!(run(vec![Matcher::Content(s.clone())], b"GET /"));
        assert!(!run(vec![Matcher::Content(s)], b" GET /"));
        let mut e = content(".exe");
        e.endswith = true;
        assert!(run(vec![Matcher::Content(e.clone())], b"/a.exe"));
        assert!(!run(vec![Matcher::Content(e)], b"/a.exe?x"));
    }

    #[test]
    fn relative_contents_backtrack() {
        // "a" then "b" within 2 bytes: the first "a" fails, the second succeeds.
        let mut b = content("b");
        b.within = Some(Val::Const(2));
        assert!(run(
            vec![Matcher::Content(content("a")), Matcher::Content(b.clone())],
            b"a....ab"
        ));
        assert!(!run(
            vec![Matcher::Content(content("a")), Matcher::Content(b)],
            b"a....a..b"
        ));
        let mut d = content("c");
        d.distance = Some(Val::Const(3));
        assert!(run(
            vec![Matcher::Content(content("x")), Matcher::Content(d.clone())],
            b"x123c"
        ));
        assert!(!run(
            vec![Matcher::Content(content("x")), Matcher::Content(d)],
            b"x12c"
        ));
    }

    #[test]
    fn negated_content() {
        let mut n = content("evil");
        n.negated = true;
        assert!(run(
            vec![
                Matcher::Content(content("GET")),
                Matcher::Content(n.clone())
            ],
            b"GET /good"
        ));
        assert!(!run(
            vec![Matcher::Content(content("GET")), Matcher::Content(n)],
            b"GET /evil"
        ));
    }

    #[test]
    fn byte_keywords() {
        // Length byte 3 then "abc": byte_jump over the length, then content at the jump.
        let buf = b"\x00\x03abcXYZ";
        let jump = ByteJump {
            bytes: 2,
            offset: Val::Const(0),
            relative: false,
            little: false,
            string: None,
            bitmask: None,
            multiplier: 1,
            align: false,
            from_beginning: false,
            from_end: false,
            post_offset: 0,
        };
        let mut c = content("XYZ");
        c.distance = Some(Val::Const(0));
        c.within = Some(Val::Const(3));
        assert!(run(vec![Matcher::ByteJump(jump), Matcher::Content(c)], buf));
        let t = ByteTest::new(
            Val::Const(2),
            ">",
            Val::Const(2),
            Val::Const(0),
            false,
            false,
            None,
            None,
        )
        .expect("test");
        assert!(run(vec![Matcher::ByteTest(t)], buf));
        let t = ByteTest::new(
            Val::Const(2),
            "!=",
            Val::Const(3),
            Val::Const(0),
            false,
            false,
            None,
            None,
        )
        .expect("test");
        assert!(!run(vec![Matcher::ByteTest(t)], buf));
        let t = ByteTest::new(
            Val::Const(3),
            "=",
            Val::Const(123),
            Val::Const(1),
            false,
            false,
            Some(10),
            None,
        )
        .expect("string");
        assert!(run(vec![Matcher::ByteTest(t)], b"x123"));
        let ex = ByteExtract {
            bytes: 1,
            offset: 1,
            var: "len".into(),
            relative: false,
            little: false,
            string: None,
            bitmask: None,
            multiplier: 1,
            align: 0,
        };
        let mut c = content("abc");
        c.depth = Some(Val::Var("len".into()));
        c.offset = Some(Val::Const(2));
        assert!(run(
            vec![Matcher::ByteExtract(ex), Matcher::Content(c)],
            buf
        ));
        let d = IsDataAt {
            n: Val::Const(7),
            relative: false,
            negated: false,
        };
        assert!(run(vec![Matcher::IsDataAt(d.clone())], buf));
        assert!(!run(vec![Matcher::IsDataAt(d)], &buf[..7]));
        assert!(run(vec![Matcher::Bsize(Range::Between(5, 9))], buf));
    }

    #[test]
    fn pcre_flags_and_relative() {
        let p = Pcre::new("^ab+c", PcreOpts::default(), false, false).expect("pcre");
        assert!(run(vec![Matcher::Pcre(p.clone())], b"abbbc"));
        assert!(!run(vec![Matcher::Pcre(p)], b"xabbbc"));
        let p = Pcre::new("^def", PcreOpts::default(), true, false).expect("pcre");
        assert!(run(
            vec![Matcher::Content(content("abc")), Matcher::Pcre(p)],
            b"abcdef"
        ));
        let p = Pcre::new(
            "evil",
            PcreOpts {
                caseless: true,
                ..Default::default()
            },
            false,
            true,
        )
        .expect("pcre");
        assert!(!run(vec![Matcher::Pcre(p)], b"EVIL"));
        assert!(Pcre::new("(unclosed", PcreOpts::default(), false, false).is_err());
    }

    #[test]
    fn ranges() {
        assert!(Range::Between(1, 5).test(3) && !Range::Between(1, 5).test(5));
        assert!(Range::Ne(3).test(4) && !Range::Ne(3).test(3));
        assert!(Range::Ge(3).test(3) && Range::Lt(3).test(2));
    }

    /// The backtracking search without any pruning: every position of every content is
    /// tried whenever the next keyword is relative.
    fn exhaustive(ms: &[Content], buf: &[u8], idx: usize, prev: usize) -> bool {
        let Some(c) = ms.get(idx) else { return true };
        let konst = |v: &Option<Val>| match v {
            Some(Val::Const(n)) => Some(*n),
            _ => None,
        };
        let (start, end) = if c.relative() {
            let d = konst(&c.distance).unwrap_or(0);
            let s = (prev as i64 + d).max(0) as usize;
            let e = konst(&c.within).map_or(buf.len(), |w| {
                ((prev as i64 + d + w).max(0) as usize).min(buf.len())
            });
            (s, e)
        } else {
            let o = konst(&c.offset).unwrap_or(0).max(0) as usize;
            let e = konst(&c.depth).map_or(buf.len(), |dp| (o + dp.max(0) as usize).min(buf.len()));
            (o, e)
        };
        let n = c.pattern.len();
        let hits: Vec<usize> = if start <= end && end <= buf.len() && n <= end - start {
            (start..=end - n)
                .filter(|&i| buf[i..i + n] == c.pattern[..])
                .collect()
        } else {
            Vec::new()
        };
        if c.negated {
            return hits.is_empty() && exhaustive(ms, buf, idx + 1, prev);
        }
        let next_relative = ms.get(idx + 1).is_some_and(Content::relative);
        for at in hits {
            if exhaustive(ms, buf, idx + 1, at + n) {
                return true;
            }
            if !next_relative {
                return false;
            }
        }
        false
    }

    #[test]
    fn pruning_finds_what_the_exhaustive_search_finds() {
        // A fixed xorshift stream: reproducible without a dependency.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let (mut matched, mut cases) = (0, 0);
        for _ in 0..40_000 {
            let buf: Vec<u8> = (0..next(14)).map(|_| b"ab"[next(2) as usize]).collect();
            let mut list = Vec::new();
            for i in 0..1 + next(4) {
                let pat: Vec<u8> = (0..1 + next(2)).map(|_| b"ab"[next(2) as usize]).collect();
                let mut c = Content::new(pat, next(6) == 0);
                if i > 0 && next(3) > 0 {
                    if next(2) == 0 {
                        c.distance = Some(Val::Const(next(5) as i64 - 1));
                    }
                    if c.distance.is_none() || next(2) == 0 {
                        c.within = Some(Val::Const(1 + next(6) as i64));
                    }
                } else if next(3) == 0 {
                    c.offset = Some(Val::Const(next(4) as i64));
                    c.depth = Some(Val::Const(1 + next(8) as i64));
                }
                list.push(c);
            }
            let want = exhaustive(&list, &buf, 0, 0);
            let ms: Vec<Matcher> = list.into_iter().map(Matcher::Content).collect();
            let got = match_list_lowered(&ms, &buf, &[], &mut HashMap::new(), u32::MAX);
            assert_eq!(
                got == Verdict::Match,
                want,
                "{ms:?} on {:?}",
                String::from_utf8_lossy(&buf)
            );
            cases += 1;
            matched += usize::from(want);
        }
        // Both outcomes are well represented, or the comparison proves little.
        assert!(
            matched > cases / 10 && matched < cases * 9 / 10,
            "{matched} of {cases}"
        );
    }

    #[test]
    fn a_pcre_tries_its_next_match_when_later_keywords_fail() {
        let pcre = |re: &str, relative: bool| {
            Matcher::Pcre(Pcre::new(re, PcreOpts::default(), relative, false).expect("compiles"))
        };
        let mut c = content("c");
        c.within = Some(Val::Const(1));
        let ms = vec![
            Matcher::Content(content("a")),
            pcre("b+", true),
            Matcher::Content(c.clone()),
        ];
        // "bb" is followed by x; the next match, starting after its start, is "b" (still
        // followed by x); then "bb" followed by c.
        assert!(run(ms.clone(), b"abbxbbc"));
        assert!(!run(ms, b"abbxbbx"));
        // An anchored relative pattern has one place to match: right after the content.
        let anchored = vec![
            Matcher::Content(content("a")),
            pcre("^b+", true),
            Matcher::Content(c),
        ];
        assert!(!run(anchored.clone(), b"abbxbbc"));
        assert!(run(anchored, b"xabbc"));
    }

    #[test]
    fn backtracking_stops_at_the_step_limit() {
        // Each "a" is retried for each "a" after it (`within` keeps every position worth a
        // try), and the final "z" is never there: cubic in the buffer's length.
        let within = |p: &str| {
            let mut c = content(p);
            c.within = Some(Val::Const(1000));
            Matcher::Content(c)
        };
        let ms = vec![
            Matcher::Content(content("a")),
            within("a"),
            within("a"),
            within("z"),
        ];
        let buf = vec![b'a'; 200];
        let mut vars = HashMap::new();
        assert_eq!(
            match_list_lowered(&ms, &buf, &[], &mut vars, DEFAULT_INSPECTION_LIMIT),
            Verdict::Limit
        );
        assert_eq!(
            match_list_lowered(&ms[..3], &buf, &[], &mut vars, DEFAULT_INSPECTION_LIMIT),
            Verdict::Match
        );
        assert_eq!(
            match_list_lowered(&ms, &buf, &[], &mut vars, u32::MAX),
            Verdict::NoMatch,
            "without a limit the whole search runs"
        );
        let short = b"aaaz";
        assert_eq!(
            match_list_lowered(&ms, short, &[], &mut vars, DEFAULT_INSPECTION_LIMIT),
            Verdict::Match
        );
    }
}
