//! `cargo xtask fuzz [--seconds N] [TARGET]`: test tier 5. Installs `cargo-fuzz` when it is
//! missing, writes the seed corpora that are not there yet, builds the targets in `fuzz/`
//! with the nightly toolchain and runs each (or one) for N seconds, one after the other.
//! Fails when any target crashes, leaks, times out or runs out of memory; libFuzzer leaves
//! the input in `fuzz/artifacts/TARGET/`.

mod seeds;

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _};

use crate::root;

/// The targets in `fuzz/Cargo.toml`, in the order they run.
const TARGETS: &[&str] = &[
    "header_parser",
    "dns",
    "http",
    "tls",
    "ssh",
    "pcap_reader",
    "rule_parser",
    "replay_pipeline",
];

/// One input running longer than this is a hang (an unbounded loop), reported as a crash.
const TIMEOUT_SECS: u32 = 10;

/// Runs `target` (all of them when `None`) for `seconds` each.
pub fn run(seconds: u32, target: Option<&str>) -> anyhow::Result<()> {
    let targets: Vec<&str> = match target {
        Some(t) if TARGETS.contains(&t) => vec![t],
        Some(t) => bail!("no fuzz target {t}; the targets are {}", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    install_cargo_fuzz()?;
    write_seeds(&root().join("fuzz/corpus"))?;
    fuzz_cargo(&["build"]).context("building the fuzz targets")?;
    let mut summary = Vec::new();
    let mut crashed = Vec::new();
    for t in targets {
        let max_time = format!("-max_total_time={seconds}");
        let timeout = format!("-timeout={TIMEOUT_SECS}");
        let (ok, done) = run_target(t, &[&max_time, &timeout])?;
        let result = match (ok, done) {
            (true, Some(done)) => done,
            (true, None) => "ended without libFuzzer's summary".to_owned(),
            (false, _) => format!("FAILED, the input is in fuzz/artifacts/{t}/"),
        };
        summary.push(format!("{t:>16}: {result}"));
        if !ok {
            crashed.push(t);
        }
    }
    println!("fuzz: {seconds} s per target");
    for line in &summary {
        println!("{line}");
    }
    if !crashed.is_empty() {
        bail!(
            "fuzz targets failed: {}; the inputs are in fuzz/artifacts/<target>/, replay one \
             with `cargo +nightly fuzz run <target> <file>`",
            crashed.join(", ")
        );
    }
    Ok(())
}

fn install_cargo_fuzz() -> anyhow::Result<()> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("fuzz: installing cargo-fuzz");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz --locked failed ({status})");
    }
    Ok(())
}

/// `cargo +nightly fuzz ARGS` in the workspace root. Through the rustup proxy, not `$CARGO`
/// (the stable cargo that runs xtask), so that `+nightly` selects the toolchain.
fn fuzz_command(args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly")
        .arg("fuzz")
        .args(args)
        .current_dir(root())
        .env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

fn fuzz_cargo(args: &[&str]) -> anyhow::Result<()> {
    let status = fuzz_command(args)
        .status()
        .with_context(|| format!("running cargo +nightly fuzz {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo +nightly fuzz {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs one target; returns whether it ended cleanly and libFuzzer's closing statistics
/// (`Done N runs in S second(s)` and the last `exec/s`). Progress lines, newly covered
/// functions and the recommended dictionary are not echoed; everything else (build output,
/// crash reports) is.
fn run_target(target: &str, libfuzzer_args: &[&str]) -> anyhow::Result<(bool, Option<String>)> {
    eprintln!("fuzz: {target}");
    let mut args = vec!["run", target, "--"];
    args.extend_from_slice(libfuzzer_args);
    let mut child = fuzz_command(&args)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting cargo +nightly fuzz run {target}"))?;
    let stderr = child.stderr.take().context("fuzzer stderr")?;
    let mut exec_per_sec = None;
    let mut done = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.context("reading the fuzzer's output")?;
        if let Some(rate) = line.split("exec/s: ").nth(1) {
            exec_per_sec = rate.split_whitespace().next().map(str::to_owned);
        }
        if line.starts_with("Done ") {
            done = Some(line.clone());
        }
        if !line.starts_with(['#', '"']) && !line.starts_with("\tNEW_FUNC") {
            eprintln!("{line}");
        }
    }
    let status = child.wait().context("waiting for the fuzzer")?;
    let done = done.map(|d| match &exec_per_sec {
        Some(r) => format!("{d}, {r} exec/s"),
        None => d,
    });
    Ok((status.success(), done))
}

/// Writes each seed that is missing from `corpus/<target>/`. Existing seeds are left alone
/// (the TLS certificate is new every time); delete one to have it rebuilt.
fn write_seeds(corpus: &Path) -> anyhow::Result<()> {
    let missing = seeds::all(&[])
        .iter()
        .any(|(t, name, _)| !corpus.join(t).join(name).exists());
    if !missing {
        return Ok(());
    }
    let scratch = root().join("target/fuzz-seeds");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let cert = ::tests::mixed::openssl_cert(&scratch)
        .context("making a certificate for the TLS seeds with openssl (`cargo xtask setup`)")?;
    for (target, name, bytes) in seeds::all(&cert) {
        let dir = corpus.join(target);
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("fuzz: wrote the seed {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{root, seeds, TARGETS};

    #[test]
    fn targets_match_the_fuzz_crate_and_each_has_seeds() {
        let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).expect("manifest");
        let bins: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("name = ")))
            .map(|n| n.trim_matches('"'))
            .collect();
        assert_eq!(bins, TARGETS);
        let all = seeds::all(b"not a certificate");
        for t in TARGETS {
            assert!(all.iter().any(|(s, _, _)| s == t), "{t} has no seed");
        }
        assert!(all.iter().all(|(_, name, _)| name.starts_with("seed-")));
    }
}
