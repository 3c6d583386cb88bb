//! The agent's view of the pending table (`sensor_common::pending`): the slots of flows that
//! were never confirmed, read through a read-only memory mapping of the kernel's array, so
//! that one sweep over 65,536 slots costs no system call. A slot idle past the new-flow timeout
//! (or every slot, at shutdown) becomes a flow record once; a slot the kernel overwrote first
//! is lost to the record and counted by the kernel (`precinct_pending_flows_total{event=
//! "overwritten"}`).

use std::ptr::{addr_of, NonNull};

use anyhow::{anyhow, Context as _};
use aya::{maps::MapData, Ebpf};
use sensor_common::{
    flow::{FlowKey, FlowStats},
    maps,
    pending::{state, Pending},
};

use crate::flows;

/// The memory-mapped pending table, and which flow of each slot was reported already.
pub struct PendingTable {
    base: NonNull<Pending>,
    slots: usize,
    mapped_bytes: usize,
    /// The `flow_id` of the last flow reported from each slot (0: none).
    reported: Vec<u64>,
    /// Keeps the map's descriptor open for as long as the mapping is used.
    _map: MapData,
}

// SAFETY: the mapping is read-only and only read through `&self`/`&mut self` methods; the
// kernel's concurrent writes are handled as torn reads (see `read_slot`), never as references.
unsafe impl Send for PendingTable {}

/// An unconfirmed flow read from its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unconfirmed {
    /// Its slot.
    pub slot: usize,
    /// The flow, as the flow map would hold it.
    pub key: FlowKey,
    /// Its counts.
    pub stats: FlowStats,
}

impl PendingTable {
    /// Maps the table of `ebpf` (`slots` as loaded); `None` when the table is off.
    pub fn take(ebpf: &mut Ebpf, slots: u32) -> anyhow::Result<Option<PendingTable>> {
        let map = ebpf
            .take_map(maps::PENDING)
            .ok_or_else(|| anyhow!("the eBPF object has no map {}", maps::PENDING))?;
        let aya::maps::Map::Array(data) = map else {
            return Err(anyhow!("{} is not an array", maps::PENDING));
        };
        if slots == 0 {
            return Ok(None);
        }
        let slots = slots as usize;
        let bytes = slots * std::mem::size_of::<Pending>();
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let mapped_bytes = bytes.div_ceil(page) * page;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(data.fd()));
        // SAFETY: a read-only shared mapping of an mmapable array map (BPF_F_MMAPABLE), whose
        // data starts at offset 0 and spans `bytes`, rounded up to whole pages.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_bytes,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context(
                "mapping the pending table into memory (it needs BPF_F_MMAPABLE, Linux 5.5)",
            );
        }
        let base = NonNull::new(ptr.cast::<Pending>())
            .ok_or_else(|| anyhow!("mmap of the pending table returned null"))?;
        Ok(Some(PendingTable {
            base,
            slots,
            mapped_bytes,
            reported: vec![0; slots],
            _map: data,
        }))
    }

    /// Slots in the table.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Slot `i` when it holds an unconfirmed flow and two reads of it agree (the kernel may be
    /// writing it at the same moment; a torn read is skipped and read again next sweep).
    fn read_slot(&self, i: usize) -> Option<Unconfirmed> {
        let read = || {
            // SAFETY: `i < slots`, inside the mapping; volatile reads of plain data the kernel
            // may change at any time (no reference to it is formed).
            unsafe {
                let p = self.base.as_ptr().add(i);
                (
                    addr_of!((*p).state).read_volatile(),
                    addr_of!((*p).key).read_volatile(),
                    addr_of!((*p).stats).read_volatile(),
                )
            }
        };
        let first = read();
        if first.0 != state::PENDING {
            return None;
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        (read() == first).then_some(Unconfirmed {
            slot: i,
            key: first.1,
            stats: first.2,
        })
    }

    /// Unconfirmed flows not reported yet: those idle for `idle_ns` at monotonic `now_ns`, or
    /// every one when `all`; at most `max`, the rest wait for the next call. Each is marked
    /// reported. Also returns how many slots hold an unconfirmed flow.
    pub fn ended(
        &mut self,
        now_ns: u64,
        idle_ns: u64,
        all: bool,
        max: usize,
    ) -> (Vec<Unconfirmed>, usize) {
        let mut out = Vec::new();
        let mut occupied = 0;
        for i in 0..self.slots {
            let Some(u) = self.read_slot(i) else {
                continue;
            };
            occupied += 1;
            let id = flows::flow_id(&u.key, u.stats.first_ns).max(1);
            if self.reported[i] == id || out.len() >= max {
                continue;
            }
            if all || now_ns.saturating_sub(u.stats.last_ns) >= idle_ns {
                self.reported[i] = id;
                out.push(u);
            }
        }
        (out, occupied)
    }
}

impl Drop for PendingTable {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `take`, of this size, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.mapped_bytes) };
    }
}
