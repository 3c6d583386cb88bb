//! The pending table's half of the kernel programs (see `sensor_common::pending`): a packet
//! of a flow the flow map does not hold is counted in its slot, its frame kept when it is the
//! first of its direction, and the flow promoted into the flow map once the packet confirms
//! it, the kept frames going out as the head's first records.

use aya_ebpf::{bindings::BPF_F_MMAPABLE, helpers::bpf_ktime_get_ns, macros::map, maps::Array};
use sensor_common::{
    counters::{id, Counters},
    flow::{FlowKey, FlowStats},
    head::{self, HeadRecord, RECORD_HEADER},
    pending::{self, Pending, Step, ANSWER_STASH, DEFAULT_PENDING_SLOTS, OPENER_STASH},
    Hook, Parsed,
};

use crate::kernel::{heads, wakeup, CopyOut, FlowTable, EEXIST, HEADS, SETTINGS};

/// Flows not yet confirmed (see `sensor_common::pending`); userspace sizes it at load and
/// writes the mask into the settings. Memory-mappable, so that the agent reads the slots it
/// turns into flow records without a system call per slot.
#[map(name = "PRECINCT_PENDING")]
static PENDING: Array<Pending> = Array::with_max_entries(DEFAULT_PENDING_SLOTS, BPF_F_MMAPABLE);

/// Accounts a packet of a flow the flow map does not hold into its pending slot, keeps its
/// frame when it is the first of its direction, and promotes the flow into the flow map when
/// the packet confirms it: the kept frames go out as the head's first records, then the
/// packet's own head decision.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "inlined into account, which has each part at hand; a struct would cost stack"
)]
pub(crate) fn pend<T: FlowTable, F: CopyOut>(
    flows: &T,
    p: &Parsed,
    key: &FlowKey,
    dir: usize,
    len: usize,
    frame: &F,
    hook: Hook,
    segs: u64,
    wire_len: u64,
    counters: &mut Counters,
) {
    let Some(s) = SETTINGS.get(0) else {
        return;
    };
    let Some(slot) = PENDING.get_ptr_mut(pending::slot(key, s.pending_mask)) else {
        return;
    };
    // SAFETY: a map value; another CPU writing the same slot at once can only mix two
    // unconfirmed flows' counts (see `sensor_common::pending`).
    let slot = unsafe { &mut *slot };
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    counters.c[id::PENDING_PACKETS] += segs;
    let step = slot.account(key, p, dir, hook, segs, wire_len, now);
    match step {
        Step::Opened | Step::Overwrote => {
            if step == Step::Opened {
                counters.c[id::PENDING_OPENED] += 1;
            } else {
                counters.c[id::PENDING_OVERWRITTEN] += 1;
            }
            let (n, cut) = pending::stash_len(len, OPENER_STASH);
            let n = if n > OPENER_STASH as u32 {
                OPENER_STASH as u32
            } else {
                n
            };
            if frame.copy_to(slot.opener.as_mut_ptr(), n) == 0 {
                slot.opener_cap = n as u16;
            }
            if cut {
                counters.c[id::PENDING_STASH_TRUNCATED] += 1;
            }
        }
        Step::Answered => {
            let (n, cut) = pending::stash_len(len, ANSWER_STASH);
            let n = ((n - 1) & (ANSWER_STASH as u32 - 1)) + 1;
            if frame.copy_to(slot.answer.as_mut_ptr(), n) == 0 {
                slot.answer_cap = n as u16;
            }
            if cut {
                counters.c[id::PENDING_STASH_TRUNCATED] += 1;
            }
        }
        Step::Counted => {}
    }
    if !pending::confirms(&slot.stats, p, dir) {
        return;
    }
    // The kept frames first, in the order they were seen, charged to their directions; not
    // the frame of this packet, whose own head decision follows.
    match step {
        Step::Opened | Step::Overwrote => slot.opener_cap = 0,
        Step::Answered => slot.answer_cap = 0,
        Step::Counted => {}
    }
    let od = (slot.opener_dir & 1) as usize;
    if s.head_bytes > 0 && slot.opener_cap > 0 {
        send_kept::<OPENER_STASH>(&slot.opener, slot, true, key, counters);
        charge(&mut slot.stats, od, u32::from(slot.opener_cost));
        slot.opener_cap = 0;
    }
    if s.head_bytes > 0 && slot.answer_cap > 0 {
        send_kept::<ANSWER_STASH>(&slot.answer, slot, false, key, counters);
        charge(&mut slot.stats, od ^ 1, u32::from(slot.answer_cost));
        slot.answer_cap = 0;
    }
    match flows.create(key, &slot.stats) {
        Ok(()) => {
            counters.c[id::FLOWS_CREATED] += 1;
            counters.c[id::PENDING_PROMOTED] += 1;
            slot.state = pending::state::EMPTY;
        }
        // Another CPU promoted it between our lookup and now: its value goes on from there.
        Err(e) if e == -EEXIST => slot.state = pending::state::EMPTY,
        Err(_) => {
            // The flow map is full: the slot goes on counting the flow and spending its head.
            counters.c[id::FLOWS_NOT_TRACKED] += 1;
            heads(&mut slot.stats, p, key, dir, len, frame, hook, counters);
            return;
        }
    }
    if let Some(stats) = flows.lookup(key) {
        // SAFETY: a per-CPU value only programs on this CPU write.
        heads(
            unsafe { &mut *stats },
            p,
            key,
            dir,
            len,
            frame,
            hook,
            counters,
        );
    }
}

/// Whether the pending table is on (`flows.pending_slots` above 0).
#[inline(always)]
pub(crate) fn on() -> bool {
    SETTINGS.get(0).is_some_and(|s| s.pending_mask != 0)
}

/// Whether the flow's slot holds it as an unconfirmed flow: then even a packet the host sends
/// as a trusted opener (a UDP reply looks like one) belongs to that flow and confirms it
/// there, rather than starting a second entry beside it.
#[inline(always)]
pub(crate) fn holds(key: &FlowKey) -> bool {
    let Some(s) = SETTINGS.get(0) else {
        return false;
    };
    PENDING
        .get(pending::slot(key, s.pending_mask))
        .is_some_and(|slot| {
            slot.state == pending::state::PENDING && pending::same_flow(&slot.key, key)
        })
}

/// Charges `cost` to direction `d`'s head budget (constant indexes, see `FlowStats::account`).
#[inline(always)]
fn charge(stats: &mut FlowStats, d: usize, cost: u32) {
    if d == 0 {
        stats.head_sent[0] = stats.head_sent[0].saturating_add(cost);
    } else {
        stats.head_sent[1] = stats.head_sent[1].saturating_add(cost);
    }
}

/// Sends a frame a pending slot kept (`opener`: the opener's, else the answer's) as a head
/// record.
#[inline(always)]
fn send_kept<const CAP: usize>(
    bytes: &[u8; CAP],
    slot: &Pending,
    opener: bool,
    key: &FlowKey,
    counters: &mut Counters,
) {
    let (ts, orig, cap, hook, dir) = if opener {
        (
            slot.opener_ts_ns,
            slot.opener_len,
            slot.opener_cap,
            slot.opener_hook,
            slot.opener_dir & 1,
        )
    } else {
        (
            slot.answer_ts_ns,
            slot.answer_len,
            slot.answer_cap,
            slot.answer_hook,
            (slot.opener_dir & 1) ^ 1,
        )
    };
    let Some(mut entry) = HEADS.reserve_bytes(RECORD_HEADER + CAP, 0) else {
        counters.c[id::RINGBUF_RESERVE_FAILURES] += 1;
        return;
    };
    let mut flags = head::flag::HEAD;
    if orig > u32::from(cap) {
        flags |= head::flag::TRUNCATED;
    }
    let base = entry.as_mut_ptr();
    // SAFETY: the reservation is 8-aligned and RECORD_HEADER + CAP bytes long; the header
    // takes its first RECORD_HEADER bytes, the kept frame (CAP bytes, a multiple of 8, at an
    // 8-aligned offset of the slot) the rest.
    unsafe {
        let h = base as *mut HeadRecord;
        (*h).ts_ns = ts;
        (*h).flow_first_ns = slot.stats.first_ns;
        (*h).key = *key;
        (*h).orig_len = orig;
        (*h).cap_len = cap;
        (*h).hook = hook;
        (*h).dir = dir;
        (*h).flags = flags;
        (*h)._pad = [0; 3];
        let src = bytes.as_ptr() as *const u64;
        let dst = base.add(RECORD_HEADER) as *mut u64;
        let mut i = 0;
        while i < CAP / 8 {
            *dst.add(i) = *src.add(i);
            i += 1;
        }
    }
    entry.submit(wakeup());
    counters.c[id::HEAD_RECORDS] += 1;
    counters.c[id::HEAD_BYTES] += u64::from(cap);
    if flags & head::flag::TRUNCATED != 0 {
        counters.c[id::HEAD_TRUNCATED] += 1;
    }
}
