//! The unused-dependency check of `cargo xtask test` (what rustc's `unused_crate_dependencies`
//! would say, without its false alarms on crates with several targets): every dependency a
//! workspace crate declares must be named in the sources of the targets that can use it —
//! normal dependencies in `src/` (and a fuzz crate's `fuzz_targets/`), dev-dependencies in `src/`, `tests/` or `benches/`,
//! build-dependencies in `build.rs`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use serde_json::Value;

/// One declared dependency.
#[derive(Debug, PartialEq, Eq)]
struct Dep {
    /// The name the code uses (`md5` for `md-5`, the rename if any).
    ident: String,
    /// `normal`, `dev` or `build`.
    kind: String,
}

pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Whether `text` names crate `ident` as Rust code does: `ident::`, `use ident`, or
/// `extern crate ident`.
fn names(text: &str, ident: &str) -> bool {
    let mut from = 0;
    while let Some(i) = text[from..].find(ident) {
        let at = from + i;
        from = at + ident.len();
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let after = &text[at + ident.len()..];
        if after.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let lead = text[..at].trim_end();
        if after.starts_with("::")
            || after.starts_with(" as ")
            || lead.ends_with("use")
            || lead.ends_with("extern crate")
        {
            return true;
        }
    }
    false
}

/// The unused dependencies of one package: (dependency, kind).
fn unused(dir: &Path, deps: &[Dep]) -> Vec<(String, String)> {
    let read = |sub: &[&str]| -> String {
        let mut files = Vec::new();
        for s in sub {
            let p = dir.join(s);
            if p.is_file() {
                files.push(p);
            } else {
                rust_files(&p, &mut files);
            }
        }
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (src, dev, build) = (
        read(&["src", "fuzz_targets"]),
        read(&["src", "tests", "benches", "fuzz_targets"]),
        read(&["build.rs"]),
    );
    deps.iter()
        .filter(|d| {
            let text = match d.kind.as_str() {
                "dev" => &dev,
                "build" => &build,
                _ => &src,
            };
            !names(text, &d.ident)
        })
        .map(|d| (d.ident.clone(), d.kind.clone()))
        .collect()
}

/// Runs the check over the workspace (and the fuzz crate beside it).
pub fn check(root: &Path) -> anyhow::Result<()> {
    // Only this platform's dependencies: others need not be downloaded to be checked.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV printed no host")?;
    let mut problems = Vec::new();
    for manifest in [root.join("Cargo.toml"), root.join("fuzz/Cargo.toml")] {
        let out =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "metadata",
                    "--format-version",
                    "1",
                    "--filter-platform",
                    &host,
                    "--manifest-path",
                ])
                .arg(&manifest)
                .output()
                .with_context(|| format!("running cargo metadata on {}", manifest.display()))?;
        if !out.status.success() {
            bail!(
                "cargo metadata on {} failed: {}",
                manifest.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let meta: Value = serde_json::from_slice(&out.stdout).context("cargo metadata output")?;
        // Every package's library name, by package name (`md-5` → `md5`).
        let mut lib_names: BTreeMap<String, String> = BTreeMap::new();
        for p in meta["packages"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let lib = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "lib" || k == "proc-macro"))
                })
                .and_then(|t| t["name"].as_str())
                .map_or_else(|| name.replace('-', "_"), |n| n.replace('-', "_"));
            lib_names.insert(name, lib);
        }
        let members: Vec<&str> = meta["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for p in meta["packages"].as_array().into_iter().flatten() {
            if !p["id"].as_str().is_some_and(|id| members.contains(&id)) {
                continue;
            }
            let dir = Path::new(p["manifest_path"].as_str().unwrap_or_default())
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let deps: Vec<Dep> = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let name = d["name"].as_str().unwrap_or_default();
                    let ident = d["rename"].as_str().map_or_else(
                        || {
                            lib_names
                                .get(name)
                                .cloned()
                                .unwrap_or_else(|| name.replace('-', "_"))
                        },
                        |r| r.replace('-', "_"),
                    );
                    Dep {
                        ident,
                        kind: d["kind"].as_str().unwrap_or("normal").to_string(),
                    }
                })
                .collect();
            for (dep, kind) in unused(&dir, &deps) {
                problems.push(format!(
                    "{}: {kind} dependency {dep} is not used",
                    p["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "unused dependencies (remove them from Cargo.toml, or move them to the kind that \
             uses them):\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// The crates that need the eBPF toolchain (rust-src for the nightly, bpf-linker) to build.
const NEED_EBPF_TOOLCHAIN: [&str; 2] = ["sensor-user", "sensor-ebpf"];

/// Which of [`NEED_EBPF_TOOLCHAIN`] a `cargo tree --prefix none --format {p}` listing holds.
fn needs_ebpf_toolchain(tree: &str) -> Vec<&str> {
    let mut found: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| NEED_EBPF_TOOLCHAIN.contains(name))
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// Checks that xtask builds without the eBPF toolchain: `cargo xtask setup` is what installs
/// it, so on a fresh machine xtask must compile before it is there.
pub fn xtask_builds_before_setup(root: &Path) -> anyhow::Result<()> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "tree",
            "-p",
            "xtask",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}"])
        .current_dir(root)
        .output()
        .context("running cargo tree -p xtask")?;
    if !out.status.success() {
        bail!(
            "cargo tree -p xtask failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let found = needs_ebpf_toolchain(std::str::from_utf8(&out.stdout).unwrap_or(""));
    if !found.is_empty() {
        bail!(
            "xtask depends on {}, which needs the eBPF toolchain that `cargo xtask setup` \
             installs, so no xtask command builds on a fresh machine: use the crate without \
             it (see the `corpus` feature of tests/Cargo.toml)",
            found.join(" and ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{names, needs_ebpf_toolchain};

    #[test]
    fn the_agent_is_found_in_a_dependency_tree() {
        let tree = "xtask v0.1.0 (/w/xtask)\nanyhow v1.0.98\ntests v0.1.0 (/w/tests)\n\
                    sensor-user v0.1.0 (/w/sensor-user)\nsensor-ebpf v0.1.0 (/w/sensor-ebpf)\n\
                    sensor-user v0.1.0 (/w/sensor-user) (*)\n";
        assert_eq!(needs_ebpf_toolchain(tree), ["sensor-ebpf", "sensor-user"]);
        let tree = "xtask v0.1.0 (/w/xtask)\ntests v0.1.0 (/w/tests)\n\
                    sensor-common v0.1.0 (/w/sensor-common)\nsensor-user-extra v1.0.0\n";
        assert!(
            needs_ebpf_toolchain(tree).is_empty(),
            "sensor-common builds anywhere; a longer name is another crate"
        );
        assert!(needs_ebpf_toolchain("").is_empty());
    }

    #[test]
    fn crate_names_are_found_as_code_names_them() {
        assert!(names("use md5::Md5;", "md5"));
        assert!(names("let x = serde_json::json!({});", "serde_json"));
        assert!(names("extern crate libc;", "libc"));
        assert!(!names("let md5sum = 1; // md5", "md5"));
        assert!(!names("my_md5::x()", "md5"), "part of another name");
        assert!(
            !names("use serde_json::json;", "serde"),
            "the start of another name"
        );
        assert!(
            !names("crate::md5::x()", "md5"),
            "a module of the crate, not the dependency"
        );
    }
}
