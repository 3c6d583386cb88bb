use super::*;

#[test]
fn counters_become_deltas_and_render() {
    let mut m = Metrics::new().expect("metrics");
    let mut c = Counters::default();
    c.c[id::PACKETS] = 10;
    c.c[id::BYTES] = 1000;
    c.c[id::TCP] = 7;
    m.update_counters(Hook::Ingress, &c);
    c.c[id::PACKETS] = 15;
    m.update_counters(Hook::Ingress, &c);
    let text = m.render();
    assert!(
        text.contains("precinct_packets_total{hook=\"ingress\"} 15"),
        "{text}"
    );
    assert!(
        text.contains("precinct_bytes_total{hook=\"ingress\"} 1000"),
        "{text}"
    );
    assert!(
        text.contains("precinct_protocol_packets_total{hook=\"ingress\",protocol=\"tcp\"} 7"),
        "{text}"
    );
    assert!(text.contains("precinct_build_info{version="), "{text}");
    c.c[id::RINGBUF_RESERVE_FAILURES] = 3;
    m.update_counters(Hook::Egress, &c);
    m.live_counters().queue_overflows.inc_by(2);
    m.live_counters().alerts.inc();
    m.rules_loaded.set(12);
    m.rule_reloads.with_label_values(&["ok"]).inc();
    let text = m.render();
    assert!(
        text.contains("precinct_ringbuf_reserve_failures_total{hook=\"egress\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("precinct_inspect_queue_overflows_total 2"),
        "{text}"
    );
    for line in [
        "precinct_alerts_total 1",
        "precinct_rules_loaded 12",
        "precinct_rules_skipped 0",
        "precinct_rule_reloads_total{result=\"ok\"} 1",
        "precinct_rule_reloads_total{result=\"failed\"} 0",
        "precinct_rules_last_reload_successful 1",
        "precinct_programs_pinned 0",
        "precinct_healthy 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
}

#[test]
fn fixed_series_exist_from_the_start() {
    let text = Metrics::new().expect("metrics").render();
    for line in [
        "precinct_packets_total{hook=\"egress\"} 0",
        "precinct_ringbuf_reserve_failures_total{hook=\"ingress\"} 0",
        "precinct_untracked_packets_total{hook=\"egress\"} 0",
        "precinct_flows_expired_total{reason=\"timeout\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
    let start = text
        .lines()
        .find_map(|l| l.strip_prefix("precinct_start_time_seconds "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("start time");
    assert!((start - now_seconds()).abs() < 60.0, "{start}");
}

#[test]
fn rule_reloads_and_pinning() {
    let mut m = Metrics::new().expect("metrics");
    m.record_rule_reload(None);
    m.set_pinned(true);
    let text = m.render();
    for line in [
        "precinct_rule_reloads_total{result=\"failed\"} 1",
        "precinct_rules_last_reload_successful 0",
        "precinct_programs_pinned 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
    m.record_rule_reload(Some((10, 2)));
    let text = m.render();
    for line in [
        "precinct_rules_last_reload_successful 1",
        "precinct_rules_loaded 10",
        "precinct_rules_skipped 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
}
