//! EVE sinks besides the main EVE file: `[[outputs]]` (file, stdout, Unix sockets, syslog,
//! HTTP, Redis), each with its own event-type filter, its own thread and a bounded queue. The
//! [`crate::eve::EveWriter`] hands every record to [`Outputs::send`], which never blocks: a
//! full queue drops the record for that sink only, and counts it. The http sink's thread
//! writes to an on-disk spool (see [`spool`]), so a collector outage costs disk, not records.

pub mod file;
pub mod health;
pub mod http;
pub mod redis;
pub mod spec;
pub mod spool;
pub mod syslog;
pub mod unix;

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::{self, RecvTimeoutError, SyncSender, TryRecvError, TrySendError},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use log::{info, warn};

pub use health::{OutputHealth, SinkStats};
pub use spec::{OutputSpec, SinkType};

/// One EVE record on its way to a sink.
#[derive(Clone, Debug)]
pub struct Record {
    /// The JSON object, identity included, without the newline.
    pub line: Bytes,
    /// Its `event_type`.
    pub kind: Arc<str>,
    /// Its syslog severity (0 emergency … 7 debug), see [`syslog::severity`].
    pub severity: u8,
}

/// What a sink did with the front of a batch: how many records it dealt with (delivered, or
/// failed and counted), and the error that stopped it early; the rest is retried after a
/// backoff.
pub(crate) type Sent = (usize, Option<anyhow::Error>);

/// A destination, driven by its own thread ([`run_queue`]).
pub(crate) trait Sink: Send {
    /// Delivers records from the front of `batch`, in order, counting them in its stats.
    fn send(&mut self, batch: &[Record]) -> Sent;
    /// The queue is empty: flush buffers, rotate by time.
    fn idle(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// SIGHUP: reopen files.
    fn reopen(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// After the last record (shutdown).
    fn finish(&mut self) -> anyhow::Result<()> {
        self.idle()
    }
}

/// Signals from the agent to a sink's threads.
#[derive(Default)]
pub(crate) struct Control {
    reopen: AtomicBool,
    /// Set at shutdown: after it, delivery is abandoned.
    deadline: Mutex<Option<Instant>>,
}

impl Control {
    fn deadline(&self) -> Option<Instant> {
        *crate::sync::lock(&self.deadline)
    }

    /// `true` once the shutdown deadline passed.
    pub(crate) fn expired(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Sleeps `d`, in slices, but not past the shutdown deadline; `false` when it passed.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.expired() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

/// Exponential retry delays, doubling from `initial` to `max`, with ±20 % jitter.
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new((initial_ms, max_ms): (u64, u64)) -> Backoff {
        let initial = Duration::from_millis(initial_ms);
        Backoff {
            initial,
            max: Duration::from_millis(max_ms),
            next: initial,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        // Jitter from the clock, so that sensors that lost the same collector do not all
        // come back in the same millisecond.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        let permille = 800 + u64::from(nanos % 401);
        Duration::from_micros(d.as_micros() as u64 * permille / 1000)
    }
}

/// How often an idle sink thread wakes up (time rotation, SIGHUP).
const IDLE_TICK: Duration = Duration::from_millis(250);

/// The thread of a queued sink: takes batches from the queue, delivers them, retries with a
/// backoff, and at shutdown drains the queue until the deadline.
fn run_queue(
    mut sink: Box<dyn Sink>,
    rx: mpsc::Receiver<Record>,
    stats: Arc<SinkStats>,
    ctl: Arc<Control>,
    batch_max: usize,
    retry: (u64, u64),
) {
    let name = stats.name.clone();
    let mut pending: VecDeque<Record> = VecDeque::new();
    let mut backoff = Backoff::new(retry);
    let mut open = true;
    let mut failing = false;
    loop {
        if pending.is_empty() {
            if !open {
                break;
            }
            match rx.recv_timeout(IDLE_TICK) {
                Ok(r) => {
                    stats.queue.dec();
                    pending.push_back(r);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if ctl.reopen.swap(false, Ordering::Relaxed) {
                        if let Err(e) = sink.reopen() {
                            warn!("output {name:?}: reopening: {e:#}");
                        }
                    }
                    if let Err(e) = sink.idle() {
                        warn!("output {name:?}: {e:#}");
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    continue;
                }
            }
        }
        while open && pending.len() < batch_max {
            match rx.try_recv() {
                Ok(r) => {
                    stats.queue.dec();
                    pending.push_back(r);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        if ctl.reopen.swap(false, Ordering::Relaxed) {
            if let Err(e) = sink.reopen() {
                warn!("output {name:?}: reopening: {e:#}");
            }
        }
        let (done, err) = sink.send(pending.make_contiguous());
        pending.drain(..done.min(pending.len()));
        match err {
            None => {
                if std::mem::take(&mut failing) {
                    info!("output {name:?}: delivering again");
                }
                backoff.reset();
                if pending.is_empty() && stats.queue.get() <= 0 {
                    if let Err(e) = sink.idle() {
                        warn!("output {name:?}: {e:#}");
                    }
                }
            }
            Some(e) => {
                if !std::mem::replace(&mut failing, true) {
                    warn!(
                        "output {name:?}: {e:#}; retrying with backoff (records wait in its \
                         queue, {} at most, then are dropped and counted)",
                        stats.capacity
                    );
                }
                if !ctl.sleep(backoff.next_delay()) {
                    break;
                }
            }
        }
    }
    // Shutdown: whatever could not be delivered in time is given up.
    let mut left = pending.len() as u64;
    while rx.try_recv().is_ok() {
        stats.queue.dec();
        left += 1;
    }
    if left > 0 {
        stats.failed.inc_by(left);
        warn!("output {name:?}: {left} records not delivered before shutdown");
    }
    if let Err(e) = sink.finish() {
        warn!("output {name:?}: {e:#}");
    }
}

/// One configured output, as the fan-out sees it.
struct Handle {
    tx: SyncSender<Record>,
    types: Vec<String>,
    exclude: Vec<String>,
    stats: Arc<SinkStats>,
}

impl Handle {
    fn accepts(&self, kind: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == kind))
            && !self.exclude.iter().any(|t| t == kind)
    }
}

/// The configured outputs: their queues, threads and health.
pub struct Outputs {
    handles: Vec<Handle>,
    controls: Vec<Arc<Control>>,
    threads: Vec<(String, JoinHandle<()>)>,
    health: OutputHealth,
    /// Event types seen, shared by the records of each type.
    kinds: HashMap<String, Arc<str>>,
}

impl Outputs {
    /// Opens every output and starts its threads. `sensor_id` names batches (http) and is the
    /// syslog HOSTNAME. A file or spool that cannot be opened is an error; a server that
    /// does not answer is not (the sink retries).
    pub fn start(specs: &[OutputSpec], sensor_id: &str) -> anyhow::Result<Outputs> {
        spec::validate_all(specs).map_err(|e| anyhow::anyhow!(e))?;
        let mut outputs = Outputs {
            handles: Vec::new(),
            controls: Vec::new(),
            threads: Vec::new(),
            health: OutputHealth::default(),
            kinds: HashMap::new(),
        };
        for spec in specs {
            outputs
                .start_one(spec, sensor_id)
                .with_context(|| format!("starting output {:?}", spec.name()))?;
        }
        Ok(outputs)
    }

    fn start_one(&mut self, spec: &OutputSpec, sensor_id: &str) -> anyhow::Result<()> {
        let name = spec.name();
        let capacity = spec.queue_events.unwrap_or(spec::defaults::QUEUE_EVENTS);
        let stuck_after = (spec.kind == SinkType::Http).then(|| {
            Duration::from_secs(
                spec.stuck_after_secs
                    .unwrap_or(spec::defaults::STUCK_AFTER_SECS),
            )
        });
        let stats = self.health.add(&name, spec.kind, capacity, stuck_after);
        let ctl = Arc::new(Control::default());
        let mut batch_max = 64;
        let sink: Box<dyn Sink> = match spec.kind {
            SinkType::File => Box::new(file::FileSink::open(spec, stats.clone())?),
            SinkType::Stdout => Box::new(file::FileSink::stdout(stats.clone())),
            SinkType::UnixDgram | SinkType::UnixStream => {
                Box::new(unix::UnixSink::new(spec, stats.clone()))
            }
            SinkType::Syslog => Box::new(syslog::SyslogSink::new(spec, sensor_id, stats.clone())?),
            SinkType::Redis => {
                batch_max = spec
                    .batch_events
                    .unwrap_or(spec::defaults::REDIS_BATCH_EVENTS);
                Box::new(redis::RedisSink::new(spec, stats.clone()))
            }
            SinkType::Http => {
                let (writer, sender) = http::start(spec, sensor_id, stats.clone(), ctl.clone())?;
                self.threads.push((format!("{name} sender"), sender));
                batch_max = 1024;
                Box::new(writer)
            }
        };
        let (tx, rx) = mpsc::sync_channel(capacity);
        let thread = std::thread::Builder::new()
            .name(format!("out-{}", name.chars().take(11).collect::<String>()))
            .spawn({
                let (stats, ctl, retry) = (stats.clone(), ctl.clone(), spec.retry());
                move || run_queue(sink, rx, stats, ctl, batch_max, retry)
            })
            .context("starting the output's thread")?;
        // The queue thread first: at shutdown it must finish before the http sender.
        self.threads.insert(
            self.threads.len() - usize::from(spec.kind == SinkType::Http),
            (name.clone(), thread),
        );
        self.controls.push(ctl);
        self.handles.push(Handle {
            tx,
            types: spec.types.clone(),
            exclude: spec.exclude_types.clone(),
            stats,
        });
        info!("output {name:?} ({}) started", spec.kind.as_str());
        Ok(())
    }

    /// The outputs' metrics and health, to register and to ask.
    pub fn health(&self) -> OutputHealth {
        self.health.clone()
    }

    /// Queues `line` (one record's JSON, without its newline) for every output whose filter
    /// takes `kind`. Never blocks: a full queue drops the record for that output.
    pub fn send(&mut self, kind: &str, alert_severity: Option<u8>, line: &[u8]) {
        let mut shared: Option<Record> = None;
        for h in &self.handles {
            if !h.accepts(kind) {
                continue;
            }
            let r = shared.get_or_insert_with(|| {
                let kind = match self.kinds.get(kind) {
                    Some(k) => k.clone(),
                    None => {
                        let k: Arc<str> = Arc::from(kind);
                        self.kinds.insert(kind.to_owned(), k.clone());
                        k
                    }
                };
                Record {
                    line: Bytes::copy_from_slice(line),
                    severity: syslog::severity(&kind, alert_severity),
                    kind,
                }
            });
            h.stats.queue.inc();
            match h.tx.try_send(r.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    h.stats.queue.dec();
                    h.stats.dropped.inc();
                }
            }
        }
    }

    /// Asks file outputs to reopen their files (SIGHUP, after logrotate moved them).
    pub fn reopen(&self) {
        for c in &self.controls {
            c.reopen.store(true, Ordering::Relaxed);
        }
    }

    /// Stops accepting records, lets every output deliver what it holds for up to `within`
    /// (an http output keeps the rest in its spool for the next start), and returns.
    pub fn shutdown(self, within: Duration) {
        let deadline = Instant::now() + within;
        drop(self.handles);
        for c in &self.controls {
            *crate::sync::lock(&c.deadline) = Some(deadline);
        }
        // Threads blocked in a network call past the deadline are left to the process exit.
        let grace = deadline + Duration::from_secs(1);
        for (name, t) in self.threads {
            while !t.is_finished() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                warn!("output {name:?} did not stop in time");
            }
        }
    }
}
