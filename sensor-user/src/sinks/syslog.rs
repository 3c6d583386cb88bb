//! The syslog sink: each record as the MSG of an RFC 5424 message,
//! `<PRI>1 TIMESTAMP HOSTNAME precinct PROCID MSGID - {json}`, with the event type as MSGID and
//! a severity from the event, over UDP (one datagram a message), TCP (octet counting, RFC 6587)
//! or a local datagram socket such as `/dev/log`.

use std::{
    io::Write,
    net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket},
    os::unix::net::UnixDatagram,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;

use super::{
    spec::{defaults, SyslogTransport},
    OutputSpec, Record, Sent, Sink, SinkStats,
};

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// A facility name that is not one of syslog's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("facility {0:?} is not one of {known}", known = FACILITIES.join(", "))]
pub struct FacilityError(pub String);

/// The facility number of a facility name (`local5` → 21).
pub fn facility_code(name: &str) -> Result<u8, FacilityError> {
    FACILITIES
        .iter()
        .position(|f| f.eq_ignore_ascii_case(name))
        .map(|n| n as u8)
        .ok_or_else(|| FacilityError(name.to_owned()))
}

/// The syslog severity of a record: an alert by its `alert.severity` (1 → 2 crit, 2 → 3 err,
/// 3 → 4 warning, other → 5 notice), `drop` 4 (warning), `anomaly` 5 (notice), anything else
/// 6 (info).
pub fn severity(kind: &str, alert_severity: Option<u8>) -> u8 {
    match kind {
        "alert" => match alert_severity {
            Some(1) => 2,
            Some(2) => 3,
            Some(3) => 4,
            _ => 5,
        },
        "drop" => 4,
        "anomaly" => 5,
        _ => 6,
    }
}

/// An RFC 5424 header field: printable ASCII without spaces, at most `max` bytes, `-` when
/// empty.
fn token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}

/// Formats one message into `out`, its MSG cut so that the whole is at most `max` bytes
/// (at a UTF-8 boundary).
pub fn format(
    out: &mut Vec<u8>,
    pri_facility: u8,
    hostname: &str,
    record: &Record,
    now_ns: u64,
    max: usize,
) {
    let ts = crate::timefmt::rfc3339_micros(now_ns);
    let pri = u16::from(pri_facility) * 8 + u16::from(record.severity);
    out.clear();
    let _ = write!(
        out,
        "<{pri}>1 {ts} {hostname} precinct {} {} - ",
        std::process::id(),
        token(&record.kind, 32)
    );
    let room = max.saturating_sub(out.len());
    let mut msg: &[u8] = &record.line;
    if msg.len() > room {
        let mut cut = room;
        // Back up over UTF-8 continuation bytes.
        while cut > 0 && (msg[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        msg = &msg[..cut];
    }
    out.extend_from_slice(msg);
}

enum Conn {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream),
    Unix(UnixDatagram),
}

/// The syslog sink.
pub struct SyslogSink {
    transport: SyslogTransport,
    address: String,
    facility: u8,
    hostname: String,
    max: usize,
    conn: Option<Conn>,
    stats: Arc<SinkStats>,
    msg: Vec<u8>,
    buf: Vec<u8>,
}

const TIMEOUT: Duration = Duration::from_secs(5);

impl SyslogSink {
    /// The sink; `hostname` is the sensor id. It connects when the first record comes.
    pub fn new(spec: &OutputSpec, hostname: &str, stats: Arc<SinkStats>) -> anyhow::Result<Self> {
        Ok(SyslogSink {
            transport: spec.transport.unwrap_or_default(),
            address: spec.syslog_address(),
            facility: facility_code(spec.facility())?,
            hostname: token(hostname, 255),
            max: spec
                .max_message_bytes
                .unwrap_or(defaults::MAX_MESSAGE_BYTES),
            conn: None,
            stats,
            msg: Vec::new(),
            buf: Vec::new(),
        })
    }

    fn connect(&mut self) -> anyhow::Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let addr = &self.address;
        let resolve = || -> anyhow::Result<Vec<SocketAddr>> {
            Ok(addr
                .to_socket_addrs()
                .with_context(|| format!("resolving the syslog server {addr}"))?
                .collect())
        };
        self.conn = Some(match self.transport {
            SyslogTransport::Udp => {
                let to = *resolve()?.first().context("no address")?;
                let bind: SocketAddr = if to.is_ipv4() {
                    "0.0.0.0:0".parse()?
                } else {
                    "[::]:0".parse()?
                };
                Conn::Udp(UdpSocket::bind(bind)?, to)
            }
            SyslogTransport::Tcp => {
                let mut last = None;
                let mut conn = None;
                for a in resolve()? {
                    match TcpStream::connect_timeout(&a, TIMEOUT) {
                        Ok(s) => {
                            conn = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let s = match (conn, last) {
                    (Some(s), _) => s,
                    (None, Some(e)) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("connecting to the syslog server {addr} (TCP)")))
                    }
                    (None, None) => anyhow::bail!("{addr} has no address"),
                };
                s.set_write_timeout(Some(TIMEOUT))?;
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
            SyslogTransport::Unix => {
                let s = UnixDatagram::unbound()?;
                s.connect(addr)
                    .with_context(|| format!("connecting to the syslog socket {addr}"))?;
                s.set_write_timeout(Some(TIMEOUT))?;
                Conn::Unix(s)
            }
        });
        Ok(())
    }
}

impl Sink for SyslogSink {
    fn send(&mut self, batch: &[Record]) -> Sent {
        if let Err(e) = self.connect() {
            return (0, Some(e));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let stats = &self.stats;
        let Some(conn) = self.conn.as_mut() else {
            return (
                0,
                Some(anyhow::anyhow!("the connection was lost before the write")),
            );
        };
        match conn {
            Conn::Udp(s, to) => {
                let mut sent = 0;
                for r in batch {
                    format(
                        &mut self.msg,
                        self.facility,
                        &self.hostname,
                        r,
                        now,
                        self.max,
                    );
                    // UDP is fire and forget: an error loses this message only.
                    match s.send_to(&self.msg, *to) {
                        Ok(_) => sent += 1,
                        Err(_) => stats.failed.inc(),
                    }
                }
                stats.delivered(sent);
            }
            Conn::Unix(s) => {
                let mut sent = 0;
                for (i, r) in batch.iter().enumerate() {
                    format(
                        &mut self.msg,
                        self.facility,
                        &self.hostname,
                        r,
                        now,
                        self.max,
                    );
                    match s.send(&self.msg) {
                        Ok(_) => sent += 1,
                        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => stats.failed.inc(),
                        Err(e) => {
                            stats.delivered(sent);
                            let e = anyhow::Error::new(e)
                                .context(format!("sending to the syslog socket {}", self.address));
                            self.conn = None;
                            return (i, Some(e));
                        }
                    }
                }
                stats.delivered(sent);
            }
            Conn::Tcp(s) => {
                self.buf.clear();
                for r in batch {
                    format(
                        &mut self.msg,
                        self.facility,
                        &self.hostname,
                        r,
                        now,
                        self.max,
                    );
                    let _ = write!(self.buf, "{} ", self.msg.len());
                    self.buf.extend_from_slice(&self.msg);
                }
                // A failed write may have sent part of the batch: it is sent again, whole,
                // on the next connection.
                if let Err(e) = s.write_all(&self.buf) {
                    let e = anyhow::Error::new(e)
                        .context(format!("writing to the syslog server {}", self.address));
                    self.conn = None;
                    return (0, Some(e));
                }
                stats.delivered(batch.len());
            }
        }
        (batch.len(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, line: &str, severity: u8) -> Record {
        Record {
            line: bytes::Bytes::copy_from_slice(line.as_bytes()),
            kind: Arc::from(kind),
            severity,
        }
    }

    #[test]
    fn messages_follow_rfc5424() {
        let mut out = Vec::new();
        let r = record("alert", r#"{"event_type":"alert"}"#, 2);
        format(
            &mut out,
            21,
            "sensor-1",
            &r,
            1_795_308_050_123_456_789,
            8192,
        );
        let text = String::from_utf8(out).expect("utf8");
        let pid = std::process::id();
        assert_eq!(
            text,
            format!(
                "<170>1 2026-11-22T00:40:50.123456Z sensor-1 precinct {pid} alert - {{\"event_type\":\"alert\"}}"
            )
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let mut out = Vec::new();
        let line = format!("{{\"x\":\"{}\"}}", "é".repeat(400));
        let r = record("flow", &line, 6);
        format(&mut out, 21, "h", &r, 0, 480);
        assert!(out.len() <= 480, "{}", out.len());
        assert!(out.len() >= 478);
        String::from_utf8(out).expect("still UTF-8");
    }

    #[test]
    fn severities_and_facilities() {
        assert_eq!(severity("alert", Some(1)), 2);
        assert_eq!(severity("alert", Some(2)), 3);
        assert_eq!(severity("alert", Some(3)), 4);
        assert_eq!(severity("alert", Some(4)), 5);
        assert_eq!(severity("alert", None), 5);
        assert_eq!(severity("drop", None), 4);
        assert_eq!(severity("flow", None), 6);
        assert_eq!(facility_code("local5"), Ok(21));
        assert_eq!(facility_code("LOCAL0"), Ok(16));
        assert!(facility_code("local8").is_err());
        assert_eq!(token("a b\u{7f}", 32), "a_b_");
        assert_eq!(token("", 32), "-");
    }
}
