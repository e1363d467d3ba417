//! Diagnostics: problems found in user input (manifests, config), each with the
//! file, position and field path it is about and a hint at what would be valid.
//!
//! Diagnostics are data, not errors: loaders collect all of them instead of
//! stopping at the first, and front ends render them once (see `cli::render`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

/// A source text and the path it was read from (as the user should see it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// A position in a source file: byte offset and length, 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A path to a field inside a document, e.g. `services.web.ports[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<PathSeg>);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl FieldPath {
    pub fn root() -> Self {
        Self::default()
    }
    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(PathSeg::Key(k.into()));
        p
    }
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(PathSeg::Index(i));
        p
    }
    pub fn segments(&self) -> &[PathSeg] {
        &self.0
    }
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                PathSeg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                PathSeg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One problem, pointing at one place.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable short code, e.g. `unknown-field`.
    pub code: &'static str,
    pub message: String,
    /// The file, when the problem is in a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Arc<SourceFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// The field the problem is about (empty for the document itself).
    pub field: FieldPath,
    /// What would be valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Other places worth showing (e.g. the first of two duplicates).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Related {
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub message: String,
}

impl Serialize for SourceFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.path.display())
    }
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            file: None,
            span: None,
            field: FieldPath::root(),
            help: None,
            related: Vec::new(),
        }
    }
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(code, message) }
    }
    pub fn at(mut self, file: &Arc<SourceFile>, span: Span) -> Self {
        self.file = Some(file.clone());
        self.span = Some(span);
        self
    }
    pub fn in_file(mut self, file: &Arc<SourceFile>) -> Self {
        self.file = Some(file.clone());
        self
    }
    pub fn field(mut self, field: FieldPath) -> Self {
        self.field = field;
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn related(mut self, file: &Arc<SourceFile>, span: Span, msg: impl Into<String>) -> Self {
        self.related.push(Related { file: file.clone(), span, message: msg.into() });
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    /// `path:line:column`, or as much of it as is known.
    pub fn location(&self) -> String {
        match (&self.file, &self.span) {
            (Some(f), Some(s)) => format!("{}:{}:{}", f.path.display(), s.line, s.column),
            (Some(f), None) => f.path.display().to_string(),
            _ => String::new(),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// One-line form: `file:line:col: field: message (help)`. Rich rendering with
    /// source snippets lives in the CLI.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = self.location();
        if !loc.is_empty() {
            write!(f, "{loc}: ")?;
        }
        if !self.field.is_root() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// A collection of diagnostics, errors and warnings together.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }
    pub fn warning_count(&self) -> usize {
        self.0.len() - self.error_count()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Orders by file, then position, errors before warnings at the same place.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            let ka = (a.file.as_ref().map(|f| f.path.clone()), a.span.map(|s| s.offset));
            let kb = (b.file.as_ref().map(|f| f.path.clone()), b.span.map(|s| s.offset));
            ka.cmp(&kb).then(a.severity.cmp(&b.severity))
        });
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// "did you mean" helper: the closest candidate, if close enough. The same
/// word in another case or with `-` for `_` first, then the fewest edits
/// (insertions, deletions, substitutions, swaps of neighbours: about one per
/// four letters), then the most similar by Jaro-Winkler.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    let fold = |s: &str| s.to_lowercase().replace('-', "_");
    if let Some(c) = candidates.iter().find(|c| fold(c) == fold(given)) {
        return Some(c);
    }
    let most_edits = (given.chars().count() / 4).max(1);
    let jw = |c: &str| strsim::jaro_winkler(given, c);
    let by_edits = candidates
        .iter()
        .map(|c| (strsim::osa_distance(given, c), c))
        .filter(|(d, _)| *d <= most_edits)
        .min_by(|a, b| a.0.cmp(&b.0).then(jw(b.1).total_cmp(&jw(a.1))));
    if let Some((_, c)) = by_edits {
        return Some(c);
    }
    candidates
        .into_iter()
        .map(|c| (jw(c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_path_display() {
        let p = FieldPath::root().key("services").key("web").key("ports").index(1);
        assert_eq!(p.to_string(), "services.web.ports[1]");
        assert_eq!(FieldPath::root().index(0).key("a").to_string(), "[0].a");
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("imgae", ["image", "env", "ports"]), Some("image"));
        assert_eq!(did_you_mean("zzz", ["image", "env"]), None);
        assert_eq!(did_you_mean("restrat", ["ports", "restart", "state"]), Some("restart"));
        assert_eq!(did_you_mean("helthcheck", ["healthcheck", "hostname"]), Some("healthcheck"));
        assert_eq!(did_you_mean("working-dir", ["working_dir", "user"]), Some("working_dir"));
        assert_eq!(did_you_mean("Image", ["image", "init"]), Some("image"));
        assert_eq!(did_you_mean("cap_ad", ["cap_add", "cap_drop"]), Some("cap_add"));
    }
}
