//! TLS parser (work in progress).
use super::{AppParser, Dir, Output};

/// Whether `data` starts like a TLS stream.
pub fn probe(data: &[u8]) -> bool {
    data.len() >= 3 && data[0] == 0x16 && data[1] == 3
}

/// TLS parser state.
#[derive(Debug, Default)]
pub struct TlsParser {}

impl TlsParser {
    /// New parser.
    pub fn new() -> TlsParser {
        TlsParser {}
    }
}

impl AppParser for TlsParser {
    fn name(&self) -> &'static str {
        "tls"
    }
    fn parse(&mut self, _dir: Dir, _data: &[u8], _out: &mut Output) {}
}
