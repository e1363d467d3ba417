//! The CLI as a user meets it: exit codes, rendered errors, the example fleets.

use crate::harness::{Tomo, repo};

#[test]
fn state_and_examples_validate() {
    let t = Tomo::new();
    for dir in ["state", "examples/homelab"] {
        let path = repo().join(dir);
        let r = t.run(&["validate", "--dir", path.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{dir}: {}", r.all());
        assert!(r.stdout.starts_with("valid: "), "{}", r.stdout);
        assert!(!r.stderr.contains("error"), "{}", r.stderr);
    }
}

#[test]
fn validate_renders_every_error_with_position_and_exits_1() {
    let t = Tomo::new().file(
        "state/apps/web.yaml",
        "kind: App\nname: web\nserver: nas\nimgae: nginx\nimage: nginx\nports: [\"80800:80\"]\n---\nkind: App\nname: db\nserver: local\nimage: Postgres\n",
    );
    let r = t.run(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let e = &r.stderr;
    assert!(e.contains("error: unknown field `imgae`"), "{e}");
    assert!(e.contains("state/apps/web.yaml:4:1"), "{e}");
    assert!(e.contains("help: did you mean `image`?"), "{e}");
    assert!(e.contains("state/apps/web.yaml:11:8"), "{e}");
    assert!(e.contains("repository names must be lowercase"), "{e}");
    assert!(e.contains("invalid: 2 errors in state"), "{e}");
    assert!(r.stdout.is_empty());
}

#[test]
fn validate_json_is_machine_readable() {
    let t = Tomo::new().file("m/a.yaml", "kind: App\nname: web\nserver: local\nimage: nginx\nports: [\"x\"]\n");
    let r = t.run(&["validate", "--dir", "m", "--json"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["file"], "m/a.yaml");
    assert_eq!(d["field"], "ports[0]");
    assert_eq!(d["span"]["line"], 5);
    assert_eq!(d["code"], "invalid-port");
}

#[test]
fn missing_manifest_folder_is_a_clear_error() {
    let r = Tomo::new().run(&["validate", "--dir", "nowhere"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("manifest folder `nowhere` does not exist"), "{}", r.stderr);
}

#[test]
fn invalid_config_file_points_at_the_field() {
    let t = Tomo::new().file("tomo.yaml", "manifests: state\nssh:\n  max_concurrent_connections: lots\n");
    let r = t.run(&["validate"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("tomo.yaml:3:31"), "{}", r.stderr);
    assert!(r.stderr.contains("expected an integer, found a string"), "{}", r.stderr);
}

#[test]
fn help_version_and_completions() {
    let t = Tomo::new();
    let r = t.run(&["--help"]);
    assert_eq!(r.code, 0);
    for cmd in ["validate", "schema", "secret", "completions"] {
        assert!(r.stdout.contains(cmd), "{cmd} missing from --help");
    }
    assert!(t.run(&["--version"]).stdout.starts_with("tomo "));
    assert_eq!(t.run(&["secret", "--help"]).code, 0);
    for shell in ["bash", "zsh", "fish"] {
        let r = t.run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}");
        assert!(r.stdout.contains("validate"), "{shell}");
    }
    let r = t.run(&["completions", "tcsh"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("possible values: bash, zsh, fish"), "{}", r.stderr);
}

#[test]
fn the_example_config_is_valid() {
    let example = std::fs::read_to_string(repo().join("tomo.yaml.example")).unwrap();
    let t = Tomo::new()
        .file("tomo.yaml", &example)
        .file("state/a.yaml", "kind: App\nname: a\nserver: local\nimage: nginx\n");
    let r = t.run(&["validate"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

/// A manifest linked to a file outside the manifest folder is neither read
/// nor shown: `validate` names the link, and MCP resources do not serve it.
#[test]
fn a_symlink_out_of_the_manifest_folder_is_refused_and_never_shown() {
    let t = Tomo::new()
        .env("DATA_DIRECTORY", "data")
        .file("outside/shadow", "root:$6$TOPSECRETHASH:19000:0:99999:7:::\n")
        .file("state/.shared/web.yaml", "kind: App\nname: web\nserver: local\nimage: nginx:1.27\n");
    let state = t.path().join("state");
    std::os::unix::fs::symlink(t.path().join("outside/shadow"), state.join("x.yaml")).unwrap();
    std::os::unix::fs::symlink(".shared/web.yaml", state.join("web.yaml")).unwrap();
    let r = t.run(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(!r.all().contains("TOPSECRET") && !r.all().contains("root:"), "{}", r.all());
    assert!(r.stderr.contains("state/x.yaml:1:1"), "{}", r.stderr);
    assert!(r.stderr.contains("a symbolic link that leaves the manifest folder"), "{}", r.stderr);
    assert!(r.stderr.contains("invalid: 1 error in state"), "{}", r.stderr);

    let mut viewer = crate::mcp_client::Stdio::start(&t, "viewer");
    let list = viewer.request("resources/list", serde_json::json!({}));
    let uris: Vec<&str> =
        list["result"]["resources"].as_array().unwrap().iter().filter_map(|r| r["uri"].as_str()).collect();
    assert_eq!(uris, ["tomo://status", "tomo://manifests/web.yaml"], "{list}");
    let read = viewer.request("resources/read", serde_json::json!({"uri": "tomo://manifests/x.yaml"}));
    assert!(read["error"].is_object() && !read.to_string().contains("TOPSECRET"), "{read}");
    let v = viewer.call("validate", serde_json::json!({}));
    assert!(!v.raw.contains("TOPSECRET") && v.raw.contains("x.yaml"), "{}", v.raw);
}

/// A manifest of 100 MB is refused by its size, without being read.
#[test]
fn a_manifest_over_the_size_limit_is_refused_with_a_clear_error() {
    let t = Tomo::new().file("state/web.yaml", "kind: App\nname: web\nserver: local\nimage: nginx:1.27\n");
    let big = std::fs::File::create(t.path().join("state/big.yaml")).unwrap();
    big.set_len(100 << 20).unwrap();
    let r = t.run(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("state/big.yaml:1:1"), "{}", r.stderr);
    assert!(
        r.stderr.contains("this file holds 104857600 bytes; a manifest file may hold at most 1048576 (1 MiB)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("help: split it into several files"), "{}", r.stderr);
}

/// Files that are not UTF-8 text are an error naming the file.
#[test]
fn a_manifest_that_is_not_utf8_is_an_error_naming_the_file() {
    let t = Tomo::new().file("state/web.yaml", "kind: App\nname: web\nserver: local\nimage: nginx:1.27\n");
    std::fs::write(t.path().join("state/latin1.yaml"), b"kind: App\nname: caf\xe9\n").unwrap();
    let r = t.run(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("state/latin1.yaml:1:1"), "{}", r.stderr);
    assert!(r.stderr.contains("this file is not UTF-8 text (an invalid byte at offset 19)"), "{}", r.stderr);
}

/// Diagnostics never carry a manifest's control or bidi characters raw: not in
/// the file name, the field path, the message or the help line.
#[test]
fn diagnostics_escape_control_and_bidi_characters_from_file_names_and_fields() {
    let hostile = "\u{1b}]0;PWNED\u{7}\u{1b}[31m\u{202e}";
    let t = Tomo::new().file(
        &format!("state/apps/f{hostile}.yaml"),
        &format!("kind: App\nname: web\nserver: local\nimage: nginx:1.27\n\"ba{hostile}d\": 1\n"),
    );
    let r = t.run(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let all = r.all();
    assert!(!all.contains('\u{1b}') && !all.contains('\u{7}') && !all.contains('\u{202e}'), "{all:?}");
    assert!(all.contains("\\u{202e}"), "escaped visibly: {all}");
}

/// A port that cannot be bound is a failure of the machine (exit 1), not a
/// bad argument (exit 2), for `serve --http` and `watch --metrics` alike; an
/// address that is no address is a bad argument.
#[test]
fn a_port_that_cannot_be_bound_exits_1_and_a_malformed_address_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let t = Tomo::new()
        .env("JWT_SECRET_KEY", &"k".repeat(40))
        .env("DATA_DIRECTORY", "data")
        .file("state/web.yaml", "kind: App\nname: web\nserver: local\nimage: nginx:1.27\n");
    let r = t.run(&["serve", "--http", &addr]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains(&format!("cannot listen on `{addr}`")), "{}", r.stderr);
    let r = t.run(&["watch", "--metrics", &addr]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains(&format!("cannot listen on `{addr}`")), "{}", r.stderr);
    let r = t.run(&["serve", "--http", "no address"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("invalid address to listen on `no address`"), "{}", r.stderr);
}

/// A name or value given on the command line that names nothing is a bad
/// argument (exit 2), and the message lists what exists.
#[test]
fn an_unknown_user_proposal_or_status_is_a_usage_error_naming_what_exists() {
    let t = Tomo::new()
        .env("DATA_DIRECTORY", "data")
        .file("state/a.yaml", "kind: App\nname: a\nserver: local\nimage: nginx\n");
    let r = t.run(&["user", "rm", "nobody"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("there is no user `nobody`; users: none"), "{}", r.stderr);
    let r = t.run(&["proposal", "show", "p-nope"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("there is no proposal `p-nope`; pending: none"), "{}", r.stderr);
    let r = t.run(&["proposal", "list", "--status", "pendnig"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("use one of: pending, approved, rejected, applied, failed, stale"), "{}", r.stderr);
}

/// `tomo app set-env` is the same typed edit as the `app_update` tool: the
/// named variables change, every other byte of the manifest stays.
#[test]
fn app_set_env_edits_only_the_environment_and_keeps_comments() {
    let f = crate::fleet::Fleet::new();
    let text = "# the web app\nkind: App # kind\nname: {p}-env\nserver: local\nimage: {image} # pinned\nenv:\n  A: \"1\"\n  B: b # old\n---\n# another\nkind: App\nname: {p}-other\nserver: local\nimage: {image} # keep\n";
    f.manifest("apps/env.yaml", text);
    let name = f.app("env");
    let r = f.tomo(&["app", "set-env", &name, "B=2", "C=three", "--unset", "A"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("+  B: \"2\""), "{}", r.stdout);
    assert!(r.stdout.contains("tomo apply"), "{}", r.stdout);
    let after = std::fs::read_to_string(f.tomo.path().join("state/apps/env.yaml")).unwrap();
    let expected = text
        .replace("{p}", &f.prefix)
        .replace("{image}", crate::fleet::IMAGE)
        .replace("env:\n  A: \"1\"\n  B: b # old\n", "env:\n  B: \"2\"\n  C: three\n");
    assert_eq!(after, expected);
    let r = f.tomo(&["app", "set-env", &name, "NOEQUALS"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("NOEQUALS"), "{}", r.stderr);
    let r = f.tomo(&["app", "set-env", "nosuch", "A=1"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("there is no app `nosuch`"), "{}", r.stderr);
}
