//! What a delivery changes, for reports and for `dry-run --diff`.

use courier_core::tokens::{MAX_FILE_BYTES, TokenDiff, TokenDiffBuilder};
use git2::{Blob, Delta, DiffFormat, DiffOptions, Oid, Repository, Tree};
use serde::Serialize;

use super::error::GitError;
use super::transport::Cancel;
use super::tree::cache_fault;
use super::workers::{self, Queue};

/// Paths (relative to the repository root, `/`-separated, sorted) a delivery adds,
/// modifies or deletes, comparing the base branch's tree with the new tree. A file
/// replaced by a directory (or the reverse) shows as a deletion plus additions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileChanges {
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub deleted: Vec<String>,
}

impl FileChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }

    /// Every path touched, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.added
            .iter()
            .chain(&self.modified)
            .chain(&self.deleted)
            .map(String::as_str)
    }
}

fn options() -> DiffOptions {
    let mut opts = DiffOptions::new();
    // Exact comparison: no rename detection, whitespace and line endings as they are.
    opts.include_typechange(false).context_lines(3);
    opts
}

/// A changed file a token reader knows, by its blobs on each side (`None`: absent there).
#[derive(Debug, Clone)]
pub(crate) struct TokenFile {
    path: String,
    before: Option<Oid>,
    after: Option<Oid>,
}

/// The paths the delivery changes, and among them the token files with their blob ids,
/// from one tree diff (the token diff reads those blobs later without diffing again),
/// and the blobs the delivery replaces or deletes: the ones read later (token diff,
/// `dry-run`'s diff, deltas in the push), which a partial fetch left on the server.
pub(crate) fn changes(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
) -> Result<(FileChanges, Vec<TokenFile>, Vec<Oid>), GitError> {
    let diff = repo
        .diff_tree_to_tree(Some(old), Some(new), Some(&mut options()))
        .map_err(cache_fault)?;
    let mut out = FileChanges::default();
    let mut token_files = Vec::new();
    let mut replaced = Vec::new();
    for delta in diff.deltas() {
        let status = delta.status();
        if status != Delta::Added && delta.old_file().mode() != git2::FileMode::Commit {
            replaced.push(delta.old_file().id());
        }
        let file = match status {
            Delta::Deleted => delta.old_file(),
            _ => delta.new_file(),
        };
        let path = file
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if TokenDiffBuilder::reads(&path) {
            token_files.push(TokenFile {
                path: path.clone(),
                before: (status != Delta::Added).then(|| delta.old_file().id()),
                after: (status != Delta::Deleted).then(|| delta.new_file().id()),
            });
        }
        match status {
            Delta::Added => out.added.push(path),
            Delta::Deleted => out.deleted.push(path),
            _ => out.modified.push(path),
        }
    }
    out.added.sort();
    out.modified.sort();
    out.deleted.sort();
    Ok((out, token_files, replaced))
}

/// One path a delivery changes, as a forge's tree API takes it: built on the base tree,
/// naming only what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeChange {
    /// Relative to the repository root, `/`-separated.
    pub path: String,
    /// git's mode of the entry (`0o100644`, `0o100755`, `0o120000` symlink, `0o160000`
    /// submodule); for a deletion, the mode it had.
    pub mode: u32,
    /// What the path holds now; `None`: it is deleted.
    pub object: Option<ChangedObject>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedObject {
    /// The blob's id (a submodule's: its commit's), 40 hex digits.
    pub id: String,
    /// The blob's size in bytes; 0 for a submodule.
    pub size: u64,
    /// The base branch already has this object at this path (only the mode changed), so
    /// the forge has it and it need not be sent.
    pub on_base: bool,
}

impl TreeChange {
    pub fn is_submodule(&self) -> bool {
        self.mode == u32::from(git2::FileMode::Commit)
    }
}

/// Every path from `old` to `new` with what it holds on the new side, in path order.
pub(crate) fn tree_changes(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
) -> Result<Vec<TreeChange>, GitError> {
    let diff = repo
        .diff_tree_to_tree(Some(old), Some(new), Some(&mut options()))
        .map_err(cache_fault)?;
    let odb = repo.odb().map_err(cache_fault)?;
    let mut changes = Vec::new();
    for delta in diff.deltas() {
        let deleted = delta.status() == Delta::Deleted;
        let file = if deleted {
            delta.old_file()
        } else {
            delta.new_file()
        };
        let path = file
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mode = u32::from(file.mode());
        let object = if deleted {
            None
        } else {
            let id = file.id();
            let size = if mode == u32::from(git2::FileMode::Commit) {
                0
            } else {
                odb.read_header(id).map_err(cache_fault)?.0 as u64
            };
            Some(ChangedObject {
                id: id.to_string(),
                size,
                on_base: delta.status() == Delta::Modified && delta.old_file().id() == id,
            })
        };
        changes.push(TreeChange { path, mode, object });
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}

/// A unified diff (`git diff` format, 3 lines of context) from `old` to `new`. Binary
/// files are named ("Binary files a/x and b/x differ"), not printed.
pub(crate) fn unified(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
) -> Result<String, GitError> {
    let diff = repo
        .diff_tree_to_tree(Some(old), Some(new), Some(&mut options()))
        .map_err(cache_fault)?;
    let mut text = Vec::new();
    diff.print(DiffFormat::Patch, |_delta, _hunk, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            text.push(line.origin() as u8);
        }
        text.extend_from_slice(line.content());
        true
    })
    .map_err(cache_fault)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Below this many changed token files, one thread reads them all.
const PARALLEL_FILES: usize = 32;

/// The token changes over the changed token `files`: each is loaded on each side by the
/// blob ids the plan's tree diff gave (no lookup by path, no second diff). Loading
/// (inflating each blob) and reading (parsing JSON, CSS, ...) are both CPU work, so every
/// core takes files in turn ([`workers`]), holding one file at a time, both sides; a
/// file over the size limit is named, not loaded.
pub(crate) fn tokens(
    open: impl Fn() -> Result<Repository, GitError> + Sync,
    files: &[TokenFile],
    cancel: &Cancel,
) -> Result<TokenDiff, GitError> {
    let parts = workers::run(
        "comparing tokens",
        files.len(),
        PARALLEL_FILES,
        open,
        |repo, queue| read_files(repo, files, queue, cancel),
    );
    let mut builder = TokenDiffBuilder::new();
    for part in parts {
        // `finish` sorts what the workers found, so the order they took files in is lost.
        builder.merge(part?);
    }
    Ok(builder.finish())
}

/// One worker's share: the files it took from `queue`.
fn read_files(
    repo: &Repository,
    files: &[TokenFile],
    queue: &Queue,
    cancel: &Cancel,
) -> Result<TokenDiffBuilder, GitError> {
    let odb = repo.odb().map_err(cache_fault)?;
    let mut part = TokenDiffBuilder::new();
    while let Some(index) = queue.take() {
        let TokenFile {
            path,
            before,
            after,
        } = &files[index];
        if cancel.is_cancelled() {
            return Err(GitError::Timeout {
                operation: "comparing tokens",
                after: std::time::Duration::ZERO,
            });
        }
        // The size from the object header, so an oversized file is never loaded.
        let mut largest = 0;
        for id in before.iter().chain(after) {
            let (size, _) = odb.read_header(*id).map_err(cache_fault)?;
            largest = largest.max(size);
        }
        if largest > MAX_FILE_BYTES {
            part.skip(path, largest as u64);
            continue;
        }
        let load = |id: &Option<Oid>| {
            id.map(|id| repo.find_blob(id).map_err(cache_fault))
                .transpose()
        };
        let (old, new) = (load(before)?, load(after)?);
        part.file(
            path,
            old.as_ref().map(Blob::content),
            new.as_ref().map(Blob::content),
        );
    }
    Ok(part)
}
