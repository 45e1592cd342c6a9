//! What a delivery changes, for reports and for `dry-run --diff`.

use courier_core::tokens::{MAX_FILE_BYTES, TokenDiff, TokenDiffBuilder};
use git2::{Delta, DiffFormat, DiffOptions, Repository, Tree};
use serde::Serialize;

use super::error::GitError;
use super::transport::Cancel;
use super::tree::cache_fault;

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

pub(crate) fn changes(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
) -> Result<FileChanges, GitError> {
    let diff = repo
        .diff_tree_to_tree(Some(old), Some(new), Some(&mut options()))
        .map_err(cache_fault)?;
    let mut out = FileChanges::default();
    for delta in diff.deltas() {
        let path = |f: git2::DiffFile<'_>| {
            f.path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match delta.status() {
            Delta::Added => out.added.push(path(delta.new_file())),
            Delta::Deleted => out.deleted.push(path(delta.old_file())),
            _ => out.modified.push(path(delta.new_file())),
        }
    }
    out.added.sort();
    out.modified.sort();
    out.deleted.sort();
    Ok(out)
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

/// The token changes from `old` to `new`: each changed file a token reader knows is
/// loaded on each side by the blob ids the tree diff gives (no lookup by path), read and
/// dropped before the next, so memory holds one file and the changes so far. A file over
/// the size limit is named, not loaded.
pub(crate) fn tokens(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
    cancel: &Cancel,
) -> Result<TokenDiff, GitError> {
    let diff = repo
        .diff_tree_to_tree(Some(old), Some(new), Some(&mut options()))
        .map_err(cache_fault)?;
    let odb = repo.odb().map_err(cache_fault)?;
    let mut builder = TokenDiffBuilder::new();
    for delta in diff.deltas() {
        let file = match delta.status() {
            Delta::Deleted => delta.old_file(),
            _ => delta.new_file(),
        };
        let Some(path) = file.path().and_then(|p| p.to_str()) else {
            continue;
        };
        if !TokenDiffBuilder::reads(path) {
            continue;
        }
        if cancel.is_cancelled() {
            return Err(GitError::Timeout {
                operation: "comparing tokens",
                after: std::time::Duration::ZERO,
            });
        }
        let side = |f: git2::DiffFile<'_>, present: bool| present.then(|| f.id());
        let before = side(delta.old_file(), delta.status() != Delta::Added);
        let after = side(delta.new_file(), delta.status() != Delta::Deleted);
        let mut largest = 0;
        for id in before.iter().chain(&after) {
            let (size, _) = odb.read_header(*id).map_err(cache_fault)?;
            largest = largest.max(size);
        }
        if largest > MAX_FILE_BYTES {
            builder.skip(path, largest as u64);
            continue;
        }
        let load = |id: Option<git2::Oid>| {
            id.map(|id| repo.find_blob(id).map_err(cache_fault))
                .transpose()
        };
        let (before, after) = (load(before)?, load(after)?);
        builder.file(
            path,
            before.as_ref().map(git2::Blob::content),
            after.as_ref().map(git2::Blob::content),
        );
    }
    Ok(builder.finish())
}
