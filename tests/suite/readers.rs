//! What feed readers get from the running service beyond the first page: paging past an
//! output's limit (RFC 5005) in all three formats, ad-hoc feeds that say what they hold, and
//! WebSub.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::daemon::{Daemon, wait_until};
use crate::common::*;

const BASE: &str = "http://feeds.example.org/news/";

fn daemon_config(feeds: &[&str], extra: &str) -> String {
    config_with(feeds, extra)
        .replace("[fetch]\n", "[fetch]\ninterval = \"1h\"\n")
        .replace(
            "[storage]",
            &format!("[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"{BASE}\"\n\n[storage]"),
        )
}

const SMALL: &str = r#"
[[output]]
name = "small"
limit = 3
"#;

/// Starts a daemon on four fixture feeds and waits until `all` holds at least `items` items.
fn started(extra: &str, items: usize) -> (FixtureServer, Workdir, Daemon) {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds = [
        server.feed("cointelegraph.rss"),
        server.feed("decrypt.json"),
        server.feed("coindesk.atom"),
        server.feed("theblock.rdf"),
    ];
    let feeds: Vec<&str> = feeds.iter().map(String::as_str).collect();
    work.write_config(&daemon_config(&feeds, extra));
    let d = Daemon::start(&work, &[]);
    // Every feed polled (the pass is over, so nothing lands while a test walks), and the
    // stories served.
    let filled = wait_until(Duration::from_secs(20), || {
        let polled = d.logs().lines().filter(|l| l.contains(" polled ")).count();
        let r = d.get("/feeds/all.json");
        polled == feeds.len() && r.status == 200 && ids_of(&r.body).len() >= items
    });
    assert!(
        filled,
        "the first polls did not store the entries:\n{}",
        d.logs()
    );
    (server, work, d)
}

fn ids_of(body: &[u8]) -> Vec<String> {
    let feed = feed_rs::parser::parse(body)
        .unwrap_or_else(|e| panic!("not a feed: {e}\n{}", String::from_utf8_lossy(body)));
    feed.entries.into_iter().map(|e| e.id).collect()
}

/// The href of the document's own link with this rel, in RSS (atom:link) or Atom.
fn xml_link(text: &str, rel: &str) -> Option<String> {
    let at = text.find(&format!("rel=\"{rel}\""))?;
    let start = text[..at].rfind('<')?;
    let end = at + text[at..].find('>')?;
    let tag = &text[start..end];
    let href = tag.split("href=\"").nth(1)?.split('"').next()?;
    Some(href.replace("&amp;", "&"))
}

/// The link with this rel, in any of the three formats.
fn link(body: &[u8], json: bool, rel: &str) -> Option<String> {
    if json {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        let key = match rel {
            "next" => "next_url",
            "self" => "feed_url",
            other => panic!("no JSON Feed member for rel={other}"),
        };
        v[key].as_str().map(str::to_string)
    } else {
        xml_link(&String::from_utf8_lossy(body), rel)
    }
}

/// Every page of `first`, following rel="next": the ids of each page's items.
fn walk(d: &Daemon, first: &str) -> Vec<Vec<String>> {
    let json = first.contains(".json");
    let mut pages = Vec::new();
    let mut path = first.to_string();
    loop {
        assert!(pages.len() < 50, "the walk of {first} ends");
        let r = d.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        pages.push(ids_of(&r.body));
        match link(&r.body, json, "next") {
            Some(next) => {
                assert!(next.starts_with(BASE), "absolute, on the base URL: {next}");
                path = format!("/{}", &next[BASE.len()..]);
            }
            None => break,
        }
    }
    pages
}

#[test]
fn every_output_and_adhoc_feed_can_be_walked_past_its_limit() {
    let (_server, _work, d) = started(SMALL, 10);
    let everything: BTreeSet<String> = ids_of(&d.get("/feeds/all.rss").body).into_iter().collect();
    let binance: BTreeSet<String> = ids_of(&d.get("/feed.rss?tags=binance&limit=200").body)
        .into_iter()
        .collect();
    assert!(binance.len() >= 2 && binance.len() < everything.len());
    for (first, want) in [
        ("/feeds/small.rss", &everything),
        ("/feeds/small.atom", &everything),
        ("/feeds/small.json", &everything),
        ("/feed.atom?tags=Binance&limit=1", &binance),
        ("/feed.json?tags=BINANCE&limit=2", &binance),
    ] {
        let pages = walk(&d, first);
        assert!(pages.len() >= 2, "{first}: more than one page");
        let limit = pages[0].len();
        assert!(
            pages.iter().all(|p| p.len() <= limit),
            "{first}: no page longer than the limit"
        );
        let walked: Vec<String> = pages.concat();
        let once: BTreeSet<String> = walked.iter().cloned().collect();
        assert_eq!(once.len(), walked.len(), "{first}: a story on two pages");
        assert_eq!(&once, want, "{first}: the pages hold every story");
    }

    // A later page says where it is and where the walk began; the first page has no "first".
    let first = d.get("/feeds/small.atom");
    let text = first.text();
    assert_eq!(
        xml_link(&text, "self").as_deref(),
        Some(&*format!("{BASE}feeds/small.atom"))
    );
    assert!(xml_link(&text, "first").is_none());
    let next = xml_link(&text, "next").unwrap();
    let second = d.get(&format!("/{}", &next[BASE.len()..]));
    let text = second.text();
    assert_eq!(xml_link(&text, "self"), Some(next.clone()));
    assert_eq!(
        xml_link(&text, "first").as_deref(),
        Some(&*format!("{BASE}feeds/small.atom"))
    );
    // A page is cached and validated like the first.
    let etag = second.header("etag").unwrap().to_string();
    let again = d.get_with(
        &format!("/{}", &next[BASE.len()..]),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
}

#[test]
fn a_bad_cursor_or_parameter_is_refused_with_its_name() {
    let (_server, _work, d) = started(SMALL, 10);
    for (path, message) in [
        (
            "/feeds/small.rss?before=yesterday",
            "before=\"yesterday\" is not a page cursor",
        ),
        ("/feeds/small.rss?tags=x", "unknown parameter \"tags\""),
        (
            "/feed.rss?before=1.2.3",
            "before=\"1.2.3\" is not a page cursor",
        ),
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 400, "{path}");
        assert!(r.text().contains(message), "{path}: {}", r.text());
    }
    // A cursor below every story is an empty last page, not an error.
    let r = d.get("/feeds/small.json?before=1.1");
    assert_eq!(r.status, 200);
    assert!(ids_of(&r.body).is_empty());
    assert!(link(&r.body, true, "next").is_none());
}

#[test]
fn adhoc_feeds_say_what_they_hold_in_the_configs_spelling() {
    let (_server, _work, d) = started("", 10);
    for (query, title) in [
        ("tags=BINANCE", "Stories tagged Binance"),
        (
            "tags=binance,ethereum&exclude=REGULATION",
            "Stories tagged Binance or Ethereum, not Regulation",
        ),
        ("exclude=regulation", "Every story, not Regulation"),
        ("", "Every story"),
    ] {
        let r = d.get(&format!("/feed.json?{query}"));
        assert_eq!(r.status, 200, "{query}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["title"], title, "{query}");
        let atom = d.get(&format!("/feed.atom?{query}")).text();
        assert!(
            atom.contains(&format!("<title>{title}</title>")),
            "{query}: {atom}"
        );
    }
    // Every spelling of a query is one feed, told the same way.
    let a = d.get("/feed.rss?tags=binance").body;
    let b = d.get("/feed.rss?tags=BiNaNcE").body;
    assert_eq!(a, b);
}

/// A WebSub hub on loopback that takes every publish ping (204) and remembers its form, or
/// refuses them all (503).
struct Hub {
    addr: std::net::SocketAddr,
    pings: std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>,
}

impl Hub {
    fn start(refuse: bool) -> Hub {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let pings = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = pings.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                let mut line = String::new();
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                assert!(request_line.starts_with("POST / "), "{request_line}");
                let form = url::form_urlencoded::parse(&body).into_owned().collect();
                seen.lock().unwrap().push(form);
                let status = if refuse {
                    "503 Service Unavailable"
                } else {
                    "204 No Content"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Hub { addr, pings }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The topics pinged so far, each ping once, in order.
    fn topics(&self) -> Vec<String> {
        let pings = self.pings.lock().unwrap();
        pings
            .iter()
            .map(|form| {
                let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                assert_eq!(get("hub.mode").as_deref(), Some("publish"), "{form:?}");
                assert_eq!(get("hub.url"), get("hub.topic"), "{form:?}");
                get("hub.url").unwrap()
            })
            .collect()
    }
}

#[test]
fn websub_hub_is_named_and_pinged_once_per_changed_output() {
    let hub = Hub::start(false);
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds = [
        server.feed("cointelegraph.rss"),
        server.feed("decrypt.json"),
    ];
    let config = daemon_config(&[&feeds[0], &feeds[1]], "").replace(
        "[server]\n",
        &format!("[server]\nwebsub_hub = \"{}\"\n", hub.url()),
    );
    work.write_config(&config);
    let d = Daemon::start(&work, &[]);
    // Four outputs in three formats: twelve topics, each published once the first pass is in.
    let outputs = ["all", "all-atom", "all-json", "binance"];
    let topic = |o: &str, ext: &str| format!("{BASE}feeds/{o}.{ext}");
    let every: BTreeSet<String> = outputs
        .iter()
        .flat_map(|o| ["rss", "atom", "json"].map(|ext| topic(o, ext)))
        .collect();
    assert!(
        wait_until(Duration::from_secs(20), || {
            hub.topics().into_iter().collect::<BTreeSet<_>>() == every
        }),
        "every output published: {:?}\n{}",
        hub.topics(),
        d.logs()
    );
    // Each feed names the hub and itself, the topic the hub was given.
    let rss = d.get("/feeds/binance.rss").text();
    assert_eq!(xml_link(&rss, "hub"), Some(hub.url()));
    assert_eq!(xml_link(&rss, "self"), Some(topic("binance", "rss")));
    let atom = d.get("/feeds/binance.atom").text();
    assert_eq!(xml_link(&atom, "hub"), Some(hub.url()));
    let json: serde_json::Value =
        serde_json::from_slice(&d.get("/feeds/binance.json").body).unwrap();
    assert_eq!(json["hubs"][0]["url"], hub.url());

    // Both feeds stored and the pings settled (a first ping may go out between the two
    // feeds' polls, and a second round after the other one).
    assert!(wait_until(Duration::from_secs(20), || d
        .logs()
        .lines()
        .filter(|l| l.contains(" polled "))
        .count()
        == 2));
    let mut first = hub.topics().len();
    assert!(
        wait_until(Duration::from_secs(20), || {
            std::thread::sleep(Duration::from_secs(3));
            let now = hub.topics().len();
            std::mem::replace(&mut first, now) == now
        }),
        "the pings settle"
    );
    // A poll that changes nothing publishes nothing; wait past the debounce to see none.
    assert_ok(&work.run(&["refresh"]));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        hub.topics().len(),
        first,
        "nothing changed: {:?}",
        hub.topics()
    );

    // A new story that is not about Binance: every "all" output is published again, the
    // Binance one is not.
    let text = server.read("cointelegraph.rss");
    let item = r#"<item><title>Ethereum gas fees fall to a two-year low</title>
      <link>https://cointelegraph.com/news/eth-gas-low</link><guid>eth-gas-low</guid>
      <pubDate>Mon, 23 Nov 2026 15:00:00 +0000</pubDate><description>Fees fell.</description></item>"#;
    server.write(
        "cointelegraph.rss",
        text.replacen("<item>", &format!("{item}\n<item>"), 1)
            .as_bytes(),
    );
    assert_ok(&work.run(&["refresh"]));
    let again: BTreeSet<String> = outputs[..3]
        .iter()
        .flat_map(|o| ["rss", "atom", "json"].map(|ext| topic(o, ext)))
        .collect();
    assert!(
        wait_until(Duration::from_secs(15), || {
            hub.topics()[first..]
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                == again
        }),
        "the changed outputs published again: {:?}",
        &hub.topics()[first..]
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        hub.topics().len(),
        first + 9,
        "each once: {:?}",
        &hub.topics()[first..]
    );
}

#[test]
fn a_hub_that_refuses_is_said_in_the_log_and_the_metrics() {
    let hub = Hub::start(true);
    let server = FixtureServer::start();
    let work = Workdir::new();
    let config = daemon_config(&[&server.feed("decrypt.json")], "").replace(
        "[server]\n",
        &format!("[server]\nwebsub_hub = \"{}\"\n", hub.url()),
    );
    work.write_config(&config);
    let d = Daemon::start(&work, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || d
            .logs()
            .contains("the hub did not take the ping")),
        "{}",
        d.logs()
    );
    assert!(d.logs().contains("HTTP 503"), "{}", d.logs());
    let metrics = d.get("/metrics").text();
    assert!(
        metrics.contains("aggregate_websub_pings_total{result=\"failed\"}"),
        "{metrics}"
    );
}

#[test]
fn local_file_sources_never_publish_their_path() {
    let work = Workdir::new();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/feeds");
    let feeds: Vec<String> = ["cointelegraph.rss", "decrypt.json", "theblock.rdf"]
        .iter()
        .map(|f| format!("file://{}", fixtures.join(f).display()))
        .collect();
    let feeds: Vec<&str> = feeds.iter().map(String::as_str).collect();
    work.write_config(&config_with(&feeds, ""));
    assert_ok(&work.run_once());
    for out in [
        "out/all.rss",
        "out/all.atom",
        "out/all.json",
        "out/binance.rss",
    ] {
        let text = work.read(out);
        assert!(!text.contains("file:"), "{out} shows a local path:\n{text}");
        assert!(!text.contains(&*fixtures.to_string_lossy()), "{out}");
    }
    // The site each feed names stands in for it.
    let rss = work.read("out/all.rss");
    assert!(
        rss.contains(r#"<source url="https://cointelegraph.com"#),
        "{rss}"
    );
}

/// An RSS feed of `items` items, feed `n`'s own, a minute apart.
fn numbered_feed(n: usize, items: usize) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {n}</title>\
         <link>https://site{n}.example/</link><description>d</description>"
    );
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap();
    for i in 0..items {
        let at = base + chrono::Duration::minutes((i * 7 + n) as i64);
        s.push_str(&format!(
            "<item><title>Feed {n} report number {} on topic {i}</title>\
             <link>https://site{n}.example/{i}</link><guid>https://site{n}.example/{i}</guid>\
             <pubDate>{}</pubDate><description>Report {i} of feed {n}.</description></item>",
            n * 1000 + i,
            at.to_rfc2822()
        ));
    }
    s.push_str("</channel></rss>");
    s
}

#[test]
fn a_file_output_past_a_served_page_is_written_whole_in_parts() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let urls: Vec<String> = (0..4)
        .map(|n| {
            server.write(&format!("f{n}.rss"), numbered_feed(n, 450).as_bytes());
            server.feed(&format!("f{n}.rss"))
        })
        .collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let archive = r#"
[[output]]
name = "archive"
limit = 1500
path = "out/archive.rss"

[[output]]
name = "archive-json"
limit = 1500
path = "out/archive.json"

[[output]]
name = "archive-atom"
limit = 1500
path = "out/archive.atom"
"#;
    work.write_config(&config_with(&urls, archive));
    assert_ok(&work.run_once());
    assert_eq!(work.store().entry_count().unwrap(), 4 * 450);
    for out in ["out/archive.rss", "out/archive.json", "out/archive.atom"] {
        let feed = work.output(out);
        assert_eq!(feed.entries.len(), 1500, "{out}");
        let ids: std::collections::HashSet<&str> =
            feed.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), 1500, "{out}: every story once");
        let dates: Vec<_> = feed.entries.iter().map(|e| e.published.unwrap()).collect();
        assert!(
            dates.windows(2).all(|w| w[0] >= w[1]) || out.ends_with(".json"),
            "{out}: newest first"
        );
    }
    // The same stories again: the files are left as they are.
    let before = std::fs::metadata(work.path("out/archive.rss"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_ok(&work.run_once());
    let after = std::fs::metadata(work.path("out/archive.rss"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "unchanged bytes are not rewritten");
    // A served output is one page of at most 1000, with a next page.
    let bad = config_with(&urls, "[[output]]\nname = \"big\"\nlimit = 1500\n");
    work.write_config(&bad);
    let check = work.run(&["check"]);
    assert!(
        stderr(&check).contains(
            "1500 is out of range; give 1 to 1000 (an output with a path may hold up to 100000)"
        ),
        "{}",
        stderr(&check)
    );
}

#[test]
fn a_restart_keeps_last_modified_so_a_304_stays_a_304() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds = [
        server.feed("cointelegraph.rss"),
        server.feed("decrypt.json"),
    ];
    work.write_config(&daemon_config(&[&feeds[0], &feeds[1]], ""));
    let seen = |d: &Daemon| {
        wait_until(Duration::from_secs(20), || {
            d.logs().lines().filter(|l| l.contains(" polled ")).count() == 2
        })
    };
    let mut d = Daemon::start(&work, &[]);
    assert!(seen(&d), "{}", d.logs());
    let mut before = Vec::new();
    for path in [
        "/feeds/all.rss",
        "/feeds/binance.atom",
        "/feed.json?tags=binance",
    ] {
        let r = d.get(path);
        let lm = r.header("last-modified").unwrap().to_string();
        before.push((
            path,
            r.body.clone(),
            lm,
            r.header("etag").unwrap().to_string(),
        ));
    }
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(10))
        .expect("stops on SIGTERM");
    // HTTP dates have whole seconds: a date taken from the clock would now differ.
    std::thread::sleep(Duration::from_millis(1100));
    // The feeds are not due (an hour's interval, honoured across the restart): what is
    // served is what was stored.
    let d = Daemon::start(&work, &[]);
    for (path, body, lm, etag) in before {
        let r = d.get(path);
        assert_eq!(r.body, body, "{path}: the same bytes");
        assert_eq!(r.header("last-modified"), Some(lm.as_str()), "{path}");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{path}");
        let again = d.get_with(path, &[("If-Modified-Since", &lm)]);
        assert_eq!(
            again.status, 304,
            "{path}: still not modified after a restart"
        );
    }
}
