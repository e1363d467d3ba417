//! A fake Docker Engine API: a small HTTP/1.1 server on a Unix socket (the
//! `docker.socket` of a test host, which its real sshd forwards to), answering
//! like an Engine except for `/containers/json`, which misbehaves as told.
//! Every request line is recorded. Threads end when the fake is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

#[derive(Clone)]
pub enum Behaviour {
    Normal,
    /// An endless body, at full speed.
    Endless,
    /// This many (plausible) containers.
    Huge(usize),
    /// Headers never come.
    Silent,
    /// Headers at once, then one byte a second.
    Trickle,
    /// Valid JSON of the wrong shape.
    Malformed,
    /// Lists normally; `POST /containers/create` never answers.
    SilentCreate,
    /// Containers of this installation, not declared (orphans), with these
    /// ids; networks of an undeclared app with these names.
    Orphans {
        installation: String,
        ids: Vec<Value>,
        networks: Vec<String>,
    },
    /// Answers an apply's calls as told (see `ApplyFake`, at the end).
    Apply(ApplyFake),
    /// Every text the server reports is `text` (terminal escapes, line
    /// breaks, bidi controls, 100 KB): the version, image tags, the
    /// `tomo.app` label of the container named `victim` (ours: a conflict)
    /// and of an orphan, the deployed spec of the container named `drift`
    /// (ours, so it is recreated) and the error of every create.
    Hostile {
        installation: String,
        victim: String,
        drift: String,
        text: String,
    },
}

pub struct FakeDocker {
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    path: String,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl FakeDocker {
    pub fn start(path: &str, behaviour: Behaviour) -> FakeDocker {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).expect("bind the fake Docker socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, s, b) = (r.clone(), s.clone(), behaviour.clone());
                std::thread::spawn(move || serve(conn, &b, &r, &s));
            }
        });
        FakeDocker { requests, stop, path: path.to_string(), accept: Some(accept) }
    }

    pub fn lines(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeDocker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(conn: UnixStream, b: &Behaviour, requests: &Mutex<Vec<String>>, stop: &AtomicBool) {
    let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    // One request per connection (tomo opens one per request).
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let request = line.trim_end().to_string();
    requests.lock().unwrap().push(request.clone());
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let mut parts = request.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let path = path.trim_start_matches('/');
    let path = match path.split_once('/') {
        Some((v, rest)) if v.starts_with('v') && v[1..].chars().all(|c| c.is_ascii_digit() || c == '.') => rest,
        _ => path,
    };
    if let Behaviour::Apply(a) = b
        && a.serve(method, path, target, &body, &mut out, stop)
    {
        return;
    }
    if matches!(b, Behaviour::SilentCreate) && method == "POST" && path == "containers/create" {
        containers(&mut out, &mut reader, &Behaviour::Silent, stop);
    } else if let (Behaviour::Hostile { text, .. }, "POST", "containers/create" | "networks/create") = (b, method, path)
    {
        respond(&mut out, 500, &json!({ "message": text }).to_string());
    } else if method == "GET" && path == "containers/json" {
        containers(&mut out, &mut reader, b, stop);
    } else {
        let (status, answer) = normal(method, path, b);
        respond(&mut out, status, &answer.to_string());
    }
}

fn respond(out: &mut UnixStream, status: u16, body: &str) {
    let reason = if status < 300 { "OK" } else { "Error" };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn normal(method: &str, path: &str, b: &Behaviour) -> (u16, Value) {
    match (method, path) {
        ("GET", "_ping") => (200, json!("OK")),
        ("GET", "version") if matches!(b, Behaviour::Hostile { .. }) => {
            let Behaviour::Hostile { text, .. } = b else { unreachable!() };
            (200, json!({"Version": text, "ApiVersion": "1.41", "Os": text, "Arch": text, "KernelVersion": text}))
        }
        ("GET", "version") => (
            200,
            json!({"Version": "20.10.99", "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64", "KernelVersion": "fake"}),
        ),
        ("GET", "networks") => {
            let list: Vec<Value> = match b {
                Behaviour::Orphans { installation, networks, .. } => networks
                    .iter()
                    .map(|n| json!({"Id": "b".repeat(64), "Name": n, "Labels": ours(installation)}))
                    .collect(),
                _ => Vec::new(),
            };
            (200, json!(list))
        }
        ("GET", "volumes") => (200, json!({"Volumes": [], "Warnings": null})),
        ("GET", "images/json") if matches!(b, Behaviour::SilentCreate) => (
            200,
            json!([{
                "Id": format!("sha256:{}", "c".repeat(64)), "ParentId": "", "RepoTags": [crate::fleet::IMAGE],
                "RepoDigests": [], "Created": 1_700_000_000, "Size": 1, "SharedSize": -1, "Labels": {}, "Containers": -1
            }]),
        ),
        ("GET", "images/json") if matches!(b, Behaviour::Hostile { .. }) => {
            let Behaviour::Hostile { text, .. } = b else { unreachable!() };
            (
                200,
                json!([{
                    "Id": format!("sha256:{}", "e".repeat(64)), "ParentId": "", "RepoTags": [text],
                    "RepoDigests": [text], "Created": 1_700_000_000, "Size": 1, "SharedSize": -1,
                    "Labels": {"x": text}, "Containers": -1
                }]),
            )
        }
        ("GET", "images/json") => (200, json!([])),
        ("POST", "networks/create") => (201, json!({"Id": "b".repeat(64), "Warning": ""})),
        ("POST" | "DELETE", _) => (204, json!(null)),
        _ => (404, json!({"message": "no such object in the fake"})),
    }
}

fn ours(installation: &str) -> Value {
    json!({"tomo.managed": "true", "tomo.installation": installation, "tomo.app": "gone", "tomo.service": "web"})
}

/// The containers of [`Behaviour::Hostile`].
fn hostile(installation: &str, victim: &str, drift: &str, text: &str) -> Value {
    let label = |app: &str, extra: Value| {
        let mut l = json!({"tomo.managed": "true", "tomo.installation": installation, "tomo.app": app,
            "tomo.service": "main", "note": text});
        l.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        l
    };
    let spec = json!({ "image": text, text: text, "env": { text: text } }).to_string();
    let mut list = vec![
        summary(&json!("1".repeat(64)), victim, label(text, json!({}))),
        summary(&json!("2".repeat(64)), drift, label(drift, json!({"tomo.spec": spec, "tomo.spec-hash": text}))),
        summary(&json!("3".repeat(64)), "gone-web-0", label(text, json!({}))),
    ];
    for c in &mut list {
        c["Image"] = json!(text);
        c["Status"] = json!(text);
    }
    json!(list)
}

fn summary(id: &Value, name: &str, labels: Value) -> Value {
    json!({
        "Id": id, "Names": [format!("/{name}")], "Image": "busybox:latest",
        "ImageID": format!("sha256:{}", "c".repeat(64)), "Command": "sleep 600", "Created": 1_700_000_000,
        "Ports": [], "Labels": labels, "State": "running", "Status": "Up 2 hours",
        "HostConfig": {"NetworkMode": "default"}, "Mounts": []
    })
}

fn containers(out: &mut UnixStream, reader: &mut BufReader<UnixStream>, b: &Behaviour, stop: &AtomicBool) {
    match b {
        Behaviour::Normal | Behaviour::SilentCreate | Behaviour::Apply(_) => respond(out, 200, "[]"),
        Behaviour::Hostile { installation, victim, drift, text } => {
            respond(out, 200, &hostile(installation, victim, drift, text).to_string());
        }
        Behaviour::Malformed => respond(out, 200, r#"{"containers": "not a list"}"#),
        Behaviour::Orphans { installation, ids, .. } => {
            let list: Vec<Value> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| summary(id, &format!("gone-web-{i}"), ours(installation)))
                .collect();
            respond(out, 200, &json!(list).to_string());
        }
        Behaviour::Huge(n) => {
            let mut body = String::from("[");
            for i in 0..*n {
                if i > 0 {
                    body.push(',');
                }
                let id = json!(format!("{i:064x}"));
                body.push_str(&summary(&id, &format!("huge-{i}"), json!({"com.example.role": "worker"})).to_string());
            }
            body.push(']');
            respond(out, 200, &body);
        }
        Behaviour::Endless => {
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[");
            let item = summary(&json!("d".repeat(64)), "endless", json!({})).to_string() + ",";
            let chunk = item.repeat(64 * 1024 / item.len() + 1);
            while !stop.load(Ordering::SeqCst) {
                match out.write_all(chunk.as_bytes()) {
                    Ok(()) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        }
        Behaviour::Silent => {
            // Wait for the client to go away (or the fake to stop), never answering.
            let _ = reader.get_ref().set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::SeqCst) {
                match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        }
        Behaviour::Trickle => {
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n[",
            );
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(1));
                if out.write_all(b" ").is_err() {
                    return;
                }
            }
        }
    }
}

// ---- Apply behaviours: echoed secrets and event floods ----

/// How an apply's calls are answered by `Behaviour::Apply`.
#[derive(Clone)]
pub enum ApplyFake {
    /// `POST /containers/create` fails with 500, echoing the request body as
    /// it came, in base64 and in hex.
    EchoCreate,
    /// Creates and starts containers; inspect reports them running with
    /// health `starting` (`healthy` once `healthy_after` has passed since the
    /// flood began); `GET /events` is an endless stream, as fast as it goes,
    /// of valid events about other containers (and, once healthy, the
    /// container's own `health_status: healthy` among them).
    EventFlood { healthy_after: Option<Duration>, state: Arc<FloodState> },
}

/// What an event flood saw: when it began, the container created.
#[derive(Default)]
pub struct FloodState {
    pub began: Mutex<Option<std::time::Instant>>,
    pub created: Mutex<Option<String>>,
}

/// The id the flood fake gives the container it creates.
const FLOOD_ID: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

impl ApplyFake {
    pub fn flood(healthy_after: Option<Duration>) -> (ApplyFake, Arc<FloodState>) {
        let state = Arc::new(FloodState::default());
        (ApplyFake::EventFlood { healthy_after, state: state.clone() }, state)
    }

    /// Answers the request if it is one this behaviour changes.
    fn serve(
        &self,
        method: &str,
        path: &str,
        target: &str,
        body: &[u8],
        out: &mut UnixStream,
        stop: &AtomicBool,
    ) -> bool {
        use base64::Engine as _;
        if method == "GET" && path == "images/json" {
            let image = json!([{
                "Id": format!("sha256:{}", "c".repeat(64)), "ParentId": "", "RepoTags": [crate::fleet::IMAGE],
                "RepoDigests": [], "Created": 1_700_000_000, "Size": 1, "SharedSize": -1, "Labels": {}, "Containers": -1
            }]);
            respond(out, 200, &image.to_string());
            return true;
        }
        match self {
            ApplyFake::EchoCreate if method == "POST" && path == "containers/create" => {
                let text = String::from_utf8_lossy(body);
                let b64 = base64::engine::general_purpose::STANDARD.encode(body);
                let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
                let message = format!("create failed for {text}; base64 {b64}; hex {hex}");
                respond(out, 500, &json!({ "message": message }).to_string());
                true
            }
            ApplyFake::EchoCreate => false,
            ApplyFake::EventFlood { healthy_after, state } => {
                let healthy = || {
                    let began = *state.began.lock().unwrap();
                    match (healthy_after, began) {
                        (Some(after), Some(began)) => began.elapsed() >= *after,
                        _ => false,
                    }
                };
                match (method, path) {
                    ("POST", "containers/create") => {
                        let name = target.split("name=").nth(1).unwrap_or("").split('&').next().unwrap_or("");
                        *state.created.lock().unwrap() = Some(name.to_string());
                        respond(out, 201, &json!({"Id": FLOOD_ID, "Warnings": []}).to_string());
                        true
                    }
                    ("GET", p) if p.starts_with("containers/") && p.ends_with("/json") && p != "containers/json" => {
                        let health = if healthy() { "healthy" } else { "starting" };
                        let name = state.created.lock().unwrap().clone().unwrap_or_default();
                        let doc = json!({
                            "Id": FLOOD_ID, "Name": format!("/{name}"),
                            "State": {"Status": "running", "Running": true, "ExitCode": 0,
                                      "StartedAt": "2026-01-01T00:00:00Z", "Health": {"Status": health}},
                            "Config": {"Labels": {}}
                        });
                        respond(out, 200, &doc.to_string());
                        true
                    }
                    ("GET", "events") => {
                        flood(out, state, healthy, stop);
                        true
                    }
                    _ => false,
                }
            }
        }
    }
}

/// Valid events about other containers, as fast as the client takes them;
/// once `healthy()`, the created container's health event among them.
fn flood(out: &mut UnixStream, state: &FloodState, healthy: impl Fn() -> bool, stop: &AtomicBool) {
    state.began.lock().unwrap().get_or_insert_with(std::time::Instant::now);
    let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
    let event = |id: &str, name: &str, action: &str| {
        json!({"Type": "container", "Action": action, "Actor": {"ID": id, "Attributes": {"name": name}},
               "scope": "local", "time": 1_700_000_000, "timeNano": 1_700_000_000_000_000_000i64})
        .to_string()
            + "\n"
    };
    let noise: String =
        (0..400).map(|i| event(&format!("{i:064x}"), &format!("other-{i}"), "exec_start: sh")).collect();
    while !stop.load(Ordering::SeqCst) {
        let mut chunk = noise.clone();
        if healthy() {
            let name = state.created.lock().unwrap().clone().unwrap_or_default();
            chunk.push_str(&event(FLOOD_ID, &name, "health_status: healthy"));
        }
        // Whole lines only: a write that times out is resumed where it stopped.
        let mut rest = chunk.as_bytes();
        while !rest.is_empty() {
            match out.write(rest) {
                Ok(0) => return,
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
}
