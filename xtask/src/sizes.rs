//! The file-size check of `cargo xtask lint`: a source file of the sensor crates or of xtask
//! holds at most [`MAX_LINES`] lines before its test module, and `inspect/mod.rs` (the
//! orchestrator of the data path's stages) at most [`MAX_ORCHESTRATOR_LINES`], so that every
//! file can be read in one sitting. Test modules in their own files (`tests.rs`, `tests/`) are
//! not counted: they grow with what they prove.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Lines a source file may hold before its `#[cfg(test)]` module.
pub const MAX_LINES: usize = 700;
/// Lines `sensor-user/src/inspect/mod.rs` may hold.
pub const MAX_ORCHESTRATOR_LINES: usize = 400;
/// The crates whose sources are held to the limits.
const CRATES: [&str; 4] = ["sensor-user", "sensor-common", "sensor-ebpf", "xtask"];

/// Lines of `text` before the first line that opens a test module (`#[cfg(test)]` at the
/// start of a line), or all of them when there is none.
fn lines_before_tests(text: &str) -> usize {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .count()
}

/// Whether `path` is a test module kept in its own file.
fn is_test_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The limit that applies to `path` (relative to the workspace root).
fn limit(path: &Path) -> usize {
    if path == Path::new("sensor-user/src/inspect/mod.rs") {
        MAX_ORCHESTRATOR_LINES
    } else {
        MAX_LINES
    }
}

/// Files over their limit, with their line counts, from `(relative path, text)` pairs.
fn over_limit(files: &[(PathBuf, String)]) -> Vec<(PathBuf, usize, usize)> {
    files
        .iter()
        .filter(|(p, _)| !is_test_file(p))
        .filter_map(|(p, text)| {
            let n = lines_before_tests(text);
            let max = limit(p);
            (n > max).then(|| (p.clone(), n, max))
        })
        .collect()
}

/// Fails naming every file over its limit.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let mut paths = Vec::new();
    for c in CRATES {
        crate::deps::rust_files(&root.join(c), &mut paths);
    }
    let mut files = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?;
        let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
        files.push((rel, text));
    }
    let over = over_limit(&files);
    if over.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = over
        .iter()
        .map(|(p, n, max)| {
            format!(
                "{}: {n} lines before its tests (at most {max})",
                p.display()
            )
        })
        .collect();
    bail!(
        "source files too long to read in one sitting; split them by what they own:\n  {}",
        list.join("\n  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, lines: usize, tests_after: bool) -> (PathBuf, String) {
        let mut text = "fn f() {}\n".repeat(lines);
        if tests_after {
            text.push_str("#[cfg(test)]\nmod tests {\n");
            text.push_str(&"    fn t() {}\n".repeat(2000));
            text.push_str("}\n");
        }
        (PathBuf::from(path), text)
    }

    #[test]
    fn only_lines_before_the_test_module_count() {
        let files = [
            file("sensor-user/src/a.rs", 700, true),
            file("sensor-user/src/b.rs", 701, false),
            file("sensor-common/src/c.rs", 10, true),
        ];
        let over = over_limit(&files);
        assert_eq!(
            over,
            vec![(PathBuf::from("sensor-user/src/b.rs"), 701, MAX_LINES)]
        );
    }

    #[test]
    fn the_orchestrator_has_its_own_limit() {
        let files = [file("sensor-user/src/inspect/mod.rs", 401, true)];
        assert_eq!(
            over_limit(&files),
            vec![(
                PathBuf::from("sensor-user/src/inspect/mod.rs"),
                401,
                MAX_ORCHESTRATOR_LINES
            )]
        );
        assert!(over_limit(&[file("sensor-user/src/inspect/mod.rs", 400, false)]).is_empty());
    }

    #[test]
    fn test_files_are_not_held_to_the_limit() {
        let files = [
            file("sensor-user/src/applayer/tls/tests.rs", 5000, false),
            file("sensor-user/tests/big.rs", 5000, false),
        ];
        assert!(over_limit(&files).is_empty());
    }

    #[test]
    fn a_file_with_no_lines_is_fine() {
        assert_eq!(lines_before_tests(""), 0);
        assert!(over_limit(&[(PathBuf::from("xtask/src/e.rs"), String::new())]).is_empty());
    }
}
