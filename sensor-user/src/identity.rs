//! The sensor's identity (`[sensor]`): which sensor, organisation and asset every EVE record
//! and the info metric come from, so a SOC watching thousands of hosts can tell them apart.

use serde::Deserialize;
use serde_json::{json, Value};

/// What is wrong with `[sensor]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A value that is empty, longer than 256 bytes or holds control characters.
    #[error("sensor.{key} = {value:?}: give 1 to 256 characters without control characters")]
    BadValue {
        /// `id`, `organization`, `asset_role` or `tags`.
        key: &'static str,
        value: String,
    },
    /// A tag with a comma.
    #[error("sensor.tags: {0:?} contains a comma (the info metric joins tags with commas)")]
    CommaInTag(String),
}

/// `[sensor]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorSection {
    /// The sensor's name, unique in the SOC; the host name when absent.
    pub id: Option<String>,
    /// The organisation that runs the host (for example "Franklin County Board of Elections").
    pub organization: Option<String>,
    /// What the host is (for example "voter-registration-portal", "results-site").
    pub asset_role: Option<String>,
    /// Free tags (for example "county:franklin", "state:oh", "election-night").
    pub tags: Vec<String>,
}

impl SensorSection {
    /// Checks lengths and characters the SOC's tools choke on.
    pub fn validate(&self) -> Result<(), IdentityError> {
        let check = |key: &'static str, v: &str| {
            if v.trim().is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
                Err(IdentityError::BadValue {
                    key,
                    value: v.to_owned(),
                })
            } else {
                Ok(())
            }
        };
        for (what, v) in [
            ("id", &self.id),
            ("organization", &self.organization),
            ("asset_role", &self.asset_role),
        ] {
            if let Some(v) = v {
                check(what, v)?;
            }
        }
        for t in &self.tags {
            check("tags", t)?;
            if t.contains(',') {
                return Err(IdentityError::CommaInTag(t.clone()));
            }
        }
        Ok(())
    }

    /// The identity, with the host name for a missing id.
    pub fn resolve(&self) -> Identity {
        Identity {
            id: self.id.clone().unwrap_or_else(hostname),
            organization: self.organization.clone().unwrap_or_default(),
            asset_role: self.asset_role.clone().unwrap_or_default(),
            tags: self.tags.clone(),
        }
    }

    /// `true` when nothing is configured.
    pub fn is_empty(&self) -> bool {
        *self == SensorSection::default()
    }
}

/// The resolved identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Sensor id (EVE `host`).
    pub id: String,
    /// Organisation, may be empty.
    pub organization: String,
    /// Asset role, may be empty.
    pub asset_role: String,
    /// Tags.
    pub tags: Vec<String>,
}

impl Identity {
    /// The `precinct` object of every EVE record.
    pub fn object(&self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("sensor_id".into(), json!(self.id));
        if !self.organization.is_empty() {
            o.insert("organization".into(), json!(self.organization));
        }
        if !self.asset_role.is_empty() {
            o.insert("asset_role".into(), json!(self.asset_role));
        }
        if !self.tags.is_empty() {
            o.insert("tags".into(), json!(self.tags));
        }
        o.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        Value::Object(o)
    }

    /// The bytes spliced before the closing brace of every record:
    /// `,"host":"ID","precinct":{…}`.
    pub fn suffix(&self) -> Vec<u8> {
        let mut s = b",\"host\":".to_vec();
        s.extend_from_slice(json!(self.id).to_string().as_bytes());
        s.extend_from_slice(b",\"precinct\":");
        s.extend_from_slice(self.object().to_string().as_bytes());
        s
    }
}

/// This host's name, or "unknown" when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and the last byte stays 0.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_makes_valid_json_with_the_identity() {
        let s: SensorSection = toml::from_str(
            "id = \"fr-portal-1\"\norganization = \"Franklin County \\\"BoE\\\"\"\nasset_role = \"voter-registration-portal\"\ntags = [\"county:franklin\", \"state:oh\"]\n",
        )
        .expect("parse");
        s.validate().expect("valid");
        let id = s.resolve();
        let mut rec = br#"{"event_type":"flow","src_ip":"192.0.2.1"}"#.to_vec();
        rec.pop();
        rec.extend_from_slice(&id.suffix());
        rec.push(b'}');
        let v: Value = serde_json::from_slice(&rec).expect("valid JSON");
        assert_eq!(v["host"], "fr-portal-1");
        assert_eq!(v["precinct"]["organization"], "Franklin County \"BoE\"");
        assert_eq!(v["precinct"]["asset_role"], "voter-registration-portal");
        assert_eq!(v["precinct"]["tags"][1], "state:oh");
        assert_eq!(v["src_ip"], "192.0.2.1");
    }

    #[test]
    fn defaults_and_bad_values() {
        let id = SensorSection::default().resolve();
        assert_eq!(id.id, hostname());
        assert!(!id.id.is_empty());
        for bad in ["id = \"\"", "tags = [\"a,b\"]", "organization = \"x\\ny\""] {
            let s: SensorSection = toml::from_str(bad).expect("parse");
            assert!(s.validate().is_err(), "{bad}");
        }
    }
}
