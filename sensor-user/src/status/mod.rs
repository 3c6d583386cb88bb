//! `precinct status`: one screen on the running agent, from what it serves: two scrapes of its
//! `/metrics` an interval apart (rates are the difference) and its `/healthz`. Working from the
//! metrics endpoint keeps the agent the only source of truth, needs no privileges, and works
//! for a remote agent whose endpoint is reachable.

mod exposition;
mod model;
mod screen;

use std::{collections::BTreeMap, time::Duration};

use anyhow::{bail, Context as _};

pub use exposition::{http_get, Sample, Scrape};
pub use model::{
    Counted, Drops, Flows, Interface, List, Loss, Output, Protection, Rules, Status, Traffic,
};
pub use screen::render;

/// The default metrics address of `precinct run`.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9727";

/// Two scrapes and what lies between them.
struct Pair<'a> {
    first: &'a Scrape,
    second: &'a Scrape,
    seconds: f64,
}

impl Pair<'_> {
    fn counted(&self, name: &str, with: &[(&str, &str)]) -> Counted {
        let total = self.second.sum(name, with).unwrap_or(0.0);
        let before = self.first.sum(name, with).unwrap_or(0.0);
        Counted {
            total,
            // A counter that went down means the agent restarted between the scrapes.
            per_second: if self.seconds > 0.0 && total >= before {
                (total - before) / self.seconds
            } else {
                0.0
            },
        }
    }

    fn gauge(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.second.sum(name, with).unwrap_or(0.0)
    }

    /// The values of label `label` across the series of `name`, sorted, once each.
    fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .second
            .series(name)
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

impl Status {
    /// Builds the status from two scrapes `seconds` apart, and the `/healthz` answer.
    pub fn from_scrapes(
        address: &str,
        first: &Scrape,
        second: &Scrape,
        seconds: f64,
        health: (u16, &str),
    ) -> Status {
        let p = Pair {
            first,
            second,
            seconds,
        };
        let info = |name: &str| second.series(name).next().map(|s| s.labels.clone());
        let flag = |name: &str| second.sum(name, &[]).map(|v| v > 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let interfaces = second
            .series("precinct_xdp_attach_info")
            .map(|s| {
                let name = s.labels.get("interface").cloned().unwrap_or_default();
                let check = format!("attachment:{name}");
                Interface {
                    attached: second
                        .sum("precinct_health_check_ok", &[("check", &check)])
                        .map(|v| v > 0.0),
                    xdp_mode: s.labels.get("mode").cloned().unwrap_or_default(),
                    name,
                }
            })
            .collect();
        let traffic = ["ingress", "egress"]
            .iter()
            .map(|hook| Traffic {
                hook: hook.to_string(),
                packets: p.counted("precinct_packets_total", &[("hook", hook)]),
                bytes: p.counted("precinct_bytes_total", &[("hook", hook)]),
            })
            .collect();
        let by_label = |name: &str, label: &str| -> BTreeMap<String, Counted> {
            p.label_values(name, label)
                .into_iter()
                .map(|v| {
                    let c = p.counted(name, &[(label, &v)]);
                    (v, c)
                })
                .collect()
        };
        let mut status = Status {
            address: address.to_string(),
            version: info("precinct_build_info").and_then(|l| l.get("version").cloned()),
            sensor: info("precinct_sensor_info").unwrap_or_default(),
            uptime_seconds: second
                .sum("precinct_start_time_seconds", &[])
                .map(|t| (now - t).max(0.0)),
            healthy: health.0 == 200,
            problems: health
                .1
                .lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
            programs_pinned: flag("precinct_programs_pinned"),
            interfaces,
            interval_seconds: seconds,
            traffic,
            protocols: by_label("precinct_protocol_packets_total", "protocol"),
            flows: Flows {
                active: p.gauge("precinct_flows_active", &[]),
                capacity: p.gauge("precinct_flow_map_capacity", &[]),
                created: p.counted("precinct_flows_created_total", &[]),
                ended: p.counted("precinct_flows_expired_total", &[]),
            },
            inspected_records: p.counted("precinct_inspect_records_total", &[]),
            events: by_label("precinct_eve_events_total", "event_type"),
            rules: Rules {
                loaded: p.gauge("precinct_rules_loaded", &[]),
                skipped: p.gauge("precinct_rules_skipped", &[]),
                reloads_ok: p.gauge("precinct_rule_reloads_total", &[("result", "ok")]),
                reloads_failed: p.gauge("precinct_rule_reloads_total", &[("result", "failed")]),
                last_reload_successful: flag("precinct_rules_last_reload_successful"),
            },
            protection: second
                .has_prefix("precinct_protect_")
                .then(|| protection(&p)),
            outputs: outputs(&p, now),
            losses: Vec::new(),
        };
        if health.0 != 200 && status.problems.is_empty() {
            status
                .problems
                .push(format!("/healthz answered {}", health.0));
        }
        status.losses = losses(&p, &status.outputs);
        status
    }
}

fn protection(p: &Pair) -> Protection {
    let modes = p
        .second
        .series("precinct_protect_mode_info")
        .filter_map(|s| {
            Some((
                s.labels.get("check")?.clone(),
                s.labels.get("mode")?.clone(),
            ))
        })
        .collect();
    let mut names = p.label_values("precinct_protect_list_entries", "list");
    for n in p.label_values("precinct_protect_list_packets_total", "list") {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let lists = names
        .into_iter()
        .map(|name| {
            let l = [("list", name.as_str())];
            let gauge = |m: &str| p.second.sum(m, &l);
            List {
                entries: if name == "manual" {
                    p.second.sum("precinct_protect_manual_entries", &[])
                } else {
                    gauge("precinct_protect_list_entries")
                },
                bad_lines: gauge("precinct_protect_list_bad_lines"),
                dropped: p.counted(
                    "precinct_protect_list_packets_total",
                    &[("list", &name), ("action", "dropped")],
                ),
                would_drop: p.counted(
                    "precinct_protect_list_packets_total",
                    &[("list", &name), ("action", "would_drop")],
                ),
                name,
            }
        })
        .collect();
    let mut drops = Vec::new();
    for reason in p.label_values("precinct_protect_packets_total", "reason") {
        for action in ["dropped", "would_drop"] {
            let packets = p.counted(
                "precinct_protect_packets_total",
                &[("reason", &reason), ("action", action)],
            );
            if packets.total > 0.0 {
                drops.push(Drops {
                    reason: reason.clone(),
                    action: action.to_string(),
                    packets,
                });
            }
        }
    }
    Protection {
        modes,
        lists,
        manual_entries: p.gauge("precinct_protect_manual_entries", &[]),
        table_prefixes: p
            .label_values("precinct_protect_table_prefixes", "family")
            .into_iter()
            .map(|f| {
                let n = p.gauge("precinct_protect_table_prefixes", &[("family", &f)]);
                (f, n)
            })
            .collect(),
        drops,
        table_updates_failed: p.gauge(
            "precinct_protect_table_updates_total",
            &[("result", "failed")],
        ),
    }
}

fn outputs(p: &Pair, now: f64) -> Vec<Output> {
    let mut names = p.label_values("precinct_output_events_total", "output");
    for n in p.label_values("precinct_output_queue_depth", "output") {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let o = [("output", name.as_str())];
            let result = |r: &str| {
                p.counted(
                    "precinct_output_events_total",
                    &[("output", &name), ("result", r)],
                )
            };
            Output {
                delivered: result("delivered"),
                dropped: result("dropped"),
                failed: result("failed"),
                queue_depth: p.gauge("precinct_output_queue_depth", &o),
                spool_events: p.gauge("precinct_output_spool_events", &o),
                spool_bytes: p.gauge("precinct_output_spool_bytes", &o),
                spool_lost: p.counted("precinct_output_spool_lost_events_total", &o),
                seconds_since_delivery: p
                    .second
                    .sum("precinct_output_last_success_timestamp_seconds", &o)
                    .filter(|t| *t > 0.0)
                    .map(|t| (now - t).max(0.0)),
                name,
            }
        })
        .collect()
}

fn losses(p: &Pair, outputs: &[Output]) -> Vec<Loss> {
    let loss = |what: &str, count: Counted| Loss {
        what: what.to_string(),
        count,
    };
    let mut v = vec![
        loss(
            "flow heads: ring buffer full",
            p.counted("precinct_ringbuf_reserve_failures_total", &[]),
        ),
        loss(
            "flow heads: copy failed",
            p.counted("precinct_ringbuf_copy_failures_total", &[]),
        ),
        loss(
            "flow heads: inspection queue full",
            p.counted("precinct_inspect_queue_overflows_total", &[]),
        ),
        loss(
            "packets untracked: flow map full",
            p.counted("precinct_untracked_packets_total", &[]),
        ),
    ];
    if p.second.has_prefix("precinct_protect_") {
        v.push(loss(
            "drop events: event ring full",
            p.counted("precinct_protect_drop_events_total", &[("result", "lost")]),
        ));
    }
    for o in outputs {
        v.push(loss(
            &format!("output {}: dropped (queue full)", o.name),
            o.dropped.clone(),
        ));
        v.push(loss(
            &format!("output {}: failed", o.name),
            o.failed.clone(),
        ));
        v.push(loss(
            &format!("output {}: spool full", o.name),
            o.spool_lost.clone(),
        ));
    }
    v
}

/// Where to find the agent: `--metrics`, else `metrics.listen` of `--config`, else the
/// default; a wildcard listen address is reached on loopback.
pub fn address(
    metrics: Option<&str>,
    config: Option<&crate::config::Config>,
) -> anyhow::Result<String> {
    let listen = match (metrics, config) {
        (Some(a), _) => a.to_string(),
        (None, Some(c)) => {
            if !c.metrics.enabled {
                bail!("the configuration turns metrics off ([metrics] enabled = false); precinct status reads them");
            }
            c.metrics.listen.clone()
        }
        (None, None) => DEFAULT_ADDRESS.to_string(),
    };
    Ok(if let Some(port) = listen.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = listen.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        listen
    })
}

/// Scrapes the agent at `address` twice, `interval` apart, and asks `/healthz`.
pub fn collect(address: &str, interval: Duration) -> anyhow::Result<Status> {
    let timeout = Duration::from_secs(5);
    let scrape = || -> anyhow::Result<(std::time::Instant, Scrape)> {
        let at = std::time::Instant::now();
        let (code, body) = http_get(address, "/metrics", timeout)?;
        if code != 200 {
            bail!("{address}/metrics answered {code}");
        }
        Ok((at, Scrape::parse(&body)))
    };
    let (t0, first) = scrape()?;
    if !first.has_prefix("precinct_") {
        bail!("{address}/metrics has no precinct_ metrics: is that a Precinct agent?");
    }
    std::thread::sleep(interval);
    let (t1, second) = scrape()?;
    let (code, body) = http_get(address, "/healthz", timeout).context("asking /healthz")?;
    let seconds = if interval.is_zero() {
        0.0
    } else {
        (t1 - t0).as_secs_f64()
    };
    Ok(Status::from_scrapes(
        address,
        &first,
        &second,
        seconds,
        (code, &body),
    ))
}

#[cfg(test)]
mod tests;
