//! TCP stream reassembly for one direction of one connection: delivers the payload in
//! sequence order, once, whatever order the segments arrived in. Retransmissions are dropped,
//! overlaps keep the bytes seen first, out-of-order segments wait (within a per-direction
//! memory cap and a global one), and a hole that cannot be filled becomes a gap the parser is
//! told about. Delivery stops at the configured depth.

use std::collections::BTreeMap;

/// What reassembly hands to the application layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// The next in-order bytes.
    Data(Vec<u8>),
    /// This many bytes were never seen; data after them follows.
    Gap(u64),
}

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

    /// Out-of-order bytes held now.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Bytes delivered so far (including gaps).
    pub fn delivered(&self) -> u64 {
        self.next
    }

    /// Adds a segment's payload starting at sequence number `seq`; pushes what became
    /// deliverable onto `out`. `global_pending` is the reassembly memory of all streams,
    /// kept within `global_cap` by declaring gaps.
    pub fn segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        limits: &StreamLimits,
        stats: &mut StreamStats,
        global_pending: &mut usize,
        global_cap: usize,
        out: &mut Vec<Chunk>,
    ) {
        let Some(base) = self.base else { return };
        if payload.is_empty() || self.depth_reached {
            return;
        }
        // Offsets more than 2^31 behind the base are old data from before the stream started.
        let rel = seq.wrapping_sub(base);
        if rel > 1 << 31 {
            stats.retransmissions += 1;
            return;
        }
        let mut start = u64::from(rel);
        let mut data = payload;
        let end = start + data.len() as u64;
        if end <= self.next {
            stats.retransmissions += 1;
            return;
        }
        if start < self.next {
            stats.overlaps += 1;
            data = &data[(self.next - start) as usize..];
            start = self.next;
        }
        if start > self.next {
            stats.out_of_order += 1;
            self.hold(start, data, global_pending);
            let over_direction = self.pending_bytes > limits.direction_memcap;
            if over_direction || *global_pending > global_cap {
                self.skip_to_first_pending(stats, out);
                self.drain(limits, global_pending, out);
            }
            return;
        }
        self.deliver(data, limits, out);
        self.drain(limits, global_pending, out);
    }

    /// Everything still held is delivered after declaring the holes as gaps: the connection
    /// ended, or the flow is being flushed.
    pub fn flush(
        &mut self,
        limits: &StreamLimits,
        stats: &mut StreamStats,
        global_pending: &mut usize,
        out: &mut Vec<Chunk>,
    ) {
        while !self.pending.is_empty() && !self.depth_reached {
            self.skip_to_first_pending(stats, out);
            self.drain(limits, global_pending, out);
        }
        *global_pending -= self.pending_bytes;
        self.pending.clear();
        self.pending_bytes = 0;
    }

    fn hold(&mut self, start: u64, data: &[u8], global_pending: &mut usize) {
        // First bytes win: keep an existing segment at the same offset if it is longer.
        if let Some(existing) = self.pending.get(&start) {
            if existing.len() >= data.len() {
                return;
            }
            self.pending_bytes -= existing.len();
            *global_pending -= existing.len();
        }
        self.pending_bytes += data.len();
        *global_pending += data.len();
        self.pending.insert(start, data.to_vec());
    }

    fn skip_to_first_pending(&mut self, stats: &mut StreamStats, out: &mut Vec<Chunk>) {
        if let Some((&first, _)) = self.pending.first_key_value() {
            if first > self.next {
                stats.gaps += 1;
                out.push(Chunk::Gap(first - self.next));
                self.next = first;
            }
        }
    }

    fn drain(&mut self, limits: &StreamLimits, global_pending: &mut usize, out: &mut Vec<Chunk>) {
        while let Some((&start, _)) = self.pending.first_key_value() {
            if start > self.next {
                break;
            }
            let Some((_, data)) = self.pending.pop_first() else {
                break;
            };
            self.pending_bytes -= data.len();
            *global_pending -= data.len();
            let end = start + data.len() as u64;
            if end > self.next {
                let from = (self.next - start) as usize;
                self.deliver(&data[from..], limits, out);
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

    fn feed(h: &mut HalfStream, segs: &[(u32, &[u8])]) -> (Vec<Chunk>, StreamStats, usize) {
        let limits = StreamLimits::default();
        let mut stats = StreamStats::default();
        let mut global = 0usize;
        let mut out = Vec::new();
        for (seq, data) in segs {
            h.segment(
                *seq,
                data,
                &limits,
                &mut stats,
                &mut global,
                usize::MAX,
                &mut out,
            );
        }
        (out, stats, global)
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
        let mut a = HalfStream::default();
        a.start(1000);
        let (out, _, _) = feed(&mut a, &[(1000, b"hello "), (1006, b"wor"), (1009, b"ld")]);
        assert_eq!(bytes(&out), b"hello world");
        let mut b = HalfStream::default();
        b.start(1000);
        let (out, stats, global) =
            feed(&mut b, &[(1009, b"ld"), (1006, b"wor"), (1000, b"hello ")]);
        assert_eq!(bytes(&out), b"hello world");
        assert_eq!(stats.out_of_order, 2);
        assert_eq!(global, 0, "nothing left held");
    }

    #[test]
    fn retransmissions_and_overlaps_deliver_each_byte_once() {
        let mut h = HalfStream::default();
        h.start(1);
        let (out, stats, _) = feed(
            &mut h,
            &[(1, b"abcd"), (1, b"abcd"), (3, b"cdef"), (2, b"XX")],
        );
        assert_eq!(bytes(&out), b"abcdef");
        assert_eq!(stats.retransmissions, 2);
        assert_eq!(stats.overlaps, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut h = HalfStream::default();
        h.start(u32::MAX - 2);
        let (out, _, _) = feed(&mut h, &[(u32::MAX - 2, b"abc"), (0, b"def")]);
        assert_eq!(bytes(&out), b"abcdef");
    }

    #[test]
    fn holes_become_gaps_on_flush_and_when_over_the_cap() {
        let mut h = HalfStream::default();
        h.start(0);
        let (mut out, mut stats, mut global) = feed(&mut h, &[(0, b"ab"), (5, b"fg")]);
        assert_eq!(global, 2);
        h.flush(&StreamLimits::default(), &mut stats, &mut global, &mut out);
        assert_eq!(
            out,
            vec![
                Chunk::Data(b"ab".to_vec()),
                Chunk::Gap(3),
                Chunk::Data(b"fg".to_vec())
            ]
        );
        assert_eq!(global, 0);

        let mut h = HalfStream::default();
        h.start(0);
        let limits = StreamLimits {
            depth: 0,
            direction_memcap: 4,
        };
        let mut stats = StreamStats::default();
        let mut global = 0;
        let mut out = Vec::new();
        h.segment(
            10,
            b"xyz",
            &limits,
            &mut stats,
            &mut global,
            usize::MAX,
            &mut out,
        );
        assert!(out.is_empty());
        h.segment(
            20,
            b"12",
            &limits,
            &mut stats,
            &mut global,
            usize::MAX,
            &mut out,
        );
        assert_eq!(
            out,
            vec![Chunk::Gap(10), Chunk::Data(b"xyz".to_vec())],
            "cap exceeded: skip the hole"
        );
        assert_eq!(h.pending_bytes(), 2);
    }

    #[test]
    fn depth_stops_delivery() {
        let mut h = HalfStream::default();
        h.start(0);
        let limits = StreamLimits {
            depth: 5,
            direction_memcap: 1 << 20,
        };
        let mut stats = StreamStats::default();
        let (mut g, mut out) = (0, Vec::new());
        h.segment(0, b"abc", &limits, &mut stats, &mut g, usize::MAX, &mut out);
        h.segment(
            3,
            b"defgh",
            &limits,
            &mut stats,
            &mut g,
            usize::MAX,
            &mut out,
        );
        h.segment(8, b"ijk", &limits, &mut stats, &mut g, usize::MAX, &mut out);
        assert_eq!(bytes(&out), b"abcde");
    }

    #[test]
    fn nothing_before_the_start_is_known() {
        let mut h = HalfStream::default();
        let (out, _, _) = feed(&mut h, &[(5, b"data")]);
        assert!(out.is_empty());
        h.start(100);
        let (out, stats, _) = feed(&mut h, &[(50, b"old"), (100, b"new")]);
        assert_eq!(bytes(&out), b"new");
        assert_eq!(stats.retransmissions, 1);
    }
}
