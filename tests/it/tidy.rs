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

/// Whether a file is a module of unit tests of its own (`tests.rs`, `*_tests.rs`, included under
/// `#[cfg(test)]`): like an inline `#[cfg(test)]` module, it may print (an ignored benchmark's figures).
fn is_test_module(path: &str) -> bool {
    path.ends_with("/tests.rs") || path.ends_with("_tests.rs")
}

#[test]
fn only_the_cli_prints() {
    for (path, text) in sources() {
        if path.starts_with("src/cli/") || path == "src/main.rs" || is_test_module(&path) {
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

/// The `crate::` paths a piece of code names, as `module::rest` (groups in
/// `use crate::{a, b::c}` are split; `crate::Engine`, `crate::Error` and
/// `crate::Result`, the lib's re-exports, are given as `engine` and `error`).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(item);
        } else {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
        }
    }
    out.into_iter()
        .map(|p| p.split_whitespace().collect::<String>())
        .filter(|p| !p.is_empty())
        .map(|p| match p.split("::").next().unwrap_or_default() {
            "Engine" => "engine".to_string(),
            "Error" | "Result" => "error".to_string(),
            _ => p,
        })
        .collect()
}

/// The top-level module of a source file (`src/mcp/tools/apps.rs` → `mcp`).
fn module_of(path: &str) -> &str {
    let rest = path.strip_prefix("src/").unwrap_or(path);
    let end = rest.find(['/', '.']).unwrap_or(rest.len());
    &rest[..end]
}

/// Whether `code` names `krate` as a path (`krate::…`), not in a longer name.
fn names_crate(code: &str, krate: &str) -> bool {
    code.match_indices(&format!("{krate}::")).any(|(i, _)| {
        !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':' || c == '"' || c == '.')
    })
}

/// What the front ends (cli, mcp, watch) may import besides themselves:
/// the engine API and the pure, shared modules (ARCHITECTURE.md, "Front ends").
const FRONT_END_MAY_IMPORT: &[&str] = &["engine", "model", "diag", "auth", "term", "config", "error", "shutdown"];
/// The CLI starts the other front ends (`tomo serve`, `tomo watch`, and the Prometheus endpoint of
/// `tomo serve --metrics`) and nothing else of theirs (but for installing `mcp::call_events`, the
/// log layer routing an MCP call's engine events to it).
const CLI_STARTS: &[&str] = &[
    "mcp::serve_stdio",
    "mcp::serve_http",
    "mcp::call_events",
    "watch::run",
    "watch::WatchOptions",
    "watch::serve_metrics",
];

#[test]
fn front_ends_import_only_the_engine_api() {
    for (path, text) in sources() {
        let this = module_of(&path);
        if !["cli", "mcp", "watch"].contains(&this) {
            continue;
        }
        let c = code(&text);
        for p in crate_paths(&c) {
            let top = p.split("::").next().unwrap_or_default();
            let ok = top == this
                || FRONT_END_MAY_IMPORT.contains(&top)
                || (this == "cli" && CLI_STARTS.iter().any(|s| p == *s));
            assert!(ok, "{path} imports `crate::{p}`: front ends use the engine API (engine::…), not `{top}`");
        }
        assert!(!c.contains(".store()"), "{path} uses the store directly: ask the engine");
        for krate in ["bollard", "russh", "rusqlite"] {
            assert!(!names_crate(&c, krate), "{path} names `{krate}`: front ends hold no Docker, SSH or SQL types");
        }
    }
}

/// The HTTP front modules: the only ones that know axum and tower (and, with
/// the Docker client `transport::http`, hyper).
const HTTP_FRONTS: &[&str] = &["src/mcp/http.rs", "src/mcp/listen.rs", "src/watch/metrics.rs"];

#[test]
fn only_the_http_fronts_know_axum_and_tower() {
    for (path, text) in sources() {
        let c = code(&text);
        let front = HTTP_FRONTS.contains(&path.as_str());
        for krate in ["axum", "tower", "tower_http", "tower_service"] {
            assert!(front || !names_crate(&c, krate), "{path} names `{krate}`: only {HTTP_FRONTS:?} know it");
        }
        for krate in ["hyper", "hyper_util"] {
            let ok = front || path == "src/transport/http.rs";
            assert!(ok || !names_crate(&c, krate), "{path} names `{krate}`: only the HTTP fronts and transport::http");
        }
    }
}

#[test]
fn only_mcp_knows_rmcp_only_transport_knows_docker_and_ssh_only_store_knows_sql() {
    for (path, text) in sources() {
        let c = code(&text);
        let m = module_of(&path);
        assert!(m == "mcp" || !names_crate(&c, "rmcp"), "{path} names `rmcp`: only src/mcp knows it");
        for krate in ["bollard", "russh"] {
            assert!(m == "transport" || !names_crate(&c, krate), "{path} names `{krate}`: only src/transport knows it");
        }
        assert!(m == "store" || !names_crate(&c, "rusqlite"), "{path} names `rusqlite`: only src/store knows SQL");
    }
}

/// Modules below `plan`: what plan, apply and the engine are built from.
const BELOW_PLAN: &[&str] = &[
    "model",
    "diag",
    "term",
    "faults",
    "redact",
    "transport",
    "store",
    "vault",
    "auth",
    "config",
    "manifest",
    "observe",
    "compose",
];

#[test]
fn nothing_below_plan_imports_plan_or_above() {
    for (path, text) in sources() {
        let this = module_of(&path);
        if !BELOW_PLAN.contains(&this) {
            continue;
        }
        for p in crate_paths(&code(&text)) {
            let top = p.split("::").next().unwrap_or_default();
            let above = ["plan", "apply", "engine", "cli", "mcp", "watch"].contains(&top);
            assert!(!above, "{path} imports `crate::{p}`: {this} sits below plan and must not import {top}");
        }
    }
}

#[test]
fn model_imports_only_pure_modules() {
    for (path, text) in sources() {
        if module_of(&path) != "model" {
            continue;
        }
        for p in crate_paths(&code(&text)) {
            let top = p.split("::").next().unwrap_or_default();
            assert!(["model", "term", "diag"].contains(&top), "{path} imports `crate::{p}`: model imports no {top}");
        }
    }
}

#[test]
fn the_layering_check_reads_imports() {
    let c = "use crate::{plan::{Plan, Scope}, engine};\nlet x = crate::store::Store::open();\nuse crate::Error;";
    assert_eq!(crate_paths(c), ["plan::{Plan,Scope}", "engine", "store::Store::open", "error"]);
    assert_eq!(module_of("src/mcp/tools/apps.rs"), "mcp");
    assert_eq!(module_of("src/vault.rs"), "vault");
    assert!(names_crate("use axum::Router;", "axum"));
    assert!(!names_crate("m.target().starts_with(\"rmcp::x\")", "rmcp"));
    assert!(!names_crate("use my_axum::X;", "axum"));
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
