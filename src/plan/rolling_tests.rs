//! `rollout.strategy: one-at-a-time`: an app's servers one after the other.

use super::tests::{desired, empty, observed, plan_with};
use super::{PlanOptions, text};
use crate::model::RolloutStrategy;

const APP: &str = "kind: Server\nname: c\nhost: local\n---\nkind: App\nname: web\nservers: [b, c, a]\nimage: img:1\n";

#[test]
fn one_at_a_time_chains_the_servers_in_the_order_of_servers() {
    let d = desired(&format!("kind: Settings\nrollout:\n  strategy: one-at-a-time\n---\n{APP}"));
    assert_eq!(d.settings.rollout_strategy, RolloutStrategy::OneAtATime);
    let o = observed(&[("a", empty()), ("b", empty()), ("c", empty())]);
    let p = plan_with(&d, &o, &PlanOptions::default());
    let order: Vec<&str> = p.rolling[0].servers.iter().map(|s| s.as_str()).collect();
    assert_eq!(order, ["b", "c", "a"]);
    let rank = |s: &str| order.iter().position(|o| *o == s).expect("server");
    // Every action on a server waits for every action on the server before it.
    for a in &p.actions {
        let r = rank(a.server.as_str());
        for b in p.actions.iter().filter(|b| rank(b.server.as_str()) + 1 == r) {
            assert!(a.after.contains(&b.id), "{a:?} does not wait for {b:?}");
        }
    }
    let topo = super::graph::topo_order(&p).expect("no cycle");
    let servers: Vec<usize> = topo.iter().map(|i| rank(p.actions[*i].server.as_str())).collect();
    assert!(servers.windows(2).all(|w| w[0] <= w[1]), "{servers:?}");
    assert!(text::plan(&p).contains("rolling web: b → c → a"), "{}", text::plan(&p));
}

#[test]
fn all_at_once_is_the_default_and_keeps_servers_independent() {
    let d = desired(APP);
    assert_eq!(d.settings.rollout_strategy, RolloutStrategy::AllAtOnce);
    let o = observed(&[("a", empty()), ("b", empty()), ("c", empty())]);
    let p = plan_with(&d, &o, &PlanOptions::default());
    assert!(p.rolling.is_empty());
    for a in &p.actions {
        assert!(a.after.iter().all(|b| p.actions[*b].server == a.server));
    }
    assert!(!text::plan(&p).contains("rolling"));
    // Existing settings serialise as before: no new key.
    let json = serde_json::to_value(&d.settings).expect("json");
    assert!(json.get("rollout_strategy").is_none());
}
