//! Identity, derived once and never from the title (a site that edits a title must not produce a
//! second entry). Pure functions; the store applies them.
//!
//! - Within a feed an entry is its id/guid, else its canonical link, else a hash of title and
//!   date. Ids are unique only per feed (WordPress `?p=123`, numeric guids), so the store keys
//!   entries by (feed, key), never by key alone.
//! - Across feeds, the story key is the canonical link with the differences that never matter
//!   to a reader folded away: scheme, `www.`, a trailing slash, AMP variants. Which entries
//!   are one story (by that key, as copies, or as rewrites of one report) is `cluster`'s
//!   decision, from each entry's `signature`.

use sha2::{Digest, Sha256};
use url::Url;

use crate::model::{Entry, PreparedEntry, Tag};

pub mod cluster;
pub mod index;
pub mod signature;
pub mod stored;
pub mod vocabulary;

pub use signature::Aliases;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parameters that are part of an address but never tell two articles apart: ignored by
/// identity, kept in the published link (see `normalize::canonical_url`).
const GENERIC_TRACKERS: &[&str] = &[
    "ref", "ref_src", "ref_url", "referrer", "source", "cmpid", "ncid", "spm", "sr_share",
];

/// A link as identity sees it: no fragment, no tracking parameter of any kind, the query
/// sorted. This is the form identities were derived from before links kept their fragments,
/// so keys stored by earlier versions stay the same.
pub fn identity_link(link: &str) -> String {
    let Ok(mut url) = Url::parse(link) else {
        return link.to_string();
    };
    url.set_fragment(None);
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| {
            !crate::normalize::is_tracking(k)
                && !GENERIC_TRACKERS.contains(&k.to_ascii_lowercase().as_str())
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        pairs.sort();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.into()
}

/// The entry's identity within its feed.
pub fn entry_key(entry: &Entry) -> String {
    if let Some(id) = &entry.source_id {
        return format!("id:{id}");
    }
    if let Some(link) = &entry.link {
        return format!("link:{}", identity_link(link));
    }
    let date = entry
        .published
        .map(|d| d.timestamp().to_string())
        .unwrap_or_default();
    let digest = Sha256::digest(format!("{}\n{date}", entry.title).as_bytes());
    format!("hash:{}", hex(&digest[..16]))
}

/// The cross-feed story key of a canonical link.
pub fn story_key(canonical_link: &str) -> Option<String> {
    let url = Url::parse(&identity_link(canonical_link)).ok()?;
    let host = url.host_str()?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    let host = host.strip_prefix("amp.").unwrap_or(host);
    let mut path = url.path().trim_end_matches('/');
    for amp in ["/amp", "/amp.html"] {
        path = path.strip_suffix(amp).unwrap_or(path);
    }
    let path = path
        .strip_prefix("/amp/")
        .map(|p| format!("/{p}"))
        .unwrap_or_else(|| path.to_string());
    let query: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k != "amp" && k != "outputType")
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    Some(format!("{host}{port}{path}{q}"))
}

/// The guid published for an entry: fixed when it is first stored, unique across sources (the
/// feed URL is part of it) and stable across runs. A UUID-shaped URN, valid as an Atom id.
pub fn published_guid(feed_url: &str, key: &str) -> String {
    let d = Sha256::new()
        .chain_update(feed_url)
        .chain_update("\n")
        .chain_update(key)
        .finalize();
    let h = hex(&d[..16]);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A hash of everything a reader sees, so an unchanged entry costs no write. Not a security
/// boundary (a feed can only make its own entries look unchanged), so a fast hash: XXH3-128.
pub fn content_hash(entry: &Entry, tags: &[Tag]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut field = |s: &str| {
        h.update(s.as_bytes());
        h.update(&[0u8]);
    };
    field(&entry.title);
    field(entry.link.as_deref().unwrap_or(""));
    field(entry.summary.as_deref().unwrap_or(""));
    field(entry.content.as_deref().unwrap_or(""));
    field(&entry.authors.join("\u{1}"));
    field(&entry.categories.join("\u{1}"));
    // Labels count only where there are any, so the hashes of entries stored before labels
    // were kept stay the same.
    for (term, label) in &entry.category_labels {
        field(&format!("{term}\u{1}{label}"));
    }
    field(&entry.published.map(|d| d.to_rfc3339()).unwrap_or_default());
    for e in &entry.enclosures {
        field(&format!("{}\u{1}{}\u{1}{}", e.url, e.mime_type, e.length));
    }
    for t in tags {
        field(&t.0);
    }
    format!("{:032x}", h.digest128())
}

/// Identity, story key, change hash and signature for a tagged entry of the feed at
/// `feed_url`.
pub fn prepare(
    feed_url: &str,
    entry: Entry,
    tags: Vec<Tag>,
    settings: &cluster::Settings,
) -> PreparedEntry {
    let e = identify(feed_url, entry, tags);
    settings.signature_of(&e);
    e
}

/// [`prepare`] but the signature, left to be derived when first needed: a poll need not sign
/// an entry the store already holds as it is.
pub fn identify(feed_url: &str, entry: Entry, tags: Vec<Tag>) -> PreparedEntry {
    let key = entry_key(&entry);
    PreparedEntry {
        guid: published_guid(feed_url, &key),
        key,
        story_key: entry.link.as_deref().and_then(story_key),
        content_hash: content_hash(&entry, &tags),
        signature: Default::default(),
        entry,
        tags,
    }
}

/// Drops later entries whose key repeats an earlier one in the same document (feeds do repeat
/// items); the first, usually the newest, wins. Entries keyed by a link that differ only in
/// the link's fragment (a day page's `#a080605` anchors) are distinct entries: their keys
/// keep the fragment, which identity otherwise ignores.
pub fn unique_by_key(feed_url: &str, mut entries: Vec<PreparedEntry>) -> Vec<PreparedEntry> {
    let mut links: std::collections::HashMap<&str, Option<&str>> = Default::default();
    let mut fragmented = std::collections::HashSet::new();
    for e in &entries {
        let link = e.entry.link.as_deref();
        match links.get(e.key.as_str()) {
            Some(seen) if *seen != link && e.key.starts_with("link:") => {
                fragmented.insert(e.key.clone());
            }
            Some(_) => {}
            None => {
                links.insert(e.key.as_str(), link);
            }
        }
    }
    for e in &mut entries {
        if fragmented.contains(&e.key)
            && let Some(fragment) = e.entry.link.as_deref().and_then(|l| l.split_once('#'))
        {
            e.key = format!("{}#{}", e.key, fragment.1);
            e.guid = published_guid(feed_url, &e.key);
        }
    }
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .filter(|e| seen.insert(e.key.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn story_keys_fold_cosmetic_differences() {
        let a = story_key("https://www.coindesk.com/markets/2026/11/01/btc/").unwrap();
        let b = story_key("http://coindesk.com/markets/2026/11/01/btc").unwrap();
        let c = story_key("https://coindesk.com/markets/2026/11/01/btc/amp/").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_ne!(
            a,
            story_key("https://coindesk.com/markets/2026/11/01/eth").unwrap()
        );
        assert_ne!(
            story_key("https://x.io/?p=1"),
            story_key("https://x.io/?p=2")
        );
    }

    fn prepared(link: &str) -> PreparedEntry {
        let entry = Entry {
            link: Some(link.into()),
            ..Entry::titled("t")
        };
        prepare(
            "https://blog.example/feed",
            entry,
            vec![],
            &cluster::Settings::default(),
        )
    }

    #[test]
    fn entries_of_one_day_page_differ_by_their_anchors() {
        let feed = "https://blog.example/feed";
        let kept = unique_by_key(
            feed,
            vec![
                prepared("https://blog.example/2008/06/26.html#a080605"),
                prepared("https://blog.example/2008/06/26.html#a080606"),
                prepared("https://blog.example/2008/06/26.html#a080606"),
                prepared("https://blog.example/other?utm_source=x"),
            ],
        );
        assert_eq!(kept.len(), 3, "two anchors, one repeat dropped, one other");
        assert_ne!(kept[0].guid, kept[1].guid);
        // A link with no sibling keeps the key earlier versions stored.
        assert_eq!(kept[2].key, "link:https://blog.example/other");
        assert_eq!(
            identity_link("https://x.io/a?z=1&ref=rss&a=2#top"),
            "https://x.io/a?a=2&z=1"
        );
    }

    /// The link form every key and story key was derived from before links kept fragments and
    /// generic parameters (normalize::canonical_url at f193e79), verbatim but for names.
    fn previous_canonical(href: &str) -> Option<String> {
        const PREVIOUS_TRACKERS: &[&str] = &[
            "fbclid",
            "gclid",
            "dclid",
            "gbraid",
            "wbraid",
            "msclkid",
            "yclid",
            "twclid",
            "igshid",
            "mc_cid",
            "mc_eid",
            "_hsenc",
            "_hsmi",
            "mkt_tok",
            "ref",
            "ref_src",
            "ref_url",
            "referrer",
            "source",
            "cmpid",
            "ncid",
            "sr_share",
            "spm",
            "guccounter",
            "__twitter_impression",
        ];
        let tracking = |name: &str| {
            let n = name.to_ascii_lowercase();
            n.starts_with("utm_") || n.starts_with("_ga") || PREVIOUS_TRACKERS.contains(&n.as_str())
        };
        let mut url = Url::parse(href.trim()).ok()?;
        url.set_fragment(None);
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !tracking(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            pairs.sort();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Some(url.into())
    }

    /// Keys stored by the previous version stay the same: a link-keyed entry already stored
    /// is found again, never stored twice, and its guid (derived from the key) is unchanged.
    #[test]
    fn identity_of_links_is_what_it_was_before() {
        let links = [
            "https://www.coindesk.com/markets/2026/11/23/bitcoin-etfs-record-inflows/?ref=rss",
            "https://x.io/a?z=1&a=2&utm_source=rss&fbclid=9#section",
            "https://pod.example/ep/1?source=feed",
            "http://example/?a=1&b=2&c",
            "https://news.example/story?id=10&lang=en&spm=a.b",
            "https://site.example/caf%C3%A9?q=a%20b&Ref=x",
            "https://blog.example/2008/06/26.html#a080605",
            "https://x.io/p",
        ];
        for link in links {
            let published = crate::normalize::canonical_url(link, None).unwrap();
            let before = previous_canonical(link).unwrap();
            assert_eq!(identity_link(&published), before, "{link}");
            assert_eq!(story_key(&published), story_key(&before), "{link}");
        }
    }

    #[test]
    fn guid_is_stable_and_per_feed() {
        let g = published_guid("https://a/feed", "id:123");
        assert_eq!(g, published_guid("https://a/feed", "id:123"));
        assert_ne!(g, published_guid("https://b/feed", "id:123"));
        assert!(g.starts_with("urn:uuid:") && g.len() == 45, "{g}");
        // Pinned: a guid that changed between versions would show every entry again as new.
        assert_eq!(g, "urn:uuid:a7cee7de-57ca-bf2f-e744-3b0d35d1bd8d");
    }
}
