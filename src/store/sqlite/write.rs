//! Writes: fetched feeds' entries (each feed all or nothing, several in one group commit) and
//! the retention sweep.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::Db;
use super::stories;
use crate::dedup::index::{Arrival, StoryIndex};
use crate::model::{PreparedEntry, Tag, effective_date};
use crate::store::rows::{categories_json, from_ts, json, ts};
use crate::store::{BatchCounts, FeedBatch, Held, StoreError, SweepCounts};

impl Db {
    /// Replaces the tags of every entry `tag` gives new ones for (by feed URL and entry), in
    /// one transaction. Returns how many entries it re-tagged.
    pub fn retag(&mut self, tag: &crate::store::Retagger) -> Result<usize, StoreError> {
        let entries = self.all_entries()?;
        let tx = self.conn.transaction()?;
        let mut spelled = std::collections::HashSet::new();
        let mut changed = 0;
        for (id, date, feed_url, entry) in entries {
            let Some(tags) = tag(&feed_url, &entry) else {
                continue;
            };
            tx.prepare_cached("DELETE FROM entry_tags WHERE entry_id = ?1")?
                .execute([id])?;
            insert_tags(&tx, id, &tags, date, &mut spelled)?;
            changed += 1;
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Stores a feed's entries and its new state, all or nothing.
    pub fn apply_batch(
        &mut self,
        feed_id: i64,
        batch: &FeedBatch,
    ) -> Result<BatchCounts, StoreError> {
        let index = self.stories.as_mut().expect("only the writer writes");
        let tx = self.conn.transaction()?;
        let written = write_batch(&tx, index, feed_id, batch).and_then(|counts| {
            tx.commit()?;
            Ok(counts)
        });
        // What the index learned of a batch rolled back is forgotten: it is read again.
        if written.is_err() {
            index.mark_stale();
        }
        written
    }

    /// Stores several feeds' batches in one transaction (group commit), each batch still all or
    /// nothing: a batch that fails is rolled back to its savepoint and gets its own error, the
    /// others are kept. One commit instead of one per feed matters: every commit rewrites the
    /// index pages it touched into the WAL, and a cold pass's entries land all over the
    /// date-ordered indexes, so per-feed commits wrote the same pages again and again (1.2 GB
    /// of WAL for a 130 MB database of 1000 feeds). If the group as a whole cannot commit (disk
    /// full, I/O error), each batch is tried again in a transaction of its own, so one bad
    /// moment costs only the batches it must.
    pub fn apply_batches(
        &mut self,
        batches: &[(i64, &FeedBatch)],
    ) -> Vec<Result<BatchCounts, StoreError>> {
        if batches.len() == 1 {
            let (id, batch) = batches[0];
            return vec![self.apply_batch(id, batch)];
        }
        match self.try_group(batches) {
            Ok(results) => results,
            Err(_) => batches
                .iter()
                .map(|&(id, batch)| self.apply_batch(id, batch))
                .collect(),
        }
    }

    /// The group in one transaction; Err when the transaction as a whole is lost.
    fn try_group(
        &mut self,
        batches: &[(i64, &FeedBatch)],
    ) -> Result<Vec<Result<BatchCounts, StoreError>>, StoreError> {
        let index = self.stories.as_mut().expect("only the writer writes");
        let mut tx = self.conn.transaction()?;
        let mut results = Vec::with_capacity(batches.len());
        for &(id, batch) in batches {
            let sp = tx.savepoint()?;
            match write_batch(&sp, index, id, batch) {
                Ok(counts) => {
                    sp.commit()?;
                    results.push(Ok(counts));
                }
                Err(e) => {
                    // Some errors (full disk, I/O) make SQLite roll back the whole
                    // transaction; then the batches before this one are gone too.
                    drop(sp);
                    index.mark_stale();
                    if tx.is_autocommit() {
                        return Err(e);
                    }
                    results.push(Err(e));
                }
            }
        }
        if let Err(e) = tx.commit() {
            index.mark_stale();
            return Err(e.into());
        }
        Ok(results)
    }

    /// Deletes the stories created before `cutoff`, every copy with them (a story is never
    /// shown without its lead, nor under another), leaving a tombstone for each, and forgets
    /// tombstones whose entry has not been in its feed since `cutoff`.
    pub fn sweep(
        &mut self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SweepCounts, StoreError> {
        let tx = self.conn.transaction()?;
        const OLD: &str = "SELECT id FROM stories WHERE created_at < ?1";
        tx.execute(
            &format!(
                "INSERT INTO tombstones (feed_id, key, seen_at)
                 SELECT feed_id, key, ?2 FROM entries WHERE story_id IN ({OLD})
                 ON CONFLICT (feed_id, key) DO UPDATE SET seen_at = excluded.seen_at"
            ),
            params![ts(cutoff), ts(now)],
        )?;
        let entries = tx.execute(
            &format!("DELETE FROM entries WHERE story_id IN ({OLD})"),
            [ts(cutoff)],
        )?;
        tx.execute("DELETE FROM stories WHERE created_at < ?1", [ts(cutoff)])?;
        let tombstones = tx.execute("DELETE FROM tombstones WHERE seen_at < ?1", [ts(cutoff)])?;
        tx.commit()?;
        Ok(SweepCounts {
            entries,
            tombstones,
        })
    }
}

/// One feed's entries and state, inside a transaction or savepoint the caller commits.
fn write_batch(
    conn: &Connection,
    index: &mut StoryIndex,
    feed_id: i64,
    batch: &FeedBatch,
) -> Result<BatchCounts, StoreError> {
    let mut counts = BatchCounts::default();
    // Tag spellings recorded once per batch, not once per entry carrying the tag.
    let mut spelled = std::collections::HashSet::new();
    for e in &batch.entries {
        match upsert_entry(conn, index, feed_id, e, batch.now, &mut spelled)? {
            Upsert::New => counts.new += 1,
            Upsert::Updated => counts.updated += 1,
            Upsert::Unchanged => counts.unchanged += 1,
            Upsert::Tombstoned => counts.tombstoned += 1,
        }
    }
    conn.prepare_cached(
        "UPDATE feeds SET title = COALESCE(?2, title), site_link = COALESCE(?3, site_link),
            etag = ?4, last_modified = ?5, body_hash = ?6, current_url = COALESCE(?7, current_url),
            last_attempt = ?8, last_success = ?8, last_status = ?9, last_error = NULL,
            consecutive_failures = 0, fingerprint = ?10, last_note = ?11, held = ?12
         WHERE id = ?1",
    )?
    .execute(params![
        feed_id,
        batch.title,
        batch.site_link,
        batch.validators.etag,
        batch.validators.last_modified,
        batch.body_hash,
        batch.moved_to,
        ts(batch.now),
        batch.status,
        batch.fingerprint,
        (!batch.notes.is_empty()).then(|| batch.notes.join("; ")),
        Held::record(&batch.entries),
    ])?;
    Ok(counts)
}

enum Upsert {
    New,
    Updated,
    Unchanged,
    Tombstoned,
}

fn upsert_entry(
    tx: &Connection,
    index: &mut StoryIndex,
    feed_id: i64,
    e: &PreparedEntry,
    now: DateTime<Utc>,
    spelled: &mut std::collections::HashSet<String>,
) -> Result<Upsert, StoreError> {
    if still_tombstoned(tx, feed_id, &e.key, now)? {
        return Ok(Upsert::Tombstoned);
    }
    let existing = stored_row(tx, feed_id, &e.key)?;
    let x = &e.entry;
    let (sql, date, outcome, story) = match existing {
        Some((_, ref hash, _, _)) if *hash == e.content_hash => return Ok(Upsert::Unchanged),
        Some((_, _, first_seen, story)) => (
            UPDATE_ENTRY,
            effective_date(x.published, from_ts(first_seen)),
            Upsert::Updated,
            story,
        ),
        None => (
            INSERT_ENTRY,
            effective_date(x.published, now),
            Upsert::New,
            None,
        ),
    };
    let arrival = Arrival {
        feed: feed_id,
        entry: e,
        date,
        now,
    };
    // A new entry's story is decided before its row is written, which names it.
    let placed = (existing.is_none())
        .then(|| stories::place(tx, index, &arrival))
        .transpose()?;
    let (story, leads) = match &placed {
        Some((placement, story)) => (Some(*story), placement.joins.is_none()),
        None => (story, false),
    };
    let row = (feed_id, date, now);
    write_row(tx, sql, e, row, (story, leads))?;
    let id = match existing {
        Some((id, ..)) => rewritten(tx, index, id, story, e)?,
        None => tx.last_insert_rowid(),
    };
    let signature = index.stored(e);
    if signature.is_some() || existing.is_some() {
        stories::store_signature(tx, id, signature)?;
    }
    if let Some(placed) = placed {
        stories::placed(tx, index, placed, id, &arrival)?;
    }
    insert_tags(tx, id, &e.tags, ts(date), spelled)?;
    Ok(outcome)
}

/// An updated entry's old tags dropped (the new ones are inserted after) and its story's
/// index told its new text. Returns its id.
fn rewritten(
    tx: &Connection,
    index: &mut StoryIndex,
    id: i64,
    story: Option<i64>,
    e: &PreparedEntry,
) -> Result<i64, StoreError> {
    tx.prepare_cached("DELETE FROM entry_tags WHERE entry_id = ?1")?
        .execute([id])?;
    if let Some(story) = story {
        let signature = index.settings().signature_of(e);
        index.updated(story, id, signature);
    }
    Ok(id)
}

/// Refreshes the tombstone of an entry retention removed, if it has one: such an entry, still
/// in its feed, is not stored again.
fn still_tombstoned(
    tx: &Connection,
    feed_id: i64,
    key: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let touched = tx
        .prepare_cached("UPDATE tombstones SET seen_at = ?3 WHERE feed_id = ?1 AND key = ?2")?
        .execute(params![feed_id, key, ts(now)])?;
    Ok(touched > 0)
}

/// The stored row of an entry, if any: its id, content hash, first sight and story.
fn stored_row(
    tx: &Connection,
    feed_id: i64,
    key: &str,
) -> Result<Option<(i64, String, i64, Option<i64>)>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT id, content_hash, first_seen, story_id FROM entries WHERE feed_id = ?1 AND key = ?2",
        )?
        .query_row(params![feed_id, key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?)
}

/// Runs `sql` (`INSERT_ENTRY` or `UPDATE_ENTRY`) with the entry's columns, its feed, date and
/// the time now, and for an insert the story it was placed in and whether it leads it.
fn write_row(
    tx: &Connection,
    sql: &str,
    e: &PreparedEntry,
    (feed_id, date, now): (i64, DateTime<Utc>, DateTime<Utc>),
    (story, leads): (Option<i64>, bool),
) -> Result<(), StoreError> {
    let x = &e.entry;
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![
        &feed_id,
        &e.key,
        &e.guid,
        &e.story_key,
        &x.source_id,
        &x.title,
        &x.link,
        &x.summary,
        &x.content,
    ];
    let (authors, categories, enclosures) =
        (json(&x.authors), categories_json(x), json(&x.enclosures));
    let (published, updated, date_ts, now_ts) =
        (x.published.map(ts), x.updated.map(ts), ts(date), ts(now));
    values.extend([
        &authors as &dyn rusqlite::ToSql,
        &categories,
        &enclosures,
        &published,
        &updated,
        &date_ts,
        &now_ts,
        &e.content_hash,
    ]);
    if sql == INSERT_ENTRY {
        values.extend([&story as &dyn rusqlite::ToSql, &leads]);
    }
    tx.prepare_cached(sql)?.execute(&values[..])?;
    Ok(())
}

/// Insert and update take the same parameters: ?1 feed, ?2 key, ?3 guid, ?4..?14 the entry's
/// fields, ?15 date, ?16 now, ?17 content hash; an insert adds ?18 story and ?19 whether it
/// leads. An update keeps guid, first_seen, story and lead. The signature is kept in a table
/// of its own (`stories::store_signature`).
const INSERT_ENTRY: &str = "INSERT INTO entries (feed_id, key, guid, story_key, source_id, title, link, summary,
        content, authors, categories, enclosures, published, updated, date, first_seen, changed_at, content_hash,
        story_id, leads)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, ?17, ?18, ?19)";
const UPDATE_ENTRY: &str = "UPDATE entries SET story_key = ?4, source_id = ?5, title = ?6, link = ?7, summary = ?8,
        content = ?9, authors = ?10, categories = ?11, enclosures = ?12, published = ?13, updated = ?14,
        date = ?15, changed_at = ?16, content_hash = ?17
     WHERE feed_id = ?1 AND key = ?2";

fn insert_tags(
    tx: &Connection,
    entry_id: i64,
    tags: &[Tag],
    date: i64,
    spelled: &mut std::collections::HashSet<String>,
) -> Result<(), StoreError> {
    let mut spelling = tx.prepare_cached(
        "INSERT INTO tags (key, display) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
    )?;
    let mut link = tx.prepare_cached(
        "INSERT OR IGNORE INTO entry_tags (tag, entry_id, date) VALUES (?1, ?2, ?3)",
    )?;
    for t in tags {
        let key = t.key();
        if spelled.insert(key.clone()) {
            spelling.execute((&key, &t.0))?;
        }
        link.execute(params![key, entry_id, date])?;
    }
    Ok(())
}
