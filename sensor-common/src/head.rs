//! Flow heads: which packets the kernel programs copy into the `PRECINCT_HEADS` ring buffer
//! for deep inspection, the record that carries each one, and the settings and per-flow
//! control that steer the choice.
//!
//! A flow's head is its first packets in each direction, up to a budget of
//! [`Settings::head_bytes`] per direction: each packet costs its L4 payload bytes, and at least
//! [`MIN_COST`] (so that a stream of empty ACKs ends too). Every packet of the head is sent
//! whole (from the Ethernet header, up to [`MAX_CAPTURE`] bytes), so userspace decodes it with
//! the same parser as a capture file; the ACKs among them tell its reassembly when data was
//! acknowledged. After the head: every TCP FIN or RST (so the pipeline sees the flow end), and
//! optionally one packet in [`Settings::sample_one_in`]. Userspace may mark a flow
//! [`mode::BYPASS`] (send nothing more) or [`mode::KEEP`] (send everything) through the control
//! map.
//!
//! The budget lives in the flow's per-CPU value ([`FlowStats::head_sent`]), so a packet beyond
//! the head costs a few comparisons on a value the accounting already loaded. A flow whose
//! packets move between CPUs may send up to one head per CPU.

use crate::{
    flow::{tcp, FlowKey, FlowStats},
    parse::Parsed,
};

/// Default head budget per direction, bytes (see the module documentation).
pub const DEFAULT_HEAD_BYTES: u32 = 4096;
/// Default ring-buffer size, bytes (a power of two, a multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 8 << 20;
/// Default capacity of the control map.
pub const DEFAULT_CONTROL_CAPACITY: u32 = 65_536;
/// At most this many bytes of a frame are copied into a record; longer frames (jumbo frames,
/// GSO packets at egress) are truncated and counted.
pub const MAX_CAPTURE: usize = 4096;
/// What a packet without payload (or with less) costs from the head budget.
pub const MIN_COST: u32 = 64;
/// Record payload sizes the kernel reserves (the ring buffer needs sizes known when the
/// program is verified): the smallest that holds the captured bytes is used.
pub const CAPTURE_CLASSES: [usize; 6] = [128, 256, 512, 1024, 2048, MAX_CAPTURE];

/// Per-flow modes, the values of the control map.
pub mod mode {
    /// Head and samples as the settings say.
    pub const NORMAL: u8 = 0;
    /// Send nothing more for this flow.
    pub const BYPASS: u8 = 1;
    /// Send every packet of this flow.
    pub const KEEP: u8 = 2;
}

/// Why a record was sent ([`HeadRecord::flags`]).
pub mod flag {
    /// Part of the flow's head.
    pub const HEAD: u8 = 0x01;
    /// A 1-in-N sample after the head.
    pub const SAMPLE: u8 = 0x02;
    /// The flow is marked [`super::mode::KEEP`].
    pub const KEEP: u8 = 0x04;
    /// The frame was longer than [`super::MAX_CAPTURE`]: only its first bytes are in the record.
    pub const TRUNCATED: u8 = 0x08;
    /// A TCP FIN or RST after the head.
    pub const CLOSE: u8 = 0x10;
}

/// The one entry of the settings array map, written by userspace after load.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    /// Head budget of each direction (see the module documentation); 0 sends no heads.
    pub head_bytes: u32,
    /// After the head, send one packet in this many (0: none).
    pub sample_one_in: u32,
    /// Bumped by userspace after each change to the control map: a flow whose value has
    /// another epoch looks its mode up again.
    pub control_epoch: u32,
    /// Slots of the pending table minus one (a power of two minus one): the mask that turns
    /// a flow's hash into its slot ([`crate::pending::slot`]); 0 turns the table off (every
    /// flow enters the flow map with its first packet).
    pub pending_mask: u32,
}

const _: () = assert!(core::mem::size_of::<Settings>() == 16);

impl Settings {
    /// The defaults: 4 KiB heads, no sampling.
    pub const DEFAULT: Settings = Settings {
        head_bytes: DEFAULT_HEAD_BYTES,
        sample_one_in: 0,
        control_epoch: 0,
        pending_mask: 0,
    };
}

/// The header of one ring-buffer record; the first [`HeadRecord::cap_len`] bytes of the frame
/// follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HeadRecord {
    /// `CLOCK_MONOTONIC` time the packet was seen, ns.
    pub ts_ns: u64,
    /// The flow's first-seen time on the CPU that sent the record ([`FlowStats::first_ns`]):
    /// with the key, what the agent's flow id is made of, so protocol records can carry the
    /// flow record's id.
    pub flow_first_ns: u64,
    /// The flow, as in the flow map (the interface is `key.ifindex`).
    pub key: FlowKey,
    /// Length of the whole frame (of the whole GSO packet at egress).
    pub orig_len: u32,
    /// Bytes of the frame in the record.
    pub cap_len: u16,
    /// [`crate::Hook`] the packet was seen at.
    pub hook: u8,
    /// Direction of the packet within the key ([`crate::flow::DIR_AB`] or `DIR_BA`).
    pub dir: u8,
    /// [`flag`] bits.
    pub flags: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
}

/// Size of [`HeadRecord`]: the frame starts at this offset in a record.
pub const RECORD_HEADER: usize = core::mem::size_of::<HeadRecord>();
const _: () = assert!(RECORD_HEADER == 72);

/// Bytes of L4 payload in the packet.
#[inline(always)]
pub fn payload_len(p: &Parsed) -> u32 {
    p.ip_end.saturating_sub(p.payload_off)
}

/// What the packet costs from its direction's head budget.
#[inline(always)]
pub fn cost(p: &Parsed) -> u32 {
    let n = payload_len(p);
    if n < MIN_COST {
        MIN_COST
    } else {
        n
    }
}

/// Decides whether the packet just accounted into `stats` (its flow's value on this CPU) is
/// sent, charging the head budget, and returns the record's [`flag`]s (0: not sent).
/// `stats.head_mode` must be current (see [`FlowStats::control_stale`]).
#[inline(always)]
pub fn select(stats: &mut FlowStats, p: &Parsed, dir: usize, s: &Settings) -> u8 {
    // Constant indexes only (see `FlowStats::account`).
    if dir & 1 == 0 {
        select_dir::<0>(stats, p, s)
    } else {
        select_dir::<1>(stats, p, s)
    }
}

#[inline(always)]
fn select_dir<const D: usize>(stats: &mut FlowStats, p: &Parsed, s: &Settings) -> u8 {
    let sent = stats.head_sent[D];
    // The parser leaves `tcp_flags` 0 for anything but TCP.
    let closing = p.tcp_flags & (tcp::FIN | tcp::RST) != 0;
    // The common case, a packet of a normal flow past its head with sampling off, leaves here.
    if sent >= s.head_bytes && s.sample_one_in == 0 && stats.head_mode == mode::NORMAL && !closing {
        return 0;
    }
    match stats.head_mode {
        mode::BYPASS => 0,
        mode::KEEP => flag::KEEP,
        _ if sent < s.head_bytes => {
            stats.head_sent[D] = sent.saturating_add(cost(p));
            flag::HEAD
        }
        _ if closing => flag::CLOSE,
        _ => {
            let n = u64::from(s.sample_one_in);
            let seen = stats.pkts[0] + stats.pkts[1];
            if n != 0 && seen.is_multiple_of(n) {
                flag::SAMPLE
            } else {
                0
            }
        }
    }
}

impl FlowStats {
    /// `true` when userspace changed the control map since this value last read its mode.
    #[inline(always)]
    pub fn control_stale(&self, s: &Settings) -> bool {
        self.head_epoch != s.control_epoch
    }

    /// Records the mode read from the control map at `s`'s epoch.
    #[inline(always)]
    pub fn set_control(&mut self, head_mode: u8, s: &Settings) {
        self.head_mode = head_mode;
        self.head_epoch = s.control_epoch;
    }
}

/// Bytes of a frame of `len` bytes that go into a record, and whether that truncates it.
#[inline(always)]
pub fn capture_len(len: usize) -> (usize, bool) {
    if len > MAX_CAPTURE {
        (MAX_CAPTURE, true)
    } else {
        (len, false)
    }
}
