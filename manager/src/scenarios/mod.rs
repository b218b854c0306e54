//! Integration-style tests of the control plane's pure core: a simulated
//! swarm (`state::test_support::Sim`) driven through `apply`, the
//! orchestrator's rounds and the agents' reports, then read back the way
//! the nodes and the Docker API read it (dispatcher, Docker views).
//!
//! They sit above every module they drive, so no module below imports its
//! tests from above.

mod networks;
mod ports;
