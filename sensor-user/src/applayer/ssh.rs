//! SSH parser (work in progress).
use super::{AppParser, Dir, Output};

/// Whether `data` starts like an SSH banner.
pub fn probe(data: &[u8]) -> bool {
    data.starts_with(b"SSH-")
}

/// SSH parser state.
#[derive(Debug, Default)]
pub struct SshParser {}

impl SshParser {
    /// New parser.
    pub fn new() -> SshParser {
        SshParser {}
    }
}

impl AppParser for SshParser {
    fn name(&self) -> &'static str {
        "ssh"
    }
    fn parse(&mut self, _dir: Dir, _data: &[u8], _out: &mut Output) {}
}
