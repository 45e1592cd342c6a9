//! GitHub's Git database REST API (`/git/blobs`, `/git/trees`, `/git/commits`,
//! `/git/refs`): the commit is created by GitHub, which signs it for the token's identity
//! (an App's bot or the token's user) when no author or committer is given.

use base64::Engine as _;
use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GitHubProvider;
use super::client::multi_segment;
use super::error::PROVIDER;
use crate::git::{CommitId, TreeChange};
use crate::provider::{BranchName, GitDatabase, ProviderError, RepoSlug};

#[derive(Deserialize)]
struct GhSha {
    sha: String,
}

/// A tree entry as `POST /git/trees` takes it; `sha: null` deletes the path.
fn tree_entry(change: &TreeChange) -> Value {
    json!({
        "path": change.path,
        "mode": format!("{:06o}", change.mode),
        "type": if change.is_submodule() { "commit" } else { "blob" },
        "sha": change.object.as_ref().map(|o| o.id.as_str()),
    })
}

impl GitHubProvider {
    async fn post_for_sha(
        &self,
        repo: &RepoSlug,
        rest: &str,
        body: &Value,
        what: &str,
    ) -> Result<String, ProviderError> {
        let path = self.repo_path(repo, rest);
        let created: GhSha = self
            .call(repo, Method::POST, &path, Some(body), what)
            .await?
            .json(what)?;
        Ok(created.sha)
    }
}

#[async_trait::async_trait]
impl GitDatabase for GitHubProvider {
    async fn create_blob(&self, repo: &RepoSlug, content: &[u8]) -> Result<String, ProviderError> {
        let what = format!("create a blob of {} bytes in {repo}", content.len());
        let body = json!({
            "content": base64::engine::general_purpose::STANDARD.encode(content),
            "encoding": "base64",
        });
        self.post_for_sha(repo, "/git/blobs", &body, &what).await
    }

    async fn create_tree(
        &self,
        repo: &RepoSlug,
        base_tree: &str,
        changes: &[TreeChange],
    ) -> Result<String, ProviderError> {
        let what = format!("create a tree of {} change(s) in {repo}", changes.len());
        let body = json!({
            "base_tree": base_tree,
            "tree": changes.iter().map(tree_entry).collect::<Vec<_>>(),
        });
        self.post_for_sha(repo, "/git/trees", &body, &what).await
    }

    async fn create_commit(
        &self,
        repo: &RepoSlug,
        message: &str,
        tree: &str,
        parent: &CommitId,
    ) -> Result<CommitId, ProviderError> {
        let what = format!("create a commit in {repo}");
        // No author, committer or signature: GitHub then uses the token's identity and
        // signs the commit itself.
        let body = json!({ "message": message, "tree": tree, "parents": [parent.as_str()] });
        let sha = self
            .post_for_sha(repo, "/git/commits", &body, &what)
            .await?;
        CommitId::parse(&sha).ok_or_else(|| ProviderError::Invalid {
            provider: PROVIDER,
            message: format!("{what}: {sha:?} is not a commit id"),
        })
    }

    async fn create_branch(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
        commit: &CommitId,
    ) -> Result<(), ProviderError> {
        let what = format!("create branch {branch} in {repo}");
        let body =
            json!({ "ref": format!("refs/heads/{}", branch.as_str()), "sha": commit.as_str() });
        let path = self.repo_path(repo, "/git/refs");
        self.call(repo, Method::POST, &path, Some(&body), &what)
            .await?;
        Ok(())
    }

    async fn move_branch(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
        commit: &CommitId,
    ) -> Result<(), ProviderError> {
        let what = format!("move branch {branch} in {repo}");
        let body = json!({ "sha": commit.as_str(), "force": true });
        let path = self.repo_path(
            repo,
            &format!("/git/refs/heads/{}", multi_segment(branch.as_str())),
        );
        self.call(repo, Method::PATCH, &path, Some(&body), &what)
            .await?;
        Ok(())
    }
}
