//! Signatures as clustering holds them in memory: every term, name, number and hash turned
//! into a small integer, with the count of recent stories that carry it. A profile costs a
//! few hundred bytes where its signature's strings cost kilobytes, and weighing a term is an
//! array read instead of a string hash.

use std::collections::HashMap;

use crate::model::Signature;

/// Index keys for the 16-bit bands of a SimHash: two hashes within 3 bits share a band.
const BANDS: u32 = 4;

/// Stories assumed not to carry a key, besides those counted (see [`Vocabulary::idf`]): with
/// one story indexed, every key it has would otherwise weigh nothing.
const PRIOR_STORIES: usize = 100;

/// What a story is found by: an interned id (below 2^32), or a headline hash or SimHash band
/// (flagged with [`HASHED`]), which need no interning: each names one text.
pub type Key = u64;

/// Marks a key that is a hash, not a vocabulary id.
const HASHED: Key = 1 << 63;

/// Interned keys and how many counted stories carry each. Ids of keys no story carries any
/// more are reused, so the vocabulary of a long-running process does not grow without bound.
#[derive(Debug, Default)]
pub struct Vocabulary {
    ids: HashMap<Box<str>, u32>,
    keys: Vec<Box<str>>,
    stories_with: Vec<u32>,
    free: Vec<u32>,
    stories: usize,
}

impl Vocabulary {
    /// The id of `key`, interned if new (carried by no story until counted).
    pub fn id(&mut self, key: &str) -> u32 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.keys[id as usize] = key.into();
                id
            }
            None => {
                self.keys.push(key.into());
                self.stories_with.push(0);
                (self.keys.len() - 1) as u32
            }
        };
        self.ids.insert(key.into(), id);
        id
    }

    /// Counts a story carrying `keys` (each once; hashes are not counted).
    pub fn count(&mut self, keys: &[Key]) {
        self.stories += 1;
        for k in keys.iter().filter(|k| !decisive(**k)) {
            self.stories_with[*k as usize] += 1;
        }
    }

    /// Forgets a story counted with `keys`; keys left uncarried are freed.
    pub fn uncount(&mut self, keys: &[Key]) {
        self.stories = self.stories.saturating_sub(1);
        for k in keys.iter().filter(|k| !decisive(**k)) {
            let k = *k as u32;
            let n = &mut self.stories_with[k as usize];
            *n = n.saturating_sub(1);
            if *n == 0 {
                let key = std::mem::take(&mut self.keys[k as usize]);
                self.ids.remove(&key);
                self.free.push(k);
            }
        }
    }

    /// A key counted for a story that already has its others: one more story carries it.
    pub fn count_key(&mut self, key: Key) {
        if !decisive(key) {
            self.stories_with[key as usize] += 1;
        }
    }

    pub fn stories(&self) -> usize {
        self.stories
    }

    pub fn stories_with(&self, key: u32) -> usize {
        self.stories_with[key as usize] as usize
    }

    /// How much a key tells stories apart: nothing when every story carries it. (Not the
    /// textbook's `ln(N/df) + 1`: with the +1, reports written from one common vocabulary
    /// looked alike.) [`PRIOR_STORIES`] stories without the key are assumed besides those
    /// counted, so that in a young index, where every key is rare, keys still weigh.
    pub fn idf(&self, key: u32) -> f32 {
        let n = (self.stories + PRIOR_STORIES) as f32;
        ((n + 1.0) / (self.stories_with(key) as f32 + 1.0)).ln()
    }
}

/// A signature with its keys interned; see [`Signature`] for what each part is.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub title: u64,
    pub simhash: u64,
    pub words: u32,
    /// Term ids with their counts, sorted by id.
    pub terms: Vec<(u32, u8)>,
    /// Name ids, sorted.
    pub names: Vec<u32>,
    pub numbers: Box<[f64]>,
    pub title_numbers: Box<[f64]>,
    pub series: bool,
    /// Name ids of the headline's subjects and topics, sorted.
    pub subjects: Vec<u32>,
    pub topics: Vec<u32>,
}

fn sorted_ids(names: &[String], vocab: &mut Vocabulary) -> Vec<u32> {
    let mut ids: Vec<u32> = names.iter().map(|n| vocab.id(&name_key(n))).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The key a name is counted under among terms (so names and words never collide).
fn name_key(name: &str) -> String {
    format!("@{name}")
}

impl Profile {
    pub fn of(s: &Signature, vocab: &mut Vocabulary) -> Profile {
        let mut terms: Vec<(u32, u8)> = s.terms.iter().map(|(t, w)| (vocab.id(t), *w)).collect();
        terms.sort_unstable();
        let mut names: Vec<u32> = s.entities.iter().map(|n| vocab.id(&name_key(n))).collect();
        names.sort_unstable();
        names.dedup();
        Profile {
            title: s.title,
            simhash: s.simhash,
            words: s.words,
            terms,
            names,
            numbers: s.numbers.clone().into(),
            title_numbers: s.title_numbers.clone().into(),
            series: s.series,
            subjects: sorted_ids(&s.subjects, vocab),
            topics: sorted_ids(&s.topics, vocab),
        }
    }

    /// The keys a story with this copy is found by: its terms and names, its specific
    /// numbers (`#1.2e9`), its headline hash and its SimHash bands. Sorted, each once.
    pub fn keys(&self, vocab: &mut Vocabulary) -> Vec<Key> {
        let mut keys: Vec<Key> = self.terms.iter().map(|(t, _)| Key::from(*t)).collect();
        keys.extend(self.names.iter().map(|n| Key::from(*n)));
        for n in self.numbers.iter().filter(|n| n.abs() >= 10.0 || **n < 0.0) {
            keys.push(Key::from(vocab.id(&format!("#{n:.1e}"))));
        }
        if self.title != 0 {
            keys.push(HASHED | (self.title >> 2));
        }
        if self.simhash != 0 {
            for band in 0..BANDS {
                let bits = (self.simhash >> (band * 16)) & 0xffff;
                keys.push(HASHED | 1 << 62 | Key::from(band) << 16 | bits);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// Whether a key finds copies of the same text on its own (a headline hash, a SimHash band).
pub fn decisive(key: Key) -> bool {
    key & HASHED != 0
}
