//! The operator's toolbox, end to end with the real binary: import and export of OPML,
//! discovery, feed status, refresh (with and without a running service), backup and vacuum,
//! completions and the version. Bad inputs included, and proof that a refused command wrote
//! nothing.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::daemon::{Daemon, wait_until};
use crate::common::*;

const OPML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Exported from another reader</title></head>
  <body>
    <outline text="Crypto">
      <outline text="Exchanges">
        <outline type="rss" text="Binance blog" xmlUrl="https://www.binance.com/en/feed/rss" htmlUrl="https://www.binance.com"/>
      </outline>
      <outline type="rss" text="CoinDesk" xmlUrl="HTTP://www.coindesk.com/arc/outboundfeeds/rss" category="Markets"/>
    </outline>
    <outline type="rss" text="Decrypt" xmlUrl="https://decrypt.co/feed"/>
    <outline type="rss" text="Decrypt again" xmlUrl="https://decrypt.co/feed/"/>
    <outline type="rss" text="A script" xmlUrl="javascript:alert(1)"/>
  </body>
</opml>
"#;

const COMMENTED: &str = r#"# Our crypto desk. Keep this comment.
[fetch]
interval = "15m"   # be polite

# --- feeds ---
[[feed]]
url = "https://www.coindesk.com/arc/outboundfeeds/rss/"
title = "CoinDesk"

# --- tags ---
[[tag]]
name = "Binance"
keywords = ["Binance"]
"#;

fn run_with_stdin(work: &Workdir, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aggregate"))
        .args(args)
        .current_dir(work.dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn import_appends_new_feeds_keeps_the_files_layout_and_says_what_it_skipped() {
    let work = Workdir::new();
    work.write_config(COMMENTED);
    std::fs::write(work.path("reader.opml"), OPML).unwrap();

    let out = work.run(&["import", "reader.opml", "--tags-from-categories"]);
    assert_ok(&out);
    let report = stdout(&out);
    assert!(report.contains("added to config.toml: 2 feeds"), "{report}");
    assert!(
        report.contains(
            "+ https://www.binance.com/en/feed/rss \"Binance blog\" tags [Crypto, Exchanges]"
        ),
        "{report}"
    );
    assert!(
        report.contains("already in the config as https://www.coindesk.com/arc/outboundfeeds/rss/"),
        "{report}"
    );
    assert!(
        report.contains("https://decrypt.co/feed/ (line 12): listed twice in the OPML"),
        "{report}"
    );
    assert!(
        report.contains("javascript:alert(1) (line 13): not an http(s) URL"),
        "{report}"
    );

    // Every line of the old file is still there, in order; the new feeds sit after the last
    // feed, before the tags.
    let edited = work.read("config.toml");
    let mut rest = edited.as_str();
    for line in COMMENTED.lines() {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} lost:\n{edited}"));
        rest = &rest[at + line.len()..];
    }
    let binance = edited.find("binance.com/en/feed/rss").unwrap();
    assert!(edited.find("title = \"CoinDesk\"").unwrap() < binance);
    assert!(binance < edited.find("# --- tags ---").unwrap(), "{edited}");
    let check = work.run(&["check"]);
    assert_ok(&check);
    assert!(stdout(&check).contains("feeds (3):"), "{}", stdout(&check));
    assert!(
        stdout(&check).contains("https://decrypt.co/feed \"Decrypt\""),
        "{}",
        stdout(&check)
    );

    // Again, from standard input, as JSON: everything is there already; the file is untouched.
    let again = run_with_stdin(&work, &["import", "-", "--json"], OPML);
    assert_ok(&again);
    let v: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(v["added"].as_array().unwrap().len(), 0);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 5);
    assert_eq!(work.read("config.toml"), edited);
}

#[test]
fn a_refused_import_leaves_the_config_as_it_was() {
    let work = Workdir::new();
    work.write_config(COMMENTED);
    let broken = "<opml version=\"2.0\"><body>\n<outline text=\"a\" xmlUrl=\"https://a.example/\">\n</body></opml>\n";
    std::fs::write(work.path("broken.opml"), broken).unwrap();
    let out = work.run(&["import", "broken.opml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("broken.opml: line 3: not well-formed XML"),
        "{err}"
    );
    assert_eq!(work.read("config.toml"), COMMENTED);

    std::fs::write(
        work.path("feed.rss"),
        "<rss version=\"2.0\"><channel/></rss>",
    )
    .unwrap();
    let out = work.run(&["import", "feed.rss"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("its root element is <rss>, not <opml>"),
        "{}",
        stderr(&out)
    );

    let out = work.run(&["import", "missing.opml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read missing.opml: No such file"),
        "{}",
        stderr(&out)
    );

    // A config that is already invalid is not edited further.
    let invalid = format!("{COMMENTED}\n[fetch2]\nx = 1\n");
    work.write_config(&invalid);
    std::fs::write(work.path("reader.opml"), OPML).unwrap();
    let out = work.run(&["import", "reader.opml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("fix it before importing"),
        "{}",
        stderr(&out)
    );
    assert_eq!(work.read("config.toml"), invalid);
    let left: Vec<String> = std::fs::read_dir(work.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".opml") && !n.ends_with(".rss"))
        .collect();
    assert_eq!(left, ["config.toml"], "no temporary file left");
}

#[test]
fn import_creates_a_config_that_does_not_exist_yet() {
    let work = Workdir::new();
    std::fs::write(work.path("reader.opml"), OPML).unwrap();
    let out = work.run(&["import", "reader.opml"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("created config.toml: 3 feeds"),
        "{}",
        stdout(&out)
    );
    assert_ok(&work.run(&["check"]));
}

#[test]
fn export_round_trips_through_import_and_the_server_hides_local_paths() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let file_feed = format!(
        "file://{}/fixtures/feeds/coindesk.atom",
        env!("CARGO_MANIFEST_DIR")
    );
    let config = config_with(&[&server.feed("cointelegraph.rss")], "")
        .replace(
            "[[feed]]\n",
            "[[feed]]\ntitle = \"Cointelegraph\"\ntags = [\"News\", \"Markets\"]\n",
        )
        .replace("[server]", "[server]")
        + &format!("\n[[feed]]\nurl = \"{file_feed}\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n");
    work.write_config(&config);
    assert_ok(&work.run_once());

    let out = work.run(&["export"]);
    assert_ok(&out);
    let opml = stdout(&out);
    let outlines = aggregate::opml::parse(&opml).unwrap();
    assert_eq!(outlines.len(), 2, "{opml}");
    assert_eq!(outlines[0].title.as_deref(), Some("Cointelegraph"));
    assert_eq!(outlines[0].categories, ["News", "Markets"]);
    // The feed's own site link, learnt from polling it.
    assert_eq!(
        outlines[0].html_url.as_deref(),
        Some("https://cointelegraph.com/"),
        "{opml}"
    );
    // The coindesk fixture's own title, as no title is configured.
    assert_eq!(
        outlines[1].title.as_deref(),
        Some("CoinDesk: Bitcoin, Ethereum, Crypto News and Price Data"),
        "{opml}"
    );

    // Into an empty config: the same feeds and tags come back.
    let other = Workdir::new();
    std::fs::write(other.path("export.opml"), &opml).unwrap();
    assert_ok(&other.run(&["import", "export.opml", "--tags-from-categories"]));
    let imported = other.read("config.toml");
    assert!(
        imported.contains(&server.feed("cointelegraph.rss")),
        "{imported}"
    );
    assert!(
        imported.contains("tags = [\"News\", \"Markets\"]"),
        "{imported}"
    );

    let outputs = work.run(&["export", "--outputs"]);
    assert_ok(&outputs);
    let listed = aggregate::opml::parse(&stdout(&outputs)).unwrap();
    assert_eq!(listed.len(), 4);
    assert!(
        listed[0].xml_url.ends_with("/feeds/all.rss"),
        "{:?}",
        listed[0]
    );
    assert_eq!(listed[3].categories, ["binance"]);

    let daemon = Daemon::start(&work, &[]);
    let public = daemon.get("/opml");
    assert_eq!(public.status, 200);
    assert_eq!(
        public.header("content-type"),
        Some("text/x-opml; charset=utf-8")
    );
    let served = aggregate::opml::parse(&public.text()).unwrap();
    assert_eq!(served.len(), 1, "no file: source is shown to readers");
    assert!(!public.text().contains("file:"), "{}", public.text());
    let all = daemon.get("/outputs.opml");
    assert_eq!(aggregate::opml::parse(&all.text()).unwrap().len(), 4);
    assert!(daemon.get("/").text().contains("outputs.opml"));
    // Output names are one address whatever their case; .xml is RSS like .rss.
    assert_eq!(
        daemon.get("/feeds/ALL.rss").text(),
        daemon.get("/feeds/all.rss").text()
    );
    assert_eq!(
        daemon.get("/feeds/all.xml").text(),
        daemon.get("/feeds/all.rss").text()
    );
}

#[test]
fn feeds_lists_every_feeds_health_and_failing_ones_exit_2() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let config = config_with(
        &[&server.feed("decrypt.json"), &server.url("/status/503")],
        "",
    );
    work.write_config(&config);

    // Before any poll: no database is created just to say so.
    let out = work.run(&["feeds"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("no database at aggregate.db yet"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out).matches("not polled yet").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert!(!work.path("aggregate.db").exists());

    work.run_once();
    let out = work.run(&["feeds"]);
    assert_ok(&out);
    let table = stdout(&out);
    let ok = line_about(&table, "decrypt.json");
    assert!(ok.starts_with("ok "), "{ok}");
    assert!(
        ok.contains(" 3 ") && ok.contains("just now") && ok.contains("Decrypt <"),
        "{ok}"
    );
    let failing = line_about(&table, "/status/503");
    assert!(failing.starts_with("failing"), "{failing}");
    assert!(
        failing.contains("never") && failing.ends_with(": HTTP 503 Service Unavailable"),
        "{failing}"
    );

    let out = work.run(&["feeds", "--failing", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["health"], "failing");
    assert_eq!(rows[0]["consecutive_failures"], 1);
    assert_eq!(rows[0]["last_status"], 503);

    // Nothing failing: exit 0.
    work.write_config(&config_with(&[&server.feed("decrypt.json")], ""));
    let out = work.run(&["feeds", "--failing"]);
    assert_ok(&out);
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "only the header: {}",
        stdout(&out)
    );
}

const PAGE: &str = r#"<!doctype html><html><head><title>News</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="All news" href="/feeds/cointelegraph.rss">
<link rel="alternate" type="application/atom+xml" title="Broken" href="/feeds/malformed.xml">
<link rel="alternate" type="application/feed+json" href="feeds/decrypt.json">
</head><body>hello</body></html>"#;

#[test]
fn discover_finds_a_sites_feeds_reads_them_and_adds_the_first() {
    let server = FixtureServer::start();
    server.write("index.html", PAGE.as_bytes());
    let work = Workdir::new();
    work.write_config("[fetch]\ntimeout = \"2s\"\n");

    let page = server.url("/index.html");
    let out = work.run(&["discover", &page]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("2 feeds found for {page}")),
        "{text}"
    );
    assert!(
        text.contains("# Cointelegraph.com News (RSS 2.0, 5 entries; <link> on the page)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "[[feed]]\nurl = \"{}\"",
            server.feed("cointelegraph.rss")
        )),
        "{text}"
    );
    assert!(
        text.contains("(JSON Feed, 3 entries; <link> on the page)"),
        "{text}"
    );
    assert!(
        text.contains("not a feed: ") && text.contains("malformed.xml: malformed feed"),
        "{text}"
    );
    assert_eq!(
        work.read("config.toml"),
        "[fetch]\ntimeout = \"2s\"\n",
        "nothing added without --add"
    );

    let out = work.run(&["discover", &page, "--add", "--json"]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["added"], server.feed("cointelegraph.rss"));
    let config = work.read("config.toml");
    assert!(
        config.starts_with("[fetch]\ntimeout = \"2s\"\n"),
        "{config}"
    );
    assert!(
        config.contains("title = \"Cointelegraph.com News\""),
        "{config}"
    );
    assert_ok(&work.run(&["check"]));

    // Asked again, it says the feed is there already and adds nothing.
    let out = work.run(&["discover", &page, "--add"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("# already in config.toml as"),
        "{}",
        stdout(&out)
    );
    assert_eq!(work.read("config.toml"), config);

    // A feed's own address is its own discovery.
    let out = work.run(&["discover", &server.feed("theblock.rdf")]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("(RSS 1.0, 2 entries; the address itself)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn discover_tries_common_paths_and_says_when_a_page_has_no_feed() {
    let server = FixtureServer::start();
    server.write(
        "plain.html",
        b"<html><head><title>no links</title></head><body>hi</body></html>",
    );
    let work = Workdir::new();
    let out = work.run(&["discover", &server.url("/plain.html")]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("no feed found at"), "{err}");
    assert!(err.contains("/feed, /rss, /feed.xml"), "{err}");
    assert!(!work.path("config.toml").exists(), "no config written");

    let fixture = std::fs::read(server.root.path().join("bitcoinmagazine.rss")).unwrap();
    server.write("rss.xml", &fixture);
    let out = work.run(&["discover", &server.url("/plain.html")]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("(RSS 0.9x, 2 entries; common path)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(&server.url("/rss.xml")),
        "{}",
        stdout(&out)
    );

    // The polling client's limits hold: deny_private refuses this machine.
    work.write_config("[fetch]\ndeny_private = true\n");
    let out = work.run(&["discover", &server.url("/plain.html")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("loopback address"),
        "{}",
        stderr(&out)
    );

    let out = work.run(&["discover", "ftp://example.com/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not an http(s) URL"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn refresh_asks_the_running_service_or_polls_only_the_named_feeds_itself() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds = [server.feed("decrypt.json"), server.feed("cryptoslate.rss")];
    let config = config_with(
        &[&feeds[0], &feeds[1]],
        "\n[server]\nlisten = \"127.0.0.1:0\"\n",
    )
    .replace("[fetch]\n", "[fetch]\ninterval = \"6h\"\n")
    .replace(
        &format!("url = \"{}\"", feeds[1]),
        &format!("url = \"{}\"\ntitle = \"CryptoSlate\"", feeds[1]),
    );
    work.write_config(&config);

    // No service: only the named feed is polled, here and now.
    let out = work.run(&["refresh", "cryptoslate"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("feeds: 1 ok"), "{}", stdout(&out));
    let paths: Vec<String> = server.hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(paths, ["/feeds/cryptoslate.rss"]);

    let out = work.run(&["refresh", "https://nowhere.example/feed"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no configured feed is \"https://nowhere.example/feed\""),
        "{}",
        stderr(&out)
    );

    let daemon = Daemon::start(&work, &[]);
    let polled = |path: &str| server.hits().iter().filter(|h| h.path == path).count();
    assert!(wait_until(Duration::from_secs(10), || polled(
        "/feeds/decrypt.json"
    ) == 1));
    // Both were polled within the last interval: nothing is due for hours.
    std::thread::sleep(Duration::from_millis(500));
    let before = polled("/feeds/cryptoslate.rss");

    let out = work.run(&["refresh", &feeds[1], "--json"]);
    assert_ok(&out);
    let reply: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(reply["polling"][0], feeds[1].as_str());
    assert!(
        wait_until(Duration::from_secs(10), || polled("/feeds/cryptoslate.rss")
            == before + 1),
        "{}",
        daemon.logs()
    );
    assert_eq!(polled("/feeds/decrypt.json"), 1, "only the named feed");

    let out = work.run(&["refresh"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("the service polls 2 feeds now"),
        "{}",
        stdout(&out)
    );
    assert!(wait_until(Duration::from_secs(10), || polled(
        "/feeds/decrypt.json"
    ) == 2));

    // Only the service's owner may use the socket, and it is gone once the service stops.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(work.path("aggregate.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut daemon = daemon;
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(10)).unwrap().success());
    assert!(!work.path("aggregate.sock").exists());
}

#[test]
fn backup_copies_the_database_consistently_and_vacuum_reclaims_space() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let urls: Vec<String> = ["coindesk.atom", "cointelegraph.rss", "decrypt.json"]
        .iter()
        .map(|n| server.feed(n))
        .collect();
    work.write_config(&config_with(
        &urls.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
    ));
    assert_ok(&work.run_once());

    let out = work.run(&["backup", "copy.db"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("(11 entries,"), "{}", stdout(&out));
    let original = work.store();
    let copy = Inspect::open(&work.path("copy.db"));
    assert_eq!(copy.entry_count().unwrap(), original.entry_count().unwrap());
    let names = |s: Vec<aggregate::store::FeedStatus>| -> Vec<(String, u64, Option<String>)> {
        s.into_iter().map(|s| (s.url, s.entries, s.title)).collect()
    };
    assert_eq!(
        names(copy.feed_statuses().unwrap()),
        names(original.feed_statuses().unwrap())
    );

    // A restored copy serves as the database: a pass on it finds everything there already.
    drop(copy);
    std::fs::rename(work.path("copy.db"), work.path("restored.db")).unwrap();
    let restored = config_with(&urls.iter().map(String::as_str).collect::<Vec<_>>(), "")
        .replace("aggregate.db", "restored.db");
    std::fs::write(work.path("restored.toml"), restored).unwrap();
    let out = work.run(&["--once", "--config", "restored.toml"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("entries: 0 new"), "{}", stdout(&out));

    let out = work.run(&["backup", "restored.db"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("restored.db already exists"),
        "{}",
        stderr(&out)
    );

    let out = work.run(&["vacuum"]);
    assert_ok(&out);
    assert!(
        stdout(&out).starts_with("vacuumed aggregate.db: "),
        "{}",
        stdout(&out)
    );
    original.integrity_check().unwrap();
}

#[test]
fn version_completions_and_quiet() {
    let work = Workdir::new();
    let out = work.run(&["--version"]);
    assert_ok(&out);
    let version = stdout(&out);
    assert!(
        version.starts_with(&format!("aggregate {} (", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains("commit"), "{version}");

    for shell in ["bash", "zsh", "fish"] {
        let out = work.run(&["completions", shell]);
        assert_ok(&out);
        let script = stdout(&out);
        for word in ["import", "discover", "refresh", "tags-from-categories"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = work.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(1));

    let server = FixtureServer::start();
    work.write_config(&config_with(&[&server.feed("decrypt.json")], ""));
    let out = work.run(&["--once", "-q"]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "", "quiet prints no summary");
    assert_eq!(work.store().entry_count().unwrap(), 3);
}

fn small_feed(items: &[(&str, &str)]) -> Vec<u8> {
    let items: String = items
        .iter()
        .map(|(guid, title)| {
            format!("<item><guid>{guid}</guid><title>{title}</title><link>https://news.example/{guid}</link><description>{title}, in full.</description></item>")
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>Small</title><link>https://news.example/</link>{items}</channel></rss>").into_bytes()
}

fn digest(path: &std::path::Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[test]
fn dry_run_says_what_would_change_and_writes_nothing() {
    let server = FixtureServer::start();
    server.write("small.rss", &small_feed(&[("a", "Exchange lists a token")]));
    let work = Workdir::new();
    let feeds = [server.feed("small.rss"), server.feed("decrypt.json")];
    let config = config_with(&[&feeds[0], &feeds[1]], "");
    work.write_config(&config);
    assert_ok(&work.run_once());

    // A new entry in one feed, and a rule that tags a stored story anew.
    server.write(
        "small.rss",
        &small_feed(&[
            ("a", "Exchange lists a token"),
            ("b", "Binance opens a Paris office"),
        ]),
    );
    let rule = "\n[[tag]]\nname = \"Listings\"\nkeywords = [\"lists\"]\n\n[[output]]\nname = \"listings\"\ntags = [\"Listings\"]\npath = \"out/listings.rss\"\n";
    work.write_config(&(config.clone() + rule));
    let db = digest(&work.path("aggregate.db"));
    let file = digest(&work.path("out/binance.rss"));
    let mtime = std::fs::metadata(work.path("out/binance.rss"))
        .unwrap()
        .modified()
        .unwrap();
    server.clear_hits();

    let out = work.run(&["--once", "--dry-run"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.starts_with("dry run: nothing was written\n"), "{text}");
    assert!(
        text.contains("feed Small: 1 new, 1 updated, 1 re-tagged"),
        "{text}"
    );
    assert!(
        text.contains("feed Decrypt: 0 new, 0 updated, 0 re-tagged"),
        "{text}"
    );
    assert!(
        text.contains("tag Listings gains 1 story:\n  + Exchange lists a token (Small)"),
        "{text}"
    );
    assert!(
        text.contains("output binance: would change: 1 new item, 0 updated, 0 leaving it\n  + Binance opens a Paris office (Small)"),
        "{text}"
    );
    assert!(
        text.contains("output listings: would change: 1 new item"),
        "{text}"
    );
    assert!(text.contains("would be feeds: 2 ok"), "{text}");
    // The polls were real ones (unconditional: new rules make stored validators no proof).
    assert_eq!(server.hits().len(), 2);

    assert_eq!(
        digest(&work.path("aggregate.db")),
        db,
        "the database is untouched"
    );
    assert_eq!(digest(&work.path("out/binance.rss")), file);
    assert_eq!(
        std::fs::metadata(work.path("out/binance.rss"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    assert!(
        !work.path("out/listings.rss").exists(),
        "no output file written"
    );

    // No validator was kept either: the real run after it finds the same changes.
    let real = work.run_once();
    assert_ok(&real);
    assert!(
        stdout(&real).contains("entries: 1 new, 1 updated"),
        "{}",
        stdout(&real)
    );
    assert!(
        work.read("out/listings.rss")
            .contains("Exchange lists a token")
    );

    // Before any run, a dry run creates no database.
    let fresh = Workdir::new();
    fresh.write_config(&config);
    let out = fresh.run(&["--once", "--dry-run"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("feed Small: 2 new"),
        "{}",
        stdout(&out)
    );
    assert!(!fresh.path("aggregate.db").exists());
    assert!(!fresh.path("out").exists());

    let pg = fresh.write_config("[storage]\nurl = \"host=/nowhere dbname=x\"\n");
    assert!(pg.exists());
    let out = fresh.run(&["--once", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--dry-run works on a copy of a SQLite database"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_diff_shows_what_a_config_change_does_to_stored_stories() {
    let server = FixtureServer::start();
    server.write(
        "small.rss",
        &small_feed(&[
            ("a", "Exchange lists a token"),
            ("b", "Binance opens a Paris office"),
        ]),
    );
    let work = Workdir::new();
    let old = config_with(
        &[&server.feed("small.rss"), &server.feed("decrypt.json")],
        "",
    );
    std::fs::write(work.path("old.toml"), &old).unwrap();
    work.write_config(&old);
    assert_ok(&work.run_once());
    let db = digest(&work.path("aggregate.db"));

    // The change under review: a new rule, Binance no longer matching "BNB", an output
    // dropped and one added, a feed dropped and one added.
    let new = config_with(
        &[&server.feed("small.rss"), &server.feed("cryptoslate.rss")],
        "",
    )
    .replace(
        "keywords = [\"Binance\", \"BNB\", \"Changpeng Zhao\"]",
        "keywords = [\"Paris\"]",
    )
    .replace(
        "[[output]]\nname = \"all-json\"\nlimit = 200\npath = \"out/all.json\"\n",
        "",
    ) + "\n[[tag]]\nname = \"Listings\"\nkeywords = [\"lists\"]\n\n[[output]]\nname = \"listings\"\ntags = [\"Listings\"]\n";
    work.write_config(&new);
    server.clear_hits();
    let out = work.run(&["check", "--diff", "--against", "old.toml"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("feed added: {}", server.feed("cryptoslate.rss"))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "feed removed: {} (no longer polled; its stories leave the outputs, and are kept until retention)",
            server.feed("decrypt.json")
        )),
        "{text}"
    );
    assert!(
        text.contains("tag Listings gains 1 story:\n  + Exchange lists a token (Small)"),
        "{text}"
    );
    // Decrypt's BNB story is not re-tagged: its feed is no longer polled.
    assert!(!text.contains("tag Binance loses"), "{text}");
    assert!(text.contains("output all-json: removed"), "{text}");
    assert!(text.contains("output listings: new, 1 items"), "{text}");
    assert!(
        text.contains("output all: would change: 0 new items, 0 updated, 3 leaving it\n  - Binance Completes 33rd Quarterly BNB Burn (Decrypt)"),
        "the dropped feed's stories leave: {text}"
    );
    assert!(server.hits().is_empty(), "nothing is fetched");
    assert_eq!(digest(&work.path("aggregate.db")), db, "nothing is written");

    // Without --against: feeds against what the database polled, outputs under this config.
    let out = work.run(&["check", "--diff"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("feed removed: "), "{text}");
    assert!(text.contains("tag Listings gains 1 story"), "{text}");
    assert!(
        text.contains("output listings: would change: 1 new item"),
        "{text}"
    );

    // A rule that drops a tag from a stored story of a feed still polled.
    let dropping = old.replace(
        "keywords = [\"Binance\", \"BNB\", \"Changpeng Zhao\"]",
        "keywords = [\"Changpeng Zhao\"]",
    );
    work.write_config(&dropping);
    let text = stdout(&work.run(&["check", "--diff"]));
    assert!(text.contains("tag Binance loses 2 stories:"), "{text}");
    assert!(
        text.contains("  - Binance opens a Paris office (Small)"),
        "{text}"
    );
    assert!(
        text.contains("output binance: would change: 0 new items, 0 updated, 2 leaving it"),
        "{text}"
    );

    let fresh = Workdir::new();
    fresh.write_config(&new);
    let out = fresh.run(&["check", "--diff"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("no database at aggregate.db yet"),
        "{}",
        stdout(&out)
    );
    assert!(!fresh.path("aggregate.db").exists());
    let out = fresh.run(&["check", "--against", "old.toml"]);
    assert_eq!(out.status.code(), Some(1), "--against needs --diff");
}
