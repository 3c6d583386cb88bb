//! `precinct rules check`: loads rule files as the sensor would and reports what loaded, what
//! did not and why, for people (a summary and one line per refused rule) or tools (`--json`).

use std::{collections::BTreeMap, path::Path, time::Instant};

use serde_json::json;

use crate::detect::{addr::default_vars, Matcher, RuleSet};

/// Loads `files` and prints the report. Only an unreadable file is an error.
pub fn run(
    files: &[std::path::PathBuf],
    classification: Option<&Path>,
    as_json: bool,
) -> anyhow::Result<()> {
    let classes = crate::rules::classifications(classification)?;
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let started = Instant::now();
    let set = RuleSet::load(&paths, &default_vars(), &classes, Matcher::Auto)?;
    let took = started.elapsed();
    let r = &set.report;
    if as_json {
        let mut reasons = BTreeMap::new();
        for (reason, n) in r.by_reason() {
            reasons.insert(reason, n);
        }
        let skipped: Vec<_> = r
            .skipped
            .iter()
            .map(|s| json!({"origin": s.origin, "sid": s.sid, "reason": s.reason.to_string()}))
            .collect();
        let out = json!({
            "loaded": r.loaded,
            "skipped": r.skipped.len(),
            "skipped_by_reason": reasons,
            "skipped_rules": skipped,
            "load_seconds": took.as_secs_f64(),
            "matcher": Matcher::Auto.describe(),
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "{} rules loaded, {} skipped, in {:.2} s",
        r.loaded,
        r.skipped.len(),
        took.as_secs_f64()
    );
    for (reason, n) in r.by_reason() {
        println!("  {n:>6}  {reason}");
    }
    for s in &r.skipped {
        let sid = s.sid.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        println!("{}: sid {sid}: {}", s.origin, s.reason);
    }
    Ok(())
}
