//! Precinct's kernel programs: XDP ingress and TC egress flow accounting, and flow heads for
//! deep inspection.
//!
//! Both are thin: they run the shared parser from `sensor-common` over a bounds-checked view of
//! the packet, bump the hook's per-CPU counters, account the packet into the per-CPU flow map,
//! and copy the packets `sensor_common::head::select` picks into the ring buffer of flow heads.
//! They never drop anything (filtering comes with the protection policy).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_PIPE},
    helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns, bpf_skb_load_bytes, bpf_xdp_load_bytes},
    macros::{classifier, map, xdp},
    maps::{Array, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{TcContext, XdpContext},
};
use sensor_common::{
    counters::{id, Counters},
    flow::{FlowKey, FlowStats},
    head::{self, HeadRecord, Settings, RECORD_HEADER},
    parse_into, Hook, Packet, Parsed, DEFAULT_FLOW_CAPACITY,
};

const BPF_NOEXIST: u64 = 1;
const EEXIST: i32 = 17;

#[map(name = "PRECINCT_FLOWS")]
static FLOWS: PerCpuHashMap<FlowKey, FlowStats> =
    PerCpuHashMap::with_max_entries(DEFAULT_FLOW_CAPACITY, 0);

// Benchmark-only variants of the flow map, one entry each unless the benchmark resizes them at
// load: `cargo xtask bench` measures the map kinds against each other with the same code.
#[map(name = "BENCH_FLOWS_LRU_PERCPU")]
static BENCH_FLOWS_LRU_PERCPU: LruPerCpuHashMap<FlowKey, FlowStats> =
    LruPerCpuHashMap::with_max_entries(1, 0);
#[map(name = "BENCH_FLOWS_HASH")]
static BENCH_FLOWS_HASH: HashMap<FlowKey, FlowStats> = HashMap::with_max_entries(1, 0);
#[map(name = "BENCH_FLOWS_LRU")]
static BENCH_FLOWS_LRU: LruHashMap<FlowKey, FlowStats> = LruHashMap::with_max_entries(1, 0);

/// The operations accounting needs from a flow map, so every map kind runs the same code.
trait FlowTable {
    fn lookup(&self, key: &FlowKey) -> Option<*mut FlowStats>;
    fn create(&self, key: &FlowKey, value: &FlowStats) -> Result<(), i32>;
}

macro_rules! flow_table {
    ($($t:ident),*) => {$(
        impl FlowTable for $t<FlowKey, FlowStats> {
            #[inline(always)]
            fn lookup(&self, key: &FlowKey) -> Option<*mut FlowStats> {
                self.get_ptr_mut(key)
            }
            #[inline(always)]
            fn create(&self, key: &FlowKey, value: &FlowStats) -> Result<(), i32> {
                self.insert(key, value, BPF_NOEXIST).map_err(|e| e as i32)
            }
        }
    )*};
}
flow_table!(PerCpuHashMap, LruPerCpuHashMap, HashMap, LruHashMap);

/// Per-CPU scratch space for the parse result: keeps it off the 512-byte stack and avoids
/// zero-initialising a stack copy.
#[map(name = "PRECINCT_SCRATCH")]
static SCRATCH: PerCpuArray<Parsed> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "PRECINCT_COUNTERS")]
static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(2, 0);

/// Flow heads for userspace inspection; userspace sizes it at load.
#[map(name = "PRECINCT_HEADS")]
static HEADS: RingBuf = RingBuf::with_byte_size(head::DEFAULT_RING_BYTES, 0);

/// Head settings, written by userspace after load. An array lookup is inlined by the
/// verifier: reading it costs a few instructions.
#[map(name = "PRECINCT_SETTINGS")]
static SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

/// Per-flow bypass / keep, written by userspace; read only when the settings' epoch moved.
#[map(name = "PRECINCT_HEAD_CONTROL")]
static HEAD_CONTROL: HashMap<FlowKey, u32> =
    HashMap::with_max_entries(head::DEFAULT_CONTROL_CAPACITY, 0);

/// Copies the first bytes of the current packet into ring-buffer memory.
trait CopyOut {
    /// Copies `len` bytes from the start of the frame to `dst`; 0 on success.
    fn copy_to(&self, dst: *mut u8, len: u32) -> i64;
}

struct XdpFrame(*mut aya_ebpf::bindings::xdp_md);

impl CopyOut for XdpFrame {
    #[inline(always)]
    fn copy_to(&self, dst: *mut u8, len: u32) -> i64 {
        // SAFETY: `dst` points at `len` writable bytes of a ring-buffer reservation (checked by
        // the verifier too); the helper bounds-checks the packet.
        unsafe { bpf_xdp_load_bytes(self.0, 0, dst.cast(), len) }
    }
}

struct SkbFrame(*mut aya_ebpf::bindings::__sk_buff);

impl CopyOut for SkbFrame {
    #[inline(always)]
    fn copy_to(&self, dst: *mut u8, len: u32) -> i64 {
        // SAFETY: as for `XdpFrame`; the helper also reads non-linear skb data.
        unsafe { bpf_skb_load_bytes(self.0 as *const _, 0, dst.cast(), len) }
    }
}

/// Offsets beyond this are never needed for headers; the mask gives the verifier a bound.
const MAX_HEADER_OFFSET: usize = 0x0fff;

/// Direct packet access between `data` and `data_end`.
struct DirectPacket {
    start: usize,
    end: usize,
    /// Whole packet length; larger than `end - start` for a non-linear skb.
    len: usize,
}

impl Packet for DirectPacket {
    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn load<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        if off > MAX_HEADER_OFFSET {
            return None;
        }
        let at = self.start + (off & MAX_HEADER_OFFSET);
        if at + N > self.end {
            return None;
        }
        // SAFETY: `at .. at + N` lies inside the packet, checked against `data_end` above.
        Some(unsafe { core::ptr::read_unaligned(at as *const [u8; N]) })
    }
}

#[inline(always)]
fn account<T: FlowTable, F: CopyOut>(
    flows: &T,
    pkt: &DirectPacket,
    frame: &F,
    hook: Hook,
    ifindex: u32,
    segs: u64,
    offloaded_vlan: u16,
) {
    let Some(p) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch, used by this program invocation alone.
    let p = unsafe { &mut *p };
    parse_into(pkt, p);
    if p.vlan_tags == 0 {
        p.vlan = offloaded_vlan;
    }
    // A GSO packet leaves as `segs` frames, each repeating the headers.
    let wire_len = pkt.len as u64 + (segs - 1) * p.payload_off as u64;
    let Some(counters) = COUNTERS.get_ptr_mut(hook as u32) else {
        return;
    };
    // SAFETY: per-CPU slot, only this program instance on this CPU touches it now.
    let counters = unsafe { &mut *counters };
    counters.count_packet(p, wire_len, segs);
    if !p.is_trackable() {
        return;
    }
    let (key, dir) = FlowKey::from_parsed(p, ifindex);
    // SAFETY (the derefs below): per-CPU values written only by programs on this CPU.
    let stats = match flows.lookup(&key) {
        Some(stats) => stats,
        None => {
            let mut fresh = FlowStats::default();
            fresh.account(p, dir, segs, wire_len, now_ns(0));
            match flows.create(&key, &fresh) {
                Ok(()) => counters.c[id::FLOWS_CREATED] += 1,
                Err(e) if e == -EEXIST => {
                    // Another CPU created the entry between our lookup and insert.
                    if let Some(stats) = flows.lookup(&key) {
                        let stats = unsafe { &mut *stats };
                        stats.account(p, dir, segs, wire_len, now_ns(stats.first_ns));
                    }
                }
                Err(_) => counters.c[id::FLOWS_NOT_TRACKED] += 1,
            }
            // The head decision needs the map's copy: look it up again (new flows only).
            let Some(stats) = flows.lookup(&key) else {
                return;
            };
            heads(
                unsafe { &mut *stats },
                p,
                &key,
                dir,
                pkt.len,
                frame,
                hook,
                counters,
            );
            return;
        }
    };
    let stats = unsafe { &mut *stats };
    stats.account(p, dir, segs, wire_len, now_ns(stats.first_ns));
    heads(stats, p, &key, dir, pkt.len, frame, hook, counters);
}

/// The time to account a packet at, given its flow's first-seen time on this CPU (0: none).
///
/// The coarse clock (jiffy resolution, 1–4 ms) costs half of `bpf_ktime_get_ns` in a VM and is
/// plenty for flow end and idle timeouts. The first packet on a CPU takes the fine clock: the
/// CPU that saw the flow first decides who the client is, and within one jiffy the coarse
/// clock cannot tell a client's SYN on one CPU from the server's reply on another.
#[inline(always)]
fn now_ns(first_ns: u64) -> u64 {
    // SAFETY: helpers without arguments.
    if first_ns == 0 {
        unsafe { bpf_ktime_get_ns() }
    } else {
        unsafe { bpf_ktime_get_coarse_ns() }
    }
}

/// Sends the packet to the ring buffer when `head::select` picks it.
#[inline(always)]
fn heads<F: CopyOut>(
    stats: &mut FlowStats,
    p: &Parsed,
    key: &FlowKey,
    dir: usize,
    len: usize,
    frame: &F,
    hook: Hook,
    counters: &mut Counters,
) {
    let Some(s) = SETTINGS.get(0) else {
        return;
    };
    if stats.control_stale(s) {
        // SAFETY: a plain read of a hash-map value.
        let mode = unsafe { HEAD_CONTROL.get(key) }.copied().unwrap_or(0);
        stats.set_control(mode as u8, s);
    }
    let mut flags = head::select(stats, p, dir, s);
    if flags == 0 {
        return;
    }
    let (cap, truncated) = head::capture_len(len);
    if truncated {
        flags |= head::flag::TRUNCATED;
    }
    let rec = Rec {
        key,
        first_ns: stats.first_ns,
        len: len as u32,
        cap,
        hook: hook as u8,
        dir: dir as u8,
        flags,
    };
    // Ring-buffer reservations must have sizes the verifier knows: one branch per class.
    if cap <= 128 {
        emit::<128, F>(frame, &rec, counters);
    } else if cap <= 256 {
        emit::<256, F>(frame, &rec, counters);
    } else if cap <= 512 {
        emit::<512, F>(frame, &rec, counters);
    } else if cap <= 1024 {
        emit::<1024, F>(frame, &rec, counters);
    } else if cap <= 2048 {
        emit::<2048, F>(frame, &rec, counters);
    } else {
        emit::<{ head::MAX_CAPTURE }, F>(frame, &rec, counters);
    }
}

/// What a record says besides the frame bytes.
struct Rec<'a> {
    key: &'a FlowKey,
    first_ns: u64,
    len: u32,
    cap: usize,
    hook: u8,
    dir: u8,
    flags: u8,
}

/// Reserves a record with room for `CAP` frame bytes (a power of two), fills it and submits it.
#[inline(always)]
fn emit<const CAP: usize, F: CopyOut>(frame: &F, rec: &Rec, counters: &mut Counters) {
    let Some(mut entry) = HEADS.reserve_bytes(RECORD_HEADER + CAP, 0) else {
        counters.c[id::RINGBUF_RESERVE_FAILURES] += 1;
        return;
    };
    // In 1..=CAP for the verifier (a zero-length copy is refused); `cap` is already there.
    let n = ((rec.cap as u32).wrapping_sub(1) & (CAP as u32 - 1)) + 1;
    let base = entry.as_mut_ptr();
    // SAFETY: the reservation is 8-aligned and RECORD_HEADER + CAP bytes long; the header
    // takes its first RECORD_HEADER bytes.
    unsafe {
        let h = base as *mut HeadRecord;
        (*h).ts_ns = bpf_ktime_get_ns();
        (*h).flow_first_ns = rec.first_ns;
        (*h).key = *rec.key;
        (*h).orig_len = rec.len;
        (*h).cap_len = n as u16;
        (*h).hook = rec.hook;
        (*h).dir = rec.dir;
        (*h).flags = rec.flags;
        (*h)._pad = [0; 3];
    }
    // SAFETY: `n <= CAP` bytes after the header, inside the reservation.
    if frame.copy_to(unsafe { base.add(RECORD_HEADER) }, n) != 0 {
        entry.discard(0);
        counters.c[id::HEAD_COPY_FAILURES] += 1;
        return;
    }
    entry.submit(0);
    counters.c[id::HEAD_RECORDS] += 1;
    counters.c[id::HEAD_BYTES] += u64::from(n);
    if rec.flags & head::flag::TRUNCATED != 0 {
        counters.c[id::HEAD_TRUNCATED] += 1;
    }
}

#[inline(always)]
fn ingress<T: FlowTable>(flows: &T, ctx: &XdpContext) -> u32 {
    let pkt = DirectPacket {
        start: ctx.data(),
        end: ctx.data_end(),
        len: ctx.data_end() - ctx.data(),
    };
    account(
        flows,
        &pkt,
        &XdpFrame(ctx.ctx),
        Hook::Ingress,
        ctx.ingress_ifindex() as u32,
        1,
        0,
    );
    xdp_action::XDP_PASS
}

#[xdp]
pub fn precinct_ingress(ctx: XdpContext) -> u32 {
    ingress(&FLOWS, &ctx)
}

#[xdp]
pub fn bench_ingress_lru_percpu(ctx: XdpContext) -> u32 {
    ingress(&BENCH_FLOWS_LRU_PERCPU, &ctx)
}

#[xdp]
pub fn bench_ingress_hash(ctx: XdpContext) -> u32 {
    ingress(&BENCH_FLOWS_HASH, &ctx)
}

#[xdp]
pub fn bench_ingress_lru(ctx: XdpContext) -> u32 {
    ingress(&BENCH_FLOWS_LRU, &ctx)
}

#[classifier]
pub fn precinct_egress(ctx: TcContext) -> i32 {
    // Headers of locally generated packets are normally linear already; pull them in when not.
    let want = core::cmp::min(ctx.len(), 128);
    if ctx.data_end() - ctx.data() < want as usize {
        let _ = ctx.pull_data(want);
    }
    let pkt = DirectPacket {
        start: ctx.data(),
        end: ctx.data_end(),
        len: ctx.len() as usize,
    };
    // SAFETY: `skb` points at the program's `__sk_buff` context for the whole invocation.
    let skb = unsafe { &*ctx.skb.skb };
    // A tag the stack will insert in hardware is metadata, not packet data, at this hook.
    let vlan = if skb.vlan_present != 0 {
        (skb.vlan_tci & 0x0fff) as u16
    } else {
        0
    };
    let segs = core::cmp::max(skb.gso_segs, 1) as u64;
    account(
        &FLOWS,
        &pkt,
        &SkbFrame(ctx.skb.skb),
        Hook::Egress,
        skb.ifindex,
        segs,
        vlan,
    );
    TC_ACT_PIPE
}

#[xdp]
pub fn precinct_empty(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
