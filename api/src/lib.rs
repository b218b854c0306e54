//! Wire types shared by the `shoal` CLI, the agent and the manager, and the
//! HTTP client for `shoald`'s unix socket.
//!
//! `shoald` serves the Docker Engine API (swarm subset) on its socket, plus a
//! few shoal-only endpoints under `/shoal/v1` ([`paths`]). This crate depends
//! on nothing above it.

pub mod client;
pub mod docker;
pub mod grpc;
pub mod id;
pub mod network;
pub mod paths;
pub mod service;
pub mod status;

pub use client::{Client, ClientError};
