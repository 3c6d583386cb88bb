//! The L2–L4 header parser, generic over [`Packet`] so that the XDP and TC programs, host
//! tests and fuzzers run the very same code.
//!
//! The parser never reads past the end of the packet and never guesses: a header that does not
//! fit, or whose length fields contradict the packet, ends the parse with an [`Outcome`] that
//! says why. Loops are bounded by constants so the verifier can prove termination.

/// Read access to the bytes of one packet.
pub trait Packet {
    /// Number of bytes in the packet (the whole frame, from the Ethernet header).
    fn len(&self) -> usize;

    /// `true` when the packet holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `N` bytes starting at `off`, or `None` when they are not all inside the packet.
    fn load<const N: usize>(&self, off: usize) -> Option<[u8; N]>;
}

impl Packet for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn load<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        let bytes = self.get(off..end)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Some(out)
    }
}

mod numbers;
use numbers::ppp;
pub use numbers::{ethertype, ipproto};

/// How far the parse went, and why it stopped.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Headers parsed up to L4 (or up to L3 for a non-first fragment or an unknown L4).
    #[default]
    Ok = 0,
    /// Not IPv4 or IPv6 (ARP, LLDP, …): counted, not tracked as a flow.
    NonIp,
    /// Frame shorter than an Ethernet header.
    TruncatedEthernet,
    /// VLAN tag cut short.
    TruncatedVlan,
    /// More than [`MAX_VLAN_TAGS`] stacked VLAN tags.
    TooManyVlanTags,
    /// IPv4 header cut short.
    TruncatedIpv4,
    /// Ethertype IPv4 but the version nibble is not 4.
    BadIpv4Version,
    /// IHL below 5 (a header shorter than 20 bytes).
    BadIpv4HeaderLength,
    /// Total length smaller than the header, or larger than the frame.
    BadIpv4TotalLength,
    /// IPv6 header cut short, or a payload length beyond the frame.
    TruncatedIpv6,
    /// Ethertype IPv6 but the version nibble is not 6.
    BadIpv6Version,
    /// An IPv6 extension header cut short.
    TruncatedIpv6Extension,
    /// More than [`MAX_IPV6_EXTENSIONS`] IPv6 extension headers.
    TooManyIpv6Extensions,
    /// TCP header cut short.
    TruncatedTcp,
    /// TCP data offset below 5 or beyond the packet.
    BadTcpHeaderLength,
    /// UDP header cut short.
    TruncatedUdp,
    /// ICMP header cut short.
    TruncatedIcmp,
    /// ICMPv6 header cut short.
    TruncatedIcmpv6,
    /// A PPPoE, MPLS, FabricPath, 802.1ah or VN-Tag header cut short.
    TruncatedLinkLayer,
    /// More than [`MAX_LINK_LAYERS`] link-layer headers (tags, labels, shims) before IP.
    TooManyLinkLayers,
    /// SCTP common header (12 bytes) cut short.
    TruncatedSctp,
}

impl Outcome {
    /// Number of outcomes; counters reserve this many slots.
    pub const COUNT: usize = 21;

    /// Every outcome, in discriminant order.
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Ok,
        Outcome::NonIp,
        Outcome::TruncatedEthernet,
        Outcome::TruncatedVlan,
        Outcome::TooManyVlanTags,
        Outcome::TruncatedIpv4,
        Outcome::BadIpv4Version,
        Outcome::BadIpv4HeaderLength,
        Outcome::BadIpv4TotalLength,
        Outcome::TruncatedIpv6,
        Outcome::BadIpv6Version,
        Outcome::TruncatedIpv6Extension,
        Outcome::TooManyIpv6Extensions,
        Outcome::TruncatedTcp,
        Outcome::BadTcpHeaderLength,
        Outcome::TruncatedUdp,
        Outcome::TruncatedIcmp,
        Outcome::TruncatedIcmpv6,
        Outcome::TruncatedLinkLayer,
        Outcome::TooManyLinkLayers,
        Outcome::TruncatedSctp,
    ];

    /// snake_case name used in metric labels and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NonIp => "non_ip",
            Outcome::TruncatedEthernet => "truncated_ethernet",
            Outcome::TruncatedVlan => "truncated_vlan",
            Outcome::TooManyVlanTags => "too_many_vlan_tags",
            Outcome::TruncatedIpv4 => "truncated_ipv4",
            Outcome::BadIpv4Version => "bad_ipv4_version",
            Outcome::BadIpv4HeaderLength => "bad_ipv4_header_length",
            Outcome::BadIpv4TotalLength => "bad_ipv4_total_length",
            Outcome::TruncatedIpv6 => "truncated_ipv6",
            Outcome::BadIpv6Version => "bad_ipv6_version",
            Outcome::TruncatedIpv6Extension => "truncated_ipv6_extension",
            Outcome::TooManyIpv6Extensions => "too_many_ipv6_extensions",
            Outcome::TruncatedTcp => "truncated_tcp",
            Outcome::BadTcpHeaderLength => "bad_tcp_header_length",
            Outcome::TruncatedUdp => "truncated_udp",
            Outcome::TruncatedIcmp => "truncated_icmp",
            Outcome::TruncatedIcmpv6 => "truncated_icmpv6",
            Outcome::TruncatedLinkLayer => "truncated_link_layer",
            Outcome::TooManyLinkLayers => "too_many_link_layers",
            Outcome::TruncatedSctp => "truncated_sctp",
        }
    }
}

/// Where a packet sits in a fragmented datagram.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fragment {
    /// Not fragmented.
    #[default]
    None = 0,
    /// First fragment: carries the L4 header and its ports.
    First,
    /// A later fragment: no L4 header, accounted under the 3-tuple (ports 0).
    Later,
}

/// At most this many VLAN tags are peeled (802.1Q, QinQ's outer + inner, and one more, as
/// Suricata peels).
pub const MAX_VLAN_TAGS: usize = 3;
/// At most this many link-layer headers (VLAN tags, MPLS labels, PPPoE, FabricPath, 802.1ah,
/// VN-Tag) are walked before IP.
pub const MAX_LINK_LAYERS: usize = 8;
/// At most this many IPv6 extension headers are walked.
pub const MAX_IPV6_EXTENSIONS: usize = 8;

/// IPv4 addresses are stored in the first four bytes of the 16-byte address fields.
pub const FAMILY_IPV4: u8 = 4;
/// IPv6.
pub const FAMILY_IPV6: u8 = 6;

/// What the parser found in one packet.
// 8-byte alignment lets the BPF backend zero and copy it with word stores instead of calling
// a byte-at-a-time `memset`, which cost more than the whole parse.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Parsed {
    /// Why the parse stopped; the other fields are valid as far as it got.
    pub outcome: Outcome,
    /// Ethertype after the VLAN tags.
    pub ether_type: u16,
    /// VLAN id of the outermost tag (0 when untagged).
    pub vlan: u16,
    /// Number of VLAN tags peeled.
    pub vlan_tags: u8,
    /// 0 before L3, then [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// L4 protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Fragment position.
    pub fragment: Fragment,
    /// Source address, network byte order; IPv4 in the first four bytes.
    pub src: [u8; 16],
    /// Destination address, as `src`.
    pub dst: [u8; 16],
    /// Source port (TCP/UDP), or the echo identifier for ICMP echo; host order.
    pub sport: u16,
    /// Destination port, or the echo identifier for ICMP echo; host order.
    pub dport: u16,
    /// TCP flags byte (FIN 0x01 … CWR 0x80).
    pub tcp_flags: u8,
    /// ICMP or ICMPv6 type.
    pub icmp_type: u8,
    /// ICMP or ICMPv6 code.
    pub icmp_code: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// VLAN id of the second tag (0 with fewer than two).
    pub vlan_inner: u16,
    /// Offset of the L3 header.
    pub l3_off: u32,
    /// Offset of the L4 header.
    pub l4_off: u32,
    /// Offset of the L4 payload (where application data starts).
    pub payload_off: u32,
    /// Offset just past the IP packet (its length fields say where it ends; Ethernet padding
    /// after it is not payload). Offsets are 32-bit: a GRO/GSO packet on a host capture and
    /// an IPv6 jumbogram are longer than 65,535 bytes.
    pub ip_end: u32,
}

impl Parsed {
    /// Sets every field to zero with word stores that the compiler cannot merge into a
    /// `memset` call (the BPF backend would emit a byte-at-a-time loop for it, which cost
    /// more than the whole parse).
    #[inline(always)]
    pub fn reset(&mut self) {
        const WORDS: usize = core::mem::size_of::<Parsed>() / 8;
        const _: () = assert!(core::mem::size_of::<Parsed>().is_multiple_of(8));
        let base = self as *mut Parsed as *mut u64;
        for i in 0..WORDS {
            // SAFETY: `self` is 8-aligned (`align(8)`) and the words lie inside it. All-zero
            // bytes are a valid `Parsed`: integers, byte arrays, and enums whose zero
            // discriminant exists (`Outcome::Ok`, `Fragment::None`).
            unsafe { core::ptr::write_volatile(base.add(i), 0) };
        }
    }

    /// `true` when the packet can be accounted as a flow.
    pub fn is_trackable(&self) -> bool {
        self.outcome == Outcome::Ok && self.family != 0
    }
}

fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Parses the headers of `pkt`, starting with Ethernet.
pub fn parse<P: Packet + ?Sized>(pkt: &P) -> Parsed {
    let mut p = Parsed::default();
    parse_into(pkt, &mut p);
    p
}

/// [`parse`] into an existing `Parsed` (the kernel keeps it in a per-CPU scratch map rather
/// than on its 512-byte stack).
#[inline(always)]
pub fn parse_into<P: Packet + ?Sized>(pkt: &P, p: &mut Parsed) {
    p.reset();
    // Loads stay at 8 bytes or less so that the kernel build keeps them in registers: the BPF
    // stack is 512 bytes and larger arrays would each take a slot of it.
    if pkt.len() < 14 {
        p.outcome = Outcome::TruncatedEthernet;
        return;
    }
    let Some(et) = pkt.load::<2>(12) else {
        p.outcome = Outcome::TruncatedEthernet;
        return;
    };
    let mut ether_type = be16(et);
    let mut off = 14usize;
    let mut tags = 0u8;
    let mut done = false;
    for _ in 0..MAX_LINK_LAYERS {
        // Through memory, so that the verifier checks one walk per iteration with an offset
        // and type it does not know, instead of one walk per combination of headers before
        // it (which exceeds its budget). Host code pays two stores and two loads.
        p.l3_off = off as u32;
        p.ether_type = ether_type;
        off = opaque(&p.l3_off) as usize;
        ether_type = opaque(&p.ether_type);
        match link_layer(pkt, off, ether_type, tags, p) {
            Step::Next(next, at) => {
                if matches!(
                    ether_type,
                    ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD
                ) {
                    tags += 1;
                }
                ether_type = next;
                off = at;
            }
            Step::Ip => {
                done = true;
                break;
            }
            Step::Stop(outcome) => {
                p.vlan_tags = tags;
                p.ether_type = ether_type;
                p.outcome = outcome;
                return;
            }
        }
    }
    p.vlan_tags = tags;
    p.ether_type = ether_type;
    if !done {
        p.outcome = Outcome::TooManyLinkLayers;
        return;
    }
    parse_l3(pkt, off, ether_type, p);
}

/// `v`, read with a volatile load: the compiler cannot reuse what it knows of the value, so
/// neither can the BPF verifier (a value loaded from map memory is unknown to it).
#[inline(always)]
fn opaque<T: Copy>(v: &T) -> T {
    // SAFETY: `v` is a valid, aligned reference to an initialised `Copy` value.
    unsafe { core::ptr::read_volatile(v) }
}

/// One link-layer step of [`parse_into`].
enum Step {
    /// Another header: its ethertype, and where it starts.
    Next(u16, usize),
    /// `ether_type` is not a link-layer header this parser walks: on to L3.
    Ip,
    /// The parse ends here.
    Stop(Outcome),
}

/// Walks the link-layer header of type `ether_type` at `off` (`tags` VLAN tags peeled so far,
/// whose ids go into `p`).
#[inline(always)]
fn link_layer<P: Packet + ?Sized>(
    pkt: &P,
    off: usize,
    ether_type: u16,
    tags: u8,
    p: &mut Parsed,
) -> Step {
    match ether_type {
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
            if tags as usize >= MAX_VLAN_TAGS {
                return Step::Stop(Outcome::TooManyVlanTags);
            }
            let Some(tag) = pkt.load::<4>(off) else {
                return Step::Stop(Outcome::TruncatedVlan);
            };
            let id = be16([tag[0], tag[1]]) & 0x0fff;
            if tags == 0 {
                p.vlan = id;
            } else if tags == 1 {
                p.vlan_inner = id;
            }
            Step::Next(be16([tag[2], tag[3]]), off + 4)
        }
        ethertype::PPPOE_SESSION => {
            // Version/type, code, session id, length; then the PPP protocol.
            let Some(h) = pkt.load::<8>(off) else {
                return Step::Stop(Outcome::TruncatedLinkLayer);
            };
            match be16([h[6], h[7]]) {
                ppp::IPV4 => Step::Next(ethertype::IPV4, off + 8),
                ppp::IPV6 => Step::Next(ethertype::IPV6, off + 8),
                // LCP, IPCP, CHAP…: PPP's own control traffic.
                _ => Step::Stop(Outcome::NonIp),
            }
        }
        ethertype::MPLS | ethertype::MPLS_MULTICAST => {
            let Some(label) = pkt.load::<4>(off) else {
                return Step::Stop(Outcome::TruncatedLinkLayer);
            };
            let after = off + 4;
            if label[2] & 0x01 == 0 {
                // Not the bottom of the stack: another label follows.
                return Step::Next(ether_type, after);
            }
            // MPLS does not say what it carries: the first nibble does (RFC 4385). 0 is a
            // pseudowire control word before an Ethernet frame.
            // (Two bytes: the verifier cannot follow the bounds check of a 1-byte load.)
            let Some(first) = pkt.load::<2>(after) else {
                return Step::Stop(Outcome::TruncatedLinkLayer);
            };
            match first[0] >> 4 {
                4 => Step::Next(ethertype::IPV4, after),
                6 => Step::Next(ethertype::IPV6, after),
                0 => match pkt.load::<2>(after + 16) {
                    Some(t) => Step::Next(be16(t), after + 18),
                    None => Step::Stop(Outcome::TruncatedLinkLayer),
                },
                _ => Step::Stop(Outcome::NonIp),
            }
        }
        // FTag/TTL, then the original frame's addresses and ethertype.
        ethertype::FABRICPATH => skip_to_ethertype(pkt, off, 14),
        // I-TAG, then the customer's addresses and ethertype.
        ethertype::PBB => skip_to_ethertype(pkt, off, 16),
        ethertype::VNTAG => skip_to_ethertype(pkt, off, 4),
        _ => Step::Ip,
    }
}

/// A header whose next ethertype sits `at` bytes past `off`.
#[inline(always)]
fn skip_to_ethertype<P: Packet + ?Sized>(pkt: &P, off: usize, at: usize) -> Step {
    match pkt.load::<2>(off + at) {
        Some(t) => Step::Next(be16(t), off + at + 2),
        None => Step::Stop(Outcome::TruncatedLinkLayer),
    }
}

/// Parses from an IP header at `off` whose kind `ether_type` says (IPv4 or IPv6), for
/// captures without an Ethernet header (raw IP, Linux cooked). `p` must be fresh
/// ([`Parsed::reset`]) or carry the link-layer fields already found.
#[inline(always)]
pub fn parse_l3<P: Packet + ?Sized>(pkt: &P, off: usize, ether_type: u16, p: &mut Parsed) {
    p.ether_type = ether_type;
    p.l3_off = off as u32;
    match ether_type {
        ethertype::IPV4 => parse_ipv4(pkt, off, p),
        ethertype::IPV6 => parse_ipv6(pkt, off, p),
        _ => p.outcome = Outcome::NonIp,
    }
}

#[inline(never)]
fn parse_ipv4<P: Packet + ?Sized>(pkt: &P, off: usize, p: &mut Parsed) {
    let (Some(h), Some(h8)) = (pkt.load::<8>(off), pkt.load::<2>(off + 8)) else {
        p.outcome = Outcome::TruncatedIpv4;
        return;
    };
    if h[0] >> 4 != 4 {
        p.outcome = Outcome::BadIpv4Version;
        return;
    }
    let ihl = ((h[0] & 0x0f) as usize) * 4;
    if ihl < 20 {
        p.outcome = Outcome::BadIpv4HeaderLength;
        return;
    }
    let (Some(src), Some(dst)) = (pkt.load::<4>(off + 12), pkt.load::<4>(off + 16)) else {
        p.outcome = Outcome::TruncatedIpv4;
        return;
    };
    p.family = FAMILY_IPV4;
    p.proto = h8[1];
    p.ttl = h8[0];
    p.src[..4].copy_from_slice(&src);
    p.dst[..4].copy_from_slice(&dst);
    let mut total = be16([h[2], h[3]]) as usize;
    // Linux's BIG TCP writes 0 into the total length of an IPv4 GSO/GRO packet longer than
    // 65,535 bytes (the header cannot hold it); a host capture shows such packets, and the
    // kernel takes their length from the buffer. Only a buffer that long can be one.
    if total == 0 && pkt.len() > off + 65_535 {
        total = pkt.len() - off;
    }
    if off + ihl > pkt.len() {
        p.outcome = Outcome::TruncatedIpv4;
        return;
    }
    if total < ihl || off + total > pkt.len() {
        p.outcome = Outcome::BadIpv4TotalLength;
        return;
    }
    p.ip_end = (off + total) as u32;
    let frag = be16([h[6], h[7]]);
    let more = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    let l4 = off + ihl;
    p.l4_off = l4 as u32;
    p.payload_off = l4 as u32;
    if offset != 0 {
        p.fragment = Fragment::Later;
        return;
    }
    if more {
        p.fragment = Fragment::First;
    }
    parse_l4(pkt, l4, p);
}

fn is_ipv6_extension(nh: u8) -> bool {
    matches!(
        nh,
        ipproto::HOPOPTS
            | ipproto::ROUTING
            | ipproto::FRAGMENT
            | ipproto::AH
            | ipproto::DSTOPTS
            | ipproto::MOBILITY
    )
}

#[inline(never)]
fn parse_ipv6<P: Packet + ?Sized>(pkt: &P, off: usize, p: &mut Parsed) {
    let Some(h) = pkt.load::<8>(off) else {
        p.outcome = Outcome::TruncatedIpv6;
        return;
    };
    if h[0] >> 4 != 6 {
        p.outcome = Outcome::BadIpv6Version;
        return;
    }
    for (i, at) in [8usize, 16, 24, 32].into_iter().enumerate() {
        let Some(w) = pkt.load::<8>(off + at) else {
            p.outcome = Outcome::TruncatedIpv6;
            return;
        };
        let half = (i & 1) * 8;
        let addr = if i < 2 { &mut p.src } else { &mut p.dst };
        addr[half..half + 8].copy_from_slice(&w);
    }
    p.family = FAMILY_IPV6;
    p.ttl = h[7];
    let payload_len = be16([h[4], h[5]]) as usize;
    // 0 is a jumbogram (RFC 2675), whose length lives in a hop-by-hop option.
    if payload_len != 0 && off + 40 + payload_len > pkt.len() {
        p.outcome = Outcome::TruncatedIpv6;
        return;
    }
    p.ip_end = if payload_len == 0 {
        pkt.len()
    } else {
        off + 40 + payload_len
    } as u32;
    let mut nh = h[6];
    let mut cur = off + 40;
    let mut walked = 0usize;
    while walked < MAX_IPV6_EXTENSIONS && is_ipv6_extension(nh) {
        let Some(e) = pkt.load::<8>(cur) else {
            p.proto = nh;
            p.outcome = Outcome::TruncatedIpv6Extension;
            return;
        };
        let len = match nh {
            ipproto::FRAGMENT => 8,
            ipproto::AH => (e[1] as usize + 2) * 4,
            _ => (e[1] as usize + 1) * 8,
        };
        if nh == ipproto::FRAGMENT {
            let frag = be16([e[2], e[3]]);
            if frag & 0xfff8 != 0 {
                p.fragment = Fragment::Later;
            } else if frag & 1 != 0 {
                p.fragment = Fragment::First;
            }
        }
        if cur + len > pkt.len() {
            p.proto = nh;
            p.outcome = Outcome::TruncatedIpv6Extension;
            return;
        }
        nh = e[0];
        cur += len;
        walked += 1;
    }
    p.proto = nh;
    if is_ipv6_extension(nh) {
        p.outcome = Outcome::TooManyIpv6Extensions;
        return;
    }
    p.l4_off = cur as u32;
    p.payload_off = cur as u32;
    if p.fragment == Fragment::Later {
        return;
    }
    parse_l4(pkt, cur, p);
}

#[inline(never)]
fn parse_l4<P: Packet + ?Sized>(pkt: &P, off: usize, p: &mut Parsed) {
    match p.proto {
        ipproto::TCP => {
            let (Some(t), Some(t12)) = (pkt.load::<4>(off), pkt.load::<2>(off + 12)) else {
                p.outcome = Outcome::TruncatedTcp;
                return;
            };
            if off + 20 > pkt.len() {
                p.outcome = Outcome::TruncatedTcp;
                return;
            }
            let doff = ((t12[0] >> 4) as usize) * 4;
            if doff < 20 || off + doff > pkt.len() {
                p.outcome = Outcome::BadTcpHeaderLength;
                return;
            }
            p.sport = be16([t[0], t[1]]);
            p.dport = be16([t[2], t[3]]);
            p.tcp_flags = t12[1];
            p.payload_off = (off + doff) as u32;
        }
        ipproto::UDP => {
            let Some(u) = pkt.load::<8>(off) else {
                p.outcome = Outcome::TruncatedUdp;
                return;
            };
            p.sport = be16([u[0], u[1]]);
            p.dport = be16([u[2], u[3]]);
            p.payload_off = (off + 8) as u32;
        }
        ipproto::SCTP => {
            // The common header: ports, verification tag, checksum; chunks follow. SCTP
            // associations are flows by their ports, as TCP connections are.
            let (Some(s), true) = (pkt.load::<4>(off), off + 12 <= pkt.len()) else {
                p.outcome = Outcome::TruncatedSctp;
                return;
            };
            p.sport = be16([s[0], s[1]]);
            p.dport = be16([s[2], s[3]]);
            p.payload_off = (off + 12) as u32;
        }
        ipproto::ICMP | ipproto::ICMPV6 => {
            let Some(i) = pkt.load::<8>(off) else {
                p.outcome = if p.proto == ipproto::ICMP {
                    Outcome::TruncatedIcmp
                } else {
                    Outcome::TruncatedIcmpv6
                };
                return;
            };
            p.icmp_type = i[0];
            p.icmp_code = i[1];
            if is_echo(p.proto, i[0]) {
                // Request and reply share the identifier: using it for both "ports" keeps
                // them in one flow and separates concurrent pings.
                let id = be16([i[4], i[5]]);
                p.sport = id;
                p.dport = id;
            }
            p.payload_off = (off + 8) as u32;
        }
        _ => {}
    }
}

/// ICMP echo request or reply (v4: 8/0, v6: 128/129).
pub fn is_echo(proto: u8, icmp_type: u8) -> bool {
    match proto {
        ipproto::ICMP => icmp_type == 8 || icmp_type == 0,
        ipproto::ICMPV6 => icmp_type == 128 || icmp_type == 129,
        _ => false,
    }
}
