//! The DNS parser on messages built here, modelled on Suricata's test cases.

use super::*;
use serde_json::json;

// -----------------------------------------------------------------------------------
// A tiny message builder
// -----------------------------------------------------------------------------------

/// A name in wire form, uncompressed.
fn name(dotted: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in dotted.split('.').filter(|l| !l.is_empty()) {
        out.push(u8::try_from(label.len()).expect("test label fits"));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A compression pointer to `offset`.
fn ptr(offset: u16) -> Vec<u8> {
    (0xc000 | offset).to_be_bytes().to_vec()
}

/// Labels followed by a pointer.
fn name_then_ptr(dotted: &str, offset: u16) -> Vec<u8> {
    let mut out = name(dotted);
    out.pop();
    out.extend(ptr(offset));
    out
}

fn rr(owner: Vec<u8>, rrtype: u16, ttl: u32, rdata: Vec<u8>) -> Vec<u8> {
    let mut out = owner;
    out.extend(rrtype.to_be_bytes());
    out.extend(1u16.to_be_bytes());
    out.extend(ttl.to_be_bytes());
    out.extend(
        u16::try_from(rdata.len())
            .expect("test rdata fits")
            .to_be_bytes(),
    );
    out.extend(rdata);
    out
}

#[derive(Clone, Default)]
struct Msg {
    id: u16,
    flags: u16,
    questions: Vec<Vec<u8>>,
    answers: Vec<Vec<u8>>,
    authorities: Vec<Vec<u8>>,
    additionals: Vec<Vec<u8>>,
}

/// Offset of the first question's name: compressed names point here.
const Q0: u16 = 12;

impl Msg {
    fn new(id: u16, flags: u16) -> Msg {
        Msg {
            id,
            flags,
            ..Msg::default()
        }
    }

    fn question(mut self, owner: Vec<u8>, rrtype: u16) -> Msg {
        let mut q = owner;
        q.extend(rrtype.to_be_bytes());
        q.extend(1u16.to_be_bytes());
        self.questions.push(q);
        self
    }

    fn answer(mut self, record: Vec<u8>) -> Msg {
        self.answers.push(record);
        self
    }

    fn authority(mut self, record: Vec<u8>) -> Msg {
        self.authorities.push(record);
        self
    }

    fn additional(mut self, record: Vec<u8>) -> Msg {
        self.additionals.push(record);
        self
    }

    fn build(&self) -> Vec<u8> {
        let count = |v: &Vec<Vec<u8>>| u16::try_from(v.len()).expect("test count fits");
        let mut out = Vec::new();
        for field in [
            self.id,
            self.flags,
            count(&self.questions),
            count(&self.answers),
            count(&self.authorities),
            count(&self.additionals),
        ] {
            out.extend(field.to_be_bytes());
        }
        for part in self
            .questions
            .iter()
            .chain(&self.answers)
            .chain(&self.authorities)
            .chain(&self.additionals)
        {
            out.extend(part);
        }
        out
    }
}

fn tcp_frame(msg: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(msg.len())
        .expect("test message fits")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(msg);
    out
}

fn run(parser: &mut DnsParser, dir: Dir, data: &[u8]) -> Output {
    let mut out = Output::default();
    parser.parse(dir, data, &mut out);
    out
}

fn udp(dir: Dir, data: &[u8]) -> Output {
    run(&mut DnsParser::new(false), dir, data)
}

fn only_record(out: &Output) -> &Value {
    assert_eq!(out.records.len(), 1, "records: {:?}", out.records);
    &out.records[0].object
}

/// Serialised, so that key order counts.
fn text(v: &Value) -> String {
    serde_json::to_string(v).expect("serialisable")
}

/// The request and response of `dig www.suricata-ids.org` (dns-udp-eve-dig).
fn dig_request() -> Vec<u8> {
    Msg::new(36146, 0x0120)
        .question(name("www.suricata-ids.org"), TYPE_A)
        .build()
}

fn dig_response() -> Vec<u8> {
    Msg::new(36146, 0x81a0)
        .question(name("www.suricata-ids.org"), TYPE_A)
        .answer(rr(ptr(Q0), TYPE_CNAME, 3544, name("suricata-ids.org")))
        // 50: the name in the CNAME rdata (12 header, 26 question, 12 record header).
        .answer(rr(ptr(50), TYPE_A, 244, vec![192, 0, 78, 24]))
        .answer(rr(ptr(50), TYPE_A, 244, vec![192, 0, 78, 25]))
        .build()
}

// -----------------------------------------------------------------------------------
// Conformance shapes
// -----------------------------------------------------------------------------------

#[test]
fn request_record_matches_dig_case() {
    let out = udp(Dir::ToServer, &dig_request());
    let expected = json!({
        "version": 3, "type": "request", "tx_id": 0, "id": 36146, "flags": "120",
        "rd": true, "opcode": 0, "rcode": "NOERROR",
        "queries": [{"rrname": "www.suricata-ids.org", "rrtype": "A"}]
    });
    assert_eq!(text(only_record(&out)), text(&expected));
    assert_eq!(out.records[0].event_type, "dns");
    assert_eq!(out.records[0].dir, Dir::ToServer);
    assert!(out.anomalies.is_empty());
    assert_eq!(
        out.buffers,
        vec![
            (
                Dir::ToServer,
                Buffer::DnsQuery,
                b"www.suricata-ids.org".to_vec()
            ),
            (
                Dir::ToServer,
                Buffer::DnsQueriesRrname,
                b"www.suricata-ids.org".to_vec()
            ),
            (Dir::ToServer, Buffer::DnsOpcode, vec![0]),
        ]
    );
}

#[test]
fn response_record_matches_dig_case() {
    let mut parser = DnsParser::new(false);
    run(&mut parser, Dir::ToServer, &dig_request());
    let out = run(&mut parser, Dir::ToClient, &dig_response());
    let expected = json!({
        "version": 3, "type": "response", "tx_id": 1, "id": 36146, "flags": "81a0",
        "qr": true, "rd": true, "ra": true, "opcode": 0, "rcode": "NOERROR",
        "queries": [{"rrname": "www.suricata-ids.org", "rrtype": "A"}],
        "answers": [
            {"rrname": "www.suricata-ids.org", "rrtype": "CNAME", "ttl": 3544,
             "rdata": "suricata-ids.org"},
            {"rrname": "suricata-ids.org", "rrtype": "A", "ttl": 244, "rdata": "192.0.78.24"},
            {"rrname": "suricata-ids.org", "rrtype": "A", "ttl": 244, "rdata": "192.0.78.25"}
        ],
        "grouped": {"CNAME": ["suricata-ids.org"], "A": ["192.0.78.24", "192.0.78.25"]}
    });
    assert_eq!(text(only_record(&out)), text(&expected));
    assert_eq!(out.records[0].dir, Dir::ToClient);
    // `dns.query` belongs to requests only.
    assert_eq!(
        out.buffers,
        vec![
            (
                Dir::ToClient,
                Buffer::DnsQueriesRrname,
                b"www.suricata-ids.org".to_vec()
            ),
            (Dir::ToClient, Buffer::DnsOpcode, vec![0]),
        ]
    );
}

#[test]
fn response_without_request_is_logged() {
    let out = udp(Dir::ToClient, &dig_response());
    let rec = only_record(&out);
    assert_eq!(rec["type"], "response");
    assert_eq!(rec["tx_id"], 0);
}

#[test]
fn sshfp_answer_with_tc_flag() {
    let fingerprint = [
        0x19, 0x8c, 0x34, 0xa9, 0x2f, 0xc0, 0xb2, 0xab, 0x1d, 0xa5, 0x2b, 0x68, 0x8c, 0x2f, 0x19,
        0x1d, 0x2d, 0x96, 0x0c, 0x09,
    ];
    let mut rdata = vec![1, 1];
    rdata.extend(fingerprint);
    let msg = Msg::new(7, 0x8380)
        .question(name("anoncvs.netbsd.org"), TYPE_SSHFP)
        .answer(rr(ptr(Q0), TYPE_SSHFP, 600, rdata))
        .build();
    let out = udp(Dir::ToClient, &msg);
    let rec = only_record(&out);
    assert_eq!(rec["tc"], true);
    let sshfp = json!({
        "fingerprint": "19:8c:34:a9:2f:c0:b2:ab:1d:a5:2b:68:8c:2f:19:1d:2d:96:0c:09",
        "algo": 1, "type": 1
    });
    assert_eq!(
        text(&rec["answers"][0]),
        text(
            &json!({"rrname": "anoncvs.netbsd.org", "rrtype": "SSHFP", "ttl": 600, "sshfp": sshfp})
        )
    );
    assert_eq!(text(&rec["grouped"]), text(&json!({"SSHFP": [sshfp]})));
}

#[test]
fn txt_answer_like_dns_udp_eve_txt() {
    let spf = b"v=spf1 include:_spf.google.com ~all";
    let mut rdata = vec![u8::try_from(spf.len()).expect("fits")];
    rdata.extend_from_slice(spf);
    let msg = Msg::new(28243, 0x8180)
        .question(name("google.com"), TYPE_TXT)
        .answer(rr(ptr(Q0), TYPE_TXT, 3217, rdata))
        .build();
    let rec = udp(Dir::ToClient, &msg).records[0].object.clone();
    assert_eq!(rec["flags"], "8180");
    assert_eq!(
        rec["answers"][0]["rdata"],
        "v=spf1 include:_spf.google.com ~all"
    );
    assert_eq!(rec["answers"][0]["ttl"], 3217);
    assert_eq!(
        rec["grouped"]["TXT"][0],
        "v=spf1 include:_spf.google.com ~all"
    );
}

/// bug-1158: TXT answers, the second an empty string, with an NS authority; and the
/// transaction counter over requests with and without responses.
#[test]
fn txt_with_empty_string_and_ns_authority_like_bug_1158() {
    let qname = "AAAAAO1kQA.=auth.srv.tunnel.com";
    let mut txt = vec![32];
    txt.extend_from_slice(b"AhvMAAO1kAFE5TE9QTjFFN09RN1lYSDk");
    let response = Msg::new(49711, 0x8180)
        .question(name(qname), TYPE_TXT)
        .answer(rr(ptr(Q0), TYPE_TXT, 3, txt))
        .answer(rr(ptr(Q0), TYPE_TXT, 3, vec![0]))
        .authority(rr(
            name("srv.tunnel.com"),
            TYPE_NS,
            604800,
            name("iodine.tunnel.com"),
        ))
        .build();
    let request = Msg::new(49711, 0x0100)
        .question(name(qname), TYPE_TXT)
        .build();

    let mut parser = DnsParser::new(false);
    let first = run(&mut parser, Dir::ToServer, &request);
    assert_eq!(only_record(&first)["tx_id"], 0);
    let out = run(&mut parser, Dir::ToClient, &response);
    let rec = only_record(&out);
    assert_eq!(rec["tx_id"], 1);
    assert_eq!(
        rec["answers"][0]["rdata"],
        "AhvMAAO1kAFE5TE9QTjFFN09RN1lYSDk"
    );
    assert_eq!(rec["answers"][1]["rdata"], "");
    assert_eq!(
        rec["grouped"]["TXT"],
        json!(["AhvMAAO1kAFE5TE9QTjFFN09RN1lYSDk", ""])
    );
    assert_eq!(
        text(&rec["authorities"]),
        text(
            &json!([{"rrname": "srv.tunnel.com", "rrtype": "NS", "ttl": 604800,
                      "rdata": "iodine.tunnel.com"}])
        )
    );

    // Requests answered, then unanswered: 2, then 3 and 4.
    for expected in [2, 3, 4] {
        let out = run(&mut parser, Dir::ToServer, &request);
        assert_eq!(only_record(&out)["tx_id"], expected);
    }
}

/// bug-856: a CNAME chain with an SOA authority.
#[test]
fn soa_authority_like_bug_856() {
    let msg = Msg::new(25783, 0x8180)
        .question(name("static.programme-tv.net"), TYPE_AAAA)
        .answer(rr(
            ptr(Q0),
            TYPE_CNAME,
            630,
            name("programme-tv.net.edgesuite.net"),
        ))
        .answer(rr(
            name("programme-tv.net.edgesuite.net"),
            TYPE_CNAME,
            20432,
            name("a1859.g.akamai.net"),
        ))
        .authority(rr(name("g.akamai.net"), TYPE_SOA, 1000, {
            let mut soa = name("n0g.akamai.net");
            soa.extend(name("hostmaster.akamai.com"));
            for v in [1372967523u32, 1000, 1000, 1000, 1800] {
                soa.extend(v.to_be_bytes());
            }
            soa
        }))
        .build();
    let out = udp(Dir::ToClient, &msg);
    let rec = only_record(&out);
    assert_eq!(
        rec["grouped"]["CNAME"],
        json!(["programme-tv.net.edgesuite.net", "a1859.g.akamai.net"])
    );
    let expected = json!([{
        "rrname": "g.akamai.net", "rrtype": "SOA", "ttl": 1000,
        "soa": {"mname": "n0g.akamai.net", "rname": "hostmaster.akamai.com",
                "serial": 1372967523, "refresh": 1000, "retry": 1000, "expire": 1000,
                "minimum": 1800}
    }]);
    assert_eq!(text(&rec["authorities"]), text(&expected));
}

/// dns-udp-junkrequest-first: an SNMP request to port 53, then a real query.
#[test]
fn junk_first_then_request() {
    let snmp = [
        0x30, 0x40, 0x02, 0x01, 0x03, 0x30, 0x0f, 0x02, 0x03, 0x00, 0x91, 0xc8, 0x02, 0x02, 0x05,
        0xdc, 0x04, 0x01, 0x04, 0x02, 0x01, 0x03, 0x04, 0x15, 0x30, 0x13, 0x04, 0x00, 0x02, 0x01,
        0x00, 0x02, 0x01, 0x00, 0x04, 0x05, 0x61, 0x64, 0x6d, 0x69, 0x6e, 0x04, 0x00, 0x04, 0x00,
        0x30, 0x13, 0x04, 0x00, 0x04, 0x00, 0xa0, 0x0d, 0x02, 0x03, 0x00, 0x91, 0xc8, 0x02, 0x01,
        0x00, 0x02, 0x01, 0x00, 0x30, 0x00,
    ];
    // RD + AD, one question, an OPT record without options.
    let query = Msg::new(0xc58e, 0x0120)
        .question(name("catenacyber.Fr"), TYPE_A)
        .additional(rr(vec![0], TYPE_OPT, 0, Vec::new()))
        .build();
    assert!(!probe(&snmp, false));
    assert!(probe(&query, false));

    let mut parser = DnsParser::new(false);
    assert_eq!(run(&mut parser, Dir::ToServer, &snmp), Output::default());
    let out = run(&mut parser, Dir::ToServer, &query);
    let rec = only_record(&out);
    assert_eq!(rec["type"], "request");
    assert_eq!(rec["queries"][0]["rrname"], "catenacyber.Fr");
    assert_eq!(rec["tx_id"], 0);
    // An OPT without options is not logged, and AD is not one of the logged bits.
    assert!(rec.get("additionals").is_none());
    assert!(rec.get("z").is_none());
}

// -----------------------------------------------------------------------------------
// Record types
// -----------------------------------------------------------------------------------

fn single_answer(rrtype: u16, rdata: Vec<u8>) -> Value {
    let msg = Msg::new(1, 0x8180)
        .question(name("example.org"), rrtype)
        .answer(rr(ptr(Q0), rrtype, 60, rdata))
        .build();
    only_record(&udp(Dir::ToClient, &msg)).clone()
}

#[test]
fn every_rdata_shape() {
    let aaaa = single_answer(
        TYPE_AAAA,
        vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    );
    assert_eq!(
        aaaa["answers"][0]["rdata"],
        "2001:0db8:0000:0000:0000:0000:0000:0001"
    );
    assert_eq!(
        aaaa["grouped"]["AAAA"][0],
        "2001:0db8:0000:0000:0000:0000:0000:0001"
    );

    let ns = single_answer(TYPE_NS, name_then_ptr("ns1", Q0));
    assert_eq!(ns["answers"][0]["rdata"], "ns1.example.org");
    assert_eq!(ns["grouped"]["NS"][0], "ns1.example.org");

    let ptr_rec = single_answer(TYPE_PTR, name("host.example.net"));
    assert_eq!(ptr_rec["answers"][0]["rdata"], "host.example.net");

    // MX: only the exchange is logged, not the preference.
    let mut mx = 10u16.to_be_bytes().to_vec();
    mx.extend(name_then_ptr("mail", Q0));
    let mx = single_answer(TYPE_MX, mx);
    assert_eq!(mx["answers"][0]["rdata"], "mail.example.org");
    assert_eq!(mx["grouped"]["MX"][0], "mail.example.org");

    let mut srv = Vec::new();
    for v in [10u16, 20, 5060] {
        srv.extend(v.to_be_bytes());
    }
    srv.extend(name("sip.example.org"));
    let srv = single_answer(TYPE_SRV, srv);
    let srv_obj = json!({"priority": 10, "weight": 20, "port": 5060, "name": "sip.example.org"});
    assert_eq!(text(&srv["answers"][0]["srv"]), text(&srv_obj));
    assert_eq!(text(&srv["grouped"]["SRV"][0]), text(&srv_obj));

    let null = single_answer(TYPE_NULL, b"raw\x00bytes".to_vec());
    assert_eq!(null["answers"][0]["rdata"], "raw\u{0}bytes");
    assert_eq!(null["grouped"]["NULL"][0], "raw\u{0}bytes");

    // Two strings in one TXT record: two detailed entries.
    let txt = single_answer(TYPE_TXT, b"\x03one\x03two".to_vec());
    assert_eq!(txt["answers"][0]["rdata"], "one");
    assert_eq!(txt["answers"][1]["rdata"], "two");
    assert_eq!(txt["grouped"]["TXT"], json!(["one", "two"]));

    // Types Suricata does not decode: no rdata, not grouped.
    let caa = single_answer(257, b"\x00\x05issueca.example".to_vec());
    assert_eq!(
        text(&caa["answers"][0]),
        text(&json!({"rrname": "example.org", "rrtype": "257", "ttl": 60}))
    );
    assert_eq!(caa["queries"][0]["rrtype"], "257");
    assert_eq!(caa["grouped"], json!({}));
    let hinfo = single_answer(13, b"\x03CPU\x02OS".to_vec());
    assert_eq!(
        text(&hinfo["answers"][0]),
        text(&json!({"rrname": "example.org", "rrtype": "HINFO", "ttl": 60}))
    );
    let dname = single_answer(39, name("example.net"));
    assert_eq!(dname["answers"][0]["rrtype"], "DNAME");
    assert!(dname["answers"][0].get("rdata").is_none());
    let unknown = single_answer(65280, vec![1, 2, 3]);
    assert_eq!(unknown["answers"][0]["rrtype"], "65280");
}

#[test]
fn opt_with_options_in_additionals() {
    let mut options = 10u16.to_be_bytes().to_vec();
    options.extend(8u16.to_be_bytes());
    options.extend([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04]);
    options.extend(12u16.to_be_bytes());
    options.extend(0u16.to_be_bytes());
    let msg = Msg::new(5, 0x0100)
        .question(name("example.org"), TYPE_A)
        .additional(rr(vec![0], TYPE_OPT, 0x8000, options))
        .build();
    let out = udp(Dir::ToServer, &msg);
    let expected = json!([{
        "rrname": "", "rrtype": "OPT", "ttl": 32768,
        "opt": [{"code": 10, "data": "deadbeef01020304"}, {"code": 12, "data": ""}]
    }]);
    assert_eq!(text(&only_record(&out)["additionals"]), text(&expected));
}

#[test]
fn multiple_questions_and_header_bits() {
    // AA, Z, opcode 2 (status), rcode 3.
    let flags = 0x8000 | (2 << 11) | 0x0400 | 0x0040 | 3;
    let msg = Msg::new(9, flags)
        .question(name("a.example"), TYPE_A)
        .question(name_then_ptr("b", Q0 + 2), TYPE_AAAA)
        .question(vec![0], 255)
        .build();
    let out = udp(Dir::ToClient, &msg);
    let expected = json!({
        "version": 3, "type": "response", "tx_id": 0, "id": 9, "flags": "9443",
        "qr": true, "aa": true, "z": true, "opcode": 2, "rcode": "NXDOMAIN",
        "queries": [
            {"rrname": "a.example", "rrtype": "A"},
            {"rrname": "b.example", "rrtype": "AAAA"},
            {"rrname": "", "rrtype": "ANY"}
        ]
    });
    assert_eq!(text(only_record(&out)), text(&expected));
    assert_eq!(out.anomalies, vec![EV_Z_FLAG_SET]);
    // The root name gives no buffer; the opcode one, after the names.
    assert_eq!(out.buffers.len(), 3);
    assert_eq!(out.buffers[2], (Dir::ToClient, Buffer::DnsOpcode, vec![2]));
}

#[test]
fn unassigned_rcode_and_opcode() {
    let msg = Msg::new(1, 0x8000 | (9 << 11) | 12)
        .question(name("x.org"), TYPE_A)
        .build();
    let out = udp(Dir::ToClient, &msg);
    let rec = only_record(&out);
    assert_eq!(rec["rcode"], "12");
    assert_eq!(rec["opcode"], 9);
    assert_eq!(out.anomalies, vec![EV_INVALID_OPCODE]);
    assert_eq!(
        out.buffers.last(),
        Some(&(Dir::ToClient, Buffer::DnsOpcode, vec![9]))
    );
}

#[test]
fn non_utf8_names_are_escaped() {
    let mut owner = vec![3, b'a', 0xff, b'b'];
    owner.extend(name("org"));
    let msg = Msg::new(1, 0x0100).question(owner, TYPE_A).build();
    let out = udp(Dir::ToServer, &msg);
    assert_eq!(only_record(&out)["queries"][0]["rrname"], "a\\xffb.org");
    // The buffer keeps the raw bytes.
    assert_eq!(out.buffers[0].2, b"a\xffb.org".to_vec());
}

#[test]
fn odd_address_lengths_render_empty_or_as_ipv6() {
    assert_eq!(
        single_answer(TYPE_A, vec![1, 2, 3])["answers"][0]["rdata"],
        ""
    );
    assert_eq!(single_answer(TYPE_A, Vec::new())["answers"][0]["rdata"], "");
    assert_eq!(
        single_answer(TYPE_A, vec![0; 16])["answers"][0]["rdata"],
        "0000:0000:0000:0000:0000:0000:0000:0000"
    );
}

// -----------------------------------------------------------------------------------
// Direction checks and events
// -----------------------------------------------------------------------------------

#[test]
fn request_sent_to_client_is_logged_as_response_with_event() {
    let out = udp(Dir::ToClient, &dig_request());
    assert_eq!(only_record(&out)["type"], "response");
    assert_eq!(out.anomalies, vec![EV_NOT_RESPONSE]);
}

#[test]
fn response_sent_to_server_is_dropped_on_udp() {
    assert_eq!(udp(Dir::ToServer, &dig_response()), Output::default());
}

#[test]
fn message_without_questions_uses_a_tx_id_but_is_not_logged() {
    let bare = Msg::new(3, 0x8180)
        .answer(rr(name("x.org"), TYPE_A, 1, vec![1, 1, 1, 1]))
        .build();
    let mut parser = DnsParser::new(false);
    assert!(run(&mut parser, Dir::ToClient, &bare).records.is_empty());
    let out = run(&mut parser, Dir::ToServer, &dig_request());
    assert_eq!(only_record(&out)["tx_id"], 1);
}

#[test]
fn implausible_headers_are_ignored() {
    // A request without questions, counts larger than the message, trailing bytes
    // after a record-less header.
    let no_question = Msg::new(1, 0x0100).build();
    let mut huge = dig_request();
    huge[7] = 0xff;
    let mut padded = Msg::new(1, 0x8180).build();
    padded.push(0);
    for msg in [no_question, huge, padded] {
        assert_eq!(udp(Dir::ToServer, &msg), Output::default());
        assert!(!probe(&msg, false));
    }
    // A bare response header is plausible, but has nothing to log.
    let bare = Msg::new(1, 0x8180).build();
    assert!(probe(&bare, false));
    assert!(udp(Dir::ToClient, &bare).records.is_empty());
}

#[test]
fn broken_authorities_and_additionals_are_dropped_and_flagged() {
    let good = Msg::new(4, 0x8180)
        .question(name("x.org"), TYPE_A)
        .answer(rr(ptr(Q0), TYPE_A, 1, vec![9, 9, 9, 9]));
    // An MX rdata of one byte cannot hold its preference.
    let bad_authority = good
        .clone()
        .authority(rr(ptr(Q0), TYPE_MX, 1, vec![0]))
        .additional(rr(ptr(Q0), TYPE_A, 1, vec![1, 2, 3, 4]))
        .build();
    let out = udp(Dir::ToClient, &bad_authority);
    let rec = only_record(&out);
    assert!(rec.get("authorities").is_none());
    assert!(rec.get("additionals").is_none());
    assert_eq!(rec["answers"][0]["rdata"], "9.9.9.9");
    assert_eq!(out.anomalies, vec![EV_INVALID_AUTHORITIES]);

    let bad_additional = good.additional(rr(ptr(Q0), TYPE_SOA, 1, vec![0])).build();
    let out = udp(Dir::ToClient, &bad_additional);
    assert!(only_record(&out).get("additionals").is_none());
    assert_eq!(out.anomalies, vec![EV_INVALID_ADDITIONALS]);
}

#[test]
fn broken_answers_make_the_message_malformed() {
    let msg = Msg::new(4, 0x8180)
        .question(name("x.org"), TYPE_A)
        .answer(rr(ptr(Q0), TYPE_SSHFP, 1, vec![1]))
        .build();
    assert_eq!(
        parse_for_direction(&msg, Dir::ToClient),
        Err(MessageError::Malformed)
    );
    // On UDP the event would land on an already logged transaction: nothing shows.
    assert_eq!(udp(Dir::ToClient, &msg), Output::default());
}

// -----------------------------------------------------------------------------------
// Names: compression, loops, limits
// -----------------------------------------------------------------------------------

#[test]
fn forward_pointer_is_followed() {
    // The question points forward into the answer's rdata.
    let msg = Msg::new(1, 0x8180)
        .question(ptr(12 + 2 + 4 + 12), TYPE_CNAME)
        .answer(rr(ptr(Q0), TYPE_CNAME, 1, name("target.example")))
        .build();
    let rec = udp(Dir::ToClient, &msg).records[0].object.clone();
    assert_eq!(rec["queries"][0]["rrname"], "target.example");
    assert_eq!(rec["answers"][0]["rrname"], "target.example");
}

#[test]
fn self_pointer_without_prior_pointer_is_an_error() {
    let msg = Msg::new(1, 0x0100).question(ptr(Q0), TYPE_A).build();
    assert_eq!(
        parse_for_direction(&msg, Dir::ToServer),
        Err(MessageError::Malformed)
    );
    assert_eq!(udp(Dir::ToServer, &msg), Output::default());
    assert!(!probe(&msg, false));
}

#[test]
fn self_pointer_after_a_pointer_ends_the_name_with_infinite_loop() {
    // 12: "a" then a pointer to 20; 16..20: type and class; 20: a pointer to itself.
    let mut raw = Msg::new(1, 0x8180).build();
    raw[5] = 1;
    raw.extend(name_then_ptr("a", 20));
    raw.extend(TYPE_A.to_be_bytes());
    raw.extend(1u16.to_be_bytes());
    raw.extend(ptr(20));
    let out = udp(Dir::ToClient, &raw);
    let rec = only_record(&out);
    assert_eq!(rec["queries"][0]["rrname"], "a");
    assert_eq!(rec["queries"][0]["rrtype"], "A");
    assert_eq!(out.anomalies, vec![EV_INFINITE_LOOP]);
}

#[test]
fn pointer_loop_is_cut_at_the_segment_limit() {
    // 12: question name = pointer to 18; 18: pointer to 20; 20: pointer to 18.
    let mut raw = Msg::new(1, 0x8180).build();
    raw[5] = 1;
    raw.extend(ptr(18)); // 12..14
    raw.extend(TYPE_A.to_be_bytes()); // 14..16
    raw.extend(1u16.to_be_bytes()); // 16..18
    raw.extend(ptr(20)); // 18..20
    raw.extend(ptr(18)); // 20..22
    let out = udp(Dir::ToClient, &raw);
    let rec = only_record(&out);
    assert_eq!(rec["queries"][0]["rrname"], "");
    assert_eq!(rec["queries"][0]["rrname_truncated"], true);
    assert_eq!(out.anomalies, vec![EV_NAME_TOO_LONG, EV_TOO_MANY_LABELS]);
}

#[test]
fn label_loop_through_pointer_is_bounded() {
    // 12: "a" then a pointer back to 12: a name that repeats "a" forever.
    let mut raw = Msg::new(1, 0x8180).build();
    raw[5] = 1;
    raw.extend(name_then_ptr("a", Q0));
    raw.extend(TYPE_A.to_be_bytes());
    raw.extend(1u16.to_be_bytes());
    let out = udp(Dir::ToClient, &raw);
    let rec = only_record(&out);
    let rrname = rec["queries"][0]["rrname"].as_str().expect("string");
    assert!(rrname.starts_with("a.a.a.") && rrname.len() <= MAX_NAME_LEN);
    assert_eq!(rec["queries"][0]["rrname_truncated"], true);
}

#[test]
fn pointer_out_of_bounds_is_an_error() {
    let msg = Msg::new(1, 0x0100).question(ptr(0x3fff), TYPE_A).build();
    assert_eq!(
        parse_for_direction(&msg, Dir::ToServer),
        Err(MessageError::Malformed)
    );

    // A pointer to the very end of the message is an empty name; one past it is not.
    let mut raw = Msg::new(1, 0x0100).build();
    raw.extend(ptr(14));
    let mut flags = NameFlags::default();
    let mut cur = Cursor::new(&raw, 12, raw.len());
    let at_end = parse_name(&mut cur, &mut flags);
    assert_eq!(at_end.map(|n| n.value), Ok(Vec::new()));
    assert_eq!(cur.pos, 14);
    raw[12..14].copy_from_slice(&ptr(15));
    let mut cur = Cursor::new(&raw, 12, raw.len());
    assert_eq!(parse_name(&mut cur, &mut flags), Err(ParseError::Invalid));
}

#[test]
fn reserved_label_types_are_errors() {
    for first in [0x40u8, 0x80] {
        let mut raw = Msg::new(1, 0x0100).build();
        raw[5] = 1;
        raw.extend([first, 1, 0, 0, 1, 0, 1]);
        assert_eq!(
            parse_for_direction(&raw, Dir::ToServer),
            Err(MessageError::Malformed)
        );
    }
}

#[test]
fn long_names_are_truncated_and_flagged() {
    let label = "x".repeat(63);
    let long = vec![label.as_str(); 20].join(".");
    let msg = Msg::new(1, 0x0100).question(name(&long), TYPE_A).build();
    let out = udp(Dir::ToServer, &msg);
    let rec = only_record(&out);
    let rrname = rec["queries"][0]["rrname"].as_str().expect("string");
    assert_eq!(rrname.len(), MAX_NAME_LEN);
    assert_eq!(rec["queries"][0]["rrname_truncated"], true);
    assert_eq!(out.anomalies, vec![EV_NAME_TOO_LONG]);
}

#[test]
fn too_many_labels_without_pointer_is_an_error() {
    let many = vec!["a"; 300].join(".");
    let msg = Msg::new(1, 0x0100).question(name(&many), TYPE_A).build();
    assert_eq!(
        parse_for_direction(&msg, Dir::ToServer),
        Err(MessageError::Malformed)
    );
}

#[test]
fn name_running_to_the_end_of_rdata_needs_no_terminator() {
    // A CNAME whose rdata ends without the zero label.
    let msg = Msg::new(1, 0x8180)
        .question(name("x.org"), TYPE_CNAME)
        .answer(rr(ptr(Q0), TYPE_CNAME, 1, vec![3, b'f', b'o', b'o']))
        .build();
    let rec = udp(Dir::ToClient, &msg).records[0].object.clone();
    assert_eq!(rec["answers"][0]["rdata"], "foo");
    // A label running past the rdata is malformed.
    let bad = Msg::new(1, 0x8180)
        .question(name("x.org"), TYPE_CNAME)
        .answer(rr(ptr(Q0), TYPE_CNAME, 1, vec![5, b'f', b'o', b'o']))
        .build();
    assert_eq!(
        parse_for_direction(&bad, Dir::ToClient),
        Err(MessageError::Malformed)
    );
}

// -----------------------------------------------------------------------------------
// Truncation and junk
// -----------------------------------------------------------------------------------

/// Every prefix of a message with every section and record shape.
fn rich_response() -> Vec<u8> {
    let mut soa = name_then_ptr("ns", Q0);
    soa.extend(name("hostmaster.example.org"));
    for v in [1u32, 2, 3, 4, 5] {
        soa.extend(v.to_be_bytes());
    }
    let mut srv = [1u16, 2, 3]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect::<Vec<_>>();
    srv.extend(ptr(Q0));
    let mut mx = 5u16.to_be_bytes().to_vec();
    mx.extend(ptr(Q0));
    Msg::new(77, 0x8180)
        .question(name("example.org"), TYPE_A)
        .answer(rr(ptr(Q0), TYPE_CNAME, 1, name_then_ptr("www", Q0)))
        .answer(rr(ptr(Q0), TYPE_A, 1, vec![10, 0, 0, 1]))
        .answer(rr(ptr(Q0), TYPE_MX, 1, mx))
        .answer(rr(ptr(Q0), TYPE_TXT, 1, b"\x02hi".to_vec()))
        .answer(rr(ptr(Q0), TYPE_SSHFP, 1, vec![1, 2, 0xaa, 0xbb]))
        .authority(rr(ptr(Q0), TYPE_SOA, 1, soa))
        .additional(rr(ptr(Q0), TYPE_SRV, 1, srv))
        .additional(rr(vec![0], TYPE_OPT, 0, vec![0, 10, 0, 2, 1, 2]))
        .build()
}

#[test]
fn rich_response_parses_whole() {
    let out = udp(Dir::ToClient, &rich_response());
    let rec = only_record(&out);
    assert_eq!(rec["answers"].as_array().map(Vec::len), Some(5));
    assert_eq!(rec["authorities"][0]["soa"]["mname"], "ns.example.org");
    assert_eq!(rec["additionals"][0]["srv"]["name"], "example.org");
    assert_eq!(rec["additionals"][1]["opt"][0]["data"], "0102");
    assert!(out.anomalies.is_empty());
    assert!(probe(&rich_response(), false));
}

#[test]
fn truncation_at_every_offset_never_panics() {
    let full = rich_response();
    for cut in 0..full.len() {
        let prefix = &full[..cut];
        let out = udp(Dir::ToClient, prefix);
        // Counts that no longer fit, or questions/answers cut: nothing. A cut in the
        // optional sections: the record, flagged.
        for rec in &out.records {
            assert_eq!(rec.object["type"], "response");
        }
        if out.records.is_empty() {
            assert!(out.anomalies.is_empty(), "cut {cut}: {:?}", out.anomalies);
        } else {
            assert!(
                out.anomalies == vec![EV_INVALID_AUTHORITIES]
                    || out.anomalies == vec![EV_INVALID_ADDITIONALS],
                "cut {cut}: {:?}",
                out.anomalies
            );
        }
        let _ = probe(prefix, false);
        let _ = probe(prefix, true);

        // The same prefix framed for TCP, announced at full length: it waits.
        let mut framed = tcp_frame(&full);
        framed.truncate(cut + 2);
        let mut parser = DnsParser::new(true);
        assert_eq!(run(&mut parser, Dir::ToClient, &framed), Output::default());
    }
    // Each whole-but-short message announced at its own length, over TCP.
    for cut in 0..full.len() {
        let mut parser = DnsParser::new(true);
        let _ = run(&mut parser, Dir::ToClient, &tcp_frame(&full[..cut]));
    }
}

#[test]
fn request_truncated_anywhere_yields_nothing() {
    let full = dig_request();
    for cut in 0..full.len() {
        assert_eq!(
            udp(Dir::ToServer, &full[..cut]),
            Output::default(),
            "cut {cut}"
        );
    }
}

#[test]
fn random_junk_never_panics() {
    // A fixed xorshift stream: reproducible without a dependency.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut claimed_random = 0;
    for round in 0..2000 {
        let len = usize::try_from(next() % 96).expect("small");
        let mut data: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if round % 2 == 0 && data.len() >= 12 {
            // Keep a plausible header half of the time to reach the body parsers.
            data[2] &= 0x7f;
            data[4] = 0;
            data[5] = 1;
            data[6..12].fill(0);
            data[7] = u8::try_from(round % 4).expect("small");
        }
        if round % 2 == 1 && probe(&data, false) {
            claimed_random += 1;
        }
        let _ = probe(&data, true);
        let _ = udp(Dir::ToServer, &data);
        let _ = udp(Dir::ToClient, &data);
        let mut tcp = DnsParser::new(true);
        let _ = run(&mut tcp, Dir::ToServer, &data);
    }
    // Fully random bytes are not claimed.
    assert_eq!(claimed_random, 0);
}

#[test]
fn probe_rejects_other_protocols() {
    let http = b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
    let tls = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x5a, 0x5b, 0x5c, 0x5d,
        0x5e,
    ];
    let ssh = b"SSH-2.0-OpenSSH_9.6\r\n";
    for data in [&http[..], &tls[..], &ssh[..]] {
        assert!(!probe(data, false));
        assert!(!probe(data, true));
    }
    assert!(!probe(&[0; 11], false));
    assert!(!probe(&[0; 13], true));
}

#[test]
fn probe_tells_direction() {
    assert_eq!(probe_dir(&dig_request(), false), Some(Dir::ToServer));
    assert_eq!(probe_dir(&dig_response(), false), Some(Dir::ToClient));
    assert_eq!(
        probe_dir(&tcp_frame(&dig_request()), true),
        Some(Dir::ToServer)
    );
    // Over TCP, the header alone decides while the message is incomplete.
    let framed = tcp_frame(&dig_response());
    assert_eq!(probe_dir(&framed[..20], true), Some(Dir::ToClient));
    assert_eq!(probe_dir(&dig_request(), true), None);
}

// -----------------------------------------------------------------------------------
// TCP framing
// -----------------------------------------------------------------------------------

#[test]
fn tcp_message_split_at_every_byte() {
    let stream = tcp_frame(&dig_request());
    for cut in 0..=stream.len() {
        let mut parser = DnsParser::new(true);
        let first = run(&mut parser, Dir::ToServer, &stream[..cut]);
        let second = run(&mut parser, Dir::ToServer, &stream[cut..]);
        let records: Vec<_> = first.records.iter().chain(&second.records).collect();
        assert_eq!(records.len(), 1, "cut {cut}");
        assert_eq!(
            records[0].object["queries"][0]["rrname"],
            "www.suricata-ids.org"
        );
        assert_eq!(records[0].object["tx_id"], 0);
    }
}

#[test]
fn tcp_byte_by_byte_with_several_messages() {
    let mut stream = tcp_frame(&dig_request());
    stream.extend([0, 0]); // an empty frame, skipped
    stream.extend(tcp_frame(
        &Msg::new(2, 0x0100)
            .question(name("second.example"), TYPE_MX)
            .build(),
    ));
    let mut parser = DnsParser::new(true);
    let mut records = Vec::new();
    for byte in &stream {
        records.extend(run(&mut parser, Dir::ToServer, std::slice::from_ref(byte)).records);
    }
    let names: Vec<_> = records
        .iter()
        .map(|r| r.object["queries"][0]["rrname"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("www.suricata-ids.org"), json!("second.example")]
    );
    assert_eq!(records[1].object["tx_id"], 1);
}

#[test]
fn tcp_several_messages_in_one_call_and_both_directions() {
    let mut parser = DnsParser::new(true);
    let mut requests = tcp_frame(&dig_request());
    requests.extend(tcp_frame(&dig_request()));
    let out = run(&mut parser, Dir::ToServer, &requests);
    assert_eq!(out.records.len(), 2);
    assert_eq!(out.records[1].object["tx_id"], 1);
    let out = run(&mut parser, Dir::ToClient, &tcp_frame(&dig_response()));
    assert_eq!(only_record(&out)["tx_id"], 2);
}

#[test]
fn tcp_failure_stops_the_flow_and_reports_on_the_same_chunk() {
    let mut parser = DnsParser::new(true);
    let mut stream = tcp_frame(&dig_request());
    // A response sent towards the server.
    stream.extend(tcp_frame(&dig_response()));
    stream.extend(tcp_frame(&dig_request()));
    let out = run(&mut parser, Dir::ToServer, &stream);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.anomalies, vec![EV_NOT_REQUEST]);
    // Nothing more is parsed, in either direction.
    assert_eq!(
        run(&mut parser, Dir::ToClient, &tcp_frame(&dig_response())),
        Output::default()
    );

    // A malformed message first: no transaction to carry the event.
    let mut parser = DnsParser::new(true);
    let malformed = Msg::new(1, 0x0100).question(ptr(Q0), TYPE_A).build();
    assert_eq!(
        run(&mut parser, Dir::ToServer, &tcp_frame(&malformed)),
        Output::default()
    );
    assert_eq!(
        run(&mut parser, Dir::ToServer, &tcp_frame(&dig_request())),
        Output::default()
    );

    // After a good message in the same chunk, the event shows.
    let mut parser = DnsParser::new(true);
    let mut stream = tcp_frame(&dig_request());
    stream.extend(tcp_frame(&malformed));
    let out = run(&mut parser, Dir::ToServer, &stream);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.anomalies, vec![EV_MALFORMED_DATA]);

    // An implausible header on TCP also stops the parser.
    let mut parser = DnsParser::new(true);
    let _ = run(
        &mut parser,
        Dir::ToServer,
        &tcp_frame(&Msg::new(1, 0x0100).build()),
    );
    assert!(run(&mut parser, Dir::ToServer, &tcp_frame(&dig_request()))
        .records
        .is_empty());
}

#[test]
fn tcp_gap_resynchronises_on_dns_looking_data() {
    let mut parser = DnsParser::new(true);
    let framed = tcp_frame(&dig_response());
    // Half a response, then a gap: the half is dropped.
    assert!(run(&mut parser, Dir::ToClient, &framed[..10])
        .records
        .is_empty());
    let mut out = Output::default();
    parser.gap(Dir::ToClient, 100, &mut out);
    // Junk after the gap is skipped in the response direction...
    assert_eq!(
        run(&mut parser, Dir::ToClient, b"\x00\x05junk!"),
        Output::default()
    );
    // ...and a real message resumes parsing.
    let out = run(&mut parser, Dir::ToClient, &framed);
    assert_eq!(only_record(&out)["tx_id"], 0);
}

#[test]
fn parser_name() {
    assert_eq!(DnsParser::new(false).name(), "dns");
}
