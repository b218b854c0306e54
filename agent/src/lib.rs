//! The shoal node agent: everything a node does locally. Today that is the
//! data plane (eBPF programs and maps, [`dataplane`]), the image store
//! ([`images`]) and registry pulls into it ([`registry`]), the session with
//! the managers ([`session`]), the task assignments and status reports
//! ([`assignments`]), the runc executor ([`executor`]), the tasks' network
//! namespaces and veths ([`task_network`]) over netlink ([`netlink`]) and
//! their wiring into the overlay data plane ([`overlay`]), and the tasks'
//! DNS resolvers ([`dns`]); WireGuard comes next.

pub mod assignments;
pub mod dataplane;
pub mod dns;
pub mod executor;
pub mod images;
pub mod mesh;
pub mod netlink;
pub mod overlay;
pub mod registry;
pub mod session;
pub mod task_network;
