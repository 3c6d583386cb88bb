//! Unix socket sinks, as Suricata's `unix_dgram` and `unix_stream` filetypes: one record a
//! datagram, or one record a line on a stream; reconnected with a backoff when the reader
//! goes away.

use std::{
    io::Write,
    os::unix::net::{UnixDatagram, UnixStream},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;

use super::{OutputSpec, Record, Sent, Sink, SinkStats, SinkType};

/// A write that takes longer than this counts as a failure of the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

enum Conn {
    Dgram(UnixDatagram),
    Stream(UnixStream),
}

/// A Unix datagram or stream socket.
pub struct UnixSink {
    path: PathBuf,
    stream: bool,
    conn: Option<Conn>,
    stats: Arc<SinkStats>,
    buf: Vec<u8>,
}

impl UnixSink {
    /// The sink; it connects when the first record comes.
    pub fn new(spec: &OutputSpec, stats: Arc<SinkStats>) -> UnixSink {
        UnixSink {
            path: spec.path.clone().unwrap_or_default(),
            stream: spec.kind == SinkType::UnixStream,
            conn: None,
            stats,
            buf: Vec::new(),
        }
    }

    fn connect(&mut self) -> anyhow::Result<()> {
        if self.conn.is_none() {
            let hint = || {
                format!(
                    "connecting to {} (is the reader listening there?)",
                    self.path.display()
                )
            };
            let conn = if self.stream {
                let s = UnixStream::connect(&self.path).with_context(hint)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Conn::Stream(s)
            } else {
                let s = UnixDatagram::unbound()?;
                s.connect(&self.path).with_context(hint)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Conn::Dgram(s)
            };
            self.conn = Some(conn);
        }
        Ok(())
    }
}

impl Sink for UnixSink {
    fn send(&mut self, batch: &[Record]) -> Sent {
        if let Err(e) = self.connect() {
            return (0, Some(e));
        }
        let path = self.path.display();
        let stats = &self.stats;
        let Some(conn) = self.conn.as_mut() else {
            return (
                0,
                Some(anyhow::anyhow!("the connection was lost before the write")),
            );
        };
        match conn {
            Conn::Dgram(s) => {
                let mut sent = 0;
                for (i, r) in batch.iter().enumerate() {
                    match s.send(&r.line) {
                        Ok(_) => sent += 1,
                        // Too large for a datagram: no retry will help.
                        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => stats.failed.inc(),
                        Err(e) => {
                            stats.delivered(sent);
                            let e = anyhow::Error::new(e).context(format!("sending to {path}"));
                            self.conn = None;
                            return (i, Some(e));
                        }
                    }
                }
                stats.delivered(sent);
            }
            Conn::Stream(s) => {
                self.buf.clear();
                for r in batch {
                    self.buf.extend_from_slice(&r.line);
                    self.buf.push(b'\n');
                }
                // A failed write may have sent part of the batch: it is sent again, whole,
                // on the next connection.
                if let Err(e) = s.write_all(&self.buf) {
                    let e = anyhow::Error::new(e).context(format!("writing to {path}"));
                    self.conn = None;
                    return (0, Some(e));
                }
                stats.delivered(batch.len());
            }
        }
        (batch.len(), None)
    }
}
