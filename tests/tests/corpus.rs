//! The real-traffic tier: every capture in `../shared/corpus` (866 captures from the Zeek and
//! Arkime test suites, written by tools and networks this project did not write) replayed
//! with default settings. None may crash, exit with an error, or take longer than a bound;
//! each must give well-formed EVE. (`cargo xtask test` then compares a sample with Suricata
//! and holds the agreement to a floor: see xtask/src/test/corpus.rs.)

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::agent::precinct_bin;

/// No corpus capture is larger than a few MB: a replay longer than this is a hang.
const BOUND: Duration = Duration::from_secs(60);

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            captures(&p, out);
        } else {
            // Captures by name (`.pcap`, `.pcapng`, `.cap`, `.trace`, compressed or not), as
            // `cargo xtask compare` picks them; the licence files beside them are not.
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
}

/// Runs `precinct replay` on `pcap`, killing it at [`BOUND`]. (exit ok, stderr, EVE lines,
/// time taken).
fn replay(pcap: &Path, eve: &Path) -> (bool, String, String, Duration) {
    let _ = std::fs::remove_file(eve);
    let started = Instant::now();
    let mut child = Command::new(precinct_bin())
        .args(["replay", "--pcap"])
        .arg(pcap)
        .arg("--eve")
        .arg(eve)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start precinct replay");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut err);
    }
    let eve = std::fs::read_to_string(eve).unwrap_or_default();
    (status.is_some_and(|s| s.success()), err, eve, took)
}

#[test]
#[cfg_attr(not(shared), ignore = "needs ../shared/corpus beside the checkout")]
fn every_corpus_capture_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let mut pcaps = Vec::new();
    captures(&dir, &mut pcaps);
    pcaps.sort();
    assert!(
        pcaps.len() >= 800,
        "{} captures under {}",
        pcaps.len(),
        dir.display()
    );
    let scratch = std::env::temp_dir().join(format!("precinct-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let eve = scratch.join("eve.json");
    let mut failures = Vec::new();
    let (mut records, mut slowest) = (0usize, (Duration::ZERO, PathBuf::new()));
    for pcap in &pcaps {
        let (ok, err, out, took) = replay(pcap, &eve);
        let name = pcap
            .strip_prefix(&dir)
            .unwrap_or(pcap)
            .display()
            .to_string();
        if took > slowest.0 {
            slowest = (took, pcap.clone());
        }
        if !ok {
            let last = err.lines().last().unwrap_or("killed at the time bound");
            failures.push(format!("{name}: {last}"));
            continue;
        }
        if err.contains("panicked") {
            failures.push(format!("{name}: panicked"));
        }
        for line in out.lines() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) if v["event_type"].is_string() && v["timestamp"].is_string() => records += 1,
                _ => {
                    failures.push(format!("{name}: not an EVE record: {line:.200}"));
                    break;
                }
            }
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    println!(
        "{} captures, {records} records; slowest {:.2} s ({})",
        pcaps.len(),
        slowest.0.as_secs_f64(),
        slowest.1.display()
    );
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(records > 5_000, "the corpus gives records: {records}");
}

/// `rules.matcher` changes how the rule prefilters search, never what matches: with ET Open
/// on the whole corpus (once over), Hyperscan and Aho-Corasick must give byte-identical EVE,
/// and enough alerts for that to mean something. Hyperscan must be there (`cargo xtask setup`
/// installs libhyperscan5): a missing one fails the load, not the comparison.
#[test]
#[cfg_attr(
    not(shared),
    ignore = "needs ../shared/corpus and ../shared/rules beside the checkout"
)]
fn both_matchers_give_the_same_records_on_the_corpus_with_et_open() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    let scratch = std::env::temp_dir().join(format!("precinct-matchers-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let merged = scratch.join("corpus.pcap");
    let (packets, _) = tests::corpus::merge_corpus(&shared.join("corpus"), &merged, 1);
    assert!(packets > 100_000, "{packets} packets merged");
    let mut rule_files: Vec<PathBuf> = std::fs::read_dir(shared.join("rules/et-open"))
        .expect("et-open")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    rule_files.sort();
    let mut outputs = Vec::new();
    for matcher in ["aho-corasick", "hyperscan"] {
        let config = scratch.join(format!("{matcher}.toml"));
        std::fs::write(&config, format!("[rules]\nmatcher = \"{matcher}\"\n")).expect("config");
        let eve = scratch.join(format!("{matcher}.json"));
        let mut cmd = Command::new(precinct_bin());
        cmd.args(["replay", "--pcap"])
            .arg(&merged)
            .arg("--config")
            .arg(&config)
            .arg("--eve")
            .arg(&eve);
        for f in &rule_files {
            cmd.arg("--rules").arg(f);
        }
        let out = cmd.output().expect("precinct replay");
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{matcher}: {log}");
        let on = if matcher == "hyperscan" {
            "on hyperscan"
        } else {
            "on aho-corasick"
        };
        assert!(log.contains(on), "{matcher} was not the one used: {log}");
        outputs.push(std::fs::read_to_string(&eve).expect("eve"));
    }
    std::fs::remove_dir_all(&scratch).ok();
    let alerts = outputs[0]
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .count();
    assert!(alerts >= 50, "ET Open alerts on the corpus: {alerts}");
    let (ac, hs): (Vec<&str>, Vec<&str>) =
        (outputs[0].lines().collect(), outputs[1].lines().collect());
    let first = ac.iter().zip(&hs).position(|(a, h)| a != h);
    assert!(
        ac.len() == hs.len() && first.is_none(),
        "{} records with aho-corasick, {} with hyperscan; first difference at {first:?}:\n{:.400}\n{:.400}",
        ac.len(),
        hs.len(),
        first.map_or("", |i| ac[i]),
        first.map_or("", |i| hs[i]),
    );
}
