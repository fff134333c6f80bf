//! Reads: stories for outputs, each once with every source that carried it.

use std::collections::{HashMap, HashSet};

use rusqlite::{OptionalExtension, Row, params_from_iter};

use super::db::Db;
use crate::model::{
    Cursor, Entry, Source, StoredEntry, Story, StoryId, StoryPage, StoryQuery, Tag, tag_key,
};
use crate::store::StoreError;
use crate::store::rows::{self, Copy, from_ts};

/// Entry columns the outputs need. Feed names come from a map loaded once per query, not a
/// JOIN: in this SQLite build a JOIN with a bound parameter is re-prepared on every execution.
const ENTRY_COLUMNS: &str =
    "e.id, e.guid, e.leads, e.source_id, e.title, e.link, e.summary, e.content,
    e.authors, e.categories, e.enclosures, e.published, e.updated, e.date, e.first_seen, e.feed_id,
    e.changed_at";

/// Feed id to (URL, title, site link): the source named for each entry.
type FeedNames = HashMap<i64, (String, String, Option<String>)>;

/// What a page of stories is told with: the display spellings of its tags and the names of its
/// feeds, each looked up the first time the page needs it. Loading every feed and every tag
/// spelling for each page was a fifth of a render's time with 1000 feeds, for the forty or so
/// a page names.
#[derive(Default)]
struct Names {
    spelling: std::cell::RefCell<HashMap<String, String>>,
    feeds: std::cell::RefCell<FeedNames>,
}

impl Names {
    /// `source`'s feed fields (URL, title, site) for the feed `feed_id`; a feed that is gone
    /// leaves them empty.
    fn name_source(&self, db: &Db, feed_id: i64, source: &mut Source) -> Result<(), StoreError> {
        let mut feeds = self.feeds.borrow_mut();
        if !feeds.contains_key(&feed_id) {
            let name = db
                .conn
                .prepare_cached(
                    "SELECT url, COALESCE(title, url), site_link FROM feeds WHERE id = ?1",
                )?
                .query_row([feed_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?
                .unwrap_or_default();
            feeds.insert(feed_id, name);
        }
        let (url, title, site) = &feeds[&feed_id];
        source.feed_url.clone_from(url);
        source.title.clone_from(title);
        source.site.clone_from(site);
        Ok(())
    }

    /// `keys` in display spelling, ordered by key.
    fn spelled(&self, db: &Db, keys: Vec<String>) -> Result<Vec<Tag>, StoreError> {
        let mut spelling = self.spelling.borrow_mut();
        for k in &keys {
            if !spelling.contains_key(k) {
                let display: Option<String> = db
                    .conn
                    .prepare_cached("SELECT display FROM tags WHERE key = ?1")?
                    .query_row([k], |r| r.get(0))
                    .optional()?;
                spelling.insert(k.clone(), display.unwrap_or_else(|| k.clone()));
            }
        }
        Ok(rows::spelled(keys, &spelling))
    }
}

fn json_col<T: serde::de::DeserializeOwned>(r: &Row, i: usize) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A copy as stored; its source's feed fields are left for [`Names::name_source`] to fill.
fn load_row(r: &Row) -> rusqlite::Result<Copy> {
    let entry = Entry {
        source_id: r.get(3)?,
        title: r.get(4)?,
        link: r.get(5)?,
        summary: r.get(6)?,
        content: r.get(7)?,
        authors: json_col(r, 8)?,
        categories: Vec::new(),
        category_labels: Vec::new(),
        enclosures: json_col(r, 10)?,
        published: r.get::<_, Option<i64>>(11)?.map(from_ts),
        updated: r.get::<_, Option<i64>>(12)?.map(from_ts),
    };
    let (categories, category_labels) = categories_col(r, 9)?;
    let entry = Entry {
        categories,
        category_labels,
        ..entry
    };
    let feed_id: i64 = r.get(15)?;
    let source = Source {
        link: entry.link.clone(),
        ..Source::default()
    };
    Ok(Copy {
        stored: StoredEntry {
            id: r.get(0)?,
            guid: r.get(1)?,
            date: from_ts(r.get(13)?),
            first_seen: from_ts(r.get(14)?),
            entry,
            source,
            tags: Vec::new(),
        },
        leads: r.get(2)?,
        changed: from_ts(r.get(16)?),
        feed_id,
    })
}

impl Db {
    /// Every stored entry with its row id, its date (as stored) and its feed's URL.
    pub fn all_entries(&self) -> Result<Vec<(i64, i64, String, Entry)>, StoreError> {
        let feeds = self.feed_names()?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e ORDER BY e.id"
        ))?;
        let rows = stmt.query_map([], |r| {
            let copy = load_row(r)?;
            let date: i64 = r.get(13)?;
            let feed_url = feeds
                .get(&copy.feed_id)
                .map(|(url, _, _)| url.clone())
                .unwrap_or_default();
            Ok((copy.stored.id, date, feed_url, copy.stored.entry))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The newest `q.limit` stories having any of `q.tags` (all when empty) and none of
    /// `q.exclude`, below `q.before`, each story once: its lead, with every other source
    /// named; and the cursor of the next page when this one is full.
    pub fn stories(&self, q: &StoryQuery) -> Result<StoryPage, StoreError> {
        let include: Vec<String> = q.tags.iter().map(|t| tag_key(t)).collect();
        let exclude: HashSet<String> = q.exclude.iter().map(|t| tag_key(t)).collect();
        // Candidates are entries, several to a story: twice the stories wanted fills most
        // pages in one read, and never fewer than 50 so a small limit costs no extra round.
        let page = (q.limit * 2).max(50);
        let names = Names::default();
        let dropped = self.dropped_feeds()?;
        let mut seen = HashSet::new();
        let mut out = StoryPage::default();
        let mut offset = 0;
        'pages: loop {
            let candidates = match (&q.text, &q.feed) {
                (Some(text), _) => self.text_candidates(text, (page, offset))?,
                (None, Some(feed)) => self.feed_candidates(feed, (page, offset))?,
                (None, None) => self.candidates(&include, q.before, (page, offset))?,
            };
            for at in &candidates {
                let story = self.story_id_of(at.entry)?;
                if !seen.insert(story) {
                    continue;
                }
                let copies = self.copies(story, at.entry, &names)?;
                if rows::shown_above(&copies, &include, q.before) {
                    continue;
                }
                let story = rows::story(story, copies, self.recorded(story)?);
                if !rows::selected(&story, q, (&include, &exclude), &dropped) {
                    continue;
                }
                out.stories.push(story);
                if out.stories.len() >= q.limit {
                    out.next = (!q.narrowed()).then_some(*at);
                    break 'pages;
                }
            }
            if candidates.len() < page {
                break;
            }
            offset += page;
        }
        rows::newest_first(&mut out.stories);
        Ok(out)
    }

    /// Entries newest first, below `before` if given, having any of the tag keys (or all
    /// entries), as cursors: each entry's date and id.
    fn candidates(
        &self,
        tags: &[String],
        before: Option<Cursor>,
        page: (usize, usize),
    ) -> Result<Vec<Cursor>, StoreError> {
        let sql = rows::candidate_sql('?', tags.len(), page, before.is_some());
        let mut params: Vec<rusqlite::types::Value> =
            tags.iter().map(|t| t.clone().into()).collect();
        if let Some(c) = before {
            params.extend([c.date.into(), c.entry.into()]);
        }
        self.cursors(&sql, params_from_iter(params))
    }

    /// Entries whose title has every word of `text` (the last as a prefix, so a search can
    /// be typed short), newest first, through the full-text index.
    fn text_candidates(&self, text: &str, page: (usize, usize)) -> Result<Vec<Cursor>, StoreError> {
        let words = rows::search_words(text);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        // Each word quoted (FTS5 syntax in a search is taken as words), the last a prefix.
        let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
        let matching = format!("{}*", quoted.join(" "));
        let (limit, offset) = page;
        let sql = format!(
            "SELECT e.id, e.date FROM entries_fts f JOIN entries e ON e.id = f.rowid \
             WHERE entries_fts MATCH ?1 ORDER BY e.date DESC, e.id DESC LIMIT {limit} OFFSET {offset}"
        );
        self.cursors(&sql, [matching])
    }

    /// A feed's entries (by its configured URL), newest first.
    fn feed_candidates(&self, feed: &str, page: (usize, usize)) -> Result<Vec<Cursor>, StoreError> {
        let (limit, offset) = page;
        let sql = format!(
            "SELECT id, date FROM entries WHERE feed_id = (SELECT id FROM feeds WHERE url = ?1) \
             ORDER BY date DESC, id DESC LIMIT {limit} OFFSET {offset}"
        );
        self.cursors(&sql, [feed.to_string()])
    }

    /// The (entry id, date) rows a candidate query returns, as cursors.
    fn cursors(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Cursor>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let found = stmt
            .query_map(params, |r| {
                Ok(Cursor {
                    entry: r.get(0)?,
                    date: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(found)
    }

    /// One story by its id, with every copy and source.
    pub fn story_by_id(&self, id: StoryId) -> Result<Option<Story>, StoreError> {
        let names = Names::default();
        let entry = match id {
            StoryId::Story(_) => 0,
            StoryId::Entry(e) => e,
        };
        let copies = self.copies(id, entry, &names)?;
        if copies.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows::story(id, copies, self.recorded(id)?)))
    }

    /// Brings the full-text index of titles up to date: the entries stored since it was last
    /// (one statement, one FTS5 flush, however many). After a delete of the newest entries an
    /// id may be used again: the mark first comes down to the highest id there is (the
    /// deleted rows left the index through their trigger).
    pub fn index_titles(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "UPDATE fts_state SET indexed = MIN(indexed, (SELECT COALESCE(MAX(id), 0) FROM entries));
             INSERT INTO entries_fts (rowid, title)
                 SELECT id, title FROM entries WHERE id > (SELECT indexed FROM fts_state);
             UPDATE fts_state SET indexed = (SELECT COALESCE(MAX(id), 0) FROM entries);",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every tag with the number of stories it is on (of the feeds the config has).
    pub fn tag_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT COALESCE(t.display, et.tag), COUNT(DISTINCT COALESCE(e.story_id, -e.id))
             FROM entry_tags et JOIN entries e ON e.id = et.entry_id
             JOIN feeds f ON f.id = e.feed_id AND f.active
             LEFT JOIN tags t ON t.key = et.tag
             GROUP BY et.tag ORDER BY 2 DESC, 1",
        )?;
        let counts = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(counts)
    }

    /// The URLs of feeds the config no longer has.
    fn dropped_feeds(&self) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT url FROM feeds WHERE active = 0")?;
        let urls = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<HashSet<String>, _>>()?;
        Ok(urls)
    }

    fn feed_names(&self) -> Result<FeedNames, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, url, COALESCE(title, url), site_link FROM feeds")?;
        let map = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?
            .collect::<Result<FeedNames, _>>()?;
        Ok(map)
    }

    /// The story of an entry; an entry stored before stories were recorded is its own.
    fn story_id_of(&self, entry_id: i64) -> Result<StoryId, StoreError> {
        let story: Option<i64> = self
            .conn
            .prepare_cached("SELECT story_id FROM entries WHERE id = ?1")?
            .query_row([entry_id], |r| r.get(0))?;
        Ok(story.map_or(StoryId::Entry(entry_id), StoryId::Story))
    }

    /// A story's guid and updated date as recorded; `None` for an entry stored before
    /// stories were, which is its own story.
    fn recorded(
        &self,
        story: StoryId,
    ) -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>, StoreError> {
        Ok(match story {
            StoryId::Story(id) => Some(
                self.conn
                    .prepare_cached("SELECT guid, updated_at FROM stories WHERE id = ?1")?
                    .query_row([id], |r| Ok((r.get(0)?, from_ts(r.get(1)?))))?,
            ),
            StoryId::Entry(_) => None,
        })
    }

    /// Every copy of a story, each with its tags.
    fn copies(
        &self,
        story: StoryId,
        entry_id: i64,
        names: &Names,
    ) -> Result<Vec<Copy>, StoreError> {
        let (sql, id) = match story {
            StoryId::Story(id) => (
                format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.story_id = ?1"),
                id,
            ),
            StoryId::Entry(_) => (
                format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = ?1"),
                entry_id,
            ),
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut copies = stmt
            .query_map([id], load_row)?
            .collect::<Result<Vec<_>, _>>()?;
        for m in &mut copies {
            names.name_source(self, m.feed_id, &mut m.stored.source)?;
            m.stored.tags = self.tags_of(m.stored.id, names)?;
        }
        Ok(copies)
    }

    /// An entry's tags in display spelling, ordered by key. The spelling is looked up apart:
    /// joining `tags` in SQL made SQLite re-prepare the statement on every execution.
    fn tags_of(&self, entry_id: i64, names: &Names) -> Result<Vec<Tag>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tag FROM entry_tags WHERE entry_id = ?1")?;
        let keys = stmt
            .query_map([entry_id], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        names.spelled(self, keys)
    }

    /// Entries stored, for summaries and tests.
    pub fn entry_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}

/// The categories column: terms, with `[term, label]` where the source labelled one.
fn categories_col(r: &Row, i: usize) -> rusqlite::Result<rows::Categories> {
    let text: String = r.get(i)?;
    rows::categories(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}
