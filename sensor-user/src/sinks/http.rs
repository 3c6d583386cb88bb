//! The http sink: records go to an on-disk [`Spool`] first (the output's queue thread writes
//! them), and a sender thread POSTs them to the collector in order, as gzip-compressed NDJSON
//! batches, moving the spool's cursor only after a 2xx answer. A failed POST (no connection,
//! a timeout, 5xx, any status but those below) is retried as the same batch (same records,
//! same `X-Precinct-Batch` number) with an exponential backoff. A batch refused for its
//! content (400, 413, 422) is cut in halves until the refused record is alone; that record is
//! given up and counted as failed.
//!
//! The client is a minimal HTTP/1.1 one over `TcpStream` (`Connection: close`, one request a
//! connection); `https://` is refused at configuration time: this build has no TLS library.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use log::{info, warn};

use super::{
    spec::{defaults, Compression},
    spool::{Batch, Spool},
    Backoff, Control, OutputSpec, Record, Sent, Sink, SinkStats,
};

/// Why a sink URL does not parse; each message starts with the URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// `https://`, which needs a TLS library this build lacks.
    #[error(
        "{0:?}: https is not supported (this build has no TLS library); run a TLS proxy on the \
         sensor (stunnel, nginx, haproxy) and give its http://127.0.0.1:PORT/ address"
    )]
    Https(String),
    /// Another scheme, or none.
    #[error("{0:?} is not an http:// URL")]
    NotHttp(String),
    /// `user:password@` in the authority.
    #[error(
        "{0:?}: user:password in the URL is not supported; use headers = {{ Authorization = \
         \"...\" }}"
    )]
    UserInfo(String),
    /// `[` without `]` in the host.
    #[error("{0:?}: unclosed [ in the host")]
    UnclosedBracket(String),
    /// A port that is not 1 to 65535.
    #[error("{url:?}: bad port {port:?}")]
    Port { url: String, port: String },
    /// An empty host, or whitespace in the path.
    #[error("{0:?}: no host, or whitespace in the path")]
    HostOrPath(String),
}

/// An `http://host[:port]/path` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Host name or address (without brackets).
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and query, from the first `/`.
    pub path: String,
}

impl Url {
    /// Parses an http URL; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        if s.starts_with("https://") {
            return Err(UrlError::Https(s.to_owned()));
        }
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| UrlError::NotHttp(s.to_owned()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(UrlError::UserInfo(s.to_owned()));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::UnclosedBracket(s.to_owned()))?;
            (h, p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| UrlError::Port {
                    url: s.to_owned(),
                    port: p.to_owned(),
                })?,
        };
        if host.is_empty() || path.contains(char::is_whitespace) {
            return Err(UrlError::HostOrPath(s.to_owned()));
        }
        Ok(Url {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// gzip (RFC 1952) of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    // No name, no time, unknown OS.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, 6));
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Request headers the agent sets itself.
pub const RESERVED_HEADERS: [&str; 7] = [
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "connection",
    "transfer-encoding",
    "x-precinct-batch",
];

/// Sends one POST and returns the response status.
fn post(url: &Url, head: &str, body: &[u8], timeout: Duration) -> anyhow::Result<u16> {
    let addr = format!("{}:{}", url.host, url.port);
    let mut last = None;
    let mut conn = None;
    for a in (url.host.as_str(), url.port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
    {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                conn = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut s = match (conn, last) {
        (Some(s), _) => s,
        (None, Some(e)) => {
            return Err(anyhow::Error::new(e).context(format!("connecting to the collector {addr}")))
        }
        (None, None) => anyhow::bail!("{addr} has no address"),
    };
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .with_context(|| format!("sending a batch to {addr}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s
            .read(&mut chunk)
            .with_context(|| format!("waiting for the collector's answer ({addr})"))?;
        if n == 0 {
            anyhow::bail!("the collector {addr} closed the connection without an answer");
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                return resp.code.context("an answer without a status");
            }
            Ok(httparse::Status::Partial) if buf.len() < 64 << 10 => {}
            Ok(httparse::Status::Partial) => anyhow::bail!("the answer's head is too long"),
            Err(e) => anyhow::bail!("the collector's answer is not HTTP: {e}"),
        }
    }
}

/// State shared by the queue thread (writer) and the sender.
struct Shared {
    spool: Mutex<Spool>,
    cv: Condvar,
    writer_done: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Spool> {
        crate::sync::lock(&self.spool)
    }
}

fn publish(stats: &SinkStats, spool: &Spool) {
    stats.spool_bytes.set(spool.bytes() as i64);
    stats.spool_events.set(spool.events() as i64);
}

/// The queue side of the http sink: appends records to the spool.
pub struct SpoolWriter {
    shared: Arc<Shared>,
    keep: Vec<String>,
    stats: Arc<SinkStats>,
    batch_events: u64,
    /// When eviction was last logged, and how many records went since.
    evict_log: Option<(Instant, u64)>,
}

impl Sink for SpoolWriter {
    fn send(&mut self, batch: &[Record]) -> Sent {
        let mut spool = self.shared.lock();
        if spool.events() == 0 {
            self.stats.progressed();
        }
        let mut result = (batch.len(), None);
        let mut lost = 0;
        for (i, r) in batch.iter().enumerate() {
            let keep = self.keep.iter().any(|k| **k == *r.kind);
            match spool.append(&r.line, keep) {
                Ok(n) => lost += n,
                Err(e) => {
                    self.stats.failed.inc();
                    result = (
                        i + 1,
                        Some(anyhow::Error::new(e).context("writing to the spool")),
                    );
                    break;
                }
            }
        }
        publish(&self.stats, &spool);
        if spool.events() >= self.batch_events {
            self.shared.cv.notify_all();
        }
        drop(spool);
        if lost > 0 {
            self.stats.lost.inc_by(lost);
            let (since, n) = self.evict_log.get_or_insert((Instant::now(), 0));
            *n += lost;
            if since.elapsed() >= Duration::from_secs(60) || *n == lost {
                warn!(
                    "output {:?}: spool full; {n} records evicted (oldest without {:?} first)",
                    self.stats.name, self.keep
                );
                self.evict_log = Some((Instant::now(), 0));
            }
        }
        result
    }

    fn idle(&mut self) -> anyhow::Result<()> {
        self.shared.lock().flush().context("flushing the spool")?;
        self.shared.cv.notify_all();
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        let r = self.shared.lock().sync().context("syncing the spool");
        self.shared.writer_done.store(true, Ordering::Release);
        self.shared.cv.notify_all();
        r
    }
}

/// How a POST ended.
enum Outcome {
    Delivered,
    /// Refused for its content (400, 413, 422).
    Refused(u16),
    /// Anything else: retry.
    Retry(anyhow::Error),
}

/// The sender thread's settings.
struct Sender {
    shared: Arc<Shared>,
    ctl: Arc<Control>,
    stats: Arc<SinkStats>,
    url: Url,
    /// Request head without the batch header and length.
    head: String,
    batch_id: String,
    gzip: bool,
    batch_events: u64,
    batch_bytes: u64,
    flush_interval: Duration,
    timeout: Duration,
    retry: (u64, u64),
}

impl Sender {
    fn post(&self, batch: &Batch) -> Outcome {
        let body = if self.gzip {
            gzip(&batch.body)
        } else {
            batch.body.clone()
        };
        let head = format!(
            "{}X-Precinct-Batch: {}-{}\r\nContent-Length: {}\r\n\r\n",
            self.head,
            self.batch_id,
            batch.seq,
            body.len()
        );
        match post(&self.url, &head, &body, self.timeout) {
            Ok(s) if (200..300).contains(&s) => Outcome::Delivered,
            Ok(s @ (400 | 413 | 422)) => Outcome::Refused(s),
            Ok(s) => Outcome::Retry(anyhow::anyhow!("the collector answered {s}")),
            Err(e) => Outcome::Retry(e),
        }
    }

    /// Waits until a batch is due (full, flush interval, shutdown) and takes it; `None`
    /// when the sender should stop.
    fn next_batch(&self, limit: u64) -> Option<Batch> {
        let mut spool = self.shared.lock();
        let since = Instant::now();
        loop {
            if self.ctl.expired() {
                return None;
            }
            let done = self.shared.writer_done.load(Ordering::Acquire);
            let due = spool.events() >= limit
                || spool.in_flight()
                || done
                || since.elapsed() >= self.flush_interval;
            if spool.events() > 0 && due {
                match spool.peek(limit, self.batch_bytes) {
                    Ok(Some(b)) => return Some(b),
                    Ok(None) => {}
                    Err(e) => warn!("output {:?}: reading the spool: {e}", self.stats.name),
                }
            } else if spool.events() == 0 && done {
                return None;
            }
            let wait = self.flush_interval.min(Duration::from_millis(100));
            spool = self
                .shared
                .cv
                .wait_timeout(spool, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn run(self) {
        let name = self.stats.name.clone();
        let mut backoff = Backoff::new(self.retry);
        let mut limit = self.batch_events;
        // Records of the last refused batch not yet passed: smaller batches until then.
        let mut refused_left = 0u64;
        let mut failing = false;
        while let Some(batch) = self.next_batch(limit) {
            match self.post(&batch) {
                Outcome::Delivered => {
                    let mut spool = self.shared.lock();
                    match spool.commit() {
                        Ok(n) => self.stats.delivered(n as usize),
                        Err(e) => warn!("output {name:?}: saving the spool cursor: {e}"),
                    }
                    publish(&self.stats, &spool);
                    drop(spool);
                    if std::mem::take(&mut failing) {
                        info!("output {name:?}: the collector accepts batches again");
                    }
                    backoff.reset();
                    refused_left = refused_left.saturating_sub(batch.records);
                    if refused_left == 0 {
                        limit = self.batch_events;
                    }
                }
                Outcome::Refused(status) if batch.records > 1 => {
                    self.shared.lock().release();
                    refused_left = batch.records;
                    limit = (batch.records / 2).max(1);
                    warn!(
                        "output {name:?}: the collector refused a batch of {} records ({status}); \
                         sending it in halves",
                        batch.records
                    );
                }
                Outcome::Refused(status) => {
                    let mut spool = self.shared.lock();
                    if let Err(e) = spool.commit() {
                        warn!("output {name:?}: saving the spool cursor: {e}");
                    }
                    publish(&self.stats, &spool);
                    drop(spool);
                    self.stats.failed.inc();
                    warn!(
                        "output {name:?}: the collector refused a record ({status}); it is \
                         given up: {}",
                        String::from_utf8_lossy(&batch.body[..batch.body.len().min(200)])
                    );
                    refused_left = refused_left.saturating_sub(1);
                    if refused_left == 0 {
                        limit = self.batch_events;
                    }
                }
                Outcome::Retry(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        warn!(
                            "output {name:?}: {e:#}; retrying with backoff, records wait in the \
                             spool"
                        );
                    }
                    if !self.ctl.sleep(backoff.next_delay()) {
                        break;
                    }
                }
            }
        }
        let spool = self.shared.lock();
        if spool.events() > 0 {
            info!(
                "output {name:?}: {} records stay in the spool for the next start",
                spool.events()
            );
        }
    }
}

/// Opens the spool and starts the sender thread; returns the queue side.
pub(crate) fn start(
    spec: &OutputSpec,
    sensor_id: &str,
    stats: Arc<SinkStats>,
    ctl: Arc<Control>,
) -> anyhow::Result<(SpoolWriter, JoinHandle<()>)> {
    let url = Url::parse(spec.url.as_deref().unwrap_or(""))?;
    let dir = spec.spool_dir();
    let spool_max = spec.spool_max_bytes.unwrap_or(defaults::SPOOL_MAX_BYTES);
    let spool = Spool::open(&dir, spool_max)?;
    if spool.events() > 0 {
        info!(
            "output {:?}: {} records from an earlier run in the spool {}; sending them first",
            stats.name,
            spool.events(),
            dir.display()
        );
    }
    publish(&stats, &spool);
    let shared = Arc::new(Shared {
        spool: Mutex::new(spool),
        cv: Condvar::new(),
        writer_done: AtomicBool::new(false),
    });
    let gzip = spec.compression.unwrap_or_default() == Compression::Gzip;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: precinct/{}\r\nContent-Type: \
         application/x-ndjson\r\nConnection: close\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    if gzip {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    for (k, v) in spec.headers.as_ref().unwrap_or(&BTreeMap::new()) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let token = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect()
    };
    let batch_events = spec.batch_events.unwrap_or(defaults::HTTP_BATCH_EVENTS) as u64;
    let sender = Sender {
        shared: shared.clone(),
        ctl,
        stats: stats.clone(),
        url,
        head,
        batch_id: format!("{}-{}", token(sensor_id), token(&stats.name)),
        gzip,
        batch_events,
        batch_bytes: spec.batch_bytes.unwrap_or(defaults::BATCH_BYTES) as u64,
        flush_interval: Duration::from_millis(
            spec.flush_interval_ms
                .unwrap_or(defaults::FLUSH_INTERVAL_MS),
        ),
        timeout: Duration::from_millis(spec.timeout_ms.unwrap_or(defaults::TIMEOUT_MS)),
        retry: spec.retry(),
    };
    let thread = std::thread::Builder::new()
        .name(format!(
            "http-{}",
            stats.name.chars().take(10).collect::<String>()
        ))
        .spawn(move || sender.run())
        .context("starting the http sender thread")?;
    let keep = spec.spool_keep_types.clone().unwrap_or_else(|| {
        defaults::SPOOL_KEEP_TYPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    });
    Ok((
        SpoolWriter {
            shared,
            keep,
            stats,
            batch_events,
            evict_log: None,
        },
        thread,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://collector.example:8088/ingest?x=1").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("collector.example", 8088, "/ingest?x=1")
        );
        assert_eq!(u.host_header(), "collector.example:8088");
        let u = Url::parse("http://[::1]/").expect("v6");
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(u.host_header(), "[::1]");
        assert_eq!(Url::parse("http://h").expect("bare").path, "/");
        let e = Url::parse("https://h/").expect_err("https").to_string();
        assert!(e.contains("not supported") && e.contains("proxy"), "{e}");
        assert!(Url::parse("ftp://h/").is_err());
        assert!(Url::parse("http://h:0/").is_err());
        assert!(Url::parse("http://u:p@h/").is_err());
    }

    #[test]
    fn gzip_round_trips() {
        let data = b"{\"a\":1}\n".repeat(1000);
        let z = gzip(&data);
        assert_eq!(&z[..3], &[0x1f, 0x8b, 8]);
        assert!(z.len() < data.len() / 10);
        let inflated =
            miniz_oxide::inflate::decompress_to_vec(&z[10..z.len() - 8]).expect("inflate");
        assert_eq!(inflated, data);
        let crc = u32::from_le_bytes(z[z.len() - 8..z.len() - 4].try_into().expect("4"));
        assert_eq!(crc, crc32fast::hash(&data));
    }
}
