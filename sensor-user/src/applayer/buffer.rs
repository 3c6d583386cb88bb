//! The one interface between the app-layer parsers and detection: every buffer a rule can
//! inspect, named by a [`Buffer`] instead of a string. The table below says, for each,
//! Suricata's name, the rule keywords that select it, the application protocol it implies and
//! the side of the transaction it belongs to. Parsers produce buffers by variant, the rule
//! compiler (`crate::detect`) turns keywords into variants, and lookups during evaluation are
//! array indexes. It lives with the parsers so that detection depends on the app layer and
//! never the other way round.

/// A buffer rules inspect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Buffer {
    /// The packet's payload (or the stream bytes it made available).
    Pkt,
    HttpUri,
    HttpUriRaw,
    HttpMethod,
    HttpRequestLine,
    HttpHeader,
    HttpHeaderRaw,
    HttpCookie,
    HttpUserAgent,
    HttpHost,
    HttpHostRaw,
    HttpReferer,
    HttpAccept,
    HttpContentType,
    HttpContentLen,
    HttpServer,
    HttpLocation,
    HttpProtocol,
    HttpStatCode,
    HttpStatMsg,
    HttpRequestBody,
    HttpResponseBody,
    HttpHeaderNames,
    HttpStart,
    HttpResponseLine,
    HttpAcceptEnc,
    HttpAcceptLang,
    HttpConnection,
    /// `file.data` of a request body.
    FileDataTs,
    /// `file.data` of a response body.
    FileDataTc,
    DnsQuery,
    /// Query names in a response (`dns.queries.rrname`): they start a response transaction.
    DnsQueriesRrname,
    /// A message's opcode, one byte (`dns.opcode` compares it; not a sticky buffer).
    DnsOpcode,
    TlsSni,
    TlsAlpn,
    TlsCertSubject,
    TlsCertIssuer,
    TlsCertSerial,
    TlsCertFingerprint,
    TlsSubjectAltName,
    TlsCerts,
    Ja3Hash,
    Ja3String,
    Ja3sHash,
    Ja3sString,
    Ja4Hash,
    SshProto,
    SshSoftware,
    SshHassh,
    SshHasshString,
    SshHasshServer,
    SshHasshServerString,
}

/// Which side of a transaction a buffer belongs to, for "has this rule already alerted on
/// this transaction".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The request (or query).
    Request,
    /// The response.
    Response,
    /// Neither: the buffer does not name a transaction side.
    Neither,
}

/// What the table knows of a buffer.
struct Def {
    buffer: Buffer,
    /// Suricata's name, as in `fast_pattern` reports and docs.
    name: &'static str,
    /// Sticky-buffer keywords that select it (the dotted name and its legacy spelling).
    keywords: &'static [&'static str],
    /// The application protocol a rule using it is for.
    app: Option<&'static str>,
    side: Side,
}

use Buffer as B;
use Side::{Neither as N, Request as Q, Response as R};

const fn d(
    buffer: Buffer,
    name: &'static str,
    keywords: &'static [&'static str],
    app: Option<&'static str>,
    side: Side,
) -> Def {
    Def {
        buffer,
        name,
        keywords,
        app,
        side,
    }
}

const HTTP: Option<&str> = Some("http");
const DNS: Option<&str> = Some("dns");
const TLS: Option<&str> = Some("tls");
const SSH: Option<&str> = Some("ssh");

/// One row per variant, in declaration order (checked by a test).
#[rustfmt::skip]
const TABLE: &[Def] = &[
    d(B::Pkt, "pkt", &[], None, N),
    d(B::HttpUri, "http.uri", &["http.uri", "http_uri"], HTTP, Q),
    d(B::HttpUriRaw, "http.uri.raw", &["http.uri.raw", "http_raw_uri"], HTTP, Q),
    d(B::HttpMethod, "http.method", &["http.method", "http_method"], HTTP, Q),
    d(B::HttpRequestLine, "http.request_line", &["http.request_line", "http_request_line"], HTTP, Q),
    d(B::HttpHeader, "http.header", &["http.header", "http_header"], HTTP, Q),
    d(B::HttpHeaderRaw, "http.header.raw", &["http.header.raw", "http_raw_header"], HTTP, Q),
    d(B::HttpCookie, "http.cookie", &["http.cookie", "http_cookie"], HTTP, Q),
    d(B::HttpUserAgent, "http.user_agent", &["http.user_agent", "http_user_agent"], HTTP, Q),
    d(B::HttpHost, "http.host", &["http.host", "http_host"], HTTP, Q),
    d(B::HttpHostRaw, "http.host.raw", &["http.host.raw", "http_raw_host"], HTTP, Q),
    d(B::HttpReferer, "http.referer", &["http.referer", "http_referer"], HTTP, Q),
    d(B::HttpAccept, "http.accept", &["http.accept", "http_accept"], HTTP, Q),
    d(B::HttpContentType, "http.content_type", &["http.content_type", "http_content_type"], HTTP, Q),
    d(B::HttpContentLen, "http.content_len", &["http.content_len", "http_content_len"], HTTP, Q),
    d(B::HttpServer, "http.server", &["http.server", "http_server"], HTTP, R),
    d(B::HttpLocation, "http.location", &["http.location", "http_location"], HTTP, R),
    d(B::HttpProtocol, "http.protocol", &["http.protocol", "http_protocol"], HTTP, Q),
    d(B::HttpStatCode, "http.stat_code", &["http.stat_code", "http_stat_code"], HTTP, R),
    d(B::HttpStatMsg, "http.stat_msg", &["http.stat_msg", "http_stat_msg"], HTTP, R),
    d(B::HttpRequestBody, "http.request_body", &["http.request_body", "http_client_body"], HTTP, Q),
    d(B::HttpResponseBody, "http.response_body", &["http.response_body", "http_server_body"], HTTP, R),
    d(B::HttpHeaderNames, "http.header_names", &["http.header_names", "http_header_names"], HTTP, Q),
    d(B::HttpStart, "http.start", &["http.start", "http_start"], HTTP, Q),
    d(B::HttpResponseLine, "http.response_line", &["http.response_line", "http_response_line"], HTTP, R),
    d(B::HttpAcceptEnc, "http.accept_enc", &["http.accept_enc", "http_accept_enc"], HTTP, Q),
    d(B::HttpAcceptLang, "http.accept_lang", &["http.accept_lang", "http_accept_lang"], HTTP, Q),
    d(B::HttpConnection, "http.connection", &["http.connection", "http_connection"], HTTP, Q),
    // `file.data` selects the response body unless the rule is to_server (settled once the
    // rule's direction is known).
    d(B::FileDataTs, "file.data.ts", &[], HTTP, Q),
    d(B::FileDataTc, "file.data.tc", &["file.data", "file_data"], HTTP, R),
    d(B::DnsQuery, "dns.query", &["dns.query", "dns_query"], DNS, Q),
    d(B::DnsQueriesRrname, "dns.queries.rrname", &[], DNS, N),
    d(B::DnsOpcode, "dns.opcode", &[], DNS, N),
    d(B::TlsSni, "tls.sni", &["tls.sni", "tls_sni"], TLS, N),
    d(B::TlsAlpn, "tls.alpn", &[], TLS, N),
    d(B::TlsCertSubject, "tls.cert_subject", &["tls.cert_subject", "tls_cert_subject"], TLS, N),
    d(B::TlsCertIssuer, "tls.cert_issuer", &["tls.cert_issuer", "tls_cert_issuer"], TLS, N),
    d(B::TlsCertSerial, "tls.cert_serial", &["tls.cert_serial", "tls_cert_serial"], TLS, N),
    d(B::TlsCertFingerprint, "tls.cert_fingerprint", &["tls.cert_fingerprint", "tls_cert_fingerprint"], TLS, N),
    d(B::TlsSubjectAltName, "tls.subjectaltname", &[], TLS, N),
    d(B::TlsCerts, "tls.certs", &["tls.certs"], TLS, N),
    d(B::Ja3Hash, "ja3.hash", &["ja3.hash", "ja3_hash"], TLS, N),
    d(B::Ja3String, "ja3.string", &["ja3.string", "ja3_string"], TLS, N),
    d(B::Ja3sHash, "ja3s.hash", &["ja3s.hash", "ja3s_hash"], TLS, N),
    d(B::Ja3sString, "ja3s.string", &[], TLS, N),
    d(B::Ja4Hash, "ja4.hash", &["ja4.hash"], TLS, N),
    d(B::SshProto, "ssh.proto", &["ssh.proto", "ssh_proto"], SSH, N),
    d(B::SshSoftware, "ssh.software", &["ssh.software", "ssh_software"], SSH, N),
    d(B::SshHassh, "ssh.hassh", &["ssh.hassh"], SSH, N),
    d(B::SshHasshString, "ssh.hassh.string", &["ssh.hassh.string"], SSH, N),
    d(B::SshHasshServer, "ssh.hassh.server", &["ssh.hassh.server"], SSH, N),
    d(B::SshHasshServerString, "ssh.hassh.server.string", &["ssh.hassh.server.string"], SSH, N),
];

impl Buffer {
    /// How many buffers there are: the length of arrays indexed by [`Buffer::index`].
    pub const COUNT: usize = TABLE.len();

    /// Every buffer, in declaration order.
    pub fn all() -> impl Iterator<Item = Buffer> {
        TABLE.iter().map(|d| d.buffer)
    }

    fn def(self) -> &'static Def {
        &TABLE[self as usize]
    }

    /// The buffer's position in arrays of [`Buffer::COUNT`] entries.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Suricata's name for it (`http.uri`, `dns.query`, …; `pkt` for the payload).
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The application protocol a rule inspecting it is for (`None` for the payload).
    pub fn app(self) -> Option<&'static str> {
        self.def().app
    }

    /// The transaction side it belongs to.
    pub fn side(self) -> Side {
        self.def().side
    }

    /// The buffer a sticky-buffer keyword selects (`http.uri`, `http_uri`, `file.data`, …).
    pub fn from_keyword(keyword: &str) -> Option<Buffer> {
        TABLE
            .iter()
            .skip(1)
            .find(|d| d.keywords.contains(&keyword))
            .map(|d| d.buffer)
    }
}

impl std::fmt::Display for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One value per buffer, indexed by [`Buffer`]: what detection keeps per transaction side
/// and what one evaluation looks its buffers up in.
#[derive(Clone, Debug)]
pub struct PerBuffer<T>([T; Buffer::COUNT]);

impl<T: Default> Default for PerBuffer<T> {
    fn default() -> Self {
        PerBuffer(std::array::from_fn(|_| T::default()))
    }
}

impl<T> std::ops::Index<Buffer> for PerBuffer<T> {
    type Output = T;
    fn index(&self, b: Buffer) -> &T {
        &self.0[b.index()]
    }
}

impl<T> std::ops::IndexMut<Buffer> for PerBuffer<T> {
    fn index_mut(&mut self, b: Buffer) -> &mut T {
        &mut self.0[b.index()]
    }
}

impl<T> PerBuffer<T> {
    /// The values with their buffers, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (Buffer, &T)> {
        Buffer::all().zip(self.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_row_per_variant_in_order() {
        for (i, d) in TABLE.iter().enumerate() {
            assert_eq!(d.buffer as usize, i, "row {i} ({}) is out of order", d.name);
        }
        assert_eq!(Buffer::all().last(), Some(Buffer::SshHasshServerString));
    }

    #[test]
    fn keywords_select_buffers_and_names_are_unique() {
        assert_eq!(Buffer::from_keyword("http_uri"), Some(Buffer::HttpUri));
        assert_eq!(
            Buffer::from_keyword("http.uri.raw"),
            Some(Buffer::HttpUriRaw)
        );
        assert_eq!(Buffer::from_keyword("file_data"), Some(Buffer::FileDataTc));
        assert_eq!(Buffer::from_keyword("ja4.hash"), Some(Buffer::Ja4Hash));
        // Not keywords: the payload has pkt_data, which is not a sticky buffer.
        assert_eq!(Buffer::from_keyword("pkt_data"), None);
        assert_eq!(Buffer::from_keyword("tls.alpn"), None);
        assert_eq!(Buffer::from_keyword("frobnicate"), None);
        let mut names: Vec<&str> = Buffer::all().map(Buffer::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Buffer::COUNT);
        let mut kws: Vec<&str> = TABLE
            .iter()
            .flat_map(|d| d.keywords.iter().copied())
            .collect();
        let n = kws.len();
        kws.sort_unstable();
        kws.dedup();
        assert_eq!(kws.len(), n, "a keyword selects one buffer");
    }

    #[test]
    fn apps_and_sides() {
        assert_eq!(Buffer::Pkt.app(), None);
        assert_eq!(Buffer::FileDataTs.app(), Some("http"));
        assert_eq!(Buffer::Ja3sHash.app(), Some("tls"));
        assert_eq!(Buffer::HttpStatCode.side(), Side::Response);
        assert_eq!(Buffer::HttpContentType.side(), Side::Request);
        assert_eq!(Buffer::DnsQuery.side(), Side::Request);
        assert_eq!(Buffer::DnsQueriesRrname.side(), Side::Neither);
        assert_eq!(Buffer::TlsSni.side(), Side::Neither);
    }
}
