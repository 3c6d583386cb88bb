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

mod facts;
mod probe;

use facts::*;
use probe::*;

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
        matcher_check(crate::detect::hyperscan::available()),
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

/// Whether the rule prefilters can use Hyperscan (`rules.matcher = "auto"` falls back to
/// Aho-Corasick, correct but several times slower with a large rule set).
fn matcher_check(hyperscan: Result<&str, &str>) -> Check {
    match hyperscan {
        Ok(version) => Check {
            name: "matcher",
            status: Status::Ok,
            detail: format!("rule prefilters on Hyperscan {version}"),
            fix: None,
        },
        Err(why) => Check {
            name: "matcher",
            status: Status::Warn,
            detail: format!("rule prefilters on Aho-Corasick: {why}"),
            fix: Some(
                "apt-get install libhyperscan5 (x86-64 with SSSE3) for faster detection".to_owned(),
            ),
        },
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

#[cfg(test)]
mod tests;
