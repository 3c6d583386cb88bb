//! The datapath pinned in bpffs (`precinct run --pin`): the maps, and the links that attach
//! the programs, outlive the agent. A restart or an upgrade loads its programs over the same
//! maps (flow counters, protection tables, rate and return-traffic state carry on) and swaps
//! them into the pinned links atomically, so the interfaces are never without a program; an
//! agent that dies leaves the programs attached, enforcing the policy they had (fail-open for
//! everything that policy allows). `docs/restarts.md` tells the operator's side.
//!
//! The pin directory holds
//! - `maps/LAYOUT`, the [`PIN_LAYOUT_VERSION`] the maps were made for, and `maps/PRECINCT_*`,
//!   every map of the object ([`layout`] refuses maps that the programs would misread);
//! - `links/xdp-<mode>-<iface>` and `links/tc-egress-<iface>` ([`links`]);
//! - `state/`, where other parts keep what must outlive the agent with the maps (the
//!   `precinct block` entries, `crate::protect::pinned`).
//!
//! An agent holds an exclusive lock on the directory while it runs: two agents on one set of
//! maps would each report the other's flows.

pub mod layout;
pub mod links;

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use aya::{
    maps::{Array, Map, MapData},
    Ebpf,
};
use log::info;
use sensor_common::{head::Settings, PIN_LAYOUT_VERSION};

use super::LoadOptions;

/// Where pinned state lives unless `pin_path` says otherwise.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/precinct";

/// `statfs` magic of a BPF filesystem.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// An open, locked pin directory.
pub struct PinDir {
    root: PathBuf,
    /// Holds the `flock` for as long as the agent runs.
    _lock: File,
}

/// What loading over a pin directory found and did.
pub struct Loaded {
    /// The object, its maps opened from (or created and pinned into) the directory.
    pub ebpf: Ebpf,
    /// The load options in effect: the capacities of maps that were already pinned win over
    /// the configured ones (see [`layout::reconcile`]).
    pub opts: LoadOptions,
    /// The head settings written.
    pub heads: Settings,
    /// Whether the maps were there before (a restart) rather than made now.
    pub adopted: bool,
}

impl PinDir {
    /// Opens (creating it if needed) the pin directory `root`, which must be on a BPF
    /// filesystem, and locks it.
    pub fn open(root: &Path) -> anyhow::Result<PinDir> {
        check_bpffs(root)?;
        for sub in ["maps", "links", "state"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let lock = File::open(root).with_context(|| format!("opening {}", root.display()))?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            bail!(
                "another precinct agent uses the pinned datapath in {} (it is locked); stop it \
                 first, or give this one its own pin_path / --pin-path",
                root.display()
            );
        }
        Ok(PinDir {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where map `name` is pinned.
    pub fn map_path(&self, name: &str) -> PathBuf {
        self.root.join("maps").join(name)
    }

    pub(crate) fn links_dir(&self) -> PathBuf {
        self.root.join("links")
    }

    pub(crate) fn state_path(&self, name: &str) -> PathBuf {
        self.root.join("state").join(name)
    }

    /// Unpins every map (`--unpin`): this load starts from fresh maps. Programs still attached
    /// keep theirs until this agent's programs replace them in the links.
    pub fn discard_maps(&self) -> anyhow::Result<usize> {
        let dir = self.root.join("maps");
        let mut n = 0;
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            std::fs::remove_file(&path).with_context(|| format!("unpinning {}", path.display()))?;
            n += 1;
        }
        Ok(n)
    }

    /// Loads the object with every `PRECINCT_*` map pinned here: maps already pinned are
    /// reused (after [`layout::reconcile`] checked them), the others created and pinned.
    pub fn load(&self, opts: &LoadOptions) -> anyhow::Result<Loaded> {
        let marker = self.map_path("LAYOUT");
        let adopted = layout::any_pinned(self)?;
        if adopted {
            check_marker(&marker)?;
        }
        let plan = layout::reconcile(self, opts)?;
        if !adopted {
            write_marker(&marker)?;
        }
        let pins: Vec<(&'static str, PathBuf)> = layout::pinned_names()?
            .iter()
            .map(|n| (*n, self.map_path(n)))
            .collect();
        let mut ebpf = super::load_object(&plan.max_entries, &pins)?;
        let mut heads = plan.opts.heads;
        if adopted {
            // Programs cache a flow's head mode per epoch: move on from the last agent's.
            heads.control_epoch = super::heads::read_settings(&mut ebpf)?
                .control_epoch
                .wrapping_add(1);
        }
        super::heads::write_settings(&mut ebpf, &heads)?;
        if adopted {
            info!(
                "pinned datapath in {}: reusing its maps (flows, counters, tables carry on)",
                self.root.display()
            );
        }
        Ok(Loaded {
            ebpf,
            opts: plan.opts,
            heads,
            adopted,
        })
    }
}

fn check_bpffs(root: &Path) -> anyhow::Result<()> {
    // The directory itself may not exist yet: its closest existing ancestor tells the
    // filesystem it would be made on.
    let mut probe = root;
    while !probe.exists() {
        probe = probe.parent().unwrap_or(Path::new("/"));
    }
    let c = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes())
        .context("pin path contains a NUL byte")?;
    // SAFETY: `statfs` is plain data, valid when zeroed.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: statfs(2) with a valid C string, into a struct we own.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statfs {}", probe.display()));
    }
    if st.f_type as i64 != BPF_FS_MAGIC {
        bail!(
            "the pin path {} is not on a BPF filesystem; mount one (`mount -t bpf bpf \
             /sys/fs/bpf`, which systemd does at boot), set pin_path / --pin-path to a \
             directory on one, or run with --no-pin",
            root.display()
        );
    }
    Ok(())
}

fn check_marker(path: &Path) -> anyhow::Result<()> {
    let found = match MapData::from_pin(path) {
        Ok(data) => {
            let array: Array<MapData, u64> =
                Array::try_from(Map::Array(data)).context("the layout marker map")?;
            Some(array.get(&0, 0).context("reading the layout marker")?)
        }
        Err(_) => None,
    };
    if found != Some(PIN_LAYOUT_VERSION) {
        let what = found.map_or("no layout version".to_string(), |v| format!("layout {v}"));
        bail!(
            "the maps pinned in {} have {what}, this precinct uses layout {}: {}",
            path.parent()
                .and_then(Path::parent)
                .unwrap_or(path)
                .display(),
            PIN_LAYOUT_VERSION,
            layout::START_OVER
        );
    }
    Ok(())
}

fn write_marker(path: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut array: Array<MapData, u64> =
        Array::create(1, 0).context("creating the layout marker map")?;
    array
        .set(0, PIN_LAYOUT_VERSION, 0)
        .context("writing the layout marker")?;
    array
        .pin(path)
        .with_context(|| format!("pinning {}", path.display()))
}

/// The pin directory for `precinct run`: opened when pinning (its maps discarded first with
/// `unpin`); with `unpin` and no pinning, the pinned attachments and maps of an earlier agent
/// are removed, so this one attaches on its own.
pub fn prepare(pin: bool, path: &Path, unpin: bool) -> anyhow::Result<Option<PinDir>> {
    let leftovers = unpin && path.exists();
    if !pin && !leftovers {
        return Ok(None);
    }
    let dir = PinDir::open(path)?;
    if unpin {
        let maps = dir.discard_maps()?;
        info!(
            "--unpin: discarded {maps} pinned maps in {}",
            path.display()
        );
    }
    if pin {
        return Ok(Some(dir));
    }
    let links = links::release_all(&dir)?;
    info!(
        "--unpin: removed {links} pinned attachments in {}; this agent does not pin",
        path.display()
    );
    Ok(None)
}

/// Says what an agent picks up from the one before.
pub fn log_carried_over(flows: &super::FlowMap, counters: &super::CounterMap) {
    let active = flows.read_all().map(|f| f.len()).unwrap_or(0);
    let mut lost = 0;
    for hook in sensor_common::Hook::ALL {
        if let Ok(c) = counters.read(hook) {
            lost += c.c[sensor_common::counters::id::RINGBUF_RESERVE_FAILURES];
        }
    }
    info!(
        "carrying on from the previous agent: {active} flows in the kernel's map (reported when \
         they end); counters continue from the kernel's totals; {lost} flow-head records lost \
         to a full ring so far (precinct_ringbuf_reserve_failures_total)"
    );
}
