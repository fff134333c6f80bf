//! Stories as the SQLite backend records them. Which story an entry joins is decided by the
//! writer's `dedup::index::StoryIndex` (SQLite has one writer, so its index sees every write);
//! this file reads the index's stories back, finds stories by link, and records what the
//! decision leaves behind: a `stories` row, an entry's story id and whether it leads.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::db::{from_ts, ts};
use crate::dedup::cluster::Settings;
use crate::dedup::index::{Arrival, Placed, Placement, StoredCopy, StoryIndex};
use crate::model::{Entry, PreparedEntry};
use crate::store::StoreError;

/// Rebuilds the index from the stories created within `absorb` of `now`. An entry whose
/// record is stored (of the index's epoch) is read from `entries_by_story_id` alone, the
/// record holding the rest of what the index weighs (schema migration 9); the row itself is
/// read only for an entry whose signature must be derived again, and that one gets its
/// record stored, so the next load reads it.
pub(super) fn load(
    conn: &Connection,
    index: &mut StoryIndex,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT e.story_id, s.created_at, e.id, e.feed_id,
                CASE WHEN g.current THEN NULL ELSE e.story_key END,
                CASE WHEN g.current THEN NULL ELSE e.summary END,
                e.date,
                CASE WHEN g.current THEN NULL ELSE e.link END,
                CASE WHEN g.current THEN '' ELSE e.title END,
                e.published, e.first_seen,
                CASE WHEN g.current THEN NULL ELSE e.content END,
                g.signature
         FROM stories s JOIN entries e ON e.story_id = s.id
              LEFT JOIN (SELECT entry_id, signature, substr(signature, 1, 4) = ?2 AS current
                         FROM signatures) g ON g.entry_id = e.id
         WHERE s.created_at >= ?1 ORDER BY s.created_at, s.id, e.id",
    )?;
    let epoch = index.epoch().map(Vec::from);
    let mut rows = stmt.query(params![ts(index.since(now)), epoch])?;
    // Streamed into the index, so that bodies are never all in memory; a failure part way
    // leaves it stale, to be read again.
    index.reload([]);
    index.mark_stale();
    let mut derived = Vec::new();
    while let Some(r) = rows.next()? {
        let entry: i64 = r.get(2)?;
        let again = index.learn(StoredCopy {
            story: r.get(0)?,
            story_created: from_ts(r.get(1)?),
            entry,
            feed: r.get(3)?,
            story_key: r.get(4)?,
            date: from_ts(r.get(6)?),
            first_seen: from_ts(r.get(10)?),
            text: Entry {
                link: r.get(7)?,
                summary: r.get(5)?,
                content: r.get(11)?,
                published: r.get::<_, Option<i64>>(9)?.map(from_ts),
                ..Entry::titled(r.get::<_, String>(8)?)
            },
            signature: r.get(12)?,
        });
        derived.extend(again.map(|bytes| (entry, bytes)));
    }
    drop(rows);
    for (entry, bytes) in derived {
        store_signature(conn, entry, Some(bytes))?;
    }
    index.reload_done();
    Ok(())
}

/// Keeps `signature` as entry `entry`'s, or forgets the one it had (its text changed and
/// nothing is to be stored: clustering is off).
pub(super) fn store_signature(
    conn: &Connection,
    entry: i64,
    signature: Option<Vec<u8>>,
) -> Result<(), StoreError> {
    match signature {
        Some(bytes) => conn
            .prepare_cached(
                "INSERT INTO signatures (entry_id, signature) VALUES (?1, ?2)
                 ON CONFLICT (entry_id) DO UPDATE SET signature = excluded.signature",
            )?
            .execute(params![entry, bytes])?,
        None => conn
            .prepare_cached("DELETE FROM signatures WHERE entry_id = ?1")?
            .execute([entry])?,
    };
    Ok(())
}

/// Decides the story of a new entry; a new story's row is written here, the entry's row is
/// the caller's, with the placement's story and lead.
pub(super) fn place(
    conn: &Connection,
    index: &mut StoryIndex,
    new: &Arrival,
) -> Result<(Placement, i64), StoreError> {
    if index.is_stale() {
        load(conn, index, new.now)?;
    }
    let by_link = linked_stories(conn, new.entry.story_key.as_deref())?;
    let placement = index.place(new, &by_link);
    let story = match placement.joins {
        Some(story) => story,
        None => {
            conn.prepare_cached(
                "INSERT INTO stories (guid, created_at, updated_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![new.entry.guid, ts(new.now), ts(new.date)])?;
            conn.last_insert_rowid()
        }
    };
    Ok((placement, story))
}

/// Records the stored entry in its story: the story's updated date moved if it joined one,
/// and the lead the index chose.
pub(super) fn placed(
    conn: &Connection,
    index: &mut StoryIndex,
    (placement, story): (Placement, i64),
    entry: i64,
    new: &Arrival,
) -> Result<(), StoreError> {
    let Placed::Joined { lead } = index.placed(placement, story, entry, new) else {
        return Ok(());
    };
    conn.prepare_cached("UPDATE stories SET updated_at = MAX(updated_at, ?2) WHERE id = ?1")?
        .execute(params![story, ts(new.now)])?;
    if let Some(lead) = lead {
        conn.prepare_cached(
            "UPDATE entries SET leads = (id = ?2) WHERE story_id = ?1 AND leads != (id = ?2)",
        )?
        .execute(params![story, lead])?;
    }
    Ok(())
}

/// Stories with a copy linking to `story_key`, and the feeds of those copies.
fn linked_stories(
    conn: &Connection,
    story_key: Option<&str>,
) -> Result<HashMap<i64, Vec<i64>>, StoreError> {
    let mut found: HashMap<i64, Vec<i64>> = HashMap::new();
    let Some(key) = story_key else {
        return Ok(found);
    };
    let mut stmt =
        conn.prepare_cached("SELECT story_id, feed_id FROM entries WHERE story_key = ?1")?;
    let mut rows = stmt.query([key])?;
    while let Some(r) = rows.next()? {
        if let Some(story) = r.get::<_, Option<i64>>(0)? {
            found.entry(story).or_default().push(r.get(1)?);
        }
    }
    Ok(found)
}

/// Entries clustered per page in [`recluster`]: their bodies are held in memory at once.
const RECLUSTER_PAGE: usize = 500;

/// Clusters every stored entry once (migration 4), in the order they were first seen, each
/// as if it had just arrived then: the story of copies that shared a link gets the guid of its
/// first copy, the one its readers have seen. Pages through the table, so that bodies are
/// never all in memory, and never steps a query over rows it is changing.
pub(super) fn recluster(conn: &Connection, settings: &Settings) -> Result<usize, StoreError> {
    let mut index = StoryIndex::new(settings.clone());
    index.reload([]);
    let mut after = (i64::MIN, i64::MIN);
    let mut done = 0;
    loop {
        let page = recluster_page(conn, after, settings)?;
        let Some(last) = page.last() else {
            return Ok(done);
        };
        after = (ts(last.first_seen), last.id);
        for old in &page {
            let new = Arrival {
                feed: old.feed,
                entry: &old.prepared,
                date: old.date,
                now: old.first_seen,
            };
            let placement = place(conn, &mut index, &new)?;
            conn.prepare_cached("UPDATE entries SET story_id = ?2, leads = ?3 WHERE id = ?1")?
                .execute(params![old.id, placement.1, placement.0.joins.is_none()])?;
            placed(conn, &mut index, placement, old.id, &new)?;
        }
        done += page.len();
    }
}

struct Stored {
    id: i64,
    feed: i64,
    date: chrono::DateTime<chrono::Utc>,
    first_seen: chrono::DateTime<chrono::Utc>,
    prepared: PreparedEntry,
}

fn recluster_page(
    conn: &Connection,
    after: (i64, i64),
    settings: &Settings,
) -> Result<Vec<Stored>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, feed_id, guid, story_key, title, link, summary, content, published, date, first_seen
         FROM entries WHERE (first_seen, id) > (?1, ?2) ORDER BY first_seen, id LIMIT {RECLUSTER_PAGE}"
    ))?;
    let rows = stmt.query_map(params![after.0, after.1], |r| {
        let entry = Entry {
            link: r.get(5)?,
            summary: r.get(6)?,
            content: r.get(7)?,
            published: r.get::<_, Option<i64>>(8)?.map(from_ts),
            ..Entry::titled(r.get::<_, String>(4)?)
        };
        Ok(Stored {
            id: r.get(0)?,
            feed: r.get(1)?,
            date: from_ts(r.get(9)?),
            first_seen: from_ts(r.get(10)?),
            prepared: PreparedEntry {
                signature: settings.signature(&entry).into(),
                entry,
                key: String::new(),
                guid: r.get(2)?,
                story_key: r.get(3)?,
                content_hash: String::new(),
                tags: Vec::new(),
            },
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
