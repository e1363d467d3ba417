//! Manifests: from files on disk to validated desired state.
pub mod raw;
pub mod schema;
pub mod yaml;
