//! A SQLite database (bundled) in WAL mode, so readers never wait on the writer: opening and
//! migrating it, the writer's settings, and the thread that checkpoints its WAL.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

use super::schema;
use super::stories;
use crate::dedup::cluster::Settings;
use crate::dedup::index::StoryIndex;
use crate::store::StoreError;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{
            DatabaseBusy, DatabaseLocked, DiskFull, ReadOnly, SystemIoFailure,
        };
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked) => StoreError::Busy(BUSY_TIMEOUT),
            Some(DiskFull) => StoreError::Full,
            Some(SystemIoFailure | ReadOnly) => StoreError::Io,
            _ => StoreError::Engine(e.to_string()),
        }
    }
}

/// How long a statement waits for another connection's lock before failing.
/// Long enough to ride out a checkpoint or a large batch, short enough to report a stuck peer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer's page cache. Readers keep SQLite's default.
const WRITER_CACHE_KIB: i64 = 8 * 1024;

/// Dirty pages the writer holds in memory before it spills them into the WAL mid-transaction
/// (to write them again at commit): 8 MiB, the cache's size. A group commit's entries land at
/// random places of the date-ordered indexes, so a large group dirties many distinct pages;
/// 32 MiB here once saved a little system time at 5000 feeds, but measured again with SQLite on
/// jemalloc (3 alternating pairs at 1000 feeds, 2 at 5000) the walls are within noise and the
/// varied 1000-feed pass peaks 9 MiB lower (BENCHMARKS.md, "Speed, round 4"). The bound also
/// holds a large single transaction (a migration, a retention sweep) to 8 MiB.
const WRITER_SPILL_PAGES: i64 = 2048;

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

/// One connection to the database: the writer (which migrates it on opening, and may have a
/// checkpointer beside it) or a reader.
pub struct Db {
    pub(super) conn: Connection,
    /// The thread that checkpoints this writer's WAL, if it has one (see
    /// [`checkpoint_in_background`]).
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// The writer's index of recent stories (see `stories`); readers have none.
    pub(super) stories: Option<StoryIndex>,
}

impl Drop for Db {
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

impl Db {
    pub fn open(path: &Path, settings: &Settings) -> Result<Db, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            target: path.display().to_string(),
            message: StoreError::from(e).to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                target: path.display().to_string(),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(open_err)?;
        Db::init(conn, settings).map_err(|e| match e {
            StoreError::TooNew { .. } => e,
            other => StoreError::Open {
                target: path.display().to_string(),
                message: other.to_string(),
            },
        })
    }

    /// A read-only connection to a database the writer has already opened and migrated.
    /// Readers in WAL mode never wait for the writer.
    pub fn open_reader(path: &Path) -> Result<Db, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            target: path.display().to_string(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "query_only", "ON")
            .map_err(open_err)?;
        Ok(Db {
            conn,
            checkpointer: None,
            stories: None,
        })
    }

    fn init(conn: Connection, settings: &Settings) -> Result<Db, StoreError> {
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
        // Checkpoints run automatically until the backend moves them to a thread of their own.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        // Statement journals (a batch's savepoint in a group commit) stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // After a checkpoint, a WAL grown by a large pass is cut back to this size.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let mut store = Db {
            conn,
            checkpointer: None,
            stories: Some(StoryIndex::new(settings.clone())),
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
            if i + 1 == schema::CLUSTERED_AT {
                let settings = self.stories.as_ref().map(|s| s.settings().clone());
                let n = stories::recluster(&tx, &settings.unwrap_or_default())?;
                tracing::info!(entries = n, "stored entries clustered into stories, once");
            }
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

    /// Writes a consistent, compacted copy of the database to `to` (`VACUUM INTO`): one read
    /// transaction, so a service writing meanwhile neither waits nor shows half a poll in it.
    pub fn backup_into(&self, to: &Path) -> Result<(), StoreError> {
        let target = to
            .to_str()
            .ok_or_else(|| StoreError::Engine(format!("{} is not a UTF-8 path", to.display())))?;
        self.conn.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }

    /// Rebuilds the file without its free pages (space retention freed), then empties the
    /// write-ahead log.
    pub fn vacuum(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
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

pub(super) use crate::store::rows::{from_ts, ts};

/// Moves WAL checkpoints off the writer. A checkpoint syncs the database file, and on a busy
/// disk that sync took 0.3 s; made by the writer at the end of a commit, it held the store
/// while every poll of a pass queued behind it and the CPUs sat idle. A thread of its own,
/// on its own connection, checkpoints passively (never blocking the writer) whenever a commit
/// leaves [`WAL_CHECKPOINT_PAGES`] in the WAL; only past [`WAL_HARD_LIMIT_PAGES`] does the
/// writer checkpoint itself. If the thread cannot start, SQLite's own checkpoints stay on.
pub(super) fn checkpoint_in_background(store: &mut Db, path: &Path) {
    match start_checkpointer(store, path) {
        Ok(thread) => store.checkpointer = Some(thread),
        Err(e) => tracing::warn!(error = %e, "no background checkpointer; the writer checkpoints"),
    }
}

/// The checkpointer's connection and thread, and the writer's hook that wakes it.
fn start_checkpointer(
    store: &mut Db,
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
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where `copy::TABLES`' `table` is read from here: an entry's signature, a column of
/// `entries` in PostgreSQL, is in a table of its own in SQLite (schema migration 7).
fn exported_from(table: &str) -> &str {
    match table {
        "entries" => "entries LEFT JOIN signatures ON signatures.entry_id = entries.id",
        other => other,
    }
}

impl Db {
    /// Streams every row of `table`'s `columns` as CSV, in chunks of about `chunk` bytes,
    /// to `send` (which returns false to stop); from one read transaction, so that all the
    /// tables read are of one moment. Returns the rows read.
    pub fn export_csv(
        &self,
        (table, columns): (&str, &str),
        chunk: usize,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Result<u64, StoreError> {
        use rusqlite::types::ValueRef;
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {columns} FROM {}", exported_from(table)))?;
        let width = stmt.column_count();
        let mut rows = stmt.query([])?;
        let (mut buf, mut n) = (Vec::with_capacity(chunk + 4096), 0u64);
        while let Some(r) = rows.next()? {
            for i in 0..width {
                if i > 0 {
                    buf.push(b',');
                }
                let text;
                let value: Option<&[u8]> = match r.get_ref(i)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(v) => {
                        text = v.to_string();
                        Some(text.as_bytes())
                    }
                    ValueRef::Real(v) => {
                        text = v.to_string();
                        Some(text.as_bytes())
                    }
                    ValueRef::Text(t) => Some(t),
                    ValueRef::Blob(b) => {
                        text = format!("\\x{}", crate::dedup::hex(b));
                        Some(text.as_bytes())
                    }
                };
                crate::store::copy::csv_field(&mut buf, value);
            }
            buf.push(b'\n');
            n += 1;
            if buf.len() >= chunk && !send(std::mem::take(&mut buf)) {
                return Ok(n);
            }
        }
        if !buf.is_empty() {
            send(buf);
        }
        Ok(n)
    }

    /// Runs the reads of `f` in one read transaction, so they see one snapshot: a page of
    /// stories is never assembled from two states of the store while polls are written (each
    /// statement on its own was a transaction of its own). It also keeps the connection's page
    /// cache between them; in WAL mode SQLite drops a reader's whole cache when another
    /// connection committed since its last transaction.
    pub fn in_snapshot<R>(
        &self,
        f: impl FnOnce(&Db) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let result = f(self);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        match (result, self.conn.execute_batch(end)) {
            (Ok(r), Ok(())) => Ok(r),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
        }
    }

    /// Begins the read transaction `export_csv` reads the tables in.
    pub fn begin_snapshot(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN")?;
        // A read transaction takes its snapshot at the first read.
        self.conn
            .query_row("SELECT COUNT(*) FROM feeds", [], |_| Ok(()))?;
        Ok(())
    }
}
