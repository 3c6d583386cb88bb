//! `cargo xtask`: every task a user or CI runs. Each task first runs `setup`, which installs
//! what is missing and is fast when everything is present.

mod compare;
mod demo;
mod deploy;
mod deps;
mod evediff;
mod fuzz;
mod setup;
mod sizes;
mod test;

use std::process::{Command, ExitCode};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Precinct's build, test, demo and benchmark tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the toolchain pieces and Debian packages the build and tests need (idempotent).
    Setup,
    /// Build, run the sensor in a two-namespace lab on live traffic, show events and metrics.
    Demo,
    /// Formatting, clippy with the workspace lints (the eBPF crate too), unused dependencies.
    Lint,
    /// Run every test tier this machine can run.
    Test {
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks (ratios against baselines measured in the same run).
    Bench,
    /// Fuzz every parser (or one target) for a while with cargo-fuzz; fails on any crash.
    Fuzz {
        /// Seconds each target runs.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
        /// One target (header_parser, dns, http, tls, ssh, pcap_reader, rule_parser,
        /// replay_pipeline); all of them when absent.
        target: Option<String>,
    },
    /// Run Suricata and precinct replay on the same captures and compare their records per
    /// event type and field (docs/compare.md).
    Compare {
        /// A capture, or a directory of captures (searched recursively).
        #[arg(long, value_name = "FILE|DIR")]
        pcap: std::path::PathBuf,
        /// A rule file for both engines (repeat for several).
        #[arg(long, value_name = "FILE")]
        rules: Vec<std::path::PathBuf>,
        /// Examples shown per differing field and per unmatched side.
        #[arg(long, default_value_t = 3)]
        examples: usize,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<std::path::PathBuf>,
        /// The precinct binary to compare (default: the release build).
        #[arg(long, value_name = "PATH")]
        precinct: Option<std::path::PathBuf>,
        /// Compare every Nth capture of a directory only, in name order.
        #[arg(long, default_value_t = 1, value_name = "N")]
        sample: usize,
    },
    /// Replay the project's captures, the conformance cases and the corpus through an earlier
    /// precinct binary and the current release build; fail unless the EVE output is
    /// byte-identical (the check for refactors that must not change behaviour).
    EveDiff {
        /// The earlier binary, e.g. a copy of target/release/precinct built at the last commit.
        #[arg(long, value_name = "PATH")]
        baseline: std::path::PathBuf,
        /// Also replay every corpus capture with the ET Open rules (slow).
        #[arg(long)]
        full: bool,
    },
    /// Install a release on the hosts of an inventory over ssh: check, restart, wait for
    /// health, roll back when it fails (docs/deploy.md).
    Deploy {
        /// The inventory (TOML): hosts, and what to install on them.
        #[arg(long, value_name = "FILE")]
        inventory: std::path::PathBuf,
        /// Only the hosts whose names match these comma-separated globs, e.g. 'portal-*'.
        #[arg(long, value_name = "PATTERN")]
        hosts: Option<String>,
        /// Connect and show what would change on each host; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Deploy this precinct binary instead of building a release.
        #[arg(long, value_name = "PATH")]
        binary: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run(),
        Task::Demo => {
            setup::run()?;
            demo::run()
        }
        Task::Lint => {
            setup::run()?;
            test::lint()
        }
        Task::Test { args } => {
            setup::run()?;
            // Suricata: the reference the corpus tier and the DNS version 2 test compare with.
            if is_root() {
                setup::bench_tools()?;
            }
            test::run(&args)
        }
        Task::Bench => {
            setup::run()?;
            setup::bench_tools()?;
            // The replay, adversarial and production benches run the agent's binary.
            cargo(&["build", "--release", "-p", "sensor-user"])?;
            cargo(&[
                "bench",
                "-p",
                "tests",
                "--bench",
                "production",
                "--bench",
                "datapath",
                "--bench",
                "heads",
                "--bench",
                "replay",
                "--bench",
                "protect",
                "--bench",
                "adversarial",
            ])
        }
        Task::Fuzz { seconds, target } => {
            setup::run()?;
            fuzz::run(seconds, target.as_deref())
        }
        Task::Compare {
            pcap,
            rules,
            examples,
            json,
            precinct,
            sample,
        } => {
            setup::run()?;
            setup::bench_tools()?;
            compare::run(&compare::Options {
                pcap,
                rules,
                examples,
                json,
                precinct,
                sample,
            })
            .map(|_| ())
        }
        Task::EveDiff { baseline, full } => evediff::run(&evediff::Options { baseline, full }),
        Task::Deploy {
            inventory,
            hosts,
            dry_run,
            binary,
        } => {
            setup::run()?;
            deploy::run(&deploy::Options {
                inventory,
                hosts,
                dry_run,
                binary,
            })
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> std::path::PathBuf {
    // xtask is a directory of the workspace, so its manifest directory has a parent.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.parent().unwrap_or(dir).to_path_buf()
}

/// Runs `cargo ARGS` in the workspace root, failing on a non-zero exit.
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// `true` when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
