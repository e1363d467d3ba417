//! An app's and a service's `rollout:` overrides of `Settings.rollout`.
//! A `verify` longer than `health_timeout` is warned about at its line once
//! every document is read (the Settings document may come later).

use super::{At, Resolver, VerifyUse};
use crate::diag::{Diagnostic, FieldPath};
use crate::manifest::raw;
use crate::model::*;

impl<'a> Resolver<'a> {
    pub(super) fn app_rollout(&mut self, at: At<'a>, r: Option<&raw::RawRolloutSettings>) -> AppRollout {
        let Some(r) = r else { return AppRollout::default() };
        let base = FieldPath::root().key("rollout");
        AppRollout {
            verify: self.verify(at, &base, r.verify.as_ref()),
            on_failure: r.on_failure,
            max_downtime: self.duration(at, &base.key("max_downtime"), r.max_downtime.as_ref()),
            strategy: r.strategy,
        }
    }

    pub(super) fn service_rollout(
        &mut self,
        at: At<'a>,
        service: &FieldPath,
        r: Option<&raw::RawServiceRollout>,
    ) -> ServiceRollout {
        let Some(r) = r else { return ServiceRollout::default() };
        let base = service.key("rollout");
        ServiceRollout { verify: self.verify(at, &base, r.verify.as_ref()), on_failure: r.on_failure }
    }

    fn verify(&mut self, at: At<'a>, base: &FieldPath, v: Option<&String>) -> Option<Duration> {
        let path = base.key("verify");
        let d = self.duration(at, &path, v)?;
        self.verify_uses.push(VerifyUse { at, path, verify: d });
        Some(d)
    }

    /// Warns at each override whose `verify` is longer than `health_timeout`.
    pub(super) fn check_verify_overrides(&mut self, settings: &Settings) {
        let limit = settings.health_timeout;
        for u in std::mem::take(&mut self.verify_uses) {
            if u.verify.as_millis() > limit.as_millis() {
                self.push(
                    Diagnostic::warning(
                        "verify-over-health-timeout",
                        "`rollout.verify` is longer than `health_timeout`",
                    )
                    .at(u.at.file, u.at.span(&u.path))
                    .field(u.path.clone())
                    .help(format!(
                        "an apply waits for both; keep verify within health_timeout ({}s)",
                        limit.as_millis() / 1000
                    )),
                );
            }
        }
    }
}
