//! Flow lifecycle in userspace: when a flow has ended (idle, too old, shutdown), which side
//! is its client, its EVE `flow_id`, and the clock that turns kernel timestamps into UNIX
//! time. The `flow` record itself is built in [`crate::eve::flow`].

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use sensor_common::{
    flow::{tcp, FlowKey, FlowStats, DIR_AB},
    parse::{ipproto, Parsed, FAMILY_IPV4},
};

/// The key the inspection pipeline tracks a flow under. Its packets all come from one place
/// (a capture, or the agent's ring), so the key's `ifindex` does not name an interface there:
/// it holds the tunnel depth (low 16 bits) and the inner VLAN id of a double-tagged packet
/// (above), so that flows differ by both VLAN ids as Suricata tracks them.
pub fn pipeline_key(p: &Parsed, depth: u8) -> (FlowKey, usize) {
    FlowKey::from_parsed(p, u32::from(depth) | u32::from(p.vlan_inner) << 16)
}

/// The inner VLAN id of a [`pipeline_key`] (0 when the flow has one tag or none).
pub fn inner_vlan(key: &FlowKey) -> u16 {
    (key.ifindex >> 16) as u16
}

/// Flow timeouts, Suricata's defaults unless configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Idle timeout of a flow seen in one direction only, seconds.
    pub new_secs: u64,
    /// Idle timeout of an established TCP flow, seconds.
    pub tcp_established_secs: u64,
    /// Idle timeout of a TCP flow after FIN or RST, seconds.
    pub tcp_closed_secs: u64,
    /// Idle timeout of a UDP flow seen in both directions, seconds.
    pub udp_established_secs: u64,
    /// Idle timeout of an ICMP flow seen in both directions, seconds.
    pub icmp_established_secs: u64,
    /// Idle timeout of any other flow seen in both directions, seconds.
    pub other_established_secs: u64,
    /// A flow older than this is reported (reason `forced`) and restarts as a new flow, so
    /// that long-lived connections show up in the log, seconds.
    pub max_age_secs: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            new_secs: 30,
            tcp_established_secs: 600,
            tcp_closed_secs: 60,
            udp_established_secs: 300,
            icmp_established_secs: 300,
            other_established_secs: 300,
            max_age_secs: 3600,
        }
    }
}

/// Why a flow record was written (Suricata's `flow.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Idle for longer than its timeout.
    Timeout,
    /// Older than `max_age_secs`: reported and restarted.
    Forced,
    /// The agent is stopping.
    Shutdown,
}

impl Reason {
    /// The EVE spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Forced => "forced",
            Reason::Shutdown => "shutdown",
        }
    }
}

/// Suricata's `flow.state`: `closed` once the connection is torn down (a reset, or a FIN
/// from each side), not when only one side closed its half: Suricata keeps a half-closed
/// session (`fin_wait`, `close_wait`) `established`.
pub fn state(key: &FlowKey, s: &FlowStats) -> &'static str {
    let [a, b] = s.tcp_flags;
    let torn_down = (a | b) & tcp::RST != 0 || (a & tcp::FIN != 0 && b & tcp::FIN != 0);
    if key.proto == ipproto::TCP && torn_down {
        "closed"
    } else if s.pkts[0] > 0 && s.pkts[1] > 0 {
        "established"
    } else {
        "new"
    }
}

fn idle_timeout(key: &FlowKey, s: &FlowStats, t: &Timeouts) -> u64 {
    // A side that closed its half is enough for the shorter timeout: a half-closed connection
    // rarely sends again, and its entry is freed sooner.
    let closing =
        key.proto == ipproto::TCP && (s.tcp_flags[0] | s.tcp_flags[1]) & (tcp::FIN | tcp::RST) != 0;
    if closing {
        return t.tcp_closed_secs;
    }
    match (state(key, s), key.proto) {
        ("new", _) => t.new_secs,
        (_, ipproto::TCP) => t.tcp_established_secs,
        (_, ipproto::UDP) => t.udp_established_secs,
        (_, ipproto::ICMP | ipproto::ICMPV6) => t.icmp_established_secs,
        _ => t.other_established_secs,
    }
}

/// Whether the flow has ended at monotonic time `now_ns`, and why.
pub fn expiry(key: &FlowKey, s: &FlowStats, now_ns: u64, t: &Timeouts) -> Option<Reason> {
    let idle = Duration::from_nanos(now_ns.saturating_sub(s.last_ns));
    let age = Duration::from_nanos(now_ns.saturating_sub(s.first_ns));
    if idle >= Duration::from_secs(idle_timeout(key, s, t)) {
        Some(Reason::Timeout)
    } else if age >= Duration::from_secs(t.max_age_secs) {
        Some(Reason::Forced)
    } else {
        None
    }
}

/// The address in a key or parse result's 16-byte field.
pub fn ip_of(family: u8, bytes: &[u8; 16]) -> IpAddr {
    addr(family, bytes)
}

fn addr(family: u8, bytes: &[u8; 16]) -> IpAddr {
    if family == FAMILY_IPV4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    }
}

/// A flow seen from its client's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oriented {
    /// Client address.
    pub src: IpAddr,
    /// Client port (echo id for ICMP echo, else 0 for ICMP).
    pub sport: u16,
    /// Server address.
    pub dst: IpAddr,
    /// Server port.
    pub dport: u16,
    /// Index of the client→server direction in the per-direction arrays.
    pub ts: usize,
}

/// Orients a flow key: the client is the side that sent the first packet (or received the
/// first SYN-ACK).
pub fn orient(key: &FlowKey, s: &FlowStats) -> Oriented {
    let a = addr(key.family, &key.addr_a);
    let b = addr(key.family, &key.addr_b);
    if usize::from(s.client_dir) == DIR_AB {
        Oriented {
            src: a,
            sport: key.port_a,
            dst: b,
            dport: key.port_b,
            ts: 0,
        }
    } else {
        Oriented {
            src: b,
            sport: key.port_b,
            dst: a,
            dport: key.port_a,
            ts: 1,
        }
    }
}

/// Suricata-style flow id: stable for one flow, positive and below 2^51 so that JSON
/// consumers that parse numbers as doubles keep it exact.
pub fn flow_id(key: &FlowKey, first_ns: u64) -> u64 {
    // FNV-1a over the key's fields and the start time.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&key.addr_a);
    eat(&key.addr_b);
    eat(&key.ifindex.to_le_bytes());
    eat(&key.port_a.to_le_bytes());
    eat(&key.port_b.to_le_bytes());
    eat(&key.vlan.to_le_bytes());
    eat(&[key.proto, key.family]);
    eat(&first_ns.to_le_bytes());
    h & ((1 << 51) - 1)
}

/// Converts monotonic kernel timestamps into UNIX time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// UNIX ns minus monotonic ns, sampled at one instant.
    pub offset_ns: i128,
}

impl Clock {
    /// Samples both clocks now.
    pub fn now() -> Clock {
        let mono = monotonic_ns();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        Clock {
            offset_ns: wall - i128::from(mono),
        }
    }

    /// UNIX ns of a monotonic timestamp.
    pub fn unix_ns(&self, mono_ns: u64) -> u64 {
        (i128::from(mono_ns) + self.offset_ns).max(0) as u64
    }
}

/// `CLOCK_MONOTONIC` in ns: the clock `bpf_ktime_get_ns` reads.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_v4(a: [u8; 4], pa: u16, b: [u8; 4], pb: u16, proto: u8) -> FlowKey {
        let mut k = FlowKey {
            proto,
            family: FAMILY_IPV4,
            port_a: pa,
            port_b: pb,
            ..Default::default()
        };
        k.addr_a[..4].copy_from_slice(&a);
        k.addr_b[..4].copy_from_slice(&b);
        k
    }

    #[test]
    fn expiry_follows_state_and_age() {
        let t = Timeouts::default();
        let k = key_v4([1, 1, 1, 1], 53, [2, 2, 2, 2], 5353, ipproto::UDP);
        let sec = 1_000_000_000u64;
        let one_way = FlowStats {
            pkts: [1, 0],
            first_ns: sec,
            last_ns: sec,
            ..Default::default()
        };
        assert_eq!(expiry(&k, &one_way, sec + 29 * sec, &t), None);
        assert_eq!(
            expiry(&k, &one_way, sec + 30 * sec, &t),
            Some(Reason::Timeout)
        );
        let two_way = FlowStats {
            pkts: [1, 1],
            ..one_way
        };
        assert_eq!(expiry(&k, &two_way, sec + 299 * sec, &t), None);
        assert_eq!(
            expiry(&k, &two_way, sec + 300 * sec, &t),
            Some(Reason::Timeout)
        );
        let busy = FlowStats {
            last_ns: 3600 * sec,
            ..two_way
        };
        assert_eq!(expiry(&k, &busy, 3601 * sec, &t), Some(Reason::Forced));
    }

    #[test]
    fn a_half_closed_connection_is_established_until_both_sides_close() {
        let k = key_v4([1, 1, 1, 1], 40000, [2, 2, 2, 2], 389, ipproto::TCP);
        let t = Timeouts::default();
        let sec = 1_000_000_000u64;
        let s = |ts: u8, tc: u8| FlowStats {
            pkts: [3, 2],
            tcp_flags: [ts, tc],
            first_ns: sec,
            last_ns: sec,
            ..Default::default()
        };
        let (syn, ack, fin, rst) = (tcp::SYN, tcp::ACK, tcp::FIN, tcp::RST);
        assert_eq!(state(&k, &s(syn | ack, syn | ack)), "established");
        // The client sent its FIN, the server never answered with one.
        let half = s(syn | ack | fin, syn | ack);
        assert_eq!(state(&k, &half), "established");
        assert_eq!(state(&k, &s(syn | ack | fin, syn | ack | fin)), "closed");
        assert_eq!(state(&k, &s(syn | ack, syn | ack | rst)), "closed");
        // Expiry still treats the half-closed connection as closing.
        let closing_at = sec + t.tcp_closed_secs * sec;
        assert_eq!(expiry(&k, &half, closing_at, &t), Some(Reason::Timeout));
        assert_eq!(expiry(&k, &half, closing_at - 1, &t), None);
    }

    #[test]
    fn flow_ids_differ_by_start_and_fit_in_a_double() {
        let k = key_v4([1, 1, 1, 1], 1, [2, 2, 2, 2], 2, ipproto::TCP);
        assert_ne!(flow_id(&k, 1), flow_id(&k, 2));
        assert!(flow_id(&k, 1) < (1 << 51));
    }
}
