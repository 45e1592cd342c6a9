use super::{FileTokens, ReadError};
pub(super) fn read_swift(_text: &str) -> Result<FileTokens, ReadError> {
    Ok(FileTokens::default())
}
pub(super) fn read_kotlin(_text: &str) -> Result<FileTokens, ReadError> {
    Ok(FileTokens::default())
}
