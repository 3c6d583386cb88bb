//! The agent's TOML configuration: every setting, its default, and strict parsing (an unknown
//! key is an error naming the key and its line). `docs/config.md` documents each setting.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::Deserialize;

use crate::{
    datapath::XdpModeChoice,
    detect::addr::{default_vars, parse_addr, parse_port, AddrError},
    flows::Timeouts,
};

/// What is wrong with `[rules]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RulesConfigError {
    /// An empty entry in `rules.files`.
    #[error("rules.files has an empty path ({0:?})")]
    EmptyFile(PathBuf),
    /// `rules.classification = ""`.
    #[error("rules.classification is an empty path")]
    EmptyClassification,
    /// `rules.inspection_limit = 0`.
    #[error(
        "rules.inspection_limit = 0 would make every rule with payload keywords fail; leave \
         it out for the default ({}) or give a positive step count",
        crate::detect::DEFAULT_INSPECTION_LIMIT
    )]
    ZeroInspectionLimit,
    /// A key of `rules.vars` that cannot be a variable name.
    #[error(
        "rules.vars: {0:?} is not a variable name (letters, digits and _, written without the $)"
    )]
    VarName(String),
    /// A variable that fails the same way as an address and as a port expression.
    #[error("rules.vars.{name} = {value:?}: {error}")]
    Var {
        name: String,
        value: String,
        error: AddrError,
    },
    /// A variable that is neither an address nor a port expression.
    #[error(
        "rules.vars.{name} = {value:?} is neither an address expression ({addr}) nor a port \
         expression ({port})"
    )]
    VarNeither {
        name: String,
        value: String,
        addr: Box<AddrError>,
        port: Box<AddrError>,
    },
}

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
    /// Layout of EVE `dns` records: 3 (Suricata 8's, the default) or 2 (Suricata 7's).
    pub dns_version: u8,
    /// Flow accounting.
    pub flows: FlowConfig,
    /// Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Deep inspection of flow heads.
    pub inspect: InspectSection,
    /// Signatures.
    pub rules: RulesSection,
    /// What alert records carry besides the alert.
    pub alerts: AlertsSection,
    /// In-kernel protection: lists, anti-spoofing, port policy, rate limits, modes.
    pub protect: crate::protect::settings::ProtectSection,
    /// Which sensor, organisation and asset the records come from.
    pub sensor: crate::identity::SensorSection,
    /// EVE sinks besides `eve`: `[[outputs]]` tables (docs/outputs.md).
    pub outputs: Vec<crate::sinks::OutputSpec>,
    /// Keep the programs, maps and attachments pinned in bpffs across restarts
    /// (docs/restarts.md).
    pub pin: bool,
    /// The pin directory, on a BPF filesystem.
    pub pin_path: PathBuf,
}

pub use crate::eve::alert::AlertsSection;

/// `[flows]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Entries in the kernel flow map (each costs about 100 bytes per CPU).
    pub capacity: u32,
    /// How often userspace walks the flow map to expire flows, milliseconds.
    pub sweep_interval_ms: u64,
    /// Slots of the kernel's pending table (flows not yet confirmed, see docs/architecture.md):
    /// a power of two from 1024 (default 65536, 472 bytes each) keeps unconfirmed flows out of
    /// the flow map, so that a flood of spoofed sources cannot fill it; 0 turns it off and
    /// every flow enters the flow map with its first packet.
    pub pending_slots: u32,
    /// Flow records written a second, at most, for unconfirmed flows that went idle in the
    /// pending table (0: none); the rest wait for the next sweep, or are overwritten first
    /// and counted.
    pub pending_records_per_sec: u64,
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
    /// Flows the pipeline tracks at once; beyond it new flows are counted and not inspected.
    pub max_flows: usize,
    /// IP datagrams being reassembled from fragments at once; beyond it the oldest gives way.
    pub defrag_datagrams: usize,
    /// Fragments of one datagram; beyond it the datagram is given up.
    pub defrag_fragments: usize,
    /// Bytes all datagrams being reassembled may hold; beyond it the oldest give way.
    pub defrag_memcap_bytes: usize,
    /// A datagram not complete this many seconds after its first fragment is given up.
    pub defrag_timeout_secs: u64,
    /// Once a flow is encrypted (TLS application data, SSH after NEWKEYS): `"default"` stops
    /// payload rules on it, as Suricata's default `encryption-handling` does; `"full"` runs
    /// them on the ciphertext too.
    pub encryption_handling: crate::inspect::EncryptionHandling,
}

impl Config {
    /// The `dns` record layout `dns_version` names (validated to be 2 or 3).
    pub fn dns_layout(&self) -> crate::applayer::dns::DnsVersion {
        if self.dns_version == 2 {
            crate::applayer::dns::DnsVersion::V2
        } else {
            crate::applayer::dns::DnsVersion::V3
        }
    }
}

impl InspectSection {
    /// The fragment reassembly limits these settings give.
    pub fn defrag_limits(&self) -> crate::inspect::defrag::DefragLimits {
        crate::inspect::defrag::DefragLimits {
            max_datagrams: self.defrag_datagrams,
            max_fragments: self.defrag_fragments,
            memcap: self.defrag_memcap_bytes,
            timeout_ns: self.defrag_timeout_secs.saturating_mul(1_000_000_000),
        }
    }
}

impl Default for InspectSection {
    fn default() -> Self {
        InspectSection {
            head_bytes: sensor_common::head::DEFAULT_HEAD_BYTES,
            sample_one_in: 0,
            ring_bytes: sensor_common::head::DEFAULT_RING_BYTES,
            queue_depth: 65_536,
            midstream: true,
            max_flows: 1 << 20,
            defrag_datagrams: 65_536,
            defrag_fragments: 256,
            defrag_memcap_bytes: 32 << 20,
            defrag_timeout_secs: 60,
            encryption_handling: crate::inspect::EncryptionHandling::Default,
        }
    }
}

/// `[rules]`: the signature files and what they are compiled with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesSection {
    /// Rule files, loaded in this order. A relative path is taken from the configuration
    /// file's directory.
    pub files: Vec<PathBuf>,
    /// A `classification.config` whose entries are added to (and override) the built-in ones.
    pub classification: Option<PathBuf>,
    /// Address and port variables (`HOME_NET = "[10.0.0.0/8]"`), merged over Suricata's
    /// defaults ([`default_vars`]).
    pub vars: BTreeMap<String, String>,
    /// The multi-pattern matcher of the rule prefilters: `"auto"` (Hyperscan where the host
    /// has `libhs.so.5`, Aho-Corasick otherwise), `"hyperscan"` (loading rules fails
    /// without it) or `"aho-corasick"`.
    pub matcher: crate::detect::Matcher,
    /// Steps one rule's payload keywords may take backtracking over one buffer before the
    /// rule is taken as not matching (Suricata's `detect.inspection-recursion-limit`);
    /// default [`crate::detect::DEFAULT_INSPECTION_LIMIT`].
    pub inspection_limit: Option<u32>,
}

impl RulesSection {
    /// The variables rules compile with: Suricata's defaults, overridden and extended by
    /// `vars`.
    pub fn merged_vars(&self) -> HashMap<String, String> {
        let mut v = default_vars();
        v.extend(self.vars.iter().map(|(k, val)| (k.clone(), val.clone())));
        v
    }

    /// Takes relative paths from `base` (the configuration file's directory).
    fn resolve(&mut self, base: &Path) {
        for f in self.files.iter_mut().chain(self.classification.as_mut()) {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
    }

    /// The step limit rules are evaluated with.
    pub fn inspection_limit(&self) -> u32 {
        self.inspection_limit
            .unwrap_or(crate::detect::DEFAULT_INSPECTION_LIMIT)
    }

    fn validate(&self) -> Result<(), RulesConfigError> {
        if self.inspection_limit == Some(0) {
            return Err(RulesConfigError::ZeroInspectionLimit);
        }
        if let Some(f) = self.files.iter().find(|f| f.as_os_str().is_empty()) {
            return Err(RulesConfigError::EmptyFile(f.clone()));
        }
        if self
            .classification
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return Err(RulesConfigError::EmptyClassification);
        }
        let merged = self.merged_vars();
        for (name, value) in &self.vars {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(RulesConfigError::VarName(name.clone()));
            }
            // A variable is an address or a port expression; which one shows where a rule
            // uses it, so either is accepted here.
            if let Err(addr) = parse_addr(value, &merged) {
                if let Err(port) = parse_port(value, &merged) {
                    let (name, value) = (name.clone(), value.clone());
                    if port == addr {
                        return Err(RulesConfigError::Var {
                            name,
                            value,
                            error: addr,
                        });
                    }
                    return Err(RulesConfigError::VarNeither {
                        name,
                        value,
                        addr: Box::new(addr),
                        port: Box::new(port),
                    });
                }
            }
        }
        Ok(())
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
            dns_version: 3,
            eve: DEFAULT_EVE.into(),
            flows: FlowConfig::default(),
            metrics: MetricsConfig::default(),
            inspect: InspectSection::default(),
            rules: RulesSection::default(),
            alerts: AlertsSection::default(),
            protect: Default::default(),
            sensor: Default::default(),
            outputs: Vec::new(),
            pin: false,
            pin_path: crate::datapath::pin::DEFAULT_PIN_PATH.into(),
        }
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            capacity: sensor_common::DEFAULT_FLOW_CAPACITY,
            sweep_interval_ms: 1000,
            pending_slots: sensor_common::pending::DEFAULT_PENDING_SLOTS,
            pending_records_per_sec: 1000,
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
    /// Relative paths in it are taken from `origin`'s directory.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Config> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {}",
                origin.display(),
                e.to_string().trim_end().replace('\n', "\n  ")
            )
        })?;
        config.validate(origin)?;
        let dir = origin.parent().unwrap_or(Path::new(""));
        config.rules.resolve(dir);
        for output in &mut config.outputs {
            output.resolve(dir);
        }
        for list in &mut config.protect.lists {
            if list.file.is_relative() {
                list.file = dir.join(&list.file);
            }
        }
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
        let slots = self.flows.pending_slots;
        if slots != 0 && (!slots.is_power_of_two() || !(1024..=1 << 22).contains(&slots)) {
            return Err(bad(&format!(
                "flows.pending_slots = {slots} must be 0 (off) or a power of two from 1024 to \
                 4194304, such as 32768"
            )));
        }
        let ring = self.inspect.ring_bytes;
        if !ring.is_power_of_two() || ring < 64 << 10 {
            return Err(bad(&format!(
                "inspect.ring_bytes = {ring} must be a power of two of at least 65536 (64 KiB)"
            )));
        }
        if !matches!(self.dns_version, 2 | 3) {
            return Err(bad(&format!(
                "dns_version = {} is not a dns record layout: write 3 (Suricata 8's, the \
                 default) or 2 (Suricata 7's)",
                self.dns_version
            )));
        }
        if self.inspect.queue_depth == 0 {
            return Err(bad("inspect.queue_depth must be above 0"));
        }
        for (name, v) in [
            ("max_flows", self.inspect.max_flows),
            ("defrag_datagrams", self.inspect.defrag_datagrams),
            ("defrag_fragments", self.inspect.defrag_fragments),
        ] {
            if v == 0 {
                return Err(bad(&format!("inspect.{name} must be above 0")));
            }
        }
        if self.inspect.defrag_memcap_bytes < 65_536 {
            return Err(bad(
                "inspect.defrag_memcap_bytes must be at least 65536: one datagram of the \
                 largest size must fit",
            ));
        }
        if self.inspect.defrag_timeout_secs == 0 {
            return Err(bad("inspect.defrag_timeout_secs must be above 0"));
        }
        self.rules.validate().map_err(|e| bad(&e.to_string()))?;
        self.protect.validate().map_err(|e| bad(&e.to_string()))?;
        self.sensor.validate().map_err(|e| bad(&e.to_string()))?;
        crate::sinks::spec::validate_all(&self.outputs).map_err(|e| bad(&e.to_string()))?;
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
max_flows = 5000
defrag_datagrams = 100
defrag_fragments = 16
defrag_memcap_bytes = 1048576
defrag_timeout_secs = 5
encryption_handling = "full"

[rules]
files = ["/etc/precinct/rules/local.rules", "et/emerging.rules"]
classification = "classification.config"
matcher = "aho-corasick"
inspection_limit = 10000

[rules.vars]
HOME_NET = "[10.0.0.0/8]"
PORTAL_SERVERS = "[10.20.0.5, 10.20.0.6]"
PORTAL_PORTS = "[443,8443]"
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
        assert_eq!(
            c.inspect.encryption_handling,
            crate::inspect::EncryptionHandling::Full
        );
        assert_eq!(c.inspect.ring_bytes, 1 << 20);
        assert_eq!(c.inspect.queue_depth, 10);
        assert!(!c.inspect.midstream);
        assert_eq!(c.inspect.max_flows, 5000);
        let d = c.inspect.defrag_limits();
        assert_eq!(
            (d.max_datagrams, d.max_fragments, d.memcap, d.timeout_ns),
            (100, 16, 1 << 20, 5_000_000_000)
        );
        assert_eq!(c.rules.files.len(), 2);
        assert_eq!(c.rules.inspection_limit(), 10000);
        assert_eq!(c.rules.vars.len(), 3);
    }

    #[test]
    fn rules_section_defaults_and_paths() {
        let c = Config::parse("", Path::new("x.toml")).expect("parse");
        assert!(c.rules.files.is_empty());
        assert_eq!(c.rules.classification, None);
        assert_eq!(c.rules.merged_vars(), default_vars());
        assert_eq!(
            c.rules.inspection_limit(),
            crate::detect::DEFAULT_INSPECTION_LIMIT
        );
        // Relative paths are taken from the configuration file's directory.
        let text = "[rules]\nfiles = [\"local.rules\", \"/srv/et.rules\"]\nclassification = \"c.config\"\n";
        let c = Config::parse(text, Path::new("/etc/precinct/precinct.toml")).expect("parse");
        assert_eq!(
            c.rules.files,
            [
                PathBuf::from("/etc/precinct/local.rules"),
                PathBuf::from("/srv/et.rules")
            ]
        );
        assert_eq!(
            c.rules.classification,
            Some(PathBuf::from("/etc/precinct/c.config"))
        );
    }

    #[test]
    fn rules_vars_merge_over_the_defaults() {
        let text = "[rules.vars]\nHOME_NET = \"[10.0.0.0/8]\"\nPORTAL_PORTS = \"[443,8443]\"\n";
        let c = Config::parse(text, Path::new("x.toml")).expect("parse");
        let v = c.rules.merged_vars();
        assert_eq!(v["HOME_NET"], "[10.0.0.0/8]");
        assert_eq!(v["PORTAL_PORTS"], "[443,8443]");
        // Defaults not overridden stay, and see the override.
        assert_eq!(v["EXTERNAL_NET"], "!$HOME_NET");
        assert_eq!(v["HTTP_PORTS"], "80");
        let ext = parse_addr("$EXTERNAL_NET", &v).expect("external");
        assert!(!ext.matches("10.1.2.3".parse().expect("ip")));
        assert!(ext.matches("192.168.1.1".parse().expect("ip")));
    }

    #[test]
    fn pending_slots_are_off_or_a_bounded_power_of_two() {
        let parse = |n: &str| {
            Config::parse(
                &format!("[flows]\npending_slots = {n}\n"),
                Path::new("c.toml"),
            )
        };
        assert_eq!(parse("0").expect("off").flows.pending_slots, 0);
        assert_eq!(parse("32768").expect("on").flows.pending_slots, 32768);
        for bad in ["1000", "512", "8388608"] {
            let e = format!("{:#}", parse(bad).expect_err(bad));
            assert!(e.contains("c.toml") && e.contains("power of two"), "{e}");
        }
    }

    #[test]
    fn rules_section_is_checked() {
        let err = |text: &str| {
            let e = Config::parse(text, Path::new("c.toml")).expect_err(text);
            format!("{e:#}")
        };
        let e = err("[rules]\nfile = [\"a.rules\"]\n");
        assert!(
            e.contains("unknown field `file`") && e.contains("line 2"),
            "{e}"
        );
        assert!(e.contains("files"), "the allowed keys are listed: {e}");
        let e = err("[rules]\nfiles = \"a.rules\"\n");
        assert!(e.contains("line 2"), "{e}");
        let e = err("[rules]\nfiles = [\"\"]\n");
        assert!(e.contains("rules.files"), "{e}");
        let e = err("[rules]\ninspection_limit = 0\n");
        assert!(
            e.contains("rules.inspection_limit") && e.contains("3000"),
            "{e}"
        );
        let e = err("[rules]\ninspection_limit = -5\n");
        assert!(
            e.contains("inspection_limit") && e.contains("line 2"),
            "{e}"
        );
        let e = err("[rules.vars]\nHOME_NET = \"[10.0.0.0/33]\"\n");
        assert!(e.contains("rules.vars.HOME_NET"), "{e}");
        let e = err("[rules.vars]\nPORTS = \"$NOT_DEFINED\"\n");
        assert!(
            e.contains("rules.vars.PORTS") && e.contains("NOT_DEFINED"),
            "{e}"
        );
        let e = err("[rules.vars]\n\"$HOME_NET\" = \"any\"\n");
        assert!(e.contains("not a variable name"), "{e}");
        let e = err("[rules.vars]\nHOME_NET = \"$HOME_NET\"\n");
        assert!(e.contains("rules.vars.HOME_NET"), "a loop is refused: {e}");
        // A number is not a variable value: variables are written as in a rule header.
        let e = err("[rules.vars]\nSSH_PORTS = 22\n");
        assert!(e.contains("line 2") && e.contains("string"), "{e}");
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
        let e = Config::parse(
            "[inspect]\nencryption_handling = \"bypass\"\n",
            Path::new("c.toml"),
        )
        .expect_err("encryption_handling");
        let text = format!("{e:#}");
        assert!(
            text.contains("line 2") && text.contains("default") && text.contains("full"),
            "{text}"
        );
    }
}
