//! Shared helpers for Precinct's integration tests: a packet builder and a packet corpus
//! (so tests build their own traffic), the host model of the kernel programs, privileged-test
//! gating, and network-namespace labs.

pub mod agent;
pub mod collectors;
pub mod lab;
pub mod mixed;
pub mod model;
pub mod packets;
pub mod prometheus;
pub mod rng;
pub mod session;
pub mod traffic;

/// `true` when the tests run as root. Privileged tests call [`require_root`].
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns `false` (after saying why) when a privileged test must be skipped: not root, and
/// `PRECINCT_REQUIRE_PRIVILEGED` unset. With that variable set (as `cargo xtask test` does), a
/// missing privilege is a failure instead of a skip.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("PRECINCT_REQUIRE_PRIVILEGED").is_some() {
        panic!(
            "{test} needs root (BPF, network namespaces) and PRECINCT_REQUIRE_PRIVILEGED is set"
        );
    }
    eprintln!("skipping {test}: needs root for BPF and network namespaces");
    false
}
