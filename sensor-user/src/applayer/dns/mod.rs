//! DNS over UDP and TCP: content-based detection of a first payload, parsing of DNS
//! messages (header, questions, answers, authorities and additionals, with name
//! decompression), and what one flow's messages turn into: EVE `dns` records in
//! Suricata 8's "version 3" layout, the `dns.query` / `dns.queries.rrname` sticky buffers,
//! and DNS anomaly events.
//!
//! The behaviour mirrors Suricata 8.0's Rust DNS parser and logger (`rust/src/dns/dns.rs`,
//! `parser.rs`, `log.rs` in OISF/suricata) so that the records match its output:
//!
//! - Every parsed message is its own transaction: requests and responses are logged
//!   separately, at the moment they are parsed, and `tx_id` counts every parsed message of
//!   the flow, both directions together, from 0.
//! - A response is logged whether or not a request was seen; a message without any
//!   question is parsed (it uses up a `tx_id`) but not logged, as Suricata's
//!   `SCDnsLogEnabled` requires a query.
//! - A message whose header is implausible is ignored on UDP and stops the parser on TCP;
//!   a malformed message, or a response sent towards the server, yields no record, and its
//!   event (`malformed_data`, `not_request`) lands on the most recent transaction, which
//!   Suricata has in practice already logged and freed unless it was created by the same
//!   chunk of TCP stream. So those events are only reported in that case.

use serde_json::{Map, Value};

use super::{AppParser, AppRecord, Buffer, Dir, Output};

mod eve;
mod wire;

use eve::*;
pub use eve::{v2_objects, DnsVersion};
use wire::*;

/// Size of the fixed DNS header.
const HEADER_LEN: usize = 12;

/// Longest name kept, in presentation form. Suricata took this bound from dnsmasq; longer
/// names are cut and flagged as truncated.
const MAX_NAME_LEN: usize = 1025;

/// Labels and pointers followed per name before giving up: the guard against pointer loops.
const MAX_NAME_SEGMENTS: usize = 255;

/// Header flag bits.
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const FLAG_Z: u16 = 0x0040;

/// Record types whose rdata is decoded; all others are kept as raw bytes, as Suricata does.
const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_NULL: u16 = 10;
const TYPE_PTR: u16 = 12;
const TYPE_MX: u16 = 15;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const TYPE_SSHFP: u16 = 44;

/// DNS anomaly events, spelled as Suricata 8 writes them in EVE `anomaly.event`: its
/// `DNSEvent` variants turned to snake case by the `AppLayerEvent` derive.
const EV_MALFORMED_DATA: &str = "malformed_data";
const EV_NOT_REQUEST: &str = "not_request";
const EV_NOT_RESPONSE: &str = "not_response";
const EV_Z_FLAG_SET: &str = "z_flag_set";
const EV_INVALID_OPCODE: &str = "invalid_opcode";
const EV_NAME_TOO_LONG: &str = "name_too_long";
const EV_INFINITE_LOOP: &str = "infinite_loop";
const EV_TOO_MANY_LABELS: &str = "too_many_labels";
const EV_INVALID_ADDITIONALS: &str = "invalid_additionals";
const EV_INVALID_AUTHORITIES: &str = "invalid_authorities";

// ---------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------

/// Whether `data`, the first payload of a flow (one UDP datagram, or the start of a TCP
/// stream with its 2-byte length prefix), looks like a DNS message.
///
/// Like Suricata's probing parser, the header must be plausible (record counts that fit
/// the message, a question in every request) and, when the whole message is there, its
/// questions and records must parse. The opcode is not checked: Suricata detects and logs
/// messages with unassigned opcodes (and flags them `invalid_opcode`). Suricata only
/// probes DNS on port 53.
pub fn probe(data: &[u8], tcp: bool) -> bool {
    probe_dir(data, tcp).is_some()
}

/// Like [`probe`], and tells which way the message goes: [`Dir::ToServer`] for a request,
/// [`Dir::ToClient`] for a response. Suricata uses this to orient a flow whose first packet
/// is a response.
pub fn probe_dir(data: &[u8], tcp: bool) -> Option<Dir> {
    let verdict = if tcp {
        // Suricata wants the length prefix and a whole header before it decides.
        if data.len() < HEADER_LEN + 2 {
            return None;
        }
        probe_tcp(data)
    } else {
        if data.len() < HEADER_LEN {
            return None;
        }
        probe_message(data, data.len())
    };
    match verdict {
        Probe::Dns { request: true } => Some(Dir::ToServer),
        Probe::Dns { request: false } => Some(Dir::ToClient),
        Probe::NotDns | Probe::Incomplete => None,
    }
}

/// Outcome of probing some bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// A plausible DNS message; `request` when the QR bit is clear.
    Dns { request: bool },
    /// Not DNS.
    NotDns,
    /// Too little data to tell.
    Incomplete,
}

/// Probes a TCP stream start: a 2-byte length, then the message.
fn probe_tcp(data: &[u8]) -> Probe {
    match data {
        [hi, lo, rest @ ..] => probe_message(rest, usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => Probe::Incomplete,
    }
}

/// Probes a message announced as `dlen` bytes long, of which `input` holds the start.
/// With only part of it, the header alone decides.
fn probe_message(input: &[u8], dlen: usize) -> Probe {
    let input = input.get(..dlen).unwrap_or(input);
    let Some(header) = parse_header(input) else {
        return Probe::NotDns;
    };
    if input.len() < dlen {
        return probe_verdict(&header, dlen);
    }
    match parse_body(input, header) {
        Ok(message) => probe_verdict(&message.header, dlen),
        Err(ParseError::Incomplete) => Probe::Incomplete,
        Err(ParseError::Invalid) => Probe::NotDns,
    }
}

fn probe_verdict(header: &Header, len: usize) -> Probe {
    if header_plausible(header, len) {
        Probe::Dns {
            request: header.flags & FLAG_QR == 0,
        }
    } else {
        Probe::NotDns
    }
}

/// Suricata's `probe_header_validity`: the counts must fit the message (each record takes
/// at least two bytes), a message without records must be a bare header, and a request
/// must ask something.
fn header_plausible(header: &Header, len: usize) -> bool {
    let records = usize::from(header.questions)
        + usize::from(header.answers)
        + usize::from(header.authorities)
        + usize::from(header.additionals);
    if 2 * records > len {
        return false;
    }
    if records == 0 && len > HEADER_LEN {
        return false;
    }
    let request = header.flags & FLAG_QR == 0;
    !(request && header.questions == 0)
}

// ---------------------------------------------------------------------------------------
// Per-flow parser
// ---------------------------------------------------------------------------------------

/// One flow's DNS state: the transaction counter and, on TCP, the partial messages of
/// each direction.
#[derive(Debug)]
pub struct DnsParser {
    tcp: bool,
    /// `tx_id` of the next parsed message.
    next_tx_id: u64,
    /// TCP bytes not yet forming a whole length-prefixed message, per direction.
    pending: [Vec<u8>; 2],
    /// A TCP gap was seen and the stream has not looked like DNS since.
    gap: bool,
    /// A TCP message failed to parse: Suricata then stops parsing the whole flow.
    failed: bool,
}

impl DnsParser {
    /// A parser for a UDP flow (`tcp == false`, one message per datagram) or a TCP flow
    /// (length-prefixed messages in a byte stream).
    pub fn new(tcp: bool) -> DnsParser {
        DnsParser {
            tcp,
            next_tx_id: 0,
            pending: [Vec::new(), Vec::new()],
            gap: false,
            failed: false,
        }
    }

    fn parse_udp(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        let mut chunk = Chunk::default();
        // On UDP a bad datagram never stops the flow: the next one is parsed afresh.
        let _ = self.handle_message(dir, data, &mut chunk, out);
    }

    fn parse_tcp(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        let idx = dir_index(dir);
        let mut buf = std::mem::take(&mut self.pending[idx]);
        buf.extend_from_slice(data);

        if self.gap {
            match probe_tcp(&buf) {
                Probe::Dns { .. } | Probe::Incomplete => self.gap = false,
                Probe::NotDns => {
                    // Suricata's response parser skips data that does not look like DNS
                    // after a gap; its request parser forgets to (a missing `return` in
                    // `parse_request_tcp`) and goes on, so requests are parsed anyway.
                    if dir == Dir::ToClient {
                        return;
                    }
                }
            }
        }

        let mut chunk = Chunk::default();
        let mut off = 0;
        while let Some(rest) = buf.get(off..) {
            let [hi, lo, body @ ..] = rest else {
                break;
            };
            let size = usize::from(u16::from_be_bytes([*hi, *lo]));
            if size == 0 {
                // Suricata skips empty frames.
                off += 2;
                continue;
            }
            let Some(message) = body.get(..size) else {
                break;
            };
            if !self.handle_message(dir, message, &mut chunk, out) {
                self.failed = true;
                self.pending = [Vec::new(), Vec::new()];
                return;
            }
            off += 2 + size;
        }
        buf.drain(..off.min(buf.len()));
        self.pending[idx] = buf;
    }

    /// Parses one whole message from `dir` and emits what it yields. Returns whether
    /// parsing may go on (a TCP parser stops at the first failure, as Suricata's does).
    fn handle_message(
        &mut self,
        dir: Dir,
        msg: &[u8],
        chunk: &mut Chunk,
        out: &mut Output,
    ) -> bool {
        match parse_for_direction(msg, dir) {
            Ok(message) => {
                let tx_id = self.next_tx_id;
                self.next_tx_id += 1;
                chunk.has_tx = true;
                emit(&message, dir, tx_id, out);
                true
            }
            Err(MessageError::Header) => !self.tcp,
            Err(MessageError::NotRequest) => {
                chunk.event_on_last_tx(EV_NOT_REQUEST, out);
                false
            }
            Err(MessageError::Malformed) => {
                chunk.event_on_last_tx(EV_MALFORMED_DATA, out);
                false
            }
        }
    }
}

impl AppParser for DnsParser {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn parse(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        if self.failed {
            return;
        }
        if self.tcp {
            self.parse_tcp(dir, data, out);
        } else {
            self.parse_udp(dir, data, out);
        }
    }

    fn gap(&mut self, dir: Dir, len: usize, out: &mut Output) {
        let _ = out;
        if self.tcp && len > 0 {
            // The partial message before the gap can never complete; resume at the first
            // chunk that looks like DNS again (one flag for both directions, as Suricata).
            self.pending[dir_index(dir)].clear();
            self.gap = true;
        }
    }
}

fn dir_index(dir: Dir) -> usize {
    match dir {
        Dir::ToServer => 0,
        Dir::ToClient => 1,
    }
}

/// What one `parse` call has produced so far, to place events that Suricata attaches to
/// "the most recent transaction".
#[derive(Default)]
struct Chunk {
    has_tx: bool,
}

impl Chunk {
    /// Suricata sets the event on its newest live transaction. One created by this same
    /// chunk has not been logged yet, so the event shows with it; an older one has already
    /// been logged (and freed), so the event is lost.
    fn event_on_last_tx(&self, event: &'static str, out: &mut Output) {
        if self.has_tx {
            out.anomalies.push(event);
        }
    }
}

/// Writes the record, sticky buffers and events of one parsed message.
fn emit(message: &Message, dir: Dir, tx_id: u64, out: &mut Output) {
    let request = dir == Dir::ToServer;
    out.anomalies.extend(message_events(message, request));

    for question in &message.questions {
        // Suricata's buffer getters skip empty (root) names.
        if question.name.value.is_empty() {
            continue;
        }
        if request {
            // `dns.query` is registered for the request direction only.
            out.buffers
                .push((Dir::ToServer, Buffer::DnsQuery, question.name.value.clone()));
        }
        out.buffers
            .push((dir, Buffer::DnsQueriesRrname, question.name.value.clone()));
    }
    // After the names, which start the message's transaction: the opcode joins it. Opcodes
    // are four bits, so one byte holds it.
    out.buffers.push((
        dir,
        Buffer::DnsOpcode,
        vec![(wire::opcode(message.header.flags) & 0x0f) as u8],
    ));

    // `SCDnsLogEnabled`: a transaction is logged only when one of its queries is of a type
    // being logged; by default every type is, so a message needs a question.
    if !message.questions.is_empty() {
        out.records.push(AppRecord {
            event_type: "dns",
            object: message_json(message, tx_id, request),
            dir,
            tx_id: None,
        });
    }
}

/// The events Suricata sets on a transaction it created, in its order
/// (`dns_parse_request` / `dns_parse_response` in `dns.rs`).
fn message_events(message: &Message, request: bool) -> Vec<&'static str> {
    let flags = message.header.flags;
    let mut events = Vec::new();
    if message.invalid_additionals {
        events.push(EV_INVALID_ADDITIONALS);
    }
    if message.invalid_authorities {
        events.push(EV_INVALID_AUTHORITIES);
    }
    if !request && flags & FLAG_QR == 0 {
        events.push(EV_NOT_RESPONSE);
    }
    if flags & FLAG_Z != 0 {
        events.push(EV_Z_FLAG_SET);
    }
    if opcode(flags) >= 7 {
        events.push(EV_INVALID_OPCODE);
    }
    if message.name_flags.truncated {
        events.push(EV_NAME_TOO_LONG);
    }
    if message.name_flags.infinite_loop {
        events.push(EV_INFINITE_LOOP);
    }
    if message.name_flags.label_limit {
        events.push(EV_TOO_MANY_LABELS);
    }
    events
}

#[cfg(test)]
mod tests;
