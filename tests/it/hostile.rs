//! A hostile or broken server costs exactly that server: a fake Docker API
//! (tests/it/fakedocker.rs) behind a real sshd in a test namespace, next to
//! the machine's real Engine as the healthy `local` server.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fakedocker::{Behaviour, FakeDocker};
use crate::fleet::Fleet;
use crate::harness::Run;
use crate::hosts::TestHost;

/// The most resident memory tomo may use against any hostile answer.
const MEMORY_BOUND_KB: u64 = 100 * 1024;

fn fake_host(behaviour: Behaviour) -> (TestHost, FakeDocker) {
    let host = TestHost::new(false);
    let fake = FakeDocker::start(&host.socket, behaviour);
    (host, fake)
}

/// This fleet's installation id (made now; tomo reads the same store).
fn installation(f: &Fleet) -> String {
    let data = f.tomo.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    tomo::store::Store::open(&data.join("tomo.db")).unwrap().installation_id().unwrap()
}

/// A run of tomo with its wall time and peak resident memory (VmHWM, read
/// while it runs); killed past `limit`.
struct Measured {
    run: Run,
    secs: f64,
    peak_kb: u64,
}

fn measured(f: &Fleet, args: &[&str], limit: Duration) -> Measured {
    let start = Instant::now();
    let mut child = f.tomo.spawn_piped(args);
    drop(child.stdin.take());
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if let Some(kb) = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if start.elapsed() > limit || peak_kb > 10 * MEMORY_BOUND_KB {
            let _ = child.kill();
            let _ = child.wait();
            break -9;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let secs = start.elapsed().as_secs_f64();
    let run = Run { code, stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    eprintln!("tomo {args:?}: {secs:.2}s, peak {} MB, exit {code}", peak_kb / 1024);
    Measured { run, secs, peak_kb }
}

fn plan_against(behaviour: Behaviour, timeout: &str) -> (Fleet, TestHost, FakeDocker, Measured) {
    let (host, fake) = fake_host(behaviour);
    let mut f = Fleet::new();
    f.tomo.set_env("SSH_TIMEOUT", timeout);
    f.manifest("servers.yaml", &host.server_yaml("bad"));
    f.manifest(
        "apps.yaml",
        "kind: App\nname: {p}-fine\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\n",
    );
    let m = measured(&f, &["plan"], Duration::from_secs(60));
    (f, host, fake, m)
}

/// The healthy server's plan is there.
fn assert_healthy_planned(f: &Fleet, m: &Measured) {
    assert!(m.run.stdout.contains("server local") && m.run.stdout.contains(&f.app("fine")), "{}", m.run.all());
}

#[test]
fn ids_and_names_from_a_server_never_reach_a_request_path() {
    let good = "a".repeat(64);
    let f = Fleet::new();
    let installation = installation(&f);
    let ids: Vec<Value> = vec![
        json!("../../images/victim-image?force=true"),
        json!("../../../../v1.41/volumes/precious"),
        json!("%2F..%2Fvolumes%2Fprecious"),
        json!(""),
        Value::Null,
        json!(good),
    ];
    let networks = ["../volumes/precious", "a%2Fb", "x?force=1", "", "gone-net"].map(String::from).to_vec();
    let (host, fake) = fake_host(Behaviour::Orphans { installation, ids, networks });
    f.manifest("servers.yaml", &host.server_yaml("bad"));
    let r = f.tomo(&["apply", "--prune", "--auto-approve"]);
    let lines = fake.lines();
    for l in &lines {
        for bad in ["..", "%2F", "precious", "victim", "/containers/?", "/containers//", "/networks/x", "/networks/?"] {
            assert!(!l.contains(bad), "sent `{l}` ({bad}):\n{lines:#?}\n{}", r.all());
        }
        assert!(!l.ends_with("/containers/ HTTP/1.1") && !l.ends_with("/networks/ HTTP/1.1"), "sent `{l}`");
    }
    // The valid orphans are removed: the path above was exercised.
    assert!(lines.iter().any(|l| l.starts_with("DELETE ") && l.contains(&good)), "{lines:#?}\n{}", r.all());
    // Networks are removed by id (the fake gives every network this one).
    let net = format!("/networks/{}", "b".repeat(64));
    assert!(lines.iter().any(|l| l.starts_with("DELETE ") && l.contains(&net)), "{lines:#?}");
    assert!(r.stderr.contains("invalid id") && r.stderr.contains(&host.addr), "{}", r.stderr);
    assert!(r.stderr.contains("invalid name"), "{}", r.stderr);
}

#[test]
fn an_endless_body_costs_bounded_memory_and_a_clear_error() {
    let (f, _host, _fake, m) = plan_against(Behaviour::Endless, "30s");
    assert!(m.peak_kb < MEMORY_BOUND_KB, "peak {} kB\n{}", m.peak_kb, m.run.all());
    assert!(m.secs < 30.0, "{:.1}s", m.secs);
    assert!(m.run.stdout.contains("exceeded the limit of 32 MiB"), "{}", m.run.all());
    assert!(!m.run.all().contains("cannot reach"), "{}", m.run.all());
    assert_healthy_planned(&f, &m);
}

#[test]
fn a_huge_list_is_refused_at_its_limit_with_bounded_memory() {
    let (f, _host, _fake, m) = plan_against(Behaviour::Huge(200_000), "30s");
    assert!(m.peak_kb < MEMORY_BOUND_KB, "peak {} kB\n{}", m.peak_kb, m.run.all());
    assert!(m.run.stdout.contains("exceeded the limit of 32 MiB"), "{}", m.run.all());
    assert_healthy_planned(&f, &m);
}

#[test]
fn a_silent_server_costs_its_deadline_only() {
    let (f, _host, _fake, m) = plan_against(Behaviour::Silent, "3s");
    assert!(m.secs < 4.0 + 0.5, "{:.1}s\n{}", m.secs, m.run.all());
    assert!(m.run.stdout.contains("no answer within the server timeout of 3s"), "{}", m.run.all());
    assert_healthy_planned(&f, &m);
}

#[test]
fn a_trickling_server_costs_its_deadline_only() {
    let (f, _host, _fake, m) = plan_against(Behaviour::Trickle, "3s");
    assert!(m.secs < 4.0 + 0.5, "{:.1}s\n{}", m.secs, m.run.all());
    assert!(m.run.stdout.contains("no answer within the server timeout of 3s"), "{}", m.run.all());
    assert_healthy_planned(&f, &m);
}

#[test]
fn a_malformed_answer_is_reported_as_such() {
    let (f, _host, _fake, m) = plan_against(Behaviour::Malformed, "30s");
    assert!(m.run.stdout.contains("answered with something that is not the expected JSON"), "{}", m.run.all());
    assert!(!m.run.all().contains("cannot reach"), "{}", m.run.all());
    assert!(m.secs < 5.0, "{:.1}s", m.secs);
    assert_healthy_planned(&f, &m);
}

#[test]
fn a_normal_fake_is_planned_like_an_engine() {
    let (f, _host, fake, m) = plan_against(Behaviour::Normal, "30s");
    assert_eq!(m.run.code, 0, "{}", m.run.all());
    assert!(
        fake.lines().iter().any(|l| l.starts_with("GET ") && l.contains("/containers/json")),
        "{:#?}",
        fake.lines()
    );
    assert_healthy_planned(&f, &m);
}

#[test]
fn endless_remote_command_output_is_cut_at_its_limit() {
    let (mut host, _fake) = fake_host(Behaviour::Normal);
    let config = host.dir.path().join("sshd_config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("ForceCommand cat /dev/zero\n");
    std::fs::write(&config, text).unwrap();
    host.stop_sshd();
    host.start_sshd();
    let f = Fleet::new();
    f.manifest("servers.yaml", &host.server_yaml("bad"));
    let m = measured(&f, &["server", "list"], Duration::from_secs(60));
    assert!(m.peak_kb < MEMORY_BOUND_KB, "peak {} kB\n{}", m.peak_kb, m.run.all());
    assert!(m.run.all().contains("wrote more than the limit of 8 MiB"), "{}", m.run.all());
}

#[test]
fn a_call_that_never_answers_during_apply_costs_its_timeout_only() {
    let (host, fake) = fake_host(Behaviour::SilentCreate);
    let mut f = Fleet::new();
    // Every call of the local server has this time too: room for a busy machine.
    f.tomo.set_env("SSH_TIMEOUT", "5s");
    f.manifest("servers.yaml", &host.server_yaml("bad"));
    let app = |name: &str, server: &str| {
        format!(
            "kind: App\nname: {{p}}-{name}\nserver: {server}\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\n"
        )
    };
    f.manifest("apps.yaml", &format!("{}---\n{}", app("fine", "local"), app("stuck", "bad")));
    let m = measured(&f, &["apply", "--auto-approve"], Duration::from_secs(60));
    assert!(
        fake.lines().iter().any(|l| l.starts_with("POST ") && l.contains("/containers/create")),
        "{:#?}",
        fake.lines()
    );
    assert_eq!(m.run.code, 1, "{}", m.run.all());
    assert!(m.run.all().contains("no answer within the server timeout of 5s"), "{}", m.run.all());
    assert!(m.secs < 5.0 + 5.0, "{:.1}s\n{}", m.secs, m.run.all());
    assert_eq!(f.inspect(&f.app("fine"), "{{.State.Status}}"), "running");
}

// ---- Echoed secrets and event floods during apply ----

use std::sync::Arc;

use crate::fakedocker::{ApplyFake, FloodState};
use crate::mcp_client::Stdio;

/// The vault secret the echoing server sends back.
const ECHOED: &str = "Echo-S3cret-Value-7d2c";

/// The forms of `v` a server may echo: as written, in base64 and hex, and
/// the part of it inside a longer base64 text at each alignment.
fn secret_forms(v: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
    let b = v.as_bytes();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let mut out = vec![v.to_string(), STANDARD.encode(b), URL_SAFE.encode(b), hex.to_uppercase(), hex];
    for offset in 0..3 {
        let mut buf = vec![b'x'; offset];
        buf.extend_from_slice(b);
        let enc = STANDARD_NO_PAD.encode(&buf);
        out.push(enc[(8 * offset).div_ceil(6)..(8 * (offset + b.len())) / 6].to_string());
    }
    out
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    for form in secret_forms(ECHOED) {
        assert!(!bytes.windows(form.len()).any(|w| w == form.as_bytes()), "{what} holds the secret as {form:?}");
    }
}

#[test]
fn a_secret_echoed_in_a_server_error_is_never_shown_logged_or_stored() {
    let (host, fake) = fake_host(Behaviour::Apply(ApplyFake::EchoCreate));
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master-password-for-tests");
    f.tomo.set_env("TOMO_SALT", "salt-for-the-echo-test");
    f.tomo.set_env("SSH_TIMEOUT", "10s");
    let set = f.tomo.run_with_stdin(&["secret", "set", "echo-token"], Some(ECHOED));
    assert_eq!(set.code, 0, "{}", set.all());
    f.manifest("servers.yaml", &host.server_yaml("bad"));
    f.manifest(
        "apps.yaml",
        "kind: App\nname: {p}-echo\nserver: bad\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\nenv: {TOKEN: {secret: echo-token}}\n",
    );
    let m = measured(&f, &["apply", "--auto-approve"], Duration::from_secs(60));
    // The server echoed the body of a create (retried: a 500 is transient).
    let creates = fake.lines().iter().filter(|l| l.starts_with("POST ") && l.contains("/containers/create")).count();
    assert!(creates > 1, "{:#?}", fake.lines());
    assert_eq!(m.run.code, 1, "{}", m.run.all());
    assert!(m.run.stdout.contains("create failed for") && m.run.stdout.contains("***"), "{}", m.run.all());
    assert!(m.run.stderr.contains("retrying"), "{}", m.run.stderr);
    assert_no_secret("stdout", m.run.stdout.as_bytes());
    assert_no_secret("stderr", m.run.stderr.as_bytes());
    for file in ["data/tomo.db", "data/tomo.db-wal"] {
        if let Ok(bytes) = std::fs::read(f.tomo.path().join(file)) {
            assert_no_secret(file, &bytes);
        }
    }
    // Nor in what an agent reads of the run.
    let mut agent = Stdio::start(&f.tomo, "operator");
    let history = agent.call("app_history", json!({"name": f.app("echo")}));
    assert!(!history.is_error, "{}", history.text);
    assert!(history.raw.contains("create failed for"), "{}", history.raw);
    assert_no_secret("app_history", history.raw.as_bytes());
}

/// A server whose `/events` floods while apply waits for a container's health.
fn flooded(healthy_after: Option<Duration>, health_timeout: &str) -> (Fleet, TestHost, FakeDocker, Arc<FloodState>) {
    let (behaviour, state) = ApplyFake::flood(healthy_after);
    let (host, fake) = fake_host(Behaviour::Apply(behaviour));
    let mut f = Fleet::new();
    f.tomo.set_env("SSH_TIMEOUT", "10s");
    f.manifest("servers.yaml", &host.server_yaml("bad"));
    f.manifest(
        "apps.yaml",
        &format!(
            "kind: Settings\nhealth_timeout: {health_timeout}\n---\nkind: App\nname: {{p}}-flood\nserver: bad\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\nhealthcheck: {}\n",
            crate::fleet::HEALTHY
        ),
    );
    (f, host, fake, state)
}

/// From the start of the flood to the end of tomo.
fn since_flood(state: &FloodState) -> Duration {
    state.began.lock().unwrap().expect("tomo subscribed to the events").elapsed()
}

#[test]
fn an_event_flood_cannot_stretch_the_health_timeout() {
    let (f, _host, _fake, state) = flooded(None, "2s");
    let m = measured(&f, &["apply", "--auto-approve"], Duration::from_secs(60));
    let waited = since_flood(&state);
    eprintln!("never healthy under an event flood: {:.2}s from the flood's start", waited.as_secs_f64());
    assert_eq!(m.run.code, 1, "{}", m.run.all());
    assert!(m.run.stdout.contains("did not become ready within 2s"), "{}", m.run.all());
    assert!(waited < Duration::from_secs(3), "{:.2}s\n{}", waited.as_secs_f64(), m.run.all());
    assert!(m.peak_kb < MEMORY_BOUND_KB, "peak {} kB", m.peak_kb);
}

#[test]
fn an_event_flood_does_not_stall_the_other_calls_to_its_server() {
    // Healthy soon after the flood began: seen only through calls made during it.
    let (f, _host, _fake, state) = flooded(Some(Duration::from_millis(300)), "20s");
    let m = measured(&f, &["apply", "--auto-approve"], Duration::from_secs(60));
    let waited = since_flood(&state);
    eprintln!("healthy under an event flood: {:.2}s from the flood's start", waited.as_secs_f64());
    assert_eq!(m.run.code, 0, "{}", m.run.all());
    assert!(waited < Duration::from_secs(3), "{:.2}s\n{}", waited.as_secs_f64(), m.run.all());
    assert!(m.peak_kb < MEMORY_BOUND_KB, "peak {} kB", m.peak_kb);
}

// ---------------------------------------------------------------------------
// Server text reaches a terminal only escaped and bounded: every text a
// server reports carries terminal escapes, forged lines, bidi controls and
// 100 KB; every human-output path is run and its bytes are checked.

/// What a hostile server puts in every text it reports.
fn hostile_text() -> String {
    format!(
        "\u{1b}]0;owned title\u{7}\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{9b}31m\u{202e}txt.exe\r\n  + forged plan line{}",
        "x".repeat(100_000)
    )
}

/// What in `out` could drive a terminal: a control or bidi character, a
/// line of 4 KB or more, a forged line standing on its own (not on the line
/// of the text it came with).
/// JSON output holds whole values, so its lines are not bounded.
fn terminal_problems(what: &str, out: &str, json: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, line) in out.split('\n').enumerate() {
        let start: String = line.chars().take(160).collect();
        if !json && line.len() >= 4096 {
            problems.push(format!("{what}: line {n} has {} bytes: {start:?}…", line.len()));
        }
        let bad = line.chars().find(|&c| {
            (c < ' ' && c != '\t')
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
        });
        if let Some(c) = bad {
            problems.push(format!("{what}: raw U+{:04X} in line {n}: {start:?}", c as u32));
        }
        if line.find("forged plan line").is_some_and(|at| !line[..at].contains("txt.exe")) {
            problems.push(format!("{what}: a forged line: {start:?}"));
        }
    }
    problems
}

/// A hostile server (`bad`) whose SSH commands answer `text` too.
fn hostile_fleet() -> (Fleet, TestHost, FakeDocker) {
    let mut f = Fleet::new();
    let text = hostile_text();
    let installation = installation(&f);
    let (victim, drift) = (f.app("victim"), f.app("drift"));
    let behaviour = Behaviour::Hostile { installation, victim, drift, text: text.clone() };
    let (mut host, fake) = fake_host(behaviour);
    // Every remote command (the probe of `server list`/`test`, routes, sudo)
    // prints the text (but its line feed) on each of its lines.
    let answer = host.dir.path().join("answer");
    let one = text.replace('\n', " ");
    std::fs::write(&answer, format!("{one}\n{one}\n{one}\n{one}\n")).unwrap();
    let script = host.dir.path().join("answer.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat '{}'\n", answer.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = host.dir.path().join("sshd_config");
    let mut sshd = std::fs::read_to_string(&config).unwrap();
    sshd.push_str(&format!("ForceCommand {}\n", script.display()));
    std::fs::write(&config, sshd).unwrap();
    host.stop_sshd();
    host.start_sshd();
    f.tomo.set_env("TOMO_LOG", "info");
    f.manifest("servers.yaml", &host.server_yaml("bad"));
    let app = |name: &str| {
        format!(
            "kind: App\nname: {{p}}-{name}\nserver: bad\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\n"
        )
    };
    f.manifest("apps.yaml", &format!("{}---\n{}---\n{}", app("victim"), app("drift"), app("new")));
    (f, host, fake)
}

#[test]
fn hostile_server_text_never_reaches_a_terminal_raw() {
    let (f, _host, _fake) = hostile_fleet();
    let runs: &[&[&str]] = &[
        &["plan"],
        &["plan", "--json"],
        &["graph"],
        &["status"],
        &["status", "--json"],
        &["server", "list"],
        &["server", "list", "--json"],
        &["server", "test", "bad"],
        &["apply", "--prune", "--auto-approve"],
    ];
    let mut problems = Vec::new();
    for args in runs {
        let r = f.tomo(args);
        let what = format!("tomo {}", args.join(" "));
        // The hostile text was shown (escaped), so the path was exercised
        // (the graph names only actions and manifests' names).
        assert!(
            args[0] == "graph" || r.all().contains("txt.exe"),
            "{what} showed nothing of the server's text:\n{}",
            r.all()
        );
        let json = args.contains(&"--json");
        if json {
            assert!(serde_json::from_str::<Value>(&r.stdout).is_ok(), "{what}: not JSON:\n{}", r.stdout);
        }
        problems.extend(terminal_problems(&format!("{what} (stdout)"), &r.stdout, json));
        problems.extend(terminal_problems(&format!("{what} (stderr)"), &r.stderr, false));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// `Settings.server_timeout`: each server's one deadline, declared with the
// fleet (it wins over `SSH_TIMEOUT`, which is the fallback).

fn settings_timeout(f: &Fleet, timeout: &str) {
    f.manifest("settings.yaml", &format!("kind: Settings\nserver_timeout: {timeout}\n"));
}

#[test]
fn a_declared_server_timeout_is_the_deadline_of_a_silent_server() {
    let (host, _fake) = fake_host(Behaviour::Silent);
    let mut f = Fleet::new();
    f.tomo.set_env("SSH_TIMEOUT", "30s");
    settings_timeout(&f, "2s");
    f.manifest("servers.yaml", &host.server_yaml("bad"));
    f.manifest(
        "apps.yaml",
        "kind: App\nname: {p}-fine\nserver: local\nimage: {image}\ninit: true\ncommand: [\"sleep\", \"600\"]\n",
    );
    let m = measured(&f, &["plan"], Duration::from_secs(60));
    assert!(m.secs < 2.0 + 1.5, "{:.1}s\n{}", m.secs, m.run.all());
    assert!(m.secs >= 2.0, "{:.1}s\n{}", m.secs, m.run.all());
    assert!(m.run.stdout.contains("no answer within the server timeout of 2s"), "{}", m.run.all());
    assert!(m.run.stdout.contains("(waited 2.0s)"), "{}", m.run.all());
    assert_healthy_planned(&f, &m);
}

#[test]
fn a_server_timeout_out_of_range_is_refused_at_its_field() {
    let f = Fleet::new();
    settings_timeout(&f, "0s");
    let r = f.tomo(&["validate"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("server timeout must be from 1s to 1h") && r.all().contains("settings.yaml"),
        "{}",
        r.all()
    );
}

/// A TCP port that accepts connections and never says a word (an SSH tarpit);
/// connections are held until the test ends.
fn tarpit() -> (u16, std::sync::mpsc::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while stopped.try_recv() == Err(std::sync::mpsc::TryRecvError::Empty) {
            if let Ok((conn, _)) = listener.accept() {
                held.push(conn);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (port, stop)
}

#[test]
fn a_stuck_ssh_handshake_costs_one_deadline() {
    let (port, _stop) = tarpit();
    let mut f = Fleet::new();
    f.tomo.set_env("SSH_TIMEOUT", "2s");
    f.manifest(
        "servers.yaml",
        &format!(
            "kind: Server\nname: pit\nhost: 127.0.0.1\nport: {port}\nuser: root\nauth: {{key_file: /nonexistent}}\nhost_key: \"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n"
        ),
    );
    for args in [&["plan"][..], &["server", "list"], &["server", "test", "pit"]] {
        let m = measured(&f, args, Duration::from_secs(60));
        assert!(m.secs < 2.0 + 1.5, "{args:?}: {:.1}s\n{}", m.secs, m.run.all());
        assert!(m.run.all().contains("2s"), "{args:?}: {}", m.run.all());
    }
}
