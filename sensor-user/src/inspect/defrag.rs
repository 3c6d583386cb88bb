//! IPv4 and IPv6 fragment reassembly for the inspection pipeline. Fragments of a datagram are
//! held (by source, destination, protocol and identification) until the datagram is complete,
//! then rebuilt as one IP packet that the pipeline inspects like any other. Limits bound what
//! an attacker can make it hold: bytes per datagram, fragments per datagram, datagrams and
//! bytes in all, and a timeout. Overlapping fragments keep the bytes that arrived first.
//!
//! Cost is linear in the fragments seen, whatever an attacker sends: datagrams wait in a queue
//! by arrival, so expiry and eviction look only at the oldest; each datagram keeps the byte
//! ranges it covers merged, so completion is known without rebuilding it; a fragment costs
//! at most `max_fragments` steps of its own datagram. When the table or the memory cap is
//! full, the oldest datagram gives way to the new one (counted as evicted): a flood of
//! unfinished datagrams pushes out its own, and a datagram whose fragments arrive together
//! is still rebuilt.

use std::collections::{HashMap, VecDeque};

use sensor_common::parse::{Parsed, FAMILY_IPV4};

/// Limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragLimits {
    /// Datagrams being reassembled at once.
    pub max_datagrams: usize,
    /// Fragments of one datagram.
    pub max_fragments: usize,
    /// Bytes held for all datagrams.
    pub memcap: usize,
    /// A datagram not complete within this many ns of its first fragment is dropped.
    pub timeout_ns: u64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_datagrams: 65_536,
            max_fragments: 256,
            memcap: 32 << 20,
            timeout_ns: 60_000_000_000,
        }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments seen.
    pub fragments: u64,
    /// Datagrams rebuilt.
    pub reassembled: u64,
    /// Datagrams given up (the sum of the reasons below).
    pub dropped: u64,
    /// … not complete within the timeout.
    pub timed_out: u64,
    /// … pushed out, oldest first, to make room for a new one (`max_datagrams` or `memcap`).
    pub evicted: u64,
    /// … with more than `max_fragments` fragments, or longer than 65,535 bytes.
    pub refused: u64,
    /// Fragments that overlapped bytes already held.
    pub overlaps: u64,
    /// Datagrams held now.
    pub held_datagrams: u64,
    /// Bytes held now.
    pub held_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    proto: u8,
    family: u8,
}

#[derive(Debug)]
struct Datagram {
    /// Its place in the arrival queue (a key reused after eviction gets a new one).
    seq: u64,
    /// The byte ranges held, merged and in order.
    covered: Vec<(usize, usize)>,
    /// The IP header (IPv4 with options, or the IPv6 header and its unfragmentable part) of
    /// the fragment at offset 0, once seen.
    header: Option<Vec<u8>>,
    /// Data by offset.
    parts: Vec<(usize, Vec<u8>)>,
    /// Length of the whole payload, known once the last fragment arrived.
    total: Option<usize>,
    bytes: usize,
}

/// What a fragment tells about itself, read from the packet.
struct FragInfo {
    key: Key,
    offset: usize,
    more: bool,
    /// Where the IP header starts and where the fragment's data starts, in the frame.
    header: (usize, usize),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

fn info(p: &Parsed, frame: &[u8]) -> Option<FragInfo> {
    let l3 = p.l3_off as usize;
    let data = p.l4_off as usize;
    let (id, offset, more) = if p.family == FAMILY_IPV4 {
        let id = u32::from(be16(frame, l3 + 4)?);
        let field = be16(frame, l3 + 6)?;
        (id, usize::from(field & 0x1fff) * 8, field & 0x2000 != 0)
    } else {
        // The fragment header is the 8 bytes before the fragment's data.
        let fh = data.checked_sub(8)?;
        let field = be16(frame, fh + 2)?;
        let id = frame
            .get(fh + 4..fh + 8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))?;
        (id, usize::from(field & 0xfff8), field & 1 != 0)
    };
    Some(FragInfo {
        key: Key {
            src: p.src,
            dst: p.dst,
            id,
            proto: p.proto,
            family: p.family,
        },
        offset,
        more,
        header: (l3, data),
    })
}

/// Reassembly state.
#[derive(Debug, Default)]
pub struct Defrag {
    limits: DefragLimits,
    datagrams: HashMap<Key, Datagram>,
    /// Datagrams by arrival: (first fragment's time, sequence, key). An entry whose datagram
    /// was completed or dropped since is skipped when it reaches the front.
    order: VecDeque<(u64, u64, Key)>,
    next_seq: u64,
    held: usize,
    /// Counters.
    pub stats: DefragStats,
}

impl Defrag {
    /// Reassembly within `limits`.
    pub fn new(limits: DefragLimits) -> Defrag {
        Defrag {
            limits,
            ..Defrag::default()
        }
    }

    /// Takes one fragment (`p` parsed from `frame`, its `fragment` not `None`). Returns the
    /// rebuilt IP packet (from its IP header) when this fragment completed the datagram.
    pub fn fragment(&mut self, p: &Parsed, frame: &[u8], now_ns: u64) -> Option<Vec<u8>> {
        self.stats.fragments += 1;
        self.expire(now_ns);
        let f = info(p, frame)?;
        let end = (p.ip_end as usize).min(frame.len());
        let data = frame.get(f.header.1..end)?;
        let end_off = f.offset + data.len();
        if end_off > 65_535 || data.len() > self.limits.memcap {
            self.refuse(&f.key);
            return None;
        }
        if !self.datagrams.contains_key(&f.key) {
            while self.datagrams.len() >= self.limits.max_datagrams.max(1) {
                if !self.evict_oldest_but(None) {
                    break;
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.order.push_back((now_ns, seq, f.key));
            self.datagrams.insert(
                f.key,
                Datagram {
                    seq,
                    covered: Vec::new(),
                    header: None,
                    parts: Vec::new(),
                    total: None,
                    bytes: 0,
                },
            );
        }
        if self
            .datagrams
            .get(&f.key)
            .is_some_and(|d| d.parts.len() >= self.limits.max_fragments)
        {
            self.refuse(&f.key);
            return None;
        }
        // Room for the bytes: older datagrams give way (never this one).
        while self.held + data.len() > self.limits.memcap {
            if !self.evict_oldest_but(Some(&f.key)) {
                self.refuse(&f.key);
                return None;
            }
        }
        let d = self.datagrams.get_mut(&f.key)?;
        if f.offset == 0 && d.header.is_none() {
            d.header = frame.get(f.header.0..f.header.1).map(|h| h.to_vec());
        }
        if !f.more {
            d.total = Some(end_off);
        }
        if cover(&mut d.covered, f.offset, end_off) {
            self.stats.overlaps += 1;
        }
        self.held += data.len();
        d.bytes += data.len();
        d.parts.push((f.offset, data.to_vec()));
        let whole = d.header.is_some()
            && d.total
                .is_some_and(|t| d.covered.first() == Some(&(0, t)) && d.covered.len() == 1);
        let result = if whole {
            let d = self.datagrams.remove(&f.key)?;
            self.held -= d.bytes;
            self.stats.reassembled += 1;
            complete(&d).map(|payload| rebuild(&d, payload, p.family))
        } else {
            None
        };
        self.gauges();
        result
    }

    /// Drops the datagram of `key` (if held) for a limit of its own.
    fn refuse(&mut self, key: &Key) {
        if let Some(d) = self.datagrams.remove(key) {
            self.held -= d.bytes;
        }
        self.stats.dropped += 1;
        self.stats.refused += 1;
        self.gauges();
    }

    /// Evicts the oldest datagram still held other than `keep`; `false` when there is none.
    fn evict_oldest_but(&mut self, keep: Option<&Key>) -> bool {
        let mut skipped = None;
        let mut evicted = false;
        while let Some((ts, seq, key)) = self.order.pop_front() {
            if !self.live(&key, seq) {
                continue;
            }
            if keep == Some(&key) {
                skipped = Some((ts, seq, key));
                continue;
            }
            if let Some(d) = self.datagrams.remove(&key) {
                self.held -= d.bytes;
            }
            self.stats.dropped += 1;
            self.stats.evicted += 1;
            evicted = true;
            break;
        }
        if let Some(entry) = skipped {
            self.order.push_front(entry);
        }
        evicted
    }

    /// Whether the queue entry `(key, seq)` still stands for a held datagram.
    fn live(&self, key: &Key, seq: u64) -> bool {
        self.datagrams.get(key).is_some_and(|d| d.seq == seq)
    }

    fn expire(&mut self, now_ns: u64) {
        let timeout = self.limits.timeout_ns;
        while let Some(&(first, seq, key)) = self.order.front() {
            if !self.live(&key, seq) {
                self.order.pop_front();
                continue;
            }
            // Arrival order is time order, except where capture time steps back: then the
            // front waits a little longer, which costs nothing.
            if now_ns.saturating_sub(first) < timeout {
                break;
            }
            self.order.pop_front();
            if let Some(d) = self.datagrams.remove(&key) {
                self.held -= d.bytes;
            }
            self.stats.dropped += 1;
            self.stats.timed_out += 1;
        }
        // Completed datagrams leave stale entries behind the front; keep the queue from
        // growing past what the table holds.
        if self.order.len() > 2 * self.datagrams.len() + 64 {
            let datagrams = &self.datagrams;
            self.order
                .retain(|(_, seq, key)| datagrams.get(key).is_some_and(|d| d.seq == *seq));
        }
        self.gauges();
    }

    fn gauges(&mut self) {
        self.stats.held_datagrams = self.datagrams.len() as u64;
        self.stats.held_bytes = self.held as u64;
    }
}

/// Adds `[start, end)` to the merged ranges `covered`; `true` when it overlapped bytes
/// already covered.
fn cover(covered: &mut Vec<(usize, usize)>, start: usize, end: usize) -> bool {
    if start >= end {
        return false;
    }
    let mut overlap = false;
    let (mut lo, mut hi) = (start, end);
    let mut i = 0;
    let mut out = Vec::with_capacity(covered.len() + 1);
    let mut placed = false;
    while i < covered.len() {
        let (a, b) = covered[i];
        if b < lo {
            out.push((a, b));
        } else if a > hi {
            if !placed {
                out.push((lo, hi));
                placed = true;
            }
            out.push((a, b));
        } else {
            // Touching or overlapping: merge.
            if a < hi && lo < b {
                overlap = true;
            }
            lo = lo.min(a);
            hi = hi.max(b);
        }
        i += 1;
    }
    if !placed {
        out.push((lo, hi));
    }
    *covered = out;
    overlap
}

/// The payload, in order, when every byte up to the total is present and the header is known.
fn complete(d: &Datagram) -> Option<Vec<u8>> {
    let total = d.total?;
    d.header.as_ref()?;
    // Parts are applied in arrival order, so in an overlap the earliest bytes win.
    let mut out = vec![0u8; total];
    let mut filled = vec![false; total];
    for (off, bytes) in d.parts.iter() {
        for (i, b) in bytes.iter().enumerate() {
            let at = off + i;
            if at < total && !filled[at] {
                out[at] = *b;
                filled[at] = true;
            }
        }
    }
    filled.iter().all(|f| *f).then_some(out)
}

fn rebuild(d: &Datagram, payload: Vec<u8>, family: u8) -> Vec<u8> {
    let mut h = d.header.clone().unwrap_or_default();
    if family == FAMILY_IPV4 {
        let total = (h.len() + payload.len()) as u16;
        if h.len() >= 20 {
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[6] = 0;
            h[7] = 0;
            h[10] = 0;
            h[11] = 0;
        }
    } else if h.len() >= 48 {
        // Drop the fragment header (the last 8 bytes of the first fragment's headers): its
        // next-header value goes into the header before it.
        let fh = h.len() - 8;
        let next = h[fh];
        h.truncate(fh);
        set_last_next_header(&mut h, next);
        let plen = (h.len() - 40 + payload.len()) as u16;
        h[4..6].copy_from_slice(&plen.to_be_bytes());
    }
    h.extend_from_slice(&payload);
    h
}

/// Sets the next-header field of the last header in an IPv6 header chain (the fixed header
/// when there are no extension headers).
fn set_last_next_header(h: &mut [u8], next: u8) {
    let mut nh_at = 6;
    let mut off = 40;
    while off + 2 <= h.len() {
        nh_at = off;
        off += (usize::from(h[off + 1]) + 1) * 8;
    }
    if let Some(b) = h.get_mut(nh_at) {
        *b = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::parse::{ethertype, parse_l3, Fragment, Outcome};

    fn v4_fragment(id: u16, offset: usize, more: bool, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let field = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
        let mut h = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&id.to_be_bytes());
        h[6..8].copy_from_slice(&field.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    fn parse_ip(b: &[u8]) -> Parsed {
        let mut p = Parsed::default();
        parse_l3(
            b,
            0,
            if b[0] >> 4 == 4 {
                ethertype::IPV4
            } else {
                ethertype::IPV6
            },
            &mut p,
        );
        p
    }

    fn udp_datagram(len: usize) -> Vec<u8> {
        let mut u = vec![0x13, 0x88, 0, 53];
        u.extend_from_slice(&((8 + len) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend((0..len).map(|i| i as u8));
        u
    }

    #[test]
    fn ipv4_in_any_order_with_overlap() {
        let dgram = udp_datagram(40);
        let frags = [
            v4_fragment(7, 16, true, &dgram[16..32]),
            v4_fragment(7, 0, true, &dgram[0..24]),
            v4_fragment(7, 32, false, &dgram[32..]),
        ];
        let mut d = Defrag::new(DefragLimits::default());
        let mut out = None;
        for (i, f) in frags.iter().enumerate() {
            let p = parse_ip(f);
            assert_ne!(p.fragment, Fragment::None);
            let r = d.fragment(&p, f, 1_000 + i as u64);
            assert_eq!(r.is_some(), i == 2);
            out = r.or(out);
        }
        let whole = out.expect("rebuilt");
        let p = parse_ip(&whole);
        assert_eq!(
            (p.outcome, p.fragment, p.proto, p.sport, p.dport),
            (Outcome::Ok, Fragment::None, 17, 5000, 53)
        );
        assert_eq!(&whole[20..], dgram.as_slice());
        assert_eq!(
            d.stats,
            DefragStats {
                fragments: 3,
                reassembled: 1,
                overlaps: 1,
                ..DefragStats::default()
            }
        );
    }

    #[test]
    fn ranges_merge_and_report_overlap() {
        let mut c = Vec::new();
        assert!(!cover(&mut c, 16, 24));
        assert!(!cover(&mut c, 0, 8));
        assert_eq!(c, [(0, 8), (16, 24)]);
        assert!(!cover(&mut c, 8, 16), "touching is not overlapping");
        assert_eq!(c, [(0, 24)]);
        assert!(cover(&mut c, 20, 40));
        assert_eq!(c, [(0, 40)]);
        assert!(!cover(&mut c, 50, 50), "empty");
        assert_eq!(c, [(0, 40)]);
    }

    #[test]
    fn a_flood_of_unfinished_datagrams_gives_way_to_new_ones() {
        let dgram = udp_datagram(40);
        let mut d = Defrag::new(DefragLimits {
            max_datagrams: 100,
            ..DefragLimits::default()
        });
        for id in 0..1000u16 {
            let f = v4_fragment(id, 0, true, &dgram[..24]);
            assert!(d.fragment(&parse_ip(&f), &f, u64::from(id)).is_none());
        }
        assert_eq!((d.stats.held_datagrams, d.stats.evicted), (100, 900));
        // A datagram sent after the flood is still rebuilt: the oldest flood datagram gives
        // way to it.
        let a = v4_fragment(5000, 0, true, &dgram[..24]);
        let b = v4_fragment(5000, 24, false, &dgram[24..]);
        assert!(d.fragment(&parse_ip(&a), &a, 2000).is_none());
        let whole = d
            .fragment(&parse_ip(&b), &b, 2001)
            .expect("rebuilt after the flood");
        assert_eq!(&whole[20..], dgram.as_slice());
        assert_eq!(d.stats.evicted, 901);
        assert_eq!(d.stats.held_datagrams, 99);
        assert_eq!(d.stats.dropped, d.stats.evicted);
        // The queue of arrivals stays bounded by what the table holds.
        assert!(d.order.len() <= 2 * d.datagrams.len() + 64 + 1);
    }

    #[test]
    fn the_memory_cap_evicts_the_oldest_first() {
        let dgram = udp_datagram(120);
        let mut d = Defrag::new(DefragLimits {
            memcap: 1000,
            ..DefragLimits::default()
        });
        for id in 0..20u16 {
            let f = v4_fragment(id, 0, true, &dgram[..96]);
            d.fragment(&parse_ip(&f), &f, u64::from(id));
            assert!(d.held <= 1000);
        }
        assert_eq!(d.stats.held_bytes, 10 * 96);
        assert_eq!(d.stats.evicted, 10);
        // The survivors are the newest: id 19 completes.
        let last = v4_fragment(19, 96, false, &dgram[96..]);
        assert!(d.fragment(&parse_ip(&last), &last, 30).is_some());
        // One fragment larger than the cap is refused, and evicts nothing.
        let big = udp_datagram(1200);
        let f = v4_fragment(77, 0, true, &big[..1096]);
        let evicted = d.stats.evicted;
        assert!(d.fragment(&parse_ip(&f), &f, 31).is_none());
        assert_eq!((d.stats.evicted, d.stats.refused), (evicted, 1));
    }

    #[test]
    fn ipv6_fragments_lose_their_header() {
        let dgram = udp_datagram(30);
        let mk = |offset: usize, more: bool, payload: &[u8]| {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            h.push(44);
            h.push(64);
            h.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            h.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            let field = (offset as u16) | u16::from(more);
            h.extend_from_slice(&[17, 0]);
            h.extend_from_slice(&field.to_be_bytes());
            h.extend_from_slice(&9u32.to_be_bytes());
            h.extend_from_slice(payload);
            h
        };
        let mut d = Defrag::new(DefragLimits::default());
        let a = mk(0, true, &dgram[..24]);
        let b = mk(24, false, &dgram[24..]);
        assert!(d.fragment(&parse_ip(&a), &a, 1).is_none());
        let whole = d.fragment(&parse_ip(&b), &b, 2).expect("rebuilt");
        let p = parse_ip(&whole);
        assert_eq!(
            (p.outcome, p.fragment, p.proto, p.dport),
            (Outcome::Ok, Fragment::None, 17, 53)
        );
        assert_eq!(whole.len(), 40 + dgram.len());
    }

    #[test]
    fn limits_and_timeouts_drop_datagrams() {
        let dgram = udp_datagram(40);
        let limits = DefragLimits {
            timeout_ns: 10,
            ..DefragLimits::default()
        };
        let mut d = Defrag::new(limits);
        let first = v4_fragment(1, 0, true, &dgram[..24]);
        assert!(d.fragment(&parse_ip(&first), &first, 0).is_none());
        let last = v4_fragment(1, 24, false, &dgram[24..]);
        assert!(
            d.fragment(&parse_ip(&last), &last, 100).is_none(),
            "the first fragment timed out"
        );
        assert_eq!(d.stats.dropped, 1);
        // Beyond 65,535 bytes is refused.
        let huge = v4_fragment(2, 65_528, false, &[0u8; 16]);
        assert!(d.fragment(&parse_ip(&huge), &huge, 200).is_none());
        assert_eq!(
            d.stats.dropped, 3,
            "the unfinished datagram 1 (at its timeout) and the oversized one"
        );
        let mut small = Defrag::new(DefragLimits {
            max_fragments: 2,
            ..DefragLimits::default()
        });
        for (i, off) in [0usize, 8, 16].iter().enumerate() {
            let f = v4_fragment(3, *off, true, &dgram[*off..off + 8]);
            small.fragment(&parse_ip(&f), &f, i as u64);
        }
        assert_eq!((small.stats.dropped, small.stats.refused), (1, 1));
        assert_eq!(small.held, 0, "a dropped datagram frees what it held");
    }
}
