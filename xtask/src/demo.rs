//! `cargo xtask demo`: builds the release binary, creates a two-namespace lab ("portal" and
//! "client" joined by a veth pair), runs the sensor on the portal side, drives real traffic
//! (ping, UDP over IPv4 and IPv6, a TCP connection with data), prints the EVE records and a
//! metrics summary, and removes the lab, also on Ctrl-C or failure.

use std::{io::BufRead as _, time::Duration};

use anyhow::{anyhow, bail, Context as _};
use tests::{
    agent::Agent,
    lab::{Lab, PORTAL_V4, PORTAL_V6},
    traffic::{CLIENT, SERVER},
};

use crate::{cargo, is_root, root};

/// Runs the demo.
pub fn run() -> anyhow::Result<()> {
    if !is_root() {
        bail!("the demo creates network namespaces and loads BPF programs: run it as root");
    }
    cargo(&["build", "--release", "-p", "sensor-user"])?;
    let bin = root().join("target/release/precinct");
    println!("== creating the lab: namespaces \"portal\" and \"client\", joined by a veth pair");
    let lab = Lab::create("demo").map_err(|e| anyhow!(e))?;
    let names = [lab.portal_ns.clone(), lab.client_ns.clone()];
    ctrlc::set_handler(move || {
        eprintln!("\ninterrupted: removing the lab");
        for ns in &names {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;
    println!(
        "   portal {} ({} / {PORTAL_V4}, {PORTAL_V6})\n   client {} ({})",
        lab.portal_ns, lab.portal_if, lab.client_ns, lab.client_if
    );
    let dir = std::env::temp_dir().join(format!("precinct-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("creating a temporary directory")?;
    let result = drive(&bin, &lab, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    drop(lab);
    println!("== lab removed");
    result
}

fn drive(bin: &std::path::Path, lab: &Lab, dir: &std::path::Path) -> anyhow::Result<()> {
    println!(
        "== starting the sensor: precinct run --iface {}",
        lab.portal_if
    );
    let mut agent = Agent::start_with(bin, lab, dir, &[]);
    let mut server = lab
        .spawn(
            &lab.portal_ns,
            &["python3", "-c", SERVER, "3", PORTAL_V4, PORTAL_V6],
        )
        .map_err(|e| anyhow!(e))?;
    let mut ready = String::new();
    std::io::BufReader::new(server.stdout.as_mut().context("server output")?)
        .read_line(&mut ready)
        .context("waiting for the demo servers")?;
    println!("== traffic from the client: 5 pings, UDP (IPv4 and IPv6), one TCP connection");
    lab.exec(&lab.client_ns, &["ping", "-c", "5", "-i", "0.2", PORTAL_V4])
        .map_err(|e| anyhow!(e))?;
    lab.exec(
        &lab.client_ns,
        &["python3", "-c", CLIENT, PORTAL_V4, PORTAL_V6],
    )
    .map_err(|e| anyhow!(e))?;
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = agent.metrics();
    let _ = server.kill();
    let _ = server.wait();
    println!("== stopping the sensor (SIGTERM): it flushes every flow as reason \"shutdown\"");
    agent.stop();

    println!("\n== EVE flow records ({})", agent.eve.display());
    let events = agent.events();
    for e in &events {
        println!("{e}");
    }
    println!("\n== the same, one line each");
    println!(
        "{:<9} {:<26} {:<26} {:>6} {:>6} {:>8} {:>8}  state",
        "proto", "client", "server", "pkts>", "pkts<", "bytes>", "bytes<"
    );
    for e in &events {
        let end = |ip: &str, port: &str| {
            let addr = e[ip].as_str().unwrap_or("?");
            match e.get(port).and_then(|p| p.as_u64()) {
                Some(p) if addr.contains(':') => format!("[{addr}]:{p}"),
                Some(p) => format!("{addr}:{p}"),
                None => addr.to_string(),
            }
        };
        let f = &e["flow"];
        let n = |k: &str| f[k].as_u64().unwrap_or(0);
        println!(
            "{:<9} {:<26} {:<26} {:>6} {:>6} {:>8} {:>8}  {}",
            e["proto"].as_str().unwrap_or("?"),
            end("src_ip", "src_port"),
            end("dest_ip", "dest_port"),
            n("pkts_toserver"),
            n("pkts_toclient"),
            n("bytes_toserver"),
            n("bytes_toclient"),
            f["state"].as_str().unwrap_or("?")
        );
    }
    println!(
        "\n== metrics (http://127.0.0.1:9727/metrics inside the portal namespace), non-zero series"
    );
    for line in metrics.0.lines() {
        if line.starts_with('#') || line.ends_with(" 0") {
            continue;
        }
        println!("{line}");
    }
    if events.is_empty() {
        bail!("the sensor wrote no flow records");
    }
    Ok(())
}
