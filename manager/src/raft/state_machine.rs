//! The Raft state machine: the replicated state in memory, snapshots on disk.
//!
//! Applying an entry changes only memory; durability comes from the log,
//! which openraft replays from the last snapshot after a restart (the log
//! store keeps the committed id for that). A snapshot is the whole state as
//! JSON, written to `<dir>/snapshot.json` with fsync and an atomic rename
//! before openraft may purge the log it covers.

#![expect(
    clippy::result_large_err,
    reason = "the openraft traits return its StorageError"
)]

use std::{
    fmt::Debug,
    io::{Cursor, Write as _},
    path::{Path, PathBuf},
    sync::Arc,
};

use openraft::{
    AnyError, EntryPayload, LogId, OptionalSend, RaftLogId, RaftSnapshotBuilder, RaftTypeConfig,
    Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    storage::RaftStateMachine,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::RwLock;

/// The application state Raft replicates.
pub trait Replicated:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// What a client proposes (the log entries' payload).
    type Request;
    /// What applying a request returns to the proposer.
    type Response: Default;

    /// Applies `request`, committed at log `index`. Must be deterministic:
    /// every manager applies the same requests in the same order.
    fn apply(&mut self, index: u64, request: &Self::Request) -> Self::Response;
}

type Result<T, C> = std::result::Result<T, StorageError<<C as RaftTypeConfig>::NodeId>>;

/// What is persisted: the state with the log position and membership it
/// reflects.
#[derive(Serialize, Deserialize)]
#[serde(bound = "S: Replicated, C: RaftTypeConfig")]
struct Persisted<C: RaftTypeConfig, S> {
    meta: SnapshotMeta<C::NodeId, C::Node>,
    state: S,
}

/// The in-memory state plus the log position and membership it reflects.
#[derive(Debug)]
struct Current<C: RaftTypeConfig, S> {
    last_applied: Option<LogId<C::NodeId>>,
    membership: StoredMembership<C::NodeId, C::Node>,
    state: S,
}

/// A snapshot read from disk: decoded, and the bytes to hand to openraft.
type SnapshotOnDisk<C, S> = (Persisted<C, S>, Vec<u8>);

/// The state machine store. Cloning shares it: the application reads the
/// state through [`StateMachineStore::read`] while Raft applies to it.
pub struct StateMachineStore<C: RaftTypeConfig, S> {
    applied: Arc<RwLock<Current<C, S>>>,
    dir: PathBuf,
}

impl<C: RaftTypeConfig, S> Clone for StateMachineStore<C, S> {
    fn clone(&self) -> Self {
        Self {
            applied: Arc::clone(&self.applied),
            dir: self.dir.clone(),
        }
    }
}

impl<C: RaftTypeConfig, S> Debug for StateMachineStore<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("snapshot.json")
}

fn sm_read_err<C: RaftTypeConfig>(
    e: &(impl std::error::Error + 'static),
) -> StorageError<C::NodeId> {
    StorageIOError::read_state_machine(AnyError::new(e)).into()
}

fn snapshot_write_err<C: RaftTypeConfig>(
    e: &(impl std::error::Error + 'static),
) -> StorageError<C::NodeId> {
    StorageIOError::write_snapshot(None, AnyError::new(e)).into()
}

impl<C, S> StateMachineStore<C, S>
where
    C: RaftTypeConfig<
            D = S::Request,
            R = S::Response,
            SnapshotData = Cursor<Vec<u8>>,
            Entry = openraft::Entry<C>,
        >,
    S: Replicated,
{
    /// Opens the store in `dir`, loading the last snapshot if there is one.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let applied = match std::fs::read(snapshot_path(dir)) {
            Ok(bytes) => {
                let persisted: Persisted<C, S> = serde_json::from_slice(&bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                Current {
                    last_applied: persisted.meta.last_log_id,
                    membership: persisted.meta.last_membership,
                    state: persisted.state,
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Current {
                last_applied: None,
                membership: StoredMembership::default(),
                state: S::default(),
            },
            Err(e) => return Err(e),
        };
        Ok(Self {
            applied: Arc::new(RwLock::new(applied)),
            dir: dir.to_path_buf(),
        })
    }

    /// Runs `f` on the current state (a consistent read of what is applied).
    pub async fn read<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.applied.read().await.state)
    }

    /// The snapshot currently on disk, if any.
    fn load_snapshot(&self) -> Result<Option<SnapshotOnDisk<C, S>>, C> {
        match std::fs::read(snapshot_path(&self.dir)) {
            Ok(bytes) => {
                let persisted = serde_json::from_slice(&bytes).map_err(|e| sm_read_err::<C>(&e))?;
                Ok(Some((persisted, bytes)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(sm_read_err::<C>(&e)),
        }
    }

    /// Writes snapshot bytes durably: temp file, fsync, rename, fsync dir.
    fn store_snapshot(&self, bytes: &[u8]) -> Result<(), C> {
        let path = snapshot_path(&self.dir);
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| snapshot_write_err::<C>(&e))
    }
}

impl<C, S> RaftSnapshotBuilder<C> for StateMachineStore<C, S>
where
    C: RaftTypeConfig<
            D = S::Request,
            R = S::Response,
            SnapshotData = Cursor<Vec<u8>>,
            Entry = openraft::Entry<C>,
        >,
    S: Replicated,
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, C> {
        let persisted = {
            let applied = self.applied.read().await;
            let snapshot_id = applied.last_applied.as_ref().map_or_else(
                || "0-0".to_owned(),
                |id| format!("{}-{}", id.leader_id, id.index),
            );
            Persisted::<C, S> {
                meta: SnapshotMeta {
                    last_log_id: applied.last_applied.clone(),
                    last_membership: applied.membership.clone(),
                    snapshot_id,
                },
                state: applied.state.clone(),
            }
        };
        let bytes = serde_json::to_vec(&persisted).map_err(|e| snapshot_write_err::<C>(&e))?;
        self.store_snapshot(&bytes)?;
        Ok(Snapshot {
            meta: persisted.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl<C, S> RaftStateMachine<C> for StateMachineStore<C, S>
where
    C: RaftTypeConfig<
            D = S::Request,
            R = S::Response,
            SnapshotData = Cursor<Vec<u8>>,
            Entry = openraft::Entry<C>,
        >,
    S: Replicated,
{
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<C::NodeId>>,
            StoredMembership<C::NodeId, C::Node>,
        ),
        C,
    > {
        let applied = self.applied.read().await;
        Ok((applied.last_applied.clone(), applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<C::R>, C>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self.applied.write().await;
        let mut responses = Vec::new();
        for entry in entries {
            let log_id = entry.get_log_id().clone();
            let response = match entry.payload {
                EntryPayload::Blank => S::Response::default(),
                EntryPayload::Normal(ref request) => applied.state.apply(log_id.index, request),
                EntryPayload::Membership(ref membership) => {
                    applied.membership =
                        StoredMembership::new(Some(log_id.clone()), membership.clone());
                    S::Response::default()
                }
            };
            applied.last_applied = Some(log_id);
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, C> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<C::NodeId, C::Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), C> {
        let bytes = snapshot.into_inner();
        let persisted: Persisted<C, S> = serde_json::from_slice(&bytes).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                AnyError::new(&e),
            ))
        })?;
        self.store_snapshot(&bytes)?;
        let mut applied = self.applied.write().await;
        applied.last_applied.clone_from(&meta.last_log_id);
        applied.membership.clone_from(&meta.last_membership);
        applied.state = persisted.state;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C>>, C> {
        Ok(self.load_snapshot()?.map(|(persisted, bytes)| Snapshot {
            meta: persisted.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
