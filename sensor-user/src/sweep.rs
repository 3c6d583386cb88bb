//! The flow sweep of `precinct run`: on its own thread, every `flows.sweep_interval_ms`, it
//! reads the kernel's flow map in batches, writes a `flow` record for each flow that ended and
//! deletes those in batches, turns the pending table's idle unconfirmed flows into flow
//! records at a bounded rate, and brings the metrics up to date. Off the main loop, so that a
//! flood that fills the flow map slows neither `/healthz`, `/metrics` nor the control socket.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use log::warn;
use sensor_common::counters::id;

use crate::{
    config::Config,
    datapath::{heads::HeadControl, pending::PendingTable, FlowMap},
    eve::{flow::Inspected, EveWriter},
    flows::{self, Clock, Reason},
    metrics::Endpoint,
};

/// What the flow-map health check reports: set by each sweep, read by `/healthz`.
pub type Pressure = Arc<Mutex<Option<String>>>;

/// One sweep's bookkeeping, shared by the timer and the shutdown flush.
pub struct Sweeper {
    /// The kernel flow map.
    pub flows: FlowMap,
    /// Per-flow head modes, forgotten with their flows.
    pub control: HeadControl,
    /// The pending table, when on.
    pub pending: Option<PendingTable>,
    /// Where records go.
    pub eve: EveWriter,
    /// EVE records counted into the metrics so far, by event type.
    pub events_seen: BTreeMap<String, u64>,
    /// The metrics.
    pub metrics: Endpoint,
    /// The agent's configuration.
    pub config: Config,
    /// Interface names by index.
    pub ifnames: HashMap<u32, String>,
    /// Entries the flow map holds at most.
    pub flow_capacity: u32,
    /// Packets untracked because the flow map was full, as of the last sweep.
    pub untracked_seen: Option<u64>,
    /// The flow-map health check's state.
    pub pressure: Pressure,
}

impl Sweeper {
    /// Walks the flow map; reports and removes ended flows (all of them when `shutdown`).
    pub fn sweep(&mut self, shutdown: bool) -> anyhow::Result<()> {
        let now = flows::monotonic_ns();
        let clock = Clock::now();
        let all = self.flows.read_all()?;
        let mut ended = Vec::new();
        let mut by_reason: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (key, stats) in &all {
            let reason = if shutdown {
                Some(Reason::Shutdown)
            } else {
                flows::expiry(key, stats, now, &self.config.flows.timeouts)
            };
            let Some(reason) = reason else {
                continue;
            };
            let iface = self.ifnames.get(&key.ifindex).map(String::as_str);
            let record = crate::eve::flow::flow_record(
                key,
                stats,
                reason,
                &clock,
                iface,
                Inspected::default(),
            );
            self.eve.write(&record)?;
            *by_reason.entry(reason.as_str()).or_default() += 1;
            ended.push(*key);
        }
        let active = all.len() - ended.len();
        drop(all);
        if !shutdown {
            self.flows.remove_all(&ended)?;
            for key in &ended {
                self.control.forget(key)?;
            }
        }
        let (from_pending, occupied) = self.sweep_pending(now, &clock, shutdown)?;
        if from_pending > 0 {
            *by_reason
                .entry(pending_reason(shutdown).as_str())
                .or_default() += from_pending;
        }
        self.eve.flush()?;
        let mut m = self.metrics.lock();
        for (reason, n) in by_reason {
            m.flows_expired.with_label_values(&[reason]).inc_by(n);
        }
        m.pending_records.inc_by(from_pending);
        m.pending_occupied.set(occupied as i64);
        // Every producer writes through the same EVE writer: count what it wrote since.
        for (kind, n) in self.eve.counts() {
            let seen = self.events_seen.entry(kind.clone()).or_default();
            m.events.with_label_values(&[&kind]).inc_by(n - *seen);
            *seen = n;
        }
        m.flows_active.set(active as i64);
        m.flow_map_capacity.set(i64::from(self.flow_capacity));
        m.refresh();
        let untracked = m.kernel_total(id::FLOWS_NOT_TRACKED);
        drop(m);
        let problem = self
            .untracked_seen
            .and_then(|seen| full_map_problem(untracked.saturating_sub(seen), active, self));
        self.untracked_seen = Some(untracked);
        *crate::sync::lock(&self.pressure) = problem;
        Ok(())
    }

    /// Writes flow records for the pending table's unconfirmed flows that went idle (all of
    /// them at shutdown), at most `flows.pending_records_per_sec` a second. Returns how many
    /// it wrote and how many slots are occupied.
    fn sweep_pending(
        &mut self,
        now: u64,
        clock: &Clock,
        shutdown: bool,
    ) -> anyhow::Result<(u64, usize)> {
        let Some(table) = self.pending.as_mut() else {
            return Ok((0, 0));
        };
        let f = &self.config.flows;
        let per_sweep = f
            .pending_records_per_sec
            .saturating_mul(f.sweep_interval_ms)
            / 1000;
        let max = if f.pending_records_per_sec == 0 {
            0
        } else if shutdown {
            usize::MAX
        } else {
            usize::try_from(per_sweep.max(1)).unwrap_or(usize::MAX)
        };
        let idle_ns = f.timeouts.new_secs.saturating_mul(1_000_000_000);
        let (ended, occupied) = table.ended(now, idle_ns, shutdown, max);
        let reason = pending_reason(shutdown);
        for u in &ended {
            let iface = self.ifnames.get(&u.key.ifindex).map(String::as_str);
            let record = crate::eve::flow::flow_record(
                &u.key,
                &u.stats,
                reason,
                clock,
                iface,
                Inspected::default(),
            );
            self.eve.write(&record)?;
        }
        Ok((ended.len() as u64, occupied))
    }

    /// Runs the sweep every `interval` on a thread of its own until `stop` is sent or dropped;
    /// the thread hands the sweeper back for the shutdown flush.
    pub fn spawn(
        mut self,
        interval: Duration,
    ) -> anyhow::Result<(mpsc::Sender<()>, JoinHandle<Sweeper>)> {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("precinct-sweep".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if let Err(e) = self.sweep(false) {
                        warn!("sweeping the flow map: {e:#}");
                    }
                }
                self
            })?;
        Ok((stop, handle))
    }
}

/// Why an unconfirmed flow's record is written: it went idle, or the agent stops.
fn pending_reason(shutdown: bool) -> Reason {
    if shutdown {
        Reason::Shutdown
    } else {
        Reason::Timeout
    }
}

/// The health problem when packets of new flows went untracked since the last sweep.
fn full_map_problem(untracked: u64, active: usize, s: &Sweeper) -> Option<String> {
    (untracked > 0).then(|| {
        format!(
            "the kernel flow map is full ({active} of {} entries): {untracked} packets of new \
             flows went untracked in the last sweep interval and get no flow record or \
             inspection; raise flows.capacity{}",
            s.flow_capacity,
            if s.pending.is_none() {
                ", or turn on flows.pending_slots so that unconfirmed flows stay out of it"
            } else {
                ""
            }
        )
    })
}
