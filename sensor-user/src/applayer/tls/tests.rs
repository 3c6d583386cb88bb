//! The TLS parser on handshakes built here and on published fingerprint examples.

use super::eve::*;
use super::*;

/// A self-signed P-256 certificate made for these tests with
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1
/// -subj "/C=US/ST=California/O=Precinct Test, Inc./CN=test.example.com"
/// -addext "subjectAltName=DNS:test.example.com,DNS:www.example.com"`.
/// `openssl x509 -noout -fingerprint -sha1 -serial -dates` gives:
/// SHA1 FB:D3:74:43:7C:63:FB:B7:09:B4:17:46:9A:2F:53:8D:E7:CD:9F:48,
/// serial 4D2FF208653F770229A8D0EA2DFA19958A053C89,
/// notBefore Nov 22 01:15:21 2026 GMT, notAfter Nov 23 01:15:21 2026 GMT.
const CERT_HEX: &str = concat!(
    "3082023b308201e0a00302010202144d2ff208653f770229a8d0ea2dfa19958a053c89300a06082a8648ce3d04030230",
    "5b310b30090603550406130255533113301106035504080c0a43616c69666f726e6961311c301a060355040a0c135072",
    "6563696e637420546573742c20496e632e3119301706035504030c10746573742e6578616d706c652e636f6d301e170d",
    "3236313132323031313532315a170d3236313132333031313532315a305b310b30090603550406130255533113301106",
    "035504080c0a43616c69666f726e6961311c301a060355040a0c1350726563696e637420546573742c20496e632e3119",
    "301706035504030c10746573742e6578616d706c652e636f6d3059301306072a8648ce3d020106082a8648ce3d030107",
    "034200044420f062a79d459f72053eb74f3c8c22091bb47096d6240ae13a300bd6a66d70237f042f8dcc0001de94776b",
    "fc1e893edc3ac052eca6234e5469b65e7cad978ba38181307f301d0603551d0e041604147264f2ae1c8a296b2a23d7ae",
    "62e7251a77f8f8ad301f0603551d230418301680147264f2ae1c8a296b2a23d7ae62e7251a77f8f8ad300f0603551d13",
    "0101ff040530030101ff302c0603551d11042530238210746573742e6578616d706c652e636f6d820f7777772e657861",
    "6d706c652e636f6d300a06082a8648ce3d04030203490030460221009573f18fc3f37e6ed1c01ba0f77513f179e816d9",
    "8b1d852dc2c5c032be75fec5022100e74f4557262e5b51d41b6cf45ea049967f704f3b0fe0df031b1adcf94a3b93af",
);

fn cert_der() -> Vec<u8> {
    (0..CERT_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&CERT_HEX[i..i + 2], 16).expect("test constant is hex"))
        .collect()
}

// ---- builders ----

fn u16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

fn with_len16(body: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(body.len())
        .expect("test data fits")
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(body);
    v
}

fn with_len8(body: &[u8]) -> Vec<u8> {
    let mut v = vec![u8::try_from(body.len()).expect("test data fits")];
    v.extend_from_slice(body);
    v
}

fn with_len24(body: &[u8]) -> Vec<u8> {
    let n = u32::try_from(body.len())
        .expect("test data fits")
        .to_be_bytes();
    let mut v = n[1..].to_vec();
    v.extend_from_slice(body);
    v
}

fn record(ct: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ct];
    v.extend_from_slice(&version.to_be_bytes());
    v.extend(with_len16(body));
    v
}

fn handshake(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ];
    v.extend(with_len24(body));
    v
}

fn ext(typ: u16, data: &[u8]) -> (u16, Vec<u8>) {
    (typ, data.to_vec())
}

fn ext_sni_data(name: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend(with_len16(name.as_bytes()));
    with_len16(&entry)
}

fn ext_alpn_data(protos: &[&[u8]]) -> Vec<u8> {
    let list: Vec<u8> = protos.iter().flat_map(|p| with_len8(p)).collect();
    with_len16(&list)
}

fn ext_list16(v: &[u16]) -> Vec<u8> {
    with_len16(&u16s(v))
}

fn ext_versions_client(v: &[u16]) -> Vec<u8> {
    with_len8(&u16s(v))
}

fn exts_block(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (t, d) in exts {
        b.extend_from_slice(&t.to_be_bytes());
        b.extend(with_len16(d));
    }
    with_len16(&b)
}

fn client_hello(
    version: u16,
    session_id: &[u8],
    ciphers: &[u16],
    exts: &[(u16, Vec<u8>)],
) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x11; 32]);
    b.extend(with_len8(session_id));
    b.extend(with_len16(&u16s(ciphers)));
    b.extend(with_len8(&[0]));
    b.extend(exts_block(exts));
    handshake(HS_CLIENT_HELLO, &b)
}

fn server_hello(version: u16, session_id: &[u8], cipher: u16, exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x22; 32]);
    b.extend(with_len8(session_id));
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    b.extend(exts_block(exts));
    handshake(HS_SERVER_HELLO, &b)
}

fn certificate(chain: &[&[u8]]) -> Vec<u8> {
    let certs: Vec<u8> = chain.iter().flat_map(|c| with_len24(c)).collect();
    handshake(HS_CERTIFICATE, &with_len24(&certs))
}

/// A Chrome ClientHello as published with its fingerprints by browserleaks
/// (ja4_ro order): ja4 t13d1516h2_8daaf6152771_d8a2da3f94cd, ja3
/// 98487aa16281980e7d1120d399efb6a4. GREASE values are added where Chrome puts them.
fn chrome_client_hello() -> Vec<u8> {
    let ciphers = [
        0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    let exts = vec![
        ext(0x0a0a, &[]),
        ext(0x002d, &[1, 1]),
        ext(0x0033, &with_len16(&[0x6a, 0x6a, 0, 1, 0])),
        ext(EXT_ALPN, &ext_alpn_data(&[b"h2", b"http/1.1"])),
        ext(0xfe0d, &[0; 8]),
        ext(0x0017, &[]),
        ext(0x44cd, &[0, 3, 2, b'h', b'2']),
        ext(EXT_SNI, &ext_sni_data("tls.browserleaks.com")),
        ext(EXT_EC_POINT_FORMATS, &with_len8(&[0])),
        ext(
            EXT_SUPPORTED_GROUPS,
            &ext_list16(&[0x4a4a, 4588, 29, 23, 24]),
        ),
        ext(
            EXT_SUPPORTED_VERSIONS,
            &ext_versions_client(&[0x7a7a, 0x0304, 0x0303]),
        ),
        ext(0xff01, &[0]),
        ext(EXT_SESSION_TICKET, &[]),
        ext(0x0012, &[]),
        ext(0x0005, &[1, 0, 0, 0, 0]),
        ext(
            EXT_SIGNATURE_ALGORITHMS,
            &ext_list16(&[
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ]),
        ),
        ext(0x001b, &[2, 0, 2]),
        ext(0x1a1a, &[0]),
    ];
    record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(TLS_VERSION_12, &[7; 32], &ciphers, &exts),
    )
}

fn buffer(out: &Output, name: Buffer) -> Option<&[u8]> {
    out.buffers
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(_, _, v)| v.as_slice())
}

fn all_fp() -> TlsConfig {
    TlsConfig {
        ja3: true,
        ja4: true,
        ..TlsConfig::default()
    }
}

// ---- probe ----

#[test]
fn probe_tls_and_sslv2() {
    assert!(probe(&[0x16, 0x03, 0x01, 0x02, 0x00]));
    assert!(probe(&[0x16, 0x03, 0x03]));
    assert!(probe(&[0x15, 0x03, 0x03, 0x00, 0x02]));
    assert!(probe(&chrome_client_hello()));
    // SSLv2-compatible ClientHello offering TLS 1.0.
    assert!(probe(&[0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15]));
    assert!(probe(&[0x80, 0x2e, 0x01, 0x00, 0x02]));
    assert!(!probe(b"GET / HTTP/1.1\r\n"));
    assert!(!probe(b"SSH-2.0-x"));
    assert!(!probe(&[0x16, 0x02, 0x01]));
    assert!(!probe(&[0x16, 0x03]));
    assert!(!probe(&[]));
}

// ---- fingerprints ----

#[test]
fn chrome_hello_matches_published_ja3_and_ja4() {
    let mut p = TlsParser::with_config(all_fp());
    let mut out = Output::default();
    p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    assert_eq!(
        buffer(&out, Buffer::Ja4Hash),
        Some(&b"t13d1516h2_8daaf6152771_d8a2da3f94cd"[..])
    );
    assert_eq!(
        buffer(&out, Buffer::Ja3String),
        Some(
            &b"771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,\
               45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0"[..]
        )
    );
    assert_eq!(
        buffer(&out, Buffer::Ja3Hash),
        Some(&b"98487aa16281980e7d1120d399efb6a4"[..])
    );
    assert_eq!(
        buffer(&out, Buffer::TlsSni),
        Some(&b"tls.browserleaks.com"[..])
    );
    assert_eq!(buffer(&out, Buffer::TlsAlpn), Some(&b"h2"[..]));
    assert!(out.records.is_empty());
}

#[test]
fn foxio_readme_ja4_example() {
    // FoxIO's JA4 README: t13d1516h2_8daaf6152771_e5627efa2ab1 from JA4_r
    // ciphers 002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9
    // extensions 0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01
    // (+ SNI and ALPN), signature algorithms 0403,0804,0401,0503,0805,0501,0806,0601.
    let ciphers = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        0x009c, 0x009d, 0x002f, 0x0035,
    ];
    let mut exts = vec![
        ext(EXT_SNI, &ext_sni_data("example.com")),
        ext(EXT_ALPN, &ext_alpn_data(&[b"h2"])),
        ext(
            EXT_SIGNATURE_ALGORITHMS,
            &ext_list16(&[
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ]),
        ),
        ext(
            EXT_SUPPORTED_VERSIONS,
            &ext_versions_client(&[0x0304, 0x0303]),
        ),
    ];
    for t in [
        0x0005, 0x000a, 0x000b, 0x0012, 0x0015, 0x0017, 0x001b, 0x0023, 0x002d, 0x0033, 0x4469,
        0xff01,
    ] {
        exts.push(ext(t, &[]));
    }
    let ch = record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(TLS_VERSION_12, &[], &ciphers, &exts),
    );
    let mut out = Output::default();
    TlsParser::new().parse(Dir::ToServer, &ch, &mut out);
    assert_eq!(
        buffer(&out, Buffer::Ja4Hash),
        Some(&b"t13d1516h2_8daaf6152771_e5627efa2ab1"[..])
    );
}

#[test]
fn salesforce_readme_ja3_example() {
    // salesforce/ja3 README: 769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0
    // -> ada70206e40642a3e4461f35503241d5.
    let exts = vec![
        ext(EXT_SNI, &ext_sni_data("a.example")),
        ext(EXT_SUPPORTED_GROUPS, &ext_list16(&[23, 24, 25])),
        ext(EXT_EC_POINT_FORMATS, &with_len8(&[0])),
    ];
    let ciphers = [47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4];
    let ch = record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(TLS_VERSION_10, &[], &ciphers, &exts),
    );
    let mut out = Output::default();
    TlsParser::new().parse(Dir::ToServer, &ch, &mut out);
    assert_eq!(
        buffer(&out, Buffer::Ja3String),
        Some(&b"769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"[..])
    );
    assert_eq!(
        buffer(&out, Buffer::Ja3Hash),
        Some(&b"ada70206e40642a3e4461f35503241d5"[..])
    );
}

#[test]
fn ja4_edge_cases_as_suricata() {
    // The expectations of Suricata's rust/src/ja4.rs unit tests.
    let mut hs = HandshakeParams::default();
    assert_eq!(ja4(&hs), "t00i000000_e3b0c44298fc_d2e2adf7177b");
    hs.set_version(TLS_VERSION_12);
    assert_eq!(ja4(&hs), "t12i000000_e3b0c44298fc_d2e2adf7177b");
    hs.extensions.push(EXT_SNI);
    hs.domain = true;
    assert_eq!(ja4(&hs), "t12d000100_e3b0c44298fc_d2e2adf7177b");
    hs.alpns.push(b"h3-16".to_vec());
    hs.extensions.push(EXT_ALPN);
    assert_eq!(ja4(&hs), "t12d0002h6_e3b0c44298fc_d2e2adf7177b");
    hs.ciphers.extend([0x1111, 0x0a20, 0xbada]);
    assert_eq!(ja4(&hs), "t12d0302h6_f500716053f9_d2e2adf7177b");
    hs.extensions.extend([0xface, 0x0121, 0x1234]);
    hs.sig_algs.push(0x6666);
    assert_eq!(ja4(&hs), "t12d0305h6_f500716053f9_2debc8880bae");

    let alpn = |a: &[u8]| ja4_alpn(Some(a)).iter().collect::<String>();
    assert_eq!(alpn(b"b"), "bb");
    assert_eq!(alpn(b"h2"), "h2");
    assert_eq!(alpn(b"http/1.1"), "h1");
    assert_eq!(alpn(&[0xab]), "ab");
    assert_eq!(alpn(&[0xab, 0xcd]), "ad");
    assert_eq!(alpn(&[0x30, 0xab]), "3b");
    assert_eq!(alpn(&[0x30, 0x31, 0xab, 0xcd]), "3d");
    assert_eq!(alpn(&[0x30, 0xab, 0xcd, 0x31]), "01");
    assert_eq!(alpn(&[0x2a, 0x2a]), "00");

    let mut many = HandshakeParams::default();
    many.ciphers.extend(1..200);
    many.extensions.extend(1..200);
    assert!(ja4(&many).starts_with("t00i999900_"));
}

#[test]
fn grease_values() {
    for g in [0x0a0a, 0x1a1a, 0x2a2a, 0x7a7a, 0xaaaa, 0xfafa] {
        assert!(is_grease(g));
    }
    for v in [0x0a1a, 0x0303, 0x0000, 0xffff, 0x0a0b] {
        assert!(!is_grease(v));
    }
}

// ---- reassembly ----

#[test]
fn client_hello_split_at_every_byte() {
    let ch = chrome_client_hello();
    let mut whole = Output::default();
    TlsParser::new().parse(Dir::ToServer, &ch, &mut whole);
    for i in 0..=ch.len() {
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch[..i], &mut out);
        p.parse(Dir::ToServer, &ch[i..], &mut out);
        assert_eq!(out, whole, "split at {i}");
    }
    let mut p = TlsParser::new();
    let mut out = Output::default();
    for b in &ch {
        p.parse(Dir::ToServer, std::slice::from_ref(b), &mut out);
    }
    assert_eq!(out, whole);
}

#[test]
fn client_hello_spanning_records() {
    let ch = chrome_client_hello();
    let msg = &ch[RECORD_HDR_LEN..];
    let mut whole = Output::default();
    TlsParser::new().parse(Dir::ToServer, &ch, &mut whole);
    // The message in three records (each at least 4 bytes, as Suricata requires).
    for cut in [4, 40, 100, msg.len() - 12] {
        let mut data = record(CT_HANDSHAKE, TLS_VERSION_10, &msg[..cut]);
        let mid = (cut + msg.len()) / 2;
        data.extend(record(CT_HANDSHAKE, TLS_VERSION_10, &msg[cut..mid]));
        data.extend(record(CT_HANDSHAKE, TLS_VERSION_10, &msg[mid..]));
        let mut out = Output::default();
        TlsParser::new().parse(Dir::ToServer, &data, &mut out);
        assert_eq!(out, whole, "cut {cut}");
    }
}

// ---- full handshakes ----

/// A TLS 1.2 handshake: the record is written at the call carrying the certificate.
#[test]
fn tls12_handshake_logs_at_certificate() {
    let der = cert_der();
    let ch = record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(
            TLS_VERSION_12,
            &[],
            &[0xc02f, 0x009c],
            &[
                ext(EXT_SNI, &ext_sni_data("test.example.com")),
                ext(EXT_ALPN, &ext_alpn_data(&[b"h2", b"http/1.1"])),
                ext(EXT_SUPPORTED_GROUPS, &ext_list16(&[29, 23])),
                ext(EXT_EC_POINT_FORMATS, &with_len8(&[0])),
            ],
        ),
    );
    let mut flight = server_hello(
        TLS_VERSION_12,
        &[],
        0xc02f,
        &[
            ext(0xff01, &[0]),
            ext(EXT_SNI, &[]),
            ext(EXT_ALPN, &ext_alpn_data(&[b"h2"])),
            ext(EXT_EC_POINT_FORMATS, &with_len8(&[0])),
        ],
    );
    flight.extend(certificate(&[&der, &der]));
    flight.extend(handshake(HS_SERVER_HELLO_DONE, &[]));
    let sflight = record(CT_HANDSHAKE, TLS_VERSION_12, &flight);

    let mut p = TlsParser::with_config(all_fp());
    let mut out = Output::default();
    p.parse(Dir::ToServer, &ch, &mut out);
    assert!(out.records.is_empty());
    let mut out = Output::default();
    p.parse(Dir::ToClient, &sflight, &mut out);
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    assert_eq!(out.records.len(), 1);
    let rec = &out.records[0];
    assert_eq!(rec.event_type, "tls");
    assert_eq!(rec.dir, Dir::ToClient);
    let expected = serde_json::json!({
        "subject": "C=US, ST=California, O=Precinct Test, Inc., CN=test.example.com",
        "issuerdn": "C=US, ST=California, O=Precinct Test, Inc., CN=test.example.com",
        "subjectaltname": ["test.example.com", "www.example.com"],
        "serial": "4D:2F:F2:08:65:3F:77:02:29:A8:D0:EA:2D:FA:19:95:8A:05:3C:89",
        "fingerprint": "fb:d3:74:43:7c:63:fb:b7:09:b4:17:46:9a:2f:53:8d:e7:cd:9f:48",
        "sni": "test.example.com",
        "version": "TLS 1.2",
        "notbefore": "2026-11-22T01:15:21",
        "notafter": "2026-11-23T01:15:21",
        "ja3": {
            "hash": hex(&Md5::digest(b"771,49199-156,0-16-10-11,29-23,0")),
            "string": "771,49199-156,0-16-10-11,29-23,0"
        },
        "ja3s": {
            // md5("771,49199,65281-0-16-11") computed with Python's hashlib.
            "hash": "673d9e3a3d636167965beda377536bd7",
            "string": "771,49199,65281-0-16-11"
        },
        "ja4": ja4(p.client.hs.as_ref().expect("client hello seen")),
        "client_alpns": ["h2", "http/1.1"],
        "server_alpns": ["h2"]
    });
    assert_eq!(rec.object, expected);
    // Key order as Suricata writes it.
    let keys: Vec<&str> = rec
        .object
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "subject",
            "issuerdn",
            "subjectaltname",
            "serial",
            "fingerprint",
            "sni",
            "version",
            "notbefore",
            "notafter",
            "ja3",
            "ja3s",
            "ja4",
            "client_alpns",
            "server_alpns"
        ]
    );
    assert!(ja4(p.client.hs.as_ref().expect("hs")).starts_with("t12d0204h2_"));
    assert_eq!(
        buffer(&out, Buffer::TlsCertSubject),
        Some("C=US, ST=California, O=Precinct Test, Inc., CN=test.example.com".as_bytes())
    );
    assert_eq!(
        buffer(&out, Buffer::TlsCertFingerprint),
        Some(&b"fb:d3:74:43:7c:63:fb:b7:09:b4:17:46:9a:2f:53:8d:e7:cd:9f:48"[..])
    );
    assert_eq!(
        buffer(&out, Buffer::Ja3sHash),
        Some(&b"673d9e3a3d636167965beda377536bd7"[..])
    );
    assert_eq!(
        out.buffers
            .iter()
            .filter(|(_, n, _)| *n == Buffer::TlsCerts)
            .count(),
        2
    );

    // Nothing more: not on application data, not at the end.
    let mut out = Output::default();
    p.parse(
        Dir::ToServer,
        &record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]),
        &mut out,
    );
    p.parse(
        Dir::ToServer,
        &record(CT_APPLICATION_DATA, TLS_VERSION_12, &[9; 40]),
        &mut out,
    );
    p.finish(&mut out);
    assert_eq!(
        out,
        Output {
            encrypted: true,
            ..Output::default()
        },
        "application data after the ServerHello: the session is encrypted, nothing else"
    );
}

#[test]
fn application_data_before_the_server_hello_is_not_the_encrypted_session() {
    // TLS 1.3 early data follows the ClientHello before the server answers: the handshake
    // (and its inspection) goes on.
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
    p.parse(
        Dir::ToServer,
        &record(CT_APPLICATION_DATA, TLS_VERSION_12, &[7; 30]),
        &mut out,
    );
    assert!(!out.encrypted);
}

#[test]
fn default_config_omits_fingerprints() {
    let ch = chrome_client_hello();
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &ch, &mut out);
    let der = cert_der();
    let mut flight = server_hello(TLS_VERSION_12, &[], 0xc02f, &[]);
    flight.extend(certificate(&[&der]));
    p.parse(
        Dir::ToClient,
        &record(CT_HANDSHAKE, TLS_VERSION_12, &flight),
        &mut out,
    );
    assert_eq!(out.records.len(), 1);
    let obj = out.records[0].object.as_object().expect("object");
    assert!(!obj.contains_key("ja3") && !obj.contains_key("ja3s") && !obj.contains_key("ja4"));
    assert_eq!(obj["client_alpns"], serde_json::json!(["h2", "http/1.1"]));
    assert!(!obj.contains_key("server_alpns"));
    // A server without extensions: JA3S ends with an empty extension list.
    assert_eq!(buffer(&out, Buffer::Ja3sString), Some(&b"771,49199,"[..]));
}

#[test]
fn certificate_message_split_across_records_and_calls() {
    let der = cert_der();
    let msg = certificate(&[&der]);
    let mut data = record(
        CT_HANDSHAKE,
        TLS_VERSION_12,
        &server_hello(TLS_VERSION_12, &[], 0x002f, &[]),
    );
    data.extend(record(CT_HANDSHAKE, TLS_VERSION_12, &msg[..100]));
    data.extend(record(CT_HANDSHAKE, TLS_VERSION_12, &msg[100..]));
    for i in (0..data.len()).step_by(7) {
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToClient, &data[..i], &mut out);
        assert!(out.records.is_empty());
        p.parse(Dir::ToClient, &data[i..], &mut out);
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        assert_eq!(out.records.len(), 1, "split at {i}");
        assert_eq!(out.records[0].object["notafter"], "2026-11-23T01:15:21");
        assert_eq!(out.records[0].object["version"], "TLS 1.2");
    }
}

#[test]
fn tls13_logs_when_both_sides_send_application_data() {
    let ch = record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(
            TLS_VERSION_12,
            &[5; 32],
            &[0x1301, 0x1302],
            &[
                ext(EXT_SNI, &ext_sni_data("one.example")),
                ext(
                    EXT_SUPPORTED_VERSIONS,
                    &ext_versions_client(&[0x0304, 0x0303]),
                ),
            ],
        ),
    );
    let mut sflight = record(
        CT_HANDSHAKE,
        TLS_VERSION_12,
        &server_hello(
            TLS_VERSION_12,
            &[5; 32],
            0x1301,
            &[ext(EXT_SUPPORTED_VERSIONS, &[3, 4])],
        ),
    );
    sflight.extend(record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]));
    sflight.extend(record(CT_APPLICATION_DATA, TLS_VERSION_12, &[0xee; 300]));
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &ch, &mut out);
    p.parse(Dir::ToClient, &sflight, &mut out);
    assert!(out.records.is_empty(), "client not done yet");
    let mut cflight = record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]);
    cflight.extend(record(CT_APPLICATION_DATA, TLS_VERSION_12, &[0xdd; 50]));
    p.parse(Dir::ToServer, &cflight, &mut out);
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].dir, Dir::ToServer);
    assert_eq!(
        out.records[0].object,
        serde_json::json!({"sni": "one.example", "version": "TLS 1.3"})
    );
}

#[test]
fn client_hello_only_flow() {
    // Without a session ticket Suricata writes nothing for a lone ClientHello.
    let ch = record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(
            TLS_VERSION_12,
            &[],
            &[0x002f],
            &[ext(EXT_SNI, &ext_sni_data("lone.example"))],
        ),
    );
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &ch, &mut out);
    p.finish(&mut out);
    assert!(out.records.is_empty());
    // With one (browsers always offer it) the flow end writes the record.
    let ch = chrome_client_hello();
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &ch, &mut out);
    assert!(out.records.is_empty());
    p.finish(&mut out);
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        out.records[0].object,
        serde_json::json!({
            "sni": "tls.browserleaks.com",
            "version": "UNDETERMINED",
            "client_alpns": ["h2", "http/1.1"]
        })
    );
}

#[test]
fn session_id_resumption() {
    let sid = [0x42; 32];
    let ch = record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(
            TLS_VERSION_12,
            &sid,
            &[0xc02f],
            &[ext(EXT_SNI, &ext_sni_data("again.example"))],
        ),
    );
    let mut sflight = record(
        CT_HANDSHAKE,
        TLS_VERSION_12,
        &server_hello(TLS_VERSION_12, &sid, 0xc02f, &[]),
    );
    sflight.extend(record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]));
    // The encrypted Finished: a handshake record after ChangeCipherSpec is skipped.
    sflight.extend(record(CT_HANDSHAKE, TLS_VERSION_12, &[0x9c; 40]));
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &ch, &mut out);
    p.parse(Dir::ToClient, &sflight, &mut out);
    let mut cflight = record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]);
    cflight.extend(record(CT_HANDSHAKE, TLS_VERSION_12, &[0x9d; 40]));
    cflight.extend(record(CT_APPLICATION_DATA, TLS_VERSION_12, &[1; 30]));
    p.parse(Dir::ToServer, &cflight, &mut out);
    assert!(out.records.is_empty());
    p.parse(
        Dir::ToClient,
        &record(CT_APPLICATION_DATA, TLS_VERSION_12, &[2; 30]),
        &mut out,
    );
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        out.records[0].object,
        serde_json::json!({"session_resumed": true, "sni": "again.example", "version": "TLS 1.2"})
    );
}

#[test]
fn fatal_alert_ends_the_handshake() {
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
    p.parse(
        Dir::ToClient,
        &record(CT_ALERT, TLS_VERSION_12, &[2, 40]),
        &mut out,
    );
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].object["version"], "TLS 1.2");
    p.finish(&mut out);
    assert_eq!(out.records.len(), 1);
}

#[test]
fn client_certificate_is_logged_under_client() {
    let der = cert_der();
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
    let mut flight = server_hello(TLS_VERSION_12, &[], 0xc02f, &[]);
    flight.extend(certificate(&[&der]));
    flight.extend(handshake(HS_CERTIFICATE_REQUEST, &[1, 1, 0, 0, 0, 0]));
    flight.extend(handshake(HS_SERVER_HELLO_DONE, &[]));
    p.parse(
        Dir::ToClient,
        &record(CT_HANDSHAKE, TLS_VERSION_12, &flight),
        &mut out,
    );
    assert!(out.records.is_empty(), "waits for the client certificate");
    p.parse(
        Dir::ToServer,
        &record(CT_HANDSHAKE, TLS_VERSION_12, &certificate(&[&der])),
        &mut out,
    );
    assert_eq!(out.records.len(), 1);
    let client = &out.records[0].object["client"];
    assert_eq!(
        client["serial"],
        "4D:2F:F2:08:65:3F:77:02:29:A8:D0:EA:2D:FA:19:95:8A:05:3C:89"
    );
    assert_eq!(client["notbefore"], "2026-11-22T01:15:21");
    assert!(out
        .buffers
        .iter()
        .any(|(d, n, _)| *d == Dir::ToServer && *n == Buffer::TlsCertSubject));
}

// ---- anomalies ----

#[test]
fn record_layer_anomalies() {
    let cases: [(&[u8], &str); 4] = [
        (
            &[0x19, 0x03, 0x01, 0x00, 0x01, 0x00],
            EV_INVALID_RECORD_TYPE,
        ),
        (&[0x16, 0x03, 0x01, 0x00, 0x00], EV_INVALID_RECORD_LENGTH),
        (
            &[0x16, 0x05, 0x01, 0x00, 0x01, 0x00],
            EV_INVALID_RECORD_VERSION,
        ),
        (&[0x16, 0x03, 0x01, 0x50, 0x00], EV_INVALID_RECORD_LENGTH),
    ];
    for (data, event) in cases {
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, data, &mut out);
        assert_eq!(out.anomalies, [event]);
        // Parsing stops for the flow.
        p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
        assert_eq!(out.anomalies, [event]);
        assert!(out.buffers.is_empty());
    }
}

#[test]
fn unknown_record_type_tolerated_in_tls10() {
    let ch = record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(
            TLS_VERSION_10,
            &[],
            &[0x002f],
            &[ext(EXT_SNI, &ext_sni_data("x.example"))],
        ),
    );
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &ch, &mut out);
    p.parse(
        Dir::ToServer,
        &[0x19, 0x03, 0x01, 0x00, 0x01, 0x00],
        &mut out,
    );
    assert_eq!(out.anomalies, [EV_INVALID_RECORD_TYPE]);
    assert!(!p.failed);
}

#[test]
fn hello_anomalies() {
    let bad_sni_type = {
        let mut d = ext_sni_data("x.example");
        d[2] = 1;
        d
    };
    let two_sni = [
        ext(EXT_SNI, &ext_sni_data("first.example")),
        ext(EXT_SNI, &ext_sni_data("second.example")),
    ];
    let zero_sni = ext(EXT_SNI, &with_len16(&[0, 0, 0]));
    type Case = (Vec<(u16, Vec<u8>)>, &'static str);
    let cases: Vec<Case> = vec![
        (vec![ext(EXT_SNI, &bad_sni_type)], EV_INVALID_SNI_TYPE),
        (two_sni.to_vec(), EV_MULTIPLE_SNI),
        (vec![zero_sni], EV_INVALID_SNI_LENGTH),
        (
            vec![ext(EXT_SUPPORTED_GROUPS, &[0, 9, 1])],
            EV_HANDSHAKE_INVALID_LENGTH,
        ),
    ];
    for (exts, event) in cases {
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(TLS_VERSION_12, &[], &[0x002f], &exts),
        );
        let mut out = Output::default();
        TlsParser::new().parse(Dir::ToServer, &ch, &mut out);
        assert_eq!(out.anomalies, [event]);
    }
    // The first SNI is kept.
    let ch = record(
        CT_HANDSHAKE,
        TLS_VERSION_10,
        &client_hello(TLS_VERSION_12, &[], &[0x002f], &two_sni),
    );
    let mut out = Output::default();
    TlsParser::new().parse(Dir::ToServer, &ch, &mut out);
    assert_eq!(buffer(&out, Buffer::TlsSni), Some(&b"first.example"[..]));
    // An unknown handshake type in clear.
    let mut out = Output::default();
    TlsParser::new().parse(
        Dir::ToServer,
        &record(CT_HANDSHAKE, TLS_VERSION_12, &handshake(99, &[0; 8])),
        &mut out,
    );
    assert_eq!(out.anomalies, [EV_INVALID_HANDSHAKE_MESSAGE]);
    // A bad certificate.
    let mut out = Output::default();
    TlsParser::new().parse(
        Dir::ToClient,
        &record(
            CT_HANDSHAKE,
            TLS_VERSION_12,
            &certificate(&[&[0x30, 0x03, 1, 2, 3]]),
        ),
        &mut out,
    );
    assert_eq!(out.anomalies.len(), 1);
    assert!(
        out.anomalies[0].starts_with("CERTIFICATE_") || out.anomalies[0] == EV_INVALID_CERTIFICATE
    );
}

#[test]
fn heartbleed_request_is_reported() {
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
    p.parse(
        Dir::ToServer,
        &record(CT_HEARTBEAT, TLS_VERSION_12, &[1, 0x40, 0x00]),
        &mut out,
    );
    assert_eq!(out.anomalies, [EV_OVERFLOW_HEARTBEAT]);
}

// ---- robustness ----

/// A deterministic byte generator (xorshift) for junk inputs.
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn full_flow() -> (Vec<u8>, Vec<u8>) {
    let der = cert_der();
    let mut flight = server_hello(
        TLS_VERSION_12,
        &[],
        0xc02f,
        &[ext(EXT_ALPN, &ext_alpn_data(&[b"h2"]))],
    );
    flight.extend(certificate(&[&der]));
    flight.extend(handshake(HS_SERVER_HELLO_DONE, &[]));
    (
        chrome_client_hello(),
        record(CT_HANDSHAKE, TLS_VERSION_12, &flight),
    )
}

#[test]
fn truncation_and_corruption_never_panic() {
    let (ch, sf) = full_flow();
    for i in 0..ch.len() {
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch[..i], &mut out);
        p.finish(&mut out);
    }
    for i in 0..sf.len() {
        let mut p = TlsParser::with_config(all_fp());
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch, &mut out);
        p.parse(Dir::ToClient, &sf[..i], &mut out);
        p.finish(&mut out);
    }
    // Every byte of both flights replaced by a few values.
    for (target, data) in [(0, &ch), (1, &sf)] {
        for i in 0..data.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = data.clone();
                bad[i] = v;
                let (c, s) = if target == 0 {
                    (&bad, &sf)
                } else {
                    (&ch, &bad)
                };
                let mut p = TlsParser::with_config(all_fp());
                let mut out = Output::default();
                p.parse(Dir::ToServer, c, &mut out);
                p.parse(Dir::ToClient, s, &mut out);
                p.finish(&mut out);
                assert!(out.records.len() <= 1);
            }
        }
    }
    for seed in 0..300 {
        let data = junk(seed, 2000);
        let mut p = TlsParser::new();
        let mut out = Output::default();
        for chunk in data.chunks(1 + (seed as usize % 97)) {
            p.parse(
                if seed % 2 == 0 {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                },
                chunk,
                &mut out,
            );
        }
        // Junk after a valid start, too.
        let mut p2 = TlsParser::new();
        p2.parse(Dir::ToServer, &ch, &mut out);
        p2.parse(Dir::ToServer, &data, &mut out);
        p2.parse(Dir::ToClient, &data, &mut out);
        p2.finish(&mut out);
    }
}

#[test]
fn memory_stays_bounded() {
    let mut p = TlsParser::new();
    let mut out = Output::default();
    // A handshake message claiming 16 MiB, fed in maximal records.
    let mut first = vec![HS_CERTIFICATE, 0xff, 0xff, 0xff];
    first.extend(vec![0u8; RECORD_MAX_LEN - 4]);
    p.parse(
        Dir::ToClient,
        &record(CT_HANDSHAKE, TLS_VERSION_12, &first),
        &mut out,
    );
    for _ in 0..100 {
        p.parse(
            Dir::ToClient,
            &record(CT_HANDSHAKE, TLS_VERSION_12, &vec![0u8; RECORD_MAX_LEN]),
            &mut out,
        );
        let partial = p.server.hs_partial.as_ref().expect("message in progress");
        assert!(partial.data.is_none());
        assert!(p.server.pending.len() <= RECORD_HDR_LEN + RECORD_MAX_LEN);
    }
    // Huge application data is skipped without buffering.
    p.parse(
        Dir::ToServer,
        &[CT_APPLICATION_DATA, 3, 3, 0x40, 0x00],
        &mut out,
    );
    for _ in 0..10 {
        p.parse(Dir::ToServer, &[0u8; 1000], &mut out);
        assert!(p.client.pending.is_empty());
    }
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
}

#[test]
fn gap_stops_the_direction() {
    let mut p = TlsParser::new();
    let mut out = Output::default();
    p.gap(Dir::ToServer, 100, &mut out);
    p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
    assert!(out.buffers.is_empty());
}

#[test]
fn sslv2_client_hello() {
    // SSLv2-compatible ClientHello offering TLS 1.0: 3 cipher specs, no session id,
    // 16-byte challenge.
    let mut body = vec![
        SSLV2_MT_CLIENT_HELLO,
        0x03,
        0x01,
        0x00,
        0x09,
        0x00,
        0x00,
        0x00,
        0x10,
    ];
    body.extend([0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x01, 0x00, 0x80]);
    body.extend([0xab; 16]);
    let mut data = vec![0x80, u8::try_from(body.len()).expect("short")];
    data.extend(&body);
    assert!(probe(&data));
    let mut p = TlsParser::new();
    let mut out = Output::default();
    for b in &data {
        p.parse(Dir::ToServer, std::slice::from_ref(b), &mut out);
    }
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    assert!(p.flags.client_hello);
    assert_eq!(p.client.version, TLS_VERSION_10);
}

// ---- formatting ----

#[test]
fn timestamps_and_versions() {
    assert_eq!(version_string(0x0301), "TLSv1");
    assert_eq!(version_string(0x0303), "TLS 1.2");
    assert_eq!(version_string(0x0304), "TLS 1.3");
    assert_eq!(version_string(0), "UNDETERMINED");
    assert_eq!(version_string(0x7f1c), "TLS 1.3 draft-28");
    assert_eq!(version_string(0x7f01), "TLS 1.3 draft-<16");
    assert_eq!(version_string(0xfb1a), "TLS 1.3 draft-26-fb");
    assert_eq!(version_string(0x1234), "0x1234");
    assert_eq!(bytes_to_string(b"h2"), "h2");
    assert_eq!(bytes_to_string(&[b'a', 0xff]), "a\\xff");
}
