//! What the daemon answers, as the CLI reads it: services and tasks
//! (`GET /services`, `GET /tasks`), networks (`GET /networks`) and the
//! answers to `create` and `update`. Only the fields the verbs show are
//! declared; the rest of each answer is ignored.
//!
//! These read-side views are the CLI's own until shoal-api has typed
//! Docker views of services, tasks and networks; they are kept in this one
//! module so that they can be swapped for those in one place.

use std::time::Duration;

use serde::Deserialize;
use shoal_api::{
    docker,
    service::{DEFAULT_UPDATE_MONITOR, ServiceSpec, TaskSpec, TaskState, UpdateConfig},
};

/// A service as `GET /services` and `GET /services/{id}` show it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceView {
    /// The service ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its version, for updates.
    #[serde(default)]
    pub version: docker::ObjectVersion,
    /// The spec as stored.
    pub spec: ServiceSpec,
    /// Published ports.
    #[serde(default)]
    pub endpoint: EndpointView,
    /// Task counts, when asked for with `status=true`.
    pub service_status: Option<ServiceStatusView>,
}

impl ServiceView {
    /// How long the tasks must stay up before the service counts as
    /// converged: the update config's monitor, docker's 5 s by default.
    pub fn monitor(&self) -> Duration {
        self.spec
            .update_config
            .as_ref()
            .map_or(DEFAULT_UPDATE_MONITOR, UpdateConfig::monitor)
    }

    /// The service's published ports as the managers resolved them
    /// (`Endpoint.Ports`), what docker's `ls` and `inspect --pretty` show.
    pub fn published_ports(&self) -> Vec<PortConfig> {
        self.endpoint.ports.clone().unwrap_or_default()
    }
}

/// A service's `Endpoint`: what the managers made of its endpoint spec.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointView {
    /// The published ports, numbers assigned.
    pub ports: Option<Vec<PortConfig>>,
}

/// A service's task counts.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceStatusView {
    /// Tasks running.
    pub running_tasks: u64,
    /// Tasks wanted.
    pub desired_tasks: u64,
}

/// A published port (Docker's `PortConfig`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortConfig {
    /// `tcp`, `udp` or `sctp`; empty for `tcp`.
    pub protocol: String,
    /// The port in the container.
    pub target_port: u32,
    /// The port on the nodes.
    pub published_port: u32,
    /// `ingress` or `host`; empty for `ingress`.
    pub publish_mode: String,
}

impl PortConfig {
    /// The protocol, `tcp` when none is given.
    pub fn protocol(&self) -> &str {
        if self.protocol.is_empty() {
            "tcp"
        } else {
            &self.protocol
        }
    }

    /// The publish mode, `ingress` when none is given.
    pub fn publish_mode(&self) -> &str {
        if self.publish_mode.is_empty() {
            "ingress"
        } else {
            &self.publish_mode
        }
    }
}

/// A task as `GET /tasks` shows it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskView {
    /// The task ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// RFC 3339.
    #[serde(default)]
    pub created_at: String,
    /// What it runs.
    #[serde(default)]
    pub spec: TaskSpec,
    /// Its service.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    /// Its node, once assigned.
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    /// Replicated services: the slot; 0 for global ones.
    #[serde(default)]
    pub slot: u64,
    /// What the node reports.
    pub status: TaskStatusView,
    /// What the managers want.
    pub desired_state: TaskState,
}

/// A task's observed status.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskStatusView {
    /// When the state was entered, RFC 3339.
    pub timestamp: String,
    /// The observed state.
    pub state: TaskState,
    /// Why it failed, if it did.
    pub err: String,
    /// Ports published on the task's node.
    pub port_status: PortStatusView,
}

/// A task's `PortStatus`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortStatusView {
    /// The ports published in host mode on the task's node.
    pub ports: Option<Vec<PortConfig>>,
}

/// `POST /services/create`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceCreated {
    /// The new service's ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// What the daemon warns about.
    #[serde(default, deserialize_with = "nullable_strings")]
    pub warnings: Vec<String>,
}

/// `POST /services/{id}/update`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceUpdated {
    /// What the daemon warns about.
    #[serde(default, deserialize_with = "nullable_strings")]
    pub warnings: Vec<String>,
}

/// Deserializes a JSON array of strings that may be `null`.
fn nullable_strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// A network as `GET /networks` and `GET /networks/{id}` show it, the
/// fields the CLI reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkView {
    /// The network ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Its name.
    pub name: String,
    /// `overlay`.
    #[serde(default)]
    pub driver: String,
    /// `swarm`.
    #[serde(default)]
    pub scope: String,
}

/// `POST /networks/create`'s answer.
#[derive(Debug, Deserialize)]
pub struct NetworkCreated {
    /// The new network's ID.
    #[serde(rename = "Id")]
    pub id: String,
}
