//! What a push over HTTP sends: the objects the remote lacks, as one pack Courier writes
//! itself (see `receive_pack.rs` for the conversation).
//!
//! libgit2's pack builder was most of a cold delivery: for 2,000 new files it compared
//! every blob with its neighbours whatever their names (39% of the samples, finding
//! nothing in most exports) and compressed everything on one thread at level 6. Here:
//! - a changed file goes as a delta against its previous version, which the remote has
//!   (a thin pack, as `git push` sends; libgit2 cannot);
//! - a new file is compared only with the few files sorted just before it (same
//!   extension and name first, so an exporter's per-theme or per-platform copies meet),
//!   and the encoder gives up early on data with nothing in common;
//! - blobs are read, encoded and compressed on every core.

use std::cmp::Reverse;
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::path::Path;

use flate2::Compression;
use git2::{ObjectType, Oid, Repository};

use super::cache;
use super::delta;
use super::error::GitError;
use super::pack::{self, OBJ_BLOB, OBJ_COMMIT, OBJ_TREE, Spool, Stored};
use super::transport::Cancel;
use super::workers;

/// A new file is compared with at most this many files sorted before it.
const WINDOW: usize = 3;
/// Longest delta chain: each link costs the reader one more inflate and apply.
const MAX_DEPTH: u8 = 10;
/// Blobs larger than this go whole: encoding holds base, its index (twice its size) and
/// target in memory, on every worker.
const MAX_DELTA_BLOB: usize = 4 << 20;
/// Blobs larger than this are not kept as bases for the next ones ([`WINDOW`] of them
/// are held per worker).
const MAX_WINDOW_BLOB: usize = 1 << 20;
/// Blobs sorted next to each other go to the same worker in runs of this many (a delta
/// names its base by position in the same spool).
const RUN: usize = 64;
/// Pack entries are compressed at zlib's level 4. Measured on a fresh 2,000-file export
/// (20 MB of text): level 6 (git's default) wrote 5.44 MB in 330-400 ms, level 4 5.58 MB
/// in 245-310 ms, level 1 8.25 MB in 200-220 ms. A slow uplink waits for the bytes,
/// so not level 1.
const LEVEL: Compression = Compression::new(4);

/// A blob the remote lacks, its file name in the new tree, and the version it replaces
/// (which the remote has).
struct NewBlob {
    oid: Oid,
    name: Vec<u8>,
    replaces: Option<Oid>,
}

/// Commits and trees (with their pack entry type), and blobs.
type NewObjects = (Vec<(Oid, u8)>, Vec<NewBlob>);

/// The objects reachable from `tip` that are not reachable from `known` (commits the
/// remote advertised): new commits and, for each, the trees and blobs that differ at
/// the same path from both its first parent's tree and `replaced`'s (the commit the
/// pushed branch points at on the remote, whose objects the remote has too: a rebuilt
/// branch mostly holds them again). An object the remote holds elsewhere may be sent
/// again, which costs bytes, never correctness.
fn new_objects(
    repo: &Repository,
    tip: Oid,
    known: &[Oid],
    replaced: Option<Oid>,
) -> Result<NewObjects, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    for oid in known {
        if repo.find_commit(*oid).is_ok() {
            walk.hide(*oid)?;
        }
    }
    let replaced_tree = replaced
        .and_then(|oid| repo.find_commit(oid).ok())
        .map(|commit| commit.tree_id());
    let mut others = Vec::new();
    let mut blobs = Vec::new();
    let mut seen = HashSet::new();
    for commit in walk {
        let commit = repo.find_commit(commit?)?;
        others.push((commit.id(), OBJ_COMMIT));
        let mut before = Vec::new();
        if let Some(parent) = commit.parent_ids().next() {
            before.push(repo.find_commit(parent)?.tree_id());
        }
        before.extend(replaced_tree);
        let mut walk = TreeWalk {
            repo,
            seen: &mut seen,
            others: &mut others,
            blobs: &mut blobs,
        };
        walk.walk(commit.tree_id(), &before)?;
    }
    Ok((others, blobs))
}

struct TreeWalk<'a> {
    repo: &'a Repository,
    seen: &'a mut HashSet<Oid>,
    others: &'a mut Vec<(Oid, u8)>,
    blobs: &'a mut Vec<NewBlob>,
}

impl TreeWalk<'_> {
    /// Adds `tree` and what under it differs from every tree of `before` (the same
    /// directory in commits the remote has), skipping whole subtrees found there.
    fn walk(&mut self, tree: Oid, before: &[Oid]) -> Result<(), git2::Error> {
        if before.contains(&tree) || !self.seen.insert(tree) {
            return Ok(());
        }
        self.others.push((tree, OBJ_TREE));
        let new = self.repo.find_tree(tree)?;
        let old = before
            .iter()
            .map(|oid| self.repo.find_tree(*oid))
            .collect::<Result<Vec<_>, _>>()?;
        for entry in new.iter() {
            let name = entry.name_bytes();
            let previous: Vec<(Oid, Option<ObjectType>)> = old
                .iter()
                .filter_map(|t| t.get_name_bytes(name))
                .map(|e| (e.id(), e.kind()))
                .collect();
            if previous.iter().any(|(id, _)| *id == entry.id()) {
                continue;
            }
            let was = |kind| {
                previous
                    .iter()
                    .filter(move |(_, k)| *k == Some(kind))
                    .map(|(id, _)| *id)
            };
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    let before: Vec<Oid> = was(ObjectType::Tree).collect();
                    self.walk(entry.id(), &before)?;
                }
                Some(ObjectType::Blob) if self.seen.insert(entry.id()) => {
                    self.blobs.push(NewBlob {
                        oid: entry.id(),
                        name: name.to_vec(),
                        replaces: was(ObjectType::Blob).next(),
                    });
                }
                // Submodules (commits) live in other repositories.
                _ => {}
            }
        }
        Ok(())
    }
}

/// The order that puts likely delta bases next to each other: by extension, then by
/// name, largest first (git sorts by a hash of the name's end, then by size).
fn sort_key(blob: &NewBlob, size: usize) -> (Vec<u8>, Vec<u8>, Reverse<usize>) {
    let name = &blob.name;
    let extension = name
        .iter()
        .rposition(|b| *b == b'.')
        .map(|i| name[i..].to_vec())
        .unwrap_or_default();
    (extension, name.clone(), Reverse(size))
}

/// A pack of what `tip` adds to the remote, in an unnamed temporary file in the cache at
/// `path`, with its length and number of objects.
pub(crate) struct Pack {
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) objects: u32,
}

/// The deltas the remote takes, from its capabilities.
#[derive(Clone, Copy)]
pub(crate) struct Allowed {
    /// Against objects the remote has and the pack does not (unless it says `no-thin`).
    pub(crate) thin: bool,
    /// Against an earlier entry of the pack, named by distance (`ofs-delta`).
    pub(crate) ofs_delta: bool,
}

/// Writes the pack that takes the remote from `known` to `tip`, for a branch that now
/// points at `replaced` on the remote.
pub(crate) fn write(
    repo: &Repository,
    path: &Path,
    tip: Oid,
    known: &[Oid],
    replaced: Option<Oid>,
    allowed: Allowed,
    cancel: &Cancel,
) -> Result<Pack, GitError> {
    let fault = |e: git2::Error| GitError::other("listing the objects to push", e.message());
    let spool_fault = |e: std::io::Error| GitError::other("writing the pack to push", e);
    let (others, blobs) = new_objects(repo, tip, known, replaced).map_err(fault)?;

    let odb = repo.odb().map_err(fault)?;
    let mut first = Spool::new(path).map_err(spool_fault)?;
    for (oid, kind) in others {
        let object = odb.read(oid).map_err(fault)?;
        first
            .push_entry(
                oid,
                Stored::Whole {
                    kind,
                    data: object.data(),
                },
                LEVEL,
            )
            .map_err(spool_fault)?;
    }

    let mut sized: Vec<(NewBlob, usize)> = Vec::with_capacity(blobs.len());
    for blob in blobs {
        let (size, _) = odb.read_header(blob.oid).map_err(fault)?;
        sized.push((blob, size));
    }
    sized.sort_by_cached_key(|(blob, size)| sort_key(blob, *size));
    let runs: Vec<&[(NewBlob, usize)]> = sized.chunks(RUN).collect();
    let results = workers::run(
        "writing the pack to push",
        runs.len(),
        2,
        || cache::open(path).map_err(fault),
        |repo, queue| {
            let odb = repo.odb().map_err(fault)?;
            let mut spool = Spool::new(path).map_err(spool_fault)?;
            while let Some(index) = queue.take() {
                if cancel.is_cancelled() {
                    return Err(GitError::Timeout {
                        operation: "writing the pack to push",
                        after: std::time::Duration::ZERO,
                    });
                }
                write_run(&odb, &mut spool, runs[index], allowed).map_err(|e| match e {
                    RunError::Git(e) => fault(e),
                    RunError::Io(e) => spool_fault(e),
                })?;
            }
            Ok(spool)
        },
    );
    let mut spools = vec![first];
    for result in results {
        spools.push(result?);
    }
    let mut file = tempfile::tempfile_in(path).map_err(spool_fault)?;
    let (len, objects) = pack::assemble(&mut file, spools).map_err(spool_fault)?;
    Ok(Pack { file, len, objects })
}

enum RunError {
    Git(git2::Error),
    Io(std::io::Error),
}

/// A blob written earlier in this run, kept as a delta base for the next ones.
struct Written {
    offset: u64,
    base: delta::Base,
    depth: u8,
}

/// Writes one run of sorted blobs, each as the smallest of: whole, a delta against the
/// version it replaces, a delta against one of the last [`WINDOW`] blobs of the run.
fn write_run(
    odb: &git2::Odb<'_>,
    spool: &mut Spool,
    run: &[(NewBlob, usize)],
    allowed: Allowed,
) -> Result<(), RunError> {
    let mut window: VecDeque<Written> = VecDeque::with_capacity(WINDOW);
    for (blob, _) in run {
        let object = odb.read(blob.oid).map_err(RunError::Git)?;
        let data = object.data();
        // A delta is worth it only well below the whole (which zlib shrinks too).
        let mut best: Option<(Vec<u8>, Option<&Written>)> = None;
        let mut limit = data.len() / 2;
        if data.len() <= MAX_DELTA_BLOB {
            // A partial fetch leaves the replaced head branch's blobs on the server: a
            // version the cache lacks is no base (the remote's copy cannot be read).
            if let Some(old) = blob.replaces.filter(|old| allowed.thin && odb.exists(*old)) {
                let base = odb.read(old).map_err(RunError::Git)?;
                if base.data().len() <= MAX_DELTA_BLOB {
                    let base = delta::Base::new(base.data().to_vec());
                    if let Some(d) = base.encode(data, limit) {
                        limit = d.len();
                        best = Some((d, None));
                    }
                }
            }
            for base in window.iter().rev().filter(|_| allowed.ofs_delta) {
                // Copies from a base a quarter of the size cover at most a quarter.
                if base.depth >= MAX_DEPTH || base.base.len() * 4 < data.len() {
                    continue;
                }
                if let Some(d) = base.base.encode(data, limit) {
                    limit = d.len();
                    best = Some((d, Some(base)));
                }
            }
        }
        let (stored, depth) = match &best {
            None => (
                Stored::Whole {
                    kind: OBJ_BLOB,
                    data,
                },
                0,
            ),
            Some((d, None)) => (
                Stored::DeltaOnRemote {
                    base: blob.replaces.expect("a delta on the remote has a base"),
                    delta: d,
                },
                1,
            ),
            Some((d, Some(base))) => (
                Stored::DeltaInSpool {
                    base_offset: base.offset,
                    delta: d,
                },
                base.depth + 1,
            ),
        };
        let offset = spool
            .push_entry(blob.oid, stored, LEVEL)
            .map_err(RunError::Io)?;
        if data.len() <= MAX_WINDOW_BLOB {
            if window.len() == WINDOW {
                window.pop_front();
            }
            window.push_back(Written {
                offset,
                base: delta::Base::new(data.to_vec()),
                depth,
            });
        }
    }
    Ok(())
}
