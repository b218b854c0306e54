//! Reads of the daemon that more than one verb makes: this node's swarm
//! state ([`swarm_info`]), node names ([`node_names`]), a service
//! ([`inspect_service`]) and the tasks matching filters ([`list_tasks`]).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use shoal_api::{Client, ClientError, docker};

use crate::{
    docker_error::DockerError,
    filters::{Filters, with_filters},
};

/// `GET /info`'s `Swarm` section.
pub async fn swarm_info(client: &Client) -> Result<docker::SwarmInfo> {
    let info: serde_json::Value = client.get_json("/info").await?;
    serde_json::from_value(info["Swarm"].clone()).context("reading /info")
}

/// Every node's name by node ID, as docker shows nodes: the name in its
/// spec, else its hostname.
pub async fn node_names(client: &Client) -> Result<BTreeMap<String, String>, DockerError> {
    let nodes: Vec<docker::Node> = client.get_json("/nodes").await?;
    Ok(nodes
        .into_iter()
        .map(|n| {
            let name = if n.spec.name.is_empty() {
                n.description.hostname
            } else {
                n.spec.name
            };
            (n.id, name)
        })
        .collect())
}

/// `GET /services/{id}`.
pub async fn inspect_service(
    client: &Client,
    service: &str,
) -> Result<docker::Service, ClientError> {
    client.get_json(&format!("/services/{service}")).await
}

/// The tasks matching `filters`.
pub async fn list_tasks(
    client: &Client,
    filters: &Filters,
) -> Result<Vec<docker::Task>, DockerError> {
    Ok(client.get_json(&with_filters("/tasks", filters)).await?)
}
