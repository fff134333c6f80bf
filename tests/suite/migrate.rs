//! `aggregate migrate --to`: a SQLite database made by this release, copied into PostgreSQL,
//! then used there. Skipped without the test PostgreSQL, failed instead under CI.

use crate::common::postgres::{fresh_database, psql};
use crate::common::*;

const FEEDS: &[&str] = &[
    "coindesk.atom",
    "cointelegraph.rss",
    "decrypt.json",
    "theblock.rdf",
    "cryptoslate.rss",
    "bitcoinmagazine.rss",
];

fn on_postgres(config: &str, db: &str) -> String {
    config.replace("path = \"aggregate.db\"", &format!("url = \"{db}\""))
}

#[test]
fn a_migrated_database_publishes_the_same_feeds_byte_for_byte() {
    let Some(db) = fresh_database("migrate") else {
        return;
    };
    let server = FixtureServer::start();
    let urls: Vec<String> = FEEDS.iter().map(|f| server.feed(f)).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let sqlite = Workdir::new();
    let config = config_with(&urls, "");
    sqlite.write_config(&config);
    assert_ok(&sqlite.run_once());

    let out = sqlite.run(&["migrate", "--config", "config.toml", "--to", &db]);
    assert_ok(&out);
    assert!(stdout(&out).contains("entries"), "{}", stdout(&out));
    let entries = sqlite.store().entry_count().unwrap();
    assert_eq!(
        psql(&db, "SELECT COUNT(*) FROM entries"),
        entries.to_string()
    );

    // The same feeds, unchanged, polled again on PostgreSQL: nothing new, the same items.
    let pg = Workdir::new();
    pg.write_config(&on_postgres(&config, &db));
    let out = pg.run_once();
    assert_ok(&out);
    assert!(
        stdout(&out).contains("0 new") || stderr(&out).contains("0 new"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    for file in [
        "out/all.rss",
        "out/all.atom",
        "out/all.json",
        "out/binance.rss",
    ] {
        assert_eq!(
            sqlite.read(file),
            pg.read(file),
            "{file} differs after the move"
        );
    }
    // A second migration into it is refused: it is no longer empty.
    let again = sqlite.run(&["migrate", "--config", "config.toml", "--to", &db]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("empty database"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn tombstones_and_feed_states_survive_the_move() {
    let Some(db) = fresh_database("tombstones") else {
        return;
    };
    let server = FixtureServer::start();
    let urls = [server.feed("cointelegraph.rss"), server.url("/status/503")];
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let sqlite = Workdir::new();
    let config = config_with(&urls, "").replace(
        "path = \"aggregate.db\"",
        "path = \"aggregate.db\"\nretention = \"1s\"",
    );
    sqlite.write_config(&config);
    sqlite.run_once();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    // Nothing new; the sweep after this pass leaves a tombstone for every entry.
    sqlite.run_once();
    assert_eq!(sqlite.store().entry_count().unwrap(), 0);
    assert_ok(&sqlite.run(&["migrate", "--config", "config.toml", "--to", &db]));
    let tombstones = psql(&db, "SELECT COUNT(*) FROM tombstones");
    assert_ne!(tombstones, "0");
    let failing = psql(
        &db,
        "SELECT consecutive_failures, last_error FROM feeds WHERE url LIKE '%/status/503'",
    );
    assert!(
        failing.starts_with("2|HTTP 503"),
        "the failing feed's state: {failing}"
    );

    let pg = Workdir::new();
    pg.write_config(&on_postgres(&config, &db).replace("retention = \"1s\"", ""));
    let out = pg.run_once();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains("0 new"),
        "pruned entries do not come back: {said}"
    );
    assert_eq!(psql(&db, "SELECT COUNT(*) FROM entries"), "0");
}
