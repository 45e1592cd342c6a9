//! The rules an export must meet at a target before any git work, judged the same way by
//! `courier inspect`, `dry-run`, `deliver` and the server.

use courier_core::archive::Export;
use courier_core::config::Target;
use courier_providers::git::GitError;

/// Why this export may not go to this target, or `None` when it may. The git engine
/// checks the same rule again as a last line of defence; the words are its error's.
pub fn export_refusal(target: &Target, export: &Export) -> Option<String> {
    if !target.allow_empty_export && export.is_empty() {
        let path = target
            .relative_path
            .as_ref()
            .map_or_else(|| "the repository root".to_owned(), |p| p.to_string());
        return Some(GitError::EmptyExport { path }.to_string());
    }
    None
}
