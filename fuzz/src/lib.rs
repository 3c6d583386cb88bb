//! What the fuzz targets share: how an input becomes a feeding schedule for a stream parser,
//! and how a parser's output is exercised the way the pipeline would use it.
//!
//! Stream input format (`xtask fuzz` writes its seeds in it):
//!
//! ```text
//! byte 0      bits 0–3: number of schedule entries K; bit 4: the target's variant flag
//! K × u16 BE  bit 15: direction (1 = to client); bit 14: a gap of `length` bytes instead of
//!             data; bits 0–13: length
//! rest        the data, cut into chunks by the schedule, which repeats until the data ends
//! ```
//!
//! No schedule (`K = 0`) feeds all the data to the server in one call.

use precinct::applayer::{AppParser, Dir, Output};

/// Input split into a schedule and data.
pub struct Schedule<'a> {
    /// The target's variant flag (DNS: UDP mode; TLS: JA3/JA4 on; SSH: HASSH on).
    pub variant: bool,
    entries: Vec<Entry>,
    data: &'a [u8],
}

/// One step of the schedule.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Direction of the chunk or gap.
    pub dir: Dir,
    /// A gap (bytes lost) rather than data.
    pub gap: bool,
    /// Bytes in the chunk or gap.
    pub len: usize,
}

/// One step as the parser sees it.
#[derive(Debug)]
pub enum Step<'a> {
    /// Bytes of `dir`.
    Data(Dir, &'a [u8]),
    /// `len` bytes of `dir` lost.
    Gap(Dir, usize),
}

impl<'a> Schedule<'a> {
    /// Reads the schedule at the start of `input`.
    pub fn new(input: &'a [u8]) -> Schedule<'a> {
        let Some((&head, mut rest)) = input.split_first() else {
            return Schedule {
                variant: false,
                entries: Vec::new(),
                data: &[],
            };
        };
        let mut entries = Vec::new();
        for _ in 0..head & 0x0f {
            let Some((e, r)) = rest.split_first_chunk::<2>() else {
                break;
            };
            rest = r;
            let v = u16::from_be_bytes(*e);
            entries.push(Entry {
                dir: if v & 0x8000 != 0 {
                    Dir::ToClient
                } else {
                    Dir::ToServer
                },
                gap: v & 0x4000 != 0,
                len: usize::from(v & 0x3fff),
            });
        }
        Schedule {
            variant: head & 0x10 != 0,
            entries,
            data: rest,
        }
    }

    /// The steps: the schedule repeated until the data is used up. A round of the schedule
    /// that uses no data ends it, so that gaps and empty chunks cannot repeat forever.
    pub fn steps(&self) -> Vec<Step<'a>> {
        let mut data = self.data;
        if self.entries.is_empty() {
            return vec![Step::Data(Dir::ToServer, data)];
        }
        let mut steps = Vec::new();
        loop {
            let before = data.len();
            for e in &self.entries {
                if e.gap {
                    steps.push(Step::Gap(e.dir, e.len));
                    continue;
                }
                let (chunk, rest) = data.split_at(e.len.min(data.len()));
                data = rest;
                steps.push(Step::Data(e.dir, chunk));
            }
            if data.is_empty() || data.len() == before {
                return steps;
            }
        }
    }
}

/// Feeds `input` to `parser` as a TCP stream by its schedule, then ends the flow. Every
/// output is serialised as the EVE writer would.
pub fn run_stream(parser: &mut dyn AppParser, input: &Schedule<'_>) {
    let mut out = Output::default();
    for step in input.steps() {
        match step {
            Step::Data(dir, chunk) => parser.parse(dir, chunk, &mut out),
            Step::Gap(dir, len) => parser.gap(dir, len, &mut out),
        }
        // The transaction's object, as an alert on it would build it.
        if let Some(tx) = out.tx.and_then(|id| parser.tx_object(id)) {
            let _ = serde_json::to_vec(&tx);
        }
        drain(&mut out);
    }
    parser.finish(&mut out);
    drain(&mut out);
}

/// Uses and clears one call's output as the pipeline would: records become JSON.
pub fn drain(out: &mut Output) {
    for r in &out.records {
        let _ = serde_json::to_vec(&r.object);
    }
    *out = Output::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_repeats_and_ends() {
        // Two entries: 2 bytes to the server, a gap, then 1 byte to the client.
        let input = [2, 0x00, 0x02, 0x80, 0x01, b'a', b'b', b'c', b'd', b'e'];
        let steps = Schedule::new(&input).steps();
        assert_eq!(steps.len(), 4);
        assert!(matches!(steps[0], Step::Data(Dir::ToServer, b"ab")));
        assert!(matches!(steps[1], Step::Data(Dir::ToClient, b"c")));
        assert!(matches!(steps[2], Step::Data(Dir::ToServer, b"de")));
        assert!(matches!(steps[3], Step::Data(Dir::ToClient, b"")));

        // Only a gap: one round.
        let steps = Schedule::new(&[1, 0x40, 0x10, 1, 2, 3]).steps();
        assert_eq!(steps.len(), 1);
    }
}
