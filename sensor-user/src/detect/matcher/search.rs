//! The search itself: one buffer against a rule's keyword list, backtracking over relative
//! keywords within a step budget.

use std::collections::HashMap;

use super::{Content, Matcher, Val};

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
            let mut tried = false;
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
                tried = true;
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
            if c.fixed() && !tried {
                // Not there, in a window that does not depend on earlier matches: trying
                // their other positions would search the same bytes again. (Once a position
                // was tried, later keywords may depend on `byte_extract` values an earlier
                // position sets, so that failure is not final; Suricata takes it as final.)
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
