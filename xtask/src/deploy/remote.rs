//! The deploy's steps on one host, each a short `sh` script sent over ssh with its own time
//! bound. Files are staged under `ROOT/var/lib/precinct/staging/VERSION/` in the same layout
//! as below ROOT, checked there, then swapped into place in two phases: copies next to their
//! targets (`NAME.new`) first, then renames only, so that a failure while copying leaves the
//! running version as it was.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use super::{
    inventory::{Host, Service},
    ssh::{self, quote},
    BINARY, CONFIG, LISTS, RULES, STATE_DIR, UNIT_PATH,
};

const SHORT: Duration = Duration::from_secs(30);
const UPLOAD: Duration = Duration::from_secs(600);
/// `config check` loads every rule: ~0.5 s for ET Open on a fast machine, more on a small VM.
const CHECK: Duration = Duration::from_secs(180);
const SERVICE: Duration = Duration::from_secs(120);
const PROBE: Duration = Duration::from_secs(10);
const UNIT: &str = "precinct.service";

/// What the deploy manages on a host, each replaced as a whole.
fn slots(host: &Host) -> Vec<&'static str> {
    let mut s = vec![BINARY, CONFIG, RULES, LISTS];
    if host.service == Service::Systemd {
        s.push(UNIT_PATH);
    }
    s
}

/// What is installed on a host.
pub struct State {
    pub version: Option<String>,
    /// Path relative to the root → SHA-256, for the files the deploy manages.
    pub sums: BTreeMap<String, String>,
}

/// Checks that the host answers and runs commands; returns its `uname -sr`.
pub fn connect(host: &Host) -> anyhow::Result<String> {
    let out = ssh::check(host, "echo precinct-deploy; uname -sr", SHORT)?;
    let mut lines = out.lines().skip_while(|l| *l != "precinct-deploy");
    if lines.next().is_none() {
        bail!("the host answered, but not with the expected output: {out:?}");
    }
    Ok(lines.next().unwrap_or("?").to_string())
}

/// The installed version and the sums of the installed files.
pub fn state(host: &Host) -> anyhow::Result<State> {
    let files: Vec<&str> = slots(host)
        .into_iter()
        .filter(|s| *s != RULES && *s != LISTS)
        .collect();
    let script = format!(
        "cd {root} 2>/dev/null || exit 0\n\
         [ -f {state}/version ] && printf 'version %s\\n' \"$(cat {state}/version)\"\n\
         for f in {files}; do [ -f \"$f\" ] && sha256sum \"$f\"; done\n\
         for d in {RULES} {LISTS}; do [ -d \"$d\" ] && find \"$d\" -mindepth 1 -maxdepth 1 -type f -exec sha256sum {{}} +; done\n\
         exit 0",
        root = quote(&host.root),
        state = STATE_DIR,
        files = files.join(" "),
    );
    let out = ssh::check(host, &script, SHORT)?;
    let version = out
        .lines()
        .find_map(|l| l.strip_prefix("version "))
        .map(str::to_string);
    Ok(State {
        version,
        sums: super::parse_sums(&out),
    })
}

/// A deploy in progress on a host: the directory `var/lib/precinct/deploy.lock`, made with
/// `mkdir` (atomic), holding who took it; removed on drop. Two deploys to one host at once
/// would replace each other's staging and `.prev` files.
pub struct Lock<'a> {
    host: &'a Host,
    path: String,
}

/// Takes the host's deploy lock, or says who holds it.
pub fn lock(host: &Host) -> anyhow::Result<Lock<'_>> {
    let path = host.path(&format!("{STATE_DIR}/deploy.lock"));
    let who = format!(
        "{}@{} (pid {}) since {}",
        std::env::var("USER").unwrap_or_else(|_| "?".into()),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
        std::process::id(),
        super::utc_stamp(std::time::SystemTime::now()),
    );
    let script = format!(
        "mkdir -p {dir}\n\
         if mkdir {lock} 2>/dev/null; then printf '%s\\n' {who} > {lock}/owner; exit 0; fi\n\
         printf 'another deploy holds %s: %s\\n' {lock} \"$(cat {lock}/owner 2>/dev/null)\" >&2\n\
         echo 'if none is running, remove that directory' >&2\n\
         exit 1",
        dir = quote(&host.path(STATE_DIR)),
        lock = quote(&path),
        who = quote(&who),
    );
    ssh::check(host, &script, SHORT)?;
    Ok(Lock { host, path })
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        let removed = ssh::run(self.host, &format!("rm -rf {}", quote(&self.path)), SHORT);
        if !removed.is_ok_and(|o| o.status.success()) {
            println!(
                "[{}] could not remove the deploy lock {}: remove it by hand",
                self.host.name, self.path
            );
        }
    }
}

/// Copies the local release directory `dir` to the host's staging directory (replacing any
/// earlier staging) and returns the staged release's path. The copy goes to a fresh directory
/// the ssh user owns first, so that a deploy user with `sudo` works the same way.
pub fn upload(host: &Host, dir: &Path, version: &str) -> anyhow::Result<String> {
    let tmp = ssh::run_as_user(
        host,
        "mktemp -d \"${TMPDIR:-/tmp}/precinct-deploy.XXXXXX\"",
        SHORT,
    )?;
    if !tmp.status.success() {
        bail!("mktemp on the host: {}", ssh::failure(&tmp));
    }
    let tmp = String::from_utf8_lossy(&tmp.stdout).trim().to_string();
    if !tmp.starts_with('/') {
        bail!("mktemp on the host printed {tmp:?}");
    }
    let sent = ssh::upload(host, dir, &tmp, UPLOAD);
    let staging = host.path(&format!("{STATE_DIR}/staging"));
    let stage = format!("{staging}/{version}");
    let script = format!(
        "set -e\n\
         rm -rf {staging}\n\
         mkdir -p {staging}\n\
         chmod 0700 {staging}\n\
         mv {tmp}/{v} {staging}/\n\
         rmdir {tmp}\n\
         if [ \"$(id -u)\" = 0 ]; then chown -R 0:0 {stage}; fi",
        staging = quote(&staging),
        stage = quote(&stage),
        tmp = quote(&tmp),
        v = quote(version),
    );
    let moved = sent.and_then(|()| ssh::check(host, &script, SHORT).map(|_| ()));
    if let Err(e) = moved {
        let _ = ssh::run_as_user(host, &format!("rm -rf {}", quote(&tmp)), SHORT);
        return Err(e);
    }
    Ok(stage)
}

/// Verifies the staged files against their sums, sets their modes, and runs the new binary's
/// `config check` on the new configuration, whose relative rule and list paths lead to the
/// staged files. Returns what the check printed.
pub fn config_check(host: &Host, stage: &str) -> anyhow::Result<String> {
    let script = format!(
        "set -e\n\
         cd {stage}\n\
         sha256sum -c --quiet SHA256SUMS || {{ echo 'the staged files do not match the release: upload damaged' >&2; exit 1; }}\n\
         mkdir -p {RULES} {LISTS}\n\
         chmod 0755 {BINARY} {RULES} {LISTS}\n\
         chmod 0600 {CONFIG}\n\
         find {RULES} {LISTS} -type f -exec chmod 0644 {{}} +\n\
         {stage}/{BINARY} config check {stage}/{CONFIG} 2>&1",
        stage = quote(stage),
    );
    let out = ssh::run(host, &script, CHECK)?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        bail!("{}", ssh::failure(&out));
    }
    Ok(text)
}

/// Puts the staged release in place; what it replaces becomes `NAME.prev`.
pub fn install(host: &Host, stage: &str, version: &str) -> anyhow::Result<()> {
    let root = quote(&host.root);
    let slots = slots(host).join(" ");
    let script = format!(
        "set -e\n\
         cd {root}\n\
         for p in {slots}; do\n\
           mkdir -p \"$(dirname \"$p\")\"\n\
           rm -rf \"$p.new\" \"$p.prev\"\n\
           cp -pR {stage}/\"$p\" \"$p.new\"\n\
         done\n\
         for p in {slots}; do\n\
           if [ -e \"$p\" ]; then mv \"$p\" \"$p.prev\"; fi\n\
           mv \"$p.new\" \"$p\"\n\
         done\n\
         mkdir -p {STATE_DIR}\n\
         if [ -f {STATE_DIR}/version ]; then mv {STATE_DIR}/version {STATE_DIR}/version.prev; else rm -f {STATE_DIR}/version.prev; fi\n\
         printf '%s\\n' {v} > {STATE_DIR}/version",
        stage = quote(stage),
        v = quote(version),
    );
    ssh::check(host, &script, SERVICE).map(|_| ())
}

/// Stops the running agent (if any) and starts the installed one.
pub fn restart(host: &Host) -> anyhow::Result<()> {
    match &host.service {
        Service::Systemd => {
            let script = format!(
                "set -e\nsystemctl daemon-reload\nsystemctl enable --quiet {UNIT}\nsystemctl restart {UNIT}"
            );
            ssh::check(host, &script, SERVICE).map(|_| ())
        }
        Service::Command { start, stop } => {
            ssh::check(host, stop, SERVICE).context("stop_command")?;
            start_command(host, start)
        }
    }
}

fn start_command(host: &Host, start: &str) -> anyhow::Result<()> {
    ssh::check(host, start, SERVICE).context(
        "start_command (a command that starts the agent in the background must redirect \
         its output and input, `>LOG 2>&1 </dev/null &`, or ssh waits for the agent)",
    )?;
    Ok(())
}

/// Stops the new version and puts back the `NAME.prev` files, then starts the previous
/// version again; without a previous version, removes the new files and leaves it stopped.
pub fn rollback(host: &Host, had_previous: bool) -> anyhow::Result<()> {
    let stop = match &host.service {
        Service::Systemd if had_previous => format!("systemctl stop {UNIT}"),
        Service::Systemd => format!("systemctl disable --now --quiet {UNIT}"),
        Service::Command { stop, .. } => stop.clone(),
    };
    ssh::check(host, &stop, SERVICE).context("stopping the new version")?;
    let script = format!(
        "set -e\n\
         cd {root}\n\
         for p in {slots}; do\n\
           rm -rf \"$p\"\n\
           if [ -e \"$p.prev\" ]; then mv \"$p.prev\" \"$p\"; fi\n\
         done\n\
         if [ -f {STATE_DIR}/version.prev ]; then mv {STATE_DIR}/version.prev {STATE_DIR}/version; else rm -f {STATE_DIR}/version; fi",
        root = quote(&host.root),
        slots = slots(host).join(" "),
    );
    ssh::check(host, &script, SERVICE).context("restoring the previous files")?;
    match &host.service {
        Service::Systemd if had_previous => ssh::check(
            host,
            &format!("set -e\nsystemctl daemon-reload\nsystemctl start {UNIT}"),
            SERVICE,
        )
        .map(|_| ()),
        Service::Systemd => ssh::check(host, "systemctl daemon-reload", SERVICE).map(|_| ()),
        Service::Command { start, .. } if had_previous => start_command(host, start),
        Service::Command { .. } => Ok(()),
    }
    .context("starting the previous version")
}

/// Runs the health command once: `Err` holds why it failed.
pub fn probe(host: &Host) -> anyhow::Result<Result<(), String>> {
    let out = match ssh::run(host, &host.health_command, PROBE) {
        Ok(out) => out,
        Err(e) => return Ok(Err(format!("{e:#}"))),
    };
    if out.status.code() == Some(255) && out.stdout.is_empty() {
        // ssh's own failure: the host is gone, which is not an answer about the agent.
        bail!("ssh: {}", ssh::failure(&out));
    }
    Ok(if out.status.success() {
        Ok(())
    } else {
        Err(ssh::failure(&out))
    })
}

/// Polls health every second until it has held for `health_stable`, or fails after
/// `health_timeout` (plus the stable time); returns the seconds it took.
pub fn wait_healthy(host: &Host) -> anyhow::Result<u64> {
    let start = Instant::now();
    let deadline = start + host.health_timeout + host.health_stable;
    let mut ok_since: Option<Instant> = None;
    let mut last = String::from("no answer yet");
    loop {
        match probe(host)? {
            Ok(()) => {
                let since = *ok_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= host.health_stable {
                    return Ok(start.elapsed().as_secs());
                }
            }
            Err(why) => {
                if ok_since.take().is_some() {
                    last = format!("healthy, then failing again: {why}");
                } else {
                    last = why;
                }
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "not healthy within {} s; last check: {last}",
                (host.health_timeout + host.health_stable).as_secs()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Removes the staging directory after a successful deploy.
pub fn clean_staging(host: &Host) -> anyhow::Result<()> {
    let staging = host.path(&format!("{STATE_DIR}/staging"));
    ssh::check(host, &format!("rm -rf {}", quote(&staging)), SHORT).map(|_| ())
}
