//! One HTTP transaction (a request and its response) and its `http` EVE record.

use super::*;

/// One request/response exchange.
#[derive(Debug, Default)]
pub(super) struct Tx {
    pub(super) id: u64,
    pub(super) method: Vec<u8>,
    pub(super) uri: Vec<u8>,
    pub(super) protocol: Vec<u8>,
    pub(super) request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) request_body: Vec<u8>,
    pub(super) request_done: bool,
    pub(super) status: Option<u16>,
    pub(super) status_text: Vec<u8>,
    pub(super) response_protocol: Vec<u8>,
    pub(super) response_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) response_body_len: u64,
    pub(super) response_body: Vec<u8>,
    pub(super) response_done: bool,
    /// Made for a response no request was seen for: its record carries libhtp's placeholder
    /// URI (and port 0), as Suricata writes it, so SOC searches for it find Precinct's too.
    pub(super) unrequested: bool,
    /// An HTTP/0.9 request (no protocol, no headers): its answer is a bare body.
    pub(super) http09: bool,
}

/// The URI libhtp (and so Suricata) gives a transaction made for a response without a
/// request.
pub(super) const URI_NOT_SEEN: &str = "/libhtp::request_uri_not_seen";

impl Tx {
    pub(super) fn header<'a>(headers: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// Host and port from an absolute URI, else from the Host header.
    pub(super) fn host_port(&self) -> (Option<String>, Option<u16>) {
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

    pub(super) fn eve(&self) -> Value {
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
        } else if self.unrequested {
            h.insert("http_port".into(), json!(0));
            h.insert("url".into(), json!(URI_NOT_SEEN));
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

pub(super) fn push_record(tx: &Tx, out: &mut Output) {
    out.records.push(AppRecord {
        event_type: "http",
        object: tx.eve(),
        dir: Dir::ToClient,
        tx_id: Some(tx.id),
    });
}
