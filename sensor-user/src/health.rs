//! Whether the programs are still attached where the agent put them: `/healthz` (through
//! [`crate::metrics::Metrics::add_health_check`]) fails when they are not.
//!
//! The kernel is asked, not the agent's own bookkeeping: the interface's XDP state over
//! rtnetlink (`RTM_GETLINK`, which reports the program of each XDP mode whether it was attached
//! by a BPF link or by netlink), and the TCX egress programs with `BPF_PROG_QUERY`. That
//! catches what happens behind the agent's back: the interface deleted (which detaches a BPF
//! link; recreating an interface of the same name gives it a new index), `bpftool link detach`,
//! `ip link set dev IF xdp off` for netlink attachments, or another program put in our place.

use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use aya::{
    programs::{SchedClassifier, Xdp},
    Ebpf,
};
use sensor_common::programs;

use crate::datapath::{program_mut, AttachedMode, Attachment};

const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const XDP_ATTACHED_DRV: u8 = 1;
const XDP_ATTACHED_SKB: u8 = 2;
/// Attribute type bits (without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_TCX_EGRESS: u32 = 47;

/// Why the kernel could not say.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The interface index no longer exists.
    #[error("the interface is gone")]
    Gone,
    /// A socket or syscall failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The reply could not be read.
    #[error("unexpected netlink reply: {0}")]
    Malformed(&'static str),
}

/// An interface's XDP state as `RTM_GETLINK` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpState {
    /// `IFLA_XDP_ATTACHED`: 0 none, 1 driver, 2 generic, 3 offloaded, 4 several modes.
    pub attached: u8,
    /// `IFLA_XDP_PROG_ID`: the program when exactly one mode has one.
    pub prog_id: Option<u32>,
    /// The driver-mode program.
    pub drv_prog_id: Option<u32>,
    /// The generic-mode program.
    pub skb_prog_id: Option<u32>,
}

impl XdpState {
    /// The program attached in `mode`, if any.
    pub fn prog_for(&self, mode: AttachedMode) -> Option<u32> {
        let (per_mode, flag) = match mode {
            AttachedMode::Driver => (self.drv_prog_id, XDP_ATTACHED_DRV),
            AttachedMode::Generic => (self.skb_prog_id, XDP_ATTACHED_SKB),
        };
        per_mode.or(self.prog_id.filter(|_| self.attached == flag))
    }
}

/// The programs attached to one interface, checked against the kernel.
#[derive(Clone, Debug)]
pub struct AttachmentCheck {
    /// The interface as attached.
    pub attachment: Attachment,
    /// Kernel id of our XDP program.
    pub xdp_prog: u32,
    /// Kernel id of our TC egress program.
    pub tc_prog: u32,
}

impl AttachmentCheck {
    /// One check per attachment of the programs loaded in `ebpf`.
    pub fn for_attachments(
        ebpf: &mut Ebpf,
        attachments: &[Attachment],
    ) -> anyhow::Result<Vec<AttachmentCheck>> {
        let xdp_prog = program_mut::<Xdp>(ebpf, programs::INGRESS)?.info()?.id();
        let tc_prog = program_mut::<SchedClassifier>(ebpf, programs::EGRESS)?
            .info()?
            .id();
        Ok(attachments
            .iter()
            .map(|a| AttachmentCheck {
                attachment: a.clone(),
                xdp_prog,
                tc_prog,
            })
            .collect())
    }

    /// The check's name in `/healthz` and `precinct_health_check_ok{check}`.
    pub fn name(&self) -> String {
        format!("attachment:{}", self.attachment.iface)
    }

    /// What is wrong, or `None` while both programs are attached.
    pub fn problem(&self) -> Option<String> {
        let Attachment {
            iface,
            ifindex,
            mode,
        } = &self.attachment;
        let xdp = match query_xdp(*ifindex) {
            Err(QueryError::Gone) => {
                return Some(format!(
                    "interface {iface} (ifindex {ifindex}) is gone, and the programs with it; \
                     restart the agent once the interface is back"
                ))
            }
            Err(e) => return Some(format!("cannot read the XDP state of {iface}: {e}")),
            Ok(state) => state,
        };
        match xdp.prog_for(*mode) {
            Some(id) if id == self.xdp_prog => {}
            Some(id) => {
                return Some(format!(
                    "another XDP program (id {id}) replaced ours (id {}) in {mode} mode on {iface}",
                    self.xdp_prog
                ))
            }
            None => {
                return Some(format!(
                    "the XDP program (id {}) is no longer attached in {mode} mode",
                    self.xdp_prog
                ))
            }
        }
        match query_tcx_egress(*ifindex) {
            // A kernel without TCX (before 6.6): the program hangs on a clsact qdisc, which
            // this check does not read.
            Ok(None) => None,
            Ok(Some(ids)) if ids.contains(&self.tc_prog) => None,
            Ok(Some(_)) => Some(format!(
                "the TC egress program (id {}) is no longer attached",
                self.tc_prog
            )),
            Err(QueryError::Gone) => Some(format!("interface {iface} (ifindex {ifindex}) is gone")),
            Err(e) => Some(format!(
                "cannot query the TC egress programs of {iface}: {e}"
            )),
        }
    }
}

/// Asks the kernel for the XDP state of interface `ifindex` (in the agent's namespace).
pub fn query_xdp(ifindex: u32) -> Result<XdpState, QueryError> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // A health check must not hang a scrape: the kernel answers at once, or not at all.
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: `timeout` is a valid timeval for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error().into());
    }
    let req = link_request(ifindex, 1);
    // SAFETY: `req` is valid for its length; an unbound netlink socket sends to the kernel.
    let sent = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error().into());
    }
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error().into());
    }
    parse_link_reply(&buf[..n as usize])
}

/// An `RTM_GETLINK` request for one interface.
fn link_request(ifindex: u32, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + IFINFOMSG_LEN;
    let mut req = Vec::with_capacity(len);
    req.extend_from_slice(&(len as u32).to_ne_bytes());
    req.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    req.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // ifinfomsg: family AF_UNSPEC, padding, type, index, flags, change.
    req.extend_from_slice(&[0, 0, 0, 0]);
    req.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    req.extend_from_slice(&[0; 8]);
    req
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The attributes in `b`: (type, payload).
fn attributes(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(len), Some(kind)) = (u16_at(b, 0), u16_at(b, 2)) {
        let len = len as usize;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind & NLA_TYPE_MASK, &b[4..len]));
        b = b.get((len + 3) & !3..).unwrap_or_default();
    }
    out
}

/// Reads the reply to [`link_request`].
pub fn parse_link_reply(buf: &[u8]) -> Result<XdpState, QueryError> {
    let len = u32_at(buf, 0).ok_or(QueryError::Malformed("short header"))? as usize;
    let kind = u16_at(buf, 4).ok_or(QueryError::Malformed("short header"))?;
    let msg = buf
        .get(..len)
        .filter(|_| len >= NLMSG_HDRLEN)
        .ok_or(QueryError::Malformed("bad length"))?;
    match kind {
        NLMSG_ERROR => {
            let errno =
                u32_at(msg, NLMSG_HDRLEN).ok_or(QueryError::Malformed("short error"))? as i32;
            return Err(match -errno {
                libc::ENODEV => QueryError::Gone,
                e => QueryError::Io(io::Error::from_raw_os_error(e)),
            });
        }
        RTM_NEWLINK => {}
        _ => return Err(QueryError::Malformed("not a link message")),
    }
    let attrs = msg
        .get(NLMSG_HDRLEN + IFINFOMSG_LEN..)
        .ok_or(QueryError::Malformed("short link message"))?;
    let mut state = XdpState::default();
    for (_, xdp) in attributes(attrs).into_iter().filter(|a| a.0 == IFLA_XDP) {
        for (kind, value) in attributes(xdp) {
            match kind {
                IFLA_XDP_ATTACHED => state.attached = value.first().copied().unwrap_or(0),
                IFLA_XDP_PROG_ID => state.prog_id = u32_at(value, 0),
                IFLA_XDP_DRV_PROG_ID => state.drv_prog_id = u32_at(value, 0),
                IFLA_XDP_SKB_PROG_ID => state.skb_prog_id = u32_at(value, 0),
                _ => {}
            }
        }
    }
    Ok(state)
}

/// `union bpf_attr` as `BPF_PROG_QUERY` reads it (the kernel zero-fills the rest).
#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_ifindex: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    count: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// The programs on the TCX egress hook of `ifindex`; `None` on kernels without TCX.
pub fn query_tcx_egress(ifindex: u32) -> Result<Option<Vec<u32>>, QueryError> {
    let mut ids = [0u32; 64];
    let mut attr = ProgQuery {
        target_ifindex: ifindex,
        attach_type: BPF_TCX_EGRESS,
        prog_ids: ids.as_mut_ptr() as u64,
        count: ids.len() as u32,
        ..ProgQuery::default()
    };
    // SAFETY: `attr` is a valid BPF_PROG_QUERY attribute block for its size, and `prog_ids`
    // points at `count` writable u32s that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &raw mut attr,
            size_of::<ProgQuery>(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODEV) => Err(QueryError::Gone),
            Some(libc::EINVAL) => Ok(None),
            _ => Err(e.into()),
        };
    }
    let n = (attr.count as usize).min(ids.len());
    Ok(Some(ids[..n].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(payload);
        m
    }

    fn link(attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0u8; IFINFOMSG_LEN];
        for a in attrs {
            p.extend_from_slice(a);
        }
        message(RTM_NEWLINK, &p)
    }

    #[test]
    fn request_is_one_getlink() {
        let r = link_request(7, 1);
        assert_eq!(r.len(), 32);
        assert_eq!(u32_at(&r, 0), Some(32));
        assert_eq!(u16_at(&r, 4), Some(RTM_GETLINK));
        assert_eq!(u32_at(&r, 20), Some(7));
    }

    #[test]
    fn reads_the_xdp_programs() {
        // A name before the XDP block, and a nested flag on it, as the kernel writes them.
        let xdp = [
            attr(IFLA_XDP_SKB_PROG_ID, &42u32.to_ne_bytes()),
            attr(IFLA_XDP_ATTACHED, &[XDP_ATTACHED_SKB]),
            attr(IFLA_XDP_PROG_ID, &42u32.to_ne_bytes()),
        ]
        .concat();
        let reply = link(&[attr(3, b"veth0\0"), attr(IFLA_XDP | 0x8000, &xdp)]);
        let state = parse_link_reply(&reply).expect("parses");
        assert_eq!(state.attached, XDP_ATTACHED_SKB);
        assert_eq!(state.prog_for(AttachedMode::Generic), Some(42));
        assert_eq!(state.prog_for(AttachedMode::Driver), None);
    }

    #[test]
    fn only_the_single_mode_id() {
        let xdp = [
            attr(IFLA_XDP_ATTACHED, &[XDP_ATTACHED_DRV]),
            attr(IFLA_XDP_PROG_ID, &9u32.to_ne_bytes()),
        ]
        .concat();
        let state = parse_link_reply(&link(&[attr(IFLA_XDP, &xdp)])).expect("parses");
        assert_eq!(state.prog_for(AttachedMode::Driver), Some(9));
        assert_eq!(state.prog_for(AttachedMode::Generic), None);
    }

    #[test]
    fn nothing_attached() {
        let xdp = attr(IFLA_XDP_ATTACHED, &[0]);
        let state = parse_link_reply(&link(&[attr(IFLA_XDP, &xdp)])).expect("parses");
        assert_eq!(state, XdpState::default());
        assert_eq!(state.prog_for(AttachedMode::Generic), None);
    }

    #[test]
    fn errors() {
        let gone = message(NLMSG_ERROR, &(-libc::ENODEV).to_ne_bytes());
        assert!(matches!(parse_link_reply(&gone), Err(QueryError::Gone)));
        let denied = message(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes());
        assert!(matches!(parse_link_reply(&denied), Err(QueryError::Io(_))));
        assert!(matches!(
            parse_link_reply(&[1, 2]),
            Err(QueryError::Malformed(_))
        ));
        // A length past the buffer and an attribute longer than its message.
        let mut bad = link(&[attr(IFLA_XDP, &[0; 8])]);
        bad[0] = 200;
        assert!(parse_link_reply(&bad).is_err());
        let mut long_attr = link(&[attr(IFLA_XDP, &[0; 8])]);
        let at = NLMSG_HDRLEN + IFINFOMSG_LEN;
        long_attr[at] = 250;
        assert_eq!(
            parse_link_reply(&long_attr).expect("parses"),
            XdpState::default()
        );
    }

    #[test]
    fn querying_a_missing_interface_says_gone() {
        // rtnetlink answers unprivileged GETLINK requests; no host has 2^31 - 1 interfaces.
        assert!(matches!(query_xdp(i32::MAX as u32), Err(QueryError::Gone)));
    }
}
