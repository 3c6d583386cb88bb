//! The agent's TOML configuration: every setting, its default, and strict parsing (an unknown
//! key is an error naming the key and its line). `docs/config.md` documents each setting.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::{datapath::XdpModeChoice, flows::Timeouts};

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Interfaces to attach to, in addition to those given with `--iface`.
    pub interfaces: Vec<String>,
    /// XDP attach mode: `auto`, `driver` or `generic`.
    pub xdp_mode: XdpModeChoice,
    /// Where EVE records go: a file path, or `-` for standard output.
    pub eve: String,
    /// Flow accounting.
    pub flows: FlowConfig,
    /// Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Deep inspection of flow heads.
    pub inspect: InspectSection,
}

/// `[flows]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Entries in the kernel flow map (each costs about 100 bytes per CPU).
    pub capacity: u32,
    /// How often userspace walks the flow map to expire flows, milliseconds.
    pub sweep_interval_ms: u64,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// `[metrics]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` and `/healthz`.
    pub enabled: bool,
    /// Address and port to listen on.
    pub listen: String,
}

/// `[inspect]`: what the kernel sends for inspection, and the live pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InspectSection {
    /// Head budget of each direction of every flow, bytes: packets are sent for inspection
    /// until their L4 payload (at least 64 bytes a packet) reaches it (0: no heads).
    pub head_bytes: u32,
    /// After the head, send one packet in this many (0: none).
    pub sample_one_in: u32,
    /// Size of the kernel ring buffer, bytes: a power of two, at least 64 KiB.
    pub ring_bytes: u32,
    /// Records waiting between the ring-buffer reader and the inspection thread; beyond it
    /// records are dropped and counted.
    pub queue_depth: usize,
    /// Pick up TCP sessions whose handshake was not seen (flows older than the agent).
    pub midstream: bool,
}

impl Default for InspectSection {
    fn default() -> Self {
        InspectSection {
            head_bytes: sensor_common::head::DEFAULT_HEAD_BYTES,
            sample_one_in: 0,
            ring_bytes: sensor_common::head::DEFAULT_RING_BYTES,
            queue_depth: 65_536,
            midstream: true,
        }
    }
}

/// Default EVE log path.
pub const DEFAULT_EVE: &str = "/var/log/precinct/eve.json";
/// Default metrics address.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9727";

impl Default for Config {
    fn default() -> Self {
        Config {
            interfaces: Vec::new(),
            xdp_mode: XdpModeChoice::Auto,
            eve: DEFAULT_EVE.into(),
            flows: FlowConfig::default(),
            metrics: MetricsConfig::default(),
            inspect: InspectSection::default(),
        }
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            capacity: sensor_common::DEFAULT_FLOW_CAPACITY,
            sweep_interval_ms: 1000,
            timeouts: Timeouts::default(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: DEFAULT_METRICS.into(),
        }
    }
}

impl Config {
    /// Parses configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {}",
                origin.display(),
                e.to_string().trim_end().replace('\n', "\n  ")
            )
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        Config::parse(&text, path)
    }

    fn validate(&self, origin: &Path) -> anyhow::Result<()> {
        let bad = |what: &str| anyhow::anyhow!("{}: {what}", origin.display());
        if self.flows.capacity < 64 {
            return Err(bad("flows.capacity must be at least 64"));
        }
        if self.flows.sweep_interval_ms == 0 {
            return Err(bad("flows.sweep_interval_ms must be above 0"));
        }
        let ring = self.inspect.ring_bytes;
        if !ring.is_power_of_two() || ring < 64 << 10 {
            return Err(bad(&format!(
                "inspect.ring_bytes = {ring} must be a power of two of at least 65536 (64 KiB)"
            )));
        }
        if self.inspect.queue_depth == 0 {
            return Err(bad("inspect.queue_depth must be above 0"));
        }
        if self.metrics.enabled && self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(&format!(
                "metrics.listen = {:?} is not an address:port such as 127.0.0.1:9727",
                self.metrics.listen
            )));
        }
        Ok(())
    }

    /// The EVE target as a path (None for standard output).
    pub fn eve_path(&self) -> Option<PathBuf> {
        (self.eve != "-").then(|| PathBuf::from(&self.eve))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", Path::new("x.toml")).expect("parse");
        assert_eq!(c, Config::default());
        assert_eq!(c.metrics.listen, "127.0.0.1:9727");
        assert_eq!(c.eve, "/var/log/precinct/eve.json");
    }

    #[test]
    fn every_section_parses() {
        let text = r#"
interfaces = ["eth0", "eth1"]
xdp_mode = "generic"
eve = "-"

[flows]
capacity = 1024
sweep_interval_ms = 250

[flows.timeouts]
new_secs = 5
tcp_established_secs = 100
tcp_closed_secs = 2
udp_established_secs = 50
icmp_established_secs = 40
other_established_secs = 30
max_age_secs = 600

[metrics]
enabled = false
listen = "0.0.0.0:1"

[inspect]
head_bytes = 8192
sample_one_in = 100
ring_bytes = 1048576
queue_depth = 10
midstream = false
"#;
        let c = Config::parse(text, Path::new("x.toml")).expect("parse");
        assert_eq!(c.interfaces, ["eth0", "eth1"]);
        assert_eq!(c.xdp_mode, XdpModeChoice::Generic);
        assert_eq!(c.flows.capacity, 1024);
        assert_eq!(c.flows.timeouts.tcp_closed_secs, 2);
        assert_eq!(c.flows.timeouts.max_age_secs, 600);
        assert!(!c.metrics.enabled);
        assert_eq!(c.eve_path(), None);
        assert_eq!(c.inspect.head_bytes, 8192);
        assert_eq!(c.inspect.sample_one_in, 100);
        assert_eq!(c.inspect.ring_bytes, 1 << 20);
        assert_eq!(c.inspect.queue_depth, 10);
        assert!(!c.inspect.midstream);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = "eve = \"-\"\n\n[flows]\ncapacity = 100\ncapactiy = 5\n";
        let e = Config::parse(text, Path::new("/etc/precinct.toml")).expect_err("must fail");
        let msg = format!("{e:#}");
        assert!(msg.contains("/etc/precinct.toml"), "{msg}");
        assert!(msg.contains("capactiy"), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
    }

    #[test]
    fn bad_values_are_explained() {
        let e = Config::parse("xdp_mode = \"fast\"\n", Path::new("c.toml")).expect_err("mode");
        assert!(format!("{e:#}").contains("line 1"), "{e:#}");
        let e = Config::parse("[metrics]\nlisten = \"nowhere\"\n", Path::new("c.toml"))
            .expect_err("listen");
        assert!(format!("{e:#}").contains("metrics.listen"), "{e:#}");
        let e = Config::parse("[flows]\ncapacity = 3\n", Path::new("c.toml")).expect_err("cap");
        assert!(format!("{e:#}").contains("flows.capacity"), "{e:#}");
        let e = Config::parse("[inspect]\nring_bytes = 100000\n", Path::new("c.toml"))
            .expect_err("ring");
        assert!(format!("{e:#}").contains("inspect.ring_bytes"), "{e:#}");
    }
}
