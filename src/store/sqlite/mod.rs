//! The SQLite backend: one writer connection behind a mutex, with group commit in front of
//! it; read-only connections for everything that only reads, so serving and polls never wait
//! on a commit; a thread that checkpoints the WAL. Every call runs on tokio's blocking pool,
//! so SQLite never stalls the async workers, and no std mutex is held across an `.await`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    BatchCounts, Claim, Configured, Failure, FeedBatch, FeedState, FeedStatus, OtherConfig, Poll,
    PollRecord, Started, StoreError, SweepCounts, Ticket, Unchanged,
};
use crate::dedup::cluster::Settings;
use crate::model::{Story, StoryId, StoryPage, StoryQuery};

mod db;
mod feeds;
mod read;
mod schema;
mod stories;
mod write;

use db::{Db, lock};
use feeds::FeedRecord;

#[derive(Clone)]
pub(super) struct Sqlite {
    /// Connections for reads, so they never wait while the writer holds the database for a
    /// group commit. Declared before `writer` so they close first and the writer, closing
    /// last, removes the WAL.
    readers: Arc<ReaderPool>,
    writer: Arc<Mutex<Db>>,
    /// Feed batches waiting to be written together (see [`Sqlite::apply_batch`]).
    queue: Arc<Mutex<Queue>>,
    /// Wakes the group's writer early when the group is full.
    full: Arc<tokio::sync::Notify>,
    /// Polls started whose batch has not reached the queue: the batches a group may still get.
    in_flight: Arc<AtomicUsize>,
    /// The feeds' states as last written (see [`States`]).
    states: Arc<States>,
}

/// The feeds' states, by configured URL, as the writer last wrote them: a poll starts from
/// here, with no read and no trip to the blocking pool (in a steady round, where most polls
/// are a 304, that trip was a tenth of what a poll cost). Only a group's writes change a
/// feed's state (see `feeds::STATE_COLUMNS`), and the writer puts each state it wrote here
/// after the commit, read back from the database. One instance owns a SQLite database; should
/// another process write a state meanwhile, the worst a stale one costs is a full fetch (old
/// validators) that finds the body already stored.
#[derive(Default)]
struct States {
    map: Mutex<StateMap>,
}

#[derive(Default)]
struct StateMap {
    states: std::collections::HashMap<String, FeedState>,
    /// Moved by every write of states, so a read begun before one is not cached over it.
    generation: u64,
}

impl States {
    fn get(&self, url: &str) -> Result<FeedState, u64> {
        let map = lock(&self.map);
        map.states.get(url).cloned().ok_or(map.generation)
    }

    /// A state read at `generation`, kept unless a write came since.
    fn read(&self, url: &str, state: &FeedState, generation: u64) {
        let mut map = lock(&self.map);
        if map.generation == generation {
            map.states.insert(url.to_owned(), state.clone());
        }
    }

    /// The states a group wrote, read back after its commit; `None` when they could not be:
    /// then nothing cached is trusted.
    fn wrote(&self, states: Option<Vec<(String, FeedState)>>) {
        let mut map = lock(&self.map);
        map.generation += 1;
        match states {
            Some(states) => map.states.extend(states),
            None => map.states.clear(),
        }
    }
}

/// A poll counted in [`Sqlite::in_flight`] until its batch is queued or it ends otherwise.
pub(super) struct InFlight {
    count: Arc<AtomicUsize>,
    counted: AtomicBool,
    /// How soon the poll's writes are written (see [`Urgency`]).
    urgency: Urgency,
}

impl InFlight {
    fn new(count: &Arc<AtomicUsize>, urgency: Urgency) -> InFlight {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight {
            count: count.clone(),
            counted: AtomicBool::new(true),
            urgency,
        }
    }

    fn release(&self) {
        if self.counted.swap(false, Ordering::SeqCst) {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.release();
    }
}

#[derive(Default)]
struct Queue {
    batches: Vec<Queued>,
    entries: usize,
    /// Polls' small records (nothing new, a failure, the next poll), written with the group
    /// in a transaction of their own, after its batches: a warm pass or a steady round is
    /// mostly these, and one transaction and one trip to the blocking pool each were most of
    /// what such a poll cost the store.
    records: Vec<QueuedRecord>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.records.is_empty()
    }
}

struct QueuedRecord {
    record: FeedRecord,
    reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
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
const COMMIT_DELAY: Duration = Duration::from_millis(200);

/// A group is written at once when it holds this many entries: large transactions gain
/// nothing more, and their dirty pages must stay under the writer's spill threshold or spill
/// into the WAL.
const GROUP_ENTRIES: usize = 4000;

/// A group is written at once when it holds this many feeds' batches. Twice as many may wait
/// (one group being written, the next gathering; see [`Sqlite::queue_depth`]); if fewer
/// could, polls would stand idle until [`COMMIT_DELAY`] ran out. A cold pass of 5000 feeds
/// took a sixth less time with 48 than with 24: half the commits, each rewriting pages all
/// over the date-ordered indexes, which grow with the database.
const GROUP_BATCHES: usize = 48;

impl Sqlite {
    pub(super) fn open(path: &Path, settings: &Settings) -> Result<Sqlite, StoreError> {
        let mut writer = Db::open(path, settings)?;
        db::checkpoint_in_background(&mut writer, path);
        Ok(Sqlite {
            readers: ReaderPool::new(path),
            writer: Arc::new(Mutex::new(writer)),
            queue: Arc::new(Mutex::new(Queue::default())),
            full: Arc::new(tokio::sync::Notify::new()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            states: Arc::default(),
        })
    }

    pub(super) fn queue_depth(&self) -> usize {
        2 * GROUP_BATCHES
    }

    /// One instance owns a SQLite database: no other config to differ from.
    pub(super) async fn configure(
        &self,
        config: Configured,
    ) -> Result<Vec<OtherConfig>, StoreError> {
        self.write(move |db| {
            db.register_feeds(&config.feeds)?;
            db.forget_gone_except(&config.feeds)?;
            db.set_active(&config.feeds)?;
            db.set_tag_spellings(&config.tag_spellings)
        })
        .await?;
        Ok(Vec::new())
    }

    pub(super) async fn record_unchanged(
        &self,
        poll: &Poll,
        seen: Unchanged,
    ) -> Result<(), StoreError> {
        poll_ends(poll);
        self.record(FeedRecord::Unchanged(poll.state.id, seen), urgency(poll))
            .await
    }

    pub(super) async fn record_failure(
        &self,
        poll: &Poll,
        failure: Failure,
    ) -> Result<(), StoreError> {
        poll_ends(poll);
        self.record(FeedRecord::Failure(poll.state.id, failure), urgency(poll))
            .await
    }

    /// Written with the next group, whenever that is (at most [`COMMIT_DELAY`] from now): the
    /// next poll is for the status page and a restart, and nothing waits on it but the caller.
    pub(super) async fn set_next_poll(
        &self,
        url: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.record(FeedRecord::NextPoll(url.to_owned(), at), Urgency::WithGroup)
            .await
    }

    async fn record(&self, record: FeedRecord, urgency: Urgency) -> Result<(), StoreError> {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.enqueue(urgency, |q| q.records.push(QueuedRecord { record, reply }));
        answer(result, "poll record").await
    }

    pub(super) async fn mark_gone(&self, url: &str) -> Result<(), StoreError> {
        let url = url.to_owned();
        self.write(move |db| db.mark_gone(&url)).await
    }

    pub(super) async fn sweep(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SweepCounts, StoreError> {
        self.write(move |db| db.sweep(cutoff, now)).await
    }

    pub(super) async fn stories(&self, q: StoryQuery) -> Result<StoryPage, StoreError> {
        if q.text.is_some() {
            // The title index is brought up to date when it is about to be read.
            self.write(|db| db.index_titles()).await?;
        }
        self.read(move |db| db.stories(&q)).await
    }

    pub(super) async fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        self.read(|db| db.feed_statuses()).await
    }

    pub(super) async fn story(&self, id: StoryId) -> Result<Option<Story>, StoreError> {
        self.read(move |db| db.story_by_id(id)).await
    }

    pub(super) async fn recent_polls(&self, url: &str) -> Result<Vec<PollRecord>, StoreError> {
        let url = url.to_owned();
        self.read(move |db| db.recent_polls(&url)).await
    }

    pub(super) async fn held(&self, feed_id: i64) -> Result<super::Held, StoreError> {
        self.read(move |db| db.held(feed_id)).await
    }

    pub(super) async fn tag_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|db| db.tag_counts()).await
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.read(|db| db.ping()).await
    }

    pub(super) async fn entry_count(&self) -> Result<u64, StoreError> {
        self.read(|db| db.entry_count()).await
    }

    pub(super) async fn integrity_check(&self) -> Result<(), StoreError> {
        self.read(|db| db.integrity_check()).await
    }

    pub(super) async fn backup_into(&self, to: &Path) -> Result<(), StoreError> {
        let to = to.to_owned();
        self.write(move |db| db.backup_into(&to)).await
    }

    pub(super) async fn replace_output_files(
        &self,
        paths: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        self.write(move |db| db.replace_output_files(&paths)).await
    }

    pub(super) async fn retag(&self, tag: super::Retagger) -> Result<usize, StoreError> {
        self.write(move |db| db.retag(&tag)).await
    }

    pub(super) async fn vacuum(&self) -> Result<(), StoreError> {
        self.write(|db| db.vacuum()).await
    }

    /// Runs a write on the writer connection, outside any group.
    pub(super) async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Db) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&writer)))
            .await
            .unwrap_or_else(|e| Err(StoreError::Crashed(e.to_string())))
    }

    /// Runs a read on a reader connection, so it never waits for a group commit.
    pub(super) async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Db) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.readers.call(f).await
    }

    /// The feed's state for a poll: as the writer last wrote it (see [`States`]), else read on
    /// a reader connection when the feed already has its row (see `Db::register_feeds`): a
    /// poll starting while a group commit is written does not wait for it. Before, every new
    /// poll in a cold pass queued behind each commit, and the pass's fetching stalled with it.
    /// One instance owns a SQLite database: its schedule is the only one, so every claim is
    /// granted.
    pub(super) async fn start_poll(&self, url: &str, claim: Claim) -> Result<Started, StoreError> {
        // The daemon's scheduled polls are in no hurry to be recorded; a pass (whose last
        // poll ends the process) and a refresh asked for are.
        let urgency = match claim {
            Claim::Due { .. } => Urgency::WithGroup,
            Claim::Now => Urgency::Now,
        };
        let generation = match self.states.get(url) {
            Ok(state) => return Ok(Started::Poll(self.poll(state, urgency))),
            Err(generation) => generation,
        };
        let u = url.to_owned();
        let state = match self.read(move |db| db.find_feed_state(&u)).await? {
            Some(state) => state,
            None => {
                let u = url.to_owned();
                self.write(move |db| db.feed_state(&u)).await?
            }
        };
        self.states.read(url, &state, generation);
        Ok(Started::Poll(self.poll(state, urgency)))
    }

    fn poll(&self, state: FeedState, urgency: Urgency) -> Poll {
        Poll {
            state,
            ticket: Ticket::Sqlite(InFlight::new(&self.in_flight, urgency)),
        }
    }

    /// Stores one feed's batch, all or nothing, committed together with the other batches
    /// that arrive within [`COMMIT_DELAY`] of the first (group commit, see
    /// `Db::apply_batches`). When no other poll is under way, none will join the group, and it
    /// is written at once instead of waiting (the last feed of a pass, a lone poll of the
    /// daemon). Returns once the batch is committed.
    pub(super) async fn apply_batch(
        &self,
        poll: &Poll,
        batch: FeedBatch,
    ) -> Result<BatchCounts, StoreError> {
        poll_ends(poll);
        let (reply, result) = tokio::sync::oneshot::channel();
        let entries = batch.entries.len();
        let feed_id = poll.state.id;
        self.enqueue(urgency(poll), |q| {
            q.entries += entries;
            q.batches.push(Queued {
                feed_id,
                batch,
                reply,
            });
        });
        answer(result, "batch").await
    }

    /// Puts a write in the group gathering, starting a group if none is: it is written after
    /// [`COMMIT_DELAY`], or at once when it is full or, for a write a poll waits on, when no
    /// other poll is under way (none would join it).
    fn enqueue(&self, urgency: Urgency, push: impl FnOnce(&mut Queue)) {
        let others_coming = self.in_flight.load(Ordering::SeqCst) > 0;
        let first = {
            let mut q = lock(&self.queue);
            let first = q.is_empty();
            push(&mut q);
            let alone = urgency == Urgency::Now && !others_coming;
            if alone || q.entries >= GROUP_ENTRIES || q.batches.len() >= GROUP_BATCHES {
                self.full.notify_one();
            }
            first
        };
        if first {
            // The group is written by a task of its own, so that its writes are stored even
            // if the caller is cancelled while it waits.
            let (writer, queue, full, states) = (
                self.writer.clone(),
                self.queue.clone(),
                self.full.clone(),
                self.states.clone(),
            );
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(COMMIT_DELAY) => {}
                    _ = full.notified() => {}
                }
                let written =
                    tokio::task::spawn_blocking(move || write_group(writer, queue, &states)).await;
                if let Err(e) = written {
                    tracing::error!(error = %e, "the database writer crashed");
                }
            });
        }
    }
}

/// Whether a queued write may wait for others to join its group.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Urgency {
    /// Someone waits on it (a pass, a refresh asked for): written at once when no other poll
    /// would join the group.
    Now,
    /// Nothing waits on it that minds a fifth of a second (a next poll, a scheduled poll of
    /// the daemon): written with the next group, or after [`COMMIT_DELAY`]. The daemon's
    /// polls are spread over their interval, so that "at once" was a commit and a trip to
    /// the blocking pool for nearly every one of them.
    WithGroup,
}

fn urgency(poll: &Poll) -> Urgency {
    match &poll.ticket {
        Ticket::Sqlite(in_flight) => in_flight.urgency,
        _ => Urgency::Now,
    }
}

/// A poll's batch or record is queued: the poll is no longer one the group could wait for.
fn poll_ends(poll: &Poll) {
    if let Ticket::Sqlite(in_flight) = &poll.ticket {
        in_flight.release();
    }
}

/// The writer's answer to a queued write. It answers every write of its group, unless it
/// panicked: then the whole group gets this error, and the process goes on.
async fn answer<T>(
    result: tokio::sync::oneshot::Receiver<Result<T, StoreError>>,
    what: &str,
) -> Result<T, StoreError> {
    result.await.unwrap_or_else(|_| {
        Err(StoreError::Crashed(format!(
            "the write of this feed's {what} panicked"
        )))
    })
}

/// Writes every batch queued by now in one transaction, then every poll's small record in
/// another, and answers each. The database's handles are let go before the answers: a caller
/// that drops the last `Store` after its answer closes the database then and there, not
/// whenever this thread gets round to it.
fn write_group(writer: Arc<Mutex<Db>>, queue: Arc<Mutex<Queue>>, states: &States) {
    let (group, results, record_results) = {
        let mut db = lock(&writer);
        // Taken under the writer's lock: one group is written whole before the next is taken.
        let group = std::mem::take(&mut *lock(&queue));
        let batches: Vec<(i64, &FeedBatch)> = group
            .batches
            .iter()
            .map(|q| (q.feed_id, &q.batch))
            .collect();
        let started = std::time::Instant::now();
        let results = if batches.is_empty() {
            Vec::new()
        } else {
            db.apply_batches(&batches)
        };
        let records: Vec<&FeedRecord> = group.records.iter().map(|q| &q.record).collect();
        let record_results = db.record_all(&records);
        // Read back whether or not the writes held: a state rolled back is the one stored.
        let touched =
            group
                .batches
                .iter()
                .map(|q| q.feed_id)
                .chain(group.records.iter().filter_map(|q| match &q.record {
                    FeedRecord::Unchanged(id, _) => Some(*id),
                    _ => None,
                }));
        states.wrote(db.feed_states_by_id(touched).ok());
        tracing::debug!(
            batches = batches.len(),
            entries = group.entries,
            records = records.len(),
            took = ?started.elapsed(),
            "wrote a group of batches"
        );
        (group, results, record_results)
    };
    drop((writer, queue));
    for (q, r) in group.batches.into_iter().zip(results) {
        // A caller that has gone (its pass was cancelled) needs no answer; the batch is stored.
        let _ = q.reply.send(r);
    }
    for (q, r) in group.records.into_iter().zip(record_results) {
        let _ = q.reply.send(r);
    }
}

/// Read-only connections, so serving never waits on polling. Connections are opened on
/// demand and up to [`MAX_IDLE_READERS`] are kept for reuse.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Db>>,
}

/// Idle read connections kept open: one per core of a small server is plenty for SQLite reads
/// that take milliseconds.
const MAX_IDLE_READERS: usize = 4;

impl ReaderPool {
    fn new(path: &Path) -> Arc<ReaderPool> {
        Arc::new(ReaderPool {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        })
    }

    async fn call<R, F>(self: &Arc<Self>, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Db) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let reuse = lock(&pool.idle).pop();
            let db = match reuse {
                Some(db) => db,
                None => Db::open_reader(&pool.path)?,
            };
            let result = db.in_snapshot(f);
            let mut idle = lock(&pool.idle);
            if idle.len() < MAX_IDLE_READERS && db.conn.is_autocommit() {
                idle.push(db);
            }
            result
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Crashed(e.to_string())))
    }
}

#[cfg(test)]
mod tests;

/// Reads every table `copy::TABLES` names from the database at `path` (migrating it to this
/// release's schema first), from one snapshot, and sends them as CSV chunks in that order.
/// Runs on a blocking thread; stops when the receiver is gone.
pub(super) fn export(path: &Path, to: tokio::sync::mpsc::Sender<super::copy::Chunk>) {
    use super::copy::{Chunk, TABLES};
    let exported = (|| {
        let db = Db::open(path, &Settings::default())?;
        db.begin_snapshot()?;
        for table in TABLES {
            let mut send = |rows: Vec<u8>| to.blocking_send(Chunk::Rows(rows)).is_ok();
            let n = db.export_csv(*table, 1 << 20, &mut send)?;
            if to.blocking_send(Chunk::End(n)).is_err() {
                break;
            }
        }
        Ok(())
    })();
    if let Err(e) = exported {
        let _ = to.blocking_send(Chunk::Failed(e));
    }
}
