//! Builders for unit tests of the modules that read the state (scheduler,
//! orchestrator, constraints): objects made directly, without `apply`.

use std::collections::BTreeMap;

use shoal_api::service::{ServiceMode, ServiceSpec, TaskSpec};

use super::{
    Availability, Node, NodeDescription, NodeResources, NodeRole, NodeSpec, NodeState,
    NodeStatusRecord, Platform, Service,
};

/// A Ready, active worker with these labels, 4 CPUs and 8 GiB.
pub(crate) fn node_with(id: &str, hostname: &str, labels: &[(&str, &str)]) -> Node {
    Node {
        id: id.to_owned(),
        version: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
        spec: NodeSpec {
            name: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            role: NodeRole::Worker,
            availability: Availability::Active,
        },
        description: NodeDescription {
            hostname: hostname.to_owned(),
            platform: Platform {
                architecture: "x86_64".to_owned(),
                os: "linux".to_owned(),
            },
            engine_version: "0.1.0".to_owned(),
            tls: None,
            resources: NodeResources {
                nano_cpus: 4_000_000_000,
                memory_bytes: 8 << 30,
            },
        },
        status: NodeStatusRecord {
            state: NodeState::Ready,
            message: String::new(),
            addr: "198.18.0.1".to_owned(),
        },
        manager: None,
    }
}

/// A service running `whoami:latest` in `mode`.
pub(crate) fn service_with(id: &str, name: &str, mode: ServiceMode) -> Service {
    let mut spec = ServiceSpec {
        name: name.to_owned(),
        mode,
        task_template: TaskSpec::default(),
        ..ServiceSpec::default()
    };
    spec.task_template.container_spec.image = "whoami:latest".to_owned();
    Service {
        id: id.to_owned(),
        version: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
        spec,
        previous_spec: None,
    }
}
