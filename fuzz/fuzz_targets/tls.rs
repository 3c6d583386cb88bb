//! The TLS parser on a stream in both directions cut by the input's schedule (the variant
//! flag turns JA3 and JA4 on), and the probe.
#![no_main]

use libfuzzer_sys::fuzz_target;
use precinct::applayer::tls::{probe, TlsConfig, TlsParser};
use precinct_fuzz::{run_stream, Schedule, Step};

fuzz_target!(|data: &[u8]| {
    let input = Schedule::new(data);
    if let Some(Step::Data(_, first)) = input.steps().first() {
        let _ = probe(first);
    }
    let config = TlsConfig {
        ja3: input.variant,
        ja4: input.variant,
        ..TlsConfig::default()
    };
    run_stream(&mut TlsParser::with_config(config), &input);
});
