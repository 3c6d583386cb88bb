//! The EVE writer: one JSON object a line, written through one writer that every producer of
//! events shares (clones of an [`EveWriter`] are handles to the same output, and each record
//! is written whole under its lock). The main output (`eve`, `--eve`) is written on the
//! caller's thread; the `[[outputs]]` sinks get each record through their queues
//! ([`crate::sinks`]), never blocking the caller.

use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use anyhow::Context as _;

use super::Record;

/// Where EVE records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EveTarget {
    /// Standard output (`--eve -`).
    Stdout,
    /// A file, appended to (created with its directory when missing).
    File(PathBuf),
}

impl EveTarget {
    /// `-` is standard output, anything else a file path.
    pub fn parse(s: &str) -> EveTarget {
        if s == "-" {
            EveTarget::Stdout
        } else {
            EveTarget::File(PathBuf::from(s))
        }
    }
}

/// Writes EVE records and counts them by event type. Cloning gives another handle to the
/// same output and counts, for another thread.
#[derive(Clone)]
pub struct EveWriter(Arc<Mutex<Inner>>);

struct Inner {
    out: Box<dyn Write + Send>,
    /// The main output's file, for reopening (None: standard output or a test buffer).
    path: Option<PathBuf>,
    /// The `[[outputs]]` sinks.
    outputs: Option<crate::sinks::Outputs>,
    /// `,"host":…,"precinct":{…}`, spliced into every record (empty: no identity).
    identity: Vec<u8>,
    counts: BTreeMap<String, u64>,
    /// One record's JSON, reused so that the lock covers a single write.
    line: Vec<u8>,
}

fn open_append(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the EVE log directory {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| {
            format!(
                "opening the EVE log {} for appending; choose another with --eve FILE (or - for \
                 standard output)",
                path.display()
            )
        })
}

impl EveWriter {
    /// Opens `target`.
    pub fn open(target: &EveTarget) -> anyhow::Result<EveWriter> {
        let out: Box<dyn Write + Send> = match target {
            EveTarget::Stdout => Box::new(io::stdout()),
            EveTarget::File(path) => Box::new(BufWriter::new(open_append(path)?)),
        };
        let w = EveWriter::from_writer(out);
        if let EveTarget::File(path) = target {
            w.lock().path = Some(path.clone());
        }
        Ok(w)
    }

    /// A writer into any sink (tests, buffers).
    pub fn from_writer(out: Box<dyn Write + Send>) -> EveWriter {
        EveWriter(Arc::new(Mutex::new(Inner {
            out,
            path: None,
            outputs: None,
            identity: Vec::new(),
            counts: BTreeMap::new(),
            line: Vec::with_capacity(1024),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst a partial line; keep writing.
        crate::sync::lock(&self.0)
    }

    /// Adds `host` and the `precinct` identity object to every record written from now on,
    /// through every handle.
    pub fn set_identity(&self, identity: &crate::identity::Identity) {
        self.lock().identity = identity.suffix();
    }

    /// Writes one record.
    pub fn write<R: Record + ?Sized>(&mut self, record: &R) -> anyhow::Result<()> {
        let kind = record.event_type();
        let mut inner = self.lock();
        let Inner {
            out,
            identity,
            counts,
            line,
            outputs,
            ..
        } = &mut *inner;
        line.clear();
        serde_json::to_writer(&mut *line, record).context("writing an EVE record")?;
        // Splice the identity in before the closing brace (not into an empty object).
        if !identity.is_empty() && line.len() > 2 && line.last() == Some(&b'}') {
            line.pop();
            line.extend_from_slice(identity);
            line.push(b'}');
        }
        if let Some(outputs) = outputs {
            outputs.send(kind, record.alert_severity(), line);
        }
        line.push(b'\n');
        out.write_all(line).context("writing an EVE record")?;
        if let Some(n) = counts.get_mut(kind) {
            *n += 1;
        } else {
            counts.insert(kind.to_owned(), 1);
        }
        Ok(())
    }

    /// Flushes buffered records to the target.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.lock().out.flush().context("flushing the EVE log")
    }

    /// Records written so far through every handle, by event type.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.lock().counts.clone()
    }

    /// Sends every record written from now on also to `outputs` (`[[outputs]]`), each
    /// through its filter and queue.
    pub fn attach_outputs(&self, outputs: crate::sinks::Outputs) {
        self.lock().outputs = Some(outputs);
    }

    /// Reopens the main EVE file and asks the file outputs to reopen theirs: after logrotate
    /// moved them (SIGHUP). When the main file cannot be opened, the old handle stays.
    pub fn reopen(&self) -> anyhow::Result<()> {
        let mut inner = self.lock();
        if let Some(o) = &inner.outputs {
            o.reopen();
        }
        let Some(path) = inner.path.clone() else {
            return Ok(());
        };
        inner.out.flush().context("flushing the EVE log")?;
        inner.out = Box::new(BufWriter::new(open_append(&path)?));
        Ok(())
    }

    /// Stops the outputs: what they hold is delivered for up to `within` (the http outputs
    /// keep the rest in their spools). Records written afterwards go to the main output only.
    pub fn shutdown_outputs(&self, within: Duration) {
        let outputs = self.lock().outputs.take();
        if let Some(o) = outputs {
            o.shutdown(within);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_counts_event_types_and_writes_lines() {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        #[derive(serde::Serialize)]
        struct Flowish {
            event_type: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            a: Option<u8>,
        }
        impl Record for Flowish {
            fn event_type(&self) -> &'static str {
                self.event_type
            }
        }
        let mut w = EveWriter::from_writer(Box::new(Shared(buf.clone())));
        w.write(&Flowish {
            event_type: "flow",
            a: Some(1),
        })
        .expect("write");
        w.write(&Flowish {
            event_type: "flow",
            a: None,
        })
        .expect("write");
        assert_eq!(w.counts().get("flow"), Some(&2));
        let text = String::from_utf8(buf.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(
            text,
            "{\"event_type\":\"flow\",\"a\":1}\n{\"event_type\":\"flow\"}\n"
        );
    }
}
