//! The further run options of a container spec (`model::runopts`) in an
//! Engine API create body. Each is set only when written, so the body of a
//! service using none is what it was before they existed.

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig};

use crate::model::RunOptions;

/// Sets the options of `run` on `body` and its `host` config.
pub(super) fn add_run_options(run: &RunOptions, body: &mut ContainerCreateBody, host: &mut HostConfig) {
    host.memory_reservation = run.memory_reservation.map(|m| m.bytes() as i64);
    host.cpu_shares = run.cpu_shares.map(|c| c.min(i64::MAX as u64) as i64);
    host.pids_limit = run.pids;
    if !run.gpus.is_empty() {
        host.device_requests = Some(
            run.gpus
                .iter()
                .map(|g| DeviceRequest {
                    driver: Some(g.driver.clone().unwrap_or_default()),
                    count: Some(g.count.unwrap_or(0)),
                    device_ids: Some(g.device_ids.clone()),
                    capabilities: Some(g.capabilities.clone()),
                    options: Some(g.options.clone().into_iter().collect()),
                })
                .collect(),
        );
    }
    host.runtime = run.runtime.clone();
    if !run.security_opt.is_empty() {
        host.security_opt = Some(run.security_opt.clone());
    }
    host.log_config = run.logging.as_ref().map(|l| HostConfigLogConfig {
        typ: Some(l.driver.clone().unwrap_or_default()),
        config: Some(l.options.clone().into_iter().collect()),
    });
    host.shm_size = run.shm_size.map(|s| s.bytes().min(i64::MAX as u64) as i64);
    body.stop_signal = run.stop_signal.as_ref().map(|s| s.to_string());
    if run.stdin_open {
        body.open_stdin = Some(true);
    }
    if run.tty {
        body.tty = Some(true);
    }
}
