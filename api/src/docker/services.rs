//! Docker's `Service` and `Task` documents (`GET /services…`, `GET
//! /tasks…`) and the answers to `POST /services/create` and
//! `/services/{id}/update`: what shoald serves and what a client reads from
//! shoald or dockerd. Fields Docker may leave out default when read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ObjectVersion, is_default, nullable};
use crate::{
    network::NetworkSpec,
    service::{EndpointSpec, PortConfig, ServiceSpec, TaskSpec, TaskState},
    status::PublishedPortCounters,
};

/// `GET /services` item and `GET /services/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Service {
    /// Service ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Version, for `POST /services/{id}/update?version=`.
    #[serde(deserialize_with = "nullable")]
    pub version: ObjectVersion,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// The spec as the user sent it.
    #[serde(deserialize_with = "nullable")]
    pub spec: ServiceSpec,
    /// The spec before the last update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_spec: Option<ServiceSpec>,
    /// How the service is reached.
    #[serde(deserialize_with = "nullable")]
    pub endpoint: Endpoint,
    /// The progress of a rolling update (dockerd; shoal sets none yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
    /// Task counts, present when asked for (`GET /services?status=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_status: Option<ServiceStatus>,
    /// shoal's addition to `GET /services/{id}`: what the answering node's
    /// routing mesh counted for each of the service's published ports.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub mesh_counters: Vec<PublishedPortCounters>,
}

/// `Service.Endpoint`: the endpoint spec as sent, the published ports as
/// resolved, and the virtual IPs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Endpoint {
    /// `Spec.EndpointSpec` (empty when the spec has none).
    #[serde(deserialize_with = "nullable")]
    pub spec: EndpointSpec,
    /// The published ports, numbers allocated and defaults spelled out.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
    /// One per network, the ingress network's first.
    #[serde(
        rename = "VirtualIPs",
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub virtual_ips: Vec<EndpointVirtualIp>,
}

/// A service's virtual IP on one network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointVirtualIp {
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `addr/prefix`.
    pub addr: String,
}

/// `Service.UpdateStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateStatus {
    /// `updating`, `paused`, `completed`, `rollback_started`…
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub started_at: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub completed_at: String,
    /// Why it is in that state.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `Service.ServiceStatus`: what `docker service ls` shows as REPLICAS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceStatus {
    /// Tasks running (on a node that is not down) and meant to.
    pub running_tasks: u64,
    /// The replica count, or for a global service its tasks not yet told
    /// to stop.
    pub desired_tasks: u64,
    /// Tasks that exited with status 0.
    pub completed_tasks: u64,
}

/// `POST /services/create` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceCreateResponse {
    /// The new service's ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Warnings for the user.
    #[serde(deserialize_with = "nullable")]
    pub warnings: Vec<String>,
}

/// `POST /services/{id}/update` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceUpdateResponse {
    /// Warnings for the user.
    #[serde(deserialize_with = "nullable")]
    pub warnings: Vec<String>,
}

/// `GET /tasks` item and `GET /tasks/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Task {
    /// Task ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Version.
    #[serde(deserialize_with = "nullable")]
    pub version: ObjectVersion,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// A name (dockerd; shoal sets none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Task labels (shoal's are empty).
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// The service's task spec when the task was created.
    #[serde(deserialize_with = "nullable")]
    pub spec: TaskSpec,
    /// Its service.
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// Replicated services: the slot (1, 2, …); absent for global ones.
    #[serde(skip_serializing_if = "is_default")]
    pub slot: u64,
    /// Its node, once assigned.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// What was last observed.
    #[serde(deserialize_with = "nullable")]
    pub status: TaskStatus,
    /// What the managers want.
    pub desired_state: TaskState,
    /// Its address on each network, the ingress network's first.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub networks_attachments: Vec<NetworkAttachment>,
}

/// `Task.Status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskStatus {
    /// When the state was entered, RFC 3339.
    pub timestamp: String,
    /// The observed state.
    pub state: TaskState,
    /// What is happening, for humans.
    pub message: String,
    /// Why the task failed or was rejected.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub err: String,
    /// The container.
    #[serde(deserialize_with = "nullable")]
    pub container_status: ContainerStatus,
    /// The ports a running task publishes on its node (`host` mode), what
    /// `docker service ps` shows as PORTS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_status: Option<PortStatus>,
}

/// `TaskStatus.ContainerStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerStatus {
    /// The runtime's container ID.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// The container's main process, while it runs.
    #[serde(rename = "PID")]
    pub pid: u32,
    /// The exit status, once it exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

/// `TaskStatus.PortStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortStatus {
    /// Ports published on the task's node.
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<PortConfig>,
}

/// A task's attachment to a network, with its address there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAttachment {
    /// The network.
    #[serde(deserialize_with = "nullable")]
    pub network: AttachedNetwork,
    /// `addr/prefix`.
    #[serde(deserialize_with = "nullable")]
    pub addresses: Vec<String>,
}

/// The network of a [`NetworkAttachment`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttachedNetwork {
    /// The network's ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its spec as created (absent when the network is gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<NetworkSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_documents_parse() {
        // `GET /services?status=true` and `GET /tasks` items from dockerd
        // 28 (trimmed), with the fields shoal does not serve.
        let service: Service = serde_json::from_str(
            r#"{"ID":"9mnpnzenvg8p","Version":{"Index":19},"CreatedAt":"2016-06-07T21:05:51.880065305Z","UpdatedAt":"2016-06-07T21:07:29.962229872Z","Spec":{"Name":"web","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"redis:7@sha256:abc","Init":false,"StopGracePeriod":10000000000,"DNSConfig":{},"Isolation":"default"},"Resources":{"Limits":{},"Reservations":{}},"RestartPolicy":{"Condition":"any","Delay":5000000000,"MaxAttempts":0},"Placement":{"Platforms":[{"Architecture":"amd64","OS":"linux"}]},"ForceUpdate":0,"Runtime":"container"},"Mode":{"Replicated":{"Replicas":2}},"UpdateConfig":{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"},"RollbackConfig":{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"},"EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":6379,"PublishedPort":30001,"PublishMode":"ingress"}]}},"Endpoint":{"Spec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":6379,"PublishedPort":30001,"PublishMode":"ingress"}]},"Ports":[{"Protocol":"tcp","TargetPort":6379,"PublishedPort":30001,"PublishMode":"ingress"}],"VirtualIPs":[{"NetworkID":"4qvuz4ko70xa","Addr":"10.0.0.3/24"}]},"UpdateStatus":{"State":"completed","StartedAt":"2016-06-07T21:06:51Z","CompletedAt":"2016-06-07T21:07:29Z","Message":"update completed"},"ServiceStatus":{"RunningTasks":2,"DesiredTasks":2,"CompletedTasks":0}}"#,
        )
        .expect("service");
        assert_eq!(service.spec.mode.replicas(), Some(2));
        assert_eq!(service.endpoint.ports[0].published_port, 30001);
        assert_eq!(service.endpoint.virtual_ips[0].addr, "10.0.0.3/24");
        assert_eq!(
            service.update_status.map(|u| u.state).as_deref(),
            Some("completed")
        );
        assert_eq!(service.service_status.map(|s| s.running_tasks), Some(2));

        let task: Task = serde_json::from_str(
            r#"{"ID":"0kzzo1i0y4jz","Version":{"Index":71},"CreatedAt":"2016-06-07T21:07:31.171892745Z","UpdatedAt":"2016-06-07T21:07:31.376370513Z","Labels":{},"Spec":{"ContainerSpec":{"Image":"redis"},"Resources":{"Limits":{},"Reservations":{}},"RestartPolicy":{"Condition":"any","MaxAttempts":0},"Placement":{}},"ServiceID":"9mnpnzenvg8p","Slot":1,"NodeID":"60gvrl6tm78d","Status":{"Timestamp":"2016-06-07T21:07:31.290032978Z","State":"running","Message":"started","ContainerStatus":{"ContainerID":"e5d62702a1b4","PID":677,"ExitCode":0},"PortStatus":{}},"DesiredState":"running","NetworksAttachments":[{"Network":{"ID":"4qvuz4ko70xa","Version":{"Index":18},"Spec":{"Name":"ingress","Labels":{"com.docker.swarm.internal":"true"},"DriverConfiguration":{},"IPAMOptions":{"Driver":{},"Configs":[{"Subnet":"10.255.0.0/16","Gateway":"10.255.0.1"}]}},"DriverState":{"Name":"overlay"}},"Addresses":["10.255.0.10/16"]}],"AssignedGenericResources":null}"#,
        )
        .expect("task");
        assert_eq!(task.slot, 1);
        assert_eq!(task.status.state, TaskState::Running);
        assert_eq!(task.status.container_status.pid, 677);
        assert_eq!(task.status.port_status, Some(PortStatus::default()));
        let attachment = &task.networks_attachments[0];
        assert_eq!(
            attachment.network.spec.as_ref().map(|s| s.name.as_str()),
            Some("ingress")
        );
        assert_eq!(attachment.addresses, ["10.255.0.10/16"]);

        let created: ServiceCreateResponse =
            serde_json::from_str(r#"{"ID":"ak7w3gjqoa3k","Warnings":null}"#).expect("created");
        assert_eq!(created.id, "ak7w3gjqoa3k");
        assert!(created.warnings.is_empty());
    }

    #[test]
    fn answers_are_what_shoald_always_sent() {
        let created = ServiceCreateResponse {
            id: "ak7w3gjqoa3k".into(),
            warnings: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&created).expect("json"),
            r#"{"ID":"ak7w3gjqoa3k","Warnings":[]}"#
        );
        assert_eq!(
            serde_json::to_string(&ServiceUpdateResponse::default()).expect("json"),
            r#"{"Warnings":[]}"#
        );
    }
}
