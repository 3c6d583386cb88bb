//! `cargo xtask compare --pcap FILE|DIR [--rules FILE]…`: Suricata and `precinct replay` on the
//! same captures, their records matched by flow and content per event type ([`canon`]), and a
//! report per type: matched, only in one engine, and per key field how often matched records
//! differ, with the first examples. It is how to check Precinct against the engine one trusts
//! and how to find what to fix; docs/compare.md tells how to read it.

pub mod canon;
mod report;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
};

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::{cargo, root};
use canon::Canon;
pub use report::Report;

/// What `compare` runs on.
pub struct Options {
    /// A capture, or a directory searched for captures.
    pub pcap: PathBuf,
    /// Rule files for both engines.
    pub rules: Vec<PathBuf>,
    /// Examples shown per differing field.
    pub examples: usize,
    /// Write the report as JSON here too.
    pub json: Option<PathBuf>,
    /// The precinct binary (default: the release build, built first).
    pub precinct: Option<PathBuf>,
    /// Compare every Nth capture only, in name order (1: all).
    pub sample: usize,
}

/// Captures under `dir` (by name: `.pcap`, `.pcapng`, `.cap`, `.trace`, compressed or not).
pub fn captures(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            captures(&p, out)?;
        } else {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if [".pcap", ".pcapng", ".cap", ".trace"]
                .iter()
                .any(|x| n.contains(x))
            {
                out.push(p);
            }
        }
    }
    Ok(())
}

fn read_eve(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Both engines' canonical records for one capture, and whether either could not read it.
fn run_one(
    precinct: &Path,
    pcap: &Path,
    rules: &[PathBuf],
    scratch: &Path,
) -> anyhow::Result<(Vec<Canon>, Vec<Canon>, Vec<String>)> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut problems = Vec::new();
    // Suricata reads plain captures only: hand it a decompressed copy.
    let mut head = [0u8; 4];
    let packed = std::fs::File::open(pcap)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && (head[..2] == [0x1f, 0x8b] || head == [0x28, 0xb5, 0x2f, 0xfd]);
    let plain = scratch.join("input.pcap");
    let suri_input = if packed {
        let tool = if head[0] == 0x1f { "gzip" } else { "zstd" };
        let out = Command::new(tool)
            .arg("-dc")
            .arg(pcap)
            .output()
            .with_context(|| format!("running {tool} -dc"))?;
        std::fs::write(&plain, &out.stdout)
            .with_context(|| format!("writing {}", plain.display()))?;
        plain.as_path()
    } else {
        pcap
    };
    let mut suri = Command::new("suricata");
    // Community ID on, so flow records carry it as Precinct's do; the package's config
    // otherwise, as an operator runs it.
    suri.arg("-r")
        .arg(suri_input)
        .args(["-k", "none", "--runmode", "single", "-l"])
        .arg(scratch)
        .args(["--set", "outputs.1.eve-log.community-id=true"]);
    for r in rules {
        suri.arg("-S").arg(r);
    }
    if rules.is_empty() {
        // No rules at all rather than the package's default rule path.
        suri.args(["-S", "/dev/null"]);
    }
    let out = suri
        .output()
        .context("running suricata (cargo xtask setup installs it)")?;
    if !out.status.success() {
        problems.push(format!(
            "suricata exited {} on {}",
            out.status,
            pcap.display()
        ));
    }
    let eve = scratch.join("precinct.json");
    let mut pre = Command::new(precinct);
    pre.args(["replay", "--pcap"])
        .arg(pcap)
        .arg("--eve")
        .arg(&eve);
    for r in rules {
        pre.arg("--rules").arg(r);
    }
    let out = pre
        .output()
        .with_context(|| format!("running {}", precinct.display()))?;
    if !out.status.success() {
        problems.push(format!(
            "precinct exited {} on {}: {}",
            out.status,
            pcap.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ));
    }
    let name = pcap.display().to_string();
    let tag = |mut c: Canon| {
        c.key = format!("{name} | {}", c.key);
        c
    };
    let s = read_eve(&scratch.join("eve.json"))
        .iter()
        .flat_map(canon::canon)
        .map(tag)
        .collect();
    let p = read_eve(&eve)
        .iter()
        .flat_map(canon::canon)
        .map(tag)
        .collect();
    Ok((s, p, problems))
}

/// Runs the comparison and prints the report; returns it.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let precinct = match &opts.precinct {
        Some(p) => p.clone(),
        None => {
            cargo(&["build", "--release", "-p", "sensor-user"])?;
            root().join("target/release/precinct")
        }
    };
    let mut pcaps = Vec::new();
    if opts.pcap.is_dir() {
        captures(&opts.pcap, &mut pcaps)?;
    } else if opts.pcap.is_file() {
        pcaps.push(opts.pcap.clone());
    } else {
        bail!(
            "{} is neither a capture nor a directory",
            opts.pcap.display()
        );
    }
    pcaps.sort();
    let step = opts.sample.max(1);
    let pcaps: Vec<PathBuf> = pcaps.into_iter().step_by(step).collect();
    if pcaps.is_empty() {
        bail!("no captures under {}", opts.pcap.display());
    }
    let rules: Vec<PathBuf> = opts
        .rules
        .iter()
        .map(|r| std::fs::canonicalize(r).with_context(|| format!("rule file {}", r.display())))
        .collect::<anyhow::Result<_>>()?;
    let next = AtomicUsize::new(0);
    let all: Mutex<(Vec<Canon>, Vec<Canon>, Vec<String>)> = Mutex::default();
    let work = |slot: usize| -> anyhow::Result<()> {
        let scratch = root().join(format!("target/compare/{slot}"));
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(pcap) = pcaps.get(i) else {
                return Ok(());
            };
            let (s, p, problems) = run_one(&precinct, pcap, &rules, &scratch)?;
            let mut a = all.lock().unwrap_or_else(|e| e.into_inner());
            a.0.extend(s);
            a.1.extend(p);
            a.2.extend(problems);
        }
    };
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..2).map(|slot| s.spawn(move || work(slot))).collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a compare worker panicked"))??;
        }
        Ok(())
    })?;
    let (suricata, precinct_recs, problems) = all.into_inner().unwrap_or_else(|e| e.into_inner());
    let report = Report::build(
        pcaps.len(),
        suricata,
        precinct_recs,
        problems,
        opts.examples,
    );
    print!("{}", report.text());
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// Groups records by kind, then by key.
pub fn by_kind(recs: Vec<Canon>) -> BTreeMap<&'static str, BTreeMap<String, Vec<Canon>>> {
    let mut m: BTreeMap<&'static str, BTreeMap<String, Vec<Canon>>> = BTreeMap::new();
    for r in recs {
        m.entry(r.kind)
            .or_default()
            .entry(r.key.clone())
            .or_default()
            .push(r);
    }
    for keys in m.values_mut() {
        for list in keys.values_mut() {
            list.sort_by(|a, b| a.ts.cmp(&b.ts));
        }
    }
    m
}
