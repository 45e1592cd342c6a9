//! Entry names and kinds: decoding, what an entry is, and names that would land on the
//! same file in a checkout.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use unicode_normalization::UnicodeNormalization;

use super::error::{ArchiveError, Rule};
use super::structure::{CentralRecord, FLAG_UTF8};
use crate::paths::{RelPath, is_hfs_ignorable};

/// Decodes an entry name.
///
/// With the UTF-8 flag (bit 11) the name must be valid UTF-8. Without it APPNOTE says
/// CP437, but Info-ZIP `zip` and macOS write UTF-8 bytes without setting the flag, so a
/// flagless name is accepted when it is valid UTF-8 (which covers ASCII, where CP437 and
/// UTF-8 agree). A flagless name that is not valid UTF-8 (a genuine CP437 or legacy
/// code-page name) is refused rather than guessed at: a wrong guess would deliver files
/// under names nobody wrote. The Info-ZIP Unicode Path extra field (0x7075) is ignored,
/// so one archive cannot carry two different names for the same entry.
pub(crate) fn decode_name(rec: &CentralRecord) -> Result<String, ArchiveError> {
    match std::str::from_utf8(&rec.raw_name) {
        Ok(name) => Ok(name.to_owned()),
        Err(_) => {
            let flagged = rec.flags & FLAG_UTF8 != 0;
            Err(ArchiveError::rejected(
                Some(&rec.display_name()),
                Rule::NonUtf8Name,
                if flagged {
                    "name is flagged UTF-8 but is not valid UTF-8"
                } else {
                    "name is not valid UTF-8 (legacy code-page names are not supported)"
                },
            ))
        }
    }
}

/// What an entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Directory,
}

const HOST_UNIX: u16 = 3;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const DOS_DIRECTORY: u32 = 0x10;
const DOS_REPARSE_POINT: u32 = 0x400;

/// The entry's kind from its name and external attributes; anything but a regular file
/// or a directory is refused, as is a name and attribute pair that disagree.
pub(crate) fn entry_kind(rec: &CentralRecord, name: &str) -> Result<Kind, ArchiveError> {
    let reject = |rule, detail: &str| ArchiveError::rejected(Some(name), rule, detail);
    let named_dir = name.ends_with('/');
    let dos = rec.external_attrs & 0xffff;
    if dos & DOS_REPARSE_POINT != 0 {
        return Err(reject(
            Rule::Symlink,
            "entry is a Windows reparse point (symbolic link or junction)",
        ));
    }
    if rec.version_made_by >> 8 == HOST_UNIX {
        let mode = rec.external_attrs >> 16;
        match mode & S_IFMT {
            // No type recorded: the name decides.
            0 => {}
            S_IFLNK => {
                return Err(reject(Rule::Symlink, "entry is a symbolic link"));
            }
            S_IFDIR if !named_dir => {
                return Err(reject(
                    Rule::TypeMismatch,
                    "entry is a directory but its name does not end with `/`",
                ));
            }
            S_IFREG if named_dir => {
                return Err(reject(
                    Rule::TypeMismatch,
                    "entry is a regular file but its name ends with `/`",
                ));
            }
            S_IFDIR | S_IFREG => {}
            _ => {
                return Err(reject(
                    Rule::SpecialFile,
                    "entry is a device, FIFO or socket, not a regular file",
                ));
            }
        }
    }
    if dos & DOS_DIRECTORY != 0 && !named_dir {
        return Err(reject(
            Rule::TypeMismatch,
            "entry has the directory attribute but its name does not end with `/`",
        ));
    }
    Ok(if named_dir {
        Kind::Directory
    } else {
        Kind::File
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    File,
    /// A directory with its own entry.
    Directory,
    /// A directory only known as the parent of other entries.
    Parent,
}

/// Every path (and every parent directory) seen so far, keyed by the name a
/// case-insensitive, normalising file system (Windows, macOS) would see.
#[derive(Default)]
pub(crate) struct NameSet {
    seen: HashMap<String, (String, Seen)>,
}

/// The name as a case-insensitive, normalising file system compares it: NFC, lower
/// case, without the code points HFS+ ignores.
fn fold(component: &str) -> String {
    let lowered: String = component
        .nfc()
        .filter(|c| !is_hfs_ignorable(*c))
        .flat_map(char::to_lowercase)
        .collect();
    lowered.nfc().collect()
}

impl NameSet {
    pub(crate) fn with_capacity(n: usize) -> Self {
        NameSet {
            seen: HashMap::with_capacity(n),
        }
    }

    /// Records `path`; refuses it if it, or one of its parents, lands on the same file
    /// as something recorded before.
    pub(crate) fn insert(&mut self, path: &RelPath, kind: Kind) -> Result<(), ArchiveError> {
        let full = path.as_str();
        let reject = |rule, detail: String| ArchiveError::rejected(Some(full), rule, detail);
        let mut key = String::with_capacity(full.len());
        let mut end = 0;
        let count = path.components().count();
        for (i, component) in path.components().enumerate() {
            if i > 0 {
                key.push('/');
                end += 1;
            }
            key.push_str(&fold(component));
            end += component.len();
            let original = &full[..end];
            let last = i + 1 == count;
            match self.seen.entry(key.clone()) {
                Entry::Vacant(slot) => {
                    let seen = match (last, kind) {
                        (false, _) => Seen::Parent,
                        (true, Kind::File) => Seen::File,
                        (true, Kind::Directory) => Seen::Directory,
                    };
                    slot.insert((original.to_owned(), seen));
                }
                Entry::Occupied(mut slot) => {
                    let (other, seen) = slot.get_mut();
                    if other != original {
                        let (rule, how) = if other.to_lowercase() == original.to_lowercase() {
                            (Rule::CaseCollision, "case folding")
                        } else {
                            (Rule::UnicodeCollision, "Unicode normalisation")
                        };
                        return Err(reject(
                            rule,
                            format!("{original:?} and {other:?} are the same name after {how}"),
                        ));
                    }
                    match (last, kind, &*seen) {
                        (false, _, Seen::File) => {
                            return Err(reject(
                                Rule::FileDirectoryConflict,
                                format!("{original:?} is a file and also a parent directory"),
                            ));
                        }
                        (false, _, _) => {}
                        (true, Kind::File, Seen::File)
                        | (true, Kind::Directory, Seen::Directory) => {
                            return Err(reject(
                                Rule::Duplicate,
                                "the archive holds this name more than once".to_owned(),
                            ));
                        }
                        (true, Kind::File, _) | (true, Kind::Directory, Seen::File) => {
                            return Err(reject(
                                Rule::FileDirectoryConflict,
                                format!("{original:?} is a file and also a directory"),
                            ));
                        }
                        (true, Kind::Directory, Seen::Parent) => *seen = Seen::Directory,
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert_all(items: &[(&str, Kind)]) -> Result<(), &'static str> {
        let mut set = NameSet::default();
        for (name, kind) in items {
            set.insert(&RelPath::parse(name).unwrap(), *kind)
                .map_err(|e| e.rule())?;
        }
        Ok(())
    }

    #[test]
    fn parents_and_explicit_directories_coexist() {
        use Kind::*;
        assert_eq!(
            insert_all(&[("a/b", File), ("a/", Directory), ("a/c", File)]),
            Ok(())
        );
        assert_eq!(
            insert_all(&[("a/", Directory), ("a/b/", Directory)]),
            Ok(())
        );
    }

    #[test]
    fn collisions_are_named() {
        use Kind::*;
        assert_eq!(insert_all(&[("a", File), ("a", File)]), Err("duplicate"));
        assert_eq!(
            insert_all(&[("d/", Directory), ("d/", Directory)]),
            Err("duplicate")
        );
        assert_eq!(
            insert_all(&[("A.txt", File), ("a.TXT", File)]),
            Err("case_collision")
        );
        assert_eq!(
            insert_all(&[("X/a", File), ("x/b", File)]),
            Err("case_collision")
        );
        assert_eq!(
            insert_all(&[("caf\u{e9}", File), ("cafe\u{301}", File)]),
            Err("unicode_collision")
        );
        assert_eq!(
            insert_all(&[("a\u{200d}b", File), ("ab", File)]),
            Err("unicode_collision")
        );
        assert_eq!(
            insert_all(&[("a", File), ("a/b", File)]),
            Err("file_directory_conflict")
        );
        assert_eq!(
            insert_all(&[("a/b", File), ("a", File)]),
            Err("file_directory_conflict")
        );
        assert_eq!(
            insert_all(&[("a/", Directory), ("a", File)]),
            Err("file_directory_conflict")
        );
        assert_eq!(
            insert_all(&[("a", File), ("A/b", File)]),
            Err("case_collision")
        );
    }
}
