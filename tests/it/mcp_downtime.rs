//! `Settings.rollout.max_downtime` over MCP: a non-admin's change whose plan
//! would keep a service down longer becomes a proposal stating the downtime
//! (nothing written or applied), its direct `apply` is refused with the
//! same statement, and an admin's approval applies it.

use serde_json::json;

use crate::fleet::Fleet;
use crate::mcp::web;
use crate::mcp_client::Stdio;

#[test]
fn a_plan_over_max_downtime_is_a_proposal_stating_the_downtime_and_approval_applies_it() {
    let f = Fleet::new();
    f.manifest("settings.yaml", "kind: Settings\nrollout: {max_downtime: 1s}\n");
    web(&f, "a", "1");
    f.apply();
    let name = f.app("a");
    let id = f.id(&name);
    let file = f.tomo.path().join("state/apps/a.yaml");
    let before = std::fs::read_to_string(&file).unwrap();
    let mut op = Stdio::start(&f.tomo, "operator");
    // A direct `apply` of such a plan by the operator is refused, saying why.
    f.manifest("apps/a.yaml", &before.replace("A: \"1\"", "A: \"3\""));
    let plan = op.ok("plan", json!({}));
    let applied = op.call("apply", json!({"fingerprint": plan["fingerprint"]}));
    assert!(applied.is_error && applied.text.contains("over `rollout.max_downtime`"), "{}", applied.text);
    assert!(applied.text.contains("nothing was applied"), "{}", applied.text);
    assert_eq!(f.id(&name), id, "a refused apply changes nothing");
    std::fs::write(&file, &before).unwrap();
    // An env change recreates the service stop-first: ~5 s (no history yet) > 1 s.
    let r = op.ok("app_update", json!({"name": name, "env": {"A": "2"}}));
    assert_eq!(r["outcome"], "proposed", "{r}");
    let why = r["why"].as_str().unwrap();
    assert!(why.contains(&format!("downtime: ~5 s for 1 service ({name})")), "{r}");
    assert!(why.contains("rollout.max_downtime"), "{r}");
    assert_eq!(r["plan"]["over_max_downtime"], true, "{r}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "nothing was written");
    assert_eq!(f.id(&name), id, "nothing was applied");
    let proposal = r["proposal"].as_str().unwrap().to_string();
    let shown = op.ok("proposal_get", json!({"id": proposal}));
    assert_eq!(shown["proposal"]["status"], "pending", "{shown}");
    // The audit log keeps the reason with the proposal.
    let store = tomo::store::Store::open(&f.tomo.path().join("data/tomo.db")).unwrap();
    let audit = store.activities(Some("manifest"), 10).unwrap();
    let proposed = audit.iter().find(|a| a.action == "propose" && a.target.as_deref() == Some(proposal.as_str()));
    let detail = proposed.and_then(|a| a.detail.clone()).unwrap_or_default();
    assert!(detail.contains("downtime: ~5 s") && detail.contains("max_downtime"), "{audit:?}");
    // The operator cannot approve it.
    let refused = op.call("proposal_approve", json!({"id": proposal}));
    assert!(refused.is_error && refused.text.contains("`admin` permission"), "{}", refused.text);
    // An admin approves: the files are written and that plan applied.
    let mut admin = Stdio::start(&f.tomo, "admin");
    let done = admin.ok("proposal_approve", json!({"id": proposal}));
    assert_eq!(done["proposal"]["status"], "applied", "{done}");
    assert_ne!(f.id(&name), id, "the service was recreated");
    assert!(f.inspect(&name, "{{range .Config.Env}}{{println .}}{{end}}").contains("A=2"));
    assert_eq!(f.inspect(&name, "{{.State.Status}}"), "running");
}
