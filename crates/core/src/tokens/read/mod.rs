//! Reading tokens out of one file, by [`Format`].

use super::{FileTokens, Format, ReadError};

/// The tokens in `bytes`, a file of `format`.
pub fn read(format: Format, bytes: &[u8]) -> Result<FileTokens, ReadError> {
    let _ = (format, bytes);
    Err(ReadError("no reader yet".to_owned()))
}
