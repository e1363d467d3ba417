//! Completions, resources and resource subscriptions of the MCP server: the
//! Python SDK over stdio and both HTTP protocol generations (names completed
//! by prefix, `tomo://apps/NAME` notified within a second of a manifest edit
//! and of a container stopped by hand, bad input refused), and what 100
//! subscribed sessions cost in memory.

use serde_json::json;

use crate::fleet::Fleet;
use crate::harness::repo;
use crate::mcp::{add_user, client, token, web, with_key};
use crate::mcp_client::HttpServer;

#[test]
#[ignore = "timing (1 s) and memory (10 MB) figures: run on a quiet machine, after the parallel suite, by tests/run.sh"]
fn the_python_sdk_completes_reads_and_hears_of_changes() {
    let Some(py) = client("TOMO_TEST_PYTHON", "the Python MCP SDK test") else { return };
    let mut f = Fleet::new();
    for app in ["web", "webmail", "db"] {
        web(&f, app, "1");
    }
    let r = f.tomo(&["apply", "--auto-approve", "--app", &format!("{}-web", f.prefix)]);
    assert_eq!(r.code, 0, "{}", r.all());
    with_key(&mut f);
    f.tomo.set_env("MCP_DRIFT_INTERVAL", "200ms");
    add_user(&f, "ann", "operator");
    let token = token(&f, "ann");
    let server = HttpServer::start(&f.tomo);
    let out = std::process::Command::new(py)
        .arg(repo().join("tests/mcp_resources.py"))
        .envs([
            ("TOMO_BIN", env!("CARGO_BIN_EXE_tomo").to_string()),
            ("TOMO_DIR", f.tomo.path().display().to_string()),
            ("TOMO_URL", format!("http://{}/mcp", server.addr)),
            ("TOMO_TOKEN", token),
            ("TOMO_PREFIX", f.prefix.clone()),
        ])
        .output()
        .expect("run the Python MCP client");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}\nserver log:\n{}", server.log.lock().unwrap());
    assert!(text.contains("all checks passed"), "{text}");
    eprintln!("{text}");
    for needle in [
        "stdio: app names by prefix",
        "http 2025-11-25: subscribe to a resource that does not exist: error -32002",
        "after `docker stop` by hand",
        "http 2026-07-28: list_changed",
        "after it was rejected",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

#[test]
#[ignore = "timing (1 s) and memory (10 MB) figures: run on a quiet machine, after the parallel suite, by tests/run.sh"]
fn a_hundred_subscribed_sessions_cost_under_ten_megabytes() {
    let mut f = Fleet::new();
    web(&f, "a", "1");
    with_key(&mut f);
    let tokens: Vec<String> = (0..7)
        .map(|i| {
            let user = format!("user{i}");
            add_user(&f, &user, "operator");
            token(&f, &user)
        })
        .collect();
    let server = HttpServer::start(&f.tomo);
    let uris = [json!({"uri": "tomo://manifests/apps/a.yaml"}), json!({"uri": format!("tomo://apps/{}-a", f.prefix)})];
    let subscribe = |n: usize, streams: &mut Vec<std::net::TcpStream>| {
        let mut s = server.session(&tokens[n / 15]).expect("a session");
        for u in &uris {
            let r = s.rpc("resources/subscribe", u.clone());
            assert!(r["result"].is_object(), "{r}");
        }
        streams.push(s.open_stream(Some(&format!("127.0.0.{}", 2 + n / 50))));
    };
    // The first subscriber starts what every later one shares (the monitor, the folder watch).
    let mut streams = Vec::new();
    subscribe(0, &mut streams);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = server.rss_kib();
    for n in 1..=100 {
        subscribe(n, &mut streams);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after = server.rss_kib();
    let cost = after.saturating_sub(before);
    eprintln!("100 subscribed sessions (each with its GET stream open): {cost} KiB ({before} → {after} KiB resident)");
    assert!(cost < 10 * 1024, "100 subscribed sessions cost {cost} KiB");
    // Every session is still served.
    let mut last = server.session(&tokens[6]).expect("one more session");
    let r = last.rpc("resources/read", json!({"uri": "tomo://status"}));
    assert!(r["result"]["contents"][0]["text"].as_str().is_some_and(|t| t.contains("containers")), "{r}");
}

/// The server's own origin (an accepted Host with the port it listens on)
/// needs no `ALLOWED_ORIGINS`; every other origin is still refused.
#[test]
fn the_servers_own_origin_needs_no_configuration() {
    let mut f = Fleet::new();
    web(&f, "a", "1");
    with_key(&mut f);
    let server = HttpServer::start(&f.tomo);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).to_string();
    add_user(&f, "ann", "operator");
    let auth = format!("Bearer {}", token(&f, "ann"));
    let post = |host: &str, origin: &str| {
        let headers = [
            ("Host", host),
            ("Origin", origin),
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        server.request("POST", "/mcp", &headers, &init).0
    };
    for own in ["localhost", "127.0.0.1"] {
        let host = format!("{own}:{port}");
        assert_eq!(post(&host, &format!("http://{host}")), 200, "{host}");
    }
    let local = format!("localhost:{port}");
    assert_eq!(post(&local, "http://localhost:1"), 403, "another port is another origin");
    assert_eq!(post(&local, "http://evil.example.com"), 403);
    assert_eq!(post(&format!("evil.example.com:{port}"), &format!("http://evil.example.com:{port}")), 403);
}
