//! App data backups against a real Docker Engine on an SSH test host: the
//! restore drill (back up, destroy everything, restore into a fresh data
//! folder, apply, compare byte for byte) and stop mode's promise that the
//! app comes back when the copy fails (sshd killed mid-copy).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tomo::backup::{ArchiveWriter, BackupError, Header};
use tomo::engine::appdata::DataMode;
use tomo::error::Error;
use tomo::model::secret::SecretString;

use crate::fleet::Fleet;
use crate::hosts::TestHost;

const PASS: &str = "drill-passphrase-1";
/// The cipher OpenSSH is asked for in the AES-GCM peer measurement.
const GCM: &str = "aes128-gcm@openssh.com";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn engine(f: &Fleet) -> tomo::Engine {
    let env: BTreeMap<String, String> =
        [("DATA_DIRECTORY".to_string(), f.tomo.path().join("data").display().to_string())].into();
    let args = tomo::config::ConfigArgs { config: None, dir: Some(f.tomo.path().join("state")) };
    tomo::Engine::new(tomo::config::Config::load(&args, &env).unwrap())
}

fn sh(script: &str) {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Backs up `app`'s data into `file` with `mode`.
pub fn backup(
    f: &Fleet,
    app: &str,
    mode: DataMode,
    file: &Path,
) -> Result<Vec<tomo::engine::appdata::AppDataReport>, String> {
    let engine = engine(f);
    let installation = engine.store().unwrap().installation_id().unwrap();
    let out = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
    let writer = ArchiveWriter::create(out, &SecretString::new(PASS), Header::new(installation, 0)).unwrap();
    let (writer, reports) = rt()
        .block_on(engine.backup_app_data(&[app.to_string()], Some(mode), mode, writer))
        .map_err(|e| e.to_string())?;
    writer.finish().unwrap();
    Ok(reports)
}

/// Every entry under `root`: kind, mode, owner, size, and the SHA-256 of a
/// file's bytes or a link's target.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if m.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else {
                let (mut h, mut file, mut buf) =
                    (Sha256::new(), std::fs::File::open(&path).unwrap(), vec![0u8; 1 << 20]);
                loop {
                    let n = std::io::Read::read(&mut file, &mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                let sum = tomo::model::spec::hex(&h.finalize());
                format!("file {} {sum} sparse={}", m.len(), m.blocks() * 512 < m.len() / 2)
            };
            let mode = if m.file_type().is_symlink() { 0 } else { m.mode() & 0o7777 };
            out.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                format!("{what} {mode:o} {}:{}", m.uid(), m.gid()),
            );
        }
    }
    out
}

/// Known data: a 200 MiB file, a sparse file, links, odd names, modes and owners.
fn write_known_data(dir: &Path, big_mib: u32) {
    sh(&format!(
        r#"set -e; cd '{}'
        dd if=/dev/urandom of=big bs=1M count={big_mib} status=none
        truncate -s 1G sparse; printf x | dd of=sparse bs=1 seek=500000000 conv=notrunc status=none
        mkdir -p 'dir with spaces/inner'; printf 'spaces' > 'dir with spaces/a b c.txt'
        printf 'newline' > "$(printf 'line\nbreak')"
        ln -s big link-to-big; ln -s /nowhere/at/all dangling; ln big hard-link-to-big
        chmod 640 big; chown 1234:5678 big; chmod 2770 'dir with spaces'; chown 33:33 'dir with spaces/a b c.txt'
        chmod 400 "$(printf 'line\nbreak')"; chmod 751 ."#,
        dir.display()
    ));
}

fn app_yaml(bind: &Path) -> String {
    format!(
        "kind: App\nname: {{p}}-drill\nserver: h\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\nvolumes: [\"data:/data\", \"{}:/bind\"]\n",
        bind.display()
    )
}

/// The drill app deployed on a fresh SSH test host, its bind folder at
/// `bind` under the host's folder.
struct Drill {
    h: TestHost,
    f: Fleet,
    bind: PathBuf,
    app: String,
    volume: String,
    /// The volume's mountpoint.
    data: PathBuf,
}

fn deploy(bind: &str) -> Drill {
    let h = TestHost::new(true);
    let f = Fleet::new();
    let bind = h.dir.path().join(bind);
    f.manifest("s.yaml", &format!("{}---\n{}", h.server_yaml("h"), app_yaml(&bind)));
    f.apply();
    let (app, volume) = (f.app("drill"), format!("{}_data", f.app("drill")));
    let data = mountpoint(&h, &volume);
    Drill { h, f, bind, app, volume, data }
}

fn mountpoint(h: &TestHost, volume: &str) -> PathBuf {
    PathBuf::from(h.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", volume]))
}

fn running(h: &TestHost, container: &str) -> bool {
    h.docker(&["inspect", "-f", "{{.State.Running}}", container]) == "true"
}

#[test]
fn restore_drill_brings_back_volume_and_bind_folder_byte_for_byte() {
    let Drill { h, f, bind, app, volume, data } = deploy("bind folder");
    write_known_data(&data, 200);
    write_known_data(&bind, 8);
    let (before_volume, before_bind) = (snapshot(&data), snapshot(&bind));
    assert!(before_volume.len() >= 8 && before_volume.values().any(|v| v.contains("sparse=true")), "{before_volume:?}");

    let archive = f.tomo.path().join("drill.tomo-backup");
    let reports = backup(&f, &app, DataMode::Stop, &archive).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].members.len(), 2, "{reports:?}");
    assert!(reports[0].downtime_ms.is_some() && reports[0].stopped == vec![app.clone()], "{reports:?}");
    assert!(running(&h, &app), "the app runs again after the backup");
    let size = std::fs::metadata(&archive).unwrap().len();
    assert!(
        size > 200 * 1024 * 1024 && size < 300 * 1024 * 1024,
        "archive of {size} bytes (sparse file not kept sparse?)"
    );

    // Lose everything but the archive and the manifests.
    h.docker(&["rm", "-f", &app]);
    h.docker(&["volume", "rm", &volume]);
    for net in h.docker(&["network", "ls", "--format", "{{.Name}}"]).lines().filter(|n| n.starts_with(&f.prefix)) {
        h.docker(&["network", "rm", net]);
    }
    std::fs::remove_dir_all(&bind).unwrap();
    std::fs::remove_dir_all(f.tomo.path().join("data")).unwrap();

    // A wrong passphrase is refused before anything is made.
    let fresh = engine(&f);
    let wrong = rt().block_on(fresh.restore_app_data(&archive, &SecretString::new("nope"), &app, None, None, false));
    assert!(wrong.is_err());
    // So is another archive than the one planned (its fingerprint named).
    let other = "0".repeat(64);
    let pass = SecretString::new(PASS);
    let planned_another = rt().block_on(fresh.restore_app_data(&archive, &pass, &app, None, Some(&other), false));
    assert!(matches!(planned_another, Err(Error::Backup(BackupError::Changed(_)))), "{planned_another:?}");
    assert!(
        !bind.exists() && tomo_try(&h, &["volume", "inspect", &volume]).is_none(),
        "a refused restore made something"
    );
    let dry =
        rt().block_on(fresh.restore_app_data(&archive, &SecretString::new(PASS), &app, None, None, true)).unwrap();
    assert_eq!(dry.items.len(), 2);
    let fp = rt().block_on(fresh.restore_app_data(&archive, &pass, &app, None, Some(&dry.archive), true)).unwrap();
    assert_eq!((fp.archive.len(), &fp.archive), (64, &dry.archive), "the fingerprint it read is the one named");
    assert!(!bind.exists(), "a dry run changed something");
    let done =
        rt().block_on(fresh.restore_app_data(&archive, &SecretString::new(PASS), &app, None, None, false)).unwrap();
    assert_eq!(done.items.len(), 2, "{done:?}");
    drop(fresh);
    f.apply();
    assert!(running(&h, &app));
    let data = mountpoint(&h, &volume);
    assert_eq!(snapshot(&data), before_volume, "the volume differs after the restore");
    assert_eq!(snapshot(&bind), before_bind, "the bind folder differs after the restore");
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(inode(&data.join("big")), inode(&data.join("hard-link-to-big")), "hard links are kept");
    let seen = h.docker(&["exec", &app, "cat", "/bind/dir with spaces/a b c.txt"]);
    assert_eq!(seen, "spaces");
    assert_eq!(leftovers(&data), Vec::<String>::new());
    assert_eq!(leftovers(&bind), Vec::<String>::new());
}

/// Folders a restore put beside `target` and left there (`.tomo-…`).
fn leftovers(target: &Path) -> Vec<String> {
    std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tomo-"))
        .collect()
}

#[test]
fn a_damaged_archive_is_refused_with_the_app_and_its_data_untouched() {
    let Drill { h, f, bind, app, data, .. } = deploy("bind");
    std::fs::write(data.join("state"), "backed up").unwrap();
    sh(&format!("dd if=/dev/urandom of='{}/blob' bs=1M count=8 status=none", data.display()));
    std::fs::write(bind.join("file"), "bind backed up").unwrap();
    let archive = f.tomo.path().join("good.tomo-backup");
    backup(&f, &app, DataMode::Live, &archive).unwrap();
    std::fs::write(data.join("state"), "newer").unwrap();
    std::fs::write(bind.join("file"), "bind newer").unwrap();
    let started = || h.docker(&["inspect", "-f", "{{.State.StartedAt}}", &app]);
    let before = started();

    // Damage after every member's data (the contents list's frame), and a
    // cut end: found only at the end of a reading of the whole archive.
    let good = std::fs::read(&archive).unwrap();
    let mut flipped = good.clone();
    let at = flipped.len() - 10;
    flipped[at] ^= 1;
    let cut = good[..good.len() - 40].to_vec();
    // One engine on one runtime (its connection kept, as in `tomo serve`):
    // the copies it opened while checking must end with the refusal, not
    // linger on the connection.
    let one = engine(&f);
    let kept = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for (name, bytes) in [("flipped", flipped), ("cut", cut)] {
        let file = f.tomo.path().join(format!("{name}.tomo-backup"));
        std::fs::write(&file, bytes).unwrap();
        let err = kept
            .block_on(one.restore_app_data(&file, &SecretString::new(PASS), &app, None, None, false))
            .expect_err(name)
            .to_string();
        assert!(err.contains(&app), "{name}: {err}");
        assert_eq!(std::fs::read_to_string(data.join("state")).unwrap(), "newer", "{name}: the volume changed");
        assert_eq!(
            std::fs::read_to_string(bind.join("file")).unwrap(),
            "bind newer",
            "{name}: the bind folder changed"
        );
        assert_eq!(leftovers(&data), Vec::<String>::new(), "{name}: staged data left beside the volume");
        assert_eq!(leftovers(&bind), Vec::<String>::new(), "{name}: staged data left beside the bind folder");
        assert_eq!(started(), before, "{name}: the app was stopped or restarted");
        let ended = crate::hosts::wait_until(Duration::from_secs(10), || h.session_processes("sh").is_empty());
        assert!(ended.is_ok(), "{name}: copies opened ahead still wait: {:?}", h.session_processes("sh"));
    }
    drop(one);
    drop(kept);

    // The intact archive puts the backed-up state back, and leaves nothing beside.
    let engine = engine(&f);
    let done =
        rt().block_on(engine.restore_app_data(&archive, &SecretString::new(PASS), &app, None, None, false)).unwrap();
    assert_eq!(done.stopped, vec![app.clone()], "{done:?}");
    assert_eq!(std::fs::read_to_string(data.join("state")).unwrap(), "backed up");
    assert_eq!(std::fs::read_to_string(bind.join("file")).unwrap(), "bind backed up");
    assert_eq!(leftovers(&data), Vec::<String>::new());
    assert_eq!(leftovers(&bind), Vec::<String>::new());
    assert!(running(&h, &app));
    assert_ne!(started(), before, "the app was stopped for the swap and started again");

    // A bind folder missing on the server is left out of a backup; the
    // volume is still copied.
    std::fs::remove_dir_all(&bind).unwrap();
    let reports = backup(&f, &app, DataMode::Live, &f.tomo.path().join("nobind.tomo-backup")).unwrap();
    let members: Vec<&str> = reports.iter().flat_map(|r| r.members.iter().map(|(m, _)| m.as_str())).collect();
    assert_eq!(members.len(), 1, "{members:?}");
    assert!(members[0].contains("/volume/"), "{members:?}");
}

fn tomo_try(h: &TestHost, args: &[&str]) -> Option<String> {
    let mut all = vec!["-H".to_string(), format!("unix://{}", h.socket)];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = Command::new("docker").args(&all).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn stop_mode_brings_the_app_back_when_the_connection_dies_mid_copy() {
    let Drill { mut h, f, app, data, .. } = deploy("bind");
    sh(&format!("dd if=/dev/urandom of='{}/big' bs=1M count=600 status=none", data.display()));
    let archive = f.tomo.path().join("cut.tomo-backup");
    let started = Instant::now();
    let result = std::thread::scope(|s| {
        let job = s.spawn(|| backup(&f, &app, DataMode::Stop, &archive));
        // Wait until the copy is under way, check the app is down, then cut the connection.
        let under_way = crate::hosts::wait_until(Duration::from_secs(60), || {
            std::fs::metadata(&archive).is_ok_and(|m| m.len() > 16 * 1024 * 1024)
        });
        assert!(under_way.is_ok(), "the copy never started");
        assert!(!running(&h, &app), "stop mode copies with the app stopped");
        h.kill_sshd();
        std::thread::sleep(Duration::from_millis(1500));
        h.start_sshd();
        job.join().unwrap()
    });
    let err = result.expect_err("a copy cut short must fail the backup");
    assert!(err.contains(&app), "{err}");
    assert!(
        crate::hosts::wait_until(Duration::from_secs(5), || running(&h, &app)).is_ok(),
        "the app did not come back after the failed copy ({err})"
    );
    assert!(started.elapsed() < Duration::from_secs(90));
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Brings the machine to the same state before every timed run, the peer's
/// and tomo's. The page cache's dirty pages are written out, so that no
/// run pays for the writes of the one before it (the Engine's container
/// stop syncs the filesystem: a restore's stop would otherwise wait for the
/// gigabyte that the peer's `tar x` or the backup just wrote). Then a pause:
/// on a virtual machine that hands freed memory back to its host (free
/// page reporting, about 2 s after it is freed), a run that starts right
/// after a gigabyte was deleted writes into memory still at hand, and one
/// that starts later (a restore after its check) into memory the host must
/// give again, which costs the writer up to twice the CPU.
fn settle() {
    sh("sync");
    std::thread::sleep(Duration::from_secs(3));
}

/// `ssh` (OpenSSH) running `remote` on the host, timed; `cipher` forces one.
fn ssh_timed(h: &TestHost, remote: &str, stdin: Option<&Path>, cipher: Option<&str>) -> Duration {
    let mut c = Command::new("ssh");
    if let Some(cipher) = cipher {
        c.args(["-c", cipher]);
    }
    c.args([
        "-i",
        &h.key.display().to_string(),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ])
    .args(["-o", "LogLevel=ERROR", &format!("root@{}", h.addr), remote])
    .stdout(std::process::Stdio::null());
    if let Some(p) = stdin {
        c.stdin(std::fs::File::open(p).unwrap());
    }
    let t = Instant::now();
    let status = c.status().expect("ssh (openssh-client) runs");
    assert!(status.success(), "ssh {remote}");
    t.elapsed()
}

/// `cb test --test integration backup_drill::bench -- --ignored --nocapture`
/// (alone: it measures this process's peak memory).
#[test]
#[ignore = "benchmark: run alone"]
fn bench_one_gib_volume_over_ssh() {
    let Drill { h, f, app, data, .. } = deploy("bind");
    sh(&format!("dd if=/dev/urandom of='{}/big' bs=1M count=1024 status=none", data.display()));
    // `TOMO_BENCH_LINK=1gbit` (a `tc` rate) times both over a link of that
    // speed, each way, instead of the veth's own (no limit but the CPU).
    let link = std::env::var("TOMO_BENCH_LINK").ok();
    if let Some(rate) = &link {
        h.shape_link(rate);
    }
    let gib = 1024.0 * 1024.0 * 1024.0;
    let mp = data.display().to_string();
    // The peer, `ssh host tar …` from OpenSSH, with its default cipher and
    // with the AES-GCM that tomo's SSH client prefers; tomo is compared
    // with the faster of the two.
    let peer_out = |cipher| {
        settle();
        ssh_timed(&h, &format!("tar c -C '{mp}' . "), None, cipher)
    };
    let archive = f.tomo.path().join("bench.tomo-backup");
    let tar = f.tomo.path().join("plain.tar");
    sh(&format!("tar c -C '{mp}' . > '{}'", tar.display()));
    let target = h.dir.path().join("untar");
    let peer_in = |cipher| {
        sh(&format!("rm -rf '{0}'; mkdir -p '{0}'", target.display()));
        settle();
        ssh_timed(&h, &format!("tar x -C '{}'", target.display()), Some(&tar), cipher)
    };
    let engine = engine(&f);
    let mbs = |d: Duration| gib / d.as_secs_f64() / 1e6;
    let pct = |peer: Duration, tomo: Duration| 100.0 * peer.as_secs_f64() / tomo.as_secs_f64();
    // The machine's other load moves every figure by 2x and more from one
    // run to the next: each of tomo's runs is timed right after the peer's,
    // three times over, and the medians compared.
    let (mut outs, mut ins, mut ins_down) = (Vec::new(), Vec::new(), Vec::new());
    let rss_before = peak_rss_kib();
    let (mut rss, mut rss_restore) = (0, 0);
    // Like the peer's `tar x` into an empty folder, each restore goes into an
    // emptied volume (the drill's case: the data is lost), timed whole: the
    // archive's check, then the copy, with the app running (stopped for
    // the copy, started again after it, as a restore does) and with the
    // app already down (as in the drill, whose containers are gone).
    let restore_timed = |app_running: bool| {
        sh(&format!("find '{mp}' -mindepth 1 -delete"));
        let containers = h.docker(&["ps", "-q"]);
        let ids: Vec<&str> = containers.split_whitespace().collect();
        if !app_running {
            h.docker(&[&["stop"][..], &ids].concat());
        }
        settle();
        let t = Instant::now();
        let report = rt()
            .block_on(engine.restore_app_data(&archive, &SecretString::new(PASS), &app, None, None, false))
            .unwrap();
        let took = t.elapsed();
        if !app_running {
            h.docker(&[&["start"][..], &ids].concat());
        }
        assert_eq!(report.stopped.is_empty(), !app_running, "{report:?}");
        (took, report.check_ms, report.downtime_ms.unwrap_or(0))
    };
    for round in 1..=3 {
        let (base_out, gcm_out) = (peer_out(None), peer_out(Some(GCM)));
        // Like the peer's output, the archive starts out absent: replacing
        // the last round's gigabyte would time the freeing of its pages.
        let _ = std::fs::remove_file(&archive);
        settle();
        let t = Instant::now();
        backup(&f, &app, DataMode::Live, &archive).unwrap();
        let tomo_out = t.elapsed();
        if round == 1 {
            // The process's peak so far: the first backup's (no restore yet).
            rss = peak_rss_kib();
        }
        let (base_in, gcm_in) = (peer_in(None), peer_in(Some(GCM)));
        let (tomo_in, check_ms, down_ms) = restore_timed(true);
        if round == 1 {
            rss_restore = peak_rss_kib();
        }
        let (tomo_in_down, check_down_ms, _) = restore_timed(false);
        let (peer_out, peer_in) = (base_out.min(gcm_out), base_in.min(gcm_in));
        println!(
            "round {round}: backup: ssh tar c {:.0} MB/s (aes128-gcm {:.0}), tomo {:.0} MB/s ({:.0}% of the faster); \
             restore: ssh tar x {:.0} MB/s (aes128-gcm {:.0}); tomo, app running: {:.0} MB/s ({:.0}% of the faster; \
             check {check_ms} ms, then the app down {down_ms} ms); tomo, app down: {:.0} MB/s ({:.0}%; check {check_down_ms} ms)",
            mbs(base_out),
            mbs(gcm_out),
            mbs(tomo_out),
            pct(peer_out, tomo_out),
            mbs(base_in),
            mbs(gcm_in),
            mbs(tomo_in),
            pct(peer_in, tomo_in),
            mbs(tomo_in_down),
            pct(peer_in, tomo_in_down),
        );
        outs.push(pct(peer_out, tomo_out));
        ins.push(pct(peer_in, tomo_in));
        ins_down.push(pct(peer_in, tomo_in_down));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median of 3{}: backup {:.0}%, restore {:.0}% (app running) and {:.0}% (app down) of ssh tar's throughput; \
         peak RSS {} MiB after the first backup, {} MiB after the first restore (before {} MiB)",
        link.map(|r| format!(" (link shaped to {r})")).unwrap_or_default(),
        median(&mut outs),
        median(&mut ins),
        median(&mut ins_down),
        rss / 1024,
        rss_restore / 1024,
        rss_before / 1024
    );
    assert!(rss < 64 * 1024, "peak RSS {rss} KiB during the backup");
    assert!(rss_restore < 64 * 1024, "peak RSS {rss_restore} KiB during the restore");
}

/// Takes the immutable attribute off `file` when dropped (the test host's
/// folder can then be removed whatever the test's outcome).
pub(crate) struct Immutable(PathBuf);

impl Immutable {
    pub(crate) fn set(file: PathBuf) -> Immutable {
        sh(&format!("chattr +i '{}'", file.display()));
        Immutable(file)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A copy that fails while the next member is already queued for its own
/// copy ends the restore (the reading of the archive stops instead of
/// waiting for a copy that will never come): the error names the folder,
/// the folder after it is untouched, and the app runs again.
#[test]
fn a_restore_whose_copy_fails_ends_and_brings_the_app_back() {
    let h = TestHost::new(true);
    let f = Fleet::new();
    let (a, b) = (h.dir.path().join("a"), h.dir.path().join("b"));
    f.manifest(
        "s.yaml",
        &format!(
            "{}---\nkind: App\nname: {{p}}-two\nserver: h\nimage: {{image}}\ninit: true\ncommand: [\"sleep\", \"600\"]\nvolumes: [\"{}:/a\", \"{}:/b\"]\n",
            h.server_yaml("h"),
            a.display(),
            b.display()
        ),
    );
    f.apply();
    let app = f.app("two");
    // `a` (small, first in the archive) is read whole into the copy's
    // buffers at once, so the reading is on `b`'s data when `a`'s copy fails.
    std::fs::write(a.join("small"), "backed up").unwrap();
    sh(&format!("dd if=/dev/urandom of='{}/big' bs=1M count=16 status=none", b.display()));
    let archive = f.tomo.path().join("two.tomo-backup");
    backup(&f, &app, DataMode::Live, &archive).unwrap();
    std::fs::write(b.join("newer"), "kept").unwrap();
    // The copy into `a` cannot empty the folder: it fails before reading.
    let _locked = Immutable::set({
        let p = a.join("locked");
        std::fs::write(&p, "").unwrap();
        p
    });

    let (done, ended) = std::sync::mpsc::channel();
    let started = Instant::now();
    let restore = {
        let (engine, archive, app) = (engine(&f), archive.clone(), app.clone());
        std::thread::spawn(move || {
            let r = rt().block_on(engine.restore_app_data(&archive, &SecretString::new(PASS), &app, None, None, false));
            let _ = done.send(r.map(|_| ()).map_err(|e| e.to_string()));
        })
    };
    let result =
        ended.recv_timeout(Duration::from_secs(60)).expect("the restore did not end in 60 s after its copy failed");
    restore.join().unwrap();
    let err = result.expect_err("a failed copy must fail the restore");
    assert!(err.contains(&app) && err.contains(&a.display().to_string()), "{err}");
    assert!(err.contains("Operation not permitted"), "the server's reason is shown: {err}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(
        std::fs::read_to_string(b.join("newer")).unwrap(),
        "kept",
        "the folder after the failed copy was touched"
    );
    assert!(
        crate::hosts::wait_until(Duration::from_secs(5), || running(&h, &app)).is_ok(),
        "the app did not come back after the failed restore ({err})"
    );
}
