//! Stories as the SQLite backend records them: the candidate query story clustering needs,
//! answered from an index of recent stories the writer keeps in memory (SQLite has one
//! writer, so the index sees every write; a lookup in memory costs a fraction of a B-tree
//! probe, and a cold pass makes tens of thousands), and the facts the decision leaves behind
//! (a `stories` row, an entry's story id and whether it leads). Which story an entry joins
//! is `dedup::cluster`'s decision, never made here.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::db::{from_ts, ts};
use crate::dedup::cluster::{self, Candidate, Copy, LeadFacts, Settings};
use crate::dedup::vocabulary::{self, Key, Profile, Vocabulary};
use crate::model::{PreparedEntry, Signature};
use crate::store::StoreError;

/// Candidates scored per arriving entry at most: those sharing the most salient keys. A
/// report has a handful of true candidates; more only costs time.
const MAX_CANDIDATES: usize = 12;

/// A key is salient, and finds candidates, while at most this many stories carry it: every
/// story says "bitcoin", few name an exploited protocol or state its loss to the dollar. It
/// bounds the work per arriving entry to its keys times this, and what unlisting a story
/// costs per key.
const SALIENT: usize = 64;

/// One copy of an indexed story.
struct Indexed {
    feed: i64,
    story_key: Option<Box<str>>,
    date: DateTime<Utc>,
    profile: Profile,
    lead: LeadFacts,
}

struct Story {
    created: DateTime<Utc>,
    copies: Vec<Indexed>,
    /// The keys it is counted and listed under, sorted.
    keys: Vec<Key>,
}

/// Recent stories (created within `absorb`), listed by their salient keys.
pub(super) struct StoryIndex {
    pub(super) settings: Settings,
    vocab: Vocabulary,
    stories: HashMap<i64, Story>,
    /// Key to the stories carrying it, while they are at most [`SALIENT`]; past that the key
    /// is only counted (in `vocab`).
    listed: HashMap<Key, Vec<i64>>,
    /// Stories by creation, oldest first, to let go of those past `absorb`.
    created: VecDeque<(DateTime<Utc>, i64)>,
    /// Set when a write that updated the index was rolled back: reload before the next use.
    pub(super) stale: bool,
}

/// Where a new entry goes: the story it joins, or a new one.
pub(super) struct Placement {
    pub story: i64,
    pub leads: bool,
    joined: bool,
    /// The entry's profile and keys, interned while deciding.
    profile: Profile,
    keys: Vec<Key>,
}

impl StoryIndex {
    pub(super) fn new(settings: Settings) -> StoryIndex {
        StoryIndex {
            settings,
            vocab: Vocabulary::default(),
            stories: HashMap::new(),
            listed: HashMap::new(),
            created: VecDeque::new(),
            stale: true,
        }
    }

    /// Rebuilds the index from the stories created within `absorb` of `now`. Signatures are
    /// not stored (they would add a third to each row); they are derived again, as the
    /// entries were when they arrived.
    pub(super) fn load(&mut self, conn: &Connection, now: DateTime<Utc>) -> Result<(), StoreError> {
        *self = StoryIndex::new(self.settings.clone());
        let since = now - self.settings.absorb;
        let mut stmt = conn.prepare(
            "SELECT e.story_id, s.created_at, e.id, e.feed_id, e.story_key, e.summary, e.date,
                    e.link, e.title, e.published, e.first_seen, e.content
             FROM stories s JOIN entries e ON e.story_id = s.id
             WHERE s.created_at >= ?1 ORDER BY s.created_at, s.id, e.id",
        )?;
        let mut rows = stmt.query([ts(since)])?;
        while let Some(r) = rows.next()? {
            let entry = crate::model::Entry {
                link: r.get(7)?,
                summary: r.get(5)?,
                content: r.get(11)?,
                published: r.get::<_, Option<i64>>(9)?.map(from_ts),
                ..crate::model::Entry::titled(r.get::<_, String>(8)?)
            };
            let signature = crate::dedup::signature::signature(&entry, &self.settings.aliases);
            let copy = Indexed {
                feed: r.get(3)?,
                story_key: r.get::<_, Option<String>>(4)?.map(Into::into),
                date: from_ts(r.get(6)?),
                lead: LeadFacts {
                    entry: r.get(2)?,
                    has_link: entry.link.is_some(),
                    real_title: cluster::real_title(&entry.title),
                    words: signature.words,
                    published: entry.published,
                    first_seen: from_ts(r.get(10)?),
                },
                profile: Profile::of(&signature, &mut self.vocab),
            };
            let keys = copy.profile.keys(&mut self.vocab);
            self.add(r.get(0)?, from_ts(r.get(1)?), copy, keys);
        }
        self.stale = false;
        Ok(())
    }

    fn add(&mut self, story: i64, created: DateTime<Utc>, copy: Indexed, keys: Vec<Key>) {
        match self.stories.get_mut(&story) {
            Some(s) => {
                for k in keys {
                    if let Err(at) = s.keys.binary_search(&k) {
                        s.keys.insert(at, k);
                        self.vocab.count_key(k);
                        list(&mut self.listed, &self.vocab, k, story);
                    }
                }
                s.copies.push(copy);
            }
            None => {
                self.vocab.count(&keys);
                for &k in &keys {
                    list(&mut self.listed, &self.vocab, k, story);
                }
                self.created.push_back((created, story));
                self.stories.insert(
                    story,
                    Story {
                        created,
                        copies: vec![copy],
                        keys,
                    },
                );
            }
        }
    }

    /// Lets go of stories created before `absorb` ago: they take no new copy but by link,
    /// which is looked up in the database.
    fn prune(&mut self, now: DateTime<Utc>) {
        let since = now - self.settings.absorb;
        while let Some(&(created, id)) = self.created.front() {
            if created >= since {
                break;
            }
            self.created.pop_front();
            if let Some(story) = self.stories.remove(&id) {
                for k in &story.keys {
                    if let Some(l) = self.listed.get_mut(k) {
                        l.retain(|s| *s != id);
                        if l.is_empty() {
                            self.listed.remove(k);
                        }
                    }
                }
                self.vocab.uncount(&story.keys);
            }
        }
    }

    /// Stories worth scoring for a profile: those sharing a decisive key, or two salient ones.
    fn similar(&self, keys: &[Key]) -> Vec<i64> {
        let mut hits: HashMap<i64, usize> = HashMap::new();
        for key in keys {
            let Some(stories) = self.listed.get(key) else {
                continue;
            };
            let weight = if vocabulary::decisive(*key) { 2 } else { 1 };
            for story in stories {
                *hits.entry(*story).or_default() += weight;
            }
        }
        let mut found: Vec<(i64, usize)> = hits.into_iter().filter(|(_, n)| *n >= 2).collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        found.truncate(MAX_CANDIDATES);
        found.into_iter().map(|(id, _)| id).collect()
    }

    /// Decides the story of a new entry of `feed` and records it: a new story's row is
    /// written here; the entry's row is the caller's, with the placement's story and lead.
    pub(super) fn place(
        &mut self,
        conn: &Connection,
        feed: i64,
        e: &PreparedEntry,
        date: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Placement, StoreError> {
        if self.stale {
            self.load(conn, now)?;
        }
        self.prune(now);
        let profile = Profile::of(&e.signature, &mut self.vocab);
        let keys = profile.keys(&mut self.vocab);
        let by_link = linked_stories(conn, e.story_key.as_deref())?;
        let mut ids = self.similar(&keys);
        for id in by_link.keys() {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        let unknown = Profile::default();
        let candidates: Vec<Candidate> = ids
            .iter()
            .map(|id| match self.stories.get(id) {
                Some(story) => Candidate {
                    story: *id,
                    created: story.created,
                    copies: story
                        .copies
                        .iter()
                        .map(|c| Copy {
                            feed: c.feed,
                            story_key: c.story_key.as_deref(),
                            date: c.date,
                            profile: &c.profile,
                        })
                        .collect(),
                },
                // Past `absorb`: only its link can still bring it a copy.
                None => Candidate {
                    story: *id,
                    created: DateTime::UNIX_EPOCH,
                    copies: by_link[id]
                        .iter()
                        .map(|feed| Copy {
                            feed: *feed,
                            story_key: e.story_key.as_deref(),
                            date: DateTime::UNIX_EPOCH,
                            profile: &unknown,
                        })
                        .collect(),
                },
            })
            .collect();
        let new = Copy {
            feed,
            story_key: e.story_key.as_deref(),
            date,
            profile: &profile,
        };
        let decided = cluster::assign(&new, &candidates, &self.vocab, &self.settings, now);
        Ok(match decided {
            Some((story, _)) => Placement {
                story,
                leads: false,
                joined: true,
                profile,
                keys,
            },
            None => {
                conn.prepare_cached(
                    "INSERT INTO stories (guid, created_at, updated_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![e.guid, ts(now), ts(date)])?;
                Placement {
                    story: conn.last_insert_rowid(),
                    leads: true,
                    joined: false,
                    profile,
                    keys,
                }
            }
        })
    }

    /// Records the stored entry `entry` in its story: listed in the index, the story's
    /// updated date moved if it joined one, and the lead chosen again on merit while the
    /// story is settling.
    pub(super) fn placed(
        &mut self,
        conn: &Connection,
        placement: Placement,
        entry: i64,
        (feed, e, date, now): (i64, &PreparedEntry, DateTime<Utc>, DateTime<Utc>),
    ) -> Result<(), StoreError> {
        let copy = Indexed {
            feed,
            story_key: e.story_key.as_deref().map(Into::into),
            date,
            lead: LeadFacts {
                entry,
                has_link: e.entry.link.is_some(),
                real_title: cluster::real_title(&e.entry.title),
                words: e.signature.words,
                published: e.entry.published,
                first_seen: now,
            },
            profile: placement.profile,
        };
        if !placement.joined {
            self.add(placement.story, now, copy, placement.keys);
            return Ok(());
        }
        conn.prepare_cached("UPDATE stories SET updated_at = MAX(updated_at, ?2) WHERE id = ?1")?
            .execute(params![placement.story, ts(now)])?;
        let Some(created) = self.stories.get(&placement.story).map(|s| s.created) else {
            return Ok(());
        };
        self.add(placement.story, created, copy, placement.keys);
        if now - created > self.settings.settle {
            return Ok(());
        }
        let story = &self.stories[&placement.story];
        let facts: Vec<LeadFacts> = story.copies.iter().map(|c| c.lead).collect();
        let lead = facts[cluster::lead(&facts)].entry;
        conn.prepare_cached(
            "UPDATE entries SET leads = (id = ?2) WHERE story_id = ?1 AND leads != (id = ?2)",
        )?
        .execute(params![placement.story, lead])?;
        Ok(())
    }

    /// An updated entry's new signature, for the copies that come after it.
    pub(super) fn updated(&mut self, story: i64, entry: i64, signature: &Signature) {
        if !self.stories.contains_key(&story) {
            return;
        }
        let profile = Profile::of(signature, &mut self.vocab);
        let keys = profile.keys(&mut self.vocab);
        let s = self.stories.get_mut(&story).expect("looked up above");
        if let Some(c) = s.copies.iter_mut().find(|c| c.lead.entry == entry) {
            c.lead.words = profile.words;
            c.profile = profile;
            for k in keys {
                if let Err(at) = s.keys.binary_search(&k) {
                    s.keys.insert(at, k);
                    self.vocab.count_key(k);
                    list(&mut self.listed, &self.vocab, k, story);
                }
            }
        }
    }
}

/// Lists `story` under `key` while the key is salient; a key grown common is unlisted.
fn list(listed: &mut HashMap<Key, Vec<i64>>, vocab: &Vocabulary, key: Key, story: i64) {
    let carried = if vocabulary::decisive(key) {
        listed.get(&key).map_or(0, Vec::len) + 1
    } else {
        vocab.stories_with(key as u32)
    };
    if carried > SALIENT {
        listed.remove(&key);
    } else {
        listed
            .entry(key)
            .or_insert_with(|| Vec::with_capacity(1))
            .push(story);
    }
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
    index.stale = false;
    let mut after = (i64::MIN, i64::MIN);
    let mut done = 0;
    loop {
        let page = recluster_page(conn, after, settings)?;
        let Some(last) = page.last() else {
            return Ok(done);
        };
        after = (ts(last.first_seen), last.id);
        for old in &page {
            let placement = index.place(conn, old.feed, &old.prepared, old.date, old.first_seen)?;
            conn.prepare_cached("UPDATE entries SET story_id = ?2, leads = ?3 WHERE id = ?1")?
                .execute(params![old.id, placement.story, placement.leads])?;
            let facts = (old.feed, &old.prepared, old.date, old.first_seen);
            index.placed(conn, placement, old.id, facts)?;
        }
        done += page.len();
    }
}

struct Stored {
    id: i64,
    feed: i64,
    date: DateTime<Utc>,
    first_seen: DateTime<Utc>,
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
        let entry = crate::model::Entry {
            link: r.get(5)?,
            summary: r.get(6)?,
            content: r.get(7)?,
            published: r.get::<_, Option<i64>>(8)?.map(from_ts),
            ..crate::model::Entry::titled(r.get::<_, String>(4)?)
        };
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            entry,
            r.get(9)?,
            r.get(10)?,
        ))
    })?;
    let mut page = Vec::new();
    for row in rows {
        let (id, feed, guid, story_key, entry, date, first_seen): (
            i64,
            i64,
            String,
            Option<String>,
            crate::model::Entry,
            i64,
            i64,
        ) = row?;
        let signature = crate::dedup::signature::signature(&entry, &settings.aliases);
        page.push(Stored {
            id,
            feed,
            date: from_ts(date),
            first_seen: from_ts(first_seen),
            prepared: PreparedEntry {
                entry,
                key: String::new(),
                guid,
                story_key,
                content_hash: String::new(),
                tags: Vec::new(),
                signature,
            },
        });
    }
    Ok(page)
}
