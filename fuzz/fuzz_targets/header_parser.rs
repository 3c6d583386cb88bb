//! The shared L2–L4 header parser on arbitrary frames: it never panics, and a parse that
//! ends `Ok` leaves offsets in order and inside the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor_common::parse::{parse, Outcome};

fuzz_target!(|data: &[u8]| {
    let p = parse(data);
    // Offsets are u32, so frames longer than 65,535 bytes (GRO/GSO, jumbograms) are checked
    // like any other: an offset that wrapped would land before the headers it follows.
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
});
