//! Namespace lab for floods: the real agent, in its default configuration, on the portal end
//! of a veth pair; `hping3 --flood --rand-source` sends TCP SYNs for 15 s, then UDP datagrams
//! for 15 s, from the client namespace. Meanwhile a legitimate client pings every 200 ms and
//! fetches a page every second: at least 99% of both get through, every fetch appears as a
//! flow record with its http record, `/healthz` answers within 100 ms throughout, the agent's
//! memory returns to within twice its idle figure, and the flood's packets are counted (in the
//! pending table's counters), none silently lost, while the flow map never fills.

use std::{
    io::{BufRead as _, BufReader},
    process::Child,
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::{
    agent::Agent,
    lab::{Lab, PORTAL_V4},
    require_root,
    traffic::{ping_summary, HTTP_SERVER},
};

/// Seconds each flood lasts.
const FLOOD_SECS: u64 = 15;

/// `/healthz` every 200 ms for `secs`, from inside the portal namespace; prints one line:
/// requests, failures, and the slowest answer in ms.
const PROBE: &str = r#"
import sys, time, urllib.request
end = time.monotonic() + float(sys.argv[1])
n = bad = 0
worst = 0.0
while time.monotonic() < end:
    t = time.monotonic()
    try:
        urllib.request.urlopen("http://127.0.0.1:9727/healthz", timeout=2).read()
    except Exception:
        bad += 1
    worst = max(worst, (time.monotonic() - t) * 1000)
    n += 1
    time.sleep(max(0.0, 0.2 - (time.monotonic() - t)))
print(n, bad, round(worst, 1), flush=True)
"#;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn wait_ready(child: &mut Child) {
    let out = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready", "the server did not start");
}

/// Fetches the page once; the client port when it answered 200.
fn fetch(lab: &Lab) -> Option<u64> {
    let url = format!("http://{PORTAL_V4}:8080/ballot");
    let out = lab
        .exec(
            &lab.client_ns,
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{local_port}",
                &url,
            ],
        )
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, port) = text.split_once(' ')?;
    (code == "200").then(|| port.trim().parse().ok()).flatten()
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn a_random_source_flood_leaves_legitimate_traffic_tracked_and_the_agent_responsive() {
    require_root(
        "a_random_source_flood_leaves_legitimate_traffic_tracked_and_the_agent_responsive",
    );
    let lab = Lab::create("fld").expect("create the lab");
    let dir = std::env::temp_dir().join(format!("pct-flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut agent = Agent::start(&lab, &dir, &[]);
    let mut http = lab
        .spawn(
            &lab.portal_ns,
            &["python3", "-c", HTTP_SERVER, PORTAL_V4, "8080"],
        )
        .expect("HTTP server");
    wait_ready(&mut http);
    assert!(fetch(&lab).is_some(), "the page answers before the flood");
    std::thread::sleep(Duration::from_millis(1500));
    let idle_kib = rss_kib(agent.pid());

    let total = 2 * FLOOD_SECS + 1;
    let pings = (total * 5).to_string();
    let ping = lab
        .spawn(
            &lab.client_ns,
            &[
                "ping", "-q", "-i", "0.2", "-c", &pings, "-W", "1", PORTAL_V4,
            ],
        )
        .expect("ping");
    let mut probe = lab
        .spawn(
            &lab.portal_ns,
            &["python3", "-c", PROBE, &total.to_string()],
        )
        .expect("healthz probe");
    let mut ports = Vec::new();
    let mut tries = 0u32;
    for flood in [["-S", "-p", "8080"], ["-2", "-p", "53"]] {
        let mut args = vec!["hping3", "-q", "--flood", "--rand-source"];
        args.extend(flood);
        args.push(PORTAL_V4);
        let mut hping = lab.spawn(&lab.client_ns, &args).expect("hping3");
        let until = Instant::now() + Duration::from_secs(FLOOD_SECS);
        while Instant::now() < until {
            let t = Instant::now();
            tries += 1;
            ports.extend(fetch(&lab));
            std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(hping.id() as i32, libc::SIGINT) };
        let _ = hping.wait();
    }
    let ping_out = ping.wait_with_output().expect("ping");
    let (sent, received) = ping_summary(&ping_out);
    assert!(sent >= 5 * total - 5, "{sent} pings sent");
    assert!(
        received * 100 >= sent * 99,
        "{received} of {sent} pings answered"
    );
    assert!(
        ports.len() * 100 >= tries as usize * 99,
        "{} of {tries} fetches answered",
        ports.len()
    );
    let probe_out = {
        let mut s = String::new();
        let out = probe.stdout.take().expect("stdout piped");
        BufReader::new(out).read_line(&mut s).expect("probe output");
        let _ = probe.wait();
        s
    };
    let fields: Vec<f64> = probe_out
        .split_whitespace()
        .map(|f| f.parse().expect("number"))
        .collect();
    assert_eq!(fields.len(), 3, "probe said {probe_out:?}");
    assert!(fields[0] >= 100.0, "{probe_out}: too few /healthz requests");
    assert_eq!(
        fields[1], 0.0,
        "/healthz failed during the flood: {probe_out}"
    );
    assert!(
        fields[2] <= 100.0,
        "/healthz took {} ms at worst during the flood",
        fields[2]
    );

    // The flood is over: memory back within twice the idle figure after two sweeps.
    std::thread::sleep(Duration::from_millis(2500));
    let after_kib = rss_kib(agent.pid());
    assert!(
        after_kib <= 2 * idle_kib,
        "RSS {after_kib} KiB after the flood, {idle_kib} KiB idle"
    );
    let m = agent.metrics();
    let both = |name: &str| {
        m.value(&format!("{name}{{hook=\"ingress\"}}"))
            + m.value(&format!("{name}{{hook=\"egress\"}}"))
    };
    assert_eq!(
        both("precinct_untracked_packets_total"),
        0,
        "the flow map never filled"
    );
    let pending = m.value("precinct_pending_packets_total{hook=\"ingress\"}");
    let ingress = m.value("precinct_packets_total{hook=\"ingress\"}");
    assert!(
        pending > 10_000 && pending * 10 >= ingress * 9,
        "the flood's packets are counted in the pending table: {pending} of {ingress}"
    );
    assert!(
        both("precinct_flows_created_total") < 1_000,
        "no spoofed source entered the flow map"
    );
    eprintln!(
        "flood lab: {received}/{sent} pings, {}/{tries} fetches, /healthz {probe_out:?} \
         (requests, failures, worst ms), RSS {idle_kib} KiB idle, {after_kib} KiB after, \
         {pending} of {ingress} ingress packets in the pending table",
        ports.len()
    );
    let _ = http.kill();
    agent.stop();
    let events = agent.events();
    let of_port = |port: u64, kind: &str| {
        events
            .iter()
            .filter(|e: &&Value| {
                e["event_type"] == kind && e["src_port"] == port && e["dest_port"] == 8080
            })
            .count()
    };
    for port in &ports {
        assert_eq!(
            of_port(*port, "flow"),
            1,
            "a flow record for the fetch from port {port}"
        );
        assert_eq!(
            of_port(*port, "http"),
            1,
            "an http record for the fetch from port {port}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
