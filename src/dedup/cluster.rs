//! Which story an arriving entry belongs to, decided from values the store hands over: the
//! candidate stories (their copies' signatures, feeds and dates) and how common each term is
//! among recent stories. Three tiers, strongest first:
//!
//! 1. **Link**: a copy with the same canonical link (the story key). No time limit.
//! 2. **Copy**: the same headline, or a body whose SimHash is within [`COPY_BITS`] bits (wire
//!    copy, re-syndication with its own boilerplate), published within the window.
//! 3. **Story**: a rewrite of the same report. Scored against each copy of the candidate (TF-IDF
//!    cosine of headline and lead, agreement of names and of specific numbers, nearness in
//!    time) and joined above the threshold, unless vetoed: a recurring series headline, a
//!    headline number that contradicts the other's, no name in common.
//!
//! Never, by any tier: two entries of one feed in one story, a story older than `absorb`
//! taking a new copy (but by link). False merges are worse than misses (a reader never learns
//! of the story lost in another), so every weight leans to precision.

use chrono::{DateTime, Duration, Utc};

use super::signature::Aliases;
use super::vocabulary::{Profile, Vocabulary};
use crate::model::{Entry, PreparedEntry, Signature};

/// Bits in which two bodies' SimHashes may differ and still be one text with small edits:
/// Manku et al. found 3 of 64 right for near-duplicate web pages.
pub const COPY_BITS: u32 = 3;

/// Copies of a candidate story an arriving entry is scored against, at most.
const SCORED_COPIES: usize = 6;

/// Words of text a copy needs to lead its story on merit: more than a one-line teaser.
const MERIT_WORDS: u32 = 30;

/// Which tiers merge entries into one story (`[dedup] merge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The link tier only: no signature is computed and nothing is compared, so a pass costs
    /// what it did before clustering (an operator's way to turn clustering off).
    Links,
    /// Links and copies (the same headline, a body with small edits).
    Copies,
    /// Links, copies and rewrites of one report by different outlets.
    Stories,
}

impl Merge {
    /// As written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Merge::Links => "links",
            Merge::Copies => "copies",
            Merge::Stories => "stories",
        }
    }
}

/// How story clustering behaves (`[dedup]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The tiers that merge.
    pub merge: Merge,
    /// Score a rewrite needs to join a story, 0 to 1.
    pub threshold: f32,
    /// Copies published further apart than this are not compared (but by link).
    pub window: Duration,
    /// A story takes no new copy this long after it was created (but by link).
    pub absorb: Duration,
    /// For this long after a story is created its lead may be re-chosen on merit, so copies
    /// of one pass compete whatever order they were polled in; after it, the lead is fixed.
    pub settle: Duration,
    /// Stories the index holds at most; past it the oldest created are let go early (they
    /// still take copies by link). Bounds the index's memory (about 700 bytes a story) when
    /// more stories than this arrive within `absorb`, as in a first pass over thousands of
    /// feeds.
    pub max_stories: usize,
    pub aliases: Aliases,
}

impl Default for Settings {
    /// Measured on `fixtures/stories/labelled.json` (tests/suite/clustering.rs; BENCHMARKS.md):
    /// pairwise precision 0.985, B-cubed recall 0.845. Four outlets' rewrites of one report in
    /// `fixtures/stories/settlement.txt` score 0.31 to 0.47 against each other; the vetoes,
    /// not the threshold, keep the hard negatives apart (0.15 to 0.3 changes nothing there).
    fn default() -> Self {
        Settings {
            merge: Merge::Stories,
            threshold: 0.3,
            window: Duration::hours(36),
            absorb: Duration::days(3),
            settle: Duration::minutes(15),
            max_stories: 20_000,
            aliases: Aliases::default(),
        }
    }
}

impl Settings {
    /// The signature of `entry` that these settings compare. With [`Merge::Links`] only its
    /// word count (what choosing a story's lead weighs): nothing else would be compared.
    pub fn signature(&self, entry: &Entry) -> Signature {
        match self.merge {
            Merge::Links => Signature {
                words: super::signature::words(entry),
                ..Signature::default()
            },
            Merge::Copies | Merge::Stories => super::signature::signature(entry, &self.aliases),
        }
    }

    /// The signature of a prepared entry, derived now if it was not yet.
    pub fn signature_of<'e>(&self, e: &'e PreparedEntry) -> &'e Signature {
        e.signature.get_or_init(|| self.signature(&e.entry))
    }
}

/// One stored copy of a candidate story.
#[derive(Debug, Clone, Copy)]
pub struct Copy<'a> {
    pub feed: i64,
    /// The story key's [`link_key`].
    pub story_key: Option<u64>,
    pub date: DateTime<Utc>,
    pub profile: &'a Profile,
}

/// A story key (canonical link) as clustering compares it: a hash, which costs eight bytes
/// a copy where the link costs sixty.
pub fn link_key(story_key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(story_key.as_bytes())
}

/// A story the arriving entry might belong to.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub story: i64,
    pub created: DateTime<Utc>,
    pub copies: Vec<Copy<'a>>,
}

/// Why an entry joined a story.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tier {
    Link,
    Copy,
    /// With the score it reached.
    Story(f32),
}

impl Tier {
    fn rank(self) -> (u8, f32) {
        match self {
            Tier::Link => (2, 1.0),
            Tier::Copy => (1, 1.0),
            Tier::Story(s) => (0, s),
        }
    }
}

/// The story `new` (an entry of one feed, not yet stored) joins, if any, among `candidates`.
pub fn assign(
    new: &Copy,
    candidates: &[Candidate],
    vocab: &Vocabulary,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<(i64, Tier)> {
    let mut best: Option<(i64, Tier)> = None;
    for c in candidates {
        if c.copies.iter().any(|m| m.feed == new.feed) {
            continue;
        }
        let Some(tier) = tier(new, c, vocab, settings, now) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((story, held)) => {
                let (r, s) = (tier.rank(), held.rank());
                r.0 > s.0 || (r.0 == s.0 && (r.1 > s.1 || (r.1 == s.1 && c.story < story)))
            }
        };
        if better {
            best = Some((c.story, tier));
        }
    }
    best
}

fn tier(
    new: &Copy,
    c: &Candidate,
    vocab: &Vocabulary,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<Tier> {
    if new.story_key.is_some() && c.copies.iter().any(|m| m.story_key == new.story_key) {
        return Some(Tier::Link);
    }
    if now - c.created > settings.absorb {
        return None;
    }
    // In whole seconds: chrono's exact difference of two times costs more than the rest of
    // this test, and it runs for every copy of every candidate.
    let (at, window) = (new.date.timestamp(), settings.window.num_seconds());
    let near: Vec<&Copy> = c
        .copies
        .iter()
        .filter(|m| (at - m.date.timestamp()).abs() <= window)
        .collect();
    if near.iter().any(|m| copies(new.profile, m.profile)) {
        return Some(Tier::Copy);
    }
    if settings.merge != Merge::Stories || new.profile.series {
        return None;
    }
    // Scored against its first copies: a story's facts are in them, and a story carried by
    // many outlets costs no more to join than one carried by a few.
    let score = near
        .iter()
        .take(SCORED_COPIES)
        .filter(|m| !m.profile.series)
        .map(|m| {
            let apart = (at - m.date.timestamp()).abs() as f32;
            similarity(new.profile, m.profile, vocab) * (1.0 - 0.25 * apart / window.max(1) as f32)
        })
        .fold(0.0f32, f32::max);
    (score >= settings.threshold).then_some(Tier::Story(score))
}

/// One text with small edits: the same headline (not of a series, whose headlines repeat), or
/// bodies within [`COPY_BITS`].
pub fn copies(a: &Profile, b: &Profile) -> bool {
    let headline = a.title != 0 && a.title == b.title && !a.series;
    let body =
        a.simhash != 0 && b.simhash != 0 && (a.simhash ^ b.simhash).count_ones() <= COPY_BITS;
    headline || body
}

/// How alike two reports are, 0 to 1: half of it the TF-IDF cosine of their headline and lead
/// words (names left out), 0.3 the weighted overlap of the names they state, 0.2 the specific
/// numbers they share. Vetoes, each 0: no name in common; headlines stating different numbers,
/// or naming different subjects, or different assets; no shared number and words not alike
/// enough, which is two stories about one company.
pub fn similarity(a: &Profile, b: &Profile, vocab: &Vocabulary) -> f32 {
    if contradicts(a.title_numbers(), b.title_numbers())
        || disjoint(a.subjects(), b.subjects())
        || disjoint(a.topics(), b.topics())
    {
        return 0.0;
    }
    let (names, shared_names) = name_overlap(a, b, vocab);
    if shared_names == 0 {
        return 0.0;
    }
    let cosine = cosine(a, b, vocab);
    let shared_numbers = a
        .numbers()
        .iter()
        .filter(|x| specific(**x) && b.numbers().iter().any(|y| same_number(**x, *y)))
        .count()
        .min(2);
    // Names say who, not what: two reports about one company must share a fact (a number),
    // a second name, or say the same in their words.
    let evidence =
        shared_numbers > 0 || cosine >= STRONG_WORDS || (shared_names >= 2 && cosine >= SOME_WORDS);
    if !evidence {
        return 0.0;
    }
    0.5 * cosine + 0.3 * names + 0.2 * shared_numbers as f32 / 2.0
}

/// A cosine of headline and lead words above which reports sharing a name but no number can
/// be one story: they say the same thing in their words.
const STRONG_WORDS: f32 = 0.35;

/// A cosine enough beside two shared names (the exchange and the token it lists).
const SOME_WORDS: f32 = 0.15;

/// The names two reports share, weighted, over the names of the one that states fewer; and
/// how many they share.
fn name_overlap(a: &Profile, b: &Profile, vocab: &Vocabulary) -> (f32, usize) {
    let weight = |names: &[u32]| -> f32 { names.iter().map(|n| vocab.idf(*n)).sum() };
    let shared: Vec<u32> = a
        .names()
        .iter()
        .copied()
        .filter(|n| b.names().binary_search(n).is_ok())
        .collect();
    let shared_weight = weight(&shared);
    let smaller = weight(a.names()).min(weight(b.names()));
    let overlap = if smaller == 0.0 {
        0.0
    } else {
        (shared_weight / smaller).min(1.0)
    };
    (overlap, shared.len())
}

/// The TF-IDF cosine of two profiles' terms.
fn cosine(a: &Profile, b: &Profile, vocab: &Vocabulary) -> f32 {
    let norm = |p: &Profile| -> f32 {
        p.terms()
            .iter()
            .enumerate()
            .map(|(i, t)| (f32::from(p.count(i)) * vocab.idf(*t)).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    // Both are sorted by term id: a merge walk.
    let (ta, tb) = (a.terms(), b.terms());
    let (mut i, mut j, mut dot) = (0, 0, 0.0f32);
    while i < ta.len() && j < tb.len() {
        match ta[i].cmp(&tb[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                let w = vocab.idf(ta[i]);
                dot += f32::from(a.count(i)) * f32::from(b.count(j)) * w * w;
                i += 1;
                j += 1;
            }
        }
    }
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

/// A number specific enough to be evidence: an amount or count of ten or more, or a
/// percentage. "Two", "three" say little.
fn specific(x: f64) -> bool {
    !(0.0..10.0).contains(&x)
}

/// Equal within rounding: "$1.2 billion" and "$1.19 billion" are one amount.
/// Both headlines name someone (or some asset) and none in common: "Ariad files for an XRP
/// ETF" and "Pyxane files for an XRP ETF" are two filings.
fn disjoint(a: &[u32], b: &[u32]) -> bool {
    !a.is_empty() && !b.is_empty() && !a.iter().any(|x| b.binary_search(x).is_ok())
}

/// Amounts of a million or more are rounded as outlets write them; smaller numbers (counts,
/// prices, percentages) are written exactly, and 15,069 is not 15,094.
fn same_number(x: f64, y: f64) -> bool {
    let scale = x.abs().max(y.abs());
    let tolerance = if scale >= 1e6 { 0.02 * scale } else { 0.005 };
    (x < 0.0) == (y < 0.0) && (x - y).abs() <= tolerance
}

/// Both headlines state numbers and share none: "BTC rises to $67,200" and "BTC falls to
/// $65,900" are two days of one series, "$5M hack" and "$12M hack" two hacks, "to leave after
/// 6 years" and "after 4 years" two people.
fn contradicts(a: &[f64], b: &[f64]) -> bool {
    !a.is_empty() && !b.is_empty() && !a.iter().any(|x| b.iter().any(|y| same_number(*x, *y)))
}

/// What choosing a story's lead weighs of one copy.
#[derive(Debug, Clone, Copy)]
pub struct LeadFacts {
    pub entry: i64,
    pub has_link: bool,
    /// A headline of three words or more that is not an address.
    pub real_title: bool,
    pub words: u32,
    pub published: Option<DateTime<Utc>>,
    pub first_seen: DateTime<Utc>,
}

/// Whether a headline is one a reader can tell the story by.
pub fn real_title(title: &str) -> bool {
    let t = title.trim();
    t.split_whitespace().count() >= 3 && !t.starts_with("http://") && !t.starts_with("https://")
}

/// The copy that leads a story: the earliest published of those with a link, a real headline
/// and more than a teaser of text; if none has all three, the earliest published. Ties go to
/// the first seen, then the first stored. Poll order does not enter into it.
pub fn lead(copies: &[LeadFacts]) -> usize {
    let key = |c: &LeadFacts| {
        let merit = c.has_link && c.real_title && c.words >= MERIT_WORDS;
        (
            !merit,
            c.published.unwrap_or(c.first_seen).min(c.first_seen),
            c.first_seen,
            c.entry,
        )
    };
    (0..copies.len())
        .min_by_key(|&i| key(&copies[i]))
        .expect("a story has a copy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::signature::signature;
    use crate::model::Entry;
    use chrono::TimeZone;

    /// A profile in a vocabulary where every key is carried by one story of a hundred.
    fn sig(vocab: &mut Vocabulary, title: &str, body: &str) -> Profile {
        let e = Entry {
            summary: Some(body.into()),
            ..Entry::titled(title)
        };
        let p = Profile::of(&signature(&e, &Aliases::default()), vocab);
        let keys = p.keys();
        vocab.count(&keys);
        p
    }

    fn vocabulary() -> Vocabulary {
        let mut v = Vocabulary::default();
        for _ in 0..100 {
            v.count(&[]);
        }
        v
    }

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    fn story<'a>(id: i64, feed: i64, s: &'a Profile, h: i64) -> Candidate<'a> {
        Candidate {
            story: id,
            created: at(h),
            copies: vec![Copy {
                feed,
                story_key: None,
                date: at(h),
                profile: s,
            }],
        }
    }

    #[test]
    fn rewrites_of_one_report_join_and_series_do_not() {
        let mut v = vocabulary();
        let coindesk = sig(
            &mut v,
            "Binance Agrees to Pay $4.3B to Settle US Charges",
            "Binance, the world's largest crypto exchange, will pay $4.3 billion to resolve a \
             Justice Department investigation, and Changpeng Zhao will step down as CEO.",
        );
        let decrypt = sig(
            &mut v,
            "CZ steps down as Binance CEO in $4.3 billion DOJ settlement",
            "Changpeng Zhao is leaving Binance after the exchange pleaded guilty and agreed \
             to a $4.3 billion settlement with the Department of Justice.",
        );
        let settings = Settings::default();
        let new = Copy {
            feed: 2,
            story_key: None,
            date: at(2),
            profile: &decrypt,
        };
        let found = assign(&new, &[story(7, 1, &coindesk, 0)], &v, &settings, at(2));
        assert!(matches!(found, Some((7, Tier::Story(_)))), "{found:?}");
        // Never with a copy from its own feed.
        let own = assign(&new, &[story(7, 2, &coindesk, 0)], &v, &settings, at(2));
        assert_eq!(own, None);

        let monday = sig(
            &mut v,
            "Bitcoin price today: BTC rises to $67,200",
            "Bitcoin rose.",
        );
        let tuesday = sig(
            &mut v,
            "Bitcoin price today: BTC falls to $65,900",
            "Bitcoin fell.",
        );
        let new = Copy {
            feed: 2,
            story_key: None,
            date: at(24),
            profile: &tuesday,
        };
        let found = assign(&new, &[story(8, 1, &monday, 0)], &v, &settings, at(24));
        assert_eq!(found, None);
    }

    #[test]
    fn a_wire_copy_with_small_edits_and_its_own_boilerplate_is_a_copy() {
        let mut v = vocabulary();
        let sentences: Vec<String> = (0..40)
            .map(|i| format!("Sentence {i} of the wire report says what happened at hour {i}."))
            .collect();
        let original = format!("<p>{}</p>", sentences.join(" "));
        let mut edited = sentences.clone();
        edited[7] = "A sentence the second outlet rewrote in its own words.".into();
        let copy = format!(
            "<p>{}</p><p>The post Wire report appeared first on Other Outlet.</p>",
            edited.join(" ")
        );
        let a = sig(&mut v, "Wire report on the thing", &original);
        let b = sig(&mut v, "Other outlet headline entirely", &copy);
        assert!(copies(&a, &b), "{:x} {:x}", a.simhash, b.simhash);
        let other = format!(
            "<p>{}</p>",
            sentences
                .iter()
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        );
        let c = sig(
            &mut v,
            "Another report",
            &other.replace("wire report", "local news"),
        );
        assert!(!copies(&a, &c));
    }

    #[test]
    fn the_lead_is_chosen_on_merit_whatever_the_order() {
        let facts = |entry, words, published_h| LeadFacts {
            entry,
            has_link: true,
            real_title: true,
            words,
            published: Some(at(published_h)),
            first_seen: at(5),
        };
        // A one-line syndicated copy published first loses to the full report.
        let teaser = facts(1, 12, 0);
        let report = facts(2, 400, 1);
        let later = facts(3, 300, 2);
        assert_eq!(lead(&[teaser, report, later]), 1);
        assert_eq!(lead(&[later, report, teaser]), 1);
        assert_eq!(lead(&[teaser]), 0);
    }
}
