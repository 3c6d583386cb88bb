//! Drop events: the kernel sends the first bytes of (a rate-limited sample of) the packets it
//! dropped or would have dropped; this turns them into Suricata-shaped EVE `drop` records with
//! the reason, list and mode added.

use std::{
    collections::HashMap,
    os::fd::AsRawFd as _,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
};

use anyhow::{anyhow, Context as _};
use aya::{
    maps::{MapData, RingBuf},
    Ebpf,
};
use log::warn;
use serde_json::{json, Map, Value};

use sensor_common::{
    head::HeadRecord,
    maps,
    parse::{self, ipproto, FAMILY_IPV4},
    protect::{action, reason},
    Hook,
};

use crate::{
    eve::{self, EveWriter},
    flows::{self, Clock},
    heads::parse_record,
};

/// Names the record needs: lists by id, interfaces by index.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// List names by id.
    pub lists: Vec<String>,
    /// Interface names by index.
    pub ifaces: HashMap<u32, String>,
}

/// The EVE `drop` record for one drop-event record (header and frame bytes).
pub fn drop_record(rec: &HeadRecord, frame: &[u8], clock: &Clock, names: &Names) -> Value {
    let p = parse::parse(frame);
    let [why, list, act] = rec._pad;
    let mut r = Map::new();
    r.insert(
        "timestamp".into(),
        json!(eve::format_timestamp(clock.unix_ns(rec.ts_ns))),
    );
    if let Some(iface) = names.ifaces.get(&rec.key.ifindex) {
        let k = if rec.hook == Hook::Egress as u8 {
            "out_iface"
        } else {
            "in_iface"
        };
        r.insert(k.into(), json!(iface));
    }
    r.insert("event_type".into(), json!("drop"));
    if p.vlan != 0 {
        r.insert("vlan".into(), json!([p.vlan]));
    }
    r.insert(
        "src_ip".into(),
        json!(flows::ip_of(p.family, &p.src).to_string()),
    );
    let ports = matches!(p.proto, ipproto::TCP | ipproto::UDP);
    if ports {
        r.insert("src_port".into(), json!(p.sport));
    }
    r.insert(
        "dest_ip".into(),
        json!(flows::ip_of(p.family, &p.dst).to_string()),
    );
    if ports {
        r.insert("dest_port".into(), json!(p.dport));
    }
    r.insert("proto".into(), json!(eve::proto_name(p.proto)));
    if matches!(p.proto, ipproto::ICMP | ipproto::ICMPV6) {
        r.insert("icmp_type".into(), json!(p.icmp_type));
        r.insert("icmp_code".into(), json!(p.icmp_code));
    }
    let mut d = Map::new();
    d.insert("len".into(), json!(ip_len(frame, &p, rec.orig_len)));
    let l3 = usize::from(p.l3_off);
    let byte = |i: usize| frame.get(l3 + i).copied().unwrap_or(0);
    if p.family == FAMILY_IPV4 {
        d.insert("tos".into(), json!(byte(1)));
        d.insert("ttl".into(), json!(p.ttl));
        d.insert("ipid".into(), json!(u16::from_be_bytes([byte(4), byte(5)])));
    } else {
        d.insert("tc".into(), json!(((byte(0) & 0x0f) << 4) | (byte(1) >> 4)));
        d.insert("hoplimit".into(), json!(p.ttl));
        let fl = (u32::from(byte(1) & 0x0f) << 16) | (u32::from(byte(2)) << 8) | u32::from(byte(3));
        d.insert("flowlbl".into(), json!(fl));
    }
    let l4 = usize::from(p.l4_off);
    let get = |i: usize, n: usize| frame.get(l4 + i..l4 + i + n);
    if p.proto == ipproto::TCP {
        if let (Some(seq), Some(ack), Some(win)) = (get(4, 4), get(8, 4), get(14, 2)) {
            d.insert(
                "tcpseq".into(),
                json!(u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]])),
            );
            d.insert(
                "tcpack".into(),
                json!(u32::from_be_bytes([ack[0], ack[1], ack[2], ack[3]])),
            );
            d.insert("tcpwin".into(), json!(u16::from_be_bytes([win[0], win[1]])));
        }
        let f = p.tcp_flags;
        for (name, bit) in [
            ("syn", 0x02),
            ("ack", 0x10),
            ("psh", 0x08),
            ("rst", 0x04),
            ("urg", 0x20),
            ("fin", 0x01),
        ] {
            d.insert(name.into(), json!(f & bit != 0));
        }
    } else if p.proto == ipproto::UDP {
        if let Some(len) = get(4, 2) {
            d.insert("udplen".into(), json!(u16::from_be_bytes([len[0], len[1]])));
        }
    }
    let reason_name = reason::NAMES
        .get(usize::from(why))
        .copied()
        .unwrap_or("unknown");
    d.insert("reason".into(), json!(reason_name));
    if let Some(name) = names
        .lists
        .get(usize::from(list))
        .filter(|n| !n.is_empty() && *n != "none")
    {
        d.insert("list".into(), json!(name));
    }
    d.insert(
        "mode".into(),
        json!(if act == action::DROP {
            "prevent"
        } else {
            "monitor"
        }),
    );
    d.insert(
        "hook".into(),
        json!(if rec.hook == Hook::Egress as u8 {
            "egress"
        } else {
            "ingress"
        }),
    );
    r.insert("drop".into(), Value::Object(d));
    Value::Object(r)
}

/// The IP packet's length (its header says), or the frame's length less L2.
fn ip_len(frame: &[u8], p: &parse::Parsed, orig_len: u32) -> u32 {
    let l3 = usize::from(p.l3_off);
    match (p.family, frame.get(l3 + 2..l3 + 6)) {
        (FAMILY_IPV4, Some(b)) => u32::from(u16::from_be_bytes([b[0], b[1]])),
        (_, Some(b)) if p.family != 0 => 40 + u32::from(u16::from_be_bytes([b[2], b[3]])),
        _ => orig_len.saturating_sub(l3 as u32),
    }
}

/// The thread that turns drop events into EVE records.
pub struct DropEvents {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DropEvents {
    /// Takes the drop-event ring out of `ebpf` and starts reading it into `eve`.
    pub fn start(ebpf: &mut Ebpf, eve: EveWriter, names: Names) -> anyhow::Result<DropEvents> {
        let map = ebpf
            .take_map(maps::DROPS)
            .ok_or_else(|| anyhow!("the eBPF object has no map {}", maps::DROPS))?;
        let ring = RingBuf::try_from(map).context("opening the drop-event ring buffer")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("precinct-drops".into())
            .spawn(move || read(ring, eve, names, &flag))
            .context("starting the drop-event reader thread")?;
        Ok(DropEvents {
            stop,
            thread: Some(thread),
        })
    }

    /// Writes what is left in the ring and stops.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DropEvents {
    fn drop(&mut self) {
        self.halt();
    }
}

fn read(mut ring: RingBuf<MapData>, mut eve: EveWriter, names: Names, stop: &AtomicBool) {
    let fd = ring.as_raw_fd();
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let clock = Clock::now();
        let mut wrote = false;
        while let Some(item) = ring.next() {
            let Some((rec, frame)) = parse_record(&item) else {
                continue;
            };
            if let Err(e) = eve.write(&drop_record(&rec, frame, &clock, &names)) {
                warn!("writing a drop event: {e:#}");
            }
            wrote = true;
        }
        if wrote {
            if let Err(e) = eve.flush() {
                warn!("flushing drop events: {e:#}");
            }
        }
        if stopping {
            return;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the ring's descriptor, which `ring` keeps open.
        unsafe { libc::poll(&mut pfd, 1, 200) };
    }
}
