//! Architecture invariants from ARCHITECTURE.md, checked on the source tree.

use std::path::{Path, PathBuf};

use crate::harness::repo;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(repo()).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The code of a file without its `#[cfg(test)]` module and comments.
fn code(text: &str) -> String {
    let body = text.split("#[cfg(test)]").next().unwrap_or(text);
    body.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

#[test]
fn every_module_says_what_it_is_for() {
    for (path, text) in sources() {
        assert!(text.starts_with("//!"), "{path} must start with a `//!` paragraph stating its job");
    }
}

#[test]
fn only_the_cli_prints() {
    for (path, text) in sources() {
        if path.starts_with("src/cli/") || path == "src/main.rs" {
            continue;
        }
        let c = code(&text);
        for m in ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("] {
            assert!(!c.contains(m), "{path} uses {m}: only src/cli prints");
        }
    }
}

#[test]
fn the_core_does_no_io() {
    for (path, text) in sources() {
        let core = ["src/model/", "src/manifest/", "src/plan/", "src/diag.rs"].iter().any(|p| path.starts_with(p));
        if !core || path == "src/manifest/sources.rs" {
            continue;
        }
        let c = code(&text);
        for banned in [
            "tokio",
            "crate::transport",
            "crate::store",
            "bollard",
            "rusqlite",
            "std::fs",
            "crate::cli",
            "crate::engine",
        ] {
            assert!(!c.contains(banned), "{path} mentions `{banned}`: model, manifest and plan stay pure");
        }
    }
}

#[test]
fn nothing_below_the_front_ends_imports_them() {
    for (path, text) in sources() {
        if path.starts_with("src/cli/") || path == "src/main.rs" || path == "src/lib.rs" {
            continue;
        }
        assert!(!code(&text).contains("crate::cli"), "{path} imports the CLI");
    }
}
