//! Tests of the /proc and df parser: a full sample, rates against an
//! earlier reading, corrupted lines skipped, and any text parsed without panic.

use proptest::prelude::*;

use super::*;

const SAMPLE: &str = "tomo-metrics 1
== uptime
1000.50 1900.00
== stat
cpu  100 0 100 700 100 0 0 0 0 0
== net
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 5000 10 0 0 0 0 0 0 5000 10 0 0 0 0 0 0
  eth0: 1000 10 0 0 0 0 0 0 2000 10 0 0 0 0 0 0
vethab12: 9999 10 0 0 0 0 0 0 9999 10 0 0 0 0 0 0
== meminfo
MemTotal:        2000000 kB
MemFree:          500000 kB
MemAvailable:    1500000 kB
SwapTotal:        100000 kB
SwapFree:          60000 kB
== loadavg
0.50 0.25 0.10 1/100 1234
== mounts
/dev/sda1 / ext4 rw 0 0
tmpfs /run tmpfs rw 0 0
/dev/sda1 /var/lib/docker/overlay2/x/merged overlay rw 0 0
/dev/sdb1 /srv/my\\040data xfs rw 0 0
/dev/sda1 /home/bind ext4 rw 0 0
== df
Filesystem     1024-blocks    Used Available Capacity Mounted on
/dev/sda1          1000000  400000    600000      40% /
tmpfs               100000       0    100000       0% /run
/dev/sdb1          2000000 1000000   1000000      50% /srv/my data
/dev/sda1          1000000  400000    600000      40% /home/bind
== again
== uptime
1002.50 1901.00
== stat
cpu  200 0 200 1400 200 0 0 0 0 0
== net
    lo: 9000 10 0 0 0 0 0 0 9000 10 0 0 0 0 0 0
  eth0: 3000 10 0 0 0 0 0 0 6000 10 0 0 0 0 0 0
== end
";

fn value(r: &[Reading], f: Figure, device: Option<&str>) -> Option<f64> {
    // Rounded to 1e-9: rates are quotients.
    r.iter().find(|x| x.figure == f && x.subject.device.as_deref() == device).map(|x| (x.value * 1e9).round() / 1e9)
}

#[test]
fn a_sample_gives_every_host_figure() {
    let raw = HostRaw::parse(SAMPLE);
    assert!(raw.warnings.is_empty(), "{:?}", raw.warnings);
    let r = raw.readings("s1", 42, None);
    assert!(r.iter().all(|x| x.subject.server == "s1" && x.at == 42));
    // 800 of 1000 jiffies idle (idle + iowait) in the second.
    assert_eq!(value(&r, Figure::HostCpuRatio, None), Some(0.2));
    // eth0 only (not lo, not veth), over 2 s of uptime.
    assert_eq!(value(&r, Figure::HostNetworkReceiveBytesPerSecond, None), Some(1000.0));
    assert_eq!(value(&r, Figure::HostNetworkTransmitBytesPerSecond, None), Some(2000.0));
    assert_eq!(value(&r, Figure::HostLoad5, None), Some(0.25));
    assert_eq!(value(&r, Figure::HostMemoryAvailableBytes, None), Some(1_500_000.0 * 1024.0));
    assert_eq!(value(&r, Figure::HostMemoryUsedBytes, None), Some(500_000.0 * 1024.0));
    assert_eq!(value(&r, Figure::HostSwapUsedBytes, None), Some(40_000.0 * 1024.0));
    assert_eq!(value(&r, Figure::HostUptimeSeconds, None), Some(1002.5));
    // Real mounts only, each device once, escaped names read.
    let mounts: Vec<&str> = raw.mounts.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(mounts, ["/", "/srv/my data"]);
    assert_eq!(value(&r, Figure::HostFilesystemUsedBytes, Some("/")), Some(400_000.0 * 1024.0));
    assert_eq!(value(&r, Figure::HostFilesystemAvailBytes, Some("/srv/my data")), Some(1_000_000.0 * 1024.0));
}

#[test]
fn without_a_second_reading_rates_need_an_earlier_one() {
    let once = SAMPLE.split("== again").next().unwrap_or_default();
    let raw = HostRaw::parse(once);
    let r = raw.readings("s1", 1, None);
    assert_eq!(value(&r, Figure::HostCpuRatio, None), None);
    assert!(value(&r, Figure::HostLoad1, None).is_some());
    let before =
        Counters { uptime: Some(999.5), cpu: Some((0, 0)), net: Some((0, 0)), cpus: None, system_jiffies: None };
    let r = raw.readings("s1", 1, Some(&before));
    assert_eq!(value(&r, Figure::HostCpuRatio, None), Some(0.2));
    assert_eq!(value(&r, Figure::HostNetworkReceiveBytesPerSecond, None), Some(1000.0));
    // A reboot (counters lower) gives no rate rather than a wrong one.
    let later = Counters {
        uptime: Some(5000.0),
        cpu: Some((u64::MAX / 2, 0)),
        net: Some((u64::MAX, 0)),
        cpus: None,
        system_jiffies: None,
    };
    let r = raw.readings("s1", 1, Some(&later));
    assert_eq!(value(&r, Figure::HostCpuRatio, None), None);
    assert_eq!(value(&r, Figure::HostNetworkReceiveBytesPerSecond, None), None);
}

#[test]
fn corrupted_lines_are_skipped_with_a_warning() {
    let broken = SAMPLE
        .replace("cpu  100 0 100 700", "cpu  1x0 0 100 700")
        .replace("MemAvailable:    1500000 kB", "MemAvailable:    lots kB")
        .replace("  eth0: 1000 10 0 0 0 0 0 0 2000", "  eth0: 1000 x")
        .replace("/dev/sdb1          2000000", "/dev/sdb1          2m");
    let raw = HostRaw::parse(&broken);
    assert_eq!(raw.warnings.len(), 4, "{:?}", raw.warnings);
    let r = raw.readings("s1", 1, None);
    assert_eq!(value(&r, Figure::HostMemoryAvailableBytes, None), None);
    assert_eq!(value(&r, Figure::HostCpuRatio, None), None);
    assert!(value(&r, Figure::HostLoad1, None).is_some());
    assert_eq!(raw.mounts.len(), 1);
}

proptest! {
    #[test]
    fn any_text_parses_without_panic(text in "(== (uptime|stat|net|meminfo|loadavg|mounts|df|again)\n|[ -~]{0,60}\n){0,40}") {
        let raw = HostRaw::parse(&text);
        let r = raw.readings("s", 0, Some(&Counters { uptime: Some(1.0), cpu: Some((1, 1)), net: Some((1, 1)), cpus: None, system_jiffies: None }));
        prop_assert!(r.iter().all(|x| x.value.is_finite()));
    }

    #[test]
    fn mutated_samples_parse_without_panic(at in 0usize..2000, junk in "[ -~\\\\]{0,12}") {
        let cut = SAMPLE.char_indices().map(|(i, _)| i).nth(at % SAMPLE.len()).unwrap_or(0);
        let text = format!("{}{}{}", &SAMPLE[..cut], junk, &SAMPLE[cut..]);
        let raw = HostRaw::parse(&text);
        let r = raw.readings("s", 0, None);
        prop_assert!(r.iter().all(|x| x.value.is_finite()));
        if let Some(c) = r.iter().find(|x| x.figure == Figure::HostCpuRatio) {
            prop_assert!((0.0..=1.0).contains(&c.value));
        }
    }
}
