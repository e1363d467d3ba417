//! What a service puts on the server's filesystem: the options of its
//! long-form bind mounts (`create_host_path`, `owner`, `mode`) and its
//! config files (`files:`, text, a vault secret, or a file beside the
//! manifest).

use std::collections::BTreeMap;

use super::{At, Resolver};
use crate::diag::FieldPath;
use crate::manifest::raw;
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
            let source = f.source.as_deref().map(|src| beside_path(at.rel, src));
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
                        let code = if e.contains("path traversal") { "path-traversal" } else { "unreadable-file" };
                        self.push(
                            at.err(&path.key("source"), code, e)
                                .help("`source` is a path relative to this manifest, inside the manifest folder"),
                        );
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

/// A `source` as a path relative to the manifest folder (`apps/conf/a.conf`
/// for `conf/a.conf` beside `apps/web.yaml`), with `.` and inner `..` taken out.
fn beside_path(manifest_rel: &str, source: &str) -> String {
    let mut parts: Vec<&str> = manifest_rel.split('/').collect();
    parts.pop();
    for p in source.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}
