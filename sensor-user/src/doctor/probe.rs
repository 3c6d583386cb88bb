//! Reading the host: `/proc` and `/sys` files, `uname`, the memlock limit, the interface's
//! driver. Each probe returns what it read or why it could not.

use super::*;

/// Why a probe of the host could not answer; the checks show it in their detail.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProbeError {
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

pub(super) fn read(path: &'static str) -> Result<String, ProbeError> {
    fs::read_to_string(path).map_err(|error| ProbeError::Read { path, error })
}

pub(super) fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

pub(super) fn uname_release() -> Result<String, ProbeError> {
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

pub(super) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The soft RLIMIT_MEMLOCK in bytes; `None` means unlimited.
pub(super) fn memlock_limit() -> Result<Option<u64>, ProbeError> {
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
pub(super) fn ethtool_driver(name: &str) -> Option<String> {
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

/// The driver behind an interface directory in `/sys/class/net`, from the most to the least
/// specific source.
pub(super) fn iface_driver(dir: &Path, iface: &str) -> Option<String> {
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
