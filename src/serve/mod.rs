//! The HTTP server: configured outputs and ad-hoc tag feeds for feed readers, pages for people,
//! health and metrics. It reads through its own SQLite connections and never runs the
//! pipeline; rendered feeds are cached until the scheduler says the store changed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

// Connections: MAX_CONNECTIONS in all, `server.per_address` from one address (a slowloris
// cannot take every slot).
use crate::config::{Config, MAX_CONNECTIONS};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

mod cache;
mod feeds;
mod index;
mod pages;
pub mod websub;

pub use cache::{Cache, CacheKey, Content};

/// What every handler may use: one `Arc`, since axum clones the state for every request (for
/// the middleware and again for the handler). Cloned field by field, its dozen reference
/// counts were a sixth of the CPU of answering a 304 (perf, `wrk -c32`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Store,
    pub config: watch::Receiver<Arc<Config>>,
    pub cache: Arc<Cache>,
    pub live: Arc<Live>,
    pub metrics: Metrics,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }

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
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{message}\n"),
        )
            .into_response()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/sources", get(pages::sources))
        .route("/sources/{key}", get(pages::source))
        .route("/stories", get(pages::stories))
        .route("/stories/{id}", get(pages::story))
        .route("/tags", get(pages::tags))
        .route("/style.css", get(pages::style))
        .route("/copy.js", get(pages::script))
        .route("/healthz", get(index::healthz))
        .route("/metrics", get(index::metrics))
        .route("/feeds/{file}", get(feeds::output))
        .route("/feed.rss", get(feeds::adhoc_rss))
        .route("/feed.atom", get(feeds::adhoc_atom))
        .route("/feed.json", get(feeds::adhoc_json))
        .route("/opml", get(index::sources_opml))
        .route("/outputs.opml", get(index::outputs_opml))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .fallback(|| async {
            ServeError::NotFound("no such page; see / for the feeds served here".into())
        })
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // A MatchedPath is a shared string: cloning it copies no bytes.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    state
        .metrics
        .requests
        .with_label_values(&[
            route.as_ref().map_or("", |m| m.as_str()),
            response.status().as_str(),
        ])
        .inc();
    response
}

/// Bytes buffered for a request's head (hyper's minimum is 8 KiB); larger heads get 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// Serves until `token` is cancelled, then stops accepting and waits for open requests to
/// finish (the caller bounds that wait).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    token: CancellationToken,
) -> std::io::Result<()> {
    let header_timeout = state.config().server.header_timeout;
    let per_address = state.config().server.per_address;
    let app = router(state);
    let graceful = GracefulShutdown::new();
    let total = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let mut workers = Workers::get()?;
    loop {
        let (stream, peer) = tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            continue;
        };
        let Some(slot) = IpSlot::take(&per_ip, peer.ip(), per_address) else {
            continue;
        };
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEADERS);
        // The connection moves to a worker of its own runtime, registered there, so its
        // requests never cross threads; if it cannot be moved it is served here.
        let stream = match stream.into_std() {
            Ok(std) => std,
            Err(e) => {
                tracing::debug!(error = %e, %peer, "could not hand the connection to a worker");
                continue;
            }
        };
        let (app, watcher) = (app.clone(), graceful.watcher());
        workers.next().spawn(async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, %peer, "could not register the connection");
                    return;
                }
            };
            let conn = watcher
                .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app)));
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Connection workers: one thread per core, each with a single-threaded runtime, like
/// nginx's worker processes. On the shared multi-threaded runtime a connection's wake-ups
/// hopped between workers and every task paid for work stealing; here a connection lives on
/// one thread from its first request to its last. Connections are dealt out in turn. The
/// threads live as long as the process (the server starts once), so a task a handler
/// started, or a pooled database connection it opened, outlives the server's shutdown.
#[derive(Clone)]
struct Workers {
    handles: Arc<[tokio::runtime::Handle]>,
    next: usize,
}

impl Workers {
    fn get() -> std::io::Result<Workers> {
        static HANDLES: std::sync::OnceLock<Arc<[tokio::runtime::Handle]>> =
            std::sync::OnceLock::new();
        if let Some(handles) = HANDLES.get() {
            return Ok(Workers {
                handles: handles.clone(),
                next: 0,
            });
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut handles = Vec::with_capacity(cores);
        for i in 0..cores {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        }
        let handles = HANDLES.get_or_init(|| handles.into()).clone();
        Ok(Workers { handles, next: 0 })
    }

    fn next(&mut self) -> &tokio::runtime::Handle {
        self.next = (self.next + 1) % self.handles.len();
        &self.handles[self.next]
    }
}

/// One of an address's connection slots, given back on drop.
struct IpSlot {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl IpSlot {
    fn take(map: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, most: usize) -> Option<IpSlot> {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            map: map.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}
