//! The address tables userspace loads into the kernel: folding every address fact (list
//! prefixes with their mask bits) into one mask per prefix that already carries the bits of
//! every shorter prefix containing it ([`aggregate`]), laying the result out as the kernel's
//! IPv4 /16 directory plus prefix hash and its IPv6 trie entries ([`build`]), and the host
//! models of the kernel lookup ([`Built::lookup`]) and of the plain meaning of the tables
//! ([`reference_mask`]) that tests hold against each other.

use std::{collections::BTreeMap, fmt};

use ahash::AHashMap;
use sensor_common::protect::{
    lookup4, mask4, Dir4, Pfx4Key, DIR4_BITS, DIR4_SLOTS, SUB4_WORDS, SUB6_WORDS,
};

use super::lists::Prefix;

/// Family, prefix length and address bits (IPv4 in the top 32 bits, as in [`Prefix::addr`]),
/// so one netmask function serves both families.
type Key = (u8, u8, u128);

fn netmask(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

/// The canonical key of `p` (host bits cleared, length clamped), `None` for an unknown family.
fn key(p: &Prefix) -> Option<Key> {
    let max = match p.family {
        4 => 32,
        6 => 128,
        _ => return None,
    };
    let len = p.len.min(max);
    Some((p.family, len, u128::from_be_bytes(p.addr) & netmask(len)))
}

fn prefix((family, len, bits): Key) -> Prefix {
    Prefix {
        family,
        addr: bits.to_be_bytes(),
        len,
    }
}

/// Merges duplicate prefixes (OR of their masks) and gives every prefix the OR of the masks of
/// all entries covering it, itself included: the longest match then answers alone. Entries of
/// a family other than 4 or 6 are dropped.
pub fn aggregate(entries: impl IntoIterator<Item = (Prefix, u32)>) -> BTreeMap<Prefix, u32> {
    let entries = entries.into_iter();
    let mut masks: AHashMap<Key, u32> = AHashMap::with_capacity(entries.size_hint().0);
    // Distinct prefixes by family (IPv4, IPv6) and length, so ancestors are only looked for
    // at lengths that exist: real lists use a handful of lengths.
    let mut by_len: [Vec<Vec<u128>>; 2] = [vec![Vec::new(); 33], vec![Vec::new(); 129]];
    for (p, m) in entries {
        let Some(k) = key(&p) else { continue };
        let mut fresh = false;
        masks
            .entry(k)
            .and_modify(|old| *old |= m)
            .or_insert_with(|| {
                fresh = true;
                m
            });
        if fresh {
            by_len[usize::from(k.0 == 6)][usize::from(k.1)].push(k.2);
        }
    }
    for (family, lens) in [4u8, 6].into_iter().zip(&by_len) {
        let mut present: Vec<u8> = Vec::new();
        for (len, bits) in (0u8..).zip(lens) {
            if bits.is_empty() {
                continue;
            }
            // Ascending lengths: an ancestor's mask is final before its descendants read it,
            // and already holds its own ancestors' bits, so the longest one is enough.
            for &b in bits {
                let inherited = present
                    .iter()
                    .rev()
                    .find_map(|&l| masks.get(&(family, l, b & netmask(l))).copied());
                if let (Some(up), Some(m)) = (inherited, masks.get_mut(&(family, len, b))) {
                    *m |= up;
                }
            }
            present.push(len);
        }
    }
    masks.into_iter().map(|(k, m)| (prefix(k), m)).collect()
}

/// Aggregated tables in the kernel's layout, generation 0 (the loader sets the generation it
/// fills).
#[derive(Clone)]
pub struct Built {
    /// The IPv4 /16 directory, exactly [`DIR4_SLOTS`] slots indexed by `addr >> 16`.
    pub dir4: Vec<Dir4>,
    /// The /24 bitmap, exactly [`SUB4_WORDS`] words: bit `addr >> 8` is set when a prefix
    /// longer than /16 covers or lies inside that /24.
    pub sub4: Vec<u64>,
    /// IPv4 prefixes longer than /16, sorted by key.
    pub pfx4: Vec<(Pfx4Key, u32)>,
    /// IPv6 prefixes, sorted.
    pub v6: Vec<(Prefix, u32)>,
    /// The IPv6 /24 bitmap, exactly [`SUB6_WORDS`] words: bit `top24(addr)` is set when an
    /// IPv6 prefix covers or lies inside that /24. The kernel skips its trie when it is clear;
    /// [`Built::lookup`] does not use it, so the kernel tests check it against the trie.
    pub sub6: Vec<u64>,
    /// IPv6 prefix lengths present, longest first.
    v6_lens: Vec<u8>,
}

/// Lays aggregated prefixes (as [`aggregate`] returns them) out as the kernel's tables.
pub fn build(aggregated: &BTreeMap<Prefix, u32>) -> Built {
    let mut dir4 = vec![Dir4::default(); DIR4_SLOTS as usize];
    let mut sub4 = vec![0u64; SUB4_WORDS as usize];
    let mut sub6 = vec![0u64; SUB6_WORDS as usize];
    let mut short = Vec::new();
    let mut pfx4 = Vec::new();
    let mut v6 = Vec::new();
    let mut v6_present = [false; 129];
    for (p, &m) in aggregated {
        let Some((family, len, bits)) = key(p) else {
            continue;
        };
        if family == 6 {
            let first = (bits >> 104) as u32;
            let count = 1u32 << 24u32.saturating_sub(u32::from(len));
            for s24 in first..first + count {
                sub6[(s24 >> 6) as usize] |= 1 << (s24 & 63);
            }
            v6.push((prefix((family, len, bits)), m));
            v6_present[usize::from(len)] = true;
            continue;
        }
        let addr = (bits >> 96) as u32 & mask4(u32::from(len));
        if u32::from(len) <= DIR4_BITS {
            short.push((len, addr, m));
        } else {
            pfx4.push((
                Pfx4Key {
                    addr: addr.to_be_bytes(),
                    len,
                    gen: 0,
                    _pad: [0; 2],
                },
                m,
            ));
            dir4[(addr >> DIR4_BITS) as usize].lens |= 1 << (u32::from(len) - DIR4_BITS - 1);
            // The /24s this prefix touches: 2^(24 - len) of them up to /24, else its own.
            let first = addr >> 8;
            let count = 1u32 << 24u32.saturating_sub(u32::from(len));
            for s24 in first..first + count {
                sub4[(s24 >> 6) as usize] |= 1 << (s24 & 63);
            }
        }
    }
    // Shorter first, so a slot ends with the mask of the longest prefix covering it; that mask
    // already includes the shorter ones'. Prefixes of one length are disjoint.
    short.sort_unstable_by_key(|&(len, ..)| len);
    for (len, addr, m) in short {
        let first = (addr >> DIR4_BITS) as usize;
        let count = 1usize << (DIR4_BITS - u32::from(len));
        for slot in &mut dir4[first..first + count] {
            slot.mask = m;
        }
    }
    // Sorted input gives sorted output; sorting again keeps `lookup`'s binary searches right
    // for any input and costs little on sorted data.
    pfx4.sort_unstable_by_key(|&(k, _)| k);
    v6.sort_unstable_by_key(|&(p, _)| p);
    let v6_lens = (0..=128u8)
        .rev()
        .filter(|&l| v6_present[usize::from(l)])
        .collect();
    Built {
        dir4,
        sub4,
        pfx4,
        v6,
        sub6,
        v6_lens,
    }
}

impl Built {
    /// The mask the kernel finds for `addr` (layout as [`Prefix::addr`]): IPv4 through the
    /// shared [`lookup4`] over these tables, IPv6 by longest prefix match; 0 when nothing
    /// matches or the family is unknown.
    pub fn lookup(&self, family: u8, addr: &[u8; 16]) -> u32 {
        match family {
            4 => lookup4(
                0,
                u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]),
                |i| self.dir4.get(i as usize).copied(),
                |i| self.sub4.get(i as usize).copied(),
                |k| {
                    self.pfx4
                        .binary_search_by_key(k, |&(key, _)| key)
                        .ok()
                        .map(|i| self.pfx4[i].1)
                },
            ),
            6 => {
                let bits = u128::from_be_bytes(*addr);
                self.v6_lens
                    .iter()
                    .find_map(|&len| {
                        let p = prefix((6, len, bits & netmask(len)));
                        self.v6
                            .binary_search_by_key(&p, |&(q, _)| q)
                            .ok()
                            .map(|i| self.v6[i].1)
                    })
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Built")
            .field("dir4_slots", &self.dir4.len())
            .field("pfx4", &self.pfx4.len())
            .field("v6", &self.v6.len())
            .finish()
    }
}

/// The plain meaning of raw, un-aggregated entries: the OR of the masks of every entry
/// containing `addr`. Linear, for checking [`aggregate`], [`build`] and the kernel.
pub fn reference_mask(entries: &[(Prefix, u32)], family: u8, addr: &[u8; 16]) -> u32 {
    entries
        .iter()
        .filter(|(p, _)| p.contains(family, addr))
        .fold(0, |acc, (_, m)| acc | m)
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
