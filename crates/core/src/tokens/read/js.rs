use super::{FileTokens, ReadError};
pub(super) fn read(_text: &str) -> Result<FileTokens, ReadError> {
    Ok(FileTokens::default())
}
