//! Precinct's kernel programs: XDP ingress and TC egress flow accounting.
//!
//! Both are thin: they run the shared parser from `sensor-common` over a bounds-checked view of
//! the packet, bump the hook's per-CPU counters and account the packet into the per-CPU flow
//! map. They never drop anything (filtering comes with the protection policy).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_PIPE},
    helpers::bpf_ktime_get_coarse_ns,
    macros::{classifier, map, xdp},
    maps::{HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap},
    programs::{TcContext, XdpContext},
};
use sensor_common::{
    counters::{id, Counters},
    flow::{FlowKey, FlowStats},
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
fn account<T: FlowTable>(
    flows: &T,
    pkt: &DirectPacket,
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
    // The coarse clock (jiffy resolution, 1–4 ms) costs half of `bpf_ktime_get_ns` in a VM
    // and is plenty for flow start, end and idle timeouts.
    // SAFETY (this and the derefs below): a helper without arguments; per-CPU values written
    // only by programs on this CPU.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if let Some(stats) = flows.lookup(&key) {
        unsafe { &mut *stats }.account(p, dir, segs, wire_len, now);
        return;
    }
    let mut stats = FlowStats::default();
    stats.account(p, dir, segs, wire_len, now);
    match flows.create(&key, &stats) {
        Ok(()) => counters.c[id::FLOWS_CREATED] += 1,
        Err(e) if e == -EEXIST => {
            // Another CPU created the entry between our lookup and insert.
            if let Some(stats) = flows.lookup(&key) {
                unsafe { &mut *stats }.account(p, dir, segs, wire_len, now);
            }
        }
        Err(_) => counters.c[id::FLOWS_NOT_TRACKED] += 1,
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
    account(&FLOWS, &pkt, Hook::Egress, skb.ifindex, segs, vlan);
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
