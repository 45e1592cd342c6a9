//! The token changes between two versions of a set of files.
//!
//! The caller hands the changed files one at a time ([`TokenDiffBuilder::file`]), each
//! with its bytes in the base and in the new tree; only the changes are kept, so memory
//! grows with what changed, not with the export.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FileTokens, Format, MAX_FILE_BYTES, read};

/// One token's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenChange {
    Added {
        name: String,
        value: String,
    },
    Removed {
        name: String,
        value: String,
    },
    Changed {
        name: String,
        old: String,
        new: String,
    },
    /// The same value under a new name: one token removed and one added in the same
    /// file and context, and no other token there lost or gained that value.
    Renamed {
        from: String,
        name: String,
        value: String,
    },
}

impl TokenChange {
    /// The token's name in the new tree (in the base, for a removal): what rows sort by.
    pub fn name(&self) -> &str {
        match self {
            TokenChange::Added { name, .. }
            | TokenChange::Removed { name, .. }
            | TokenChange::Changed { name, .. }
            | TokenChange::Renamed { name, .. } => name,
        }
    }

    /// The change seen from the other side: what the diff from the new tree back to
    /// the base says.
    pub fn reversed(self) -> TokenChange {
        match self {
            TokenChange::Added { name, value } => TokenChange::Removed { name, value },
            TokenChange::Removed { name, value } => TokenChange::Added { name, value },
            TokenChange::Changed { name, old, new } => TokenChange::Changed {
                name,
                old: new,
                new: old,
            },
            TokenChange::Renamed { from, name, value } => TokenChange::Renamed {
                from: name,
                name: from,
                value,
            },
        }
    }
}

/// The changes in one file and context (a CSS selector, a theme), sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// The file, relative to the repository root.
    pub path: String,
    /// Empty when the format has no contexts.
    pub context: String,
    pub changes: Vec<TokenChange>,
}

/// A changed file whose tokens were not compared, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileNote {
    pub path: String,
    pub reason: String,
}

/// What changed in the tokens of a delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDiff {
    pub changed: u64,
    pub added: u64,
    pub removed: u64,
    pub renamed: u64,
    /// Files with at least one token change.
    pub files: u64,
    /// By file, then context; both sorted.
    pub groups: Vec<FileDiff>,
    /// Files whose tokens could not be read (broken syntax, not UTF-8, an alias cycle).
    pub unreadable: Vec<FileNote>,
    /// Files too big to read for tokens.
    pub skipped: Vec<FileNote>,
    /// Changes counted above but not listed in `groups` (see [`TokenDiff::capped`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TokenDiff {
    /// Token changes of every kind.
    pub fn total(&self) -> u64 {
        self.changed + self.added + self.removed + self.renamed
    }

    /// Whether there is nothing to say: no change and no note.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.unreadable.is_empty() && self.skipped.is_empty()
    }

    /// The same counts with at most `max` changes listed (the first, in order), for a
    /// record whose size must not grow with the export.
    pub fn capped(mut self, max: usize) -> TokenDiff {
        let mut left = max;
        self.groups.retain_mut(|group| {
            let keep = group.changes.len().min(left);
            self.omitted += (group.changes.len() - keep) as u64;
            group.changes.truncate(keep);
            left -= keep;
            keep > 0
        });
        self
    }

    /// The diff from the new tree back to the base.
    pub fn reversed(self) -> TokenDiff {
        let mut builder = TokenDiffBuilder::default();
        for group in self.groups {
            let changes = group
                .changes
                .into_iter()
                .map(TokenChange::reversed)
                .collect();
            builder.push(group.path, group.context, changes);
        }
        builder.unreadable = self.unreadable;
        builder.skipped = self.skipped;
        builder.finish()
    }
}

/// Builds a [`TokenDiff`] one changed file at a time.
#[derive(Debug, Default)]
pub struct TokenDiffBuilder {
    groups: Vec<FileDiff>,
    unreadable: Vec<FileNote>,
    skipped: Vec<FileNote>,
}

impl TokenDiffBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `path` is a file whose tokens are read; the caller need not load the
    /// others.
    pub fn reads(path: &str) -> bool {
        Format::of(path).is_some()
    }

    /// A file too big to read (the caller knows its size without loading it).
    pub fn skip(&mut self, path: &str, bytes: u64) {
        self.skipped.push(FileNote {
            path: path.to_owned(),
            reason: format!(
                "{bytes} bytes, over the {} MiB limit for reading tokens",
                MAX_FILE_BYTES >> 20
            ),
        });
    }

    /// A file that could not be loaded at all (the reason names no secret).
    pub fn unreadable(&mut self, path: &str, reason: impl Into<String>) {
        self.unreadable.push(FileNote {
            path: path.to_owned(),
            reason: reason.into(),
        });
    }

    /// One changed file: its bytes in the base (`None`: the delivery adds it) and in the
    /// new tree (`None`: the delivery deletes it).
    pub fn file(&mut self, path: &str, old: Option<&[u8]>, new: Option<&[u8]>) {
        let Some(format) = Format::of(path) else {
            return;
        };
        let size = old.map_or(0, <[u8]>::len).max(new.map_or(0, <[u8]>::len));
        if size > MAX_FILE_BYTES {
            self.skip(path, size as u64);
            return;
        }
        let side = |bytes: Option<&[u8]>, which: &str| match bytes {
            None => Ok(FileTokens::default()),
            Some(bytes) => read::read(format, bytes).map_err(|e| format!("{e} ({which})")),
        };
        let (old, new) = match (side(old, "in the base"), side(new, "in the export")) {
            (Ok(old), Ok(new)) => (old, new),
            (Err(why), _) | (_, Err(why)) => {
                self.unreadable(path, why);
                return;
            }
        };
        self.tokens(path, &old, &new);
    }

    /// One changed file's tokens, already read, in the base and in the new tree.
    pub fn tokens(&mut self, path: &str, old: &FileTokens, new: &FileTokens) {
        for (context, changes) in compare(old, new) {
            self.push(path.to_owned(), context, changes);
        }
    }

    /// Takes in what another builder collected (one that read other files, on another
    /// thread).
    pub fn merge(&mut self, other: TokenDiffBuilder) {
        self.groups.extend(other.groups);
        self.unreadable.extend(other.unreadable);
        self.skipped.extend(other.skipped);
    }

    fn push(&mut self, path: String, context: String, mut changes: Vec<TokenChange>) {
        if changes.is_empty() {
            return;
        }
        changes.sort_by(|a, b| a.name().cmp(b.name()));
        self.groups.push(FileDiff {
            path,
            context,
            changes,
        });
    }

    pub fn finish(mut self) -> TokenDiff {
        self.groups
            .sort_by(|a, b| (&a.path, &a.context).cmp(&(&b.path, &b.context)));
        self.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
        self.skipped.sort_by(|a, b| a.path.cmp(&b.path));
        let mut diff = TokenDiff::default();
        let mut last_path = None;
        for group in &self.groups {
            if last_path != Some(&group.path) {
                diff.files += 1;
                last_path = Some(&group.path);
            }
            for change in &group.changes {
                *match change {
                    TokenChange::Added { .. } => &mut diff.added,
                    TokenChange::Removed { .. } => &mut diff.removed,
                    TokenChange::Changed { .. } => &mut diff.changed,
                    TokenChange::Renamed { .. } => &mut diff.renamed,
                } += 1;
            }
        }
        diff.groups = self.groups;
        diff.unreadable = self.unreadable;
        diff.skipped = self.skipped;
        diff
    }
}

/// The changes from `old` to `new`, by context (unsorted within one).
pub fn compare(old: &FileTokens, new: &FileTokens) -> Vec<(String, Vec<TokenChange>)> {
    let empty = BTreeMap::new();
    let mut contexts: Vec<&String> = old.contexts.keys().chain(new.contexts.keys()).collect();
    contexts.sort();
    contexts.dedup();
    let mut out = Vec::new();
    for context in contexts {
        let before = old.contexts.get(context).unwrap_or(&empty);
        let after = new.contexts.get(context).unwrap_or(&empty);
        let mut changes = Vec::new();
        let mut removed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut added: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, value) in before {
            match after.get(name) {
                Some(now) if now == value => {}
                Some(now) => changes.push(TokenChange::Changed {
                    name: name.clone(),
                    old: value.clone(),
                    new: now.clone(),
                }),
                None => removed.entry(value).or_default().push(name),
            }
        }
        for (name, value) in after {
            if !before.contains_key(name) {
                added.entry(value).or_default().push(name);
            }
        }
        // A rename only when the value pairs one removed name with one added name; any
        // other count is ambiguous and stays as removals and additions.
        for (value, gone) in &removed {
            match (gone.as_slice(), added.get(value).map(Vec::as_slice)) {
                ([from], Some([to])) => changes.push(TokenChange::Renamed {
                    from: (*from).to_owned(),
                    name: (*to).to_owned(),
                    value: (*value).to_owned(),
                }),
                _ => changes.extend(gone.iter().map(|name| TokenChange::Removed {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })),
            }
        }
        for (value, came) in &added {
            if matches!(
                (removed.get(value).map(Vec::as_slice), came.as_slice()),
                (Some([_]), [_])
            ) {
                continue;
            }
            changes.extend(came.iter().map(|name| TokenChange::Added {
                name: (*name).to_owned(),
                value: (*value).to_owned(),
            }));
        }
        out.push((context.clone(), changes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(entries: &[(&str, &str, &str)]) -> FileTokens {
        let mut t = FileTokens::default();
        for (context, name, value) in entries {
            t.insert(context, *name, *value);
        }
        t
    }

    #[test]
    fn sorts_changes_by_kind_and_pairs_unambiguous_renames() {
        let old = tokens(&[
            ("", "color.primary", "#0969DA"),
            ("", "radius.pill", "999px"),
            ("", "space.1", "4px"),
            ("", "dup.a", "1px"),
            ("", "dup.b", "1px"),
            ("dark", "color.bg", "#000"),
        ]);
        let new = tokens(&[
            ("", "color.primary", "#0550AE"),
            ("", "radius.full", "999px"),
            ("", "space.1", "4px"),
            ("", "space.2", "8px"),
            ("", "dup.c", "1px"),
            ("dark", "color.bg", "#000"),
        ]);
        let mut builder = TokenDiffBuilder::new();
        let mut changes = compare(&old, &new);
        assert_eq!(changes.len(), 2);
        let (_, dark) = changes.pop().unwrap();
        assert!(dark.is_empty());
        let (context, root) = changes.pop().unwrap();
        builder.push("t.json".into(), context, root);
        let diff = builder.finish();
        assert_eq!(
            (
                diff.changed,
                diff.added,
                diff.removed,
                diff.renamed,
                diff.files
            ),
            (1, 2, 2, 1, 1)
        );
        let names: Vec<&str> = diff.groups[0]
            .changes
            .iter()
            .map(TokenChange::name)
            .collect();
        assert_eq!(
            names,
            [
                "color.primary",
                "dup.a",
                "dup.b",
                "dup.c",
                "radius.full",
                "space.2"
            ]
        );
        assert!(diff.groups[0].changes.contains(&TokenChange::Renamed {
            from: "radius.pill".into(),
            name: "radius.full".into(),
            value: "999px".into(),
        }));
    }

    use proptest::prelude::*;

    fn file_tokens() -> impl Strategy<Value = FileTokens> {
        // Few names and values, so that changes, renames and ambiguous pairs all occur.
        let entry = (
            prop::sample::select(vec!["", ":root", "dark"]),
            prop::sample::select(vec!["a", "b", "c", "d", "e", "f"]),
            prop::sample::select(vec!["1", "2", "3"]),
        );
        prop::collection::vec(entry, 0..12).prop_map(|entries| {
            let mut t = FileTokens::default();
            for (context, name, value) in entries {
                t.insert(context, name, value);
            }
            t
        })
    }

    fn diff_of(old: &FileTokens, new: &FileTokens) -> TokenDiff {
        let mut builder = TokenDiffBuilder::new();
        builder.tokens("t.json", old, new);
        builder.finish()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_tree_compared_with_itself_has_no_change(t in file_tokens()) {
            prop_assert_eq!(diff_of(&t, &t), TokenDiff::default());
        }

        #[test]
        fn swapping_base_and_new_swaps_added_and_removed(old in file_tokens(), new in file_tokens()) {
            let forward = diff_of(&old, &new);
            let backward = diff_of(&new, &old);
            prop_assert_eq!(forward.added, backward.removed);
            prop_assert_eq!(forward.removed, backward.added);
            prop_assert_eq!(forward.changed, backward.changed);
            prop_assert_eq!(forward.renamed, backward.renamed);
            prop_assert_eq!(forward.reversed(), backward);
        }

        #[test]
        fn every_token_is_accounted_for(old in file_tokens(), new in file_tokens()) {
            let d = diff_of(&old, &new);
            // Names gone from the base: removed or renamed away; names new: added or
            // renamed to.
            let gone = old.contexts.iter().map(|(c, names)| {
                names.keys().filter(|n| !new.contexts.get(c).is_some_and(|m| m.contains_key(*n))).count()
            }).sum::<usize>() as u64;
            let came = new.contexts.iter().map(|(c, names)| {
                names.keys().filter(|n| !old.contexts.get(c).is_some_and(|m| m.contains_key(*n))).count()
            }).sum::<usize>() as u64;
            prop_assert_eq!(d.removed + d.renamed, gone);
            prop_assert_eq!(d.added + d.renamed, came);
        }
    }

    #[test]
    fn a_capped_diff_keeps_its_counts_and_says_what_it_left_out() {
        let old = tokens(&[("", "a", "1"), ("", "b", "1"), ("x", "c", "1")]);
        let new = tokens(&[("", "a", "2"), ("", "b", "2"), ("x", "c", "2")]);
        let full = diff_of(&old, &new);
        let capped = full.clone().capped(1);
        assert_eq!(capped.changed, 3);
        assert_eq!(capped.omitted, 2);
        assert_eq!(capped.groups.len(), 1);
        assert_eq!(capped.groups[0].changes, full.groups[0].changes[..1]);
        assert_eq!(full.clone().capped(10), full);
    }

    #[test]
    fn files_of_unknown_formats_and_oversized_files_are_not_read() {
        let mut builder = TokenDiffBuilder::new();
        builder.file("logo.png", None, Some(b"\x89PNG"));
        let big = vec![b' '; MAX_FILE_BYTES + 1];
        builder.file("huge.css", None, Some(&big));
        let diff = builder.finish();
        assert!(diff.groups.is_empty());
        assert!(diff.unreadable.is_empty());
        assert_eq!(diff.skipped.len(), 1);
        assert_eq!(diff.skipped[0].path, "huge.css");
        assert!(diff.skipped[0].reason.contains("over the 4 MiB limit"));
    }
}
