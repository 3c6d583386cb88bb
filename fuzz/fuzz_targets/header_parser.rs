//! The shared L2–L4 header parser on arbitrary frames: it never panics, and a parse that
//! ends `Ok` leaves offsets in order and inside the frame. Every input is also parsed followed
//! by 70,000 zero bytes, so that frames past 65,535 bytes (GRO/GSO packets, jumbograms, whose
//! length fields are 0) are checked on every run, not only when the fuzzer grows one that long.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor_common::parse::{parse, Outcome, Parsed};

fn check(p: &Parsed, data: &[u8]) {
    if p.outcome != Outcome::Ok {
        return;
    }
    let (l3, l4, payload, end) = (
        p.l3_off as usize,
        p.l4_off as usize,
        p.payload_off as usize,
        p.ip_end as usize,
    );
    assert!(
        payload <= data.len(),
        "payload_off {payload} past the frame ({})",
        data.len()
    );
    assert!(l4 <= payload, "l4_off {l4} after payload_off {payload}");
    if p.family != 0 {
        assert!(l3 <= l4, "l3_off {l3} after l4_off {l4}");
        assert!(
            end <= data.len(),
            "ip_end {end} past the frame ({})",
            data.len()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let p = parse(data);
    check(&p, data);
    let mut long = data.to_vec();
    long.resize(data.len() + 70_000, 0);
    let q = parse(long.as_slice());
    check(&q, &long);
    // The headers are the same bytes: where both parse, they sit at the same offsets.
    if p.outcome == Outcome::Ok && q.outcome == Outcome::Ok {
        assert_eq!(
            (p.l3_off, p.l4_off, p.payload_off),
            (q.l3_off, q.l4_off, q.payload_off)
        );
    }
});
