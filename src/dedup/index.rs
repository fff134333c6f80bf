//! Recent stories held in memory, listed by their salient keys, so that an arriving entry's
//! candidate stories are found without a query: a lookup in memory costs a fraction of a
//! B-tree probe, and a cold pass makes tens of thousands. A backend keeps one beside its
//! writer, feeds it the stories it stores (or reads back), and asks it where a new entry goes;
//! it records the answer. No SQL here: what a story id or an entry id is, is the backend's.

use std::collections::{HashMap, VecDeque};

use rustc_hash::FxHashMap;

use chrono::{DateTime, Utc};

use super::cluster::{self, Candidate, Copy, LeadFacts, Merge, Settings, link_key};
use super::stored::{self, Facts};
use super::vocabulary::{self, Key, Profile, Vocabulary};
use crate::model::{Entry, PreparedEntry, Signature};

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
    /// The [`link_key`] of its story key.
    story_key: Option<u64>,
    date: DateTime<Utc>,
    profile: Profile,
    lead: LeadFacts,
}

struct Story {
    created: DateTime<Utc>,
    copies: Vec<Indexed>,
}

impl Story {
    /// The keys it is counted and listed under, sorted: its copies' keys. Worked out when
    /// they change, not held: they would cost a third of the index.
    fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.copies.iter().flat_map(|c| c.profile.keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// The stories listed under one key: most keys (a headline hash, a SimHash band) name one.
enum Postings {
    One(i64),
    Many(Vec<i64>),
}

impl Postings {
    fn push(&mut self, story: i64) {
        match self {
            Postings::One(first) => *self = Postings::Many(vec![*first, story]),
            Postings::Many(ids) => ids.push(story),
        }
    }

    fn as_slice(&self) -> &[i64] {
        match self {
            Postings::One(id) => std::slice::from_ref(id),
            Postings::Many(ids) => ids,
        }
    }
}

/// Recent stories (created within `absorb`), listed by their salient keys.
pub struct StoryIndex {
    settings: Settings,
    vocab: Vocabulary,
    stories: FxHashMap<i64, Story>,
    /// Key to the stories carrying it, while they are at most [`SALIENT`]; past that the key
    /// is only counted (in `vocab`).
    listed: FxHashMap<Key, Postings>,
    /// Stories by creation, oldest first, to let go of those past `absorb`.
    created: VecDeque<(DateTime<Utc>, i64)>,
    /// Set when a write the index learned of was rolled back: the backend reloads it.
    stale: bool,
    /// The epoch of the signatures it stores and reads (see `stored`); none when only links
    /// merge, whose signature is a word count, cheaper to count again than to store.
    epoch: Option<[u8; 4]>,
}

/// How much an index holds (see [`StoryIndex::size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSize {
    pub stories: usize,
    pub copies: usize,
    /// Keys listed (salient ones), and the stories listed under them, summed.
    pub keys: usize,
    pub postings: usize,
    /// Keys interned.
    pub vocabulary: usize,
}

/// A stored copy of a recent story, as a backend reads it back to fill the index.
pub struct StoredCopy {
    pub story: i64,
    pub story_created: DateTime<Utc>,
    pub entry: i64,
    pub feed: i64,
    /// May be left out, with the title and link, when `signature` is of the index's epoch:
    /// its record holds what the index weighs of them.
    pub story_key: Option<String>,
    pub date: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    /// Title, link, summary, content and published date: what its signature is derived
    /// from. All but the published date may be left out when `signature` is of the index's
    /// epoch.
    pub text: Entry,
    /// Its signature as stored beside it (see [`StoryIndex::stored`]), if any.
    pub signature: Option<Vec<u8>>,
}

/// Where a new entry goes: the story it joins, or a new one (whose id the backend makes).
pub struct Placement {
    /// The story joined; `None`: the entry starts a story, and leads it.
    pub joins: Option<i64>,
    /// The entry's profile and keys, interned while deciding.
    profile: Profile,
    keys: Vec<Key>,
}

/// What a placed entry changes in its story, for the backend to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// It started the story.
    Started,
    /// It joined: the story's updated date moves, and while the story settles its lead is
    /// chosen again (`Some(entry)`: the lead changed, this entry leads now; `None`: the lead
    /// stays, because the story has settled or the one leading is still the best).
    Joined { lead: Option<i64> },
}

/// What a new entry is placed as: the values `cluster` weighs of it.
pub struct Arrival<'a> {
    pub feed: i64,
    pub entry: &'a PreparedEntry,
    pub date: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What the index weighs of a copy beside its signature, from its story key and text.
fn facts(story_key: Option<&str>, text: &Entry) -> Facts {
    Facts {
        link_key: story_key.map(link_key),
        has_link: text.link.is_some(),
        real_title: cluster::real_title(&text.title),
    }
}

impl StoryIndex {
    /// An empty index, stale until the backend loads it.
    pub fn new(settings: Settings) -> StoryIndex {
        let epoch = (settings.merge != Merge::Links).then(|| stored::epoch(&settings.aliases));
        StoryIndex {
            epoch,
            settings,
            vocab: Vocabulary::default(),
            stories: FxHashMap::default(),
            listed: FxHashMap::default(),
            created: VecDeque::new(),
            stale: true,
        }
    }

    /// What the index holds: stories, their copies, the keys listed and their postings.
    pub fn size(&self) -> IndexSize {
        IndexSize {
            stories: self.stories.len(),
            copies: self.stories.values().map(|s| s.copies.len()).sum(),
            keys: self.listed.len(),
            postings: self.listed.values().map(|p| p.as_slice().len()).sum(),
            vocabulary: self.vocab.len(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the backend must reload the index before the next placement.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// A write the index learned of was rolled back.
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Empties the index for a reload from `copies`: every copy of the stories created
    /// within `absorb` of now, oldest story first.
    pub fn reload(&mut self, copies: impl IntoIterator<Item = StoredCopy>) {
        *self = StoryIndex::new(self.settings.clone());
        for c in copies {
            // A reload from another instance's rows stores nothing back: see `learn`.
            let _ = self.learn(c);
        }
        self.stale = false;
    }

    /// A reload by [`StoryIndex::learn`] is complete.
    pub fn reload_done(&mut self) {
        self.stale = false;
    }

    /// Since when a reload must read stories back.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.settings.absorb
    }

    /// The epoch of the signatures this index stores and can read back: a backend that finds
    /// a stored signature of it needs not read the entry's summary and content.
    pub fn epoch(&self) -> Option<[u8; 4]> {
        self.epoch
    }

    /// What to store beside `e` (its signature and the facts the index weighs of it), for
    /// a later [`StoryIndex::learn`]; derives its signature if it was not yet.
    pub fn stored(&self, e: &PreparedEntry) -> Option<Vec<u8>> {
        let epoch = self.epoch?;
        let facts = facts(e.story_key.as_deref(), &e.entry);
        Some(stored::record(self.settings.signature_of(e), facts, epoch))
    }

    /// Adds a copy stored by another writer (or read back at a reload), with its stored
    /// signature when that is of this index's epoch; else the signature is derived again
    /// from its text, as the entry's was when it arrived, and returned as it should be
    /// stored, for the backend to write back (a program or alias table changed since).
    pub fn learn(&mut self, c: StoredCopy) -> Option<Vec<u8>> {
        let epoch = self.epoch;
        let kept = epoch.zip(c.signature.as_deref());
        let (signature, facts, derived) = match kept.and_then(|(e, bytes)| stored::read(bytes, e)) {
            Some((s, facts)) => (s, facts, false),
            // Bytes of this epoch that do not read are damage: the text they stood for was
            // not read with them, so what is derived from the rest is not stored.
            None => (
                self.settings.signature(&c.text),
                facts(c.story_key.as_deref(), &c.text),
                kept.is_none_or(|(e, bytes)| !bytes.starts_with(&e)),
            ),
        };
        let again = derived
            .then(|| epoch.map(|e| stored::record(&signature, facts, e)))
            .flatten();
        let copy = Indexed {
            feed: c.feed,
            story_key: facts.link_key,
            date: c.date,
            lead: LeadFacts {
                entry: c.entry,
                has_link: facts.has_link,
                real_title: facts.real_title,
                words: signature.words,
                published: c.text.published,
                first_seen: c.first_seen,
            },
            profile: Profile::of(&signature, &mut self.vocab),
        };
        let keys = copy.profile.keys();
        self.add(c.story, c.story_created, copy, keys);
        again
    }

    fn add(&mut self, story: i64, created: DateTime<Utc>, copy: Indexed, keys: Vec<Key>) {
        match self.stories.get_mut(&story) {
            Some(s) => {
                if s.copies.iter().any(|c| c.lead.entry == copy.lead.entry) {
                    return;
                }
                for k in keys {
                    if !s.copies.iter().any(|c| c.profile.has_key(k)) {
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
                    },
                );
                // Past `max_stories`, the oldest go early, as past `absorb`.
                while self.stories.len() > self.settings.max_stories {
                    let Some((_, oldest)) = self.created.pop_front() else {
                        break;
                    };
                    self.forget(oldest);
                }
            }
        }
    }

    /// Lets go of stories created before `absorb` ago: they take no new copy but by link,
    /// which the backend looks up.
    fn prune(&mut self, now: DateTime<Utc>) {
        let since = self.since(now);
        while let Some(&(created, id)) = self.created.front() {
            if created >= since {
                break;
            }
            self.created.pop_front();
            self.forget(id);
        }
    }

    fn forget(&mut self, id: i64) {
        if let Some(story) = self.stories.remove(&id) {
            let keys = story.keys();
            for k in &keys {
                unlist(&mut self.listed, *k, id);
            }
            self.vocab.uncount(&keys);
        }
    }

    /// Stories worth scoring for a profile: those sharing a decisive key, or two salient ones.
    fn similar(&self, keys: &[Key]) -> Vec<i64> {
        let mut hits: FxHashMap<i64, usize> = FxHashMap::default();
        for key in keys {
            let Some(stories) = self.listed.get(key) else {
                continue;
            };
            let weight = if vocabulary::decisive(*key) { 2 } else { 1 };
            for story in stories.as_slice() {
                *hits.entry(*story).or_default() += weight;
            }
        }
        let mut found: Vec<(i64, usize)> = hits.into_iter().filter(|(_, n)| *n >= 2).collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        found.truncate(MAX_CANDIDATES);
        found.into_iter().map(|(id, _)| id).collect()
    }

    /// Decides the story of a new entry. `by_link` is what the backend found of stories with
    /// a copy linking where this entry does (story id to the feeds of those copies): stories
    /// past `absorb` can still take a copy that way.
    pub fn place(&mut self, new: &Arrival, by_link: &HashMap<i64, Vec<i64>>) -> Placement {
        self.prune(new.now);
        let e = new.entry;
        let profile = Profile::of(self.settings.signature_of(e), &mut self.vocab);
        let keys = profile.keys();
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
                            story_key: c.story_key,
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
                            story_key: e.story_key.as_deref().map(link_key),
                            date: DateTime::UNIX_EPOCH,
                            profile: &unknown,
                        })
                        .collect(),
                },
            })
            .collect();
        let copy = Copy {
            feed: new.feed,
            story_key: e.story_key.as_deref().map(link_key),
            date: new.date,
            profile: &profile,
        };
        let decided = cluster::assign(&copy, &candidates, &self.vocab, &self.settings, new.now);
        Placement {
            joins: decided.map(|(story, _)| story),
            profile,
            keys,
        }
    }

    /// Records the stored entry `entry` in `story` (the one it joined, or the one the backend
    /// made for it), and says what changes in the story.
    pub fn placed(
        &mut self,
        placement: Placement,
        story: i64,
        entry: i64,
        new: &Arrival,
    ) -> Placed {
        let e = new.entry;
        let facts = facts(e.story_key.as_deref(), &e.entry);
        let copy = Indexed {
            feed: new.feed,
            story_key: facts.link_key,
            date: new.date,
            lead: LeadFacts {
                entry,
                has_link: facts.has_link,
                real_title: facts.real_title,
                words: self.settings.signature_of(e).words,
                published: e.entry.published,
                first_seen: new.now,
            },
            profile: placement.profile,
        };
        if placement.joins.is_none() {
            self.add(story, new.now, copy, placement.keys);
            return Placed::Started;
        }
        let Some(created) = self.stories.get(&story).map(|s| s.created) else {
            return Placed::Joined { lead: None };
        };
        self.add(story, created, copy, placement.keys);
        if new.now - created > self.settings.settle {
            return Placed::Joined { lead: None };
        }
        let facts: Vec<LeadFacts> = self.stories[&story].copies.iter().map(|c| c.lead).collect();
        if facts.last().is_none_or(|c| c.entry != entry) || facts.len() < 2 {
            return Placed::Joined { lead: None };
        }
        let (before, now) = (
            cluster::lead(&facts[..facts.len() - 1]),
            cluster::lead(&facts),
        );
        // Unchanged, the stored lead is left alone: rewriting it costs a seek to every row of
        // the story, and a cold pass joins thousands of copies.
        Placed::Joined {
            lead: (facts[before].entry != facts[now].entry).then_some(facts[now].entry),
        }
    }

    /// An updated entry's new signature, for the copies that come after it. The story is
    /// counted and listed under its keys as they are now.
    pub fn updated(&mut self, story: i64, entry: i64, signature: &Signature) {
        if !self.stories.contains_key(&story) {
            return;
        }
        let profile = Profile::of(signature, &mut self.vocab);
        let s = self.stories.get_mut(&story).expect("looked up above");
        let Some(at) = s.copies.iter().position(|c| c.lead.entry == entry) else {
            return;
        };
        let had = s.keys();
        let copy = &mut s.copies[at];
        copy.lead.words = profile.words;
        copy.profile = profile;
        let has = s.keys();
        for k in had.iter().filter(|k| has.binary_search(k).is_err()) {
            unlist(&mut self.listed, *k, story);
            self.vocab.uncount_key(*k);
        }
        for k in has.iter().filter(|k| had.binary_search(k).is_err()) {
            self.vocab.count_key(*k);
            list(&mut self.listed, &self.vocab, *k, story);
        }
    }
}

/// Lists `story` under `key` while the key is salient; a key grown common is unlisted.
fn list(listed: &mut FxHashMap<Key, Postings>, vocab: &Vocabulary, key: Key, story: i64) {
    let carried = if vocabulary::decisive(key) {
        listed.get(&key).map_or(0, |p| p.as_slice().len()) + 1
    } else {
        vocab.stories_with(key as u32)
    };
    if carried > SALIENT {
        listed.remove(&key);
        return;
    }
    listed
        .entry(key)
        .and_modify(|p| p.push(story))
        .or_insert(Postings::One(story));
}

/// Takes `story` off the list of `key`.
fn unlist(listed: &mut FxHashMap<Key, Postings>, key: Key, story: i64) {
    let empty = match listed.get_mut(&key) {
        None => return,
        Some(Postings::One(id)) => *id == story,
        Some(Postings::Many(ids)) => {
            ids.retain(|s| *s != story);
            ids.is_empty()
        }
    };
    if empty {
        listed.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::prepare;
    use chrono::TimeZone;

    fn arrival_of(feed_url: &str, title: &str, link: &str, body: &str) -> PreparedEntry {
        let e = Entry {
            link: Some(link.into()),
            content: Some(body.into()),
            ..Entry::titled(title)
        };
        prepare(feed_url, e, Vec::new(), &Settings::default())
    }

    /// What a backend does with an index: place, make the story if new, record.
    fn store(index: &mut StoryIndex, feed: i64, entry: i64, e: &PreparedEntry) -> (i64, Placed) {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let new = Arrival {
            feed,
            entry: e,
            date: now,
            now,
        };
        let placement = index.place(&new, &HashMap::new());
        let story = placement.joins.unwrap_or(entry * 100);
        (story, index.placed(placement, story, entry, &new))
    }

    #[test]
    fn a_copy_joins_and_the_better_copy_leads_while_the_story_settles() {
        let mut index = StoryIndex::new(Settings::default());
        index.reload([]);
        let teaser = arrival_of(
            "https://a/feed",
            "Exchange X halts withdrawals",
            "https://x/1",
            "Short.",
        );
        let body = "Exchange X halted withdrawals on Tuesday after a $40 million exploit of its hot wallet, \
                    the company said, adding that customer funds were safe and that trading would resume \
                    once an audit by two outside firms was complete, which it expects within the week.";
        let full = arrival_of(
            "https://b/feed",
            "Exchange X halts withdrawals",
            "https://x/1",
            body,
        );
        let (first, placed) = store(&mut index, 1, 1, &teaser);
        assert_eq!(placed, Placed::Started);
        let (second, placed) = store(&mut index, 2, 2, &full);
        assert_eq!(second, first, "same link, another feed: one story");
        assert_eq!(
            placed,
            Placed::Joined { lead: Some(2) },
            "the copy with text leads"
        );
        let again = arrival_of(
            "https://a/feed",
            "Exchange X halts withdrawals",
            "https://x/1",
            body,
        );
        let (third, _) = store(&mut index, 1, 3, &again);
        assert_ne!(third, first, "never two entries of one feed in one story");
        let another_teaser = arrival_of(
            "https://c/feed",
            "Exchange X halts withdrawals",
            "https://x/1",
            "Short.",
        );
        let (fourth, placed) = store(&mut index, 3, 4, &another_teaser);
        assert_eq!(fourth, first);
        assert_eq!(
            placed,
            Placed::Joined { lead: None },
            "a copy that does not lead leaves the lead as it is"
        );
    }

    #[test]
    fn past_max_stories_the_oldest_are_let_go_and_take_no_copy_but_by_link() {
        let mut index = StoryIndex::new(Settings {
            max_stories: 3,
            ..Settings::default()
        });
        index.reload([]);
        let headlines = [
            "Exchange X halts withdrawals after exploit",
            "Regulator fines lender Y over disclosures",
            "Protocol Z votes to cut staking rewards",
            "Miner W buys 2,000 rigs in Texas expansion",
            "Bank V opens custody desk for tokenized bonds",
        ];
        let mut stories = Vec::new();
        for (i, title) in headlines.iter().enumerate() {
            let e = arrival_of("https://a/feed", title, &format!("https://a/{i}"), "Short.");
            let (story, placed) = store(&mut index, 1, i as i64 + 1, &e);
            assert_eq!(placed, Placed::Started, "{title}");
            stories.push(story);
        }
        assert_eq!(index.size().stories, 3, "{:?}", index.size());
        let copy = |i: usize| {
            arrival_of(
                "https://b/feed",
                headlines[i],
                &format!("https://b/{i}"),
                "Short.",
            )
        };
        let (newest, _) = store(&mut index, 2, 10, &copy(4));
        assert_eq!(newest, stories[4], "a story still held takes its copy");
        let (oldest, placed) = store(&mut index, 2, 11, &copy(0));
        assert_eq!(placed, Placed::Started, "the oldest was let go");
        assert_ne!(oldest, stories[0]);
        assert_eq!(index.size().stories, 3);
    }
}
