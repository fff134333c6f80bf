//! `aggregate --once` end to end: the real binary against a real HTTP server on 127.0.0.1.

use std::collections::BTreeSet;

use crate::common::*;

/// Every well-formed fixture, with the number of distinct entries each carries.
const GOOD_FEEDS: &[(&str, usize)] = &[
    ("coindesk.atom", 3),
    ("cointelegraph.rss", 5),
    ("decrypt.json", 3),
    ("theblock.rdf", 2),
    ("bitcoinmagazine.rss", 2),
    ("cryptoslate.rss", 3),
    ("yahoo-finance-crypto.rss", 2),
];

fn good_config(server: &FixtureServer) -> String {
    let urls: Vec<String> = GOOD_FEEDS.iter().map(|(n, _)| server.feed(n)).collect();
    config_with(&urls.iter().map(String::as_str).collect::<Vec<_>>(), "")
}

#[test]
fn first_pass_stores_everything_and_second_pass_gets_304s_and_adds_nothing() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&good_config(&server));

    let first = work.run_once();
    assert_ok(&first);
    let total: usize = GOOD_FEEDS.iter().map(|(_, n)| n).sum();
    assert!(
        stdout(&first).contains(&format!(
            "feeds: 7 ok, 0 not modified, 0 failed; entries: {total} new, 0 updated"
        )),
        "{}",
        stdout(&first)
    );
    assert_eq!(work.store().entry_count().unwrap(), total as u64);
    // Every request identified us.
    assert!(server.hits().iter().all(|h| {
        h.user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with("aggregate/"))
    }));

    // The re-syndicated CoinDesk story is one story: one fewer item in the merged output.
    let all = work.output("out/all.rss");
    assert_eq!(all.entries.len(), total - 1);
    for format in ["out/all.atom", "out/all.json"] {
        assert_eq!(work.output(format).entries.len(), total - 1, "{format}");
    }

    server.clear_hits();
    let before = work.read("out/all.rss");
    let second = work.run_once();
    assert_ok(&second);
    assert!(
        stdout(&second)
            .contains("feeds: 0 ok, 7 not modified, 0 failed; entries: 0 new, 0 updated"),
        "{}",
        stdout(&second)
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 7);
    assert!(
        hits.iter()
            .all(|h| h.status == 304 && h.if_none_match.is_some()),
        "{hits:?}"
    );
    assert_eq!(work.store().entry_count().unwrap(), total as u64);
    assert_eq!(
        work.read("out/all.rss"),
        before,
        "an unchanged store renders the same bytes"
    );
}

#[test]
fn a_server_that_ignores_validators_costs_no_reparse() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(&[&server.url("/plain/cointelegraph.rss")], ""));
    assert_ok(&work.run_once());
    let again = work.run_once();
    assert_ok(&again);
    assert!(
        stdout(&again).contains("0 ok, 1 not modified"),
        "{}",
        stdout(&again)
    );
    assert_eq!(server.hits().iter().filter(|h| h.status == 200).count(), 2);
}

#[test]
fn an_edited_feed_updates_its_entries_in_place() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(&[&server.feed("cointelegraph.rss")], ""));
    assert_ok(&work.run_once());
    let guid_before = guid_of(
        &work,
        "Ethereum developers set date for Fusaka follow-up upgrade",
    );

    let new_story = "<item>\n<title>Brand new story</title>\n<link>https://cointelegraph.com/news/brand-new</link>\n\
                     <pubDate>Mon, 23 Nov 2026 16:00:00 +0000</pubDate>\n</item>\n<item>";
    let edited = server
        .read("cointelegraph.rss")
        .replace(
            "Ethereum developers set date for Fusaka follow-up upgrade",
            "Ethereum developers confirm Fusaka follow-up date",
        )
        .replacen("<item>", new_story, 1);
    server.write("cointelegraph.rss", edited.as_bytes());

    let run = work.run_once();
    assert_ok(&run);
    assert!(
        stdout(&run).contains("entries: 1 new, 1 updated"),
        "{}",
        stdout(&run)
    );
    assert_eq!(work.store().entry_count().unwrap(), 6);
    let titles = work.titles("out/all.rss");
    assert!(titles.contains(&"Ethereum developers confirm Fusaka follow-up date".to_string()));
    assert!(
        !titles.contains(&"Ethereum developers set date for Fusaka follow-up upgrade".to_string())
    );
    assert_eq!(
        guid_of(&work, "Ethereum developers confirm Fusaka follow-up date"),
        guid_before,
        "guid must not change on edit"
    );
}

fn guid_of(work: &Workdir, title: &str) -> String {
    let feed = work.output("out/all.rss");
    let e = feed
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content == title)
        .unwrap_or_else(|| panic!("no {title}"));
    e.id.clone()
}

#[test]
fn the_same_story_in_two_feeds_appears_once_with_both_sources() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(
        &[
            &server.feed("coindesk.atom"),
            &server.feed("yahoo-finance-crypto.rss"),
        ],
        "",
    ));
    assert_ok(&work.run_once());
    assert_eq!(
        work.store().entry_count().unwrap(),
        5,
        "both copies are stored"
    );
    for out in ["out/all.rss", "out/all.atom", "out/all.json"] {
        let feed = work.output(out);
        let etf: Vec<_> = feed
            .entries
            .iter()
            .filter(|e| {
                e.title
                    .as_ref()
                    .unwrap()
                    .content
                    .starts_with("Bitcoin ETFs Record")
            })
            .collect();
        assert_eq!(etf.len(), 1, "{out}: the story appears once");
        // Both copies link to the article; CoinDesk's adds a generic `?ref=rss`, which identity
        // ignores and the published link keeps. Which copy leads is the first stored.
        assert!(
            etf[0].links[0].href.starts_with(
                "https://www.coindesk.com/markets/2026/11/23/bitcoin-etfs-record-inflows/"
            ),
            "{out}: {}",
            etf[0].links[0].href
        );
        assert_eq!(feed.entries.len(), 4, "{out}");
    }
    let rss = work.read("out/all.rss");
    assert!(
        rss.contains("Also reported by"),
        "the other source is named"
    );
    assert!(rss.contains("Yahoo Finance - Crypto") && rss.contains("CoinDesk"));
}

#[test]
fn tag_filters_are_exact() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let urls: Vec<String> = GOOD_FEEDS.iter().map(|(n, _)| server.feed(n)).collect();
    let extra = r##"
[[output]]
name = "regulation-no-binance"
tags = ["Regulation"]
exclude_tags = ["Binance"]
path = "out/reg.json"

[[output]]
name = "eth"
tags = ["ETHEREUM", "#staking"]
path = "out/eth.atom"
"##;
    work.write_config(&config_with(
        &urls.iter().map(String::as_str).collect::<Vec<_>>(),
        extra,
    ));
    assert_ok(&work.run_once());

    let set = |rel: &str| work.titles(rel).into_iter().collect::<BTreeSet<_>>();
    let expect = |titles: &[&str]| {
        titles
            .iter()
            .map(|t| t.to_string())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        set("out/binance.rss"),
        expect(&[
            "Binance lists new BNB Chain staking product as trading volumes climb",
            "Binance's Former CEO Changpeng Zhao Launches Education Venture",
            "Binance Completes 33rd Quarterly BNB Burn",
            "EU Regulators Begin MiCA Enforcement Against Unlicensed Exchanges",
            // The source writes &nbsp;: it stays a non-breaking space.
            "Binance\u{a0}and OKX see record derivatives open interest",
        ])
    );
    assert_eq!(
        set("out/reg.json"),
        expect(&[
            "SEC drops case against DeFi developer, citing new regulatory guidance",
            "Kraken Files Confidentially for U.S. IPO",
        ]),
        "Regulation, minus the MiCA story that also mentions Binance"
    );
    assert_eq!(
        set("out/eth.atom"),
        expect(&[
            "Ethereum developers set date for Fusaka follow-up upgrade",
            "Ether Staking Hits Record as Validators Queue Grows",
            "Price analysis 11/22: BTC, ETH, XRP, SOL, DOGE",
            // Tagged by its "Staking" category, matched case-insensitively.
            "Binance lists new BNB Chain staking product as trading volumes climb",
        ])
    );
    // Every item of the binance output carries the tag, in the config's spelling.
    for e in work.output("out/binance.rss").entries {
        assert!(
            e.categories.iter().any(|c| c.term == "Binance"),
            "{:?}",
            e.title
        );
    }
}

#[test]
fn hostile_html_is_sanitized_in_every_format() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(&[&server.feed("hostile.rss")], ""));
    assert_ok(&work.run_once());
    for out in ["out/all.rss", "out/all.atom", "out/all.json"] {
        let body = work.read(out);
        let lower = body.to_lowercase();
        for bad in [
            "<script",
            "&lt;script",
            "onerror",
            "onmouseover",
            "javascript:",
            "<iframe",
            "<object",
            "<embed",
            "<form",
            "data:text/html",
            "<style",
            "<meta",
            "<base",
            "alert(",
            "evil.example",
        ] {
            assert!(!lower.contains(bad), "{out} contains {bad}:\n{body}");
        }
        let feed = work.output(out);
        assert_eq!(feed.entries.len(), 1);
        assert_eq!(
            feed.entries[0].title.as_ref().unwrap().content,
            "Binance hack rumours",
            "{out}: titles are plain text"
        );
        assert!(
            body.contains("Genuine paragraph about BNB."),
            "{out}: the harmless text survives"
        );
        assert!(
            body.contains("noopener noreferrer"),
            "{out}: links get rel=noopener"
        );
    }
}

#[test]
fn each_broken_feed_gets_its_own_clear_error_and_the_others_are_stored() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds = [
        server.feed("cointelegraph.rss"),
        server.feed("malformed.xml"),
        server.url("/status/404"),
        server.url("/slow/10/decrypt.json"),
        server.url("/huge"),
        server.url("/gzip-bomb"),
        server.feed("not-a-feed.html"),
        server.url("/status/503"),
    ];
    work.write_config(&config_with(
        &feeds.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
    ));
    let started = std::time::Instant::now();
    let run = work.run_once();
    assert_ok(&run);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "the slow feed was cut at its timeout"
    );
    assert!(
        stdout(&run).contains("feeds: 1 ok, 0 not modified, 7 failed; entries: 5 new"),
        "{}",
        stdout(&run)
    );
    let err = stderr(&run);
    let line = |needle: &str| line_about(&err, needle).to_string();
    assert!(line("malformed.xml").contains("malformed feed"), "{err}");
    assert!(line("/status/404").contains("HTTP 404 Not Found"), "{err}");
    assert!(line("/slow/10").contains("timed out after 2s"), "{err}");
    assert!(
        line("/huge").contains("larger than the 1048576-byte limit"),
        "{err}"
    );
    assert!(
        line("/gzip-bomb").contains("larger than the 1048576-byte limit"),
        "{err}"
    );
    assert!(
        line("not-a-feed.html").contains("HTML page, not a feed"),
        "{err}"
    );
    assert!(line("/status/503").contains("HTTP 503"), "{err}");
    assert_eq!(work.store().entry_count().unwrap(), 5);
    assert_eq!(
        work.titles("out/all.rss").len(),
        5,
        "outputs are written despite the failures"
    );

    // Each feed's status says what went wrong.
    let statuses = work.store().feed_statuses().unwrap();
    let status = |needle: &str| {
        statuses
            .iter()
            .find(|s| s.url.contains(needle))
            .unwrap()
            .clone()
    };
    assert_eq!(status("/status/404").last_status, Some(404));
    assert_eq!(status("/status/404").consecutive_failures, 1);
    assert!(status("cointelegraph").last_error.is_none());

    // --strict turns any failed feed into exit code 2.
    let strict = work.run(&["--once", "--strict", "--config", "config.toml"]);
    assert_eq!(strict.status.code(), Some(2), "{}", stderr(&strict));
    assert_eq!(
        work.store()
            .feed_statuses()
            .unwrap()
            .iter()
            .find(|s| s.url.contains("/status/404"))
            .unwrap()
            .consecutive_failures,
        2
    );
}

#[test]
fn a_failure_later_loses_nothing_already_stored() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(&[&server.feed("cointelegraph.rss")], ""));
    assert_ok(&work.run_once());
    server.write(
        "cointelegraph.rss",
        b"<rss version=\"2.0\"><channel><item><title>cut off",
    );
    let run = work.run_once();
    assert_ok(&run);
    assert!(stderr(&run).contains("malformed feed"), "{}", stderr(&run));
    assert_eq!(work.store().entry_count().unwrap(), 5);
    assert_eq!(work.titles("out/all.rss").len(), 5);
}

#[test]
fn gzip_bodies_are_decompressed() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(&[&server.url("/gzip/decrypt.json")], ""));
    assert_ok(&work.run_once());
    assert_eq!(work.store().entry_count().unwrap(), 3);
}

#[test]
fn redirects_are_followed_and_a_permanent_one_is_remembered() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(
        &[
            &server.url("/redirect/301/theblock.rdf"),
            &server.url("/redirect/302/decrypt.json"),
        ],
        "",
    ));
    assert_ok(&work.run_once());
    assert_eq!(work.store().entry_count().unwrap(), 5);
    let statuses = work.store().feed_statuses().unwrap();
    let moved = statuses
        .iter()
        .find(|s| s.url.contains("/redirect/301/"))
        .unwrap();
    assert_eq!(
        moved.current_url.as_deref(),
        Some(server.feed("theblock.rdf").as_str())
    );
    let temporary = statuses
        .iter()
        .find(|s| s.url.contains("/redirect/302/"))
        .unwrap();
    assert_eq!(temporary.current_url, None, "a 302 is not remembered");

    server.clear_hits();
    assert_ok(&work.run_once());
    let paths: Vec<String> = server.hits().iter().map(|h| h.path.clone()).collect();
    assert!(
        !paths.iter().any(|p| p == "/redirect/301/theblock.rdf"),
        "the moved feed is polled at its new URL: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p == "/redirect/302/decrypt.json"),
        "{paths:?}"
    );
}

#[test]
fn retention_leaves_tombstones_so_pruned_entries_do_not_return() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let config = config_with(&[&server.feed("theblock.rdf")], "").replace(
        "path = \"aggregate.db\"",
        "path = \"aggregate.db\"\nretention = \"1s\"",
    );
    work.write_config(&config);
    assert_ok(&work.run_once());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    // This pass finds nothing new; its retention sweep then removes both entries.
    assert_ok(&work.run_once());
    assert_eq!(work.store().entry_count().unwrap(), 0);

    // The feed changes: one new item in front of the two pruned ones.
    let text = server.read("theblock.rdf").replacen(
        "<item rdf:about",
        "<item rdf:about=\"https://www.theblock.co/post/330003/new\">\n    <title>New</title>\n    <link>https://www.theblock.co/post/330003/new</link>\n  </item>\n  <item rdf:about",
        1,
    );
    server.write("theblock.rdf", text.as_bytes());
    let run = work.run_once();
    assert_ok(&run);
    assert!(
        stdout(&run).contains("entries: 1 new, 0 updated"),
        "{}",
        stdout(&run)
    );
}

#[test]
fn per_host_and_global_concurrency_limits_hold() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds: Vec<String> = (0..6)
        .map(|i| server.url(&format!("/slow/1/theblock.rdf?copy={i}")))
        .collect();
    let config = config_with(&feeds.iter().map(String::as_str).collect::<Vec<_>>(), "")
        .replace("per_host = 8", "per_host = 2");
    work.write_config(&config);
    let run = work.run_once();
    assert_ok(&run);
    assert!(stdout(&run).contains("feeds: 6 ok"), "{}", stdout(&run));
    assert_eq!(
        server.max_in_flight(),
        2,
        "never more than per_host requests to one host at once"
    );

    let server = FixtureServer::start();
    let feeds: Vec<String> = (0..6)
        .map(|i| server.url(&format!("/slow/1/theblock.rdf?copy={i}")))
        .collect();
    let config = config_with(&feeds.iter().map(String::as_str).collect::<Vec<_>>(), "")
        .replace("concurrency = 8", "concurrency = 3");
    work.write_config(&config);
    assert_ok(&work.run_once());
    assert_eq!(
        server.max_in_flight(),
        3,
        "never more than concurrency feeds in flight"
    );
}

#[test]
fn redirect_loops_and_scheme_changes_are_refused() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(
        &[
            &server.url("/loop/1"),
            &server.url("/to-ftp"),
            &server.feed("theblock.rdf"),
        ],
        "",
    ));
    let run = work.run_once();
    assert_ok(&run);
    let err = stderr(&run);
    assert!(err.contains("more than 5 redirects"), "{err}");
    assert!(
        err.contains("redirected to a non-http URL ftp://127.0.0.1/feed.xml"),
        "{err}"
    );
    assert_eq!(
        server
            .hits()
            .iter()
            .filter(|h| h.path.starts_with("/loop/"))
            .count(),
        6,
        "the first request and 5 redirects"
    );
    assert_eq!(work.store().entry_count().unwrap(), 2);
}

/// A feed dropped from the config leaves the outputs at once, but its entries stay until
/// retention: added back, its stories return with the guids they had.
#[test]
fn a_dropped_feed_leaves_the_outputs_and_comes_back_unchanged() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let both = config_with(
        &[
            &server.feed("decrypt.json"),
            &server.feed("cryptoslate.rss"),
        ],
        "",
    );
    work.write_config(&both);
    assert_ok(&work.run_once());
    let guids = |work: &Workdir| -> BTreeSet<String> {
        work.output("out/all.rss")
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    let before = guids(&work);
    assert_eq!(before.len(), 6);

    work.write_config(&config_with(&[&server.feed("decrypt.json")], ""));
    assert_ok(&work.run_once());
    let titles = work.titles("out/all.rss");
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(!titles.iter().any(|t| t.contains("OKX")), "{titles:?}");
    assert_eq!(
        work.store().entry_count().unwrap(),
        6,
        "kept until retention"
    );

    work.write_config(&both);
    assert_ok(&work.run_once());
    assert_eq!(guids(&work), before);
}

/// An output dropped from the config loses its file at the next run, as at a reload: no
/// reader stays on a feed that never changes again. A file the config never wrote is left.
#[test]
fn a_dropped_outputs_file_is_removed_by_the_next_run() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let config = config_with(&[&server.feed("decrypt.json")], "");
    work.write_config(&config);
    assert_ok(&work.run_once());
    assert!(work.path("out/binance.rss").exists());
    std::fs::write(work.path("out/mine.txt"), "not aggregate's").unwrap();

    let binance =
        "[[output]]\nname = \"binance\"\ntags = [\"binance\"]\npath = \"out/binance.rss\"\n";
    assert!(config.contains(binance));
    work.write_config(&config.replace(binance, ""));
    assert_ok(&work.run_once());
    assert!(!work.path("out/binance.rss").exists());
    assert!(work.path("out/all.rss").exists());
    assert!(work.path("out/mine.txt").exists());
}
