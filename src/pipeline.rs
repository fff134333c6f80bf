//! `refresh_feed`: fetch, parse, tag, dedup and store one feed. The one orchestrator every
//! trigger calls (`--once`, the daemon's scheduler). It decides nothing about *when*.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::{Config, FeedConfig};
use crate::dedup::cluster::Merge;
use crate::fetch::{FetchError, Fetched, Fetcher, Response};
use crate::model::Validators;
use crate::parse::ParseError;
use crate::store::{
    BatchCounts, Claim, Failure, FeedBatch, Held, Poll, Started, Store, StoreError, Unchanged,
};
use crate::tag::TagRules;
use crate::{dedup, parse};

/// What every stage call needs: the store, the HTTP client, the settings in force, and the
/// gates that bound work in flight.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub fetcher: Arc<Fetcher>,
    pub config: Arc<Config>,
    pub gates: Arc<Gates>,
}

/// Bounds on work in flight, shared by every trigger of `refresh_feed`.
pub struct Gates {
    /// Feeds being refreshed at once, fetch to store (`fetch.concurrency`): bounds sockets and
    /// the bodies held in memory. Without it a pass fetched far faster than it parsed and held
    /// hundreds of bodies at once (200 MiB for 1000 feeds).
    inflight: Semaphore,
    /// Feeds being parsed at once: one per core; more only adds memory and context switches.
    cpu: Semaphore,
    /// Parsed batches waiting for the store. A feed leaves `inflight` once its batch is
    /// queued, so fetching goes on while the store writes, and the store finds many batches
    /// to commit together.
    queued: Semaphore,
    /// The same batches by size: KiB of the bodies they were parsed from, at most
    /// [`QUEUED_KIB`]. The count alone let a corpus of long feeds hold 96 batches of up to
    /// 300 entries each (149 MiB peak for 1000 feeds of bench/gen_varied.py).
    queued_kib: Semaphore,
}

/// KiB of fetched bodies whose parsed batches may wait for the store at once (see
/// [`Gates::queued_kib`]): 85 feeds of 96 KiB, or a few of a megabyte. A body larger than this
/// waits for the whole allowance.
const QUEUED_KIB: u32 = 8 * 1024;

impl Gates {
    /// `queued`: how many parsed batches may wait for the store at once
    /// (`Store::queue_depth`). Each is a feed's prepared entries, a few hundred KiB at most
    /// under the default limits.
    pub fn new(concurrency: usize, queued: usize) -> Arc<Gates> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Arc::new(Gates {
            inflight: Semaphore::new(concurrency),
            cpu: Semaphore::new(cores),
            queued: Semaphore::new(queued),
            queued_kib: Semaphore::new(QUEUED_KIB as usize),
        })
    }
}

/// A feed's poll that went through. Not-modified is an outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered 304.
    NotModified,
    /// The body was byte-identical to the last one processed: nothing parsed.
    Unchanged,
    Stored(BatchCounts),
    /// Another instance sharing the database is polling the feed, or has and set its next
    /// poll (`until`): nothing fetched here.
    Elsewhere {
        until: Option<DateTime<Utc>>,
    },
}

impl Outcome {
    /// The outcome's name in metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::NotModified => "not_modified",
            Outcome::Unchanged => "unchanged",
            Outcome::Stored(_) => "stored",
            Outcome::Elsewhere { .. } => "elsewhere",
        }
    }
}

/// What a successful poll learned that the scheduler may use.
#[derive(Debug, Clone)]
pub struct Polled {
    pub outcome: Outcome,
    /// The server's answer; `None` when the poll was another instance's.
    pub response: Option<Response>,
    /// What the feed's reader should know though nothing failed (a limit applied).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RefreshError {
    pub fn status(&self) -> Option<u16> {
        match self {
            RefreshError::Fetch(e) => e.status(),
            _ => None,
        }
    }
}

/// Records `config` in the store, at startup and on every reload: its feeds, its tag
/// spellings, and its fingerprint, warning of any instance sharing the database that runs a
/// different config (they would fight over what is stored and shown).
pub async fn record_config(store: &Store, config: &Config) -> Result<(), StoreError> {
    let others = store
        .configure(crate::store::Configured {
            feeds: config.feed_urls(),
            tag_spellings: config.tag_spellings(),
            fingerprint: config.shared_fingerprint(),
        })
        .await?;
    for other in others {
        tracing::warn!(
            instance = %other.instance,
            seen = %other.seen.to_rfc3339(),
            "another instance on this database runs a different config (feeds, tags, [dedup] or outputs differ): give every instance the same config"
        );
    }
    Ok(())
}

/// Polls one feed and stores what changed. A failure is recorded in the feed's status and
/// returned; nothing already stored is touched by it.
pub async fn refresh_feed(
    ctx: &Context,
    feed: &FeedConfig,
    claim: Claim,
) -> Result<Polled, RefreshError> {
    let slot = ctx
        .gates
        .inflight
        .acquire()
        .await
        .expect("the gate is never closed");
    let poll = match ctx.store.start_poll(feed.url.as_str(), claim).await? {
        Started::Poll(poll) => poll,
        Started::Elsewhere { until } => {
            return Ok(Polled {
                outcome: Outcome::Elsewhere { until },
                response: None,
                notes: Vec::new(),
            });
        }
    };
    let result = fetch_and_store(ctx, feed, &poll, slot).await;
    if let Err(e) = &result {
        let failure = Failure {
            status: e.status(),
            error: e.to_string(),
            now: Utc::now(),
        };
        // The feed's error is what matters to the caller; a failure to record it is logged.
        if let Err(store_err) = ctx.store.record_failure(&poll, failure).await {
            tracing::error!(feed = %feed.url, error = %store_err, "cannot record the feed's failure");
        }
    }
    result
}

/// What to ask the server for: where the feed is now, with the validators of the last body
/// processed, unless the settings that shaped it changed since (then a full fetch, so that the
/// entries are processed again).
struct Request {
    target: Url,
    validators: Validators,
    fingerprint: String,
    /// The stored validators and body hash were recorded under these settings.
    trusted: bool,
}

impl Request {
    fn of(feed: &FeedConfig, state: &crate::store::FeedState, rules: &TagRules) -> Request {
        let fingerprint = fingerprint(feed, rules);
        let trusted = state.fingerprint.as_deref() == Some(fingerprint.as_str());
        Request {
            target: state
                .current_url
                .as_deref()
                .and_then(|u| Url::parse(u).ok())
                .unwrap_or_else(|| feed.url.clone()),
            validators: if trusted {
                state.validators.clone()
            } else {
                Validators::default()
            },
            fingerprint,
            trusted,
        }
    }
}

/// Choose the validators, fetch, skip what did not change, parse on the CPU pool, store.
async fn fetch_and_store(
    ctx: &Context,
    feed: &FeedConfig,
    poll: &Poll,
    slot: tokio::sync::SemaphorePermit<'_>,
) -> Result<Polled, RefreshError> {
    let request = Request::of(feed, &poll.state, &ctx.config.tags);
    let (response, body) = match ctx
        .fetcher
        .fetch(&request.target, &request.validators)
        .await?
    {
        Fetched::NotModified(response) => {
            return unchanged(ctx, poll, response, Outcome::NotModified, slot).await;
        }
        Fetched::Body(response, body) => (response, body),
    };
    let body_hash = body_hash(&request.fingerprint, &body);
    if request.trusted && poll.state.body_hash.as_deref() == Some(body_hash.as_str()) {
        return unchanged(ctx, poll, response, Outcome::Unchanged, slot).await;
    }
    let kib = u32::try_from(body.len() / 1024 + 1).map_or(QUEUED_KIB, |k| k.min(QUEUED_KIB));
    let held = held(ctx, poll).await;
    let prepared = prepare_on_pool(ctx, feed, (body, held), &response, &request.target).await?;
    for note in &prepared.notes {
        tracing::warn!(feed = %feed.url, "{note}");
    }
    let batch = FeedBatch {
        title: prepared.title,
        site_link: prepared.site_link,
        status: response.status,
        validators: response.validators.clone(),
        body_hash,
        fingerprint: request.fingerprint,
        moved_to: response.moved_to.as_ref().map(Url::to_string),
        entries: prepared.entries,
        notes: prepared.notes.clone(),
        now: Utc::now(),
    };
    let _queued = ctx
        .gates
        .queued
        .acquire()
        .await
        .expect("the gate is never closed");
    let _queued_kib = ctx
        .gates
        .queued_kib
        .acquire_many(kib)
        .await
        .expect("the gate is never closed");
    // Queued for the store: the next feed may be fetched while this one waits to be written.
    drop(slot);
    let counts = ctx.store.apply_batch(poll, batch).await?;
    Ok(Polled {
        outcome: Outcome::Stored(counts),
        response: Some(response),
        notes: prepared.notes,
    })
}

/// What the feed's last stored batch held, so that its entries stored as they are need not
/// be signed again: a changed feed has most often changed a few of its entries, and their
/// signatures were a tenth of a steady round's CPU. A feed never stored has nothing to ask
/// for, and with only links merging a signature is a word count, cheaper than the question.
/// A hint: if the store cannot answer, every entry is signed.
async fn held(ctx: &Context, poll: &Poll) -> Held {
    if poll.state.body_hash.is_none() || ctx.config.dedup.merge == Merge::Links {
        return Held::default();
    }
    ctx.store.held(poll).await.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "cannot read what the store holds of the feed");
        Held::default()
    })
}

/// [`prepare`] on a blocking thread, one per core at most: parsing, sanitising and tagging are
/// CPU work, kept off the async workers. A panic in a parser is that feed's error, never the
/// process's.
async fn prepare_on_pool(
    ctx: &Context,
    feed: &FeedConfig,
    (body, held): (Vec<u8>, Held),
    response: &Response,
    fetched_from: &Url,
) -> Result<Prepared, ParseError> {
    // Relative links resolve against the document's own address where the server names one.
    let base = response
        .content_location
        .as_deref()
        .and_then(|l| fetched_from.join(l).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .unwrap_or_else(|| fetched_from.clone());
    let (feed, config, content_type) = (
        feed.clone(),
        ctx.config.clone(),
        response.content_type.clone(),
    );
    let _cpu = ctx
        .gates
        .cpu
        .acquire()
        .await
        .expect("the gate is never closed");
    tokio::task::spawn_blocking(move || {
        let run = || {
            prepare(
                &feed,
                &config,
                &body,
                content_type.as_deref(),
                (&base, &held),
            )
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or(panic.downcast_ref::<&str>().copied());
            Err(ParseError::Malformed(format!(
                "the parser crashed on this feed ({})",
                what.unwrap_or("no message")
            )))
        })
    })
    .await
    .map_err(|e| ParseError::Malformed(format!("the parse task failed: {e}")))?
}

/// A feed's entries read, tagged and identified, ready to store.
#[derive(Debug)]
pub struct Prepared {
    /// The configured title, else the feed's own.
    pub title: Option<String>,
    pub site_link: Option<String>,
    /// One per entry key, each with its tags, identities and story signature.
    pub entries: Vec<crate::model::PreparedEntry>,
    /// What the parse says though it succeeded (repairs, entries it could not read).
    pub notes: Vec<String>,
}

/// Parse, tag and identify a feed's entries, as every poll does, and sign those the feed's
/// last batch did not hold as they are (`held`): a pure function of the body, the settings
/// and `held` (no clock, no I/O), so it runs on any thread, and in tests and the fuzz target
/// exactly as in production.
pub fn prepare(
    feed: &FeedConfig,
    config: &Config,
    body: &[u8],
    content_type: Option<&str>,
    (fetched_from, held): (&Url, &Held),
) -> Result<Prepared, ParseError> {
    let parsed = parse::parse(body, content_type, fetched_from, &config.limits)?;
    let feed_url = feed.url.as_str();
    let entries = parsed
        .entries
        .into_iter()
        .map(|e| {
            let tags = config.tags.tags_for(&e, &feed.tags);
            dedup::identify(feed_url, e, tags)
        })
        .collect();
    let entries = dedup::unique_by_key(feed_url, entries);
    for e in entries.iter().filter(|e| !held.keeps(e)) {
        config.dedup.signature_of(e);
    }
    Ok(Prepared {
        title: feed.title.clone().or(parsed.title),
        site_link: parsed.site_link,
        entries,
        notes: parsed.notes,
    })
}

/// A poll that found nothing new (a 304, or the body already processed): recorded as seen.
/// Its place among the feeds in flight is let go first: the record may wait for the store's
/// next group (see `Store::start_poll`), and the next feed need not wait with it.
async fn unchanged(
    ctx: &Context,
    poll: &Poll,
    response: Response,
    outcome: Outcome,
    slot: tokio::sync::SemaphorePermit<'_>,
) -> Result<Polled, RefreshError> {
    drop(slot);
    record_unchanged(ctx, poll, &response).await?;
    Ok(Polled {
        outcome,
        response: Some(response),
        notes: Vec::new(),
    })
}

async fn record_unchanged(
    ctx: &Context,
    poll: &Poll,
    response: &Response,
) -> Result<(), StoreError> {
    let seen = Unchanged {
        status: response.status,
        validators: response.validators.clone(),
        moved_to: response.moved_to.as_ref().map(Url::to_string),
        now: Utc::now(),
    };
    ctx.store.record_unchanged(poll, seen).await
}

/// The settings that shape a feed's stored entries. When any changes, a feed is reprocessed
/// even if the server says nothing changed.
fn fingerprint(feed: &FeedConfig, rules: &TagRules) -> String {
    let settings = format!(
        "{} {}\n{:?}\n{:?}\n{:?}",
        env!("CARGO_PKG_VERSION"),
        parse::REVISION,
        feed.title,
        feed.tags,
        rules.rules()
    );
    // Limits shape stored entries too, but changing them need not force a re-download.
    xxh3_hex(&[settings.as_bytes()])
}

/// Identifies a body already processed under these settings. XXH3-128: bodies are megabytes,
/// and a collision could only make a feed skip its own update.
fn body_hash(fingerprint: &str, body: &[u8]) -> String {
    xxh3_hex(&[fingerprint.as_bytes(), body])
}

fn xxh3_hex(parts: &[&[u8]]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(p);
    }
    format!("{:032x}", h.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FeedState;

    fn config() -> Config {
        Config::from_toml(
            "[[feed]]\nurl = \"https://a.example/feed\"\ntitle = \"A\"\ntags = [\"news\"]\n\n\
             [[tag]]\nname = \"Binance\"\nkeywords = [\"Binance\"]\n",
            std::path::Path::new("test.toml"),
        )
        .unwrap()
    }

    fn state(fingerprint: Option<String>, current_url: Option<&str>) -> FeedState {
        FeedState {
            id: 1,
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            body_hash: Some("h".into()),
            fingerprint,
            current_url: current_url.map(str::to_string),
        }
    }

    /// Validators vouch for a body only under the settings it was processed with; a feed that
    /// moved (301) is asked for at its new address.
    #[test]
    fn a_request_trusts_validators_only_under_the_same_settings() {
        let config = config();
        let feed = &config.feeds[0];
        let same = fingerprint(feed, &config.tags);
        let r = Request::of(feed, &state(Some(same), None), &config.tags);
        assert!(r.trusted);
        assert_eq!(r.validators.etag.as_deref(), Some("\"v1\""));
        assert_eq!(r.target, feed.url);

        let r = Request::of(feed, &state(Some("older".into()), None), &config.tags);
        assert!(!r.trusted);
        assert_eq!(r.validators, Validators::default(), "a full fetch");

        let moved = state(None, Some("https://b.example/rss"));
        let r = Request::of(feed, &moved, &config.tags);
        assert_eq!(r.target.as_str(), "https://b.example/rss");
    }

    #[test]
    fn other_rules_are_other_settings() {
        let config = config();
        let before = fingerprint(&config.feeds[0], &config.tags);
        let changed = Config::from_toml(
            "[[feed]]\nurl = \"https://a.example/feed\"\ntitle = \"A\"\ntags = [\"news\"]\n\n\
             [[tag]]\nname = \"Binance\"\nkeywords = [\"Binance\", \"BNB\"]\n",
            std::path::Path::new("test.toml"),
        )
        .unwrap();
        assert_ne!(before, fingerprint(&changed.feeds[0], &changed.tags));
        assert_ne!(body_hash(&before, b"x"), body_hash(&before, b"y"));
    }

    /// `body` prepared as a poll of `config()`'s feed prepares it.
    fn prepared(body: &[u8], held: &Held) -> Prepared {
        let config = config();
        let url = Url::parse("https://a.example/feed").unwrap();
        prepare(&config.feeds[0], &config, body, None, (&url, held)).unwrap()
    }

    /// What a poll stores: the configured title over the feed's own, each entry once by key,
    /// with the feed's tags and the rules'.
    #[test]
    fn prepare_tags_and_identifies_each_entry_once() {
        let body =
            br#"<rss version="2.0"><channel><title>Own title</title><link>https://a.example/</link>
            <item><guid>1</guid><title>Binance lists a token</title></item>
            <item><guid>2</guid><title>Markets calm</title></item>
            <item><guid>1</guid><title>Binance lists a token (again)</title></item>
            </channel></rss>"#;
        let p = prepared(body, &Held::default());
        assert_eq!(p.title.as_deref(), Some("A"));
        assert_eq!(p.site_link.as_deref(), Some("https://a.example/"));
        assert_eq!(p.entries.len(), 2, "one entry per key");
        let tags =
            |i: usize| -> Vec<&str> { p.entries[i].tags.iter().map(|t| t.0.as_str()).collect() };
        assert_eq!(tags(0), ["news", "Binance"]);
        assert_eq!(tags(1), ["news"]);
    }

    /// Only what the feed's last batch did not hold as it is gets signed on the parse thread;
    /// the rest is left for the writer to skip.
    #[test]
    fn prepare_signs_only_what_the_last_batch_did_not_hold() {
        let body = br#"<rss version="2.0"><channel><title>T</title>
            <item><guid>1</guid><title>Binance lists a token</title></item>
            <item><guid>2</guid><title>Markets calm</title></item>
            <item><guid>3</guid><title>Unchanged too</title></item>
            <item><guid>4</guid><title>Brand new</title></item>
            </channel></rss>"#;
        let all = prepared(body, &Held::default()).entries;
        assert!(all.iter().all(|e| e.signature.get().is_some()));
        // The last batch held the first and the third as they are, the second with another
        // text; the fourth is new.
        let mut older = all[1].clone();
        older.content_hash = "an older text".into();
        let held = Held::read(&Held::record(&[all[0].clone(), older, all[2].clone()]));
        let p = prepared(body, &held);
        let signed: Vec<bool> = p
            .entries
            .iter()
            .map(|e| e.signature.get().is_some())
            .collect();
        assert_eq!(signed, [false, true, false, true]);
        assert_eq!(p.entries[1].signature.get(), all[1].signature.get());
    }
}
