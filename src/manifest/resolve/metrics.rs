//! `Settings.metrics`: the sampling interval, retention and alert rules
//! (each parsed once into a `model::alert::AlertRule`).

use super::{At, Resolver};
use crate::diag::FieldPath;
use crate::manifest::raw;
use crate::model::Duration;
use crate::model::alert::AlertRule;
use crate::model::metrics::{MetricsSettings, ROLLUP_SECONDS};

impl<'a> Resolver<'a> {
    pub(super) fn metrics_settings(&mut self, at: At<'a>, m: Option<&raw::RawMetricsSettings>) -> MetricsSettings {
        let d = MetricsSettings::default();
        let Some(m) = m else { return d };
        let path = FieldPath::root().key("metrics");
        let interval = self.duration(at, &path.key("interval"), m.interval.as_ref()).unwrap_or(d.interval);
        if !(1000..=3_600_000).contains(&interval.as_millis()) {
            self.push(
                at.err(&path.key("interval"), "out-of-range", "the metrics interval must be from 1s to 1h")
                    .help("e.g. `30s`"),
            );
        }
        let r = m.retention.clone().unwrap_or_default();
        let rpath = path.key("retention");
        let raw_retention = self.duration(at, &rpath.key("raw"), r.raw.as_ref()).unwrap_or(d.raw_retention);
        let rollup_retention = self.duration(at, &rpath.key("rollup"), r.rollup.as_ref()).unwrap_or(d.rollup_retention);
        let least = Duration::from_secs(ROLLUP_SECONDS as u64);
        for (key, v) in [("raw", raw_retention), ("rollup", rollup_retention)] {
            if v < least {
                self.push(
                    at.err(&rpath.key(key), "out-of-range", format!("retention.{key} must be at least 5m"))
                        .help("e.g. `48h` for raw samples, `30d` for rollups"),
                );
            }
        }
        let mut alerts = Vec::new();
        for (i, text) in m.alerts.iter().flatten().enumerate() {
            match AlertRule::parse(text) {
                Ok(rule) => alerts.push(rule),
                Err(why) => self.push(
                    at.err(&path.key("alerts").index(i), "invalid-alert", why)
                        .help("e.g. `disk_used > 90%`, `memory_available < 256m`, `container_restarts > 3 in 10m`"),
                ),
            }
        }
        MetricsSettings { interval, raw_retention, rollup_retention, alerts }
    }
}
