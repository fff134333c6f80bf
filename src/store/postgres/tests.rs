//! What only the PostgreSQL backend has: instances sharing one database. Each check opens
//! several stores on one fresh database, as several processes would.

use std::time::Duration;

use chrono::Utc;

use crate::store::contract::{batch, entry, fresh_postgres};
use crate::store::{Claim, Started, Store, StoreError};

async fn instances(n: usize, lease: Duration) -> Option<Vec<Store>> {
    Some(instances_on(n, lease).await?.0)
}

/// The stores, and a connection of the test's own to their database.
async fn instances_on(n: usize, lease: Duration) -> Option<(Vec<Store>, tokio_postgres::Client)> {
    let mut config = fresh_postgres().await?;
    config.lease = lease;
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(
            Store::open_postgres(&config, &Default::default())
                .await
                .unwrap(),
        );
    }
    let (client, connection) = tokio_postgres::connect(&config.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    Some((stores, client))
}

async fn claim(store: &Store, url: &str, how: Claim) -> Option<crate::store::Poll> {
    match store.start_poll(url, how).await.unwrap() {
        Started::Poll(p) => Some(p),
        Started::Elsewhere { .. } => None,
    }
}

#[tokio::test]
async fn a_feed_is_polled_by_one_instance_until_its_schedule_says_otherwise() {
    let Some(s) = instances(2, Duration::from_secs(60)).await else {
        return;
    };
    let url = "https://a/feed";
    let a = claim(&s[0], url, Claim::Due { per_host: 2 })
        .await
        .expect("a free, new feed is due");
    assert!(
        claim(&s[1], url, Claim::Due { per_host: 2 })
            .await
            .is_none(),
        "leased to the first"
    );
    assert!(
        claim(&s[1], url, Claim::Now).await.is_none(),
        "even --once waits for a lease"
    );
    let mut one = batch(url, vec![(entry("1", "https://a/1", 1), &[][..])]);
    one.now = Utc::now();
    s[0].apply_batch(&a, one).await.unwrap();
    assert!(
        claim(&s[1], url, Claim::Due { per_host: 2 })
            .await
            .is_none(),
        "between the result and its schedule, the feed is held back"
    );
    let soon = Utc::now() + chrono::Duration::minutes(15);
    s[0].set_next_poll(url, Some(soon)).await.unwrap();
    match s[1]
        .start_poll(url, Claim::Due { per_host: 2 })
        .await
        .unwrap()
    {
        Started::Elsewhere { until } => {
            assert_eq!(until.map(|t| t.timestamp()), Some(soon.timestamp()))
        }
        Started::Poll(_) => panic!("not due for 15 minutes"),
    }
    s[0].set_next_poll(url, Some(Utc::now() - chrono::Duration::seconds(5)))
        .await
        .unwrap();
    assert!(
        claim(&s[1], url, Claim::Due { per_host: 2 })
            .await
            .is_some(),
        "due: either instance may take it"
    );
}

#[tokio::test]
async fn a_zombie_whose_lease_ran_out_has_its_batch_refused() {
    let Some((s, db)) = instances_on(2, Duration::from_millis(300)).await else {
        return;
    };
    let url = "https://slow/feed";
    let zombie = claim(&s[0], url, Claim::Now).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        claim(&s[1], url, Claim::Now).await.is_none(),
        "a live poll's lease is renewed past its length"
    );
    // As if the instance had frozen: its lease is let run out (renewals stop at that).
    db.execute(
        "UPDATE feeds SET lease_until = now() - interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    let taker = claim(&s[1], url, Claim::Now)
        .await
        .expect("the lease ran out");
    let entries = || {
        vec![
            (entry("1", "https://slow/1", 1), &[][..]),
            (entry("2", "https://slow/2", 2), &[][..]),
        ]
    };
    let counts = s[1]
        .apply_batch(&taker, batch(url, entries()))
        .await
        .unwrap();
    assert_eq!(counts.new, 2);
    let late = s[0].apply_batch(&zombie, batch(url, entries())).await;
    assert!(matches!(late, Err(StoreError::LeaseLost)), "{late:?}");
    let failure = crate::store::Failure {
        status: None,
        error: "x".into(),
        now: Utc::now(),
    };
    assert!(matches!(
        s[0].record_failure(&zombie, failure).await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(s[0].entry_count().await.unwrap(), 2);
    assert_eq!(
        s[0].feed_statuses().await.unwrap()[0].last_error,
        None,
        "the zombie wrote nothing"
    );
}

/// Each instance's index of recent stories reads what the others stored: a copy stored by
/// one joins the story another created.
#[tokio::test]
async fn instances_see_each_others_stories() {
    let Some(s) = instances(2, Duration::from_secs(60)).await else {
        return;
    };
    let body = "Exchange X halted withdrawals on Tuesday after a $40 million exploit of its hot \
                wallet, the company said, adding that customer funds were safe.";
    let story = |id: &str, link: &str| {
        let mut e = entry(id, link, 1);
        e.title = "Exchange X halts withdrawals after $40 million exploit".into();
        e.content = Some(body.into());
        e
    };
    // Warm both indexes first, so the second must catch up rather than load.
    for (i, st) in s.iter().enumerate() {
        let url = format!("https://warm{i}/feed");
        let p = claim(st, &url, Claim::Now).await.unwrap();
        st.apply_batch(
            &p,
            batch(
                &url,
                vec![(entry("w", &format!("https://warm{i}/w"), 5), &[][..])],
            ),
        )
        .await
        .unwrap();
    }
    let p = claim(&s[0], "https://a/feed", Claim::Now).await.unwrap();
    s[0].apply_batch(
        &p,
        batch(
            "https://a/feed",
            vec![(story("a", "https://a/x"), &["A"][..])],
        ),
    )
    .await
    .unwrap();
    let p = claim(&s[1], "https://b/feed", Claim::Now).await.unwrap();
    s[1].apply_batch(
        &p,
        batch(
            "https://b/feed",
            vec![(story("b", "https://b/x"), &["B"][..])],
        ),
    )
    .await
    .unwrap();
    let q = crate::model::StoryQuery {
        limit: 10,
        ..Default::default()
    };
    let stories = s[1].stories(q).await.unwrap();
    assert_eq!(stories.len(), 3, "two warm-ups and one story of two copies");
    let merged = stories
        .iter()
        .find(|st| !st.also.is_empty())
        .expect("a merged story");
    assert_eq!(merged.also.len(), 1);
    let tags: Vec<_> = merged.tags.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(tags, ["A", "B"]);
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let Some(config) = fresh_postgres().await else {
        return;
    };
    let opens = (0..3).map(|_| {
        let config = config.clone();
        tokio::spawn(async move { Store::open_postgres(&config, &Default::default()).await })
    });
    for open in futures_util::future::join_all(opens).await {
        open.unwrap().unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&config.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query("SELECT version FROM schema_history ORDER BY version", &[])
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let expected: Vec<i32> = (1..=super::schema::MIGRATIONS.len() as i32).collect();
    assert_eq!(versions, expected, "each migration applied once");
    client
        .execute(
            "INSERT INTO schema_history (version, applied_by) VALUES (999, 'the future')",
            &[],
        )
        .await
        .unwrap();
    match Store::open_postgres(&config, &Default::default()).await {
        Err(StoreError::TooNew { found: 999, .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer schema is refused"),
    }
}

#[tokio::test]
async fn an_instance_running_another_config_is_named() {
    let Some(s) = instances(3, Duration::from_secs(60)).await else {
        return;
    };
    let config = |f: &str| crate::store::contract::configured(&["https://a/feed"], &[], f);
    assert!(s[0].configure(config("same")).await.unwrap().is_empty());
    assert!(s[1].configure(config("same")).await.unwrap().is_empty());
    let others = s[2].configure(config("edited")).await.unwrap();
    assert_eq!(
        others.len(),
        2,
        "both others differ from the third: {others:?}"
    );
    let back = s[0].configure(config("same")).await.unwrap();
    assert_eq!(back.len(), 1, "the first sees the third: {back:?}");
}

/// An instance rebuilding its index reads the signatures the others stored, not their text:
/// a copy joins a story whose stored text no longer says what its signature does. A row
/// without a signature (stored by an older program) still has it derived from its text.
#[tokio::test]
async fn an_instance_reads_the_signatures_others_stored() {
    let Some((s, client)) = instances_on(2, Duration::from_secs(60)).await else {
        return;
    };
    let report = |feed: &str, n: usize| (crate::store::contract::report(feed, n), &[][..]);
    let p = claim(&s[0], "https://a/feed", Claim::Now).await.unwrap();
    s[0].apply_batch(
        &p,
        batch("https://a/feed", vec![report("a", 0), report("a", 1)]),
    )
    .await
    .unwrap();
    let signed: i64 = client
        .query_one(
            "SELECT count(*) FROM entries WHERE substring(signature FROM 1 FOR 4) = $1",
            &[&crate::dedup::stored::epoch(&Default::default()).to_vec()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(signed, 2, "both entries are stored with their signature");
    client
        .batch_execute(
            "UPDATE entries SET title = 'A note', content = '<p>Nothing to see.</p>'
                 WHERE link = 'https://a/0';
             UPDATE entries SET signature = NULL WHERE link = 'https://a/1'",
        )
        .await
        .unwrap();
    // The second instance has not loaded its index yet: its first batch does.
    let p = claim(&s[1], "https://b/feed", Claim::Now).await.unwrap();
    s[1].apply_batch(
        &p,
        batch("https://b/feed", vec![report("b", 0), report("b", 1)]),
    )
    .await
    .unwrap();
    let q = crate::model::StoryQuery {
        limit: 10,
        ..Default::default()
    };
    let stories = s[1].stories(q).await.unwrap();
    assert_eq!(
        stories.iter().filter(|st| st.also.len() == 1).count(),
        2,
        "each copy joins its report's story: {:?}",
        stories
            .iter()
            .map(|st| &st.primary.entry.title)
            .collect::<Vec<_>>()
    );
}
