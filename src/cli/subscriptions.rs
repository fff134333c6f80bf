//! `aggregate import` and `aggregate export`: subscriptions in and out as OPML. The config file
//! stays the one source of truth; an import edits it through `config::edit`, which keeps its
//! layout and refuses to leave it invalid.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;
use url::Url;

use crate::config::edit::{self, NewFeed};
use crate::config::{Config, feed_identity};
use crate::model::Tag;
use crate::opml::{self, Outline};
use crate::outputs::{self, Audience};
use crate::store::Store;

/// How `import` was asked to run.
pub struct Import {
    pub tags_from_categories: bool,
    pub json: bool,
    pub quiet: bool,
}

/// One outline that was not added, and why.
#[derive(Debug, Serialize)]
struct Skipped {
    url: String,
    line: usize,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Added {
    url: String,
    title: Option<String>,
    tags: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ImportReport {
    config: String,
    created: bool,
    added: Vec<Added>,
    skipped: Vec<Skipped>,
}

/// `aggregate import FILE`: appends the feeds `file` lists that the config does not have yet.
pub fn import(config_path: &Path, file: &Path, how: Import) -> anyhow::Result<ExitCode> {
    let source = if file == Path::new("-") {
        "standard input".to_string()
    } else {
        file.display().to_string()
    };
    let text = read_opml(file).with_context(|| format!("cannot read {source}"))?;
    let outlines = opml::parse(&text).with_context(|| format!("{source}"))?;

    let (current, created) = match std::fs::read_to_string(config_path) {
        Ok(t) => (t, false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot read config {}: {e}",
                config_path.display()
            ));
        }
    };
    let config = Config::from_toml(&current, config_path).with_context(|| {
        "the config is invalid as it stands; fix it before importing into it (nothing was changed)"
    })?;
    let (added, skipped) = choose(&config, outlines, how.tags_from_categories);
    if !added.is_empty() {
        let edited = edit::append_feeds(&current, &added, config_path)
            .context("the import was refused and the config left as it was")?;
        edit::replace_file(config_path, &edited)?;
    }
    let report = ImportReport {
        config: config_path.display().to_string(),
        created: created && !added.is_empty(),
        added: added
            .into_iter()
            .map(|f| Added {
                url: f.url,
                title: f.title,
                tags: f.tags,
            })
            .collect(),
        skipped,
    };
    if how.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !how.quiet {
        print!("{}", describe_import(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_opml(file: &Path) -> std::io::Result<String> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file)
    }
}

/// The outlines to add, in document order, and those skipped: not an http(s) URL, already in
/// the config (under any spelling of its URL), or listed twice.
fn choose(
    config: &Config,
    outlines: Vec<Outline>,
    with_tags: bool,
) -> (Vec<NewFeed>, Vec<Skipped>) {
    let configured: Vec<(String, &Url)> = config
        .feeds
        .iter()
        .map(|f| (feed_identity(&f.url), &f.url))
        .collect();
    let mut seen = HashSet::new();
    let mut added = Vec::new();
    let mut skipped = Vec::new();
    for o in outlines {
        match admissible(&o, &configured, &mut seen) {
            Ok(url) => added.push(NewFeed {
                url: url.to_string(),
                tags: if with_tags { tags_of(&o) } else { Vec::new() },
                title: o.title.filter(|t| t != &o.xml_url),
            }),
            Err(reason) => skipped.push(Skipped {
                url: o.xml_url,
                line: o.line,
                reason,
            }),
        }
    }
    (added, skipped)
}

/// The outline's feed URL, unless it is not http(s), is configured already (under any
/// spelling), or was `seen` earlier in the document: then why it is skipped.
fn admissible(
    o: &Outline,
    configured: &[(String, &Url)],
    seen: &mut HashSet<String>,
) -> Result<Url, String> {
    let url = match Url::parse(&o.xml_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        Ok(_) => return Err("not an http(s) URL".into()),
        Err(e) => return Err(format!("not a URL ({e})")),
    };
    let id = feed_identity(&url);
    if let Some((_, existing)) = configured.iter().find(|(c, _)| *c == id) {
        return Err(if existing.as_str() == url.as_str() {
            "already in the config".into()
        } else {
            format!("already in the config as {existing}")
        });
    }
    if !seen.insert(id) {
        return Err("listed twice in the OPML".into());
    }
    Ok(url)
}

/// An outline's folders and categories as tags, each once whatever its case.
fn tags_of(o: &Outline) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for t in o.categories.iter().filter_map(|c| Tag::new(c)) {
        if !tags.iter().any(|have| have.eq_ignore_ascii_case(&t.0)) {
            tags.push(t.0);
        }
    }
    tags
}

fn describe_import(r: &ImportReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let feeds = |n: usize| if n == 1 { "feed" } else { "feeds" };
    if r.added.is_empty() {
        let _ = writeln!(s, "nothing to add to {}", r.config);
    } else {
        let verb = if r.created { "created" } else { "added to" };
        let _ = writeln!(
            s,
            "{verb} {}: {} {}",
            r.config,
            r.added.len(),
            feeds(r.added.len())
        );
        for a in &r.added {
            let title = a
                .title
                .as_deref()
                .map(|t| format!(" \"{t}\""))
                .unwrap_or_default();
            let tags = if a.tags.is_empty() {
                String::new()
            } else {
                format!(" tags [{}]", a.tags.join(", "))
            };
            let _ = writeln!(s, "  + {}{title}{tags}", a.url);
        }
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(s, "skipped {} {}:", r.skipped.len(), feeds(r.skipped.len()));
        for k in &r.skipped {
            let _ = writeln!(s, "  - {} (line {}): {}", k.url, k.line, k.reason);
        }
    }
    if !r.added.is_empty() {
        let _ = writeln!(
            s,
            "a running service polls them after a reload (systemctl reload aggregate, or SIGHUP)"
        );
    }
    s
}

/// `aggregate export [--outputs]`: OPML on standard output.
pub async fn export(config: &Config, outputs: bool) -> anyhow::Result<ExitCode> {
    let text = if outputs {
        outputs::outputs_opml(config)
    } else {
        // The site links and feeds' own titles come from the database, when there is one;
        // an export never creates one.
        let statuses = match has_database(config) {
            true => {
                Store::open(&config.storage, &config.dedup)
                    .await?
                    .feed_statuses()
                    .await?
            }
            false => Vec::new(),
        };
        outputs::sources_opml(config, &statuses, Audience::Operator)
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Whether the configured database exists (a PostgreSQL one is assumed to).
pub fn has_database(config: &Config) -> bool {
    config.storage.postgres.is_some() || config.storage.path.exists()
}
