//! The pipeline's first stage: a captured frame of some link type becomes the parsed packet
//! that flows are made of. Link layers (Ethernet, raw IP, Linux cooked v1/v2, BSD loopback),
//! the shared header parser, tunnels peeled ([`super::tunnel`]), and fragments held until
//! their datagram is whole ([`super::defrag`]).

use std::borrow::Cow;

use sensor_common::parse::{
    ethertype, parse_into, parse_l3, Fragment, Outcome, Parsed, FAMILY_IPV4,
};

use super::{defrag, tunnel};

/// LINKTYPE_ values handled.
mod link {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    /// Some systems write raw IP as DLT 12 or 14.
    pub const RAW_ALT: [u32; 2] = [12, 14];
}

fn raw_ip_type(data: &[u8]) -> u16 {
    match data.first().map(|b| b >> 4) {
        Some(4) => ethertype::IPV4,
        Some(6) => ethertype::IPV6,
        _ => 0,
    }
}

/// Decodes one frame of `linktype`; `None` for a link type this build does not know.
pub fn decode(linktype: u32, data: &[u8]) -> Option<Parsed> {
    let mut p = Parsed::default();
    match linktype {
        link::ETHERNET => parse_into(data, &mut p),
        link::RAW | link::IPV4 | link::IPV6 => parse_l3(data, 0, raw_ip_type(data), &mut p),
        lt if link::RAW_ALT.contains(&lt) => parse_l3(data, 0, raw_ip_type(data), &mut p),
        link::LINUX_SLL => {
            let et = data
                .get(14..16)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0);
            if data.len() < 16 {
                p.outcome = Outcome::TruncatedEthernet;
            } else {
                parse_l3(data, 16, et, &mut p);
            }
        }
        link::LINUX_SLL2 => {
            let et = data
                .get(0..2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0);
            if data.len() < 20 {
                p.outcome = Outcome::TruncatedEthernet;
            } else {
                parse_l3(data, 20, et, &mut p);
            }
        }
        link::NULL | link::LOOP => {
            let Some(af) = data.get(0..4) else {
                p.outcome = Outcome::TruncatedEthernet;
                return Some(p);
            };
            // NULL stores the address family in the capturing host's order, LOOP in network
            // order; IPv4 is 2 everywhere, IPv6 24, 28 or 30 depending on the OS.
            let fam = if linktype == link::NULL && af[0] != 0 {
                u32::from(af[0])
            } else {
                u32::from(af[3])
            };
            let et = match fam {
                2 => ethertype::IPV4,
                24 | 28 | 30 => ethertype::IPV6,
                _ => 0,
            };
            parse_l3(data, 4, et, &mut p);
        }
        _ => return None,
    }
    Some(p)
}

/// A packet ready for the flow table.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// Its headers.
    pub p: Parsed,
    /// Its bytes: the innermost packet of a tunnel, or a datagram rebuilt from fragments
    /// (which starts at its IP header).
    pub data: Cow<'a, [u8]>,
    /// How many tunnels it was inside.
    pub depth: u8,
}

/// Why a frame goes no further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A link type this build does not decode.
    UnsupportedLink,
    /// Not IP, or headers that could not be parsed: the parser's outcome.
    Undecoded(&'static str),
    /// A fragment, held until its datagram is complete.
    Held,
}

/// The decode stage: it holds the fragments waiting for the rest of their datagram.
pub struct Decoder {
    defrag: defrag::Defrag,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the default fragment limits.
    pub fn new() -> Decoder {
        Decoder::with_limits(defrag::DefragLimits::default())
    }

    /// A decoder with these fragment limits.
    pub fn with_limits(limits: defrag::DefragLimits) -> Decoder {
        Decoder {
            defrag: defrag::Defrag::new(limits),
        }
    }

    /// Fragment reassembly counters.
    pub fn defrag_stats(&self) -> defrag::DefragStats {
        self.defrag.stats
    }

    /// Decodes one captured frame seen at `ts_ns`.
    pub fn decode<'a>(
        &mut self,
        linktype: u32,
        frame: &'a [u8],
        ts_ns: u64,
    ) -> Result<Decoded<'a>, Skip> {
        let p = decode(linktype, frame).ok_or(Skip::UnsupportedLink)?;
        if !p.is_trackable() {
            return Err(Skip::Undecoded(p.outcome.name()));
        }
        // Fragments wait for their datagram, at every IP layer: a tunnel's outer packets are
        // rebuilt before the tunnel is opened, and a packet fragmented inside the tunnel
        // after.
        if p.fragment != Fragment::None {
            let rebuilt = self.defragment(&p, frame, ts_ns)?;
            let (mut q, inner, depth) = tunnel::decapsulate(rebuilt.0, &rebuilt.1);
            inherit_vlans(&rebuilt.0, &mut q);
            let inner = inner.to_vec();
            return self.inner(q, Cow::Owned(inner), depth, ts_ns);
        }
        // A tunnelled packet is inspected as the packet it carries. The table keeps the
        // tunnel depth where the kernel's keys keep the interface index, so flows at
        // different depths stay apart.
        let outer = p;
        let (mut p, data, depth) = tunnel::decapsulate(p, frame);
        inherit_vlans(&outer, &mut p);
        self.inner(p, Cow::Borrowed(data), depth, ts_ns)
    }

    /// The innermost packet, rebuilt from its fragments if it is one.
    fn inner<'a>(
        &mut self,
        p: Parsed,
        data: Cow<'a, [u8]>,
        depth: u8,
        ts_ns: u64,
    ) -> Result<Decoded<'a>, Skip> {
        if p.fragment == Fragment::None {
            return Ok(Decoded { p, data, depth });
        }
        let (q, rebuilt) = self.defragment(&p, &data, ts_ns)?;
        Ok(Decoded {
            p: q,
            data: Cow::Owned(rebuilt),
            depth,
        })
    }

    /// Adds a fragment; the datagram, parsed from its IP header, once it is whole.
    fn defragment(
        &mut self,
        p: &Parsed,
        data: &[u8],
        ts_ns: u64,
    ) -> Result<(Parsed, Vec<u8>), Skip> {
        let rebuilt = self.defrag.fragment(p, data, ts_ns).ok_or(Skip::Held)?;
        let mut q = Parsed::default();
        inherit_vlans(p, &mut q);
        let et = if p.family == FAMILY_IPV4 {
            ethertype::IPV4
        } else {
            ethertype::IPV6
        };
        parse_l3(rebuilt.as_slice(), 0, et, &mut q);
        if !q.is_trackable() {
            return Err(Skip::Undecoded(q.outcome.name()));
        }
        Ok((q, rebuilt))
    }
}

/// A packet taken out of a tunnel or rebuilt from fragments belongs to the VLANs of the
/// packet that carried it (as Suricata copies them), unless it carries tags of its own.
fn inherit_vlans(outer: &Parsed, inner: &mut Parsed) {
    if inner.vlan_tags == 0 {
        inner.vlan = outer.vlan;
        inner.vlan_inner = outer.vlan_inner;
        inner.vlan_tags = outer.vlan_tags;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::parse::ipproto;

    /// IPv4 + UDP from 192.0.2.1:1000 to 192.0.2.2:2000, with `frag` as flags/offset.
    fn ipv4_udp(payload: &[u8], frag: u16, udp_header: bool) -> Vec<u8> {
        let l4 = if udp_header { 8 } else { 0 };
        let total = (20 + l4 + payload.len()) as u16;
        let mut f = vec![0x45, 0];
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 7]);
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, ipproto::UDP, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        if udp_header {
            f.extend_from_slice(&1000u16.to_be_bytes());
            f.extend_from_slice(&2000u16.to_be_bytes());
            f.extend_from_slice(&(8 + 16u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(payload);
        f
    }

    fn ethernet(l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    #[test]
    fn link_types_reach_the_same_packet() {
        let ip = ipv4_udp(b"hello", 0, true);
        let eth = decode(1, &ethernet(&ip)).expect("ethernet");
        let raw = decode(101, &ip).expect("raw");
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        sll.extend_from_slice(&ip);
        let sll = decode(113, &sll).expect("sll");
        let mut lo = 2u32.to_le_bytes().to_vec();
        lo.extend_from_slice(&ip);
        let null = decode(0, &lo).expect("null");
        for p in [&raw, &sll, &null] {
            assert_eq!(
                (p.sport, p.dport, p.proto),
                (eth.sport, eth.dport, eth.proto)
            );
            assert!(p.is_trackable());
        }
        assert!(decode(147, &ip).is_none(), "a link type nobody decodes");
        assert_eq!(
            decode(113, &[0; 10]).map(|p| p.outcome),
            Some(Outcome::TruncatedEthernet)
        );
    }

    #[test]
    fn fragments_are_held_and_the_datagram_comes_out_whole() {
        let mut d = Decoder::new();
        let payload = [7u8; 16];
        // First fragment: UDP header and 8 payload bytes, more fragments follow.
        let first = ethernet(&ipv4_udp(&payload[..8], 0x2000, true));
        assert!(matches!(d.decode(1, &first, 1), Err(Skip::Held)));
        // Second: the last 8 bytes at offset 16 (2 units of 8).
        let second = ethernet(&ipv4_udp(&payload[8..], 2, false));
        let whole = d.decode(1, &second, 2).expect("whole datagram");
        assert_eq!(whole.p.fragment, Fragment::None);
        assert_eq!(whole.p.sport, 1000);
        assert!(matches!(whole.data, Cow::Owned(_)), "rebuilt");
        assert_eq!(d.defrag_stats().reassembled, 1);
    }

    #[test]
    fn what_is_not_ip_is_named() {
        let mut d = Decoder::new();
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&0x0806u16.to_be_bytes());
        arp.extend_from_slice(&[0; 28]);
        assert!(matches!(d.decode(1, &arp, 0), Err(Skip::Undecoded(_))));
        assert_eq!(
            d.decode(999, &arp, 0).map(|_| ()),
            Err(Skip::UnsupportedLink)
        );
    }
}
