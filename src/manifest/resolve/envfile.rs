//! `env_file`: the environment files a service names, read by `sources`
//! (inside the manifest folder only), parsed as docker-compose 1.29 reads
//! them (python-dotenv: `KEY=VALUE` lines, `#` comments, optional `export`,
//! single and double quotes with their escapes, a quoted value spanning
//! lines) and merged under `env`, which wins.
//!
//! Values are taken literally (no `${VAR}` expansion). A value whose key
//! looks like a credential is held as `EnvValue::FromFile`: never printed,
//! in labels only as a keyed hash.

use std::collections::BTreeMap;

use super::{At, Doc, Resolver};
use crate::diag::{Diagnostic, FieldPath};
use crate::manifest::raw::{self, RawDocument};
use crate::manifest::sources::EnvFileRead;
use crate::model::EnvValue;
use crate::model::secret::SecretString;

/// Every (manifest file, env file path as written) the documents name.
pub fn wanted_env_files(docs: &[Doc]) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for d in docs {
        let services: Vec<&raw::RawService> = match &d.raw {
            RawDocument::App(raw::RawApp::Single(a)) => vec![&a.service],
            RawDocument::App(raw::RawApp::Multi(a)) => a.services.values().map(|s| &s.service).collect(),
            _ => continue,
        };
        for s in services {
            out.extend(env_file_list(s.env_file.as_ref()).into_iter().map(|(_, p, _)| (d.rel.as_str(), p)));
        }
    }
    out
}

/// Each env file: its index in the list (None for the one-string form), path and whether it must exist.
fn env_file_list(files: Option<&raw::RawEnvFiles>) -> Vec<(Option<usize>, &str, bool)> {
    match files {
        None => Vec::new(),
        Some(raw::RawEnvFiles::One(p)) => vec![(None, p.as_str(), true)],
        Some(raw::RawEnvFiles::Many(list)) => list
            .iter()
            .enumerate()
            .map(|(i, f)| match f {
                raw::RawEnvFile::Path(p) => (Some(i), p.as_str(), true),
                raw::RawEnvFile::Long { path, required } => (Some(i), path.as_str(), required.unwrap_or(true)),
            })
            .collect(),
    }
}

/// Whether a variable's name looks like it holds a credential.
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "KEY"].iter().any(|w| k.contains(w))
}

impl<'a> Resolver<'a> {
    /// The service's environment: its env files' values, later files over
    /// earlier ones, then `env` over them all.
    pub(super) fn with_env_files(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        files: Option<&raw::RawEnvFiles>,
        env: BTreeMap<String, EnvValue>,
    ) -> BTreeMap<String, EnvValue> {
        let mut out = BTreeMap::new();
        for (i, path, required) in env_file_list(files) {
            let p = match i {
                Some(i) => base.key("env_file").index(i),
                None => base.key("env_file"),
            };
            let read = self.env_files.get(&(at.rel.to_string(), path.to_string()));
            match read {
                Some(EnvFileRead::Read { rel, text }) => self.env_file_values(at, &p, rel, text, &mut out),
                Some(EnvFileRead::Missing { .. }) if !required => {}
                Some(EnvFileRead::Missing { rel }) => self.push(
                    at.err(&p, "env-file-missing", format!("env file `{}` does not exist", rel.escape_default()))
                        .help("create it beside the manifest, or write `{path: …, required: false}`"),
                ),
                Some(EnvFileRead::Refused(r)) => self.push(at.err(&p, r.code, r.message.clone()).help(r.help.clone())),
                None => self.push(at.err(&p, "env-file-unreadable", "this env file was not read")),
            }
        }
        out.extend(env);
        out
    }

    fn env_file_values(
        &mut self,
        at: At<'a>,
        p: &FieldPath,
        rel: &str,
        text: &str,
        out: &mut BTreeMap<String, EnvValue>,
    ) {
        let vars = match parse(text) {
            Ok(v) => v,
            Err((line, msg)) => {
                self.push(
                    at.err(p, "invalid-env-file", format!("{} line {line}: {msg}", rel.escape_default()))
                        .help("write `KEY=VALUE` lines; `#` starts a comment; quote values with spaces or `#`"),
                );
                return;
            }
        };
        for (key, value, line) in vars {
            if key.contains(['=', '\0']) || key.chars().any(char::is_whitespace) {
                self.push(
                    at.err(
                        p,
                        "invalid-env",
                        format!(
                            "{} line {line}: `{}` is not a valid environment variable name",
                            rel.escape_default(),
                            key.escape_default()
                        ),
                    )
                    .help("names hold no '=', spaces or NUL, e.g. `DATABASE_URL`"),
                );
                continue;
            }
            if value.contains("${") {
                self.push(
                    Diagnostic::warning(
                        "env-file-literal",
                        format!(
                            "{} line {line}: the value of `{key}` holds `${{`; tomo takes it literally, without expanding variables",
                            rel.escape_default()
                        ),
                    )
                    .at(at.file, at.span(p))
                    .field(p.clone())
                    .help("write the value itself"),
                );
            }
            let v = if looks_secret(&key) {
                EnvValue::FromFile { file: rel.to_string(), value: SecretString::new(value) }
            } else {
                EnvValue::Plain(value)
            };
            out.insert(key, v);
        }
    }
}

/// One `KEY=VALUE` of an env file: name, value and line.
pub type Binding = (String, String, usize);

/// `KEY=VALUE` bindings of an env file, with their lines, or the first
/// problem (line, message). Messages never hold a value.
pub fn parse(text: &str) -> Result<Vec<Binding>, (usize, String)> {
    let mut r = Reader { s: text.strip_prefix('\u{feff}').unwrap_or(text).chars().collect(), at: 0, line: 1 };
    let mut out = Vec::new();
    loop {
        while r.peek().is_some_and(char::is_whitespace) {
            r.bump();
        }
        let Some(c) = r.peek() else { break };
        let line = r.line;
        if c == '#' {
            r.rest_of_line();
            continue;
        }
        if r.starts_with("export") && r.peek_at(6).is_some_and(|c| c == ' ' || c == '\t') {
            r.take(6);
            r.blanks();
        }
        let key = if r.peek() == Some('\'') {
            r.bump();
            let k = r.take_while(|c| c != '\'');
            if k.is_empty() || r.peek() != Some('\'') {
                return Err((line, "a quoted name is not closed".into()));
            }
            r.bump();
            k
        } else {
            r.take_while(|c| c != '=' && c != '#' && !c.is_whitespace())
        };
        if key.is_empty() {
            return Err((line, "a line without a name before `=`".into()));
        }
        r.blanks();
        if r.peek() != Some('=') {
            return Err((line, format!("`{}` has no `=` and value", key.escape_default())));
        }
        r.bump();
        r.blanks();
        let value =
            r.value().ok_or_else(|| (line, format!("the quoted value of `{}` is not closed", key.escape_default())))?;
        r.blanks();
        if r.peek() == Some('#') {
            r.take_while(|c| c != '\n' && c != '\r');
        }
        if !matches!(r.peek(), None | Some('\n' | '\r')) {
            return Err((line, format!("text after the quoted value of `{}`", key.escape_default())));
        }
        out.push((key, value, line));
    }
    Ok(out)
}

struct Reader {
    s: Vec<char>,
    at: usize,
    line: usize,
}

impl Reader {
    fn peek(&self) -> Option<char> {
        self.s.get(self.at).copied()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.s.get(self.at + n).copied()
    }
    fn starts_with(&self, p: &str) -> bool {
        p.chars().enumerate().all(|(i, c)| self.peek_at(i) == Some(c))
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        // `\r\n` counts once, at its `\n`.
        if c == '\n' || (c == '\r' && self.peek() != Some('\n')) {
            self.line += 1;
        }
        Some(c)
    }
    fn take(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek().filter(|c| f(*c)) {
            out.push(c);
            self.bump();
        }
        out
    }
    /// Spaces and tabs (not line ends).
    fn blanks(&mut self) {
        self.take_while(|c| c.is_whitespace() && c != '\n' && c != '\r');
    }
    fn rest_of_line(&mut self) {
        self.take_while(|c| c != '\n' && c != '\r');
    }
    /// A value: quoted (escapes decoded) or up to the line's end, a ` #`
    /// comment and trailing blanks cut. None: a quote not closed.
    fn value(&mut self) -> Option<String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => {
                let raw = self.take_while(|c| c != '\n' && c != '\r');
                let cut = raw.char_indices().find(|(i, c)| *c == '#' && raw[..*i].ends_with(char::is_whitespace));
                let kept = cut.map_or(raw.as_str(), |(i, _)| &raw[..i]);
                return Some(kept.trim_end().to_string());
            }
        };
        self.bump();
        let mut raw = String::new();
        loop {
            match self.bump()? {
                '\\' if self.peek() == Some(quote) => {
                    raw.push('\\');
                    raw.push(quote);
                    self.bump();
                }
                c if c == quote => break,
                c => raw.push(c),
            }
        }
        Some(unescape(&raw, quote == '"'))
    }
}

/// The escapes python-dotenv decodes: `\\` and `\'` in single quotes; also
/// `\"`, `\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v` in double quotes.
fn unescape(raw: &str, double: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.peek() {
            Some('\\') => Some('\\'),
            Some('\'') => Some('\''),
            Some(e) if double => match e {
                '"' => Some('"'),
                'a' => Some('\u{7}'),
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\u{b}'),
                _ => None,
            },
            _ => None,
        };
        match decoded {
            Some(d) => {
                out.push(d);
                chars.next();
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap().into_iter().map(|(k, v, _)| (k, v)).collect()
    }

    #[test]
    fn reads_what_compose_reads() {
        let text = "\u{feff}# comment\nA=1\n\n  B = two words  # note\nexport C=3\nD=\"x # y\\n\\\"q\\\"\"\nE='it\\'s \\n'\nF=a#b\nG=\nH=\"multi\nline\"\n'I'=i\r\nJ=\"\" # empty\nexporter=e\n";
        let got = vars(text);
        let want = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "3"),
            ("D", "x # y\n\"q\""),
            ("E", "it's \\n"),
            ("F", "a#b"),
            ("G", ""),
            ("H", "multi\nline"),
            ("I", "i"),
            ("J", ""),
            ("exporter", "e"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(got, want);
        let lines: Vec<usize> = parse(text).unwrap().into_iter().map(|(_, _, l)| l).collect();
        assert_eq!(lines, [2, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14]);
    }

    #[test]
    fn problems_name_their_line_and_never_a_value() {
        for (text, line, msg) in [
            ("A=1\nB\n", 2, "`B` has no `=` and value"),
            ("A=1\n=x\n", 2, "a line without a name before `=`"),
            ("A=\"hunter2\n", 1, "the quoted value of `A` is not closed"),
            ("A='hunter2' x\n", 1, "text after the quoted value of `A`"),
        ] {
            let (l, m) = parse(text).unwrap_err();
            assert_eq!((l, m.as_str()), (line, msg), "{text}");
            assert!(!m.contains("hunter2"));
        }
    }

    struct Keyed;
    impl crate::model::secret::Secrets for Keyed {
        fn reveal(&self, v: &EnvValue) -> Result<SecretString, String> {
            Err(format!("no vault for {v:?}"))
        }
        fn hash_key(&self) -> Result<[u8; 32], String> {
            Ok([7; 32])
        }
    }

    fn load(dir: &std::path::Path) -> crate::manifest::Loaded {
        let sources = crate::manifest::read_dir(dir).unwrap();
        let secrets = crate::manifest::SecretCheck::Known(Default::default());
        crate::manifest::load(&sources, &crate::manifest::LoadOptions { secrets: &secrets, inline_check: |_| Ok(()) })
    }

    const WEB: &str = "kind: App\nname: web\nserver: local\nimage: img:1\nenv: {A: from-env}\nenv_file:\n  - web.env\n  - {path: more.env, required: false}\n";

    /// Env files are read beside their manifest, later files and `env` win,
    /// credentials never show in the spec label or the plan, and a changed
    /// file changes the spec hash.
    #[test]
    fn env_files_merge_under_env_and_credentials_stay_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("apps")).unwrap();
        std::fs::write(d.join("apps/web.yaml"), WEB).unwrap();
        std::fs::write(d.join("apps/web.env"), "A=from-file\nB=b\nDB_PASSWORD=hunter2\n").unwrap();
        let spec = |d: &std::path::Path| {
            let l = load(d);
            let desired = l.desired.unwrap_or_else(|| panic!("{:?}", l.diagnostics));
            let app = &desired.apps["web"];
            crate::model::spec::ContainerSpec::new(&"local".parse().unwrap(), app, &app.services["web"])
        };
        let s = spec(d);
        assert_eq!(s.env["A"], EnvValue::Plain("from-env".into()));
        assert_eq!(s.env["B"], EnvValue::Plain("b".into()));
        assert_eq!(
            s.env["DB_PASSWORD"],
            EnvValue::FromFile { file: "apps/web.env".into(), value: SecretString::new("hunter2") }
        );
        // Without the vault, the plan says why it is needed.
        let no_vault = crate::model::secret::NoSecrets("the vault is not available: no password".into());
        assert_eq!(
            s.redacted(&no_vault).unwrap_err(),
            "`DB_PASSWORD` of env file `apps/web.env` is kept like a secret, in labels as a hash keyed by the vault: \
             the vault is not available: no password"
        );
        let redacted = s.redacted(&Keyed).unwrap();
        let text = redacted.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(redacted["env"]["DB_PASSWORD"]["redacted"], "env_file apps/web.env");
        let saved = serde_json::to_string(&s).unwrap();
        assert!(
            !saved.contains("hunter2") && saved.contains(r#""DB_PASSWORD":{"env_file":"apps/web.env"}"#),
            "{saved}"
        );
        let lines = crate::model::spec::spec_lines(&redacted, None).join("\n");
        assert!(lines.contains("env.DB_PASSWORD: (env_file apps/web.env)") && !lines.contains("hunter2"), "{lines}");
        // An optional file, once there, is read after the first.
        std::fs::write(d.join("apps/more.env"), "B=more\n").unwrap();
        assert_eq!(spec(d).env["B"], EnvValue::Plain("more".into()));
        std::fs::remove_file(d.join("apps/more.env")).unwrap();
        // Another password: another hash.
        let before = s.hash(&Keyed).unwrap();
        std::fs::write(d.join("apps/web.env"), "A=from-file\nB=b\nDB_PASSWORD=hunter3\n").unwrap();
        let after = spec(d);
        assert_ne!(after.hash(&Keyed).unwrap(), before);
        let new_lines = crate::model::spec::spec_lines(&after.redacted(&Keyed).unwrap(), Some(&redacted)).join("\n");
        assert!(new_lines.contains("env.DB_PASSWORD: (env_file apps/web.env, changed)"), "{new_lines}");
    }

    /// A path leaving the manifest folder, by `..`, as an absolute path or
    /// through a symbolic link, is refused at its line; nothing is read.
    #[test]
    fn env_files_outside_the_folder_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("shadow.env"), "ROOT_PASSWORD=TOPSECRET\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("apps")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("shadow.env"), d.join("apps/link.env")).unwrap();
        std::fs::write(d.join("top.env"), "X=1\n").unwrap();
        let rel_out = format!("../../{}", outside.path().join("shadow.env").display());
        let abs = outside.path().join("shadow.env").display().to_string();
        for (path, code) in [
            (rel_out.as_str(), "env-file-outside"),
            (abs.as_str(), "env-file-outside"),
            ("link.env", "env-file-outside"),
            ("missing.env", "env-file-missing"),
        ] {
            let text = format!("kind: App\nname: web\nserver: local\nimage: img:1\nenv_file: \"{path}\"\n");
            std::fs::write(d.join("apps/web.yaml"), text).unwrap();
            let l = load(d);
            let diags: Vec<_> =
                l.diagnostics.iter().map(|x| (x.code, x.span.map(|s| s.line), x.field.to_string())).collect();
            assert_eq!(diags, [(code, Some(5), "env_file".to_string())], "{path}");
            assert!(l.diagnostics.iter().all(|x| !x.message.contains("TOPSECRET")));
        }
        // `..` that stays inside the folder is fine.
        std::fs::write(
            d.join("apps/web.yaml"),
            "kind: App\nname: web\nserver: local\nimage: img:1\nenv_file: ../top.env\n",
        )
        .unwrap();
        let l = load(d);
        assert!(l.desired.is_some(), "{:?}", l.diagnostics);
    }

    #[test]
    fn credential_names() {
        for k in ["DB_PASSWORD", "api_key", "SECRET", "GITHUB_TOKEN", "KEYCLOAK_URL"] {
            assert!(looks_secret(k), "{k}");
        }
        for k in ["USER", "PORT", "TZ", "PUID"] {
            assert!(!looks_secret(k), "{k}");
        }
    }
}
