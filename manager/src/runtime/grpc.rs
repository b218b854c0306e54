//! The manager's gRPC services on the manager port: `Raft` (between
//! managers), `Ca` (join and renewal), `Control` (forwarded writes, Raft
//! membership) and `Dispatcher` (agent heartbeats).
//!
//! Every RPC but `Ca.Join` requires a client certificate. rustls has already
//! verified it against the cluster CA; here the identity it carries is
//! checked against the state: same cluster, not removed, and the manager
//! role where the RPC needs it.

use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::de::DeserializeOwned;
use shoal_api::{grpc::convert::try_from_each, service::TaskStatus};
use shoal_api::{
    grpc::proto::{
        AssignmentsMessage, AssignmentsRequest, HeartbeatRequest, HeartbeatResponse,
        JoinRaftRequest, JoinRaftResponse, JoinRequest, JoinResponse, LogMessage, LogSubscription,
        LogSubscriptionsRequest, ProposeRequest, ProposeResponse, PublishLogsResponse, RaftPayload,
        ReadIndexRequest, ReadIndexResponse, RenewRequest, RenewResponse, UpdateTaskStatusRequest,
        UpdateTaskStatusResponse,
        ca_server::{Ca, CaServer},
        control_server::{Control, ControlServer},
        dispatcher_server::{Dispatcher, DispatcherServer},
        raft_server::{Raft, RaftServer},
    },
    id::ObjectId,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, transport::server::Router};
use tracing::{info, warn};

use super::{Manager, ManagerError};
use crate::{
    ca::{self, JoinToken, NodeIdentity, RootCa},
    dispatcher::{MapDiff, assignments_for, assignments_message, overlay_endpoints, service_vips},
    raft::{
        cluster::{Proposal, TypeConfig},
        network::encode_result,
    },
    state::{Availability, Command, NewNode, NodeResources, NodeRole, Platform, Rejected},
    transport::peer_certificate,
};

/// Raft snapshots travel in one message: allow them to be large.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// The router serving every manager service.
pub(super) fn router(manager: Manager) -> Router {
    tonic::transport::Server::builder()
        .add_service(
            RaftServer::new(RaftService(manager.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(CaServer::new(CaService(manager.clone())))
        .add_service(ControlServer::new(ControlService(manager.clone())))
        .add_service(DispatcherServer::new(DispatcherService(manager)))
}

/// Who is calling, as their certificate says, checked against the state.
async fn authorize<T>(
    manager: &Manager,
    request: &Request<T>,
    need_manager: bool,
) -> Result<NodeIdentity, Status> {
    let der = peer_certificate(request).ok_or_else(|| {
        Status::unauthenticated("a client certificate signed by the swarm's CA is required")
    })?;
    let identity = NodeIdentity::from_der(&der)
        .map_err(|e| Status::unauthenticated(format!("unusable client certificate: {e}")))?;
    let (removed, cluster_id) = manager
        .read(|s| {
            (
                s.is_removed(&identity.node_id),
                s.cluster.as_ref().map(|c| c.id.clone()),
            )
        })
        .await;
    if removed {
        return Err(Status::permission_denied(format!(
            "node {} was removed from the swarm",
            identity.node_id
        )));
    }
    if cluster_id.is_some_and(|id| id != identity.cluster_id) {
        return Err(Status::permission_denied("certificate of another swarm"));
    }
    if need_manager && identity.role != ca::NodeRole::Manager {
        return Err(Status::permission_denied("this RPC is for managers"));
    }
    Ok(identity)
}

fn decode<T: DeserializeOwned>(json: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(json).map_err(|e| Status::invalid_argument(format!("bad payload: {e}")))
}

fn status_of(error: &ManagerError) -> Status {
    match error {
        ManagerError::Rejected(rejected) => Status::failed_precondition(rejected.to_string()),
        ManagerError::NoLeader => Status::unavailable(error.to_string()),
        other => Status::internal(other.to_string()),
    }
}

struct RaftService(Manager);

#[tonic::async_trait]
impl Raft for RaftService {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        authorize(&self.0, &request, true).await?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&request.into_inner().json)?;
        let result = self.0.raft().append_entries(rpc).await;
        Ok(Response::new(encode_result(&result)?))
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        authorize(&self.0, &request, true).await?;
        let rpc: VoteRequest<u64> = decode(&request.into_inner().json)?;
        let result = self.0.raft().vote(rpc).await;
        Ok(Response::new(encode_result(&result)?))
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        authorize(&self.0, &request, true).await?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&request.into_inner().json)?;
        let result = self.0.raft().install_snapshot(rpc).await;
        Ok(Response::new(encode_result(&result)?))
    }
}

struct CaService(Manager);

#[tonic::async_trait]
impl Ca for CaService {
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let join = request.into_inner();
        let manager = &self.0;
        let presented: JoinToken = join
            .token
            .parse()
            .map_err(|e| Status::invalid_argument(format!("invalid join token: {e}")))?;
        let cluster = manager
            .read(|s| s.cluster().cloned())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let worker: JoinToken = cluster
            .join_tokens
            .worker
            .parse()
            .map_err(|_| Status::internal("corrupt worker token"))?;
        let manager_token: JoinToken = cluster
            .join_tokens
            .manager
            .parse()
            .map_err(|_| Status::internal("corrupt manager token"))?;
        let Some(role) = ca::authorize_join(&presented, &worker, &manager_token) else {
            return Err(Status::invalid_argument(
                "A valid join token is necessary to join this cluster",
            ));
        };
        join.node_id
            .parse::<ObjectId>()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (removed, exists, next_raft_id) = manager
            .read(|s| {
                (
                    s.is_removed(&join.node_id),
                    s.nodes.contains_key(&join.node_id),
                    s.raft_members()
                        .filter_map(|n| n.manager.as_ref())
                        .map(|m| m.raft_id)
                        .max()
                        .unwrap_or(0)
                        + 1,
                )
            })
            .await;
        if removed {
            return Err(Status::permission_denied(format!(
                "node {} was removed from the swarm and cannot join again with the same identity",
                join.node_id
            )));
        }
        if exists {
            return Err(Status::already_exists(format!(
                "node {} is already part of the swarm",
                join.node_id
            )));
        }
        let root = RootCa::from_pem(&cluster.root_ca.cert_pem, &cluster.root_ca.key_pem)
            .map_err(|e| Status::internal(format!("the swarm's CA: {e}")))?;
        let validity = Duration::from_millis(cluster.spec.ca_config.node_cert_expiry_ms);
        let issued = root
            .issue_node_certificate(&join.csr_pem, &join.node_id, role, &cluster.id, validity)
            .map_err(|e| Status::invalid_argument(format!("certificate request refused: {e}")))?;
        let is_manager = role == ca::NodeRole::Manager;
        let response = manager
            .propose(Command::RegisterNode {
                node: NewNode {
                    id: join.node_id.clone(),
                    role: if is_manager {
                        NodeRole::Manager
                    } else {
                        NodeRole::Worker
                    },
                    availability: Availability::Active,
                    hostname: join.hostname,
                    platform: Platform {
                        architecture: join.architecture,
                        os: join.os,
                    },
                    engine_version: join.engine_version,
                    addr: join.advertise_addr,
                    raft_id: is_manager.then_some(next_raft_id),
                    manager_addr: is_manager.then_some(join.manager_addr),
                    tls: None,
                },
            })
            .await;
        response.map_err(|e| status_of(&e))?;
        info!(node = %join.node_id, %role, "node joined");
        Ok(Response::new(JoinResponse {
            cert_pem: issued.cert_pem,
            ca_cert_pem: cluster.root_ca.cert_pem.clone(),
            role: if is_manager { "manager" } else { "worker" }.into(),
            cluster_id: cluster.id.clone(),
            manager_addrs: manager.manager_addrs(),
            raft_id: if is_manager { next_raft_id } else { 0 },
        }))
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<RenewResponse>, Status> {
        let identity = authorize(&self.0, &request, false).await?;
        let (cluster, role) = self
            .0
            .read(|s| {
                let cluster = s.cluster().cloned();
                let role = s.nodes.get(&identity.node_id).map(|n| n.spec.role);
                cluster.map(|c| (c, role))
            })
            .await
            .map_err(|e: Rejected| Status::unavailable(e.to_string()))?;
        let Some(role) = role else {
            return Err(Status::not_found(format!(
                "node {} not found",
                identity.node_id
            )));
        };
        let role = if role == NodeRole::Manager {
            ca::NodeRole::Manager
        } else {
            ca::NodeRole::Worker
        };
        let root = RootCa::from_pem(&cluster.root_ca.cert_pem, &cluster.root_ca.key_pem)
            .map_err(|e| Status::internal(format!("the swarm's CA: {e}")))?;
        let issued = root
            .issue_node_certificate(
                &request.into_inner().csr_pem,
                &identity.node_id,
                role,
                &cluster.id,
                Duration::from_millis(cluster.spec.ca_config.node_cert_expiry_ms),
            )
            .map_err(|e| Status::invalid_argument(format!("certificate request refused: {e}")))?;
        Ok(Response::new(RenewResponse {
            cert_pem: issued.cert_pem,
        }))
    }
}

struct ControlService(Manager);

#[tonic::async_trait]
impl Control for ControlService {
    async fn propose(
        &self,
        request: Request<ProposeRequest>,
    ) -> Result<Response<ProposeResponse>, Status> {
        authorize(&self.0, &request, true).await?;
        let proposal: Proposal = decode(&request.into_inner().command_json)?;
        let (result, log_index) = self.0.commit(proposal).await.map_err(|e| status_of(&e))?;
        let result_json = serde_json::to_vec(&result)
            .map_err(|e| Status::internal(format!("encoding the result: {e}")))?;
        Ok(Response::new(ProposeResponse {
            result_json,
            log_index,
        }))
    }

    async fn read_index(
        &self,
        request: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        authorize(&self.0, &request, true).await?;
        if !self.0.is_leader() {
            return Err(Status::failed_precondition("not the leader"));
        }
        let index = self.0.read_index().await.map_err(|e| status_of(&e))?;
        Ok(Response::new(ReadIndexResponse { index }))
    }

    type TaskLogsStream = ReceiverStream<Result<LogMessage, Status>>;

    async fn task_logs(
        &self,
        request: Request<LogSubscription>,
    ) -> Result<Response<Self::TaskLogsStream>, Status> {
        authorize(&self.0, &request, true).await?;
        if !self.0.is_leader() {
            return Err(Status::failed_precondition("not the leader"));
        }
        let mut logs = self
            .0
            .task_logs(request.into_inner())
            .await
            .map_err(|e| status_of(&e))?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            while let Some(message) = logs.recv().await {
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn join_raft(
        &self,
        request: Request<JoinRaftRequest>,
    ) -> Result<Response<JoinRaftResponse>, Status> {
        let identity = authorize(&self.0, &request, true).await?;
        if !self.0.is_leader() {
            return Err(Status::failed_precondition("not the leader"));
        }
        let raft_id = self
            .0
            .add_voter(&identity.node_id, &request.into_inner().addr)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(JoinRaftResponse { raft_id }))
    }
}

struct DispatcherService(Manager);

/// How many assignment messages may wait for a slow node before the stream
/// stops producing.
const ASSIGNMENT_BUFFER: usize = 16;

#[tonic::async_trait]
impl Dispatcher for DispatcherService {
    type AssignmentsStream = ReceiverStream<Result<AssignmentsMessage, Status>>;
    type LogSubscriptionsStream = ReceiverStream<Result<LogSubscription, Status>>;

    async fn log_subscriptions(
        &self,
        request: Request<LogSubscriptionsRequest>,
    ) -> Result<Response<Self::LogSubscriptionsStream>, Status> {
        let identity = authorize(&self.0, &request, false).await?;
        let mut subscriptions = self.0.log_broker().listen(&identity.node_id);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(subscription) = subscriptions.recv().await {
                if tx.send(Ok(subscription)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn publish_logs(
        &self,
        request: Request<tonic::Streaming<LogMessage>>,
    ) -> Result<Response<PublishLogsResponse>, Status> {
        authorize(&self.0, &request, false).await?;
        let mut messages = request.into_inner();
        // Ending the call tells the node its subscriber went away.
        while let Some(message) = messages.message().await? {
            let Some(subscriber) = self.0.log_broker().subscriber(&message.subscription_id) else {
                break;
            };
            if subscriber.send(message).await.is_err() {
                break;
            }
        }
        Ok(Response::new(PublishLogsResponse {}))
    }

    async fn assignments(
        &self,
        request: Request<AssignmentsRequest>,
    ) -> Result<Response<Self::AssignmentsStream>, Status> {
        let identity = authorize(&self.0, &request, false).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(ASSIGNMENT_BUFFER);
        let manager = self.0.clone();
        tokio::spawn(async move {
            let mut metrics = manager.raft().metrics();
            let mut tasks_diff = MapDiff::default();
            let mut endpoints_diff = MapDiff::default();
            let mut vips_diff = MapDiff::default();
            loop {
                let applied = metrics.borrow().last_applied;
                let (tasks_now, endpoints_now, vips_now) = manager
                    .read(|s| {
                        (
                            assignments_for(s, &identity.node_id),
                            overlay_endpoints(s),
                            service_vips(s),
                        )
                    })
                    .await;
                let message = assignments_message(
                    tasks_diff.next(tasks_now),
                    endpoints_diff.next(endpoints_now),
                    vips_diff.next(vips_now),
                );
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        warn!(node = %identity.node_id, %error, "cannot encode assignments");
                        return;
                    }
                };
                if let Some(message) = message
                    && tx.send(Ok(message)).await.is_err()
                {
                    return; // the node hung up
                }
                tokio::select! {
                    changed = metrics.wait_for(|m| m.last_applied != applied) => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn update_task_status(
        &self,
        request: Request<UpdateTaskStatusRequest>,
    ) -> Result<Response<UpdateTaskStatusResponse>, Status> {
        let identity = authorize(&self.0, &request, false).await?;
        let updates: Vec<(String, TaskStatus)> = try_from_each(request.into_inner().updates)
            .map_err(|e| Status::invalid_argument(format!("task status updates: {e}")))?;
        self.0
            .propose(Command::ReportTaskStatus {
                node_id: identity.node_id,
                updates,
            })
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(UpdateTaskStatusResponse {}))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let identity = authorize(&self.0, &request, false).await?;
        if !self.0.is_leader() {
            return Err(Status::failed_precondition("not the leader"));
        }
        let beat = request.into_inner();
        self.0
            .heartbeat(
                &identity.node_id,
                &beat.addr,
                NodeResources {
                    nano_cpus: beat.nano_cpus,
                    memory_bytes: beat.memory_bytes,
                },
            )
            .await
            .map_err(|e| status_of(&e))?;
        let period = self.0.heartbeat_period().await;
        let (role, raft_id) = self
            .0
            .read(|s| {
                s.nodes.get(&identity.node_id).map(|n| {
                    (
                        n.spec.role.as_str().to_owned(),
                        n.manager.as_ref().map_or(0, |m| m.raft_id),
                    )
                })
            })
            .await
            .unwrap_or_default();
        Ok(Response::new(HeartbeatResponse {
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            manager_addrs: self.0.manager_addrs(),
            desired_role: role,
            raft_id,
        }))
    }
}
