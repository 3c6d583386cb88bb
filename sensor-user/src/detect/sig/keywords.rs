//! The rule keywords this engine implements, one table entry each (as Suricata's
//! `sigmatch_table`): the keyword's name and the function that parses its value, validates it
//! and compiles it into the signature being built. Payload keywords are in [`super::payload`];
//! this module holds the table and the rest: rule metadata, packet checks, `flow`,
//! `flowbits`, thresholds and `app-layer-protocol`. Sticky buffers are selected through
//! [`crate::detect::Buffer`]'s own table, after this one.

use std::{collections::HashMap, sync::OnceLock};

use super::{
    payload,
    values::{flag_bits, parse_range, parse_threshold},
    Compiling, FlagMode, Flowbit, Opt, PacketCheck, Refusal, Transform,
};
use crate::detect::parse::unquote;

/// Parses, validates and compiles one keyword's value into the signature.
pub(super) type Setup = fn(&mut Compiling<'_>, &Opt<'_>) -> Result<(), Refusal>;

/// One keyword.
pub(super) struct Keyword {
    /// As written in rules.
    pub(super) name: &'static str,
    /// What it does to the signature.
    pub(super) setup: Setup,
}

const fn kw(name: &'static str, setup: Setup) -> Keyword {
    Keyword { name, setup }
}

/// Every keyword, by family.
const KEYWORDS: &[Keyword] = &[
    // Rule metadata.
    kw("msg", msg),
    kw("sid", |_, _| Ok(())),
    kw("rev", rev),
    kw("gid", gid),
    kw("classtype", classtype),
    kw("priority", priority),
    kw("metadata", metadata),
    kw("reference", |_, _| Ok(())),
    kw("target", |_, _| Ok(())),
    kw("noalert", |c, _| {
        c.sig.noalert = true;
        Ok(())
    }),
    // Payload.
    kw("content", payload::content),
    kw("uricontent", payload::uricontent),
    kw("nocase", payload::nocase),
    kw("rawbytes", |_, _| Ok(())),
    kw("depth", payload::depth),
    kw("offset", payload::offset),
    kw("distance", payload::distance),
    kw("within", payload::within),
    kw("startswith", payload::startswith),
    kw("endswith", payload::endswith),
    kw("fast_pattern", payload::fast_pattern),
    kw("isdataat", payload::isdataat),
    kw("bsize", payload::bsize),
    kw("urilen", payload::urilen),
    kw("pcre", payload::pcre),
    kw("byte_test", payload::byte_test),
    kw("byte_jump", payload::byte_jump),
    kw("byte_extract", payload::byte_extract),
    kw("pkt_data", payload::pkt_data),
    // Transformations of the current sticky buffer.
    kw("dotprefix", |c, o| {
        payload::transform(c, o, Transform::DotPrefix)
    }),
    kw("to_lowercase", |c, o| {
        payload::transform(c, o, Transform::Lower)
    }),
    kw("to_uppercase", |c, o| {
        payload::transform(c, o, Transform::Upper)
    }),
    kw("strip_whitespace", |c, o| {
        payload::transform(c, o, Transform::StripWhitespace)
    }),
    kw("compress_whitespace", |c, o| {
        payload::transform(c, o, Transform::CompressWhitespace)
    }),
    kw("url_decode", |c, o| {
        payload::transform(c, o, Transform::UrlDecode)
    }),
    kw("to_md5", |c, o| payload::transform(c, o, Transform::Md5)),
    kw("to_sha1", |c, o| payload::transform(c, o, Transform::Sha1)),
    kw("to_sha256", |c, o| {
        payload::transform(c, o, Transform::Sha256)
    }),
    // Packet header checks.
    kw("dsize", |c, o| range_check(c, o, PacketCheck::Dsize)),
    kw("stream_size", stream_size),
    kw("dns.opcode", dns_opcode),
    kw("ttl", |c, o| range_check(c, o, PacketCheck::Ttl)),
    kw("itype", |c, o| range_check(c, o, PacketCheck::Itype)),
    kw("icode", |c, o| range_check(c, o, PacketCheck::Icode)),
    kw("ip_proto", ip_proto),
    kw("flags", flags),
    // Flow state and rates.
    kw("flow", flow),
    kw("flowbits", flowbits),
    kw("threshold", |c, o| {
        c.sig.threshold = Some(parse_threshold(o.need()?, false)?);
        Ok(())
    }),
    kw("detection_filter", |c, o| {
        c.sig.detection_filter = Some(parse_threshold(o.need()?, true)?);
        Ok(())
    }),
    kw("app-layer-protocol", app_layer_protocol),
];

/// The keyword named `name`, if this engine implements it.
pub(super) fn lookup(name: &str) -> Option<&'static Keyword> {
    static INDEX: OnceLock<HashMap<&'static str, &'static Keyword>> = OnceLock::new();
    INDEX
        .get_or_init(|| KEYWORDS.iter().map(|k| (k.name, k)).collect())
        .get(name)
        .copied()
}

fn number_of<T: std::str::FromStr>(o: &Opt<'_>, what: &str) -> Result<T, Refusal> {
    o.need()?
        .trim()
        .parse()
        .map_err(|_| Refusal::Invalid(format!("{what} is not a number")))
}

fn msg(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    c.sig.msg = unquote(o.need()?);
    Ok(())
}

fn rev(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    c.sig.rev = number_of(o, "rev")?;
    Ok(())
}

fn gid(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    c.sig.gid = number_of(o, "gid")?;
    Ok(())
}

fn priority(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    c.priority = Some(number_of(o, "priority")?);
    Ok(())
}

fn classtype(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let name = o.need()?.trim();
    let (desc, prio) = c.env.classes.get(name).cloned().ok_or_else(|| {
        Refusal::Invalid(format!(
            "classtype {name:?} is not in the classification config"
        ))
    })?;
    c.class = Some((desc, prio));
    Ok(())
}

fn metadata(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    for item in o.v().split(',') {
        let item = item.trim();
        if let Some((k, val)) = item.split_once(' ') {
            c.sig
                .metadata
                .push((k.trim().to_string(), val.trim().to_string()));
        }
    }
    Ok(())
}

fn range_check(
    c: &mut Compiling<'_>,
    o: &Opt<'_>,
    check: fn(crate::detect::matcher::Range) -> PacketCheck,
) -> Result<(), Refusal> {
    let r = parse_range(o.need()?).map_err(|e| Refusal::Invalid(e.to_string()))?;
    c.sig.checks.push(check(r));
    Ok(())
}

/// `stream_size:<client|server|both|either>,<op>,<n>` (ops `<` `>` `=` `!=` `<=` `>=`).
fn stream_size(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    use crate::detect::{matcher::Range, sig::StreamSide};
    let bad = |why: &str| Refusal::Invalid(format!("stream_size: {why}"));
    let parts: Vec<&str> = o.need()?.split(',').map(str::trim).collect();
    let [side, op, n] = parts[..] else {
        return Err(bad("expected <client|server|both|either>,<op>,<number>"));
    };
    let side = match side {
        "client" => StreamSide::Client,
        "server" => StreamSide::Server,
        "both" => StreamSide::Both,
        "either" => StreamSide::Either,
        other => return Err(bad(&format!("unknown side {other:?}"))),
    };
    let n: u32 = n
        .parse()
        .map_err(|_| bad(&format!("{n:?} is not a number of bytes")))?;
    let n = i64::from(n);
    let range = match op {
        "<" => Range::Lt(n),
        ">" => Range::Gt(n),
        "=" => Range::Eq(n),
        "!=" => Range::Ne(n),
        "<=" => Range::Le(n),
        ">=" => Range::Ge(n),
        other => return Err(bad(&format!("unknown comparison {other:?}"))),
    };
    c.sig.checks.push(PacketCheck::StreamSize(side, range));
    Ok(())
}

/// `dns.opcode:[!]N`: the opcode of a DNS message (request or response), 0 to 15.
fn dns_opcode(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    use crate::{
        applayer::Buffer,
        detect::matcher::{Matcher, Range},
    };
    let t = o.need()?.trim();
    let (negated, n) = match t.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, t),
    };
    let v: u8 =
        n.parse().ok().filter(|v| *v <= 15).ok_or_else(|| {
            Refusal::Invalid(format!("dns.opcode: {n:?} is not an opcode (0 to 15)"))
        })?;
    let r = if negated {
        Range::Ne(i64::from(v))
    } else {
        Range::Eq(i64::from(v))
    };
    c.b.require_app("dns")?;
    c.b.push_to(Buffer::DnsOpcode, Matcher::Number(r));
    Ok(())
}

fn ip_proto(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let t = o.need()?.trim();
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
    c.sig.checks.push(PacketCheck::IpProto(
        parse_range(&text).map_err(|e| Refusal::Invalid(e.to_string()))?,
    ));
    Ok(())
}

fn flags(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let spec = o.need()?.trim();
    let (main, ignore) = match spec.split_once(',') {
        Some((m, i)) => (
            m.trim(),
            flag_bits(i.trim()).map_err(|e| Refusal::Invalid(e.to_string()))?,
        ),
        None => (spec, 0),
    };
    // The modifier may come before or after the flags (`+A`, `A+`, `RSF*`), as Suricata
    // reads them; one modifier at most.
    let mut mode = FlagMode::Exact;
    let mut letters = String::new();
    for ch in main.chars() {
        let m = match ch {
            '+' => FlagMode::All,
            '*' => FlagMode::Any,
            '!' => FlagMode::Not,
            c => {
                letters.push(c);
                continue;
            }
        };
        if mode != FlagMode::Exact {
            return Err(Refusal::Invalid(format!(
                "flags {main:?}: more than one of the modifiers +, * and !"
            )));
        }
        mode = m;
    }
    let bits = flag_bits(letters.trim()).map_err(|e| Refusal::Invalid(e.to_string()))?;
    c.sig.checks.push(PacketCheck::Flags { bits, mode, ignore });
    Ok(())
}

fn flow(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    for part in o.v().split(',') {
        match part.trim() {
            "to_server" | "from_client" => c.sig.flow.to_server = Some(true),
            "to_client" | "from_server" => c.sig.flow.to_server = Some(false),
            "established" => c.sig.flow.established = Some(true),
            "not_established" => c.sig.flow.established = Some(false),
            "stateless" | "only_stream" | "no_stream" | "no_frag" => {}
            other => return Err(Refusal::UnsupportedKeyword(format!("flow:{other}"))),
        }
    }
    Ok(())
}

fn flowbits(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let t = o.need()?;
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
    let bit = match op {
        "set" => Flowbit::Set(need_names()?),
        "unset" => Flowbit::Unset(need_names()?),
        "toggle" => Flowbit::Toggle(need_names()?),
        "isset" => Flowbit::IsSet(need_names()?, and),
        "isnotset" => Flowbit::IsNotSet(need_names()?, and),
        "noalert" => {
            c.sig.noalert = true;
            return Ok(());
        }
        other => return Err(Refusal::Invalid(format!("flowbits operation {other:?}"))),
    };
    c.sig.flowbits.push(bit);
    Ok(())
}

fn app_layer_protocol(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let t = o.need()?.trim();
    let (neg, n) = match t.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, t),
    };
    let n = n.split(',').next().unwrap_or(n).trim();
    c.sig.checks.push(PacketCheck::AppProto(neg, n.to_string()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_in_the_table_once() {
        let mut names: Vec<&str> = KEYWORDS.iter().map(|k| k.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a keyword listed twice");
        for name in [
            "msg",
            "content",
            "byte_extract",
            "to_sha256",
            "app-layer-protocol",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
        assert!(lookup("frobnicate").is_none());
        // Sticky buffers are the buffer table's, not this one's.
        assert!(lookup("http.uri").is_none());
    }
}
