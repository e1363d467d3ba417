//! `deploy:` of a service: resources (limits, reservations, GPUs); the
//! swarm parts are dropped.

use super::convert::Cx;
use super::report::Status;
use super::service::resources;
use super::values::{self, scalar_text};
use crate::manifest::raw::*;
use crate::manifest::yaml::{Node, Value};

pub(super) fn deploy(cx: &mut Cx<'_>, svc: &str, v: &Node, s: &mut RawService) {
    for (k, n) in values::map(cx, v, "deploy") {
        let key = format!("deploy.{}", k.name);
        match k.name.as_str() {
            "resources" => resources_of(cx, svc, n, s),
            "replicas" if scalar_text(n).as_deref() == Some("1") => {
                cx.entry(svc, &key, Status::Mapped, "one container")
            }
            "mode" if n.as_str() == Some("replicated") => cx.entry(svc, &key, Status::Mapped, ""),
            "replicas" | "mode" | "placement" | "endpoint_mode" | "update_config" | "rollback_config"
            | "restart_policy" | "labels" => {
                cx.entry(svc, &key, Status::Dropped, "swarm only; tomo runs one container per service")
            }
            other => {
                cx.error(k.span, "compose-unknown-key", format!("unknown deploy key `{other}`"));
            }
        }
    }
}

fn resources_of(cx: &mut Cx<'_>, svc: &str, v: &Node, s: &mut RawService) {
    for (k, n) in values::map(cx, v, "resources") {
        let limits = match k.name.as_str() {
            "limits" => true,
            "reservations" => false,
            other => {
                cx.error(k.span, "compose-unknown-key", format!("unknown resources key `{other}`"));
                continue;
            }
        };
        for (rk, rv) in values::map(cx, n, &k.name) {
            let key = format!("deploy.resources.{}.{}", k.name, rk.name);
            let (status, note) = match (limits, rk.name.as_str()) {
                (true, "memory") => {
                    resources(s).memory = values::string(cx, rv);
                    (Status::Mapped, "→ resources.memory")
                }
                (true, "cpus") => {
                    resources(s).cpus = values::float(cx, rv);
                    (Status::Mapped, "→ resources.cpus")
                }
                (true, "pids") => {
                    resources(s).pids = values::int(cx, rv);
                    (Status::Mapped, "→ resources.pids")
                }
                (false, "memory") => {
                    resources(s).memory_reservation = values::string(cx, rv);
                    (Status::Mapped, "→ resources.memory_reservation")
                }
                (false, "devices") => {
                    resources(s).gpus = gpu_requests(cx, rv);
                    (Status::Mapped, "→ resources.gpus")
                }
                (false, "cpus") => (Status::Dropped, "Docker has no CPU reservation (compose does not pass it either)"),
                (_, "generic_resources") => (Status::Dropped, "swarm only"),
                (_, other) => {
                    cx.error(rk.span, "compose-unknown-key", format!("unknown resources key `{other}`"));
                    continue;
                }
            };
            cx.entry(svc, &key, status, note);
        }
    }
}

/// Device requests (`capabilities`, `count`, `device_ids`, `driver`,
/// `options`); without `count` or `device_ids`, all devices, as compose does.
pub(super) fn gpu_requests(cx: &mut Cx<'_>, v: &Node) -> Option<RawGpus> {
    let Value::Seq(items) = &v.value else {
        cx.error(v.span, "compose-type", "expected a list of device requests");
        return None;
    };
    let mut out = Vec::new();
    for n in items {
        let mut r = RawGpuRequest::default();
        for (k, f) in values::map(cx, n, "devices") {
            match k.name.as_str() {
                "capabilities" => r.capabilities = values::strings(cx, f),
                "driver" => r.driver = values::string(cx, f),
                "device_ids" => r.device_ids = values::strings(cx, f),
                "count" => {
                    r.count = match scalar_text(f) {
                        Some(c) if c == "all" => Some(Scalar::String(c)),
                        _ => values::uint(cx, f).map(|c| Scalar::Number(c.into())),
                    }
                }
                "options" => {
                    let pairs = values::pairs(cx, f, '=').unwrap_or_default();
                    r.options = Some(pairs.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect());
                }
                other => {
                    cx.error(k.span, "compose-unknown-key", format!("unknown device request key `{other}`"));
                }
            }
        }
        if r.count.is_none() && r.device_ids.is_none() {
            r.count = Some(Scalar::String("all".into()));
        }
        out.push(r);
    }
    Some(match out.len() {
        1 => RawGpus::One(out.remove(0)),
        _ => RawGpus::Many(out),
    })
}
