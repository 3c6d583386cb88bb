//! Prometheus metrics: the registry the agent updates after every sweep, the health checks
//! behind `/healthz`, and (in [`endpoint`]) the small HTTP endpoint serving both.
//!
//! Naming follows the Prometheus conventions: one `precinct_` prefix, base units (`_seconds`,
//! `_bytes`), `_total` on counters only, `_info` gauges of value 1 for what labels describe,
//! and no label whose values grow with traffic (no addresses, ports or rule ids).

mod endpoint;

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use sensor_common::{
    counters::{id, Counters, PROTOCOLS},
    parse::Outcome,
    Hook,
};

pub use endpoint::{serve, Endpoint};

use crate::{
    datapath::{Attachment, CounterMap},
    live::LiveCounters,
};

/// A health check: `None` while healthy, else what is wrong (one line, for `/healthz` and the
/// log). It runs under the metrics lock at every sweep, scrape and `/healthz` request, so it
/// must be quick and must not block.
pub type HealthCheck = Box<dyn Fn() -> Option<String> + Send>;

/// A registered check and its last result.
struct Check {
    name: String,
    check: HealthCheck,
    problem: Option<String>,
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Every metric the agent exports.
pub struct Metrics {
    registry: Registry,
    packets: IntCounterVec,
    bytes: IntCounterVec,
    protocol_packets: IntCounterVec,
    parse_outcomes: IntCounterVec,
    vlan_packets: IntCounterVec,
    fragments: IntCounterVec,
    flows_created: IntCounterVec,
    untracked: IntCounterVec,
    pending_flows: IntCounterVec,
    pending_packets: IntCounterVec,
    pending_truncated: IntCounterVec,
    ringbuf_records: IntCounterVec,
    ringbuf_bytes: IntCounterVec,
    ringbuf_reserve_failures: IntCounterVec,
    ringbuf_truncated: IntCounterVec,
    ringbuf_copy_failures: IntCounterVec,
    inspect_records: IntCounter,
    inspect_queue_overflows: IntCounter,
    inspect_queue_depth: IntGauge,
    inspect_lag: Gauge,
    inspect_flows: IntGauge,
    inspect_flows_over_limit: IntCounter,
    rules_inspection_limit: IntCounter,
    defrag_datagrams: IntGauge,
    defrag_bytes: IntGauge,
    defrag_dropped: IntCounterVec,
    /// Flows currently in the kernel flow map.
    pub flows_active: IntGauge,
    /// Entries the kernel flow map holds at most.
    pub flow_map_capacity: IntGauge,
    /// Slots of the pending table holding an unconfirmed flow at the last sweep.
    pub pending_occupied: IntGauge,
    /// Flow records written for flows that were never confirmed (from the pending table).
    pub pending_records: IntCounter,
    /// Flows ended, by reason.
    pub flows_expired: IntCounterVec,
    /// EVE records written, by event type.
    pub events: IntCounterVec,
    alerts: IntCounter,
    /// Signatures in the rule set in use.
    pub rules_loaded: IntGauge,
    /// Rules of the configured files that were not loaded (unsupported or invalid).
    pub rules_skipped: IntGauge,
    /// Rule reloads, by result (`ok`, `failed`).
    pub rule_reloads: IntCounterVec,
    rules_last_reload_ok: IntGauge,
    rules_last_reload_time: Gauge,
    attach_info: IntGaugeVec,
    pinned: IntGauge,
    healthy: IntGauge,
    check_ok: IntGaugeVec,
    checks: Vec<Check>,
    last: [Counters; 2],
    counters: Option<CounterMap>,
    verdicts: Option<crate::protect::metrics::VerdictSync>,
}

/// Values of the `reason` label of `precinct_defrag_dropped_total`.
pub const DEFRAG_DROP_REASONS: [&str; 3] = ["timeout", "evicted", "limit"];

#[expect(
    clippy::expect_used,
    reason = "the metric's name, help and labels are constants, valid by construction"
)]
fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let mut m = Metrics {
            packets: counter(
                "precinct_packets_total",
                "Packets seen by the kernel programs.",
                &["hook"],
            ),
            bytes: counter(
                "precinct_bytes_total",
                "Bytes seen by the kernel programs (whole frames).",
                &["hook"],
            ),
            protocol_packets: counter(
                "precinct_protocol_packets_total",
                "Packets by network and transport protocol.",
                &["hook", "protocol"],
            ),
            parse_outcomes: counter(
                "precinct_parse_outcomes_total",
                "Packets by header parse outcome (ok, or why the headers could not be read).",
                &["hook", "outcome"],
            ),
            vlan_packets: counter(
                "precinct_vlan_packets_total",
                "Packets with at least one VLAN tag.",
                &["hook"],
            ),
            fragments: counter(
                "precinct_ip_fragments_total",
                "IP fragments seen.",
                &["hook"],
            ),
            flows_created: counter(
                "precinct_flows_created_total",
                "Flow entries created in the kernel flow map.",
                &["hook"],
            ),
            untracked: counter(
                "precinct_untracked_packets_total",
                "Packets whose flow could not be entered because the kernel flow map was full.",
                &["hook"],
            ),
            pending_flows: counter(
                "precinct_pending_flows_total",
                "Unconfirmed flows in the kernel's pending table (flows.pending_slots): entered \
                 in a free slot (opened), over another unconfirmed flow (overwritten), confirmed \
                 and moved into the flow map (promoted).",
                &["hook", "event"],
            ),
            pending_packets: counter(
                "precinct_pending_packets_total",
                "Packets counted in the pending table while their flow was unconfirmed.",
                &["hook"],
            ),
            pending_truncated: counter(
                "precinct_pending_stash_truncated_total",
                "First frames of unconfirmed flows longer than the pending table keeps (cut).",
                &["hook"],
            ),
            ringbuf_records: counter(
                "precinct_ringbuf_records_total",
                "Flow-head records the kernel programs submitted to the ring buffer.",
                &["hook"],
            ),
            ringbuf_bytes: counter(
                "precinct_ringbuf_bytes_total",
                "Frame bytes copied into flow-head records.",
                &["hook"],
            ),
            ringbuf_reserve_failures: counter(
                "precinct_ringbuf_reserve_failures_total",
                "Flow-head records lost because the ring buffer was full.",
                &["hook"],
            ),
            ringbuf_truncated: counter(
                "precinct_ringbuf_truncated_total",
                "Flow-head records whose frame was longer than the capture limit and was cut.",
                &["hook"],
            ),
            ringbuf_copy_failures: counter(
                "precinct_ringbuf_copy_failures_total",
                "Flow-head records discarded because copying the frame failed.",
                &["hook"],
            ),
            inspect_records: IntCounter::new(
                "precinct_inspect_records_total",
                "Flow-head records read from the ring buffer by the agent.",
            )?,
            inspect_queue_overflows: IntCounter::new(
                "precinct_inspect_queue_overflows_total",
                "Flow-head records dropped because the inspection queue was full.",
            )?,
            inspect_queue_depth: IntGauge::new(
                "precinct_inspect_queue_depth",
                "Flow-head records waiting for the inspection thread.",
            )?,
            inspect_lag: Gauge::new(
                "precinct_inspect_lag_seconds",
                "How long the last record inspected waited since the kernel saw its packet.",
            )?,
            inspect_flows: IntGauge::new(
                "precinct_inspect_flows",
                "Flows the inspection pipeline tracks.",
            )?,
            inspect_flows_over_limit: IntCounter::new(
                "precinct_inspect_flows_over_limit_total",
                "New flows not inspected because the pipeline's flow table was full.",
            )?,
            rules_inspection_limit: IntCounter::new(
                "precinct_rules_inspection_limit_total",
                "Rule evaluations that gave up at rules.inspection_limit (taken as no match).",
            )?,
            defrag_datagrams: IntGauge::new(
                "precinct_defrag_datagrams",
                "IP datagrams held for reassembly.",
            )?,
            defrag_bytes: IntGauge::new(
                "precinct_defrag_bytes",
                "Bytes held for reassembly.",
            )?,
            defrag_dropped: counter(
                "precinct_defrag_dropped_total",
                "Datagrams given up before they were whole, by reason.",
                &["reason"],
            ),
            flows_active: IntGauge::new("precinct_flows_active", "Flows in the kernel flow map.")?,
            flow_map_capacity: IntGauge::new(
                "precinct_flow_map_capacity",
                "Entries the kernel flow map holds at most (flows.capacity as loaded).",
            )?,
            pending_occupied: IntGauge::new(
                "precinct_pending_slots_occupied",
                "Slots of the pending table holding an unconfirmed flow at the last sweep.",
            )?,
            pending_records: IntCounter::new(
                "precinct_pending_flow_records_total",
                "Flow records written for flows that were never confirmed, read from the \
                 pending table when idle past flows.timeouts.new_secs or at shutdown.",
            )?,
            flows_expired: counter(
                "precinct_flows_expired_total",
                "Flows ended and reported, by reason.",
                &["reason"],
            ),
            events: counter(
                "precinct_eve_events_total",
                "EVE records written, by event type.",
                &["event_type"],
            ),
            alerts: IntCounter::new(
                "precinct_alerts_total",
                "Alert records the live inspection pipeline wrote.",
            )?,
            rules_loaded: IntGauge::new(
                "precinct_rules_loaded",
                "Signatures in the rule set the agent detects with.",
            )?,
            rules_skipped: IntGauge::new(
                "precinct_rules_skipped",
                "Rules in the configured files that were not loaded (unsupported or invalid), as of the last successful load.",
            )?,
            rule_reloads: counter(
                "precinct_rule_reloads_total",
                "Rule reloads (SIGHUP), by result: ok, or failed (the previous rules stay).",
                &["result"],
            ),
            rules_last_reload_ok: IntGauge::new(
                "precinct_rules_last_reload_successful",
                "Whether the last rule load (at start or on SIGHUP) succeeded (1) or failed and kept the previous rules (0).",
            )?,
            rules_last_reload_time: Gauge::new(
                "precinct_rules_last_reload_success_timestamp_seconds",
                "Unix time of the last successful rule load (at start or on SIGHUP).",
            )?,
            attach_info: IntGaugeVec::new(
                Opts::new(
                    "precinct_xdp_attach_info",
                    "XDP attach mode per interface (value 1).",
                ),
                &["interface", "mode"],
            )?,
            pinned: IntGauge::new(
                "precinct_programs_pinned",
                "Whether the programs and maps are pinned in bpffs and outlive the agent (1) or go with it (0).",
            )?,
            healthy: IntGauge::new(
                "precinct_healthy",
                "1 while every health check passes (/healthz answers 200), else 0.",
            )?,
            check_ok: IntGaugeVec::new(
                Opts::new(
                    "precinct_health_check_ok",
                    "Result of each health check at the last sweep or scrape: 1 passing, 0 failing (/healthz says why).",
                ),
                &["check"],
            )?,
            checks: Vec::new(),
            last: [Counters::default(), Counters::default()],
            counters: None,
            verdicts: None,
            registry,
        };
        let build = IntGaugeVec::new(
            Opts::new("precinct_build_info", "Precinct build (value 1)."),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let start = Gauge::new(
            "precinct_start_time_seconds",
            "Unix time the agent started; rates over its uptime divide by time() minus this.",
        )?;
        start.set(now_seconds());
        m.rules_last_reload_ok.set(1);
        m.rules_last_reload_time.set(now_seconds());
        m.healthy.set(1);
        for c in [
            &m.packets,
            &m.bytes,
            &m.protocol_packets,
            &m.parse_outcomes,
            &m.vlan_packets,
            &m.fragments,
            &m.flows_created,
            &m.untracked,
            &m.pending_flows,
            &m.pending_packets,
            &m.pending_truncated,
            &m.ringbuf_records,
            &m.ringbuf_bytes,
            &m.ringbuf_reserve_failures,
            &m.ringbuf_truncated,
            &m.ringbuf_copy_failures,
            &m.flows_expired,
            &m.events,
            &m.rule_reloads,
            &m.defrag_dropped,
        ] {
            m.registry.register(Box::new(c.clone()))?;
        }
        for reason in DEFRAG_DROP_REASONS {
            m.defrag_dropped.with_label_values(&[reason]);
        }
        // Both results from the start, so that a rate or an alert on failures has a series.
        for result in ["ok", "failed"] {
            m.rule_reloads.with_label_values(&[result]);
        }
        m.registry.register(Box::new(m.pending_records.clone()))?;
        for g in [
            &m.flows_active,
            &m.flow_map_capacity,
            &m.pending_occupied,
            &m.rules_loaded,
            &m.rules_skipped,
            &m.rules_last_reload_ok,
            &m.pinned,
            &m.healthy,
        ] {
            m.registry.register(Box::new(g.clone()))?;
        }
        m.registry.register(Box::new(m.check_ok.clone()))?;
        m.registry
            .register(Box::new(m.rules_last_reload_time.clone()))?;
        m.registry.register(Box::new(start))?;
        m.registry.register(Box::new(m.alerts.clone()))?;
        m.registry.register(Box::new(m.inspect_records.clone()))?;
        m.registry
            .register(Box::new(m.inspect_queue_overflows.clone()))?;
        m.registry
            .register(Box::new(m.inspect_queue_depth.clone()))?;
        m.registry.register(Box::new(m.inspect_lag.clone()))?;
        m.registry.register(Box::new(m.inspect_flows.clone()))?;
        m.registry
            .register(Box::new(m.inspect_flows_over_limit.clone()))?;
        m.registry
            .register(Box::new(m.rules_inspection_limit.clone()))?;
        m.registry.register(Box::new(m.defrag_datagrams.clone()))?;
        m.registry.register(Box::new(m.defrag_bytes.clone()))?;
        m.registry.register(Box::new(m.attach_info.clone()))?;
        m.registry.register(Box::new(build))?;
        // Every series with a fixed label set exists from the start, at 0, so that rates and
        // alerts on them have data before the first event.
        for hook in Hook::ALL {
            m.update_counters(hook, &Counters::default());
        }
        for reason in ["timeout", "forced", "shutdown"] {
            m.flows_expired.with_label_values(&[reason]);
        }
        // The event types the agent writes; others (none today) appear with their first record.
        for kind in [
            "flow", "alert", "anomaly", "dns", "http", "tls", "ssh", "drop",
        ] {
            m.events.with_label_values(&[kind]);
        }
        Ok(m)
    }

    /// Adds a health check; `name` (such as `attachment:eth0` or `outputs`) labels it in
    /// `/healthz` and `precinct_health_check_ok{check}`. Keep names few and fixed: one per
    /// interface or sink, never per address.
    pub fn add_health_check(&mut self, name: &str, check: HealthCheck) {
        self.check_ok.with_label_values(&[name]).set(1);
        self.checks.push(Check {
            name: name.to_string(),
            check,
            problem: None,
        });
    }

    /// Runs every health check, updates their metrics, logs changes, and returns the failing
    /// checks with what is wrong.
    pub fn check_health(&mut self) -> Vec<(String, String)> {
        let mut failing = Vec::new();
        for c in &mut self.checks {
            let problem = (c.check)();
            match (&c.problem, &problem) {
                (None, Some(p)) => log::warn!("health check {} failing: {p}", c.name),
                (Some(_), None) => log::info!("health check {} passing again", c.name),
                _ => {}
            }
            self.check_ok
                .with_label_values(&[&c.name])
                .set(i64::from(problem.is_none()));
            if let Some(p) = &problem {
                failing.push((c.name.clone(), p.clone()));
            }
            c.problem = problem;
        }
        self.healthy.set(i64::from(failing.is_empty()));
        failing
    }

    /// Drops every health check (at shutdown, when the agent detaches its programs itself).
    pub fn clear_health_checks(&mut self) {
        self.checks.clear();
    }

    /// Records whether the programs and maps are pinned (`precinct_programs_pinned`).
    pub fn set_pinned(&self, pinned: bool) {
        self.pinned.set(i64::from(pinned));
    }

    /// Records a rule load on SIGHUP: the counters, the last result, and on success the
    /// rule counts of the new set.
    pub fn record_rule_reload(&self, loaded: Option<(usize, usize)>) {
        match loaded {
            Some((loaded, skipped)) => {
                self.rules_loaded.set(loaded as i64);
                self.rules_skipped.set(skipped as i64);
                self.rule_reloads.with_label_values(&["ok"]).inc();
                self.rules_last_reload_ok.set(1);
                self.rules_last_reload_time.set(now_seconds());
            }
            None => {
                self.rule_reloads.with_label_values(&["failed"]).inc();
                self.rules_last_reload_ok.set(0);
            }
        }
    }

    /// Records the interfaces and their XDP modes.
    pub fn set_attachments(&self, attachments: &[Attachment]) {
        for a in attachments {
            self.attach_info
                .with_label_values(&[a.iface.as_str(), &a.mode.to_string()])
                .set(1);
        }
    }

    /// Brings the kernel counters up to the totals read from the maps.
    pub fn update_counters(&mut self, hook: Hook, now: &Counters) {
        let h = hook.name();
        let last = &mut self.last[hook as usize];
        let delta = |i: usize| now.c[i].saturating_sub(last.c[i]);
        self.packets
            .with_label_values(&[h])
            .inc_by(delta(id::PACKETS));
        self.bytes.with_label_values(&[h]).inc_by(delta(id::BYTES));
        for (i, name) in PROTOCOLS {
            self.protocol_packets
                .with_label_values(&[h, name])
                .inc_by(delta(i));
        }
        for o in Outcome::ALL {
            self.parse_outcomes
                .with_label_values(&[h, o.name()])
                .inc_by(delta(id::OUTCOME_BASE + o as usize));
        }
        self.vlan_packets
            .with_label_values(&[h])
            .inc_by(delta(id::VLAN));
        self.fragments
            .with_label_values(&[h])
            .inc_by(delta(id::FRAGMENTS));
        self.flows_created
            .with_label_values(&[h])
            .inc_by(delta(id::FLOWS_CREATED));
        self.untracked
            .with_label_values(&[h])
            .inc_by(delta(id::FLOWS_NOT_TRACKED));
        for (event, i) in [
            ("opened", id::PENDING_OPENED),
            ("overwritten", id::PENDING_OVERWRITTEN),
            ("promoted", id::PENDING_PROMOTED),
        ] {
            self.pending_flows
                .with_label_values(&[h, event])
                .inc_by(delta(i));
        }
        self.pending_packets
            .with_label_values(&[h])
            .inc_by(delta(id::PENDING_PACKETS));
        self.pending_truncated
            .with_label_values(&[h])
            .inc_by(delta(id::PENDING_STASH_TRUNCATED));
        for (metric, i) in [
            (&self.ringbuf_records, id::HEAD_RECORDS),
            (&self.ringbuf_bytes, id::HEAD_BYTES),
            (&self.ringbuf_reserve_failures, id::RINGBUF_RESERVE_FAILURES),
            (&self.ringbuf_truncated, id::HEAD_TRUNCATED),
            (&self.ringbuf_copy_failures, id::HEAD_COPY_FAILURES),
        ] {
            metric.with_label_values(&[h]).inc_by(delta(i));
        }
        *last = *now;
    }

    /// The counters the live-inspection threads update.
    pub fn live_counters(&self) -> LiveCounters {
        LiveCounters {
            records: self.inspect_records.clone(),
            queue_overflows: self.inspect_queue_overflows.clone(),
            queue_depth: self.inspect_queue_depth.clone(),
            lag: self.inspect_lag.clone(),
            flows: self.inspect_flows.clone(),
            flows_over_limit: self.inspect_flows_over_limit.clone(),
            inspection_limit: self.rules_inspection_limit.clone(),
            defrag_datagrams: self.defrag_datagrams.clone(),
            defrag_bytes: self.defrag_bytes.clone(),
            defrag_dropped: self.defrag_dropped.clone(),
            alerts: self.alerts.clone(),
        }
    }

    /// Reads the kernel counters from `map` at every refresh, so that a scrape sees the
    /// kernel's totals at that instant.
    pub fn set_counter_map(&mut self, map: CounterMap) {
        self.counters = Some(map);
    }

    /// Records the sensor's identity as `precinct_sensor_info` (value 1).
    #[expect(
        clippy::expect_used,
        reason = "the metric's name, help and labels are constants, valid by construction"
    )]
    pub fn set_identity(&mut self, id: &crate::identity::Identity) {
        let info = IntGaugeVec::new(
            Opts::new(
                "precinct_sensor_info",
                "The sensor's identity from [sensor] (value 1); tags joined with commas.",
            ),
            &["sensor_id", "organization", "asset_role", "tags"],
        )
        .expect("valid metric definition");
        info.with_label_values(&[
            id.id.as_str(),
            id.organization.as_str(),
            id.asset_role.as_str(),
            &id.tags.join(","),
        ])
        .set(1);
        if let Err(e) = self.registry.register(Box::new(info)) {
            log::warn!("registering precinct_sensor_info: {e}");
        }
    }

    /// The registry, for parts of the agent that bring their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reads the protection's verdict counters at every refresh too.
    pub fn set_verdicts(&mut self, sync: crate::protect::metrics::VerdictSync) {
        self.verdicts = Some(sync);
    }

    /// Brings the kernel counters and the health checks up to date.
    pub fn refresh(&mut self) {
        self.check_health();
        if let Some(v) = self.verdicts.as_mut() {
            v.refresh();
        }
        let Some(map) = self.counters.take() else {
            return;
        };
        for hook in Hook::ALL {
            match map.read(hook) {
                Ok(c) => self.update_counters(hook, &c),
                Err(e) => log::warn!("reading kernel counters: {e:#}"),
            }
        }
        self.counters = Some(map);
    }

    /// A kernel counter summed over both hooks, as of the last refresh.
    pub fn kernel_total(&self, i: usize) -> u64 {
        self.last.iter().map(|c| c.c[i]).sum()
    }

    /// The text exposition of every metric, after a refresh.
    pub fn render(&mut self) -> String {
        self.refresh();
        let mut buf = String::new();
        // Encoding fails only for a family without metrics or a write error; a String takes
        // every write, and an empty family is skipped rather than failing the scrape.
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut buf) {
            log::warn!("encoding the metrics: {e}");
        }
        buf
    }
}

#[cfg(test)]
mod tests;
