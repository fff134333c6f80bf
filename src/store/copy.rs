//! Moving a SQLite database into PostgreSQL (`aggregate migrate --to`), keeping every id,
//! guid, story, tombstone and feed state: the operator who outgrows one machine loses
//! nothing, and readers see the same items. Rows are streamed table by table as CSV into
//! PostgreSQL's COPY, so the database is never all in memory; the whole copy is one
//! transaction on the PostgreSQL side, read from one snapshot on the SQLite side.

/// The tables copied, parents first, with the columns both backends share (in the same
/// encodings, see `rows`; a BLOB goes as bytea's hex text).
pub(super) const TABLES: &[(&str, &str)] = &[
    (
        "feeds",
        "id, url, current_url, title, site_link, etag, last_modified, body_hash, fingerprint, \
         last_attempt, last_success, last_status, last_error, last_note, consecutive_failures, \
         next_poll, gone",
    ),
    ("tags", "key, display"),
    ("stories", "id, guid, created_at, updated_at"),
    (
        "entries",
        "id, feed_id, key, guid, story_key, source_id, title, link, summary, content, authors, \
         categories, enclosures, published, updated, date, first_seen, changed_at, content_hash, \
         story_id, leads, signature",
    ),
    ("entry_tags", "tag, entry_id, date"),
    ("tombstones", "feed_id, key, seen_at"),
];

/// Rows copied into each table, in [`TABLES`]' order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .tables
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// Appends one CSV field: NULL as nothing, every value quoted (so an empty string is not NULL).
pub(super) fn csv_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(v) = value else {
        return;
    };
    out.push(b'"');
    for &b in v {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// What the SQLite side sends the PostgreSQL side: a table's rows in CSV, then its end with
/// the number of rows read.
pub(super) enum Chunk {
    Rows(Vec<u8>),
    End(u64),
    Failed(super::StoreError),
}
