//! The pipeline's flow table: flows keyed like the kernel's flow map (the tunnel depth where
//! the kernel keeps the interface), each with its TCP session, application layer and
//! detection state; a bound on how many are tracked, and which have timed out by capture
//! time.

use std::collections::HashMap;

use sensor_common::{
    flow::{FlowKey, FlowStats},
    parse::ipproto,
};

use super::tcp;
use crate::{
    applayer,
    detect::flow::{FlowDetect, FlowFacts},
    flows::{self, Reason, Timeouts},
};

/// One flow.
pub struct Flow {
    /// Its key.
    pub key: FlowKey,
    /// Its EVE `flow_id`.
    pub id: u64,
    /// Counters, orientation and timestamps, as the kernel keeps them.
    pub stats: FlowStats,
    /// TCP state, for TCP flows.
    pub tcp: Option<tcp::Session>,
    /// Protocol detection and parsing.
    pub app: applayer::Session,
    /// Signatures' state.
    pub detect: FlowDetect,
}

/// What a new flow starts with.
#[derive(Clone, Copy, Debug)]
pub struct NewFlow {
    /// Its first packet's capture time.
    pub ts_ns: u64,
    /// The id to give it instead of one derived from key and time.
    pub id: Option<u64>,
    /// Its first packet carries transport payload (not a later fragment).
    pub has_transport: bool,
    /// Signatures are evaluated.
    pub inspect: bool,
}

impl Flow {
    /// What detection knows of the flow (`established` as the caller judges it), beside
    /// the detection state it updates.
    pub fn facts(&mut self, established: bool) -> (FlowFacts<'_>, &mut FlowDetect) {
        let client = usize::from(self.stats.client_dir);
        let facts = FlowFacts {
            key: &self.key,
            stats: &self.stats,
            id: self.id,
            app_proto: self.app.proto(),
            established,
            stream_size: self.tcp.as_ref().map(|t| {
                let s = t.stream_sizes();
                (s[client], s[1 - client])
            }),
        };
        (facts, &mut self.detect)
    }
}

/// The table.
pub struct FlowTable {
    /// Boxed: a flow is some 800 bytes, and the table moves every entry each time it grows.
    flows: HashMap<FlowKey, Box<Flow>, ahash::RandomState>,
    max_flows: usize,
}

impl FlowTable {
    /// An empty table that tracks at most `max_flows`.
    pub fn new(max_flows: usize) -> FlowTable {
        FlowTable {
            // aHash with random keys: fast, and an attacker who picks addresses and ports
            // cannot aim at collisions as with a fixed hash.
            flows: HashMap::with_hasher(ahash::RandomState::new()),
            max_flows,
        }
    }

    /// Flows tracked now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// `true` when no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The flow of `key`, created when new; `None` when it is new and the table is full.
    /// The bool is `true` when the flow was created.
    pub fn get_or_create(&mut self, key: FlowKey, new: NewFlow) -> Option<(&mut Flow, bool)> {
        let len = self.flows.len();
        match self.flows.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some((&mut **e.into_mut(), false)),
            std::collections::hash_map::Entry::Vacant(_) if len >= self.max_flows => None,
            std::collections::hash_map::Entry::Vacant(e) => {
                let probe = matches!(key.proto, ipproto::TCP | ipproto::UDP) && new.has_transport;
                let flow = Box::new(Flow {
                    key,
                    id: new.id.unwrap_or_else(|| flows::flow_id(&key, new.ts_ns)),
                    stats: FlowStats::default(),
                    tcp: (key.proto == ipproto::TCP).then(tcp::Session::default),
                    app: applayer::Session::new(probe, new.inspect),
                    detect: FlowDetect::default(),
                });
                Some((&mut **e.insert(flow), true))
            }
        }
    }

    /// The flow of `key`.
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        self.flows.get_mut(key).map(|f| &mut **f)
    }

    /// Takes the flow of `key` out of the table.
    pub fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        self.flows.remove(key).map(|f| *f)
    }

    /// Puts a flow (back) into the table.
    pub fn insert(&mut self, flow: Flow) {
        self.flows.insert(flow.key, Box::new(flow));
    }

    /// Gives memory back after many flows ended (a flood, a scan): a table holding a quarter
    /// of its capacity or less shrinks to twice its flows, and the allocator returns its free
    /// memory to the system (glibc keeps what a burst of flows freed in its arenas otherwise,
    /// and the agent's RSS would stay at its peak). Returns whether it shrank.
    pub fn reclaim(&mut self) -> bool {
        let (len, cap) = (self.flows.len(), self.flows.capacity());
        if cap <= 1024 || cap / 4 < len {
            return false;
        }
        self.flows.shrink_to((2 * len).max(1024));
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim has no preconditions; it only releases free memory.
        unsafe {
            libc::malloc_trim(0);
        }
        self.flows.capacity() < cap
    }

    /// Flows idle past their timeout at capture time `now_ns`, in the order they began.
    pub fn timed_out(&self, now_ns: u64, timeouts: &Timeouts) -> Vec<FlowKey> {
        self.in_order(|k, f| flows::expiry(k, &f.stats, now_ns, timeouts) == Some(Reason::Timeout))
    }

    /// Every flow, in the order they began.
    pub fn all(&self) -> Vec<FlowKey> {
        self.in_order(|_, _| true)
    }

    /// The keys of the flows `pick` selects, by first packet then key: the table's hash order
    /// is random per run, and the same capture should give the same log.
    fn in_order(&self, pick: impl Fn(&FlowKey, &Flow) -> bool) -> Vec<FlowKey> {
        let mut keys: Vec<(u64, FlowKey)> = self
            .flows
            .iter()
            .filter(|(k, f)| pick(k, f))
            .map(|(k, f)| (f.stats.first_ns, *k))
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, k)| k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::parse::FAMILY_IPV4;

    fn key(port: u16, proto: u8) -> FlowKey {
        FlowKey {
            proto,
            family: FAMILY_IPV4,
            port_a: port,
            port_b: 53,
            ..Default::default()
        }
    }

    fn new(ts_ns: u64) -> NewFlow {
        NewFlow {
            ts_ns,
            id: None,
            has_transport: true,
            inspect: false,
        }
    }

    #[test]
    fn a_table_emptied_after_a_burst_gives_its_memory_back() {
        let mut t = FlowTable::new(100_000);
        for port in 0..20_000u16 {
            t.get_or_create(key(port, ipproto::UDP), new(u64::from(port)));
        }
        let full = t.flows.capacity();
        assert!(!t.reclaim(), "a full table keeps its room");
        for port in 10..20_000u16 {
            t.remove(&key(port, ipproto::UDP));
        }
        assert!(t.reclaim());
        assert!(
            t.flows.capacity() < full / 8,
            "{} of {full}",
            t.flows.capacity()
        );
        assert_eq!(t.len(), 10);
        assert!(
            t.get_mut(&key(3, ipproto::UDP)).is_some(),
            "what is left is still found"
        );
        assert!(!t.reclaim(), "and a second call has nothing to give");
    }

    #[test]
    fn the_table_is_bounded_and_known_flows_still_found() {
        let mut t = FlowTable::new(2);
        assert!(t
            .get_or_create(key(1, ipproto::UDP), new(1))
            .is_some_and(|(_, n)| n));
        assert!(t.get_or_create(key(2, ipproto::UDP), new(2)).is_some());
        assert!(
            t.get_or_create(key(3, ipproto::UDP), new(3)).is_none(),
            "full"
        );
        assert!(
            t.get_or_create(key(1, ipproto::UDP), new(4))
                .is_some_and(|(_, n)| !n),
            "a known flow is found when full"
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn new_flows_get_ids_and_the_state_their_protocol_needs() {
        let mut t = FlowTable::new(8);
        let (f, _) = t
            .get_or_create(
                key(1, ipproto::TCP),
                NewFlow {
                    id: Some(77),
                    ..new(5)
                },
            )
            .expect("room");
        assert_eq!(f.id, 77);
        assert!(f.tcp.is_some());
        let (g, _) = t
            .get_or_create(key(2, ipproto::ICMP), new(5))
            .expect("room");
        assert_eq!(g.id, flows::flow_id(&key(2, ipproto::ICMP), 5));
        assert!(g.tcp.is_none());
    }

    #[test]
    fn timed_out_flows_come_in_the_order_they_began() {
        let mut t = FlowTable::new(64);
        let sec = 1_000_000_000u64;
        // Created in reverse port order, so hash order and port order both differ from
        // start order.
        for (i, port) in (1..=40u16).rev().enumerate() {
            let (f, _) = t
                .get_or_create(key(port, ipproto::UDP), new(0))
                .expect("room");
            f.stats.pkts = [1, 0];
            f.stats.first_ns = i as u64 + 1;
            f.stats.last_ns = i as u64 + 1;
        }
        let (young, _) = t
            .get_or_create(key(100, ipproto::UDP), new(0))
            .expect("room");
        young.stats.pkts = [1, 0];
        young.stats.first_ns = 50 * sec;
        young.stats.last_ns = 50 * sec;
        let out = t.timed_out(31 * sec, &Timeouts::default());
        let ports: Vec<u16> = out.iter().map(|k| k.port_a).collect();
        assert_eq!(ports, (1..=40u16).rev().collect::<Vec<_>>());
        assert_eq!(t.all().len(), 41);
        assert_eq!(t.all().last().map(|k| k.port_a), Some(100));
    }
}
