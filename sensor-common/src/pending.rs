//! Flows not yet confirmed: the bounded table a flood of spoofed sources cannot break.
//!
//! A packet of a flow the flow map does not hold does not create an entry there. It goes to
//! the pending table, a direct-mapped array: the slot is chosen by a hash of the flow key, and
//! a new flow simply overwrites whatever unconfirmed flow held its slot. The flow is promoted
//! into the flow map (with everything the slot counted) when it is confirmed:
//!
//! - TCP: the opener speaks again after the other side answered (the handshake's third
//!   packet, not a reset), or any packet carries payload. A spoofed SYN is answered by the
//!   host (a SYN-ACK, with SYN cookies too) but never acknowledged, so a SYN flood stays here.
//! - ICMP: the opener sends again after an answer (a ping series; the host answers every echo
//!   request, so one answer proves nothing).
//! - UDP and the rest: the other side answered (a DNS query and its response).
//!
//! Flows the host itself opens are trusted and enter the flow map at once: at egress a TCP
//! SYN, any UDP datagram, an ICMP echo request ([`trusted_opener`]). Replies the host sends to
//! unknown flows (SYN-ACKs, resets, ICMP errors) are not.
//!
//! Each slot keeps the first frame of each direction ([`Pending::opener`], [`Pending::answer`],
//! cut to their sizes): when the flow is promoted they are sent as its head before the packet
//! that confirmed it, so inspection sees the handshake (or the DNS query) it would have seen.
//! An established flow is never in this table, so a flood cannot evict it; a flow the flood
//! overwrites before it is confirmed is counted and is picked up again by its next packets
//! (inspection then starts mid-stream).
//!
//! The table is shared by all CPUs (both directions of a flow must meet in one slot). Two
//! CPUs writing one slot at once may mix two flows' counts; the key is checked, so at worst a
//! pending flow's counts are lost, never an established flow's.

use crate::{
    flow::{tcp, FlowKey, FlowStats},
    parse::{ipproto, Parsed},
    Hook,
};

/// Slots the map is defined with in the object (a power of two), and the agent's default
/// `flows.pending_slots`; the agent sizes the map at load (0 = off: then it loads one slot and
/// the settings' mask is 0).
pub const DEFAULT_PENDING_SLOTS: u32 = 65_536;
/// Bytes of the opener's first frame a slot keeps (a SYN, a DNS query).
pub const OPENER_STASH: usize = 192;
/// Bytes of the answer's first frame a slot keeps (a SYN-ACK).
pub const ANSWER_STASH: usize = 128;

/// What the slot holds ([`Pending::state`]).
pub mod state {
    /// Nothing (never used, or promoted).
    pub const EMPTY: u8 = 0;
    /// An unconfirmed flow.
    pub const PENDING: u8 = 1;
}

/// One slot of the pending table.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The flow, as in the flow map.
    pub key: FlowKey,
    /// [`state`].
    pub state: u8,
    /// Direction of the frame in `opener` ([`crate::flow::DIR_AB`] or `DIR_BA`).
    pub opener_dir: u8,
    /// [`Hook`] of the frame in `opener`.
    pub opener_hook: u8,
    /// [`Hook`] of the frame in `answer`.
    pub answer_hook: u8,
    /// What the flow map's value will start from, accounted as the flow map would.
    pub stats: FlowStats,
    /// When the frame in `opener` was seen (`CLOCK_MONOTONIC` ns).
    pub opener_ts_ns: u64,
    /// When the frame in `answer` was seen.
    pub answer_ts_ns: u64,
    /// Whole length of the opener's frame.
    pub opener_len: u32,
    /// Whole length of the answer's frame.
    pub answer_len: u32,
    /// Bytes of the opener's frame kept (0: none, or already sent).
    pub opener_cap: u16,
    /// Bytes of the answer's frame kept (0: none, or already sent).
    pub answer_cap: u16,
    /// What the opener's frame costs from its direction's head budget ([`crate::head::cost`]).
    pub opener_cost: u16,
    /// What the answer's frame costs.
    pub answer_cost: u16,
    /// The opener's first frame.
    pub opener: [u8; OPENER_STASH],
    /// The answer's first frame.
    pub answer: [u8; ANSWER_STASH],
}

const _: () = assert!(core::mem::size_of::<Pending>() == 152 + OPENER_STASH + ANSWER_STASH);

impl Default for Pending {
    fn default() -> Self {
        Pending {
            key: FlowKey::default(),
            state: state::EMPTY,
            opener_dir: 0,
            opener_hook: 0,
            answer_hook: 0,
            stats: FlowStats::default(),
            opener_ts_ns: 0,
            answer_ts_ns: 0,
            opener_len: 0,
            answer_len: 0,
            opener_cap: 0,
            answer_cap: 0,
            opener_cost: 0,
            answer_cost: 0,
            opener: [0; OPENER_STASH],
            answer: [0; ANSWER_STASH],
        }
    }
}

/// The key's 32-bit words (44 bytes, no padding).
#[inline(always)]
fn word(k: &FlowKey, i: usize) -> u32 {
    // SAFETY: `FlowKey` is 44 bytes of `repr(C)` plain data without padding; `i < 11` at
    // every call site, so the read stays inside it.
    unsafe { core::ptr::read_unaligned((k as *const FlowKey as *const u32).add(i)) }
}

/// `true` when both keys are the same flow. Word by word: a derived comparison of the byte
/// arrays may become a `memcmp` call, which BPF programs cannot make.
#[inline(always)]
pub fn same_flow(a: &FlowKey, b: &FlowKey) -> bool {
    let mut diff = 0;
    let mut i = 0;
    while i < 11 {
        diff |= word(a, i) ^ word(b, i);
        i += 1;
    }
    diff == 0
}

/// The key's slot in a table of `mask + 1` slots (a power of two).
#[inline(always)]
pub fn slot(k: &FlowKey, mask: u32) -> u32 {
    // Multiply-and-mix over the words: cheap, and the high bits of addresses reach the index.
    let mut h: u32 = 0x9e37_79b9;
    let mut i = 0;
    while i < 11 {
        h = (h ^ word(k, i)).wrapping_mul(0x85eb_ca6b);
        h ^= h >> 15;
        i += 1;
    }
    h & mask
}

/// Whether the host opening a flow with this packet is trusted to start tracking it at once.
#[inline(always)]
pub fn trusted_opener(p: &Parsed, hook: Hook) -> bool {
    if hook != Hook::Egress {
        return false;
    }
    match p.proto {
        ipproto::TCP => p.tcp_flags & (tcp::SYN | tcp::ACK | tcp::RST) == tcp::SYN,
        // Echo requests; errors and replies answer something else.
        ipproto::ICMP => p.icmp_type == 8,
        ipproto::ICMPV6 => p.icmp_type == 128,
        _ => true,
    }
}

/// Whether the packet just accounted into `stats` (a pending flow's), travelling in `dir`,
/// confirms the flow (see the module documentation).
#[inline(always)]
pub fn confirms(stats: &FlowStats, p: &Parsed, dir: usize) -> bool {
    let answered = stats.pkts[0] > 0 && stats.pkts[1] > 0;
    let from_opener = dir as u8 == stats.client_dir;
    match p.proto {
        ipproto::TCP => {
            crate::head::payload_len(p) > 0
                || (answered && from_opener && p.tcp_flags & tcp::RST == 0)
        }
        ipproto::ICMP | ipproto::ICMPV6 => answered && from_opener,
        _ => answered,
    }
}

/// What a packet did to its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The slot was empty: it now holds this flow, and the packet's frame belongs in
    /// `opener`.
    Opened,
    /// The slot held another unconfirmed flow, which this one replaced (frame in `opener`).
    Overwrote,
    /// The first packet of the other direction: its frame belongs in `answer`.
    Answered,
    /// Counted into the slot, nothing to keep.
    Counted,
}

impl Pending {
    /// Accounts a packet of flow `key` (direction `dir`, `pkts` packets of `len` bytes at
    /// `now_ns`) into this slot, starting the flow here if the slot held another or none.
    /// The caller keeps the frame where the step says and then asks [`confirms`].
    #[inline(always)]
    #[expect(
        clippy::too_many_arguments,
        reason = "inlined into the kernel's accounting, which has each part at hand"
    )]
    pub fn account(
        &mut self,
        key: &FlowKey,
        p: &Parsed,
        dir: usize,
        hook: Hook,
        pkts: u64,
        len: u64,
        now_ns: u64,
    ) -> Step {
        if self.state == state::PENDING && same_flow(&self.key, key) {
            let first_of_dir = self.stats.pkts[dir & 1] == 0;
            self.stats.account(p, dir, pkts, len, now_ns);
            if first_of_dir {
                self.answer_hook = hook as u8;
                self.answer_ts_ns = now_ns;
                self.answer_len = len as u32;
                self.answer_cost = crate::head::cost(p).min(u32::from(u16::MAX)) as u16;
                return Step::Answered;
            }
            return Step::Counted;
        }
        let step = if self.state == state::PENDING {
            Step::Overwrote
        } else {
            Step::Opened
        };
        self.key = *key;
        self.state = state::PENDING;
        self.opener_dir = dir as u8;
        self.opener_hook = hook as u8;
        self.answer_hook = 0;
        self.stats = FlowStats::default();
        self.stats.account(p, dir, pkts, len, now_ns);
        self.opener_ts_ns = now_ns;
        self.answer_ts_ns = 0;
        self.opener_len = len as u32;
        self.answer_len = 0;
        self.opener_cap = 0;
        self.answer_cap = 0;
        self.opener_cost = crate::head::cost(p).min(u32::from(u16::MAX)) as u16;
        self.answer_cost = 0;
        step
    }
}

/// Bytes of a frame of `len` bytes a stash of `cap` bytes keeps (at least 1, for the
/// verifier: a zero-length copy is refused), and whether that cuts it.
#[inline(always)]
pub fn stash_len(len: usize, cap: usize) -> (u32, bool) {
    // `max(1)` first, then one comparison: rustc 1.95.0 at -O compiles `if len > cap { cap }
    // else { len.max(1) }`, inlined with a constant `cap`, to `len.max(1)` for every `len`
    // (the IR gives `len` a range up to `cap` in both branches), so a 742-byte frame came
    // back as 742; and a form without `max` leaves the verifier a length that may be 0. The
    // regression test calls it through `black_box` as the callers do.
    let n = len.max(1);
    if n > cap {
        (cap as u32, true)
    } else {
        (n as u32, false)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::parse::{Fragment, Outcome, FAMILY_IPV4};

    fn parsed(proto: u8, flags: u8, payload: u32) -> Parsed {
        Parsed {
            outcome: Outcome::Ok,
            family: FAMILY_IPV4,
            proto,
            fragment: Fragment::None,
            tcp_flags: flags,
            payload_off: 54,
            ip_end: 54 + payload,
            ..Parsed::default()
        }
    }

    fn key(port: u16) -> FlowKey {
        FlowKey {
            port_a: port,
            port_b: 80,
            proto: 6,
            family: 4,
            ..FlowKey::default()
        }
    }

    #[test]
    fn a_handshake_is_confirmed_by_its_third_packet_and_a_syn_flood_never() {
        let (syn, synack, ack) = (
            parsed(6, tcp::SYN, 0),
            parsed(6, tcp::SYN | tcp::ACK, 0),
            parsed(6, tcp::ACK, 0),
        );
        let k = key(40000);
        let mut s = Pending::default();
        assert_eq!(
            s.account(&k, &syn, 0, Hook::Ingress, 1, 74, 5),
            Step::Opened
        );
        assert!(!confirms(&s.stats, &syn, 0));
        assert_eq!(
            s.account(&k, &synack, 1, Hook::Egress, 1, 74, 6),
            Step::Answered
        );
        assert!(
            !confirms(&s.stats, &synack, 1),
            "the host's answer proves nothing"
        );
        assert_eq!(
            s.account(&k, &syn, 0, Hook::Ingress, 1, 74, 7),
            Step::Counted
        );
        assert_eq!(
            s.account(&k, &ack, 0, Hook::Ingress, 1, 66, 8),
            Step::Counted
        );
        assert!(confirms(&s.stats, &ack, 0));
        assert_eq!(s.stats.pkts, [3, 1]);
        assert_eq!(s.stats.first_ns, 5);
        // The spoofed source's real owner resets the SYN-ACK: still not a connection.
        let mut t = Pending::default();
        t.account(&k, &syn, 0, Hook::Ingress, 1, 74, 5);
        t.account(&k, &synack, 1, Hook::Egress, 1, 74, 6);
        let rst = parsed(6, tcp::RST, 0);
        t.account(&k, &rst, 0, Hook::Ingress, 1, 60, 7);
        assert!(!confirms(&t.stats, &rst, 0));
        // Another flow in the same slot replaces it.
        assert_eq!(
            t.account(&key(40001), &syn, 0, Hook::Ingress, 1, 74, 9),
            Step::Overwrote
        );
        assert_eq!(t.stats.pkts, [1, 0]);
    }

    #[test]
    fn payload_confirms_tcp_an_answer_confirms_udp_a_second_request_icmp() {
        let k = key(1);
        let mut s = Pending::default();
        let data = parsed(6, tcp::ACK | tcp::PSH, 100);
        s.account(&k, &data, 1, Hook::Ingress, 1, 200, 1);
        assert!(confirms(&s.stats, &data, 1), "mid-stream data");
        let (q, r) = (parsed(17, 0, 40), parsed(17, 0, 80));
        let mut u = Pending::default();
        u.account(&k, &q, 0, Hook::Ingress, 1, 82, 1);
        assert!(!confirms(&u.stats, &q, 0));
        u.account(&k, &r, 1, Hook::Egress, 1, 122, 2);
        assert!(confirms(&u.stats, &r, 1));
        let (req, rep) = (parsed(1, 0, 56), parsed(1, 0, 56));
        let mut i = Pending::default();
        i.account(&k, &req, 0, Hook::Ingress, 1, 98, 1);
        i.account(&k, &rep, 1, Hook::Egress, 1, 98, 2);
        assert!(!confirms(&i.stats, &rep, 1), "the host answers every ping");
        i.account(&k, &req, 0, Hook::Ingress, 1, 98, 3);
        assert!(confirms(&i.stats, &req, 0));
    }

    #[test]
    fn the_host_opening_a_flow_is_trusted_its_answers_are_not() {
        let mut echo = parsed(1, 0, 56);
        echo.icmp_type = 8;
        assert!(trusted_opener(&echo, Hook::Egress));
        assert!(!trusted_opener(&echo, Hook::Ingress));
        let mut unreachable = parsed(1, 0, 28);
        unreachable.icmp_type = 3;
        assert!(!trusted_opener(&unreachable, Hook::Egress));
        assert!(trusted_opener(&parsed(6, tcp::SYN, 0), Hook::Egress));
        assert!(!trusted_opener(
            &parsed(6, tcp::SYN | tcp::ACK, 0),
            Hook::Egress
        ));
        assert!(!trusted_opener(
            &parsed(6, tcp::RST | tcp::ACK, 0),
            Hook::Egress
        ));
        assert!(trusted_opener(&parsed(17, 0, 10), Hook::Egress));
    }

    #[test]
    fn keys_compare_and_spread_by_every_field() {
        let a = key(1);
        assert!(same_flow(&a, &a));
        let mut b = a;
        b.family = 6;
        assert!(!same_flow(&a, &b));
        let mut c = a;
        c.addr_b[15] = 1;
        assert!(!same_flow(&a, &c));
        let mask = DEFAULT_PENDING_SLOTS - 1;
        let slots: std::collections::BTreeSet<u32> =
            (0..1000u16).map(|p| slot(&key(p), mask)).collect();
        assert!(
            slots.len() > 950,
            "{} distinct slots of 1000 keys",
            slots.len()
        );
        assert_eq!(stash_len(0, OPENER_STASH), (1, false));
        for (len, want) in [(742, (192, true)), (193, (192, true)), (192, (192, false))] {
            assert_eq!(
                stash_len(core::hint::black_box(len), OPENER_STASH),
                want,
                "{len}"
            );
        }
        assert_eq!(stash_len(300, OPENER_STASH), (OPENER_STASH as u32, true));
    }
}
