//! The ABI shared by the kernel programs and the userspace agent, and the packet core written
//! once for both: the header parser ([`parse`]), the flow key and per-flow accounting
//! ([`flow`]) and the global counters ([`counters`]).
//!
//! Everything here is `no_std` and allocation-free so that the same code is compiled into the
//! eBPF object, into host unit tests and into fuzz targets. Records that cross the kernel
//! boundary are `#[repr(C)]` with explicit padding and a size assertion.
#![no_std]

pub mod counters;
pub mod flow;
pub mod head;
pub mod parse;

pub use parse::{parse, parse_into, Packet, Parsed};

/// Names of the maps in the eBPF object, so that userspace and the kernel never disagree.
pub mod maps {
    /// Per-CPU hash of [`crate::flow::FlowKey`] to [`crate::flow::FlowStats`].
    pub const FLOWS: &str = "PRECINCT_FLOWS";
    /// Per-CPU array of [`crate::counters::Counters`], one slot per hook.
    pub const COUNTERS: &str = "PRECINCT_COUNTERS";
    /// Ring buffer of flow heads: [`crate::head::HeadRecord`]s, each followed by frame bytes.
    pub const HEADS: &str = "PRECINCT_HEADS";
    /// One-entry array of [`crate::head::Settings`].
    pub const SETTINGS: &str = "PRECINCT_SETTINGS";
    /// Hash of [`crate::flow::FlowKey`] to a [`crate::head::mode`] (as `u32`), written by
    /// userspace.
    pub const HEAD_CONTROL: &str = "PRECINCT_HEAD_CONTROL";
}

/// Names of the programs in the eBPF object.
pub mod programs {
    /// XDP ingress program.
    pub const INGRESS: &str = "precinct_ingress";
    /// TC (clsact) egress program.
    pub const EGRESS: &str = "precinct_egress";
    /// An XDP program that returns `XDP_PASS` and does nothing: the benchmark baseline.
    pub const EMPTY: &str = "precinct_empty";
}

/// Default capacity of the flow map; userspace may override it before load.
pub const DEFAULT_FLOW_CAPACITY: u32 = 262_144;

/// The hook a packet was seen at; also the index into the counters array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// XDP, packets arriving at the host.
    Ingress = 0,
    /// TC clsact egress, packets leaving the host.
    Egress = 1,
}

impl Hook {
    /// Both hooks, in index order.
    pub const ALL: [Hook; 2] = [Hook::Ingress, Hook::Egress];

    /// Lower-case name used in metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are `#[repr(C)]`, made only of integers and byte arrays with explicit
    // padding fields, so every bit pattern is valid.
    unsafe impl aya::Pod for crate::flow::FlowKey {}
    unsafe impl aya::Pod for crate::flow::FlowStats {}
    unsafe impl aya::Pod for crate::counters::Counters {}
    unsafe impl aya::Pod for crate::head::Settings {}
    unsafe impl aya::Pod for crate::head::HeadRecord {}
}
