//! The capture reader on an arbitrary file (pcap or pcapng), and every packet it returns
//! through the inspection pipeline into an EVE sink, as `precinct replay` does. Errors are
//! fine; panics are not.
#![no_main]

use std::{path::PathBuf, sync::OnceLock};

use libfuzzer_sys::fuzz_target;
use precinct::{
    capture::CaptureReader,
    eve::EveWriter,
    inspect::{InspectConfig, Pipeline},
};

/// One file per fuzzing process, rewritten for every input.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("precinct-fuzz-{}.pcap", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("writing the capture to a temporary file");
    let Ok(mut reader) = CaptureReader::open(path) else {
        return;
    };
    let eve = EveWriter::from_writer(Box::new(std::io::sink()));
    let mut pipeline = Pipeline::new(InspectConfig::default(), eve);
    while let Ok(Some(pkt)) = reader.next_packet() {
        let _ = pipeline.packet(pkt.ts_ns, pkt.linktype, pkt.data);
    }
    let _ = pipeline.finish();
});
