//! The types every stage shares. Nothing here knows about feed-rs, rss, rusqlite or reqwest:
//! parse produces these, dedup/tag enrich them, store keeps them, publish renders them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A feed's HTTP validators, remembered from its last successful fetch and sent with the next
/// (conditional GET). Kept by the store, used by fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A media attachment (podcast audio, a lead image) carried through to the outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclosure {
    pub url: String,
    pub mime_type: String,
    /// Bytes, as the source declared it; 0 when it did not (RSS requires the attribute).
    pub length: u64,
}

/// One entry as it came out of a source feed, normalised: plain-text title, canonical link,
/// sanitised HTML, UTC dates. Whether the source was RSS, Atom or JSON Feed is forgotten here.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The id the feed gave it (RSS guid, Atom id, JSON Feed id), if any. Unique only per feed.
    pub source_id: Option<String>,
    pub title: String,
    /// Canonical URL of the article (tracking parameters dropped, FeedBurner unwrapped).
    pub link: Option<String>,
    /// Sanitised HTML.
    pub summary: Option<String>,
    /// Sanitised HTML, the full article where the feed carries one.
    pub content: Option<String>,
    pub authors: Vec<String>,
    /// The feed's own categories, trimmed, `#` dropped, in the feed's spelling: each one's
    /// identity (an Atom category's term).
    pub categories: Vec<String>,
    /// `(term, label)` for the categories whose source shows them by another name (Atom's
    /// `label`, Media RSS's): the label is how a reader sees it, the term what it is.
    pub category_labels: Vec<(String, String)>,
    /// When the source says it was published; `None` when it gave no usable date.
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub enclosures: Vec<Enclosure>,
}

impl Entry {
    /// An entry with a title and nothing else, to fill in with struct update syntax.
    pub fn titled(title: impl Into<String>) -> Entry {
        Entry {
            source_id: None,
            title: title.into(),
            link: None,
            summary: None,
            content: None,
            authors: vec![],
            categories: vec![],
            category_labels: vec![],
            published: None,
            updated: None,
            enclosures: vec![],
        }
    }
}

/// A tag as shown to readers; compared case-insensitively through [`Tag::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub String);

impl Tag {
    /// Trims, drops a leading `#`; `None` for what is left empty.
    pub fn new(raw: &str) -> Option<Tag> {
        let t = raw.trim().trim_start_matches('#').trim();
        (!t.is_empty()).then(|| Tag(t.to_string()))
    }

    /// The case-folded form tags are matched and stored under.
    pub fn key(&self) -> String {
        tag_key(&self.0)
    }
}

/// An HTTP-date in any of the three forms RFC 9110 asks a recipient to accept (IMF-fixdate,
/// RFC 850, asctime), or with a numeric zone ("+0000"), which servers write though the RFC
/// does not allow it.
pub fn http_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = s.trim();
    httpdate::parse_http_date(s)
        .ok()
        .map(Into::into)
        .or_else(|| {
            chrono::DateTime::parse_from_rfc2822(s)
                .ok()
                .map(|d| d.with_timezone(&chrono::Utc))
        })
}

/// `t` as a person says it relative to `now`: "just now", "12 min ago", "in 3 h", "5 d ago".
pub fn relative_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let (n, unit) = match secs.unsigned_abs() {
        s if s < 60 => return "just now".into(),
        s if s < 3_600 => (s / 60, "min"),
        s if s < 48 * 3_600 => (s / 3_600, "h"),
        s => (s / 86_400, "d"),
    };
    if secs < 0 {
        format!("{n} {unit} ago")
    } else {
        format!("in {n} {unit}")
    }
}

/// The server a URL is fetched from, as politeness counts it: host and port (two ports of one
/// host are two servers). Per-host limits, Retry-After holds and the order of a pass all use it.
pub fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// The case-folded form of a tag name, for matching and storage.
pub fn tag_key(name: &str) -> String {
    name.trim().trim_start_matches('#').trim().to_lowercase()
}

/// An entry reduced to what story clustering compares (see `dedup::signature`): computed once
/// when the entry is prepared, on the parse threads, and stored beside the entry
/// (`dedup::stored`), so that the story index is rebuilt after a restart without deriving it
/// again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signature {
    /// Hash of the headline's words; 0 when it is too short to vouch for a copy.
    pub title: u64,
    /// SimHash of the body's word shingles, boilerplate dropped; 0 for a short body.
    pub simhash: u64,
    /// Words of the body, boilerplate dropped, counted up to the 130 the SimHash reads (a
    /// teaser has fewer than 30).
    pub words: u32,
    /// Stemmed salient words of the headline (counted twice) and the lead, with their counts.
    /// The stems are shared: a stream repeats its words.
    pub terms: Vec<(std::sync::Arc<str>, u8)>,
    /// Names stated (organisations, people, tickers), lower-case, aliases applied.
    pub entities: Vec<String>,
    /// Specific numbers in the headline and lead (percentages negative), years left out.
    pub numbers: Vec<f64>,
    /// The headline's own numbers.
    pub title_numbers: Vec<f64>,
    /// The headline is one of a recurring series ("Bitcoin price today: ...").
    pub series: bool,
    /// Names the headline states of who or what the story is about (a company, a person, a
    /// country), and of the assets and chains it concerns.
    pub subjects: Vec<String>,
    pub topics: Vec<String>,
}

/// An entry ready to store: its identity within the feed, its cross-feed story key, its tags.
#[derive(Debug, Clone)]
pub struct PreparedEntry {
    pub entry: Entry,
    /// Stable identity within the feed (see `dedup::entry_key`).
    pub key: String,
    /// The guid to publish if this entry is new (see `dedup::published_guid`).
    pub guid: String,
    /// Cross-feed story key: the canonical link, when there is one.
    pub story_key: Option<String>,
    /// Hash of everything a reader sees, to tell a changed entry from an unchanged one.
    pub content_hash: String,
    pub tags: Vec<Tag>,
    /// What story clustering compares, derived on first need (`cluster::Settings::
    /// signature_of`): a poll signs on its parse thread only the entries the store does not
    /// already hold as they are, and the writer signs any of the rest that turns out new or
    /// changed after all.
    pub signature: std::sync::OnceLock<Signature>,
}

/// A source as named in an output item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Source {
    pub title: String,
    /// The source feed's URL.
    pub feed_url: String,
    /// The article's link at that source.
    pub link: Option<String>,
    /// The site the source feed names as its home, if it named one.
    pub site: Option<String>,
}

impl Source {
    /// The source's URL as a published feed may show it: the feed's, but for a `file:` feed
    /// (a path on this machine) the site it names, or nothing.
    pub fn public_url(&self) -> Option<&str> {
        match self.feed_url.starts_with("file:") {
            true => self.site.as_deref(),
            false => Some(&self.feed_url),
        }
    }

    /// The source's name as a published feed may show it: never a `file:` path, which is what
    /// an untitled local feed is named by.
    pub fn public_title(&self) -> &str {
        match self.title.starts_with("file:") {
            true => self.site.as_deref().unwrap_or("a local feed"),
            false => &self.title,
        }
    }
}

/// An entry as stored, with what the outputs need to show it.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub id: i64,
    /// The guid published for it: fixed when first stored, never changed.
    pub guid: String,
    pub entry: Entry,
    /// Date shown and sorted on: the source's date, or first-seen when absent or in the future.
    pub date: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    pub source: Source,
    pub tags: Vec<Tag>,
}

/// A story's identity in the store, and in its page's URL (`/stories/ID`): its id, or for an
/// entry stored before stories were recorded (its own story), the entry's, written `eID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoryId {
    Story(i64),
    Entry(i64),
}

impl std::fmt::Display for StoryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoryId::Story(id) => write!(f, "{id}"),
            StoryId::Entry(id) => write!(f, "e{id}"),
        }
    }
}

impl std::str::FromStr for StoryId {
    type Err = ();

    fn from_str(s: &str) -> Result<StoryId, ()> {
        match s.strip_prefix('e') {
            Some(entry) => entry.parse().map(StoryId::Entry).map_err(|_| ()),
            None => s.parse().map(StoryId::Story).map_err(|_| ()),
        }
    }
}

/// One story in an output: the entry that leads it, and every other feed that carried it.
#[derive(Debug, Clone)]
pub struct Story {
    pub id: StoryId,
    /// The guid published for the story: fixed when it was created, never changed.
    pub guid: String,
    /// When the story last changed for a reader: its lead's date, or when a copy joined.
    pub updated: DateTime<Utc>,
    /// When what the story shows was last written: a copy stored, edited or joined. The
    /// data's own time, so every instance sharing a database serves one Last-Modified.
    pub changed: DateTime<Utc>,
    pub primary: StoredEntry,
    pub also: Vec<Source>,
    /// Union of the tags of every entry of the story, in display spelling.
    pub tags: Vec<Tag>,
}

/// What an output selects: any of `tags` (empty = all), none of `exclude`, newest `limit`,
/// after `before` when a reader pages past the first `limit`; for the status pages, also
/// by words of the title or by source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoryQuery {
    pub tags: Vec<String>,
    pub exclude: Vec<String>,
    pub limit: usize,
    pub before: Option<Cursor>,
    /// Only stories with a copy whose title has these words (the stories page's search).
    pub text: Option<String>,
    /// Only stories with a copy from this feed (by its configured URL; a source's page).
    pub feed: Option<String>,
}

impl StoryQuery {
    /// Narrowed by text or feed: the newest matches, in one page (no cursor).
    pub fn narrowed(&self) -> bool {
        self.text.is_some() || self.feed.is_some()
    }
}

/// A place in an output's walk through its stories, for paging past its limit (RFC 5005):
/// the entry (date, then id, newest first) through which the last story of a page was found.
/// The next page holds the stories found below it and not already above it, so a cursor
/// stays valid as stories arrive: they land above it, not in the pages behind it. Written
/// `DATE.ID` (seconds since the epoch, entry id) in `?before=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub date: i64,
    pub entry: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.date, self.entry)
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    fn from_str(s: &str) -> Result<Cursor, ()> {
        let (date, entry) = s.trim().split_once('.').ok_or(())?;
        Ok(Cursor {
            date: date.parse().map_err(|_| ())?,
            entry: entry.parse().map_err(|_| ())?,
        })
    }
}

/// One page of an output: its stories, newest first, and where the next page begins when
/// there may be one.
#[derive(Debug, Clone, Default)]
pub struct StoryPage {
    pub stories: Vec<Story>,
    pub next: Option<Cursor>,
}

/// When an entry should be shown as dated: its own date unless absent or later than when it was
/// first seen, when first-seen stands in (so a feed cannot pin an item to the top of an output).
pub fn effective_date(
    published: Option<DateTime<Utc>>,
    first_seen: DateTime<Utc>,
) -> DateTime<Utc> {
    match published {
        Some(d) if d <= first_seen => d,
        _ => first_seen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_as_written() {
        let c = Cursor {
            date: 1_764_600_000,
            entry: 42,
        };
        assert_eq!(c.to_string(), "1764600000.42");
        assert_eq!("1764600000.42".parse(), Ok(c));
        assert_eq!("-5.3".parse::<Cursor>().map(|c| c.date), Ok(-5));
        for bad in ["", "12", "a.b", "1.2.3", "1.", ".2"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_times_read_as_a_person_says_them() {
        let now = Utc::now();
        let at = |secs: i64| relative_time(now + chrono::Duration::seconds(secs), now);
        assert_eq!(at(-20), "just now");
        assert_eq!(at(30), "just now");
        assert_eq!(at(-12 * 60 - 5), "12 min ago");
        assert_eq!(at(3 * 3600 + 10), "in 3 h");
        assert_eq!(at(-47 * 3600), "47 h ago");
        assert_eq!(at(-5 * 86_400), "5 d ago");
    }
}
