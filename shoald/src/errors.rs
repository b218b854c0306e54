//! The API edge's errors: Docker's error body (`{"message": "..."}`) with
//! the status Docker answers, and Docker's wire text for the manager's
//! rejections, rendered here and nowhere else.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use shoal_api::docker;
use shoal_manager::{runtime::ManagerError, state::Rejected};

use crate::swarm::SwarmError;

/// Docker's error body with the right status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(docker::ErrorResponse {
            message: message.into(),
        }),
    )
        .into_response()
}

fn rejected_status(rejected: &Rejected) -> StatusCode {
    match rejected {
        Rejected::NodeNotFound { .. }
        | Rejected::ServiceNotFound { .. }
        | Rejected::TaskNotFound { .. }
        | Rejected::NetworkNotFound { .. }
        | Rejected::NoCluster => StatusCode::NOT_FOUND,
        Rejected::StaleVersion { .. }
        | Rejected::ClusterExists { .. }
        | Rejected::NodeExists { .. }
        | Rejected::ServiceExists { .. }
        | Rejected::NetworkExists { .. }
        | Rejected::NetworkInUse { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// What the docker CLI prints for a rejection: swarmkit's gRPC form
/// (`rpc error: code = … desc = …`) for the refusals Docker's daemon passes
/// through from swarmkit, the daemon's own sentences for the swarm's
/// absence or presence, and the rejection's message otherwise.
fn rejected_message(rejected: &Rejected) -> String {
    let code = match rejected {
        Rejected::ClusterExists { .. } => return SwarmError::AlreadyInSwarm.to_string(),
        Rejected::NoCluster => return "This node is not part of a swarm".to_owned(),
        Rejected::ServiceExists { .. } => "AlreadyExists",
        Rejected::PortInUse { .. }
        | Rejected::IngressPortWithDnsrr
        | Rejected::DuplicatePublishedPort { .. }
        | Rejected::IngressAttachment { .. } => "InvalidArgument",
        Rejected::IngressExists { .. } | Rejected::IngressInUse { .. } | Rejected::NoIngress => {
            "FailedPrecondition"
        }
        _ => return rejected.to_string(),
    };
    format!("rpc error: code = {code} desc = {rejected}")
}

impl IntoResponse for SwarmError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::AlreadyInSwarm | Self::NotInSwarm | Self::NotManager => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::InvalidRequest(_) | Self::Join(_) | Self::LeaveRefused(_) | Self::Ca(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Manager(ManagerError::Rejected(rejected)) => rejected_status(rejected),
            Self::Manager(ManagerError::NoLeader) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Manager(_) | Self::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self {
            Self::Manager(ManagerError::Rejected(rejected)) => rejected_message(rejected),
            other => other.to_string(),
        };
        error(status, message)
    }
}

pub type Answer<T> = Result<T, SwarmError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_read_as_docker_prints_them() {
        for (rejected, expected) in [
            (
                Rejected::ServiceExists { name: "web".into() },
                "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web exists",
            ),
            (
                Rejected::PortInUse {
                    port: 8080,
                    service_name: "web".into(),
                    service_id: "s1".into(),
                    host_mode: false,
                },
                "rpc error: code = InvalidArgument desc = port '8080' is already in use by service 'web' (s1) as an ingress port",
            ),
            (
                Rejected::IngressPortWithDnsrr,
                "rpc error: code = InvalidArgument desc = EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
            ),
            (
                Rejected::DuplicatePublishedPort {
                    port: 8080,
                    protocol: "tcp".into(),
                },
                "rpc error: code = InvalidArgument desc = EndpointSpec: duplicate published ports provided",
            ),
            (
                Rejected::IngressAttachment {
                    network: "ingress".into(),
                },
                "rpc error: code = InvalidArgument desc = Service cannot be explicitly attached to the ingress network \"ingress\"",
            ),
            (
                Rejected::IngressExists { id: "n1".into() },
                "rpc error: code = FailedPrecondition desc = ingress network (n1) is already present",
            ),
            (
                Rejected::IngressInUse {
                    service_id: "s1".into(),
                },
                "rpc error: code = FailedPrecondition desc = ingress network cannot be removed because service s1 depends on it",
            ),
            (
                Rejected::NoIngress,
                "rpc error: code = FailedPrecondition desc = service needs ingress network, but no ingress network is present",
            ),
            (
                Rejected::ClusterExists { id: "c1".into() },
                "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.",
            ),
            (Rejected::NoCluster, "This node is not part of a swarm"),
            (
                Rejected::NodeNotFound { id: "x".into() },
                "node x not found",
            ),
        ] {
            assert_eq!(rejected_message(&rejected), expected);
        }
    }
}
