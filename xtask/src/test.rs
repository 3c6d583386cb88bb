//! `cargo xtask test`: formatting and lints, then every test tier this machine can run —
//! host unit tests, kernel `TestRun` tests and namespace labs (privileged tiers fail rather
//! than skip when run as root) — and a closing `N passed, N failed` line.

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

/// Runs the tiers; `extra` goes to `cargo test` after `--`.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
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
    println!(
        "tiers run: host unit tests, kernel TestRun tests{}, namespace labs{}; not yet in this \
         tree: conformance replay (needs `precinct replay`) and fuzzing",
        if is_root() {
            ""
        } else {
            " (skipped: not root)"
        },
        if is_root() {
            ""
        } else {
            " (skipped: not root)"
        },
    );
    println!("xtask: {} passed, {} failed", tally.passed, tally.failed);
    if !status.success() || tally.failed > 0 {
        bail!("tests failed");
    }
    if tally.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
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
