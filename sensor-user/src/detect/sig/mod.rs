//! Compiled signatures: what a rule's header and options mean, checked and typed. A rule
//! that uses anything this engine does not implement is refused as a whole with the keyword
//! named, never half-applied.
//!
//! [`compile`] reads the header here and looks every option up in the keyword table
//! ([`keywords`]: rule metadata, packet checks, flow state) and, after it, in the buffer table
//! ([`crate::detect::Buffer`]: sticky buffers) and the legacy content modifiers ([`payload`]).

mod keywords;
mod payload;
mod values;

use std::collections::HashMap;

pub use values::{parse_range, ValueError};

use super::{
    addr::{parse_addr, parse_port, AddrExpr, PortExpr},
    classification::Classifications,
    matcher::{Matcher, Range},
    parse::RawRule,
    Buffer,
};
use payload::Builder;

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
    /// `stream_size`: a TCP flow's stream size on a side, compared.
    StreamSize(StreamSide, Range),
}

/// The side(s) `stream_size` compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamSide {
    /// The client's stream.
    Client,
    /// The server's stream.
    Server,
    /// Both must compare true.
    Both,
    /// Either may.
    Either,
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
    /// The packet payload or a sticky buffer.
    pub buffer: Buffer,
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
    pub fast_pattern: Option<(Buffer, Vec<u8>, bool)>,
    /// File and line, for reports.
    pub origin: String,
}

impl Signature {
    /// `true` when the rule inspects application-layer buffers.
    pub fn is_app(&self) -> bool {
        self.lists.iter().any(|l| l.buffer != Buffer::Pkt)
    }

    /// Whether the rule inspects the packet's payload (a content or other payload keyword
    /// without a sticky buffer, or `dsize`): Suricata's payload rules, which it stops
    /// evaluating on a flow once the flow is encrypted.
    pub fn needs_payload(&self) -> bool {
        self.lists.iter().any(|l| l.buffer == Buffer::Pkt)
            || self
                .checks
                .iter()
                .any(|c| matches!(c, PacketCheck::Dsize(_)))
    }
}

/// Everything compiling a rule needs from outside it.
pub struct CompileEnv<'a> {
    /// Address and port variables.
    pub vars: &'a HashMap<String, String>,
    /// Classifications.
    pub classes: &'a Classifications,
}

fn proto_spec(p: &str) -> Result<ProtoSpec, Refusal> {
    let (l4, app) = match p {
        "ip" | "ipv4" | "ipv6" | "pkthdr" => (None, None),
        "tcp" | "tcp-pkt" | "tcp-stream" => (Some(6), None),
        "udp" => (Some(17), None),
        "sctp" => (Some(132), None),
        "icmp" | "icmpv4" | "icmpv6" => (Some(1), None),
        "http" | "http1" => (Some(6), Some("http")),
        "tls" | "ssl" => (Some(6), Some("tls")),
        "ssh" => (Some(6), Some("ssh")),
        "dns" => (None, Some("dns")),
        // The line protocols watched for STARTTLS: their payload rules match on the flows
        // detected as such (their commands have no buffers yet).
        "smtp" => (Some(6), Some("smtp")),
        "ftp" => (Some(6), Some("ftp")),
        other => return Err(Refusal::UnsupportedProtocol(other.to_string())),
    };
    Ok(ProtoSpec { l4, app })
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

/// The signature being compiled, and what its options set beyond it.
pub(super) struct Compiling<'a> {
    sig: Signature,
    b: Builder,
    priority: Option<u8>,
    class: Option<(String, u8)>,
    env: &'a CompileEnv<'a>,
}

/// One option of the rule being compiled.
pub(super) struct Opt<'a> {
    /// The keyword.
    name: &'a str,
    /// Its value, when it has one.
    value: Option<&'a str>,
}

impl Opt<'_> {
    /// The value of a keyword that needs one.
    fn need(&self) -> Result<&str, Refusal> {
        self.value
            .ok_or_else(|| Refusal::Invalid(format!("{} needs a value", self.name)))
    }

    /// The value, or empty.
    fn v(&self) -> &str {
        self.value.unwrap_or("")
    }
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
    let addr = |s: &str| parse_addr(s, env.vars).map_err(|e| Refusal::Invalid(e.to_string()));
    let port = |s: &str| parse_port(s, env.vars).map_err(|e| Refusal::Invalid(e.to_string()));
    let sig = Signature {
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
    let mut c = Compiling {
        b: Builder::new(sig.proto.app),
        sig,
        priority: None,
        class: None,
        env,
    };
    for (name, value, _col) in &raw.options {
        let o = Opt {
            name,
            value: value.as_deref(),
        };
        match keywords::lookup(name) {
            Some(k) => (k.setup)(&mut c, &o)?,
            None => payload::buffer_keyword(&mut c, name)
                .unwrap_or_else(|| Err(Refusal::UnsupportedKeyword(name.to_string())))?,
        }
    }
    let Compiling {
        mut sig,
        b,
        priority,
        class,
        ..
    } = c;
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
            if l.buffer == Buffer::FileDataTc {
                l.buffer = Buffer::FileDataTs;
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
fn pick_fast_pattern(lists: &[MatchList]) -> Option<(Buffer, Vec<u8>, bool)> {
    let mut best: Option<(Buffer, Vec<u8>, bool)> = None;
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
                return Some((l.buffer, pat, c.nocase));
            }
            if best.as_ref().is_none_or(|b| pat.len() > b.1.len()) {
                best = Some((l.buffer, pat, c.nocase));
            }
        }
    }
    best
}
