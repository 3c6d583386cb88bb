//! Per-packet cost of the XDP ingress program through `BPF_PROG_TEST_RUN`, beside an empty
//! XDP program measured in the same run, as a ratio: IPv4/TCP, IPv6/UDP and VLAN frames, with
//! 1 and with 100,000 live flows (packets of a flow past its head, with the default head
//! settings); then the flow-map kinds against each other; then what flow heads cost.
//!
//! The ingress program is the one the agent loads (the production object); the empty baseline
//! and the other flow-map kinds come from the benchmark object, which runs the same accounting
//! code (`sensor-ebpf/src/kernel.rs`).
//!
//! `cargo xtask bench` (root). The kernel reports the mean time per run in whole ns; every
//! figure is the median of several runs of `REPEAT` repetitions.

use aya::{
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf, EbpfLoader,
};
use precinct::datapath::{heads, program_mut, Maps, EBPF_BENCH_OBJECT, EBPF_OBJECT};
use sensor_common::{
    bench,
    flow::{FlowKey, FlowStats},
    head::Settings,
    maps, parse, programs,
};
use tests::packets::{eth, ipv4, tcp, udp, v4_frame, v6_frame, V4};

const REPEAT: u32 = 2_000_000;
const RUNS: usize = 7;
const LIVE_FLOWS: u32 = 100_000;
const CAPACITY: u32 = 131_072;

fn load() -> Ebpf {
    load_with(&Settings::DEFAULT)
}

/// The production object with its ingress program loaded.
fn load_with(settings: &Settings) -> Ebpf {
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(maps::FLOWS, CAPACITY)
        .load(EBPF_OBJECT)
        .expect("load the eBPF object (run as root)");
    heads::write_settings(&mut ebpf, settings).expect("head settings");
    let p: &mut Xdp = program_mut(&mut ebpf, programs::INGRESS).expect("program");
    p.load().expect("verifier");
    ebpf
}

/// The benchmark object with every program loaded.
fn load_bench() -> Ebpf {
    let mut loader = EbpfLoader::new();
    loader.map_max_entries(maps::FLOWS, CAPACITY);
    for name in [
        bench::maps::FLOWS_LRU_PERCPU,
        bench::maps::FLOWS_HASH,
        bench::maps::FLOWS_LRU,
    ] {
        loader.map_max_entries(name, CAPACITY);
    }
    let mut ebpf = loader
        .load(EBPF_BENCH_OBJECT)
        .expect("load the benchmark eBPF object (run as root)");
    heads::write_settings(&mut ebpf, &Settings::DEFAULT).expect("head settings");
    for name in [
        bench::programs::EMPTY,
        bench::programs::INGRESS_PERCPU_HASH,
        bench::programs::INGRESS_LRU_PERCPU,
        bench::programs::INGRESS_HASH,
        bench::programs::INGRESS_LRU,
    ] {
        let p: &mut Xdp = program_mut(&mut ebpf, name).expect("program");
        p.load().expect("verifier");
    }
    ebpf
}

/// Median ns per run of `prog` on `frame`.
fn measure(ebpf: &mut Ebpf, prog: &str, frame: &[u8]) -> u64 {
    let p: &mut Xdp = program_mut(ebpf, prog).expect("program");
    let mut samples: Vec<u64> = (0..RUNS)
        .map(|_| {
            let r = p
                .test_run(TestRunOptions {
                    data_in: Some(frame),
                    repeat: REPEAT,
                    ..Default::default()
                })
                .expect("test run");
            r.duration.as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[RUNS / 2]
}

fn filler_key(i: u32) -> FlowKey {
    let mut k = FlowKey {
        proto: 17,
        family: 4,
        port_a: 1000,
        port_b: 53,
        ifindex: 1,
        ..Default::default()
    };
    k.addr_a[..4].copy_from_slice(&[10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
    k.addr_b[..4].copy_from_slice(&[203, 0, 113, 1]);
    k
}

/// Fills the named flow map with `n` unrelated flows (per-CPU maps on every CPU).
fn prefill(ebpf: &mut Ebpf, map: &str, n: u32) {
    let stats = FlowStats {
        pkts: [1, 1],
        bytes: [100, 100],
        first_ns: 1,
        last_ns: 1,
        ..Default::default()
    };
    let m = ebpf.map_mut(map).expect("map");
    match map {
        bench::maps::FLOWS_HASH | bench::maps::FLOWS_LRU => {
            let mut h: aya::maps::HashMap<_, FlowKey, FlowStats> =
                aya::maps::HashMap::try_from(m).expect("hash map");
            for i in 0..n {
                h.insert(filler_key(i), stats, 0).expect("insert");
            }
        }
        _ => {
            let mut h: aya::maps::PerCpuHashMap<_, FlowKey, FlowStats> =
                aya::maps::PerCpuHashMap::try_from(m).expect("per-CPU hash map");
            let cpus = aya::util::nr_cpus().expect("cpus");
            for i in 0..n {
                let values = aya::maps::PerCpuValues::try_from(vec![stats; cpus]).expect("values");
                h.insert(filler_key(i), values, 0).expect("insert");
            }
        }
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the datapath benchmark loads BPF programs: run it as root (cargo xtask bench)");
        std::process::exit(1);
    }
    let frames = [
        (
            "IPv4/TCP",
            v4_frame(
                [192, 0, 2, 1],
                [198, 51, 100, 2],
                6,
                &tcp(40000, 443, 0x10, &[0u8; 64]),
            ),
        ),
        (
            "IPv6/UDP",
            v6_frame("2001:db8::1", "2001:db8::2", 17, &udp(5000, 53, &[0u8; 64])),
        ),
        (
            "VLAN IPv4/TCP",
            eth(
                &[42],
                0x0800,
                &ipv4(
                    &V4::new([192, 0, 2, 1], [198, 51, 100, 2], 6),
                    &tcp(40000, 443, 0x10, &[0u8; 64]),
                ),
            ),
        ),
    ];
    for (_, f) in &frames {
        assert_eq!(
            parse(f.as_slice()).outcome,
            sensor_common::parse::Outcome::Ok
        );
    }
    println!(
        "XDP ingress per-packet cost via BPF_PROG_TEST_RUN (median of {RUNS} x {REPEAT} runs)"
    );
    println!(
        "{:<15} {:>12} {:>10} {:>10} {:>7}",
        "frame", "live flows", "ingress", "empty", "ratio"
    );
    let mut worst: f64 = 0.0;
    let mut baseline = load_bench();
    for live in [1u32, LIVE_FLOWS] {
        let mut ebpf = load();
        if live > 1 {
            prefill(&mut ebpf, maps::FLOWS, live - 1);
        }
        for (name, frame) in &frames {
            // The first run creates the packet's own flow; the measured runs update it.
            measure(&mut ebpf, programs::INGRESS, frame);
            let full = measure(&mut ebpf, programs::INGRESS, frame);
            let empty = measure(&mut baseline, bench::programs::EMPTY, frame);
            let ratio = full as f64 / empty.max(1) as f64;
            worst = worst.max(ratio);
            println!(
                "{name:<15} {live:>12} {:>8} ns {:>7} ns {ratio:>7.2}",
                full, empty
            );
        }
        let flows = Maps::take(&mut ebpf)
            .expect("maps")
            .flows()
            .expect("flows")
            .len();
        assert!(
            flows >= live as usize,
            "the map holds the live flows ({flows})"
        );
    }
    println!("worst ratio to the empty program: {worst:.2} (target: at most 2.0)");

    println!();
    println!("Flow-map kinds, IPv4/TCP, {LIVE_FLOWS} live flows (same accounting code; shared maps without atomics)");
    println!(
        "{:<28} {:>10} {:>10} {:>7}",
        "map", "ingress", "empty", "ratio"
    );
    let (_, frame) = &frames[0];
    for (label, prog, map) in [
        (
            "per-CPU hash (in use)",
            bench::programs::INGRESS_PERCPU_HASH,
            maps::FLOWS,
        ),
        (
            "LRU per-CPU hash",
            bench::programs::INGRESS_LRU_PERCPU,
            bench::maps::FLOWS_LRU_PERCPU,
        ),
        (
            "hash (shared)",
            bench::programs::INGRESS_HASH,
            bench::maps::FLOWS_HASH,
        ),
        (
            "LRU hash (shared)",
            bench::programs::INGRESS_LRU,
            bench::maps::FLOWS_LRU,
        ),
    ] {
        let mut ebpf = load_bench();
        prefill(&mut ebpf, map, LIVE_FLOWS - 1);
        measure(&mut ebpf, prog, frame);
        let full = measure(&mut ebpf, prog, frame);
        let empty = measure(&mut ebpf, bench::programs::EMPTY, frame);
        println!(
            "{label:<28} {full:>7} ns {empty:>7} ns {:>7.2}",
            full as f64 / empty.max(1) as f64
        );
    }
    println!();
    println!("Flow creation (a new flow per run), IPv4/UDP: first-packet path");
    let mut ebpf = load();
    let mut created = Vec::new();
    for i in 0..RUNS as u16 {
        let f = v4_frame(
            [192, 0, 2, 9],
            [198, 51, 100, 9],
            17,
            &udp(2000 + i, 53, b"x"),
        );
        let p: &mut Xdp = program_mut(&mut ebpf, programs::INGRESS).expect("program");
        // repeat = 1: only the first run of a frame creates its flow.
        let r = p
            .test_run(TestRunOptions {
                data_in: Some(&f),
                repeat: 1,
                ..Default::default()
            })
            .expect("run");
        created.push(r.duration.as_nanos() as u64);
    }
    created.sort_unstable();
    println!(
        "median {} ns for a packet that creates its flow (single runs, coarse)",
        created[RUNS / 2]
    );
    heads_cost(&frames[0].1);
}

/// Median ns per run of the ingress program on `frame` with `repeat` runs, draining the ring
/// buffer after each so that every record finds room.
fn measure_draining(ebpf: &mut Ebpf, frame: &[u8], repeat: u32) -> u64 {
    let mut ring = heads::take_ring(ebpf).expect("ring");
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let p: &mut Xdp = program_mut(ebpf, programs::INGRESS).expect("program");
        let r = p
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..Default::default()
            })
            .expect("test run");
        samples.push(r.duration.as_nanos() as u64);
        while ring.next().is_some() {}
    }
    samples.sort_unstable();
    samples[RUNS / 2]
}

/// The per-packet cost of flow heads on IPv4/TCP, 1 live flow: off, past the head (what most
/// packets pay), with 1-in-100 sampling, and every packet copied into the ring buffer.
fn heads_cost(frame: &[u8]) {
    let mut baseline = load_bench();
    println!();
    println!("Flow heads, IPv4/TCP ({} bytes), 1 live flow", frame.len());
    println!(
        "{:<34} {:>10} {:>10} {:>7}",
        "case", "ingress", "empty", "ratio"
    );
    let cases = [
        (
            "heads off (head_bytes = 0)",
            Settings {
                head_bytes: 0,
                ..Settings::DEFAULT
            },
        ),
        ("past the head (default settings)", Settings::DEFAULT),
        (
            "past the head, sampling 1 in 100",
            Settings {
                sample_one_in: 100,
                ..Settings::DEFAULT
            },
        ),
        (
            "every packet copied (in the head)",
            Settings {
                head_bytes: u32::MAX,
                ..Settings::DEFAULT
            },
        ),
    ];
    for (label, settings) in cases {
        let mut ebpf = load_with(&settings);
        let full = if settings.head_bytes == u32::MAX {
            // 20,000 records of 208 bytes fit the 8 MiB ring: none fails for lack of room.
            measure_draining(&mut ebpf, frame, 20_000)
        } else {
            // The first run spends the flow's head; the measured runs are past it.
            measure(&mut ebpf, programs::INGRESS, frame);
            measure(&mut ebpf, programs::INGRESS, frame)
        };
        let empty = measure(&mut baseline, bench::programs::EMPTY, frame);
        println!(
            "{label:<34} {full:>7} ns {empty:>7} ns {:>7.2}",
            full as f64 / empty.max(1) as f64
        );
    }
}
