//! JA3 / JA3S and JA4 fingerprints of hellos, as Suricata computes them.

use super::*;

/// A JA3 (client) or JA3S (server) fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ja3 {
    pub(super) string: String,
    pub(super) hash: String,
}

impl Ja3 {
    pub(super) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("hash".into(), Value::String(self.hash.clone()));
        m.insert("string".into(), Value::String(self.string.clone()));
        Value::Object(m)
    }
}

/// The fields of a JA3 string being collected from a hello.
#[derive(Debug, Default)]
pub(super) struct Ja3Parts {
    pub(super) version: u16,
    pub(super) ciphers: Vec<u16>,
    pub(super) extensions: Vec<u16>,
    pub(super) curves: Vec<u16>,
    pub(super) point_formats: Vec<u8>,
}

impl Ja3Parts {
    /// "version,ciphers,extensions,curves,point formats" for a client (Salesforce JA3),
    /// "version,cipher,extensions" for a server (JA3S); values in decimal joined by '-'.
    pub(super) fn finish(&self, client: bool) -> Ja3 {
        fn join<T: ToString>(v: &[T]) -> String {
            v.iter().map(T::to_string).collect::<Vec<_>>().join("-")
        }
        let mut string = format!(
            "{},{},{}",
            self.version,
            join(&self.ciphers),
            join(&self.extensions)
        );
        if client {
            string.push(',');
            string.push_str(&join(&self.curves));
            string.push(',');
            string.push_str(&join(&self.point_formats));
        }
        let hash = hex(&Md5::digest(string.as_bytes()));
        Ja3 { string, hash }
    }
}

/// JA4 (FoxIO) as Suricata 8 computes it (`rust/src/ja4.rs`): "t", version, "d"/"i",
/// cipher and extension counts (max 99), first/last character of the first ALPN, then the
/// truncated SHA-256 of the sorted ciphers and of the sorted extensions (without SNI and
/// ALPN) "_" signature algorithms. Suricata always keeps the "_" even without signature
/// algorithms, and hashes an empty cipher list rather than writing zeros.
pub(super) fn ja4(hs: &HandshakeParams) -> String {
    let version = match hs.version {
        Some(TLS_VERSION_13) => "13",
        Some(TLS_VERSION_12) => "12",
        Some(TLS_VERSION_11) => "11",
        Some(TLS_VERSION_10) => "10",
        Some(SSL_VERSION_3) => "s3",
        _ => "00",
    };
    let alpn = ja4_alpn(hs.alpns.first().map(Vec::as_slice));
    let ja4_a = format!(
        "t{version}{}{:02}{:02}{}{}",
        if hs.domain { 'd' } else { 'i' },
        hs.ciphers.len().min(99),
        hs.extensions.len().min(99),
        alpn[0],
        alpn[1]
    );
    let mut ciphers = hs.ciphers.clone();
    ciphers.sort_unstable();
    let mut exts: Vec<u16> = hs
        .extensions
        .iter()
        .copied()
        .filter(|&e| e != EXT_SNI && e != EXT_ALPN)
        .collect();
    exts.sort_unstable();
    let b_raw = hex_list(&ciphers);
    let c_raw = format!("{}_{}", hex_list(&exts), hex_list(&hs.sig_algs));
    let mut b = hex(&Sha256::digest(b_raw.as_bytes()));
    b.truncate(12);
    let mut c = hex(&Sha256::digest(c_raw.as_bytes()));
    c.truncate(12);
    format!("{ja4_a}_{b}_{c}")
}

/// The two ALPN characters of JA4_a: "00" without ALPN or for a GREASE value, the first
/// and last characters when both are alphanumeric, otherwise the first nibble of the first
/// byte and the last nibble of the last byte in hex.
pub(super) fn ja4_alpn(alpn: Option<&[u8]>) -> [char; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let Some(alpn) = alpn else {
        return ['0', '0'];
    };
    let (Some(&first), Some(&last)) = (alpn.first(), alpn.last()) else {
        return ['0', '0'];
    };
    if alpn.len() == 2 && is_grease(u16::from_be_bytes([first, last])) {
        return ['0', '0'];
    }
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        [char::from(first), char::from(last)]
    } else {
        [
            char::from(HEX[usize::from(first >> 4)]),
            char::from(HEX[usize::from(last & 0xf)]),
        ]
    }
}

pub(super) fn hex_list(v: &[u16]) -> String {
    v.iter()
        .map(|x| format!("{x:04x}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 8701 GREASE values (0x?a?a with equal bytes).
pub(super) fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}
