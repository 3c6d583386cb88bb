//! The `tls` EVE record: when it is written and what it holds.

use super::*;

impl TlsParser {
    /// Runs the transaction logger once both directions are done, as Suricata's output
    /// loop does after each packet.
    pub(super) fn maybe_log(&mut self, dir: Dir, out: &mut Output) {
        if self.logged
            || self.client.progress < PROGRESS_HANDSHAKE_DONE
            || self.server.progress < PROGRESS_HANDSHAKE_DONE
        {
            return;
        }
        // The logger runs once per transaction, whether or not it writes a record.
        self.logged = true;
        if let Some(object) = self.eve_object() {
            out.records.push(AppRecord {
                event_type: "tls",
                object,
                dir,
                tx_id: None,
            });
        }
    }

    /// The EVE `tls` object (`JsonTlsLogger` with the extended field set), or `None` when
    /// Suricata's logger skips the flow.
    pub(super) fn eve_object(&self) -> Option<Value> {
        let cert = self.server.cert.as_ref();
        let resumed = self.flags.session_resumed && self.config.session_resumption;
        if cert.is_none() && !resumed && !self.flags.log_without_cert {
            return None;
        }
        let mut m = Map::new();
        if let Some(c) = cert {
            m.insert("subject".into(), Value::String(c.subject.clone()));
            m.insert("issuerdn".into(), Value::String(c.issuer.clone()));
            if !c.sans.is_empty() {
                m.insert("subjectaltname".into(), strings(&c.sans));
            }
        }
        // Only a session without certificate, past the ServerHello and not TLS 1.3 is
        // logged as resumed.
        if resumed && cert.is_none() && self.flags.server_hello && !self.flags.log_without_cert {
            m.insert("session_resumed".into(), Value::Bool(true));
        }
        if let Some(c) = cert {
            m.insert("serial".into(), Value::String(c.serial.clone()));
            m.insert("fingerprint".into(), Value::String(c.fingerprint.clone()));
        }
        if let Some(sni) = &self.client.sni {
            m.insert("sni".into(), Value::String(bytes_to_string(sni)));
        }
        m.insert(
            "version".into(),
            Value::String(version_string(self.server.version)),
        );
        if let Some(c) = cert {
            insert_time(&mut m, "notbefore", c.not_before);
            insert_time(&mut m, "notafter", c.not_after);
        }
        if self.config.ja3 {
            if let Some(ja3) = &self.client.ja3 {
                m.insert("ja3".into(), ja3.to_json());
            }
            if let Some(ja3s) = &self.server.ja3 {
                m.insert("ja3s".into(), ja3s.to_json());
            }
        }
        if self.config.ja4 {
            if let Some(hs) = &self.client.hs {
                m.insert("ja4".into(), Value::String(ja4(hs)));
            }
        }
        for (conn, key) in [
            (&self.client, "client_alpns"),
            (&self.server, "server_alpns"),
        ] {
            if let Some(hs) = &conn.hs {
                if !hs.alpns.is_empty() {
                    let alpns: Vec<Value> = hs
                        .alpns
                        .iter()
                        .map(|a| Value::String(bytes_to_string(a)))
                        .collect();
                    m.insert(key.into(), Value::Array(alpns));
                }
            }
        }
        if let Some(c) = &self.client.cert {
            let mut cm = Map::new();
            cm.insert("subject".into(), Value::String(c.subject.clone()));
            cm.insert("issuerdn".into(), Value::String(c.issuer.clone()));
            cm.insert("fingerprint".into(), Value::String(c.fingerprint.clone()));
            cm.insert("serial".into(), Value::String(c.serial.clone()));
            insert_time(&mut cm, "notbefore", c.not_before);
            insert_time(&mut cm, "notafter", c.not_after);
            m.insert("client".into(), Value::Object(cm));
        }
        if let Some(p) = self.config.from_proto {
            m.insert("from_proto".into(), Value::String(p.into()));
        }
        Some(Value::Object(m))
    }
}

/// The `version` field (Suricata's `SSLVersionToString`).
pub(super) fn version_string(v: u16) -> String {
    match v {
        VERSION_UNKNOWN => "UNDETERMINED".into(),
        SSL_VERSION_2 => "SSLv2".into(),
        SSL_VERSION_3 => "SSLv3".into(),
        TLS_VERSION_10 => "TLSv1".into(),
        TLS_VERSION_11 => "TLS 1.1".into(),
        TLS_VERSION_12 => "TLS 1.2".into(),
        TLS_VERSION_13 => "TLS 1.3".into(),
        TLS_VERSION_13_PRE_DRAFT16 => "TLS 1.3 draft-<16".into(),
        0x7f10..=0x7f1c => format!("TLS 1.3 draft-{}", v & 0xff),
        0xfb14 | 0xfb15 | 0xfb16 | 0xfb17 | 0xfb1a => {
            format!("TLS 1.3 draft-{}-fb", v & 0xff)
        }
        _ => format!("0x{v:04x}"),
    }
}

/// A certificate time as Suricata logs it ("YYYY-MM-DDTHH:MM:SS", UTC); Suricata omits a
/// time equal to the epoch.
pub(super) fn insert_time(m: &mut Map<String, Value>, key: &str, ts: i64) {
    if ts != 0 {
        if let Some(s) = crate::timefmt::cert(ts) {
            m.insert(key.into(), Value::String(s));
        }
    }
}

pub(super) fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::String(s.clone())).collect())
}

/// Bytes as Suricata's JSON builder writes them: UTF-8 as is, otherwise ASCII kept and other
/// bytes as `\xNN`.
pub(super) fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b
            .iter()
            .map(|&c| {
                if c < 0x80 {
                    char::from(c).to_string()
                } else {
                    format!("\\x{c:02x}")
                }
            })
            .collect(),
    }
}
