//! The host model of the kernel programs: what their counters, flow map and ring buffer of
//! flow heads must hold after a sequence of packets on one CPU, computed with the same
//! `sensor-common` code the programs run. Kernel tests compare the two after every packet.

use std::collections::BTreeMap;

use sensor_common::{
    counters::{id, Counters},
    flow::{FlowKey, FlowStats},
    head::{self, HeadRecord, Settings},
    parse,
    pending::{self, Pending, Step, ANSWER_STASH, OPENER_STASH},
    Hook, Parsed,
};

/// `BPF_PROG_TEST_RUN` runs packets "received" on the loopback device of the caller's netns.
pub const TEST_RUN_IFINDEX: u32 = 1;

/// What the kernel should hold.
#[derive(Default)]
pub struct Model {
    /// The hook's counters (the ingress hook's when the model sees both).
    pub counters: Counters,
    /// The egress hook's counters when a test sends frames through both hooks
    /// ([`Model::account_at`]).
    pub egress_counters: Counters,
    /// The flow map (timestamps 1).
    pub flows: BTreeMap<FlowKey, FlowStats>,
    /// The head settings as written to the settings map.
    pub settings: Settings,
    /// The control map.
    pub control: BTreeMap<FlowKey, u8>,
    /// Records expected in the ring buffer and not yet compared (timestamp 0, flow first-seen
    /// time 1 as in `flows`).
    pub records: Vec<(HeadRecord, Vec<u8>)>,
    /// The pending table's occupied slots, by index (timestamps 1), when it is on.
    pub pending: BTreeMap<u32, Pending>,
}

impl Model {
    /// A model of an object loaded with `settings`.
    pub fn new(settings: Settings) -> Model {
        Model {
            settings,
            ..Model::default()
        }
    }

    /// Accounts one frame seen at `hook` into that hook's counters (`counters` for ingress,
    /// `egress_counters` for egress), for tests that drive both programs.
    pub fn account_at(&mut self, frame: &[u8], hook: Hook) {
        if hook == Hook::Egress {
            std::mem::swap(&mut self.counters, &mut self.egress_counters);
        }
        self.account(frame, hook);
        if hook == Hook::Egress {
            std::mem::swap(&mut self.counters, &mut self.egress_counters);
        }
    }

    /// Accounts one frame seen at `hook`, as the program would.
    pub fn account(&mut self, frame: &[u8], hook: Hook) {
        let p = parse(frame);
        let len = frame.len() as u64;
        self.counters.count_packet(&p, len, 1);
        if !p.is_trackable() {
            return;
        }
        let (key, dir) = FlowKey::from_parsed(&p, TEST_RUN_IFINDEX);
        let held = || {
            let index = pending::slot(&key, self.settings.pending_mask);
            self.pending.get(&index).is_some_and(|s| {
                s.state == pending::state::PENDING && pending::same_flow(&s.key, &key)
            })
        };
        if !self.flows.contains_key(&key)
            && self.settings.pending_mask != 0
            && (!pending::trusted_opener(&p, hook) || held())
        {
            self.pend(&p, key, dir, frame, hook);
            return;
        }
        let counters = &mut self.counters;
        let stats = self.flows.entry(key).or_insert_with(|| {
            counters.c[id::FLOWS_CREATED] += 1;
            FlowStats::default()
        });
        // Timestamps are the kernel's; the model uses 1 and compares everything else.
        stats.account(&p, dir, 1, len, 1);
        self.head(&p, key, dir, frame, hook);
    }

    /// The pending table's part (see `sensor_common::pending` and the kernel's `pend`).
    fn pend(&mut self, p: &Parsed, key: FlowKey, dir: usize, frame: &[u8], hook: Hook) {
        let len = frame.len();
        let index = pending::slot(&key, self.settings.pending_mask);
        let slot = self.pending.entry(index).or_default();
        self.counters.c[id::PENDING_PACKETS] += 1;
        let step = slot.account(&key, p, dir, hook, 1, len as u64, 1);
        match step {
            Step::Opened | Step::Overwrote => {
                let which = if step == Step::Opened {
                    id::PENDING_OPENED
                } else {
                    id::PENDING_OVERWRITTEN
                };
                self.counters.c[which] += 1;
                let (n, cut) = pending::stash_len(len, OPENER_STASH);
                let n = n as usize;
                slot.opener = [0; OPENER_STASH];
                slot.opener[..n.min(len)].copy_from_slice(&frame[..n.min(len)]);
                slot.opener_cap = n as u16;
                if cut {
                    self.counters.c[id::PENDING_STASH_TRUNCATED] += 1;
                }
            }
            Step::Answered => {
                let (n, cut) = pending::stash_len(len, ANSWER_STASH);
                let n = n as usize;
                slot.answer = [0; ANSWER_STASH];
                slot.answer[..n.min(len)].copy_from_slice(&frame[..n.min(len)]);
                slot.answer_cap = n as u16;
                if cut {
                    self.counters.c[id::PENDING_STASH_TRUNCATED] += 1;
                }
            }
            Step::Counted => {}
        }
        if !pending::confirms(&slot.stats, p, dir) {
            return;
        }
        let od = usize::from(slot.opener_dir & 1);
        let mut slot = self.pending.remove(&index).expect("the slot");
        match step {
            Step::Opened | Step::Overwrote => slot.opener_cap = 0,
            Step::Answered => slot.answer_cap = 0,
            Step::Counted => {}
        }
        if self.settings.head_bytes > 0 && slot.opener_cap > 0 {
            let cap = usize::from(slot.opener_cap);
            let bytes = slot.opener[..cap].to_vec();
            let (l, h) = (slot.opener_len, slot.opener_hook);
            self.record(key, od, h, head::flag::HEAD, l, bytes);
            slot.stats.head_sent[od] += u32::from(slot.opener_cost);
        }
        if self.settings.head_bytes > 0 && slot.answer_cap > 0 {
            let cap = usize::from(slot.answer_cap);
            let bytes = slot.answer[..cap].to_vec();
            let (l, h) = (slot.answer_len, slot.answer_hook);
            self.record(key, od ^ 1, h, head::flag::HEAD, l, bytes);
            slot.stats.head_sent[od ^ 1] += u32::from(slot.answer_cost);
        }
        self.counters.c[id::FLOWS_CREATED] += 1;
        self.counters.c[id::PENDING_PROMOTED] += 1;
        let mut stats = slot.stats;
        (stats.first_ns, stats.last_ns) = (1, 1);
        self.flows.insert(key, stats);
        self.head(p, key, dir, frame, hook);
    }

    /// A record of `bytes`, the start of a frame of `orig_len` bytes (cut when shorter), as
    /// the kernel sends it, with its counters.
    fn record(
        &mut self,
        key: FlowKey,
        dir: usize,
        hook: u8,
        mut flags: u8,
        orig_len: u32,
        bytes: Vec<u8>,
    ) {
        let cap = bytes.len();
        if orig_len as usize > cap {
            flags |= head::flag::TRUNCATED;
            self.counters.c[id::HEAD_TRUNCATED] += 1;
        }
        self.counters.c[id::HEAD_RECORDS] += 1;
        self.counters.c[id::HEAD_BYTES] += cap as u64;
        self.records.push((
            HeadRecord {
                ts_ns: 0,
                // Every model timestamp is 1.
                flow_first_ns: 1,
                key,
                orig_len,
                cap_len: cap as u16,
                hook,
                dir: dir as u8,
                flags,
                _pad: [0; 3],
            },
            bytes,
        ));
    }

    /// The head decision for a packet just accounted into its flow-map entry.
    fn head(&mut self, p: &Parsed, key: FlowKey, dir: usize, frame: &[u8], hook: Hook) {
        let stats = self.flows.get_mut(&key).expect("the flow");
        if stats.control_stale(&self.settings) {
            let m = self
                .control
                .get(&key)
                .copied()
                .unwrap_or(head::mode::NORMAL);
            stats.set_control(m, &self.settings);
        }
        let flags = head::select(stats, p, dir, &self.settings);
        if flags == 0 {
            return;
        }
        let (cap, _) = head::capture_len(frame.len());
        let bytes = frame[..cap].to_vec();
        self.record(key, dir, hook as u8, flags, frame.len() as u32, bytes);
    }

    /// Sets a flow's mode as `HeadControl::set` does: the control map, then a new epoch.
    pub fn set_mode(&mut self, key: FlowKey, mode: u8) {
        if mode == head::mode::NORMAL {
            self.control.remove(&key);
        } else {
            self.control.insert(key, mode);
        }
        self.settings.control_epoch = self.settings.control_epoch.wrapping_add(1);
    }
}

/// Pins the calling thread to the CPU it runs on: per-CPU flow values (and with them the head
/// budgets) then all live on one CPU, as the model assumes.
pub fn pin_to_current_cpu() {
    // SAFETY: sched_getcpu has no preconditions; the cpu_set_t is zeroed and then filled with
    // the libc macros before it is passed by reference.
    unsafe {
        let cpu = libc::sched_getcpu();
        assert!(cpu >= 0, "sched_getcpu failed");
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let r = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(r, 0, "sched_setaffinity failed");
    }
}
