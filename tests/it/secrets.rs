//! The secret vault through the CLI: round trip, wrong password or salt
//! refused before anything is read or written, values absent from every
//! output, the database file and the audit log.

use tomo::store::Store;

use crate::harness::{Run, Tomo};

const VALUE: &str = "correct-horse-battery-staple-42";

fn vault() -> Tomo {
    Tomo::new()
        .env("TOMO_MASTER_PASSWORD", "master pw")
        .env("TOMO_SALT", "salt-0123456789")
        .env("DATA_DIRECTORY", "data")
}

fn assert_secret_free(runs: &[&Run]) {
    for r in runs {
        assert!(!r.all().contains(VALUE), "secret value printed: {}", r.all());
    }
}

#[test]
fn round_trip_list_remove_and_validate_references() {
    let t = vault().file(
        "state/app.yaml",
        "kind: App\nname: web\nserver: local\nimage: nginx\nenv:\n  A: {secret: db-pass}\n  B: {secret: api-key}\n",
    );
    let set = t.run_with_stdin(&["secret", "set", "db-pass"], Some(&format!("{VALUE}\n")));
    assert_eq!(set.code, 0, "{}", set.all());
    assert_eq!(set.stdout, "stored secret db-pass\n");
    let list = t.run(&["secret", "list"]);
    assert_eq!(list.code, 0);
    assert!(list.stdout.contains("db-pass"), "{}", list.stdout);
    let json = t.run(&["secret", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(rows[0]["name"], "db-pass");
    assert!(rows[0]["updated_at"].is_string());

    // References are checked against the vault: the missing one is an error.
    let v = t.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(v.stderr.contains("secret `api-key` is not in the vault"), "{}", v.stderr);
    assert!(v.stderr.contains("tomo secret set api-key"), "{}", v.stderr);
    assert!(!v.stderr.contains("db-pass` is not"), "{}", v.stderr);
    let file = t.path().join("value.txt");
    std::fs::write(&file, "second-value\n").unwrap();
    let set2 = t.run(&["secret", "set", "api-key", "--from-file", file.to_str().unwrap()]);
    assert_eq!(set2.code, 0, "{}", set2.all());
    let v2 = t.run(&["validate"]);
    assert_eq!(v2.code, 0, "{}", v2.all());

    let rm = t.run(&["secret", "rm", "api-key"]);
    assert_eq!(rm.code, 0);
    let rm_again = t.run(&["secret", "rm", "api-key"]);
    assert_eq!(rm_again.code, 2);
    assert!(rm_again.stderr.contains("not in the vault"), "{}", rm_again.stderr);
    let bad_name = t.run_with_stdin(&["secret", "set", "Bad Name"], Some("x"));
    assert_eq!(bad_name.code, 2);
    assert!(bad_name.stderr.contains("invalid secret name"), "{}", bad_name.stderr);
    let empty = t.run_with_stdin(&["secret", "set", "empty"], Some(""));
    assert_eq!(empty.code, 2, "{}", empty.all());

    assert_secret_free(&[&set, &list, &json, &v, &v2, &set2, &rm]);
    // Nor in the database files (ciphertext only) or the audit log.
    for f in ["data/tomo.db", "data/tomo.db-wal"] {
        if let Ok(bytes) = std::fs::read(t.path().join(f)) {
            assert!(!bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "{f} holds the plaintext");
        }
    }
    let store = Store::open(&t.path().join("data/tomo.db")).unwrap();
    let audit = store.activities(Some("secret"), 10).unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["rm", "set", "set"]);
    assert!(!format!("{audit:?}").contains(VALUE));
}

#[test]
fn wrong_password_or_salt_changes_nothing() {
    let t = vault();
    assert_eq!(t.run_with_stdin(&["secret", "set", "db-pass"], Some(VALUE)).code, 0);
    let before = t.run(&["secret", "list", "--json"]).stdout;

    for (pw, salt) in [("wrong pw", "salt-0123456789"), ("master pw", "salt-9876543210")] {
        let runs = [
            run_in(&t, pw, salt, &["secret", "list"], None),
            run_in(&t, pw, salt, &["secret", "set", "db-pass"], Some("overwritten")),
            run_in(&t, pw, salt, &["secret", "set", "other"], Some("new")),
            run_in(&t, pw, salt, &["secret", "rm", "db-pass"], None),
            run_in(&t, pw, salt, &["secret", "encrypt"], Some("x")),
        ];
        for r in &runs {
            assert_eq!(r.code, 1, "{}", r.all());
            assert!(r.stderr.contains("master password or salt is wrong"), "{}", r.stderr);
        }
        assert_secret_free(&runs.iter().collect::<Vec<_>>());
    }
    assert_eq!(t.run(&["secret", "list", "--json"]).stdout, before, "a wrong key changed the vault");
    let missing = Tomo::new().env("DATA_DIRECTORY", "data").run(&["secret", "list"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("TOMO_MASTER_PASSWORD is not set"), "{}", missing.stderr);
}

fn run_in(t: &Tomo, pw: &str, salt: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let other = Tomo::new()
        .env("TOMO_MASTER_PASSWORD", pw)
        .env("TOMO_SALT", salt)
        .env("DATA_DIRECTORY", t.path().join("data").to_str().unwrap());
    other.run_with_stdin(args, stdin)
}

#[test]
fn inline_encrypted_values_stand_in_manifests() {
    let t = vault();
    let enc = t.run_with_stdin(&["secret", "encrypt"], Some(VALUE));
    assert_eq!(enc.code, 0, "{}", enc.all());
    let value = enc.stdout.trim();
    assert!(value.starts_with("enc:v1:"), "{value}");
    assert_secret_free(&[&enc]);
    let t = t.file(
        "state/a.yaml",
        &format!("kind: App\nname: web\nserver: local\nimage: nginx\nenv: {{TOKEN: \"{value}\"}}\n"),
    );
    let v = t.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    let cut = &value[..value.len() - 30];
    let t = t.file(
        "state/a.yaml",
        &format!("kind: App\nname: web\nserver: local\nimage: nginx\nenv: {{TOKEN: \"{cut}\"}}\n"),
    );
    let v = t.run(&["validate"]);
    assert_eq!(v.code, 1, "{}", v.all());
    assert!(v.stderr.contains("enc:v1:"), "{}", v.stderr);
}

/// The vault key (Argon2id, slow on purpose) is derived only when a command
/// needs a secret: a plan and an apply that reference none never derive it,
/// so a wrong master password does not concern them; once a manifest refers
/// to a secret, the wrong password is refused as before.
#[test]
fn the_vault_key_is_derived_only_when_a_secret_is_needed() {
    let mut f = crate::fleet::Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "the right password");
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    let set = f.tomo.run_with_stdin(&["secret", "set", "db-pass"], Some(VALUE));
    assert_eq!(set.code, 0, "{}", set.all());
    f.manifest(
        "plain.yaml",
        "kind: App\nname: {p}-plain\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\n",
    );
    let derives = |r: &Run| r.stderr.matches("deriving the vault key").count();
    let wrong = [("TOMO_MASTER_PASSWORD", "a wrong password"), ("TOMO_LOG", "tomo=debug")];
    for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"], &["plan", "--detailed-exitcode"]] {
        let r = f.tomo.run_env(args, &wrong);
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
        assert_eq!(derives(&r), 0, "{args:?} derived the key:\n{}", r.stderr);
    }
    // A secret referenced: derived once, and a wrong password refused.
    f.manifest(
        "secret.yaml",
        "kind: App\nname: {p}-sec\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\nenv: {P: {secret: db-pass}}\n",
    );
    let r = f.tomo.run_env(&["plan"], &wrong);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("the master password or salt is wrong"), "{}", r.stderr);
    let r = f.tomo.run_env(&["apply", "--auto-approve"], &[("TOMO_LOG", "tomo=debug")]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(derives(&r), 1, "{}", r.stderr);
    assert_secret_free(&[&r]);
}
