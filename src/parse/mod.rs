//! Feed bytes into `model::Entry`: decoding, feed-rs for every format, and normalisation of
//! URLs, dates and HTML. No I/O; no feed-rs type leaves this module.

use std::sync::LazyLock;

use regex::Regex;
use url::Url;

use crate::model::{Enclosure, Entry};
use crate::normalize::{
    canonical_url, escape_html, plain_text, sanitize_html, strip_control_chars,
};

mod dates;
mod encoding;
mod guard;

pub use encoding::{Decoded, decode};

/// What one feed may cost. Each has a config key under `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries kept from one fetch; the newest win.
    pub max_entries: usize,
    /// Bytes of one field (title, summary, content) before sanitising; longer is cut.
    pub max_field: usize,
    /// Element nesting, in the XML document and in each field's HTML.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 500 entries: the largest real news feeds carry 100-300. 512 KiB: the longest articles
        // with inline markup stay well under. 128: real feeds nest under 20 deep, real articles
        // under 40.
        Limits {
            max_entries: 500,
            max_field: 512 * 1024,
            max_depth: 128,
        }
    }
}

/// A source feed, parsed and normalised.
#[derive(Debug, Clone)]
pub struct ParsedFeed {
    pub title: Option<String>,
    /// The site's home page, as the feed names it.
    pub site_link: Option<String>,
    /// In document order (feeds put the newest first, mostly).
    pub entries: Vec<Entry>,
    pub decoded: Decoded,
    /// Things a reader of the feed's status should know (entries dropped by a limit).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the server sent an HTML page, not a feed{}", content_type_note(.0))]
    HtmlPage(Option<String>),
    #[error("the body is empty")]
    Empty,
    #[error("not a feed: no RSS, Atom, RDF or JSON Feed root found{}", content_type_note(.0))]
    NotAFeed(Option<String>),
    #[error("malformed feed: {0}")]
    Malformed(String),
    #[error(
        "the feed declares its own XML entities (<!ENTITY>); refused, as entity expansion is an attack"
    )]
    EntityDeclarations,
    #[error("the feed nests elements more than {limit} deep (limits.max_depth)")]
    TooDeep { limit: usize },
}

fn content_type_note(ct: &Option<String>) -> String {
    ct.as_ref()
        .map(|c| format!(" (Content-Type: {c})"))
        .unwrap_or_default()
}

/// Parses `bytes`, fetched from `feed_url` with this Content-Type, into normalised entries.
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    limits: &Limits,
) -> Result<ParsedFeed, ParseError> {
    let (text, decoded) = decode(bytes, content_type);
    let text = strip_control_chars(&text);
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    if text.trim_start().starts_with('<') {
        guard::check_xml(&text, limits.max_depth)?;
    }
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        // An empty id marks "the feed gave none": dedup then falls back to link or hash,
        // instead of feed-rs's generated id, which changes when the title is edited.
        .id_generator(|_, _, _| String::new())
        .sanitize_content(false)
        .timestamp_parser(dates::timestamp)
        .build();
    let feed = parser
        .parse(text.as_bytes())
        .map_err(|e| classify(e, &text, content_type))?;
    let site_link = feed
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .and_then(|l| feed_url.join(&l.href).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    // Relative references resolve against the feed's own URL, unless it is a local file: then
    // the site the feed describes is the only base that means anything to a reader.
    let doc_base = match (feed_url.scheme(), &site_link) {
        ("file", Some(site)) => site.clone(),
        _ => feed_url.clone(),
    };
    let extras = item_extras(&text, feed.entries.len());
    let mut raw: Vec<(feed_rs::model::Entry, ItemExtras)> = feed
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e, extras.get(i).cloned().unwrap_or_default()))
        .collect();
    let mut notes = Vec::new();
    if raw.len() > limits.max_entries {
        notes.push(format!(
            "kept the newest {} of {} entries (limits.max_entries)",
            limits.max_entries,
            raw.len()
        ));
        // Undated entries sort last; among equals, document order (feeds list newest first).
        raw.sort_by_key(|(e, _)| std::cmp::Reverse(e.published.or(e.updated)));
        raw.truncate(limits.max_entries);
    }
    let entries = raw
        .into_iter()
        .map(|(e, x)| convert_entry(e, &doc_base, x, limits))
        .collect();
    Ok(ParsedFeed {
        title: feed
            .title
            .map(|t| plain_text(&t.content))
            .filter(|t| !t.is_empty()),
        site_link: site_link.and_then(|b| canonical_url(b.as_str(), None)),
        entries,
        decoded,
        notes,
    })
}

fn classify(
    err: feed_rs::parser::ParseFeedError,
    text: &str,
    content_type: Option<&str>,
) -> ParseError {
    let head: String = text
        .trim_start()
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    let ct = content_type.map(str::to_string);
    if head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<head>") {
        return ParseError::HtmlPage(ct);
    }
    match err {
        feed_rs::parser::ParseFeedError::ParseError(
            feed_rs::parser::ParseErrorKind::NoFeedRoot,
        ) => ParseError::NotAFeed(ct),
        other => ParseError::Malformed(other.to_string()),
    }
}

static ITEM_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<(?:item|entry)[\s>].*?</(?:item|entry)>").unwrap());
static ORIG_LINK_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?s)<feedburner:origLink>\s*(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?\s*</feedburner:origLink>",
    )
    .unwrap()
});
static DC_SUBJECT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)<dc:subject>\s*(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?\s*</dc:subject>").unwrap()
});

/// What feed-rs does not read but real feeds carry, per item in document order:
/// FeedBurner's `<feedburner:origLink>` (the real article behind a feedproxy redirect) and
/// Dublin Core `<dc:subject>` (RSS 1.0's categories).
#[derive(Debug, Default, Clone)]
struct ItemExtras {
    orig_link: Option<String>,
    subjects: Vec<String>,
}

/// One slot per item, or none at all when the items cannot be matched one to one with the
/// parser's entries (then nothing is guessed).
fn item_extras(text: &str, entry_count: usize) -> Vec<ItemExtras> {
    let has = |needle: &str| memchr::memmem::find(text.as_bytes(), needle.as_bytes()).is_some();
    if !has("feedburner:origLink") && !has("dc:subject") {
        return Vec::new();
    }
    let unescape = |s: &str| {
        s.trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let extras: Vec<ItemExtras> = ITEM_RE
        .find_iter(text)
        .map(|item| ItemExtras {
            orig_link: ORIG_LINK_RE
                .captures(item.as_str())
                .map(|c| unescape(&c[1])),
            subjects: DC_SUBJECT_RE
                .captures_iter(item.as_str())
                .map(|c| unescape(&c[1]))
                .collect(),
        })
        .collect();
    if extras.len() == entry_count {
        extras
    } else {
        Vec::new()
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Titles are shown in lists: longer than this is never a title.
const MAX_TITLE_CHARS: usize = 500;

fn convert_entry(
    e: feed_rs::model::Entry,
    doc_base: &Url,
    extras: ItemExtras,
    limits: &Limits,
) -> Entry {
    // xml:base on the entry wins over the document's base for the entry's links.
    let base = e
        .base
        .as_deref()
        .and_then(|b| doc_base.join(b).ok())
        .unwrap_or_else(|| doc_base.clone());
    let link = extras
        .orig_link
        .as_deref()
        .and_then(|l| canonical_url(l, Some(&base)))
        .or_else(|| pick_link(&e.links, &base));
    let enclosures = enclosures(&e.media, &e.links, &base, link.as_deref());
    // Markup inside the article is relative to the article's page, where there is one.
    let base = link
        .as_deref()
        .and_then(|l| Url::parse(l).ok())
        .unwrap_or(base);
    let html = |t: &feed_rs::model::Text| {
        let body = cap(&t.content, limits.max_field);
        if t.content_type.essence().to_string() == "text/plain" {
            escape_html(body)
        } else {
            sanitize_html(body, Some(&base), limits.max_depth)
        }
    };
    let summary = e.summary.as_ref().map(html).filter(|s| !s.is_empty());
    let content = e
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .map(|b| sanitize_html(cap(b, limits.max_field), Some(&base), limits.max_depth))
        .filter(|s| !s.is_empty() && Some(s) != summary.as_ref());
    let title = e
        .title
        .as_ref()
        .map(|t| plain_text(cap(&t.content, limits.max_field)))
        .filter(|t| !t.is_empty());
    let title = title.map(|t| truncate_chars(t, MAX_TITLE_CHARS));
    let title = title.unwrap_or_else(|| fallback_title(summary.as_deref().or(content.as_deref())));
    Entry {
        source_id: Some(e.id.trim().to_string()).filter(|id| !id.is_empty()),
        title,
        link,
        summary,
        content,
        authors: e.authors.iter().filter_map(author_name).collect(),
        categories: if e.categories.is_empty() {
            extras
                .subjects
                .iter()
                .filter_map(|s| clean_category(s))
                .collect()
        } else {
            e.categories.iter().filter_map(category_name).collect()
        },
        published: e.published.or(e.updated),
        updated: e.updated,
        enclosures,
    }
}

/// The article link: an `alternate` (or rel-less) link first, then any other.
fn pick_link(links: &[feed_rs::model::Link], base: &Url) -> Option<String> {
    let alternate = links
        .iter()
        .filter(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"));
    alternate
        .chain(links.iter())
        .find_map(|l| canonical_url(&l.href, Some(base)))
}

fn fallback_title(html: Option<&str>) -> String {
    let text = html
        .map(|h| plain_text(&crate::normalize::html_to_text(h)))
        .unwrap_or_default();
    if text.is_empty() {
        "(untitled)".to_string()
    } else {
        truncate_chars(text, 100)
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn truncate_chars(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", text[..i].trim_end()),
        None => text,
    }
}

fn author_name(p: &feed_rs::model::Person) -> Option<String> {
    let name = p.name.as_deref().map(plain_text).filter(|n| !n.is_empty());
    name.or_else(|| p.email.clone())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
}

fn category_name(c: &feed_rs::model::Category) -> Option<String> {
    clean_category(
        c.label
            .as_deref()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or(&c.term),
    )
}

fn clean_category(raw: &str) -> Option<String> {
    let name = plain_text(raw);
    let name = name.trim_start_matches('#').trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Media attached to an entry: RSS `<enclosure>` and Media RSS (feed-rs's media objects),
/// Atom `rel="enclosure"` links, JSON Feed attachments (typed links without a rel).
fn enclosures(
    media: &[feed_rs::model::MediaObject],
    links: &[feed_rs::model::Link],
    base: &Url,
    article: Option<&str>,
) -> Vec<Enclosure> {
    let from_media = media.iter().flat_map(|m| &m.content).filter_map(|c| {
        let url = c.url.as_ref()?.as_str().to_string();
        Some((url, c.content_type.as_ref().map(|m| m.to_string()), c.size))
    });
    let from_links = links
        .iter()
        .filter(|l| match l.rel.as_deref() {
            Some(rel) => rel == "enclosure",
            None => l
                .media_type
                .as_deref()
                .is_some_and(|m| !m.starts_with("text/html")),
        })
        .map(|l| (l.href.clone(), l.media_type.clone(), l.length));
    let mut out: Vec<Enclosure> = Vec::new();
    for (href, mime, size) in from_media.chain(from_links) {
        let Some(url) = canonical_url(&href, Some(base)) else {
            continue;
        };
        if Some(url.as_str()) == article || out.iter().any(|e| e.url == url) {
            continue;
        }
        let mime_type = mime
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| guess_mime(&url).into());
        out.push(Enclosure {
            url,
            mime_type,
            length: size.unwrap_or(0),
        });
    }
    out
}

fn guess_mime(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}
