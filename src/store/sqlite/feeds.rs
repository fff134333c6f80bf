//! Feed rows: created on first sight, their state read for a poll, each poll's end recorded,
//! their health read back for status displays.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::db::{Db, from_ts, ts};
use crate::model::Validators;
use crate::store::{
    Failure, FeedState, FeedStatus, Held, POLLS_KEPT, PollRecord, StoreError, Unchanged,
};

/// A feed's row, created on first sight and left alone after.
const INSERT_FEED: &str = "INSERT INTO feeds (url) VALUES (?1) ON CONFLICT (url) DO NOTHING";

impl Db {
    /// Sets the display spelling of configured tags (the config's spelling wins over feeds').
    pub fn set_tag_spellings(&mut self, names: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO tags (key, display) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET display = excluded.display",
            )?;
            for name in names {
                stmt.execute((crate::model::tag_key(name), name))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Creates the rows of feeds not seen before, all in one transaction (at startup, so that
    /// polls find their feed's state without waiting for the writer).
    pub fn register_feeds(&mut self, urls: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(INSERT_FEED)?;
            for url in urls {
                insert.execute([url])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The feed's row, created on first sight.
    pub fn feed_state(&mut self, url: &str) -> Result<FeedState, StoreError> {
        self.conn.prepare_cached(INSERT_FEED)?.execute([url])?;
        Ok(self
            .find_feed_state(url)?
            .expect("the row was just created"))
    }

    /// The feed's row if it has one; needs no write, so any connection can answer.
    pub fn find_feed_state(&self, url: &str) -> Result<Option<FeedState>, StoreError> {
        let row = self
            .conn
            .prepare_cached(&format!("SELECT {STATE_COLUMNS} FROM feeds WHERE url = ?1"))?
            .query_row([url], state_row)
            .optional()?;
        Ok(row.map(|(_, state)| state))
    }

    /// The states of the feeds with these ids, with their URLs (for the writer's cache of
    /// them, after it wrote them).
    pub fn feed_states_by_id(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<Vec<(String, FeedState)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {STATE_COLUMNS} FROM feeds WHERE id = ?1"))?;
        let mut states = Vec::new();
        for id in ids {
            if let Some(row) = stmt.query_row([id], state_row).optional()? {
                states.push(row);
            }
        }
        Ok(states)
    }

    /// Small records of feeds' polls, in one transaction; when it is lost as a whole (a full
    /// disk), each is tried again alone, so one bad moment costs only the records it must.
    pub fn record_all(&mut self, records: &[&FeedRecord]) -> Vec<Result<(), StoreError>> {
        if records.len() < 2 {
            return records.iter().map(|r| r.write(&self.conn)).collect();
        }
        let together = (|| {
            let tx = self.conn.transaction()?;
            for r in records {
                r.write(&tx)?;
            }
            tx.commit()?;
            Ok::<_, StoreError>(())
        })();
        match together {
            Ok(()) => records.iter().map(|_| Ok(())).collect(),
            Err(_) => records.iter().map(|r| r.write(&self.conn)).collect(),
        }
    }

    /// What feed `feed_id`'s last stored batch held (see `store::Held`).
    pub fn held(&self, feed_id: i64) -> Result<Held, StoreError> {
        let record: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT held FROM feeds WHERE id = ?1")?
            .query_row([feed_id], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(record.map_or_else(Held::default, |r| Held::read(&r)))
    }

    /// A feed's last polls, newest first, by its configured URL.
    pub fn recent_polls(&self, url: &str) -> Result<Vec<PollRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.at, p.status, p.error, p.note FROM polls p
             WHERE p.feed_id = (SELECT id FROM feeds WHERE url = ?1)
             ORDER BY p.id DESC LIMIT ?2",
        )?;
        let polls = stmt
            .query_map(params![url, POLLS_KEPT as i64], |r| {
                Ok(PollRecord {
                    at: from_ts(r.get(0)?),
                    status: r.get(1)?,
                    error: r.get(2)?,
                    note: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(polls)
    }

    /// The server said 410 Gone: polling stops for good (until the feed is removed from the
    /// config and added again, or its URL changes).
    pub fn mark_gone(&mut self, url: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE feeds SET gone = 1, next_poll = NULL WHERE url = ?1",
            [url],
        )?;
        Ok(())
    }

    /// Marks the configured feeds active and every other one not (outputs leave out the
    /// stories of feeds the config dropped).
    pub fn set_active(&mut self, configured: &[String]) -> Result<(), StoreError> {
        let urls = serde_json::to_string(configured).expect("strings serialise");
        self.conn.execute(
            "UPDATE feeds SET active = (url IN (SELECT value FROM json_each(?1)))
             WHERE active IS NOT (url IN (SELECT value FROM json_each(?1)))",
            [urls],
        )?;
        Ok(())
    }

    /// Records `paths` as the output files written now; returns those recorded before and
    /// not among them.
    pub fn replace_output_files(&mut self, paths: &[String]) -> Result<Vec<String>, StoreError> {
        let tx = self.conn.transaction()?;
        let before: Vec<String> = tx
            .prepare("SELECT path FROM output_files")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tx.execute("DELETE FROM output_files", [])?;
        for p in paths {
            tx.execute("INSERT OR IGNORE INTO output_files (path) VALUES (?1)", [p])?;
        }
        tx.commit()?;
        Ok(before.into_iter().filter(|p| !paths.contains(p)).collect())
    }

    /// Forgets "gone" for feeds no longer configured, so re-adding one polls it again.
    pub fn forget_gone_except(&mut self, configured: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut gone = tx.prepare("SELECT url FROM feeds WHERE gone = 1")?;
            let urls = gone
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            for url in urls.iter().filter(|u| !configured.contains(u)) {
                tx.execute("UPDATE feeds SET gone = 0 WHERE url = ?1", [url])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every feed's health, in the order they were first subscribed.
    pub fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.url, f.title, f.current_url, f.last_attempt, f.last_success, f.last_status, f.last_error,
                    f.consecutive_failures, f.next_poll, f.gone,
                    (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id), f.last_note, f.site_link
             FROM feeds f ORDER BY f.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FeedStatus {
                url: r.get(0)?,
                title: r.get(1)?,
                current_url: r.get(2)?,
                last_attempt: r.get::<_, Option<i64>>(3)?.map(from_ts),
                last_success: r.get::<_, Option<i64>>(4)?.map(from_ts),
                last_status: r.get(5)?,
                last_error: r.get(6)?,
                consecutive_failures: r.get(7)?,
                next_poll: r.get::<_, Option<i64>>(8)?.map(from_ts),
                gone: r.get(9)?,
                entries: r.get::<_, i64>(10)? as u64,
                last_note: r.get(11)?,
                site_link: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A cheap query proving the database answers (health checks).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

/// What [`state_row`] reads. A feed's state is written by a group's batch (`write_batch`) and
/// by an unchanged poll's record, and nowhere else: the writer's cache of it relies on that.
const STATE_COLUMNS: &str = "url, id, etag, last_modified, body_hash, current_url, fingerprint";

fn state_row(r: &rusqlite::Row) -> rusqlite::Result<(String, FeedState)> {
    Ok((
        r.get(0)?,
        FeedState {
            id: r.get(1)?,
            validators: Validators {
                etag: r.get(2)?,
                last_modified: r.get(3)?,
            },
            body_hash: r.get(4)?,
            current_url: r.get(5)?,
            fingerprint: r.get(6)?,
        },
    ))
}

/// A small write about one feed, queued with the writer's group (see `Sqlite::enqueue`) rather
/// than written in a transaction and a trip to the blocking pool of its own: a steady round is
/// mostly these.
pub enum FeedRecord {
    /// A poll that found nothing new: 304, or a body identical to the last one parsed.
    /// Validators are updated only when the server sent new ones.
    Unchanged(i64, Unchanged),
    /// A failed poll: nothing stored for the feed is touched but its status.
    Failure(i64, Failure),
    /// When the scheduler means to poll the feed (by URL) next: shown on the status page, and
    /// honoured after a restart.
    NextPoll(String, Option<DateTime<Utc>>),
}

impl FeedRecord {
    fn write(&self, conn: &rusqlite::Connection) -> Result<(), StoreError> {
        match self {
            FeedRecord::Unchanged(id, seen) => update_unchanged(conn, *id, seen),
            FeedRecord::Failure(id, failure) => {
                conn.prepare_cached(
                    "UPDATE feeds SET last_attempt = ?2, last_status = ?3, last_error = ?4,
                        consecutive_failures = consecutive_failures + 1
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    ts(failure.now),
                    failure.status,
                    failure.error
                ])?;
                Ok(())
            }
            FeedRecord::NextPoll(url, at) => {
                conn.prepare_cached("UPDATE feeds SET next_poll = ?2 WHERE url = ?1")?
                    .execute(params![url, at.map(ts)])?;
                Ok(())
            }
        }
    }
}

/// One unchanged poll's record: the validators the server sent, and a success.
fn update_unchanged(
    conn: &rusqlite::Connection,
    feed_id: i64,
    seen: &Unchanged,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE feeds SET etag = COALESCE(?2, etag), last_modified = COALESCE(?3, last_modified),
                current_url = COALESCE(?4, current_url),
                last_attempt = ?5, last_success = ?5, last_status = ?6, last_error = NULL,
                consecutive_failures = 0
             WHERE id = ?1",
    )?
    .execute(params![
        feed_id,
        seen.validators.etag,
        seen.validators.last_modified,
        seen.moved_to,
        ts(seen.now),
        seen.status
    ])?;
    Ok(())
}
