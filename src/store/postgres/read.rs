//! Reads: stories for outputs, each once with every source that carried it. The same
//! selection as SQLite's (newest candidates by tag, each story once, its lead first), in a
//! few round trips per page rather than several per story: candidates, then their stories'
//! copies, tags and guids, each as one query over arrays.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Row;

use super::{Postgres, query};
use crate::model::{
    Cursor, Entry, Source, StoredEntry, Story, StoryId, StoryPage, StoryQuery, tag_key,
};
use crate::store::rows::{self, Copy, from_ts};
use crate::store::{POLLS_KEPT, PollRecord, StoreError};

const ENTRY_COLUMNS: &str = "e.id, e.guid, e.leads, e.source_id, e.title, e.link, e.summary,
    e.content, e.authors, e.categories, e.enclosures, e.published, e.updated, e.date,
    e.first_seen, e.feed_id, e.story_id, e.changed_at";

type FeedNames = HashMap<i64, (String, String, Option<String>)>;

fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("entries.{column}: {e}"))
}

fn load_row(r: &Row, feeds: &FeedNames) -> Result<(Copy, Option<i64>), StoreError> {
    let (categories, category_labels) =
        rows::categories(r.get(9)).map_err(|e| corrupt("categories", e))?;
    let entry = Entry {
        source_id: r.get(3),
        title: r.get(4),
        link: r.get(5),
        summary: r.get(6),
        content: r.get(7),
        authors: serde_json::from_str(r.get(8)).map_err(|e| corrupt("authors", e))?,
        categories,
        category_labels,
        enclosures: serde_json::from_str(r.get(10)).map_err(|e| corrupt("enclosures", e))?,
        published: r.get::<_, Option<i64>>(11).map(from_ts),
        updated: r.get::<_, Option<i64>>(12).map(from_ts),
    };
    let feed_id: i64 = r.get(15);
    let (feed_url, title, site) = feeds.get(&feed_id).cloned().unwrap_or_default();
    let source = Source {
        feed_url,
        title,
        link: entry.link.clone(),
        site,
    };
    let copy = Copy {
        stored: StoredEntry {
            id: r.get(0),
            guid: r.get(1),
            date: from_ts(r.get(13)),
            first_seen: from_ts(r.get(14)),
            entry,
            source,
            tags: Vec::new(),
        },
        leads: r.get(2),
        changed: from_ts(r.get(17)),
        feed_id,
    };
    Ok((copy, r.get(16)))
}

impl Postgres {
    /// The newest `q.limit` stories having any of `q.tags` (all when empty) and none of
    /// `q.exclude`, below `q.before`, each story once: its lead, with every other source
    /// named; and the cursor of the next page when this one is full.
    pub(in crate::store) async fn stories(&self, q: StoryQuery) -> Result<StoryPage, StoreError> {
        let client = self.client().await?;
        let include: Vec<String> = q.tags.iter().map(|t| tag_key(t)).collect();
        let exclude: HashSet<String> = q.exclude.iter().map(|t| tag_key(t)).collect();
        // Candidates are entries, several to a story: twice the stories wanted fills most
        // pages in one read, and never fewer than 50 so a small limit costs no extra round.
        let page = (q.limit * 2).max(50);
        let (spelling, feeds, dropped) = names(&client).await?;
        let mut seen = HashSet::new();
        let mut out = StoryPage::default();
        let mut offset = 0;
        loop {
            let candidates = match (&q.text, &q.feed) {
                (Some(text), _) => text_candidates(&client, text, (page, offset)).await?,
                (None, Some(feed)) => feed_candidates(&client, feed, (page, offset)).await?,
                (None, None) => candidates(&client, &include, q.before, (page, offset)).await?,
            };
            let ids: Vec<i64> = candidates.iter().map(|c| c.entry).collect();
            let refs = story_refs(&client, &ids).await?;
            let fresh: Vec<(StoryId, Cursor)> = candidates
                .iter()
                .map(|c| (refs[&c.entry], *c))
                .filter(|(r, _)| seen.insert(*r))
                .collect();
            let wanted: Vec<StoryId> = fresh.iter().map(|(r, _)| *r).collect();
            let shown = (include.as_slice(), q.before);
            let mut loaded = load_stories(&client, &wanted, (&feeds, &spelling), shown).await?;
            for (r, at) in &fresh {
                // Swept between the two queries (gone from the output as from the database),
                // or on an earlier page.
                let Some(story) = loaded.remove(r) else {
                    continue;
                };
                if !rows::selected(&story, &q, (&include, &exclude), &dropped) {
                    continue;
                }
                out.stories.push(story);
                if out.stories.len() >= q.limit {
                    out.next = (!q.narrowed()).then_some(*at);
                    rows::newest_first(&mut out.stories);
                    return Ok(out);
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
}

impl Postgres {
    /// One story by its id, with every copy and source.
    pub(in crate::store) async fn story(&self, id: StoryId) -> Result<Option<Story>, StoreError> {
        let client = self.client().await?;
        let (spelling, feeds, _) = names(&client).await?;
        let mut loaded = load_stories(&client, &[id], (&feeds, &spelling), (&[], None)).await?;
        Ok(loaded.remove(&id))
    }

    /// A feed's last polls, newest first, by its configured URL.
    pub(in crate::store) async fn recent_polls(
        &self,
        url: &str,
    ) -> Result<Vec<PollRecord>, StoreError> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT p.at, p.status, p.error, p.note FROM polls p
             WHERE p.feed_id = (SELECT id FROM feeds WHERE url = $1)
             ORDER BY p.id DESC LIMIT $2",
            &[&url, &(POLLS_KEPT as i64)],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| PollRecord {
                at: from_ts(r.get(0)),
                status: r.get::<_, Option<i32>>(1).map(|s| s as u16),
                error: r.get(2),
                note: r.get(3),
            })
            .collect())
    }

    /// Every tag with the number of stories it is on (of the feeds the config has).
    pub(in crate::store) async fn tag_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT COALESCE(t.display, et.tag), COUNT(DISTINCT COALESCE(e.story_id, -e.id))
             FROM entry_tags et JOIN entries e ON e.id = et.entry_id
             JOIN feeds f ON f.id = e.feed_id AND f.active
             LEFT JOIN tags t ON t.key = et.tag
             GROUP BY et.tag, t.display ORDER BY 2 DESC, 1",
            &[],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }
}

/// Entries newest first, below `before` if given, having any of the tag keys (or all
/// entries), as cursors: each entry's date and id.
async fn candidates(
    client: &deadpool_postgres::Client,
    include: &[String],
    before: Option<Cursor>,
    page: (usize, usize),
) -> Result<Vec<Cursor>, StoreError> {
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        include.iter().map(|t| t as _).collect();
    if let Some(c) = &before {
        params.push(&c.date);
        params.push(&c.entry);
    }
    let sql = rows::candidate_sql('$', include.len(), page, before.is_some());
    cursors(client, &sql, &params).await
}

/// Entries whose title has every word of `text`, newest first: ILIKE, each word a substring.
/// Words are letters and digits only (`search_words`): none is a LIKE wildcard.
async fn text_candidates(
    client: &deadpool_postgres::Client,
    text: &str,
    (limit, offset): (usize, usize),
) -> Result<Vec<Cursor>, StoreError> {
    let patterns: Vec<String> = rows::search_words(text)
        .iter()
        .map(|w| format!("%{w}%"))
        .collect();
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, date FROM entries WHERE title ILIKE ALL($1) \
         ORDER BY date DESC, id DESC LIMIT {limit} OFFSET {offset}"
    );
    cursors(client, &sql, &[&patterns]).await
}

/// A feed's entries (by its configured URL), newest first.
async fn feed_candidates(
    client: &deadpool_postgres::Client,
    feed: &str,
    (limit, offset): (usize, usize),
) -> Result<Vec<Cursor>, StoreError> {
    let sql = format!(
        "SELECT id, date FROM entries WHERE feed_id = (SELECT id FROM feeds WHERE url = $1) \
         ORDER BY date DESC, id DESC LIMIT {limit} OFFSET {offset}"
    );
    cursors(client, &sql, &[&feed]).await
}

/// The (entry id, date) rows a candidate query returns, as cursors.
async fn cursors(
    client: &deadpool_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Cursor>, StoreError> {
    // Not through the statement cache: the text varies with the page asked for, and the cache
    // would keep every variant for the connection's life.
    Ok(client
        .query(sql, params)
        .await
        .map_err(super::pg_err)?
        .iter()
        .map(|r| Cursor {
            entry: r.get(0),
            date: r.get(1),
        })
        .collect())
}

/// What a page of stories is told with: the tags' display spellings, the feeds' URLs and
/// titles, and the feeds the config dropped (whose stories leave the outputs).
async fn names(
    client: &deadpool_postgres::Client,
) -> Result<(HashMap<String, String>, FeedNames, HashSet<String>), StoreError> {
    let spelling: HashMap<String, String> = query(client, "SELECT key, display FROM tags", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let feeds: FeedNames = query(
        client,
        "SELECT id, url, COALESCE(title, url), site_link FROM feeds",
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
    .collect();
    let dropped: HashSet<String> = query(client, "SELECT url FROM feeds WHERE NOT active", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok((spelling, feeds, dropped))
}

/// The story each entry is in.
async fn story_refs(
    client: &deadpool_postgres::Client,
    ids: &[i64],
) -> Result<HashMap<i64, StoryId>, StoreError> {
    let rows = query(
        client,
        "SELECT id, story_id FROM entries WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let (id, story): (i64, Option<i64>) = (r.get(0), r.get(1));
            (id, story.map_or(StoryId::Entry(id), StoryId::Story))
        })
        .collect())
}

/// The tag keys of each of these entries.
async fn tags_of(
    client: &deadpool_postgres::Client,
    entries: &[i64],
) -> Result<HashMap<i64, Vec<String>>, StoreError> {
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for r in query(
        client,
        "SELECT entry_id, tag FROM entry_tags WHERE entry_id = ANY($1)",
        &[&entries],
    )
    .await?
    {
        tags.entry(r.get(0)).or_default().push(r.get(1));
    }
    Ok(tags)
}

/// Each of these stories' guid and updated date, as first published and last moved.
async fn recorded(
    client: &deadpool_postgres::Client,
    stories: &[i64],
) -> Result<HashMap<i64, (String, chrono::DateTime<chrono::Utc>)>, StoreError> {
    let rows = query(
        client,
        "SELECT id, guid, updated_at FROM stories WHERE id = ANY($1)",
        &[&stories],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), from_ts(r.get(2)))))
        .collect())
}

/// The stories `refs` name, each from its copies, less those `shown` (the query's tag keys
/// and cursor) says an earlier page had.
async fn load_stories(
    client: &deadpool_postgres::Client,
    refs: &[StoryId],
    (feeds, spelling): (&FeedNames, &HashMap<String, String>),
    (include, before): (&[String], Option<Cursor>),
) -> Result<HashMap<StoryId, Story>, StoreError> {
    let (mut story_ids, mut entry_ids) = (Vec::new(), Vec::new());
    for r in refs {
        match r {
            StoryId::Story(id) => story_ids.push(*id),
            StoryId::Entry(id) => entry_ids.push(*id),
        }
    }
    let rows = query(
        client,
        &format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e
                 WHERE e.story_id = ANY($1) OR (e.id = ANY($2) AND e.story_id IS NULL)"
        ),
        &[&story_ids, &entry_ids],
    )
    .await?;
    let mut copies: HashMap<StoryId, Vec<Copy>> = HashMap::new();
    let mut all_ids = Vec::with_capacity(rows.len());
    for r in &rows {
        let (copy, story) = load_row(r, feeds)?;
        all_ids.push(copy.stored.id);
        let key = story.map_or(StoryId::Entry(copy.stored.id), StoryId::Story);
        copies.entry(key).or_default().push(copy);
    }
    let (mut tags, mut recorded) =
        futures_util::try_join!(tags_of(client, &all_ids), recorded(client, &story_ids))?;
    let mut stories = HashMap::new();
    for (key, mut members) in copies {
        for m in &mut members {
            let keys = tags.remove(&m.stored.id).unwrap_or_default();
            m.stored.tags = rows::spelled(keys, spelling);
        }
        if rows::shown_above(&members, include, before) {
            continue;
        }
        let story_record = match key {
            StoryId::Story(id) => recorded.remove(&id),
            StoryId::Entry(_) => None,
        };
        stories.insert(key, rows::story(key, members, story_record));
    }
    Ok(stories)
}
