//! Reading tokens out of one file, by [`Format`].
//!
//! One module per format, each with its grammar in its doc comment: `json.rs` (W3C Design
//! Tokens and Style Dictionary), `css.rs` (custom properties), `scss.rs` (SCSS `$x` and
//! Less `@x` variables), `js.rs` (`export const`, `export default`, `module.exports`),
//! `android.rs` (value resources) and `constants.rs` (Swift `let`, Kotlin `val`); the
//! lexical helpers they share are in `text.rs` and, for the programming languages,
//! `code.rs`.
//!
//! What all readers share, because export files are untrusted input:
//! - the bytes must be UTF-8 (a leading byte order mark is dropped);
//! - time is linear in the input; nesting is tracked and a file nested deeper than
//!   [`MAX_DEPTH`] is refused instead of risking the stack;
//! - values are kept whole however long (the renderer shortens them), with whitespace
//!   runs collapsed to one space and comments dropped;
//! - malformed text is skipped statement by statement where the format allows it; only
//!   JSON and XML, which have one strict grammar, fail on a syntax error.

use super::{FileTokens, Format, ReadError};

mod android;
mod code;
mod constants;
mod css;
mod js;
mod json;
mod scss;
mod text;

/// The deepest nesting (JSON objects, CSS and SCSS blocks, JS objects, Swift and Kotlin
/// blocks) a file may have; design token files stay far below it.
pub const MAX_DEPTH: usize = 64;

/// The tokens in `bytes`, a file of `format`.
pub fn read(format: Format, bytes: &[u8]) -> Result<FileTokens, ReadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ReadError(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Json => json::read(text),
        Format::Css => css::read(text),
        Format::Scss => scss::read_scss(text),
        Format::Less => scss::read_less(text),
        Format::JavaScript => js::read(text),
        Format::AndroidXml => android::read(text),
        Format::Swift => constants::read_swift(text),
        Format::Kotlin => constants::read_kotlin(text),
    }
}

fn too_deep() -> ReadError {
    ReadError(format!("nested deeper than {MAX_DEPTH} levels"))
}

/// What the readers' tests compare: tokens as owned tuples.
#[cfg(test)]
mod testing {
    use super::{FileTokens, ReadError};

    /// Every token as (context, name, value), by context then name.
    pub fn flat(tokens: &FileTokens) -> Vec<(String, String, String)> {
        let mut all = Vec::new();
        for (context, names) in &tokens.contexts {
            for (name, value) in names {
                all.push((context.clone(), name.clone(), value.clone()));
            }
        }
        all
    }

    pub fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        list.iter()
            .map(|(c, n, v)| ((*c).to_owned(), (*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The (name, value) pairs of a format without contexts.
    pub fn plain(read: Result<FileTokens, ReadError>) -> Vec<(String, String)> {
        let read = read.unwrap();
        assert!(read.contexts.keys().all(String::is_empty));
        read.contexts.into_values().flatten().collect()
    }

    pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_names_the_offset() {
        for format in [Format::Json, Format::Css, Format::Kotlin] {
            assert_eq!(
                read(format, b"ab\xffcd"),
                Err(ReadError(
                    "not UTF-8 text (invalid byte at offset 2)".to_owned()
                ))
            );
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_text() {
        let tokens = read(Format::Json, "\u{feff}{\"a\": {\"$value\": 1}}".as_bytes()).unwrap();
        assert_eq!(tokens.contexts[""]["a"], "1");
    }
}
