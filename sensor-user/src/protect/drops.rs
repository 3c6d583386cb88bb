//! Drop events: the kernel sends the first bytes of (a rate-limited sample of) the packets it
//! dropped or would have dropped; this thread reads them and writes their EVE `drop` records
//! (built in [`crate::eve::drop`]).

use std::{
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

use sensor_common::maps;

use crate::{datapath::heads::parse_record, eve::EveWriter, flows::Clock};

pub use crate::eve::drop::{drop_record, Names};

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
