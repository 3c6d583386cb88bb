//! Live deep inspection: one thread drains the kernel's ring buffer of flow heads into a
//! bounded queue, another runs the inspection pipeline (the one `precinct replay` runs) on the
//! frames it carries. A full queue drops the record and counts it; the reader never blocks, so
//! a slow pipeline shows up as counted overflows rather than as a full ring buffer. A new
//! rule set reaches the pipeline over a channel that the inspection thread reads between
//! records, so a swap never splits a packet and never touches the flows.

use std::{
    os::fd::AsRawFd as _,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, TrySendError},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context as _};
use aya::maps::{MapData, RingBuf};
use log::warn;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge};
use sensor_common::head::flag;

use crate::{
    datapath::heads,
    detect::RuleSet,
    eve::EveWriter,
    flows::{self, monotonic_ns, Clock},
    inspect::{defrag::DefragStats, InspectConfig, Pipeline},
};

/// Frames in the ring buffer start with their Ethernet header.
const LINKTYPE_ETHERNET: u32 = 1;
/// How long the reader sleeps in `poll` when the ring is empty, and so how long a stop waits.
/// The kernel wakes it only when the ring is an eighth full (a wakeup per record would cost
/// every packet that sends one microseconds): this is also the most a record waits.
const POLL_MS: i32 = 20;
/// How often the pipeline thread, when idle, expires flows and flushes the EVE output.
const IDLE_TICK: Duration = Duration::from_millis(250);

/// Counters the two threads keep (registered with the agent's metrics).
#[derive(Clone)]
pub struct LiveCounters {
    /// Records read from the ring buffer.
    pub records: IntCounter,
    /// Records dropped because the queue to the pipeline was full.
    pub queue_overflows: IntCounter,
    /// Alert records the pipeline wrote.
    pub alerts: IntCounter,
    /// Records in the queue to the pipeline.
    pub queue_depth: IntGauge,
    /// Seconds between the kernel seeing a packet and the pipeline inspecting it.
    pub lag: Gauge,
    /// Flows the pipeline tracks.
    pub flows: IntGauge,
    /// New flows the pipeline's table had no room for.
    pub flows_over_limit: IntCounter,
    /// Rule evaluations that gave up at `rules.inspection_limit`.
    pub inspection_limit: IntCounter,
    /// Datagrams held for reassembly.
    pub defrag_datagrams: IntGauge,
    /// Bytes held for reassembly.
    pub defrag_bytes: IntGauge,
    /// Datagrams given up, by reason ([`crate::metrics::DEFRAG_DROP_REASONS`]).
    pub defrag_dropped: IntCounterVec,
}

impl LiveCounters {
    /// Brings the pipeline's gauges and counters up to date (`last`: its counters at the
    /// previous call).
    fn update(&self, pipeline: &Pipeline, last: &mut (DefragStats, u64, u64)) {
        let d = pipeline.defrag_stats();
        self.defrag_datagrams.set(d.held_datagrams as i64);
        self.defrag_bytes.set(d.held_bytes as i64);
        for (reason, now, before) in [
            ("timeout", d.timed_out, last.0.timed_out),
            ("evicted", d.evicted, last.0.evicted),
            ("limit", d.refused, last.0.refused),
        ] {
            self.defrag_dropped
                .with_label_values(&[reason])
                .inc_by(now - before);
        }
        self.flows.set(pipeline.flows_tracked() as i64);
        self.flows_over_limit
            .inc_by(pipeline.stats.flows_over_limit - last.1);
        let limited = pipeline.detect_stats().inspection_limit;
        self.inspection_limit.inc_by(limited.saturating_sub(last.2));
        *last = (d, pipeline.stats.flows_over_limit, limited);
    }
}

/// The running threads. [`Live::stop`] drains what the kernel already sent and ends them.
pub struct Live {
    stop: Arc<AtomicBool>,
    rules: mpsc::Sender<Arc<RuleSet>>,
    reader: Option<JoinHandle<()>>,
    worker: Option<JoinHandle<()>>,
}

impl Live {
    /// Starts reading `ring` into a pipeline configured by `cfg`, detecting with `rules`,
    /// that writes through `eve`.
    pub fn start(
        ring: RingBuf<MapData>,
        cfg: InspectConfig,
        rules: Option<Arc<RuleSet>>,
        eve: EveWriter,
        queue_depth: usize,
        counters: LiveCounters,
    ) -> anyhow::Result<Live> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(queue_depth);
        let (rules_tx, rules_rx) = mpsc::channel::<Arc<RuleSet>>();
        let mut pipeline = Pipeline::new(cfg, eve.clone());
        if let Some(rules) = rules {
            pipeline.set_rules(rules);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("precinct-ringbuf".into())
                .spawn(move || read_ring(ring, &tx, &stop, &counters))
                .context("starting the ring-buffer reader thread")?
        };
        let worker = std::thread::Builder::new()
            .name("precinct-inspect".into())
            .spawn(move || inspect(rx, rules_rx, pipeline, eve, &counters))
            .context("starting the inspection thread")?;
        Ok(Live {
            stop,
            rules: rules_tx,
            reader: Some(reader),
            worker: Some(worker),
        })
    }

    /// Hands `rules` to the inspection thread, which detects with them from the record after
    /// the one it is inspecting.
    pub fn set_rules(&self, rules: Arc<RuleSet>) -> anyhow::Result<()> {
        self.rules
            .send(rules)
            .map_err(|_| anyhow!("the inspection thread has stopped"))
    }

    /// Reads what is left in the ring buffer, inspects everything queued, ends the pipeline's
    /// flows (writing their pending protocol records) and joins both threads.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Release);
        for handle in [self.reader.take(), self.worker.take()]
            .into_iter()
            .flatten()
        {
            handle
                .join()
                .map_err(|_| anyhow!("a live-inspection thread panicked"))?;
        }
        Ok(())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn read_ring(
    mut ring: RingBuf<MapData>,
    tx: &mpsc::SyncSender<Vec<u8>>,
    stop: &AtomicBool,
    counters: &LiveCounters,
) {
    let fd = ring.as_raw_fd();
    loop {
        // Read the flag before draining, so that records the kernel sent before the stop are
        // all read.
        let stopping = stop.load(Ordering::Acquire);
        while let Some(item) = ring.next() {
            counters.records.inc();
            // Counted before it is sent, so that the consumer never takes the gauge below 0.
            counters.queue_depth.inc();
            match tx.try_send(item.to_vec()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    counters.queue_depth.dec();
                    counters.queue_overflows.inc();
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        if stopping {
            return;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the ring buffer's descriptor, which `ring` keeps open.
        unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
    }
}

fn inspect(
    rx: Receiver<Vec<u8>>,
    rules: Receiver<Arc<RuleSet>>,
    mut pipeline: Pipeline,
    mut eve: EveWriter,
    counters: &LiveCounters,
) {
    let alerts = &counters.alerts;
    let mut last = (DefragStats::default(), 0, 0);
    let mut alerts_seen = 0;
    let mut clock = Clock::now();
    let mut clock_at = Instant::now();
    let mut last_tick = Instant::now();
    let mut warned = false;
    let mut report = |r: anyhow::Result<()>| {
        if let Err(e) = r {
            if !warned {
                warn!("live inspection: {e:#} (further errors are not logged)");
                warned = true;
            }
        }
    };
    loop {
        let next = rx.recv_timeout(IDLE_TICK);
        // Between two records: the newest set handed over since the last one. A record
        // queued before the reload finished is inspected with the new set; none is lost.
        if let Some(new) = rules.try_iter().last() {
            if let Some(old) = pipeline.set_rules(new) {
                // Freeing a large set (tens of thousands of signatures and their automata)
                // takes a while: not on the packet path.
                let _ = std::thread::Builder::new()
                    .name("precinct-rules-free".into())
                    .spawn(move || drop(old));
            }
        }
        match next {
            Ok(record) => {
                counters.queue_depth.dec();
                report(feed(&mut pipeline, &clock, record, &counters.lag));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= IDLE_TICK {
            last_tick = Instant::now();
            if clock_at.elapsed() >= Duration::from_secs(1) {
                // Follow wall-clock adjustments.
                clock = Clock::now();
                clock_at = Instant::now();
            }
            report(pipeline.tick(clock.unix_ns(monotonic_ns())));
            report(eve.flush());
            counters.update(&pipeline, &mut last);
        }
        alerts.inc_by(pipeline.stats.alerts - alerts_seen);
        alerts_seen = pipeline.stats.alerts;
    }
    report(pipeline.finish());
    alerts.inc_by(pipeline.stats.alerts - alerts_seen);
    counters.update(&pipeline, &mut last);
}

/// Runs one ring-buffer record through the pipeline.
fn feed(
    pipeline: &mut Pipeline,
    clock: &Clock,
    record: Vec<u8>,
    lag: &Gauge,
) -> anyhow::Result<()> {
    let Some((head, frame)) = heads::parse_record(&record) else {
        return Err(anyhow!(
            "a ring-buffer record of {} bytes is shorter than its header says",
            record.len()
        ));
    };
    let ts = clock.unix_ns(head.ts_ns);
    lag.set(monotonic_ns().saturating_sub(head.ts_ns) as f64 / 1e9);
    // The kernel flow record's id: the record comes from the CPU that saw the flow first when
    // it is the flow's first, and that is when the pipeline creates its flow.
    let id = flows::flow_id(&head.key, head.flow_first_ns);
    if head.flags & flag::TRUNCATED != 0 {
        let mut frame = frame.to_vec();
        heads::fit_truncated(&mut frame);
        pipeline.packet_with_flow_id(ts, LINKTYPE_ETHERNET, &frame, id)
    } else {
        pipeline.packet_with_flow_id(ts, LINKTYPE_ETHERNET, frame, id)
    }
}
