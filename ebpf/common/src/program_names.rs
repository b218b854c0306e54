//! Names of the program functions in the eBPF object.

/// XDP on the node's underlay interface (ingress).
pub const XDP_UNDERLAY: &str = "xdp_underlay";
/// tc (clsact/TCX) egress on the node's underlay interface.
pub const TC_UNDERLAY_EGRESS: &str = "tc_underlay_egress";
/// tc ingress on the host side of a task's veth: frames the task sends
/// (proxy ARP, same-node delivery, VXLAN encapsulation).
pub const TC_ENDPOINT_INGRESS: &str = "tc_endpoint_ingress";
/// tc ingress on the node's flow-based VXLAN device: decapsulated frames
/// for local tasks.
pub const TC_VXLAN_INGRESS: &str = "tc_vxlan_ingress";
/// tc (TCX) ingress on the node's underlay interface: the routing
/// mesh's delivery (after `xdp_underlay` balanced a packet) or the
/// whole mesh (`--mesh-hook tc`).
pub const TC_UNDERLAY_INGRESS: &str = "tc_underlay_ingress";
/// The overlay programs, which the agent attaches per interface.
pub const OVERLAY: [&str; 2] = [TC_ENDPOINT_INGRESS, TC_VXLAN_INGRESS];
/// `cgroup/connect4` on a task's cgroup: a TCP or UDP `connect()` to a
/// service VIP goes to a backend.
pub const SOCK_LB_CONNECT4: &str = "sock_lb_connect4";
/// `cgroup/sendmsg4` on a task's cgroup: an unconnected UDP datagram to
/// a service VIP goes to a backend.
pub const SOCK_LB_SENDMSG4: &str = "sock_lb_sendmsg4";
/// `cgroup/recvmsg4` on a task's cgroup: a datagram from a backend shows
/// the VIP as its source.
pub const SOCK_LB_RECVMSG4: &str = "sock_lb_recvmsg4";
/// `cgroup/getpeername4` on a task's cgroup: a socket translated to a
/// backend shows the VIP as its peer.
pub const SOCK_LB_GETPEERNAME4: &str = "sock_lb_getpeername4";
/// The socket programs, which the agent attaches per task cgroup.
pub const SOCK_LB: [&str; 4] = [
    SOCK_LB_CONNECT4,
    SOCK_LB_SENDMSG4,
    SOCK_LB_RECVMSG4,
    SOCK_LB_GETPEERNAME4,
];
