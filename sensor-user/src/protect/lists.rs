//! Address-list files as operators get them (one CIDR or address a line with `#` comments,
//! Spamhaus DROP/EDROP, FireHOL `.netset`/`.ipset`, Team Cymru bogons and fullbogons): parsing
//! into [`Prefix`]es, with every bad line reported by number and reason while the rest loads.

use std::{fmt, net::IpAddr, str::FromStr};

/// One IPv4 or IPv6 prefix, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// 4 or 6.
    pub family: u8,
    /// Network order; IPv4 in the first four bytes, the rest zero.
    pub addr: [u8; 16],
    /// Prefix length (0..=32 or 0..=128).
    pub len: u8,
}

impl Prefix {
    /// The prefix of `len` bits containing `ip`.
    pub fn new(ip: IpAddr, len: u8) -> Result<Prefix, String> {
        let (family, max, mut addr) = match ip {
            IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                (4u8, 32u8, b)
            }
            IpAddr::V6(a) => (6u8, 128u8, a.octets()),
        };
        if len > max {
            return Err(format!("prefix length /{len} is longer than /{max}"));
        }
        for (i, byte) in addr.iter_mut().enumerate() {
            let keep = (len as usize).saturating_sub(i * 8).min(8);
            *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        }
        Ok(Prefix { family, addr, len })
    }

    /// Longest prefix length of the family.
    pub fn max_len(&self) -> u8 {
        if self.family == 4 {
            32
        } else {
            128
        }
    }

    /// `true` when `addr` (of `family`, layout as [`Prefix::addr`]) lies inside.
    pub fn contains(&self, family: u8, addr: &[u8; 16]) -> bool {
        if family != self.family {
            return false;
        }
        let len = self.len as usize;
        let full = len / 8;
        if addr[..full] != self.addr[..full] {
            return false;
        }
        let rest = len % 8;
        rest == 0 || (addr[full] & (0xffu8 << (8 - rest))) == self.addr[full]
    }

    /// `true` when `other` lies inside this prefix (itself included).
    pub fn covers(&self, other: &Prefix) -> bool {
        other.len >= self.len && self.contains(other.family, &other.addr)
    }

    /// The address part as an [`IpAddr`].
    pub fn ip(&self) -> IpAddr {
        if self.family == 4 {
            IpAddr::from([self.addr[0], self.addr[1], self.addr[2], self.addr[3]])
        } else {
            IpAddr::from(self.addr)
        }
    }
}

impl FromStr for Prefix {
    type Err = String;

    /// `ADDR/LEN` or a bare address (a /32 or /128). Host bits set below the length are
    /// cleared, as `ipset` and the kernel do.
    fn from_str(s: &str) -> Result<Prefix, String> {
        let s = s.trim();
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IPv4 or IPv6 address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("prefix length {l:?} is not a number from 0 to {max}"))?,
        };
        Prefix::new(ip, len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip(), self.len)
    }
}
