//! The Raft log on disk: a redb database (`<data-dir>/raft/log.redb`) holding
//! the entries, the vote, the committed log id and the last purged log id.
//!
//! Every write is one redb transaction committed with immediate durability
//! (fsync) before openraft is told it is done, so a manager killed with
//! `kill -9` recovers every entry it acknowledged. Writes run on the blocking
//! pool; they are serialised by redb's single writer, as openraft requires.

#![expect(
    clippy::result_large_err,
    reason = "the openraft traits return its StorageError"
)]

use std::{fmt::Debug, marker::PhantomData, ops::RangeBounds, path::Path, sync::Arc};

use openraft::{
    AnyError, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig,
    StorageError, StorageIOError, Vote,
    storage::{LogFlushed, RaftLogStorage},
};
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

/// Entries by index, JSON-encoded.
const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
/// `vote`, `committed`, `last_purged`, JSON-encoded.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

type Result<T, C> = std::result::Result<T, StorageError<<C as RaftTypeConfig>::NodeId>>;

/// The durable log store. Cloning shares the database (the log reader
/// openraft asks for is a clone).
pub struct LogStore<C> {
    db: Arc<Database>,
    _config: PhantomData<fn() -> C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: Arc::clone(&self.db),
            _config: PhantomData,
        }
    }
}

impl<C> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

fn read_err<C: RaftTypeConfig>(e: &(impl std::error::Error + 'static)) -> StorageError<C::NodeId> {
    StorageIOError::read_logs(AnyError::new(e)).into()
}

fn write_err<C: RaftTypeConfig>(e: &(impl std::error::Error + 'static)) -> StorageError<C::NodeId> {
    StorageIOError::write_logs(AnyError::new(e)).into()
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    /// Opens (or creates) the log database at `path`.
    pub fn open(path: &Path) -> std::result::Result<Self, redb::Error> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(LOGS)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(Self {
            db: Arc::new(db),
            _config: PhantomData,
        })
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, C> {
        let txn = self.db.begin_read().map_err(|e| read_err::<C>(&e))?;
        let table = txn.open_table(META).map_err(|e| read_err::<C>(&e))?;
        let Some(value) = table.get(key).map_err(|e| read_err::<C>(&e))? else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|e| read_err::<C>(&e))
    }

    /// Runs `write` in one durable transaction on the blocking pool.
    async fn write(
        &self,
        write: impl FnOnce(&redb::WriteTransaction) -> std::result::Result<(), redb::Error>
        + Send
        + 'static,
    ) -> Result<(), C> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || -> std::result::Result<(), redb::Error> {
            let txn = db.begin_write()?;
            write(&txn)?;
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| write_err::<C>(&e))?
        .map_err(|e| write_err::<C>(&e))
    }

    async fn write_meta<T: Serialize>(&self, key: &'static str, value: &T) -> Result<(), C> {
        let bytes = serde_json::to_vec(value).map_err(|e| write_err::<C>(&e))?;
        self.write(move |txn| {
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
        .await
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, C> {
        let txn = self.db.begin_read().map_err(|e| read_err::<C>(&e))?;
        let table = txn.open_table(LOGS).map_err(|e| read_err::<C>(&e))?;
        let mut entries = Vec::new();
        for item in table.range(range).map_err(|e| read_err::<C>(&e))? {
            let (_, value) = item.map_err(|e| read_err::<C>(&e))?;
            entries.push(serde_json::from_slice(value.value()).map_err(|e| read_err::<C>(&e))?);
        }
        Ok(entries)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, C> {
        let last_purged_log_id: Option<LogId<C::NodeId>> = self.read_meta(LAST_PURGED)?;
        let last_in_table = {
            let txn = self.db.begin_read().map_err(|e| read_err::<C>(&e))?;
            let table = txn.open_table(LOGS).map_err(|e| read_err::<C>(&e))?;
            match table.last().map_err(|e| read_err::<C>(&e))? {
                Some((_, value)) => Some(
                    serde_json::from_slice::<C::Entry>(value.value())
                        .map_err(|e| read_err::<C>(&e))?
                        .get_log_id()
                        .clone(),
                ),
                None => None,
            }
        };
        Ok(LogState {
            last_log_id: last_in_table.or_else(|| last_purged_log_id.clone()),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), C> {
        self.write_meta(VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, C> {
        self.read_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<C::NodeId>>) -> Result<(), C> {
        self.write_meta(COMMITTED, &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, C> {
        Ok(self
            .read_meta::<Option<LogId<C::NodeId>>>(COMMITTED)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), C>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| write_err::<C>(&e))?;
            encoded.push((entry.get_log_id().index, bytes));
        }
        let result = self
            .write(move |txn| {
                let mut table = txn.open_table(LOGS)?;
                for (index, bytes) in &encoded {
                    table.insert(index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await;
        callback.log_io_completed(result.clone().map_err(std::io::Error::other));
        result
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), C> {
        self.write(move |txn| {
            txn.open_table(LOGS)?
                .retain_in(log_id.index.., |_, _| false)?;
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), C> {
        let bytes = serde_json::to_vec(&log_id).map_err(|e| write_err::<C>(&e))?;
        self.write(move |txn| {
            txn.open_table(META)?
                .insert(LAST_PURGED, bytes.as_slice())?;
            txn.open_table(LOGS)?
                .retain_in(..=log_id.index, |_, _| false)?;
            Ok(())
        })
        .await
    }
}
