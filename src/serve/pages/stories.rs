//! `/stories`: the latest stories, filtered by tag and searched by title, each with every
//! outlet that carried it; `/stories/ID`: one story; `/tags`: every tag with its count.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::home::urlencode;
use super::{Nav, ago, layout, respond, sanitised};
use crate::model::{Cursor, Story, StoryId, StoryQuery};
use crate::serve::{AppState, ServeError};

/// Stories on a page of `/stories`.
const PAGE: usize = 30;
/// The longest search accepted: far more than a few words of a headline.
const MAX_SEARCH: usize = 200;

/// Stories as the pages list them: headline (to its page), when, the outlets, the tags.
pub(super) fn list(stories: &[Story], now: DateTime<Utc>) -> Markup {
    html! {
        @if stories.is_empty() {
            p.muted { "No stories." }
        } @else {
            ol.stories {
                @for s in stories {
                    li.story {
                        a.headline href={ "/stories/" (s.id) } { (s.primary.entry.title) }
                        div.meta {
                            (ago(Some(s.primary.date), now))
                            " · " (outlets(s))
                            @for t in &s.tags {
                                " " a.tag href={ "/stories?tag=" (urlencode(&t.0)) } { (t.0) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every outlet that carried the story, each linked to its copy where it has one.
fn outlets(s: &Story) -> Markup {
    let all = std::iter::once(&s.primary.source).chain(&s.also);
    html! {
        span.outlets {
            @for (i, source) in all.enumerate() {
                @if i > 0 { ", " }
                @match &source.link {
                    Some(link) => a.outlet href=(link) rel="noopener noreferrer" { (source.public_title()) },
                    None => span.outlet { (source.public_title()) },
                }
            }
        }
    }
}

/// What `/stories` was asked: `tag`, `q` (words of the title), `before` (a page cursor).
struct Asked {
    tag: Option<String>,
    text: Option<String>,
    before: Option<Cursor>,
}

fn asked(raw: &str) -> Result<Asked, ServeError> {
    let mut a = Asked {
        tag: None,
        text: None,
        before: None,
    };
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let value = value.trim();
        match key.as_ref() {
            "tag" if !value.is_empty() => a.tag = Some(value.to_string()),
            "q" if value.chars().count() > MAX_SEARCH => {
                return Err(ServeError::BadRequest(format!(
                    "q: a search is at most {MAX_SEARCH} characters"
                )));
            }
            "q" if !value.is_empty() => a.text = Some(value.to_string()),
            "before" => {
                a.before = Some(value.parse().map_err(|()| {
                    ServeError::BadRequest(format!(
                        "before={value:?} is not a page cursor; follow the page's Older link"
                    ))
                })?)
            }
            "tag" | "q" => {}
            other => {
                return Err(ServeError::BadRequest(format!(
                    "unknown parameter {other:?}; use tag, q and before"
                )));
            }
        }
    }
    Ok(a)
}

pub async fn stories(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    let a = asked(raw.as_deref().unwrap_or(""))?;
    let (page, tags) = tokio::try_join!(
        state.store.page(StoryQuery {
            tags: a.tag.iter().cloned().collect(),
            limit: PAGE,
            before: a.before.filter(|_| a.text.is_none()),
            text: a.text.clone(),
            ..Default::default()
        }),
        state.store.tag_counts(),
    )?;
    let now = Utc::now();
    // The tag as the store spells it, whatever the query's case.
    let tag = a.tag.as_deref().map(|t| {
        tags.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(t))
            .map_or(t.to_string(), |(name, _)| name.clone())
    });
    let older = page.next.map(|c| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(t) = &tag {
            q.append_pair("tag", t);
        }
        q.append_pair("before", &c.to_string());
        format!("/stories?{}", q.finish())
    });
    let title = match (&tag, &a.text) {
        (Some(t), Some(q)) => format!("Stories tagged {t} matching “{q}”"),
        (Some(t), None) => format!("Stories tagged {t}"),
        (None, Some(q)) => format!("Stories matching “{q}”"),
        (None, None) => "Stories".to_string(),
    };
    let body = html! {
        form.search method="get" action="/stories" role="search" {
            label for="q" { "Search titles" }
            input #q type="search" name="q" value=[a.text.as_deref()] placeholder="ETF inflows";
            label for="tag" { "Tag" }
            select #tag name="tag" {
                option value="" { "any" }
                @for (name, n) in &tags {
                    option value=(name) selected[tag.as_deref() == Some(name.as_str())] { (name) " (" (n) ")" }
                }
            }
            button type="submit" { "Show" }
        }
        @if let Some(t) = &tag {
            p.small { "Subscribe: " a href={ "/feed.rss?tags=" (urlencode(t)) } { "RSS" } " · "
                a href={ "/feed.atom?tags=" (urlencode(t)) } { "Atom" } " · "
                a href={ "/feed.json?tags=" (urlencode(t)) } { "JSON Feed" } }
        }
        (list(&page.stories, now))
        @if let Some(href) = older { p.paging { a rel="next" href=(href) { "Older stories →" } } }
    };
    Ok(respond(&headers, layout(&title, Nav::Stories, body)))
}

pub async fn story(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    let not_found = || ServeError::NotFound(format!("no story {id:?}; see /stories"));
    let story_id: StoryId = id.parse().map_err(|()| not_found())?;
    let s = state.store.story(story_id).await?.ok_or_else(not_found)?;
    let now = Utc::now();
    let e = &s.primary.entry;
    let body = html! {
        article.story {
            div.meta {
                (ago(Some(s.primary.date), now))
                @if s.updated > s.primary.date { " · updated " (ago(Some(s.updated), now)) }
                @for t in &s.tags {
                    " " a.tag href={ "/stories?tag=" (urlencode(&t.0)) } { (t.0) }
                }
            }
            @if !e.authors.is_empty() { p.byline { "By " (e.authors.join(", ")) } }
            @if let Some(link) = &e.link {
                p { a.read href=(link) rel="noopener noreferrer" { "Read it at " (s.primary.source.public_title()) " →" } }
            }
            @if let Some(html) = e.content.as_deref().or(e.summary.as_deref()) {
                div.text { (sanitised(html)) }
            }
            h2 { "Carried by" }
            ul.carried {
                @for source in std::iter::once(&s.primary.source).chain(&s.also) {
                    li {
                        @match &source.link {
                            Some(link) => a href=(link) rel="noopener noreferrer" { (source.public_title()) },
                            None => (source.public_title()),
                        }
                    }
                }
            }
            p.small { "Guid " code { (s.guid) } }
        }
    };
    Ok(respond(&headers, layout(&e.title, Nav::Stories, body)))
}

pub async fn tags(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    let tags = state.store.tag_counts().await?;
    let body = html! {
        @if tags.is_empty() {
            p.muted { "No tags yet." }
        } @else {
            table.tags {
                thead { tr { th { "Tag" } th.num { "Stories" } th { "Feed" } } }
                tbody {
                    @for (name, n) in &tags {
                        tr {
                            td { a.tag href={ "/stories?tag=" (urlencode(name)) } { (name) } }
                            td.num { (n) }
                            td {
                                a href={ "/feed.rss?tags=" (urlencode(name)) } { "RSS" } " · "
                                a href={ "/feed.atom?tags=" (urlencode(name)) } { "Atom" } " · "
                                a href={ "/feed.json?tags=" (urlencode(name)) } { "JSON Feed" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(&headers, layout("Tags", Nav::Tags, body)))
}
