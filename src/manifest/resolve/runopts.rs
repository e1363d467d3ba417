//! A service's further run options (`model::runopts`): memory reservation,
//! CPU shares, process limit, GPUs, runtime, security options, logging,
//! `/dev/shm` size, stop signal, stdin and terminal.

use super::service::scalar_text;
use super::{At, Resolver};
use crate::diag::FieldPath;
use crate::manifest::raw;
use crate::model::runopts::SIGNAL_RULE;
use crate::model::values::SIZE_RULE;
use crate::model::*;

const GPU_HELP: &str = "write `gpus: all`, a count such as `gpus: 1`, or requests such as \
                        `gpus: [{driver: nvidia, count: 1, capabilities: [gpu]}]`";

impl<'a> Resolver<'a> {
    pub(super) fn run_options(&mut self, at: At<'a>, base: &FieldPath, s: &raw::RawService) -> RunOptions {
        let res = base.key("resources");
        let r = s.resources.clone().unwrap_or_default();
        let memory_reservation = self.size(at, &res.key("memory_reservation"), r.memory_reservation.clone());
        if let Some(p) = r.pids
            && (p == 0 || p < -1)
        {
            self.push(
                at.err(&res.key("pids"), "invalid-value", format!("pids must be above 0 (or -1: no limit), not {p}"))
                    .help("e.g. `pids: 200`"),
            );
        }
        let gpus = match &r.gpus {
            None => Vec::new(),
            Some(g) => self.gpus(at, &res.key("gpus"), g),
        };
        let shm_size = self.size(
            at,
            &base.key("shm_size"),
            s.shm_size.as_ref().map(|v| match v {
                raw::Scalar::Number(n) => n.to_string(),
                other => scalar_text(other),
            }),
        );
        let stop_signal = s.stop_signal.as_deref().and_then(|sig| match StopSignal::parse(sig) {
            Ok(sig) => Some(sig),
            Err(e) => {
                self.push(at.err(&base.key("stop_signal"), "invalid-signal", e).help(format!("write {SIGNAL_RULE}")));
                None
            }
        });
        let runtime = s.runtime.as_deref().and_then(|rt| {
            let ok = !rt.is_empty() && rt.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                self.push(
                    at.err(
                        &base.key("runtime"),
                        "invalid-value",
                        format!("`{}` is not a runtime name", rt.escape_default()),
                    )
                    .help("e.g. `runtime: nvidia` or `runtime: runc`"),
                );
            }
            ok.then(|| rt.to_string())
        });
        let security_opt = s.security_opt.clone().unwrap_or_default();
        for (i, opt) in security_opt.iter().enumerate() {
            if opt.is_empty() || opt.chars().any(|c| c.is_control()) {
                self.push(
                    at.err(&base.key("security_opt").index(i), "invalid-value", "an empty security option")
                        .help("e.g. `no-new-privileges:true` or `apparmor:unconfined`"),
                );
            }
        }
        let logging = s.logging.as_ref().map(|l| Logging {
            driver: l.driver.clone(),
            options: l.options.iter().flatten().map(|(k, v)| (k.clone(), scalar_text(v))).collect(),
        });
        RunOptions {
            memory_reservation,
            cpu_shares: r.cpu_shares,
            pids: r.pids,
            gpus,
            runtime,
            security_opt,
            logging,
            shm_size,
            stop_signal,
            stdin_open: s.stdin_open.unwrap_or(false),
            tty: s.tty.unwrap_or(false),
        }
    }

    fn size(&mut self, at: At<'a>, path: &FieldPath, text: Option<String>) -> Option<ByteSize> {
        match ByteSize::parse(&text?) {
            Ok(b) => Some(b),
            Err(e) => {
                self.push(at.err(path, "invalid-size", e).help(format!("write {SIZE_RULE}")));
                None
            }
        }
    }

    fn gpus(&mut self, at: At<'a>, path: &FieldPath, g: &raw::RawGpus) -> Vec<GpuRequest> {
        match g {
            raw::RawGpus::All(s) if s == "all" => vec![GpuRequest::count(-1)],
            raw::RawGpus::All(s) => {
                self.push(
                    at.err(path, "invalid-gpus", format!("`{}` is not `all` or a count", s.escape_default()))
                        .help(GPU_HELP),
                );
                Vec::new()
            }
            raw::RawGpus::Count(0) => {
                self.push(at.err(path, "invalid-gpus", "a count of 0 GPUs asks for none").help(GPU_HELP));
                Vec::new()
            }
            raw::RawGpus::Count(n) => vec![GpuRequest::count(i64::from(*n))],
            raw::RawGpus::One(r) => self.gpu_request(at, path, r).into_iter().collect(),
            raw::RawGpus::Many(list) => {
                list.iter().enumerate().filter_map(|(i, r)| self.gpu_request(at, &path.index(i), r)).collect()
            }
        }
    }

    fn gpu_request(&mut self, at: At<'a>, path: &FieldPath, r: &raw::RawGpuRequest) -> Option<GpuRequest> {
        let device_ids = r.device_ids.clone().unwrap_or_default();
        let count = match &r.count {
            None if device_ids.is_empty() => Some(-1),
            None => None,
            Some(raw::Scalar::String(s)) if s == "all" => Some(-1),
            Some(raw::Scalar::Number(n)) if n.as_u64().is_some_and(|n| (1..=1024).contains(&n)) => {
                n.as_i64().filter(|n| *n > 0)
            }
            Some(other) => {
                self.push(
                    at.err(
                        &path.key("count"),
                        "invalid-gpus",
                        format!("`{}` is not a count of GPUs", scalar_text(other).escape_default()),
                    )
                    .help("a number above 0, or `all`"),
                );
                return None;
            }
        };
        if r.count.is_some() && !device_ids.is_empty() {
            self.push(
                at.err(&path.key("device_ids"), "invalid-gpus", "`count` and `device_ids` exclude each other")
                    .help("name the devices, or say how many; not both"),
            );
            return None;
        }
        let capabilities = r.capabilities.clone().unwrap_or_else(|| vec!["gpu".to_string()]);
        if capabilities.is_empty() {
            self.push(
                at.err(&path.key("capabilities"), "invalid-gpus", "an empty list of capabilities")
                    .help("e.g. `capabilities: [gpu]` (the default)"),
            );
            return None;
        }
        Some(GpuRequest {
            driver: r.driver.clone(),
            count,
            device_ids,
            capabilities: vec![capabilities],
            options: r.options.clone().unwrap_or_default(),
        })
    }
}
