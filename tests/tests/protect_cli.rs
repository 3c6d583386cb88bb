//! The protection's command line without a kernel: `precinct config check` reads the list
//! files of `[protect]` and reports bad lines by file and line, refuses bad settings and
//! missing files by name, and the control commands explain themselves when no agent runs.

use std::process::Command;

use tests::agent::precinct_bin;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pct-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("lists")).expect("temp dir");
    dir
}

fn precinct(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(precinct_bin())
        .args(args)
        .output()
        .expect("run precinct");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_reads_the_lists_and_names_bad_lines() {
    let dir = temp_dir("pcli");
    std::fs::write(
        dir.join("lists/drop.txt"),
        "; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n1.19.0.0/33 ; SBL434604\n2.56.192.0/22 ; SBL459831\n",
    )
    .expect("list");
    std::fs::write(
        dir.join("lists/fullbogons-ipv6.txt"),
        "# last updated 1700000000\n2001:db8::/32\n3ffe::/16\n",
    )
    .expect("list");
    let config = dir.join("precinct.toml");
    std::fs::write(
        &config,
        "[protect]\nmode = \"prevent\"\n\n[[protect.lists]]\nname = \"spamhaus-drop\"\nfile = \"lists/drop.txt\"\nformat = \"spamhaus\"\n\n\
         [[protect.lists]]\nname = \"fullbogons6\"\nfile = \"lists/fullbogons-ipv6.txt\"\nformat = \"cymru\"\nkind = \"bogon\"\n",
    )
    .expect("config");
    let path = config.to_str().expect("UTF-8");
    let (ok, stdout, stderr) = precinct(&["config", "check", path]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "protection prevent mode, lists: spamhaus-drop 2 entries (1 bad lines skipped), fullbogons6 2 entries"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("lists/drop.txt:3:"), "{stderr}");
    assert!(stderr.contains("1.19.0.0/33"), "{stderr}");

    // A list file that is not there is an error that names it.
    std::fs::remove_file(dir.join("lists/fullbogons-ipv6.txt")).expect("remove");
    let (ok, _, stderr) = precinct(&["config", "check", path]);
    assert!(!ok);
    assert!(
        stderr.contains("fullbogons6") && stderr.contains("fullbogons-ipv6.txt"),
        "{stderr}"
    );

    // Settings the types allow but the protection cannot use.
    for (text, want) in [
        ("[protect.ports]\ntcp = [\"443-80\"]\n", "backwards"),
        ("[protect]\nallow = [\"10.0.0.0/40\"]\n", "protect.allow"),
        ("[protect]\nmode = \"block\"\n", "unknown variant"),
        ("[protect.rate_limit]\nsyn = { rate = 10 }\n", "burst"),
    ] {
        std::fs::write(&config, text).expect("config");
        let (ok, _, stderr) = precinct(&["config", "check", path]);
        assert!(!ok, "{text}");
        assert!(stderr.contains(want), "{text}: {stderr}");
        assert!(stderr.contains("precinct.toml"), "{text}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn control_commands_explain_themselves_without_an_agent() {
    let dir = temp_dir("pctl");
    let socket = dir.join("none.sock");
    let socket = socket.to_str().expect("UTF-8");
    let (ok, _, stderr) = precinct(&["block", "add", "203.0.113.0/24", "--socket", socket]);
    assert!(!ok);
    assert!(
        stderr.contains("precinct run") && stderr.contains(socket),
        "{stderr}"
    );
    let (ok, _, stderr) = precinct(&["block", "add", "203.0.113.0/33", "--socket", socket]);
    assert!(!ok);
    assert!(stderr.contains("203.0.113.0/33"), "{stderr}");
    let (ok, _, stderr) = precinct(&[
        "block",
        "add",
        "203.0.113.7",
        "--ttl",
        "soon",
        "--socket",
        socket,
    ]);
    assert!(!ok);
    assert!(stderr.contains("soon"), "{stderr}");
    let (ok, _, stderr) = precinct(&["run", "--mode", "off", "--iface", "nonexistent0"]);
    assert!(!ok);
    assert!(stderr.contains("monitor or prevent"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
