//! The statuses of proposals and apply runs. The store keeps them as SQL
//! text; they are mapped to and from that text here, at the store boundary,
//! and a text that is none of them is an error, never a silent default.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// A text in the store that is no status of its kind.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} status `{text}` in the store")]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub text: String,
}

macro_rules! status {
    ($(#[$doc:meta])* $name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every status, in the order of its life.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The status a text names.
            pub fn parse(text: &str) -> Result<$name, UnknownStatus> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownStatus { kind: $kind, text: other.to_string() }),
                }
            }

            /// `a, b, c`: what `parse` accepts.
            pub fn names() -> String {
                $name::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                $name::parse(value.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

status!(
    /// Where a proposal stands.
    ProposalStatus, "proposal", {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        Applied => "applied",
        Failed => "failed",
        Stale => "stale",
    }
);

status!(
    /// How an apply run went.
    RunStatus, "run", {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Interrupted => "interrupted",
        // Stopped on request (a cancelled MCP call, SIGTERM): the actions
        // that had started finished, no other started.
        Cancelled => "cancelled",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_sql_and_unknown_text_is_an_error() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for s in ProposalStatus::ALL {
            let back: ProposalStatus = conn.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(back, *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in RunStatus::ALL {
            let back: RunStatus = conn.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(back, *s);
        }
        let bad = conn.query_row("SELECT 'pendnig'", [], |r| r.get::<_, ProposalStatus>(0)).unwrap_err();
        assert!(bad.to_string().contains("unknown proposal status `pendnig`"), "{bad}");
        assert!(RunStatus::parse("done").is_err());
        assert_eq!(ProposalStatus::names(), "pending, approved, rejected, applied, failed, stale");
    }
}
