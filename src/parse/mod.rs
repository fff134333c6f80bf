//! Feed bytes into `model::Entry`: decoding, feed-rs for every format, and normalisation of
//! URLs, dates and HTML. No I/O; no feed-rs type leaves this module.

use std::borrow::Cow;

use url::Url;

use crate::model::Entry;
use crate::normalize::{canonical_url, plain_text, strip_control_chars};

mod dates;
mod dialect;
pub mod discover;
mod encoding;
mod entry;
mod extensions;
mod guard;
mod recover;

use extensions::ItemExtras;

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
    /// What the document was written in: "RSS 2.0", "Atom", "RSS 1.0", "RSS 0.9x", "JSON Feed".
    pub format: &'static str,
    pub title: Option<String>,
    /// The site's home page, as the feed names it.
    pub site_link: Option<String>,
    /// In document order (feeds put the newest first, mostly).
    pub entries: Vec<Entry>,
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
    #[error("none of the document's {items} entries could be read")]
    NoEntries { items: usize },
}

fn content_type_note(ct: &Option<String>) -> String {
    ct.as_ref()
        .map(|c| format!(" (Content-Type: {c})"))
        .unwrap_or_default()
}

/// Bumped when a change here reads the same bytes into different entries, so that feeds whose
/// bodies did not change are read again (it is part of each feed's fingerprint).
pub const REVISION: u32 = 2;

/// Parses `bytes`, fetched from `feed_url` with this Content-Type, into normalised entries.
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    limits: &Limits,
) -> Result<ParsedFeed, ParseError> {
    parse_with(
        bytes,
        content_type,
        feed_url,
        limits,
        extensions::worth_scanning,
    )
}

/// Whether the extension pass runs on a document (text, is Atom, entries feed-rs read).
type Gate = fn(&str, bool, usize) -> bool;

fn parse_with(
    bytes: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    limits: &Limits,
    gate: Gate,
) -> Result<ParsedFeed, ParseError> {
    let (text, decoded) = decode(bytes, content_type);
    let text = strip_control_chars(&text);
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let xml = text.trim_start().starts_with('<');
    if xml {
        guard::check_xml(&text, limits.max_depth)?;
    }
    let text = match guard::email_boundaries(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(spaced) => Cow::Owned(spaced),
    };
    let mut notes: Vec<String> = (decoded.had_errors)
        .then(|| {
            format!(
                "replaced bytes that are not valid {} with U+FFFD",
                decoded.encoding.name()
            )
        })
        .into_iter()
        .collect();
    let text = translated(text, xml, &mut notes);
    let (feed, text) = read_feed(text, feed_url, content_type, &mut notes)?;
    let site_link = site_link(&feed, feed_url);
    let doc_base = document_base(feed_url, site_link.as_ref(), &text);
    let atom = feed.feed_type == feed_rs::model::FeedType::Atom;
    let extras = if xml {
        item_extras(&text, atom, feed.entries.len(), gate, &mut notes)?
    } else {
        Vec::new()
    };
    // Atom and JSON Feed say what a text is; RSS leaves it to be guessed.
    let exact_text = atom || feed.feed_type == feed_rs::model::FeedType::JSON;
    let entries = newest(feed.entries, extras, limits, &mut notes)
        .into_iter()
        .map(|(e, x)| entry::convert(e, &doc_base, x, limits, exact_text))
        .collect();
    Ok(ParsedFeed {
        format: format_name(&feed.feed_type),
        title: feed
            .title
            .map(|t| plain_text(&t.content))
            .filter(|t| !t.is_empty()),
        site_link: site_link.and_then(|b| canonical_url(b.as_str(), None)),
        entries,
        notes,
    })
}

/// An XML document in a dialect feed-rs misreads, turned into one it reads (named in the
/// notes); any other text as it is.
fn translated<'a>(text: Cow<'a, str>, xml: bool, notes: &mut Vec<String>) -> Cow<'a, str> {
    match xml.then(|| dialect::translate(&text)).flatten() {
        Some(t) => {
            notes.push(t.note.to_string());
            Cow::Owned(t.text)
        }
        None => text,
    }
}

/// The format's name as a status reports it.
fn format_name(feed_type: &feed_rs::model::FeedType) -> &'static str {
    match feed_type {
        feed_rs::model::FeedType::Atom => "Atom",
        feed_rs::model::FeedType::JSON => "JSON Feed",
        feed_rs::model::FeedType::RSS0 => "RSS 0.9x",
        feed_rs::model::FeedType::RSS1 => "RSS 1.0",
        feed_rs::model::FeedType::RSS2 => "RSS 2.0",
    }
}

/// The site the feed describes: its alternate (or rel-less) link, if it is http(s).
fn site_link(feed: &feed_rs::model::Feed, feed_url: &Url) -> Option<Url> {
    feed.links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .and_then(|l| feed_url.join(&l.href).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// What relative references resolve against: the root's `xml:base`, against the feed's own
/// URL, unless that is a local file: then the site the feed describes is the only base that
/// means anything to a reader.
fn document_base(feed_url: &Url, site_link: Option<&Url>, text: &str) -> Url {
    let base = match (feed_url.scheme(), site_link) {
        ("file", Some(site)) => site.clone(),
        _ => feed_url.clone(),
    };
    dialect::root_base(text)
        .and_then(|b| base.join(&b).ok())
        .unwrap_or(base)
}

/// Each entry with its extension values (none where they could not be matched), at most
/// `limits.max_entries` of them: the newest.
fn newest(
    entries: Vec<feed_rs::model::Entry>,
    extras: Vec<ItemExtras>,
    limits: &Limits,
    notes: &mut Vec<String>,
) -> Vec<(feed_rs::model::Entry, ItemExtras)> {
    let mut extras = extras.into_iter();
    let mut raw: Vec<_> = entries
        .into_iter()
        .map(|e| (e, extras.next().unwrap_or_default()))
        .collect();
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
    raw
}

fn feed_rs_parser(feed_url: &Url) -> feed_rs::parser::Parser {
    feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        // An empty id marks "the feed gave none": dedup then falls back to link or hash,
        // instead of feed-rs's generated id, which changes when the title is edited.
        .id_generator(|_, _, _| String::new())
        .sanitize_content(false)
        .timestamp_parser(dates::timestamp)
        .build()
}

/// feed-rs on the document; when it refuses, the repairs of `recover`, each named in `notes`.
/// Returns the text that was read, for the extension pass.
fn read_feed<'a>(
    text: Cow<'a, str>,
    feed_url: &Url,
    content_type: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<(feed_rs::model::Feed, Cow<'a, str>), ParseError> {
    // A fresh parser for every attempt: feed-rs keeps per-document state that a failed parse
    // leaves behind (a reused parser panics on its next document).
    let first = match feed_rs_parser(feed_url).parse(text.as_bytes()) {
        Ok(feed) => return Ok((feed, text)),
        Err(e) => e,
    };
    let refused = classify(first, &text, content_type);
    let (feed, read, repairs) = if text.trim_start().starts_with('{') {
        // JSON Feed: the version URL written with http:, or left out, is still JSON Feed 1.
        let Some(fixed) = dialect::json_feed_version(&text) else {
            return Err(refused);
        };
        let feed = feed_rs_parser(feed_url)
            .parse(fixed.as_bytes())
            .map_err(|_| refused)?;
        (
            feed,
            fixed,
            vec!["read a JSON Feed with a nonstandard version".to_string()],
        )
    } else if matches!(refused, ParseError::HtmlPage(_)) {
        return Err(refused);
    } else {
        recover_xml(&text, feed_url).map_err(|e| e.unwrap_or(refused))?
    };
    notes.push(format!("repaired: {}", repairs.join("; ")));
    Ok((feed, Cow::Owned(read)))
}

type Recovered = (feed_rs::model::Feed, String, Vec<String>);

/// The repairs of `recover` until feed-rs reads the document: the feed, the text it read, and
/// what was done. `Err(None)` when no repair made it readable (the first error stands).
fn recover_xml(text: &str, feed_url: &Url) -> Result<Recovered, Option<ParseError>> {
    let mut repaired: Vec<String> = Vec::new();
    let mut candidate = text.to_string();
    if let Some(fixed) = recover::repair(&candidate) {
        if fixed.cut_before_first_entry {
            return Err(Some(ParseError::Malformed(
                "the document is cut short before its first entry ends".into(),
            )));
        }
        candidate = fixed.text;
        repaired.extend(fixed.notes);
    }
    if is_atom(&candidate)
        && let Some(fixed) = dialect::rewrite_atom(&candidate, false)
        && fixed != candidate
    {
        candidate = fixed;
        repaired.push("rewrote Atom text constructs the parser refused".into());
    }
    for _ in 0..recover::MAX_DROPS {
        match feed_rs_parser(feed_url).parse(candidate.as_bytes()) {
            Ok(feed) => return Ok((feed, candidate, repaired)),
            Err(e) => {
                let Some(at) = error_position(&e) else { break };
                let Some((fixed, name)) = recover::drop_element_at(&candidate, at) else {
                    break;
                };
                repaired.push(format!("dropped a <{name}> the parser refused ({e})"));
                candidate = fixed;
            }
        }
    }
    Err(None)
}

fn is_atom(text: &str) -> bool {
    let head = &text[..text.floor_char_boundary(4096)];
    head.contains(dialect::ATOM10_NS)
}

/// Where feed-rs says it stopped, for the errors that name an element.
fn error_position(e: &feed_rs::parser::ParseFeedError) -> Option<usize> {
    use feed_rs::parser::{ParseErrorKind as K, ParseFeedError as E};
    match e {
        E::ParseError(
            K::UnknownMimeType { position, .. }
            | K::MissingContent { position, .. }
            | K::UnknownEnumVariant { position, .. }
            | K::IllegalState { position, .. },
        ) => usize::try_from(*position).ok(),
        _ => None,
    }
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

/// The extension values of each entry, matched by position, and the check that every item of
/// the document became an entry: fewer is a note, none of several is the feed's error.
fn item_extras(
    text: &str,
    atom: bool,
    entry_count: usize,
    gate: Gate,
    notes: &mut Vec<String>,
) -> Result<Vec<ItemExtras>, ParseError> {
    if !gate(text, atom, entry_count) {
        return Ok(Vec::new());
    }
    let scan = extensions::scan(text);
    let Some(scan) = scan else {
        return Ok(Vec::new());
    };
    let items = scan.items.len();
    if entry_count < items {
        if entry_count == 0 {
            return Err(ParseError::NoEntries { items });
        }
        notes.push(format!(
            "{} of {items} entries could not be read: the parser skipped them",
            items - entry_count
        ));
        return Ok(Vec::new());
    }
    Ok(if items == entry_count {
        scan.items
    } else {
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::{Limits, parse, parse_with};

    /// The gate in front of the extension pass never changes what is read: on every fixture,
    /// the entries are the same as with the pass run on everything.
    #[test]
    fn the_extension_gate_never_skips_a_value() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let url = url::Url::parse("https://gate.example/feed").unwrap();
        let limits = Limits::default();
        let mut compared = 0;
        for dir in ["feeds", "fidelity", "hostile"] {
            for f in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                let path = f.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let always = parse_with(&bytes, None, &url, &limits, |_, _, _| true);
                let gated = parse(&bytes, None, &url, &limits);
                if let (Ok(always), Ok(gated)) = (always, gated) {
                    assert_eq!(always.entries, gated.entries, "{path:?}");
                    assert_eq!(always.notes, gated.notes, "{path:?}");
                    compared += 1;
                }
            }
        }
        assert!(compared >= 25, "only {compared} fixtures compared");
    }
}
