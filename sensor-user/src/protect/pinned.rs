//! The `precinct block` entries, kept in a pinned map beside the datapath: they live as long as
//! the pinned tables that enforce them, so the next agent starts with the same manual blocks
//! (reasons, added times and TTLs included) and its first table swap keeps them in force.
//!
//! The map is userspace's alone (no program reads it); its records are fixed-size, and a reason
//! longer than [`REASON_BYTES`] is cut at a character boundary.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use aya::maps::{HashMap, Map, MapData};
use log::warn;

use crate::{
    datapath::pin::PinDir,
    protect::{
        control::{ManualBlocks, ManualEntry},
        lists::Prefix,
    },
};

/// Bytes of a reason kept.
pub const REASON_BYTES: usize = 232;
/// Entries the map can hold (allocated as used).
const MAX_ENTRIES: u32 = 1 << 20;
const BPF_F_NO_PREALLOC: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StoredKey {
    family: u8,
    len: u8,
    _pad: [u8; 2],
    addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct StoredEntry {
    added_unix: u64,
    /// 0: no TTL.
    expires_unix: u64,
    reason_len: u32,
    _pad: u32,
    reason: [u8; REASON_BYTES],
}

const _: () = assert!(size_of::<StoredKey>() == 20 && size_of::<StoredEntry>() == 256);

// SAFETY: `#[repr(C)]` integers and byte arrays with explicit padding: every bit pattern is
// valid.
unsafe impl aya::Pod for StoredKey {}
// SAFETY: as above.
unsafe impl aya::Pod for StoredEntry {}

/// The pinned store, and what it holds (so a save writes only what changed).
pub struct ManualStore {
    map: HashMap<MapData, StoredKey, StoredEntry>,
    saved: BTreeMap<String, ManualEntry>,
}

fn key(p: &Prefix) -> StoredKey {
    StoredKey {
        family: p.family,
        len: p.len,
        _pad: [0; 2],
        addr: p.addr,
    }
}

fn prefix(k: &StoredKey) -> Option<Prefix> {
    let ip = match k.family {
        4 => IpAddr::from([k.addr[0], k.addr[1], k.addr[2], k.addr[3]]),
        6 => IpAddr::from(k.addr),
        _ => return None,
    };
    Prefix::new(ip, k.len).ok()
}

fn entry(e: &ManualEntry) -> StoredEntry {
    let mut reason = [0u8; REASON_BYTES];
    let text = e.reason.as_deref().unwrap_or("");
    let mut n = text.len().min(REASON_BYTES);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    reason[..n].copy_from_slice(&text.as_bytes()[..n]);
    StoredEntry {
        added_unix: e.added_unix,
        expires_unix: e.expires_unix.unwrap_or(0),
        // An absent reason and an empty one are told apart by the top bit.
        reason_len: if e.reason.is_some() {
            n as u32 | 1 << 31
        } else {
            0
        },
        _pad: 0,
        reason,
    }
}

impl ManualStore {
    /// Opens the store pinned in `dir`, or creates and pins an empty one.
    pub fn open(dir: &PinDir) -> anyhow::Result<ManualStore> {
        let path = dir.state_path("manual-blocks");
        if path.exists() {
            let opened = MapData::from_pin(&path)
                .map_err(anyhow::Error::from)
                .and_then(|d| Ok(HashMap::try_from(Map::HashMap(d))?));
            match opened {
                Ok(map) => {
                    return Ok(ManualStore {
                        map,
                        saved: BTreeMap::new(),
                    })
                }
                Err(e) => {
                    warn!(
                        "{}: not a manual-block store this precinct can read ({e:#}); the manual \
                         blocks it held are dropped",
                        path.display()
                    );
                    std::fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                }
            }
        }
        let map: HashMap<MapData, StoredKey, StoredEntry> =
            HashMap::create(MAX_ENTRIES, BPF_F_NO_PREALLOC)
                .context("creating the manual-block store map")?;
        map.pin(&path)
            .with_context(|| format!("pinning {}", path.display()))?;
        let map = HashMap::try_from(Map::HashMap(
            MapData::from_pin(&path).context("reopening the manual-block store")?,
        ))?;
        Ok(ManualStore {
            map,
            saved: BTreeMap::new(),
        })
    }

    /// The entries stored, as a [`ManualBlocks`] of `capacity`; expired ones are left out
    /// (and removed at the next save).
    pub fn load(&mut self, capacity: usize, now: SystemTime) -> ManualBlocks {
        let mut blocks = ManualBlocks::new(capacity);
        let now_unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut stale = Vec::new();
        for item in self.map.iter() {
            let Ok((k, v)) = item else { continue };
            let Some(p) = prefix(&k) else {
                stale.push(k);
                continue;
            };
            if v.expires_unix != 0 && v.expires_unix <= now_unix {
                stale.push(k);
                continue;
            }
            let n = (v.reason_len & !(1 << 31)) as usize;
            let reason = (v.reason_len != 0)
                .then(|| String::from_utf8_lossy(&v.reason[..n.min(REASON_BYTES)]).into_owned());
            let added = UNIX_EPOCH + Duration::from_secs(v.added_unix);
            let ttl = (v.expires_unix != 0)
                .then(|| Duration::from_secs(v.expires_unix.saturating_sub(v.added_unix).max(1)));
            if let Err(e) = blocks.add(p, ttl, reason, added) {
                warn!("manual block {p} from the pinned store not restored: {e}");
            }
        }
        for k in stale {
            let _ = self.map.remove(&k);
        }
        self.saved = blocks
            .entries()
            .into_iter()
            .map(|e| (e.cidr.clone(), e))
            .collect();
        blocks
    }

    /// Makes the store hold exactly `blocks`.
    pub fn save(&mut self, blocks: &ManualBlocks) -> anyhow::Result<()> {
        let now: BTreeMap<String, ManualEntry> = blocks
            .entries()
            .into_iter()
            .map(|e| (e.cidr.clone(), e))
            .collect();
        for cidr in self.saved.keys().filter(|c| !now.contains_key(*c)) {
            if let Ok(p) = cidr.parse::<Prefix>() {
                match self.map.remove(&key(&p)) {
                    Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                    Err(e) => return Err(e).context("removing from the manual-block store"),
                }
            }
        }
        for (cidr, e) in &now {
            if self.saved.get(cidr) == Some(e) {
                continue;
            }
            let p: Prefix = cidr.parse()?;
            self.map
                .insert(key(&p), entry(e), 0)
                .context("writing the manual-block store")?;
        }
        self.saved = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_reasons_are_cut_at_a_character() {
        for s in ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7/32"] {
            let p: Prefix = s.parse().expect("prefix");
            assert_eq!(prefix(&key(&p)), Some(p));
        }
        let long = "é".repeat(200);
        let e = entry(&ManualEntry {
            cidr: "192.0.2.0/24".into(),
            reason: Some(long),
            added_unix: 5,
            expires_unix: None,
        });
        let n = (e.reason_len & !(1 << 31)) as usize;
        assert_eq!(n, REASON_BYTES);
        assert!(std::str::from_utf8(&e.reason[..n]).is_ok());
        let none = entry(&ManualEntry {
            cidr: "192.0.2.0/24".into(),
            reason: None,
            added_unix: 5,
            expires_unix: Some(9),
        });
        assert_eq!((none.reason_len, none.expires_unix), (0, 9));
    }
}
