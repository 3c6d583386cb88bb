//! The checks as pure functions, on well-formed and malformed host facts.

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

#[test]
fn matcher_check_warns_with_the_fix_when_hyperscan_is_missing() {
    let ok = matcher_check(Ok("5.4.0 2021-01-26"));
    assert_eq!(ok.status, Status::Ok);
    assert!(ok.detail.contains("Hyperscan 5.4.0"), "{}", ok.detail);
    assert!(ok.fix.is_none());
    let missing = matcher_check(Err("Hyperscan is not installed (libhs.so.5: not found)"));
    assert_eq!(
        missing.status,
        Status::Warn,
        "detection still works, slower"
    );
    assert!(
        missing.detail.contains("Aho-Corasick"),
        "{}",
        missing.detail
    );
    assert!(missing.detail.contains("libhs.so.5"), "{}", missing.detail);
    assert!(
        missing
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("libhyperscan5")),
        "{:?}",
        missing.fix
    );
}
