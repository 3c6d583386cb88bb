//! Seed inputs for the fuzz targets, built from the test crate's packet and protocol builders
//! (and hand-written rules). Stream targets take the schedule format of `fuzz/src/lib.rs`;
//! `replay_pipeline` takes length-prefixed frames (see its target).

use std::net::Ipv6Addr;

use tests::{
    mixed::{client_hello, dns_answer, dns_query, server_flight, ssh_kexinit, Rng},
    packets::{eth, ext_fragment, ext_generic, icmp, ipv4, ipv6, tcp, udp, v4_frame, V4},
    session::{udp_frame, TcpSession},
};

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [198, 51, 100, 20];

const HTTP_REQUEST: &[u8] = b"GET /login?user=a%20b HTTP/1.1\r\nHost: vote.example.gov\r\n\
User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
const HTTP_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\
Content-Length: 11\r\n\r\nhello world";
const HTTP_POST: &[u8] = b"POST /upload HTTP/1.1\r\nHost: results.example.gov\r\n\
Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
const HTTP_CHUNKED: &[u8] = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n\
3\r\nabc\r\n0\r\n\r\n";
const SSH_CLIENT_BANNER: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
const SSH_SERVER_BANNER: &[u8] = b"SSH-2.0-OpenSSH_8.4p1\r\n";

/// Rules with the common option families: content modifiers, sticky buffers, PCRE,
/// byte tests, flowbits, thresholds, addresses and ports.
const RULES_BASIC: &str = r#"alert http $EXTERNAL_NET any -> $HOME_NET any (msg:"login"; flow:established,to_server; http.method; content:"POST"; http.uri; content:"/login"; nocase; fast_pattern; classtype:web-application-attack; sid:1000001; rev:2;)
alert tcp any any -> any [80,443,8000:8080] (msg:"raw"; content:"|47 45 54|"; depth:3; content:"admin"; distance:0; within:20; pcre:"/user=\w+/i"; sid:1000002;)
alert dns any any -> any any (msg:"dns"; dns.query; content:"example"; endswith; sid:1000003;)
"#;
const RULES_STATEFUL: &str = r#"# a comment, then a multi-line rule
alert tls any any -> any any (msg:"sni"; tls.sni; content:"vote"; flowbits:set,tls.seen; \
    flowbits:noalert; sid:2000001;)
alert ssh any any -> any any (msg:"ssh"; ssh.software; content:"OpenSSH"; threshold:type limit, track by_src, count 1, seconds 60; sid:2000002;)
alert udp !192.168.0.0/16 any -> any 53 (msg:"bytes"; byte_test:2,>,512,2; byte_jump:2,0,relative; isdataat:!10,relative; dsize:<300; sid:2000003;)
drop icmp any any <> any any (msg:"ttl"; itype:8; ttl:<5; sid:2000004; metadata:created_at 2024_01_01;)
"#;

/// Prefix for a stream seed: `variant`, then (to-client, length) entries.
fn schedule(variant: bool, entries: &[(bool, usize)]) -> Vec<u8> {
    let mut s = vec![entries.len() as u8 | if variant { 0x10 } else { 0 }];
    for &(to_client, len) in entries {
        let v = len as u16 | if to_client { 0x8000 } else { 0 };
        s.extend_from_slice(&v.to_be_bytes());
    }
    s
}

/// A stream seed: each message whole, in order, in its direction.
fn stream(variant: bool, messages: &[(bool, &[u8])]) -> Vec<u8> {
    let entries: Vec<(bool, usize)> = messages.iter().map(|(d, m)| (*d, m.len())).collect();
    let mut s = schedule(variant, &entries);
    for (_, m) in messages {
        s.extend_from_slice(m);
    }
    s
}

fn length_prefixed(msg: &[u8]) -> Vec<u8> {
    let mut m = (msg.len() as u16).to_be_bytes().to_vec();
    m.extend_from_slice(msg);
    m
}

/// `replay_pipeline` input: flags, then each frame 1 ms after the previous.
fn frames_input(midstream: bool, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut s = vec![u8::from(midstream)];
    for f in frames {
        s.extend_from_slice(&(f.len().min(0x0fff) as u16).to_be_bytes());
        s.extend_from_slice(&f[..f.len().min(0x0fff)]);
    }
    s
}

/// A TCP conversation: handshake, each message acknowledged by the peer, close.
fn session(sport: u16, messages: &[(bool, &[u8])]) -> Vec<Vec<u8>> {
    let mut s = TcpSession::new(CLIENT, 40000 + sport, SERVER, sport);
    let mut frames = s.handshake();
    for &(to_client, m) in messages {
        if to_client {
            frames.extend(s.server_data(m, 1400));
            frames.push(s.client_ack());
        } else {
            frames.extend(s.client_data(m, 1400));
            frames.push(s.server_ack());
        }
    }
    frames.extend(s.close());
    frames
}

fn tls_messages(cert_der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(7);
    let hello = client_hello("vote.example.gov", &mut rng);
    let flight = server_flight(cert_der, &mut rng);
    (hello, flight)
}

fn ssh_messages() -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(9);
    let mut client = SSH_CLIENT_BANNER.to_vec();
    client.extend(ssh_kexinit(&mut rng));
    let mut server = SSH_SERVER_BANNER.to_vec();
    server.extend(ssh_kexinit(&mut rng));
    (client, server)
}

/// A classic pcap file (microsecond timestamps, Ethernet).
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for (i, frame) in frames.iter().enumerate() {
        for v in [
            1_795_000_000u32,
            i as u32 * 20,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(frame);
    }
    f
}

fn pcapng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    let mut b = kind.to_le_bytes().to_vec();
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// A pcapng file: one section, one Ethernet interface with nanosecond timestamps.
fn pcapng(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]); // version 1.0
    shb.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
    let mut f = pcapng_block(0x0a0d_0d0a, &shb);
    let mut idb = vec![1, 0, 0, 0]; // Ethernet, reserved
    idb.extend_from_slice(&65535u32.to_le_bytes());
    idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]); // if_tsresol = 10^-9
    idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    f.extend(pcapng_block(1, &idb));
    for (i, frame) in frames.iter().enumerate() {
        let ts = 1_795_000_000_000_000_000u64 + i as u64 * 1_000;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        epb.resize(20 + frame.len().div_ceil(4) * 4, 0);
        f.extend(pcapng_block(6, &epb));
    }
    f
}

/// Every target's seeds as (target, file name, bytes). `cert_der` is the certificate the
/// TLS seeds carry.
pub fn all(cert_der: &[u8]) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let query = dns_query(0x1234, "vote.example.gov");
    let answer = dns_answer(0x1234, "vote.example.gov", [198, 51, 100, 20]);
    let (hello, flight) = tls_messages(cert_der);
    let (ssh_client, ssh_server) = ssh_messages();
    let http = session(
        80,
        &[
            (false, HTTP_REQUEST),
            (true, HTTP_RESPONSE),
            (false, HTTP_POST),
        ],
    );
    let dns_frames = vec![
        udp_frame(CLIENT, 53000, SERVER, 53, &query),
        udp_frame(SERVER, 53, CLIENT, 53000, &answer),
    ];
    let v6: [Ipv6Addr; 2] = [
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
    ];
    let v6_exts = ipv6(
        v6[0],
        v6[1],
        &[(0, ext_generic()), (44, ext_fragment(0, true))],
        17,
        &udp(5353, 53, &query),
    );
    let mut fragment = V4::new(CLIENT, SERVER, 6);
    fragment.frag = 0x2000;
    fragment.options = vec![0x94, 4, 0, 0]; // router alert
    vec![
        (
            "header_parser",
            "seed-tcp-syn",
            v4_frame(CLIENT, SERVER, 6, &tcp(40000, 443, 0x02, &[])),
        ),
        ("header_parser", "seed-udp-dns", dns_frames[0].clone()),
        (
            "header_parser",
            "seed-qinq-icmp",
            eth(
                &[100, 200],
                0x0800,
                &ipv4(&V4::new(CLIENT, SERVER, 1), &icmp(8, 0, 7, 1, b"ping")),
            ),
        ),
        (
            "header_parser",
            "seed-ipv4-options-fragment",
            eth(&[], 0x0800, &ipv4(&fragment, &tcp(40000, 80, 0x18, b"GET"))),
        ),
        (
            "header_parser",
            "seed-ipv6-extensions",
            eth(&[], 0x86dd, &v6_exts),
        ),
        (
            "dns",
            "seed-tcp",
            stream(
                false,
                &[
                    (false, &length_prefixed(&query)),
                    (true, &length_prefixed(&answer)),
                ],
            ),
        ),
        (
            "dns",
            "seed-udp",
            stream(true, &[(false, &query), (true, &answer)]),
        ),
        (
            "http",
            "seed-get",
            stream(false, &[(false, HTTP_REQUEST), (true, HTTP_RESPONSE)]),
        ),
        (
            "http",
            "seed-chunked",
            stream(false, &[(false, HTTP_POST), (true, HTTP_CHUNKED)]),
        ),
        (
            "tls",
            "seed-handshake",
            stream(false, &[(false, &hello), (true, &flight)]),
        ),
        (
            "tls",
            "seed-handshake-ja4",
            stream(true, &[(false, &hello), (true, &flight)]),
        ),
        (
            "ssh",
            "seed-kexinit",
            stream(false, &[(false, &ssh_client), (true, &ssh_server)]),
        ),
        (
            "ssh",
            "seed-kexinit-hassh",
            stream(true, &[(false, &ssh_client), (true, &ssh_server)]),
        ),
        (
            "pcap_reader",
            "seed-http-dns",
            pcap(&[http.clone(), dns_frames.clone()].concat()),
        ),
        ("pcap_reader", "seed-pcapng-dns", pcapng(&dns_frames)),
        ("rule_parser", "seed-basic", RULES_BASIC.as_bytes().to_vec()),
        (
            "rule_parser",
            "seed-stateful",
            RULES_STATEFUL.as_bytes().to_vec(),
        ),
        ("replay_pipeline", "seed-http", frames_input(false, &http)),
        (
            "replay_pipeline",
            "seed-dns",
            frames_input(false, &dns_frames),
        ),
        (
            "replay_pipeline",
            "seed-tls",
            frames_input(false, &session(443, &[(false, &hello), (true, &flight)])),
        ),
        (
            "replay_pipeline",
            "seed-ssh-midstream",
            frames_input(
                true,
                &session(22, &[(false, &ssh_client), (true, &ssh_server)])[1..],
            ),
        ),
    ]
}
