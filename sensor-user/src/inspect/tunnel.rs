//! Tunnel decapsulation: GRE (v0, with checksum/key/sequence fields, IP or Ethernet inside),
//! IP-in-IP (IPv4/IPv6 over IPv4/IPv6), GENEVE (UDP 6081) and VXLAN (UDP 4789). The inner
//! packet is inspected as its own flow, keyed apart from flows at other depths, as Suricata
//! does.

use sensor_common::parse::{ethertype, ipproto, parse_into, parse_l3, Fragment, Parsed};

/// Tunnels nested deeper than this are inspected at this depth.
pub const MAX_DEPTH: u8 = 3;

const GENEVE_PORT: u16 = 6081;
const VXLAN_PORT: u16 = 4789;
const ETH_BRIDGING: u16 = 0x6558;

/// What a tunnel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inner {
    Ethernet,
    Ip(u16),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

fn inner_of(proto: u16) -> Option<Inner> {
    match proto {
        ethertype::IPV4 | ethertype::IPV6 => Some(Inner::Ip(proto)),
        ETH_BRIDGING => Some(Inner::Ethernet),
        _ => None,
    }
}

/// Where the inner packet starts in `frame`, and what it is.
fn locate(p: &Parsed, frame: &[u8]) -> Option<(usize, Inner)> {
    if p.fragment == Fragment::Later {
        return None;
    }
    let l4 = p.l4_off as usize;
    match p.proto {
        ipproto::GRE => {
            let flags = be16(frame, l4)?;
            if flags & 0x0007 != 0 {
                return None; // only version 0; version 1 is PPTP's enhanced GRE
            }
            let proto = be16(frame, l4 + 2)?;
            let mut len = 4;
            if flags & 0x8000 != 0 || flags & 0x4000 != 0 {
                len += 4; // checksum (and reserved), present when C or R is set
            }
            if flags & 0x2000 != 0 {
                len += 4; // key
            }
            if flags & 0x1000 != 0 {
                len += 4; // sequence number
            }
            Some((l4 + len, inner_of(proto)?))
        }
        ipproto::IPIP => Some((l4, Inner::Ip(ethertype::IPV4))),
        ipproto::IPV6_IN_IP => Some((l4, Inner::Ip(ethertype::IPV6))),
        ipproto::UDP if p.dport == GENEVE_PORT => {
            let off = p.payload_off as usize;
            let opt_len = usize::from(*frame.get(off)? & 0x3f) * 4;
            if frame.get(off)? >> 6 != 0 {
                return None; // GENEVE version 0 only
            }
            let proto = be16(frame, off + 2)?;
            Some((off + 8 + opt_len, inner_of(proto)?))
        }
        ipproto::UDP if p.dport == VXLAN_PORT => {
            let off = p.payload_off as usize;
            // The I flag says the VNI is valid; without it this is not VXLAN.
            if frame.get(off)? & 0x08 == 0 {
                return None;
            }
            Some((off + 8, Inner::Ethernet))
        }
        _ => None,
    }
}

/// Peels tunnels off a parsed packet: returns the innermost packet, its bytes and its depth
/// (0 when `frame` is no tunnel).
pub fn decapsulate(mut p: Parsed, mut frame: &[u8]) -> (Parsed, &[u8], u8) {
    let mut depth = 0;
    while depth < MAX_DEPTH {
        let Some((off, inner)) = locate(&p, frame) else {
            break;
        };
        let end = (p.ip_end as usize).min(frame.len());
        let Some(bytes) = frame.get(off..end).filter(|b| !b.is_empty()) else {
            break;
        };
        let mut q = Parsed::default();
        match inner {
            Inner::Ethernet => parse_into(bytes, &mut q),
            Inner::Ip(et) => parse_l3(bytes, 0, et, &mut q),
        }
        if !q.is_trackable() {
            break;
        }
        p = q;
        frame = bytes;
        depth += 1;
    }
    (p, frame, depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::parse::parse;

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h.extend_from_slice(payload);
        h
    }

    fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn icmp_echo() -> Vec<u8> {
        vec![8, 0, 0, 0, 0, 7, 0, 1]
    }

    #[test]
    fn gre_with_key_and_ip_inside() {
        let inner = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 1, &icmp_echo());
        let mut gre = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 42];
        gre.extend_from_slice(&inner);
        let outer = eth(0x0800, &ipv4([192, 0, 2, 1], [192, 0, 2, 2], 47, &gre));
        let (p, frame, depth) = decapsulate(parse(outer.as_slice()), &outer);
        assert_eq!(depth, 1);
        assert_eq!((p.proto, &p.dst[..4]), (1, &[10u8, 0, 0, 2][..]));
        assert_eq!(frame.len(), inner.len());
    }

    #[test]
    fn geneve_and_vxlan_carry_ethernet() {
        let inner = eth(0x0800, &ipv4([10, 1, 0, 1], [10, 1, 0, 2], 1, &icmp_echo()));
        for (port, hdr) in [
            (6081u16, vec![0x00, 0, 0x65, 0x58, 0, 0, 1, 0]),
            (4789, vec![0x08, 0, 0, 0, 0, 0, 1, 0]),
        ] {
            let mut udp = vec![0x30, 0x39];
            udp.extend_from_slice(&port.to_be_bytes());
            udp.extend_from_slice(&((8 + hdr.len() + inner.len()) as u16).to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            udp.extend_from_slice(&hdr);
            udp.extend_from_slice(&inner);
            let outer = eth(0x0800, &ipv4([192, 0, 2, 1], [192, 0, 2, 2], 17, &udp));
            let (p, frame, depth) = decapsulate(parse(outer.as_slice()), &outer);
            assert_eq!(depth, 1, "port {port}");
            assert_eq!(p.proto, 1);
            assert_eq!(frame, inner.as_slice());
        }
    }

    #[test]
    fn plain_and_malformed_packets_stay_as_they_are() {
        let plain = eth(0x0800, &ipv4([1, 1, 1, 1], [2, 2, 2, 2], 1, &icmp_echo()));
        assert_eq!(decapsulate(parse(plain.as_slice()), &plain).2, 0);
        // GRE version 1 and a truncated GRE header are not followed.
        for gre in [vec![0x00, 0x01, 0x88, 0x0b], vec![0x00]] {
            let outer = eth(0x0800, &ipv4([1, 1, 1, 1], [2, 2, 2, 2], 47, &gre));
            assert_eq!(decapsulate(parse(outer.as_slice()), &outer).2, 0);
        }
        // IP-in-IP nested beyond the limit stops at the limit.
        let mut pkt = ipv4([9, 9, 9, 9], [8, 8, 8, 8], 1, &icmp_echo());
        for _ in 0..5 {
            pkt = ipv4([1, 1, 1, 1], [2, 2, 2, 2], 4, &pkt);
        }
        let outer = eth(0x0800, &pkt);
        assert_eq!(decapsulate(parse(outer.as_slice()), &outer).2, MAX_DEPTH);
    }
}
