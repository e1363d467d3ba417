//! The invalid-manifest corpus: every case under `tests/invalid/` (a file, or a
//! folder of files) ends with `# expect: LINE:COL FIELD | MESSAGE` lines, one
//! per error it must produce, in the file the error is about. The test fails on
//! a missing, extra or different error, so each case pins file, line, column,
//! field path and message. `UPDATE_EXPECT=1` rewrites the lines from what
//! tomo reports (review the diff before committing). A file tomo refuses to
//! read (a symbolic link out of the folder) cannot hold its own lines: they
//! sit in `NAME.expect` beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tomo::diag::Diagnostic;
use tomo::manifest::{self, LoadOptions, SecretCheck, Sources};

use crate::harness::repo;

const EXPECT: &str = "# expect: ";

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/invalid"))
        .expect("tests/invalid exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

fn load(case: &Path) -> (Sources, Vec<Diagnostic>) {
    let sources = if case.is_dir() {
        manifest::read_dir(case).unwrap()
    } else {
        let text = std::fs::read_to_string(case).unwrap();
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let mut s = Sources::from_texts([(name.as_str(), text.as_str())]);
        s.files = vec![std::sync::Arc::new(tomo::diag::SourceFile { path: case.to_path_buf(), text })];
        s
    };
    let secrets = SecretCheck::Known(["db-pass".to_string(), "vps-key".to_string()].into());
    let loaded =
        manifest::load(&sources, &LoadOptions { secrets: &secrets, inline_check: tomo::vault::check_inline_format });
    assert!(loaded.desired.is_none(), "{}: loaded although invalid", case.display());
    let errors = loaded.diagnostics.into_iter().filter(Diagnostic::is_error).collect();
    (sources, errors)
}

fn line_of(d: &Diagnostic) -> String {
    let span = d.span.unwrap_or_default();
    let field = if d.field.is_root() { "-".to_string() } else { d.field.to_string() };
    format!("{}:{} {} | {}", span.line, span.column, field, d.message)
}

fn strip_expects(text: &str) -> String {
    let mut out: String = text.lines().filter(|l| !l.starts_with(EXPECT)).map(|l| format!("{l}\n")).collect();
    if !text.ends_with('\n') && !text.is_empty() {
        out.pop();
    }
    out
}

#[test]
fn every_invalid_manifest_reports_its_errors() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let cases = cases();
    assert!(cases.len() >= 40, "the corpus must hold at least 40 cases, has {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let (sources, errors) = load(case);
        if errors.is_empty() {
            failures.push(format!("{}: no error reported", case.display()));
            continue;
        }
        let mut actual: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for d in &errors {
            let file = d.file.as_ref().map(|f| f.path.clone()).unwrap_or_else(|| case.to_path_buf());
            actual.entry(file).or_default().push(line_of(d));
        }
        for file in &sources.files {
            let got = actual.remove(&file.path).unwrap_or_default();
            let expected: Vec<String> =
                file.text.lines().filter_map(|l| l.strip_prefix(EXPECT)).map(str::to_string).collect();
            if update {
                let mut text = strip_expects(&file.text);
                for l in &got {
                    text.push_str(&format!("{EXPECT}{l}\n"));
                }
                std::fs::write(&file.path, text).unwrap();
            } else if got != expected {
                failures.push(format!(
                    "{}:\n  expected:\n    {}\n  got:\n    {}",
                    file.path.display(),
                    expected.join("\n    "),
                    got.join("\n    ")
                ));
            }
        }
        for refused in &sources.refused {
            let got = actual.remove(&refused.path).unwrap_or_default();
            let beside = PathBuf::from(format!("{}.expect", refused.path.display()));
            let text = std::fs::read_to_string(&beside).unwrap_or_default();
            let expected: Vec<String> =
                text.lines().filter_map(|l| l.strip_prefix(EXPECT)).map(str::to_string).collect();
            if update {
                std::fs::write(&beside, got.iter().map(|l| format!("{EXPECT}{l}\n")).collect::<String>()).unwrap();
            } else if got != expected {
                failures.push(format!(
                    "{}:\n  expected:\n    {}\n  got:\n    {}",
                    refused.path.display(),
                    expected.join("\n    "),
                    got.join("\n    ")
                ));
            }
        }
        for (file, lines) in actual {
            failures.push(format!("{}: errors in an unexpected file {}: {lines:?}", case.display(), file.display()));
        }
    }
    assert!(failures.is_empty(), "{} case(s) differ:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn every_error_names_file_line_and_what_is_valid() {
    for case in cases() {
        let (_, errors) = load(&case);
        for d in errors {
            assert!(d.file.is_some() && d.span.is_some(), "{}: {d} has no position", case.display());
            assert!(
                d.help.is_some()
                    || d.message.contains("expected")
                    || d.message.contains("must")
                    || d.code == "yaml-syntax",
                "{}: `{d}` does not say what would be valid",
                case.display()
            );
        }
    }
}
