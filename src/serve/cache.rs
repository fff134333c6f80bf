//! Rendered feed bodies, kept until the store changes: a reader's request is then a lookup, and
//! its 304 a comparison. Each body is gzipped once, when rendered, not per request.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderValue;
use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};

use crate::publish::Format;

/// Ad-hoc queries cached at most; past it the ad-hoc entries are dropped (configured outputs
/// stay). Bounds memory against clients that invent endless tag combinations.
const MAX_ADHOC_ENTRIES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    Output(String, Format),
    /// The normalised query string.
    AdHoc(String, Format),
}

/// A fresh rendering: the body, when its data last changed, and what it holds.
#[derive(Debug)]
pub struct Content {
    pub body: String,
    pub changed: DateTime<Utc>,
    pub items: usize,
    pub newest: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub struct Rendered {
    generation: u64,
    pub body: Bytes,
    pub gzip: Bytes,
    /// Strong ETag of the identity body; the gzip body's is the same with a "-gz" suffix.
    pub etag: String,
    pub etag_gzip: String,
    /// When this content was first rendered (whole seconds, as HTTP dates are).
    pub last_modified: DateTime<Utc>,
    pub format: Format,
    /// Items in the body, and the newest one's date: what the home page says of an output.
    pub items: usize,
    pub newest: Option<DateTime<Utc>>,
    /// The response headers above, built once so a 304 copies them instead of formatting.
    pub etag_header: HeaderValue,
    pub etag_gzip_header: HeaderValue,
    pub last_modified_header: HeaderValue,
    /// The two ETags typed, for If-None-Match: parsed once here, not per request.
    pub etags: [headers::ETag; 2],
}

/// Locks that let one request at a time render a given key (striped: a key's hash picks one).
/// 64: a few times the renders that can run at once on a small server, so two keys rarely
/// share a stripe, and a fixed 64 mutexes whatever the number of outputs and ad-hoc queries.
const RENDER_LOCKS: usize = 64;

#[derive(Debug)]
pub struct Cache {
    entries: Mutex<HashMap<CacheKey, Arc<Rendered>>>,
    /// Taken by a request that found its key missing or stale, so that when a poll makes every
    /// output stale, the readers who ask at that moment wait for one rendering instead of
    /// each making their own (32 at once made the slowest answer take 40 ms).
    renders: Vec<tokio::sync::Mutex<()>>,
    /// Picks a key's render lock; one per cache, so a key always gets the same lock.
    stripes: std::collections::hash_map::RandomState,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache {
            entries: Mutex::default(),
            renders: (0..RENDER_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            stripes: Default::default(),
        }
    }
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// The lock to hold while rendering `key`; a request that waited for it should look in
    /// the cache again before rendering.
    pub fn render_lock(&self, key: &CacheKey) -> &tokio::sync::Mutex<()> {
        use std::hash::BuildHasher;
        let stripe = self.stripes.hash_one(key);
        &self.renders[(stripe as usize) % RENDER_LOCKS]
    }

    /// The cached rendering if it is of `generation`.
    pub fn get(&self, key: &CacheKey, generation: u64) -> Option<Arc<Rendered>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|r| r.generation == generation)
            .cloned()
    }

    /// Stores a fresh rendering of data last changed at `changed`: its Last-Modified, so that
    /// every instance sharing a database says the same of the same bytes (whole seconds, as
    /// HTTP dates are). Bytes that change with no newer data (a story removed by retention, a
    /// title in the config) keep the date: a reader asking If-None-Match gets them, one asking
    /// only If-Modified-Since at the next new story.
    pub fn put(
        &self,
        key: CacheKey,
        generation: u64,
        format: Format,
        content: Content,
    ) -> Arc<Rendered> {
        let Content {
            body,
            changed,
            items,
            newest,
        } = content;
        let digest = Sha256::digest(body.as_bytes());
        let hex = crate::dedup::hex(&digest[..16]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body.as_bytes()).expect("writing to memory");
        let gzip = Bytes::from(gz.finish().expect("writing to memory"));
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let etag = format!("\"{hex}\"");
        let changed = changed.trunc_subsecs(0);
        let last_modified = match entries.get(&key) {
            Some(old) if old.etag == etag => old.last_modified,
            _ => changed,
        };
        let etag_gzip = format!("\"{hex}-gz\"");
        let header = |v: &str| HeaderValue::from_str(v).expect("ETags and HTTP dates are ASCII");
        let rendered = Arc::new(Rendered {
            generation,
            body: Bytes::from(body),
            gzip,
            etags: [&etag, &etag_gzip].map(|t| t.parse().expect("a quoted hex ETag parses")),
            etag_header: header(&etag),
            etag_gzip_header: header(&etag_gzip),
            last_modified_header: header(&httpdate::fmt_http_date(last_modified.into())),
            etag_gzip,
            etag,
            last_modified,
            format,
            items,
            newest,
        });
        if matches!(key, CacheKey::AdHoc(..)) && entries.len() >= MAX_ADHOC_ENTRIES {
            entries.retain(|k, _| matches!(k, CacheKey::Output(..)));
        }
        entries.insert(key, rendered.clone());
        rendered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn content(body: &str, changed: DateTime<Utc>) -> Content {
        Content {
            body: body.into(),
            changed,
            items: 0,
            newest: None,
        }
    }

    #[test]
    fn same_content_keeps_its_etag_and_date_across_generations() {
        let cache = Cache::new();
        let key = CacheKey::Output("x".into(), Format::Rss);
        let at = |s: u32| Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, s).unwrap();
        let a = cache.put(key.clone(), 1, Format::Rss, content("<rss/>", at(0)));
        assert_eq!(a.last_modified, at(0), "the data's time");
        assert!(cache.get(&key, 1).is_some());
        assert!(
            cache.get(&key, 2).is_none(),
            "a newer generation makes it stale"
        );
        let b = cache.put(key.clone(), 2, Format::Rss, content("<rss/>", at(0)));
        assert_eq!(
            (a.etag.as_str(), a.last_modified),
            (b.etag.as_str(), b.last_modified)
        );
        let c = cache.put(
            key.clone(),
            3,
            Format::Rss,
            content("<rss>new</rss>", at(30)),
        );
        assert_ne!(c.etag, a.etag);
        assert_eq!(c.last_modified, at(30));
        let d = cache.put(key, 4, Format::Rss, content("<rss>less</rss>", at(30)));
        assert_eq!(
            d.last_modified,
            at(30),
            "the data's time, whoever renders it"
        );
        assert_ne!(d.etag, c.etag);
    }
}
