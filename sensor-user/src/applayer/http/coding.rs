//! Content codings of response bodies undone for the signature engine, as libhtp undoes them
//! by default: `gzip` (`x-gzip`) and `deflate` (zlib-wrapped, or raw as some servers send it),
//! at most [`MAX_LAYERS`] of them stacked (Suricata's `decompression-layer-limit`). Output is
//! bounded by what the engine inspects ([`super::MAX_BODY_KEPT`]), so a compression bomb costs
//! no more than a plain body. A body cut short (a lost segment, a connection that ended early)
//! gives what decoded before the cut, as libhtp's streaming decoder does. EVE's `length` stays
//! the body as sent.

use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};

/// Codings undone, at most.
pub const MAX_LAYERS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
}

/// The codings a `Content-Encoding` value names, in the order they were applied; `None`
/// when one of them is not undone here (`br`, `compress`, `zstd`…), so the body is left as
/// sent (`identity` is skipped).
fn codings(value: &[u8]) -> Option<Vec<Coding>> {
    let mut out = Vec::new();
    for part in value.split(|b| *b == b',') {
        let name = String::from_utf8_lossy(part).trim().to_ascii_lowercase();
        match name.as_str() {
            "gzip" | "x-gzip" => out.push(Coding::Gzip),
            "deflate" => out.push(Coding::Deflate),
            "identity" | "" => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Reads `r` to its end, or to `limit` bytes, or to the first error: what decoded so far.
fn drain(mut r: impl std::io::Read, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < limit {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n.min(limit - out.len())]),
        }
    }
    out
}

fn undo(coding: Coding, data: &[u8], limit: usize) -> Vec<u8> {
    match coding {
        Coding::Gzip => drain(GzDecoder::new(data), limit),
        Coding::Deflate => {
            // RFC 9110's deflate is zlib-wrapped; a header that does not check out is raw.
            let zlib = data.len() >= 2
                && data[0] & 0x0f == 8
                && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
            if zlib {
                drain(ZlibDecoder::new(data), limit)
            } else {
                drain(DeflateDecoder::new(data), limit)
            }
        }
    }
}

/// The body the signature engine inspects for a response whose `Content-Encoding` is
/// `encoding`: decoded up to `limit` bytes, or `None` when it is to be inspected as sent.
pub fn decoded(encoding: Option<&[u8]>, body: &[u8], limit: usize) -> Option<Vec<u8>> {
    let codings = codings(encoding?)?;
    if codings.is_empty() || codings.len() > MAX_LAYERS || body.is_empty() {
        return None;
    }
    let mut data = body.to_vec();
    for coding in codings.iter().rev() {
        data = undo(*coding, &data, limit);
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::{
        write::{DeflateEncoder, GzEncoder, ZlibEncoder},
        Compression,
    };

    use super::*;

    fn gzip(d: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(d).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_are_undone() {
        let text = b"<html>exploit kit landing page</html>".repeat(20);
        assert_eq!(
            decoded(Some(b"gzip"), &gzip(&text), 1 << 16),
            Some(text.clone())
        );
        assert_eq!(
            decoded(Some(b"X-GZIP"), &gzip(&text), 1 << 16),
            Some(text.clone())
        );
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).expect("write");
        let zlib = z.finish().expect("finish");
        assert_eq!(
            decoded(Some(b"deflate"), &zlib, 1 << 16),
            Some(text.clone())
        );
        let mut r = DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(&text).expect("write");
        let raw = r.finish().expect("finish");
        assert_eq!(decoded(Some(b"deflate"), &raw, 1 << 16), Some(text.clone()));
        // Two layers, applied gzip then deflate: undone in reverse.
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&gzip(&text)).expect("write");
        let both = z.finish().expect("finish");
        assert_eq!(decoded(Some(b"gzip, deflate"), &both, 1 << 16), Some(text));
    }

    #[test]
    fn what_is_not_undone_stays_as_sent() {
        assert_eq!(decoded(None, b"plain", 100), None);
        assert_eq!(decoded(Some(b"identity"), b"plain", 100), None);
        assert_eq!(decoded(Some(b"br"), b"\x0b\x02", 100), None);
        assert_eq!(decoded(Some(b"gzip, br"), b"x", 100), None);
        assert_eq!(
            decoded(Some(b"gzip, gzip, gzip"), b"x", 100),
            None,
            "over the layer limit"
        );
    }

    #[test]
    fn cut_bodies_and_bombs_are_bounded() {
        let text: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gzip(&text);
        // Cut in half: what decoded before the cut, a prefix of the text.
        let half = decoded(Some(b"gzip"), &z[..z.len() / 2], 1 << 20).expect("partial");
        assert!(!half.is_empty() && half.len() < text.len());
        assert_eq!(&text[..half.len()], half.as_slice());
        // Garbage decodes to nothing rather than failing.
        assert_eq!(
            decoded(Some(b"gzip"), b"not gzip at all", 100),
            Some(Vec::new())
        );
        // A bomb (10 MB of zeros in ~10 KB) stops at the limit.
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            decoded(Some(b"gzip"), &bomb, 1000).map(|d| d.len()),
            Some(1000)
        );
    }
}
