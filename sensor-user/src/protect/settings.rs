//! `[protect]` in the configuration file: the global mode, the per-check modes, the named
//! lists, ports, rates and addresses, their validation, and the kernel [`Policy`] they make.

use std::path::PathBuf;

use sensor_common::protect::{
    class, port_slot, reason, Policy, MAX_LISTS, PORTS_TCP, PORTS_UDP, PORT_WORDS,
};
use serde::Deserialize;

use super::lists::{Format, Prefix, PrefixError};

/// What is wrong with `[protect]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// More lists than the kernel's list ids hold.
    #[error(
        "{count} lists configured; at most {max} fit (one id is `{manual}`)",
        manual = MANUAL_LIST
    )]
    TooManyLists { count: usize, max: usize },
    /// A list name with characters other than letters, digits, `-`, `_` and `.`.
    #[error("list name {0:?}: use letters, digits, '-', '_' and '.' only")]
    ListName(String),
    /// Two lists with one name, or a list named `manual`.
    #[error(
        "list name {0:?} is used twice (or is the reserved `{manual}`)",
        manual = MANUAL_LIST
    )]
    DuplicateListName(String),
    /// A bad prefix under `key`.
    #[error("{key}: {error}")]
    Prefix {
        /// `protect.allow`, `protect.own_prefixes` or `protect.bogons.allow`.
        key: &'static str,
        error: PrefixError,
    },
    /// A `protect.ports` item that is neither a port nor `LOW-HIGH`.
    #[error("protect.ports: {0:?} is not a port or a LOW-HIGH port range")]
    NotAPort(String),
    /// `HIGH-LOW`.
    #[error("protect.ports: port range {0:?} runs backwards")]
    BackwardsPorts(String),
    /// A rate limit with a zero rate or burst.
    #[error(
        "protect.rate_limit.{0}: rate and burst must be at least 1 (leave the entry out to turn \
         the limit off)"
    )]
    ZeroRate(&'static str),
    /// A block table with no room.
    #[error("protect.v4_capacity and v6_capacity must be at least 1")]
    ZeroCapacity,
}

/// What a check does with a packet that fails it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The check does not run.
    Off,
    /// Count and report what would be dropped; drop nothing.
    Monitor,
    /// Drop.
    Prevent,
}

impl Mode {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Monitor => "monitor",
            Mode::Prevent => "prevent",
        }
    }
}

/// `[protect]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectSection {
    /// The mode of every check that does not set its own: `monitor` (default) or `prevent`.
    pub mode: Mode,
    /// The control socket of `precinct block` and `precinct lists reload`.
    pub control_socket: PathBuf,
    /// Drop events per second at most, per CPU, hook and reason; 0 sends none.
    pub drop_events_per_second: u32,
    /// Sources that skip every ingress check (the office network, the SOC's scanners).
    pub allow: Vec<String>,
    /// Prefixes that are the host's own besides the addresses found on its interfaces.
    pub own_prefixes: Vec<String>,
    /// Read the host's addresses from its interfaces (and re-read them when they change).
    pub discover_addresses: bool,
    /// How often to look for address changes, seconds.
    pub address_refresh_seconds: u64,
    /// IPv4 prefixes the kernel table holds at most (per generation).
    pub v4_capacity: u32,
    /// IPv6 prefixes the kernel table holds at most (per generation).
    pub v6_capacity: u32,
    /// Manual entries (`precinct block add`) at most.
    pub manual_capacity: usize,
    /// The mode of manual entries; the global mode when absent.
    pub manual_mode: Option<Mode>,
    /// Bogon sources.
    pub bogons: BogonSection,
    /// Spoofed sources.
    pub spoofing: SpoofingSection,
    /// Inbound port policy.
    pub ports: PortSection,
    /// Per-source rate limits.
    pub rate_limit: RateSection,
    /// Named list files.
    pub lists: Vec<ListSpec>,
}

impl Default for ProtectSection {
    fn default() -> Self {
        ProtectSection {
            mode: Mode::Monitor,
            control_socket: PathBuf::from(super::control::DEFAULT_SOCKET),
            drop_events_per_second: 10,
            allow: Vec::new(),
            own_prefixes: Vec::new(),
            discover_addresses: true,
            address_refresh_seconds: 5,
            v4_capacity: sensor_common::protect::DEFAULT_V4_CAPACITY,
            v6_capacity: sensor_common::protect::DEFAULT_V6_CAPACITY,
            manual_capacity: 100_000,
            manual_mode: None,
            bogons: BogonSection::default(),
            spoofing: SpoofingSection::default(),
            ports: PortSection::default(),
            rate_limit: RateSection::default(),
            lists: Vec::new(),
        }
    }
}

/// `[protect.bogons]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BogonSection {
    /// Mode of the check; the global mode when absent.
    pub mode: Option<Mode>,
    /// Check the built-in RFC 6890 special-purpose ranges.
    pub builtin: bool,
    /// Sources never treated as bogons (the host's connected subnets are added).
    pub allow: Vec<String>,
}

impl Default for BogonSection {
    fn default() -> Self {
        BogonSection {
            mode: None,
            builtin: true,
            allow: Vec::new(),
        }
    }
}

/// `[protect.spoofing]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoofingSection {
    /// Ingress packets from the host's own addresses or prefixes; global mode when absent.
    pub own_prefix: Option<Mode>,
    /// Egress packets from addresses that are not the host's; global mode when absent.
    pub egress: Option<Mode>,
}

/// `[protect.ports]`: absent protocol lists are not enforced; an empty list closes every port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortSection {
    /// Mode of the check; the global mode when absent.
    pub mode: Option<Mode>,
    /// Open TCP ports: numbers or `"LOW-HIGH"` ranges.
    pub tcp: Option<Vec<PortItem>>,
    /// Open UDP ports.
    pub udp: Option<Vec<PortItem>>,
}

/// A port or a range.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PortItem {
    /// One port.
    One(u16),
    /// `"LOW-HIGH"` (or one port as a string).
    Range(String),
}

impl PortItem {
    fn range(&self) -> Result<(u16, u16), SettingsError> {
        match self {
            PortItem::One(p) => Ok((*p, *p)),
            PortItem::Range(s) => {
                let parse = |t: &str| {
                    t.trim()
                        .parse::<u16>()
                        .map_err(|_| SettingsError::NotAPort(s.clone()))
                };
                let (lo, hi) = match s.split_once('-') {
                    Some((a, b)) => (parse(a)?, parse(b)?),
                    None => (parse(s)?, parse(s)?),
                };
                if lo > hi {
                    return Err(SettingsError::BackwardsPorts(s.clone()));
                }
                Ok((lo, hi))
            }
        }
    }
}

/// `[protect.rate_limit]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateSection {
    /// Mode of the check; the global mode when absent.
    pub mode: Option<Mode>,
    /// TCP SYNs per source.
    pub syn: Option<Rate>,
    /// UDP packets per source.
    pub udp: Option<Rate>,
    /// ICMP/ICMPv6 packets per source (neighbour discovery is never limited).
    pub icmp: Option<Rate>,
}

/// A token bucket: `rate` packets a second on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Packets per second.
    pub rate: u32,
    /// Packets at once (at least 1).
    pub burst: u32,
}

/// What a named list's entries mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// Known-bad sources: reason `blocklist`.
    #[default]
    Block,
    /// Unallocated or special-purpose space (Team Cymru fullbogons): reason `bogon`.
    Bogon,
}

/// `[[protect.lists]]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    /// Name in metrics, events and `precinct status`.
    pub name: String,
    /// The list file.
    pub file: PathBuf,
    /// File format; `auto` reads all supported formats.
    #[serde(default)]
    pub format: Format,
    /// `block` or `bogon`.
    #[serde(default)]
    pub kind: ListKind,
    /// This list's mode; the global (or bogon check's) mode when absent.
    pub mode: Option<Mode>,
    /// Also drop egress packets to the list's addresses.
    #[serde(default)]
    pub egress: bool,
}

/// The name of the list that `precinct block add` fills (list id 0).
pub const MANUAL_LIST: &str = "manual";

impl ProtectSection {
    /// Checks what the types cannot: list names, ports, rates, prefixes.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.lists.len() + 1 > MAX_LISTS {
            return Err(SettingsError::TooManyLists {
                count: self.lists.len(),
                max: MAX_LISTS - 1,
            });
        }
        let mut names = std::collections::BTreeSet::new();
        names.insert(MANUAL_LIST);
        for l in &self.lists {
            if l.name.is_empty()
                || !l
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(SettingsError::ListName(l.name.clone()));
            }
            if !names.insert(&l.name) {
                return Err(SettingsError::DuplicateListName(l.name.clone()));
            }
        }
        for (key, items) in [
            ("protect.allow", &self.allow),
            ("protect.own_prefixes", &self.own_prefixes),
            ("protect.bogons.allow", &self.bogons.allow),
        ] {
            for s in items {
                s.parse::<Prefix>()
                    .map_err(|error| SettingsError::Prefix { key, error })?;
            }
        }
        for items in [&self.ports.tcp, &self.ports.udp].into_iter().flatten() {
            for i in items {
                i.range()?;
            }
        }
        for (name, r) in self.rates() {
            if let Some(r) = r {
                if r.rate == 0 || r.burst == 0 {
                    return Err(SettingsError::ZeroRate(name));
                }
            }
        }
        if self.v4_capacity == 0 || self.v6_capacity == 0 {
            return Err(SettingsError::ZeroCapacity);
        }
        Ok(())
    }

    fn rates(&self) -> [(&'static str, Option<Rate>); class::COUNT] {
        [
            (class::NAMES[class::SYN], self.rate_limit.syn),
            (class::NAMES[class::UDP], self.rate_limit.udp),
            (class::NAMES[class::ICMP], self.rate_limit.icmp),
        ]
    }

    /// The mode of the manual list.
    pub fn manual_mode(&self) -> Mode {
        self.manual_mode.unwrap_or(self.mode)
    }

    /// The kernel policy (generation 0); list id `i + 1` is `lists[i]`, id 0 is manual.
    pub fn policy(&self) -> Policy {
        let global = self.mode;
        let mut p = Policy::default();
        let mut set = |r: u8, m: Mode| match m {
            Mode::Off => {}
            Mode::Monitor => p.enabled |= 1 << r,
            Mode::Prevent => {
                p.enabled |= 1 << r;
                p.prevent |= 1 << r;
            }
        };
        set(reason::BOGON, self.bogons.mode.unwrap_or(global));
        set(
            reason::OWN_PREFIX_SPOOFED,
            self.spoofing.own_prefix.unwrap_or(global),
        );
        set(
            reason::EGRESS_SPOOFED,
            self.spoofing.egress.unwrap_or(global),
        );
        set(reason::BLOCKLIST, global);
        if self.ports.tcp.is_some() || self.ports.udp.is_some() {
            set(reason::PORT_POLICY, self.ports.mode.unwrap_or(global));
        }
        if self.rates().iter().any(|(_, r)| r.is_some()) {
            set(reason::RATE_LIMIT, self.rate_limit.mode.unwrap_or(global));
        }
        // Blocklists run whenever any list is on; each list's own mode decides.
        p.enabled |= 1 << reason::BLOCKLIST;
        p.prevent &= !(1 << reason::BLOCKLIST);
        let lists = std::iter::once((self.manual_mode(), ListKind::Block, false)).chain(
            self.lists.iter().map(|l| {
                let default = match l.kind {
                    ListKind::Block => global,
                    ListKind::Bogon => self.bogons.mode.unwrap_or(global),
                };
                (l.mode.unwrap_or(default), l.kind, l.egress)
            }),
        );
        for (id, (mode, kind, egress)) in lists.enumerate() {
            let bit = 1u32 << id;
            match mode {
                Mode::Off => continue,
                Mode::Monitor => {}
                Mode::Prevent => p.prevent_lists |= bit,
            }
            match kind {
                ListKind::Block => p.block_lists |= bit,
                ListKind::Bogon => p.bogon_lists |= bit,
            }
            if egress {
                p.egress_dst_lists |= bit;
            }
        }
        if self.ports.tcp.is_some() {
            p.port_enforce |= PORTS_TCP;
        }
        if self.ports.udp.is_some() {
            p.port_enforce |= PORTS_UDP;
        }
        for (c, (_, r)) in self.rates().iter().enumerate() {
            if let Some(r) = r {
                let interval = 1_000_000_000 / u64::from(r.rate.max(1));
                p.rate_interval_ns[c] = interval.max(1);
                p.rate_burst_ns[c] = interval * u64::from(r.burst.max(1) - 1);
            }
        }
        // With no list on, the blocklist check has nothing to do: with every other check off
        // too, the policy stays all zero and the programs skip protection entirely.
        if p.block_lists | p.bogon_lists == 0 {
            p.enabled &= !(1 << reason::BLOCKLIST);
        }
        if self.drop_events_per_second > 0 {
            p.event_interval_ns = 1_000_000_000 / u64::from(self.drop_events_per_second);
        }
        p
    }

    /// Each check's mode, for the mode metric and `precinct status`.
    pub fn check_modes(&self) -> Vec<(&'static str, Mode)> {
        let g = self.mode;
        let configured = |on: bool, m: Option<Mode>| if on { m.unwrap_or(g) } else { Mode::Off };
        vec![
            ("bogon", self.bogons.mode.unwrap_or(g)),
            ("own_prefix_spoofed", self.spoofing.own_prefix.unwrap_or(g)),
            ("egress_spoofed", self.spoofing.egress.unwrap_or(g)),
            ("blocklist", g),
            (
                "port_policy",
                configured(
                    self.ports.tcp.is_some() || self.ports.udp.is_some(),
                    self.ports.mode,
                ),
            ),
            (
                "rate_limit",
                configured(
                    self.rates().iter().any(|(_, r)| r.is_some()),
                    self.rate_limit.mode,
                ),
            ),
        ]
    }

    /// The port bitmap: TCP words then UDP words.
    pub fn port_words(&self) -> Vec<u64> {
        let mut words = vec![0u64; 2 * PORT_WORDS as usize];
        for (udp, items) in [(false, &self.ports.tcp), (true, &self.ports.udp)] {
            for item in items.iter().flatten() {
                let Ok((lo, hi)) = item.range() else { continue };
                for port in lo..=hi {
                    let (i, bit) = port_slot(udp, port);
                    words[i as usize] |= bit;
                }
            }
        }
        words
    }

    /// The list names by id, for metrics and events (`None` for unused ids).
    pub fn list_names(&self) -> Vec<String> {
        let mut names: Vec<String> = vec![String::new(); sensor_common::protect::LIST_SLOTS];
        names[0] = MANUAL_LIST.to_string();
        for (i, l) in self.lists.iter().enumerate() {
            names[i + 1] = l.name.clone();
        }
        names[sensor_common::protect::LIST_BUILTIN_BOGON as usize] = "rfc6890".into();
        names[sensor_common::protect::LIST_OWN as usize] = "own".into();
        names[sensor_common::protect::LIST_NONE as usize] = "none".into();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> ProtectSection {
        toml::from_str(toml_text).expect("valid [protect]")
    }

    #[test]
    fn monitor_by_default_and_lists_follow_their_modes() {
        let s = section(
            r#"
            mode = "monitor"
            [[lists]]
            name = "drop"
            file = "/x"
            mode = "prevent"
            egress = true
            [[lists]]
            name = "fullbogons"
            file = "/y"
            kind = "bogon"
            "#,
        );
        s.validate().expect("valid");
        let p = s.policy();
        assert_eq!(p.prevent, 0, "nothing prevents but the one list");
        assert_eq!(p.prevent_lists, 0b010);
        assert_eq!(p.block_lists, 0b011);
        assert_eq!(p.bogon_lists, 0b100);
        assert_eq!(p.egress_dst_lists, 0b010);
        assert_eq!(p.enabled & (1 << reason::PORT_POLICY), 0);
        assert_ne!(p.enabled & (1 << reason::BOGON), 0);
    }

    #[test]
    fn ports_and_rates() {
        let s = section(
            r#"
            mode = "prevent"
            [ports]
            tcp = [22, 443, "8000-8002"]
            udp = []
            [rate_limit]
            mode = "monitor"
            syn = { rate = 100, burst = 20 }
            "#,
        );
        s.validate().expect("valid");
        let p = s.policy();
        assert_eq!(p.port_enforce, PORTS_TCP | PORTS_UDP);
        assert_ne!(p.prevent & (1 << reason::PORT_POLICY), 0);
        assert_eq!(p.prevent & (1 << reason::RATE_LIMIT), 0);
        assert_eq!(p.rate_interval_ns, [10_000_000, 0, 0]);
        assert_eq!(p.rate_burst_ns[0], 190_000_000);
        let words = s.port_words();
        let open = |udp, port| {
            let (i, bit) = port_slot(udp, port);
            words[i as usize] & bit != 0
        };
        assert!(open(false, 22) && open(false, 8001) && !open(false, 8003));
        assert!(!open(true, 53));
    }

    #[test]
    fn bad_settings_are_named() {
        for (text, want) in [
            ("[ports]\ntcp = [\"90-80\"]", "backwards"),
            ("[ports]\ntcp = [\"http\"]", "not a port"),
            ("[rate_limit]\nudp = { rate = 0, burst = 1 }", "at least 1"),
            ("allow = [\"10.0.0.0/33\"]", "protect.allow"),
            ("[[lists]]\nname = \"manual\"\nfile = \"/x\"", "used twice"),
            ("[[lists]]\nname = \"a b\"\nfile = \"/x\"", "letters"),
        ] {
            let err = section(text).validate().expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
