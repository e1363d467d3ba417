//! Manifests: from the YAML files of a manifest folder to the validated
//! desired state (`model::Desired`), with every problem as a `Diagnostic`.
//!
//! Pipeline: `sources` (read files) → `yaml` (spanned tree) → kind →
//! `schema::check` (structure) → serde into `raw` → `resolve` (values,
//! references, cycles, conflicts). Only `sources` does I/O. Loading never
//! panics and never stops at the first problem.

pub mod edit;
mod hints;
pub mod raw;
pub mod resolve;
pub mod schema;
pub mod sources;
pub mod yaml;

use std::sync::Arc;

pub use resolve::SecretCheck;
pub use sources::{MAX_FILE_BYTES, MAX_FILES, MAX_FOLDER_BYTES, ReadError, Refused, Sources, read_dir};

use crate::diag::{Diagnostic, Diagnostics, FieldPath, SourceFile, Span, did_you_mean};
use crate::model::Desired;

/// Options for loading: what is known about secrets.
pub struct LoadOptions<'a> {
    pub secrets: &'a SecretCheck,
    /// Checks the form of inline `enc:v1:` values.
    pub inline_check: resolve::InlineCheck,
}

/// The result of loading: the desired state when there are no errors, and
/// every diagnostic (warnings too) either way.
pub struct Loaded {
    pub desired: Option<Desired>,
    pub diagnostics: Diagnostics,
}

/// Parses and validates every document of `sources`.
pub fn load(sources: &Sources, opts: &LoadOptions<'_>) -> Loaded {
    let mut diags = Diagnostics::new();
    let mut docs = Vec::new();
    for r in &sources.refused {
        diags.push(refused(r, Arc::new(SourceFile { path: r.path.clone(), text: String::new() })));
    }
    for (file, rel) in sources.files.iter().zip(&sources.relative) {
        // In-memory sources (edits) are held to the limit of files read from disk.
        if file.text.len() as u64 > MAX_FILE_BYTES {
            diags.push(refused(&sources::too_large(file.text.len() as u64), file.clone()));
            continue;
        }
        parse_file(file, rel, &mut docs, &mut diags);
    }
    let env_files = sources.read_env_files(resolve::wanted_env_files(&docs));
    let beside = |manifest: &str, source: &str| sources.resolve_inside(manifest, source).map(|(_, text)| text);
    let desired = resolve::resolve(&docs, opts.secrets, opts.inline_check, &env_files, &beside, &mut diags);
    diags.sort();
    Loaded { desired: (!diags.has_errors()).then_some(desired), diagnostics: diags }
}

/// A file that was not read, as an error at its start.
fn refused(r: &Refused, file: Arc<SourceFile>) -> Diagnostic {
    let start = Span { offset: 0, len: 0, line: 1, column: 1 };
    Diagnostic::error(r.code, r.message.clone()).at(&file, start).help(r.help.clone())
}

fn parse_file(file: &Arc<SourceFile>, rel: &str, docs: &mut Vec<resolve::Doc>, diags: &mut Diagnostics) {
    let (parsed, fatal) = yaml::parse(&file.text);
    if let Some(e) = fatal {
        let mut d = Diagnostic::error("yaml-syntax", e.message).at(file, e.span);
        if let Some(h) = e.help {
            d = d.help(h);
        }
        diags.push(d);
    }
    for doc in parsed {
        for p in doc.problems {
            let mut d = Diagnostic::error("yaml-structure", p.message).at(file, p.span);
            if let Some(h) = p.help {
                d = d.help(h);
            }
            diags.push(d);
        }
        let node = doc.root;
        if matches!(node.value, yaml::Value::Null) {
            continue; // an empty document
        }
        if node.as_map().is_none() {
            diags.push(
                Diagnostic::error(
                    "not-a-mapping",
                    format!(
                        "a manifest document must be a mapping of fields (`key: value` lines), not {}",
                        match node.value.type_name() {
                            "array" => "a list",
                            "string" => "a string",
                            other => other,
                        }
                    ),
                )
                .at(file, node.span)
                .help("start the document with `kind: App` (or Server, Settings, Marketplace) and its fields"),
            );
            continue;
        }
        let kind_path = FieldPath::root().key("kind");
        let kind = match node.get("kind") {
            None => {
                let mut help = format!("add `kind:` with one of: {}", raw::KINDS.join(", "));
                if node.get("services").is_some() && node.get("name").is_none() {
                    help.push_str(
                        "; this looks like a Docker Compose file: `tomo import compose FILE` converts one to an App",
                    );
                }
                diags.push(
                    Diagnostic::error("missing-field", "missing required field `kind`").at(file, node.span).help(help),
                );
                continue;
            }
            Some(k) => match k.as_str() {
                Some(s) if raw::KINDS.contains(&s) => s.to_string(),
                other => {
                    let shown = other.map_or_else(|| k.value.type_name().to_string(), |s| format!("`{s}`"));
                    let help = other
                        .and_then(|s| {
                            did_you_mean(s, raw::KINDS)
                                .or_else(|| raw::KINDS.iter().copied().find(|k| k.eq_ignore_ascii_case(s)))
                        })
                        .map_or_else(
                            || format!("valid kinds: {}", raw::KINDS.join(", ")),
                            |s| format!("did you mean `{s}`?"),
                        );
                    diags.push(
                        Diagnostic::error("unknown-kind", format!("unknown kind {shown}"))
                            .at(file, k.span)
                            .field(kind_path)
                            .help(help),
                    );
                    continue;
                }
            },
        };
        let errors = schema::check(&kind, &node);
        if !errors.is_empty() {
            for e in errors {
                let span = if e.at_key { node.key_span_at(&e.path) } else { node.span_at(&e.path) };
                let mut d = Diagnostic::error(e.code, e.message).at(file, span).field(e.path);
                if let Some(h) = e.help {
                    d = d.help(h);
                }
                diags.push(d);
            }
            continue;
        }
        match serde_json::from_value::<raw::RawDocument>(node.to_json()) {
            Ok(raw) => docs.push(resolve::Doc { file: file.clone(), rel: rel.to_string(), node, raw }),
            Err(e) => diags.push(
                Diagnostic::error("invalid-document", format!("cannot read this {kind}: {e}"))
                    .at(file, node.span)
                    .help("this shape passed the schema check but not the reader; please report it as a tomo bug"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_bind_options_are_checked_at_their_line() {
        let l = load_str(
            "kind: App\nname: a\nimage: img:1\nvolumes:\n  - {type: volume, source: v, target: /v, mode: \"0750\"}\n  - {type: bind, source: /srv/a, target: /a, owner: bob, mode: \"0980\"}\nfiles:\n  - {target: /a, content: x}\n  - {target: etc/x, content: x}\n  - {target: /y, content: x, source: y.txt}\n  - {target: /z, source: ../z.txt}\n  - {target: /w, content: x, mode: \"9\"}\n",
        );
        assert!(l.desired.is_none());
        let got: Vec<String> =
            l.diagnostics.iter().map(|d| format!("{}@{} {}", d.code, d.span.map_or(0, |s| s.line), d.field)).collect();
        for want in [
            "invalid-volume@5 volumes[0].mode",
            "invalid-owner@6 volumes[1].owner",
            "invalid-mode@6 volumes[1].mode",
            "duplicate-mount@8 files[0].target",
            "invalid-path@9 files[1].target",
            "invalid-file@10 files[2]",
            "path-traversal@11 files[3].source",
            "invalid-mode@12 files[4].mode",
        ] {
            assert!(got.iter().any(|g| g == want), "{want} not in {got:?}");
        }
    }

    fn load_str(text: &str) -> Loaded {
        let sources = Sources::from_texts([("m.yaml", text)]);
        load(
            &sources,
            &LoadOptions { secrets: &SecretCheck::Known(["db".to_string()].into()), inline_check: |_| Ok(()) },
        )
    }

    #[test]
    fn loads_a_small_fleet() {
        let l = load_str(
            "kind: App\nname: whoami\nserver: local\nimage: traefik/whoami:v1.10.3\nports: ['8080:80']\nenv: {A: 1, B: {secret: db}}\n",
        );
        assert!(!l.diagnostics.has_errors(), "{:?}", l.diagnostics);
        let d = l.desired.unwrap();
        assert!(d.servers["local"].implicit);
        let app = &d.apps["whoami"];
        assert!(app.single);
        assert_eq!(app.container_name(&"whoami".parse().unwrap()), "whoami");
    }

    #[test]
    fn marketplace_defaults_and_the_install_source_are_read() {
        let l = load_str(
            "kind: Settings\nmarketplace:\n  defaults: {tz: Europe/Paris, puid: 1001, data_root: /data/apps/}\n---\nkind: App\nname: web\nserver: local\nimage: nginx\nx-tomo-source: {store: s, app: Web, version: '1', checksum: ab}\n",
        );
        assert!(!l.diagnostics.has_errors(), "{:?}", l.diagnostics);
        let d = l.desired.unwrap();
        let m = &d.settings.market_defaults;
        assert_eq!((m.tz.as_str(), m.puid, m.pgid, m.data_root.as_str()), ("Europe/Paris", 1001, 1000, "/data/apps"));
        let src = d.apps["web"].source.clone().unwrap();
        assert_eq!((src.store.as_str(), src.app.as_str(), src.version.as_str()), ("s", "Web", "1"));
        let none = load_str("kind: App\nname: web\nserver: local\nimage: nginx\n").desired.unwrap();
        assert_eq!(none.settings.market_defaults.data_root, "/srv/tomo/apps");
        assert!(none.apps["web"].source.is_none());
        // The annotation changes nothing the plan compares: an app without it serialises as before.
        assert!(!serde_json::to_string(&none.apps["web"]).unwrap().contains("source"));
        let bad = load_str("kind: Settings\nmarketplace: {defaults: {data_root: apps, tz: 'a b'}}\n");
        let got: Vec<String> = bad.diagnostics.iter().map(|d| format!("{}@{}", d.code, d.field)).collect();
        assert_eq!(got, ["invalid-path@marketplace.defaults.data_root", "invalid-value@marketplace.defaults.tz"]);
    }

    #[test]
    fn a_verify_longer_than_health_timeout_is_warned_about_at_its_line() {
        let l = load_str("kind: Settings\nhealth_timeout: 20s\nrollout:\n  verify: 30s\n");
        assert!(!l.diagnostics.has_errors(), "{:?}", l.diagnostics);
        let got: Vec<String> =
            l.diagnostics.iter().map(|d| format!("{}@{} {}", d.code, d.span.map_or(0, |s| s.line), d.field)).collect();
        assert_eq!(got, ["verify-over-health-timeout@4 rollout.verify"]);
        assert_eq!(l.desired.unwrap().settings.verify.map(|v| v.to_std()), Some(std::time::Duration::from_secs(30)));
        let within = load_str("kind: Settings\nhealth_timeout: 20s\nrollout: {verify: 10s}\n");
        assert_eq!(within.diagnostics.iter().count(), 0, "{:?}", within.diagnostics);
        let zero = load_str("kind: Settings\nrollout: {verify: 0s}\n").desired.unwrap();
        assert_eq!(zero.settings.verify, None, "verify 0 watches nothing");
    }

    #[test]
    fn backup_settings_are_read_and_bad_ones_are_pointed_at() {
        use crate::model::backup::{Every, KeepRules};
        use crate::model::values::Duration;
        let l = load_str(
            "kind: Settings\nbackup:\n  schedule: daily 03:30\n  keep: {last: 3, weekly: 4}\n  target: {path: /var/backups/tomo}\n",
        );
        assert!(!l.diagnostics.has_errors(), "{:?}", l.diagnostics);
        let b = l.desired.unwrap().settings.backup.unwrap();
        assert_eq!(b.every, Every::Daily(3 * 3600 + 30 * 60));
        assert_eq!(b.keep, KeepRules { last: 3, weekly: 4, ..KeepRules::default() });
        assert_eq!(b.path.as_deref(), Some("/var/backups/tomo"));
        let i = load_str("kind: Settings\nbackup: {schedule: 6h}\n").desired.unwrap().settings.backup.unwrap();
        assert_eq!(
            (i.every, i.path, i.keep),
            (Every::Interval(Duration::from_secs(6 * 3600)), None, KeepRules::default())
        );
        // Settings without `backup` serialise as before.
        let none = load_str("kind: Settings\nparallelism: 2\n").desired.unwrap().settings;
        assert!(!serde_json::to_string(&none).unwrap().contains("backup"));
        let bad = load_str(
            "kind: Settings\nbackup:\n  schedule: daily 25:00\n  keep: {last: 0}\n  target: {server: nas, path: backups}\n",
        );
        let got: Vec<String> = bad
            .diagnostics
            .iter()
            .map(|d| format!("{}@{}:{}", d.code, d.field, d.span.map_or(0, |s| s.line)))
            .collect();
        assert_eq!(
            got,
            [
                "invalid-schedule@backup.schedule:3",
                "invalid-value@backup.keep:4",
                "unknown-server@backup.target.server:5",
                "invalid-path@backup.target.path:5"
            ]
        );
        let short = load_str("kind: Settings\nbackup: {schedule: 500ms}\n");
        let got: Vec<&str> = short.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(got, ["out-of-range"]);
    }

    #[test]
    fn start_first_with_a_host_port_is_warned_about() {
        let l = load_str(
            "kind: App\nname: web\nserver: local\nimage: nginx\nports: ['8080:80']\nupdate_order: start-first\n",
        );
        let d: Vec<_> = l.diagnostics.iter().collect();
        assert!(l.desired.is_some());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].code, d[0].span.unwrap().line, d[0].field.to_string().as_str()),
            ("start-first-port", 6, "update_order")
        );
        let ok =
            load_str("kind: App\nname: web\nserver: local\nimage: nginx\nports: ['80']\nupdate_order: start-first\n");
        assert!(ok.diagnostics.is_empty());
    }

    #[test]
    fn a_compose_service_name_with_underscore_is_given_the_dashed_name() {
        let l = load_str("kind: App\nname: shop\nserver: local\nservices:\n  ssrf_proxy: {image: nginx}\n");
        let d: Vec<_> = l.diagnostics.iter().collect();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].code, d[0].span.unwrap().line), ("invalid-name", 5));
        assert!(
            d[0].help
                .as_deref()
                .unwrap()
                .ends_with(": write `ssrf-proxy` (compose allows `_`, tomo's names are DNS names)"),
            "{d:?}"
        );
    }

    #[test]
    fn a_compose_file_among_manifests_is_named_as_such() {
        let l = load_str("services:\n  web: {image: nginx}\n");
        let d: Vec<_> = l.diagnostics.iter().collect();
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].help.as_deref().unwrap().contains("`tomo import compose FILE`"), "{d:?}");
    }

    #[test]
    fn empty_documents_are_fine() {
        let l = load_str("---\n---\n");
        assert!(l.diagnostics.is_empty());
        assert!(l.desired.unwrap().apps.is_empty());
    }
}
