//! What a service puts on the server's filesystem: the options of its
//! long-form bind mounts (`create_host_path`, `owner`, `mode`) and its
//! config files (`files:`, text, a vault secret, or a file beside the
//! manifest).

use std::collections::BTreeMap;

use super::{At, Resolver};
use crate::diag::{Diagnostic, FieldPath};
use crate::manifest::raw;
use crate::manifest::sources::Inside;
use crate::model::files::{ConfigFile, DEFAULT_FILE_MODE, FileContent, HostFolder, parse_mode, parse_owner};
use crate::model::ports::check_container_path;
use crate::model::{Mount, MountKind};

impl<'a> Resolver<'a> {
    /// The folder options of long-form bind mounts that set any.
    pub(super) fn host_folders(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        list: Option<&[raw::RawMount]>,
    ) -> BTreeMap<String, HostFolder> {
        let mut out = BTreeMap::new();
        for (i, m) in list.into_iter().flatten().enumerate() {
            let raw::RawMount::Long(l) = m else { continue };
            if l.create_host_path.is_none() && l.owner.is_none() && l.mode.is_none() {
                continue;
            }
            let path = base.key("volumes").index(i);
            if l.kind != MountKind::Bind {
                let field = if l.owner.is_some() {
                    "owner"
                } else if l.mode.is_some() {
                    "mode"
                } else {
                    "create_host_path"
                };
                self.push(
                    at.err(&path.key(field), "invalid-volume", format!("`{field}` applies to bind mounts only"))
                        .help("remove it, or make the mount `type: bind` with a host path as `source`"),
                );
                continue;
            }
            let owner = l.owner.as_deref().and_then(|o| match parse_owner(o) {
                Ok(o) => Some(o),
                Err(e) => {
                    self.push(
                        at.err(&path.key("owner"), "invalid-owner", e)
                            .help("write `\"UID\"` or `\"UID:GID\"`, e.g. `\"1000:1000\"`"),
                    );
                    None
                }
            });
            let mode = l.mode.as_deref().and_then(|m| match parse_mode(m) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.push(
                        at.err(&path.key("mode"), "invalid-mode", e).help("write the mode in quotes, e.g. `\"0750\"`"),
                    );
                    None
                }
            });
            let Some(source) = l.source.clone() else { continue };
            let line = at.span(&path).line;
            let folder = HostFolder {
                create: l.create_host_path.unwrap_or(true),
                owner,
                mode,
                declared_at: format!("{}:{line}", at.rel),
            };
            out.insert(source, folder);
        }
        out
    }

    /// A service's config files; each target must differ from the others
    /// and from the service's mounts.
    pub(super) fn config_files(
        &mut self,
        at: At<'a>,
        base: &FieldPath,
        list: Option<&[raw::RawFile]>,
        mounts: &[Mount],
    ) -> Vec<ConfigFile> {
        let mut out: Vec<ConfigFile> = Vec::new();
        for (i, f) in list.into_iter().flatten().enumerate() {
            let path = base.key("files").index(i);
            if let Err(e) = check_container_path(&f.target) {
                self.push(at.err(&path.key("target"), "invalid-path", e).help("e.g. `/etc/app/config.toml`"));
                continue;
            }
            if out.iter().any(|o| o.target == f.target) || mounts.iter().any(|m| m.target == f.target) {
                self.push(
                    at.err(&path.key("target"), "duplicate-mount", format!("`{}` is mounted twice", f.target))
                        .help("each container path can be mounted once"),
                );
                continue;
            }
            let source = f.source.as_deref().map(|src| {
                let dir = at.rel.rsplit_once('/').map_or("", |(d, _)| d);
                crate::manifest::sources::within(dir, src).unwrap_or_else(|| src.to_string())
            });
            let content = match (&f.content, &f.source) {
                (Some(raw::RawFileContent::Text(t)), None) => FileContent::Text(t.clone()),
                (Some(raw::RawFileContent::Secret(r)), None) => {
                    match self.secret_ref(at, &path.key("content").key("secret"), &r.secret) {
                        Some(n) => FileContent::Secret(n),
                        None => continue,
                    }
                }
                (None, Some(src)) => match (self.beside)(at.rel, src) {
                    Ok(t) => FileContent::Text(t),
                    Err(e) => {
                        self.push(source_error(at, &path.key("source"), src, e));
                        continue;
                    }
                },
                _ => {
                    self.push(
                        at.err(&path, "invalid-file", "a file has either `content` or `source`")
                            .help("write the text as `content: |`, or name a file beside the manifest as `source`"),
                    );
                    continue;
                }
            };
            let mode = match f.mode.as_deref().map(parse_mode) {
                None => DEFAULT_FILE_MODE,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    self.push(
                        at.err(&path.key("mode"), "invalid-mode", e).help("write the mode in quotes, e.g. `\"0444\"`"),
                    );
                    continue;
                }
            };
            out.push(ConfigFile { target: f.target.clone(), content, mode, uid: f.uid, gid: f.gid, source });
        }
        out
    }
}

/// Why `files[].source` was not read, at its line.
fn source_error(at: At<'_>, path: &FieldPath, src: &str, e: Inside) -> Diagnostic {
    let help = "`source` is a path relative to this manifest, inside the manifest folder";
    match e {
        Inside::Outside => at
            .err(
                path,
                "path-traversal",
                format!(
                    "`{}` leaves the manifest folder (path traversal); tomo reads only files inside it",
                    src.escape_default()
                ),
            )
            .help(help),
        Inside::Missing(rel) => at
            .err(path, "missing-file", format!("`{}` does not exist", rel.escape_default()))
            .help("create it beside the manifest, or write the text as `content: |`"),
        Inside::Unreadable { rel, error } => {
            at.err(path, "unreadable-file", format!("cannot read `{}`: {error}", rel.escape_default())).help(help)
        }
        Inside::Refused(r) => at
            .err(path, r.code, format!("`{}`: {}", r.path.display().to_string().escape_default(), r.message))
            .help(r.help),
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::{LoadOptions, Loaded, SecretCheck, Sources, load, read_dir};

    fn load_dir(dir: &std::path::Path) -> Loaded {
        let sources = read_dir(dir).unwrap();
        load(&sources, &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) })
    }

    fn codes(l: &Loaded) -> Vec<(&'static str, String)> {
        l.diagnostics.iter().map(|d| (d.code, d.field.to_string())).collect()
    }

    /// Each reason a `source` is not read has its own code, whatever the
    /// file is called; `..` that stays inside the folder is read.
    #[test]
    fn a_source_that_is_not_read_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("apps/conf")).unwrap();
        std::fs::write(d.join("apps/a.conf"), "a\n").unwrap();
        std::fs::write(d.join("apps/path traversal.conf"), b"\xff\xfe").unwrap();
        let app = |source: &str| {
            format!(
                "kind: App\nname: web\nserver: local\nimage: img:1\nfiles:\n  - {{target: /a, source: \"{source}\"}}\n"
            )
        };
        for (source, code) in [
            ("path traversal.conf", "not-utf8"),
            ("conf", "not-a-file"),
            ("nothing.conf", "missing-file"),
            ("../../a.conf", "path-traversal"),
            ("~/a.conf", "path-traversal"),
        ] {
            std::fs::write(d.join("apps/web.yaml"), app(source)).unwrap();
            let l = load_dir(d);
            assert_eq!(codes(&l), [(code, "files[0].source".to_string())], "{source}");
        }
        std::fs::write(d.join("apps/web.yaml"), app("conf/../a.conf")).unwrap();
        let l = load_dir(d);
        assert!(l.desired.is_some(), "{:?}", l.diagnostics);
    }

    /// In-memory sources (edits checked before writing) read `source` from
    /// `beside` by the same rule.
    #[test]
    fn in_memory_sources_follow_the_same_rule() {
        let yaml =
            "kind: App\nname: web\nserver: local\nimage: img:1\nfiles:\n  - {target: /a, source: conf/../a.conf}\n";
        let mut sources = Sources::from_texts([("apps/web.yaml", yaml)]);
        sources.beside.insert("apps/a.conf".into(), "a\n".into());
        let l =
            load(&sources, &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) });
        assert!(l.desired.is_some(), "{:?}", l.diagnostics);
    }
}
