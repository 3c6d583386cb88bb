//! The pinned links that attach the programs. The first agent attaches and pins them; every
//! later one swaps its freshly loaded program into them (`bpf_link_update`), which the kernel
//! does atomically: each packet meets the old program or the new one, never none. A link whose
//! interface went away (the kernel detached it) is unpinned and replaced by a new attachment.
//!
//! The XDP link's name records its mode (`xdp-driver-IFACE` or `xdp-generic-IFACE`), since the
//! kernel does not report it through the link.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use aya::{
    programs::{
        links::{FdLink, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
        xdp::XdpLink,
        LinkOrder, ProgramError, SchedClassifier, TcAttachType, Xdp,
    },
    sys::SyscallError,
};
use log::{info, warn};

use super::PinDir;
use crate::datapath::{attach_xdp, AttachedMode, XdpModeChoice};

const MODES: [(AttachedMode, &str); 2] = [
    (AttachedMode::Driver, "driver"),
    (AttachedMode::Generic, "generic"),
];

fn xdp_path(dir: &PinDir, mode: &str, iface: &str) -> PathBuf {
    dir.links_dir().join(format!("xdp-{mode}-{iface}"))
}

fn tc_path(dir: &PinDir, iface: &str) -> PathBuf {
    dir.links_dir().join(format!("tc-egress-{iface}"))
}

/// Opens the link pinned at `path`, `None` when there is none.
fn open(path: &PathBuf) -> anyhow::Result<Option<FdLink>> {
    if !path.exists() {
        return Ok(None);
    }
    let pinned = PinnedLink::from_pin(path)
        .with_context(|| format!("opening the pinned link {}", path.display()))?;
    Ok(Some(pinned.into()))
}

/// Whether a link update failed because the kernel had already released the link (its
/// interface was deleted).
fn defunct(e: &ProgramError) -> bool {
    matches!(e, ProgramError::SyscallError(SyscallError { io_error, .. })
        if io_error.raw_os_error() == Some(libc::ENOLINK))
}

fn pin(link: FdLink, path: &PathBuf) -> anyhow::Result<FdLink> {
    let pinned = link
        .pin(path)
        .with_context(|| format!("pinning the link {}", path.display()))?;
    Ok(pinned.into())
}

/// Attaches `xdp` (loaded) to `iface` through its pinned link, or anew (pinned) when there is
/// none. The returned link only holds a descriptor: dropping it leaves the program attached.
pub fn xdp(
    dir: &PinDir,
    xdp: &mut Xdp,
    iface: &str,
    want: XdpModeChoice,
) -> anyhow::Result<(AttachedMode, FdLink)> {
    for (mode, name) in MODES {
        let path = xdp_path(dir, name, iface);
        let Some(link) = open(&path)? else { continue };
        let link = XdpLink::try_from(link)
            .with_context(|| format!("{} is not an XDP link", path.display()))?;
        match xdp.attach_to_link(link) {
            Ok(id) => {
                let mismatch = matches!(
                    (want, mode),
                    (XdpModeChoice::Driver, AttachedMode::Generic)
                        | (XdpModeChoice::Generic, AttachedMode::Driver)
                );
                if mismatch {
                    warn!(
                        "{iface}: the pinned XDP link is in {mode} mode and keeps it; remove \
                         {} while no agent runs to attach in another mode",
                        path.display()
                    );
                }
                let link = xdp.take_link(id).context("taking the XDP link")?;
                return Ok((mode, link.try_into().context("the XDP link")?));
            }
            Err(e) if defunct(&e) => {
                info!("{iface}: the pinned XDP link was released by the kernel; attaching anew");
                std::fs::remove_file(&path)
                    .with_context(|| format!("unpinning {}", path.display()))?;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "replacing the XDP program in the pinned link {}",
                        path.display()
                    )
                })
            }
        }
    }
    let (mode, id) = attach_xdp(xdp, iface, want)?;
    let link = xdp.take_link(id).context("taking the XDP link")?;
    let Ok(link) = FdLink::try_from(link) else {
        bail!(
            "{iface}: the kernel attached XDP through netlink, not a BPF link (Linux before \
             5.9?), and such an attachment cannot be pinned; run with --no-pin"
        );
    };
    let name = MODES
        .iter()
        .find(|(m, _)| *m == mode)
        .map_or("generic", |m| m.1);
    Ok((mode, pin(link, &xdp_path(dir, name, iface))?))
}

/// Attaches the TC egress program to `iface` through its pinned TCX link, or anew.
pub fn tc_egress(dir: &PinDir, tc: &mut SchedClassifier, iface: &str) -> anyhow::Result<FdLink> {
    let path = tc_path(dir, iface);
    if let Some(link) = open(&path)? {
        let link = SchedClassifierLink::try_from(link)
            .with_context(|| format!("{} is not a TCX link", path.display()))?;
        match tc.attach_to_link(link) {
            Ok(id) => {
                let link = tc.take_link(id).context("taking the TC link")?;
                return link.try_into().context("the TC link");
            }
            Err(e) if defunct(&e) => {
                info!("{iface}: the pinned TC link was released by the kernel; attaching anew");
                std::fs::remove_file(&path)
                    .with_context(|| format!("unpinning {}", path.display()))?;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "replacing the TC program in the pinned link {}",
                        path.display()
                    )
                })
            }
        }
    }
    let id = tc
        .attach_with_options(
            iface,
            TcAttachType::Egress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .with_context(|| {
            format!(
                "attaching the TC egress program to {iface} as a TCX link, which pinning needs \
                 (Linux 6.6 or later); on older kernels run with --no-pin"
            )
        })?;
    let link = tc.take_link(id).context("taking the TC link")?;
    let link = FdLink::try_from(link).context("the TC egress attachment is not a BPF link")?;
    pin(link, &path)
}

/// Unpins (and so detaches) the links of interfaces not in `ifaces`: they were configured
/// for an earlier agent and are not any more.
pub fn release_others(dir: &PinDir, ifaces: &[String]) -> anyhow::Result<()> {
    let links = dir.links_dir();
    for entry in
        std::fs::read_dir(&links).with_context(|| format!("reading {}", links.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let iface = ["xdp-driver-", "xdp-generic-", "tc-egress-"]
            .iter()
            .find_map(|p| name.strip_prefix(p));
        if iface.is_some_and(|i| ifaces.iter().any(|c| c == i)) {
            continue;
        }
        info!("detaching {name}: its interface is no longer configured");
        std::fs::remove_file(entry.path())
            .with_context(|| format!("unpinning {}", entry.path().display()))?;
    }
    Ok(())
}

/// Unpins every link: the programs are detached once no agent holds them.
pub fn release_all(dir: &PinDir) -> anyhow::Result<usize> {
    let before = std::fs::read_dir(dir.links_dir())?.count();
    release_others(dir, &[])?;
    Ok(before)
}
