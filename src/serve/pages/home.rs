//! `/`: the feeds to subscribe to (each with its item count, newest story and links in every
//! format), the sources' health at a glance, the latest stories and the busiest tags.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{Nav, ago, configured, health, layout_with, respond, source_key, source_name};
use crate::config::{Config, FeedConfig, OutputConfig};
use crate::model::StoryQuery;
use crate::publish::Format;
use crate::serve::feeds::render_output;
use crate::serve::{AppState, ServeError};
use crate::store::{FeedStatus, Health};

/// Latest stories on the home page; the stories page has the rest.
const LATEST: usize = 10;
/// Tags on the home page; the tags page has them all.
const TOP_TAGS: usize = 12;

pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    let config = state.config();
    let now = Utc::now();
    let mut outputs = Vec::with_capacity(config.outputs.len());
    for out in &config.outputs {
        // The RSS rendering is what a reader most likely fetched: usually a cache hit.
        let r = render_output(&state, &config, out, Format::Rss, None).await?;
        outputs.push((out, r.items, r.newest));
    }
    let (statuses, latest, tags) = tokio::try_join!(
        state.store.feed_statuses(),
        state.store.stories(StoryQuery {
            limit: LATEST,
            ..Default::default()
        }),
        state.store.tag_counts(),
    )?;
    let sources: Vec<_> = configured(&config, &statuses).collect();
    let body = html! {
        (outputs_section(&config, &outputs, now))
        (health_section(&sources))
        section #latest {
            h2 { "Latest stories" }
            (super::stories::list(&latest, now))
            p { a href="/stories" { "All stories →" } }
        }
        section #tags {
            h2 { "Tags" }
            p.tags {
                @for (name, n) in tags.iter().take(TOP_TAGS) {
                    a.tag href={ "/stories?tag=" (urlencode(name)) } { (name) " " span.count { (n) } }
                    " "
                }
                a href="/tags" { "every tag →" }
            }
        }
    };
    let head = html! {
        @for out in &config.outputs {
            @for f in [Format::Rss, Format::Atom, Format::Json] {
                link rel="alternate" type=(f.content_type().split(';').next().unwrap_or(""))
                    title=(out.title) href=(feed_url(&config, out, f));
            }
        }
    };
    Ok(respond(
        &headers,
        layout_with("News, merged", Nav::Home, head, body),
    ))
}

/// The outputs, each with what it holds and its links.
fn outputs_section(
    config: &Config,
    outputs: &[(&OutputConfig, usize, Option<DateTime<Utc>>)],
    now: DateTime<Utc>,
) -> Markup {
    html! {
        section #outputs {
            h2 { "Feeds to subscribe to" }
            table.outputs {
                thead { tr { th { "Feed" } th { "Holds" } th.num { "Items" } th { "Newest" } th { "Subscribe" } } }
                tbody {
                    @for (out, items, newest) in outputs {
                        (output_row(config, out, *items, *newest, now))
                    }
                }
            }
            p.small {
                "All of them at once: " a href="/outputs.opml" { "outputs.opml" }
                " · the sources, for another reader: " a href="/opml" { "opml" }
                " · any tags: " code { (config.server.base_url.as_str()) "feed.rss?tags=Binance&exclude=…" }
            }
        }
    }
}

/// How many sources are in each health, and the failing ones named with their error.
fn health_section(sources: &[(&FeedConfig, Option<&FeedStatus>)]) -> Markup {
    let health_of = |s: Option<&FeedStatus>| s.map_or(Health::NotPolled, |s| s.health());
    let count = |h: Health| sources.iter().filter(|(_, s)| health_of(*s) == h).count();
    let failing = sources
        .iter()
        .filter(|(_, s)| matches!(health_of(*s), Health::Failing | Health::Gone));
    html! {
        section #health {
            h2 { "Sources" }
            p {
                a href="/sources" { (sources.len()) " sources" } ": "
                span.health.ok { (count(Health::Ok)) " ok" } ", "
                span.health.failing { (count(Health::Failing)) " failing" } ", "
                span.health.gone { (count(Health::Gone)) " gone" } ", "
                span.health.pending { (count(Health::NotPolled)) " not polled yet" }
            }
            ul.failing {
                @for (feed, status) in failing {
                    li {
                        a href={ "/sources/" (source_key(feed.url.as_str())) } { (source_name(feed, *status)) }
                        " " (health(*status))
                        @if let Some(e) = status.and_then(|s| s.last_error.as_deref()) {
                            ": " span.error { (e) }
                        }
                    }
                }
            }
        }
    }
}

fn output_row(
    config: &Config,
    out: &OutputConfig,
    items: usize,
    newest: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Markup {
    let url = |f: Format| feed_url(config, out, f);
    html! {
        tr {
            td { strong { (out.title) } }
            td { (crate::outputs::describe(&out.tags, &out.exclude_tags)) }
            td.num data-label="Items" { (items) }
            td data-label="Newest" { (ago(newest, now)) }
            td.subscribe {
                @for (f, label) in [(Format::Rss, "RSS"), (Format::Atom, "Atom"), (Format::Json, "JSON Feed")] {
                    span.feed-link {
                        a.feed href=(url(f)) type=(f.content_type().split(';').next().unwrap_or(""))
                            title=(url(f)) data-copy=(url(f)) { (label) }
                    }
                }
            }
        }
    }
}

/// An output's URL in a format, on the configured base URL.
fn feed_url(config: &Config, out: &OutputConfig, f: Format) -> String {
    config
        .server
        .base_url
        .join(&format!("feeds/{}.{}", out.name, f.extension()))
        .map(String::from)
        .unwrap_or_default()
}

/// A query-string value.
pub(super) fn urlencode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
