//! How every backend encodes a row's values and assembles a story from its copies: times as
//! whole seconds, small lists as JSON text, categories with their labels. One encoding, so
//! that a database moved from one engine to another reads back the same.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};

use crate::model::{Cursor, Entry, StoredEntry, Story, StoryId, Tag};

pub(super) fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(super) fn from_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// JSON columns: small lists (authors, categories, enclosures) kept whole with their entry.
pub(super) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data always serialises")
}

/// An entry's categories as stored: a term, or `[term, label]` where the source labels it, so
/// labels live beside their terms in the one column (older rows hold terms only).
pub(super) fn categories_json(x: &Entry) -> String {
    let items: Vec<serde_json::Value> = x
        .categories
        .iter()
        .map(
            |term| match x.category_labels.iter().find(|(t, _)| t == term) {
                Some((_, label)) => serde_json::json!([term, label]),
                None => serde_json::json!(term),
            },
        )
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// An entry's category terms, and `(term, label)` for those its source labelled.
pub(super) type Categories = (Vec<String>, Vec<(String, String)>);

/// The categories column read back: terms, with `[term, label]` where the source labelled one.
pub(super) fn categories(text: &str) -> Result<Categories, serde_json::Error> {
    let items: Vec<serde_json::Value> = serde_json::from_str(text)?;
    let (mut terms, mut labels) = (Vec::new(), Vec::new());
    for item in items {
        match item {
            serde_json::Value::String(term) => terms.push(term),
            serde_json::Value::Array(pair) => {
                if let [serde_json::Value::String(t), serde_json::Value::String(l)] = &pair[..] {
                    terms.push(t.clone());
                    labels.push((t.clone(), l.clone()));
                }
            }
            _ => {}
        }
    }
    Ok((terms, labels))
}

/// The candidate query for `n` tags, a page of `limit` at `offset`, below a cursor when
/// `cursor` (a page past the first): its parameters are the tag keys, then the cursor's date
/// and entry, written `{placeholder}1`, `{placeholder}2`... as the engine spells them. It
/// returns each candidate's entry id and date. Each tag's newest rows come from walking
/// `entry_tags`' (tag, date, entry) key and stop after `limit + offset` rows, so the cost is
/// bounded by the page asked for, not by how many entries carry the tag; a cursor starts the
/// walk below it on the same key. LIMIT and OFFSET are literals: SQLite re-prepares a
/// statement whose LIMIT is a bound parameter on every execution (they were a sixth of a
/// pass's instructions); the few distinct pages stay in its statement cache.
pub(super) fn candidate_sql(
    placeholder: char,
    n: usize,
    (limit, offset): (usize, usize),
    cursor: bool,
) -> String {
    let p = placeholder;
    let below = |date: &str, id: &str| match cursor {
        true => format!("({date}, {id}) < ({p}{}, {p}{})", n + 1, n + 2),
        false => String::new(),
    };
    if n == 0 {
        let at = below("date", "id");
        let filter = if at.is_empty() {
            at
        } else {
            format!("WHERE {at} ")
        };
        return format!(
            "SELECT id, date FROM entries {filter}ORDER BY date DESC, id DESC \
             LIMIT {limit} OFFSET {offset}"
        );
    }
    let window = limit + offset;
    let per_tag: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                "SELECT * FROM (SELECT entry_id, date FROM entry_tags \
                 WHERE tag = {p}{i}{} \
                 ORDER BY date DESC, entry_id DESC LIMIT {window}) t{i}",
                match below("date", "entry_id") {
                    at if at.is_empty() => at,
                    at => format!(" AND {at}"),
                }
            )
        })
        .collect();
    format!(
        "SELECT entry_id, MAX(date) FROM ({}) t GROUP BY entry_id \
         ORDER BY MAX(date) DESC, entry_id DESC LIMIT {limit} OFFSET {offset}",
        per_tag.join(" UNION ALL ")
    )
}

/// Whether a story assembled from a query's candidates belongs in its answer: none of its
/// tags excluded, not only from feeds the config dropped, and, when the candidates came from
/// a narrowed query (text or feed) rather than the tag index, one of the tags asked for.
pub(super) fn selected(
    story: &Story,
    q: &crate::model::StoryQuery,
    (include, exclude): (&[String], &HashSet<String>),
    dropped: &HashSet<String>,
) -> bool {
    let keys: Vec<String> = story.tags.iter().map(Tag::key).collect();
    !keys.iter().any(|k| exclude.contains(k))
        && !only_from_dropped_feeds(story, dropped)
        && (!q.narrowed() || include.is_empty() || keys.iter().any(|k| include.contains(k)))
}

/// The words of a search, each at most 64 characters, at most 8: what the engines match.
pub(super) fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(64).collect::<String>().to_lowercase())
        .take(8)
        .collect()
}

/// Whether a story met on a page past the first was already on an earlier one: one of its
/// copies that the query selects (any copy when it names no tags) is at or above the cursor,
/// where the earlier pages' walk found it.
pub(super) fn shown_above(copies: &[Copy], include: &[String], cursor: Option<Cursor>) -> bool {
    let Some(cursor) = cursor else {
        return false;
    };
    copies.iter().any(|c| {
        let at = Cursor {
            date: ts(c.stored.date),
            entry: c.stored.id,
        };
        at >= cursor
            && (include.is_empty() || c.stored.tags.iter().any(|t| include.contains(&t.key())))
    })
}

/// One stored copy of a story, read back with what choosing its place in the story needs.
pub(super) struct Copy {
    pub stored: StoredEntry,
    /// When the copy's row was last written.
    pub changed: DateTime<Utc>,
    pub leads: bool,
    pub feed_id: i64,
}

/// An entry's tags in display spelling, ordered by key.
pub(super) fn spelled(mut keys: Vec<String>, spelling: &HashMap<String, String>) -> Vec<Tag> {
    keys.sort();
    keys.into_iter()
        .map(|k| Tag(spelling.get(&k).cloned().unwrap_or(k)))
        .collect()
}

/// A story from its copies (each with its tags): its lead first, the story's guid and
/// updated date (`None`: an entry stored before stories were recorded is its own story), the
/// other feeds that carried it, the union of its copies' tags.
pub(super) fn story(
    id: StoryId,
    mut copies: Vec<Copy>,
    recorded: Option<(String, DateTime<Utc>)>,
) -> Story {
    copies.sort_by_key(|m| (!m.leads, m.stored.first_seen, m.stored.id));
    let mut tags: Vec<Tag> = Vec::new();
    for m in &copies {
        for t in &m.stored.tags {
            if !tags.iter().any(|x| x.key() == t.key()) {
                tags.push(t.clone());
            }
        }
    }
    let (guid, updated) =
        recorded.unwrap_or_else(|| (copies[0].stored.guid.clone(), copies[0].stored.date));
    let changed = copies.iter().map(|c| c.changed).max().unwrap_or(updated);
    let mut feeds_named = HashSet::from([copies[0].feed_id]);
    let mut rest = copies.into_iter();
    let primary = rest.next().expect("a story has at least one copy").stored;
    let also = rest
        .filter(|m| feeds_named.insert(m.feed_id))
        .map(|m| m.stored.source)
        .collect();
    tags.sort_by_key(|t| t.key());
    let updated = updated.max(primary.date);
    Story {
        id,
        guid,
        changed: changed.max(updated),
        updated,
        primary,
        also,
        tags,
    }
}

/// Stories newest first, by their lead's date.
pub(super) fn newest_first(stories: &mut [Story]) {
    stories.sort_by(|a, b| {
        b.primary
            .date
            .cmp(&a.primary.date)
            .then(b.primary.id.cmp(&a.primary.id))
    });
}

/// Whether every copy of `story` comes from a feed the config no longer has (`dropped`, by
/// URL): such a story leaves the outputs, though it is kept until retention.
pub(super) fn only_from_dropped_feeds(
    story: &crate::model::Story,
    dropped: &std::collections::HashSet<String>,
) -> bool {
    !dropped.is_empty()
        && dropped.contains(&story.primary.source.feed_url)
        && story.also.iter().all(|s| dropped.contains(&s.feed_url))
}
