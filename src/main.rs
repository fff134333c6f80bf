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
    /// Each thread caches freed blocks up to 4 KiB for its next allocations, not up to 32 KiB:
    /// the larger blocks a thread caches (a parse's buffers, on each of a dozen pool threads)
    /// count as memory in use, and the varied cold pass peaked 9 MiB higher for them, no faster
    /// (3 alternating pairs each on two corpora; BENCHMARKS.md, "Speed, round 4").
    /// `_RJEM_MALLOC_CONF` in the environment overrides these.
    #[unsafe(export_name = "_rjem_malloc_conf")]
    static MALLOC_CONF: ConfPtr =
        ConfPtr(c"narenas:2,dirty_decay_ms:100,muzzy_decay_ms:0,tcache_max:4096".as_ptr());

    /// A C string pointer jemalloc reads as `const char *malloc_conf`.
    #[repr(transparent)]
    struct ConfPtr(*const std::ffi::c_char);
    // SAFETY: it points at a string literal, immutable for the life of the process.
    unsafe impl Sync for ConfPtr {}

    /// Hands SQLite jemalloc's functions, so its page cache (a third of the live heap at the
    /// peak of a cold pass: BENCHMARKS.md, "Speed, round 4") is not held in glibc's heap and
    /// arenas beside jemalloc's own: one allocator's retained pages, not two. It must run before
    /// SQLite initialises (the first connection opened); after that SQLite refuses, and its own
    /// allocator (the system's) goes on serving it.
    pub fn hand_to_sqlite() {
        use rusqlite::ffi;
        use std::ffi::{c_int, c_void};
        use tikv_jemalloc_sys as je;

        // SQLite asks for sizes as `int` and never for a negative one; a zero or failed request
        // is a null pointer, which SQLite reports as SQLITE_NOMEM.
        unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
            // SAFETY: jemalloc's malloc, any size.
            unsafe { je::malloc(n.max(0) as usize) }
        }
        unsafe extern "C" fn x_free(p: *mut c_void) {
            // SAFETY: SQLite frees only what x_malloc or x_realloc returned.
            unsafe { je::free(p) }
        }
        unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
            // SAFETY: as x_free, for a pointer SQLite got from this allocator.
            unsafe { je::realloc(p, n.max(0) as usize) }
        }
        unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
            // SAFETY: as x_free; SQLite's allocations are well under 2 GiB.
            unsafe { je::malloc_usable_size(p) as c_int }
        }
        unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
            // What jemalloc would really give for n bytes, so SQLite may use all of it.
            // SAFETY: nallocx only computes a size class.
            match unsafe { je::nallocx(n.max(1) as usize, 0) } {
                0 => n,
                size => size.min(c_int::MAX as usize) as c_int,
            }
        }
        unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
            ffi::SQLITE_OK
        }
        unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to the methods and copies them; nothing
        // else touches SQLite yet (this runs first in main, before any thread starts).
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &raw const methods) };
        debug_assert_eq!(rc, ffi::SQLITE_OK, "sqlite3_config(SQLITE_CONFIG_MALLOC)");
    }
}

fn main() -> ExitCode {
    #[cfg(not(target_env = "msvc"))]
    allocator::hand_to_sqlite();
    aggregate::cli::main()
}
