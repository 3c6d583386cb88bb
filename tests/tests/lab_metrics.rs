//! Namespace lab for the agent's metrics and health: a real Prometheus server scrapes the
//! agent in the portal namespace and a query returns its series; the served page passes
//! `promtool check metrics`; every query of the Grafana dashboard evaluates; `precinct status`
//! shows the agent; and `/healthz` turns 503 when the interface the programs are attached to
//! is deleted behind the agent's back.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::{
    agent::{precinct_bin, Agent},
    lab::{Lab, PORTAL_V4},
    prometheus::{dashboard, dashboard_exprs, instant, promtool_check, Prometheus},
    require_root,
};

const METRICS: &str = "127.0.0.1:9727";

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pct-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `GET /healthz` inside `ns`: the status code and the body.
fn healthz(ns: &str) -> (u16, String) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "--max-time",
            "5",
            "-w",
            "\n%{http_code}",
        ])
        .arg(format!("http://{METRICS}/healthz"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("a status line");
    (code.trim().parse().expect("status code"), body.to_string())
}

/// `precinct status ARGS` inside `ns`.
fn status(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(precinct_bin())
        .args(["status", "--metrics", METRICS])
        .args(args)
        .output()
        .expect("run precinct status")
}

fn ping(lab: &Lab, count: &str) {
    lab.exec(
        &lab.client_ns,
        &["ping", "-c", count, "-i", "0.05", "-W", "1", PORTAL_V4],
    )
    .expect("ping");
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn prometheus_scrapes_the_agent() {
    require_root("prometheus_scrapes_the_agent");
    let lab = Lab::create("met").expect("create the lab");
    let dir = temp_dir("lab-metrics");
    let config = dir.join("precinct.toml");
    std::fs::write(
        &config,
        "[sensor]\nid = \"lab-sensor\"\norganization = \"Lab County\"\nasset_role = \"results-site\"\n",
    )
    .expect("config");
    let mut agent = Agent::start(
        &lab,
        &dir,
        &[
            "--xdp-mode",
            "generic",
            "--config",
            config.to_str().expect("UTF-8"),
        ],
    );
    ping(&lab, "5");
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent
        .metrics()
        .value("precinct_packets_total{hook=\"ingress\"}")
        < 5
    {
        assert!(
            Instant::now() < deadline,
            "the agent did not count the pings"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The page as served, with traffic in it, is clean for Prometheus's own linter.
    let page = agent.metrics().0;
    if let Err(e) = promtool_check(&page) {
        panic!("{e}\n{page}");
    }

    let prom = Prometheus::start(&lab.portal_ns, &dir.join("prometheus"), METRICS);
    let series = prom.wait_for(
        "precinct_packets_total{hook=\"ingress\"}",
        Duration::from_secs(30),
        |r| {
            r.iter()
                .any(|s| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()) >= Some(5.0))
        },
    );
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0]["metric"]["job"], "precinct");
    assert_eq!(series[0]["metric"]["instance"], METRICS);
    assert_eq!(series[0]["metric"]["hook"], "ingress");
    let up = prom.wait_for("up{job=\"precinct\"}", Duration::from_secs(10), |r| {
        r.len() == 1 && r[0]["value"][1] == "1"
    });
    assert_eq!(up.len(), 1);
    let info = prom.wait_for("precinct_sensor_info", Duration::from_secs(10), |r| {
        !r.is_empty()
    });
    assert_eq!(info[0]["metric"]["sensor_id"], "lab-sensor");
    let attach = prom.wait_for("precinct_xdp_attach_info", Duration::from_secs(10), |r| {
        !r.is_empty()
    });
    assert_eq!(attach[0]["metric"]["interface"], lab.portal_if.as_str());
    assert_eq!(attach[0]["metric"]["mode"], "generic");
    prom.wait_for("precinct_healthy", Duration::from_secs(10), |r| {
        r.len() == 1 && r[0]["value"][1] == "1"
    });

    // Every dashboard query is valid PromQL for this server, and the rates have data.
    for expr in dashboard_exprs(&dashboard()) {
        if expr.starts_with("label_values(") {
            continue;
        }
        let q = instant(&expr);
        let answer: Value = prom.query(&q);
        assert_eq!(answer["status"], "success", "{q}: {answer}");
    }
    prom.wait_for(
        &instant("sum by (instance, hook) (rate(precinct_packets_total{instance=~\"$instance\"}[$__rate_interval]))"),
        Duration::from_secs(15),
        |r| r.len() == 2,
    );

    // One screen for the operator, and the same as JSON.
    let out = status(&lab.portal_ns, &[]);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{screen}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "sensor lab-sensor · Lab County · results-site",
        "health       OK",
        "LOSSES       none",
    ] {
        assert!(screen.contains(want), "{want:?} in\n{screen}");
    }
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with(&format!("  {}", lab.portal_if))
                && l.contains("generic")
                && l.ends_with("yes")),
        "{screen}"
    );
    let out = status(&lab.portal_ns, &["--json", "--interval", "0.5"]);
    let st: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(st["healthy"], true);
    assert_eq!(st["interfaces"][0]["name"], lab.portal_if.as_str());
    assert!(
        st["traffic"][0]["packets"]["total"].as_f64() >= Some(5.0),
        "{st}"
    );

    drop(prom);
    // A clean stop detaches the programs: that is no health failure to log.
    let log = agent.stop();
    assert!(!log.contains("health check"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `bpftool -j ARGS`.
fn bpftool(args: &[&str]) -> Value {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .expect("run bpftool (`cargo xtask setup` installs it)");
    assert!(
        out.status.success(),
        "bpftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("bpftool -j prints JSON")
}

/// The id of the XDP program on the lab's portal interface.
fn xdp_prog(lab: &Lab) -> u64 {
    let out = lab
        .exec(
            &lab.portal_ns,
            &["ip", "-j", "link", "show", &lab.portal_if],
        )
        .expect("ip link show");
    let links: Value = serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
    links[0]["xdp"]["prog"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no XDP program on {}: {links}", lab.portal_if))
}

/// The BPF link of this agent's program of `kind`: the XDP link runs `xdp`; the TCX link
/// runs a program sharing maps with it (links are global, and other agents may run).
fn agent_link(xdp: u64, kind: &str) -> u64 {
    let maps = |prog: u64| -> Vec<u64> {
        bpftool(&["prog", "show", "id", &prog.to_string()])["map_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    let ours = maps(xdp);
    let links = bpftool(&["link", "show"]);
    links
        .as_array()
        .expect("links")
        .iter()
        .find(|l| {
            let prog = l["prog_id"].as_u64().unwrap_or(0);
            match kind {
                "xdp" => l["type"] == "xdp" && prog == xdp,
                // bpftool 7.1 prints BPF_LINK_TYPE_TCX (11) as a number.
                _ => {
                    (l["type"] == "tcx" || l["type"] == 11)
                        && maps(prog).iter().any(|m| ours.contains(m))
                }
            }
        })
        .and_then(|l| l["id"].as_u64())
        .unwrap_or_else(|| panic!("no {kind} link of XDP program {xdp}: {links}"))
}

/// Waits (up to 10 s) until `/healthz` fails; its body.
fn wait_unhealthy(ns: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = healthz(ns);
        if code != 200 {
            assert_eq!(code, 503, "{body}");
            assert!(body.starts_with("unhealthy\n"), "{body}");
            return body;
        }
        assert!(Instant::now() < deadline, "/healthz still says ok");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[cfg_attr(
    not(privileged),
    ignore = "needs root: BPF programs and network namespaces"
)]
fn healthz_fails_when_a_program_is_detached() {
    require_root("healthz_fails_when_a_program_is_detached");
    let lab = Lab::create("hlz").expect("create the lab");
    let dir = temp_dir("lab-healthz");
    let check = format!("attachment:{}", lab.portal_if);
    let check_series = format!("precinct_health_check_ok{{check=\"{check}\"}}");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join(sub)).expect("agent dir");
    }

    // `ip link set dev IF xdp off` cannot remove a BPF link; `bpftool link detach` can.
    let mut agent = Agent::start(&lab, &dir.join("a"), &["--xdp-mode", "generic"]);
    assert_eq!(healthz(&lab.portal_ns), (200, "ok\n".to_string()));
    assert_eq!(agent.metrics().value(&check_series), 1);
    let tc = agent_link(xdp_prog(&lab), "tcx");
    bpftool(&["link", "detach", "id", &tc.to_string()]);
    let body = wait_unhealthy(&lab.portal_ns);
    assert!(
        body.contains(&format!("{check}: the TC egress program (id ")),
        "{body}"
    );
    agent.stop();

    let mut agent = Agent::start(&lab, &dir.join("b"), &["--xdp-mode", "generic"]);
    assert_eq!(healthz(&lab.portal_ns).0, 200);
    let xdp = xdp_prog(&lab);
    bpftool(&["link", "detach", "id", &agent_link(xdp, "xdp").to_string()]);
    let body = wait_unhealthy(&lab.portal_ns);
    assert!(
        body.contains(&format!(
            "{check}: the XDP program (id {xdp}) is no longer attached in generic mode"
        )),
        "{body}"
    );

    // The realistic failure: the interface goes (and would take a BPF link with it).
    lab.exec(&lab.portal_ns, &["ip", "link", "del", &lab.portal_if])
        .expect("delete the veth");
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = format!("{check}: interface {} (ifindex ", lab.portal_if);
    while !healthz(&lab.portal_ns).1.contains(&gone) {
        assert!(Instant::now() < deadline, "{}", healthz(&lab.portal_ns).1);
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = agent.metrics();
    assert_eq!(m.value("precinct_healthy"), 0, "{}", m.0);
    assert!(
        m.0.lines().any(|l| l == format!("{check_series} 0")),
        "{}",
        m.0
    );

    let out = status(&lab.portal_ns, &["--interval", "0"]);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{screen}");
    assert!(screen.contains("health       FAILING"), "{screen}");
    assert!(screen.contains("is gone"), "{screen}");

    // The agent itself goes on, says so in its log, and still stops cleanly.
    let log = agent.stop();
    assert!(
        log.contains(&format!("health check {check} failing")),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
