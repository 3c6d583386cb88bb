//! `cargo xtask deploy`: installs a release of the agent, its configuration, rule and list
//! files and (with systemd) the hardened unit on the hosts of an inventory, over the system's
//! ssh and scp; checks the configuration with the new binary on each host before anything
//! live changes, restarts, waits for health, and puts the previous version back when health
//! fails. One host after the other; the first failure stops the roll-out. docs/deploy.md.

mod inventory;
mod remote;
mod ssh;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

use anyhow::{bail, Context as _};
use inventory::{Host, Service};

/// What `cargo xtask deploy` was asked to do.
pub struct Options {
    pub inventory: PathBuf,
    /// Comma-separated globs on host names.
    pub hosts: Option<String>,
    pub dry_run: bool,
    /// Deploy this binary instead of building a release.
    pub binary: Option<PathBuf>,
}

/// The unit installed with `service_manager = "systemd"`, unless the inventory names another.
const UNIT: &str = include_str!("../../deploy/precinct.service");

/// Where things go on a host, relative to its root. Each is replaced as a whole and kept as
/// `NAME.prev` for a roll-back: the deploy owns these paths.
pub const BINARY: &str = "usr/local/bin/precinct";
pub const CONFIG: &str = "etc/precinct/precinct.toml";
pub const RULES: &str = "etc/precinct/rules";
pub const LISTS: &str = "etc/precinct/lists";
pub const UNIT_PATH: &str = "etc/systemd/system/precinct.service";
/// Staging, the deployed version's name, and nothing else of the deploy's.
pub const STATE_DIR: &str = "var/lib/precinct";

/// Runs the deploy; an error when any host failed.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    let hosts = inventory::load(&opts.inventory, opts.hosts.as_deref())?;
    let binary = match &opts.binary {
        Some(b) => b.clone(),
        None => {
            crate::cargo(&["build", "--release", "-p", "sensor-user"])?;
            crate::root().join("target/release/precinct")
        }
    };
    anyhow::ensure!(binary.is_file(), "{} is not a file", binary.display());
    let mut failed = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let root = if host.root == "/" {
            String::new()
        } else {
            format!(", root {}", host.root)
        };
        println!("[{}] {}{root}", host.name, host.address);
        match deploy_host(host, &binary, opts.dry_run) {
            Ok(()) => {}
            Err(e) => {
                say(host, &format!("FAILED: {e:#}"));
                failed.push(host.name.clone());
                if !opts.dry_run {
                    let rest: Vec<&str> = hosts[i + 1..].iter().map(|h| h.name.as_str()).collect();
                    if !rest.is_empty() {
                        println!("stopping the roll-out; not touched: {}", rest.join(", "));
                    }
                    break;
                }
            }
        }
    }
    if !failed.is_empty() {
        bail!("deploy failed on {}", failed.join(", "));
    }
    Ok(())
}

/// A change to one installed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Install,
    Upgrade,
    Unchanged,
    Remove,
}

/// The files of one release for one host, laid out as on the host below a local directory
/// (removed on drop), with their SHA-256 sums.
struct Release {
    dir: PathBuf,
    /// The release's name on the host: UTC time and the start of the sum of its sums.
    version: String,
    /// Path relative to the host's root → SHA-256.
    sums: BTreeMap<String, String>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir.parent().unwrap_or(&self.dir));
    }
}

/// Prints `msg` with the host's name before every line.
fn say(host: &Host, msg: &str) {
    for line in msg.lines() {
        println!("[{}] {line}", host.name);
    }
}

fn deploy_host(host: &Host, binary: &Path, dry_run: bool) -> anyhow::Result<()> {
    let say = |msg: &str| say(host, msg);
    check_config_paths(host)?;
    let release = stage_locally(host, binary).context("preparing the release")?;

    let system = remote::connect(host).context("step connect")?;
    say(&format!("connect: ok ({system})"));
    let state = remote::state(host).context("step read the installed files")?;
    say(&format!(
        "installed version: {}",
        state.version.as_deref().unwrap_or("none")
    ));
    let plan = plan(&release.sums, &state.sums);
    let changed = plan.iter().any(|(c, _)| *c != Change::Unchanged);
    say(&format!("plan for version {}:", release.version));
    for (change, rel) in &plan {
        let word = format!("{change:?}").to_lowercase();
        say(&format!("  {word:<9} {}", host.path(rel)));
    }
    if !changed || dry_run {
        let health = remote::probe(host).context("step health")?;
        let healthy = health.is_ok();
        say(&format!(
            "health now: {}",
            match &health {
                Ok(_) => "ok".to_string(),
                Err(why) => format!("failing: {why}"),
            }
        ));
        if dry_run {
            say("dry run: nothing changed");
            return Ok(());
        }
        if !healthy {
            bail!("the installed files are up to date but the agent is not healthy; nothing was changed: look at the service on the host");
        }
        say("unchanged: up to date and healthy, nothing to do");
        return Ok(());
    }

    let _lock = remote::lock(host).context("step lock")?;
    let stage = remote::upload(host, &release.dir.join(&release.version), &release.version)
        .context("step upload")?;
    say(&format!("upload: {} files to {stage}", release.sums.len()));
    match remote::config_check(host, &stage) {
        Ok(out) => say(&format!("config check with the new binary: {}", out.trim())),
        Err(e) => {
            return Err(e.context(format!(
                "step config check: the new configuration was refused on the host; the \
                 running version is untouched (staged files left in {stage})"
            )))
        }
    }
    let had_previous = state.sums.contains_key(BINARY);
    remote::install(host, &stage, &release.version).context("step install")?;
    say(if had_previous {
        "install: done, the previous version kept as *.prev"
    } else {
        "install: done (first install)"
    });
    let restarted = remote::restart(host).context("restart");
    if restarted.is_ok() {
        say("restart: done; waiting for health");
    }
    match restarted.and_then(|()| remote::wait_healthy(host)) {
        Ok(secs) => {
            say(&format!("health: ok ({secs} s)"));
            remote::clean_staging(host).context("step remove the staging directory")?;
            say(&format!("deployed {}", release.version));
            Ok(())
        }
        Err(e) => {
            say(&format!("FAILED after the install: {e:#}"));
            say(if had_previous {
                "rolling back to the previous version"
            } else {
                "first install is not healthy: stopping it and removing its files"
            });
            remote::rollback(host, had_previous).context("step roll back")?;
            if !had_previous {
                bail!(
                    "the first install failed; stopped and removed (staged files left in {stage})"
                );
            }
            let secs = remote::wait_healthy(host).context(
                "step roll back: the previous version was restored but is not healthy either",
            )?;
            say(&format!(
                "rolled back: the previous version is healthy ({secs} s)"
            ));
            bail!(
                "the new version failed; rolled back to {} (the new version's files are in {stage})",
                state.version.as_deref().unwrap_or("the previous version")
            )
        }
    }
}

/// Compares the release with what the host has, file by file.
fn plan(
    local: &BTreeMap<String, String>,
    remote: &BTreeMap<String, String>,
) -> Vec<(Change, String)> {
    let mut plan: Vec<(Change, String)> = local
        .iter()
        .map(|(rel, sum)| {
            let change = match remote.get(rel) {
                None => Change::Install,
                Some(r) if r == sum => Change::Unchanged,
                Some(_) => Change::Upgrade,
            };
            (change, rel.clone())
        })
        .collect();
    for rel in remote.keys() {
        let owned = [RULES, LISTS]
            .iter()
            .any(|d| rel.strip_prefix(d).is_some_and(|r| r.starts_with('/')));
        if owned && !local.contains_key(rel) {
            plan.push((Change::Remove, rel.clone()));
        }
    }
    plan
}

/// Refuses a configuration that names a deployed rule or list file by its absolute path:
/// `config check` in the staging directory would then read the file the running agent uses,
/// not the new one. Relative paths are taken from the configuration's directory, which is the
/// staging directory during the check and /etc/precinct once installed.
fn check_config_paths(host: &Host) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(&host.config) else {
        bail!("reading {}", host.config.display());
    };
    // A file that does not parse is for `config check` on the host to explain.
    let Ok(cfg) = toml::from_str::<toml::Table>(&text) else {
        return Ok(());
    };
    let mut paths: Vec<&str> = Vec::new();
    if let Some(rules) = cfg.get("rules") {
        if let Some(files) = rules.get("files").and_then(|f| f.as_array()) {
            paths.extend(files.iter().filter_map(|f| f.as_str()));
        }
        paths.extend(rules.get("classification").and_then(|c| c.as_str()));
    }
    if let Some(lists) = cfg
        .get("protect")
        .and_then(|p| p.get("lists"))
        .and_then(|l| l.as_array())
    {
        paths.extend(lists.iter().filter_map(|l| l.get("file")?.as_str()));
    }
    for p in paths {
        for dir in [RULES, LISTS] {
            let managed = format!("{}/", host.path(dir));
            if let Some(name) = p.strip_prefix(&managed) {
                let sub = dir.rsplit('/').next().unwrap_or(dir);
                bail!(
                    "{} names {p} by its absolute path: write `{sub}/{name}` (relative to the \
                     configuration) so that the check before the restart reads the new file",
                    host.config.display()
                );
            }
        }
    }
    Ok(())
}

/// Lays the release out in a local temporary directory and sums it.
fn stage_locally(host: &Host, binary: &Path) -> anyhow::Result<Release> {
    let top = std::env::temp_dir().join(format!(
        "precinct-deploy-{}-{}",
        std::process::id(),
        host.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let _ = std::fs::remove_dir_all(&top);
    let tree = top.join("release");
    let mut release = Release {
        dir: top.join("out"),
        version: String::new(),
        sums: BTreeMap::new(),
    };
    std::fs::create_dir_all(&release.dir)
        .with_context(|| format!("creating {}", release.dir.display()))?;
    let mut files: Vec<(String, &Path)> = vec![
        (BINARY.to_string(), binary),
        (CONFIG.to_string(), &host.config),
    ];
    for (dir, srcs) in [(RULES, &host.rules), (LISTS, &host.lists)] {
        std::fs::create_dir_all(tree.join(dir))?;
        for src in srcs {
            let name = src
                .file_name()
                .and_then(|n| n.to_str())
                .context("file name")?;
            files.push((format!("{dir}/{name}"), src));
        }
    }
    for (rel, src) in &files {
        let dst = tree.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // A link is enough for a copy that only gets read; another file system needs a copy.
        if std::fs::hard_link(src, &dst).is_err() {
            std::fs::copy(src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    if host.service == Service::Systemd {
        let dst = tree.join(UNIT_PATH);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match &host.unit {
            Some(u) => std::fs::copy(u, &dst).map(|_| ()),
            None => std::fs::write(&dst, UNIT),
        }
        .with_context(|| format!("writing {}", dst.display()))?;
        files.push((UNIT_PATH.to_string(), Path::new("")));
    }
    let rels: Vec<&str> = files.iter().map(|(r, _)| r.as_str()).collect();
    let out = Command::new("sha256sum")
        .args(&rels)
        .current_dir(&tree)
        .output()
        .context("running sha256sum")?;
    anyhow::ensure!(
        out.status.success(),
        "sha256sum: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).context("sha256sum output")?;
    release.sums = parse_sums(&listing);
    std::fs::write(tree.join("SHA256SUMS"), &listing)?;
    let digest = Command::new("sha256sum")
        .arg("SHA256SUMS")
        .current_dir(&tree)
        .output()
        .context("running sha256sum")?;
    release.version = format!(
        "{}-{}",
        utc_stamp(SystemTime::now()),
        String::from_utf8_lossy(&digest.stdout)
            .get(..12)
            .unwrap_or("0")
    );
    std::fs::rename(&tree, release.dir.join(&release.version))?;
    Ok(release)
}

/// `sha256sum` output → path → sum; names sha256sum had to escape are left out.
pub fn parse_sums(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('\\'))
        .filter_map(|l| {
            let (sum, path) = l.split_once(' ')?;
            let path = path.strip_prefix([' ', '*'])?;
            (sum.len() == 64).then(|| (path.to_string(), sum.to_string()))
        })
        .collect()
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn utc_stamp(t: SystemTime) -> String {
    use time::{macros::format_description, OffsetDateTime};
    OffsetDateTime::from(t)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096);
        assert_eq!(utc_stamp(t), "20240229T123456Z");
    }

    #[test]
    fn plans() {
        let s = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let local = s(&[
            (BINARY, "b2"),
            (CONFIG, "c1"),
            ("etc/precinct/rules/a.rules", "r"),
        ]);
        let remote = s(&[
            (BINARY, "b1"),
            (CONFIG, "c1"),
            ("etc/precinct/rules/old.rules", "o"),
            (UNIT_PATH, "u"),
        ]);
        let p = plan(&local, &remote);
        assert!(p.contains(&(Change::Upgrade, BINARY.into())));
        assert!(p.contains(&(Change::Unchanged, CONFIG.into())));
        assert!(p.contains(&(Change::Install, "etc/precinct/rules/a.rules".into())));
        assert!(p.contains(&(Change::Remove, "etc/precinct/rules/old.rules".into())));
        // Not ours in this mode: never removed.
        assert!(!p.iter().any(|(_, r)| r == UNIT_PATH));
    }

    #[test]
    fn config_must_name_deployed_files_relatively() {
        let dir = std::env::temp_dir().join(format!("xtask-cfgpaths-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("c.toml");
        let mut host = inventory::Host {
            name: "h".into(),
            address: "h".into(),
            port: None,
            ssh_options: vec![],
            sudo: false,
            config: cfg.clone(),
            rules: vec![],
            lists: vec![],
            unit: None,
            root: "/".into(),
            service: Service::Systemd,
            health_command: "true".into(),
            health_timeout: std::time::Duration::ZERO,
            health_stable: std::time::Duration::ZERO,
        };
        let check = |host: &Host, text: &str| {
            std::fs::write(&cfg, text).unwrap();
            check_config_paths(host).map_err(|e| e.to_string())
        };
        assert!(check(
            &host,
            "[rules]\nfiles = [\"rules/a.rules\", \"/var/lib/x.rules\"]\n"
        )
        .is_ok());
        let e = check(
            &host,
            "[rules]\nfiles = [\"/etc/precinct/rules/a.rules\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("write `rules/a.rules`"), "{e}");
        let list = "[[protect.lists]]\nname = \"l\"\nfile = \"/srv/r/etc/precinct/lists/b.txt\"\n";
        assert!(check(&host, list).is_ok());
        host.root = "/srv/r".into();
        let e = check(&host, list).unwrap_err();
        assert!(e.contains("write `lists/b.txt`"), "{e}");
        // Not parseable: for `config check` on the host to explain.
        assert!(check(&host, "[rules\n").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sums() {
        let a = "a".repeat(64);
        let m = parse_sums(&format!(
            "{a}  usr/local/bin/precinct\n{a} *x y\n\\{a}  we\\nird\n"
        ));
        assert_eq!(m.len(), 2);
        assert_eq!(m["x y"], a);
    }
}
