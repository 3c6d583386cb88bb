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
            // SAFETY: as above.
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

/// Calls `changed` whenever the kernel announces an address added to or removed from an
/// interface (rtnetlink's address multicast groups), from a thread of its own, so that the
/// tables follow within milliseconds instead of waiting for the next poll. The thread ends
/// when `changed` returns `false`.
pub fn watch(changed: impl Fn() -> bool + Send + 'static) -> anyhow::Result<()> {
    const RTMGRP_IPV4_IFADDR: u32 = 0x10;
    const RTMGRP_IPV6_IFADDR: u32 = 0x100;
    // SAFETY: plain socket(2) call; the descriptor is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        bail!(
            "opening an rtnetlink socket to follow address changes: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_nl is valid; the fields are set below.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    addr.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    // SAFETY: `addr` is a valid sockaddr_nl of the size given.
    let rc = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc != 0 {
        bail!(
            "subscribing to address changes (rtnetlink): {}",
            std::io::Error::last_os_error()
        );
    }
    std::thread::Builder::new()
        .name("precinct-addrs".into())
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                // SAFETY: `buf` is valid for its length; the descriptor stays open (owned).
                let n = unsafe {
                    libc::recv(
                        std::os::fd::AsRawFd::as_raw_fd(&fd),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                    )
                };
                if n < 0
                    && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    // ENOBUFS (a burst overflowed the socket) still means "something changed".
                    if std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOBUFS) {
                        log::warn!(
                            "following address changes stopped: {}; the periodic re-read remains",
                            std::io::Error::last_os_error()
                        );
                        return;
                    }
                }
                if !changed() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// The IP address in a `sockaddr`, if it is IPv4 or IPv6.
///
/// # Safety
/// `sa` is null or points at a valid `sockaddr_in` / `sockaddr_in6` as its family says.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: `sa` is not null and points at a sockaddr (the caller's promise).
    match i32::from(unsafe { (*sa).sa_family }) {
        libc::AF_INET => {
            // SAFETY: the family says it is a `sockaddr_in`.
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a `sockaddr_in6`.
            let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
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
