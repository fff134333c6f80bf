//! Several `aggregate` services on one PostgreSQL database: the real binary, three at once,
//! a fixture server counting every request. Skipped without the test PostgreSQL (see
//! tests/suite/common/postgres.rs), failed instead under CI.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::daemon::{Daemon, wait_until};
use crate::common::postgres::{fresh_database, psql};
use crate::common::*;

/// A service config on the shared database: these feeds polled every `interval`, listening on
/// a free port, with `storage` lines added to `[storage]`.
fn instance_config(feeds: &[String], db: &str, interval: &str, storage: &str) -> String {
    let feeds: Vec<&str> = feeds.iter().map(String::as_str).collect();
    config_with(&feeds, "")
        .replace(
            "[storage]\npath = \"aggregate.db\"\n",
            &format!("[storage]\nurl = \"{db}\"\n{storage}\n"),
        )
        .replace("[fetch]\n", &format!("[fetch]\ninterval = \"{interval}\"\n"))
        .replace(
            "[storage]",
            "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.example.org/news\"\n\n[storage]",
        )
}

/// An RSS feed of `items` items, its links unique to feed `n`.
fn rss(n: usize, items: usize, extra: &str) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {n}</title>\
         <link>https://site{n}.example/</link><description>d</description>{extra}"
    );
    for i in 0..items {
        s.push_str(&format!(
            "<item><title>Feed {n} story {i} about market {i}</title>\
             <link>https://site{n}.example/{i}</link><guid>https://site{n}.example/{i}</guid>\
             <pubDate>Mon, 23 Nov 2026 1{}:00:00 GMT</pubDate>\
             <description>Story {i} of feed {n}, told its own way.</description></item>",
            i % 10
        ));
    }
    s.push_str("</channel></rss>");
    s
}

/// `n` generated feeds on `server`, their URLs.
fn feeds(server: &FixtureServer, n: usize, items: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            server.write(&format!("gen{i}.rss"), rss(i, items, "").as_bytes());
            server.feed(&format!("gen{i}.rss"))
        })
        .collect()
}

struct Instances {
    works: Vec<Workdir>,
    daemons: Vec<Daemon>,
}

fn start(n: usize, config: &str) -> Instances {
    let works: Vec<Workdir> = (0..n)
        .map(|_| {
            let w = Workdir::new();
            w.write_config(config);
            w
        })
        .collect();
    let daemons = works.iter().map(|w| Daemon::start(w, &[])).collect();
    Instances { works, daemons }
}

/// Feeds this instance polled itself, by its log.
fn polls_by(d: &Daemon) -> usize {
    d.logs().lines().filter(|l| l.contains(" polled")).count()
}

#[test]
fn three_instances_poll_each_feed_once_per_interval_and_share_the_work() {
    let Some(db) = fresh_database("instances") else {
        return;
    };
    let server = FixtureServer::start();
    let urls = feeds(&server, 200, 2);
    let config = instance_config(&urls, &db, "3s", "");
    let all = start(3, &config);
    let began = Instant::now();
    // Until every feed has been fetched three times (about two intervals after the first
    // pass), or 30 s.
    let polled_thrice = || {
        let mut by_feed: HashMap<String, usize> = HashMap::new();
        for h in server.hits() {
            *by_feed.entry(h.path).or_default() += 1;
        }
        by_feed.len() == 200 && by_feed.values().all(|n| *n >= 3)
    };
    wait_until(Duration::from_secs(30), polled_thrice);
    let run = began.elapsed();
    let polls: Vec<usize> = all.daemons.iter().map(polls_by).collect();
    for d in &all.daemons {
        assert!(
            !d.logs().contains("runs a different config"),
            "one config is taken for one config in every process"
        );
    }
    let hits = server.hits();
    drop(all);

    let mut by_feed: HashMap<&str, Vec<&Hit>> = HashMap::new();
    for h in &hits {
        by_feed.entry(h.path.as_str()).or_default().push(h);
    }
    assert_eq!(by_feed.len(), 200, "every feed polled");
    // At most one poll per interval, less its jitter (10%) and the second to which next polls
    // are rounded: ceil(run / 1.7 s) times at most, and about run / 3 s.
    let most = (run.as_secs_f64() / 1.7).ceil() as usize + 1;
    for (path, feed_hits) in &by_feed {
        assert!(
            feed_hits.len() <= most,
            "{path} fetched {} times in {run:?}: more than once per interval",
            feed_hits.len()
        );
        let mut spans: Vec<(Instant, Instant)> =
            feed_hits.iter().map(|h| (h.began, h.ended)).collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "{path}: two fetches at once, by two instances"
            );
            assert!(
                pair[1].0 - pair[0].0 >= Duration::from_millis(1700),
                "{path}: fetched again {:?} after the last fetch began",
                pair[1].0 - pair[0].0
            );
        }
    }
    let total: usize = by_feed.values().map(Vec::len).sum();
    assert!(
        total >= 200 * 3,
        "each feed polled about every interval: {total} fetches"
    );
    for (i, n) in polls.iter().enumerate() {
        assert!(
            *n > 20,
            "instance {i} polled {n} feeds: all did some work {polls:?}"
        );
    }
    assert_eq!(psql(&db, "SELECT COUNT(*) FROM entries"), "400");
    assert_eq!(psql(&db, "SELECT COUNT(DISTINCT guid) FROM entries"), "400");
    assert_eq!(psql(&db, "SELECT COUNT(*) FROM stories"), "400");
}

/// What each instance serves for `path`: the body's items, ETag and Last-Modified.
fn served(d: &Daemon, path: &str) -> (Vec<u8>, String, String) {
    let r = d.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let header = |n: &str| r.header(n).unwrap_or_default().to_string();
    (r.body.clone(), header("etag"), header("last-modified"))
}

#[test]
fn instances_serve_the_same_bytes_and_learn_of_each_others_changes_within_a_second() {
    let Some(db) = fresh_database("serving") else {
        return;
    };
    let server = FixtureServer::start();
    let urls = feeds(&server, 30, 3);
    let config = instance_config(&urls, &db, "4s", "");
    let all = start(3, &config);
    let filled = wait_until(Duration::from_secs(30), || {
        all.daemons.iter().all(|d| {
            let r = d.get("/feeds/all.json");
            r.status == 200 && r.text().matches("\"id\":").count() >= 90
        })
    });
    assert!(
        filled,
        "every instance shows every story:\n{}",
        all.daemons[0].logs()
    );
    for path in ["/feeds/all.rss", "/feeds/all.atom", "/feeds/all.json"] {
        let views: Vec<_> = all.daemons.iter().map(|d| served(d, path)).collect();
        assert!(
            views.windows(2).all(|w| w[0] == w[1]),
            "{path}: the instances differ in bytes, ETag or Last-Modified: {:?}",
            views.iter().map(|v| (&v.1, &v.2)).collect::<Vec<_>>()
        );
    }

    // One source changes; one instance polls it (whichever claims it first); all serve it
    // within a second of each other.
    let fresh = "<item><title>Breaking: a fresh story nobody has seen</title>\
                 <link>https://site0.example/fresh</link><guid>https://site0.example/fresh</guid>\
                 <pubDate>Tue, 24 Nov 2026 09:00:00 GMT</pubDate></item>";
    server.write("gen0.rss", rss(0, 3, fresh).as_bytes());
    let mut first_seen: Vec<Option<Instant>> = vec![None; 3];
    let deadline = Instant::now() + Duration::from_secs(40);
    while first_seen.iter().any(Option::is_none) && Instant::now() < deadline {
        for (i, d) in all.daemons.iter().enumerate() {
            if first_seen[i].is_none() && d.get("/feeds/all.rss").text().contains("a fresh story") {
                first_seen[i] = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen: Vec<Instant> = first_seen
        .iter()
        .map(|s| s.expect("every instance serves the change"))
        .collect();
    let spread = *seen.iter().max().unwrap() - *seen.iter().min().unwrap();
    assert!(
        spread <= Duration::from_secs(1),
        "the change reached all instances {spread:?} apart"
    );
    let views: Vec<_> = all
        .daemons
        .iter()
        .map(|d| served(d, "/feeds/all.rss"))
        .collect();
    assert!(
        views.windows(2).all(|w| w[0] == w[1]),
        "the same bytes after the change"
    );
    // Each instance's output files follow too, whoever polled the change.
    let files = wait_until(Duration::from_secs(20), || {
        all.works.iter().all(|w| {
            std::fs::read_to_string(w.path("out/all.rss"))
                .is_ok_and(|f| f.contains("a fresh story"))
        })
    });
    assert!(files, "every instance rewrote its output files");
}

#[test]
fn a_killed_instances_feeds_are_polled_by_the_others_and_nothing_is_half_written() {
    let Some(db) = fresh_database("killed") else {
        return;
    };
    let server = FixtureServer::start();
    let mut urls = feeds(&server, 20, 2);
    server.write("slow.rss", rss(99, 5, "").as_bytes());
    let slow = server.url("/slow/1/slow.rss");
    urls.push(slow.clone());
    let config = instance_config(&urls, &db, "2s", "lease = \"4s\"");
    let mut all = start(3, &config);
    // Someone is fetching the slow feed: its lease names who.
    let owner = || {
        psql(
            &db,
            "SELECT COALESCE(lease_owner, '') FROM feeds WHERE url LIKE '%/slow/%' AND lease_until > now()",
        )
    };
    assert!(
        wait_until(Duration::from_secs(15), || !owner().is_empty()),
        "the slow feed is claimed"
    );
    let pid: u32 = owner().split(':').nth(1).unwrap().parse().unwrap();
    let victim = all
        .daemons
        .iter()
        .position(|d| d.pid() == pid)
        .expect("one of ours holds it");
    let killed_at = Instant::now();
    all.daemons[victim].signal("KILL");
    all.daemons[victim]
        .wait_exit(Duration::from_secs(5))
        .expect("killed");
    // Whatever the dead instance was writing is all there or not at all.
    let per_feed = psql(
        &db,
        "SELECT COUNT(e.id) FROM feeds f LEFT JOIN entries e ON e.feed_id = f.id GROUP BY f.id",
    );
    for n in per_feed.lines() {
        assert!(
            ["0", "2", "5"].contains(&n),
            "a feed with {n} entries: a batch half-written"
        );
    }
    let slow_path = "/slow/1/slow.rss";
    let before = server.hits().iter().filter(|h| h.path == slow_path).count();
    // Lease (4 s) plus interval (2 s), and a margin for a loaded machine.
    let taken_over = wait_until(Duration::from_secs(10), || {
        server
            .hits()
            .iter()
            .filter(|h| h.path == slow_path && h.began > killed_at)
            .count()
            > 0
            && psql(
                &db,
                "SELECT COUNT(*) FROM entries e JOIN feeds f ON f.id = e.feed_id WHERE f.url LIKE '%/slow/%'",
            ) == "5"
    });
    assert!(
        taken_over,
        "another instance polled the dead one's feed and stored it ({before} fetches before)"
    );
    let waited = killed_at.elapsed();
    assert!(
        waited <= Duration::from_secs(9),
        "taken over after {waited:?}"
    );
    assert_eq!(
        psql(&db, "SELECT COUNT(*) FROM entries"),
        (20 * 2 + 5).to_string()
    );
}

#[test]
fn a_retry_after_from_one_host_holds_every_instance_off_it() {
    let Some(db) = fresh_database("retry_after") else {
        return;
    };
    let server = FixtureServer::start();
    let mut urls = feeds(&server, 6, 1);
    urls.push(server.url("/retry-after/5/busy.rss"));
    let config = instance_config(&urls, &db, "1s", "");
    let all = start(3, &config);
    let busy = |h: &Hit| h.path.starts_with("/retry-after/");
    assert!(
        wait_until(Duration::from_secs(15), || server.hits().iter().any(busy)),
        "the busy feed is polled"
    );
    let asked = server.hits().into_iter().find(|h| busy(h)).unwrap().ended;
    // Until a fetch begins after the hold has passed (or 15 s).
    let resumed = || {
        server
            .hits()
            .iter()
            .any(|h| h.began > asked + Duration::from_secs(5))
    };
    wait_until(Duration::from_secs(15), resumed);
    let hits = server.hits();
    drop(all);
    // Requests already on their way when the answer came may land just after it.
    let held = asked + Duration::from_millis(300)..asked + Duration::from_secs(5);
    let during: Vec<&str> = hits
        .iter()
        .filter(|h| held.contains(&h.began))
        .map(|h| h.path.as_str())
        .collect();
    assert!(
        during.is_empty(),
        "fetched from the host it asked to wait: {during:?}"
    );
    assert!(
        hits.iter()
            .any(|h| h.began > asked + Duration::from_secs(5)),
        "polling resumes when the hold passes"
    );
}

#[test]
fn the_per_host_limit_holds_across_instances() {
    let Some(db) = fresh_database("per_host") else {
        return;
    };
    let server = FixtureServer::start();
    let urls: Vec<String> = (0..12)
        .map(|i| {
            server.write(&format!("slow{i}.rss"), rss(i, 1, "").as_bytes());
            server.url(&format!("/slow/1/slow{i}.rss"))
        })
        .collect();
    let config = instance_config(&urls, &db, "2s", "").replace("per_host = 8", "per_host = 2");
    assert!(config.contains("per_host = 2"));
    let all = start(3, &config);
    wait_until(Duration::from_secs(20), || server.hits().len() >= 12);
    let fetched = server.hits().len();
    drop(all);
    assert!(fetched >= 12, "every slow feed was polled: {fetched}");
    assert!(
        server.max_in_flight() <= 2,
        "{} requests at once on a host limited to 2 across three instances",
        server.max_in_flight()
    );
}

/// `aggregate_entries_stored_total{kind="new"}` as an instance's /metrics says.
fn new_entries_counted(d: &Daemon) -> u64 {
    d.get("/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("aggregate_entries_stored_total{kind=\"new\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// A live instance renews its lease however slow the poll; one that stops answering (here
/// frozen with SIGSTOP) loses it, another polls the feed, and when the frozen one wakes its
/// late batch is refused: the rows and the instances' "new" counts are the fixture's.
#[test]
fn a_frozen_instances_late_batch_is_refused_and_the_feed_stored_once() {
    let Some(db) = fresh_database("race") else {
        return;
    };
    let server = FixtureServer::start();
    server.write("slow.rss", rss(7, 6, "").as_bytes());
    let urls = vec![server.url("/slow/3/slow.rss")];
    let config = instance_config(&urls, &db, "1h", "lease = \"1s\"")
        .replace("timeout = \"2s\"", "timeout = \"10s\"");
    let all = start(2, &config);
    let owner = || {
        psql(
            &db,
            "SELECT COALESCE(lease_owner, '') FROM feeds WHERE lease_until > now()",
        )
    };
    assert!(
        wait_until(Duration::from_secs(10), || !owner().is_empty()),
        "the slow feed is claimed"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let first = owner();
    assert!(
        !first.is_empty(),
        "a live instance keeps renewing its lease past its length"
    );
    let pid: u32 = first.split(':').nth(1).unwrap().parse().unwrap();
    let frozen = all.daemons.iter().position(|d| d.pid() == pid).unwrap();
    all.daemons[frozen].signal("STOP");
    // Its lease runs out; the other instance claims the feed and stores it.
    let stored = wait_until(Duration::from_secs(15), || {
        psql(&db, "SELECT COUNT(*) FROM entries") == "6"
    });
    all.daemons[frozen].signal("CONT");
    assert!(
        stored,
        "the other instance took the feed over and stored it"
    );
    let refused = wait_until(Duration::from_secs(10), || {
        all.daemons[frozen].logs().contains("lease ran out")
    });
    assert!(
        refused,
        "the woken instance's result was refused, and it says so:\n{}",
        all.daemons[frozen].logs()
    );
    assert_eq!(
        psql(&db, "SELECT COUNT(*) FROM entries"),
        "6",
        "exactly the fixture's entries"
    );
    let counted: u64 = all.daemons.iter().map(new_entries_counted).sum();
    assert_eq!(
        counted, 6,
        "the instances' \"new\" counts add up to the rows stored"
    );
    drop(all.works);
}

/// A change may be announced while an instance's listener is cut off: after reconnecting it
/// takes everything as changed, so the instance never serves a stale feed for long.
#[test]
fn a_listener_cut_off_reconnects_and_the_instance_catches_up() {
    let Some(db) = fresh_database("listener") else {
        return;
    };
    let server = FixtureServer::start();
    let urls = feeds(&server, 10, 2);
    // Polled once at start, then not for an hour: only the reload below polls again.
    let config = instance_config(&urls, &db, "1h", "");
    let all = start(2, &config);
    let shows = |d: &Daemon, text: &str| d.get("/feeds/all.rss").text().contains(text);
    // Every feed polled, so that neither instance stores anything more of its own accord.
    let filled = wait_until(Duration::from_secs(20), || {
        psql(
            &db,
            "SELECT COUNT(*) FROM feeds WHERE last_success IS NOT NULL",
        ) == "10"
            && all
                .daemons
                .iter()
                .all(|d| (0..10).all(|i| shows(d, &format!("Feed {i} story 1"))))
    });
    assert!(filled, "both instances show every feed");
    let cut = psql(
        &db,
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    );
    assert_eq!(cut, "2", "each instance listens on a connection of its own");
    let fresh = "<item><title>Announced while nobody listened</title>\
                 <link>https://site0.example/unheard</link><guid>https://site0.example/unheard</guid></item>";
    server.write("gen0.rss", rss(0, 2, fresh).as_bytes());
    // The first instance is told to poll it: a new title reshapes the feed, polled soon.
    let retitled = config.replace(
        &format!("url = \"{}\"\n", urls[0]),
        &format!("url = \"{}\"\ntitle = \"Feed zero\"\n", urls[0]),
    );
    all.works[0].write_config(&retitled);
    all.daemons[0].signal("HUP");
    let caught_up = wait_until(Duration::from_secs(15), || {
        all.daemons
            .iter()
            .all(|d| shows(d, "Announced while nobody listened"))
    });
    assert!(
        caught_up,
        "the instance that did not poll serves the change after its listener came back"
    );
    let relistening = psql(
        &db,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    );
    assert_eq!(relistening, "2", "both listeners reconnected");
    let polled = server
        .hits()
        .iter()
        .filter(|h| h.path.ends_with("/gen0.rss"))
        .count();
    assert!(
        polled <= 3,
        "gen0 polled at start and after the reload only: {polled}"
    );
}
