//! `cargo xtask eve-diff --baseline BIN`: replays a set of captures through an earlier
//! `precinct` binary and through the current release build, and requires the EVE output of
//! both to be byte-identical. It is the check behind refactors that must not change
//! behaviour: the project's own synthetic captures, the conformance cases with their rules,
//! and the real captures of `../shared/corpus`, each without rules, with `--midstream`, and
//! (own captures and conformance cases always, the corpus with `--full`) with the Emerging
//! Threats Open rules.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
};

use anyhow::{bail, Context as _};

use crate::{cargo, root};

/// One replay to run through both binaries.
struct Case {
    name: String,
    pcap: PathBuf,
    args: Vec<String>,
}

/// What `run` compares.
pub struct Options {
    /// The earlier binary.
    pub baseline: PathBuf,
    /// Also replay every corpus capture with ET Open (about ten minutes more).
    pub full: bool,
}

fn own_captures(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use tests::mixed::{self, MixOptions};
    let cert_der = mixed::openssl_cert(dir).context("making a certificate with openssl")?;
    let mut out = Vec::new();
    for (name, bytes) in [("mixed-small.pcap", 2 << 20), ("mixed.pcap", 12 << 20)] {
        let path = dir.join(name);
        mixed::write(
            &path,
            &MixOptions {
                target_bytes: bytes,
                cert_der: cert_der.clone(),
            },
        )
        .with_context(|| format!("writing {}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

fn et_open_args(shared: &Path) -> anyhow::Result<Vec<String>> {
    let dir = shared.join("rules/et-open");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    Ok(files
        .iter()
        .flat_map(|f| ["--rules".to_string(), f.display().to_string()])
        .collect())
}

fn cases(shared: &Path, scratch: &Path, full: bool) -> anyhow::Result<Vec<Case>> {
    let et = et_open_args(shared)?;
    let mut cases = Vec::new();
    let mut add = |name: String, pcap: &Path, args: Vec<String>| {
        cases.push(Case {
            name,
            pcap: pcap.to_path_buf(),
            args,
        })
    };
    for p in own_captures(scratch)? {
        let n = p
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        add(format!("own/{n}"), &p, vec![]);
        add(
            format!("own/{n} --midstream"),
            &p,
            vec!["--midstream".into()],
        );
        add(format!("own/{n} et-open"), &p, et.clone());
    }
    let conf = shared.join("conformance/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&conf)
        .with_context(|| format!("reading {}", conf.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let pcaps = files
            .iter()
            .filter(|f| f.extension().is_some_and(|x| x == "pcap" || x == "pcapng"));
        let rules: Vec<String> = files
            .iter()
            .filter(|f| f.extension().is_some_and(|x| x == "rules"))
            .flat_map(|f| ["--rules".to_string(), f.display().to_string()])
            .collect();
        let case = d
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        for p in pcaps {
            add(format!("conformance/{case}"), p, vec![]);
            add(
                format!("conformance/{case} --midstream"),
                p,
                vec!["--midstream".into()],
            );
            if !rules.is_empty() {
                add(format!("conformance/{case} rules"), p, rules.clone());
                let mut mid = rules.clone();
                mid.push("--midstream".into());
                add(format!("conformance/{case} rules --midstream"), p, mid);
            }
        }
    }
    let mut corpus = Vec::new();
    walk(&shared.join("corpus"), &mut corpus)?;
    corpus.sort();
    for p in &corpus {
        let n = p.strip_prefix(shared).unwrap_or(p).display().to_string();
        add(n.clone(), p, vec![]);
        add(format!("{n} --midstream"), p, vec!["--midstream".into()]);
        if full {
            add(format!("{n} et-open"), p, et.clone());
        }
    }
    Ok(cases)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.file_name().is_some_and(|n| {
            n.to_string_lossy().contains(".pcap")
                || n.to_string_lossy().ends_with(".trace")
                || n.to_string_lossy().ends_with(".cap")
        }) {
            out.push(p);
        }
    }
    Ok(())
}

/// The EVE bytes and exit status of one replay.
fn replay(bin: &Path, case: &Case, eve: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let _ = std::fs::remove_file(eve);
    let out = Command::new(bin)
        .args(["replay", "--pcap"])
        .arg(&case.pcap)
        .arg("--eve")
        .arg(eve)
        .args(&case.args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    // Only the outcome counts: a message may name a temporary path.
    let status = format!("{}", out.status);
    Ok((std::fs::read(eve).unwrap_or_default(), status))
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (la, lb): (Vec<&[u8]>, Vec<&[u8]>) = (
        a.split(|&c| c == b'\n').collect(),
        b.split(|&c| c == b'\n').collect(),
    );
    for (i, (x, y)) in la.iter().zip(lb.iter()).enumerate() {
        if x != y {
            return format!(
                "line {}:\n    baseline: {}\n    current:  {}",
                i + 1,
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y)
            );
        }
    }
    format!("{} lines in the baseline, {} now", la.len(), lb.len())
}

/// Builds the release binary, runs every case through both, and fails on any difference.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    if !opts.baseline.is_file() {
        bail!(
            "{} is not a file: pass the earlier precinct binary with --baseline",
            opts.baseline.display()
        );
    }
    cargo(&["build", "--release", "-p", "sensor-user"])?;
    let current = root().join("target/release/precinct");
    let shared = root().join("../shared");
    let scratch = root().join("target/eve-diff");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let cases = cases(&shared, &scratch, opts.full)?;
    eprintln!("eve-diff: {} replays through each binary", cases.len());
    let next = AtomicUsize::new(0);
    let differ: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let records = AtomicUsize::new(0);
    let worker = |slot: usize| -> anyhow::Result<()> {
        let (ea, eb) = (
            scratch.join(format!("a{slot}.json")),
            scratch.join(format!("b{slot}.json")),
        );
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(case) = cases.get(i) else {
                return Ok(());
            };
            let (a, sa) = replay(&opts.baseline, case, &ea)?;
            let (b, sb) = replay(&current, case, &eb)?;
            records.fetch_add(a.iter().filter(|&&c| c == b'\n').count(), Ordering::Relaxed);
            let mut d = differ.lock().unwrap_or_else(|e| e.into_inner());
            if sa != sb {
                d.push(format!("{}: exit {sa} before, {sb} now", case.name));
            } else if a != b {
                d.push(format!("{}: {}", case.name, first_difference(&a, &b)));
            }
        }
    };
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..2).map(|slot| s.spawn(move || worker(slot))).collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
        }
        Ok(())
    })?;
    let differ = differ.into_inner().unwrap_or_else(|e| e.into_inner());
    println!(
        "eve-diff: {} replays, {} records in the baseline, {} differ",
        cases.len(),
        records.load(Ordering::Relaxed),
        differ.len()
    );
    for d in differ.iter().take(20) {
        println!("  {d}");
    }
    if !differ.is_empty() {
        bail!("EVE output changed in {} replays", differ.len());
    }
    Ok(())
}
