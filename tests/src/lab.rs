//! A two-namespace lab: a "portal" namespace and a "client" namespace joined by a veth pair,
//! with static addresses and neighbours (so no ARP noise), offloads off (so every frame on the
//! wire is one packet to the sensor). Dropping the [`Lab`] deletes both namespaces, and with
//! them the veth pair, also when a test panics.

use std::{
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

/// IPv4 address of the portal side.
pub const PORTAL_V4: &str = "10.203.0.1";
/// IPv4 address of the client side.
pub const CLIENT_V4: &str = "10.203.0.2";
/// IPv6 address of the portal side.
pub const PORTAL_V6: &str = "fd00:203::1";
/// IPv6 address of the client side.
pub const CLIENT_V6: &str = "fd00:203::2";
const PORTAL_MAC: &str = "02:00:00:cb:00:01";
const CLIENT_MAC: &str = "02:00:00:cb:00:02";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The namespaces and interfaces of one lab.
pub struct Lab {
    /// Portal namespace name.
    pub portal_ns: String,
    /// Client namespace name.
    pub client_ns: String,
    /// veth end inside the portal namespace (the sensor attaches here).
    pub portal_if: String,
    /// veth end inside the client namespace.
    pub client_if: String,
}

fn run(cmd: &[&str]) -> Result<Output, String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("running {}: {e}", cmd.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}

impl Lab {
    /// Creates a lab whose names start with `tag` (at most 4 characters, to keep interface
    /// names within 15).
    pub fn create(tag: &str) -> Result<Lab, String> {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab {
            portal_ns: format!("pct-{tag}-{id}-portal"),
            client_ns: format!("pct-{tag}-{id}-client"),
            portal_if: format!("{tag}p{id}"),
            client_if: format!("{tag}c{id}"),
        };
        // From here on, Drop cleans up whatever part was made.
        lab.setup()?;
        Ok(lab)
    }

    fn setup(&self) -> Result<(), String> {
        run(&["ip", "netns", "add", &self.portal_ns])?;
        run(&["ip", "netns", "add", &self.client_ns])?;
        // Before the veth exists, so that its IPv6 settings start quiet: router solicitations,
        // DAD and slow MLD retransmits would add packets nobody asked for.
        for ns in [&self.portal_ns, &self.client_ns] {
            for scope in ["all", "default"] {
                for key in [
                    "accept_ra=0",
                    "dad_transmits=0",
                    "router_solicitations=0",
                    "mldv1_unsolicited_report_interval=1",
                    "mldv2_unsolicited_report_interval=1",
                ] {
                    let setting = format!("net.ipv6.conf.{scope}.{key}");
                    run(&["ip", "netns", "exec", ns, "sysctl", "-qw", &setting])?;
                }
            }
        }
        run(&[
            "ip",
            "link",
            "add",
            &self.portal_if,
            "netns",
            &self.portal_ns,
            "address",
            PORTAL_MAC,
            "type",
            "veth",
            "peer",
            "name",
            &self.client_if,
            "netns",
            &self.client_ns,
            "address",
            CLIENT_MAC,
        ])?;
        for (ns, ifname, v4, v6, peer_v4, peer_v6, peer_mac) in [
            (
                &self.portal_ns,
                &self.portal_if,
                PORTAL_V4,
                PORTAL_V6,
                CLIENT_V4,
                CLIENT_V6,
                CLIENT_MAC,
            ),
            (
                &self.client_ns,
                &self.client_if,
                CLIENT_V4,
                CLIENT_V6,
                PORTAL_V4,
                PORTAL_V6,
                PORTAL_MAC,
            ),
        ] {
            let ip = |args: &[&str]| {
                let mut full = vec!["ip", "-n", ns.as_str()];
                full.extend_from_slice(args);
                run(&full)
            };
            ip(&["link", "set", "lo", "up"])?;
            ip(&["addr", "add", &format!("{v4}/24"), "dev", ifname])?;
            ip(&["addr", "add", &format!("{v6}/64"), "dev", ifname, "nodad"])?;
            ip(&["link", "set", ifname, "up"])?;
            ip(&[
                "neigh",
                "replace",
                peer_v4,
                "lladdr",
                peer_mac,
                "dev",
                ifname,
                "nud",
                "permanent",
            ])?;
            ip(&[
                "neigh",
                "replace",
                peer_v6,
                "lladdr",
                peer_mac,
                "dev",
                ifname,
                "nud",
                "permanent",
            ])?;
            // One frame on the wire per packet: no TSO/GSO/GRO super-packets.
            if let Err(e) = run(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", ifname, "tso", "off", "gso", "off",
                "gro", "off",
            ]) {
                return Err(format!("{e} (ethtool comes with `cargo xtask setup`)"));
            }
        }
        Ok(())
    }

    /// Runs a command inside `ns` and waits for it; an error says what failed.
    pub fn exec(&self, ns: &str, cmd: &[&str]) -> Result<Output, String> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(cmd);
        run(&full)
    }

    /// Starts a command inside `ns` with its output captured.
    pub fn spawn(&self, ns: &str, cmd: &[&str]) -> Result<Child, String> {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", cmd.join(" ")))
    }

    /// (rx_packets, rx_bytes, tx_packets, tx_bytes) of the portal interface, as the kernel
    /// counts them for each veth end.
    pub fn portal_stats(&self) -> Result<[u64; 4], String> {
        self.stats(&self.portal_ns, &self.portal_if)
    }

    /// The same for the client end.
    pub fn client_stats(&self) -> Result<[u64; 4], String> {
        self.stats(&self.client_ns, &self.client_if)
    }

    fn stats(&self, ns: &str, ifname: &str) -> Result<[u64; 4], String> {
        let mut v = [0u64; 4];
        for (i, name) in ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"]
            .iter()
            .enumerate()
        {
            let path = format!("/sys/class/net/{ifname}/statistics/{name}");
            let out = self.exec(ns, &["cat", &path])?;
            v[i] = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|e| format!("parsing {path}: {e}"))?;
        }
        Ok(v)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        for ns in [&self.portal_ns, &self.client_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}
