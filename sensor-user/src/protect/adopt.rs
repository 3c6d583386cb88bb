//! Taking over protection maps that an earlier agent filled (the datapath pinned, see
//! `crate::pin`): what [`Protect`] remembers of the kernel tables is read back from them, so
//! the next swap writes the right differences and clears the right keys.

use anyhow::Context as _;
use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::{
    maps::{Array, IterableMap as _, MapData},
    Pod,
};
use sensor_common::protect::{DIR4_SLOTS, SUB4_WORDS, SUB6_WORDS};

use super::{lists::Prefix, Protect};
use crate::datapath::batch::{batch_call, BatchAttr, BPF_MAP_LOOKUP_BATCH};

/// Reads `out.len()` elements of `map` from index `first`: in one `BPF_MAP_LOOKUP_BATCH` where
/// the kernel has it (5.6), else one lookup each.
fn read<T: Pod>(
    map: &Array<MapData, T>,
    first: u32,
    out: &mut [T],
    what: &str,
) -> anyhow::Result<()> {
    if lookup_batch(map.map(), first, out).is_ok() {
        return Ok(());
    }
    for (i, slot) in (first..).zip(out.iter_mut()) {
        *slot = map
            .get(&i, 0)
            .with_context(|| format!("reading the pinned {what}"))?;
    }
    Ok(())
}

/// Array elements `first..first + out.len()` in one system call.
fn lookup_batch<T: Pod>(map: &MapData, first: u32, out: &mut [T]) -> std::io::Result<()> {
    let count = u32::try_from(out.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut keys = vec![0u32; out.len()];
    // The batch position is the last key read: the element before `first`.
    let before = first.wrapping_sub(1);
    let mut next = 0u32;
    let mut attr = BatchAttr {
        in_batch: if first == 0 {
            0
        } else {
            &before as *const u32 as u64
        },
        out_batch: &mut next as *mut u32 as u64,
        keys: keys.as_mut_ptr() as u64,
        values: out.as_mut_ptr() as u64,
        count,
        map_fd: map.fd().as_fd().as_raw_fd() as u32,
        ..BatchAttr::default()
    };
    // The buffers hold `count` keys and values of the map's sizes (checked by aya when the
    // map was opened as `Array<_, T>`), alive for the call.
    let rc = batch_call(BPF_MAP_LOOKUP_BATCH, &mut attr);
    if attr.count == count {
        return Ok(());
    }
    Err(match rc {
        Err(e) => e,
        Ok(()) => std::io::ErrorKind::UnexpectedEof.into(),
    })
}

impl Protect {
    /// [`Protect::take`] for maps an earlier agent filled: learns the generation in use and
    /// what each generation holds from the kernel, removes the prefixes a crash mid-swap may
    /// have left in the unused generation, and rewrites the whole port bitmap. The policy in
    /// force stays until the first [`Protect::swap`].
    pub fn adopt(
        ebpf: &mut aya::Ebpf,
        ports: &[u64],
        capacity: (u32, u32),
    ) -> anyhow::Result<Protect> {
        let mut p = Self::open(ebpf, ports, capacity, true)?;
        p.policy = p
            .policy_map
            .get(&0, 0)
            .context("reading the pinned protection policy")?;
        let gen = p.policy.gen & 1;
        for g in 0..2u32 {
            let i = g as usize;
            read(&p.dir4, g * DIR4_SLOTS, &mut p.dirs[i], "IPv4 directory")?;
            read(&p.sub4, g * SUB4_WORDS, &mut p.subs[i], "IPv4 /24 bitmap")?;
            read(&p.sub6, g * SUB6_WORDS, &mut p.subs6[i], "IPv6 bitmap")?;
        }
        let mut stale4 = Vec::new();
        for k in p.pfx4.keys() {
            let k = k.context("reading the pinned IPv4 prefix table")?;
            if u32::from(k.gen) == gen {
                p.active4.push(k);
            } else {
                stale4.push(k);
            }
        }
        p.clear4(&stale4);
        let mut stale6 = Vec::new();
        for k in p.lpm6.keys() {
            let k = k.context("reading the pinned IPv6 table")?;
            let data = k.data();
            let mut addr = [0u8; 16];
            addr.copy_from_slice(&data[1..]);
            let prefix = Prefix {
                family: 6,
                addr,
                len: k.prefix_len().saturating_sub(8) as u8,
            };
            if u32::from(data[0]) == gen {
                p.active6.push(prefix);
            } else {
                stale6.push(prefix);
            }
        }
        p.clear6(gen ^ 1, &stale6);
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(not(privileged), ignore = "needs root: creates a BPF map")]
    fn batch_reads_equal_single_lookups() {
        let mut map: Array<MapData, u64> = Array::create(1000, 0).expect("array map");
        for i in 0..1000u32 {
            map.set(i, u64::from(i) * 7 + 1, 0).expect("set");
        }
        for (first, len) in [(0u32, 1000usize), (0, 1), (1, 999), (500, 250), (999, 1)] {
            let mut batch = vec![0u64; len];
            lookup_batch(map.map(), first, &mut batch).expect("batch lookup");
            let single: Vec<u64> = (first..first + len as u32)
                .map(|i| map.get(&i, 0).expect("get"))
                .collect();
            assert_eq!(batch, single, "{first}+{len}");
        }
        let mut past = vec![0u64; 10];
        assert!(lookup_batch(map.map(), 995, &mut past).is_err());
    }
}
