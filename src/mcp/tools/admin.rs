//! Settings, authentication and audit tools.

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ChangeOut, bad_arg};
use crate::auth::{Identity, Role};
use crate::engine::{AuditEvent, AuditRecord, DocKind, SettingsEdit, Token};
use crate::mcp::output::ToolError;
use crate::mcp::{Peer, Tomo};
use crate::model::secret::SecretString;

/// How long a token from `auth_login` lasts.
const LOGIN_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

#[derive(Debug, Serialize, JsonSchema)]
pub struct SettingsOut {
    /// The Settings manifest as written (empty when there is none).
    pub system: Value,
    /// The values in effect, defaults included.
    pub effective: Value,
    /// Your own settings, kept in tomo's store.
    pub user: Map<String, Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdateArgs {
    /// Fields of the Settings manifest to set (null removes one), e.g. `{"parallelism": 8, "mcp": {"require_approval": "all"}}`. A manifest change: planned, and proposed when it needs approval.
    #[serde(default)]
    pub system: Option<Map<String, Value>>,
    /// Your own settings to set (null removes one); written at once.
    #[serde(default)]
    pub user: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SettingsUpdateOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<ChangeOut>,
    /// Your settings after the update.
    pub user: Map<String, Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginArgs {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LogoutOut {
    pub logged_out: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WhoamiOut {
    pub user: String,
    pub role: Role,
    pub permissions: Vec<String>,
    /// How this connection authenticated: `token` or `stdio`.
    pub via: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditArgs {
    /// How many entries, newest first (default 50, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub category: String,
    pub action: String,
    pub target: String,
    /// The call's arguments, secrets redacted.
    pub arguments: Value,
    /// ok | error | refused
    pub result: String,
    pub detail: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditOut {
    pub entries: Vec<AuditEntry>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(a: AuditRecord) -> Self {
        AuditEntry {
            id: a.id,
            at: a.at,
            actor: a.actor.unwrap_or_default(),
            role: a.role.unwrap_or_default(),
            category: a.category,
            action: a.action,
            target: a.target.unwrap_or_default(),
            arguments: a.arguments.unwrap_or_else(|| Value::Object(Map::new())),
            result: a.result,
            detail: a.detail.unwrap_or_default(),
        }
    }
}

impl Tomo {
    fn audit_of(&self, categories: &[&str], a: &AuditArgs) -> Result<Json<AuditOut>, ToolError> {
        let limit = a.limit.unwrap_or(50);
        if limit == 0 || limit > 1000 {
            return Err(bad_arg("limit", format!("{limit} is out of range; give 1 to 1000")));
        }
        let rows = self.engine().audit_events(Some(categories), limit)?;
        Ok(Json(AuditOut { entries: rows.into_iter().map(Into::into).collect() }))
    }
}

/// The longest name of one's own setting.
const MAX_SETTING_NAME: usize = 64;
/// The largest value of one's own setting (as JSON).
const MAX_SETTING_BYTES: usize = 16 * 1024;
/// How many settings one user may keep.
const MAX_SETTINGS: usize = 64;

/// One's own settings are bounded in name, size and number.
fn check_user_settings(current: &Map<String, Value>, update: &Map<String, Value>) -> Result<(), ToolError> {
    for (k, v) in update {
        if k.is_empty() || k.len() > MAX_SETTING_NAME {
            return Err(bad_arg("user", format!("setting names are 1 to {MAX_SETTING_NAME} bytes long")));
        }
        let size = v.to_string().len();
        if size > MAX_SETTING_BYTES {
            return Err(bad_arg(
                &format!("user.{k}"),
                format!("{size} bytes is too large; a setting holds at most {MAX_SETTING_BYTES} bytes of JSON"),
            ));
        }
    }
    let mut names: std::collections::BTreeSet<&String> = current.keys().collect();
    for (k, v) in update {
        if v.is_null() {
            names.remove(k);
        } else {
            names.insert(k);
        }
    }
    if names.len() > MAX_SETTINGS {
        return Err(bad_arg("user", format!("{} settings is too many; keep at most {MAX_SETTINGS}", names.len())));
    }
    Ok(())
}

#[tool_router(router = admin_tools, vis = "pub(super)")]
impl Tomo {
    /// System settings (the Settings manifest, and the values in effect) and your own settings.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn settings_get(&self, Extension(who): Extension<Identity>) -> Result<Json<SettingsOut>, ToolError> {
        let desired = self.engine().desired()?;
        let system = self.engine().document(DocKind::Settings, "settings")?.map_or(Value::Object(Map::new()), |d| d.2);
        let mut effective = serde_json::to_value(&desired.settings).unwrap_or_default();
        if let Some(m) = effective.as_object_mut() {
            m.remove("origin");
        }
        let user = self.engine().user_settings(&who.user)?;
        Ok(Json(SettingsOut { system, effective, user }))
    }

    /// Changes system settings (a Settings manifest change: planned, or proposed) and/or your own settings (at once).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn settings_update(
        &self,
        Extension(who): Extension<Identity>,
        Parameters(a): Parameters<SettingsUpdateArgs>,
    ) -> Result<Json<SettingsUpdateOut>, ToolError> {
        if a.system.is_none() && a.user.is_none() {
            return Err(bad_arg("system", "give `system` and/or `user` settings to change"));
        }
        let mut system = None;
        if let Some(fields) = a.system {
            let fields = fields.into_iter().map(|(k, v)| (k, Some(v).filter(|v| !v.is_null()))).collect();
            system = Some(self.engine().edit_settings(SettingsEdit { fields }, &who).await?.into());
        }
        if let Some(user) = &a.user {
            check_user_settings(&self.engine().user_settings(&who.user)?, user)?;
            for (k, v) in user {
                self.engine().set_user_setting(&who.user, k, v)?;
            }
            let arguments = crate::mcp::policy::redact(&Value::Object(user.clone()));
            self.engine()
                .audit(&who, AuditEvent::new("settings", "user-settings").target(&who.user).arguments(arguments));
        }
        let user = self.engine().user_settings(&who.user)?;
        Ok(Json(SettingsUpdateOut { system, user }))
    }

    /// Logs in with a user name and password and returns a bearer token for the HTTP endpoint (valid 12 hours). Failed logins are slowed down, then locked for a while.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn auth_login(
        &self,
        Extension(peer): Extension<Peer>,
        Parameters(a): Parameters<LoginArgs>,
    ) -> Result<Json<Token>, ToolError> {
        let password = SecretString::new(a.password);
        Ok(Json(self.engine().login(&a.username, &password, &peer.0, LOGIN_TTL).await?))
    }

    /// Revokes the token this connection uses.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn auth_logout(&self, Extension(who): Extension<Identity>) -> Result<Json<LogoutOut>, ToolError> {
        self.engine().logout(&who).map_err(ToolError::from)?;
        Ok(Json(LogoutOut { logged_out: true }))
    }

    /// Who you are to tomo: user, role and its permissions.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn auth_whoami(&self, Extension(who): Extension<Identity>) -> Result<Json<WhoamiOut>, ToolError> {
        Ok(Json(WhoamiOut {
            permissions: who.role.permissions().into_iter().map(String::from).collect(),
            via: if who.session.is_some() { "token" } else { "stdio" }.into(),
            user: who.user,
            role: who.role,
        }))
    }

    /// Audit log of changes to manifests and settings (who, when, what, result), newest first.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn audit_settings(&self, Parameters(a): Parameters<AuditArgs>) -> Result<Json<AuditOut>, ToolError> {
        self.audit_of(&["manifest", "settings", "tool", "apply"], &a)
    }

    /// Audit log of logins, logouts, failures and refused calls, newest first.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn audit_auth(&self, Parameters(a): Parameters<AuditArgs>) -> Result<Json<AuditOut>, ToolError> {
        self.audit_of(&["auth"], &a)
    }
}
