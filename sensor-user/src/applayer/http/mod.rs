//! HTTP/1.x: a lenient request and response parser in the spirit of libhtp (what real
//! clients and servers send, not only what the RFCs allow), pairing pipelined requests with
//! responses into transactions, logged as EVE `http` records when both sides are complete.
//! A successful `CONNECT` (or `101 Switching Protocols`) hands the rest of the stream over to
//! protocol detection.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

use super::{AppParser, AppRecord, Buffer, Dir, Leftover, Output};

mod buffers;
mod coding;
mod message;
mod tx;
mod uri;

use buffers::*;
use message::*;
use tx::*;
pub use uri::{normalize_uri, percent_decode};

/// Bytes of headers buffered per message before giving up on it.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Body bytes kept per transaction for the signature engine.
const MAX_BODY_KEPT: usize = 64 * 1024;

/// `true` when `data` starts like an HTTP request (a known method and a space) or response.
pub fn probe(data: &[u8]) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"CONNECT ",
        b"TRACE ",
        b"PATCH ",
        b"PROPFIND ",
        b"PROPPATCH ",
        b"MKCOL ",
        b"COPY ",
        b"MOVE ",
        b"LOCK ",
        b"UNLOCK ",
        b"SEARCH ",
        b"REPORT ",
    ];
    METHODS.iter().any(|m| {
        data.starts_with(m) || (data.len() < m.len() && m.starts_with(data) && !data.is_empty())
    }) || data.starts_with(b"HTTP/1.")
}

#[derive(Debug)]
enum Phase {
    Line,
    Headers,
    Body(Body),
    /// After bytes were lost between responses (or inside one's headers): looking for the
    /// next status line, at a line start, to carry on from.
    Resync,
    /// The stream was handed over or cannot be parsed any more.
    Stopped,
}

#[derive(Debug)]
struct Side {
    buf: Pending,
    phase: Phase,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            buf: Pending::default(),
            phase: Phase::Line,
        }
    }
}

/// HTTP/1.x parser state of one connection.
#[derive(Debug, Default)]
pub struct HttpParser {
    req: Side,
    resp: Side,
    txs: VecDeque<Tx>,
    next_id: u64,
    /// Index in `txs` of the transaction whose response is being read.
    resp_tx: Option<usize>,
    switched: bool,
}

impl HttpParser {
    /// A parser for a new connection.
    pub fn new() -> HttpParser {
        HttpParser::default()
    }

    fn log_completed(&mut self, out: &mut Output) {
        while let Some(tx) = self
            .txs
            .pop_front_if(|tx| tx.request_done && tx.response_done)
        {
            self.resp_tx = self.resp_tx.and_then(|i| i.checked_sub(1));
            push_record(&tx, out);
        }
    }
}

impl HttpParser {
    fn parse_requests(&mut self, out: &mut Output) {
        loop {
            match &mut self.req.phase {
                // Requests are not resynchronised: a gap ends their parsing.
                Phase::Stopped | Phase::Resync => return,
                Phase::Line => {
                    let Some(line) = take_line(&mut self.req.buf) else {
                        if self.req.buf.len() > MAX_HEADER_BYTES {
                            out.anomalies.push("REQUEST_FIELD_TOO_LONG");
                            self.req.phase = Phase::Stopped;
                        }
                        return;
                    };
                    let parts = split_ws(&line);
                    if parts.is_empty() {
                        continue; // blank or all-whitespace lines between requests are skipped
                    }
                    let mut tx = Tx {
                        id: self.next_id,
                        ..Tx::default()
                    };
                    self.next_id += 1;
                    tx.method = parts.first().map(|p| p.to_vec()).unwrap_or_default();
                    tx.uri = parts.get(1).map(|p| p.to_vec()).unwrap_or_default();
                    if parts.len() >= 3 {
                        // The protocol is the last word; spaces before it belong to the URI,
                        // as libhtp reads such request lines.
                        let last = parts.len() - 1;
                        if parts[last].starts_with(b"HTTP/") {
                            tx.uri = parts[1..last].join(&b' ');
                            tx.protocol = parts[last].to_vec();
                        } else {
                            tx.protocol = parts[2..].join(&b' ');
                        }
                        self.req.phase = Phase::Headers;
                    } else if protocol_left_out(&self.req.buf) {
                        // More than blank space came with the line: libhtp takes it for a
                        // request whose protocol was left out, reads its headers and logs
                        // "Request line: missing protocol", which Suricata 8 raises as this
                        // event (Suricata 7 raises none).
                        out.anomalies.push("REQUEST_LINE_MISSING_PROTOCOL");
                        self.req.phase = Phase::Headers;
                    } else {
                        // HTTP/0.9: no protocol, no headers, no body. No event: libhtp
                        // raises none for it.
                        tx.http09 = true;
                        tx.request_done = true;
                    }
                    push_request_buffers(&tx, out);
                    self.txs.push_back(tx);
                }
                Phase::Headers => {
                    let Some(line) = take_line(&mut self.req.buf) else {
                        if self.req.buf.len() > MAX_HEADER_BYTES {
                            out.anomalies.push("REQUEST_FIELD_TOO_LONG");
                            self.req.phase = Phase::Stopped;
                        }
                        return;
                    };
                    let Some(tx) = self.txs.back_mut() else {
                        return;
                    };
                    if line.is_empty() {
                        push_header_buffers(Dir::ToServer, &tx.request_headers, out);
                        out.buffers
                            .push((Dir::ToServer, Buffer::HttpStart, start_buffer(tx)));
                        let body = body_of(&tx.request_headers, false);
                        if body == Body::None {
                            tx.request_done = true;
                            self.req.phase = Phase::Line;
                            self.log_completed(out);
                        } else {
                            self.req.phase = Phase::Body(body);
                        }
                        continue;
                    }
                    if line[0] == b' ' || line[0] == b'\t' {
                        if let Some(last) = tx.request_headers.last_mut() {
                            last.1.push(b' ');
                            last.1.extend_from_slice(line.trim_ascii());
                        }
                    } else if let Some(h) = parse_header(&line) {
                        tx.request_headers.push(h);
                    } else {
                        out.anomalies.push("REQUEST_HEADER_INVALID");
                    }
                }
                Phase::Body(body) => {
                    let Some(tx) = self.txs.back_mut() else {
                        return;
                    };
                    let inspect = out.inspect;
                    let mut kept = std::mem::take(&mut tx.request_body);
                    // No request length is written: its framing is not counted.
                    let done = read_body(body, &mut self.req.buf, &mut 0, &mut |d| {
                        // Bodies are kept only for the signature engine.
                        let room = if inspect {
                            MAX_BODY_KEPT.saturating_sub(kept.len())
                        } else {
                            0
                        };
                        kept.extend_from_slice(&d[..d.len().min(room)]);
                    });
                    tx.request_body = kept;
                    if !done {
                        return;
                    }
                    self.body_done(Dir::ToServer, out);
                }
            }
        }
    }

    fn parse_responses(&mut self, out: &mut Output) {
        loop {
            match &mut self.resp.phase {
                Phase::Stopped => return,
                Phase::Resync => {
                    let Some(at) = status_line_start(&self.resp.buf) else {
                        // Keep a tail that may be the start of a split "HTTP/".
                        let keep = self.resp.buf.len().min(4);
                        self.resp.buf.consume(self.resp.buf.len() - keep);
                        return;
                    };
                    self.resp.buf.consume(at);
                    self.resp.phase = Phase::Line;
                }
                Phase::Line => {
                    // An HTTP/0.9 request gets a bare body, no status line or headers.
                    if let Some(i) = self.txs.iter().position(|t| !t.response_done) {
                        if self.txs[i].http09 && !self.resp.buf.is_empty() {
                            self.resp_tx = Some(i);
                            self.resp.phase = Phase::Body(Body::UntilClose);
                            continue;
                        }
                    }
                    if let Some(nl) = memchr::memchr(b'\n', &self.resp.buf) {
                        let line = chomp(&self.resp.buf[..nl]);
                        if !line.is_empty() && !looks_like_response_line(line) {
                            // libhtp skips a stray line before a status line (one followed by
                            // an `H`, or of at most two bytes); any other line that is not a
                            // status line starts a bare body, as browsers read it (the line
                            // itself counts), which ends where the data at hand ends with a
                            // line.
                            let after = &self.resp.buf[nl + 1..];
                            if after.len() >= 2 && (after[0] == b'H' || line.len() <= 2) {
                                self.resp.buf.consume(nl + 1);
                            } else {
                                self.bare_response(out, Body::Lines);
                            }
                            continue;
                        }
                    }
                    let Some(line) = take_line(&mut self.resp.buf) else {
                        if self.resp.buf.len() > MAX_HEADER_BYTES {
                            self.resp.phase = Phase::Stopped;
                        }
                        return;
                    };
                    if line.is_empty() {
                        continue;
                    }
                    let idx = self.response_tx(out);
                    let parts = split_ws(&line);
                    let tx = &mut self.txs[idx];
                    tx.response_protocol = parts.first().map(|p| p.to_vec()).unwrap_or_default();
                    tx.status_text = parts.get(1).map(|p| p.to_vec()).unwrap_or_default();
                    tx.status = std::str::from_utf8(&tx.status_text)
                        .ok()
                        .and_then(|s| s.parse().ok());
                    tx.response_headers.clear();
                    out.buffers
                        .push((Dir::ToClient, Buffer::HttpStatCode, tx.status_text.clone()));
                    let msg: Vec<u8> = parts.get(2..).map(|p| p.join(&b' ')).unwrap_or_default();
                    out.buffers.push((Dir::ToClient, Buffer::HttpStatMsg, msg));
                    out.buffers
                        .push((Dir::ToClient, Buffer::HttpResponseLine, line.clone()));
                    self.resp_tx = Some(idx);
                    self.resp.phase = Phase::Headers;
                }
                Phase::Headers => {
                    let Some(line) = take_line(&mut self.resp.buf) else {
                        if self.resp.buf.len() > MAX_HEADER_BYTES {
                            self.resp.phase = Phase::Stopped;
                        }
                        return;
                    };
                    let Some(tx) = self.resp_tx.and_then(|i| self.txs.get_mut(i)) else {
                        return;
                    };
                    if !line.is_empty() {
                        if line[0] == b' ' || line[0] == b'\t' {
                            if let Some(last) = tx.response_headers.last_mut() {
                                last.1.push(b' ');
                                last.1.extend_from_slice(line.trim_ascii());
                            }
                        } else if let Some(h) = parse_header(&line) {
                            tx.response_headers.push(h);
                        }
                        continue;
                    }
                    push_header_buffers(Dir::ToClient, &tx.response_headers, out);
                    let status = tx.status.unwrap_or(0);
                    if (100..200).contains(&status) && status != 101 {
                        // Interim response: the real one follows.
                        self.resp.phase = Phase::Line;
                        continue;
                    }
                    let is_connect = tx.method.eq_ignore_ascii_case(b"CONNECT");
                    let switch = (is_connect && (200..300).contains(&status)) || status == 101;
                    let no_body = tx.method.eq_ignore_ascii_case(b"HEAD")
                        || status == 204
                        || status == 304
                        || switch;
                    let body = if no_body {
                        Body::None
                    } else {
                        body_of(&tx.response_headers, true)
                    };
                    if body == Body::None {
                        tx.response_done = true;
                        self.resp.phase = Phase::Line;
                        self.log_completed(out);
                        if switch {
                            self.switch(out);
                            return;
                        }
                    } else {
                        self.resp.phase = Phase::Body(body);
                    }
                }
                Phase::Body(body) => {
                    let Some(tx) = self.resp_tx.and_then(|i| self.txs.get_mut(i)) else {
                        return;
                    };
                    let inspect = out.inspect;
                    let mut kept = std::mem::take(&mut tx.response_body);
                    let mut len = tx.response_body_len;
                    let mut framing = 0;
                    let done = read_body(body, &mut self.resp.buf, &mut framing, &mut |d| {
                        len += d.len() as u64;
                        // Bodies are kept only for the signature engine.
                        let room = if inspect {
                            MAX_BODY_KEPT.saturating_sub(kept.len())
                        } else {
                            0
                        };
                        kept.extend_from_slice(&d[..d.len().min(room)]);
                    });
                    tx.response_body = kept;
                    tx.response_body_len = len + framing;
                    if !done {
                        return;
                    }
                    self.body_done(Dir::ToClient, out);
                }
            }
        }
    }

    /// The transaction the response starting now answers: the oldest one without a response,
    /// or a new one for a response nobody asked for.
    fn response_tx(&mut self, out: &mut Output) -> usize {
        if let Some(i) = self.txs.iter().position(|t| !t.response_done) {
            return i;
        }
        out.anomalies.push("UNABLE_TO_MATCH_RESPONSE_TO_REQUEST");
        let tx = Tx {
            id: self.next_id,
            request_done: true,
            unrequested: true,
            ..Tx::default()
        };
        self.next_id += 1;
        self.txs.push_back(tx);
        self.txs.len() - 1
    }

    /// A response without status line or headers: what is buffered is its body, and what
    /// `body` says of what follows.
    fn bare_response(&mut self, out: &mut Output, body: Body) {
        self.resp_tx = Some(self.response_tx(out));
        self.resp.phase = Phase::Body(body);
    }

    /// The body of `dir`'s current message is complete: its buffers, and the transaction
    /// logged once both sides are done.
    fn body_done(&mut self, dir: Dir, out: &mut Output) {
        let tx = match dir {
            Dir::ToServer => self.txs.back_mut(),
            Dir::ToClient => self.resp_tx.and_then(|i| self.txs.get_mut(i)),
        };
        if let Some(tx) = tx {
            let (body, bufs) = match dir {
                Dir::ToServer => {
                    tx.request_done = true;
                    (
                        &tx.request_body,
                        [Buffer::HttpRequestBody, Buffer::FileDataTs],
                    )
                }
                Dir::ToClient => {
                    tx.response_done = true;
                    // Rules see the body with its content coding undone, as libhtp gives it.
                    if let Some(plain) = coding::decoded(
                        Tx::header(&tx.response_headers, "content-encoding"),
                        &tx.response_body,
                        MAX_BODY_KEPT,
                    ) {
                        tx.response_body = plain;
                    }
                    (
                        &tx.response_body,
                        [Buffer::HttpResponseBody, Buffer::FileDataTc],
                    )
                }
            };
            for b in bufs {
                out.buffers.push((dir, b, body.clone()));
            }
        }
        match dir {
            Dir::ToServer => self.req.phase = Phase::Line,
            Dir::ToClient => self.resp.phase = Phase::Line,
        }
        self.log_completed(out);
    }

    fn switch(&mut self, out: &mut Output) {
        self.switched = true;
        self.req.phase = Phase::Stopped;
        self.resp.phase = Phase::Stopped;
        out.switch_protocol = Some(Leftover {
            to_server: self.req.buf.take(),
            to_client: self.resp.buf.take(),
        });
    }
}

/// Where the first line starting with `HTTP/` begins in `buf` (at its start, or after a
/// line feed).
/// Whether the data that came after a request line without a protocol shows the request has
/// headers (libhtp's probe: more than [`HTTP09_MAX_JUNK`] bytes, or anything but white
/// space). Only data already here counts, as in libhtp, which looks at the chunk at hand.
fn protocol_left_out(rest: &[u8]) -> bool {
    rest.len() > HTTP09_MAX_JUNK || rest.iter().any(|b| !b.is_ascii_whitespace() && *b != 0x0b)
}

/// Whether a response line looks like a status line, as libhtp decides it
/// (`htp_treat_response_line_as_body`): `HTTP` in any case after leading white space and
/// NULs. Anything else is read as a bare body, as browsers read it.
fn looks_like_response_line(line: &[u8]) -> bool {
    let start = line
        .iter()
        .position(|&b| !b.is_ascii_whitespace() && b != 0 && b != 0x0b)
        .unwrap_or(line.len());
    line.get(start..start + 4)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"HTTP"))
}

/// `line` without its line end (`\r\n` or `\n`).
fn chomp(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// libhtp's `HTTP09_MAX_JUNK_LEN`.
const HTTP09_MAX_JUNK: usize = 16;

fn status_line_start(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find(|&i| (i == 0 || buf[i - 1] == b'\n') && buf[i..].starts_with(b"HTTP/"))
}

impl AppParser for HttpParser {
    fn name(&self) -> &'static str {
        "http"
    }

    fn parse(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        if self.switched {
            return;
        }
        match dir {
            Dir::ToServer => {
                self.req.buf.extend_from_slice(data);
                self.parse_requests(out);
            }
            Dir::ToClient => {
                self.resp.buf.extend_from_slice(data);
                self.parse_responses(out);
            }
        }
        // The transaction a response is being read for, else the newest request.
        let current = self
            .resp_tx
            .and_then(|i| self.txs.get(i))
            .or_else(|| self.txs.back());
        if let (true, Some(tx)) = (out.inspect, current) {
            out.tx = Some(tx.id);
        }
    }

    fn tx_object(&self, id: u64) -> Option<serde_json::Value> {
        self.txs.iter().find(|t| t.id == id).map(Tx::eve)
    }

    fn gap(&mut self, dir: Dir, len: usize, out: &mut Output) {
        // Lost bytes inside a body are skipped and still count towards its length, as libhtp
        // does; anywhere else there is no way back in.
        let side = match dir {
            Dir::ToServer => &mut self.req,
            Dir::ToClient => &mut self.resp,
        };
        if let Phase::Body(body) = &mut side.phase {
            if side.buf.is_empty() {
                let (lost, done, beyond) = match skip_body(body, len as u64) {
                    Skipped::Within { done, len } => (len, done, false),
                    Skipped::Beyond { len } => (len, true, true),
                    Skipped::Lost => (0, false, true),
                };
                if dir == Dir::ToClient {
                    if let Some(tx) = self.resp_tx.and_then(|i| self.txs.get_mut(i)) {
                        tx.response_body_len += lost;
                    }
                }
                if done {
                    self.body_done(dir, out);
                }
                if !beyond {
                    return;
                }
            }
        }
        if dir == Dir::ToClient {
            // Responses carry on at the next status line, as libhtp does: one lost response
            // segment does not end the parsing of every later response on the connection. A
            // response whose headers were cut is logged as far as it got.
            if matches!(self.resp.phase, Phase::Headers | Phase::Body(_)) {
                if let Some(tx) = self.resp_tx.and_then(|i| self.txs.get_mut(i)) {
                    tx.response_done = true;
                }
                self.log_completed(out);
            }
            self.resp.buf.clear();
            self.resp.phase = Phase::Resync;
            return;
        }
        self.req.buf.clear();
        self.req.phase = Phase::Stopped;
    }

    fn finish(&mut self, out: &mut Output) {
        // A body read until the connection closed ends now, and so does a body the
        // connection ended inside of: rules see what arrived of it (a download cut short, an
        // exploit kit's page whose last segment was lost), as Suricata inspects at flow end.
        // Anything unanswered is logged as it stands.
        if matches!(self.req.phase, Phase::Body(_)) && !self.txs.is_empty() {
            self.body_done(Dir::ToServer, out);
        }
        // The connection closed inside a last line that is no status line, or inside a bare
        // body's line: libhtp reads what it holds as a bare body.
        if matches!(self.resp.phase, Phase::Line)
            && !self.resp.buf.is_empty()
            && !looks_like_response_line(chomp(&self.resp.buf))
        {
            self.bare_response(out, Body::UntilClose);
            self.parse_responses(out);
        }
        if matches!(self.resp.phase, Phase::Body(Body::Lines)) && !self.resp.buf.is_empty() {
            self.resp.phase = Phase::Body(Body::UntilClose);
            self.parse_responses(out);
        }
        if matches!(self.resp.phase, Phase::Body(_)) && self.resp_tx.is_some() {
            self.body_done(Dir::ToClient, out);
        }
        while let Some(tx) = self.txs.pop_front() {
            push_record(&tx, out);
        }
    }
}

#[cfg(test)]
mod tests;
