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

/// The longest a function in src/ may be, from its `fn` line to its closing
/// brace.
const MAX_FN_LINES: usize = 100;

/// Functions over `MAX_FN_LINES` today, each to be split; an entry that is
/// no longer too long must be removed.
const LONG_FNS: &[(&str, &str, &str)] = &[
    ("src/transport/docker.rs", "create_body", "one Engine API body, field by field"),
    ("src/plan/diff.rs", "converge_service", "the per-container decision of the diff"),
    ("src/plan/graph.rs", "add_edges", "every kind of edge of the plan graph"),
];

/// Each function of `text` (its name, first line and length in lines): from
/// a line declaring `fn` to the first line after it that is a `}` at the
/// same indentation. One-line functions and bodiless declarations are skipped.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "fn") else { continue };
        let qualifiers = ["pub", "pub(crate)", "pub(super)", "const", "async", "unsafe", "extern"];
        if trimmed.starts_with("//") || !words[..at].iter().all(|w| qualifiers.contains(w) || w.starts_with("pub(")) {
            continue;
        }
        let Some(name) = words.get(at + 1).map(|w| w.split(['(', '<']).next().unwrap_or(w).to_string()) else {
            continue;
        };
        if trimmed.ends_with(';') || (trimmed.contains('{') && trimmed.ends_with('}')) {
            continue;
        }
        let close = format!("{}}}", &line[..line.len() - trimmed.len()]);
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            out.push((name, i + 1, end + 2));
        }
    }
    out
}

#[test]
fn no_function_is_over_a_hundred_lines() {
    let mut long = Vec::new();
    let mut allowed_seen = Vec::new();
    for (path, text) in sources() {
        for (name, line, len) in functions(&text) {
            if len <= MAX_FN_LINES {
                continue;
            }
            if LONG_FNS.iter().any(|(p, n, _)| *p == path && *n == name) {
                allowed_seen.push((path.clone(), name));
                continue;
            }
            long.push(format!("{path}:{line} `{name}` is {len} lines"));
        }
    }
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines; split them into steps:\n{}", long.join("\n"));
    for (path, name, _) in LONG_FNS {
        assert!(
            allowed_seen.iter().any(|(p, n)| p == path && n == name),
            "{path} `{name}` is no longer over {MAX_FN_LINES} lines: remove it from LONG_FNS"
        );
    }
}

#[test]
fn function_lengths_are_measured_from_fn_to_its_closing_brace() {
    let text = "fn a() {\n    x;\n}\n\nimpl T {\n    pub(crate) fn b(\n        y: u8,\n    ) -> u8 {\n        if y {\n        }\n    }\n    fn c();\n    fn d() { 1 }\n}\n";
    let got = functions(text);
    assert_eq!(got, vec![("a".to_string(), 1, 3), ("b".to_string(), 6, 6)]);
}
