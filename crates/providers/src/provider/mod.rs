//! The one interface Courier has to a forge's pull-request API, and our own types at that
//! boundary. Each forge (`github`, `gitlab`, `azure`) implements [`Provider`] on its SDK and
//! converts SDK types into these inside its own module; nothing outside this crate sees an
//! SDK type. The plain `git` kind has no provider: it only pushes.

mod error;
mod git_database;
mod types;

pub use error::ProviderError;
pub use git_database::GitDatabase;
pub use types::{
    AutoMerge, BranchName, Comment, Decorations, NewPullRequest, PrNumber, PrState, PullRequest,
    PullRequestUpdate, PushCredentials, RepoSlug, Warning,
};

use crate::git::CommitId;

/// A forge's pull-request API, as Courier uses it. Every method is one logical operation;
/// retries for transient errors and rate limits are the caller's (one policy for all
/// forges), so implementations map answers to [`ProviderError`] faithfully and never retry.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// `github`, `gitlab` or `azure`, for logs, metrics and reports.
    fn kind(&self) -> &'static str;

    /// The longest pull request description the forge accepts, in characters. The shared
    /// code cuts a longer one to this before it creates, updates or compares, so what it
    /// compares is what the forge holds.
    fn max_description_len(&self) -> usize;

    /// The user name and token the git engine should push with. For a GitHub App this mints
    /// (or reuses a cached) installation token, so it is async and can fail.
    async fn push_credentials(&self, repo: &RepoSlug) -> Result<PushCredentials, ProviderError>;

    /// The open pull request whose head is `head` in `repo` (and whose base is `base`), if any.
    async fn find_open(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
        base: &BranchName,
    ) -> Result<Option<PullRequest>, ProviderError>;

    /// The most recent pull request from `head` that was closed without being merged, so a
    /// new one can mention it.
    async fn find_closed_unmerged(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
    ) -> Result<Option<PullRequest>, ProviderError>;

    /// Opens a pull request. "Already exists" answers are [`ProviderError::Conflict`], which
    /// the caller resolves by looking the existing one up.
    async fn create(
        &self,
        repo: &RepoSlug,
        pr: &NewPullRequest,
    ) -> Result<PullRequest, ProviderError>;

    /// Rewrites title and/or description (fields left `None` are not sent).
    async fn update(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest, ProviderError>;

    /// Applies labels, reviewers and assignees. What the forge refuses (an unknown
    /// reviewer, say) comes back as warnings: decorations never fail a delivery.
    async fn decorate(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        decorations: &Decorations,
    ) -> Result<Vec<Warning>, ProviderError>;

    /// Adds a comment to the pull request's conversation.
    async fn comment(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        body: &str,
    ) -> Result<(), ProviderError>;

    /// The conversation's comments, oldest first (all pages).
    async fn list_comments(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
    ) -> Result<Vec<Comment>, ProviderError>;

    /// Closes (abandons, on Azure) the pull request without merging.
    async fn close(&self, repo: &RepoSlug, number: PrNumber) -> Result<(), ProviderError>;

    /// Where a branch points now; `None` when there is no such branch.
    async fn branch_tip(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
    ) -> Result<Option<CommitId>, ProviderError>;

    /// Deletes a branch that points at `expected` (the tip Courier decided on); a branch
    /// already gone is success. Where the forge can make the delete itself conditional
    /// (Azure DevOps' `oldObjectId`) it does, and a branch that moved is
    /// [`ProviderError::Conflict`]; GitHub and GitLab cannot, so the caller re-reads the
    /// tip with [`Provider::branch_tip`] right before.
    async fn delete_branch(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
        expected: &CommitId,
    ) -> Result<(), ProviderError>;

    /// The forge's git database API, through which Courier can create a delivery's commit
    /// instead of pushing it; `None` (the default) where the forge has none.
    fn git_database(&self) -> Option<&dyn GitDatabase> {
        None
    }

    /// Asks the forge to merge the pull request once its checks pass. Where the repository
    /// does not allow it, the answer is [`AutoMerge::Unavailable`] with the reason.
    async fn enable_auto_merge(
        &self,
        repo: &RepoSlug,
        pr: &PullRequest,
    ) -> Result<AutoMerge, ProviderError>;
}
