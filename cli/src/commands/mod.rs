//! One module per `shoal` verb.

pub mod image;
pub mod network;
pub mod node;
pub mod service;
pub mod service_logs;
pub mod service_ports;
pub mod service_update;
pub mod status;
pub mod swarm;
