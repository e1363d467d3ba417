//! Transports: how tomo reaches a server. `docker` drives a Docker Engine
//! (the local socket now; over an SSH channel when remote servers land).
//! The only module that knows bollard. `engine::EngineApi` is what observe
//! and apply need from an Engine, whichever way it is reached.

pub mod datastream;
pub mod docker;
pub mod docker_exec;
pub mod docker_metrics;
pub mod docker_ops;
mod docker_registry;
mod docker_runopts;
pub mod docker_ssh;
pub mod engine;
pub mod git;
pub mod hostfs;
pub mod http;
mod netconf;
pub mod remotefile;
pub mod routes;
pub mod ssh;
