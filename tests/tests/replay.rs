//! `precinct replay` on captures this project builds itself: the CLI's behaviour (exit codes,
//! errors, damaged files) and the EVE records, field by field.

use std::{path::PathBuf, process::Command};

use serde_json::Value;
use tests::{
    agent::precinct_bin,
    session::{udp_frame, write_pcap, write_pcap_snap, write_pcap_timed, TcpSession},
};

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [198, 51, 100, 20];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("precinct-replay-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn replay(pcap: &std::path::Path, extra: &[&str]) -> (std::process::Output, Vec<Value>) {
    let eve = pcap.with_extension("eve.json");
    let _ = std::fs::remove_file(&eve);
    let out = Command::new(precinct_bin())
        .args(["replay", "--pcap"])
        .arg(pcap)
        .arg("--eve")
        .arg(&eve)
        .args(extra)
        .output()
        .expect("run precinct replay");
    let events = std::fs::read_to_string(&eve)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out, events)
}

/// Suricata 7 (installed by `cargo xtask setup`) on `pcap` with `rules` (none: no rules),
/// its log in `dir`: its EVE records of type `t`.
fn suricata_records(
    pcap: &std::path::Path,
    rules: Option<&std::path::Path>,
    dir: &std::path::Path,
    t: &str,
) -> Vec<Value> {
    std::fs::create_dir_all(dir).expect("dir");
    let status = Command::new("suricata")
        .arg("-r")
        .arg(pcap)
        .args(["-k", "none", "--runmode", "single", "-S"])
        .arg(rules.unwrap_or(std::path::Path::new("/dev/null")))
        .arg("-l")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("suricata: installed by cargo xtask setup");
    assert!(status.success());
    std::fs::read_to_string(dir.join("eve.json"))
        .expect("suricata's eve.json")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event_type"] == t)
        .collect()
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

/// Alerts as (sid, client port), sorted: the client's port is the one that is not `server`.
fn alerts_by_client_port(events: &[&Value], server: u64) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = events
        .iter()
        .map(|a| {
            let port = if a["src_port"] == server {
                &a["dest_port"]
            } else {
                &a["src_port"]
            };
            (
                a["alert"]["signature_id"].as_u64().expect("sid"),
                port.as_u64().expect("port"),
            )
        })
        .collect();
    v.sort_unstable();
    v
}

/// Suricata's alert records on `o.pcap` with `o.rules` in `dir` (as [`replay_with_rules`]
/// wrote them under the name `o`).
fn suricata_alert_records(dir: &std::path::Path) -> Vec<Value> {
    suricata_records(
        &dir.join("o.pcap"),
        Some(&dir.join("o.rules")),
        &dir.join("suricata"),
        "alert",
    )
}

/// [`suricata_alert_records`] as [`alerts_by_client_port`] gives them.
fn suricata_alerts(dir: &std::path::Path, server: u64) -> Vec<(u64, u64)> {
    let theirs = suricata_alert_records(dir);
    alerts_by_client_port(&theirs.iter().collect::<Vec<_>>(), server)
}

/// Writes `frames` as `NAME.pcap` in `dir` and `rules` beside it, and replays the capture with
/// those rules; the replay must succeed. Its EVE records.
fn replay_with_rules(
    dir: &std::path::Path,
    name: &str,
    frames: &[Vec<u8>],
    rules: &str,
) -> Vec<Value> {
    let pcap = dir.join(format!("{name}.pcap"));
    write_pcap(&pcap, frames, 1_790_000_000, 1000).expect("write");
    let path = dir.join(format!("{name}.rules"));
    std::fs::write(&path, rules).expect("rules");
    let (out, events) = replay(&pcap, &["--rules", path.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    events
}

fn http_session() -> Vec<Vec<u8>> {
    let mut s = TcpSession::new(CLIENT, 40000, SERVER, 80);
    let mut frames = s.handshake();
    let req = b"GET /voter/lookup?id=7 HTTP/1.1\r\nHost: portal.example.gov\r\nUser-Agent: precinct-test/1.0\r\nAccept: */*\r\n\r\n";
    frames.extend(s.client_data(req, 40));
    let body = vec![b'x'; 3000];
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 3000\r\n\r\n".to_vec();
    resp.extend_from_slice(&body);
    frames.extend(s.server_data(&resp, 1400));
    frames.extend(s.close());
    frames
}

#[test]
fn http_session_gives_http_and_flow_records() {
    let dir = scratch("http");
    let pcap = dir.join("http.pcap");
    let frames = http_session();
    write_pcap(&pcap, &frames, 1_790_000_000, 1000).expect("write pcap");
    let (out, events) = replay(&pcap, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let http = of_type(&events, "http");
    assert_eq!(http.len(), 1, "{events:#?}");
    let h = http[0];
    assert_eq!(h["src_ip"], "192.0.2.10");
    assert_eq!(h["src_port"], 40000);
    assert_eq!(h["dest_ip"], "198.51.100.20");
    assert_eq!(h["dest_port"], 80);
    assert_eq!(h["proto"], "TCP");
    assert_eq!(h["tx_id"], 0);
    assert_eq!(h["http"]["hostname"], "portal.example.gov");
    assert_eq!(h["http"]["url"], "/voter/lookup?id=7");
    assert_eq!(h["http"]["http_user_agent"], "precinct-test/1.0");
    assert_eq!(h["http"]["http_content_type"], "text/html");
    assert_eq!(h["http"]["http_method"], "GET");
    assert_eq!(h["http"]["protocol"], "HTTP/1.1");
    assert_eq!(h["http"]["status"], 200);
    assert_eq!(h["http"]["length"], 3000);
    // Frames are the handshake (1-3), three request segments (4-6), three response segments
    // (7-9), then the client's FIN (10), which acknowledges the whole response: as in
    // Suricata's IDS mode, parsers see data once the peer acknowledged it, so the record is
    // written with packet 10.
    assert_eq!(h["pcap_cnt"], 10);
    assert!(
        h["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-09-21T")),
        "{h}"
    );

    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1);
    let f = flows[0];
    assert_eq!(f["app_proto"], "http");
    assert_eq!(f["flow"]["pkts_toserver"], 2 + 3 + 2);
    assert_eq!(f["flow"]["pkts_toclient"], 1 + 3 + 1);
    let bytes_ts: usize = [0, 2, 3, 4, 5, 9, 11]
        .iter()
        .map(|&i| frames[i].len())
        .sum();
    let bytes_tc: usize = [1, 6, 7, 8, 10].iter().map(|&i| frames[i].len()).sum();
    assert_eq!(f["flow"]["bytes_toserver"], bytes_ts);
    assert_eq!(f["flow"]["bytes_toclient"], bytes_tc);
    assert_eq!(f["flow"]["reason"], "shutdown");
    assert_eq!(f["flow"]["state"], "closed");
    assert_eq!(f["tcp"]["state"], "closed");
    assert_eq!(f["tcp"]["tcp_flags_ts"], "1b");
    assert_eq!(f["tcp"]["tcp_flags_tc"], "1b");
    assert_eq!(
        f["flow_id"], h["flow_id"],
        "app and flow records share the flow id"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reordered_and_retransmitted_segments_give_the_same_records() {
    let dir = scratch("reorder");
    let frames = http_session();
    let mut shuffled = frames.clone();
    // Swap two request segments and retransmit one response segment.
    shuffled.swap(3, 5);
    shuffled.insert(8, frames[7].clone());
    let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
    write_pcap(&a, &frames, 1_790_000_000, 1000).expect("write");
    write_pcap(&b, &shuffled, 1_790_000_000, 1000).expect("write");
    let (_, ea) = replay(&a, &[]);
    let (out, eb) = replay(&b, &[]);
    assert!(out.status.success());
    let strip = |v: &Value| {
        let mut h = v["http"].clone();
        h.as_object_mut().map(|m| m.remove("length"));
        h
    };
    let ha = of_type(&ea, "http");
    let hb = of_type(&eb, "http");
    assert_eq!(hb.len(), 1);
    assert_eq!(strip(ha[0]), strip(hb[0]));
    assert_eq!(hb[0]["http"]["length"], 3000);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn midstream_pickup_is_optional() {
    let dir = scratch("midstream");
    let pcap = dir.join("mid.pcap");
    let frames = http_session();
    // Drop the handshake: the capture starts with the request.
    write_pcap(&pcap, &frames[3..], 1_790_000_000, 1000).expect("write");
    let (_, without) = replay(&pcap, &[]);
    assert!(
        of_type(&without, "http").is_empty(),
        "no handshake, no inspection"
    );
    assert_eq!(
        of_type(&without, "flow").len(),
        1,
        "the flow is still accounted"
    );
    let (_, with) = replay(&pcap, &["--midstream"]);
    assert_eq!(of_type(&with, "http").len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn udp_flows_and_unknown_payloads() {
    let dir = scratch("udp");
    let pcap = dir.join("udp.pcap");
    let frames = vec![
        udp_frame(CLIENT, 5000, SERVER, 9999, b"hello"),
        udp_frame(SERVER, 9999, CLIENT, 5000, b"world!"),
        udp_frame(CLIENT, 5000, SERVER, 9999, b"again"),
    ];
    write_pcap(&pcap, &frames, 1_790_000_000, 1000).expect("write");
    let (out, events) = replay(&pcap, &[]);
    assert!(out.status.success());
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["flow"]["pkts_toserver"], 2);
    assert_eq!(flows[0]["flow"]["pkts_toclient"], 1);
    assert_eq!(flows[0]["app_proto"], "failed");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn idle_flows_time_out_by_capture_time() {
    let dir = scratch("timeout");
    let pcap = dir.join("t.pcap");
    // Two datagrams 40 s apart: the first flow (one direction only) times out after 30 s.
    let frames = vec![
        udp_frame(CLIENT, 5000, SERVER, 9999, b"first"),
        udp_frame(CLIENT, 5001, SERVER, 9999, b"second"),
    ];
    write_pcap(&pcap, &frames, 1_790_000_000, 40_000_000).expect("write");
    let (_, events) = replay(&pcap, &[]);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0]["src_port"], 5000);
    assert_eq!(flows[0]["flow"]["reason"], "timeout");
    assert_eq!(flows[1]["flow"]["reason"], "shutdown");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn flows_that_time_out_together_are_written_in_the_order_they_began() {
    let dir = scratch("order");
    let pcap = dir.join("o.pcap");
    // 64 one-datagram flows a millisecond apart, then one 40 s later: the sweep it triggers
    // ends all 64 at once. The flow table's hash order differs from run to run; the log must not.
    let start = 1_790_000_000u64 * 1_000_000;
    let mut frames: Vec<(u64, Vec<u8>)> = (0..64u16)
        .map(|i| {
            (
                start + u64::from(i) * 1000,
                udp_frame(CLIENT, 6000 + i, SERVER, 9999, b"x"),
            )
        })
        .collect();
    frames.push((
        start + 40_000_000,
        udp_frame(CLIENT, 7000, SERVER, 9999, b"late"),
    ));
    let timed: Vec<(u64, &[u8])> = frames.iter().map(|(t, f)| (*t, f.as_slice())).collect();
    write_pcap_timed(&pcap, &timed).expect("write");
    let (_, a) = replay(&pcap, &[]);
    let (_, b) = replay(&pcap, &[]);
    assert_eq!(a, b, "two replays of one capture wrote different logs");
    let ports: Vec<u64> = of_type(&a, "flow")
        .iter()
        .filter_map(|f| f["src_port"].as_u64())
        .collect();
    let mut expected: Vec<u64> = (6000..6064).collect();
    expected.push(7000);
    assert_eq!(ports, expected);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn snap_length_captures_are_read_as_tcpdump_wrote_them() {
    let dir = scratch("snap");
    let frames = http_session();
    let full = dir.join("full.pcap");
    write_pcap(&full, &frames, 1_790_000_000, 1000).expect("write");
    let (_, all) = replay(&full, &[]);
    // `tcpdump -s 96`: every record holds the frame's first 96 bytes (headers and the start of
    // the payload), with the frame's length as the original length.
    let snap = dir.join("snap.pcap");
    write_pcap_snap(&snap, &frames, 96, 96).expect("write");
    let (out, cut) = replay(&snap, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (fa, fc) = (of_type(&all, "flow"), of_type(&cut, "flow"));
    assert_eq!(fc.len(), 1);
    // The client's packets fit in 96 bytes and count as before. The server's three data
    // packets are cut inside their payload: like Suricata (an IPv4 `trunc_pkt` decoder event),
    // a packet shorter than its IP header says is not decoded into the flow.
    assert_eq!(
        fc[0]["flow"]["pkts_toserver"],
        fa[0]["flow"]["pkts_toserver"]
    );
    assert_eq!(fa[0]["flow"]["pkts_toclient"], 5);
    assert_eq!(fc[0]["flow"]["pkts_toclient"], 2, "SYN-ACK and FIN");
    assert_eq!(fc[0]["tcp"]["tcp_flags"], fa[0]["tcp"]["tcp_flags"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not inspected: bad_ipv4_total_length 3"),
        "the summary names the packets it could not decode: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Records longer than the header's snapshot length are cut to it, not refused.
    let long = dir.join("long.pcap");
    write_pcap_snap(&long, &frames, 64, 96).expect("write");
    let (out, over) = replay(&long, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Read exactly as a capture whose records were cut at 64 bytes when written.
    let cut64 = dir.join("cut64.pcap");
    write_pcap_snap(&cut64, &frames, 64, 64).expect("write");
    let (_, want) = replay(&cut64, &[]);
    assert_eq!(over, want);
    assert_eq!(of_type(&over, "flow")[0]["flow"]["pkts_toserver"], 4);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn compressed_captures_replay_as_their_contents() {
    let dir = scratch("compressed");
    let plain = dir.join("http.pcap");
    write_pcap(&plain, &http_session(), 1_790_000_000, 1000).expect("write");
    let (_, want) = replay(&plain, &[]);
    assert!(!want.is_empty());
    for (tool, ext) in [("gzip", "gz"), ("zstd", "zst")] {
        let packed = dir.join(format!("http.pcap.{ext}"));
        let out = Command::new(tool)
            .arg("-c")
            .arg(&plain)
            .output()
            .unwrap_or_else(|e| panic!("running {tool} (cargo xtask setup installs it): {e}"));
        assert!(out.status.success(), "{tool} failed");
        std::fs::write(&packed, &out.stdout).expect("write");
        let (status, got) = replay(&packed, &[]);
        assert!(
            status.status.success(),
            "{ext}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        assert_eq!(
            got, want,
            "{ext}: the same records as the uncompressed capture"
        );
    }
    // Two gzip members concatenated (`cat a.gz b.gz`) are one stream, as zcat reads them.
    let double = dir.join("double.pcap.gz");
    let first = Command::new("gzip")
        .arg("-c")
        .arg(&plain)
        .output()
        .expect("gzip");
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").expect("write");
    let second = Command::new("gzip")
        .arg("-c")
        .arg(&empty)
        .output()
        .expect("gzip");
    std::fs::write(&double, [first.stdout, second.stdout].concat()).expect("write");
    let (status, got) = replay(&double, &[]);
    assert!(status.status.success());
    assert_eq!(got, want);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn packets_longer_than_64k_are_inspected_whole() {
    // A host capture with GRO: one 100,000-byte TCP segment (IPv4 total length 0, as BIG TCP
    // writes it). The payload past 65,535 bytes reaches reassembly and detection.
    let dir = scratch("gro");
    let mut s = TcpSession::new(CLIENT, 40000, SERVER, 8080);
    let mut frames = s.handshake();
    let mut data = vec![b'a'; 100_000];
    data[99_000..99_019].copy_from_slice(b"precinct-large-tail");
    frames.extend(s.client_data(&data, data.len()));
    frames.push(s.server_ack());
    frames.extend(s.close());
    let events = replay_with_rules(
        &dir,
        "gro",
        &frames,
        "alert tcp any any -> any any (msg:\"tail\"; flow:to_server; content:\"precinct-large-tail\"; sid:7;)\n",
    );
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1);
    let to_server = flows[0]["flow"]["bytes_toserver"].as_u64().expect("bytes");
    assert!(
        to_server > 100_000,
        "the whole packet is counted: {to_server}"
    );
    let alerts = of_type(&events, "alert");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["alert"]["signature_id"], 7);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn link_layers_and_tunnels_before_ip_are_opened() {
    // The same HTTP session behind each link layer a capture on a real network shows: every
    // one gives the records of the bare session.
    use tests::packets::{eth, inner_frame, ipv4, mpls, pppoe, V4};
    let dir = scratch("layers");
    let bare = http_session();
    let plain = dir.join("plain.pcap");
    write_pcap(&plain, &bare, 1_790_000_000, 1000).expect("write");
    let (_, want) = replay(&plain, &[]);
    let wrap = |f: &dyn Fn(&[u8]) -> Vec<u8>| -> Vec<Vec<u8>> {
        bare.iter().map(|frame| f(&frame[14..])).collect()
    };
    let cases: Vec<(&str, Vec<Vec<u8>>, Value)> = vec![
        (
            "pppoe",
            wrap(&|ip| eth(&[], 0x8864, &pppoe(0x0021, ip))),
            Value::Null,
        ),
        (
            "mpls",
            wrap(&|ip| eth(&[], 0x8847, &mpls(&[100, 200], ip))),
            Value::Null,
        ),
        (
            "mpls-pseudowire",
            wrap(&|ip| {
                let mut pw = vec![0u8; 4];
                pw.extend_from_slice(&inner_frame(0x0800, ip));
                eth(&[], 0x8847, &mpls(&[300], &pw))
            }),
            Value::Null,
        ),
        (
            "fabricpath",
            wrap(&|ip| {
                let mut fp = vec![0x00, 0x3f];
                fp.extend_from_slice(&inner_frame(0x0800, ip));
                eth(&[], 0x8903, &fp)
            }),
            Value::Null,
        ),
        (
            "qinq",
            wrap(&|ip| eth(&[10, 20], 0x0800, ip)),
            serde_json::json!([10, 20]),
        ),
        (
            "ipip-behind-vlan",
            wrap(&|ip| {
                eth(
                    &[5],
                    0x0800,
                    &ipv4(&V4::new([10, 9, 9, 1], [10, 9, 9, 2], 4), ip),
                )
            }),
            serde_json::json!([5]),
        ),
    ];
    for (name, frames, vlan) in cases {
        let pcap = dir.join(format!("{name}.pcap"));
        write_pcap(&pcap, &frames, 1_790_000_000, 1000).expect("write");
        let (out, got) = replay(&pcap, &[]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (h, w) = (of_type(&got, "http"), of_type(&want, "http"));
        assert_eq!(h.len(), 1, "{name}: {got:?}");
        assert_eq!(h[0]["http"], w[0]["http"], "{name}");
        assert_eq!(h[0]["src_ip"], w[0]["src_ip"], "{name}");
        assert_eq!(h[0]["vlan"], vlan, "{name}");
        let flows: Vec<_> = of_type(&got, "flow")
            .into_iter()
            .filter(|f| f["proto"] == "TCP")
            .collect();
        assert_eq!(flows.len(), 1, "{name}");
        assert_eq!(
            flows[0]["flow"]["pkts_toserver"],
            of_type(&want, "flow")[0]["flow"]["pkts_toserver"],
            "{name}"
        );
        assert_eq!(flows[0]["vlan"], vlan, "{name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `data` compressed by the gzip tool.
fn gzip_tool(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip (installed by cargo xtask setup)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write to gzip");
    let out = child.wait_with_output().expect("gzip");
    assert!(out.status.success());
    out.stdout
}

#[test]
fn compressed_and_cut_response_bodies_are_inspected() {
    let dir = scratch("bodies");
    let rules = dir.join("r.rules");
    std::fs::write(
        &rules,
        "alert http any any -> any any (msg:\"landing page\"; flow:to_client; file.data; content:\"exploit-kit-landing\"; sid:21;)\n",
    )
    .expect("rules");
    let rules_s = rules.to_str().expect("path").to_owned();
    let mut page = b"<html><body>".to_vec();
    page.extend_from_slice(&b"filler text ".repeat(300));
    page.extend_from_slice(b"exploit-kit-landing");
    let marker_end = page.len();
    page.extend_from_slice(&b" more filler".repeat(300));
    page.extend_from_slice(b"</body></html>");
    let session = |headers: &str, body: &[u8], cut: Option<usize>| {
        let mut s = TcpSession::new(CLIENT, 40001, SERVER, 80);
        let mut frames = s.handshake();
        frames.extend(s.client_data(b"GET /ad HTTP/1.1\r\nHost: ads.example\r\n\r\n", 1400));
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        let head = resp.len();
        resp.extend_from_slice(body);
        if let Some(keep) = cut {
            // The connection ends `keep` bytes into the body, before the body does.
            resp.truncate(head + keep);
        }
        frames.extend(s.server_data(&resp, 500));
        frames.push(s.client_ack());
        frames.extend(s.close());
        frames
    };
    let alerts = |name: &str, frames: Vec<Vec<u8>>| {
        let pcap = dir.join(format!("{name}.pcap"));
        write_pcap(&pcap, &frames, 1_790_000_000, 1000).expect("write");
        let (out, events) = replay(&pcap, &["--rules", &rules_s]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            of_type(&events, "alert").len(),
            of_type(&events, "http")
                .first()
                .map(|h| h["http"]["length"].clone()),
        )
    };
    let zipped = gzip_tool(&page);
    assert!(!zipped.windows(19).any(|w| w == b"exploit-kit-landing"));
    // Plain, gzip-encoded, and gzip-encoded with the body cut short: the rule sees the page.
    assert_eq!(alerts("plain", session("", &page, None)).0, 1);
    let (n, length) = alerts("gzip", session("Content-Encoding: gzip\r\n", &zipped, None));
    assert_eq!(n, 1, "file.data holds the decoded page");
    assert_eq!(
        length,
        Some(Value::from(zipped.len())),
        "length is the body as sent"
    );
    // A body whose end never arrives (3,600 bytes of it lost): what arrived is inspected.
    assert!(page.len() > marker_end + 3000);
    assert_eq!(
        alerts("cut", session("", &page, Some(marker_end + 10))).0,
        1
    );
    // An encoding this build does not undo leaves the body as sent: no false match.
    assert_eq!(
        alerts("brotli", session("Content-Encoding: br\r\n", &zipped, None)).0,
        0
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dns_version_2_is_written_as_suricata_7_writes_it() {
    use tests::mixed::{dns_answer, dns_query};
    let dir = scratch("dnsv2");
    let resolver = [192, 0, 2, 53];
    let mut frames = Vec::new();
    for (i, name) in ["portal.example.gov", "results.example.gov"]
        .iter()
        .enumerate()
    {
        let id = 0x4000 + i as u16;
        let port = 40_000 + i as u16;
        frames.push(udp_frame(CLIENT, port, resolver, 53, &dns_query(id, name)));
        frames.push(udp_frame(
            resolver,
            53,
            CLIENT,
            port,
            &dns_answer(id, name, [198, 51, 100, 7]),
        ));
    }
    let pcap = dir.join("dns.pcap");
    write_pcap(&pcap, &frames, 1_790_000_000, 1000).expect("write");
    let config = dir.join("c.toml");
    std::fs::write(&config, "dns_version = 2\n").expect("config");
    let (out, ours) = replay(&pcap, &["--config", config.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Suricata 7 on the same capture: its dns records, in its default (version 2) layout.
    let theirs = suricata_records(&pcap, None, &dir.join("suricata"), "dns");
    let ours: Vec<&Value> = of_type(&ours, "dns");
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o["dns"], t["dns"], "the dns object, field for field");
        for k in ["src_ip", "src_port", "dest_ip", "dest_port"] {
            assert_eq!(o[k], t[k], "{k}");
        }
    }
    // An unknown layout is refused, naming the setting.
    std::fs::write(&config, "dns_version = 4\n").expect("config");
    let (out, _) = replay(&pcap, &["--config", config.to_str().expect("path")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dns_version = 4"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tls_inside_a_connect_tunnel_is_detected_on() {
    use tests::mixed::{client_hello, server_flight, Rng};
    let dir = scratch("connect");
    let mut rng = Rng::new(5);
    let mut s = TcpSession::new(CLIENT, 40002, SERVER, 3128);
    let mut frames = s.handshake();
    frames.extend(s.client_data(
        b"CONNECT vote.example.gov:443 HTTP/1.1\r\nHost: vote.example.gov:443\r\n\r\n",
        1400,
    ));
    frames.push(s.server_ack());
    frames.extend(s.server_data(b"HTTP/1.1 200 Connection established\r\n\r\n", 1400));
    frames.push(s.client_ack());
    frames.extend(s.client_data(&client_hello("vote.example.gov", &mut rng), 1400));
    frames.push(s.server_ack());
    let cert = tests::mixed::openssl_cert(&dir).expect("openssl (installed by setup)");
    frames.extend(s.server_data(&server_flight(&cert, &mut rng), 1400));
    frames.push(s.client_ack());
    frames.extend(s.close());
    let events = replay_with_rules(
        &dir,
        "connect",
        &frames,
        "alert tls any any -> any any (msg:\"sni in tunnel\"; tls.sni; content:\"vote.example.gov\"; sid:31;)\n\
         alert http any any -> any any (msg:\"connect\"; http.method; content:\"CONNECT\"; sid:32;)\n",
    );
    assert_eq!(of_type(&events, "http").len(), 1);
    assert_eq!(of_type(&events, "tls").len(), 1, "{events:?}");
    let sids: Vec<_> = of_type(&events, "alert")
        .iter()
        .map(|a| a["alert"]["signature_id"].clone())
        .collect();
    assert!(sids.contains(&Value::from(32)), "{sids:?}");
    assert!(
        sids.contains(&Value::from(31)),
        "a tls rule matches inside the tunnel: {sids:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_pipelined_request_is_inspected() {
    // Three requests in one segment, three responses in one: a rule on the user agent fires
    // once per request, as Suricata's does per transaction, and each alert shows its own.
    let dir = scratch("pipelined");
    let mut s = TcpSession::new(CLIENT, 40003, SERVER, 80);
    let mut frames = s.handshake();
    let reqs: String = (1..=3)
        .map(|i| {
            format!(
                "GET /p{i} HTTP/1.1\r\nHost: h.example\r\nUser-Agent: precinct-pipeline/1\r\n\r\n"
            )
        })
        .collect();
    frames.extend(s.client_data(reqs.as_bytes(), 1400));
    frames.push(s.server_ack());
    let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    frames.extend(s.server_data(resp.repeat(3).as_bytes(), 1400));
    frames.push(s.client_ack());
    frames.extend(s.close());
    let events = replay_with_rules(
        &dir,
        "p",
        &frames,
        "alert http any any -> any any (msg:\"ua\"; http.user_agent; content:\"precinct-pipeline\"; sid:41;)\n",
    );
    assert_eq!(of_type(&events, "http").len(), 3);
    let alerts = of_type(&events, "alert");
    assert_eq!(alerts.len(), 3, "one alert per request: {alerts:?}");
    let urls: Vec<&Value> = alerts.iter().map(|a| &a["http"]["url"]).collect();
    assert_eq!(
        urls,
        ["/p1", "/p2", "/p3"],
        "each alert shows its own request"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_alert_carries_its_transaction_as_it_stands_after_the_packet() {
    // The response is acknowledged by the packet that releases the request to inspection: the
    // alert on the request shows the whole exchange (status, redirect), as Suricata's does,
    // not the request as it stood before the packet.
    let dir = scratch("tx-after-packet");
    let mut s = TcpSession::new(CLIENT, 40004, SERVER, 80);
    let mut frames = s.handshake();
    let req = "GET / HTTP/1.1\r\nHost: moved.example\r\nUser-Agent: curl/8.0\r\n\r\n";
    frames.extend(s.client_data(req.as_bytes(), 1400));
    let resp = "HTTP/1.1 301 Moved Permanently\r\nLocation: https://moved.example/\r\nContent-Length: 0\r\n\r\n";
    frames.extend(s.server_data(resp.as_bytes(), 1400));
    frames.push(s.client_ack());
    frames.extend(s.close());
    let events = replay_with_rules(
        &dir,
        "o",
        &frames,
        "alert http any any -> any any (msg:\"ua\"; http.user_agent; content:\"curl/\"; sid:42;)\n",
    );
    let ours = of_type(&events, "alert");
    assert_eq!(ours.len(), 1, "{ours:?}");
    let http = &ours[0]["http"];
    assert_eq!(http["http_user_agent"], "curl/8.0");
    assert_eq!(http["status"], 301, "{http}");
    assert_eq!(http["redirect"], "https://moved.example/");
    let theirs = suricata_alert_records(&dir);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(*http, theirs[0]["http"], "the same object as Suricata's");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stream_size_counts_each_sides_sequence_space() {
    // Suricata's stream_size: next expected sequence number less the initial one, so the
    // SYN and the FIN count one each, and every in-order byte one.
    let dir = scratch("stream-size");
    let mut s = TcpSession::new(CLIENT, 40004, SERVER, 7777);
    let mut frames = s.handshake(); // 1 SYN, 2 SYN-ACK, 3 ACK
    frames.extend(s.client_data(b"hello", 1400)); // 4
    frames.push(s.server_ack()); // 5
    frames.extend(s.server_data(b"0123456789", 5)); // 6, 7
    frames.push(s.client_ack()); // 8
    frames.extend(s.close()); // 9 FIN, 10 FIN-ACK, 11 ACK
    let rules = "\
alert tcp any any -> any any (msg:\"server silent\"; flow:to_server; stream_size:server,<,2; sid:1;)
alert tcp any any -> any any (msg:\"client said hello\"; flow:to_client; stream_size:client,=,6; sid:2;)
alert tcp any any -> any any (msg:\"both spoke\"; stream_size:both,>,5; sid:3;)
alert tcp any any -> any any (msg:\"a side only began\"; stream_size:either,=,1; sid:4;)
alert tcp any any -> any any (msg:\"client at most\"; stream_size:client,<=,1; sid:5;)
alert udp any any -> any any (msg:\"not tcp\"; stream_size:either,>=,0; sid:6;)
";
    let mut frames_udp = frames.clone();
    frames_udp.push(udp_frame(CLIENT, 5000, SERVER, 5001, b"x"));
    let events = replay_with_rules(&dir, "s", &frames_udp, rules);
    let at = |sid: u64| -> Vec<u64> {
        of_type(&events, "alert")
            .iter()
            .filter(|a| a["alert"]["signature_id"] == sid)
            .map(|a| a["pcap_cnt"].as_u64().expect("pcap_cnt"))
            .collect()
    };
    assert_eq!(
        at(1),
        [1, 3, 4],
        "to the server while the server has sent nothing"
    );
    assert_eq!(
        at(2),
        [5, 6, 7],
        "to the client after hello, before the client's FIN"
    );
    assert_eq!(at(3), [6, 7, 8, 9, 10, 11], "once both sent data");
    assert_eq!(
        at(4),
        [1, 2, 3, 4, 5],
        "while one side has sent only its SYN"
    );
    assert_eq!(at(5), [1, 2, 3], "before the client's data");
    assert!(at(6).is_empty(), "no stream outside TCP");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn smtp_and_ftp_rules_match_on_the_flows_detected_as_such() {
    // `alert smtp` / `alert ftp` payload rules: on the SMTP session (told by the client's
    // EHLO) and the FTP one (told by USER), not on the same bytes in a flow of no protocol.
    let dir = scratch("smtp-ftp");
    let mut frames = Vec::new();
    let mut smtp = TcpSession::new(CLIENT, 40005, SERVER, 25);
    frames.extend(smtp.handshake());
    frames.extend(smtp.server_data(b"220 mx.example ESMTP\r\n", 1400));
    frames.push(smtp.client_ack());
    frames.extend(smtp.client_data(b"EHLO client.example\r\n", 1400));
    frames.push(smtp.server_ack());
    frames.extend(smtp.server_data(b"250 mx.example\r\n", 1400));
    frames.extend(smtp.client_data(b"MAIL FROM:<x-precinct@example.org>\r\n", 1400));
    frames.push(smtp.server_ack());
    frames.extend(smtp.close());
    let mut ftp = TcpSession::new(CLIENT, 40006, SERVER, 21);
    frames.extend(ftp.handshake());
    frames.extend(ftp.server_data(b"220 ftp.example ready\r\n", 1400));
    frames.extend(ftp.client_data(b"USER anonymous\r\n", 1400));
    frames.push(ftp.server_ack());
    frames.extend(ftp.server_data(b"331 password\r\n", 1400));
    frames.extend(ftp.client_data(b"SITE EXEC x-precinct\r\n", 1400));
    frames.push(ftp.server_ack());
    frames.extend(ftp.close());
    let mut other = TcpSession::new(CLIENT, 40007, SERVER, 7777);
    frames.extend(other.handshake());
    frames.extend(other.client_data(
        b"MAIL FROM:<x-precinct@example.org> SITE EXEC x-precinct\r\n",
        1400,
    ));
    frames.push(other.server_ack());
    frames.extend(other.close());
    let rules = "\
alert smtp any any -> any any (msg:\"smtp sender\"; flow:to_server; content:\"MAIL FROM:<x-precinct\"; sid:51;)
alert ftp any any -> any any (msg:\"ftp site exec\"; flow:to_server; content:\"SITE EXEC\"; sid:52;)
";
    let events = replay_with_rules(&dir, "m", &frames, rules);
    let alerts: Vec<(u64, u64)> = of_type(&events, "alert")
        .iter()
        .map(|a| {
            (
                a["alert"]["signature_id"].as_u64().expect("sid"),
                a["src_port"].as_u64().expect("port"),
            )
        })
        .collect();
    assert_eq!(alerts, [(51, 40005), (52, 40006)], "{alerts:?}");
    let apps: Vec<&Value> = of_type(&events, "flow")
        .iter()
        .map(|f| &f["app_proto"])
        .collect();
    assert!(
        apps.contains(&&Value::from("smtp")) && apps.contains(&&Value::from("ftp")),
        "{apps:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dns_opcode_rules_alert_as_suricatas_do() {
    use tests::mixed::{dns_answer, dns_query};
    // Queries and answers with opcodes 0 (query), 2 (status), 4 (notify) and 5 (update), the
    // opcode in bits 11-14 of the flags; Suricata 7 (installed by `cargo xtask setup`) runs
    // the same rules on the same capture.
    let dir = scratch("dns-opcode");
    let resolver = [192, 0, 2, 53];
    let with_opcode = |mut m: Vec<u8>, op: u8| {
        m[2] = (m[2] & 0x87) | (op << 3);
        m
    };
    let mut frames = Vec::new();
    for (i, op) in [0u8, 2, 4, 5].into_iter().enumerate() {
        let (id, port) = (0x5000 + i as u16, 41_000 + i as u16);
        let name = "portal.example.gov";
        frames.push(udp_frame(
            CLIENT,
            port,
            resolver,
            53,
            &with_opcode(dns_query(id, name), op),
        ));
        let answer = with_opcode(dns_answer(id, name, [198, 51, 100, 7]), op);
        frames.push(udp_frame(resolver, 53, CLIENT, port, &answer));
    }
    let rules = "\
alert dns any any -> any any (msg:\"notify\"; dns.opcode:4; sid:61;)
alert dns any any -> any any (msg:\"not a query\"; dns.opcode:!0; flow:to_server; sid:62;)
alert dns any any -> any any (msg:\"status answer\"; dns.opcode:2; flow:to_client; sid:63;)
alert dns any any -> any any (msg:\"update of the portal\"; dns.opcode:5; dns.query; content:\"portal\"; sid:64;)
";
    let ours = replay_with_rules(&dir, "o", &frames, rules);
    let got = alerts_by_client_port(&of_type(&ours, "alert"), 53);
    // By the client's port: 41000 opcode 0, 41001 status, 41002 notify, 41003 update.
    assert_eq!(
        got,
        [
            (61, 41002),
            (61, 41002),
            (62, 41001),
            (62, 41002),
            (62, 41003),
            (63, 41001),
            (64, 41003)
        ]
    );
    assert_eq!(
        got,
        suricata_alerts(&dir, 53),
        "the same alerts as Suricata"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn backtracking_over_contents_and_pcre_alerts_as_suricatas_does() {
    // One UDP datagram per payload, told apart by the client's port; Suricata 7 (installed by
    // `cargo xtask setup`) runs the same rules on the same capture. A relative pcre whose
    // first match leaves the next keyword unsatisfied tries its later matches; an anchored
    // one has one place to match; a content tries its later positions for a pcre after it.
    let dir = scratch("backtrack");
    let server = [192, 0, 2, 80];
    let payloads: [&[u8]; 5] = [
        b"abbxbbc",
        b"abbxbbx",
        b"xabbc",
        b"<s<a.l <b.l=",
        b"<s<a.l <b.l ",
    ];
    let frames: Vec<Vec<u8>> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| udp_frame(CLIENT, 42_000 + i as u16, server, 9999, p))
        .collect();
    let rules = "\
alert udp any any -> any 9999 (msg:\"pcre retried\"; content:\"a\"; pcre:\"/b+/R\"; content:\"c\"; within:1; sid:71;)
alert udp any any -> any 9999 (msg:\"anchored pcre\"; content:\"a\"; pcre:\"/^b+/R\"; content:\"c\"; within:1; sid:72;)
alert udp any any -> any 9999 (msg:\"contents retried\"; content:\"<s\"; content:\"<\"; distance:0; content:\".l\"; distance:0; pcre:\"/^=/R\"; sid:73;)
";
    let ours = replay_with_rules(&dir, "o", &frames, rules);
    let got = alerts_by_client_port(&of_type(&ours, "alert"), 9999);
    assert_eq!(got, [(71, 42000), (71, 42002), (72, 42002), (73, 42003)]);
    assert_eq!(
        got,
        suricata_alerts(&dir, 9999),
        "the same alerts as Suricata"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_explained() {
    let dir = scratch("bad");
    let missing = dir.join("missing.pcap");
    let (out, _) = replay(&missing, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pcap"), "{err}");

    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").expect("write");
    let (out, _) = replay(&junk, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("junk.pcap") && err.contains("not a pcap"),
        "{err}"
    );

    // A capture cut in the middle of its last packet: what came before is still processed.
    let good = dir.join("good.pcap");
    let frames = http_session();
    write_pcap(&good, &frames, 1_790_000_000, 1000).expect("write");
    let bytes = std::fs::read(&good).expect("read");
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).expect("write");
    let (out, events) = replay(&cut, &[]);
    assert!(!out.status.success(), "a damaged capture fails the command");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cut.pcap") && err.contains("damaged after packet"),
        "{err}"
    );
    assert_eq!(
        of_type(&events, "http").len(),
        1,
        "records before the damage are written"
    );
    assert_eq!(of_type(&events, "flow").len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// Every protocol in a capture of mixed conversations this project builds: the right number
/// of records of each kind, with the fields the conversations carried.
#[test]
fn mixed_traffic_gives_every_protocol_record() {
    use tests::mixed::{self, MixOptions};
    let dir = scratch("mixed");
    let cert = mixed::openssl_cert(&dir)
        .expect("openssl makes a certificate (cargo xtask setup installs it)");
    let opts = MixOptions {
        target_bytes: 300_000,
        cert_der: cert,
    };
    let pcap = dir.join("mixed.pcap");
    mixed::write(&pcap, &opts).expect("write");
    let rounds = {
        // Count the HTTP conversations the generator made: one per round.
        let frames = mixed::frames(&opts);
        frames
            .iter()
            .filter(|f| f.windows(13).any(|w| w == b"GET /ballot/s"))
            .count()
    };
    let (out, events) = replay(&pcap, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let http = of_type(&events, "http");
    assert_eq!(http.len(), rounds);
    assert!(http
        .iter()
        .all(|h| h["http"]["hostname"] == "results.example.gov" && h["http"]["status"] == 200));
    let dns = of_type(&events, "dns");
    assert_eq!(dns.len(), rounds * 4, "two queries and two answers a round");
    assert!(dns
        .iter()
        .any(|d| d["dns"]["type"] == "response" && d["dns"]["answers"][0]["rrtype"] == "A"));
    let tls = of_type(&events, "tls");
    assert_eq!(tls.len(), rounds);
    assert!(tls
        .iter()
        .all(|t| t["tls"]["sni"] == "vote.example.gov" && t["tls"]["version"] == "TLS 1.2"));
    assert!(
        tls[0]["tls"]["subject"]
            .as_str()
            .is_some_and(|s| s.contains("CN=vote.example.gov")),
        "{}",
        tls[0]
    );
    let ssh = of_type(&events, "ssh");
    assert_eq!(ssh.len(), rounds.div_ceil(4));
    assert_eq!(ssh[0]["ssh"]["client"]["software_version"], "OpenSSH_9.6");
    assert_eq!(ssh[0]["ssh"]["server"]["proto_version"], "2.0");
    let flows = of_type(&events, "flow");
    assert_eq!(
        flows.iter().filter(|f| f["app_proto"] == "tls").count(),
        rounds
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A DNS query split into IPv4 fragments, sent out of order: the datagram is rebuilt and
/// parsed; a datagram missing a fragment is not.
#[test]
fn fragmented_datagrams_are_reassembled() {
    use tests::packets::{eth, ipv4, udp, V4};
    let dir = scratch("frag");
    let query = tests::mixed::dns_query(0x1234, "fragmented.example.gov");
    let dgram = udp(40001, 53, &query);
    let frag = |offset: usize, more: bool, bytes: &[u8], id_tail: u8| {
        let mut h = V4::new(CLIENT, SERVER, 17);
        h.frag = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
        let mut pkt = ipv4(&h, bytes);
        pkt[5] = id_tail;
        eth(&[], 0x0800, &pkt)
    };
    let frames = vec![
        frag(16, false, &dgram[16..], 1),
        frag(0, true, &dgram[..16], 1),
        // A second datagram whose last fragment never comes.
        frag(0, true, &dgram[..16], 2),
    ];
    let pcap = dir.join("frag.pcap");
    write_pcap(&pcap, &frames, 1_790_000_000, 1000).expect("write");
    let (out, events) = replay(&pcap, &[]);
    assert!(out.status.success());
    let dns = of_type(&events, "dns");
    assert_eq!(dns.len(), 1, "{events:#?}");
    assert_eq!(
        dns[0]["dns"]["queries"][0]["rrname"],
        "fragmented.example.gov"
    );
    assert_eq!(dns[0]["pcap_cnt"], 2, "written when the datagram completed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fragments: 3 seen, 1 datagrams rebuilt"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `[alerts]` in the config adds the inspected payload and the triggering frame to alerts.
#[test]
fn alerts_carry_payload_and_packet_when_asked() {
    let dir = scratch("alertbytes");
    let pcap = dir.join("http.pcap");
    let frames = http_session();
    write_pcap(&pcap, &frames, 1_790_000_000, 1000).expect("write");
    let rules = dir.join("r.rules");
    std::fs::write(
        &rules,
        "alert tcp any any -> any 80 (msg:\"lookup in payload\"; flow:to_server; content:\"/voter/lookup\"; sid:10;)\n\
         alert http any any -> any any (msg:\"lookup in uri\"; http.uri; content:\"/voter/lookup\"; sid:11;)\n",
    )
    .expect("rules");
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        "[alerts]\npayload = true\npayload_printable = true\npacket = true\n",
    )
    .expect("config");
    let rules_s = rules.to_str().expect("path");
    let config_s = config.to_str().expect("path");
    let (out, events) = replay(&pcap, &["--rules", rules_s, "--config", config_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = of_type(&events, "alert");
    let pkt_alert = alerts
        .iter()
        .find(|a| a["alert"]["signature_id"] == 10)
        .expect("packet rule alerted");
    let printable = pkt_alert["payload_printable"]
        .as_str()
        .expect("payload_printable");
    assert!(printable.contains("/voter/lookup"), "{printable}");
    assert!(pkt_alert["payload"].as_str().is_some_and(|p| !p.is_empty()));
    assert_eq!(pkt_alert["packet_info"]["linktype"], 1);
    let packet = pkt_alert["packet"].as_str().expect("packet");
    assert!(
        packet.len() > printable.len(),
        "the frame holds the headers too"
    );
    assert!(alerts
        .iter()
        .any(|a| a["alert"]["signature_id"] == 11 && a["http"]["url"] == "/voter/lookup?id=7"));
    // Without the section, none of it.
    let (_, plain) = replay(&pcap, &["--rules", rules_s]);
    assert!(of_type(&plain, "alert")
        .iter()
        .all(|a| a.get("payload").is_none() && a.get("packet").is_none()));
    std::fs::remove_dir_all(&dir).ok();
}
