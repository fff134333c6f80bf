//! What machines read beside the feeds: `/healthz`, `/metrics`, and the OPML lists of the
//! sources and the outputs.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, ServeError};

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
