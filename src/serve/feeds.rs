//! Feed responses: `/feeds/{name}.{rss,atom,json}` and the ad-hoc `/feed.{rss,atom,json}`,
//! with strong ETags, Last-Modified, 304s and gzip.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cache::{CacheKey, Content, Rendered};
use super::{AppState, ServeError};
use crate::config::OutputConfig;
use crate::model::{Cursor, StoryQuery};
use crate::outputs::{channel_of, query_of};
use crate::publish::{self, Channel, Format};

/// Items an ad-hoc feed returns unless `limit` says otherwise, and the most it will return.
const ADHOC_DEFAULT_LIMIT: usize = 50;
const ADHOC_MAX_LIMIT: usize = 200;
/// Bounds on an ad-hoc query's tags, far above any real use, so a query stays cheap.
const MAX_QUERY_TAGS: usize = 32;
const MAX_TAG_LEN: usize = 100;
/// Feed readers poll often; a minute of caching spares both sides without delaying news much.
pub(super) const CACHE_CONTROL: &str = "public, max-age=60";

pub async fn output(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    let (name, ext) = file.rsplit_once('.').ok_or_else(|| not_found(&file))?;
    let format = Format::from_extension(ext).ok_or_else(|| not_found(&file))?;
    let before = output_page(raw.as_deref().unwrap_or("")).map_err(ServeError::BadRequest)?;
    let config = state.config();
    let out = config
        .outputs
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| not_found(&file))?;
    let rendered = render_output(&state, &config, out, format, before).await?;
    Ok(respond(&headers, &rendered))
}

/// An output's page (its first when `before` is `None`), from the cache or rendered.
pub(super) async fn render_output(
    state: &AppState,
    config: &crate::config::Config,
    out: &OutputConfig,
    format: Format,
    before: Option<Cursor>,
) -> Result<Arc<Rendered>, ServeError> {
    // Pages past the first are cached beside the ad-hoc feeds, under the same bound.
    let key = match before {
        None => CacheKey::Output(out.name.clone(), format),
        Some(c) => CacheKey::AdHoc(format!("output={}&before={c}", out.name), format),
    };
    render_cached(state, key, format, || {
        let mut channel = channel_of(config, out, format);
        channel.page_url = before.map(|c| paged(&channel.self_url, c));
        let query = StoryQuery {
            before,
            ..query_of(out)
        };
        (query, channel)
    })
    .await
}

/// An output's query string: nothing, or `before=CURSOR` for a page past the first.
fn output_page(raw: &str) -> Result<Option<Cursor>, String> {
    let mut before = None;
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "before" => before = Some(cursor(&value)?),
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; an output takes only before= (its next page), \
                     for other selections use /feed.rss?tags=..."
                ));
            }
        }
    }
    Ok(before)
}

fn cursor(value: &str) -> Result<Cursor, String> {
    value.parse().map_err(|()| {
        format!("before={value:?} is not a page cursor; follow the feed's rel=\"next\" link")
    })
}

/// The URL of the page of `url` below `cursor`.
fn paged(url: &str, cursor: Cursor) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}before={cursor}")
}

fn not_found(file: &str) -> ServeError {
    ServeError::NotFound(format!(
        "no feed named {file:?}; see / for the feeds served here"
    ))
}

pub async fn adhoc_rss(
    state: State<AppState>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    adhoc(state, query, headers, Format::Rss).await
}

pub async fn adhoc_atom(
    state: State<AppState>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    adhoc(state, query, headers, Format::Atom).await
}

pub async fn adhoc_json(
    state: State<AppState>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    adhoc(state, query, headers, Format::Json).await
}

async fn adhoc(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    format: Format,
) -> Result<Response, ServeError> {
    let query = parse_query(raw.as_deref().unwrap_or("")).map_err(ServeError::BadRequest)?;
    let config = state.config();
    let canonical = canonical_query(&query);
    let key = match query.before {
        None => canonical.clone(),
        Some(c) => format!("{canonical}&before={c}"),
    };
    let rendered = render_cached(&state, CacheKey::AdHoc(key, format), format, || {
        let channel = adhoc_channel(&config, &query, &canonical, format);
        (query, channel)
    })
    .await?;
    Ok(respond(&headers, &rendered))
}

/// What an ad-hoc feed says of itself: what it holds, in words, with the tags spelled as the
/// config spells them whatever the query's case (every spelling shares one cache entry).
fn adhoc_channel(
    config: &crate::config::Config,
    query: &StoryQuery,
    canonical: &str,
    format: Format,
) -> Channel {
    let spelled = spell_tags(config);
    let spell = |tags: &[String]| -> Vec<String> {
        let mut v: Vec<String> = tags.iter().map(|t| spelled(t)).collect();
        v.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        v
    };
    let (tags, exclude) = (spell(&query.tags), spell(&query.exclude));
    let pseudo = OutputConfig {
        name: "feed".into(),
        title: crate::outputs::describe(&tags, &exclude),
        tags,
        exclude_tags: exclude,
        limit: query.limit,
        file: None,
    };
    let mut channel = channel_of(config, &pseudo, format);
    channel.self_url = config
        .server
        .base_url
        .join(&format!("feed.{}?{canonical}", format.extension()))
        .map(String::from)
        .unwrap_or(channel.self_url);
    channel.page_url = query.before.map(|c| paged(&channel.self_url, c));
    channel
}

/// A tag as the config spells it (a rule's name, a feed's tag), else its case-folded key, so
/// that every spelling of a query reads the same.
fn spell_tags(config: &crate::config::Config) -> impl Fn(&str) -> String {
    let known: std::collections::HashMap<String, String> = config
        .tag_spellings()
        .into_iter()
        .map(|t| (crate::model::tag_key(&t), t))
        .collect();
    move |t: &str| {
        let key = crate::model::tag_key(t);
        known.get(&key).cloned().unwrap_or(key)
    }
}

/// `tags=a,b&exclude=c&limit=N&before=CURSOR`. Anything else, or a malformed value, is refused with a message
/// that says what is accepted.
pub fn parse_query(raw: &str) -> Result<StoryQuery, String> {
    let mut q = StoryQuery {
        limit: ADHOC_DEFAULT_LIMIT,
        ..StoryQuery::default()
    };
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "tags" | "tag" => q.tags.extend(tag_list("tags", &value)?),
            "exclude" => q.exclude.extend(tag_list("exclude", &value)?),
            "limit" => {
                let n: usize = value.trim().parse().map_err(|_| {
                    format!("limit={value:?} is not a number; give 1 to {ADHOC_MAX_LIMIT}")
                })?;
                if n == 0 {
                    return Err(format!(
                        "limit=0 asks for nothing; give 1 to {ADHOC_MAX_LIMIT}"
                    ));
                }
                q.limit = n.min(ADHOC_MAX_LIMIT);
            }
            "before" => q.before = Some(cursor(&value)?),
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; use tags, exclude, limit and before"
                ));
            }
        }
    }
    if q.tags.len() + q.exclude.len() > MAX_QUERY_TAGS {
        return Err(format!(
            "too many tags; at most {MAX_QUERY_TAGS} in tags and exclude together"
        ));
    }
    Ok(q)
}

fn tag_list(param: &str, value: &str) -> Result<Vec<String>, String> {
    let mut tags = Vec::new();
    for t in value
        .split(',')
        .map(|t| t.trim().trim_start_matches('#').trim())
        .filter(|t| !t.is_empty())
    {
        if t.chars().count() > MAX_TAG_LEN || t.chars().any(char::is_control) {
            return Err(format!(
                "{param}: a tag must be at most {MAX_TAG_LEN} printable characters"
            ));
        }
        tags.push(t.to_string());
    }
    Ok(tags)
}

/// One spelling per distinct query, so equivalent URLs share a cache entry.
fn canonical_query(q: &StoryQuery) -> String {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|t| crate::model::tag_key(t)).collect();
        v.sort();
        v.dedup();
        v.join(",")
    };
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("tags", &norm(&q.tags))
        .append_pair("exclude", &norm(&q.exclude))
        .append_pair("limit", &q.limit.to_string())
        .finish()
}

/// The cached rendering, or a fresh one; `what` (query and channel) is only built on a miss,
/// so a hit costs a lookup.
async fn render_cached(
    state: &AppState,
    key: CacheKey,
    format: Format,
    what: impl FnOnce() -> (StoryQuery, Channel),
) -> Result<Arc<Rendered>, ServeError> {
    // Read the generation before the stories: a change landing meanwhile leaves this
    // rendering marked stale rather than a stale one marked fresh.
    let generation = state.live.generation();
    if let Some(hit) = state.cache.get(&key, generation) {
        return Ok(hit);
    }
    // One rendering per key at a time; whoever waited for it likely finds it done.
    let _turn = state.cache.render_lock(&key).lock().await;
    let generation = state.live.generation();
    if let Some(hit) = state.cache.get(&key, generation) {
        return Ok(hit);
    }
    let (query, mut channel) = what();
    let cache = state.cache.clone();
    let kind = match key {
        CacheKey::Output(..) => "output",
        CacheKey::AdHoc(..) => "adhoc",
    };
    let renders = state.metrics.renders.with_label_values(&[kind]);
    // Query, render, hash and gzip on the blocking pool: a 200 KiB body takes milliseconds,
    // and on an async worker they would hold up every request queued behind it.
    let page = state.store.page(query).await?;
    channel.next_url = page.next.map(|c| paged(&channel.self_url, c));
    let stories = page.stories;
    let rendered = tokio::task::spawn_blocking(move || {
        let body = publish::render(format, &channel, &stories);
        let changed = stories.iter().map(|s| s.changed).max();
        renders.inc();
        let content = Content {
            body,
            changed: changed.unwrap_or_default(),
            items: stories.len(),
            newest: stories.iter().map(|s| s.primary.date).max(),
        };
        cache.put(key, generation, format, content)
    })
    .await
    .map_err(|e| ServeError::Internal(format!("rendering failed: {e}")))?;
    Ok(rendered)
}

/// Whether the client takes gzip (RFC 9110 §12.5.3): `gzip` with a non-zero weight, or, when
/// gzip is not named, `*` with one. The `headers` crate has no typed Accept-Encoding; this is
/// the one place it is read.
pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    let codings = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for coding in codings {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(weight > 0.0);
        } else if name == "*" {
            any = Some(weight > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether the request's If-None-Match names one of `tags` (the identity and gzip bodies'),
/// with the weak comparison of RFC 9110 §13.2.2; `None` when it has none.
pub(super) fn none_match(headers: &HeaderMap, tags: &[headers::ETag]) -> Option<bool> {
    use headers::HeaderMapExt;
    let inm = headers.typed_get::<headers::IfNoneMatch>()?;
    Some(tags.iter().any(|t| !inm.precondition_passes(t)))
}

fn not_modified(headers: &HeaderMap, r: &Rendered) -> bool {
    // If-None-Match, when present, decides alone (RFC 9110 §13.2.2).
    if let Some(held) = none_match(headers, &r.etags) {
        return held;
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok());
    since
        .and_then(crate::model::http_date)
        .is_some_and(|s| r.last_modified <= s)
}

/// The response for a rendered feed: 304 when the client has it, else the body, gzipped when
/// the client accepts it.
fn respond(req: &HeaderMap, r: &Rendered) -> Response {
    let gzip = accepts_gzip(req);
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(
        header::ETAG,
        if gzip {
            r.etag_gzip_header.clone()
        } else {
            r.etag_header.clone()
        },
    );
    headers.insert(header::LAST_MODIFIED, r.last_modified_header.clone());
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if not_modified(req, r) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(r.format.content_type()),
    );
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        (StatusCode::OK, headers, r.gzip.clone()).into_response()
    } else {
        (StatusCode::OK, headers, r.body.clone()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_as_rfc_9110_weighs_it() {
        let takes = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::ACCEPT_ENCODING, v.parse().unwrap());
            }
            accepts_gzip(&h)
        };
        assert!(takes(&["gzip"]));
        assert!(takes(&["br;q=1.0, GZIP;q=0.1"]));
        assert!(takes(&["deflate", "x-gzip"]));
        assert!(takes(&["deflate, *;q=0.5"]), "gzip through the wildcard");
        assert!(!takes(&["gzip;q=0"]));
        assert!(!takes(&["gzip; q=0.000"]));
        assert!(
            !takes(&["*;q=0.5, gzip;q=0"]),
            "named, gzip's own weight decides"
        );
        assert!(!takes(&["*;q=0"]));
        assert!(!takes(&["identity"]));
        assert!(!takes(&[]));
    }

    #[test]
    fn queries_parse_or_say_what_is_wrong() {
        let q = parse_query("tags=Binance,%23Blockchain&exclude=ads&limit=10").unwrap();
        assert_eq!(
            (q.tags, q.exclude, q.limit),
            (
                vec!["Binance".into(), "Blockchain".into()],
                vec!["ads".into()],
                10
            )
        );
        assert_eq!(
            parse_query("limit=100000").unwrap().limit,
            ADHOC_MAX_LIMIT,
            "limit is capped"
        );
        assert_eq!(parse_query("").unwrap().limit, ADHOC_DEFAULT_LIMIT);
        assert!(
            parse_query("limit=ten")
                .unwrap_err()
                .contains("limit=\"ten\" is not a number")
        );
        assert!(parse_query("limit=0").is_err());
        assert!(parse_query("limit=-1").is_err());
        assert!(
            parse_query("tagz=x")
                .unwrap_err()
                .contains("unknown parameter \"tagz\"")
        );
        assert!(parse_query(&format!("tags={}", "x".repeat(101))).is_err());
    }

    #[test]
    fn equivalent_queries_share_a_key() {
        let a = canonical_query(&parse_query("tags=Binance,blockchain").unwrap());
        let b = canonical_query(&parse_query("tags=BLOCKCHAIN&tags=binance&limit=50").unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, identity"),
        );
        assert!(!accepts_gzip(&h));
    }
}
