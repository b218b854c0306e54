//! How a manager runs: where it keeps its stores and serves, who it is, and
//! its Raft timing, turned into openraft's configuration.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use openraft::{Config, SnapshotPolicy};

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

impl RaftTiming {
    /// openraft's configuration for this timing, snapshotting every
    /// `snapshot_interval` entries (the swarm's setting); not validated yet.
    pub(super) fn raft_config(self, snapshot_interval: u64) -> Config {
        Config {
            cluster_name: "shoal".into(),
            heartbeat_interval: millis(self.heartbeat),
            election_timeout_min: millis(self.election_timeout),
            election_timeout_max: millis(self.election_timeout) * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_interval),
            max_in_snapshot_log_to_keep: 500,
            ..Config::default()
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
