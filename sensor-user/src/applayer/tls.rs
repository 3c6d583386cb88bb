//! TLS/SSL parser emulating Suricata 8's `tls` app-layer (`src/app-layer-ssl.c`,
//! `src/output-json-tls.c`, `rust/src/handshake.rs`, `rust/src/ja4.rs`, `rust/src/x509`).
//!
//! The parser frames TLS records (and SSLv2 records) per direction, reassembles handshake
//! messages across records and calls, and decodes:
//!
//! * ClientHello / ServerHello: version, `supported_versions`, cipher suites, extensions,
//!   SNI, ALPN, supported groups, EC point formats, signature algorithms, session id and
//!   session ticket (session resumption), early data;
//! * Certificate: the first certificate of the chain (subject, issuer, subject alternative
//!   names, serial, SHA-1 fingerprint, validity), for the server and for a client
//!   certificate;
//! * JA3 / JA3S (string and MD5), and JA4 as Suricata computes it;
//! * ChangeCipherSpec, alerts, heartbeats and application data only as far as they change
//!   the handshake state: handshake records after ChangeCipherSpec are encrypted and skipped,
//!   application data is skipped without buffering.
//!
//! One `tls` EVE record is written per flow, at the parse call where Suricata's transaction
//! logger would run: once both directions reached "handshake done" (a server certificate
//! with subject and issuer marks both done; otherwise each direction is done at its first
//! application-data record, or both at a fatal alert), or at [`AppParser::finish`]. As in
//! Suricata, a flow that reaches that point without a certificate, a (possible) session
//! resumption or a TLS 1.3 handshake writes no record.
//!
//! JA3 and JA4 are disabled in Suricata 8's default configuration (`ja3-fingerprints` /
//! `ja4-fingerprints` are `auto`: enabled only when a loaded rule uses them), so the EVE
//! record carries them only when [`TlsConfig`] enables them; the sticky buffers are always
//! produced since a rule that inspects them is what enables them in Suricata.

use super::{AppParser, AppRecord, Buffer, Dir, Output};
use md5::Md5;
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::nom;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Length of a TLS record header.
const RECORD_HDR_LEN: usize = 5;
/// RFC 5246 6.2.3: the largest legal record body (2^14 + 2048 for ciphertext, Suricata uses
/// 2^14 + 1024 as its limit and reports larger records).
const RECORD_MAX_LEN: usize = (1 << 14) + 1024;
/// Largest handshake message kept for decoding; longer ones (huge certificate chains) are
/// skipped so the per-direction buffer stays bounded.
const MAX_HS_MESSAGE: usize = 64 * 1024;

const CT_CHANGE_CIPHER_SPEC: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPLICATION_DATA: u8 = 23;
const CT_HEARTBEAT: u8 = 24;

const HS_HELLO_REQUEST: u8 = 0;
const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_NEW_SESSION_TICKET: u8 = 4;
const HS_CERTIFICATE: u8 = 11;
const HS_SERVER_KEY_EXCHANGE: u8 = 12;
const HS_CERTIFICATE_REQUEST: u8 = 13;
const HS_SERVER_HELLO_DONE: u8 = 14;
const HS_CERTIFICATE_VERIFY: u8 = 15;
const HS_CLIENT_KEY_EXCHANGE: u8 = 16;
const HS_FINISHED: u8 = 20;
const HS_CERTIFICATE_URL: u8 = 21;
const HS_CERTIFICATE_STATUS: u8 = 22;

const SSLV2_MT_ERROR: u8 = 0;
const SSLV2_MT_CLIENT_HELLO: u8 = 1;
const SSLV2_MT_SERVER_HELLO: u8 = 4;

const EXT_SNI: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_SESSION_TICKET: u16 = 0x0023;
const EXT_EARLY_DATA: u16 = 0x002a;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

const VERSION_UNKNOWN: u16 = 0x0000;
const SSL_VERSION_2: u16 = 0x0200;
const SSL_VERSION_3: u16 = 0x0300;
const TLS_VERSION_10: u16 = 0x0301;
const TLS_VERSION_11: u16 = 0x0302;
const TLS_VERSION_12: u16 = 0x0303;
const TLS_VERSION_13: u16 = 0x0304;
/// Suricata's marker for TLS 1.3 drafts before 16, which used 0x0304 or 0x7f01..0x7f0f.
const TLS_VERSION_13_PRE_DRAFT16: u16 = 0x7f01;

/// Progress of one direction, as Suricata's per-direction TLS state (0 is "in progress").
const PROGRESS_HANDSHAKE_DONE: u8 = 1;
const PROGRESS_FINISHED: u8 = 2;

// Suricata's decoder event names (`tls_decoder_event_table`).
const EV_INVALID_SSLV2_HEADER: &str = "INVALID_SSLV2_HEADER";
const EV_INVALID_RECORD_VERSION: &str = "INVALID_RECORD_VERSION";
const EV_INVALID_RECORD_TYPE: &str = "INVALID_RECORD_TYPE";
const EV_INVALID_RECORD_LENGTH: &str = "INVALID_RECORD_LENGTH";
const EV_INVALID_HANDSHAKE_MESSAGE: &str = "INVALID_HANDSHAKE_MESSAGE";
const EV_INVALID_HEARTBEAT: &str = "INVALID_HEARTBEAT_MESSAGE";
const EV_OVERFLOW_HEARTBEAT: &str = "OVERFLOW_HEARTBEAT_MESSAGE";
const EV_HANDSHAKE_INVALID_LENGTH: &str = "HANDSHAKE_INVALID_LENGTH";
const EV_MULTIPLE_SNI: &str = "MULTIPLE_SNI_EXTENSIONS";
const EV_INVALID_SNI_TYPE: &str = "INVALID_SNI_TYPE";
const EV_INVALID_SNI_LENGTH: &str = "INVALID_SNI_LENGTH";
const EV_INVALID_ALERT: &str = "INVALID_ALERT_MESSAGE";
const EV_INVALID_CERTIFICATE: &str = "INVALID_CERTIFICATE";
const EV_ERROR_MSG: &str = "ERROR_MESSAGE_ENCOUNTERED";
const EV_INVALID_SSL_RECORD: &str = "INVALID_SSL_RECORD";

/// Whether `data`, the first bytes of a TCP stream in either direction, looks like TLS/SSL:
/// a handshake or alert record header with major version 3 (SSLv3 to TLS 1.3), or an SSLv2
/// (or SSLv2-compatible) ClientHello.
pub fn probe(data: &[u8]) -> bool {
    match data {
        [ct, 3, minor, ..] if (*ct == CT_HANDSHAKE || *ct == CT_ALERT) && *minor <= 4 => true,
        // SSLv2 two-byte header, then CLIENT-HELLO and a version of SSLv2 or SSLv3/TLS.
        [b0, _, SSLV2_MT_CLIENT_HELLO, 0, 2, ..] | [b0, _, SSLV2_MT_CLIENT_HELLO, 3, 0..=4, ..]
            if b0 & 0x80 != 0 =>
        {
            true
        }
        _ => false,
    }
}

/// What the EVE record holds beyond Suricata's defaults, and from where the flow came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// Log `ja3` / `ja3s` (Suricata: `app-layer.protocols.tls.ja3-fingerprints` enabled,
    /// explicitly or by a rule using a JA3 keyword). Default off.
    pub ja3: bool,
    /// Log `ja4` (`ja4-fingerprints` enabled, or a rule using `ja4.hash`). Default off.
    pub ja4: bool,
    /// Log sessions resumed without a certificate (`eve-log.tls.session-resumption`,
    /// default on).
    pub session_resumption: bool,
    /// The protocol the flow was upgraded from (STARTTLS, HTTP CONNECT), logged as
    /// `from_proto`.
    pub from_proto: Option<&'static str>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ja3: false,
            ja4: false,
            session_resumption: true,
            from_proto: None,
        }
    }
}

/// TLS/SSL parser state for one flow.
#[derive(Debug)]
pub struct TlsParser {
    config: TlsConfig,
    client: Conn,
    server: Conn,
    flags: Flags,
    /// A fatal decoding error: Suricata disables the app layer for the flow.
    failed: bool,
    /// The transaction logger ran (whether or not it wrote a record).
    logged: bool,
}

impl Default for TlsParser {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsParser {
    /// A parser with Suricata 8's default EVE configuration.
    pub fn new() -> TlsParser {
        Self::with_config(TlsConfig::default())
    }

    /// A parser with the given EVE configuration.
    pub fn with_config(config: TlsConfig) -> TlsParser {
        TlsParser {
            config,
            client: Conn::default(),
            server: Conn::default(),
            flags: Flags::default(),
            failed: false,
            logged: false,
        }
    }

    fn conn(&mut self, dir: Dir) -> &mut Conn {
        match dir {
            Dir::ToServer => &mut self.client,
            Dir::ToClient => &mut self.server,
        }
    }

    /// Feeds `data` of `dir` through the record layer.
    fn parse_records(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        let mut input = data;
        loop {
            if self.failed || self.conn(dir).dead {
                return;
            }
            // Application data is skipped as it streams by, never buffered.
            let conn = self.conn(dir);
            if conn.skip > 0 {
                if input.is_empty() {
                    return;
                }
                let n = conn.skip.min(input.len());
                conn.skip -= n;
                input = &input[n..];
                if std::mem::take(&mut conn.appdata_mark) {
                    self.application_data(dir);
                }
                continue;
            }
            if conn.pending.is_empty() {
                if input.is_empty() {
                    return;
                }
                match self.record(dir, input, out) {
                    Step::Consumed(n) => input = &input[n.min(input.len())..],
                    Step::Need => {
                        self.conn(dir).pending.extend_from_slice(input);
                        return;
                    }
                    Step::Fatal => {
                        self.fail(dir);
                        return;
                    }
                    Step::DropRest => return,
                }
                continue;
            }
            // A record started in an earlier call: top the buffer up to what the record
            // needs (a header, then the whole record), never more.
            let mut buf = std::mem::take(&mut self.conn(dir).pending);
            loop {
                let need = record_need(&buf);
                if buf.len() >= need || input.is_empty() {
                    break;
                }
                let n = (need - buf.len()).min(input.len());
                buf.extend_from_slice(&input[..n]);
                input = &input[n..];
            }
            if buf.len() < record_need(&buf) {
                self.conn(dir).pending = buf;
                return;
            }
            match self.record(dir, &buf, out) {
                Step::Consumed(n) => {
                    if n < buf.len() {
                        self.conn(dir).pending = buf[n..].to_vec();
                    }
                }
                Step::Need => {
                    self.conn(dir).pending = buf;
                    return;
                }
                Step::Fatal => {
                    self.fail(dir);
                    return;
                }
                Step::DropRest => return,
            }
        }
    }

    fn fail(&mut self, dir: Dir) {
        self.failed = true;
        let conn = self.conn(dir);
        conn.pending = Vec::new();
        conn.hs_partial = None;
    }

    /// Processes the record starting at `buf[0]`.
    fn record(&mut self, dir: Dir, buf: &[u8], out: &mut Output) -> Step {
        let Some(&b0) = buf.first() else {
            return Step::Need;
        };
        // As in Suricata: a record whose first byte has one of the top two bits set is SSLv2.
        if b0 & 0xc0 != 0 {
            return self.sslv2_record(dir, buf, out);
        }
        let [ct, vmaj, vmin, lhi, llo, ..] = *buf else {
            return Step::Need;
        };
        let rec_version = u16::from_be_bytes([vmaj, vmin]);
        let rec_len = usize::from(u16::from_be_bytes([lhi, llo]));
        let hello_seen = match dir {
            Dir::ToServer => self.flags.client_hello,
            Dir::ToClient => self.flags.server_hello,
        };
        let conn = self.conn(dir);
        // An SSLv2 version left from an earlier record is forgotten at a TLS record.
        let prev_version = if conn.version == SSL_VERSION_2 {
            VERSION_UNKNOWN
        } else {
            conn.version
        };
        // The hello's version wins over the record layer's once the hello was seen.
        let version = if hello_seen && prev_version != VERSION_UNKNOWN {
            prev_version
        } else {
            rec_version
        };
        if !(CT_CHANGE_CIPHER_SPEC..=CT_HEARTBEAT).contains(&ct) {
            out.anomalies.push(EV_INVALID_RECORD_TYPE);
            // Wireshark's rule, followed by Suricata: unknown record types are tolerated in
            // TLS 1.0 and 1.1 (the rest of the data is dropped), fatal otherwise.
            if prev_version == TLS_VERSION_10 || prev_version == TLS_VERSION_11 {
                conn.version = prev_version;
                return Step::DropRest;
            }
            return Step::Fatal;
        }
        conn.version = version;
        if rec_len == 0 {
            out.anomalies.push(EV_INVALID_RECORD_LENGTH);
            return Step::Fatal;
        }
        if !tls_version_valid(version) {
            out.anomalies.push(EV_INVALID_RECORD_VERSION);
            return Step::Fatal;
        }
        if rec_len > RECORD_MAX_LEN {
            out.anomalies.push(EV_INVALID_RECORD_LENGTH);
            return Step::Fatal;
        }
        if ct == CT_APPLICATION_DATA {
            conn.skip = rec_len;
            conn.appdata_mark = true;
            return Step::Consumed(RECORD_HDR_LEN);
        }
        let Some(body) = buf.get(RECORD_HDR_LEN..RECORD_HDR_LEN + rec_len) else {
            return Step::Need;
        };
        let ok = match ct {
            CT_CHANGE_CIPHER_SPEC => {
                self.flags.ccs = true;
                self.conn(dir).ccs = true;
                true
            }
            CT_ALERT => self.alert(body, out),
            CT_HANDSHAKE => self.handshake_record(dir, body, out),
            _ => self.heartbeat(body, rec_len, out),
        };
        if ok {
            Step::Consumed(RECORD_HDR_LEN + rec_len)
        } else {
            Step::Fatal
        }
    }

    /// An SSLv2 record: only the hellos matter (version, handshake flags).
    fn sslv2_record(&mut self, dir: Dir, buf: &[u8], out: &mut Output) -> Step {
        let (hdr_len, lengths_len, rec_len, mt) = match *buf {
            [b0, b1, mt, ..] if b0 & 0x80 != 0 => {
                (3, 2, usize::from(b0 & 0x7f) << 8 | usize::from(b1), mt)
            }
            [b0, b1, _pad, mt, ..] if b0 & 0x80 == 0 => {
                (4, 3, usize::from(b0 & 0x3f) << 8 | usize::from(b1), mt)
            }
            _ => return Step::Need,
        };
        let total = lengths_len + rec_len;
        if buf.len() < total {
            return Step::Need;
        }
        if rec_len == 0 {
            out.anomalies.push(EV_INVALID_SSLV2_HEADER);
            return Step::Fatal;
        }
        self.conn(dir).version = SSL_VERSION_2;
        let body = buf.get(hdr_len..total).unwrap_or_default();
        match mt {
            SSLV2_MT_ERROR => out.anomalies.push(EV_ERROR_MSG),
            SSLV2_MT_CLIENT_HELLO => {
                // version(2) cipher_spec_length(2) session_id_length(2) after the type byte.
                let [vh, vl, _, _, _, _, ..] = *body else {
                    out.anomalies.push(EV_INVALID_SSL_RECORD);
                    return Step::Fatal;
                };
                self.conn(dir).version = u16::from_be_bytes([vh, vl]);
                self.flags.client_hello = true;
            }
            SSLV2_MT_SERVER_HELLO => self.flags.server_hello = true,
            _ => {}
        }
        Step::Consumed(total)
    }

    /// An alert record; a fatal alert in clear ends the handshake in both directions.
    fn alert(&mut self, body: &[u8], out: &mut Output) -> bool {
        if body.len() < 2 {
            out.anomalies.push(EV_INVALID_ALERT);
            return false;
        }
        // Longer records are encrypted alerts; level 2 is "fatal".
        if body.len() == 2 && body[0] == 2 {
            self.client.progress = self.client.progress.max(PROGRESS_FINISHED);
            self.server.progress = self.server.progress.max(PROGRESS_FINISHED);
        }
        true
    }

    /// A heartbeat record in clear must be a well-formed request or response
    /// (CVE-2014-0160 shows up as a payload longer than the record).
    fn heartbeat(&mut self, body: &[u8], rec_len: usize, out: &mut Output) -> bool {
        if self.flags.ccs || body.len() < 3 {
            return true;
        }
        if !(body[0] == 1 || body[0] == 2) {
            out.anomalies.push(EV_INVALID_HEARTBEAT);
            return false;
        }
        let payload = usize::from(u16::from_be_bytes([body[1], body[2]]));
        if payload + 3 > rec_len {
            out.anomalies.push(EV_OVERFLOW_HEARTBEAT);
            return false;
        }
        if rec_len - payload - 3 < 16 {
            out.anomalies.push(EV_INVALID_HEARTBEAT);
            return false;
        }
        true
    }

    /// The first application-data byte of a direction: its handshake is over. TLS 1.3 0-RTT
    /// data before the ServerHello does not count.
    fn application_data(&mut self, dir: Dir) {
        if self.flags.early_data && !self.flags.server_hello {
            return;
        }
        let conn = self.conn(dir);
        conn.progress = conn.progress.max(PROGRESS_HANDSHAKE_DONE);
    }

    /// A handshake record: splits it into handshake messages, reassembling messages that
    /// span records. Returns false on a fatal error.
    fn handshake_record(&mut self, dir: Dir, body: &[u8], out: &mut Output) -> bool {
        if self.flags.ccs {
            // After ChangeCipherSpec handshake records are encrypted. TLS 1.3 middlebox
            // compatibility mode sends a ChangeCipherSpec before a second ClientHello
            // (after HelloRetryRequest), which is still in clear.
            let tls13_client = self.flags.client_hello
                && self.client.version > TLS_VERSION_12
                && !self.flags.server_hello;
            if !tls13_client {
                return true;
            }
        }
        if body.len() < 4 {
            out.anomalies.push(EV_INVALID_SSL_RECORD);
            return false;
        }
        let mut input = body;
        while !input.is_empty() {
            if let Some(mut partial) = self.conn(dir).hs_partial.take() {
                let n = (partial.len - partial.got).min(input.len());
                if let Some(data) = partial.data.as_mut() {
                    data.extend_from_slice(&input[..n]);
                }
                partial.got += n;
                input = &input[n..];
                if partial.got < partial.len {
                    self.conn(dir).hs_partial = Some(partial);
                } else if let Some(data) = partial.data {
                    self.handshake_message(dir, partial.typ, &data, out);
                }
                continue;
            }
            // Suricata requires the 4-byte message header within one record.
            let [typ, l0, l1, l2, ..] = *input else {
                out.anomalies.push(EV_INVALID_SSL_RECORD);
                out.anomalies.push(EV_INVALID_HANDSHAKE_MESSAGE);
                return false;
            };
            let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
            input = &input[4..];
            if !supported_handshake_type(typ) {
                let n = len.min(input.len());
                input = &input[n..];
                // Encrypted handshake messages after ChangeCipherSpec look like garbage.
                if !self.conn(dir).ccs {
                    out.anomalies.push(EV_INVALID_HANDSHAKE_MESSAGE);
                }
                continue;
            }
            if len > input.len() {
                let data = (len <= MAX_HS_MESSAGE).then(|| {
                    let mut v = Vec::with_capacity(len);
                    v.extend_from_slice(input);
                    v
                });
                self.conn(dir).hs_partial = Some(HsPartial {
                    typ,
                    len,
                    got: input.len(),
                    data,
                });
                return true;
            }
            let (msg, rest) = input.split_at(len);
            self.handshake_message(dir, typ, msg, out);
            input = rest;
        }
        true
    }

    /// One complete handshake message of `dir`.
    fn handshake_message(&mut self, dir: Dir, typ: u8, msg: &[u8], out: &mut Output) {
        let (this, peer) = match dir {
            Dir::ToServer => (&mut self.client, &mut self.server),
            Dir::ToClient => (&mut self.server, &mut self.client),
        };
        match typ {
            HS_CLIENT_HELLO | HS_SERVER_HELLO => {
                let client = typ == HS_CLIENT_HELLO;
                decode_hello(this, peer, &mut self.flags, client, msg, out);
                // The flag is raised after the decode, as Suricata's `current_flags`.
                if client {
                    self.flags.client_hello = true;
                } else {
                    self.flags.server_hello = true;
                }
                hello_buffers(this, dir, client, out);
            }
            HS_CERTIFICATE => decode_certificates(this, dir, msg, out),
            HS_CERTIFICATE_REQUEST if dir == Dir::ToClient => {
                self.flags.need_client_cert = true;
            }
            _ => {}
        }
    }

    /// Suricata's end-of-parse check: a certificate with subject and issuer (the client's
    /// when the server asked for one) ends the handshake in both directions.
    fn update_handshake_done(&mut self) {
        let cert_done = if self.flags.need_client_cert {
            self.client.cert.is_some()
        } else {
            self.server.cert.is_some()
        };
        if cert_done {
            self.client.progress = self.client.progress.max(PROGRESS_HANDSHAKE_DONE);
            self.server.progress = self.server.progress.max(PROGRESS_HANDSHAKE_DONE);
        }
    }

    /// Runs the transaction logger once both directions are done, as Suricata's output
    /// loop does after each packet.
    fn maybe_log(&mut self, dir: Dir, out: &mut Output) {
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
    fn eve_object(&self) -> Option<Value> {
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

impl AppParser for TlsParser {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn parse(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        self.parse_records(dir, data, out);
        self.update_handshake_done();
        self.maybe_log(dir, out);
    }

    fn gap(&mut self, dir: Dir, len: usize, out: &mut Output) {
        let _ = (len, out);
        // Records cannot be resynchronised after lost bytes: stop parsing this direction.
        let conn = self.conn(dir);
        conn.dead = true;
        conn.pending = Vec::new();
        conn.hs_partial = None;
        conn.skip = 0;
    }

    fn finish(&mut self, out: &mut Output) {
        // At end of flow both directions are finished, so the logger runs if it has not.
        self.client.progress = PROGRESS_FINISHED;
        self.server.progress = PROGRESS_FINISHED;
        self.maybe_log(Dir::ToServer, out);
    }
}

/// Result of processing the record at the start of a buffer.
enum Step {
    /// The record (or its header, for application data) took this many bytes.
    Consumed(usize),
    /// More bytes are needed (see [`record_need`]).
    Need,
    /// A fatal error: the flow's TLS parsing stops.
    Fatal,
    /// Ignore the rest of this call's data.
    DropRest,
}

/// How many bytes the record at the start of `buf` needs before it can be processed: its
/// header, then its whole body except for application data (skipped while streaming) and
/// for headers that will be rejected.
fn record_need(buf: &[u8]) -> usize {
    match *buf {
        [] => 1,
        // SSLv2: the header (lengths and message type), then the whole record.
        [b0, ..] if b0 & 0xc0 != 0 => match *buf {
            [b0, b1, ..] if b0 & 0x80 != 0 => {
                3.max(2 + (usize::from(b0 & 0x7f) << 8 | usize::from(b1)))
            }
            [b0, b1, ..] => 4.max(3 + (usize::from(b0 & 0x3f) << 8 | usize::from(b1))),
            _ => 2,
        },
        [ct, _, _, lhi, llo, ..] => {
            let len = usize::from(u16::from_be_bytes([lhi, llo]));
            if ct == CT_APPLICATION_DATA || len == 0 || len > RECORD_MAX_LEN {
                RECORD_HDR_LEN
            } else {
                RECORD_HDR_LEN + len
            }
        }
        _ => RECORD_HDR_LEN,
    }
}

/// Handshake message types Suricata decodes or knowingly skips.
fn supported_handshake_type(t: u8) -> bool {
    matches!(
        t,
        HS_HELLO_REQUEST
            | HS_CLIENT_HELLO
            | HS_SERVER_HELLO
            | HS_NEW_SESSION_TICKET
            | HS_CERTIFICATE
            | HS_SERVER_KEY_EXCHANGE
            | HS_CERTIFICATE_REQUEST
            | HS_SERVER_HELLO_DONE
            | HS_CERTIFICATE_VERIFY
            | HS_CLIENT_KEY_EXCHANGE
            | HS_FINISHED
            | HS_CERTIFICATE_URL
            | HS_CERTIFICATE_STATUS
    )
}

/// Flow-wide flags (Suricata's `ssl_state->flags`).
#[derive(Debug, Default)]
struct Flags {
    client_hello: bool,
    server_hello: bool,
    /// The ClientHello had `supported_versions`.
    ch_version_ext: bool,
    /// TLS 1.3: the certificate is encrypted, log without one.
    log_without_cert: bool,
    /// Session id reused, or the client offered a session ticket.
    session_resumed: bool,
    /// 0-RTT: application data may precede the ServerHello.
    early_data: bool,
    /// The server sent a CertificateRequest.
    need_client_cert: bool,
    /// A ChangeCipherSpec was seen in either direction.
    ccs: bool,
}

/// A handshake message spanning records.
#[derive(Debug)]
struct HsPartial {
    typ: u8,
    len: usize,
    got: usize,
    /// `None` when the message is too long to keep: it is skipped.
    data: Option<Vec<u8>>,
}

/// Per-direction state (Suricata's `SSLStateConnp`).
#[derive(Debug, Default)]
struct Conn {
    /// Start of a record not yet complete (at most one record).
    pending: Vec<u8>,
    /// Application-data bytes still to skip.
    skip: usize,
    /// The current application-data record has not shown a body byte yet.
    appdata_mark: bool,
    /// Record-layer version, then the hello's (and `supported_versions`').
    version: u16,
    hs_partial: Option<HsPartial>,
    /// Hello parameters for JA4 and the ALPN fields.
    hs: Option<HandshakeParams>,
    ja3: Option<Ja3>,
    sni: Option<Vec<u8>>,
    session_id: Option<Vec<u8>>,
    /// The first certificate of the chain, when it decoded fully.
    cert: Option<CertInfo>,
    /// A certificate message was seen (only the first one is decoded).
    certs_seen: bool,
    /// This direction sent ChangeCipherSpec.
    ccs: bool,
    progress: u8,
    /// Parsing stopped after a gap.
    dead: bool,
}

/// Hello parameters as Suricata's `HandshakeParams` collects them (GREASE removed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct HandshakeParams {
    /// Highest version seen (hello version, first valid `supported_versions` entry).
    version: Option<u16>,
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    sig_algs: Vec<u16>,
    alpns: Vec<Vec<u8>>,
    /// A `server_name` extension was present.
    domain: bool,
}

impl HandshakeParams {
    fn set_version(&mut self, v: u16) {
        if is_grease(v) {
            return;
        }
        self.version = Some(self.version.map_or(v, |cur| cur.max(v)));
    }
}

/// A JA3 (client) or JA3S (server) fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ja3 {
    string: String,
    hash: String,
}

impl Ja3 {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("hash".into(), Value::String(self.hash.clone()));
        m.insert("string".into(), Value::String(self.string.clone()));
        Value::Object(m)
    }
}

/// The fields of a JA3 string being collected from a hello.
#[derive(Debug, Default)]
struct Ja3Parts {
    version: u16,
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    curves: Vec<u16>,
    point_formats: Vec<u8>,
}

impl Ja3Parts {
    /// "version,ciphers,extensions,curves,point formats" for a client (Salesforce JA3),
    /// "version,cipher,extensions" for a server (JA3S); values in decimal joined by '-'.
    fn finish(&self, client: bool) -> Ja3 {
        fn join<T: ToString>(v: &[T]) -> String {
            v.iter().map(T::to_string).collect::<Vec<_>>().join("-")
        }
        let mut string = format!(
            "{},{},{}",
            self.version,
            join(&self.ciphers),
            join(&self.extensions)
        );
        if client {
            string.push(',');
            string.push_str(&join(&self.curves));
            string.push(',');
            string.push_str(&join(&self.point_formats));
        }
        let hash = hex(&Md5::digest(string.as_bytes()));
        Ja3 { string, hash }
    }
}

/// Fields of a decoded certificate, formatted as Suricata logs them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CertInfo {
    subject: String,
    issuer: String,
    sans: Vec<String>,
    serial: String,
    fingerprint: String,
    not_before: i64,
    not_after: i64,
}

/// Decodes a ClientHello (`client`) or ServerHello body into `this`.
fn decode_hello(
    this: &mut Conn,
    peer: &Conn,
    flags: &mut Flags,
    client: bool,
    msg: &[u8],
    out: &mut Output,
) {
    // Created before decoding, so that even a broken hello has a (JA4) handshake record.
    this.hs.get_or_insert_with(HandshakeParams::default);
    let mut r = Reader::new(msg);
    let Some(version) = r.u16() else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return;
    };
    this.version = version;
    this.hs
        .get_or_insert_with(HandshakeParams::default)
        .set_version(version);
    // TLS 1.3 drafts 1-21 announce themselves in the ServerHello version field.
    if !client && (version == TLS_VERSION_13 || version >> 8 == 0x7f) {
        flags.log_without_cert = true;
    }
    if (0x7f01..0x7f10).contains(&version) || version == TLS_VERSION_13 {
        this.version = TLS_VERSION_13_PRE_DRAFT16;
    }
    // A JA3 already computed is not augmented by a later hello (HelloRetryRequest).
    let mut ja3 = this.ja3.is_none().then(|| Ja3Parts {
        version,
        ..Ja3Parts::default()
    });
    if r.take(32).is_none() {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return;
    }
    // TLS 1.3 drafts removed the session id and compression from the ServerHello.
    let legacy_fields = client || !flags.log_without_cert;
    if legacy_fields {
        let Some(sid) = r.u8().and_then(|n| r.take(usize::from(n))) else {
            out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
            return;
        };
        if !sid.is_empty() && this.session_id.is_none() {
            this.session_id = Some(sid.to_vec());
            if !client && peer.session_id.as_deref() == Some(sid) {
                flags.session_resumed = true;
            }
        }
    }
    let suites = if client {
        r.u16().and_then(|n| r.take(usize::from(n)))
    } else {
        r.take(2)
    };
    let Some(suites) = suites.filter(|s| s.len() % 2 == 0) else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return;
    };
    let hs = this.hs.get_or_insert_with(HandshakeParams::default);
    for c in suites.chunks_exact(2) {
        let c = u16::from_be_bytes([c[0], c[1]]);
        if !is_grease(c) {
            hs.ciphers.push(c);
            if let Some(j) = ja3.as_mut() {
                j.ciphers.push(c);
            }
        }
    }
    if legacy_fields {
        let comp = if client {
            r.u8().and_then(|n| r.take(usize::from(n)))
        } else {
            r.take(1)
        };
        if comp.is_none() {
            out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
            return;
        }
    }
    if decode_extensions(&mut r, this, flags, client, &mut ja3, out) {
        if let Some(j) = ja3 {
            this.ja3 = Some(j.finish(client));
        }
    }
}

/// How an extension decoder stopped early.
enum ExtStop {
    /// Stop the extension list but keep the hello (Suricata's `goto end`).
    End,
    /// Malformed beyond use: no JA3 for this hello (Suricata's `goto error`).
    Error,
}

/// Decodes the extension block of a hello. Returns false when the hello is malformed
/// enough that Suricata computes no JA3 for it.
fn decode_extensions(
    r: &mut Reader<'_>,
    this: &mut Conn,
    flags: &mut Flags,
    client: bool,
    ja3: &mut Option<Ja3Parts>,
    out: &mut Output,
) -> bool {
    // Extensions are optional (RFC 5246 7.4.1.2).
    let Some(len) = r.u16() else {
        return true;
    };
    let Some(block) = r.take(usize::from(len)) else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return false;
    };
    let mut e = Reader::new(block);
    while e.remaining() > 0 {
        let Some((typ, data)) = e
            .u16()
            .and_then(|t| e.u16().and_then(|n| e.take(usize::from(n))).map(|d| (t, d)))
        else {
            out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
            return false;
        };
        let res = match typ {
            EXT_SNI => ext_sni(this, data, out),
            EXT_SUPPORTED_GROUPS => ext_curves(data, client, ja3),
            EXT_EC_POINT_FORMATS => ext_point_formats(data, client, ja3),
            EXT_SIGNATURE_ALGORITHMS => ext_sig_algs(this, data, client),
            EXT_ALPN => ext_alpn(this, data),
            EXT_SUPPORTED_VERSIONS => ext_supported_versions(this, flags, data, client),
            EXT_EARLY_DATA => {
                if client {
                    flags.early_data = true;
                }
                Ok(())
            }
            EXT_SESSION_TICKET => {
                // Confirmed or not by the server's certificate later; Suricata counts the
                // offer as a resumption.
                if client {
                    flags.session_resumed = true;
                }
                Ok(())
            }
            _ => Ok(()),
        };
        match res {
            Ok(()) => {}
            Err(ExtStop::End) => return true,
            Err(ExtStop::Error) => {
                out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
                return false;
            }
        }
        if !is_grease(typ) {
            if let Some(j) = ja3.as_mut() {
                j.extensions.push(typ);
            }
            let hs = this.hs.get_or_insert_with(HandshakeParams::default);
            hs.extensions.push(typ);
            if typ == EXT_SNI {
                hs.domain = true;
            }
        }
    }
    true
}

fn ext_sni(this: &mut Conn, data: &[u8], out: &mut Output) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    // The list length is not checked, only the first entry is used.
    let (Some(_), Some(typ)) = (r.u16(), r.u8()) else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return Err(ExtStop::End);
    };
    if typ != 0 {
        out.anomalies.push(EV_INVALID_SNI_TYPE);
        return Err(ExtStop::End);
    }
    let Some(n) = r.u16() else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return Err(ExtStop::End);
    };
    let n = usize::from(n);
    // A host name is at most a DNS name long.
    let Some(name) = r.take(n).filter(|_| n != 0 && n <= 255) else {
        out.anomalies.push(EV_INVALID_SNI_LENGTH);
        return Err(ExtStop::End);
    };
    if this.sni.is_some() {
        out.anomalies.push(EV_MULTIPLE_SNI);
    } else {
        this.sni = Some(name.to_vec());
    }
    Ok(())
}

fn ext_curves(data: &[u8], client: bool, ja3: &mut Option<Ja3Parts>) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    let list = r
        .u16()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or(ExtStop::Error)?;
    if client {
        if let Some(j) = ja3.as_mut() {
            if list.len() % 2 != 0 {
                return Err(ExtStop::Error);
            }
            for c in list.chunks_exact(2) {
                let c = u16::from_be_bytes([c[0], c[1]]);
                if !is_grease(c) {
                    j.curves.push(c);
                }
            }
        }
    }
    Ok(())
}

fn ext_point_formats(data: &[u8], client: bool, ja3: &mut Option<Ja3Parts>) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    let list = r
        .u8()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or(ExtStop::Error)?;
    if client {
        if let Some(j) = ja3.as_mut() {
            j.point_formats.extend_from_slice(list);
        }
    }
    Ok(())
}

fn ext_sig_algs(this: &mut Conn, data: &[u8], client: bool) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    let list = r
        .u16()
        .filter(|n| n % 2 == 0)
        .and_then(|n| r.take(usize::from(n)))
        .ok_or(ExtStop::End)?;
    if client {
        let hs = this.hs.get_or_insert_with(HandshakeParams::default);
        for s in list.chunks_exact(2) {
            let s = u16::from_be_bytes([s[0], s[1]]);
            if !is_grease(s) {
                hs.sig_algs.push(s);
            }
        }
    }
    Ok(())
}

fn ext_alpn(this: &mut Conn, data: &[u8]) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    let list = r
        .u16()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or(ExtStop::End)?;
    let hs = this.hs.get_or_insert_with(HandshakeParams::default);
    let mut l = Reader::new(list);
    while l.remaining() > 0 {
        let n = usize::from(l.u8().ok_or(ExtStop::End)?);
        // A protocol running past the list ends it quietly, as in Suricata.
        let Some(proto) = l.take(n) else {
            break;
        };
        if !proto.is_empty() {
            hs.alpns.push(proto.to_vec());
        }
    }
    Ok(())
}

fn ext_supported_versions(
    this: &mut Conn,
    flags: &mut Flags,
    data: &[u8],
    client: bool,
) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    if client {
        let list = r
            .u8()
            .filter(|&n| n >= 2)
            .and_then(|n| r.take(usize::from(n)))
            .ok_or(ExtStop::End)?;
        // The first (preferred) valid version, skipping GREASE and noise.
        if let Some(v) = list
            .chunks_exact(2)
            .map(|v| u16::from_be_bytes([v[0], v[1]]))
            .find(|&v| tls_version_valid(v))
        {
            this.version = v;
            this.hs
                .get_or_insert_with(HandshakeParams::default)
                .set_version(v);
        }
        flags.ch_version_ext = true;
    } else {
        let v = r.u16().ok_or(ExtStop::End)?;
        if flags.ch_version_ext && v > TLS_VERSION_12 {
            flags.log_without_cert = true;
        }
        this.version = v;
    }
    Ok(())
}

/// Sticky buffers of a hello just decoded.
fn hello_buffers(this: &Conn, dir: Dir, client: bool, out: &mut Output) {
    if client {
        if let Some(sni) = &this.sni {
            out.buffers.push((dir, Buffer::TlsSni, sni.clone()));
        }
        if let Some(hs) = &this.hs {
            for a in &hs.alpns {
                out.buffers.push((dir, Buffer::TlsAlpn, a.clone()));
            }
            out.buffers
                .push((dir, Buffer::Ja4Hash, ja4(hs).into_bytes()));
        }
        if let Some(j) = &this.ja3 {
            out.buffers
                .push((dir, Buffer::Ja3Hash, j.hash.clone().into_bytes()));
            out.buffers
                .push((dir, Buffer::Ja3String, j.string.clone().into_bytes()));
        }
    } else if let Some(j) = &this.ja3 {
        out.buffers
            .push((dir, Buffer::Ja3sHash, j.hash.clone().into_bytes()));
        out.buffers
            .push((dir, Buffer::Ja3sString, j.string.clone().into_bytes()));
    }
}

/// Decodes a Certificate message (TLS <= 1.2 layout): the first certificate's fields go to
/// `this.cert` when they all decode, every certificate becomes a `tls.certs` buffer.
fn decode_certificates(this: &mut Conn, dir: Dir, msg: &[u8], out: &mut Output) {
    let mut r = Reader::new(msg);
    let Some(chain) = r.u24().and_then(|n| r.take(n)) else {
        return;
    };
    // Only the first certificate message counts (renegotiation re-sends it).
    if std::mem::replace(&mut this.certs_seen, true) {
        return;
    }
    let mut c = Reader::new(chain);
    let mut index = 0usize;
    while c.remaining() > 0 {
        let Some(der) = c.u24().and_then(|n| c.take(n)) else {
            out.anomalies.push(EV_INVALID_CERTIFICATE);
            return;
        };
        if index == 0 && this.cert.is_none() {
            match cert_info(der) {
                Ok(info) => {
                    out.buffers.push((
                        dir,
                        Buffer::TlsCertSubject,
                        info.subject.clone().into_bytes(),
                    ));
                    out.buffers.push((
                        dir,
                        Buffer::TlsCertIssuer,
                        info.issuer.clone().into_bytes(),
                    ));
                    out.buffers.push((
                        dir,
                        Buffer::TlsCertSerial,
                        info.serial.clone().into_bytes(),
                    ));
                    out.buffers.push((
                        dir,
                        Buffer::TlsCertFingerprint,
                        info.fingerprint.clone().into_bytes(),
                    ));
                    for san in &info.sans {
                        out.buffers.push((
                            dir,
                            Buffer::TlsSubjectAltName,
                            san.clone().into_bytes(),
                        ));
                    }
                    this.cert = Some(info);
                }
                Err(event) => {
                    // Suricata gives up on the message at the first undecodable certificate.
                    out.anomalies.push(event);
                    return;
                }
            }
        }
        out.buffers.push((dir, Buffer::TlsCerts, der.to_vec()));
        index += 1;
    }
}

/// Extracts the logged fields of a DER certificate with x509-parser (the library Suricata
/// uses, so names render identically: "C=US, O=..., CN=...").
fn cert_info(der: &[u8]) -> Result<CertInfo, &'static str> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| match e {
        nom::Err::Incomplete(_) => "CERTIFICATE_INVALID_LENGTH",
        nom::Err::Error(e) | nom::Err::Failure(e) => match e {
            X509Error::InvalidVersion => "CERTIFICATE_INVALID_VERSION",
            X509Error::InvalidSerial => "CERTIFICATE_INVALID_SERIAL",
            X509Error::InvalidAlgorithmIdentifier => "CERTIFICATE_INVALID_ALGORITHMIDENTIFIER",
            X509Error::InvalidX509Name => "CERTIFICATE_INVALID_X509NAME",
            X509Error::InvalidDate => "CERTIFICATE_INVALID_DATE",
            X509Error::InvalidExtensions => "CERTIFICATE_INVALID_EXTENSIONS",
            X509Error::Der(_) => "CERTIFICATE_INVALID_DER",
            _ => EV_INVALID_CERTIFICATE,
        },
    })?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().map(san_string).collect(),
        _ => Vec::new(),
    };
    let serial = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let fingerprint = Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        serial,
        fingerprint,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// A subject alternative name as logged: DNS names and addresses bare, others as
/// x509-parser renders them.
fn san_string(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
            (*s).to_string()
        }
        GeneralName::IPAddress(addr) => match **addr {
            [a, b, c, d] => std::net::Ipv4Addr::new(a, b, c, d).to_string(),
            _ => match <[u8; 16]>::try_from(*addr) {
                Ok(v6) => std::net::Ipv6Addr::from(v6).to_string(),
                Err(_) => name.to_string(),
            },
        },
        _ => name.to_string(),
    }
}

/// JA4 (FoxIO) as Suricata 8 computes it (`rust/src/ja4.rs`): "t", version, "d"/"i",
/// cipher and extension counts (max 99), first/last character of the first ALPN, then the
/// truncated SHA-256 of the sorted ciphers and of the sorted extensions (without SNI and
/// ALPN) "_" signature algorithms. Suricata always keeps the "_" even without signature
/// algorithms, and hashes an empty cipher list rather than writing zeros.
fn ja4(hs: &HandshakeParams) -> String {
    let version = match hs.version {
        Some(TLS_VERSION_13) => "13",
        Some(TLS_VERSION_12) => "12",
        Some(TLS_VERSION_11) => "11",
        Some(TLS_VERSION_10) => "10",
        Some(SSL_VERSION_3) => "s3",
        _ => "00",
    };
    let alpn = ja4_alpn(hs.alpns.first().map(Vec::as_slice));
    let ja4_a = format!(
        "t{version}{}{:02}{:02}{}{}",
        if hs.domain { 'd' } else { 'i' },
        hs.ciphers.len().min(99),
        hs.extensions.len().min(99),
        alpn[0],
        alpn[1]
    );
    let mut ciphers = hs.ciphers.clone();
    ciphers.sort_unstable();
    let mut exts: Vec<u16> = hs
        .extensions
        .iter()
        .copied()
        .filter(|&e| e != EXT_SNI && e != EXT_ALPN)
        .collect();
    exts.sort_unstable();
    let b_raw = hex_list(&ciphers);
    let c_raw = format!("{}_{}", hex_list(&exts), hex_list(&hs.sig_algs));
    let mut b = hex(&Sha256::digest(b_raw.as_bytes()));
    b.truncate(12);
    let mut c = hex(&Sha256::digest(c_raw.as_bytes()));
    c.truncate(12);
    format!("{ja4_a}_{b}_{c}")
}

/// The two ALPN characters of JA4_a: "00" without ALPN or for a GREASE value, the first
/// and last characters when both are alphanumeric, otherwise the first nibble of the first
/// byte and the last nibble of the last byte in hex.
fn ja4_alpn(alpn: Option<&[u8]>) -> [char; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let Some(alpn) = alpn else {
        return ['0', '0'];
    };
    let (Some(&first), Some(&last)) = (alpn.first(), alpn.last()) else {
        return ['0', '0'];
    };
    if alpn.len() == 2 && is_grease(u16::from_be_bytes([first, last])) {
        return ['0', '0'];
    }
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        [char::from(first), char::from(last)]
    } else {
        [
            char::from(HEX[usize::from(first >> 4)]),
            char::from(HEX[usize::from(last & 0xf)]),
        ]
    }
}

fn hex_list(v: &[u16]) -> String {
    v.iter()
        .map(|x| format!("{x:04x}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 8701 GREASE values (0x?a?a with equal bytes).
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Versions Suricata accepts in a record header or `supported_versions` (`TLSVersionValid`):
/// SSLv3 to TLS 1.3 and the TLS 1.3 drafts, not SSLv2.
fn tls_version_valid(v: u16) -> bool {
    matches!(
        v,
        SSL_VERSION_3 | TLS_VERSION_10 | TLS_VERSION_11 | TLS_VERSION_12 | TLS_VERSION_13
    ) || v == TLS_VERSION_13_PRE_DRAFT16
        || (0x7f10..=0x7f1c).contains(&v)
        || matches!(v, 0xfb14 | 0xfb15 | 0xfb16 | 0xfb17 | 0xfb1a)
}

/// The `version` field (Suricata's `SSLVersionToString`).
fn version_string(v: u16) -> String {
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
fn insert_time(m: &mut Map<String, Value>, key: &str, ts: i64) {
    if ts != 0 {
        if let Some(s) = crate::timefmt::cert(ts) {
            m.insert(key.into(), Value::String(s));
        }
    }
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::String(s.clone())).collect())
}

/// Bytes as Suricata's JSON builder writes them: UTF-8 as is, otherwise ASCII kept and other
/// bytes as `\xNN`.
fn bytes_to_string(b: &[u8]) -> String {
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

/// A bounds-checked big-endian reader.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 certificate made for these tests with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1
    /// -subj "/C=US/ST=California/O=Precinct Test, Inc./CN=test.example.com"
    /// -addext "subjectAltName=DNS:test.example.com,DNS:www.example.com"`.
    /// `openssl x509 -noout -fingerprint -sha1 -serial -dates` gives:
    /// SHA1 FB:D3:74:43:7C:63:FB:B7:09:B4:17:46:9A:2F:53:8D:E7:CD:9F:48,
    /// serial 4D2FF208653F770229A8D0EA2DFA19958A053C89,
    /// notBefore Nov 22 01:15:21 2026 GMT, notAfter Nov 23 01:15:21 2026 GMT.
    const CERT_HEX: &str = concat!(
        "3082023b308201e0a00302010202144d2ff208653f770229a8d0ea2dfa19958a053c89300a06082a8648ce3d04030230",
        "5b310b30090603550406130255533113301106035504080c0a43616c69666f726e6961311c301a060355040a0c135072",
        "6563696e637420546573742c20496e632e3119301706035504030c10746573742e6578616d706c652e636f6d301e170d",
        "3236313132323031313532315a170d3236313132333031313532315a305b310b30090603550406130255533113301106",
        "035504080c0a43616c69666f726e6961311c301a060355040a0c1350726563696e637420546573742c20496e632e3119",
        "301706035504030c10746573742e6578616d706c652e636f6d3059301306072a8648ce3d020106082a8648ce3d030107",
        "034200044420f062a79d459f72053eb74f3c8c22091bb47096d6240ae13a300bd6a66d70237f042f8dcc0001de94776b",
        "fc1e893edc3ac052eca6234e5469b65e7cad978ba38181307f301d0603551d0e041604147264f2ae1c8a296b2a23d7ae",
        "62e7251a77f8f8ad301f0603551d230418301680147264f2ae1c8a296b2a23d7ae62e7251a77f8f8ad300f0603551d13",
        "0101ff040530030101ff302c0603551d11042530238210746573742e6578616d706c652e636f6d820f7777772e657861",
        "6d706c652e636f6d300a06082a8648ce3d04030203490030460221009573f18fc3f37e6ed1c01ba0f77513f179e816d9",
        "8b1d852dc2c5c032be75fec5022100e74f4557262e5b51d41b6cf45ea049967f704f3b0fe0df031b1adcf94a3b93af",
    );

    fn cert_der() -> Vec<u8> {
        (0..CERT_HEX.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&CERT_HEX[i..i + 2], 16).expect("test constant is hex"))
            .collect()
    }

    // ---- builders ----

    fn u16s(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn with_len16(body: &[u8]) -> Vec<u8> {
        let mut v = u16::try_from(body.len())
            .expect("test data fits")
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(body);
        v
    }

    fn with_len8(body: &[u8]) -> Vec<u8> {
        let mut v = vec![u8::try_from(body.len()).expect("test data fits")];
        v.extend_from_slice(body);
        v
    }

    fn with_len24(body: &[u8]) -> Vec<u8> {
        let n = u32::try_from(body.len())
            .expect("test data fits")
            .to_be_bytes();
        let mut v = n[1..].to_vec();
        v.extend_from_slice(body);
        v
    }

    fn record(ct: u8, version: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ct];
        v.extend_from_slice(&version.to_be_bytes());
        v.extend(with_len16(body));
        v
    }

    fn handshake(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![typ];
        v.extend(with_len24(body));
        v
    }

    fn ext(typ: u16, data: &[u8]) -> (u16, Vec<u8>) {
        (typ, data.to_vec())
    }

    fn ext_sni_data(name: &str) -> Vec<u8> {
        let mut entry = vec![0u8];
        entry.extend(with_len16(name.as_bytes()));
        with_len16(&entry)
    }

    fn ext_alpn_data(protos: &[&[u8]]) -> Vec<u8> {
        let list: Vec<u8> = protos.iter().flat_map(|p| with_len8(p)).collect();
        with_len16(&list)
    }

    fn ext_list16(v: &[u16]) -> Vec<u8> {
        with_len16(&u16s(v))
    }

    fn ext_versions_client(v: &[u16]) -> Vec<u8> {
        with_len8(&u16s(v))
    }

    fn exts_block(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (t, d) in exts {
            b.extend_from_slice(&t.to_be_bytes());
            b.extend(with_len16(d));
        }
        with_len16(&b)
    }

    fn client_hello(
        version: u16,
        session_id: &[u8],
        ciphers: &[u16],
        exts: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x11; 32]);
        b.extend(with_len8(session_id));
        b.extend(with_len16(&u16s(ciphers)));
        b.extend(with_len8(&[0]));
        b.extend(exts_block(exts));
        handshake(HS_CLIENT_HELLO, &b)
    }

    fn server_hello(
        version: u16,
        session_id: &[u8],
        cipher: u16,
        exts: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x22; 32]);
        b.extend(with_len8(session_id));
        b.extend_from_slice(&cipher.to_be_bytes());
        b.push(0);
        b.extend(exts_block(exts));
        handshake(HS_SERVER_HELLO, &b)
    }

    fn certificate(chain: &[&[u8]]) -> Vec<u8> {
        let certs: Vec<u8> = chain.iter().flat_map(|c| with_len24(c)).collect();
        handshake(HS_CERTIFICATE, &with_len24(&certs))
    }

    /// A Chrome ClientHello as published with its fingerprints by browserleaks
    /// (ja4_ro order): ja4 t13d1516h2_8daaf6152771_d8a2da3f94cd, ja3
    /// 98487aa16281980e7d1120d399efb6a4. GREASE values are added where Chrome puts them.
    fn chrome_client_hello() -> Vec<u8> {
        let ciphers = [
            0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let exts = vec![
            ext(0x0a0a, &[]),
            ext(0x002d, &[1, 1]),
            ext(0x0033, &with_len16(&[0x6a, 0x6a, 0, 1, 0])),
            ext(EXT_ALPN, &ext_alpn_data(&[b"h2", b"http/1.1"])),
            ext(0xfe0d, &[0; 8]),
            ext(0x0017, &[]),
            ext(0x44cd, &[0, 3, 2, b'h', b'2']),
            ext(EXT_SNI, &ext_sni_data("tls.browserleaks.com")),
            ext(EXT_EC_POINT_FORMATS, &with_len8(&[0])),
            ext(
                EXT_SUPPORTED_GROUPS,
                &ext_list16(&[0x4a4a, 4588, 29, 23, 24]),
            ),
            ext(
                EXT_SUPPORTED_VERSIONS,
                &ext_versions_client(&[0x7a7a, 0x0304, 0x0303]),
            ),
            ext(0xff01, &[0]),
            ext(EXT_SESSION_TICKET, &[]),
            ext(0x0012, &[]),
            ext(0x0005, &[1, 0, 0, 0, 0]),
            ext(
                EXT_SIGNATURE_ALGORITHMS,
                &ext_list16(&[
                    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
                ]),
            ),
            ext(0x001b, &[2, 0, 2]),
            ext(0x1a1a, &[0]),
        ];
        record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(TLS_VERSION_12, &[7; 32], &ciphers, &exts),
        )
    }

    fn buffer(out: &Output, name: Buffer) -> Option<&[u8]> {
        out.buffers
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(_, _, v)| v.as_slice())
    }

    fn all_fp() -> TlsConfig {
        TlsConfig {
            ja3: true,
            ja4: true,
            ..TlsConfig::default()
        }
    }

    // ---- probe ----

    #[test]
    fn probe_tls_and_sslv2() {
        assert!(probe(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(probe(&[0x16, 0x03, 0x03]));
        assert!(probe(&[0x15, 0x03, 0x03, 0x00, 0x02]));
        assert!(probe(&chrome_client_hello()));
        // SSLv2-compatible ClientHello offering TLS 1.0.
        assert!(probe(&[0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15]));
        assert!(probe(&[0x80, 0x2e, 0x01, 0x00, 0x02]));
        assert!(!probe(b"GET / HTTP/1.1\r\n"));
        assert!(!probe(b"SSH-2.0-x"));
        assert!(!probe(&[0x16, 0x02, 0x01]));
        assert!(!probe(&[0x16, 0x03]));
        assert!(!probe(&[]));
    }

    // ---- fingerprints ----

    #[test]
    fn chrome_hello_matches_published_ja3_and_ja4() {
        let mut p = TlsParser::with_config(all_fp());
        let mut out = Output::default();
        p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        assert_eq!(
            buffer(&out, Buffer::Ja4Hash),
            Some(&b"t13d1516h2_8daaf6152771_d8a2da3f94cd"[..])
        );
        assert_eq!(
            buffer(&out, Buffer::Ja3String),
            Some(
                &b"771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,\
                   45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0"[..]
            )
        );
        assert_eq!(
            buffer(&out, Buffer::Ja3Hash),
            Some(&b"98487aa16281980e7d1120d399efb6a4"[..])
        );
        assert_eq!(
            buffer(&out, Buffer::TlsSni),
            Some(&b"tls.browserleaks.com"[..])
        );
        assert_eq!(buffer(&out, Buffer::TlsAlpn), Some(&b"h2"[..]));
        assert!(out.records.is_empty());
    }

    #[test]
    fn foxio_readme_ja4_example() {
        // FoxIO's JA4 README: t13d1516h2_8daaf6152771_e5627efa2ab1 from JA4_r
        // ciphers 002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9
        // extensions 0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01
        // (+ SNI and ALPN), signature algorithms 0403,0804,0401,0503,0805,0501,0806,0601.
        let ciphers = [
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let mut exts = vec![
            ext(EXT_SNI, &ext_sni_data("example.com")),
            ext(EXT_ALPN, &ext_alpn_data(&[b"h2"])),
            ext(
                EXT_SIGNATURE_ALGORITHMS,
                &ext_list16(&[
                    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
                ]),
            ),
            ext(
                EXT_SUPPORTED_VERSIONS,
                &ext_versions_client(&[0x0304, 0x0303]),
            ),
        ];
        for t in [
            0x0005, 0x000a, 0x000b, 0x0012, 0x0015, 0x0017, 0x001b, 0x0023, 0x002d, 0x0033, 0x4469,
            0xff01,
        ] {
            exts.push(ext(t, &[]));
        }
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(TLS_VERSION_12, &[], &ciphers, &exts),
        );
        let mut out = Output::default();
        TlsParser::new().parse(Dir::ToServer, &ch, &mut out);
        assert_eq!(
            buffer(&out, Buffer::Ja4Hash),
            Some(&b"t13d1516h2_8daaf6152771_e5627efa2ab1"[..])
        );
    }

    #[test]
    fn salesforce_readme_ja3_example() {
        // salesforce/ja3 README: 769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0
        // -> ada70206e40642a3e4461f35503241d5.
        let exts = vec![
            ext(EXT_SNI, &ext_sni_data("a.example")),
            ext(EXT_SUPPORTED_GROUPS, &ext_list16(&[23, 24, 25])),
            ext(EXT_EC_POINT_FORMATS, &with_len8(&[0])),
        ];
        let ciphers = [47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4];
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(TLS_VERSION_10, &[], &ciphers, &exts),
        );
        let mut out = Output::default();
        TlsParser::new().parse(Dir::ToServer, &ch, &mut out);
        assert_eq!(
            buffer(&out, Buffer::Ja3String),
            Some(&b"769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"[..])
        );
        assert_eq!(
            buffer(&out, Buffer::Ja3Hash),
            Some(&b"ada70206e40642a3e4461f35503241d5"[..])
        );
    }

    #[test]
    fn ja4_edge_cases_as_suricata() {
        // The expectations of Suricata's rust/src/ja4.rs unit tests.
        let mut hs = HandshakeParams::default();
        assert_eq!(ja4(&hs), "t00i000000_e3b0c44298fc_d2e2adf7177b");
        hs.set_version(TLS_VERSION_12);
        assert_eq!(ja4(&hs), "t12i000000_e3b0c44298fc_d2e2adf7177b");
        hs.extensions.push(EXT_SNI);
        hs.domain = true;
        assert_eq!(ja4(&hs), "t12d000100_e3b0c44298fc_d2e2adf7177b");
        hs.alpns.push(b"h3-16".to_vec());
        hs.extensions.push(EXT_ALPN);
        assert_eq!(ja4(&hs), "t12d0002h6_e3b0c44298fc_d2e2adf7177b");
        hs.ciphers.extend([0x1111, 0x0a20, 0xbada]);
        assert_eq!(ja4(&hs), "t12d0302h6_f500716053f9_d2e2adf7177b");
        hs.extensions.extend([0xface, 0x0121, 0x1234]);
        hs.sig_algs.push(0x6666);
        assert_eq!(ja4(&hs), "t12d0305h6_f500716053f9_2debc8880bae");

        let alpn = |a: &[u8]| ja4_alpn(Some(a)).iter().collect::<String>();
        assert_eq!(alpn(b"b"), "bb");
        assert_eq!(alpn(b"h2"), "h2");
        assert_eq!(alpn(b"http/1.1"), "h1");
        assert_eq!(alpn(&[0xab]), "ab");
        assert_eq!(alpn(&[0xab, 0xcd]), "ad");
        assert_eq!(alpn(&[0x30, 0xab]), "3b");
        assert_eq!(alpn(&[0x30, 0x31, 0xab, 0xcd]), "3d");
        assert_eq!(alpn(&[0x30, 0xab, 0xcd, 0x31]), "01");
        assert_eq!(alpn(&[0x2a, 0x2a]), "00");

        let mut many = HandshakeParams::default();
        many.ciphers.extend(1..200);
        many.extensions.extend(1..200);
        assert!(ja4(&many).starts_with("t00i999900_"));
    }

    #[test]
    fn grease_values() {
        for g in [0x0a0a, 0x1a1a, 0x2a2a, 0x7a7a, 0xaaaa, 0xfafa] {
            assert!(is_grease(g));
        }
        for v in [0x0a1a, 0x0303, 0x0000, 0xffff, 0x0a0b] {
            assert!(!is_grease(v));
        }
    }

    // ---- reassembly ----

    #[test]
    fn client_hello_split_at_every_byte() {
        let ch = chrome_client_hello();
        let mut whole = Output::default();
        TlsParser::new().parse(Dir::ToServer, &ch, &mut whole);
        for i in 0..=ch.len() {
            let mut p = TlsParser::new();
            let mut out = Output::default();
            p.parse(Dir::ToServer, &ch[..i], &mut out);
            p.parse(Dir::ToServer, &ch[i..], &mut out);
            assert_eq!(out, whole, "split at {i}");
        }
        let mut p = TlsParser::new();
        let mut out = Output::default();
        for b in &ch {
            p.parse(Dir::ToServer, std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out, whole);
    }

    #[test]
    fn client_hello_spanning_records() {
        let ch = chrome_client_hello();
        let msg = &ch[RECORD_HDR_LEN..];
        let mut whole = Output::default();
        TlsParser::new().parse(Dir::ToServer, &ch, &mut whole);
        // The message in three records (each at least 4 bytes, as Suricata requires).
        for cut in [4, 40, 100, msg.len() - 12] {
            let mut data = record(CT_HANDSHAKE, TLS_VERSION_10, &msg[..cut]);
            let mid = (cut + msg.len()) / 2;
            data.extend(record(CT_HANDSHAKE, TLS_VERSION_10, &msg[cut..mid]));
            data.extend(record(CT_HANDSHAKE, TLS_VERSION_10, &msg[mid..]));
            let mut out = Output::default();
            TlsParser::new().parse(Dir::ToServer, &data, &mut out);
            assert_eq!(out, whole, "cut {cut}");
        }
    }

    // ---- full handshakes ----

    /// A TLS 1.2 handshake: the record is written at the call carrying the certificate.
    #[test]
    fn tls12_handshake_logs_at_certificate() {
        let der = cert_der();
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(
                TLS_VERSION_12,
                &[],
                &[0xc02f, 0x009c],
                &[
                    ext(EXT_SNI, &ext_sni_data("test.example.com")),
                    ext(EXT_ALPN, &ext_alpn_data(&[b"h2", b"http/1.1"])),
                    ext(EXT_SUPPORTED_GROUPS, &ext_list16(&[29, 23])),
                    ext(EXT_EC_POINT_FORMATS, &with_len8(&[0])),
                ],
            ),
        );
        let mut flight = server_hello(
            TLS_VERSION_12,
            &[],
            0xc02f,
            &[
                ext(0xff01, &[0]),
                ext(EXT_SNI, &[]),
                ext(EXT_ALPN, &ext_alpn_data(&[b"h2"])),
                ext(EXT_EC_POINT_FORMATS, &with_len8(&[0])),
            ],
        );
        flight.extend(certificate(&[&der, &der]));
        flight.extend(handshake(HS_SERVER_HELLO_DONE, &[]));
        let sflight = record(CT_HANDSHAKE, TLS_VERSION_12, &flight);

        let mut p = TlsParser::with_config(all_fp());
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch, &mut out);
        assert!(out.records.is_empty());
        let mut out = Output::default();
        p.parse(Dir::ToClient, &sflight, &mut out);
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        assert_eq!(out.records.len(), 1);
        let rec = &out.records[0];
        assert_eq!(rec.event_type, "tls");
        assert_eq!(rec.dir, Dir::ToClient);
        let expected = serde_json::json!({
            "subject": "C=US, ST=California, O=Precinct Test, Inc., CN=test.example.com",
            "issuerdn": "C=US, ST=California, O=Precinct Test, Inc., CN=test.example.com",
            "subjectaltname": ["test.example.com", "www.example.com"],
            "serial": "4D:2F:F2:08:65:3F:77:02:29:A8:D0:EA:2D:FA:19:95:8A:05:3C:89",
            "fingerprint": "fb:d3:74:43:7c:63:fb:b7:09:b4:17:46:9a:2f:53:8d:e7:cd:9f:48",
            "sni": "test.example.com",
            "version": "TLS 1.2",
            "notbefore": "2026-11-22T01:15:21",
            "notafter": "2026-11-23T01:15:21",
            "ja3": {
                "hash": hex(&Md5::digest(b"771,49199-156,0-16-10-11,29-23,0")),
                "string": "771,49199-156,0-16-10-11,29-23,0"
            },
            "ja3s": {
                // md5("771,49199,65281-0-16-11") computed with Python's hashlib.
                "hash": "673d9e3a3d636167965beda377536bd7",
                "string": "771,49199,65281-0-16-11"
            },
            "ja4": ja4(p.client.hs.as_ref().expect("client hello seen")),
            "client_alpns": ["h2", "http/1.1"],
            "server_alpns": ["h2"]
        });
        assert_eq!(rec.object, expected);
        // Key order as Suricata writes it.
        let keys: Vec<&str> = rec
            .object
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "subject",
                "issuerdn",
                "subjectaltname",
                "serial",
                "fingerprint",
                "sni",
                "version",
                "notbefore",
                "notafter",
                "ja3",
                "ja3s",
                "ja4",
                "client_alpns",
                "server_alpns"
            ]
        );
        assert!(ja4(p.client.hs.as_ref().expect("hs")).starts_with("t12d0204h2_"));
        assert_eq!(
            buffer(&out, Buffer::TlsCertSubject),
            Some("C=US, ST=California, O=Precinct Test, Inc., CN=test.example.com".as_bytes())
        );
        assert_eq!(
            buffer(&out, Buffer::TlsCertFingerprint),
            Some(&b"fb:d3:74:43:7c:63:fb:b7:09:b4:17:46:9a:2f:53:8d:e7:cd:9f:48"[..])
        );
        assert_eq!(
            buffer(&out, Buffer::Ja3sHash),
            Some(&b"673d9e3a3d636167965beda377536bd7"[..])
        );
        assert_eq!(
            out.buffers
                .iter()
                .filter(|(_, n, _)| *n == Buffer::TlsCerts)
                .count(),
            2
        );

        // Nothing more: not on application data, not at the end.
        let mut out = Output::default();
        p.parse(
            Dir::ToServer,
            &record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]),
            &mut out,
        );
        p.parse(
            Dir::ToServer,
            &record(CT_APPLICATION_DATA, TLS_VERSION_12, &[9; 40]),
            &mut out,
        );
        p.finish(&mut out);
        assert_eq!(out, Output::default());
    }

    #[test]
    fn default_config_omits_fingerprints() {
        let ch = chrome_client_hello();
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch, &mut out);
        let der = cert_der();
        let mut flight = server_hello(TLS_VERSION_12, &[], 0xc02f, &[]);
        flight.extend(certificate(&[&der]));
        p.parse(
            Dir::ToClient,
            &record(CT_HANDSHAKE, TLS_VERSION_12, &flight),
            &mut out,
        );
        assert_eq!(out.records.len(), 1);
        let obj = out.records[0].object.as_object().expect("object");
        assert!(!obj.contains_key("ja3") && !obj.contains_key("ja3s") && !obj.contains_key("ja4"));
        assert_eq!(obj["client_alpns"], serde_json::json!(["h2", "http/1.1"]));
        assert!(!obj.contains_key("server_alpns"));
        // A server without extensions: JA3S ends with an empty extension list.
        assert_eq!(buffer(&out, Buffer::Ja3sString), Some(&b"771,49199,"[..]));
    }

    #[test]
    fn certificate_message_split_across_records_and_calls() {
        let der = cert_der();
        let msg = certificate(&[&der]);
        let mut data = record(
            CT_HANDSHAKE,
            TLS_VERSION_12,
            &server_hello(TLS_VERSION_12, &[], 0x002f, &[]),
        );
        data.extend(record(CT_HANDSHAKE, TLS_VERSION_12, &msg[..100]));
        data.extend(record(CT_HANDSHAKE, TLS_VERSION_12, &msg[100..]));
        for i in (0..data.len()).step_by(7) {
            let mut p = TlsParser::new();
            let mut out = Output::default();
            p.parse(Dir::ToClient, &data[..i], &mut out);
            assert!(out.records.is_empty());
            p.parse(Dir::ToClient, &data[i..], &mut out);
            assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
            assert_eq!(out.records.len(), 1, "split at {i}");
            assert_eq!(out.records[0].object["notafter"], "2026-11-23T01:15:21");
            assert_eq!(out.records[0].object["version"], "TLS 1.2");
        }
    }

    #[test]
    fn tls13_logs_when_both_sides_send_application_data() {
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(
                TLS_VERSION_12,
                &[5; 32],
                &[0x1301, 0x1302],
                &[
                    ext(EXT_SNI, &ext_sni_data("one.example")),
                    ext(
                        EXT_SUPPORTED_VERSIONS,
                        &ext_versions_client(&[0x0304, 0x0303]),
                    ),
                ],
            ),
        );
        let mut sflight = record(
            CT_HANDSHAKE,
            TLS_VERSION_12,
            &server_hello(
                TLS_VERSION_12,
                &[5; 32],
                0x1301,
                &[ext(EXT_SUPPORTED_VERSIONS, &[3, 4])],
            ),
        );
        sflight.extend(record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]));
        sflight.extend(record(CT_APPLICATION_DATA, TLS_VERSION_12, &[0xee; 300]));
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch, &mut out);
        p.parse(Dir::ToClient, &sflight, &mut out);
        assert!(out.records.is_empty(), "client not done yet");
        let mut cflight = record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]);
        cflight.extend(record(CT_APPLICATION_DATA, TLS_VERSION_12, &[0xdd; 50]));
        p.parse(Dir::ToServer, &cflight, &mut out);
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].dir, Dir::ToServer);
        assert_eq!(
            out.records[0].object,
            serde_json::json!({"sni": "one.example", "version": "TLS 1.3"})
        );
    }

    #[test]
    fn client_hello_only_flow() {
        // Without a session ticket Suricata writes nothing for a lone ClientHello.
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(
                TLS_VERSION_12,
                &[],
                &[0x002f],
                &[ext(EXT_SNI, &ext_sni_data("lone.example"))],
            ),
        );
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch, &mut out);
        p.finish(&mut out);
        assert!(out.records.is_empty());
        // With one (browsers always offer it) the flow end writes the record.
        let ch = chrome_client_hello();
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch, &mut out);
        assert!(out.records.is_empty());
        p.finish(&mut out);
        assert_eq!(out.records.len(), 1);
        assert_eq!(
            out.records[0].object,
            serde_json::json!({
                "sni": "tls.browserleaks.com",
                "version": "UNDETERMINED",
                "client_alpns": ["h2", "http/1.1"]
            })
        );
    }

    #[test]
    fn session_id_resumption() {
        let sid = [0x42; 32];
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(
                TLS_VERSION_12,
                &sid,
                &[0xc02f],
                &[ext(EXT_SNI, &ext_sni_data("again.example"))],
            ),
        );
        let mut sflight = record(
            CT_HANDSHAKE,
            TLS_VERSION_12,
            &server_hello(TLS_VERSION_12, &sid, 0xc02f, &[]),
        );
        sflight.extend(record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]));
        // The encrypted Finished: a handshake record after ChangeCipherSpec is skipped.
        sflight.extend(record(CT_HANDSHAKE, TLS_VERSION_12, &[0x9c; 40]));
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch, &mut out);
        p.parse(Dir::ToClient, &sflight, &mut out);
        let mut cflight = record(CT_CHANGE_CIPHER_SPEC, TLS_VERSION_12, &[1]);
        cflight.extend(record(CT_HANDSHAKE, TLS_VERSION_12, &[0x9d; 40]));
        cflight.extend(record(CT_APPLICATION_DATA, TLS_VERSION_12, &[1; 30]));
        p.parse(Dir::ToServer, &cflight, &mut out);
        assert!(out.records.is_empty());
        p.parse(
            Dir::ToClient,
            &record(CT_APPLICATION_DATA, TLS_VERSION_12, &[2; 30]),
            &mut out,
        );
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        assert_eq!(out.records.len(), 1);
        assert_eq!(
            out.records[0].object,
            serde_json::json!({"session_resumed": true, "sni": "again.example", "version": "TLS 1.2"})
        );
    }

    #[test]
    fn fatal_alert_ends_the_handshake() {
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
        p.parse(
            Dir::ToClient,
            &record(CT_ALERT, TLS_VERSION_12, &[2, 40]),
            &mut out,
        );
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].object["version"], "TLS 1.2");
        p.finish(&mut out);
        assert_eq!(out.records.len(), 1);
    }

    #[test]
    fn client_certificate_is_logged_under_client() {
        let der = cert_der();
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
        let mut flight = server_hello(TLS_VERSION_12, &[], 0xc02f, &[]);
        flight.extend(certificate(&[&der]));
        flight.extend(handshake(HS_CERTIFICATE_REQUEST, &[1, 1, 0, 0, 0, 0]));
        flight.extend(handshake(HS_SERVER_HELLO_DONE, &[]));
        p.parse(
            Dir::ToClient,
            &record(CT_HANDSHAKE, TLS_VERSION_12, &flight),
            &mut out,
        );
        assert!(out.records.is_empty(), "waits for the client certificate");
        p.parse(
            Dir::ToServer,
            &record(CT_HANDSHAKE, TLS_VERSION_12, &certificate(&[&der])),
            &mut out,
        );
        assert_eq!(out.records.len(), 1);
        let client = &out.records[0].object["client"];
        assert_eq!(
            client["serial"],
            "4D:2F:F2:08:65:3F:77:02:29:A8:D0:EA:2D:FA:19:95:8A:05:3C:89"
        );
        assert_eq!(client["notbefore"], "2026-11-22T01:15:21");
        assert!(out
            .buffers
            .iter()
            .any(|(d, n, _)| *d == Dir::ToServer && *n == Buffer::TlsCertSubject));
    }

    // ---- anomalies ----

    #[test]
    fn record_layer_anomalies() {
        let cases: [(&[u8], &str); 4] = [
            (
                &[0x19, 0x03, 0x01, 0x00, 0x01, 0x00],
                EV_INVALID_RECORD_TYPE,
            ),
            (&[0x16, 0x03, 0x01, 0x00, 0x00], EV_INVALID_RECORD_LENGTH),
            (
                &[0x16, 0x05, 0x01, 0x00, 0x01, 0x00],
                EV_INVALID_RECORD_VERSION,
            ),
            (&[0x16, 0x03, 0x01, 0x50, 0x00], EV_INVALID_RECORD_LENGTH),
        ];
        for (data, event) in cases {
            let mut p = TlsParser::new();
            let mut out = Output::default();
            p.parse(Dir::ToServer, data, &mut out);
            assert_eq!(out.anomalies, [event]);
            // Parsing stops for the flow.
            p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
            assert_eq!(out.anomalies, [event]);
            assert!(out.buffers.is_empty());
        }
    }

    #[test]
    fn unknown_record_type_tolerated_in_tls10() {
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(
                TLS_VERSION_10,
                &[],
                &[0x002f],
                &[ext(EXT_SNI, &ext_sni_data("x.example"))],
            ),
        );
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &ch, &mut out);
        p.parse(
            Dir::ToServer,
            &[0x19, 0x03, 0x01, 0x00, 0x01, 0x00],
            &mut out,
        );
        assert_eq!(out.anomalies, [EV_INVALID_RECORD_TYPE]);
        assert!(!p.failed);
    }

    #[test]
    fn hello_anomalies() {
        let bad_sni_type = {
            let mut d = ext_sni_data("x.example");
            d[2] = 1;
            d
        };
        let two_sni = [
            ext(EXT_SNI, &ext_sni_data("first.example")),
            ext(EXT_SNI, &ext_sni_data("second.example")),
        ];
        let zero_sni = ext(EXT_SNI, &with_len16(&[0, 0, 0]));
        type Case = (Vec<(u16, Vec<u8>)>, &'static str);
        let cases: Vec<Case> = vec![
            (vec![ext(EXT_SNI, &bad_sni_type)], EV_INVALID_SNI_TYPE),
            (two_sni.to_vec(), EV_MULTIPLE_SNI),
            (vec![zero_sni], EV_INVALID_SNI_LENGTH),
            (
                vec![ext(EXT_SUPPORTED_GROUPS, &[0, 9, 1])],
                EV_HANDSHAKE_INVALID_LENGTH,
            ),
        ];
        for (exts, event) in cases {
            let ch = record(
                CT_HANDSHAKE,
                TLS_VERSION_10,
                &client_hello(TLS_VERSION_12, &[], &[0x002f], &exts),
            );
            let mut out = Output::default();
            TlsParser::new().parse(Dir::ToServer, &ch, &mut out);
            assert_eq!(out.anomalies, [event]);
        }
        // The first SNI is kept.
        let ch = record(
            CT_HANDSHAKE,
            TLS_VERSION_10,
            &client_hello(TLS_VERSION_12, &[], &[0x002f], &two_sni),
        );
        let mut out = Output::default();
        TlsParser::new().parse(Dir::ToServer, &ch, &mut out);
        assert_eq!(buffer(&out, Buffer::TlsSni), Some(&b"first.example"[..]));
        // An unknown handshake type in clear.
        let mut out = Output::default();
        TlsParser::new().parse(
            Dir::ToServer,
            &record(CT_HANDSHAKE, TLS_VERSION_12, &handshake(99, &[0; 8])),
            &mut out,
        );
        assert_eq!(out.anomalies, [EV_INVALID_HANDSHAKE_MESSAGE]);
        // A bad certificate.
        let mut out = Output::default();
        TlsParser::new().parse(
            Dir::ToClient,
            &record(
                CT_HANDSHAKE,
                TLS_VERSION_12,
                &certificate(&[&[0x30, 0x03, 1, 2, 3]]),
            ),
            &mut out,
        );
        assert_eq!(out.anomalies.len(), 1);
        assert!(
            out.anomalies[0].starts_with("CERTIFICATE_")
                || out.anomalies[0] == EV_INVALID_CERTIFICATE
        );
    }

    #[test]
    fn heartbleed_request_is_reported() {
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
        p.parse(
            Dir::ToServer,
            &record(CT_HEARTBEAT, TLS_VERSION_12, &[1, 0x40, 0x00]),
            &mut out,
        );
        assert_eq!(out.anomalies, [EV_OVERFLOW_HEARTBEAT]);
    }

    // ---- robustness ----

    /// A deterministic byte generator (xorshift) for junk inputs.
    fn junk(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    fn full_flow() -> (Vec<u8>, Vec<u8>) {
        let der = cert_der();
        let mut flight = server_hello(
            TLS_VERSION_12,
            &[],
            0xc02f,
            &[ext(EXT_ALPN, &ext_alpn_data(&[b"h2"]))],
        );
        flight.extend(certificate(&[&der]));
        flight.extend(handshake(HS_SERVER_HELLO_DONE, &[]));
        (
            chrome_client_hello(),
            record(CT_HANDSHAKE, TLS_VERSION_12, &flight),
        )
    }

    #[test]
    fn truncation_and_corruption_never_panic() {
        let (ch, sf) = full_flow();
        for i in 0..ch.len() {
            let mut p = TlsParser::new();
            let mut out = Output::default();
            p.parse(Dir::ToServer, &ch[..i], &mut out);
            p.finish(&mut out);
        }
        for i in 0..sf.len() {
            let mut p = TlsParser::with_config(all_fp());
            let mut out = Output::default();
            p.parse(Dir::ToServer, &ch, &mut out);
            p.parse(Dir::ToClient, &sf[..i], &mut out);
            p.finish(&mut out);
        }
        // Every byte of both flights replaced by a few values.
        for (target, data) in [(0, &ch), (1, &sf)] {
            for i in 0..data.len() {
                for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut bad = data.clone();
                    bad[i] = v;
                    let (c, s) = if target == 0 {
                        (&bad, &sf)
                    } else {
                        (&ch, &bad)
                    };
                    let mut p = TlsParser::with_config(all_fp());
                    let mut out = Output::default();
                    p.parse(Dir::ToServer, c, &mut out);
                    p.parse(Dir::ToClient, s, &mut out);
                    p.finish(&mut out);
                    assert!(out.records.len() <= 1);
                }
            }
        }
        for seed in 0..300 {
            let data = junk(seed, 2000);
            let mut p = TlsParser::new();
            let mut out = Output::default();
            for chunk in data.chunks(1 + (seed as usize % 97)) {
                p.parse(
                    if seed % 2 == 0 {
                        Dir::ToServer
                    } else {
                        Dir::ToClient
                    },
                    chunk,
                    &mut out,
                );
            }
            // Junk after a valid start, too.
            let mut p2 = TlsParser::new();
            p2.parse(Dir::ToServer, &ch, &mut out);
            p2.parse(Dir::ToServer, &data, &mut out);
            p2.parse(Dir::ToClient, &data, &mut out);
            p2.finish(&mut out);
        }
    }

    #[test]
    fn memory_stays_bounded() {
        let mut p = TlsParser::new();
        let mut out = Output::default();
        // A handshake message claiming 16 MiB, fed in maximal records.
        let mut first = vec![HS_CERTIFICATE, 0xff, 0xff, 0xff];
        first.extend(vec![0u8; RECORD_MAX_LEN - 4]);
        p.parse(
            Dir::ToClient,
            &record(CT_HANDSHAKE, TLS_VERSION_12, &first),
            &mut out,
        );
        for _ in 0..100 {
            p.parse(
                Dir::ToClient,
                &record(CT_HANDSHAKE, TLS_VERSION_12, &vec![0u8; RECORD_MAX_LEN]),
                &mut out,
            );
            let partial = p.server.hs_partial.as_ref().expect("message in progress");
            assert!(partial.data.is_none());
            assert!(p.server.pending.len() <= RECORD_HDR_LEN + RECORD_MAX_LEN);
        }
        // Huge application data is skipped without buffering.
        p.parse(
            Dir::ToServer,
            &[CT_APPLICATION_DATA, 3, 3, 0x40, 0x00],
            &mut out,
        );
        for _ in 0..10 {
            p.parse(Dir::ToServer, &[0u8; 1000], &mut out);
            assert!(p.client.pending.is_empty());
        }
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    }

    #[test]
    fn gap_stops_the_direction() {
        let mut p = TlsParser::new();
        let mut out = Output::default();
        p.gap(Dir::ToServer, 100, &mut out);
        p.parse(Dir::ToServer, &chrome_client_hello(), &mut out);
        assert!(out.buffers.is_empty());
    }

    #[test]
    fn sslv2_client_hello() {
        // SSLv2-compatible ClientHello offering TLS 1.0: 3 cipher specs, no session id,
        // 16-byte challenge.
        let mut body = vec![
            SSLV2_MT_CLIENT_HELLO,
            0x03,
            0x01,
            0x00,
            0x09,
            0x00,
            0x00,
            0x00,
            0x10,
        ];
        body.extend([0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x01, 0x00, 0x80]);
        body.extend([0xab; 16]);
        let mut data = vec![0x80, u8::try_from(body.len()).expect("short")];
        data.extend(&body);
        assert!(probe(&data));
        let mut p = TlsParser::new();
        let mut out = Output::default();
        for b in &data {
            p.parse(Dir::ToServer, std::slice::from_ref(b), &mut out);
        }
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        assert!(p.flags.client_hello);
        assert_eq!(p.client.version, TLS_VERSION_10);
    }

    // ---- formatting ----

    #[test]
    fn timestamps_and_versions() {
        assert_eq!(version_string(0x0301), "TLSv1");
        assert_eq!(version_string(0x0303), "TLS 1.2");
        assert_eq!(version_string(0x0304), "TLS 1.3");
        assert_eq!(version_string(0), "UNDETERMINED");
        assert_eq!(version_string(0x7f1c), "TLS 1.3 draft-28");
        assert_eq!(version_string(0x7f01), "TLS 1.3 draft-<16");
        assert_eq!(version_string(0xfb1a), "TLS 1.3 draft-26-fb");
        assert_eq!(version_string(0x1234), "0x1234");
        assert_eq!(bytes_to_string(b"h2"), "h2");
        assert_eq!(bytes_to_string(&[b'a', 0xff]), "a\\xff");
    }
}
