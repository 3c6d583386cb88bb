//! In-kernel protection as userspace drives it: list files, the address tables built from them
//! and swapped into the kernel atomically, the policy, live control and drop events.
//!
//! A table update never shows a packet a half-written table: the kernel tables hold two
//! generations, the policy names the one in use, and an update fills the other generation,
//! flips the policy's generation, waits for programs still running on the old one, then clears
//! the old one.

pub mod addrs;
mod adopt;
pub mod control;
pub mod drops;
pub mod lists;
pub mod metrics;
pub mod pinned;
pub mod settings;
pub mod sources;
pub mod table;
pub mod worker;

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use aya::{
    maps::{
        lpm_trie::{Key, LpmTrie},
        Array, HashMap, MapData, PerCpuArray,
    },
    Ebpf,
};
use sensor_common::{
    maps,
    protect::{
        Dir4, Lpm6Data, Pfx4Key, Policy, VerdictCounters, DIR4_SLOTS, SUB4_WORDS, SUB6_WORDS,
    },
    Hook,
};

use self::{lists::Prefix, table::Built};

/// How long to wait after flipping the generation before deleting the old one: programs run
/// for microseconds, under RCU; this is generous.
const GRACE: Duration = Duration::from_millis(20);

/// The protection maps of a loaded object, and what userspace last wrote into them.
pub struct Protect {
    policy_map: Array<MapData, Policy>,
    dir4: Array<MapData, Dir4>,
    sub4: Array<MapData, u64>,
    sub6: Array<MapData, u64>,
    pfx4: HashMap<MapData, Pfx4Key, u32>,
    lpm6: LpmTrie<MapData, Lpm6Data, u32>,
    policy: Policy,
    /// What each generation's directory holds, so that a swap writes only changed slots.
    dirs: [Vec<Dir4>; 2],
    /// What each generation's /24 bitmap holds, likewise.
    subs: [Vec<u64>; 2],
    /// What each generation's IPv6 /24 bitmap holds, likewise.
    subs6: [Vec<u64>; 2],
    /// The IPv4 prefixes and IPv6 prefixes of the generation in use.
    active4: Vec<Pfx4Key>,
    active6: Vec<Prefix>,
    capacity: (u32, u32),
}

/// What one table swap did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwapReport {
    /// IPv4 prefixes in the kernel (the directory's short prefixes counted by slot writes).
    pub v4_prefixes: usize,
    /// IPv6 prefixes in the kernel.
    pub v6_prefixes: usize,
    /// Directory slots and bitmap words written.
    pub dir_writes: usize,
    /// Time to fill the new generation.
    pub fill: Duration,
    /// Time to flip and clear the old generation.
    pub clear: Duration,
}

fn take<T>(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| anyhow!("the eBPF object has no map {name}"))?;
    T::try_from(map).with_context(|| format!("opening map {name}"))
}

impl Protect {
    /// Takes the protection maps out of `ebpf`, writes the port bitmap, and leaves the policy
    /// off until the first [`Protect::swap`]. `capacity` is the (IPv4, IPv6) prefix limit per
    /// generation the maps were sized for.
    pub fn take(ebpf: &mut Ebpf, ports: &[u64], capacity: (u32, u32)) -> anyhow::Result<Protect> {
        Self::open(ebpf, ports, capacity, false)
    }

    /// Takes the maps; `all_ports` writes zero words too (the map may hold an old bitmap).
    fn open(
        ebpf: &mut Ebpf,
        ports: &[u64],
        capacity: (u32, u32),
        all_ports: bool,
    ) -> anyhow::Result<Protect> {
        let mut port_map: Array<MapData, u64> = take(ebpf, maps::PORTS)?;
        for (i, w) in ports.iter().enumerate() {
            if *w != 0 || all_ports {
                port_map
                    .set(i as u32, w, 0)
                    .context("writing the port policy")?;
            }
        }
        Ok(Protect {
            policy_map: take(ebpf, maps::POLICY)?,
            dir4: take(ebpf, maps::DIR4)?,
            sub4: take(ebpf, maps::SUB4)?,
            sub6: take(ebpf, maps::SUB6)?,
            pfx4: take(ebpf, maps::PFX4)?,
            lpm6: take(ebpf, maps::LPM6)?,
            policy: Policy::default(),
            dirs: [
                vec![Dir4::default(); DIR4_SLOTS as usize],
                vec![Dir4::default(); DIR4_SLOTS as usize],
            ],
            subs: [vec![0; SUB4_WORDS as usize], vec![0; SUB4_WORDS as usize]],
            subs6: [vec![0; SUB6_WORDS as usize], vec![0; SUB6_WORDS as usize]],
            active4: Vec::new(),
            active6: Vec::new(),
            capacity,
        })
    }

    /// The policy in force (its generation included).
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Puts `built` in service with `policy` (whose generation is ignored): fills the unused
    /// generation, flips, then clears the old one. On an error the generation in use stays.
    pub fn swap(&mut self, built: &Built, policy: Policy) -> anyhow::Result<SwapReport> {
        if built.pfx4.len() > self.capacity.0 as usize {
            bail!(
                "the lists hold {} IPv4 prefixes longer than /16, more than protect.v4_capacity \
                 ({}); raise it (the agent must restart) or shorten the lists",
                built.pfx4.len(),
                self.capacity.0
            );
        }
        if built.v6.len() > self.capacity.1 as usize {
            bail!(
                "the lists hold {} IPv6 prefixes, more than protect.v6_capacity ({}); raise it \
                 (the agent must restart) or shorten the lists",
                built.v6.len(),
                self.capacity.1
            );
        }
        let start = Instant::now();
        let old = self.policy.gen & 1;
        let new = old ^ 1;
        let mut report = SwapReport::default();
        let dir = &mut self.dirs[new as usize];
        for (i, (have, want)) in dir.iter_mut().zip(built.dir4.iter()).enumerate() {
            if have != want {
                self.dir4
                    .set(new * DIR4_SLOTS + i as u32, want, 0)
                    .context("writing the IPv4 directory")?;
                *have = *want;
                report.dir_writes += 1;
            }
        }
        let sub = &mut self.subs[new as usize];
        for (i, (have, want)) in sub.iter_mut().zip(built.sub4.iter()).enumerate() {
            if have != want {
                self.sub4
                    .set(new * SUB4_WORDS + i as u32, want, 0)
                    .context("writing the IPv4 /24 bitmap")?;
                *have = *want;
                report.dir_writes += 1;
            }
        }
        let sub = &mut self.subs6[new as usize];
        for (i, (have, want)) in sub.iter_mut().zip(built.sub6.iter()).enumerate() {
            if have != want {
                self.sub6
                    .set(new * SUB6_WORDS + i as u32, want, 0)
                    .context("writing the IPv6 /24 bitmap")?;
                *have = *want;
                report.dir_writes += 1;
            }
        }
        let mut keys4 = Vec::with_capacity(built.pfx4.len());
        for (k, m) in &built.pfx4 {
            let k = Pfx4Key {
                gen: new as u8,
                ..*k
            };
            if let Err(e) = self.pfx4.insert(k, m, 0) {
                self.clear4(&keys4);
                return Err(e).context("filling the IPv4 prefix table");
            }
            keys4.push(k);
        }
        let mut keys6 = Vec::with_capacity(built.v6.len());
        for (p, m) in &built.v6 {
            if let Err(e) = self.lpm6.insert(&key6(new, p), m, 0) {
                self.clear4(&keys4);
                self.clear6(new, &keys6);
                return Err(e).context("filling the IPv6 prefix table");
            }
            keys6.push(*p);
        }
        report.fill = start.elapsed();
        let flip = Instant::now();
        self.policy = Policy { gen: new, ..policy };
        self.policy_map
            .set(0, self.policy, 0)
            .context("writing the protection policy")?;
        std::thread::sleep(GRACE);
        let old4 = std::mem::replace(&mut self.active4, keys4);
        let old6 = std::mem::replace(&mut self.active6, keys6);
        self.clear4(&old4);
        self.clear6(old, &old6);
        report.clear = flip.elapsed();
        report.v4_prefixes = self.active4.len();
        report.v6_prefixes = self.active6.len();
        Ok(report)
    }

    /// Changes the policy and keeps the tables (and generation).
    pub fn set_policy(&mut self, policy: Policy) -> anyhow::Result<()> {
        self.policy = Policy {
            gen: self.policy.gen,
            ..policy
        };
        self.policy_map
            .set(0, self.policy, 0)
            .context("writing the protection policy")
    }

    fn clear4(&mut self, keys: &[Pfx4Key]) {
        for k in keys {
            let _ = self.pfx4.remove(k);
        }
    }

    fn clear6(&mut self, gen: u32, prefixes: &[Prefix]) {
        for p in prefixes {
            let _ = self.lpm6.remove(&key6(gen, p));
        }
    }
}

fn key6(gen: u32, p: &Prefix) -> Key<Lpm6Data> {
    let mut data = [0u8; 17];
    data[0] = gen as u8;
    data[1..].copy_from_slice(&p.addr);
    Key::new(8 + u32::from(p.len), data)
}

/// The per-CPU verdict counters, one block per hook.
pub struct VerdictMap(PerCpuArray<MapData, VerdictCounters>);

impl VerdictMap {
    /// Takes the verdict counters out of `ebpf`.
    pub fn take(ebpf: &mut Ebpf) -> anyhow::Result<VerdictMap> {
        Ok(VerdictMap(take(ebpf, maps::VERDICTS)?))
    }

    /// The counters of `hook`, summed over CPUs.
    pub fn read(&self, hook: Hook) -> anyhow::Result<VerdictCounters> {
        let per_cpu = self
            .0
            .get(&(hook as u32), 0)
            .context("reading the verdict counters")?;
        let mut total = VerdictCounters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }
}
