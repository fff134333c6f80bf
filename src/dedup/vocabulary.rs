//! Signatures as clustering holds them in memory: every term, name, number and hash turned
//! into a small integer, with the count of recent stories that carry it. A profile costs a
//! few hundred bytes where its signature's strings cost kilobytes, and weighing a term is an
//! array read instead of a string hash.

use std::fmt::Write;

use rustc_hash::FxHashMap as HashMap;

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
        for k in keys {
            self.uncount_key(*k);
        }
    }

    /// A story no longer carries `key` (its copy was updated); freed if no story does.
    pub fn uncount_key(&mut self, key: Key) {
        if decisive(key) {
            return;
        }
        let k = key as u32;
        let n = &mut self.stories_with[k as usize];
        *n = n.saturating_sub(1);
        if *n == 0 {
            let key = std::mem::take(&mut self.keys[k as usize]);
            self.ids.remove(&key);
            self.free.push(k);
        }
    }

    /// A key counted for a story that already has its others: one more story carries it.
    pub fn count_key(&mut self, key: Key) {
        if !decisive(key) {
            self.stories_with[key as usize] += 1;
        }
    }

    /// Keys interned and still carried.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
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
        ln_of(self.stories + PRIOR_STORIES + 1) - ln_of(self.stories_with(key) + 1)
    }
}

/// `ln(n)`, looked up for the counts most keys have: scoring a candidate weighs every term
/// of two profiles, and a logarithm costs tens of instructions where a load costs one.
fn ln_of(n: usize) -> f32 {
    const TABLE: usize = 4096;
    static LN: std::sync::OnceLock<Box<[f32]>> = std::sync::OnceLock::new();
    match LN
        .get_or_init(|| (0..TABLE).map(|i| (i as f32).ln()).collect())
        .get(n)
    {
        Some(ln) => *ln,
        None => (n as f32).ln(),
    }
}

/// A signature with its keys interned; see [`Signature`] for what each part is. Held for
/// every copy of every recent story, so it is packed: its id lists share one allocation
/// and its numbers another (a few hundred bytes where the lists apart cost twice that).
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub title: u64,
    pub simhash: u64,
    pub words: u32,
    pub series: bool,
    /// Ids, each list sorted: terms, names, the headline's subjects, its topics, the keys of
    /// specific numbers; then the terms' counts, four to a `u32`.
    ids: Box<[u32]>,
    /// Lengths of the lists in `ids`.
    lens: [u16; LISTS],
    /// The headline's numbers, then every number stated (sorted).
    numbers: Box<[f64]>,
    title_numbers: u16,
}

/// The id lists a profile packs.
const LISTS: usize = 5;
const TERMS: usize = 0;
const NAMES: usize = 1;
const SUBJECTS: usize = 2;
const TOPICS: usize = 3;
const NUMBER_KEYS: usize = 4;

/// The ids of `keys`, each written by `write` into one reused buffer and interned, sorted,
/// each once: a profile is made on the writer's thread, so its keys cost no allocation.
fn sorted_ids<T>(
    keys: impl Iterator<Item = T>,
    mut write: impl FnMut(&mut String, T),
    vocab: &mut Vocabulary,
) -> Vec<u32> {
    let mut key = String::new();
    let mut ids: Vec<u32> = keys
        .map(|k| {
            key.clear();
            write(&mut key, k);
            vocab.id(&key)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The key a name is counted under among terms (so names and words never collide).
fn name_key(key: &mut String, name: &String) {
    key.push('@');
    key.push_str(name);
}

/// A list's length as packed; no signature holds 65,535 of anything.
fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl Profile {
    pub fn of(s: &Signature, vocab: &mut Vocabulary) -> Profile {
        let mut terms: Vec<(u32, u8)> = s.terms.iter().map(|(t, w)| (vocab.id(t), *w)).collect();
        terms.sort_unstable();
        terms.truncate(usize::from(u16::MAX));
        let names = sorted_ids(s.entities.iter(), name_key, vocab);
        let subjects = sorted_ids(s.subjects.iter(), name_key, vocab);
        let topics = sorted_ids(s.topics.iter(), name_key, vocab);
        let number_keys = sorted_ids(
            s.numbers.iter().filter(|n| n.abs() >= 10.0 || **n < 0.0),
            |key, n| write!(key, "#{n:.1e}").expect("a String takes any write"),
            vocab,
        );
        let lists = [
            terms.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            names,
            subjects,
            topics,
            number_keys,
        ];
        let mut ids: Vec<u32> = Vec::with_capacity(
            lists
                .iter()
                .map(|l| l.len().min(usize::from(u16::MAX)))
                .sum::<usize>()
                + terms.len().div_ceil(4),
        );
        let mut lens = [0u16; LISTS];
        for (len, list) in lens.iter_mut().zip(&lists) {
            *len = len16(list.len());
            ids.extend_from_slice(&list[..usize::from(*len)]);
        }
        for counts in terms.chunks(4) {
            ids.push(
                counts
                    .iter()
                    .enumerate()
                    .fold(0, |packed, (i, (_, w))| packed | u32::from(*w) << (8 * i)),
            );
        }
        let title_numbers = len16(s.title_numbers.len());
        let numbers: Vec<f64> = s.title_numbers[..usize::from(title_numbers)]
            .iter()
            .chain(&s.numbers)
            .copied()
            .collect();
        Profile {
            title: s.title,
            simhash: s.simhash,
            words: s.words,
            series: s.series,
            ids: ids.into(),
            lens,
            numbers: numbers.into(),
            title_numbers,
        }
    }

    fn list(&self, which: usize) -> &[u32] {
        let start: usize = self.lens[..which].iter().map(|l| usize::from(*l)).sum();
        &self.ids[start..start + usize::from(self.lens[which])]
    }

    /// Term ids, sorted; their counts are [`Profile::count`].
    pub fn terms(&self) -> &[u32] {
        self.list(TERMS)
    }

    /// How many times the `i`th term is counted (headline words twice).
    pub fn count(&self, i: usize) -> u8 {
        let start: usize = self.lens.iter().map(|l| usize::from(*l)).sum();
        (self.ids[start + i / 4] >> (8 * (i % 4))) as u8
    }

    /// Name ids, sorted.
    pub fn names(&self) -> &[u32] {
        self.list(NAMES)
    }

    /// Name ids of the headline's subjects, sorted.
    pub fn subjects(&self) -> &[u32] {
        self.list(SUBJECTS)
    }

    /// Name ids of the headline's topics (assets, chains, tickers), sorted.
    pub fn topics(&self) -> &[u32] {
        self.list(TOPICS)
    }

    /// Every specific number stated in the headline and lead, sorted.
    pub fn numbers(&self) -> &[f64] {
        &self.numbers[usize::from(self.title_numbers)..]
    }

    /// The headline's own numbers.
    pub fn title_numbers(&self) -> &[f64] {
        &self.numbers[..usize::from(self.title_numbers)]
    }

    /// Whether `key` is one of [`Profile::keys`] (without making them).
    pub fn has_key(&self, key: Key) -> bool {
        if decisive(key) {
            return self.hashed_keys().any(|k| k == key);
        }
        let id = key as u32;
        [TERMS, NAMES, NUMBER_KEYS]
            .iter()
            .any(|list| self.list(*list).binary_search(&id).is_ok())
    }

    /// The headline hash and SimHash band keys.
    fn hashed_keys(&self) -> impl Iterator<Item = Key> + '_ {
        let title = (self.title != 0).then_some(HASHED | (self.title >> 2));
        let bands = (0..BANDS).filter(|_| self.simhash != 0).map(|band| {
            let bits = (self.simhash >> (band * 16)) & 0xffff;
            HASHED | 1 << 62 | Key::from(band) << 16 | bits
        });
        title.into_iter().chain(bands)
    }

    /// The keys a story with this copy is found by: its terms and names, its specific
    /// numbers (`#1.2e9`), its headline hash and its SimHash bands. Sorted, each once.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .terms()
            .iter()
            .chain(self.names())
            .chain(self.list(NUMBER_KEYS))
            .map(|k| Key::from(*k))
            .collect();
        keys.extend(self.hashed_keys());
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// Whether a key finds copies of the same text on its own (a headline hash, a SimHash band).
pub fn decisive(key: Key) -> bool {
    key & HASHED != 0
}
