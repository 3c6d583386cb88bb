//! The DNS wire format: header, questions and resource records, with name decompression
//! bounded against loops and overlong names. Outcomes, not panics: a message that cannot be
//! read is a [`ParseError`].

use super::*;

pub(super) fn opcode(flags: u16) -> u16 {
    (flags >> 11) & 0xf
}

// ---------------------------------------------------------------------------------------
// Message model and parsing
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) id: u16,
    pub(super) flags: u16,
    pub(super) questions: u16,
    pub(super) answers: u16,
    pub(super) authorities: u16,
    pub(super) additionals: u16,
}

/// Recoverable trouble met while reading names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct NameFlags {
    /// A pointer pointed at itself.
    pub(super) infinite_loop: bool,
    /// The name was cut at [`MAX_NAME_LEN`], or at the segment limit.
    pub(super) truncated: bool,
    /// More than [`MAX_NAME_SEGMENTS`] labels and pointers.
    pub(super) label_limit: bool,
}

impl NameFlags {
    pub(super) fn merge(&mut self, other: NameFlags) {
        self.infinite_loop |= other.infinite_loop;
        self.truncated |= other.truncated;
        self.label_limit |= other.label_limit;
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Name {
    /// Labels joined by dots, raw bytes.
    pub(super) value: Vec<u8>,
    pub(super) flags: NameFlags,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Question {
    pub(super) name: Name,
    pub(super) rrtype: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Soa {
    pub(super) mname: Name,
    pub(super) rname: Name,
    pub(super) serial: u32,
    pub(super) refresh: u32,
    pub(super) retry: u32,
    pub(super) expire: u32,
    pub(super) minimum: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Srv {
    pub(super) priority: u16,
    pub(super) weight: u16,
    pub(super) port: u16,
    pub(super) target: Name,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Sshfp {
    pub(super) algo: u8,
    pub(super) fp_type: u8,
    pub(super) fingerprint: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct EdnsOption {
    pub(super) code: u16,
    pub(super) data: Vec<u8>,
}

/// Decoded rdata. Types Suricata does not decode (HINFO, DNAME, CAA, …) stay raw and are
/// logged without rdata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RData {
    /// A or AAAA: the address bytes, whatever their number.
    Addr(Vec<u8>),
    /// CNAME, NS, PTR, or the exchange of an MX (its preference is not kept).
    Name(Name),
    /// The character strings of a TXT record.
    Txt(Vec<Vec<u8>>),
    Null(Vec<u8>),
    Soa(Soa),
    Srv(Srv),
    Sshfp(Sshfp),
    Opt(Vec<EdnsOption>),
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) name: Name,
    pub(super) rrtype: u16,
    pub(super) ttl: u32,
    pub(super) data: RData,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Message {
    pub(super) header: Header,
    pub(super) questions: Vec<Question>,
    pub(super) answers: Vec<Record>,
    pub(super) authorities: Vec<Record>,
    /// The authority section failed to parse (then additionals are not tried).
    pub(super) invalid_authorities: bool,
    pub(super) additionals: Vec<Record>,
    pub(super) invalid_additionals: bool,
    pub(super) name_flags: NameFlags,
}

/// Why bytes stopped parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ParseError {
    /// A field runs past the end of the message or of its rdata.
    Incomplete,
    /// A reserved label type, an out-of-bounds or immediately looping pointer, too many
    /// labels.
    Invalid,
}

/// Why a whole message was not turned into a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MessageError {
    /// The header is missing or implausible ([`header_plausible`]).
    Header,
    /// A response came from the client.
    NotRequest,
    /// The questions or answers do not parse.
    Malformed,
}

/// Parses a message sent in `dir`, with Suricata's checks: a plausible header, and no
/// response towards the server. A request towards the client is accepted (and flagged
/// `not_response`).
pub(super) fn parse_for_direction(msg: &[u8], dir: Dir) -> Result<Message, MessageError> {
    let header = parse_header(msg)
        .filter(|h| header_plausible(h, msg.len()))
        .ok_or(MessageError::Header)?;
    let message = parse_body(msg, header).map_err(|_| MessageError::Malformed)?;
    if dir == Dir::ToServer && message.header.flags & FLAG_QR != 0 {
        return Err(MessageError::NotRequest);
    }
    Ok(message)
}

/// Reads big-endian fields within `msg[pos..end]`; `msg` is the whole message, which name
/// pointers index into.
pub(super) struct Cursor<'a> {
    pub(super) msg: &'a [u8],
    pub(super) pos: usize,
    pub(super) end: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(msg: &'a [u8], pos: usize, end: usize) -> Cursor<'a> {
        Cursor { msg, pos, end }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let stop = self.pos.checked_add(n).ok_or(ParseError::Incomplete)?;
        if stop > self.end {
            return Err(ParseError::Incomplete);
        }
        let bytes = self.msg.get(self.pos..stop).ok_or(ParseError::Incomplete)?;
        self.pos = stop;
        Ok(bytes)
    }

    pub(super) fn u8(&mut self) -> Result<u8, ParseError> {
        match self.take(1)? {
            [b] => Ok(*b),
            _ => Err(ParseError::Incomplete),
        }
    }

    pub(super) fn u16(&mut self) -> Result<u16, ParseError> {
        match self.take(2)? {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(ParseError::Incomplete),
        }
    }

    pub(super) fn u32(&mut self) -> Result<u32, ParseError> {
        match self.take(4)? {
            [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => Err(ParseError::Incomplete),
        }
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        let bytes = self.msg.get(self.pos..self.end).unwrap_or_default();
        self.pos = self.end;
        bytes
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.end
    }
}

pub(super) fn parse_header(msg: &[u8]) -> Option<Header> {
    let mut cur = Cursor::new(msg, 0, msg.len());
    let mut field = || cur.u16().ok();
    Some(Header {
        id: field()?,
        flags: field()?,
        questions: field()?,
        answers: field()?,
        authorities: field()?,
        additionals: field()?,
    })
}

/// Parses everything after the header. Questions and answers must parse; a broken
/// authority or additional section is dropped and flagged instead, as in Suricata's
/// `dns_parse_body`. Bytes after the last record are ignored.
pub(super) fn parse_body(msg: &[u8], header: Header) -> Result<Message, ParseError> {
    let mut cur = Cursor::new(msg, HEADER_LEN, msg.len());
    let mut name_flags = NameFlags::default();

    let mut questions = Vec::new();
    for _ in 0..header.questions {
        let name = parse_name(&mut cur, &mut name_flags)?;
        let rrtype = cur.u16()?;
        let _class = cur.u16()?;
        questions.push(Question { name, rrtype });
    }

    let answers = parse_records(&mut cur, header.answers, &mut name_flags)?;

    let (authorities, invalid_authorities) =
        match parse_records(&mut cur, header.authorities, &mut name_flags) {
            Ok(records) => (records, false),
            Err(_) => (Vec::new(), true),
        };

    let (additionals, invalid_additionals) = if invalid_authorities {
        (Vec::new(), false)
    } else {
        match parse_records(&mut cur, header.additionals, &mut name_flags) {
            Ok(records) => (records, false),
            Err(_) => (Vec::new(), true),
        }
    };

    Ok(Message {
        header,
        questions,
        answers,
        authorities,
        invalid_authorities,
        additionals,
        invalid_additionals,
        name_flags,
    })
}

/// Parses `count` resource records. The cursor only moves on success, so a failed
/// optional section leaves it where the section began.
pub(super) fn parse_records(
    cur: &mut Cursor,
    count: u16,
    flags: &mut NameFlags,
) -> Result<Vec<Record>, ParseError> {
    let mut local = Cursor::new(cur.msg, cur.pos, cur.end);
    let mut records = Vec::new();
    for _ in 0..count {
        records.push(parse_record(&mut local, flags)?);
    }
    cur.pos = local.pos;
    Ok(records)
}

pub(super) fn parse_record(cur: &mut Cursor, flags: &mut NameFlags) -> Result<Record, ParseError> {
    let name = parse_name(cur, flags)?;
    let rrtype = cur.u16()?;
    let _class = cur.u16()?;
    let ttl = cur.u32()?;
    let rdlength = usize::from(cur.u16()?);
    let start = cur.pos;
    cur.take(rdlength)?;
    let mut rdata = Cursor::new(cur.msg, start, cur.pos);
    let data = parse_rdata(&mut rdata, rrtype, flags)?;
    Ok(Record {
        name,
        rrtype,
        ttl,
        data,
    })
}

/// Decodes rdata as Suricata's `dns_parse_rdata` does: fields past the rdata end are an
/// error, extra bytes after them are ignored.
pub(super) fn parse_rdata(
    cur: &mut Cursor,
    rrtype: u16,
    flags: &mut NameFlags,
) -> Result<RData, ParseError> {
    let data = match rrtype {
        TYPE_A | TYPE_AAAA => RData::Addr(cur.rest().to_vec()),
        TYPE_CNAME | TYPE_NS | TYPE_PTR => RData::Name(parse_name(cur, flags)?),
        TYPE_MX => {
            let _preference = cur.u16()?;
            RData::Name(parse_name(cur, flags)?)
        }
        TYPE_TXT => {
            let mut strings = Vec::new();
            while !cur.is_empty() {
                let len = usize::from(cur.u8()?);
                strings.push(cur.take(len)?.to_vec());
            }
            RData::Txt(strings)
        }
        TYPE_NULL => RData::Null(cur.rest().to_vec()),
        TYPE_SOA => RData::Soa(Soa {
            mname: parse_name(cur, flags)?,
            rname: parse_name(cur, flags)?,
            serial: cur.u32()?,
            refresh: cur.u32()?,
            retry: cur.u32()?,
            expire: cur.u32()?,
            minimum: cur.u32()?,
        }),
        TYPE_SRV => RData::Srv(Srv {
            priority: cur.u16()?,
            weight: cur.u16()?,
            port: cur.u16()?,
            target: parse_name(cur, flags)?,
        }),
        TYPE_SSHFP => RData::Sshfp(Sshfp {
            algo: cur.u8()?,
            fp_type: cur.u8()?,
            fingerprint: cur.rest().to_vec(),
        }),
        TYPE_OPT => {
            let mut options = Vec::new();
            while !cur.is_empty() {
                let code = cur.u16()?;
                let len = usize::from(cur.u16()?);
                options.push(EdnsOption {
                    code,
                    data: cur.take(len)?.to_vec(),
                });
            }
            RData::Opt(options)
        }
        _ => RData::Unknown,
    };
    Ok(data)
}

/// Reads a possibly compressed name at the cursor, which then points just past the name
/// as written there (past the first pointer, if one was followed).
///
/// Mirrors Suricata's `dns_parse_name`: a name may end at the end of its data without a
/// terminating zero; a pointer may point anywhere in the message, up to its end; a pointer
/// to itself is an error unless a pointer was already followed (then the name ends there,
/// flagged `infinite_loop`); longer loops stop at [`MAX_NAME_SEGMENTS`] (an error before
/// any pointer, else the name so far, flagged); names are cut at [`MAX_NAME_LEN`].
pub(super) fn parse_name(cur: &mut Cursor, acc: &mut NameFlags) -> Result<Name, ParseError> {
    let msg = cur.msg;
    let mut pos = cur.pos;
    let mut end = cur.end;
    // Where the caller resumes once a pointer has been followed.
    let mut resume: Option<usize> = None;
    let mut value: Vec<u8> = Vec::with_capacity(32);
    let mut flags = NameFlags::default();
    let mut segments = 0usize;

    loop {
        if pos >= end {
            break;
        }
        let Some(&len) = msg.get(pos) else {
            break;
        };
        if len == 0 {
            pos += 1;
            break;
        } else if len & 0xc0 == 0 {
            let start = pos + 1;
            let stop = start + usize::from(len);
            if stop > end {
                return Err(ParseError::Incomplete);
            }
            let label = msg.get(start..stop).ok_or(ParseError::Incomplete)?;
            if !flags.truncated {
                if !value.is_empty() {
                    value.push(b'.');
                }
                value.extend_from_slice(label);
            }
            pos = stop;
        } else if len & 0xc0 == 0xc0 {
            if pos + 2 > end {
                return Err(ParseError::Incomplete);
            }
            let Some(&[hi, lo]) = msg.get(pos..pos + 2) else {
                return Err(ParseError::Incomplete);
            };
            let offset = usize::from(u16::from_be_bytes([hi, lo]) & 0x3fff);
            let target = msg.get(offset..).ok_or(ParseError::Invalid)?;
            // Suricata compares the bytes from the target with the bytes left where the
            // pointer sits; equal means the pointer points at itself.
            if Some(target) == msg.get(pos..end) {
                flags.infinite_loop = true;
                if resume.is_some() {
                    break;
                }
                return Err(ParseError::Invalid);
            }
            if resume.is_none() {
                resume = Some(pos + 2);
            }
            pos = offset;
            end = msg.len();
        } else {
            // 0x40 and 0x80 label types (extended labels) are not supported.
            return Err(ParseError::Invalid);
        }

        segments += 1;
        if segments > MAX_NAME_SEGMENTS {
            flags.label_limit = true;
            if resume.is_none() {
                return Err(ParseError::Invalid);
            }
            flags.truncated = true;
            break;
        }

        if value.len() > MAX_NAME_LEN {
            value.truncate(MAX_NAME_LEN);
            flags.truncated = true;
            // Without a pointer the end of the name is still to be found, so parsing
            // goes on (without collecting labels); after one, the caller's position is
            // already known.
            if resume.is_some() {
                break;
            }
        }
    }

    acc.merge(flags);
    cur.pos = resume.unwrap_or(pos);
    Ok(Name { value, flags })
}

// ---------------------------------------------------------------------------------------
// EVE rendering (Suricata 8 `rust/src/dns/log.rs`, `log_json`, version 3)
// ---------------------------------------------------------------------------------------
