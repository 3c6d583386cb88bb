//! Global per-CPU counters, one [`Counters`] block per hook, and the rule that says which
//! counters a parsed packet increments (shared by the kernel and the host model).

use crate::parse::{ipproto, Fragment, Outcome, Parsed, FAMILY_IPV4, FAMILY_IPV6};

/// Indexes into [`Counters::c`].
pub mod id {
    /// Every packet seen.
    pub const PACKETS: usize = 0;
    /// Bytes of every packet seen (whole frames).
    pub const BYTES: usize = 1;
    /// IPv4 packets.
    pub const IPV4: usize = 2;
    /// IPv6 packets.
    pub const IPV6: usize = 3;
    /// TCP packets.
    pub const TCP: usize = 4;
    /// UDP packets.
    pub const UDP: usize = 5;
    /// ICMP packets.
    pub const ICMP: usize = 6;
    /// ICMPv6 packets.
    pub const ICMPV6: usize = 7;
    /// IP packets of any other L4 protocol.
    pub const OTHER_L4: usize = 8;
    /// Frames that are not IP.
    pub const NON_IP: usize = 9;
    /// Frames with at least one VLAN tag.
    pub const VLAN: usize = 10;
    /// IP fragments (first and later).
    pub const FRAGMENTS: usize = 11;
    /// Flow entries created.
    pub const FLOWS_CREATED: usize = 12;
    /// Packets of a flow that could not be entered because the flow map was full.
    pub const FLOWS_NOT_TRACKED: usize = 13;
    /// Flows entered into the pending table ([`crate::pending`]), in an empty slot.
    pub const PENDING_OPENED: usize = 14;
    /// Flows entered into the pending table over another unconfirmed flow, which is lost.
    pub const PENDING_OVERWRITTEN: usize = 15;
    /// First slot of the per-[`Outcome`](crate::parse::Outcome) counters.
    pub const OUTCOME_BASE: usize = 16;
    /// Flow-head records submitted to the ring buffer.
    pub const HEAD_RECORDS: usize = 48;
    /// Frame bytes copied into those records.
    pub const HEAD_BYTES: usize = 49;
    /// Records lost because the ring buffer had no room (the reservation failed).
    pub const RINGBUF_RESERVE_FAILURES: usize = 50;
    /// Records whose frame was longer than [`crate::head::MAX_CAPTURE`] and was cut.
    pub const HEAD_TRUNCATED: usize = 51;
    /// Records discarded because copying the frame failed.
    pub const HEAD_COPY_FAILURES: usize = 52;
    /// Pending flows confirmed and moved into the flow map.
    pub const PENDING_PROMOTED: usize = 53;
    /// Packets counted in the pending table only (their flow not confirmed yet).
    pub const PENDING_PACKETS: usize = 54;
    /// First frames cut to the pending table's stash size.
    pub const PENDING_STASH_TRUNCATED: usize = 55;
}

/// Number of counter slots per hook.
pub const COUNTER_SLOTS: usize = 56;
const _: () = assert!(id::OUTCOME_BASE + Outcome::COUNT <= COUNTER_SLOTS);
const _: () = assert!(id::OUTCOME_BASE + OUTCOME_MASK < id::HEAD_RECORDS);
const _: () = assert!(id::PENDING_STASH_TRUNCATED < COUNTER_SLOTS);
/// Mask that keeps an outcome index provably inside the block (see `count_packet`).
const OUTCOME_MASK: usize = 0x1f;
const _: () = assert!(id::OUTCOME_BASE + OUTCOME_MASK < COUNTER_SLOTS);
const _: () = assert!(Outcome::COUNT <= OUTCOME_MASK + 1);

/// Names of the protocol counters, with their index, for metrics.
pub const PROTOCOLS: [(usize, &str); 8] = [
    (id::IPV4, "ipv4"),
    (id::IPV6, "ipv6"),
    (id::TCP, "tcp"),
    (id::UDP, "udp"),
    (id::ICMP, "icmp"),
    (id::ICMPV6, "icmpv6"),
    (id::OTHER_L4, "other"),
    (id::NON_IP, "non_ip"),
];

/// One hook's counters on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    /// Counter slots, indexed by [`id`].
    pub c: [u64; COUNTER_SLOTS],
}

const _: () = assert!(core::mem::size_of::<Counters>() == COUNTER_SLOTS * 8);

impl Default for Counters {
    fn default() -> Self {
        Counters {
            c: [0; COUNTER_SLOTS],
        }
    }
}

impl Counters {
    /// Counts `pkts` packets (more than one for a GSO packet) of `len` bytes in all, parsed as
    /// `p`. Flow counters are the caller's.
    #[inline(always)]
    pub fn count_packet(&mut self, p: &Parsed, len: u64, pkts: u64) {
        self.c[id::PACKETS] += pkts;
        self.c[id::BYTES] += len;
        // The compiler knows the enum's range and would drop any bounds check, but the BPF
        // verifier does not: read the discriminant as a plain byte and mask it.
        // SAFETY: `Outcome` is `repr(u8)`, so the pointer is to one initialised byte.
        let outcome =
            unsafe { core::ptr::read_volatile(&p.outcome as *const Outcome as *const u8) };
        self.c[id::OUTCOME_BASE + (outcome as usize & OUTCOME_MASK)] += pkts;
        if p.vlan_tags > 0 {
            self.c[id::VLAN] += pkts;
        }
        match p.family {
            FAMILY_IPV4 => self.c[id::IPV4] += pkts,
            FAMILY_IPV6 => self.c[id::IPV6] += pkts,
            _ => {
                if p.outcome == Outcome::NonIp {
                    self.c[id::NON_IP] += pkts;
                }
                return;
            }
        }
        if p.fragment != Fragment::None {
            self.c[id::FRAGMENTS] += pkts;
        }
        let l4 = match p.proto {
            ipproto::TCP => id::TCP,
            ipproto::UDP => id::UDP,
            ipproto::ICMP => id::ICMP,
            ipproto::ICMPV6 => id::ICMPV6,
            _ => id::OTHER_L4,
        };
        self.c[l4] += pkts;
    }

    /// Adds another CPU's block into this one.
    pub fn add(&mut self, other: &Counters) {
        for (a, b) in self.c.iter_mut().zip(other.c.iter()) {
            *a += *b;
        }
    }
}
