//! The daemon's scheduler: each feed polled at its own interval with jitter, failures backed
//! off, Retry-After shared by every feed of a host, 410 Gone honoured, output files rewritten
//! after changes, retention swept hourly. It owns *when*; `refresh_feed` does the work.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::policy::{self, LastPoll, first_delay};
use super::slots::{Slot, Slots};
use crate::config::{Config, FeedConfig};
use crate::fetch::{FetchError, Fetcher};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::outputs;
use crate::pipeline::{Context, Gates, Outcome, Polled, RefreshError, refresh_feed};
use crate::store::{Claim, FeedStatus};

/// The loop turns at least this often, so the heartbeat proves it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// The scheduler counts as stalled when it has not turned for this long: four heartbeats,
/// so that one slow turn (a long sweep, a slow reload) is not taken for a hang.
pub const STALLED_AFTER: Duration = Duration::from_secs(HEARTBEAT_EVERY.as_secs() * 4);
/// At shutdown, polls in flight get this long to finish and commit before being abandoned
/// (abandoning is safe: a feed's batch is one transaction, committed or not).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Output files are rewritten once polls have been quiet this long (or at most this late
/// while polls keep finishing), not once per poll.
const OUTPUT_DEBOUNCE: Duration = Duration::from_secs(2);
/// Output files are rewritten at most this often. The first change after a quiet spell is
/// written at once; the changes after it wait for the gap. Each rewrite renders every output
/// from the store, and polls spread over the interval left the scheduler idle between them,
/// so a service rewrote every file after nearly every changed poll: half of its CPU in a
/// steady round of 1000 feeds (BENCHMARKS.md, "Speed, round 4").
const OUTPUT_EVERY: Duration = Duration::from_secs(5);
/// Retention is swept this often, or every tenth of the retention when that is shorter (a
/// retention of minutes, as in a soak or a short-lived cache, is honoured within a tenth).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Sweeps are never closer together than this, however short the retention.
const RETENTION_AT_MOST_EVERY: Duration = Duration::from_secs(5);
/// A feed another instance is polling is looked at again no sooner than this: its lease or
/// its next poll says when, and this keeps a clock skew or a lost race from spinning.
const RECHECK: Duration = Duration::from_secs(1);

/// Called with a one-line summary for systemd's STATUS=.
pub type StatusHook = Box<dyn Fn(&str) + Send + Sync>;

/// A request from the control socket: poll these feeds (URLs or configured titles; none for
/// every feed) now.
pub struct RefreshRequest {
    pub feeds: Vec<String>,
    pub reply: tokio::sync::oneshot::Sender<RefreshReply>,
}

/// What the scheduler did with a [`RefreshRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefreshReply {
    /// Feeds (URLs) that will be polled now.
    pub polling: Vec<String>,
    /// Feeds being polled already.
    pub running: Vec<String>,
    /// Feeds whose host asked (Retry-After) not to be polled yet, with how long is left.
    pub held: Vec<(String, String)>,
    /// Names that designate no configured feed.
    pub unknown: Vec<String>,
}

struct Done {
    url: String,
    elapsed: Duration,
    result: Result<Polled, RefreshError>,
}

struct Daemon {
    ctx: Context,
    live: Arc<Live>,
    metrics: Metrics,
    on_status: StatusHook,
    slots: Slots,
    /// Hosts that asked us (Retry-After) not to come back before a time.
    host_block: HashMap<String, Instant>,
    running: JoinSet<Done>,
    /// Which feed each running task polls, so a task that dies still frees its feed's slot.
    running_ids: HashMap<tokio::task::Id, String>,
    /// Next polls being recorded (see [`Daemon::record_next_poll`]).
    records: JoinSet<()>,
    /// Since when the output files have been behind the store (see `files_at`).
    dirty_since: Option<Instant>,
    /// The store's generation (`Live`) when the output files were last written. Whatever
    /// changes what outputs show moves it (this scheduler's polls, a reload, a sweep, and
    /// another instance sharing the database), and the files follow.
    files_at: u64,
    /// When the output files were last rewritten.
    files_written: Option<Instant>,
    next_sweep: Instant,
}

/// Runs until `token` is cancelled, then lets in-flight polls finish (up to
/// [`SHUTDOWN_GRACE`]) and writes the outputs one last time.
pub async fn run(
    ctx: Context,
    mut config_rx: watch::Receiver<Arc<Config>>,
    mut refresh_rx: tokio::sync::mpsc::Receiver<RefreshRequest>,
    live: Arc<Live>,
    metrics: Metrics,
    on_status: StatusHook,
    token: CancellationToken,
) {
    let mut d = Daemon::new(ctx, live, metrics, on_status).await;
    let mut reloads_open = true;
    let mut refreshes_open = true;
    loop {
        d.live.beat();
        d.start_due();
        let wake = d.next_wake();
        tokio::select! {
            _ = token.cancelled() => break,
            changed = config_rx.changed(), if reloads_open => match changed {
                Ok(()) => {
                    let config = config_rx.borrow_and_update().clone();
                    d.apply_config(config).await;
                }
                Err(_) => reloads_open = false,
            },
            request = refresh_rx.recv(), if refreshes_open => match request {
                Some(r) => {
                    let reply = d.refresh(&r.feeds);
                    let _ = r.reply.send(reply);
                }
                None => refreshes_open = false,
            },
            Some(joined) = d.running.join_next_with_id(), if !d.running.is_empty() => d.joined(joined).await,
            _ = tokio::time::sleep_until(wake) => {}
        }
        d.housekeeping(false).await;
    }
    d.shutdown().await;
}

fn host_of(feed: &FeedConfig) -> String {
    crate::model::host_key(&feed.url)
}

impl Daemon {
    async fn new(ctx: Context, live: Arc<Live>, metrics: Metrics, on_status: StatusHook) -> Daemon {
        let statuses = ctx.store.feed_statuses().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read feed states; polling every feed soon");
            Vec::new()
        });
        let known: HashMap<&str, &FeedStatus> =
            statuses.iter().map(|s| (s.url.as_str(), s)).collect();
        let mut slots = Slots::default();
        for f in &ctx.config.feeds {
            let slot = initial_slot(f, known.get(f.url.as_str()).copied());
            slots.insert(f.url.to_string(), slot);
        }
        let d = Daemon {
            ctx,
            live,
            metrics,
            on_status,
            slots,
            host_block: HashMap::new(),
            running: JoinSet::new(),
            running_ids: HashMap::new(),
            records: JoinSet::new(),
            dirty_since: None,
            files_at: 0,
            files_written: None,
            next_sweep: Instant::now(),
        };
        d.publish_counts();
        d
    }

    fn start_due(&mut self) {
        let per_host = self.ctx.config.fetch.per_host;
        let host_block = &self.host_block;
        let held = |feed: &FeedConfig| host_block.get(&host_of(feed)).copied();
        for (url, feed, forced) in self.slots.take_due(Instant::now(), held) {
            let claim = if forced {
                Claim::Now
            } else {
                Claim::Due { per_host }
            };
            let (ctx, feed_url) = (self.ctx.clone(), feed.url.to_string());
            let task = self.running.spawn(async move {
                let started = Instant::now();
                let result = refresh_feed(&ctx, &feed, claim).await;
                Done {
                    url,
                    elapsed: started.elapsed(),
                    result,
                }
            });
            self.running_ids.insert(task.id(), feed_url);
        }
    }

    fn next_wake(&mut self) -> Instant {
        let now = Instant::now();
        let mut wake = now + HEARTBEAT_EVERY;
        if let Some(due) = self.slots.next_due() {
            wake = wake.min(due);
        }
        if let Some(since) = self.dirty_since {
            wake = wake.min(files_due(since, self.files_written));
        }
        wake.min(self.next_sweep).max(now)
    }

    async fn joined(&mut self, joined: Result<(tokio::task::Id, Done), tokio::task::JoinError>) {
        match joined {
            Ok((id, done)) => {
                self.running_ids.remove(&id);
                self.finish(done).await;
            }
            Err(e) => {
                // A bug, not a feed's fault: log it and poll the feed again at its interval.
                let url = self.running_ids.remove(&e.id()).unwrap_or_default();
                tracing::error!(feed = %url, error = %e, "a poll task died");
                if let Some(slot) = self.slots.get_mut(&url) {
                    slot.running = false;
                    let due = Instant::now() + slot.feed.interval;
                    self.slots.set_due(&url, Some(due));
                }
            }
        }
    }

    async fn finish(&mut self, done: Done) {
        if let Ok(Polled {
            outcome: Outcome::Elsewhere { until },
            ..
        }) = done.result
        {
            self.elsewhere(&done.url, until);
            return;
        }
        let label = match &done.result {
            Ok(polled) => polled.outcome.label(),
            Err(_) => "failed",
        };
        self.metrics.observe_poll(label, done.elapsed);
        let Some(slot) = self.slots.get_mut(&done.url) else {
            return; // removed by a reload
        };
        slot.running = false;
        let was_failing = slot.failures > 0;
        let last = match &done.result {
            Ok(polled) => {
                slot.failures = 0;
                if let Outcome::Stored(c) = polled.outcome {
                    self.metrics.count_entries(c.new, c.updated);
                    if c.new + c.updated > 0 {
                        self.live.changed();
                    }
                }
                tracing::info!(feed = %done.url, outcome = label, elapsed_ms = done.elapsed.as_millis() as u64, "polled");
                LastPoll::Ok {
                    max_age: polled.response.as_ref().and_then(|r| r.max_age),
                }
            }
            Err(e) => {
                slot.failures += 1;
                tracing::warn!(feed = %done.url, error = %e, failures = slot.failures, "poll failed");
                last_failure(e, slot.failures)
            }
        };
        let counts_moved = was_failing != (slot.failures > 0) || matches!(last, LastPoll::Gone);
        let plan = policy::plan(slot.feed.interval, last, fastrand::f64());
        self.follow(&done.url, plan).await;
        // Counting is a look at every feed, and most polls change no count.
        if counts_moved {
            self.publish_counts();
        }
    }

    /// Carries out a plan: the host held (here and, for instances sharing the store, there),
    /// the feed's next poll set on the monotonic clock and recorded on the wall clock, or the
    /// feed stopped for good.
    async fn follow(&mut self, url: &str, plan: policy::Plan) {
        let Some(slot) = self.slots.get_mut(url) else {
            return;
        };
        let host = host_of(&slot.feed);
        self.slots
            .set_due(url, plan.next.map(|delay| Instant::now() + delay));
        let store = &self.ctx.store;
        if let Some(hold) = plan.hold_host {
            self.host_block.insert(host.clone(), Instant::now() + hold);
            if let Some(until) = wall_clock_in(hold)
                && let Err(e) = store.hold_host(&host, until).await
            {
                tracing::error!(host, error = %e, "cannot record the host's Retry-After");
            }
        }
        match plan.next {
            Some(delay) => self.record_next_poll(url.to_owned(), wall_clock_in(delay)),
            None => {
                tracing::warn!(feed = %url, "the server says the feed is gone (410); polling stopped");
                if let Err(e) = store.mark_gone(url).await {
                    tracing::error!(error = %e, "cannot record the feed's schedule");
                }
            }
        }
    }

    /// Records the feed's next poll in the store, without waiting for it: the store writes it
    /// with its next group of writes, and the loop goes on meanwhile. Before, the loop waited
    /// for a write of its own after every poll, and for any group commit under way.
    fn record_next_poll(&mut self, url: String, at: Option<chrono::DateTime<Utc>>) {
        while self.records.try_join_next().is_some() {}
        let store = self.ctx.store.clone();
        self.records.spawn(async move {
            if let Err(e) = store.set_next_poll(&url, at).await {
                tracing::error!(feed = %url, error = %e, "cannot record the feed's schedule");
            }
        });
    }

    /// Makes the feeds `names` designate (all when empty) due now, including one that backs
    /// off after failures or was gone (asked for by name, it is tried again); a host's
    /// Retry-After still holds: being polite is not the operator's to waive.
    fn refresh(&mut self, names: &[String]) -> RefreshReply {
        let mut reply = RefreshReply::default();
        let mut urls: Vec<String> = Vec::new();
        if names.is_empty() {
            urls.extend(self.ctx.config.feeds.iter().map(|f| f.url.to_string()));
        }
        for name in names {
            match self.ctx.config.find_feed(name) {
                Some(f) => urls.push(f.url.to_string()),
                None => reply.unknown.push(name.clone()),
            }
        }
        let now = Instant::now();
        for url in urls {
            let Some(slot) = self.slots.get_mut(&url) else {
                continue;
            };
            if slot.running {
                reply.running.push(url);
            } else if let Some(until) = self
                .host_block
                .get(&host_of(&slot.feed))
                .filter(|u| **u > now)
            {
                let left = crate::config::format_duration(until.duration_since(now));
                reply.held.push((url, left));
            } else if !reply.polling.contains(&url) {
                slot.forced = true;
                self.slots.set_due(&url, Some(now));
                reply.polling.push(url);
            }
        }
        tracing::info!(
            polling = reply.polling.len(),
            unknown = reply.unknown.len(),
            "refresh asked for"
        );
        reply
    }

    /// Another instance polls the feed, or did: look again when it says the feed is next due
    /// (at least [`RECHECK`] from now, with jitter, so that instances do not wake in step).
    fn elsewhere(&mut self, url: &str, until: Option<chrono::DateTime<Utc>>) {
        let Some(slot) = self.slots.get_mut(url) else {
            return;
        };
        slot.running = false;
        // Another instance's clock may be off: never wait more than the feed's own interval.
        let wait = until
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or_default()
            .min(slot.feed.interval)
            .max(RECHECK);
        let due = Instant::now() + wait + RECHECK.mul_f64(fastrand::f64());
        self.slots.set_due(url, Some(due));
    }

    async fn apply_config(&mut self, config: Arc<Config>) {
        if config.fetch != self.ctx.config.fetch {
            match Fetcher::new(&config.fetch) {
                Ok(f) => {
                    self.ctx.fetcher = Arc::new(f);
                    self.ctx.gates =
                        Gates::new(config.fetch.concurrency, self.ctx.store.queue_depth());
                }
                Err(e) => tracing::error!(error = %e, "keeping the previous HTTP client"),
            }
        }
        let urls = config.feed_urls();
        if let Err(e) = crate::pipeline::record_config(&self.ctx.store, &config).await {
            tracing::error!(error = %e, "cannot record the new config in the store");
        }
        self.slots
            .retain(&urls.into_iter().collect::<HashSet<String>>());
        let rules_changed = config.tags != self.ctx.config.tags;
        let mut reshaped_due = Vec::new();
        for feed in &config.feeds {
            match self.slots.get_mut(feed.url.as_str()) {
                Some(slot) => {
                    // New tag rules, tags or title change what is stored for the feed: poll it
                    // soon so its entries are reprocessed (the fingerprint forces a full fetch).
                    let reshaped = rules_changed
                        || slot.feed.tags != feed.tags
                        || slot.feed.title != feed.title;
                    slot.feed = feed.clone();
                    if reshaped && slot.due().is_some() {
                        let delay = first_delay(feed.interval, None, fastrand::f64());
                        self.slots
                            .set_due(feed.url.as_str(), Some(Instant::now() + delay));
                        // Said in the store too: instances sharing it poll when it says.
                        reshaped_due.push((feed.url.to_string(), delay));
                    }
                }
                None => {
                    let slot = initial_slot(feed, None);
                    self.slots.insert(feed.url.to_string(), slot);
                }
            }
        }
        for (url, delay) in reshaped_due {
            self.record_next_poll(url, wall_clock_in(delay));
        }
        if let Err(e) = outputs::remove_stale_files(&self.ctx.store, &config).await {
            tracing::error!(error = %e, "cannot record the configured output files");
        }
        tracing::info!(
            feeds = config.feeds.len(),
            outputs = config.outputs.len(),
            "config reloaded"
        );
        self.ctx.config = config;
        self.live.changed();
        self.publish_counts();
    }

    /// Rewrites output files after changes settle, and sweeps retention when due.
    async fn housekeeping(&mut self, force: bool) {
        let now = Instant::now();
        let generation = self.live.generation();
        if generation != self.files_at {
            self.dirty_since.get_or_insert(now);
        }
        if let Some(since) = self.dirty_since {
            let settled = self.running.is_empty() || now >= since + OUTPUT_DEBOUNCE;
            let spaced = self.files_written.is_none_or(|at| now >= at + OUTPUT_EVERY);
            if force || (settled && spaced) {
                self.dirty_since = None;
                self.files_at = generation;
                self.files_written = Some(now);
                for (name, result) in outputs::write_files(&self.ctx).await {
                    if let Err(e) = result {
                        tracing::error!(output = %name, error = %e, "output not written");
                    }
                }
            }
        }
        if now >= self.next_sweep && !force {
            self.next_sweep = now + sweep_every(self.ctx.config.storage.retention);
            self.sweep().await;
        }
    }

    async fn sweep(&mut self) {
        match super::sweep_retention(&self.ctx).await {
            Ok(swept) if swept.entries > 0 => {
                tracing::info!(
                    entries = swept.entries,
                    tombstones = swept.tombstones,
                    "retention sweep"
                );
                self.live.changed();
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
    }

    async fn shutdown(&mut self) {
        let in_flight = self.running.len();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while let Some(joined) = self.running.join_next_with_id().await {
                self.joined(joined).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = self.running.len(),
                "shutting down: abandoning polls still in flight"
            );
            self.running.abort_all();
        } else if in_flight > 0 {
            tracing::info!(
                finished = in_flight,
                "shutting down: in-flight polls finished"
            );
        }
        // The next polls recorded last are written with the store's next group, a fifth of a
        // second away at most.
        let records = &mut self.records;
        let recorded = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while records.join_next().await.is_some() {}
        })
        .await;
        if recorded.is_err() {
            tracing::warn!("shutting down: the feeds' next polls were not all recorded");
        }
        self.housekeeping(true).await;
    }

    fn publish_counts(&self) {
        let failing = self.slots.failing();
        let stopped = self.slots.stopped();
        self.live.set_counts(self.slots.len(), failing);
        self.metrics.feeds_failing.set(failing as i64);
        let mut status = format!("{} feeds, {} failing", self.slots.len(), failing);
        if stopped > 0 {
            status.push_str(&format!(", {stopped} gone"));
        }
        (self.on_status)(&status);
    }
}

/// When output files behind the store since `since` are rewritten at the latest while polls
/// keep finishing: after the debounce, and no sooner than the gap after the last rewrite
/// (`written`).
fn files_due(since: Instant, written: Option<Instant>) -> Instant {
    let after_gap = written.map_or(since, |at| at + OUTPUT_EVERY);
    (since + OUTPUT_DEBOUNCE).max(after_gap)
}

/// How long between retention sweeps, for a retention of `retention`.
fn sweep_every(retention: Duration) -> Duration {
    RETENTION_EVERY
        .min(retention / 10)
        .max(RETENTION_AT_MOST_EVERY)
}

/// The wall-clock time `delay` from now, for the store; `None` past what it can represent.
fn wall_clock_in(delay: Duration) -> Option<chrono::DateTime<Utc>> {
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| Utc::now().checked_add_signed(d))
}

fn initial_slot(feed: &FeedConfig, known: Option<&FeedStatus>) -> Slot {
    let now = Utc::now();
    // A backoff or Retry-After recorded before a restart still holds (within reason, should
    // the clock have moved since).
    let delay = policy::resume_delay(
        feed.interval,
        known.and_then(|k| k.last_success).map(|t| now - t),
        known.and_then(|k| k.next_poll).map(|t| t - now),
        fastrand::f64(),
    );
    let due = (!known.is_some_and(|k| k.gone)).then_some(Instant::now() + delay);
    Slot::new(
        feed.clone(),
        due,
        known.map(|k| k.consecutive_failures).unwrap_or(0),
    )
}

fn last_failure(e: &RefreshError, failures: u32) -> LastPoll {
    match e {
        RefreshError::Fetch(FetchError::Status { status, .. }) if status.as_u16() == 410 => {
            LastPoll::Gone
        }
        RefreshError::Fetch(FetchError::Status { retry_after, .. }) => LastPoll::Failed {
            failures,
            retry_after: *retry_after,
        },
        _ => LastPoll::Failed {
            failures,
            retry_after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::slots::tests::feed;
    use super::*;

    #[test]
    fn output_files_trail_changes_by_the_debounce_and_are_rewritten_at_most_every_gap() {
        let t = Instant::now();
        assert_eq!(
            files_due(t, None),
            t + OUTPUT_DEBOUNCE,
            "never written: the debounce"
        );
        let long_ago = t - OUTPUT_EVERY * 3;
        assert_eq!(
            files_due(t, Some(long_ago)),
            t + OUTPUT_DEBOUNCE,
            "a quiet spell: the debounce"
        );
        let just_now = t - Duration::from_secs(1);
        assert_eq!(
            files_due(t, Some(just_now)),
            just_now + OUTPUT_EVERY,
            "written a second ago: the gap"
        );
        assert!(OUTPUT_EVERY > OUTPUT_DEBOUNCE);
    }

    #[test]
    fn retention_is_swept_hourly_or_within_a_tenth_of_it() {
        let day = Duration::from_secs(86_400);
        assert_eq!(sweep_every(90 * day), RETENTION_EVERY);
        assert_eq!(
            sweep_every(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(sweep_every(Duration::from_secs(1)), RETENTION_AT_MOST_EVERY);
    }

    /// Due times live on tokio's monotonic clock (paused here, and moved by hand): a feed
    /// comes due when that clock says so, and a host's hold puts its feeds off to its end.
    #[tokio::test(start_paused = true)]
    async fn feeds_come_due_on_the_monotonic_clock() {
        let start = Instant::now();
        let mut slots = Slots::default();
        for url in ["https://a.example/feed", "https://b.example/feed"] {
            let due = Some(start + Duration::from_secs(900));
            slots.insert(url.to_string(), Slot::new(feed(url), due, 0));
        }
        let mut held = HashMap::new();
        let b = feed("https://b.example/feed");
        held.insert(host_of(&b), start + Duration::from_secs(3600));
        let due = |slots: &mut Slots, held: &HashMap<String, Instant>| {
            let mut urls: Vec<String> = slots
                .take_due(Instant::now(), |f| held.get(&host_of(f)).copied())
                .into_iter()
                .map(|(u, ..)| u)
                .collect();
            urls.sort();
            urls
        };
        assert!(due(&mut slots, &held).is_empty());
        tokio::time::advance(Duration::from_secs(899)).await;
        assert!(due(&mut slots, &held).is_empty(), "not a second early");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(due(&mut slots, &held), ["https://a.example/feed"]);
        assert!(slots.get("https://a.example/feed").unwrap().running);
        assert_eq!(
            slots.get("https://b.example/feed").unwrap().due(),
            Some(start + Duration::from_secs(3600)),
            "b waits for its host's hold"
        );
        assert_eq!(
            slots.next_due(),
            Some(start + Duration::from_secs(3600)),
            "the loop wakes for b's hold to end"
        );
        assert!(
            due(&mut slots, &held).is_empty(),
            "a running feed is not started twice"
        );
        tokio::time::advance(Duration::from_secs(2700)).await;
        assert_eq!(due(&mut slots, &held), ["https://b.example/feed"]);
    }
}
