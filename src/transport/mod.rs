//! Transports: how tomo reaches a server. `docker` drives a Docker Engine
//! (the local socket now; over an SSH channel when remote servers land).
//! The only module that knows bollard.

pub mod docker;
pub mod docker_ops;
pub mod docker_ssh;
pub mod http;
pub mod routes;
pub mod ssh;
