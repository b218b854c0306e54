//! A running manager: Raft over the durable stores, the gRPC services on the
//! manager port, and the leader's duties (dispatcher liveness, manager
//! reachability, roles, orchestration). The node daemon starts one when the
//! node is a manager and talks to it through [`Manager`].
//!
//! [`Manager`] is one handle; its methods are grouped by concern:
//! - `lifecycle`: start (stores, Raft, the gRPC server, the leader's
//!   loops), bootstrap of a new swarm, shutdown;
//! - `client`: the Raft client side: proposals (forwarded to the leader
//!   from a follower), linearizable reads, who leads;
//! - `membership`: joining the Raft voters, and the leader making Raft
//!   membership and manager reachability follow the nodes' roles;
//! - `liveness`: the agents' heartbeats and marking silent nodes Down;
//! - `log_routing`: task logs from the nodes through the leader's broker;
//! - `leader`: the loops the leader runs (duties, orchestration rounds);
//! - `grpc`: the gRPC services on the manager port;
//! - `config` and `error`: [`ManagerConfig`], [`RaftTiming`] and
//!   [`ManagerError`].
//!
//! Imports read top-down: `lifecycle` → `grpc` and `leader` → `membership`
//! and `liveness` → this module's [`Manager`] (and `error`); this module
//! imports only `config` and `error`, which import nothing of the runtime.

mod client;
mod config;
mod error;
mod grpc;
mod leader;
mod lifecycle;
mod liveness;
mod log_routing;
mod membership;

use std::{collections::HashMap, sync::Arc, time::Instant};

use openraft::Raft;
use tokio::{
    sync::{Mutex, watch},
    task::JoinHandle,
};

pub use self::{
    config::{ManagerConfig, RaftTiming},
    error::{ManagerError, RemoteError},
};
use crate::{
    logs::LogBroker,
    raft::{StateMachineStore, cluster::TypeConfig},
    state::ClusterState,
};

/// A running manager; cheap to clone.
#[derive(Clone, Debug)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    config: ManagerConfig,
    raft: Raft<TypeConfig>,
    store: StateMachineStore<TypeConfig, ClusterState>,
    client_tls: Arc<rustls::ClientConfig>,
    /// Serialises Raft membership changes on the leader.
    membership_lock: Mutex<()>,
    /// Last heartbeat per node, on the leader.
    last_seen: Mutex<HashMap<String, Instant>>,
    /// Log subscriptions and the nodes listening for them.
    log_broker: LogBroker,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
