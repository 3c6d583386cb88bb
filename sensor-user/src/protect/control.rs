//! Live control of the running agent through a root-only Unix socket: the line protocol
//! ([`Request`], [`Response`]), the server the agent runs ([`serve`]), the client the
//! `precinct block` and `precinct lists` commands use ([`call`]), and the manual blocklist the
//! agent keeps in memory ([`ManualBlocks`]).
//!
//! One connection carries one JSON request line and gets one JSON response line. The socket
//! file is mode 0600, and the server also checks the peer's credentials, so a umask or a
//! permissive directory cannot open it to other users.

use std::{
    collections::BTreeMap,
    io::{self, BufRead as _, Read as _, Write as _},
    os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _},
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use crate::protect::lists::{Prefix, PrefixError};

/// Why a manual block or its TTL is refused; the text is what the CLI and the server show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// [`ManualBlocks::add`] with a zero TTL.
    #[error("a TTL of 0 would expire at once; give a positive one")]
    ZeroTtl,
    /// A TTL whose end is past what `SystemTime` holds.
    #[error("a TTL of {}s is too long", .0.as_secs())]
    TtlTooLong(Duration),
    /// The store holds its maximum of entries.
    #[error(
        "the manual blocklist is full ({0} entries); remove some with `precinct block del` or \
         put long-lived blocks in a list file"
    )]
    Full(usize),
    /// A CIDR that does not parse.
    #[error("{text:?}: {error}; give an IPv4 or IPv6 address or CIDR such as 203.0.113.0/24")]
    Cidr { text: String, error: PrefixError },
    /// A TTL that is not seconds or a `1h30m` duration.
    #[error(
        "{0:?} is not a duration; give seconds (3600) or numbers with units d, h, m, s, largest \
         first (90s, 15m, 1h, 2d, 1h30m)"
    )]
    NotADuration(String),
    /// A TTL that parses to zero.
    #[error(
        "a TTL of {0:?} would expire at once; give a positive one such as 15m, or no TTL for a \
         block that stays until removed"
    )]
    ZeroDuration(String),
}

/// Where `precinct run` listens unless `--socket` or `[protect] control_socket` say otherwise.
pub const DEFAULT_SOCKET: &str = "/run/precinct/control.sock";

/// Longest request line the server reads.
const MAX_REQUEST: u64 = 64 * 1024;
/// Longest response line the client reads: a full manual list, with room to spare.
const MAX_RESPONSE: u64 = 256 * 1024 * 1024;
/// How long the server waits for a client's request line, and to write the answer.
const SERVER_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the client waits: reloading a list of a million entries takes seconds.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One request, as `{"op":"block_add","cidr":"203.0.113.0/24","ttl_secs":3600}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Block a prefix, for `ttl_secs` or until removed.
    BlockAdd {
        cidr: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_secs: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Remove a manual block.
    BlockDel { cidr: String },
    /// List the manual blocks.
    BlockList,
    /// Read the list files again and swap the new tables in.
    ListsReload,
}

/// The answer to one [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    pub message: String,
    #[serde(default)]
    pub entries: Vec<ManualEntry>,
}

impl Response {
    /// A success without entries.
    pub fn ok(message: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: message.into(),
            entries: Vec::new(),
        }
    }

    /// A failure; `message` says what went wrong and how to fix it.
    pub fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            message: message.into(),
            entries: Vec::new(),
        }
    }
}

/// One manual block as `block list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualEntry {
    pub cidr: String,
    pub reason: Option<String>,
    pub added_unix: u64,
    pub expires_unix: Option<u64>,
}

#[derive(Clone, Debug)]
struct Slot {
    reason: Option<String>,
    added: SystemTime,
    expires: Option<SystemTime>,
}

/// The blocks added through the socket, which the agent owns and merges into the kernel's
/// block table; bounded so that a script gone wrong cannot exhaust the map.
#[derive(Clone, Debug)]
pub struct ManualBlocks {
    max_entries: usize,
    slots: BTreeMap<Prefix, Slot>,
}

impl ManualBlocks {
    /// An empty store holding at most `max_entries` prefixes.
    pub fn new(max_entries: usize) -> ManualBlocks {
        ManualBlocks {
            max_entries,
            slots: BTreeMap::new(),
        }
    }

    /// Blocks `prefix` from `now`, for `ttl` or for good. An existing entry for the same
    /// prefix is replaced (its added time, TTL and reason). `Ok(true)` when the set of
    /// prefixes changed, `Ok(false)` when only an entry's details did.
    pub fn add(
        &mut self,
        prefix: Prefix,
        ttl: Option<Duration>,
        reason: Option<String>,
        now: SystemTime,
    ) -> Result<bool, ControlError> {
        let expires = match ttl {
            None => None,
            Some(ttl) if ttl.is_zero() => return Err(ControlError::ZeroTtl),
            Some(ttl) => Some(now.checked_add(ttl).ok_or(ControlError::TtlTooLong(ttl))?),
        };
        let fresh = !self.slots.contains_key(&prefix);
        if fresh && self.slots.len() >= self.max_entries {
            return Err(ControlError::Full(self.max_entries));
        }
        self.slots.insert(
            prefix,
            Slot {
                reason,
                added: now,
                expires,
            },
        );
        Ok(fresh)
    }

    /// Removes the block on exactly `prefix`; `true` when there was one.
    pub fn remove(&mut self, prefix: &Prefix) -> bool {
        self.slots.remove(prefix).is_some()
    }

    /// Removes the entries whose TTL has run out by `now` and returns their prefixes.
    pub fn expire(&mut self, now: SystemTime) -> Vec<Prefix> {
        let gone: Vec<Prefix> = self
            .slots
            .iter()
            .filter(|(_, s)| s.expires.is_some_and(|e| e <= now))
            .map(|(p, _)| *p)
            .collect();
        for p in &gone {
            self.slots.remove(p);
        }
        gone
    }

    /// When the next entry expires, for the agent's timer.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.slots.values().filter_map(|s| s.expires).min()
    }

    /// The blocked prefixes, in order.
    pub fn prefixes(&self) -> impl Iterator<Item = &Prefix> {
        self.slots.keys()
    }

    /// The entries as the protocol reports them, in prefix order.
    pub fn entries(&self) -> Vec<ManualEntry> {
        self.slots
            .iter()
            .map(|(p, s)| ManualEntry {
                cidr: p.to_string(),
                reason: s.reason.clone(),
                added_unix: unix_secs(s.added),
                expires_unix: s.expires.map(unix_secs),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Answers the requests about manual blocks (`None` for the others, such as
    /// [`Request::ListsReload`]). The flag says whether the set of prefixes changed, so the
    /// kernel table needs rebuilding; if that fails, the agent restores a clone taken before.
    pub fn apply(&mut self, req: &Request, now: SystemTime) -> Option<(Response, bool)> {
        Some(match req {
            Request::BlockAdd {
                cidr,
                ttl_secs,
                reason,
            } => match parse_cidr(cidr).and_then(|p| {
                let ttl = ttl_secs.map(Duration::from_secs);
                Ok((p, self.add(p, ttl, reason.clone(), now)?))
            }) {
                Ok((p, changed)) => {
                    let until = match ttl_secs {
                        Some(s) => format!("for {}", format_duration(Duration::from_secs(*s))),
                        None => "until removed".into(),
                    };
                    let verb = if changed { "blocked" } else { "updated" };
                    (Response::ok(format!("{verb} {p} {until}")), changed)
                }
                Err(e) => (Response::error(e.to_string()), false),
            },
            Request::BlockDel { cidr } => match parse_cidr(cidr) {
                Ok(p) if self.remove(&p) => (Response::ok(format!("unblocked {p}")), true),
                Ok(p) => (
                    Response::error(format!(
                        "{p} is not in the manual blocklist; `precinct block list` shows it"
                    )),
                    false,
                ),
                Err(e) => (Response::error(e.to_string()), false),
            },
            Request::BlockList => {
                let mut r = Response::ok(format!("{} manual block(s)", self.len()));
                r.entries = self.entries();
                (r, false)
            }
            Request::ListsReload => return None,
        })
    }
}

/// Parses a CIDR or address for a manual block, with the error the CLI and server show.
pub fn parse_cidr(s: &str) -> Result<Prefix, ControlError> {
    s.parse().map_err(|error| ControlError::Cidr {
        text: s.to_owned(),
        error,
    })
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Parses a TTL: seconds (`3600`) or numbers with units `d`, `h`, `m`, `s`, largest first
/// (`90s`, `15m`, `1h`, `2d`, `1h30m`).
pub fn parse_ttl(s: &str) -> Result<Duration, ControlError> {
    let bad = || ControlError::NotADuration(s.to_owned());
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let total = if t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>().map_err(|_| bad())?
    } else {
        let mut total = 0u64;
        let mut last_rank = usize::MAX;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (num, tail) = rest.split_at(digits);
            let unit = tail.chars().next().ok_or_else(bad)?;
            let (rank, secs) = match unit {
                'd' => (3, 86_400),
                'h' => (2, 3_600),
                'm' => (1, 60),
                's' => (0, 1),
                _ => return Err(bad()),
            };
            if num.is_empty() || rank >= last_rank {
                return Err(bad());
            }
            last_rank = rank;
            let n: u64 = num.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(secs)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            rest = &tail[1..];
        }
        total
    };
    if total == 0 {
        return Err(ControlError::ZeroDuration(s.to_owned()));
    }
    Ok(Duration::from_secs(total))
}

/// A duration for people, with its two largest units: `2d 3h`, `59m 12s`, `45s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, "d"),
        (s / 3_600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    let mut out = format!("{}{}", parts[first].0, parts[first].1);
    if let Some((n, u)) = parts.get(first + 1).filter(|(n, _)| *n > 0) {
        out.push_str(&format!(" {n}{u}"));
    }
    out
}

/// The `precinct block list` table: CIDR, reason, when added (UTC), time left at `now_unix`.
pub fn format_entries(entries: &[ManualEntry], now_unix: u64) -> String {
    let mut rows = vec![[
        "CIDR".to_string(),
        "REASON".to_string(),
        "ADDED".to_string(),
        "EXPIRES IN".to_string(),
    ]];
    for e in entries {
        let added = crate::timefmt::eve(e.added_unix.saturating_mul(1_000_000_000));
        let expires = match e.expires_unix {
            None => "never".to_string(),
            Some(t) if t <= now_unix => "now".to_string(),
            Some(t) => format_duration(Duration::from_secs(t - now_unix)),
        };
        // A reason is free text from whoever added the block: keep it on one line.
        let reason: String = e
            .reason
            .as_deref()
            .unwrap_or("-")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        rows.push([
            e.cidr.clone(),
            reason,
            format!("{} {}Z", &added[..10], &added[11..19]),
            expires,
        ]);
    }
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What the agent receives: a request and where its answer goes.
pub type Call = (Request, oneshot::Sender<Response>);

/// Listens on `path` and forwards each request on `tx`. Creates the directory (0700) if
/// missing, replaces a socket left by a dead agent but refuses one a live agent answers on.
/// The accept loop ends, removing the socket, once the receiver of `tx` is dropped.
pub async fn serve(path: &Path, tx: mpsc::Sender<Call>) -> anyhow::Result<JoinHandle<()>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| {
                    format!("creating the control socket directory {}", dir.display())
                })?;
        }
    }
    remove_stale(path).await?;
    let listener = UnixListener::bind(path)
        .with_context(|| format!("listening on the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).with_context(|| {
        format!(
            "making the control socket {} private (0600)",
            path.display()
        )
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let owned = path.to_path_buf();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(connection(stream, tx.clone(), euid));
                    }
                    Err(e) => {
                        // Out of descriptors, usually: back off instead of spinning.
                        log::warn!("control socket {}: accept: {e}", owned.display());
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = tx.closed() => break,
            }
        }
        let _ = std::fs::remove_file(&owned);
    }))
}

async fn remove_stale(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("checking the control socket {}", path.display()))
        }
    };
    if !meta.file_type().is_socket() {
        anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it: remove it or choose another \
             control socket (--socket or [protect] control_socket)",
            path.display()
        );
    }
    match UnixStream::connect(path).await {
        Ok(_) => anyhow::bail!(
            "another agent is running on the control socket {}: stop it, or give this one \
             another socket (--socket or [protect] control_socket)",
            path.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .with_context(|| format!("removing the stale control socket {}", path.display())),
        Err(e) => Err(e)
            .with_context(|| format!("checking whether an agent is running on {}", path.display())),
    }
}

fn peer_allowed(uid: u32, euid: u32) -> bool {
    uid == 0 || uid == euid
}

async fn connection(mut stream: UnixStream, tx: mpsc::Sender<Call>, euid: u32) {
    let response = answer(&mut stream, &tx, euid).await;
    let mut line = serde_json::to_vec(&response).unwrap_or_else(|e| {
        serde_json::to_vec(&Response::error(format!("encoding the response: {e}")))
            .unwrap_or_default()
    });
    line.push(b'\n');
    let write = async {
        stream.write_all(&line).await?;
        stream.shutdown().await
    };
    if let Ok(Err(e)) | Err(e) = tokio::time::timeout(SERVER_IO_TIMEOUT, write)
        .await
        .map_err(io::Error::from)
    {
        log::debug!("control socket: writing a response: {e}");
    }
}

async fn answer(stream: &mut UnixStream, tx: &mpsc::Sender<Call>, euid: u32) -> Response {
    match stream.peer_cred() {
        Ok(cred) if peer_allowed(cred.uid(), euid) => {}
        Ok(cred) => {
            return Response::error(format!(
                "permission denied: uid {} may not control the agent; run as root",
                cred.uid()
            ))
        }
        Err(e) => return Response::error(format!("reading the peer's credentials: {e}")),
    }
    let mut buf = Vec::new();
    let mut reader = tokio::io::BufReader::new((&mut *stream).take(MAX_REQUEST + 1));
    let read = reader.read_until(b'\n', &mut buf);
    match tokio::time::timeout(SERVER_IO_TIMEOUT, read).await {
        Err(_) => {
            return Response::error(format!(
                "no request line within {}s",
                SERVER_IO_TIMEOUT.as_secs()
            ))
        }
        Ok(Err(e)) => return Response::error(format!("reading the request: {e}")),
        Ok(Ok(_)) => {}
    }
    if buf.len() as u64 > MAX_REQUEST {
        return Response::error(format!("request longer than {} KiB", MAX_REQUEST / 1024));
    }
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Response::error(
            "empty request; send one JSON object such as {\"op\":\"block_list\"}",
        );
    }
    let req: Request = match serde_json::from_slice(&buf) {
        Ok(r) => r,
        Err(e) => {
            return Response::error(format!(
                "malformed request: {e}; send one JSON object such as {{\"op\":\"block_list\"}}"
            ))
        }
    };
    let (reply, answer) = oneshot::channel();
    if tx.send((req, reply)).await.is_err() {
        return Response::error("the agent is shutting down");
    }
    answer
        .await
        .unwrap_or_else(|_| Response::error("the agent dropped the request; see its log"))
}

/// Sends one request to the agent listening on `path` and returns its answer.
pub fn call(path: &Path, req: &Request) -> anyhow::Result<Response> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        let shown = path.display();
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => anyhow::anyhow!(
                "cannot reach the agent at {shown} ({e}): the agent is not running, or it uses \
                 another socket: `precinct run` creates it at `[protect] control_socket` of its \
                 config (default {DEFAULT_SOCKET}); give that path here with --socket"
            ),
            io::ErrorKind::PermissionDenied => anyhow::anyhow!(
                "cannot reach the agent at {shown} ({e}): controlling the agent needs root (sudo)"
            ),
            _ => anyhow::Error::new(e)
                .context(format!("connecting to the agent's control socket {shown}")),
        }
    })?;
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
        .context("setting the control socket timeouts")?;
    let mut line = serde_json::to_vec(req).context("encoding the request")?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .context("sending the request to the agent")?;
    let mut buf = Vec::new();
    io::BufReader::new(stream.take(MAX_RESPONSE))
        .read_until(b'\n', &mut buf)
        .map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => anyhow::anyhow!(
                "no answer from the agent within {}s; it may still be working on the request \
                 (a reload of a large list): see its log",
                CLIENT_TIMEOUT.as_secs()
            ),
            _ => anyhow::Error::new(e).context("reading the agent's answer"),
        })?;
    if buf.is_empty() {
        anyhow::bail!("the agent closed the connection without answering; see its log");
    }
    serde_json::from_slice(&buf).context("decoding the agent's answer (is it the same version?)")
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
