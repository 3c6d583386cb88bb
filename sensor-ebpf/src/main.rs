//! Precinct's kernel programs: XDP ingress and TC egress flow accounting, and flow heads for
//! deep inspection.
//!
//! Both are thin: they run the shared parser from `sensor-common` over a bounds-checked view of
//! the packet, bump the hook's per-CPU counters, account the packet into the per-CPU flow map,
//! and copy the packets `sensor_common::head::select` picks into the ring buffer of flow heads.
//! Before accounting, the protection policy (`sensor_common::protect`) decides: a drop in
//! prevent mode ends the packet there, before it costs a flow-map update; every drop and
//! would-drop is counted by reason and list, and reported (rate-limited) on the drop-event ring.
#![no_std]
#![no_main]
mod kernel;
mod pend;

use aya_ebpf::{
    bindings::{TC_ACT_PIPE, TC_ACT_SHOT},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use kernel::{account, ingress, DirectPacket, SkbFrame, FLOWS};
use sensor_common::{protect::action, Hook};

#[xdp]
pub fn precinct_ingress(ctx: XdpContext) -> u32 {
    ingress(&FLOWS, &ctx)
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
    let verdict = account(
        &FLOWS,
        &pkt,
        &SkbFrame(ctx.skb.skb),
        Hook::Egress,
        skb.ifindex,
        segs,
        vlan,
    );
    if verdict == action::DROP {
        TC_ACT_SHOT
    } else {
        TC_ACT_PIPE
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
