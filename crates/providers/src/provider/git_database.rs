//! A forge's git database API: building a commit out of blobs, a tree and a commit object
//! on the forge itself, and moving a branch to it. GitHub has one (and signs what it
//! creates); the other forges do not, and [`Provider::git_database`](super::Provider::git_database)
//! is `None` for them.

use super::{BranchName, ProviderError, RepoSlug};
use crate::git::{CommitId, TreeChange};

/// One operation per method, like [`Provider`](super::Provider): retries are the caller's.
#[async_trait::async_trait]
pub trait GitDatabase: Send + Sync {
    /// Stores `content` as a blob; its id (40 hex digits).
    async fn create_blob(&self, repo: &RepoSlug, content: &[u8]) -> Result<String, ProviderError>;

    /// A tree made of `base_tree` with `changes` applied (a deletion where the change has
    /// no object); its id.
    async fn create_tree(
        &self,
        repo: &RepoSlug,
        base_tree: &str,
        changes: &[TreeChange],
    ) -> Result<String, ProviderError>;

    /// A commit of `tree` on `parent` with `message`, author and committer left to the
    /// forge (the token's identity), so that the forge signs it.
    async fn create_commit(
        &self,
        repo: &RepoSlug,
        message: &str,
        tree: &str,
        parent: &CommitId,
    ) -> Result<CommitId, ProviderError>;

    /// Creates `branch` at `commit`; a branch that exists is [`ProviderError::Conflict`]
    /// or [`ProviderError::Invalid`], as the forge answers.
    async fn create_branch(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
        commit: &CommitId,
    ) -> Result<(), ProviderError>;

    /// Points an existing `branch` at `commit`, whatever it held (not a fast-forward:
    /// the delivery's commit replaces Courier's previous one). The caller re-reads the
    /// tip right before, as GitHub cannot make the update conditional.
    async fn move_branch(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
        commit: &CommitId,
    ) -> Result<(), ProviderError>;
}
