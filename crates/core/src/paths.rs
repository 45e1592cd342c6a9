//! Repository-relative paths and the rules every path Courier writes must obey.
//!
//! The same rules guard two doors: entry names inside a downloaded archive and the
//! `relative_path` of a target in the configuration. Keeping them in one place means
//! a name that is refused in a zip cannot sneak in through the config, and vice versa.

use std::fmt;

/// A validated, normalised, `/`-separated path relative to a repository root.
///
/// Never empty, never absolute, no `.`/`..`/empty segments, no backslashes or control
/// characters, and no component git or a checkout on Windows/macOS would treat as
/// `.git` or `.gitmodules`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

/// Why a path was refused; the `Display` text names the rule so that error messages
/// can say exactly what was wrong with which entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRule {
    #[error("empty path")]
    Empty,
    #[error("absolute path")]
    Absolute,
    #[error("drive letter")]
    DriveLetter,
    #[error("UNC path")]
    Unc,
    #[error("backslash in path")]
    Backslash,
    #[error("NUL or control character in path")]
    ControlCharacter,
    #[error("`..` segment")]
    ParentSegment,
    #[error("`.` or empty segment")]
    EmptySegment,
    #[error("`.git` path component")]
    GitComponent,
    #[error("`.gitmodules` file")]
    GitModules,
}

impl RelPath {
    /// Parses and validates `raw`. A single trailing `/` is accepted (zip directory
    /// entries end with one) and dropped.
    pub fn parse(raw: &str) -> Result<RelPath, PathRule> {
        if raw.is_empty() {
            return Err(PathRule::Empty);
        }
        if raw.chars().any(|c| c.is_control()) {
            return Err(PathRule::ControlCharacter);
        }
        if raw.starts_with("\\\\") || raw.starts_with("//") {
            return Err(PathRule::Unc);
        }
        if raw.contains('\\') {
            return Err(PathRule::Backslash);
        }
        if raw.starts_with('/') {
            return Err(PathRule::Absolute);
        }
        let bytes = raw.as_bytes();
        if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
            return Err(PathRule::DriveLetter);
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        if trimmed.is_empty() {
            return Err(PathRule::Empty);
        }
        for segment in trimmed.split('/') {
            check_component(segment)?;
        }
        Ok(RelPath(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated components, in order.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// `self` joined with a relative `child`.
    pub fn join(&self, child: &RelPath) -> RelPath {
        RelPath(format!("{}/{}", self.0, child.0))
    }

    /// The first component (the top-level directory, or the file name for a top-level file).
    pub fn first_component(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for RelPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn check_component(segment: &str) -> Result<(), PathRule> {
    match segment {
        "" | "." => return Err(PathRule::EmptySegment),
        ".." => return Err(PathRule::ParentSegment),
        _ => {}
    }
    let folded = fold_for_git_compare(segment);
    if is_alias_of(&folded, ".git", "git~1") || folded.starts_with(".git::") {
        return Err(PathRule::GitComponent);
    }
    if is_alias_of(&folded, ".gitmodules", "gitmod~1") {
        return Err(PathRule::GitModules);
    }
    Ok(())
}

/// What git's `protectNTFS`/`protectHFS` compare: lower-cased, with the code points
/// HFS+ ignores removed, so `.G\u{200c}IT` and `.git` are the same name.
fn fold_for_git_compare(segment: &str) -> String {
    segment
        .chars()
        .filter(|c| !is_hfs_ignorable(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `name`, or its NTFS forms: trailing dots and spaces are dropped by Windows, and the
/// 8.3 short name `alias` points at the same file.
fn is_alias_of(folded: &str, name: &str, alias: &str) -> bool {
    let base = folded.trim_end_matches(['.', ' ']);
    base == name || base == alias
}

/// Code points HFS+ ignores when comparing names (zero-width joiners, direction marks,
/// BOM): two names differing only in these are the same file on a Mac.
pub(crate) fn is_hfs_ignorable(c: char) -> bool {
    matches!(c,
        '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "a",
            "src/tokens",
            "dir/",
            "a/b/c.txt",
            ".github-ish/x",
            "git",
            "x/.gitignore",
        ] {
            assert!(RelPath::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(RelPath::parse("dir/").unwrap().as_str(), "dir");
    }

    #[test]
    fn names_the_rule() {
        let cases = [
            ("", PathRule::Empty),
            ("/etc/passwd", PathRule::Absolute),
            ("C:/x", PathRule::DriveLetter),
            ("//server/share", PathRule::Unc),
            ("\\\\server\\share", PathRule::Unc),
            ("a\\b", PathRule::Backslash),
            ("a\0b", PathRule::ControlCharacter),
            ("a\nb", PathRule::ControlCharacter),
            ("a/../b", PathRule::ParentSegment),
            ("a//b", PathRule::EmptySegment),
            ("./a", PathRule::EmptySegment),
            (".git/config", PathRule::GitComponent),
            ("x/.GIT/hooks/pre-commit", PathRule::GitComponent),
            (".git./x", PathRule::GitComponent),
            (".git /x", PathRule::GitComponent),
            ("GIT~1/config", PathRule::GitComponent),
            (".g\u{200c}it/config", PathRule::GitComponent),
            (".git::$INDEX_ALLOCATION/x", PathRule::GitComponent),
            ("deep/.gitmodules", PathRule::GitModules),
            ("GITMOD~1", PathRule::GitModules),
        ];
        for (raw, rule) in cases {
            assert_eq!(RelPath::parse(raw), Err(rule), "{raw:?}");
        }
    }
}
