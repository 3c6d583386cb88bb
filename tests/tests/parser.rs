//! Host tests of the shared header parser on crafted packets: every protocol, every
//! malformation, truncation at every byte offset, and bounded IPv6 extension walks.

use sensor_common::{
    flow::{FlowKey, FlowStats},
    parse::{parse, Fragment, Outcome, Parsed, FAMILY_IPV4, FAMILY_IPV6},
};
use tests::packets::{self, corpus, eth, ext_generic, ipv6, udp};

fn frame(name: &str) -> Vec<u8> {
    corpus()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no corpus frame {name}"))
        .1
}

fn parsed(name: &str) -> Parsed {
    parse(frame(name).as_slice())
}

#[test]
fn every_corpus_frame_has_the_expected_outcome() {
    use Outcome::*;
    let expected = [
        ("ipv4_tcp_syn", Ok),
        ("ipv4_tcp_synack", Ok),
        ("ipv4_tcp_data", Ok),
        ("ipv4_tcp_fin", Ok),
        ("ipv4_udp_query", Ok),
        ("ipv4_udp_reply", Ok),
        ("ipv4_icmp_echo", Ok),
        ("ipv4_icmp_reply", Ok),
        ("ipv4_icmp_unreach", Ok),
        ("ipv4_gre", Ok),
        ("ipv4_sctp", Ok),
        ("ipv4_options_udp", Ok),
        ("ipv4_frag_first", Ok),
        ("ipv4_frag_later", Ok),
        ("vlan_ipv4_tcp", Ok),
        ("qinq_ipv4_udp", Ok),
        ("ipv6_udp", Ok),
        ("ipv6_udp_reply", Ok),
        ("ipv6_tcp_syn", Ok),
        ("ipv6_icmpv6_echo", Ok),
        ("ipv6_icmpv6_reply", Ok),
        ("ipv6_hbh_dst_udp", Ok),
        ("ipv6_frag_first_udp", Ok),
        ("ipv6_frag_later", Ok),
        ("ipv6_ext_too_many", TooManyIpv6Extensions),
        ("ipv6_no_next_header", Ok),
        ("vlan_ipv6_udp", Ok),
        ("three_vlan_tags_ipv4", Ok),
        ("pppoe_ipv4_tcp", Ok),
        ("pppoe_ipv6_udp", Ok),
        ("pppoe_lcp", NonIp),
        ("mpls_ipv4_udp", Ok),
        ("mpls_pw_ipv4_tcp", Ok),
        ("fabricpath_ipv4_tcp", Ok),
        ("pbb_ipv4_udp", Ok),
        ("vntag_ipv4_udp", Ok),
        ("arp", NonIp),
        ("truncated_ethernet", TruncatedEthernet),
        ("truncated_vlan", TruncatedVlan),
        ("too_many_vlan_tags", TooManyVlanTags),
        ("truncated_pppoe", TruncatedLinkLayer),
        ("mpls_without_bottom", TooManyLinkLayers),
        ("truncated_ipv4", TruncatedIpv4),
        ("bad_ipv4_version", BadIpv4Version),
        ("bad_ipv4_ihl", BadIpv4HeaderLength),
        ("bad_ipv4_total_length", BadIpv4TotalLength),
        ("truncated_tcp", TruncatedTcp),
        ("bad_tcp_data_offset", BadTcpHeaderLength),
        ("truncated_udp", TruncatedUdp),
        ("truncated_sctp", TruncatedSctp),
        ("truncated_icmp", TruncatedIcmp),
        ("truncated_icmpv6", TruncatedIcmpv6),
        ("truncated_ipv6", TruncatedIpv6),
        ("bad_ipv6_version", BadIpv6Version),
        ("truncated_ipv6_extension", TruncatedIpv6Extension),
    ];
    let names: Vec<String> = corpus().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names.len(),
        expected.len(),
        "every corpus frame has an expectation"
    );
    for (name, outcome) in expected {
        assert_eq!(parsed(name).outcome, outcome, "{name}");
    }
}

#[test]
fn ipv4_tcp_fields() {
    let p = parsed("ipv4_tcp_data");
    assert_eq!(p.family, FAMILY_IPV4);
    assert_eq!(p.proto, 6);
    assert_eq!(&p.src[..4], &[192, 0, 2, 10]);
    assert_eq!(&p.dst[..4], &[198, 51, 100, 20]);
    assert_eq!(&p.src[4..], &[0u8; 12]);
    assert_eq!((p.sport, p.dport), (40000, 443));
    assert_eq!(p.tcp_flags, 0x18);
    assert_eq!(p.ttl, 64);
    assert_eq!((p.l3_off, p.l4_off, p.payload_off), (14, 34, 54));
    assert_eq!(p.fragment, Fragment::None);
}

#[test]
fn sctp_associations_are_keyed_by_their_ports() {
    let p = parsed("ipv4_sctp");
    assert_eq!(p.proto, 132);
    assert_eq!((p.sport, p.dport), (2905, 2905));
    assert_eq!(
        (p.l4_off, p.payload_off),
        (34, 46),
        "payload after the 12-byte header"
    );
    // Two associations between the same hosts are two flows, as two TCP connections are.
    let key = |src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16| {
        let frame = packets::v4_frame(src, dst, 132, &packets::sctp(sport, dport, b""));
        FlowKey::from_parsed(&parse(frame.as_slice()), 2).0
    };
    let (h1, h2) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let ka = key(h1, h2, 5000, 36412);
    assert_ne!(ka, key(h1, h2, 5001, 36412));
    let kr = key(h2, h1, 36412, 5000);
    assert_eq!(ka, kr, "both directions of an association are one flow");
}

#[test]
fn ipv4_options_move_the_l4_header() {
    let p = parsed("ipv4_options_udp");
    assert_eq!((p.l4_off, p.payload_off), (14 + 28, 14 + 28 + 8));
    assert_eq!((p.sport, p.dport), (1000, 2000));
}

#[test]
fn fragments_first_carries_ports_later_does_not() {
    let first = parsed("ipv4_frag_first");
    assert_eq!(first.fragment, Fragment::First);
    assert_eq!((first.sport, first.dport), (1000, 2000));
    let later = parsed("ipv4_frag_later");
    assert_eq!(later.fragment, Fragment::Later);
    assert_eq!((later.sport, later.dport), (0, 0));
    assert_eq!(later.proto, 17);
    let (k_first, _) = FlowKey::from_parsed(&first, 1);
    let (k_later, _) = FlowKey::from_parsed(&later, 1);
    assert_eq!(
        (k_later.port_a, k_later.port_b),
        (0, 0),
        "later fragments use the 3-tuple"
    );
    assert_ne!(k_first, k_later);
    let v6_first = parsed("ipv6_frag_first_udp");
    assert_eq!(
        (v6_first.fragment, v6_first.proto, v6_first.dport),
        (Fragment::First, 17, 8)
    );
    let v6_later = parsed("ipv6_frag_later");
    assert_eq!(
        (v6_later.fragment, v6_later.proto, v6_later.sport),
        (Fragment::Later, 17, 0)
    );
}

#[test]
fn vlan_and_qinq_tags_are_peeled() {
    let v = parsed("vlan_ipv4_tcp");
    assert_eq!((v.vlan, v.vlan_tags, v.l3_off, v.dport), (100, 1, 18, 80));
    let q = parsed("qinq_ipv4_udp");
    assert_eq!(
        (q.vlan, q.vlan_tags, q.l3_off),
        (200, 2, 22),
        "outer tag id is the flow's VLAN"
    );
    assert_eq!(q.vlan_inner, 300, "the second tag's id is kept too");
    let v6 = parsed("vlan_ipv6_udp");
    assert_eq!((v6.vlan, v6.family, v6.dport), (7, FAMILY_IPV6, 10));
    let three = parsed("three_vlan_tags_ipv4");
    assert_eq!(
        (three.vlan, three.vlan_inner, three.vlan_tags, three.l3_off),
        (10, 20, 3, 26)
    );
}

#[test]
fn link_layers_before_ip_are_walked() {
    // (frame, L3 offset, destination port): PPPoE's 8 bytes (header and PPP protocol), two
    // MPLS labels, a pseudowire's label + control word + inner Ethernet, FabricPath's FTag
    // and inner Ethernet, 802.1ah's I-TAG and customer addresses, VN-Tag's 4 bytes.
    for (name, l3, dport) in [
        ("pppoe_ipv4_tcp", 14 + 8, 80),
        ("pppoe_ipv6_udp", 14 + 8, 53),
        ("mpls_ipv4_udp", 14 + 8, 2),
        ("mpls_pw_ipv4_tcp", 14 + 4 + 4 + 14, 443),
        ("fabricpath_ipv4_tcp", 14 + 2 + 14, 80),
        ("pbb_ipv4_udp", 14 + 4 + 14, 2),
        ("vntag_ipv4_udp", 14 + 6, 2),
    ] {
        let p = parsed(name);
        assert_eq!(p.outcome, Outcome::Ok, "{name}");
        assert_eq!((p.l3_off, p.dport), (l3, dport), "{name}");
        assert!(p.is_trackable(), "{name}");
    }
    // Every cut inside the link-layer headers is classified, never read past.
    for name in [
        "pppoe_ipv4_tcp",
        "mpls_pw_ipv4_tcp",
        "fabricpath_ipv4_tcp",
        "pbb_ipv4_udp",
    ] {
        let f = frame(name);
        let l3 = parse(f.as_slice()).l3_off as usize;
        for cut in 14..l3 {
            let o = parse(&f[..cut]).outcome;
            assert!(
                matches!(o, Outcome::TruncatedLinkLayer),
                "{name} cut at {cut}: {o:?}"
            );
        }
    }
}

#[test]
fn ipv6_fields_and_extension_walk() {
    let p = parsed("ipv6_udp");
    assert_eq!(p.family, FAMILY_IPV6);
    assert_eq!(
        p.src,
        "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .expect("addr")
            .octets()
    );
    assert_eq!((p.sport, p.dport, p.l4_off), (5000, 53, 54));
    let e = parsed("ipv6_hbh_dst_udp");
    assert_eq!((e.proto, e.l4_off, e.dport), (17, 54 + 16, 8));
    let none = parsed("ipv6_no_next_header");
    assert_eq!((none.outcome, none.proto), (Outcome::Ok, 59));
}

#[test]
fn ipv6_extension_chains_are_bounded() {
    let s = "2001:db8::a".parse().expect("addr");
    let d = "2001:db8::b".parse().expect("addr");
    for n in 0..=12usize {
        let exts: Vec<(u8, Vec<u8>)> = (0..n).map(|_| (60, ext_generic())).collect();
        let f = eth(&[], 0x86dd, &ipv6(s, d, &exts, 17, &udp(1, 2, b"z")));
        let p = parse(f.as_slice());
        if n <= 8 {
            assert_eq!(
                (p.outcome, p.proto, p.dport),
                (Outcome::Ok, 17, 2),
                "{n} extensions"
            );
        } else {
            assert_eq!(p.outcome, Outcome::TooManyIpv6Extensions, "{n} extensions");
        }
    }
    // A header that claims to be far longer than the packet.
    let mut big = ext_generic();
    big[1] = 255;
    let f = eth(&[], 0x86dd, &ipv6(s, d, &[(0, big)], 17, &udp(1, 2, b"z")));
    let mut f6 = f.clone();
    // Keep the IPv6 payload length honest for the truncated frame.
    let plen = (f6.len() - 54) as u16;
    f6[18..20].copy_from_slice(&plen.to_be_bytes());
    assert_eq!(
        parse(f6.as_slice()).outcome,
        Outcome::TruncatedIpv6Extension
    );
}

#[test]
fn icmp_echo_uses_the_identifier_for_both_ports() {
    let req = parsed("ipv4_icmp_echo");
    let rep = parsed("ipv4_icmp_reply");
    assert_eq!((req.icmp_type, req.sport, req.dport), (8, 77, 77));
    assert_eq!((rep.icmp_type, rep.sport, rep.dport), (0, 77, 77));
    let (kq, dq) = FlowKey::from_parsed(&req, 3);
    let (kr, dr) = FlowKey::from_parsed(&rep, 3);
    assert_eq!(kq, kr, "request and reply share a flow");
    assert_ne!(dq, dr);
    let unreach = parsed("ipv4_icmp_unreach");
    assert_eq!(
        (unreach.icmp_type, unreach.icmp_code, unreach.sport),
        (3, 3, 0)
    );
}

#[test]
fn both_directions_normalise_to_one_key() {
    for (fwd, rev) in [
        ("ipv4_tcp_syn", "ipv4_tcp_synack"),
        ("ipv4_udp_query", "ipv4_udp_reply"),
        ("ipv6_udp", "ipv6_udp_reply"),
        ("ipv6_icmpv6_echo", "ipv6_icmpv6_reply"),
    ] {
        let (kf, df) = FlowKey::from_parsed(&parsed(fwd), 2);
        let (kr, dr) = FlowKey::from_parsed(&parsed(rev), 2);
        assert_eq!(kf, kr, "{fwd} / {rev}");
        assert_eq!(df ^ 1, dr, "{fwd} / {rev}");
        assert!(kf.addr_a <= kf.addr_b);
    }
}

#[test]
fn accounting_orients_the_client() {
    let syn = parsed("ipv4_tcp_syn");
    let synack = parsed("ipv4_tcp_synack");
    let (key, d_syn) = FlowKey::from_parsed(&syn, 1);
    let (_, d_synack) = FlowKey::from_parsed(&synack, 1);
    // Seen first: the SYN-ACK (as when a CPU only sees the reply); its receiver is the client.
    let mut s = FlowStats::default();
    s.account(&synack, d_synack, 1, 60, 100);
    s.account(&syn, d_syn, 1, 60, 200);
    assert_eq!(usize::from(s.client_dir), d_syn);
    assert_eq!(s.pkts[d_syn], 1);
    assert_eq!(s.tcp_flags[d_synack], 0x12);
    assert_eq!((s.first_ns, s.last_ns), (100, 200));
    assert_eq!(key.proto, 6);
    // Merging per-CPU slots: the earliest slot decides the client, counts add up.
    let mut other = FlowStats::default();
    other.account(&syn, d_syn, 2, 120, 50);
    let merged = FlowStats::merge([&s, &other, &FlowStats::default()]);
    assert_eq!(merged.first_ns, 50);
    assert_eq!(merged.pkts[d_syn], 3);
    assert_eq!(merged.bytes[d_syn], 180);
    assert_eq!(usize::from(merged.client_dir), d_syn);
}

/// Cutting a well-formed frame anywhere must never panic and never yield `Ok` with headers
/// that are not all there; IPv4 and IPv6 length fields make every cut detectable.
#[test]
fn truncation_at_every_offset_is_classified() {
    for (name, f) in corpus() {
        let full = parse(f.as_slice());
        if full.outcome != Outcome::Ok || name == "ipv6_no_next_header" {
            continue;
        }
        for cut in 0..f.len() {
            let p = parse(&f[..cut]);
            assert_ne!(
                p.outcome,
                Outcome::Ok,
                "{name} cut at {cut} of {} parsed as Ok",
                f.len()
            );
            if cut < 14 {
                assert_eq!(p.outcome, Outcome::TruncatedEthernet, "{name} cut at {cut}");
            }
        }
    }
}

/// Arbitrary bytes: the parser must not panic, whatever it reads.
#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = corpus();
    for i in 0..20_000 {
        let (_, mut f) = base[i % base.len()].clone();
        // Flip a few bytes of a real frame so parsing goes deep before it meets garbage.
        for _ in 0..(1 + next() % 4) {
            if f.is_empty() {
                break;
            }
            let at = (next() % f.len() as u64) as usize;
            f[at] = next() as u8;
        }
        let p = parse(f.as_slice());
        if p.outcome == Outcome::Ok {
            assert!((p.payload_off as usize) <= f.len());
        }
    }
}

#[test]
fn packets_longer_than_64k_keep_their_offsets() {
    // A GRO/GSO packet on a host capture: IPv4 with the total length 0 (BIG TCP), IPv6 with
    // payload length 0. Offsets past 65,535 must not wrap.
    let big = vec![b'x'; 100_000];
    let v4 = packets::v4_frame(
        [192, 0, 2, 1],
        [192, 0, 2, 2],
        6,
        &packets::tcp(1, 2, 0x18, &big),
    );
    assert_eq!(&v4[16..18], &[0, 0], "the builder writes BIG TCP's 0");
    let p = parse(v4.as_slice());
    assert_eq!(p.outcome, Outcome::Ok);
    assert_eq!((p.l4_off, p.payload_off), (34, 54));
    assert_eq!(p.ip_end as usize, v4.len());
    assert_eq!(p.ip_end - p.payload_off, 100_000);
    let v6 = packets::v6_frame("2001:db8::1", "2001:db8::2", 17, &udp(1, 2, &big));
    let p = parse(v6.as_slice());
    assert_eq!(p.outcome, Outcome::Ok);
    assert_eq!((p.l4_off, p.payload_off), (54, 62));
    assert_eq!(p.ip_end as usize, v6.len());
    // A total length of 0 on a packet that fits in 65,535 bytes is still wrong.
    let mut small = packets::v4_frame(
        [192, 0, 2, 1],
        [192, 0, 2, 2],
        6,
        &packets::tcp(1, 2, 0x18, b"x"),
    );
    small[16..18].copy_from_slice(&[0, 0]);
    assert_eq!(parse(small.as_slice()).outcome, Outcome::BadIpv4TotalLength);
}

#[test]
fn checksum_helper_matches_rfc1071_example() {
    // RFC 1071 section 3 example: one's complement sum 0xddf2, so the checksum is !0xddf2.
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(packets::checksum(&data), !0xddf2);
}
