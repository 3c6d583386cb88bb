//! What `precinct status` shows, as plain data: the screen renders it and `--json` prints it.

use std::collections::BTreeMap;

use serde::Serialize;

/// A counter: its total at the second scrape and its rate between the two.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counted {
    /// Total since the agent started.
    pub total: f64,
    /// Per second over the interval.
    pub per_second: f64,
}

/// One interface the agent attached to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// XDP mode (`driver`, `generic`).
    pub xdp_mode: String,
    /// Whether its attachment health check passes (`None`: the agent has none).
    pub attached: Option<bool>,
}

/// Traffic of one hook.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Traffic {
    /// `ingress` or `egress`.
    pub hook: String,
    /// Packets.
    pub packets: Counted,
    /// Bytes (whole frames).
    pub bytes: Counted,
}

/// The flow table.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Flows {
    /// Flows in the kernel map at the last sweep.
    pub active: f64,
    /// Entries the kernel map holds at most (0: not reported, an older agent).
    pub capacity: f64,
    /// Flows created.
    pub created: Counted,
    /// Flows ended and reported.
    pub ended: Counted,
}

/// Signatures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rules {
    /// Signatures in use.
    pub loaded: f64,
    /// Rules of the configured files not loaded.
    pub skipped: f64,
    /// Reloads that succeeded.
    pub reloads_ok: f64,
    /// Reloads that failed (the previous rules stayed).
    pub reloads_failed: f64,
    /// Whether the last load succeeded.
    pub last_reload_successful: Option<bool>,
}

/// One list of the protection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct List {
    /// List name.
    pub name: String,
    /// Prefixes at its last load (`None` for built-in lists).
    pub entries: Option<f64>,
    /// Lines that could not be read at its last load.
    pub bad_lines: Option<f64>,
    /// Packets dropped because of it.
    pub dropped: Counted,
    /// Packets it would have dropped (monitor mode).
    pub would_drop: Counted,
}

/// Drops of one reason and action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Drops {
    /// Reason (`blocklist`, `bogon`, …).
    pub reason: String,
    /// `dropped` or `would_drop`.
    pub action: String,
    /// Packets, both hooks.
    pub packets: Counted,
}

/// The in-kernel protection.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Protection {
    /// Mode of each check.
    pub modes: BTreeMap<String, String>,
    /// Lists, configured and built-in.
    pub lists: Vec<List>,
    /// Entries added with `precinct block add`.
    pub manual_entries: f64,
    /// Prefixes in the kernel tables by family.
    pub table_prefixes: BTreeMap<String, f64>,
    /// Drops and would-drops by reason (those seen at least once).
    pub drops: Vec<Drops>,
    /// Table updates that failed.
    pub table_updates_failed: f64,
}

/// One EVE output.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Output {
    /// Output name.
    pub name: String,
    /// Records delivered.
    pub delivered: Counted,
    /// Records dropped (queue full).
    pub dropped: Counted,
    /// Records given up after errors.
    pub failed: Counted,
    /// Records waiting in its queue.
    pub queue_depth: f64,
    /// Records in its spool.
    pub spool_events: f64,
    /// Bytes in its spool.
    pub spool_bytes: f64,
    /// Records evicted from a full spool.
    pub spool_lost: Counted,
    /// Seconds since its last delivery.
    pub seconds_since_delivery: Option<f64>,
}

/// A place where data is lost, with how much.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Loss {
    /// What was lost and where.
    pub what: String,
    /// How many.
    pub count: Counted,
}

/// Everything the screen shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Status {
    /// The metrics address asked.
    pub address: String,
    /// The agent's version.
    pub version: Option<String>,
    /// `[sensor]` identity: id, organization, asset_role, tags.
    pub sensor: BTreeMap<String, String>,
    /// Seconds since the agent started.
    pub uptime_seconds: Option<f64>,
    /// Whether `/healthz` answered 200.
    pub healthy: bool,
    /// What `/healthz` says is wrong.
    pub problems: Vec<String>,
    /// Whether the programs are pinned in bpffs.
    pub programs_pinned: Option<bool>,
    /// Interfaces with their XDP modes.
    pub interfaces: Vec<Interface>,
    /// Seconds between the two scrapes.
    pub interval_seconds: f64,
    /// Traffic by hook.
    pub traffic: Vec<Traffic>,
    /// Packets by protocol, both hooks.
    pub protocols: BTreeMap<String, Counted>,
    /// Flows.
    pub flows: Flows,
    /// Flow-head records the kernel sent for inspection.
    pub inspected_records: Counted,
    /// EVE records by event type.
    pub events: BTreeMap<String, Counted>,
    /// Signatures.
    pub rules: Rules,
    /// Protection (`None` when the agent exports none).
    pub protection: Option<Protection>,
    /// EVE outputs.
    pub outputs: Vec<Output>,
    /// Every loss counter, zero or not.
    pub losses: Vec<Loss>,
}
