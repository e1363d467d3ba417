pub mod diag;
pub mod manifest;
pub mod model;
pub mod store;
pub mod vault;
