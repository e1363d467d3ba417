pub mod diag;
pub mod manifest;
