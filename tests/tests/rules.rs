//! The signature engine through its public surface: rules compiled from text, evaluated on
//! packets and app-layer buffers this test builds, for every keyword family (each matching and
//! not matching), the header grammar, rule-level errors, and loading the ET Open rule set.

use std::net::IpAddr;

use precinct::{
    applayer::{Buffer, Dir},
    detect::{
        addr::default_vars, classification::Classifications, Detector, FlowState, PacketInfo,
        RuleSet,
    },
};

fn rules(text: &str) -> RuleSet {
    let set = RuleSet::from_texts(
        &[("test.rules".into(), text.into())],
        &default_vars(),
        &Classifications::builtin(),
    );
    assert!(
        set.report.skipped.is_empty(),
        "all rules load: {:?}",
        set.report.skipped
    );
    set
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn pkt(payload: &[u8]) -> PacketInfo<'_> {
    PacketInfo {
        ts_ns: 1_000_000_000,
        src: ip("10.0.0.5"),
        sport: 40000,
        dst: ip("203.0.113.9"),
        dport: 80,
        proto: 6,
        ttl: 64,
        tcp_flags: 0x18,
        icmp_type: 0,
        icmp_code: 0,
        payload,
        dsize: payload.len(),
        stream_size: None,
        to_server: true,
        established: true,
        app_proto: None,
        flow_id: 1,
        inspect_payload: true,
    }
}

/// sids that alert for a packet.
fn packet_sids(set: &RuleSet, p: &PacketInfo<'_>) -> Vec<u32> {
    let mut d = Detector::new();
    let mut f = FlowState::default();
    let mut sids: Vec<u32> = d
        .packet(set, p, &mut f)
        .iter()
        .map(|h| set.signatures()[h.sig as usize].sid)
        .collect();
    sids.sort_unstable();
    sids
}

fn app_sids(
    set: &RuleSet,
    p: &PacketInfo<'_>,
    app: &str,
    bufs: &[(Dir, Buffer, &[u8])],
) -> Vec<u32> {
    let mut d = Detector::new();
    let mut f = FlowState::default();
    let owned: Vec<(Dir, Buffer, Vec<u8>)> =
        bufs.iter().map(|(d, n, b)| (*d, *n, b.to_vec())).collect();
    let mut sids: Vec<u32> = d
        .app(set, p, &mut f, app, &owned)
        .iter()
        .map(|h| set.signatures()[h.sig as usize].sid)
        .collect();
    sids.sort_unstable();
    sids
}

#[test]
fn content_and_its_modifiers() {
    let set = rules(
        r#"
alert tcp any any -> any any (msg:"plain"; content:"evil"; sid:1;)
alert tcp any any -> any any (msg:"nocase"; content:"EVIL"; nocase; sid:2;)
alert tcp any any -> any any (msg:"depth"; content:"evil"; depth:4; sid:3;)
alert tcp any any -> any any (msg:"offset"; content:"evil"; offset:1; sid:4;)
alert tcp any any -> any any (msg:"relative"; content:"ev"; content:"l"; distance:1; within:1; sid:5;)
alert tcp any any -> any any (msg:"negated"; content:"evil"; content:!"good"; sid:6;)
alert tcp any any -> any any (msg:"hex"; content:"|65 76|il"; sid:7;)
alert tcp any any -> any any (msg:"starts"; content:"evil"; startswith; sid:8;)
alert tcp any any -> any any (msg:"ends"; content:"bad"; endswith; sid:9;)
alert tcp any any -> any any (msg:"isdataat"; content:"evil"; isdataat:3,relative; sid:10;)
"#,
    );
    assert_eq!(
        packet_sids(&set, &pkt(b"evil is bad")),
        vec![1, 2, 3, 5, 6, 7, 8, 9, 10]
    );
    assert_eq!(
        packet_sids(&set, &pkt(b"xevil good")),
        vec![1, 2, 4, 5, 7, 10]
    );
    assert!(packet_sids(&set, &pkt(b"nothing here")).is_empty());
}

#[test]
fn packet_keywords() {
    let set = rules(
        r#"
alert tcp any any -> any any (msg:"dsize"; dsize:>5; sid:1;)
alert tcp any any -> any any (msg:"flags"; flags:PA; sid:2;)
alert tcp any any -> any any (msg:"syn"; flags:S; sid:3;)
alert ip any any -> any any (msg:"ttl"; ttl:<10; sid:4;)
alert ip any any -> any any (msg:"ip_proto"; ip_proto:tcp; sid:5;)
alert icmp any any -> any any (msg:"itype"; itype:8; icode:0; sid:6;)
alert tcp any any -> any any (msg:"to_client"; flow:to_client; sid:7;)
alert tcp any any -> any any (msg:"not_established"; flow:not_established; sid:8;)
"#,
    );
    assert_eq!(packet_sids(&set, &pkt(b"123456")), vec![1, 2, 5]);
    let mut p = pkt(b"");
    p.tcp_flags = 0x02;
    p.ttl = 3;
    p.established = false;
    p.to_server = false;
    assert_eq!(packet_sids(&set, &p), vec![3, 4, 5, 7, 8]);
    let mut icmp = pkt(b"ping");
    icmp.proto = 1;
    icmp.icmp_type = 8;
    assert_eq!(packet_sids(&set, &icmp), vec![6]);
}

#[test]
fn header_addresses_ports_and_direction() {
    let set = rules(
        r#"
alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"out to web"; sid:1;)
alert tcp [10.0.0.0/8,!10.0.0.5] any -> any any (msg:"excluded host"; sid:2;)
alert tcp any any -> any [443,8000:8100] (msg:"other ports"; sid:3;)
alert tcp 203.0.113.9 any <> 10.0.0.5 any (msg:"either way"; sid:4;)
alert udp any any -> any any (msg:"udp only"; sid:5;)
"#,
    );
    assert_eq!(packet_sids(&set, &pkt(b"x")), vec![1, 4]);
}

#[test]
fn pcre_and_byte_keywords() {
    let set = rules(
        r#"
alert tcp any any -> any any (msg:"pcre"; pcre:"/^GET \/[a-z]+\d{2}/i"; sid:1;)
alert tcp any any -> any any (msg:"relative pcre"; content:"len="; pcre:"/^\d+/R"; sid:2;)
alert tcp any any -> any any (msg:"byte_test"; content:"len="; byte_test:2,>,40,0,relative,string,dec; sid:3;)
alert tcp any any -> any any (msg:"byte_jump"; content:"|00 03|"; byte_jump:2,-2,relative; content:"end"; within:3; sid:4;)
alert tcp any any -> any any (msg:"byte_extract"; byte_extract:1,0,n; content:"x"; offset:1; depth:n; sid:5;)
"#,
    );
    assert_eq!(packet_sids(&set, &pkt(b"get /abc12 len=42")), vec![1, 2, 3]);
    assert_eq!(packet_sids(&set, &pkt(b"\x00\x03abcend")), vec![4]);
    assert_eq!(packet_sids(&set, &pkt(b"\x03aax")), vec![5]);
    assert!(packet_sids(&set, &pkt(b"\x02aax")).is_empty());
}

#[test]
fn flowbits_thresholds_and_pass() {
    let set = rules(
        r#"
alert tcp any any -> any any (msg:"setter"; content:"login"; flowbits:set,seen; flowbits:noalert; sid:1;)
alert tcp any any -> any any (msg:"checker"; content:"secret"; flowbits:isset,seen; sid:2;)
alert tcp any any -> any any (msg:"limited"; content:"spam"; threshold:type limit, track by_src, count 2, seconds 60; sid:3;)
alert tcp any any -> any any (msg:"filtered"; content:"spam"; detection_filter:track by_src, count 2, seconds 60; sid:4;)
pass tcp any any -> any any (msg:"trusted"; content:"trusted"; sid:5;)
alert tcp any any -> any any (msg:"would alert"; content:"trusted"; sid:6;)
"#,
    );
    let mut d = Detector::new();
    let mut f = FlowState::default();
    let sids = |hits: Vec<precinct::detect::Hit>| -> Vec<u32> {
        hits.iter()
            .map(|h| set.signatures()[h.sig as usize].sid)
            .collect()
    };
    assert!(
        sids(d.packet(&set, &pkt(b"secret"), &mut f)).is_empty(),
        "bit not set yet"
    );
    assert!(
        sids(d.packet(&set, &pkt(b"login"), &mut f)).is_empty(),
        "noalert"
    );
    assert_eq!(sids(d.packet(&set, &pkt(b"secret"), &mut f)), vec![2]);
    let spam: Vec<Vec<u32>> = (0..4)
        .map(|_| sids(d.packet(&set, &pkt(b"spam"), &mut f)))
        .collect();
    assert_eq!(spam, vec![vec![3], vec![3], vec![4], vec![4]]);
    assert!(
        sids(d.packet(&set, &pkt(b"trusted"), &mut f)).is_empty(),
        "pass stops later rules"
    );
}

#[test]
fn sticky_buffers_legacy_modifiers_and_transforms() {
    let set = rules(
        r#"
alert http any any -> any any (msg:"uri"; flow:to_server; http.uri; content:"/admin"; sid:1;)
alert http any any -> any any (msg:"legacy"; content:"/admin"; http_uri; content:"POST"; http_method; sid:2;)
alert http any any -> any any (msg:"host"; http.host; content:"portal.example.gov"; endswith; sid:3;)
alert http any any -> any any (msg:"ua pcre"; pcre:"/^curl\//V"; sid:4;)
alert dns any any -> any any (msg:"dotprefix"; dns.query; dotprefix; content:".example.gov"; endswith; sid:5;)
alert tls any any -> any any (msg:"sni"; tls.sni; content:"vote"; sid:6;)
alert http any any -> any any (msg:"needs both"; http.method; content:"GET"; http.uri; content:"/admin"; sid:7;)
"#,
    );
    let mut p = pkt(b"");
    p.app_proto = Some("http");
    let http: [(Dir, Buffer, &[u8]); 4] = [
        (Dir::ToServer, Buffer::HttpMethod, b"POST"),
        (Dir::ToServer, Buffer::HttpUri, b"/admin/login"),
        (Dir::ToServer, Buffer::HttpHost, b"portal.example.gov"),
        (Dir::ToServer, Buffer::HttpUserAgent, b"curl/8.5.0"),
    ];
    assert_eq!(app_sids(&set, &p, "http", &http), vec![1, 2, 3, 4]);
    p.app_proto = Some("dns");
    assert_eq!(
        app_sids(
            &set,
            &p,
            "dns",
            &[(Dir::ToServer, Buffer::DnsQuery, b"www.example.gov")]
        ),
        vec![5]
    );
    assert!(
        app_sids(
            &set,
            &p,
            "dns",
            &[(Dir::ToServer, Buffer::DnsQuery, b"notexample.gov")]
        )
        .is_empty(),
        "dotprefix anchors the label"
    );
    p.app_proto = Some("tls");
    assert_eq!(
        app_sids(
            &set,
            &p,
            "tls",
            &[(Dir::ToServer, Buffer::TlsSni, b"vote.example.gov")]
        ),
        vec![6]
    );
    p.app_proto = Some("http");
    assert!(
        app_sids(&set, &p, "tls", &[(Dir::ToServer, Buffer::TlsSni, b"vote")]).is_empty(),
        "app protocol must match"
    );
}

/// The live agent swaps rule sets under running flows: what already alerted, and threshold
/// windows, belong to the rule (gid, sid), not to its index in one set.
#[test]
fn a_new_rule_set_keeps_flow_state_by_rule_identity() {
    let before = rules(
        r#"
alert http any any -> any any (msg:"voter uri"; http.uri; content:"/voter"; sid:1;)
alert http any any -> any any (msg:"limited"; http.uri; content:"/voter"; threshold:type limit, track by_src, count 1, seconds 60; sid:3;)
"#,
    );
    // sid 2 is new and takes the index sid 1 had; sid 1 and sid 3 stay.
    let after = rules(
        r#"
alert http any any -> any any (msg:"voter uri, new rule"; http.uri; content:"/voter"; sid:2;)
alert http any any -> any any (msg:"voter uri"; http.uri; content:"/voter"; sid:1;)
alert http any any -> any any (msg:"limited"; http.uri; content:"/voter"; threshold:type limit, track by_src, count 1, seconds 60; sid:3;)
"#,
    );
    let mut p = pkt(b"");
    p.app_proto = Some("http");
    let mut d = Detector::new();
    let mut f = FlowState::default();
    let sids = |set: &RuleSet, hits: Vec<precinct::detect::Hit>| -> Vec<u32> {
        let mut v: Vec<u32> = hits
            .iter()
            .map(|h| set.signatures()[h.sig as usize].sid)
            .collect();
        v.sort_unstable();
        v
    };
    let request = vec![
        (Dir::ToServer, Buffer::HttpMethod, b"GET".to_vec()),
        (Dir::ToServer, Buffer::HttpUri, b"/voter/lookup".to_vec()),
    ];
    let hits = d.app(&before, &p, &mut f, "http", &request);
    assert_eq!(sids(&before, hits), vec![1, 3]);
    // More of the same request (its headers) after the swap: only the new rule alerts.
    let headers = vec![(Dir::ToServer, Buffer::HttpUserAgent, b"curl/8".to_vec())];
    let hits = d.app(&after, &p, &mut f, "http", &headers);
    assert_eq!(sids(&after, hits), vec![2]);
    // The next request: sid 1 alerts again, sid 3 stays within its limit across the swap.
    let hits = d.app(&after, &p, &mut f, "http", &request);
    assert_eq!(sids(&after, hits), vec![1, 2]);
}

#[test]
fn refusals_name_the_keyword_and_errors_the_place() {
    let text = r#"
alert tcp any any -> any any (msg:"ok"; content:"x"; sid:1;)
alert tcp any any -> any any (msg:"lua"; lua:script.lua; sid:2;)
alert smb any any -> any any (msg:"smb"; sid:3;)
alert tcp any any -> any any (msg:"no sid"; content:"x";)
alert tcp any any => any any (msg:"bad dir"; sid:5;)
alert tcp any any -> any any (msg:"bad class"; classtype:nope; sid:6;)
alert tcp $NOPE any -> any any (msg:"bad var"; sid:7;)
alert tcp any any -> any any (msg:"dup"; sid:1;)
alert tcp any any -> any any (msg:"side"; stream_size:sever,<,5; sid:9;)
alert tcp any any -> any any (msg:"op"; stream_size:server,<<,5; sid:10;)
alert tcp any any -> any any (msg:"parts"; stream_size:server,<; sid:11;)
alert tcp any any -> any any (msg:"number"; stream_size:server,<,-1; sid:12;)
alert tcp any any -> any any (msg:"ok size"; stream_size: either , >= , 10 ; sid:13;)
alert smtp any any -> any any (msg:"smtp attachment"; file.data; content:"x"; sid:14;)
alert dns any any -> any any (msg:"no opcode"; dns.opcode:16; sid:15;)
"#;
    let set = RuleSet::from_texts(
        &[("f.rules".into(), text.into())],
        &default_vars(),
        &Classifications::builtin(),
    );
    assert_eq!(set.report.loaded, 2);
    let reasons: Vec<(String, Option<u32>, String)> = set
        .report
        .skipped
        .iter()
        .map(|s| (s.origin.clone(), s.sid, s.reason.to_string()))
        .collect();
    assert_eq!(reasons.len(), 13, "{reasons:#?}");
    assert_eq!(
        reasons[12].2,
        "dns.opcode: \"16\" is not an opcode (0 to 15)"
    );
    assert_eq!(
        reasons[11].2, "unsupported keyword file.data of smtp",
        "SMTP attachments are not decoded: a file.data rule on smtp is refused, not silent"
    );
    let stream: Vec<&str> = reasons[7..11].iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        stream,
        [
            "stream_size: unknown side \"sever\"",
            "stream_size: unknown comparison \"<<\"",
            "stream_size: expected <client|server|both|either>,<op>,<number>",
            "stream_size: \"-1\" is not a number of bytes",
        ]
    );
    assert_eq!(
        reasons[0],
        (
            "f.rules:3".into(),
            Some(2),
            "unsupported keyword lua".into()
        )
    );
    assert_eq!(
        reasons[1],
        (
            "f.rules:4".into(),
            Some(3),
            "unsupported protocol smb".into()
        )
    );
    assert!(reasons[2].2.contains("no sid"), "{reasons:?}");
    assert_eq!(
        reasons[3].0, "f.rules:6:19",
        "parse errors carry the column"
    );
    assert!(reasons[4].2.contains("classtype"), "{reasons:?}");
    assert!(
        reasons[5].2.contains("$NOPE") || reasons[5].2.contains("NOPE"),
        "{reasons:?}"
    );
    assert!(reasons[6].2.contains("duplicate sid 1"), "{reasons:?}");
}

/// The Emerging Threats Open rule set from `../shared`: load it as the sensor would and
/// check what is refused is only what this engine does not implement.
#[test]
#[cfg_attr(
    not(shared),
    ignore = "needs ../shared/rules/et-open beside the checkout"
)]
fn et_open_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/rules/et-open");
    let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(&dir) {
        Ok(d) => d
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rules"))
            .collect(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.sort();
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let set = RuleSet::load(
        &refs,
        &default_vars(),
        &Classifications::builtin(),
        precinct::detect::Matcher::Auto,
    )
    .expect("readable");
    let r = &set.report;
    assert!(
        r.loaded >= 24_500,
        "{} loaded; by reason: {:?}",
        r.loaded,
        r.by_reason()
    );
    for s in &r.skipped {
        let k = s.reason.kind();
        assert!(
            k.starts_with("unsupported"),
            "unexpected refusal at {}: {}",
            s.origin,
            s.reason
        );
    }
}
