//! libgit2's process-wide settings. libgit2 keeps them in plain C globals that git2 sets
//! only through `unsafe` functions, so the binary applies them once, first thing in
//! `main`, before any thread exists; with the stream in `socket.rs`, these are the
//! workspace's exceptions to its `unsafe_code` rule.
//!
//! - **Pack maps.** libgit2 reads pack files through `mmap`, in windows of 1 GiB, and on
//!   64-bit hosts unmaps a window only once 8 GiB are mapped. So every page of a pack a
//!   delivery touches (the fetched base while the tree is built, the new blobs' pack
//!   while the push reads it back) stayed in the resident set until the repository
//!   handle closed: at the peak of a fresh 20,000-file export, 115 of the process's
//!   158 MB. With small windows and a limit, libgit2 unmaps the least recently used
//!   window before mapping another. The pages stay in the kernel's page cache, so a
//!   window mapped again costs a system call and minor faults, not a read from disk.
//! - **No hash check on every read.** By default libgit2 hashes each object again each
//!   time it reads it, and the push reads every new object two or three times (delta
//!   search, writing the pack, the token comparison) with the slow collision-detecting
//!   SHA-1. The git CLI does not: an object's id is computed when it enters the
//!   repository (libgit2's indexer does so for every fetched pack; Courier hashes each
//!   blob it writes from the very bytes it compresses, `git/pack.rs`), each pack entry is
//!   a zlib stream with its own checksum, and the server recomputes every id it receives.
//! - **A silent server is given up.** Without a socket timeout, a server (or proxy) that
//!   accepts a connection and then never answers keeps libgit2's blocking thread in a
//!   read until the connection drops, which may be never. The delivery itself ends on
//!   time ([`Timeouts`](crate::git::Timeouts)), but the thread keeps the repository's
//!   cache lock, so every later delivery to that repository would wait for the lock and
//!   fail, until a restart.
//! - **No Nagle delay.** libgit2's own TCP stream leaves Nagle's algorithm on, which
//!   stalls every POST of a fetch or a push by up to 40 ms; Courier's stream
//!   (`git/socket.rs`) replaces it for every connection libgit2 opens.
//! - **TLS by rustls.** libgit2 is built without OpenSSL, which parsed the whole
//!   system CA bundle at every start; its HTTPS runs on the same file's TLS stream,
//!   which loads the system's authorities at the first TLS connection.

/// Size of one mapped window of a pack file.
pub const PACK_MAP_WINDOW: usize = 4 << 20;

/// Total size of the windows libgit2 keeps mapped (a soft limit: a window still in use
/// is not unmapped).
pub const PACK_MAP_LIMIT: usize = 16 << 20;

/// What libgit2 holds after [`init_libgit2`], read back from it (the hash check has no
/// getter: it is always off): `courier serve` logs it at start ([`engine_settings`]), so
/// an operator, and a test of the binary, sees what the engine runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    pub pack_map_window: usize,
    pub pack_map_limit: usize,
    pub socket_timeout: std::time::Duration,
}

impl std::fmt::Display for EngineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pack maps of {} KiB windows, {} KiB in all; connections silent for {} s dropped; objects not hashed again on read; TCP without Nagle's delay; TLS by rustls",
            self.pack_map_window >> 10,
            self.pack_map_limit >> 10,
            self.socket_timeout.as_secs()
        )
    }
}

/// What [`init_libgit2`] left libgit2 with, or `None` if it was not called in this process.
pub fn engine_settings() -> Option<EngineSettings> {
    APPLIED.get().copied()
}

static APPLIED: std::sync::OnceLock<EngineSettings> = std::sync::OnceLock::new();

/// Applies the settings above to the whole process, with `socket_timeout` as the longest
/// a connection to a git server may stay silent (no byte read or written) before libgit2
/// gives up on it: in the binary, [`Timeouts::network`](crate::git::Timeouts::network),
/// so it never cuts short an operation that could still succeed.
///
/// # Safety
///
/// libgit2 reads these globals on every pack access without synchronisation: call this
/// before any thread is spawned (first thing in `main`), when no other thread can be
/// using libgit2.
#[allow(unsafe_code)]
pub unsafe fn init_libgit2(
    socket_timeout: std::time::Duration,
) -> Result<EngineSettings, crate::git::GitError> {
    let millis = i32::try_from(socket_timeout.as_millis()).unwrap_or(i32::MAX);
    let failed = |e: git2::Error| crate::git::GitError::other("configuring libgit2", e.message());
    git2::opts::strict_hash_verification(false);
    // SAFETY: the caller guarantees that no other thread exists yet, so nothing reads or
    // writes these globals concurrently.
    unsafe {
        git2::opts::set_mwindow_size(PACK_MAP_WINDOW).map_err(failed)?;
        git2::opts::set_mwindow_mapped_limit(PACK_MAP_LIMIT).map_err(failed)?;
        git2::opts::set_server_timeout_in_milliseconds(millis).map_err(failed)?;
        let timeout = git2::opts::get_server_timeout_in_milliseconds().map_err(failed)?;
        let applied = EngineSettings {
            pack_map_window: git2::opts::get_mwindow_size().map_err(failed)?,
            pack_map_limit: git2::opts::get_mwindow_mapped_limit().map_err(failed)?,
            socket_timeout: std::time::Duration::from_millis(u64::try_from(timeout).unwrap_or(0)),
        };
        // libgit2's SSH transport reads its own timeout; HTTP(S) runs on our stream,
        // which is given the same value, as libgit2 holds it.
        crate::git::socket::register(applied.socket_timeout).map_err(failed)?;
        let _ = APPLIED.set(applied);
        Ok(applied)
    }
}
