//! The manager role of a node: the Raft store of the cluster's desired state,
//! the allocators (IPAM, VNIs, published ports), the orchestrator, the
//! scheduler, the dispatcher and the CA (DESIGN.md §3).
//!
//! The manager never imports the agent; both meet through `shoal-api`.

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
