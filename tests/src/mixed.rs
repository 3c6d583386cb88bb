//! Synthetic mixed traffic for replay tests and benchmarks: HTTP exchanges with bodies, DNS
//! queries and answers, TLS 1.2 handshakes (SNI, certificate) followed by encrypted records,
//! and SSH banners and key-exchange messages followed by encrypted packets — all built by
//! this code, written as one capture.

use std::path::Path;

use crate::session::{udp_frame, write_pcap, TcpSession};

/// A tiny deterministic generator (xorshift), so captures are the same on every run.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

fn u16be(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

fn u24be(v: usize) -> [u8; 3] {
    let b = (v as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

fn tls_record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3];
    r.extend_from_slice(&u16be(body.len()));
    r.extend_from_slice(body);
    r
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![kind];
    h.extend_from_slice(&u24be(body.len()));
    h.extend_from_slice(body);
    h
}

fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut e = kind.to_be_bytes().to_vec();
    e.extend_from_slice(&u16be(body.len()));
    e.extend_from_slice(body);
    e
}

/// A TLS 1.2 ClientHello record with SNI `host` and ALPN h2, http/1.1.
pub fn client_hello(host: &str, rng: &mut Rng) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&rng.bytes(32));
    b.push(0);
    let suites: [u16; 6] = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0x009c, 0x002f];
    b.extend_from_slice(&u16be(suites.len() * 2));
    for s in suites {
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]);
    let mut sni = u16be(host.len() + 3).to_vec();
    sni.push(0);
    sni.extend_from_slice(&u16be(host.len()));
    sni.extend_from_slice(host.as_bytes());
    let mut exts = extension(0x0000, &sni);
    exts.extend(extension(0x000a, &[0, 4, 0, 0x17, 0, 0x18]));
    exts.extend(extension(0x000b, &[1, 0]));
    exts.extend(extension(0x000d, &[0, 4, 4, 3, 8, 4]));
    exts.extend(extension(0x0010, b"\x00\x0c\x02h2\x08http/1.1"));
    b.extend_from_slice(&u16be(exts.len()));
    b.extend_from_slice(&exts);
    tls_record(22, &handshake(1, &b))
}

/// ServerHello, Certificate (with `cert_der`) and ServerHelloDone in one record.
pub fn server_flight(cert_der: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&rng.bytes(32));
    hello.push(0);
    hello.extend_from_slice(&0xc02fu16.to_be_bytes());
    hello.push(0);
    hello.extend_from_slice(&[0, 0]);
    let mut certs = u24be(cert_der.len()).to_vec();
    certs.extend_from_slice(cert_der);
    let mut cert_msg = u24be(certs.len()).to_vec();
    cert_msg.extend_from_slice(&certs);
    let mut body = handshake(2, &hello);
    body.extend(handshake(11, &cert_msg));
    body.extend(handshake(14, &[]));
    tls_record(22, &body)
}

/// An SSH binary packet carrying KEXINIT with typical algorithm lists.
pub fn ssh_kexinit(rng: &mut Rng) -> Vec<u8> {
    let mut payload = vec![20];
    payload.extend_from_slice(&rng.bytes(16));
    for list in [
        "curve25519-sha256,ecdh-sha2-nistp256",
        "ssh-ed25519,rsa-sha2-512",
        "chacha20-poly1305@openssh.com,aes128-ctr",
        "chacha20-poly1305@openssh.com,aes128-ctr",
        "umac-64-etm@openssh.com,hmac-sha2-256",
        "umac-64-etm@openssh.com,hmac-sha2-256",
        "none,zlib@openssh.com",
        "none,zlib@openssh.com",
        "",
        "",
    ] {
        payload.extend_from_slice(&(list.len() as u32).to_be_bytes());
        payload.extend_from_slice(list.as_bytes());
    }
    payload.push(0);
    payload.extend_from_slice(&[0, 0, 0, 0]);
    // Padding brings the packet to a multiple of 8 with at least 4 bytes of it.
    let pad = 8 - (payload.len() + 5) % 8 + 4;
    let mut p = ((payload.len() + pad + 1) as u32).to_be_bytes().to_vec();
    p.push(pad as u8);
    p.extend_from_slice(&payload);
    p.extend_from_slice(&vec![0u8; pad]);
    p
}

/// A DNS query (A record) for `name` with id `id`.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// The answer to [`dns_query`]: one A record.
pub fn dns_answer(id: u16, name: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut m = dns_query(id, name);
    m[2] = 0x81;
    m[3] = 0x80;
    m[7] = 1;
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    m.extend_from_slice(&addr);
    m
}

/// Options of the capture.
pub struct MixOptions {
    /// Stop adding conversations once the frames add up to this many bytes.
    pub target_bytes: usize,
    /// DER certificate the TLS servers send.
    pub cert_der: Vec<u8>,
}

/// Builds the frames of a mixed capture.
pub fn frames(opts: &MixOptions) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0x5eed);
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    let mut round = 0u32;
    while total < opts.target_bytes {
        let client = [10, 1, (round >> 8) as u8, round as u8];
        let port = 20_000 + (round % 40_000) as u16;
        let mut add = |fs: Vec<Vec<u8>>, out: &mut Vec<Vec<u8>>| {
            for f in fs {
                total += f.len();
                out.push(f);
            }
        };
        // HTTP with a body of 8-48 KiB.
        let mut s = TcpSession::new(client, port, [198, 51, 100, 80], 80);
        let mut fs = s.handshake();
        // Some requests come from scripts: traffic that public rule sets have opinions on.
        let agent = if round % 10 == 3 {
            "curl/8.5.0"
        } else {
            "Mozilla/5.0 (X11; Linux x86_64)"
        };
        let req = format!(
            "GET /ballot/status?precinct={round} HTTP/1.1\r\nHost: results.example.gov\r\nUser-Agent: {agent}\r\nAccept: */*\r\n\r\n"
        );
        fs.extend(s.client_data(req.as_bytes(), 1448));
        let body_len = 8192 + (rng.next_u64() % 40_960) as usize;
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {body_len}\r\n\r\n"
        )
        .into_bytes();
        resp.extend(std::iter::repeat_n(b'a', body_len));
        fs.extend(s.server_data(&resp, 1448));
        fs.extend(s.close());
        add(fs, &mut out);
        // Two DNS lookups.
        for i in 0..2u16 {
            let id = (round as u16).wrapping_mul(2).wrapping_add(i);
            let name = if round % 5 == 2 && i == 1 {
                format!("tunnel{round}.ngrok.io")
            } else {
                format!("host{round}-{i}.county.example")
            };
            add(
                vec![
                    udp_frame(
                        client,
                        40_000 + i,
                        [198, 51, 100, 53],
                        53,
                        &dns_query(id, &name),
                    ),
                    udp_frame(
                        [198, 51, 100, 53],
                        53,
                        client,
                        40_000 + i,
                        &dns_answer(id, &name, [203, 0, 113, (round % 250) as u8]),
                    ),
                ],
                &mut out,
            );
        }
        // TLS: handshake, then 16 KiB of application data each way.
        let mut t = TcpSession::new(client, port.wrapping_add(1), [198, 51, 100, 43], 443);
        let mut fs = t.handshake();
        fs.extend(t.client_data(&client_hello("vote.example.gov", &mut rng), 1448));
        fs.extend(t.server_data(&server_flight(&opts.cert_der, &mut rng), 1448));
        let mut app = tls_record(20, &[1]);
        app.extend(tls_record(23, &rng.bytes(1200)));
        fs.extend(t.client_data(&app, 1448));
        for _ in 0..4 {
            fs.extend(t.server_data(&tls_record(23, &rng.bytes(4000)), 1448));
        }
        fs.extend(t.close());
        add(fs, &mut out);
        // SSH every fourth round: banners, KEXINIT both ways, encrypted traffic.
        if round.is_multiple_of(4) {
            let mut h = TcpSession::new(client, port.wrapping_add(2), [198, 51, 100, 22], 22);
            let mut fs = h.handshake();
            fs.extend(h.server_data(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", 1448));
            fs.extend(h.client_data(b"SSH-2.0-OpenSSH_9.6\r\n", 1448));
            fs.extend(h.client_data(&ssh_kexinit(&mut rng), 1448));
            fs.extend(h.server_data(&ssh_kexinit(&mut rng), 1448));
            fs.extend(h.client_data(&rng.bytes(2000), 1448));
            fs.extend(h.server_data(&rng.bytes(6000), 1448));
            fs.extend(h.close());
            add(fs, &mut out);
        }
        round += 1;
    }
    out
}

/// Writes a mixed capture of about `opts.target_bytes` to `path`; returns the frame count.
pub fn write(path: &Path, opts: &MixOptions) -> std::io::Result<usize> {
    let fs = frames(opts);
    write_pcap(path, &fs, 1_795_000_000, 20)?;
    Ok(fs.len())
}

/// A throwaway self-signed certificate from `openssl` (DER), for the TLS servers.
pub fn openssl_cert(dir: &Path) -> std::io::Result<Vec<u8>> {
    let key = dir.join("bench.key");
    let der = dir.join("bench.der");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
        ])
        .args([
            "-subj",
            "/C=US/O=County Elections/CN=vote.example.gov",
            "-outform",
            "DER",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&der)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other("openssl req failed"));
    }
    std::fs::read(der)
}
