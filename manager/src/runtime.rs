//! A running manager: Raft over the durable stores, the gRPC services on the
//! manager port, and the leader's duties (dispatcher liveness, manager
//! reachability). The node daemon starts one when the node is a manager and
//! talks to it through [`Manager`].

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use openraft::{
    ChangeMembers, Config, Raft, ServerState,
    error::{CheckIsLeaderError, ClientWriteError, RaftError},
};
use shoal_api::{
    grpc::{
        MANAGER_SERVER_NAME, channel,
        proto::{
            JoinRaftRequest, LogMessage, LogSubscription, ProposeRequest, ReadIndexRequest,
            control_client::ControlClient,
        },
    },
    id::ObjectId,
};
use tokio::{
    net::TcpListener,
    sync::{Mutex, mpsc, watch},
    task::JoinHandle,
};
use tracing::{debug, info, warn};

use crate::{
    ca::now_unix_ms,
    logs::LogBroker,
    raft::{
        LogStore, RaftPeer, StateMachineStore,
        cluster::{Proposal, TypeConfig},
        network::GrpcNetworkFactory,
    },
    services,
    state::{
        ClusterState, Command, ManagerInfo, NodeResources, NodeRole, NodeState, Reachability,
        Rejected, Response,
    },
};

/// How a manager runs.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Directory for the Raft log and snapshots.
    pub dir: PathBuf,
    /// This node's ID.
    pub node_id: String,
    /// This manager's Raft ID (1 for the node that initialised the swarm).
    pub raft_id: u64,
    /// Where to serve gRPC.
    pub listen_addr: SocketAddr,
    /// `host:port` other nodes reach this manager at.
    pub advertise_addr: String,
    /// Raft timing.
    pub timing: RaftTiming,
}

/// Raft timing: sub-second by default so failover is quick.
#[derive(Clone, Copy, Debug)]
pub struct RaftTiming {
    /// The leader's heartbeat to followers.
    pub heartbeat: Duration,
    /// The shortest election timeout; the longest is twice it.
    pub election_timeout: Duration,
}

impl Default for RaftTiming {
    /// 100 ms heartbeats and a 300–600 ms election timeout. openraft 0.9
    /// lets a follower start an election only after the leader lease (the
    /// longest election timeout) plus the election timeout, so a dead leader
    /// is replaced after roughly 0.9–1.2 s plus one election round. The
    /// heartbeat is also openraft's deadline for an `AppendEntries` RPC: 50 ms
    /// proved too tight on a loaded 2-core machine.
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(300),
        }
    }
}

/// Why a manager operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The state machine refused the command (the message is Docker's).
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// No leader is known (no quorum, or an election is running).
    #[error(
        "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."
    )]
    NoLeader,
    /// Raft failed.
    #[error("raft: {0}")]
    Raft(String),
    /// Talking to another manager failed.
    #[error("manager {addr}: {message}")]
    Remote {
        /// The manager.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// Local I/O failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

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
        let log = LogStore::<TypeConfig>::open(&log_path).map_err(|e| ManagerError::Io {
            op: "opening the Raft log",
            path: log_path.clone(),
            source: std::io::Error::other(e),
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
        let timing = config.timing;
        // The swarm's setting as of the last snapshot (Docker's default before init).
        let snapshot_interval = store
            .read(|s| s.cluster.as_ref().map(|c| c.spec.raft.snapshot_interval))
            .await
            .unwrap_or(crate::state::SwarmSpec::default().raft.snapshot_interval);
        let raft_config = Config {
            cluster_name: "shoal".into(),
            heartbeat_interval: millis(timing.heartbeat),
            election_timeout_min: millis(timing.election_timeout),
            election_timeout_max: millis(timing.election_timeout) * 2,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_interval),
            max_in_snapshot_log_to_keep: 500,
            ..Config::default()
        }
        .validate()
        .map_err(|e| ManagerError::Raft(e.to_string()))?;
        let raft = Raft::new(
            config.raft_id,
            Arc::new(raft_config),
            GrpcNetworkFactory::new(Arc::clone(&client_tls)),
            log,
            store.clone(),
        )
        .await
        .map_err(|e| ManagerError::Raft(e.to_string()))?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| ManagerError::Io {
                op: "listening on",
                path: PathBuf::from(config.listen_addr.to_string()),
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
        let router = services::router(manager.clone());
        let mut stop = manager.inner.shutdown.subscribe();
        let server = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.changed().await;
            };
            if let Err(error) =
                crate::transport::serve_tls(listener, server_tls, router, stopped).await
            {
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

    /// The Raft instance, for the gRPC handlers.
    pub(crate) fn raft(&self) -> &Raft<TypeConfig> {
        &self.inner.raft
    }

    /// Makes this (fresh) manager the single voter of a new Raft group,
    /// waits until it leads, and commits `init`.
    pub async fn bootstrap(&self, init: Command) -> Result<Response, ManagerError> {
        let me = self.peer();
        let members = BTreeMap::from([(self.inner.config.raft_id, me)]);
        self.inner
            .raft
            .initialize(members)
            .await
            .map_err(|e| ManagerError::Raft(e.to_string()))?;
        self.inner
            .raft
            .wait(Some(Duration::from_secs(10)))
            .state(ServerState::Leader, "becoming the first leader")
            .await
            .map_err(|e| ManagerError::Raft(e.to_string()))?;
        self.propose(init).await
    }

    fn peer(&self) -> RaftPeer {
        RaftPeer {
            addr: self.inner.config.advertise_addr.clone(),
            node_id: self.inner.config.node_id.clone(),
        }
    }

    /// Commits `command` through Raft and returns what applying it said.
    /// On a follower the command is forwarded to the leader.
    pub async fn propose(&self, command: Command) -> Result<Response, ManagerError> {
        let proposal = Proposal {
            now_unix_ms: now_unix_ms(),
            command,
        };
        Ok(self.commit(proposal).await?.0?)
    }

    /// Commits a stamped proposal and returns what applying it said and the
    /// log index it was committed at. On a follower the proposal is
    /// forwarded to the leader, and the answer waits until this manager has
    /// applied the entry too, so a client that reads back through the same
    /// manager sees its own write (read-your-writes).
    pub async fn commit(
        &self,
        proposal: Proposal,
    ) -> Result<(Result<Response, Rejected>, u64), ManagerError> {
        match self.inner.raft.client_write(proposal.clone()).await {
            Ok(written) => {
                let result = written
                    .data
                    .0
                    .ok_or_else(|| ManagerError::Raft("the entry carried no command".into()))?;
                Ok((result, written.log_id.index))
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                let Some(leader) = forward.leader_node else {
                    return Err(ManagerError::NoLeader);
                };
                let (result, index) = self.forward(&leader.addr, &proposal).await?;
                self.inner
                    .raft
                    .wait(Some(Duration::from_secs(10)))
                    .applied_index_at_least(Some(index), "applying a forwarded write")
                    .await
                    .map_err(|e| ManagerError::Raft(e.to_string()))?;
                Ok((result, index))
            }
            Err(e) => Err(ManagerError::Raft(e.to_string())),
        }
    }

    async fn forward(
        &self,
        leader: &str,
        proposal: &Proposal,
    ) -> Result<(Result<Response, Rejected>, u64), ManagerError> {
        let remote = |message: String| ManagerError::Remote {
            addr: leader.to_owned(),
            message,
        };
        let command_json = serde_json::to_vec(proposal).map_err(|e| remote(e.to_string()))?;
        let channel = channel(
            leader,
            Arc::clone(&self.inner.client_tls),
            MANAGER_SERVER_NAME,
            Duration::from_secs(10),
        )
        .map_err(|e| remote(e.to_string()))?;
        let answer = ControlClient::new(channel)
            .propose(ProposeRequest { command_json })
            .await
            .map_err(|status| remote(status.message().to_owned()))?
            .into_inner();
        let result: Result<Response, Rejected> = serde_json::from_slice(&answer.result_json)
            .map_err(|e| remote(format!("undecodable answer: {e}")))?;
        Ok((result, answer.log_index))
    }

    /// The log index a linearizable read must see: from this manager's own
    /// Raft when it leads (after a quorum confirms its leadership), else from
    /// the leader (etcd's `ReadIndex`).
    pub async fn read_index(&self) -> Result<u64, ManagerError> {
        match self.inner.raft.get_read_log_id().await {
            Ok((read, _)) => Ok(read.map_or(0, |id| id.index)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                let Some(leader) = forward.leader_node else {
                    return Err(ManagerError::NoLeader);
                };
                let remote = |message: String| ManagerError::Remote {
                    addr: leader.addr.clone(),
                    message,
                };
                let channel = channel(
                    &leader.addr,
                    Arc::clone(&self.inner.client_tls),
                    MANAGER_SERVER_NAME,
                    Duration::from_secs(10),
                )
                .map_err(|e| remote(e.to_string()))?;
                let answer = ControlClient::new(channel)
                    .read_index(ReadIndexRequest {})
                    .await
                    .map_err(|status| remote(status.message().to_owned()))?;
                Ok(answer.into_inner().index)
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(ManagerError::NoLeader)
            }
            Err(e) => Err(ManagerError::Raft(e.to_string())),
        }
    }

    /// Waits until this manager has applied every write acknowledged before
    /// the call, so the reads that follow are linearizable, on a follower too.
    pub async fn sync_for_read(&self) -> Result<(), ManagerError> {
        let index = self.read_index().await?;
        self.inner
            .raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(index), "a linearizable read")
            .await
            .map_err(|e| ManagerError::Raft(e.to_string()))?;
        Ok(())
    }

    /// Reads the replicated state as this manager has applied it.
    pub async fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        self.inner.store.read(f).await
    }

    /// The current leader's Raft ID, if one is known.
    #[must_use]
    pub fn leader(&self) -> Option<u64> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// Whether this manager leads.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.inner.config.raft_id)
    }

    /// `host:port` of every voter, the leader first.
    #[must_use]
    pub fn manager_addrs(&self) -> Vec<String> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let leader = metrics.current_leader;
        let mut addrs: Vec<(bool, String)> = membership
            .nodes()
            .filter(|(id, _)| membership.voter_ids().any(|v| v == **id))
            .map(|(id, peer)| (Some(*id) != leader, peer.addr.clone()))
            .collect();
        addrs.sort();
        addrs.into_iter().map(|(_, addr)| addr).collect()
    }

    /// The log broker nodes listen to (used on the leader).
    pub(crate) fn log_broker(&self) -> &LogBroker {
        &self.inner.log_broker
    }

    /// The logs of `request.task_ids`, from the nodes that ran them: on the
    /// leader through its broker, on a follower by asking the leader. The
    /// stream carries log lines only; it ends (without `follow`) once every
    /// node has sent all it has.
    pub async fn task_logs(
        &self,
        request: LogSubscription,
    ) -> Result<mpsc::Receiver<LogMessage>, ManagerError> {
        let (tx, rx) = mpsc::channel(256);
        if self.is_leader() {
            let tasks_by_node = self
                .read(|s| {
                    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for id in &request.task_ids {
                        if let Some(task) = s.tasks.get(id).filter(|t| !t.node_id.is_empty()) {
                            by_node
                                .entry(task.node_id.clone())
                                .or_default()
                                .push(id.clone());
                        }
                    }
                    by_node
                })
                .await;
            let manager = self.clone();
            let mut subscribed =
                self.inner
                    .log_broker
                    .subscribe(tasks_by_node, request.follow, request.tail);
            tokio::spawn(async move {
                let mut done = 0;
                while done < subscribed.nodes || request.follow {
                    let Some(message) = subscribed.messages.recv().await else {
                        break;
                    };
                    if message.done {
                        done += 1;
                    } else if tx.send(message).await.is_err() {
                        break;
                    }
                }
                manager.inner.log_broker.unsubscribe(&subscribed.id);
            });
            return Ok(rx);
        }
        let leader = self
            .manager_addrs()
            .into_iter()
            .next()
            .filter(|_| self.leader().is_some())
            .ok_or(ManagerError::NoLeader)?;
        let remote = |message: String| ManagerError::Remote {
            addr: leader.clone(),
            message,
        };
        let channel = channel(
            &leader,
            Arc::clone(&self.inner.client_tls),
            MANAGER_SERVER_NAME,
            Duration::from_hours(1),
        )
        .map_err(|e| remote(e.to_string()))?;
        let mut stream = ControlClient::new(channel)
            .task_logs(request)
            .await
            .map_err(|status| remote(status.message().to_owned()))?
            .into_inner();
        tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                if tx.send(message).await.is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }

    /// Asks the leader (trying `managers` in order) to make this manager a
    /// voter. Called once by a manager that has just joined.
    pub async fn join_raft(&self, managers: &[String]) -> Result<(), ManagerError> {
        let mut last = ManagerError::NoLeader;
        for _ in 0..50 {
            for addr in managers {
                let result = async {
                    let channel = channel(
                        addr,
                        Arc::clone(&self.inner.client_tls),
                        MANAGER_SERVER_NAME,
                        Duration::from_secs(30),
                    )
                    .map_err(|e| e.to_string())?;
                    ControlClient::new(channel)
                        .join_raft(JoinRaftRequest {
                            addr: self.inner.config.advertise_addr.clone(),
                        })
                        .await
                        .map_err(|s| s.message().to_owned())
                }
                .await;
                match result {
                    Ok(_) => {
                        info!(leader = %addr, "joined the Raft group");
                        return Ok(());
                    }
                    Err(message) => {
                        last = ManagerError::Remote {
                            addr: addr.clone(),
                            message,
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last)
    }

    /// On the leader: adds the manager `node_id` (already registered with a
    /// Raft ID) as a learner, waits for it to catch up, then makes it a voter.
    pub(crate) async fn add_voter(&self, node_id: &str, addr: &str) -> Result<u64, ManagerError> {
        let _guard = self.inner.membership_lock.lock().await;
        let mut info = self
            .read(|s| s.nodes.get(node_id).and_then(|n| n.manager.clone()))
            .await
            .ok_or_else(|| {
                ManagerError::Raft(format!("node {node_id} is not a registered manager"))
            })?;
        let raft_id = info.raft_id;
        if info.addr != addr {
            // A promoted node serves where it says, not where the leader guessed.
            addr.clone_into(&mut info.addr);
            self.propose(Command::SetManagerInfo {
                id: node_id.to_owned(),
                manager: Some(info),
            })
            .await?;
        }
        let peer = RaftPeer {
            addr: addr.to_owned(),
            node_id: node_id.to_owned(),
        };
        self.inner
            .raft
            .add_learner(raft_id, peer, true)
            .await
            .map_err(|e| ManagerError::Raft(e.to_string()))?;
        self.inner
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([raft_id])), false)
            .await
            .map_err(|e| ManagerError::Raft(e.to_string()))?;
        info!(node_id, raft_id, "manager added to the Raft voters");
        Ok(raft_id)
    }

    /// On the leader: records a heartbeat; marks the node Ready if it was
    /// not, and records the resources it offers when they changed.
    pub(crate) async fn heartbeat(
        &self,
        node_id: &str,
        addr: &str,
        resources: NodeResources,
    ) -> Result<(), ManagerError> {
        self.inner
            .last_seen
            .lock()
            .await
            .insert(node_id.to_owned(), Instant::now());
        let node = self
            .read(|s| s.nodes.get(node_id).cloned())
            .await
            .ok_or_else(|| Rejected::NodeNotFound {
                id: node_id.to_owned(),
            })?;
        if node.status.state != NodeState::Ready || node.status.addr != addr {
            self.propose(Command::SetNodeStatus {
                id: node_id.to_owned(),
                state: NodeState::Ready,
                message: String::new(),
                addr: Some(addr.to_owned()),
            })
            .await?;
        }
        if node.description.resources != resources {
            let description = node.description;
            self.propose(Command::UpdateNodeDescription {
                id: node_id.to_owned(),
                hostname: description.hostname,
                platform: description.platform,
                engine_version: description.engine_version,
                tls: description.tls,
                resources,
            })
            .await?;
        }
        Ok(())
    }

    /// The agents' heartbeat period.
    pub async fn heartbeat_period(&self) -> Duration {
        self.read(|s| {
            s.cluster.as_ref().map_or(Duration::from_secs(5), |c| {
                Duration::from_millis(c.spec.dispatcher.heartbeat_period_ms)
            })
        })
        .await
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// While this manager leads: marks nodes whose heartbeats stopped Down and
/// keeps the managers' reachability current.
async fn leader_duties(manager: Manager) {
    let mut shutdown = manager.inner.shutdown.subscribe();
    let mut leading_since: Option<Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.changed() => return,
        }
        if !manager.is_leader() {
            leading_since = None;
            continue;
        }
        let since = *leading_since.get_or_insert_with(Instant::now);
        if let Err(error) = mark_down_nodes(&manager, since).await {
            warn!(%error, "marking silent nodes down");
        }
        if let Err(error) = update_reachability(&manager).await {
            warn!(%error, "updating manager reachability");
        }
        if let Err(error) = reconcile_roles(&manager).await {
            warn!(%error, "reconciling node roles with Raft membership");
        }
    }
}

/// Pause between orchestration rounds when nothing was applied: restart
/// delays are counted against the clock.
const ORCHESTRATION_TICK: Duration = Duration::from_millis(250);

/// While this manager leads: runs the orchestrator and scheduler after every
/// applied entry (and on a tick, for restart delays) and proposes their plan.
async fn orchestrate(manager: Manager) {
    let mut shutdown = manager.inner.shutdown.subscribe();
    let mut metrics = manager.inner.raft.metrics();
    loop {
        let applied = metrics.borrow().last_applied;
        tokio::select! {
            () = tokio::time::sleep(ORCHESTRATION_TICK) => {}
            changed = metrics.wait_for(|m| m.last_applied != applied) => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        if !manager.is_leader() {
            continue;
        }
        let now = now_unix_ms();
        let plan = manager
            .read(|state| {
                crate::orchestrator::plan(state, now, &mut || ObjectId::generate().into())
            })
            .await;
        if let Some(command) = plan {
            match manager.propose(command).await {
                Ok(response) => debug!(?response, "orchestration round applied"),
                Err(error) => warn!(%error, "orchestration round"),
            }
        }
    }
}

/// A node is Down after three heartbeat periods of silence (counting from
/// when this manager became leader, for nodes it has not heard yet).
async fn mark_down_nodes(manager: &Manager, leading_since: Instant) -> Result<(), ManagerError> {
    let grace = manager.heartbeat_period().await * 3;
    let ready: Vec<String> = manager
        .read(|s| {
            s.nodes
                .values()
                .filter(|n| n.status.state == NodeState::Ready)
                .map(|n| n.id.clone())
                .collect()
        })
        .await;
    let last_seen = manager.inner.last_seen.lock().await.clone();
    for id in ready {
        if id == manager.inner.config.node_id {
            continue;
        }
        let seen = last_seen
            .get(&id)
            .copied()
            .unwrap_or(leading_since)
            .max(leading_since);
        if seen.elapsed() > grace {
            info!(node = %id, "heartbeat failure: node down");
            manager
                .propose(Command::SetNodeStatus {
                    id,
                    state: NodeState::Down,
                    message: "heartbeat failure".into(),
                    addr: None,
                })
                .await?;
        }
    }
    Ok(())
}

/// Makes Raft membership follow the nodes' desired roles (swarmkit's role
/// manager): a node promoted to manager gets a Raft ID (it then starts its
/// manager role and asks to become a voter); a demoted manager is removed
/// from the voters, then its manager record is cleared, which tells the node
/// to stop its manager role.
async fn reconcile_roles(manager: &Manager) -> Result<(), ManagerError> {
    let (promoted, demoted, next_raft_id) = manager
        .read(|s| {
            let promoted: Vec<(String, String)> = s
                .nodes
                .values()
                .filter(|n| n.spec.role == NodeRole::Manager && n.manager.is_none())
                .map(|n| (n.id.clone(), n.status.addr.clone()))
                .collect();
            let demoted: Vec<(String, u64)> = s
                .nodes
                .values()
                .filter(|n| n.spec.role == NodeRole::Worker)
                .filter_map(|n| n.manager.as_ref().map(|m| (n.id.clone(), m.raft_id)))
                .collect();
            let next = s
                .raft_members()
                .filter_map(|n| n.manager.as_ref())
                .map(|m| m.raft_id)
                .max();
            (promoted, demoted, next.unwrap_or(0) + 1)
        })
        .await;
    let members: BTreeSet<u64> = {
        let metrics = manager.inner.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect()
    };
    let first_free = next_raft_id.max(members.iter().max().map_or(1, |m| m + 1));
    for ((id, addr), raft_id) in promoted.into_iter().zip(first_free..) {
        info!(node = %id, raft_id, "promotion: assigning a Raft ID");
        let info = ManagerInfo {
            raft_id,
            addr: format!("{addr}:{}", shoal_api::grpc::MANAGER_PORT),
            reachability: Reachability::Unknown,
        };
        manager
            .propose(Command::SetManagerInfo {
                id,
                manager: Some(info),
            })
            .await?;
    }
    for (id, raft_id) in demoted {
        let _guard = manager.inner.membership_lock.lock().await;
        if members.contains(&raft_id) {
            info!(node = %id, raft_id, "demotion: removing the voter");
            manager
                .inner
                .raft
                .change_membership(
                    ChangeMembers::RemoveVoters(BTreeSet::from([raft_id])),
                    false,
                )
                .await
                .map_err(|e| ManagerError::Raft(e.to_string()))?;
        }
        manager
            .propose(Command::SetManagerInfo { id, manager: None })
            .await?;
    }
    Ok(())
}

/// Records each manager's reachability: a voter is reachable while its node
/// heartbeats (Ready), which a crashed or partitioned manager stops doing; a
/// manager that is not a voter yet is unknown.
/// openraft 0.9 exposes no per-follower liveness, and the dispatcher's
/// heartbeats are what Docker's Down/Ready already rest on.
async fn update_reachability(manager: &Manager) -> Result<(), ManagerError> {
    let voters: BTreeSet<u64> = {
        let metrics = manager.inner.raft.metrics().borrow().clone();
        metrics.membership_config.membership().voter_ids().collect()
    };
    let changes: Vec<(String, ManagerInfo)> = manager
        .read(|s| {
            s.nodes
                .values()
                .filter_map(|n| {
                    let info = n.manager.as_ref()?;
                    let is_self = info.raft_id == manager.inner.config.raft_id;
                    let wanted = if !is_self && !voters.contains(&info.raft_id) {
                        // Joining or being promoted: not a voter yet.
                        Reachability::Unknown
                    } else if is_self || n.status.state == NodeState::Ready {
                        Reachability::Reachable
                    } else {
                        Reachability::Unreachable
                    };
                    (wanted != info.reachability).then(|| {
                        (
                            n.id.clone(),
                            ManagerInfo {
                                reachability: wanted,
                                ..info.clone()
                            },
                        )
                    })
                })
                .collect()
        })
        .await;
    for (id, info) in changes {
        manager
            .propose(Command::SetManagerInfo {
                id,
                manager: Some(info),
            })
            .await?;
    }
    Ok(())
}
