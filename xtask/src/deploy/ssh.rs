//! Talking to a host with the system `ssh` and `scp` (the user's keys, agent and
//! ~/.ssh/config apply), never interactively, and never for longer than a bound.

use std::{
    io::Read as _,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use super::inventory::Host;

/// Options every ssh and scp call gets before the inventory's own: no password or host-key
/// prompts (a prompt would hang a roll-out), and a dead connection noticed within ~15 s.
const BASE_OPTIONS: &[&str] = &[
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
];

/// Quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `script` with `sh -c` on `host` (through `sudo -n` when the host says so) and
/// returns its output, whatever its exit status; an error means ssh could not be started or
/// the bound passed (ssh is then killed).
pub fn run(host: &Host, script: &str, timeout: Duration) -> anyhow::Result<Output> {
    let sudo = if host.sudo { "sudo -n " } else { "" };
    run_as_user(host, &format!("{sudo}sh -c {}", quote(script)), timeout)
}

/// Runs `command` as the ssh user, in the user's login shell.
pub fn run_as_user(host: &Host, command: &str, timeout: Duration) -> anyhow::Result<Output> {
    let mut cmd = Command::new("ssh");
    // ssh keeps the first value it sees of an option: the inventory's come first.
    cmd.args(&host.ssh_options).args(BASE_OPTIONS);
    if let Some(port) = host.port {
        cmd.arg("-p").arg(port.to_string());
    }
    // The remote login shell runs the words ssh joins: one word, quoted for it.
    cmd.arg("--").arg(&host.address).arg(command);
    bounded(cmd, timeout).context("ssh")
}

/// Like [`run`], but a non-zero exit is an error carrying the script's output.
pub fn check(host: &Host, script: &str, timeout: Duration) -> anyhow::Result<String> {
    let out = run(host, script, timeout)?;
    if !out.status.success() {
        bail!("{}", failure(&out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// "exit status N" and the output, for an error message. ssh exits 255 on its own errors.
pub fn failure(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.trim().is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(err.trim());
    }
    let code = out
        .status
        .code()
        .map_or("a signal".into(), |c| c.to_string());
    let who = if out.status.code() == Some(255) {
        " (ssh itself failed, or the command exited 255)"
    } else {
        ""
    };
    if text.is_empty() {
        format!("exit status {code}{who}")
    } else {
        format!("exit status {code}{who}:\n{text}")
    }
}

/// Copies the local directory `dir` into the remote directory `into` (which must exist),
/// recursively.
pub fn upload(host: &Host, dir: &Path, into: &str, timeout: Duration) -> anyhow::Result<()> {
    let mut cmd = Command::new("scp");
    cmd.args(&host.ssh_options)
        .args(BASE_OPTIONS)
        .args(["-q", "-r", "-p"]);
    if let Some(port) = host.port {
        cmd.arg("-P").arg(port.to_string());
    }
    // scp takes the remote path as a path, not as shell words (SFTP, OpenSSH >= 9).
    cmd.arg("--")
        .arg(dir)
        .arg(format!("{}:{into}/", host.address));
    let out = bounded(cmd, timeout).context("scp")?;
    if !out.status.success() {
        bail!("scp failed: {}", failure(&out));
    }
    Ok(())
}

/// Runs `cmd` with no input, collecting its output, and kills it after `timeout`.
fn bounded(mut cmd: Command, timeout: Duration) -> anyhow::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?} (is OpenSSH's client installed?)", cmd))?;
    let reader = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting")? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no answer within {} s: stopped", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            quote("/etc/precinct/precinct.toml"),
            "/etc/precinct/precinct.toml"
        );
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote("$HOME `x` 'q' \"d\"")))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"$HOME `x` 'q' \"d\"");
    }
}
