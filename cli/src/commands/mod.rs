//! One module per `shoal` verb. No verb imports another: what several
//! share lives in the crate's leaf modules (`daemon`, `filters`,
//! `flag_values`, `output`, `docker_error`); what the daemon answers is
//! read as `shoal_api::docker`'s documents.

pub mod image;
pub mod network;
pub mod node;
pub mod service;
pub mod status;
pub mod swarm;
