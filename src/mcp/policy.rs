//! Which permission each tool needs, and which calls are audited. One table,
//! checked against the tool router by a test, so a new tool cannot slip in
//! without a rule.

use serde_json::Value;

use crate::auth::Permission::{self, *};

/// The rule of one tool.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub permission: Permission,
    /// Calls change something (manifests, containers, sessions) and are audited.
    pub audit: bool,
}

const fn r(permission: Permission, audit: bool) -> Rule {
    Rule { permission, audit }
}

/// Every tool with its rule, in the order the docs list them.
pub const RULES: &[(&str, Rule)] = &[
    // reconcile
    ("validate", r(Read, false)),
    ("plan", r(Plan, false)),
    ("apply", r(Apply, true)),
    ("status", r(Read, false)),
    ("proposal_list", r(Read, false)),
    ("proposal_get", r(Read, false)),
    ("proposal_approve", r(Admin, true)),
    ("proposal_reject", r(Admin, true)),
    // servers
    ("server_list", r(Read, false)),
    ("server_get", r(Read, false)),
    ("server_add", r(Propose, true)),
    ("server_update", r(Propose, true)),
    ("server_remove", r(Propose, true)),
    ("server_test", r(Read, false)),
    // apps
    ("app_list", r(Read, false)),
    ("app_get", r(Read, false)),
    ("app_deploy", r(Propose, true)),
    ("app_update", r(Propose, true)),
    ("app_remove", r(Propose, true)),
    ("app_start", r(Propose, true)),
    ("app_stop", r(Propose, true)),
    ("app_restart", r(Operate, true)),
    ("app_status", r(Read, false)),
    ("app_logs", r(Read, false)),
    ("app_stats", r(Read, false)),
    ("app_history", r(Read, false)),
    ("app_rollback", r(Propose, true)),
    // docker
    ("docker_info", r(Read, false)),
    ("docker_containers", r(Read, false)),
    ("docker_images", r(Read, false)),
    ("docker_prune", r(Operate, true)),
    ("docker_install", r(Propose, true)),
    ("docker_update", r(Propose, true)),
    // settings
    ("settings_get", r(Read, false)),
    ("settings_update", r(Propose, true)),
    // auth
    ("auth_login", r(Read, false)),
    ("auth_logout", r(Read, false)),
    ("auth_whoami", r(Read, false)),
    // audit
    ("audit_settings", r(Read, false)),
    ("audit_auth", r(Read, false)),
    // health
    ("health_check", r(Read, false)),
    // market: stores
    ("market_repo_list", r(Read, false)),
    ("market_repo_add", r(Propose, true)),
    ("market_repo_remove", r(Propose, true)),
    ("market_sync", r(Operate, true)),
    // marketplace catalog
    ("market_search", r(Read, false)),
    ("market_app_get", r(Read, false)),
    ("market_categories", r(Read, false)),
    // marketplace install
    ("market_install", r(Propose, true)),
    ("market_installed", r(Read, false)),
    ("market_updates", r(Read, false)),
    ("market_upgrade", r(Propose, true)),
    // backup
    ("backup_create", r(Operate, true)),
    ("backup_list", r(Read, false)),
    ("backup_restore", r(Propose, true)),
    // logs (the engine audits a purge itself)
    ("logs_system", r(Read, false)),
    ("logs_app", r(Read, false)),
    ("logs_purge", r(Admin, false)),
    // monitoring
    ("metrics_system", r(Read, false)),
    ("metrics_server", r(Read, false)),
    ("metrics_app", r(Read, false)),
    ("metrics_history", r(Read, false)),
    ("metrics_summary", r(Read, false)),
];

pub fn rule(tool: &str) -> Option<Rule> {
    RULES.iter().find(|(n, _)| *n == tool).map(|(_, r)| *r)
}

/// Arguments fit for the audit log: values of fields that look secret, and
/// every environment value, become `***`.
pub fn redact(v: &Value) -> Value {
    fn secretish(k: &str) -> bool {
        let k = k.to_ascii_lowercase();
        ["password", "secret", "token", "key", "passphrase"].iter().any(|s| k.contains(s))
    }
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if k == "env" {
                        match v {
                            Value::Object(env) => {
                                Value::Object(env.keys().map(|k| (k.clone(), Value::String("***".into()))).collect())
                            }
                            _ => Value::String("***".into()),
                        }
                    } else if secretish(k) && !v.is_null() {
                        Value::String("***".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_exactly_one_rule() {
        let tools = crate::mcp::Tomo::tool_names();
        let mut rules: Vec<String> = RULES.iter().map(|(n, _)| n.to_string()).collect();
        rules.sort();
        assert_eq!(tools, rules);
    }

    #[test]
    fn redacts_secrets_and_env_values() {
        let v =
            serde_json::json!({"name": "web", "password": "hunter2", "env": {"A": "x"}, "nested": [{"api_key": "k"}]});
        let r = redact(&v);
        assert_eq!(
            r,
            serde_json::json!({"name": "web", "password": "***", "env": {"A": "***"}, "nested": [{"api_key": "***"}]})
        );
    }
}
