//! `tomo serve --http` under attack: concurrent guesses, crowds of logins,
//! oversized fields and bodies, idle sockets, heavy tool calls, foreign Host
//! headers and other users' sessions. Every loop is bounded and talks to
//! 127.0.0.0/8 only; other clients are other loopback source addresses.
//! Timings are printed as figures (`figure:` lines), never asserted tightly:
//! the machine is shared and loaded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fleet::{Fleet, IMAGE};
use crate::mcp::{JWT_KEY, add_user, token, with_key};
use crate::mcp_client::{HttpServer, connect_from, parse_response, request_text};

const PASSWORD: &str = "correct horse battery";
/// Failed logins of one user from one address before that pair is locked.
const LOCK_AFTER: usize = tomo::engine::LOCK_AFTER as usize;

fn login_body(user: &str, password: &str) -> String {
    json!({"username": user, "password": password}).to_string()
}

fn login_request(addr: &str, user: &str, password: &str) -> String {
    request_text(addr, "POST", "/auth/login", &[("Content-Type", "application/json")], &login_body(user, password))
}

fn login_from(server: &HttpServer, src: &str, user: &str, password: &str) -> u16 {
    let body = login_body(user, password);
    server.request_from(src, "POST", "/auth/login", &[("Content-Type", "application/json")], &body).0
}

/// Opens one connection per request (from its source address), writes every
/// request, and only then reads the answers: all are in flight at once.
fn at_once(addr: &str, requests: &[(String, String)]) -> Vec<u16> {
    let mut socks: Vec<Option<TcpStream>> = requests
        .iter()
        .map(|(src, text)| {
            let mut s = connect_from(Some(src), addr).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(180))).unwrap();
            let _ = s.write_all(text.as_bytes());
            Some(s)
        })
        .collect();
    socks
        .iter_mut()
        .map(|s| {
            let Some(s) = s else { return 0 };
            let mut raw = Vec::new();
            let _ = s.read_to_end(&mut raw);
            parse_response(&String::from_utf8_lossy(&raw)).0
        })
        .collect()
}

fn tally(codes: &[u16]) -> std::collections::BTreeMap<u16, usize> {
    let mut t = std::collections::BTreeMap::new();
    for c in codes {
        *t.entry(*c).or_insert(0) += 1;
    }
    t
}

fn serve_with(f: &mut Fleet, users: &[(&str, &str)]) -> HttpServer {
    with_key(f);
    for (name, role) in users {
        add_user(f, name, role);
    }
    HttpServer::start(&f.tomo)
}

/// The bytes of the store (database and write-ahead log).
fn store_bytes(f: &Fleet) -> u64 {
    ["tomo.db", "tomo.db-wal"]
        .iter()
        .filter_map(|n| std::fs::metadata(f.tomo.path().join("data").join(n)).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn concurrent_guesses_are_counted_before_any_is_evaluated() {
    let mut f = Fleet::new();
    let server = serve_with(&mut f, &[("bob", "operator")]);
    let n = 60;
    let mut requests: Vec<(String, String)> =
        (0..n).map(|i| ("127.0.0.1".to_string(), login_request(&server.addr, "bob", &format!("guess {i}")))).collect();
    requests.push(("127.0.0.1".into(), login_request(&server.addr, "bob", PASSWORD)));
    let codes = at_once(&server.addr, &requests);
    let wrong_evaluated = codes[..n].iter().filter(|c| **c == 401).count();
    let right = codes[n];
    eprintln!(
        "figure: {} of {} concurrent guesses evaluated (answers {:?})",
        wrong_evaluated + usize::from(right == 200 || right == 401),
        n + 1,
        tally(&codes)
    );
    assert!(codes.iter().all(|c| [401, 429, 503, 200].contains(c)), "{:?}", tally(&codes));
    assert!(wrong_evaluated <= LOCK_AFTER, "{wrong_evaluated} wrong guesses were evaluated: {:?}", tally(&codes));
    if right == 200 {
        assert!(wrong_evaluated < LOCK_AFTER, "the right password passed after {wrong_evaluated} wrong ones");
    }
    // Whatever got through at once, the pair is locked after LOCK_AFTER failures in all.
    let mut failures = wrong_evaluated;
    let mut answers = Vec::new();
    while failures < LOCK_AFTER && answers.len() < 3 * LOCK_AFTER {
        let code = login_from(&server, "127.0.0.1", "bob", "one more guess");
        failures += usize::from(code == 401);
        answers.push(code);
    }
    assert_eq!(login_from(&server, "127.0.0.1", "bob", PASSWORD), 429, "{answers:?}");
}

#[test]
fn a_crowd_of_wrong_logins_keeps_the_server_small() {
    let mut f = Fleet::new();
    let server = serve_with(&mut f, &[("bob", "operator")]);
    let before = server.rss_kib();
    // 500 at once, two per address from 250 addresses, half for a known user.
    let requests: Vec<(String, String)> = (0..500)
        .map(|i| {
            let user = if i % 2 == 0 { "bob".to_string() } else { format!("nobody{i}") };
            (format!("127.0.1.{}", 1 + i / 2), login_request(&server.addr, &user, "wrong password"))
        })
        .collect();
    let started = Instant::now();
    let codes = at_once(&server.addr, &requests);
    let took = started.elapsed();
    let after = server.rss_kib();
    eprintln!(
        "figure: RSS {} MiB before, {} MiB after 500 concurrent wrong logins (answered in {:.1} s: {:?})",
        before / 1024,
        after / 1024,
        took.as_secs_f64(),
        tally(&codes)
    );
    assert!(codes.iter().all(|c| [401, 429, 503].contains(c)), "{:?}", tally(&codes));
    assert!(after < 150 * 1024, "the server grew to {} MiB", after / 1024);
    let (status, _, _) = server.request("GET", "/healthz", &[], "");
    assert_eq!(status, 200);
}

#[test]
fn fields_from_unauthenticated_requests_and_own_settings_are_bounded() {
    let mut f = Fleet::new();
    let server = serve_with(&mut f, &[("ann", "operator")]);
    let before = store_bytes(&f);
    // Huge user names: refused before anything is read into the store.
    let huge = "u".repeat(1_900_000);
    for _ in 0..20 {
        let code = login_from(&server, "127.0.0.2", &huge, "x");
        assert!([413, 400, 401, 429].contains(&code), "{code}");
    }
    // A long name that fits in the body is answered, but never stored whole.
    let long = "l".repeat(4000);
    let code = login_from(&server, "127.0.0.3", &long, "wrong password");
    assert_eq!(code, 401);
    let grown = store_bytes(&f).saturating_sub(before);
    eprintln!("figure: the store grew {grown} bytes after 20 logins with 1.9 MB user names");
    assert!(grown < 512 * 1024, "the store grew {grown} bytes");
    let db = std::fs::read(f.tomo.path().join("data/tomo.db")).unwrap();
    let wal = std::fs::read(f.tomo.path().join("data/tomo.db-wal")).unwrap_or_default();
    let needle = "l".repeat(200);
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "a long user name was stored");
    }
    // One's own settings: a body over the limit is refused at the door...
    let ann = token(&f, "ann");
    let mut s = server.session(&ann).unwrap();
    let big = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "settings_update", "arguments": {"user": {"theme": "x".repeat(3_000_000)}}}});
    let headers = [
        ("Authorization", format!("Bearer {ann}")),
        ("Content-Type", "application/json".into()),
        ("Accept", "application/json, text/event-stream".into()),
        ("MCP-Protocol-Version", "2025-11-25".into()),
        ("Mcp-Session-Id", s.sid.clone()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let before = store_bytes(&f);
    for _ in 0..10 {
        let (status, _, body) = server.request("POST", "/mcp", &headers, &big.to_string());
        assert_eq!(status, 413, "{}", &body[..body.len().min(300)]);
    }
    // ...and a value that fits in a request but not in the store is a tool error.
    let r = s.call("settings_update", json!({"user": {"theme": "x".repeat(100_000)}}));
    assert!(r.is_error && r.text.contains("theme"), "{}", &r.text[..r.text.len().min(300)]);
    let r = s.call("settings_update", json!({"user": {"k".repeat(200): 1}}));
    assert!(r.is_error, "{}", &r.text[..r.text.len().min(300)]);
    let r = s.call("settings_update", json!({"user": {"theme": "dark"}}));
    assert!(!r.is_error, "{}", r.text);
    let grown = store_bytes(&f).saturating_sub(before);
    assert!(grown < 512 * 1024, "the store grew {grown} bytes");
}

/// Waits (bounded) until the server's log holds `needle`.
fn log_shows(server: &HttpServer, needle: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if server.log.lock().unwrap().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn unknown_users_are_verified_against_a_dummy_hash() {
    let mut f = Fleet::new();
    with_key(&mut f);
    f.tomo.set_env("TOMO_LOG", "info,tomo::login=debug");
    add_user(&f, "bob", "operator");
    let server = HttpServer::start(&f.tomo);
    assert_eq!(login_from(&server, "127.0.2.1", "nobody", "wrong password"), 401);
    assert!(
        log_shows(&server, "\"known\":false"),
        "no password verification for an unknown user:\n{}",
        server.log.lock().unwrap()
    );
    assert_eq!(login_from(&server, "127.0.2.2", "bob", "wrong password"), 401);
    assert!(log_shows(&server, "\"known\":true"), "{}", server.log.lock().unwrap());
    // Figures only: each from a fresh address, so every answer has the same slowdown.
    let time = |user: &str, i: usize| {
        let t = Instant::now();
        assert_eq!(login_from(&server, &format!("127.0.3.{i}"), user, "wrong password"), 401);
        t.elapsed()
    };
    let (mut unknown, mut known) = (Vec::new(), Vec::new());
    for i in 0..8 {
        unknown.push(time("nobody", 1 + 2 * i));
        known.push(time("bob", 2 + 2 * i));
    }
    eprintln!(
        "figure: wrong login median {:?} for an unknown user, {:?} for a known one",
        median(unknown),
        median(known)
    );
}

#[test]
fn a_lock_holds_one_user_at_one_address_and_one_address_across_users() {
    let mut f = Fleet::new();
    let server = serve_with(&mut f, &[("bob", "operator"), ("ann", "operator"), ("val", "viewer")]);
    for _ in 0..LOCK_AFTER {
        assert_eq!(login_from(&server, "127.0.0.2", "bob", "wrong password"), 401);
    }
    assert_eq!(login_from(&server, "127.0.0.2", "bob", PASSWORD), 429, "locked at that address");
    assert_eq!(login_from(&server, "127.0.0.1", "bob", PASSWORD), 200, "bob is not locked out everywhere");
    // One address guessing across users is locked as a whole.
    for i in 0..tomo::engine::ADDRESS_LOCK_AFTER {
        let code = login_from(&server, "127.0.0.3", &format!("user{i}"), "wrong password");
        assert_eq!(code, 401, "guess {i}");
    }
    assert_eq!(login_from(&server, "127.0.0.3", "ann", PASSWORD), 429, "the guessing address is locked");
    assert_eq!(login_from(&server, "127.0.0.1", "ann", PASSWORD), 200);
    // The auth_login tool counts by the caller's address too, not one key for every client.
    let viewer = token(&f, "val");
    let mut guesser = server.session(&viewer).unwrap();
    guesser.src = Some("127.0.0.4".into());
    for _ in 0..LOCK_AFTER {
        let r = guesser.call("auth_login", json!({"username": "ann", "password": "wrong password"}));
        assert!(r.is_error && r.text.contains("wrong user name or password"), "{}", r.text);
    }
    let r = guesser.call("auth_login", json!({"username": "ann", "password": PASSWORD}));
    assert!(r.is_error && r.text.contains("too many failed logins"), "{}", r.text);
    let mut other = server.session(&viewer).unwrap();
    other.src = Some("127.0.0.5".into());
    let r = other.call("auth_login", json!({"username": "ann", "password": PASSWORD}));
    assert!(!r.is_error, "another MCP client is not locked out: {}", r.text);
}

#[test]
fn idle_connections_are_capped_per_address_and_closed_after_a_header_timeout() {
    let mut f = Fleet::new();
    let server = serve_with(&mut f, &[]);
    let n = 300;
    let mut idle: Vec<TcpStream> = (0..n).map(|_| connect_from(Some("127.0.0.3"), &server.addr).unwrap()).collect();
    // Another client is served at once.
    let t = Instant::now();
    let (status, _, _) = server.request("GET", "/healthz", &[], "");
    eprintln!("figure: /healthz answered in {:?} beside {n} idle connections", t.elapsed());
    assert_eq!(status, 200);
    // The connections over the per-address cap were closed: the last one at once.
    let last = idle.last_mut().unwrap();
    last.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    let r = last.read(&mut buf);
    assert!(
        matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "a connection over the per-address cap is still open: {r:?}"
    );
    let open = idle.iter().filter(|s| !is_closed(s)).count();
    eprintln!("figure: {open} of {n} idle connections from one address kept open");
    assert!(open <= tomo::mcp::MAX_PER_ADDRESS, "{open} idle connections from one address are open");
    assert!(open > 0);
    // A kept one that never sends its headers (or sends half) is closed after the header timeout.
    let kept = idle.iter_mut().find(|s| !is_closed(s)).unwrap();
    let _ = kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    kept.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let t = Instant::now();
    let r = kept.read(&mut buf);
    eprintln!("figure: a half-sent request was closed after {:?}", t.elapsed());
    assert!(matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset), "{r:?}");
}

#[test]
fn a_body_trickled_byte_by_byte_is_cut_off_after_the_body_timeout() {
    let mut f = Fleet::new();
    let server = serve_with(&mut f, &[]);
    let mut s = connect_from(Some("127.0.0.4"), &server.addr).unwrap();
    let body = login_body("ann", "a password that is never finished");
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let t = Instant::now();
    let limit = tomo::mcp::BODY_TIMEOUT + Duration::from_secs(5);
    let mut answer = Vec::new();
    // One byte a second, never the whole body; bounded by `limit`.
    for b in body.bytes() {
        if t.elapsed() > limit || s.write_all(&[b]).is_err() {
            break;
        }
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                std::thread::sleep(Duration::from_millis(500))
            }
            Err(_) => break,
        }
    }
    let waited = t.elapsed();
    eprintln!("figure: a trickled body was cut off after {waited:?}: {:?}", String::from_utf8_lossy(&answer));
    assert!(waited >= tomo::mcp::BODY_TIMEOUT - Duration::from_secs(1), "cut off before the body timeout: {waited:?}");
    assert!(waited < limit, "a trickled body held its connection for {waited:?}");
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"), "{}", String::from_utf8_lossy(&answer));
}

/// Whether the peer closed `s` (EOF or reset), without waiting.
fn is_closed(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let closed = match s.peek(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Labels per `app_deploy` in the CPU test: the largest deploy accepted (its
/// manifest, about 985 KB, is just under the 1 MiB limit of a manifest file).
const LABELS: usize = 40_000;

#[test]
fn healthz_stays_fast_during_heavy_app_deploys() {
    let mut f = Fleet::new();
    std::fs::create_dir_all(f.tomo.path().join("state")).unwrap();
    let server = serve_with(&mut f, &[("ann", "operator")]);
    let ann = token(&f, "ann");
    let labels: serde_json::Map<String, Value> =
        (0..LABELS).map(|i| (format!("label{i}"), Value::String(format!("value{i}")))).collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut latencies = Vec::new();
    std::thread::scope(|scope| {
        for i in 0..3 {
            let (server, ann, labels, done, app) = (&server, &ann, &labels, &done, f.app(&format!("big{i}")));
            scope.spawn(move || {
                let mut s = server.session(ann).unwrap();
                let r = s.call("app_deploy", json!({"name": app, "image": IMAGE, "labels": labels}));
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                assert!(!r.is_error, "{}", &r.text[..r.text.len().min(500)]);
            });
        }
        let until = Instant::now() + Duration::from_secs(600);
        while done.load(std::sync::atomic::Ordering::SeqCst) < 3 && Instant::now() < until {
            let t = Instant::now();
            let (status, _, _) = server.request("GET", "/healthz", &[], "");
            assert_eq!(status, 200);
            latencies.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    eprintln!(
        "figure: /healthz p99 {p99:?} (max {:?}, {} samples) during 3 concurrent app_deploy calls of {LABELS} labels",
        latencies.last().unwrap(),
        latencies.len()
    );
    let max = *latencies.last().unwrap();
    assert!(p99 < Duration::from_millis(500) && max < Duration::from_secs(3), "/healthz p99 {p99:?}, max {max:?}");
}

/// A signed token with the given claims (HS256 with the test key).
fn sign_json(claims: &Value) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use hmac::{KeyInit, Mac};
    let input = format!("{}.{}", B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#), B64.encode(claims.to_string()));
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(JWT_KEY.as_bytes()).unwrap();
    m.update(input.as_bytes());
    format!("{input}.{}", B64.encode(m.finalize().into_bytes()))
}

fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn mcp_init(server: &HttpServer, auth: &str) -> (u16, String) {
    mcp_init_from(server, "127.0.0.1", auth)
}

#[test]
fn auth_routes_check_the_host_sessions_belong_to_their_user_and_tokens_are_checked_in_time() {
    let mut f = Fleet::new();
    std::fs::create_dir_all(f.tomo.path().join("state")).unwrap();
    let server = serve_with(&mut f, &[("ann", "operator"), ("val", "viewer")]);
    let evil = [("Host", "evil.example"), ("Content-Type", "application/json")];
    let (status, _, body) = server.request("POST", "/auth/login", &evil, &login_body("ann", PASSWORD));
    assert_eq!(status, 403, "login with a foreign Host: {body}");
    let ann = token(&f, "ann");
    let bearer = format!("Bearer {ann}");
    let (status, _, _) =
        server.request("POST", "/auth/logout", &[("Host", "evil.example"), ("Authorization", &bearer)], "");
    assert_eq!(status, 403, "logout with a foreign Host");
    // The scheme is case-insensitive (RFC 7235).
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, body) = mcp_init(&server, &format!("{scheme} {ann}"));
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    // A viewer cannot end (or use) another user's session.
    let mut s = server.session(&ann).unwrap();
    let val = token(&f, "val");
    let val_auth = format!("Bearer {val}");
    let foreign = [("Authorization", val_auth.as_str()), ("Mcp-Session-Id", s.sid.as_str())];
    let (status, _, _) = server.request("DELETE", "/mcp", &foreign, "");
    assert_eq!(status, 404, "a viewer ended ann's session");
    let list = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"app_list","arguments":{}}}"#;
    let mut h = foreign.to_vec();
    h.extend([("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]);
    h.push(("MCP-Protocol-Version", "2025-11-25"));
    let (status, _, _) = server.request("POST", "/mcp", &h, list);
    assert_eq!(status, 404, "a viewer used ann's session");
    let r = s.call("app_list", json!({}));
    assert!(!r.is_error, "{}", r.text);
    let own = [("Authorization", bearer.as_str()), ("Mcp-Session-Id", s.sid.as_str())];
    let (status, _, _) = server.request("DELETE", "/mcp", &own, "");
    assert!(status == 200 || status == 202 || status == 204, "{status}");
    // Tokens issued or valid only in the future are refused.
    let mut claims = claims_of(&ann);
    let now = tomo::auth::now_unix();
    claims["iat"] = json!(now + 3600);
    let (status, body) = mcp_init(&server, &format!("Bearer {}", sign_json(&claims)));
    assert_eq!(status, 401, "iat in the future: {body}");
    let mut claims = claims_of(&ann);
    claims["nbf"] = json!(now + 3600);
    let (status, body) = mcp_init(&server, &format!("Bearer {}", sign_json(&claims)));
    assert_eq!(status, 401, "nbf in the future: {body}");
    let mut claims = claims_of(&ann);
    claims["nbf"] = json!(now - 10);
    let (status, body) = mcp_init(&server, &format!("Bearer {}", sign_json(&claims)));
    assert_eq!(status, 200, "nbf in the past: {body}");
}

#[test]
fn refused_tokens_are_audited_at_most_once_a_minute_per_address_and_reason() {
    let mut f = Fleet::new();
    let server = serve_with(&mut f, &[]);
    let before = store_bytes(&f);
    for (src, n) in [("127.0.0.6", 100), ("127.0.0.7", 3)] {
        for _ in 0..n {
            let (status, body) = mcp_init_from(&server, src, "Bearer not.a.jwt");
            assert_eq!(status, 401, "{body}");
        }
    }
    let mut admin = crate::mcp_client::Stdio::start(&f.tomo, "admin");
    let entries = admin.ok("audit_auth", json!({"limit": 1000}));
    let refused = entries["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "token").count();
    eprintln!("figure: {refused} audit entries for 103 refused tokens from 2 addresses");
    assert!((1..=2).contains(&refused), "{refused} audit entries: {entries}");
    let grown = store_bytes(&f).saturating_sub(before);
    assert!(grown < 256 * 1024, "the store grew {grown} bytes");
}

fn mcp_init_from(server: &HttpServer, src: &str, auth: &str) -> (u16, String) {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let h = [
        ("Authorization", auth),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let (status, _, body) = server.request_from(src, "POST", "/mcp", &h, init);
    (status, body)
}

/// The MCP sessions one user may hold at once (`SESSIONS_PER_USER` in src/mcp/http.rs).
const SESSIONS_PER_USER: usize = 16;

#[test]
fn mcp_sessions_are_capped_per_user_and_a_closed_one_frees_its_slot() {
    let mut f = Fleet::new();
    std::fs::create_dir_all(f.tomo.path().join("state")).unwrap();
    let server = serve_with(&mut f, &[("vic", "viewer"), ("val", "viewer")]);
    let vic = token(&f, "vic");
    let before = server.rss_kib();
    let mut open = Vec::new();
    let mut refused = Vec::new();
    // Far more than a user may hold: the first SESSIONS_PER_USER open, the rest are refused.
    for _ in 0..1000 {
        match server.session(&vic) {
            Ok(s) => open.push(s),
            Err((status, body)) => refused.push((status, body)),
        }
    }
    let after = server.rss_kib();
    eprintln!(
        "figure: 1000 initialize from one user: {} sessions open, {} refused; RSS {before} KiB -> {after} KiB",
        open.len(),
        refused.len()
    );
    assert_eq!(open.len(), SESSIONS_PER_USER, "sessions open for one user");
    for (status, body) in &refused {
        assert_eq!(*status, 429, "{body}");
        let error = serde_json::from_str::<Value>(body).unwrap_or_default()["error"].as_str().unwrap_or("").to_string();
        assert!(error.contains("sessions"), "{body}");
    }
    assert!(after < before + 32 * 1024, "RSS grew from {before} KiB to {after} KiB");
    // Another user still gets a session.
    let val = token(&f, "val");
    let mut other = server.session(&val).expect("another user opens a session");
    let r = other.call("app_list", json!({}));
    assert!(!r.is_error, "{}", r.text);
    // Closing one frees its slot.
    let s = open.pop().unwrap();
    let auth = format!("Bearer {vic}");
    let (status, _, _) = server.request("DELETE", "/mcp", &[("Authorization", &auth), ("Mcp-Session-Id", &s.sid)], "");
    assert!(status == 200 || status == 202 || status == 204, "{status}");
    let mut again = server.session(&vic).expect("a slot freed by DELETE");
    let r = again.call("app_list", json!({}));
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(server.session(&vic).err().map(|e| e.0), Some(429));
}
