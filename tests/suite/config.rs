//! Bad configs are refused with an error that names the key; `aggregate check` describes a good one.

use crate::common::*;

fn refused(toml: &str) -> String {
    let work = Workdir::new();
    work.write_config(toml);
    let out = work.run_once();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad config is fatal\n{}",
        stderr(&out)
    );
    assert!(
        !work.path("aggregate.db").exists(),
        "nothing is created for a bad config"
    );
    stderr(&out)
}

#[test]
fn bad_configs_name_the_key_and_what_would_be_right() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[fetch]\nintervall = \"15m\"\n",
            &["intervall", "unknown field", "interval"],
        ),
        (
            "[fetch]\ninterval = \"soon\"\n",
            &["fetch.interval", "\"soon\"", "15m"],
        ),
        (
            "[fetch]\nconcurrency = \"many\"\n",
            &["concurrency", "invalid type"],
        ),
        (
            "[fetch]\nconcurrency = 0\n",
            &["fetch.concurrency", "1 to 10000"],
        ),
        (
            "[fetch]\nmax_body = \"10 parsecs\"\n",
            &["fetch.max_body", "10MiB"],
        ),
        (
            "[[feed]]\nurl = \"ftp://example.com/rss\"\n",
            &["feed[0].url", "http(s)"],
        ),
        (
            "[[feed]]\nurl = \"https://a.example/rss\"\n[[feed]]\nurl = \"https://a.example/rss\"\n",
            &["feed[1].url", "twice"],
        ),
        (
            "[[feed]]\nurl = \"https://a.example/\"\n\n[[feed]]\ntitle = \"no url\"\n",
            &["feed[1]: ", "line 4", "missing field `url`"],
        ),
        ("fetch = 3\n", &["expected the [fetch] table"]),
        (
            "[server]\nwebsub_hub = \"ftp://hub.example/\"\n",
            &[
                "server.websub_hub",
                "\"ftp://hub.example/\"",
                "is not an http(s) URL",
            ],
        ),
        (
            "[[output]]\nname = \"big\"\nlimit = 200000\npath = \"big.rss\"\n",
            &[
                "output[0].limit",
                "200000 is out of range; give 1 to 100000",
            ],
        ),
        (
            "[fetch]\ninterval = 15\n",
            &["interval", "expected a duration such as \"15m\""],
        ),
        (
            "[fetch]\ninterval = \"900000000y\"\n",
            &["fetch.interval", "too long: the largest accepted is 365d"],
        ),
        (
            "[[feed]]\nurl = \"https://a.example/\"\ninterval = \"2y\"\n",
            &["feed[0].interval", "the largest accepted is 365d"],
        ),
        (
            "[storage]\nretention = \"1000000d\"\n",
            &["storage.retention", "the largest accepted is 36500d"],
        ),
        (
            "[[feed]]\nurl = \"https://a.example/rss\"\n[[feed]]\nurl = \"http://a.example/rss/\"\n",
            &["feed[1].url", "twice"],
        ),
        (
            "[[output]]\nname = \"Binance\"\n[[output]]\nname = \"binance\"\n",
            &["output[1].name", "without regard to case"],
        ),
        ("[[tag]]\nname = \"\"\n", &["tag[0].name", "empty"]),
        (
            "[[tag]]\nname = \"X\"\nkeywords = [\"  \"]\n",
            &["tag[0].keywords", "empty keyword"],
        ),
        (
            "[[output]]\nname = \"../etc/passwd\"\n",
            &["output[0].name", "letters, digits"],
        ),
        (
            "[[output]]\nname = \"a\"\npath = \"out/a.html\"\n",
            &["output[0].path", ".xml or .rss"],
        ),
        (
            "[[output]]\nname = \"a\"\nlimit = 100000\n",
            &["output[0].limit", "1 to 1000"],
        ),
        (
            "[server]\nlisten = \"localhost\"\n",
            &["server.listen", "127.0.0.1:8080"],
        ),
        (
            "[storage]\nretention = \"0s\"\n",
            &["storage.retention", "zero"],
        ),
        (
            "[storage]\npath = \"a.db\"\nurl = \"host=/run/postgresql dbname=a\"\n",
            &["storage.url", "exclusive"],
        ),
        (
            "[storage]\npool = 4\n",
            &["storage.pool", "PostgreSQL only"],
        ),
        (
            "[storage]\nurl = \"postgres://secret-password@[bad\"\n",
            &["storage.url", "not a PostgreSQL address"],
        ),
        (
            "[storage]\nurl = \"host=/run/postgresql\"\npool = 0\n",
            &["storage.pool", "1 to 10000"],
        ),
        (
            "[dedup]\nthreshold = 2\n",
            &["dedup.threshold", "between 0 and 1"],
        ),
        (
            "[server]\nper_address = 0\n",
            &["server.per_address", "between 1 and 1024"],
        ),
        (
            "[dedup]\nmerge = \"titles\"\n",
            &["dedup.merge", "\"titles\"", "\"links\""],
        ),
        (
            "[dedup]\nmerge = \"links\"\nstories = true\n",
            &["dedup.stories", "contradicts dedup.merge"],
        ),
        (
            "[dedup]\nindex_stories = 5\n",
            &["dedup.index_stories", "between 100 and 10000000"],
        ),
        (
            "[dedup]\nwindow = \"soon\"\n",
            &["dedup.window", "\"soon\""],
        ),
        (
            "[dedup.aliases]\n\"a b c d e\" = \"x\"\n",
            &["dedup.aliases", "four words"],
        ),
        ("this is not toml", &["config.toml"]),
    ];
    for (toml, needles) in cases {
        let err = refused(toml);
        assert!(
            !err.contains("secret-password"),
            "a password is never repeated: {err}"
        );
        for needle in *needles {
            assert!(
                err.contains(needle),
                "for {toml:?}, expected {needle:?} in:\n{err}"
            );
        }
    }
}

#[test]
fn a_missing_config_file_is_named_and_its_error_said_once() {
    let work = Workdir::new();
    let out = work.run(&["--once", "--config", "nowhere.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("nowhere.toml"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn a_log_level_that_is_no_level_is_refused() {
    let work = Workdir::new();
    work.write_config("");
    let out = work.run(&["check", "--log-level", "bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid log level \"bogus\""),
        "{}",
        stderr(&out)
    );
    for good in [
        "debug",
        "WARN",
        "aggregate=debug",
        "info,aggregate::fetch=trace",
    ] {
        assert_ok(&work.run(&["check", "--log-level", good]));
    }
}

#[test]
fn check_warns_of_what_is_valid_but_not_meant() {
    let work = Workdir::new();
    work.write_config(&format!(
        "{TAG_RULES}\n[[output]]\nname = \"eth\"\ntags = [\"ethereum\", \"Etherium\"]\n"
    ));
    let out = work.run(&["check"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("warning: no [[feed]] is configured"),
        "{text}"
    );
    assert!(
        text.contains("warning: output \"eth\" selects tag \"Etherium\", which no [[tag]] rule"),
        "{text}"
    );
    assert!(
        !text.contains("tag \"ethereum\""),
        "a rule gives it: {text}"
    );
}

#[test]
fn an_unusable_database_is_fatal_and_named() {
    let work = Workdir::new();
    std::fs::create_dir(work.path("db-is-a-dir")).unwrap();
    work.write_config("[storage]\npath = \"db-is-a-dir\"\n");
    let out = work.run_once();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("database db-is-a-dir"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_prints_feeds_rules_and_outputs() {
    let work = Workdir::new();
    work.write_config(&config_with(&["https://cointelegraph.com/rss"], ""));
    let out = work.run(&["check", "--config", "config.toml"]);
    assert_ok(&out);
    let text = stdout(&out);
    for needle in [
        "config config.toml is valid",
        "https://cointelegraph.com/rss every 15m",
        "Binance: Binance, BNB, Changpeng Zhao",
        "binance \"binance\": tags any of [binance], newest 50 -> out/binance.rss",
        "all \"Everything\": all entries, newest 200 -> out/all.rss",
        "timeout 2s",
    ] {
        assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    }
    assert!(
        !work.path("aggregate.db").exists(),
        "check opens no database"
    );
}

#[test]
fn the_repository_configs_are_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    for cfg in ["config.toml", "fixtures/offline.toml"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_aggregate"))
            .args(["check", "--config", cfg])
            .current_dir(root)
            .output()
            .unwrap();
        assert_ok(&out);
    }
    let real =
        aggregate::config::Config::load(std::path::Path::new(&format!("{root}/config.toml")))
            .unwrap();
    assert!(
        real.feeds.len() >= 10,
        "the real setup subscribes to at least 10 feeds"
    );
    let rules: Vec<&str> = real.tags.rules().iter().map(|r| r.name.as_str()).collect();
    for needed in ["Binance", "Bitcoin", "Ethereum", "Blockchain", "Regulation"] {
        assert!(rules.contains(&needed), "missing tag rule {needed}");
    }
}

#[test]
fn help_documents_the_interface() {
    let work = Workdir::new();
    let out = work.run(&["--help"]);
    assert_ok(&out);
    let text = stdout(&out);
    for needle in [
        "--config",
        "--once",
        "--strict",
        "--log-level",
        "check",
        "Exit codes",
    ] {
        assert!(
            text.contains(needle),
            "expected {needle:?} in --help:\n{text}"
        );
    }
}

#[test]
fn usage_errors_exit_1_not_2() {
    let work = Workdir::new();
    for args in [&["--strict"][..], &["--no-such-flag"][..]] {
        let out = work.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(work.run(&["--version"]).status.code(), Some(0));
}
