//! A fresh PostgreSQL database per test, on the server `.ci/postgres.sh` starts (its
//! key=value connection string in AGGREGATE_TEST_POSTGRES). Without that server a test that
//! needs it is skipped, unless CI=true: then it fails, so CI never passes by skipping.

use std::process::Command;

/// The connection string of a new, empty database, or `None` (skipped) without a server.
pub fn fresh_database(prefix: &str) -> Option<String> {
    let Ok(base) = std::env::var("AGGREGATE_TEST_POSTGRES") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but AGGREGATE_TEST_POSTGRES is not set: .ci/run starts PostgreSQL"
        );
        eprintln!("skipped: no PostgreSQL (source .ci/postgres.sh to run this)");
        return None;
    };
    let name = format!("{prefix}_{:016x}", fastrand::u64(..));
    psql(&base, &format!("CREATE DATABASE {name}"));
    Some(format!("{base} dbname={name}"))
}

/// Runs one statement with psql, returning what it printed (unaligned, tuples only).
pub fn psql(conn: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            conn,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
