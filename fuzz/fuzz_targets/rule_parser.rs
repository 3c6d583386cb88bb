//! The rule parser and compiler on arbitrary text (lossy UTF-8): loading a rule file, and
//! parsing each rule the splitter finds on its own.
#![no_main]

use std::{collections::HashMap, sync::OnceLock};

use libfuzzer_sys::fuzz_target;
use precinct::detect::{
    addr::default_vars,
    classification::Classifications,
    parse::{parse_rule, split_rules},
    RuleSet,
};

fn env() -> &'static (HashMap<String, String>, Classifications) {
    static ENV: OnceLock<(HashMap<String, String>, Classifications)> = OnceLock::new();
    ENV.get_or_init(|| (default_vars(), Classifications::builtin()))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = parse_rule(&text);
    for rule in split_rules(&text) {
        let _ = parse_rule(&rule.text);
    }
    let (vars, classes) = env();
    let _ = RuleSet::from_texts(&[("fuzz.rules".to_owned(), text)], vars, classes);
});
