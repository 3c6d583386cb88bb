//! The kernel side as userspace sees it: loading the eBPF object, attaching the XDP ingress
//! and TC egress programs, reading (and expiring) the flow and counter maps, the flow-head
//! maps ([`heads`]) and keeping all of it pinned in bpffs across restarts ([`pin`]).

pub(crate) mod batch;
pub mod heads;
pub mod pending;
pub mod pin;

use std::fmt;

use anyhow::{anyhow, bail, Context as _};
use aya::{
    maps::{IterableMap as _, MapData, PerCpuArray, PerCpuHashMap},
    programs::{links::FdLink, tc, xdp::XdpLinkId, SchedClassifier, TcAttachType, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use log::warn;

use pin::PinDir;
use sensor_common::{
    counters::Counters,
    flow::{FlowKey, FlowStats},
    head::{self, Settings},
    maps, programs, Hook, DEFAULT_FLOW_CAPACITY,
};

/// The compiled eBPF object, built by `build.rs`.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sensor"));

/// The benchmark-only eBPF object (`sensor-ebpf/src/bin/bench.rs`): the production maps and
/// ingress code, the empty baseline, other flow-map kinds and lookup-only programs
/// (`sensor_common::bench`). `cargo xtask bench` loads it; the agent never does.
pub static EBPF_BENCH_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench"));

/// How to attach the XDP program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeChoice {
    /// Driver mode, falling back to generic mode with a warning.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Driver,
    /// Generic (skb) mode only: works on every interface, slower.
    Generic,
}

/// The XDP mode an interface ended up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    /// Native driver mode.
    Driver,
    /// Generic skb mode.
    Generic,
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachedMode::Driver => "driver",
            AttachedMode::Generic => "generic",
        })
    }
}

/// One interface the programs are attached to.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// Interface name.
    pub iface: String,
    /// Interface index.
    pub ifindex: u32,
    /// XDP mode in use.
    pub mode: AttachedMode,
}

/// The loaded object and its attachments. Dropping it detaches the programs, unless they are
/// pinned (see [`crate::pin`]).
pub struct Datapath {
    ebpf: Ebpf,
    attachments: Vec<Attachment>,
    /// Descriptors of the pinned links; closing them leaves the programs attached.
    pinned_links: Vec<FdLink>,
    /// The load options in effect (pinned maps keep their capacities).
    opts: LoadOptions,
    /// Whether the maps outlived an earlier agent.
    adopted: bool,
}

/// Sizes and settings fixed when the object is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Entries in the flow map.
    pub flow_capacity: u32,
    /// Bytes in the flow-head ring buffer (a power of two, a multiple of the page size).
    pub ring_bytes: u32,
    /// Head settings written into the settings map.
    pub heads: Settings,
    /// IPv4 prefixes (longer than /16) the protection table holds per generation.
    pub v4_capacity: u32,
    /// IPv6 prefixes the protection table holds per generation.
    pub v6_capacity: u32,
    /// Slots of the pending table (`flows.pending_slots`; 0: off, one slot is loaded).
    pub pending_slots: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            flow_capacity: DEFAULT_FLOW_CAPACITY,
            ring_bytes: head::DEFAULT_RING_BYTES,
            heads: Settings::DEFAULT,
            v4_capacity: sensor_common::protect::DEFAULT_V4_CAPACITY,
            v6_capacity: sensor_common::protect::DEFAULT_V6_CAPACITY,
            pending_slots: 0,
        }
    }
}

/// Loads the eBPF object with a flow map of `flow_capacity` entries and default head settings.
pub fn load(flow_capacity: u32) -> anyhow::Result<Ebpf> {
    load_with(&LoadOptions {
        flow_capacity,
        ..LoadOptions::default()
    })
}

/// The maps whose `max_entries` the load options set.
pub fn sized_maps(opts: &LoadOptions) -> [(&'static str, u32); 5] {
    [
        (maps::PENDING, opts.pending_slots.max(1)),
        (maps::FLOWS, opts.flow_capacity),
        (maps::HEADS, opts.ring_bytes),
        // Two generations each, so that a reload fills one while packets use the other.
        (maps::PFX4, 2 * opts.v4_capacity),
        (maps::LPM6, 2 * opts.v6_capacity),
    ]
}

/// Loads the eBPF object as `opts` say, and writes its head settings.
pub fn load_with(opts: &LoadOptions) -> anyhow::Result<Ebpf> {
    let mut ebpf = load_object(&sized_maps(opts), &[])?;
    heads::write_settings(&mut ebpf, &opts.heads)?;
    Ok(ebpf)
}

/// Loads the eBPF object with these map sizes, the maps of `pins` opened from (or created and
/// pinned at) their paths.
pub(crate) fn load_object(
    max_entries: &[(&'static str, u32)],
    pins: &[(&'static str, std::path::PathBuf)],
) -> anyhow::Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    for (name, n) in max_entries {
        loader.map_max_entries(name, *n);
    }
    for (name, path) in pins {
        loader.map_pin_path(name, path.as_path());
    }
    loader.load(EBPF_OBJECT).context(
        "loading the eBPF programs failed; `precinct doctor` checks the kernel, BTF and \
         privileges they need",
    )
}

fn ifindex(iface: &str) -> anyhow::Result<u32> {
    let name = std::ffi::CString::new(iface).context("interface name contains a NUL byte")?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        bail!("no interface named {iface:?}; `ip link` lists the interfaces of this host");
    }
    Ok(index)
}

impl Datapath {
    /// Loads the programs and attaches them to every interface in `ifaces`; with `pin`, over
    /// the maps and links pinned there (created if missing), see [`crate::pin`].
    pub fn attach(
        ifaces: &[String],
        mode: XdpModeChoice,
        opts: &LoadOptions,
        pin: Option<&PinDir>,
    ) -> anyhow::Result<Datapath> {
        if ifaces.is_empty() {
            bail!("no interface to attach to: pass --iface IFACE (or `interfaces` in the config)");
        }
        let (mut ebpf, opts, adopted) = match pin {
            None => (load_with(opts)?, *opts, false),
            Some(dir) => {
                let loaded = dir.load(opts)?;
                let opts = LoadOptions {
                    heads: loaded.heads,
                    ..loaded.opts
                };
                (loaded.ebpf, opts, loaded.adopted)
            }
        };
        let mut attachments = Vec::new();
        let mut pinned_links = Vec::new();
        {
            let xdp: &mut Xdp = program_mut(&mut ebpf, programs::INGRESS)?;
            xdp.load()
                .context("the kernel verifier rejected the XDP program")?;
            for iface in ifaces {
                let ifindex = ifindex(iface)?;
                let mode = match pin {
                    Some(dir) => {
                        let (mode, link) = pin::links::xdp(dir, xdp, iface, mode)?;
                        pinned_links.push(link);
                        mode
                    }
                    None => attach_xdp(xdp, iface, mode)?.0,
                };
                attachments.push(Attachment {
                    iface: iface.clone(),
                    ifindex,
                    mode,
                });
            }
        }
        let tc: &mut SchedClassifier = program_mut(&mut ebpf, programs::EGRESS)?;
        tc.load()
            .context("the kernel verifier rejected the TC egress program")?;
        if let Some(dir) = pin {
            for iface in ifaces {
                pinned_links.push(pin::links::tc_egress(dir, tc, iface)?);
            }
            pin::links::release_others(dir, ifaces)?;
            return Ok(Datapath {
                ebpf,
                attachments,
                pinned_links,
                opts,
                adopted,
            });
        }
        for iface in ifaces {
            if tc.attach(iface, TcAttachType::Egress).is_err() {
                // Kernels before TCX (6.6) need a clsact qdisc to hang the program on.
                if let Err(e) = tc::qdisc_add_clsact(iface) {
                    warn!("adding a clsact qdisc to {iface}: {e} (continuing: it may exist)");
                }
                tc.attach(iface, TcAttachType::Egress)
                    .with_context(|| format!("attaching the TC egress program to {iface}"))?;
            }
        }
        Ok(Datapath {
            ebpf,
            attachments,
            pinned_links,
            opts,
            adopted,
        })
    }

    /// Whether the programs stay attached when this is dropped (pinned links).
    pub fn pinned(&self) -> bool {
        !self.pinned_links.is_empty()
    }

    /// Whether the maps were pinned by an earlier agent (this one carries on with them).
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// The load options in effect: pinned maps keep the capacities they were made with, and
    /// the head settings' epoch moves on from the last agent's.
    pub fn load_options(&self) -> &LoadOptions {
        &self.opts
    }

    /// The interfaces attached, with their modes.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// The loaded object (for maps).
    pub fn ebpf(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

/// Attaches `xdp` to `iface` in `mode`; the mode it got and the link.
pub(crate) fn attach_xdp(
    xdp: &mut Xdp,
    iface: &str,
    mode: XdpModeChoice,
) -> anyhow::Result<(AttachedMode, XdpLinkId)> {
    let generic = |xdp: &mut Xdp| {
        xdp.attach(iface, XdpMode::Skb)
            .with_context(|| {
                format!(
                    "attaching the XDP program to {iface} in generic mode{}",
                    BUSY_HINT
                )
            })
            .map(|id| (AttachedMode::Generic, id))
    };
    match mode {
        XdpModeChoice::Generic => generic(xdp),
        XdpModeChoice::Driver => xdp
            .attach(iface, XdpMode::Driver)
            .with_context(|| {
                format!(
                    "attaching the XDP program to {iface} in driver mode; its driver may lack \
                     native XDP (`precinct doctor --iface {iface}`), or use --xdp-mode generic{}",
                    BUSY_HINT
                )
            })
            .map(|id| (AttachedMode::Driver, id)),
        XdpModeChoice::Auto => match xdp.attach(iface, XdpMode::Driver) {
            Ok(id) => Ok((AttachedMode::Driver, id)),
            Err(e) => {
                warn!("{iface}: driver-mode XDP unavailable ({e}); falling back to generic mode");
                generic(xdp)
            }
        },
    }
}

/// Why an XDP attach may fail although the interface supports XDP.
const BUSY_HINT: &str = " (if another XDP program is attached: a pinned precinct datapath \
    stays attached after its agent stops; run this agent with --pin and the same pin path, or \
    remove that pin directory, see docs/restarts.md)";

/// A program of the object by name, as its concrete type.
pub fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("the eBPF object has no program {name}"))?;
    prog.try_into()
        .with_context(|| format!("program {name} has an unexpected type"))
}

/// The flow and counter maps of a loaded object.
pub struct Maps {
    /// Per-CPU flow map.
    pub flows: FlowMap,
    /// Per-CPU counters.
    pub counters: CounterMap,
}

/// The per-CPU flow map.
pub struct FlowMap(PerCpuHashMap<MapData, FlowKey, FlowStats>);

/// The per-CPU counter blocks, one per hook.
pub struct CounterMap(PerCpuArray<MapData, Counters>);

impl Maps {
    /// Takes the maps out of `ebpf` (the programs keep their own references).
    pub fn take(ebpf: &mut Ebpf) -> anyhow::Result<Maps> {
        let flows = ebpf
            .take_map(maps::FLOWS)
            .ok_or_else(|| anyhow!("the eBPF object has no map {}", maps::FLOWS))?;
        let counters = ebpf
            .take_map(maps::COUNTERS)
            .ok_or_else(|| anyhow!("the eBPF object has no map {}", maps::COUNTERS))?;
        Ok(Maps {
            flows: FlowMap(PerCpuHashMap::try_from(flows).context("flow map")?),
            counters: CounterMap(PerCpuArray::try_from(counters).context("counter map")?),
        })
    }

    /// The counters of `hook`, summed over CPUs.
    pub fn counters(&self, hook: Hook) -> anyhow::Result<Counters> {
        self.counters.read(hook)
    }

    /// Every flow, with its per-CPU values merged.
    pub fn flows(&self) -> anyhow::Result<Vec<(FlowKey, FlowStats)>> {
        self.flows.read_all()
    }
}

impl CounterMap {
    /// The counters of `hook`, summed over CPUs.
    pub fn read(&self, hook: Hook) -> anyhow::Result<Counters> {
        let per_cpu = self
            .0
            .get(&(hook as u32), 0)
            .context("reading the counter map")?;
        let mut total = Counters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }
}

impl FlowMap {
    /// Every flow, with its per-CPU values merged, read in batches.
    pub fn read_all(&self) -> anyhow::Result<Vec<(FlowKey, FlowStats)>> {
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
        batch::read_flows(batch::fd_of(self.0.map()), cpus)
    }

    /// Removes a flow. A packet that arrives after this starts a new entry.
    pub fn remove(&mut self, key: &FlowKey) -> anyhow::Result<()> {
        self.remove_all(std::slice::from_ref(key)).map(|_| ())
    }

    /// Removes flows in batches; a key already gone is skipped. Returns how many were removed.
    pub fn remove_all(&mut self, keys: &[FlowKey]) -> anyhow::Result<usize> {
        batch::delete_flows(batch::fd_of(self.0.map()), keys)
    }

    /// Inserts a flow with the same value on every CPU (benchmarks prefill the map with it).
    pub fn insert(&mut self, key: &FlowKey, stats: FlowStats) -> anyhow::Result<()> {
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
        let values = aya::maps::PerCpuValues::try_from(vec![stats; cpus])?;
        self.0
            .insert(key, values, 0)
            .context("inserting into the flow map")
    }
}
