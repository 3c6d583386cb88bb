//! The kernel programs' shared half, compiled into both eBPF objects (`sensor`, the one the
//! agent loads, and `bench`, which adds benchmark-only programs and maps): the production
//! maps, the bounds-checked packet view, the protection tables as the verdict rules see them,
//! and `account`, which parses, counts, applies the protection verdict, accounts the flow and
//! sends its head. Generic over the flow map so the benchmark can run the same code over
//! other map kinds.

use aya_ebpf::{
    bindings::{xdp_action, BPF_F_NO_PREALLOC},
    helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns, bpf_skb_load_bytes, bpf_xdp_load_bytes},
    macros::map,
    maps::{
        lpm_trie::Key, Array, HashMap, LpmTrie, LruHashMap, LruPerCpuHashMap, PerCpuArray,
        PerCpuHashMap, RingBuf,
    },
    programs::XdpContext,
};
use sensor_common::{
    counters::{id, Counters},
    flow::{FlowKey, FlowStats},
    head::{self, HeadRecord, Settings, RECORD_HEADER},
    parse::FAMILY_IPV4,
    parse_into, pending,
    protect::{
        self, action, gcra, lookup4, port_slot, vid, Dir4, Lpm6Data, Pfx4Key, Policy, RateKey,
        Tables, Verdict, VerdictCounters, DEFAULT_DROP_RING_BYTES, DEFAULT_OUTBOUND_CAPACITY,
        DEFAULT_RATE_CAPACITY, DEFAULT_V4_CAPACITY, DEFAULT_V6_CAPACITY, DIR4_SLOTS,
        DROP_RECORD_CAP, PORT_WORDS, SUB4_WORDS, SUB6_WORDS,
    },
    Hook, Packet, Parsed, DEFAULT_FLOW_CAPACITY,
};

const BPF_NOEXIST: u64 = 1;
pub(crate) const EEXIST: i32 = 17;

#[map(name = "PRECINCT_FLOWS")]
pub(crate) static FLOWS: PerCpuHashMap<FlowKey, FlowStats> =
    PerCpuHashMap::with_max_entries(DEFAULT_FLOW_CAPACITY, 0);

/// The operations accounting needs from a flow map, so every map kind runs the same code.
pub(crate) trait FlowTable {
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
pub(crate) static HEADS: RingBuf = RingBuf::with_byte_size(head::DEFAULT_RING_BYTES, 0);

/// Head settings, written by userspace after load. An array lookup is inlined by the
/// verifier: reading it costs a few instructions.
#[map(name = "PRECINCT_SETTINGS")]
pub(crate) static SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

/// Per-flow bypass / keep, written by userspace; read only when the settings' epoch moved.
#[map(name = "PRECINCT_HEAD_CONTROL")]
static HEAD_CONTROL: HashMap<FlowKey, u32> =
    HashMap::with_max_entries(head::DEFAULT_CONTROL_CAPACITY, 0);

/// The protection policy; all zero (protection off) until userspace writes it.
#[map(name = "PRECINCT_POLICY")]
pub(crate) static POLICY: Array<Policy> = Array::with_max_entries(1, 0);

/// IPv4 table, part one: a /16 directory per generation.
#[map(name = "PRECINCT_DIR4")]
static DIR4: Array<Dir4> = Array::with_max_entries(2 * DIR4_SLOTS, 0);

/// IPv4 table, part two: which /24s hold or lie in a prefix longer than /16, per generation.
#[map(name = "PRECINCT_SUB4")]
static SUB4: Array<u64> = Array::with_max_entries(2 * SUB4_WORDS, 0);

/// IPv4 table, part three: prefixes longer than /16, both generations. Allocated as filled.
#[map(name = "PRECINCT_PFX4")]
static PFX4: HashMap<Pfx4Key, u32> =
    HashMap::with_max_entries(2 * DEFAULT_V4_CAPACITY, BPF_F_NO_PREALLOC);

/// IPv6 table, part one: which /24s of IPv6 space any prefix touches, per generation.
#[map(name = "PRECINCT_SUB6")]
static SUB6: Array<u64> = Array::with_max_entries(2 * SUB6_WORDS, 0);

/// IPv6 table, part two: generation byte + address, longest prefix match.
#[map(name = "PRECINCT_LPM6")]
static LPM6: LpmTrie<Lpm6Data, u32> = LpmTrie::with_max_entries(2 * DEFAULT_V6_CAPACITY, 0);

/// Port policy: one bit per port, TCP words then UDP words.
#[map(name = "PRECINCT_PORTS")]
static PORTS: Array<u64> = Array::with_max_entries(2 * PORT_WORDS, 0);

/// Per-source token buckets (GCRA timestamps). Shared by all CPUs: two CPUs updating one
/// bucket at once may lose an update, which errs towards passing.
#[map(name = "PRECINCT_RATE")]
static RATE: LruHashMap<RateKey, u64> = LruHashMap::with_max_entries(DEFAULT_RATE_CAPACITY, 0);

/// Flows the host opened, so the port policy lets their replies in.
#[map(name = "PRECINCT_OUTBOUND")]
static OUTBOUND: LruHashMap<FlowKey, u32> =
    LruHashMap::with_max_entries(DEFAULT_OUTBOUND_CAPACITY, 0);

#[map(name = "PRECINCT_VERDICTS")]
pub(crate) static VERDICTS: PerCpuArray<VerdictCounters> = PerCpuArray::with_max_entries(2, 0);

/// Drop events for userspace: a [`HeadRecord`] and the frame's first bytes.
#[map(name = "PRECINCT_DROPS")]
static DROPS: RingBuf = RingBuf::with_byte_size(DEFAULT_DROP_RING_BYTES, 0);

/// When each (hook, reason) last sent a drop event on this CPU.
#[map(name = "PRECINCT_EVENT_LAST")]
static EVENT_LAST: PerCpuArray<u64> = PerCpuArray::with_max_entries(16, 0);

/// The protection tables as the verdict rules see them.
pub(crate) struct KernelTables;

impl Tables for KernelTables {
    #[inline(always)]
    fn addr_mask(&self, gen: u32, family: u8, addr: &[u8; 16]) -> u32 {
        if family == FAMILY_IPV4 {
            let a = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
            // SAFETY: plain reads of map values.
            return lookup4(
                gen,
                a,
                |i| DIR4.get(i).copied(),
                |i| SUB4.get(i).copied(),
                |k| unsafe { PFX4.get(k) }.copied(),
            );
        }
        let top = protect::top24(addr);
        let word = SUB6
            .get((gen & 1) * SUB6_WORDS + (top >> 6))
            .copied()
            .unwrap_or(0);
        if word & (1u64 << (top & 63)) == 0 {
            return 0;
        }
        let mut data = [0u8; 17];
        data[0] = (gen & 1) as u8;
        data[1..].copy_from_slice(addr);
        LPM6.get(Key::new(8 + 128, data)).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn port_allowed(&self, udp: bool, port: u16) -> bool {
        let (i, bit) = port_slot(udp, port);
        PORTS.get(i).is_some_and(|w| *w & bit != 0)
    }

    #[inline(always)]
    fn outbound(&self, key: &FlowKey) -> bool {
        // SAFETY: a plain read of a hash-map value.
        unsafe { OUTBOUND.get(key) }.is_some()
    }

    #[inline(always)]
    fn rate_conforms(&self, key: &RateKey, now: u64, interval: u64, burst_ns: u64) -> bool {
        if let Some(tat) = RATE.get_ptr_mut(key) {
            // SAFETY: the value lives as long as the entry; a concurrent update from another
            // CPU can only lose one packet's credit.
            return gcra(unsafe { &mut *tat }, now, interval, burst_ns);
        }
        let mut tat = 0;
        let ok = gcra(&mut tat, now, interval, burst_ns);
        let _ = RATE.insert(key, tat, 0);
        ok
    }
}

/// Copies the first bytes of the current packet into ring-buffer memory.
pub(crate) trait CopyOut {
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

pub(crate) struct SkbFrame(pub(crate) *mut aya_ebpf::bindings::__sk_buff);

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
pub(crate) struct DirectPacket {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Whole packet length; larger than `end - start` for a non-linear skb.
    pub(crate) len: usize,
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
pub(crate) fn account<T: FlowTable, F: CopyOut>(
    flows: &T,
    pkt: &DirectPacket,
    frame: &F,
    hook: Hook,
    ifindex: u32,
    segs: u64,
    offloaded_vlan: u16,
) -> u8 {
    let Some(p) = SCRATCH.get_ptr_mut(0) else {
        return action::PASS;
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
        return action::PASS;
    };
    // SAFETY: per-CPU slot, only this program instance on this CPU touches it now.
    let counters = unsafe { &mut *counters };
    counters.count_packet(p, wire_len, segs);
    let mut opens = false;
    if let Some(pol) = POLICY.get(0) {
        if pol.enabled != 0 {
            let v = match hook {
                Hook::Ingress => protect::ingress(&KernelTables, pol, p, ifindex, coarse_ns()),
                Hook::Egress => protect::egress(&KernelTables, pol, p),
            };
            if v.action != action::PASS {
                report(&v, p, pol, pkt.len, frame, hook, ifindex);
                if v.action == action::DROP {
                    return action::DROP;
                }
            }
            opens = hook == Hook::Egress && protect::egress_opens(&KernelTables, pol, p);
        }
    }
    if !p.is_trackable() {
        return action::PASS;
    }
    let (key, dir) = FlowKey::from_parsed(p, ifindex);
    if opens {
        let okey = protect::outbound_key(p, ifindex);
        // A lookup is cheaper than an update, and a client socket sends many packets.
        // SAFETY: a plain read of a hash-map value.
        if unsafe { OUTBOUND.get(okey) }.is_none() {
            let _ = OUTBOUND.insert(okey, 0, 0);
            if let Some(vc) = VERDICTS.get_ptr_mut(hook as u32) {
                // SAFETY: per-CPU slot of this program instance.
                unsafe { (*vc).c[vid::OUTBOUND_RECORDED] += 1 };
            }
        }
    }
    let stats = match flows.lookup(&key) {
        Some(stats) => stats,
        None if crate::pend::on()
            && (!pending::trusted_opener(p, hook) || crate::pend::holds(&key)) =>
        {
            crate::pend::pend(
                flows, p, &key, dir, pkt.len, frame, hook, segs, wire_len, counters,
            );
            return action::PASS;
        }
        None => {
            let mut fresh = FlowStats::default();
            fresh.account(p, dir, segs, wire_len, now_ns(0));
            match flows.create(&key, &fresh) {
                Ok(()) => counters.c[id::FLOWS_CREATED] += 1,
                Err(e) if e == -EEXIST => {
                    // Another CPU created the entry between our lookup and insert.
                    if let Some(stats) = flows.lookup(&key) {
                        // SAFETY: a per-CPU value only programs on this CPU write.
                        let stats = unsafe { &mut *stats };
                        stats.account(p, dir, segs, wire_len, now_ns(stats.first_ns));
                    }
                }
                Err(_) => counters.c[id::FLOWS_NOT_TRACKED] += 1,
            }
            // The head decision needs the map's copy: look it up again (new flows only).
            let Some(stats) = flows.lookup(&key) else {
                return action::PASS;
            };
            heads(
                // SAFETY: as above.
                unsafe { &mut *stats },
                p,
                &key,
                dir,
                pkt.len,
                frame,
                hook,
                counters,
            );
            return action::PASS;
        }
    };
    // SAFETY: as above.
    let stats = unsafe { &mut *stats };
    stats.account(p, dir, segs, wire_len, now_ns(stats.first_ns));
    heads(stats, p, &key, dir, pkt.len, frame, hook, counters);
    action::PASS
}

#[inline(always)]
fn coarse_ns() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Counts a drop or would-drop and sends a drop event unless this CPU sent one for the same
/// hook and reason less than the policy's event interval ago.
#[inline(always)]
fn report<F: CopyOut>(
    v: &Verdict,
    p: &Parsed,
    pol: &Policy,
    len: usize,
    frame: &F,
    hook: Hook,
    ifindex: u32,
) {
    let Some(vc) = VERDICTS.get_ptr_mut(hook as u32) else {
        return;
    };
    // SAFETY: per-CPU slot of this program instance.
    let vc = unsafe { &mut *vc };
    vc.count(v);
    if pol.event_interval_ns == 0 {
        return;
    }
    let Some(last) = EVENT_LAST.get_ptr_mut((hook as u32) * 8 + u32::from(v.reason & 7)) else {
        return;
    };
    let now = coarse_ns();
    // SAFETY: per-CPU slot of this program instance.
    let last = unsafe { &mut *last };
    if *last != 0 && now.wrapping_sub(*last) < pol.event_interval_ns {
        vc.c[vid::EVENTS_SUPPRESSED] += 1;
        return;
    }
    *last = now;
    let Some(mut entry) = DROPS.reserve_bytes(RECORD_HEADER + DROP_RECORD_CAP, 0) else {
        vc.c[vid::EVENTS_LOST] += 1;
        return;
    };
    let cap = if len < DROP_RECORD_CAP {
        len
    } else {
        DROP_RECORD_CAP
    };
    let n = ((cap as u32).wrapping_sub(1) & (DROP_RECORD_CAP as u32 - 1)) + 1;
    let (key, dir) = FlowKey::from_parsed(p, ifindex);
    let base = entry.as_mut_ptr();
    // SAFETY: as in `emit`: an 8-aligned reservation of RECORD_HEADER + DROP_RECORD_CAP bytes.
    unsafe {
        let h = base as *mut HeadRecord;
        (*h).ts_ns = bpf_ktime_get_ns();
        (*h).flow_first_ns = 0;
        (*h).key = key;
        (*h).orig_len = len as u32;
        (*h).cap_len = n as u16;
        (*h).hook = hook as u8;
        (*h).dir = dir as u8;
        (*h).flags = 0;
        (*h)._pad = [v.reason, v.list, v.action];
    }
    // SAFETY: `n <= DROP_RECORD_CAP` bytes after the header, inside the reservation.
    if frame.copy_to(unsafe { base.add(RECORD_HEADER) }, n) != 0 {
        entry.discard(0);
        vc.c[vid::EVENTS_LOST] += 1;
        return;
    }
    entry.submit(0);
    vc.c[vid::EVENTS] += 1;
}

/// The time to account a packet at, given its flow's first-seen time on this CPU (0: none).
///
/// The coarse clock (jiffy resolution, 1–4 ms) costs half of `bpf_ktime_get_ns` in a VM and is
/// plenty for flow end and idle timeouts. The first packet on a CPU takes the fine clock: the
/// CPU that saw the flow first decides who the client is, and within one jiffy the coarse
/// clock cannot tell a client's SYN on one CPU from the server's reply on another.
#[inline(always)]
fn now_ns(first_ns: u64) -> u64 {
    if first_ns == 0 {
        // SAFETY: a helper without arguments.
        unsafe { bpf_ktime_get_ns() }
    } else {
        // SAFETY: a helper without arguments.
        unsafe { bpf_ktime_get_coarse_ns() }
    }
}

/// Sends the packet to the ring buffer when `head::select` picks it.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "inlined into account, which has each part at hand; a struct would cost stack"
)]
pub(crate) fn heads<F: CopyOut>(
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
    entry.submit(wakeup());
    counters.c[id::HEAD_RECORDS] += 1;
    counters.c[id::HEAD_BYTES] += u64::from(n);
    if rec.flags & head::flag::TRUNCATED != 0 {
        counters.c[id::HEAD_TRUNCATED] += 1;
    }
}

/// `bpf_ringbuf_query` flags and `bpf_ringbuf_submit` wakeup flags.
const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_RING_SIZE: u64 = 1;
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// How a head record wakes the reader: not at all while the ring is less than an eighth full
/// (the agent's reader polls every 20 ms), at once beyond. A wakeup
/// per record costs the sending CPU microseconds (an interrupt to run the consumer's wait
/// queue), which a flood of new flows would pay per packet.
#[inline(always)]
pub(crate) fn wakeup() -> u64 {
    let avail = HEADS.query(BPF_RB_AVAIL_DATA);
    let size = HEADS.query(BPF_RB_RING_SIZE);
    if avail >= size / 8 {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

#[inline(always)]
pub(crate) fn ingress<T: FlowTable>(flows: &T, ctx: &XdpContext) -> u32 {
    let pkt = DirectPacket {
        start: ctx.data(),
        end: ctx.data_end(),
        len: ctx.data_end() - ctx.data(),
    };
    let verdict = account(
        flows,
        &pkt,
        &XdpFrame(ctx.ctx),
        Hook::Ingress,
        ctx.ingress_ifindex() as u32,
        1,
        0,
    );
    if verdict == action::DROP {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}
