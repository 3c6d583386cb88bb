//! Certificate messages: the first certificate of a chain, decoded with `x509-parser` into
//! what Suricata logs (subject, issuer, names, serial, fingerprint, validity).

use super::*;

/// Fields of a decoded certificate, formatted as Suricata logs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CertInfo {
    pub(super) subject: String,
    pub(super) issuer: String,
    pub(super) sans: Vec<String>,
    pub(super) serial: String,
    pub(super) fingerprint: String,
    pub(super) not_before: i64,
    pub(super) not_after: i64,
}

/// Decodes a Certificate message (TLS <= 1.2 layout): the first certificate's fields go to
/// `this.cert` when they all decode, every certificate becomes a `tls.certs` buffer.
pub(super) fn decode_certificates(this: &mut Conn, dir: Dir, msg: &[u8], out: &mut Output) {
    let mut r = Reader::new(msg);
    let Some(chain) = r.u24().and_then(|n| r.take(n)) else {
        return;
    };
    // Only the first certificate message counts (renegotiation re-sends it).
    if std::mem::replace(&mut this.certs_seen, true) {
        return;
    }
    let mut c = Reader::new(chain);
    let mut index = 0usize;
    while c.remaining() > 0 {
        let Some(der) = c.u24().and_then(|n| c.take(n)) else {
            out.anomalies.push(EV_INVALID_CERTIFICATE);
            return;
        };
        if index == 0 && this.cert.is_none() {
            match cert_info(der) {
                Ok(info) => {
                    out.buffers.push((
                        dir,
                        Buffer::TlsCertSubject,
                        info.subject.clone().into_bytes(),
                    ));
                    out.buffers.push((
                        dir,
                        Buffer::TlsCertIssuer,
                        info.issuer.clone().into_bytes(),
                    ));
                    out.buffers.push((
                        dir,
                        Buffer::TlsCertSerial,
                        info.serial.clone().into_bytes(),
                    ));
                    out.buffers.push((
                        dir,
                        Buffer::TlsCertFingerprint,
                        info.fingerprint.clone().into_bytes(),
                    ));
                    for san in &info.sans {
                        out.buffers.push((
                            dir,
                            Buffer::TlsSubjectAltName,
                            san.clone().into_bytes(),
                        ));
                    }
                    this.cert = Some(info);
                }
                Err(event) => {
                    // Suricata gives up on the message at the first undecodable certificate.
                    out.anomalies.push(event);
                    return;
                }
            }
        }
        out.buffers.push((dir, Buffer::TlsCerts, der.to_vec()));
        index += 1;
    }
}

/// Extracts the logged fields of a DER certificate with x509-parser (the library Suricata
/// uses, so names render identically: "C=US, O=..., CN=...").
pub(super) fn cert_info(der: &[u8]) -> Result<CertInfo, &'static str> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| match e {
        nom::Err::Incomplete(_) => "CERTIFICATE_INVALID_LENGTH",
        nom::Err::Error(e) | nom::Err::Failure(e) => match e {
            X509Error::InvalidVersion => "CERTIFICATE_INVALID_VERSION",
            X509Error::InvalidSerial => "CERTIFICATE_INVALID_SERIAL",
            X509Error::InvalidAlgorithmIdentifier => "CERTIFICATE_INVALID_ALGORITHMIDENTIFIER",
            X509Error::InvalidX509Name => "CERTIFICATE_INVALID_X509NAME",
            X509Error::InvalidDate => "CERTIFICATE_INVALID_DATE",
            X509Error::InvalidExtensions => "CERTIFICATE_INVALID_EXTENSIONS",
            X509Error::Der(_) => "CERTIFICATE_INVALID_DER",
            _ => EV_INVALID_CERTIFICATE,
        },
    })?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().map(san_string).collect(),
        _ => Vec::new(),
    };
    let serial = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let fingerprint = Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        serial,
        fingerprint,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// A subject alternative name as logged: DNS names and addresses bare, others as
/// x509-parser renders them.
pub(super) fn san_string(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
            (*s).to_string()
        }
        GeneralName::IPAddress(addr) => match **addr {
            [a, b, c, d] => std::net::Ipv4Addr::new(a, b, c, d).to_string(),
            _ => match <[u8; 16]>::try_from(*addr) {
                Ok(v6) => std::net::Ipv6Addr::from(v6).to_string(),
                Err(_) => name.to_string(),
            },
        },
        _ => name.to_string(),
    }
}
