//! Building the new tree in the object database, without a checkout.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::Path;

use courier_core::paths::RelPath;
use git2::{AttrCheckFlags, ObjectType, Oid, Repository, Tree};

use super::error::GitError;
use super::pack;
use super::transport::Cancel;
use super::workers;

/// Regular, non-executable file: the only mode an export writes.
const FILE_MODE: i32 = 0o100644;
const TREE_MODE: i32 = 0o040000;

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub path: RelPath,
    pub size: u64,
    /// The file's git blob id when the source already knows it (the archive computes it
    /// while validating): a blob the cache holds is then used without reading the file.
    pub blob_id: Option<[u8; 20]>,
}

/// The files a delivery writes. Implemented for `courier_core::archive::Export`; the
/// workspace only needs the list of files and a way to stream each one.
pub trait ExportSource: Send + Sync + 'static {
    /// Every file (no directories), each path once.
    fn files(&self) -> Vec<ExportFile>;
    /// The bytes of `files()[index]`; exactly `size` of them.
    fn open_file(&self, index: usize) -> io::Result<Box<dyn Read + '_>>;
}

/// The export as nested directories of blob ids.
#[derive(Default, Debug)]
struct Dir {
    files: BTreeMap<String, Oid>,
    dirs: BTreeMap<String, Dir>,
}

impl Dir {
    fn insert(&mut self, path: &RelPath, oid: Oid) -> Result<(), GitError> {
        let parts: Vec<&str> = path.components().collect();
        let (name, parents) = parts.split_last().expect("RelPath is never empty");
        let mut dir = self;
        for part in parents {
            if dir.files.contains_key(*part) {
                return Err(GitError::other(
                    "export",
                    format!("{path}: a file and a directory share a name"),
                ));
            }
            dir = dir.dirs.entry((*part).to_owned()).or_default();
        }
        if dir.dirs.contains_key(*name) {
            return Err(GitError::other(
                "export",
                format!("{path}: a file and a directory share a name"),
            ));
        }
        dir.files.insert((*name).to_owned(), oid);
        Ok(())
    }
}

/// Below this many files, worker threads cost more than they save.
const PARALLEL_FILES: usize = 64;

/// Streams every export file into a blob (several files at once on several threads,
/// each with its own handle on the object database) and returns the files as a
/// directory tree. A file whose blob id the source knows is not read at all when the
/// cache holds that blob or `base_dir` (the base's directory at the delivery's path) has
/// it at the file's path; the blobs the cache lacks are written as one pack (see
/// [`pack`]).
fn write_blobs(
    repo: &Repository,
    export: &dyn ExportSource,
    base_dir: Option<&Tree<'_>>,
    cancel: &Cancel,
) -> Result<Dir, GitError> {
    let files = export.files();
    let held = match base_dir {
        Some(dir) => held_files(repo, dir, &files)?,
        None => Held::new(),
    };
    let path = repo.path().to_path_buf();
    let claimed = pack::Claimed::default();
    // One worker's share: its spool and the blob id of each file it took. Each opens its
    // own handle after the fetch, so each sees the fetch's pack.
    type Share = (pack::Spool, Vec<(usize, Oid)>);
    let results = workers::run(
        "writing the export",
        files.len(),
        PARALLEL_FILES,
        || super::cache::open(&path).map_err(cache_fault),
        |repo, queue| -> Result<Share, GitError> {
            let odb = repo.odb().map_err(cache_fault)?;
            let mut spool = pack::Spool::new(&path).map_err(spool_fault)?;
            let mut done = Vec::new();
            while let Some(index) = queue.take() {
                let file = &files[index];
                let oid = match unchanged(&held, file) {
                    Some(oid) => oid,
                    None => write_blob(&odb, &mut spool, &claimed, export, index, file, cancel)?,
                };
                done.push((index, oid));
            }
            Ok((spool, done))
        },
    );
    let mut oids = vec![Oid::ZERO_SHA1; files.len()];
    let mut spools = Vec::with_capacity(results.len());
    for result in results {
        let (spool, done) = result?;
        for (index, oid) in done {
            oids[index] = oid;
        }
        spools.push(spool);
    }
    pack::commit(&path, &repo.odb().map_err(cache_fault)?, spools).map_err(spool_fault)?;
    let mut root = Dir::default();
    for (file, oid) in files.iter().zip(oids) {
        root.insert(&file.path, oid)?;
    }
    Ok(root)
}

/// The file's blob id, if the base holds it unchanged at the same path: the remote has
/// it, and the push sends nothing for it (`outgoing.rs` skips what the parent has at the
/// same name), so the cache need not hold it, and a partial fetch never brought it.
fn unchanged(held: &Held, file: &ExportFile) -> Option<Oid> {
    let oid = Oid::from_bytes(&file.blob_id?).ok()?;
    (held.get(file.path.as_str()) == Some(&oid)).then_some(oid)
}

fn write_blob(
    odb: &git2::Odb<'_>,
    spool: &mut pack::Spool,
    claimed: &pack::Claimed,
    export: &dyn ExportSource,
    index: usize,
    file: &ExportFile,
    cancel: &Cancel,
) -> Result<Oid, GitError> {
    if cancel.is_cancelled() {
        return Err(GitError::Timeout {
            operation: "writing the export",
            after: std::time::Duration::ZERO,
        });
    }
    if let Some(id) = file.blob_id {
        // Most of an export that changed a little is already in the cache: those files
        // are not inflated again. A blob the cache lacks is read, hashed and written
        // below, so what lands in the cache is always what its id says.
        let oid = Oid::from_bytes(&id).map_err(cache_fault)?;
        if pack::known(odb, oid) {
            return Ok(oid);
        }
    }
    let size = usize::try_from(file.size)
        .map_err(|_| GitError::other("export", format!("{} is too large", file.path)))?;
    let export_err = |source: io::Error| GitError::Export {
        path: file.path.to_string(),
        source,
    };
    let short = |copied: u64| {
        export_err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("entry has {copied} bytes, the archive said {}", file.size),
        ))
    };
    let mut reader = export.open_file(index).map_err(export_err)?;
    if size <= IN_MEMORY_BLOB {
        // Whole, so it is hashed before anything is compressed: a blob the cache
        // already holds (most of an export that changed a little) is not written
        // again. A stream is compressed as it is read, and taken back if known.
        let mut bytes = Vec::with_capacity(size);
        reader
            .take(file.size + 1)
            .read_to_end(&mut bytes)
            .map_err(export_err)?;
        if bytes.len() != size {
            return Err(short(bytes.len() as u64));
        }
        return spool
            .add(odb, claimed, &bytes)
            .map(|added| added.oid())
            .map_err(spool_fault);
    }
    match spool.add_stream(odb, claimed, file.size, &mut reader) {
        Ok(added) => Ok(added.oid()),
        Err(pack::StreamError::Read(e)) => Err(export_err(e)),
        Err(pack::StreamError::Length(copied)) => Err(short(copied)),
        Err(pack::StreamError::Write(e)) => Err(spool_fault(e)),
    }
}

fn spool_fault(err: io::Error) -> GitError {
    GitError::CacheCorrupt {
        path: std::path::PathBuf::new(),
        detail: format!("writing the export's pack: {err}"),
    }
}

/// Files up to this size are read whole before they are written (see [`write_blob`]);
/// larger ones are streamed, so memory stays bounded by this times the writer threads.
const IN_MEMORY_BLOB: usize = 1 << 20;

/// Writes `dir` as a tree. With `existing` (overlay), the files and directories of
/// `existing` that the export does not name stay. A name the export uses replaces
/// whatever was there, whatever its type: a file replaces a directory or a symlink,
/// a directory replaces a file.
///
/// The tree objects are written here, not through libgit2's tree builder, which refuses
/// an entry whose object the cache lacks: a file the base holds unchanged is named by
/// its id only (see [`write_blob`]).
fn write_dir(
    repo: &Repository,
    existing: Option<&Tree<'_>>,
    dir: &Dir,
) -> Result<Option<Oid>, GitError> {
    let mut entries: BTreeMap<Vec<u8>, (i32, Oid)> = existing
        .map(|tree| {
            tree.iter()
                .map(|e| (e.name_bytes().to_vec(), (e.filemode(), e.id())))
                .collect()
        })
        .unwrap_or_default();
    for (name, oid) in &dir.files {
        entries.insert(name.as_bytes().to_vec(), (FILE_MODE, *oid));
    }
    for (name, child) in &dir.dirs {
        let existing_child = match existing.and_then(|t| t.get_name(name)) {
            Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                Some(repo.find_tree(entry.id()).map_err(cache_fault)?)
            }
            _ => None,
        };
        match write_dir(repo, existing_child.as_ref(), child)? {
            Some(oid) => entries.insert(name.as_bytes().to_vec(), (TREE_MODE, oid)),
            None => entries.remove(name.as_bytes()),
        };
    }
    if entries.is_empty() {
        return Ok(None);
    }
    write_tree(repo, &entries).map(Some)
}

/// Writes a tree object of `entries` (name to mode and id), in git's order: by name,
/// a directory's name compared as if it ended with `/`.
fn write_tree(repo: &Repository, entries: &BTreeMap<Vec<u8>, (i32, Oid)>) -> Result<Oid, GitError> {
    let mut sorted: Vec<(&Vec<u8>, &(i32, Oid))> = entries.iter().collect();
    let key = |name: &[u8], mode: i32| {
        let mut key = name.to_vec();
        if mode == TREE_MODE {
            key.push(b'/');
        }
        key
    };
    sorted.sort_by_cached_key(|(name, (mode, _))| key(name, *mode));
    let mut bytes = Vec::with_capacity(sorted.len() * 48);
    for (name, (mode, oid)) in sorted {
        bytes.extend_from_slice(format!("{mode:o} ").as_bytes());
        bytes.extend_from_slice(name);
        bytes.push(0);
        bytes.extend_from_slice(oid.as_bytes());
    }
    let odb = repo.odb().map_err(cache_fault)?;
    odb.write(ObjectType::Tree, &bytes).map_err(cache_fault)
}

fn remove(builder: &mut git2::TreeBuilder<'_>, name: &str) -> Result<(), GitError> {
    if builder.get(name).map_err(cache_fault)?.is_some() {
        builder.remove(name).map_err(cache_fault)?;
    }
    Ok(())
}

/// `tree` with the entry at `path` replaced by `new` (`None`: removed). Directories
/// on the way are created (replacing a file of the same name) or, once empty,
/// removed, since git has no empty directories.
fn splice(
    repo: &Repository,
    tree: Option<&Tree<'_>>,
    path: &[&str],
    new: Option<Oid>,
) -> Result<Option<Oid>, GitError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(new);
    };
    let child = match tree.and_then(|t| t.get_name(first)) {
        Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
            Some(repo.find_tree(entry.id()).map_err(cache_fault)?)
        }
        _ => None,
    };
    let mut builder = repo.treebuilder(tree).map_err(cache_fault)?;
    match splice(repo, child.as_ref(), rest, new)? {
        Some(oid) => builder
            .insert(first, oid, TREE_MODE)
            .map(drop)
            .map_err(cache_fault)?,
        None => remove(&mut builder, first)?,
    }
    if builder.is_empty() {
        return Ok(None);
    }
    builder.write().map(Some).map_err(cache_fault)
}

/// The tree after delivering `export` at `relative_path` of `base`.
pub(crate) fn build(
    repo: &Repository,
    base: &Tree<'_>,
    relative_path: Option<&RelPath>,
    purge: bool,
    export: &dyn ExportSource,
    cancel: &Cancel,
) -> Result<Oid, GitError> {
    let components: Vec<&str> = relative_path
        .map(|p| p.components().collect())
        .unwrap_or_default();
    let at_path = if components.is_empty() {
        Some(base.clone())
    } else {
        match base.get_path(Path::new(relative_path.map(RelPath::as_str).unwrap_or(""))) {
            Ok(entry) if entry.kind() == Some(ObjectType::Tree) => {
                Some(repo.find_tree(entry.id()).map_err(cache_fault)?)
            }
            _ => None,
        }
    };
    let files = write_blobs(repo, export, at_path.as_ref(), cancel)?;
    let existing = if purge { None } else { at_path };
    let subtree = write_dir(repo, existing.as_ref(), &files)?;
    let root = splice(repo, Some(base), &components, subtree)?;
    match root {
        Some(oid) => Ok(oid),
        // Everything was removed: the empty tree.
        None => repo
            .treebuilder(None)
            .and_then(|b| b.write())
            .map_err(cache_fault),
    }
}

/// Blob ids the base holds below the delivery's directory, by path below it: the files
/// the remote has where the export writes.
type Held = HashMap<String, Oid>;

/// The files of `dir` (the base's directory at the delivery's path) in the directories
/// `files` write to; only those are ever looked up, whatever else the base holds.
fn held_files(repo: &Repository, dir: &Tree<'_>, files: &[ExportFile]) -> Result<Held, GitError> {
    let parents: BTreeSet<&str> = files
        .iter()
        .map(|f| {
            f.path
                .as_str()
                .rsplit_once('/')
                .map_or("", |(parent, _)| parent)
        })
        .collect();
    let mut held = Held::new();
    for parent in parents {
        let tree = if parent.is_empty() {
            dir.clone()
        } else {
            match dir.get_path(Path::new(parent)) {
                Ok(entry) if entry.kind() == Some(ObjectType::Tree) => {
                    repo.find_tree(entry.id()).map_err(cache_fault)?
                }
                _ => continue,
            }
        };
        for entry in tree.iter() {
            if entry.kind() == Some(ObjectType::Blob)
                && let Ok(name) = entry.name()
            {
                let path = if parent.is_empty() {
                    name.to_owned()
                } else {
                    format!("{parent}/{name}")
                };
                held.insert(path, entry.id());
            }
        }
    }
    Ok(held)
}

/// Paths that configure CI or submodules: an export must not add, change or delete
/// them unless the target opts in. Compared without case, since a case-insensitive
/// checkout would make `.GitHub/Workflows` the same directory.
pub(crate) fn is_protected(path: &str) -> bool {
    let parts: Vec<String> = path.split('/').map(str::to_ascii_lowercase).collect();
    if parts
        .windows(2)
        .any(|w| w[0] == ".github" && w[1] == "workflows")
    {
        return true;
    }
    parts.last().is_some_and(|name| {
        matches!(
            name.as_str(),
            ".gitlab-ci.yml" | "azure-pipelines.yml" | ".gitmodules"
        )
    })
}

/// The `.gitattributes` blobs of `tree` on the way to each of `paths` (at the root and in
/// every directory above them).
pub(crate) fn attribute_files(tree: &Tree<'_>, paths: &[String]) -> Vec<git2::Oid> {
    let mut dirs = BTreeSet::new();
    for path in paths {
        let mut prefix = String::new();
        dirs.insert(String::new());
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            dirs.insert(prefix.clone());
        }
    }
    dirs.iter()
        .filter_map(|dir| {
            let file = if dir.is_empty() {
                ".gitattributes".to_owned()
            } else {
                format!("{dir}/.gitattributes")
            };
            tree.get_path(Path::new(&file)).ok().map(|entry| entry.id())
        })
        .collect()
}

/// Refuses if a path the delivery writes is stored with Git LFS according to the
/// `.gitattributes` of the new tree (at the root or in any directory on the way).
///
/// Method: the `.gitattributes` blobs on the way to each written path are read from
/// the new tree; if none mentions `lfs` (the usual case) there is nothing to check.
/// Otherwise the new tree is loaded into an in-memory index set on the cache
/// repository, and libgit2's own attribute lookup answers for each path from that
/// index only (no working tree, no system file), so the pattern rules are git's.
pub(crate) fn check_lfs(
    repo: &Repository,
    new_tree: &Tree<'_>,
    written: &[String],
) -> Result<(), GitError> {
    let mut mentions_lfs = false;
    for id in attribute_files(new_tree, written) {
        // A blob missing here is a damaged cache: the plan fetched these.
        let blob = repo.find_blob(id).map_err(cache_fault)?;
        mentions_lfs |= blob.content().windows(3).any(|w| w == b"lfs");
    }
    if !mentions_lfs {
        return Ok(());
    }
    let mut index = git2::Index::new().map_err(cache_fault)?;
    index.read_tree(new_tree).map_err(cache_fault)?;
    repo.set_index(&mut index).map_err(cache_fault)?;
    for path in written {
        let filter = repo
            .get_attr(
                Path::new(path),
                "filter",
                AttrCheckFlags::INDEX_ONLY | AttrCheckFlags::NO_SYSTEM,
            )
            .map_err(|e| GitError::other("reading .gitattributes", e.message()))?;
        if filter == Some("lfs") {
            return Err(GitError::Lfs { path: path.clone() });
        }
    }
    Ok(())
}

/// A libgit2 failure on local objects: the cache may be damaged.
pub(crate) fn cache_fault(err: git2::Error) -> GitError {
    GitError::CacheCorrupt {
        path: std::path::PathBuf::new(),
        detail: err.message().to_owned(),
    }
}

/// The validated archive from the download step.
impl ExportSource for courier_core::archive::Export {
    fn files(&self) -> Vec<ExportFile> {
        self.entries()
            .iter()
            .map(|e| ExportFile {
                path: e.path.clone(),
                size: e.size,
                blob_id: Some(e.git_blob_id()),
            })
            .collect()
    }

    fn open_file(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
        let entry = self.entries().get(index).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no export entry {index}"))
        })?;
        let reader = self.open_entry(entry).map_err(io::Error::other)?;
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// One file whose archive entry says `said` bytes and holds `bytes`.
    struct Lying {
        said: u64,
        bytes: Vec<u8>,
    }

    impl ExportSource for Lying {
        fn files(&self) -> Vec<ExportFile> {
            vec![ExportFile {
                path: RelPath::parse("a.css").unwrap(),
                size: self.said,
                blob_id: None,
            }]
        }
        fn open_file(&self, _: usize) -> io::Result<Box<dyn Read + '_>> {
            Ok(Box::new(&self.bytes[..]))
        }
    }

    #[test]
    fn an_entry_not_of_its_stated_size_is_refused_small_or_large() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let cancel = Cancel::new(Instant::now() + Duration::from_secs(60));
        let large = IN_MEMORY_BLOB as u64 + 10;
        for (said, held) in [(5, 3), (5, 7), (large, large - 1), (large, large + 1)] {
            let export = Lying {
                said,
                bytes: vec![b'x'; held as usize],
            };
            let err = write_blobs(&repo, &export, None, &cancel).unwrap_err();
            assert!(err.to_string().contains("a.css"), "{said}/{held}: {err}");
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("objects/pack"))
                .unwrap()
                .count(),
            0,
            "a refused export leaves no pack"
        );
        // The right size is written, whole or streamed, as git hashes it.
        for size in [5, large] {
            let export = Lying {
                said: size,
                bytes: vec![b'x'; size as usize],
            };
            let dir = write_blobs(&repo, &export, None, &cancel).unwrap();
            let oid = dir.files["a.css"];
            let expected = Oid::hash_object(ObjectType::Blob, &export.bytes).unwrap();
            assert_eq!(oid, expected);
            let odb = repo.odb().unwrap();
            let object = odb.read(oid).unwrap();
            assert_eq!(object.data(), &export.bytes[..]);
        }
    }

    /// The fetch writes its pack through a handle of its own, after this repository's
    /// object database was loaded: the blobs it brought are found, not written again.
    /// (This passes without `write_blobs`' explicit refresh too: libgit2 found the new
    /// pack by itself here, so the refresh is a safeguard, not shown to be needed.)
    #[test]
    fn a_blob_packed_through_another_handle_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let cancel = Cancel::new(Instant::now() + Duration::from_secs(60));
        let export = Lying {
            said: 5,
            bytes: b"known".to_vec(),
        };
        // Loads this handle's object database while no pack exists yet.
        assert!(!repo.odb().unwrap().exists(Oid::ZERO_SHA1));
        let other = Repository::open_bare(dir.path()).unwrap();
        let other_odb = other.odb().unwrap();
        let mut spool = pack::Spool::new(dir.path()).unwrap();
        spool
            .add(&other_odb, &pack::Claimed::default(), &export.bytes)
            .unwrap();
        pack::commit(dir.path(), &other_odb, vec![spool]).unwrap();
        assert_eq!(super::super::cache::pack_count(dir.path()), 1);

        let written = write_blobs(&repo, &export, None, &cancel).unwrap();
        assert_eq!(
            written.files["a.css"],
            Oid::hash_object(ObjectType::Blob, b"known").unwrap()
        );
        assert_eq!(
            super::super::cache::pack_count(dir.path()),
            1,
            "the known blob was written again"
        );
    }

    /// Files with the blob id their source declares, counting which files are read.
    struct Declared {
        files: Vec<(&'static str, &'static [u8], Option<Oid>)>,
        opened: std::sync::Mutex<Vec<usize>>,
    }

    impl ExportSource for Declared {
        fn files(&self) -> Vec<ExportFile> {
            self.files
                .iter()
                .map(|(path, bytes, id)| ExportFile {
                    path: RelPath::parse(path).unwrap(),
                    size: bytes.len() as u64,
                    blob_id: id.map(|id| id.as_bytes().try_into().unwrap()),
                })
                .collect()
        }
        fn open_file(&self, index: usize) -> io::Result<Box<dyn Read + '_>> {
            self.opened.lock().unwrap().push(index);
            Ok(Box::new(self.files[index].1))
        }
    }

    /// Trees are written by hand (libgit2's builder refuses entries the cache lacks):
    /// byte for byte what libgit2 writes, in git's order, where `a/` (a directory) sorts
    /// after `a.b` and `a-b` but before `a0`, and every mode is kept.
    #[test]
    fn a_tree_written_by_hand_is_the_tree_libgit2_writes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let other = repo.blob(b"y").unwrap();
        let sub = {
            let mut builder = repo.treebuilder(None).unwrap();
            builder.insert("f", blob, FILE_MODE).unwrap();
            builder.write().unwrap()
        };
        let entries: Vec<(&str, i32, Oid)> = vec![
            ("a", TREE_MODE, sub),
            ("a.b", FILE_MODE, blob),
            ("a-b", 0o100755, other),
            ("a0", FILE_MODE, blob),
            ("ab", TREE_MODE, sub),
            ("ab.c", 0o120000, other),
            ("B", FILE_MODE, other),
            ("\u{e9}", FILE_MODE, blob),
        ];
        let mut builder = repo.treebuilder(None).unwrap();
        let mut by_name = BTreeMap::new();
        for (name, mode, oid) in &entries {
            builder.insert(name, *oid, *mode).unwrap();
            by_name.insert(name.as_bytes().to_vec(), (*mode, *oid));
        }
        let expected = builder.write().unwrap();
        assert_eq!(write_tree(&repo, &by_name).unwrap(), expected);
        let tree = repo.find_tree(expected).unwrap();
        let order: Vec<String> = tree.iter().map(|e| e.name().unwrap().to_owned()).collect();
        assert_eq!(
            order,
            ["B", "a-b", "a.b", "a", "a0", "ab.c", "ab", "\u{e9}"]
        );
    }

    /// A file whose declared blob the cache holds is not read at all (most of an export
    /// that changed a little); one the cache lacks is read and hashed, so a wrong
    /// declared id never names the bytes written.
    #[test]
    fn a_declared_blob_the_cache_holds_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let cancel = Cancel::new(Instant::now() + Duration::from_secs(60));
        let held = repo.blob(b"held").unwrap();
        let wrong = Oid::hash_object(ObjectType::Blob, b"not these bytes").unwrap();
        let export = Declared {
            files: vec![
                ("held.css", b"held", Some(held)),
                ("new.css", b"new", Some(wrong)),
                ("plain.css", b"plain", None),
            ],
            opened: Default::default(),
        };
        let written = write_blobs(&repo, &export, None, &cancel).unwrap();
        assert_eq!(written.files["held.css"], held);
        let new = Oid::hash_object(ObjectType::Blob, b"new").unwrap();
        assert_eq!(written.files["new.css"], new);
        assert_eq!(repo.odb().unwrap().read(new).unwrap().data(), b"new");
        assert!(!repo.odb().unwrap().exists(wrong));
        let mut opened = export.opened.lock().unwrap().clone();
        opened.sort_unstable();
        assert_eq!(opened, [1, 2], "the held file was read again");
    }

    /// The validated archive hands the build the ids validation computed, which is what
    /// lets [`write_blob`] skip the files the cache holds.
    #[test]
    fn the_archive_declares_each_file_by_its_blob_id() {
        use std::io::Write as _;
        let files: [(&str, &[u8]); 3] = [("a.css", b"a {}\n"), ("d/b.json", b"{}"), ("e", b"")];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, bytes) in files {
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        let export = courier_core::archive::Export::open(
            &path,
            &courier_core::archive::ArchiveLimits::default(),
        )
        .unwrap();
        let declared: Vec<(String, Option<Oid>)> = ExportSource::files(&export)
            .into_iter()
            .map(|f| {
                (
                    f.path.to_string(),
                    f.blob_id.map(|id| Oid::from_bytes(&id).unwrap()),
                )
            })
            .collect();
        let expected: Vec<(String, Option<Oid>)> = files
            .iter()
            .map(|(name, bytes)| {
                let id = Oid::hash_object(ObjectType::Blob, bytes).unwrap();
                ((*name).to_owned(), Some(id))
            })
            .collect();
        assert_eq!(declared, expected);
    }

    #[test]
    fn protected_paths_at_any_level() {
        for p in [
            ".github/workflows/ci.yml",
            "src/.github/workflows/x.yml",
            ".GitHub/Workflows/ci.yml",
            ".gitlab-ci.yml",
            "sub/.gitlab-ci.yml",
            "azure-pipelines.yml",
            "a/b/.gitmodules",
        ] {
            assert!(is_protected(p), "{p}");
        }
        for p in [
            ".github/CODEOWNERS",
            "workflows/.github",
            "src/gitlab-ci.yml",
            "tokens/colors.json",
        ] {
            assert!(!is_protected(p), "{p}");
        }
    }
}
