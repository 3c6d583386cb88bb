//! The host's own addresses and connected subnets, read from its interfaces (`getifaddrs`),
//! for the anti-spoofing checks: packets from these addresses must not arrive from outside,
//! and the host must send from nothing else.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use anyhow::bail;

use super::lists::Prefix;

/// What the interfaces say about the host's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostAddrs {
    /// Every address configured on an interface, as a /32 or /128.
    pub own: BTreeSet<Prefix>,
    /// The subnets those addresses sit in (loopback excluded): neighbours, never bogons.
    pub connected: BTreeSet<Prefix>,
}

/// Reads the addresses of every interface of this network namespace.
pub fn discover() -> anyhow::Result<HostAddrs> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        bail!(
            "reading the host's addresses (getifaddrs): {}",
            std::io::Error::last_os_error()
        );
    }
    let mut out = HostAddrs::default();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let (Some(addr), Some(mask)) = (
            // SAFETY: the pointers are null or point at sockaddrs of the family they say.
            unsafe { sockaddr_ip(ifa.ifa_addr) },
            unsafe { sockaddr_ip(ifa.ifa_netmask) },
        ) else {
            continue;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let Ok(host) = Prefix::new(addr, max) else {
            continue;
        };
        out.own.insert(host);
        let loopback = ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0;
        if !loopback {
            let len = match mask {
                IpAddr::V4(m) => u32::from(m).leading_ones(),
                IpAddr::V6(m) => u128::from(m).leading_ones(),
            };
            if let Ok(net) = Prefix::new(addr, len as u8) {
                out.connected.insert(net);
            }
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The IP address in a `sockaddr`, if it is IPv4 or IPv6.
///
/// # Safety
/// `sa` is null or points at a valid `sockaddr_in` / `sockaddr_in6` as its family says.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_own_but_not_connected() {
        let a = discover().expect("getifaddrs works");
        let lo: Prefix = "127.0.0.1/32".parse().expect("prefix");
        assert!(a.own.contains(&lo), "127.0.0.1 is one of the host's: {a:?}");
        assert!(a.connected.iter().all(|p| !p.covers(&lo)), "{a:?}");
    }
}
