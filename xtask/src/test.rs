//! `cargo xtask test`: formatting and lints, then every test tier this machine can run —
//! host unit tests, kernel `TestRun` tests and namespace labs (privileged tiers fail rather
//! than skip when run as root), the conformance cases, a short run of every fuzz target — and a closing `N passed, N failed` line.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _};

use crate::{cargo, is_root, root};

/// Adds up cargo's `test result:` lines.
#[derive(Default, Debug, PartialEq, Eq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match kind {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Formatting, clippy with the workspace lints on every crate (the eBPF crate for its BPF
/// target, with the nightly toolchain that builds it), and the unused-dependency check.
pub fn lint() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--", "--check"]).context("formatting: run `cargo fmt --all`")?;
    cargo(&[
        "clippy",
        "--workspace",
        // The eBPF crate is no_std for the BPF target; on the host it cannot link.
        "--exclude",
        "sensor-ebpf",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ])
    .context("clippy found problems")?;
    let status = Command::new("cargo")
        .args([
            "+nightly",
            "clippy",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--bins",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(root().join("sensor-ebpf"))
        // The host build's settings are not the BPF target's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("running clippy on the eBPF programs (cargo +nightly)")?;
    if !status.success() {
        bail!("clippy found problems in sensor-ebpf (BPF target)");
    }
    crate::deps::check(&root()).context("the unused-dependency check")
}

/// Runs the tiers; `extra` goes to `cargo test` after `--`.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    lint()?;
    cargo(&["build", "-p", "sensor-user"])?;
    let bin = root().join("target/debug/precinct");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "test",
        "--workspace",
        "--exclude",
        "sensor-ebpf",
        "--no-fail-fast",
        "--",
    ])
    .args(extra)
    .current_dir(root())
    .env("PRECINCT_BIN", &bin)
    .stdout(Stdio::piped());
    let shared = root().join("../shared");
    if shared.join("rules/et-open").is_dir() {
        // CI has ../shared beside the checkout: tests that read it must not skip there.
        cmd.env("PRECINCT_REQUIRE_SHARED", "1");
    }
    if is_root() {
        cmd.env("PRECINCT_REQUIRE_PRIVILEGED", "1");
    } else {
        eprintln!("xtask: not root: kernel (TestRun) and namespace-lab tiers will be skipped");
    }
    let mut child = cmd.spawn().context("starting cargo test")?;
    let mut tally = Tally::default();
    for line in BufReader::new(child.stdout.take().context("cargo test stdout")?).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        tally.add_line(&line);
    }
    let status = child.wait().context("waiting for cargo test")?;
    let conformance = conformance(&shared)?;
    // Tier 5, short: every fuzz target from its corpus for a few seconds, so a parser change
    // that crashes on a known seed or a nearby input fails here. `cargo xtask fuzz` runs longer.
    let fuzz = crate::fuzz::run(FUZZ_SMOKE_SECS, None);
    let not_root = if is_root() {
        ""
    } else {
        " (skipped: not root)"
    };
    println!(
        "tiers run: host unit tests, kernel TestRun tests{not_root}, namespace labs{not_root}, {conformance}, fuzz smoke ({FUZZ_SMOKE_SECS} s per target)"
    );
    println!("xtask: {} passed, {} failed", tally.passed, tally.failed);
    if !status.success() || tally.failed > 0 {
        bail!("tests failed");
    }
    fuzz.context("fuzz smoke (tier 5)")?;
    if tally.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// Seconds each fuzz target runs in `cargo xtask test` (tier 5 in brief).
const FUZZ_SMOKE_SECS: u32 = 10;

/// The conformance floor: the score this tree reached when the floor was last raised. A
/// change that loses a case fails the tests; raise the floor when a change gains one.
const CONFORMANCE_FLOOR: u64 = 73;

/// Tier 4: the public Suricata test cases in `../shared/conformance`, replayed with the
/// release build. Returns a one-line summary; fails below the floor.
fn conformance(shared: &std::path::Path) -> anyhow::Result<String> {
    let runner = shared.join("conformance/run.py");
    if !runner.is_file() {
        return Ok(format!(
            "conformance (skipped: {} is not there)",
            runner.display()
        ));
    }
    cargo(&["build", "--release", "-p", "sensor-user"])?;
    let out = Command::new("python3")
        .arg(&runner)
        .arg("--precinct")
        .arg(root().join("target/release/precinct"))
        .arg("--json")
        .arg(root().join("target/conformance.json"))
        .current_dir(root())
        .output()
        .context("running the conformance runner (python3)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if !out.status.success() {
        bail!(
            "the conformance runner failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let score = text
        .lines()
        .find_map(|l| l.strip_prefix("conformance: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .context("the conformance runner printed no score")?;
    if score < CONFORMANCE_FLOOR {
        bail!("conformance fell to {score} passed, below the floor of {CONFORMANCE_FLOOR}: see target/conformance.json");
    }
    Ok(format!(
        "conformance {score} passed (floor {CONFORMANCE_FLOOR})"
    ))
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn tally_reads_cargo_result_lines() {
        let mut t = Tally::default();
        t.add_line("test result: ok. 13 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.add_line(
            "test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        t.add_line("running 4 tests");
        assert_eq!(
            t,
            Tally {
                passed: 14,
                failed: 3,
                ignored: 2
            }
        );
    }
}
