//! When to poll a feed next, as pure functions of what the last poll said. No clocks are read
//! here: callers pass durations in, so every rule is testable without waiting.

use std::time::Duration;

/// Failures back off exponentially up to this; a day keeps a dead feed visible in the status
/// without bothering its server more than once a day.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// A server's Cache-Control max-age may slow polling down to this at most: beyond it, a stale
/// max-age (some CDNs send a year) would silence a feed.
pub const MAX_CACHE_DELAY: Duration = Duration::from_secs(24 * 3600);

/// Retry-After is honoured up to a week; a longer one is treated as a week.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Jitter spread as a fraction of the delay (±10%): feeds configured alike drift apart instead
/// of firing together.
const JITTER: f64 = 0.10;

/// What the last poll of a feed said, as far as timing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastPoll {
    Ok {
        max_age: Option<Duration>,
    },
    /// `failures` in a row, counting this one (>= 1).
    Failed {
        failures: u32,
        retry_after: Option<Duration>,
    },
    /// 410 Gone: never again.
    Gone,
}

/// The delay before the next poll, before jitter; `None` means stop polling.
pub fn next_delay(interval: Duration, last: LastPoll) -> Option<Duration> {
    match last {
        LastPoll::Ok { max_age } => {
            // A long max-age may make polls rarer, a short one never more frequent.
            let cached = max_age.unwrap_or(Duration::ZERO).min(MAX_CACHE_DELAY);
            Some(interval.max(cached))
        }
        LastPoll::Failed {
            failures,
            retry_after,
        } => {
            let exp = failures.saturating_sub(1).min(20);
            let backoff = interval
                .saturating_mul(1u32 << exp)
                .min(MAX_BACKOFF.max(interval));
            let asked = retry_after.unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER);
            Some(backoff.max(asked))
        }
        LastPoll::Gone => None,
    }
}

/// `delay` spread by ±10%, using `unit` in [0, 1) as the random draw.
pub fn jittered(delay: Duration, unit: f64) -> Duration {
    let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    delay.mul_f64(factor)
}

/// What the scheduler does after a poll: when to poll the feed again (`None`: never, it is
/// gone), and how long every feed of its host must wait (a Retry-After).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub next: Option<Duration>,
    pub hold_host: Option<Duration>,
}

/// The plan after a poll that said `last`, `unit` in [0, 1) the jitter's random draw.
pub fn plan(interval: Duration, last: LastPoll, unit: f64) -> Plan {
    let hold_host = match last {
        LastPoll::Failed {
            retry_after: Some(r),
            ..
        } => Some(r.min(MAX_RETRY_AFTER)),
        _ => None,
    };
    Plan {
        next: next_delay(interval, last).map(|d| jittered(d, unit)),
        hold_host,
    }
}

/// The longest the scheduler ever plans ahead for a feed: a recorded next poll further off
/// than this was set under a clock that has since gone back, and is not waited for.
pub fn longest_plan(interval: Duration) -> Duration {
    interval
        .max(MAX_BACKOFF)
        .max(MAX_RETRY_AFTER)
        .max(MAX_CACHE_DELAY)
        .mul_f64(1.0 + JITTER)
}

/// Start-up polls are spread over this much so they don't all start in the same instant; the
/// fetcher's concurrency limits do the real pacing.
const STARTUP_SPREAD: Duration = Duration::from_secs(3);

/// The first poll after start-up: when the last success was recent, wait out the rest of the
/// interval (restarts don't re-poll everything); otherwise soon, spread over a few seconds.
pub fn first_delay(
    interval: Duration,
    since_last_success: Option<Duration>,
    unit: f64,
) -> Duration {
    let spread = interval.min(STARTUP_SPREAD).mul_f64(unit.clamp(0.0, 1.0));
    match since_last_success {
        Some(since) if since < interval => (interval - since).max(spread),
        _ => spread,
    }
}

/// The first poll after a start, from what the store recorded, measured on the wall clock now:
/// `since_success` (negative when the last success is in the future: the clock went back
/// since) and `planned`, the recorded next poll (negative when it has passed). A clock that
/// jumped makes neither every feed due at once nor none due for days: a success "in the
/// future" counts as one just now, and a plan is waited for at most [`longest_plan`].
pub fn resume_delay(
    interval: Duration,
    since_success: Option<chrono::Duration>,
    planned: Option<chrono::Duration>,
    unit: f64,
) -> Duration {
    let since = since_success.map(|s| s.to_std().unwrap_or(Duration::ZERO));
    let delay = first_delay(interval, since, unit);
    match planned.and_then(|p| p.to_std().ok()) {
        Some(p) => delay.max(p.min(longest_plan(interval))),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn success_waits_the_interval_or_a_longer_max_age() {
        assert_eq!(
            next_delay(15 * MIN, LastPoll::Ok { max_age: None }),
            Some(15 * MIN)
        );
        assert_eq!(
            next_delay(15 * MIN, LastPoll::Ok { max_age: Some(MIN) }),
            Some(15 * MIN)
        );
        assert_eq!(
            next_delay(
                15 * MIN,
                LastPoll::Ok {
                    max_age: Some(60 * MIN)
                }
            ),
            Some(60 * MIN)
        );
        assert_eq!(
            next_delay(
                15 * MIN,
                LastPoll::Ok {
                    max_age: Some(MIN * 60 * 24 * 365)
                }
            ),
            Some(MAX_CACHE_DELAY)
        );
    }

    #[test]
    fn failures_back_off_exponentially_to_a_day() {
        let d = |failures| {
            next_delay(
                15 * MIN,
                LastPoll::Failed {
                    failures,
                    retry_after: None,
                },
            )
            .unwrap()
        };
        assert_eq!(d(1), 15 * MIN);
        assert_eq!(d(2), 30 * MIN);
        assert_eq!(d(3), 60 * MIN);
        assert_eq!(d(10), MAX_BACKOFF);
        assert_eq!(d(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn retry_after_is_honoured_and_bounded() {
        let d = |r| {
            next_delay(
                MIN,
                LastPoll::Failed {
                    failures: 1,
                    retry_after: Some(r),
                },
            )
            .unwrap()
        };
        assert_eq!(d(3600 * Duration::from_secs(1)), 60 * MIN);
        assert_eq!(
            d(Duration::from_secs(1)),
            MIN,
            "never sooner than the backoff"
        );
        assert_eq!(d(Duration::from_secs(365 * 86400)), MAX_RETRY_AFTER);
    }

    #[test]
    fn gone_stops() {
        assert_eq!(next_delay(MIN, LastPoll::Gone), None);
    }

    #[test]
    fn jitter_is_within_ten_percent() {
        assert_eq!(jittered(100 * MIN, 0.5), 100 * MIN);
        assert_eq!(jittered(100 * MIN, 0.0), 90 * MIN);
        assert_eq!(jittered(100 * MIN, 1.0), 110 * MIN);
    }

    #[test]
    fn a_plan_holds_the_host_only_for_a_retry_after() {
        let ok = plan(15 * MIN, LastPoll::Ok { max_age: None }, 0.5);
        assert_eq!(
            ok,
            Plan {
                next: Some(15 * MIN),
                hold_host: None
            }
        );
        let asked = plan(
            15 * MIN,
            LastPoll::Failed {
                failures: 1,
                retry_after: Some(Duration::from_secs(30 * 86_400)),
            },
            0.5,
        );
        assert_eq!(asked.hold_host, Some(MAX_RETRY_AFTER));
        assert_eq!(asked.next, Some(MAX_RETRY_AFTER));
        assert_eq!(
            plan(15 * MIN, LastPoll::Gone, 0.5),
            Plan {
                next: None,
                hold_host: None
            }
        );
    }

    #[test]
    fn clock_jumps_neither_rush_nor_silence_a_restart() {
        let interval = 15 * MIN;
        let h = chrono::Duration::hours;
        // The clock went back three hours: the last success is "in the future". Counted as
        // just now, the feed waits an interval rather than being polled with all the others.
        assert_eq!(resume_delay(interval, Some(h(-3)), None, 0.5), interval);
        // The clock went forward a day: the feed is overdue, polled soon (spread).
        assert!(resume_delay(interval, Some(h(24)), None, 0.5) <= STARTUP_SPREAD);
        // A next poll recorded under a clock far ahead is waited for a week at most.
        let far = resume_delay(interval, Some(h(1)), Some(h(24 * 365)), 0.5);
        assert_eq!(far, longest_plan(interval));
        assert!(far <= Duration::from_secs(8 * 86_400));
        // A recorded next poll that has passed is not waited for.
        assert!(resume_delay(interval, None, Some(h(-2)), 0.5) <= STARTUP_SPREAD);
        // One still ahead, within reason, is (a backoff survives a restart).
        assert_eq!(
            resume_delay(interval, Some(h(1)), Some(h(6)), 0.5),
            Duration::from_secs(6 * 3600)
        );
    }

    #[test]
    fn restarts_respect_a_recent_success() {
        assert_eq!(first_delay(15 * MIN, Some(5 * MIN), 0.0), 10 * MIN);
        assert!(first_delay(15 * MIN, Some(20 * MIN), 0.5) <= STARTUP_SPREAD);
        assert!(first_delay(15 * MIN, None, 1.0) <= STARTUP_SPREAD);
    }
}
