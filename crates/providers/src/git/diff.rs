//! What a delivery changes, for reports and for `dry-run --diff`.

use courier_core::tokens::{MAX_FILE_BYTES, TokenDiff, TokenDiffBuilder};
use git2::{Delta, DiffFormat, DiffOptions, Oid, Repository, Tree};
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

/// A changed file a token reader knows, by its blobs on each side (`None`: absent there).
#[derive(Debug, Clone)]
pub(crate) struct TokenFile {
    path: String,
    before: Option<Oid>,
    after: Option<Oid>,
}

/// The paths the delivery changes, and among them the token files with their blob ids,
/// from one tree diff (the token diff reads those blobs later without diffing again).
pub(crate) fn changes(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
) -> Result<(FileChanges, Vec<TokenFile>), GitError> {
    let diff = repo
        .diff_tree_to_tree(Some(old), Some(new), Some(&mut options()))
        .map_err(cache_fault)?;
    let mut out = FileChanges::default();
    let mut token_files = Vec::new();
    for delta in diff.deltas() {
        let status = delta.status();
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
    Ok((out, token_files))
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

/// Token files loaded and waiting to be read: at most this many bytes, or this many
/// files, at a time.
const WINDOW_BYTES: usize = 16 << 20;
const WINDOW_FILES: usize = 512;

/// One changed token file, both sides loaded.
struct Loaded {
    path: String,
    before: Option<Vec<u8>>,
    after: Option<Vec<u8>>,
}

/// The token changes over the changed token `files`: each is loaded on each side by the
/// blob ids the plan's tree diff gave (no lookup by path, no second diff). Files
/// are loaded in bounded windows and each window is read on every core, so memory holds
/// a window and the changes so far. A file over the size limit is named, not loaded.
pub(crate) fn tokens(
    repo: &Repository,
    files: &[TokenFile],
    cancel: &Cancel,
) -> Result<TokenDiff, GitError> {
    let odb = repo.odb().map_err(cache_fault)?;
    let mut builder = TokenDiffBuilder::new();
    let mut window: Vec<Loaded> = Vec::new();
    let mut window_bytes = 0;
    for TokenFile {
        path,
        before,
        after,
    } in files
    {
        let (path, before, after) = (path.as_str(), *before, *after);
        if cancel.is_cancelled() {
            return Err(GitError::Timeout {
                operation: "comparing tokens",
                after: std::time::Duration::ZERO,
            });
        }
        // The size from the object header, so an oversized file is never loaded.
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
            id.map(|id| Ok(repo.find_blob(id).map_err(cache_fault)?.content().to_vec()))
                .transpose()
        };
        let loaded = Loaded {
            path: path.to_owned(),
            before: load(before)?,
            after: load(after)?,
        };
        window_bytes +=
            loaded.before.as_ref().map_or(0, Vec::len) + loaded.after.as_ref().map_or(0, Vec::len);
        window.push(loaded);
        if window_bytes > WINDOW_BYTES || window.len() >= WINDOW_FILES {
            read_window(&mut builder, &mut window);
            window_bytes = 0;
        }
    }
    read_window(&mut builder, &mut window);
    Ok(builder.finish())
}

/// Reads a window of loaded files on up to four threads (reading is CPU work: parsing
/// JSON, CSS, ...), then empties it.
fn read_window(builder: &mut TokenDiffBuilder, window: &mut Vec<Loaded>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let read = |files: &[Loaded]| {
        let mut part = TokenDiffBuilder::new();
        for f in files {
            part.file(&f.path, f.before.as_deref(), f.after.as_deref());
        }
        part
    };
    if threads == 1 || window.len() < 2 {
        builder.merge(read(window));
    } else {
        let chunk = window.len().div_ceil(threads);
        let parts: Vec<TokenDiffBuilder> = std::thread::scope(|scope| {
            let running: Vec<_> = window
                .chunks(chunk)
                .map(|files| scope.spawn(move || read(files)))
                .collect();
            running
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        for part in parts {
            builder.merge(part);
        }
    }
    window.clear();
}
