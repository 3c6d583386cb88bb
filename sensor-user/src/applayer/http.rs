//! HTTP/1.x: a lenient request and response parser in the spirit of libhtp (what real
//! clients and servers send, not only what the RFCs allow), pairing pipelined requests with
//! responses into transactions, logged as EVE `http` records when both sides are complete.
//! A successful `CONNECT` (or `101 Switching Protocols`) hands the rest of the stream over to
//! protocol detection.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

use super::{AppParser, AppRecord, Buffer, Dir, Leftover, Output};

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

/// One request/response exchange.
#[derive(Debug, Default)]
struct Tx {
    id: u64,
    method: Vec<u8>,
    uri: Vec<u8>,
    protocol: Vec<u8>,
    request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    request_body: Vec<u8>,
    request_done: bool,
    status: Option<u16>,
    status_text: Vec<u8>,
    response_protocol: Vec<u8>,
    response_headers: Vec<(Vec<u8>, Vec<u8>)>,
    response_body_len: u64,
    response_body: Vec<u8>,
    response_done: bool,
}

impl Tx {
    fn header<'a>(headers: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// Host and port from an absolute URI, else from the Host header.
    fn host_port(&self) -> (Option<String>, Option<u16>) {
        let from_uri = self
            .uri
            .strip_prefix(b"http://")
            .or_else(|| self.uri.strip_prefix(b"https://"));
        let authority: Option<&[u8]> = match from_uri {
            Some(rest) => Some(rest.split(|&b| b == b'/').next().unwrap_or(rest)),
            None if self.method.eq_ignore_ascii_case(b"CONNECT") => Some(self.uri.as_slice()),
            None => Tx::header(&self.request_headers, "host"),
        };
        let Some(authority) = authority else {
            return (None, None);
        };
        let authority = String::from_utf8_lossy(authority).trim().to_string();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(']') || h.ends_with(']') => match p.parse::<u16>() {
                Ok(port) => (h.to_string(), Some(port)),
                Err(_) => (authority.clone(), None),
            },
            _ => (authority.clone(), None),
        };
        (Some(host.to_ascii_lowercase()), port)
    }

    fn eve(&self) -> Value {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut h = Map::new();
        let (host, port) = self.host_port();
        if let Some(host) = host {
            h.insert("hostname".into(), json!(host));
        }
        if let Some(port) = port {
            h.insert("http_port".into(), json!(port));
        }
        if !self.uri.is_empty() {
            h.insert("url".into(), json!(text(&self.uri)));
        }
        if let Some(ua) = Tx::header(&self.request_headers, "user-agent") {
            h.insert("http_user_agent".into(), json!(text(ua)));
        }
        if let Some(xff) = Tx::header(&self.request_headers, "x-forwarded-for") {
            h.insert("xff".into(), json!(text(xff)));
        }
        if let Some(ct) = Tx::header(&self.response_headers, "content-type") {
            let ct = text(ct);
            h.insert(
                "http_content_type".into(),
                json!(ct.split(';').next().unwrap_or("")),
            );
        }
        if let Some(r) = Tx::header(&self.request_headers, "referer") {
            h.insert("http_refer".into(), json!(text(r)));
        }
        if !self.method.is_empty() {
            h.insert("http_method".into(), json!(text(&self.method)));
        }
        if !self.protocol.is_empty() {
            h.insert("protocol".into(), json!(text(&self.protocol)));
        }
        match self.status {
            Some(s) if s > 0 => {
                h.insert("status".into(), json!(s));
            }
            _ if !self.status_text.is_empty() => {
                h.insert("status_string".into(), json!(text(&self.status_text)));
            }
            _ => {}
        }
        if let Some(loc) = Tx::header(&self.response_headers, "location") {
            h.insert("redirect".into(), json!(text(loc)));
        }
        h.insert("length".into(), json!(self.response_body_len));
        Value::Object(h)
    }
}

/// How the body of the message being read ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    Chunked(ChunkState),
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

#[derive(Debug)]
enum Phase {
    Line,
    Headers,
    Body(Body),
    /// The stream was handed over or cannot be parsed any more.
    Stopped,
}

#[derive(Debug)]
struct Side {
    buf: Vec<u8>,
    phase: Phase,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            buf: Vec::new(),
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
        while let Some(tx) = self.txs.front() {
            if !(tx.request_done && tx.response_done) {
                break;
            }
            let tx = self.txs.pop_front().expect("front exists");
            self.resp_tx = self.resp_tx.and_then(|i| i.checked_sub(1));
            push_record(&tx, out);
        }
    }
}

fn push_record(tx: &Tx, out: &mut Output) {
    out.records.push(AppRecord {
        event_type: "http",
        object: tx.eve(),
        dir: Dir::ToClient,
        tx_id: Some(tx.id),
    });
}

/// Takes one line (without its CR LF / LF) off the front of `buf`.
fn take_line(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let mut line: Vec<u8> = buf.drain(..=nl).collect();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(line)
}

fn split_ws(line: &[u8]) -> Vec<&[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_header(line: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii().to_vec();
    let value = line[colon + 1..].trim_ascii().to_vec();
    Some((name, value))
}

fn body_of(headers: &[(Vec<u8>, Vec<u8>)], is_response: bool) -> Body {
    if let Some(te) = Tx::header(headers, "transfer-encoding") {
        if String::from_utf8_lossy(te)
            .to_ascii_lowercase()
            .contains("chunked")
        {
            return Body::Chunked(ChunkState::Size);
        }
    }
    if let Some(cl) = Tx::header(headers, "content-length") {
        if let Ok(n) = String::from_utf8_lossy(cl).trim().parse::<u64>() {
            return if n == 0 { Body::None } else { Body::Length(n) };
        }
    }
    if is_response {
        Body::UntilClose
    } else {
        Body::None
    }
}

/// Consumes body bytes from `buf`; returns (bytes of entity data, whether the body ended).
fn read_body(body: &mut Body, buf: &mut Vec<u8>, sink: &mut dyn FnMut(&[u8])) -> bool {
    loop {
        match body {
            Body::None => return true,
            Body::UntilClose => {
                sink(buf);
                buf.clear();
                return false;
            }
            Body::Length(left) => {
                let n = (*left).min(buf.len() as u64) as usize;
                sink(&buf[..n]);
                buf.drain(..n);
                *left -= n as u64;
                return *left == 0;
            }
            Body::Chunked(state) => match *state {
                ChunkState::Size => {
                    let Some(line) = take_line(buf) else {
                        return false;
                    };
                    let hex: Vec<u8> = line
                        .iter()
                        .take_while(|b| b.is_ascii_hexdigit())
                        .copied()
                        .collect();
                    let size = u64::from_str_radix(&String::from_utf8_lossy(&hex), 16).unwrap_or(0);
                    *state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return false;
                    }
                    let n = left.min(buf.len() as u64) as usize;
                    sink(&buf[..n]);
                    buf.drain(..n);
                    *state = if left == n as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                }
                ChunkState::DataEnd => {
                    if take_line(buf).is_none() {
                        return false;
                    }
                    *state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = take_line(buf) else {
                        return false;
                    };
                    if line.is_empty() {
                        return true;
                    }
                }
            },
        }
    }
}

impl HttpParser {
    fn parse_requests(&mut self, out: &mut Output) {
        loop {
            match &mut self.req.phase {
                Phase::Stopped => return,
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
                    } else {
                        // HTTP/0.9: no protocol, no headers, no body.
                        out.anomalies.push("REQUEST_LINE_MISSING_PROTOCOL");
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
                    let done = read_body(body, &mut self.req.buf, &mut |d| {
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
                    tx.request_done = true;
                    out.buffers.push((
                        Dir::ToServer,
                        Buffer::HttpRequestBody,
                        tx.request_body.clone(),
                    ));
                    out.buffers
                        .push((Dir::ToServer, Buffer::FileDataTs, tx.request_body.clone()));
                    self.req.phase = Phase::Line;
                    self.log_completed(out);
                }
            }
        }
    }

    fn parse_responses(&mut self, out: &mut Output) {
        loop {
            match &mut self.resp.phase {
                Phase::Stopped => return,
                Phase::Line => {
                    // An HTTP/0.9 request gets a bare body, no status line or headers.
                    if let Some(i) = self.txs.iter().position(|t| !t.response_done) {
                        if self.txs[i].protocol.is_empty() && !self.resp.buf.is_empty() {
                            self.resp_tx = Some(i);
                            self.resp.phase = Phase::Body(Body::UntilClose);
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
                    let idx = match self.txs.iter().position(|t| !t.response_done) {
                        Some(i) => i,
                        None => {
                            // A response nobody asked for: keep it as its own transaction.
                            out.anomalies.push("UNABLE_TO_MATCH_RESPONSE_TO_REQUEST");
                            let tx = Tx {
                                id: self.next_id,
                                request_done: true,
                                ..Tx::default()
                            };
                            self.next_id += 1;
                            self.txs.push_back(tx);
                            self.txs.len() - 1
                        }
                    };
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
                    let done = read_body(body, &mut self.resp.buf, &mut |d| {
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
                    tx.response_body_len = len;
                    if !done {
                        return;
                    }
                    tx.response_done = true;
                    out.buffers.push((
                        Dir::ToClient,
                        Buffer::HttpResponseBody,
                        tx.response_body.clone(),
                    ));
                    out.buffers
                        .push((Dir::ToClient, Buffer::FileDataTc, tx.response_body.clone()));
                    self.resp.phase = Phase::Line;
                    self.log_completed(out);
                }
            }
        }
    }

    fn switch(&mut self, out: &mut Output) {
        self.switched = true;
        self.req.phase = Phase::Stopped;
        self.resp.phase = Phase::Stopped;
        out.switch_protocol = Some(Leftover {
            to_server: std::mem::take(&mut self.req.buf),
            to_client: std::mem::take(&mut self.resp.buf),
        });
    }
}

/// `http.start`: the request line and the headers as sent, ending with the empty line.
fn start_buffer(tx: &Tx) -> Vec<u8> {
    let mut b = tx.method.clone();
    b.push(b' ');
    b.extend_from_slice(&tx.uri);
    if !tx.protocol.is_empty() {
        b.push(b' ');
        b.extend_from_slice(&tx.protocol);
    }
    b.extend_from_slice(b"\r\n");
    for (n, v) in &tx.request_headers {
        b.extend_from_slice(n);
        b.extend_from_slice(b": ");
        b.extend_from_slice(v);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"\r\n");
    b
}

fn push_request_buffers(tx: &Tx, out: &mut Output) {
    out.buffers
        .push((Dir::ToServer, Buffer::HttpMethod, tx.method.clone()));
    out.buffers
        .push((Dir::ToServer, Buffer::HttpUriRaw, tx.uri.clone()));
    out.buffers
        .push((Dir::ToServer, Buffer::HttpUri, normalize_uri(&tx.uri)));
    out.buffers
        .push((Dir::ToServer, Buffer::HttpProtocol, tx.protocol.clone()));
    let mut line = tx.method.clone();
    line.push(b' ');
    line.extend_from_slice(&tx.uri);
    if !tx.protocol.is_empty() {
        line.push(b' ');
        line.extend_from_slice(&tx.protocol);
    }
    out.buffers
        .push((Dir::ToServer, Buffer::HttpRequestLine, line));
}

fn push_header_buffers(dir: Dir, headers: &[(Vec<u8>, Vec<u8>)], out: &mut Output) {
    let mut all = Vec::new();
    let mut raw = Vec::new();
    for (name, value) in headers {
        raw.extend_from_slice(name);
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
        let lname = name.to_ascii_lowercase();
        // Suricata's normalised header buffer leaves cookies to http.cookie.
        if lname != b"cookie" && lname != b"set-cookie" {
            all.extend_from_slice(name);
            all.extend_from_slice(b": ");
            all.extend_from_slice(value);
            all.extend_from_slice(b"\r\n");
        }
        let named: Option<Buffer> = match (dir, lname.as_slice()) {
            (Dir::ToServer, b"host") => Some(Buffer::HttpHostRaw),
            (Dir::ToServer, b"user-agent") => Some(Buffer::HttpUserAgent),
            (Dir::ToServer, b"cookie") | (Dir::ToClient, b"set-cookie") => Some(Buffer::HttpCookie),
            (Dir::ToServer, b"referer") => Some(Buffer::HttpReferer),
            (_, b"content-type") => Some(Buffer::HttpContentType),
            (_, b"content-length") => Some(Buffer::HttpContentLen),
            (Dir::ToServer, b"accept") => Some(Buffer::HttpAccept),
            (Dir::ToServer, b"accept-encoding") => Some(Buffer::HttpAcceptEnc),
            (Dir::ToServer, b"accept-language") => Some(Buffer::HttpAcceptLang),
            (_, b"connection") => Some(Buffer::HttpConnection),
            (Dir::ToClient, b"server") => Some(Buffer::HttpServer),
            (Dir::ToClient, b"location") => Some(Buffer::HttpLocation),
            _ => None,
        };
        if let Some(n) = named {
            out.buffers.push((dir, n, value.clone()));
            if n == Buffer::HttpHostRaw {
                let host = value.split(|&b| b == b':').next().unwrap_or(value);
                out.buffers
                    .push((dir, Buffer::HttpHost, host.to_ascii_lowercase()));
            }
        }
    }
    let mut names = b"\r\n".to_vec();
    for (name, _) in headers {
        names.extend_from_slice(name);
        names.extend_from_slice(b"\r\n");
    }
    names.extend_from_slice(b"\r\n");
    out.buffers.push((dir, Buffer::HttpHeaderNames, names));
    out.buffers.push((dir, Buffer::HttpHeader, all));
    out.buffers.push((dir, Buffer::HttpHeaderRaw, raw));
}

/// Percent-decoding (`%41` → `A`); malformed escapes stay as they are.
pub fn percent_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'%' && i + 2 < data.len() {
            let hex = std::str::from_utf8(&data[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// Percent-decoding of unreserved characters and removal of `./` and `../` segments, as the
/// normalised `http.uri` buffer has them.
pub fn normalize_uri(uri: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(uri.len());
    let mut i = 0;
    while i < uri.len() {
        if uri[i] == b'%' && i + 2 < uri.len() {
            let hex = std::str::from_utf8(&uri[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                decoded.push(b);
                i += 3;
                continue;
            }
        }
        decoded.push(uri[i]);
        i += 1;
    }
    let (path, query) = match decoded.iter().position(|&b| b == b'?') {
        Some(q) => (decoded[..q].to_vec(), decoded[q..].to_vec()),
        None => (decoded, Vec::new()),
    };
    let mut segments: Vec<&[u8]> = Vec::new();
    for seg in path.split(|&b| b == b'/') {
        match seg {
            b"." => {}
            b".." => {
                if segments.len() > 1 {
                    segments.pop();
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = segments.join(&b'/');
    if path.ends_with(b"/.") || path.ends_with(b"/..") {
        out.push(b'/');
    }
    out.extend_from_slice(&query);
    out
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
            out.tx = Some((tx.id, tx.eve()));
        }
    }

    fn gap(&mut self, dir: Dir, _len: usize, _out: &mut Output) {
        // A gap inside a body could be skipped; inside headers there is no way back in.
        let side = match dir {
            Dir::ToServer => &mut self.req,
            Dir::ToClient => &mut self.resp,
        };
        side.buf.clear();
        side.phase = Phase::Stopped;
    }

    fn finish(&mut self, out: &mut Output) {
        // A body read until the connection closed ends now; anything unanswered is logged
        // as it stands, as Suricata does at flow end.
        if let (Phase::Body(Body::UntilClose), Some(i)) = (&self.resp.phase, self.resp_tx) {
            if let Some(tx) = self.txs.get_mut(i) {
                tx.response_done = true;
            }
        }
        while let Some(tx) = self.txs.pop_front() {
            push_record(&tx, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(parts: &[(Dir, &[u8])]) -> Output {
        let mut p = HttpParser::new();
        let mut out = Output::new(true);
        for (dir, data) in parts {
            p.parse(*dir, data, &mut out);
        }
        p.finish(&mut out);
        out
    }

    fn buffer(out: &Output, name: Buffer) -> Vec<&[u8]> {
        out.buffers
            .iter()
            .filter(|(_, n, _)| *n == name)
            .map(|(_, _, v)| v.as_slice())
            .collect()
    }

    #[test]
    fn request_and_response_make_one_record() {
        let out = run(&[
            (Dir::ToServer, b"GET /index.html?a=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nUser-Agent: curl/8\r\nReferer: http://r/\r\n\r\n"),
            (Dir::ToClient, b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello"),
        ]);
        assert_eq!(out.records.len(), 1);
        let h = &out.records[0].object;
        assert_eq!(h["hostname"], "example.com");
        assert_eq!(h["http_port"], 8080);
        assert_eq!(h["url"], "/index.html?a=1");
        assert_eq!(h["http_user_agent"], "curl/8");
        assert_eq!(h["http_content_type"], "text/html");
        assert_eq!(h["http_refer"], "http://r/");
        assert_eq!(h["http_method"], "GET");
        assert_eq!(h["protocol"], "HTTP/1.1");
        assert_eq!(h["status"], 200);
        assert_eq!(h["length"], 5);
        assert_eq!(out.records[0].tx_id, Some(0));
        assert_eq!(
            buffer(&out, Buffer::HttpHost),
            vec![b"example.com".as_slice()]
        );
        assert_eq!(
            buffer(&out, Buffer::HttpResponseBody),
            vec![b"hello".as_slice()]
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_records() {
        let req = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
        let resp = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let whole = run(&[(Dir::ToServer, req), (Dir::ToClient, resp)]);
        let mut p = HttpParser::new();
        let mut out = Output::new(true);
        for b in req {
            p.parse(Dir::ToServer, &[*b], &mut out);
        }
        for b in resp {
            p.parse(Dir::ToClient, &[*b], &mut out);
        }
        p.finish(&mut out);
        assert_eq!(whole.records, out.records);
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.records[0].object["status"], 201);
        assert_eq!(out.records[0].object["length"], 2);
        assert_eq!(out.records[1].object["url"], "/2");
        assert_eq!(out.records[1].object["status"], 404);
        assert_eq!(out.records[1].tx_id, Some(1));
        assert_eq!(
            buffer(&out, Buffer::HttpRequestBody),
            vec![b"abc".as_slice()]
        );
    }

    #[test]
    fn connect_hands_the_stream_over() {
        let mut p = HttpParser::new();
        let mut out = Output::default();
        p.parse(
            Dir::ToServer,
            b"CONNECT host.example:443 HTTP/1.1\r\nHost: host.example:443\r\n\r\n\x16\x03\x01",
            &mut out,
        );
        p.parse(
            Dir::ToClient,
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
            &mut out,
        );
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].object["http_method"], "CONNECT");
        assert_eq!(out.records[0].object["hostname"], "host.example");
        let left = out.switch_protocol.expect("switch");
        assert_eq!(left.to_server, b"\x16\x03\x01");
        assert_eq!(left.to_client, b"\x16\x03\x03");
    }

    #[test]
    fn odd_requests_are_logged_with_anomalies() {
        let out = run(&[
            (Dir::ToServer, b"GET /x HTTP/1.0\r\n\r\n"),
            (Dir::ToClient, b"HTTP/1.0 2XX ok\r\n\r\nbody"),
        ]);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].object["status_string"], "2XX");
        assert_eq!(out.records[0].object["length"], 4, "body read until close");
        // HTTP/0.9: no protocol, whitespace lines after it are not requests, bare body back.
        let out = run(&[
            (Dir::ToServer, b"GET /\n \n \n\n"),
            (Dir::ToClient, b"<html>hi</html>"),
        ]);
        assert_eq!(out.anomalies, vec!["REQUEST_LINE_MISSING_PROTOCOL"]);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].object["length"], 15);
        assert!(out.records[0].object.get("protocol").is_none());
    }

    #[test]
    fn unanswered_requests_are_logged_at_the_end() {
        let out = run(&[(
            Dir::ToServer,
            b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        )]);
        assert_eq!(out.records.len(), 2);
        assert!(out.records[0].object.get("status").is_none());
    }

    #[test]
    fn uri_normalisation() {
        assert_eq!(normalize_uri(b"/a/./b/../c%41?x=%41"), b"/a/cA?x=A");
        assert_eq!(normalize_uri(b"/%zz"), b"/%zz");
        assert_eq!(normalize_uri(b"/%4"), b"/%4");
    }

    #[test]
    fn probes() {
        assert!(probe(b"GET / HTTP/1.1\r\n"));
        assert!(probe(b"HTTP/1.1 200 OK"));
        assert!(probe(b"GE"));
        assert!(!probe(b"\x16\x03\x01"));
        assert!(!probe(b"SSH-2.0-x"));
    }

    #[test]
    fn junk_never_panics() {
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut p = HttpParser::new();
            let mut out = Output::default();
            let mut data = b"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n".to_vec();
            for _ in 0..4 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % data.len();
                data[at] = (seed >> 13) as u8;
            }
            p.parse(Dir::ToServer, &data, &mut out);
            p.parse(Dir::ToClient, &data, &mut out);
            p.finish(&mut out);
        }
    }
}
