//! The rule set a command runs with: the files of `[rules]` plus those given with `--rules`,
//! compiled with the configured variables and classifications, and the load report as the
//! agent, `precinct replay` and `precinct config check` print it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use log::{info, warn};

use crate::{
    config::RulesSection,
    detect::{classification::Classifications, sig::Refusal, LoadReport, Matcher, RuleSet},
};

/// Invalid rules named one by one in the log; the rest are only counted.
const NAMED_INVALID: usize = 5;

/// Where the rules come from and what they compile with.
#[derive(Clone, Debug)]
pub struct RuleSources {
    /// Rule files in load order, each once.
    pub files: Vec<PathBuf>,
    /// The `[rules]` section (variables and classification file).
    pub section: RulesSection,
}

impl RuleSources {
    /// The files of `section`, then `extra` (from the command line), without repeats.
    pub fn new(section: &RulesSection, extra: &[PathBuf]) -> RuleSources {
        let mut files: Vec<PathBuf> = Vec::new();
        for f in section.files.iter().chain(extra) {
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
        RuleSources {
            files,
            section: section.clone(),
        }
    }

    /// No rule file is configured.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Reads and compiles the rules. An unreadable rule or classification file is an error;
    /// rules that do not compile are skipped and listed in the report.
    pub fn load(&self) -> anyhow::Result<RuleSet> {
        let classes = classifications(self.section.classification.as_deref())?;
        let paths: Vec<&Path> = self.files.iter().map(PathBuf::as_path).collect();
        let matcher = self.section.matcher;
        matcher_usable(matcher, crate::detect::hyperscan::available())?;
        let mut set = RuleSet::load(&paths, &self.section.merged_vars(), &classes, matcher)?;
        set.inspection_limit = self.section.inspection_limit();
        let r = &set.report;
        info!(
            "rule prefilters: {} of {} on {} ({} KiB of Hyperscan databases)",
            r.prefilters_hyperscan,
            r.prefilters,
            matcher.describe(),
            r.hyperscan_bytes / 1024
        );
        Ok(set)
    }
}

/// Refuses `rules.matcher = "hyperscan"` on a host without it (`hyperscan`: its version, or
/// why it cannot be loaded); the other choices always work.
fn matcher_usable(matcher: Matcher, hyperscan: Result<&str, &str>) -> anyhow::Result<()> {
    match (matcher, hyperscan) {
        (Matcher::Hyperscan, Err(why)) => anyhow::bail!(
            "rules.matcher = \"hyperscan\", but {why}; or set rules.matcher = \"auto\" to fall \
             back to Aho-Corasick"
        ),
        _ => Ok(()),
    }
}

/// The built-in classifications, extended by the `classification.config` at `path`.
pub fn classifications(path: Option<&Path>) -> anyhow::Result<Classifications> {
    let mut classes = Classifications::builtin();
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the classification file {}; fix rules.classification or --classification",
                path.display()
            )
        })?;
        classes.extend_from(&text, &path.display().to_string())?;
    }
    Ok(classes)
}

/// `N loaded, M skipped (k reason, …)`.
pub fn summary(report: &LoadReport) -> String {
    let mut s = format!("{} loaded, {} skipped", report.loaded, report.skipped.len());
    let reasons = report.by_reason();
    if !reasons.is_empty() {
        let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    s
}

/// Logs the summary, and the first few rules refused as invalid (a typo in a local rule is
/// worth a line; an unsupported keyword in a public rule set is not).
pub fn log_report(what: &str, report: &LoadReport) {
    info!("{what}: {}", summary(report));
    let invalid: Vec<_> = report
        .skipped
        .iter()
        .filter(|s| matches!(s.reason, Refusal::Invalid(_)))
        .collect();
    for s in invalid.iter().take(NAMED_INVALID) {
        let sid = s.sid.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        warn!("{}: sid {sid}: {}", s.origin, s.reason);
    }
    if invalid.len() > NAMED_INVALID {
        warn!(
            "{} more invalid rules; `precinct rules check` lists them all",
            invalid.len() - NAMED_INVALID
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_merge_config_and_command_line_once() {
        let section = RulesSection {
            files: vec!["a.rules".into(), "b.rules".into()],
            ..RulesSection::default()
        };
        let s = RuleSources::new(&section, &["b.rules".into(), "c.rules".into()]);
        let names: Vec<&str> = s.files.iter().map(|p| p.to_str().expect("utf-8")).collect();
        assert_eq!(names, ["a.rules", "b.rules", "c.rules"]);
        assert!(RuleSources::new(&RulesSection::default(), &[]).is_empty());
    }

    #[test]
    fn hyperscan_is_refused_only_when_asked_for_and_missing() {
        let missing = Err("Hyperscan is not installed (libhs.so.5: not found)");
        let e = matcher_usable(Matcher::Hyperscan, missing).expect_err("refused");
        let text = format!("{e:#}");
        assert!(
            text.contains("libhs.so.5") && text.contains("\"auto\""),
            "{text}"
        );
        matcher_usable(Matcher::Auto, missing).expect("falls back");
        matcher_usable(Matcher::AhoCorasick, missing).expect("not needed");
        matcher_usable(Matcher::Hyperscan, Ok("5.4.0")).expect("there");
    }

    #[test]
    fn load_uses_vars_and_reports() {
        let dir = std::env::temp_dir().join(format!("precinct-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("local.rules");
        std::fs::write(
            &file,
            "alert tcp $ELECTION_NET any -> any any (msg:\"x\"; sid:1;)\n\
             alert tcp any any -> any any (msg:\"y\"; nosuchkeyword; sid:2;)\n",
        )
        .expect("write");
        let mut section = RulesSection {
            files: vec![file.clone()],
            ..RulesSection::default()
        };
        // Without the variable, the first rule does not compile.
        let set = RuleSources::new(&section, &[]).load().expect("load");
        assert_eq!(set.report.loaded, 0);
        section
            .vars
            .insert("ELECTION_NET".into(), "[192.0.2.0/24]".into());
        let set = RuleSources::new(&section, &[]).load().expect("load");
        assert_eq!(set.report.loaded, 1);
        assert_eq!(
            summary(&set.report),
            "1 loaded, 1 skipped (1 unsupported keyword nosuchkeyword)"
        );
        section.classification = Some(dir.join("missing.config"));
        let Err(e) = RuleSources::new(&section, &[]).load() else {
            panic!("a missing file must fail the load");
        };
        assert!(format!("{e:#}").contains("missing.config"), "{e:#}");
        section.classification = None;
        section.files.push(dir.join("missing.rules"));
        let Err(e) = RuleSources::new(&section, &[]).load() else {
            panic!("a missing file must fail the load");
        };
        assert!(format!("{e:#}").contains("missing.rules"), "{e:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
