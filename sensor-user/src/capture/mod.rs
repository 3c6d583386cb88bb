//! Capture files: classic pcap ([`pcap`], read as libpcap reads it) and pcapng (any number
//! of interfaces, each with its own link type and timestamp resolution, through the
//! `pcap-file` crate), either of them gzip- or zstd-compressed (`.pcap.gz`, `.pcapng.zst`),
//! told apart by their first bytes rather than their names.

pub mod pcap;

use std::{
    cell::Cell,
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
    rc::Rc,
};

use anyhow::{bail, Context as _};
use pcap_file::{
    pcapng::{blocks::interface_description::InterfaceDescriptionOption, Block, PcapNgReader},
    DataLink,
};

/// One captured packet, borrowed from the reader until the next one is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedPacket<'a> {
    /// Capture time, ns since the UNIX epoch.
    pub ts_ns: u64,
    /// Link type (tcpdump.org LINKTYPE_ value).
    pub linktype: u32,
    /// The packet's length on the wire (more than `data` holds in a snap-length capture).
    pub orig_len: u32,
    /// The captured bytes, from the link-layer header.
    pub data: &'a [u8],
}

impl<'a> CapturedPacket<'a> {
    /// A pcap record of a file whose link type is `linktype`.
    fn of(r: pcap::Record<'a>, linktype: u32) -> CapturedPacket<'a> {
        CapturedPacket {
            ts_ns: r.ts_ns,
            linktype,
            orig_len: r.orig_len,
            data: r.data,
        }
    }
}

type Source = Box<dyn Read>;

enum Inner {
    Pcap(pcap::PcapFile<pcap::Stream<Source>>),
    /// An uncompressed pcap file, mapped: records are read where they lie.
    Mapped(Mapped),
    PcapNg {
        reader: Box<PcapNgReader<Source>>,
        /// (link type, timestamp unit) per interface of the current section.
        interfaces: Vec<(u32, TsUnit)>,
        /// The current packet's bytes.
        buf: Vec<u8>,
    },
}

/// Reads packets from a capture file.
pub struct CaptureReader {
    inner: Inner,
    path: PathBuf,
    packets: u64,
    /// Bytes of the file (compressed, if it is), for progress reporting.
    pub file_len: u64,
    /// Bytes of the file read so far.
    consumed: Rc<Cell<u64>>,
}

/// Bytes of a mapped capture read between two releases of the pages behind.
const RELEASE_EVERY: usize = 2 << 20;

/// An uncompressed pcap file mapped into memory. Reading it costs no system call and no copy
/// per record; the pages already read are released every [`RELEASE_EVERY`] bytes, so the
/// process holds at most that much of the file however long it is.
struct Mapped {
    pcap: pcap::PcapFile<pcap::InMemory<memmap2::Mmap>>,
    /// Where the pages before are released.
    released: usize,
}

impl Mapped {
    /// Maps `file` when it is a regular file with a pcap header; `None` otherwise (a
    /// compressed file, pcapng, a pipe, a damaged header), or when it cannot be mapped: it is
    /// then read as a stream, which names what is wrong.
    fn open(file: &File) -> Option<Mapped> {
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        // SAFETY: the mapping is read-only and private to this reader, which owns it until
        // dropped. Its contents change only if another process rewrites or truncates the
        // file while it is read (appending, as a capture tool does, leaves the mapped range
        // alone); `precinct replay` reads finished captures, and the README and CHANGELOG
        // say not to rewrite or truncate a capture while it is replayed.
        let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
        let _ = map.advise(memmap2::Advice::Sequential);
        let pcap = pcap::PcapFile::in_memory(map).ok()?;
        Some(Mapped { pcap, released: 0 })
    }

    /// Releases the pages of the records before `at` (whole pages only).
    fn release(&mut self, at: usize) {
        let page = 4096;
        let end = at / page * page;
        if end > self.released {
            // The advice only drops this process's mapping of pages it read; the file and
            // the page cache are untouched. A failure costs memory, not correctness.
            // SAFETY: `DontNeed` on a private read-only file mapping only discards
            // page-table entries: pages read again are faulted in from the file. No record
            // of those pages is alive (a record borrows the reader until the next is read).
            let _ = unsafe {
                self.pcap.bytes().unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.released,
                    end - self.released,
                )
            };
            self.released = end;
        }
    }
}

/// Counts the bytes read from the file, compressed or not.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// An interface's timestamp unit (`if_tsresol`): 10^-n or 2^-n seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsUnit {
    Decimal(u8),
    Binary(u8),
}

impl TsUnit {
    fn of(options: &[InterfaceDescriptionOption]) -> TsUnit {
        for o in options {
            if let InterfaceDescriptionOption::IfTsResol(r) = o {
                // The high bit selects a power of two instead of a power of ten.
                return if r & 0x80 != 0 {
                    TsUnit::Binary(r & 0x7f)
                } else {
                    TsUnit::Decimal(*r)
                };
            }
        }
        TsUnit::Decimal(6) // default: microseconds
    }

    /// Nanoseconds in `units`, in integers: a float product loses the low digits of a
    /// present-day timestamp (10^18 ns is past f64's 53-bit mantissa), which moved records
    /// by a microsecond.
    fn to_ns(self, units: u128) -> u64 {
        let ns = match self {
            TsUnit::Decimal(n) if n <= 9 => units.saturating_mul(10u128.pow(u32::from(9 - n))),
            TsUnit::Decimal(n) => match 10u128.checked_pow(u32::from(n - 9)) {
                Some(d) => units / d,
                // 10^(n-9) past u128: one unit is so small that any count is under a ns.
                None => 0,
            },
            TsUnit::Binary(n) => {
                let n = u32::from(n).min(127);
                units.saturating_mul(1_000_000_000) >> n
            }
        };
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// The first bytes of what `r` yields, and a reader that yields all of it again.
fn peek(mut r: Source, n: usize) -> std::io::Result<(Vec<u8>, Source)> {
    let mut head = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut head[got..])? {
            0 => break,
            k => got += k,
        }
    }
    head.truncate(got);
    Ok((head.clone(), Box::new(std::io::Cursor::new(head).chain(r))))
}

impl CaptureReader {
    /// Opens `path`: decompressing gzip or zstd, then telling pcap from pcapng by the magic.
    pub fn open(path: &Path) -> anyhow::Result<CaptureReader> {
        let shown = path.display();
        let file = File::open(path).with_context(|| format!("opening the capture {shown}"))?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let consumed = Rc::new(Cell::new(0));
        if let Some(m) = Mapped::open(&file) {
            return Ok(CaptureReader {
                inner: Inner::Mapped(m),
                path: path.to_path_buf(),
                packets: 0,
                file_len,
                consumed,
            });
        }
        let raw: Source = Box::new(BufReader::with_capacity(
            1 << 16,
            Counting {
                inner: file,
                count: consumed.clone(),
            },
        ));
        let (head, raw) = peek(raw, 6).with_context(|| format!("reading {shown}"))?;
        let source: Source = if head.starts_with(&GZIP_MAGIC) {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(raw)))
        } else if head.starts_with(&ZSTD_MAGIC) {
            let d = ruzstd::decoding::StreamingDecoder::new(raw)
                .map_err(|e| anyhow::anyhow!("{shown}: not a readable zstd file: {e}"))?;
            Box::new(BufReader::new(d))
        } else if head.starts_with(&XZ_MAGIC) {
            bail!("{shown}: xz-compressed captures are not read; decompress it first (xz -d)");
        } else {
            raw
        };
        let (magic, source) = peek(source, 4).with_context(|| format!("reading {shown}"))?;
        if magic.len() < 4 {
            bail!(
                "{shown}: too short to be a capture file ({} bytes)",
                magic.len()
            );
        }
        let inner = if magic == PCAPNG_MAGIC {
            let reader = PcapNgReader::new(source)
                .map_err(|e| anyhow::anyhow!("{shown}: not a readable pcapng file: {e}"))?;
            Inner::PcapNg {
                reader: Box::new(reader),
                interfaces: Vec::new(),
                buf: Vec::new(),
            }
        } else {
            Inner::Pcap(pcap::PcapFile::open(source).map_err(|e| {
                anyhow::anyhow!(
                    "{shown}: not a pcap or pcapng file ({e}); write captures with tcpdump -w or \
                     tshark -w"
                )
            })?)
        };
        Ok(CaptureReader {
            inner,
            path: path.to_path_buf(),
            packets: 0,
            file_len,
            consumed,
        })
    }

    /// Packets returned so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes of the file read so far (compressed bytes for a compressed file), to set against
    /// [`CaptureReader::file_len`].
    pub fn position(&self) -> u64 {
        self.consumed.get()
    }

    /// The next packet, `Ok(None)` at the end, or an error naming the file and the packet
    /// after which the damage starts.
    pub fn next_packet(&mut self) -> anyhow::Result<Option<CapturedPacket<'_>>> {
        let after = self.packets;
        let shown = self.path.display();
        let damaged = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "{shown}: damaged after packet {after}: {e}; the packets before it were processed"
            )
        };
        let packet = match &mut self.inner {
            Inner::Mapped(m) => {
                let linktype = m.pcap.linktype;
                // The records before this one are no longer borrowed: their pages can go.
                let at = m.pcap.position();
                if at >= m.released + RELEASE_EVERY {
                    m.release(at);
                }
                self.consumed.set(at as u64);
                match m.pcap.next_record() {
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(damaged(&e)),
                    Ok(Some(r)) => CapturedPacket::of(r, linktype),
                }
            }
            Inner::Pcap(p) => {
                let linktype = p.linktype;
                match p.next_record() {
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(damaged(&e)),
                    Ok(Some(r)) => CapturedPacket::of(r, linktype),
                }
            }
            Inner::PcapNg {
                reader,
                interfaces,
                buf,
            } => {
                let (ts_ns, linktype, orig_len) = loop {
                    let block = match reader.next_block() {
                        None => return Ok(None),
                        Some(Err(e)) => return Err(damaged(&e)),
                        Some(Ok(b)) => b,
                    };
                    match block {
                        Block::SectionHeader(_) => interfaces.clear(),
                        Block::InterfaceDescription(idb) => {
                            interfaces.push((u32::from(idb.linktype), TsUnit::of(&idb.options)));
                        }
                        Block::EnhancedPacket(epb) => {
                            let Some(&(linktype, unit)) = interfaces.get(epb.interface_id as usize)
                            else {
                                bail!(
                                    "{shown}: packet {} names interface {} which the file never \
                                     described",
                                    after + 1,
                                    epb.interface_id
                                );
                            };
                            // pcap-file hands over the raw timestamp units as nanoseconds.
                            let units = epb.timestamp.as_nanos();
                            buf.clear();
                            buf.extend_from_slice(&epb.data);
                            break (unit.to_ns(units), linktype, epb.original_len);
                        }
                        Block::SimplePacket(spb) => {
                            let linktype = interfaces
                                .first()
                                .map(|i| i.0)
                                .unwrap_or(u32::from(DataLink::ETHERNET));
                            buf.clear();
                            buf.extend_from_slice(&spb.data);
                            break (0, linktype, spb.original_len);
                        }
                        _ => {}
                    }
                };
                CapturedPacket {
                    ts_ns,
                    linktype,
                    orig_len,
                    data: buf,
                }
            }
        };
        self.packets += 1;
        Ok(Some(packet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::{
        blocks::{
            enhanced_packet::EnhancedPacketBlock, interface_description::InterfaceDescriptionBlock,
        },
        PcapNgWriter,
    };
    use std::{borrow::Cow, time::Duration};

    // 2008-09-25T18:10:02.225001Z in microseconds: past 2^53 once scaled to nanoseconds.
    const MICROS: u128 = 1_222_366_202_225_001;

    #[test]
    fn timestamp_units_convert_exactly() {
        assert_eq!(TsUnit::Decimal(6).to_ns(MICROS), 1_222_366_202_225_001_000);
        assert_eq!(TsUnit::Decimal(9).to_ns(7), 7);
        assert_eq!(TsUnit::Decimal(0).to_ns(3), 3_000_000_000);
        // Picoseconds are cut to whole nanoseconds.
        assert_eq!(TsUnit::Decimal(12).to_ns(1_999), 1);
        // 2^-20 s: 2^20 units are one second.
        assert_eq!(TsUnit::Binary(20).to_ns(3 << 20), 3_000_000_000);
        assert_eq!(
            TsUnit::Binary(20).to_ns((1 << 20) + (1 << 19)),
            1_500_000_000
        );
        // Out-of-range values saturate instead of wrapping or panicking.
        assert_eq!(TsUnit::Decimal(0).to_ns(u128::from(u64::MAX)), u64::MAX);
        assert_eq!(TsUnit::Decimal(127).to_ns(u128::MAX), 0);
        assert_eq!(TsUnit::Binary(127).to_ns(5), 0);
    }

    #[test]
    fn a_mapped_pcap_reads_as_the_stream_does_past_its_released_pages() {
        // Records of varied lengths over more than two release windows, one cut by the
        // snapshot length (1000): mapped and streamed reads must agree record by record.
        let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&1000u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        let mut k = 0u32;
        while f.len() < 2 * RELEASE_EVERY + 100_000 {
            let caplen = if k == 7 { 1200 } else { 60 + k % 900 };
            for v in [k, k % 1_000_000, caplen, caplen + 4] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend((0..caplen).map(|i| (i as u8) ^ (k as u8)));
            k += 1;
        }
        let path =
            std::env::temp_dir().join(format!("precinct-mapped-{}.pcap", std::process::id()));
        std::fs::write(&path, &f).expect("write");
        let mut r = CaptureReader::open(&path).expect("open");
        assert!(
            matches!(r.inner, Inner::Mapped(_)),
            "a plain pcap file is mapped"
        );
        let mut streamed = pcap::PcapFile::open(f.as_slice()).expect("stream");
        let mut n = 0u32;
        while let Some(p) = r.next_packet().expect("mapped read") {
            let s = streamed
                .next_record()
                .expect("stream read")
                .expect("as many");
            assert_eq!(
                (p.ts_ns, p.orig_len, p.data),
                (s.ts_ns, s.orig_len, s.data),
                "record {n}"
            );
            n += 1;
        }
        assert!(streamed.next_record().expect("end").is_none());
        assert_eq!(n, k);
        assert_eq!(r.packets(), u64::from(k));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn pcapng_microsecond_timestamps_keep_their_last_digit() {
        let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![],
        })
        .expect("idb");
        for k in 0..4u128 {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                // pcap-file writes the raw timestamp units it is given as nanoseconds.
                timestamp: Duration::from_nanos((MICROS + k) as u64),
                original_len: 14,
                data: Cow::Owned(vec![0u8; 14]),
                options: vec![],
            })
            .expect("epb");
        }
        let path =
            std::env::temp_dir().join(format!("precinct-tsresol-{}.pcapng", std::process::id()));
        std::fs::write(&path, w.into_inner()).expect("write");
        let mut r = CaptureReader::open(&path).expect("open");
        let mut got = Vec::new();
        while let Some(p) = r.next_packet().expect("read") {
            got.push(p.ts_ns);
        }
        let _ = std::fs::remove_file(&path);
        let want: Vec<u64> = (0..4).map(|k| ((MICROS + k) * 1000) as u64).collect();
        assert_eq!(got, want);
    }
}
