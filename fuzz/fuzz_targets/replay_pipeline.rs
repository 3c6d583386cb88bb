//! Ethernet frames from the fuzzer through the inspection pipeline with a few signatures
//! loaded, into an EVE sink.
//!
//! Input: byte 0 bit 0 turns mid-stream pickup on; then records of a u16 BE header (bits
//! 0–11: frame length; bits 12–15: E, the clock advances 4^E ms before the frame) and the
//! frame.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use precinct::{
    detect::{addr::default_vars, classification::Classifications, RuleSet},
    eve::EveWriter,
    inspect::{InspectConfig, Pipeline},
};

/// Signatures over each protocol's buffers, so detection runs on what the parsers produce.
const RULES: &str = r#"
alert http any any -> any any (msg:"uri"; http.uri; content:"/login"; sid:1;)
alert dns any any -> any any (msg:"query"; dns.query; content:"example"; nocase; sid:2;)
alert tls any any -> any any (msg:"sni"; tls.sni; content:"vote"; sid:3;)
alert ssh any any -> any any (msg:"ssh"; ssh.software; content:"OpenSSH"; sid:4;)
alert tcp any any -> any any (msg:"raw"; flow:established,to_server; content:"GET"; depth:3; sid:5;)
alert udp any any -> any 53 (msg:"dsize"; dsize:>20; sid:6;)
alert ip any any -> any any (msg:"ttl"; ttl:1; sid:7;)
"#;

fn rules() -> Arc<RuleSet> {
    static RULESET: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULESET
        .get_or_init(|| {
            let texts = [("fuzz.rules".to_owned(), RULES.to_owned())];
            let set = RuleSet::from_texts(&texts, &default_vars(), &Classifications::builtin());
            assert!(set.report.skipped.is_empty(), "{:?}", set.report.skipped);
            Arc::new(set)
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = InspectConfig {
        midstream: flags & 1 != 0,
        ..InspectConfig::default()
    };
    let eve = EveWriter::from_writer(Box::new(std::io::sink()));
    let mut pipeline = Pipeline::new(cfg, eve);
    pipeline.set_rules(rules());
    let mut ts_ns = 1_795_000_000_000_000_000u64;
    while let Some((h, r)) = rest.split_first_chunk::<2>() {
        let h = u16::from_be_bytes(*h);
        let len = usize::from(h & 0x0fff).min(r.len());
        ts_ns += (1u64 << (2 * (h >> 12))) * 1_000_000;
        let (frame, r) = r.split_at(len);
        rest = r;
        let _ = pipeline.packet(ts_ns, 1, frame);
    }
    let _ = pipeline.finish();
});
