//! The daemon's feeds, each with when it is next due, and the order they come due in. The
//! scheduler's loop turns after every finished poll; looking through every feed at each turn
//! (for the feeds due, the next wake-up, the failing count) was a tenth of a steady round's
//! CPU at 1000 feeds (BENCHMARKS.md, "Speed, round 4"). A heap ordered by due time answers
//! both questions by looking at the feeds that are due and no others.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use tokio::time::Instant;

use crate::config::FeedConfig;

pub(super) struct Slot {
    pub(super) feed: FeedConfig,
    /// `None`: not polled any more (410 Gone). Changed only through [`Slots::set_due`], which
    /// queues it.
    due: Option<Instant>,
    pub(super) failures: u32,
    pub(super) running: bool,
    /// Asked for (`aggregate refresh`): polled now even where the shared schedule says
    /// another instance polled it lately.
    pub(super) forced: bool,
}

impl Slot {
    pub(super) fn new(feed: FeedConfig, due: Option<Instant>, failures: u32) -> Slot {
        Slot {
            feed,
            due,
            failures,
            running: false,
            forced: false,
        }
    }

    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }
}

/// The feeds by URL, and a heap of (due time, URL). An entry of the heap stands only while
/// its feed is idle and still due at that time; one that no longer does (the feed was
/// rescheduled, started or removed) is dropped when it reaches the top.
#[derive(Default)]
pub(super) struct Slots {
    slots: HashMap<String, Slot>,
    queue: BinaryHeap<Reverse<(Instant, String)>>,
}

impl Slots {
    pub(super) fn insert(&mut self, url: String, slot: Slot) {
        let due = slot.due;
        self.slots.insert(url.clone(), slot);
        if let Some(at) = due {
            self.queue.push(Reverse((at, url)));
        }
    }

    #[cfg(test)]
    pub(super) fn get(&self, url: &str) -> Option<&Slot> {
        self.slots.get(url)
    }

    pub(super) fn get_mut(&mut self, url: &str) -> Option<&mut Slot> {
        self.slots.get_mut(url)
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Feeds stopped for good (`due` is `None`). A look at every feed, as [`Slots::failing`]:
    /// both are counted only when a poll changes a count.
    pub(super) fn stopped(&self) -> usize {
        self.slots.values().filter(|s| s.due.is_none()).count()
    }

    pub(super) fn failing(&self) -> usize {
        self.slots.values().filter(|s| s.failures > 0).count()
    }

    /// Keeps the feeds whose URL is in `urls`.
    pub(super) fn retain(&mut self, urls: &HashSet<String>) {
        self.slots.retain(|url, _| urls.contains(url));
        self.queue.retain(|Reverse((_, url))| urls.contains(url));
    }

    /// Sets when the feed at `url` is next due (`None`: never again).
    pub(super) fn set_due(&mut self, url: &str, due: Option<Instant>) {
        let Some(slot) = self.slots.get_mut(url) else {
            return;
        };
        slot.due = due;
        if let Some(at) = due {
            self.queue.push(Reverse((at, url.to_owned())));
        }
        // Entries left by reschedulings (a refresh, a reload) are dropped at the top; should
        // many pile up before they get there, the heap is rebuilt from the feeds.
        if self.queue.len() > 4 * self.slots.len() + 64 {
            self.queue = self
                .slots
                .iter()
                .filter_map(|(url, s)| s.due.map(|at| Reverse((at, url.clone()))))
                .collect();
        }
    }

    /// The feeds due at `now` (URL, feed, whether asked for by name), marked running. A feed
    /// whose host asked not to be polled yet is put off until then (`held` says until when,
    /// by feed). Only the monotonic clock is read: a jump of the wall clock moves nothing.
    pub(super) fn take_due(
        &mut self,
        now: Instant,
        held: impl Fn(&FeedConfig) -> Option<Instant>,
    ) -> Vec<(String, FeedConfig, bool)> {
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = self.queue.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, url)) = self.queue.pop().expect("peeked");
            let Some(slot) = self.slots.get_mut(&url) else {
                continue;
            };
            if slot.running || slot.due != Some(at) {
                continue;
            }
            if let Some(until) = held(&slot.feed).filter(|u| *u > now) {
                slot.due = Some(until);
                self.queue.push(Reverse((until, url)));
                continue;
            }
            slot.running = true;
            let forced = std::mem::take(&mut slot.forced);
            due.push((url, slot.feed.clone(), forced));
        }
        due
    }

    /// When the next idle feed comes due, if any does.
    pub(super) fn next_due(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, url))) = self.queue.peek() {
            match self.slots.get(url) {
                Some(slot) if !slot.running && slot.due == Some(*at) => return Some(*at),
                _ => {
                    self.queue.pop();
                }
            }
        }
        None
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::time::Duration;

    /// A feed polled every 15 minutes (the daemon's tests use it too).
    pub(in crate::schedule) fn feed(url: &str) -> FeedConfig {
        FeedConfig {
            url: url::Url::parse(url).unwrap(),
            title: None,
            tags: Vec::new(),
            interval: Duration::from_secs(900),
        }
    }

    fn slots(due: &[(&str, Instant)]) -> Slots {
        let mut slots = Slots::default();
        for (url, at) in due {
            slots.insert(url.to_string(), Slot::new(feed(url), Some(*at), 0));
        }
        slots
    }

    fn take(slots: &mut Slots, now: Instant) -> Vec<String> {
        let mut urls: Vec<String> = slots
            .take_due(now, |_| None)
            .into_iter()
            .map(|(u, ..)| u)
            .collect();
        urls.sort();
        urls
    }

    #[test]
    fn a_rescheduled_feed_comes_due_at_its_new_time_only() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let mut q = slots(&[("https://a/", t + 10 * s), ("https://b/", t + 20 * s)]);
        assert_eq!(q.next_due(), Some(t + 10 * s));
        q.set_due("https://a/", Some(t + 30 * s));
        assert_eq!(q.next_due(), Some(t + 20 * s), "a's old time is gone");
        assert!(
            take(&mut q, t + 15 * s).is_empty(),
            "nor does a come due then"
        );
        assert_eq!(take(&mut q, t + 25 * s), ["https://b/"]);
        assert_eq!(
            q.next_due(),
            Some(t + 30 * s),
            "a running feed is not waited for"
        );
        q.set_due("https://a/", Some(t + 5 * s));
        assert_eq!(take(&mut q, t + 6 * s), ["https://a/"], "brought forward");
        assert!(take(&mut q, t + 40 * s).is_empty(), "started once");
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn stopped_feeds_are_counted_and_never_due() {
        let t = Instant::now();
        let mut q = slots(&[("https://a/", t), ("https://b/", t)]);
        q.set_due("https://a/", None);
        assert_eq!(q.stopped(), 1);
        assert_eq!(take(&mut q, t), ["https://b/"]);
        q.set_due("https://a/", Some(t));
        assert_eq!(q.stopped(), 0);
        let keep: HashSet<String> = ["https://b/".to_string()].into();
        q.retain(&keep);
        assert_eq!((q.len(), q.stopped()), (1, 0));
        assert!(take(&mut q, t).is_empty(), "a was removed, b is running");
    }

    #[test]
    fn rescheduling_often_keeps_the_heap_bounded() {
        let t = Instant::now();
        let mut q = slots(&[("https://a/", t)]);
        for i in 0..1000 {
            q.set_due("https://a/", Some(t + Duration::from_secs(i)));
        }
        assert!(q.queue.len() <= 4 + 64 + 1, "{}", q.queue.len());
        assert_eq!(q.next_due(), Some(t + Duration::from_secs(999)));
    }
}
