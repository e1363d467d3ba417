//! How tool results reach the model: structured content on success, an
//! `isError` result with a readable message on failure. Engine errors are
//! rendered here once; manifest problems list `file:line:col: field: message
//! (help)` for each diagnostic.
//!
//! Tools spell their return type out as `Result<Json<T>, ToolError>`: rmcp's
//! macro derives the output schema from that shape, and an alias hides it.

use rmcp::model::{ContentBlock, IntoContents};

use crate::error::Error;

/// A failure the model should read.
#[derive(Debug)]
pub struct ToolError(pub String);

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.0)]
    }
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        let mut msg = e.to_string();
        if let Some(d) = e.diagnostics() {
            for d in d.iter() {
                msg.push_str(&format!("\n- {}: {d}", if d.is_error() { "error" } else { "warning" }));
            }
        }
        ToolError(msg)
    }
}

/// A usage error about one argument.
pub fn bad_arg(name: &str, msg: impl std::fmt::Display) -> ToolError {
    ToolError(format!("argument `{name}`: {msg}"))
}
