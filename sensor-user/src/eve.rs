//! EVE JSON output: one JSON object a line, Suricata's field names, written through one
//! writer that every producer of events shares (clones of an [`EveWriter`] are handles to the
//! same output, and each record is written whole under its lock). The main output (`eve`,
//! `--eve`) is written on the caller's thread; the `[[outputs]]` sinks get each record
//! through their queues ([`crate::sinks`]), never blocking the caller.

use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use anyhow::Context as _;
use serde_json::Value;

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
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `host` and the `precinct` identity object to every record written from now on,
    /// through every handle.
    pub fn set_identity(&self, identity: &crate::identity::Identity) {
        self.lock().identity = identity.suffix();
    }

    /// Writes one record. `record` must be an object with an `event_type`.
    pub fn write(&mut self, record: &Value) -> anyhow::Result<()> {
        let kind = record
            .get("event_type")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
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
            outputs.send(kind, record, line);
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

/// Formats a UNIX time in nanoseconds as Suricata does: `2026-11-22T00:40:50.123456+0000`.
pub fn format_timestamp(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let micros = (unix_ns % 1_000_000_000) / 1_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Suricata's name for an IP protocol in EVE `proto`.
pub fn proto_name(proto: u8) -> String {
    match proto {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "IPv6-ICMP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        51 => "AH".into(),
        132 => "SCTP".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_suricata_format() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000000+0000");
        // 2026-11-22T00:40:50.123456Z
        assert_eq!(
            format_timestamp(1_795_308_050_123_456_789),
            "2026-11-22T00:40:50.123456+0000"
        );
        // Leap day.
        assert_eq!(
            format_timestamp(1_709_164_800_000_000_000),
            "2024-02-29T00:00:00.000000+0000"
        );
    }

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
        let mut w = EveWriter::from_writer(Box::new(Shared(buf.clone())));
        w.write(&serde_json::json!({"event_type": "flow", "a": 1}))
            .expect("write");
        w.write(&serde_json::json!({"event_type": "flow"}))
            .expect("write");
        assert_eq!(w.counts().get("flow"), Some(&2));
        let text = String::from_utf8(buf.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(
            text,
            "{\"event_type\":\"flow\",\"a\":1}\n{\"event_type\":\"flow\"}\n"
        );
    }

    #[test]
    fn protocol_names_follow_suricata() {
        assert_eq!(proto_name(6), "TCP");
        assert_eq!(proto_name(58), "IPv6-ICMP");
        assert_eq!(proto_name(253), "253");
    }
}
