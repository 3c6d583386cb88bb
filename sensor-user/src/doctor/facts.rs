//! Host facts as text, parsed: kernel releases, capability masks, mount tables, interface
//! names and types, and which drivers have native XDP.

use super::*;

/// Parses a kernel release such as `6.18.44-fc-v669` or `5.15-rc1`; a missing patch level
/// counts as 0. `None` when major or minor is not a number.
pub(super) fn parse_release(release: &str) -> Option<Version> {
    let mut parts = release.trim().splitn(3, '.');
    let major_part = parts.next()?;
    let major = leading_number(major_part)?;
    // The major must be the whole first component: "6x.1" is not a kernel release.
    if major_part.len() != major.1 {
        return None;
    }
    let minor = leading_number(parts.next()?)?.0;
    let patch = parts.next().and_then(leading_number).map_or(0, |(n, _)| n);
    Some((major.0, minor, patch))
}

/// The decimal number at the start of `s`, and how many bytes it took.
pub(super) fn leading_number(s: &str) -> Option<(u32, usize)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    s[..len].parse().ok().map(|n| (n, len))
}

/// The `CapEff:` bitmask from `/proc/self/status` text.
pub(super) fn parse_cap_eff(status: &str) -> Result<u64, ProbeError> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .ok_or(ProbeError::NoCapEff)?
        .trim();
    // from_str_radix would accept a leading '+', which the kernel never prints.
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ProbeError::MalformedCapEff(hex.to_owned()));
    }
    u64::from_str_radix(hex, 16).map_err(|error| ProbeError::CapEffValue {
        hex: hex.to_owned(),
        error,
    })
}

pub(super) fn has_cap(eff: u64, cap: u32) -> bool {
    eff & (1u64 << cap) != 0
}

/// The capabilities `precinct run` needs on this kernel, when CAP_SYS_ADMIN is not held.
pub(super) fn needed_caps(kernel: Option<Version>) -> Vec<&'static str> {
    // An unknown kernel is assumed modern: the kernel check already warns about it.
    if kernel.is_some_and(|k| k < CAP_BPF_KERNEL) {
        vec!["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    } else {
        vec!["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"]
    }
}

/// The capabilities missing from `eff`. CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON on
/// every kernel (the kernel checks either), and is the only option before 5.8.
pub(super) fn missing_caps(eff: u64, kernel: Option<Version>) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !has_cap(eff, CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if has_cap(eff, CAP_SYS_ADMIN) {
        return missing;
    }
    if kernel.is_some_and(|k| k < CAP_BPF_KERNEL) {
        missing.push("CAP_SYS_ADMIN");
        return missing;
    }
    if !has_cap(eff, CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has_cap(eff, CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// The filesystem type of the topmost mount at `path` in `/proc/self/mounts` text; later lines
/// are mounted over earlier ones.
pub(super) fn mount_type_at<'a>(mounts: &'a str, path: &str) -> Option<&'a str> {
    mounts.lines().rev().find_map(|line| {
        let mut fields = line.split_whitespace();
        let _source = fields.next()?;
        let target = fields.next()?;
        let fstype = fields.next()?;
        (target == path).then_some(fstype)
    })
}

/// The `DEVTYPE=` value in a sysfs `uevent` file, set by virtual devices such as bridge, vlan
/// and bond.
pub(super) fn devtype_from_uevent(uevent: &str) -> Option<&str> {
    uevent
        .lines()
        .find_map(|line| line.trim().strip_prefix("DEVTYPE="))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Mirrors the kernel's `dev_valid_name`.
pub(super) fn valid_ifname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("empty interface name")
    } else if name.len() >= libc::IFNAMSIZ {
        Err("interface names are at most 15 bytes")
    } else if name == "." || name == ".." {
        Err("not an interface name")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        Err("interface names cannot contain '/', ':' or whitespace")
    } else {
        Ok(())
    }
}

/// Drivers with native (driver-mode) XDP in mainline Linux. A few (lan966x, tsnep, mana) gained it
/// after 5.15, so on an older kernel the answer can be optimistic; generic mode remains the
/// fallback either way. Names are as the `device/driver` link, `DEVTYPE=` or `ethtool -i` report
/// them, which is why some drivers appear under more than one name.
pub(super) const NATIVE_XDP_DRIVERS: &[&str] = &[
    "atlantic",
    "bnxt_en",
    "bond",
    "bonding",
    "cpsw",
    "ena",
    "enetc",
    "fec",
    "fsl_enetc",
    "gve",
    "hv_netvsc",
    "i40e",
    "ice",
    "igb",
    "igc",
    "ixgbe",
    "ixgbevf",
    "lan966x",
    "lan966x-switch",
    "mana",
    "mlx4_core",
    "mlx4_en",
    "mlx5_core",
    "mvneta",
    "mvpp2",
    "netsec",
    "netvsc",
    "nfp",
    "nicvf",
    "qede",
    "sfc",
    "stmmac",
    "stmmaceth",
    "tsnep",
    "tun",
    "veth",
    "vif",
    "virtio_net",
    "xen-netfront",
];

pub(super) fn native_xdp(driver: &str) -> bool {
    NATIVE_XDP_DRIVERS.contains(&driver)
}
