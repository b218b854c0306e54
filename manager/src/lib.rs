//! The manager role of a node: the Raft store of the cluster's desired state,
//! the allocators (IPAM, VNIs, published ports), the orchestrator, the
//! scheduler, the dispatcher and the CA (DESIGN.md §3).
//!
//! The manager never imports the agent; both meet through `shoal-api`.
//!
//! Module map, top-down (a module imports only the ones below it):
//!
//! | Layer | Modules | What they own |
//! |---|---|---|
//! | roles | [`runtime`] | a running manager: lifecycle, the Raft client side (proposals, forwarding, linearizable reads), membership, liveness, log routing, the leader's loops, the gRPC services |
//! | domain | [`orchestrator`], [`scheduler`], [`dispatcher`], [`docker_view`] | the leader's plan of tasks, their placement, what each node is told, the Docker API's view of the state |
//! | replication | [`raft`] | openraft's log store, state machine store and network, over [`state`] |
//! | state | [`state`] | the replicated desired state, its commands, the pure `apply` and its rejections |
//! | leaves | [`constraint`], [`ports`], [`ipam`], [`logs`], [`ca`], [`transport`] | placement constraint grammar, published ports, overlay addresses and VNIs, the log broker, certificates and join tokens, gRPC over TLS |
//!
//! Tests that drive the state, the orchestrator and the views together
//! live above them all, in `scenarios`.

pub mod ca;
pub mod constraint;
pub mod dispatcher;
pub mod docker_view;
pub mod ipam;
pub mod logs;
pub mod orchestrator;
pub mod ports;
pub mod raft;
pub mod runtime;
#[cfg(test)]
mod scenarios;
pub mod scheduler;
pub mod state;
pub mod transport;
