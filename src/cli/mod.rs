//! The command line: `aggregate [--config PATH] [--once] [--strict]`, the service, and the
//! operator's subcommands (`check`, `import`, `export`, `feeds`, `backup`, `vacuum`,
//! `migrate`, `completions`). Turns results into what a person or a script reads and an exit
//! code. Knows no SQL and no feed format.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{Config, format_duration};
use crate::fetch::Fetcher;
use crate::outputs;
use crate::pipeline::{Context, Gates};
use crate::schedule::{self, FeedReport, PassSummary};
use crate::store::Store;

pub use process::main;

mod control;
mod daemon;
mod database;
mod discover;
mod notify;
mod preview;
mod process;
mod subscriptions;

/// Exit code when `--strict` is given and any feed failed.
pub const EXIT_FEED_FAILED: u8 = 2;

/// `--version`: the release and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("AGGREGATE_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "aggregate",
    version = VERSION,
    about = "Poll crypto-news feeds, deduplicate and tag their entries, republish merged feeds by tag",
    after_help = "Exit codes: 0 the run completed (failing feeds are reported, not fatal); \
                  1 fatal error (bad config, unusable database); 2 with --strict when any feed failed, \
                  and for `feeds --failing` when any feed is failing."
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "config.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// Poll every feed once, write the output files, print a summary and exit. Without it,
    /// aggregate runs as a service: polling on schedule and serving feeds over HTTP.
    #[arg(long)]
    pub once: bool,

    /// With --once: exit with code 2 if any feed failed.
    #[arg(long, requires = "once")]
    pub strict: bool,

    /// With --once: run the pass on a throw-away copy of the database and print what it would
    /// change (new and updated entries, tags, outputs); writes nothing.
    #[arg(long, requires = "once")]
    pub dry_run: bool,

    /// Print no summary: only errors (and, for subcommands, what was asked for).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// "aggregate=debug"). Overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config and print what it defines; with --diff, what it would change.
    Check {
        /// Also show what the config would do to the stored entries: stories that would gain
        /// or lose each tag, outputs that would change, feeds added and removed. Computed on a
        /// copy of the database; nothing is written, nothing fetched.
        #[arg(long)]
        diff: bool,
        /// With --diff: the config in force now (say, `git show HEAD:config.toml`), to compare
        /// its outputs and feeds with; without it, outputs are compared under this config and
        /// feeds against those the database has polled.
        #[arg(long, value_name = "OLD_CONFIG", requires = "diff")]
        against: Option<PathBuf>,
    },
    /// Copy the SQLite database into an empty PostgreSQL database.
    ///
    /// Every story, guid, tombstone and feed state is kept; then point `[storage] url` at it.
    Migrate {
        /// The PostgreSQL database: "postgres://user@host/db" or "host=/run/postgresql
        /// dbname=aggregate". Its schema is created if it has none.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Subscribe to the feeds an OPML file lists (another reader's export).
    ///
    /// Appends a [[feed]] for each to the config, keeping its comments and layout, and skips
    /// feeds already there. The config is created if it does not exist, and never left invalid.
    Import {
        /// The OPML file, or "-" for standard input.
        file: PathBuf,
        /// Give each feed its OPML folders and categories as tags.
        #[arg(long)]
        tags_from_categories: bool,
        /// Print what was added and skipped as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Find a site's feeds from one of its pages and print the [[feed]] to paste.
    ///
    /// Reads its <link rel="alternate"> tags, else common paths such as /feed, and reads each
    /// candidate with the polling client (its limits and deny_private).
    Discover {
        /// A page of the site, or a feed's own address.
        url: String,
        /// Append the first feed found to the config (to pick another, give its own URL).
        #[arg(long)]
        add: bool,
        /// Print what was found as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Poll these feeds now (URLs or configured titles; none for every feed).
    ///
    /// With a service running (its control socket, server.control, answers), it is asked to;
    /// without one, they are polled here once, as --once would, and the output files written.
    Refresh {
        feeds: Vec<String>,
        /// Print the service's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the configured sources as OPML 2.0, for another reader to import.
    ///
    /// Also served at GET /opml.
    Export {
        /// The outputs instead: every merged feed, to subscribe to all at once (also served at
        /// GET /outputs.opml).
        #[arg(long)]
        outputs: bool,
    },
    /// One line per feed: health, entries, failures, last success, next poll, last error.
    Feeds {
        /// Only feeds whose last poll failed (or that are gone); exit 2 if there are any.
        #[arg(long)]
        failing: bool,
        /// Print JSON, one object per feed.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the SQLite database to PATH, while the service runs.
    Backup {
        /// Where the copy goes; must not exist yet.
        path: PathBuf,
    },
    /// Give back to the file system the space that deleted entries held.
    Vacuum,
    /// Print a shell completion script.
    ///
    /// `aggregate completions bash > /etc/bash_completion.d/aggregate`
    Completions { shell: clap_complete::Shell },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need no valid config, or edit it.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "aggregate", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Import {
            file,
            tags_from_categories,
            json,
        }) => {
            let how = subscriptions::Import {
                tags_from_categories: *tags_from_categories,
                json: *json,
                quiet: cli.quiet,
            };
            return subscriptions::import(&cli.config, file, how);
        }
        Some(Command::Discover { url, add, json }) => {
            return discover::discover(&cli.config, url, *add, *json).await;
        }
        _ => {}
    }
    let config = Config::load(&cli.config)?;
    match cli.command {
        Some(Command::Check { diff, against }) => {
            print!("{}", describe(&config, &cli.config));
            if !diff {
                return Ok(ExitCode::SUCCESS);
            }
            let old = match against {
                Some(path) => Some(Config::load(&path).context("--against")?),
                None => None,
            };
            println!();
            preview::check_diff(&config, old.as_ref()).await
        }
        Some(Command::Migrate { to }) => migrate(&config, to).await,
        Some(Command::Export { outputs }) => subscriptions::export(&config, outputs).await,
        Some(Command::Feeds { failing, json }) => database::feeds(&config, failing, json).await,
        Some(Command::Backup { path }) => database::backup(&config, &path, cli.quiet).await,
        Some(Command::Vacuum) => database::vacuum(&config, cli.quiet).await,
        Some(Command::Refresh { feeds, json }) => refresh(config, feeds, json, cli.quiet).await,
        Some(Command::Completions { .. } | Command::Import { .. } | Command::Discover { .. }) => {
            unreachable!("run above")
        }
        None if cli.once && cli.dry_run => preview::dry_run(config, cli.quiet).await,
        None if cli.once => run_once(config, cli.strict, cli.quiet).await,
        None => daemon::run(cli.config, config).await,
    }
}

/// `aggregate migrate --to URL`: the configured SQLite database, copied whole.
async fn migrate(config: &Config, to: String) -> anyhow::Result<ExitCode> {
    if config.storage.postgres.is_some() {
        anyhow::bail!(
            "the config's storage is already PostgreSQL (storage.url): migrate copies from the SQLite database in storage.path"
        );
    }
    let target = crate::config::PostgresConfig {
        url: to,
        pool: 2,
        lease: config.fetch.timeout,
    };
    target
        .url
        .parse::<tokio_postgres::Config>()
        .map_err(|e| anyhow::anyhow!("--to is not a PostgreSQL address: {e}"))?;
    let from = &config.storage.path;
    let copied = crate::store::copy_sqlite_to_postgres(from, &target)
        .await
        .with_context(|| format!("cannot migrate {} into {}", from.display(), target.target()))?;
    println!(
        "copied {} from {} into {}",
        copied,
        from.display(),
        target.target()
    );
    println!(
        "to use it: in [storage], replace path with url = \"<the address given to --to>\"; {} is left as it was",
        from.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens the store and builds the shared context.
pub async fn context(config: Config) -> anyhow::Result<Context> {
    let store = Store::open(&config.storage, &config.dedup).await?;
    crate::pipeline::record_config(&store, &config)
        .await
        .context("cannot record the configured feeds and tag names")?;
    outputs::remove_stale_files(&store, &config)
        .await
        .context("cannot record the configured output files")?;
    context_on(store, config)
}

/// The shared context over an open store: the HTTP client and the gates the config asks for.
pub(super) fn context_on(store: Store, config: Config) -> anyhow::Result<Context> {
    let fetcher = Fetcher::new(&config.fetch)?;
    let gates = Gates::new(config.fetch.concurrency, store.queue_depth());
    Ok(Context {
        store,
        fetcher: Arc::new(fetcher),
        config: Arc::new(config),
        gates,
    })
}

/// Polls every feed of `ctx` once, with a progress bar on a terminal and a log line a feed.
pub(super) async fn pass(ctx: &Context) -> Vec<FeedReport> {
    let progress = progress_bar(ctx.config.feeds.len());
    let reports = schedule::run_pass(ctx, |r| {
        progress.inc(1);
        progress.set_message(r.url.to_string());
        log_report(r);
    })
    .await;
    progress.finish_and_clear();
    reports
}

/// `aggregate refresh [FEED…]`.
async fn refresh(
    mut config: Config,
    names: Vec<String>,
    json: bool,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| config.find_feed(n).is_none())
        .collect();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|n| format!("{n:?}")).collect();
        anyhow::bail!(
            "no configured feed is {}: give a feed's URL or its configured title (aggregate feeds lists them)",
            list.join(" or ")
        );
    }
    match control::request_refresh(&config.server.control, &names).await? {
        Some(reply) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
            } else if !quiet {
                print!("{}", describe_reply(&reply));
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            if !quiet {
                eprintln!(
                    "note: no service answers on {} (server.control): polling here",
                    config.server.control.display()
                );
            }
            if !names.is_empty() {
                let chosen: Vec<String> = names
                    .iter()
                    .filter_map(|n| config.find_feed(n))
                    .map(|f| f.url.to_string())
                    .collect();
                config.feeds.retain(|f| chosen.contains(&f.url.to_string()));
            }
            run_once(config, false, quiet).await
        }
    }
}

/// What the service said it would do with a refresh, for a person.
fn describe_reply(reply: &schedule::RefreshReply) -> String {
    use std::fmt::Write;
    let n = reply.polling.len();
    let mut s = format!(
        "the service polls {n} feed{} now\n",
        if n == 1 { "" } else { "s" }
    );
    for url in &reply.running {
        let _ = writeln!(s, "  {url}: being polled already");
    }
    for (url, left) in &reply.held {
        let _ = writeln!(
            s,
            "  {url}: its host asked (Retry-After) not to be polled for {left} more"
        );
    }
    for name in &reply.unknown {
        let _ = writeln!(
            s,
            "  {name}: not in the service's config (reload it: systemctl reload aggregate)"
        );
    }
    s
}

async fn run_once(config: Config, strict: bool, quiet: bool) -> anyhow::Result<ExitCode> {
    let ctx = context(config).await?;
    let reports = pass(&ctx).await;
    let summary = PassSummary::of(&reports);
    let mut output_failed = false;
    for (name, result) in outputs::write_files(&ctx).await {
        match result {
            Ok(w) => tracing::debug!(output = %name, result = ?w, "output written"),
            Err(e) => {
                output_failed = true;
                tracing::error!(output = %name, error = %e, "output not written");
            }
        }
    }
    let swept = schedule::sweep_retention(&ctx)
        .await
        .context("retention sweep failed")?;
    if swept.entries > 0 {
        tracing::info!(entries = swept.entries, "retention removed old entries");
    }
    print_failures(&reports);
    if !quiet {
        println!("{summary}");
    }
    if output_failed {
        anyhow::bail!("some outputs could not be written (see the errors above)");
    }
    Ok(if strict && summary.failed > 0 {
        ExitCode::from(EXIT_FEED_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn progress_bar(len: usize) -> ProgressBar {
    // Progress only for a person watching: never in a pipe, a log or cron mail.
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} feeds  {wide_msg}")
        .expect("static template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn log_report(r: &FeedReport) {
    match &r.result {
        Ok(p) => {
            tracing::info!(feed = %r.url, outcome = p.outcome.label(), elapsed_ms = r.elapsed.as_millis() as u64, "polled")
        }
        // Printed in the run's summary too; the log line carries the timing.
        Err(e) => {
            tracing::info!(feed = %r.url, error = %e, elapsed_ms = r.elapsed.as_millis() as u64, "poll failed")
        }
    }
}

pub(super) fn print_failures(reports: &[FeedReport]) {
    for r in reports {
        let name = r
            .title
            .as_deref()
            .map(|t| format!("{t} ({})", r.url))
            .unwrap_or_else(|| r.url.to_string());
        match &r.result {
            Err(e) => eprintln!("failed: {name}: {e}"),
            Ok(p) => p.notes.iter().for_each(|n| eprintln!("note: {name}: {n}")),
        }
    }
}

/// What is valid but probably not meant: no feed at all, an output selecting a tag that no
/// rule and no feed gives (only a feed's own categories could, so a misspelling shows as an
/// output that stays empty).
fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(pg) = config
        .storage
        .postgres
        .as_ref()
        .filter(|pg| pg.lease <= config.fetch.timeout)
    {
        out.push(format!(
            "storage.lease ({}) is not longer than fetch.timeout ({}): a slow poll's lease can run out, and another instance poll the feed again (its result is then refused, not stored twice)",
            format_duration(pg.lease),
            format_duration(config.fetch.timeout)
        ));
    }
    if config.feeds.is_empty() {
        out.push(
            "no [[feed]] is configured: nothing will be polled (add feeds with aggregate import FILE.opml or aggregate discover URL --add)".into(),
        );
    }
    let known: std::collections::HashSet<String> = config
        .tag_spellings()
        .iter()
        .map(|t| crate::model::tag_key(t))
        .collect();
    for o in &config.outputs {
        for tag in o.tags.iter().chain(&o.exclude_tags) {
            if !known.contains(&crate::model::tag_key(tag)) {
                out.push(format!(
                    "output {:?} selects tag {tag:?}, which no [[tag]] rule and no feed's tags give: only entries whose feeds categorise them {tag:?} will carry it (is it spelled right?)",
                    o.name
                ));
            }
        }
    }
    out
}

/// The human-readable account `aggregate check` prints.
pub fn describe(config: &Config, path: &std::path::Path) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "config {} is valid", path.display());
    let storage = &config.storage;
    let _ = match &storage.postgres {
        Some(pg) => writeln!(
            s,
            "storage: {} (pool {}, lease {}, retention {})",
            pg.target(),
            pg.pool,
            format_duration(pg.lease),
            format_duration(storage.retention)
        ),
        None => writeln!(
            s,
            "storage: {} (retention {})",
            storage.path.display(),
            format_duration(storage.retention)
        ),
    };
    for warning in warnings(config) {
        let _ = writeln!(s, "warning: {warning}");
    }
    let f = &config.fetch;
    let _ = writeln!(
        s,
        "fetch: every {}, {} at once ({} per host), timeout {}, max body {} bytes",
        format_duration(f.interval),
        f.concurrency,
        f.per_host,
        format_duration(f.timeout),
        f.max_body
    );
    let _ = writeln!(
        s,
        "server: listen {}, base URL {}",
        config.server.listen, config.server.base_url
    );
    s.push_str(&describe_lists(config));
    s
}

/// The feeds, tag rules and outputs a config defines, one a line.
fn describe_lists(config: &Config) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "feeds ({}):", config.feeds.len());
    for feed in &config.feeds {
        let tags: Vec<&str> = feed.tags.iter().map(|t| t.0.as_str()).collect();
        let _ = writeln!(
            s,
            "  {}{} every {}{}",
            feed.url,
            feed.title
                .as_deref()
                .map(|t| format!(" \"{t}\""))
                .unwrap_or_default(),
            format_duration(feed.interval),
            if tags.is_empty() {
                String::new()
            } else {
                format!(" tags [{}]", tags.join(", "))
            }
        );
    }
    let _ = writeln!(s, "tag rules ({}):", config.tags.rules().len());
    for rule in config.tags.rules() {
        let _ = writeln!(s, "  {}: {}", rule.name, rule.keywords.join(", "));
    }
    let _ = writeln!(s, "outputs ({}):", config.outputs.len());
    for o in &config.outputs {
        let tags = if o.tags.is_empty() {
            "all entries".to_string()
        } else {
            format!("tags any of [{}]", o.tags.join(", "))
        };
        let excl = if o.exclude_tags.is_empty() {
            String::new()
        } else {
            format!(", excluding [{}]", o.exclude_tags.join(", "))
        };
        let file = o
            .file
            .as_ref()
            .map(|(p, _)| format!(" -> {}", p.display()))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {} \"{}\": {tags}{excl}, newest {}{file}",
            o.name, o.title, o.limit
        );
    }
    s
}
