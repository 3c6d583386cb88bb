//! Matching one buffer against a rule's list of payload keywords, with Suricata's semantics:
//! `content` with its positional modifiers (absolute `offset`/`depth`, relative
//! `distance`/`within` measured from the end of the previous match, `startswith`,
//! `endswith`, negation), `pcre`, `byte_test`, `byte_jump`, `byte_extract`, `isdataat` and
//! `bsize`. Later relative keywords that fail make earlier contents try their next
//! occurrence, and a relative `pcre` its next match (backtracking, in [`search`]), as in
//! Suricata.

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

mod search;

pub use search::{lowered, match_list, match_list_lowered, Verdict, DEFAULT_INSPECTION_LIMIT};

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
    fn a_failure_after_a_byte_extract_lets_earlier_positions_be_tried() {
        // "a", the byte after it as `v`, an absolute "Z", then "q" right `v` bytes after it: the
        // first "a" reads 5 and fails at "q"; the second reads 0 and matches. The absolute
        // "Z" was found both times: its failure the first time was not final.
        let ex = ByteExtract {
            bytes: 1,
            offset: 0,
            var: "v".into(),
            relative: true,
            little: false,
            string: None,
            bitmask: None,
            multiplier: 1,
            align: 0,
        };
        let mut q = content("q");
        q.distance = Some(Val::Var("v".into()));
        q.within = Some(Val::Const(1));
        let ms = vec![
            Matcher::Content(content("a")),
            Matcher::ByteExtract(ex),
            Matcher::Content(content("Z")),
            Matcher::Content(q),
        ];
        assert!(run(ms.clone(), b"a\x05a\x00Zq"));
        assert!(!run(ms, b"a\x05a\x01Zq"));
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
