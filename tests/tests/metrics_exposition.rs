//! The metric set without a kernel: every family the agent can export, rendered the way
//! `/metrics` serves it, passes `promtool check metrics` (Prometheus's own lint: `_total` on
//! counters only, base units, help text), and the Grafana dashboard in `docs/grafana/` refers
//! only to metrics that exist, so neither can drift from the code.

use std::{collections::BTreeSet, time::Duration};

use precinct::{
    config::Config,
    datapath::{AttachedMode, Attachment},
    identity::Identity,
    metrics::Metrics,
    protect::metrics::ProtectMetrics,
    sinks::Outputs,
};
use tests::prometheus::{dashboard, dashboard_exprs, metric_names, panels, promtool_check};

/// Every family, with a series each: what an agent with one interface, a configured list and
/// one output exports.
fn full_exposition() -> String {
    let mut m = Metrics::new().expect("metrics");
    m.set_identity(&Identity {
        id: "portal-1".into(),
        organization: "Example County".into(),
        asset_role: "voter-registration".into(),
        tags: vec!["dmz".into()],
    });
    m.set_attachments(&[Attachment {
        iface: "eth0".into(),
        ifindex: 2,
        mode: AttachedMode::Driver,
    }]);
    m.add_health_check("attachment:eth0", Box::new(|| None));
    m.events.with_label_values(&["flow"]).inc();
    let p = ProtectMetrics::register(m.registry()).expect("protect metrics");
    p.init_lists(&["manual".into(), "tor".into(), String::new()]);
    p.list_entries.with_label_values(&["tor"]).set(3);
    p.list_bad_lines.with_label_values(&["tor"]).set(0);
    p.table_prefixes.with_label_values(&["ipv4"]).set(3);
    p.reloads.with_label_values(&["start", "ok"]).inc();
    p.mode_info
        .with_label_values(&["blocklist", "monitor"])
        .set(1);
    // One directory per call: the tests of this file run in parallel in one process, and a
    // shared one let a test read the other's config half-written (no outputs, no families).
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("precinct-exposition-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("precinct.toml");
    std::fs::write(
        &config,
        format!(
            "[[outputs]]\nname = \"siem\"\ntype = \"file\"\npath = \"{}\"\n",
            dir.join("eve.json").display()
        ),
    )
    .expect("config");
    let outputs = Outputs::start(&Config::load(&config).expect("config").outputs, "portal-1")
        .expect("outputs");
    outputs
        .health()
        .register(m.registry())
        .expect("output metrics");
    let text = m.render();
    outputs.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
    text
}

fn families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_family_passes_promtool() {
    let text = full_exposition();
    let families = families(&text);
    // A sample of every part, so that a family that stops being exported is noticed.
    for f in [
        "precinct_packets_total",
        "precinct_healthy",
        "precinct_health_check_ok",
        "precinct_start_time_seconds",
        "precinct_programs_pinned",
        "precinct_rules_last_reload_successful",
        "precinct_sensor_info",
        "precinct_protect_list_packets_total",
        "precinct_protect_outbound_flows_total",
        "precinct_output_events_total",
        "precinct_output_spool_events",
    ] {
        assert!(families.contains(f), "{f} missing from\n{text}");
    }
    for f in &families {
        assert!(
            f.starts_with("precinct_"),
            "{f}: one prefix for every metric"
        );
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for label in ["src_ip", "dest_ip", "address", "ip=", "port="] {
            assert!(!line.contains(label), "a per-address label: {line}");
        }
    }
    if let Err(e) = promtool_check(&text) {
        panic!("{e}\n{text}");
    }
}

#[test]
fn dashboard_refers_only_to_exported_metrics() {
    let families = families(&full_exposition());
    let d = dashboard();
    assert_eq!(d["schemaVersion"], 39);
    assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS");
    let exprs = dashboard_exprs(&d);
    assert!(exprs.len() > 40, "{} expressions", exprs.len());
    let mut used = BTreeSet::new();
    for e in &exprs {
        let names = metric_names(e);
        assert!(!names.is_empty(), "no precinct metric in {e}");
        for n in names {
            assert!(families.contains(&n), "{n} (in {e}) is not exported");
            used.insert(n);
        }
    }
    // Every family has a panel, except the ones only `precinct status` and alerts need.
    let unused: Vec<&String> = families.difference(&used).collect();
    assert!(unused.is_empty(), "families without a panel: {unused:?}");
    let mut ids = BTreeSet::new();
    for p in panels(&d) {
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id {p}"
        );
        let grid = &p["gridPos"];
        let (x, w) = (
            grid["x"].as_u64().expect("x"),
            grid["w"].as_u64().expect("w"),
        );
        assert!(x + w <= 24, "{} is wider than the grid", p["title"]);
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
            assert!(p["description"].as_str().is_some_and(|s| !s.is_empty()));
            for t in p["targets"].as_array().expect("targets") {
                assert!(
                    t["expr"]
                        .as_str()
                        .is_some_and(|e| e.contains("instance=~\"$instance\"")),
                    "{} does not follow the instance variable: {t}",
                    p["title"]
                );
            }
        }
    }
}
