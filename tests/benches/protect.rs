//! What in-kernel protection costs, through `BPF_PROG_TEST_RUN`: the full XDP ingress path
//! (parse, bogons, blocklists, port policy, rate limit, flow accounting) with 1,000,000 IPv4
//! and 100,000 IPv6 blocklist entries loaded, per packet, beside an empty XDP program measured
//! in the same run, for hits and misses; the IPv4 source lookup alone through the production
//! table (/16 directory + prefix hash) and through the kernel LPM trie holding the same
//! prefixes, the anchor to beat; and the time and kernel memory it takes to load the tables.
//!
//! `cargo xtask bench` (root). The kernel reports the mean time per run in whole ns; every
//! figure is the median of several runs of `REPEAT` repetitions. The entries come from a
//! seeded generator, so every run measures the same tables.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd as _, AsRawFd as _},
    time::{Duration, Instant},
};

use aya::{
    maps::{lpm_trie::Key, LpmTrie, Map, MapData, MapInfo},
    programs::{TestRun, TestRunOptions, Xdp},
    Ebpf, EbpfLoader,
};
use precinct::{
    datapath::{self, heads, program_mut, LoadOptions, EBPF_BENCH_OBJECT},
    protect::{
        lists::{Format, Prefix},
        settings::{
            ListKind, ListSpec, Mode, PortItem, PortSection, ProtectSection, Rate, RateSection,
        },
        table::{aggregate, build, Built},
        Protect,
    },
};
use sensor_common::{
    bench,
    head::Settings,
    maps,
    protect::{
        bit, mask4, Pfx4Key, BOGONS_V4, BOGONS_V6, DEFAULT_V4_CAPACITY, DEFAULT_V6_CAPACITY,
    },
};
use tests::{
    packets::{tcp, v4_frame, v6_frame},
    rng::Rng,
};

const REPEAT: u32 = 1_000_000;

/// The production ingress code in the benchmark object, whose tables the lookup-only
/// programs share.
const INGRESS: &str = bench::programs::INGRESS_PERCPU_HASH;
const RUNS: usize = 7;
const V4_ENTRIES: usize = 1_000_000;
const V6_ENTRIES: usize = 100_000;
/// The /16s most listed addresses fall in: listed hosts cluster in hosting and access
/// networks, which leaves most of the address space without entries.
const HOT_SLASH16: u64 = 16_384;
/// The mask bit of list id 1, the one named list configured.
const LIST_BIT: u32 = 1 << 1;
const SEED: u64 = 0x7072_6563_696e_6374;
/// `XDP_DROP` and `XDP_PASS`.
const DROP: u32 = 1;
const PASS: u32 = 2;
const SYN: u8 = 0x02;

fn bogon4(a: u32) -> bool {
    BOGONS_V4
        .iter()
        .any(|(net, len)| a & mask4(u32::from(*len)) == u32::from_be_bytes(*net))
}

fn netmask6(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l)),
    }
}

fn bogon6(a: u128) -> bool {
    BOGONS_V6
        .iter()
        .any(|(net, len)| a & netmask6(*len) == u128::from_be_bytes(*net))
}

fn prefix4(a: u32, len: u8) -> Prefix {
    Prefix::new(IpAddr::V4(Ipv4Addr::from(a)), len).expect("IPv4 prefix")
}

fn prefix6(a: u128, len: u8) -> Prefix {
    Prefix::new(IpAddr::V6(Ipv6Addr::from(a)), len).expect("IPv6 prefix")
}

fn addr4(a: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&a.to_be_bytes());
    b
}

fn public4(rng: &mut Rng) -> u32 {
    loop {
        let a = rng.next() as u32;
        if !bogon4(a) {
            return a;
        }
    }
}

/// IP blocklist entries: 90 % /32, 8 % /24 and 2 % /16–/23. The /32s and /24s fall in the
/// hot /16s, skewed so that a few networks hold many entries; the short prefixes anywhere.
fn v4_entries(rng: &mut Rng) -> Vec<(Prefix, u32)> {
    let hot: Vec<u32> = (0..HOT_SLASH16).map(|_| public4(rng) >> 16).collect();
    (0..V4_ENTRIES)
        .map(|_| {
            let len = match rng.below(100) {
                0..=1 => 16 + rng.below(8) as u8,
                2..=9 => 24,
                _ => 32,
            };
            let a = if len < 24 {
                public4(rng)
            } else {
                loop {
                    // The product of two uniforms favours the first hot /16s.
                    let i = rng.below(HOT_SLASH16) * rng.below(HOT_SLASH16) / HOT_SLASH16;
                    let a = (hot[i as usize] << 16) | (rng.next() as u32 & 0xffff);
                    if !bogon4(a) {
                        break a;
                    }
                }
            };
            (prefix4(a, len), LIST_BIT)
        })
        .collect()
}

/// A random address in 2000::/3 (global unicast) outside the special-purpose ranges.
fn public6(rng: &mut Rng) -> u128 {
    loop {
        let a = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        let a = (a & !(0b111 << 125)) | (1 << 125);
        if !bogon6(a) {
            return a;
        }
    }
}

/// 5 % /32, 30 % /48, 40 % /64, 25 % /128.
fn v6_entries(rng: &mut Rng) -> Vec<(Prefix, u32)> {
    (0..V6_ENTRIES)
        .map(|_| {
            let len = match rng.below(100) {
                0..=4 => 32,
                5..=34 => 48,
                35..=74 => 64,
                _ => 128,
            };
            (prefix6(public6(rng), len), LIST_BIT)
        })
        .collect()
}

/// The built-in bogons, as production adds them (the host's own addresses are left out).
fn bogon_entries() -> Vec<(Prefix, u32)> {
    let v4 = BOGONS_V4
        .iter()
        .map(|(a, l)| (prefix4(u32::from_be_bytes(*a), *l), bit::BUILTIN_BOGON));
    let v6 = BOGONS_V6
        .iter()
        .map(|(a, l)| (prefix6(u128::from_be_bytes(*a), *l), bit::BUILTIN_BOGON));
    v4.chain(v6).collect()
}

/// Prevent mode, one named blocklist, TCP 80 and 443 open, and a SYN rate limit so high that
/// the benchmark's repeated SYN always conforms (the bucket is still read and written).
fn section() -> ProtectSection {
    ProtectSection {
        mode: Mode::Prevent,
        discover_addresses: false,
        ports: PortSection {
            mode: None,
            tcp: Some(vec![PortItem::One(80), PortItem::One(443)]),
            udp: None,
        },
        rate_limit: RateSection {
            mode: None,
            syn: Some(Rate {
                rate: 1_000_000_000,
                burst: 1_000_000_000,
            }),
            udp: None,
            icmp: None,
        },
        lists: vec![ListSpec {
            name: "bench".into(),
            file: "/dev/null".into(),
            format: Format::Plain,
            kind: ListKind::Block,
            mode: None,
            egress: false,
        }],
        ..ProtectSection::default()
    }
}

/// The benchmark object (the production maps and ingress code, and the lookup-only programs)
/// loaded with the capacities `datapath::load_with` gives the production object, plus the
/// benchmark LPM trie sized for `lpm4` prefixes (`LoadOptions` has no size for it).
fn load(lpm4: u32) -> Ebpf {
    let mut loader = EbpfLoader::new();
    for (name, n) in datapath::sized_maps(&LoadOptions::default()) {
        loader.map_max_entries(name, n);
    }
    let mut ebpf = loader
        .map_max_entries(bench::maps::LPM4, lpm4)
        .load(EBPF_BENCH_OBJECT)
        .expect("load the eBPF object (run as root)");
    heads::write_settings(&mut ebpf, &Settings::DEFAULT).expect("head settings");
    for name in [
        INGRESS,
        bench::programs::EMPTY,
        bench::programs::LOOKUP_DIR4,
        bench::programs::LOOKUP_LPM4,
    ] {
        let p: &mut Xdp = program_mut(&mut ebpf, name).expect("program");
        p.load().expect("verifier");
    }
    ebpf
}

/// Median ns per run of `prog` on `frame`, and the program's verdict.
fn measure(ebpf: &mut Ebpf, prog: &str, frame: &[u8], repeat: u32) -> (u64, u32) {
    let p: &mut Xdp = program_mut(ebpf, prog).expect("program");
    let mut verdict = 0;
    let mut samples: Vec<u64> = (0..RUNS)
        .map(|_| {
            let r = p
                .test_run(TestRunOptions {
                    data_in: Some(frame),
                    repeat,
                    ..Default::default()
                })
                .expect("test run");
            verdict = r.return_value;
            r.duration.as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    (samples[RUNS / 2], verdict)
}

fn map_id(ebpf: &Ebpf, name: &str) -> u32 {
    let data: &MapData = match ebpf.map(name).expect("map") {
        Map::HashMap(d) | Map::LpmTrie(d) | Map::Array(d) => d,
        _ => panic!("{name}: unexpected map type"),
    };
    data.info().expect("map info").id()
}

/// The kernel's `memlock` figure for a map (its memory use on kernels since 6.4).
fn memlock(id: u32) -> Option<u64> {
    let fd = MapInfo::from_id(id).ok()?.fd().ok()?;
    let path = format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd());
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// An address in directory slot `slot` that no entry contains.
fn miss_in(built: &Built, slot: usize, rng: &mut Rng) -> u32 {
    let start = rng.next() as u32;
    (0..=0xffffu32)
        .map(|i| ((slot as u32) << 16) | (start.wrapping_add(i) & 0xffff))
        .find(|&a| built.lookup(4, &addr4(a)) == 0)
        .expect("a /16 with entries has a free address")
}

struct Case {
    label: String,
    frame: Vec<u8>,
    /// The frame is IPv4 (the lookup-only programs read IPv4 sources).
    v4: bool,
    hit: bool,
}

fn v4_case(label: String, src: u32, hit: bool) -> Case {
    let frame = v4_frame(
        src.to_be_bytes(),
        [198, 51, 100, 2],
        6,
        &tcp(40000, 443, SYN, &[0u8; 64]),
    );
    Case {
        label,
        frame,
        v4: true,
        hit,
    }
}

fn v6_case(label: &str, src: u128, hit: bool) -> Case {
    let src = Ipv6Addr::from(src).to_string();
    let frame = v6_frame(&src, "2001:db8::2", 6, &tcp(40000, 443, SYN, &[0u8; 64]));
    Case {
        label: label.into(),
        frame,
        v4: false,
        hit,
    }
}

/// Sources for every case, checked against the host model of the lookup.
fn cases(built: &Built, rng: &mut Rng) -> Vec<Case> {
    let slots = &built.dir4;
    let empty = (0..slots.len())
        .map(|i| (i + rng.below(slots.len() as u64) as usize) % slots.len())
        .find(|&i| slots[i].mask == 0 && slots[i].lens == 0)
        .expect("a /16 without entries");
    let typical_lens = (1 << (24 - 17)) | (1 << (32 - 17));
    let typical = (0..slots.len())
        .find(|&i| slots[i].mask == 0 && slots[i].lens == typical_lens)
        .expect("a /16 with /24 and /32 entries only");
    let worst = (0..slots.len())
        .filter(|&i| slots[i].mask == 0)
        .max_by_key(|&i| slots[i].lens.count_ones())
        .expect("a /16");
    let probes = slots[worst].lens.count_ones();
    let k32 = built
        .pfx4
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.len == 32)
        .nth(rng.below(1000) as usize)
        .expect("a /32 entry");
    let has32 = |a: u32| {
        let k = Pfx4Key {
            addr: a.to_be_bytes(),
            len: 32,
            gen: 0,
            _pad: [0; 2],
        };
        built.pfx4.binary_search_by_key(&k, |&(k, _)| k).is_ok()
    };
    let in24 = built
        .pfx4
        .iter()
        .filter(|(k, _)| k.len == 24)
        .skip(rng.below(1000) as usize)
        .find_map(|(k, _)| {
            let base = u32::from_be_bytes(k.addr);
            (1..255).map(|h| base | h).find(|&a| !has32(a))
        })
        .expect("a /24 entry");
    let hit6 = built
        .v6
        .iter()
        .filter(|(p, _)| p.len == 48)
        .nth(rng.below(1000) as usize)
        .map(|(p, _)| u128::from_be_bytes(p.addr) | (u128::from(rng.next()) & !netmask6(48)))
        .expect("a /48 entry");
    let miss6 = loop {
        let a = public6(rng);
        if built.lookup(6, &a.to_be_bytes()) == 0 {
            break a;
        }
    };
    let cases = vec![
        v4_case(
            "miss, IPv4, /16 without entries".into(),
            ((empty as u32) << 16) | 1,
            false,
        ),
        v4_case(
            "miss, IPv4, /16 with /24 + /32 entries".into(),
            miss_in(built, typical, rng),
            false,
        ),
        v4_case(
            format!("miss, IPv4, /16 with {probes} lengths"),
            miss_in(built, worst, rng),
            false,
        ),
        v4_case(
            "hit, IPv4, /32 entry".into(),
            u32::from_be_bytes(k32.addr),
            true,
        ),
        v4_case("hit, IPv4, inside a /24 entry".into(), in24, true),
        v6_case("miss, IPv6", miss6, false),
        v6_case("hit, IPv6, inside a /48 entry", hit6, true),
    ];
    for c in &cases {
        let p = sensor_common::parse(c.frame.as_slice());
        let m = built.lookup(p.family, &p.src);
        assert_eq!(m & LIST_BIT != 0, c.hit, "{}: mask {m:#x}", c.label);
        assert_eq!(m & !LIST_BIT, 0, "{}: only the list bit", c.label);
    }
    cases
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the protection benchmark loads BPF programs: run it as root (cargo xtask bench)"
        );
        std::process::exit(1);
    }
    let mut rng = Rng(SEED);
    let mut entries = bogon_entries();
    entries.extend(v4_entries(&mut rng));
    entries.extend(v6_entries(&mut rng));

    let t = Instant::now();
    let agg: BTreeMap<Prefix, u32> = aggregate(entries);
    let t_agg = t.elapsed();
    let t = Instant::now();
    let built = build(&agg);
    let t_build = t.elapsed();
    let v4: Vec<(&Prefix, &u32)> = agg.iter().filter(|(p, _)| p.family == 4).collect();

    let section = section();
    let policy = section.policy();
    let mut ebpf = load(v4.len() as u32);
    let ids = [
        ("IPv4 directory", map_id(&ebpf, maps::DIR4)),
        ("IPv4 prefix hash", map_id(&ebpf, maps::PFX4)),
        ("IPv6 LPM trie", map_id(&ebpf, maps::LPM6)),
        (
            "IPv4 LPM trie (benchmark copy)",
            map_id(&ebpf, bench::maps::LPM4),
        ),
    ];
    let mut protect = Protect::take(
        &mut ebpf,
        &section.port_words(),
        (DEFAULT_V4_CAPACITY, DEFAULT_V6_CAPACITY),
    )
    .expect("protection maps");
    let cases = cases(&built, &mut rng);

    println!(
        "Protection: per-packet cost through BPF_PROG_TEST_RUN (median of {RUNS} x {REPEAT} runs)"
    );
    println!();
    // Before the first swap the policy is all zero: protection off, one array lookup.
    measure(&mut ebpf, INGRESS, &cases[0].frame, 10_000);
    let (off, _) = measure(&mut ebpf, INGRESS, &cases[0].frame, REPEAT);
    let (empty, _) = measure(&mut ebpf, bench::programs::EMPTY, &cases[0].frame, REPEAT);

    let first = protect.swap(&built, policy).expect("load the tables");
    let reload = protect.swap(&built, policy).expect("reload the tables");
    let gen = protect.policy().gen as u8;
    let mut lpm: LpmTrie<MapData, [u8; 5], u32> = LpmTrie::try_from(
        ebpf.take_map(bench::maps::LPM4)
            .expect("benchmark LPM trie"),
    )
    .expect("LPM trie");
    let t = Instant::now();
    for (p, m) in &v4 {
        let a = p.addr;
        let key = Key::new(8 + u32::from(p.len), [gen, a[0], a[1], a[2], a[3]]);
        lpm.insert(&key, **m, 0)
            .expect("fill the benchmark LPM trie");
    }
    let t_lpm = t.elapsed();

    println!(
        "Tables: {} IPv4 + {} IPv6 list entries and the built-in bogons; after aggregation {} \
         IPv4 prefixes ({} longer than /16, in the hash) and {} IPv6 prefixes",
        thousands(V4_ENTRIES),
        thousands(V6_ENTRIES),
        thousands(v4.len()),
        thousands(built.pfx4.len()),
        thousands(built.v6.len()),
    );
    println!(
        "load {} IPv4 + {} IPv6: aggregate+build {} (aggregate {}, build {}), kernel fill {} \
         (flip + clear {})",
        thousands(V4_ENTRIES),
        thousands(V6_ENTRIES),
        secs(t_agg + t_build),
        secs(t_agg),
        secs(t_build),
        secs(first.fill),
        secs(first.clear),
    );
    println!(
        "reload of the same tables: kernel fill {}, flip + clear of the old generation {}",
        secs(reload.fill),
        secs(reload.clear),
    );
    println!(
        "kernel LPM trie (benchmark copy, {} IPv4 prefixes): fill {}",
        thousands(v4.len()),
        secs(t_lpm)
    );
    let mem: Vec<String> = ids
        .iter()
        .map(|(label, id)| match memlock(*id) {
            Some(b) => format!("{label} {:.1} MiB", b as f64 / f64::from(1 << 20)),
            None => format!("{label} ?"),
        })
        .collect();
    println!("kernel memory (memlock): {}", mem.join(", "));

    println!();
    println!(
        "Full XDP ingress path: prevent mode, TCP 80/443 open, SYN rate limit, flow accounting"
    );
    println!(
        "{:<42} {:>10} {:>10} {:>7} {:>10}",
        "case (TCP SYN to port 443)", "ingress", "empty", "ratio", "vs off"
    );
    println!(
        "{:<42} {off:>7} ns {empty:>7} ns {:>7.2}",
        "protection off (IPv4)",
        off as f64 / empty.max(1) as f64
    );
    let mut worst: f64 = 0.0;
    for c in &cases {
        // The first runs create the flow and its rate bucket and spend the flow's head.
        let (_, verdict) = measure(&mut ebpf, INGRESS, &c.frame, 10_000);
        assert_eq!(verdict, if c.hit { DROP } else { PASS }, "{}", c.label);
        let (full, _) = measure(&mut ebpf, INGRESS, &c.frame, REPEAT);
        let (empty, _) = measure(&mut ebpf, bench::programs::EMPTY, &c.frame, REPEAT);
        let ratio = full as f64 / empty.max(1) as f64;
        worst = worst.max(ratio);
        // Against protection off, for IPv4 frames: the baseline above is one.
        let extra = if c.v4 {
            format!("{:>+7} ns", full as i64 - off as i64)
        } else {
            String::new()
        };
        println!(
            "{:<42} {full:>7} ns {empty:>7} ns {ratio:>7.2} {extra}",
            c.label
        );
    }
    println!(
        "worst ratio to the empty program: {worst:.2} (target: at most 2.0); \"vs off\": added to \
         the same path with protection off (IPv4)"
    );

    println!();
    println!(
        "IPv4 source lookup alone, same {} prefixes: production table (/16 directory + prefix \
         hash) against the kernel LPM trie",
        thousands(v4.len())
    );
    println!(
        "{:<42} {:>10} {:>10} {:>10} {:>7} {:>7} {:>8}",
        "case", "dir+hash", "LPM trie", "empty", "ratio", "LPM", "LPM/dir"
    );
    for c in cases.iter().filter(|c| c.v4) {
        let (dir, _) = measure(&mut ebpf, bench::programs::LOOKUP_DIR4, &c.frame, REPEAT);
        let (trie, _) = measure(&mut ebpf, bench::programs::LOOKUP_LPM4, &c.frame, REPEAT);
        let (empty, _) = measure(&mut ebpf, bench::programs::EMPTY, &c.frame, REPEAT);
        let e = empty.max(1) as f64;
        println!(
            "{:<42} {dir:>7} ns {trie:>7} ns {empty:>7} ns {:>7.2} {:>7.2} {:>8.2}",
            c.label,
            dir as f64 / e,
            trie as f64 / e,
            trie as f64 / dir.max(1) as f64
        );
    }
}
