use super::*;

/// What an agent with one interface, a blocklist and an http output serves (abridged).
const FIRST: &str = r#"# HELP precinct_build_info Precinct build (value 1).
# TYPE precinct_build_info gauge
precinct_build_info{version="0.1.0"} 1
precinct_sensor_info{asset_role="voter-registration",organization="Example County",sensor_id="portal-1",tags="dmz,web"} 1
precinct_start_time_seconds 1000
precinct_programs_pinned 0
precinct_healthy 1
precinct_health_check_ok{check="attachment:eth0"} 1
precinct_xdp_attach_info{interface="eth0",mode="driver"} 1
precinct_packets_total{hook="ingress"} 1000
precinct_packets_total{hook="egress"} 500
precinct_bytes_total{hook="ingress"} 100000
precinct_bytes_total{hook="egress"} 50000
precinct_protocol_packets_total{hook="ingress",protocol="tcp"} 900
precinct_protocol_packets_total{hook="egress",protocol="tcp"} 450
precinct_protocol_packets_total{hook="ingress",protocol="udp"} 0
precinct_flows_active 12
precinct_flow_map_capacity 262144
precinct_flows_created_total{hook="ingress"} 40
precinct_flows_created_total{hook="egress"} 2
precinct_flows_expired_total{reason="timeout"} 30
precinct_inspect_records_total 80
precinct_eve_events_total{event_type="flow"} 30
precinct_eve_events_total{event_type="http"} 10
precinct_rules_loaded 24568
precinct_rules_skipped 259
precinct_rule_reloads_total{result="ok"} 1
precinct_rule_reloads_total{result="failed"} 0
precinct_rules_last_reload_successful 1
precinct_ringbuf_reserve_failures_total{hook="ingress"} 0
precinct_ringbuf_copy_failures_total{hook="ingress"} 0
precinct_inspect_queue_overflows_total 5
precinct_untracked_packets_total{hook="ingress"} 0
precinct_protect_mode_info{check="blocklist",mode="prevent"} 1
precinct_protect_mode_info{check="bogon",mode="monitor"} 1
precinct_protect_mode_info{check="egress_spoofed",mode="monitor"} 1
precinct_protect_mode_info{check="own_prefix_spoofed",mode="monitor"} 1
precinct_protect_mode_info{check="port_policy",mode="off"} 1
precinct_protect_mode_info{check="rate_limit",mode="prevent"} 1
precinct_protect_list_entries{list="tor"} 1200
precinct_protect_list_bad_lines{list="tor"} 2
precinct_protect_manual_entries 3
precinct_protect_list_packets_total{action="dropped",list="tor"} 10
precinct_protect_list_packets_total{action="would_drop",list="rfc6890"} 4
precinct_protect_packets_total{action="dropped",hook="ingress",reason="blocklist"} 10
precinct_protect_packets_total{action="would_drop",hook="ingress",reason="bogon"} 4
precinct_protect_packets_total{action="dropped",hook="egress",reason="bogon"} 0
precinct_protect_table_prefixes{family="ipv4"} 1100
precinct_protect_table_prefixes{family="ipv6"} 100
precinct_protect_table_updates_total{result="failed",trigger="reload"} 0
precinct_protect_drop_events_total{result="lost"} 0
precinct_output_events_total{output="siem",result="delivered"} 100
precinct_output_events_total{output="siem",result="dropped"} 0
precinct_output_events_total{output="siem",result="failed"} 0
precinct_output_queue_depth{output="siem"} 0
precinct_output_spool_events{output="siem"} 0
precinct_output_spool_bytes{output="siem"} 0
precinct_output_spool_lost_events_total{output="siem"} 0
precinct_output_last_success_timestamp_seconds{output="siem"} 0
"#;

/// Two seconds later.
fn second() -> String {
    FIRST
        .replace(
            "precinct_packets_total{hook=\"ingress\"} 1000",
            "precinct_packets_total{hook=\"ingress\"} 1200",
        )
        .replace(
            "precinct_bytes_total{hook=\"ingress\"} 100000",
            "precinct_bytes_total{hook=\"ingress\"} 3100000",
        )
        .replace(
            "hook=\"ingress\",protocol=\"tcp\"} 900",
            "hook=\"ingress\",protocol=\"tcp\"} 1100",
        )
        .replace(
            "{event_type=\"http\"} 10",
            "{event_type=\"http\"} 14\nprecinct_eve_events_total{event_type=\"alert\"} 2",
        )
        .replace(
            "{action=\"dropped\",list=\"tor\"} 10",
            "{action=\"dropped\",list=\"tor\"} 16",
        )
        .replace(
            "hook=\"ingress\",reason=\"blocklist\"} 10",
            "hook=\"ingress\",reason=\"blocklist\"} 16",
        )
        .replace(
            "{output=\"siem\",result=\"delivered\"} 100",
            "{output=\"siem\",result=\"delivered\"} 120",
        )
        .replace(
            "{output=\"siem\",result=\"dropped\"} 0",
            "{output=\"siem\",result=\"dropped\"} 7",
        )
        .replace(
            "precinct_health_check_ok{check=\"attachment:eth0\"} 1",
            "precinct_health_check_ok{check=\"attachment:eth0\"} 0",
        )
}

fn status() -> Status {
    let first = Scrape::parse(FIRST);
    let second = Scrape::parse(&second());
    Status::from_scrapes(
        "127.0.0.1:9727",
        &first,
        &second,
        2.0,
        (
            503,
            "unhealthy\nattachment:eth0: interface eth0 (ifindex 2) is gone\n",
        ),
    )
}

#[test]
fn model_from_two_scrapes() {
    let st = status();
    assert_eq!(st.version.as_deref(), Some("0.1.0"));
    assert_eq!(st.sensor["sensor_id"], "portal-1");
    assert!(!st.healthy);
    assert_eq!(
        st.problems,
        ["attachment:eth0: interface eth0 (ifindex 2) is gone"]
    );
    assert_eq!(st.programs_pinned, Some(false));
    assert_eq!(
        st.interfaces,
        [Interface {
            name: "eth0".into(),
            xdp_mode: "driver".into(),
            attached: Some(false),
        }]
    );
    assert_eq!(st.traffic[0].packets.per_second, 100.0);
    assert_eq!(st.traffic[0].bytes.per_second, 1_500_000.0);
    assert_eq!(st.traffic[1].packets.per_second, 0.0);
    assert_eq!(st.protocols["tcp"].total, 1550.0);
    assert_eq!(st.flows.created.total, 42.0);
    assert_eq!(st.events["http"].per_second, 2.0);
    assert_eq!(st.events["alert"].total, 2.0);
    assert_eq!(st.rules.loaded, 24568.0);
    assert_eq!(st.rules.last_reload_successful, Some(true));
    let p = st.protection.as_ref().expect("protection");
    assert_eq!(p.modes["blocklist"], "prevent");
    let tor = p.lists.iter().find(|l| l.name == "tor").expect("tor");
    assert_eq!((tor.entries, tor.bad_lines), (Some(1200.0), Some(2.0)));
    assert_eq!(tor.dropped.per_second, 3.0);
    assert!(p.lists.iter().any(|l| l.name == "rfc6890"));
    assert_eq!(p.drops.len(), 2, "{:?}", p.drops);
    assert_eq!(st.outputs.len(), 1);
    assert_eq!(st.outputs[0].delivered.per_second, 10.0);
    assert_eq!(st.outputs[0].seconds_since_delivery, None);
    let lossy: Vec<&str> = st
        .losses
        .iter()
        .filter(|l| l.count.total > 0.0)
        .map(|l| l.what.as_str())
        .collect();
    assert_eq!(
        lossy,
        [
            "flow heads: inspection queue full",
            "output siem: dropped (queue full)"
        ]
    );
}

#[test]
fn screen_shows_every_part() {
    let text = render(&status());
    println!("{text}");
    for want in [
        "Precinct 0.1.0 · sensor portal-1 · Example County · voter-registration · tags dmz,web",
        "health       FAILING",
        "  attachment:eth0: interface eth0 (ifindex 2) is gone",
        "  eth0           driver     no",
        "  ingress           100     1.5 MB/s         1200       3.1 MB",
        "  protocols  tcp 100/s",
        "flows        12 active of 262.1k · 0/s created · 0/s ended",
        "events       alert 1/s (2) · flow 0/s (30) · http 2/s (14)",
        "rules        24.6k loaded · 259 skipped · reloads 1 ok, 0 failed · last load ok",
        "PROTECTION   blocklist prevent · bogon monitor · egress_spoofed monitor",
        "             own_prefix_spoofed monitor · port_policy off · rate_limit prevent",
        "  tor                   1200          2           3             0         16           0",
        "  drops      blocklist dropped 3/s (16) · bogon would_drop 0/s (4)",
        "  siem",
        "  flow heads: inspection queue full                     5            0",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(want)),
            "missing {want:?} in\n{text}"
        );
    }
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
}

#[test]
fn json_is_the_model() {
    let v = serde_json::to_value(status()).expect("serializes");
    assert_eq!(v["traffic"][0]["hook"], "ingress");
    assert_eq!(v["outputs"][0]["name"], "siem");
    assert_eq!(v["healthy"], false);
}

#[test]
fn healthy_agent_without_protection_or_outputs() {
    let text =
        "precinct_build_info{version=\"0.1.0\"} 1\nprecinct_packets_total{hook=\"ingress\"} 5\n";
    let s = Scrape::parse(text);
    let st = Status::from_scrapes("127.0.0.1:9727", &s, &s, 1.0, (200, "ok\n"));
    assert!(st.healthy && st.problems.is_empty());
    assert!(st.protection.is_none() && st.outputs.is_empty());
    let screen = render(&st);
    assert!(screen.contains("health       OK"), "{screen}");
    assert!(screen.contains("LOSSES       none"), "{screen}");
    assert!(screen.contains("(no identity)"), "{screen}");
}

#[test]
fn addresses() {
    assert_eq!(address(None, None).expect("default"), DEFAULT_ADDRESS);
    assert_eq!(
        address(Some("10.0.0.1:1"), None).expect("flag"),
        "10.0.0.1:1"
    );
    let mut cfg = crate::config::Config::default();
    cfg.metrics.listen = "0.0.0.0:9100".into();
    assert_eq!(address(None, Some(&cfg)).expect("config"), "127.0.0.1:9100");
    cfg.metrics.listen = "[::]:9100".into();
    assert_eq!(address(None, Some(&cfg)).expect("config"), "[::1]:9100");
    cfg.metrics.enabled = false;
    assert!(address(None, Some(&cfg)).is_err());
}

#[test]
fn unreachable_agent_says_what_to_check() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let e = collect(&format!("127.0.0.1:{port}"), Duration::ZERO).expect_err("refused");
    assert!(
        format!("{e:#}").contains("is `precinct run` running"),
        "{e:#}"
    );
}

#[test]
fn collects_from_a_served_page() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for (i, stream) in listener.incoming().take(3).enumerate() {
            let mut stream = stream.expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = if i < 2 {
                format!("precinct_packets_total{{hook=\"ingress\"}} {}\n", 10 * i)
            } else {
                "ok\n".to_string()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let st = collect(&addr, Duration::from_millis(100)).expect("collects");
    server.join().expect("server");
    assert!(st.healthy);
    assert_eq!(st.traffic[0].packets.total, 10.0);
    assert!(st.traffic[0].packets.per_second > 0.0);
}
