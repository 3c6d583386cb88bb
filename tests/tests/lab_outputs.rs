//! Namespace lab for `[[outputs]]` in the real agent: `precinct run` with a Unix stream
//! output (read by the test, across the namespace: the socket is a file) and a file output
//! that takes only flow records. Pings expire into flow records while it runs; logrotate's
//! `create` + HUP is played (both EVE files moved away, SIGHUP) between two pings. The stream
//! reader must get exactly the main EVE file's records, the file output exactly its flow
//! records, split by the rotation, and `/metrics` must count the deliveries.

use std::{
    io::{BufRead, BufReader},
    os::unix::net::UnixListener,
    path::Path,
    sync::{Arc, Mutex},
};

use serde_json::Value;
use tests::{
    agent::Agent,
    collectors::wait_for,
    lab::{Lab, PORTAL_V4},
    require_root,
};

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn icmp_flows(v: &[Value]) -> usize {
    v.iter()
        .filter(|e| e["event_type"] == "flow" && e["proto"] == "ICMP")
        .count()
}

fn ping(lab: &Lab) {
    lab.exec(&lab.client_ns, &["ping", "-c", "2", "-i", "0.2", PORTAL_V4])
        .expect("ping");
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn agent_outputs_follow_the_main_eve_file_across_a_rotation() {
    require_root("agent_outputs_follow_the_main_eve_file_across_a_rotation");
    let lab = Lab::create("out").expect("create the lab");
    let dir = std::env::temp_dir().join(format!("precinct-lab-outputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock = dir.join("soc.sock");
    let listener = UnixListener::bind(&sock).expect("bind the reader's socket");
    let streamed = Arc::new(Mutex::new(Vec::<String>::new()));
    std::thread::spawn({
        let streamed = streamed.clone();
        move || {
            for conn in listener.incoming().map_while(Result::ok) {
                for line in BufReader::new(conn).lines().map_while(Result::ok) {
                    streamed.lock().expect("lock").push(line);
                }
            }
        }
    });
    let config = dir.join("precinct.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[flows]
sweep_interval_ms = 200

[flows.timeouts]
new_secs = 1
icmp_established_secs = 1

[[outputs]]
name = "soc"
type = "unix_stream"
path = "{}"

[[outputs]]
name = "flows"
type = "file"
path = "flows.json"
types = ["flow"]
"#,
            sock.display()
        ),
    )
    .expect("write the config");
    let mut agent = Agent::start(&lab, &dir, &["--config", config.to_str().expect("UTF-8")]);
    let flows = dir.join("flows.json");

    ping(&lab);
    wait_for("the first ping's flow in the flow output", 20, || {
        icmp_flows(&records(&flows)) == 1
    });
    std::fs::rename(&flows, dir.join("flows.json.1")).expect("rotate");
    std::fs::rename(&agent.eve, dir.join("eve.json.1")).expect("rotate");
    agent.signal(libc::SIGHUP);
    wait_for("both files reopened", 20, || {
        flows.exists() && agent.eve.exists()
    });
    ping(&lab);
    wait_for("the second ping's flow in the new flow file", 20, || {
        icmp_flows(&records(&flows)) == 1
    });
    let m = agent.metrics();
    for output in ["soc", "flows"] {
        let series =
            format!("precinct_output_events_total{{output=\"{output}\",result=\"delivered\"}}");
        assert!(m.value(&series) >= 1, "{series}: {}", m.0);
    }
    assert_eq!(
        m.value("precinct_output_events_total{output=\"soc\",result=\"dropped\"}"),
        0
    );
    agent.stop();

    let mut main = records(&dir.join("eve.json.1"));
    main.extend(records(&agent.eve));
    assert_eq!(icmp_flows(&main), 2, "{main:#?}");
    wait_for("every record at the stream reader", 10, || {
        streamed.lock().expect("lock").len() >= main.len()
    });
    let got: Vec<Value> = streamed
        .lock()
        .expect("lock")
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(
        got, main,
        "the stream output carries the main file's records"
    );
    let before = records(&dir.join("flows.json.1"));
    let mut file = before.clone();
    file.extend(records(&flows));
    let main_flows: Vec<Value> = main
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .cloned()
        .collect();
    assert_eq!(
        file, main_flows,
        "the flow output has the flow records only"
    );
    assert_eq!(icmp_flows(&before), 1, "the first ping before the rotation");
    let _ = std::fs::remove_dir_all(dir);
}
