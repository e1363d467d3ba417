//! Remote servers over real OpenSSH with their own real Docker Engines:
//! fleet-wide apply, host keys, trust, unreachable servers, auth methods,
//! command quoting, many parallel connections.

use std::time::Duration;

use tomo::model::secret::SecretString;
use tomo::transport::ssh::{Credential, ExecOptions, HostKeyPolicy, SshError, SshSession};

use crate::fleet::Fleet;
use crate::hosts::{PW, PW_USER, TestHost};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

const T: Duration = Duration::from_secs(10);

fn app(name: &str, servers: &str) -> String {
    format!("kind: App\nname: {{p}}-{name}\n{servers}\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\n")
}

#[test]
fn fleet_apply_across_ssh_servers_and_the_local_engine() {
    let (h1, h2) = (TestHost::new(true), TestHost::new(true));
    let f = Fleet::new();
    f.manifest("servers.yaml", &format!("{}---\n{}", h1.server_yaml("h1"), h2.server_yaml("h2")));
    f.manifest(
        "apps.yaml",
        &format!(
            "{}---\n{}---\n{}",
            app("both", "servers: [h1, h2]"),
            app("one", "server: h1"),
            app("here", "server: local")
        ),
    );
    let plan = f.tomo(&["plan"]);
    assert!(
        plan.stdout.contains("server h1") && plan.stdout.contains("server h2") && plan.stdout.contains("server local"),
        "{}",
        plan.stdout
    );
    f.apply();
    let names = |h: &TestHost| h.docker(&["ps", "--format", "{{.Names}}"]);
    assert!(names(&h1).contains(&f.app("both")) && names(&h1).contains(&f.app("one")), "{}", names(&h1));
    assert!(names(&h2).contains(&f.app("both")) && !names(&h2).contains(&f.app("one")), "{}", names(&h2));
    assert!(f.exists(&f.app("here")));
    f.assert_converged();
    // status and server list cover every server
    let list = f.tomo(&["server", "list"]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert_eq!(list.stdout.matches("yes").count(), 3, "{}", list.stdout);
    let test = f.tomo(&["server", "test", "h1"]);
    assert_eq!(test.code, 0, "{}", test.all());
    for step in ["ssh", "login", "free disk", "docker socket", "docker version"] {
        assert!(test.stdout.contains(step), "{step}: {}", test.stdout);
    }
}

#[test]
fn an_unreachable_server_fails_alone() {
    let (h1, mut h2) = (TestHost::new(true), TestHost::new(true));
    let f = Fleet::new();
    f.manifest("servers.yaml", &format!("{}---\n{}", h1.server_yaml("h1"), h2.server_yaml("h2")));
    f.manifest("apps.yaml", &format!("{}---\n{}", app("a1", "server: h1"), app("a2", "server: h2")));
    h2.stop_sshd();
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("server h2 was not reached") && r.stdout.contains("cannot reach"), "{}", r.stdout);
    assert!(h1.docker(&["ps", "--format", "{{.Names}}"]).contains(&f.app("a1")));
    let plan = f.tomo(&["plan"]);
    assert_eq!(plan.code, 1);
    assert!(plan.stdout.contains("unreachable"), "{}", plan.stdout);
    h2.start_sshd();
    f.apply();
    assert!(h2.docker(&["ps", "--format", "{{.Names}}"]).contains(&f.app("a2")));
}

#[test]
fn host_keys_are_pinned_trusted_or_refused() {
    let h = TestHost::new(false);
    let f = Fleet::new();
    let pinned = h.server_yaml("h");
    let unpinned: String = pinned.lines().filter(|l| !l.starts_with("host_key")).map(|l| format!("{l}\n")).collect();
    // No pin and no record: refused, with what to do.
    f.manifest("s.yaml", &unpinned);
    let r = f.tomo(&["server", "test", "h"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("not trusted yet") && r.stdout.contains("tomo server trust h"), "{}", r.stdout);
    // A wrong pin: refused loudly with both fingerprints, and audited.
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    f.manifest("s.yaml", &pinned.replace(&h.fingerprint, wrong));
    let r = f.tomo(&["server", "test", "h"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("host key")
            && r.stdout.contains("changed")
            && r.stdout.contains(wrong)
            && r.stdout.contains(&h.fingerprint),
        "{}",
        r.stdout
    );
    let store = tomo::store::Store::open(&f.tomo.path().join("data/tomo.db")).unwrap();
    let audit = store.activities(Some("server"), 10).unwrap();
    assert!(audit.iter().any(|a| a.action == "host-key-changed" && a.result == "refused"), "{audit:?}");
    // trust records the key; then connections work without a pin.
    f.manifest("s.yaml", &unpinned);
    let r = f.tomo(&["server", "trust", "h", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains(&h.fingerprint), "{}", r.stdout);
    let r = f.tomo(&["server", "test", "h"]);
    assert!(r.stdout.contains("ok   ssh") && r.stdout.contains("ok   login"), "{}", r.stdout);
    // --write pins it in the manifest, byte-identical otherwise.
    let r = f.tomo(&["server", "trust", "h", "--yes", "--write"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let text = std::fs::read_to_string(f.tomo.path().join("state/s.yaml")).unwrap();
    assert_eq!(text, unpinned.replacen("\nuser:", &format!("\nhost_key: \"{}\"\nuser:", h.fingerprint), 1));
    // trust without --yes and without a terminal asks nothing and changes nothing
    let r = f.tomo(&["server", "trust", "h"]);
    assert_eq!(r.code, 2, "{}", r.all());
}

#[test]
fn key_password_and_agent_logins_and_a_wrong_password() {
    let h = TestHost::new(false);
    let rt = rt();
    let policy = || HostKeyPolicy::Expect(h.fingerprint.clone());
    let key =
        rt.block_on(SshSession::connect(&h.addr, h.port, "root", &Credential::KeyFile(h.key.clone()), policy(), T));
    assert!(key.is_ok(), "{key:?}");
    let pw = Credential::Password(SecretString::new(PW));
    let s = rt.block_on(SshSession::connect(&h.addr, h.port, PW_USER, &pw, policy(), T)).expect("password login");
    let who = rt.block_on(s.exec(&["id", "-un"], ExecOptions { sudo: false, timeout: T })).unwrap();
    assert_eq!(who.stdout.trim(), PW_USER);
    // `sudo: true` runs the command as root, arguments still quoted.
    let root = rt
        .block_on(s.exec(&["sh", "-c", "id -un; echo \"$1\"", "-", "a b; c"], ExecOptions { sudo: true, timeout: T }))
        .unwrap();
    assert_eq!(root.stdout, "root\na b; c\n", "{root:?}");
    let bad = Credential::Password(SecretString::new("not-the-password"));
    let err = rt.block_on(SshSession::connect(&h.addr, h.port, PW_USER, &bad, policy(), T)).unwrap_err();
    assert!(matches!(err, SshError::AuthFailed { .. }), "{err}");
    assert_eq!(err.to_string(), format!("{PW_USER}@{}:22 refused the password", h.addr));
    assert!(!err.to_string().contains("not-the-password"));
    // The agent: a real ssh-agent holding the key.
    let agent = std::process::Command::new("ssh-agent").arg("-s").output().unwrap();
    let env = String::from_utf8_lossy(&agent.stdout).to_string();
    let sock = env.split("SSH_AUTH_SOCK=").nth(1).unwrap().split(';').next().unwrap().to_string();
    let pid = env.split("SSH_AGENT_PID=").nth(1).unwrap().split(';').next().unwrap().to_string();
    let add = std::process::Command::new("ssh-add").arg(&h.key).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    // SAFETY of the test: the variable is read by the connect below in this thread only.
    unsafe { std::env::set_var("SSH_AUTH_SOCK", &sock) };
    let via_agent = rt.block_on(SshSession::connect(&h.addr, h.port, "root", &Credential::Agent, policy(), T));
    let _ = std::process::Command::new("kill").arg(&pid).status();
    assert!(via_agent.is_ok(), "{via_agent:?}");
}

#[test]
fn command_arguments_arrive_verbatim() {
    let h = TestHost::new(false);
    let rt = rt();
    let s = rt
        .block_on(SshSession::connect(
            &h.addr,
            h.port,
            "root",
            &Credential::KeyFile(h.key.clone()),
            HostKeyPolicy::Expect(h.fingerprint.clone()),
            T,
        ))
        .unwrap();
    let args =
        ["two words", "it's", "\"double\"", "$(touch /tmp/tomo-pwned)", "a;b", "`id`", "*", "$HOME", "back\\slash", ""];
    let mut cmd = vec!["printf", "[%s]\\n"];
    cmd.extend(args);
    let out = rt.block_on(s.exec(&cmd, ExecOptions { sudo: false, timeout: T })).unwrap();
    assert!(out.success(), "{out:?}");
    let expected: String = args.iter().map(|a| format!("[{a}]\n")).collect();
    assert_eq!(out.stdout, expected);
    assert!(!std::path::Path::new("/tmp/tomo-pwned").exists());
    // stderr and the exit status come back separately
    let out = rt
        .block_on(s.exec(&["sh", "-c", "echo out; echo err >&2; exit 3"], ExecOptions { sudo: false, timeout: T }))
        .unwrap();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.status), ("out\n", "err\n", Some(3)));
    // and a command that runs too long is cut off
    let slow = rt.block_on(s.exec(&["sleep", "5"], ExecOptions { sudo: false, timeout: Duration::from_millis(300) }));
    assert!(matches!(slow, Err(SshError::CommandTimeout { .. })), "{slow:?}");
}

#[test]
fn twenty_servers_connect_in_parallel_without_dropped_handshakes() {
    let h = TestHost::new(true);
    let f = Fleet::new();
    let docs: Vec<String> = (0..20).map(|i| h.server_yaml(&format!("s{i}"))).collect();
    f.manifest("servers.yaml", &docs.join("---\n"));
    let r = f.tomo(&["server", "list"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.stdout.lines().filter(|l| l.contains(" yes ")).count(), 20, "{}", r.stdout);
}

#[test]
fn a_connection_lost_mid_apply_fails_only_that_servers_actions() {
    let (mut h1, h2) = (TestHost::new(true), TestHost::new(true));
    let f = Fleet::new();
    f.manifest("servers.yaml", &format!("{}---\n{}", h1.server_yaml("h1"), h2.server_yaml("h2")));
    // On h1 the app takes a few seconds to become healthy: the connection drops meanwhile.
    f.manifest(
        "apps.yaml",
        &format!(
            "kind: App\nname: {{p}}-slow\nserver: h1\nimage: {{image}}\ninit: true\ncommand: [\"sh\", \"-c\", \"sleep 4 && mkdir -p /w && exec httpd -f -p 80 -h /w\"]\nhealthcheck: {{test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1/\"], interval: 1s, retries: 30}}\n---\n{}",
            app("fast", "server: h2")
        ),
    );
    let apply = f.tomo.spawn(&["apply", "--auto-approve"]);
    let db = f.tomo.path().join("data/tomo.db");
    let started = crate::hosts::wait_until(Duration::from_secs(30), || {
        db.exists()
            && tomo::store::Store::open(&db).is_ok_and(|s| {
                s.runs(1).ok().and_then(|r| r.first().map(|r| r.id)).is_some_and(|run| {
                    s.run_actions(run).is_ok_and(|a| {
                        a.iter().any(|a| a.server == "h1" && a.action == "start" && a.status == "running")
                    })
                })
            })
    });
    assert!(started.is_ok(), "the start on h1 never began");
    h1.kill_sshd();
    let out = apply.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("start") && stdout.contains("on h1: FAILED"), "{stdout}");
    assert!(!stdout.contains("on h2: FAILED"), "{stdout}");
    assert!(h2.docker(&["ps", "--format", "{{.Names}}"]).contains(&f.app("fast")));
    // The run's record says what ran where.
    let store = tomo::store::Store::open(&db).unwrap();
    let run = &store.runs(1).unwrap()[0];
    assert_eq!(run.status, tomo::store::RunStatus::Failed);
    let actions = store.run_actions(run.id).unwrap();
    assert!(actions.iter().any(|a| a.server == "h1" && a.action == "create" && a.status == "succeeded"), "{actions:?}");
    assert!(actions.iter().any(|a| a.server == "h1" && a.action == "start" && a.status == "failed"), "{actions:?}");
    assert!(actions.iter().filter(|a| a.server == "h2").all(|a| a.status == "succeeded"), "{actions:?}");
    // With sshd back, the next apply converges.
    h1.start_sshd();
    f.apply();
    f.assert_converged();
}

#[test]
fn a_long_lived_engine_reconnects_after_its_connection_drops() {
    let mut h = TestHost::new(true);
    let f = Fleet::new();
    f.manifest("s.yaml", &format!("{}---\n{}", h.server_yaml("h"), app("kept", "server: h")));
    let env: std::collections::BTreeMap<String, String> =
        [("DATA_DIRECTORY".to_string(), f.tomo.path().join("data").display().to_string())].into();
    let args = tomo::config::ConfigArgs { config: None, dir: Some(f.tomo.path().join("state")) };
    let engine = tomo::Engine::new(tomo::config::Config::load(&args, &env).unwrap());
    let rt = rt();
    let opts = tomo::plan::PlanOptions::default();
    let first = rt.block_on(engine.plan(&opts)).unwrap();
    assert!(first.unreachable.is_empty(), "{:?}", first.unreachable);
    h.kill_sshd();
    h.start_sshd();
    let again = rt.block_on(engine.plan(&opts)).unwrap();
    assert!(again.unreachable.is_empty(), "the engine did not reconnect: {:?}", again.unreachable);
    assert_eq!(again.actions.len(), first.actions.len());
}

#[test]
fn a_password_from_the_vault_logs_in_and_never_shows() {
    let h = TestHost::new(false);
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master");
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    let set = f.tomo.run_with_stdin(&["secret", "set", "h-login"], Some(PW));
    assert_eq!(set.code, 0, "{}", set.all());
    f.manifest(
        "s.yaml",
        &format!(
            "kind: Server\nname: h\nhost: {}\nuser: {PW_USER}\nauth: {{password: {{secret: h-login}}}}\nhost_key: \"{}\"\n",
            h.addr, h.fingerprint
        ),
    );
    let r = f.tomo(&["server", "test", "h"]);
    assert!(
        r.stdout.contains("ok   ssh") && r.stdout.contains(&format!("ok   login           logged in as {PW_USER}")),
        "{}",
        r.all()
    );
    assert!(!r.all().contains(PW));
}
