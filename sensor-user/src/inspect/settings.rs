//! What the pipeline is told (settings) and what it tells (counters).

use std::collections::HashMap;

use super::tcp::stream::StreamLimits;
use crate::flows::Timeouts;

/// Settings of the pipeline.
#[derive(Clone, Debug)]
pub struct InspectConfig {
    /// Pick up TCP sessions whose handshake was not seen.
    pub midstream: bool,
    /// Reassembly limits per direction.
    pub stream: StreamLimits,
    /// Out-of-order bytes all streams together may hold.
    pub stream_memcap: usize,
    /// Flows tracked at once; beyond it new flows are counted and not inspected.
    pub max_flows: usize,
    /// Flow timeouts (by capture time).
    pub timeouts: Timeouts,
    /// `in_iface` written into records.
    pub iface: Option<String>,
    /// Write a `flow` record when a flow ends. Off in the live agent, whose flow records come
    /// from the kernel's flow map.
    pub flow_records: bool,
    /// Optional parts of alert records.
    pub alerts: crate::eve::alert::AlertsSection,
    /// Fragment reassembly limits.
    pub defrag: super::defrag::DefragLimits,
    /// Layout of `dns` records.
    pub dns_version: crate::applayer::dns::DnsVersion,
    /// What becomes of payload rules once a flow is encrypted.
    pub encryption: EncryptionHandling,
}

/// What payload rules do on a flow once its session is encrypted (TLS application data after
/// the ServerHello, SSH after both sides' NEWKEYS): Suricata's `encryption-handling`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionHandling {
    /// Suricata's default: the flow's payload is no longer inspected (contents, `dsize`);
    /// header rules, protocol parsing, app-layer rules and records go on.
    #[default]
    Default,
    /// Payload rules see the encrypted bytes too.
    Full,
}

impl Default for InspectConfig {
    fn default() -> Self {
        InspectConfig {
            midstream: false,
            stream: StreamLimits::default(),
            stream_memcap: 256 << 20,
            max_flows: 1 << 20,
            timeouts: Timeouts::default(),
            iface: None,
            flow_records: true,
            alerts: crate::eve::alert::AlertsSection::default(),
            defrag: super::defrag::DefragLimits::default(),
            dns_version: crate::applayer::dns::DnsVersion::default(),
            encryption: EncryptionHandling::default(),
        }
    }
}

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct InspectStats {
    /// Packets processed.
    pub packets: u64,
    /// Bytes processed (captured lengths).
    pub bytes: u64,
    /// Flows created.
    pub flows: u64,
    /// Packets that were not IP or whose headers could not be parsed, by outcome name.
    pub undecoded: HashMap<&'static str, u64>,
    /// Packets of a link type this build cannot decode.
    pub unsupported_link: u64,
    /// New flows not tracked because the flow table was full.
    pub flows_over_limit: u64,
    /// Alert records written.
    pub alerts: u64,
}
