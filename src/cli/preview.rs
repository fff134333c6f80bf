//! Seeing a change before it happens, on a throw-away copy of the database (in a temporary
//! directory, deleted at the end) compared with the database as it is:
//! - `aggregate --once --dry-run`: a whole pass (fetch, parse, tag, dedup, store) on the copy:
//!   what each feed would add and update, the stories that would gain or lose each tag, the
//!   outputs that would change;
//! - `aggregate check --diff [--against OLD]`: a config's tag rules and feed tags applied to
//!   every stored entry of the copy, its outputs selected from it: tags gained and lost,
//!   outputs changed, feeds added and removed. No network.
//!
//! The database, its validators and the output files are never touched.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use super::print_failures;
use crate::config::{Config, OutputConfig};
use crate::model::{Story, StoryQuery};
use crate::outputs::query_of;
use crate::pipeline::{Outcome, Polled};
use crate::schedule::PassSummary;
use crate::store::Store;

/// Stories compared for re-tagging: the newest this many, before and after.
const COMPARED: usize = 100_000;
/// Titles listed per output.
const LISTED: usize = 10;

/// A copy of the configured SQLite database in a temporary directory, and a snapshot of the
/// original (with `outputs`' selections) taken from the same moment.
struct Scratch {
    /// Removed, with the copy, when dropped.
    _dir: tempfile::TempDir,
    copy: Store,
    before: Snapshot,
    /// Whether there was a database to copy.
    existed: bool,
}

async fn scratch(config: &Config, what: &str, outputs: &[OutputConfig]) -> anyhow::Result<Scratch> {
    if config.storage.postgres.is_some() {
        anyhow::bail!(
            "{what} works on a copy of a SQLite database; a PostgreSQL one is shared and too large to copy per run. Try the change on a staging instance, or migrate a copy of the data into SQLite first"
        );
    }
    let dir = tempfile::tempdir().context("cannot create a temporary directory for the copy")?;
    let copy_path = dir.path().join("preview.db");
    let original = &config.storage.path;
    let existed = original.exists();
    let before = if existed {
        let store = Store::open_sqlite(original, &config.dedup).await?;
        store
            .backup_into(&copy_path)
            .await
            .with_context(|| format!("cannot copy {} for {what}", original.display()))?;
        Snapshot::of(&store, outputs).await?
    } else {
        Snapshot::default()
    };
    let copy = Store::open_sqlite(&copy_path, &config.dedup).await?;
    crate::pipeline::record_config(&copy, config).await?;
    Ok(Scratch {
        _dir: dir,
        copy,
        before,
        existed,
    })
}

pub async fn dry_run(config: Config, quiet: bool) -> anyhow::Result<ExitCode> {
    let Scratch {
        _dir, copy, before, ..
    } = scratch(&config, "--dry-run", &config.outputs).await?;
    let ctx = super::context_on(copy.clone(), config)?;
    let reports = super::pass(&ctx).await;
    let after = Snapshot::of(&copy, &ctx.config.outputs).await?;
    let titles: HashMap<String, String> = copy
        .feed_statuses()
        .await?
        .into_iter()
        .filter_map(|s| Some((s.url, s.title?)))
        .collect();
    drop(copy);

    print_failures(&reports);
    if !quiet {
        let retagged = retagged_by_feed(&before, &after);
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
                }) => format!(
                    "{} new, {} updated, {} re-tagged",
                    c.new,
                    c.updated,
                    retagged.get(r.url.as_str()).copied().unwrap_or(0)
                ),
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
        s.push_str(&describe_changes(&before, &after, &ctx.config.outputs));
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
    async fn of(store: &Store, outputs: &[OutputConfig]) -> anyhow::Result<Snapshot> {
        let all = store
            .stories(StoryQuery {
                limit: COMPARED,
                ..Default::default()
            })
            .await?;
        let mut selected = HashMap::new();
        for o in outputs {
            let items = store.stories(query_of(o)).await?;
            selected.insert(
                o.name.clone(),
                items.into_iter().map(|s| (s.guid, s.changed)).collect(),
            );
        }
        Ok(Snapshot {
            stories: all.into_iter().map(|s| (s.guid.clone(), s)).collect(),
            outputs: selected,
        })
    }
}

/// Tags gained and lost, and outputs changed, before → after. Outputs are `outputs` (the
/// new config's); one of the snapshot before that is not among them is said to be removed.
fn describe_changes(before: &Snapshot, after: &Snapshot, outputs: &[OutputConfig]) -> String {
    let mut s = describe_tags(before, after);
    s.push_str(&describe_outputs(before, after, outputs));
    s
}

/// Each tag with the stories that would gain it, then those that would lose it.
fn describe_tags(before: &Snapshot, after: &Snapshot) -> String {
    let mut s = String::new();
    // Tag (display spelling) to the stories gaining it, and to those losing it.
    let mut gained: BTreeMap<String, Vec<&Story>> = BTreeMap::new();
    let mut lost: BTreeMap<String, Vec<&Story>> = BTreeMap::new();
    for (guid, new) in &after.stories {
        let Some(old) = before.stories.get(guid) else {
            continue;
        };
        let has = |tags: &[crate::model::Tag], t: &crate::model::Tag| {
            tags.iter().any(|o| o.key() == t.key())
        };
        for t in new.tags.iter().filter(|t| !has(&old.tags, t)) {
            gained.entry(t.0.clone()).or_default().push(new);
        }
        for t in old.tags.iter().filter(|t| !has(&new.tags, t)) {
            lost.entry(t.0.clone()).or_default().push(new);
        }
    }
    for (sign, verb, map) in [('+', "gains", &mut gained), ('-', "loses", &mut lost)] {
        for (tag, stories) in map.iter_mut() {
            stories.sort_by(|a, b| b.updated.cmp(&a.updated));
            let n = stories.len();
            let _ = writeln!(
                s,
                "tag {tag} {verb} {n} stor{}:",
                if n == 1 { "y" } else { "ies" }
            );
            for story in stories.iter().take(LISTED) {
                let _ = writeln!(s, "  {sign} {}", title_of(story));
            }
            if n > LISTED {
                let _ = writeln!(s, "  … and {} more", n - LISTED);
            }
        }
    }
    s
}

/// Outputs removed, new, unchanged, or changed with the items coming and leaving.
fn describe_outputs(before: &Snapshot, after: &Snapshot, outputs: &[OutputConfig]) -> String {
    let mut s = String::new();
    for name in before.outputs.keys() {
        if !outputs.iter().any(|o| &o.name == name) {
            let _ = writeln!(s, "output {name}: removed (its file, if any, is deleted)");
        }
    }
    for o in outputs {
        let new = after.outputs.get(&o.name).map(Vec::as_slice).unwrap_or(&[]);
        let Some(old) = before.outputs.get(&o.name).map(Vec::as_slice) else {
            let _ = writeln!(s, "output {}: new, {} items", o.name, new.len());
            continue;
        };
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
        let leaving: Vec<&String> = old
            .iter()
            .map(|(g, _)| g)
            .filter(|g| !new.iter().any(|(n, _)| n == *g))
            .collect();
        let _ = writeln!(
            s,
            "output {}: would change: {} new item{}, {changed} updated, {} leaving it",
            o.name,
            added.len(),
            if added.len() == 1 { "" } else { "s" },
            leaving.len()
        );
        for (sign, guids, from) in [('+', &added, after), ('-', &leaving, before)] {
            for guid in guids.iter().take(LISTED) {
                if let Some(story) = from.stories.get(*guid) {
                    let _ = writeln!(s, "  {sign} {}", title_of(story));
                }
            }
            if guids.len() > LISTED {
                let _ = writeln!(s, "  … and {} more", guids.len() - LISTED);
            }
        }
    }
    s
}

/// Stories whose tags would change, counted by the feed of their lead.
fn retagged_by_feed<'a>(before: &Snapshot, after: &'a Snapshot) -> HashMap<&'a str, usize> {
    let keys = |s: &Story| {
        let mut k: Vec<String> = s.tags.iter().map(|t| t.key()).collect();
        k.sort();
        k
    };
    let mut counts = HashMap::new();
    for (guid, new) in &after.stories {
        if before
            .stories
            .get(guid)
            .is_some_and(|old| keys(old) != keys(new))
        {
            *counts
                .entry(new.primary.source.feed_url.as_str())
                .or_insert(0) += 1;
        }
    }
    counts
}

/// Feeds in `now` and not in `had`, and the other way round.
fn describe_feeds(had: &[String], now: &[String]) -> String {
    let mut s = String::new();
    for url in now.iter().filter(|u| !had.contains(u)) {
        let _ = writeln!(s, "feed added: {url}");
    }
    for url in had.iter().filter(|u| !now.contains(u)) {
        let _ = writeln!(
            s,
            "feed removed: {url} (no longer polled; its stories leave the outputs, and are kept until retention)"
        );
    }
    s
}

fn title_of(story: &Story) -> String {
    format!(
        "{} ({})",
        story.primary.entry.title, story.primary.source.title
    )
}

/// `aggregate check --diff [--against OLD]`: what `config` would do to what is stored.
pub async fn check_diff(config: &Config, against: Option<&Config>) -> anyhow::Result<ExitCode> {
    // Outputs as they are selected now: the old config's when it is given.
    let old_outputs = against.map_or(&config.outputs, |old| &old.outputs);
    let Scratch {
        _dir,
        copy,
        before,
        existed,
    } = scratch(config, "check --diff", old_outputs).await?;
    // Feeds, against the old config when given, else against what the database has polled.
    let had: Vec<String> = match against {
        Some(old) => old.feed_urls(),
        None => copy
            .feed_statuses()
            .await?
            .into_iter()
            .map(|f| f.url)
            .collect(),
    };
    let mut s = describe_feeds(&had, &config.feed_urls());
    if !existed {
        let _ = writeln!(
            s,
            "no database at {} yet: no stored entry to compare",
            config.storage.path.display()
        );
        print!("{s}");
        return Ok(ExitCode::SUCCESS);
    }
    let rules = config.tags.clone();
    let feed_tags: HashMap<String, Vec<crate::model::Tag>> = config
        .feeds
        .iter()
        .map(|f| (f.url.to_string(), f.tags.clone()))
        .collect();
    // Entries of feeds no longer configured are never polled again: nothing re-tags them.
    let retagged = copy
        .retag(Box::new(move |url, entry| {
            feed_tags.get(url).map(|tags| rules.tags_for(entry, tags))
        }))
        .await?;
    let after = Snapshot::of(&copy, &config.outputs).await?;
    let changes = describe_changes(&before, &after, &config.outputs);
    let _ = writeln!(
        s,
        "{retagged} stored entries tagged under this config, {} stories compared",
        after.stories.len()
    );
    s.push_str(&changes);
    print!("{s}");
    Ok(ExitCode::SUCCESS)
}
