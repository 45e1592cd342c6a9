//! Entry names and kinds: decoding, what an entry is, and names that would land on the
//! same file in a checkout.

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
pub(crate) fn decode_name(rec: &mut CentralRecord) -> Result<String, ArchiveError> {
    let raw = std::mem::take(&mut rec.raw_name);
    String::from_utf8(raw).map_err(|err| {
        let flagged = rec.flags & FLAG_UTF8 != 0;
        ArchiveError::rejected(
            Some(&String::from_utf8_lossy(err.as_bytes())),
            Rule::NonUtf8Name,
            if flagged {
                "name is flagged UTF-8 but is not valid UTF-8"
            } else {
                "name is not valid UTF-8 (legacy code-page names are not supported)"
            },
        )
    })
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

/// The name of an entry as the archive spells it (directories keep their `/`).
pub(crate) fn entry_name(path: &RelPath, kind: Kind) -> String {
    match kind {
        Kind::File => path.as_str().to_owned(),
        Kind::Directory => format!("{path}/"),
    }
}

/// One component as a case-insensitive, normalising file system (Windows, macOS)
/// compares it: NFC, lower case, without the code points HFS+ ignores.
fn fold(component: &str) -> String {
    // ASCII is its own NFC and holds no ignorable code point, so lower case is all that
    // changes. Exports' names are nearly all ASCII; normalising 2,000 of them took 2 ms.
    if component.is_ascii() {
        return component.to_ascii_lowercase();
    }
    fold_unicode(component)
}

fn fold_unicode(component: &str) -> String {
    let lowered: String = component
        .nfc()
        .filter(|c| !is_hfs_ignorable(*c))
        .flat_map(char::to_lowercase)
        .collect();
    lowered.nfc().collect()
}

struct Keyed<'a> {
    /// Folded components joined by NUL. Names cannot contain NUL (it is a control
    /// character), so sorting these bytes sorts component by component: a directory's
    /// descendants follow it immediately.
    key: String,
    index: usize,
    path: &'a RelPath,
    kind: Kind,
}

/// Refuses two entries that would land on the same file in a checkout: the same name
/// twice, names equal after case folding or Unicode normalisation (also for their
/// directories: `A/x` and `a/y`), and a file that is also used as a directory.
///
/// Sorting by folded name puts every such pair next to each other (anything sorted
/// between two entries shares their common folded prefix), so only neighbours are
/// compared. Memory is one folded copy of each name, whatever the directory depth; a
/// table of every parent directory would grow with depth times entries.
pub(crate) fn check_collisions<'a>(
    items: impl Iterator<Item = (&'a RelPath, Kind)>,
) -> Result<(), ArchiveError> {
    let mut keyed: Vec<Keyed<'a>> = items
        .enumerate()
        .map(|(index, (path, kind))| {
            let mut key = String::with_capacity(path.as_str().len());
            for (i, component) in path.components().enumerate() {
                if i > 0 {
                    key.push('\0');
                }
                key.push_str(&fold(component));
            }
            Keyed {
                key,
                index,
                path,
                kind,
            }
        })
        .collect();
    // Stable, so equal keys stay in archive order.
    keyed.sort_by(|a, b| a.key.cmp(&b.key));
    for pair in keyed.windows(2) {
        check_neighbours(&pair[0], &pair[1])?;
    }
    Ok(())
}

/// `a` sorts before (or equal to) `b`. The entry named in an error is the one later in
/// the archive, the one that "adds" the conflict.
fn check_neighbours(a: &Keyed<'_>, b: &Keyed<'_>) -> Result<(), ArchiveError> {
    let later = if a.index > b.index { a } else { b };
    let reject = |rule, detail: String| {
        ArchiveError::rejected(Some(&entry_name(later.path, later.kind)), rule, detail)
    };
    let mut sides = (
        a.key.split('\0').zip(a.path.components()),
        b.key.split('\0').zip(b.path.components()),
    );
    let (mut end_a, mut end_b) = (0, 0);
    loop {
        match (sides.0.next(), sides.1.next()) {
            (Some((fa, oa)), Some((fb, ob))) => {
                if fa != fb {
                    return Ok(());
                }
                end_a += oa.len() + usize::from(end_a > 0);
                end_b += ob.len() + usize::from(end_b > 0);
                if oa != ob {
                    let (mine, theirs) = if later.index == a.index {
                        (&a.path.as_str()[..end_a], &b.path.as_str()[..end_b])
                    } else {
                        (&b.path.as_str()[..end_b], &a.path.as_str()[..end_a])
                    };
                    let (rule, how) = if mine.to_lowercase() == theirs.to_lowercase() {
                        (Rule::CaseCollision, "case folding")
                    } else {
                        (Rule::UnicodeCollision, "Unicode normalisation")
                    };
                    return Err(reject(
                        rule,
                        format!("{mine:?} and {theirs:?} are the same name after {how}"),
                    ));
                }
            }
            (None, None) => {
                return Err(if a.kind == b.kind {
                    reject(
                        Rule::Duplicate,
                        "the archive holds this name more than once".to_owned(),
                    )
                } else {
                    reject(
                        Rule::FileDirectoryConflict,
                        format!("{:?} is both a file and a directory", a.path.as_str()),
                    )
                });
            }
            (None, Some(_)) | (Some(_), None) => {
                // One name is a folded prefix of the other: the shorter one is a parent
                // directory of the longer, which is fine unless it is a file.
                let ancestor = if end_a == a.path.as_str().len() { a } else { b };
                if ancestor.kind == Kind::File {
                    return Err(reject(
                        Rule::FileDirectoryConflict,
                        format!(
                            "{:?} is a file and also the parent directory of another entry",
                            ancestor.path.as_str()
                        ),
                    ));
                }
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert_all(items: &[(&str, Kind)]) -> Result<(), &'static str> {
        let paths: Vec<(RelPath, Kind)> = items
            .iter()
            .map(|(name, kind)| (RelPath::parse(name).unwrap(), *kind))
            .collect();
        check_collisions(paths.iter().map(|(p, k)| (p, *k))).map_err(|e| e.rule())
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

    #[test]
    fn conflicts_are_found_across_unrelated_neighbours() {
        use Kind::*;
        // Entries sorted between the colliding pair must not hide it.
        assert_eq!(
            insert_all(&[("X/1", File), ("x-y", File), ("x0", File), ("x/2", File)]),
            Err("case_collision")
        );
        assert_eq!(
            insert_all(&[("a/b/c", File), ("a/b-", File), ("a/B/d", File)]),
            Err("case_collision")
        );
        assert_eq!(
            insert_all(&[
                ("a/", Directory),
                ("a/b", File),
                ("a/b.txt", File),
                ("a/b/c", File)
            ]),
            Err("file_directory_conflict")
        );
        assert_eq!(
            insert_all(&[("d/\u{c5}/x", File), ("d/A\u{30a}/y", File)]),
            Err("unicode_collision")
        );
        assert_eq!(
            insert_all(&[("a/b", File), ("a-b", File), ("a/c/d", File), ("ab", File)]),
            Ok(())
        );
    }

    #[test]
    fn the_later_entry_is_named() {
        let paths: Vec<(RelPath, Kind)> = ["one", "Two", "three", "two"]
            .iter()
            .map(|n| (RelPath::parse(n).unwrap(), Kind::File))
            .collect();
        let err = check_collisions(paths.iter().map(|(p, k)| (p, *k))).unwrap_err();
        assert_eq!(err.entry(), Some("two"));
        assert!(err.to_string().contains(r#""two" and "Two""#), "{err}");
    }

    proptest::proptest! {
        /// The ASCII shortcut folds exactly as the full normalisation does.
        #[test]
        fn ascii_folds_as_the_full_rules_do(component in "[ -~]{0,24}") {
            proptest::prop_assert_eq!(fold(&component), fold_unicode(&component));
        }
    }
}
