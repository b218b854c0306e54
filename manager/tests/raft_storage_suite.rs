//! openraft's storage test suite against shoal's durable log store and
//! state-machine store (redb log, JSON snapshots on disk).
#![expect(
    clippy::result_large_err,
    reason = "the openraft traits return its StorageError"
)]

use openraft::{
    StorageError,
    testing::{StoreBuilder, Suite},
};
use serde::{Deserialize, Serialize};
use shoal_manager::raft::{LogStore, Replicated, StateMachineStore};
use std::io::Cursor;

/// A replicated counter: enough state to exercise snapshots.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Sum(u64);
impl Replicated for Sum {
    type Request = u64;
    type Response = u64;
    fn apply(&mut self, _index: u64, request: &u64) -> u64 {
        self.0 += request;
        self.0
    }
}

openraft::declare_raft_types!(
    pub Cfg: D = u64, R = u64, SnapshotData = Cursor<Vec<u8>>,
);

struct Builder;
impl StoreBuilder<Cfg, LogStore<Cfg>, StateMachineStore<Cfg, Sum>, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<
        (
            tempfile::TempDir,
            LogStore<Cfg>,
            StateMachineStore<Cfg, Sum>,
        ),
        StorageError<u64>,
    > {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(&dir.path().join("log.redb")).expect("open log");
        let sm = StateMachineStore::open(&dir.path().join("sm")).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn log_and_state_machine_pass_the_openraft_storage_suite() -> Result<(), StorageError<u64>> {
    Suite::test_all(Builder)
}
