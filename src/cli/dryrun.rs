//! `aggregate --once --dry-run`: a whole pass (fetch, parse, tag, dedup, store) run against a
//! throw-away copy of the database, then the copy compared with the database as it is: what
//! each feed would add and update, which stories would be re-tagged, which outputs would
//! change. The database, its validators and the output files are not touched; the copy lives
//! in a temporary directory and is deleted at the end.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::{log_report, print_failures, progress_bar};
use crate::config::Config;
use crate::fetch::Fetcher;
use crate::model::{Story, StoryQuery};
use crate::outputs::query_of;
use crate::pipeline::{Context, Gates, Outcome, Polled};
use crate::schedule::{self, PassSummary};
use crate::store::Store;

/// Stories compared for re-tagging: the newest this many, before and after.
const COMPARED: usize = 100_000;
/// Titles listed per output.
const LISTED: usize = 10;

pub async fn dry_run(config: Config, quiet: bool) -> anyhow::Result<ExitCode> {
    if config.storage.postgres.is_some() {
        anyhow::bail!(
            "--dry-run works on a copy of a SQLite database; a PostgreSQL one is shared and too large to copy per run. Try the change on a staging instance, or migrate a copy of the data into SQLite first"
        );
    }
    let scratch =
        tempfile::tempdir().context("cannot create a temporary directory for the copy")?;
    let copy_path = scratch.path().join("dry-run.db");
    let original = config.storage.path.clone();
    let before = if original.exists() {
        let store = Store::open_sqlite(&original, &config.dedup).await?;
        store
            .backup_into(&copy_path)
            .await
            .with_context(|| format!("cannot copy {} for the dry run", original.display()))?;
        Snapshot::of(&store, &config).await?
    } else {
        Snapshot::default()
    };

    let copy = Store::open_sqlite(&copy_path, &config.dedup).await?;
    crate::pipeline::record_config(&copy, &config).await?;
    let fetcher = Fetcher::new(&config.fetch).map_err(anyhow::Error::msg)?;
    let ctx = Context {
        gates: Gates::new(config.fetch.concurrency, copy.queue_depth()),
        store: copy.clone(),
        fetcher: Arc::new(fetcher),
        config: Arc::new(config),
    };
    let progress = progress_bar(ctx.config.feeds.len());
    let reports = schedule::run_pass(&ctx, |r| {
        progress.inc(1);
        progress.set_message(r.url.to_string());
        log_report(r);
    })
    .await;
    progress.finish_and_clear();
    let after = Snapshot::of(&copy, &ctx.config).await?;
    let titles: HashMap<String, String> = copy
        .feed_statuses()
        .await?
        .into_iter()
        .filter_map(|s| Some((s.url, s.title?)))
        .collect();
    drop(copy);

    print_failures(&reports);
    if !quiet {
        let mut s = String::from("dry run: nothing was written\n");
        for r in &reports {
            let name = r
                .title
                .clone()
                .or_else(|| titles.get(r.url.as_str()).cloned())
                .unwrap_or_else(|| r.url.to_string());
            let what = match &r.result {
                Ok(Polled {
                    outcome: Outcome::Stored(c),
                    ..
                }) => format!("{} new, {} updated", c.new, c.updated),
                Ok(Polled {
                    outcome: Outcome::NotModified | Outcome::Unchanged,
                    ..
                }) => "not modified".into(),
                Ok(Polled {
                    outcome: Outcome::Elsewhere { .. },
                    ..
                }) => "polled by another instance".into(),
                Err(e) => format!("failed: {e}"),
            };
            let _ = writeln!(s, "feed {name}: {what}");
        }
        s.push_str(&describe_changes(&before, &after, &ctx.config));
        let _ = writeln!(s, "would be {}", PassSummary::of(&reports));
        print!("{s}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What a database shows: its stories by guid, and each output's items in order.
#[derive(Default)]
struct Snapshot {
    stories: HashMap<String, Story>,
    outputs: HashMap<String, Vec<(String, chrono::DateTime<chrono::Utc>)>>,
}

impl Snapshot {
    async fn of(store: &Store, config: &Config) -> anyhow::Result<Snapshot> {
        let all = store
            .stories(StoryQuery {
                limit: COMPARED,
                ..Default::default()
            })
            .await?;
        let mut outputs = HashMap::new();
        for o in &config.outputs {
            let items = store.stories(query_of(o)).await?;
            outputs.insert(
                o.name.clone(),
                items.into_iter().map(|s| (s.guid, s.changed)).collect(),
            );
        }
        Ok(Snapshot {
            stories: all.into_iter().map(|s| (s.guid.clone(), s)).collect(),
            outputs,
        })
    }
}

/// Re-tagged stories and changed outputs, before → after.
fn describe_changes(before: &Snapshot, after: &Snapshot, config: &Config) -> String {
    let mut s = String::new();
    let key = |t: &crate::model::Tag| t.key();
    let mut retagged: Vec<(&Story, Vec<String>)> = Vec::new();
    for (guid, new) in &after.stories {
        let Some(old) = before.stories.get(guid) else {
            continue;
        };
        let old_tags: Vec<String> = old.tags.iter().map(key).collect();
        let new_tags: Vec<String> = new.tags.iter().map(key).collect();
        let mut changes: Vec<String> = new
            .tags
            .iter()
            .filter(|t| !old_tags.contains(&t.key()))
            .map(|t| format!("+{}", t.0))
            .collect();
        changes.extend(
            old.tags
                .iter()
                .filter(|t| !new_tags.contains(&t.key()))
                .map(|t| format!("-{}", t.0)),
        );
        if !changes.is_empty() {
            retagged.push((new, changes));
        }
    }
    retagged.sort_by(|a, b| b.0.updated.cmp(&a.0.updated));
    if !retagged.is_empty() {
        let _ = writeln!(s, "re-tagged stories ({}):", retagged.len());
        for (story, changes) in retagged.iter().take(LISTED * 2) {
            let _ = writeln!(
                s,
                "  {} [{}] ({})",
                story.primary.entry.title,
                changes.join(" "),
                story.primary.source.title
            );
        }
    }
    for o in &config.outputs {
        let old = before
            .outputs
            .get(&o.name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let new = after.outputs.get(&o.name).map(Vec::as_slice).unwrap_or(&[]);
        if old == new {
            let _ = writeln!(s, "output {}: unchanged", o.name);
            continue;
        }
        let added: Vec<&String> = new
            .iter()
            .map(|(g, _)| g)
            .filter(|g| !old.iter().any(|(o, _)| o == *g))
            .collect();
        let changed = new
            .iter()
            .filter(|(g, t)| old.iter().any(|(o, ot)| o == g && ot != t))
            .count();
        let dropped = old
            .iter()
            .filter(|(g, _)| !new.iter().any(|(n, _)| n == g))
            .count();
        let _ = writeln!(
            s,
            "output {}: would change: {} new item{}, {changed} updated, {dropped} leaving it",
            o.name,
            added.len(),
            if added.len() == 1 { "" } else { "s" }
        );
        for guid in added.iter().take(LISTED) {
            if let Some(story) = after.stories.get(*guid) {
                let _ = writeln!(
                    s,
                    "  + {} ({})",
                    story.primary.entry.title, story.primary.source.title
                );
            }
        }
        if added.len() > LISTED {
            let _ = writeln!(s, "  … and {} more", added.len() - LISTED);
        }
    }
    s
}
