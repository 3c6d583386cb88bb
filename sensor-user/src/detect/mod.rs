//! The signature engine: Suricata's rule language ([`parse`], [`addr`], [`sig`]), payload
//! matching ([`matcher`]), the rule set with its prefilter and per-flow state ([`engine`]),
//! and the `alert` object of EVE records.

pub mod addr;
pub mod classification;
pub mod engine;
pub mod matcher;
pub mod parse;
pub mod sig;

pub use engine::{Detector, FlowState, Hit, LoadReport, PacketInfo, RuleSet};

use serde_json::{json, Map, Value};

/// The EVE `alert` object of a signature, as Suricata writes it in IDS mode.
pub fn alert_object(s: &sig::Signature) -> Value {
    let mut a = Map::new();
    a.insert("action".into(), json!("allowed"));
    a.insert("gid".into(), json!(s.gid));
    a.insert("signature_id".into(), json!(s.sid));
    a.insert("rev".into(), json!(s.rev));
    a.insert("signature".into(), json!(s.msg));
    a.insert(
        "category".into(),
        json!(s.category.clone().unwrap_or_default()),
    );
    a.insert("severity".into(), json!(s.severity));
    if !s.metadata.is_empty() {
        let mut m: Map<String, Value> = Map::new();
        for (k, v) in &s.metadata {
            match m.get_mut(k) {
                Some(Value::Array(list)) => list.push(json!(v)),
                _ => {
                    m.insert(k.clone(), json!([v]));
                }
            }
        }
        a.insert("metadata".into(), Value::Object(m));
    }
    Value::Object(a)
}
