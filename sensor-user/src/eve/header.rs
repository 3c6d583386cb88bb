//! The fields every EVE record starts with (time, flow, interface, addresses, protocol), in
//! Suricata's order, and the small value types they are written with.

use std::net::IpAddr;

use serde::{Serialize, Serializer};

/// A UNIX time in nanoseconds, written as Suricata writes timestamps
/// (`2026-11-22T00:40:50.123456+0000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub u64);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(crate::timefmt::eve_into(
            self.0,
            &mut [0; crate::timefmt::EVE_LEN],
        ))
    }
}

/// An IP protocol number, written under Suricata's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proto(pub u8);

impl Proto {
    /// Suricata's name for the protocol in EVE `proto`, or its number as text.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self.0 {
            1 => "ICMP".into(),
            6 => "TCP".into(),
            17 => "UDP".into(),
            58 => "IPv6-ICMP".into(),
            47 => "GRE".into(),
            50 => "ESP".into(),
            51 => "AH".into(),
            132 => "SCTP".into(),
            other => other.to_string().into(),
        }
    }
}

impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// The leading fields of a record. Absent fields are left out, never written empty.
#[derive(Clone, Debug, Serialize)]
pub struct Header<'a> {
    /// When the record's event happened.
    pub timestamp: Timestamp,
    /// The flow's id (drop records have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    /// The interface the packet came in on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<&'a str>,
    /// The interface the packet left by (drop records at egress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_iface: Option<&'a str>,
    /// The capture's packet count when the record was written (pipeline records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    /// `flow`, `alert`, `http`, …
    pub event_type: &'static str,
    /// The VLAN ids, outer first, when tagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vlans>,
    /// Source address.
    pub src_ip: IpAddr,
    /// Source port, for protocols with ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination address.
    pub dest_ip: IpAddr,
    /// Destination port, for protocols with ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// IP protocol.
    pub proto: Proto,
}

/// VLAN ids as the header writes them: `[outer]` or `[outer, inner]`, as Suricata does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlans {
    ids: [u16; 2],
}

impl Serialize for Vlans {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = if self.ids[1] == 0 { 1 } else { 2 };
        s.collect_seq(&self.ids[..n])
    }
}

/// The VLAN ids of a packet or flow: absent when untagged.
pub fn vlan(outer: u16, inner: u16) -> Option<Vlans> {
    (outer != 0).then_some(Vlans {
        ids: [outer, inner],
    })
}

/// A map entry whose key is known only at run time (`"http": {…}` under
/// `"event_type": "http"`); flattened into the record that holds it.
#[derive(Clone, Debug)]
pub struct Keyed<'a, V> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: V,
}

impl<V: Serialize> Serialize for Keyed<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.key, &self.value)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_follow_suricata() {
        assert_eq!(Proto(6).name(), "TCP");
        assert_eq!(Proto(58).name(), "IPv6-ICMP");
        assert_eq!(Proto(253).name(), "253");
    }

    #[test]
    fn absent_fields_are_left_out_and_the_order_is_suricatas() {
        let h = Header {
            timestamp: Timestamp(1_000_000_123_456),
            flow_id: Some(7),
            in_iface: None,
            out_iface: None,
            pcap_cnt: Some(3),
            event_type: "alert",
            vlan: vlan(0, 0),
            src_ip: "192.0.2.1".parse().expect("ip"),
            src_port: Some(1000),
            dest_ip: "2001:db8::1".parse().expect("ip"),
            dest_port: None,
            proto: Proto(17),
        };
        assert_eq!(
            serde_json::to_string(&h).expect("json"),
            r#"{"timestamp":"1970-01-01T00:16:40.000123+0000","flow_id":7,"pcap_cnt":3,"event_type":"alert","src_ip":"192.0.2.1","src_port":1000,"dest_ip":"2001:db8::1","proto":"UDP"}"#
        );
        let k = Keyed {
            key: "dns",
            value: 1,
        };
        assert_eq!(serde_json::to_string(&k).expect("json"), r#"{"dns":1}"#);
    }
}
