//! Prometheus metrics: the registry the agent updates after every sweep, and the small HTTP
//! endpoint serving `/metrics` and `/healthz`.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use prometheus::{
    Encoder as _, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use sensor_common::{
    counters::{id, Counters, PROTOCOLS},
    parse::Outcome,
    Hook,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

use crate::{
    datapath::{Attachment, CounterMap},
    live::LiveCounters,
};

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
    ringbuf_records: IntCounterVec,
    ringbuf_bytes: IntCounterVec,
    ringbuf_reserve_failures: IntCounterVec,
    ringbuf_truncated: IntCounterVec,
    ringbuf_copy_failures: IntCounterVec,
    inspect_records: IntCounter,
    inspect_queue_overflows: IntCounter,
    /// Flows currently in the kernel flow map.
    pub flows_active: IntGauge,
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
    attach_info: IntGaugeVec,
    last: [Counters; 2],
    counters: Option<CounterMap>,
    verdicts: Option<crate::protect::metrics::VerdictSync>,
    healthy: bool,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let m = Metrics {
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
            flows_active: IntGauge::new("precinct_flows_active", "Flows in the kernel flow map.")?,
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
            attach_info: IntGaugeVec::new(
                Opts::new(
                    "precinct_xdp_attach_info",
                    "XDP attach mode per interface (value 1).",
                ),
                &["interface", "mode"],
            )?,
            last: [Counters::default(), Counters::default()],
            counters: None,
            verdicts: None,
            healthy: true,
            registry,
        };
        let build = IntGaugeVec::new(
            Opts::new("precinct_build_info", "Precinct build (value 1)."),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for c in [
            &m.packets,
            &m.bytes,
            &m.protocol_packets,
            &m.parse_outcomes,
            &m.vlan_packets,
            &m.fragments,
            &m.flows_created,
            &m.untracked,
            &m.ringbuf_records,
            &m.ringbuf_bytes,
            &m.ringbuf_reserve_failures,
            &m.ringbuf_truncated,
            &m.ringbuf_copy_failures,
            &m.flows_expired,
            &m.events,
            &m.rule_reloads,
        ] {
            m.registry.register(Box::new(c.clone()))?;
        }
        // Both results from the start, so that a rate or an alert on failures has a series.
        for result in ["ok", "failed"] {
            m.rule_reloads.with_label_values(&[result]);
        }
        for g in [&m.flows_active, &m.rules_loaded, &m.rules_skipped] {
            m.registry.register(Box::new(g.clone()))?;
        }
        m.registry.register(Box::new(m.alerts.clone()))?;
        m.registry.register(Box::new(m.inspect_records.clone()))?;
        m.registry
            .register(Box::new(m.inspect_queue_overflows.clone()))?;
        m.registry.register(Box::new(m.attach_info.clone()))?;
        m.registry.register(Box::new(build))?;
        Ok(m)
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
            alerts: self.alerts.clone(),
        }
    }

    /// Reads the kernel counters from `map` at every refresh, so that a scrape sees the
    /// kernel's totals at that instant.
    pub fn set_counter_map(&mut self, map: CounterMap) {
        self.counters = Some(map);
    }

    /// Records the sensor's identity as `precinct_sensor_info` (value 1).
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

    /// Brings the kernel counters up to date (no-op without a counter map).
    pub fn refresh(&mut self) {
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

    /// Marks the agent unhealthy (`/healthz` then answers 503).
    pub fn set_healthy(&mut self, healthy: bool) {
        self.healthy = healthy;
    }

    /// The text exposition of every metric, after a refresh.
    pub fn render(&mut self) -> String {
        self.refresh();
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

/// The metrics as the agent and the HTTP task share them.
#[derive(Clone)]
pub struct Endpoint(pub Arc<Mutex<Metrics>>);

impl Endpoint {
    fn respond(&self, request_line: &str) -> (u16, &'static str, Vec<u8>) {
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method != "GET" {
            return (405, "text/plain", b"only GET is served\n".to_vec());
        }
        let Ok(mut metrics) = self.0.lock() else {
            return (500, "text/plain", b"metrics lock poisoned\n".to_vec());
        };
        match path.split('?').next().unwrap_or("") {
            "/metrics" => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics.render().into_bytes(),
            ),
            "/healthz" if metrics.healthy => (200, "text/plain", b"ok\n".to_vec()),
            "/healthz" => (503, "text/plain", b"unhealthy\n".to_vec()),
            _ => (
                404,
                "text/plain",
                b"not found: try /metrics or /healthz\n".to_vec(),
            ),
        }
    }
}

/// Binds `listen`; the returned future serves requests until dropped.
pub async fn serve(
    listen: &str,
    endpoint: Endpoint,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("binding the metrics endpoint to {listen}; change metrics.listen in the config or stop what holds the port")
    })?;
    Ok(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                // Read until the end of the request line; requests have no body here.
                while len < buf.len() {
                    match tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        stream.read(&mut buf[len..]),
                    )
                    .await
                    {
                        Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                        Ok(Ok(n)) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n")
                        || buf[..len].contains(&b'\n')
                    {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&buf[..len]);
                let line = text.lines().next().unwrap_or("");
                let (code, ctype, body) = endpoint.respond(line);
                let reason = match code {
                    200 => "OK",
                    404 => "Not Found",
                    405 => "Method Not Allowed",
                    503 => "Service Unavailable",
                    _ => "Error",
                };
                let head = format!(
                    "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
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
        ] {
            assert!(text.lines().any(|l| l == line), "{line}: {text}");
        }
    }

    #[test]
    fn endpoint_routes() {
        let e = Endpoint(Arc::new(Mutex::new(Metrics::new().expect("metrics"))));
        assert_eq!(e.respond("GET /metrics HTTP/1.1").0, 200);
        assert_eq!(e.respond("GET /healthz HTTP/1.1").0, 200);
        e.0.lock().expect("lock").set_healthy(false);
        assert_eq!(e.respond("GET /healthz HTTP/1.1").0, 503);
        assert_eq!(e.respond("GET /nope HTTP/1.1").0, 404);
        assert_eq!(e.respond("POST /metrics HTTP/1.1").0, 405);
    }
}
