//! `precinct doctor`: decides, and explains, whether `precinct run` can work on this host.
//!
//! This module owns the host-readiness checks (kernel version, BTF, bpffs, privileges, locked
//! memory, and the interfaces the operator names) and their plain-text report. Every check only
//! reads: nothing is loaded, attached, mounted or raised. In particular the doctor never probes
//! native XDP by attaching a program, because attaching in driver mode makes many NIC drivers
//! reconfigure their rings and can drop a production link for seconds; the driver → native-XDP
//! answer comes from a documented list instead.
//!
//! The parsing is kept in small functions over strings so that malformed input (odd kernel
//! release strings, a truncated `/proc/self/status`) is unit-tested to give a clear Warn or Fail
//! rather than a panic.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One check's outcome.
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// One line telling the operator what to do; `None` when nothing needs doing.
    pub fix: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[ OK ]",
            Status::Warn => "[WARN]",
            Status::Fail => "[FAIL]",
        }
    }
}

/// Why a probe of the host could not answer; the checks show it in their detail.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: &'static str,
        error: io::Error,
    },
    #[error("uname failed: {0}")]
    Uname(io::Error),
    #[error("getrlimit failed: {0}")]
    Getrlimit(io::Error),
    #[error("no CapEff line in /proc/self/status")]
    NoCapEff,
    #[error("malformed CapEff {0:?} in /proc/self/status")]
    MalformedCapEff(String),
    #[error("malformed CapEff {hex:?}: {error}")]
    CapEffValue {
        hex: String,
        error: std::num::ParseIntError,
    },
}

/// A kernel version as (major, minor, patch).
type Version = (u32, u32, u32);

/// The oldest kernel `precinct run` supports: the BPF ring buffer, bounded loops and the XDP/TC
/// helpers the programs use are all present from here on.
const MIN_KERNEL: Version = (5, 15, 0);
/// CAP_BPF and CAP_PERFMON split out of CAP_SYS_ADMIN in 5.8; before that only CAP_SYS_ADMIN
/// lets a process load programs.
const CAP_BPF_KERNEL: Version = (5, 8, 0);
/// From 5.11 BPF objects are charged to the memory cgroup instead of RLIMIT_MEMLOCK.
const MEMCG_ACCOUNTING_KERNEL: Version = (5, 11, 0);
/// Below this, older kernels fail map creation with EPERM for anything but tiny maps.
const MEMLOCK_WANTED: u64 = 64 * 1024 * 1024;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

const BTF_VMLINUX: &str = "/sys/kernel/btf/vmlinux";
const BPFFS: &str = "/sys/fs/bpf";
const SYS_CLASS_NET: &str = "/sys/class/net";
/// `ARPHRD_LOOPBACK`, as reported in `/sys/class/net/IFACE/type`.
const ARPHRD_LOOPBACK: &str = "772";

/// Runs every check; `ifaces` may be empty.
pub fn checks(ifaces: &[String]) -> Vec<Check> {
    let release = uname_release();
    let kernel = release.as_deref().ok().and_then(parse_release);

    let mut out = vec![
        kernel_check(&release),
        btf_check(Path::new(BTF_VMLINUX).exists()),
        bpffs_check(&read("/proc/self/mounts")),
        privileges_check(euid(), &read("/proc/self/status"), kernel),
        memlock_check(kernel, memlock_limit()),
    ];
    if ifaces.is_empty() {
        out.push(Check {
            name: "interface",
            status: Status::Ok,
            detail: "no interface given: pass --iface to check one".to_owned(),
            fix: None,
        });
    }
    out.extend(
        ifaces
            .iter()
            .map(|iface| interface_check(Path::new(SYS_CLASS_NET), iface)),
    );
    out
}

/// Prints the checks (one line each: status tag, name, detail; the fix indented on the next line
/// when there is one) and returns true when nothing failed (warnings allowed).
pub fn report(checks: &[Check], out: &mut impl Write) -> io::Result<bool> {
    for check in checks {
        writeln!(
            out,
            "{} {:<10} {}",
            check.status.tag(),
            check.name,
            check.detail
        )?;
        if let Some(fix) = &check.fix {
            writeln!(out, "       fix: {fix}")?;
        }
    }
    Ok(checks.iter().all(|c| c.status != Status::Fail))
}

// ---------------------------------------------------------------------------------------------
// Host access: the only functions that touch the system, all read-only.

fn read(path: &'static str) -> Result<String, ProbeError> {
    fs::read_to_string(path).map_err(|error| ProbeError::Read { path, error })
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn uname_release() -> Result<String, ProbeError> {
    // SAFETY: `utsname` is plain bytes, for which all-zero is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname` for the duration of the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(ProbeError::Uname(io::Error::last_os_error()));
    }
    // Stop at the NUL ourselves rather than trusting it to exist inside the array.
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The soft RLIMIT_MEMLOCK in bytes; `None` means unlimited.
fn memlock_limit() -> Result<Option<u64>, ProbeError> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } != 0 {
        return Err(ProbeError::Getrlimit(io::Error::last_os_error()));
    }
    if rl.rlim_cur == libc::RLIM_INFINITY {
        Ok(None)
    } else {
        Ok(Some(rl.rlim_cur))
    }
}

/// Asks the driver its name through `ETHTOOL_GDRVINFO`, the same read-only query as
/// `ethtool -i`. Needed because some virtual devices (veth, tun, dummy) expose neither a
/// `device/driver` link nor a `DEVTYPE=` in sysfs.
fn ethtool_driver(name: &str) -> Option<String> {
    const ETHTOOL_GDRVINFO: u32 = 3;
    // `struct ethtool_drvinfo`: u32 cmd, char driver[32], four more char[32], char[12], 5 × u32.
    const DRVINFO_LEN: usize = 4 + 32 * 5 + 12 + 5 * 4;
    const DRIVER: std::ops::Range<usize> = 4..36;

    let name = name.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    let mut info = [0u8; DRVINFO_LEN];
    info[..4].copy_from_slice(&ETHTOOL_GDRVINFO.to_ne_bytes());
    let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (dst, &src) in ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    let mut req = libc::ifreq {
        ifr_name,
        ifr_ifru: libc::__c_anonymous_ifr_ifru {
            ifru_data: info.as_mut_ptr().cast(),
        },
    };

    // SAFETY: socket(2) has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` holds a NUL-terminated name and points at `info`, a buffer of exactly the
    // size the kernel writes for ETHTOOL_GDRVINFO, which outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) };
    if rc < 0 {
        return None;
    }
    let driver = &info[DRIVER];
    let end = driver.iter().position(|&b| b == 0).unwrap_or(driver.len());
    let driver = std::str::from_utf8(&driver[..end]).ok()?.trim();
    (!driver.is_empty()).then(|| driver.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Checks, built from already-read inputs.

fn kernel_check(release: &Result<String, ProbeError>) -> Check {
    let name = "kernel";
    let release = match release {
        Ok(r) => r,
        Err(e) => {
            return Check {
                name,
                status: Status::Warn,
                detail: format!("{e}; cannot tell whether the kernel is 5.15 or newer"),
                fix: Some("check that `uname -r` reports 5.15 or newer".to_owned()),
            }
        }
    };
    let Some(version) = parse_release(release) else {
        return Check {
            name,
            status: Status::Warn,
            detail: format!(
                "cannot parse kernel release {release:?}; precinct needs 5.15 or newer"
            ),
            fix: Some("check that `uname -r` reports 5.15 or newer".to_owned()),
        };
    };
    let (major, minor, patch) = version;
    if version >= MIN_KERNEL {
        Check {
            name,
            status: Status::Ok,
            detail: format!(
                "Linux {release} ({major}.{minor}.{patch} >= 5.15: BPF ring buffer, bounded \
                 loops, XDP/TC features)"
            ),
            fix: None,
        }
    } else {
        Check {
            name,
            status: Status::Fail,
            detail: format!(
                "Linux {release} ({major}.{minor}.{patch}) is older than 5.15, which precinct \
                 needs for the BPF ring buffer, bounded loops and the XDP/TC features it uses"
            ),
            fix: Some(
                "boot a 5.15 or newer kernel (e.g. the distribution's HWE or backports kernel)"
                    .to_owned(),
            ),
        }
    }
}

fn btf_check(vmlinux_exists: bool) -> Check {
    if vmlinux_exists {
        Check {
            name: "btf",
            status: Status::Ok,
            detail: format!("{BTF_VMLINUX} present"),
            fix: None,
        }
    } else {
        Check {
            name: "btf",
            status: Status::Warn,
            detail: format!(
                "{BTF_VMLINUX} missing: no kernel BTF, so BTF-dependent program features cannot load"
            ),
            fix: Some("use a kernel built with CONFIG_DEBUG_INFO_BTF=y".to_owned()),
        }
    }
}

fn bpffs_check(mounts: &Result<String, ProbeError>) -> Check {
    let name = "bpffs";
    let fix = Some(format!("mount -t bpf bpf {BPFFS}"));
    let mounts = match mounts {
        Ok(m) => m,
        Err(e) => {
            return Check {
                name,
                status: Status::Warn,
                detail: format!("{e}; cannot tell whether a bpf filesystem is at {BPFFS}"),
                fix,
            }
        }
    };
    match mount_type_at(mounts, BPFFS) {
        Some("bpf") => Check {
            name,
            status: Status::Ok,
            detail: format!("bpf filesystem mounted at {BPFFS}"),
            fix: None,
        },
        Some(other) => Check {
            name,
            status: Status::Warn,
            detail: format!(
                "{BPFFS} is a {other} mount, not bpf; pinning maps and programs needs bpffs"
            ),
            fix,
        },
        None => Check {
            name,
            status: Status::Warn,
            detail: format!("no bpf filesystem at {BPFFS}; pinning maps and programs needs one"),
            fix,
        },
    }
}

fn privileges_check(
    euid: u32,
    status: &Result<String, ProbeError>,
    kernel: Option<Version>,
) -> Check {
    let name = "privileges";
    let parsed = status.as_ref().map(|s| parse_cap_eff(s));
    let cap_eff = match &parsed {
        Ok(Ok(eff)) => Ok(*eff),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(*e),
    };
    let needed = needed_caps(kernel);
    let fix = Some(format!(
        "run as root, or grant {} (e.g. systemd AmbientCapabilities={})",
        needed.join(", "),
        needed.join(" ")
    ));
    match cap_eff {
        Ok(eff) => {
            let missing = missing_caps(eff, kernel);
            if missing.is_empty() {
                let via = if has_cap(eff, CAP_SYS_ADMIN) {
                    "CAP_SYS_ADMIN"
                } else {
                    "CAP_BPF, CAP_PERFMON"
                };
                Check {
                    name,
                    status: Status::Ok,
                    detail: format!(
                        "euid {euid}; effective capabilities include CAP_NET_ADMIN, {via}"
                    ),
                    fix: None,
                }
            } else {
                // Root whose capabilities were dropped (a container, a bounding set) is still
                // unable to load programs, so uid 0 alone does not pass.
                let root_note = if euid == 0 {
                    " (running as root, but with a reduced capability set)"
                } else {
                    ""
                };
                Check {
                    name,
                    status: Status::Fail,
                    detail: format!(
                        "euid {euid}; missing capabilities {}{root_note}",
                        missing.join(", ")
                    ),
                    fix,
                }
            }
        }
        // Without CapEff, uid 0 is the best evidence left, but it cannot rule out dropped caps.
        Err(e) if euid == 0 => Check {
            name,
            status: Status::Warn,
            detail: format!("euid 0, but {e}; cannot confirm the capabilities were not dropped"),
            fix: None,
        },
        Err(e) => Check {
            name,
            status: Status::Fail,
            detail: format!("euid {euid} and {e}; cannot confirm {}", needed.join(", ")),
            fix,
        },
    }
}

fn memlock_check(kernel: Option<Version>, limit: Result<Option<u64>, ProbeError>) -> Check {
    let name = "memlock";
    let shown = match &limit {
        Ok(None) => "unlimited".to_owned(),
        Ok(Some(bytes)) => format!("{} KiB", bytes / 1024),
        Err(e) => e.to_string(),
    };
    if kernel.is_some_and(|k| k >= MEMCG_ACCOUNTING_KERNEL) {
        return Check {
            name,
            status: Status::Ok,
            detail: format!(
                "RLIMIT_MEMLOCK {shown}; irrelevant on kernels >= 5.11, which charge BPF memory \
                 to the memory cgroup"
            ),
            fix: None,
        };
    }
    // An unknown kernel is treated as an old one: a too-low limit there breaks map creation.
    let fix = Some("ulimit -l unlimited (or LimitMEMLOCK=infinity in the systemd unit)".to_owned());
    match limit {
        Ok(None) => Check {
            name,
            status: Status::Ok,
            detail: "RLIMIT_MEMLOCK unlimited".to_owned(),
            fix: None,
        },
        Ok(Some(bytes)) if bytes >= MEMLOCK_WANTED => Check {
            name,
            status: Status::Ok,
            detail: format!("RLIMIT_MEMLOCK {shown} (>= 64 MiB)"),
            fix: None,
        },
        Ok(Some(_)) => Check {
            name,
            status: Status::Warn,
            detail: format!(
                "RLIMIT_MEMLOCK {shown} is below 64 MiB; kernels before 5.11 charge BPF maps to it"
            ),
            fix,
        },
        Err(e) => Check {
            name,
            status: Status::Warn,
            detail: format!("{e}; kernels before 5.11 need RLIMIT_MEMLOCK >= 64 MiB for BPF maps"),
            fix,
        },
    }
}

/// `sys_class_net` is `/sys/class/net` outside tests.
fn interface_check(sys_class_net: &Path, iface: &str) -> Check {
    let name = "interface";
    let fix_list = Some("`ip link` lists the interfaces on this host".to_owned());
    // Validating first also keeps names like `../..` from walking out of sysfs.
    if let Err(why) = valid_ifname(iface) {
        return Check {
            name,
            status: Status::Fail,
            detail: format!("{iface:?}: {why}"),
            fix: fix_list,
        };
    }
    let dir = sys_class_net.join(iface);
    if !dir.exists() {
        return Check {
            name,
            status: Status::Fail,
            detail: format!("{iface}: no such interface"),
            fix: fix_list,
        };
    }
    let driver = iface_driver(&dir, iface);
    let operstate = read_trimmed(&dir.join("operstate")).unwrap_or_else(|| "unknown".to_owned());
    // Whether an XDP program is already attached is only cheaply visible over netlink, not in
    // sysfs, so it is left out rather than guessed.
    let shown_driver = driver.as_deref().unwrap_or("unknown");
    let prefix = format!("{iface}: driver {shown_driver}, operstate {operstate}");
    match driver.as_deref() {
        Some(d) if native_xdp(d) => Check {
            name,
            status: Status::Ok,
            detail: format!("{prefix}; XDP modes: driver, generic"),
            fix: None,
        },
        Some(d) => Check {
            name,
            status: Status::Warn,
            detail: format!("{prefix}; XDP modes: generic only (driver {d} has no native XDP)"),
            fix: Some(
                "generic (skb) mode works but is slower; native XDP needs a NIC whose driver supports it"
                    .to_owned(),
            ),
        },
        None => Check {
            name,
            status: Status::Warn,
            detail: format!(
                "{prefix}; XDP modes: generic only (driver not identified, native XDP not assumed)"
            ),
            fix: Some(format!("`ethtool -i {iface}` shows the driver")),
        },
    }
}

/// The driver behind an interface directory in `/sys/class/net`, from the most to the least
/// specific source.
fn iface_driver(dir: &Path, iface: &str) -> Option<String> {
    if let Ok(target) = fs::read_link(dir.join("device/driver")) {
        if let Some(base) = target.file_name() {
            return Some(base.to_string_lossy().into_owned());
        }
    }
    if let Some(devtype) = fs::read_to_string(dir.join("uevent"))
        .ok()
        .as_deref()
        .and_then(devtype_from_uevent)
    {
        return Some(devtype.to_owned());
    }
    if read_trimmed(&dir.join("type")).as_deref() == Some(ARPHRD_LOOPBACK) {
        return Some("loopback".to_owned());
    }
    ethtool_driver(iface)
}

// ---------------------------------------------------------------------------------------------
// Pure parsing.

/// Parses a kernel release such as `6.18.44-fc-v669` or `5.15-rc1`; a missing patch level
/// counts as 0. `None` when major or minor is not a number.
fn parse_release(release: &str) -> Option<Version> {
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
fn leading_number(s: &str) -> Option<(u32, usize)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    s[..len].parse().ok().map(|n| (n, len))
}

/// The `CapEff:` bitmask from `/proc/self/status` text.
fn parse_cap_eff(status: &str) -> Result<u64, ProbeError> {
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

fn has_cap(eff: u64, cap: u32) -> bool {
    eff & (1u64 << cap) != 0
}

/// The capabilities `precinct run` needs on this kernel, when CAP_SYS_ADMIN is not held.
fn needed_caps(kernel: Option<Version>) -> Vec<&'static str> {
    // An unknown kernel is assumed modern: the kernel check already warns about it.
    if kernel.is_some_and(|k| k < CAP_BPF_KERNEL) {
        vec!["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    } else {
        vec!["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"]
    }
}

/// The capabilities missing from `eff`. CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON on
/// every kernel (the kernel checks either), and is the only option before 5.8.
fn missing_caps(eff: u64, kernel: Option<Version>) -> Vec<&'static str> {
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
fn mount_type_at<'a>(mounts: &'a str, path: &str) -> Option<&'a str> {
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
fn devtype_from_uevent(uevent: &str) -> Option<&str> {
    uevent
        .lines()
        .find_map(|line| line.trim().strip_prefix("DEVTYPE="))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Mirrors the kernel's `dev_valid_name`.
fn valid_ifname(name: &str) -> Result<(), &'static str> {
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
const NATIVE_XDP_DRIVERS: &[&str] = &[
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

fn native_xdp(driver: &str) -> bool {
    NATIVE_XDP_DRIVERS.contains(&driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreadable(path: &'static str) -> ProbeError {
        ProbeError::Read {
            path,
            error: io::Error::from(io::ErrorKind::PermissionDenied),
        }
    }

    #[test]
    fn release_parses_common_forms() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18, 44)));
        assert_eq!(parse_release("5.4.0-generic"), Some((5, 4, 0)));
        assert_eq!(parse_release("5.15.0-91-generic"), Some((5, 15, 0)));
        assert_eq!(parse_release("6.1"), Some((6, 1, 0)));
        assert_eq!(parse_release("5.15-rc1"), Some((5, 15, 0)));
        assert_eq!(parse_release("4.19.0+\n"), Some((4, 19, 0)));
    }

    #[test]
    fn release_rejects_garbage() {
        for bad in [
            "garbage",
            "",
            "6",
            "6.",
            "x.1.2",
            "6x.1.2",
            "+6.1",
            "6.x",
            "99999999999.1.1",
        ] {
            assert_eq!(parse_release(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn kernel_check_statuses() {
        let ok = kernel_check(&Ok("6.18.44-fc-v669".to_owned()));
        assert_eq!(ok.status, Status::Ok);
        assert!(ok.detail.contains("6.18.44-fc-v669"));

        assert_eq!(kernel_check(&Ok("5.15.0".to_owned())).status, Status::Ok);

        let old = kernel_check(&Ok("5.4.0-generic".to_owned()));
        assert_eq!(old.status, Status::Fail);
        assert!(old.detail.contains("5.4.0-generic"));
        assert!(old.fix.is_some());

        let garbage = kernel_check(&Ok("garbage".to_owned()));
        assert_eq!(garbage.status, Status::Warn);
        assert!(garbage.detail.contains("garbage"));

        assert_eq!(
            kernel_check(&Err(ProbeError::Uname(io::Error::from_raw_os_error(
                libc::EFAULT
            ))))
            .status,
            Status::Warn
        );
    }

    #[test]
    fn cap_eff_parses() {
        let status = "Name:\tcat\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\n\
                      CapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n";
        assert_eq!(
            parse_cap_eff(status).expect("CapEff"),
            0x0000_01ff_feff_ffff
        );
    }

    #[test]
    fn cap_eff_rejects_malformed() {
        assert!(parse_cap_eff("Name:\tcat\n").is_err());
        assert!(parse_cap_eff("CapEff:\t\n").is_err());
        assert!(parse_cap_eff("CapEff:\tzz\n").is_err());
        assert!(parse_cap_eff("CapEff:\t+1\n").is_err());
        assert!(parse_cap_eff("CapEff:\t00000000000000000001\n").is_err());
    }

    fn caps(list: &[u32]) -> u64 {
        list.iter().fold(0, |acc, &c| acc | 1 << c)
    }

    #[test]
    fn missing_caps_modern_kernel() {
        let k = Some((6, 1, 0));
        assert!(missing_caps(caps(&[CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON]), k).is_empty());
        assert!(missing_caps(caps(&[CAP_SYS_ADMIN, CAP_NET_ADMIN]), k).is_empty());
        assert_eq!(
            missing_caps(caps(&[CAP_BPF, CAP_NET_ADMIN]), k),
            ["CAP_PERFMON"]
        );
        assert_eq!(
            missing_caps(0, k),
            ["CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON"]
        );
        assert_eq!(missing_caps(caps(&[CAP_SYS_ADMIN]), k), ["CAP_NET_ADMIN"]);
        // Unknown kernel: assume CAP_BPF exists.
        assert_eq!(
            missing_caps(caps(&[CAP_NET_ADMIN]), None),
            ["CAP_BPF", "CAP_PERFMON"]
        );
    }

    #[test]
    fn missing_caps_old_kernel_needs_sys_admin() {
        let k = Some((5, 4, 0));
        assert_eq!(
            missing_caps(caps(&[CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON]), k),
            ["CAP_SYS_ADMIN"]
        );
        assert!(missing_caps(caps(&[CAP_SYS_ADMIN, CAP_NET_ADMIN]), k).is_empty());
    }

    #[test]
    fn privileges_check_statuses() {
        let full = Ok("CapEff:\t000001ffffffffff\n".to_owned());
        let none = Ok("CapEff:\t0000000000000000\n".to_owned());
        let broken = Ok("CapEff:\tnope\n".to_owned());
        let k = Some((6, 1, 0));

        assert_eq!(privileges_check(1000, &full, k).status, Status::Ok);

        let fail = privileges_check(1000, &none, k);
        assert_eq!(fail.status, Status::Fail);
        assert!(fail.detail.contains("CAP_BPF"));
        assert!(fail.detail.contains("CAP_NET_ADMIN"));
        assert!(fail.detail.contains("CAP_PERFMON"));
        assert!(fail
            .fix
            .as_deref()
            .unwrap()
            .contains("AmbientCapabilities="));

        // Root with dropped capabilities cannot load programs either.
        let root_dropped = privileges_check(0, &none, k);
        assert_eq!(root_dropped.status, Status::Fail);
        assert!(root_dropped.detail.contains("root"));

        assert_eq!(privileges_check(0, &broken, k).status, Status::Warn);
        assert_eq!(privileges_check(1000, &broken, k).status, Status::Fail);
        assert_eq!(
            privileges_check(1000, &Err(unreadable("/proc/self/status")), k).status,
            Status::Fail
        );
    }

    #[test]
    fn memlock_statuses() {
        let new = Some((5, 15, 0));
        let old = Some((5, 4, 0));
        assert_eq!(memlock_check(new, Ok(Some(64 * 1024))).status, Status::Ok);
        assert!(memlock_check(new, Ok(Some(64 * 1024)))
            .detail
            .contains("memory cgroup"));
        assert_eq!(memlock_check(old, Ok(None)).status, Status::Ok);
        assert_eq!(
            memlock_check(old, Ok(Some(MEMLOCK_WANTED))).status,
            Status::Ok
        );
        let low = memlock_check(old, Ok(Some(64 * 1024)));
        assert_eq!(low.status, Status::Warn);
        assert!(low.fix.as_deref().unwrap().contains("ulimit -l unlimited"));
        assert_eq!(
            memlock_check(None, Ok(Some(64 * 1024))).status,
            Status::Warn
        );
        assert_eq!(
            memlock_check(
                old,
                Err(ProbeError::Getrlimit(io::Error::from_raw_os_error(
                    libc::EINVAL
                )))
            )
            .status,
            Status::Warn
        );
    }

    const MOUNTS: &str = "\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0
";

    #[test]
    fn bpffs_found() {
        assert_eq!(mount_type_at(MOUNTS, "/sys/fs/bpf"), Some("bpf"));
        assert_eq!(bpffs_check(&Ok(MOUNTS.to_owned())).status, Status::Ok);
    }

    #[test]
    fn bpffs_missing_or_shadowed() {
        let without = "sysfs /sys sysfs rw 0 0\n";
        assert_eq!(mount_type_at(without, "/sys/fs/bpf"), None);
        let check = bpffs_check(&Ok(without.to_owned()));
        assert_eq!(check.status, Status::Warn);
        assert_eq!(check.fix.as_deref(), Some("mount -t bpf bpf /sys/fs/bpf"));

        // A bpf mount elsewhere does not count, and a later mount hides an earlier one.
        assert_eq!(
            mount_type_at("bpf /run/bpf bpf rw 0 0\n", "/sys/fs/bpf"),
            None
        );
        let shadowed = format!("{MOUNTS}tmpfs /sys/fs/bpf tmpfs rw 0 0\n");
        assert_eq!(mount_type_at(&shadowed, "/sys/fs/bpf"), Some("tmpfs"));
        assert_eq!(bpffs_check(&Ok(shadowed)).status, Status::Warn);
    }

    #[test]
    fn bpffs_malformed_input() {
        for bad in ["", "garbage", "bpf /sys/fs/bpf\n", "\n\n  \n"] {
            assert_eq!(mount_type_at(bad, "/sys/fs/bpf"), None, "{bad:?}");
        }
        assert_eq!(
            bpffs_check(&Err(unreadable("/proc/self/mounts"))).status,
            Status::Warn
        );
    }

    #[test]
    fn btf_statuses() {
        assert_eq!(btf_check(true).status, Status::Ok);
        let missing = btf_check(false);
        assert_eq!(missing.status, Status::Warn);
        assert!(missing
            .fix
            .as_deref()
            .unwrap()
            .contains("CONFIG_DEBUG_INFO_BTF=y"));
    }

    #[test]
    fn devtype_parses() {
        assert_eq!(
            devtype_from_uevent("DEVTYPE=bridge\nINTERFACE=br0\nIFINDEX=4\n"),
            Some("bridge")
        );
        assert_eq!(devtype_from_uevent("INTERFACE=eth0\nIFINDEX=2\n"), None);
        assert_eq!(devtype_from_uevent("DEVTYPE=\n"), None);
        assert_eq!(devtype_from_uevent(""), None);
    }

    #[test]
    fn native_xdp_lookup() {
        for d in [
            "veth",
            "virtio_net",
            "ixgbe",
            "mlx5_core",
            "mlx4_en",
            "ena",
            "bond",
        ] {
            assert!(native_xdp(d), "{d}");
        }
        for d in ["loopback", "bridge", "vlan", "e1000e", "r8169", "", "VETH"] {
            assert!(!native_xdp(d), "{d}");
        }
    }

    #[test]
    fn ifname_validation() {
        assert!(valid_ifname("eth0").is_ok());
        assert!(valid_ifname("enp0s31f6").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "../../etc",
            "a b",
            "eth0:1",
            "sixteen-chars-xx",
        ] {
            assert!(valid_ifname(bad).is_err(), "{bad:?}");
        }
    }

    /// A throwaway `/sys/class/net` lookalike, removed on drop.
    struct FakeSysfs(std::path::PathBuf);

    impl FakeSysfs {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("precinct-doctor-{}-{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            FakeSysfs(dir)
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn interface_driver_sources() {
        let root = FakeSysfs::new("drivers");
        // Physical NIC: the driver is the device/driver link's basename.
        let nic = root.0.join("pcntfake0");
        fs::create_dir_all(nic.join("device")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../bus/pci/drivers/ixgbe",
            nic.join("device/driver"),
        )
        .unwrap();
        fs::write(nic.join("operstate"), "up\n").unwrap();
        let check = interface_check(&root.0, "pcntfake0");
        assert_eq!(check.status, Status::Ok);
        assert_eq!(
            check.detail,
            "pcntfake0: driver ixgbe, operstate up; XDP modes: driver, generic"
        );

        // Virtual device naming itself in uevent.
        let br = root.0.join("pcntfake1");
        fs::create_dir_all(&br).unwrap();
        fs::write(br.join("uevent"), "DEVTYPE=bridge\nINTERFACE=pcntfake1\n").unwrap();
        let check = interface_check(&root.0, "pcntfake1");
        assert_eq!(check.status, Status::Warn);
        assert!(check
            .detail
            .ends_with("XDP modes: generic only (driver bridge has no native XDP)"));
        assert!(check.detail.contains("operstate unknown"));

        // Loopback is recognised by its ARPHRD type.
        let lo = root.0.join("pcntfake2");
        fs::create_dir_all(&lo).unwrap();
        fs::write(lo.join("type"), "772\n").unwrap();
        assert!(interface_check(&root.0, "pcntfake2")
            .detail
            .contains("driver loopback"));

        // Nothing to go on: warn, never claim native XDP.
        fs::create_dir_all(root.0.join("pcntfake3")).unwrap();
        let check = interface_check(&root.0, "pcntfake3");
        assert_eq!(check.status, Status::Warn);
        assert!(check.detail.contains("driver not identified"));

        assert_eq!(interface_check(&root.0, "pcntfake9").status, Status::Fail);
        assert_eq!(interface_check(&root.0, "../..").status, Status::Fail);
    }

    #[test]
    fn real_host_loopback_found_and_unknown_interface_fails() {
        let all = checks(&["lo".to_owned(), "pcnt-nosuch0".to_owned()]);
        let ifaces: Vec<&Check> = all.iter().filter(|c| c.name == "interface").collect();
        assert_eq!(ifaces.len(), 2);

        let lo = ifaces[0];
        assert_ne!(lo.status, Status::Fail, "{}", lo.detail);
        assert!(
            lo.detail.starts_with("lo: driver loopback"),
            "{}",
            lo.detail
        );
        assert!(
            lo.detail.contains("XDP modes: generic only"),
            "{}",
            lo.detail
        );

        let missing = ifaces[1];
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.detail.contains("no such interface"));
        assert!(missing.fix.as_deref().unwrap().contains("ip link"));

        // Host-level checks always run and never panic, whatever the host.
        for name in ["kernel", "btf", "bpffs", "privileges", "memlock"] {
            assert!(all.iter().any(|c| c.name == name), "{name}");
        }
    }

    #[test]
    fn no_interface_explained() {
        let all = checks(&[]);
        assert!(all
            .iter()
            .any(|c| c.detail == "no interface given: pass --iface to check one"));
    }

    #[test]
    fn report_format_and_result() {
        let list = vec![
            Check {
                name: "kernel",
                status: Status::Ok,
                detail: "fine".to_owned(),
                fix: None,
            },
            Check {
                name: "bpffs",
                status: Status::Warn,
                detail: "missing".to_owned(),
                fix: Some("mount -t bpf bpf /sys/fs/bpf".to_owned()),
            },
        ];
        let mut out = Vec::new();
        assert!(report(&list, &mut out).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[ OK ] kernel     fine\n\
             [WARN] bpffs      missing\n       fix: mount -t bpf bpf /sys/fs/bpf\n"
        );

        let failing = [Check {
            name: "privileges",
            status: Status::Fail,
            detail: "no".to_owned(),
            fix: None,
        }];
        let mut out = Vec::new();
        assert!(!report(&failing, &mut out).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), "[FAIL] privileges no\n");
    }
}
