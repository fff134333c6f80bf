//! What feed readers get from the running service beyond the first page: paging past an
//! output's limit (RFC 5005) in all three formats, ad-hoc feeds that say what they hold, and
//! WebSub.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::daemon::{Daemon, wait_until};
use common::*;

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
