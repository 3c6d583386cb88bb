//! `precinct run`: attach, sweep the flow map into EVE records and metrics on a timer, inspect
//! the flow heads the kernel sends (see [`crate::live`]), and on SIGINT/SIGTERM detach, finish
//! inspection and flush every flow as `reason: shutdown`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use log::{info, warn};
use tokio::signal::unix::{signal, SignalKind};

use sensor_common::head::Settings;

use crate::{
    config::Config,
    datapath::{Datapath, FlowMap, LoadOptions, Maps},
    eve::{EveTarget, EveWriter},
    flows::{self, Clock, Reason},
    heads::{self, HeadControl},
    inspect::InspectConfig,
    live::Live,
    metrics::{Endpoint, Metrics},
};

/// One sweep's bookkeeping, shared by the timer and the shutdown flush.
struct Sweeper {
    flows: FlowMap,
    control: HeadControl,
    eve: EveWriter,
    /// EVE records counted into the metrics so far, by event type.
    events_seen: BTreeMap<String, u64>,
    metrics: Endpoint,
    config: Config,
    ifnames: HashMap<u32, String>,
}

impl Sweeper {
    /// Walks the flow map; reports and removes ended flows (all of them when `shutdown`).
    fn sweep(&mut self, shutdown: bool) -> anyhow::Result<()> {
        let now = flows::monotonic_ns();
        let clock = Clock::now();
        let all = self.flows.read_all()?;
        let mut active = 0i64;
        for (key, stats) in &all {
            let reason = if shutdown {
                Some(Reason::Shutdown)
            } else {
                flows::expiry(key, stats, now, &self.config.flows.timeouts)
            };
            let Some(reason) = reason else {
                active += 1;
                continue;
            };
            let iface = self.ifnames.get(&key.ifindex).map(String::as_str);
            let record = flows::flow_record(key, stats, reason, &clock, iface);
            self.eve.write(&record)?;
            {
                let m = self.metrics.0.lock().expect("metrics lock");
                m.flows_expired.with_label_values(&[reason.as_str()]).inc();
            }
            if !shutdown {
                self.flows.remove(key)?;
                self.control.forget(key)?;
            }
        }
        self.eve.flush()?;
        let mut m = self.metrics.0.lock().expect("metrics lock");
        // Every producer writes through the same EVE writer: count what it wrote since.
        for (kind, n) in self.eve.counts() {
            let seen = self.events_seen.entry(kind.clone()).or_default();
            m.events.with_label_values(&[&kind]).inc_by(n - *seen);
            *seen = n;
        }
        m.flows_active.set(active);
        m.refresh();
        Ok(())
    }
}

/// Options of `precinct run` after merging the command line into the config.
pub struct RunOptions {
    /// The merged configuration.
    pub config: Config,
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    let config = opts.config;
    let eve_target = EveTarget::parse(&config.eve);
    let eve = EveWriter::open(&eve_target)?;
    let load = LoadOptions {
        flow_capacity: config.flows.capacity,
        ring_bytes: config.inspect.ring_bytes,
        heads: Settings {
            head_bytes: config.inspect.head_bytes,
            sample_one_in: config.inspect.sample_one_in,
            ..Settings::DEFAULT
        },
    };
    let mut datapath = Datapath::attach(&config.interfaces, config.xdp_mode, &load)?;
    let mut metrics = Metrics::new()?;
    metrics.set_attachments(datapath.attachments());
    for a in datapath.attachments() {
        info!(
            "attached to {} (ifindex {}, XDP {} mode, TC egress)",
            a.iface, a.ifindex, a.mode
        );
    }
    let ifnames = datapath
        .attachments()
        .iter()
        .map(|a| (a.ifindex, a.iface.clone()))
        .collect();
    let Maps { flows, counters } = Maps::take(datapath.ebpf())?;
    metrics.set_counter_map(counters);
    let ring = heads::take_ring(datapath.ebpf())?;
    let control = HeadControl::take(datapath.ebpf(), load.heads)?;
    let inspect_cfg = InspectConfig {
        midstream: config.inspect.midstream,
        timeouts: config.flows.timeouts,
        // `in_iface` when there is only one; the pipeline's flows are not per interface.
        iface: match datapath.attachments() {
            [one] => Some(one.iface.clone()),
            _ => None,
        },
        // The kernel's flow map gives the flow records.
        flow_records: false,
        ..InspectConfig::default()
    };
    let live = Live::start(
        ring,
        inspect_cfg,
        eve.clone(),
        config.inspect.queue_depth,
        metrics.live_counters(),
    )?;
    let metrics = Endpoint(Arc::new(Mutex::new(metrics)));
    let server = if config.metrics.enabled {
        let serving = crate::metrics::serve(&config.metrics.listen, metrics.clone()).await?;
        info!("metrics on http://{}/metrics", config.metrics.listen);
        Some(tokio::spawn(serving))
    } else {
        None
    };
    let interval = Duration::from_millis(config.flows.sweep_interval_ms);
    let mut sweeper = Sweeper {
        flows,
        control,
        eve,
        events_seen: BTreeMap::new(),
        metrics,
        config,
        ifnames,
    };
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!("running; SIGINT or SIGTERM stops and flushes every flow");
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = sweeper.sweep(false) {
                    warn!("sweeping the flow map: {e:#}");
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    info!("stopping: flushing flows");
    // Detach first so that the flush sees final counters (the maps outlive the programs).
    drop(datapath);
    // Then inspect what the kernel had already sent, before the last flow records.
    if let Err(e) = live.stop() {
        warn!("stopping live inspection: {e:#}");
    }
    let result = sweeper.sweep(true);
    if let Some(server) = server {
        server.abort();
    }
    result
}
