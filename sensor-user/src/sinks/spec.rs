//! `[[outputs]]`: one table per EVE sink, its keys, their defaults and their validation. The
//! table is flat (every key of every sink type) so that TOML errors keep their line numbers;
//! validation refuses a key that does not apply to the table's `type`.

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::{http::UrlError, syslog::FacilityError};

/// What is wrong with `[[outputs]]`; each message names the output.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A table's own settings.
    #[error("outputs {name:?} (type {}): {error}", .kind.as_str())]
    Output {
        name: String,
        kind: SinkType,
        error: OutputError,
    },
    /// A syslog or redis `address`.
    #[error("outputs {name:?}: address {error}")]
    Address { name: String, error: HostPortError },
    /// An http `url`.
    #[error("outputs {name:?}: url {error}")]
    Url { name: String, error: UrlError },
    /// Two outputs with one name.
    #[error("outputs: two outputs are named {0:?}; give each a distinct name = \"...\"")]
    DuplicateName(String),
    /// Two outputs writing one file or spool directory.
    #[error("outputs {name:?}: {} is used by another output", .path.display())]
    SharedPath { name: String, path: PathBuf },
}

/// What is wrong inside one `[[outputs]]` table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// An empty, long or non-printable `name`.
    #[error("name must be 1 to 64 printable characters without spaces")]
    Name,
    /// A key set that the type does not take; `allowed` are those it does.
    #[error("{key} does not apply to this type (it takes {})", takes(.allowed))]
    Key {
        key: &'static str,
        allowed: &'static [&'static str],
    },
    /// An empty entry in `types` or `exclude_types`.
    #[error("types and exclude_types take event types, not {0:?}")]
    EventType(String),
    /// `queue_events = 0`.
    #[error("queue_events must be above 0")]
    QueueEvents,
    /// Retry delays that are zero or out of order.
    #[error("retry_initial_ms ({initial}) must be above 0 and at most retry_max_ms ({max})")]
    Retry { initial: u64, max: u64 },
    /// A file or unix output without `path`.
    #[error("path is required")]
    NoPath,
    /// `keep = 0`.
    #[error("keep must be at least 1 (rotated files kept)")]
    Keep,
    /// An unknown syslog facility.
    #[error("{0}")]
    Facility(FacilityError),
    /// A syslog `max_message_bytes` below RFC 5424's minimum.
    #[error("max_message_bytes must be at least 480 (RFC 5424)")]
    MaxMessageBytes,
    /// A header name that is not a token, or a value with control characters.
    #[error("headers: {name:?} = {value:?} is not a valid header")]
    Header { name: String, value: String },
    /// A header the agent sets itself.
    #[error("headers: {0} is set by the agent")]
    ReservedHeader(String),
    /// http batches that hold nothing.
    #[error("batch_events must be above 0 and batch_bytes at least 1024")]
    HttpBatch,
    /// A zero http interval.
    #[error("flush_interval_ms and timeout_ms must be above 0")]
    HttpInterval,
    /// A spool too small for its batches.
    #[error("spool_max_bytes ({spool}) must be at least 16384 and 4 x batch_bytes ({min})")]
    Spool { spool: u64, min: u64 },
    /// `key = ""` on a redis output.
    #[error("key must not be empty")]
    EmptyKey,
    /// `batch_events = 0` on a redis output.
    #[error("batch_events must be above 0")]
    BatchEvents,
}

/// The keys a type takes, for [`OutputError::Key`].
fn takes(allowed: &[&str]) -> String {
    if allowed.is_empty() {
        "no other keys".to_string()
    } else {
        allowed.join(", ")
    }
}

/// A `host:port` that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostPortError {
    /// No `:`.
    #[error("{0:?} is not host:port")]
    NoPort(String),
    /// An empty host, or a port that is not 1 to 65535.
    #[error("{0:?} is not host:port (port 1 to 65535)")]
    Invalid(String),
}

/// The kind of sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    /// A file, with size and time rotation, reopened on SIGHUP.
    File,
    /// Standard output.
    Stdout,
    /// A Unix datagram socket (one record a datagram).
    UnixDgram,
    /// A Unix stream socket (one record a line).
    UnixStream,
    /// Syslog (RFC 5424) over UDP, TCP or a local datagram socket.
    Syslog,
    /// HTTP POST of gzip-compressed NDJSON batches, through an on-disk spool.
    Http,
    /// Redis lists, channels or streams, as Suricata's redis output.
    Redis,
}

impl SinkType {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkType::File => "file",
            SinkType::Stdout => "stdout",
            SinkType::UnixDgram => "unix_dgram",
            SinkType::UnixStream => "unix_stream",
            SinkType::Syslog => "syslog",
            SinkType::Http => "http",
            SinkType::Redis => "redis",
        }
    }
}

/// Syslog transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogTransport {
    /// One datagram a record to `address` (host:port).
    #[default]
    Udp,
    /// Octet-counted frames (RFC 6587) on a TCP connection to `address`.
    Tcp,
    /// One datagram a record to a local socket (`address` is a path, default `/dev/log`).
    Unix,
}

/// Redis command family, with Suricata's names and aliases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisMode {
    /// `LPUSH key record` (Suricata's default `list`).
    #[default]
    #[serde(alias = "lpush")]
    List,
    /// `RPUSH key record`.
    Rpush,
    /// `PUBLISH key record`.
    #[serde(alias = "channel")]
    Publish,
    /// `XADD key [MAXLEN ~ n] * eve record`.
    #[serde(alias = "xadd")]
    Stream,
}

/// HTTP body compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// `Content-Encoding: gzip`.
    #[default]
    Gzip,
    /// Plain NDJSON.
    None,
}

/// One `[[outputs]]` table. Keys that do not apply to `type` must be absent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Name in metrics and logs; unique; the type when absent.
    pub name: Option<String>,
    /// Which sink.
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// Event types sent (all when empty).
    #[serde(default)]
    pub types: Vec<String>,
    /// Event types not sent.
    #[serde(default)]
    pub exclude_types: Vec<String>,
    /// Records waiting for the sink's thread; beyond it records are dropped and counted.
    pub queue_events: Option<usize>,
    /// First retry delay after a failure, milliseconds (doubles up to `retry_max_ms`).
    pub retry_initial_ms: Option<u64>,
    /// Longest retry delay, milliseconds.
    pub retry_max_ms: Option<u64>,

    /// file, unix_dgram, unix_stream: the file or socket path.
    pub path: Option<PathBuf>,
    /// file: rotate when the file reaches this size (0: never).
    pub max_bytes: Option<u64>,
    /// file: rotate when the file is this old (0: never).
    pub rotate_interval_secs: Option<u64>,
    /// file: rotated files kept (`path.1` newest … `path.N`).
    pub keep: Option<u32>,

    /// syslog: udp, tcp or unix.
    pub transport: Option<SyslogTransport>,
    /// syslog: host:port (udp, tcp) or socket path (unix); redis: host:port.
    pub address: Option<String>,
    /// syslog: facility name (`local5` …).
    pub facility: Option<String>,
    /// syslog: longest message (header included); longer ones are truncated.
    pub max_message_bytes: Option<usize>,

    /// http: the collector's `http://host[:port]/path`.
    pub url: Option<String>,
    /// http: extra request headers (`Authorization = "Bearer …"`).
    pub headers: Option<BTreeMap<String, String>>,
    /// http: records a batch at most; redis: commands pipelined at most.
    pub batch_events: Option<usize>,
    /// http: uncompressed bytes a batch at most (a larger single record goes alone).
    pub batch_bytes: Option<usize>,
    /// http: longest wait before a partial batch is sent, milliseconds.
    pub flush_interval_ms: Option<u64>,
    /// http: connect, send and response timeout, milliseconds.
    pub timeout_ms: Option<u64>,
    /// http: gzip or none.
    pub compression: Option<Compression>,
    /// http: spool directory.
    pub spool_dir: Option<PathBuf>,
    /// http: spool size limit, bytes.
    pub spool_max_bytes: Option<u64>,
    /// http: event types evicted last when the spool is full.
    pub spool_keep_types: Option<Vec<String>>,
    /// http: seconds a non-empty spool may go without a delivery before the sink is stuck.
    pub stuck_after_secs: Option<u64>,

    /// redis: the key, list or channel.
    pub key: Option<String>,
    /// redis: list (lpush), rpush, publish (channel) or stream (xadd).
    pub mode: Option<RedisMode>,
    /// redis stream: approximate `MAXLEN ~` (0: no trimming).
    pub stream_maxlen: Option<u64>,
    /// redis: `AUTH` password.
    pub password: Option<String>,
}

/// Defaults of the optional keys, documented in docs/config.md.
pub mod defaults {
    /// `queue_events`.
    pub const QUEUE_EVENTS: usize = 16_384;
    /// `retry_initial_ms`.
    pub const RETRY_INITIAL_MS: u64 = 500;
    /// `retry_max_ms`.
    pub const RETRY_MAX_MS: u64 = 30_000;
    /// file `keep`.
    pub const KEEP: u32 = 10;
    /// syslog `address` for udp and tcp.
    pub const SYSLOG_ADDRESS: &str = "127.0.0.1:514";
    /// syslog `address` for unix.
    pub const SYSLOG_SOCKET: &str = "/dev/log";
    /// syslog `facility` (Suricata's default).
    pub const FACILITY: &str = "local5";
    /// syslog `max_message_bytes` (rsyslog's default maxMessageSize).
    pub const MAX_MESSAGE_BYTES: usize = 8192;
    /// http `batch_events`.
    pub const HTTP_BATCH_EVENTS: usize = 500;
    /// http `batch_bytes`.
    pub const BATCH_BYTES: usize = 1 << 20;
    /// http `flush_interval_ms`.
    pub const FLUSH_INTERVAL_MS: u64 = 1000;
    /// http `timeout_ms`.
    pub const TIMEOUT_MS: u64 = 10_000;
    /// http `spool_dir` parent (the output's name is appended).
    pub const SPOOL_PARENT: &str = "/var/lib/precinct/spool";
    /// http `spool_max_bytes`.
    pub const SPOOL_MAX_BYTES: u64 = 256 << 20;
    /// http `spool_keep_types`.
    pub const SPOOL_KEEP_TYPES: [&str; 2] = ["alert", "drop"];
    /// http `stuck_after_secs`.
    pub const STUCK_AFTER_SECS: u64 = 120;
    /// redis `address`.
    pub const REDIS_ADDRESS: &str = "127.0.0.1:6379";
    /// redis `key` (Suricata's default).
    pub const REDIS_KEY: &str = "suricata";
    /// redis `batch_events`.
    pub const REDIS_BATCH_EVENTS: usize = 256;
    /// redis `stream_maxlen` (Suricata's default).
    pub const STREAM_MAXLEN: u64 = 100_000;
}

impl OutputSpec {
    /// The output's name in metrics and logs.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.as_str().to_owned())
    }

    /// The spool directory of an http output.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| Path::new(defaults::SPOOL_PARENT).join(self.name()))
    }

    /// `true` when records of `event_type` go to this output.
    pub fn accepts(&self, event_type: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == event_type))
            && !self.exclude_types.iter().any(|t| t == event_type)
    }

    /// Takes relative paths (file, socket, spool) from `base`, the configuration's directory.
    pub fn resolve(&mut self, base: &Path) {
        for p in [&mut self.path, &mut self.spool_dir].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Keys set in this table, by name, that only some types accept.
    fn specific_keys(&self) -> Vec<&'static str> {
        let set = [
            ("path", self.path.is_some()),
            ("max_bytes", self.max_bytes.is_some()),
            ("rotate_interval_secs", self.rotate_interval_secs.is_some()),
            ("keep", self.keep.is_some()),
            ("transport", self.transport.is_some()),
            ("address", self.address.is_some()),
            ("facility", self.facility.is_some()),
            ("max_message_bytes", self.max_message_bytes.is_some()),
            ("url", self.url.is_some()),
            ("headers", self.headers.is_some()),
            ("batch_events", self.batch_events.is_some()),
            ("batch_bytes", self.batch_bytes.is_some()),
            ("flush_interval_ms", self.flush_interval_ms.is_some()),
            ("timeout_ms", self.timeout_ms.is_some()),
            ("compression", self.compression.is_some()),
            ("spool_dir", self.spool_dir.is_some()),
            ("spool_max_bytes", self.spool_max_bytes.is_some()),
            ("spool_keep_types", self.spool_keep_types.is_some()),
            ("stuck_after_secs", self.stuck_after_secs.is_some()),
            ("key", self.key.is_some()),
            ("mode", self.mode.is_some()),
            ("stream_maxlen", self.stream_maxlen.is_some()),
            ("password", self.password.is_some()),
            ("retry_initial_ms", self.retry_initial_ms.is_some()),
            ("retry_max_ms", self.retry_max_ms.is_some()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| k)
            .collect()
    }

    /// The type-specific keys `kind` accepts.
    fn allowed(kind: SinkType) -> &'static [&'static str] {
        const RETRY: [&str; 2] = ["retry_initial_ms", "retry_max_ms"];
        match kind {
            SinkType::File => &["path", "max_bytes", "rotate_interval_secs", "keep"],
            SinkType::Stdout => &[],
            SinkType::UnixDgram | SinkType::UnixStream => &["path", RETRY[0], RETRY[1]],
            SinkType::Syslog => &[
                "transport",
                "address",
                "facility",
                "max_message_bytes",
                RETRY[0],
                RETRY[1],
            ],
            SinkType::Http => &[
                "url",
                "headers",
                "batch_events",
                "batch_bytes",
                "flush_interval_ms",
                "timeout_ms",
                "compression",
                "spool_dir",
                "spool_max_bytes",
                "spool_keep_types",
                "stuck_after_secs",
                RETRY[0],
                RETRY[1],
            ],
            SinkType::Redis => &[
                "address",
                "key",
                "mode",
                "stream_maxlen",
                "password",
                "batch_events",
                RETRY[0],
                RETRY[1],
            ],
        }
    }

    /// Checks one table; the message names the output.
    fn validate(&self) -> Result<(), SpecError> {
        let name = self.name();
        let bad = |error: OutputError| {
            Err(SpecError::Output {
                name: name.clone(),
                kind: self.kind,
                error,
            })
        };
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return bad(OutputError::Name);
        }
        let allowed = Self::allowed(self.kind);
        for key in self.specific_keys() {
            if !allowed.contains(&key) {
                return bad(OutputError::Key { key, allowed });
            }
        }
        if let Some(t) = self
            .types
            .iter()
            .chain(&self.exclude_types)
            .find(|t| t.is_empty())
        {
            return bad(OutputError::EventType(t.clone()));
        }
        if self.queue_events == Some(0) {
            return bad(OutputError::QueueEvents);
        }
        let (initial, max) = self.retry();
        if initial == 0 || max < initial {
            return bad(OutputError::Retry { initial, max });
        }
        match self.kind {
            SinkType::File | SinkType::UnixDgram | SinkType::UnixStream => {
                if self.path.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
                    return bad(OutputError::NoPath);
                }
                if self.keep == Some(0) {
                    return bad(OutputError::Keep);
                }
            }
            SinkType::Stdout => {}
            SinkType::Syslog => {
                let addr = self.syslog_address();
                if self.transport.unwrap_or_default() != SyslogTransport::Unix {
                    host_port(&addr).map_err(|error| SpecError::Address {
                        name: name.clone(),
                        error,
                    })?;
                }
                if let Err(e) = super::syslog::facility_code(self.facility()) {
                    return bad(OutputError::Facility(e));
                }
                if self.max_message_bytes.is_some_and(|m| m < 480) {
                    return bad(OutputError::MaxMessageBytes);
                }
            }
            SinkType::Http => {
                let url = self.url.as_deref().unwrap_or("");
                super::http::Url::parse(url).map_err(|error| SpecError::Url {
                    name: name.clone(),
                    error,
                })?;
                for (k, v) in self.headers.iter().flatten() {
                    let token = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                    if !token || v.chars().any(char::is_control) {
                        return bad(OutputError::Header {
                            name: k.clone(),
                            value: v.clone(),
                        });
                    }
                    if super::http::RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                        return bad(OutputError::ReservedHeader(k.clone()));
                    }
                }
                if self.batch_events == Some(0) || self.batch_bytes.is_some_and(|b| b < 1024) {
                    return bad(OutputError::HttpBatch);
                }
                if self.flush_interval_ms == Some(0) || self.timeout_ms == Some(0) {
                    return bad(OutputError::HttpInterval);
                }
                let batch = self.batch_bytes.unwrap_or(defaults::BATCH_BYTES) as u64;
                let spool = self.spool_max_bytes.unwrap_or(defaults::SPOOL_MAX_BYTES);
                if spool < 16_384 || spool < 4 * batch {
                    return bad(OutputError::Spool {
                        spool,
                        min: 4 * batch,
                    });
                }
            }
            SinkType::Redis => {
                let addr = self.address.as_deref().unwrap_or(defaults::REDIS_ADDRESS);
                host_port(addr).map_err(|error| SpecError::Address {
                    name: name.clone(),
                    error,
                })?;
                if self.key.as_ref().is_some_and(String::is_empty) {
                    return bad(OutputError::EmptyKey);
                }
                if self.batch_events == Some(0) {
                    return bad(OutputError::BatchEvents);
                }
            }
        }
        Ok(())
    }

    /// Retry delays: initial and longest, milliseconds.
    pub fn retry(&self) -> (u64, u64) {
        (
            self.retry_initial_ms.unwrap_or(defaults::RETRY_INITIAL_MS),
            self.retry_max_ms.unwrap_or(defaults::RETRY_MAX_MS),
        )
    }

    /// Syslog address (default per transport).
    pub fn syslog_address(&self) -> String {
        self.address.clone().unwrap_or_else(|| {
            match self.transport.unwrap_or_default() {
                SyslogTransport::Unix => defaults::SYSLOG_SOCKET,
                _ => defaults::SYSLOG_ADDRESS,
            }
            .into()
        })
    }

    /// Syslog facility name.
    pub fn facility(&self) -> &str {
        self.facility.as_deref().unwrap_or(defaults::FACILITY)
    }
}

/// Checks a `host:port` (a name or an address; `[v6]:port`).
pub fn host_port(s: &str) -> Result<(), HostPortError> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| HostPortError::NoPort(s.to_owned()))?;
    if host.is_empty() || port.parse::<u16>().ok().filter(|p| *p > 0).is_none() {
        return Err(HostPortError::Invalid(s.to_owned()));
    }
    Ok(())
}

/// Checks every `[[outputs]]` table and that names and destinations are unique.
pub fn validate_all(outputs: &[OutputSpec]) -> Result<(), SpecError> {
    let mut names = HashSet::new();
    let mut files = HashSet::new();
    for o in outputs {
        o.validate()?;
        let name = o.name();
        if !names.insert(name.clone()) {
            return Err(SpecError::DuplicateName(name));
        }
        let exclusive = match o.kind {
            SinkType::File => o.path.clone(),
            SinkType::Http => Some(o.spool_dir()),
            _ => None,
        };
        if let Some(p) = exclusive {
            if !files.insert(p.clone()) {
                return Err(SpecError::SharedPath { name, path: p });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/precinct/precinct.toml")).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn every_type_parses() {
        let c = parse(
            r#"
[[outputs]]
type = "file"
name = "alerts"
path = "alerts.json"
types = ["alert", "drop"]
max_bytes = 1048576
rotate_interval_secs = 3600
keep = 3

[[outputs]]
type = "stdout"
exclude_types = ["flow"]

[[outputs]]
type = "unix_dgram"
path = "/run/soc.sock"

[[outputs]]
type = "syslog"
transport = "tcp"
address = "siem.example:6514"
facility = "local3"
max_message_bytes = 65536

[[outputs]]
type = "http"
url = "http://127.0.0.1:8088/ingest"
headers = { Authorization = "Bearer t0ken" }
batch_events = 100
spool_dir = "spool"
spool_max_bytes = 1073741824
spool_keep_types = ["alert"]

[[outputs]]
type = "redis"
mode = "xadd"
key = "eve"
stream_maxlen = 0
"#,
        )
        .expect("parse");
        let o = &c.outputs;
        assert_eq!(o.len(), 6);
        assert_eq!(
            o[0].path.as_deref(),
            Some(Path::new("/etc/precinct/alerts.json"))
        );
        assert!(o[0].accepts("alert") && !o[0].accepts("flow"));
        assert_eq!(o[1].name(), "stdout");
        assert!(o[1].accepts("dns") && !o[1].accepts("flow"));
        assert_eq!(o[3].transport, Some(SyslogTransport::Tcp));
        assert_eq!(o[4].spool_dir(), Path::new("/etc/precinct/spool"));
        assert_eq!(o[5].mode, Some(RedisMode::Stream));
        // Defaults.
        let c = parse("[[outputs]]\ntype = \"http\"\nurl = \"http://c/\"\n").expect("parse");
        assert_eq!(
            c.outputs[0].spool_dir(),
            Path::new("/var/lib/precinct/spool/http")
        );
        assert_eq!(c.outputs[0].syslog_address(), "127.0.0.1:514");
    }

    #[test]
    fn mistakes_are_named() {
        let err = |t: &str| parse(t).expect_err(t);
        let e = err("[[outputs]]\ntype = \"file\"\n");
        assert!(
            e.contains("outputs \"file\"") && e.contains("path is required"),
            "{e}"
        );
        let e = err("[[outputs]]\ntype = \"syslog\"\npath = \"/x\"\n");
        assert!(
            e.contains("path does not apply") && e.contains("facility"),
            "{e}"
        );
        let e = err("[[outputs]]\ntype = \"http\"\nurl = \"https://soc.example/\"\n");
        assert!(e.contains("https is not supported"), "{e}");
        let e = err("[[outputs]]\ntype = \"kafka\"\n");
        assert!(e.contains("line 2") && e.contains("kafka"), "{e}");
        let e = err("[[outputs]]\ntype = \"stdout\"\n\n[[outputs]]\ntype = \"stdout\"\n");
        assert!(e.contains("two outputs are named \"stdout\""), "{e}");
        let e = err("[[outputs]]\ntype = \"redis\"\nkee = \"x\"\n");
        assert!(e.contains("kee") && e.contains("line 3"), "{e}");
        let e = err("[[outputs]]\ntype = \"syslog\"\nfacility = \"local9\"\n");
        assert!(e.contains("local9"), "{e}");
        let e = err("[[outputs]]\ntype = \"syslog\"\naddress = \"nohost\"\n");
        assert!(e.contains("host:port"), "{e}");
        let e = err(
            "[[outputs]]\ntype = \"http\"\nurl = \"http://c/\"\nheaders = { Content-Length = \"1\" }\n",
        );
        assert!(e.contains("set by the agent"), "{e}");
        let e =
            err("[[outputs]]\ntype = \"http\"\nurl = \"http://c/\"\nspool_max_bytes = 100000\n");
        assert!(e.contains("spool_max_bytes"), "{e}");
        let e = err("[[outputs]]\ntype = \"redis\"\nmode = \"set\"\n");
        assert!(e.contains("line 3"), "{e}");
    }
}
