//! Broken and hostile servers: each is its feed's clear error, bounded in time; the others go on.

use std::time::{Duration, Instant};

use crate::common::evil::EvilServer;
use crate::common::*;

#[test]
fn each_misbehaving_server_is_a_bounded_clear_error() {
    let evil = EvilServer::start();
    let work = Workdir::new();
    let paths = [
        "/never",
        "/trickle",
        "/close-mid-body",
        "/short-length",
        "/empty",
        "/garbage",
        "/endless-headers",
        "/ok",
    ];
    let feeds: Vec<String> = paths.iter().map(|p| evil.url(p)).collect();
    work.write_config(&config_with(
        &feeds.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
    ));
    let started = Instant::now();
    let run = work.run_once();
    assert_ok(&run);
    // All run at once and each is cut at the 2 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    let err = stderr(&run);
    let line = |p: &str| line_about(&err, &format!("{}:", evil.url(p))).to_string();
    assert!(line("/never").contains("timed out after 2s"), "{err}");
    assert!(line("/trickle").contains("timed out after 2s"), "{err}");
    assert!(
        line("/endless-headers").contains("timed out after 2s"),
        "{err}"
    );
    assert!(
        line("/close-mid-body").contains("reading the body failed"),
        "{err}"
    );
    assert!(line("/short-length").contains("malformed feed"), "{err}");
    assert!(line("/empty").contains("the body is empty"), "{err}");
    assert!(line("/garbage").contains("connection failed"), "{err}");
    assert!(
        stdout(&run).contains("feeds: 1 ok, 0 not modified, 7 failed; entries: 1 new"),
        "{}",
        stdout(&run)
    );
}

#[test]
fn deny_private_refuses_local_files_loopback_names_and_literals() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let by_name = server
        .feed("decrypt.json")
        .replace("127.0.0.1", "localhost");
    let file = format!(
        "file://{}/fixtures/feeds/theblock.rdf",
        env!("CARGO_MANIFEST_DIR")
    );
    let feeds = [server.feed("theblock.rdf"), by_name.clone(), file.clone()];
    let config = config_with(&feeds.iter().map(String::as_str).collect::<Vec<_>>(), "")
        .replace("[fetch]\n", "[fetch]\ndeny_private = true\n");
    work.write_config(&config);
    let run = work.run_once();
    assert_ok(&run);
    let err = stderr(&run);
    let line = |url: &str| line_about(&err, &format!("{url}:")).to_string();
    assert!(
        line(&server.feed("theblock.rdf"))
            .contains("refused: 127.0.0.1 is a loopback address (fetch.deny_private)"),
        "{err}"
    );
    assert!(
        line(&by_name).contains("refused: localhost resolves to a loopback address"),
        "{err}"
    );
    assert!(
        line(&file).contains("is not an http(s) URL (fetch.deny_private)"),
        "{err}"
    );
    assert!(
        server.hits().is_empty(),
        "nothing reached the private server"
    );
    assert_eq!(work.store().entry_count().unwrap(), 0);
}
