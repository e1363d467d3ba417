//! Minimal MCP clients for the tests: JSON-RPC over a `tomo serve --stdio`
//! child, and raw HTTP/1.0 to `tomo serve --http` (to see status codes and
//! headers exactly). The third-party clients (Python SDK, Inspector) are
//! driven from `mcp.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout};

use serde_json::{Value, json};

use crate::harness::Tomo;

/// A tool call's result.
#[derive(Debug)]
pub struct Called {
    pub is_error: bool,
    /// The text of the first content block.
    pub text: String,
    /// `structuredContent` (Null when absent).
    pub data: Value,
    /// The whole JSON-RPC message, for secret-leak checks.
    pub raw: String,
}

/// An MCP session over a `tomo serve --stdio` child.
pub struct Stdio {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    next: u64,
}

impl Stdio {
    pub fn start(tomo: &Tomo, role: &str) -> Stdio {
        let mut child = tomo.spawn_piped(&["serve", "--stdio", "--role", role]);
        let err = child.stderr.take().unwrap();
        // Drained so that a chatty server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut BufReader::new(err), &mut std::io::sink()));
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut s = Stdio { child, stdin, out, next: 1 };
        let init = s.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "tomo-tests", "version": "1"}}),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "tomo", "{init}");
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send(&mut self, msg: &Value) {
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a notification (no answer).
    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns the whole response message.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_noting(method, params).0
    }

    /// Sends a request; the response and the notifications before it.
    pub fn request_noting(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut notes = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "tomo closed stdout while `{method}` was pending");
            let msg: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if msg["id"] == json!(id) {
                return (msg, notes);
            }
            if msg.get("id").is_none() {
                notes.push(msg);
            }
        }
    }

    pub fn call(&mut self, tool: &str, args: Value) -> Called {
        let msg = self.request("tools/call", json!({"name": tool, "arguments": args}));
        called(msg)
    }

    /// Calls a tool that must succeed; returns its structured content.
    pub fn ok(&mut self, tool: &str, args: Value) -> Value {
        let c = self.call(tool, args);
        assert!(!c.is_error, "{tool} failed: {}", c.text);
        c.data
    }
}

pub fn called(msg: Value) -> Called {
    let raw = msg.to_string();
    let r = &msg["result"];
    assert!(r.is_object(), "not a tool result: {msg}");
    Called {
        is_error: r["isError"] == json!(true),
        text: r["content"][0]["text"].as_str().unwrap_or_default().to_string(),
        data: r["structuredContent"].clone(),
        raw,
    }
}

impl Drop for Stdio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `tomo serve --http` child on a free port.
pub struct HttpServer {
    pub child: Child,
    pub addr: String,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl HttpServer {
    /// Starts the server and waits for its "listening" log line.
    pub fn start(tomo: &Tomo) -> HttpServer {
        HttpServer::start_at(tomo, "127.0.0.1:0")
    }

    /// The same, bound to `addr`.
    pub fn start_at(tomo: &Tomo, addr: &str) -> HttpServer {
        let mut child = tomo.spawn_piped(&["serve", "--http", addr]);
        let err = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in err.lines().map_while(Result::ok) {
                keep.lock().unwrap().push_str(&format!("{line}\n"));
                if !sent
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Some(a) = v["fields"]["address"].as_str()
                {
                    let _ = tx.send(a.to_string());
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the HTTP server did not start:\n{}", log.lock().unwrap()));
        HttpServer { child, addr, log }
    }

    /// One HTTP/1.0 request: `(status, headers lowercased, body)`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        http(&self.addr, method, path, headers, body)
    }

    /// The same from another loopback address (`127.0.0.N`), as another client would.
    pub fn request_from(
        &self,
        src: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        http_from(Some(src), &self.addr, method, path, headers, body)
    }

    /// The server's resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number")
    }

    /// An MCP session over HTTP with a bearer token (2025-11-25, with a session id).
    pub fn session(&self, token: &str) -> Result<HttpSession<'_>, (u16, String)> {
        let auth = format!("Bearer {token}");
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "tomo-tests", "version": "1"}}});
        let (status, headers, body) = self.request("POST", "/mcp", &mcp_headers(&auth, None), &init.to_string());
        if status != 200 {
            return Err((status, body));
        }
        let sid = headers.iter().find(|(k, _)| k == "mcp-session-id").map(|(_, v)| v.clone()).expect("a session id");
        let s = HttpSession { server: self, auth, sid, next: 2, src: None };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let (status, _, _) = self.request("POST", "/mcp", &mcp_headers(&s.auth, Some(&s.sid)), &note.to_string());
        assert!(status == 202 || status == 200, "initialized: {status}");
        Ok(s)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mcp_headers<'a>(auth: &'a str, sid: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("Authorization", auth),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    if let Some(s) = sid {
        h.push(("Mcp-Session-Id", s));
    }
    h
}

pub struct HttpSession<'a> {
    server: &'a HttpServer,
    auth: String,
    pub sid: String,
    next: u64,
    /// The loopback address calls come from (default: the system's choice).
    pub src: Option<String>,
}

impl HttpSession<'_> {
    /// A JSON-RPC request in this session: the response message.
    pub fn rpc(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (status, _, body) = http_from(
            self.src.as_deref(),
            &self.server.addr,
            "POST",
            "/mcp",
            &mcp_headers(&self.auth, Some(&self.sid)),
            &req.to_string(),
        );
        assert_eq!(status, 200, "{method}: {body}");
        message(&body)
    }

    /// Opens the session's standalone stream (`GET /mcp`) from `src` and
    /// leaves it open: the connection a client keeps for notifications.
    pub fn open_stream(&self, src: Option<&str>) -> TcpStream {
        let mut s = connect_from(src, &self.server.addr).unwrap();
        let mut headers = mcp_headers(&self.auth, Some(&self.sid));
        headers.retain(|(k, _)| *k != "Content-Type");
        s.write_all(request_text(&self.server.addr, "GET", "/mcp", &headers, "").as_bytes()).unwrap();
        let mut first = [0u8; 12];
        s.read_exact(&mut first).unwrap();
        assert!(
            first.starts_with(b"HTTP/1.1 200") || first.starts_with(b"HTTP/1.0 200"),
            "{}",
            String::from_utf8_lossy(&first)
        );
        s
    }

    pub fn call(&mut self, tool: &str, args: Value) -> Called {
        let id = self.next;
        self.next += 1;
        let req =
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}});
        let (status, _, body) = http_from(
            self.src.as_deref(),
            &self.server.addr,
            "POST",
            "/mcp",
            &mcp_headers(&self.auth, Some(&self.sid)),
            &req.to_string(),
        );
        assert_eq!(status, 200, "{body}");
        called(message(&body))
    }
}

/// The JSON-RPC message of a response body (plain JSON or one SSE event).
pub fn message(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str(body) {
        return v;
    }
    let data = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| d.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON-RPC message in: {body}"));
    serde_json::from_str(data).unwrap()
}

pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    http_from(None, addr, method, path, headers, body)
}

/// A TCP connection to `addr`, from the loopback address `src` when given.
pub fn connect_from(src: Option<&str>, addr: &str) -> std::io::Result<TcpStream> {
    let Some(src) = src else { return TcpStream::connect(addr) };
    let to: std::net::SocketAddr = addr.parse().expect("an IP:port address");
    let from: std::net::SocketAddr = format!("{src}:0").parse().expect("an IP address");
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&from.into())?;
    s.connect(&to.into())?;
    Ok(s.into())
}

/// An HTTP/1.0 request as text (with `Host: addr` unless `headers` name one).
pub fn request_text(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut req = format!("{method} {path} HTTP/1.0\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

pub fn http_from(
    src: Option<&str>,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = connect_from(src, addr).unwrap();
    // A server that closes early (a refused body) may reset the connection:
    // what it answered is still read.
    let _ = s.write_all(request_text(addr, method, path, headers, body).as_bytes());
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&String::from_utf8_lossy(&raw))
}

/// `(status, headers lowercased, body)` of a whole HTTP/1 response (status 0: none).
pub fn parse_response(raw: &str) -> (u16, Vec<(String, String)>, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}
