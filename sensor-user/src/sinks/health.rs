//! What the sinks report: their Prometheus series (`precinct_output_*`) and whether a sink is
//! stuck, for `/healthz`.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use prometheus::{
    Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use super::spec::SinkType;

/// The sinks' metric families; clones share the series.
#[derive(Clone)]
pub struct OutputMetrics {
    events: IntCounterVec,
    spool_bytes: IntGaugeVec,
    spool_events: IntGaugeVec,
    spool_lost: IntCounterVec,
    queue_depth: IntGaugeVec,
    last_success: GaugeVec,
}

impl OutputMetrics {
    #[expect(
        clippy::expect_used,
        reason = "the metrics' names, help and labels are constants, valid by construction"
    )]
    fn new() -> OutputMetrics {
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["output"]).expect("valid metric")
        };
        OutputMetrics {
            events: IntCounterVec::new(
                Opts::new(
                    "precinct_output_events_total",
                    "EVE records by output: delivered, dropped (the output's queue was full) or \
                     failed (refused or undeliverable, given up).",
                ),
                &["output", "result"],
            )
            .expect("valid metric"),
            spool_bytes: gauge(
                "precinct_output_spool_bytes",
                "Bytes in an http output's on-disk spool.",
            ),
            spool_events: gauge(
                "precinct_output_spool_events",
                "Records in an http output's spool not yet delivered.",
            ),
            spool_lost: IntCounterVec::new(
                Opts::new(
                    "precinct_output_spool_lost_events_total",
                    "Records evicted from a full spool before delivery.",
                ),
                &["output"],
            )
            .expect("valid metric"),
            queue_depth: gauge(
                "precinct_output_queue_depth",
                "Records waiting in an output's queue.",
            ),
            last_success: GaugeVec::new(
                Opts::new(
                    "precinct_output_last_success_timestamp_seconds",
                    "UNIX time of an output's last successful delivery.",
                ),
                &["output"],
            )
            .expect("valid metric"),
        }
    }
}

/// One sink's counters and state, shared by the fan-out, its threads and the health check.
pub struct SinkStats {
    /// Output name.
    pub name: String,
    /// Output type.
    pub kind: SinkType,
    pub(crate) delivered: IntCounter,
    pub(crate) dropped: IntCounter,
    pub(crate) failed: IntCounter,
    pub(crate) queue: IntGauge,
    pub(crate) capacity: usize,
    pub(crate) spool_bytes: IntGauge,
    pub(crate) spool_events: IntGauge,
    pub(crate) lost: IntCounter,
    last_success: Gauge,
    /// Milliseconds after `base` of the last delivery, or of the spool becoming non-empty.
    progress_ms: AtomicU64,
    base: Instant,
    stuck_after: Option<Duration>,
}

impl SinkStats {
    /// Counts `n` records delivered, now.
    pub(crate) fn delivered(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.delivered.inc_by(n as u64);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_success.set(now.as_secs_f64());
        self.progressed();
    }

    /// Marks progress of the spool (a delivery, or the first record after it was empty).
    pub(crate) fn progressed(&self) {
        self.progress_ms
            .store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Why the sink is stuck, if it is.
    fn stuck(&self) -> Option<String> {
        let depth = self.queue.get().max(0) as usize;
        if depth >= self.capacity {
            return Some(format!(
                "output {:?} ({}): queue full ({depth} records); records are being dropped",
                self.name,
                self.kind.as_str()
            ));
        }
        let after = self.stuck_after?;
        let waiting = self.spool_events.get();
        let since =
            self.base.elapsed().as_millis() as u64 - self.progress_ms.load(Ordering::Relaxed);
        (waiting > 0 && since > after.as_millis() as u64).then(|| {
            format!(
                "output {:?} ({}): spool not drained for {} s ({waiting} records waiting)",
                self.name,
                self.kind.as_str(),
                since / 1000
            )
        })
    }
}

/// The outputs' metrics and health; clones share them.
#[derive(Clone)]
pub struct OutputHealth {
    metrics: OutputMetrics,
    sinks: Arc<std::sync::Mutex<Vec<Arc<SinkStats>>>>,
}

impl Default for OutputHealth {
    fn default() -> Self {
        OutputHealth {
            metrics: OutputMetrics::new(),
            sinks: Default::default(),
        }
    }
}

impl OutputHealth {
    /// Registers the `precinct_output_*` families in `registry`.
    pub fn register(&self, registry: &Registry) -> anyhow::Result<()> {
        let m = &self.metrics;
        registry.register(Box::new(m.events.clone()))?;
        registry.register(Box::new(m.spool_bytes.clone()))?;
        registry.register(Box::new(m.spool_events.clone()))?;
        registry.register(Box::new(m.spool_lost.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.last_success.clone()))?;
        Ok(())
    }

    /// Sinks that are stuck, each with why: its queue is full, or its spool (http) has not
    /// drained for `stuck_after_secs` while holding records. Empty when all are well.
    pub fn stuck(&self) -> Vec<String> {
        let sinks = crate::sync::lock(&self.sinks);
        sinks.iter().filter_map(|s| s.stuck()).collect()
    }

    /// The stats of every sink, in configuration order.
    pub fn sinks(&self) -> Vec<Arc<SinkStats>> {
        crate::sync::lock(&self.sinks).clone()
    }

    /// Creates the series of one sink.
    pub(crate) fn add(
        &self,
        name: &str,
        kind: SinkType,
        capacity: usize,
        stuck_after: Option<Duration>,
    ) -> Arc<SinkStats> {
        let m = &self.metrics;
        let result = |r: &str| m.events.with_label_values(&[name, r]);
        let stats = Arc::new(SinkStats {
            name: name.to_owned(),
            kind,
            delivered: result("delivered"),
            dropped: result("dropped"),
            failed: result("failed"),
            queue: m.queue_depth.with_label_values(&[name]),
            capacity,
            spool_bytes: m.spool_bytes.with_label_values(&[name]),
            spool_events: m.spool_events.with_label_values(&[name]),
            lost: m.spool_lost.with_label_values(&[name]),
            last_success: m.last_success.with_label_values(&[name]),
            progress_ms: AtomicU64::new(0),
            base: Instant::now(),
            stuck_after,
        });
        crate::sync::lock(&self.sinks).push(stats.clone());
        stats
    }
}

impl SinkStats {
    /// Records delivered so far.
    pub fn delivered_total(&self) -> u64 {
        self.delivered.get()
    }

    /// Records dropped because the queue was full.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.get()
    }

    /// Records given up after an error.
    pub fn failed_total(&self) -> u64 {
        self.failed.get()
    }

    /// Records evicted from the spool.
    pub fn lost_total(&self) -> u64 {
        self.lost.get()
    }

    /// Records waiting in the spool.
    pub fn spool_events(&self) -> i64 {
        self.spool_events.get()
    }
}
