//! Rendering for people: diagnostics as annotated source snippets
//! (annotate-snippets) and errors with their cause chain. The one place
//! where problems become text for a terminal (exit codes are
//! `Error::exit_code`).

use std::io::IsTerminal;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::error::Error;
use crate::term;

/// Whether to colour output written to stderr.
pub fn stderr_styled() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

fn renderer(styled: bool) -> Renderer {
    if styled { Renderer::styled() } else { Renderer::plain() }
}

/// One diagnostic: title, `--> file:line:col`, the source line underlined
/// with the field path, related places, and the help line. Every text in it
/// but the source line (which annotate-snippets escapes itself) goes through
/// `term::line`: a file name or a field from a manifest cannot drive the terminal.
pub fn diagnostic(d: &Diagnostic, styled: bool) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let message = term::line(&d.message);
    let mut group = Group::with_title(level.primary_title(message.as_ref()));
    let label = if d.field.is_root() { String::new() } else { term::line(&d.field.to_string()).into_owned() };
    let mut notes: Vec<String> = Vec::new();
    match (&d.file, d.span) {
        (Some(file), Some(span)) => {
            let path = term::line(&file.path.display().to_string()).into_owned();
            let mut snippet = Snippet::source(file.text.as_str()).path(path).line_start(1).fold(true);
            snippet =
                snippet.annotation(AnnotationKind::Primary.span(clamp(&file.text, span.offset, span.len)).label(label));
            for r in &d.related {
                if r.file.path == file.path {
                    snippet = snippet.annotation(
                        AnnotationKind::Context
                            .span(clamp(&file.text, r.span.offset, r.span.len))
                            .label(term::line(&r.message)),
                    );
                } else {
                    let at = format!("{}: {}:{}:{}", r.message, r.file.path.display(), r.span.line, r.span.column);
                    notes.push(term::line(&at).into_owned());
                }
            }
            group = group.element(snippet);
        }
        (Some(file), None) => notes.push(term::line(&format!("in {}", file.path.display())).into_owned()),
        _ => {}
    }
    for n in &notes {
        group = group.element(Level::NOTE.message(n.as_str()));
    }
    let help = d.help.as_deref().map(term::line);
    if let Some(h) = &help {
        group = group.element(Level::HELP.message(h.as_ref()));
    }
    let report: Vec<Group<'_>> = vec![group];
    renderer(styled).render(&report)
}

/// A byte range inside `text`, on character boundaries, at least one
/// character long where the text allows it.
fn clamp(text: &str, offset: usize, len: usize) -> std::ops::Range<usize> {
    let mut start = offset.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + len.max(1)).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    if start == end && start > 0 {
        start -= 1;
        while !text.is_char_boundary(start) {
            start -= 1;
        }
    }
    start..end
}

/// Every diagnostic, blank-line separated.
pub fn diagnostics(ds: &Diagnostics, styled: bool) -> String {
    let mut out = String::new();
    for d in ds.iter() {
        out.push_str(&diagnostic(d, styled));
        out.push_str("\n\n");
    }
    out
}

/// `N errors and M warnings`.
pub fn counts(ds: &Diagnostics) -> String {
    let plural = |n: usize, w: &str| if n == 1 { format!("1 {w}") } else { format!("{n} {w}s") };
    match (ds.error_count(), ds.warning_count()) {
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{} and {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// An error with its diagnostics and cause chain, ready for stderr.
pub fn error(e: &Error, styled: bool) -> String {
    let mut out = String::new();
    if let Some(ds) = e.diagnostics() {
        out.push_str(&diagnostics(ds, styled));
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(&format!("\n  caused by: {text}"));
        }
        source = s.source();
    }
    let msg = term::text(&msg);
    let title = Level::ERROR.primary_title(msg.as_ref());
    out.push_str(&renderer(styled).render(&[Group::with_title(title)]));
    out.push('\n');
    out
}

/// What `--reinit` made, for standard error.
pub fn reinitialised(r: &crate::engine::Reinitialised) -> String {
    use crate::engine::Adopted;
    let from = match &r.adopted {
        Adopted::Containers(cs) => {
            let shown: Vec<&str> = cs.iter().take(5).map(String::as_str).collect();
            let more = if cs.len() > 5 { format!(" and {} more", cs.len() - 5) } else { String::new() };
            format!(
                "adopted from the label of {} of the fleet's container(s) and network(s): {}{more}",
                cs.len(),
                shown.join(", ")
            )
        }
        Adopted::Record => "no container of the fleet was found; kept the id the data folder recorded".into(),
        Adopted::New => "no container of the fleet was found; a new id".into(),
    };
    format!("Made a new store `{}` for installation {} ({from}).\n", r.path, r.installation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{FieldPath, SourceFile, Span};
    use std::sync::Arc;

    #[test]
    fn renders_path_line_field_and_help() {
        let file =
            Arc::new(SourceFile { path: "state/web.yaml".into(), text: "kind: App\nname: web\nimgae: nginx\n".into() });
        let d = Diagnostic::error("unknown-field", "unknown field `imgae`")
            .at(&file, Span { offset: 20, len: 5, line: 3, column: 1 })
            .field(FieldPath::root().key("imgae"))
            .help("did you mean `image`?");
        let text = diagnostic(&d, false);
        assert!(text.contains("error: unknown field `imgae`"), "{text}");
        assert!(text.contains("state/web.yaml:3:1"), "{text}");
        assert!(text.contains("imgae: nginx"), "{text}");
        assert!(text.contains("^^^^^ imgae"), "{text}");
        assert!(text.contains("help: did you mean `image`?"), "{text}");
    }

    #[test]
    fn clamp_stays_on_char_boundaries() {
        let t = "é: x";
        assert_eq!(clamp(t, 1, 1), 0..2);
        assert_eq!(clamp(t, 99, 3), 4..5);
        assert_eq!(clamp("", 0, 1), 0..0);
    }
}
