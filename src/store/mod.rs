//! The only place that knows SQL. SQLite (bundled) in WAL mode, so readers never wait on the
//! writer; versioned migrations; one transaction per feed batch. rusqlite types stay inside:
//! callers see `model` types and [`StoreError`]. The interface is kept narrow (open, feed
//! state, apply a batch, record a failure, query stories, sweep) so that another backend can
//! stand behind it later.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension};

use crate::model::Validators;

mod read;
mod schema;
mod write;

pub use read::FeedStatus;
pub use write::{BatchCounts, FeedBatch, SweepCounts};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error(
        "database schema version {found} is newer than this build of aggregate understands ({known}); use a newer aggregate"
    )]
    TooNew { found: i64, known: i64 },
    #[error("the database is locked by another process (waited {}s); is another aggregate using it?", BUSY_TIMEOUT.as_secs())]
    Busy,
    #[error("the database or its disk is full")]
    Full,
    #[error(
        "cannot write the database: disk I/O error (is the disk full, read-only, or a file size limit reached?)"
    )]
    Io,
    #[error("database error: {0}")]
    Sql(rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database writer crashed (a bug in aggregate): {0}")]
    Crashed(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{
            DatabaseBusy, DatabaseLocked, DiskFull, ReadOnly, SystemIoFailure,
        };
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked) => StoreError::Busy,
            Some(DiskFull) => StoreError::Full,
            Some(SystemIoFailure | ReadOnly) => StoreError::Io,
            _ => StoreError::Sql(e),
        }
    }
}

/// How long a statement waits for another connection's lock before failing.
/// Long enough to ride out a checkpoint or a large batch, short enough to report a stuck peer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer's page cache. Readers keep SQLite's default.
const WRITER_CACHE_KIB: i64 = 8 * 1024;

/// Dirty pages the writer holds in memory before it spills them into the WAL mid-transaction
/// (to write them again at commit): 32 MiB, above the cache's 8 MiB. A group commit's entries
/// land at random places of the date-ordered indexes, so a group dirties more distinct pages
/// the larger those are: some 20 MiB at 5000 feeds (250k entries), where spilling at 8 MiB
/// cost 7.8 s of system time in a pass instead of 6.3 s. The bound still holds a large
/// single transaction (a migration, a retention sweep) to 32 MiB.
const WRITER_SPILL_PAGES: i64 = 8192;

/// WAL pages that start a checkpoint (SQLite's default is 1000, 4 MiB). Each checkpoint
/// copies the latest version of every page in the WAL to the database and syncs both files;
/// fewer, larger checkpoints copy a page rewritten by many commits once.
const WAL_CHECKPOINT_PAGES: i64 = 8192;

/// WAL pages past which the writer checkpoints itself, waiting for it: the background
/// checkpointer has fallen behind (readers pinning old pages, a slow disk) and the WAL must
/// not grow without bound.
const WAL_HARD_LIMIT_PAGES: i64 = 8 * WAL_CHECKPOINT_PAGES;

/// Prepared statements kept per connection. rusqlite's default of 16 is fewer than the
/// statements one poll pass uses, and an evicted statement is parsed and planned again.
const STATEMENT_CACHE: usize = 64;

/// A feed's row, created on first sight and left alone after.
const INSERT_FEED: &str = "INSERT INTO feeds (url) VALUES (?1) ON CONFLICT (url) DO NOTHING";

/// What the pipeline needs to poll a feed again.
#[derive(Debug, Clone)]
pub struct FeedState {
    pub id: i64,
    pub validators: Validators,
    pub body_hash: Option<String>,
    /// What `body_hash` and the validators were recorded under (see `FeedBatch::fingerprint`).
    pub fingerprint: Option<String>,
    /// Set after a permanent redirect: poll here instead of the configured URL.
    pub current_url: Option<String>,
}

pub struct Store {
    conn: Connection,
    /// The thread that checkpoints this writer's WAL, if it has one (see
    /// [`checkpoint_in_background`]).
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(thread) = self.checkpointer.take() {
            // Removing the hook drops the checkpointer's wake-up channel: it finishes the
            // checkpoint in hand and closes its connection, so that this one, closed last,
            // makes the final checkpoint and removes the WAL.
            let _ = self
                .conn
                .wal_hook(None::<fn(&mut rusqlite::hooks::Wal, i32) -> rusqlite::Result<()>>);
            let _ = thread.join();
        }
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.to_owned(),
            message: StoreError::from(e).to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(open_err)?;
        Store::init(conn).map_err(|e| match e {
            StoreError::TooNew { .. } => e,
            other => StoreError::Open {
                path: path.to_owned(),
                message: other.to_string(),
            },
        })
    }

    /// A read-only connection to a database the writer has already opened and migrated.
    /// Readers in WAL mode never wait for the writer.
    pub fn open_reader(path: &Path) -> Result<Store, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "query_only", "ON")
            .map_err(open_err)?;
        Ok(Store {
            conn,
            checkpointer: None,
        })
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // WAL: readers (the HTTP server) never block the writer, nor it them.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across process crashes in WAL mode; only power loss may drop the
        // last commits, never corrupt.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        conn.pragma_update(None, "cache_spill", WRITER_SPILL_PAGES)?;
        // Checkpoints run automatically until a SharedStore moves them to a thread of their own.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        // Statement journals (a batch's savepoint in a group commit) stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // After a checkpoint, a WAL grown by a large pass is cut back to this size.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let mut store = Store {
            conn,
            checkpointer: None,
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = schema::MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        if version == known {
            return Ok(());
        }
        // Foreign keys are off while tables are rebuilt (dropping the old `entries` would
        // otherwise cascade into `entry_tags`), checked before each commit, and on again after.
        self.conn.pragma_update(None, "foreign_keys", "OFF")?;
        let result = self.run_migrations(version as usize);
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        result
    }

    fn run_migrations(&mut self, from: usize) -> Result<(), StoreError> {
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(from) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            let dangling: i64 =
                tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            if dangling > 0 {
                return Err(StoreError::Corrupt(format!(
                    "migration {} left {dangling} rows pointing at nothing",
                    i + 1
                )));
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Sets the display spelling of configured tags (the config's spelling wins over feeds').
    pub fn set_tag_spellings(&mut self, names: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO tags (key, display) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET display = excluded.display",
            )?;
            for name in names {
                stmt.execute((crate::model::tag_key(name), name))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Creates the rows of feeds not seen before, all in one transaction (at startup, so that
    /// polls find their feed's state without waiting for the writer).
    pub fn register_feeds(&mut self, urls: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(INSERT_FEED)?;
            for url in urls {
                insert.execute([url])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The feed's row, created on first sight.
    pub fn feed_state(&mut self, url: &str) -> Result<FeedState, StoreError> {
        self.conn.prepare_cached(INSERT_FEED)?.execute([url])?;
        Ok(self
            .find_feed_state(url)?
            .expect("the row was just created"))
    }

    /// The feed's row if it has one; needs no write, so any connection can answer.
    pub fn find_feed_state(&self, url: &str) -> Result<Option<FeedState>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT id, etag, last_modified, body_hash, current_url, fingerprint FROM feeds WHERE url = ?1",
            )?
            .query_row([url], |r| {
                Ok(FeedState {
                    id: r.get(0)?,
                    validators: Validators {
                        etag: r.get(1)?,
                        last_modified: r.get(2)?,
                    },
                    body_hash: r.get(3)?,
                    current_url: r.get(4)?,
                    fingerprint: r.get(5)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    /// Checks the database file's integrity (SQLite's own `integrity_check`).
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt(result))
        }
    }
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Read-only connections for the HTTP server, so serving never waits on polling. Connections
/// are opened on demand and up to [`MAX_IDLE_READERS`] are kept for reuse.
pub struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
}

/// Idle read connections kept open: one per core of a small server is plenty for SQLite reads
/// that take milliseconds.
const MAX_IDLE_READERS: usize = 4;

impl ReaderPool {
    pub fn new(path: &Path) -> Arc<ReaderPool> {
        Arc::new(ReaderPool {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        })
    }

    pub async fn call<R, F>(self: &Arc<Self>, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let reuse = pool.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let store = match reuse {
                Some(s) => s,
                None => Store::open_reader(&pool.path)?,
            };
            let result = f(&store);
            let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(store);
            }
            result
        })
        .await
        .expect("reader task panicked")
    }
}

/// The store shared between tasks. Every call runs on tokio's blocking pool, so SQLite never
/// stalls the async workers; the std mutex is never held across an `.await`.
#[derive(Clone)]
pub struct SharedStore {
    /// Connections for reads the pipeline makes, so they never wait while the writer holds
    /// the store for a group commit. None for an in-memory store (tests). Declared before
    /// `store` so they close first and the writer, closing last, removes the WAL.
    readers: Option<Arc<ReaderPool>>,
    store: Arc<Mutex<Store>>,
    /// Feed batches waiting to be written together (see [`SharedStore::apply_batch`]).
    queue: Arc<Mutex<Queue>>,
    /// Wakes the group's writer early when the group is full.
    full: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Queue {
    batches: Vec<Queued>,
    entries: usize,
}

struct Queued {
    feed_id: i64,
    batch: FeedBatch,
    reply: tokio::sync::oneshot::Sender<Result<BatchCounts, StoreError>>,
}

/// How long the first batch of a group waits for others before the group is written. Every
/// commit rewrites each index page it touched, and a cold pass's entries land all over the
/// date and tag indexes; one commit per feed wrote 1.2 GB of WAL for a 130 MB database of
/// 1000 feeds. A poll's result is a fifth of a second later; nothing waits on it but its report.
pub const COMMIT_DELAY: Duration = Duration::from_millis(200);

/// A group is written at once when it holds this many entries: large transactions gain
/// nothing more, and their dirty pages must stay under [`WRITER_SPILL_PAGES`] or spill into
/// the WAL.
const GROUP_ENTRIES: usize = 4000;

/// A group is written at once when it holds this many feeds' batches. Whoever queues batches
/// should allow twice as many to wait (one group being written, the next gathering); if they
/// allowed fewer, polls would stand idle until [`COMMIT_DELAY`] ran out. A cold pass of 5000
/// feeds took a sixth less time with 48 than with 24: half the commits, each rewriting pages
/// all over the date-ordered indexes, which grow with the database.
pub const GROUP_BATCHES: usize = 48;

impl SharedStore {
    pub fn new(mut store: Store) -> SharedStore {
        let path = store
            .conn
            .path()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        if let Some(path) = &path {
            checkpoint_in_background(&mut store, path);
        }
        SharedStore {
            readers: path.map(|p| ReaderPool::new(&p)),
            store: Arc::new(Mutex::new(store)),
            queue: Arc::new(Mutex::new(Queue::default())),
            full: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Runs a read on a reader connection (the writer's, for an in-memory store), so it never
    /// waits for a group commit.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        match &self.readers {
            Some(readers) => readers.call(f).await,
            None => self.call(move |s| f(s)).await,
        }
    }

    pub async fn call<R, F>(&self, f: F) -> R
    where
        F: FnOnce(&mut Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        let inner = self.store.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&inner)))
            .await
            .expect("store task panicked")
    }

    /// The feed's state for a poll. Read on a reader connection when the feed already has its
    /// row (see [`Store::register_feeds`]): a poll starting while a group commit is written
    /// does not wait for it. Before, every new poll in a cold pass queued behind each commit,
    /// and the pass's fetching stalled with it.
    pub async fn feed_state(&self, url: &str) -> Result<FeedState, StoreError> {
        if let Some(readers) = &self.readers {
            let u = url.to_owned();
            if let Some(state) = readers.call(move |s| s.find_feed_state(&u)).await? {
                return Ok(state);
            }
        }
        let u = url.to_owned();
        self.call(move |s| s.feed_state(&u)).await
    }

    /// Stores one feed's batch, all or nothing, committed together with the other batches
    /// that arrive within [`COMMIT_DELAY`] of the first (group commit, see
    /// [`Store::apply_batches`]). `others_coming` says whether the caller knows of more
    /// batches on their way; if not, the group is written at once instead of waiting for
    /// them (the last feed of a pass, a lone poll of the daemon). Returns once the batch is
    /// committed.
    pub async fn apply_batch(
        &self,
        feed_id: i64,
        batch: FeedBatch,
        others_coming: bool,
    ) -> Result<BatchCounts, StoreError> {
        let (reply, result) = tokio::sync::oneshot::channel();
        let first = {
            let mut q = lock(&self.queue);
            q.entries += batch.entries.len();
            q.batches.push(Queued {
                feed_id,
                batch,
                reply,
            });
            if !others_coming || q.entries >= GROUP_ENTRIES || q.batches.len() >= GROUP_BATCHES {
                self.full.notify_one();
            }
            q.batches.len() == 1
        };
        if first {
            // The group is written by a task of its own, so that its batches are stored even
            // if this caller is cancelled while it waits.
            let (store, queue, full) = (self.store.clone(), self.queue.clone(), self.full.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(COMMIT_DELAY) => {}
                    _ = full.notified() => {}
                }
                let written = tokio::task::spawn_blocking(move || write_group(store, queue)).await;
                if let Err(e) = written {
                    tracing::error!(error = %e, "the database writer crashed");
                }
            });
        }
        // The writer answers every batch of its group, unless it panicked: then the whole
        // group gets this error, and the process goes on.
        result.await.unwrap_or_else(|_| {
            Err(StoreError::Crashed(
                "the write of this feed's batch panicked".into(),
            ))
        })
    }
}

/// Writes every batch queued by now in one transaction and answers each. The store's handles
/// are let go before the answers: a caller that drops the last `SharedStore` after its answer
/// closes the database then and there, not whenever this thread gets round to it.
fn write_group(store: Arc<Mutex<Store>>, queue: Arc<Mutex<Queue>>) {
    let (group, results) = {
        let mut writer = lock(&store);
        // Taken under the store's lock: one group is written whole before the next is taken.
        let group = std::mem::take(&mut *lock(&queue));
        let batches: Vec<(i64, &FeedBatch)> = group
            .batches
            .iter()
            .map(|q| (q.feed_id, &q.batch))
            .collect();
        let started = std::time::Instant::now();
        let results = writer.apply_batches(&batches);
        tracing::debug!(
            batches = batches.len(),
            entries = group.entries,
            took = ?started.elapsed(),
            "wrote a group of batches"
        );
        (group, results)
    };
    drop((store, queue));
    for (q, r) in group.batches.into_iter().zip(results) {
        // A caller that has gone (its pass was cancelled) needs no answer; the batch is stored.
        let _ = q.reply.send(r);
    }
}

/// Moves WAL checkpoints off the writer. A checkpoint syncs the database file, and on a busy
/// disk that sync took 0.3 s; made by the writer at the end of a commit, it held the store
/// while every poll of a pass queued behind it and the CPUs sat idle. A thread of its own,
/// on its own connection, checkpoints passively (never blocking the writer) whenever a commit
/// leaves [`WAL_CHECKPOINT_PAGES`] in the WAL; only past [`WAL_HARD_LIMIT_PAGES`] does the
/// writer checkpoint itself. If the thread cannot start, SQLite's own checkpoints stay on.
fn checkpoint_in_background(store: &mut Store, path: &Path) {
    match start_checkpointer(store, path) {
        Ok(thread) => store.checkpointer = Some(thread),
        Err(e) => tracing::warn!(error = %e, "no background checkpointer; the writer checkpoints"),
    }
}

/// The checkpointer's connection and thread, and the writer's hook that wakes it.
fn start_checkpointer(
    store: &mut Store,
    path: &Path,
) -> Result<std::thread::JoinHandle<()>, Box<dyn std::error::Error>> {
    let conn = Connection::open(path)?;
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("checkpointer".into())
        .spawn(move || {
            let _ = conn.busy_timeout(BUSY_TIMEOUT);
            // Ends when the writer's connection, which holds `wake`, is closed.
            while woken.recv().is_ok() {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the next commit retries");
                }
            }
        })?;
    // If the hook cannot be set, `wake` is dropped with it and the thread ends at once.
    store
        .conn
        .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            let pages = i64::from(pages);
            if pages >= WAL_HARD_LIMIT_PAGES {
                // Errors here would fail the commit that already happened; the next one retries.
                let _ = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE);
            } else if pages >= WAL_CHECKPOINT_PAGES {
                // Full means a checkpoint is already asked for.
                let _ = wake.try_send(());
            }
            Ok(())
        }))?;
    Ok(thread)
}

/// A panic inside a store call poisons the mutex; the data itself is transactional, so
/// recovering the guard is safe.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
