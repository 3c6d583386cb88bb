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

mod cert;
mod eve;
mod fingerprint;
mod handshake;
mod reader;
mod record;

use cert::*;
use fingerprint::*;
use reader::*;
use record::*;

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

    fn fail(&mut self, dir: Dir) {
        self.failed = true;
        let conn = self.conn(dir);
        conn.pending = Vec::new();
        conn.hs_partial = None;
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

#[cfg(test)]
mod tests;
