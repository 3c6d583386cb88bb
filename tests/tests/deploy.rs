//! `cargo xtask deploy` against a real OpenSSH server (Debian's sshd, started here on
//! loopback with its own host key, user key and known-hosts file) into a scratch root: a dry
//! run that changes nothing, the first install, a re-deploy with nothing to do, a deploy
//! refused while another holds the host's lock, an upgrade, a broken configuration refused
//! before anything restarts, and a new version that fails its health check and is rolled back.
//!
//! The "host" is this machine, so the deployed agent is the real `precinct run`, attached to
//! the portal end of a lab's veth pair inside the lab's namespace (the inventory's start and
//! health commands go through `ip netns exec`), with its metrics, `/healthz` included, on
//! 127.0.0.1:9727 of that namespace. The inventory uses `service_manager = "command"`: there
//! is no systemd here. Drop guards stop the agent, sshd and the lab and remove the files, also
//! when an assertion fails.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use tests::{agent::precinct_bin, lab::Lab, require_root};

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An sshd on 127.0.0.1, killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the inventory's stop command on drop, so that no deployed agent outlives the test.
struct StopAgent(String);

impl Drop for StopAgent {
    fn drop(&mut self) {
        let _ = Command::new("sh").arg("-c").arg(&self.0).status();
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// `target/debug/xtask`, built now: `cargo test -p tests` alone does not build the xtask
/// binary, and a stale one would test old code.
fn xtask_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("XTASK_BIN") {
        return PathBuf::from(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = run(Command::new(cargo)
        .args(["build", "--quiet", "-p", "xtask"])
        .current_dir(workspace));
    assert!(
        out.status.success(),
        "cargo build -p xtask: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = std::env::current_exe()
        .expect("test executable")
        .parent()
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .expect("target directory")
        .to_path_buf();
    target.join("debug/xtask")
}

fn keygen(path: &Path) {
    let out = run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "precinct-deploy-test",
            "-f",
        ])
        .arg(path));
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

fn start_sshd(dir: &Path) -> Sshd {
    let host_key = dir.join("ssh_host_ed25519_key");
    let user_key = dir.join("id_ed25519");
    keygen(&host_key);
    keygen(&user_key);
    let authorized = dir.join("authorized_keys");
    std::fs::copy(dir.join("id_ed25519.pub"), &authorized).expect("authorized_keys");
    // The privilege-separation directory sshd insists on.
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    let log = dir.join("sshd.log");
    for _attempt in 0..5 {
        // A free port now; another process could take it before sshd binds, hence the retry.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("sshd_config");
        write(
            &config,
            &format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 Subsystem sftp /usr/lib/openssh/sftp-server\n",
                host_key.display(),
                authorized.display(),
                dir.join("sshd.pid").display(),
            ),
        );
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("sshd log"))
            .spawn()
            .expect("start /usr/sbin/sshd (openssh-server comes with `cargo xtask setup`)");
        let mut sshd = Sshd {
            child,
            port,
            log: log.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = sshd.child.try_wait() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sshd;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&sshd.log).unwrap_or_default();
        eprintln!("sshd did not start on port {port}: {text}");
    }
    panic!("sshd did not start (see above)");
}

/// The test's site: configurations, a rule file, a list file and the inventory.
struct Site {
    inventory: PathBuf,
    stop: String,
    health: String,
}

fn write_site(dir: &Path, root: &Path, lab: &Lab, sshd: &Sshd, ssh_dir: &Path) -> Site {
    let site = dir.join("site");
    let r = root.display().to_string();
    let config = |listen: &str, extra: &str| {
        format!(
            "interfaces = [\"{iface}\"]\neve = \"{r}/var/log/precinct/eve.json\"\n\n\
             [metrics]\nlisten = \"{listen}\"\n\n\
             [rules]\nfiles = [\"rules/local.rules\"]\n\n\
             [protect]\ncontrol_socket = \"{r}/run/precinct/control.sock\"\n\n\
             [[protect.lists]]\nname = \"site-block\"\nfile = \"lists/block.txt\"\nformat = \"plain\"\n{extra}",
            iface = lab.portal_if
        )
    };
    write(
        &site.join("configs/good.toml"),
        &config("127.0.0.1:9727", ""),
    );
    // Refused by `config check`: the flow map needs at least 64 entries.
    write(
        &site.join("configs/broken.toml"),
        &config("127.0.0.1:9727", "\n[flows]\ncapacity = 10\n"),
    );
    // Valid, but the agent serves /healthz where the health check does not look.
    write(
        &site.join("configs/wrong-port.toml"),
        &config("127.0.0.1:9728", ""),
    );
    write(
        &site.join("rules/local.rules"),
        "alert http any any -> any any (msg:\"deploy test\"; http.uri; content:\"/voter\"; sid:9100001; rev:1;)\n",
    );
    write(&site.join("lists/block.txt"), "192.0.2.0/24\n");

    let pidfile = format!("{r}/run/precinct/precinct.pid");
    let start = format!(
        "mkdir -p {r}/run/precinct {r}/var/log/precinct\n\
         ip netns exec {ns} {r}/usr/local/bin/precinct run --config {r}/etc/precinct/precinct.toml \
         >>{r}/var/log/precinct/agent.log 2>&1 </dev/null &\n\
         echo $! > {pidfile}",
        ns = lab.portal_ns
    );
    // Waits for the agent to exit (it detaches on SIGTERM); an agent reparented to a PID 1
    // that does not reap leaves a zombie, which counts as gone.
    let stop = format!(
        "f={pidfile}\n[ -f \"$f\" ] || exit 0\npid=$(cat \"$f\")\n\
         alive() {{ s=$(ps -o stat= -p \"$pid\" 2>/dev/null) || return 1; case \"$s\" in Z*) return 1;; esac; }}\n\
         kill -TERM \"$pid\" 2>/dev/null || true\ni=0\n\
         while alive; do i=$((i+1)); if [ $i -ge 300 ]; then kill -KILL \"$pid\"; break; fi; sleep 0.1; done\n\
         rm -f \"$f\""
    );
    let health = format!(
        "ip netns exec {} curl -fsS --max-time 3 http://127.0.0.1:9727/healthz",
        lab.portal_ns
    );
    let toml_str = |s: &str| toml_quote(s);
    let inventory = format!(
        "[defaults]\naddress = \"root@127.0.0.1\"\nport = {port}\n\
         ssh_options = [\"-F\", \"/dev/null\", \"-i\", {key}, \"-o\", \"IdentitiesOnly=yes\", \
         \"-o\", {known}, \"-o\", \"StrictHostKeyChecking=no\"]\n\
         root = {root}\nservice_manager = \"command\"\n\
         start_command = {start}\nstop_command = {stop}\nhealth_command = {health}\n\
         health_timeout_secs = 12\nhealth_stable_secs = 1\n\
         rules = [\"rules/*.rules\"]\nlists = [\"lists/*.txt\"]\n\n\
         [[hosts]]\nname = \"portal-good\"\nconfig = \"configs/good.toml\"\n\n\
         [[hosts]]\nname = \"portal-broken\"\nconfig = \"configs/broken.toml\"\n\n\
         [[hosts]]\nname = \"portal-wrong-port\"\nconfig = \"configs/wrong-port.toml\"\n",
        port = sshd.port,
        key = toml_str(&ssh_dir.join("id_ed25519").display().to_string()),
        known = toml_str(&format!(
            "UserKnownHostsFile={}",
            ssh_dir.join("known_hosts").display()
        )),
        root = toml_str(&r),
        start = toml_str(&start),
        stop = toml_str(&stop),
        health = toml_str(&health),
    );
    let inventory_path = site.join("inventory.toml");
    write(&inventory_path, &inventory);
    Site {
        inventory: inventory_path,
        stop,
        health,
    }
}

/// A TOML basic string.
fn toml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `cargo xtask deploy` with `args`; returns (success, stdout and stderr).
fn deploy(xtask: &Path, site: &Site, args: &[&str]) -> (bool, String) {
    let out = run(Command::new(xtask)
        .arg("deploy")
        .arg("--inventory")
        .arg(&site.inventory)
        .args(args));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("---- xtask deploy {}\n{text}", args.join(" "));
    (out.status.success(), text)
}

fn healthy(site: &Site) -> bool {
    run(Command::new("sh").arg("-c").arg(&site.health))
        .status
        .success()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Asserts that the installed file `installed` has the content of `expected`.
fn assert_same(installed: &Path, expected: &Path) {
    assert!(
        read(installed) == read(expected),
        "{} differs from {}",
        installed.display(),
        expected.display()
    );
}

fn pid(root: &Path) -> String {
    String::from_utf8(read(&root.join("run/precinct/precinct.pid")))
        .expect("pid")
        .trim()
        .to_string()
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn deploy_over_ssh_installs_upgrades_refuses_and_rolls_back() {
    require_root("deploy_over_ssh_installs_upgrades_refuses_and_rolls_back");
    let xtask = xtask_bin();
    let bin = precinct_bin();
    let dir =
        Scratch(std::env::temp_dir().join(format!("precinct-deploy-test-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let ssh_dir = dir.0.join("ssh");
    std::fs::create_dir_all(&ssh_dir).expect("mkdir");
    let root = dir.0.join("root");
    let lab = Lab::create("dep").expect("lab");
    let sshd = start_sshd(&ssh_dir);
    let site = write_site(&dir.0, &root, &lab, &sshd, &ssh_dir);
    let _stop = StopAgent(site.stop.clone());
    let good = dir.0.join("site/configs/good.toml");
    // A copy: other builds may replace target/debug/precinct while the test runs.
    let v1 = dir.0.join("precinct-v1");
    std::fs::copy(&bin, &v1).expect("copy the precinct binary");
    let bin = v1;
    let bin_s = bin.to_str().expect("UTF-8 path");

    // Dry run: the plan, and nothing written.
    let (ok, out) = deploy(
        &xtask,
        &site,
        &["--hosts", "portal-good", "--dry-run", "--binary", bin_s],
    );
    let sshd_log = || std::fs::read_to_string(&sshd.log).unwrap_or_default();
    assert!(ok, "dry run failed; sshd says:\n{}", sshd_log());
    assert!(
        out.contains("install   ") && out.contains("/usr/local/bin/precinct"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing changed"), "{out}");
    assert!(!root.join("usr").exists(), "a dry run wrote files");

    // First install.
    let (ok, out) = deploy(
        &xtask,
        &site,
        &["--hosts", "portal-good", "--binary", bin_s],
    );
    assert!(ok, "first install failed: {out}");
    assert!(
        out.contains("(first install)") && out.contains("health: ok"),
        "{out}"
    );
    assert_same(&root.join("usr/local/bin/precinct"), &bin);
    assert_same(&root.join("etc/precinct/precinct.toml"), &good);
    assert!(root.join("etc/precinct/rules/local.rules").is_file());
    assert!(root.join("etc/precinct/lists/block.txt").is_file());
    assert!(
        !root.join("var/lib/precinct/staging").exists(),
        "staging left after success"
    );
    assert!(healthy(&site));
    let first_pid = pid(&root);
    let first_version =
        String::from_utf8(read(&root.join("var/lib/precinct/version"))).expect("version");

    // The same again: nothing to do, nothing restarted.
    let (ok, out) = deploy(
        &xtask,
        &site,
        &["--hosts", "portal-good", "--binary", bin_s],
    );
    assert!(ok, "re-deploy failed: {out}");
    assert!(out.contains("unchanged: up to date and healthy"), "{out}");
    assert!(!out.contains("upgrade "), "{out}");
    assert_eq!(
        pid(&root),
        first_pid,
        "an unchanged deploy restarted the agent"
    );

    // A second version: a wrapper script that execs the real binary is a distinct file (another
    // SHA-256) that runs the same agent, without building a second agent.
    let v2 = dir.0.join("precinct-v2");
    write(
        &v2,
        &format!("#!/bin/sh\n# precinct, \"version 2\"\nexec {bin_s} \"$@\"\n"),
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&v2, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let v2_s = v2.to_str().expect("UTF-8 path");

    // Another deploy in progress (its lock directory): refused, nothing touched.
    let lock = root.join("var/lib/precinct/deploy.lock");
    write(
        &lock.join("owner"),
        "alice@laptop (pid 1) since 20260101T000000Z\n",
    );
    let (ok, out) = deploy(&xtask, &site, &["--hosts", "portal-good", "--binary", v2_s]);
    assert!(!ok, "a deploy ran beside another: {out}");
    assert!(
        out.contains("another deploy holds") && out.contains("alice@laptop"),
        "{out}"
    );
    assert_same(&root.join("usr/local/bin/precinct"), &bin);
    assert_eq!(pid(&root), first_pid);
    std::fs::remove_dir_all(&lock).expect("remove the lock");

    // Upgrade: a different binary.
    let (ok, out) = deploy(&xtask, &site, &["--hosts", "portal-good", "--binary", v2_s]);
    assert!(ok, "upgrade failed: {out}");
    assert!(
        out.contains("upgrade   ") && out.contains("previous version kept"),
        "{out}"
    );
    assert!(
        out.contains("unchanged ") && out.contains("precinct.toml"),
        "{out}"
    );
    assert_same(&root.join("usr/local/bin/precinct"), &v2);
    assert_same(&root.join("usr/local/bin/precinct.prev"), &bin);
    assert_same(&root.join("etc/precinct/precinct.toml.prev"), &good);
    assert_eq!(
        String::from_utf8(read(&root.join("var/lib/precinct/version.prev"))).expect("version"),
        first_version
    );
    let upgraded_pid = pid(&root);
    assert_ne!(
        upgraded_pid, first_pid,
        "the upgrade did not restart the agent"
    );
    assert!(healthy(&site));
    let upgraded_version = read(&root.join("var/lib/precinct/version"));

    // A broken configuration: refused by the new binary on the host, before any restart.
    let (ok, out) = deploy(
        &xtask,
        &site,
        &["--hosts", "portal-broken", "--binary", v2_s],
    );
    assert!(!ok, "a broken config was deployed: {out}");
    assert!(
        out.contains("step config check") && out.contains("capacity"),
        "{out}"
    );
    assert!(out.contains("running version is untouched"), "{out}");
    assert_same(&root.join("etc/precinct/precinct.toml"), &good);
    assert_same(&root.join("usr/local/bin/precinct"), &v2);
    assert_eq!(
        pid(&root),
        upgraded_pid,
        "the agent was restarted for a refused config"
    );
    assert_eq!(
        read(&root.join("var/lib/precinct/version")),
        upgraded_version
    );
    assert!(healthy(&site));
    assert!(!lock.exists(), "the deploy lock outlived a refused deploy");

    // A version that starts but fails its health check: rolled back, healthy again.
    let (ok, out) = deploy(
        &xtask,
        &site,
        &["--hosts", "portal-wrong-port", "--binary", v2_s],
    );
    assert!(!ok, "a failing version was reported deployed: {out}");
    assert!(out.contains("not healthy within"), "{out}");
    assert!(
        out.contains("rolled back: the previous version is healthy"),
        "{out}"
    );
    assert_same(&root.join("etc/precinct/precinct.toml"), &good);
    assert_same(&root.join("usr/local/bin/precinct"), &v2);
    assert_eq!(
        read(&root.join("var/lib/precinct/version")),
        upgraded_version
    );
    assert!(
        root.join("var/lib/precinct/staging").exists(),
        "the failed version's files are kept for a look"
    );
    assert_ne!(
        pid(&root),
        upgraded_pid,
        "the rollback did not restart the agent"
    );
    assert!(healthy(&site));
    assert!(
        !lock.exists(),
        "the deploy lock outlived a rolled-back deploy"
    );

    // The agent's own log shows both configurations were really run.
    let log = String::from_utf8_lossy(&read(&root.join("var/log/precinct/agent.log"))).into_owned();
    assert!(log.contains("metrics on http://127.0.0.1:9728"), "{log}");
    drop(_stop);
    assert!(
        !healthy(&site),
        "the agent still runs after the stop command"
    );
    drop(sshd);
    drop(lab);
}
