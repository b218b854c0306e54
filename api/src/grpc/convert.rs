//! Conversions between the dispatcher's protobuf messages ([`proto`]) and
//! the domain types of [`crate::service`] they carry: task assignments and
//! their networks, task states and statuses, overlay endpoints, service
//! VIPs and their published ports.
//!
//! Domain to message is `From` (or `TryFrom` for [`TaskAssignment`], whose
//! Docker-shaped spec travels as JSON). Message to domain is `TryFrom`:
//! whatever a peer sends is checked (4-byte IPv4 addresses, known task
//! states, 16-bit ports, prefix lengths up to 32, required fields present)
//! and refused with a [`ConvertError`] naming the field; [`try_from_each`]
//! converts a message's repeated field.

use std::net::Ipv4Addr;

use super::proto;
use crate::service::{
    OverlayEndpoint, PortConfig, ServiceVip, TaskAssignment, TaskNetwork, TaskState, TaskStatus,
};

/// Why a message cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// An address field is not 4 bytes.
    #[error("{field}: {len} bytes is not an IPv4 address (4 bytes)")]
    Ipv4 {
        /// The message and field, e.g. `OverlayEndpoint.addr`.
        field: &'static str,
        /// The length received.
        len: usize,
    },
    /// A task state this build does not know.
    #[error("{field}: unknown task state {value}")]
    TaskState {
        /// The message and field.
        field: &'static str,
        /// The enum value received.
        value: i32,
    },
    /// A port number over 65535.
    #[error("{field}: {value} is not a port number (0 to 65535)")]
    Port {
        /// The message and field.
        field: &'static str,
        /// The value received.
        value: u32,
    },
    /// A prefix length over 32.
    #[error("TaskNetwork.prefix_len: {0} is longer than an IPv4 address (32)")]
    PrefixLen(u32),
    /// A required message field is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// A task's spec does not encode or decode as Docker's `TaskSpec`.
    #[error("task {task_id}: spec_json: {source}")]
    Spec {
        /// The task.
        task_id: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// Every message of `messages` as its domain type, or the first refusal.
pub fn try_from_each<M, T>(messages: Vec<M>) -> Result<Vec<T>, ConvertError>
where
    T: TryFrom<M, Error = ConvertError>,
{
    messages.into_iter().map(T::try_from).collect()
}

fn ipv4(field: &'static str, bytes: &[u8]) -> Result<Ipv4Addr, ConvertError> {
    <[u8; 4]>::try_from(bytes)
        .map(Ipv4Addr::from)
        .map_err(|_| ConvertError::Ipv4 {
            field,
            len: bytes.len(),
        })
}

fn ipv4_bytes(addr: Ipv4Addr) -> Vec<u8> {
    addr.octets().to_vec()
}

fn port(field: &'static str, value: u32) -> Result<u16, ConvertError> {
    u16::try_from(value).map_err(|_| ConvertError::Port { field, value })
}

fn task_state(field: &'static str, value: i32) -> Result<TaskState, ConvertError> {
    proto::TaskState::try_from(value)
        .map(TaskState::from)
        .map_err(|_| ConvertError::TaskState { field, value })
}

impl From<TaskState> for proto::TaskState {
    fn from(state: TaskState) -> Self {
        match state {
            TaskState::New => Self::New,
            TaskState::Pending => Self::Pending,
            TaskState::Assigned => Self::Assigned,
            TaskState::Accepted => Self::Accepted,
            TaskState::Preparing => Self::Preparing,
            TaskState::Ready => Self::Ready,
            TaskState::Starting => Self::Starting,
            TaskState::Running => Self::Running,
            TaskState::Complete => Self::Complete,
            TaskState::Shutdown => Self::Shutdown,
            TaskState::Failed => Self::Failed,
            TaskState::Rejected => Self::Rejected,
            TaskState::Remove => Self::Remove,
            TaskState::Orphaned => Self::Orphaned,
        }
    }
}

impl From<proto::TaskState> for TaskState {
    fn from(state: proto::TaskState) -> Self {
        match state {
            proto::TaskState::New => Self::New,
            proto::TaskState::Pending => Self::Pending,
            proto::TaskState::Assigned => Self::Assigned,
            proto::TaskState::Accepted => Self::Accepted,
            proto::TaskState::Preparing => Self::Preparing,
            proto::TaskState::Ready => Self::Ready,
            proto::TaskState::Starting => Self::Starting,
            proto::TaskState::Running => Self::Running,
            proto::TaskState::Complete => Self::Complete,
            proto::TaskState::Shutdown => Self::Shutdown,
            proto::TaskState::Failed => Self::Failed,
            proto::TaskState::Rejected => Self::Rejected,
            proto::TaskState::Remove => Self::Remove,
            proto::TaskState::Orphaned => Self::Orphaned,
        }
    }
}

impl From<TaskStatus> for proto::TaskStatus {
    fn from(status: TaskStatus) -> Self {
        Self {
            timestamp_ms: status.timestamp_ms,
            state: proto::TaskState::from(status.state).into(),
            message: status.message,
            err: status.err,
            container_id: status.container_id,
            pid: status.pid,
            exit_code: status.exit_code,
        }
    }
}

impl TryFrom<proto::TaskStatus> for TaskStatus {
    type Error = ConvertError;

    fn try_from(status: proto::TaskStatus) -> Result<Self, ConvertError> {
        Ok(Self {
            timestamp_ms: status.timestamp_ms,
            state: task_state("TaskStatus.state", status.state)?,
            message: status.message,
            err: status.err,
            container_id: status.container_id,
            pid: status.pid,
            exit_code: status.exit_code,
        })
    }
}

impl From<(String, TaskStatus)> for proto::TaskStatusUpdate {
    fn from((task_id, status): (String, TaskStatus)) -> Self {
        Self {
            task_id,
            status: Some(status.into()),
        }
    }
}

impl TryFrom<proto::TaskStatusUpdate> for (String, TaskStatus) {
    type Error = ConvertError;

    fn try_from(update: proto::TaskStatusUpdate) -> Result<Self, ConvertError> {
        let status = update
            .status
            .ok_or(ConvertError::Missing("TaskStatusUpdate.status"))?;
        Ok((update.task_id, status.try_into()?))
    }
}

impl From<TaskNetwork> for proto::TaskNetwork {
    fn from(network: TaskNetwork) -> Self {
        Self {
            network_id: network.network_id,
            name: network.name,
            vni: network.vni,
            addr: ipv4_bytes(network.addr),
            prefix_len: network.prefix_len.into(),
            gateway: ipv4_bytes(network.gateway),
            mtu: network.mtu,
            ingress: network.ingress,
        }
    }
}

impl TryFrom<proto::TaskNetwork> for TaskNetwork {
    type Error = ConvertError;

    fn try_from(network: proto::TaskNetwork) -> Result<Self, ConvertError> {
        let prefix_len = u8::try_from(network.prefix_len)
            .ok()
            .filter(|len| *len <= 32)
            .ok_or(ConvertError::PrefixLen(network.prefix_len))?;
        Ok(Self {
            network_id: network.network_id,
            name: network.name,
            vni: network.vni,
            addr: ipv4("TaskNetwork.addr", &network.addr)?,
            prefix_len,
            gateway: ipv4("TaskNetwork.gateway", &network.gateway)?,
            mtu: network.mtu,
            ingress: network.ingress,
        })
    }
}

impl TryFrom<TaskAssignment> for proto::TaskAssignment {
    type Error = ConvertError;

    fn try_from(task: TaskAssignment) -> Result<Self, ConvertError> {
        let spec_json = serde_json::to_vec(&task.spec).map_err(|source| ConvertError::Spec {
            task_id: task.id.clone(),
            source,
        })?;
        Ok(Self {
            id: task.id,
            service_id: task.service_id,
            name: task.name,
            spec_json,
            desired_state: proto::TaskState::from(task.desired_state).into(),
            status: Some(task.status.into()),
            networks: task.networks.into_iter().map(Into::into).collect(),
        })
    }
}

impl TryFrom<proto::TaskAssignment> for TaskAssignment {
    type Error = ConvertError;

    fn try_from(task: proto::TaskAssignment) -> Result<Self, ConvertError> {
        let spec =
            serde_json::from_slice(&task.spec_json).map_err(|source| ConvertError::Spec {
                task_id: task.id.clone(),
                source,
            })?;
        let status = task
            .status
            .ok_or(ConvertError::Missing("TaskAssignment.status"))?;
        Ok(Self {
            id: task.id,
            service_id: task.service_id,
            name: task.name,
            spec,
            desired_state: task_state("TaskAssignment.desired_state", task.desired_state)?,
            status: status.try_into()?,
            networks: try_from_each(task.networks)?,
        })
    }
}

impl From<OverlayEndpoint> for proto::OverlayEndpoint {
    fn from(endpoint: OverlayEndpoint) -> Self {
        Self {
            vni: endpoint.vni,
            addr: ipv4_bytes(endpoint.addr),
            node_id: endpoint.node_id,
            node_addr: ipv4_bytes(endpoint.node_addr),
            task_id: endpoint.task_id,
            service_id: endpoint.service_id,
            service_name: endpoint.service_name,
            running: endpoint.running,
        }
    }
}

impl TryFrom<proto::OverlayEndpoint> for OverlayEndpoint {
    type Error = ConvertError;

    fn try_from(endpoint: proto::OverlayEndpoint) -> Result<Self, ConvertError> {
        Ok(Self {
            vni: endpoint.vni,
            addr: ipv4("OverlayEndpoint.addr", &endpoint.addr)?,
            node_id: endpoint.node_id,
            node_addr: ipv4("OverlayEndpoint.node_addr", &endpoint.node_addr)?,
            task_id: endpoint.task_id,
            service_id: endpoint.service_id,
            service_name: endpoint.service_name,
            running: endpoint.running,
        })
    }
}

impl From<PortConfig> for proto::PortConfig {
    fn from(port: PortConfig) -> Self {
        Self {
            name: port.name,
            protocol: port.protocol,
            target_port: port.target_port.into(),
            published_port: port.published_port.into(),
            publish_mode: port.publish_mode,
        }
    }
}

impl TryFrom<proto::PortConfig> for PortConfig {
    type Error = ConvertError;

    fn try_from(config: proto::PortConfig) -> Result<Self, ConvertError> {
        Ok(Self {
            name: config.name,
            protocol: config.protocol,
            target_port: port("PortConfig.target_port", config.target_port)?,
            published_port: port("PortConfig.published_port", config.published_port)?,
            publish_mode: config.publish_mode,
        })
    }
}

impl From<ServiceVip> for proto::ServiceVip {
    fn from(vip: ServiceVip) -> Self {
        Self {
            service_id: vip.service_id,
            service_name: vip.service_name,
            aliases: vip.aliases,
            vni: vip.vni,
            vip: ipv4_bytes(vip.vip),
            ports: vip.ports.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<proto::ServiceVip> for ServiceVip {
    type Error = ConvertError;

    fn try_from(vip: proto::ServiceVip) -> Result<Self, ConvertError> {
        Ok(Self {
            service_id: vip.service_id,
            service_name: vip.service_name,
            aliases: vip.aliases,
            vni: vip.vni,
            vip: ipv4("ServiceVip.vip", &vip.vip)?,
            ports: try_from_each(vip.ports)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message;

    use super::*;
    use crate::{
        network::NetworkAttachmentConfig,
        service::{ContainerSpec, TaskSpec},
    };

    const ALL_STATES: [TaskState; 14] = [
        TaskState::New,
        TaskState::Pending,
        TaskState::Assigned,
        TaskState::Accepted,
        TaskState::Preparing,
        TaskState::Ready,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Complete,
        TaskState::Shutdown,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::Remove,
        TaskState::Orphaned,
    ];

    fn status() -> TaskStatus {
        TaskStatus {
            timestamp_ms: 1_700_000_000_123,
            state: TaskState::Failed,
            message: "started".into(),
            err: "exit status 3".into(),
            container_id: "c0ffee".into(),
            pid: 4242,
            exit_code: Some(-3),
        }
    }

    fn network(ingress: bool) -> TaskNetwork {
        TaskNetwork {
            network_id: "n1".into(),
            name: "backend".into(),
            vni: 4097,
            addr: Ipv4Addr::new(10, 0, 1, 7),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 0, 1, 1),
            mtu: Some(1400),
            ingress,
        }
    }

    fn assignment() -> TaskAssignment {
        TaskAssignment {
            id: "t1".into(),
            service_id: "s1".into(),
            name: "web.1".into(),
            spec: TaskSpec {
                container_spec: ContainerSpec {
                    image: "whoami:latest".into(),
                    labels: BTreeMap::from([("tier".into(), "front".into())]),
                    args: vec!["--port".into(), "80".into()],
                    stop_grace_period: Some(2_000_000_000),
                    ..ContainerSpec::default()
                },
                force_update: 3,
                networks: vec![NetworkAttachmentConfig {
                    target: "n1".into(),
                    aliases: vec!["api".into()],
                }],
                ..TaskSpec::default()
            },
            desired_state: TaskState::Shutdown,
            status: status(),
            networks: vec![
                network(true),
                TaskNetwork {
                    mtu: None,
                    ..network(false)
                },
            ],
        }
    }

    fn endpoint() -> OverlayEndpoint {
        OverlayEndpoint {
            vni: 4096,
            addr: Ipv4Addr::new(10, 0, 0, 3),
            node_id: "node1".into(),
            node_addr: Ipv4Addr::new(198, 18, 0, 1),
            task_id: "t1".into(),
            service_id: "s1".into(),
            service_name: "web".into(),
            running: true,
        }
    }

    fn vip() -> ServiceVip {
        ServiceVip {
            service_id: "s1".into(),
            service_name: "web".into(),
            aliases: vec!["www".into(), "front".into()],
            vni: 4096,
            vip: Ipv4Addr::new(10, 0, 0, 2),
            ports: vec![
                PortConfig {
                    name: "http".into(),
                    protocol: "tcp".into(),
                    target_port: 80,
                    published_port: 8080,
                    publish_mode: "ingress".into(),
                },
                PortConfig {
                    target_port: 53,
                    published_port: 30_000,
                    protocol: "udp".into(),
                    publish_mode: "host".into(),
                    ..PortConfig::default()
                },
            ],
        }
    }

    /// Domain value → message → protobuf bytes → message → domain value.
    fn through_the_wire<D, M>(value: D) -> D
    where
        M: Message + Default + TryFrom<D>,
        <M as TryFrom<D>>::Error: std::fmt::Debug,
        D: TryFrom<M, Error = ConvertError>,
    {
        let bytes = M::try_from(value).expect("encodes").encode_to_vec();
        let message = M::decode(bytes.as_slice()).expect("decodes");
        D::try_from(message).expect("converts back")
    }

    #[test]
    fn every_task_state_round_trips() {
        for state in ALL_STATES {
            let wire: i32 = proto::TaskState::from(state).into();
            assert_eq!(task_state("test", wire).expect("known"), state);
        }
        assert_eq!(
            proto::TaskState::try_from(i32::try_from(ALL_STATES.len()).expect("small")).ok(),
            None,
            "the domain and the proto list the same states"
        );
    }

    #[test]
    fn task_status_round_trips() {
        assert_eq!(through_the_wire::<_, proto::TaskStatus>(status()), status());
        let running = TaskStatus {
            exit_code: None,
            state: TaskState::Running,
            ..status()
        };
        assert_eq!(
            through_the_wire::<_, proto::TaskStatus>(running.clone()),
            running,
            "an absent exit code stays absent"
        );
        assert_eq!(
            through_the_wire::<_, proto::TaskStatus>(TaskStatus::default()),
            TaskStatus::default()
        );
    }

    #[test]
    fn task_status_update_round_trips() {
        let update = ("t9".to_owned(), status());
        assert_eq!(
            through_the_wire::<_, proto::TaskStatusUpdate>(update.clone()),
            update
        );
    }

    #[test]
    fn task_assignment_round_trips() {
        assert_eq!(
            through_the_wire::<_, proto::TaskAssignment>(assignment()),
            assignment()
        );
    }

    #[test]
    fn overlay_endpoint_round_trips() {
        assert_eq!(
            through_the_wire::<_, proto::OverlayEndpoint>(endpoint()),
            endpoint()
        );
    }

    #[test]
    fn service_vip_round_trips() {
        assert_eq!(through_the_wire::<_, proto::ServiceVip>(vip()), vip());
        let plain = ServiceVip {
            ports: Vec::new(),
            aliases: Vec::new(),
            ..vip()
        };
        assert_eq!(
            through_the_wire::<_, proto::ServiceVip>(plain.clone()),
            plain
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [vec![], vec![10, 0, 0], vec![0; 16]] {
            let message = proto::OverlayEndpoint {
                node_addr: bad.clone(),
                ..endpoint().into()
            };
            let error = OverlayEndpoint::try_from(message).expect_err("refused");
            assert!(
                matches!(error, ConvertError::Ipv4 { field: "OverlayEndpoint.node_addr", len } if len == bad.len()),
                "{error}"
            );
        }
        let message = proto::ServiceVip {
            vip: vec![1, 2, 3, 4, 5],
            ..vip().into()
        };
        assert_eq!(
            ServiceVip::try_from(message)
                .expect_err("refused")
                .to_string(),
            "ServiceVip.vip: 5 bytes is not an IPv4 address (4 bytes)"
        );
        let mut task = proto::TaskAssignment::try_from(assignment()).expect("encodes");
        task.networks[1].gateway = vec![10, 0, 1];
        assert!(matches!(
            TaskAssignment::try_from(task),
            Err(ConvertError::Ipv4 {
                field: "TaskNetwork.gateway",
                len: 3
            })
        ));
    }

    #[test]
    fn unknown_task_states_are_refused() {
        let message = proto::TaskStatus {
            state: 99,
            ..status().into()
        };
        assert_eq!(
            TaskStatus::try_from(message)
                .expect_err("refused")
                .to_string(),
            "TaskStatus.state: unknown task state 99"
        );
        let mut task = proto::TaskAssignment::try_from(assignment()).expect("encodes");
        task.desired_state = -1;
        assert!(matches!(
            TaskAssignment::try_from(task),
            Err(ConvertError::TaskState {
                field: "TaskAssignment.desired_state",
                value: -1
            })
        ));
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let mut message = proto::ServiceVip::from(vip());
        message.ports[1].published_port = 70_000;
        assert!(matches!(
            ServiceVip::try_from(message),
            Err(ConvertError::Port {
                field: "PortConfig.published_port",
                value: 70_000
            })
        ));
        for prefix_len in [33, 256, u32::MAX] {
            let message = proto::TaskNetwork {
                prefix_len,
                ..network(false).into()
            };
            assert!(matches!(
                TaskNetwork::try_from(message),
                Err(ConvertError::PrefixLen(len)) if len == prefix_len
            ));
        }
    }

    #[test]
    fn missing_parts_and_bad_specs_are_refused() {
        let mut task = proto::TaskAssignment::try_from(assignment()).expect("encodes");
        task.status = None;
        assert_eq!(
            TaskAssignment::try_from(task)
                .expect_err("refused")
                .to_string(),
            "TaskAssignment.status is missing"
        );
        let update = proto::TaskStatusUpdate {
            task_id: "t1".into(),
            status: None,
        };
        assert!(matches!(
            <(String, TaskStatus)>::try_from(update),
            Err(ConvertError::Missing("TaskStatusUpdate.status"))
        ));
        let mut task = proto::TaskAssignment::try_from(assignment()).expect("encodes");
        task.spec_json = b"{\"ContainerSpec\": 7}".to_vec();
        let error = TaskAssignment::try_from(task).expect_err("refused");
        assert!(
            matches!(&error, ConvertError::Spec { task_id, .. } if task_id == "t1"),
            "{error}"
        );
    }
}
