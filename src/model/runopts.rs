//! A container's further run options: memory reservation, CPU shares, process
//! limit, GPUs, runtime, security options, log driver, `/dev/shm` size, stop
//! signal, stdin and terminal.
//!
//! Held together in `RunOptions`, which `Service` and `ContainerSpec` carry
//! flattened: every field is left out of the serialised form when unset, so
//! a service using none of them serialises (and hashes) as before they
//! existed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ByteSize;

/// The options, each `None`, empty or false unless written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunOptions {
    /// Soft memory limit (`HostConfig.MemoryReservation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<ByteSize>,
    /// Relative CPU weight (`HostConfig.CpuShares`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// Most processes (`HostConfig.PidsLimit`; -1 for no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// Device requests (`HostConfig.DeviceRequests`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuRequest>,
    /// The container runtime (`HostConfig.Runtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<StopSignal>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl RunOptions {
    pub fn is_empty(&self) -> bool {
        *self == RunOptions::default()
    }
}

/// One device request, as Docker takes it. `count` -1 is all devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    /// Sets of capabilities, any one of which a device must have all of.
    pub capabilities: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl GpuRequest {
    /// `count` GPUs (-1: all) with the `gpu` capability, as `--gpus` and compose ask.
    pub fn count(count: i64) -> GpuRequest {
        GpuRequest {
            driver: None,
            count: Some(count),
            device_ids: Vec::new(),
            capabilities: vec![vec!["gpu".to_string()]],
            options: BTreeMap::new(),
        }
    }
}

/// The log driver and its options (values as strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// A signal, as written: `SIGTERM`, `TERM`, `SIGRTMIN+3` or a number 1-64.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StopSignal(String);

pub const SIGNAL_RULE: &str = "a signal name such as `SIGTERM`, `SIGINT` or `SIGQUIT`, or its number (1-64)";

const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM",
    "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH",
    "IO", "PWR",
];

impl StopSignal {
    pub fn parse(s: &str) -> Result<StopSignal, String> {
        let bad = || format!("`{}` is not a signal", s.escape_default());
        if let Ok(n) = s.parse::<u8>() {
            return if (1..=64).contains(&n) { Ok(StopSignal(s.to_string())) } else { Err(bad()) };
        }
        let name = s.strip_prefix("SIG").unwrap_or(s);
        let realtime = |base: &str| {
            name.strip_prefix(base).is_some_and(|rest| {
                rest.is_empty()
                    || rest
                        .strip_prefix(['+', '-'])
                        .and_then(|n| n.parse::<u8>().ok())
                        .is_some_and(|n| (1..=15).contains(&n))
            })
        };
        if SIGNALS.contains(&name) || realtime("RTMIN") || realtime("RTMAX") {
            Ok(StopSignal(s.to_string()))
        } else {
            Err(bad())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StopSignal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StopSignal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StopSignal::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        for ok in
            ["SIGTERM", "TERM", "SIGINT", "SIGQUIT", "SIGWINCH", "SIGRTMIN", "SIGRTMIN+3", "SIGRTMAX-2", "9", "64"]
        {
            let s = StopSignal::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{ok}\""));
        }
        for bad in ["", "0", "65", "sigterm", "SIGFOO", "SIG", "SIGRTMIN+16", "-1", "TERM "] {
            assert!(StopSignal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unset_options_serialise_to_nothing() {
        assert_eq!(serde_json::to_string(&RunOptions::default()).unwrap(), "{}");
        assert!(RunOptions::default().is_empty());
    }
}
