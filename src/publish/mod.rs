//! Stories into feed bytes: RSS 2.0, Atom 1.0 and JSON Feed 1.1, as pure functions of what they
//! are given. Publish never reads the database. The same stories always give the same bytes
//! (no "now" anywhere), so an output's ETag changes only when its content does.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::model::Story;
use crate::normalize::escape_html;

mod atom;
mod json;
mod rss;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Rss,
    Atom,
    Json,
}

impl Format {
    /// The format an output file is written in, from its extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        Format::from_extension(&path.extension()?.to_str()?.to_ascii_lowercase())
    }

    /// The extension used in URLs: `/feeds/NAME.rss`.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "rss" | "xml" => Some(Format::Rss),
            "atom" => Some(Format::Atom),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }
}

/// What an output says about itself.
#[derive(Debug, Clone)]
pub struct Channel {
    pub title: String,
    pub description: String,
    /// The output's own URL, its first page (Atom id, JSON Feed feed_url, WebSub topic).
    pub self_url: String,
    /// This page's URL, when it is a page past the first (RFC 5005): its rel=self.
    pub page_url: Option<String>,
    /// The next page (RFC 5005 rel="next", JSON Feed next_url), when there may be one.
    pub next_url: Option<String>,
    /// The WebSub hub readers may subscribe at (rel="hub").
    pub hub: Option<String>,
    /// The aggregator's home page.
    pub home_url: String,
}

impl Channel {
    /// The URL this document is served at: its page's, or the output's own.
    fn this_url(&self) -> &str {
        self.page_url.as_deref().unwrap_or(&self.self_url)
    }

    /// Links the document carries about itself, as (rel, href): self, the first page when
    /// this is a later one, the next page, the hub.
    fn paging_links(&self) -> Vec<(&'static str, &str)> {
        let mut links = vec![("self", self.this_url())];
        if self.page_url.is_some() {
            links.push(("first", self.self_url.as_str()));
        }
        links.extend(self.next_url.as_deref().map(|u| ("next", u)));
        links.extend(self.hub.as_deref().map(|u| ("hub", u)));
        links
    }
}

pub fn render(format: Format, channel: &Channel, stories: &[Story]) -> String {
    render_dated(format, channel, stories, last_updated(stories))
}

/// `render` with the document's own date given (RSS lastBuildDate, Atom updated): the newest
/// of every story it will hold, when they are rendered a part at a time.
fn render_dated(
    format: Format,
    channel: &Channel,
    stories: &[Story],
    updated: Option<DateTime<Utc>>,
) -> String {
    match format {
        Format::Rss => rss::render(channel, stories, updated),
        Format::Atom => atom::render(channel, stories, updated),
        Format::Json => json::render(channel, stories),
    }
}

/// A document too long to render at once, in parts: its head (everything before the first
/// item) and tail (everything after the last), rendered once, with the items between them
/// rendered a chunk at a time (`items`). Head, items and tail written in order are the
/// document `render` would give for all the items at once, so memory is bounded by a chunk,
/// not by the output's length.
#[derive(Debug, Clone)]
pub struct Frame {
    pub head: String,
    pub tail: String,
}

/// The head and tail of a document whose stories' newest date is `updated`.
pub fn frame(format: Format, channel: &Channel, updated: Option<DateTime<Utc>>) -> Frame {
    let whole = render_dated(format, channel, &[], updated);
    let (closing, keep) = match format {
        Format::Rss => ("</channel>", 0),
        Format::Atom => ("</feed>", 0),
        // JSON Feed: the empty list as serde_json prints it, split between its brackets.
        Format::Json => ("\"items\": []", "\"items\": [".len()),
    };
    let at = whole
        .rfind(closing)
        .expect("an empty document ends with its closing tag or its empty items");
    Frame {
        head: whole[..at + keep].to_string(),
        tail: whole[at + keep..].to_string(),
    }
}

/// A chunk of items, as they go between a frame's head and tail; `first` says whether it
/// opens the list (JSON Feed separates chunks with a comma).
pub fn items(format: Format, channel: &Channel, stories: &[Story], first: bool) -> String {
    if stories.is_empty() {
        return String::new();
    }
    let whole = render_dated(format, channel, stories, None);
    match format {
        Format::Rss => between(&whole, "<item>", "</item>"),
        Format::Atom => between(&whole, "<entry>", "</entry>"),
        Format::Json => {
            let list = json::items(channel, stories);
            let inner = list.trim().trim_start_matches('[').trim_end_matches(']');
            if first {
                inner.to_string()
            } else {
                format!(",{inner}")
            }
        }
    }
}

/// From the first `open` to the end of the last `close`.
fn between(text: &str, open: &str, close: &str) -> String {
    let start = text.find(open).expect("a chunk with stories has items");
    let end = text.rfind(close).expect("a chunk with stories has items") + close.len();
    text[start..end].to_string()
}

/// The story's page on this service (`/stories/ID`): the link of an item whose source gave
/// none, so every item has one a reader can open.
fn story_page(channel: &Channel, story: &Story) -> String {
    format!("{}stories/{}", channel.home_url, story.id)
}

/// The item's link: the article's, else its story page.
fn item_link(channel: &Channel, story: &Story) -> String {
    story
        .primary
        .entry
        .link
        .clone()
        .unwrap_or_else(|| story_page(channel, story))
}

/// The newest date among the stories: the output's "updated", stable between identical
/// renders; `None` for no stories.
pub fn last_updated(stories: &[Story]) -> Option<DateTime<Utc>> {
    stories.iter().map(|s| s.updated).max()
}

/// Summary and content HTML as republished: the source's, with the other outlets that carried
/// the story named at the end of the longer body, so every reader sees the attribution.
fn bodies(story: &Story) -> (Option<String>, Option<String>) {
    let e = &story.primary.entry;
    let footer = sources_footer(story);
    match (&e.summary, &e.content, footer) {
        (s, c, None) => (s.clone(), c.clone()),
        (s, Some(c), Some(f)) => (s.clone(), Some(format!("{c}\n{f}"))),
        (Some(s), None, Some(f)) => (Some(format!("{s}\n{f}")), None),
        (None, None, Some(f)) => (Some(f), None),
    }
}

fn sources_footer(story: &Story) -> Option<String> {
    if story.also.is_empty() {
        return None;
    }
    let links: Vec<String> = story
        .also
        .iter()
        .map(|s| match s.link.as_deref().or(s.public_url()) {
            Some(href) => format!(
                "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
                escape_html(href),
                escape_html(s.public_title())
            ),
            None => escape_html(s.public_title()),
        })
        .collect();
    Some(format!(
        "<p class=\"aggregate-sources\">Also reported by: {}</p>",
        links.join(", ")
    ))
}

#[cfg(test)]
mod tests;
