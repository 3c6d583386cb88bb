//! Line protocols that can turn into TLS in the middle of the connection: SMTP and IMAP
//! `STARTTLS`, FTP `AUTH TLS` (RFC 3207, RFC 9051 6.2.1, RFC 4217). They are recognised, so
//! that flows say what they carry, and watched line by line for the upgrade: once the client
//! asked for it and the server agreed, the rest of the connection goes back to protocol
//! detection, which finds the TLS handshake (and Suricata's `app_proto: tls`,
//! `app_proto_orig: smtp`). Their own commands are not logged yet.

use super::{AppParser, Dir, Leftover, Output};

/// Which protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Smtp,
    Ftp,
    Imap,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Smtp => "smtp",
            Kind::Ftp => "ftp",
            Kind::Imap => "imap",
        }
    }
}

/// The protocol `data`, the first bytes of `dir`, starts, by the openings Suricata's
/// protocol detection looks for: the client's first SMTP or FTP command, an FTP or IMAP
/// server's greeting. (An SMTP server's `220` greeting is an FTP server's too: SMTP is told
/// by the client's `EHLO`.)
pub fn probe(dir: Dir, data: &[u8]) -> Option<Kind> {
    let starts = |pats: &[&[u8]]| {
        pats.iter().any(|p| {
            data.get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
        })
    };
    match dir {
        Dir::ToServer if starts(&[b"EHLO", b"HELO"]) => Some(Kind::Smtp),
        Dir::ToServer if starts(&[b"USER ", b"PASS ", b"PORT ", b"FEAT", b"AUTH TLS"]) => {
            Some(Kind::Ftp)
        }
        Dir::ToClient if starts(&[b"220 ("]) => Some(Kind::Ftp),
        Dir::ToClient if starts(&[b"* OK", b"* PREAUTH", b"* BYE"]) => Some(Kind::Imap),
        _ => None,
    }
}

/// Longest line kept while waiting for its end; a longer one is dropped (the upgrade
/// commands and replies are short), so a peer sending no line ends costs bounded memory.
const MAX_LINE: usize = 4096;

/// One direction's bytes since its last complete line.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
    /// The current line grew past [`MAX_LINE`]: skip to its end.
    skipping: bool,
}

impl Lines {
    /// Feeds `data`; calls `line` for each complete line (without its line end) with the
    /// bytes that follow it in `data`. `line` returns whether to stop (the protocol
    /// changed): what followed is then the caller's.
    fn feed(&mut self, data: &[u8], line: &mut dyn FnMut(&[u8], &[u8]) -> bool) {
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let (head, tail) = (&rest[..nl], &rest[nl + 1..]);
            rest = tail;
            if std::mem::take(&mut self.skipping) {
                self.partial.clear();
                continue;
            }
            // A line inside `data` is handed over where it lies; only one that began in an
            // earlier segment is put together (in a buffer kept for the next one).
            let full: &[u8] = if self.partial.is_empty() {
                head
            } else {
                self.partial.extend_from_slice(head);
                &self.partial
            };
            let full = full.strip_suffix(b"\r").unwrap_or(full);
            let stop = line(full, tail);
            self.partial.clear();
            if stop {
                return;
            }
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_LINE {
                self.partial.clear();
                self.skipping = true;
            }
        }
    }
}

/// What the client asked for and is waiting on.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Nothing,
    /// The upgrade; for IMAP, under this tag.
    Upgrade(Vec<u8>),
}

/// A line protocol watched for its upgrade to TLS.
#[derive(Debug)]
pub struct StartTls {
    kind: Kind,
    lines: [Lines; 2],
    asked: Asked,
    /// The upgrade happened: nothing more is read here.
    done: bool,
}

impl StartTls {
    pub fn new(kind: Kind) -> StartTls {
        StartTls {
            kind,
            lines: [Lines::default(), Lines::default()],
            asked: Asked::Nothing,
            done: false,
        }
    }

    /// The upgrade command in a client line, if it is one (its IMAP tag).
    fn upgrade_command(&self, line: &[u8]) -> Option<Vec<u8>> {
        // Called on every client line of the connection (a mail body's among them): the
        // words are looked at in place, nothing is allocated for a line that is no upgrade.
        let mut words = line.split(|b| *b == b' ').filter(|w| !w.is_empty());
        let (first, second) = (words.next(), words.next());
        let more = words.next().is_some();
        let is = |w: Option<&[u8]>, s: &[u8]| w.is_some_and(|w| w.eq_ignore_ascii_case(s));
        match self.kind {
            Kind::Smtp => (second.is_none() && is(first, b"STARTTLS")).then(Vec::new),
            Kind::Ftp => (is(first, b"AUTH")
                && ["TLS", "SSL", "TLS-C", "TLS-P"]
                    .iter()
                    .any(|m| is(second, m.as_bytes())))
            .then(Vec::new),
            Kind::Imap => {
                (!more && is(second, b"STARTTLS")).then(|| first.unwrap_or_default().to_vec())
            }
        }
    }

    /// What a server line says of the upgrade asked for under `tag`: `Some(true)` agreed,
    /// `Some(false)` refused, `None` not its answer (an IMAP untagged line, an SMTP
    /// continuation line).
    fn answer(&self, line: &[u8], tag: &[u8]) -> Option<bool> {
        match self.kind {
            Kind::Smtp | Kind::Ftp => {
                let code = line.get(..3)?;
                if !code.iter().all(u8::is_ascii_digit) {
                    return Some(false);
                }
                if line.get(3) == Some(&b'-') {
                    return None;
                }
                let yes: &[u8] = if self.kind == Kind::Smtp {
                    b"220"
                } else {
                    b"234"
                };
                Some(code == yes)
            }
            Kind::Imap => {
                let mut words = line.split(|b| *b == b' ');
                if words.next() != Some(tag) {
                    return None;
                }
                Some(words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"OK")))
            }
        }
    }
}

impl AppParser for StartTls {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn parse(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        if self.done {
            return;
        }
        let mut upgraded: Option<Vec<u8>> = None;
        let mut lines = std::mem::take(&mut self.lines);
        match dir {
            Dir::ToServer => lines[0].feed(data, &mut |line, _| {
                // A command while one is pending replaces it: only the last one counts.
                self.asked = match self.upgrade_command(line) {
                    Some(tag) => Asked::Upgrade(tag),
                    None => Asked::Nothing,
                };
                false
            }),
            Dir::ToClient => lines[1].feed(data, &mut |line, rest| {
                let Asked::Upgrade(tag) = &self.asked else {
                    return false;
                };
                match self.answer(line, tag) {
                    Some(true) => {
                        upgraded = Some(rest.to_vec());
                        true
                    }
                    Some(false) => {
                        self.asked = Asked::Nothing;
                        false
                    }
                    None => false,
                }
            }),
        }
        self.lines = lines;
        if let Some(to_client) = upgraded {
            self.done = true;
            // The client speaks TLS only after the server's answer: what it sent before is
            // the protocol's. The server's bytes after its answer are the handshake's.
            out.switch_protocol = Some(Leftover {
                to_server: Vec::new(),
                to_client,
            });
        }
    }

    fn hands_over_name(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: Kind, parts: &[(Dir, &[u8])]) -> Option<Leftover> {
        let mut p = StartTls::new(kind);
        for (dir, data) in parts {
            let mut out = Output::new(false);
            p.parse(*dir, data, &mut out);
            if let Some(left) = out.switch_protocol {
                return Some(left);
            }
        }
        None
    }

    #[test]
    fn protocols_are_told_by_their_openings() {
        assert_eq!(
            probe(Dir::ToServer, b"EHLO mx.example\r\n"),
            Some(Kind::Smtp)
        );
        assert_eq!(probe(Dir::ToServer, b"helo a\r\n"), Some(Kind::Smtp));
        assert_eq!(probe(Dir::ToServer, b"USER anonymous\r\n"), Some(Kind::Ftp));
        assert_eq!(probe(Dir::ToServer, b"AUTH TLS\r\n"), Some(Kind::Ftp));
        assert_eq!(
            probe(Dir::ToClient, b"220 (vsFTPd 3.0.5)\r\n"),
            Some(Kind::Ftp)
        );
        assert_eq!(
            probe(Dir::ToClient, b"* OK IMAP4rev1 ready\r\n"),
            Some(Kind::Imap)
        );
        assert_eq!(probe(Dir::ToClient, b"* PREAUTH hi\r\n"), Some(Kind::Imap));
        assert_eq!(
            probe(Dir::ToClient, b"220 mx.example ESMTP\r\n"),
            None,
            "an SMTP and an FTP greeting look alike"
        );
        assert_eq!(probe(Dir::ToServer, b"EHL"), None);
        assert_eq!(probe(Dir::ToClient, b"+OK POP3 ready\r\n"), None);
        assert_eq!(probe(Dir::ToServer, b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn smtp_upgrades_after_the_servers_220() {
        let hello: &[u8] = b"\x16\x03\x01\x00\x05hello";
        let mut reply = b"220 2.0.0 Ready to start TLS\r\n".to_vec();
        reply.extend_from_slice(b"\x16\x03\x03");
        let left = run(
            Kind::Smtp,
            &[
                (Dir::ToClient, b"220 mx ESMTP\r\n"),
                (Dir::ToServer, b"EHLO c\r\n"),
                (Dir::ToClient, b"250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
                (Dir::ToServer, b"STARTTLS\r\n"),
                (Dir::ToClient, &reply),
                (Dir::ToServer, hello),
            ],
        )
        .expect("upgraded");
        assert_eq!(
            left.to_client, b"\x16\x03\x03",
            "the server's bytes after its answer"
        );
        assert!(left.to_server.is_empty());
    }

    #[test]
    fn a_refused_or_unasked_upgrade_changes_nothing() {
        assert!(run(
            Kind::Smtp,
            &[
                (Dir::ToServer, b"STARTTLS\r\n"),
                (Dir::ToClient, b"454 4.7.0 TLS not available\r\n"),
                (Dir::ToClient, b"220 stray\r\n"),
            ],
        )
        .is_none());
        assert!(
            run(Kind::Smtp, &[(Dir::ToClient, b"220 mx ESMTP\r\n")]).is_none(),
            "a greeting is no answer to an upgrade"
        );
        assert!(run(
            Kind::Smtp,
            &[
                (Dir::ToServer, b"MAIL FROM:<starttls@a>\r\n"),
                (Dir::ToClient, b"220 ok\r\n"),
            ],
        )
        .is_none());
    }

    #[test]
    fn ftp_upgrades_after_234_and_imap_after_its_tagged_ok() {
        let left = run(
            Kind::Ftp,
            &[
                (Dir::ToClient, b"220 (vsFTPd 3.0.5)\r\n"),
                (Dir::ToServer, b"AUTH TLS\r\n"),
                (Dir::ToClient, b"234 Proceed with negotiation.\r\n"),
            ],
        );
        assert!(left.is_some());
        let left = run(
            Kind::Imap,
            &[
                (Dir::ToClient, b"* OK ready\r\n"),
                (Dir::ToServer, b"a1 CAPABILITY\r\na2 STARTTLS\r\n"),
                (Dir::ToClient, b"* CAPABILITY IMAP4rev1\r\na1 OK done\r\n"),
                (Dir::ToClient, b"a2 OK Begin TLS negotiation now\r\n"),
            ],
        );
        assert!(left.is_some(), "the answer under the command's tag");
        assert!(run(
            Kind::Imap,
            &[
                (Dir::ToServer, b"a2 STARTTLS\r\n"),
                (Dir::ToClient, b"a2 BAD no\r\n"),
            ],
        )
        .is_none());
    }

    #[test]
    fn lines_split_across_segments_and_overlong_lines_are_bounded() {
        let left = run(
            Kind::Smtp,
            &[
                (Dir::ToServer, b"START"),
                (Dir::ToServer, b"TLS\r"),
                (Dir::ToServer, b"\n"),
                (Dir::ToClient, b"22"),
                (Dir::ToClient, b"0 go\r\n"),
            ],
        );
        assert!(left.is_some());
        let mut p = StartTls::new(Kind::Smtp);
        let mut out = Output::new(false);
        for _ in 0..10 {
            p.parse(Dir::ToServer, &[b'x'; 1000], &mut out);
        }
        assert!(p.lines[0].partial.len() <= MAX_LINE, "no line end: bounded");
        // The overlong line ends; the next one is read again.
        p.parse(Dir::ToServer, b"\r\nSTARTTLS\r\n", &mut out);
        p.parse(Dir::ToClient, b"220 go\r\n", &mut out);
        assert!(out.switch_protocol.is_some());
    }
}
