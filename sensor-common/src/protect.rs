//! In-kernel protection, written once for the kernel and the host: the policy userspace
//! writes, the per-packet verdict rules of the XDP ingress and TC egress programs, the
//! address-table entry layout, the per-source rate limiter and the verdict counters.
//!
//! Every address check is one lookup. Userspace folds all address facts into one 32-bit mask
//! per prefix (named lists, the built-in RFC 6890 bogons, the host's own addresses, the source
//! allowlist, bogon exemptions) and gives each prefix the OR of its own mask and the masks of
//! every shorter prefix that contains it. The longest matching prefix's mask is then the OR of
//! every entry containing the address, so the kernel never walks more than one match.
//!
//! The lookup structures behind [`Tables::addr_mask`] are the kernel's business (a /16
//! directory plus per-length hash sets for IPv4, an LPM trie for IPv6; `docs/performance.md`
//! has the measurements); the rules here only see masks.

use crate::{
    flow::{tcp, FlowKey},
    parse::{ipproto, Fragment, Parsed, FAMILY_IPV4, FAMILY_IPV6},
};

/// Why a packet was (or would have been) dropped.
pub mod reason {
    /// Not dropped.
    pub const NONE: u8 = 0;
    /// The source (ingress) or destination (egress) is on a named blocklist.
    pub const BLOCKLIST: u8 = 1;
    /// The source is a bogon: RFC 6890 special-purpose space, or on a bogon list.
    pub const BOGON: u8 = 2;
    /// An ingress packet claims one of the host's own addresses or prefixes as its source.
    pub const OWN_PREFIX_SPOOFED: u8 = 3;
    /// An egress packet's source is none of the host's addresses.
    pub const EGRESS_SPOOFED: u8 = 4;
    /// An ingress TCP/UDP packet to a port the policy does not open.
    pub const PORT_POLICY: u8 = 5;
    /// The source exceeded its per-source rate for SYN, UDP or ICMP.
    pub const RATE_LIMIT: u8 = 6;
    /// Number of reasons, [`NONE`] included.
    pub const COUNT: usize = 7;
    /// Metric-label and EVE names, indexed by reason.
    pub const NAMES: [&str; COUNT] = [
        "none",
        "blocklist",
        "bogon",
        "own_prefix_spoofed",
        "egress_spoofed",
        "port_policy",
        "rate_limit",
    ];
}

/// Bits of an address-table mask.
pub mod bit {
    /// Named lists occupy the low [`super::MAX_LISTS`] bits, one bit per list id.
    pub const LISTS: u32 = (1 << super::MAX_LISTS) - 1;
    /// RFC 6890 special-purpose space (built in).
    pub const BUILTIN_BOGON: u32 = 1 << 28;
    /// One of the host's addresses, or a prefix the config declares its own.
    pub const OWN: u32 = 1 << 29;
    /// The source allowlist: such sources skip every ingress check.
    pub const ALLOW: u32 = 1 << 30;
    /// Exempt from the bogon check (the host's connected subnets, `bogons.allow`).
    pub const BOGON_EXEMPT: u32 = 1 << 31;
}

/// Named lists per table (list ids `0..MAX_LISTS`).
pub const MAX_LISTS: usize = 28;
/// List id reported for the built-in RFC 6890 bogons.
pub const LIST_BUILTIN_BOGON: u8 = 28;
/// List id reported for the host's own addresses.
pub const LIST_OWN: u8 = 29;
/// List id reported when no list is involved (port policy, rate limits).
pub const LIST_NONE: u8 = 31;
/// List slots in the counters.
pub const LIST_SLOTS: usize = 32;

/// What the program does with a packet.
pub mod action {
    /// Passed, nothing to report.
    pub const PASS: u8 = 0;
    /// Dropped (prevent mode).
    pub const DROP: u8 = 1;
    /// A check failed in monitor mode: counted and reported, passed.
    pub const WOULD_DROP: u8 = 2;
}

/// Rate-limit classes, the index into the policy's rate arrays.
pub mod class {
    /// TCP SYN without ACK (connection attempts).
    pub const SYN: usize = 0;
    /// UDP.
    pub const UDP: usize = 1;
    /// ICMP and ICMPv6 (neighbour discovery excepted).
    pub const ICMP: usize = 2;
    /// Number of classes.
    pub const COUNT: usize = 3;
    /// Metric and config names.
    pub const NAMES: [&str; COUNT] = ["syn", "udp", "icmp"];
}

/// The policy, written by userspace into a one-entry array; all zero means "protection off"
/// (one array lookup per packet).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Policy {
    /// Active table generation (0 or 1): a reload fills the other one, then flips this.
    pub gen: u32,
    /// Checks that run, one bit `1 << reason` each.
    pub enabled: u32,
    /// Checks in prevent mode, `1 << reason` (lists have their own bits below).
    pub prevent: u32,
    /// List bits checked as `blocklist` against ingress sources.
    pub block_lists: u32,
    /// List bits checked as `bogon` (for example Team Cymru's fullbogons).
    pub bogon_lists: u32,
    /// List bits whose hits drop (prevent); the others only count.
    pub prevent_lists: u32,
    /// List bits also checked against egress destinations (as `blocklist`).
    pub egress_dst_lists: u32,
    /// Port policy enforced for TCP (bit 0) and UDP (bit 1).
    pub port_enforce: u32,
    /// Per-source rate: nanoseconds per packet, per [`class`]; 0 turns the class off.
    pub rate_interval_ns: [u64; class::COUNT],
    /// Per-source burst tolerance in nanoseconds (interval × (burst − 1)), per class.
    pub rate_burst_ns: [u64; class::COUNT],
    /// At most one drop event per this many nanoseconds per CPU, hook and reason.
    pub event_interval_ns: u64,
}

const _: () = assert!(core::mem::size_of::<Policy>() == 88);

/// Port-policy bit for TCP.
pub const PORTS_TCP: u32 = 1;
/// Port-policy bit for UDP.
pub const PORTS_UDP: u32 = 2;
/// Words (of 64 ports) per protocol in the port bitmap.
pub const PORT_WORDS: u32 = 1024;

/// Index of `port`'s word in the port bitmap (TCP words first, then UDP) and its bit.
#[inline(always)]
pub fn port_slot(udp: bool, port: u16) -> (u32, u64) {
    let base = if udp { PORT_WORDS } else { 0 };
    (base + u32::from(port >> 6), 1u64 << (port & 63))
}

/// IPv4 prefixes up to this length live in the directory; longer ones in the hash.
pub const DIR4_BITS: u32 = 16;
/// Directory slots per generation.
pub const DIR4_SLOTS: u32 = 1 << DIR4_BITS;
/// Words of the /24 bitmap per generation: one bit per /24, set when a prefix longer than
/// /16 covers or lies inside that /24. A miss in a busy /16 then costs one more array read
/// instead of a hash probe per prefix length present.
pub const SUB4_WORDS: u32 = 1 << 18;
/// Words of the IPv6 /24 bitmap per generation: one bit per /24 of IPv6 space, set when a
/// prefix covers or lies inside it. Most misses then skip the LPM trie.
pub const SUB6_WORDS: u32 = 1 << 18;

/// The IPv6 /24 an address lies in: its top 24 bits.
#[inline(always)]
pub fn top24(addr: &[u8; 16]) -> u32 {
    u32::from_be_bytes([0, addr[0], addr[1], addr[2]])
}

/// One /16 of the IPv4 directory.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Dir4 {
    /// Mask of the longest prefix of length ≤ 16 containing this /16 (0: none).
    pub mask: u32,
    /// Bit `len - 17` set when some prefix of length `len` (17..=32) lies inside this /16.
    pub lens: u32,
}

/// Key of the IPv4 hash of prefixes longer than /16.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pfx4Key {
    /// The prefix, network order, host bits zero.
    pub addr: [u8; 4],
    /// Prefix length, 17..=32.
    pub len: u8,
    /// Generation, 0 or 1.
    pub gen: u8,
    /// Explicit padding.
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<Pfx4Key>() == 8);

/// IPv4 netmask of `len` bits, host order.
#[inline(always)]
pub fn mask4(len: u32) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

/// Number of set bits, by arithmetic alone: the BPF verifier follows every branch of a
/// branchy bit scan separately, and a few of them multiply the paths it has to check.
#[inline(always)]
pub fn popcount(v: u32) -> u32 {
    let v = v - ((v >> 1) & 0x5555_5555);
    let v = (v & 0x3333_3333) + ((v >> 2) & 0x3333_3333);
    (((v + (v >> 4)) & 0x0f0f_0f0f).wrapping_mul(0x0101_0101)) >> 24
}

/// Index of the lowest set bit of a non-zero `x` (branch-free, see [`popcount`]).
#[inline(always)]
pub fn lowest_bit(x: u32) -> u32 {
    popcount((x & x.wrapping_neg()).wrapping_sub(1))
}

/// The IPv4 lookup over a directory, a /24 bitmap and a prefix hash: what the kernel runs,
/// also run on the host against the reference matcher. `dir` reads one slot, `sub` one
/// bitmap word, `hash` one prefix.
#[inline(always)]
pub fn lookup4(
    gen: u32,
    addr: u32,
    dir: impl Fn(u32) -> Option<Dir4>,
    sub: impl Fn(u32) -> Option<u64>,
    hash: impl Fn(&Pfx4Key) -> Option<u32>,
) -> u32 {
    let Some(slot) = dir((gen & 1) * DIR4_SLOTS + (addr >> DIR4_BITS)) else {
        return 0;
    };
    let lens = slot.lens & 0xffff;
    if lens == 0 {
        return slot.mask;
    }
    let word = sub((gen & 1) * SUB4_WORDS + (addr >> 14)).unwrap_or(0);
    if word & (1u64 << ((addr >> 8) & 63)) == 0 {
        return slot.mask;
    }
    // Longest first: the first hit already carries every shorter prefix's bits. One branch
    // per length, whose two sides meet again, keeps the verifier's work linear.
    for b in (0..16u32).rev() {
        if lens & (1 << b) == 0 {
            continue;
        }
        let len = b + 17;
        let key = Pfx4Key {
            addr: (addr & mask4(len)).to_be_bytes(),
            len: len as u8,
            gen: (gen & 1) as u8,
            _pad: [0; 2],
        };
        if let Some(m) = hash(&key) {
            return m;
        }
    }
    slot.mask
}

/// Key of the per-source rate limiter: an IPv4 address or an IPv6 /64, and the class.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RateKey {
    /// The source (IPv6: the /64, the rest zero).
    pub addr: [u8; 16],
    /// 4 or 6.
    pub family: u8,
    /// [`class`] index.
    pub class: u8,
    /// Explicit padding.
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<RateKey>() == 20);

impl RateKey {
    /// The bucket `p`'s source falls in for `class`.
    #[inline(always)]
    pub fn new(p: &Parsed, class: usize) -> RateKey {
        let mut addr = p.src;
        if p.family == FAMILY_IPV6 {
            addr[8..].copy_from_slice(&[0; 8]);
        }
        RateKey {
            addr,
            family: p.family,
            class: class as u8,
            _pad: [0; 2],
        }
    }
}

/// The generic cell rate algorithm: one timestamp per bucket (the theoretical arrival time of
/// the next packet). `true` when the packet conforms, and then it is recorded; a packet over
/// the limit does not move the bucket, so monitor and prevent agree on what is over.
#[inline(always)]
pub fn gcra(tat: &mut u64, now: u64, interval: u64, burst_ns: u64) -> bool {
    let t = if *tat > now { *tat } else { now };
    if t - now > burst_ns {
        return false;
    }
    *tat = t + interval;
    true
}

/// What the verdict rules need from the kernel maps (or from their host model).
pub trait Tables {
    /// OR of the masks of every table entry of generation `gen` containing `addr`.
    fn addr_mask(&self, gen: u32, family: u8, addr: &[u8; 16]) -> u32;
    /// `true` when the port bitmap opens `port` for TCP (`udp == false`) or UDP.
    fn port_allowed(&self, udp: bool, port: u16) -> bool;
    /// `true` when the host itself opened the flow (its egress recorded it).
    fn outbound(&self, key: &FlowKey) -> bool;
    /// Runs [`gcra`] on the bucket of `key`, creating it when missing.
    fn rate_conforms(&self, key: &RateKey, now: u64, interval: u64, burst_ns: u64) -> bool;
}

/// The outcome for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// [`action`].
    pub action: u8,
    /// [`reason`] of the drop, or of the first check that failed in monitor mode.
    pub reason: u8,
    /// List id involved, [`LIST_NONE`] when none.
    pub list: u8,
}

impl Verdict {
    /// Passed, nothing to report.
    pub const PASS: Verdict = Verdict {
        action: action::PASS,
        reason: reason::NONE,
        list: LIST_NONE,
    };

    /// Records a failed check: a drop ends the evaluation (returns `true`); in monitor mode the
    /// first failure is kept and the later checks still run, since one of them may prevent.
    #[inline(always)]
    fn fail(&mut self, reason: u8, list: u8, prevent: bool) -> bool {
        if prevent {
            *self = Verdict {
                action: action::DROP,
                reason,
                list,
            };
            return true;
        }
        if self.action == action::PASS {
            *self = Verdict {
                action: action::WOULD_DROP,
                reason,
                list,
            };
        }
        false
    }
}

#[inline(always)]
fn on(pol: &Policy, r: u8) -> bool {
    pol.enabled & (1 << r) != 0
}

#[inline(always)]
fn prevents(pol: &Policy, r: u8) -> bool {
    pol.prevent & (1 << r) != 0
}

/// A list hit: the list reported is the lowest preventing one when any prevents.
#[inline(always)]
fn list_hit(v: &mut Verdict, pol: &Policy, r: u8, hits: u32) -> bool {
    let prevent = hits & pol.prevent_lists;
    let list = lowest_bit(if prevent != 0 { prevent } else { hits }) as u8;
    v.fail(r, list, prevent != 0)
}

/// `true` for ICMPv6 neighbour discovery (router/neighbour solicitation and advertisement,
/// redirect): never rate-limited, IPv6 does not work without it.
#[inline(always)]
fn is_nd(p: &Parsed) -> bool {
    p.proto == ipproto::ICMPV6 && p.icmp_type >= 133 && p.icmp_type <= 137
}

/// The rate-limit class of an ingress packet, if any.
#[inline(always)]
pub fn rate_class(p: &Parsed) -> Option<usize> {
    match p.proto {
        ipproto::TCP if p.tcp_flags & (tcp::SYN | tcp::ACK) == tcp::SYN => Some(class::SYN),
        ipproto::UDP => Some(class::UDP),
        ipproto::ICMP => Some(class::ICMP),
        ipproto::ICMPV6 if !is_nd(p) => Some(class::ICMP),
        _ => None,
    }
}

/// `true` when `p` has an IP source the checks can use (the parse reached L3).
#[inline(always)]
fn has_ip(p: &Parsed) -> bool {
    p.family == FAMILY_IPV4 || p.family == FAMILY_IPV6
}

/// The ingress verdict for a parsed packet. Order: allowlist, own-prefix spoofing, bogons,
/// blocklists, port policy, rate limits.
#[inline(always)]
pub fn ingress<T: Tables>(t: &T, pol: &Policy, p: &Parsed, ifindex: u32, now: u64) -> Verdict {
    let mut v = Verdict::PASS;
    if pol.enabled == 0 || !has_ip(p) {
        return v;
    }
    let m = t.addr_mask(pol.gen, p.family, &p.src);
    if m & bit::ALLOW != 0 {
        return v;
    }
    if on(pol, reason::OWN_PREFIX_SPOOFED)
        && m & bit::OWN != 0
        && v.fail(
            reason::OWN_PREFIX_SPOOFED,
            LIST_OWN,
            prevents(pol, reason::OWN_PREFIX_SPOOFED),
        )
    {
        return v;
    }
    if on(pol, reason::BOGON) && m & bit::BOGON_EXEMPT == 0 {
        if m & bit::BUILTIN_BOGON != 0
            && v.fail(
                reason::BOGON,
                LIST_BUILTIN_BOGON,
                prevents(pol, reason::BOGON),
            )
        {
            return v;
        }
        let hits = m & pol.bogon_lists & bit::LISTS;
        if hits != 0 && list_hit(&mut v, pol, reason::BOGON, hits) {
            return v;
        }
    }
    if on(pol, reason::BLOCKLIST) {
        let hits = m & pol.block_lists & bit::LISTS;
        if hits != 0 && list_hit(&mut v, pol, reason::BLOCKLIST, hits) {
            return v;
        }
    }
    if on(pol, reason::PORT_POLICY) && p.fragment != Fragment::Later {
        let udp = p.proto == ipproto::UDP;
        let enforced = match p.proto {
            ipproto::TCP => pol.port_enforce & PORTS_TCP != 0,
            ipproto::UDP => pol.port_enforce & PORTS_UDP != 0,
            _ => false,
        };
        if enforced
            && !t.port_allowed(udp, p.dport)
            && !t.outbound(&outbound_key(p, ifindex))
            && v.fail(
                reason::PORT_POLICY,
                LIST_NONE,
                prevents(pol, reason::PORT_POLICY),
            )
        {
            return v;
        }
    }
    if on(pol, reason::RATE_LIMIT) {
        if let Some(c) = rate_class(p) {
            // The mask keeps the index provably in bounds for the verifier.
            let c = c & 3;
            if c < class::COUNT {
                let interval = pol.rate_interval_ns[c];
                if interval != 0
                    && !t.rate_conforms(&RateKey::new(p, c), now, interval, pol.rate_burst_ns[c])
                {
                    v.fail(
                        reason::RATE_LIMIT,
                        LIST_NONE,
                        prevents(pol, reason::RATE_LIMIT),
                    );
                }
            }
        }
    }
    v
}

/// `true` for the unspecified address (`0.0.0.0`, `::`): DHCP and IPv6 duplicate address
/// detection send from it before the host has an address.
#[inline(always)]
fn unspecified(p: &Parsed) -> bool {
    let n = if p.family == FAMILY_IPV4 { 4 } else { 16 };
    let mut i = 0;
    while i < 16 {
        if i < n && p.src[i] != 0 {
            return false;
        }
        i += 1;
    }
    true
}

/// The egress verdict: the source must be one of the host's own, and the destination may be
/// on a list checked at egress.
#[inline(always)]
pub fn egress<T: Tables>(t: &T, pol: &Policy, p: &Parsed) -> Verdict {
    let mut v = Verdict::PASS;
    if pol.enabled == 0 || !has_ip(p) {
        return v;
    }
    if on(pol, reason::EGRESS_SPOOFED)
        && !unspecified(p)
        && t.addr_mask(pol.gen, p.family, &p.src) & bit::OWN == 0
        && v.fail(
            reason::EGRESS_SPOOFED,
            LIST_OWN,
            prevents(pol, reason::EGRESS_SPOOFED),
        )
    {
        return v;
    }
    if on(pol, reason::BLOCKLIST) && pol.egress_dst_lists != 0 {
        let m = t.addr_mask(pol.gen, p.family, &p.dst);
        let hits = m & pol.egress_dst_lists & bit::LISTS;
        if m & bit::ALLOW == 0 && hits != 0 {
            list_hit(&mut v, pol, reason::BLOCKLIST, hits);
        }
    }
    v
}

/// `true` when an egress packet opens a connection whose replies the port policy must let
/// in: a TCP SYN, or UDP from a port the policy does not open (a client socket), each only
/// when the policy is enforced for its protocol.
#[inline(always)]
pub fn egress_opens<T: Tables>(t: &T, pol: &Policy, p: &Parsed) -> bool {
    if p.fragment == Fragment::Later {
        return false;
    }
    match p.proto {
        ipproto::TCP => {
            pol.port_enforce & PORTS_TCP != 0 && p.tcp_flags & (tcp::SYN | tcp::ACK) == tcp::SYN
        }
        ipproto::UDP => pol.port_enforce & PORTS_UDP != 0 && !t.port_allowed(true, p.sport),
        _ => false,
    }
}

/// The key of the outbound-flow map: the flow key without its VLAN, since a NIC that strips
/// tags on receive shows XDP an untagged frame while TC egress sees the tag as metadata.
#[inline(always)]
pub fn outbound_key(p: &Parsed, ifindex: u32) -> FlowKey {
    let mut k = FlowKey::from_parsed(p, ifindex).0;
    k.vlan = 0;
    k
}

/// Indexes into [`VerdictCounters::c`].
pub mod vid {
    /// Packets dropped, `DROPPED + reason`.
    pub const DROPPED: usize = 0;
    /// Packets that would have been dropped (monitor), `WOULD_DROP + reason`.
    pub const WOULD_DROP: usize = 8;
    /// Packets dropped, by list, `LIST_DROPPED + list`.
    pub const LIST_DROPPED: usize = 16;
    /// Would-drops by list.
    pub const LIST_WOULD_DROP: usize = 48;
    /// Drop events sent to userspace.
    pub const EVENTS: usize = 80;
    /// Drop events not sent because the per-reason interval had not passed.
    pub const EVENTS_SUPPRESSED: usize = 81;
    /// Drop events lost because the ring buffer was full.
    pub const EVENTS_LOST: usize = 82;
    /// Outbound flows recorded for the port policy.
    pub const OUTBOUND_RECORDED: usize = 83;
}

/// Verdict counter slots per hook (84 to 87 are spare).
pub const VERDICT_SLOTS: usize = 88;

/// One hook's verdict counters on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerdictCounters {
    /// Slots, indexed by [`vid`].
    pub c: [u64; VERDICT_SLOTS],
}

impl Default for VerdictCounters {
    fn default() -> Self {
        VerdictCounters {
            c: [0; VERDICT_SLOTS],
        }
    }
}

impl VerdictCounters {
    /// Counts one packet's verdict (nothing for a pass).
    #[inline(always)]
    pub fn count(&mut self, v: &Verdict) {
        // The compiler may prove the masks redundant and drop them, but the verifier cannot
        // see that far: read the bytes as opaque values, then mask.
        // SAFETY: a read of an initialised `u8` field.
        let r = unsafe { core::ptr::read_volatile(&v.reason) } as usize & 7;
        // SAFETY: as above.
        let l = unsafe { core::ptr::read_volatile(&v.list) } as usize & 31;
        if v.action == action::DROP {
            self.c[vid::DROPPED + r] += 1;
            self.c[vid::LIST_DROPPED + l] += 1;
        } else if v.action == action::WOULD_DROP {
            self.c[vid::WOULD_DROP + r] += 1;
            self.c[vid::LIST_WOULD_DROP + l] += 1;
        }
    }

    /// Adds another CPU's block into this one.
    pub fn add(&mut self, other: &VerdictCounters) {
        for (a, b) in self.c.iter_mut().zip(other.c.iter()) {
            *a += *b;
        }
    }
}

/// Header fields of a drop-event record beyond [`crate::head::HeadRecord`]'s: they ride in its
/// padding bytes (`_pad[0]` reason, `_pad[1]` list, `_pad[2]` action).
pub const DROP_RECORD_CAP: usize = 128;
/// Bytes of the drop-event ring buffer.
pub const DEFAULT_DROP_RING_BYTES: u32 = 256 << 10;
/// Default capacity of the IPv4 prefix hash per generation.
pub const DEFAULT_V4_CAPACITY: u32 = 1 << 20;
/// Default capacity of the IPv6 trie per generation.
pub const DEFAULT_V6_CAPACITY: u32 = 1 << 18;
/// Default capacity of the rate-limiter buckets.
pub const DEFAULT_RATE_CAPACITY: u32 = 1 << 16;
/// Default capacity of the outbound-flow map the port policy consults.
pub const DEFAULT_OUTBOUND_CAPACITY: u32 = 1 << 16;

/// Key data of the IPv6 trie: the generation byte, then the address; the trie's prefix length
/// is 8 + the address prefix length.
pub type Lpm6Data = [u8; 17];

/// RFC 6890 (and successors) special-purpose IPv4 space that is never a valid source from the
/// internet, as (network, prefix length).
pub const BOGONS_V4: [([u8; 4], u8); 15] = [
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

/// Special-purpose IPv6 space never valid as a source from the internet. Link-local
/// (`fe80::/10`) and `::` are left out: neighbour discovery and duplicate address detection use
/// them on every link.
pub const BOGONS_V6: [([u8; 16], u8); 9] = [
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128),
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0], 96),
    ([0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 64),
    (
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        32,
    ),
    (
        [0x20, 0x01, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        28,
    ),
    ([0x3f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 20),
    ([0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 7),
    ([0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 10),
    ([0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_scans() {
        for b in 0..32 {
            assert_eq!(lowest_bit(1 << b), b);
            assert_eq!(lowest_bit(u32::MAX << b), b);
            assert_eq!(popcount(u32::MAX >> b), 32 - b);
        }
        assert_eq!(popcount(0), 0);
        assert_eq!(lowest_bit(0b1011_0000), 4);
    }

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        let (interval, burst) = (1_000, 4);
        let tol = interval * (burst - 1);
        let mut tat = 0;
        let passed = (0..10)
            .filter(|_| gcra(&mut tat, 5_000, interval, tol))
            .count();
        assert_eq!(passed as u64, burst);
        // One interval later exactly one more conforms.
        assert!(gcra(&mut tat, 6_000, interval, tol));
        assert!(!gcra(&mut tat, 6_000, interval, tol));
    }

    #[test]
    fn masks() {
        assert_eq!(mask4(0), 0);
        assert_eq!(mask4(8), 0xff00_0000);
        assert_eq!(mask4(32), u32::MAX);
    }
}
