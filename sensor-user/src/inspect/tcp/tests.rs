//! The session at its seam: segments in, chunks for the application layer out.

use super::*;
use sensor_common::parse::{ethertype, parse};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;
const RST: u8 = 0x04;

/// Client 192.0.2.1:1000 → server 192.0.2.2:80 (direction 0), or back (direction 1).
fn frame(dir: usize, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if dir == 0 {
        ([192, 0, 2, 1], [192, 0, 2, 2], 1000u16, 80u16)
    } else {
        ([192, 0, 2, 2], [192, 0, 2, 1], 80, 1000)
    };
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
    let total = (20 + 20 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

struct Conn {
    s: Session,
    r: Reassembly,
    midstream: bool,
}

impl Conn {
    fn new(midstream: bool) -> Conn {
        Conn {
            s: Session::default(),
            r: Reassembly::new(stream::StreamLimits::default(), 1 << 20),
            midstream,
        }
    }

    fn seg(&mut self, dir: usize, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Delivery {
        let f = frame(dir, seq, ack, flags, payload);
        let p = parse(f.as_slice());
        self.s.segment(
            &p,
            &f,
            payload,
            dir,
            0,
            self.midstream,
            true,
            &mut self.r,
            &mut Vec::new(),
        )
    }

    /// The usual opening: client ISN 100, server ISN 500.
    fn open(&mut self) {
        assert_eq!(self.seg(0, 100, 0, SYN, b""), Delivery::default());
        assert_eq!(self.seg(1, 500, 101, SYN | ACK, b""), Delivery::default());
        assert_eq!(self.seg(0, 101, 501, ACK, b""), Delivery::default());
    }
}

fn data(d: Dir, b: &[u8]) -> (Dir, Chunk) {
    (d, Chunk::Data(b.to_vec()))
}

#[test]
fn data_reaches_the_app_layer_once_acknowledged() {
    let mut c = Conn::new(false);
    c.open();
    assert!(c.s.established(false));
    assert_eq!(c.s.state(), "established");
    let d = c.seg(0, 101, 501, PSH_ACK, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(d.arrived, Arrived::Payload, "packet rules see it now");
    assert!(d.released.is_empty(), "not acknowledged yet");
    // The server's bare ACK releases the request.
    let d = c.seg(1, 501, 119, ACK, b"");
    assert_eq!(
        d.released,
        vec![data(Dir::ToServer, b"GET / HTTP/1.1\r\n\r\n")]
    );
    // The response, acknowledged by the client's bare ACK.
    let d = c.seg(1, 501, 119, PSH_ACK, b"HTTP/1.1 200 OK\r\n\r\n");
    assert!(d.released.is_empty());
    let d = c.seg(0, 119, 520, ACK, b"");
    assert_eq!(
        d.released,
        vec![data(Dir::ToClient, b"HTTP/1.1 200 OK\r\n\r\n")]
    );
}

#[test]
fn a_partly_acknowledged_segment_is_split() {
    let mut c = Conn::new(false);
    c.open();
    c.seg(0, 101, 501, PSH_ACK, b"abcdef");
    let d = c.seg(1, 501, 104, ACK, b"");
    assert_eq!(d.released, vec![data(Dir::ToServer, b"abc")]);
    let d = c.seg(1, 501, 107, ACK, b"");
    assert_eq!(d.released, vec![data(Dir::ToServer, b"def")]);
}

#[test]
fn server_data_waits_for_the_client_to_speak() {
    let mut c = Conn::new(false);
    c.open();
    // A server banner first (SSH, SMTP): acknowledged, but held.
    c.seg(1, 501, 101, PSH_ACK, b"SSH-2.0-x\r\n");
    let d = c.seg(0, 101, 512, ACK, b"");
    assert!(d.released.is_empty(), "held until the client speaks");
    c.seg(0, 101, 512, PSH_ACK, b"SSH-2.0-y\r\n");
    // The server's ACK of the client's banner releases both, once the client has spoken.
    let d = c.seg(1, 512, 112, ACK, b"");
    assert_eq!(
        d.released,
        vec![
            data(Dir::ToClient, b"SSH-2.0-x\r\n"),
            data(Dir::ToServer, b"SSH-2.0-y\r\n")
        ]
    );
}

#[test]
fn a_reset_hands_everything_over() {
    let mut c = Conn::new(false);
    c.open();
    c.seg(0, 101, 501, PSH_ACK, b"hello");
    let d = c.seg(1, 501, 0, RST, b"");
    assert_eq!(d.released, vec![data(Dir::ToServer, b"hello")]);
    assert_eq!(c.s.state(), "closed");
}

#[test]
fn without_the_handshake_nothing_is_reassembled_unless_midstream() {
    let mut strict = Conn::new(false);
    let d = strict.seg(0, 1000, 2000, PSH_ACK, b"GET /");
    assert_eq!(d.arrived, Arrived::Nothing);
    assert!(!strict.s.established(false));
    let mut mid = Conn::new(true);
    let d = mid.seg(0, 1000, 2000, PSH_ACK, b"GET /");
    assert_eq!(d.arrived, Arrived::Payload);
    assert!(mid.s.established(true));
    assert_eq!(
        mid.s.flush(0, &mut mid.r),
        vec![data(Dir::ToServer, b"GET /")],
        "the end of the flow hands over what was never acknowledged"
    );
}

#[test]
fn teardown_states() {
    let mut c = Conn::new(false);
    c.open();
    c.seg(0, 101, 501, FIN_ACK, b"");
    assert_eq!(c.s.state(), "fin_wait1");
    c.seg(1, 501, 102, FIN_ACK, b"");
    assert_eq!(c.s.state(), "closed");
    let mut half = Session::default();
    assert_eq!(
        half.state(),
        "established",
        "nothing seen: Suricata's default"
    );
    half.syn = true;
    assert_eq!(half.state(), "syn_sent");
}

#[test]
fn at_the_end_the_client_side_goes_first_whichever_the_key_order() {
    // The server is direction 0 of the key here: its data must still come after the
    // client's, so that a response is paired with the request before it.
    let mut s = Session::default();
    let mut r = Reassembly::new(stream::StreamLimits::default(), 1 << 20);
    let seg = |s: &mut Session,
               r: &mut Reassembly,
               dir: usize,
               seq: u32,
               ack: u32,
               flags: u8,
               data: &[u8]| {
        let f = frame(dir, seq, ack, flags, data);
        let p = parse(f.as_slice());
        s.segment(&p, &f, data, dir, 1, false, false, r, &mut Vec::new())
    };
    seg(&mut s, &mut r, 1, 100, 0, SYN, b"");
    seg(&mut s, &mut r, 0, 500, 101, SYN | ACK, b"");
    seg(&mut s, &mut r, 1, 101, 501, ACK, b"");
    seg(
        &mut s,
        &mut r,
        1,
        101,
        501,
        PSH_ACK,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    // The response acknowledges the request and carries data: nothing is handed over yet.
    let d = seg(
        &mut s,
        &mut r,
        0,
        501,
        119,
        PSH_ACK,
        b"HTTP/1.0 200 OK\r\n\r\n",
    );
    assert!(d.released.is_empty());
    assert_eq!(
        s.flush(1, &mut r),
        vec![
            data(Dir::ToServer, b"GET / HTTP/1.0\r\n\r\n"),
            data(Dir::ToClient, b"HTTP/1.0 200 OK\r\n\r\n")
        ]
    );
}

#[test]
fn packet_rules_see_what_a_segment_made_available() {
    let mut c = Conn::new(false);
    c.open();
    // Early: held, nothing in order yet.
    let d = c.seg(0, 106, 501, PSH_ACK, b"world");
    assert_eq!(d.arrived, Arrived::Nothing);
    // Fills the hole: its own bytes and the held ones.
    let d = c.seg(0, 101, 501, PSH_ACK, b"hello");
    assert_eq!(d.arrived, Arrived::Bytes(b"helloworld".to_vec()));
    // Overlaps what was delivered: only the new bytes.
    let d = c.seg(0, 109, 501, PSH_ACK, b"ld!!");
    assert_eq!(d.arrived, Arrived::Bytes(b"!!".to_vec()));
    assert_eq!(d.arrived.bytes(b"ld!!"), b"!!");
    // In order and whole: the payload itself.
    let d = c.seg(0, 113, 501, PSH_ACK, b"next");
    assert_eq!(d.arrived, Arrived::Payload);
    assert_eq!(d.arrived.bytes(b"next"), b"next");
    // A retransmission adds nothing.
    let d = c.seg(0, 101, 501, PSH_ACK, b"hello");
    assert_eq!(d.arrived, Arrived::Nothing);
    assert!(d.arrived.bytes(b"hello").is_empty());
}
