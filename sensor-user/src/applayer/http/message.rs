//! HTTP/1 message framing: lines, headers, and bodies by `Content-Length`, chunked
//! encoding or the end of the connection.

use super::*;

/// How the body of the message being read ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Body {
    None,
    Length(u64),
    Chunked(ChunkState),
    UntilClose,
    /// A response without status line (libhtp's bare body): whole lines, until a chunk of
    /// data ends with one. What a chunk ends with depends on how the sender wrote it, and
    /// libhtp's answer does too; this follows it.
    Lines,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

/// Bytes of one direction received and not parsed yet. Taking bytes off the front moves an
/// offset instead of the bytes behind them, so a segment of many lines (pipelined requests,
/// a long header block) is parsed in time linear in its length; the room is reclaimed when
/// the next bytes arrive.
#[derive(Debug, Default)]
pub(super) struct Pending {
    bytes: Vec<u8>,
    start: usize,
}

impl Pending {
    /// Appends received bytes.
    pub(super) fn extend_from_slice(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Drops the first `n` bytes (all of them when fewer are held).
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.bytes.len());
        if self.start == self.bytes.len() {
            self.clear();
        }
    }

    /// Drops everything.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }

    /// Everything held, leaving nothing.
    pub(super) fn take(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.bytes);
        v.drain(..std::mem::take(&mut self.start));
        v
    }
}

impl std::ops::Deref for Pending {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// Takes one line (without its CR LF / LF) off the front of `buf`.
pub(super) fn take_line(buf: &mut Pending) -> Option<Vec<u8>> {
    let nl = memchr::memchr(b'\n', buf)?;
    let mut end = nl;
    if end > 0 && buf[end - 1] == b'\r' {
        end -= 1;
    }
    let line = buf[..end].to_vec();
    buf.consume(nl + 1);
    Some(line)
}

pub(super) fn split_ws(line: &[u8]) -> Vec<&[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|p| !p.is_empty())
        .collect()
}

pub(super) fn parse_header(line: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii().to_vec();
    let value = line[colon + 1..].trim_ascii().to_vec();
    Some((name, value))
}

pub(super) fn body_of(headers: &[(Vec<u8>, Vec<u8>)], is_response: bool) -> Body {
    if let Some(te) = Tx::header(headers, "transfer-encoding") {
        if String::from_utf8_lossy(te)
            .to_ascii_lowercase()
            .contains("chunked")
        {
            return Body::Chunked(ChunkState::Size);
        }
    }
    if let Some(cl) = Tx::header(headers, "content-length") {
        if let Ok(n) = String::from_utf8_lossy(cl).trim().parse::<u64>() {
            return if n == 0 { Body::None } else { Body::Length(n) };
        }
    }
    if is_response {
        Body::UntilClose
    } else {
        Body::None
    }
}

/// Consumes body bytes from `buf`; returns (bytes of entity data, whether the body ended).
/// Reads what `buf` holds of a body framed as `body`, handing its data to `sink`; whether the
/// body is complete. Chunk-size lines and the line ends after chunks are added to `framing`:
/// libhtp counts them into the message length that Suricata writes as `length` (the body as
/// sent), the trailer not.
pub(super) fn read_body(
    body: &mut Body,
    buf: &mut Pending,
    framing: &mut u64,
    sink: &mut dyn FnMut(&[u8]),
) -> bool {
    loop {
        match body {
            Body::None => return true,
            Body::UntilClose => {
                sink(buf);
                buf.clear();
                return false;
            }
            Body::Lines => {
                let Some(nl) = memchr::memrchr(b'\n', buf) else {
                    return false;
                };
                sink(&buf[..=nl]);
                buf.consume(nl + 1);
                return buf.is_empty();
            }
            Body::Length(left) => {
                let n = (*left).min(buf.len() as u64) as usize;
                sink(&buf[..n]);
                buf.consume(n);
                *left -= n as u64;
                return *left == 0;
            }
            Body::Chunked(state) => match *state {
                ChunkState::Size => {
                    let before = buf.len();
                    let Some(line) = take_line(buf) else {
                        return false;
                    };
                    *framing += (before - buf.len()) as u64;
                    let hex: Vec<u8> = line
                        .iter()
                        .take_while(|b| b.is_ascii_hexdigit())
                        .copied()
                        .collect();
                    let size = u64::from_str_radix(&String::from_utf8_lossy(&hex), 16).unwrap_or(0);
                    *state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return false;
                    }
                    let n = left.min(buf.len() as u64) as usize;
                    sink(&buf[..n]);
                    buf.consume(n);
                    *state = if left == n as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                }
                ChunkState::DataEnd => {
                    let before = buf.len();
                    if take_line(buf).is_none() {
                        return false;
                    }
                    *framing += (before - buf.len()) as u64;
                    *state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = take_line(buf) else {
                        return false;
                    };
                    if line.is_empty() {
                        return true;
                    }
                }
            },
        }
    }
}

/// What a gap inside a body did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Skipped {
    /// The gap lay within the body: `done` when it reached the body's end; `len` bytes of
    /// the body were lost.
    Within { done: bool, len: u64 },
    /// The gap ran past the body's end: its remaining `len` bytes were lost with it, and what
    /// followed (the next message) cannot be framed.
    Beyond { len: u64 },
    /// The framing was already lost (inside chunk sizes or trailers).
    Lost,
}

/// Skips `gap` lost bytes inside a body, as libhtp does: the bytes count towards the body,
/// and a body the gap runs past ends with it.
pub(super) fn skip_body(body: &mut Body, gap: u64) -> Skipped {
    match body {
        Body::Length(left) if gap < *left => {
            *left -= gap;
            Skipped::Within {
                done: false,
                len: gap,
            }
        }
        Body::Length(left) if gap == *left => Skipped::Within {
            done: true,
            len: gap,
        },
        Body::Length(left) => Skipped::Beyond { len: *left },
        Body::Chunked(ChunkState::Data(left)) if gap <= *left => {
            *left -= gap;
            if *left == 0 {
                *body = Body::Chunked(ChunkState::DataEnd);
            }
            Skipped::Within {
                done: false,
                len: gap,
            }
        }
        Body::UntilClose => Skipped::Within {
            done: false,
            len: gap,
        },
        _ => Skipped::Lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_bytes_are_taken_from_the_front_and_appended_at_the_back() {
        let mut p = Pending::default();
        p.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\nrest");
        assert_eq!(take_line(&mut p).as_deref(), Some(&b"GET / HTTP/1.1"[..]));
        assert_eq!(
            take_line(&mut p).as_deref(),
            Some(&b"Host: a"[..]),
            "a bare LF"
        );
        assert_eq!(take_line(&mut p), None, "no line end yet");
        assert_eq!(&p[..], b"rest");
        p.extend_from_slice(b"\r\n\r\nbody");
        assert_eq!(take_line(&mut p).as_deref(), Some(&b"rest"[..]));
        assert_eq!(take_line(&mut p).as_deref(), Some(&b""[..]));
        p.consume(2);
        assert_eq!(&p[..], b"dy");
        p.consume(10);
        assert!(p.is_empty(), "consuming more than is held empties it");
        p.extend_from_slice(b"abc");
        p.consume(1);
        assert_eq!(p.take(), b"bc");
        assert!(p.is_empty());
    }
}
