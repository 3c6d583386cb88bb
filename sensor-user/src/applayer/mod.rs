//! Application-layer protocols: detection by content, and the per-flow parsers that turn
//! reassembled stream bytes (TCP) or datagrams (UDP) into EVE protocol records, sticky buffers
//! for the signature engine, and protocol anomalies.

pub mod buffer;
pub mod dns;
pub mod http;
mod session;
pub mod ssh;
pub mod starttls;
pub mod tls;

pub use buffer::Buffer;
pub use session::Session;

/// Direction of data within a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Dir {
    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

/// What the application layer is handed for one direction: stream bytes in order (or one
/// datagram), or word that bytes were lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// The next in-order bytes.
    Data(Vec<u8>),
    /// This many bytes were never seen; data after them follows.
    Gap(u64),
}

impl Chunk {
    /// Bytes the chunk stands for, seen or not.
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Data(d) => d.len() as u64,
            Chunk::Gap(n) => *n,
        }
    }

    /// `true` for empty data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One EVE protocol record: `object` is written under the key `event_type`
/// (for example `"dns": {...}` with `"event_type": "dns"`). The pipeline adds the common
/// fields (timestamp, flow id, addresses, ports, `app_proto`, `pcap_cnt`).
#[derive(Clone, Debug, PartialEq)]
pub struct AppRecord {
    /// `dns`, `http`, `tls`, `ssh`.
    pub event_type: &'static str,
    /// The protocol object.
    pub object: serde_json::Value,
    /// Direction of the packet that completed the record; decides src/dest orientation of
    /// records that Suricata writes from the packet's point of view (DNS responses).
    pub dir: Dir,
    /// The transaction's id, for protocols whose records carry it (`tx_id`, HTTP).
    pub tx_id: Option<u64>,
}

/// What one call into a parser produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// EVE records to write now.
    pub records: Vec<AppRecord>,
    /// Sticky buffers for the signature engine, named as Suricata's rule keywords
    /// (`dns.query`, `tls.sni`, `tls.cert_subject`, `tls.cert_issuer`, `ja3.hash`,
    /// `ja3s.hash`, `ja4.hash`, `ssh.software`, `ssh.proto`, …), with the direction they
    /// belong to.
    pub buffers: Vec<(Dir, Buffer, Vec<u8>)>,
    /// Protocol anomalies, by Suricata's event names where one exists (for example
    /// `INVALID_RECORD_TYPE`), written as EVE `anomaly` records of type `applayer`.
    pub anomalies: Vec<&'static str>,
    /// The parser handed the stream over (an HTTP `CONNECT` or `Upgrade` that succeeded):
    /// bytes after this call belong to whatever protocol is detected next. `leftover` holds,
    /// per direction, bytes the parser had already received beyond the switch point.
    pub switch_protocol: Option<Leftover>,
    /// The id of the transaction in progress after this call. Alerts on it carry its EVE
    /// protocol object as it stands after the packet, as Suricata's do; the object is built
    /// ([`AppParser::tx_object`]) only when an alert needs it, not on every call (on real
    /// traffic with ET Open, building it for every HTTP segment was 5% of the time).
    pub tx: Option<u64>,
    /// Set by the caller when signatures are evaluated: only then do parsers need to fill
    /// `buffers` and `tx`, and they may skip that work otherwise.
    pub inspect: bool,
    /// The protocol whose parser produced this output (set by [`session::Session`]): after a
    /// `CONNECT` or STARTTLS it is not the flow's first protocol, and rules for it apply.
    pub proto: Option<&'static str>,
    /// The session is encrypted from here on (TLS application data after the ServerHello,
    /// SSH after both sides' NEWKEYS): what follows is ciphertext, which payload rules are no
    /// longer run on by default.
    pub encrypted: bool,
}

impl Output {
    /// An empty output; `inspect` as the caller needs.
    pub fn new(inspect: bool) -> Output {
        Output {
            inspect,
            ..Output::default()
        }
    }
}

/// Bytes a parser received beyond the point where it handed the stream over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftover {
    /// Client-to-server bytes.
    pub to_server: Vec<u8>,
    /// Server-to-client bytes.
    pub to_client: Vec<u8>,
}

/// A protocol parser's state for one flow.
pub trait AppParser: Send {
    /// The `app_proto` name: `dns`, `http`, `tls`, `ssh`.
    fn name(&self) -> &'static str;

    /// Consumes the next in-order bytes of `dir`: any slice of the TCP stream (a message may
    /// span calls, and a call may hold several messages), or exactly one UDP datagram.
    fn parse(&mut self, dir: Dir, data: &[u8], out: &mut Output);

    /// `len` bytes of `dir` were lost (a gap in the TCP stream). The parser resynchronises if
    /// it can, or stops parsing that direction.
    fn gap(&mut self, dir: Dir, len: usize, out: &mut Output) {
        let _ = (dir, len, out);
    }

    /// The flow ends: write what is still pending (for example a handshake that never
    /// completed, or a request without a response).
    fn finish(&mut self, out: &mut Output) {
        let _ = out;
    }

    /// Whether the protocol found after this parser hands the connection on becomes the
    /// flow's `app_proto`, this one its `app_proto_orig` (a STARTTLS upgrade, as Suricata
    /// names it); otherwise the flow keeps this parser's name (an HTTP tunnel).
    fn hands_over_name(&self) -> bool {
        false
    }

    /// The EVE protocol object of transaction `id` as it stands now, while the parser still
    /// holds it (the one named by [`Output::tx`] until the next call).
    fn tx_object(&self, id: u64) -> Option<serde_json::Value> {
        let _ = id;
        None
    }
}
