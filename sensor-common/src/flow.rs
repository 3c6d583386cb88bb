//! The flow map's key and value, and the per-packet accounting rule shared by the kernel
//! programs and the host model that tests compare them with.
//!
//! A flow is keyed by its direction-normalised 5-tuple plus VLAN id: the (address, port) pair
//! that sorts lower is side A. Both directions of a conversation, seen at XDP ingress or at TC
//! egress, land in the same entry. The map is per-CPU, so each CPU accounts into its own value
//! without atomics; userspace merges the CPUs' values with [`FlowStats::merge`].

use crate::parse::{ipproto, Fragment, Parsed};

/// Index of the A→B direction in the per-direction arrays.
pub const DIR_AB: usize = 0;
/// Index of the B→A direction.
pub const DIR_BA: usize = 1;

/// TCP flag bits.
pub mod tcp {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// Direction-normalised flow key.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FlowKey {
    /// Lower-sorting address (network order; IPv4 in the first four bytes).
    pub addr_a: [u8; 16],
    /// Higher-sorting address.
    pub addr_b: [u8; 16],
    /// Interface the packet was seen on (XDP ingress ifindex, or the skb's device at egress).
    pub ifindex: u32,
    /// Port of side A (host order), 0 for protocols without ports and later fragments.
    pub port_a: u16,
    /// Port of side B.
    pub port_b: u16,
    /// Outer VLAN id, 0 when untagged.
    pub vlan: u16,
    /// IP protocol.
    pub proto: u8,
    /// 4 or 6.
    pub family: u8,
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 44);

/// One CPU's counters for one flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowStats {
    /// Packets per direction (`[DIR_AB, DIR_BA]`).
    pub pkts: [u64; 2],
    /// Bytes per direction, whole frames from the Ethernet header.
    pub bytes: [u64; 2],
    /// Monotonic (`CLOCK_MONOTONIC`) time of the first packet on this CPU, ns; 0 = unused slot.
    pub first_ns: u64,
    /// Monotonic time of the last packet on this CPU, ns.
    pub last_ns: u64,
    /// Union of TCP flags per direction.
    pub tcp_flags: [u8; 2],
    /// Last ICMP type per direction.
    pub icmp_type: [u8; 2],
    /// Last ICMP code per direction.
    pub icmp_code: [u8; 2],
    /// Direction of the client (the side that opened the flow), as first judged on this CPU.
    pub client_dir: u8,
    /// The flow's [`crate::head::mode`], as last read from the control map on this CPU.
    pub head_mode: u8,
    /// Head budget of each direction charged so far on this CPU (see [`crate::head`]).
    pub head_sent: [u32; 2],
    /// The settings' `control_epoch` when `head_mode` was read.
    pub head_epoch: u32,
    /// Explicit padding to the 8-byte boundary.
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<FlowStats>() == 72);

fn be_u64(b: &[u8; 16], half: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[half * 8..half * 8 + 8]);
    u64::from_be_bytes(w)
}

/// `true` when (a, pa) sorts strictly after (b, pb).
#[inline(always)]
fn greater(a: &[u8; 16], pa: u16, b: &[u8; 16], pb: u16) -> bool {
    let (a0, b0) = (be_u64(a, 0), be_u64(b, 0));
    if a0 != b0 {
        return a0 > b0;
    }
    let (a1, b1) = (be_u64(a, 1), be_u64(b, 1));
    if a1 != b1 {
        return a1 > b1;
    }
    pa > pb
}

impl FlowKey {
    /// The normalised key of a parsed packet seen on `ifindex`, and the packet's direction.
    #[inline(always)]
    pub fn from_parsed(p: &Parsed, ifindex: u32) -> (FlowKey, usize) {
        let (sport, dport) = if p.fragment == Fragment::Later {
            (0, 0)
        } else {
            (p.sport, p.dport)
        };
        let swap = greater(&p.src, sport, &p.dst, dport);
        let (addr_a, port_a, addr_b, port_b, dir) = if swap {
            (p.dst, dport, p.src, sport, DIR_BA)
        } else {
            (p.src, sport, p.dst, dport, DIR_AB)
        };
        (
            FlowKey {
                addr_a,
                addr_b,
                ifindex,
                port_a,
                port_b,
                vlan: p.vlan,
                proto: p.proto,
                family: p.family,
            },
            dir,
        )
    }
}

impl FlowStats {
    /// Accounts `pkts` packets (more than one for a GSO packet) of `len` bytes in all, seen at
    /// `now_ns`, travelling in direction `dir`.
    #[inline(always)]
    pub fn account(&mut self, p: &Parsed, dir: usize, pkts: u64, len: u64, now_ns: u64) {
        let d = dir & 1;
        if self.first_ns == 0 {
            self.first_ns = now_ns;
            // The sender of a SYN-ACK is the server: its peer opened the flow.
            let syn_ack = p.proto == ipproto::TCP
                && p.tcp_flags & (tcp::SYN | tcp::ACK) == tcp::SYN | tcp::ACK;
            self.client_dir = if syn_ack { (d ^ 1) as u8 } else { d as u8 };
        }
        // The first packet on a CPU may carry a finer clock than later ones (see the kernel's
        // `account`): never let the last-seen time go back.
        if now_ns > self.last_ns {
            self.last_ns = now_ns;
        }
        // Constant indexes only: with a variable one LLVM may build the element address with
        // `or`, which the BPF verifier refuses on pointers.
        if d == 0 {
            self.add_dir::<0>(p, pkts, len);
        } else {
            self.add_dir::<1>(p, pkts, len);
        }
    }

    #[inline(always)]
    fn add_dir<const D: usize>(&mut self, p: &Parsed, pkts: u64, len: u64) {
        self.pkts[D] += pkts;
        self.bytes[D] += len;
        self.tcp_flags[D] |= p.tcp_flags;
        if p.proto == ipproto::ICMP || p.proto == ipproto::ICMPV6 {
            self.icmp_type[D] = p.icmp_type;
            self.icmp_code[D] = p.icmp_code;
        }
    }

    /// Merges the per-CPU values of one flow into one. The client direction is taken from the
    /// CPU that saw the flow first.
    pub fn merge<'a>(values: impl IntoIterator<Item = &'a FlowStats>) -> FlowStats {
        let mut out = FlowStats::default();
        for v in values {
            if v.first_ns == 0 {
                continue;
            }
            if out.first_ns == 0 || v.first_ns < out.first_ns {
                out.first_ns = v.first_ns;
                out.client_dir = v.client_dir;
            }
            if v.last_ns >= out.last_ns {
                out.last_ns = v.last_ns;
                out.icmp_type = v.icmp_type;
                out.icmp_code = v.icmp_code;
            }
            if v.head_epoch >= out.head_epoch {
                out.head_epoch = v.head_epoch;
                out.head_mode = v.head_mode;
            }
            for d in 0..2 {
                out.pkts[d] += v.pkts[d];
                out.bytes[d] += v.bytes[d];
                out.tcp_flags[d] |= v.tcp_flags[d];
                out.head_sent[d] = out.head_sent[d].saturating_add(v.head_sent[d]);
            }
        }
        out
    }
}
