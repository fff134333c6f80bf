//! When feeds are polled and how many at once. `run_pass` polls every configured feed once
//! (`--once`); `run_daemon` keeps polling each at its own interval. The fetcher's global and
//! per-host semaphores bound what actually hits the network.

mod daemon;
pub mod policy;

pub use daemon::{HEARTBEAT_EVERY, SHUTDOWN_GRACE, StatusHook, run as run_daemon};

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use url::Url;

use crate::pipeline::{Context, Outcome, Polled, RefreshError, refresh_feed};
use crate::store::BatchCounts;

/// One feed's result in a pass.
#[derive(Debug)]
pub struct FeedReport {
    pub url: Url,
    pub title: Option<String>,
    pub result: Result<Polled, RefreshError>,
    pub elapsed: Duration,
}

/// Totals of a pass, for the summary line and the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub feeds_ok: usize,
    pub not_modified: usize,
    pub failed: usize,
    pub entries: BatchCounts,
}

impl PassSummary {
    pub fn of(reports: &[FeedReport]) -> PassSummary {
        let mut s = PassSummary::default();
        for r in reports {
            match &r.result {
                Err(_) => s.failed += 1,
                Ok(Polled { outcome: Outcome::NotModified | Outcome::Unchanged, .. }) => s.not_modified += 1,
                Ok(Polled { outcome: Outcome::Stored(c), .. }) => {
                    s.feeds_ok += 1;
                    s.entries.new += c.new;
                    s.entries.updated += c.updated;
                    s.entries.unchanged += c.unchanged;
                    s.entries.tombstoned += c.tombstoned;
                }
            }
        }
        s
    }

    /// Whether anything an output shows may have changed.
    pub fn changed(&self) -> bool {
        self.entries.new + self.entries.updated > 0
    }
}

impl std::fmt::Display for PassSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "feeds: {} ok, {} not modified, {} failed; entries: {} new, {} updated",
            self.feeds_ok, self.not_modified, self.failed, self.entries.new, self.entries.updated
        )
    }
}

/// Polls every configured feed once, calling `on_done` as each finishes (for progress).
/// One feed's failure is in its report and never stops the others.
pub async fn run_pass(ctx: &Context, on_done: impl Fn(&FeedReport)) -> Vec<FeedReport> {
    let mut pending: FuturesUnordered<_> = ctx
        .config
        .feeds
        .iter()
        .map(|feed| async move {
            let started = Instant::now();
            let result = refresh_feed(ctx, feed).await;
            FeedReport { url: feed.url.clone(), title: feed.title.clone(), result, elapsed: started.elapsed() }
        })
        .collect();
    let mut reports = Vec::with_capacity(ctx.config.feeds.len());
    while let Some(report) = pending.next().await {
        on_done(&report);
        reports.push(report);
    }
    reports
}
