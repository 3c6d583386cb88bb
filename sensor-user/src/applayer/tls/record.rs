//! The record layer: framing TLS and SSLv2 records per direction, alerts, heartbeats and
//! application data as far as they change the handshake state.

use super::*;

impl TlsParser {
    /// Feeds `data` of `dir` through the record layer.
    pub(super) fn parse_records(&mut self, dir: Dir, data: &[u8], out: &mut Output) {
        let mut input = data;
        loop {
            if self.failed || self.conn(dir).dead {
                return;
            }
            // Application data is skipped as it streams by, never buffered.
            let conn = self.conn(dir);
            if conn.skip > 0 {
                if input.is_empty() {
                    return;
                }
                let n = conn.skip.min(input.len());
                conn.skip -= n;
                input = &input[n..];
                if std::mem::take(&mut conn.appdata_mark) {
                    self.application_data(dir);
                }
                continue;
            }
            if conn.pending.is_empty() {
                if input.is_empty() {
                    return;
                }
                match self.record(dir, input, out) {
                    Step::Consumed(n) => input = &input[n.min(input.len())..],
                    Step::Need => {
                        self.conn(dir).pending.extend_from_slice(input);
                        return;
                    }
                    Step::Fatal => {
                        self.fail(dir);
                        return;
                    }
                    Step::DropRest => return,
                }
                continue;
            }
            // A record started in an earlier call: top the buffer up to what the record
            // needs (a header, then the whole record), never more.
            let mut buf = std::mem::take(&mut self.conn(dir).pending);
            loop {
                let need = record_need(&buf);
                if buf.len() >= need || input.is_empty() {
                    break;
                }
                let n = (need - buf.len()).min(input.len());
                buf.extend_from_slice(&input[..n]);
                input = &input[n..];
            }
            if buf.len() < record_need(&buf) {
                self.conn(dir).pending = buf;
                return;
            }
            match self.record(dir, &buf, out) {
                Step::Consumed(n) => {
                    if n < buf.len() {
                        self.conn(dir).pending = buf[n..].to_vec();
                    }
                }
                Step::Need => {
                    self.conn(dir).pending = buf;
                    return;
                }
                Step::Fatal => {
                    self.fail(dir);
                    return;
                }
                Step::DropRest => return,
            }
        }
    }

    /// Processes the record starting at `buf[0]`.
    pub(super) fn record(&mut self, dir: Dir, buf: &[u8], out: &mut Output) -> Step {
        let Some(&b0) = buf.first() else {
            return Step::Need;
        };
        // As in Suricata: a record whose first byte has one of the top two bits set is SSLv2.
        if b0 & 0xc0 != 0 {
            return self.sslv2_record(dir, buf, out);
        }
        let [ct, vmaj, vmin, lhi, llo, ..] = *buf else {
            return Step::Need;
        };
        let rec_version = u16::from_be_bytes([vmaj, vmin]);
        let rec_len = usize::from(u16::from_be_bytes([lhi, llo]));
        let hello_seen = match dir {
            Dir::ToServer => self.flags.client_hello,
            Dir::ToClient => self.flags.server_hello,
        };
        let conn = self.conn(dir);
        // An SSLv2 version left from an earlier record is forgotten at a TLS record.
        let prev_version = if conn.version == SSL_VERSION_2 {
            VERSION_UNKNOWN
        } else {
            conn.version
        };
        // The hello's version wins over the record layer's once the hello was seen.
        let version = if hello_seen && prev_version != VERSION_UNKNOWN {
            prev_version
        } else {
            rec_version
        };
        if !(CT_CHANGE_CIPHER_SPEC..=CT_HEARTBEAT).contains(&ct) {
            out.anomalies.push(EV_INVALID_RECORD_TYPE);
            // Wireshark's rule, followed by Suricata: unknown record types are tolerated in
            // TLS 1.0 and 1.1 (the rest of the data is dropped), fatal otherwise.
            if prev_version == TLS_VERSION_10 || prev_version == TLS_VERSION_11 {
                conn.version = prev_version;
                return Step::DropRest;
            }
            return Step::Fatal;
        }
        conn.version = version;
        if rec_len == 0 {
            out.anomalies.push(EV_INVALID_RECORD_LENGTH);
            return Step::Fatal;
        }
        if !tls_version_valid(version) {
            out.anomalies.push(EV_INVALID_RECORD_VERSION);
            return Step::Fatal;
        }
        if rec_len > RECORD_MAX_LEN {
            out.anomalies.push(EV_INVALID_RECORD_LENGTH);
            return Step::Fatal;
        }
        if ct == CT_APPLICATION_DATA {
            conn.skip = rec_len;
            conn.appdata_mark = true;
            // Application data once the server has answered is the encrypted session (before
            // the ServerHello it may be TLS 1.3 early data, and the handshake goes on):
            // Suricata stops inspecting the flow's payload here.
            if self.flags.server_hello {
                out.encrypted = true;
            }
            return Step::Consumed(RECORD_HDR_LEN);
        }
        let Some(body) = buf.get(RECORD_HDR_LEN..RECORD_HDR_LEN + rec_len) else {
            return Step::Need;
        };
        let ok = match ct {
            CT_CHANGE_CIPHER_SPEC => {
                self.flags.ccs = true;
                self.conn(dir).ccs = true;
                true
            }
            CT_ALERT => self.alert(body, out),
            CT_HANDSHAKE => self.handshake_record(dir, body, out),
            _ => self.heartbeat(body, rec_len, out),
        };
        if ok {
            Step::Consumed(RECORD_HDR_LEN + rec_len)
        } else {
            Step::Fatal
        }
    }

    /// An SSLv2 record: only the hellos matter (version, handshake flags).
    pub(super) fn sslv2_record(&mut self, dir: Dir, buf: &[u8], out: &mut Output) -> Step {
        let (hdr_len, lengths_len, rec_len, mt) = match *buf {
            [b0, b1, mt, ..] if b0 & 0x80 != 0 => {
                (3, 2, usize::from(b0 & 0x7f) << 8 | usize::from(b1), mt)
            }
            [b0, b1, _pad, mt, ..] if b0 & 0x80 == 0 => {
                (4, 3, usize::from(b0 & 0x3f) << 8 | usize::from(b1), mt)
            }
            _ => return Step::Need,
        };
        let total = lengths_len + rec_len;
        if buf.len() < total {
            return Step::Need;
        }
        if rec_len == 0 {
            out.anomalies.push(EV_INVALID_SSLV2_HEADER);
            return Step::Fatal;
        }
        self.conn(dir).version = SSL_VERSION_2;
        let body = buf.get(hdr_len..total).unwrap_or_default();
        match mt {
            SSLV2_MT_ERROR => out.anomalies.push(EV_ERROR_MSG),
            SSLV2_MT_CLIENT_HELLO => {
                // version(2) cipher_spec_length(2) session_id_length(2) after the type byte.
                let [vh, vl, _, _, _, _, ..] = *body else {
                    out.anomalies.push(EV_INVALID_SSL_RECORD);
                    return Step::Fatal;
                };
                self.conn(dir).version = u16::from_be_bytes([vh, vl]);
                self.flags.client_hello = true;
            }
            SSLV2_MT_SERVER_HELLO => self.flags.server_hello = true,
            _ => {}
        }
        Step::Consumed(total)
    }

    /// An alert record; a fatal alert in clear ends the handshake in both directions.
    pub(super) fn alert(&mut self, body: &[u8], out: &mut Output) -> bool {
        if body.len() < 2 {
            out.anomalies.push(EV_INVALID_ALERT);
            return false;
        }
        // Longer records are encrypted alerts; level 2 is "fatal".
        if body.len() == 2 && body[0] == 2 {
            self.client.progress = self.client.progress.max(PROGRESS_FINISHED);
            self.server.progress = self.server.progress.max(PROGRESS_FINISHED);
        }
        true
    }

    /// A heartbeat record in clear must be a well-formed request or response
    /// (CVE-2014-0160 shows up as a payload longer than the record).
    pub(super) fn heartbeat(&mut self, body: &[u8], rec_len: usize, out: &mut Output) -> bool {
        if self.flags.ccs || body.len() < 3 {
            return true;
        }
        if !(body[0] == 1 || body[0] == 2) {
            out.anomalies.push(EV_INVALID_HEARTBEAT);
            return false;
        }
        let payload = usize::from(u16::from_be_bytes([body[1], body[2]]));
        if payload + 3 > rec_len {
            out.anomalies.push(EV_OVERFLOW_HEARTBEAT);
            return false;
        }
        if rec_len - payload - 3 < 16 {
            out.anomalies.push(EV_INVALID_HEARTBEAT);
            return false;
        }
        true
    }

    /// The first application-data byte of a direction: its handshake is over. TLS 1.3 0-RTT
    /// data before the ServerHello does not count.
    pub(super) fn application_data(&mut self, dir: Dir) {
        if self.flags.early_data && !self.flags.server_hello {
            return;
        }
        let conn = self.conn(dir);
        conn.progress = conn.progress.max(PROGRESS_HANDSHAKE_DONE);
    }
}

/// Result of processing the record at the start of a buffer.
pub(super) enum Step {
    /// The record (or its header, for application data) took this many bytes.
    Consumed(usize),
    /// More bytes are needed (see [`record_need`]).
    Need,
    /// A fatal error: the flow's TLS parsing stops.
    Fatal,
    /// Ignore the rest of this call's data.
    DropRest,
}

/// How many bytes the record at the start of `buf` needs before it can be processed: its
/// header, then its whole body except for application data (skipped while streaming) and
/// for headers that will be rejected.
pub(super) fn record_need(buf: &[u8]) -> usize {
    match *buf {
        [] => 1,
        // SSLv2: the header (lengths and message type), then the whole record.
        [b0, ..] if b0 & 0xc0 != 0 => match *buf {
            [b0, b1, ..] if b0 & 0x80 != 0 => {
                3.max(2 + (usize::from(b0 & 0x7f) << 8 | usize::from(b1)))
            }
            [b0, b1, ..] => 4.max(3 + (usize::from(b0 & 0x3f) << 8 | usize::from(b1))),
            _ => 2,
        },
        [ct, _, _, lhi, llo, ..] => {
            let len = usize::from(u16::from_be_bytes([lhi, llo]));
            if ct == CT_APPLICATION_DATA || len == 0 || len > RECORD_MAX_LEN {
                RECORD_HDR_LEN
            } else {
                RECORD_HDR_LEN + len
            }
        }
        _ => RECORD_HDR_LEN,
    }
}

/// Versions Suricata accepts in a record header or `supported_versions` (`TLSVersionValid`):
/// SSLv3 to TLS 1.3 and the TLS 1.3 drafts, not SSLv2.
pub(super) fn tls_version_valid(v: u16) -> bool {
    matches!(
        v,
        SSL_VERSION_3 | TLS_VERSION_10 | TLS_VERSION_11 | TLS_VERSION_12 | TLS_VERSION_13
    ) || v == TLS_VERSION_13_PRE_DRAFT16
        || (0x7f10..=0x7f1c).contains(&v)
        || matches!(v, 0xfb14 | 0xfb15 | 0xfb16 | 0xfb17 | 0xfb1a)
}
