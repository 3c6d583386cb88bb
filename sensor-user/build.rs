//! Builds the eBPF object (`sensor-ebpf`) with the nightly toolchain and `bpf-linker`, and
//! places it in `OUT_DIR` for `include_bytes_aligned!`.
use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};
// A build dependency only so that cargo rebuilds this crate when the programs change.
use sensor_ebpf as _;

fn main() -> anyhow::Result<()> {
    // Unit tests that need root (a BPF map) are ignored, by name, when built without it.
    println!("cargo::rustc-check-cfg=cfg(privileged)");
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=SUDO_USER");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        println!("cargo::rustc-cfg=privileged");
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("sensor-user has no parent directory"))?
        .join("sensor-ebpf");
    let root = root.to_str().context("non-UTF-8 path to sensor-ebpf")?;
    let package = Package {
        name: "sensor-ebpf",
        root_dir: root,
        ..Default::default()
    };
    aya_build::build_ebpf([package], Toolchain::default())
        .context("building the eBPF programs failed; `cargo xtask setup` installs what they need")
}
