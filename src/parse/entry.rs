//! One feed-rs entry, with what the extension pass found beside it, into one `model::Entry`.
//!
//! feed-rs's reading comes first; the extension values fill what it left empty (a `dc:title`
//! where there is no `<title>`, a `dc:date` where there is no `<pubDate>`, `media:description`
//! where there is no summary), except where they are known to be better (FeedBurner's origLink
//! over the feedproxy link; every `<enclosure>` over feed-rs's one).

use url::Url;

use super::dialect::decode_base64;
use super::{Limits, dates, extensions::ItemExtras};
use crate::model::{Enclosure, Entry};
use crate::normalize::{
    canonical_url, escape_html, html_to_text, literal_text, plain_text, repair_mojibake,
    sanitize_html,
};

/// Titles are shown in lists: longer than this is never a title.
const MAX_TITLE_CHARS: usize = 500;

/// At most `max` bytes of `s`, cut at a character boundary.
fn cap(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// How one entry's bodies become HTML: against the article's address, within the limits.
struct Bodies<'a> {
    base: Url,
    limits: &'a Limits,
    /// The format says exactly when a text is plain (Atom, JSON Feed); RSS does not.
    exact_text: bool,
}

impl Bodies<'_> {
    /// A body as sanitised HTML; plain text escaped, never parsed as markup.
    fn html(&self, body: &str, mime: &str) -> String {
        let body = repair_mojibake(cap(body, self.limits.max_field));
        if mime == "text/plain" {
            escape_html(&body)
        } else {
            sanitize_html(&body, Some(&self.base), self.limits.max_depth)
        }
    }

    /// A feed-rs text. RSS says nothing of a description's type: it is HTML when it looks like
    /// HTML (escaped or in CDATA, as RSS 1.0 feeds write it), as every reader takes it.
    fn text(&self, t: &feed_rs::model::Text) -> String {
        let mime = t.content_type.essence().to_string();
        if self.exact_text || mime != "text/plain" {
            self.html(&t.content, &mime)
        } else {
            self.html(&t.content, guess_type(&t.content))
        }
    }

    /// Summary and content: feed-rs's first, then the extension pass's.
    fn summary_and_content(
        &self,
        e: &feed_rs::model::Entry,
        x: &ItemExtras,
    ) -> (Option<String>, Option<String>) {
        let some = |s: String| (!s.is_empty()).then_some(s);
        let summary = e
            .summary
            .as_ref()
            .and_then(|t| some(self.text(t)))
            .or_else(|| some(self.html(x.markup_description.as_deref()?, "text/html")))
            .or_else(|| {
                let d = x.description.as_deref()?;
                some(self.html(d, guess_type(d)))
            });
        // An RSS item with a <summary> beside its <description>: the first is the summary.
        let (summary, second) = match (&x.rss_summary, summary) {
            (Some((s, true)), first) => (first, Some(self.html(s, guess_type(s)))),
            (Some((s, false)), first) => (Some(self.html(s, guess_type(s))), first),
            (None, first) => (first, None),
        };
        let content = e
            .content
            .as_ref()
            .and_then(|c| {
                let body = c.body.as_deref()?;
                let mime = c.content_type.essence().to_string();
                // Atom content of any other media type is base64 (RFC 4287 §4.1.3.3).
                let decoded = is_base64_type(&mime).then(|| decode_base64(body)).flatten();
                Some(match decoded {
                    Some(decoded) => self.html(&decoded, "text/html"),
                    None => self.html(body, &mime),
                })
            })
            .or_else(|| x.body.as_deref().map(|b| self.html(b, "text/html")))
            .or(second)
            .filter(|s| !s.is_empty() && Some(s) != summary.as_ref());
        (summary, content)
    }

    /// The title as plain text: a text a format types as plain keeps its characters.
    /// The title, at most [`MAX_TITLE_CHARS`]. A literal title is cut before it is defanged:
    /// cutting after could leave half a tag (`</b…`) that defanging never saw (found by
    /// fuzzing).
    fn title(&self, e: &feed_rs::model::Entry, x: &ItemExtras) -> Option<String> {
        let from_feed = e.title.as_ref().map(|t| {
            let raw = repair_mojibake(cap(&t.content, self.limits.max_field));
            if self.exact_text && t.content_type.essence().to_string() == "text/plain" {
                literal_text(&truncate_chars(raw.into_owned(), MAX_TITLE_CHARS))
            } else {
                truncate_chars(plain_text(&raw), MAX_TITLE_CHARS)
            }
        });
        let plain = |t: &str| truncate_chars(plain_text(t), MAX_TITLE_CHARS);
        from_feed
            .filter(|t| !t.is_empty())
            .or_else(|| x.title.as_deref().map(plain).filter(|t| !t.is_empty()))
    }
}

/// One feed-rs entry and what the extension pass found beside it, as a `model::Entry`.
pub(super) fn convert(
    e: feed_rs::model::Entry,
    doc_base: &Url,
    x: ItemExtras,
    limits: &Limits,
    exact_text: bool,
) -> Entry {
    // xml:base on the entry wins over the document's base for the entry's links.
    let base = e
        .base
        .as_deref()
        .and_then(|b| doc_base.join(b).ok())
        .unwrap_or_else(|| doc_base.clone());
    let link = article_link(&e, &x, &base);
    let enclosures = enclosures(&e.media, &e.links, &x, &base);
    // Markup inside the article is relative to the article's page, where there is one.
    let base = link
        .as_deref()
        .and_then(|l| Url::parse(l).ok())
        .unwrap_or(base);
    let bodies = Bodies {
        base,
        limits,
        exact_text,
    };
    let (summary, content) = bodies.summary_and_content(&e, &x);
    let title = bodies
        .title(&e, &x)
        .unwrap_or_else(|| fallback_title(summary.as_deref().or(content.as_deref())));
    let (categories, category_labels) = categories(&e, &x);
    let updated = e
        .updated
        .or_else(|| x.updated.as_deref().and_then(dates::timestamp));
    let published = e
        .published
        .or_else(|| x.published.as_deref().and_then(dates::timestamp))
        .or(updated);
    Entry {
        source_id: Some(e.id.trim().to_string()).filter(|id| !id.is_empty()),
        title,
        link,
        summary,
        content,
        authors: authors(&e, &x),
        categories,
        category_labels,
        published,
        updated,
        enclosures,
    }
}

/// FeedBurner's origLink, else the entry's own link, else a guid that is a permalink.
fn article_link(e: &feed_rs::model::Entry, x: &ItemExtras, base: &Url) -> Option<String> {
    let absolute = |l: &str| canonical_url(l, Some(base));
    x.orig_link
        .as_deref()
        .and_then(absolute)
        .or_else(|| pick_link(&e.links, base))
        .or_else(|| x.permalink.as_deref().and_then(absolute))
}

fn authors(e: &feed_rs::model::Entry, x: &ItemExtras) -> Vec<String> {
    let mut authors: Vec<String> = e.authors.iter().filter_map(author_name).collect();
    if authors.is_empty() {
        authors = x.authors.iter().filter_map(|a| person_name(a)).collect();
    }
    authors.dedup();
    authors
}

/// The entry's categories (feed-rs's, then those only the extension pass read), each once, and
/// the labels of those whose source shows them by another name.
fn categories(e: &feed_rs::model::Entry, x: &ItemExtras) -> (Vec<String>, Vec<(String, String)>) {
    let mut categories: Vec<String> = e.categories.iter().filter_map(category_name).collect();
    for s in x.subjects.iter().filter_map(|s| clean_category(s)) {
        if !categories.contains(&s) {
            categories.push(s);
        }
    }
    let labelled = e
        .categories
        .iter()
        .filter_map(|c| Some((category_name(c)?, c.label.clone()?)))
        .chain(x.subject_labels.iter().cloned());
    let mut labels: Vec<(String, String)> = Vec::new();
    for (term, label) in labelled {
        let Some(label) = clean_category(&label).filter(|l| *l != term) else {
            continue;
        };
        if categories.contains(&term) && !labels.iter().any(|(t, _)| *t == term) {
            labels.push((term, label));
        }
    }
    (categories, labels)
}

/// A content type whose inline content is base64: neither text nor XML.
fn is_base64_type(mime: &str) -> bool {
    !(mime.starts_with("text/") || mime.ends_with("/xml") || mime.ends_with("+xml"))
}

/// Text from an element that does not say its type: HTML when it holds markup or entities.
fn guess_type(text: &str) -> &'static str {
    if text.contains('<') || text.contains('&') {
        "text/html"
    } else {
        "text/plain"
    }
}

/// The article link: an `alternate` (or rel-less) link first, then any other that is not an
/// attachment or a link about the entry rather than to it.
fn pick_link(links: &[feed_rs::model::Link], base: &Url) -> Option<String> {
    let alternate = links
        .iter()
        .filter(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"));
    let others = links.iter().filter(|l| {
        !matches!(
            l.rel.as_deref(),
            Some("enclosure" | "self" | "replies" | "edit" | "license" | "payment")
        )
    });
    alternate
        .chain(others)
        .find_map(|l| canonical_url(&l.href, Some(base)))
}

/// A title made from the body where the feed gave none: a headline's length. News headlines run
/// 60-80 characters; 100 keeps nearly all of one sentence and never a paragraph.
const FALLBACK_TITLE_CHARS: usize = 100;

fn fallback_title(html: Option<&str>) -> String {
    let text = html
        .map(|h| plain_text(&html_to_text(h)))
        .unwrap_or_default();
    if text.is_empty() {
        "(untitled)".to_string()
    } else {
        truncate_chars(text, FALLBACK_TITLE_CHARS)
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
    let name = p.name.as_deref().and_then(person_name);
    name.or_else(|| p.email.as_deref().and_then(person_name))
}

/// A person as readers show them: `jo@example.com (Jo Doe)` and `Jo Doe <jo@example.com>`
/// give `Jo Doe`; a bare address stays.
pub(super) fn person_name(raw: &str) -> Option<String> {
    let text = plain_text(raw);
    let text = text.trim();
    let name = if let Some(open) = text.find('(')
        && text.ends_with(')')
        && (open == 0 || text[..open].contains('@'))
    {
        text[open + 1..text.len() - 1].trim()
    } else if let Some(open) = text.find('<')
        && text.ends_with('>')
        && text[open..].contains('@')
        && open > 0
    {
        text[..open].trim()
    } else {
        text
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// A category's identity is its term (Atom) or its text (RSS); a label is only how it is shown.
fn category_name(c: &feed_rs::model::Category) -> Option<String> {
    clean_category(&c.term).or_else(|| c.label.as_deref().and_then(clean_category))
}

fn clean_category(raw: &str) -> Option<String> {
    let name = plain_text(raw);
    let name = name.trim_start_matches('#').trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Media attached to an entry: RSS `<enclosure>` (every one, from the extension pass) and Media
/// RSS (feed-rs's media objects), Atom `rel="enclosure"` links, JSON Feed attachments (typed
/// links without a rel). An enclosure may share the article's address: it is still the file.
fn enclosures(
    media: &[feed_rs::model::MediaObject],
    links: &[feed_rs::model::Link],
    x: &ItemExtras,
    base: &Url,
) -> Vec<Enclosure> {
    let from_rss = x.enclosures.iter().cloned();
    // Media RSS as the extension pass read it where it did (feed-rs lets a media:player
    // replace the file), else as feed-rs read it.
    let from_media: Vec<(String, Option<String>, Option<u64>)> = if x.has_media_content {
        x.media.clone()
    } else {
        media
            .iter()
            .flat_map(|m| &m.content)
            .filter_map(|c| {
                let url = c.url.as_ref()?.as_str().to_string();
                Some((url, c.content_type.as_ref().map(|m| m.to_string()), c.size))
            })
            .collect()
    };
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
    for (href, mime, size) in from_rss.chain(from_media).chain(from_links) {
        let Some(url) = canonical_url(&href, Some(base)) else {
            continue;
        };
        if out.iter().any(|e| e.url == url) {
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

#[cfg(test)]
mod tests {
    use super::person_name;

    #[test]
    fn people_are_named_not_addressed() {
        assert_eq!(
            person_name("jo@example.com (Jo Doe)").as_deref(),
            Some("Jo Doe")
        );
        assert_eq!(
            person_name("Jo Doe <jo@example.com>").as_deref(),
            Some("Jo Doe")
        );
        assert_eq!(
            person_name("jo@example.com").as_deref(),
            Some("jo@example.com")
        );
        assert_eq!(
            person_name("Jo (the editor)").as_deref(),
            Some("Jo (the editor)")
        );
        assert_eq!(person_name("  "), None);
    }
}
