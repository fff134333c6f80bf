//! Finding a site's feeds from one of its pages: the `<link rel="alternate">` tags a page
//! carries for every feed type, read with html5ever's tokenizer (the one ammonia uses), and
//! the paths where sites without such tags usually put their feeds.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use url::Url;

/// A feed a page points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLink {
    pub url: Url,
    pub title: Option<String>,
    /// The `type` the page gave it.
    pub mime: String,
}

/// The types a `<link rel="alternate">` to a feed carries, in the wild as in the specs.
const FEED_TYPES: &[&str] = &[
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+json",
    "application/json",
    "application/x-rss+xml",
    "application/x-atom+xml",
    "application/x.atom+xml",
    "text/xml",
    "application/xml",
];

/// Where sites put a feed they do not link to, most common first (WordPress, Ghost, Hugo,
/// Jekyll, Blogger and static generators between them).
pub const COMMON_PATHS: &[&str] = &[
    "/feed",
    "/rss",
    "/feed.xml",
    "/rss.xml",
    "/atom.xml",
    "/index.xml",
    "/feed.json",
    "/feeds/posts/default",
];

/// The feeds `html` links to, in document order, each once, resolved against the page's
/// `<base href>` (else `page`). Only http(s) links count.
pub fn feed_links(html: &str, page: &Url) -> Vec<FeedLink> {
    let sink = Sink::default();
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let found = tokenizer.sink.found.into_inner();
    let base = found
        .base
        .as_deref()
        .and_then(|b| page.join(b).ok())
        .unwrap_or_else(|| page.clone());
    let mut links: Vec<FeedLink> = Vec::new();
    for raw in found.links {
        let Ok(url) = base.join(raw.href.trim()) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") || links.iter().any(|l| l.url == url) {
            continue;
        }
        links.push(FeedLink {
            url,
            title: raw.title,
            mime: raw.mime,
        });
    }
    links
}

#[derive(Default)]
struct Found {
    base: Option<String>,
    links: Vec<RawLink>,
}

struct RawLink {
    href: String,
    title: Option<String>,
    mime: String,
}

#[derive(Default)]
struct Sink {
    found: RefCell<Found>,
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        if tag.kind != TagKind::StartTag {
            return TokenSinkResult::Continue;
        }
        let attr = |name: &str| {
            tag.attrs
                .iter()
                .find(|a| &*a.name.local == name)
                .map(|a| a.value.to_string())
        };
        let mut found = self.found.borrow_mut();
        match &*tag.name {
            "base" if found.base.is_none() => found.base = attr("href"),
            "link" => {
                let rel = attr("rel").unwrap_or_default().to_ascii_lowercase();
                let mime = attr("type").unwrap_or_default().trim().to_ascii_lowercase();
                // "alternate" among the rel tokens; a page's stylesheet or icon never.
                let alternate = rel.split_ascii_whitespace().any(|r| r == "alternate");
                let mime_base = mime.split(';').next().unwrap_or("").trim().to_string();
                if alternate && FEED_TYPES.contains(&mime_base.as_str()) {
                    if let Some(href) = attr("href").filter(|h| !h.trim().is_empty()) {
                        let title = attr("title")
                            .map(|t| t.trim().to_string())
                            .filter(|t| !t.is_empty());
                        found.links.push(RawLink {
                            href,
                            title,
                            mime: mime_base,
                        });
                    }
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternate_links_of_every_feed_type_in_document_order() {
        let page = Url::parse("https://news.example/markets/today").unwrap();
        let html = r#"<!doctype html><html><head>
            <link rel="stylesheet" href="/style.css" type="text/css">
            <LINK REL="Alternate" TYPE="application/rss+xml" TITLE=" Top stories " HREF="/rss/top">
            <link rel="alternate" type="application/atom+xml; charset=utf-8" href="https://news.example/atom.xml">
            <link rel="alternate" type="application/feed+json" href="feed.json">
            <link rel="alternate" type="text/html" hreflang="fr" href="/fr/">
            <link rel="alternate" type="application/rss+xml" href="/rss/top">
            <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
            <link rel="alternate home" type="application/rss+xml" href="//cdn.example/all.rss">
            </head><body><a href="/feed">not a link tag</a></body></html>"#;
        let links = feed_links(html, &page);
        let urls: Vec<&str> = links.iter().map(|l| l.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://news.example/rss/top",
                "https://news.example/atom.xml",
                "https://news.example/markets/feed.json",
                "https://cdn.example/all.rss",
            ]
        );
        assert_eq!(links[0].title.as_deref(), Some("Top stories"));
        assert_eq!(links[1].mime, "application/atom+xml");
    }

    #[test]
    fn links_resolve_against_the_pages_base() {
        let page = Url::parse("https://news.example/a/b").unwrap();
        let html = r#"<head><base href="https://static.example/x/"><link rel=alternate type=application/rss+xml href=feed></head>"#;
        let links = feed_links(html, &page);
        assert_eq!(links[0].url.as_str(), "https://static.example/x/feed");
        assert!(feed_links("<p>no head at all", &page).is_empty());
    }
}
