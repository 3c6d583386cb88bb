//! The HTTP/1 parser on a stream in both directions cut by the input's schedule, the probe,
//! and the URI helpers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use precinct::applayer::http::{normalize_uri, percent_decode, probe, HttpParser};
use precinct_fuzz::{run_stream, Schedule, Step};

fuzz_target!(|data: &[u8]| {
    let input = Schedule::new(data);
    if let Some(Step::Data(_, first)) = input.steps().first() {
        let _ = probe(first);
        let _ = percent_decode(first);
        let _ = normalize_uri(first);
    }
    run_stream(&mut HttpParser::new(), &input);
});
