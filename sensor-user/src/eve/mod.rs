//! EVE JSON, the records a SOC ingests: one typed record per event type, each a serde struct
//! whose fields are written in the order they are declared (Suricata's order, with its field
//! names), and the one writer every producer shares.
//!
//! - [`header`]: the leading fields of every record and the value types they use;
//! - [`flow`]: `flow` records, from the kernel's map or the inspection pipeline;
//! - [`alert`]: `alert` records and their `alert` object;
//! - [`protocol`]: protocol records (`dns`, `http`, `tls`, `ssh`, …) and `anomaly` records;
//! - [`drop`]: `drop` records of the in-kernel protection;
//! - [`writer`]: the [`EveWriter`] that serialises records, adds the sensor's identity and
//!   hands each line to the configured outputs.
//!
//! Builders take what their record needs and nothing else; the stages that produce events
//! (the pipeline, the agent's flow sweep, the drop-event reader) call them and pass the record
//! to the writer.

pub mod alert;
pub mod drop;
pub mod flow;
pub mod header;
pub mod protocol;
pub mod writer;

use serde::Serialize;

pub use header::{Header, Keyed, Proto, Timestamp};
pub use writer::{EveTarget, EveWriter};

/// A record the writer can write.
pub trait Record: Serialize {
    /// The record's `event_type`, by which outputs filter and the writer counts.
    fn event_type(&self) -> &'static str;

    /// For alerts, the signature's severity (1 most severe), which syslog maps to its own.
    fn alert_severity(&self) -> Option<u8> {
        None
    }
}

/// `traffic`: the ids and labels a flow's flowbits name (`traffic/id/NAME`,
/// `traffic/label/NAME`), sorted, as Suricata writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Traffic ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id: Vec<String>,
    /// Traffic labels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label: Vec<String>,
}

impl Traffic {
    /// The `traffic` object of the flowbits that are set, if any names one.
    pub fn from_flowbits<'a>(bits: impl Iterator<Item = &'a str>) -> Option<Traffic> {
        let mut t = Traffic::default();
        for b in bits {
            if let Some(x) = b.strip_prefix("traffic/id/") {
                t.id.push(x.to_string());
            } else if let Some(x) = b.strip_prefix("traffic/label/") {
                t.label.push(x.to_string());
            }
        }
        if t.id.is_empty() && t.label.is_empty() {
            return None;
        }
        t.id.sort_unstable();
        t.label.sort_unstable();
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_names_come_from_flowbits_sorted() {
        let bits = [
            "traffic/label/b",
            "other",
            "traffic/id/z",
            "traffic/label/a",
        ];
        let t = Traffic::from_flowbits(bits.into_iter()).expect("named");
        assert_eq!(
            serde_json::to_string(&t).expect("json"),
            r#"{"id":["z"],"label":["a","b"]}"#
        );
        assert_eq!(Traffic::from_flowbits(["x", "y"].into_iter()), None);
    }
}
