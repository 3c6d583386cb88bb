//! Namespace lab for signatures in the live agent: the real agent in the portal namespace with
//! a rule file (`--rules`) and a configuration whose `[rules]` gives variables and a
//! classification file; `curl`, `dig` and a keep-alive HTTP client in the client namespace.
//! The agent must write EVE `alert` records for an HTTP request URI and a DNS query name, pick
//! up a rewritten rule file on SIGHUP without losing the flow in progress, and keep its rules
//! when a reload fails, saying so in its log and its metrics.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tests::{
    agent::Agent,
    lab::{Lab, CLIENT_V4, PORTAL_V4},
    require_root,
    traffic::{curl_portal, dig_portal, DNS_SERVER},
};

/// `python3 -c KEEPALIVE_SERVER ADDR PORT`: answers every GET with 200 and a 100-byte body,
/// keeping the connection open (HTTP/1.1), one thread per connection so that a held
/// connection does not block others; prints `ready`, serves for 120 s.
const KEEPALIVE_SERVER: &str = r#"
import http.server, sys, threading, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"<p>" + b"r" * 93 + b"</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H)
s.daemon_threads = True
threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
time.sleep(120)
"#;

/// `python3 -c HELD_CLIENT ADDR PORT`: one TCP connection; for each path read from stdin,
/// sends a GET on it and prints `got PATH` once the whole response is in; an empty line
/// closes the connection (`closed`).
const HELD_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print("connected", flush=True)
for line in sys.stdin:
    path = line.strip()
    if not path:
        break
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: precinct-lab/1.0\r\n\r\n" % (path, sys.argv[1])).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, body = buf.split(b"\r\n\r\n", 1)
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < n:
        body += s.recv(4096)
    print("got", path, flush=True)
s.close()
print("closed", flush=True)
"#;

/// The rules at start: one HTTP and one DNS rule over the configured variables, a rule with
/// a keyword this engine does not have (skipped), and the lab's own class.
const RULES_V1: &str = r#"
alert http $LAB_CLIENTS any -> $LAB_PORTAL any (msg:"lab: voter lookup"; flow:established,to_server; http.uri; content:"/voter/lookup"; classtype:lab-probe; sid:9100001; rev:1;)
alert dns $LAB_CLIENTS any -> $LAB_PORTAL 53 (msg:"lab: portal query"; dns.query; content:"portal.example.gov"; nocase; sid:9100002; rev:1;)
alert tcp any any -> any any (msg:"lab: not supported"; content:"x"; nosuchkeyword; sid:9100009; rev:1;)
"#;

/// After the first SIGHUP: the voter-lookup rule is gone, a results-page rule is new, the DNS
/// rule has a new revision.
const RULES_V2: &str = r#"
alert http $LAB_CLIENTS any -> $LAB_PORTAL any (msg:"lab: results page"; flow:established,to_server; http.uri; content:"/results"; sid:9100003; rev:1;)
alert dns $LAB_CLIENTS any -> $LAB_PORTAL 53 (msg:"lab: portal query, rev 2"; dns.query; content:"portal.example.gov"; nocase; sid:9100002; rev:2;)
"#;

/// Written with a configuration that names a missing file: never in use.
const RULES_V3: &str = r#"
alert http any any -> any any (msg:"lab: never loaded"; http.uri; content:"/voter"; sid:9100004; rev:1;)
"#;

fn config(dir: &Path, extra_file: Option<&str>) -> String {
    let files = extra_file
        .map(|f| format!("files = [\"{f}\"]\n"))
        .unwrap_or_default();
    format!(
        "[rules]\n{files}classification = \"{}\"\n\n[rules.vars]\nLAB_PORTAL = \"{PORTAL_V4}\"\nLAB_CLIENTS = \"[10.203.0.0/24]\"\n",
        dir.join("classification.config").display()
    )
}

/// Reads lines of `child`'s stdout until one contains `marker`; returns the reader.
fn wait_line(reader: &mut BufReader<ChildStdout>, marker: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read");
        assert!(n > 0, "the process ended before printing {marker:?}");
        if line.contains(marker) {
            return;
        }
    }
}

/// Polls the agent's EVE file until `done` holds (20 s at most); returns the records.
fn wait_events(agent: &Agent, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = agent.events();
        if done(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {events:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `/metrics` until `series` reaches `value` (20 s at most).
fn wait_metric(agent: &Agent, series: &str, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = agent.metrics();
        if m.value(series) == value {
            return;
        }
        assert!(Instant::now() < deadline, "{series} != {value}: {}", m.0);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alerts(events: &[Value], sid: u64) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["signature_id"] == sid)
        .collect()
}

/// HTTP records for `url`.
fn http_count(events: &[Value], url: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event_type"] == "http" && e["http"]["url"] == url)
        .count()
}

/// DNS response records (written after the query's, so after any alert on the query).
fn dns_responses(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["event_type"] == "dns" && e["dns"]["type"] == "response")
        .count()
}

/// The keep-alive client, held open across a reload.
struct Held {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Held {
    fn start(lab: &Lab) -> Held {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.client_ns,
                "python3",
                "-c",
                HELD_CLIENT,
            ])
            .args([PORTAL_V4, "8080"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the keep-alive client");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        wait_line(&mut stdout, "connected");
        Held {
            child,
            stdin,
            stdout,
        }
    }

    fn get(&mut self, path: &str) {
        writeln!(self.stdin, "{path}").expect("write to the client");
        wait_line(&mut self.stdout, &format!("got {path}"));
    }

    fn close(mut self) {
        writeln!(self.stdin).expect("write to the client");
        wait_line(&mut self.stdout, "closed");
        let _ = self.child.wait();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn live_agent_alerts_and_reloads_rules_on_sighup() {
    require_root("live_agent_alerts_and_reloads_rules_on_sighup");
    let lab = Lab::create("rul").expect("create the lab");
    let dir = std::env::temp_dir().join(format!("precinct-lab-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rules = dir.join("lab.rules");
    let rules_s = rules.to_str().expect("UTF-8 path");
    let config_path = dir.join("precinct.toml");
    let config_s = config_path.to_str().expect("UTF-8 path");
    std::fs::write(&rules, RULES_V1).expect("write rules");
    std::fs::write(
        dir.join("classification.config"),
        "config classification: lab-probe,Lab probe,2\n",
    )
    .expect("write classification");
    std::fs::write(&config_path, config(&dir, None)).expect("write config");

    // A rule file that cannot be read stops the agent at start, before it attaches.
    let missing = dir.join("missing.rules");
    let out = lab
        .spawn(
            &lab.portal_ns,
            &[
                tests::agent::precinct_bin().to_str().expect("UTF-8 path"),
                "run",
                "--iface",
                &lab.portal_if,
                "--eve",
                "-",
                "--rules",
                missing.to_str().expect("UTF-8 path"),
            ],
        )
        .expect("start precinct")
        .wait_with_output()
        .expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("reading the rule file") && stderr.contains("missing.rules"),
        "{stderr}"
    );

    let mut agent = Agent::start(&lab, &dir, &["--config", config_s, "--rules", rules_s]);
    let mut http = lab
        .spawn(
            &lab.portal_ns,
            &["python3", "-c", KEEPALIVE_SERVER, PORTAL_V4, "8080"],
        )
        .expect("HTTP server");
    let mut http_out = BufReader::new(http.stdout.take().expect("stdout"));
    wait_line(&mut http_out, "ready");
    let mut dns = lab
        .spawn(&lab.portal_ns, &["python3", "-c", DNS_SERVER, PORTAL_V4])
        .expect("DNS server");
    let mut dns_out = BufReader::new(dns.stdout.take().expect("stdout"));
    wait_line(&mut dns_out, "ready");

    let m = agent.metrics();
    assert_eq!(m.value("precinct_rules_loaded"), 2, "{}", m.0);
    assert_eq!(m.value("precinct_rules_skipped"), 1, "{}", m.0);

    // Rules at start: the request URI and the query name alert.
    curl_portal(&lab, "/voter/lookup?id=7");
    dig_portal(&lab);
    let mut held = Held::start(&lab);
    held.get("/voter/lookup?id=100");
    let events = wait_events(&agent, "the first HTTP and DNS records", |e| {
        http_count(e, "/voter/lookup?id=7") == 1
            && http_count(e, "/voter/lookup?id=100") == 1
            && dns_responses(e) == 1
    });
    let voter = alerts(&events, 9_100_001);
    assert_eq!(voter.len(), 2, "{events:#?}");
    let a = voter
        .iter()
        .find(|a| a["http"]["url"] == "/voter/lookup?id=7")
        .unwrap_or_else(|| panic!("an alert for the curl request: {voter:#?}"));
    assert_eq!(
        (&a["src_ip"], &a["dest_ip"], &a["dest_port"], &a["proto"]),
        (
            &json!(CLIENT_V4),
            &json!(PORTAL_V4),
            &json!(8080),
            &json!("TCP")
        )
    );
    assert_eq!(a["app_proto"], "http");
    assert_eq!(a["alert"]["signature"], "lab: voter lookup");
    assert_eq!(a["alert"]["rev"], 1);
    assert_eq!(
        a["alert"]["category"], "Lab probe",
        "the configured classes"
    );
    assert_eq!(a["alert"]["severity"], 2);
    assert_eq!(a["http"]["hostname"], PORTAL_V4);
    assert_eq!(a["http"]["http_method"], "GET");
    let http_rec = events
        .iter()
        .find(|e| e["event_type"] == "http" && e["http"]["url"] == "/voter/lookup?id=7")
        .expect("http record");
    assert_eq!(a["flow_id"], http_rec["flow_id"]);
    let held_flow = voter
        .iter()
        .find(|a| a["http"]["url"] == "/voter/lookup?id=100")
        .unwrap_or_else(|| panic!("an alert on the held connection: {voter:#?}"))["flow_id"]
        .clone();

    let query = alerts(&events, 9_100_002);
    assert_eq!(query.len(), 1, "{events:#?}");
    let q = query[0];
    assert_eq!(
        (&q["src_ip"], &q["dest_ip"], &q["dest_port"], &q["proto"]),
        (
            &json!(CLIENT_V4),
            &json!(PORTAL_V4),
            &json!(53),
            &json!("UDP")
        )
    );
    assert_eq!(q["app_proto"], "dns");
    assert_eq!(q["alert"]["signature"], "lab: portal query");
    assert!(q["dns"].is_object(), "{q}");
    assert_eq!(
        q["dns"]["queries"][0]["rrname"], "portal.example.gov",
        "{q}"
    );

    // New rules on SIGHUP: the removed rule is silent, the new one alerts, also on the
    // connection that was open across the reload.
    std::fs::write(&rules, RULES_V2).expect("rewrite rules");
    agent.signal(libc::SIGHUP);
    wait_metric(&agent, "precinct_rule_reloads_total{result=\"ok\"}", 1);
    let m = agent.metrics();
    assert_eq!(m.value("precinct_rules_loaded"), 2, "{}", m.0);
    assert_eq!(m.value("precinct_rules_skipped"), 0, "{}", m.0);
    curl_portal(&lab, "/voter/lookup?id=8");
    curl_portal(&lab, "/results/county?id=3");
    dig_portal(&lab);
    held.get("/results/county?id=101");
    held.get("/voter/lookup?id=102");
    let events = wait_events(&agent, "the HTTP and DNS records after the reload", |e| {
        http_count(e, "/voter/lookup?id=8") == 1
            && http_count(e, "/results/county?id=3") == 1
            && http_count(e, "/voter/lookup?id=102") == 1
            && dns_responses(e) == 2
    });
    assert_eq!(
        alerts(&events, 9_100_001).len(),
        2,
        "the removed rule no longer alerts: {events:#?}"
    );
    let results = alerts(&events, 9_100_003);
    let urls: Vec<&Value> = results.iter().map(|a| &a["http"]["url"]).collect();
    assert_eq!(
        urls,
        [
            &json!("/results/county?id=3"),
            &json!("/results/county?id=101")
        ],
        "{events:#?}"
    );
    assert_eq!(results[0]["alert"]["signature"], "lab: results page");
    assert_eq!(
        results[1]["flow_id"], held_flow,
        "the flow open across the reload is inspected with the new rules"
    );
    let query = alerts(&events, 9_100_002);
    assert_eq!(query.len(), 2, "{events:#?}");
    assert_eq!(query[1]["alert"]["rev"], 2);
    assert_eq!(query[1]["alert"]["signature"], "lab: portal query, rev 2");

    // A reload that fails (the configuration now names a missing file) keeps the rules in
    // use, whatever else changed on disk.
    std::fs::write(&rules, RULES_V3).expect("rewrite rules");
    std::fs::write(&config_path, config(&dir, Some("missing.rules"))).expect("rewrite config");
    agent.signal(libc::SIGHUP);
    wait_metric(&agent, "precinct_rule_reloads_total{result=\"failed\"}", 1);
    curl_portal(&lab, "/results/county?id=4");
    curl_portal(&lab, "/voter/lookup?id=9");
    held.get("/results/county?id=103");
    held.close();
    let events = wait_events(&agent, "the HTTP records after the failed reload", |e| {
        http_count(e, "/results/county?id=4") == 1
            && http_count(e, "/voter/lookup?id=9") == 1
            && http_count(e, "/results/county?id=103") == 1
    });
    assert_eq!(alerts(&events, 9_100_003).len(), 4, "{events:#?}");
    assert!(alerts(&events, 9_100_004).is_empty(), "{events:#?}");
    assert_eq!(alerts(&events, 9_100_001).len(), 2, "{events:#?}");

    // Two sweeps, so that the EVE counts are in the metrics.
    std::thread::sleep(Duration::from_millis(2500));
    let m = agent.metrics();
    let alert_records = events.iter().filter(|e| e["event_type"] == "alert").count() as u64;
    assert_eq!(m.value("precinct_alerts_total"), alert_records, "{}", m.0);
    assert_eq!(
        m.value("precinct_eve_events_total{event_type=\"alert\"}"),
        alert_records
    );
    assert_eq!(
        m.value("precinct_rule_reloads_total{result=\"ok\"}"),
        1,
        "{}",
        m.0
    );
    assert_eq!(m.value("precinct_rules_loaded"), 2, "{}", m.0);
    assert_eq!(m.value("precinct_inspect_queue_overflows_total"), 0);

    for child in [&mut http, &mut dns] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = agent.stop();
    assert!(log.contains("rules: 2 loaded, 1 skipped"), "{log}");
    assert!(log.contains("rules reloaded: 2 loaded, 0 skipped"), "{log}");
    let failed = log
        .lines()
        .find(|l| l.contains("rule reload failed"))
        .unwrap_or_else(|| panic!("a line saying the reload failed: {log}"));
    assert!(
        failed.contains("the 2 rules loaded before stay in use")
            && failed.contains("missing.rules"),
        "{failed}"
    );

    // The held connection is one flow, reported once.
    let events = agent.events();
    let flows: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "flow" && e["flow_id"] == held_flow)
        .collect();
    assert_eq!(flows.len(), 1, "{events:#?}");
    std::fs::remove_dir_all(&dir).ok();
}
