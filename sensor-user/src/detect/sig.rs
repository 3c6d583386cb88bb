//! Compiled signatures: what a rule's header and options mean, checked and typed. A rule
//! that uses anything this engine does not implement is refused as a whole with the keyword
//! named, never half-applied.

use std::collections::HashMap;

use super::{
    addr::{parse_addr, parse_port, AddrExpr, PortExpr},
    classification::Classifications,
    matcher::{ByteExtract, ByteJump, ByteTest, Content, IsDataAt, Matcher, Pcre, Range, Val},
    parse::{content_bytes, unquote, RawRule},
};

/// Why a rule was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A keyword this engine does not implement.
    UnsupportedKeyword(String),
    /// A protocol this engine does not inspect.
    UnsupportedProtocol(String),
    /// An action other than alert, drop, pass, reject.
    UnsupportedAction(String),
    /// The rule is wrong (a bad value, a missing sid…).
    Invalid(String),
}

impl Refusal {
    /// Short reason for grouping in reports.
    pub fn kind(&self) -> String {
        match self {
            Refusal::UnsupportedKeyword(k) => format!("unsupported keyword {k}"),
            Refusal::UnsupportedProtocol(p) => format!("unsupported protocol {p}"),
            Refusal::UnsupportedAction(a) => format!("unsupported action {a}"),
            Refusal::Invalid(_) => "invalid rule".into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid(m) => f.write_str(m),
            other => f.write_str(&other.kind()),
        }
    }
}

/// What the rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Stop inspecting the packet: no alerts from later rules.
    Pass,
    /// Drop (in IDS mode: an alert).
    Drop,
    /// Reject (in IDS mode: an alert).
    Reject,
    /// Alert.
    Alert,
}

/// Which traffic a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtoSpec {
    /// Transport: `Some(6)` TCP, `Some(17)` UDP, `Some(1)` ICMP (v4 and v6), `None` any IP.
    pub l4: Option<u8>,
    /// Application protocol the flow must have (`http`, `dns`, `tls`, `ssh`).
    pub app: Option<&'static str>,
}

/// `flow:` options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSpec {
    /// `Some(true)`: to_server only; `Some(false)`: to_client only.
    pub to_server: Option<bool>,
    /// `Some(true)`: established; `Some(false)`: not established.
    pub established: Option<bool>,
}

/// Checks on the packet rather than a buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum PacketCheck {
    /// Payload size.
    Dsize(Range),
    /// IP TTL / hop limit.
    Ttl(Range),
    /// ICMP type.
    Itype(Range),
    /// ICMP code.
    Icode(Range),
    /// IP protocol.
    IpProto(Range),
    /// TCP flags: (bits that must be set, mode, mask of bits ignored).
    Flags {
        bits: u8,
        mode: FlagMode,
        ignore: u8,
    },
    /// The flow's application protocol (`negated`, name).
    AppProto(bool, String),
}

/// How `flags:` compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagMode {
    /// Exactly these (apart from the ignored ones).
    Exact,
    /// At least these (`+`).
    All,
    /// Any of these (`*`).
    Any,
    /// None of these (`!`).
    Not,
}

/// `flowbits:` operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flowbit {
    /// Set the named bits.
    Set(Vec<String>),
    /// Unset.
    Unset(Vec<String>),
    /// Toggle.
    Toggle(Vec<String>),
    /// Match when any of these is set (`a|b`) or all (`a&b`).
    IsSet(Vec<String>, bool),
    /// Match when none (or not all, with `&`) is set.
    IsNotSet(Vec<String>, bool),
}

/// What `threshold:` and `detection_filter:` track by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    /// Source address.
    BySrc,
    /// Destination address.
    ByDst,
    /// The rule as a whole.
    ByRule,
    /// Source and destination.
    ByBoth,
    /// The flow.
    ByFlow,
}

/// Rate controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// `threshold: type limit`: at most `count` alerts a window.
    Limit,
    /// `threshold: type threshold`: an alert every `count` matches.
    Threshold,
    /// `threshold: type both`: one alert a window once `count` matches were seen.
    Both,
    /// `detection_filter`: alerts only once more than `count` matches were seen in a window.
    DetectionFilter,
}

/// A `threshold` or `detection_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    /// Kind.
    pub rate: Rate,
    /// Tracking key.
    pub track: Track,
    /// Count.
    pub count: u64,
    /// Window, seconds.
    pub seconds: u64,
}

/// Transformations applied to a sticky buffer before matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Prepend a `.` (domain suffix matching).
    DotPrefix,
    /// ASCII lower case.
    Lower,
    /// ASCII upper case.
    Upper,
    /// Remove all white space.
    StripWhitespace,
    /// Runs of white space become one space.
    CompressWhitespace,
    /// Percent-decoding.
    UrlDecode,
    /// MD5 digest (raw bytes).
    Md5,
    /// SHA-1 digest (raw bytes).
    Sha1,
    /// SHA-256 digest (raw bytes).
    Sha256,
}

impl Transform {
    /// Applies the transformation.
    pub fn apply(self, data: &[u8]) -> Vec<u8> {
        use md5::Digest as _;
        match self {
            Transform::DotPrefix => [b".".as_slice(), data].concat(),
            Transform::Lower => data.to_ascii_lowercase(),
            Transform::Upper => data.to_ascii_uppercase(),
            Transform::StripWhitespace => data
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect(),
            Transform::CompressWhitespace => {
                let mut out = Vec::with_capacity(data.len());
                for &b in data {
                    if b.is_ascii_whitespace() {
                        if out.last() != Some(&b' ') {
                            out.push(b' ');
                        }
                    } else {
                        out.push(b);
                    }
                }
                out
            }
            Transform::UrlDecode => crate::applayer::http::percent_decode(data),
            Transform::Md5 => md5::Md5::digest(data).to_vec(),
            Transform::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Transform::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    /// Whether a pattern found in the transformed buffer is (nearly) found in the raw one, so
    /// the prefilter may look for it there: case changes (the prefilter ignores case) and the
    /// dot prefix (look for the pattern without its leading dot).
    fn prefilter_safe(self) -> bool {
        matches!(
            self,
            Transform::DotPrefix | Transform::Lower | Transform::Upper
        )
    }
}

/// A list of matchers against one buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchList {
    /// `pkt` for the packet payload, else a sticky buffer name (`http.uri`, `dns.query`, …).
    pub buffer: String,
    /// Transformations, in order.
    pub transforms: Vec<Transform>,
    /// In rule order.
    pub matchers: Vec<Matcher>,
}

/// A compiled rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// `sid`.
    pub sid: u32,
    /// `gid` (1 unless given).
    pub gid: u32,
    /// `rev`.
    pub rev: u32,
    /// `msg`.
    pub msg: String,
    /// Action.
    pub action: Action,
    /// Category (the classtype's description).
    pub category: Option<String>,
    /// Severity (priority: `priority`, else the classtype's, else 3).
    pub severity: u8,
    /// `metadata` entries, `key value`.
    pub metadata: Vec<(String, String)>,
    /// Protocols.
    pub proto: ProtoSpec,
    /// Source address.
    pub src: AddrExpr,
    /// Source port.
    pub sport: PortExpr,
    /// Destination address.
    pub dst: AddrExpr,
    /// Destination port.
    pub dport: PortExpr,
    /// `<>`.
    pub bidirectional: bool,
    /// `flow:`.
    pub flow: FlowSpec,
    /// Buffer matches.
    pub lists: Vec<MatchList>,
    /// Packet checks.
    pub checks: Vec<PacketCheck>,
    /// Flowbits, in rule order.
    pub flowbits: Vec<Flowbit>,
    /// `threshold`.
    pub threshold: Option<Threshold>,
    /// `detection_filter`.
    pub detection_filter: Option<Threshold>,
    /// `noalert`, or a `flowbits:noalert`.
    pub noalert: bool,
    /// The pattern the prefilter looks for: (buffer, bytes, nocase).
    pub fast_pattern: Option<(String, Vec<u8>, bool)>,
    /// File and line, for reports.
    pub origin: String,
}

impl Signature {
    /// `true` when the rule inspects application-layer buffers.
    pub fn is_app(&self) -> bool {
        self.lists.iter().any(|l| l.buffer != "pkt")
    }
}

/// Legacy content modifiers and the sticky buffer each moves its content into.
fn modifier_buffer(name: &str) -> Option<&'static str> {
    Some(match name {
        "http_uri" => "http.uri",
        "http_raw_uri" => "http.uri.raw",
        "http_method" => "http.method",
        "http_header" => "http.header",
        "http_raw_header" => "http.header.raw",
        "http_cookie" => "http.cookie",
        "http_user_agent" => "http.user_agent",
        "http_host" => "http.host",
        "http_raw_host" => "http.host.raw",
        "http_client_body" => "http.request_body",
        "http_server_body" => "http.response_body",
        "http_stat_code" => "http.stat_code",
        "http_stat_msg" => "http.stat_msg",
        _ => return None,
    })
}

/// Sticky buffer keywords and the buffer (and the app protocol it implies).
fn sticky_buffer(name: &str) -> Option<(&'static str, &'static str)> {
    let b = match name {
        "http.uri" | "http_uri" => "http.uri",
        "http.uri.raw" | "http_raw_uri" => "http.uri.raw",
        "http.method" | "http_method" => "http.method",
        "http.request_line" | "http_request_line" => "http.request_line",
        "http.header" | "http_header" => "http.header",
        "http.header.raw" | "http_raw_header" => "http.header.raw",
        "http.cookie" | "http_cookie" => "http.cookie",
        "http.user_agent" | "http_user_agent" => "http.user_agent",
        "http.host" | "http_host" => "http.host",
        "http.host.raw" | "http_raw_host" => "http.host.raw",
        "http.referer" | "http_referer" => "http.referer",
        "http.accept" | "http_accept" => "http.accept",
        "http.content_type" | "http_content_type" => "http.content_type",
        "http.content_len" | "http_content_len" => "http.content_len",
        "http.server" | "http_server" => "http.server",
        "http.location" | "http_location" => "http.location",
        "http.protocol" | "http_protocol" => "http.protocol",
        "http.stat_code" | "http_stat_code" => "http.stat_code",
        "http.stat_msg" | "http_stat_msg" => "http.stat_msg",
        "http.request_body" | "http_client_body" => "http.request_body",
        "http.header_names" | "http_header_names" => "http.header_names",
        "http.start" | "http_start" => "http.start",
        "http.response_line" | "http_response_line" => "http.response_line",
        "http.accept_enc" | "http_accept_enc" => "http.accept_enc",
        "http.accept_lang" | "http_accept_lang" => "http.accept_lang",
        "http.connection" | "http_connection" => "http.connection",
        "tls.certs" => "tls.certs",
        "http.response_body" | "http_server_body" => "http.response_body",
        // Request or response body, by the rule's direction (settled once it is known).
        "file.data" | "file_data" => "file.data.tc",
        "dns.query" | "dns_query" => "dns.query",
        "tls.sni" | "tls_sni" => "tls.sni",
        "tls.cert_subject" | "tls_cert_subject" => "tls.cert_subject",
        "tls.cert_issuer" | "tls_cert_issuer" => "tls.cert_issuer",
        "tls.cert_serial" | "tls_cert_serial" => "tls.cert_serial",
        "tls.cert_fingerprint" | "tls_cert_fingerprint" => "tls.cert_fingerprint",
        "ja3.hash" | "ja3_hash" => "ja3.hash",
        "ja3.string" | "ja3_string" => "ja3.string",
        "ja3s.hash" | "ja3s_hash" => "ja3s.hash",
        "ja4.hash" => "ja4.hash",
        "ssh.proto" | "ssh_proto" => "ssh.proto",
        "ssh.software" | "ssh_software" => "ssh.software",
        "ssh.hassh" => "ssh.hassh",
        "ssh.hassh.string" => "ssh.hassh.string",
        "ssh.hassh.server" => "ssh.hassh.server",
        "ssh.hassh.server.string" => "ssh.hassh.server.string",
        _ => return None,
    };
    let app = match b.split('.').next() {
        Some("http") | Some("file") => "http",
        Some("dns") => "dns",
        Some("tls") | Some("ja3") | Some("ja3s") | Some("ja4") => "tls",
        Some("ssh") => "ssh",
        _ => return None,
    };
    Some((b, app))
}

/// Parses a numeric value, decimal or `0x` hex.
fn number(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn val(s: &str, vars: &[String]) -> Result<Val, Refusal> {
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
pub fn parse_range(s: &str) -> Result<Range, String> {
    let s = s.trim();
    let n = |x: &str| number(x).ok_or_else(|| format!("{x:?} is not a number"));
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

fn flag_bits(s: &str) -> Result<u8, String> {
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
            other => return Err(format!("{other:?} is not a TCP flag")),
        };
    }
    Ok(b)
}

/// Everything compiling a rule needs from outside it.
pub struct CompileEnv<'a> {
    /// Address and port variables.
    pub vars: &'a HashMap<String, String>,
    /// Classifications.
    pub classes: &'a Classifications,
}

struct Builder {
    lists: Vec<MatchList>,
    current: usize,
    extract_vars: Vec<String>,
    app: Option<&'static str>,
    /// Where the most recent content is: modifiers apply to it wherever a legacy modifier
    /// moved it.
    last: Option<(usize, usize)>,
}

impl Builder {
    fn list(&mut self) -> &mut MatchList {
        &mut self.lists[self.current]
    }

    fn switch_to(&mut self, buffer: &str) {
        if let Some(i) = self.lists.iter().position(|l| l.buffer == buffer) {
            self.current = i;
        } else {
            self.lists.push(MatchList {
                buffer: buffer.to_string(),
                transforms: Vec::new(),
                matchers: Vec::new(),
            });
            self.current = self.lists.len() - 1;
        }
    }

    fn last_content(&mut self, kw: &str) -> Result<&mut Content, Refusal> {
        let (l, m) = self
            .last
            .ok_or_else(|| Refusal::Invalid(format!("{kw} must follow a content")))?;
        match self
            .lists
            .get_mut(l)
            .and_then(|list| list.matchers.get_mut(m))
        {
            Some(Matcher::Content(c)) => Ok(c),
            _ => Err(Refusal::Invalid(format!("{kw} must follow a content"))),
        }
    }

    fn push_content(&mut self, c: Content) {
        self.list().matchers.push(Matcher::Content(c));
        self.last = Some((self.current, self.list().matchers.len() - 1));
    }

    /// Moves the most recent content into `buffer` (legacy content modifiers).
    fn move_last_content(&mut self, buffer: &str, kw: &str) -> Result<(), Refusal> {
        let (l, m) = self
            .last
            .ok_or_else(|| Refusal::Invalid(format!("{kw} must follow a content")))?;
        if self.lists[l].matchers.len() != m + 1 {
            return Err(Refusal::Invalid(format!("{kw} must follow its content")));
        }
        let Some(matcher) = self.lists[l].matchers.pop() else {
            return Err(Refusal::Invalid(format!("{kw} must follow a content")));
        };
        let keep = self.current;
        self.switch_to(buffer);
        self.list().matchers.push(matcher);
        self.last = Some((self.current, self.list().matchers.len() - 1));
        self.current = keep;
        Ok(())
    }

    fn require_app(&mut self, app: &'static str) -> Result<(), Refusal> {
        match self.app {
            Some(a) if a != app => Err(Refusal::Invalid(format!(
                "the rule mixes {a} and {app} buffers"
            ))),
            _ => {
                self.app = Some(app);
                Ok(())
            }
        }
    }
}

fn proto_spec(p: &str) -> Result<ProtoSpec, Refusal> {
    let (l4, app) = match p {
        "ip" | "ipv4" | "ipv6" | "pkthdr" => (None, None),
        "tcp" | "tcp-pkt" | "tcp-stream" => (Some(6), None),
        "udp" => (Some(17), None),
        "icmp" | "icmpv4" | "icmpv6" => (Some(1), None),
        "http" | "http1" => (Some(6), Some("http")),
        "tls" | "ssl" => (Some(6), Some("tls")),
        "ssh" => (Some(6), Some("ssh")),
        "dns" => (None, Some("dns")),
        other => return Err(Refusal::UnsupportedProtocol(other.to_string())),
    };
    Ok(ProtoSpec { l4, app })
}

fn track(s: &str) -> Result<Track, Refusal> {
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

fn parse_threshold(v: &str, detection_filter: bool) -> Result<Threshold, Refusal> {
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

fn parse_pcre(v: &str, b: &mut Builder) -> Result<(), Refusal> {
    // The pattern goes to PCRE as written (only the quotes come off): `\\`, `\;` and
    // `\"` are regex escapes that PCRE itself reads.
    let t = v.trim();
    let (negated, t) = match t.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, t),
    };
    let raw = t
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t)
        .to_string();
    let (negated, raw) = match raw.strip_prefix('!') {
        Some(r) => (true, r.to_string()),
        None => (negated, raw),
    };
    let body = raw
        .strip_prefix('/')
        .ok_or_else(|| Refusal::Invalid("pcre must look like \"/pattern/flags\"".into()))?;
    let end = body
        .rfind('/')
        .ok_or_else(|| Refusal::Invalid("pcre pattern is not closed with /".into()))?;
    let (pattern, flags) = (&body[..end], &body[end + 1..]);
    let mut opts = super::matcher::PcreOpts::default();
    let mut buffer: Option<&str> = None;
    let mut relative = false;
    for f in flags.chars() {
        match f {
            'i' => opts.caseless = true,
            's' => opts.dotall = true,
            'm' => opts.multiline = true,
            'x' => opts.extended = true,
            'A' => opts.anchored = true,
            'E' => opts.dollar_endonly = true,
            'G' => opts.ungreedy = true,
            'R' => relative = true,
            'O' | 'B' => {}
            'U' => buffer = Some("http.uri"),
            'I' => buffer = Some("http.uri.raw"),
            'P' => buffer = Some("http.request_body"),
            'Q' => buffer = Some("http.response_body"),
            'H' => buffer = Some("http.header"),
            'D' => buffer = Some("http.header.raw"),
            'M' => buffer = Some("http.method"),
            'C' => buffer = Some("http.cookie"),
            'S' => buffer = Some("http.stat_code"),
            'Y' => buffer = Some("http.stat_msg"),
            'V' => buffer = Some("http.user_agent"),
            'W' => buffer = Some("http.host"),
            'Z' => buffer = Some("http.host.raw"),
            other => return Err(Refusal::UnsupportedKeyword(format!("pcre flag {other}"))),
        }
    }
    let pcre = Pcre::new(pattern, opts, relative, negated).map_err(Refusal::Invalid)?;
    if let Some(buf) = buffer {
        b.require_app("http")?;
        let keep = b.current;
        b.switch_to(buf);
        b.list().matchers.push(Matcher::Pcre(pcre));
        b.current = keep;
    } else {
        b.list().matchers.push(Matcher::Pcre(pcre));
    }
    Ok(())
}

fn split_args(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Common byte_* flags.
struct ByteFlags {
    relative: bool,
    little: bool,
    string: Option<u32>,
    bitmask: Option<u64>,
}

fn byte_flags(args: &[String], from: usize) -> Result<(ByteFlags, Vec<String>), Refusal> {
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

fn usize_arg(args: &[String], i: usize, what: &str) -> Result<String, Refusal> {
    args.get(i)
        .cloned()
        .ok_or_else(|| Refusal::Invalid(format!("{what} is missing")))
}

/// Compiles a parsed rule.
pub fn compile(
    raw: &RawRule,
    env: &CompileEnv<'_>,
    origin: &str,
) -> Result<Signature, (Option<u32>, Refusal)> {
    let sid = raw
        .options
        .iter()
        .find(|o| o.0 == "sid")
        .and_then(|o| o.1.as_deref())
        .and_then(|v| v.trim().parse::<u32>().ok());
    compile_inner(raw, env, origin, sid).map_err(|e| (sid, e))
}

fn compile_inner(
    raw: &RawRule,
    env: &CompileEnv<'_>,
    origin: &str,
    sid: Option<u32>,
) -> Result<Signature, Refusal> {
    let action = match raw.action.as_str() {
        "alert" => Action::Alert,
        "drop" => Action::Drop,
        "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Reject,
        "pass" => Action::Pass,
        other => return Err(Refusal::UnsupportedAction(other.to_string())),
    };
    let proto = proto_spec(&raw.proto)?;
    let addr = |s: &str| parse_addr(s, env.vars).map_err(Refusal::Invalid);
    let port = |s: &str| parse_port(s, env.vars).map_err(Refusal::Invalid);
    let mut sig = Signature {
        sid: sid.ok_or_else(|| Refusal::Invalid("no sid".into()))?,
        gid: 1,
        rev: 0,
        msg: String::new(),
        action,
        category: None,
        severity: 3,
        metadata: Vec::new(),
        src: addr(&raw.src)?,
        sport: port(&raw.sport)?,
        dst: addr(&raw.dst)?,
        dport: port(&raw.dport)?,
        bidirectional: raw.direction == "<>",
        proto,
        flow: FlowSpec::default(),
        lists: Vec::new(),
        checks: Vec::new(),
        flowbits: Vec::new(),
        threshold: None,
        detection_filter: None,
        noalert: false,
        fast_pattern: None,
        origin: origin.to_string(),
    };
    let mut b = Builder {
        lists: vec![MatchList {
            buffer: "pkt".into(),
            transforms: Vec::new(),
            matchers: Vec::new(),
        }],
        current: 0,
        extract_vars: Vec::new(),
        app: sig.proto.app,
        last: None,
    };
    let mut priority: Option<u8> = None;
    let mut class: Option<(String, u8)> = None;
    for (name, value, _col) in &raw.options {
        let v = value.as_deref().unwrap_or("");
        let need = || -> Result<&str, Refusal> {
            value
                .as_deref()
                .ok_or_else(|| Refusal::Invalid(format!("{name} needs a value")))
        };
        match name.as_str() {
            "msg" => sig.msg = unquote(need()?),
            "sid" => {}
            "rev" => {
                sig.rev = need()?
                    .trim()
                    .parse()
                    .map_err(|_| Refusal::Invalid("rev is not a number".into()))?
            }
            "gid" => {
                sig.gid = need()?
                    .trim()
                    .parse()
                    .map_err(|_| Refusal::Invalid("gid is not a number".into()))?
            }
            "classtype" => {
                let c = need()?.trim();
                let (desc, prio) = env.classes.get(c).cloned().ok_or_else(|| {
                    Refusal::Invalid(format!(
                        "classtype {c:?} is not in the classification config"
                    ))
                })?;
                class = Some((desc, prio));
            }
            "priority" => {
                priority = Some(
                    need()?
                        .trim()
                        .parse()
                        .map_err(|_| Refusal::Invalid("priority is not a number".into()))?,
                )
            }
            "metadata" => {
                for item in v.split(',') {
                    let item = item.trim();
                    if let Some((k, val)) = item.split_once(' ') {
                        sig.metadata
                            .push((k.trim().to_string(), val.trim().to_string()));
                    }
                }
            }
            "reference" | "target" => {}
            "noalert" => sig.noalert = true,
            "content" => {
                let negated = v.trim_start().starts_with('!');
                let text = if negated { &v.trim_start()[1..] } else { v };
                let pattern =
                    content_bytes(text).map_err(|e| Refusal::Invalid(format!("content: {e}")))?;
                if pattern.is_empty() {
                    return Err(Refusal::Invalid("empty content".into()));
                }
                b.push_content(Content::new(pattern, negated));
            }
            "uricontent" => {
                let pattern = content_bytes(need()?)
                    .map_err(|e| Refusal::Invalid(format!("uricontent: {e}")))?;
                b.require_app("http")?;
                let keep = b.current;
                b.switch_to("http.uri");
                b.push_content(Content::new(pattern, false));
                b.current = keep;
            }
            "nocase" => b.last_content(name)?.nocase = true,
            "rawbytes" => {}
            "depth" => b.last_content(name)?.depth = Some(val(need()?, &b.extract_vars)?),
            "offset" => b.last_content(name)?.offset = Some(val(need()?, &b.extract_vars)?),
            "distance" => b.last_content(name)?.distance = Some(val(need()?, &b.extract_vars)?),
            "within" => b.last_content(name)?.within = Some(val(need()?, &b.extract_vars)?),
            "startswith" => b.last_content(name)?.startswith = true,
            "endswith" => b.last_content(name)?.endswith = true,
            "fast_pattern" => {
                let c = b.last_content(name)?;
                c.fast_pattern = true;
                if let Some(spec) = value
                    .as_deref()
                    .filter(|s| !s.trim().is_empty() && s.trim() != "only")
                {
                    // fast_pattern:offset,length selects a slice of the content.
                    let parts: Vec<usize> = spec
                        .split(',')
                        .filter_map(|p| p.trim().parse().ok())
                        .collect();
                    if let [off, len] = parts[..] {
                        c.fast_slice = Some((off, len));
                    }
                }
            }
            "isdataat" => {
                let t = need()?.trim();
                let (negated, t) = match t.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, t),
                };
                let args = split_args(t);
                let n = val(&usize_arg(&args, 0, "isdataat value")?, &b.extract_vars)?;
                let relative = args.iter().skip(1).any(|a| a == "relative");
                b.list().matchers.push(Matcher::IsDataAt(IsDataAt {
                    n,
                    relative,
                    negated,
                }));
            }
            "bsize" => {
                let r = parse_range(need()?).map_err(Refusal::Invalid)?;
                b.list().matchers.push(Matcher::Bsize(r));
            }
            "urilen" => {
                let spec = need()?.split(',').next().unwrap_or("").to_string();
                let r = parse_range(&spec).map_err(Refusal::Invalid)?;
                b.require_app("http")?;
                let keep = b.current;
                b.switch_to("http.uri.raw");
                b.list().matchers.push(Matcher::Bsize(r));
                b.current = keep;
            }
            "dsize" => sig.checks.push(PacketCheck::Dsize(
                parse_range(need()?).map_err(Refusal::Invalid)?,
            )),
            "ttl" => sig.checks.push(PacketCheck::Ttl(
                parse_range(need()?).map_err(Refusal::Invalid)?,
            )),
            "itype" => sig.checks.push(PacketCheck::Itype(
                parse_range(need()?).map_err(Refusal::Invalid)?,
            )),
            "icode" => sig.checks.push(PacketCheck::Icode(
                parse_range(need()?).map_err(Refusal::Invalid)?,
            )),
            "ip_proto" => {
                let t = need()?.trim();
                let named = match t.trim_start_matches(['!', '<', '>']) {
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "icmp" => Some(1),
                    "ipv6-icmp" | "icmpv6" => Some(58),
                    "gre" => Some(47),
                    "esp" => Some(50),
                    "ah" => Some(51),
                    "sctp" => Some(132),
                    "igmp" => Some(2),
                    _ => None,
                };
                let text = match named {
                    Some(n) => format!(
                        "{}{n}",
                        &t[..t.len() - t.trim_start_matches(['!', '<', '>']).len()]
                    ),
                    None => t.to_string(),
                };
                sig.checks.push(PacketCheck::IpProto(
                    parse_range(&text).map_err(Refusal::Invalid)?,
                ));
            }
            "flags" => {
                let spec = need()?.trim();
                let (main, ignore) = match spec.split_once(',') {
                    Some((m, i)) => (m.trim(), flag_bits(i.trim()).map_err(Refusal::Invalid)?),
                    None => (spec, 0),
                };
                let (mode, bits) = match main.chars().next() {
                    Some('+') => (FlagMode::All, &main[1..]),
                    Some('*') => (FlagMode::Any, &main[1..]),
                    Some('!') => (FlagMode::Not, &main[1..]),
                    _ => (FlagMode::Exact, main),
                };
                let bits = flag_bits(bits).map_err(Refusal::Invalid)?;
                sig.checks.push(PacketCheck::Flags { bits, mode, ignore });
            }
            "flow" => {
                for part in v.split(',') {
                    match part.trim() {
                        "to_server" | "from_client" => sig.flow.to_server = Some(true),
                        "to_client" | "from_server" => sig.flow.to_server = Some(false),
                        "established" => sig.flow.established = Some(true),
                        "not_established" => sig.flow.established = Some(false),
                        "stateless" | "only_stream" | "no_stream" | "no_frag" => {}
                        other => return Err(Refusal::UnsupportedKeyword(format!("flow:{other}"))),
                    }
                }
            }
            "flowbits" => {
                let t = need()?;
                let (op, names) = match t.split_once(',') {
                    Some((o, n)) => (o.trim(), n.trim()),
                    None => (t.trim(), ""),
                };
                let and = names.contains('&');
                let list: Vec<String> = names
                    .split(['|', '&'])
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let need_names = || {
                    if list.is_empty() {
                        Err(Refusal::Invalid(format!("flowbits:{op} needs a name")))
                    } else {
                        Ok(list.clone())
                    }
                };
                sig.flowbits.push(match op {
                    "set" => Flowbit::Set(need_names()?),
                    "unset" => Flowbit::Unset(need_names()?),
                    "toggle" => Flowbit::Toggle(need_names()?),
                    "isset" => Flowbit::IsSet(need_names()?, and),
                    "isnotset" => Flowbit::IsNotSet(need_names()?, and),
                    "noalert" => {
                        sig.noalert = true;
                        continue;
                    }
                    other => return Err(Refusal::Invalid(format!("flowbits operation {other:?}"))),
                });
            }
            "threshold" => sig.threshold = Some(parse_threshold(need()?, false)?),
            "detection_filter" => sig.detection_filter = Some(parse_threshold(need()?, true)?),
            "app-layer-protocol" => {
                let t = need()?.trim();
                let (neg, n) = match t.strip_prefix('!') {
                    Some(r) => (true, r.trim()),
                    None => (false, t),
                };
                let n = n.split(',').next().unwrap_or(n).trim();
                sig.checks.push(PacketCheck::AppProto(neg, n.to_string()));
            }
            "pcre" => parse_pcre(need()?, &mut b)?,
            "byte_test" => {
                let args = split_args(need()?);
                let bytes = val(&usize_arg(&args, 0, "byte_test bytes")?, &b.extract_vars)?;
                let op = usize_arg(&args, 1, "byte_test operator")?;
                let value = val(&usize_arg(&args, 2, "byte_test value")?, &b.extract_vars)?;
                let offset = val(&usize_arg(&args, 3, "byte_test offset")?, &b.extract_vars)?;
                let (flags, rest) = byte_flags(&args, 4)?;
                if let Some(unknown) = rest.first() {
                    return Err(Refusal::UnsupportedKeyword(format!(
                        "byte_test option {unknown}"
                    )));
                }
                let t = ByteTest::new(
                    bytes,
                    &op,
                    value,
                    offset,
                    flags.relative,
                    flags.little,
                    flags.string,
                    flags.bitmask,
                )
                .map_err(Refusal::Invalid)?;
                b.list().matchers.push(Matcher::ByteTest(t));
            }
            "byte_jump" => {
                let args = split_args(need()?);
                let bytes: u8 = usize_arg(&args, 0, "byte_jump bytes")?
                    .parse()
                    .map_err(|_| Refusal::Invalid("byte_jump bytes".into()))?;
                let offset = val(&usize_arg(&args, 1, "byte_jump offset")?, &b.extract_vars)?;
                let (flags, rest) = byte_flags(&args, 2)?;
                let mut j = ByteJump {
                    bytes,
                    offset,
                    relative: flags.relative,
                    little: flags.little,
                    string: flags.string,
                    bitmask: flags.bitmask,
                    multiplier: 1,
                    align: false,
                    from_beginning: false,
                    from_end: false,
                    post_offset: 0,
                };
                for r in rest {
                    let mut w = r.split_whitespace();
                    match (w.next(), w.next()) {
                        (Some("multiplier"), Some(n)) => {
                            j.multiplier =
                                number(n).ok_or_else(|| Refusal::Invalid("multiplier".into()))?
                        }
                        (Some("post_offset"), Some(n)) => {
                            j.post_offset =
                                number(n).ok_or_else(|| Refusal::Invalid("post_offset".into()))?
                        }
                        (Some("align"), None) => j.align = true,
                        (Some("from_beginning"), None) => j.from_beginning = true,
                        (Some("from_end"), None) => j.from_end = true,
                        _ => {
                            return Err(Refusal::UnsupportedKeyword(format!(
                                "byte_jump option {r}"
                            )))
                        }
                    }
                }
                // 0 bytes is a jump by `post_offset` alone (Suricata 7+).
                if (flags.string.is_none() && bytes > 8) || bytes > 23 {
                    return Err(Refusal::Invalid(
                        "byte_jump bytes must be 0-8 (or up to 23 with string)".into(),
                    ));
                }
                b.list().matchers.push(Matcher::ByteJump(j));
            }
            "byte_extract" => {
                let args = split_args(need()?);
                let bytes: u8 = usize_arg(&args, 0, "byte_extract bytes")?
                    .parse()
                    .map_err(|_| Refusal::Invalid("byte_extract bytes".into()))?;
                let offset: i64 = number(&usize_arg(&args, 1, "byte_extract offset")?)
                    .ok_or_else(|| Refusal::Invalid("byte_extract offset".into()))?;
                let var = usize_arg(&args, 2, "byte_extract name")?;
                let (flags, rest) = byte_flags(&args, 3)?;
                let mut e = ByteExtract {
                    bytes,
                    offset,
                    var: var.clone(),
                    relative: flags.relative,
                    little: flags.little,
                    string: flags.string,
                    bitmask: flags.bitmask,
                    multiplier: 1,
                    align: 0,
                };
                for r in rest {
                    let mut w = r.split_whitespace();
                    match (w.next(), w.next()) {
                        (Some("multiplier"), Some(n)) => {
                            e.multiplier =
                                number(n).ok_or_else(|| Refusal::Invalid("multiplier".into()))?
                        }
                        (Some("align"), Some(n)) => {
                            e.align = number(n).ok_or_else(|| Refusal::Invalid("align".into()))?
                        }
                        _ => {
                            return Err(Refusal::UnsupportedKeyword(format!(
                                "byte_extract option {r}"
                            )))
                        }
                    }
                }
                b.extract_vars.push(var);
                b.list().matchers.push(Matcher::ByteExtract(e));
            }
            "pkt_data" => b.current = 0,
            "dotprefix"
            | "to_lowercase"
            | "to_uppercase"
            | "strip_whitespace"
            | "compress_whitespace"
            | "url_decode"
            | "to_md5"
            | "to_sha1"
            | "to_sha256" => {
                if b.current == 0 {
                    return Err(Refusal::Invalid(format!(
                        "{name} must follow a sticky buffer"
                    )));
                }
                let t = match name.as_str() {
                    "dotprefix" => Transform::DotPrefix,
                    "to_lowercase" => Transform::Lower,
                    "to_uppercase" => Transform::Upper,
                    "strip_whitespace" => Transform::StripWhitespace,
                    "compress_whitespace" => Transform::CompressWhitespace,
                    "url_decode" => Transform::UrlDecode,
                    "to_md5" => Transform::Md5,
                    "to_sha1" => Transform::Sha1,
                    _ => Transform::Sha256,
                };
                b.list().transforms.push(t);
            }
            other => {
                if let Some(buf) = modifier_buffer(other) {
                    // Legacy form: move the preceding content into the buffer.
                    b.require_app("http")?;
                    b.move_last_content(buf, other)?;
                } else if let Some((buf, app)) = sticky_buffer(other) {
                    b.require_app(app)?;
                    b.switch_to(buf);
                } else {
                    return Err(Refusal::UnsupportedKeyword(other.to_string()));
                }
            }
        }
    }
    if let Some((desc, prio)) = class {
        sig.category = Some(desc);
        sig.severity = prio;
    }
    if let Some(p) = priority {
        sig.severity = p;
    }
    sig.lists = b
        .lists
        .into_iter()
        .filter(|l| !l.matchers.is_empty())
        .collect();
    if sig.flow.to_server == Some(true) {
        for l in &mut sig.lists {
            if l.buffer == "file.data.tc" {
                l.buffer = "file.data.ts".into();
            }
        }
    }
    if sig.proto.app.is_none() {
        sig.proto.app = b.app;
    }
    if let Some(app) = sig.proto.app {
        // App-layer rules ride on the app's transport.
        if sig.proto.l4.is_none() && app != "dns" {
            sig.proto.l4 = Some(6);
        }
    }
    sig.fast_pattern = pick_fast_pattern(&sig.lists);
    Ok(sig)
}

/// The `fast_pattern` content if one is marked, else the longest positive content.
fn pick_fast_pattern(lists: &[MatchList]) -> Option<(String, Vec<u8>, bool)> {
    let mut best: Option<(String, Vec<u8>, bool)> = None;
    for l in lists {
        if !l.transforms.iter().all(|t| t.prefilter_safe()) {
            continue;
        }
        let dot = l.transforms.contains(&Transform::DotPrefix);
        for m in &l.matchers {
            let Matcher::Content(c) = m else { continue };
            if c.negated {
                continue;
            }
            let mut pat = match c.fast_slice {
                Some((off, len)) if off + len <= c.pattern.len() => {
                    c.pattern[off..off + len].to_vec()
                }
                _ => c.pattern.clone(),
            };
            if dot && pat.first() == Some(&b'.') {
                // The raw buffer lacks the prepended dot.
                pat.remove(0);
            }
            if pat.is_empty() {
                continue;
            }
            if c.fast_pattern {
                return Some((l.buffer.clone(), pat, c.nocase));
            }
            if best.as_ref().is_none_or(|b| pat.len() > b.1.len()) {
                best = Some((l.buffer.clone(), pat, c.nocase));
            }
        }
    }
    best
}
