//! The binary: the allocator, then the command line (`aggregate::cli::main`).

use std::process::ExitCode;

/// jemalloc, not the system allocator: parsing and sanitising a feed is millions of small
/// allocations, and glibc's malloc was a seventh of a cold pass's CPU (perf, 1000 feeds).
/// (mimalloc builds in a tenth of jemalloc's time, but a cold 1000-feed pass peaked at 277 MiB
/// with it, 122 MiB tuned, against jemalloc's 99 MiB: BENCHMARKS.md, "Build".)
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

fn main() -> ExitCode {
    aggregate::cli::main()
}
