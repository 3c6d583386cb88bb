//! The file and stdout sinks: one record a line; files rotate by size and age
//! (`path` → `path.1` → … → `path.N`, the oldest removed) and are reopened on SIGHUP, for
//! logrotate's `create` + HUP.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::{spec::defaults, OutputSpec, Record, Sent, Sink, SinkStats};

/// Rotation settings of a file sink.
#[derive(Clone, Debug)]
struct Rotation {
    max_bytes: u64,
    interval: Option<Duration>,
    keep: u32,
}

enum Out {
    Stdout,
    File {
        path: PathBuf,
        rotation: Rotation,
        out: Option<BufWriter<File>>,
        /// Bytes in the current file.
        size: u64,
        opened: Instant,
    },
}

/// A file or standard output.
pub struct FileSink {
    out: Out,
    stats: Arc<SinkStats>,
}

fn open(path: &Path) -> anyhow::Result<(BufWriter<File>, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory {}", dir.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| {
            format!(
                "opening {} for appending (check the path and the agent's permissions)",
                path.display()
            )
        })?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((BufWriter::with_capacity(64 << 10, f), size))
}

/// The name of the `n`th rotated file: `eve.json.1`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl FileSink {
    /// Opens (creates, appends to) the output's file.
    pub fn open(spec: &OutputSpec, stats: Arc<SinkStats>) -> anyhow::Result<FileSink> {
        let path = spec.path.clone().context("path is required")?;
        let (out, size) = open(&path)?;
        Ok(FileSink {
            out: Out::File {
                path,
                rotation: Rotation {
                    max_bytes: spec.max_bytes.unwrap_or(0),
                    interval: spec
                        .rotate_interval_secs
                        .filter(|s| *s > 0)
                        .map(Duration::from_secs),
                    keep: spec.keep.unwrap_or(defaults::KEEP),
                },
                out: Some(out),
                size,
                opened: Instant::now(),
            },
            stats,
        })
    }

    /// Standard output.
    pub fn stdout(stats: Arc<SinkStats>) -> FileSink {
        FileSink {
            out: Out::Stdout,
            stats,
        }
    }
}

/// Moves `path` to `path.1`, shifting older files up and removing the one beyond `keep`.
fn rotate(path: &Path, keep: u32) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(rotated(path, keep));
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1))
                .with_context(|| format!("renaming {}", from.display()))?;
        }
    }
    std::fs::rename(path, rotated(path, 1)).with_context(|| format!("rotating {}", path.display()))
}

impl Out {
    /// Rotates the file if it is due (size with `incoming` more bytes, or age).
    fn maybe_rotate(&mut self, incoming: u64) -> anyhow::Result<()> {
        let Out::File {
            path,
            rotation,
            out,
            size,
            opened,
        } = self
        else {
            return Ok(());
        };
        let by_size = rotation.max_bytes > 0 && *size > 0 && *size + incoming > rotation.max_bytes;
        let by_age = *size > 0 && rotation.interval.is_some_and(|i| opened.elapsed() >= i);
        if !(by_size || by_age) {
            return Ok(());
        }
        if let Some(mut w) = out.take() {
            w.flush().context("flushing before rotation")?;
        }
        rotate(path, rotation.keep)?;
        self.reopen()
    }

    fn reopen(&mut self) -> anyhow::Result<()> {
        if let Out::File {
            path,
            out,
            size,
            opened,
            ..
        } = self
        {
            if let Some(mut w) = out.take() {
                let _ = w.flush();
            }
            let (w, s) = open(path)?;
            *out = Some(w);
            *size = s;
            *opened = Instant::now();
        }
        Ok(())
    }

    fn write(&mut self, line: &[u8]) -> anyhow::Result<()> {
        match self {
            Out::Stdout => {
                let mut o = io::stdout().lock();
                o.write_all(line)?;
                o.write_all(b"\n")?;
            }
            Out::File { out, size, .. } => {
                let w = out.as_mut().context("the file is not open")?;
                w.write_all(line)?;
                w.write_all(b"\n")?;
                *size += line.len() as u64 + 1;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Out::Stdout => io::stdout().flush()?,
            Out::File { out, .. } => {
                if let Some(w) = out.as_mut() {
                    w.flush()?;
                }
            }
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn send(&mut self, batch: &[Record]) -> Sent {
        if let Out::File { out: None, .. } = self.out {
            if let Err(e) = self.out.reopen() {
                return (0, Some(e));
            }
        }
        for (i, r) in batch.iter().enumerate() {
            let result = self
                .out
                .maybe_rotate(r.line.len() as u64 + 1)
                .and_then(|()| self.out.write(&r.line));
            if let Err(e) = result {
                // The line may be half written: count it failed, start again on a new handle.
                self.stats.delivered(i);
                self.stats.failed.inc();
                if let Out::File { out, .. } = &mut self.out {
                    *out = None;
                }
                return (i + 1, Some(e.context("writing")));
            }
        }
        self.stats.delivered(batch.len());
        (batch.len(), None)
    }

    fn idle(&mut self) -> anyhow::Result<()> {
        self.out.maybe_rotate(0)?;
        self.out.flush().context("flushing")
    }

    fn reopen(&mut self) -> anyhow::Result<()> {
        self.out.reopen()
    }
}
