//! Handshake messages: reassembly across records, ClientHello and ServerHello with their
//! extensions, and the sticky buffers of a hello.

use super::*;

impl TlsParser {
    /// A handshake record: splits it into handshake messages, reassembling messages that
    /// span records. Returns false on a fatal error.
    pub(super) fn handshake_record(&mut self, dir: Dir, body: &[u8], out: &mut Output) -> bool {
        if self.flags.ccs {
            // After ChangeCipherSpec handshake records are encrypted. TLS 1.3 middlebox
            // compatibility mode sends a ChangeCipherSpec before a second ClientHello
            // (after HelloRetryRequest), which is still in clear.
            let tls13_client = self.flags.client_hello
                && self.client.version > TLS_VERSION_12
                && !self.flags.server_hello;
            if !tls13_client {
                return true;
            }
        }
        if body.len() < 4 {
            out.anomalies.push(EV_INVALID_SSL_RECORD);
            return false;
        }
        let mut input = body;
        while !input.is_empty() {
            if let Some(mut partial) = self.conn(dir).hs_partial.take() {
                let n = (partial.len - partial.got).min(input.len());
                if let Some(data) = partial.data.as_mut() {
                    data.extend_from_slice(&input[..n]);
                }
                partial.got += n;
                input = &input[n..];
                if partial.got < partial.len {
                    self.conn(dir).hs_partial = Some(partial);
                } else if let Some(data) = partial.data {
                    self.handshake_message(dir, partial.typ, &data, out);
                }
                continue;
            }
            // Suricata requires the 4-byte message header within one record.
            let [typ, l0, l1, l2, ..] = *input else {
                out.anomalies.push(EV_INVALID_SSL_RECORD);
                out.anomalies.push(EV_INVALID_HANDSHAKE_MESSAGE);
                return false;
            };
            let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
            input = &input[4..];
            if !supported_handshake_type(typ) {
                let n = len.min(input.len());
                input = &input[n..];
                // Encrypted handshake messages after ChangeCipherSpec look like garbage.
                if !self.conn(dir).ccs {
                    out.anomalies.push(EV_INVALID_HANDSHAKE_MESSAGE);
                }
                continue;
            }
            if len > input.len() {
                let data = (len <= MAX_HS_MESSAGE).then(|| {
                    let mut v = Vec::with_capacity(len);
                    v.extend_from_slice(input);
                    v
                });
                self.conn(dir).hs_partial = Some(HsPartial {
                    typ,
                    len,
                    got: input.len(),
                    data,
                });
                return true;
            }
            let (msg, rest) = input.split_at(len);
            self.handshake_message(dir, typ, msg, out);
            input = rest;
        }
        true
    }

    /// One complete handshake message of `dir`.
    pub(super) fn handshake_message(&mut self, dir: Dir, typ: u8, msg: &[u8], out: &mut Output) {
        let (this, peer) = match dir {
            Dir::ToServer => (&mut self.client, &mut self.server),
            Dir::ToClient => (&mut self.server, &mut self.client),
        };
        match typ {
            HS_CLIENT_HELLO | HS_SERVER_HELLO => {
                let client = typ == HS_CLIENT_HELLO;
                decode_hello(this, peer, &mut self.flags, client, msg, out);
                // The flag is raised after the decode, as Suricata's `current_flags`.
                if client {
                    self.flags.client_hello = true;
                } else {
                    self.flags.server_hello = true;
                }
                hello_buffers(this, dir, client, out);
            }
            HS_CERTIFICATE => decode_certificates(this, dir, msg, out),
            HS_CERTIFICATE_REQUEST if dir == Dir::ToClient => {
                self.flags.need_client_cert = true;
            }
            _ => {}
        }
    }

    /// Suricata's end-of-parse check: a certificate with subject and issuer (the client's
    /// when the server asked for one) ends the handshake in both directions.
    pub(super) fn update_handshake_done(&mut self) {
        let cert_done = if self.flags.need_client_cert {
            self.client.cert.is_some()
        } else {
            self.server.cert.is_some()
        };
        if cert_done {
            self.client.progress = self.client.progress.max(PROGRESS_HANDSHAKE_DONE);
            self.server.progress = self.server.progress.max(PROGRESS_HANDSHAKE_DONE);
        }
    }
}

/// Handshake message types Suricata decodes or knowingly skips.
pub(super) fn supported_handshake_type(t: u8) -> bool {
    matches!(
        t,
        HS_HELLO_REQUEST
            | HS_CLIENT_HELLO
            | HS_SERVER_HELLO
            | HS_NEW_SESSION_TICKET
            | HS_CERTIFICATE
            | HS_SERVER_KEY_EXCHANGE
            | HS_CERTIFICATE_REQUEST
            | HS_SERVER_HELLO_DONE
            | HS_CERTIFICATE_VERIFY
            | HS_CLIENT_KEY_EXCHANGE
            | HS_FINISHED
            | HS_CERTIFICATE_URL
            | HS_CERTIFICATE_STATUS
    )
}

/// Decodes a ClientHello (`client`) or ServerHello body into `this`.
pub(super) fn decode_hello(
    this: &mut Conn,
    peer: &Conn,
    flags: &mut Flags,
    client: bool,
    msg: &[u8],
    out: &mut Output,
) {
    // Created before decoding, so that even a broken hello has a (JA4) handshake record.
    this.hs.get_or_insert_with(HandshakeParams::default);
    let mut r = Reader::new(msg);
    let Some(version) = r.u16() else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return;
    };
    this.version = version;
    this.hs
        .get_or_insert_with(HandshakeParams::default)
        .set_version(version);
    // TLS 1.3 drafts 1-21 announce themselves in the ServerHello version field.
    if !client && (version == TLS_VERSION_13 || version >> 8 == 0x7f) {
        flags.log_without_cert = true;
    }
    if (0x7f01..0x7f10).contains(&version) || version == TLS_VERSION_13 {
        this.version = TLS_VERSION_13_PRE_DRAFT16;
    }
    // A JA3 already computed is not augmented by a later hello (HelloRetryRequest).
    let mut ja3 = this.ja3.is_none().then(|| Ja3Parts {
        version,
        ..Ja3Parts::default()
    });
    if r.take(32).is_none() {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return;
    }
    // TLS 1.3 drafts removed the session id and compression from the ServerHello.
    let legacy_fields = client || !flags.log_without_cert;
    if legacy_fields {
        let Some(sid) = r.u8().and_then(|n| r.take(usize::from(n))) else {
            out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
            return;
        };
        if !sid.is_empty() && this.session_id.is_none() {
            this.session_id = Some(sid.to_vec());
            if !client && peer.session_id.as_deref() == Some(sid) {
                flags.session_resumed = true;
            }
        }
    }
    let suites = if client {
        r.u16().and_then(|n| r.take(usize::from(n)))
    } else {
        r.take(2)
    };
    let Some(suites) = suites.filter(|s| s.len() % 2 == 0) else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return;
    };
    let hs = this.hs.get_or_insert_with(HandshakeParams::default);
    for c in suites.chunks_exact(2) {
        let c = u16::from_be_bytes([c[0], c[1]]);
        if !is_grease(c) {
            hs.ciphers.push(c);
            if let Some(j) = ja3.as_mut() {
                j.ciphers.push(c);
            }
        }
    }
    if legacy_fields {
        let comp = if client {
            r.u8().and_then(|n| r.take(usize::from(n)))
        } else {
            r.take(1)
        };
        if comp.is_none() {
            out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
            return;
        }
    }
    if decode_extensions(&mut r, this, flags, client, &mut ja3, out) {
        if let Some(j) = ja3 {
            this.ja3 = Some(j.finish(client));
        }
    }
}

/// How an extension decoder stopped early.
pub(super) enum ExtStop {
    /// Stop the extension list but keep the hello (Suricata's `goto end`).
    End,
    /// Malformed beyond use: no JA3 for this hello (Suricata's `goto error`).
    Error,
}

/// Decodes the extension block of a hello. Returns false when the hello is malformed
/// enough that Suricata computes no JA3 for it.
pub(super) fn decode_extensions(
    r: &mut Reader<'_>,
    this: &mut Conn,
    flags: &mut Flags,
    client: bool,
    ja3: &mut Option<Ja3Parts>,
    out: &mut Output,
) -> bool {
    // Extensions are optional (RFC 5246 7.4.1.2).
    let Some(len) = r.u16() else {
        return true;
    };
    let Some(block) = r.take(usize::from(len)) else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return false;
    };
    let mut e = Reader::new(block);
    while e.remaining() > 0 {
        let Some((typ, data)) = e
            .u16()
            .and_then(|t| e.u16().and_then(|n| e.take(usize::from(n))).map(|d| (t, d)))
        else {
            out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
            return false;
        };
        let res = match typ {
            EXT_SNI => ext_sni(this, data, out),
            EXT_SUPPORTED_GROUPS => ext_curves(data, client, ja3),
            EXT_EC_POINT_FORMATS => ext_point_formats(data, client, ja3),
            EXT_SIGNATURE_ALGORITHMS => ext_sig_algs(this, data, client),
            EXT_ALPN => ext_alpn(this, data),
            EXT_SUPPORTED_VERSIONS => ext_supported_versions(this, flags, data, client),
            EXT_EARLY_DATA => {
                if client {
                    flags.early_data = true;
                }
                Ok(())
            }
            EXT_SESSION_TICKET => {
                // Confirmed or not by the server's certificate later; Suricata counts the
                // offer as a resumption.
                if client {
                    flags.session_resumed = true;
                }
                Ok(())
            }
            _ => Ok(()),
        };
        match res {
            Ok(()) => {}
            Err(ExtStop::End) => return true,
            Err(ExtStop::Error) => {
                out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
                return false;
            }
        }
        if !is_grease(typ) {
            if let Some(j) = ja3.as_mut() {
                j.extensions.push(typ);
            }
            let hs = this.hs.get_or_insert_with(HandshakeParams::default);
            hs.extensions.push(typ);
            if typ == EXT_SNI {
                hs.domain = true;
            }
        }
    }
    true
}

pub(super) fn ext_sni(this: &mut Conn, data: &[u8], out: &mut Output) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    // The list length is not checked, only the first entry is used.
    let (Some(_), Some(typ)) = (r.u16(), r.u8()) else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return Err(ExtStop::End);
    };
    if typ != 0 {
        out.anomalies.push(EV_INVALID_SNI_TYPE);
        return Err(ExtStop::End);
    }
    let Some(n) = r.u16() else {
        out.anomalies.push(EV_HANDSHAKE_INVALID_LENGTH);
        return Err(ExtStop::End);
    };
    let n = usize::from(n);
    // A host name is at most a DNS name long.
    let Some(name) = r.take(n).filter(|_| n != 0 && n <= 255) else {
        out.anomalies.push(EV_INVALID_SNI_LENGTH);
        return Err(ExtStop::End);
    };
    if this.sni.is_some() {
        out.anomalies.push(EV_MULTIPLE_SNI);
    } else {
        this.sni = Some(name.to_vec());
    }
    Ok(())
}

pub(super) fn ext_curves(
    data: &[u8],
    client: bool,
    ja3: &mut Option<Ja3Parts>,
) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    let list = r
        .u16()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or(ExtStop::Error)?;
    if client {
        if let Some(j) = ja3.as_mut() {
            if list.len() % 2 != 0 {
                return Err(ExtStop::Error);
            }
            for c in list.chunks_exact(2) {
                let c = u16::from_be_bytes([c[0], c[1]]);
                if !is_grease(c) {
                    j.curves.push(c);
                }
            }
        }
    }
    Ok(())
}

pub(super) fn ext_point_formats(
    data: &[u8],
    client: bool,
    ja3: &mut Option<Ja3Parts>,
) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    let list = r
        .u8()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or(ExtStop::Error)?;
    if client {
        if let Some(j) = ja3.as_mut() {
            j.point_formats.extend_from_slice(list);
        }
    }
    Ok(())
}

pub(super) fn ext_sig_algs(this: &mut Conn, data: &[u8], client: bool) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    let list = r
        .u16()
        .filter(|n| n % 2 == 0)
        .and_then(|n| r.take(usize::from(n)))
        .ok_or(ExtStop::End)?;
    if client {
        let hs = this.hs.get_or_insert_with(HandshakeParams::default);
        for s in list.chunks_exact(2) {
            let s = u16::from_be_bytes([s[0], s[1]]);
            if !is_grease(s) {
                hs.sig_algs.push(s);
            }
        }
    }
    Ok(())
}

pub(super) fn ext_alpn(this: &mut Conn, data: &[u8]) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    let list = r
        .u16()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or(ExtStop::End)?;
    let hs = this.hs.get_or_insert_with(HandshakeParams::default);
    let mut l = Reader::new(list);
    while l.remaining() > 0 {
        let n = usize::from(l.u8().ok_or(ExtStop::End)?);
        // A protocol running past the list ends it quietly, as in Suricata.
        let Some(proto) = l.take(n) else {
            break;
        };
        if !proto.is_empty() {
            hs.alpns.push(proto.to_vec());
        }
    }
    Ok(())
}

pub(super) fn ext_supported_versions(
    this: &mut Conn,
    flags: &mut Flags,
    data: &[u8],
    client: bool,
) -> Result<(), ExtStop> {
    if data.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(data);
    if client {
        let list = r
            .u8()
            .filter(|&n| n >= 2)
            .and_then(|n| r.take(usize::from(n)))
            .ok_or(ExtStop::End)?;
        // The first (preferred) valid version, skipping GREASE and noise.
        if let Some(v) = list
            .chunks_exact(2)
            .map(|v| u16::from_be_bytes([v[0], v[1]]))
            .find(|&v| tls_version_valid(v))
        {
            this.version = v;
            this.hs
                .get_or_insert_with(HandshakeParams::default)
                .set_version(v);
        }
        flags.ch_version_ext = true;
    } else {
        let v = r.u16().ok_or(ExtStop::End)?;
        if flags.ch_version_ext && v > TLS_VERSION_12 {
            flags.log_without_cert = true;
        }
        this.version = v;
    }
    Ok(())
}

/// Sticky buffers of a hello just decoded.
pub(super) fn hello_buffers(this: &Conn, dir: Dir, client: bool, out: &mut Output) {
    if client {
        if let Some(sni) = &this.sni {
            out.buffers.push((dir, Buffer::TlsSni, sni.clone()));
        }
        if let Some(hs) = &this.hs {
            for a in &hs.alpns {
                out.buffers.push((dir, Buffer::TlsAlpn, a.clone()));
            }
            out.buffers
                .push((dir, Buffer::Ja4Hash, ja4(hs).into_bytes()));
        }
        if let Some(j) = &this.ja3 {
            out.buffers
                .push((dir, Buffer::Ja3Hash, j.hash.clone().into_bytes()));
            out.buffers
                .push((dir, Buffer::Ja3String, j.string.clone().into_bytes()));
        }
    } else if let Some(j) = &this.ja3 {
        out.buffers
            .push((dir, Buffer::Ja3sHash, j.hash.clone().into_bytes()));
        out.buffers
            .push((dir, Buffer::Ja3sString, j.string.clone().into_bytes()));
    }
}
