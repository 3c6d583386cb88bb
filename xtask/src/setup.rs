//! `cargo xtask setup`: installs, only when missing, the nightly `rust-src` component,
//! `bpf-linker` 0.13.0 built against LLVM 22 (the nightly's LLVM), and the Debian packages
//! the tests and the demo use.

use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

/// Debian packages and the command each provides (checked with `dpkg-query`).
const PACKAGES: &[&str] = &[
    "iproute2",       // ip, namespaces and veth pairs
    "iputils-ping",   // ping in labs and the demo
    "ethtool",        // offloads off in labs
    "procps",         // sysctl in lab namespaces
    "tcpdump",        // captures for golden tests
    "gzip",           // compressed captures in replay tests
    "zstd",           // compressed captures in replay tests
    "curl",           // HTTP client in inspection labs
    "dnsutils",       // dig, the DNS client in inspection labs
    "python3",        // lab traffic programs
    "python3-yaml",   // the conformance runner
    "openssl",        // TLS server and client in labs, certificates for tests and benches
    "openssh-client", // ssh, the SSH client in labs
    "openssh-server", // sshd, started by lab tests inside their own namespace only
    "nmap",           // port scans against the port policy in protection labs
    "hping3",         // crafted, spoofed and flooding packets in protection labs
    "bpftool",        // checks which programs are attached in labs
    "prometheus",     // promtool, and a real server scraping the agent in the metrics lab
    "redis-server",   // redis-server and redis-cli, started on loopback by the output tests
    "rsyslog",        // rsyslogd, started on loopback by the output tests
    "libhyperscan5",  // Hyperscan, the rule prefilters' matcher (loaded at run time, as deployed)
];

const LLVM_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
];
const BPF_LINKER_VERSION: &str = "0.13.0";

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run_checked(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn missing_packages(pkgs: &[&str]) -> Vec<String> {
    pkgs.iter()
        .filter(|p| {
            let status = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]));
            !status.is_some_and(|s| s.contains("install ok installed"))
        })
        .map(|p| p.to_string())
        .collect()
}

fn apt_install(pkgs: &[String]) -> anyhow::Result<()> {
    apt_install_from(pkgs, None)
}

/// Installs `pkgs`, from the suite `release` (`apt-get -t`) when given.
fn apt_install_from(pkgs: &[String], release: Option<&str>) -> anyhow::Result<()> {
    if pkgs.is_empty() {
        return Ok(());
    }
    if !crate::is_root() {
        bail!(
            "missing Debian packages {}: run `cargo xtask setup` as root",
            pkgs.join(" ")
        );
    }
    eprintln!("setup: installing {}", pkgs.join(" "));
    // Packages such as openssh-server and suricata start their service on install; tests
    // start their own servers inside lab namespaces, and nothing should listen on (or sniff)
    // the host's interfaces. Debian's
    // policy-rc.d hook (exit 101) keeps services from starting while we install.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let placed = !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok() && {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755)).is_ok()
    };
    let result = apt_get_install(pkgs, release);
    if placed {
        let _ = std::fs::remove_file(policy);
    }
    // Debian enables prometheus.service, which would start at boot and listen on every
    // interface; the metrics lab runs its own server inside its namespace.
    if pkgs.iter().any(|p| p == "prometheus")
        && std::path::Path::new("/run/systemd/system").exists()
    {
        quiet(Command::new("systemctl").args(["disable", "--now", "prometheus"]));
    }
    // Likewise redis-server (listening on 6379) and rsyslog (taking over /dev/log): the
    // output tests start their own on free loopback ports.
    for unit in ["redis-server", "rsyslog"] {
        if pkgs.iter().any(|p| p == unit) && std::path::Path::new("/run/systemd/system").exists() {
            quiet(Command::new("systemctl").args(["disable", "--now", unit]));
        }
    }
    result
}

fn apt_get_install(pkgs: &[String], release: Option<&str>) -> anyhow::Result<()> {
    run_checked(
        Command::new("apt-get").args(["update", "-q"]),
        "apt-get update",
    )?;
    let mut cmd = Command::new("apt-get");
    cmd.args(["install", "-y", "-q", "--no-install-recommends"]);
    if let Some(r) = release {
        cmd.args(["-t", r]);
    }
    run_checked(
        cmd.args(pkgs).env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )
}

fn rust_src() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .context(
        "`rustup component list --toolchain nightly` failed: is the nightly toolchain installed?",
    )?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    eprintln!("setup: adding rust-src to the nightly toolchain");
    run_checked(
        Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]),
        "rustup component add rust-src",
    )
}

fn bpf_linker() -> anyhow::Result<()> {
    let version = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if version.contains(BPF_LINKER_VERSION) {
        return Ok(());
    }
    apt_install(&missing_packages(LLVM_PACKAGES))?;
    eprintln!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (a few minutes)");
    run_checked(
        Command::new("cargo")
            .args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
            ])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
        "cargo install bpf-linker",
    )
}

/// Debian's Suricata 7 (from bookworm-backports; bookworm itself has none), the reference
/// engine the benchmarks, `compare` and the corpus test tier measure against, and openssl for
/// the benchmark's certificate. Not part of `run`: the demo does not wait for it.
pub fn bench_tools() -> anyhow::Result<()> {
    apt_install(&missing_packages(&["openssl"]))?;
    if quiet(Command::new("suricata").arg("-V")) {
        return Ok(());
    }
    if !crate::is_root() {
        bail!("suricata is missing: run this cargo xtask command as root so setup can install it");
    }
    let source =
        std::path::Path::new("/etc/apt/sources.list.d/precinct-bookworm-backports.sources");
    let has_backports = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| {
            d.filter_map(|e| e.ok()).any(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("bookworm-backports"))
            })
        })
        .unwrap_or(false);
    if !has_backports {
        // Same mirror and keyring as the system's own bookworm sources.
        std::fs::write(
            source,
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        )
        .with_context(|| format!("writing {}", source.display()))?;
    }
    apt_install_from(&["suricata".to_string()], Some("bookworm-backports"))
}

/// Installs whatever is missing.
pub fn run() -> anyhow::Result<()> {
    rust_src()?;
    apt_install(&missing_packages(PACKAGES))?;
    bpf_linker()?;
    if !quiet(Command::new("bpf-linker").arg("--version")) {
        bail!("bpf-linker is installed but does not run; is ~/.cargo/bin on PATH?");
    }
    Ok(())
}
