//! Why an archive was refused.

use std::fmt;
use std::io;

use crate::paths::PathRule;

/// A stable identifier of the rule an archive broke. Callers (and metrics, and the
/// delivery log) branch on [`Rule::as_str`], which never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    // Names.
    EmptyPath,
    AbsolutePath,
    DriveLetter,
    UncPath,
    Backslash,
    ControlCharacter,
    ParentSegment,
    EmptySegment,
    GitComponent,
    GitModules,
    NonUtf8Name,
    PathTooLong,
    // Entry kinds.
    Symlink,
    SpecialFile,
    TypeMismatch,
    // Name collisions.
    Duplicate,
    CaseCollision,
    UnicodeCollision,
    FileDirectoryConflict,
    // Unsupported features.
    Encrypted,
    UnsupportedMethod,
    MultiDisk,
    // Limits.
    TooManyEntries,
    EntryTooLarge,
    TotalTooLarge,
    Ratio,
    // Structure.
    NotAZip,
    Eocd,
    MultipleEocd,
    CentralDirectory,
    Zip64,
    ExtraField,
    LocalHeaderMismatch,
    OutOfBounds,
    Overlap,
    DataDescriptor,
    SizeMismatch,
    Truncated,
    Crc,
    InvalidData,
    // Policy applied by the caller.
    Empty,
}

impl Rule {
    /// The stable, snake_case identifier, e.g. `"parent_segment"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::EmptyPath => "empty_path",
            Rule::AbsolutePath => "absolute_path",
            Rule::DriveLetter => "drive_letter",
            Rule::UncPath => "unc_path",
            Rule::Backslash => "backslash",
            Rule::ControlCharacter => "control_character",
            Rule::ParentSegment => "parent_segment",
            Rule::EmptySegment => "empty_segment",
            Rule::GitComponent => "git_component",
            Rule::GitModules => "gitmodules",
            Rule::NonUtf8Name => "non_utf8_name",
            Rule::PathTooLong => "path_too_long",
            Rule::Symlink => "symlink",
            Rule::SpecialFile => "special_file",
            Rule::TypeMismatch => "type_mismatch",
            Rule::Duplicate => "duplicate",
            Rule::CaseCollision => "case_collision",
            Rule::UnicodeCollision => "unicode_collision",
            Rule::FileDirectoryConflict => "file_directory_conflict",
            Rule::Encrypted => "encrypted",
            Rule::UnsupportedMethod => "unsupported_method",
            Rule::MultiDisk => "multi_disk",
            Rule::TooManyEntries => "too_many_entries",
            Rule::EntryTooLarge => "entry_too_large",
            Rule::TotalTooLarge => "total_too_large",
            Rule::Ratio => "ratio",
            Rule::NotAZip => "not_a_zip",
            Rule::Eocd => "eocd",
            Rule::MultipleEocd => "multiple_eocd",
            Rule::CentralDirectory => "central_directory",
            Rule::Zip64 => "zip64",
            Rule::ExtraField => "extra_field",
            Rule::LocalHeaderMismatch => "local_header_mismatch",
            Rule::OutOfBounds => "out_of_bounds",
            Rule::Overlap => "overlap",
            Rule::DataDescriptor => "data_descriptor",
            Rule::SizeMismatch => "size_mismatch",
            Rule::Truncated => "truncated",
            Rule::Crc => "crc",
            Rule::InvalidData => "invalid_data",
            Rule::Empty => "empty",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&PathRule> for Rule {
    fn from(rule: &PathRule) -> Rule {
        match rule {
            PathRule::Empty => Rule::EmptyPath,
            PathRule::Absolute => Rule::AbsolutePath,
            PathRule::DriveLetter => Rule::DriveLetter,
            PathRule::Unc => Rule::UncPath,
            PathRule::Backslash => Rule::Backslash,
            PathRule::ControlCharacter => Rule::ControlCharacter,
            PathRule::ParentSegment => Rule::ParentSegment,
            PathRule::EmptySegment => Rule::EmptySegment,
            PathRule::GitComponent => Rule::GitComponent,
            PathRule::GitModules => Rule::GitModules,
        }
    }
}

/// Why an archive could not be turned into an [`Export`](super::Export), or why an
/// entry could not be streamed.
///
/// `Rejected` means the archive itself is at fault (hostile or broken): retrying will
/// not help and the whole archive is refused. `Io` means reading the file failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive rejected: {}{detail} (rule: {rule})", EntryPrefix(entry.as_deref()))]
    Rejected {
        /// The entry's name as stored in the archive (lossily decoded when it is not
        /// UTF-8), or `None` when the fault is in the archive's structure.
        entry: Option<String>,
        rule: Rule,
        /// What exactly was wrong, for a person.
        detail: String,
    },
    /// [`Export::open_entry`](super::Export::open_entry) was given an entry of another
    /// export: a bug in the caller, not a fault of the archive.
    #[error("entry {entry:?} does not belong to this export")]
    NotInExport { entry: String },
    #[error("reading archive {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

struct EntryPrefix<'a>(Option<&'a str>);

impl fmt::Display for EntryPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            // Debug formatting quotes the name and escapes control characters, so a
            // hostile name cannot forge log lines.
            Some(name) => write!(f, "entry {name:?}: "),
            None => Ok(()),
        }
    }
}

impl ArchiveError {
    pub(crate) fn rejected(entry: Option<&str>, rule: Rule, detail: impl Into<String>) -> Self {
        ArchiveError::Rejected {
            entry: entry.map(str::to_owned),
            rule,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ArchiveError::Io {
            context: context.into(),
            source,
        }
    }

    /// The stable rule identifier, e.g. `"parent_segment"`; `"io"` for read failures and
    /// `"not_in_export"` for a caller's mix-up.
    pub fn rule(&self) -> &'static str {
        match self {
            ArchiveError::Rejected { rule, .. } => rule.as_str(),
            ArchiveError::NotInExport { .. } => "not_in_export",
            ArchiveError::Io { .. } => "io",
        }
    }

    /// The typed rule, or `None` for read failures.
    pub fn rule_kind(&self) -> Option<Rule> {
        match self {
            ArchiveError::Rejected { rule, .. } => Some(*rule),
            ArchiveError::NotInExport { .. } | ArchiveError::Io { .. } => None,
        }
    }

    /// The offending entry's name, when the fault belongs to one entry.
    pub fn entry(&self) -> Option<&str> {
        match self {
            ArchiveError::Rejected { entry, .. } => entry.as_deref(),
            ArchiveError::NotInExport { entry } => Some(entry),
            ArchiveError::Io { .. } => None,
        }
    }

    /// True when the archive itself is at fault (as opposed to an I/O failure or a
    /// caller's mistake): retrying the same archive cannot succeed.
    pub fn is_rejection(&self) -> bool {
        matches!(self, ArchiveError::Rejected { .. })
    }
}

impl From<ArchiveError> for io::Error {
    /// Lets [`Read`](std::io::Read) implementations surface a rejection; callers can
    /// get it back with `io::Error::get_ref()`/`into_inner()` and `downcast`.
    fn from(err: ArchiveError) -> io::Error {
        match err {
            ArchiveError::Io { source, .. } => source,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_entry_and_rule() {
        let err = ArchiveError::rejected(Some("a/../b"), Rule::ParentSegment, "`..` segment");
        assert_eq!(
            err.to_string(),
            "archive rejected: entry \"a/../b\": `..` segment (rule: parent_segment)"
        );
        assert_eq!(err.rule(), "parent_segment");
        assert_eq!(err.entry(), Some("a/../b"));
    }

    #[test]
    fn display_escapes_control_characters() {
        let err = ArchiveError::rejected(Some("a\nb"), Rule::ControlCharacter, "x");
        assert!(err.to_string().contains(r#""a\nb""#), "{err}");
    }

    #[test]
    fn structural_errors_have_no_entry() {
        let err = ArchiveError::rejected(None, Rule::Eocd, "bad end record");
        assert_eq!(
            err.to_string(),
            "archive rejected: bad end record (rule: eocd)"
        );
    }
}
