//! `aggregate discover URL [--add]`: finds the feeds of a site from one of its pages, with the
//! same client, limits and `deny_private` as polling, reads each to prove it is a feed, and
//! prints the `[[feed]]` to paste (or appends it).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;
use url::Url;

use crate::config::edit::{self, NewFeed};
use crate::config::{Config, feed_identity};
use crate::fetch::{Fetched, Fetcher};
use crate::model::Validators;
use crate::parse::discover::{COMMON_PATHS, feed_links};

/// A feed found and read.
#[derive(Debug, Serialize)]
struct Found {
    url: String,
    title: Option<String>,
    format: &'static str,
    entries: usize,
    /// How it was found: "the address itself", "<link> on the page", "common path".
    via: &'static str,
    /// Already subscribed, under this URL.
    configured: Option<String>,
}

/// A candidate that turned out not to be a feed (only those the page linked to are told).
#[derive(Debug, Serialize)]
struct NotAFeed {
    url: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Discovery {
    page: String,
    feeds: Vec<Found>,
    rejected: Vec<NotAFeed>,
    /// The feed `--add` appended to the config.
    added: Option<String>,
}

/// Candidates read at most: a page with a hundred `<link>`s does not cost a hundred fetches.
const MAX_CANDIDATES: usize = 12;

pub async fn discover(
    config_path: &Path,
    page: &str,
    add: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let page = Url::parse(page.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| anyhow::anyhow!("{page:?} is not an http(s) URL"))?;
    let (text, config) = config_or_defaults(config_path)?;
    let fetcher = Fetcher::new(&config.fetch)?;
    let mut d = find(&fetcher, &config, &page).await?;
    if d.feeds.is_empty() {
        let why = d
            .rejected
            .iter()
            .map(|r| format!("\n  {}: {}", r.url, r.reason))
            .collect::<String>();
        anyhow::bail!(
            "no feed found at {page}: it is not a feed, links to none that can be read, and none is at {}{why}",
            COMMON_PATHS.join(", ")
        );
    }
    if add {
        d.added = add_first(config_path, &text, &d.feeds)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", describe(&d, config_path));
    }
    Ok(ExitCode::SUCCESS)
}

/// The config's text and settings when there is a config; the defaults before the first.
fn config_or_defaults(path: &Path) -> anyhow::Result<(String, Config)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let config = Config::from_toml(&text, path)?;
            Ok((text, config))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok((String::new(), Config::from_toml("", path)?))
        }
        Err(e) => anyhow::bail!("cannot read config {}: {e}", path.display()),
    }
}

/// The feeds `page` is, links to, or (linking to none) has at a common path, each read.
async fn find(fetcher: &Fetcher, config: &Config, page: &Url) -> anyhow::Result<Discovery> {
    let mut d = Discovery {
        page: page.to_string(),
        feeds: Vec::new(),
        rejected: Vec::new(),
        added: None,
    };
    let ((answered, content_type), body) = fetch(fetcher, page)
        .await
        .with_context(|| format!("cannot fetch {page}"))?;
    if let Ok(feed) = crate::parse::parse(&body, content_type.as_deref(), &answered, &config.limits)
    {
        d.feeds
            .push(found(config, &answered, feed, "the address itself"));
        return Ok(d);
    }
    let linked = feed_links(&String::from_utf8_lossy(&body), &answered);
    if linked.is_empty() {
        for url in COMMON_PATHS.iter().filter_map(|p| answered.join(p).ok()) {
            if let Ok(f) = read_feed(fetcher, config, &url).await {
                d.feeds.push(found(config, &url, f, "common path"));
                break;
            }
        }
    }
    for link in linked.into_iter().take(MAX_CANDIDATES) {
        match read_feed(fetcher, config, &link.url).await {
            Ok(f) => d
                .feeds
                .push(found(config, &link.url, f, "<link> on the page")),
            Err(reason) => d.rejected.push(NotAFeed {
                url: link.url.to_string(),
                reason,
            }),
        }
    }
    Ok(d)
}

/// The URL that answered, its content type, and the body.
async fn fetch(
    fetcher: &Fetcher,
    url: &Url,
) -> Result<((Url, Option<String>), Vec<u8>), crate::fetch::FetchError> {
    match fetcher.fetch(url, &Validators::default()).await? {
        Fetched::Body(r, body) => Ok(((r.url, r.content_type), body)),
        // Asked without validators, a 304 is the server's mistake; there is no body to read.
        Fetched::NotModified(r) => Ok(((r.url, r.content_type), Vec::new())),
    }
}

async fn read_feed(
    fetcher: &Fetcher,
    config: &Config,
    url: &Url,
) -> Result<crate::parse::ParsedFeed, String> {
    let ((answered, content_type), body) = fetch(fetcher, url).await.map_err(|e| e.to_string())?;
    crate::parse::parse(&body, content_type.as_deref(), &answered, &config.limits)
        .map_err(|e| e.to_string())
}

fn found(config: &Config, url: &Url, feed: crate::parse::ParsedFeed, via: &'static str) -> Found {
    let id = feed_identity(url);
    Found {
        url: url.to_string(),
        title: feed.title,
        format: feed.format,
        entries: feed.entries.len(),
        via,
        configured: config
            .feeds
            .iter()
            .find(|f| feed_identity(&f.url) == id)
            .map(|f| f.url.to_string()),
    }
}

/// Appends the first feed found (the page's own first choice), unless it is subscribed already.
fn add_first(config_path: &Path, text: &str, feeds: &[Found]) -> anyhow::Result<Option<String>> {
    let first = &feeds[0];
    if first.configured.is_some() {
        return Ok(None);
    }
    let feed = NewFeed {
        url: first.url.clone(),
        title: first.title.clone(),
        tags: Vec::new(),
    };
    let edited = edit::append_feeds(text, &[feed], config_path)
        .context("the feed was not added and the config left as it was")?;
    edit::replace_file(config_path, &edited)?;
    Ok(Some(first.url.clone()))
}

fn describe(d: &Discovery, config_path: &Path) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let n = d.feeds.len();
    let _ = writeln!(
        s,
        "{n} feed{} found for {}:",
        if n == 1 { "" } else { "s" },
        d.page
    );
    for f in &d.feeds {
        let _ = writeln!(
            s,
            "\n# {} ({}, {} entries; {})",
            f.title.as_deref().unwrap_or("untitled"),
            f.format,
            f.entries,
            f.via
        );
        if let Some(c) = &f.configured {
            let _ = writeln!(s, "# already in {} as {c}", config_path.display());
        }
        let _ = writeln!(s, "[[feed]]\nurl = {}", toml_string(&f.url));
        if let Some(t) = &f.title {
            let _ = writeln!(s, "title = {}", toml_string(t));
        }
    }
    for r in &d.rejected {
        let _ = writeln!(s, "\nnot a feed: {}: {}", r.url, r.reason);
    }
    match (&d.added, d.feeds.first()) {
        (Some(url), _) => {
            let _ = writeln!(s, "\nadded {url} to {}", config_path.display());
        }
        (None, Some(f)) if f.configured.is_some() => {
            let _ = writeln!(s, "\nnothing added: {} is already subscribed", f.url);
        }
        _ => {}
    }
    s
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml_edit::Value::from(s).to_string()
}
