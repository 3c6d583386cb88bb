//! Batched reads and deletes of the per-CPU flow map (`BPF_MAP_LOOKUP_BATCH`,
//! `BPF_MAP_DELETE_BATCH`, Linux 5.6): a sweep of a full 262,144-entry map costs a few hundred
//! system calls instead of two per entry, so that a flood that fills the map does not keep the
//! agent busy for seconds after it.

use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd};

use sensor_common::flow::{FlowKey, FlowStats};

/// Keys asked for per call. A bucket holding more than this is answered with `ENOSPC`, and the
/// call is repeated with room for more.
const BATCH: usize = 4096;

pub(crate) const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// `union bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
pub(crate) struct BatchAttr {
    pub in_batch: u64,
    pub out_batch: u64,
    pub keys: u64,
    pub values: u64,
    pub count: u32,
    pub map_fd: u32,
    pub elem_flags: u64,
    pub flags: u64,
}

/// Runs one batch command; `Err` carries the errno. The caller's buffers must be live,
/// writable and sized for `count` keys and values of the map's sizes.
pub(crate) fn batch_call(cmd: libc::c_long, attr: &mut BatchAttr) -> Result<(), std::io::Error> {
    // SAFETY: `attr` is a valid batch attribute of its own size; the buffers it points to
    // are live, writable and sized for `count` keys and values by the caller.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>(),
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Every flow of the per-CPU flow map behind `fd`, each entry's per-CPU values merged.
/// `cpus` is the number of possible CPUs (the kernel's per-CPU value layout).
pub fn read_flows(fd: BorrowedFd<'_>, cpus: usize) -> anyhow::Result<Vec<(FlowKey, FlowStats)>> {
    let mut out = Vec::new();
    let mut room = BATCH;
    let mut keys = vec![FlowKey::default(); room];
    let mut values = vec![FlowStats::default(); room * cpus];
    // The kernel's batch token for a hash map is a bucket index (`u32`).
    let (mut token_in, mut token_out) = (0u32, 0u32);
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                &token_in as *const u32 as u64
            },
            out_batch: &mut token_out as *mut u32 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: room as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let result = batch_call(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let got = attr.count as usize;
        let mut end = false;
        match result {
            Ok(()) => {}
            // The end of the map: `got` holds the last entries.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => end = true,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && got == 0 => {
                // One bucket holds more entries than there is room for: grow and retry it.
                room *= 2;
                keys.resize(room, FlowKey::default());
                values.resize(room * cpus, FlowStats::default());
                continue;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(
                    "reading the flow map in batches (BPF_MAP_LOOKUP_BATCH needs Linux 5.6)",
                ))
            }
        }
        for (i, key) in keys.iter().take(got).enumerate() {
            out.push((*key, FlowStats::merge(&values[i * cpus..(i + 1) * cpus])));
        }
        if end {
            return Ok(out);
        }
        token_in = token_out;
        first = false;
    }
}

/// Deletes `keys` from the map behind `fd`; a key already gone is skipped. Returns how many
/// were deleted.
pub fn delete_flows(fd: BorrowedFd<'_>, keys: &[FlowKey]) -> anyhow::Result<usize> {
    let mut deleted = 0;
    let mut rest = keys;
    while !rest.is_empty() {
        let n = rest.len().min(BATCH);
        let mut attr = BatchAttr {
            keys: rest.as_ptr() as u64,
            count: n as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        match batch_call(BPF_MAP_DELETE_BATCH, &mut attr) {
            Ok(()) => {
                deleted += n;
                rest = &rest[n..];
            }
            // The kernel stops at a key that is not there (a flow deleted since the read);
            // `count` says how many it deleted before it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let done = attr.count as usize;
                deleted += done;
                rest = &rest[(done + 1).min(rest.len())..];
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context("deleting ended flows from the flow map (BPF_MAP_DELETE_BATCH)"))
            }
        }
    }
    Ok(deleted)
}

/// The file descriptor of an aya map, for the raw calls above.
pub fn fd_of(map: &aya::maps::MapData) -> BorrowedFd<'_> {
    map.fd().as_fd()
}
