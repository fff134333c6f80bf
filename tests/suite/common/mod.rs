//! Test support: a real HTTP server on 127.0.0.1:0 serving a copy of `fixtures/feeds/` (so tests
//! can edit feeds), with validators and 304s like a real static server, plus routes that
//! misbehave on purpose. And a runner for the real `aggregate` binary.
#![allow(dead_code)]

pub mod daemon;
pub mod evil;
pub mod oracle;
pub mod postgres;
pub mod render;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub status: u16,
    pub if_none_match: Option<String>,
    pub user_agent: Option<String>,
    /// When the request arrived and when it was answered.
    pub began: std::time::Instant,
    pub ended: std::time::Instant,
}

#[derive(Clone)]
struct ServerState {
    root: PathBuf,
    hits: Arc<Mutex<Vec<Hit>>>,
    started: Arc<Mutex<Vec<String>>>,
    /// Requests being answered now, and the most seen at once.
    in_flight: Arc<Mutex<(usize, usize)>>,
}

pub struct FixtureServer {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Paths of requests as they arrive (`hits` records them when answered).
    started: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<Mutex<(usize, usize)>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FixtureServer {
    pub fn start() -> FixtureServer {
        let root = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/feeds");
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), root.path().join(entry.file_name())).unwrap();
        }
        let hits = Arc::new(Mutex::new(Vec::new()));
        let started = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(Mutex::new((0, 0)));
        let state = ServerState {
            root: root.path().to_owned(),
            hits: hits.clone(),
            started: started.clone(),
            in_flight: in_flight.clone(),
        };
        std::sync::LazyLock::force(&GZIP_BOMB);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
            // Slow handlers may still be sleeping; don't wait for them.
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        FixtureServer {
            addr,
            root,
            hits,
            started,
            in_flight,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `/feeds/NAME`: a fixture served like a static file.
    pub fn feed(&self, name: &str) -> String {
        self.url(&format!("/feeds/{name}"))
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn started(&self) -> Vec<String> {
        self.started.lock().unwrap().clone()
    }

    /// The most requests this server was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }

    pub fn clear_hits(&self) {
        self.hits.lock().unwrap().clear();
    }

    /// Replaces a served fixture's content.
    pub fn write(&self, name: &str, contents: &[u8]) {
        std::fs::write(self.root.path().join(name), contents).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.path().join(name)).unwrap()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn content_type_for(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "rss" | "xml" => "application/rss+xml",
        "atom" => "application/atom+xml",
        "json" => "application/feed+json",
        "rdf" => "application/rdf+xml",
        "html" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn handle(State(state): State<ServerState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let began = std::time::Instant::now();
    state.started.lock().unwrap().push(path.clone());
    {
        let mut f = state.in_flight.lock().unwrap();
        f.0 += 1;
        f.1 = f.1.max(f.0);
    }
    let response = route(&state, &path, &headers).await;
    state.in_flight.lock().unwrap().0 -= 1;
    state.hits.lock().unwrap().push(Hit {
        path,
        status: response.status().as_u16(),
        if_none_match: headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        began,
        ended: std::time::Instant::now(),
    });
    response
}

async fn route(state: &ServerState, path: &str, headers: &HeaderMap) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    match parts.as_slice() {
        ["feeds", name] => serve_file(state, name, headers, true),
        // Like a server that ignores validators: no ETag, no Last-Modified, always 200.
        ["plain", name] => serve_file(state, name, headers, false),
        ["status", code] => {
            let code = StatusCode::from_u16(code.parse().unwrap()).unwrap();
            (code, format!("status {code}")).into_response()
        }
        ["slow", secs, name] => {
            tokio::time::sleep(Duration::from_secs(secs.parse().unwrap())).await;
            serve_file(state, name, headers, true)
        }
        // Redirects forever: /loop/1 → /loop/2 → ...
        ["loop", n] => {
            let next = n.parse::<u32>().unwrap() + 1;
            (
                StatusCode::FOUND,
                [(header::LOCATION, format!("/loop/{next}"))],
            )
                .into_response()
        }
        ["to-ftp"] => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, "ftp://127.0.0.1/feed.xml")],
        )
            .into_response(),
        ["retry-after", secs, _name] => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, secs.to_string())],
            "busy",
        )
            .into_response(),
        ["redirect", code, name] => {
            let code = StatusCode::from_u16(code.parse().unwrap()).unwrap();
            (code, [(header::LOCATION, format!("/feeds/{name}"))]).into_response()
        }
        ["gzip", name] => {
            let body = std::fs::read(state.root.join(name)).unwrap();
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&body).unwrap();
            gzip_response(enc.finish().unwrap(), content_type_for(name))
        }
        ["gzip-bomb"] => gzip_response(GZIP_BOMB.clone(), "application/rss+xml"),
        // A file a test wrote, at the root of the site (`/feed`, `/index.html`).
        [name] if !name.is_empty() && state.root.join(name).is_file() => {
            serve_file(state, name, headers, true)
        }
        // 32 MiB streamed with no Content-Length.
        ["huge"] => {
            let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
            let stream = futures_util::stream::iter(
                (0..512).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            (
                [(header::CONTENT_TYPE, "application/rss+xml")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        _ => (StatusCode::NOT_FOUND, "no such route").into_response(),
    }
}

/// 16 MiB of spaces in ~16 KiB of gzip, 16 times the tests' body limit: a decompression bomb.
/// Built once per test binary, off the server's threads' hot path.
static GZIP_BOMB: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..16 {
        enc.write_all(&chunk).unwrap();
    }
    enc.finish().unwrap()
});

fn gzip_response(body: Vec<u8>, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        body,
    )
        .into_response()
}

/// Serves a fixture with a content-hash ETag and its mtime as Last-Modified, answering 304 to a
/// matching If-None-Match (or, without one, to an If-Modified-Since not older than the file).
/// A sidecar `NAME.headers` adds "Name: value" lines to the response.
fn serve_file(state: &ServerState, name: &str, req: &HeaderMap, validators: bool) -> Response {
    let path = state.root.join(name);
    let Ok(body) = std::fs::read(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = format!("\"{}\"", aggregate::dedup::hex(&Sha256::digest(&body)[..8]));
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let last_modified = httpdate(mtime);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type_for(name)),
    );
    if let Ok(extra) = std::fs::read_to_string(state.root.join(format!("{name}.headers"))) {
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once(':').unwrap();
            headers.insert(
                HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                HeaderValue::from_str(v.trim()).unwrap(),
            );
        }
    }
    if validators {
        headers.insert(header::ETAG, HeaderValue::from_str(&etag).unwrap());
        headers.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_str(&last_modified).unwrap(),
        );
        let inm = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        let ims = req
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok());
        let not_modified = match (inm, ims) {
            (Some(inm), _) => inm.split(',').any(|t| t.trim() == etag),
            (None, Some(ims)) => ims == last_modified,
            _ => false,
        };
        if not_modified {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
    }
    (StatusCode::OK, headers, body).into_response()
}

fn httpdate(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// A scratch directory holding a config, the database and the outputs of one test.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write_config(&self, toml: &str) -> PathBuf {
        let p = self.path("config.toml");
        std::fs::write(&p, toml).unwrap();
        p
    }

    /// Runs the real binary in this directory.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_aggregate"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .expect("run aggregate")
    }

    pub fn run_once(&self) -> Output {
        self.run(&["--once", "--config", "config.toml"])
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// An output file parsed back with feed-rs, as a feed reader would.
    pub fn output(&self, rel: &str) -> feed_rs::model::Feed {
        let body = self.read(rel);
        feed_rs::parser::parse(body.as_bytes())
            .unwrap_or_else(|e| panic!("{rel} does not parse: {e}\n{body}"))
    }

    pub fn titles(&self, rel: &str) -> Vec<String> {
        self.output(rel)
            .entries
            .iter()
            .map(|e| e.title.as_ref().unwrap().content.clone())
            .collect()
    }

    /// The run's database, opened through the store's interface, for a test to look into.
    pub fn store(&self) -> Inspect {
        Inspect::open(&self.path("aggregate.db"))
    }
}

/// A store read from a synchronous test: each call waits for its answer.
pub struct Inspect {
    rt: tokio::runtime::Runtime,
    store: aggregate::store::Store,
}

impl Inspect {
    /// The SQLite database at `path` (migrated, as the binary would), through the store's
    /// interface.
    pub fn open(path: &Path) -> Inspect {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt
            .block_on(aggregate::store::Store::open_sqlite(
                path,
                &Default::default(),
            ))
            .unwrap();
        Inspect { rt, store }
    }

    pub fn stories(
        &self,
        q: aggregate::model::StoryQuery,
    ) -> Result<Vec<aggregate::model::Story>, aggregate::store::StoreError> {
        self.rt.block_on(self.store.stories(q))
    }
    pub fn entry_count(&self) -> Result<u64, aggregate::store::StoreError> {
        self.rt.block_on(self.store.entry_count())
    }

    pub fn feed_statuses(
        &self,
    ) -> Result<Vec<aggregate::store::FeedStatus>, aggregate::store::StoreError> {
        self.rt.block_on(self.store.feed_statuses())
    }

    pub fn integrity_check(&self) -> Result<(), aggregate::store::StoreError> {
        self.rt.block_on(self.store.integrity_check())
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The line of `err` that mentions `needle` (a feed's URL, say), or a panic showing all of it.
pub fn line_about<'a>(err: &'a str, needle: &str) -> &'a str {
    err.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("nothing about {needle} in:\n{err}"))
}

/// An RSS feed of `n` entries with ~3.6 KB descriptions: more than a tight disk can take.
pub fn big_feed(n: usize) -> String {
    let items: String = (0..n)
        .map(|i| format!("<item><title>Big {i}</title><guid>big-{i}</guid><description>{}</description></item>", "lorem ipsum ".repeat(300)))
        .collect();
    format!("<rss version=\"2.0\"><channel><title>big</title>{items}</channel></rss>")
}

/// Asserts a run succeeded, showing its output when not.
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// Tag rules used by the integration tests, spelled out so expectations are explicit.
pub const TAG_RULES: &str = r#"
[[tag]]
name = "Binance"
keywords = ["Binance", "BNB", "Changpeng Zhao"]

[[tag]]
name = "Ethereum"
keywords = ["Ethereum", "Ether", "ETH"]

[[tag]]
name = "Regulation"
keywords = ["SEC", "regulators", "regulatory", "MiCA"]
"#;

/// A config with these feed URLs, the test tag rules and one output per format plus extras.
pub fn config_with(feeds: &[&str], extra: &str) -> String {
    let mut s = String::from(
        "[storage]\npath = \"aggregate.db\"\n\n[fetch]\ntimeout = \"2s\"\nmax_body = \"1MiB\"\nconcurrency = 8\nper_host = 8\n\n",
    );
    for f in feeds {
        s.push_str(&format!("[[feed]]\nurl = \"{f}\"\n\n"));
    }
    s.push_str(TAG_RULES);
    s.push_str(
        r#"
[[output]]
name = "all"
title = "Everything"
limit = 200
path = "out/all.rss"

[[output]]
name = "all-atom"
limit = 200
path = "out/all.atom"

[[output]]
name = "all-json"
limit = 200
path = "out/all.json"

[[output]]
name = "binance"
tags = ["binance"]
path = "out/binance.rss"
"#,
    );
    s.push_str(extra);
    s
}
