//! The process around a command: signal dispositions and malloc tuning before any thread
//! starts, the log filter, the runtime, the final error into an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use super::{Cli, run};

/// Whether `--log-level` was given a level or a filter. tracing reads any word as a target
/// name ("bogus": everything from a module named bogus), which is never what was meant.
fn is_filter(text: &str) -> bool {
    const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];
    text.split(',').all(|directive| {
        let d = directive.trim();
        d.contains('=')
            || d.contains("::")
            || d.contains('[')
            || LEVELS.contains(&d.to_ascii_lowercase().as_str())
    })
}

/// What to log: `--log-level`, else `RUST_LOG`, else what suits the run (a service logs what
/// it does; a one-shot run from cron stays quiet unless something is wrong).
fn log_filter(cli: &Cli) -> Result<EnvFilter, String> {
    match &cli.log_level {
        Some(level) if !is_filter(level) => Err(format!(
            "invalid log level {level:?}: give error, warn, info, debug, trace or off, or a filter such as \"aggregate=debug\""
        )),
        Some(level) => EnvFilter::try_new(level).map_err(|e| format!("invalid log level: {e}")),
        None => {
            let default = if cli.once || cli.command.is_some() {
                "warn"
            } else {
                "info"
            };
            EnvFilter::try_from_default_env()
                .or_else(|_| EnvFilter::try_new(default))
                .map_err(|e| format!("invalid log level: {e}"))
        }
    }
}

/// The whole process after the allocator: signals, logging, the runtime, the exit code. Here in
/// the library, not in `main.rs`, so that its generic code (the runtime, the subscriber) is
/// compiled once with the rest rather than again into the binary.
pub fn main() -> ExitCode {
    // A file-size limit (ulimit -f, systemd's LimitFSIZE=) would otherwise kill the process in
    // the middle of a write; ignored, it makes the write fail with EFBIG, which SQLite reports
    // and rolls back like a full disk.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // SQLite's page caches still come from glibc's malloc (Rust's heap is jemalloc's).
    // glibc gives each thread that allocates an arena of its own, up to 8 per core, and keeps
    // what each has held; four are plenty for the store's few connections.
    // SAFETY: mallopt before any thread starts; it only tunes the allocator.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
    // Usage errors exit 1 like every other fatal error: exit code 2 means "a feed failed".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let filter = match log_filter(&cli) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
