//! Tests of the metrics tables: samples stored, rolled up and expired
//! (bounded per call), and the firing alerts replaced as a whole.

use std::collections::HashMap;

use rusqlite::params;

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("tomo.db")).unwrap();
    (dir, s)
}

fn host(server: &str) -> Subject {
    Subject { server: server.into(), ..Subject::default() }
}

fn reading(server: &str, figure: Figure, value: f64, at: i64) -> Reading {
    Reading { subject: host(server), figure, value, at }
}

#[test]
fn samples_are_stored_rolled_up_and_expired() {
    let (_d, s) = store();
    let t0 = 1_800_000_000 - 1_800_000_000 % ROLLUP_SECONDS;
    // 20 minutes of 30 s samples: cpu 0.1, 0.2, ... repeating; another server alongside.
    for i in 0..40 {
        let at = t0 + i * 30;
        let cpu = 0.1 * (1 + i % 10) as f64;
        s.record_metrics(
            "a",
            at,
            &[reading("a", Figure::HostCpuRatio, cpu, at), reading("a", Figure::HostLoad1, 2.5, at)],
        )
        .unwrap();
        s.record_metrics("b", at, &[reading("b", Figure::HostCpuRatio, 0.5, at)]).unwrap();
    }
    let series = s.metric_series().unwrap();
    assert_eq!(series.len(), 3);
    let cpu = series.iter().find(|r| r.subject.server == "a" && r.figure == Figure::HostCpuRatio).unwrap();
    let wanted: HashMap<i64, Figure> = [(cpu.id, cpu.figure)].into();
    let raw = s.raw_points("a", &wanted, t0, t0 + 3600).unwrap();
    assert_eq!(raw[&cpu.id].len(), 40);
    assert_eq!(raw[&cpu.id][1], Point::raw(t0 + 30, 0.2));

    // Now is in the 5th bucket: 4 complete buckets are rolled up, and raw
    // samples before `raw_before` are expired only where rolled up.
    let now = t0 + 4 * ROLLUP_SECONDS + 10;
    let done = s.housekeep_metrics("a", now, t0 + 10 * ROLLUP_SECONDS, 0).unwrap();
    assert_eq!(done.buckets_rolled, 4);
    assert_eq!(done.samples_expired, 40);
    let rolled = s.rollup_points(cpu.id, cpu.figure, t0, now).unwrap();
    assert_eq!(rolled.len(), 4);
    assert_eq!(rolled[0], Point { at: t0, min: 0.1, avg: 0.55, max: 1.0 });
    // A second call has nothing new to roll.
    assert_eq!(s.housekeep_metrics("a", now, 0, 0).unwrap().buckets_rolled, 0);
    // Rollups expire too; server b untouched.
    let done = s.housekeep_metrics("a", now, 0, t0 + 2 * ROLLUP_SECONDS).unwrap();
    assert_eq!(done.rollups_expired, 4);
    assert_eq!(s.rollup_points(cpu.id, cpu.figure, t0, now).unwrap().len(), 2);
    assert_eq!(s.latest_metrics("b").unwrap().map(|(at, v)| (at, v.len())), Some((t0 + 39 * 30, 1)));
}

#[test]
fn expiry_is_bounded_per_call() {
    let (_d, s) = store();
    for i in 0..1200 {
        s.record_metrics("a", i * 30, &[reading("a", Figure::HostLoad1, 1.0, i * 30)]).unwrap();
    }
    let now = 1200 * 30;
    // Rolling up comes first, a few buckets at a time; the raw rows follow it.
    let mut expired = Vec::new();
    for _ in 0..20 {
        let d = s.housekeep_metrics("a", now, now, 0).unwrap();
        assert!(d.buckets_rolled <= BUCKETS_PER_CALL);
        assert!(d.samples_expired as i64 <= EXPIRE_ROWS_PER_CALL);
        expired.push(d.samples_expired);
    }
    assert_eq!(expired.iter().sum::<usize>(), 1200, "{expired:?}");
    assert_eq!(s.metric_row_counts().unwrap().1, 120);
}

#[test]
fn alerts_are_replaced_as_a_whole() {
    let (_d, s) = store();
    let a = AlertRow { rule: "cpu > 50%".into(), series: 1, value: 90.0, since: 5 };
    s.set_firing_alerts(std::slice::from_ref(&a)).unwrap();
    assert_eq!(s.firing_alerts().unwrap(), vec![a]);
    s.set_firing_alerts(&[]).unwrap();
    assert!(s.firing_alerts().unwrap().is_empty());
}

/// One host with 2 mounts and 20 containers: the readings of a round.
fn round(at: i64, i: i64) -> Vec<Reading> {
    let host = host("bench");
    let mut out = Vec::new();
    for f in Figure::ALL.iter().filter(|f| f.is_host()) {
        let devices: &[Option<&str>] =
            if matches!(f, Figure::HostFilesystemUsedBytes | Figure::HostFilesystemAvailBytes) {
                &[Some("/"), Some("/srv")]
            } else {
                &[None]
            };
        for d in devices {
            let subject = Subject { device: d.map(String::from), ..host.clone() };
            out.push(Reading { subject, figure: *f, value: 1e9 + (i * 4096 % 1_000_000) as f64, at });
        }
    }
    for c in 0..20 {
        let subject = Subject { app: Some(format!("app{c}")), service: Some("web".into()), ..host.clone() };
        for f in Figure::ALL.iter().filter(|f| !f.is_host()) {
            let v = match f.unit() {
                crate::model::metrics::Unit::Ratio => 0.01 * ((i + c) % 50) as f64,
                _ => 5e7 + ((i * 7919 + c * 104_729) % 10_000_000) as f64,
            };
            out.push(Reading { subject: subject.clone(), figure: *f, value: v, at });
        }
    }
    out
}

/// `cargo test --lib store::metrics::tests::bench -- --ignored --nocapture`:
/// storage per host-day with the defaults (30 s, a host and 20 containers),
/// and a 30-day history query of one figure.
#[test]
#[ignore]
fn bench_storage_and_query() {
    let (_d, s) = store();
    let day = 86_400;
    let t0 = 1_800_000_000 - 1_800_000_000 % day;
    let size = |s: &Store| {
        let c = s.conn();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let n = |p: &str| c.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0)).unwrap();
        (n("page_count") - n("freelist_count")) * n("page_size")
    };
    let before = size(&s);
    let started = std::time::Instant::now();
    for i in 0..2880 {
        let at = t0 + i * 30;
        s.record_metrics("bench", at, &round(at, i)).unwrap();
        if i % 10 == 0 {
            s.housekeep_metrics("bench", at, t0 - day, t0 - 30 * day).unwrap();
        }
    }
    while s.housekeep_metrics("bench", t0 + day + 600, t0 - day, t0 - 30 * day).unwrap().buckets_rolled > 0 {}
    let per_round = started.elapsed() / 2880;
    let (samples, rollups) = s.metric_row_counts().unwrap();
    let day_bytes = size(&s) - before;
    let values = round(0, 0).len();
    println!(
        "one host-day: {values} values a round, {samples} sample rows, {rollups} rollup rows, {:.2} MB (raw + rollups); store and housekeep {per_round:?} a round (debug build)",
        day_bytes as f64 / 1e6
    );
    // The rollups of one figure over 30 days (the other 29 days' rollups of this one series).
    let cpu = s.metric_series().unwrap().into_iter().find(|r| r.figure == Figure::HostCpuRatio).unwrap();
    {
        let c = s.conn();
        let mut st = c
            .prepare("INSERT OR IGNORE INTO metric_rollups (series, at, min, avg, max) VALUES (?1, ?2, 1, 2, 3)")
            .unwrap();
        for b in 0..(29 * day / ROLLUP_SECONDS) {
            st.execute(params![cpu.id, t0 - 29 * day + b * ROLLUP_SECONDS]).unwrap();
        }
    }
    let started = std::time::Instant::now();
    let points = s.rollup_points(cpu.id, cpu.figure, t0 - 29 * day, t0 + day).unwrap();
    let took = started.elapsed();
    println!("30-day query of one figure: {} points in {took:?}", points.len());
    assert!(points.len() >= 8640 - 1);
    assert!(day_bytes < 5_000_000, "{day_bytes} bytes per host-day");
}

#[test]
fn an_unread_round_keeps_its_reason_and_reads_as_empty() {
    let (_d, s) = store();
    let t0 = 1_800_000_000 - 1_800_000_000 % ROLLUP_SECONDS;
    s.record_metrics("a", t0, &[reading("a", Figure::HostCpuRatio, 0.5, t0)]).unwrap();
    s.record_unread("a", t0 + 30, "connecting: connection refused").unwrap();
    assert_eq!(s.latest_metrics("a").unwrap(), Some((t0 + 30, Vec::new())));
    assert_eq!(s.unread_reason("a", t0 + 30).unwrap().as_deref(), Some("connecting: connection refused"));
    assert_eq!(s.unread_reason("a", t0).unwrap(), None, "a round with values has no reason");
    let cpu = s.metric_series().unwrap().into_iter().find(|r| r.figure == Figure::HostCpuRatio).unwrap();
    let wanted: HashMap<i64, Figure> = [(cpu.id, cpu.figure)].into();
    assert_eq!(s.raw_points("a", &wanted, t0, t0 + 60).unwrap()[&cpu.id], vec![Point::raw(t0, 0.5)]);
    // Rolled up and expired like any other round.
    let done = s.housekeep_metrics("a", t0 + ROLLUP_SECONDS + 1, t0 + ROLLUP_SECONDS, 0).unwrap();
    assert_eq!((done.buckets_rolled, done.samples_expired), (1, 2));
    assert_eq!(s.rollup_points(cpu.id, cpu.figure, t0, t0 + 60).unwrap(), vec![Point::raw(t0, 0.5)]);
}
