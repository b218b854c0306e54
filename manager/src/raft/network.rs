//! openraft's network over gRPC: each Raft RPC is one unary call on the
//! `Raft` service, carrying openraft's request as JSON and answered with
//! openraft's whole `Result` as JSON, so a remote Raft error arrives typed.
//!
//! Channels are mutual TLS with the manager's certificate (the caller hands
//! in the rustls config) and reconnect by themselves; a peer that cannot be
//! reached is reported as `Unreachable`, which makes openraft back off.

use std::{fmt::Display, sync::Arc, time::Duration};

use openraft::{
    RaftNetwork, RaftNetworkFactory, RaftTypeConfig,
    error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable},
    network::RPCOption,
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
        InstallSnapshotResponse, VoteRequest, VoteResponse,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use shoal_api::grpc::{
    MANAGER_SERVER_NAME, channel,
    proto::{RaftPayload, raft_client::RaftClient},
};
use tonic::transport::Channel;

use super::RaftPeer;

/// Creates one [`GrpcNetwork`] per replication target.
#[derive(Clone, Debug)]
pub struct GrpcNetworkFactory {
    tls: Arc<rustls::ClientConfig>,
}

impl GrpcNetworkFactory {
    /// A factory dialing peers with this mutual-TLS client configuration.
    #[must_use]
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self { tls }
    }
}

/// The connection to one peer.
#[derive(Debug)]
pub struct GrpcNetwork {
    target: u64,
    client: Result<RaftClient<Channel>, String>,
}

impl<C> RaftNetworkFactory<C> for GrpcNetworkFactory
where
    C: RaftTypeConfig<NodeId = u64, Node = RaftPeer>,
{
    type Network = GrpcNetwork;

    async fn new_client(&mut self, target: u64, node: &RaftPeer) -> GrpcNetwork {
        let client = channel(
            &node.addr,
            Arc::clone(&self.tls),
            MANAGER_SERVER_NAME,
            Duration::from_secs(10),
        )
        .map(RaftClient::new)
        .map_err(|e| e.to_string());
        GrpcNetwork { target, client }
    }
}

/// A transport failure, as openraft wants it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl GrpcNetwork {
    /// Sends `request` with `send` and decodes openraft's `Result<Resp, E>`.
    async fn call<Req, Resp, E, F, Fut>(
        &mut self,
        request: &Req,
        option: &RPCOption,
        send: F,
    ) -> Result<Resp, RPCError<u64, RaftPeer, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
        F: FnOnce(RaftClient<Channel>, tonic::Request<RaftPayload>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftPayload>, tonic::Status>>,
    {
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(e) => {
                return Err(RPCError::Unreachable(Unreachable::new(&TransportError(
                    e.clone(),
                ))));
            }
        };
        let json =
            serde_json::to_vec(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut grpc_request = tonic::Request::new(RaftPayload { json });
        grpc_request.set_timeout(option.hard_ttl());
        let response = send(client, grpc_request).await.map_err(|status| {
            let error = TransportError(format!("{}: {}", status.code(), status.message()));
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ) {
                RPCError::Unreachable(Unreachable::new(&error))
            } else {
                RPCError::Network(NetworkError::new(&error))
            }
        })?;
        let result: Result<Resp, E> = serde_json::from_slice(&response.into_inner().json)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<C> RaftNetwork<C> for GrpcNetwork
where
    C: RaftTypeConfig<NodeId = u64, Node = RaftPeer>,
    C::D: Serialize + DeserializeOwned,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, RaftPeer, RaftError<u64>>> {
        self.call(&rpc, &option, |mut c, r| async move {
            c.append_entries(r).await
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, RaftPeer, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call(&rpc, &option, |mut c, r| async move {
            c.install_snapshot(r).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, RaftPeer, RaftError<u64>>> {
        self.call(&rpc, &option, |mut c, r| async move { c.vote(r).await })
            .await
    }
}

/// Encodes a handler's result for the wire (the server half of `call`).
pub fn encode_result<T: Serialize, E: Serialize + Display>(
    result: &Result<T, E>,
) -> Result<RaftPayload, tonic::Status> {
    serde_json::to_vec(result)
        .map(|json| RaftPayload { json })
        .map_err(|e| tonic::Status::internal(format!("encoding the Raft response: {e}")))
}
