//! Benchmark-only programs, in an object of their own so that nothing benchmark-only ships in
//! the object the agent loads: the empty XDP baseline, the ingress program over other
//! flow-map kinds (the same code, see `kernel::account`), and the IPv4 table lookup alone,
//! through the production directory and through the kernel's LPM trie. `cargo xtask bench`
//! loads it beside the production object.
#![no_std]
#![no_main]

#[path = "../kernel.rs"]
#[expect(
    dead_code,
    reason = "the benchmark object runs the ingress half of the shared code only"
)]
mod kernel;
#[path = "../pend.rs"]
mod pend;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{lpm_trie::Key, HashMap, LpmTrie, LruHashMap, LruPerCpuHashMap, PerCpuArray},
    programs::XdpContext,
};
use kernel::{ingress, DirectPacket, KernelTables, FLOWS, POLICY};
use sensor_common::{
    flow::{FlowKey, FlowStats},
    parse::FAMILY_IPV4,
    protect::Tables,
    Packet,
};

// Benchmark-only variants of the flow map, one entry each unless the benchmark resizes them at
// load: `cargo xtask bench` measures the map kinds against each other with the same code.
#[map(name = "BENCH_FLOWS_LRU_PERCPU")]
static BENCH_FLOWS_LRU_PERCPU: LruPerCpuHashMap<FlowKey, FlowStats> =
    LruPerCpuHashMap::with_max_entries(1, 0);
#[map(name = "BENCH_FLOWS_HASH")]
static BENCH_FLOWS_HASH: HashMap<FlowKey, FlowStats> = HashMap::with_max_entries(1, 0);
#[map(name = "BENCH_FLOWS_LRU")]
static BENCH_FLOWS_LRU: LruHashMap<FlowKey, FlowStats> = LruHashMap::with_max_entries(1, 0);
/// Benchmark only: the IPv4 table as the kernel's LPM trie (generation byte + address).
#[map(name = "BENCH_LPM4")]
static BENCH_LPM4: LpmTrie<[u8; 5], u32> = LpmTrie::with_max_entries(1, 0);
/// Where the lookup-only programs add their results, so that nothing is optimised away.
#[map(name = "BENCH_SINK")]
static BENCH_SINK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The ingress program as the agent loads it, for comparisons inside this object.
#[xdp]
pub fn bench_ingress_percpu_hash(ctx: XdpContext) -> u32 {
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

#[xdp]
pub fn bench_empty(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// The IPv4 source at its untagged offset, for the lookup-only benchmarks.
#[inline(always)]
fn bench_src4(ctx: &XdpContext) -> Option<u32> {
    let pkt = DirectPacket {
        start: ctx.data(),
        end: ctx.data_end(),
        len: ctx.data_end() - ctx.data(),
    };
    pkt.load::<4>(26).map(u32::from_be_bytes)
}

/// Keeps a benchmark's lookup result observable.
#[inline(always)]
fn bench_sink(m: u32) {
    if let Some(s) = BENCH_SINK.get_ptr_mut(0) {
        // SAFETY: per-CPU slot of this program instance.
        unsafe { *s += u64::from(m) };
    }
}

#[xdp]
pub fn bench_lookup_dir4(ctx: XdpContext) -> u32 {
    if let Some(a) = bench_src4(&ctx) {
        let gen = POLICY.get(0).map_or(0, |p| p.gen);
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&a.to_be_bytes());
        bench_sink(KernelTables.addr_mask(gen, FAMILY_IPV4, &addr));
    }
    xdp_action::XDP_PASS
}

#[xdp]
pub fn bench_lookup_lpm4(ctx: XdpContext) -> u32 {
    if let Some(a) = bench_src4(&ctx) {
        let gen = POLICY.get(0).map_or(0, |p| p.gen);
        let b = a.to_be_bytes();
        let data = [(gen & 1) as u8, b[0], b[1], b[2], b[3]];
        bench_sink(BENCH_LPM4.get(Key::new(8 + 32, data)).copied().unwrap_or(0));
    }
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
