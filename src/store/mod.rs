//! The only place that knows SQL. Callers hold a [`Store`], a cheap handle to clone, and speak
//! in verbs and `model` types: register feeds, start a poll, apply its batch or record how it
//! ended, query stories, sweep. How a backend writes (SQLite's group commit, reader
//! connections and checkpointer thread) is its own business and stays behind the verbs.
//!
//! The backends are variants of a private enum, not implementations of a trait: the set is
//! closed (the ones this crate ships), every verb is a plain `async fn` with no boxing, and a
//! verb added here does not compile until every backend answers it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::{PostgresConfig, StorageConfig};
use crate::dedup::cluster::Settings;
use crate::model::{PreparedEntry, Story, StoryId, StoryPage, StoryQuery, Validators};

mod copy;
mod postgres;
mod rows;
mod sqlite;

#[cfg(test)]
mod contract;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {target}: {message}")]
    Open { target: String, message: String },
    #[error(
        "database schema version {found} is newer than this build of aggregate understands ({known}); use a newer aggregate"
    )]
    TooNew { found: i64, known: i64 },
    #[error("the database is locked by another process (waited {}s); is another aggregate using it?", .0.as_secs())]
    Busy(std::time::Duration),
    #[error("the database or its disk is full")]
    Full,
    #[error(
        "cannot write the database: disk I/O error (is the disk full, read-only, or a file size limit reached?)"
    )]
    Io,
    /// Anything else the database engine reported, in its words.
    #[error("database error: {0}")]
    Engine(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The backend cannot do what was asked; the message says what to use instead.
    #[error("{0}")]
    Unsupported(String),
    #[error("the database writer crashed (a bug in aggregate): {0}")]
    Crashed(String),
    /// Several instances share the database, and this one's claim on a feed ran out before
    /// its result was written: another instance polls the feed now, and this result is
    /// refused rather than merged with that one's.
    #[error(
        "another instance took this feed over (this one's lease ran out, see storage.lease): its result was not stored"
    )]
    LeaseLost,
}

pub use copy::Copied;

/// Copies the SQLite database at `from` (migrated to this release's schema first) into the
/// empty PostgreSQL database `to` names (migrated too), keeping every id, guid, story,
/// tombstone and feed state. Nothing is written unless the whole copy succeeds.
pub async fn copy_sqlite_to_postgres(
    from: &Path,
    to: &PostgresConfig,
) -> Result<Copied, StoreError> {
    if !from.exists() {
        return Err(StoreError::Open {
            target: from.display().to_string(),
            message: "no such file: nothing to migrate".into(),
        });
    }
    let target = postgres::Postgres::open(to, &Settings::default()).await?;
    let (send, receive) = tokio::sync::mpsc::channel(4);
    let path = from.to_owned();
    let reader = tokio::task::spawn_blocking(move || sqlite::export(&path, send));
    let copied = target.import(receive).await;
    // The reader stops once its receiver is gone, whatever the outcome.
    reader
        .await
        .map_err(|e| StoreError::Crashed(e.to_string()))?;
    copied
}

/// Tags for a stored entry, from its feed's URL and the entry: `None` leaves them as they are.
pub type Retagger =
    Box<dyn Fn(&str, &crate::model::Entry) -> Option<Vec<crate::model::Tag>> + Send + Sync>;

/// What a config tells the store, at startup and on every reload.
#[derive(Debug, Clone)]
pub struct Configured {
    /// The feeds' URLs, in config order.
    pub feeds: Vec<String>,
    /// Tag names as the config spells them (the config's spelling wins over feeds').
    pub tag_spellings: Vec<String>,
    /// What instances sharing the database must agree on (`Config::shared_fingerprint`).
    pub fingerprint: String,
}

/// Another instance sharing the database, whose config differs from this one's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherConfig {
    pub instance: String,
    /// When it last recorded its config.
    pub seen: DateTime<Utc>,
}

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

/// What a feed's last stored batch held, so that a poll need not prepare again in full what
/// the writer would find unchanged: a digest of each entry's key and content hash. Once a
/// batch is written, each of its entries is stored with that content or kept out by its
/// tombstone, so an entry of the next body with the same digest is one the writer will leave
/// as it is. The backend keeps the record with the feed's state (8 bytes an entry), written
/// in the batch's own transaction; see [`Store::held`].
#[derive(Debug, Clone, Default)]
pub struct Held(std::collections::HashSet<u64>);

impl Held {
    fn digest(e: &PreparedEntry) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(e.key.as_bytes());
        h.update(&[0]);
        h.update(e.content_hash.as_bytes());
        h.digest()
    }

    /// Whether the last batch stored `e` as it is now.
    pub fn keeps(&self, e: &PreparedEntry) -> bool {
        self.0.contains(&Held::digest(e))
    }

    /// The record a backend keeps for a batch of `entries`.
    pub fn record(entries: &[PreparedEntry]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|e| Held::digest(e).to_le_bytes())
            .collect()
    }

    /// What a kept record says; a damaged one says what it can (a hint: any entry it fails
    /// to name is prepared in full).
    pub fn read(record: &[u8]) -> Held {
        Held(
            record
                .chunks_exact(8)
                .map(|d| u64::from_le_bytes(d.try_into().expect("chunks of 8")))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A poll under way: the feed's state as it began, and the backend's hold on the feed until
/// its result is recorded. Dropped when the poll is over, whatever its end.
pub struct Poll {
    pub state: FeedState,
    ticket: Ticket,
}

/// Whether a poll may start when the shared schedule says the feed is not due yet (several
/// instances on one database share it; a lone instance's is its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The daemon: only when the feed is due, no other instance is polling it, and fewer than
    /// `per_host` polls of its host are under way in all instances together. Its result may
    /// be written with the store's next group rather than at once.
    Due { per_host: usize },
    /// `--once`: now, unless another instance is polling it.
    Now,
}

/// How a request to poll a feed ended.
pub enum Started {
    Poll(Poll),
    /// Another instance is polling the feed, or has and set its next poll: try again then.
    Elsewhere {
        until: Option<DateTime<Utc>>,
    },
}

/// A backend's part of a [`Poll`] (the SQLite backend counts the polls under way, to know
/// whether a batch should wait for others to commit with).
enum Ticket {
    Sqlite(sqlite::InFlight),
    Postgres(postgres::Lease),
}

/// Everything one successful fetch-and-parse of a feed writes.
#[derive(Debug, Clone)]
pub struct FeedBatch {
    pub title: Option<String>,
    pub site_link: Option<String>,
    pub status: u16,
    pub validators: Validators,
    pub body_hash: String,
    /// Fingerprint of the settings the entries were processed under.
    pub fingerprint: String,
    pub moved_to: Option<String>,
    pub entries: Vec<PreparedEntry>,
    /// What the parse says though it succeeded (repairs, entries it could not read): the
    /// feed's status shows it until the next successful read.
    pub notes: Vec<String>,
    pub now: DateTime<Utc>,
}

/// A poll that found nothing new: 304, or a body identical to the last one parsed.
#[derive(Debug, Clone)]
pub struct Unchanged {
    pub status: u16,
    /// Updated only where the server sent new ones.
    pub validators: Validators,
    pub moved_to: Option<String>,
    pub now: DateTime<Utc>,
}

/// Polls kept per feed for its page: the schema's `feeds_polled` trigger deletes the older.
pub const POLLS_KEPT: usize = 20;

/// One poll of a feed as its page lists it: when, the HTTP status, what failed or what the
/// read noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRecord {
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub note: Option<String>,
}

/// A poll that failed: only the feed's status records it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: Option<u16>,
    pub error: String,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Entries removed by retention earlier and still in the feed: not stored again.
    pub tombstoned: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepCounts {
    pub entries: usize,
    pub tombstones: usize,
}

/// A feed's health, as the last polls left it.
#[derive(Debug, Clone)]
pub struct FeedStatus {
    pub url: String,
    pub title: Option<String>,
    /// The site the feed says it belongs to.
    pub site_link: Option<String>,
    pub current_url: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// What the last successful read noted (repairs, entries it could not read).
    pub last_note: Option<String>,
    pub consecutive_failures: u32,
    pub next_poll: Option<DateTime<Utc>>,
    /// The server answered 410 Gone: the feed is no longer polled.
    pub gone: bool,
    pub entries: u64,
}

/// A feed's health in one word: what the index page colours and `aggregate feeds` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Configured, never polled yet.
    NotPolled,
    Ok,
    /// Its last poll failed.
    Failing,
    /// The server answered 410 Gone: no longer polled.
    Gone,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::NotPolled => "not polled yet",
            Health::Ok => "ok",
            Health::Failing => "failing",
            Health::Gone => "gone",
        }
    }
}

impl FeedStatus {
    pub fn health(&self) -> Health {
        if self.gone {
            Health::Gone
        } else if self.last_error.is_some() {
            Health::Failing
        } else if self.last_attempt.is_none() {
            Health::NotPolled
        } else {
            Health::Ok
        }
    }

    /// Where the feed is polled: its address after a permanent redirect, else the configured one.
    pub fn polled_url(&self) -> &str {
        self.current_url.as_deref().unwrap_or(&self.url)
    }
}

/// A handle on the database; clones share it. The last one dropped closes it.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

/// Runs `$call` on whichever backend the store is.
macro_rules! on_backend {
    ($store:expr, $b:ident => $call:expr) => {
        match &$store.backend {
            Backend::Sqlite($b) => $call,
            Backend::Postgres($b) => $call,
        }
    };
}

impl Store {
    /// Opens (creating and migrating as needed) the database the config names; stories are
    /// told apart under `stories`.
    pub async fn open(config: &StorageConfig, stories: &Settings) -> Result<Store, StoreError> {
        match &config.postgres {
            Some(pg) => Store::open_postgres(pg, stories).await,
            None => Store::open_sqlite(&config.path, stories).await,
        }
    }

    /// Connects to the PostgreSQL database the config names, migrating it (under an
    /// advisory lock, so that instances starting together migrate it once).
    pub async fn open_postgres(
        config: &PostgresConfig,
        stories: &Settings,
    ) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Postgres(postgres::Postgres::open(config, stories).await?),
        })
    }

    /// Opens (creating and migrating as needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path, stories: &Settings) -> Result<Store, StoreError> {
        let (path, settings): (PathBuf, Settings) = (path.to_owned(), stories.clone());
        let backend = tokio::task::spawn_blocking(move || sqlite::Sqlite::open(&path, &settings))
            .await
            .map_err(|e| StoreError::Crashed(e.to_string()))??;
        Ok(Store {
            backend: Backend::Sqlite(backend),
        })
    }

    /// Calls `on_change` whenever another instance sharing the database changes what the
    /// outputs show (and whenever that cannot be known, after a lost connection), until
    /// `token` is cancelled. A database only this process writes needs no watching.
    pub fn watch_changes(
        &self,
        token: tokio_util::sync::CancellationToken,
        on_change: std::sync::Arc<dyn Fn() + Send + Sync>,
    ) {
        match &self.backend {
            Backend::Sqlite(_) => {}
            Backend::Postgres(b) => b.watch_changes(token, on_change),
        }
    }

    /// How many parsed batches may usefully wait for the store at once: what the pipeline
    /// lets queue before it holds further polls back.
    pub fn queue_depth(&self) -> usize {
        on_backend!(self, b => b.queue_depth())
    }

    /// Records a config, the one way both startup and a reload do: rows for feeds not seen
    /// before (so that polls find their feed's state without waiting for a writer), "gone"
    /// forgotten for feeds no longer configured (so re-adding one polls it
    /// again), the configured tags' display spelling (the config's wins over feeds'). Returns
    /// the other instances sharing the database that run a different config (none alone).
    pub async fn configure(&self, config: Configured) -> Result<Vec<OtherConfig>, StoreError> {
        on_backend!(self, b => b.configure(config).await)
    }

    /// Begins a poll of the feed at `url`, unless another instance holds it or `claim` says
    /// it is not due: its state, its row created on first sight.
    pub async fn start_poll(&self, url: &str, claim: Claim) -> Result<Started, StoreError> {
        on_backend!(self, b => b.start_poll(url, claim).await)
    }

    /// What the polled feed's last stored batch held. A hint, never a promise: the writer
    /// decides again what is new when the batch comes, and derives there whatever the poll
    /// left out for an entry that turns out new or changed after all.
    pub async fn held(&self, poll: &Poll) -> Result<Held, StoreError> {
        on_backend!(self, b => b.held(poll.state.id).await)
    }

    /// Stores a poll's entries and the feed's new state, all or nothing. Returns once the
    /// batch is committed.
    pub async fn apply_batch(
        &self,
        poll: &Poll,
        batch: FeedBatch,
    ) -> Result<BatchCounts, StoreError> {
        on_backend!(self, b => b.apply_batch(poll, batch).await)
    }

    /// A poll that found nothing new.
    pub async fn record_unchanged(&self, poll: &Poll, seen: Unchanged) -> Result<(), StoreError> {
        on_backend!(self, b => b.record_unchanged(poll, seen).await)
    }

    /// A failed poll: nothing stored for the feed is touched but its status.
    pub async fn record_failure(&self, poll: &Poll, failure: Failure) -> Result<(), StoreError> {
        on_backend!(self, b => b.record_failure(poll, failure).await)
    }

    /// Records when the scheduler means to poll the feed next (shown on the status page, and
    /// honoured after a restart).
    pub async fn set_next_poll(
        &self,
        url: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        on_backend!(self, b => b.set_next_poll(url, at).await)
    }

    /// A server asked (Retry-After) not to be polled before `until`: every instance sharing
    /// the database honours it. One instance alone keeps it in its scheduler instead.
    pub async fn hold_host(&self, host: &str, until: DateTime<Utc>) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(b) => b.hold_host(host, until).await,
        }
    }

    /// The server said 410 Gone: polling stops for good (until the feed is removed from the
    /// config and added again, or its URL changes).
    pub async fn mark_gone(&self, url: &str) -> Result<(), StoreError> {
        on_backend!(self, b => b.mark_gone(url).await)
    }

    /// Deletes entries first seen before `cutoff`, leaving tombstones, and forgets tombstones
    /// whose entry has not been in its feed since `cutoff`.
    pub async fn sweep(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SweepCounts, StoreError> {
        on_backend!(self, b => b.sweep(cutoff, now).await)
    }

    /// The newest `q.limit` stories having any of `q.tags` (all when empty) and none of
    /// `q.exclude`, each story once, newest first.
    pub async fn stories(&self, q: StoryQuery) -> Result<Vec<Story>, StoreError> {
        Ok(self.page(q).await?.stories)
    }

    /// One page of stories: `stories`, below `q.before` when a reader pages on, and where
    /// the next page begins when this one is full.
    pub async fn page(&self, q: StoryQuery) -> Result<StoryPage, StoreError> {
        on_backend!(self, b => b.stories(q).await)
    }

    /// One story by its id, as an output shows it; `None` when there is none (retention
    /// removed it, or it never was).
    pub async fn story(&self, id: StoryId) -> Result<Option<Story>, StoreError> {
        on_backend!(self, b => b.story(id).await)
    }

    /// A feed's last polls (at most [`POLLS_KEPT`]), newest first, by its configured URL.
    pub async fn recent_polls(&self, url: &str) -> Result<Vec<PollRecord>, StoreError> {
        on_backend!(self, b => b.recent_polls(url).await)
    }

    /// Every tag with the number of stories it is on (of the feeds the config has), in
    /// display spelling, most used first.
    pub async fn tag_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        on_backend!(self, b => b.tag_counts().await)
    }

    /// Every feed's health, in the order they were first subscribed.
    pub async fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        on_backend!(self, b => b.feed_statuses().await)
    }

    /// A cheap query proving the database answers (health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, b => b.ping().await)
    }

    /// Entries stored, for summaries and tests.
    pub async fn entry_count(&self) -> Result<u64, StoreError> {
        on_backend!(self, b => b.entry_count().await)
    }

    /// Writes a consistent copy of the database to the new file `to`, while other processes
    /// keep using it. SQLite only: a PostgreSQL database is copied with its own tools.
    pub async fn backup_into(&self, to: &Path) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(b) => b.backup_into(to).await,
            Backend::Postgres(_) => Err(StoreError::Unsupported(
                "a PostgreSQL database is backed up with pg_dump (consistent while instances run): pg_dump -Fc DBNAME > aggregate.dump".into(),
            )),
        }
    }

    /// Records `paths` (absolute) as the output files this machine's config writes now, and
    /// returns those it wrote before and no longer does, for the caller to delete.
    pub async fn replace_output_files(
        &self,
        paths: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        on_backend!(self, b => b.replace_output_files(paths).await)
    }

    /// Gives every stored entry the tags `tag` computes for it (from its feed's URL and the
    /// entry as stored; `None` keeps its tags): what a change of tag rules would have done to
    /// what is stored. SQLite only; `check --diff` runs it on a copy.
    pub async fn retag(&self, tag: Retagger) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(b) => b.retag(tag).await,
            Backend::Postgres(_) => Err(StoreError::Unsupported(
                "re-tagging stored entries in place is done by SQLite copies only".into(),
            )),
        }
    }

    /// Gives back the space deleted rows held (after retention removed many).
    pub async fn vacuum(&self) -> Result<(), StoreError> {
        on_backend!(self, b => b.vacuum().await)
    }

    /// Checks that the stored data is whole (the engine's own check).
    pub async fn integrity_check(&self) -> Result<(), StoreError> {
        on_backend!(self, b => b.integrity_check().await)
    }
}
