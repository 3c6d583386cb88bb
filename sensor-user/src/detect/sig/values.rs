//! Values inside rule options: numbers, ranges, TCP flag letters, comma-separated
//! arguments, the common `byte_*` flags, and `threshold` / `detection_filter` settings.

use super::{Rate, Refusal, Threshold, Track};
use crate::detect::matcher::{Range, Val};

/// Why a range or a set of TCP flags does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A bound that is not a decimal or `0x` number.
    #[error("{0:?} is not a number")]
    NotANumber(String),
    /// A character that is not one of `FSRPAUEC12` or `0`.
    #[error("{0:?} is not a TCP flag")]
    NotATcpFlag(char),
}

/// Parses a numeric value, decimal or `0x` hex.
pub(super) fn number(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

pub(super) fn val(s: &str, vars: &[String]) -> Result<Val, Refusal> {
    let s = s.trim();
    match number(s) {
        Some(n) => Ok(Val::Const(n)),
        None if vars.iter().any(|v| v == s) => Ok(Val::Var(s.to_string())),
        None => Err(Refusal::Invalid(format!(
            "{s:?} is neither a number nor a byte_extract variable"
        ))),
    }
}

/// Parses `N`, `<N`, `>N`, `<=N`, `>=N`, `!N`, `N<>M` (exclusive), `N-M` (inclusive).
pub fn parse_range(s: &str) -> Result<Range, ValueError> {
    let s = s.trim();
    let n = |x: &str| number(x).ok_or_else(|| ValueError::NotANumber(x.to_owned()));
    if let Some((a, b)) = s.split_once("<>") {
        return Ok(Range::Between(n(a)?, n(b)?));
    }
    if let Some(x) = s.strip_prefix("<=") {
        return Ok(Range::Le(n(x)?));
    }
    if let Some(x) = s.strip_prefix(">=") {
        return Ok(Range::Ge(n(x)?));
    }
    if let Some(x) = s.strip_prefix('<') {
        return Ok(Range::Lt(n(x)?));
    }
    if let Some(x) = s.strip_prefix('>') {
        return Ok(Range::Gt(n(x)?));
    }
    if let Some(x) = s.strip_prefix('!') {
        return Ok(Range::Ne(n(x)?));
    }
    if let Some(x) = s.strip_prefix('=') {
        return Ok(Range::Eq(n(x)?));
    }
    if let Some((a, b)) = s.split_once('-').filter(|(a, _)| !a.is_empty()) {
        return Ok(Range::Inclusive(n(a)?, n(b)?));
    }
    Ok(Range::Eq(n(s)?))
}

pub(super) fn flag_bits(s: &str) -> Result<u8, ValueError> {
    let mut b = 0u8;
    for c in s.chars() {
        b |= match c.to_ascii_uppercase() {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' | '2' => 0x40,
            'C' | '1' => 0x80,
            '0' => 0,
            other => return Err(ValueError::NotATcpFlag(other)),
        };
    }
    Ok(b)
}

pub(super) fn track(s: &str) -> Result<Track, Refusal> {
    Ok(match s.trim() {
        "by_src" => Track::BySrc,
        "by_dst" => Track::ByDst,
        "by_rule" => Track::ByRule,
        "by_both" => Track::ByBoth,
        "by_flow" => Track::ByFlow,
        other => {
            return Err(Refusal::Invalid(format!(
                "track {other:?} must be by_src, by_dst, by_rule, by_both or by_flow"
            )))
        }
    })
}

pub(super) fn parse_threshold(v: &str, detection_filter: bool) -> Result<Threshold, Refusal> {
    let mut rate = if detection_filter {
        Some(Rate::DetectionFilter)
    } else {
        None
    };
    let (mut tr, mut count, mut seconds) = (None, None, None);
    for part in v.split(',') {
        let mut kv = part.split_whitespace();
        let (Some(k), Some(val)) = (kv.next(), kv.next()) else {
            continue;
        };
        match k {
            "type" => {
                rate = Some(match val {
                    "limit" => Rate::Limit,
                    "threshold" => Rate::Threshold,
                    "both" => Rate::Both,
                    other => return Err(Refusal::Invalid(format!("threshold type {other:?}"))),
                })
            }
            "track" => tr = Some(track(val)?),
            "count" => count = val.parse().ok(),
            "seconds" => seconds = val.parse().ok(),
            other => return Err(Refusal::Invalid(format!("threshold option {other:?}"))),
        }
    }
    match (rate, tr, count, seconds) {
        (Some(rate), Some(track), Some(count), Some(seconds)) => Ok(Threshold {
            rate,
            track,
            count,
            seconds,
        }),
        _ => Err(Refusal::Invalid(
            "threshold needs type, track, count and seconds".into(),
        )),
    }
}

pub(super) fn split_args(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Common byte_* flags.
pub(super) struct ByteFlags {
    pub(super) relative: bool,
    pub(super) little: bool,
    pub(super) string: Option<u32>,
    pub(super) bitmask: Option<u64>,
}

pub(super) fn byte_flags(
    args: &[String],
    from: usize,
) -> Result<(ByteFlags, Vec<String>), Refusal> {
    let mut f = ByteFlags {
        relative: false,
        little: false,
        string: None,
        bitmask: None,
    };
    let mut rest = Vec::new();
    let mut i = from;
    while i < args.len() {
        let a = args[i].as_str();
        let mut words = a.split_whitespace();
        match words.next().unwrap_or("") {
            "relative" => f.relative = true,
            "little" => f.little = true,
            "big" => f.little = false,
            "dce" => return Err(Refusal::UnsupportedKeyword("byte option dce".into())),
            "string" => {
                f.string = Some(10);
                if let Some(base) = args.get(i + 1).map(|s| s.as_str()) {
                    let radix = match base {
                        "hex" => Some(16),
                        "dec" => Some(10),
                        "oct" => Some(8),
                        _ => None,
                    };
                    if let Some(r) = radix {
                        f.string = Some(r);
                        i += 1;
                    }
                }
            }
            "hex" => f.string = Some(16),
            "dec" => f.string = Some(10),
            "oct" => f.string = Some(8),
            "bitmask" => {
                let m = words
                    .next()
                    .and_then(number)
                    .ok_or_else(|| Refusal::Invalid("bitmask needs a value".into()))?;
                f.bitmask = Some(m as u64);
            }
            _ => rest.push(a.to_string()),
        }
        i += 1;
    }
    Ok((f, rest))
}

pub(super) fn usize_arg(args: &[String], i: usize, what: &str) -> Result<String, Refusal> {
    args.get(i)
        .cloned()
        .ok_or_else(|| Refusal::Invalid(format!("{what} is missing")))
}
