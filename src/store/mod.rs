//! The only place that knows SQL. SQLite (bundled) in WAL mode, so readers never wait on the
//! writer; versioned migrations; one transaction per feed batch. rusqlite types stay inside:
//! callers see `model` types and [`StoreError`]. The interface is kept narrow (open, feed
//! state, apply a batch, record a failure, query stories, sweep) so that another backend can
//! stand behind it later.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Connection;

use crate::fetch::Validators;

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

/// Prepared statements kept per connection. rusqlite's default of 16 is fewer than the
/// statements one poll pass uses, and an evicted statement is parsed and planned again.
const STATEMENT_CACHE: usize = 64;

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
        Ok(Store { conn })
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
        let mut store = Store { conn };
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
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
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

    /// The feed's row, created on first sight.
    pub fn feed_state(&mut self, url: &str) -> Result<FeedState, StoreError> {
        self.conn.execute(
            "INSERT INTO feeds (url) VALUES (?1) ON CONFLICT (url) DO NOTHING",
            [url],
        )?;
        let row = self.conn.query_row(
            "SELECT id, etag, last_modified, body_hash, current_url, fingerprint FROM feeds WHERE url = ?1",
            [url],
            |r| {
                Ok(FeedState {
                    id: r.get(0)?,
                    validators: Validators { etag: r.get(1)?, last_modified: r.get(2)? },
                    body_hash: r.get(3)?,
                    current_url: r.get(4)?,
                    fingerprint: r.get(5)?,
                })
            },
        )?;
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
pub struct SharedStore(Arc<Mutex<Store>>);

impl SharedStore {
    pub fn new(store: Store) -> SharedStore {
        SharedStore(Arc::new(Mutex::new(store)))
    }

    pub async fn call<R, F>(&self, f: F) -> R
    where
        F: FnOnce(&mut Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            // A panic inside a store call poisons the mutex; the data itself is transactional,
            // so recovering the guard is safe.
            let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .expect("store task panicked")
    }
}

#[cfg(test)]
mod tests;
