//! `cargo xtask demo`: builds the release binary, creates a two-namespace lab ("portal" and
//! "client" joined by a veth pair), runs the sensor on the portal side, drives real traffic
//! (ping, UDP over IPv4 and IPv6, a TCP connection with data, HTTP, DNS, crafted packets from a
//! blocklisted and a bogon source), prints the EVE records and a metrics summary, and removes the lab, also on Ctrl-C or failure.

use std::{io::BufRead as _, time::Duration};

use anyhow::{anyhow, bail, Context as _};
use tests::{
    agent::Agent,
    lab::{Lab, PORTAL_V4, PORTAL_V6},
    traffic::{CLIENT, DNS_SERVER, HTTP_SERVER, SERVER},
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

/// Two rules the demo traffic trips, written in Suricata's language.
const DEMO_RULES: &str = r#"alert http any any -> any any (msg:"PRECINCT DEMO voter lookup by a script"; flow:established,to_server; http.user_agent; content:"curl/"; startswith; http.uri; content:"/voter/lookup"; classtype:policy-violation; sid:9000001; rev:1;)
alert dns any any -> any any (msg:"PRECINCT DEMO DNS lookup of an ngrok tunnel"; dns.query; content:".ngrok.io"; endswith; nocase; classtype:bad-unknown; sid:9000002; rev:1;)
"#;

/// The demo's blocklist, in Spamhaus DROP format.
const DEMO_LIST: &str = "; demo blocklist (Spamhaus DROP format)\n185.220.101.0/24 ; SBL-DEMO\n";

/// Protection in monitor mode; the demo list alone drops.
const DEMO_CONFIG: &str = r#"[protect]
mode = "monitor"
drop_events_per_second = 100

[[protect.lists]]
name = "demo-drop"
file = "demo-drop.txt"
format = "spamhaus"
mode = "prevent"
"#;

fn endpoint(e: &serde_json::Value, ip: &str, port: &str) -> String {
    let addr = e[ip].as_str().unwrap_or("?");
    match e.get(port).and_then(|p| p.as_u64()) {
        Some(p) if addr.contains(':') => format!("[{addr}]:{p}"),
        Some(p) => format!("{addr}:{p}"),
        None => addr.to_string(),
    }
}

/// One line for a protocol or alert record.
fn summary(e: &serde_json::Value) -> String {
    let t = e["event_type"].as_str().unwrap_or("?");
    // Strings without their JSON quotes; absent values as nothing.
    let v = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let what = match t {
        "http" => format!(
            "{} {} -> {} ({} bytes)",
            v(&e["http"]["http_method"]),
            v(&e["http"]["url"]),
            v(&e["http"]["status"]),
            v(&e["http"]["length"])
        ),
        "dns" => format!(
            "{} {} {}",
            v(&e["dns"]["type"]),
            v(&e["dns"]["queries"][0]["rrname"]),
            v(&e["dns"]["answers"][0]["rdata"])
        ),
        "drop" => format!(
            "{} {} ({}{})",
            v(&e["drop"]["mode"]),
            v(&e["drop"]["reason"]),
            v(&e["drop"]["hook"]),
            match e["drop"].get("list") {
                Some(l) => format!(", list {}", v(l)),
                None => String::new(),
            }
        ),
        "alert" => format!(
            "[{}:{}] {} (severity {})",
            v(&e["alert"]["gid"]),
            v(&e["alert"]["signature_id"]),
            v(&e["alert"]["signature"]),
            v(&e["alert"]["severity"])
        ),
        other => e[other].to_string(),
    };
    format!(
        "{t:<6} {:<22} -> {:<22} {what}",
        endpoint(e, "src_ip", "src_port"),
        endpoint(e, "dest_ip", "dest_port")
    )
}

fn drive(bin: &std::path::Path, lab: &Lab, dir: &std::path::Path) -> anyhow::Result<()> {
    println!(
        "== starting the sensor: precinct run --iface {}",
        lab.portal_if
    );
    let rules = dir.join("demo.rules");
    std::fs::write(&rules, DEMO_RULES).context("writing the demo rules")?;
    let rules = rules.to_str().context("UTF-8 path")?;
    println!("   with two Suricata rules ({rules}): a scripted voter lookup, a DNS lookup of an ngrok tunnel");
    let list = dir.join("demo-drop.txt");
    std::fs::write(&list, DEMO_LIST).context("writing the demo blocklist")?;
    let config = dir.join("precinct.toml");
    std::fs::write(&config, DEMO_CONFIG).context("writing the demo configuration")?;
    let config = config.to_str().context("UTF-8 path")?;
    println!("   and protection in monitor mode, with one blocklist in prevent mode ({config})");
    let mut agent = Agent::start_with(bin, lab, dir, &["--rules", rules, "--config", config]);
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
    let mut web = lab
        .spawn(
            &lab.portal_ns,
            &["python3", "-c", HTTP_SERVER, PORTAL_V4, "8081"],
        )
        .map_err(|e| anyhow!(e))?;
    let mut dns = lab
        .spawn(&lab.portal_ns, &["python3", "-c", DNS_SERVER, PORTAL_V4])
        .map_err(|e| anyhow!(e))?;
    for child in [&mut web, &mut dns] {
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().context("server output")?)
            .read_line(&mut line)
            .context("waiting for the demo servers")?;
    }
    println!(
        "== traffic from the client: 5 pings, UDP (IPv4 and IPv6), one TCP connection, curl, dig"
    );
    lab.exec(&lab.client_ns, &["ping", "-c", "5", "-i", "0.2", PORTAL_V4])
        .map_err(|e| anyhow!(e))?;
    lab.exec(
        &lab.client_ns,
        &["python3", "-c", CLIENT, PORTAL_V4, PORTAL_V6],
    )
    .map_err(|e| anyhow!(e))?;
    let url = format!("http://{PORTAL_V4}:8081/voter/lookup?id=7");
    lab.exec(
        &lab.client_ns,
        &["curl", "-sS", "--max-time", "10", "-o", "/dev/null", &url],
    )
    .map_err(|e| anyhow!(e))?;
    let at = format!("@{PORTAL_V4}");
    for name in ["results.example.gov", "x7k2.ngrok.io"] {
        lab.exec(
            &lab.client_ns,
            &["dig", &at, name, "A", "+tries=1", "+time=5", "+short"],
        )
        .map_err(|e| anyhow!(e))?;
    }
    println!(
        "== crafted packets from the client (hping3): 3 SYNs claiming to come from a blocklisted"
    );
    println!("   network (dropped: the list is in prevent mode), 3 from TEST-NET-1 (a bogon: counted, monitor mode)");
    for src in ["185.220.101.7", "192.0.2.99"] {
        // No replies come back (that is the point), so hping3's exit status says nothing.
        let _ = lab.exec(
            &lab.client_ns,
            &[
                "hping3", "-q", "-c", "3", "-i", "u100000", "-S", "-p", "8081", "-a", src,
                PORTAL_V4,
            ],
        );
    }
    std::thread::sleep(Duration::from_millis(2500));
    let metrics = agent.metrics();
    for child in [&mut server, &mut web, &mut dns] {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!("== stopping the sensor (SIGTERM): it flushes every flow as reason \"shutdown\"");
    agent.stop();

    let events = agent.events();
    println!(
        "\n== EVE records ({}), as a SOC pipeline receives them",
        agent.eve.display()
    );
    for e in &events {
        println!("{e}");
    }
    println!("\n== protocol records and alerts, one line each");
    for e in events.iter().filter(|e| e["event_type"] != "flow") {
        println!("{}", summary(e));
    }
    println!("\n== flow records, one line each");
    println!(
        "{:<9} {:<26} {:<26} {:>6} {:>6} {:>8} {:>8}  state",
        "proto", "client", "server", "pkts>", "pkts<", "bytes>", "bytes<"
    );
    for e in events.iter().filter(|e| e["event_type"] == "flow") {
        let end = |ip: &str, port: &str| endpoint(e, ip, port);
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
    for kind in ["flow", "http", "dns", "alert", "drop"] {
        if !events.iter().any(|e| e["event_type"] == kind) {
            bail!("the sensor wrote no {kind} records");
        }
    }
    Ok(())
}
