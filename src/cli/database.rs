//! The subcommands that read or look after the database: `feeds` (every feed's health, for a
//! terminal or a script), `backup` and `vacuum`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::EXIT_FEED_FAILED;
use super::subscriptions::has_database;
use crate::config::Config;
use crate::model::relative_time;
use crate::store::{FeedStatus, Health, Store};

/// One configured feed as `aggregate feeds` shows it.
#[derive(Debug, Serialize)]
struct FeedRow {
    /// As configured.
    url: String,
    /// Where it is polled now (after a permanent redirect).
    polled_url: String,
    title: Option<String>,
    #[serde(skip)]
    state: Health,
    health: &'static str,
    entries: u64,
    consecutive_failures: u32,
    last_status: Option<u16>,
    last_attempt: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_note: Option<String>,
    next_poll: Option<DateTime<Utc>>,
}

/// `aggregate feeds [--failing] [--json]`.
pub async fn feeds(config: &Config, failing: bool, json: bool) -> anyhow::Result<ExitCode> {
    let statuses = if has_database(config) {
        Store::open(&config.storage, &config.dedup)
            .await?
            .feed_statuses()
            .await?
    } else {
        eprintln!(
            "note: no database at {} yet: no feed has been polled",
            config.storage.path.display()
        );
        Vec::new()
    };
    let rows: Vec<FeedRow> = config
        .feeds
        .iter()
        .map(|f| {
            let url = f.url.to_string();
            let status = statuses.iter().find(|s| s.url == url);
            row(url, f.title.clone(), status)
        })
        .filter(|r| !failing || matches!(r.state, Health::Failing | Health::Gone))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows, Utc::now()));
    }
    Ok(if failing && !rows.is_empty() {
        ExitCode::from(EXIT_FEED_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn row(url: String, configured_title: Option<String>, s: Option<&FeedStatus>) -> FeedRow {
    let health = s.map(FeedStatus::health).unwrap_or(Health::NotPolled);
    FeedRow {
        polled_url: s
            .map(|s| s.polled_url().to_string())
            .unwrap_or_else(|| url.clone()),
        url,
        title: configured_title.or_else(|| s.and_then(|s| s.title.clone())),
        state: health,
        health: health.label(),
        entries: s.map_or(0, |s| s.entries),
        consecutive_failures: s.map_or(0, |s| s.consecutive_failures),
        last_status: s.and_then(|s| s.last_status),
        last_attempt: s.and_then(|s| s.last_attempt),
        last_success: s.and_then(|s| s.last_success),
        last_error: s.and_then(|s| s.last_error.clone()),
        last_note: s.and_then(|s| s.last_note.clone()),
        // A gone feed is not polled again.
        next_poll: s.filter(|s| !s.gone).and_then(|s| s.next_poll),
    }
}

/// Aligned columns, one feed a line, its error at the end of the line.
fn table(rows: &[FeedRow], now: DateTime<Utc>) -> String {
    use std::fmt::Write;
    let when = |t: Option<DateTime<Utc>>| t.map_or("never".into(), |t| relative_time(t, now));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>7} {:>5}  {:<12} {:<12} FEED",
        "HEALTH", "ENTRIES", "FAILS", "LAST OK", "NEXT POLL"
    );
    for r in rows {
        let name = match &r.title {
            Some(t) => format!("{t} <{}>", r.polled_url),
            None => r.polled_url.clone(),
        };
        let next = match r.next_poll {
            Some(t) if t <= now => "due".to_string(),
            Some(t) => relative_time(t, now),
            None if r.state == Health::Gone => "never (410)".into(),
            None => "-".into(),
        };
        let error = r
            .last_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<14} {:>7} {:>5}  {:<12} {:<12} {name}{error}",
            r.health,
            r.entries,
            r.consecutive_failures,
            when(r.last_success),
            next
        );
    }
    s
}

/// `aggregate backup PATH`: a consistent copy, checked by opening it.
pub async fn backup(config: &Config, to: &Path, quiet: bool) -> anyhow::Result<ExitCode> {
    if !has_database(config) {
        anyhow::bail!(
            "no database at {}: nothing to back up",
            config.storage.path.display()
        );
    }
    if to.exists() {
        anyhow::bail!(
            "{} already exists: give a new file for the backup",
            to.display()
        );
    }
    let store = Store::open(&config.storage, &config.dedup).await?;
    store
        .backup_into(to)
        .await
        .with_context(|| format!("cannot back up into {}", to.display()))?;
    // Proof the copy is whole: it opens, and SQLite finds nothing wrong in it.
    let copy = Store::open_sqlite(to, &config.dedup)
        .await
        .with_context(|| format!("the backup {} does not open", to.display()))?;
    copy.integrity_check()
        .await
        .with_context(|| format!("the backup {} is damaged", to.display()))?;
    let entries = copy.entry_count().await?;
    if !quiet {
        println!(
            "backed up {} into {} ({entries} entries, {})",
            config.storage.path.display(),
            to.display(),
            size(to)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `aggregate vacuum`.
pub async fn vacuum(config: &Config, quiet: bool) -> anyhow::Result<ExitCode> {
    let path = &config.storage.path;
    let sqlite = config.storage.postgres.is_none();
    if !has_database(config) {
        anyhow::bail!("no database at {}: nothing to vacuum", path.display());
    }
    let before = sqlite.then(|| size(path));
    let store = Store::open(&config.storage, &config.dedup).await?;
    store.vacuum().await.context("vacuum failed")?;
    if !quiet {
        match before {
            Some(before) => println!(
                "vacuumed {}: {before} before, {} now",
                path.display(),
                size(path)
            ),
            None => println!("vacuumed and analysed the PostgreSQL database"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn size(path: &Path) -> String {
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}
