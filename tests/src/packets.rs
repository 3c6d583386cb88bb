//! A small packet builder (Ethernet, VLAN, IPv4 with options and fragments, IPv6 with
//! extension headers, TCP, UDP, ICMP, ICMPv6) and a named corpus of well-formed and malformed
//! frames that the parser, kernel and lab tests share.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Source MAC used by built frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC used by built frames.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Internet checksum over `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet frame with optional VLAN tags (outer first; the outermost of two uses 0x88a8).
pub fn eth(vlans: &[u16], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    for (i, vid) in vlans.iter().enumerate() {
        let tpid: u16 = if vlans.len() > 1 && i == 0 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A PPPoE session-stage header (RFC 2516, session 0x0042) and the PPP protocol, before
/// `payload`: what follows ethertype 0x8864.
pub fn pppoe(ppp_protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x11, 0x00, 0x00, 0x42];
    // The PPPoE length covers the PPP protocol field and the payload.
    p.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    p.extend_from_slice(&ppp_protocol.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An MPLS label stack (each label with TTL 64, the last one marked bottom of stack) before
/// `payload`: what follows ethertype 0x8847.
pub fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let bos = u32::from(i + 1 == labels.len());
        p.extend_from_slice(&((label << 12) | (bos << 8) | 64).to_be_bytes());
    }
    p.extend_from_slice(payload);
    p
}

/// An Ethernet frame without its first 12 bytes (addresses): what a header that wraps a whole
/// frame (FabricPath, 802.1ah, an MPLS pseudowire) carries after its own fields.
pub fn inner_frame(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb];
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header fields that tests vary.
#[derive(Clone, Debug)]
pub struct V4 {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub proto: u8,
    /// Options (padded to 4 bytes by the builder).
    pub options: Vec<u8>,
    /// Flags and fragment offset field (MF = 0x2000, offset in 8-byte units).
    pub frag: u16,
    /// TTL.
    pub ttl: u8,
}

impl V4 {
    /// A plain header.
    pub fn new(src: [u8; 4], dst: [u8; 4], proto: u8) -> V4 {
        V4 {
            src: src.into(),
            dst: dst.into(),
            proto,
            options: Vec::new(),
            frag: 0,
            ttl: 64,
        }
    }
}

/// IPv4 packet (header with checksum + payload).
pub fn ipv4(h: &V4, payload: &[u8]) -> Vec<u8> {
    let mut opts = h.options.clone();
    while !opts.len().is_multiple_of(4) {
        opts.push(0);
    }
    let ihl = 20 + opts.len();
    // Longer than the field holds: 0, as Linux's BIG TCP writes it into a GSO/GRO packet.
    let total = u16::try_from(ihl + payload.len()).unwrap_or(0);
    let mut p = vec![0x40 | (ihl / 4) as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&0x1234u16.to_be_bytes());
    p.extend_from_slice(&h.frag.to_be_bytes());
    p.push(h.ttl);
    p.push(h.proto);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&h.src.octets());
    p.extend_from_slice(&h.dst.octets());
    p.extend_from_slice(&opts);
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// IPv6 packet: `exts` are (next-header value of the extension, its bytes) in order.
pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    exts: &[(u8, Vec<u8>)],
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    let first = exts.first().map(|(nh, _)| *nh).unwrap_or(proto);
    for (i, (_, bytes)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map(|(nh, _)| *nh).unwrap_or(proto);
        let mut b = bytes.clone();
        b[0] = next;
        body.extend_from_slice(&b);
    }
    body.extend_from_slice(payload);
    let mut p = vec![0x60, 0, 0, 0];
    // Longer than the field holds: 0, a jumbogram (RFC 2675) as a GRO capture shows it.
    p.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
    p.push(first);
    p.push(64);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&body);
    p
}

/// An 8-byte IPv6 extension header of the generic (hop-by-hop, destination options) shape.
pub fn ext_generic() -> Vec<u8> {
    vec![0, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 fragment header: `offset` in 8-byte units, `more` fragments.
pub fn ext_fragment(offset: u16, more: bool) -> Vec<u8> {
    let field = (offset << 3) | u16::from(more);
    let mut b = vec![0, 0];
    b.extend_from_slice(&field.to_be_bytes());
    b.extend_from_slice(&0xabcd_u32.to_be_bytes());
    b
}

/// TCP segment (checksum left zero: the sensor does not validate it).
pub fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.push(5 << 4);
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

/// UDP datagram (checksum zero).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// SCTP packet: the common header (ports, verification tag, checksum left 0) and one DATA
/// chunk carrying `payload` (RFC 9260 §3).
pub fn sctp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(28 + payload.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    // DATA: type 0, flags B|E, length, TSN, stream id, stream sequence, payload protocol id.
    s.extend_from_slice(&[0, 0x03]);
    s.extend_from_slice(&((16 + payload.len()) as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    s.extend_from_slice(payload);
    while s.len() % 4 != 0 {
        s.push(0);
    }
    s
}

/// ICMP or ICMPv6 message with identifier and sequence (meaningful for echo).
pub fn icmp(kind: u8, code: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut i = vec![kind, code, 0, 0];
    i.extend_from_slice(&id.to_be_bytes());
    i.extend_from_slice(&seq.to_be_bytes());
    i.extend_from_slice(payload);
    let c = checksum(&i);
    i[2..4].copy_from_slice(&c.to_be_bytes());
    i
}

/// IPv4 frame convenience.
pub fn v4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    eth(&[], 0x0800, &ipv4(&V4::new(src, dst, proto), l4))
}

/// IPv6 frame convenience.
pub fn v6_frame(src: &str, dst: &str, proto: u8, l4: &[u8]) -> Vec<u8> {
    let s: Ipv6Addr = src.parse().expect("test address");
    let d: Ipv6Addr = dst.parse().expect("test address");
    eth(&[], 0x86dd, &ipv6(s, d, &[], proto, l4))
}

/// The named corpus: every protocol the parser knows, both directions of a few flows, and
/// malformed frames. Names are unique.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let a = [192, 0, 2, 10];
    let b = [198, 51, 100, 20];
    let mut c: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, f: Vec<u8>| c.push((name.to_owned(), f));
    add(
        "ipv4_tcp_syn",
        v4_frame(a, b, 6, &tcp(40000, 443, 0x02, &[])),
    );
    add(
        "ipv4_tcp_synack",
        v4_frame(b, a, 6, &tcp(443, 40000, 0x12, &[])),
    );
    add(
        "ipv4_tcp_data",
        v4_frame(a, b, 6, &tcp(40000, 443, 0x18, b"GET / HTTP/1.1\r\n\r\n")),
    );
    add(
        "ipv4_tcp_fin",
        v4_frame(a, b, 6, &tcp(40000, 443, 0x11, &[])),
    );
    add(
        "ipv4_udp_query",
        v4_frame(a, b, 17, &udp(5353, 53, &[7u8; 40])),
    );
    add(
        "ipv4_udp_reply",
        v4_frame(b, a, 17, &udp(53, 5353, &[9u8; 90])),
    );
    add(
        "ipv4_icmp_echo",
        v4_frame(a, b, 1, &icmp(8, 0, 77, 1, &[1u8; 56])),
    );
    add(
        "ipv4_icmp_reply",
        v4_frame(b, a, 1, &icmp(0, 0, 77, 1, &[1u8; 56])),
    );
    add(
        "ipv4_icmp_unreach",
        v4_frame(b, a, 1, &icmp(3, 3, 0, 0, &[0u8; 28])),
    );
    add("ipv4_gre", v4_frame(a, b, 47, &[0u8; 24]));
    add("ipv4_sctp", v4_frame(a, b, 132, &sctp(2905, 2905, b"m3ua")));
    let mut opt = V4::new(a, b, 17);
    opt.options = vec![0x94, 0x04, 0, 0, 1, 1, 1, 0];
    add(
        "ipv4_options_udp",
        eth(&[], 0x0800, &ipv4(&opt, &udp(1000, 2000, b"opts"))),
    );
    let mut first = V4::new(a, b, 17);
    first.frag = 0x2000;
    add(
        "ipv4_frag_first",
        eth(&[], 0x0800, &ipv4(&first, &udp(1000, 2000, &[5u8; 64]))),
    );
    let mut later = V4::new(a, b, 17);
    later.frag = 9;
    add(
        "ipv4_frag_later",
        eth(&[], 0x0800, &ipv4(&later, &[5u8; 40])),
    );
    add(
        "vlan_ipv4_tcp",
        eth(
            &[100],
            0x0800,
            &ipv4(&V4::new(a, b, 6), &tcp(1234, 80, 0x02, &[])),
        ),
    );
    add(
        "qinq_ipv4_udp",
        eth(
            &[200, 300],
            0x0800,
            &ipv4(&V4::new(a, b, 17), &udp(1, 2, b"q")),
        ),
    );
    add(
        "ipv6_udp",
        v6_frame("2001:db8::1", "2001:db8::2", 17, &udp(5000, 53, &[3u8; 33])),
    );
    add(
        "ipv6_udp_reply",
        v6_frame("2001:db8::2", "2001:db8::1", 17, &udp(53, 5000, &[4u8; 77])),
    );
    add(
        "ipv6_tcp_syn",
        v6_frame("2001:db8::1", "2001:db8::2", 6, &tcp(50000, 22, 0x02, &[])),
    );
    add(
        "ipv6_icmpv6_echo",
        v6_frame(
            "2001:db8::1",
            "2001:db8::2",
            58,
            &icmp(128, 0, 9, 1, &[2u8; 16]),
        ),
    );
    add(
        "ipv6_icmpv6_reply",
        v6_frame(
            "2001:db8::2",
            "2001:db8::1",
            58,
            &icmp(129, 0, 9, 1, &[2u8; 16]),
        ),
    );
    let (s6, d6): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::a".parse().expect("addr"),
        "2001:db8::b".parse().expect("addr"),
    );
    add(
        "ipv6_hbh_dst_udp",
        eth(
            &[],
            0x86dd,
            &ipv6(
                s6,
                d6,
                &[(0, ext_generic()), (60, ext_generic())],
                17,
                &udp(7, 8, b"x"),
            ),
        ),
    );
    add(
        "ipv6_frag_first_udp",
        eth(
            &[],
            0x86dd,
            &ipv6(
                s6,
                d6,
                &[(44, ext_fragment(0, true))],
                17,
                &udp(7, 8, &[0u8; 32]),
            ),
        ),
    );
    add(
        "ipv6_frag_later",
        eth(
            &[],
            0x86dd,
            &ipv6(s6, d6, &[(44, ext_fragment(4, false))], 17, &[0u8; 32]),
        ),
    );
    let many: Vec<(u8, Vec<u8>)> = (0..9).map(|_| (60, ext_generic())).collect();
    add(
        "ipv6_ext_too_many",
        eth(&[], 0x86dd, &ipv6(s6, d6, &many, 17, &udp(7, 8, b"x"))),
    );
    add(
        "ipv6_no_next_header",
        eth(&[], 0x86dd, &ipv6(s6, d6, &[], 59, &[])),
    );
    add(
        "vlan_ipv6_udp",
        eth(&[7], 0x86dd, &ipv6(s6, d6, &[], 17, &udp(9, 10, b"v"))),
    );
    add(
        "three_vlan_tags_ipv4",
        eth(
            &[10, 20, 30],
            0x0800,
            &ipv4(&V4::new(a, b, 17), &udp(1, 2, b"3")),
        ),
    );
    add(
        "pppoe_ipv4_tcp",
        eth(
            &[],
            0x8864,
            &pppoe(0x0021, &ipv4(&V4::new(a, b, 6), &tcp(1234, 80, 0x02, &[]))),
        ),
    );
    add(
        "pppoe_ipv6_udp",
        eth(
            &[],
            0x8864,
            &pppoe(0x0057, &ipv6(s6, d6, &[], 17, &udp(9, 53, b"p"))),
        ),
    );
    add("pppoe_lcp", eth(&[], 0x8864, &pppoe(0xc021, &[1, 1, 0, 4])));
    add(
        "mpls_ipv4_udp",
        eth(
            &[],
            0x8847,
            &mpls(&[16, 17], &ipv4(&V4::new(a, b, 17), &udp(1, 2, b"m"))),
        ),
    );
    // A pseudowire: bottom label, control word (first nibble 0), then a whole Ethernet frame.
    let mut pw = vec![0u8; 4];
    pw.extend_from_slice(&inner_frame(
        0x0800,
        &ipv4(&V4::new(a, b, 6), &tcp(1234, 443, 0x02, &[])),
    ));
    add("mpls_pw_ipv4_tcp", eth(&[], 0x8847, &mpls(&[300], &pw)));
    let mut fp = vec![0x00, 0x3f];
    fp.extend_from_slice(&inner_frame(
        0x0800,
        &ipv4(&V4::new(a, b, 6), &tcp(1234, 80, 0x02, &[])),
    ));
    add("fabricpath_ipv4_tcp", eth(&[], 0x8903, &fp));
    let mut itag = vec![0x00, 0x01, 0x00, 0x01];
    itag.extend_from_slice(&inner_frame(
        0x0800,
        &ipv4(&V4::new(a, b, 17), &udp(1, 2, b"b")),
    ));
    add("pbb_ipv4_udp", eth(&[], 0x88e7, &itag));
    let mut vn = vec![0x80, 0x01, 0x00, 0x02, 0x08, 0x00];
    vn.extend_from_slice(&ipv4(&V4::new(a, b, 17), &udp(1, 2, b"n")));
    add("vntag_ipv4_udp", eth(&[], 0x8926, &vn));
    add("arp", eth(&[], 0x0806, &[0u8; 28]));
    // Malformed frames.
    add("truncated_ethernet", vec![0u8; 13]);
    add("truncated_vlan", eth(&[], 0x8100, &[0, 5]));
    add(
        "too_many_vlan_tags",
        eth(&[1, 2, 3], 0x8100, &[0, 4, 0x08, 0x00, 0, 0, 0, 0]),
    );
    add("truncated_pppoe", eth(&[], 0x8864, &[0x11, 0, 0, 0x42, 0]));
    // Labels that never reach the bottom of the stack.
    let mut labels = Vec::new();
    for l in 0..10u32 {
        labels.extend_from_slice(&((l + 16) << 12 | 64).to_be_bytes());
    }
    add("mpls_without_bottom", eth(&[], 0x8847, &labels));
    let good = v4_frame(a, b, 6, &tcp(1, 2, 0x02, &[]));
    add("truncated_ipv4", good[..14 + 19].to_vec());
    let mut bad_version = good.clone();
    bad_version[14] = 0x55;
    add("bad_ipv4_version", bad_version);
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    add("bad_ipv4_ihl", bad_ihl);
    let mut bad_total = good.clone();
    bad_total[16..18].copy_from_slice(&400u16.to_be_bytes());
    add("bad_ipv4_total_length", bad_total);
    // L4 headers cut short inside IP packets whose length fields agree with the cut.
    add(
        "truncated_tcp",
        v4_frame(a, b, 6, &tcp(1, 2, 0x02, &[])[..12]),
    );
    let mut bad_doff = good.clone();
    bad_doff[14 + 20 + 12] = 0x20;
    add("bad_tcp_data_offset", bad_doff);
    add("truncated_udp", v4_frame(a, b, 17, &udp(1, 2, &[])[..5]));
    add(
        "truncated_sctp",
        v4_frame(a, b, 132, &sctp(1, 2, &[])[..11]),
    );
    add(
        "truncated_icmp",
        v4_frame(a, b, 1, &icmp(8, 0, 1, 1, &[])[..3]),
    );
    add(
        "truncated_icmpv6",
        v6_frame(
            "2001:db8::1",
            "2001:db8::2",
            58,
            &icmp(128, 0, 1, 1, &[])[..4],
        ),
    );
    let v6 = v6_frame("2001:db8::1", "2001:db8::2", 58, &icmp(128, 0, 1, 1, &[]));
    add("truncated_ipv6", v6[..14 + 39].to_vec());
    let mut bad6 = v6.clone();
    bad6[14] = 0x40;
    add("bad_ipv6_version", bad6);
    add(
        "truncated_ipv6_extension",
        eth(&[], 0x86dd, &ipv6(s6, d6, &[], 0, &ext_generic()[..5])),
    );
    c
}
