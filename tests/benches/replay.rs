//! Replay throughput and memory beside Suricata on the same capture in the same run: a
//! 110 MB mixed HTTP/DNS/TLS/SSH capture this bench builds, first without rules, then with
//! the Emerging Threats Open rules from `../shared/rules/et-open` (load time, throughput,
//! peak memory, and the agreement of alerts on the rules both engines loaded).
//!
//! Then the same on real traffic: every capture of `../shared/corpus` merged into one (in name
//! order, each file shifted in time to start a second after the previous one ended; the whole
//! merge three times, a day apart), single thread, no rules and ET Open, with each engine's
//! rule load and start-up measured on a one-frame capture and taken out of its processing
//! time.
//!
//! `cargo xtask bench` runs it after the datapath bench. Suricata is the Debian package
//! (`cargo xtask setup` installs it from bookworm-backports).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use precinct::detect::{addr::default_vars, classification::Classifications, RuleSet};
use tests::mixed::{self, MixOptions};

const CAPTURE_BYTES: usize = 110 << 20;

struct Run {
    wall: Duration,
    max_rss_kb: i64,
}

/// Runs `cmd`, waiting with `wait4` to learn its peak resident memory.
fn measured(cmd: &mut Command, what: &str) -> Run {
    let started = Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also gives the peak memory"
    )]
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "starting {what}: {e}; `cargo xtask bench` (as root) installs Suricata and \
                 builds precinct before it runs this bench"
            )
        });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, and `status` and `usage` are valid for writing.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(rc, pid, "waiting for {what}");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read as _;
            let _ = e.read_to_string(&mut err);
        }
        panic!(
            "{what} failed (status {status}): {}",
            err.chars()
                .rev()
                .take(800)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
    }
    Run {
        wall,
        max_rss_kb: usage.ru_maxrss,
    }
}

fn precinct_bin() -> PathBuf {
    tests::agent::precinct_bin()
}

fn alerts_by_sid(eve: &Path) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    let text = std::fs::read_to_string(eve).unwrap_or_default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["event_type"] == "alert" {
            if let Some(sid) = v["alert"]["signature_id"].as_u64() {
                *m.entry(sid).or_default() += 1;
            }
        }
    }
    m
}

fn line(name: &str, r: &Run, bytes: u64, packets: usize) -> String {
    let secs = r.wall.as_secs_f64();
    format!(
        "{name:<28} {:>8.2} s {:>10.0} pkt/s {:>8.1} Mbit/s {:>8} MiB peak",
        secs,
        packets as f64 / secs,
        bytes as f64 * 8.0 / secs / 1e6,
        r.max_rss_kb / 1024
    )
}

/// The `time elapsed` Suricata logs at exit (processing, after the rule load).
fn suricata_elapsed(log: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("time elapsed"))?;
    let secs: f64 = line
        .rsplit("time elapsed")
        .next()?
        .trim()
        .trim_end_matches('s')
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(secs))
}

/// One engine's replay command on `pcap` with `rules` (none: no rules).
fn engine(which: &str, bin: &Path, pcap: &Path, rules: Option<&Path>, out: &Path) -> Command {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).expect("dir");
    if which == "precinct" {
        let mut c = Command::new(bin);
        c.args(["replay", "--pcap"])
            .arg(pcap)
            .arg("--eve")
            .arg(out.join("eve.json"));
        if let Some(r) = rules {
            c.arg("--rules").arg(r);
        }
        c
    } else {
        let mut c = Command::new("suricata");
        c.arg("-r")
            .arg(pcap)
            .args(["-k", "none", "--runmode", "single", "-S"])
            .arg(rules.unwrap_or(Path::new("/dev/null")))
            .arg("-l")
            .arg(out);
        c
    }
}

/// The merged-corpus half: processing time with each engine's load taken out.
fn real_traffic(dir: &Path, bin: &Path, et_rules: Option<&Path>) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if !corpus.is_dir() {
        println!(
            "\nthe corpus is not at {}: skipping the real-traffic part",
            corpus.display()
        );
        return;
    }
    let merged = dir.join("corpus-merged.pcap");
    let (packets, bytes) = tests::corpus::merge_corpus(&corpus, &merged, 3);
    // One ARP frame: Suricata refuses a capture without packets; neither engine inspects it.
    let empty = dir.join("one-arp.pcap");
    let arp = tests::packets::eth(&[], 0x0806, &[0u8; 28]);
    tests::session::write_pcap(&empty, &[arp], 1_790_000_000, 10).expect("one-frame capture");
    println!();
    println!(
        "Real traffic: ../shared/corpus merged three times ({} MB, {packets} packets), single thread, best of 3:",
        bytes / 1_000_000
    );
    // Best of three by wall time, with the best processing time Suricata logged
    // (`time elapsed`: from "Engine started", after the rule load, to the end).
    let best = |which: &str, pcap: &Path, rules: Option<&Path>| {
        let mut logged: Option<Duration> = None;
        let run = (0..3)
            .map(|_| {
                let out = dir.join("out");
                let r = measured(&mut engine(which, bin, pcap, rules, &out), which);
                if let Some(t) = suricata_elapsed(&out.join("suricata.log")) {
                    logged = Some(logged.map_or(t, |l| l.min(t)));
                }
                r
            })
            .min_by_key(|r| r.wall)
            .expect("three runs");
        (run, logged)
    };
    let mut sets: Vec<(&str, Option<&Path>)> = vec![("no rules", None)];
    if let Some(r) = et_rules {
        sets.push(("ET Open", Some(r)));
    }
    for (name, rules) in sets {
        let mut row = Vec::new();
        for which in ["precinct", "suricata"] {
            let (load, _) = best(which, &empty, rules);
            let (run, logged) = best(which, &merged, rules);
            // Precinct: its wall time less its load on a one-frame capture. Suricata: what it
            // logs (its load time varies by seconds from run to run, more than it processes).
            let processing = logged.unwrap_or_else(|| run.wall.saturating_sub(load.wall));
            println!(
                "  {name:<9} {which:<9} wall {:>6.2} s; load and start-up (one-frame capture) {:>6.2} s; processing {:>6.2} s ({:>8.0} pkt/s); {:>5} MiB peak",
                run.wall.as_secs_f64(),
                load.wall.as_secs_f64(),
                processing.as_secs_f64(),
                packets as f64 / processing.as_secs_f64().max(1e-9),
                run.max_rss_kb / 1024
            );
            row.push((run, processing));
        }
        let (p, s) = (&row[0], &row[1]);
        println!(
            "  {name}: processing ratio suricata/precinct {:.2} (target: at least 2.0); wall ratio {:.2}{}; peak memory ratio precinct/suricata {:.2} (target: at most 0.5)",
            s.1.as_secs_f64() / p.1.as_secs_f64().max(1e-9),
            s.0.wall.as_secs_f64() / p.0.wall.as_secs_f64(),
            if rules.is_some() { " (target: at least 5.0)" } else { "" },
            p.0.max_rss_kb as f64 / s.0.max_rss_kb.max(1) as f64
        );
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let pcap = dir.join("mixed.pcap");
    if let Some(out) = std::env::var_os("PRECINCT_BENCH_WRITE_CAPTURE") {
        // The child half: build the capture and exit, so the measuring process stays small
        // (a child's peak memory counts the pages it shares with its parent before exec).
        let cert = mixed::openssl_cert(&dir).expect("openssl");
        let opts = MixOptions {
            target_bytes: CAPTURE_BYTES,
            cert_der: cert,
        };
        let n = mixed::write(Path::new(&out), &opts).expect("write the capture");
        println!("{n}");
        return;
    }
    if std::env::var_os("PRECINCT_BENCH_REAL_ONLY").is_some() {
        // The real-traffic half alone (for a quick look; `cargo xtask bench` runs both).
        let all_rules = dir.join("et-open-all.rules");
        real_traffic(
            &dir,
            &precinct_bin(),
            all_rules.exists().then_some(all_rules.as_path()),
        );
        return;
    }
    let started = Instant::now();
    let gen = Command::new(std::env::current_exe().expect("own path"))
        .env("PRECINCT_BENCH_WRITE_CAPTURE", &pcap)
        .output()
        .expect("build the capture");
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let packets: usize = String::from_utf8_lossy(&gen.stdout)
        .trim()
        .parse()
        .expect("packet count");
    let bytes = std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
    println!(
        "capture: {} ({} MB, {packets} packets) built in {:.1} s",
        pcap.display(),
        bytes / 1_000_000,
        started.elapsed().as_secs_f64()
    );
    let bin = precinct_bin();
    let suricata_out = dir.join("suricata");
    let empty_rules = dir.join("empty.rules");
    std::fs::write(&empty_rules, "").expect("empty rules");

    println!();
    println!("No rules (best of 3; wall time including start-up):");
    let best = |mut f: Box<dyn FnMut() -> Run>| {
        (0..3)
            .map(|_| f())
            .min_by_key(|r| r.wall)
            .expect("three runs")
    };
    let p = best(Box::new(|| {
        measured(
            Command::new(&bin)
                .args(["replay", "--pcap"])
                .arg(&pcap)
                .arg("--eve")
                .arg(dir.join("precinct.eve.json")),
            "precinct replay",
        )
    }));
    let s = best(Box::new(|| {
        let _ = std::fs::remove_dir_all(&suricata_out);
        std::fs::create_dir_all(&suricata_out).expect("dir");
        measured(
            Command::new("suricata")
                .arg("-r")
                .arg(&pcap)
                .args(["-k", "none", "--runmode", "single", "-S"])
                .arg(&empty_rules)
                .arg("-l")
                .arg(&suricata_out),
            "suricata",
        )
    }));
    println!("{}", line("precinct replay", &p, bytes, packets));
    println!(
        "{}",
        line("suricata 7 (-k none, single)", &s, bytes, packets)
    );
    println!(
        "throughput ratio precinct/suricata: {:.2} (target: at least 2.0); peak memory ratio: {:.2}",
        s.wall.as_secs_f64() / p.wall.as_secs_f64(),
        p.max_rss_kb as f64 / s.max_rss_kb.max(1) as f64
    );

    let et = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/rules/et-open");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&et)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rules"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        println!(
            "\nET Open rules not found at {}: skipping the rules part",
            et.display()
        );
        real_traffic(&dir, &bin, None);
        return;
    }
    println!();
    println!("ET Open ({} files):", files.len());
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let t = Instant::now();
    let set = RuleSet::load(
        &refs,
        &default_vars(),
        &Classifications::builtin(),
        precinct::detect::Matcher::Auto,
    )
    .expect("load rules");
    let load = t.elapsed();
    let loaded: BTreeSet<u64> = set.signatures().iter().map(|s| u64::from(s.sid)).collect();
    println!(
        "precinct rule load: {} rules in {:.2} s ({} skipped)",
        set.report.loaded,
        load.as_secs_f64(),
        set.report.skipped.len()
    );
    let all_rules = dir.join("et-open-all.rules");
    let mut joined = String::new();
    for f in &files {
        joined.push_str(&std::fs::read_to_string(f).unwrap_or_default());
        joined.push('\n');
    }
    std::fs::write(&all_rules, joined).expect("joined rules");
    let p_eve = dir.join("precinct-et.eve.json");
    let mut cmd = Command::new(&bin);
    cmd.args(["replay", "--pcap"])
        .arg(&pcap)
        .arg("--eve")
        .arg(&p_eve);
    for f in &files {
        cmd.arg("--rules").arg(f);
    }
    let _ = std::fs::remove_file(&p_eve);
    let p = measured(&mut cmd, "precinct replay with ET Open");
    let _ = std::fs::remove_dir_all(&suricata_out);
    std::fs::create_dir_all(&suricata_out).expect("dir");
    let s = measured(
        Command::new("suricata")
            .arg("-r")
            .arg(&pcap)
            .args(["-k", "none", "--runmode", "single", "-S"])
            .arg(&all_rules)
            .arg("-l")
            .arg(&suricata_out),
        "suricata with ET Open",
    );
    println!("{}", line("precinct replay + ET", &p, bytes, packets));
    println!("{}", line("suricata 7 + ET", &s, bytes, packets));
    println!(
        "throughput ratio precinct/suricata: {:.2} (target: at least 2.0); peak memory ratio: {:.2}",
        s.wall.as_secs_f64() / p.wall.as_secs_f64(),
        p.max_rss_kb as f64 / s.max_rss_kb.max(1) as f64
    );
    let ours = alerts_by_sid(&p_eve);
    let theirs = alerts_by_sid(&suricata_out.join("eve.json"));
    let sids: BTreeSet<u64> = ours
        .keys()
        .chain(theirs.keys())
        .copied()
        .filter(|s| loaded.contains(s))
        .collect();
    let same = sids.iter().filter(|s| ours.get(s) == theirs.get(s)).count();
    println!(
        "alerts on rules both loaded: {} sids alerted by either, {} with equal counts",
        sids.len(),
        same
    );
    for sid in &sids {
        let (a, b) = (
            ours.get(sid).copied().unwrap_or(0),
            theirs.get(sid).copied().unwrap_or(0),
        );
        println!(
            "  sid {sid}: precinct {a}, suricata {b}{}",
            if a == b { "" } else { "  <- differs" }
        );
    }
    real_traffic(&dir, &bin, Some(&all_rules));
}
