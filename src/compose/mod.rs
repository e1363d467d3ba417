//! Compose files as tomo reads them for `tomo import compose`: the Compose
//! Specification's interpolation (`interpolate.rs`), the conversion of a
//! compose file to one App manifest (`convert.rs`, `service.rs`) with a
//! report of what became of every key (`report.rs`), and the YAML it is
//! written as (`emit.rs`).
//!
//! Pure: the caller reads the files and gives the variables (command line,
//! process environment, `.env`, in that order) as a lookup. Every problem is
//! a `Diagnostic` naming the compose file and line.

mod convert;
mod deploy;
pub mod emit;
mod files;
pub mod interpolate;
mod network;
pub mod report;
mod service;
mod values;

use std::path::PathBuf;
use std::sync::Arc;

use crate::diag::{Diagnostics, SourceFile};
use crate::manifest::raw::RawDocument;
pub use report::{Counts, Entry, Status};

/// CasaOS store files use these without defining them; `AppID` defaults to
/// the app's name (see `convert.rs`).
pub const CASAOS_APP_ID: &str = "AppID";

/// How to convert.
pub struct Options<'a> {
    /// The app's name (default: the file's `name`, else its folder's name).
    pub name: Option<String>,
    pub server: Option<String>,
    /// A variable's value, `None` when unset.
    pub vars: &'a dyn Fn(&str) -> Option<String>,
    /// Profiles whose services run; services of other profiles are kept
    /// with `state: absent`.
    pub profiles: Vec<String>,
    /// Credential-looking environment values become vault references.
    pub secrets: bool,
    /// The compose file's folder, absolute: relative bind sources are made
    /// absolute against it, and config files must lie inside it.
    pub folder: Option<PathBuf>,
}

/// A converted compose file.
#[derive(Debug)]
pub struct Imported {
    pub document: RawDocument,
    pub report: Vec<Entry>,
    /// Values for the vault, by secret name (with `Options::secrets`).
    pub secrets: Vec<(String, crate::model::secret::SecretString)>,
    /// The app's name.
    pub name: String,
}

impl Imported {
    /// The manifest as YAML: a `$schema` line, a comment naming `source`, the document.
    pub fn yaml(&self, source: &str) -> String {
        let doc = serde_json::to_value(&self.document).unwrap_or_default();
        format!(
            "# yaml-language-server: $schema=../../schemas/app.json\n# Imported from {} by `tomo import compose`.\n{}",
            source.replace(['\n', '\r'], " "),
            emit::to_yaml(&doc)
        )
    }

    pub fn counts(&self) -> Counts {
        report::counts(&self.report)
    }
}

/// Converts the compose file `file` to an App manifest.
pub fn import(file: &Arc<SourceFile>, options: &Options<'_>) -> Result<Imported, Diagnostics> {
    convert::run(file, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Imported, Diagnostics> {
        let file = Arc::new(SourceFile { path: "app/docker-compose.yml".into(), text: text.into() });
        let none = |_: &str| None;
        let o = Options { name: None, server: None, vars: &none, profiles: Vec::new(), secrets: true, folder: None };
        import(&file, &o)
    }

    #[test]
    fn renamed_services_keep_their_old_name_as_an_alias() {
        let i = run("name: x\nservices:\n  ssrf_proxy:\n    image: a\n  web:\n    image: b\n    depends_on:\n      ssrf_proxy:\n        condition: service_healthy\n").unwrap();
        let v = serde_json::to_value(&i.document).unwrap();
        assert_eq!(v["services"]["ssrf-proxy"]["networks"]["default"]["aliases"][0], "ssrf_proxy");
        assert_eq!(v["services"]["web"]["depends_on"]["ssrf-proxy"], "healthy");
        assert_eq!(v["services"]["web"]["restart"], "no");
        assert!(i.report.iter().any(|e| e.service == "web" && e.key == "restart" && e.status == Status::Changed));
    }

    #[test]
    fn credentials_go_to_the_vault_when_asked() {
        let i = run("name: x\nservices:\n  db:\n    image: a\n    environment:\n      - DB_PASSWORD=hunter2\n      - DB_USER=me\n").unwrap();
        let v = serde_json::to_value(&i.document).unwrap();
        assert_eq!(v["env"]["DB_PASSWORD"]["secret"], "x-db-password");
        assert_eq!(v["env"]["DB_USER"], "me");
        assert_eq!(i.secrets.len(), 1);
        assert_eq!(i.secrets[0].0, "x-db-password");
    }

    #[test]
    fn extensions_are_ignored_not_dropped() {
        let i = run("name: x\nx-casaos: {a: $$ b}\nservices:\n  a:\n    image: a\n    x-casaos: {}\n").unwrap();
        assert_eq!(i.counts().dropped, 0);
        assert_eq!(i.counts().ignored, 2);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_converted_or_refused_without_panic(s in "\\PC{0,200}") {
            let _ = run(&s);
        }

        #[test]
        fn compose_like_text_never_panics(
            keys in proptest::collection::vec(
                proptest::sample::select(vec![
                    "image: x", "ports: [\"80\"]", "networks: [n]", "network_mode: service:a", "pid: host",
                    "depends_on: {a: {condition: service_healthy}}", "deploy: {resources: {limits: {cpus: '0.5'}}}",
                    "healthcheck: {retries: \"3\", disable: true}", "environment: [A=$B]", "configs: [c]",
                    "volumes: [./x:/y]", "container_name: c", "links: [a:b]", "profiles: [p]", "expose: [1]",
                    "restart: always", "x-y: 1", "ulimits: {nofile: {soft: 1, hard: 2}}", "gpus: all",
                ]),
                0..8,
            )
        ) {
            let body: String = keys.iter().map(|k| format!("    {k}\n")).collect();
            let text = format!("services:\n  a:\n{body}  b_c:\n{body}networks:\n  n: {{}}\nconfigs:\n  c: {{content: x}}\n");
            let _ = run(&text);
        }
    }
}
