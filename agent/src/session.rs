//! The node's session with the managers (swarmkit's dispatcher session):
//! a heartbeat at the period the managers ask for, to the leader when it is
//! known, failing over to the next manager when one does not answer. The
//! managers mark a node Down when its heartbeats stop.
//!
//! The caller supplies the mutual-TLS client configuration (the node's
//! certificate); this module only speaks the `Dispatcher` gRPC service.

use std::{collections::HashMap, sync::Arc, time::Duration};

use shoal_api::grpc::{
    MANAGER_SERVER_NAME, channel,
    proto::{HeartbeatRequest, dispatcher_client::DispatcherClient},
};
use tokio::sync::watch;
use tonic::transport::Channel;
use tracing::{debug, info, warn};

/// Heartbeat period used until a manager says otherwise.
const INITIAL_PERIOD: Duration = Duration::from_millis(500);
/// Pause before trying the next manager after a failure.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What the session knows, for status and `/info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    /// The manager that answered the last heartbeat.
    pub connected_to: Option<String>,
    /// Managers, leader first, as last reported.
    pub managers: Vec<String>,
    /// The role the managers want this node to have (`worker`, `manager`).
    pub desired_role: String,
    /// The node's Raft ID, once the managers gave it one.
    pub raft_id: u64,
}

/// Where and as whom to heartbeat.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Managers to try (`host:port`), leader first if known.
    pub managers: Vec<String>,
    /// Mutual-TLS configuration with the node's certificate.
    pub tls: Arc<rustls::ClientConfig>,
    /// This node's hostname, reported with each heartbeat.
    pub hostname: String,
    /// This node's address, reported with each heartbeat.
    pub addr: String,
    /// What the node offers to reservations: (billionths of CPUs, bytes).
    pub resources: (i64, i64),
}

/// The CPUs (in billionths) and memory (bytes) of this machine.
#[must_use]
pub fn node_resources() -> (i64, i64) {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let memory_kib: i64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    (
        i64::try_from(cpus).unwrap_or(1) * 1_000_000_000,
        memory_kib * 1024,
    )
}

/// Runs the session until `shutdown` changes; publishes its state on `state`.
pub async fn run(
    config: SessionConfig,
    state: watch::Sender<SessionState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut managers = config.managers.clone();
    let mut channels: HashMap<String, Channel> = HashMap::new();
    let mut next = 0usize;
    let mut period = INITIAL_PERIOD;
    loop {
        if managers.is_empty() {
            warn!("no manager known: the session cannot heartbeat");
            return;
        }
        let addr = managers[next % managers.len()].clone();
        let channel = match channels.get(&addr) {
            Some(channel) => channel.clone(),
            None => match channel(
                &addr,
                Arc::clone(&config.tls),
                MANAGER_SERVER_NAME,
                period * 2,
            ) {
                Ok(channel) => {
                    channels.insert(addr.clone(), channel.clone());
                    channel
                }
                Err(error) => {
                    warn!(%addr, %error, "unusable manager address");
                    next += 1;
                    continue;
                }
            },
        };
        let request = HeartbeatRequest {
            hostname: config.hostname.clone(),
            addr: config.addr.clone(),
            nano_cpus: config.resources.0,
            memory_bytes: config.resources.1,
        };
        let pause = match DispatcherClient::new(channel).heartbeat(request).await {
            Ok(response) => {
                let response = response.into_inner();
                period = Duration::from_millis(response.period_ms.max(50));
                if !response.manager_addrs.is_empty() && response.manager_addrs != managers {
                    managers.clone_from(&response.manager_addrs);
                }
                // Keep talking to whoever answered; it is the leader.
                next = managers.iter().position(|m| *m == addr).unwrap_or(0);
                state.send_if_modified(|s| {
                    let new = SessionState {
                        connected_to: Some(addr.clone()),
                        managers: managers.clone(),
                        desired_role: response.desired_role.clone(),
                        raft_id: response.raft_id,
                    };
                    if *s == new {
                        false
                    } else {
                        if s.connected_to.as_ref() != Some(&addr) {
                            info!(manager = %addr, "session established");
                        }
                        *s = new;
                        true
                    }
                });
                period
            }
            Err(status) => {
                debug!(manager = %addr, code = ?status.code(), message = status.message(), "heartbeat failed");
                state.send_if_modified(|s| s.connected_to.take().is_some());
                next += 1;
                RETRY_PAUSE
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}
