use std::{
    net::{Ipv4Addr, Ipv6Addr},
    time::Instant,
};

use super::*;

/// SplitMix64: deterministic, dependency-free test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }

    /// Mostly single list bits, sometimes a random mix or nothing at all.
    fn mask(&mut self) -> u32 {
        match self.below(10) {
            0 => self.next() as u32,
            1 => 0,
            _ => 1 << self.below(32),
        }
    }
}

fn v4(addr: u32, len: u8) -> Prefix {
    Prefix::new(Ipv4Addr::from(addr).into(), len).unwrap()
}

fn v6(addr: u128, len: u8) -> Prefix {
    Prefix::new(Ipv6Addr::from(addr).into(), len).unwrap()
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn a4(addr: u32) -> [u8; 16] {
    v4(addr, 32).addr
}

fn a6(addr: u128) -> [u8; 16] {
    addr.to_be_bytes()
}

/// The first and last address of `p`, as family-wide integers.
fn bounds(p: &Prefix) -> (u128, u128) {
    let bits = u128::from_be_bytes(p.addr);
    if p.family == 4 {
        let first = bits >> 96;
        (first, first | u128::from(!mask4(u32::from(p.len))))
    } else {
        (bits, bits | !netmask(p.len))
    }
}

fn addr_of(family: u8, x: u128) -> [u8; 16] {
    if family == 4 {
        a4(x as u32)
    } else {
        a6(x)
    }
}

/// A corpus with the edge cases the layout has: /0 and /1, both sides of the /16 directory
/// boundary, host routes, nesting, overlap and duplicates with other masks.
fn corpus(seed: u64, size: usize) -> Vec<(Prefix, u32)> {
    let mut rng = Rng(seed);
    // A few /8s and /32s hold most entries, so /16 slots and IPv6 paths are shared.
    let bases4: Vec<u32> = (0..4).map(|_| (rng.next() as u32) & 0xff00_0000).collect();
    let bases6: Vec<u128> = (0..4).map(|_| rng.u128() & netmask(32)).collect();
    let mut e = Vec::new();
    if seed.is_multiple_of(2) {
        e.push((p("0.0.0.0/0"), rng.mask()));
        e.push((p("::/0"), rng.mask()));
    }
    for s in [
        "128.0.0.0/1",
        "0.0.0.0/32",
        "255.255.255.255/32",
        "255.255.0.0/16",
        "0.0.0.0/15",
        "::/128",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        "8000::/1",
    ] {
        e.push((p(s), rng.mask()));
    }
    let lens4 = [1, 7, 8, 15, 16, 17, 20, 23, 24, 25, 31, 32];
    let lens6 = [1, 16, 29, 32, 48, 56, 63, 64, 65, 96, 127, 128];
    while e.len() < size {
        let m = rng.mask();
        match rng.below(8) {
            0..=2 => {
                let base = bases4[rng.below(4) as usize];
                let addr = base | (rng.next() as u32 & 0x00ff_ffff);
                let len = lens4[rng.below(lens4.len() as u64) as usize];
                e.push((v4(addr, len), m));
            }
            3..=4 => {
                let base = bases6[rng.below(4) as usize];
                let addr = base | (rng.u128() & !netmask(32));
                let len = lens6[rng.below(lens6.len() as u64) as usize];
                e.push((v6(addr, len), m));
            }
            5 => {
                // Nested inside an existing entry.
                let (q, _) = e[rng.below(e.len() as u64) as usize];
                let (first, last) = bounds(&q);
                let max = q.max_len();
                if q.len < max {
                    let len = q.len + 1 + rng.below(u64::from(max - q.len)) as u8;
                    let inner = first + rng.u128() % (last - first).saturating_add(1).max(1);
                    let inner = if q.family == 4 {
                        inner & 0xffff_ffff
                    } else {
                        inner
                    };
                    let np = if q.family == 4 {
                        v4(inner as u32, len)
                    } else {
                        v6(inner, len)
                    };
                    assert!(q.covers(&np));
                    e.push((np, m));
                }
            }
            6 => {
                // A duplicate with another mask.
                let (q, _) = e[rng.below(e.len() as u64) as usize];
                e.push((q, m));
            }
            _ => {
                // Anywhere at all.
                if rng.below(2) == 0 {
                    e.push((v4(rng.next() as u32, rng.below(33) as u8), m));
                } else {
                    e.push((v6(rng.u128(), rng.below(129) as u8), m));
                }
            }
        }
    }
    e
}

/// Every entry's first and last address and their neighbours, addresses inside random
/// entries, and random addresses.
fn probes(seed: u64, entries: &[(Prefix, u32)], random: usize) -> Vec<(u8, [u8; 16])> {
    let mut rng = Rng(seed ^ 0xdead_beef);
    let mut out = Vec::new();
    for (q, _) in entries {
        let (first, last) = bounds(q);
        let top = if q.family == 4 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        for x in [
            first,
            last,
            first.wrapping_sub(1) & top,
            last.wrapping_add(1) & top,
        ] {
            out.push((q.family, addr_of(q.family, x)));
        }
        let inside = first + rng.u128() % (last - first).saturating_add(1).max(1);
        out.push((q.family, addr_of(q.family, inside)));
    }
    for _ in 0..random {
        if rng.below(2) == 0 {
            out.push((4, a4(rng.next() as u32)));
        } else {
            out.push((6, a6(rng.u128())));
        }
    }
    out
}

#[test]
fn lookup_matches_the_reference_over_random_corpora() {
    for seed in 1..=12 {
        let entries = corpus(seed, 400);
        let built = build(&aggregate(entries.iter().copied()));
        assert_eq!(built.dir4.len(), DIR4_SLOTS as usize);
        let addrs = probes(seed, &entries, 1000);
        assert!(addrs.len() > 2000);
        for (family, addr) in addrs {
            let want = reference_mask(&entries, family, &addr);
            let got = built.lookup(family, &addr);
            assert_eq!(
                got, want,
                "seed {seed}: family {family} address {addr:?}: lookup {got:#x}, reference {want:#x}"
            );
        }
    }
}

#[test]
fn aggregate_gives_each_prefix_the_masks_covering_it() {
    for seed in 10..=13 {
        let entries = corpus(seed, 400);
        let agg = aggregate(entries.iter().copied());
        let distinct: std::collections::BTreeSet<Prefix> =
            entries.iter().map(|&(q, _)| q).collect();
        assert_eq!(agg.len(), distinct.len());
        for (q, m) in &agg {
            let want = entries
                .iter()
                .filter(|(r, _)| r.covers(q))
                .fold(0, |acc, (_, m)| acc | m);
            assert_eq!(*m, want, "seed {seed}: {q}");
        }
    }
}

#[test]
fn duplicates_merge_and_nested_prefixes_inherit() {
    let agg = aggregate([
        (p("10.0.0.0/8"), 1),
        (p("10.1.0.0/16"), 2),
        (p("10.1.2.0/24"), 4),
        (p("10.1.2.0/24"), 8),
        (p("10.1.2.3/32"), 16),
        (p("11.0.0.0/8"), 32),
        (p("2001:db8::/32"), 64),
        (p("2001:db8:1::/48"), 128),
    ]);
    let get = |s: &str| agg[&p(s)];
    assert_eq!(get("10.0.0.0/8"), 1);
    assert_eq!(get("10.1.0.0/16"), 3);
    assert_eq!(get("10.1.2.0/24"), 15);
    assert_eq!(get("10.1.2.3/32"), 31);
    assert_eq!(get("11.0.0.0/8"), 32);
    assert_eq!(get("2001:db8:1::/48"), 192);
    assert_eq!(agg.len(), 7);
}

#[test]
fn directory_layout() {
    let built = build(&aggregate([
        (p("10.0.0.0/8"), 1),
        (p("10.1.0.0/16"), 2),
        (p("10.1.128.0/17"), 4),
        (p("10.1.2.0/24"), 8),
        (p("10.1.2.3/32"), 16),
        (p("10.1.2.0/31"), 32),
    ]));
    assert_eq!(built.dir4[0x0a00].mask, 1);
    assert_eq!(built.dir4[0x0a01].mask, 3);
    assert_eq!(built.dir4[0x0aff].mask, 1);
    assert_eq!(built.dir4[0x0b00], Dir4::default());
    let lens = |ls: &[u32]| ls.iter().fold(0, |acc, l| acc | 1 << (l - 17));
    assert_eq!(built.dir4[0x0a01].lens, lens(&[17, 24, 31, 32]));
    assert_eq!(built.dir4[0x0a00].lens, 0);
    assert_eq!(built.pfx4.len(), 4);
    assert!(built
        .pfx4
        .iter()
        .all(|(k, _)| k.gen == 0 && k._pad == [0; 2]));
    assert!(built.pfx4.windows(2).all(|w| w[0].0 < w[1].0));
    let key = Pfx4Key {
        addr: [10, 1, 2, 3],
        len: 32,
        gen: 0,
        _pad: [0; 2],
    };
    assert!(built.pfx4.contains(&(key, 1 | 2 | 8 | 16)));
    assert_eq!(built.lookup(4, &a4(0x0a01_0203)), 1 | 2 | 8 | 16);
    assert_eq!(built.lookup(4, &a4(0x0a01_0201)), 1 | 2 | 8 | 32);
    assert_eq!(built.lookup(4, &a4(0x0a01_0202)), 1 | 2 | 8);
    assert_eq!(built.lookup(4, &a4(0x0a01_0204)), 1 | 2 | 8);
    assert_eq!(built.lookup(4, &a4(0x0a01_8000)), 1 | 2 | 4);
    assert_eq!(built.lookup(4, &a4(0x0a01_0300)), 1 | 2);
    assert_eq!(built.lookup(4, &a4(0x0a02_0000)), 1);
    assert_eq!(built.lookup(4, &a4(0x0b00_0000)), 0);
}

#[test]
fn zero_length_prefixes_cover_everything() {
    let built = build(&aggregate([(p("0.0.0.0/0"), 1), (p("::/0"), 2)]));
    assert!(built.dir4.iter().all(|s| s.mask == 1 && s.lens == 0));
    assert!(built.pfx4.is_empty());
    for x in [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
        assert_eq!(built.lookup(4, &a4(x)), 1);
    }
    for x in [0, 1, u128::MAX] {
        assert_eq!(built.lookup(6, &a6(x)), 2);
    }
}

#[test]
fn empty_tables_and_other_families() {
    let built = build(&BTreeMap::new());
    assert_eq!(built.dir4.len(), DIR4_SLOTS as usize);
    assert_eq!(built.lookup(4, &a4(0x0102_0304)), 0);
    assert_eq!(built.lookup(6, &a6(1)), 0);
    let odd = Prefix {
        family: 5,
        addr: [0; 16],
        len: 0,
    };
    let agg = aggregate([(odd, 1), (p("::/0"), 2)]);
    assert_eq!(agg.len(), 1);
    let built = build(&agg);
    assert_eq!(built.lookup(5, &[0; 16]), 0);
    assert_eq!(built.lookup(4, &[0; 16]), 0);
    assert_eq!(built.lookup(6, &[0; 16]), 2);
    assert_eq!(reference_mask(&[(odd, 1)], 4, &[0; 16]), 0);
}

/// In release only: about a minute in a debug build. `cargo xtask test` runs it with
/// `cargo test --release -p sensor-user --lib protect::table::tests::a_million`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release only: run by cargo xtask test in release"
)]
fn a_million_entries_build_fast_and_right() {
    let mut rng = Rng(42);
    let mut entries = Vec::with_capacity(1_100_000);
    for _ in 0..1_000_000 {
        let len = 24 + rng.below(9) as u8;
        entries.push((v4(rng.next() as u32, len), 1 << rng.below(28)));
    }
    let lens6 = [32, 48, 56, 64, 128];
    for _ in 0..100_000 {
        // Few /32s, so the longer IPv6 prefixes nest under them.
        let addr = (u128::from(rng.below(64) as u32 | 0x2000_0000) << 96) | rng.u128() >> 32;
        let len = lens6[rng.below(lens6.len() as u64) as usize];
        entries.push((v6(addr, len), 1 << rng.below(28)));
    }
    let start = Instant::now();
    let agg = aggregate(entries.iter().copied());
    let built = build(&agg);
    let took = start.elapsed();
    println!(
        "aggregate + build of {} entries: {took:?} ({} IPv4 hash, {} IPv6)",
        entries.len(),
        built.pfx4.len(),
        built.v6.len()
    );
    if !cfg!(debug_assertions) {
        assert!(took.as_secs_f64() < 2.0, "took {took:?}");
    }
    // Spot checks against the linear reference, and many more against a hashed one that
    // probes every length of the raw entries.
    for (family, addr) in &probes(7, &entries[..200], 0) {
        assert_eq!(
            built.lookup(*family, addr),
            reference_mask(&entries, *family, addr)
        );
    }
    let mut raw: AHashMap<Key, u32> = AHashMap::new();
    for (q, m) in &entries {
        *raw.entry(key(q).unwrap()).or_default() |= m;
    }
    let mut step = 0;
    for (family, addr) in probes(8, &entries[..20_000], 20_000) {
        let bits = u128::from_be_bytes(addr);
        let max = if family == 4 { 32 } else { 128 };
        let want = (0..=max).fold(0, |acc, l| {
            acc | raw
                .get(&(family, l, bits & netmask(l)))
                .copied()
                .unwrap_or(0)
        });
        assert_eq!(built.lookup(family, &addr), want, "{family} {addr:?}");
        step += 1;
    }
    assert!(step > 100_000);
}
