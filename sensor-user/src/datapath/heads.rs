//! The flow-head side of the kernel as userspace sees it: the settings written after load, the
//! per-flow control map (bypass / keep), and the records read from the `PRECINCT_HEADS` ring
//! buffer (see `sensor_common::head` for what the kernel sends and why).

use std::collections::HashSet;

use anyhow::{anyhow, Context as _};
use aya::{
    maps::{Array, HashMap, MapData, RingBuf},
    Ebpf,
};
use sensor_common::{
    flow::FlowKey,
    head::{mode, HeadRecord, Settings, RECORD_HEADER},
    maps,
    parse::ethertype,
};

/// Writes the head settings into a loaded object (before its programs are attached or run).
pub fn write_settings(ebpf: &mut Ebpf, settings: &Settings) -> anyhow::Result<()> {
    let map = ebpf
        .map_mut(maps::SETTINGS)
        .ok_or_else(|| anyhow!("the eBPF object has no map {}", maps::SETTINGS))?;
    let mut array: Array<_, Settings> = Array::try_from(map).context("settings map")?;
    array
        .set(0, settings, 0)
        .context("writing the head settings")
}

/// The head settings in a loaded object's map (those of the agent before, for pinned maps).
pub fn read_settings(ebpf: &mut Ebpf) -> anyhow::Result<Settings> {
    let map = ebpf
        .map_mut(maps::SETTINGS)
        .ok_or_else(|| anyhow!("the eBPF object has no map {}", maps::SETTINGS))?;
    let array: Array<_, Settings> = Array::try_from(map).context("settings map")?;
    array.get(&0, 0).context("reading the head settings")
}

/// The ring buffer of flow heads, taken out of a loaded object.
pub fn take_ring(ebpf: &mut Ebpf) -> anyhow::Result<RingBuf<MapData>> {
    let map = ebpf
        .take_map(maps::HEADS)
        .ok_or_else(|| anyhow!("the eBPF object has no map {}", maps::HEADS))?;
    RingBuf::try_from(map).context("opening the flow-head ring buffer")
}

/// What userspace may ask the kernel to do with one flow's packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadMode {
    /// The head and samples, as configured.
    Normal,
    /// Nothing more.
    Bypass,
    /// Every packet.
    Keep,
}

impl HeadMode {
    fn value(self) -> u32 {
        u32::from(match self {
            HeadMode::Normal => mode::NORMAL,
            HeadMode::Bypass => mode::BYPASS,
            HeadMode::Keep => mode::KEEP,
        })
    }
}

/// The per-flow control map and the settings whose epoch tells the programs it changed.
pub struct HeadControl {
    settings_map: Array<MapData, Settings>,
    control: HashMap<MapData, FlowKey, u32>,
    settings: Settings,
    /// Keys with an entry, so that forgetting a flow costs no system call in the usual case.
    marked: HashSet<FlowKey>,
}

impl HeadControl {
    /// Takes the settings and control maps out of `ebpf`; `settings` is what was written.
    pub fn take(ebpf: &mut Ebpf, settings: Settings) -> anyhow::Result<HeadControl> {
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| anyhow!("the eBPF object has no map {name}"))
        };
        let settings_map = Array::try_from(take(ebpf, maps::SETTINGS)?).context("settings map")?;
        let control: HashMap<MapData, FlowKey, u32> =
            HashMap::try_from(take(ebpf, maps::HEAD_CONTROL)?).context("control map")?;
        // Entries an earlier agent left in a pinned map: this one forgets them when their
        // flows end.
        let marked = control.keys().filter_map(Result::ok).collect();
        Ok(HeadControl {
            settings_map,
            control,
            settings,
            marked,
        })
    }

    /// Sets a flow's mode (`key` as in the flow map and in [`HeadRecord::key`]). The programs
    /// apply it from the flow's next packet on each CPU.
    pub fn set(&mut self, key: &FlowKey, m: HeadMode) -> anyhow::Result<()> {
        if m == HeadMode::Normal {
            if !self.marked.remove(key) {
                return Ok(());
            }
            match self.control.remove(key) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(e).context("removing from the head control map"),
            }
        } else {
            self.control
                .insert(key, m.value(), 0)
                .context("writing the head control map (is it full?)")?;
            self.marked.insert(*key);
        }
        self.settings.control_epoch = self.settings.control_epoch.wrapping_add(1);
        self.settings_map
            .set(0, self.settings, 0)
            .context("writing the head settings")
    }

    /// Drops a flow's entry without telling the programs (the flow has left the flow map, so
    /// no value holds its mode any more).
    pub fn forget(&mut self, key: &FlowKey) -> anyhow::Result<()> {
        if !self.marked.remove(key) {
            return Ok(());
        }
        match self.control.remove(key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(e).context("removing from the head control map"),
        }
    }

    /// The settings as last written.
    pub fn settings(&self) -> Settings {
        self.settings
    }
}

/// Splits a ring-buffer record into its header and frame bytes; `None` when it is shorter
/// than its header says (never from a well-behaved kernel program).
pub fn parse_record(bytes: &[u8]) -> Option<(HeadRecord, &[u8])> {
    let head = bytes.get(..RECORD_HEADER)?;
    // SAFETY: `HeadRecord` is `repr(C)` plain data of RECORD_HEADER bytes, valid for any bit
    // pattern; the read is unaligned-safe.
    let rec = unsafe { std::ptr::read_unaligned(head.as_ptr() as *const HeadRecord) };
    let frame = bytes.get(RECORD_HEADER..RECORD_HEADER + usize::from(rec.cap_len))?;
    Some((rec, frame))
}

/// Makes a truncated frame consistent with what it holds: the IP length field is cut to the
/// captured bytes, so the parser accepts the packet, inspection sees the bytes that were
/// captured, and the rest becomes a gap in the stream. Returns `false` when the frame has no
/// IP header to fix (VLAN tags are followed; anything else is left alone).
pub fn fit_truncated(frame: &mut [u8]) -> bool {
    let mut off = 12;
    for _ in 0..3 {
        let Some(et) = frame.get(off..off + 2) else {
            return false;
        };
        let et = u16::from_be_bytes([et[0], et[1]]);
        if et == ethertype::VLAN || et == ethertype::QINQ {
            off += 4;
            continue;
        }
        let l3 = off + 2;
        let avail = frame.len().saturating_sub(l3);
        match et {
            ethertype::IPV4 if avail >= 20 && frame[l3] >> 4 == 4 => {
                let total = u16::try_from(avail).unwrap_or(u16::MAX);
                frame[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
                return true;
            }
            ethertype::IPV6 if avail >= 40 => {
                let payload = u16::try_from(avail - 40).unwrap_or(u16::MAX);
                frame[l3 + 4..l3 + 6].copy_from_slice(&payload.to_be_bytes());
                return true;
            }
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_common::parse::{parse, Outcome};

    fn v4_tcp(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let total = (20 + 20 + payload) as u16;
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        f.extend_from_slice(&tcp);
        f.extend(std::iter::repeat_n(b'x', payload));
        f
    }

    #[test]
    fn truncated_frames_parse_as_the_bytes_they_hold() {
        let mut f = v4_tcp(6000);
        f.truncate(4096);
        assert_eq!(parse(f.as_slice()).outcome, Outcome::BadIpv4TotalLength);
        assert!(fit_truncated(&mut f));
        let p = parse(f.as_slice());
        assert_eq!(p.outcome, Outcome::Ok);
        assert_eq!(p.ip_end, 4096);
        assert_eq!(p.payload_off, 54);
    }

    #[test]
    fn records_split_into_header_and_frame() {
        let rec = HeadRecord {
            ts_ns: 7,
            flow_first_ns: 5,
            cap_len: 3,
            hook: 1,
            ..Default::default()
        };
        let mut bytes = vec![0u8; RECORD_HEADER];
        // SAFETY: writing a plain-data struct into a buffer of its size.
        unsafe { std::ptr::write_unaligned(bytes.as_mut_ptr() as *mut HeadRecord, rec) };
        bytes.extend_from_slice(&[1, 2, 3, 0, 0]);
        let (got, frame) = parse_record(&bytes).expect("record");
        assert_eq!(got, rec);
        assert_eq!(frame, &[1, 2, 3]);
        assert!(parse_record(&bytes[..RECORD_HEADER + 2]).is_none());
    }
}
