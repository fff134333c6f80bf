//! The operator's pages: `/` (outputs to subscribe to, every source's health, the latest
//! stories), `/healthz` and `/metrics`.

use std::fmt::Write;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{AppState, ServeError};
use crate::model::{Story, StoryQuery};
use crate::normalize::escape_html;
use crate::publish::Format;
use crate::store::{FeedStatus, Health};

/// Latest stories listed on the index page.
const INDEX_STORIES: usize = 25;

pub async fn page(State(state): State<AppState>) -> Result<Html<String>, ServeError> {
    let config = state.config();
    let statuses = state.store.feed_statuses().await?;
    let stories = state
        .store
        .stories(StoryQuery {
            limit: INDEX_STORIES,
            ..Default::default()
        })
        .await?;
    let base = config.server.base_url.clone();
    let href = |name: &str, f: Format| {
        base.join(&format!("feeds/{name}.{}", f.extension()))
            .map(String::from)
            .unwrap_or_default()
    };
    let mut links = String::new();
    let mut outputs = String::new();
    for o in &config.outputs {
        let title = escape_html(&o.title);
        for f in [Format::Rss, Format::Atom, Format::Json] {
            let mime = f.content_type().split(';').next().unwrap_or("");
            let _ = writeln!(
                links,
                r#"<link rel="alternate" type="{mime}" title="{title}" href="{}">"#,
                escape_html(&href(&o.name, f))
            );
        }
        let tags = if o.tags.is_empty() {
            "all stories".to_string()
        } else {
            escape_html(&o.tags.join(", "))
        };
        let _ = writeln!(
            outputs,
            r#"<li><strong>{title}</strong> ({tags}): <a href="{}">RSS</a> · <a href="{}">Atom</a> · <a href="{}">JSON Feed</a></li>"#,
            escape_html(&href(&o.name, Format::Rss)),
            escape_html(&href(&o.name, Format::Atom)),
            escape_html(&href(&o.name, Format::Json)),
        );
    }
    let configured: Vec<String> = config.feeds.iter().map(|f| f.url.to_string()).collect();
    let sources: String = statuses
        .iter()
        .filter(|s| configured.contains(&s.url))
        .map(source_row)
        .collect();
    let latest: String = stories.iter().map(story_item).collect();
    Ok(Html(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>aggregate</title>
{links}<style>body{{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}}
.err{{color:#a00}}.ok{{color:#070}}small{{color:#666}}</style></head>
<body><h1>aggregate</h1>
<h2>Feeds to subscribe to</h2><ul>{outputs}</ul>
<p><small>All of them at once: <a href="{base}outputs.opml">outputs.opml</a> · the sources, for another reader: <a href="{base}opml">opml</a></small></p>
<p><small>Any tags: <code>{base}feed.rss?tags=Binance,Blockchain&amp;exclude=...&amp;limit=50</code> (also <code>.atom</code>, <code>.json</code>).</small></p>
<h2>Sources</h2>
<table><tr><th>Source</th><th>Entries</th><th>Last success</th><th>Status</th><th>Next poll</th></tr>
{sources}</table>
<h2>Latest stories</h2><ul>{latest}</ul>
</body></html>
"#,
        base = escape_html(base.as_str()),
    )))
}

/// `GET /opml`: the sources, for another reader to import (never a `file:` path).
pub async fn sources_opml(State(state): State<AppState>) -> Result<Response, ServeError> {
    let config = state.config();
    let statuses = state.store.feed_statuses().await?;
    Ok(opml_response(crate::outputs::sources_opml(
        &config,
        &statuses,
        crate::outputs::Audience::Public,
    )))
}

/// `GET /outputs.opml`: every output, to subscribe to all of them at once.
pub async fn outputs_opml(State(state): State<AppState>) -> Response {
    opml_response(crate::outputs::outputs_opml(&state.config()))
}

fn opml_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/x-opml; charset=utf-8"),
            (header::CACHE_CONTROL, super::feeds::CACHE_CONTROL),
        ],
        body,
    )
        .into_response()
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "never".into())
}

fn source_row(s: &FeedStatus) -> String {
    let name = escape_html(s.title.as_deref().unwrap_or(&s.url));
    let status = match s.health() {
        Health::Gone => r#"<span class="err">gone (410): no longer polled</span>"#.to_string(),
        Health::Failing => format!(
            r#"<span class="err">{} (failed {} time(s) in a row)</span>"#,
            escape_html(s.last_error.as_deref().unwrap_or_default()),
            s.consecutive_failures
        ),
        Health::NotPolled => Health::NotPolled.label().into(),
        Health::Ok => format!(
            r#"<span class="ok">ok</span> (HTTP {}){}"#,
            s.last_status.map(|c| c.to_string()).unwrap_or_default(),
            s.last_note
                .as_deref()
                .map(|n| format!(
                    r#"<br><small class="note">note: {}</small>"#,
                    escape_html(n)
                ))
                .unwrap_or_default()
        ),
    };
    let moved = s
        .current_url
        .as_ref()
        .map(|u| format!("<br><small>moved to {}</small>", escape_html(u)))
        .unwrap_or_default();
    format!(
        "<tr><td>{name}<br><small>{}</small>{moved}</td><td>{}</td><td>{}</td><td>{status}</td><td>{}</td></tr>\n",
        escape_html(&s.url),
        s.entries,
        when(s.last_success),
        if s.gone {
            "—".to_string()
        } else {
            when(s.next_poll)
        },
    )
}

fn story_item(s: &Story) -> String {
    let e = &s.primary.entry;
    let title = escape_html(&e.title);
    let linked = match &e.link {
        Some(l) => format!(
            r#"<a href="{}" rel="noopener noreferrer">{title}</a>"#,
            escape_html(l)
        ),
        None => title,
    };
    let mut sources = escape_html(&s.primary.source.title);
    for other in &s.also {
        sources.push_str(", ");
        sources.push_str(&escape_html(&other.title));
    }
    let tags: Vec<String> = s.tags.iter().map(|t| escape_html(&t.0)).collect();
    format!(
        "<li>{linked} <small>{} · {sources} · {}</small></li>\n",
        s.primary.date.format("%Y-%m-%d %H:%M"),
        tags.join(", ")
    )
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    let store = tokio::time::timeout(Duration::from_secs(5), state.store.ping()).await;
    let store_ok = match store {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the store does not answer");
            false
        }
        Err(_) => {
            tracing::warn!("health check: the store did not answer within 5s");
            false
        }
    };
    let beat = state.live.since_heartbeat();
    // Alive once it has turned, and while it keeps turning.
    let scheduler_ok = beat.is_some() && !state.live.stalled();
    let (feeds, failing) = state.live.counts();
    let healthy = store_ok && scheduler_ok;
    let body = json!({
        "status": if healthy { "ok" } else { "unhealthy" },
        "store": if store_ok { "ok" } else { "unavailable" },
        "scheduler": if scheduler_ok { "ok" } else { "stalled" },
        "seconds_since_scheduler_turn": beat,
        "feeds": feeds,
        "feeds_failing": failing,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
