//! The sticky buffers of a request or response, as Suricata's HTTP keywords see them.

use super::*;

/// `http.start`: the request line and the headers as sent, ending with the empty line.
pub(super) fn start_buffer(tx: &Tx) -> Vec<u8> {
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

pub(super) fn push_request_buffers(tx: &Tx, out: &mut Output) {
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

pub(super) fn push_header_buffers(dir: Dir, headers: &[(Vec<u8>, Vec<u8>)], out: &mut Output) {
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
