//! The http sink's on-disk spool: records in append-only segment files, read in order in
//! batches, and a committed cursor that moves only after the collector accepted a batch, so
//! records survive collector outages and agent restarts and leave in the order they came.
//!
//! Layout of the directory: `NNNNNNNNNNNNNNNNNNNN.seg` segments (oldest first by number),
//! each line a record prefixed with its class (`H` kept when the spool is full, `L` evicted
//! first); `cursor` (`SEGMENT OFFSET NEXT_BATCH`, replaced atomically) the first undelivered
//! byte and the number of the next batch; `lock`, held with `flock` while an agent uses it.
//!
//! When the spool is over its size, the oldest segment holding `L` records is rewritten
//! without them (a whole segment's worth at a time, oldest first); when only `H` records are
//! left, the oldest of those go. The batch in flight is never evicted, so a batch the
//! collector may already hold is never sent again with different content. Evicted records
//! are counted as lost.

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

const KEEP: u8 = b'H';
const LOW: u8 = b'L';

#[derive(Clone, Debug)]
struct Segment {
    seq: u64,
    /// Bytes in the file.
    bytes: u64,
    /// Records not yet delivered.
    records: u64,
    /// Of which low priority.
    low: u64,
}

/// The batch handed to the sender and not yet committed; it starts at the cursor.
#[derive(Clone, Copy, Debug)]
struct Inflight {
    end: u64,
    records: u64,
    low: u64,
}

/// One batch: its number (stable across retries and restarts) and its NDJSON body.
#[derive(Debug)]
pub struct Batch {
    /// Batch number, for the `X-Precinct-Batch` header.
    pub seq: u64,
    /// Records, one JSON object a line.
    pub body: Vec<u8>,
    /// How many.
    pub records: u64,
}

/// The spool of one http output.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segs: VecDeque<Segment>,
    /// Appends to the last segment when open.
    writer: Option<BufWriter<File>>,
    /// First undelivered byte of the first segment.
    cursor: u64,
    inflight: Option<Inflight>,
    next_batch: u64,
    next_seq: u64,
    bytes: u64,
    events: u64,
    _lock: File,
}

fn seg_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

/// Splits `data` into complete lines (with their newline); a cut tail is left out.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|b| *b == b'\n')
        .filter(|l| l.ends_with(b"\n"))
}

impl Spool {
    /// Opens (creates) the spool in `dir`, recovering what a previous run left: segments
    /// after the committed cursor are delivered first; a line cut by a crash is removed.
    pub fn open(dir: &Path, max_bytes: u64) -> anyhow::Result<Spool> {
        let hint = || {
            format!(
                "opening the spool directory {} (set spool_dir to a directory the agent can \
                 write)",
                dir.display()
            )
        };
        fs::create_dir_all(dir).with_context(hint)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .with_context(hint)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            anyhow::bail!(
                "the spool {} is in use by another process (another precinct with the same \
                 spool_dir?)",
                dir.display()
            );
        }
        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir).with_context(hint)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(dir.join(&*name));
            } else if let Some(seq) = name.strip_suffix(".seg").and_then(|s| s.parse().ok()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let (mut cseg, mut cursor, next_batch) = match fs::read_to_string(dir.join("cursor")) {
            Ok(text) => {
                let v: Vec<u64> = text
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                match v[..] {
                    [s, o, b] => (s, o, b),
                    _ => anyhow::bail!(
                        "{}: not SEGMENT OFFSET BATCH; remove it to start from the oldest \
                         segment (records may be sent twice)",
                        dir.join("cursor").display()
                    ),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, 0, 1),
            Err(e) => return Err(e).with_context(hint),
        };
        // Segments before the cursor's were delivered (a crash came before their removal).
        for &s in seqs.iter().filter(|s| **s < cseg) {
            let _ = fs::remove_file(dir.join(seg_name(s)));
        }
        seqs.retain(|s| *s >= cseg);
        if seqs.first() != Some(&cseg) {
            cseg = seqs.first().copied().unwrap_or(cseg);
            cursor = 0;
        }
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            segment_bytes: (max_bytes / 16).clamp(4096, 16 << 20),
            segs: VecDeque::new(),
            writer: None,
            cursor: 0,
            inflight: None,
            next_batch,
            // Never a number the cursor file may still name with an offset.
            next_seq: seqs.last().map_or(cseg + 1, |s| s + 1),
            bytes: 0,
            events: 0,
            _lock: lock,
        };
        for (i, &seq) in seqs.iter().enumerate() {
            let from = if i == 0 { cursor } else { 0 };
            let seg = spool.scan(seq, from)?;
            if i == 0 {
                spool.cursor = from.min(seg.bytes);
            }
            spool.bytes += seg.bytes;
            spool.events += seg.records;
            spool.segs.push_back(seg);
        }
        spool.drop_consumed()?;
        Ok(spool)
    }

    /// Counts a segment's records from `from`, removing a line cut short at its end.
    fn scan(&self, seq: u64, from: u64) -> anyhow::Result<Segment> {
        let path = self.dir.join(seg_name(seq));
        let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        if complete < data.len() {
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(complete as u64)?;
        }
        // A cursor that is not at a line start (a crash during a rewrite) starts the segment
        // over: records may be sent twice, none is skipped.
        let mut from = (from as usize).min(complete);
        if from > 0 && data[from - 1] != b'\n' {
            from = 0;
        }
        let (mut records, mut low) = (0, 0);
        for l in lines(&data[from..complete]) {
            records += 1;
            low += u64::from(l[0] != KEEP);
        }
        Ok(Segment {
            seq,
            bytes: complete as u64,
            records,
            low,
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(seg_name(seq))
    }

    /// Records not yet delivered.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `true` while a batch is out.
    pub fn in_flight(&self) -> bool {
        self.inflight.is_some()
    }

    fn is_active(&self, i: usize) -> bool {
        self.writer.is_some() && i + 1 == self.segs.len()
    }

    fn close_writer(&mut self) -> io::Result<()> {
        if let Some(mut w) = self.writer.take() {
            w.flush()?;
        }
        Ok(())
    }

    /// Appends a record (`keep`: evicted last); returns how many records were evicted to
    /// make room.
    pub fn append(&mut self, line: &[u8], keep: bool) -> io::Result<u64> {
        let rotate = self
            .segs
            .back()
            .is_none_or(|s| s.bytes >= self.segment_bytes);
        if self.writer.is_none() || rotate {
            self.close_writer()?;
            let seq = self.next_seq;
            let f = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(self.path(seq))?;
            self.next_seq += 1;
            if self.segs.is_empty() {
                self.cursor = 0;
            }
            self.segs.push_back(Segment {
                seq,
                bytes: 0,
                records: 0,
                low: 0,
            });
            self.writer = Some(BufWriter::with_capacity(64 << 10, f));
        }
        // Both exist now: the branch above opened a segment unless one was open.
        let (Some(w), Some(s)) = (self.writer.as_mut(), self.segs.back_mut()) else {
            return Err(io::Error::other("the spool has no segment open"));
        };
        w.write_all(&[if keep { KEEP } else { LOW }])?;
        w.write_all(line)?;
        w.write_all(b"\n")?;
        let n = line.len() as u64 + 2;
        s.bytes += n;
        s.records += 1;
        s.low += u64::from(!keep);
        self.bytes += n;
        self.events += 1;
        self.make_room()
    }

    /// Writes buffered records to the file (for the reader, and against a crash).
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(w) = self.writer.as_mut() {
            w.flush()?;
        }
        Ok(())
    }

    /// Flushes and syncs everything to disk (shutdown).
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(w) = self.writer.as_mut() {
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        self.save_cursor()
    }

    fn save_cursor(&self) -> io::Result<()> {
        let seg = self.segs.front().map_or(self.next_seq, |s| s.seq);
        let tmp = self.dir.join("cursor.tmp");
        let mut f = File::create(&tmp)?;
        writeln!(f, "{seg} {} {}", self.cursor, self.next_batch)?;
        f.sync_all()?;
        fs::rename(tmp, self.dir.join("cursor"))
    }

    /// Removes fully delivered segments at the front (not the one being written).
    fn drop_consumed(&mut self) -> io::Result<()> {
        while self.inflight.is_none()
            && !self.segs.is_empty()
            && !self.is_active(0)
            && self.cursor >= self.segs[0].bytes
        {
            let Some(s) = self.segs.pop_front() else {
                break;
            };
            fs::remove_file(self.path(s.seq))?;
            self.bytes -= s.bytes;
            self.cursor = 0;
        }
        Ok(())
    }

    /// The next batch: the one in flight again if it was not committed (same number and
    /// records), else up to `max_events` records and `max_bytes` bytes from the cursor (at
    /// least one record), within one segment. `None` when nothing is waiting.
    pub fn peek(&mut self, max_events: u64, max_bytes: u64) -> io::Result<Option<Batch>> {
        self.drop_consumed()?;
        let Some(head) = self.segs.front().cloned() else {
            return Ok(None);
        };
        if self.is_active(0) {
            self.flush()?;
        }
        let avail = match self.inflight {
            Some(f) => f.end - self.cursor,
            None => head.bytes - self.cursor,
        };
        if avail == 0 {
            return Ok(None);
        }
        let mut f = BufReader::new(File::open(self.path(head.seq))?);
        f.seek(SeekFrom::Start(self.cursor))?;
        let mut f = f.take(avail);
        let (mut body, mut line) = (Vec::new(), Vec::new());
        let (mut records, mut low, mut used) = (0u64, 0u64, 0u64);
        loop {
            let more = match self.inflight {
                Some(inf) => records < inf.records,
                None => records < max_events,
            };
            if !more {
                break;
            }
            line.clear();
            if f.read_until(b'\n', &mut line)? == 0 || !line.ends_with(b"\n") {
                break;
            }
            if self.inflight.is_none()
                && records > 0
                && (body.len() + line.len() - 1) as u64 > max_bytes
            {
                break;
            }
            used += line.len() as u64;
            records += 1;
            low += u64::from(line[0] != KEEP);
            body.extend_from_slice(&line[1..]);
        }
        if records == 0 {
            return Ok(None);
        }
        self.inflight = Some(Inflight {
            end: self.cursor + used,
            records,
            low,
        });
        Ok(Some(Batch {
            seq: self.next_batch,
            body,
            records,
        }))
    }

    /// Forgets the batch in flight without delivering it (it was refused whole: the next
    /// `peek` may cut it smaller).
    pub fn release(&mut self) {
        self.inflight = None;
    }

    /// The batch in flight was delivered: moves the cursor past it; returns its records.
    pub fn commit(&mut self) -> io::Result<u64> {
        let Some(f) = self.inflight.take() else {
            return Ok(0);
        };
        self.cursor = f.end;
        let head = &mut self.segs[0];
        head.records -= f.records;
        head.low -= f.low;
        self.events -= f.records;
        self.next_batch += 1;
        self.save_cursor()?;
        self.drop_consumed()?;
        Ok(f.records)
    }

    fn make_room(&mut self) -> io::Result<u64> {
        let mut lost = 0;
        while self.bytes > self.max_bytes {
            match self.evict_one()? {
                Some(n) => lost += n,
                None => break,
            }
        }
        Ok(lost)
    }

    /// Evicts from the oldest segment that has low-priority records (or, when none has,
    /// any records) outside the batch in flight; `None` when nothing can go.
    fn evict_one(&mut self) -> io::Result<Option<u64>> {
        let (inf_records, inf_low) = self.inflight.map_or((0, 0), |f| (f.records, f.low));
        let pick = |keep_high: bool| {
            self.segs.iter().enumerate().position(|(i, s)| {
                let (records, low) = if i == 0 {
                    (s.records - inf_records, s.low - inf_low)
                } else {
                    (s.records, s.low)
                };
                if keep_high {
                    low > 0 || (i == 0 && self.cursor > 0)
                } else {
                    records > 0
                }
            })
        };
        for keep_high in [true, false] {
            if let Some(i) = pick(keep_high) {
                if self.is_active(i) {
                    self.close_writer()?;
                }
                return self.compact(i, keep_high).map(Some);
            }
        }
        Ok(None)
    }

    /// Rewrites segment `i` without its delivered prefix and without its low-priority
    /// records (`keep_high`) or all its records, the batch in flight excepted. Returns the
    /// records removed.
    fn compact(&mut self, i: usize, keep_high: bool) -> io::Result<u64> {
        let seg = self.segs[i].clone();
        let path = self.path(seg.seq);
        let data = fs::read(&path)?;
        let start = if i == 0 { self.cursor as usize } else { 0 };
        let inflight = if i == 0 { self.inflight } else { None };
        let verbatim_end = inflight.map_or(start, |f| f.end as usize);
        let mut out = data[start..verbatim_end].to_vec();
        // What stays outside the batch in flight is high priority only.
        let (mut records, low) = inflight.map_or((0, 0), |f| (f.records, f.low));
        let mut removed = 0;
        for l in lines(&data[verbatim_end..]) {
            if keep_high && l[0] == KEEP {
                out.extend_from_slice(l);
                records += 1;
            } else {
                removed += 1;
            }
        }
        self.bytes -= seg.bytes - out.len() as u64;
        self.events -= removed;
        if out.is_empty() {
            fs::remove_file(&path)?;
            self.segs.remove(i);
            if i == 0 {
                self.cursor = 0;
                self.save_cursor()?;
            }
            return Ok(removed);
        }
        let tmp = self.dir.join(format!("{}.tmp", seg_name(seg.seq)));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
        }
        if i == 0 {
            // The cursor first: a crash before the rename re-sends, and never skips.
            self.cursor = 0;
            if let Some(f) = self.inflight.as_mut() {
                f.end -= start as u64;
            }
            self.save_cursor()?;
        }
        fs::rename(&tmp, &path)?;
        let s = &mut self.segs[i];
        s.bytes = out.len() as u64;
        s.records = records;
        s.low = low;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("precinct-spool-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn drain(s: &mut Spool, n: u64) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(b) = s.peek(n, 1 << 20).expect("peek") {
            out.extend(
                String::from_utf8(b.body)
                    .expect("utf8")
                    .lines()
                    .map(str::to_owned),
            );
            s.commit().expect("commit");
        }
        out
    }

    #[test]
    fn batches_come_in_order_and_survive_a_restart() {
        let dir = tmpdir("order");
        let mut s = Spool::open(&dir, 1 << 20).expect("open");
        for i in 0..10 {
            s.append(format!("{{\"n\":{i}}}").as_bytes(), false)
                .expect("append");
        }
        let b = s.peek(4, 1 << 20).expect("peek").expect("batch");
        assert_eq!((b.seq, b.records), (1, 4));
        assert_eq!(b.body, b"{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
        s.commit().expect("commit");
        // Not committed: the same batch again, also after a restart.
        let b = s.peek(4, 1 << 20).expect("peek").expect("batch");
        assert_eq!(b.seq, 2);
        s.sync().expect("sync");
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(s.events(), 6);
        let again = s.peek(4, 1 << 20).expect("peek").expect("batch");
        assert_eq!((again.seq, &again.body), (2, &b.body));
        s.commit().expect("commit");
        let rest = drain(&mut s, 100);
        assert_eq!(rest, ["{\"n\":8}", "{\"n\":9}"]);
        assert_eq!(s.events(), 0);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_cut_line_is_removed_at_open() {
        let dir = tmpdir("cut");
        let mut s = Spool::open(&dir, 1 << 20).expect("open");
        s.append(b"{\"a\":1}", true).expect("append");
        s.sync().expect("sync");
        drop(s);
        let seg = fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .expect("a segment");
        let mut f = OpenOptions::new().append(true).open(&seg).expect("seg");
        f.write_all(b"L{\"half").expect("write");
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(s.events(), 1);
        assert_eq!(drain(&mut s, 10), ["{\"a\":1}"]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_cursor_into_a_removed_segment_skips_nothing() {
        // The cursor names a segment removed after delivery, and no segment is left: new
        // segments must not reuse its number, or a crash before the next commit would make
        // the next start skip the first bytes of the new one.
        let dir = tmpdir("stale");
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join("cursor"), "5 1000 3\n").expect("cursor");
        let mut s = Spool::open(&dir, 1 << 20).expect("open");
        s.append(b"{\"a\":1}", false).expect("append");
        s.append(b"{\"a\":2}", false).expect("append");
        s.flush().expect("flush");
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(drain(&mut s, 10), ["{\"a\":1}", "{\"a\":2}"]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_full_spool_evicts_old_low_priority_records_first() {
        let dir = tmpdir("full");
        let mut s = Spool::open(&dir, 64 << 10).expect("open");
        let pad = "x".repeat(100);
        let mut lost = 0;
        // One alert in ten; 3000 records of ~120 bytes: far over 64 KiB.
        for i in 0..3000 {
            let alert = i % 10 == 0;
            let line = format!("{{\"n\":{i},\"alert\":{alert},\"p\":\"{pad}\"}}");
            lost += s.append(line.as_bytes(), alert).expect("append");
        }
        assert!(s.bytes() <= 64 << 10, "{}", s.bytes());
        assert_eq!(s.events() + lost, 3000);
        let left = drain(&mut s, 1000);
        let nums: Vec<(u64, bool)> = left
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                (v["n"].as_u64().expect("n"), v["alert"] == true)
            })
            .collect();
        // In order, every alert kept, and the low-priority records left are the newest.
        assert!(nums.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(nums.iter().filter(|(_, a)| *a).count(), 300);
        let first_low = nums.iter().find(|(_, a)| !a).expect("some low").0;
        assert!(nums
            .iter()
            .filter(|(_, a)| !a)
            .all(|(n, _)| *n >= first_low));
        assert!(
            first_low > 2000,
            "old low-priority records went first: {first_low}"
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn the_batch_in_flight_is_never_evicted() {
        let dir = tmpdir("inflight");
        let mut s = Spool::open(&dir, 16 << 10).expect("open");
        let pad = "y".repeat(100);
        for i in 0..20 {
            s.append(format!("{{\"n\":{i},\"p\":\"{pad}\"}}").as_bytes(), false)
                .expect("append");
        }
        let b = s.peek(5, 1 << 20).expect("peek").expect("batch");
        for i in 20..2000 {
            s.append(format!("{{\"n\":{i},\"p\":\"{pad}\"}}").as_bytes(), true)
                .expect("append");
        }
        // The same batch comes back (retry) with the same content, then commits.
        let again = s.peek(5, 1 << 20).expect("peek").expect("batch");
        assert_eq!((again.seq, &again.body), (b.seq, &b.body));
        assert_eq!(s.commit().expect("commit"), 5);
        let rest = drain(&mut s, 1000);
        let first: serde_json::Value = serde_json::from_str(&rest[0]).expect("json");
        assert!(first["n"].as_u64().expect("n") > 20, "{first}");
        let _ = fs::remove_dir_all(dir);
    }
}
