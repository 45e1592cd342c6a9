use super::{FileTokens, ReadError};
pub(super) fn read_scss(_text: &str) -> Result<FileTokens, ReadError> {
    Ok(FileTokens::default())
}
pub(super) fn read_less(_text: &str) -> Result<FileTokens, ReadError> {
    Ok(FileTokens::default())
}
