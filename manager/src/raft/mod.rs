//! Raft for the managers (openraft 0.9), split as openraft's examples are:
//! the durable log ([`log_store`]) and the state machine with its snapshots
//! ([`state_machine`]). Both are generic over the openraft type config and
//! the replicated state, so openraft's own storage test suite checks them.

pub mod log_store;
pub mod state_machine;

pub use log_store::LogStore;
pub use state_machine::{Replicated, StateMachineStore};
