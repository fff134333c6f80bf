//! Writes: a feed's batch in one transaction, and the retention sweep.
//!
//! Which story an entry joins is decided from the recent stories of every instance, so
//! writers take turns: each batch's transaction first takes an advisory lock, then reads
//! what other instances stored since its index last looked (entry ids are drawn under the
//! lock, so "since" is "id above the last one seen"), then decides and writes. Fetching and
//! parsing, the costly part of a poll, stay parallel across instances; only the commit of
//! decisions is serial, as it is in SQLite. Each batch costs a fixed handful of round trips,
//! whatever its size: rows go in as arrays (UNNEST), never one statement per entry.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

use super::schema::{SWEEP_LOCK, WRITE_LOCK};
use super::{Params, Postgres, exec, notify, pg_err, query, query_one, query_opt};
use crate::dedup::index::{Arrival, Placed, StoredCopy, StoryIndex};
use crate::model::{Entry, PreparedEntry, effective_date};
use crate::store::rows::{categories_json, from_ts, json, ts};
use crate::store::{BatchCounts, FeedBatch, Poll, StoreError, SweepCounts};

/// An instance's writing state: its index of recent stories and how far it has read.
pub(super) struct Writer {
    index: StoryIndex,
    /// The highest entry id the index has seen.
    seen: i64,
    /// The sweep counter when the index was loaded: a sweep deletes stories it may hold.
    sweeps: i64,
}

impl Writer {
    pub(super) fn new(index: StoryIndex) -> Writer {
        Writer {
            index,
            seen: 0,
            sweeps: -1,
        }
    }
}

/// What an entry of the batch turned out to be, once its row was looked up.
enum Row<'a> {
    New(&'a PreparedEntry),
    Updated {
        e: &'a PreparedEntry,
        id: i64,
        first_seen: DateTime<Utc>,
        story: Option<i64>,
    },
}

impl Postgres {
    pub(in crate::store) async fn apply_batch(
        &self,
        poll: &Poll,
        batch: FeedBatch,
    ) -> Result<BatchCounts, StoreError> {
        let token = Self::token(poll);
        let mut writer = self.writer.lock().await;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let claim = (poll.state.id, token, self.hold_until(batch.now));
        let written = match write_batch(&tx, &mut writer, claim, &batch).await {
            Ok((counts, seen)) => tx.commit().await.map_err(pg_err).map(|_| (counts, seen)),
            Err(e) => Err(e),
        };
        match written {
            Ok((counts, seen)) => {
                writer.seen = writer.seen.max(seen);
                Ok(counts)
            }
            Err(e) => {
                // What the index learned of a batch rolled back is forgotten: read again.
                writer.index.mark_stale();
                Err(e)
            }
        }
    }

    /// Deletes the stories created before `cutoff` with every copy, leaving tombstones, and
    /// forgets old tombstones: by one instance at a time (another already sweeping is left
    /// to it), in the writers' turn, and counted so that every writer reloads its index.
    pub(in crate::store) async fn sweep(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SweepCounts, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let mine: bool = query_one(&tx, "SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
            .await?
            .get(0);
        if !mine {
            return Ok(SweepCounts::default());
        }
        exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]).await?;
        let (cutoff, now) = (ts(cutoff), ts(now));
        const OLD: &str = "SELECT id FROM stories WHERE created_at < $1";
        exec(
            &tx,
            &format!(
                "INSERT INTO tombstones (feed_id, key, seen_at)
                 SELECT feed_id, key, $2 FROM entries WHERE story_id IN ({OLD})
                 ON CONFLICT (feed_id, key) DO UPDATE SET seen_at = excluded.seen_at"
            ),
            &[&cutoff, &now],
        )
        .await?;
        let entries = exec(
            &tx,
            &format!("DELETE FROM entries WHERE story_id IN ({OLD})"),
            &[&cutoff],
        )
        .await?;
        exec(&tx, "DELETE FROM stories WHERE created_at < $1", &[&cutoff]).await?;
        let tombstones = exec(&tx, "DELETE FROM tombstones WHERE seen_at < $1", &[&cutoff]).await?;
        if entries > 0 {
            exec(
                &tx,
                "UPDATE counters SET value = value + 1 WHERE name = 'sweeps'",
                &[],
            )
            .await?;
            notify(&tx).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(SweepCounts {
            entries: entries as usize,
            tombstones: tombstones as usize,
        })
    }
}

/// One feed's batch inside `tx`: the writers' turn, the lease checked, the index brought up
/// to date, then every row. Returns the counts and the highest entry id written.
async fn write_batch(
    tx: &Transaction<'_>,
    w: &mut Writer,
    (feed_id, token, hold_until): (i64, i64, i64),
    batch: &FeedBatch,
) -> Result<(BatchCounts, i64), StoreError> {
    take_turn(tx, w, (feed_id, token), batch.now).await?;
    let mut counts = BatchCounts::default();
    let rows = classify(tx, feed_id, batch, &mut counts).await?;
    let mut out = Rows::new(feed_id);
    let new = rows.iter().filter(|r| matches!(r, Row::New(_))).count();
    let (ids, by_link) = futures_util::try_join!(allocate(tx, new as i64), linked(tx, &rows))?;
    let mut ids = ids.into_iter();
    let no_links = HashMap::new();
    let now = batch.now;
    for row in &rows {
        match *row {
            Row::New(e) => {
                counts.new += 1;
                let ids = ids.next().expect("one id pair per new entry");
                let links = e.story_key.as_ref().and_then(|k| by_link.get(k));
                place_new(
                    w,
                    &mut out,
                    (feed_id, e, now),
                    ids,
                    links.unwrap_or(&no_links),
                );
            }
            Row::Updated {
                e,
                id,
                first_seen,
                story,
            } => {
                counts.updated += 1;
                let date = effective_date(e.entry.published, first_seen);
                out.changed(id, e, date, w.index.stored(e));
                if let Some(story) = story {
                    w.index
                        .updated(story, id, w.index.settings().signature_of(e));
                }
            }
        }
    }
    out.write(tx, now, (batch, hold_until)).await?;
    Ok((counts, out.last_id()))
}

/// Enters the writers' turn for one feed: what other instances stored is read into the index,
/// the global write lock taken, the feed's lease checked, and what landed meanwhile read too.
async fn take_turn(
    tx: &Transaction<'_>,
    w: &mut Writer,
    (feed_id, token): (i64, i64),
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // What other instances stored is read first outside the writers' turn: deriving their
    // entries' signatures is the costly part of catching up, and it need not hold the others
    // back. Entry ids are drawn in turn, so what is committed now is every id up to some
    // point, and what commits later is above it: the turn below reads only the rest.
    let sweeps: i64 = query_one(tx, "SELECT value FROM counters WHERE name = 'sweeps'", &[])
        .await?
        .get(0);
    catch_up(tx, w, now, sweeps).await?;
    // One round trip: the lock is taken before the others run, in the order sent.
    let (p1, p2): (Params, Params) = (&[&WRITE_LOCK], &[&feed_id, &token]);
    let (_, leased, sweeps) = futures_util::try_join!(
        exec(tx, "SELECT pg_advisory_xact_lock($1)", p1),
        query_opt(
            tx,
            "SELECT 1 FROM feeds WHERE id = $1 AND lease_token = $2 FOR UPDATE",
            p2,
        ),
        query_one(tx, "SELECT value FROM counters WHERE name = 'sweeps'", &[]),
    )?;
    if leased.is_none() {
        return Err(StoreError::LeaseLost);
    }
    catch_up(tx, w, now, sweeps.get(0)).await
}

/// A new entry placed: into the story it joins (by link or by the index's judgement) or a
/// story of its own, with the rows that says written into `out`.
fn place_new(
    w: &mut Writer,
    out: &mut Rows,
    (feed, e, now): (i64, &PreparedEntry, DateTime<Utc>),
    (entry_id, new_story): (i64, i64),
    links: &HashMap<i64, Vec<i64>>,
) {
    let arrival = Arrival {
        feed,
        entry: e,
        date: effective_date(e.entry.published, now),
        now,
    };
    let placement = w.index.place(&arrival, links);
    let story = placement.joins.unwrap_or(new_story);
    let founds = placement.joins.is_none();
    if founds {
        out.story(story, &e.guid, arrival.date);
    }
    let signature = w.index.stored(e);
    out.added(entry_id, e, arrival.date, (story, founds), signature);
    if let Placed::Joined { lead } = w.index.placed(placement, story, entry_id, &arrival) {
        // A later copy that leaves the lead as it is does not undo a change.
        let held = out.touched.entry(story).or_default();
        *held = lead.or(*held);
    }
}

/// Reads into the index what other instances stored since it last looked, or all of it again
/// when it is stale or a sweep deleted stories since.
async fn catch_up(
    tx: &Transaction<'_>,
    w: &mut Writer,
    now: DateTime<Utc>,
    sweeps: i64,
) -> Result<(), StoreError> {
    let reload = w.index.is_stale() || sweeps != w.sweeps;
    let after = if reload { 0 } else { w.seen };
    // Everything committed now is every id up to `upto` (ids are drawn in the writers'
    // turn); read up to it, not past it, so that an entry committing meanwhile is read next
    // time rather than skipped.
    let upto: i64 = query_one(tx, "SELECT COALESCE(MAX(id), 0) FROM entries", &[])
        .await?
        .get(0);
    // The entries above the last id seen first, by the primary key (a handful, between two
    // batches of this instance); joined with the recent stories the planner scanned them
    // all at every batch. Summary and content are read only where no signature of this
    // index's epoch is stored (rows of an older program): deriving it needs them.
    let epoch = w.index.epoch().map(Vec::from);
    let rows = query(
        tx,
        "WITH fresh AS MATERIALIZED (SELECT * FROM entries WHERE id > $2 AND id <= $3)
             SELECT e.story_id, s.created_at, e.id, e.feed_id, e.story_key,
                    CASE WHEN substring(e.signature FROM 1 FOR 4) = $4 THEN NULL
                         ELSE e.summary END,
                    e.date, e.link, e.title, e.published, e.first_seen,
                    CASE WHEN substring(e.signature FROM 1 FOR 4) = $4 THEN NULL
                         ELSE e.content END,
                    e.signature
             FROM fresh e JOIN stories s ON s.id = e.story_id
             WHERE s.created_at >= $1 ORDER BY s.created_at, s.id, e.id",
        &[&ts(w.index.since(now)), &after, &upto, &epoch],
    )
    .await?;
    let copies = rows.iter().map(|r| StoredCopy {
        story: r.get(0),
        story_created: from_ts(r.get(1)),
        entry: r.get(2),
        feed: r.get(3),
        story_key: r.get(4),
        date: from_ts(r.get(6)),
        first_seen: from_ts(r.get(10)),
        text: Entry {
            link: r.get(7),
            summary: r.get(5),
            content: r.get(11),
            published: r.get::<_, Option<i64>>(9).map(from_ts),
            ..Entry::titled(r.get::<_, String>(8))
        },
        signature: r.get(12),
    });
    // What is derived again is not written back: these rows may be other instances', and
    // an update here would make writers wait on each other's rows outside the turn. Only
    // rows stored before signatures were are without one, and retention ages them out.
    if reload {
        w.index.reload(copies);
        w.sweeps = sweeps;
    } else {
        copies.for_each(|c| {
            let _ = w.index.learn(c);
        });
    }
    w.seen = if reload { upto } else { w.seen.max(upto) };
    Ok(())
}

/// Looks up the batch's entries: tombstoned ones counted and their tombstones touched,
/// unchanged ones counted, the rest returned as new or updated, in the batch's order.
async fn classify<'a>(
    tx: &Transaction<'_>,
    feed_id: i64,
    batch: &'a FeedBatch,
    counts: &mut BatchCounts,
) -> Result<Vec<Row<'a>>, StoreError> {
    let keys: Vec<&str> = batch.entries.iter().map(|e| e.key.as_str()).collect();
    let now = ts(batch.now);
    let (p1, p2): (Params, Params) = (&[&feed_id, &keys, &now], &[&feed_id, &keys]);
    let (tombstoned, existing) = futures_util::try_join!(
        query(
            tx,
            "UPDATE tombstones SET seen_at = $3 WHERE feed_id = $1 AND key = ANY($2) RETURNING key",
            p1,
        ),
        query(
            tx,
            "SELECT key, id, content_hash, first_seen, story_id FROM entries
             WHERE feed_id = $1 AND key = ANY($2)",
            p2,
        ),
    )?;
    let tombstoned: HashSet<String> = tombstoned.iter().map(|r| r.get(0)).collect();
    let existing: HashMap<String, (i64, String, i64, Option<i64>)> = existing
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
        .collect();
    let mut rows = Vec::new();
    for e in &batch.entries {
        if tombstoned.contains(&e.key) {
            counts.tombstoned += 1;
            continue;
        }
        match existing.get(&e.key) {
            Some((_, hash, _, _)) if *hash == e.content_hash => counts.unchanged += 1,
            Some(&(id, _, first_seen, story)) => rows.push(Row::Updated {
                e,
                id,
                first_seen: from_ts(first_seen),
                story,
            }),
            None => rows.push(Row::New(e)),
        }
    }
    Ok(rows)
}

/// Ids for `n` new entries and as many possible new stories, drawn in one round trip.
async fn allocate(tx: &Transaction<'_>, n: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let rows = query(tx, "SELECT nextval('entries_id_seq'), nextval('stories_id_seq') FROM generate_series(1, $1::bigint)",
            &[&n],).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Stories with a copy linking where a new entry does: story key to (story to its copies'
/// feeds).
async fn linked(
    tx: &Transaction<'_>,
    rows: &[Row<'_>],
) -> Result<HashMap<String, HashMap<i64, Vec<i64>>>, StoreError> {
    let keys: Vec<&str> = rows
        .iter()
        .filter_map(|r| match r {
            Row::New(e) => e.story_key.as_deref(),
            Row::Updated { .. } => None,
        })
        .collect();
    let mut found: HashMap<String, HashMap<i64, Vec<i64>>> = HashMap::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let rows = query(
        tx,
        "SELECT story_key, story_id, feed_id FROM entries
             WHERE story_key = ANY($1) AND story_id IS NOT NULL",
        &[&keys],
    )
    .await?;
    for r in rows {
        found
            .entry(r.get(0))
            .or_default()
            .entry(r.get(1))
            .or_default()
            .push(r.get(2));
    }
    Ok(found)
}

/// Everything a batch writes, as columns, so that each table takes one statement.
struct Rows {
    feed_id: i64,
    /// New stories: id, guid, the lead's date.
    stories: (Vec<i64>, Vec<String>, Vec<i64>),
    /// New entries, with their story and whether they lead it.
    new: EntryColumns,
    placed: (Vec<i64>, Vec<bool>),
    /// Entries whose text changed: their tags are replaced.
    updated: EntryColumns,
    /// Stories a copy joined, and the copy that leads each now if that changed.
    touched: HashMap<i64, Option<i64>>,
    /// (tag key, entry, date) of every entry written.
    tags: (Vec<String>, Vec<i64>, Vec<i64>),
    spellings: HashMap<String, String>,
}

/// Entry rows as columns, in the order the UNNEST statements name them.
#[derive(Default)]
struct EntryColumns {
    id: Vec<i64>,
    key: Vec<String>,
    guid: Vec<String>,
    story_key: Vec<Option<String>>,
    source_id: Vec<Option<String>>,
    title: Vec<String>,
    link: Vec<Option<String>>,
    summary: Vec<Option<String>>,
    content: Vec<Option<String>>,
    authors: Vec<String>,
    categories: Vec<String>,
    enclosures: Vec<String>,
    published: Vec<Option<i64>>,
    updated: Vec<Option<i64>>,
    date: Vec<i64>,
    content_hash: Vec<String>,
    signature: Vec<Option<Vec<u8>>>,
}

impl EntryColumns {
    fn push(
        &mut self,
        id: i64,
        e: &PreparedEntry,
        date: DateTime<Utc>,
        signature: Option<Vec<u8>>,
    ) {
        let x = &e.entry;
        self.id.push(id);
        self.key.push(e.key.clone());
        self.guid.push(e.guid.clone());
        self.story_key.push(e.story_key.clone());
        self.source_id.push(x.source_id.clone());
        self.title.push(x.title.clone());
        self.link.push(x.link.clone());
        self.summary.push(x.summary.clone());
        self.content.push(x.content.clone());
        self.authors.push(json(&x.authors));
        self.categories.push(categories_json(x));
        self.enclosures.push(json(&x.enclosures));
        self.published.push(x.published.map(ts));
        self.updated.push(x.updated.map(ts));
        self.date.push(ts(date));
        self.content_hash.push(e.content_hash.clone());
        self.signature.push(signature);
    }

    /// The columns as statement parameters $1 to $17.
    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 17] {
        [
            &self.id,
            &self.key,
            &self.guid,
            &self.story_key,
            &self.source_id,
            &self.title,
            &self.link,
            &self.summary,
            &self.content,
            &self.authors,
            &self.categories,
            &self.enclosures,
            &self.published,
            &self.updated,
            &self.date,
            &self.content_hash,
            &self.signature,
        ]
    }
}

/// The entry columns unnested, as `u`, from parameters $1 to $17.
const UNNEST_ENTRIES: &str = "UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[],
        $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
        $12::text[], $13::bigint[], $14::bigint[], $15::bigint[], $16::text[], $17::bytea[]";
const UNNESTED_AS: &str = "AS u(id, key, guid, story_key, source_id, title, link, summary,
        content, authors, categories, enclosures, published, updated, date, content_hash,
        signature";

impl Rows {
    fn new(feed_id: i64) -> Rows {
        Rows {
            feed_id,
            stories: Default::default(),
            new: EntryColumns::default(),
            placed: Default::default(),
            updated: EntryColumns::default(),
            touched: HashMap::new(),
            tags: Default::default(),
            spellings: HashMap::new(),
        }
    }

    fn story(&mut self, id: i64, guid: &str, date: DateTime<Utc>) {
        self.stories.0.push(id);
        self.stories.1.push(guid.to_owned());
        self.stories.2.push(ts(date));
    }

    /// A new entry's row, in `story`.
    fn added(
        &mut self,
        id: i64,
        e: &PreparedEntry,
        date: DateTime<Utc>,
        (story, leads): (i64, bool),
        signature: Option<Vec<u8>>,
    ) {
        self.new.push(id, e, date, signature);
        self.placed.0.push(story);
        self.placed.1.push(leads);
        self.tagged(id, e, date);
    }

    /// A changed entry's new row.
    fn changed(
        &mut self,
        id: i64,
        e: &PreparedEntry,
        date: DateTime<Utc>,
        signature: Option<Vec<u8>>,
    ) {
        self.updated.push(id, e, date, signature);
        self.tagged(id, e, date);
    }

    fn tagged(&mut self, id: i64, e: &PreparedEntry, date: DateTime<Utc>) {
        for t in &e.tags {
            let key = t.key();
            self.spellings
                .entry(key.clone())
                .or_insert_with(|| t.0.clone());
            self.tags.0.push(key);
            self.tags.1.push(id);
            self.tags.2.push(ts(date));
        }
    }

    /// The highest new entry id.
    fn last_id(&self) -> i64 {
        self.new.id.iter().copied().max().unwrap_or(0)
    }

    /// Every row of the batch, and the feed's new state, in one pipeline: the statements
    /// are sent together and run in order (each table's parents first), one round trip for
    /// all. Statements with nothing to write run on empty arrays, which costs less than a
    /// round trip more to leave them out.
    async fn write(
        &self,
        tx: &Transaction<'_>,
        now: DateTime<Utc>,
        feed: (&FeedBatch, i64),
    ) -> Result<(), StoreError> {
        let now = ts(now);
        let mut inserted = self.new.params().to_vec();
        let extra: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&self.placed.0, &self.placed.1, &self.feed_id, &now];
        inserted.extend(extra);
        let mut updated = self.updated.params().to_vec();
        updated.push(&now);
        // In key order, as `configure` inserts them: no two writers wait on each other.
        let mut spelled: Vec<(&String, &String)> = self.spellings.iter().collect();
        spelled.sort();
        let (keys, names): (Vec<&String>, Vec<&String>) = spelled.into_iter().unzip();
        let touched: Vec<i64> = self.touched.keys().copied().collect();
        let (settling, leads): (Vec<i64>, Vec<i64>) = self
            .touched
            .iter()
            .filter_map(|(story, lead)| lead.map(|l| (*story, l)))
            .unzip();
        let changed = !self.new.id.is_empty() || !self.updated.id.is_empty();
        let (insert_sql, update_sql) = (insert_entries_sql(), update_entries_sql());
        let p1: Params = &[&self.stories.0, &self.stories.1, &self.stories.2, &now];
        let p2: Params = &[&self.updated.id];
        let p3: Params = &[&keys, &names];
        let p4: Params = &[&self.tags.0, &self.tags.1, &self.tags.2];
        let p5: Params = &[&touched, &now];
        let p6: Params = &[&settling, &leads];
        let p7: Params = &[&super::listen::CHANNEL, &changed];
        futures_util::try_join!(
            exec(tx, INSERT_STORIES, p1),
            exec(tx, &insert_sql, &inserted),
            exec(tx, &update_sql, &updated),
            exec(tx, "DELETE FROM entry_tags WHERE entry_id = ANY($1)", p2),
            exec(tx, INSERT_TAGS, p3),
            exec(tx, INSERT_ENTRY_TAGS, p4),
            exec(tx, TOUCH_STORIES, p5),
            exec(tx, SET_LEADS, p6),
            update_feed(tx, self.feed_id, feed.0, feed.1),
            exec(tx, "SELECT pg_notify($1, '') WHERE $2", p7,),
        )?;
        Ok(())
    }
}

const INSERT_STORIES: &str = "INSERT INTO stories (id, guid, created_at, updated_at)
     SELECT id, guid, $4, date
     FROM UNNEST($1::bigint[], $2::text[], $3::bigint[]) AS u(id, guid, date)";

const INSERT_TAGS: &str = "INSERT INTO tags (key, display)
     SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT (key) DO NOTHING";

const INSERT_ENTRY_TAGS: &str = "INSERT INTO entry_tags (tag, entry_id, date)
     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[])
     ON CONFLICT DO NOTHING";

/// Stories a copy joined: their updated date moves...
const TOUCH_STORIES: &str =
    "UPDATE stories SET updated_at = GREATEST(updated_at, $2) WHERE id = ANY($1)";

/// ...and their lead is the one chosen, while they settle. `= ANY($1)` lets the planner walk
/// entries_by_story_id; joined with the unnested pairs alone it scanned the table (30 ms a
/// batch at 50k entries).
const SET_LEADS: &str = "UPDATE entries e SET leads = (e.id = u.lead)
     FROM UNNEST($1::bigint[], $2::bigint[]) AS u(story, lead)
     WHERE e.story_id = ANY($1) AND e.story_id = u.story
       AND e.leads != (e.id = u.lead)";

fn insert_entries_sql() -> String {
    format!(
        "INSERT INTO entries (id, feed_id, key, guid, story_key, source_id, title, link, summary,
            content, authors, categories, enclosures, published, updated, date, first_seen,
            changed_at, content_hash, story_id, leads, signature)
         SELECT u.id, $20, u.key, u.guid, u.story_key, u.source_id, u.title, u.link, u.summary,
            u.content, u.authors, u.categories, u.enclosures, u.published, u.updated, u.date,
            $21, $21, u.content_hash, u.story_id, u.leads, u.signature
         FROM {UNNEST_ENTRIES}, $18::bigint[], $19::boolean[]) {UNNESTED_AS}, story_id, leads)
         ON CONFLICT (feed_id, key) DO NOTHING"
    )
}

fn update_entries_sql() -> String {
    format!(
        "UPDATE entries e SET story_key = u.story_key, source_id = u.source_id, title = u.title,
            link = u.link, summary = u.summary, content = u.content, authors = u.authors,
            categories = u.categories, enclosures = u.enclosures, published = u.published,
            updated = u.updated, date = u.date, changed_at = $18, content_hash = u.content_hash,
            signature = u.signature
         FROM {UNNEST_ENTRIES}) {UNNESTED_AS})
         WHERE e.id = u.id"
    )
}

/// The feed's new state; its lease ends, the feed held back until `hold_until` (see
/// `Postgres::hold_until`).
async fn update_feed(
    tx: &Transaction<'_>,
    feed_id: i64,
    batch: &FeedBatch,
    hold_until: i64,
) -> Result<(), StoreError> {
    let note = (!batch.notes.is_empty()).then(|| batch.notes.join("; "));
    exec(
        tx,
        "UPDATE feeds SET title = COALESCE($2, title), site_link = COALESCE($3, site_link),
            etag = $4, last_modified = $5, body_hash = $6, current_url = COALESCE($7, current_url),
            last_attempt = $8, last_success = $8, last_status = $9, last_error = NULL,
            consecutive_failures = 0, fingerprint = $10, last_note = $11,
            lease_until = NULL, next_poll = $12, held = $13
         WHERE id = $1",
        &[
            &feed_id,
            &batch.title,
            &batch.site_link,
            &batch.validators.etag,
            &batch.validators.last_modified,
            &batch.body_hash,
            &batch.moved_to,
            &ts(batch.now),
            &i32::from(batch.status),
            &batch.fingerprint,
            &note,
            &hold_until,
            &crate::store::Held::record(&batch.entries),
        ],
    )
    .await?;
    Ok(())
}
