//! The pages for people: an operator's and a reader's home at `/`, the sources and their
//! health (`/sources`, a page per source), the stories with a tag filter and a search
//! (`/stories`, a page per story) and the tags (`/tags`). Server-rendered with maud, so
//! every value is escaped unless it is HTML sanitised on the way in; one small stylesheet and
//! one small script (copy a feed's URL), both served by the binary; every page works without
//! the script and reads on a phone. Pages answer conditional requests (a strong ETag of the
//! bytes) and are gzipped, like the feeds.
//!
//! A reader of these pages never sees a path on this machine: a `file:` source is named by
//! its title or the site it links, and its URL is not shown.

use std::io::Write;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

use crate::config::{Config, FeedConfig};
use crate::model::relative_time;
use crate::store::{FeedStatus, Health};

mod home;
mod sources;
mod stories;

pub use home::home;
pub use sources::{source, sources};
pub use stories::{stories, story, tags};

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("copy.js");

/// The assets' version in their URLs (a hash of both): browsers cache them for an hour, and a
/// new build's pages ask for the new ones at once.
static ASSETS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let digest = Sha256::new()
        .chain_update(STYLE)
        .chain_update(SCRIPT)
        .finalize();
    crate::dedup::hex(&digest[..4])
});

/// `GET /style.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /copy.js`: adds a Copy button beside each feed URL (the URLs are selectable text
/// without it).
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Which entry of the navigation a page is under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nav {
    Home,
    Stories,
    Sources,
    Tags,
}

/// A whole page: the navigation, `title` as its heading, `body` below.
fn layout(title: &str, nav: Nav, body: Markup) -> Markup {
    layout_with(title, nav, html! {}, body)
}

/// A whole page with more in its head (the home page's feed autodiscovery links).
fn layout_with(title: &str, nav: Nav, head: Markup, body: Markup) -> Markup {
    let item = |to: Nav, href: &str, label: &str| {
        html! {
            @if to == nav {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · aggregate" }
                link rel="stylesheet" href={ "/style.css?v=" (*ASSETS) };
                (head)
            }
            body {
                header {
                    nav {
                        span.brand { "aggregate" }
                        (item(Nav::Home, "/", "Home"))
                        (item(Nav::Stories, "/stories", "Stories"))
                        (item(Nav::Sources, "/sources", "Sources"))
                        (item(Nav::Tags, "/tags", "Tags"))
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                footer { "aggregate " (env!("CARGO_PKG_VERSION")) }
                script src={ "/copy.js?v=" (*ASSETS) } defer {}
            }
        }
    }
}

/// A time as a person says it ("12 min ago"), the exact time on hover and in `datetime`.
fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match t {
        None => html! { span.muted { "never" } },
        Some(t) => html! {
            time datetime=(t.to_rfc3339()) title=(t.format("%Y-%m-%d %H:%M:%S UTC")) {
                (relative_time(t, now))
            }
        },
    }
}

/// A source's key in its page's URL (`/sources/KEY`): a short hash of its configured URL,
/// the same in every instance and across restarts, and no path of this machine.
fn source_key(url: &str) -> String {
    crate::dedup::hex(&Sha256::digest(url.as_bytes())[..6])
}

/// What a source is called on the pages: its configured title, else the feed's own, else its
/// host; a local file with neither is "a local feed", never its path.
fn source_name(feed: &FeedConfig, status: Option<&FeedStatus>) -> String {
    feed.title
        .clone()
        .or_else(|| status.and_then(|s| s.title.clone()))
        .filter(|t| !t.trim().is_empty())
        .or_else(|| feed.url.host_str().map(str::to_string))
        .unwrap_or_else(|| "a local feed".into())
}

/// A source's URL as the pages show it: `None` for a local file.
fn shown_url(feed: &FeedConfig) -> Option<&str> {
    (feed.url.scheme() != "file").then(|| feed.url.as_str())
}

/// The configured feeds with their stored status, in config order.
fn configured<'a>(
    config: &'a Config,
    statuses: &'a [FeedStatus],
) -> impl Iterator<Item = (&'a FeedConfig, Option<&'a FeedStatus>)> {
    config.feeds.iter().map(move |f| {
        let status = statuses.iter().find(|s| s.url == f.url.as_str());
        (f, status)
    })
}

/// A source's health in colour and words.
fn health(status: Option<&FeedStatus>) -> Markup {
    let health = status.map_or(Health::NotPolled, FeedStatus::health);
    let class = match health {
        Health::Ok => "health ok",
        Health::Failing => "health failing",
        Health::Gone => "health gone",
        Health::NotPolled => "health pending",
    };
    let words = match (health, status) {
        (Health::Failing, Some(s)) => format!("failing ({} in a row)", s.consecutive_failures),
        (Health::Gone, _) => "gone (410): no longer polled".into(),
        (h, _) => h.label().into(),
    };
    html! { span class=(class) { (words) } }
}

/// A rendered page as the response: 304 when the client holds these bytes (strong ETag),
/// else the page, gzipped when the client takes it. `no-cache`: the relative times age, so a
/// client asks again each time, and a 304 costs it nothing.
fn respond(req: &HeaderMap, page: Markup) -> Response {
    let body = page.into_string();
    let digest = Sha256::digest(body.as_bytes());
    let hex = crate::dedup::hex(&digest[..16]);
    // Like the feeds': the gzip body is another representation, with its own tag.
    let tags = [format!("\"{hex}\""), format!("\"{hex}-gz\"")];
    let gzip = super::feeds::accepts_gzip(req);
    let mut headers = HeaderMap::with_capacity(5);
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&tags[gzip as usize]).expect("a quoted hex ETag is a header value"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let typed = tags.each_ref().map(|t| {
        t.parse::<headers::ETag>()
            .expect("a quoted hex ETag parses")
    });
    if super::feeds::none_match(req, &typed).unwrap_or(false) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body.as_bytes()).expect("writing to memory");
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (headers, gz.finish().expect("writing to memory")).into_response();
    }
    (headers, body).into_response()
}

/// HTML that was sanitised when it was stored (see `normalize`), shown as it is.
fn sanitised(html: &str) -> PreEscaped<&str> {
    PreEscaped(html)
}
