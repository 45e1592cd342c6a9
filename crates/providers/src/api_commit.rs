//! Delivering a planned commit through a forge's git database API instead of a push
//! (`commits: api` on a GitHub connection): the forge creates the blobs, the tree and the
//! commit, and signs the commit for the token's identity. The commit is the plan's
//! (same tree, parent, message and trailer), so the next delivery, which fetches the
//! head branch with git, converges on it as on a pushed one. Written once over
//! [`GitDatabase`]; every call goes through the retry policy.

use crate::git::{ApiCommit, CommitId, Delivered, GitError, TreeChange};
use crate::provider::{BranchName, Provider, ProviderError, RepoSlug};
use crate::retry::RetryPolicy;

/// The largest file a commit created through the API may hold: GitHub blocks files over
/// 100 MiB ("About large files on GitHub", docs.github.com/repositories/working-with-files/
/// managing-large-files/about-large-files-on-github).
pub const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// The most paths one delivery through the API may change. Every added or modified file
/// is one `POST /git/blobs`, a content-creating request, and GitHub's secondary rate
/// limits allow no more than 80 of those a minute and 500 an hour ("Rate limits for the
/// REST API", docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api); 400
/// leaves room for the tree, the commit, the branch and the pull request's calls.
pub const MAX_CHANGED_PATHS: usize = 400;

/// Why a delivery through the API did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ApiCommitError {
    /// The export is beyond what the API takes; git can still push it.
    #[error(
        "{what}, over the limit of {limit} for commits created through the GitHub API (`commits: api`); set `commits: git` on the connection to push this export with git"
    )]
    Limit { what: String, limit: String },
    /// The connection's forge has no git database API.
    #[error("{provider} cannot create commits through its API; set `commits: git`")]
    Unsupported { provider: &'static str },
    /// The forge built something other than what was planned; nothing was moved.
    #[error("the forge's {what} is {found}, not the planned {expected}; the branch was not moved")]
    Mismatch {
        what: &'static str,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl ApiCommitError {
    /// The stable word reports and metrics show.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiCommitError::Limit { .. } => "api_limit",
            ApiCommitError::Unsupported { .. } => "api_unsupported",
            ApiCommitError::Mismatch { .. } => "api_mismatch",
            ApiCommitError::Git(e) => e.kind(),
            ApiCommitError::Provider(e) => e.kind(),
        }
    }

    pub fn is_transient(&self) -> bool {
        match self {
            ApiCommitError::Git(e) => e.is_transient(),
            ApiCommitError::Provider(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Refuses, before any call, an export the API cannot take.
pub fn check_limits(changes: &[TreeChange]) -> Result<(), ApiCommitError> {
    if changes.len() > MAX_CHANGED_PATHS {
        return Err(ApiCommitError::Limit {
            what: format!("the export changes {} files", changes.len()),
            limit: format!("{MAX_CHANGED_PATHS} changed files per delivery"),
        });
    }
    if let Some((path, size)) = changes
        .iter()
        .filter_map(|c| c.object.as_ref().map(|o| (&c.path, o.size)))
        .find(|(_, size)| *size > MAX_FILE_BYTES)
    {
        return Err(ApiCommitError::Limit {
            what: format!("{path} is {size} bytes"),
            limit: format!("{MAX_FILE_BYTES} bytes (100 MiB) per file"),
        });
    }
    Ok(())
}

/// Creates the planned commit on the forge and moves the head branch to it, but only if
/// the branch still points where it pointed when planning (absent stays absent): a commit
/// someone pushed meanwhile is never overwritten.
pub async fn deliver(
    provider: &dyn Provider,
    retry: &RetryPolicy,
    repo: &RepoSlug,
    commit: ApiCommit,
) -> Result<Delivered, ApiCommitError> {
    let db = provider.git_database().ok_or(ApiCommitError::Unsupported {
        provider: provider.kind(),
    })?;
    check_limits(commit.changes())?;
    for change in commit.changes() {
        let Some(object) = &change.object else {
            continue;
        };
        if object.on_base || change.is_submodule() {
            continue;
        }
        let content = commit.read_blob(&object.id).await?;
        let sha = retry
            .run("create blob", || db.create_blob(repo, &content))
            .await?;
        same("blob", &object.id, &sha)?;
    }
    let base_tree = commit.base_tree();
    let tree = retry
        .run("create tree", || {
            db.create_tree(repo, &base_tree, commit.changes())
        })
        .await?;
    // Git trees are content-addressed: the same id means the branch will hold exactly
    // the export the plan built.
    same("tree", &commit.new_tree(), &tree)?;
    let parent = commit.base_commit();
    let created = retry
        .run("create commit", || {
            db.create_commit(repo, commit.message(), &tree, &parent)
        })
        .await?;
    let branch = BranchName::new(commit.head_branch().to_owned());
    let expected = commit.head_before();
    let found = retry
        .run("head branch tip", || provider.branch_tip(repo, &branch))
        .await?;
    if found != expected {
        return Err(GitError::HeadMoved {
            branch: branch.to_string(),
            expected: name_tip(expected.as_ref()),
            found: name_tip(found.as_ref()),
        }
        .into());
    }
    let moved = match expected {
        None => {
            retry
                .run("create head branch", || {
                    db.create_branch(repo, &branch, &created)
                })
                .await
        }
        Some(_) => {
            retry
                .run("move head branch", || {
                    db.move_branch(repo, &branch, &created)
                })
                .await
        }
    };
    if let Err(error) = moved {
        // An answer lost after the forge applied the update looks like a failure (or,
        // retried, like a conflict): the branch holding our commit is success.
        let now = retry
            .run("head branch tip", || provider.branch_tip(repo, &branch))
            .await?;
        if now.as_ref() != Some(&created) {
            return Err(error.into());
        }
    }
    tracing::info!(commit = %created, "commit created through the forge's API");
    Ok(commit.delivered(created))
}

fn same(what: &'static str, expected: &str, found: &str) -> Result<(), ApiCommitError> {
    if expected.eq_ignore_ascii_case(found) {
        Ok(())
    } else {
        Err(ApiCommitError::Mismatch {
            what,
            expected: expected.to_owned(),
            found: found.to_owned(),
        })
    }
}

fn name_tip(tip: Option<&CommitId>) -> String {
    tip.map_or_else(|| "no branch".to_owned(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::ChangedObject;

    fn file(path: &str, size: u64) -> TreeChange {
        TreeChange {
            path: path.to_owned(),
            mode: 0o100644,
            object: Some(ChangedObject {
                id: "0".repeat(40),
                size,
                on_base: false,
            }),
        }
    }

    #[test]
    fn limits_name_the_file_or_the_count_and_the_way_out() {
        assert!(check_limits(&[file("a", MAX_FILE_BYTES)]).is_ok());
        let big = check_limits(&[file("a", 1), file("tokens/big.bin", MAX_FILE_BYTES + 1)])
            .unwrap_err()
            .to_string();
        assert!(big.contains("tokens/big.bin is 104857601 bytes"), "{big}");
        assert!(big.contains("104857600 bytes (100 MiB) per file"), "{big}");
        assert!(big.contains("`commits: git`"), "{big}");
        let many: Vec<TreeChange> = (0..=MAX_CHANGED_PATHS)
            .map(|i| file(&format!("f{i}"), 1))
            .collect();
        let many = check_limits(&many).unwrap_err().to_string();
        assert!(many.contains("changes 401 files"), "{many}");
        assert!(many.contains("400 changed files per delivery"), "{many}");
        assert!(check_limits(&many_ok()).is_ok());
    }

    fn many_ok() -> Vec<TreeChange> {
        (0..MAX_CHANGED_PATHS)
            .map(|i| file(&format!("f{i}"), 1))
            .collect()
    }
}
