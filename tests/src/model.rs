//! The host model of the kernel programs: what their counters, flow map and ring buffer of
//! flow heads must hold after a sequence of packets on one CPU, computed with the same
//! `sensor-common` code the programs run. Kernel tests compare the two after every packet.

use std::collections::BTreeMap;

use sensor_common::{
    counters::{id, Counters},
    flow::{FlowKey, FlowStats},
    head::{self, HeadRecord, Settings},
    parse, Hook,
};

/// `BPF_PROG_TEST_RUN` runs packets "received" on the loopback device of the caller's netns.
pub const TEST_RUN_IFINDEX: u32 = 1;

/// What the kernel should hold.
#[derive(Default)]
pub struct Model {
    /// The hook's counters.
    pub counters: Counters,
    /// The flow map (timestamps 1).
    pub flows: BTreeMap<FlowKey, FlowStats>,
    /// The head settings as written to the settings map.
    pub settings: Settings,
    /// The control map.
    pub control: BTreeMap<FlowKey, u8>,
    /// Records expected in the ring buffer and not yet compared (timestamp 0, flow first-seen
    /// time 1 as in `flows`).
    pub records: Vec<(HeadRecord, Vec<u8>)>,
}

impl Model {
    /// A model of an object loaded with `settings`.
    pub fn new(settings: Settings) -> Model {
        Model {
            settings,
            ..Model::default()
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
        let counters = &mut self.counters;
        let stats = self.flows.entry(key).or_insert_with(|| {
            counters.c[id::FLOWS_CREATED] += 1;
            FlowStats::default()
        });
        // Timestamps are the kernel's; the model uses 1 and compares everything else.
        stats.account(&p, dir, 1, len, 1);
        if stats.control_stale(&self.settings) {
            let m = self
                .control
                .get(&key)
                .copied()
                .unwrap_or(head::mode::NORMAL);
            stats.set_control(m, &self.settings);
        }
        let mut flags = head::select(stats, &p, dir, &self.settings);
        if flags == 0 {
            return;
        }
        let (cap, truncated) = head::capture_len(frame.len());
        if truncated {
            flags |= head::flag::TRUNCATED;
            self.counters.c[id::HEAD_TRUNCATED] += 1;
        }
        self.counters.c[id::HEAD_RECORDS] += 1;
        self.counters.c[id::HEAD_BYTES] += cap as u64;
        self.records.push((
            HeadRecord {
                ts_ns: 0,
                flow_first_ns: stats.first_ns,
                key,
                orig_len: frame.len() as u32,
                cap_len: cap as u16,
                hook: hook as u8,
                dir: dir as u8,
                flags,
                _pad: [0; 3],
            },
            frame[..cap].to_vec(),
        ));
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
