//! Prometheus metrics of the protection: drops and would-drops by hook, reason and list
//! (never by address), drop-event delivery, list sizes, reloads and modes.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use sensor_common::{
    protect::{reason, vid, VerdictCounters, LIST_SLOTS},
    Hook,
};

use super::VerdictMap;

/// The protection's metrics; clones share the series.
#[derive(Clone)]
pub struct ProtectMetrics {
    packets: IntCounterVec,
    list_packets: IntCounterVec,
    drop_events: IntCounterVec,
    outbound: IntCounterVec,
    /// Prefixes each list holds (last load).
    pub list_entries: IntGaugeVec,
    /// Lines of each list file that could not be read (last load).
    pub list_bad_lines: IntGaugeVec,
    /// Prefixes in the kernel tables, by family.
    pub table_prefixes: IntGaugeVec,
    /// Table updates, by trigger and result.
    pub reloads: IntCounterVec,
    /// Manual entries (`precinct block add`).
    pub manual_entries: IntGauge,
    /// Mode of each check (value 1).
    pub mode_info: IntGaugeVec,
    /// Seconds the last table swap took.
    pub swap_seconds: prometheus::Gauge,
}

#[expect(
    clippy::expect_used,
    reason = "the metric's name, help and labels are constants, valid by construction"
)]
fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

#[expect(
    clippy::expect_used,
    reason = "the metric's name, help and labels are constants, valid by construction"
)]
fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

impl ProtectMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> anyhow::Result<ProtectMetrics> {
        let m = ProtectMetrics {
            packets: counter(
                "precinct_protect_packets_total",
                "Packets the protection dropped (action=\"dropped\") or would have dropped in monitor mode (action=\"would_drop\"), by hook and reason.",
                &["hook", "reason", "action"],
            ),
            list_packets: counter(
                "precinct_protect_list_packets_total",
                "Drops and would-drops by the list that matched (own, rfc6890, manual or a configured list; none for port policy and rate limits).",
                &["list", "action"],
            ),
            drop_events: counter(
                "precinct_protect_drop_events_total",
                "Drop events: sent to the agent, suppressed by the per-reason event rate, or lost because the event ring was full.",
                &["result"],
            ),
            outbound: counter(
                "precinct_protect_outbound_flows_total",
                "Flows the host opened that the port policy lets replies in for (recorded at egress).",
                &["hook"],
            ),
            list_entries: gauge(
                "precinct_protect_list_entries",
                "Prefixes each list held at its last load.",
                &["list"],
            ),
            list_bad_lines: gauge(
                "precinct_protect_list_bad_lines",
                "Lines of each list file that could not be read at its last load.",
                &["list"],
            ),
            table_prefixes: gauge(
                "precinct_protect_table_prefixes",
                "Prefixes in the kernel address tables after aggregation, by family.",
                &["family"],
            ),
            reloads: counter(
                "precinct_protect_table_updates_total",
                "Kernel address-table updates, by trigger (start, reload, block, expiry, addresses) and result.",
                &["trigger", "result"],
            ),
            manual_entries: IntGauge::new(
                "precinct_protect_manual_entries",
                "Entries added with `precinct block add` and not yet removed or expired.",
            )?,
            mode_info: gauge(
                "precinct_protect_mode_info",
                "Mode of each protection check (value 1).",
                &["check", "mode"],
            ),
            swap_seconds: prometheus::Gauge::new(
                "precinct_protect_table_swap_seconds",
                "Seconds the last kernel table update took (build, fill, flip and clear).",
            )?,
        };
        for c in [
            &m.packets,
            &m.list_packets,
            &m.drop_events,
            &m.outbound,
            &m.reloads,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        for g in [
            &m.list_entries,
            &m.list_bad_lines,
            &m.table_prefixes,
            &m.mode_info,
        ] {
            registry.register(Box::new(g.clone()))?;
        }
        registry.register(Box::new(m.manual_entries.clone()))?;
        registry.register(Box::new(m.swap_seconds.clone()))?;
        for hook in Hook::ALL {
            for r in &reason::NAMES[1..] {
                for a in ["dropped", "would_drop"] {
                    m.packets.with_label_values(&[hook.name(), r, a]);
                }
            }
        }
        for r in ["sent", "suppressed", "lost"] {
            m.drop_events.with_label_values(&[r]);
        }
        for hook in Hook::ALL {
            m.outbound.with_label_values(&[hook.name()]);
        }
        Ok(m)
    }

    /// Creates the per-list series of `names` (empty names are unused slots) at 0, so that
    /// every list has a series before its first drop.
    pub fn init_lists(&self, names: &[String]) {
        for name in names.iter().filter(|n| !n.is_empty()) {
            for a in ["dropped", "would_drop"] {
                self.list_packets.with_label_values(&[name, a]);
            }
        }
    }
}

/// Turns the kernel's running totals into counter increments.
pub struct VerdictSync {
    map: VerdictMap,
    metrics: ProtectMetrics,
    list_names: Vec<String>,
    last: [VerdictCounters; 2],
}

impl VerdictSync {
    /// Reads `map` into `metrics`; `list_names` by list id.
    pub fn new(map: VerdictMap, metrics: ProtectMetrics, list_names: Vec<String>) -> VerdictSync {
        metrics.init_lists(&list_names);
        VerdictSync {
            map,
            metrics,
            list_names,
            last: [VerdictCounters::default(); 2],
        }
    }

    /// Brings the metrics up to the kernel's totals.
    pub fn refresh(&mut self) {
        for hook in Hook::ALL {
            let now = match self.map.read(hook) {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("{e:#}");
                    continue;
                }
            };
            let last = &mut self.last[hook as usize];
            let delta = |i: usize| now.c[i].saturating_sub(last.c[i]);
            let m = &self.metrics;
            for (r, name) in reason::NAMES.iter().enumerate().skip(1) {
                for (base, a) in [(vid::DROPPED, "dropped"), (vid::WOULD_DROP, "would_drop")] {
                    let d = delta(base + r);
                    if d > 0 {
                        m.packets
                            .with_label_values(&[hook.name(), name, a])
                            .inc_by(d);
                    }
                }
            }
            for l in 0..LIST_SLOTS {
                let name = self.list_names.get(l).map_or("", String::as_str);
                if name.is_empty() {
                    continue;
                }
                for (base, a) in [
                    (vid::LIST_DROPPED, "dropped"),
                    (vid::LIST_WOULD_DROP, "would_drop"),
                ] {
                    let d = delta(base + l);
                    if d > 0 {
                        m.list_packets.with_label_values(&[name, a]).inc_by(d);
                    }
                }
            }
            for (i, r) in [
                (vid::EVENTS, "sent"),
                (vid::EVENTS_SUPPRESSED, "suppressed"),
                (vid::EVENTS_LOST, "lost"),
            ] {
                m.drop_events.with_label_values(&[r]).inc_by(delta(i));
            }
            m.outbound
                .with_label_values(&[hook.name()])
                .inc_by(delta(vid::OUTBOUND_RECORDED));
            *last = now;
        }
    }
}
