//! State the long-running parts share without knowing each other: the scheduler writes it,
//! the HTTP server and the systemd watchdog read it. Atomics only; no locks.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use chrono::Utc;

#[derive(Debug, Default)]
pub struct Live {
    /// Bumped whenever what an output shows may have changed (entries stored, retention,
    /// config reload): cached renderings older than it are stale.
    generation: AtomicU64,
    /// Unix time of the scheduler loop's last turn; it turns at least every
    /// [`HEARTBEAT_EVERY`](crate::schedule::HEARTBEAT_EVERY).
    heartbeat: AtomicI64,
    feeds: AtomicUsize,
    failing: AtomicUsize,
}

impl Live {
    pub fn new() -> Live {
        Live::default()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn beat(&self) {
        self.heartbeat
            .store(Utc::now().timestamp(), Ordering::Release);
    }

    /// Seconds since the scheduler's last turn; `None` before its first.
    pub fn since_heartbeat(&self) -> Option<i64> {
        let at = self.heartbeat.load(Ordering::Acquire);
        (at > 0).then(|| Utc::now().timestamp() - at)
    }

    /// The scheduler turned once and has not turned since for longer than
    /// [`STALLED_AFTER`](crate::schedule::STALLED_AFTER): the one rule `/healthz` and the
    /// systemd watchdog both apply.
    pub fn stalled(&self) -> bool {
        self.since_heartbeat()
            .is_some_and(|s| s > crate::schedule::STALLED_AFTER.as_secs() as i64)
    }

    pub fn set_counts(&self, feeds: usize, failing: usize) {
        self.feeds.store(feeds, Ordering::Release);
        self.failing.store(failing, Ordering::Release);
    }

    pub fn counts(&self) -> (usize, usize) {
        (
            self.feeds.load(Ordering::Acquire),
            self.failing.load(Ordering::Acquire),
        )
    }
}
