//! Server documents: the host (this machine or SSH), the login, the pinned
//! host key and the Docker socket; and the servers apps name, checked once
//! every document is read (the undeclared `local` is added implicitly).

use std::collections::BTreeMap;

use super::{At, LOCAL, Resolver};
use crate::diag::{Diagnostic, FieldPath};
use crate::manifest::raw;
use crate::model::host;
use crate::model::*;

impl<'a> Resolver<'a> {
    pub(super) fn server(&mut self, at: At<'a>, rel: &str, name: Name, s: &raw::RawServer) -> Option<Server> {
        let root = FieldPath::root();
        let before = self.diags.error_count();
        if name.as_str() == LOCAL && s.host != LOCAL {
            self.push(
                at.err(
                    &root.key("name"),
                    "reserved-name",
                    "the Server name `local` is reserved for this machine (`host: local`)",
                )
                .help("give the server another name; apps on `local` run on this machine's Docker Engine"),
            );
        }
        let host = if s.host == LOCAL {
            self.local_fields_ignored(at, s);
            Host::Local
        } else {
            Host::Ssh(self.ssh_target(at, s)?)
        };
        let docker = self.docker_settings(at, s.docker.as_ref());
        (self.diags.error_count() == before).then(|| Server {
            name,
            host,
            docker,
            labels: s.labels.clone().unwrap_or_default(),
            origin: at.origin(rel),
            implicit: false,
        })
    }

    /// The `docker` block: the socket, and what tomo ensures of the Engine.
    /// Without the block (or its `ensure`), Docker is left alone.
    fn docker_settings(&mut self, at: At<'a>, raw: Option<&raw::RawDocker>) -> DockerSettings {
        let path = FieldPath::root().key("docker");
        let Some(d) = raw else { return DockerSettings::unmanaged(DEFAULT_DOCKER_SOCKET) };
        let socket = d.socket.clone().unwrap_or_else(|| DEFAULT_DOCKER_SOCKET.into());
        if !socket.starts_with('/') || socket.split('/').any(|c| c == "..") {
            self.push(
                at.err(
                    &path.key("socket"),
                    "invalid-path",
                    format!("socket path `{}` must be absolute", socket.escape_default()),
                )
                .help("e.g. `/var/run/docker.sock`"),
            );
        }
        let ensure = d.ensure.unwrap_or_default();
        let version = d.version.as_deref().and_then(|v| match host::VersionConstraint::parse(v) {
            Ok(c) => Some(c),
            Err(why) => {
                self.push(at.err(&path.key("version"), "invalid-version", why).help("e.g. `version: \"27.*\"`"));
                None
            }
        });
        let purge = d.purge.unwrap_or(false);
        if purge && ensure != DockerEnsure::Absent {
            self.push(
                at.err(
                    &path.key("purge"),
                    "purge-without-absent",
                    "`purge` deletes the Engine's data and applies only with `ensure: absent`",
                )
                .help("remove `purge`, or set `ensure: absent` to remove Docker"),
            );
        }
        if ensure != DockerEnsure::Present {
            for (field, set) in [("version", d.version.is_some()), ("source", d.source.is_some())] {
                if set {
                    self.push(
                        Diagnostic::warning(
                            "ignored-field",
                            format!("`docker.{field}` applies only with `ensure: present`"),
                        )
                        .at(at.file, at.key_span(&path.key(field)))
                        .field(path.key(field)),
                    );
                }
            }
        }
        DockerSettings { socket, ensure, version, source: d.source, purge }
    }

    /// Warns of the SSH fields a `host: local` server does not use.
    fn local_fields_ignored(&mut self, at: At<'a>, s: &raw::RawServer) {
        let root = FieldPath::root();
        for (field, set) in [
            ("port", s.port.is_some()),
            ("user", s.user.is_some()),
            ("auth", s.auth.is_some()),
            ("host_key", s.host_key.is_some()),
        ] {
            if set {
                self.push(
                    Diagnostic::warning("ignored-field", format!("`{field}` is ignored for `host: local`"))
                        .at(at.file, at.key_span(&root.key(field)))
                        .field(root.key(field)),
                );
            }
        }
    }

    /// The SSH connection of a remote server; `None` only when a secret
    /// reference of its login is not a name (reported).
    fn ssh_target(&mut self, at: At<'a>, s: &raw::RawServer) -> Option<SshTarget> {
        let root = FieldPath::root();
        let h = s.host.as_str();
        let ok = !h.is_empty()
            && !h.starts_with('-')
            && h.len() <= 253
            && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c));
        if !ok {
            self.push(
                at.err(
                    &root.key("host"),
                    "invalid-host",
                    format!("`{}` is not a host name or IP address", h.escape_default()),
                )
                .help("write a host name (`nas.lan`), an IP address (`10.0.0.5`, `fd00::5`) or `local`"),
            );
        }
        let port = s.port.unwrap_or(22);
        if port == 0 {
            self.push(
                at.err(&root.key("port"), "invalid-port", "port 0 is not a valid SSH port")
                    .help("SSH listens on 22 unless configured otherwise"),
            );
        }
        let user = s.user.clone().unwrap_or_else(|| "root".into());
        let user_ok = !user.is_empty()
            && user.len() <= 32
            && user.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && user.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !user_ok {
            self.push(
                at.err(
                    &root.key("user"),
                    "invalid-user",
                    format!("`{}` is not a valid user name", user.escape_default()),
                )
                .help("user names start with a lowercase letter or '_' and hold letters, digits, '_', '.' and '-'"),
            );
        }
        let auth = self.ssh_auth(at, s.auth.as_ref())?;
        if let Some(fp) = &s.host_key
            && !valid_fingerprint(fp)
        {
            self.push(
                at.err(&root.key("host_key"), "invalid-host-key", format!("`{}` is not a SHA256 host key fingerprint", fp.escape_default()))
                    .help("write it as `ssh-keygen -lf` prints it, e.g. `SHA256:` and 43 base64 characters; `tomo server trust` records it for you"),
            );
        }
        Some(SshTarget {
            address: s.host.clone(),
            port,
            user,
            auth,
            host_key: s.host_key.clone(),
            sudo: s.sudo.unwrap_or(false),
        })
    }

    fn ssh_auth(&mut self, at: At<'a>, auth: Option<&raw::RawAuth>) -> Option<SshAuth> {
        let auth_path = FieldPath::root().key("auth");
        Some(match auth {
            None | Some(raw::RawAuth::Agent(true)) => SshAuth::Agent,
            Some(raw::RawAuth::Agent(false)) => {
                self.push(at.err(&auth_path.key("agent"), "invalid-auth", "`agent: false` selects no way to log in").help("use `{agent: true}`, `{key_file: PATH}`, `{password: {secret: NAME}}` or `{key: {secret: NAME}}`"));
                SshAuth::Agent
            }
            Some(raw::RawAuth::KeyFile(p)) => {
                if p.trim().is_empty() {
                    self.push(
                        at.err(&auth_path.key("key_file"), "invalid-auth", "key_file is empty")
                            .help("write the path of a private key, e.g. `~/.ssh/id_ed25519`"),
                    );
                }
                SshAuth::KeyFile(p.clone())
            }
            Some(raw::RawAuth::Password(r)) => {
                SshAuth::Password { secret: self.secret_ref(at, &auth_path.key("password").key("secret"), &r.secret)? }
            }
            Some(raw::RawAuth::Key(r)) => {
                SshAuth::Key { secret: self.secret_ref(at, &auth_path.key("key").key("secret"), &r.secret)? }
            }
        })
    }

    /// Reports the servers apps name that no document declares; adds the
    /// implicit `local` server when apps use it undeclared.
    pub(super) fn check_app_servers(&mut self, desired: &mut Desired) {
        let local = Name::parse(LOCAL).expect("valid name");
        let mut candidates: Vec<&str> = self.declared_servers.iter().map(Name::as_str).collect();
        if !candidates.contains(&LOCAL) {
            candidates.push(LOCAL);
        }
        let mut needs_local = false;
        let mut missing = Vec::new();
        for r in &self.server_refs {
            if self.declared_servers.contains(&r.name) {
                continue;
            }
            if r.name == local {
                needs_local = true;
                continue;
            }
            let help = match crate::diag::did_you_mean(r.name.as_str(), candidates.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("declared servers: {}", candidates.join(", ")),
            };
            missing
                .push(r.at.err(&r.path, "unknown-server", format!("server `{}` is not declared", r.name)).help(help));
        }
        for d in missing {
            self.push(d);
        }
        if needs_local {
            desired.servers.insert(
                local.clone(),
                Server {
                    name: local,
                    host: Host::Local,
                    docker: DockerSettings::unmanaged(DEFAULT_DOCKER_SOCKET),
                    labels: BTreeMap::new(),
                    origin: Origin::default(),
                    implicit: true,
                },
            );
        }
    }
}

fn valid_fingerprint(fp: &str) -> bool {
    fp.strip_prefix("SHA256:").is_some_and(|b| {
        let b = b.trim_end_matches('=');
        b.len() == 43 && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints() {
        assert!(valid_fingerprint("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"));
        assert!(!valid_fingerprint("MD5:aa"));
        assert!(!valid_fingerprint("SHA256:short"));
    }
}
