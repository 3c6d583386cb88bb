//! Namespace lab for live deep inspection: the real agent in the portal namespace, `curl` and
//! `dig` in the client namespace against Python HTTP and DNS servers in the portal namespace.
//! The agent must write the `http` and `dns` records from the flow heads the kernel sends, no
//! flow record twice, and the same protocol records as `precinct replay` writes for a
//! `tcpdump` capture of the same traffic.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command},
    time::Duration,
};

use serde_json::{json, Value};
use tests::{
    agent::{precinct_bin, Agent},
    lab::{Lab, CLIENT_V4, PORTAL_V4},
    require_root,
    traffic::{curl_portal, dig_portal, DNS_SERVER, HTTP_SERVER},
};

/// Reads lines of `child`'s stdout (or stderr) until one contains `marker`; returns the
/// reader, to keep the pipe open while the child runs.
fn wait_for(child: &mut Child, stderr: bool, marker: &str) -> Box<dyn BufRead> {
    let mut reader: Box<dyn BufRead> = if stderr {
        Box::new(BufReader::new(child.stderr.take().expect("stderr")))
    } else {
        Box::new(BufReader::new(child.stdout.take().expect("stdout")))
    };
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

fn read_eve(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The protocol records (everything but `flow`), reduced to what both paths must agree on:
/// event type, addresses, ports and the protocol object; sorted.
fn protocol_records(events: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .filter(|e| e["event_type"] != "flow")
        .map(|e| {
            let kind = e["event_type"].as_str().expect("event_type").to_owned();
            json!({
                "event_type": kind,
                "src_ip": e["src_ip"], "src_port": e["src_port"],
                "dest_ip": e["dest_ip"], "dest_port": e["dest_port"],
                "proto": e["proto"],
                kind.as_str(): e[kind.as_str()],
            })
            .to_string()
        })
        .collect();
    out.sort();
    out
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn live_agent_inspects_http_and_dns_like_replay() {
    require_root("live_agent_inspects_http_and_dns_like_replay");
    let lab = Lab::create("ins").expect("create the lab");
    let dir = std::env::temp_dir().join(format!("precinct-lab-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join("portal.pcap");
    let pcap_s = pcap.to_str().expect("UTF-8 path");

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
                pcap_s,
            ],
        )
        .expect("tcpdump");
    let _tcpdump_stderr = wait_for(&mut tcpdump, true, "listening on");
    let mut http = lab
        .spawn(
            &lab.portal_ns,
            &["python3", "-c", HTTP_SERVER, PORTAL_V4, "8080"],
        )
        .expect("HTTP server");
    let _http_stdout = wait_for(&mut http, false, "ready");
    let mut dns = lab
        .spawn(&lab.portal_ns, &["python3", "-c", DNS_SERVER, PORTAL_V4])
        .expect("DNS server");
    let _dns_stdout = wait_for(&mut dns, false, "ready");

    curl_portal(&lab, "/voter/lookup?id=7");
    dig_portal(&lab);

    // Two sweeps, so the metrics include everything.
    std::thread::sleep(Duration::from_millis(2500));
    let m = agent.metrics();
    for child in [&mut http, &mut dns] {
        let _ = child.kill();
        let _ = child.wait();
    }
    // SAFETY: kill(2) on our own child's pid; SIGTERM makes tcpdump finish the file.
    unsafe { libc::kill(tcpdump.id() as i32, libc::SIGTERM) };
    let _ = tcpdump.wait();
    agent.stop();
    let live = agent.events();

    assert!(
        m.value("precinct_ringbuf_records_total{hook=\"ingress\"}") > 0,
        "{}",
        m.0
    );
    assert!(
        m.value("precinct_ringbuf_records_total{hook=\"egress\"}") > 0,
        "{}",
        m.0
    );
    assert_eq!(
        m.value("precinct_ringbuf_reserve_failures_total{hook=\"ingress\"}"),
        0
    );
    assert_eq!(
        m.value("precinct_ringbuf_reserve_failures_total{hook=\"egress\"}"),
        0
    );
    assert_eq!(m.value("precinct_inspect_queue_overflows_total"), 0);
    assert!(m.value("precinct_inspect_records_total") > 0, "{}", m.0);
    assert_eq!(
        m.value("precinct_eve_events_total{event_type=\"http\"}"),
        1,
        "{}",
        m.0
    );

    let h = of_type(&live, "http");
    assert_eq!(h.len(), 1, "one HTTP transaction: {live:#?}");
    let h = h[0];
    assert_eq!(
        (&h["src_ip"], &h["dest_ip"], &h["dest_port"], &h["proto"]),
        (
            &json!(CLIENT_V4),
            &json!(PORTAL_V4),
            &json!(8080),
            &json!("TCP")
        )
    );
    assert_eq!(h["in_iface"], lab.portal_if.as_str());
    let http_obj = &h["http"];
    assert_eq!(http_obj["hostname"], PORTAL_V4);
    assert_eq!(http_obj["http_port"], 8080);
    assert_eq!(http_obj["url"], "/voter/lookup?id=7");
    assert_eq!(http_obj["http_user_agent"], "precinct-lab/1.0");
    assert_eq!(http_obj["http_method"], "GET");
    assert_eq!(http_obj["protocol"], "HTTP/1.1");
    assert_eq!(http_obj["status"], 200);
    assert_eq!(http_obj["http_content_type"], "text/html");
    assert_eq!(http_obj["length"], 2000);

    let d = of_type(&live, "dns");
    let request = d
        .iter()
        .find(|e| e["dns"]["type"] == "request")
        .unwrap_or_else(|| panic!("a DNS request record: {live:#?}"));
    assert_eq!(
        (
            &request["src_ip"],
            &request["dest_ip"],
            &request["dest_port"]
        ),
        (&json!(CLIENT_V4), &json!(PORTAL_V4), &json!(53))
    );
    assert_eq!(
        request["dns"]["queries"],
        json!([{"rrname": "portal.example.gov", "rrtype": "A"}])
    );
    let response = d
        .iter()
        .find(|e| e["dns"]["type"] == "response")
        .unwrap_or_else(|| panic!("a DNS response record: {live:#?}"));
    // A response is written from the server's side, as Suricata does.
    assert_eq!(
        (
            &response["src_ip"],
            &response["src_port"],
            &response["dest_ip"]
        ),
        (&json!(PORTAL_V4), &json!(53), &json!(CLIENT_V4))
    );
    assert_eq!(response["dns"]["rcode"], "NOERROR");
    assert_eq!(response["dns"]["aa"], true);
    assert_eq!(
        response["dns"]["answers"],
        json!([{"rrname": "portal.example.gov", "rrtype": "A", "ttl": 300, "rdata": "192.0.2.44"}])
    );
    assert_eq!(response["dns"]["id"], request["dns"]["id"]);

    // Flow records come from the kernel's flow map only: one per conversation, with the
    // flow id its protocol records carry.
    let flows = of_type(&live, "flow");
    for (port, what, records) in [(8080, "HTTP", vec![h]), (53, "DNS", d.clone())] {
        let matching: Vec<_> = flows
            .iter()
            .filter(|f| f["dest_port"] == port && f["src_ip"] == CLIENT_V4)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "one flow record for the {what} flow: {flows:#?}"
        );
        for r in records {
            assert_eq!(r["flow_id"], matching[0]["flow_id"], "{what}: {r}");
        }
    }

    // `precinct replay` on a capture of the same traffic writes the same protocol records.
    let replay_eve = dir.join("replay.json");
    let out = Command::new(precinct_bin())
        .args(["replay", "--midstream", "--pcap", pcap_s, "--eve"])
        .arg(&replay_eve)
        .output()
        .expect("run precinct replay");
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = read_eve(&replay_eve);
    let live_records = protocol_records(&live);
    assert!(live_records.len() >= 3, "{live_records:#?}");
    assert_eq!(
        live_records,
        protocol_records(&replayed),
        "live and replayed protocol records"
    );
    std::fs::remove_dir_all(&dir).ok();
}
