//! Flow-head throughput: records per second from the XDP ingress program through the
//! `PRECINCT_HEADS` ring buffer with no record lost, at paced rates.
//!
//! `BPF_PROG_TEST_RUN` drives the program on 65,536 distinct flows in turn, one packet per
//! call (a call with `repeat` above 1 costs the harness about 20 ms here, whatever the
//! program does), every packet part of its flow's head (the budget is unlimited), while a
//! consumer reads the ring concurrently: first a
//! bare reader (poll, read, copy, count), then the agent's own path (`live::Live`: the reader
//! thread, the bounded queue and the inspection pipeline). Losses are failed reservations (the
//! ring was full) plus queue overflows. `cargo xtask bench` (root).

use std::{
    os::fd::AsRawFd as _,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use aya::{
    maps::{MapData, RingBuf},
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf,
};
use precinct::{
    datapath::{self, heads, program_mut, LoadOptions, Maps},
    eve::EveWriter,
    inspect::InspectConfig,
    live::Live,
    metrics::Metrics,
};
use sensor_common::{counters::id, head::Settings, programs, Hook};
use tests::session::udp_frame;

/// Distinct flows the producer cycles through.
const FLOWS: u32 = 65_536;
/// How long each rate is held.
const STEP: Duration = Duration::from_secs(1);
/// Offered loads: a target rate in records per second with one packet per call (0: as fast
/// as calls go), or unpaced bursts of this many packets of one flow per call (the kernel runs
/// a burst at about 3 million packets a second; 8 MiB hold about 40,000 of these records).
const LOADS: [Load; 9] = [
    Load::Rate(50_000),
    Load::Rate(100_000),
    Load::Rate(200_000),
    Load::Rate(0),
    Load::Burst(4_096),
    Load::Burst(16_384),
    Load::Burst(32_768),
    Load::Burst(65_536),
    Load::Burst(131_072),
];

#[derive(Clone, Copy)]
enum Load {
    Rate(u64),
    Burst(u32),
}
const PAYLOAD: usize = 64;

fn load_program() -> Ebpf {
    let mut ebpf = datapath::load_with(&LoadOptions {
        flow_capacity: 262_144,
        heads: Settings {
            head_bytes: u32::MAX,
            ..Settings::DEFAULT
        },
        ..LoadOptions::default()
    })
    .expect("load the eBPF object (run as root)");
    let p: &mut Xdp = program_mut(&mut ebpf, programs::INGRESS).expect("program");
    p.load().expect("verifier");
    ebpf
}

fn frame(i: u32) -> Vec<u8> {
    let src = [10, 64 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
    udp_frame(src, 10_000, [10, 0, 0, 1], 9999, &[0u8; PAYLOAD])
}

/// Drives the program at `rate` records/s (0: unpaced) for one step; returns the records
/// attempted and the seconds it took.
fn produce(ebpf: &mut Ebpf, frames: &[Vec<u8>], load: Load) -> (u64, f64) {
    let p: &mut Xdp = program_mut(ebpf, programs::INGRESS).expect("program");
    let start = Instant::now();
    let mut sent = 0u64;
    let rate = match load {
        Load::Rate(r) => r,
        Load::Burst(repeat) => {
            let mut flow = 0;
            while start.elapsed() < STEP {
                p.test_run(TestRunOptions {
                    data_in: Some(&frames[flow % frames.len()]),
                    repeat,
                    ..Default::default()
                })
                .expect("test run");
                sent += u64::from(repeat);
                flow += 1;
            }
            return (sent, start.elapsed().as_secs_f64());
        }
    };
    while start.elapsed() < STEP {
        if rate > 0 && sent as f64 >= rate as f64 * start.elapsed().as_secs_f64() {
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        // Between clock reads, a small burst.
        for _ in 0..16 {
            let f = &frames[(sent % frames.len() as u64) as usize];
            p.test_run(TestRunOptions {
                data_in: Some(f),
                ..Default::default()
            })
            .expect("test run");
            sent += 1;
        }
    }
    (sent, start.elapsed().as_secs_f64())
}

/// A bare consumer: reads, copies and counts records until stopped and the ring is empty.
fn bare_reader(
    mut ring: RingBuf<MapData>,
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let fd = ring.as_raw_fd();
        loop {
            let stopping = stop.load(Ordering::Acquire);
            while let Some(item) = ring.next() {
                std::hint::black_box(item.to_vec());
                read.fetch_add(1, Ordering::Relaxed);
            }
            if stopping {
                return;
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the ring's descriptor, kept open by `ring`.
            unsafe { libc::poll(&mut pfd, 1, 100) };
        }
    })
}

struct Step {
    attempted: u64,
    secs: f64,
    delivered: u64,
    lost: u64,
    drain_ms: f64,
}

fn step(frames: &[Vec<u8>], load: Load, agent: bool) -> Step {
    let mut ebpf = load_program();
    let maps = Maps::take(&mut ebpf).expect("maps");
    let ring = heads::take_ring(&mut ebpf).expect("ring");
    let (attempted, secs, delivered, overflows, drain_ms);
    if agent {
        let metrics = Metrics::new().expect("metrics");
        let counters = metrics.live_counters();
        let cfg = InspectConfig {
            midstream: true,
            flow_records: false,
            ..InspectConfig::default()
        };
        let eve = EveWriter::from_writer(Box::new(std::io::sink()));
        let live = Live::start(ring, cfg, None, eve, 65_536, counters.clone()).expect("live");
        (attempted, secs) = produce(&mut ebpf, frames, load);
        let t = Instant::now();
        live.stop().expect("stop");
        drain_ms = t.elapsed().as_secs_f64() * 1e3;
        overflows = counters.queue_overflows.get();
        delivered = counters.records.get() - overflows;
    } else {
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(AtomicU64::new(0));
        let reader = bare_reader(ring, stop.clone(), read.clone());
        (attempted, secs) = produce(&mut ebpf, frames, load);
        let t = Instant::now();
        stop.store(true, Ordering::Release);
        reader.join().expect("reader");
        drain_ms = t.elapsed().as_secs_f64() * 1e3;
        overflows = 0;
        delivered = read.load(Ordering::Relaxed);
    }
    let c = maps.counters(Hook::Ingress).expect("counters");
    assert_eq!(
        c.c[id::HEAD_RECORDS] + c.c[id::RINGBUF_RESERVE_FAILURES],
        attempted,
        "every packet is a record or a counted failure"
    );
    assert_eq!(c.c[id::HEAD_RECORDS], delivered + overflows);
    Step {
        attempted,
        secs,
        delivered,
        lost: c.c[id::RINGBUF_RESERVE_FAILURES] + overflows,
        drain_ms,
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the flow-head benchmark loads BPF programs: run it as root (cargo xtask bench)");
        std::process::exit(1);
    }
    let frames: Vec<Vec<u8>> = (0..FLOWS).map(frame).collect();
    println!(
        "Flow-head records through the ring buffer ({}-byte frames, {FLOWS} flows, 8 MiB \
         ring, {} s per rate)",
        frames[0].len(),
        STEP.as_secs()
    );
    for (label, agent) in [
        ("bare ring reader", false),
        ("agent: reader + queue + pipeline", true),
    ] {
        println!();
        println!("consumer: {label}");
        println!(
            "{:>14} {:>14} {:>14} {:>10} {:>10}",
            "load", "offered/s", "delivered/s", "lost", "drain ms"
        );
        let mut best = 0.0f64;
        for load in LOADS {
            let s = step(&frames, load, agent);
            let offered = s.attempted as f64 / s.secs;
            let delivered = s.delivered as f64 / s.secs;
            if s.lost == 0 {
                best = best.max(delivered);
            }
            let target = match load {
                Load::Rate(0) => "unpaced".to_string(),
                Load::Rate(r) => r.to_string(),
                Load::Burst(n) => format!("bursts {n}"),
            };
            println!(
                "{target:>14} {offered:>14.0} {delivered:>14.0} {:>10} {:>10.1}",
                s.lost, s.drain_ms
            );
        }
        println!("highest rate with zero loss: {best:.0} records/s");
    }
}
