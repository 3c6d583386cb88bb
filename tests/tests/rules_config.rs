//! `[rules]` of the configuration file outside the agent: `precinct replay --config` compiles
//! the configured files with the configured variables and classifications (and adds
//! `--rules`), and `precinct config check` loads them and reports the counts.

use std::{path::PathBuf, process::Command};

use serde_json::Value;
use tests::{
    agent::precinct_bin,
    session::{write_pcap, TcpSession},
};

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("precinct-rules-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn alert_sids(events: &[Value]) -> Vec<u64> {
    let mut v: Vec<u64> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| e["alert"]["signature_id"].as_u64().expect("sid"))
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn replay_and_config_check_use_the_rules_section() {
    let dir = scratch();
    let mut s = TcpSession::new([192, 0, 2, 10], 40000, [198, 51, 100, 20], 80);
    let mut frames = s.handshake();
    frames.extend(s.client_data(
        b"GET /results/county HTTP/1.1\r\nHost: results.example.gov\r\n\r\n",
        1400,
    ));
    frames.extend(s.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1400));
    frames.extend(s.close());
    let pcap = dir.join("http.pcap");
    write_pcap(&pcap, &frames, 1_790_000_000, 1000).expect("write pcap");

    // Rule files relative to the configuration's directory; a variable the defaults do not
    // have; a class of the configured classification file.
    std::fs::create_dir_all(dir.join("rules")).expect("rules dir");
    std::fs::write(
        dir.join("rules/local.rules"),
        "alert http $RESULTS_CLIENTS any -> $RESULTS_SERVERS $RESULTS_PORTS (msg:\"results\"; http.uri; content:\"/results\"; classtype:results-watch; sid:7001;)\n\
         alert http any any -> any any (msg:\"unsupported\"; nosuchkeyword; sid:7002;)\n",
    )
    .expect("write rules");
    std::fs::write(
        dir.join("extra.rules"),
        "alert http any any -> any any (msg:\"host\"; http.host; content:\"results.example.gov\"; sid:7003;)\n",
    )
    .expect("write rules");
    std::fs::write(
        dir.join("classes.config"),
        "config classification: results-watch,Results site watch,1\n",
    )
    .expect("write classification");
    let config = dir.join("precinct.toml");
    std::fs::write(
        &config,
        "[rules]\nfiles = [\"rules/local.rules\"]\nclassification = \"classes.config\"\n\n\
         [rules.vars]\nRESULTS_CLIENTS = \"192.0.2.0/24\"\nRESULTS_SERVERS = \"[198.51.100.20]\"\nRESULTS_PORTS = \"[80,443]\"\n",
    )
    .expect("write config");

    let out = Command::new(precinct_bin())
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("run config check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .contains("1 rule file(s): 1 loaded, 1 skipped (1 unsupported keyword nosuchkeyword)"),
        "{stdout}"
    );

    let eve = dir.join("eve.json");
    let out = Command::new(precinct_bin())
        .args(["replay", "--pcap"])
        .arg(&pcap)
        .arg("--config")
        .arg(&config)
        .arg("--rules")
        .arg(dir.join("extra.rules"))
        .arg("--eve")
        .arg(&eve)
        .output()
        .expect("run replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("replay: rules: 2 loaded, 1 skipped"),
        "{stderr}"
    );
    let events: Vec<Value> = std::fs::read_to_string(&eve)
        .expect("eve")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(alert_sids(&events), [7001, 7003], "{events:#?}");
    let a = events
        .iter()
        .find(|e| e["alert"]["signature_id"] == 7001)
        .expect("alert");
    assert_eq!(a["alert"]["category"], "Results site watch");
    assert_eq!(a["alert"]["severity"], 1);

    // A missing file named by the configuration is an error for both.
    std::fs::write(&config, "[rules]\nfiles = [\"rules/gone.rules\"]\n").expect("write config");
    for args in [
        vec!["config", "check", config.to_str().expect("UTF-8")],
        vec![
            "replay",
            "--pcap",
            pcap.to_str().expect("UTF-8"),
            "--config",
            config.to_str().expect("UTF-8"),
            "--eve",
            "-",
        ],
    ] {
        let out = Command::new(precinct_bin())
            .args(&args)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains("gone.rules"), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
