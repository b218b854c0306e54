//! A manager's life: [`Manager::start`] opens the stores, starts Raft, serves
//! gRPC and spawns the leader's loops; [`Manager::bootstrap`] makes a fresh
//! manager the first voter of a new swarm; [`Manager::shutdown`] stops it all.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use openraft::{Raft, ServerState};
use tokio::{
    net::TcpListener,
    sync::{Mutex, watch},
};
use tracing::{info, warn};

use super::{
    Inner, Manager, ManagerConfig, ManagerError, grpc,
    leader::{leader_duties, orchestrate},
};
use crate::{
    logs::LogBroker,
    raft::{
        LogStore, RaftPeer, StateMachineStore, cluster::TypeConfig, network::GrpcNetworkFactory,
    },
    state::{ClusterState, Command, Response, SwarmSpec},
    transport::serve_tls,
};

impl Manager {
    /// Opens the stores, starts Raft and serves gRPC on the listen address.
    /// A manager restarted after a crash recovers its state from the log.
    pub async fn start(
        config: ManagerConfig,
        server_tls: Arc<rustls::ServerConfig>,
        client_tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, ManagerError> {
        let raft_dir = config.dir.join("raft");
        std::fs::create_dir_all(&raft_dir).map_err(|source| ManagerError::Io {
            op: "creating",
            path: raft_dir.clone(),
            source,
        })?;
        let log_path = raft_dir.join("log.redb");
        let log =
            LogStore::<TypeConfig>::open(&log_path).map_err(|source| ManagerError::RaftLog {
                path: log_path.clone(),
                source,
            })?;
        let sm_dir = raft_dir.join("state");
        let store =
            StateMachineStore::<TypeConfig, ClusterState>::open(&sm_dir).map_err(|source| {
                ManagerError::Io {
                    op: "opening the state machine",
                    path: sm_dir,
                    source,
                }
            })?;
        // The swarm's setting as of the last snapshot (Docker's default before init).
        let snapshot_interval = store
            .read(|s| s.cluster.as_ref().map(|c| c.spec.raft.snapshot_interval))
            .await
            .unwrap_or(SwarmSpec::default().raft.snapshot_interval);
        let raft_config = config.timing.raft_config(snapshot_interval).validate()?;
        let raft = Raft::new(
            config.raft_id,
            Arc::new(raft_config),
            GrpcNetworkFactory::new(Arc::clone(&client_tls)),
            log,
            store.clone(),
        )
        .await?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| ManagerError::Listen {
                addr: config.listen_addr,
                source,
            })?;
        let (shutdown, _) = watch::channel(false);
        let manager = Self {
            inner: Arc::new(Inner {
                config,
                raft,
                store,
                client_tls,
                membership_lock: Mutex::new(()),
                last_seen: Mutex::new(HashMap::new()),
                log_broker: LogBroker::default(),
                shutdown,
                tasks: Mutex::new(Vec::new()),
            }),
        };
        let router = grpc::router(manager.clone());
        let mut stop = manager.inner.shutdown.subscribe();
        let server = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.changed().await;
            };
            if let Err(error) = serve_tls(listener, server_tls, router, stopped).await {
                warn!(%error, "manager gRPC server stopped");
            }
        });
        let monitor = tokio::spawn(leader_duties(manager.clone()));
        let orchestrator = tokio::spawn(orchestrate(manager.clone()));
        manager
            .inner
            .tasks
            .lock()
            .await
            .extend([server, monitor, orchestrator]);
        info!(
            raft_id = manager.inner.config.raft_id,
            listen = %manager.inner.config.listen_addr,
            "manager started"
        );
        Ok(manager)
    }

    /// Makes this (fresh) manager the single voter of a new Raft group,
    /// waits until it leads, and commits `init`.
    pub async fn bootstrap(&self, init: Command) -> Result<Response, ManagerError> {
        let me = RaftPeer {
            addr: self.inner.config.advertise_addr.clone(),
            node_id: self.inner.config.node_id.clone(),
        };
        let members = BTreeMap::from([(self.inner.config.raft_id, me)]);
        self.inner.raft.initialize(members).await?;
        self.inner
            .raft
            .wait(Some(Duration::from_secs(10)))
            .state(ServerState::Leader, "becoming the first leader")
            .await?;
        self.propose(init).await
    }

    /// Stops serving and leaves Raft running no more.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        for task in self.inner.tasks.lock().await.drain(..) {
            task.abort();
        }
        if let Err(error) = self.inner.raft.shutdown().await {
            warn!(%error, "raft shutdown");
        }
    }
}
