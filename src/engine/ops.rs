//! Direct operations: they act at once instead of through the manifests
//! (restart, logs, stats, engine facts, listings, image pruning, health).
//! Each takes the servers it needs from the manifests and runs per server in
//! parallel; a server that cannot be reached is reported, not fatal.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::rows::{ContainerRow, EngineFacts, ImageRow, Pruned, Stats};
use super::{Check, Engine};
use crate::error::{ConnectError, Known, NotFound, Noun, Result, Usage};
use crate::model::{App, ContainerObs, Desired, EnvValue, Name, labels};
use crate::plan::{PlanOptions, Scope};
use crate::transport::docker::DockerClient;

/// A result for one server, or why it could not be had.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PerServer<T> {
    pub server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One container of an app as it is now.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppContainer {
    pub server: String,
    pub service: String,
    pub container: String,
    pub id: String,
    pub state: String,
    /// healthy | unhealthy | starting | none
    pub health: String,
    pub image: String,
}

/// Log text of one container.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ContainerLogs {
    pub server: String,
    pub container: String,
    pub text: String,
}

impl Engine {
    /// The app, or a message naming the declared ones.
    pub fn app(&self, desired: &Desired, name: &str) -> Result<App> {
        let n = Name::parse(name).map_err(|e| Usage::invalid("app name", name, e))?;
        desired.apps.get(&n).cloned().ok_or_else(|| super::unknown(Noun::App, &n, desired.apps.keys()).into())
    }

    /// Docker clients of the named servers (all declared ones when empty).
    pub(super) async fn docker_clients(
        &self,
        desired: &Desired,
        servers: Vec<Name>,
    ) -> Result<Vec<(Name, std::result::Result<DockerClient, ConnectError>)>> {
        let opts = PlanOptions { scope: Scope { servers, ..Scope::default() }, ..PlanOptions::default() };
        self.check_scope(desired, &opts)?;
        Ok(self.clients(desired, &opts).await.into_iter().collect())
    }

    /// The containers tomo manages for `app`, on each of its servers.
    pub async fn app_containers(&self, app_name: &str) -> Result<Vec<PerServer<Vec<AppContainer>>>> {
        let desired = self.desired()?;
        let app = self.app(&desired, app_name)?;
        let clients = self.docker_clients(&desired, app.servers.clone()).await?;
        Ok(containers_of(&app, &clients).await.into_iter().map(|(per, _)| per).collect())
    }

    /// Runs `f` on each container of `app` (optionally one service), per server.
    pub(super) async fn on_app_containers<T, F, Fut>(
        &self,
        app_name: &str,
        service: Option<&str>,
        f: F,
    ) -> Result<Vec<PerServer<T>>>
    where
        F: Fn(DockerClient, AppContainer) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, String>>,
    {
        let desired = self.desired()?;
        let app = self.app(&desired, app_name)?;
        if let Some(s) = service
            && !app.services.keys().any(|k| k.as_str() == s)
        {
            let known = app.services.keys().map(|k| k.to_string()).collect();
            return Err(NotFound {
                kind: Noun::Service,
                name: s.to_string(),
                within: Some(format!("app `{app_name}`")),
                known: Known::List { label: "its services", names: known },
            }
            .into());
        }
        let clients = self.docker_clients(&desired, app.servers.clone()).await?;
        let found = containers_of(&app, &clients).await;
        let mut jobs = Vec::new();
        let mut out = Vec::new();
        for (per, client) in found {
            match (per.result, client) {
                (Some(containers), Some(client)) => {
                    for c in containers.into_iter().filter(|c| service.is_none_or(|s| c.service == s)) {
                        let (server, client) = (per.server.clone(), client.clone());
                        let fut = f(client, c);
                        jobs.push(async move { (server, fut.await) });
                    }
                }
                (_, _) => out.push(PerServer {
                    server: per.server,
                    result: None,
                    error: Some(per.error.unwrap_or_else(|| "no connection".into())),
                }),
            }
        }
        for (server, r) in futures_util::future::join_all(jobs).await {
            match r {
                Ok(v) => out.push(PerServer { server, result: Some(v), error: None }),
                Err(e) => out.push(PerServer { server, result: None, error: Some(e) }),
            }
        }
        Ok(out)
    }

    /// Restarts the app's containers (or one service's) now.
    pub async fn restart_app(&self, app: &str, service: Option<&str>) -> Result<Vec<PerServer<String>>> {
        self.on_app_containers(app, service, |client, c| async move {
            client.restart(&c.id, Duration::from_secs(10)).await.map(|_| c.container).map_err(|e| e.to_string())
        })
        .await
    }

    /// The newest log lines of the app's containers, with the values of its
    /// secrets and of every vault secret masked (see `redact` for what masking
    /// can and cannot catch).
    pub async fn app_logs(
        &self,
        app: &str,
        service: Option<&str>,
        tail: u32,
        since: i64,
    ) -> Result<Vec<PerServer<ContainerLogs>>> {
        let masker = Arc::new(self.masker(app)?);
        self.on_app_containers(app, service, |client, c| {
            let masker = masker.clone();
            async move {
                let text = client.logs(&c.id, tail, since).await.map_err(|e| e.to_string())?;
                Ok(ContainerLogs { server: c.server, container: c.container, text: masker.apply(&text) })
            }
        })
        .await
    }

    /// Masks the secret values of an app (vault and inline encrypted) and every vault secret.
    pub(super) fn masker(&self, app: &str) -> Result<crate::redact::Redactor> {
        let desired = self.desired()?;
        let app = self.app(&desired, app)?;
        let mut values: Vec<EnvValue> =
            app.services.values().flat_map(|s| crate::model::spec::secret_values(&s.env, &s.files)).collect();
        if let Ok(rows) = self.vault().and_then(|v| Ok(v.list()?)) {
            values.extend(rows.into_iter().filter_map(|r| Name::parse(&r.name).ok()).map(EnvValue::Secret));
        }
        let secrets = self.secrets();
        let revealed: Vec<_> = values.iter().filter_map(|v| secrets.reveal(v).ok()).collect();
        Ok(crate::redact::Redactor::new(revealed.iter().map(|s| s.expose())))
    }

    /// One resource sample of each of the app's running containers.
    pub async fn app_stats(&self, app: &str) -> Result<Vec<PerServer<Stats>>> {
        self.on_app_containers(app, None, |client, c| async move {
            client.stats(&c.id, &c.container).await.map(Stats::from).map_err(|e| e.to_string())
        })
        .await
    }

    /// Runs `f` on the Docker Engine of each named server (all when empty).
    async fn on_servers<T, F, Fut>(&self, servers: Vec<Name>, f: F) -> Result<Vec<PerServer<T>>>
    where
        F: Fn(DockerClient) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, crate::transport::docker::DockerError>>,
    {
        let desired = self.desired()?;
        let clients = self.docker_clients(&desired, servers).await?;
        let jobs = clients.into_iter().map(|(server, client)| {
            let fut = client.map(&f);
            async move {
                let r = match fut {
                    Ok(fut) => fut.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match r {
                    Ok(v) => PerServer { server: server.to_string(), result: Some(v), error: None },
                    Err(e) => PerServer { server: server.to_string(), result: None, error: Some(e) },
                }
            }
        });
        Ok(futures_util::future::join_all(jobs).await)
    }

    pub async fn docker_facts(&self, servers: Vec<Name>) -> Result<Vec<PerServer<EngineFacts>>> {
        self.on_servers(servers, |c| async move { c.facts().await.map(EngineFacts::from) }).await
    }

    pub async fn docker_containers(&self, servers: Vec<Name>) -> Result<Vec<PerServer<Vec<ContainerRow>>>> {
        self.on_servers(servers, |c| async move {
            c.all_containers().await.map(|l| l.into_iter().map(ContainerRow::from).collect())
        })
        .await
    }

    pub async fn docker_images(&self, servers: Vec<Name>) -> Result<Vec<PerServer<Vec<ImageRow>>>> {
        self.on_servers(
            servers,
            |c| async move { c.images().await.map(|l| l.into_iter().map(ImageRow::from).collect()) },
        )
        .await
    }

    /// Removes unused images and build cache (never volumes).
    pub async fn docker_prune(&self, servers: Vec<Name>, all: bool) -> Result<Vec<PerServer<Pruned>>> {
        self.on_servers(servers, |c| async move { c.prune(all).await.map(Pruned::from) }).await
    }

    /// `server test` on every named server (all when empty), in parallel.
    pub async fn health(&self, servers: Vec<Name>) -> Result<Vec<PerServer<Vec<Check>>>> {
        let desired = self.desired()?;
        let names: Vec<Name> = if servers.is_empty() { desired.servers.keys().cloned().collect() } else { servers };
        let jobs = names.iter().map(|n| async move {
            match self.test_server(n.as_str()).await {
                Ok(c) => PerServer { server: n.to_string(), result: Some(c), error: None },
                Err(e) => PerServer { server: n.to_string(), result: None, error: Some(e.to_string()) },
            }
        });
        Ok(futures_util::future::join_all(jobs).await)
    }
}

/// Each server's containers of `app` (one list call per server, no pulls),
/// with the client to act on them.
pub(super) async fn containers_of(
    app: &App,
    clients: &[(Name, std::result::Result<DockerClient, ConnectError>)],
) -> Vec<(PerServer<Vec<AppContainer>>, Option<DockerClient>)> {
    let lists = clients.iter().map(|(server, client)| async move {
        let server = server.to_string();
        let client = match client {
            Ok(c) => c,
            Err(e) => return (PerServer { server, result: None, error: Some(e.to_string()) }, None),
        };
        match client.app_containers(app.name.as_str()).await {
            Ok(list) => {
                let mine = list.iter().filter(|c| c.label(labels::APP) == Some(app.name.as_str())).map(row).collect();
                (PerServer { server, result: Some(mine), error: None }, Some(client.clone()))
            }
            Err(e) => (PerServer { server, result: None, error: Some(e.to_string()) }, None),
        }
    });
    futures_util::future::join_all(lists).await
}

fn row(c: &ContainerObs) -> AppContainer {
    AppContainer {
        server: c.label(labels::SERVER).unwrap_or_default().to_string(),
        service: c.label(labels::SERVICE).unwrap_or_default().to_string(),
        container: c.name.clone(),
        id: c.id.clone(),
        state: c.state.as_str().to_string(),
        health: c.health.map_or("none", |h| h.as_str()).to_string(),
        image: c.image.clone(),
    }
}
