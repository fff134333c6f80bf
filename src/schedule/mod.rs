//! When feeds are polled and how many at once. `run_pass` polls every configured feed once
//! (`--once`); `run_daemon` keeps polling each at its own interval. What is in flight at once
//! is bounded elsewhere: feeds from fetch to store by the pipeline's gates (`fetch.concurrency`),
//! requests to one host by the fetcher (`fetch.per_host`).

mod daemon;
pub mod policy;
mod slots;

pub use daemon::{
    HEARTBEAT_EVERY, RefreshReply, RefreshRequest, SHUTDOWN_GRACE, STALLED_AFTER, StatusHook,
    run as run_daemon,
};

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use url::Url;

use crate::pipeline::{Context, Outcome, Polled, RefreshError, refresh_feed};
use crate::store::{BatchCounts, Claim};

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
    /// Feeds another instance sharing the database was polling.
    pub elsewhere: usize,
    pub entries: BatchCounts,
}

impl PassSummary {
    pub fn of(reports: &[FeedReport]) -> PassSummary {
        let mut s = PassSummary::default();
        for r in reports {
            match &r.result {
                Err(_) => s.failed += 1,
                Ok(Polled {
                    outcome: Outcome::NotModified | Outcome::Unchanged,
                    ..
                }) => s.not_modified += 1,
                Ok(Polled {
                    outcome: Outcome::Elsewhere { .. },
                    ..
                }) => s.elsewhere += 1,
                Ok(Polled {
                    outcome: Outcome::Stored(c),
                    ..
                }) => {
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
}

impl std::fmt::Display for PassSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "feeds: {} ok, {} not modified, {} failed; entries: {} new, {} updated",
            self.feeds_ok, self.not_modified, self.failed, self.entries.new, self.entries.updated
        )?;
        if self.elsewhere > 0 {
            write!(f, "; {} polled by another instance", self.elsewhere)?;
        }
        Ok(())
    }
}

/// Deletes entries older than `storage.retention` (leaving tombstones): the one retention rule
/// both triggers apply, `--once` after its pass and the daemon hourly.
pub async fn sweep_retention(
    ctx: &Context,
) -> Result<crate::store::SweepCounts, crate::store::StoreError> {
    let retention =
        chrono::Duration::from_std(ctx.config.storage.retention).unwrap_or(chrono::Duration::MAX);
    let now = chrono::Utc::now();
    let cutoff = now
        .checked_sub_signed(retention)
        .unwrap_or(chrono::DateTime::UNIX_EPOCH);
    ctx.store.sweep(cutoff, now).await
}

/// Feeds in an order that takes one from each host in turn, so that a host with many feeds
/// (held to `per_host` at a time) does not fill every in-flight slot of a pass.
fn interleave_hosts(feeds: &[crate::config::FeedConfig]) -> Vec<&crate::config::FeedConfig> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut by_host: Vec<std::collections::VecDeque<&crate::config::FeedConfig>> = Vec::new();
    for f in feeds {
        let i = *index
            .entry(crate::model::host_key(&f.url))
            .or_insert_with(|| {
                by_host.push(std::collections::VecDeque::new());
                by_host.len() - 1
            });
        by_host[i].push_back(f);
    }
    let mut out = Vec::with_capacity(feeds.len());
    while out.len() < feeds.len() {
        for q in &mut by_host {
            if let Some(f) = q.pop_front() {
                out.push(f);
            }
        }
    }
    out
}

/// Polls every configured feed once, calling `on_done` as each finishes (for progress).
/// One feed's failure is in its report and never stops the others.
pub async fn run_pass(ctx: &Context, on_done: impl Fn(&FeedReport)) -> Vec<FeedReport> {
    let mut pending: FuturesUnordered<_> = interleave_hosts(&ctx.config.feeds)
        .into_iter()
        .map(|feed| async move {
            let started = Instant::now();
            let result = refresh_feed(ctx, feed, Claim::Now).await;
            FeedReport {
                url: feed.url.clone(),
                title: feed.title.clone(),
                result,
                elapsed: started.elapsed(),
            }
        })
        .collect();
    let mut reports = Vec::with_capacity(ctx.config.feeds.len());
    while let Some(report) = pending.next().await {
        on_done(&report);
        reports.push(report);
    }
    reports
}
