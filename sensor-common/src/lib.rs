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
pub mod pending;
pub mod protect;

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
    /// One-entry array of [`crate::protect::Policy`].
    pub const POLICY: &str = "PRECINCT_POLICY";
    /// Array of [`crate::protect::Dir4`], two generations of /16 slots.
    pub const DIR4: &str = "PRECINCT_DIR4";
    /// Array of `u64` words, two generations of the /24 bitmap.
    pub const SUB4: &str = "PRECINCT_SUB4";
    /// Hash of [`crate::protect::Pfx4Key`] to a mask: IPv4 prefixes longer than /16.
    pub const PFX4: &str = "PRECINCT_PFX4";
    /// Array of `u64` words, two generations of the IPv6 /24 bitmap.
    pub const SUB6: &str = "PRECINCT_SUB6";
    /// LPM trie of [`crate::protect::Lpm6Data`] to a mask: IPv6 prefixes.
    pub const LPM6: &str = "PRECINCT_LPM6";
    /// Array of 64-port words: the port policy bitmap (TCP, then UDP).
    pub const PORTS: &str = "PRECINCT_PORTS";
    /// LRU hash of [`crate::protect::RateKey`] to a GCRA timestamp.
    pub const RATE: &str = "PRECINCT_RATE";
    /// LRU hash of the flows the host opened (port-policy return traffic).
    pub const OUTBOUND: &str = "PRECINCT_OUTBOUND";
    /// Per-CPU array of [`crate::protect::VerdictCounters`], one per hook.
    pub const VERDICTS: &str = "PRECINCT_VERDICTS";
    /// Array of [`crate::pending::Pending`] slots: flows not yet confirmed.
    pub const PENDING: &str = "PRECINCT_PENDING";
    /// Ring buffer of drop events ([`crate::head::HeadRecord`] + frame start).
    pub const DROPS: &str = "PRECINCT_DROPS";
}

/// Names of the programs in the eBPF object.
pub mod programs {
    /// XDP ingress program.
    pub const INGRESS: &str = "precinct_ingress";
    /// TC (clsact) egress program.
    pub const EGRESS: &str = "precinct_egress";
}

/// Names in the benchmark-only eBPF object (`bench`), which holds the production maps and
/// these besides; nothing here is in the object the agent loads.
pub mod bench {
    /// Programs.
    pub mod programs {
        /// An XDP program that returns `XDP_PASS` and does nothing: the baseline.
        pub const EMPTY: &str = "bench_empty";
        /// The production ingress code over the production flow map (a per-CPU hash).
        pub const INGRESS_PERCPU_HASH: &str = "bench_ingress_percpu_hash";
        /// The same code over a per-CPU LRU hash.
        pub const INGRESS_LRU_PERCPU: &str = "bench_ingress_lru_percpu";
        /// The same code over a shared hash.
        pub const INGRESS_HASH: &str = "bench_ingress_hash";
        /// The same code over a shared LRU hash.
        pub const INGRESS_LRU: &str = "bench_ingress_lru";
        /// The IPv4 source lookup through the directory and hash, nothing else.
        pub const LOOKUP_DIR4: &str = "bench_lookup_dir4";
        /// The IPv4 source lookup through the LPM trie, nothing else.
        pub const LOOKUP_LPM4: &str = "bench_lookup_lpm4";
    }

    /// Maps.
    pub mod maps {
        /// Flow map variants (one entry unless resized at load).
        pub const FLOWS_LRU_PERCPU: &str = "BENCH_FLOWS_LRU_PERCPU";
        /// A shared hash flow map.
        pub const FLOWS_HASH: &str = "BENCH_FLOWS_HASH";
        /// A shared LRU hash flow map.
        pub const FLOWS_LRU: &str = "BENCH_FLOWS_LRU";
        /// The IPv4 table as a kernel LPM trie, the anchor to beat.
        pub const LPM4: &str = "BENCH_LPM4";
        /// Where lookup-only programs add their results.
        pub const SINK: &str = "BENCH_SINK";
    }
}

/// Default capacity of the flow map; userspace may override it before load.
pub const DEFAULT_FLOW_CAPACITY: u32 = 262_144;

/// Version of what the pinned maps' records mean (`precinct run --pin`): an agent refuses maps
/// pinned under another version. Bump it when a map record changes meaning without changing
/// size (a field reordered or reinterpreted); size and type changes are detected anyway.
pub const PIN_LAYOUT_VERSION: u64 = 1;

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
    /// One reason for every record type that crosses the kernel boundary.
    macro_rules! pod {
        ($($t:ty),* $(,)?) => {$(
            // SAFETY: all are `#[repr(C)]`, made only of integers and byte arrays with
            // explicit padding fields, so every bit pattern is valid.
            unsafe impl aya::Pod for $t {}
        )*};
    }

    pod!(
        crate::flow::FlowKey,
        crate::flow::FlowStats,
        crate::counters::Counters,
        crate::head::Settings,
        crate::head::HeadRecord,
        crate::pending::Pending,
        crate::protect::Policy,
        crate::protect::Dir4,
        crate::protect::Pfx4Key,
        crate::protect::RateKey,
        crate::protect::VerdictCounters,
    );
}
