//! Wire types shared by the `shoal` CLI, the agent and the manager, and the
//! HTTP client for `shoald`'s unix socket.
//!
//! `shoald` serves the Docker Engine API (swarm subset) on its socket, plus a
//! few shoal-only endpoints under `/shoal/v1` ([`paths`]). This crate depends
//! on nothing above it.
//!
//! Module map:
//!
//! | module | owns |
//! | --- | --- |
//! | [`docker`] | the Docker Engine API's types: swarm, nodes, and (in its children) services, tasks and networks as `shoald` answers them and clients read them |
//! | [`service`], [`network`] | the specs users send (Docker's `ServiceSpec`, `NetworkSpec`, update and rollback configs) and the task, endpoint and VIP types the managers hand to agents |
//! | [`grpc`] | the node-to-node gRPC protocol (protobuf messages, checked conversions to the types above, channels) |
//! | [`client`] | the HTTP client for `shoald`'s unix socket |
//! | [`status`], [`paths`], [`id`] | shoal's own status document, API paths, object IDs |
//! | `go_json` | JSON as Docker's Go code writes it (`null` slices, `omitempty`) |

pub mod client;
pub mod docker;
mod go_json;
pub mod grpc;
pub mod id;
pub mod network;
pub mod paths;
pub mod service;
pub mod status;

pub use client::{Client, ClientError};
