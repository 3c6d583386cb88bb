//! The shared real-traffic corpus as one capture.

use std::path::Path;

/// Writes every capture under `corpus` with Ethernet frames into one classic pcap at `out`,
/// `rounds` times over, each capture's clock moved after the previous one's so flows of
/// different captures do not mix and a later round's flows are new ones; returns (packets,
/// bytes of the file). The real-traffic benchmark and the matcher agreement test use it.
pub fn merge_corpus(corpus: &Path, out: &Path, rounds: u64) -> (usize, u64) {
    use std::io::Write as _;
    let mut files = Vec::new();
    let mut stack = vec![corpus.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("corpus dir").flatten() {
            let p = e.path();
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if p.is_dir() {
                stack.push(p);
            } else if [".pcap", ".pcapng", ".cap", ".trace"]
                .iter()
                .any(|x| n.contains(x))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).expect("merged capture"));
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
        w.write_all(&v.to_le_bytes()).expect("write");
    }
    let (mut packets, mut clock_ns) = (0usize, 1_700_000_000_000_000_000u64);
    for round in 0..rounds {
        clock_ns = clock_ns.max(1_700_000_000_000_000_000 + round * 86_400_000_000_000);
        for f in &files {
            let Ok(mut r) = precinct::capture::CaptureReader::open(f) else {
                continue;
            };
            let mut first = None;
            let mut last = clock_ns;
            while let Ok(Some(pkt)) = r.next_packet() {
                if pkt.linktype != 1 || pkt.data.len() > 262_144 {
                    continue;
                }
                let base = *first.get_or_insert(pkt.ts_ns);
                let ts = clock_ns + pkt.ts_ns.saturating_sub(base);
                last = last.max(ts);
                let us = ts / 1000;
                for v in [
                    (us / 1_000_000) as u32,
                    (us % 1_000_000) as u32,
                    pkt.data.len() as u32,
                    pkt.orig_len.max(pkt.data.len() as u32),
                ] {
                    w.write_all(&v.to_le_bytes()).expect("write");
                }
                w.write_all(pkt.data).expect("write");
                packets += 1;
            }
            clock_ns = last + 1_000_000_000;
        }
    }
    w.flush().expect("flush");
    (
        packets,
        std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
    )
}
