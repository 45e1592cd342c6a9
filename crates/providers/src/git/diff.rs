//! What a delivery changes, for reports and for `dry-run --diff`.

use git2::{Delta, DiffFormat, DiffOptions, Repository, Tree};
use serde::Serialize;

use super::error::GitError;
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
