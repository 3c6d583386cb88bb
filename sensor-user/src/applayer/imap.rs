//! IMAP: recognised (so flows say `app_proto: imap`), not parsed further yet.

use super::{AppParser, Dir, Output};

/// `true` for an IMAP server greeting (`* OK`, `* PREAUTH`, `* BYE`, RFC 9051 7.1).
pub fn probe(data: &[u8]) -> bool {
    [b"* OK".as_slice(), b"* PREAUTH", b"* BYE"]
        .iter()
        .any(|g| data.starts_with(g))
}

/// Keeps the flow's protocol known; writes no records.
#[derive(Debug, Default)]
pub struct ImapParser;

impl AppParser for ImapParser {
    fn name(&self) -> &'static str {
        "imap"
    }

    fn parse(&mut self, _dir: Dir, _data: &[u8], _out: &mut Output) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        assert!(probe(b"* OK IMAP4rev1 server ready\r\n"));
        assert!(probe(b"* PREAUTH hi\r\n"));
        assert!(!probe(b"+OK POP3 ready\r\n"));
        assert!(!probe(b"220 smtp ready\r\n"));
    }
}
