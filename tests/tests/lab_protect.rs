//! Namespace lab for the in-kernel protection: the real agent on the portal end of a veth
//! pair, real tools in the client namespace. A blocked client is dropped in prevent mode and
//! only counted in monitor mode; crafted spoofed sources are dropped at ingress and egress;
//! nmap and hping3 trip the port policy and the rate limits while the open port and the
//! portal's own outbound connections keep working; list reloads and manual blocks under
//! continuous allowed traffic lose no allowed packet; SIGKILL leaves traffic flowing.

use std::{path::Path, time::Duration};

use serde_json::Value;
use tests::{
    agent::{Agent, Metrics},
    lab::{Lab, CLIENT_V4, PORTAL_V4},
    require_root,
    traffic::ping_summary,
};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pct-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("precinct.toml");
    std::fs::write(&path, text).expect("write config");
    path.to_str().expect("UTF-8").to_string()
}

/// `true` when `count` pings from the client to the portal all come back.
fn ping_ok(lab: &Lab, count: u32) -> bool {
    let n = count.to_string();
    lab.exec(
        &lab.client_ns,
        &["ping", "-q", "-c", &n, "-i", "0.05", "-W", "1", PORTAL_V4],
    )
    .is_ok()
}

fn protect_count(m: &Metrics, hook: &str, reason: &str, action: &str) -> u64 {
    m.value(&format!(
        "precinct_protect_packets_total{{action=\"{action}\",hook=\"{hook}\",reason=\"{reason}\"}}"
    ))
}

fn drop_events(agent: &Agent) -> Vec<Value> {
    agent
        .events()
        .into_iter()
        .filter(|e| e["event_type"] == "drop")
        .collect()
}

/// Waits (up to 5 s) for the metric to reach `min`.
fn wait_for(agent: &Agent, what: impl Fn(&Metrics) -> u64, min: u64) -> u64 {
    let mut v = 0;
    for _ in 0..50 {
        v = what(&agent.metrics());
        if v >= min {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    v
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn blocked_client_is_counted_in_monitor_and_dropped_in_prevent() {
    require_root("blocked_client_is_counted_in_monitor_and_dropped_in_prevent");
    let lab = Lab::create("blk").expect("create the lab");
    let dir = temp_dir("blk");
    let list = dir.join("drop.txt");
    std::fs::write(
        &list,
        format!(
            "; Spamhaus DROP List (lab copy)\n{CLIENT_V4}/32 ; SBL000001\nnot-an-address ; SBL2\n"
        ),
    )
    .expect("list");
    let config = write_config(
        &dir,
        &format!(
            "[sensor]\nid = \"lab-portal-1\"\norganization = \"Test County\"\nasset_role = \"voter-registration-portal\"\ntags = [\"county:test\", \"state:xx\"]\n\n[protect]\ndrop_events_per_second = 1000\n[[protect.lists]]\nname = \"spamhaus-drop\"\nfile = {:?}\nformat = \"spamhaus\"\n",
            list.to_str().expect("UTF-8")
        ),
    );
    for mode in ["monitor", "prevent"] {
        let run_dir = dir.join(mode);
        std::fs::create_dir_all(&run_dir).expect("run dir");
        let mut agent = Agent::start(&lab, &run_dir, &["--config", &config, "--mode", mode]);
        let passed = ping_ok(&lab, 5);
        let m = agent.metrics();
        assert_eq!(
            m.value("precinct_protect_list_entries{list=\"spamhaus-drop\"}"),
            1
        );
        assert_eq!(
            m.value("precinct_protect_list_bad_lines{list=\"spamhaus-drop\"}"),
            1
        );
        let action = if mode == "prevent" {
            "dropped"
        } else {
            "would_drop"
        };
        let hits = wait_for(
            &agent,
            |m| protect_count(m, "ingress", "blocklist", action),
            5,
        );
        assert!(hits >= 5, "{mode}: blocklist {action} = {hits}");
        assert!(
            wait_for(
                &agent,
                |m| {
                    m.value(&format!(
                    "precinct_protect_list_packets_total{{action=\"{action}\",list=\"spamhaus-drop\"}}"
                ))
                },
                5
            ) >= 5
        );
        let stderr = agent.stop();
        assert!(
            stderr.contains("drop.txt:3"),
            "the bad line is reported with file and line: {stderr}"
        );
        // Every record says which sensor, organisation and asset it comes from.
        for e in agent.events() {
            assert_eq!(e["host"], "lab-portal-1", "{e}");
            assert_eq!(e["precinct"]["organization"], "Test County", "{e}");
            assert_eq!(e["precinct"]["asset_role"], "voter-registration-portal");
            assert_eq!(e["precinct"]["tags"][0], "county:test");
        }
        assert_eq!(
            m.value("precinct_sensor_info{asset_role=\"voter-registration-portal\",organization=\"Test County\",sensor_id=\"lab-portal-1\",tags=\"county:test,state:xx\"}"),
            1
        );
        let events = drop_events(&agent);
        let e = events
            .iter()
            .find(|e| e["drop"]["reason"] == "blocklist")
            .unwrap_or_else(|| panic!("{mode}: a blocklist drop event in {events:#?}"));
        assert_eq!(e["src_ip"], CLIENT_V4);
        assert_eq!(e["proto"], "ICMP");
        assert_eq!(e["drop"]["list"], "spamhaus-drop");
        assert_eq!(e["drop"]["mode"], mode);
        if mode == "prevent" {
            assert!(
                !passed,
                "pings from a blocked client must not pass in prevent mode"
            );
        } else {
            assert!(passed, "monitor mode must not drop");
        }
    }
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn spoofed_sources_are_dropped_at_ingress_and_egress() {
    require_root("spoofed_sources_are_dropped_at_ingress_and_egress");
    let lab = Lab::create("spf").expect("create the lab");
    let dir = temp_dir("spf");
    let config = write_config(
        &dir,
        "[protect]\nmode = \"prevent\"\nown_prefixes = [\"198.18.5.0/24\"]\n",
    );
    let mut agent = Agent::start(&lab, &dir, &["--config", &config]);
    assert!(
        ping_ok(&lab, 3),
        "the real client is neither bogon nor spoofed"
    );
    // TEST-NET-3 is RFC 6890 space; the portal's own address must not come from outside.
    for (src, reason) in [("203.0.113.9", "bogon"), (PORTAL_V4, "own_prefix_spoofed")] {
        lab.exec(
            &lab.client_ns,
            &[
                "hping3", "-q", "-c", "20", "-i", "u2000", "-S", "-p", "80", "-a", src, PORTAL_V4,
            ],
        )
        .ok();
        let n = wait_for(
            &agent,
            |m| protect_count(m, "ingress", reason, "dropped"),
            20,
        );
        assert!(n >= 20, "{reason}: {n} dropped");
    }
    // The portal itself sending from an address that is not its own.
    lab.exec(
        &lab.portal_ns,
        &[
            "hping3",
            "-q",
            "-c",
            "10",
            "-i",
            "u2000",
            "-2",
            "-p",
            "53",
            "-a",
            "198.51.100.7",
            CLIENT_V4,
        ],
    )
    .ok();
    let n = wait_for(
        &agent,
        |m| protect_count(m, "egress", "egress_spoofed", "dropped"),
        10,
    );
    assert!(n >= 10, "egress_spoofed: {n} dropped");
    // A prefix the config declares the host's own: the host may send from it, and nobody
    // outside may claim it.
    lab.exec(
        &lab.portal_ns,
        &[
            "hping3",
            "-q",
            "-c",
            "5",
            "-i",
            "u2000",
            "-2",
            "-p",
            "53",
            "-a",
            "198.18.5.9",
            CLIENT_V4,
        ],
    )
    .ok();
    let m = agent.metrics();
    assert_eq!(protect_count(&m, "egress", "egress_spoofed", "dropped"), n);
    let before = protect_count(&m, "ingress", "own_prefix_spoofed", "dropped");
    lab.exec(
        &lab.client_ns,
        &[
            "hping3",
            "-q",
            "-c",
            "5",
            "-i",
            "u2000",
            "-S",
            "-p",
            "80",
            "-a",
            "198.18.5.9",
            PORTAL_V4,
        ],
    )
    .ok();
    let own = wait_for(
        &agent,
        |m| protect_count(m, "ingress", "own_prefix_spoofed", "dropped"),
        before + 5,
    );
    assert!(
        own >= before + 5,
        "a configured own prefix from outside: {own}"
    );
    // An address added while the agent runs becomes the host's own at once: the agent
    // follows rtnetlink's announcements (the periodic re-read is 5 s away).
    lab.exec(
        &lab.portal_ns,
        &["ip", "addr", "add", "10.203.0.77/24", "dev", &lab.portal_if],
    )
    .expect("add an address");
    std::thread::sleep(Duration::from_millis(600));
    lab.exec(
        &lab.client_ns,
        &[
            "hping3",
            "-q",
            "-c",
            "5",
            "-i",
            "u2000",
            "-S",
            "-p",
            "80",
            "-a",
            "10.203.0.77",
            PORTAL_V4,
        ],
    )
    .ok();
    let own2 = wait_for(
        &agent,
        |m| protect_count(m, "ingress", "own_prefix_spoofed", "dropped"),
        own + 5,
    );
    assert!(own2 >= own + 5, "the new address is the host's own: {own2}");
    assert!(
        agent
            .metrics()
            .value("precinct_protect_table_updates_total{result=\"ok\",trigger=\"addresses\"}")
            >= 1
    );
    assert!(ping_ok(&lab, 3), "real traffic still flows");
    agent.stop();
    let events = drop_events(&agent);
    for reason in ["bogon", "own_prefix_spoofed", "egress_spoofed"] {
        assert!(
            events.iter().any(|e| e["drop"]["reason"] == reason),
            "a drop event for {reason}: {events:#?}"
        );
    }
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn nmap_and_hping3_trip_port_policy_and_rate_limits() {
    require_root("nmap_and_hping3_trip_port_policy_and_rate_limits");
    let lab = Lab::create("prt").expect("create the lab");
    let dir = temp_dir("prt");
    let config = write_config(
        &dir,
        "[protect]\nmode = \"prevent\"\n[protect.ports]\ntcp = [8080]\nudp = []\n\
         [protect.rate_limit]\nsyn = { rate = 5, burst = 10 }\nicmp = { rate = 100, burst = 100 }\n",
    );
    let mut server = lab
        .spawn(
            &lab.portal_ns,
            &["python3", "-m", "http.server", "8080", "--bind", PORTAL_V4],
        )
        .expect("portal web server");
    let mut outside = lab
        .spawn(
            &lab.client_ns,
            &["python3", "-m", "http.server", "9090", "--bind", CLIENT_V4],
        )
        .expect("client web server");
    std::thread::sleep(Duration::from_millis(700));
    let mut agent = Agent::start(&lab, &dir, &["--config", &config]);
    let url = format!("http://{PORTAL_V4}:8080/");
    let curl = |ns: &str, url: &str| {
        lab.exec(
            ns,
            &["curl", "-sS", "-o", "/dev/null", "--max-time", "5", url],
        )
    };
    curl(&lab.client_ns, &url).expect("the open port answers");
    // The portal's own outbound connection: the reply comes to an ephemeral port the
    // policy does not open, and must still get in.
    curl(&lab.portal_ns, &format!("http://{CLIENT_V4}:9090/"))
        .expect("replies to the portal's own connections pass");
    lab.exec(
        &lab.client_ns,
        &[
            "nmap",
            "-sS",
            "-Pn",
            "-n",
            "-p",
            "1-200",
            "--max-retries",
            "0",
            "-T4",
            PORTAL_V4,
        ],
    )
    .expect("nmap runs");
    let closed = wait_for(
        &agent,
        |m| protect_count(m, "ingress", "port_policy", "dropped"),
        150,
    );
    assert!(closed >= 150, "port_policy dropped {closed} nmap probes");
    // 200 SYNs in about 0.2 s to the open port: the burst of 10 and a few more pass.
    lab.exec(
        &lab.client_ns,
        &[
            "hping3", "-q", "-c", "200", "-i", "u1000", "-S", "-p", "8080", PORTAL_V4,
        ],
    )
    .ok();
    let limited = wait_for(
        &agent,
        |m| protect_count(m, "ingress", "rate_limit", "dropped"),
        150,
    );
    assert!(limited >= 150, "rate_limit dropped {limited} of 200 SYNs");
    assert!(limited <= 195, "the burst passed: {limited} of 200 dropped");
    // UDP is closed entirely.
    lab.exec(
        &lab.client_ns,
        &[
            "hping3", "-q", "-c", "5", "-i", "u2000", "-2", "-p", "53", PORTAL_V4,
        ],
    )
    .ok();
    let udp = wait_for(
        &agent,
        |m| protect_count(m, "ingress", "port_policy", "dropped"),
        closed + 5,
    );
    assert!(udp >= closed + 5, "UDP to a closed port dropped");
    // A fresh source's bucket is full again after a second: the portal still serves.
    std::thread::sleep(Duration::from_secs(2));
    curl(&lab.client_ns, &url).expect("the open port answers after the flood");
    agent.stop();
    let _ = server.kill();
    let _ = server.wait();
    let _ = outside.kill();
    let _ = outside.wait();
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn reloads_and_manual_blocks_lose_no_allowed_packet() {
    require_root("reloads_and_manual_blocks_lose_no_allowed_packet");
    let lab = Lab::create("rld").expect("create the lab");
    let dir = temp_dir("rld");
    // A big list that does not hold the client: 50,000 /32s and /24s in 100.0.0.0/8.
    let list = dir.join("big.netset");
    let mut text = String::from("# FireHOL-style netset\n");
    for i in 0..50_000u32 {
        let a = 0x6400_0000u32 + i * 257;
        let len = if i % 5 == 0 { 24 } else { 32 };
        let a = a & (u32::MAX << (32 - len));
        text.push_str(&format!("{}/{len}\n", std::net::Ipv4Addr::from(a)));
    }
    std::fs::write(&list, &text).expect("list");
    let config = write_config(
        &dir,
        &format!(
            "[protect]\nmode = \"prevent\"\n[[protect.lists]]\nname = \"big\"\nfile = {:?}\n",
            list.to_str().expect("UTF-8")
        ),
    );
    let agent = Agent::start(&lab, &dir, &["--config", &config]);
    let pinger = lab
        .spawn(
            &lab.client_ns,
            &["ping", "-c", "400", "-i", "0.01", "-W", "2", PORTAL_V4],
        )
        .expect("ping");
    for i in 0..4 {
        let out = agent.control(&["lists", "reload"]);
        assert!(
            out.status.success(),
            "reload {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        agent.signal(libc::SIGHUP);
        let out = agent.control(&["block", "add", "192.0.2.0/24", "--reason", "test"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = agent.control(&["block", "del", "192.0.2.0/24"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = pinger.wait_with_output().expect("ping ends");
    let (sent, received) = ping_summary(&out);
    assert_eq!(sent, 400);
    assert_eq!(received, sent, "no allowed packet lost across reloads");
    let m = agent.metrics();
    assert_eq!(
        m.value("precinct_protect_list_entries{list=\"big\"}"),
        50_000
    );
    assert!(m.value("precinct_protect_table_updates_total{result=\"ok\",trigger=\"reload\"}") >= 8);
    assert_eq!(
        // Absent until a reload fails; the "ok" series above proves the family is there.
        m.value_or_zero(
            "precinct_protect_table_updates_total{result=\"failed\",trigger=\"reload\"}"
        ),
        0
    );

    // A manual block with a TTL drops the client, then expires by itself.
    let out = agent.control(&["block", "add", &format!("{CLIENT_V4}/32"), "--ttl", "3s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = agent.control(&["block", "list", "--json"]);
    let entries: Value = serde_json::from_slice(&list.stdout).expect("JSON entries");
    assert_eq!(entries[0]["cidr"], format!("{CLIENT_V4}/32"));
    assert!(!ping_ok(&lab, 3), "a blocked client is dropped");
    std::thread::sleep(Duration::from_secs(4));
    assert!(ping_ok(&lab, 3), "the block expired");
    let bad = agent.control(&["block", "add", "10.0.0.300/8"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("10.0.0.300"));
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn sigkill_leaves_traffic_flowing() {
    require_root("sigkill_leaves_traffic_flowing");
    let lab = Lab::create("kil").expect("create the lab");
    let dir = temp_dir("kil");
    let config = write_config(
        &dir,
        "[protect]\nmode = \"prevent\"\n[protect.ports]\ntcp = [443]\nudp = []\n",
    );
    let mut agent = Agent::start(&lab, &dir, &["--config", &config]);
    assert!(ping_ok(&lab, 3));
    std::thread::sleep(Duration::from_millis(500));
    // The egress program is judged by what it does (this bpftool cannot list TCX links): the
    // portal sending from an address that is not its own is dropped while the agent runs.
    let spoofed_from_portal = || {
        let before = lab.client_stats().expect("stats")[0];
        lab.exec(
            &lab.portal_ns,
            &[
                "hping3",
                "-q",
                "-c",
                "10",
                "-i",
                "u2000",
                "-2",
                "-p",
                "53",
                "-a",
                "198.51.100.7",
                CLIENT_V4,
            ],
        )
        .ok();
        std::thread::sleep(Duration::from_millis(200));
        lab.client_stats().expect("stats")[0] - before
    };
    let arrived = spoofed_from_portal();
    assert!(
        arrived < 10,
        "egress drops spoofed sources while the agent runs: {arrived}"
    );
    let pinger = lab
        .spawn(
            &lab.client_ns,
            &["ping", "-c", "200", "-i", "0.01", "-W", "2", PORTAL_V4],
        )
        .expect("ping");
    std::thread::sleep(Duration::from_millis(300));
    agent.kill();
    let out = pinger.wait_with_output().expect("ping ends");
    let (sent, received) = ping_summary(&out);
    assert_eq!(received, sent, "no packet lost when the agent was killed");
    // The programs went with the agent: nothing is attached any more.
    let link = lab
        .exec(&lab.portal_ns, &["ip", "link", "show", &lab.portal_if])
        .expect("ip link");
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(!text.contains("xdp"), "XDP detached after SIGKILL: {text}");
    let arrived = spoofed_from_portal();
    assert!(
        arrived >= 10,
        "the egress program is gone too: {arrived} of 10 arrived"
    );
    assert!(ping_ok(&lab, 3), "traffic flows without the agent");
}
