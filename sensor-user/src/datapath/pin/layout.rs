//! Which maps are pinned, and whether maps pinned by an earlier agent fit this build's
//! programs. The definitions come from the eBPF object itself, so they cannot drift from the
//! kernel code.
//!
//! A pinned map whose type, key or value size, flags or array length differ from this build's
//! definition would be misread by the new programs: the load is refused, and the error says how
//! to start over. A hash map, trie or ring buffer whose capacity alone differs (the operator
//! changed `flows.capacity`, `inspect.ring_bytes` or a protect capacity) is reused at its pinned
//! size, with a warning: the new size applies after `--unpin`.

use std::{collections::BTreeMap, sync::OnceLock};

use anyhow::{anyhow, bail, Context as _};
use aya::maps::MapInfo;
use log::warn;
use sensor_common::maps;

use super::PinDir;
use crate::datapath::{sized_maps, LoadOptions, EBPF_OBJECT};

/// How to get past a refused layout, for error messages.
pub const START_OVER: &str =
    "start over once with `precinct run --unpin` (fresh maps: flow counters and rate-limit \
     state restart from zero; the programs stay attached and are replaced in place; manual \
     blocks are kept), or remove the pin directory (`rm -r DIR`, which also detaches the \
     programs), or go back to the previous precinct";

/// Map types whose capacity can differ without changing what the programs read.
const RESIZABLE: [u32; 6] = [
    1,  // BPF_MAP_TYPE_HASH
    5,  // BPF_MAP_TYPE_PERCPU_HASH
    9,  // BPF_MAP_TYPE_LRU_HASH
    10, // BPF_MAP_TYPE_LRU_PERCPU_HASH
    11, // BPF_MAP_TYPE_LPM_TRIE
    27, // BPF_MAP_TYPE_RINGBUF
];
const RINGBUF: u32 = 27;

/// A map definition as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Def {
    map_type: u32,
    key: u32,
    value: u32,
    max_entries: u32,
    flags: u32,
}

impl std::fmt::Display for Def {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "type {}, key {} B, value {} B, {} entries, flags {:#x}",
            self.map_type, self.key, self.value, self.max_entries, self.flags
        )
    }
}

type Defs = Vec<(&'static str, Def)>;

/// Maps that hold nothing from one packet to the next: not pinned, so that a change to what
/// they hold (the parse result's layout, say) does not refuse an upgrade over pinned maps. A
/// pin of one left by an older agent is ignored.
const TRANSIENT: [&str; 1] = ["PRECINCT_SCRATCH"];

/// The `PRECINCT_*` maps of the object, as compiled (before load-time sizing).
fn defs() -> anyhow::Result<&'static Defs> {
    static DEFS: OnceLock<Result<Defs, aya_obj::ParseError>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let obj = aya_obj::Object::parse(EBPF_OBJECT)?;
        let mut out: Defs = obj
            .maps
            .iter()
            .filter(|(name, _)| {
                name.starts_with("PRECINCT_") && !TRANSIENT.contains(&name.as_str())
            })
            .map(|(name, m)| {
                let name: &'static str = Box::leak(name.clone().into_boxed_str());
                let def = Def {
                    map_type: m.map_type(),
                    key: m.key_size(),
                    value: m.value_size(),
                    max_entries: m.max_entries(),
                    flags: m.map_flags(),
                };
                (name, def)
            })
            .collect();
        out.sort_by_key(|(n, _)| *n);
        Ok(out)
    })
    .as_ref()
    .map_err(|e| anyhow!("parsing the eBPF object's map definitions: {e}"))
}

/// The maps pinned: every `PRECINCT_*` map of the object but the [`TRANSIENT`] ones.
pub fn pinned_names() -> anyhow::Result<Vec<&'static str>> {
    Ok(defs()?.iter().map(|(n, _)| *n).collect())
}

/// Whether any map is pinned in `dir` already.
pub fn any_pinned(dir: &PinDir) -> anyhow::Result<bool> {
    Ok(defs()?.iter().any(|(n, _)| dir.map_path(n).exists()))
}

/// The load plan over a pin directory.
pub struct Plan {
    /// `opts` with the capacities of the maps already pinned.
    pub opts: LoadOptions,
    /// `max_entries` for the loader: the sized maps of `opts`, and every pinned map's own.
    pub max_entries: Vec<(&'static str, u32)>,
}

/// Checks the maps pinned in `dir` against this build and `opts`; see the module docs.
pub fn reconcile(dir: &PinDir, opts: &LoadOptions) -> anyhow::Result<Plan> {
    let sized: BTreeMap<&str, u32> = sized_maps(opts).into_iter().collect();
    let mut max_entries: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut refused = Vec::new();
    let page = page_size();
    for (name, def) in defs()? {
        let mut want = *def;
        want.max_entries = sized.get(name).copied().unwrap_or(def.max_entries);
        if want.map_type == RINGBUF {
            // As the loader rounds it; key and value sizes mean nothing for a ring.
            want.max_entries = round_ring(want.max_entries, page);
            (want.key, want.value) = (0, 0);
        }
        max_entries.insert(name, want.max_entries);
        let path = dir.map_path(name);
        if !path.exists() {
            continue;
        }
        let info = MapInfo::from_pin(&path)
            .with_context(|| format!("opening the pinned map {}", path.display()))?;
        let have = Def {
            map_type: info.map_type().map(|t| t as u32).unwrap_or(u32::MAX),
            key: if want.map_type == RINGBUF {
                0
            } else {
                info.key_size()
            },
            value: if want.map_type == RINGBUF {
                0
            } else {
                info.value_size()
            },
            max_entries: info.max_entries(),
            flags: info.map_flags(),
        };
        if have == want {
            continue;
        }
        let resized = Def {
            max_entries: want.max_entries,
            ..have
        } == want;
        if resized && RESIZABLE.contains(&want.map_type) {
            warn!(
                "{name}: pinned with {} entries, configured for {}; it keeps {} until a \
                 restart with --unpin",
                have.max_entries, want.max_entries, have.max_entries
            );
            max_entries.insert(name, have.max_entries);
        } else {
            refused.push(format!(
                "{name}: pinned {have:?}, this build needs {want:?}"
            ));
        }
    }
    if !refused.is_empty() {
        bail!(
            "the maps pinned in {} do not fit this precinct's programs ({}); {}",
            dir.path().display(),
            refused.join("; "),
            START_OVER
        );
    }
    let effective = |name: &str, fallback: u32| max_entries.get(name).copied().unwrap_or(fallback);
    let plan_opts = LoadOptions {
        flow_capacity: effective(maps::FLOWS, opts.flow_capacity),
        ring_bytes: effective(maps::HEADS, opts.ring_bytes),
        v4_capacity: effective(maps::PFX4, 2 * opts.v4_capacity) / 2,
        v6_capacity: effective(maps::LPM6, 2 * opts.v6_capacity) / 2,
        ..*opts
    };
    Ok(Plan {
        opts: plan_opts,
        max_entries: max_entries.into_iter().collect(),
    })
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(p).unwrap_or(4096)
}

/// A ring's size as the loader makes it: a power-of-two number of pages.
fn round_ring(bytes: u32, page: u32) -> u32 {
    if bytes == 0 {
        return 0;
    }
    bytes.div_ceil(page).next_power_of_two() * page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_defines_the_maps_userspace_names() {
        let names = pinned_names().expect("definitions");
        for n in [
            maps::FLOWS,
            maps::COUNTERS,
            maps::HEADS,
            maps::POLICY,
            maps::DROPS,
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        assert!(names.iter().all(|n| n.starts_with("PRECINCT_")));
        assert!(
            !names.contains(&"PRECINCT_SCRATCH"),
            "per-packet scratch is not pinned: {names:?}"
        );
    }

    #[test]
    fn rings_round_as_the_loader_does() {
        assert_eq!(round_ring(4096, 4096), 4096);
        assert_eq!(round_ring(5000, 4096), 8192);
        assert_eq!(round_ring(3 * 4096, 4096), 4 * 4096);
        assert_eq!(round_ring(0, 4096), 0);
    }
}
