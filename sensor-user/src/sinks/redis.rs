//! The Redis sink, compatible with Suricata's redis output: `LPUSH` (mode `list`), `RPUSH`,
//! `PUBLISH` (`channel`) or `XADD key MAXLEN ~ N * eve {json}` (`stream`), one command a
//! record, pipelined, over a small RESP client; reconnected with a backoff.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpStream, ToSocketAddrs},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use log::warn;

use super::{
    spec::{defaults, RedisMode},
    OutputSpec, Record, Sent, Sink, SinkStats,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Appends one RESP command (an array of bulk strings) to `buf`.
pub fn command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

/// One RESP reply, as far as this client cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Anything but an error (status, integer, bulk, array).
    Ok(Vec<u8>),
    /// `-ERR …`.
    Error(String),
}

/// Reads one reply (nested arrays are read whole; the value kept is the first line's).
pub fn read_reply(r: &mut impl BufRead) -> anyhow::Result<Reply> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        anyhow::bail!("the server closed the connection");
    }
    if !line.ends_with(b"\r\n") {
        anyhow::bail!("a reply line was cut short");
    }
    line.truncate(line.len() - 2);
    let (&kind, rest) = line.split_first().context("an empty reply line")?;
    let number = || -> anyhow::Result<i64> {
        std::str::from_utf8(rest)?
            .parse()
            .context("a malformed length in a reply")
    };
    Ok(match kind {
        b'-' => Reply::Error(String::from_utf8_lossy(rest).into_owned()),
        b'+' | b':' => Reply::Ok(rest.to_vec()),
        b'$' => {
            let n = number()?;
            if n < 0 {
                return Ok(Reply::Ok(Vec::new()));
            }
            let mut data = vec![0; n as usize + 2];
            r.read_exact(&mut data)?;
            data.truncate(n as usize);
            Reply::Ok(data)
        }
        b'*' => {
            for _ in 0..number()?.max(0) {
                read_reply(r)?;
            }
            Reply::Ok(rest.to_vec())
        }
        other => anyhow::bail!("an unknown reply type {:?}", other as char),
    })
}

/// The Redis sink.
pub struct RedisSink {
    address: String,
    key: String,
    mode: RedisMode,
    maxlen: u64,
    password: Option<String>,
    conn: Option<BufReader<TcpStream>>,
    stats: Arc<SinkStats>,
    buf: Vec<u8>,
    /// An error reply was logged (once per connection).
    warned: bool,
}

impl RedisSink {
    /// The sink; it connects when the first record comes.
    pub fn new(spec: &OutputSpec, stats: Arc<SinkStats>) -> RedisSink {
        RedisSink {
            address: spec
                .address
                .clone()
                .unwrap_or_else(|| defaults::REDIS_ADDRESS.into()),
            key: spec
                .key
                .clone()
                .unwrap_or_else(|| defaults::REDIS_KEY.into()),
            mode: spec.mode.unwrap_or_default(),
            maxlen: spec.stream_maxlen.unwrap_or(defaults::STREAM_MAXLEN),
            password: spec.password.clone(),
            conn: None,
            stats,
            buf: Vec::new(),
            warned: false,
        }
    }

    fn connect(&mut self) -> anyhow::Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let addr = &self.address;
        let hint = || format!("connecting to redis at {addr} (is redis-server running there?)");
        let mut last = None;
        let mut stream = None;
        for a in addr.to_socket_addrs().with_context(hint)? {
            match TcpStream::connect_timeout(&a, TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let s = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(anyhow::Error::new(e).context(hint())),
            (None, None) => anyhow::bail!("{addr} has no address"),
        };
        s.set_read_timeout(Some(TIMEOUT))?;
        s.set_write_timeout(Some(TIMEOUT))?;
        s.set_nodelay(true)?;
        let mut conn = BufReader::new(s);
        if let Some(p) = &self.password {
            let mut buf = Vec::new();
            command(&mut buf, &[b"AUTH", p.as_bytes()]);
            conn.get_mut().write_all(&buf)?;
            if let Reply::Error(e) = read_reply(&mut conn)? {
                anyhow::bail!("redis at {addr} refused AUTH: {e} (check password)");
            }
        }
        self.conn = Some(conn);
        self.warned = false;
        Ok(())
    }

    fn encode(&mut self, batch: &[Record]) {
        self.buf.clear();
        let maxlen = self.maxlen.to_string();
        for r in batch {
            let key = self.key.as_bytes();
            match self.mode {
                RedisMode::List => command(&mut self.buf, &[b"LPUSH", key, &r.line]),
                RedisMode::Rpush => command(&mut self.buf, &[b"RPUSH", key, &r.line]),
                RedisMode::Publish => command(&mut self.buf, &[b"PUBLISH", key, &r.line]),
                RedisMode::Stream if self.maxlen > 0 => command(
                    &mut self.buf,
                    &[
                        b"XADD",
                        key,
                        b"MAXLEN",
                        b"~",
                        maxlen.as_bytes(),
                        b"*",
                        b"eve",
                        &r.line,
                    ],
                ),
                RedisMode::Stream => command(&mut self.buf, &[b"XADD", key, b"*", b"eve", &r.line]),
            }
        }
    }
}

impl Sink for RedisSink {
    fn send(&mut self, batch: &[Record]) -> Sent {
        if let Err(e) = self.connect() {
            return (0, Some(e));
        }
        self.encode(batch);
        let Some(conn) = self.conn.as_mut() else {
            return (
                0,
                Some(anyhow::anyhow!("the connection was lost before the write")),
            );
        };
        if let Err(e) = conn.get_mut().write_all(&self.buf) {
            self.conn = None;
            return (0, Some(anyhow::Error::new(e).context("writing to redis")));
        }
        // Replies come in order: each one settles its record.
        let (mut ok, mut done) = (0, 0);
        for _ in batch {
            match read_reply(conn) {
                Ok(Reply::Ok(_)) => ok += 1,
                Ok(Reply::Error(e)) => {
                    self.stats.failed.inc();
                    if !std::mem::replace(&mut self.warned, true) {
                        warn!(
                            "output {:?}: redis refused a record: {e} (key {:?})",
                            self.stats.name, self.key
                        );
                    }
                }
                Err(e) => {
                    // Records without a reply are sent again: they may be stored twice.
                    self.stats.delivered(ok);
                    self.conn = None;
                    return (done, Some(e.context("reading redis replies")));
                }
            }
            done += 1;
        }
        self.stats.delivered(ok);
        (batch.len(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_replies() {
        let mut buf = Vec::new();
        command(&mut buf, &[b"LPUSH", b"k", b"{\"a\":1}"]);
        assert_eq!(buf, b"*3\r\n$5\r\nLPUSH\r\n$1\r\nk\r\n$7\r\n{\"a\":1}\r\n");
        let mut r: &[u8] =
            b":5\r\n+OK\r\n$3\r\nabc\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n-WRONGTYPE x\r\n";
        assert_eq!(read_reply(&mut r).expect("int"), Reply::Ok(b"5".to_vec()));
        assert_eq!(
            read_reply(&mut r).expect("status"),
            Reply::Ok(b"OK".to_vec())
        );
        assert_eq!(
            read_reply(&mut r).expect("bulk"),
            Reply::Ok(b"abc".to_vec())
        );
        assert_eq!(read_reply(&mut r).expect("null"), Reply::Ok(Vec::new()));
        assert_eq!(read_reply(&mut r).expect("array"), Reply::Ok(b"2".to_vec()));
        assert_eq!(
            read_reply(&mut r).expect("error"),
            Reply::Error("WRONGTYPE x".into())
        );
        assert!(read_reply(&mut r).is_err(), "end of stream");
    }
}
