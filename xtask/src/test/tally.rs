//! What `cargo test` said: the `test result:` lines added up, and every test it did not run,
//! by name and reason (`test NAME ... ignored, REASON`).

/// The counts of one or more `cargo test` runs.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests that were not run, as `name (reason)`.
    pub ignored: Vec<String>,
}

impl Tally {
    /// Reads one line of `cargo test` output.
    pub fn add_line(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u64>() else { continue };
                match kind {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, tail)) = rest.split_once(" ... ignored") {
                let reason = tail.trim_start_matches(',').trim();
                self.ignored.push(if reason.is_empty() {
                    name.to_string()
                } else {
                    format!("{name} ({reason})")
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn tally_reads_cargo_result_lines() {
        let mut t = Tally::default();
        t.add_line("test result: ok. 13 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.add_line(
            "test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        t.add_line("running 4 tests");
        t.add_line("test lab_flows_are_counted ... ignored, needs root: BPF programs");
        t.add_line("test plain ... ignored");
        t.add_line("test fine ... ok");
        assert_eq!(
            t,
            Tally {
                passed: 14,
                failed: 3,
                ignored: vec![
                    "lab_flows_are_counted (needs root: BPF programs)".into(),
                    "plain".into()
                ],
            }
        );
    }
}
