//! Clustering's own cost, apart from fetching, parsing and SQL: the entries of a corpus of
//! feed files (bench/gen_corpus.py's, or any directory of feeds) are read once, then timed
//! through `dedup::prepare` (which computes each signature) and through a `StoryIndex` in
//! memory (placement, as the writer does it). Reports microseconds per entry (median of
//! runs) and the heap the index holds once every entry is placed, counted by this binary's
//! allocator, so the figure is exact and the same on every run.
//!
//! Run: `cargo bench --bench clustering -- DIR [RUNS]` (DIR defaults to target/bench/corpus,
//! which `python3 bench/bench.py` or bench/gen_corpus.py writes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use aggregate::dedup::cluster::Settings;
use aggregate::dedup::index::{Arrival, StoryIndex};
use aggregate::dedup::{self, Aliases};
use aggregate::model::{Entry, PreparedEntry};
use aggregate::parse::Limits;
use chrono::{DateTime, Utc};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The median wall time of `runs` calls of `f`.
fn timed(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// Every entry's signature, computed and dropped.
fn sign_all(feeds: &[(String, Vec<Entry>)], aliases: &Aliases) {
    for (_, entries) in feeds {
        for e in entries {
            std::hint::black_box(dedup::signature::signature(e, aliases));
        }
    }
}

fn per_entry(d: Duration, n: usize) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6 / n as f64)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let dir = args
        .first()
        .cloned()
        .unwrap_or_else(|| "target/bench/corpus".into());
    let runs: usize = args
        .get(1)
        .map_or(5, |r| r.parse().expect("RUNS is a number"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e} (write a corpus with bench/gen_corpus.py)"))
        .map(|f| f.expect("directory entry").path())
        .collect();
    files.sort();
    let limits = Limits::default();
    let mut feeds: Vec<(String, Vec<Entry>)> = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("readable feed");
        let url = url::Url::parse(&format!("http://127.0.0.1/{}", path.display())).unwrap();
        if let Ok(parsed) = aggregate::parse::parse(&bytes, None, &url, &limits) {
            feeds.push((url.to_string(), parsed.entries));
        }
    }
    let n: usize = feeds.iter().map(|(_, e)| e.len()).sum();
    println!("{} feeds, {n} entries, {runs} runs, medians", feeds.len());
    let settings = Settings::default();
    let aliases = &settings.aliases;
    // For counting instructions with callgrind (a busy machine disturbs timings, not counts):
    // `ONLY=signature` computes signatures `RUNS` times and nothing else, `ONLY=index` places
    // the entries once and skips the timings, `ONLY=none` stops after the parse.
    let only = std::env::var("ONLY").ok();
    match only.as_deref() {
        Some("none") => return,
        Some("signature") => {
            for _ in 0..runs {
                sign_all(&feeds, aliases);
            }
            return;
        }
        _ => {}
    }
    let timings = only.is_none();
    let settings = &settings;
    let prepare = || -> Vec<(usize, PreparedEntry)> {
        feeds
            .iter()
            .enumerate()
            .flat_map(|(f, (url, entries))| {
                entries
                    .iter()
                    .map(move |e| (f, dedup::prepare(url, e.clone(), Vec::new(), settings)))
            })
            .collect()
    };
    if timings {
        let d = timed(runs, || {
            std::hint::black_box(prepare());
        });
        println!(
            "prepare (signature included): {} per entry",
            per_entry(d, n)
        );
        let d = timed(runs, || sign_all(&feeds, aliases));
        println!("  of which the signature: {}", per_entry(d, n));
        let d = timed(runs, || {
            for (_, entries) in &feeds {
                std::hint::black_box(entries.clone());
            }
        });
        println!("  of which copying the entry: {}", per_entry(d, n));
    }

    let prepared = prepare();
    let runs = if timings { runs } else { 1 };
    if timings {
        // What the signatures say, as one number: a change meant to be only faster keeps it.
        let mut digest = xxhash_rust::xxh3::Xxh3::new();
        for (_, p) in &prepared {
            digest.update(format!("{:?}", p.signature).as_bytes());
        }
        println!("  signatures digest: {:016x}", digest.digest());
    }
    let now: DateTime<Utc> = prepared
        .iter()
        .filter_map(|(_, p)| p.entry.published)
        .max()
        .unwrap_or_else(Utc::now);
    let mut held = 0;
    let mut stories = 0;
    let mut size = None;
    let placements = (0..runs)
        .map(|_| {
            let before = live();
            let mut index = StoryIndex::new(Settings::default());
            index.reload([]);
            let (mut next, mut made) = (0i64, 0usize);
            let t = Instant::now();
            for (f, p) in &prepared {
                let new = Arrival {
                    feed: *f as i64,
                    entry: p,
                    date: p.entry.published.unwrap_or(now),
                    now,
                };
                let placement = index.place(&new, &HashMap::new());
                next += 1;
                let story = placement.joins.unwrap_or_else(|| {
                    made += 1;
                    next
                });
                index.placed(placement, story, next, &new);
            }
            let elapsed = t.elapsed();
            held = live() - before;
            stories = made;
            size = Some(index.size());
            drop(index);
            elapsed
        })
        .collect();
    println!(
        "index placement: {} per entry",
        per_entry(median(placements), n)
    );
    println!(
        "index held: {:.1} MiB for {stories} stories of {n} entries ({:.0} bytes a story)",
        held as f64 / (1 << 20) as f64,
        held as f64 / stories.max(1) as f64
    );
    println!("  {:?}", size.expect("a run"));
}
