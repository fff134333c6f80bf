//! HTTP (and file) fetching with the limits that keep us polite and bounded: a per-host
//! concurrency limit (the global one is the pipeline's, over fetch to store), conditional GET, a whole-request timeout, at most
//! [`MAX_REDIRECTS`] redirects followed by hand (so a permanent move can be remembered and a
//! redirect to another scheme refused), and a body limit enforced while streaming, after
//! decompression. Parses nothing, stores nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::{FetchConfig, format_duration};
use crate::model::Validators;

mod guard;

pub use guard::private_kind;

/// Redirect hops followed before giving up: enough for http→https→www→feed path moves.
pub const MAX_REDIRECTS: usize = 5;

const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
     application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";

/// A successful fetch: the body, or the server's word that nothing changed.
#[derive(Debug)]
pub enum Fetched {
    NotModified(Response),
    Body(Response, Vec<u8>),
}

/// What we learned from the response, besides the body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The address that answered, after any redirects.
    pub url: Url,
    pub status: u16,
    pub content_type: Option<String>,
    pub validators: Validators,
    /// Set when every hop to the final URL was permanent (301/308): the feed has moved.
    pub moved_to: Option<Url>,
    /// From Cache-Control max-age, for the scheduler.
    pub max_age: Option<Duration>,
    /// The Content-Location header as sent: the document's own address, which relative links
    /// in it are resolved against (as feedparser and browsers do).
    pub content_location: Option<String>,
}

/// The HTTP client could not be built (its TLS backend failed to start, say).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {}", format_duration(*.0))]
    Timeout(Duration),
    #[error("HTTP {status}{}", retry_note(.retry_after))]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("body larger than the {limit}-byte limit (fetch.max_body)")]
    TooLarge { limit: u64 },
    #[error("redirect problem: {0}")]
    Redirect(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("reading the body failed: {0}")]
    Body(String),
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("refused: {0} (fetch.deny_private)")]
    Denied(guard::Refusal),
}

fn retry_note(r: &Option<Duration>) -> String {
    r.map(|d| format!(" (retry after {})", format_duration(d)))
        .unwrap_or_default()
}

impl FetchError {
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }
}

pub struct Fetcher {
    client: reqwest::Client,
    /// One semaphore per host:port so one site never sees more than `per_host` of our requests
    /// at once (sites block aggregators that open many at a time). Grows with the feed list only.
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_host: usize,
    max_body: u64,
    timeout: Duration,
    /// Refuse local files and private, loopback, link-local and metadata addresses.
    deny_private: bool,
}

/// A client builder whose TLS is rustls on *ring*. reqwest's own choice, aws-lc, builds a C
/// library with cmake for as long as the rest of the program takes; ring verifies the same
/// certificates (against the system's roots, through rustls-platform-verifier).
pub fn client_builder() -> reqwest::ClientBuilder {
    // Fails only when a provider is installed already: the same one, by an earlier call.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

impl Fetcher {
    pub fn new(cfg: &FetchConfig) -> Result<Fetcher, ClientError> {
        let mut builder = client_builder()
            .user_agent(cfg.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .timeout(cfg.timeout);
        if cfg.deny_private {
            // Proxies would resolve names where we cannot check them.
            builder = builder.dns_resolver(guard::PublicOnly).no_proxy();
        }
        let client = builder.build().map_err(|e| ClientError(error_chain(&e)))?;
        Ok(Fetcher {
            client,
            hosts: Mutex::new(HashMap::new()),
            per_host: cfg.per_host,
            max_body: cfg.max_body,
            timeout: cfg.timeout,
            deny_private: cfg.deny_private,
        })
    }

    fn host_permit(&self, url: &Url) -> Arc<Semaphore> {
        let key = crate::model::host_key(url);
        let mut hosts = self.hosts.lock().expect("host map poisoned");
        hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Fetches `url`, conditionally when `validators` has anything.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        if self.deny_private {
            guard::check_url(url).map_err(FetchError::Denied)?;
        }
        if url.scheme() == "file" {
            return self.fetch_file(url).await;
        }
        let host = self.host_permit(url);
        let _host = host.acquire().await.expect("semaphore never closed");
        match tokio::time::timeout(self.timeout, self.fetch_http(url, validators)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn fetch_http(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        let mut current = url.clone();
        let mut all_permanent = true;
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send(&current, validators).await?;
            let status = resp.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                all_permanent &= matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
                );
                current = redirect_target(&current, resp.headers())?;
                if self.deny_private {
                    guard::check_url(&current).map_err(|why| {
                        FetchError::Denied(guard::Refusal::Redirect {
                            to: current.clone(),
                            why: Box::new(why),
                        })
                    })?;
                }
                continue;
            }
            let moved_to = (all_permanent && current != *url).then(|| current.clone());
            let meta = response_meta(current.clone(), status, resp.headers(), moved_to);
            if status == StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified(meta));
            }
            if !status.is_success() {
                return Err(FetchError::Status {
                    status,
                    retry_after: retry_after(resp.headers()),
                });
            }
            let body = self.read_body(resp).await?;
            return Ok(Fetched::Body(meta, body));
        }
        Err(FetchError::Redirect(format!(
            "more than {MAX_REDIRECTS} redirects, last to {current}"
        )))
    }

    async fn send(&self, url: &Url, v: &Validators) -> Result<reqwest::Response, FetchError> {
        let mut req = self.client.get(url.as_str()).header(header::ACCEPT, ACCEPT);
        if let Some(etag) = &v.etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &v.last_modified {
            req = req.header(header::IF_MODIFIED_SINCE, lm);
        }
        req.send().await.map_err(|e| {
            if e.is_timeout() {
                FetchError::Timeout(self.timeout)
            } else if let Some(refusal) = find_in_chain::<guard::Refusal>(&e) {
                // The resolver's refusal, without reqwest's layers around it.
                FetchError::Denied(refusal.clone())
            } else {
                FetchError::Connect(error_chain(&e))
            }
        })
    }

    async fn read_body(&self, resp: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        let limit = self.max_body;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        let mut body = Vec::new();
        // reqwest decompresses gzip/brotli before the stream: the limit holds after decompression.
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                if e.is_timeout() {
                    FetchError::Timeout(self.timeout)
                } else {
                    FetchError::Body(error_chain(&e))
                }
            })?;
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn fetch_file(&self, url: &Url) -> Result<Fetched, FetchError> {
        let file_err = |message: String| FetchError::File {
            path: url.path().to_string(),
            message,
        };
        let path = url
            .to_file_path()
            .map_err(|_| file_err("not a local path".into()))?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| file_err(e.to_string()))?;
        if meta.len() > self.max_body {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        let body = tokio::fs::read(&path)
            .await
            .map_err(|e| file_err(e.to_string()))?;
        let meta = Response {
            url: url.clone(),
            status: 200,
            content_type: None,
            validators: Validators::default(),
            moved_to: None,
            max_age: None,
            content_location: None,
        };
        Ok(Fetched::Body(meta, body))
    }
}

fn redirect_target(from: &Url, headers: &HeaderMap) -> Result<Url, FetchError> {
    let location = headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| {
            FetchError::Redirect(format!(
                "{from} redirected without a usable Location header"
            ))
        })?;
    let to = from.join(location).map_err(|e| {
        FetchError::Redirect(format!(
            "{from} redirected to an invalid URL {location:?}: {e}"
        ))
    })?;
    if !matches!(to.scheme(), "http" | "https") {
        return Err(FetchError::Redirect(format!(
            "{from} redirected to a non-http URL {to}"
        )));
    }
    Ok(to)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn response_meta(
    url: Url,
    status: StatusCode,
    headers: &HeaderMap,
    moved_to: Option<Url>,
) -> Response {
    Response {
        url,
        status: status.as_u16(),
        content_type: header_str(headers, header::CONTENT_TYPE),
        validators: Validators {
            etag: header_str(headers, header::ETAG),
            last_modified: header_str(headers, header::LAST_MODIFIED),
        },
        moved_to,
        max_age: max_age(headers),
        content_location: header_str(headers, header::CONTENT_LOCATION),
    }
}

/// Cache-Control's max-age, read by the `headers` crate (quoted values, repeated headers,
/// `no-cache` and the rest as RFC 9111 has them).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    use headers::HeaderMapExt;
    headers
        .typed_get::<headers::CacheControl>()
        .and_then(|cc| cc.max_age())
}

/// Retry-After in either of its forms: delay-seconds or an HTTP-date, in any of the three
/// forms RFC 9110 asks a recipient to accept (IMF-fixdate, RFC 850, asctime).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = header_str(headers, header::RETRY_AFTER)?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = std::time::SystemTime::from(crate::model::http_date(&v)?);
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// reqwest's Display names only the outermost layer ("error sending request"); the cause is inside.
/// The first error of type `T` in `e`'s chain of sources.
fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_every_http_date_form() {
        let mut h = HeaderMap::new();
        let later = std::time::SystemTime::now() + Duration::from_secs(3 * 86400);
        let fixdate = httpdate::fmt_http_date(later);
        let date = chrono::DateTime::<chrono::Utc>::from(later);
        for form in [
            fixdate,
            date.format("%A, %d-%b-%y %H:%M:%S GMT").to_string(),
            date.format("%a %b %e %H:%M:%S %Y").to_string(),
        ] {
            h.insert(header::RETRY_AFTER, form.parse().unwrap());
            let d = retry_after(&h).unwrap_or_else(|| panic!("{form}: not read"));
            assert!(d > Duration::from_secs(3 * 86400 - 10), "{form}: {d:?}");
        }
        h.insert(header::RETRY_AFTER, "Tuesday soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_both_forms() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(600)).to_rfc2822();
        h.insert(header::RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(590) && d <= Duration::from_secs(600),
            "{d:?}"
        );
    }

    #[test]
    fn cache_control_max_age() {
        let of = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::CACHE_CONTROL, v.parse().unwrap());
            }
            max_age(&h)
        };
        assert_eq!(
            of(&["public, max-age=3600"]),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(of(&["public", "max-age=60"]), Some(Duration::from_secs(60)));
        assert_eq!(of(&["no-cache"]), None);
        assert_eq!(of(&[]), None);
    }
}
