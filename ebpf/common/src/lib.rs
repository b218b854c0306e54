//! Map keys and values shared by shoal's eBPF programs (`ebpf/programs`) and
//! the agent's data-plane module.
//!
//! Every type is `#[repr(C)]`, `Copy`, has its padding spelled out, and has a
//! `const` size assertion, so the kernel and user-space views cannot drift.
//! Fields in network byte order carry a `_be` suffix. With the `user` feature
//! the value types implement `aya::Pod`.
//!
//! Module map (everything but the two name lists is re-exported here, so a
//! type is always `shoal_ebpf_common::Name`):
//!
//! | module | owns |
//! | --- | --- |
//! | [`map_names`] | the pinned maps' names |
//! | [`program_names`] | the program functions' names |
//! | `layout` | every pinned map's key, value and entry count ([`PINNED_LAYOUTS`]) |
//! | `headers` | EtherTypes, header lengths, [`classify`] of a frame's start |
//! | `reasons` | the one [`Reason`] space every hook counts in, per [`Hook`] ([`reason_slot`]) |
//! | `protocol_counters` | the underlay hooks' [`Direction`] × IP protocol [`PacketCount`] slots |
//! | `overlay` | overlay endpoints, interfaces, config |
//! | `maglev` | service VIPs' Maglev table sizes and [`flow_hash`] |
//! | `conntrack` | [`OverlayFlowKey`], the flow key of both conntrack maps |
//! | `checksum` | incremental checksum updates ([`csum_replace4`], [`csum_replace2`]), [`ipv4_header_checksum`] |
//! | `vxlan` | VXLAN header lengths and the outer headers the programs build ([`vxlan_outer_headers`]) |
//! | `mesh` | the routing mesh's ports, config, flows and per-port [`Reason`] rows |
//! | `sock_lb` | service VIPs translated at the socket: [`SockReverseKey`], [`socket_hash`] |
#![no_std]

mod checksum;
mod conntrack;
mod headers;
mod layout;
mod maglev;
pub mod map_names;
mod mesh;
mod overlay;
pub mod program_names;
mod protocol_counters;
mod reasons;
mod sock_lb;
mod vxlan;

pub use checksum::*;
pub use conntrack::*;
pub use headers::*;
pub use layout::*;
pub use maglev::*;
pub use mesh::*;
pub use overlay::*;
pub use protocol_counters::*;
pub use reasons::*;
pub use sock_lb::*;
pub use vxlan::*;
