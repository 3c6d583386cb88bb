//! TCP stream reassembly for one direction of one connection: delivers the payload in
//! sequence order, once, whatever order the segments arrived in. Retransmissions are dropped,
//! overlaps keep the bytes seen first, out-of-order segments wait (within a per-direction
//! memory cap and a global one), and a hole that cannot be filled becomes a gap the parser is
//! told about. Delivery stops at the configured depth.

use std::collections::BTreeMap;

pub use crate::applayer::Chunk;

/// Limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Bytes per direction delivered to the application layer (0: unlimited).
    pub depth: u64,
    /// Out-of-order bytes one direction may hold.
    pub direction_memcap: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        // Suricata's stream.reassembly.depth default; the cap bounds a hostile sender.
        StreamLimits {
            depth: 1 << 20,
            direction_memcap: 1 << 20,
        }
    }
}

/// Counters worth exporting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Segments entirely before the next expected byte.
    pub retransmissions: u64,
    /// Segments that started before the next expected byte but carried new bytes.
    pub overlaps: u64,
    /// Segments held back because they arrived early.
    pub out_of_order: u64,
    /// Gaps declared.
    pub gaps: u64,
}

/// What all streams share: limits, counters and the out-of-order memory held by all of them,
/// kept within `memcap` by declaring gaps.
#[derive(Clone, Debug)]
pub struct Reassembly {
    /// Per-direction limits.
    pub limits: StreamLimits,
    /// Out-of-order bytes all streams together may hold.
    pub memcap: usize,
    /// Out-of-order bytes held now.
    pub pending: usize,
    /// Counters.
    pub stats: StreamStats,
    /// A segment's in-order chunks on their way to the session, kept to reuse its
    /// allocation (one per segment otherwise).
    pub(super) scratch: Vec<Chunk>,
}

impl Reassembly {
    /// Shared state with these limits and nothing held.
    pub fn new(limits: StreamLimits, memcap: usize) -> Reassembly {
        Reassembly {
            limits,
            memcap,
            pending: 0,
            stats: StreamStats::default(),
            scratch: Vec::new(),
        }
    }
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct HalfStream {
    /// Sequence number of the first payload byte (offset 0), once known.
    base: Option<u32>,
    /// Offset of the next byte to deliver.
    next: u64,
    /// Early segments by offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    depth_reached: bool,
}

impl HalfStream {
    /// `true` once the stream's starting sequence number is known.
    pub fn started(&self) -> bool {
        self.base.is_some()
    }

    /// Declares where the stream starts: `seq` is the number of its first payload byte
    /// (ISN + 1 after a SYN, or the first segment seen when picking up mid-stream).
    pub fn start(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base = Some(seq);
        }
    }

    /// The stream offset of sequence number `seq` (for acknowledgement numbers), when the
    /// stream has started and `seq` is not before its start.
    pub fn offset_of(&self, seq: u32) -> Option<u64> {
        let rel = seq.wrapping_sub(self.base?);
        (rel <= 1 << 31).then_some(u64::from(rel))
    }

    /// Out-of-order bytes held now.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Bytes delivered so far (including gaps).
    pub fn delivered(&self) -> u64 {
        self.next
    }

    /// Adds a segment's payload starting at sequence number `seq`; pushes what became
    /// deliverable onto `out`.
    pub fn segment(&mut self, seq: u32, payload: &[u8], r: &mut Reassembly, out: &mut Vec<Chunk>) {
        let Some(base) = self.base else { return };
        if payload.is_empty() || self.depth_reached {
            return;
        }
        // Offsets more than 2^31 behind the base are old data from before the stream started.
        let rel = seq.wrapping_sub(base);
        if rel > 1 << 31 {
            r.stats.retransmissions += 1;
            return;
        }
        let mut start = u64::from(rel);
        let mut data = payload;
        let end = start + data.len() as u64;
        if end <= self.next {
            r.stats.retransmissions += 1;
            return;
        }
        if start < self.next {
            r.stats.overlaps += 1;
            data = &data[(self.next - start) as usize..];
            start = self.next;
        }
        if start > self.next {
            r.stats.out_of_order += 1;
            self.hold(start, data, r);
            if self.pending_bytes > r.limits.direction_memcap || r.pending > r.memcap {
                self.skip_to_first_pending(r, out);
                self.drain(r, out);
            }
            return;
        }
        self.deliver(data, &r.limits, out);
        self.drain(r, out);
    }

    /// Everything still held is delivered after declaring the holes as gaps: the connection
    /// ended, or the flow is being flushed.
    pub fn flush(&mut self, r: &mut Reassembly, out: &mut Vec<Chunk>) {
        while !self.pending.is_empty() && !self.depth_reached {
            self.skip_to_first_pending(r, out);
            self.drain(r, out);
        }
        r.pending -= self.pending_bytes;
        self.pending.clear();
        self.pending_bytes = 0;
    }

    fn hold(&mut self, start: u64, data: &[u8], r: &mut Reassembly) {
        // First bytes win: keep an existing segment at the same offset if it is longer.
        if let Some(existing) = self.pending.get(&start) {
            if existing.len() >= data.len() {
                return;
            }
            self.pending_bytes -= existing.len();
            r.pending -= existing.len();
        }
        self.pending_bytes += data.len();
        r.pending += data.len();
        self.pending.insert(start, data.to_vec());
    }

    fn skip_to_first_pending(&mut self, r: &mut Reassembly, out: &mut Vec<Chunk>) {
        if let Some((&first, _)) = self.pending.first_key_value() {
            if first > self.next {
                r.stats.gaps += 1;
                out.push(Chunk::Gap(first - self.next));
                self.next = first;
            }
        }
    }

    fn drain(&mut self, r: &mut Reassembly, out: &mut Vec<Chunk>) {
        while let Some((&start, _)) = self.pending.first_key_value() {
            if start > self.next {
                break;
            }
            let Some((_, data)) = self.pending.pop_first() else {
                break;
            };
            self.pending_bytes -= data.len();
            r.pending -= data.len();
            let end = start + data.len() as u64;
            if end > self.next {
                let from = (self.next - start) as usize;
                self.deliver(&data[from..], &r.limits, out);
            }
        }
    }

    fn deliver(&mut self, data: &[u8], limits: &StreamLimits, out: &mut Vec<Chunk>) {
        let mut data = data;
        if limits.depth > 0 {
            let room = limits.depth.saturating_sub(self.next);
            if (data.len() as u64) >= room {
                data = &data[..room as usize];
                self.depth_reached = true;
            }
        }
        if data.is_empty() {
            return;
        }
        self.next += data.len() as u64;
        match out.last_mut() {
            Some(Chunk::Data(prev)) => prev.extend_from_slice(data),
            _ => out.push(Chunk::Data(data.to_vec())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Reassembly {
        Reassembly::new(StreamLimits::default(), usize::MAX)
    }

    fn feed(h: &mut HalfStream, r: &mut Reassembly, segs: &[(u32, &[u8])]) -> Vec<Chunk> {
        let mut out = Vec::new();
        for (seq, data) in segs {
            h.segment(*seq, data, r, &mut out);
        }
        out
    }

    fn bytes(chunks: &[Chunk]) -> Vec<u8> {
        chunks
            .iter()
            .flat_map(|c| match c {
                Chunk::Data(d) => d.clone(),
                Chunk::Gap(_) => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn in_order_and_out_of_order_give_the_same_bytes() {
        let mut r = shared();
        let mut a = HalfStream::default();
        a.start(1000);
        let out = feed(
            &mut a,
            &mut r,
            &[(1000, b"hello "), (1006, b"wor"), (1009, b"ld")],
        );
        assert_eq!(bytes(&out), b"hello world");
        let mut b = HalfStream::default();
        b.start(1000);
        let out = feed(
            &mut b,
            &mut r,
            &[(1009, b"ld"), (1006, b"wor"), (1000, b"hello ")],
        );
        assert_eq!(bytes(&out), b"hello world");
        assert_eq!(r.stats.out_of_order, 2);
        assert_eq!(r.pending, 0, "nothing left held");
    }

    #[test]
    fn retransmissions_and_overlaps_deliver_each_byte_once() {
        let mut r = shared();
        let mut h = HalfStream::default();
        h.start(1);
        let out = feed(
            &mut h,
            &mut r,
            &[(1, b"abcd"), (1, b"abcd"), (3, b"cdef"), (2, b"XX")],
        );
        assert_eq!(bytes(&out), b"abcdef");
        assert_eq!(r.stats.retransmissions, 2);
        assert_eq!(r.stats.overlaps, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = shared();
        let mut h = HalfStream::default();
        h.start(u32::MAX - 2);
        let out = feed(&mut h, &mut r, &[(u32::MAX - 2, b"abc"), (0, b"def")]);
        assert_eq!(bytes(&out), b"abcdef");
    }

    #[test]
    fn holes_become_gaps_on_flush_and_when_over_the_cap() {
        let mut r = shared();
        let mut h = HalfStream::default();
        h.start(0);
        let mut out = feed(&mut h, &mut r, &[(0, b"ab"), (5, b"fg")]);
        assert_eq!(r.pending, 2);
        h.flush(&mut r, &mut out);
        assert_eq!(
            out,
            vec![
                Chunk::Data(b"ab".to_vec()),
                Chunk::Gap(3),
                Chunk::Data(b"fg".to_vec())
            ]
        );
        assert_eq!(r.pending, 0);

        let mut r = Reassembly::new(
            StreamLimits {
                depth: 0,
                direction_memcap: 4,
            },
            usize::MAX,
        );
        let mut h = HalfStream::default();
        h.start(0);
        let mut out = Vec::new();
        h.segment(10, b"xyz", &mut r, &mut out);
        assert!(out.is_empty());
        h.segment(20, b"12", &mut r, &mut out);
        assert_eq!(
            out,
            vec![Chunk::Gap(10), Chunk::Data(b"xyz".to_vec())],
            "cap exceeded: skip the hole"
        );
        assert_eq!(h.pending_bytes(), 2);
        assert_eq!(r.pending, 2);
    }

    #[test]
    fn global_memcap_forces_gaps_too() {
        let mut r = Reassembly::new(StreamLimits::default(), 3);
        let mut h = HalfStream::default();
        h.start(0);
        let mut out = Vec::new();
        h.segment(5, b"ab", &mut r, &mut out);
        assert!(out.is_empty());
        h.segment(9, b"cd", &mut r, &mut out);
        assert_eq!(out, vec![Chunk::Gap(5), Chunk::Data(b"ab".to_vec())]);
    }

    #[test]
    fn depth_stops_delivery() {
        let mut r = Reassembly::new(
            StreamLimits {
                depth: 5,
                direction_memcap: 1 << 20,
            },
            usize::MAX,
        );
        let mut h = HalfStream::default();
        h.start(0);
        let out = feed(&mut h, &mut r, &[(0, b"abc"), (3, b"defgh"), (8, b"ijk")]);
        assert_eq!(bytes(&out), b"abcde");
    }

    #[test]
    fn nothing_before_the_start_is_known() {
        let mut r = shared();
        let mut h = HalfStream::default();
        let out = feed(&mut h, &mut r, &[(5, b"data")]);
        assert!(out.is_empty());
        h.start(100);
        let out = feed(&mut h, &mut r, &[(50, b"old"), (100, b"new")]);
        assert_eq!(bytes(&out), b"new");
        assert_eq!(r.stats.retransmissions, 1);
    }
}
