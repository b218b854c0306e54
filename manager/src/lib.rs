//! The manager role of a node: the Raft store of the cluster's desired state,
//! the allocators (IPAM, VNIs, published ports), the orchestrator, the
//! scheduler, the dispatcher and the CA (DESIGN.md §3).
//!
//! Nothing lives here yet: the control-plane issue fills it. The crate exists
//! so that the dependency rules are in place from the start: the manager
//! never imports the agent, and both meet through `shoal-api`.
