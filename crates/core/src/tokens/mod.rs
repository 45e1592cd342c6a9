//! Design tokens in an export: read them out of the files a delivery changes (in the
//! base and in the new tree) and say what changed, so a reviewer of a pull request reads
//! "`color.primary.500`: `#0969DA` -> `#0550AE`" instead of a list of files.
//!
//! - [`read`]: one file's tokens, by format (chosen from the file name).
//! - [`diff`]: the token changes between two versions of a set of files.
//! - [`render`]: those changes as Markdown that fits a forge's description limit.
//!
//! Reading never fails a delivery: a file that cannot be read is named in the diff's
//! notes, and a file the readers do not know counts as a file change only.

use std::collections::BTreeMap;

use serde::Serialize;

pub mod diff;
pub mod read;
pub mod render;

pub use diff::{FileDiff, FileNote, TokenChange, TokenDiff, TokenDiffBuilder};

/// Files bigger than this are not read for tokens (the diff says they were skipped).
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// A file format tokens are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// W3C Design Tokens (`$value`) or Style Dictionary (`value`) JSON.
    Json,
    /// CSS custom properties, `--name: value;`, with the rule's selector as context.
    Css,
    /// SCSS variables, `$name: value;`.
    Scss,
    /// Less variables, `@name: value;`.
    Less,
    /// JavaScript or TypeScript `export const NAME = value;`.
    JavaScript,
    /// Android value resources: `<color>`, `<dimen>`, ... in `res/values*/*.xml`.
    AndroidXml,
    /// Swift `static let name = value` / `let name = value` constants.
    Swift,
    /// Kotlin `val name = value` constants.
    Kotlin,
}

impl Format {
    /// The format of a file, from its path (`/`-separated); `None`: not a token file
    /// Courier reads (it still counts as a changed file).
    pub fn of(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (_, ext) = name.rsplit_once('.')?;
        Some(match ext.to_ascii_lowercase().as_str() {
            "json" => Format::Json,
            "css" => Format::Css,
            "scss" => Format::Scss,
            "less" => Format::Less,
            "js" | "mjs" | "cjs" | "ts" | "mts" | "cts" => Format::JavaScript,
            "xml" => Format::AndroidXml,
            "swift" => Format::Swift,
            "kt" | "kts" => Format::Kotlin,
            _ => return None,
        })
    }
}

/// The tokens of one file: by context (a CSS rule's selector such as `:root` or
/// `[data-theme=dark]`; empty when the format has none: an Android `values-night`
/// file is a file of its own), then by name, each with its value as written (whitespace collapsed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTokens {
    pub contexts: BTreeMap<String, BTreeMap<String, String>>,
}

impl FileTokens {
    /// Sets a token; a later definition of the same name in the same context wins, as
    /// it does in CSS and in the languages read here.
    pub fn insert(&mut self, context: &str, name: impl Into<String>, value: impl Into<String>) {
        self.contexts
            .entry(context.to_owned())
            .or_default()
            .insert(name.into(), value.into());
    }

    /// How many tokens, over all contexts.
    pub fn len(&self) -> usize {
        self.contexts.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a file's tokens could not be read; the message names no path (the caller adds it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);
