//! `cargo xtask test`: formatting and lints, then every test tier — host unit tests, kernel
//! `TestRun` tests and namespace labs, the release-only tests, the conformance cases, a short
//! run of every fuzz target — and a closing line with what passed, failed and was not run.
//!
//! Nothing passes by not running: a test that cannot run here is `ignore`d with its reason
//! (see `tests/build.rs`) and listed by name; as root with `../shared` beside the checkout
//! (what CI has) any test not run is a failure, and so is a missing `../shared`.

mod tally;

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _};

use crate::{cargo, is_root, root};
use tally::Tally;

/// Formatting, clippy with the workspace lints on every crate (the eBPF crate for its BPF
/// target, with the nightly toolchain that builds it), the unused-dependency check and the
/// file-size check.
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
    crate::deps::check(&root()).context("the unused-dependency check")?;
    crate::deps::xtask_builds_before_setup(&root())?;
    crate::sizes::check(&root())
}

/// What `../shared` must hold: the rules, the conformance cases and the real captures.
const SHARED: [&str; 3] = ["rules/et-open", "conformance/run.py", "corpus"];

/// Tests ignored in debug builds because they need a release build, and the `cargo test`
/// arguments that run them in release.
const RELEASE_ONLY: &[(&str, &[&str])] = &[(
    "protect::table::tests::a_million_entries_build_fast_and_right",
    &[
        "-p",
        "sensor-user",
        "--lib",
        "protect::table::tests::a_million_entries_build_fast_and_right",
    ],
)];

/// Runs `cargo ARGS`, echoing its output and adding it to `tally`; `Ok(false)` when cargo
/// failed.
fn cargo_test(args: &[&str], extra: &[String], tally: &mut Tally) -> anyhow::Result<bool> {
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--")
        .args(extra)
        .current_dir(root())
        .env("PRECINCT_BIN", root().join("target/debug/precinct"))
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    for line in BufReader::new(child.stdout.take().context("cargo test stdout")?).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        tally.add_line(&line);
    }
    Ok(child.wait().context("waiting for cargo test")?.success())
}

/// Runs the tiers; `extra` goes to `cargo test` after `--`.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    let shared = root().join("../shared");
    let missing: Vec<String> = SHARED
        .iter()
        .map(|p| shared.join(p))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the shared material is not beside the checkout: {} (check out ../shared next to this \
             repository, as CI does)",
            missing.join(", ")
        );
    }
    if !is_root() {
        eprintln!(
            "xtask: not root: the kernel (TestRun) and namespace-lab tests will be listed as not \
             run, and the run fails"
        );
    }
    lint()?;
    cargo(&["build", "-p", "sensor-user"])?;
    let mut tally = Tally::default();
    let mut ok = cargo_test(
        &[
            "test",
            "--workspace",
            "--exclude",
            "sensor-ebpf",
            "--no-fail-fast",
        ],
        extra,
        &mut tally,
    )?;
    // The release-only tests, in release; they then count as run.
    for (name, args) in RELEASE_ONLY {
        let mut release = Tally::default();
        let cmd: Vec<&str> = ["test", "--release"]
            .iter()
            .chain(args.iter())
            .copied()
            .collect();
        ok &= cargo_test(&cmd, &["--exact".to_string()], &mut release)?;
        if release.passed == 0 && release.failed == 0 {
            bail!("the release-only test {name} did not run");
        }
        tally.passed += release.passed;
        tally.failed += release.failed;
        tally
            .ignored
            .retain(|i| !i.starts_with(&format!("{name} ")));
    }
    let conformance = conformance(&shared)?;
    let agreement = corpus_agreement(&shared)?;
    // Tier 5, short: every fuzz target from its corpus for a few seconds, so a parser change
    // that crashes on a known seed or a nearby input fails here. `cargo xtask fuzz` runs longer.
    let fuzz = crate::fuzz::run(FUZZ_SMOKE_SECS, None);
    println!(
        "tiers run: host unit tests, kernel TestRun tests, namespace labs, release-only tests, \
         {conformance}, {agreement}, fuzz smoke ({FUZZ_SMOKE_SECS} s per target)"
    );
    println!(
        "xtask: {} passed, {} failed, {} not run (skipped or ignored)",
        tally.passed,
        tally.failed,
        tally.ignored.len()
    );
    for i in &tally.ignored {
        println!("xtask: not run: {i}");
    }
    if !ok || tally.failed > 0 {
        bail!("tests failed");
    }
    fuzz.context("fuzz smoke (tier 5)")?;
    if tally.passed == 0 {
        bail!("no test ran");
    }
    if !tally.ignored.is_empty() {
        bail!(
            "{} tests did not run: every tier runs here as root, so a test that does not run \
             is a failure",
            tally.ignored.len()
        );
    }
    Ok(())
}

/// Every how many corpus captures the agreement tier compares (in name order): a third of the
/// corpus keeps the tier to about three minutes.
const AGREEMENT_SAMPLE: usize = 3;

/// Per event type, the least share of Suricata's records that must have a matching Precinct
/// record in the sample, and the least share of matched records that agree on every key
/// field, in percent: the figures this tree reached on the sample when they were last raised
/// (`cargo xtask compare --pcap ../shared/corpus --sample 3`), less about half a point. A
/// change that loses agreement with Suricata on real traffic fails here; raise them when a
/// change gains.
const AGREEMENT_FLOORS: [(&str, f64, f64); 5] = [
    ("dns", 97.5, 99.0),
    ("flow", 96.0, 75.5),
    ("http", 92.5, 94.5),
    // Few records in the sample (6 and 26): one record's slack, so that a Suricata package
    // update that changes one record does not fail CI by itself.
    ("ssh", 83.0, 83.0),
    ("tls", 96.0, 96.0),
];

/// The real-traffic agreement tier: `cargo xtask compare` on a sample of `../shared/corpus`,
/// held to [`AGREEMENT_FLOORS`].
fn corpus_agreement(shared: &std::path::Path) -> anyhow::Result<String> {
    let report = crate::compare::run(&crate::compare::Options {
        pcap: shared.join("corpus"),
        rules: Vec::new(),
        examples: 2,
        json: Some(root().join("target/corpus-agreement.json")),
        precinct: Some(root().join("target/release/precinct")),
        sample: AGREEMENT_SAMPLE,
    })?;
    let mut low = Vec::new();
    for (kind, cover_floor, agree_floor) in AGREEMENT_FLOORS {
        let Some(t) = report.types.get(kind) else {
            low.push(format!("{kind}: no records"));
            continue;
        };
        let cover = 100.0 * t.matched as f64 / t.suricata.max(1) as f64;
        let agree = 100.0 * t.agree as f64 / t.matched.max(1) as f64;
        if cover < cover_floor || agree < agree_floor {
            low.push(format!(
                "{kind}: {cover:.1}% matched (floor {cover_floor}), {agree:.1}% agree (floor {agree_floor})"
            ));
        }
    }
    if !low.is_empty() {
        bail!(
            "agreement with Suricata on the corpus fell below its floor: {} (details: \
             target/corpus-agreement.json)",
            low.join("; ")
        );
    }
    Ok(format!(
        "corpus agreement with Suricata ({} captures)",
        report.captures
    ))
}

/// Seconds each fuzz target runs in `cargo xtask test` (tier 5 in brief).
const FUZZ_SMOKE_SECS: u32 = 10;

/// The conformance floor: the score this tree reached when the floor was last raised. A
/// change that loses a case fails the tests; raise the floor when a change gains one.
const CONFORMANCE_FLOOR: u64 = 74;

/// Tier 4: the public Suricata test cases in `../shared/conformance`, replayed with the
/// release build. Returns a one-line summary; fails below the floor.
fn conformance(shared: &std::path::Path) -> anyhow::Result<String> {
    let runner = shared.join("conformance/run.py");
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
