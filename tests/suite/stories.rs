//! One story shown once across outlets: the real binary against the fixture server, feeds built
//! from `fixtures/stories/` (each outlet's copies of a report, in its own words).

use crate::common;

use crate::common::*;

/// (outlet, hours after the first copy, link, title, body) from a fixture file.
fn copies(file: &str) -> Vec<[String; 5]> {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/stories/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, '|').collect();
            [f[0], f[1], f[2], f[3], f[4]].map(String::from)
        })
        .collect()
}

/// An outlet's RSS feed of the given copies.
fn feed(outlet: &str, items: &[&[String; 5]]) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-21T08:00:00Z").unwrap();
    let items: String = items
        .iter()
        .map(|[_, hours, link, title, body]| {
            let date = base + chrono::Duration::hours(hours.parse().unwrap());
            format!(
                "<item><title>{}</title><link>{link}</link><guid>{link}</guid><pubDate>{}</pubDate><description><![CDATA[{body}]]></description></item>",
                title.replace('&', "&amp;"),
                date.to_rfc2822()
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>{outlet}</title><link>https://{outlet}.example/</link><description>{outlet}</description>{items}</channel></rss>"#
    )
}

/// Serves each outlet's feed of `copies` (those of `only`, when given) and returns their URLs.
fn serve(server: &FixtureServer, all: &[[String; 5]], only: Option<&[&str]>) -> Vec<String> {
    let mut outlets: Vec<&str> = all.iter().map(|c| c[0].as_str()).collect();
    outlets.sort();
    outlets.dedup();
    outlets
        .into_iter()
        .map(|outlet| {
            let items: Vec<&[String; 5]> = all
                .iter()
                .filter(|c| c[0] == outlet && only.is_none_or(|o| o.contains(&c[0].as_str())))
                .collect();
            let name = format!("story-{}.rss", outlet.replace(' ', "-").to_lowercase());
            server.write(&name, feed(outlet, &items).as_bytes());
            server.feed(&name)
        })
        .collect()
}

fn items(work: &Workdir) -> Vec<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_str(&work.read("out/all.json")).unwrap();
    json["items"].as_array().unwrap().clone()
}

fn item<'a>(items: &'a [serde_json::Value], words: &str) -> Vec<&'a serde_json::Value> {
    items
        .iter()
        .filter(|i| i["title"].as_str().unwrap().contains(words))
        .collect()
}

#[test]
fn one_report_in_four_outlets_is_one_item_with_four_sources() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let mut all = copies("settlement.txt");
    all.extend(copies("others.txt"));
    let urls = serve(&server, &all, None);
    work.write_config(&config_with(
        &urls.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
    ));
    assert_ok(&work.run_once());

    let items = items(&work);
    let settlement: Vec<_> = items
        .iter()
        .filter(|i| {
            let t = i["title"].as_str().unwrap();
            t.contains("4.3") && (t.contains("Zhao") || t.contains("CZ"))
        })
        .collect();
    assert_eq!(
        settlement.len(),
        1,
        "one item for the settlement: {items:#?}"
    );
    let s = settlement[0];
    // The earliest copy with a link, a headline and text leads: CoinDesk's.
    assert_eq!(s["_aggregate"]["source"]["title"], "CoinDesk", "{s:#}");
    let also: Vec<&str> = s["_aggregate"]["also"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(also.len(), 3, "{also:?}");
    for outlet in ["Decrypt", "The Block", "Cointelegraph"] {
        assert!(also.contains(&outlet), "{outlet} in {also:?}");
    }
    assert!(
        s["content_html"]
            .as_str()
            .unwrap()
            .contains("Also reported by")
    );
    // Atom names the other copies as related links; RSS shows the story once too.
    let atom = work.read("out/all.atom");
    assert_eq!(atom.matches("<entry>").count(), 4, "{atom}");
    assert!(
        atom.contains(r#"<link href="https://decrypt.co/207431/cz-steps-down-binance-ceo-doj-settlement" rel="related""#),
        "{atom}"
    );
    let rss = work.titles("out/all.rss");
    assert_eq!(
        rss.iter().filter(|t| t.contains("$4.3")).count(),
        1,
        "{rss:?}"
    );

    // A recurring headline on two days, and another Binance story of the same day: apart.
    assert_eq!(item(&items, "Bitcoin price today").len(), 2, "{items:#?}");
    assert_eq!(item(&items, "Zephyr").len(), 1);
    assert_eq!(items.len(), 4, "{items:#?}");
    // The Binance tag output shows the story once, though several copies carry the tag.
    let binance = work.titles("out/binance.rss");
    assert_eq!(
        binance.iter().filter(|t| t.contains("$4.3")).count(),
        1,
        "{binance:?}"
    );
}

#[test]
fn a_copy_arriving_a_poll_later_joins_the_item_without_changing_its_guid() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let all = copies("settlement.txt");
    let urls = serve(&server, &all, Some(&["CoinDesk", "Decrypt", "The Block"]));
    work.write_config(&config_with(
        &urls.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
    ));
    assert_ok(&work.run_once());
    let before = items(&work);
    assert_eq!(before.len(), 1, "{before:#?}");
    assert_eq!(before[0]["_aggregate"]["also"].as_array().unwrap().len(), 2);

    serve(&server, &all, None);
    assert_ok(&work.run_once());
    let after = items(&work);
    assert_eq!(after.len(), 1, "{after:#?}");
    let (b, a) = (&before[0], &after[0]);
    assert_eq!(a["id"], b["id"], "the guid never changes");
    assert_eq!(a["title"], b["title"], "nor the headline");
    assert_eq!(a["url"], b["url"], "nor the link");
    assert_eq!(a["_aggregate"]["also"].as_array().unwrap().len(), 3);
    assert!(
        a["date_modified"].as_str().is_some(),
        "the updated date moved when a source joined: {a:#}"
    );
}

/// `stories = false`, as configs written before `merge` say `merge = "copies"`.
#[test]
fn story_clustering_can_be_turned_off() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let all = copies("settlement.txt");
    let urls = serve(&server, &all, None);
    let extra = "\n[dedup]\nstories = false\n";
    work.write_config(&config_with(
        &urls.iter().map(String::as_str).collect::<Vec<_>>(),
        extra,
    ));
    assert_ok(&work.run_once());
    assert_eq!(items(&work).len(), 4, "only the same link merges");
}

/// `merge` picks the tiers: "links" merges only the same article (the pass computes no
/// signature), "copies" merges a wire copy under another address too.
#[test]
fn merge_links_keeps_wire_copies_apart_and_copies_merges_them() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let body = "<p>The exchange halted all withdrawals on Thursday after attackers drained \
        about $40 million from one of its hot wallets, the company said in a statement. \
        Deposits remain open, customer funds held in cold storage were not affected, and \
        the firm said it would cover every loss from its own reserves while investigators \
        trace the stolen coins across three chains.</p>";
    let copy = |outlet: &str, link: &str| {
        [
            outlet,
            "0",
            link,
            "Exchange Halts Withdrawals After $40 Million Hot Wallet Exploit",
            body,
        ]
        .map(String::from)
    };
    let all = [
        copy("Alpha", "https://alpha.example/halt?utm_source=rss"),
        copy("Beta", "https://www.alpha.example/halt"),
        copy("Gamma", "https://gamma.example/wire/halt-40m"),
    ];
    let urls = serve(&server, &all, None);
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    // Sources per item, fewest first.
    for (merge, sources) in [
        ("links", vec![1, 2]),
        ("copies", vec![3]),
        ("stories", vec![3]),
    ] {
        for db in ["aggregate.db", "aggregate.db-wal", "aggregate.db-shm"] {
            std::fs::remove_file(work.path(db)).ok();
        }
        work.write_config(&config_with(
            &urls,
            &format!("\n[dedup]\nmerge = \"{merge}\"\n"),
        ));
        assert_ok(&work.run_once());
        let got = items(&work);
        let mut counts: Vec<usize> = got
            .iter()
            .map(|i| 1 + i["_aggregate"]["also"].as_array().unwrap().len())
            .collect();
        counts.sort();
        assert_eq!(counts, sources, "merge = {merge}: {got:#?}");
    }
}

/// Each item as a reader tells it apart: headline, source, the other outlets.
fn shown(json: &str) -> Vec<(String, String, Vec<String>)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut out: Vec<_> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let mut also: Vec<String> = i["_aggregate"]["also"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["title"].as_str().unwrap().to_string())
                .collect();
            also.sort();
            (
                i["title"].as_str().unwrap().to_string(),
                i["_aggregate"]["source"]["title"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                also,
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_daemon_serves_what_it_writes_and_what_once_writes() {
    let server = FixtureServer::start();
    let mut all = copies("settlement.txt");
    all.extend(copies("others.txt"));
    let urls = serve(&server, &all, None);
    let feeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let config = config_with(&feeds, "").replace(
        "[storage]",
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.example.org/\"\n\n[storage]",
    );

    let once = Workdir::new();
    once.write_config(&config);
    assert_ok(&once.run_once());
    let expected = shown(&once.read("out/all.json"));
    assert_eq!(expected.len(), 4, "{expected:#?}");

    let work = Workdir::new();
    work.write_config(&config);
    let d = common::daemon::Daemon::start(&work, &[]);
    let settled = common::daemon::wait_until(std::time::Duration::from_secs(20), || {
        // out/all.json is the `all-json` output's file.
        let r = d.get("/feeds/all-json.json");
        r.status == 200
            && shown(&r.text()) == expected
            && std::fs::read_to_string(work.path("out/all.json")).is_ok_and(|f| f == r.text())
    });
    let served = d.get("/feeds/all-json.json").text();
    let file = std::fs::read_to_string(work.path("out/all.json")).unwrap_or_default();
    assert!(
        settled,
        "the daemon's feed and file show what --once wrote:\nserved {served}\nfile {file}\n{}",
        d.logs()
    );
}
