//! `aggregate` as a service: the real binary, a real source server, a raw HTTP client.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use crate::common::daemon::{Daemon, http_get, wait_until};
use crate::common::*;

/// A daemon config: these feeds polled every `interval`, listening on a free port.
fn daemon_config(feeds: &[&str], interval: &str) -> String {
    config_with(feeds, "")
        .replace("[fetch]\n", &format!("[fetch]\ninterval = \"{interval}\"\n"))
        .replace("[storage]", "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.example.org/news\"\n\n[storage]")
}

fn titles_of(body: &[u8]) -> BTreeSet<String> {
    let feed = feed_rs::parser::parse(body)
        .unwrap_or_else(|e| panic!("not a feed: {e}\n{}", String::from_utf8_lossy(body)));
    feed.entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect()
}

fn hits_to(server: &FixtureServer, path: &str) -> usize {
    server.hits().iter().filter(|h| h.path == path).count()
}

/// Starts a daemon and waits until the `all` output holds `items` items.
fn start_and_fill(work: &Workdir, items: usize) -> Daemon {
    start_and_fill_with(work, &[], items)
}

fn start_and_fill_with(work: &Workdir, env: &[(&str, &str)], items: usize) -> Daemon {
    let d = Daemon::start(work, env);
    let filled = wait_until(Duration::from_secs(20), || {
        let r = d.get("/feeds/all.json");
        r.status == 200 && titles_of(&r.body).len() >= items
    });
    assert!(
        filled,
        "the first polls did not store the entries:\n{}",
        d.logs()
    );
    d
}

#[test]
fn outputs_are_served_with_validators_304s_and_gzip() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(
        &[
            &server.feed("cointelegraph.rss"),
            &server.feed("decrypt.json"),
        ],
        "1h",
    ));
    let d = start_and_fill(&work, 8);

    let first = d.get("/feeds/all.rss");
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("content-type"),
        Some("application/rss+xml; charset=utf-8")
    );
    let etag = first.header("etag").expect("an ETag").to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "a strong ETag: {etag}"
    );
    let last_modified = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    assert!(
        first.text().contains(
            "<atom:link href=\"http://feeds.example.org/news/feeds/all.rss\" rel=\"self\""
        )
    );

    let again = d.get_with("/feeds/all.rss", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(
        d.get_with("/feeds/all.rss", &[("If-Modified-Since", &last_modified)])
            .status,
        304
    );
    assert_eq!(
        d.get_with("/feeds/all.rss", &[("If-None-Match", "\"stale\"")])
            .status,
        200
    );
    // A list, a weak tag (weak comparison), and `*`: each matches.
    for list in [format!("\"stale\", W/{etag}"), "*".to_string()] {
        let r = d.get_with("/feeds/all.rss", &[("If-None-Match", &list)]);
        assert_eq!(r.status, 304, "If-None-Match: {list}");
    }
    // If-None-Match decides alone: a stale tag with a fresh date is not a 304.
    assert_eq!(
        d.get_with(
            "/feeds/all.rss",
            &[
                ("If-None-Match", "\"stale\""),
                ("If-Modified-Since", &last_modified)
            ]
        )
        .status,
        200
    );

    let gz = d.get_with("/feeds/all.rss", &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, first.body, "the gzip body is the same feed");
    let gz_etag = gz.header("etag").unwrap().to_string();
    assert_ne!(gz_etag, etag, "each representation has its own strong ETag");
    assert_eq!(
        d.get_with(
            "/feeds/all.rss",
            &[("Accept-Encoding", "gzip"), ("If-None-Match", &gz_etag)]
        )
        .status,
        304
    );

    assert_eq!(
        d.get("/feeds/all-atom.atom").header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    assert_eq!(
        d.get("/feeds/binance.json").header("content-type"),
        Some("application/feed+json; charset=utf-8")
    );
    assert_eq!(d.get("/feeds/nope.rss").status, 404);
    assert_eq!(d.get("/feeds/all.html").status, 404);
    assert_eq!(d.get("/feeds/..%2F..%2Fetc%2Fpasswd").status, 404);
}

#[test]
fn adhoc_tag_queries_are_exact_and_bad_parameters_get_400() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds = [
        "coindesk.atom",
        "cointelegraph.rss",
        "decrypt.json",
        "cryptoslate.rss",
    ]
    .map(|f| server.feed(f));
    work.write_config(&daemon_config(
        &feeds.iter().map(String::as_str).collect::<Vec<_>>(),
        "1h",
    ));
    let d = start_and_fill(&work, 14);

    let binance = d.get("/feed.json?tags=binance");
    assert_eq!(binance.status, 200);
    let expect: BTreeSet<String> = [
        "Binance lists new BNB Chain staking product as trading volumes climb",
        "Binance's Former CEO Changpeng Zhao Launches Education Venture",
        "Binance Completes 33rd Quarterly BNB Burn",
        "EU Regulators Begin MiCA Enforcement Against Unlicensed Exchanges",
        "Binance\u{a0}and OKX see record derivatives open interest",
    ]
    .map(String::from)
    .into();
    assert_eq!(titles_of(&binance.body), expect);
    let without_regulation = titles_of(&d.get("/feed.rss?tags=Binance&exclude=REGULATION").body);
    assert_eq!(without_regulation.len(), 4);
    assert!(
        !without_regulation
            .contains("EU Regulators Begin MiCA Enforcement Against Unlicensed Exchanges")
    );
    assert_eq!(
        titles_of(&d.get("/feed.atom?tags=Binance,Ethereum&limit=2").body).len(),
        2
    );
    assert!(
        titles_of(&d.get("/feed.rss?tags=no-such-tag").body).is_empty(),
        "an unknown tag is an empty feed"
    );

    for (query, message) in [
        ("/feed.rss?limit=abc", "limit=\"abc\" is not a number"),
        ("/feed.rss?limit=0", "limit=0"),
        ("/feed.json?tagz=Binance", "unknown parameter \"tagz\""),
    ] {
        let r = d.get(query);
        assert_eq!(r.status, 400, "{query}");
        assert!(r.text().contains(message), "{query}: {}", r.text());
    }
}

/// The hits to one path, in the order they arrived.
fn hits_of(server: &FixtureServer, path: &str) -> Vec<Hit> {
    server
        .hits()
        .into_iter()
        .filter(|h| h.path == path)
        .collect()
}

/// Waits for `n` requests to `path` (at most 15 s) and returns them.
fn wait_for_hits(server: &FixtureServer, path: &str, n: usize, d: &Daemon) -> Vec<Hit> {
    assert!(
        wait_until(Duration::from_secs(15), || hits_to(server, path) >= n),
        "{path} was not polled {n} times in 15 s\n{}",
        d.logs()
    );
    hits_of(server, path)
}

#[test]
fn feeds_are_polled_on_schedule() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(&[&server.feed("theblock.rdf")], "1s"));
    let d = Daemon::start(&work, &[]);
    let hits = wait_for_hits(&server, "/feeds/theblock.rdf", 3, &d);
    // One poll an interval (1 s, less its 10% jitter), not sooner: the daemon waits for the
    // schedule, not for the last poll to end.
    for pair in hits.windows(2) {
        let gap = pair[1].began - pair[0].began;
        assert!(
            gap >= Duration::from_millis(850),
            "polled again after {gap:?} on a 1 s interval\n{}",
            d.logs()
        );
    }
    assert!(
        hits[1..].iter().all(|h| h.status == 304),
        "re-polls are conditional: {hits:?}"
    );
}

/// The service keeps each feed's state between polls: after the feed changes, the next poll
/// sends the new body's validators, not the first ones, and the change is stored once.
#[test]
fn a_changed_feed_is_polled_with_its_new_validators() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(&[&server.feed("theblock.rdf")], "1s"));
    let d = Daemon::start(&work, &[]);
    let path = "/feeds/theblock.rdf";
    let first = wait_for_hits(&server, path, 2, &d);
    assert_eq!(first[1].status, 304, "{first:?}");
    let old_tag = first[1]
        .if_none_match
        .clone()
        .expect("a conditional re-poll");
    let changed = server
        .read("theblock.rdf")
        .replacen("<item ", "<item rdf:about=\"https://theblock.example/new\"><title>A new story</title><link>https://theblock.example/new</link></item>\n<item ", 1);
    server.write("theblock.rdf", changed.as_bytes());
    let n = first.len();
    let hits = wait_for_hits(&server, path, n + 3, &d);
    let after: Vec<&Hit> = hits[n..].iter().collect();
    assert_eq!(after[0].status, 200, "the change is fetched: {after:?}");
    assert_eq!(after[0].if_none_match.as_deref(), Some(old_tag.as_str()));
    let new_tag = after[1]
        .if_none_match
        .clone()
        .expect("a conditional re-poll");
    assert_ne!(new_tag, old_tag, "the new body's ETag is sent: {after:?}");
    assert!(
        after[1..].iter().all(|h| h.status == 304),
        "and answered 304: {after:?}"
    );
    let titles = titles_of(&d.get("/feeds/all.json").body);
    assert!(titles.contains("A new story"), "{titles:?}");
}

#[test]
fn failures_back_off() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(&[&server.url("/status/500")], "1s"));
    let d = Daemon::start(&work, &[]);
    let hits = wait_for_hits(&server, "/status/500", 3, &d);
    // After each failure the wait doubles: 1 s, then 2 s, each within its 10% jitter (and the
    // rounding of the next poll to the millisecond).
    let gaps: Vec<Duration> = hits.windows(2).map(|p| p[1].began - p[0].began).collect();
    for (gap, base) in gaps.iter().zip([1.0, 2.0]) {
        assert!(
            gap.as_secs_f64() >= base * 0.85 && gap.as_secs_f64() <= base * 1.1 + 0.5,
            "waits between failed polls {gaps:?}: expected about 1 s, then 2 s\n{}",
            d.logs()
        );
    }
    let page = d.get("/").text();
    assert!(page.contains("HTTP 500 Internal Server Error"), "{page}");
}

#[test]
fn retry_after_holds_off_every_feed_of_the_host() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(
        &[
            &server.url("/retry-after/60/x"),
            &server.feed("theblock.rdf"),
        ],
        "1s",
    ));
    let d = Daemon::start(&work, &[]);
    assert!(wait_until(Duration::from_secs(10), || hits_to(
        &server,
        "/retry-after/60/x"
    ) >= 1));
    // The hold is on the page at once; then, for two intervals of the other feed (and 1 s of
    // slack), neither feed of the host is polled.
    assert!(wait_until(Duration::from_secs(5), || d
        .get("/")
        .text()
        .contains("retry after 1m")));
    let block_polls = hits_to(&server, "/feeds/theblock.rdf");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        hits_to(&server, "/retry-after/60/x"),
        1,
        "Retry-After: 60 is honoured\n{}",
        d.logs()
    );
    assert!(
        hits_to(&server, "/feeds/theblock.rdf") <= block_polls + 1,
        "the host's other feed waits too"
    );
}

#[test]
fn a_permanent_redirect_is_remembered_and_gone_stops_polling() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(
        &[
            &server.url("/redirect/308/theblock.rdf"),
            &server.url("/status/410"),
        ],
        "1s",
    ));
    let d = Daemon::start(&work, &[]);
    assert!(
        wait_until(Duration::from_secs(10), || hits_to(
            &server,
            "/feeds/theblock.rdf"
        ) >= 3),
        "{}",
        d.logs()
    );
    assert_eq!(
        hits_to(&server, "/redirect/308/theblock.rdf"),
        1,
        "later polls go to the new URL"
    );
    assert_eq!(hits_to(&server, "/status/410"), 1, "410 Gone stops polling");
    let page = d.get("/sources").text();
    assert!(
        page.contains(&format!("moved to {}", server.feed("theblock.rdf"))),
        "{page}"
    );
    assert!(page.contains("gone (410)"), "{page}");
}

#[test]
fn sighup_reloads_the_config_and_a_bad_one_is_refused() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(&[&server.feed("cointelegraph.rss")], "1h"));
    let d = start_and_fill(&work, 5);

    // The reload adds a feed and a tag rule; entries already stored get the new tag without
    // waiting an hour for their feed's next poll.
    let new_rule = "\n[[tag]]\nname = \"HK\"\nkeywords = [\"Hong Kong\"]\n";
    let reloaded = daemon_config(
        &[
            &server.feed("cointelegraph.rss"),
            &server.feed("decrypt.json"),
        ],
        "1h",
    ) + new_rule;
    // It also drops an output: its file goes, so no reader is left on a feed frozen for ever.
    let binance =
        "[[output]]\nname = \"binance\"\ntags = [\"binance\"]\npath = \"out/binance.rss\"\n";
    assert!(reloaded.contains(binance));
    // Files are written once the first polls have settled, after the stories are served.
    assert!(
        wait_until(Duration::from_secs(10), || work
            .path("out/binance.rss")
            .exists()),
        "{}",
        d.logs()
    );
    let reloaded = reloaded.replace(binance, "");
    work.write_config(&reloaded);
    d.signal("HUP");
    let added = wait_until(Duration::from_secs(15), || {
        titles_of(&d.get("/feeds/all.json").body).len() == 8
    });
    assert!(added, "the new feed was polled after SIGHUP:\n{}", d.logs());
    // Files are rewritten once the polls that changed something have settled, and no sooner
    // than a few seconds after the last rewrite.
    let rewritten = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(work.path("out/all.rss"))
            .is_ok_and(|f| f.contains("Binance Completes 33rd Quarterly BNB Burn"))
    });
    assert!(
        rewritten,
        "output files are rewritten after the reload's changes:\n{}",
        d.logs()
    );
    assert!(
        !work.path("out/binance.rss").exists(),
        "the dropped output's file is removed:\n{}",
        d.logs()
    );
    let retagged = wait_until(Duration::from_secs(20), || {
        titles_of(&d.get("/feed.json?tags=hk").body)
            .contains("Hong Kong lawmakers back stablecoin licensing bill")
    });
    assert!(
        retagged,
        "the new tag rule applies to stored entries:\n{}",
        d.logs()
    );

    work.write_config("[fetch]\ninterval = \"whenever\"\n");
    d.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || d
            .logs()
            .contains("config reload refused")),
        "{}",
        d.logs()
    );
    assert!(
        d.logs().contains("fetch.interval"),
        "the refusal names the key"
    );
    assert_eq!(
        titles_of(&d.get("/feeds/all.json").body).len(),
        8,
        "the old config keeps serving"
    );
    assert_eq!(d.get("/healthz").status, 200);
}

#[test]
fn sigterm_finishes_in_flight_polls_and_exits_zero() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    // The slow feed is still downloading when SIGTERM arrives; it finishes within the grace
    // period and its entries are committed.
    let config = daemon_config(
        &[
            &server.feed("cointelegraph.rss"),
            &server.url("/slow/4/decrypt.json"),
        ],
        "1h",
    )
    .replace("timeout = \"2s\"", "timeout = \"10s\"");
    work.write_config(&config);
    let mut d = Daemon::start(&work, &[]);
    // Both feeds are polled within the 3 s start-up spread; the slow one takes 4 s, so it is
    // still downloading once the other is stored.
    let in_flight = wait_until(Duration::from_secs(15), || {
        server.started().iter().any(|p| p == "/slow/4/decrypt.json")
            && titles_of(&d.get("/feeds/all.json").body).len() >= 5
    });
    assert!(in_flight, "{}", d.logs());
    d.signal("TERM");
    let status = d
        .wait_exit(Duration::from_secs(10))
        .expect("exits within the grace period");
    assert!(status.success(), "{status:?}\n{}", d.logs());
    let store = work.store();
    store.integrity_check().unwrap();
    assert_eq!(
        store.entry_count().unwrap(),
        8,
        "nothing fetched was lost:\n{}",
        d.logs()
    );
    assert!(
        d.logs().contains("in-flight polls finished"),
        "{}",
        d.logs()
    );
}

#[test]
fn ready_reaches_the_notify_socket() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(&[&server.feed("theblock.rdf")], "1h"));
    let socket_path = work.path("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // As systemd sets it for WatchdogSec=400ms: pings are due every 200 ms.
    let d = Daemon::start(
        &work,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut messages = String::new();
    let mut buf = [0u8; 4096];
    while !(messages.contains("READY=1") && messages.contains("WATCHDOG=1")) {
        let n = socket.recv(&mut buf).unwrap_or_else(|e| {
            panic!(
                "no READY=1 and WATCHDOG=1 ({e}); got {messages:?}\n{}",
                d.logs()
            )
        });
        messages.push_str(&String::from_utf8_lossy(&buf[..n]));
        messages.push('\n');
    }
    assert!(
        messages.contains(&format!("STATUS=listening on {}", d.addr)),
        "{messages}"
    );
    // The store is open and the server answers by the time READY=1 is sent.
    assert_eq!(d.get("/healthz").status, 200);
}

/// A manager that never reads its notify socket (its queue full before the service starts)
/// stalls nothing: the service starts, polls, serves, reloads, and SIGTERM still ends it
/// promptly with exit 0. A blocking send used to hang it at READY and at STOPPING.
#[test]
fn a_manager_that_never_reads_stalls_nothing() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(&[&server.feed("cointelegraph.rss")], "1h"));
    let socket_path = work.path("notify.sock");
    let _manager = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
    filler.connect(&socket_path).unwrap();
    filler.set_nonblocking(true).unwrap();
    let mut queued = 0;
    while filler.send(b"STATUS=filler").is_ok() {
        queued += 1;
        assert!(queued < 100_000, "the socket's queue never fills");
    }
    let mut d = start_and_fill_with(
        &work,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
        5,
    );
    d.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || d
            .logs()
            .contains("config reloaded")),
        "{}",
        d.logs()
    );
    assert_eq!(d.get("/healthz").status, 200, "{}", d.logs());
    let asked = std::time::Instant::now();
    d.signal("TERM");
    let status = d
        .wait_exit(Duration::from_secs(10))
        .expect("SIGTERM ends it");
    assert!(status.success(), "{status:?}");
    // Half a second of retries for STOPPING, then the usual shutdown: far from a hang.
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "took {:?}\n{}",
        asked.elapsed(),
        d.logs()
    );
    assert!(
        d.logs().contains("systemd did not read its notify socket"),
        "{}",
        d.logs()
    );
}

#[test]
fn the_index_page_health_and_metrics() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(
        &[
            &server.feed("cointelegraph.rss"),
            &server.url("/status/404"),
        ],
        "1h",
    ));
    let d = start_and_fill(&work, 5);
    assert!(wait_until(Duration::from_secs(10), || d
        .get("/")
        .text()
        .contains("HTTP 404 Not Found")));

    let page = d.get("/");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    for needle in [
        r#"<link rel="alternate" type="application/rss+xml" title="Everything" href="http://feeds.example.org/news/feeds/all.rss">"#,
        r#"href="http://feeds.example.org/news/feeds/binance.json""#,
        "HTTP 404 Not Found",
        "Latest stories",
        "Hong Kong lawmakers back stablecoin licensing bill",
    ] {
        assert!(html.contains(needle), "index lacks {needle}:\n{html}");
    }
    let sources = d.get("/sources").text();
    for needle in [
        &server.feed("cointelegraph.rss"),
        "Cointelegraph.com News",
        &server.url("/status/404"),
        "HTTP 404 Not Found",
    ] {
        assert!(
            sources.contains(needle),
            "/sources lacks {needle}:\n{sources}"
        );
    }

    let health = d.get("/healthz");
    assert_eq!(health.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["feeds"], 2);
    assert_eq!(json["feeds_failing"], 1);

    let metrics = d.get("/metrics").text();
    for needle in [
        "aggregate_polls_total{outcome=\"stored\"} 1",
        "aggregate_polls_total{outcome=\"failed\"} 1",
        "aggregate_entries_stored_total{kind=\"new\"} 5",
        "aggregate_fetch_duration_seconds_bucket",
        "aggregate_http_requests_total{route=\"/\",status=\"200\"}",
        "aggregate_feeds_failing 1",
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }
}

#[test]
fn readers_asking_at_once_share_one_rendering() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(&[&server.feed("cointelegraph.rss")], "1h"));
    let d = start_and_fill(&work, 5);
    let renders = |d: &Daemon| {
        let metrics = d.get("/metrics").text();
        metrics
            .lines()
            .find(|l| l.starts_with("aggregate_renders_total{kind=\"adhoc\"}"))
            .map_or(0, |l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    };
    let before = renders(&d);
    let addr = d.addr;
    let bodies: Vec<Vec<u8>> = std::thread::scope(|s| {
        let askers: Vec<_> = (0..16)
            .map(|_| s.spawn(move || http_get(addr, "/feed.json?tags=Regulation&limit=7", &[])))
            .collect();
        askers
            .into_iter()
            .map(|a| {
                let r = a.join().unwrap();
                assert_eq!(r.status, 200);
                r.body
            })
            .collect()
    });
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every reader got the same body"
    );
    assert_eq!(renders(&d) - before, 1, "one rendering for sixteen readers");
}

/// A connection from `local` (another loopback address stands for another client).
fn connect_from(local: &str, to: std::net::SocketAddr) -> std::net::TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &format!("{local}:0")
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

fn request_from(local: &str, to: std::net::SocketAddr, head: &str) -> String {
    use std::io::Write;
    let mut s = connect_from(local, to);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_raised_per_address_limit_serves_a_proxys_many_connections() {
    use std::io::Write;
    let server = FixtureServer::start();
    let work = Workdir::new();
    let config = daemon_config(&[&server.feed("theblock.rdf")], "1h")
        .replace("[server]\n", "[server]\nper_address = 200\n");
    work.write_config(&config);
    let d = Daemon::start(&work, &[]);
    // 150 keep-alive connections from one address (a reverse proxy's), each answered.
    let mut conns: Vec<std::net::TcpStream> = (0..150)
        .map(|_| connect_from("127.0.0.1", d.addr))
        .collect();
    for s in conns.iter_mut() {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
    }
    for (i, s) in conns.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "connection {i} was not served: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

#[test]
fn slow_and_oversized_clients_do_not_starve_others() {
    use std::io::Write;
    let server = FixtureServer::start();
    let work = Workdir::new();
    // Slow clients are cut after a second here (ten by default), so the test need not wait.
    let config = daemon_config(&[&server.feed("theblock.rdf")], "1h")
        .replace("[server]\n", "[server]\nheader_timeout = \"1s\"\n");
    work.write_config(&config);
    let d = Daemon::start(&work, &[]);

    // A slowloris from 127.0.0.1: 80 connections that never finish their headers.
    let mut slow: Vec<std::net::TcpStream> = (0..80)
        .map(|_| {
            let mut s = connect_from("127.0.0.1", d.addr);
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let closed_by_server = |s: &mut std::net::TcpStream| {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match s.read(&mut [0u8; 1]) {
            Ok(0) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            Ok(_) => false,
        }
    };
    let refused = slow.iter_mut().map(closed_by_server).filter(|c| *c).count();
    assert!(
        refused >= 16,
        "connections past 64 from one address are closed at once ({refused} closed)"
    );

    // Another client is served at once.
    let started = std::time::Instant::now();
    let ok = request_from(
        "127.0.0.2",
        d.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Oversized request heads are refused.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    let answer = request_from("127.0.0.3", d.addr, &big);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

    // The slow ones are cut when their header time runs out: the server closes them (the
    // read ends, where a connection left open would time out here), with no page.
    std::thread::sleep(Duration::from_millis(1500));
    for s in slow.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let closed = match s.read_to_end(&mut buf) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(closed, "a slow client's connection is closed by the server");
        assert!(
            !String::from_utf8_lossy(&buf).contains("200 OK"),
            "a slow client got no page: {}",
            String::from_utf8_lossy(&buf)
        );
    }
    let again = request_from(
        "127.0.0.1",
        d.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        again.starts_with("HTTP/1.1 200"),
        "the address's slots are free again: {again}"
    );
}

/// The longest interval the config accepts polls the feed again a year on: only a 410 stops
/// polling, never a due time too far off for the clocks (once taken for a 410).
#[test]
fn the_longest_interval_is_a_schedule_not_a_gone_feed() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&daemon_config(&[&server.feed("cointelegraph.rss")], "365d"));
    let d = start_and_fill(&work, 5);
    let mut status = None;
    let scheduled = wait_until(Duration::from_secs(10), || {
        status = work.store().feed_statuses().unwrap().into_iter().next();
        status.as_ref().is_some_and(|s| s.next_poll.is_some())
    });
    assert!(scheduled, "{:?}\n{}", status, d.logs());
    let s = status.unwrap();
    assert!(!s.gone, "a successful poll is not a 410");
    let ahead = s.next_poll.unwrap() - chrono::Utc::now();
    assert!(ahead > chrono::Duration::days(300), "next poll in {ahead}");
    assert!(!d.logs().contains("gone (410)"), "{}", d.logs());
}
