//! The store's contract: what every backend must do, through the interface callers use. Each
//! check is an async function of a fresh, empty store; `backends!` runs every one against
//! every backend.

use chrono::{Duration, TimeZone, Utc};

use super::{FeedBatch, Store};
use crate::dedup;
use crate::model::{Entry, StoryQuery, Tag, Validators};

/// A fresh store, and whatever must live as long as it (a temporary directory); `None` when
/// the backend's server is not available here (never under CI, where that fails instead).
pub(super) type Fresh = Option<(Store, Box<dyn std::any::Any + Send>)>;

pub(super) fn entry(id: &str, link: &str, hours_ago: i64) -> Entry {
    let base = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    Entry {
        source_id: Some(id.into()),
        link: Some(link.into()),
        published: Some(base - Duration::hours(hours_ago)),
        ..Entry::titled(format!("title {id}"))
    }
}

/// Two wire reports, each to be told again by another outlet: `(title, text)`.
pub(super) const REPORTS: [(&str, &str); 2] = [
    (
        "Exchange X halts withdrawals after $40 million exploit",
        "Exchange X halted withdrawals on Tuesday after a $40 million exploit of its hot \
         wallet, the company said, adding that customer funds were safe.",
    ),
    (
        "Bitget lists Elora token as ELOT jumps 45%",
        "Bitget is adding Elora to its spot market on Friday, the exchange announced, \
         sending the ELOT token 45% higher in early trading.",
    ),
];

/// Wire report `n` (0 or 1) as `feed` tells it: a copy of it in another feed is one story
/// with it only by the rewrite rule (another link, the same headline and text).
pub(super) fn report(feed: &str, n: usize) -> Entry {
    let mut e = entry(&n.to_string(), &format!("https://{feed}/{n}"), 1);
    e.title = REPORTS[n].0.into();
    e.content = Some(REPORTS[n].1.into());
    e
}

pub(super) fn batch(feed_url: &str, entries: Vec<(Entry, &[&str])>) -> FeedBatch {
    FeedBatch {
        title: Some(feed_url.into()),
        site_link: None,
        status: 200,
        validators: Validators::default(),
        body_hash: "h".into(),
        fingerprint: "f".into(),
        moved_to: None,
        entries: entries
            .into_iter()
            .map(|(e, tags)| {
                dedup::prepare(
                    feed_url,
                    e,
                    tags.iter().map(|t| Tag(t.to_string())).collect(),
                    &Default::default(),
                )
            })
            .collect(),
        notes: Vec::new(),
        now: Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(),
    }
}

/// A poll of `feed_url`, which no other instance holds.
pub(super) async fn started(store: &Store, feed_url: &str) -> super::Poll {
    match store.start_poll(feed_url, super::Claim::Now).await.unwrap() {
        super::Started::Poll(poll) => poll,
        super::Started::Elsewhere { .. } => panic!("{feed_url} is held elsewhere"),
    }
}

/// A 304 with no new validators, now.
fn not_modified() -> super::Unchanged {
    super::Unchanged {
        status: 304,
        validators: Validators::default(),
        moved_to: None,
        now: Utc::now(),
    }
}

/// A config of these feeds and tag names, with its fingerprint.
pub(super) fn configured(feeds: &[&str], tags: &[&str], fingerprint: &str) -> super::Configured {
    super::Configured {
        feeds: feeds.iter().map(|f| f.to_string()).collect(),
        tag_spellings: tags.iter().map(|t| t.to_string()).collect(),
        fingerprint: fingerprint.into(),
    }
}

/// Polls `feed_url` and stores `entries` as its batch.
pub(super) async fn store_batch(
    store: &Store,
    feed_url: &str,
    entries: Vec<(Entry, &[&str])>,
) -> super::BatchCounts {
    let poll = started(store, feed_url).await;
    store
        .apply_batch(&poll, batch(feed_url, entries))
        .await
        .unwrap()
}

pub(super) async fn titles(
    store: &Store,
    tags: &[&str],
    exclude: &[&str],
    limit: usize,
) -> Vec<String> {
    let q = StoryQuery {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        exclude: exclude.iter().map(|t| t.to_string()).collect(),
        limit,
        ..Default::default()
    };
    store
        .stories(q)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.primary.entry.title)
        .collect()
}

pub(super) async fn stories_filter_group_and_page(store: Store) {
    // 120 entries tagged "x" so paging past the first candidate page is exercised.
    let many: Vec<(Entry, &[&str])> = (0..120)
        .map(|i| {
            (
                entry(&format!("a{i}"), &format!("https://a/{i}"), i + 10),
                &["x"][..],
            )
        })
        .collect();
    store_batch(&store, "https://a/feed", many).await;
    store_batch(
        &store,
        "https://b/feed",
        vec![
            // Same story as a0 (same link): shown once, a first.
            (entry("b0", "https://a/0", 1), &["y"][..]),
            (entry("b1", "https://b/1", 2), &["y", "secret"][..]),
            (entry("b2", "https://b/2", 3), &["Y"][..]),
        ],
    )
    .await;

    let ys = titles(&store, &["y"], &[], 50).await;
    assert_eq!(
        ys,
        ["title b1", "title b2", "title a0"],
        "the shared story shows its first source, a0"
    );
    assert_eq!(
        titles(&store, &["Y"], &["SECRET"], 50).await,
        ["title b2", "title a0"]
    );
    let xs = titles(&store, &["x"], &[], 110).await;
    assert_eq!(xs.len(), 110);
    assert_eq!(xs[0], "title a0");
    assert_eq!(xs[109], "title a109");
    assert_eq!(
        titles(&store, &[], &[], 1000).await.len(),
        122,
        "a0 and b0 are one story"
    );
    assert!(titles(&store, &["nope"], &[], 10).await.is_empty());

    let shared = store
        .stories(StoryQuery {
            tags: vec!["y".into()],
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let a0 = shared
        .iter()
        .find(|s| s.primary.entry.title == "title a0")
        .unwrap();
    assert_eq!(a0.also.len(), 1);
    assert_eq!(a0.also[0].feed_url, "https://b/feed");
    let tag_names: Vec<_> = a0.tags.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        tag_names,
        ["x", "y"],
        "a story carries the tags of all its copies"
    );
}

/// Every page of a query, following each page's cursor, as the guids of its stories; after
/// the first page, `between` runs (stories arriving while a reader walks).
async fn walk(
    store: &Store,
    tags: &[&str],
    limit: usize,
    mut between: impl AsyncFnMut(),
) -> Vec<String> {
    let mut q = StoryQuery {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        limit,
        ..Default::default()
    };
    let mut guids = Vec::new();
    for n in 0.. {
        assert!(n < 100, "the walk ends");
        let page = store.page(q.clone()).await.unwrap();
        assert!(page.stories.len() <= limit);
        guids.extend(page.stories.iter().map(|s| s.guid.clone()));
        match page.next {
            Some(c) => q.before = Some(c),
            None => break,
        }
        if n == 0 {
            between().await;
        }
    }
    guids
}

/// A reader who pages past an output's limit gets every story once, in any tag selection,
/// including a story found through a later copy, and stories that arrive meanwhile land
/// above the cursor, not in the pages behind it.
pub(super) async fn pages_walk_every_story_once(store: Store) {
    for (feed, n) in [("https://a/feed", 9), ("https://b/feed", 7)] {
        let entries = (0..n)
            .map(|i| {
                let id = format!("{feed}#{i}");
                let tags: &[&str] = if i % 2 == 0 { &["even"] } else { &[] };
                (entry(&id, &format!("{feed}/{i}"), i * 3 + n), tags)
            })
            .collect();
        store_batch(&store, feed, entries).await;
    }
    // A later copy of a's entry 3, by its link, tagged "even": the story is in that selection
    // through the copy, not its lead.
    let copy = (entry("c", "https://a/feed/3", 1), &["even"][..]);
    store_batch(&store, "https://c/feed", vec![copy]).await;
    for tags in [&[][..], &["even"][..]] {
        let all: Vec<String> = titles_guids(&store, tags).await;
        for limit in [1, 2, 4, 50] {
            let walked = walk(&store, tags, limit, async || {}).await;
            assert_eq!(walked.len(), all.len(), "{tags:?} by {limit}: {walked:?}");
            let mut sorted = walked.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                walked.len(),
                "{tags:?} by {limit}: a story twice"
            );
            let mut expected = all.clone();
            expected.sort();
            assert_eq!(sorted, expected, "{tags:?} by {limit}");
        }
    }
    let before = titles_guids(&store, &[]).await;
    let walked = walk(&store, &[], 3, async || {
        let late = (entry("late", "https://d/late", 0), &[][..]);
        store_batch(&store, "https://d/feed", vec![late]).await;
    })
    .await;
    let mut walked_sorted = walked.clone();
    walked_sorted.sort();
    let mut before_sorted = before.clone();
    before_sorted.sort();
    assert_eq!(
        walked_sorted, before_sorted,
        "the stories there when the walk began, each once; the new one is above the cursor"
    );
}

/// The guids of every story a query selects, from one page large enough for all.
async fn titles_guids(store: &Store, tags: &[&str]) -> Vec<String> {
    let q = StoryQuery {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        limit: 1000,
        ..Default::default()
    };
    let page = store.page(q).await.unwrap();
    assert!(page.next.is_none(), "no page past a page that is not full");
    page.stories.into_iter().map(|s| s.guid).collect()
}

/// What the status pages read: a story by its id, a feed's last polls (every kind of poll
/// recorded, 21 kept), tags with their story counts, stories by words of their title and by
/// source.
pub(super) async fn the_status_pages_reads(store: Store) {
    let mut bitcoin = entry("1", "https://a/1", 2);
    bitcoin.title = "Bitcoin ETF inflows hit a record".into();
    let mut ether = entry("2", "https://a/2", 1);
    ether.title = "Ether staking yields fall".into();
    store_batch(
        &store,
        "https://a/feed",
        vec![(bitcoin, &["BTC"][..]), (ether, &["ETH"][..])],
    )
    .await;
    let mut copy = entry("9", "https://a/1", 0);
    copy.title = "Bitcoin ETFs see record inflows".into();
    store_batch(&store, "https://b/feed", vec![(copy, &["BTC", "ETF"][..])]).await;

    let all = store
        .stories(StoryQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    for s in &all {
        let again = store.story(s.id).await.unwrap().expect("found by its id");
        assert_eq!(
            (again.guid.as_str(), again.also.len()),
            (s.guid.as_str(), s.also.len())
        );
        let parsed: crate::model::StoryId = s.id.to_string().parse().unwrap();
        assert_eq!(parsed, s.id);
    }
    assert!(
        store
            .story(crate::model::StoryId::Story(999_999))
            .await
            .unwrap()
            .is_none()
    );

    let counts = store.tag_counts().await.unwrap();
    assert_eq!(
        counts[0],
        ("BTC".to_string(), 1),
        "two copies, one story: {counts:?}"
    );
    assert!(counts.contains(&("ETF".to_string(), 1)) && counts.contains(&("ETH".to_string(), 1)));

    let search = |text: &str, tags: &[&str]| {
        let q = StoryQuery {
            text: Some(text.into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            limit: 10,
            ..Default::default()
        };
        let store = store.clone();
        async move {
            let page = store.page(q).await.unwrap();
            assert!(page.next.is_none(), "a search is one page");
            page.stories
                .into_iter()
                .map(|s| s.primary.entry.title)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search("inflows", &[]).await,
        ["Bitcoin ETF inflows hit a record"]
    );
    assert_eq!(
        search("ETHER STAK", &[]).await,
        ["Ether staking yields fall"],
        "case and a prefix"
    );
    assert_eq!(
        search("record bitcoin", &["etf"]).await.len(),
        1,
        "through the copy's tag"
    );
    assert!(search("record bitcoin", &["eth"]).await.is_empty());
    assert!(search("\"); DROP TABLE entries; --", &[]).await.is_empty());
    assert!(search("nothing-like-it", &[]).await.is_empty());
    // A title edited after it was searched (so after it was indexed) is found by its new
    // words only.
    let mut edited = entry("2", "https://a/2", 1);
    edited.title = "Ether yields climb".into();
    store_batch(&store, "https://a/feed", vec![(edited, &["ETH"][..])]).await;
    assert!(search("staking", &[]).await.is_empty());
    assert_eq!(search("yields climb", &[]).await, ["Ether yields climb"]);

    let from_b = store
        .stories(StoryQuery {
            feed: Some("https://b/feed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(from_b.len(), 1);
    assert_eq!(from_b[0].also.len(), 1, "the story, with every source");

    let poll = started(&store, "https://a/feed").await;
    let failure = super::Failure {
        status: Some(503),
        error: "HTTP 503".into(),
        now: Utc::now(),
    };
    store.record_failure(&poll, failure).await.unwrap();
    let seen = not_modified();
    store.record_unchanged(&poll, seen).await.unwrap();
    drop(poll);
    let polls = store.recent_polls("https://a/feed").await.unwrap();
    let kinds: Vec<(Option<u16>, Option<&str>)> = polls
        .iter()
        .map(|p| (p.status, p.error.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (Some(304), None),
            (Some(503), Some("HTTP 503")),
            (Some(200), None),
            (Some(200), None)
        ]
    );
    for _ in 0..30 {
        let poll = started(&store, "https://b/feed").await;
        let seen = not_modified();
        store.record_unchanged(&poll, seen).await.unwrap();
    }
    assert_eq!(
        store.recent_polls("https://b/feed").await.unwrap().len(),
        super::POLLS_KEPT
    );
    assert!(
        store
            .recent_polls("https://nowhere/feed")
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn unchanged_entries_cost_no_write_and_edits_keep_the_guid(store: Store) {
    let one = || vec![(entry("1", "https://a/1", 1), &[][..])];
    assert_eq!(store_batch(&store, "https://a/feed", one()).await.new, 1);
    assert_eq!(
        store_batch(&store, "https://a/feed", one()).await.unchanged,
        1
    );
    let newest = || StoryQuery {
        limit: 1,
        ..Default::default()
    };
    let guid = store.stories(newest()).await.unwrap()[0]
        .primary
        .guid
        .clone();
    let mut edited = entry("1", "https://a/1", 1);
    edited.title = "edited".into();
    let upd = store_batch(&store, "https://a/feed", vec![(edited, &[][..])]).await;
    assert_eq!(upd.updated, 1);
    let s = &store.stories(newest()).await.unwrap()[0];
    assert_eq!(
        (s.primary.entry.title.as_str(), s.primary.guid.as_str()),
        ("edited", guid.as_str())
    );
}

pub(super) async fn concurrent_batches_each_get_their_own_counts(store: Store) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20usize {
        let store = store.clone();
        tasks.spawn(async move {
            let url = format!("https://f{i}/feed");
            let entries = (0..=i)
                .map(|n| {
                    let link = format!("https://f{i}/{n}");
                    (entry(&n.to_string(), &link, n as i64), &[][..])
                })
                .collect();
            (i, store_batch(&store, &url, entries).await)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, counts) = done.unwrap();
        assert_eq!(counts.new, i + 1, "feed {i} is told its own count");
    }
    let total = store.entry_count().await.unwrap();
    assert_eq!(total, (1..=20).sum::<u64>());
}

/// Polls finishing at once, some with a batch and some unchanged, each recorded as its own:
/// the backend may write them together (SQLite groups them), and none is lost or mixed up.
pub(super) async fn polls_finishing_at_once_are_each_recorded(store: Store) {
    for i in 0..24usize {
        let url = format!("https://u{i}/feed");
        store_batch(
            &store,
            &url,
            vec![(entry("0", &format!("{url}/0"), 1), &[][..])],
        )
        .await;
        let poll = started(&store, &url).await;
        let failure = super::Failure {
            status: Some(500),
            error: "HTTP 500".into(),
            now: Utc::now(),
        };
        store.record_failure(&poll, failure).await.unwrap();
    }
    let mut polls = Vec::new();
    for i in 0..24usize {
        polls.push((i, started(&store, &format!("https://u{i}/feed")).await));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, poll) in polls {
        let store = store.clone();
        tasks.spawn(async move {
            if i % 2 == 0 {
                let seen = super::Unchanged {
                    validators: Validators {
                        etag: Some(format!("\"e{i}\"")),
                        last_modified: None,
                    },
                    ..not_modified()
                };
                store.record_unchanged(&poll, seen).await.unwrap();
            } else {
                let url = format!("https://u{i}/feed");
                let b = batch(&url, vec![(entry("1", &format!("{url}/1"), 0), &[][..])]);
                assert_eq!(store.apply_batch(&poll, b).await.unwrap().new, 1);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let statuses = store.feed_statuses().await.unwrap();
    assert_eq!(statuses.len(), 24);
    for status in &statuses {
        let i: usize = status.url["https://u".len()..status.url.len() - "/feed".len()]
            .parse()
            .unwrap();
        assert_eq!(status.last_error, None, "{}", status.url);
        assert_eq!(status.consecutive_failures, 0, "{}", status.url);
        let (code, entries) = if i % 2 == 0 { (304, 1) } else { (200, 2) };
        assert_eq!(status.last_status, Some(code), "{}", status.url);
        assert_eq!(status.entries, entries, "{}", status.url);
        let etag = started(&store, &status.url).await.state.validators.etag;
        let expected = (i % 2 == 0).then(|| format!("\"e{i}\""));
        assert_eq!(etag, expected, "{}", status.url);
    }
}

/// A failure touches the feed's status only; a success after it clears the error.
pub(super) async fn failures_are_recorded_and_cleared(store: Store) {
    store_batch(
        &store,
        "https://a/feed",
        vec![(entry("1", "https://a/1", 1), &[][..])],
    )
    .await;
    let poll = started(&store, "https://a/feed").await;
    let failure = super::Failure {
        status: Some(503),
        error: "HTTP 503".into(),
        now: Utc::now(),
    };
    store.record_failure(&poll, failure.clone()).await.unwrap();
    store.record_failure(&poll, failure).await.unwrap();
    drop(poll);
    let status = &store.feed_statuses().await.unwrap()[0];
    assert_eq!(status.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(status.consecutive_failures, 2);
    assert_eq!(status.entries, 1, "nothing stored was lost");
    let poll = started(&store, "https://a/feed").await;
    let seen = super::Unchanged {
        status: 304,
        validators: Validators {
            etag: Some("\"v2\"".into()),
            last_modified: None,
        },
        moved_to: None,
        now: Utc::now(),
    };
    store.record_unchanged(&poll, seen).await.unwrap();
    let status = &store.feed_statuses().await.unwrap()[0];
    assert_eq!(status.last_error, None);
    assert_eq!(status.consecutive_failures, 0);
    let again = started(&store, "https://a/feed").await;
    assert_eq!(again.state.validators.etag.as_deref(), Some("\"v2\""));
    assert_eq!(again.state.body_hash.as_deref(), Some("h"));
}

/// Retention leaves a tombstone: the pruned entry, still in its feed, is not stored again.
pub(super) async fn swept_entries_stay_gone(store: Store) {
    let one = || vec![(entry("1", "https://a/1", 1), &[][..])];
    store_batch(&store, "https://a/feed", one()).await;
    let later = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let swept = store.sweep(later, later).await.unwrap();
    assert_eq!(swept.entries, 1);
    assert_eq!(store.entry_count().await.unwrap(), 0);
    assert_eq!(
        store_batch(&store, "https://a/feed", one())
            .await
            .tombstoned,
        1
    );
    assert_eq!(store.entry_count().await.unwrap(), 0);
}

/// What a poll is told the feed's last batch held: each of its entries by key and content.
/// An entry the poll left unsigned, believing it held, that turns out new is signed by the
/// writer and clustered like any other.
pub(super) async fn held_entries_are_named_and_the_writer_signs_what_was_not(store: Store) {
    let feed = "https://a/feed";
    let two = || {
        vec![
            (report("a", 0), &[][..]),
            (entry("2", "https://a/2", 2), &[][..]),
        ]
    };
    let poll = started(&store, feed).await;
    assert!(
        store.held(&poll).await.unwrap().is_empty(),
        "nothing stored yet"
    );
    store.apply_batch(&poll, batch(feed, two())).await.unwrap();
    let poll = started(&store, feed).await;
    let held = store.held(&poll).await.unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(batch(feed, two()).entries.iter().all(|e| held.keeps(e)));
    let mut edited = entry("2", "https://a/2", 2);
    edited.title = "edited".into();
    let edited = batch(feed, vec![(edited, &[][..])]);
    assert!(!held.keeps(&edited.entries[0]), "an edit is not held");
    let third = || vec![(entry("3", "https://a/3", 3), &[][..])];
    assert!(
        !held.keeps(&batch(feed, third()).entries[0]),
        "nor an entry never stored"
    );
    // The next batch's record replaces it.
    store
        .apply_batch(&poll, batch(feed, third()))
        .await
        .unwrap();
    let poll = started(&store, feed).await;
    let held = store.held(&poll).await.unwrap();
    assert!(held.keeps(&batch(feed, third()).entries[0]));
    assert!(!held.keeps(&batch(feed, two()).entries[0]));
    store.record_unchanged(&poll, not_modified()).await.unwrap();

    // Another outlet's copy of the report, left unsigned: the writer signs it, and it joins
    // the report's story by its headline and text (its link is another).
    let mut unsigned = batch("https://b/feed", vec![]);
    unsigned.entries = vec![dedup::identify("https://b/feed", report("b", 0), vec![])];
    let poll = started(&store, "https://b/feed").await;
    assert_eq!(store.apply_batch(&poll, unsigned).await.unwrap().new, 1);
    let all = StoryQuery {
        limit: 10,
        ..Default::default()
    };
    let stories = store.stories(all).await.unwrap();
    let report = stories
        .iter()
        .find(|s| s.primary.entry.title == REPORTS[0].0)
        .expect("the report's story");
    assert_eq!(stories.len(), 3, "the copy joined the report: {stories:?}");
    assert_eq!(report.also.len(), 1);
}

/// `gone` and the next poll are recorded per feed URL, and forgotten for unconfigured feeds.
pub(super) async fn schedule_marks_are_kept(store: Store) {
    let both = configured(&["https://a/feed", "https://b/feed"], &[], "c1");
    store.configure(both).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    store
        .set_next_poll("https://a/feed", Some(at))
        .await
        .unwrap();
    store.mark_gone("https://b/feed").await.unwrap();
    let statuses = store.feed_statuses().await.unwrap();
    assert_eq!(statuses[0].next_poll, Some(at));
    assert!(!statuses[0].gone && statuses[1].gone);
    // A config without b forgets that b was gone, so adding it back polls it again.
    let a = configured(&["https://a/feed"], &["Binance"], "c1");
    assert!(
        store.configure(a).await.unwrap().is_empty(),
        "no other config"
    );
    assert!(!store.feed_statuses().await.unwrap()[1].gone);
}

/// A feed the config dropped leaves the stories read, unless a configured feed carried the
/// same story; its entries are kept, and shown again once it is configured again.
pub(super) async fn dropped_feeds_leave_the_outputs(store: Store) {
    let both = configured(&["https://a/feed", "https://b/feed"], &[], "c1");
    store.configure(both.clone()).await.unwrap();
    store_batch(
        &store,
        "https://a/feed",
        vec![(entry("1", "https://a/1", 2), &[][..])],
    )
    .await;
    // b carries a story of its own and a copy of a's (same link: one story).
    store_batch(
        &store,
        "https://b/feed",
        vec![
            (entry("2", "https://b/2", 1), &[][..]),
            (entry("3", "https://a/1", 3), &[][..]),
        ],
    )
    .await;
    let all = |store: Store| async move { titles(&store, &[], &[], 10).await };
    assert_eq!(all(store.clone()).await.len(), 2);
    store
        .configure(configured(&["https://a/feed"], &[], "c2"))
        .await
        .unwrap();
    // The shared story stays, as it was published (its lead, b's earlier copy, and guid do not
    // change under a reader); b's own story leaves.
    assert_eq!(
        all(store.clone()).await,
        ["title 3"],
        "b's own story leaves"
    );
    assert_eq!(store.entry_count().await.unwrap(), 3, "nothing is deleted");
    store.configure(both).await.unwrap();
    assert_eq!(all(store.clone()).await.len(), 2);
}

/// Runs every contract check against a backend: `backends!(name, opener)`, where `opener`
/// is an async fn returning a [`Fresh`] store.
macro_rules! backends {
    ($backend:ident, $open:path) => {
        mod $backend {
            use super::*;
            backends!(@each $open;
                stories_filter_group_and_page,
                pages_walk_every_story_once,
                the_status_pages_reads,
                unchanged_entries_cost_no_write_and_edits_keep_the_guid,
                concurrent_batches_each_get_their_own_counts,
                polls_finishing_at_once_are_each_recorded,
                failures_are_recorded_and_cleared,
                swept_entries_stay_gone,
                held_entries_are_named_and_the_writer_signs_what_was_not,
                schedule_marks_are_kept,
                dropped_feeds_leave_the_outputs,
            );
        }
    };
    (@each $open:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let Some((store, _keep)) = $open().await else {
                    return;
                };
                super::$check(store).await;
            }
        )*
    };
}

async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("contract.db"), &Default::default())
        .await
        .unwrap();
    Some((store, Box::new(dir)))
}

/// A new, empty database on the server `AGGREGATE_TEST_POSTGRES` names (a key=value
/// connection string; `.ci/postgres.sh` starts one). Without it, the check is skipped, unless
/// CI=true: then it fails.
pub(super) async fn fresh_postgres() -> Option<crate::config::PostgresConfig> {
    let Ok(base) = std::env::var("AGGREGATE_TEST_POSTGRES") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but AGGREGATE_TEST_POSTGRES is not set: .ci/run starts PostgreSQL"
        );
        eprintln!("skipped: no PostgreSQL (source .ci/postgres.sh to run this)");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL answers");
    tokio::spawn(connection);
    let name = format!("contract_{:016x}", fastrand::u64(..));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some(crate::config::PostgresConfig {
        url: format!("{base} dbname={name}"),
        pool: 4,
        lease: std::time::Duration::from_secs(60),
    })
}

async fn postgres() -> Fresh {
    let config = fresh_postgres().await?;
    let store = Store::open_postgres(&config, &Default::default())
        .await
        .unwrap();
    Some((store, Box::new(())))
}

backends!(on_sqlite, sqlite);
backends!(on_postgres, postgres);
