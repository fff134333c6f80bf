//! The HTTP server: configured outputs and ad-hoc tag feeds for feed readers, an index page,
//! health and metrics. It reads through its own SQLite connections and never runs the
//! pipeline; rendered feeds are cached until the scheduler says the store changed.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::store::{ReaderPool, StoreError};

mod cache;
mod feeds;
mod index;

pub use cache::Cache;

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub readers: Arc<ReaderPool>,
    pub config: watch::Receiver<Arc<Config>>,
    pub cache: Arc<Cache>,
    pub live: Arc<Live>,
    pub metrics: Metrics,
}

impl AppState {
    fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }
}

/// A request that cannot be answered with a feed. Clients see the message of `NotFound` and
/// `BadRequest`; an `Internal` error is logged and shown only as "internal error".
#[derive(Debug)]
pub enum ServeError {
    NotFound(String),
    BadRequest(String),
    Internal(String),
}

impl From<StoreError> for ServeError {
    fn from(e: StoreError) -> Self {
        ServeError::Internal(e.to_string())
    }
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ServeError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ServeError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ServeError::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_string())
            }
        };
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index::page))
        .route("/healthz", get(index::healthz))
        .route("/metrics", get(index::metrics))
        .route("/feeds/{file}", get(feeds::output))
        .route("/feed.rss", get(feeds::adhoc_rss))
        .route("/feed.atom", get(feeds::adhoc_atom))
        .route("/feed.json", get(feeds::adhoc_json))
        .route_layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .fallback(|| async { ServeError::NotFound("no such page; see / for the feeds served here".into()) })
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let response = next.run(req).await;
    state.metrics.requests.with_label_values(&[route.as_str(), response.status().as_str()]).inc();
    response
}

/// Serves until `token` is cancelled, then stops accepting and lets open requests finish.
pub async fn run(listener: TcpListener, state: AppState, token: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(token.cancelled_owned()).await
}
