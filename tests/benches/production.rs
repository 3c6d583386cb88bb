//! The XDP ingress program as `precinct run` loads it, per packet, beside an empty XDP program
//! measured the same way in the same run, as ratios with the issue's targets.
//!
//! The agent runs in a namespace lab on the lab's veth with the configuration operators run
//! (default head settings, protection in monitor mode with 1,000,000 IPv4 and 100,000 IPv6
//! blocklist entries, a port policy, a SYN rate limit, and one small list in prevent mode for
//! the blocklist hit): its ring-buffer reader is polling and its sweeps are running. The bench
//! finds the program attached to the veth and drives it with `BPF_PROG_TEST_RUN` from here.
//! Known flows (confirmed first: a packet each way, then the measured one) run `REPEAT` times
//! per call; a new flow per packet (random spoofed sources, each one SYN) is one packet per
//! call, `NEW_FLOWS` calls, and the empty program is measured the same way for that row.
//!
//! `cargo xtask bench` (root). Every figure is the median of several calls.

use std::{
    fmt::Write as _,
    io::Write as _,
    os::fd::{AsFd as _, AsRawFd as _},
    time::Duration,
};

use aya::{programs::Xdp, Ebpf};
use precinct::datapath::{program_mut, EBPF_BENCH_OBJECT};
use sensor_common::bench;
use tests::{
    agent::Agent,
    lab::Lab,
    packets::{eth, ipv4, tcp, udp, v4_frame, v6_frame, V4},
    rng::Rng,
};

const REPEAT: u32 = 1_000_000;
const RUNS: usize = 7;
const NEW_FLOWS: usize = 20_000;
const V4_ENTRIES: usize = 1_000_000;
const V6_ENTRIES: usize = 100_000;
const SEED: u64 = 0x666c_6f6f_6421;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const ACK: u8 = 0x10;
const SYN: u8 = 0x02;
/// The prevent-mode list: one /24 of documentation space the random sources never use.
const BLOCKED_NET: [u8; 3] = [203, 0, 113];

/// `union bpf_attr` for `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;

/// Mean ns per run of `repeat` runs of the program behind `fd` on `frame`, and its verdict.
fn test_run(fd: i32, frame: &[u8], repeat: u32) -> (u64, u32) {
    let mut attr = TestRunAttr {
        prog_fd: fd as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid BPF_PROG_TEST_RUN attribute of its own size; the input buffer
    // outlives the call and no output buffers are given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    assert_eq!(
        rc,
        0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::last_os_error()
    );
    (u64::from(attr.duration), attr.retval)
}

/// A descriptor for the program with this id.
fn prog_fd(id: u32) -> i32 {
    let mut attr = [0u32; 4];
    attr[0] = id;
    // SAFETY: BPF_PROG_GET_FD_BY_ID reads the id from the first word of a zeroed attribute.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    assert!(
        fd >= 0,
        "BPF_PROG_GET_FD_BY_ID {id}: {}",
        std::io::Error::last_os_error()
    );
    fd as i32
}

/// The id of the XDP program attached to the lab's portal interface.
fn attached_xdp(lab: &Lab) -> u32 {
    let out = lab
        .exec(
            &lab.portal_ns,
            &["ip", "-j", "link", "show", "dev", &lab.portal_if],
        )
        .expect("ip link");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
    v[0]["xdp"]["prog"]["id"]
        .as_u64()
        .or_else(|| v[0]["xdp"]["attached"][0]["prog"]["id"].as_u64())
        .unwrap_or_else(|| panic!("no XDP program on {}: {v}", lab.portal_if)) as u32
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Median of `RUNS` calls of `REPEAT` runs; asserts the verdict.
fn repeated(fd: i32, frame: &[u8], verdict: u32) -> u64 {
    median(
        (0..RUNS)
            .map(|_| {
                let (ns, v) = test_run(fd, frame, REPEAT);
                assert_eq!(v, verdict, "verdict");
                ns
            })
            .collect(),
    )
}

/// Median of single runs, one per frame; asserts the verdict.
fn single(fd: i32, frames: &[Vec<u8>], verdict: u32) -> u64 {
    median(
        frames
            .iter()
            .map(|f| {
                let (ns, v) = test_run(fd, f, 1);
                assert_eq!(v, verdict, "verdict");
                ns
            })
            .collect(),
    )
}

/// A random unicast IPv4 address outside every special-purpose range and the blocked /24.
fn public4(rng: &mut Rng) -> [u8; 4] {
    loop {
        let a = (rng.next() as u32).to_be_bytes();
        let special =
            matches!(a[0], 0 | 10 | 100 | 127 | 169 | 172 | 192 | 198 | 203) || a[0] >= 224;
        if !special {
            return a;
        }
    }
}

fn write_lists(dir: &std::path::Path, rng: &mut Rng) {
    let mut v4 = String::with_capacity(V4_ENTRIES * 18);
    for _ in 0..V4_ENTRIES {
        let a = public4(rng);
        let _ = writeln!(v4, "{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
    }
    std::fs::write(dir.join("v4.txt"), v4).expect("write list");
    let mut v6 = String::with_capacity(V6_ENTRIES * 30);
    for _ in 0..V6_ENTRIES {
        let (h, l) = (rng.next(), rng.next());
        let a = ((u128::from(h) << 64 | u128::from(l)) & !(0b111 << 125)) | (1 << 125);
        let _ = writeln!(v6, "{}/64", std::net::Ipv6Addr::from(a));
    }
    std::fs::write(dir.join("v6.txt"), v6).expect("write list");
    let b = BLOCKED_NET;
    std::fs::write(
        dir.join("blocked.txt"),
        format!("{}.{}.{}.0/24\n", b[0], b[1], b[2]),
    )
    .expect("write list");
}

/// What operators run, with the lists above.
fn config(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        r#"
[protect]
mode = "monitor"
discover_addresses = false

[protect.ports]
tcp = [22, 80, 443]
udp = [53]

[protect.rate_limit]
syn = {{ rate = 100, burst = 200 }}

[[protect.lists]]
name = "bench-v4"
file = "{d}/v4.txt"
format = "plain"

[[protect.lists]]
name = "bench-v6"
file = "{d}/v6.txt"
format = "plain"

[[protect.lists]]
name = "blocked"
file = "{d}/blocked.txt"
format = "plain"
mode = "prevent"
"#
    )
}

/// Three packets that confirm a flow (one each way, then the first again): afterwards the
/// flow is known, whatever rule the program uses to start tracking one.
fn confirm(fd: i32, frame: &[u8], reverse: &[u8]) {
    for f in [frame, reverse, frame] {
        test_run(fd, f, 1);
    }
}

/// The agent in a fresh lab with `config` (TOML), the descriptor of its attached XDP program,
/// and the lab, to drop after the agent.
fn start(dir: &std::path::Path, config: &str, lists: bool) -> (Agent, i32, Lab) {
    let cfg = dir.join("precinct.toml");
    std::fs::write(&cfg, config).expect("write config");
    let lab = Lab::create("prod").expect("lab (run as root)");
    let cfg_s = cfg.to_str().expect("UTF-8 path");
    let agent = Agent::start(&lab, dir, &["--config", cfg_s]);
    // The lists load after the agent serves metrics: wait until the big one is in.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while lists
        && agent
            .metrics()
            .value_or_zero(r#"precinct_protect_list_entries{list="bench-v4"}"#)
            == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the lists did not load within 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let fd = prog_fd(attached_xdp(&lab));
    (agent, fd, lab)
}

fn new_sources(rng: &mut Rng, dst: [u8; 4]) -> Vec<Vec<u8>> {
    (0..NEW_FLOWS)
        .map(|i| {
            let src = public4(rng);
            v4_frame(src, dst, 6, &tcp(1024 + (i % 60000) as u16, 443, SYN, &[]))
        })
        .collect()
}

fn print_agent(agent: &Agent) {
    let m = agent.metrics();
    for series in [
        r#"precinct_packets_total{hook="ingress"}"#,
        r#"precinct_flows_created_total{hook="ingress"}"#,
        r#"precinct_untracked_packets_total{hook="ingress"}"#,
        r#"precinct_ringbuf_records_total{hook="ingress"}"#,
        r#"precinct_pending_flows_total{event="opened",hook="ingress"}"#,
        r#"precinct_pending_flows_total{event="overwritten",hook="ingress"}"#,
    ] {
        println!("  agent: {series} {}", m.value_or_zero(series));
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the production-program benchmark runs the agent: run it as root (cargo xtask bench)"
        );
        std::process::exit(1);
    }
    let dir = std::env::temp_dir().join(format!("precinct-prod-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let mut rng = Rng(SEED);
    write_lists(&dir, &mut rng);

    let mut baseline = Ebpf::load(EBPF_BENCH_OBJECT).expect("benchmark object");
    let empty: &mut Xdp = program_mut(&mut baseline, bench::programs::EMPTY).expect("program");
    empty.load().expect("verifier");
    let empty_fd = empty.fd().expect("fd").as_fd().as_raw_fd();

    // `PRECINCT_BENCH_EXTRA`: TOML appended to the production configuration (such as
    // "[flows]\npending_slots = 0"), to measure one setting in the full configuration.
    let extra = std::env::var("PRECINCT_BENCH_EXTRA").unwrap_or_default();
    let (agent, fd, lab) = start(&dir, &format!("{extra}\n{}", config(&dir)), true);
    let (c4, s4) = ([198, 18, 0, 1], [192, 0, 2, 80]);
    let known = |sport: u16, flags: u8| tcp(sport, 443, flags, &[]);
    let v4_ack = v4_frame(c4, s4, 6, &known(40000, ACK));
    let v4_rev = v4_frame(s4, c4, 6, &tcp(443, 40000, ACK, &[]));
    let vlan_ack = eth(
        &[42],
        0x0800,
        &ipv4(&V4::new(c4, s4, 6), &known(40001, ACK)),
    );
    let vlan_rev = eth(
        &[42],
        0x0800,
        &ipv4(&V4::new(s4, c4, 6), &tcp(443, 40001, ACK, &[])),
    );
    let (c6, s6) = ("2001:db8:1::10", "2001:db8:2::80");
    let v6_ack = v6_frame(c6, s6, 6, &known(40002, ACK));
    let v6_rev = v6_frame(s6, c6, 6, &tcp(443, 40002, ACK, &[]));
    let v6_udp = v6_frame(c6, s6, 17, &udp(5000, 53, &[0u8; 32]));
    let v6_udp_rev = v6_frame(s6, c6, 17, &udp(53, 5000, &[0u8; 32]));

    println!(
        "XDP ingress as `precinct run` loads it (monitor mode, {V4_ENTRIES} IPv4 + {V6_ENTRIES} \
         IPv6 list entries, port policy, SYN rate limit, default heads), via BPF_PROG_TEST_RUN"
    );
    println!(
        "{:<44} {:>9} {:>9} {:>7} {:>7}",
        "packet", "cost", "empty", "ratio", "target"
    );
    let mut rows: Vec<(&str, u64, u64, f64)> = Vec::new();
    for (label, frame, reverse) in [
        ("IPv4 TCP ACK of a known flow", &v4_ack, &v4_rev),
        ("VLAN IPv4 TCP ACK of a known flow", &vlan_ack, &vlan_rev),
        ("IPv6 TCP ACK of a known flow", &v6_ack, &v6_rev),
        ("IPv6 UDP of a known flow", &v6_udp, &v6_udp_rev),
    ] {
        confirm(fd, frame, reverse);
        let cost = repeated(fd, frame, XDP_PASS);
        let base = repeated(empty_fd, frame, XDP_PASS);
        rows.push((label, cost, base, 2.0));
    }
    // The same known-flow packet one per call, as the new-flow row is measured: what the
    // method itself adds (caches cooled by the system call between packets).
    let same: Vec<Vec<u8>> = (0..NEW_FLOWS).map(|_| v4_ack.clone()).collect();
    let cost = single(fd, &same, XDP_PASS);
    let base = single(empty_fd, &same, XDP_PASS);
    rows.push(("IPv4 TCP ACK of a known flow, 1 per call", cost, base, 2.0));
    // A new flow per packet: spoofed random sources, each one SYN to an open port.
    let syns = new_sources(&mut rng, s4);
    let cost = single(fd, &syns, XDP_PASS);
    let base = single(empty_fd, &syns, XDP_PASS);
    rows.push(("TCP SYN from a new random source", cost, base, 4.0));
    // A blocklist hit in prevent mode: dropped.
    let b = BLOCKED_NET;
    let hit = v4_frame([b[0], b[1], b[2], 7], s4, 6, &tcp(40003, 443, SYN, &[]));
    let cost = repeated(fd, &hit, XDP_DROP);
    let base = repeated(empty_fd, &hit, XDP_PASS);
    rows.push(("blocklist hit (prevent mode, dropped)", cost, base, 1.5));

    let mut missed = 0;
    for (label, cost, base, target) in &rows {
        let ratio = *cost as f64 / (*base).max(1) as f64;
        let mark = if ratio <= *target { "met" } else { "MISSED" };
        if ratio > *target {
            missed += 1;
        }
        println!(
            "{label:<44} {cost:>6} ns {base:>6} ns {ratio:>7.2} {:>7} {mark}",
            format!("<= {target}")
        );
    }
    let extra = (rows[2].1 as f64 / rows[0].1 as f64 - 1.0) * 100.0;
    println!(
        "IPv6 TCP over IPv4 TCP: {extra:+.0}% (target: at most +20%) {}",
        if extra <= 20.0 { "met" } else { "MISSED" }
    );
    println!("targets missed: {missed}");
    print_agent(&agent);
    drop(agent);
    drop(lab);

    // Where a new flow's cost goes: the same row with protection off, then heads off too.
    println!();
    println!("TCP SYN from a new random source, other configurations");
    for (label, cfg) in [
        ("default config (protection off)", ""),
        (
            "default config, head_bytes = 0",
            "[inspect]\nhead_bytes = 0\n",
        ),
        (
            "default config, pending table off",
            "[flows]\npending_slots = 0\n",
        ),
    ] {
        let (agent, fd, lab) = start(&dir, cfg, false);
        let syns = new_sources(&mut rng, s4);
        let cost = single(fd, &syns, XDP_PASS);
        let base = single(empty_fd, &syns, XDP_PASS);
        println!(
            "{label:<44} {cost:>6} ns {base:>6} ns {:>7.2}",
            cost as f64 / base.max(1) as f64
        );
        print_agent(&agent);
        drop(agent);
        drop(lab);
    }
    let _ = std::io::stdout().flush();
    let _ = std::fs::remove_dir_all(&dir);
}
