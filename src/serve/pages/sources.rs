//! `/sources`: every configured source with its health, and `/sources/KEY`: one source's
//! recent polls and errors and its latest stories.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{Nav, ago, configured, health, layout, respond, shown_url, source_key, source_name};
use crate::config::FeedConfig;
use crate::model::StoryQuery;
use crate::serve::{AppState, ServeError};
use crate::store::{FeedStatus, PollRecord};

/// Stories on a source's page.
const SOURCE_STORIES: usize = 20;

pub async fn sources(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    let config = state.config();
    let statuses = state.store.feed_statuses().await?;
    let now = Utc::now();
    let body = html! {
        table.sources {
            thead {
                tr {
                    th { "Source" } th { "Health" } th { "Last success" } th { "Last error" }
                    th.num { "Failures" } th { "Next poll" } th.num { "Entries" }
                }
            }
            tbody {
                @for (feed, status) in configured(&config, &statuses) {
                    tr {
                        td {
                            a.source href={ "/sources/" (source_key(feed.url.as_str())) } { (source_name(feed, status)) }
                            @if let Some(url) = shown_url(feed) { br; small.url { (url) } }
                            @if let Some(moved) = status.and_then(|s| s.current_url.as_deref()) {
                                br; small.url { "moved to " (moved) }
                            }
                        }
                        td { (health(status)) }
                        td data-label="Last success" { (ago(status.and_then(|s| s.last_success), now)) }
                        td data-label="Last error" {
                            @match status.and_then(|s| s.last_error.as_deref().map(|e| (e, s.last_attempt))) {
                                Some((e, at)) => { span.error { (e) } br; small { (ago(at, now)) } }
                                None => span.muted { "none" },
                            }
                        }
                        td.num data-label="Failures" { (status.map_or(0, |s| s.consecutive_failures)) }
                        td data-label="Next poll" {
                            @if status.is_some_and(|s| s.gone) { "—" }
                            @else { (ago(status.and_then(|s| s.next_poll), now)) }
                        }
                        td.num data-label="Entries" { (status.map_or(0, |s| s.entries)) }
                    }
                }
            }
        }
    };
    Ok(respond(&headers, layout("Sources", Nav::Sources, body)))
}

pub async fn source(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    let config = state.config();
    let feed = config
        .feeds
        .iter()
        .find(|f| source_key(f.url.as_str()) == key)
        .ok_or_else(|| ServeError::NotFound(format!("no source {key:?}; see /sources")))?;
    let url = feed.url.as_str();
    let (statuses, polls, stories) = tokio::try_join!(
        state.store.feed_statuses(),
        state.store.recent_polls(url),
        state.store.stories(StoryQuery {
            feed: Some(url.to_string()),
            limit: SOURCE_STORIES,
            ..Default::default()
        }),
    )?;
    let status = statuses.iter().find(|s| s.url == url);
    let now = Utc::now();
    let name = source_name(feed, status);
    let body = html! {
        (facts(feed, status, now))
        section #polls {
            h2 { "Recent polls" }
            (poll_table(&polls, now))
        }
        section #stories {
            h2 { "Latest stories" }
            (super::stories::list(&stories, now))
        }
    };
    Ok(respond(&headers, layout(&name, Nav::Sources, body)))
}

/// What a source is and how it fares.
fn facts(feed: &FeedConfig, status: Option<&FeedStatus>, now: DateTime<Utc>) -> Markup {
    html! {
        dl.facts {
            dt { "Health" } dd { (health(status)) }
            @if let Some(url) = shown_url(feed) { dt { "Feed" } dd { a href=(url) { (url) } } }
            @if let Some(site) = status.and_then(|s| s.site_link.as_deref()) {
                dt { "Site" } dd { a href=(site) rel="noopener noreferrer" { (site) } }
            }
            @if let Some(moved) = status.and_then(|s| s.current_url.as_deref()) {
                dt { "Moved to" } dd { (moved) }
            }
            dt { "Last success" } dd { (ago(status.and_then(|s| s.last_success), now)) }
            dt { "Next poll" } dd { (ago(status.and_then(|s| s.next_poll), now)) }
            dt { "Polled every" } dd { (crate::config::format_duration(feed.interval)) }
            dt { "Entries stored" } dd { (status.map_or(0, |s| s.entries)) }
            @if !feed.tags.is_empty() {
                dt { "Tags" } dd { @for t in &feed.tags { span.tag { (t.0) } " " } }
            }
            @if let Some(note) = status.and_then(|s| s.last_note.as_deref()) {
                dt { "Note" } dd.note { (note) }
            }
        }
    }
}

/// A source's last polls, newest first, failed ones marked.
fn poll_table(polls: &[PollRecord], now: DateTime<Utc>) -> Markup {
    html! {
        @if polls.is_empty() {
            p.muted { "Not polled yet." }
        } @else {
            table.polls {
                thead { tr { th { "When" } th { "HTTP" } th { "Outcome" } } }
                tbody {
                    @for p in polls {
                        tr.failed[p.error.is_some()] {
                            td { (ago(Some(p.at), now)) }
                            td { @if let Some(s) = p.status { (s) } @else { "—" } }
                            td {
                                @match (&p.error, &p.note, p.status) {
                                    (Some(e), _, _) => span.error { (e) },
                                    (None, _, Some(304)) => "not modified",
                                    (None, Some(n), _) => { "read; " span.note { (n) } },
                                    (None, None, _) => "read",
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
