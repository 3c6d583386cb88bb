//! Tells the tests what this machine lets them do, as `cfg`s the test attributes read:
//! `privileged` when built as root (BPF programs, network namespaces), `shared` when
//! `../shared` (rule sets, conformance cases, real captures) is beside the checkout. A test
//! that needs either is `ignore`d with the reason when it is missing, so a run lists it as not
//! run instead of counting it as passed; `cargo xtask test` runs as root, requires `../shared`,
//! and fails when any test was ignored.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(privileged)");
    println!("cargo::rustc-check-cfg=cfg(shared)");
    // Built again when the user changes (root or not) or the shared tree appears.
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=SUDO_USER");
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    println!("cargo::rerun-if-changed={}", shared.display());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        println!("cargo::rustc-cfg=privileged");
    }
    if shared.join("rules/et-open").is_dir() && shared.join("corpus").is_dir() {
        println!("cargo::rustc-cfg=shared");
    }
}
