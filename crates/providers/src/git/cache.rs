//! The per-remote bare repository cache: where it lives, how it is opened isolated
//! from the host's git configuration, how it is locked, and how a damaged one is
//! rebuilt.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{Repository, RepositoryInitOptions, RepositoryOpenFlags};
use tokio::sync::OwnedMutexGuard;

use super::error::GitError;

/// Opens the cache at `path` and replaces its configuration with the repository's
/// own `config` file alone.
///
/// libgit2 would otherwise merge `~/.gitconfig`, `$XDG_CONFIG_HOME/git/config` and
/// `/etc/gitconfig` into every operation (`url.*.insteadOf`, `http.proxy`,
/// `http.extraHeader`, ...), so a host's settings could redirect or alter a delivery.
/// Blanking libgit2's search paths would do the same process-wide, but that call is an
/// `unsafe` global; a per-repository config object gives the same isolation for
/// everything Courier does with the cache, in the binary and in tests alike.
pub(crate) fn open(path: &Path) -> Result<Repository, git2::Error> {
    let repo = Repository::open_ext(
        path,
        RepositoryOpenFlags::NO_SEARCH | RepositoryOpenFlags::BARE,
        std::iter::empty::<&std::ffi::OsStr>(),
    )?;
    isolate(&repo, path)?;
    Ok(repo)
}

fn isolate(repo: &Repository, path: &Path) -> Result<(), git2::Error> {
    let mut config = git2::Config::open(&path.join("config"))?;
    tune(&mut config)?;
    repo.set_config(&config)
}

/// Bounds the push's delta search: each object is compared with at most this many bytes
/// of the objects before it (with their indexes), instead of with the 10 objects before
/// it whatever their size.
///
/// libgit2 orders objects by file name, then size, so an exporter's near-copies (the same
/// file for each theme or platform) sit next to each other and are still found. Measured
/// on a 2,000-file fresh export, pushed by `courier deliver`: random text (no delta to
/// find) pushed in 0.82 s instead of 1.30 s, same pack; four themes of the same files
/// (deltas shrink the pack from 4.9 to 1.9 MB): the same pack size within 0.01%. A 1-byte
/// limit (one candidate) was faster still but made the themed pack 1.7% larger.
const DELTA_WINDOW_MEMORY: i64 = 64 * 1024;

/// Settings every cache gets, written once into its `config`.
fn tune(config: &mut git2::Config) -> Result<(), git2::Error> {
    if config.get_i64("pack.windowMemory").ok() != Some(DELTA_WINDOW_MEMORY) {
        config.set_i64("pack.windowMemory", DELTA_WINDOW_MEMORY)?;
    }
    Ok(())
}

/// A fresh, empty bare repository at `path` (whatever was there is removed).
pub(crate) fn create(path: &Path) -> Result<Repository, GitError> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| GitError::CacheCorrupt {
            path: path.to_path_buf(),
            detail: format!("cannot remove the damaged cache: {e}"),
        })?;
    }
    let mut options = RepositoryInitOptions::new();
    options
        .bare(true)
        .no_reinit(true)
        .external_template(false)
        .initial_head("courier-cache");
    let repo = Repository::init_opts(path, &options).map_err(|e| GitError::CacheCorrupt {
        path: path.to_path_buf(),
        detail: format!("cannot create the cache: {}", e.message()),
    })?;
    isolate(&repo, path).map_err(|e| GitError::other("configuring the cache", e.message()))?;
    Ok(repo)
}

/// Opens the cache, or creates it; a cache that cannot be opened or whose object
/// database or references cannot be read is rebuilt from scratch. Call it holding the
/// cache's lock: it removes what an interrupted pack write left behind.
pub(crate) fn open_or_create(path: &Path) -> Result<Repository, GitError> {
    if !path.exists() {
        tracing::debug!(cache = %path.display(), "creating repository cache");
        return create(path);
    }
    let packs = sweep_packs(path);
    match open(path).and_then(check) {
        Ok(repo) if packs > MAX_PACKS => {
            drop(repo);
            tracing::info!(cache = %path.display(), packs, limit = MAX_PACKS, "repository cache holds more packs than its limit, fetching it anew");
            create(path)
        }
        Ok(repo) => Ok(repo),
        Err(err) => {
            tracing::warn!(cache = %path.display(), error = err.message(), "repository cache is damaged, rebuilding it");
            create(path)
        }
    }
}

/// Each fetch and each build with new blobs adds a pack, and libgit2 cannot repack. Every
/// repository handle a delivery opens (about nine) loads every pack's index, and a miss
/// visits every pack, so past this many the cache starts over with one fresh fetch.
///
/// Measured on a warm delivery of 2,000 files into 200 (`docs/benchmarks.md`): 47 ms with
/// 4-9 packs, 53 ms with 64, 66 ms with 128 and 93 ms near 256. Starting over costs one
/// cold delivery (+160 ms there) every 32 deliveries (each adds two packs): with the
/// slower lookups, about 8 ms a delivery on average, against 21 ms with a limit of 256.
const MAX_PACKS: usize = 64;

/// How the temporary files of a pack being written start: libgit2's indexer (a fetch)
/// and Courier's export pack (`pack.rs`). A process that dies while writing one leaves
/// it in `objects/pack/`, as large as the pack was by then, and nothing else removes it.
const TEMPORARY_PREFIXES: [&str; 3] = ["pack_git2_", "tmp_pack_", "tmp_idx_"];

/// One pass over `objects/pack/`: removes the temporary files of interrupted pack writes
/// and counts the packs. Only under the cache's lock: then no write is under way.
fn sweep_packs(path: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(path.join("objects").join("pack")) else {
        return 0;
    };
    let mut packs = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".pack") {
            packs += 1;
        } else if TEMPORARY_PREFIXES.iter().any(|p| name.starts_with(p)) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(cache = %path.display(), file = %name, "removed what an interrupted pack write left")
                }
                Err(e) => {
                    tracing::warn!(cache = %path.display(), file = %name, error = %e, "cannot remove what an interrupted pack write left")
                }
            }
        }
    }
    packs
}

/// How many packs the cache holds (the tests' view; `sweep_packs` counts while it
/// sweeps).
#[cfg(test)]
pub(crate) fn pack_count(path: &Path) -> usize {
    std::fs::read_dir(path.join("objects/pack")).map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .count()
    })
}

fn check(repo: Repository) -> Result<Repository, git2::Error> {
    if !repo.is_bare() {
        return Err(git2::Error::from_str("the cache is not a bare repository"));
    }
    repo.odb()?;
    for reference in repo.references()? {
        let reference = reference?;
        if let Some(oid) = reference.target() {
            repo.odb()?.read_header(oid)?;
        }
    }
    Ok(repo)
}

/// One async mutex per cache key, for deliveries in this process.
#[derive(Default, Debug)]
pub(crate) struct LockTable {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl LockTable {
    pub(crate) fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(key.to_owned()).or_default().clone()
    }
}

/// Exclusive use of one remote's cache: the in-process mutex and an OS file lock
/// (`flock`), so that two Courier processes sharing a cache directory take turns too.
/// Released when dropped.
#[derive(Debug)]
pub(crate) struct CacheLock {
    _in_process: OwnedMutexGuard<()>,
    _file: File,
}

impl CacheLock {
    /// Takes the file lock, polling until `deadline`. Blocking: call it on a blocking
    /// thread, with the in-process guard already held.
    pub(crate) fn acquire(
        guard: OwnedMutexGuard<()>,
        lock_path: &Path,
        deadline: Instant,
    ) -> Result<CacheLock, GitError> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path)
            .map_err(|e| {
                GitError::other(
                    &format!("opening the cache lock {}", lock_path.display()),
                    e,
                )
            })?;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(CacheLock {
                        _in_process: guard,
                        _file: file,
                    });
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(GitError::Timeout {
                        operation: "waiting for another process using the same repository cache",
                        after: Duration::ZERO,
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(GitError::other(
                        &format!("locking {}", lock_path.display()),
                        e,
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_memory(path: &Path) -> Option<i64> {
        git2::Config::open(&path.join("config"))
            .unwrap()
            .get_i64("pack.windowMemory")
            .ok()
    }

    #[test]
    fn a_cache_with_too_many_packs_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.git");
        let repo = create(&path).unwrap();
        let odb = repo.odb().unwrap();
        for i in 0..MAX_PACKS {
            pack_blob(&path, &odb, format!("{i}").as_bytes());
        }
        drop(odb);
        drop(repo);
        assert_eq!(pack_count(&path), MAX_PACKS);
        let repo = open_or_create(&path).unwrap();
        assert_eq!(
            pack_count(&path),
            MAX_PACKS,
            "at the limit the cache is kept"
        );
        let odb = repo.odb().unwrap();
        pack_blob(&path, &odb, b"one more");
        drop(odb);
        drop(repo);
        open_or_create(&path).unwrap();
        assert_eq!(pack_count(&path), 0, "past it, the cache starts over");
        assert!(open(&path).is_ok());
    }

    #[test]
    fn an_interrupted_pack_write_is_cleared_when_the_cache_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.git");
        let repo = create(&path).unwrap();
        let odb = repo.odb().unwrap();
        pack_blob(&path, &odb, b"kept");
        drop(odb);
        drop(repo);
        let pack_dir = path.join("objects/pack");
        let before = names(&pack_dir);
        for left in ["pack_git2_Ab12Cd", "tmp_pack_9xYz", "tmp_idx_9xYz"] {
            std::fs::write(pack_dir.join(left), b"half a pack").unwrap();
        }
        let repo = open_or_create(&path).unwrap();
        assert_eq!(names(&pack_dir), before, "only the leftovers go");
        assert_eq!(pack_count(&path), 1);
        let kept = git2::Oid::hash_object(git2::ObjectType::Blob, b"kept").unwrap();
        assert!(repo.odb().unwrap().exists(kept));
    }

    /// Writes `bytes` into the cache as a pack of one blob, as a delivery's build does.
    fn pack_blob(path: &Path, odb: &git2::Odb<'_>, bytes: &[u8]) {
        let mut spool = super::super::pack::Spool::new(path).unwrap();
        spool.add(odb, &Default::default(), bytes).unwrap();
        super::super::pack::commit(path, odb, vec![spool]).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_cache_bounds_the_delta_search_new_or_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.git");
        create(&path).unwrap();
        assert_eq!(window_memory(&path), Some(DELTA_WINDOW_MEMORY));
        // A cache from before the setting (or changed by hand) gets it on open.
        git2::Config::open(&path.join("config"))
            .unwrap()
            .remove("pack.windowMemory")
            .unwrap();
        assert_eq!(window_memory(&path), None);
        let repo = open_or_create(&path).unwrap();
        assert_eq!(window_memory(&path), Some(DELTA_WINDOW_MEMORY));
        // And libgit2's pack builder reads it from the configuration the cache has.
        assert_eq!(
            repo.config().unwrap().get_i64("pack.windowMemory").unwrap(),
            DELTA_WINDOW_MEMORY
        );
    }
}
