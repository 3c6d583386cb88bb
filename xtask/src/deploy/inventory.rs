//! The inventory file of `cargo xtask deploy` (format in docs/deploy.md): `[defaults]` and
//! `[[hosts]]` tables, merged key by key into one [`Host`] per host, with local paths taken
//! from the inventory file's directory and rule and list globs expanded.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, ensure, Context as _};
use serde::Deserialize;

/// What `/healthz` is, unless the inventory says otherwise.
pub const DEFAULT_HEALTH_URL: &str = "http://127.0.0.1:9727/healthz";

/// The keys a `[[hosts]]` entry and `[defaults]` may set; a host's own value wins.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Settings {
    name: Option<String>,
    address: Option<String>,
    port: Option<u16>,
    ssh_options: Option<Vec<String>>,
    sudo: Option<bool>,
    config: Option<String>,
    rules: Option<Vec<String>>,
    lists: Option<Vec<String>>,
    unit: Option<String>,
    root: Option<String>,
    service_manager: Option<String>,
    start_command: Option<String>,
    stop_command: Option<String>,
    health_url: Option<String>,
    health_command: Option<String>,
    health_timeout_secs: Option<u64>,
    health_stable_secs: Option<u64>,
}

impl Settings {
    /// `self` over `defaults`, key by key (lists are replaced, not appended).
    fn over(self, d: &Settings) -> Settings {
        let d = d.clone();
        Settings {
            name: self.name,
            address: self.address.or(d.address),
            port: self.port.or(d.port),
            ssh_options: self.ssh_options.or(d.ssh_options),
            sudo: self.sudo.or(d.sudo),
            config: self.config.or(d.config),
            rules: self.rules.or(d.rules),
            lists: self.lists.or(d.lists),
            unit: self.unit.or(d.unit),
            root: self.root.or(d.root),
            service_manager: self.service_manager.or(d.service_manager),
            start_command: self.start_command.or(d.start_command),
            stop_command: self.stop_command.or(d.stop_command),
            health_url: self.health_url.or(d.health_url),
            health_command: self.health_command.or(d.health_command),
            health_timeout_secs: self.health_timeout_secs.or(d.health_timeout_secs),
            health_stable_secs: self.health_stable_secs.or(d.health_stable_secs),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Settings,
    #[serde(default)]
    hosts: Vec<Settings>,
}

/// How the agent is restarted on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// The hardened unit is installed as `precinct.service` and driven with `systemctl`.
    Systemd,
    /// Shell commands run on the host: `stop` must succeed when nothing runs and return only
    /// once the agent has exited; `start` must detach the agent from the ssh session.
    Command { start: String, stop: String },
}

/// One host, every setting resolved.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// The ssh destination: `user@host`, a host name or an ssh-config alias.
    pub address: String,
    pub port: Option<u16>,
    /// Options given to both ssh and scp (`-i KEY`, `-o Name=value`, `-F FILE`, `-J JUMP`).
    pub ssh_options: Vec<String>,
    /// Run the privileged steps through `sudo -n` (a deploy user that is not root).
    pub sudo: bool,
    /// The precinct configuration, installed as /etc/precinct/precinct.toml.
    pub config: PathBuf,
    /// Installed into /etc/precinct/rules/ by file name.
    pub rules: Vec<PathBuf>,
    /// Installed into /etc/precinct/lists/ by file name.
    pub lists: Vec<PathBuf>,
    /// A unit file replacing the built-in deploy/precinct.service (systemd only).
    pub unit: Option<PathBuf>,
    /// Where `/` is on the host for every installed path (a scratch root in tests).
    pub root: String,
    pub service: Service,
    /// Shell command on the host that exits 0 when the agent is healthy.
    pub health_command: String,
    pub health_timeout: Duration,
    /// How long health must hold after it first passes.
    pub health_stable: Duration,
}

impl Host {
    /// The absolute path on the host of `rel` (relative to `/`).
    pub fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root.trim_end_matches('/'))
    }
}

/// Reads the inventory and resolves the hosts whose names match `patterns` (comma-separated
/// globs; all hosts when `None`), in file order. Every entry must parse and have a unique
/// name; only the chosen ones must resolve (their files exist), so that one host's broken
/// entry does not hold up a deploy to the others.
pub fn load(path: &Path, patterns: Option<&str>) -> anyhow::Result<Vec<Host>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the inventory {}", path.display()))?;
    let file: File = toml::from_str(&text)
        .with_context(|| format!("parsing the inventory {}", path.display()))?;
    ensure!(
        file.defaults.name.is_none(),
        "{}: [defaults] cannot set `name`",
        path.display()
    );
    ensure!(
        !file.hosts.is_empty(),
        "{}: no [[hosts]] entries",
        path.display()
    );
    let base = path
        .canonicalize()
        .with_context(|| format!("resolving {}", path.display()))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for (i, entry) in file.hosts.iter().enumerate() {
        let name = entry.name.clone().with_context(|| {
            format!("{}: [[hosts]] entry {} has no name", path.display(), i + 1)
        })?;
        ensure!(
            !names.contains(&name),
            "{}: two hosts are named {name}",
            path.display()
        );
        names.push(name);
    }
    let pats: Option<Vec<&str>> = patterns.map(|p| p.split(',').map(str::trim).collect());
    let mut hosts: Vec<Host> = Vec::new();
    for (entry, name) in file.hosts.into_iter().zip(names) {
        if pats
            .as_ref()
            .is_some_and(|pats| !pats.iter().any(|p| glob(p, &name)))
        {
            continue;
        }
        let host = resolve(entry.over(&file.defaults), name.clone(), &base)
            .with_context(|| format!("{}: host {name}", path.display()))?;
        hosts.push(host);
    }
    if let Some(p) = patterns {
        ensure!(!hosts.is_empty(), "--hosts {p:?} matches no host");
    }
    Ok(hosts)
}

fn resolve(s: Settings, name: String, base: &Path) -> anyhow::Result<Host> {
    let address = s.address.context("no `address` (the ssh destination)")?;
    let config = base.join(
        s.config
            .context("no `config` (the precinct configuration)")?,
    );
    ensure!(
        config.is_file(),
        "config {} is not a file",
        config.display()
    );
    let rules = expand_all(base, s.rules.as_deref().unwrap_or_default())?;
    let lists = expand_all(base, s.lists.as_deref().unwrap_or_default())?;
    let root = s.root.unwrap_or_else(|| "/".into());
    ensure!(
        root.starts_with('/'),
        "root {root:?} must be an absolute path on the host"
    );
    let root = if root == "/" {
        root
    } else {
        root.trim_end_matches('/').to_string()
    };
    let service = match s.service_manager.as_deref().unwrap_or("systemd") {
        "systemd" => {
            ensure!(
                root == "/",
                "service_manager = \"systemd\" installs a unit with fixed paths: it needs root = \"/\""
            );
            ensure!(
                s.start_command.is_none() && s.stop_command.is_none(),
                "start_command and stop_command are for service_manager = \"command\""
            );
            Service::Systemd
        }
        "command" => Service::Command {
            start: s
                .start_command
                .context("service_manager = \"command\" needs start_command")?,
            stop: s
                .stop_command
                .context("service_manager = \"command\" needs stop_command")?,
        },
        other => bail!("service_manager {other:?}: use \"systemd\" or \"command\""),
    };
    let unit = s.unit.map(|u| base.join(u));
    if let Some(u) = &unit {
        ensure!(
            service == Service::Systemd,
            "`unit` is for service_manager = \"systemd\""
        );
        ensure!(u.is_file(), "unit {} is not a file", u.display());
    }
    let health_command = match (s.health_command, s.health_url) {
        (Some(_), Some(_)) => bail!("set health_command or health_url, not both"),
        (Some(c), None) => c,
        (None, url) => format!(
            "curl -fsS --max-time 5 {}",
            super::ssh::quote(url.as_deref().unwrap_or(DEFAULT_HEALTH_URL))
        ),
    };
    Ok(Host {
        name,
        address,
        port: s.port,
        ssh_options: s.ssh_options.unwrap_or_default(),
        sudo: s.sudo.unwrap_or(false),
        config,
        rules,
        lists,
        unit,
        root,
        service,
        health_command,
        health_timeout: Duration::from_secs(s.health_timeout_secs.unwrap_or(60)),
        health_stable: Duration::from_secs(s.health_stable_secs.unwrap_or(3)),
    })
}

/// Expands each pattern (wildcards `*` and `?` in the file name only) to the files it
/// matches, sorted; a pattern matching nothing, or two files with one name, is an error.
fn expand_all(base: &Path, patterns: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let full = base.join(pattern);
        let file = full
            .file_name()
            .and_then(|f| f.to_str())
            .with_context(|| format!("{pattern:?} does not end in a file name"))?;
        let found = if file.contains(['*', '?']) {
            let dir = full.parent().unwrap_or(base);
            ensure!(
                !dir.to_string_lossy().contains(['*', '?']),
                "{pattern:?}: wildcards are allowed in the file name only"
            );
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("{pattern:?}: reading {}", dir.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| e.file_name().to_str().is_some_and(|n| glob(file, n)))
                .map(|e| e.path())
                .collect();
            found.sort();
            found
        } else {
            ensure!(full.is_file(), "{} is not a file", full.display());
            vec![full]
        };
        ensure!(!found.is_empty(), "{pattern:?} matches no file");
        for f in found {
            if out.contains(&f) {
                continue;
            }
            ensure!(
                !out.iter().any(|o| o.file_name() == f.file_name()),
                "two files are named {:?}: both would be installed under that name",
                f.file_name().unwrap_or_default()
            );
            out.push(f);
        }
    }
    Ok(out)
}

/// Shell-style wildcard match of the whole `text`: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_inventory_parses() {
        let text = include_str!("../../../deploy/inventory.example.toml");
        let file: File = toml::from_str(text).expect("deploy/inventory.example.toml");
        assert_eq!(file.hosts.len(), 4);
    }

    #[test]
    fn globs() {
        assert!(glob("portal-*", "portal-1"));
        assert!(glob("*", ""));
        assert!(glob("p?rtal*1", "portal-east-1"));
        assert!(glob("*.rules", "a.b.rules"));
        assert!(!glob("*.rules", "a.rules.bak"));
        assert!(!glob("portal", "portal-1"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn defaults_merge_and_globs_expand() {
        let dir = std::env::temp_dir().join(format!("xtask-inv-{}", std::process::id()));
        write(&dir, "c.toml", "");
        write(&dir, "rules/a.rules", "");
        write(&dir, "rules/b.rules", "");
        write(&dir, "rules/notes.txt", "");
        write(
            &dir,
            "inv.toml",
            r#"
[defaults]
config = "c.toml"
rules = ["rules/*.rules"]
health_url = "http://127.0.0.1:9000/healthz"

[[hosts]]
name = "one"
address = "admin@one"

[[hosts]]
name = "two"
address = "two"
rules = []
root = "/srv/scratch/"
service_manager = "command"
start_command = "start"
stop_command = "stop"
"#,
        );
        let hosts = load(&dir.join("inv.toml"), None).unwrap();
        assert_eq!(hosts[0].rules.len(), 2);
        assert!(hosts[0].rules[0].ends_with("rules/a.rules"));
        assert_eq!(hosts[0].service, Service::Systemd);
        assert_eq!(
            hosts[0].health_command,
            "curl -fsS --max-time 5 http://127.0.0.1:9000/healthz"
        );
        assert_eq!(hosts[0].path("etc/x"), "/etc/x");
        assert!(hosts[1].rules.is_empty());
        assert_eq!(hosts[1].path("etc/x"), "/srv/scratch/etc/x");
        assert_eq!(
            load(&dir.join("inv.toml"), Some("x*, t*")).unwrap().len(),
            1
        );
        assert!(load(&dir.join("inv.toml"), Some("x*")).is_err());

        write(
            &dir,
            "bad.toml",
            "[[hosts]]\nname = \"a\"\naddress = \"a\"\nconfig = \"c.toml\"\nroot = \"/x\"\n",
        );
        let e = format!("{:#}", load(&dir.join("bad.toml"), None).unwrap_err());
        assert!(e.contains("needs root = \"/\""), "{e}");
        write(
            &dir,
            "typo.toml",
            "[[hosts]]\nname = \"a\"\nadress = \"a\"\n",
        );
        let e = format!("{:#}", load(&dir.join("typo.toml"), None).unwrap_err());
        assert!(e.contains("adress"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
