//! `precinct run`: attach, sweep the flow map into EVE records and metrics on a timer, and on
//! SIGINT/SIGTERM flush every flow as `reason: shutdown` and detach.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use log::{info, warn};
use tokio::signal::unix::{signal, SignalKind};

use crate::{
    config::Config,
    datapath::{Datapath, FlowMap, Maps},
    eve::{EveTarget, EveWriter},
    flows::{self, Clock, Reason},
    metrics::{Endpoint, Metrics},
};

/// One sweep's bookkeeping, shared by the timer and the shutdown flush.
struct Sweeper {
    flows: FlowMap,
    eve: EveWriter,
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
                m.events.with_label_values(&["flow"]).inc();
                m.flows_expired.with_label_values(&[reason.as_str()]).inc();
            }
            if !shutdown {
                self.flows.remove(key)?;
            }
        }
        self.eve.flush()?;
        let mut m = self.metrics.0.lock().expect("metrics lock");
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
    let mut datapath =
        Datapath::attach(&config.interfaces, config.xdp_mode, config.flows.capacity)?;
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
        eve,
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
    let result = sweeper.sweep(true);
    if let Some(server) = server {
        server.abort();
    }
    result
}
