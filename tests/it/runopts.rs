//! The further run options on the real Docker Engine: a service using every
//! one (resources, GPUs, runtime, security options, logging, shm size, stop
//! signal, stdin, tty, env files) is created as `docker inspect` shows, and
//! a runtime the Engine lacks is a clear apply error. The machine has no
//! GPU: the Engine takes device requests at create and fails only at start,
//! so the services are declared `stopped`.

use crate::fleet::{Fleet, docker};

const SECRET: &str = "tiger-lily-4711-from-env-file";

const APP: &str = r#"kind: App
name: {p}-opts
server: local
state: stopped
services:
  gpu:
    image: {image}
    command: ["sleep", "3600"]
    env: {MODE: from-env}
    env_file: [app.env, {path: absent.env, required: false}]
    resources:
      memory: 512m
      memory_reservation: 128m
      cpu_shares: 512
      pids: 100
      gpus:
        - {driver: nvidia, count: 1, capabilities: [gpu, utility]}
        - {device_ids: ["0"], options: {x: y}}
    runtime: runc
    security_opt: ["no-new-privileges:true"]
    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
    shm_size: 64m
    stop_signal: SIGINT
    stdin_open: true
    tty: true
  all:
    image: {image}
    command: ["sleep", "3600"]
    resources: {gpus: all}
    shm_size: 1048576
  plain:
    image: {image}
    command: ["sleep", "3600"]
    depends_on: {all: {condition: started, required: false}, gone: {condition: started, required: false}}
"#;

/// A container's whole `docker inspect` document.
fn inspect(container: &str) -> serde_json::Value {
    let text = docker(&["inspect", container]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[0].clone()
}

#[test]
fn every_run_option_reaches_the_engine() {
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master pw");
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    f.manifest("apps/opts.yaml", APP);
    f.manifest(
        "apps/app.env",
        &format!("# settings\nMODE=from-file\nexport LEVEL=\"debug  # not a comment\"\nDB_PASSWORD='{SECRET}'\n"),
    );
    let v = f.tomo(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
    assert!(v.all().contains("`gone` is not a service of this app"), "{}", v.all());
    let plan = f.tomo(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    let json = f.tomo(&["plan", "--json"]);
    for r in [&plan, &json] {
        assert!(!r.all().contains(SECRET), "the env file's password was printed:\n{}", r.all());
    }
    f.apply();
    let gpu = inspect(&f.app("opts-gpu"));
    let (c, h) = (&gpu["Config"], &gpu["HostConfig"]);
    let env: Vec<&str> = c["Env"].as_array().unwrap().iter().filter_map(|e| e.as_str()).collect();
    assert!(env.contains(&"MODE=from-env"), "{env:?}");
    assert!(env.contains(&"LEVEL=debug  # not a comment"), "{env:?}");
    assert!(env.contains(&format!("DB_PASSWORD={SECRET}").as_str()), "{env:?}");
    let label = c["Labels"]["tomo.spec"].as_str().unwrap();
    assert!(!label.contains(SECRET) && label.contains("env_file apps/app.env"), "{label}");
    assert_eq!(h["Memory"], 512 << 20);
    assert_eq!(h["MemoryReservation"], 128 << 20);
    assert_eq!(h["CpuShares"], 512);
    assert_eq!(h["PidsLimit"], 100);
    assert_eq!(
        h["DeviceRequests"],
        serde_json::json!([
            {"Driver": "nvidia", "Count": 1, "DeviceIDs": [], "Capabilities": [["gpu", "utility"]], "Options": {}},
            {"Driver": "", "Count": 0, "DeviceIDs": ["0"], "Capabilities": [["gpu"]], "Options": {"x": "y"}},
        ])
    );
    assert_eq!(h["Runtime"], "runc");
    assert_eq!(h["SecurityOpt"], serde_json::json!(["no-new-privileges:true"]));
    assert_eq!(
        h["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}})
    );
    assert_eq!(h["ShmSize"], 64 << 20);
    assert_eq!(c["StopSignal"], "SIGINT");
    // As docker-compose 1.29 creates them: stdin open, a terminal, nothing attached.
    assert_eq!((&c["OpenStdin"], &c["Tty"], &c["StdinOnce"]), (&true.into(), &true.into(), &false.into()));
    assert_eq!(
        (&c["AttachStdin"], &c["AttachStdout"], &c["AttachStderr"]),
        (&false.into(), &false.into(), &false.into())
    );

    let all = inspect(&f.app("opts-all"));
    let h = &all["HostConfig"];
    assert_eq!(
        h["DeviceRequests"],
        serde_json::json!([{"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}])
    );
    assert_eq!(h["ShmSize"], 1 << 20);
    // Options left out are the Engine's defaults.
    let plain = inspect(&f.app("opts-plain"));
    let (c, h) = (&plain["Config"], &plain["HostConfig"]);
    assert_eq!((&h["MemoryReservation"], &h["CpuShares"], &h["Runtime"]), (&0.into(), &0.into(), &"runc".into()));
    assert!(h["DeviceRequests"].is_null() && h["SecurityOpt"].is_null(), "{h}");
    assert_eq!((&c["OpenStdin"], &c["Tty"]), (&false.into(), &false.into()));
    assert!(c.get("StopSignal").is_none_or(|s| s.is_null()), "{c}");
    f.assert_converged();

    // A changed password in the env file recreates that service, and says so without the value.
    f.manifest("apps/app.env", "MODE=from-file\nDB_PASSWORD=another-one-9911\n");
    let plan = f.tomo(&["plan"]);
    assert!(plan.stdout.contains("env.DB_PASSWORD: (env_file apps/app.env, changed)"), "{}", plan.all());
    assert!(plan.stdout.contains("env.LEVEL removed"), "{}", plan.all());
    assert!(!plan.all().contains("another-one-9911"), "{}", plan.all());
    assert!(plan.stdout.contains("1 to recreate"), "{}", plan.all());
}

#[test]
fn a_runtime_the_engine_lacks_is_a_clear_apply_error() {
    let f = Fleet::new();
    f.manifest(
        "apps/rt.yaml",
        "kind: App\nname: {p}-rt\nserver: local\nstate: stopped\nimage: {image}\ncommand: [sleep, '60']\nruntime: nvidia-none\n",
    );
    let r = f.tomo(&["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains("the Docker Engine of this server has no runtime `nvidia-none`")
            && r.all().contains("or change the service's `runtime`"),
        "{}",
        r.all()
    );
    assert!(!f.exists(&f.app("rt")));
}

/// A saved plan holds an env file's credentials by file name only: applying
/// it reads them again, and refuses the plan as stale when they changed.
#[test]
fn a_saved_plan_gets_env_file_credentials_again_and_goes_stale_with_them() {
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master pw");
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    let app = "kind: App\nname: {p}-saved\nserver: local\nstate: stopped\nimage: {image}\ncommand: [sleep, '60']\nenv_file: s.env\n";
    f.manifest("s.yaml", app);
    f.manifest("s.env", &format!("API_TOKEN={SECRET}\n"));
    let r = f.tomo(&["plan", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let saved = std::fs::read_to_string(f.tomo.path().join("plan.json")).unwrap();
    assert!(!saved.contains(SECRET) && saved.contains(r#""env_file": "s.env""#), "{saved}");
    let r = f.tomo(&["apply", "plan.json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let env = f.inspect(&f.app("saved"), "{{json .Config.Env}}");
    assert!(env.contains(&format!("API_TOKEN={SECRET}")), "{env}");
    f.assert_converged();

    f.manifest("s.env", "API_TOKEN=first-change-1234\n");
    assert_eq!(f.tomo(&["plan", "--out", "plan2.json"]).code, 0);
    f.manifest("s.env", "API_TOKEN=second-change-5678\n");
    let id = f.id(&f.app("saved"));
    let r = f.tomo(&["apply", "plan2.json"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("the manifests changed since this plan was made"), "{}", r.stderr);
    assert_eq!(f.id(&f.app("saved")), id);
}

const COMPOSE: &str = r#"services:
  svc:
    image: {image}
    command: ["sleep", "3600"]
    environment: {MODE: from-env}
    env_file: [svc.env]
    stdin_open: true
    tty: true
    stop_signal: SIGINT
    shm_size: 64m
    security_opt: ["no-new-privileges:true"]
    logging: {driver: json-file, options: {max-size: 10m, max-file: "3"}}
    runtime: runc
    cpu_shares: 512
    pids_limit: 100
    deploy:
      resources:
        reservations:
          memory: 128m
          devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]
"#;

const TOMO: &str = r#"kind: App
name: {p}-cmp
server: local
state: stopped
image: {image}
command: ["sleep", "3600"]
env: {MODE: from-env}
env_file: svc.env
stdin_open: true
tty: true
stop_signal: SIGINT
shm_size: 64m
security_opt: ["no-new-privileges:true"]
logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
runtime: runc
resources:
  cpu_shares: 512
  pids: 100
  memory_reservation: 128m
  gpus: [{driver: nvidia, count: 1}]
"#;

const ENV_FILE: &str = "# settings\nMODE=from-file\nexport LEVEL=\"debug  # not a comment\"\nDB_PASSWORD='it\\'s a secret'\nQ=\"a\\nb\" # note\nEMPTY=\n";

/// The fields these options set, as docker-compose 1.29 creates them and as
/// tomo does from the same declarations.
#[test]
fn the_options_match_what_docker_compose_creates() {
    let mut f = Fleet::new();
    f.tomo.set_env("TOMO_MASTER_PASSWORD", "master pw");
    f.tomo.set_env("TOMO_SALT", "salt-0123456789");
    let dir = f.tomo.path().join("compose");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), COMPOSE.replace("{image}", crate::fleet::IMAGE)).unwrap();
    std::fs::write(dir.join("svc.env"), ENV_FILE).unwrap();
    let project = format!("{}cmp", f.prefix);
    let out = std::process::Command::new("docker-compose")
        .args(["-p", &project, "up", "--no-start"])
        .current_dir(&dir)
        .output()
        .expect("docker-compose runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    f.manifest("apps/cmp.yaml", TOMO);
    f.manifest("apps/svc.env", ENV_FILE);
    f.apply();
    let fields = |name: &str| {
        let v = inspect(name);
        let (c, h) = (&v["Config"], &v["HostConfig"]);
        let mut env: Vec<String> =
            c["Env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
        env.sort();
        let mut out = serde_json::json!({"Env": env});
        for k in ["OpenStdin", "Tty", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr", "StopSignal"] {
            out[k] = c[k].clone();
        }
        for k in [
            "ShmSize",
            "SecurityOpt",
            "LogConfig",
            "Runtime",
            "CpuShares",
            "PidsLimit",
            "MemoryReservation",
            "DeviceRequests",
        ] {
            out[k] = h[k].clone();
        }
        out
    };
    let compose = fields(&format!("{project}_svc_1"));
    let tomo = fields(&f.app("cmp"));
    assert_eq!(tomo, compose);
    assert_eq!(compose["MemoryReservation"], 128 << 20, "{compose}");
    let env = compose["Env"].to_string();
    assert!(env.contains(r#""DB_PASSWORD=it's a secret""#) && env.contains(r#""Q=a\nb""#), "{env}");
    let _ = std::process::Command::new("docker-compose").args(["-p", &project, "down"]).current_dir(&dir).output();
}
