//! Namespace lab for live TLS and SSH inspection: `openssl s_client` against `openssl
//! s_server` and `ssh` against `sshd`, both servers started by this test inside the portal
//! namespace. The live agent must write the `tls` and `ssh` records, and `precinct replay` on a
//! `tcpdump` capture of the same traffic must write the same ones.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tests::{
    agent::{precinct_bin, Agent},
    lab::{Lab, CLIENT_V4, PORTAL_V4},
    require_root,
};

fn wait_line(child: &mut Child, marker: &str) -> Box<dyn BufRead> {
    let mut reader: Box<dyn BufRead> =
        Box::new(BufReader::new(child.stderr.take().expect("stderr")));
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read");
        assert!(n > 0, "the process ended before printing {marker:?}");
        if line.contains(marker) {
            return reader;
        }
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn records(events: &[Value], kind: &str) -> Vec<Value> {
    let mut v: Vec<Value> = events
        .iter()
        .filter(|e| e["event_type"] == kind)
        .map(|e| serde_json::json!({"src_ip": e["src_ip"], "dest_ip": e["dest_ip"], "dest_port": e["dest_port"], kind: e[kind]}))
        .collect();
    v.sort_by_key(|x| x.to_string());
    v
}

fn read_eve(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn live_agent_inspects_tls_and_ssh_like_replay() {
    require_root("live_agent_inspects_tls_and_ssh_like_replay");
    let lab = Lab::create("tls").expect("create the lab");
    let dir = std::env::temp_dir().join(format!("precinct-lab-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = |name: &str| dir.join(name).to_str().expect("UTF-8 path").to_owned();

    // A certificate for the TLS server and a host key for sshd, made for this test.
    run(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
            ])
            .args([
                "-subj",
                "/O=County Elections/CN=vote.example.gov",
                "-keyout",
                &path("tls.key"),
                "-out",
                &path("tls.crt"),
            ]),
        "openssl req",
    );
    run(
        Command::new("ssh-keygen").args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &path("host_ed25519"),
        ]),
        "ssh-keygen",
    );
    // sshd wants its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");

    let mut agent = Agent::start(&lab, &dir, &[]);
    let mut tcpdump = lab
        .spawn(
            &lab.portal_ns,
            &[
                "tcpdump",
                "-i",
                &lab.portal_if,
                "-n",
                "-s",
                "0",
                "-U",
                "-w",
                &path("portal.pcap"),
            ],
        )
        .expect("tcpdump");
    let _tcpdump = wait_line(&mut tcpdump, "listening on");
    let mut tls = lab
        .spawn(
            &lab.portal_ns,
            &[
                "openssl",
                "s_server",
                "-accept",
                &format!("{PORTAL_V4}:4433"),
                "-cert",
                &path("tls.crt"),
                "-key",
                &path("tls.key"),
                "-www",
                "-quiet",
            ],
        )
        .expect("s_server");
    let sshd_config = format!(
        "Port 2222\nListenAddress {PORTAL_V4}\nHostKey {}\nPidFile none\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
        path("host_ed25519")
    );
    std::fs::write(dir.join("sshd_config"), sshd_config).expect("sshd_config");
    let mut sshd = lab
        .spawn(
            &lab.portal_ns,
            &["/usr/sbin/sshd", "-D", "-e", "-f", &path("sshd_config")],
        )
        .expect("sshd");
    let _sshd = wait_line(&mut sshd, "Server listening");
    // s_server prints nothing when quiet: wait until it accepts.
    for _ in 0..50 {
        let probe = lab.exec(
            &lab.portal_ns,
            &[
                "python3",
                "-c",
                &format!("import socket; socket.create_connection(('{PORTAL_V4}', 4433), 1)"),
            ],
        );
        if probe.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let s_client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.client_ns,
            "openssl",
            "s_client",
            "-connect",
            &format!("{PORTAL_V4}:4433"),
        ])
        .args([
            "-servername",
            "vote.example.gov",
            "-tls1_2",
            "-alpn",
            "http/1.1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("s_client");
    assert!(
        String::from_utf8_lossy(&s_client.stdout).contains("vote.example.gov"),
        "{}",
        String::from_utf8_lossy(&s_client.stderr)
    );
    // Authentication fails (no keys offered): the banners and key exchange are what counts.
    let ssh = lab.exec(
        &lab.client_ns,
        &[
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-p",
            "2222",
            &format!("nobody@{PORTAL_V4}"),
            "true",
        ],
    );
    assert!(ssh.is_err(), "ssh must not log in");

    std::thread::sleep(Duration::from_millis(2500));
    for child in [&mut tls, &mut sshd] {
        let _ = child.kill();
        let _ = child.wait();
    }
    // SAFETY: kill(2) on our own child; SIGTERM makes tcpdump finish the file.
    unsafe { libc::kill(tcpdump.id() as i32, libc::SIGTERM) };
    let _ = tcpdump.wait();
    agent.stop();
    let live = agent.events();

    let t = records(&live, "tls");
    assert_eq!(t.len(), 1, "one TLS session: {live:#?}");
    let tls_obj = &t[0]["tls"];
    assert_eq!(
        (&t[0]["src_ip"], &t[0]["dest_port"]),
        (&Value::from(CLIENT_V4), &Value::from(4433))
    );
    assert_eq!(tls_obj["sni"], "vote.example.gov");
    assert_eq!(tls_obj["version"], "TLS 1.2");
    assert!(
        tls_obj["subject"]
            .as_str()
            .is_some_and(|s| s.contains("CN=vote.example.gov")),
        "{tls_obj}"
    );
    assert_eq!(tls_obj["client_alpns"][0], "http/1.1");
    let s = records(&live, "ssh");
    assert_eq!(s.len(), 1, "one SSH session: {live:#?}");
    let ssh_obj = &s[0]["ssh"];
    assert_eq!(ssh_obj["client"]["proto_version"], "2.0");
    assert!(
        ssh_obj["client"]["software_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("OpenSSH")),
        "{ssh_obj}"
    );
    assert!(
        ssh_obj["server"]["software_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("OpenSSH")),
        "{ssh_obj}"
    );

    let replay_eve = dir.join("replay.json");
    let out = Command::new(precinct_bin())
        .args(["replay", "--pcap", &path("portal.pcap"), "--eve"])
        .arg(&replay_eve)
        .output()
        .expect("precinct replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = read_eve(&replay_eve);
    assert_eq!(
        records(&replayed, "tls"),
        t,
        "replay of the capture writes the same TLS record"
    );
    assert_eq!(records(&replayed, "ssh"), s, "and the same SSH record");
    std::fs::remove_dir_all(&dir).ok();
}
