//! The SSH parser on a stream in both directions cut by the input's schedule (the variant
//! flag turns HASSH on), and the probe.
#![no_main]

use libfuzzer_sys::fuzz_target;
use precinct::applayer::ssh::{probe, SshConfig, SshParser};
use precinct_fuzz::{run_stream, Schedule, Step};

fuzz_target!(|data: &[u8]| {
    let input = Schedule::new(data);
    if let Some(Step::Data(_, first)) = input.steps().first() {
        let _ = probe(first);
    }
    let config = SshConfig {
        hassh: input.variant,
    };
    run_stream(&mut SshParser::with_config(config), &input);
});
