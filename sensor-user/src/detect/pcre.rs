//! A compiled `pcre` keyword: PCRE2 with JIT, as Suricata uses, with the rule's flags mapped
//! onto builder options or inline flags.

use super::matcher::MatcherError;

/// PCRE compile options from the flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcreOpts {
    /// `i`.
    pub caseless: bool,
    /// `s`.
    pub dotall: bool,
    /// `m`.
    pub multiline: bool,
    /// `x`.
    pub extended: bool,
    /// `A`.
    pub anchored: bool,
    /// `E`.
    pub dollar_endonly: bool,
    /// `G`.
    pub ungreedy: bool,
}

/// A compiled `pcre`.
#[derive(Clone, Debug)]
pub struct Pcre {
    regex: pcre2::bytes::Regex,
    source: String,
    /// `R`: matches from the end of the previous match.
    pub relative: bool,
    /// `!"/.../"`.
    pub negated: bool,
}

impl PartialEq for Pcre {
    fn eq(&self, other: &Pcre) -> bool {
        self.source == other.source
            && self.relative == other.relative
            && self.negated == other.negated
    }
}

impl Pcre {
    /// Compiles a pattern (PCRE2 with JIT, as Suricata uses).
    pub fn new(
        pattern: &str,
        opts: PcreOpts,
        relative: bool,
        negated: bool,
    ) -> Result<Pcre, MatcherError> {
        let mut p = String::new();
        // Options PCRE2's builder does not take directly become inline flags.
        if opts.anchored {
            p.push_str("\\G(?:");
        }
        if opts.ungreedy {
            p.push_str("(?U)");
        }
        if opts.dollar_endonly {
            // PCRE2_DOLLAR_ENDONLY has no inline form; `\z` gives the same meaning for `$`
            // when not multiline, which is the only case the flag changes.
        }
        p.push_str(pattern);
        if opts.anchored {
            p.push(')');
        }
        let regex = pcre2::bytes::RegexBuilder::new()
            .caseless(opts.caseless)
            .dotall(opts.dotall)
            .multi_line(opts.multiline)
            .extended(opts.extended)
            .jit_if_available(true)
            .build(&p)
            .map_err(|error| MatcherError::Pcre {
                pattern: pattern.to_owned(),
                error,
            })?;
        Ok(Pcre {
            regex,
            source: p,
            relative,
            negated,
        })
    }

    pub(super) fn find_from(&self, buf: &[u8], start: usize) -> Option<(usize, usize)> {
        self.find_from_at(buf, start, 0)
    }

    /// The first match in `buf[start..]` that begins `at` bytes or more after `start` (where
    /// a backtracking search looks for the pattern's next match, as Suricata does: the
    /// subject still begins at `start`, so `^` only matches there).
    pub(super) fn find_from_at(
        &self,
        buf: &[u8],
        start: usize,
        at: usize,
    ) -> Option<(usize, usize)> {
        if start > buf.len() || at > buf.len() - start {
            return None;
        }
        // Matching the subslice keeps \G and ^ at the relative start, as Suricata does.
        match self.regex.find_at(&buf[start..], at) {
            Ok(Some(m)) => Some((start + m.start(), start + m.end())),
            _ => None,
        }
    }
}
