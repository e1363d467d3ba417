//! Compose files as tomo reads them for `tomo import compose`: the Compose
//! Specification's interpolation (`interpolate.rs`), pure and bounded.

pub mod interpolate;
