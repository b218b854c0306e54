//! One module per `shoal` verb.

pub mod image;
pub mod network;
pub mod node;
pub mod service;
pub mod status;
pub mod swarm;
