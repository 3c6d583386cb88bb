//! Namespace lab for restarts with a pinned datapath (`precinct run --pin`): an agent stopped
//! and started again under continuous traffic loses no packet, its successor carries on with
//! the kernel's counters, flows and manual blocks, and every flow is reported once across both
//! agents' EVE files; a SIGKILLed agent leaves the programs attached (allowed traffic flows,
//! blocks still drop); a map layout the programs would misread is refused until `--unpin`.
//!
//! The pins go to a BPF filesystem this test mounts on a directory of its own (`/sys/fs/bpf`
//! is not visible inside `ip netns exec`, which mounts a fresh `/sys`); the guard unpins and
//! unmounts it, also on failure.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::{
    agent::{precinct_bin, Agent},
    lab::{Lab, CLIENT_V4, CLIENT_V6, PORTAL_V4, PORTAL_V6},
    require_root,
    traffic::ping_summary,
};

/// A private BPF filesystem; dropping it removes the pins (detaching what they hold) and
/// unmounts it.
struct PinFs {
    mount: PathBuf,
}

impl PinFs {
    fn mount(dir: &Path) -> PinFs {
        let mount = dir.join("bpffs");
        std::fs::create_dir_all(&mount).expect("mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&mount)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t bpf: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PinFs { mount }
    }

    fn pin_path(&self) -> String {
        self.mount.join("precinct").to_str().expect("UTF-8").into()
    }
}

impl Drop for PinFs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.mount.join("precinct"));
        let c = std::ffi::CString::new(self.mount.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: umount2(2) with a valid C string, on the mount this guard made.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(&self.mount);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pct-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn sub_dir(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("agent dir");
    d
}

/// `true` when `count` pings to `dest` all come back, `false` when none does.
fn ping(lab: &Lab, dest: &str, count: u32) -> bool {
    lab.exec(
        &lab.client_ns,
        &[
            "ping",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            dest,
        ],
    )
    .is_ok()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const DROPPED: &str =
    "precinct_protect_packets_total{action=\"dropped\",hook=\"ingress\",reason=\"blocklist\"}";

fn flows(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .collect()
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn restart_under_traffic_loses_nothing_and_reports_each_flow_once() {
    require_root("restart_under_traffic_loses_nothing_and_reports_each_flow_once");
    let lab = Lab::create("rst").expect("create the lab");
    let dir = temp_dir("rst");
    let pins = PinFs::mount(&dir);
    let pin_path = pins.pin_path();
    let config = dir.join("precinct.toml");
    std::fs::write(
        &config,
        "[protect]\nmode = \"prevent\"\n[flows]\nsweep_interval_ms = 200\n\
         [flows.timeouts]\nicmp_established_secs = 2\n",
    )
    .expect("config");
    let args = [
        "--config",
        config.to_str().expect("UTF-8"),
        "--pin",
        "--pin-path",
        &pin_path,
    ];
    let (dir1, dir2) = (sub_dir(&dir, "first"), sub_dir(&dir, "second"));
    let mut first = Agent::start(&lab, &dir1, &args);
    let cidr = format!("{CLIENT_V6}/128");
    ok(first.control(&["block", "add", &cidr, "--reason", "restart test"]));
    assert!(!ping(&lab, PORTAL_V6, 2), "the blocked client is dropped");
    assert!(ping(&lab, PORTAL_V4, 2), "the allowed one is not");

    // One long flow across the restart: 1000 echo requests, 10 ms apart.
    const SENT: u64 = 1000;
    let pinger = lab
        .spawn(
            &lab.client_ns,
            &["ping", "-c", "1000", "-i", "0.01", "-W", "2", PORTAL_V4],
        )
        .expect("ping");
    std::thread::sleep(Duration::from_millis(1500));
    let before = first.metrics();
    let stderr = first.stop();
    assert!(stderr.contains("programs stay attached"), "{stderr}");
    assert!(
        !ping(&lab, PORTAL_V6, 2),
        "the block holds while no agent runs"
    );

    let mut second = Agent::start(&lab, &dir2, &args);
    let list: Value =
        serde_json::from_str(&ok(second.control(&["block", "list", "--json"]))).expect("JSON");
    assert_eq!(
        list[0]["cidr"], cidr,
        "the manual block carried over: {list}"
    );
    assert_eq!(list[0]["reason"], "restart test");
    assert!(
        !ping(&lab, PORTAL_V6, 2),
        "the block holds under the new agent"
    );
    let (sent, received) = ping_summary(&pinger.wait_with_output().expect("ping ends"));
    assert_eq!(sent, SENT);
    assert_eq!(received, sent, "no packet lost across the restart");

    // The kernel's counters carried on: six blocked pings in all, two while no agent ran.
    let after = second.metrics();
    assert!(after.value(DROPPED) >= 6, "{}", after.0);
    assert!(after.value(DROPPED) >= before.value(DROPPED) + 4);
    let packets = "precinct_packets_total{hook=\"ingress\"}";
    assert!(after.value(packets) >= before.value(packets) + (SENT - 300));

    // The flow idles out under the second agent, which reports it whole.
    let deadline = Instant::now() + Duration::from_secs(10);
    let is_stream = |e: &&Value| {
        e["proto"] == "ICMP"
            && e["src_ip"] == CLIENT_V4
            && e["flow"]["pkts_toserver"].as_u64() > Some(100)
    };
    while !flows(&second.events()).iter().any(is_stream) {
        assert!(
            Instant::now() < deadline,
            "the stream's flow record is late"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    second.stop();
    let (events1, events2) = (first.events(), second.events());
    assert!(
        flows(&events1)
            .iter()
            .all(|e| e["flow"]["reason"] != "shutdown"),
        "a pinned agent flushes nothing at stop: {events1:#?}"
    );
    let all: Vec<&Value> = flows(&events1).into_iter().chain(flows(&events2)).collect();
    let stream: Vec<&&Value> = all.iter().filter(|e| is_stream(e)).collect();
    assert_eq!(stream.len(), 1, "the stream is reported once: {stream:#?}");
    let f = &stream[0]["flow"];
    let counts = [
        "pkts_toserver",
        "pkts_toclient",
        "bytes_toserver",
        "bytes_toclient",
    ]
    .map(|k| f[k].as_u64().unwrap_or_else(|| panic!("flow.{k} in {f}")));
    assert_eq!(counts, [SENT, SENT, SENT * 98, SENT * 98], "{f}");
    assert_eq!(f["reason"], "timeout");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in &all {
        let id = format!("{} {}", e["community_id"], e["flow"]["start"]);
        *seen.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "flows reported twice: {twice:?}");
    drop(pins);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn sigkill_of_a_pinned_agent_keeps_the_programs_and_their_policy() {
    require_root("sigkill_of_a_pinned_agent_keeps_the_programs_and_their_policy");
    let lab = Lab::create("pkl").expect("create the lab");
    let dir = temp_dir("pkl");
    let pins = PinFs::mount(&dir);
    let pin_path = pins.pin_path();
    let args = ["--mode", "prevent", "--pin", "--pin-path", &pin_path];
    let mut agent = Agent::start(&lab, &sub_dir(&dir, "first"), &args);
    ok(agent.control(&["block", "add", &format!("{CLIENT_V6}/128")]));
    let pinger = lab
        .spawn(
            &lab.client_ns,
            &["ping", "-c", "300", "-i", "0.01", "-W", "2", PORTAL_V4],
        )
        .expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    agent.kill();
    let (sent, received) = ping_summary(&pinger.wait_with_output().expect("ping ends"));
    assert_eq!(received, sent, "no packet lost when the agent was killed");
    let link = lab
        .exec(&lab.portal_ns, &["ip", "link", "show", &lab.portal_if])
        .expect("ip link");
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(text.contains("xdp"), "XDP stays attached: {text}");
    assert!(!ping(&lab, PORTAL_V6, 2), "the block holds after the crash");
    assert!(ping(&lab, PORTAL_V4, 3), "allowed traffic flows");

    // The next agent recovers the crashed one's state.
    let mut next = Agent::start(&lab, &sub_dir(&dir, "next"), &args);
    let list = ok(next.control(&["block", "list", "--json"]));
    assert!(list.contains(CLIENT_V6), "{list}");
    assert!(!ping(&lab, PORTAL_V6, 2));
    assert!(ping(&lab, PORTAL_V4, 3));
    next.stop();
    drop(pins);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn a_map_layout_the_programs_would_misread_is_refused_until_unpin() {
    require_root("a_map_layout_the_programs_would_misread_is_refused_until_unpin");
    let lab = Lab::create("lay").expect("create the lab");
    let dir = temp_dir("lay");
    let pins = PinFs::mount(&dir);
    let pin_path = pins.pin_path();
    let pinned = ["--pin", "--pin-path", pin_path.as_str()];
    let mut agent = Agent::start(&lab, &sub_dir(&dir, "first"), &pinned);
    agent.stop();

    // What an upgrade that changed the policy record's size would find.
    let policy = Path::new(&pin_path).join("maps/PRECINCT_POLICY");
    std::fs::remove_file(&policy).expect("unpin the policy map");
    let wrong: aya::maps::Array<aya::maps::MapData, u32> =
        aya::maps::Array::create(1, 0).expect("a map of another layout");
    wrong.pin(&policy).expect("pin it");

    let bin = precinct_bin();
    let eve = dir.join("refused.json");
    let refused = lab.exec(
        &lab.portal_ns,
        &[
            "timeout",
            "30",
            bin.to_str().expect("UTF-8"),
            "run",
            "--iface",
            &lab.portal_if,
            "--eve",
            eve.to_str().expect("UTF-8"),
            "--socket",
            dir.join("refused.sock").to_str().expect("UTF-8"),
            "--pin",
            "--pin-path",
            &pin_path,
        ],
    );
    let err = refused.expect_err("the agent refuses the pinned maps");
    assert!(
        err.contains("PRECINCT_POLICY") && err.contains("--unpin"),
        "{err}"
    );
    assert!(ping(&lab, PORTAL_V4, 2), "the old programs still run");

    let unpin = [pinned.as_slice(), &["--unpin"]].concat();
    let mut fresh = Agent::start(&lab, &sub_dir(&dir, "unpinned"), &unpin);
    assert!(ping(&lab, PORTAL_V4, 2));
    fresh.stop();

    // Leaving pinning: the pinned attachments go, this agent's go with it.
    let mut plain = Agent::start(
        &lab,
        &sub_dir(&dir, "plain"),
        &["--no-pin", "--unpin", "--pin-path", &pin_path],
    );
    plain.stop();
    let link = lab
        .exec(&lab.portal_ns, &["ip", "link", "show", &lab.portal_if])
        .expect("ip link");
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(!text.contains("xdp"), "nothing attached any more: {text}");
    drop(pins);
    std::fs::remove_dir_all(&dir).ok();
}
