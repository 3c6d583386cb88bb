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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

/// Takes one line (without its CR LF / LF) off the front of `buf`.
pub(super) fn take_line(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let mut line: Vec<u8> = buf.drain(..=nl).collect();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
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
pub(super) fn read_body(body: &mut Body, buf: &mut Vec<u8>, sink: &mut dyn FnMut(&[u8])) -> bool {
    loop {
        match body {
            Body::None => return true,
            Body::UntilClose => {
                sink(buf);
                buf.clear();
                return false;
            }
            Body::Length(left) => {
                let n = (*left).min(buf.len() as u64) as usize;
                sink(&buf[..n]);
                buf.drain(..n);
                *left -= n as u64;
                return *left == 0;
            }
            Body::Chunked(state) => match *state {
                ChunkState::Size => {
                    let Some(line) = take_line(buf) else {
                        return false;
                    };
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
                    buf.drain(..n);
                    *state = if left == n as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                }
                ChunkState::DataEnd => {
                    if take_line(buf).is_none() {
                        return false;
                    }
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
