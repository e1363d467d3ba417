//! Progress, logging and cancellation of long MCP calls, with the official
//! Python SDK (`tests/mcp_notify.py`) over stdio and HTTP against the real
//! Docker Engine, and the bad inputs with the raw client.

use std::collections::BTreeMap;

use serde_json::json;

use crate::faults::services;
use crate::fleet::Fleet;
use crate::harness::repo;
use crate::mcp::{client_env, python};
use crate::mcp_client::Stdio;

/// Runs one scenario of `tests/mcp_notify.py`; its `key: value` lines.
fn scenario(
    py: &str,
    env: &[(&'static str, String)],
    args: &[&str],
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let out = std::process::Command::new(py)
        .arg(repo().join("tests/mcp_notify.py"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(extra.iter().copied())
        .output()
        .expect("run the Python MCP client");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?} failed:\n{text}");
    let mut lines = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = l.split_once(": ") {
            lines.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    lines.insert("all".into(), text);
    lines
}

fn number(out: &BTreeMap<String, String>, key: &str) -> usize {
    out.get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {key}:\n{}", out["all"]))
}

/// Every progress value grew, at least one per service, and the log
/// messages came from `tomo` at `info` and above.
fn assert_reported(out: &BTreeMap<String, String>, at_least: usize) {
    let all = &out["all"];
    assert!(number(out, "progress_count") >= at_least, "{all}");
    assert_eq!(out["progress_increasing"], "True", "{all}");
    assert!(
        out["progress"].contains("create")
            || out["progress"].contains("recreate")
            || out["progress"].contains("started"),
        "{all}"
    );
    assert!(number(out, "log_count") >= at_least, "{all}");
    assert_eq!(out["log_loggers"], "['tomo']", "{all}");
    assert!(!out["log_levels"].contains("debug"), "{all}");
}

#[test]
fn an_apply_of_20_services_reports_progress_in_order_and_logs_over_stdio_and_http() {
    let Some(py) = python() else { return };
    let mut f = Fleet::new();
    services(&f, 20, "1");
    let (_server, env) = client_env(&mut f);
    let out = scenario(&py, &env, &["apply", "stdio"], &[]);
    assert_reported(&out, 20);
    let n = number(&out, "actions");
    assert_eq!(out["progress_last"], format!("{n}.0 of {n}.0"), "the last progress is every action: {}", out["all"]);
    for (i, transport) in ["http-legacy", "http-auto"].iter().enumerate() {
        services(&f, 20, &format!("{}", i + 2));
        let out = scenario(&py, &env, &["apply", transport], &[]);
        assert_reported(&out, 20);
    }
    f.assert_converged();
}

/// The containers are exactly the 20 services, each running (an old one or
/// its replacement, never a leftover of a recreate), and the last run was
/// recorded `cancelled`.
fn assert_consistent_after_cancel(f: &Fleet, runs_before: usize) {
    let mut want: Vec<String> = (0..20).map(|i| format!("{}-s{i}", f.app("many"))).collect();
    want.sort();
    assert_eq!(f.containers(), want);
    for n in &want {
        assert_eq!(f.inspect(n, "{{.State.Status}}"), "running", "{n}");
    }
    let store = tomo::store::Store::open(&f.tomo.path().join("data/tomo.db")).unwrap();
    let runs = store.runs(100).unwrap();
    assert_eq!(runs.len(), runs_before + 1, "{runs:?}");
    assert_eq!(runs[0].status, tomo::store::RunStatus::Cancelled, "{runs:?}");
    let summary = runs[0].summary.clone().unwrap_or_default();
    assert_eq!(summary["cancelled"], json!(true), "{summary}");
    assert!(summary["skipped"].as_u64().unwrap_or(0) > 0, "{summary}");
    // Not converged yet; one more apply converges.
    let plan = f.tomo(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "the cancel left work to do:\n{}", plan.all());
    f.apply();
    f.assert_converged();
}

#[test]
fn a_cancelled_apply_finishes_what_runs_starts_nothing_more_and_is_recorded_cancelled() {
    let Some(py) = python() else { return };
    let mut f = Fleet::new();
    f.manifest("settings.yaml", "kind: Settings\nparallelism: 1\n");
    services(&f, 20, "1");
    f.apply();
    let (_server, env) = client_env(&mut f);
    for (i, transport) in ["stdio", "http-legacy", "http-auto"].iter().enumerate() {
        services(&f, 20, &format!("{}", i + 2));
        let before = tomo::store::Store::open(&f.tomo.path().join("data/tomo.db")).unwrap().runs(100).unwrap().len();
        let out = scenario(&py, &env, &["cancel", transport], &[("CANCEL_AT", "3")]);
        let all = &out["all"];
        assert_eq!(out["alive"], "True", "{all}");
        assert!(all.contains("after_cancel: the run has ended"), "{all}");
        assert!(!all.contains("the call ended before it was cancelled"), "{all}");
        assert_eq!(out["progress_increasing"], "True", "{all}");
        // The call's result is not sent once cancelled (the specification):
        // a log message says what ran. On 2026-07-28 the cancel is the
        // closing of the call's own stream, which no message can follow.
        if *transport != "http-auto" {
            assert!(out["cancel_logged"].contains("not started (run "), "{all}");
        }
        eprintln!("{transport}: {} ({})", out["cancelled_at"], out["cancel_logged"]);
        assert_consistent_after_cancel(&f, before);
    }
}

#[test]
fn bad_progress_tokens_levels_and_cancels_get_errors_or_nothing_and_the_server_lives_on() {
    let f = Fleet::new();
    services(&f, 1, "1");
    let mut c = Stdio::start(&f.tomo, "viewer");
    for token in [json!({"x": 1}), json!(1.5), json!(true), json!(null)] {
        let r =
            c.request("tools/call", json!({"name": "validate", "arguments": {}, "_meta": {"progressToken": token}}));
        assert_eq!(r["error"]["code"], json!(-32602), "{token}: {r}");
        assert!(r["error"]["message"].as_str().unwrap_or_default().contains("progressToken"), "{r}");
    }
    // A cancel for a request that does not exist (or already ended) is ignored.
    c.notify("notifications/cancelled", json!({"requestId": 4242, "reason": "nothing"}));
    c.notify("notifications/cancelled", json!({"requestId": "no-such", "reason": "nothing"}));
    let r = c.request("logging/setLevel", json!({"level": "loud"}));
    assert!(r["error"]["code"].is_i64(), "{r}");
    let r = c.request("logging/setLevel", json!({"level": "debug"}));
    assert_eq!(r["result"], json!({}), "{r}");
    // A string or integer token is fine, and the server answered all along.
    for token in [json!("t-1"), json!(7)] {
        let called = c.call("validate", json!({}));
        assert!(!called.is_error, "{}", called.text);
        let r =
            c.request("tools/call", json!({"name": "validate", "arguments": {}, "_meta": {"progressToken": token}}));
        assert!(r["result"]["structuredContent"]["valid"] == json!(true), "{r}");
    }
}

#[test]
fn the_logging_capability_is_advertised() {
    let f = Fleet::new();
    services(&f, 1, "1");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = f.tomo.run_with_stdin(&["serve", "--stdio", "--role", "viewer"], Some(&format!("{init}\n")));
    let answer: serde_json::Value =
        serde_json::from_str(r.stdout.lines().next().unwrap_or_default()).unwrap_or_default();
    assert!(answer["result"]["capabilities"]["logging"].is_object(), "{}", r.all());
}

/// The cost of notifications: an apply of 50 services (every one
/// recreated) over stdio with a progress token and logs at `info`, against
/// the same apply with neither, alternating, medians of `ROUNDS` each.
/// `cargo test --test integration -- --ignored mcp_notify::bench --nocapture`
#[test]
#[ignore = "a benchmark: several minutes of Docker work"]
fn bench_notifications_on_an_apply_of_50_services() {
    const ROUNDS: usize = 5;
    let Some(py) = python() else { return };
    let mut f = Fleet::new();
    services(&f, 50, "0");
    f.apply();
    let (_server, env) = client_env(&mut f);
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..ROUNDS * 2 {
        let token = if round % 2 == 0 { "1" } else { "0" };
        services(&f, 50, &format!("{}", round + 1));
        let out = scenario(&py, &env, &["bench", "stdio"], &[("BENCH_TOKEN", token)]);
        let secs: f64 = out["elapsed_s"].parse().unwrap();
        if token == "1" {
            assert!(number(&out, "progress_count") >= 50 && number(&out, "log_count") >= 100, "{}", out["all"]);
        } else {
            assert_eq!((number(&out, "progress_count"), number(&out, "log_count")), (0, 0), "{}", out["all"]);
        }
        times.entry(if token == "1" { "with" } else { "without" }).or_default().push(secs);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let with = median(times.get_mut("with").unwrap());
    let without = median(times.get_mut("without").unwrap());
    let overhead = (with - without) / without * 100.0;
    eprintln!(
        "apply of 50 services over stdio, medians of {ROUNDS}: without notifications {without:.3} s, with progress and info logs {with:.3} s ({overhead:+.1}%)"
    );
    eprintln!("all: {times:?}");
    assert!(overhead <= 5.0, "notifications added {overhead:.1}%");
}

/// A transient Docker failure retried during an MCP apply is a `warning`
/// log message of that call (the session's default level); the actions'
/// own `info` messages are not sent at that level.
#[test]
fn a_retry_during_an_apply_is_a_warning_of_the_call() {
    let mut f = Fleet::new();
    services(&f, 2, "1");
    f.tomo.set_env("TOMO_FAULT_DOCKER", "create:1");
    let mut c = Stdio::start(&f.tomo, "operator");
    let fingerprint = c.ok("plan", json!({}))["fingerprint"].clone();
    let (r, notes) = c.request_noting(
        "tools/call",
        json!({"name": "apply", "arguments": {"fingerprint": fingerprint}, "_meta": {"progressToken": "p"}}),
    );
    assert_eq!(r["result"]["structuredContent"]["succeeded"], json!(true), "{r}");
    let logs: Vec<&serde_json::Value> = notes.iter().filter(|n| n["method"] == "notifications/message").collect();
    let retry = logs.iter().find(|n| n["params"]["data"]["message"].as_str().is_some_and(|m| m.contains("retrying")));
    let retry = retry.unwrap_or_else(|| panic!("no retry warning: {notes:?}"));
    assert_eq!(retry["params"]["level"], "warning", "{retry}");
    assert_eq!(retry["params"]["logger"], "tomo", "{retry}");
    assert!(logs.iter().all(|n| n["params"]["level"] != "info"), "{logs:?}");
    let progress: Vec<f64> = notes
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .filter_map(|n| n["params"]["progress"].as_f64())
        .collect();
    assert!(progress.windows(2).all(|w| w[1] > w[0]) && progress.len() >= 3, "{progress:?}");
}
