//! The protection worker: one thread owns the table ingredients and the kernel tables, and
//! applies every change to them in turn: list reloads (SIGHUP, `precinct lists reload`),
//! manual entries and their expiry, and changes of the host's addresses. A failed update
//! leaves the tables in use as they were.

use std::{
    sync::mpsc::{self, RecvTimeoutError},
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context as _;
use log::{info, warn};
use tokio::sync::oneshot;

use crate::protect::pinned::ManualStore;

use super::{
    addrs,
    control::{Request, Response},
    metrics::ProtectMetrics,
    settings::ProtectSection,
    sources::Sources,
    Protect,
};

/// What the worker is asked to do.
pub enum Command {
    /// A control-socket request and where its answer goes.
    Control(Request, oneshot::Sender<Response>),
    /// Re-read every list file (SIGHUP).
    Reload,
    /// The kernel announced an address change.
    AddressesChanged,
    /// End the worker (the address watcher keeps a sender, so disconnection alone is not
    /// enough).
    Stop,
}

/// The worker thread and its inbox.
pub struct Worker {
    tx: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    sources: Sources,
    protect: Protect,
    metrics: ProtectMetrics,
    /// Where the manual entries outlive the agent (pinned datapath).
    store: Option<ManualStore>,
}

impl State {
    /// Rebuilds the tables and swaps them in; records the result under `trigger`.
    fn update(&mut self, trigger: &str) -> anyhow::Result<String> {
        let started = Instant::now();
        let (built, (v4, v6)) = self.sources.build();
        let policy = self.sources.section.policy();
        let result = self.protect.swap(&built, policy);
        let m = &self.metrics;
        match &result {
            Ok(_) => {
                m.reloads.with_label_values(&[trigger, "ok"]).inc();
                m.table_prefixes.with_label_values(&["ipv4"]).set(v4 as i64);
                m.table_prefixes.with_label_values(&["ipv6"]).set(v6 as i64);
                m.swap_seconds.set(started.elapsed().as_secs_f64());
            }
            Err(_) => m.reloads.with_label_values(&[trigger, "failed"]).inc(),
        }
        for l in &self.sources.lists {
            m.list_entries
                .with_label_values(&[&l.name])
                .set(l.prefixes.len() as i64);
            m.list_bad_lines
                .with_label_values(&[&l.name])
                .set(l.bad_lines as i64);
        }
        m.manual_entries.set(self.sources.manual.len() as i64);
        let r = result?;
        if let Some(store) = &mut self.store {
            if let Err(e) = store.save(&self.sources.manual) {
                warn!("saving the manual blocks for the next agent: {e:#}");
            }
        }
        Ok(format!(
            "tables updated in {:.2} s: {} IPv4 prefixes longer than /16, {} IPv6 prefixes",
            started.elapsed().as_secs_f64(),
            r.v4_prefixes,
            r.v6_prefixes
        ))
    }

    fn control(&mut self, req: Request) -> Response {
        if matches!(req, Request::ListsReload) {
            return self.reload("reload");
        }
        let before = self.sources.manual.clone();
        let Some((resp, changed)) = self.sources.manual.apply(&req, SystemTime::now()) else {
            return Response::error("unsupported request");
        };
        if !changed || !resp.ok {
            return resp;
        }
        match self.update("block") {
            Ok(_) => {
                let mode = self.sources.section.manual_mode();
                Response {
                    message: format!("{} (manual entries: mode {})", resp.message, mode.as_str()),
                    ..resp
                }
            }
            Err(e) => {
                self.sources.manual = before;
                Response::error(format!("the kernel tables were not changed: {e:#}"))
            }
        }
    }

    fn reload(&mut self, trigger: &str) -> Response {
        let failed = self.sources.reload_files();
        match self.update(trigger) {
            Ok(msg) if failed.is_empty() => {
                info!("lists reloaded: {msg}");
                Response::ok(format!("lists reloaded; {msg}"))
            }
            Ok(msg) => Response::error(format!(
                "{msg}; these lists could not be read and keep their previous entries: {}",
                failed.join("; ")
            )),
            Err(e) => {
                warn!("list reload failed; the tables in use stay: {e:#}");
                Response::error(format!("reload failed; the tables in use stay: {e:#}"))
            }
        }
    }

    fn refresh_addresses(&mut self) {
        match addrs::discover() {
            Ok(host) if host != self.sources.host => {
                info!(
                    "host addresses changed: {} addresses, {} connected subnets",
                    host.own.len(),
                    host.connected.len()
                );
                self.sources.host = host;
                if let Err(e) = self.update("addresses") {
                    warn!("updating the tables for new host addresses: {e:#}");
                }
            }
            Ok(_) => {}
            Err(e) => warn!("{e:#}"),
        }
    }
}

impl Worker {
    /// Loads the tables once (an error stops the agent before it runs half-configured), then
    /// starts the worker thread.
    pub fn start(
        section: &ProtectSection,
        protect: Protect,
        metrics: ProtectMetrics,
        mut store: Option<ManualStore>,
    ) -> anyhow::Result<Worker> {
        let host = if section.discover_addresses {
            addrs::discover()?
        } else {
            Default::default()
        };
        let mut sources = Sources::load(section.clone(), host)?;
        if let Some(store) = &mut store {
            sources.manual = store.load(section.manual_capacity, SystemTime::now());
            if !sources.manual.is_empty() {
                info!("{} manual blocks carried over", sources.manual.len());
            }
        }
        let mut state = State {
            sources,
            protect,
            metrics,
            store,
        };
        let msg = state
            .update("start")
            .context("loading the protection tables")?;
        info!("protection ({} mode): {msg}", section.mode.as_str());
        let discover = section.discover_addresses;
        let refresh = Duration::from_secs(section.address_refresh_seconds.max(1));
        let (tx, rx) = mpsc::channel();
        if discover {
            let watch_tx = tx.clone();
            if let Err(e) = addrs::watch(move || watch_tx.send(Command::AddressesChanged).is_ok()) {
                warn!(
                    "{e:#}; address changes are picked up every {} s",
                    refresh.as_secs()
                );
            }
        }
        let thread = std::thread::Builder::new()
            .name("precinct-protect".into())
            .spawn(move || run(state, rx, discover, refresh))
            .context("starting the protection worker thread")?;
        Ok(Worker {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands the worker a command; `false` when it is gone.
    pub fn send(&self, cmd: Command) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(cmd).is_ok())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Command::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(mut state: State, rx: mpsc::Receiver<Command>, discover: bool, refresh: Duration) {
    let mut last_refresh = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Command::Control(req, reply)) => {
                let _ = reply.send(state.control(req));
            }
            Ok(Command::Reload) => {
                state.reload("reload");
            }
            Ok(Command::AddressesChanged) => {
                // A burst of announcements (an interface coming up): the first re-read after
                // a short pause sees them all, the others find nothing new.
                std::thread::sleep(Duration::from_millis(20));
                last_refresh = Instant::now();
                state.refresh_addresses();
            }
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let gone = state.sources.manual.expire(SystemTime::now());
        if !gone.is_empty() {
            info!("{} manual entries expired", gone.len());
            if let Err(e) = state.update("expiry") {
                warn!("removing expired manual entries from the kernel: {e:#}");
            }
        }
        if discover && last_refresh.elapsed() >= refresh {
            last_refresh = Instant::now();
            state.refresh_addresses();
        }
    }
}
