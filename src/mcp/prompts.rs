//! Prompts that guide an agent through tomo's safe ways of working.

use rmcp::ErrorData;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};

pub fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "deploy_app_safely",
            Some("Deploy or change an app: validate, plan, show the plan, then apply or propose"),
            Some(vec![
                PromptArgument::new("app").with_description("the app's name").with_required(true),
                PromptArgument::new("image").with_description("the image to run, e.g. nginx:1.27").with_required(false),
                PromptArgument::new("server").with_description("the server to run it on").with_required(false),
            ]),
        ),
        Prompt::new(
            "investigate_app",
            Some("Find out why an app is unhealthy: status, logs, stats, history"),
            Some(vec![
                PromptArgument::new("app").with_description("the app's name").with_required(true),
                PromptArgument::new("service")
                    .with_description("one service of the app to look at")
                    .with_required(false),
            ]),
        ),
    ]
}

fn arg(args: Option<&JsonObject>, name: &str) -> Option<String> {
    args.and_then(|a| a.get(name)).and_then(|v| v.as_str()).map(str::to_string)
}

/// The argument names of prompt `name`, if there is such a prompt.
pub fn arguments(name: &str) -> Option<Vec<String>> {
    list()
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| p.arguments.unwrap_or_default().into_iter().map(|a| a.name).collect())
}

pub fn get(name: &str, args: Option<&JsonObject>) -> Result<GetPromptResult, ErrorData> {
    let app = arg(args, "app").unwrap_or_else(|| "<app>".into());
    let text = match name {
        "deploy_app_safely" => {
            let image = arg(args, "image").map_or(String::new(), |i| format!(" with image `{i}`"));
            let server = arg(args, "server").map_or(String::new(), |s| format!(" on the server `{s}`"));
            format!(
                "Deploy the app `{app}`{image}{server} with tomo, safely:\n\
                 1. Call `app_get` for `{app}` to see whether it exists and what it declares; `server_list` for where it can run.\n\
                 2. Call `app_deploy` (new app) or `app_update` (existing one). This edits the manifests only and returns a diff and a plan; if the result says `proposed`, stop and tell the user the proposal id: an admin approves it.\n\
                 3. Show the user the diff and the plan text. Point out anything destructive (removals, recreated containers with volumes).\n\
                 4. Only after the user agrees, call `apply` with the plan's fingerprint. If apply says the plan changed, call `plan` again and show it.\n\
                 5. Call `app_status` for `{app}` and report its state and health."
            )
        }
        "investigate_app" => format!(
            "Investigate the app `{app}`{} with tomo, reading only:\n\
             1. `app_status` for `{app}`: state and health of each container.\n\
             2. `app_logs` for `{app}` (tail 200) and look for errors.\n\
             3. `app_stats` for CPU and memory; `app_history` for recent applies.\n\
             4. `status` for drift between the manifests and the servers.\n\
             Summarise what you found and propose a fix as a manifest change (`app_update`), never a direct change.",
            arg(args, "service").map_or(String::new(), |s| format!(" (its service `{s}` first)"))
        ),
        other => {
            return Err(ErrorData::invalid_params(
                format!("there is no prompt `{other}`; prompts: deploy_app_safely, investigate_app"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]))
}
