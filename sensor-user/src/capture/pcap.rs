//! Classic pcap files, read as libpcap reads them (`sf-pcap.c`), so that every capture tcpdump
//! and Wireshark open opens here too: both byte orders, microsecond and nanosecond magics, the
//! "Kuznetzov" patched record header, the swapped length fields of files older than 2.3, a
//! header snapshot length of 0 or beyond the maximum taken as the maximum, and a record longer
//! than the snapshot length cut to it (rather than refused). A record longer than any
//! plausible packet, or cut off by the end of the file, is damage.

use std::io::{self, Read};

/// The largest record libpcap accepts for the common link types (`MAXIMUM_SNAPLEN`).
pub const MAX_SNAPLEN: u32 = 262_144;

const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const MAGIC_NANO: u32 = 0xa1b2_3c4d;
/// Alexey Kuznetzov's patched libpcap: 8 more bytes per record header.
const MAGIC_KUZNETZOV: u32 = 0xa1b2_cd34;

/// Damage in a pcap file.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// Not a pcap file at all.
    #[error("not a pcap file (magic number {0:#010x})")]
    Magic(u32),
    /// The file ends inside its header.
    #[error("the file header is cut off after {0} of 24 bytes")]
    ShortHeader(usize),
    /// A record header or its data is cut off by the end of the file.
    #[error("truncated file: a record needs {needed} bytes, only {got} are left")]
    Truncated {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A record longer than any packet libpcap would hand out.
    #[error("a record of {0} bytes, more than the {MAX_SNAPLEN} any capture holds")]
    TooLong(u32),
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// How the record header's two lengths are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lengths {
    Normal,
    /// Before 2.3 some writers swapped them.
    Swapped,
    /// 2.3: swapped when the captured length exceeds the packet's.
    Maybe,
}

/// One record: its timestamp, lengths and bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// ns since the epoch.
    pub ts_ns: u64,
    /// The packet's length on the wire.
    pub orig_len: u32,
    /// The captured bytes (at most the snapshot length).
    pub data: &'a [u8],
}

/// Where a pcap file's bytes come from.
pub trait Input {
    /// The next `n` bytes, or as many as there are before the end of the file.
    fn take(&mut self, n: usize) -> io::Result<&[u8]>;
}

/// A file read as a stream (a decompressor's output, a pipe), through a buffer.
pub struct Stream<R> {
    r: R,
    buf: Vec<u8>,
}

impl<R: Read> Input for Stream<R> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        self.buf.resize(n, 0);
        let got = read_full(&mut self.r, &mut self.buf)?;
        self.buf.truncate(got);
        Ok(&self.buf)
    }
}

/// A file whose bytes are all in memory (a mapped file): records are borrowed, not copied.
pub struct InMemory<B> {
    bytes: B,
    pos: usize,
}

impl<B: AsRef<[u8]>> InMemory<B> {
    /// Bytes taken so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<B: AsRef<[u8]>> Input for InMemory<B> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        let all = self.bytes.as_ref();
        let start = self.pos.min(all.len());
        let end = start.saturating_add(n).min(all.len());
        self.pos = end;
        Ok(&all[start..end])
    }
}

/// A pcap file being read.
pub struct PcapFile<I> {
    input: I,
    swapped: bool,
    nanos: bool,
    /// Extra record-header bytes (Kuznetzov).
    extra: usize,
    lengths: Lengths,
    snaplen: u32,
    /// The link type (without the FCS bits of the header's field).
    pub linktype: u32,
}

/// Reads exactly `buf.len()` bytes, or as many as there are before the end (returned).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> PcapFile<Stream<R>> {
    /// Reads the file header from a stream.
    pub fn open(r: R) -> Result<PcapFile<Stream<R>>, PcapError> {
        PcapFile::with_input(Stream {
            r,
            buf: Vec::with_capacity(2048),
        })
    }
}

impl<B: AsRef<[u8]>> PcapFile<InMemory<B>> {
    /// Reads the file header from the bytes of a whole file.
    pub fn in_memory(bytes: B) -> Result<PcapFile<InMemory<B>>, PcapError> {
        PcapFile::with_input(InMemory { bytes, pos: 0 })
    }

    /// Bytes of the file read so far.
    pub fn position(&self) -> usize {
        self.input.position()
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &B {
        &self.input.bytes
    }
}

impl<I: Input> PcapFile<I> {
    /// Reads the file header.
    fn with_input(mut input: I) -> Result<PcapFile<I>, PcapError> {
        let mut h = [0u8; 24];
        let got = input.take(24)?;
        let n = got.len();
        h[..n].copy_from_slice(got);
        let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (magic, swapped) = match le {
            MAGIC_MICRO | MAGIC_NANO | MAGIC_KUZNETZOV => (le, false),
            other if [MAGIC_MICRO, MAGIC_NANO, MAGIC_KUZNETZOV].contains(&other.swap_bytes()) => {
                (other.swap_bytes(), true)
            }
            other => return Err(PcapError::Magic(other)),
        };
        if n < 24 {
            return Err(PcapError::ShortHeader(n));
        }
        let u16_at = |i: usize| {
            let v = u16::from_le_bytes([h[i], h[i + 1]]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let u32_at = |i: usize| {
            let v = u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let (major, minor) = (u16_at(4), u16_at(6));
        let lengths = match (major, minor) {
            (m, _) if m < 2 => Lengths::Swapped,
            (2, n) if n < 3 => Lengths::Swapped,
            (2, 3) => Lengths::Maybe,
            _ => Lengths::Normal,
        };
        let snaplen = match u32_at(16) {
            0 => MAX_SNAPLEN,
            s if s > MAX_SNAPLEN => MAX_SNAPLEN,
            s => s,
        };
        // The upper bits of the link-type field carry the FCS length, not the type.
        let linktype = u32_at(20) & 0x03ff_ffff;
        Ok(PcapFile {
            input,
            swapped,
            nanos: magic == MAGIC_NANO,
            extra: if magic == MAGIC_KUZNETZOV { 8 } else { 0 },
            lengths,
            snaplen,
            linktype,
        })
    }

    fn field(&self, b: &[u8], i: usize) -> u32 {
        let v = u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if self.swapped {
            v.swap_bytes()
        } else {
            v
        }
    }

    /// The next record; `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        let mut h = [0u8; 24];
        let hlen = 16 + self.extra;
        let got = self.input.take(hlen)?;
        let n = got.len();
        // Byte by byte: at most 24, and a call to memmove per record costs more.
        for (d, s) in h.iter_mut().zip(got) {
            *d = *s;
        }
        if n == 0 {
            return Ok(None);
        }
        if n < hlen {
            return Err(PcapError::Truncated {
                needed: hlen,
                got: n,
            });
        }
        let (secs, frac) = (self.field(&h, 0), self.field(&h, 4));
        let (mut caplen, mut len) = (self.field(&h, 8), self.field(&h, 12));
        if self.lengths == Lengths::Swapped || (self.lengths == Lengths::Maybe && caplen > len) {
            std::mem::swap(&mut caplen, &mut len);
        }
        if caplen > MAX_SNAPLEN {
            return Err(PcapError::TooLong(caplen));
        }
        // Beyond the file's snapshot length: keep that much, skip the rest, as libpcap does.
        let keep = caplen.min(self.snaplen) as usize;
        let skip = caplen as usize - keep;
        if skip > 0 {
            // The bytes past the snapshot length follow the kept ones: the record is taken
            // whole and cut.
            return self.cut_record(secs, frac, len, keep, skip);
        }
        let nanos = self.nanos;
        let data = self.input.take(keep)?;
        if data.len() < keep {
            return Err(PcapError::Truncated {
                needed: caplen as usize,
                got: data.len(),
            });
        }
        Ok(Some(Record {
            ts_ns: ts_ns(secs, frac, nanos),
            orig_len: len,
            data,
        }))
    }

    /// A record longer than the snapshot length: its first `keep` bytes, the `skip` others
    /// passed over, as libpcap does.
    #[cold]
    fn cut_record(
        &mut self,
        secs: u32,
        frac: u32,
        len: u32,
        keep: usize,
        skip: usize,
    ) -> Result<Option<Record<'_>>, PcapError> {
        let whole = self.input.take(keep + skip)?;
        if whole.len() < keep + skip {
            return Err(PcapError::Truncated {
                needed: keep + skip,
                got: whole.len(),
            });
        }
        Ok(Some(Record {
            ts_ns: ts_ns(secs, frac, self.nanos),
            orig_len: len,
            data: &whole[..keep],
        }))
    }
}

/// A record's time in ns since the epoch from its seconds and fraction (µs or ns).
fn ts_ns(secs: u32, frac: u32, nanos: bool) -> u64 {
    let frac_ns = if nanos {
        u64::from(frac)
    } else {
        u64::from(frac) * 1_000
    };
    u64::from(secs)
        .saturating_mul(1_000_000_000)
        .saturating_add(frac_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap file: header fields, then records of (secs, frac, caplen, len, data).
    fn file(
        magic: u32,
        version: (u16, u16),
        snaplen: u32,
        recs: &[(u32, u32, u32, u32, &[u8])],
    ) -> Vec<u8> {
        let mut f = magic.to_le_bytes().to_vec();
        f.extend_from_slice(&version.0.to_le_bytes());
        f.extend_from_slice(&version.1.to_le_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&snaplen.to_le_bytes());
        f.extend_from_slice(&(1u32 | 0x1000_0000).to_le_bytes());
        for (s, u, cap, len, data) in recs {
            for v in [s, u, cap, len] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend_from_slice(data);
        }
        f
    }

    type Records = Vec<(u64, u32, Vec<u8>)>;

    fn read_all<I: Input>(p: Result<PcapFile<I>, PcapError>) -> Result<Records, PcapError> {
        let mut p = p?;
        let mut out = Vec::new();
        while let Some(r) = p.next_record()? {
            out.push((r.ts_ns, r.orig_len, r.data.to_vec()));
        }
        Ok(out)
    }

    /// The records of `bytes`, read as a stream and in memory (a mapped file), which must
    /// give the same records and the same damage.
    fn all(bytes: &[u8]) -> Result<Records, PcapError> {
        let streamed = read_all(PcapFile::open(bytes));
        let in_memory = read_all(PcapFile::in_memory(bytes));
        assert_eq!(
            format!("{streamed:?}"),
            format!("{in_memory:?}"),
            "a stream and the same bytes in memory read differently"
        );
        streamed
    }

    #[test]
    fn a_snap_length_capture_reads_as_tcpdump_wrote_it() {
        // tcpdump -s 96: each record holds 96 bytes of a longer packet.
        let data = [7u8; 96];
        let f = file(
            MAGIC_MICRO,
            (2, 4),
            96,
            &[(10, 5, 96, 1514, &data), (11, 0, 60, 60, &data[..60])],
        );
        let recs = all(&f).expect("readable");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0], (10_000_005_000, 1514, data.to_vec()));
        assert_eq!(recs[1].1, 60);
    }

    #[test]
    fn a_record_longer_than_the_snap_length_is_cut_to_it() {
        let data: Vec<u8> = (0..200u8).collect();
        let f = file(
            MAGIC_MICRO,
            (2, 4),
            100,
            &[(1, 0, 200, 200, &data), (2, 0, 4, 4, b"next")],
        );
        let recs = all(&f).expect("readable");
        assert_eq!(recs[0].2, data[..100].to_vec());
        assert_eq!(
            recs[1].2,
            b"next".to_vec(),
            "the rest was skipped, not misread"
        );
        // A captured length beyond the packet's own is kept as written (libpcap does not
        // check it).
        let odd = file(MAGIC_MICRO, (2, 4), 100, &[(1, 0, 10, 4, &[1; 10])]);
        assert_eq!(all(&odd).expect("readable")[0].2.len(), 10);
        // Snapshot length 0 means the maximum.
        let zero = file(MAGIC_MICRO, (2, 4), 0, &[(1, 0, 5000, 5000, &[0; 5000])]);
        assert_eq!(all(&zero).expect("readable")[0].2.len(), 5000);
    }

    #[test]
    fn byte_orders_resolutions_and_old_headers() {
        let mut be = Vec::new();
        be.extend_from_slice(&MAGIC_NANO.to_be_bytes());
        be.extend_from_slice(&2u16.to_be_bytes());
        be.extend_from_slice(&4u16.to_be_bytes());
        be.extend_from_slice(&[0; 8]);
        be.extend_from_slice(&65535u32.to_be_bytes());
        be.extend_from_slice(&1u32.to_be_bytes());
        for v in [3u32, 7, 2, 2] {
            be.extend_from_slice(&v.to_be_bytes());
        }
        be.extend_from_slice(b"ok");
        let mut p = PcapFile::open(be.as_slice()).expect("big-endian nanosecond file");
        assert_eq!(p.linktype, 1);
        let r = p.next_record().expect("record").expect("one");
        assert_eq!((r.ts_ns, r.data), (3_000_000_007, &b"ok"[..]));
        // Version 2.2 wrote the lengths the other way round.
        let old = file(MAGIC_MICRO, (2, 2), 100, &[(1, 0, 60, 3, b"abc")]);
        assert_eq!(
            all(&old).expect("readable")[0],
            (1_000_000_000, 60, b"abc".to_vec())
        );
        // The FCS bits of the link-type field are not part of the type.
        assert_eq!(
            PcapFile::open(file(MAGIC_MICRO, (2, 4), 100, &[]).as_slice())
                .expect("open")
                .linktype,
            1
        );
    }

    #[test]
    fn damage_is_named() {
        let f = file(MAGIC_MICRO, (2, 4), 100, &[(1, 0, 50, 50, &[0; 20])]);
        assert!(matches!(
            all(&f),
            Err(PcapError::Truncated {
                needed: 50,
                got: 20
            })
        ));
        let huge = file(MAGIC_MICRO, (2, 4), 100, &[(1, 0, 300_000, 300_000, &[])]);
        assert!(matches!(all(&huge), Err(PcapError::TooLong(300_000))));
        assert!(matches!(
            PcapFile::open(&b"GIF89a.................."[..]),
            Err(PcapError::Magic(_))
        ));
        assert!(matches!(
            PcapFile::open(&MAGIC_MICRO.to_le_bytes()[..]),
            Err(PcapError::ShortHeader(4))
        ));
        let mut cut = file(MAGIC_MICRO, (2, 4), 100, &[(1, 0, 2, 2, b"ab")]);
        cut.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            all(&cut),
            Err(PcapError::Truncated { needed: 16, got: 3 })
        ));
    }
}
