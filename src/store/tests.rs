use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::dedup;
use crate::fetch::Validators;
use crate::model::{Entry, StoryQuery, Tag};
use crate::store::FeedBatch;

fn entry(id: &str, link: &str, hours_ago: i64) -> Entry {
    let base = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    Entry {
        source_id: Some(id.into()),
        title: format!("title {id}"),
        link: Some(link.into()),
        summary: None,
        content: None,
        authors: vec![],
        categories: vec![],
        category_labels: vec![],
        published: Some(base - Duration::hours(hours_ago)),
        updated: None,
        enclosures: vec![],
    }
}

fn batch(feed_url: &str, entries: Vec<(Entry, &[&str])>) -> FeedBatch {
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
                )
            })
            .collect(),
        notes: Vec::new(),
        now: Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(),
    }
}

fn titles(store: &Store, tags: &[&str], exclude: &[&str], limit: usize) -> Vec<String> {
    let q = StoryQuery {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        exclude: exclude.iter().map(|t| t.to_string()).collect(),
        limit,
    };
    store
        .stories(&q)
        .unwrap()
        .into_iter()
        .map(|s| s.primary.entry.title)
        .collect()
}

#[test]
fn stories_filter_group_and_page() {
    let mut store = Store::open_in_memory().unwrap();
    let a = store.feed_state("https://a/feed").unwrap().id;
    let b = store.feed_state("https://b/feed").unwrap().id;
    // 120 entries tagged "x" so paging past the first candidate page is exercised.
    let many: Vec<(Entry, &[&str])> = (0..120)
        .map(|i| {
            (
                entry(&format!("a{i}"), &format!("https://a/{i}"), i + 10),
                &["x"][..],
            )
        })
        .collect();
    store
        .apply_batch(a, &batch("https://a/feed", many))
        .unwrap();
    store
        .apply_batch(
            b,
            &batch(
                "https://b/feed",
                vec![
                    // Same story as a0 (same link): shown once, a first.
                    (entry("b0", "https://a/0", 1), &["y"][..]),
                    (entry("b1", "https://b/1", 2), &["y", "secret"][..]),
                    (entry("b2", "https://b/2", 3), &["Y"][..]),
                ],
            ),
        )
        .unwrap();

    let ys = titles(&store, &["y"], &[], 50);
    assert_eq!(
        ys,
        ["title b1", "title b2", "title a0"],
        "the shared story shows its first source, a0"
    );
    assert_eq!(
        titles(&store, &["Y"], &["SECRET"], 50),
        ["title b2", "title a0"]
    );
    let xs = titles(&store, &["x"], &[], 110);
    assert_eq!(xs.len(), 110);
    assert_eq!(xs[0], "title a0");
    assert_eq!(xs[109], "title a109");
    assert_eq!(
        titles(&store, &[], &[], 1000).len(),
        122,
        "a0 and b0 are one story"
    );
    assert!(titles(&store, &["nope"], &[], 10).is_empty());

    let shared = store
        .stories(&StoryQuery {
            tags: vec!["y".into()],
            exclude: vec![],
            limit: 50,
        })
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

#[test]
fn tag_queries_walk_the_index() {
    let store = Store::open_in_memory().unwrap();
    for n in [1, 3] {
        let sql = format!("EXPLAIN QUERY PLAN {}", read::candidate_sql(n, 50, 100));
        let mut stmt = store.conn.prepare(&sql).unwrap();
        let params: Vec<rusqlite::types::Value> = (0..n)
            .map(|i| rusqlite::types::Value::Integer(i as i64 + 1))
            .collect();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("SEARCH entry_tags USING PRIMARY KEY (tag=?)"),
            "{plan}"
        );
        assert!(
            !plan.contains("SCAN entry_tags"),
            "no full scan of entry_tags:\n{plan}"
        );
        assert!(!plan.contains("SCAN entries"), "{plan}");
    }
}

#[test]
fn unchanged_entries_cost_no_write_and_edits_keep_the_guid() {
    let mut store = Store::open_in_memory().unwrap();
    let id = store.feed_state("https://a/feed").unwrap().id;
    let first = store
        .apply_batch(
            id,
            &batch(
                "https://a/feed",
                vec![(entry("1", "https://a/1", 1), &[][..])],
            ),
        )
        .unwrap();
    assert_eq!(first.new, 1);
    let same = store
        .apply_batch(
            id,
            &batch(
                "https://a/feed",
                vec![(entry("1", "https://a/1", 1), &[][..])],
            ),
        )
        .unwrap();
    assert_eq!(same.unchanged, 1);
    let guid = store
        .stories(&StoryQuery {
            limit: 1,
            ..Default::default()
        })
        .unwrap()[0]
        .primary
        .guid
        .clone();
    let mut edited = entry("1", "https://a/1", 1);
    edited.title = "edited".into();
    let upd = store
        .apply_batch(id, &batch("https://a/feed", vec![(edited, &[][..])]))
        .unwrap();
    assert_eq!(upd.updated, 1);
    let s = &store
        .stories(&StoryQuery {
            limit: 5,
            ..Default::default()
        })
        .unwrap()[0];
    assert_eq!(
        (s.primary.entry.title.as_str(), s.primary.guid.as_str()),
        ("edited", guid.as_str())
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).err().unwrap();
    assert!(
        err.to_string().contains("schema version 99 is newer"),
        "{err}"
    );
}

#[test]
fn a_group_commit_keeps_every_good_batch_and_fails_only_the_bad_one() {
    let mut store = Store::open_in_memory().unwrap();
    let a = store.feed_state("https://a/feed").unwrap().id;
    let b = store.feed_state("https://b/feed").unwrap().id;
    let good_a = batch("https://a/feed", vec![(entry("1", "https://a/1", 1), &[])]);
    // No feed has this id: the foreign key refuses the batch half-way through its entries.
    let bad = batch(
        "https://nowhere/feed",
        vec![
            (entry("1", "https://n/1", 1), &[]),
            (entry("2", "https://n/2", 2), &[]),
        ],
    );
    let good_b = batch(
        "https://b/feed",
        vec![(entry("1", "https://b/1", 3), &["x"])],
    );
    let results = store.apply_batches(&[(a, &good_a), (9999, &bad), (b, &good_b)]);
    assert_eq!(results[0].as_ref().unwrap().new, 1);
    assert!(results[1].is_err(), "{:?}", results[1]);
    assert_eq!(results[2].as_ref().unwrap().new, 1);
    assert_eq!(
        store.entry_count().unwrap(),
        2,
        "nothing of the bad batch is kept"
    );
    assert_eq!(titles(&store, &["x"], &[], 10), ["title 1"]);
}

#[tokio::test]
async fn concurrent_batches_each_get_their_own_counts() {
    let mut store = Store::open_in_memory().unwrap();
    let ids: Vec<i64> = (0..20)
        .map(|i| store.feed_state(&format!("https://f{i}/feed")).unwrap().id)
        .collect();
    let shared = SharedStore::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.into_iter().enumerate() {
        let shared = shared.clone();
        tasks.spawn(async move {
            let url = format!("https://f{i}/feed");
            let entries = (0..=i)
                .map(|n| {
                    let link = format!("https://f{i}/{n}");
                    (entry(&n.to_string(), &link, n as i64), &[][..])
                })
                .collect();
            (i, shared.apply_batch(id, batch(&url, entries), true).await)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, counts) = done.unwrap();
        assert_eq!(counts.unwrap().new, i + 1, "feed {i} is told its own count");
    }
    let total = shared.call(|s| s.entry_count()).await.unwrap();
    assert_eq!(total, (1..=20).sum::<u64>());
}

#[test]
fn a_version_1_database_is_migrated_with_its_entries_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO feeds (id, url, title) VALUES (1, 'https://a/feed', 'A');
             INSERT INTO entries (id, feed_id, key, guid, story_key, title, link, date, first_seen, changed_at, content_hash)
                 VALUES (7, 1, 'id:1', 'urn:uuid:g1', 'a/1', 'kept', 'https://a/1', 100, 100, 100, 'h'),
                        (8, 1, 'id:2', 'urn:uuid:g2', 'a/2', 'also kept', 'https://a/2', 200, 100, 100, 'h');
             INSERT INTO tags (key, display) VALUES ('x', 'X');
             INSERT INTO entry_tags (tag, entry_id, date) VALUES ('x', 7, 100);",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let version: i64 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::MIGRATIONS.len() as i64);
    assert_eq!(titles(&store, &[], &[], 10), ["also kept", "kept"]);
    assert_eq!(titles(&store, &["x"], &[], 10), ["kept"]);
    let fk: bool = store
        .conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert!(fk, "foreign keys are on again after migrating");
    // The guid survived, and the cascade still reaches the rebuilt tag table.
    let guid: String = store
        .conn
        .query_row("SELECT guid FROM entries WHERE id = 7", [], |r| r.get(0))
        .unwrap();
    assert_eq!(guid, "urn:uuid:g1");
    store
        .conn
        .execute("DELETE FROM entries WHERE id = 7", [])
        .unwrap();
    let tags: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM entry_tags", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tags, 0);
    let _ = store.feed_state("https://a/feed").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_leaves_no_wal_and_keeps_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut store = Store::open(&path).unwrap();
    let urls: Vec<String> = (0..40).map(|i| format!("https://f{i}/feed")).collect();
    store.register_feeds(&urls).unwrap();
    let shared = SharedStore::new(store);
    // About 40 MiB of entries: past WAL_CHECKPOINT_PAGES, so the checkpointer runs too.
    let mut tasks = tokio::task::JoinSet::new();
    for url in urls {
        let shared = shared.clone();
        tasks.spawn(async move {
            // Read through a reader connection: the row exists from register_feeds.
            let id = shared.feed_state(&url).await.unwrap().id;
            let entries = (0..300)
                .map(|n| {
                    let mut e = entry(&n.to_string(), &format!("{url}/{n}"), n);
                    e.content = Some(format!("<p>{}</p>", "words ".repeat(500)));
                    (e, &[][..])
                })
                .collect();
            shared
                .apply_batch(id, batch(&url, entries), true)
                .await
                .unwrap()
        });
    }
    while let Some(counts) = tasks.join_next().await {
        assert_eq!(counts.unwrap().new, 300);
    }
    drop(shared);
    let wal = dir.path().join("a.db-wal");
    assert!(
        !wal.exists(),
        "the last connection checkpoints and removes the WAL"
    );
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.entry_count().unwrap(), 40 * 300);
    reopened.integrity_check().unwrap();
}

/// On tokio's paused clock, time moves only when every task waits on a timer: a batch that
/// waited out the commit delay shows it as elapsed time, one written at once shows none.
#[tokio::test(start_paused = true)]
async fn a_batch_with_none_coming_after_it_is_written_without_the_delay() {
    let mut store = Store::open_in_memory().unwrap();
    let id = store.feed_state("https://a/feed").unwrap().id;
    let shared = SharedStore::new(store);
    let one = |n: &str| {
        let link = format!("https://a/{n}");
        batch("https://a/feed", vec![(entry(n, &link, 1), &[][..])])
    };
    let started = tokio::time::Instant::now();
    let counts = shared.apply_batch(id, one("1"), false).await.unwrap();
    assert_eq!(counts.new, 1);
    assert!(started.elapsed() < COMMIT_DELAY, "{:?}", started.elapsed());
    let started = tokio::time::Instant::now();
    let counts = shared.apply_batch(id, one("2"), true).await.unwrap();
    assert_eq!(counts.new, 1);
    assert!(started.elapsed() >= COMMIT_DELAY, "{:?}", started.elapsed());
}
