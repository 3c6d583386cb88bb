//! Address-list files as operators get them (one CIDR or address a line with `#` comments,
//! Spamhaus DROP/EDROP, FireHOL `.netset`/`.ipset`, Team Cymru bogons and fullbogons): parsing
//! into [`Prefix`]es, with every bad line reported by number and reason while the rest loads.

use std::{borrow::Cow, fmt, net::IpAddr, path::Path, str::FromStr};

use anyhow::Context as _;

/// Why a prefix does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// A length beyond the family's (32 or 128).
    #[error("prefix length /{len} is longer than /{max}")]
    TooLong { len: u8, max: u8 },
    /// The part before any `/` is not an address.
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    NotAnAddress(String),
    /// The part after the `/` is not a length of the family.
    #[error("prefix length {len:?} is not a number from 0 to {max}")]
    BadLength { len: String, max: u8 },
}

/// A list format name that is not one of [`Format::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown list format {0:?}: expected auto, plain, spamhaus, firehol or cymru")]
pub struct FormatError(pub String);

/// Why a line of a list file does not load.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A JSON object line in a list whose format has none.
    #[error(
        "a JSON object, which only Spamhaus JSON lists have, in a {0} list: set the list's \
         format to \"spamhaus\" or \"auto\""
    )]
    JsonInTextList(Format),
    /// A `#` comment in a Spamhaus list.
    #[error(
        "a `#` comment, which Spamhaus lists do not have (they use `;`): set the list's format \
         to \"plain\" or \"auto\""
    )]
    HashInSpamhaus,
    /// A `;` comment in a list whose comments start with `#`.
    #[error(
        "a `;` comment, which is Spamhaus syntax, in a {0} list (comments start with `#`): set \
         the list's format to \"spamhaus\" or \"auto\""
    )]
    SemicolonInTextList(Format),
    /// `FIRST-LAST` or `FIRST - LAST`.
    #[error("{0:?} is an address range, which lists do not support: write it as CIDR prefixes")]
    Range(String),
    /// More than one word on a line, in a list of `format`.
    #[error(
        "text after the address ({extra:?}): one address or CIDR a line, and comments start \
         with `{}`",
        comment_start(.format)
    )]
    ExtraText { extra: String, format: Format },
    /// `ADDR/255.255.255.0`.
    #[error(
        "{0:?} has a dotted netmask, which lists do not support: write the prefix length (for \
         example /24)"
    )]
    DottedNetmask(String),
    /// A bad address or CIDR.
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    /// A line starting with `{` that is not JSON.
    #[error("not a valid JSON object ({0})")]
    Json(serde_json::Error),
    /// A Spamhaus JSON line whose `cidr` is not a string.
    #[error("the \"cidr\" field is not a string")]
    CidrNotString,
    /// A Spamhaus JSON line without `cidr`.
    #[error("a JSON object without a \"cidr\" field (Spamhaus JSON lists have one a line)")]
    NoCidr,
    /// A line whose address part is not UTF-8.
    #[error("not UTF-8 text (a binary file, or a list in another encoding?)")]
    NotUtf8,
}

/// One IPv4 or IPv6 prefix, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// 4 or 6.
    pub family: u8,
    /// Network order; IPv4 in the first four bytes, the rest zero.
    pub addr: [u8; 16],
    /// Prefix length (0..=32 or 0..=128).
    pub len: u8,
}

impl Prefix {
    /// The prefix of `len` bits containing `ip`.
    pub fn new(ip: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        let (family, max, mut addr) = match ip {
            IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                (4u8, 32u8, b)
            }
            IpAddr::V6(a) => (6u8, 128u8, a.octets()),
        };
        if len > max {
            return Err(PrefixError::TooLong { len, max });
        }
        for (i, byte) in addr.iter_mut().enumerate() {
            let keep = (len as usize).saturating_sub(i * 8).min(8);
            *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        }
        Ok(Prefix { family, addr, len })
    }

    /// Longest prefix length of the family.
    pub fn max_len(&self) -> u8 {
        if self.family == 4 {
            32
        } else {
            128
        }
    }

    /// `true` when `addr` (of `family`, layout as [`Prefix::addr`]) lies inside.
    pub fn contains(&self, family: u8, addr: &[u8; 16]) -> bool {
        if family != self.family {
            return false;
        }
        let len = self.len as usize;
        let full = len / 8;
        if addr[..full] != self.addr[..full] {
            return false;
        }
        let rest = len % 8;
        rest == 0 || (addr[full] & (0xffu8 << (8 - rest))) == self.addr[full]
    }

    /// `true` when `other` lies inside this prefix (itself included).
    pub fn covers(&self, other: &Prefix) -> bool {
        other.len >= self.len && self.contains(other.family, &other.addr)
    }

    /// The address part as an [`IpAddr`].
    pub fn ip(&self) -> IpAddr {
        if self.family == 4 {
            IpAddr::from([self.addr[0], self.addr[1], self.addr[2], self.addr[3]])
        } else {
            IpAddr::from(self.addr)
        }
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// `ADDR/LEN` or a bare address (a /32 or /128). Host bits set below the length are
    /// cleared, as `ipset` and the kernel do.
    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let s = s.trim();
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| PrefixError::NotAnAddress(ip.to_owned()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| {
                PrefixError::BadLength {
                    len: l.to_owned(),
                    max,
                }
            })?,
        };
        Prefix::new(ip, len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip(), self.len)
    }
}

/// The syntax of a list file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Any of the others, line by line: `#` and `;` comments, JSON object lines.
    #[default]
    Auto,
    /// One CIDR or bare address a line; `#` starts a comment.
    Plain,
    /// Spamhaus DROP/EDROP/DROPv6: `CIDR ; SBLnnn` with `;` comments, or the JSON-lines
    /// variant (`{"cidr":…,"sblid":…}` and a closing `{"type":"metadata",…}`).
    Spamhaus,
    /// FireHOL `.netset`/`.ipset`: a `#` comment header, then one CIDR or address a line.
    Firehol,
    /// Team Cymru bogons and fullbogons: a `# last updated …` line, then CIDRs.
    Cymru,
}

impl Format {
    /// Every format, in the order of [`Format::name`]s an operator is told about.
    pub const ALL: [Format; 5] = [
        Format::Auto,
        Format::Plain,
        Format::Spamhaus,
        Format::Firehol,
        Format::Cymru,
    ];

    /// The config and command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Plain => "plain",
            Format::Spamhaus => "spamhaus",
            Format::Firehol => "firehol",
            Format::Cymru => "cymru",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Format, FormatError> {
        let s = s.trim();
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| FormatError(s.to_owned()))
    }
}

/// A line that did not load, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The line, trimmed (cut short when very long, so a binary file stays readable).
    pub text: String,
    /// What is wrong, worded for the operator.
    pub reason: String,
}

impl BadLine {
    /// `FILE:LINE: REASON: TEXT`, the shape editors and CI logs link to.
    pub fn display(&self, path: &Path) -> String {
        format!(
            "{}:{}: {}: {}",
            path.display(),
            self.line,
            self.reason,
            self.text
        )
    }
}

/// What a list file held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedList {
    /// The prefixes of the good lines, in file order (duplicates kept).
    pub prefixes: Vec<Prefix>,
    /// Lines that did not load.
    pub bad: Vec<BadLine>,
    /// Lines read, comments and blank lines included.
    pub lines: usize,
}

/// Characters of a bad line kept in [`BadLine::text`].
const SHOWN_CHARS: usize = 120;

/// Parses list text; never fails: bad lines are reported in [`ParsedList::bad`].
pub fn parse_list(text: &str, format: Format) -> ParsedList {
    parse_bytes(text.as_bytes(), format)
}

/// Parses list bytes as read from a file. Lines end in `\n`, `\r\n` or `\r`. A line whose
/// address part is not UTF-8 is bad; invalid bytes in a comment are harmless (list headers in
/// Latin-1 exist) and ignored.
pub fn parse_bytes(bytes: &[u8], format: Format) -> ParsedList {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut out = ParsedList::default();
    for (i, raw) in Lines(bytes).enumerate() {
        out.lines = i + 1;
        let (line, utf8) = match std::str::from_utf8(raw) {
            Ok(s) => (Cow::Borrowed(s), true),
            Err(_) => (String::from_utf8_lossy(raw), false),
        };
        match parse_line(&line, format) {
            Ok(None) => {}
            Ok(Some(p)) => out.prefixes.push(p),
            Err(reason) => out.bad.push(BadLine {
                line: i + 1,
                text: shown(&line),
                reason: if utf8 { reason } else { ListError::NotUtf8 }.to_string(),
            }),
        }
    }
    out
}

/// Reads and parses a list file. Only I/O fails; bad lines are in [`ParsedList::bad`].
pub fn load_list(path: &Path, format: Format) -> anyhow::Result<ParsedList> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read list file {}: check the path in the config and that the agent's user may \
             read it",
            path.display()
        )
    })?;
    Ok(parse_bytes(&bytes, format))
}

/// Splits on `\n`, `\r\n` and a lone `\r` (old Mac exports), without a phantom last line.
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr2(b'\n', b'\r', self.0) {
            None => (self.0, &[][..]),
            Some(i) => {
                let skip = if self.0[i..].starts_with(b"\r\n") {
                    2
                } else {
                    1
                };
                (&self.0[..i], &self.0[i + skip..])
            }
        };
        self.0 = rest;
        Some(line)
    }
}

fn shown(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(SHOWN_CHARS) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// The text before the first `c`.
fn cut(s: &str, c: char) -> &str {
    s.split_once(c).map_or(s, |(before, _)| before)
}

/// One line: `Ok(None)` for blank and comment lines.
fn parse_line(line: &str, format: Format) -> Result<Option<Prefix>, ListError> {
    let line = line.trim();
    if line.starts_with('{') {
        return match format {
            Format::Auto | Format::Spamhaus => parse_json(line),
            _ => Err(ListError::JsonInTextList(format)),
        };
    }
    let data = match format {
        Format::Auto => cut(cut(line, '#'), ';'),
        Format::Spamhaus => {
            let data = cut(line, ';');
            if data.contains('#') {
                return Err(ListError::HashInSpamhaus);
            }
            data
        }
        Format::Plain | Format::Firehol | Format::Cymru => {
            let data = cut(line, '#');
            if data.contains(';') {
                return Err(ListError::SemicolonInTextList(format));
            }
            data
        }
    };
    let mut words = data.split_whitespace();
    let Some(word) = words.next() else {
        return Ok(None);
    };
    match words.next() {
        None => parse_word(word).map(Some),
        Some(w) if w.starts_with('-') || word.ends_with('-') => {
            Err(ListError::Range(data.trim().to_owned()))
        }
        Some(extra) => Err(parse_word(word)
            .err()
            .unwrap_or_else(|| ListError::ExtraText {
                extra: extra.to_owned(),
                format,
            })),
    }
}

/// What starts a comment after an address in a list of `format`.
fn comment_start(format: &Format) -> &'static str {
    if *format == Format::Spamhaus {
        ";"
    } else {
        "#"
    }
}

/// One address or CIDR, with the reasons an operator can act on.
fn parse_word(word: &str) -> Result<Prefix, ListError> {
    if let Some((from, _)) = word.split_once('-') {
        if from.parse::<IpAddr>().is_ok() {
            return Err(ListError::Range(word.to_owned()));
        }
    }
    if let Some((ip, len)) = word.split_once('/') {
        if ip.parse::<IpAddr>().is_ok() && len.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(ListError::DottedNetmask(word.to_owned()));
        }
    }
    Ok(word.parse()?)
}

/// A Spamhaus JSON line: `{"cidr":"…",…}`; the closing metadata line is skipped.
fn parse_json(line: &str) -> Result<Option<Prefix>, ListError> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(ListError::Json)?;
    if v.get("type").and_then(serde_json::Value::as_str) == Some("metadata") {
        return Ok(None);
    }
    match v.get("cidr") {
        Some(serde_json::Value::String(c)) => parse_word(c.trim()).map(Some),
        Some(_) => Err(ListError::CidrNotString),
        None => Err(ListError::NoCidr),
    }
}

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;
