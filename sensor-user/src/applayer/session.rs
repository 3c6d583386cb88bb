//! A flow's application layer: detecting the protocol from the first bytes of each direction
//! (and turning a flow around that was picked up with its server speaking), then handing
//! every chunk to the protocol's parser, and starting over when a parser hands the stream on
//! (HTTP `CONNECT`, `Upgrade`).

use sensor_common::{flow::FlowKey, parse::ipproto};

use super::{dns, http, ssh, starttls, tls, AppParser, Chunk, Dir, Output};

/// Bytes of each direction inspected before giving up on detection.
const PROBE_LIMIT: usize = 4096;

enum State {
    /// Not detected yet: the first bytes of each direction, kept for probing.
    Probing([Vec<u8>; 2]),
    Active(Box<dyn AppParser>),
    Failed,
    None,
}

/// The application layer of one flow.
pub struct Session {
    state: State,
    /// The detected protocol (`failed` once detection gave up), as EVE `app_proto` writes it.
    proto: Option<&'static str>,
    /// The protocol that handed the connection over to `proto` (`app_proto_orig`).
    orig: Option<&'static str>,
    /// Signatures are evaluated on this flow: parsers must produce buffers.
    inspect: bool,
    /// The protocol was found in one direction before the other sent anything: the other's
    /// first bytes (up to [`OTHER_SIDE_PROBE`]), still to be looked at by detection.
    other_side: Option<(Dir, Vec<u8>)>,
}

/// Bytes of the second direction detection looks at once the first gave the protocol away:
/// the longest opening the probes know (`PROPPATCH `, `220 (`…) fits, so a direction that
/// does not look like any protocol in this many bytes never will.
const OTHER_SIDE_PROBE: usize = 16;

impl Session {
    /// The application layer of a new flow; `probe` is false for flows that carry none (not
    /// TCP or UDP, or a later fragment).
    pub fn new(probe: bool, inspect: bool) -> Session {
        Session {
            state: if probe {
                State::Probing([Vec::new(), Vec::new()])
            } else {
                State::None
            },
            proto: None,
            orig: None,
            inspect,
            other_side: None,
        }
    }

    /// The detected protocol.
    pub fn proto(&self) -> Option<&'static str> {
        self.proto
    }

    /// The protocol the flow started with, when another took over (`app_proto_orig`).
    pub fn orig(&self) -> Option<&'static str> {
        self.orig
    }

    /// `true` when signatures are evaluated on the flow.
    pub fn inspected(&self) -> bool {
        self.inspect
    }

    /// Hands `chunk` of `dir` to the parser (detecting the protocol first), appending what it
    /// produced to `outputs`. Detection may find that the side taken for the client is the
    /// server: it then flips `client_dir` (the flow's client direction, as the kernel keeps it).
    pub fn feed(
        &mut self,
        key: &FlowKey,
        client_dir: &mut u8,
        dir: Dir,
        chunk: Chunk,
        outputs: &mut Vec<(Dir, Output)>,
    ) {
        let idx = match dir {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        };
        match (&mut self.state, chunk) {
            (State::Active(parser), Chunk::Data(data)) => {
                let mut out = Output::new(self.inspect);
                out.proto = Some(parser.name());
                if let Some((side, seen)) = &mut self.other_side {
                    if *side == dir {
                        seen.extend_from_slice(&data[..data.len().min(OTHER_SIDE_PROBE)]);
                        let ports = (key.port_a, key.port_b);
                        if let Some(event) =
                            other_side_event(parser.name(), key.proto, dir, seen, ports)
                        {
                            out.anomalies.extend(event);
                            self.other_side = None;
                        }
                    }
                }
                parser.parse(dir, &data, &mut out);
                let switch = out.switch_protocol.take();
                outputs.push((dir, out));
                if let Some(left) = switch {
                    if parser.hands_over_name() {
                        self.orig = self.proto.take();
                    }
                    self.state = State::Probing([Vec::new(), Vec::new()]);
                    for (d, bytes) in [
                        (Dir::ToServer, left.to_server),
                        (Dir::ToClient, left.to_client),
                    ] {
                        if !bytes.is_empty() {
                            self.feed(key, client_dir, d, Chunk::Data(bytes), outputs);
                        }
                    }
                }
            }
            (State::Active(parser), Chunk::Gap(len)) => {
                let mut out = Output::new(self.inspect);
                out.proto = Some(parser.name());
                parser.gap(dir, usize::try_from(len).unwrap_or(usize::MAX), &mut out);
                outputs.push((dir, out));
            }
            (State::Probing(seen), Chunk::Data(data)) => {
                if dir == Dir::ToServer
                    && seen[0].is_empty()
                    && seen[1].is_empty()
                    && data.starts_with(b"HTTP/1.")
                {
                    // Picked up mid-stream with the server speaking first: the side we took
                    // for the client is the server. Turn the flow around, as Suricata does.
                    *client_dir ^= 1;
                    return self.feed(key, client_dir, Dir::ToClient, Chunk::Data(data), outputs);
                }
                let first = seen[0].is_empty() && seen[1].is_empty();
                let dns_port = key.port_a == 53 || key.port_b == 53;
                if first && key.proto == ipproto::UDP && dns_port {
                    if let Some(real) = dns::probe_dir(&data, false) {
                        if real != dir {
                            // The first datagram seen is a response: its sender is the server.
                            *client_dir ^= 1;
                            return self.feed(key, client_dir, real, Chunk::Data(data), outputs);
                        }
                    }
                }
                let before = seen[idx].len();
                seen[idx].extend_from_slice(&data);
                // Every probe but DNS over TCP (which reads a whole message) decides on the
                // first OTHER_SIDE_PROBE bytes: once they were probed, more bytes cannot change
                // the answer, and probing each further segment of a long undetected stream
                // (one-byte segments of an interactive session) would only cost time.
                let worth = before < OTHER_SIDE_PROBE || dns_port;
                let found = worth
                    .then(|| probe(key.proto, dir, &seen[idx], (key.port_a, key.port_b)))
                    .flatten();
                if let Some(parser) = found {
                    let buffered = std::mem::take(seen);
                    self.proto.get_or_insert(parser.name());
                    // Detection goes on in the other direction (Suricata detects each
                    // direction on its own): what it finds there is judged when it speaks.
                    let other = match dir {
                        Dir::ToServer => Dir::ToClient,
                        Dir::ToClient => Dir::ToServer,
                    };
                    // Over TCP only, as in Suricata (a UDP flow's directions are not judged
                    // apart), and only for the protocols whose both openings the probes know:
                    // the line protocols' are told by one side alone.
                    let judged = key.proto == ipproto::TCP
                        && matches!(parser.name(), "http" | "tls" | "ssh" | "dns");
                    self.other_side = judged.then(|| (other, Vec::new()));
                    self.state = State::Active(parser);
                    // The client's bytes first, whichever side gave the protocol away: when
                    // the server's reply did (a request line the probe does not know), the
                    // request came before it, and a parser that pairs replies with requests
                    // must see them in that order, as libhtp does.
                    let order = [(0, Dir::ToServer), (1, Dir::ToClient)];
                    for (i, d) in order {
                        if !buffered[i].is_empty() {
                            self.feed(
                                key,
                                client_dir,
                                d,
                                Chunk::Data(buffered[i].clone()),
                                outputs,
                            );
                        }
                    }
                } else if seen[idx].len() > PROBE_LIMIT
                    || (!seen[0].is_empty() && !seen[1].is_empty() && key.proto == ipproto::UDP)
                {
                    self.state = State::Failed;
                    self.proto.get_or_insert("failed");
                }
            }
            (State::Probing(_), Chunk::Gap(_)) => {
                self.state = State::Failed;
                self.proto.get_or_insert("failed");
            }
            (State::Failed | State::None, _) => {}
        }
    }

    /// The EVE object of the active parser's transaction `id` ([`AppParser::tx_object`]).
    pub fn tx_object(&self, id: u64) -> Option<serde_json::Value> {
        match &self.state {
            State::Active(parser) => parser.tx_object(id),
            _ => None,
        }
    }

    /// The flow ends: the parser writes what it still holds.
    pub fn finish(&mut self, outputs: &mut Vec<(Dir, Output)>) {
        if let State::Active(parser) = &mut self.state {
            let mut out = Output::new(self.inspect);
            out.proto = Some(parser.name());
            parser.finish(&mut out);
            outputs.push((Dir::ToServer, out));
        }
    }
}

/// What detection says of the second direction of a flow whose protocol `name` the first one
/// gave away, from its first bytes `seen`: `Some` once it has decided (with the event
/// Suricata raises, if any), `None` while it needs more bytes. The same protocol is no event;
/// another is `APPLAYER_MISMATCH_PROTOCOL_BOTH_DIRECTIONS`; none at all, once enough bytes
/// are in, `APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION` (the parser still gets the data).
fn other_side_event(
    name: &str,
    proto: u8,
    dir: Dir,
    seen: &[u8],
    ports: (u16, u16),
) -> Option<Option<&'static str>> {
    match probe(proto, dir, seen, ports) {
        Some(p) if p.name() == name => Some(None),
        Some(_) => Some(Some("APPLAYER_MISMATCH_PROTOCOL_BOTH_DIRECTIONS")),
        None if seen.len() >= OTHER_SIDE_PROBE => {
            Some(Some("APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION"))
        }
        None => None,
    }
}

/// The parser for the protocol `data` (the first bytes of direction `dir`) looks like.
fn probe(proto: u8, dir: Dir, data: &[u8], ports: (u16, u16)) -> Option<Box<dyn AppParser>> {
    let tcp = proto == ipproto::TCP;
    let dns_port = ports.0 == 53 || ports.1 == 53;
    if tcp {
        if http::probe(data) {
            return Some(Box::new(http::HttpParser::new()));
        }
        if tls::probe(data) {
            return Some(Box::new(tls::TlsParser::new()));
        }
        if ssh::probe(data) {
            return Some(Box::new(ssh::SshParser::new()));
        }
        if let Some(kind) = starttls::probe(dir, data) {
            return Some(Box::new(starttls::StartTls::new(kind)));
        }
        if dns_port && dns::probe(data, true) {
            return Some(Box::new(dns::DnsParser::new(true)));
        }
    } else if proto == ipproto::UDP && dns_port && dns::probe(data, false) {
        return Some(Box::new(dns::DnsParser::new(false)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::parse::FAMILY_IPV4;

    fn key(proto: u8, port_a: u16, port_b: u16) -> FlowKey {
        FlowKey {
            proto,
            family: FAMILY_IPV4,
            port_a,
            port_b,
            ..Default::default()
        }
    }

    fn feed(
        s: &mut Session,
        k: &FlowKey,
        client: &mut u8,
        dir: Dir,
        b: &[u8],
    ) -> Vec<(Dir, Output)> {
        let mut out = Vec::new();
        s.feed(k, client, dir, Chunk::Data(b.to_vec()), &mut out);
        out
    }

    #[test]
    fn probes_other_than_dns_decide_on_the_first_other_side_probe_bytes() {
        // What `Session::feed` relies on to stop probing a direction: past OTHER_SIDE_PROBE
        // bytes, the answer of every probe but DNS over TCP is that of the first ones.
        let openings: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\n",
            b"PROPPATCH /x HTTP/1.1",
            b"HTTP/1.1 200 OK\r\n",
            b"SSH-2.0-OpenSSH_9.2",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00",
            b"EHLO mail.example.org",
            b"USER anonymous\r\n",
            b"220 (vsFTPd 3.0.3)\r\n",
            b"* OK IMAP4rev1 ready",
            b"aaaaaaaaaaaaaaaaaaaaaaaa",
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ];
        let tails: [&[u8]; 3] = [b"", b"GET / HTTP/1.1", b"\x16\x03\x01SSH-"];
        for o in openings {
            let mut head = o.to_vec();
            head.resize(OTHER_SIDE_PROBE, b'x');
            for dir in [Dir::ToServer, Dir::ToClient] {
                let name = |d: &[u8]| probe(ipproto::TCP, dir, d, (40000, 8080)).map(|p| p.name());
                let want = name(&head);
                for t in tails {
                    let mut longer = head.clone();
                    longer.extend_from_slice(t);
                    assert_eq!(name(&longer), want, "{:?} + {:?} ({dir:?})", head, t);
                }
            }
        }
    }

    #[test]
    fn http_is_detected_and_parsed_from_the_first_bytes() {
        let k = key(ipproto::TCP, 40000, 80);
        let mut s = Session::new(true, false);
        let mut client = 0u8;
        let out = feed(
            &mut s,
            &k,
            &mut client,
            Dir::ToServer,
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert_eq!(s.proto(), Some("http"));
        assert_eq!(out.len(), 1, "the buffered bytes went to the parser");
        let out = feed(
            &mut s,
            &k,
            &mut client,
            Dir::ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(out[0].1.records[0].event_type, "http");
        assert_eq!(client, 0);
    }

    #[test]
    fn a_reply_that_gives_the_protocol_away_is_paired_with_the_request_before_it() {
        // A request line the probe does not take for HTTP (no space before the protocol),
        // then the server's HTTP reply: one transaction with both halves.
        let k = key(ipproto::TCP, 40000, 80);
        let mut s = Session::new(true, false);
        let mut client = 0u8;
        let quiet = feed(
            &mut s,
            &k,
            &mut client,
            Dir::ToServer,
            b"GETHTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert!(
            quiet.is_empty(),
            "not detected from the request: {:?}",
            s.proto()
        );
        let out = feed(
            &mut s,
            &k,
            &mut client,
            Dir::ToClient,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(s.proto(), Some("http"));
        assert_eq!(client, 0, "the flow keeps its client");
        let http: Vec<_> = out
            .iter()
            .flat_map(|(_, o)| &o.records)
            .filter(|r| r.event_type == "http")
            .collect();
        assert_eq!(http.len(), 1, "{http:?}");
        assert_eq!(http[0].object["http_method"], "GETHTTP/1.1");
        assert_eq!(http[0].object["hostname"], "a");
        assert_eq!(http[0].object["status"], 400);
        // The line's protocol is missing and headers follow (libhtp's warning); the reply
        // is paired, so there is no UNABLE_TO_MATCH_RESPONSE_TO_REQUEST.
        let anomalies: Vec<_> = out.iter().flat_map(|(_, o)| &o.anomalies).collect();
        // And detection, which found HTTP in the reply, finds nothing in the request.
        assert_eq!(
            anomalies,
            [
                &"APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION",
                &"REQUEST_LINE_MISSING_PROTOCOL"
            ]
        );
    }

    fn anomalies(out: &[(Dir, Output)]) -> Vec<&'static str> {
        out.iter().flat_map(|(_, o)| o.anomalies.clone()).collect()
    }

    #[test]
    fn the_second_direction_is_judged_by_detection_as_in_suricata() {
        let k = key(ipproto::TCP, 40000, 80);
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        // An HTTP request answered by data of no protocol: one direction only, said once, and
        // the parser still gets the reply.
        let mut s = Session::new(true, false);
        let mut c = 0u8;
        feed(&mut s, &k, &mut c, Dir::ToServer, get);
        let out = feed(
            &mut s,
            &k,
            &mut c,
            Dir::ToClient,
            b"Invalid request, bye\r\n",
        );
        assert_eq!(
            anomalies(&out),
            ["APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION"]
        );
        let out = feed(
            &mut s,
            &k,
            &mut c,
            Dir::ToClient,
            b"more data, no protocol\r\n",
        );
        assert!(
            !anomalies(&out).contains(&"APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION"),
            "judged once"
        );
        // Answered by HTTP: nothing to say.
        let mut s = Session::new(true, false);
        feed(&mut s, &k, &mut c, Dir::ToServer, get);
        let out = feed(
            &mut s,
            &k,
            &mut c,
            Dir::ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(anomalies(&out).is_empty(), "{:?}", anomalies(&out));
        // A short reply is judged when enough of it is in.
        let mut s = Session::new(true, false);
        feed(&mut s, &k, &mut c, Dir::ToServer, get);
        assert!(anomalies(&feed(&mut s, &k, &mut c, Dir::ToClient, b"0123")).is_empty());
        assert_eq!(
            anomalies(&feed(&mut s, &k, &mut c, Dir::ToClient, b"456789abcdef")),
            ["APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION"]
        );
        // A TLS ClientHello answered by an HTTP error page: two protocols.
        let k = key(ipproto::TCP, 40000, 443);
        let mut s = Session::new(true, false);
        feed(
            &mut s,
            &k,
            &mut c,
            Dir::ToServer,
            b"\x16\x03\x01\x00\x04\x01\x00\x00\x00",
        );
        let out = feed(
            &mut s,
            &k,
            &mut c,
            Dir::ToClient,
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
        );
        assert_eq!(
            anomalies(&out),
            ["APPLAYER_MISMATCH_PROTOCOL_BOTH_DIRECTIONS"]
        );
        // UDP: the directions are not judged apart.
        let k = key(ipproto::UDP, 40000, 53);
        let mut s = Session::new(true, false);
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01";
        feed(&mut s, &k, &mut c, Dir::ToServer, query);
        assert_eq!(s.proto(), Some("dns"));
        let out = feed(
            &mut s,
            &k,
            &mut c,
            Dir::ToClient,
            b"not a dns message at all",
        );
        assert!(!anomalies(&out).contains(&"APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION"));
    }

    #[test]
    fn a_starttls_upgrade_hands_the_flow_to_tls() {
        let k = key(ipproto::TCP, 40000, 25);
        let mut s = Session::new(true, false);
        let mut client = 0u8;
        feed(&mut s, &k, &mut client, Dir::ToClient, b"220 mx ESMTP\r\n");
        assert_eq!(s.proto(), None, "an SMTP greeting is an FTP one too");
        feed(&mut s, &k, &mut client, Dir::ToServer, b"EHLO c\r\n");
        assert_eq!(s.proto(), Some("smtp"), "told by the client's EHLO");
        feed(&mut s, &k, &mut client, Dir::ToClient, b"250 STARTTLS\r\n");
        feed(&mut s, &k, &mut client, Dir::ToServer, b"STARTTLS\r\n");
        feed(&mut s, &k, &mut client, Dir::ToClient, b"220 go ahead\r\n");
        assert_eq!(s.proto(), None, "detection starts over");
        assert_eq!(s.orig(), Some("smtp"));
        feed(
            &mut s,
            &k,
            &mut client,
            Dir::ToServer,
            b"\x16\x03\x01\x00\x04\x01\x00\x00\x00",
        );
        assert_eq!(s.proto(), Some("tls"));
        assert_eq!(s.orig(), Some("smtp"));
        assert_eq!(client, 0);
    }

    #[test]
    fn a_server_speaking_first_turns_the_flow_around() {
        let k = key(ipproto::TCP, 40000, 80);
        let mut s = Session::new(true, false);
        let mut client = 0u8;
        feed(
            &mut s,
            &k,
            &mut client,
            Dir::ToServer,
            b"HTTP/1.1 200 OK\r\n\r\n",
        );
        assert_eq!(client, 1, "the side that sent a response is the server");
    }

    #[test]
    fn unknown_bytes_fail_detection_within_the_probe_limit() {
        let k = key(ipproto::TCP, 40000, 9999);
        let mut s = Session::new(true, false);
        let mut client = 0u8;
        feed(&mut s, &k, &mut client, Dir::ToServer, &[0xaa; PROBE_LIMIT]);
        assert_eq!(s.proto(), None, "still probing at the limit");
        feed(&mut s, &k, &mut client, Dir::ToServer, &[0xaa; 1]);
        assert_eq!(s.proto(), Some("failed"));
        // A gap while probing fails too.
        let mut g = Session::new(true, false);
        let mut out = Vec::new();
        g.feed(&k, &mut client, Dir::ToServer, Chunk::Gap(10), &mut out);
        assert_eq!(g.proto(), Some("failed"));
        // A flow without an application layer never probes.
        let mut n = Session::new(false, false);
        feed(
            &mut n,
            &k,
            &mut client,
            Dir::ToServer,
            b"GET / HTTP/1.1\r\n\r\n",
        );
        assert_eq!(n.proto(), None);
    }
}
