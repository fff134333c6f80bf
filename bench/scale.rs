//! Scale: databases of 10k, 100k and 1M entries (SCALE overrides), built through the store's
//! public interface. Reports insert rate, bytes per entry, the time to build a 50-item output
//! uncached (query + render) and cached (the server's cache lookup), and the retention sweep.
//! Run: `cargo bench --bench scale` (bench/run.sh does).

use std::time::{Duration, Instant};

use aggregate::dedup;
use aggregate::model::Validators;
use aggregate::model::{Entry, StoryQuery, Tag};
use aggregate::publish::{Channel, Format, render};
use aggregate::serve::{Cache, CacheKey, Content};
use aggregate::store::{Claim, FeedBatch, Started, Store};

/// Every store verb is async; the benchmark waits on each in turn.
fn wait<F: std::future::Future>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    rt.block_on(f)
}
use chrono::{TimeZone, Utc};

const PER_FEED: usize = 500;
const TAGS: &[&str] = &[
    "Bitcoin",
    "Ethereum",
    "Binance",
    "Regulation",
    "DeFi",
    "Solana",
    "ETF",
    "Stablecoins",
    "Markets",
    "crypto",
];

fn entry(feed: usize, i: usize) -> (Entry, Vec<Tag>) {
    let n = feed * PER_FEED + i;
    let published = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        + chrono::Duration::seconds(n as i64 * 7);
    let e = Entry {
        source_id: Some(format!("{feed}-{i}")),
        title: format!("Story {n}: markets move as traders watch the data"),
        link: Some(if n % 10 == 0 {
            format!("https://wire.example.com/{}", n / 30)
        } else {
            format!("https://site{feed}.example.com/{i}")
        }),
        summary: Some(
            "<p>Summary of the story, a sentence or two long, as feeds carry it.</p>".into(),
        ),
        content: Some("<p>Body paragraph of the article with some words in it. </p>".repeat(12)),
        authors: vec!["Jane Doe".into()],
        categories: vec![],
        category_labels: vec![],
        published: Some(published),
        updated: None,
        enclosures: vec![],
    };
    let tags = vec![
        Tag(TAGS[n % TAGS.len()].into()),
        Tag(TAGS[(n / 7) % TAGS.len()].into()),
        Tag("crypto".into()),
    ];
    (e, tags)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let dir = std::env::var("SCALE_DIR")
        .unwrap_or_else(|_| std::env::temp_dir().to_string_lossy().into_owned());
    let sizes: Vec<usize> = std::env::var("SCALE")
        .ok()
        .filter(|s| s != "1")
        .map(|s| s.split_whitespace().map(|x| x.parse().unwrap()).collect())
        .unwrap_or(vec![10_000, 100_000, 1_000_000]);
    let channel = Channel {
        title: "x".into(),
        description: "x".into(),
        self_url: "http://x/feeds/x.rss".into(),
        page_url: None,
        next_url: None,
        hub: None,
        home_url: "http://x/".into(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| entries | insert | bytes/entry | 50 items, tag, uncached | 50 items, all, uncached | cached | sweep 10% |"
    );
    println!("|---|---|---|---|---|---|---|");
    for size in sizes {
        let path = std::path::Path::new(&dir).join(format!("scale-{size}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let store = wait(&rt, Store::open_sqlite(&path, &Default::default())).unwrap();
        let feeds = size / PER_FEED;
        let started = Instant::now();
        let base = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        for f in 0..feeds {
            let url = format!("https://site{f}.example.com/feed");
            let Started::Poll(poll) = wait(&rt, store.start_poll(&url, Claim::Now)).unwrap() else {
                unreachable!("one process polls its own store")
            };
            let entries = (0..PER_FEED)
                .map(|i| entry(f, i))
                .map(|(e, t)| dedup::prepare(&url, e, t, &Default::default()))
                .collect();
            let batch = FeedBatch {
                title: Some(format!("Site {f}")),
                site_link: None,
                status: 200,
                validators: Validators::default(),
                body_hash: String::new(),
                fingerprint: String::new(),
                moved_to: None,
                entries,
                notes: Vec::new(),
                now: base + chrono::Duration::minutes(f as i64),
            };
            wait(&rt, store.apply_batch(&poll, batch)).unwrap();
        }
        let insert = started.elapsed();
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        drop(conn);
        let bytes = std::fs::metadata(&path).unwrap().len();
        let store = wait(&rt, Store::open_sqlite(&path, &Default::default())).unwrap();
        let time_output = |tags: Vec<String>| {
            let q = StoryQuery {
                tags,
                limit: 50,
                ..Default::default()
            };
            let runs: Vec<Duration> = (0..15)
                .map(|_| {
                    let t = Instant::now();
                    let stories = wait(&rt, store.stories(q.clone())).unwrap();
                    assert_eq!(stories.len(), 50);
                    std::hint::black_box(render(Format::Rss, &channel, &stories));
                    t.elapsed()
                })
                .collect();
            median(runs)
        };
        let tagged = time_output(vec!["binance".into()]);
        let all = time_output(vec![]);
        let cache = Cache::new();
        let query = StoryQuery {
            tags: vec!["binance".into()],
            limit: 50,
            ..Default::default()
        };
        let stories = wait(&rt, store.stories(query)).unwrap();
        let key = CacheKey::Output("binance".into(), Format::Rss);
        let content = Content {
            body: render(Format::Rss, &channel, &stories),
            changed: Utc::now(),
            items: stories.len(),
            newest: None,
        };
        cache.put(key.clone(), 1, Format::Rss, content);
        let cached = median(
            (0..1000)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(cache.get(&key, 1).unwrap());
                    t.elapsed()
                })
                .collect(),
        );
        let t = Instant::now();
        let cutoff = base + chrono::Duration::minutes((feeds / 10) as i64);
        let swept = wait(&rt, store.sweep(cutoff, Utc::now())).unwrap();
        let sweep = t.elapsed();
        println!(
            "| {size} | {:.0} entries/s | {:.0} | {} | {} | {:.1} µs | {} ({} entries) |",
            size as f64 / insert.as_secs_f64(),
            bytes as f64 / size as f64,
            ms(tagged),
            ms(all),
            cached.as_secs_f64() * 1e6,
            ms(sweep),
            swept.entries
        );
    }
}
