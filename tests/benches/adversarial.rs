//! Cost per packet under adversarial input, at 1x, 2x and 4x size: `precinct replay` (default
//! settings, as users run it) on captures this bench builds, each of one shape an attacker
//! controls:
//!
//! - unfinished fragmented datagrams: first fragments from random sources, none completed;
//! - long out-of-order trains: TCP connections whose first data segment comes last, so every
//!   other segment waits for it (the train's length grows with the size);
//! - one-packet flows: UDP packets from distinct sources.
//!
//! Time per packet is the replay's wall time less that of an empty capture (start-up),
//! divided by the packets. It must not grow more than 1.5x from 1x to 4x: cost linear in what
//! is held, not quadratic. `cargo xtask bench` runs it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{
    packets::{eth, ipv4, udp, V4},
    rng::Rng,
    session::{udp_frame, write_pcap, TcpSession},
};

const SERVER: [u8; 4] = [198, 51, 100, 20];

fn precinct_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/precinct")
}

/// Best of two wall times of a default `precinct replay` of `pcap`.
fn replay(pcap: &Path) -> Duration {
    (0..2)
        .map(|_| {
            let started = Instant::now();
            let out = Command::new(precinct_bin())
                .args(["replay", "--pcap"])
                .arg(pcap)
                .arg("--eve")
                .arg(pcap.with_extension("eve.json"))
                .stdout(Stdio::null())
                .output()
                .expect("run precinct replay");
            let wall = started.elapsed();
            assert!(
                out.status.success(),
                "replay of {}: {}",
                pcap.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            wall
        })
        .min()
        .expect("two runs")
}

fn src(rng: &mut Rng) -> [u8; 4] {
    // 10.0.0.0/8 and beyond: any source an attacker picks.
    let r = rng.next() as u32;
    [
        10 + (r >> 24) as u8 % 100,
        (r >> 16) as u8,
        (r >> 8) as u8,
        r as u8,
    ]
}

fn fragments(n: usize, rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut h = V4::new(src(rng), SERVER, 17);
            h.frag = 0x2000; // more fragments follow; they never come
            let mut pkt = ipv4(&h, &udp(5353, 53, &[0x41; 64]));
            pkt[4..6].copy_from_slice(&(i as u16).to_be_bytes());
            eth(&[], 0x0800, &pkt)
        })
        .collect()
}

fn out_of_order(train: usize, connections: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for c in 0..connections {
        let client = [192, 0, 2, (c % 250) as u8 + 1];
        let mut s = TcpSession::new(client, 20_000 + c as u16, SERVER, 80);
        frames.extend(s.handshake());
        let data = vec![b'z'; train * 64];
        let mut segs = s.client_data(&data, 64);
        // The first segment last: every other one waits for it.
        let first = segs.remove(0);
        segs.push(first);
        frames.extend(segs);
        frames.push(s.server_ack());
        frames.extend(s.close());
    }
    frames
}

fn one_packet_flows(n: usize, rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| udp_frame(src(rng), 1024 + (i % 60_000) as u16, SERVER, 53, b"x"))
        .collect()
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/adversarial");
    std::fs::create_dir_all(&dir).expect("bench dir");
    assert!(
        precinct_bin().exists(),
        "build the release binary first (cargo xtask bench does)"
    );
    let empty = dir.join("empty.pcap");
    write_pcap(&empty, &[], 1_790_000_000, 10).expect("write");
    let startup = replay(&empty);
    println!(
        "Adversarial input, default settings (start-up {:.1} ms subtracted):",
        startup.as_secs_f64() * 1e3
    );
    type Build = fn(usize) -> Vec<Vec<u8>>;
    let shapes: [(&str, Build); 3] = [
        ("unfinished fragmented datagrams (50k per 1x)", |k| {
            fragments(50_000 * k, &mut Rng(7))
        }),
        (
            "out-of-order trains (25 connections, 2000 segments per 1x)",
            |k| out_of_order(2_000 * k, 25),
        ),
        ("one-packet flows (250k per 1x)", |k| {
            one_packet_flows(250_000 * k, &mut Rng(11))
        }),
    ];
    let mut worst: f64 = 0.0;
    for (name, build) in shapes {
        let mut per_packet = Vec::new();
        for k in [1usize, 2, 4] {
            let frames = build(k);
            let pcap = dir.join(format!(
                "{}-{k}x.pcap",
                name.split(' ').next().unwrap_or("x")
            ));
            // 10 µs apart: the whole capture stays well inside every timeout.
            write_pcap(&pcap, &frames, 1_790_000_000, 10).expect("write");
            let wall = replay(&pcap).saturating_sub(startup);
            let ns = wall.as_nanos() as f64 / frames.len() as f64;
            per_packet.push(ns);
            let _ = std::fs::remove_file(&pcap);
            let _ = std::fs::remove_file(pcap.with_extension("eve.json"));
        }
        let growth = per_packet[2] / per_packet[0];
        worst = worst.max(growth);
        println!(
            "{name}: {:.0} / {:.0} / {:.0} ns per packet at 1x / 2x / 4x; 4x/1x = {growth:.2} (target: at most 1.5)",
            per_packet[0], per_packet[1], per_packet[2]
        );
    }
    println!(
        "adversarial growth, worst shape: {worst:.2} (target: at most 1.5){}",
        if worst <= 1.5 { "" } else { " NOT MET" }
    );
}
