//! One module per `shoal` verb.

pub mod image;
pub mod node;
pub mod status;
pub mod swarm;
