//! The HTTP parser on requests and responses built here.

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
    // The body as sent: `2\r\n` `ok` `\r\n` `0\r\n`, not the blank line ending the trailer.
    assert_eq!(out.records[0].object["length"], 10);
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
    assert!(
        out.anomalies.is_empty(),
        "libhtp raises no event for HTTP/0.9"
    );
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].object["length"], 15);
    assert!(out.records[0].object.get("protocol").is_none());
}

#[test]
fn a_request_line_without_protocol_before_headers_keeps_its_headers() {
    // The protocol left out, headers sent: one request with its Host, not HTTP/0.9 followed
    // by a request named `Host:`.
    let out = run(&[
        (
            Dir::ToServer,
            b"OPTIONS HTTP/1.1\r\nHost: example.org\r\n\r\n",
        ),
        (
            Dir::ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
    ]);
    assert_eq!(out.records.len(), 1, "{:?}", out.records);
    let r = &out.records[0].object;
    assert_eq!(r["http_method"], "OPTIONS");
    assert_eq!(r["url"], "HTTP/1.1", "the lone word is the URI");
    assert_eq!(r["hostname"], "example.org");
    assert_eq!(r["status"], 200);
    assert_eq!(
        out.anomalies,
        ["REQUEST_LINE_MISSING_PROTOCOL"],
        "libhtp warns of the missing protocol"
    );
    // The same line with nothing but a line end after it in its data is HTTP/0.9.
    let out = run(&[
        (Dir::ToServer, b"GET /index.html\r\n"),
        (Dir::ToClient, b"<html></html>"),
    ]);
    assert_eq!(out.records.len(), 1);
    assert!(out.anomalies.is_empty(), "HTTP/0.9 is no anomaly");
    assert_eq!(out.records[0].object["url"], "/index.html");
    assert_eq!(
        out.records[0].object["length"], 13,
        "a bare body answers HTTP/0.9"
    );
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

#[test]
fn a_gap_inside_a_body_is_skipped_and_counted() {
    let mut p = HttpParser::new();
    let mut out = Output::new(true);
    p.parse(
        Dir::ToServer,
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        &mut out,
    );
    p.parse(
        Dir::ToClient,
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        &mut out,
    );
    p.gap(Dir::ToClient, 80, &mut out);
    p.parse(
        Dir::ToClient,
        b"0123456789HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    let recs: Vec<_> = out
        .records
        .iter()
        .map(|r| {
            (
                r.object["url"].clone(),
                r.object["status"].clone(),
                r.object["length"].clone(),
            )
        })
        .collect();
    assert_eq!(
        recs,
        vec![
            (
                serde_json::json!("/a"),
                serde_json::json!(200),
                serde_json::json!(100)
            ),
            (
                serde_json::json!("/b"),
                serde_json::json!(404),
                serde_json::json!(0)
            ),
        ],
        "the gap counts towards the length and the next response is still paired"
    );
    // A gap that runs past the body's end ends the body with it (its length as declared);
    // parsing carries on at the next status line after it.
    let mut q = HttpParser::new();
    let mut out = Output::new(false);
    q.parse(
        Dir::ToServer,
        b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        &mut out,
    );
    q.parse(
        Dir::ToClient,
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234",
        &mut out,
    );
    q.gap(Dir::ToClient, 50, &mut out);
    q.parse(
        Dir::ToClient,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    assert_eq!(out.records.len(), 2, "{:?}", out.records);
    assert_eq!(out.records[0].object["length"], 10);
    assert_eq!(out.records[0].object["status"], 200);
    assert_eq!(out.records[1].object["status"], 404);
}

#[test]
fn responses_carry_on_at_the_next_status_line_after_a_gap() {
    // Three requests; bytes lost inside the second response's headers. The second is logged
    // as far as it got, the third is paired with the response after the gap, whose status
    // line comes after the tail of the lost one.
    let mut p = HttpParser::new();
    let mut out = Output::new(false);
    p.parse(
        Dir::ToServer,
        b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n",
        &mut out,
    );
    p.parse(
        Dir::ToClient,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 301 Moved\r\nLoca",
        &mut out,
    );
    p.gap(Dir::ToClient, 40, &mut out);
    p.parse(
        Dir::ToClient,
        b"ength: 0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    p.finish(&mut out);
    let got: Vec<_> = out
        .records
        .iter()
        .map(|r| (r.object["url"].clone(), r.object["status"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (serde_json::json!("/1"), serde_json::json!(200)),
            (serde_json::json!("/2"), serde_json::json!(301)),
            (serde_json::json!("/3"), serde_json::json!(404)),
        ]
    );
    // "HTTP/" split over two segments after a gap is still found.
    let mut q = HttpParser::new();
    let mut out = Output::new(false);
    q.parse(Dir::ToServer, b"GET /1 HTTP/1.1\r\n\r\n", &mut out);
    q.gap(Dir::ToClient, 10, &mut out);
    q.parse(Dir::ToClient, b"junk\r\nHT", &mut out);
    q.parse(Dir::ToClient, b"TP/1.1 204 No Content\r\n\r\n", &mut out);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].object["status"], 204);
}

#[test]
fn a_response_without_a_request_is_logged_with_libhtps_placeholder_uri() {
    // One request, two responses: the second answers nothing seen.
    let out = run(&[
        (Dir::ToServer, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
        (
            Dir::ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nno",
        ),
    ]);
    assert_eq!(out.records.len(), 2, "{:?}", out.records);
    let paired = &out.records[0].object;
    assert_eq!(paired["url"], "/a");
    assert_eq!(
        paired["http_port"],
        serde_json::Value::Null,
        "no port in the Host header"
    );
    let lone = &out.records[1].object;
    assert_eq!(lone["url"], "/libhtp::request_uri_not_seen");
    assert_eq!(lone["http_port"], 0);
    assert_eq!(lone["status"], 404);
    assert_eq!(lone["http_content_type"], "text/html");
    assert_eq!(lone["length"], 2);
    assert_eq!(lone.get("http_method"), None);
    assert_eq!(lone.get("hostname"), None);
    assert!(out
        .anomalies
        .contains(&"UNABLE_TO_MATCH_RESPONSE_TO_REQUEST"));
}

#[test]
fn a_response_without_status_line_is_a_bare_body_read_until_close() {
    // The server answers with data that is no status line, in two segments and without a
    // line end: libhtp reads all of it as the body, and the record has no status.
    let out = run(&[
        (Dir::ToServer, b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n"),
        (Dir::ToClient, b"0123456789abcdef"),
        (Dir::ToClient, b"0123456789abcdef"),
    ]);
    assert_eq!(out.records.len(), 1, "{:?}", out.records);
    let r = &out.records[0].object;
    assert_eq!(r["url"], "/x");
    assert_eq!(r["length"], 32);
    assert!(r.get("status").is_none(), "{r:?}");
    // Another protocol's reply line (a SIP reply, an SSH banner) is no HTTP status line
    // either: it and what follows are the body, line ends included.
    let reply: &[u8] = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP a\r\n\r\n";
    let out = run(&[
        (
            Dir::ToServer,
            b"OPTIONS sip:probe@a HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        (Dir::ToClient, reply),
    ]);
    assert_eq!(out.records.len(), 1);
    let r = &out.records[0].object;
    assert_eq!(r["length"], reply.len());
    assert!(r.get("status").is_none(), "{r:?}");
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    // A bare body ends where the data at hand ends with a line: what the server sends next
    // answers no request (libhtp's reading of a banner-then-error reply).
    let out = run(&[
        (Dir::ToServer, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        (Dir::ToClient, b"SSH-2.0-OpenSSH_9.6\r\n"),
        (Dir::ToClient, b"Invalid SSH identification string."),
        (Dir::ToClient, b"\r\n"),
    ]);
    assert_eq!(out.records.len(), 2, "{:?}", out.records);
    assert_eq!(out.records[0].object["url"], "/");
    assert_eq!(out.records[0].object["length"], 21);
    assert_eq!(
        out.records[1].object["url"],
        "/libhtp::request_uri_not_seen"
    );
    assert_eq!(out.records[1].object["length"], 36);
    assert_eq!(out.anomalies, ["UNABLE_TO_MATCH_RESPONSE_TO_REQUEST"]);
}

#[test]
fn a_stray_line_before_the_status_line_is_skipped() {
    // Junk followed by an `H`: libhtp drops the line and reads the status line after it.
    let out = run(&[
        (Dir::ToServer, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        (
            Dir::ToClient,
            b"junk\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
    ]);
    assert_eq!(out.records.len(), 1);
    let r = &out.records[0].object;
    assert_eq!(r["status"], 200);
    assert_eq!(r["length"], 2);
    // A status line in lower case with leading blanks is still a status line.
    assert!(looks_like_response_line(b"  http/1.0 200 OK"));
    assert!(looks_like_response_line(b"\0HTTP"));
    assert!(!looks_like_response_line(b"HTT"));
    assert!(!looks_like_response_line(b"SSH-2.0-OpenSSH_9.2"));
}

#[test]
fn a_chunked_body_is_as_long_as_sent_and_inspected_without_its_framing() {
    // Two chunks, an extension on one size line, and a trailer header: `length` counts the
    // size lines and the line ends after each chunk (libhtp's message length), not the
    // trailer; rules see the data alone.
    let body: &[u8] = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n";
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    resp.extend_from_slice(body);
    let out = run(&[
        (Dir::ToServer, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        (Dir::ToClient, &resp),
    ]);
    assert_eq!(out.records.len(), 1);
    let sent = body.len() - b"X-Sum: 1\r\n\r\n".len();
    assert_eq!(out.records[0].object["length"], sent);
    assert_eq!(
        buffer(&out, Buffer::HttpResponseBody),
        vec![b"hello world".as_slice()]
    );
}
