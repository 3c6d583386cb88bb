//! Capture files: pcap (all four magic numbers, micro- and nanosecond) and pcapng (any number
//! of interfaces, each with its own link type and timestamp resolution), read one packet at a
//! time through the `pcap-file` crate.

use std::{
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use pcap_file::{
    pcap::PcapReader,
    pcapng::{blocks::interface_description::InterfaceDescriptionOption, Block, PcapNgReader},
    DataLink,
};

/// One captured packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedPacket {
    /// Capture time, ns since the UNIX epoch.
    pub ts_ns: u64,
    /// Link type (tcpdump.org LINKTYPE_ value).
    pub linktype: u32,
    /// The captured bytes, from the link-layer header.
    pub data: Vec<u8>,
}

enum Inner {
    Pcap {
        reader: PcapReader<BufReader<File>>,
        linktype: u32,
    },
    PcapNg {
        reader: Box<PcapNgReader<BufReader<File>>>,
        /// (link type, ns per timestamp unit) per interface of the current section.
        interfaces: Vec<(u32, f64)>,
    },
}

/// Reads packets from a pcap or pcapng file.
pub struct CaptureReader {
    inner: Inner,
    path: PathBuf,
    packets: u64,
    /// Bytes of the file, for progress reporting.
    pub file_len: u64,
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

fn ns_per_unit(options: &[InterfaceDescriptionOption]) -> f64 {
    for o in options {
        if let InterfaceDescriptionOption::IfTsResol(r) = o {
            let exp = i32::from(r & 0x7f);
            // The high bit selects a power of two instead of a power of ten.
            return if r & 0x80 != 0 {
                1e9 / 2f64.powi(exp)
            } else {
                1e9 / 10f64.powi(exp)
            };
        }
    }
    1_000.0 // default: microseconds
}

impl CaptureReader {
    /// Opens `path`, telling pcap from pcapng by the magic number.
    pub fn open(path: &Path) -> anyhow::Result<CaptureReader> {
        let shown = path.display();
        let mut file = File::open(path).with_context(|| format!("opening the capture {shown}"))?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut magic = [0u8; 4];
        file.read_exact(&mut magic)
            .with_context(|| format!("{shown}: too short to be a capture file"))?;
        let file = File::open(path).with_context(|| format!("opening the capture {shown}"))?;
        let inner = if magic == PCAPNG_MAGIC {
            let reader = PcapNgReader::new(BufReader::new(file))
                .map_err(|e| anyhow::anyhow!("{shown}: not a readable pcapng file: {e}"))?;
            Inner::PcapNg {
                reader: Box::new(reader),
                interfaces: Vec::new(),
            }
        } else {
            let reader = PcapReader::new(BufReader::new(file)).map_err(|e| {
                anyhow::anyhow!(
                    "{shown}: not a pcap or pcapng file ({e}); write captures with tcpdump -w or \
                     tshark -w"
                )
            })?;
            let linktype = u32::from(reader.header().datalink);
            Inner::Pcap { reader, linktype }
        };
        Ok(CaptureReader {
            inner,
            path: path.to_path_buf(),
            packets: 0,
            file_len,
        })
    }

    /// Packets returned so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The next packet, `Ok(None)` at the end, or an error naming the file and the packet
    /// after which the damage starts.
    pub fn next_packet(&mut self) -> anyhow::Result<Option<CapturedPacket>> {
        let after = self.packets;
        let shown = self.path.display();
        let damaged = |e: pcap_file::PcapError| {
            anyhow::anyhow!(
                "{shown}: damaged after packet {after}: {e}; the packets before it were processed"
            )
        };
        let packet = match &mut self.inner {
            Inner::Pcap { reader, linktype } => match reader.next_packet() {
                None => return Ok(None),
                Some(Err(e)) => return Err(damaged(e)),
                Some(Ok(p)) => CapturedPacket {
                    ts_ns: p.timestamp.as_nanos() as u64,
                    linktype: *linktype,
                    data: p.data.into_owned(),
                },
            },
            Inner::PcapNg { reader, interfaces } => loop {
                let block = match reader.next_block() {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(damaged(e)),
                    Some(Ok(b)) => b,
                };
                match block {
                    Block::SectionHeader(_) => interfaces.clear(),
                    Block::InterfaceDescription(idb) => {
                        interfaces.push((u32::from(idb.linktype), ns_per_unit(&idb.options)));
                    }
                    Block::EnhancedPacket(epb) => {
                        let Some(&(linktype, scale)) = interfaces.get(epb.interface_id as usize)
                        else {
                            bail!(
                                "{shown}: packet {} names interface {} which the file never \
                                 described",
                                after + 1,
                                epb.interface_id
                            );
                        };
                        // pcap-file hands over the raw timestamp units as nanoseconds.
                        let units = epb.timestamp.as_nanos() as f64;
                        break CapturedPacket {
                            ts_ns: (units * scale) as u64,
                            linktype,
                            data: epb.data.into_owned(),
                        };
                    }
                    Block::SimplePacket(spb) => {
                        let linktype = interfaces
                            .first()
                            .map(|i| i.0)
                            .unwrap_or(u32::from(DataLink::ETHERNET));
                        break CapturedPacket {
                            ts_ns: 0,
                            linktype,
                            data: spb.data.into_owned(),
                        };
                    }
                    _ => {}
                }
            },
        };
        self.packets += 1;
        Ok(Some(packet))
    }
}
