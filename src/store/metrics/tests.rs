use std::collections::HashMap;

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
