//! The MCP server against the real Docker Engine and SQLite: every tool's
//! happy path and refusals, proposals end to end, the token matrix over
//! HTTP, and real third-party clients (the Python SDK, the MCP Inspector).

use serde_json::{Value, json};

use crate::fleet::{Fleet, IMAGE, docker, httpd};
use crate::harness::{Tomo, repo};
use crate::mcp_client::{HttpServer, Stdio};

pub const JWT_KEY: &str = "tomo-test-jwt-key-0123456789abcdef-0123";

/// The HTTP server's key, and logs at `info` (its address is logged there).
pub fn with_key(f: &mut Fleet) {
    f.tomo.set_env("JWT_SECRET_KEY", JWT_KEY);
    f.tomo.set_env("TOMO_LOG", "info");
}

pub fn add_user(f: &Fleet, name: &str, role: &str) {
    let r = f.tomo.run_with_stdin(&["user", "add", name, "--role", role], Some("correct horse battery\n"));
    assert_eq!(r.code, 0, "{}", r.all());
}

pub fn token(f: &Fleet, user: &str) -> String {
    let r = f.tomo(&["token", "create", "--user", user]);
    assert_eq!(r.code, 0, "{}", r.all());
    r.stdout.trim().to_string()
}

pub fn web(f: &Fleet, name: &str, env: &str) {
    f.manifest(
        &format!("apps/{name}.yaml"),
        &format!("kind: App\nname: {{p}}-{name}\nserver: local\nimage: {{image}}\ninit: true\ncommand: {}\nenv: {{A: \"{env}\"}}\n", httpd(name)),
    );
}

/// A token for `ann` signed with the right key that expired 10 s ago.
fn expired_token() -> String {
    let now = tomo::auth::now_unix();
    let claims = tomo::auth::Claims {
        sub: "ann".into(),
        role: tomo::auth::Role::Operator,
        iat: now - 100,
        exp: now - 10,
        jti: "old".into(),
    };
    tomo::auth::sign(&claims, JWT_KEY.as_bytes())
}

fn read(f: &Fleet, rel: &str) -> Option<String> {
    std::fs::read_to_string(f.tomo.path().join("state").join(rel)).ok()
}

#[test]
fn every_tool_is_described_typed_and_annotated() {
    let f = Fleet::new();
    web(&f, "a", "1");
    let mut c = Stdio::start(&f.tomo, "viewer");
    let tools = c.request("tools/list", json!({}));
    let tools = tools["result"]["tools"].as_array().unwrap().clone();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    let expected = [
        "app_deploy",
        "app_get",
        "app_history",
        "app_list",
        "app_logs",
        "app_remove",
        "app_restart",
        "app_rollback",
        "app_start",
        "app_stats",
        "app_status",
        "app_stop",
        "app_update",
        "apply",
        "audit_auth",
        "audit_settings",
        "auth_login",
        "auth_logout",
        "auth_whoami",
        "backup_create",
        "backup_list",
        "backup_restore",
        "docker_containers",
        "docker_images",
        "docker_info",
        "docker_install",
        "docker_prune",
        "docker_update",
        "health_check",
        "logs_app",
        "logs_purge",
        "logs_system",
        "market_app_get",
        "market_categories",
        "market_install",
        "market_installed",
        "market_repo_add",
        "market_repo_list",
        "market_repo_remove",
        "market_search",
        "market_sync",
        "market_updates",
        "market_upgrade",
        "metrics_app",
        "metrics_history",
        "metrics_server",
        "metrics_summary",
        "metrics_system",
        "plan",
        "proposal_approve",
        "proposal_get",
        "proposal_list",
        "proposal_reject",
        "server_add",
        "server_get",
        "server_list",
        "server_remove",
        "server_test",
        "server_update",
        "settings_get",
        "settings_update",
        "status",
        "validate",
    ];
    assert_eq!(names, expected);
    for t in &tools {
        let name = t["name"].as_str().unwrap();
        assert!(t["description"].as_str().is_some_and(|d| d.len() > 20), "{name} has no description");
        assert_eq!(t["inputSchema"]["type"], "object", "{name}");
        assert_eq!(t["outputSchema"]["type"], "object", "{name} has no output schema");
        let a = &t["annotations"];
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(a[hint].is_boolean(), "{name} lacks {hint}");
        }
        // Portable schemas: no `null` in type lists, no integer formats.
        let text = t.to_string();
        assert!(!text.contains("\"null\""), "{name}: {text}");
        assert!(!text.contains("uint") && !text.contains("\"int64\""), "{name}: {text}");
    }
    let find = |n: &str| tools.iter().find(|t| t["name"] == n).unwrap()["annotations"].clone();
    assert_eq!(find("app_list")["readOnlyHint"], true);
    assert_eq!(find("docker_prune")["destructiveHint"], true);
    assert_eq!(find("app_remove")["destructiveHint"], true);
    assert_eq!(find("apply")["readOnlyHint"], false);
    // Resources and prompts.
    let res = c.request("resources/list", json!({}));
    let uri = "tomo://manifests/apps/a.yaml".to_string();
    assert!(res.to_string().contains(&uri), "{res}");
    let text = c.request("resources/read", json!({"uri": uri}));
    assert!(text["result"]["contents"][0]["text"].as_str().unwrap().contains("kind: App"));
    let prompts = c.request("prompts/list", json!({}));
    assert!(prompts.to_string().contains("deploy_app_safely"), "{prompts}");
    let p = c.request("prompts/get", json!({"name": "deploy_app_safely", "arguments": {"app": "web"}}));
    assert!(p.to_string().contains("fingerprint"), "{p}");
}

#[test]
fn agent_proposes_an_admin_approves_and_the_engine_follows() {
    let f = Fleet::new();
    web(&f, "a", "1");
    f.apply();
    let before_a = read(&f, "apps/a.yaml").unwrap();
    let name = f.app("b");
    let mut agent = Stdio::start(&f.tomo, "agent");
    let r = agent.ok(
        "app_deploy",
        json!({"name": name, "image": IMAGE, "command": ["sh", "-c", "exec httpd -f -p 80 -h /"], "env": {"X": "1"}}),
    );
    assert_eq!(r["outcome"], "proposed", "{r}");
    assert!(r["why"].as_str().unwrap().contains("agent"), "{r}");
    assert!(r["diff"].as_str().unwrap().contains(&format!("+++ b/apps/{name}.yaml")), "{r}");
    assert!(r["plan"]["text"].as_str().unwrap().contains(&format!("+ {name}")), "{r}");
    let id = r["proposal"].as_str().unwrap().to_string();
    // Nothing was written or started.
    assert_eq!(read(&f, &format!("apps/{name}.yaml")), None);
    assert_eq!(read(&f, "apps/a.yaml").unwrap(), before_a);
    assert!(!f.exists(&name));
    // The agent can see it but not approve it.
    let listed = agent.ok("proposal_list", json!({"status": "pending"}));
    assert_eq!(listed["proposals"][0]["id"], id.as_str());
    let refused = agent.call("proposal_approve", json!({"id": id}));
    assert!(refused.is_error && refused.text.contains("`admin` permission"), "{}", refused.text);
    // A human approves on the CLI: files written, exactly that plan applied.
    let shown = f.tomo(&["proposal", "show", &id]);
    assert!(shown.stdout.contains(&format!("+++ b/apps/{name}.yaml")), "{}", shown.all());
    let r = f.tomo(&["proposal", "approve", &id, "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("applied"), "{}", r.stdout);
    assert!(read(&f, &format!("apps/{name}.yaml")).unwrap().contains(&format!("name: {name}")));
    assert_eq!(read(&f, "apps/a.yaml").unwrap(), before_a, "other files stay byte-identical");
    assert_eq!(f.inspect(&name, "{{.State.Status}}"), "running");
    f.assert_converged();
    let again = f.tomo(&["proposal", "approve", &id, "--yes"]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("applied, not pending"), "{}", again.all());
    let listed = agent.ok("proposal_get", json!({"id": id}));
    assert_eq!(listed["proposal"]["status"], "applied");
}

#[test]
fn a_stale_proposal_is_refused_and_nothing_is_written() {
    let f = Fleet::new();
    web(&f, "a", "1");
    f.apply();
    let a = f.app("a");
    let mut agent = Stdio::start(&f.tomo, "agent");
    let r = agent.ok("app_update", json!({"name": a, "env": {"A": "2"}}));
    assert_eq!(r["outcome"], "proposed", "{r}");
    let id = r["proposal"].as_str().unwrap().to_string();
    // The file changes by hand after the proposal was made.
    web(&f, "a", "3");
    let edited = read(&f, "apps/a.yaml").unwrap();
    let r = f.tomo(&["proposal", "approve", &id, "--yes"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("stale") || r.stderr.contains("changed"), "{}", r.stderr);
    assert_eq!(read(&f, "apps/a.yaml").unwrap(), edited, "nothing was written");
    let row = agent.ok("proposal_get", json!({"id": id}));
    assert_eq!(row["proposal"]["status"], "stale", "{row}");
    // Rejecting a decided proposal is refused too.
    let r = f.tomo(&["proposal", "reject", &id]);
    assert_ne!(r.code, 0);
    // An admin rejects a pending one over MCP; nothing is written.
    let r = agent.ok("app_update", json!({"name": a, "env": {"A": "4"}}));
    let id = r["proposal"].as_str().unwrap().to_string();
    let mut admin = Stdio::start(&f.tomo, "admin");
    let rejected = admin.ok("proposal_reject", json!({"id": id, "reason": "not now"}));
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reason"], "not now");
    assert_eq!(read(&f, "apps/a.yaml").unwrap(), edited);
    // validate sees the hand edit as valid; a broken file is listed with its place.
    assert_eq!(admin.ok("validate", json!({}))["valid"], true);
    f.manifest("apps/b.yaml", "kind: App\nname: {p}-b\nserver: local\nimgae: x\n");
    let v = admin.ok("validate", json!({}));
    assert_eq!(v["valid"], false);
    assert!(v["errors"].to_string().contains("apps/b.yaml:4:1: imgae: unknown field"), "{v}");
}

#[test]
fn operator_changes_apps_and_applies_only_the_reviewed_plan() {
    let f = Fleet::new();
    web(&f, "a", "1");
    let name = f.app("svc");
    let mut op = Stdio::start(&f.tomo, "operator");
    let r = op.ok(
        "app_deploy",
        json!({"name": name, "image": IMAGE, "command": ["sh", "-c", "echo started $GREETING; exec httpd -f -p 80 -h /"], "env": {"GREETING": "hello"}}),
    );
    assert_eq!(r["outcome"], "written", "{r}");
    assert!(read(&f, &format!("apps/{name}.yaml")).is_some());
    let fp = r["plan"]["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(r["plan"]["destructive"], false);
    let wrong = op.call("apply", json!({"fingerprint": "0:0"}));
    assert!(wrong.is_error && wrong.text.contains("changed since you reviewed it"), "{}", wrong.text);
    assert!(!f.exists(&name), "a refused apply changes nothing");
    let applied = op.ok("apply", json!({"fingerprint": fp}));
    assert_eq!(applied["succeeded"], true, "{applied}");
    assert_eq!(f.inspect(&name, "{{.State.Status}}"), "running");
    let status = op.ok("app_status", json!({"name": name}));
    assert_eq!(status["containers"][0]["state"], "running", "{status}");
    // Update: env changes, the container is recreated.
    let old = f.id(&name);
    let r = op.ok("app_update", json!({"name": name, "env": {"GREETING": "bye"}}));
    assert_eq!(r["outcome"], "written", "{r}");
    assert!(r["diff"].as_str().unwrap().contains("+  GREETING: bye"), "{r}");
    op.ok("apply", json!({"fingerprint": r["plan"]["fingerprint"]}));
    assert_ne!(f.id(&name), old);
    assert!(f.inspect(&name, "{{range .Config.Env}}{{println .}}{{end}}").contains("GREETING=bye"));
    // Direct tools.
    let logs = op.ok("app_logs", json!({"name": name, "tail": 10}));
    assert!(logs["logs"][0]["text"].as_str().unwrap().contains("started bye"), "{logs}");
    let id = f.id(&name);
    let restarted = op.ok("app_restart", json!({"name": name}));
    assert_eq!(restarted["restarted"][0], name.as_str(), "{restarted}");
    assert_eq!(f.id(&name), id, "a restart keeps the container");
    let stats = op.ok("app_stats", json!({"name": name}));
    assert!(stats["stats"][0]["memory_bytes"].as_i64().unwrap() > 0, "{stats}");
    let history = op.ok("app_history", json!({"name": name}));
    assert!(history["actions"].as_array().unwrap().len() >= 2, "{history}");
    assert_eq!(history["revisions"].as_array().unwrap().len(), 2, "{history}");
    let releases = history["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2, "{history}");
    assert_eq!((releases[0]["number"].as_i64(), releases[0]["source"].as_str()), (Some(2), Some("mcp")), "{history}");
    assert_eq!(releases[0]["outcome"], "succeeded", "{history}");
    // Rollback is always a proposal, back to the previous revision.
    let rb = op.ok("app_rollback", json!({"name": name}));
    assert_eq!(rb["outcome"], "proposed", "{rb}");
    assert!(rb["diff"].as_str().unwrap().contains("+  GREETING: hello"), "{rb}");
    // Stop and start are declarative.
    let r = op.ok("app_stop", json!({"name": name}));
    op.ok("apply", json!({"fingerprint": r["plan"]["fingerprint"]}));
    assert_eq!(f.inspect(&name, "{{.State.Status}}"), "exited");
    let r = op.ok("app_start", json!({"name": name}));
    op.ok("apply", json!({"fingerprint": r["plan"]["fingerprint"]}));
    assert_eq!(f.inspect(&name, "{{.State.Status}}"), "running");
    // Removal is destructive: it waits for an admin.
    let r = op.ok("app_remove", json!({"name": name}));
    assert_eq!(r["outcome"], "proposed", "{r}");
    assert_eq!(r["plan"]["destructive"], true);
    let id = r["proposal"].as_str().unwrap().to_string();
    let mut admin = Stdio::start(&f.tomo, "admin");
    let done = admin.ok("proposal_approve", json!({"id": id}));
    assert_eq!(done["proposal"]["status"], "applied", "{done}");
    assert!(!f.exists(&name));
    assert!(read(&f, &format!("apps/{name}.yaml")).unwrap().contains("state: absent"));
    // Every change is in the audit log.
    let audit = admin.ok("audit_settings", json!({"limit": 100}));
    let text = audit.to_string();
    for action in ["\"edit\"", "\"propose\"", "\"approve\"", "\"app_deploy\"", "\"apply\""] {
        assert!(text.contains(action), "{action} missing from {text}");
    }
}

#[test]
fn require_approval_all_makes_every_change_a_proposal() {
    let f = Fleet::new();
    f.manifest("settings.yaml", "kind: Settings\nmcp: {require_approval: all}\n");
    web(&f, "a", "1");
    for role in ["operator", "admin"] {
        let mut c = Stdio::start(&f.tomo, role);
        let r = c.ok("app_update", json!({"name": f.app("a"), "env": {"A": role}}));
        assert_eq!(r["outcome"], "proposed", "{role}: {r}");
        assert!(r["why"].as_str().unwrap().contains("require_approval: all"), "{r}");
    }
    assert!(read(&f, "apps/a.yaml").unwrap().contains("A: \"1\""), "nothing was written");
    let mut admin = Stdio::start(&f.tomo, "admin");
    assert_eq!(admin.ok("proposal_list", json!({"status": "pending"}))["proposals"].as_array().unwrap().len(), 2);
}

#[test]
fn refusals_and_bad_input_are_readable_tool_errors() {
    let f = Fleet::new();
    web(&f, "a", "1");
    let a = f.app("a");
    let mut viewer = Stdio::start(&f.tomo, "viewer");
    let r = viewer.call("app_deploy", json!({"name": "x", "image": IMAGE}));
    assert!(r.is_error, "{r:?}");
    assert!(r.text.contains("`propose` permission") && r.text.contains("role `viewer`"), "{}", r.text);
    for (tool, args) in [("apply", json!({"fingerprint": "x"})), ("plan", json!({}))] {
        let r = viewer.call(tool, args);
        assert!(r.is_error && r.text.contains("permission denied"), "{tool}: {}", r.text);
    }
    let mut agent = Stdio::start(&f.tomo, "agent");
    for (tool, args) in [
        ("apply", json!({"fingerprint": "x"})),
        ("app_restart", json!({"name": a})),
        ("docker_prune", json!({})),
        ("proposal_reject", json!({"id": "x"})),
    ] {
        let r = agent.call(tool, args);
        assert!(r.is_error && r.text.contains("permission denied"), "{tool}: {}", r.text);
    }
    // Unknown app: says what exists.
    let r = agent.call("app_get", json!({"name": format!("{a}x")}));
    assert!(r.is_error && r.text.contains(&format!("did you mean `{a}`")), "{}", r.text);
    // Invalid field: file, line and field of the manifest it would write.
    let r = agent.call("app_deploy", json!({"name": "bad", "image": IMAGE, "ports": ["99999:80"]}));
    assert!(r.is_error, "{r:?}");
    assert!(r.text.contains("apps/bad.yaml:") && r.text.contains("ports[0]"), "{}", r.text);
    assert_eq!(read(&f, "apps/bad.yaml"), None);
    // Unknown or mistyped arguments are tool errors that name the argument.
    let r = agent.call("app_deploy", json!({"name": "x", "imagee": IMAGE}));
    assert!(r.is_error && r.text.contains("imagee"), "{}", r.text);
    let r = agent.call("app_logs", json!({"name": a, "tail": 0}));
    assert!(r.is_error && r.text.contains("argument `tail`"), "{}", r.text);
    let r = agent.call("app_list", json!({"server": "nowhere"}));
    assert!(r.is_error && r.text.contains("argument `server`"), "{}", r.text);
    let r = agent.call("proposal_list", json!({"status": "done"}));
    assert!(r.is_error && r.text.contains("pending"), "{}", r.text);
    // Refusals are audited.
    let audit = agent.ok("audit_auth", json!({}));
    let refused: Vec<&Value> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["result"] == "refused").collect();
    assert!(refused.len() >= 7, "{audit}");
    assert!(refused.iter().any(|e| e["role"] == "viewer" && e["target"] == "app_deploy"), "{audit}");
    // The server survives all of it.
    assert!(!agent.call("app_list", json!({})).is_error);
}

#[test]
fn secret_values_never_reach_a_result() {
    let mut f = Fleet::new();
    web(&f, "a", "1");
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master-password-for-tests");
    f.tomo.set_env("TOMO_SALT", "salt-for-the-mcp-tests");
    let secret = "s3cr3t-Value-9f8e7d";
    let r = f.tomo.run_with_stdin(&["secret", "set", "db-pass"], Some(secret));
    assert_eq!(r.code, 0, "{}", r.all());
    let name = f.app("sec");
    let mut op = Stdio::start(&f.tomo, "operator");
    let mut transcript = String::new();
    let r = op.call(
        "app_deploy",
        json!({"name": name, "image": IMAGE, "command": ["sh", "-c", "echo pass=$PASS; exec httpd -f -p 80 -h /"], "env": {"PASS": {"secret": "db-pass"}}}),
    );
    assert!(!r.is_error, "{}", r.text);
    transcript.push_str(&r.raw);
    // Sending a vault secret to a new place is an admin's decision.
    assert_eq!(r.data["outcome"], "proposed", "{}", r.data);
    assert!(r.data["why"].as_str().unwrap().contains("send vault secret `db-pass` to server `local`"), "{}", r.data);
    let id = r.data["proposal"].as_str().unwrap();
    let approved = f.tomo(&["proposal", "approve", id, "--yes"]);
    assert_eq!(approved.code, 0, "{}", approved.all());
    transcript.push_str(&approved.stdout);
    assert!(f.inspect(&name, "{{range .Config.Env}}{{println .}}{{end}}").contains(&format!("PASS={secret}")));
    for (tool, args) in [
        ("app_get", json!({"name": name})),
        ("app_logs", json!({"name": name})),
        ("plan", json!({})),
        ("status", json!({})),
        ("app_history", json!({"name": name})),
        ("audit_settings", json!({})),
        ("docker_containers", json!({"server": "local"})),
    ] {
        let r = op.call(tool, args);
        assert!(!r.is_error, "{tool}: {}", r.text);
        transcript.push_str(&r.raw);
    }
    assert!(transcript.contains("pass=***"), "logs are masked");
    assert!(!transcript.contains(secret), "a secret value leaked into a tool result");
    let db = std::fs::read(f.tomo.path().join("data/tomo.db")).unwrap();
    let needle = secret.as_bytes();
    assert!(!db.windows(needle.len()).any(|w| w == needle), "the secret is in the store in clear");
}

#[test]
fn fleet_docker_settings_and_auth_tools() {
    let f = Fleet::new();
    web(&f, "a", "1");
    f.apply();
    let a = f.app("a");
    let mut op = Stdio::start(&f.tomo, "operator");
    let st = op.ok("status", json!({}));
    assert_eq!(st["in_sync"], true, "{st}");
    assert_eq!(st["containers"][0]["state"], "running", "{st}");
    docker(&["stop", "-t", "1", &a]);
    let st = op.ok("status", json!({"apps": [a]}));
    assert_eq!(st["in_sync"], false, "{st}");
    assert_eq!(st["containers"][0]["state"], "exited", "{st}");
    assert!(st["containers"][0]["drift"].as_str().unwrap().starts_with("start ("), "{st}");
    assert!(st["text"].as_str().unwrap().contains(&format!("{a} ")), "{st}");
    f.apply();
    let info = op.ok("docker_info", json!({}));
    assert!(info["servers"][0]["result"]["version"].as_str().is_some_and(|v| !v.is_empty()), "{info}");
    let cs = op.ok("docker_containers", json!({"server": "local"}));
    assert!(
        cs["containers"].as_array().unwrap().iter().any(|c| c["name"] == a.as_str() && c["app"] == a.as_str()),
        "{cs}"
    );
    let images = op.ok("docker_images", json!({"server": "local"}));
    assert!(images.to_string().contains(IMAGE), "{images}");
    let pruned = op.ok("docker_prune", json!({}));
    assert!(pruned["servers"][0]["result"]["space_reclaimed_bytes"].is_i64(), "{pruned}");
    assert!(f.exists(&a), "prune never touches containers");
    let r = op.call("docker_containers", json!({"server": "nope"}));
    assert!(r.is_error && r.text.contains("no server `nope`"), "{}", r.text);
    let health = op.ok("health_check", json!({}));
    let checks = health["servers"][0]["result"].to_string();
    assert!(checks.contains("docker socket") && checks.contains("free disk") && checks.contains("load"), "{health}");
    let servers = op.ok("server_list", json!({}));
    assert_eq!(servers["servers"][0]["reachable"], true, "{servers}");
    op.ok("server_get", json!({"name": "local"}));
    let t = op.ok("server_test", json!({"name": "local"}));
    assert_eq!(t["ok"], true, "{t}");
    // Server manifests: add, update, remove (a server without apps).
    let r = op.ok(
        "server_add",
        json!({"name": "nas", "host": "192.0.2.10", "user": "tomo", "auth": {"method": "key_file", "path": "~/.ssh/id_ed25519"}}),
    );
    assert_eq!(r["outcome"], "written", "{r}");
    let text = read(&f, "servers/nas.yaml").unwrap();
    assert!(text.contains("host: 192.0.2.10") && text.contains("key_file:"), "{text}");
    op.ok("server_update", json!({"name": "nas", "port": 2222}));
    assert!(read(&f, "servers/nas.yaml").unwrap().contains("port: 2222"));
    let r = op.call("server_remove", json!({"name": "local"}));
    assert!(r.is_error && r.text.contains("apps still run"), "{}", r.text);
    op.ok("server_remove", json!({"name": "nas"}));
    assert_eq!(read(&f, "servers/nas.yaml"), None);
    // Settings: system (a manifest change) and per user (the store).
    let s = op.ok("settings_get", json!({}));
    assert_eq!(s["effective"]["parallelism"], 16, "{s}");
    let r = op.ok(
        "settings_update",
        json!({"system": {"parallelism": 4}, "user": {"theme": "dark", "api_token": "tok-must-not-leak"}}),
    );
    assert_eq!(r["system"]["outcome"], "written", "{r}");
    assert_eq!(r["user"]["theme"], "dark");
    let s = op.ok("settings_get", json!({}));
    assert_eq!(s["effective"]["parallelism"], 4, "{s}");
    assert_eq!(s["user"]["theme"], "dark");
    // Auth over stdio.
    let me = op.ok("auth_whoami", json!({}));
    assert_eq!(me["role"], "operator");
    assert_eq!(me["via"], "stdio");
    let r = op.call("auth_logout", json!({}));
    assert!(r.is_error && r.text.contains("did not log in with a token"), "{}", r.text);
    let audit = op.ok("audit_settings", json!({}));
    assert!(audit.to_string().contains("user-settings"), "{audit}");
    assert!(
        !audit.to_string().contains("tok-must-not-leak"),
        "a secret-looking setting reached the audit log: {audit}"
    );
    // An operator cannot relax the approval rules: that waits for an admin.
    let r = op.ok("settings_update", json!({"system": {"mcp": {"require_approval": "none"}}}));
    assert_eq!(r["system"]["outcome"], "proposed", "{r}");
    assert!(r["system"]["why"].as_str().unwrap().contains("approval rules"), "{r}");
    assert!(!read(&f, "settings.yaml").unwrap_or_default().contains("require_approval"));
}

#[test]
fn http_token_matrix_login_lockout_and_refusal_to_start() {
    let mut f = Fleet::new();
    web(&f, "a", "1");
    // Without a key, or with a short one, the HTTP server refuses to start.
    let r = f.tomo(&["serve", "--http", "127.0.0.1:0"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("JWT_SECRET_KEY is not set"), "{}", r.stderr);
    f.tomo.set_env("JWT_SECRET_KEY", "short");
    let r = f.tomo(&["serve", "--http", "127.0.0.1:0"]);
    assert!(r.stderr.contains("at least 32 bytes"), "{}", r.stderr);
    with_key(&mut f);
    add_user(&f, "ann", "operator");
    add_user(&f, "val", "viewer");
    add_user(&f, "bob", "operator");
    let server = HttpServer::start(&f.tomo);
    let (status, _, body) = server.request("GET", "/healthz", &[], "");
    assert_eq!(status, 200, "{body}");
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let post = |auth: Option<&str>| {
        let mut h = vec![("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        server.request("POST", "/mcp", &h, init)
    };
    let expect_401 = |auth: Option<&str>, why: &str| {
        let (status, headers, body) = post(auth);
        assert_eq!(status, 401, "{auth:?}: {body}");
        let challenge =
            headers.iter().find(|(k, _)| k == "www-authenticate").map(|(_, v)| v.clone()).unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{auth:?}: {headers:?}");
        assert!(body.contains(why), "{auth:?}: {body}");
    };
    expect_401(None, "missing bearer token");
    expect_401(Some("Basic abc"), "must be `Bearer");
    expect_401(Some("Bearer not.a.jwt"), "malformed");
    let good = token(&f, "ann");
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let forged = tomo::auth::sign(
        &tomo::auth::Claims {
            sub: "ann".into(),
            role: tomo::auth::Role::Admin,
            iat: 0,
            exp: i64::MAX / 2,
            jti: "x".into(),
        },
        b"another-key-another-key-another-key!",
    );
    expect_401(Some(&format!("Bearer {forged}")), "signature");
    let tampered = format!("{head}.{payload}x.{}", forged.rsplit('.').next().unwrap());
    expect_401(Some(&format!("Bearer {tampered}")), "");
    let expired = expired_token();
    expect_401(Some(&format!("Bearer {expired}")), "expired");
    // A valid token works; after logout it is revoked.
    let (status, _, body) = post(Some(&format!("Bearer {good}")));
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = server.request("POST", "/auth/logout", &[("Authorization", &format!("Bearer {good}"))], "");
    assert_eq!(status, 200);
    expect_401(Some(&format!("Bearer {good}")), "revoked");
    // Wrong role: authenticated, but the tool is refused as an isError result.
    let viewer = token(&f, "val");
    let mut s = server.session(&viewer).unwrap();
    let r = s.call("app_deploy", json!({"name": "x", "image": IMAGE}));
    assert!(r.is_error && r.text.contains("`propose` permission"), "{}", r.text);
    let r = s.call("app_list", json!({}));
    assert!(!r.is_error, "{}", r.text);
    let me = s.call("auth_whoami", json!({}));
    assert_eq!(me.data["via"], "token");
    // auth_login (a tool, e.g. from stdio) mints a token that works over HTTP;
    // auth_logout over HTTP revokes the token of that connection.
    let mut local = Stdio::start(&f.tomo, "viewer");
    let minted = local.ok("auth_login", json!({"username": "val", "password": "correct horse battery"}));
    assert_eq!(minted["role"], "viewer");
    let minted = minted["token"].as_str().unwrap().to_string();
    let mut s2 = server.session(&minted).unwrap();
    assert_eq!(s2.call("auth_logout", json!({})).data["logged_out"], true);
    assert_eq!(server.session(&minted).err().map(|e| e.0), Some(401));
    let bad = local.call("auth_login", json!({"username": "val", "password": "nope"}));
    assert!(bad.is_error && bad.text.contains("wrong user name or password"), "{}", bad.text);
    assert!(!bad.raw.contains("nope"), "the password is not echoed");
    // Login: a token for the right password; failures slow down, then lock.
    let login = |user: &str, pw: &str| {
        server.request(
            "POST",
            "/auth/login",
            &[("Content-Type", "application/json")],
            &json!({"username": user, "password": pw}).to_string(),
        )
    };
    let (status, _, body) = login("ann", "correct horse battery");
    assert_eq!(status, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    assert!(server.session(t["token"].as_str().unwrap()).is_ok());
    for _ in 0..tomo::engine::LOCK_AFTER {
        let (status, _, body) = login("bob", "wrong password");
        assert_eq!(status, 401, "{body}");
    }
    let (status, _, body) = login("bob", "correct horse battery");
    assert_eq!(status, 429, "locked even with the right password: {body}");
    let (status, _, _) = server.request("POST", "/auth/login", &[], "not json");
    assert_eq!(status, 400);
    // CORS: no origin is allowed unless ALLOWED_ORIGINS says so.
    let (status, _, body) = server.request("OPTIONS", "/mcp", &[("Origin", "https://evil.example")], "");
    assert_eq!(status, 403, "{body}");
    // Changing a password revokes the user's tokens; removing a user too.
    let val_token = token(&f, "val");
    assert!(server.session(&val_token).is_ok());
    let r = f.tomo.run_with_stdin(&["user", "passwd", "val"], Some("another good password\n"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(server.session(&val_token).err().map(|e| e.0), Some(401));
    let ann_token = token(&f, "ann");
    let r = f.tomo(&["user", "rm", "ann"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(server.session(&ann_token).err().map(|e| e.0), Some(401));
    let listed = f.tomo(&["user", "list", "--json"]);
    assert!(listed.stdout.contains("\"val\"") && !listed.stdout.contains("\"ann\""), "{}", listed.stdout);
    let r = f.tomo.run_with_stdin(&["user", "add", "x y", "--role", "viewer"], Some("long enough password\n"));
    assert_eq!(r.code, 2, "{}", r.all());
    // Logins, failures and refusals are audited, never with a password.
    let audit = f.tomo.path().join("data/tomo.db");
    let db = std::fs::read(&audit).unwrap();
    let pw = b"correct horse battery";
    assert!(!db.windows(pw.len()).any(|w| w == pw), "a password is in the store in clear");
    let mut admin = Stdio::start(&f.tomo, "admin");
    let entries = admin.ok("audit_auth", json!({"limit": 200})).to_string();
    for needle in ["\"login\"", "\"logout\"", "\"token\"", "revoked", "expired", "wrong user or password", "locked"] {
        assert!(entries.contains(needle), "{needle} missing: {entries}");
    }
}

/// The path of a third-party client from `var`. When it is not set the test
/// fails, unless `TOMO_TEST_ALLOW_SKIP=1` says that skipping is wanted.
pub fn client(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) => Some(p),
        Err(_) if std::env::var("TOMO_TEST_ALLOW_SKIP").is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED (TOMO_TEST_ALLOW_SKIP=1): {what} needs {var}");
            None
        }
        Err(_) => panic!(
            "{var} is not set: {what} needs it (tests/run.sh sets it up); set TOMO_TEST_ALLOW_SKIP=1 to skip this test"
        ),
    }
}

pub(crate) fn python() -> Option<String> {
    client("TOMO_TEST_PYTHON", "the Python MCP SDK test")
}

/// Tokens and a running HTTP server for a third-party client.
pub(crate) fn client_env(f: &mut Fleet) -> (HttpServer, Vec<(&'static str, String)>) {
    with_key(f);
    add_user(f, "ann", "operator");
    let good = token(f, "ann");
    let revoked = token(f, "ann");
    let server = HttpServer::start(&f.tomo);
    let (status, _, _) = server.request("POST", "/auth/logout", &[("Authorization", &format!("Bearer {revoked}"))], "");
    assert_eq!(status, 200);
    let expired = expired_token();
    let env = vec![
        ("TOMO_BIN", env!("CARGO_BIN_EXE_tomo").to_string()),
        ("TOMO_DIR", f.tomo.path().display().to_string()),
        ("TOMO_URL", format!("http://{}/mcp", server.addr)),
        ("TOMO_TOKEN", good),
        ("TOMO_EXPIRED", expired),
        ("TOMO_REVOKED", revoked),
    ];
    (server, env)
}

#[test]
fn the_python_sdk_lists_and_calls_tools_over_stdio_and_http() {
    let Some(py) = python() else { return };
    let mut f = Fleet::new();
    web(&f, "a", "1");
    let (server, env) = client_env(&mut f);
    let out = std::process::Command::new(py)
        .arg(repo().join("tests/mcp_client.py"))
        .envs(env)
        .output()
        .expect("run the Python MCP client");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}\nserver log:\n{}", server.log.lock().unwrap());
    assert!(text.contains("all checks passed"), "{text}");
    for needle in [
        "stdio: tools/list has 63 tools",
        "http 2025-11-25 (sessions): app_list",
        "http without a token: refused with 401",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

#[test]
fn even_trace_logs_never_show_tool_arguments_with_secrets() {
    let mut f = Fleet::new();
    web(&f, "a", "1");
    add_user(&f, "ann", "operator");
    let lines = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "auth_login", "arguments": {"username": "ann", "password": "pw-that-must-not-be-logged"}}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "app_list", "arguments": {}}}),
    ];
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    // A directive naming rmcp's modules must not bring them back either.
    for filter in ["trace", "info,rmcp::service=trace", "info,rmcp=trace", "trace,rmcp::transport=debug"] {
        f.tomo.set_env("TOMO_LOG", filter);
        let r = f.tomo.run_with_stdin(&["serve", "--stdio", "--role", "viewer"], Some(&input));
        assert!(r.stdout.contains("\"id\":3"), "the calls were answered: {}", r.all());
        assert!(
            !r.stderr.contains("pw-that-must-not-be-logged"),
            "{filter}: a password reached the log:\n{}",
            r.stderr
        );
    }
}

#[test]
fn cors_follows_allowed_origins() {
    let mut f = Fleet::new();
    web(&f, "a", "1");
    with_key(&mut f);
    f.tomo.set_env("ALLOWED_ORIGINS", "https://ui.example");
    let server = HttpServer::start(&f.tomo);
    let pre = [("Origin", "https://ui.example"), ("Access-Control-Request-Method", "POST")];
    let (status, headers, _) = server.request("OPTIONS", "/mcp", &pre, "");
    assert_eq!(status, 204);
    let allow = headers.iter().find(|(k, _)| k == "access-control-allow-origin").map(|(_, v)| v.as_str());
    assert_eq!(allow, Some("https://ui.example"), "{headers:?}");
    let (status, headers, _) = server.request("GET", "/healthz", &[("Origin", "https://ui.example")], "");
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, _)| k == "access-control-allow-origin"));
    let (status, _, _) = server.request("GET", "/healthz", &[("Origin", "https://other.example")], "");
    assert_eq!(status, 403);
}

#[test]
fn the_mcp_inspector_finds_no_schema_problems() {
    let Some(inspector) = client("TOMO_TEST_INSPECTOR", "the MCP Inspector test") else { return };
    let t = Tomo::new()
        .env("DATA_DIRECTORY", "data")
        .file("state/apps/web.yaml", &format!("kind: App\nname: web\nserver: local\nimage: {IMAGE}\n"));
    let out = std::process::Command::new(&inspector)
        .args(["--cli", env!("CARGO_BIN_EXE_tomo"), "serve", "--stdio", "--method", "tools/list", "--strict"])
        .current_dir(t.path())
        .env("DATA_DIRECTORY", "data")
        .env("TOMO_LOG", "warn")
        .output()
        .expect("run the MCP Inspector");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inspector failed:\n{stdout}\n{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(listed["tools"].as_array().map(Vec::len), Some(63), "{stdout}");
    let _ = docker(&["version", "--format", "{{.Server.Version}}"]);
}

/// A connection attempt that reached a listener, if any (it never blocks).
fn connected(l: &std::net::TcpListener) -> bool {
    l.set_nonblocking(true).unwrap();
    l.accept().is_ok()
}

/// Where a vault secret is sent, and the safety settings, are an admin's to
/// change: an operator's change becomes a proposal (nothing written, the new
/// destination never contacted), which only an admin can approve.
#[test]
fn an_operator_cannot_move_a_vault_secret_or_relax_a_safety_setting() {
    let mut f = Fleet::new();
    with_key(&mut f);
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master-password-for-tests");
    f.tomo.set_env("TOMO_SALT", "salt-for-the-mcp-tests");
    let r = f.tomo.run_with_stdin(&["secret", "set", "nas-pass"], Some("nas-password-7c1d"));
    assert_eq!(r.code, 0, "{}", r.all());
    add_user(&f, "ann", "operator");
    add_user(&f, "ada", "admin");
    // The declared server (a closed port: refused at once), and a machine the
    // operator controls (a listener that counts connections), both on loopback.
    let home = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let theirs = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nas = f.app("nas");
    f.manifest(
        "servers/nas.yaml",
        &format!(
            "kind: Server\nname: {nas}\nhost: 127.0.0.1\nport: {}\nuser: tomo\nauth: {{password: {{secret: nas-pass}}}}\n",
            home
        ),
    );
    let before = read(&f, "servers/nas.yaml").unwrap();
    let server = HttpServer::start(&f.tomo);
    let op_token = token(&f, "ann");
    let mut op = server.session(&op_token).unwrap();
    let key = format!("SHA256:{}", "A".repeat(43));
    let port = theirs.local_addr().unwrap().port();
    let r = op.call("server_update", json!({"name": nas, "port": port, "host_key": key}));
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.data["outcome"], "proposed", "{}", r.data);
    assert!(r.data["why"].as_str().unwrap().contains("vault secret `nas-pass`"), "{}", r.data);
    assert!(r.data["plan"]["text"].as_str().unwrap().contains("not contacted"), "{}", r.data);
    assert_eq!(read(&f, "servers/nas.yaml").unwrap(), before, "nothing is written");
    assert!(!connected(&theirs), "the new destination was contacted before approval");
    let id = r.data["proposal"].as_str().unwrap().to_string();
    let refused = op.call("proposal_approve", json!({"id": id}));
    assert!(refused.is_error && refused.text.contains("`admin` permission"), "{}", refused.text);
    // The same for a new server that would log in with a vault password.
    let r = op.call(
        "server_add",
        json!({"name": f.app("nas2"), "host": "127.0.0.1", "port": port, "host_key": key, "auth": {"method": "password", "secret": "nas-pass"}}),
    );
    assert_eq!(r.data["outcome"], "proposed", "{}", r.data);
    assert_eq!(read(&f, &format!("servers/{}.yaml", f.app("nas2"))), None);
    assert!(!connected(&theirs), "a proposed server was contacted");
    // Relaxing a safety setting is an admin's decision; tightening one is not.
    for (system, setting) in [
        (json!({"watch": {"destructive": "apply"}}), "watch.destructive"),
        (json!({"prune": true}), "prune"),
        (json!({"mcp": {"require_approval": "none"}}), "mcp.require_approval"),
    ] {
        let r = op.call("settings_update", json!({"system": system}));
        assert!(!r.is_error, "{}", r.text);
        assert_eq!(r.data["system"]["outcome"], "proposed", "{setting}: {}", r.data);
        assert!(r.data["system"]["why"].as_str().unwrap().contains(setting), "{setting}: {}", r.data);
        assert_eq!(read(&f, "settings.yaml"), None, "{setting} was written");
    }
    let r = op.call("settings_update", json!({"system": {"mcp": {"require_approval": "all"}}}));
    assert_eq!(r.data["system"]["outcome"], "written", "{}", r.data);
    std::fs::remove_file(f.tomo.path().join("state/settings.yaml")).unwrap();
    // An admin approves the move: written, and still not contacted until the next plan.
    let r = f.tomo(&["proposal", "approve", &id, "--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(read(&f, "servers/nas.yaml").unwrap().contains(&format!("port: {port}")));
    assert!(!connected(&theirs), "approval itself contacts no held server");
    drop(theirs); // From here on the approved server is contacted: let it refuse at once.
    // An admin's own changes are written.
    let mut admin = server.session(&token(&f, "ada")).unwrap();
    let r = admin.call("settings_update", json!({"system": {"watch": {"destructive": "apply"}}}));
    assert_eq!(r.data["system"]["outcome"], "written", "{}", r.data);
}

/// A pinned `host_key` overrides the key a human accepted with `tomo server
/// trust`: an operator's pin is a proposal, and the server (at its new
/// port) is not contacted. `local` names only this machine.
#[test]
fn an_operator_cannot_pin_a_host_key_or_take_the_name_local() {
    let mut f = Fleet::new();
    with_key(&mut f);
    add_user(&f, "ann", "operator");
    let home = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let theirs = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let name = f.app("box");
    f.manifest(
        "servers/box.yaml",
        &format!("kind: Server\nname: {name}\nhost: 127.0.0.1\nport: {home}\nuser: tomo\nauth: {{key_file: /nonexistent/key}}\n"),
    );
    let before = read(&f, "servers/box.yaml").unwrap();
    let server = HttpServer::start(&f.tomo);
    let mut op = server.session(&token(&f, "ann")).unwrap();
    let port = theirs.local_addr().unwrap().port();
    let key = format!("SHA256:{}", "B".repeat(43));
    let r = op.call("server_update", json!({"name": name, "port": port, "host_key": key}));
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.data["outcome"], "proposed", "{}", r.data);
    assert!(r.data["why"].as_str().unwrap().contains("`host_key`"), "{}", r.data);
    assert_eq!(read(&f, "servers/box.yaml").unwrap(), before, "nothing is written");
    assert!(!connected(&theirs), "the pinned server was contacted before approval");
    let r = op.call(
        "server_add",
        json!({"name": "local", "host": "127.0.0.1", "port": port, "auth": {"method": "key_file", "path": "/k"}}),
    );
    assert!(r.is_error, "{}", r.text);
    assert!(r.text.contains("the Server name `local` is reserved"), "{}", r.text);
    assert_eq!(read(&f, "servers/local.yaml"), None);
    assert!(!connected(&theirs));
}

/// Access to the host (a bind mount of a host path, `privileged`,
/// capabilities, devices), also through `extra`, is an admin's decision: an
/// operator's is a proposal and nothing is written or started.
#[test]
fn an_operator_cannot_give_a_container_host_access() {
    let mut f = Fleet::new();
    with_key(&mut f);
    add_user(&f, "ann", "operator");
    add_user(&f, "ada", "admin");
    web(&f, "a", "1");
    let server = HttpServer::start(&f.tomo);
    let mut op = server.session(&token(&f, "ann")).unwrap();
    let data = f.tomo.path().join("data").display().to_string();
    for (i, (fields, what)) in [
        (json!({"volumes": ["/proc:/hp:ro", format!("{data}:/x")]}), "read host path `/proc`"),
        (json!({"extra": {"privileged": true}}), "`privileged`"),
        (json!({"extra": {"cap_add": ["SYS_ADMIN"], "devices": ["/dev/null"]}}), "capability `SYS_ADMIN`"),
        (json!({"extra": {"volumes": [{"type": "bind", "source": "/", "target": "/host"}]}}), "host path `/`"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = f.app(&format!("h{i}"));
        let mut args = json!({"name": name, "image": IMAGE});
        args.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        let r = op.call("app_deploy", args);
        assert!(!r.is_error, "{what}: {}", r.text);
        assert_eq!(r.data["outcome"], "proposed", "{what}: {}", r.data);
        assert!(r.data["why"].as_str().unwrap().contains(what), "{what}: {}", r.data);
        assert_eq!(read(&f, &format!("apps/{name}.yaml")), None, "{what} was written");
        assert!(!f.exists(&name));
    }
    // A plain service is the operator's to deploy; an admin's host access is written.
    let r = op.call("app_deploy", json!({"name": f.app("plain"), "image": IMAGE, "volumes": ["data:/d"]}));
    assert_eq!(r.data["outcome"], "written", "{}", r.data);
    let mut admin = server.session(&token(&f, "ada")).unwrap();
    let name = f.app("admins");
    let r = admin.call(
        "app_deploy",
        json!({"name": name, "image": IMAGE, "volumes": ["/proc:/hp:ro"], "extra": {"privileged": true}}),
    );
    assert_eq!(r.data["outcome"], "written", "{}", r.data);
    assert!(read(&f, &format!("apps/{name}.yaml")).unwrap().contains("privileged: true"));
}

/// `app_logs` masks a secret's value and its common encodings (base64 alone
/// and inside a longer stream, hex, percent-encoding); a reversed value is
/// beyond what masking can recognise (documented).
#[test]
fn app_logs_masks_the_common_encodings_of_a_secret() {
    use base64::Engine as _;
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master-password-for-tests");
    f.tomo.set_env("TOMO_SALT", "salt-for-the-mcp-tests");
    let secret = "p@ss/w0rd+Zq=9!x y";
    let r = f.tomo.run_with_stdin(&["secret", "set", "enc-pass"], Some(secret));
    assert_eq!(r.code, 0, "{}", r.all());
    std::fs::create_dir_all(f.tomo.path().join("state")).unwrap();
    let name = f.app("enc");
    let script = r#"printf '%s' "$PASS" | busybox base64; printf 'k%s' "$PASS" | busybox base64
printf '%s' "$PASS" | busybox hexdump -ve '/1 "%02x"'; echo
printf '%s' "$PASS" | busybox hexdump -ve '/1 "%02X "' | busybox sed 's/\([0-9A-F][0-9A-F]\) /%\1/g'; echo
echo "raw=$PASS"; echo "rev=$(printf '%s' "$PASS" | busybox rev)"; echo done
exec httpd -f -p 80 -h /"#;
    let mut admin = Stdio::start(&f.tomo, "admin");
    let r = admin.ok(
        "app_deploy",
        json!({"name": name, "image": IMAGE, "command": ["sh", "-c", script], "env": {"PASS": {"secret": "enc-pass"}}}),
    );
    assert_eq!(r["outcome"], "written", "{r}");
    admin.ok("apply", json!({"fingerprint": r["plan"]["fingerprint"]}));
    let mut logs = String::new();
    for _ in 0..100 {
        logs = admin.ok("app_logs", json!({"name": name}))["logs"].to_string();
        if logs.contains("done") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(logs.contains("done"), "{logs}");
    let b = secret.as_bytes();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    for shown in [
        secret.to_string(),
        base64::engine::general_purpose::STANDARD.encode(b),
        base64::engine::general_purpose::STANDARD.encode(format!("k{secret}"))[2..22].to_string(),
        hex.clone(),
        b.iter().map(|x| format!("%{x:02X}")).collect(),
    ] {
        assert!(!logs.contains(&shown), "`{shown}` is not masked: {logs}");
    }
    assert!(logs.contains("raw=***"), "{logs}");
    let reversed: String = secret.chars().rev().collect();
    assert!(logs.contains(&format!("rev={reversed}")), "a reversed value is beyond masking: {logs}");
}
