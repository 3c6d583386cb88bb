//! The DNS parser over TCP (a stream in both directions, by the input's schedule) or, with
//! the variant flag, over UDP (one call per datagram); the probes on every chunk; and the
//! whole input as one datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use precinct::applayer::{
    dns::{probe, probe_dir, DnsParser},
    AppParser, Dir, Output,
};
use precinct_fuzz::{drain, run_stream, Schedule, Step};

fuzz_target!(|data: &[u8]| {
    let input = Schedule::new(data);
    if input.variant {
        let mut parser = DnsParser::new(false);
        let mut out = Output::default();
        for step in input.steps() {
            if let Step::Data(dir, datagram) = step {
                let _ = probe_dir(datagram, false);
                parser.parse(dir, datagram, &mut out);
                drain(&mut out);
            }
        }
        parser.finish(&mut out);
        drain(&mut out);
    } else {
        for step in input.steps() {
            if let Step::Data(_, chunk) = step {
                let _ = probe_dir(chunk, true);
            }
        }
        run_stream(&mut DnsParser::new(true), &input);
    }

    let _ = probe(data, true);
    let _ = probe(data, false);
    let mut parser = DnsParser::new(false);
    let mut out = Output::default();
    parser.parse(Dir::ToServer, data, &mut out);
    drain(&mut out);
    parser.parse(Dir::ToClient, data, &mut out);
    parser.finish(&mut out);
    drain(&mut out);
});
