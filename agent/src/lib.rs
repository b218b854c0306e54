//! The shoal node agent: everything a node does locally, owned by one
//! [`node::Agent`] that `shoald` starts once and attaches to a swarm.
//!
//! Module map, top down (each imports only modules below it):
//!
//! | layer | modules |
//! | --- | --- |
//! | owner | [`node`]: `Agent::start`, `Agent::join` → `Attachment` |
//! | loops | [`session`] (heartbeats), [`assignments`] (assignment stream, status reports, log subscriptions), [`executor`] (one runc runner per task) |
//! | node parts | [`overlay`] (VXLAN device, task interfaces, service VIPs; writes the overlay maps) and its [`overlay::mesh`] (published ports; writes the mesh maps; encryption of overlays will live beside it), [`dns`] (a resolver per task), [`task_network`] (namespaces, veths, addresses), [`netlink`] (the kernel's netlink behind a trait, with a fake for tests), [`images`] and [`registry`] |
//! | kernel | [`dataplane`]: loads, attaches and pins the eBPF programs, typed map access, counters |
//! | leaves | [`desired`] (what the managers want: assignments, overlay directory), [`prerequisites`] (what the node must have) |
//!
//! WireGuard encryption of overlays is not built yet.

pub mod assignments;
pub mod dataplane;
pub mod desired;
pub mod dns;
pub mod executor;
pub mod images;
pub mod netlink;
pub mod node;
pub mod overlay;
pub mod prerequisites;
pub mod registry;
pub mod session;
pub mod task_network;
