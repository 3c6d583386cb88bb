//! `precinct run`: load the rules, attach, sweep the flow map into EVE records and metrics on
//! a timer, inspect the flow heads the kernel sends (see [`crate::live`]), reload the rules on
//! SIGHUP, and on SIGINT/SIGTERM detach, finish inspection and flush every flow as
//! `reason: shutdown`. With a pinned datapath ([`crate::pin`]) a stop detaches nothing and
//! reports only the flows that ended: the others carry on under the next agent.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use log::{info, warn};
use tokio::{
    signal::unix::{signal, SignalKind},
    task::JoinHandle,
};

use sensor_common::head::Settings;

use crate::{
    config::{Config, RulesSection},
    datapath::{
        heads::{self, HeadControl},
        pending::PendingTable,
        Datapath, LoadOptions, Maps,
    },
    detect::RuleSet,
    eve::{EveTarget, EveWriter},
    health::AttachmentCheck,
    inspect::InspectConfig,
    live::Live,
    metrics::{Endpoint, Metrics},
    protect::{
        control,
        drops::{self, DropEvents},
        metrics::{ProtectMetrics, VerdictSync},
        worker::{Command, Worker},
        Protect, VerdictMap,
    },
    rules::{log_report, RuleSources},
    sweep::{Pressure, Sweeper},
};

/// Options of `precinct run` after merging the command line into the config.
pub struct RunOptions {
    /// The merged configuration.
    pub config: Config,
    /// The configuration file and what it said at start, before the command line's
    /// overrides: a reload re-reads its `[rules]`.
    pub config_file: Option<(PathBuf, Config)>,
    /// Rule files from the command line (`--rules`), loaded after those of `[rules]`.
    pub rule_files: Vec<PathBuf>,
    /// Discard the pinned maps before loading (`--unpin`).
    pub unpin: bool,
}

/// The rule set in use and how to build the next one.
struct Rules {
    config_file: Option<(PathBuf, Config)>,
    cli_files: Vec<PathBuf>,
    /// `[rules]` as of the last successful load.
    section: RulesSection,
    /// Signatures in the set in use.
    loaded: usize,
}

impl Rules {
    /// The reload, to run on a blocking thread: re-read the configuration file's `[rules]`
    /// (other sections need a restart) and compile the files it names.
    fn reload_job(&self) -> impl FnOnce() -> anyhow::Result<(RulesSection, RuleSet)> + Send {
        let config_file = self.config_file.clone();
        let cli_files = self.cli_files.clone();
        let section = self.section.clone();
        move || {
            let section = match config_file {
                Some((path, at_start)) => {
                    let now = Config::load(&path)?;
                    let rest = |c: &Config| Config {
                        rules: RulesSection::default(),
                        ..c.clone()
                    };
                    if rest(&now) != rest(&at_start) {
                        warn!(
                            "{}: only [rules] is reloaded on SIGHUP; restart the agent for the other changes",
                            path.display()
                        );
                    }
                    now.rules
                }
                None => section,
            };
            let set = RuleSources::new(&section, &cli_files).load()?;
            Ok((section, set))
        }
    }

    /// Puts a finished reload into service, or keeps the rules in use and says why.
    fn finish_reload(
        &mut self,
        done: Result<anyhow::Result<(RulesSection, RuleSet)>, tokio::task::JoinError>,
        live: &Live,
        metrics: &Endpoint,
    ) {
        let result = done
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the reload task failed: {e}")))
            .and_then(|(section, set)| {
                let (loaded, skipped) = (set.report.loaded, set.report.skipped.len());
                log_report("rules reloaded", &set.report);
                live.set_rules(Arc::new(set))?;
                Ok((section, loaded, skipped))
            });
        let m = metrics.lock();
        match result {
            Ok((section, loaded, skipped)) => {
                self.section = section;
                self.loaded = loaded;
                m.record_rule_reload(Some((loaded, skipped)));
            }
            Err(e) => {
                warn!(
                    "rule reload failed; the {} rules loaded before stay in use: {e:#}",
                    self.loaded
                );
                m.record_rule_reload(None);
            }
        }
    }
}

/// A reload in progress.
type Reload = JoinHandle<anyhow::Result<(RulesSection, RuleSet)>>;

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    let config = opts.config;
    // First, so that a SIGHUP while the rules load at start is a reload afterwards rather
    // than the signal's default action (exit).
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    // Before anything is attached: a rule file that cannot be read stops the agent here.
    let sources = RuleSources::new(&config.rules, &opts.rule_files);
    let rule_set = if sources.is_empty() {
        info!("no rule files configured ([rules] files, --rules): signature detection is off");
        None
    } else {
        let set = sources.load().context(
            "loading the rules; fix or remove the file (`precinct rules check FILE` shows what loads)",
        )?;
        log_report("rules", &set.report);
        Some(set)
    };
    let mut rules = Rules {
        config_file: opts.config_file,
        cli_files: opts.rule_files,
        section: config.rules.clone(),
        loaded: rule_set.as_ref().map_or(0, |s| s.report.loaded),
    };
    let eve_target = EveTarget::parse(&config.eve);
    let eve = EveWriter::open(&eve_target)?;
    let identity = config.sensor.resolve();
    eve.set_identity(&identity);
    let outputs = crate::sinks::Outputs::start(&config.outputs, &identity.id)
        .context("starting the [[outputs]] of the configuration")?;
    let output_health = outputs.health();
    eve.attach_outputs(outputs);
    let load = LoadOptions {
        flow_capacity: config.flows.capacity,
        ring_bytes: config.inspect.ring_bytes,
        heads: Settings {
            head_bytes: config.inspect.head_bytes,
            sample_one_in: config.inspect.sample_one_in,
            pending_mask: config.flows.pending_slots.saturating_sub(1),
            ..Settings::DEFAULT
        },
        v4_capacity: config.protect.v4_capacity,
        v6_capacity: config.protect.v6_capacity,
        pending_slots: config.flows.pending_slots,
    };
    let pin_dir = crate::datapath::pin::prepare(config.pin, &config.pin_path, opts.unpin)?;
    let mut datapath =
        Datapath::attach(&config.interfaces, config.xdp_mode, &load, pin_dir.as_ref())?;
    // Pinned maps keep their sizes, and the head settings move on from the last agent's.
    let load = *datapath.load_options();
    let mut metrics = Metrics::new()?;
    metrics.set_identity(&identity);
    output_health.register(metrics.registry())?;
    metrics.add_health_check(
        "outputs",
        Box::new(move || Some(output_health.stuck().join("; ")).filter(|s| !s.is_empty())),
    );
    metrics.set_attachments(datapath.attachments());
    metrics.set_pinned(datapath.pinned());
    let attached = datapath.attachments().to_vec();
    for check in AttachmentCheck::for_attachments(datapath.ebpf(), &attached)? {
        metrics.add_health_check(&check.name(), Box::new(move || check.problem()));
    }
    if let Some(set) = &rule_set {
        metrics.rules_loaded.set(set.report.loaded as i64);
        metrics.rules_skipped.set(set.report.skipped.len() as i64);
    }
    for a in datapath.attachments() {
        info!(
            "attached to {} (ifindex {}, XDP {} mode, TC egress)",
            a.iface, a.ifindex, a.mode
        );
    }
    let ifnames: HashMap<u32, String> = datapath
        .attachments()
        .iter()
        .map(|a| (a.ifindex, a.iface.clone()))
        .collect();
    let Maps { flows, counters } = Maps::take(datapath.ebpf())?;
    let pending = PendingTable::take(datapath.ebpf(), load.pending_slots)?;
    let pressure = Pressure::default();
    let full = pressure.clone();
    metrics.add_health_check(
        "flow_map",
        Box::new(move || crate::sync::lock(&full).clone()),
    );
    if datapath.adopted() {
        crate::datapath::pin::log_carried_over(&flows, &counters);
    }
    metrics.set_counter_map(counters);
    let ports = config.protect.port_words();
    let capacity = (load.v4_capacity, load.v6_capacity);
    let protect = if datapath.adopted() {
        Protect::adopt(datapath.ebpf(), &ports, capacity)?
    } else {
        Protect::take(datapath.ebpf(), &ports, capacity)?
    };
    let manual_store = match &pin_dir {
        Some(dir) => Some(crate::protect::pinned::ManualStore::open(dir)?),
        None => None,
    };
    let protect_metrics = ProtectMetrics::register(metrics.registry())?;
    for (check, mode) in config.protect.check_modes() {
        protect_metrics
            .mode_info
            .with_label_values(&[check, mode.as_str()])
            .set(1);
    }
    metrics.set_verdicts(VerdictSync::new(
        VerdictMap::take(datapath.ebpf())?,
        protect_metrics.clone(),
        config.protect.list_names(),
    ));
    let worker = Worker::start(&config.protect, protect, protect_metrics, manual_store)?;
    let drop_events = DropEvents::start(
        datapath.ebpf(),
        eve.clone(),
        drops::Names {
            lists: config.protect.list_names(),
            ifaces: ifnames.clone(),
        },
    )?;
    let (control_tx, mut control_rx) = tokio::sync::mpsc::channel(16);
    let control_server = control::serve(&config.protect.control_socket, control_tx)
        .await
        .context("starting the control socket (`--socket` or [protect] control_socket)")?;
    info!(
        "control socket {}: `precinct block` and `precinct lists reload` talk to it",
        config.protect.control_socket.display()
    );
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
        alerts: config.alerts,
        max_flows: config.inspect.max_flows,
        defrag: config.inspect.defrag_limits(),
        dns_version: config.dns_layout(),
        encryption: config.inspect.encryption_handling,
        ..InspectConfig::default()
    };
    let live = Live::start(
        ring,
        inspect_cfg,
        rule_set.map(Arc::new),
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
    let eve_files = eve.clone();
    let sweeper = Sweeper {
        flows,
        control,
        pending,
        eve,
        events_seen: BTreeMap::new(),
        metrics: metrics.clone(),
        config,
        ifnames,
        flow_capacity: load.flow_capacity,
        untracked_seen: None,
        pressure,
    };
    let (stop_sweeps, sweeps) = sweeper.spawn(interval)?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    // Compiling a large rule set takes seconds: it runs on a blocking thread while packets,
    // sweeps and scrapes go on. A SIGHUP during a reload asks for one more after it, since
    // the files may have changed again since that reload read them.
    let mut reload: Option<Reload> = None;
    let mut reload_again = false;
    let pinned = datapath.pinned();
    info!(
        "running; SIGHUP reloads the rules and list files, SIGINT or SIGTERM stops {}",
        if pinned {
            "(the programs stay attached: pinned in bpffs)"
        } else {
            "and flushes every flow"
        }
    );
    loop {
        tokio::select! {
            Some((req, reply)) = control_rx.recv() => {
                if !worker.send(Command::Control(req, reply)) {
                    warn!("the protection worker is gone; control requests cannot be served");
                }
            }
            _ = sighup.recv() => {
                info!("SIGHUP: reopening the EVE files");
                if let Err(e) = eve_files.reopen() {
                    warn!("reopening the EVE file: {e:#}; writing on to the old one");
                }
                info!("SIGHUP: reloading the list files");
                worker.send(Command::Reload);
                if reload.is_some() {
                    info!("SIGHUP: a reload is running; reloading again when it ends");
                    reload_again = true;
                } else {
                    info!("SIGHUP: reloading the rules");
                    reload = Some(tokio::task::spawn_blocking(rules.reload_job()));
                }
            }
            done = async {
                match reload.as_mut() {
                    Some(job) => job.await,
                    // Not polled: the condition disables the branch without a job.
                    None => std::future::pending().await,
                }
            }, if reload.is_some() =>
            {
                reload = None;
                rules.finish_reload(done, &live, &metrics);
                if std::mem::take(&mut reload_again) {
                    reload = Some(tokio::task::spawn_blocking(rules.reload_job()));
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    if pinned {
        info!(
            "stopping; the programs stay attached and keep counting: flows still active are \
             reported by the next agent, flow heads and drop events wait in the pinned rings \
             (what does not fit is counted in the kernel's ring-full counters)"
        );
    } else {
        info!("stopping: flushing flows");
    }
    // The sweeps stop first; the last one runs below, after the programs are gone.
    drop(stop_sweeps);
    let mut sweeper = sweeps
        .join()
        .map_err(|_| anyhow::anyhow!("the flow sweep thread panicked"))?;
    // The agent detaches its own programs now: no failure for the health checks to report.
    metrics.lock().clear_health_checks();
    // Detach first so that the flush sees final counters (the maps outlive the programs).
    // Pinned links stay: dropping closes their descriptors only.
    drop(datapath);
    drop(control_rx);
    let _ = control_server.await;
    drop(worker);
    drop_events.stop();
    // Then inspect what the kernel had already sent, before the last flow records.
    if let Err(e) = live.stop() {
        warn!("stopping live inspection: {e:#}");
    }
    let result = sweeper.sweep(!pinned);
    // The last records are written: give the outputs a bounded time to deliver them.
    sweeper.eve.shutdown_outputs(Duration::from_secs(5));
    if let Some(server) = server {
        server.abort();
    }
    result
}
