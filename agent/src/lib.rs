//! The shoal node agent: everything a node does locally. Today that is the
//! data plane (eBPF programs and maps, [`dataplane`]), the image store
//! ([`images`]) and the session with the managers ([`session`]); the executor, netlink, DNS and WireGuard
//! modules join it as the control plane starts assigning work to nodes.

pub mod dataplane;
pub mod images;
pub mod session;
