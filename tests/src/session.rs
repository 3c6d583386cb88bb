//! Whole conversations as frames: a TCP session builder that keeps sequence and
//! acknowledgement numbers right (handshake, data both ways, close), and a pcap writer, so
//! that replay tests run on captures this project makes itself.

use std::{io::Write as _, path::Path};

use crate::packets::{eth, ipv4, udp, V4};

/// A TCP connection between a client and a server over IPv4.
pub struct TcpSession {
    client: [u8; 4],
    server: [u8; 4],
    cport: u16,
    sport: u16,
    cseq: u32,
    sseq: u32,
}

fn tcp_seg(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(5 << 4);
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

impl TcpSession {
    /// A session with the given initial sequence numbers.
    pub fn new(client: [u8; 4], cport: u16, server: [u8; 4], sport: u16) -> TcpSession {
        TcpSession {
            client,
            server,
            cport,
            sport,
            cseq: 1_000_000,
            sseq: 4_000_000_000,
        }
    }

    fn client_frame(&self, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        let seg = tcp_seg(self.cport, self.sport, seq, self.sseq, flags, payload);
        eth(
            &[],
            0x0800,
            &ipv4(&V4::new(self.client, self.server, 6), &seg),
        )
    }

    fn server_frame(&self, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        let seg = tcp_seg(self.sport, self.cport, seq, self.cseq, flags, payload);
        eth(
            &[],
            0x0800,
            &ipv4(&V4::new(self.server, self.client, 6), &seg),
        )
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Vec<u8>> {
        let syn = self.client_frame(0x02, self.cseq, &[]);
        self.cseq = self.cseq.wrapping_add(1);
        let syn_ack = self.server_frame(0x12, self.sseq, &[]);
        self.sseq = self.sseq.wrapping_add(1);
        let ack = self.client_frame(0x10, self.cseq, &[]);
        vec![syn, syn_ack, ack]
    }

    /// Data from the client, in segments of at most `mss` bytes.
    pub fn client_data(&mut self, data: &[u8], mss: usize) -> Vec<Vec<u8>> {
        data.chunks(mss.max(1))
            .map(|c| {
                let f = self.client_frame(0x18, self.cseq, c);
                self.cseq = self.cseq.wrapping_add(c.len() as u32);
                f
            })
            .collect()
    }

    /// Data from the server, in segments of at most `mss` bytes.
    pub fn server_data(&mut self, data: &[u8], mss: usize) -> Vec<Vec<u8>> {
        data.chunks(mss.max(1))
            .map(|c| {
                let f = self.server_frame(0x18, self.sseq, c);
                self.sseq = self.sseq.wrapping_add(c.len() as u32);
                f
            })
            .collect()
    }

    /// A pure ACK from the client (no payload), acknowledging everything the server sent.
    pub fn client_ack(&self) -> Vec<u8> {
        self.client_frame(0x10, self.cseq, &[])
    }

    /// A pure ACK from the server.
    pub fn server_ack(&self) -> Vec<u8> {
        self.server_frame(0x10, self.sseq, &[])
    }

    /// FIN from the client, FIN-ACK from the server, last ACK.
    pub fn close(&mut self) -> Vec<Vec<u8>> {
        let fin = self.client_frame(0x11, self.cseq, &[]);
        self.cseq = self.cseq.wrapping_add(1);
        let fin_ack = self.server_frame(0x11, self.sseq, &[]);
        self.sseq = self.sseq.wrapping_add(1);
        let ack = self.client_frame(0x10, self.cseq, &[]);
        vec![fin, fin_ack, ack]
    }
}

/// A UDP datagram frame over IPv4.
pub fn udp_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    eth(
        &[],
        0x0800,
        &ipv4(&V4::new(src, dst, 17), &udp(sport, dport, payload)),
    )
}

/// Writes Ethernet frames as a classic pcap file (microsecond timestamps), one every
/// `step_us` microseconds from `start_s`.
pub fn write_pcap(
    path: &Path,
    frames: &[Vec<u8>],
    start_s: u32,
    step_us: u32,
) -> std::io::Result<()> {
    let timed: Vec<(u64, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                u64::from(start_s) * 1_000_000 + i as u64 * u64::from(step_us),
                f.as_slice(),
            )
        })
        .collect();
    write_pcap_timed(path, &timed)
}

/// Writes Ethernet frames as `tcpdump -s SNAPLEN -w` does: the header's snapshot length is
/// `header_snaplen`, and each record keeps the first `keep` bytes of its frame with the frame's
/// own length as the original length (a `keep` above `header_snaplen` makes records longer
/// than the header allows, as some writers do).
pub fn write_pcap_snap(
    path: &Path,
    frames: &[Vec<u8>],
    header_snaplen: u32,
    keep: usize,
) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    f.write_all(&2u16.to_le_bytes())?;
    f.write_all(&4u16.to_le_bytes())?;
    f.write_all(&[0; 8])?;
    f.write_all(&header_snaplen.to_le_bytes())?;
    f.write_all(&1u32.to_le_bytes())?;
    for (i, frame) in frames.iter().enumerate() {
        let cut = &frame[..frame.len().min(keep)];
        f.write_all(&1_790_000_000u32.to_le_bytes())?;
        f.write_all(&(i as u32 * 1000).to_le_bytes())?;
        f.write_all(&(cut.len() as u32).to_le_bytes())?;
        f.write_all(&(frame.len() as u32).to_le_bytes())?;
        f.write_all(cut)?;
    }
    f.flush()
}

/// Writes Ethernet frames as a classic pcap file, each at its own time in microseconds
/// since the UNIX epoch, with tcpdump's default snapshot length (262,144 bytes: room for a
/// GRO/GSO packet).
pub fn write_pcap_timed(path: &Path, frames: &[(u64, &[u8])]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    f.write_all(&2u16.to_le_bytes())?;
    f.write_all(&4u16.to_le_bytes())?;
    f.write_all(&0i32.to_le_bytes())?;
    f.write_all(&0u32.to_le_bytes())?;
    f.write_all(&262_144u32.to_le_bytes())?;
    f.write_all(&1u32.to_le_bytes())?;
    for &(t, frame) in frames {
        f.write_all(&((t / 1_000_000) as u32).to_le_bytes())?;
        f.write_all(&((t % 1_000_000) as u32).to_le_bytes())?;
        f.write_all(&(frame.len() as u32).to_le_bytes())?;
        f.write_all(&(frame.len() as u32).to_le_bytes())?;
        f.write_all(frame)?;
    }
    f.flush()
}
