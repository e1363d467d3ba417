//! `completion/complete`: names for the arguments of the prompts and the
//! resource templates, matched by prefix, at most 100 (with `total` and
//! `hasMore`), from the manifests and the store only (no server is asked).
//! An argument's name says what it completes (`app`, `service`, `server`,
//! `id`/`proposal`, `store`, `store_app`); other arguments of a prompt
//! (`image`) complete to nothing. An unknown prompt, template or argument
//! is an invalid-params error naming what exists.

use rmcp::ErrorData;
use rmcp::model::{CompleteRequestParams, CompleteResult, CompletionInfo, Reference};

use super::{prompts, resources};
use crate::engine::{Engine, NameKind};

/// The arguments of a reference, or why it names nothing.
fn arguments(reference: &Reference) -> Result<(String, Vec<String>), ErrorData> {
    match reference {
        Reference::Prompt(p) => {
            let names: Vec<String> = prompts::list().into_iter().map(|p| p.name).collect();
            let args = prompts::arguments(&p.name).ok_or_else(|| {
                ErrorData::invalid_params(
                    format!("there is no prompt `{}`; prompts: {}", p.name, names.join(", ")),
                    None,
                )
            })?;
            Ok((format!("prompt `{}`", p.name), args))
        }
        Reference::Resource(r) => {
            let args = match r.uri.as_str() {
                resources::APP_TEMPLATE => vec!["name".to_string()],
                resources::PROPOSAL_TEMPLATE => vec!["id".to_string()],
                other => {
                    return Err(ErrorData::invalid_params(
                        format!(
                            "there is no resource template `{other}`; templates: {}, {}",
                            resources::APP_TEMPLATE,
                            resources::PROPOSAL_TEMPLATE
                        ),
                        None,
                    ));
                }
            };
            Ok((format!("resource template `{}`", r.uri), args))
        }
        other => Err(ErrorData::invalid_params(
            format!("cannot complete for a `{}` reference; use ref/prompt or ref/resource", other.reference_type()),
            None,
        )),
    }
}

/// What an argument completes to; `None`: nothing (free text such as an image).
fn kind_of(reference: &Reference, argument: &str) -> Option<NameKind> {
    match (reference, argument) {
        (Reference::Resource(r), "name") if r.uri == resources::APP_TEMPLATE => Some(NameKind::App),
        (_, "app") => Some(NameKind::App),
        (_, "service") => Some(NameKind::Service),
        (_, "server") => Some(NameKind::Server),
        (_, "id" | "proposal") => Some(NameKind::Proposal),
        (_, "store" | "marketplace") => Some(NameKind::Store),
        (_, "store_app") => Some(NameKind::StoreApp),
        _ => None,
    }
}

pub fn complete(engine: &Engine, req: &CompleteRequestParams) -> Result<CompleteResult, ErrorData> {
    let (what, args) = arguments(&req.r#ref)?;
    let arg = &req.argument.name;
    if !args.contains(arg) {
        return Err(ErrorData::invalid_params(
            format!("`{arg}` is not an argument of {what}; its arguments: {}", args.join(", ")),
            None,
        ));
    }
    let Some(kind) = kind_of(&req.r#ref, arg) else {
        return Ok(CompleteResult::new(matching(Vec::new(), "")));
    };
    let context = req.context.as_ref().and_then(|c| c.arguments.as_ref());
    let given = |k: &str| context.and_then(|c| c.get(k)).map(String::as_str);
    let names = engine.names(kind, given("app"), given("store").or(given("marketplace")));
    Ok(CompleteResult::new(matching(names, &req.argument.value)))
}

/// The names starting with `prefix` (ASCII case ignored): the first
/// `CompletionInfo::MAX_VALUES`, how many there are, whether more remain.
pub fn matching(names: Vec<String>, prefix: &str) -> CompletionInfo {
    let prefix = prefix.to_ascii_lowercase();
    let found: Vec<String> = names.into_iter().filter(|n| n.to_ascii_lowercase().starts_with(&prefix)).collect();
    let total = found.len();
    let values: Vec<String> = found.into_iter().take(CompletionInfo::MAX_VALUES).collect();
    let mut info = CompletionInfo::default();
    info.values = values;
    info.total = Some(u32::try_from(total).unwrap_or(u32::MAX));
    info.has_more = Some(total > CompletionInfo::MAX_VALUES);
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ArgumentInfo;

    #[test]
    fn matches_by_prefix_and_caps_at_a_hundred() {
        let names = vec!["web".to_string(), "webmail".into(), "db".into()];
        let m = matching(names.clone(), "we");
        assert_eq!(m.values, ["web", "webmail"]);
        assert_eq!((m.total, m.has_more), (Some(2), Some(false)));
        assert_eq!(matching(names.clone(), "").values.len(), 3);
        assert_eq!(matching(names.clone(), "WEB").values, ["web", "webmail"]);
        assert!(matching(names, "x").values.is_empty());
        let many: Vec<String> = (0..250).map(|i| format!("app-{i:03}")).collect();
        let m = matching(many, "app-");
        assert_eq!(m.values.len(), 100);
        assert_eq!((m.total, m.has_more), (Some(250), Some(true)));
        assert_eq!(m.values[0], "app-000");
    }

    #[test]
    fn arguments_say_what_they_complete() {
        let prompt = Reference::for_prompt("deploy_app_safely");
        assert_eq!(kind_of(&prompt, "app"), Some(NameKind::App));
        assert_eq!(kind_of(&prompt, "server"), Some(NameKind::Server));
        assert_eq!(kind_of(&prompt, "image"), None);
        let apps = Reference::for_resource(resources::APP_TEMPLATE);
        assert_eq!(kind_of(&apps, "name"), Some(NameKind::App));
        assert_eq!(kind_of(&Reference::for_resource(resources::PROPOSAL_TEMPLATE), "id"), Some(NameKind::Proposal));
        assert!(arguments(&Reference::for_prompt("nope")).is_err());
        assert!(arguments(&Reference::for_resource("tomo://nope/{x}")).is_err());
        let (_, args) = arguments(&prompt).unwrap();
        assert!(args.contains(&"app".to_string()) && args.contains(&"image".to_string()));
        let _ = ArgumentInfo::new("app", "w");
    }
}
