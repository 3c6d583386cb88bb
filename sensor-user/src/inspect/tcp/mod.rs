//! TCP sessions in the inspection pipeline: handshake and teardown state, reassembly of each
//! direction ([`stream`]) and when reassembled bytes reach the application layer. As in
//! Suricata's IDS mode, the application layer sees data once the other side acknowledged it
//! (own-direction data at the next packet of that direction, the peer's data on a bare ACK),
//! server data waits for the client's first data, and a reset or the end of the flow hands
//! everything over.

pub mod stream;

use std::collections::VecDeque;

use sensor_common::{flow::tcp as flags, parse::Parsed};

use crate::applayer::{Chunk, Dir};
use stream::{HalfStream, Reassembly};

/// One TCP connection's state.
#[derive(Debug, Default)]
pub struct Session {
    half: [HalfStream; 2],
    /// In-order bytes not yet handed to the application layer, per direction.
    unacked: [VecDeque<Chunk>; 2],
    /// Stream offset up to which the peer acknowledged each direction.
    acked: [u64; 2],
    /// The app layer has had client data.
    client_spoke: bool,
    syn: bool,
    syn_ack: bool,
    fin: [bool; 2],
    rst: bool,
}

/// What one segment did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The in-order bytes the segment made available in its own direction (what packet
    /// signatures inspect); known only when asked for.
    pub arrived: Arrived,
    /// Chunks of either direction the application layer may have now, in order.
    pub released: Vec<(Dir, Chunk)>,
}

/// The in-order bytes one segment made available in its direction.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum Arrived {
    /// None (or not asked for).
    #[default]
    Nothing,
    /// Exactly the segment's payload.
    Payload,
    /// Others: part of the payload (an overlap), or more (it filled a hole).
    Bytes(Vec<u8>),
}

impl Arrived {
    /// The bytes, `payload` being the segment's; empty for [`Arrived::Nothing`].
    pub fn bytes<'a>(&'a self, payload: &'a [u8]) -> &'a [u8] {
        match self {
            Arrived::Nothing => &[],
            Arrived::Payload => payload,
            Arrived::Bytes(b) => b,
        }
    }
}

/// The sequence and acknowledgement numbers of the TCP header `p` points at in `frame`.
fn seq_ack(p: &Parsed, frame: &[u8]) -> (u32, u32) {
    let l4 = p.l4_off as usize;
    let word = |at: usize| {
        frame
            .get(l4 + at..l4 + at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    };
    (word(4), word(8))
}

impl Session {
    /// The handshake was seen, or (with mid-stream pickup) either side's stream has started.
    pub fn established(&self, midstream: bool) -> bool {
        (self.syn && self.syn_ack)
            || (midstream && (self.half[0].started() || self.half[1].started()))
    }

    /// Each direction's stream size as Suricata's `stream_size` counts it (its next expected
    /// sequence number less the initial one: the SYN counts one, every in-order byte one,
    /// the FIN one); 0 for a direction that has not started.
    pub fn stream_sizes(&self) -> [u64; 2] {
        [0, 1].map(|d| {
            let h = &self.half[d];
            if h.started() {
                h.delivered() + 1 + u64::from(self.fin[d])
            } else {
                0
            }
        })
    }

    /// Both the SYN and the SYN-ACK were seen.
    pub fn handshake_seen(&self) -> bool {
        self.syn && self.syn_ack
    }

    /// Suricata's `tcp.state` of the session.
    pub fn state(&self) -> &'static str {
        match (self.rst, self.fin[0], self.fin[1], self.syn, self.syn_ack) {
            (true, ..) | (_, true, true, ..) => "closed",
            (_, true, false, ..) | (_, false, true, ..) => "fin_wait1",
            (_, _, _, true, true) => "established",
            (_, _, _, true, false) => "syn_sent",
            (_, _, _, false, true) => "syn_recv",
            _ => "established",
        }
    }

    /// Reassembles one segment of direction `dir` (`client` is the client's direction index).
    /// `arrived` is filled when `want_arrived` (signatures are evaluated). `released` is an
    /// empty vector whose allocation the delivery reuses (give back the last one's).
    #[expect(
        clippy::too_many_arguments,
        reason = "the segment's parts and the flow's settings, each needed once"
    )]
    pub fn segment(
        &mut self,
        p: &Parsed,
        frame: &[u8],
        payload: &[u8],
        dir: usize,
        client: usize,
        midstream: bool,
        want_arrived: bool,
        r: &mut Reassembly,
        released: &mut Vec<(Dir, Chunk)>,
    ) -> Delivery {
        let (seq, ackn) = seq_ack(p, frame);
        let as_dir = |d: usize| {
            if d == client {
                Dir::ToServer
            } else {
                Dir::ToClient
            }
        };
        let mut chunks = std::mem::take(&mut r.scratch);
        chunks.clear();
        let syn = p.tcp_flags & flags::SYN != 0;
        let ack = p.tcp_flags & flags::ACK != 0;
        let mut data_seq = seq;
        if syn {
            // The SYN takes one sequence number; data on a SYN (TCP Fast Open) follows it.
            data_seq = seq.wrapping_add(1);
            if ack {
                self.syn_ack = true;
            } else {
                self.syn = true;
            }
            self.half[dir].start(data_seq);
        }
        let handshake = self.syn && self.syn_ack;
        if !payload.is_empty() {
            if !self.half[dir].started() && midstream {
                self.half[dir].start(seq);
            }
            // Data on a SYN (TCP Fast Open) is reassembled before the handshake completes.
            if handshake || midstream || syn {
                self.half[dir].segment(data_seq, payload, r, &mut chunks);
            }
        }
        // A FIN ends the direction, but not its reassembly: segments that arrive after it
        // (reordered, retransmitted) may still fill a hole. Holes become gaps only when the
        // flow ends or a memory cap forces it.
        if p.tcp_flags & flags::FIN != 0 {
            self.fin[dir] = true;
        }
        let arrived = if !want_arrived || chunks.is_empty() {
            Arrived::Nothing
        } else if matches!(chunks.as_slice(), [Chunk::Data(d)] if d.as_slice() == payload) {
            // The common case, a segment delivered whole and alone: no copy.
            Arrived::Payload
        } else {
            let mut bytes = Vec::new();
            for c in &chunks {
                if let Chunk::Data(d) = c {
                    bytes.extend_from_slice(d);
                }
            }
            Arrived::Bytes(bytes)
        };
        self.unacked[dir].extend(chunks.drain(..));
        r.scratch = chunks;
        let mut released = std::mem::take(released);
        released.clear();
        if p.tcp_flags & flags::RST != 0 {
            self.rst = true;
            for d in 0..2 {
                let mut rest = Vec::new();
                self.half[d].flush(r, &mut rest);
                self.unacked[d].extend(rest);
                released.extend(self.unacked[d].drain(..).map(|c| (as_dir(d), c)));
            }
            return Delivery { arrived, released };
        }
        // This direction's data the peer acknowledged earlier is handed over now; the other
        // direction's data this packet acknowledges is handed over now only when the packet
        // carries none of its own. Suricata's IDS mode parses it at any acknowledging packet but
        // runs detection on it at the next packet of its own direction; a bare ACK is where
        // both agree in the common case (the conformance cases' alert packets show it).
        self.release_acked(dir, &mut released, &as_dir);
        let other = 1 - dir;
        if ack {
            if let Some(upto) = self.half[other].offset_of(ackn) {
                self.acked[other] = self.acked[other].max(upto);
            }
            if payload.is_empty() {
                self.release_acked(other, &mut released, &as_dir);
            }
        }
        // Server data waits until the client's side has given the app layer something, so
        // detection sees the client speak first when it did (as Suricata holds it back); a
        // reset or the end of the flow hands everything over.
        if released.iter().any(|(d, _)| *d == Dir::ToServer) {
            self.client_spoke = true;
        }
        if !self.client_spoke {
            let server = if client == 0 { 1 } else { 0 };
            for (_, c) in released.drain(..).rev() {
                self.unacked[server].push_front(c);
            }
        }
        Delivery { arrived, released }
    }

    /// The flow ends: everything held, acknowledged or not, in order per direction, the
    /// client's first (a request the response never saw acknowledged by a bare ACK still
    /// reaches the parser before its response).
    pub fn flush(&mut self, client: usize, r: &mut Reassembly) -> Vec<(Dir, Chunk)> {
        let mut out = Vec::new();
        for d in [client, 1 - client] {
            let mut chunks: Vec<Chunk> = self.unacked[d].drain(..).collect();
            self.half[d].flush(r, &mut chunks);
            let dir = if d == client {
                Dir::ToServer
            } else {
                Dir::ToClient
            };
            out.extend(chunks.into_iter().map(|c| (dir, c)));
        }
        out
    }

    /// Moves `d`'s unacknowledged chunks that the peer has acknowledged to `out`, splitting a
    /// chunk that is acknowledged in part.
    fn release_acked(
        &mut self,
        d: usize,
        out: &mut Vec<(Dir, Chunk)>,
        as_dir: &dyn Fn(usize) -> Dir,
    ) {
        let upto = self.acked[d];
        let mut at = self.half[d].delivered() - self.unacked[d].iter().map(Chunk::len).sum::<u64>();
        while let Some(front) = self.unacked[d].front_mut() {
            let len = front.len();
            if at + len <= upto {
                at += len;
                if let Some(c) = self.unacked[d].pop_front() {
                    out.push((as_dir(d), c));
                }
                continue;
            }
            if let Chunk::Data(bytes) = front {
                let n = upto.saturating_sub(at) as usize;
                if n > 0 && n < bytes.len() {
                    let head: Vec<u8> = bytes.drain(..n).collect();
                    out.push((as_dir(d), Chunk::Data(head)));
                }
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests;
