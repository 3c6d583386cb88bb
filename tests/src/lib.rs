//! Shared helpers for Precinct's integration tests: a packet builder and a packet corpus
//! (so tests build their own traffic), the host model of the kernel programs, privileged-test
//! gating, and network-namespace labs.

pub mod agent;
pub mod collectors;
#[cfg(feature = "corpus")]
pub mod corpus;
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

/// Fails the test `test` unless it runs as root. Privileged tests carry
/// `#[cfg_attr(not(privileged), ignore = "needs root: …")]`: `build.rs` sets `privileged` when
/// the tests are built as root, so a run without root lists them as ignored, by name, instead
/// of passing them; a binary built as root and run without it fails here rather than pass.
pub fn require_root(test: &str) {
    assert!(
        is_root(),
        "{test} needs root (BPF programs, network namespaces); run it as root, as `cargo xtask \
         test` does, or see it listed as ignored when the tests are built without root"
    );
}
