//! An app's `backup:`: its consistency mode and the `pre` hook (a service of
//! the app, a non-empty command, a timeout from 1s to 24h).

use std::collections::BTreeMap;

use super::{At, Resolver};
use crate::diag::FieldPath;
use crate::manifest::raw;
use crate::model::backup::{AppBackup, PRE_TIMEOUT, PreHook};
use crate::model::{Name, Service};

/// The longest a `pre` hook may be given.
const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;

impl<'a> Resolver<'a> {
    pub(super) fn app_backup(
        &mut self,
        at: At<'a>,
        services: &BTreeMap<Name, Service>,
        b: Option<&raw::RawAppBackup>,
    ) -> Option<AppBackup> {
        let b = b?;
        let path = FieldPath::root().key("backup");
        let pre = b.pre.as_ref().and_then(|p| self.pre_hook(at, &path.key("pre"), services, p));
        Some(AppBackup { mode: b.mode, pre })
    }

    fn pre_hook(
        &mut self,
        at: At<'a>,
        path: &FieldPath,
        services: &BTreeMap<Name, Service>,
        p: &raw::RawPreHook,
    ) -> Option<PreHook> {
        let service = self.name(at, &path.key("service"), &p.service);
        let service = service.and_then(|s| {
            if services.contains_key(&s) {
                return Some(s);
            }
            let known: Vec<String> = services.keys().map(|k| format!("`{k}`")).collect();
            self.push(
                at.err(&path.key("service"), "unknown-service", format!("no service `{s}` in this app"))
                    .help(format!("name one of the app's services: {}", known.join(", "))),
            );
            None
        });
        let command = match &p.command {
            raw::StringOrList::String(s) if !s.trim().is_empty() => Some(vec!["sh".into(), "-c".into(), s.clone()]),
            raw::StringOrList::List(l) if l.first().is_some_and(|c| !c.trim().is_empty()) => Some(l.clone()),
            _ => {
                self.push(
                    at.err(&path.key("command"), "empty-command", "the `pre` command is empty")
                        .help("e.g. `command: [pg_dump, -U, app, -f, /backup/dump.sql]` or a string run by `sh -c`"),
                );
                None
            }
        };
        let timeout = match &p.timeout {
            None => Some(PRE_TIMEOUT),
            Some(t) => {
                let d = self.duration(at, &path.key("timeout"), Some(t));
                if d.is_some_and(|d| !(1000..=MAX_TIMEOUT_MS).contains(&d.as_millis())) {
                    self.push(
                        at.err(&path.key("timeout"), "out-of-range", "a `pre` timeout must be from 1s to 24h")
                            .help("e.g. `10m`"),
                    );
                    return None;
                }
                d
            }
        };
        Some(PreHook { service: service?, command: command?, timeout: timeout? })
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::{LoadOptions, Loaded, SecretCheck, Sources, load};
    use crate::model::backup::{BackupApps, DataMode};
    use crate::model::secret::NoSecrets;
    use crate::model::spec::ContainerSpec;
    use crate::model::{Desired, Name};

    fn load_str(text: &str) -> Loaded {
        let sources = Sources::from_texts([("apps/shop.yaml", text)]);
        load(&sources, &LoadOptions { secrets: &SecretCheck::Known(Default::default()), inline_check: |_| Ok(()) })
    }

    fn desired(text: &str) -> Desired {
        let l = load_str(text);
        l.desired.unwrap_or_else(|| panic!("{:?}", l.diagnostics))
    }

    /// `code@line field` of each diagnostic, with its file.
    fn problems(text: &str) -> Vec<String> {
        let l = load_str(text);
        assert!(l.desired.is_none(), "expected errors");
        l.diagnostics
            .iter()
            .map(|d| {
                let file = d.file.as_ref().map_or(String::new(), |f| f.path.display().to_string());
                format!("{file}:{} {} {}", d.span.map_or(0, |s| s.line), d.code, d.field)
            })
            .collect()
    }

    const SHOP: &str = "kind: App\nname: shop\nserver: local\nservices:\n  web:\n    image: img:1\n    volumes: [\"files:/f\"]\n  db:\n    image: img:1\n    volumes: [\"pg:/var/lib/pg\"]\n";

    #[test]
    fn backup_mode_and_pre_hook_resolve() {
        let d = desired(&format!(
            "{SHOP}backup:\n  mode: live\n  pre:\n    service: db\n    command: pg_dump -f /var/lib/pg/dump.sql\n    timeout: 2m\n"
        ));
        let b = d.apps["shop"].backup.clone().unwrap();
        assert_eq!(b.mode, Some(DataMode::Live));
        let pre = b.pre.unwrap();
        assert_eq!(pre.service.as_str(), "db");
        assert_eq!(pre.command, ["sh", "-c", "pg_dump -f /var/lib/pg/dump.sql"]);
        assert_eq!(pre.timeout.as_millis(), 120_000);
        let one = desired(
            "kind: App\nname: notes\nserver: local\nimage: img:1\nbackup:\n  mode: stop\n  pre: {service: notes, command: [touch, /x]}\n",
        );
        let b = one.apps["notes"].backup.clone().unwrap();
        assert_eq!(b.mode, Some(DataMode::Stop));
        let pre = b.pre.unwrap();
        assert_eq!((pre.command.len(), pre.timeout.as_millis()), (2, 300_000));
        assert!(desired(SHOP).apps["shop"].backup.is_none());
    }

    #[test]
    fn bad_backup_values_name_file_line_and_field() {
        let got =
            problems(&format!("{SHOP}backup:\n  pre:\n    service: cache\n    command: \"  \"\n    timeout: 2d\n"));
        for want in [
            "apps/shop.yaml:13 unknown-service backup.pre.service",
            "apps/shop.yaml:14 empty-command backup.pre.command",
            "apps/shop.yaml:15 out-of-range backup.pre.timeout",
        ] {
            assert!(got.iter().any(|g| g == want), "{want} not in {got:?}");
        }
        let got = problems(&format!("{SHOP}backup:\n  mode: sometimes\n  pre: {{service: db, command: []}}\n"));
        assert!(got.iter().any(|g| g.starts_with("apps/shop.yaml:12 ") && g.ends_with(" backup.mode")), "{got:?}");
        let got = problems(&format!("{SHOP}backup:\n  pre: {{service: db, command: []}}\n"));
        assert!(got.iter().any(|g| g == "apps/shop.yaml:12 empty-command backup.pre.command"), "{got:?}");
        let got = problems(&format!("{SHOP}backup:\n  pre: {{service: db, command: [x], when: always}}\n"));
        assert!(got.iter().any(|g| g.starts_with("apps/shop.yaml:12 ")), "{got:?}");
    }

    /// `backup:` is no part of any container's spec: the services of an app
    /// with it hash as without it (and as before the field existed).
    #[test]
    fn backup_does_not_change_the_spec_hash() {
        let with = format!(
            "{SHOP}backup:\n  mode: stop\n  pre: {{service: db, command: \"date > /var/lib/pg/dump.txt\", timeout: 1m}}\n"
        );
        let secrets = NoSecrets("no secrets".into());
        let hash = |text: &str, service: &str| {
            let d = desired(text);
            let app = &d.apps["shop"];
            let s = Name::parse(service).unwrap();
            ContainerSpec::new(&Name::parse("a").unwrap(), app, &app.services[&s]).hash(&secrets).unwrap()
        };
        for service in ["web", "db"] {
            assert_eq!(hash(&with, service), hash(SHOP, service), "{service}");
        }
        // The hash the same service had before `backup:` existed.
        assert_eq!(hash(SHOP, "db"), "d35b12f77545b5942dd08ebfec16bc3d");
    }

    #[test]
    fn settings_backup_apps_and_mode() {
        let settings =
            |apps: &str| format!("---\nkind: Settings\nbackup:\n  schedule: 6h\n  apps: {apps}\n  mode: stop\n");
        let d = desired(&format!("{SHOP}{}", settings("[shop]")));
        let b = d.settings.backup.unwrap();
        assert_eq!(b.apps, BackupApps::List(vec![Name::parse("shop").unwrap()]));
        assert_eq!(b.mode, Some(DataMode::Stop));
        let d = desired(&format!("{SHOP}{}", settings("all")));
        assert_eq!(d.settings.backup.unwrap().apps, BackupApps::All);
        let d = desired(&format!("{SHOP}---\nkind: Settings\nbackup: {{schedule: 6h}}\n"));
        let b = d.settings.backup.unwrap();
        assert_eq!((b.apps, b.mode), (BackupApps::None, None));
        let got = problems(&format!("{SHOP}{}", settings("[shop, blog]")));
        assert!(got.iter().any(|g| g == "apps/shop.yaml:15 unknown-app backup.apps[1]"), "{got:?}");
        let got = problems(&format!("{SHOP}{}", settings("some")));
        assert!(got.iter().any(|g| g.starts_with("apps/shop.yaml:15 ") && g.contains("backup.apps")), "{got:?}");
    }
}
