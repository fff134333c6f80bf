//! Faults: the process killed mid-pass, another process holding the database, a full disk.
//! Nothing committed is lost, the database stays sound, errors say what happened.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::daemon::{Daemon, wait_until};
use crate::common::*;

/// `copies` distinct feeds on the fixture server, each a slow copy of cointelegraph (5 entries).
fn slow_feeds(server: &FixtureServer, copies: usize) -> Vec<String> {
    (0..copies)
        .map(|i| server.url(&format!("/slow/1/cointelegraph.rss?copy={i}")))
        .collect()
}

#[test]
fn sigkill_mid_pass_loses_nothing_committed_and_the_next_run_completes() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds = slow_feeds(&server, 16);
    let config = config_with(&feeds.iter().map(String::as_str).collect::<Vec<_>>(), "")
        .replace("per_host = 8", "per_host = 2");
    work.write_config(&config);
    let mut committed = 0;
    for delay_ms in [150, 1300, 2600, 3900, 5200] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aggregate"))
            .args(["--once", "--config", "config.toml"])
            .current_dir(work.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !work.path("aggregate.db").exists() {
            continue;
        }
        let store = work.store();
        store
            .integrity_check()
            .unwrap_or_else(|e| panic!("after a kill at {delay_ms} ms: {e}"));
        let now = store.entry_count().unwrap();
        assert!(
            now >= committed,
            "entries committed before a kill were lost: {committed} → {now}"
        );
        assert_eq!(now % 5, 0, "a feed's batch is all or nothing");
        committed = now;
    }
    let run = work.run_once();
    assert_ok(&run);
    assert_eq!(work.store().entry_count().unwrap(), 16 * 5);
    assert_eq!(
        work.titles("out/all.rss").len(),
        5,
        "16 copies of one feed are 5 stories"
    );
}

#[test]
fn a_locked_database_is_a_clear_error_after_a_bounded_wait() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(&[&server.feed("theblock.rdf")], ""));
    assert_ok(&work.run_once());

    let holder = rusqlite::Connection::open(work.path("aggregate.db")).unwrap();
    holder
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO tags (key, display) VALUES ('held', 'held');")
        .unwrap();
    let started = Instant::now();
    let run = work.run_once();
    let waited = started.elapsed();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("locked by another process"),
        "{}",
        stderr(&run)
    );
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(15),
        "waited {waited:?}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_ok(&work.run_once());
    assert_eq!(work.store().entry_count().unwrap(), 2);
}

#[test]
fn a_full_disk_fails_the_writes_cleanly_and_loses_nothing() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    work.write_config(&config_with(
        &[
            &server.feed("theblock.rdf"),
            &server.feed("cointelegraph.rss"),
        ],
        "",
    ));
    assert_ok(&work.run_once());
    let before = work.store().entry_count().unwrap();

    // A feed far larger than what the file-size limit lets the database grow by.
    server.write("big.rss", big_feed(400).as_bytes());
    work.write_config(
        &config_with(
            &[
                &server.feed("theblock.rdf"),
                &server.feed("cointelegraph.rss"),
                &server.feed("big.rss"),
            ],
            "",
        )
        .replace("max_body = \"1MiB\"", "max_body = \"4MiB\""),
    );
    let db_kib = std::fs::metadata(work.path("aggregate.db")).unwrap().len() / 1024;
    let limited = Command::new("bash")
        .args([
            "-c",
            &format!(
                "ulimit -f {}; exec \"$0\" --once --config config.toml",
                db_kib + 64
            ),
            env!("CARGO_BIN_EXE_aggregate"),
        ])
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    let err = stderr(&limited);
    let line = line_about(&err, "big.rss");
    assert!(
        line.contains("disk is full") || line.contains("disk full"),
        "the failure names the cause: {line}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let store = work.store();
    store.integrity_check().unwrap();
    assert_eq!(
        store.entry_count().unwrap(),
        before,
        "what was stored is still there, the big batch rolled back"
    );
    drop(store);
    let run = work.run_once();
    assert_ok(&run);
    assert_eq!(work.store().entry_count().unwrap(), before + 400);
}

#[test]
fn the_daemon_keeps_serving_when_the_disk_fills_up() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let config = config_with(&[&server.feed("cointelegraph.rss")], "")
        .replace(
            "[storage]",
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]",
        )
        .replace("[fetch]\n", "[fetch]\ninterval = \"1s\"\n")
        .replace("max_body = \"1MiB\"", "max_body = \"4MiB\"");
    work.write_config(&config);
    assert_ok(&work.run_once());
    let db = std::fs::metadata(work.path("aggregate.db")).unwrap().len();
    let d = Daemon::start_with(&work, &[], Some(db + 64 * 1024));
    server.write("cointelegraph.rss", big_feed(400).as_bytes());
    let failed = wait_until(Duration::from_secs(15), || {
        d.logs().contains("disk I/O error") || d.logs().contains("disk is full")
    });
    assert!(failed, "the write failure is logged:\n{}", d.logs());
    let served = d.get("/feeds/all.rss");
    assert_eq!(served.status, 200, "still serving");
    assert_eq!(titles_count(&served.body), 5, "what it had");
    assert_eq!(d.get("/healthz").status, 200);
    drop(d);
    work.store().integrity_check().unwrap();
    assert_eq!(work.store().entry_count().unwrap(), 5);
}

fn titles_count(body: &[u8]) -> usize {
    feed_rs::parser::parse(body)
        .map(|f| f.entries.len())
        .unwrap_or(0)
}
