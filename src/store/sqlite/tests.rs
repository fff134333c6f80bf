//! What only the SQLite backend has: its schema's history, its query plans, group commit, the
//! WAL. The behaviour every backend shares is in `store::contract`.

use rusqlite::Connection;

use super::*;
use crate::model::StoryQuery;
use crate::store::contract::{batch, entry, report};

/// A fresh database in a temporary directory.
fn fresh() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), &Default::default()).unwrap();
    (dir, db)
}

fn titles(db: &Db, tags: &[&str]) -> Vec<String> {
    let q = StoryQuery {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        exclude: vec![],
        limit: 10,
        ..Default::default()
    };
    db.stories(&q)
        .unwrap()
        .stories
        .into_iter()
        .map(|s| s.primary.entry.title)
        .collect()
}

#[test]
fn tag_queries_walk_the_index() {
    let (_dir, store) = fresh();
    for (n, cursor) in [(0, true), (1, false), (3, false), (1, true), (3, true)] {
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            crate::store::rows::candidate_sql('?', n, (50, 100), cursor)
        );
        let mut stmt = store.conn.prepare(&sql).unwrap();
        let params: Vec<rusqlite::types::Value> = (0..n + 2 * cursor as usize)
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
        if n > 0 {
            let key = if cursor {
                "(tag=? AND (date,entry_id)<(?,?))"
            } else {
                "(tag=?)"
            };
            assert!(
                plan.contains(&format!("SEARCH entry_tags USING PRIMARY KEY {key}")),
                "{n} tags, cursor {cursor}: {plan}"
            );
        } else {
            assert!(
                plan.contains("SEARCH entries USING"),
                "below a cursor: {plan}"
            );
        }
        assert!(
            !plan.contains("SCAN entry_tags"),
            "no full scan of entry_tags:\n{plan}"
        );
        assert!(!plan.contains("SCAN entries"), "{plan}");
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(Db::open(&path, &Default::default()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Db::open(&path, &Default::default()).err().unwrap();
    assert!(
        err.to_string().contains("schema version 99 is newer"),
        "{err}"
    );
}

#[test]
fn a_group_commit_keeps_every_good_batch_and_fails_only_the_bad_one() {
    let (_dir, mut store) = fresh();
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
    assert_eq!(titles(&store, &["x"]), ["title 1"]);
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
    let mut store = Db::open(&path, &Default::default()).unwrap();
    let version: i64 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::MIGRATIONS.len() as i64);
    assert_eq!(titles(&store, &[]), ["also kept", "kept"]);
    assert_eq!(titles(&store, &["x"]), ["kept"]);
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
    let store = crate::store::Store::open_sqlite(&path, &Default::default())
        .await
        .unwrap();
    let urls: Vec<String> = (0..40).map(|i| format!("https://f{i}/feed")).collect();
    let config = crate::store::Configured {
        feeds: urls.clone(),
        tag_spellings: vec![],
        fingerprint: String::new(),
    };
    store.configure(config).await.unwrap();
    // About 40 MiB of entries: past WAL_CHECKPOINT_PAGES, so the checkpointer runs too.
    let mut tasks = tokio::task::JoinSet::new();
    for url in urls {
        let store = store.clone();
        tasks.spawn(async move {
            let entries = (0..300)
                .map(|n| {
                    let mut e = entry(&n.to_string(), &format!("{url}/{n}"), n);
                    e.content = Some(format!("<p>{}</p>", "words ".repeat(500)));
                    (e, &[][..])
                })
                .collect();
            crate::store::contract::store_batch(&store, &url, entries).await
        });
    }
    while let Some(counts) = tasks.join_next().await {
        assert_eq!(counts.unwrap().new, 300);
    }
    drop(store);
    let wal = dir.path().join("a.db-wal");
    assert!(
        !wal.exists(),
        "the last connection checkpoints and removes the WAL"
    );
    let reopened = Db::open(&path, &Default::default()).unwrap();
    assert_eq!(reopened.entry_count().unwrap(), 40 * 300);
    reopened.integrity_check().unwrap();
}

/// On tokio's paused clock, time moves only when every task waits on a timer: a batch that
/// waited out the commit delay shows it as elapsed time, one written at once shows none.
#[tokio::test(start_paused = true)]
async fn a_batch_with_no_other_poll_under_way_is_written_without_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&dir.path().join("t.db"), &Default::default()).unwrap();
    let one = |n: &str| {
        let link = format!("https://a/{n}");
        batch("https://a/feed", vec![(entry(n, &link, 1), &[][..])])
    };
    let poll = async |url: &str, claim: Claim| match store.start_poll(url, claim).await.unwrap() {
        Started::Poll(poll) => poll,
        Started::Elsewhere { .. } => unreachable!("a SQLite database has one instance"),
    };
    let alone = poll("https://a/feed", Claim::Now).await;
    let started = tokio::time::Instant::now();
    let counts = store.apply_batch(&alone, one("1")).await.unwrap();
    assert_eq!(counts.new, 1);
    assert!(started.elapsed() < COMMIT_DELAY, "{:?}", started.elapsed());
    drop(alone);

    let first = poll("https://a/feed", Claim::Now).await;
    let second = poll("https://b/feed", Claim::Now).await;
    let started = tokio::time::Instant::now();
    let counts = store.apply_batch(&first, one("2")).await.unwrap();
    assert_eq!(counts.new, 1);
    assert!(
        started.elapsed() >= COMMIT_DELAY,
        "waited for the poll still under way: {:?}",
        started.elapsed()
    );
    drop(second);

    // The daemon's polls ask for no group of their own: alone, one waits for the delay, and
    // a pass's poll arriving meanwhile takes it along in its group at once.
    let scheduled = poll("https://a/feed", Claim::Due { per_host: 2 }).await;
    let started = tokio::time::Instant::now();
    let counts = store.apply_batch(&scheduled, one("3")).await.unwrap();
    assert_eq!(counts.new, 1);
    assert!(started.elapsed() >= COMMIT_DELAY, "{:?}", started.elapsed());
    let seen = Unchanged {
        status: 304,
        validators: Default::default(),
        moved_to: None,
        now: chrono::Utc::now(),
    };
    let scheduled = poll("https://a/feed", Claim::Due { per_host: 2 }).await;
    let pass = poll("https://b/feed", Claim::Now).await;
    let started = tokio::time::Instant::now();
    let (waited, prompt) = tokio::join!(store.record_unchanged(&scheduled, seen.clone()), async {
        tokio::task::yield_now().await;
        store.record_unchanged(&pass, seen.clone()).await
    });
    waited.unwrap();
    prompt.unwrap();
    assert!(
        started.elapsed() < COMMIT_DELAY,
        "written with the pass's record: {:?}",
        started.elapsed()
    );
}

/// How many stories of more than one copy `db` shows.
fn merged(db: &Db) -> usize {
    let q = StoryQuery {
        limit: 10,
        ..Default::default()
    };
    let page = db.stories(&q).unwrap();
    page.stories.iter().filter(|s| !s.also.is_empty()).count()
}

/// After a restart the story index is rebuilt from the signatures stored beside the entries,
/// not from their text; an entry stored without one (by an older program) has its signature
/// derived from its text and written back, and so has every entry when the alias table
/// changed (another epoch).
#[test]
fn the_story_index_reloads_stored_signatures_and_stores_those_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let mut db = Db::open(&path, &Default::default()).unwrap();
        let a = db.feed_state("https://a/feed").unwrap().id;
        let first = batch(
            "https://a/feed",
            vec![(report("a", 0), &[][..]), (report("a", 1), &[][..])],
        );
        assert_eq!(db.apply_batches(&[(a, &first)])[0].as_ref().unwrap().new, 2);
    }
    let conn = Connection::open(&path).unwrap();
    let signed = |conn: &Connection| -> Vec<(String, Option<Vec<u8>>)> {
        let mut stmt = conn
            .prepare(
                "SELECT link, substr(signature, 1, 4)
                 FROM entries LEFT JOIN signatures ON entry_id = id ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let epoch = crate::dedup::stored::epoch(&Default::default()).to_vec();
    assert!(
        signed(&conn)
            .iter()
            .all(|(_, e)| e.as_ref() == Some(&epoch)),
        "every entry is stored with its signature: {:?}",
        signed(&conn)
    );
    // The first report's row now says something else: only its stored signature still says
    // what it said. The second's signature is gone, as if an older program had stored it.
    conn.execute(
        "UPDATE entries SET title = 'A note', content = '<p>Nothing to see.</p>' WHERE link = 'https://a/0'",
        [],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM signatures WHERE entry_id = (SELECT id FROM entries WHERE link = 'https://a/1')",
        [],
    )
    .unwrap();
    {
        let mut db = Db::open(&path, &Default::default()).unwrap();
        let b = db.feed_state("https://b/feed").unwrap().id;
        let copies = batch(
            "https://b/feed",
            vec![(report("b", 0), &[][..]), (report("b", 1), &[][..])],
        );
        assert_eq!(
            db.apply_batches(&[(b, &copies)])[0].as_ref().unwrap().new,
            2
        );
        assert_eq!(
            merged(&db),
            2,
            "each copy joins its report's story: the first by its stored signature"
        );
    }
    assert!(
        signed(&conn)
            .iter()
            .all(|(_, e)| e.as_ref() == Some(&epoch)),
        "the signature derived again is stored: {:?}",
        signed(&conn)
    );
    // Another alias table: every signature stored is of another epoch, derived again.
    let aliases = crate::dedup::Aliases::with(&[("exx".into(), "exchange x".into())]);
    let settings = crate::dedup::cluster::Settings {
        aliases: aliases.clone(),
        ..Default::default()
    };
    {
        let mut db = Db::open(&path, &settings).unwrap();
        let c = db.feed_state("https://c/feed").unwrap().id;
        let more = batch(
            "https://c/feed",
            vec![(entry("9", "https://c/9", 1), &[][..])],
        );
        assert_eq!(db.apply_batches(&[(c, &more)])[0].as_ref().unwrap().new, 1);
    }
    let other = crate::dedup::stored::epoch(&aliases).to_vec();
    assert_ne!(other, epoch);
    let now = signed(&conn);
    assert_eq!(now.len(), 5);
    assert!(
        now.iter().all(|(_, e)| e.as_ref() == Some(&other)),
        "derived again under the new aliases: {now:?}"
    );
}

/// A reload takes what it weighs of a copy from its record, not from the entry's row: with
/// the row's headline and link blanked behind its back, the copy still leads on the merit
/// its record states (were the row read, the later copy would take the lead).
#[test]
fn a_reload_takes_a_copys_facts_from_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let text = format!("<p>{0} {0}</p>", crate::store::contract::REPORTS[0].1);
    let copy = |feed: &str, minutes_later: i64| {
        let mut e = report(feed, 0);
        e.content = Some(text.clone());
        e.published = e
            .published
            .map(|p| p + chrono::Duration::minutes(minutes_later));
        e
    };
    {
        let mut db = Db::open(&path, &Default::default()).unwrap();
        let a = db.feed_state("https://a/feed").unwrap().id;
        let first = batch("https://a/feed", vec![(copy("a", 0), &[][..])]);
        assert_eq!(db.apply_batches(&[(a, &first)])[0].as_ref().unwrap().new, 1);
    }
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE entries SET title = '', link = NULL, story_key = NULL",
        [],
    )
    .unwrap();
    let mut db = Db::open(&path, &Default::default()).unwrap();
    let b = db.feed_state("https://b/feed").unwrap().id;
    let later = batch("https://b/feed", vec![(copy("b", 30), &[][..])]);
    assert_eq!(db.apply_batches(&[(b, &later)])[0].as_ref().unwrap().new, 1);
    assert_eq!(merged(&db), 1, "the later copy joined the first");
    let leads: Vec<(String, bool)> = conn
        .prepare(
            "SELECT f.url, e.leads FROM entries e JOIN feeds f ON f.id = e.feed_id ORDER BY e.id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        leads,
        [
            ("https://a/feed".to_string(), true),
            ("https://b/feed".to_string(), false)
        ],
        "the earlier copy keeps the lead its record earns it"
    );
}

/// A signature lives and dies with its entry: stored with it, replaced when its text changes,
/// forgotten when it changes with clustering off (what is kept would describe the old text),
/// and deleted with it by the retention sweep.
#[test]
fn a_signature_follows_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let count = |db: &Db| -> (i64, i64) {
        db.conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM signatures),
                        (SELECT COUNT(*) FROM signatures WHERE entry_id NOT IN
                            (SELECT id FROM entries))",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let first = batch("https://a/feed", vec![(report("a", 0), &[][..])]);
    let mut edited = report("a", 0);
    edited.title = "Exchange X pauses withdrawals after a hack".into();
    let edited = batch("https://a/feed", vec![(edited, &[][..])]);
    let stored = |db: &Db| -> Vec<u8> {
        db.conn
            .query_row("SELECT signature FROM signatures", [], |r| r.get(0))
            .unwrap()
    };
    let before;
    {
        let mut db = Db::open(&path, &Default::default()).unwrap();
        let a = db.feed_state("https://a/feed").unwrap().id;
        db.apply_batches(&[(a, &first)])[0].as_ref().unwrap();
        assert_eq!(count(&db), (1, 0), "stored with its entry");
        before = stored(&db);
        let r = db.apply_batches(&[(a, &edited)]);
        assert_eq!(r[0].as_ref().unwrap().updated, 1);
        assert_eq!(count(&db), (1, 0));
        assert_ne!(stored(&db), before, "replaced when its text changed");
    }
    {
        let links = crate::dedup::cluster::Settings {
            merge: crate::dedup::cluster::Merge::Links,
            ..Default::default()
        };
        let mut db = Db::open(&path, &links).unwrap();
        let a = db.feed_state("https://a/feed").unwrap().id;
        let r = db.apply_batches(&[(a, &first)]);
        assert_eq!(r[0].as_ref().unwrap().updated, 1);
        assert_eq!(count(&db), (0, 0), "forgotten when rewritten unsigned");
        let b = db.feed_state("https://b/feed").unwrap().id;
        let other = batch("https://b/feed", vec![(report("b", 1), &[][..])]);
        db.apply_batches(&[(b, &other)])[0].as_ref().unwrap();
        assert_eq!(count(&db), (0, 0), "none stored with clustering off");
    }
    let mut db = Db::open(&path, &Default::default()).unwrap();
    let c = db.feed_state("https://c/feed").unwrap().id;
    let third = batch("https://c/feed", vec![(report("c", 1), &[][..])]);
    db.apply_batches(&[(c, &third)])[0].as_ref().unwrap();
    assert_eq!(
        count(&db),
        (3, 0),
        "the two stored unsigned are signed when the index loads them"
    );
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let swept = db.sweep(later, later).unwrap();
    assert_eq!(swept.entries, 3);
    assert_eq!(count(&db), (0, 0), "deleted with its entry");
}
