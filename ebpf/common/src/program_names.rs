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
