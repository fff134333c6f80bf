//! The soak harness's short version (`bench/soak.py`, two minutes, 60 feeds polled every 10 s,
//! a minute of retention): the same checks on trends as the long run in BENCHMARKS.md, no
//! growth of memory or descriptors after warm-up, a bounded WAL and database, polls that do
//! not slow down, no error of the service's own, and a clean SIGTERM.

use std::process::Command;

#[test]
fn two_minutes_of_changing_feeds_leave_no_trend() {
    let out = std::env::temp_dir().join(format!("aggregate-soak-{}", std::process::id()));
    let run = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/soak.py"))
        .args(["--binary", env!("CARGO_BIN_EXE_aggregate")])
        .args(["--minutes", "2", "--feeds", "60", "--interval", "10s"])
        .args(["--retention", "1m", "--sample", "3"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run python3 bench/soak.py");
    let report = String::from_utf8_lossy(&run.stdout);
    let summary: serde_json::Value = serde_json::from_str(&report).unwrap_or_else(|e| {
        panic!(
            "no summary ({e}):\n{report}\n{}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    assert!(
        run.status.success(),
        "the soak's targets failed: {}\n{report}",
        summary["failures"]
    );
    assert!(summary["polls"].as_u64().unwrap() > 400, "{report}");
    assert!(summary["served"].as_u64().unwrap() > 1000, "{report}");
    let _ = std::fs::remove_dir_all(&out);
}
