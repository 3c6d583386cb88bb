//! Everything the address tables are made of, in one place: the named list files (as last
//! read), the built-in RFC 6890 bogons, the host's addresses and connected subnets, the
//! configured own prefixes and allowlists, and the manual entries of `precinct block`.

use std::path::PathBuf;

use anyhow::Context as _;
use log::warn;
use sensor_common::protect::{bit, BOGONS_V4, BOGONS_V6};

use super::{
    addrs::HostAddrs,
    control::ManualBlocks,
    lists::{load_list, Prefix},
    settings::ProtectSection,
    table::{aggregate, build, Built},
};

/// One named list as last read.
#[derive(Clone, Debug)]
pub struct LoadedList {
    /// Its name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// The prefixes read.
    pub prefixes: Vec<Prefix>,
    /// Lines that could not be read, at the last load.
    pub bad_lines: usize,
}

/// The table's ingredients.
pub struct Sources {
    /// The `[protect]` section in force.
    pub section: ProtectSection,
    /// The named lists, in config order (list id = index + 1).
    pub lists: Vec<LoadedList>,
    /// Manual entries (list id 0).
    pub manual: ManualBlocks,
    /// The host's addresses, as last discovered.
    pub host: HostAddrs,
}

/// Bad lines reported in the log per list file per load; the rest are counted.
const BAD_LINES_LOGGED: usize = 20;

impl Sources {
    /// Reads every list file. A file that cannot be read is an error at start.
    pub fn load(section: ProtectSection, host: HostAddrs) -> anyhow::Result<Sources> {
        let manual = ManualBlocks::new(section.manual_capacity);
        let mut s = Sources {
            section,
            lists: Vec::new(),
            manual,
            host,
        };
        for spec in &s.section.lists {
            s.lists.push(read(&spec.name, &spec.file, spec.format)?);
        }
        Ok(s)
    }

    /// Re-reads every list file. A file that cannot be read keeps what it held before, with a
    /// warning; the error list says which files those were.
    pub fn reload_files(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        for (spec, list) in self.section.lists.iter().zip(self.lists.iter_mut()) {
            match read(&spec.name, &spec.file, spec.format) {
                Ok(l) => *list = l,
                Err(e) => {
                    warn!(
                        "list {}: {e:#}; its {} entries from before stay in use",
                        spec.name,
                        list.prefixes.len()
                    );
                    failed.push(format!("{}: {e:#}", spec.name));
                }
            }
        }
        failed
    }

    /// Every (prefix, mask) entry, before aggregation.
    pub fn entries(&self) -> Vec<(Prefix, u32)> {
        let mut out = Vec::new();
        let parsed = |items: &[String]| -> Vec<Prefix> {
            // Validated with the configuration.
            items.iter().filter_map(|s| s.parse().ok()).collect()
        };
        if self.section.bogons.builtin {
            for (a, len) in BOGONS_V4 {
                if let Ok(p) = Prefix::new(a.into(), len) {
                    out.push((p, bit::BUILTIN_BOGON));
                }
            }
            for (a, len) in BOGONS_V6 {
                if let Ok(p) = Prefix::new(a.into(), len) {
                    out.push((p, bit::BUILTIN_BOGON));
                }
            }
        }
        out.extend(self.host.own.iter().map(|p| (*p, bit::OWN)));
        out.extend(self.host.connected.iter().map(|p| (*p, bit::BOGON_EXEMPT)));
        out.extend(
            parsed(&self.section.own_prefixes)
                .into_iter()
                .map(|p| (p, bit::OWN)),
        );
        out.extend(
            parsed(&self.section.allow)
                .into_iter()
                .map(|p| (p, bit::ALLOW)),
        );
        out.extend(
            parsed(&self.section.bogons.allow)
                .into_iter()
                .map(|p| (p, bit::BOGON_EXEMPT)),
        );
        out.extend(self.manual.prefixes().map(|p| (*p, 1)));
        for (i, list) in self.lists.iter().enumerate() {
            let b = 1u32 << (i + 1);
            out.extend(list.prefixes.iter().map(|p| (*p, b)));
        }
        out
    }

    /// The kernel tables for the current ingredients, and the (IPv4, IPv6) prefix counts
    /// after aggregation.
    pub fn build(&self) -> (Built, (usize, usize)) {
        let agg = aggregate(self.entries());
        let v4 = agg.keys().filter(|p| p.family == 4).count();
        (build(&agg), (v4, agg.len() - v4))
    }
}

fn read(
    name: &str,
    path: &std::path::Path,
    format: super::lists::Format,
) -> anyhow::Result<LoadedList> {
    let parsed = load_list(path, format).with_context(|| format!("list {name}"))?;
    for b in parsed.bad.iter().take(BAD_LINES_LOGGED) {
        warn!("list {name}: {}", b.display(path));
    }
    if parsed.bad.len() > BAD_LINES_LOGGED {
        warn!(
            "list {name}: {} more bad lines in {} not shown; the other {} entries loaded",
            parsed.bad.len() - BAD_LINES_LOGGED,
            path.display(),
            parsed.prefixes.len()
        );
    }
    Ok(LoadedList {
        name: name.to_string(),
        path: path.to_path_buf(),
        bad_lines: parsed.bad.len(),
        prefixes: parsed.prefixes,
    })
}
