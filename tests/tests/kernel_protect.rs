//! Kernel protection tests through `BPF_PROG_TEST_RUN`: the XDP ingress and TC egress verdicts
//! and verdict counters must equal what the host model says for a generated corpus of tables,
//! policies (monitor, prevent, mixed) and packets (IPv4 and IPv6, edge prefixes /0, /32, /128,
//! nested and overlapping lists). The host model is the same verdict code over an independent
//! table: `Built::lookup`, itself checked against the naive reference matcher in
//! `sensor-user`'s unit tests. Rate limits, return traffic of the host's own connections and
//! drop events are tested on their own, since they depend on time and order.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
};

use aya::{
    maps::{MapData, RingBuf},
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
    Ebpf,
};
use precinct::{
    datapath::{self, LoadOptions},
    protect::{
        lists::Prefix,
        table::{aggregate, build, Built},
        Protect, VerdictMap,
    },
};
use sensor_common::{
    flow::{tcp, FlowKey},
    parse,
    parse::ipproto,
    programs,
    protect::{
        self, action, bit, class, gcra, port_slot, reason, vid, Policy, RateKey, Tables,
        VerdictCounters, BOGONS_V4, BOGONS_V6, PORTS_TCP, PORTS_UDP, PORT_WORDS,
    },
    Hook,
};
use tests::{
    model::TEST_RUN_IFINDEX,
    packets::{icmp, tcp as tcp_seg, udp, v4_frame, v6_frame},
    require_root,
    rng::Rng,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_PIPE: u32 = 3;

/// The host model of the kernel maps.
struct HostTables {
    built: Built,
    ports: Vec<u64>,
    outbound: RefCell<HashSet<FlowKey>>,
    rate: RefCell<HashMap<RateKey, u64>>,
}

impl Tables for HostTables {
    fn addr_mask(&self, _gen: u32, family: u8, addr: &[u8; 16]) -> u32 {
        self.built.lookup(family, addr)
    }
    fn port_allowed(&self, udp: bool, port: u16) -> bool {
        let (i, b) = port_slot(udp, port);
        self.ports[i as usize] & b != 0
    }
    fn outbound(&self, key: &FlowKey) -> bool {
        self.outbound.borrow().contains(key)
    }
    fn rate_conforms(&self, key: &RateKey, now: u64, interval: u64, burst_ns: u64) -> bool {
        let mut rate = self.rate.borrow_mut();
        let tat = rate.entry(*key).or_insert(0);
        gcra(tat, now, interval, burst_ns)
    }
}

fn v4(a: u32, len: u8) -> Prefix {
    Prefix::new(std::net::Ipv4Addr::from(a).into(), len).expect("prefix")
}

fn v6(a: u128, len: u8) -> Prefix {
    Prefix::new(std::net::Ipv6Addr::from(a).into(), len).expect("prefix")
}

/// Table entries: built-in bogons, own addresses, an allowlist, bogon exemptions, and three
/// lists with nested and overlapping prefixes of every edge length.
fn entries(rng: &mut Rng, with_default_route: bool) -> Vec<(Prefix, u32)> {
    let mut e = Vec::new();
    for (a, len) in BOGONS_V4 {
        e.push((
            Prefix::new(a.into(), len).expect("bogon"),
            bit::BUILTIN_BOGON,
        ));
    }
    for (a, len) in BOGONS_V6 {
        e.push((
            Prefix::new(a.into(), len).expect("bogon"),
            bit::BUILTIN_BOGON,
        ));
    }
    e.push((v4(0x0acb_0001, 32), bit::OWN)); // 10.203.0.1, the host
    e.push((v4(0x0acb_0000, 24), bit::BOGON_EXEMPT)); // its connected subnet
    e.push((v6(0xfd00_0203 << 96 | 1, 128), bit::OWN));
    e.push((v6(0xfd00_0203 << 96, 64), bit::BOGON_EXEMPT));
    e.push((v4(0xc633_6400, 24), bit::ALLOW)); // 198.51.100.0/24: the SOC's scanners
    e.push((v6(0x2001_0db8_0001 << 80, 48), bit::ALLOW));
    if with_default_route {
        e.push((v4(0, 0), 1 << 3));
        e.push((v6(0, 0), 1 << 3));
    }
    for list in 1..=3u32 {
        for _ in 0..40 {
            let len = [8u8, 12, 15, 16, 17, 20, 23, 24, 28, 31, 32][rng.below(11) as usize];
            let a = (rng.next() as u32) | 0x0100_0000;
            e.push((v4(a, len), 1 << list));
            // Nested: a longer prefix inside, sometimes on another list.
            let inner = rng.below(33 - u64::from(len)) as u8 + len;
            let other = 1 << (1 + rng.below(3));
            e.push((
                v4(
                    a ^ (rng.next() as u32).checked_shr(u32::from(len)).unwrap_or(0),
                    inner,
                ),
                other,
            ));
            let len6 = [16u8, 29, 32, 48, 56, 64, 100, 127, 128][rng.below(9) as usize];
            let a6 = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3 | 0x2 << 124;
            e.push((v6(a6, len6), 1 << list));
        }
    }
    e
}

/// Sources for the corpus: edges of every entry, random addresses and known special ones.
fn sources(rng: &mut Rng, e: &[(Prefix, u32)]) -> Vec<(u8, [u8; 16])> {
    let mut out = Vec::new();
    for (p, _) in e {
        let max = u32::from(p.max_len());
        let host_bits = max - u32::from(p.len);
        let mut first = p.addr;
        let mut last = p.addr;
        // Set the host bits of `last`.
        for i in 0..(max as usize) {
            if i >= usize::from(p.len) {
                last[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.push((p.family, first));
        out.push((p.family, last));
        if host_bits > 0 {
            // One past the end, and one before the start.
            let n = (max / 8) as usize;
            let bump = |a: &mut [u8; 16], up: bool| {
                for i in (0..n).rev() {
                    if up {
                        let (v, c) = a[i].overflowing_add(1);
                        a[i] = v;
                        if !c {
                            break;
                        }
                    } else {
                        let (v, c) = a[i].overflowing_sub(1);
                        a[i] = v;
                        if !c {
                            break;
                        }
                    }
                }
            };
            bump(&mut last, true);
            bump(&mut first, false);
            out.push((p.family, first));
            out.push((p.family, last));
        }
    }
    for _ in 0..200 {
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&rng.next().to_be_bytes());
        a[8..].copy_from_slice(&rng.next().to_be_bytes());
        if rng.below(2) == 0 {
            a[4..].fill(0);
            out.push((4, a));
        } else {
            out.push((6, a));
        }
    }
    out
}

fn ip_string(family: u8, a: &[u8; 16]) -> String {
    precinct::flows::ip_of(family, a).to_string()
}

/// A packet from `src` to the host, of a kind picked by `k`.
fn frame(family: u8, src: &[u8; 16], k: u64) -> Vec<u8> {
    let (proto, l4) = match k % 6 {
        0 => (ipproto::TCP, tcp_seg(40_000, 443, tcp::SYN, &[])),
        1 => (ipproto::TCP, tcp_seg(40_001, 8080, tcp::SYN, &[])),
        2 => (ipproto::TCP, tcp_seg(40_002, 22, tcp::ACK, b"x")),
        3 => (ipproto::UDP, udp(5353, 53, b"q")),
        4 => (ipproto::UDP, udp(5353, 9999, b"q")),
        _ => (
            if family == 4 {
                ipproto::ICMP
            } else {
                ipproto::ICMPV6
            },
            icmp(if family == 4 { 8 } else { 128 }, 0, 7, 1, b"ping"),
        ),
    };
    if family == 4 {
        v4_frame(
            [src[0], src[1], src[2], src[3]],
            [10, 203, 0, 1],
            proto,
            &l4,
        )
    } else {
        v6_frame(&ip_string(6, src), "fd00:203::1", proto, &l4)
    }
}

fn run(ebpf: &mut Ebpf, hook: Hook, data: &[u8]) -> u32 {
    let opts = TestRunOptions {
        data_in: Some(data),
        ..Default::default()
    };
    let r = match hook {
        Hook::Ingress => {
            let p: &mut Xdp = datapath::program_mut(ebpf, programs::INGRESS).expect("program");
            p.test_run(opts)
        }
        Hook::Egress => {
            let p: &mut SchedClassifier =
                datapath::program_mut(ebpf, programs::EGRESS).expect("program");
            p.test_run(opts)
        }
    };
    r.expect("test run").return_value
}

/// Loads both programs and the protection maps.
fn setup() -> (Ebpf, Protect, VerdictMap) {
    let mut ebpf = datapath::load_with(&LoadOptions {
        flow_capacity: 4096,
        v4_capacity: 4096,
        v6_capacity: 4096,
        ..LoadOptions::default()
    })
    .expect("load the eBPF object");
    {
        let p: &mut Xdp = datapath::program_mut(&mut ebpf, programs::INGRESS).expect("program");
        p.load().expect("the verifier accepts the XDP program");
        let p: &mut SchedClassifier =
            datapath::program_mut(&mut ebpf, programs::EGRESS).expect("program");
        p.load().expect("the verifier accepts the TC program");
    }
    let ports = host_ports();
    let protect = Protect::take(&mut ebpf, &ports, (4096, 4096)).expect("protection maps");
    let verdicts = VerdictMap::take(&mut ebpf).expect("verdict counters");
    (ebpf, protect, verdicts)
}

fn host_ports() -> Vec<u64> {
    let mut ports = vec![0u64; 2 * PORT_WORDS as usize];
    for (udp, port) in [(false, 443), (false, 22), (true, 53)] {
        let (i, b) = port_slot(udp, port);
        ports[i as usize] |= b;
    }
    ports
}

/// The policies the corpus runs under: everything monitor, everything prevent, and a mix
/// where lists and checks disagree.
fn policies() -> Vec<(&'static str, Policy)> {
    let all = (1..reason::COUNT as u32)
        .filter(|r| *r != u32::from(reason::RATE_LIMIT))
        .fold(0, |m, r| m | 1 << r);
    let base = Policy {
        enabled: all,
        block_lists: 0b0111,
        bogon_lists: 0b1000,
        port_enforce: PORTS_TCP | PORTS_UDP,
        ..Policy::default()
    };
    vec![
        ("monitor", base),
        (
            "prevent",
            Policy {
                prevent: all & !(1 << reason::BLOCKLIST),
                prevent_lists: 0b1111,
                egress_dst_lists: 0b0100,
                ..base
            },
        ),
        (
            "mixed",
            Policy {
                prevent: 1 << reason::PORT_POLICY | 1 << reason::OWN_PREFIX_SPOOFED,
                prevent_lists: 0b0010,
                egress_dst_lists: 0b0110,
                ..base
            },
        ),
    ]
}

fn counted(v: &protect::Verdict) -> VerdictCounters {
    let mut c = VerdictCounters::default();
    c.count(v);
    c
}

fn delta(now: &VerdictCounters, before: &VerdictCounters) -> VerdictCounters {
    let mut d = VerdictCounters::default();
    for i in 0..vid::EVENTS {
        d.c[i] = now.c[i] - before.c[i];
    }
    d
}

fn corpus_agrees(with_default_route: bool, seed: u64) {
    let (mut ebpf, mut protect, verdicts) = setup();
    let mut rng = Rng(seed);
    let e = entries(&mut rng, with_default_route);
    let built = build(&aggregate(e.clone()));
    let srcs = sources(&mut rng, &e);
    let mut checked = [0usize; 3];
    let mut seen = HashSet::new();
    // One model for all policies: the kernel's outbound map persists across them too.
    let host = HostTables {
        built: built.clone(),
        ports: host_ports(),
        outbound: RefCell::default(),
        rate: RefCell::default(),
    };
    for (name, policy) in policies() {
        protect.swap(&built, policy).expect("swap the tables in");
        for (i, (family, src)) in srcs.iter().enumerate() {
            let f = frame(*family, src, i as u64);
            let p = parse(f.as_slice());
            // Ingress: the host's verdict, return code and counters.
            let want = protect::ingress(&host, &policy, &p, TEST_RUN_IFINDEX, 0);
            let before = verdicts.read(Hook::Ingress).expect("counters");
            let got = run(&mut ebpf, Hook::Ingress, &f);
            let expected = if want.action == action::DROP {
                XDP_DROP
            } else {
                XDP_PASS
            };
            let what = format!("{name}: ingress from {} ({i})", ip_string(*family, src));
            assert_eq!(got, expected, "{what}: verdict {want:?}");
            let after = verdicts.read(Hook::Ingress).expect("counters");
            assert_eq!(
                delta(&after, &before).c[..vid::EVENTS],
                counted(&want).c[..vid::EVENTS],
                "{what}: counters for {want:?}"
            );
            checked[want.action as usize] += 1;
            seen.insert((want.reason, want.action));
            // Egress: a frame of another kind from the same source, as if the host sent it
            // (source check, destination lists). Another kind, so that the flows it opens are
            // not the ones later ingress packets test the port policy with.
            let f = frame(*family, src, i as u64 + 1);
            let p = parse(f.as_slice());
            let want = protect::egress(&host, &policy, &p);
            let before = verdicts.read(Hook::Egress).expect("counters");
            let got = run(&mut ebpf, Hook::Egress, &f);
            let expected = if want.action == action::DROP {
                TC_ACT_SHOT
            } else {
                TC_ACT_PIPE
            };
            assert_eq!(got, expected, "{name}: egress ({i}): verdict {want:?}");
            let after = verdicts.read(Hook::Egress).expect("counters");
            assert_eq!(
                delta(&after, &before).c[..vid::EVENTS],
                counted(&want).c[..vid::EVENTS],
                "{name}: egress ({i}) counters for {want:?}"
            );
            seen.insert((want.reason, want.action));
            if want.action != action::DROP
                && p.is_trackable()
                && protect::egress_opens(&host, &policy, &p)
            {
                host.outbound
                    .borrow_mut()
                    .insert(protect::outbound_key(&p, TEST_RUN_IFINDEX));
            }
        }
    }
    // Every reason but the rate limit (tested on its own) in both modes. A default route on
    // a bogon list makes every source a bogon, which hides the later checks' monitor hits.
    for r in if with_default_route {
        &[][..]
    } else {
        &[
            reason::BLOCKLIST,
            reason::BOGON,
            reason::OWN_PREFIX_SPOOFED,
            reason::EGRESS_SPOOFED,
            reason::PORT_POLICY,
        ][..]
    } {
        for a in [action::DROP, action::WOULD_DROP] {
            assert!(
                seen.contains(&(*r, a)),
                "the corpus exercises {} with action {a}",
                reason::NAMES[usize::from(*r)]
            );
        }
    }
    // The corpus must exercise every outcome, or it proves little.
    assert!(
        checked.iter().all(|n| *n > 20),
        "passes, drops and would-drops each seen often: {checked:?}"
    );
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn kernel_verdicts_match_the_host_model() {
    require_root("kernel_verdicts_match_the_host_model");
    for seed in [1, 2, 3] {
        corpus_agrees(false, seed);
    }
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn default_route_entries_match_the_host_model() {
    require_root("default_route_entries_match_the_host_model");
    corpus_agrees(true, 7);
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn rate_limits_pass_the_burst_then_drop_per_source_and_per_64() {
    require_root("rate_limits_pass_the_burst_then_drop_per_source_and_per_64");
    let (mut ebpf, mut protect, verdicts) = setup();
    let mut policy = Policy {
        enabled: 1 << reason::RATE_LIMIT,
        prevent: 1 << reason::RATE_LIMIT,
        ..Policy::default()
    };
    // One packet a second with a burst of 5: within this test's few milliseconds exactly five
    // pass per bucket.
    for c in 0..class::COUNT {
        policy.rate_interval_ns[c] = 1_000_000_000;
        policy.rate_burst_ns[c] = 4_000_000_000;
    }
    protect
        .swap(&build(&aggregate(Vec::new())), policy)
        .expect("swap");
    let syn = |src: [u8; 4]| {
        v4_frame(
            src,
            [10, 203, 0, 1],
            ipproto::TCP,
            &tcp_seg(1, 443, tcp::SYN, &[]),
        )
    };
    let passes = |ebpf: &mut Ebpf, f: &[u8], n: usize| {
        (0..n)
            .filter(|_| run(ebpf, Hook::Ingress, f) == XDP_PASS)
            .count()
    };
    assert_eq!(passes(&mut ebpf, &syn([1, 2, 3, 4]), 12), 5, "SYN burst");
    assert_eq!(
        passes(&mut ebpf, &syn([1, 2, 3, 5]), 3),
        3,
        "another source"
    );
    let ack = v4_frame(
        [1, 2, 3, 4],
        [10, 203, 0, 1],
        ipproto::TCP,
        &tcp_seg(1, 443, tcp::ACK, b"d"),
    );
    assert_eq!(
        passes(&mut ebpf, &ack, 10),
        10,
        "non-SYN TCP is not limited"
    );
    let udp4 = v4_frame(
        [1, 2, 3, 4],
        [10, 203, 0, 1],
        ipproto::UDP,
        &udp(1, 53, b"q"),
    );
    assert_eq!(passes(&mut ebpf, &udp4, 8), 5, "UDP has its own bucket");
    // IPv6: one bucket per /64.
    let ping6 = |src: &str| {
        v6_frame(
            src,
            "fd00:203::1",
            ipproto::ICMPV6,
            &icmp(128, 0, 1, 1, b""),
        )
    };
    assert_eq!(passes(&mut ebpf, &ping6("2001:db9:1:1::1"), 4), 4);
    assert_eq!(
        passes(&mut ebpf, &ping6("2001:db9:1:1::2"), 4),
        1,
        "same /64"
    );
    assert_eq!(
        passes(&mut ebpf, &ping6("2001:db9:1:2::1"), 6),
        5,
        "next /64"
    );
    let nd = v6_frame(
        "2001:db9:1:1::1",
        "fd00:203::1",
        ipproto::ICMPV6,
        &icmp(135, 0, 0, 0, &[0; 20]),
    );
    assert_eq!(
        passes(&mut ebpf, &nd, 10),
        10,
        "neighbour discovery is never limited"
    );
    let c = verdicts.read(Hook::Ingress).expect("counters");
    assert_eq!(
        c.c[vid::DROPPED + usize::from(reason::RATE_LIMIT)],
        7 + 3 + 3 + 1
    );
    // Monitor mode: the same buckets are over, nothing is dropped, every excess is counted.
    protect
        .set_policy(Policy {
            prevent: 0,
            ..policy
        })
        .expect("policy");
    assert_eq!(passes(&mut ebpf, &syn([1, 2, 3, 4]), 4), 4);
    let c = verdicts.read(Hook::Ingress).expect("counters");
    assert_eq!(c.c[vid::WOULD_DROP + usize::from(reason::RATE_LIMIT)], 4);
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn replies_to_the_hosts_own_connections_pass_the_port_policy() {
    require_root("replies_to_the_hosts_own_connections_pass_the_port_policy");
    let (mut ebpf, mut protect, _verdicts) = setup();
    let policy = Policy {
        enabled: 1 << reason::PORT_POLICY,
        prevent: 1 << reason::PORT_POLICY,
        port_enforce: PORTS_TCP | PORTS_UDP,
        ..Policy::default()
    };
    protect
        .swap(&build(&aggregate(Vec::new())), policy)
        .expect("swap");
    let host = [10, 203, 0, 1];
    let web = [93, 184, 216, 34];
    let reply = v4_frame(
        web,
        host,
        ipproto::TCP,
        &tcp_seg(443, 51_000, tcp::SYN | tcp::ACK, &[]),
    );
    assert_eq!(
        run(&mut ebpf, Hook::Ingress, &reply),
        XDP_DROP,
        "unsolicited"
    );
    let open = v4_frame(
        host,
        web,
        ipproto::TCP,
        &tcp_seg(51_000, 443, tcp::SYN, &[]),
    );
    assert_eq!(run(&mut ebpf, Hook::Egress, &open), TC_ACT_PIPE);
    assert_eq!(
        run(&mut ebpf, Hook::Ingress, &reply),
        XDP_PASS,
        "reply to our SYN"
    );
    // A UDP client socket (DNS lookup from an ephemeral port).
    let dns = [9, 9, 9, 9];
    let answer = v4_frame(dns, host, ipproto::UDP, &udp(53, 40_000, b"a"));
    assert_eq!(run(&mut ebpf, Hook::Ingress, &answer), XDP_DROP);
    let query = v4_frame(host, dns, ipproto::UDP, &udp(40_000, 53, b"q"));
    assert_eq!(run(&mut ebpf, Hook::Egress, &query), TC_ACT_PIPE);
    assert_eq!(run(&mut ebpf, Hook::Ingress, &answer), XDP_PASS);
    // An open port needs no record.
    let https = v4_frame(
        web,
        host,
        ipproto::TCP,
        &tcp_seg(40_000, 443, tcp::SYN, &[]),
    );
    assert_eq!(run(&mut ebpf, Hook::Ingress, &https), XDP_PASS);
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn drop_events_carry_reason_list_and_mode() {
    require_root("drop_events_carry_reason_list_and_mode");
    let (mut ebpf, mut protect, verdicts) = setup();
    let mut ring: RingBuf<MapData> = RingBuf::try_from(
        ebpf.take_map(sensor_common::maps::DROPS)
            .expect("drop ring"),
    )
    .expect("ring");
    let policy = Policy {
        enabled: 1 << reason::BLOCKLIST,
        block_lists: 0b110,
        prevent_lists: 0b100,
        // One event per second per CPU and reason.
        event_interval_ns: 1_000_000_000,
        ..Policy::default()
    };
    let entries = vec![(v4(0x0102_0300, 24), 0b010), (v4(0x0102_0304, 32), 0b100)];
    protect
        .swap(&build(&aggregate(entries)), policy)
        .expect("swap");
    let f = |last: u8| {
        v4_frame(
            [1, 2, 3, last],
            [10, 203, 0, 1],
            ipproto::UDP,
            &udp(1, 2, b"x"),
        )
    };
    tests::model::pin_to_current_cpu();
    assert_eq!(run(&mut ebpf, Hook::Ingress, &f(4)), XDP_DROP);
    for _ in 0..5 {
        assert_eq!(run(&mut ebpf, Hook::Ingress, &f(9)), XDP_PASS);
    }
    let mut records = Vec::new();
    while let Some(item) = ring.next() {
        let (rec, frame) = precinct::datapath::heads::parse_record(&item).expect("record");
        records.push((rec, frame.to_vec()));
    }
    assert_eq!(records.len(), 1, "one event within the interval");
    let (rec, frame) = &records[0];
    assert_eq!(rec._pad, [reason::BLOCKLIST, 2, action::DROP]);
    assert_eq!(frame[..], f(4)[..]);
    let c = verdicts.read(Hook::Ingress).expect("counters");
    assert_eq!(c.c[vid::EVENTS], 1);
    assert_eq!(c.c[vid::EVENTS_SUPPRESSED], 5);
    assert_eq!(c.c[vid::LIST_DROPPED + 2], 1);
    assert_eq!(c.c[vid::LIST_WOULD_DROP + 1], 5);
}
