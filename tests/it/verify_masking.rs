//! A container that fails verification after printing a vault secret: the
//! failure's log lines (printed, and stored in the run) show it masked.

use crate::fleet::Fleet;

const VALUE: &str = "verify-log-secret-7f3a9c";

#[test]
fn a_secret_printed_by_a_container_failing_verification_is_masked() {
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master pw");
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    let set = f.tomo.run_with_stdin(&["secret", "set", "verify-token"], Some(&format!("{VALUE}\n")));
    assert_eq!(set.code, 0, "{}", set.all());
    f.manifest("settings.yaml", "kind: Settings\nrollout: {verify: 10s}\n");
    let svc = f.app("leaky");
    let app = |extra: &str| {
        f.manifest(
            "apps/leaky.yaml",
            &format!("kind: App\nname: {{p}}-leaky\nserver: local\nimage: {{image}}\ninit: true\n{extra}"),
        )
    };
    app("command: [\"sleep\", \"1000\"]\n");
    f.apply();
    let id = f.id(&svc);
    app(
        "restart: \"no\"\nenv: {TOKEN: {secret: verify-token}}\ncommand: [\"sh\", \"-c\", \"echo the token is $TOKEN; sleep 1; exit 3\"]\n",
    );
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let out = r.all();
    assert!(out.contains("verification failed within 10s") && out.contains("its last log lines:"), "{out}");
    assert!(out.contains("the token is ***"), "the log line, masked: {out}");
    assert!(!out.contains(VALUE), "the secret was printed: {out}");
    assert_eq!(f.id(&svc), id, "the previous container is back");
    // The stored run holds the masked text too.
    let store = tomo::store::Store::open(&f.tomo.path().join("data/tomo.db")).unwrap();
    let run = &store.runs(1).unwrap()[0];
    let actions = store.run_actions(run.id).unwrap();
    let failed = actions.iter().find(|a| a.status == "failed").expect("a failed action");
    let error = failed.error.clone().unwrap_or_default();
    assert!(error.contains("the token is ***") && !error.contains(VALUE), "{error}");
    for file in ["tomo.db", "tomo.db-wal"] {
        let bytes = std::fs::read(f.tomo.path().join("data").join(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(VALUE), "the secret is in {file}");
    }
    let history = f.tomo(&["history", &svc, "--json"]);
    assert_eq!(history.code, 0, "{}", history.all());
    assert!(!history.all().contains(VALUE), "{}", history.all());
}
