//! SSH parser emulating Suricata 8's `ssh` app-layer (`rust/src/ssh/ssh.rs`, `parser.rs`,
//! `logger.rs`).
//!
//! Each direction starts with its identification line ("SSH-protoversion-softwareversion
//! comments", RFC 4253 4.2), then carries binary packets. The parser keeps the protocol and
//! software versions, decodes each side's KEXINIT into its HASSH fingerprint (Salesforce
//! HASSH: MD5 of "kex;encryption;mac;compression" with the client-to-server lists for the
//! client and the server-to-client lists for the server), and stops at NEWKEYS, after which
//! the direction is encrypted.
//!
//! The EVE `ssh` record is written once per flow, at the parse call where Suricata's log
//! condition first holds (both banners complete; with HASSH enabled, both sides past
//! NEWKEYS), or at [`AppParser::finish`] with whatever was seen. HASSH is disabled in
//! Suricata 8's default configuration (enabled by `app-layer.protocols.ssh.hassh` or a rule
//! using a HASSH keyword), so the record carries `hassh` only when [`SshConfig`] enables it;
//! the sticky buffers are always produced.

use super::{AppParser, AppRecord, Buffer, Dir, Output};
use md5::{Digest, Md5};
use serde_json::{Map, Value};

/// A banner line this long or longer is reported (`long_banner`); without its line end it
/// stops being buffered.
const MAX_BANNER_LEN: usize = 256;
/// packet_length(4) padding_length(1) message code(1).
const RECORD_HDR_LEN: usize = 6;
/// Longest KEXINIT reassembled for HASSH (Suricata's `SSH_MAX_REASSEMBLED_RECORD_LEN`).
const MAX_KEXINIT_LEN: usize = 65535;
const MSG_KEXINIT: u8 = 20;
const MSG_NEWKEYS: u8 = 21;

// Suricata's SSH event names.
const EV_INVALID_BANNER: &str = "invalid_banner";
const EV_LONG_BANNER: &str = "long_banner";
const EV_INVALID_RECORD: &str = "invalid_record";
const EV_LONG_KEX_RECORD: &str = "long_kex_record";

/// Whether `data`, the first bytes of a TCP stream in either direction, starts an SSH
/// identification line (Suricata matches "SSH-" case-insensitively at offset 0).
pub fn probe(data: &[u8]) -> bool {
    data.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SSH-"))
}

/// What the EVE record holds beyond Suricata's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshConfig {
    /// HASSH enabled (Suricata: `app-layer.protocols.ssh.hassh: yes`, or a rule using a
    /// HASSH keyword): the record carries `hassh` and is written once both sides passed
    /// NEWKEYS. Default off.
    pub hassh: bool,
}

/// SSH parser state for one flow.
#[derive(Debug, Default)]
pub struct SshParser {
    config: SshConfig,
    client: Side,
    server: Side,
    /// A fatal error: Suricata disables the app layer for the flow.
    failed: bool,
    /// The record was written (or the logger ran).
    logged: bool,
}

impl SshParser {
    /// A parser with Suricata 8's default configuration (HASSH off).
    pub fn new() -> SshParser {
        Self::with_config(SshConfig::default())
    }

    /// A parser with the given configuration.
    pub fn with_config(config: SshConfig) -> SshParser {
        SshParser {
            config,
            ..SshParser::default()
        }
    }

    fn side(&mut self, dir: Dir) -> &mut Side {
        match dir {
            Dir::ToServer => &mut self.client,
            Dir::ToClient => &mut self.server,
        }
    }

    /// Suricata's log condition, checked after every parse call.
    fn log_condition(&self) -> bool {
        let want = if self.config.hassh {
            ConnState::Finished
        } else {
            ConnState::BannerDone
        };
        self.client.progress == want && self.server.progress == want
    }

    fn log(&mut self, dir: Dir, out: &mut Output) {
        self.logged = true;
        if let Some(object) = self.eve_object() {
            out.records.push(AppRecord {
                event_type: "ssh",
                object,
                dir,
                tx_id: None,
            });
        }
    }

    /// The EVE `ssh` object, `None` when neither banner was seen.
    fn eve_object(&self) -> Option<Value> {
        if self.client.protover.is_empty() && self.server.protover.is_empty() {
            return None;
        }
        let mut m = Map::new();
        for (side, key) in [(&self.client, "client"), (&self.server, "server")] {
            if side.protover.is_empty() {
                continue;
            }
            let mut s = Map::new();
            s.insert(
                "proto_version".into(),
                Value::String(bytes_to_string(&side.protover)),
            );
            if !side.swver.is_empty() {
                s.insert(
                    "software_version".into(),
                    Value::String(bytes_to_string(&side.swver)),
                );
            }
            if self.config.hassh {
                if let Some(h) = &side.hassh {
                    let mut hm = Map::new();
                    hm.insert("hash".into(), Value::String(h.hash.clone()));
                    hm.insert("string".into(), Value::String(bytes_to_string(&h.string)));
                    s.insert("hassh".into(), Value::Object(hm));
                }
            }
            m.insert(key.into(), Value::Object(s));
        }
        Some(Value::Object(m))
    }

    /// Feeds `data` of `dir` through the banner and record stages.
    fn parse_dir(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        let hassh_events = self.config.hassh;
        let side = self.side(dir);
        let mut input = data;
        while !input.is_empty() {
            let step = match side.stage {
                Stage::Banner => side.banner(dir, input, out),
                Stage::WaitEol => side.wait_eol(input),
                Stage::Records => side.records(dir, input, hassh_events, out),
                Stage::Encrypted => return,
            };
            match step {
                Ok(n) => input = &input[n.min(input.len())..],
                Err(Fatal) => {
                    self.failed = true;
                    return;
                }
            }
        }
    }
}

impl AppParser for SshParser {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn parse(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        if !self.failed && !self.side(dir).dead {
            self.parse_dir(dir, data, out);
        }
        // Both sides sent NEWKEYS: the rest of the connection is encrypted.
        if self.client.progress == ConnState::Finished
            && self.server.progress == ConnState::Finished
        {
            out.encrypted = true;
        }
        if !self.logged && self.log_condition() {
            self.log(dir, out);
        }
    }

    fn gap(&mut self, dir: Dir, len: usize, out: &mut Output) {
        let _ = (len, out);
        // Packets cannot be re-framed after lost bytes: stop parsing this direction.
        let side = self.side(dir);
        side.dead = true;
        side.line = Vec::new();
        side.hdr = Vec::new();
        side.kex = None;
    }

    fn finish(&mut self, out: &mut Output) {
        // At flow end Suricata logs the transaction unconditionally.
        if !self.logged {
            self.log(Dir::ToServer, out);
        }
    }
}

/// A fatal error: the flow's SSH parsing stops.
struct Fatal;

/// Progress of one side (Suricata's `SSHConnectionState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum ConnState {
    #[default]
    InProgress,
    BannerWaitEol,
    BannerDone,
    Finished,
}

/// What the next bytes of a side are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stage {
    /// The identification line.
    #[default]
    Banner,
    /// The rest of an over-long identification line.
    WaitEol,
    /// Binary packets in clear.
    Records,
    /// Past NEWKEYS: nothing more to inspect.
    Encrypted,
}

/// A HASSH fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hassh {
    string: Vec<u8>,
    hash: String,
}

/// One side of the connection.
#[derive(Debug, Default)]
struct Side {
    progress: ConnState,
    stage: Stage,
    /// Start of the identification line (less than `MAX_BANNER_LEN` bytes).
    line: Vec<u8>,
    protover: Vec<u8>,
    swver: Vec<u8>,
    /// Start of a packet header (less than `RECORD_HDR_LEN` bytes).
    hdr: Vec<u8>,
    /// Packet bytes still to skip.
    skip: usize,
    /// After the skip the side is encrypted (the packet was NEWKEYS).
    encrypted_after_skip: bool,
    /// A KEXINIT body being collected, with its full length.
    kex: Option<(Vec<u8>, usize)>,
    hassh: Option<Hassh>,
    /// Parsing stopped after a gap.
    dead: bool,
}

impl Side {
    /// The identification line. Returns the bytes of `input` consumed.
    fn banner(&mut self, dir: Dir, input: &[u8], out: &mut Output) -> Result<usize, Fatal> {
        // The buffered start of the line, if any, is less than MAX_BANNER_LEN bytes.
        let owned;
        let (buf, prefix) = if self.line.is_empty() {
            (input, 0)
        } else {
            let prefix = self.line.len();
            let mut b = std::mem::take(&mut self.line);
            b.extend_from_slice(input);
            owned = b;
            (owned.as_slice(), prefix)
        };
        match line_end(buf) {
            Some((end, next)) => {
                let line = &buf[..end];
                let Some((protover, swver)) = parse_banner(line) else {
                    out.anomalies.push(EV_INVALID_BANNER);
                    return Err(Fatal);
                };
                self.set_banner(dir, protover, swver, out);
                self.progress = ConnState::BannerDone;
                self.stage = Stage::Records;
                if line.len() >= MAX_BANNER_LEN {
                    out.anomalies.push(EV_LONG_BANNER);
                }
                Ok(next.saturating_sub(prefix))
            }
            None if buf.len() < MAX_BANNER_LEN => {
                self.line = buf.to_vec();
                Ok(input.len())
            }
            None => {
                // Too long to wait for its end: take the versions from what is there.
                let Some((protover, swver)) = parse_banner(buf) else {
                    out.anomalies.push(EV_INVALID_BANNER);
                    return Err(Fatal);
                };
                self.set_banner(dir, protover, swver, out);
                self.progress = ConnState::BannerWaitEol;
                self.stage = Stage::WaitEol;
                out.anomalies.push(EV_LONG_BANNER);
                Ok(input.len())
            }
        }
    }

    fn set_banner(&mut self, dir: Dir, protover: &[u8], swver: &[u8], out: &mut Output) {
        self.protover = protover.to_vec();
        self.swver = swver.to_vec();
        out.buffers
            .push((dir, Buffer::SshProto, self.protover.clone()));
        if !self.swver.is_empty() {
            out.buffers
                .push((dir, Buffer::SshSoftware, self.swver.clone()));
        }
    }

    /// The rest of an over-long banner line: skipped up to its end. The side keeps
    /// Suricata's "waiting for end of line" progress.
    fn wait_eol(&mut self, input: &[u8]) -> Result<usize, Fatal> {
        match line_end(input) {
            Some((_, next)) => {
                self.stage = Stage::Records;
                Ok(next)
            }
            None => Ok(input.len()),
        }
    }

    /// Binary packets. Returns the bytes of `input` consumed.
    fn records(
        &mut self,
        dir: Dir,
        input: &[u8],
        hassh_events: bool,
        out: &mut Output,
    ) -> Result<usize, Fatal> {
        if self.skip > 0 {
            let n = self.skip.min(input.len());
            self.skip -= n;
            if self.skip == 0 && self.encrypted_after_skip {
                self.stage = Stage::Encrypted;
            }
            return Ok(n);
        }
        if let Some((mut body, want)) = self.kex.take() {
            let n = (want - body.len()).min(input.len());
            body.extend_from_slice(&input[..n]);
            if body.len() < want {
                self.kex = Some((body, want));
            } else {
                self.kexinit(dir, &body, out);
            }
            return Ok(n);
        }
        // Assemble the 6-byte header, possibly across calls.
        let taken = (RECORD_HDR_LEN - self.hdr.len()).min(input.len());
        self.hdr.extend_from_slice(&input[..taken]);
        let [l0, l1, l2, l3, _padding, msg] = *self.hdr.as_slice() else {
            return Ok(taken);
        };
        self.hdr.clear();
        let pkt_len = u32::from_be_bytes([l0, l1, l2, l3]);
        // packet_length covers padding_length and the message code at least.
        if pkt_len <= 1 {
            out.anomalies.push(EV_INVALID_RECORD);
            return Err(Fatal);
        }
        let body_len = usize::try_from(pkt_len - 2).unwrap_or(usize::MAX);
        match msg {
            MSG_NEWKEYS => {
                self.progress = ConnState::Finished;
                self.skip = body_len;
                self.encrypted_after_skip = true;
                if body_len == 0 {
                    self.stage = Stage::Encrypted;
                }
            }
            MSG_KEXINIT if self.hassh.is_none() => {
                if body_len < MAX_KEXINIT_LEN {
                    self.kex = Some((Vec::with_capacity(body_len), body_len));
                    if body_len == 0 {
                        self.kex = None;
                        self.kexinit(dir, &[], out);
                    }
                } else {
                    if hassh_events {
                        out.anomalies.push(EV_LONG_KEX_RECORD);
                    }
                    self.skip = body_len;
                }
            }
            _ => self.skip = body_len,
        }
        Ok(taken)
    }

    /// A complete KEXINIT body (cookie, name-lists, padding): computes HASSH.
    fn kexinit(&mut self, dir: Dir, body: &[u8], out: &mut Output) {
        let Some(kex) = KexInit::parse(body) else {
            return;
        };
        let client = dir == Dir::ToServer;
        let (enc, mac, comp) = if client {
            (kex.enc_c2s, kex.mac_c2s, kex.comp_c2s)
        } else {
            (kex.enc_s2c, kex.mac_s2c, kex.comp_s2c)
        };
        let mut string = Vec::with_capacity(kex.kex.len() + enc.len() + mac.len() + comp.len() + 3);
        for (i, part) in [kex.kex, enc, mac, comp].into_iter().enumerate() {
            if i > 0 {
                string.push(b';');
            }
            string.extend_from_slice(part);
        }
        let hash: String = Md5::digest(&string)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (hash_name, string_name) = if client {
            (Buffer::SshHassh, Buffer::SshHasshString)
        } else {
            (Buffer::SshHasshServer, Buffer::SshHasshServerString)
        };
        out.buffers
            .push((dir, hash_name, hash.clone().into_bytes()));
        out.buffers.push((dir, string_name, string.clone()));
        self.hassh = Some(Hassh { string, hash });
    }
}

/// The name-lists of a KEXINIT that HASSH uses (RFC 4253 7.1).
struct KexInit<'a> {
    kex: &'a [u8],
    enc_c2s: &'a [u8],
    enc_s2c: &'a [u8],
    mac_c2s: &'a [u8],
    mac_s2c: &'a [u8],
    comp_c2s: &'a [u8],
    comp_s2c: &'a [u8],
}

impl<'a> KexInit<'a> {
    /// Parses cookie(16), ten name-lists, first_kex_packet_follows(1) and reserved(4).
    fn parse(body: &'a [u8]) -> Option<Self> {
        let mut rest = body.get(16..)?;
        let mut lists: [&[u8]; 10] = [&[]; 10];
        for list in &mut lists {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            if len > tail.len() {
                return None;
            }
            let (l, tail) = tail.split_at(len);
            *list = l;
            rest = tail;
        }
        // first_kex_packet_follows and the reserved word must be present.
        if rest.len() < 5 {
            return None;
        }
        let [kex, _host_key, enc_c2s, enc_s2c, mac_c2s, mac_s2c, comp_c2s, comp_s2c, _, _] = lists;
        Some(KexInit {
            kex,
            enc_c2s,
            enc_s2c,
            mac_c2s,
            mac_s2c,
            comp_c2s,
            comp_s2c,
        })
    }
}

/// Finds the end of a line as Suricata's `ssh_parse_line`: "\n", "\r\n", or a "\r" that is
/// not the last byte. Returns (end of the line, start of what follows), or `None` when the
/// line is incomplete.
fn line_end(buf: &[u8]) -> Option<(usize, usize)> {
    let end = buf.iter().position(|&b| b == b'\n' || b == b'\r')?;
    match (buf[end], buf.get(end + 1)) {
        (b'\n', _) => Some((end, end + 1)),
        (_, Some(b'\n')) => Some((end, end + 2)),
        (_, Some(_)) => Some((end, end + 1)),
        (_, None) => None,
    }
}

/// Splits an identification line "SSH-protoversion-softwareversion[ comments]" into the
/// protocol version (non-empty, up to the next '-') and the software version (up to the
/// first space; may be empty).
fn parse_banner(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = line.strip_prefix(b"SSH-")?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    if dash == 0 {
        return None;
    }
    let protover = &rest[..dash];
    let after = &rest[dash + 1..];
    let end = after
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(after.len());
    Some((protover, &after[..end]))
}

/// Bytes as Suricata's JSON builder writes them: UTF-8 as is, otherwise ASCII kept and other
/// bytes as `\xNN`.
fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b
            .iter()
            .map(|&c| {
                if c < 0x80 {
                    char::from(c).to_string()
                } else {
                    format!("\\x{c:02x}")
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The HASSH README / Suricata parser.rs example lists.
    const KEX_CLIENT: &str = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,\
        ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,\
        diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,\
        diffie-hellman-group14-sha1,ext-info-c";
    const KEX_SERVER: &str = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,\
        ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,\
        diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,\
        diffie-hellman-group14-sha1";
    const ENC: &str = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,\
        aes128-gcm@openssh.com,aes256-gcm@openssh.com";
    const MAC: &str = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,\
        hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,\
        umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";
    const COMP_CLIENT: &str = "none,zlib@openssh.com,zlib";
    const COMP_SERVER: &str = "none,zlib@openssh.com";
    /// Published HASSH values for these lists.
    const HASSH_CLIENT: &str = "ec7378c1a92f5a8dde7e8b7a1ddf33d1";
    const HASSH_SERVER: &str = "b12d2871a1189eff20364cf5333619ee";

    /// A binary packet (RFC 4253 6) with `payload` and 4..11 bytes of padding to a multiple
    /// of 8.
    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut pad = 8 - (5 + payload.len()) % 8;
        if pad < 4 {
            pad += 8;
        }
        let len = u32::try_from(1 + payload.len() + pad).expect("test data fits");
        let mut v = len.to_be_bytes().to_vec();
        v.push(u8::try_from(pad).expect("small"));
        v.extend_from_slice(payload);
        v.extend(std::iter::repeat_n(0u8, pad));
        v
    }

    fn name_list(s: &str) -> Vec<u8> {
        let mut v = u32::try_from(s.len()).expect("fits").to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    /// A KEXINIT whose lists for the other direction differ, so that the direction used
    /// for HASSH is checked.
    fn kexinit(client: bool) -> Vec<u8> {
        let (kex, comp) = if client {
            (KEX_CLIENT, COMP_CLIENT)
        } else {
            (KEX_SERVER, COMP_SERVER)
        };
        let mut p = vec![MSG_KEXINIT];
        p.extend([0x5a; 16]);
        p.extend(name_list(kex));
        p.extend(name_list("ssh-ed25519"));
        let (mine, other) = (ENC, "3des-cbc");
        let (mmac, omac) = (MAC, "hmac-md5");
        let (mcomp, ocomp) = (comp, "zlib");
        if client {
            for l in [mine, other, mmac, omac, mcomp, ocomp] {
                p.extend(name_list(l));
            }
        } else {
            for l in [other, mine, omac, mmac, ocomp, mcomp] {
                p.extend(name_list(l));
            }
        }
        p.extend(name_list(""));
        p.extend(name_list(""));
        p.push(0);
        p.extend([0; 4]);
        packet(&p)
    }

    fn newkeys() -> Vec<u8> {
        packet(&[MSG_NEWKEYS])
    }

    fn buffer(out: &Output, dir: Dir, name: Buffer) -> Option<&[u8]> {
        out.buffers
            .iter()
            .find(|(d, n, _)| *d == dir && *n == name)
            .map(|(_, _, v)| v.as_slice())
    }

    #[test]
    fn probe_banner() {
        assert!(probe(b"SSH-2.0-OpenSSH_9.6\r\n"));
        assert!(probe(b"ssh-2.0"));
        assert!(!probe(b"SSH"));
        assert!(!probe(b"GET / HTTP/1.1"));
        assert!(!probe(&[0x16, 3, 1, 0, 5]));
    }

    #[test]
    fn banners_log_when_both_are_complete() {
        let mut p = SshParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToClient, b"SSH-1.99-OpenSSH_3.1p1\n", &mut out);
        assert!(out.records.is_empty());
        p.parse(Dir::ToServer, b"SSH-2.0-OpenSSH_3.6.1p1\r\n", &mut out);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].event_type, "ssh");
        assert_eq!(out.records[0].dir, Dir::ToServer);
        assert_eq!(
            out.records[0].object,
            serde_json::json!({
                "client": {"proto_version": "2.0", "software_version": "OpenSSH_3.6.1p1"},
                "server": {"proto_version": "1.99", "software_version": "OpenSSH_3.1p1"}
            })
        );
        let keys: Vec<&str> = out.records[0].object["client"]
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["proto_version", "software_version"]);
        assert_eq!(
            buffer(&out, Dir::ToServer, Buffer::SshProto),
            Some(&b"2.0"[..])
        );
        assert_eq!(
            buffer(&out, Dir::ToClient, Buffer::SshProto),
            Some(&b"1.99"[..])
        );
        assert_eq!(
            buffer(&out, Dir::ToServer, Buffer::SshSoftware),
            Some(&b"OpenSSH_3.6.1p1"[..])
        );
        assert_eq!(
            buffer(&out, Dir::ToClient, Buffer::SshSoftware),
            Some(&b"OpenSSH_3.1p1"[..])
        );
        // Logged once.
        p.parse(Dir::ToServer, &kexinit(true), &mut out);
        p.finish(&mut out);
        assert_eq!(out.records.len(), 1);
        assert!(out.anomalies.is_empty());
    }

    #[test]
    fn only_server_banner_logs_at_flow_end() {
        let mut p = SshParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToClient, b"SSH-1.99-Cisco_server-1.24\r\n", &mut out);
        assert!(out.records.is_empty());
        p.finish(&mut out);
        assert_eq!(
            out.records[0].object,
            serde_json::json!({"server": {"proto_version": "1.99", "software_version": "Cisco_server-1.24"}})
        );
        // Nothing seen: nothing logged.
        let mut out = Output::default();
        SshParser::new().finish(&mut out);
        assert!(out.records.is_empty());
    }

    #[test]
    fn banner_parsing() {
        assert_eq!(
            parse_banner(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6"),
            Some((&b"2.0"[..], &b"OpenSSH_8.9p1"[..]))
        );
        assert_eq!(parse_banner(b"SSH-2.0-"), Some((&b"2.0"[..], &b""[..])));
        assert_eq!(
            parse_banner(b"SSH-Single-"),
            Some((&b"Single"[..], &b""[..]))
        );
        assert_eq!(parse_banner(b"SSH-2.0"), None);
        assert_eq!(parse_banner(b"SSH--x"), None);
        assert_eq!(parse_banner(b"HTTP/1.1 200 OK"), None);
        // Suricata's line ends: "\n", "\r\n", or "\r" before more data.
        assert_eq!(line_end(b"SSH-Single\n"), Some((10, 11)));
        assert_eq!(line_end(b"SSH-Double\r\n"), Some((10, 12)));
        assert_eq!(line_end(b"SSH-Oops\rMore\r\n"), Some((8, 9)));
        assert_eq!(line_end(b"SSH-Miss\r"), None);
        assert_eq!(line_end(b"SSH-Miss"), None);
    }

    #[test]
    fn banner_split_at_every_byte() {
        let banner = b"SSH-2.0-OpenSSH_9.6 comment\r\n";
        let mut data = banner.to_vec();
        data.extend(kexinit(true));
        let mut whole = Output::default();
        SshParser::new().parse(Dir::ToServer, &data, &mut whole);
        for i in 0..=data.len() {
            let mut p = SshParser::new();
            let mut out = Output::default();
            p.parse(Dir::ToServer, &data[..i], &mut out);
            p.parse(Dir::ToServer, &data[i..], &mut out);
            assert_eq!(out, whole, "split at {i}");
        }
        assert_eq!(
            buffer(&whole, Dir::ToServer, Buffer::SshSoftware),
            Some(&b"OpenSSH_9.6"[..])
        );
    }

    #[test]
    fn hassh_matches_published_values() {
        let mut p = SshParser::with_config(SshConfig { hassh: true });
        let mut out = Output::default();
        let mut c = b"SSH-2.0-OpenSSH_7.6\r\n".to_vec();
        c.extend(kexinit(true));
        let mut s = b"SSH-2.0-OpenSSH_7.6p1 Ubuntu-4\r\n".to_vec();
        s.extend(kexinit(false));
        p.parse(Dir::ToServer, &c, &mut out);
        p.parse(Dir::ToClient, &s, &mut out);
        // With HASSH enabled the record waits for both NEWKEYS.
        assert!(out.records.is_empty());
        assert_eq!(
            buffer(&out, Dir::ToServer, Buffer::SshHassh),
            Some(HASSH_CLIENT.as_bytes())
        );
        assert_eq!(
            buffer(&out, Dir::ToClient, Buffer::SshHasshServer),
            Some(HASSH_SERVER.as_bytes())
        );
        let client_string = format!("{KEX_CLIENT};{ENC};{MAC};{COMP_CLIENT}");
        assert_eq!(
            buffer(&out, Dir::ToServer, Buffer::SshHasshString),
            Some(client_string.as_bytes())
        );
        p.parse(Dir::ToServer, &newkeys(), &mut out);
        assert!(out.records.is_empty());
        p.parse(Dir::ToClient, &newkeys(), &mut out);
        assert_eq!(out.records.len(), 1);
        let rec = &out.records[0].object;
        assert_eq!(rec["client"]["hassh"]["hash"], HASSH_CLIENT);
        assert_eq!(rec["client"]["hassh"]["string"], client_string.as_str());
        assert_eq!(rec["server"]["hassh"]["hash"], HASSH_SERVER);
        assert_eq!(rec["server"]["software_version"], "OpenSSH_7.6p1");
        let keys: Vec<&str> = rec["server"]
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["proto_version", "software_version", "hassh"]);
    }

    #[test]
    fn kexinit_split_at_every_byte() {
        let k = kexinit(false);
        for i in 0..=k.len() {
            let mut p = SshParser::new();
            let mut out = Output::default();
            p.parse(Dir::ToClient, b"SSH-2.0-x\r\n", &mut out);
            p.parse(Dir::ToClient, &k[..i], &mut out);
            p.parse(Dir::ToClient, &k[i..], &mut out);
            assert_eq!(
                buffer(&out, Dir::ToClient, Buffer::SshHasshServer),
                Some(HASSH_SERVER.as_bytes()),
                "split at {i}"
            );
        }
    }

    #[test]
    fn default_config_logs_without_hassh() {
        let mut p = SshParser::new();
        let mut out = Output::default();
        let mut c = b"SSH-2.0-a\r\n".to_vec();
        c.extend(kexinit(true));
        p.parse(Dir::ToServer, &c, &mut out);
        p.parse(Dir::ToClient, b"SSH-2.0-b\r\n", &mut out);
        assert_eq!(
            out.records[0].object,
            serde_json::json!({
                "client": {"proto_version": "2.0", "software_version": "a"},
                "server": {"proto_version": "2.0", "software_version": "b"}
            })
        );
    }

    #[test]
    fn newkeys_stops_inspection() {
        let mut p = SshParser::new();
        let mut out = Output::default();
        let mut c = b"SSH-2.0-a\r\n".to_vec();
        c.extend(kexinit(true));
        c.extend(newkeys());
        // Encrypted packets: a zero length would otherwise be an invalid record.
        c.extend([0, 0, 0, 0, 0, 0, 0x15, 0, 0, 0, 0]);
        p.parse(Dir::ToServer, &c, &mut out);
        p.parse(Dir::ToServer, &[0u8; 64], &mut out);
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        assert_eq!(p.client.stage, Stage::Encrypted);
        assert_eq!(p.client.progress, ConnState::Finished);
        assert!(!out.encrypted, "the server has not switched keys yet");
        let mut s = b"SSH-2.0-b\r\n".to_vec();
        s.extend(kexinit(false));
        s.extend(newkeys());
        let mut out = Output::default();
        p.parse(Dir::ToClient, &s, &mut out);
        assert!(out.encrypted, "both sides sent NEWKEYS");
    }

    #[test]
    fn anomalies() {
        let mut p = SshParser::new();
        let mut out = Output::default();
        p.parse(Dir::ToServer, b"HELLO-2.0-x\r\n", &mut out);
        assert_eq!(out.anomalies, [EV_INVALID_BANNER]);
        p.parse(Dir::ToClient, b"SSH-2.0-y\r\n", &mut out);
        assert!(out.buffers.is_empty(), "parsing stopped");
        p.finish(&mut out);
        assert!(out.records.is_empty());

        let mut p = SshParser::new();
        let mut out = Output::default();
        p.parse(
            Dir::ToServer,
            b"SSH-2.0-x\r\n\x00\x00\x00\x01\x00\x14",
            &mut out,
        );
        assert_eq!(out.anomalies, [EV_INVALID_RECORD]);

        // A long banner without its end: versions kept, the rest of the line skipped.
        let mut p = SshParser::new();
        let mut out = Output::default();
        let mut long = b"SSH-2.0-Long".to_vec();
        long.extend([b'x'; 300]);
        p.parse(Dir::ToServer, &long, &mut out);
        assert_eq!(out.anomalies, [EV_LONG_BANNER]);
        assert_eq!(p.client.progress, ConnState::BannerWaitEol);
        let mut rest = b"yyy\r\n".to_vec();
        rest.extend(kexinit(true));
        p.parse(Dir::ToServer, &rest, &mut out);
        assert_eq!(
            buffer(&out, Dir::ToServer, Buffer::SshHassh),
            Some(HASSH_CLIENT.as_bytes())
        );
        p.finish(&mut out);
        assert_eq!(
            out.records[0].object["client"]["software_version"]
                .as_str()
                .map(str::len),
            Some(304)
        );

        // A complete but long banner line.
        let mut p = SshParser::new();
        let mut out = Output::default();
        let mut line = b"SSH-2.0-".to_vec();
        line.extend([b'z'; 260]);
        line.extend(b"\r\n");
        p.parse(Dir::ToServer, &line, &mut out);
        assert_eq!(out.anomalies, [EV_LONG_BANNER]);
        assert_eq!(p.client.progress, ConnState::BannerDone);

        // A KEXINIT too long to reassemble is reported when HASSH is on.
        let mut p = SshParser::with_config(SshConfig { hassh: true });
        let mut out = Output::default();
        p.parse(
            Dir::ToServer,
            b"SSH-2.0-x\r\n\x00\x01\x00\x01\x04\x14",
            &mut out,
        );
        assert_eq!(out.anomalies, [EV_LONG_KEX_RECORD]);
    }

    #[test]
    fn gap_stops_the_direction() {
        let mut p = SshParser::new();
        let mut out = Output::default();
        p.gap(Dir::ToServer, 10, &mut out);
        p.parse(Dir::ToServer, b"SSH-2.0-x\r\n", &mut out);
        assert!(out.buffers.is_empty());
    }

    #[test]
    fn junk_and_truncation_never_panic() {
        let mut flow = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
        flow.extend(kexinit(true));
        flow.extend(newkeys());
        for i in 0..flow.len() {
            for v in [0x00, 0x0a, 0x0d, 0x2d, 0x80, 0xff] {
                let mut bad = flow.clone();
                bad[i] = v;
                let mut p = SshParser::with_config(SshConfig { hassh: true });
                let mut out = Output::default();
                p.parse(Dir::ToServer, &bad[..i.max(1)], &mut out);
                p.parse(Dir::ToServer, &bad[i.max(1)..], &mut out);
                p.parse(Dir::ToClient, &bad, &mut out);
                p.finish(&mut out);
                assert!(out.records.len() <= 1);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..200usize {
            let data: Vec<u8> = (0..1500)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[0]
                })
                .collect();
            let mut p = SshParser::new();
            let mut out = Output::default();
            p.parse(Dir::ToServer, b"SSH-2.0-x\r\n", &mut out);
            for chunk in data.chunks(1 + round % 61) {
                p.parse(Dir::ToServer, chunk, &mut out);
                p.parse(Dir::ToClient, chunk, &mut out);
            }
            p.finish(&mut out);
            assert!(p.client.hdr.len() < RECORD_HDR_LEN);
            assert!(p.client.line.len() < MAX_BANNER_LEN);
            assert!(p
                .client
                .kex
                .as_ref()
                .is_none_or(|(b, w)| b.len() <= *w && *w < MAX_KEXINIT_LEN));
        }
    }
}
