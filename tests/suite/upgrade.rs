//! Upgrades: a database written by the last release of schema 2 (`fixtures/upgrade/`, made by
//! `make-schema2.sh` from that commit) opened by this build. Every entry, guid, tag, tombstone
//! and feed state survives the migrations, also when the migrating process is killed at any
//! moment; a database from a newer build is refused with a clear error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

fn fixture() -> (PathBuf, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upgrade");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("schema2.json")).unwrap()).unwrap();
    (dir.join("schema2.db"), expected)
}

/// What the tables hold, in the dump's shape.
fn dump(db: &Path) -> Value {
    let conn = rusqlite::Connection::open(db).unwrap();
    let rows = |sql: &str| -> Value {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows: Vec<Value> = stmt
            .query_map([], |r| {
                Ok(Value::Array(
                    (0..n)
                        .map(|i| match r.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(v) => v.into(),
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned().into()
                            }
                            other => panic!("unexpected column {other:?}"),
                        })
                        .collect(),
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        Value::Array(rows)
    };
    serde_json::json!({
        "feeds": rows("SELECT url, title, body_hash, last_success, last_status, last_error, consecutive_failures FROM feeds ORDER BY url"),
        "entries": rows("SELECT f.url, e.key, e.guid, e.title, e.link FROM entries e JOIN feeds f ON f.id = e.feed_id ORDER BY f.url, e.key"),
        "tags": rows("SELECT e.guid, t.tag FROM entry_tags t JOIN entries e ON e.id = t.entry_id ORDER BY e.guid, t.tag"),
        "tombstones": rows("SELECT f.url, t.key FROM tombstones t JOIN feeds f ON f.id = t.feed_id ORDER BY f.url, t.key"),
    })
}

fn user_version(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// Everything the dump says, still there, and every entry in a story the outputs show.
fn assert_survived(db: &Path, expected: &Value) {
    let now = dump(db);
    for table in ["feeds", "entries", "tags", "tombstones"] {
        assert_eq!(
            now[table], expected[table],
            "{table} changed in the upgrade"
        );
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let loose: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM entries WHERE story_id IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(loose, 0, "every entry is in a story");
    let store = Inspect::open(db);
    let stories = store
        .stories(aggregate::model::StoryQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    let guids: std::collections::BTreeSet<&str> = expected["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[2].as_str().unwrap())
        .collect();
    assert!(!stories.is_empty());
    for s in &stories {
        assert!(
            guids.contains(s.guid.as_str()),
            "{} is a stored guid",
            s.guid
        );
    }
    store.integrity_check().unwrap();
}

#[test]
fn a_schema_2_database_migrates_with_everything_in_it() {
    let (db, expected) = fixture();
    assert_eq!(expected["user_version"], 2);
    let work = Workdir::new();
    let copy = work.path("aggregate.db");
    std::fs::copy(&db, &copy).unwrap();
    assert_eq!(
        dump(&copy)["entries"],
        expected["entries"],
        "the fixture is what its dump says"
    );

    // The binary opens it (here through `feeds`, which reads the migrated feed states).
    work.write_config("[storage]\npath = \"aggregate.db\"\n");
    let out = work.run(&["feeds", "--json"]);
    assert_ok(&out);
    assert!(user_version(&copy) > 2);
    assert_survived(&copy, &expected);
}

/// Killed while it migrates, at any moment: the next start migrates what is left, and nothing
/// is lost (each migration is one transaction that also moves the version).
#[test]
fn a_migration_killed_at_any_moment_is_finished_by_the_next_start() {
    let (db, expected) = fixture();
    let work = Workdir::new();
    work.write_config("[storage]\npath = \"aggregate.db\"\n");
    let copy = work.path("aggregate.db");
    let mut versions = Vec::new();
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        std::fs::copy(&db, &copy).unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(work.path(&format!("aggregate.db{suffix}")));
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aggregate"))
            .args(["vacuum", "--config", "config.toml"])
            .current_dir(work.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        versions.push(user_version(&copy));
        // The next start finishes the job.
        assert_ok(&work.run(&["feeds", "--json"]));
        assert_survived(&copy, &expected);
    }
    assert!(
        versions.iter().any(|v| *v == 2),
        "some kills came before any migration committed: {versions:?}"
    );
}

#[test]
fn a_database_from_a_newer_build_is_refused_and_left_alone() {
    let (db, _) = fixture();
    let work = Workdir::new();
    let copy = work.path("aggregate.db");
    std::fs::copy(&db, &copy).unwrap();
    rusqlite::Connection::open(&copy)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let before = dump(&copy);
    work.write_config("[storage]\npath = \"aggregate.db\"\n");
    let out = work.run(&["--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "database schema version 99 is newer than this build of aggregate understands"
        ),
        "{}",
        stderr(&out)
    );
    // Not migrated, nothing in it touched (opening it may switch its journal to WAL).
    assert_eq!(user_version(&copy), 99);
    assert!(dump(&copy) == before, "the newer database's rows changed");
}
