//! Namespace lab: the real agent attached to the portal end of a veth pair, real traffic from
//! the client namespace (ping, UDP over IPv4 and IPv6, a TCP connection with data), and exact
//! per-direction counts checked in the EVE flow records and in `/metrics`.

use std::time::Duration;

use serde_json::Value;
use tests::{
    agent::Agent,
    lab::{Lab, CLIENT_V4, CLIENT_V6, PORTAL_V4, PORTAL_V6},
    require_root,
    traffic::{CLIENT, SERVER},
};

/// Interface counters and the agent's metrics at one instant: retried until no packet
/// crossed the veth while they were read (the lab's own IPv6 chatter can come at any time).
fn snapshot(lab: &Lab, agent: &Agent) -> ([u64; 4], [u64; 4], tests::agent::Metrics) {
    for _ in 0..50 {
        let portal = lab.portal_stats().expect("stats");
        let client = lab.client_stats().expect("stats");
        let metrics = agent.metrics();
        if portal == lab.portal_stats().expect("stats")
            && client == lab.client_stats().expect("stats")
        {
            return (portal, client, metrics);
        }
    }
    panic!("the lab never went quiet for long enough to take a snapshot");
}

fn find<'a>(events: &'a [Value], pred: impl Fn(&Value) -> bool, what: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| pred(e)).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one flow record for {what}: {events:#?}"
    );
    found[0]
}

fn counts(e: &Value) -> [u64; 4] {
    let f = &e["flow"];
    [
        "pkts_toserver",
        "pkts_toclient",
        "bytes_toserver",
        "bytes_toclient",
    ]
    .map(|k| f[k].as_u64().unwrap_or_else(|| panic!("flow.{k} in {e}")))
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn lab_traffic_is_counted_exactly() {
    require_root("lab_traffic_is_counted_exactly");
    let lab = Lab::create("flw").expect("create the lab");
    let dir = std::env::temp_dir().join(format!("precinct-lab-flows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut agent = Agent::start(&lab, &dir, &["--xdp-mode", "auto"]);

    let mut server = lab
        .spawn(
            &lab.portal_ns,
            &["python3", "-c", SERVER, "3", PORTAL_V4, PORTAL_V6],
        )
        .expect("server");
    {
        use std::io::BufRead as _;
        let mut line = String::new();
        std::io::BufReader::new(server.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("server ready");
        assert_eq!(line.trim(), "ready");
    }
    // Let anything the interface sent on its own settle before the baseline.
    std::thread::sleep(Duration::from_millis(500));
    let (before_stats, before_client, before) = snapshot(&lab, &agent);

    lab.exec(
        &lab.client_ns,
        &["ping", "-c", "4", "-i", "0.05", "-s", "56", PORTAL_V4],
    )
    .expect("ping");
    let out = lab
        .exec(
            &lab.client_ns,
            &["python3", "-c", CLIENT, PORTAL_V4, PORTAL_V6],
        )
        .expect("client");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    // Two sweeps, so the metrics include everything.
    std::thread::sleep(Duration::from_millis(2500));
    let (after_stats, after_client, after) = snapshot(&lab, &agent);
    let _ = server.kill();
    let _ = server.wait();

    let delta = |series: &str| after.value(series) - before.value(series);
    let [rx_p, _, tx_p, tx_b] = [0, 1, 2, 3].map(|i| after_stats[i] - before_stats[i]);
    let [_, _, client_tx_p, client_tx_b] = [0, 1, 2, 3].map(|i| after_client[i] - before_client[i]);
    assert_eq!(client_tx_p, rx_p, "nothing lost on the veth");
    // veth byte counters with XDP attached leave out the 14-byte Ethernet header, which the
    // sensor counts (whole frames, as on the wire); per-flow bytes below are checked exactly
    // against the frame sizes of the traffic sent.
    let rx_b = client_tx_b + 14 * rx_p;
    assert_eq!(
        delta("precinct_packets_total{hook=\"ingress\"}"),
        rx_p,
        "ingress packets = veth rx"
    );
    assert_eq!(
        delta("precinct_bytes_total{hook=\"ingress\"}"),
        rx_b,
        "ingress bytes = veth rx"
    );
    assert_eq!(
        delta("precinct_packets_total{hook=\"egress\"}"),
        tx_p,
        "egress packets = veth tx"
    );
    assert_eq!(
        delta("precinct_bytes_total{hook=\"egress\"}"),
        tx_b,
        "egress bytes = veth tx"
    );
    assert_eq!(
        delta("precinct_protocol_packets_total{hook=\"ingress\",protocol=\"icmp\"}"),
        4,
        "4 echo requests in"
    );
    assert_eq!(
        delta("precinct_protocol_packets_total{hook=\"egress\",protocol=\"icmp\"}"),
        4,
        "4 echo replies out"
    );
    assert_eq!(
        delta("precinct_protocol_packets_total{hook=\"ingress\",protocol=\"udp\"}"),
        7
    );
    assert_eq!(
        delta("precinct_protocol_packets_total{hook=\"egress\",protocol=\"udp\"}"),
        5
    );
    assert_eq!(
        delta("precinct_parse_outcomes_total{hook=\"ingress\",outcome=\"ok\"}"),
        rx_p
    );
    assert!(after.0.contains(&format!(
        "precinct_xdp_attach_info{{interface=\"{}\"",
        lab.portal_if
    )));
    assert_eq!(
        after.value("precinct_untracked_packets_total{hook=\"ingress\"}"),
        0
    );

    let stderr = agent.stop();
    let events = agent.events();
    assert!(
        events.iter().all(|e| e["event_type"] == "flow"),
        "only flow records: {events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["flow"]["reason"] == "shutdown" || e["flow"]["reason"] == "timeout"),
        "{stderr}"
    );

    let icmp = find(
        &events,
        |e| e["proto"] == "ICMP" && e["src_ip"] == CLIENT_V4,
        "ping",
    );
    assert_eq!(counts(icmp), [4, 4, 4 * 98, 4 * 98]);
    assert_eq!(icmp["dest_ip"], PORTAL_V4);
    assert_eq!(
        (
            icmp["icmp_type"].as_u64(),
            icmp["response_icmp_type"].as_u64()
        ),
        (Some(8), Some(0))
    );
    assert_eq!(icmp["flow"]["state"], "established");
    assert_eq!(icmp["in_iface"], lab.portal_if.as_str());

    let udp = find(
        &events,
        |e| e["proto"] == "UDP" && e["src_port"] == 40001,
        "UDP over IPv4",
    );
    assert_eq!(
        (
            udp["src_ip"].as_str(),
            udp["dest_ip"].as_str(),
            udp["dest_port"].as_u64()
        ),
        (Some(CLIENT_V4), Some(PORTAL_V4), Some(9999))
    );
    assert_eq!(
        counts(udp),
        [5, 3, 5 * (14 + 20 + 8 + 100), 3 * (14 + 20 + 8 + 200)]
    );

    let udp6 = find(
        &events,
        |e| e["proto"] == "UDP" && e["src_port"] == 40002,
        "UDP over IPv6",
    );
    assert_eq!(
        (udp6["src_ip"].as_str(), udp6["dest_ip"].as_str()),
        (Some(CLIENT_V6), Some(PORTAL_V6))
    );
    assert_eq!(
        counts(udp6),
        [2, 2, 2 * (14 + 40 + 8 + 10), 2 * (14 + 40 + 8 + 200)]
    );

    let tcp = find(
        &events,
        |e| e["proto"] == "TCP" && e["dest_port"] == 8080,
        "TCP",
    );
    assert_eq!(tcp["src_ip"], CLIENT_V4);
    let [ps, pc, bs, bc] = counts(tcp);
    assert!(
        ps >= 3 && pc >= 3,
        "handshake, data and close each way: {tcp}"
    );
    // Payload plus at least 54 bytes of headers (Ethernet, IPv4, TCP) per packet.
    assert!(bs >= 1000 + 54 * ps && bc >= 2000 + 54 * pc, "{tcp}");
    for flag in ["syn", "fin", "ack", "psh"] {
        assert_eq!(tcp["tcp"][flag], true, "{flag} in {tcp}");
    }
    assert_eq!(
        tcp["tcp"]["tcp_flags_ts"]
            .as_str()
            .map(|f| u8::from_str_radix(f, 16).expect("hex") & 0x02),
        Some(0x02)
    );
    assert_eq!(tcp["flow"]["state"], "closed");
    for e in [icmp, udp, udp6, tcp] {
        assert!(
            e["community_id"]
                .as_str()
                .is_some_and(|c| c.starts_with("1:")),
            "{e}"
        );
        assert!(e["flow_id"].as_u64().is_some(), "{e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Generic (skb) XDP mode, forced, and short timeouts from a config file: the idle ping flow is
/// reported by the sweeper with reason `timeout` while the agent runs, and leaves the map; an
/// unanswered datagram's flow, never confirmed, is reported from the pending table, once, and
/// one still pending at the stop is reported then.
#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn generic_mode_and_idle_timeouts() {
    require_root("generic_mode_and_idle_timeouts");
    let lab = Lab::create("gen").expect("create the lab");
    let dir = std::env::temp_dir().join(format!("precinct-lab-generic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("precinct.toml");
    std::fs::write(
        &config,
        "xdp_mode = \"generic\"\n[flows]\nsweep_interval_ms = 200\n[flows.timeouts]\nnew_secs = 1\nudp_established_secs = 1\nicmp_established_secs = 1\n",
    )
    .expect("write config");
    let mut agent = Agent::start(&lab, &dir, &["--config", config.to_str().expect("path")]);
    let m = agent.metrics();
    assert!(
        m.0.contains(&format!(
            "precinct_xdp_attach_info{{interface=\"{}\",mode=\"generic\"}} 1",
            lab.portal_if
        )),
        "{}",
        m.0
    );
    lab.exec(
        &lab.client_ns,
        &["ping", "-c", "3", "-i", "0.05", PORTAL_V4],
    )
    .expect("ping");
    // One datagram nobody answers: the flow stays unconfirmed, in the pending table (on by
    // default), and its record comes from there.
    let datagram = |sport: &str| {
        lab.exec(
            &lab.client_ns,
            &[
                "hping3", "-q", "-2", "-c", "1", "-s", sport, "-k", "-p", "9999", PORTAL_V4,
            ],
        )
        .ok();
    };
    datagram("41000");
    // Idle for 1 s, then a sweep within 200 ms.
    std::thread::sleep(Duration::from_millis(2500));
    let during = agent.events();
    let icmp = find(
        &during,
        |e| e["proto"] == "ICMP" && e["icmp_type"] == 8,
        "the ping, expired while running",
    );
    assert_eq!(icmp["flow"]["reason"], "timeout");
    assert_eq!(counts(icmp), [3, 3, 3 * 98, 3 * 98]);
    let unanswered = |events: &[Value], sport: u64| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["dest_port"] == 9999 && e["src_port"] == sport)
            .cloned()
            .collect()
    };
    let lone = unanswered(&during, 41000);
    assert_eq!(
        lone.len(),
        1,
        "the unconfirmed flow, expired while running: {during:#?}"
    );
    assert_eq!(lone[0]["flow"]["reason"], "timeout");
    assert_eq!(lone[0]["flow"]["state"], "new");
    assert_eq!(counts(&lone[0])[..2], [1, 0]);
    let m = agent.metrics();
    assert!(m.value("precinct_flows_expired_total{reason=\"timeout\"}") >= 2);
    assert!(m.value("precinct_pending_flow_records_total") >= 1);
    assert_eq!(
        m.value("precinct_flows_created_total{hook=\"ingress\"}")
            + m.value("precinct_flows_created_total{hook=\"egress\"}"),
        m.value("precinct_pending_flows_total{event=\"promoted\",hook=\"ingress\"}")
            + m.value("precinct_pending_flows_total{event=\"promoted\",hook=\"egress\"}"),
        "every flow in the flow map came through the pending table"
    );
    // Another, still pending when the agent stops: reported at shutdown.
    datagram("41001");
    std::thread::sleep(Duration::from_millis(300));
    agent.stop();
    let after = agent.events();
    assert_eq!(
        after
            .iter()
            .filter(|e| e["proto"] == "ICMP" && e["icmp_type"] == 8)
            .count(),
        1,
        "an expired flow is not reported again at shutdown"
    );
    assert_eq!(
        unanswered(&after, 41000).len(),
        1,
        "nor an expired unconfirmed one"
    );
    let last = unanswered(&after, 41001);
    assert_eq!(last.len(), 1, "{after:#?}");
    assert_eq!(last[0]["flow"]["reason"], "shutdown");
    std::fs::remove_dir_all(&dir).ok();
}
