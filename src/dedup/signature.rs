//! What story clustering compares: an entry reduced to its headline hash, a SimHash of its
//! body, the salient terms of its title and lead, the names and numbers it states, and whether
//! its headline belongs to a recurring series. Pure; computed once, where the entry is
//! prepared.

use std::borrow::Cow;
use std::sync::Arc;

use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::model::{Entry, Signature};
use crate::normalize::html_to_sentences;

/// Words of the body read as its lead: about a paragraph, where a report states its facts.
const LEAD_WORDS: usize = 60;

/// A body shorter than this many words gives no SimHash: a few words prove no copy.
const SIMHASH_MIN_WORDS: usize = 40;

/// Shingles a SimHash is made of at most: a copy is a copy from its first paragraphs, and
/// a 5000-word body would cost as much as a hundred short ones.
const SIMHASH_MAX_SHINGLES: usize = 128;

/// Bytes of a body's HTML read at most: its first few hundred words, which hold the lead and
/// the shingles. A 50 KiB article costs no more than a short one.
const BODY_BYTES: usize = 16 * 1024;

/// Bytes of a body's text compared at most: about 230 words, the lead's and the shingles'
/// (130) with room for a boilerplate sentence dropped. Each byte past them was scanned for
/// boilerplate and split into words for nothing.
const TEXT_BYTES: usize = 1536;

/// Words of a body counted at most: those the shingles take. A teaser has fewer than thirty
/// (see `cluster::lead`); counting on tells nothing more.
const COUNTED_WORDS: usize = SIMHASH_MAX_SHINGLES + 2;

/// A headline shorter than this many words gives no headline hash ("Bitcoin update").
const TITLE_HASH_MIN_WORDS: usize = 5;

/// Names for one thing, folded into one: `cz` is `changpeng zhao`, `btc` is `bitcoin`. Keys are
/// lower-case phrases of up to four words; config adds to them (`[dedup.aliases]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Aliases {
    map: HashMap<String, String>,
    /// First words of the phrases of several words, with the longest such phrase's length:
    /// only where one starts is a longer phrase looked up.
    starts: HashMap<String, usize>,
}

/// The crypto field's usual names for the same thing. Tickers that are also English words
/// (`op`, `one`, `near`) are left out: they would turn prose into names.
const BUILT_IN_ALIASES: &[(&str, &str)] = &[
    ("btc", "bitcoin"),
    ("xbt", "bitcoin"),
    ("eth", "ethereum"),
    ("ether", "ethereum"),
    ("sol", "solana"),
    ("ada", "cardano"),
    ("doge", "dogecoin"),
    ("usdt", "tether"),
    ("bnb", "bnb"),
    ("xrp", "xrp"),
    ("ripple", "xrp"),
    ("cz", "changpeng zhao"),
    ("zhao", "changpeng zhao"),
    ("changpeng", "changpeng zhao"),
    ("changpeng zhao", "changpeng zhao"),
    ("sbf", "sam bankman-fried"),
    ("bankman-fried", "sam bankman-fried"),
    ("securities and exchange commission", "sec"),
    ("commodity futures trading commission", "cftc"),
    ("department of justice", "doj"),
    ("justice department", "doj"),
    ("u.s.", "united states"),
    ("u.s", "united states"),
    ("u.k", "united kingdom"),
    ("us", "united states"),
    ("usa", "united states"),
    ("america", "united states"),
    ("u.k.", "united kingdom"),
    ("uk", "united kingdom"),
    ("britain", "united kingdom"),
    ("european union", "eu"),
    ("exchange-traded fund", "etf"),
    ("exchange-traded funds", "etf"),
    ("etfs", "etf"),
    ("microstrategy", "strategy"),
    ("coinbase global", "coinbase"),
];

/// Number words read as numbers ("four arrested" states what "4 arrested" does).
const NUMBER_WORDS: &[(&str, f64)] = &[
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("dozen", 12.0),
];

impl Default for Aliases {
    fn default() -> Self {
        Aliases::with(&[])
    }
}

impl Aliases {
    /// Every alias and what it stands for, sorted: the table as a value that compares and
    /// prints the same in every process (its maps do not).
    pub fn sorted(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = self
            .map
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.sort();
        pairs
    }

    /// The built-in table with `extra` (`(name, canonical)`) on top.
    pub fn with(extra: &[(String, String)]) -> Aliases {
        let mut map: HashMap<String, String> = BUILT_IN_ALIASES
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in extra {
            map.insert(fold(k), fold(v));
        }
        let mut starts: HashMap<String, usize> = HashMap::default();
        for k in map.keys() {
            let words: Vec<&str> = k.split(' ').collect();
            if words.len() > 1 {
                let longest = starts.entry(words[0].to_string()).or_default();
                *longest = (*longest).max(words.len());
            }
        }
        Aliases { map, starts }
    }

    fn get(&self, phrase: &str) -> Option<&str> {
        self.map.get(phrase).map(String::as_str)
    }
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Words that say nothing about which story this is. Never `sec`, `cz` or `us`: in this
/// field they name a regulator, a person and a country.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "amid",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "more",
    "most",
    "my",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "says",
    "said",
    "say",
    "according",
    "report",
    "reports",
    "reported",
    "new",
    "news",
    "may",
    "might",
    "week",
    "today",
    "yesterday",
    "day",
    "year",
    "first",
    "last",
    "latest",
    "via",
    "per",
    "one",
    "s",
    "t",
    "vs",
    "get",
    "gets",
    "set",
    "sets",
    "make",
    "makes",
    "here's",
    "it's",
    "what's",
    "amid",
    "despite",
    "within",
    "without",
    "ahead",
    "behind",
    "next",
    "back",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Words' stems, remembered per thread (and shared with the signatures that hold them): news
/// repeats its words, and a lookup costs a fraction of the Snowball algorithm. The memory is
/// cleared when it holds [`STEMS_REMEMBERED`] words.
struct Stems {
    stemmer: Stemmer,
    memory: HashMap<Box<str>, Arc<str>>,
}

impl Stems {
    /// Calls `with` on the stem of `word`.
    fn stem<R>(&mut self, word: &str, with: impl FnOnce(&Arc<str>) -> R) -> R {
        if let Some(s) = self.memory.get(word) {
            return with(s);
        }
        if self.memory.len() >= STEMS_REMEMBERED {
            self.memory.clear();
        }
        let s: Arc<str> = self.stemmer.stem(word).into();
        let r = with(&s);
        self.memory.insert(word.into(), s);
        r
    }
}

/// Calls `with` on this thread's [`Stems`]: taken once a signature, not once a word.
fn with_stems<R>(with: impl FnOnce(&mut Stems) -> R) -> R {
    thread_local! {
        static STEMS: std::cell::RefCell<Stems> = std::cell::RefCell::new(Stems {
            stemmer: Stemmer::create(Algorithm::English),
            memory: HashMap::default(),
        });
    }
    STEMS.with(|stems| with(&mut stems.borrow_mut()))
}

/// Words whose stems a thread remembers: the working vocabulary of a news stream.
const STEMS_REMEMBERED: usize = 50_000;

/// Words written as names that name no one: roles and kinds of thing ("CEO", "ETF"), and the
/// generic halves of company names ("Pay", "Capital", "Labs").
const GENERIC_NAMES: &[&str] = &[
    "ceo",
    "cfo",
    "cto",
    "coo",
    "chief",
    "etf",
    "etp",
    "ipo",
    "nft",
    "dao",
    "defi",
    "api",
    "ai",
    "usd",
    "spot",
    "crypto",
    "pay",
    "payments",
    "mining",
    "capital",
    "labs",
    "exchange",
    "markets",
    "digital",
    "holdings",
    "trust",
    "custody",
    "brokerage",
    "finance",
    "swap",
    "lend",
    "vault",
    "bridge",
    "dex",
    "yield",
    "perps",
    "network",
    "protocol",
    "chain",
    "bank",
    "group",
    "foundation",
    "fund",
    "ventures",
    "partners",
    "coin",
    "token",
    "global",
    "international",
    "technologies",
    "systems",
    "inc",
    "ltd",
    "llc",
    "corp",
    "court",
    "judge",
    "parliament",
    "lawmakers",
    "hackers",
    "developers",
    "traders",
    "board",
    "new",
    "mainnet",
];

fn generic_name(word: &str) -> bool {
    GENERIC_NAMES.contains(&word)
}

fn stop_word(word: &str) -> bool {
    static SET: std::sync::OnceLock<HashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| STOP_WORDS.iter().copied().collect())
        .contains(word)
}

/// Headlines of recurring series: the same words on a different day are a different story.
const SERIES_MARKERS: &[&str] = &[
    "price today",
    "price prediction",
    "price analysis",
    "price forecast",
    "price outlook",
    "price watch",
    "prediction:",
    "predictions for",
    "technical analysis",
    "daily",
    "weekly",
    "roundup",
    "round-up",
    "round up",
    "recap",
    "newsletter",
    "this week in",
    "week in review",
    "week ahead",
    "morning brief",
    "evening brief",
    "briefing",
    "market wrap",
    "markets wrap",
    "market update",
    "market report",
    "what happened in crypto",
    "crypto news today",
    "today in crypto",
    "top stories",
    "live updates",
    "live blog",
    "podcast",
    "episode",
    "digest",
    "chart of the day",
];

/// Whether a headline belongs to a recurring series: [`SERIES_MARKERS`] searched at once.
fn series(title: &str) -> bool {
    static FINDER: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(SERIES_MARKERS)
                .expect("fixed phrases build")
        })
        .is_match(title)
}

/// Sentences outlets append that say nothing about the story; dropped before comparing.
const BOILERPLATE: &[&str] = &[
    "appeared first on",
    "the post ",
    "read more",
    "continue reading",
    "subscribe to",
    "sign up for",
    "newsletter",
    "follow us on",
    "share this",
    "originally appeared",
    "originally published",
    "disclaimer",
    "not financial advice",
    "not investment advice",
    "click here",
    "join our",
    "telegram",
    "featured image",
    "image source",
    "photo by",
    "image by",
    "opens in new tab",
    "all rights reserved",
];

/// [`BOILERPLATE`] as one automaton: a body is searched once, not once a phrase a sentence.
fn boilerplate() -> &'static aho_corasick::AhoCorasick {
    static FINDER: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    FINDER.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(BOILERPLATE)
            .expect("fixed phrases build")
    })
}

/// One word of text as the tokenizer found it, borrowed from the text where it can be: most
/// words of prose are written in lower case already.
struct Token<'a> {
    /// As written (a typographic apostrophe made plain).
    raw: Cow<'a, str>,
    lower: Cow<'a, str>,
    /// Opened a sentence (its capital says nothing).
    opens: bool,
    /// Written after a `$`.
    dollar: bool,
    /// Written before a `%`.
    percent: bool,
}

/// The character at byte `i` of `text` (a boundary): ASCII read as a byte, the rest decoded.
fn char_at(text: &str, i: usize) -> char {
    match text.as_bytes()[i] {
        b if b.is_ascii() => char::from(b),
        _ => text[i..]
            .chars()
            .next()
            .expect("a boundary inside the text"),
    }
}

/// The first `limit` words of `text`.
fn tokens(text: &str, limit: usize) -> Vec<Token<'_>> {
    let mut out = Vec::with_capacity(limit.min(text.len() / 4));
    let mut opens = true;
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() && out.len() < limit {
        let c = char_at(text, at);
        if !c.is_alphanumeric() {
            if matches!(c, '.' | '!' | '?' | ':' | '|' | '—' | '–') {
                opens = true;
            }
            at += c.len_utf8();
            continue;
        }
        let start = at;
        let dollar = start > 0 && bytes[start - 1] == b'$';
        let mut end = start + c.len_utf8();
        while end < bytes.len() {
            let n = char_at(text, end);
            let after = end + n.len_utf8();
            // Inner dots, commas and apostrophes stay in numbers ("1,200.5") and names
            // ("U.S.", "Binance.US", "don't"); hyphens join words ("bankman-fried").
            let inner = matches!(n, '.' | ',' | '\'' | '’' | '-')
                && after < bytes.len()
                && char_at(text, after).is_alphanumeric()
                && (n != ',' || c.is_ascii_digit());
            if n.is_alphanumeric() || inner {
                end = after;
            } else {
                break;
            }
        }
        at = end;
        let word = &text[start..end];
        let raw = if word.contains('’') {
            Cow::Owned(word.replace('’', "'"))
        } else {
            Cow::Borrowed(word)
        };
        let lower = if already_lower(&raw) {
            raw.clone()
        } else {
            Cow::Owned(raw.to_lowercase())
        };
        out.push(Token {
            lower,
            raw,
            opens,
            dollar,
            percent: text[end..].starts_with('%'),
        });
        opens = false;
    }
    out
}

/// Whether `word` is its own lower case without looking it up: ASCII with no capital.
fn already_lower(word: &str) -> bool {
    word.bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
}

/// The body as compared: plain text, boilerplate sentences dropped.
fn clean_body(entry: &Entry) -> String {
    let html = entry
        .content
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .or(entry.summary.as_deref())
        .unwrap_or("");
    let mut end = html.len().min(BODY_BYTES);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    let text = html_to_sentences(&html[..end], TEXT_BYTES);
    let mut found = boilerplate().find_iter(&text).map(|m| m.start()).peekable();
    if found.peek().is_none() {
        return text;
    }
    // Sentences holding a phrase are dropped; the phrases are found in order.
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for stop in memchr::memchr3_iter(b'.', b'!', b'?', text.as_bytes())
        .map(|i| i + 1)
        .chain(std::iter::once(text.len()))
    {
        if stop <= at {
            continue;
        }
        while found.next_if(|f| *f < at).is_some() {}
        if found.next_if(|f| *f < stop).is_none() {
            out.push_str(&text[at..stop]);
        }
        at = stop;
    }
    out
}

/// Words of the entry's body as its signature counts them (boilerplate dropped, up to
/// [`COUNTED_WORDS`]), without the rest of the signature.
pub fn words(entry: &Entry) -> u32 {
    plain_words(&clean_body(entry)).take(COUNTED_WORDS).count() as u32
}

/// The runs of letters and digits of a cleaned body: the words the SimHash shingles and
/// counts.
fn plain_words(body: &str) -> impl Iterator<Item = &str> {
    body.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// The entry's signature under `aliases`.
pub fn signature(entry: &Entry, aliases: &Aliases) -> Signature {
    let body = clean_body(entry);
    let title = tokens(&entry.title, usize::MAX);
    let lead = tokens(&body, LEAD_WORDS);
    let (simhash, words) = simhash(&body);
    let (mut entities, in_title) = names(&title, &lead, aliases);
    let (topics, subjects) = headline_names(&entities[..in_title], &title, aliases);
    entities.sort();
    entities.dedup();
    // Words of names are compared as names, not again as words: a shared company name alone
    // must not make two reports look alike twice over.
    let name_words: HashSet<&str> = entities.iter().flat_map(|n| n.split(' ')).collect();
    let terms = weighted_terms(&title, &lead, aliases, &name_words);
    let title_numbers = numbers(&title);
    let mut all_numbers = title_numbers.clone();
    all_numbers.extend(numbers(&lead));
    all_numbers.sort_by(f64::total_cmp);
    all_numbers.dedup();
    Signature {
        title: title_hash(&title),
        simhash,
        words,
        terms,
        entities,
        numbers: all_numbers,
        title_numbers,
        series: series(&entry.title),
        subjects,
        topics,
    }
}

/// The names of the headline, split into topics (what kind of news: a listing, a hack) and
/// subjects (who it is about), with the headline's tickers counted as topics. Sorted, once
/// each.
fn headline_names(
    in_title: &[String],
    title: &[Token],
    aliases: &Aliases,
) -> (Vec<String>, Vec<String>) {
    let (mut topics, mut subjects): (Vec<String>, Vec<String>) = in_title
        .iter()
        .filter(|n| !SETTINGS.contains(&n.as_str()))
        .cloned()
        .partition(|n| TOPICS.contains(&n.as_str()));
    // A ticker in the headline is what the story is about: "to list FENR" and "to list YORN"
    // are two listings, whatever exchange they share.
    topics.extend(
        title
            .iter()
            .filter(|t| ticker(t) && aliases.get(&t.lower).is_none())
            .map(|t| t.lower.to_string()),
    );
    for list in [&mut topics, &mut subjects] {
        list.sort();
        list.dedup();
    }
    (topics, subjects)
}

/// The stems of the title (weight 2) and the lead (weight 1) that are not stop words,
/// numbers or words of names, each once with its summed weight, sorted by stem.
fn weighted_terms(
    title: &[Token],
    lead: &[Token],
    aliases: &Aliases,
    name_words: &HashSet<&str>,
) -> Vec<(Arc<str>, u8)> {
    // Stems are shared, so a term is found by its address; a stem remembered twice (the
    // memory was cleared meanwhile) is merged by its text below.
    let mut terms: HashMap<usize, (Arc<str>, u8)> = HashMap::default();
    with_stems(|stems| {
        let mut add_terms = |toks: &[Token], weight: u8| {
            for phrase in canonical_words(toks, aliases) {
                for word in phrase.split(' ') {
                    if word.len() < 2
                        || stop_word(word)
                        || is_number(word)
                        || name_words.contains(word)
                    {
                        continue;
                    }
                    stems.stem(word, |stem| {
                        let (_, w) = terms
                            .entry(Arc::as_ptr(stem) as *const u8 as usize)
                            .or_insert_with(|| (Arc::clone(stem), 0));
                        *w = w.saturating_add(weight);
                    });
                }
            }
        };
        add_terms(title, 2);
        add_terms(lead, 1);
    });
    let mut terms: Vec<(Arc<str>, u8)> = terms.into_values().collect();
    terms.sort_unstable();
    terms.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = kept.1.saturating_add(later.1);
        }
        same
    });
    terms
}

/// Lower-case words with aliases applied, longest phrase first (a phrase becomes its one
/// canonical form, which may hold several words).
fn canonical_words<'a>(toks: &'a [Token], aliases: &'a Aliases) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    let mut phrase = String::new();
    'words: while i < toks.len() {
        let longest = aliases.starts.get(&*toks[i].lower).copied().unwrap_or(1);
        for n in (2..=longest.min(toks.len() - i)).rev() {
            phrase.clear();
            for (k, t) in toks[i..i + n].iter().enumerate() {
                if k > 0 {
                    phrase.push(' ');
                }
                phrase.push_str(&t.lower);
            }
            if let Some(canonical) = aliases.get(&phrase) {
                out.push(canonical);
                i += n;
                continue 'words;
            }
        }
        let word = &*toks[i].lower;
        // "us" is a country only when written "US".
        let alias = aliases
            .get(word)
            .filter(|_| word != "us" || toks[i].raw == "US");
        out.push(alias.unwrap_or(word));
        i += 1;
    }
    out
}

/// Whether a headline capitalises most of its words (Title Case), so that a capital in it
/// says nothing about a name.
fn title_case(toks: &[Token]) -> bool {
    let mut words = 0;
    let mut capital = 0;
    for t in toks {
        let Some(first) = t.raw.chars().next().filter(|c| c.is_alphabetic()) else {
            continue;
        };
        words += 1;
        capital += usize::from(first.is_uppercase());
    }
    words >= 3 && capital * 10 >= words * 6
}

/// Names stated in the title and lead: runs of capitalised words that do not open a
/// sentence, words in capitals (SEC, ETF, BTC), `$TICKER`s, and any phrase the aliases know;
/// and how many of them (the first) the headline states.
fn names(title: &[Token], lead: &[Token], aliases: &Aliases) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let title_capitals = !title_case(title);
    // Words the lead capitalises are names wherever a Title Case headline puts them: "Binance"
    // opening the lead's first sentence is still a name, "Agrees" in the headline is not.
    let lead_names: HashSet<&str> = lead
        .iter()
        .filter(|t| capitalised(t))
        .map(|t| &*t.lower)
        .collect();
    let collect = |out: &mut Vec<String>,
                   toks: &[Token],
                   trust_capitals: bool,
                   lead_names: &HashSet<&str>| {
        // A run is a name ("tidewater pay"), and so is each of its words that names
        // something on its own ("Richard Teng" is found as "Teng" too; "Pay" names nothing).
        let flush = |run: &[Token], out: &mut Vec<String>| {
            if run.is_empty() {
                return;
            }
            let words = canonical_words(run, aliases);
            let kind_of_thing = words
                .iter()
                .any(|w| ROLES.contains(w) || TOPICS.contains(w) || SETTINGS.contains(w));
            if words.len() > 1 && !kind_of_thing {
                out.push(words.join(" "));
            }
            out.extend(
                words
                    .into_iter()
                    .filter(|w| !generic_name(w))
                    .map(str::to_string),
            );
        };
        let mut run_start = 0;
        for (i, t) in toks.iter().enumerate() {
            let alias = aliases.get(&t.lower).is_some() && (t.lower != "us" || t.raw == "US");
            let upper = in_capitals(&t.raw);
            let name = (capitalised(t) && !stop_word(&t.lower))
                && (trust_capitals && !t.opens || lead_names.contains(&*t.lower));
            if !(name || upper || alias || (t.dollar && !is_number(&t.lower))) {
                flush(&toks[run_start..i], out);
                run_start = i + 1;
            }
        }
        flush(&toks[run_start..], out);
    };
    collect(&mut out, title, title_capitals, &lead_names);
    out.retain(|n| n.len() >= 2);
    let in_title = out.len();
    collect(&mut out, lead, true, &HashSet::default());
    out.retain(|n| n.len() >= 2);
    (out, in_title)
}

/// Names of what many stories are about (assets, chains), not who a story is about: two
/// headlines about different ones are two stories.
const TOPICS: &[&str] = &[
    "bitcoin",
    "ethereum",
    "solana",
    "xrp",
    "cardano",
    "dogecoin",
    "tether",
    "bnb",
    "bnb chain",
    "arbitrum",
    "base",
    "polygon",
    "avalanche",
    "optimism",
    "tron",
    "litecoin",
    "usdc",
];

/// Names of the setting of much of the news (regulators, jurisdictions): neither who a story
/// is about nor a sign of another story when one outlet names the DOJ and another the US.
const SETTINGS: &[&str] = &[
    "sec",
    "cftc",
    "doj",
    "fca",
    "mas",
    "bafin",
    "asic",
    "treasury",
    "fed",
    "united states",
    "united kingdom",
    "eu",
];

/// Words that make a run of capitals a kind of thing, not a name ("XRP ETF", "Binance CEO").
const ROLES: &[&str] = &[
    "ceo", "cfo", "cto", "coo", "chief", "etf", "etp", "ipo", "nft", "dao", "spot", "usd",
    "crypto", "defi",
];

/// A word in capitals that reads as a ticker (ZPH, FENR), not a role (CEO, ETF).
fn ticker(t: &Token) -> bool {
    in_capitals(&t.raw)
        && !ROLES.contains(&&*t.lower)
        && !TOPICS.contains(&&*t.lower)
        && !SETTINGS.contains(&&*t.lower)
}

/// A word of two to six capitals and digits, with a capital: SEC, ETF, BTC, ZPH, A16Z.
fn in_capitals(raw: &str) -> bool {
    (2..=6).contains(&raw.len())
        && raw
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && raw.bytes().any(|c| c.is_ascii_uppercase())
}

fn capitalised(t: &Token) -> bool {
    let mut chars = t.raw.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.any(char::is_lowercase)
}

fn is_number(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Specific numbers stated: amounts with their scale ("$1.2 billion" is 1.2e9), percentages
/// (as negative values, so they never equal an amount), counts. Years are dates, not facts.
fn numbers(toks: &[Token]) -> Vec<f64> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let value = match NUMBER_WORDS.iter().find(|(w, _)| *w == t.lower) {
            Some((_, v)) => *v,
            None => match parse_number(&t.lower) {
                Some(v) => v,
                None => continue,
            },
        };
        let next = toks.get(i + 1).map(|n| &*n.lower).unwrap_or("");
        let (scale, marked) = match next {
            _ if t.percent => (-1.0, true),
            "thousand" | "k" => (1e3, true),
            "million" | "mln" | "m" => (1e6, true),
            "billion" | "bn" | "b" => (1e9, true),
            "trillion" | "tn" => (1e12, true),
            "percent" | "per" => (-1.0, true),
            _ => suffix_scale(&t.lower),
        };
        let year = (1990.0..=2100.0).contains(&value)
            && value.fract() == 0.0
            && !t.raw.contains(',')
            && !t.dollar
            && !marked;
        if year {
            continue;
        }
        out.push(value * scale);
    }
    out
}

/// A scale written onto the number itself: "5m", "1.2bn".
fn suffix_scale(word: &str) -> (f64, bool) {
    let letters = word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ',');
    match letters {
        "k" => (1e3, true),
        "m" | "mn" | "mln" => (1e6, true),
        "b" | "bn" => (1e9, true),
        "t" | "tn" => (1e12, true),
        _ => (1.0, false),
    }
}

fn parse_number(word: &str) -> Option<f64> {
    let digits: String = word
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    if digits.is_empty() {
        return None;
    }
    let rest = &word[word
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(word.len())..];
    if !rest.is_empty() && suffix_scale(word).0 == 1.0 {
        return None;
    }
    digits.trim_end_matches('.').parse().ok()
}

/// The headline's words, lower-case, as one hash; 0 for a headline too short to vouch.
fn title_hash(title: &[Token]) -> u64 {
    if title.len() < TITLE_HASH_MIN_WORDS {
        return 0;
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for t in title {
        h.update(t.lower.as_bytes());
        h.update(b" ");
    }
    h.digest().max(1)
}

/// SimHash (Charikar; Manku et al. 2007) of the body's word 3-shingles, 0 for a short body,
/// and the body's word count. One pass without allocating: each word is hashed once, lower-
/// cased in a small buffer, and a shingle's hash mixes its three words' hashes.
fn simhash(body: &str) -> (u64, u32) {
    // Each shingle's 64 bits are counted eight lanes at a time: lane `j` of `ones[b]` counts
    // how many shingles set bit `8 * b + j`. A lane holds 255; there are at most 128 shingles.
    const _: () = assert!(SIMHASH_MAX_SHINGLES <= 255);
    let mut ones = [0u64; 8];
    let (mut words, mut shingles) = (0u32, 0u32);
    let (mut a, mut b) = (0u64, 0u64);
    let mut buffer = String::new();
    for word in plain_words(body) {
        if words as usize >= COUNTED_WORDS {
            break;
        }
        words += 1;
        let c = if already_lower(word) {
            xxhash_rust::xxh3::xxh3_64(word.as_bytes())
        } else {
            buffer.clear();
            buffer.extend(word.chars().flat_map(char::to_lowercase));
            xxhash_rust::xxh3::xxh3_64(buffer.as_bytes())
        };
        if words >= 3 {
            shingles += 1;
            let mut shingle = [0u8; 24];
            shingle[..8].copy_from_slice(&a.to_le_bytes());
            shingle[8..16].copy_from_slice(&b.to_le_bytes());
            shingle[16..].copy_from_slice(&c.to_le_bytes());
            let bits = xxhash_rust::xxh3::xxh3_64(&shingle);
            for (byte, lanes) in ones.iter_mut().enumerate() {
                *lanes += SPREAD[(bits >> (8 * byte)) as usize & 0xff];
            }
        }
        (a, b) = (b, c);
    }
    if (words as usize) < SIMHASH_MIN_WORDS {
        return (0, words);
    }
    // A bit is set where more shingles set it than not.
    let mut hash = 0u64;
    for (byte, lanes) in ones.iter().enumerate() {
        for lane in 0..8 {
            if (lanes >> (8 * lane) & 0xff) as u32 * 2 > shingles {
                hash |= 1 << (8 * byte + lane);
            }
        }
    }
    (hash.max(1), words)
}

/// A byte's eight bits spread into the eight bytes of a word: bit `j` of `v` is byte `j` of
/// `SPREAD[v]`.
const SPREAD: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut v = 0;
    while v < 256 {
        let mut j = 0;
        while j < 8 {
            if v >> j & 1 == 1 {
                table[v] |= 1 << (8 * j);
            }
            j += 1;
        }
        v += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str, body: &str) -> Entry {
        Entry {
            summary: Some(body.into()),
            ..Entry::titled(title)
        }
    }

    #[test]
    fn names_numbers_and_aliases_are_read() {
        let s = signature(
            &entry(
                "CZ Pleads Guilty, Binance to Pay $4.3 Billion in US Settlement",
                "<p>Binance founder Changpeng Zhao pleaded guilty on Tuesday to violating \
                 U.S. anti-money-laundering laws, and the exchange agreed to pay 4.3 billion \
                 dollars. The post Binance settles appeared first on Example News.</p>",
            ),
            &Aliases::default(),
        );
        for name in ["changpeng zhao", "binance", "united states"] {
            assert!(s.entities.contains(&name.to_string()), "{name}: {s:?}");
        }
        assert!(s.numbers.contains(&4.3e9), "{:?}", s.numbers);
        assert_eq!(s.title_numbers, [4.3e9]);
        assert!(!s.series);
        assert!(
            !s.terms.iter().any(|(t, _)| t.starts_with("appear")),
            "boilerplate is dropped: {:?}",
            s.terms
        );
        assert!(
            s.terms.iter().any(|(t, _)| &**t == "guilti"),
            "{:?}",
            s.terms
        );
        assert!(
            !s.terms.iter().any(|(t, _)| t.starts_with("binanc")),
            "names are not words too: {:?}",
            s.terms
        );
    }

    #[test]
    fn series_headlines_and_years_are_told_apart() {
        let s = signature(
            &entry(
                "Bitcoin price today: BTC rises to $67,200 in 2026",
                "Four analysts expect 30 percent more, 12% say less.",
            ),
            &Aliases::default(),
        );
        assert!(s.series);
        assert_eq!(s.title_numbers, [67200.0]);
        assert!(s.numbers.contains(&4.0) && s.numbers.contains(&-30.0));
        assert!(s.numbers.contains(&-12.0), "{:?}", s.numbers);
        assert!(s.entities.contains(&"bitcoin".to_string()));
        let configured = Aliases::with(&[("Saylor".into(), "Michael Saylor".into())]);
        let s = signature(&entry("Saylor buys more", ""), &configured);
        assert!(s.entities.contains(&"michael saylor".to_string()), "{s:?}");
    }
}
