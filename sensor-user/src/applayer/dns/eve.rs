//! The `dns` EVE record in Suricata 8's "version 3" layout: questions, answers grouped and
//! in detail, authorities, additionals, flags, and the names of types and codes.

use super::*;

/// The `dns` object of one message.
pub(super) fn message_json(message: &Message, tx_id: u64, request: bool) -> Value {
    let header = &message.header;
    let mut obj = Map::new();
    obj.insert("version".into(), 3.into());
    let kind = if request { "request" } else { "response" };
    obj.insert("type".into(), kind.into());
    // The flow's message counter, then the id on the wire.
    obj.insert("tx_id".into(), tx_id.into());
    obj.insert("id".into(), header.id.into());
    // Not zero-padded: `format!("{:x}")`.
    obj.insert("flags".into(), format!("{:x}", header.flags).into());
    for (bit, key) in [
        (FLAG_QR, "qr"),
        (FLAG_AA, "aa"),
        (FLAG_TC, "tc"),
        (FLAG_RD, "rd"),
        (FLAG_RA, "ra"),
        (FLAG_Z, "z"),
    ] {
        if header.flags & bit != 0 {
            obj.insert(key.into(), true.into());
        }
    }
    obj.insert("opcode".into(), opcode(header.flags).into());
    // Logged for requests too: it is read from the header of whichever message this is.
    obj.insert("rcode".into(), rcode_name(header.flags).into());

    if !message.questions.is_empty() {
        let queries = message.questions.iter().map(question_json).collect();
        obj.insert("queries".into(), Value::Array(queries));
    }

    if !message.answers.is_empty() {
        let mut answers = Vec::new();
        for record in &message.answers {
            push_record_details(&mut answers, record);
        }
        obj.insert("answers".into(), Value::Array(answers));
        obj.insert(
            "grouped".into(),
            Value::Object(grouped_json(&message.answers)),
        );
    }

    if !message.authorities.is_empty() {
        let mut authorities = Vec::new();
        for record in &message.authorities {
            push_record_details(&mut authorities, record);
        }
        obj.insert("authorities".into(), Value::Array(authorities));
    }

    // An OPT record without options says nothing worth logging; the array is only opened
    // when something is left.
    let mut additionals = Vec::new();
    for record in &message.additionals {
        if matches!(&record.data, RData::Opt(options) if options.is_empty()) {
            continue;
        }
        push_record_details(&mut additionals, record);
    }
    if !additionals.is_empty() {
        obj.insert("additionals".into(), Value::Array(additionals));
    }

    Value::Object(obj)
}

pub(super) fn question_json(question: &Question) -> Value {
    let mut obj = Map::new();
    obj.insert("rrname".into(), name_string(&question.name.value).into());
    obj.insert("rrtype".into(), rrtype_name(question.rrtype).into());
    if question.name.flags.truncated {
        obj.insert("rrname_truncated".into(), true.into());
    }
    Value::Object(obj)
}

/// Appends the detailed entries of one record: one per string for TXT (none for a TXT
/// without strings), one otherwise.
pub(super) fn push_record_details(list: &mut Vec<Value>, record: &Record) {
    match &record.data {
        RData::Txt(strings) => {
            for string in strings {
                list.push(record_json(record, Some(string)));
            }
        }
        _ => list.push(record_json(record, None)),
    }
}

/// One detailed record: `rrname`, `rrtype`, `ttl`, then the rdata in the shape of its type.
pub(super) fn record_json(record: &Record, txt: Option<&Vec<u8>>) -> Value {
    let mut obj = Map::new();
    obj.insert("rrname".into(), name_string(&record.name.value).into());
    if record.name.flags.truncated {
        obj.insert("rrname_truncated".into(), true.into());
    }
    obj.insert("rrtype".into(), rrtype_name(record.rrtype).into());
    obj.insert("ttl".into(), record.ttl.into());
    match &record.data {
        RData::Addr(addr) => {
            obj.insert("rdata".into(), addr_string(addr).into());
        }
        RData::Name(name) => {
            obj.insert("rdata".into(), name_string(&name.value).into());
            if name.flags.truncated {
                obj.insert("rdata_truncated".into(), true.into());
            }
        }
        RData::Txt(_) => {
            if let Some(string) = txt {
                obj.insert("rdata".into(), name_string(string).into());
            }
        }
        RData::Null(bytes) => {
            obj.insert("rdata".into(), name_string(bytes).into());
        }
        RData::Soa(soa) => {
            obj.insert("soa".into(), soa_json(soa));
        }
        RData::Sshfp(sshfp) => {
            obj.insert("sshfp".into(), sshfp_json(sshfp));
        }
        RData::Srv(srv) => {
            obj.insert("srv".into(), srv_json(srv));
        }
        RData::Opt(options) => {
            let list = options.iter().map(option_json).collect();
            obj.insert("opt".into(), Value::Array(list));
        }
        RData::Unknown => {}
    }
    Value::Object(obj)
}

/// `grouped`: answers' rdata by type name, for the types Suricata groups. Suricata fills
/// a hash map, so its key order varies; first appearance is used here.
pub(super) fn grouped_json(answers: &[Record]) -> Map<String, Value> {
    let mut groups = Map::new();
    for record in answers {
        let values: Vec<Value> = match &record.data {
            RData::Addr(addr) => vec![addr_string(addr).into()],
            RData::Name(name) => vec![name_string(&name.value).into()],
            RData::Txt(strings) => strings.iter().map(|s| name_string(s).into()).collect(),
            RData::Null(bytes) => vec![name_string(bytes).into()],
            RData::Soa(soa) => vec![soa_json(soa)],
            RData::Sshfp(sshfp) => vec![sshfp_json(sshfp)],
            RData::Srv(srv) => vec![srv_json(srv)],
            RData::Opt(_) | RData::Unknown => continue,
        };
        let group = groups
            .entry(rrtype_name(record.rrtype))
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = group {
            list.extend(values);
        }
    }
    groups
}

pub(super) fn soa_json(soa: &Soa) -> Value {
    let mut obj = Map::new();
    obj.insert("mname".into(), name_string(&soa.mname.value).into());
    if soa.mname.flags.truncated {
        obj.insert("mname_truncated".into(), true.into());
    }
    obj.insert("rname".into(), name_string(&soa.rname.value).into());
    if soa.rname.flags.truncated {
        obj.insert("rname_truncated".into(), true.into());
    }
    obj.insert("serial".into(), soa.serial.into());
    obj.insert("refresh".into(), soa.refresh.into());
    obj.insert("retry".into(), soa.retry.into());
    obj.insert("expire".into(), soa.expire.into());
    obj.insert("minimum".into(), soa.minimum.into());
    Value::Object(obj)
}

pub(super) fn sshfp_json(sshfp: &Sshfp) -> Value {
    let fingerprint: Vec<String> = sshfp
        .fingerprint
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut obj = Map::new();
    obj.insert("fingerprint".into(), fingerprint.join(":").into());
    obj.insert("algo".into(), sshfp.algo.into());
    obj.insert("type".into(), sshfp.fp_type.into());
    Value::Object(obj)
}

pub(super) fn srv_json(srv: &Srv) -> Value {
    let mut obj = Map::new();
    obj.insert("priority".into(), srv.priority.into());
    obj.insert("weight".into(), srv.weight.into());
    obj.insert("port".into(), srv.port.into());
    obj.insert("name".into(), name_string(&srv.target.value).into());
    Value::Object(obj)
}

pub(super) fn option_json(option: &EdnsOption) -> Value {
    let mut obj = Map::new();
    obj.insert("code".into(), option.code.into());
    obj.insert("data".into(), hex(&option.data).into());
    Value::Object(obj)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Suricata's `set_string_from_bytes`: valid UTF-8 as is; otherwise ASCII bytes as
/// characters and every other byte as the four characters `\xNN`.
pub(super) fn name_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len());
            for &b in bytes {
                if b.is_ascii() {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}

/// Suricata's `dns_print_addr`: dotted quad for 4 bytes, eight unabbreviated zero-padded
/// groups for 16 bytes, an empty string for any other length.
pub(super) fn addr_string(addr: &[u8]) -> String {
    match addr {
        [a, b, c, d] => format!("{a}.{b}.{c}.{d}"),
        _ if addr.len() == 16 => addr
            .chunks(2)
            .map(|pair| pair.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .collect::<Vec<_>>()
            .join(":"),
        _ => String::new(),
    }
}

/// Record type names: Suricata 8's `DNSRecordType` (`dns.rs`), upper-cased; types it does
/// not list (CAA among them) are written as their number.
pub(super) fn rrtype_name(rrtype: u16) -> String {
    let name = match rrtype {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAPPTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        _ => return rrtype.to_string(),
    };
    name.to_owned()
}

/// Response code names from the header's low four bits (`DNSRcode`); the unassigned ones,
/// 11 to 15, as numbers.
pub(super) fn rcode_name(flags: u16) -> String {
    let rcode = flags & 0x000f;
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return rcode.to_string(),
    };
    name.to_owned()
}

/// Which layout `dns` records are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DnsVersion {
    /// Suricata 7's "version 2", which most SOC pipelines parse today: one `query` record per
    /// question of a request, one `answer` record per response.
    V2,
    /// Suricata 8's "version 3": one record per message, questions in `queries`.
    #[default]
    V3,
}

/// The version-2 records of a message whose version-3 object is `v3`, as Suricata 7 writes
/// them: a request becomes one `query` record per question (`id`, `rrname`, `rrtype`,
/// `tx_id`, `opcode`); a response one `answer` record with the header's flags, its first
/// question's `rrname`/`rrtype`, `rcode`, and `answers`, `grouped` and `authorities` as in
/// version 3. Version 2 writes no additionals and no `tx_id` in answers.
pub fn v2_objects(v3: &Value) -> Vec<Value> {
    let empty = Vec::new();
    let queries = v3["queries"].as_array().unwrap_or(&empty);
    let field = |obj: &mut Map<String, Value>, key: &str, from: &Value| {
        if let Some(v) = from.get(key) {
            obj.insert(key.into(), v.clone());
        }
    };
    if v3["type"] == "request" {
        return queries
            .iter()
            .map(|q| {
                let mut obj = Map::new();
                obj.insert("version".into(), 2.into());
                obj.insert("type".into(), "query".into());
                field(&mut obj, "id", v3);
                field(&mut obj, "rrname", q);
                field(&mut obj, "rrname_truncated", q);
                field(&mut obj, "rrtype", q);
                field(&mut obj, "tx_id", v3);
                field(&mut obj, "opcode", v3);
                Value::Object(obj)
            })
            .collect();
    }
    let mut obj = Map::new();
    obj.insert("version".into(), 2.into());
    obj.insert("type".into(), "answer".into());
    for key in ["id", "flags", "qr", "aa", "tc", "rd", "ra", "z", "opcode"] {
        field(&mut obj, key, v3);
    }
    if let Some(q) = queries.first() {
        field(&mut obj, "rrname", q);
        field(&mut obj, "rrtype", q);
    }
    for key in ["rcode", "answers", "grouped", "authorities"] {
        field(&mut obj, key, v3);
    }
    vec![Value::Object(obj)]
}
