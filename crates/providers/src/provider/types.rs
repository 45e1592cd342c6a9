//! Our own types at the forge boundary. SDK types are converted into these inside each
//! forge's module.

use std::fmt;

use secrecy::SecretString;
use serde::Serialize;

/// A repository as its forge names it: GitHub `owner/repo`, GitLab `group/…/project`,
/// Azure DevOps `project/repository`. Validated by the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RepoSlug(String);

impl RepoSlug {
    pub fn new(slug: impl Into<String>) -> RepoSlug {
        RepoSlug(slug.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the last `/` (GitHub owner, GitLab namespace, Azure project) and
    /// the last part (repository or project name).
    pub fn split_last(&self) -> (&str, &str) {
        self.0.rsplit_once('/').unwrap_or(("", &self.0))
    }
}

impl fmt::Display for RepoSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A branch name without `refs/heads/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BranchName(String);

impl BranchName {
    pub fn new(name: impl Into<String>) -> BranchName {
        let name = name.into();
        match name.strip_prefix("refs/heads/") {
            Some(short) => BranchName(short.to_owned()),
            None => BranchName(name),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `refs/heads/<name>`, as Azure DevOps wants it.
    pub fn as_ref_name(&self) -> String {
        format!("refs/heads/{}", self.0)
    }
}

impl fmt::Display for BranchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// GitHub pull request number, GitLab merge request IID, Azure pull request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PrNumber(pub u64);

impl fmt::Display for PrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrState {
    Open,
    Closed,
    Merged,
}

/// A pull request (merge request on GitLab), normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    pub number: PrNumber,
    /// The page a person opens.
    pub url: String,
    pub state: PrState,
    pub title: String,
    pub body: String,
    pub head: BranchName,
    pub base: BranchName,
    pub draft: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest {
    pub title: String,
    pub body: String,
    pub head: BranchName,
    pub base: BranchName,
    pub draft: bool,
}

/// Fields to rewrite; `None` leaves the forge's value as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequestUpdate {
    pub title: Option<String>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decorations {
    pub labels: Vec<String>,
    /// User names (GitHub logins, GitLab usernames, Azure unique names or ids).
    pub reviewers: Vec<String>,
    /// GitHub team slugs; other forges warn that they have none.
    pub team_reviewers: Vec<String>,
    pub assignees: Vec<String>,
}

/// A comment in a pull request's conversation, as far as Courier reads it: to find the
/// ones it wrote (they carry a hidden marker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub id: u64,
    pub body: String,
}

/// Something the forge declined that does not fail the delivery; recorded and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning(pub String);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AutoMerge {
    Enabled,
    Unavailable { reason: String },
}

/// What the git engine pushes with: the forge's expected user name and a token.
#[derive(Clone)]
pub struct PushCredentials {
    pub username: String,
    pub token: SecretString,
}

impl fmt::Debug for PushCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushCredentials")
            .field("username", &self.username)
            .field("token", &"[redacted]")
            .finish()
    }
}
