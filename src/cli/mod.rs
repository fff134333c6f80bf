//! The command line: `aggregate [--config PATH] [--once] [--strict]`, `aggregate check` and
//! `aggregate migrate --to POSTGRES`.
//! Turns a pass's results into a summary and an exit code. Knows no SQL and no feed format.

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

mod daemon;

/// Exit code when `--strict` is given and any feed failed.
pub const EXIT_FEED_FAILED: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "aggregate",
    version,
    about = "Poll crypto-news feeds, deduplicate and tag their entries, republish merged feeds by tag",
    after_help = "Exit codes: 0 the run completed (failing feeds are reported, not fatal); \
                  1 fatal error (bad config, unusable database); 2 with --strict when any feed failed."
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

    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// "aggregate=debug"). Overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and print the feeds, tag rules and outputs it defines.
    Check,
    /// Copy the configured SQLite database into an empty PostgreSQL database, keeping every
    /// story, guid, tombstone and feed state; then point `[storage] url` at it.
    Migrate {
        /// The PostgreSQL database: "postgres://user@host/db" or "host=/run/postgresql
        /// dbname=aggregate". Its schema is created if it has none.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(&cli.config)?;
    match cli.command {
        Some(Command::Check) => {
            print!("{}", describe(&config, &cli.config));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Migrate { to }) => migrate(&config, to).await,
        None if cli.once => run_once(config, cli.strict).await,
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
    let fetcher = Fetcher::new(&config.fetch).map_err(anyhow::Error::msg)?;
    let gates = Gates::new(config.fetch.concurrency, store.queue_depth());
    Ok(Context {
        store,
        fetcher: Arc::new(fetcher),
        config: Arc::new(config),
        gates,
    })
}

async fn run_once(config: Config, strict: bool) -> anyhow::Result<ExitCode> {
    let ctx = context(config).await?;
    let progress = progress_bar(ctx.config.feeds.len());
    let reports = schedule::run_pass(&ctx, |r| {
        progress.inc(1);
        progress.set_message(r.url.to_string());
        log_report(r);
    })
    .await;
    progress.finish_and_clear();
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
    println!("{summary}");
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
            tracing::info!(feed = %r.url, outcome = ?p.outcome, elapsed_ms = r.elapsed.as_millis() as u64, "polled")
        }
        // Printed in the run's summary too; the log line carries the timing.
        Err(e) => {
            tracing::info!(feed = %r.url, error = %e, elapsed_ms = r.elapsed.as_millis() as u64, "poll failed")
        }
    }
}

fn print_failures(reports: &[FeedReport]) {
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
    if let Some(pg) = storage
        .postgres
        .as_ref()
        .filter(|pg| pg.lease <= config.fetch.timeout)
    {
        let _ = writeln!(
            s,
            "warning: storage.lease ({}) is not longer than fetch.timeout ({}): a slow poll's lease can run out, and another instance poll the feed again (its result is then refused, not stored twice)",
            format_duration(pg.lease),
            format_duration(config.fetch.timeout)
        );
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
