use std::io::IsTerminal;
use std::process::ExitCode;

use aggregate::cli::{Cli, run};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc, not the system allocator: parsing and sanitising a feed is millions of small
/// allocations, and glibc's malloc was a seventh of a cold pass's CPU (perf, 1000 feeds).
#[cfg(not(target_env = "msvc"))]
mod allocator {
    #[global_allocator]
    static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    /// jemalloc's settings, read when it starts (before `main`). Two arenas, not four per core: the
    /// threads that allocate much are one parser per core and the writer, and each arena holds
    /// memory of its own (peak RSS of a cold 1000-feed pass: 70 MiB with the default, 59 MiB
    /// with two). Freed pages go back to the system after a tenth of a second rather than ten:
    /// a parse's garbage is not held for the next (peak RSS 63 -> 60 MiB, same time; at once,
    /// 51 MiB but 0.4 s more system time), and a daemon shrinks soon after each poll pass.
    /// `_RJEM_MALLOC_CONF` in the environment overrides these.
    #[unsafe(export_name = "_rjem_malloc_conf")]
    static MALLOC_CONF: ConfPtr =
        ConfPtr(c"narenas:2,dirty_decay_ms:100,muzzy_decay_ms:0".as_ptr());

    /// A C string pointer jemalloc reads as `const char *malloc_conf`.
    #[repr(transparent)]
    struct ConfPtr(*const std::ffi::c_char);
    // SAFETY: it points at a string literal, immutable for the life of the process.
    unsafe impl Sync for ConfPtr {}
}

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

fn main() -> ExitCode {
    // A file-size limit (ulimit -f, systemd's LimitFSIZE=) would otherwise kill the process in
    // the middle of a write; ignored, it makes the write fail with EFBIG, which SQLite reports
    // and rolls back like a full disk.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // SQLite's page caches still come from glibc's malloc (Rust's heap is jemalloc's, below).
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
