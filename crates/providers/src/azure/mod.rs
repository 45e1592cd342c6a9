//! Azure DevOps Services (dev.azure.com) and Azure DevOps Server collections, on the
//! generated `azure_devops_rust_api` Git client with a personal access token.
//!
//! Every Git call is one documented in `specification/git/7.1/git.json` (the test suite
//! checks each request the fake receives against it) and carries `api-version=7.1`. The
//! one call outside the Git description is `GET {organization}/_apis/connectionData`,
//! which tells us the PAT's identity id, needed to set auto-complete.

mod client;
mod error;

use courier_core::proxy::Proxies;
use std::time::Duration;

use azure_devops_rust_api::git::Client as GitClient;
use azure_devops_rust_api::git::models::{
    self, GitPullRequest, GitPullRequestCommentThread, GitPullRequestCreateOptions,
    GitPullRequestUpdateOptions, GitRefUpdate, IdentityRef, IdentityRefWithVote, PullRequestStatus,
    WebApiCreateTagRequestData, comment, git_pull_request, git_ref_update_result::UpdateStatus,
};
use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::OnceCell;
use url::Url;

use self::client::{RawApi, Timeouts};
use self::error::{PROVIDER, SCOPES_HINT, map_error};
use crate::forge::decorations::is_refusal;
use crate::forge::http::{decode_json, encode_segment};
use crate::git::CommitId;
use crate::provider::{
    AutoMerge, BranchName, Comment, Decorations, NewPullRequest, PrNumber, PrState, Provider,
    ProviderError, PullRequest, PullRequestUpdate, PushCredentials, RepoSlug, Warning,
};

/// Azure DevOps refuses pull request descriptions longer than this (characters).
pub const MAX_DESCRIPTION_CHARS: usize = 4000;

/// The all-zero object id that deletes a ref in a refs update.
const ZERO_OBJECT_ID: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// Server root: `https://dev.azure.com` (default) or, for Azure DevOps Server, the
    /// part of a collection URL before the collection (`https://tfs.example.com/tfs`).
    pub base_url: Url,
    /// The organization (Services) or collection (Server), e.g. `contoso` or
    /// `DefaultCollection`.
    pub organization: String,
    pub token: SecretString,
    /// User name git pushes with; Azure DevOps ignores it but git needs one.
    /// Default `courier`.
    pub push_username: String,
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Longest silence while reading an answer. Default 30 s.
    pub read_timeout: Duration,
    /// Bound on one whole call. Default 60 s.
    pub request_timeout: Duration,
    /// Certificate authorities trusted on top of the system's (DER). Default: none.
    pub extra_roots: Vec<Vec<u8>>,
    /// The proxies its calls go through. Default: none (direct).
    pub proxy: Proxies,
}

impl AzureConfig {
    /// Azure DevOps Services: `https://dev.azure.com/{organization}`.
    pub fn new(organization: &str, token: SecretString) -> AzureConfig {
        AzureConfig {
            base_url: Url::parse("https://dev.azure.com").expect("constant URL"),
            organization: organization.to_owned(),
            token,
            push_username: "courier".to_owned(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            extra_roots: Vec::new(),
            proxy: Proxies::direct(),
        }
    }

    /// An organization under another server root (`https://dev.azure.com`, a test fake).
    pub fn with_base_url(mut self, base_url: &str) -> Result<AzureConfig, AzureSetupError> {
        self.base_url = parse_base(base_url)?;
        Ok(self)
    }

    /// Azure DevOps Server: a collection URL such as
    /// `https://tfs.example.com/tfs/DefaultCollection`; its last path segment is the
    /// collection, which the API addresses where Services has the organization.
    pub fn server_collection(
        collection_url: &str,
        token: SecretString,
    ) -> Result<AzureConfig, AzureSetupError> {
        let url = parse_base(collection_url)?;
        let path = url.path().trim_end_matches('/');
        let (root, collection) = path.rsplit_once('/').unwrap_or(("", path));
        if collection.is_empty() {
            return Err(AzureSetupError::BaseUrl {
                url: collection_url.to_owned(),
                reason: "a collection URL ends with the collection's name, e.g. \
                         https://tfs.example.com/tfs/DefaultCollection"
                    .into(),
            });
        }
        let mut base = url.clone();
        base.set_path(root);
        let mut config = AzureConfig::new(&percent_decode(collection), token);
        config.base_url = base;
        Ok(config)
    }
}

fn parse_base(text: &str) -> Result<Url, AzureSetupError> {
    let url = Url::parse(text).map_err(|e| AzureSetupError::BaseUrl {
        url: text.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(AzureSetupError::BaseUrl {
            url: text.to_owned(),
            reason: "the scheme must be https (or http for a local server)".into(),
        });
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(AzureSetupError::BaseUrl {
            url: text.to_owned(),
            reason: "no query and no credentials in the URL: the PAT is configured separately"
                .into(),
        });
    }
    Ok(url)
}

/// What stops the provider from being built; a person fixes the configuration.
#[derive(Debug, thiserror::Error)]
pub enum AzureSetupError {
    #[error("Azure DevOps base URL {url:?} is not usable: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("Azure DevOps organization {0:?} is not a valid name")]
    Organization(String),
    #[error("Azure DevOps HTTP client could not be built: {0}")]
    Client(String),
}

pub struct AzureProvider {
    git: GitClient,
    raw: RawApi,
    base_url: Url,
    /// Percent-encoded, ready to be a path segment.
    organization: String,
    token: SecretString,
    push_username: String,
    /// The PAT's identity id, from `connectionData`, looked up once.
    identity: OnceCell<String>,
}

impl std::fmt::Debug for AzureProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureProvider")
            .field("base_url", &self.base_url.as_str())
            .field("organization", &self.organization)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// A repository as the API addresses it: both parts percent-encoded path segments.
struct Repo {
    project: String,
    repository: String,
    slug: String,
}

impl AzureProvider {
    pub fn new(config: AzureConfig) -> Result<AzureProvider, AzureSetupError> {
        let organization = config.organization.trim();
        if organization.is_empty() || organization.contains('/') {
            return Err(AzureSetupError::Organization(config.organization.clone()));
        }
        let transport = client::transport(
            &Timeouts {
                connect: config.connect_timeout,
                read: config.read_timeout,
                request: config.request_timeout,
            },
            &config.extra_roots,
            &config.proxy,
        )
        .map_err(AzureSetupError::Client)?;
        let mut base_url = config.base_url.clone();
        // `.../tfs/` and `.../tfs` mean the same root.
        let trimmed = base_url.path().trim_end_matches('/').to_owned();
        base_url.set_path(&trimmed);
        Ok(AzureProvider {
            git: client::git_client(&base_url, &config.token, transport.clone()),
            raw: RawApi::new(&config.token, transport),
            base_url,
            organization: encode_segment(organization),
            token: config.token,
            push_username: config.push_username,
            identity: OnceCell::new(),
        })
    }

    fn repo(&self, slug: &RepoSlug) -> Result<Repo, ProviderError> {
        let (project, repository) = slug.split_last();
        if project.is_empty() || repository.is_empty() || project.contains('/') {
            return Err(ProviderError::Invalid {
                provider: PROVIDER,
                message: format!(
                    "Azure DevOps repositories are named project/repository; got {slug:?}"
                ),
            });
        }
        Ok(Repo {
            project: encode_segment(project),
            repository: encode_segment(repository),
            slug: slug.as_str().to_owned(),
        })
    }

    /// The page a person opens: `{base}/{org}/{project}/_git/{repo}/pullrequest/{id}`.
    fn web_url(&self, repo: &Repo, id: i32) -> String {
        format!(
            "{}/{}/{}/_git/{}/pullrequest/{id}",
            self.base_url.as_str().trim_end_matches('/'),
            self.organization,
            repo.project,
            repo.repository
        )
    }

    fn convert(&self, repo: &Repo, pr: GitPullRequest) -> PullRequest {
        let state = match pr.status {
            git_pull_request::Status::Active => PrState::Open,
            git_pull_request::Status::Completed => PrState::Merged,
            // `abandoned`; `notSet`/`all` do not describe one pull request.
            _ => PrState::Closed,
        };
        PullRequest {
            number: PrNumber(u64::try_from(pr.pull_request_id).unwrap_or_default()),
            url: self.web_url(repo, pr.pull_request_id),
            state,
            title: pr.title.unwrap_or_default(),
            body: pr.description.unwrap_or_default(),
            head: BranchName::new(pr.source_ref_name),
            base: BranchName::new(pr.target_ref_name),
            draft: pr.is_draft,
        }
    }

    async fn search(
        &self,
        repo: &Repo,
        head: &BranchName,
        base: Option<&BranchName>,
        status: PullRequestStatus,
    ) -> Result<Vec<GitPullRequest>, ProviderError> {
        let mut request = self
            .git
            .pull_requests_client()
            .get_pull_requests(&self.organization, &repo.repository, &repo.project)
            .search_criteria_source_ref_name(head.as_ref_name())
            .search_criteria_status(status);
        if let Some(base) = base {
            request = request.search_criteria_target_ref_name(base.as_ref_name());
        }
        let list = request
            .await
            .map_err(|e| map_error(&e, &format!("pull requests from {head} in {}", repo.slug)))?;
        Ok(list.value)
    }

    async fn patch(
        &self,
        repo: &Repo,
        number: PrNumber,
        update: GitPullRequestUpdateOptions,
    ) -> Result<GitPullRequest, ProviderError> {
        self.git
            .pull_requests_client()
            .update(
                &self.organization,
                &repo.repository,
                &repo.project,
                pr_id(number)?,
                update,
            )
            .await
            .map_err(|e| map_error(&e, &pr_what(number, repo)))
    }

    /// The object id `refs/heads/<branch>` points at, if the branch exists.
    async fn current_ref(
        &self,
        repo: &Repo,
        branch: &BranchName,
        what: &str,
    ) -> Result<Option<String>, ProviderError> {
        let ref_name = branch.as_ref_name();
        // `filter` is a prefix match (`heads/x` also finds `heads/x-y`): compare names.
        let refs = self
            .git
            .refs_client()
            .list(&self.organization, &repo.repository, &repo.project)
            .filter(format!("heads/{}", branch.as_str()))
            .await
            .map_err(|e| map_error(&e, what))?;
        Ok(refs
            .value
            .into_iter()
            .find(|r| r.name == ref_name)
            .map(|r| r.object_id))
    }

    /// The PAT's identity id (`authenticatedUser.id` of `connectionData`), cached.
    async fn identity(&self) -> Result<String, ProviderError> {
        self.identity
            .get_or_try_init(|| async {
                let mut url = self.base_url.clone();
                let path = format!(
                    "{}/{}/_apis/connectionData",
                    url.path().trim_end_matches('/'),
                    self.organization
                );
                url.set_path(&path);
                let what = "the PAT's identity (connectionData)";
                let raw = self.raw.get(url).await.map_err(|e| map_error(&e, what))?;
                let data: ConnectionData =
                    decode_json(PROVIDER, raw.body(), what, "unexpected answer")?;
                Ok(data.authenticated_user.id)
            })
            .await
            .cloned()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionData {
    authenticated_user: ConnectionIdentity,
}

#[derive(Deserialize)]
struct ConnectionIdentity {
    id: String,
}

fn pr_id(number: PrNumber) -> Result<i32, ProviderError> {
    i32::try_from(number.0).map_err(|_| ProviderError::Invalid {
        provider: PROVIDER,
        message: format!("pull request id {number} is out of Azure DevOps' range"),
    })
}

fn pr_what(number: PrNumber, repo: &Repo) -> String {
    format!("pull request {number} in {}", repo.slug)
}

/// Identity ids are GUIDs; the reviewer API takes nothing else.
fn is_identity_id(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl Provider for AzureProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn max_description_len(&self) -> usize {
        MAX_DESCRIPTION_CHARS
    }

    async fn push_credentials(&self, _repo: &RepoSlug) -> Result<PushCredentials, ProviderError> {
        Ok(PushCredentials {
            username: self.push_username.clone(),
            token: self.token.clone(),
        })
    }

    async fn find_open(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
        base: &BranchName,
    ) -> Result<Option<PullRequest>, ProviderError> {
        let repo = self.repo(repo)?;
        let found = self
            .search(&repo, head, Some(base), PullRequestStatus::Active)
            .await?;
        // Azure DevOps allows one active pull request per source and target; take the
        // newest should that ever not hold.
        Ok(found
            .into_iter()
            .max_by_key(|pr| pr.pull_request_id)
            .map(|pr| self.convert(&repo, pr)))
    }

    async fn find_closed_unmerged(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
    ) -> Result<Option<PullRequest>, ProviderError> {
        let repo = self.repo(repo)?;
        let found = self
            .search(&repo, head, None, PullRequestStatus::Abandoned)
            .await?;
        Ok(found
            .into_iter()
            .max_by_key(|pr| pr.pull_request_id)
            .map(|pr| self.convert(&repo, pr)))
    }

    async fn create(
        &self,
        repo: &RepoSlug,
        pr: &NewPullRequest,
    ) -> Result<PullRequest, ProviderError> {
        let repo = self.repo(repo)?;
        let mut options = GitPullRequestCreateOptions::new(
            pr.head.as_ref_name(),
            pr.base.as_ref_name(),
            pr.title.clone(),
        );
        options.description = Some(pr.body.clone());
        options.is_draft = Some(pr.draft);
        let created = self
            .git
            .pull_requests_client()
            .create(&self.organization, &repo.repository, &repo.project, options)
            .await
            .map_err(|e| {
                map_error(
                    &e,
                    &format!("repository {} (creating a pull request)", repo.slug),
                )
            })?;
        Ok(self.convert(&repo, created))
    }

    async fn update(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest, ProviderError> {
        let repo = self.repo(repo)?;
        if update.title.is_none() && update.body.is_none() {
            let current = self
                .git
                .pull_requests_client()
                .get_pull_request(
                    &self.organization,
                    &repo.repository,
                    pr_id(number)?,
                    &repo.project,
                )
                .await
                .map_err(|e| map_error(&e, &pr_what(number, &repo)))?;
            return Ok(self.convert(&repo, current));
        }
        let mut options = GitPullRequestUpdateOptions::new();
        options.title = update.title.clone();
        options.description = update.body.clone();
        let updated = self.patch(&repo, number, options).await?;
        Ok(self.convert(&repo, updated))
    }

    async fn decorate(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        decorations: &Decorations,
    ) -> Result<Vec<Warning>, ProviderError> {
        let repo = self.repo(repo)?;
        let id = pr_id(number)?;
        let mut warnings = Vec::new();
        for label in &decorations.labels {
            let result = self
                .git
                .pull_request_labels_client()
                .create(
                    &self.organization,
                    WebApiCreateTagRequestData::new(label.clone()),
                    &repo.repository,
                    id,
                    &repo.project,
                )
                .await
                .map_err(|e| map_error(&e, &pr_what(number, &repo)));
            match result {
                Ok(_) => {}
                Err(error) if is_refusal(&error) => {
                    warnings.push(Warning(format!("label {label:?} was not added: {error}")))
                }
                Err(error) => return Err(error),
            }
        }
        for reviewer in &decorations.reviewers {
            if !is_identity_id(reviewer) {
                warnings.push(Warning(format!(
                    "reviewer {reviewer:?} was not added: Azure DevOps takes reviewers by \
                     identity id (a GUID, shown in the user's profile or by \
                     `az devops user show`); Courier does not look names up"
                )));
                continue;
            }
            let mut vote = IdentityRefWithVote::new(IdentityRef::new(reviewer.clone()));
            vote.vote = Some(0);
            let result = self
                .git
                .pull_request_reviewers_client()
                .create_pull_request_reviewer(
                    &self.organization,
                    vote,
                    &repo.repository,
                    id,
                    reviewer.clone(),
                    &repo.project,
                )
                .await
                .map_err(|e| map_error(&e, &format!("reviewer {reviewer}")));
            match result {
                Ok(_) => {}
                Err(error) if is_refusal(&error) => warnings.push(Warning(format!(
                    "reviewer {reviewer:?} was not added: {error}"
                ))),
                Err(error) => return Err(error),
            }
        }
        for team in &decorations.team_reviewers {
            warnings.push(Warning(format!(
                "team reviewer {team:?} was not added: Azure DevOps has no team slugs; \
                 list the team's identity id under reviewers instead"
            )));
        }
        for assignee in &decorations.assignees {
            warnings.push(Warning(format!(
                "assignee {assignee:?} was not set: Azure DevOps pull requests have no assignees"
            )));
        }
        Ok(warnings)
    }

    async fn comment(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        body: &str,
    ) -> Result<(), ProviderError> {
        let repo = self.repo(repo)?;
        let mut text = models::Comment::new();
        text.content = Some(body.to_owned());
        text.comment_type = Some(comment::CommentType::Text);
        text.parent_comment_id = Some(0);
        let mut thread = GitPullRequestCommentThread::new();
        thread.comment_thread.comments = vec![text];
        self.git
            .pull_request_threads_client()
            .create(
                &self.organization,
                thread,
                &repo.repository,
                pr_id(number)?,
                &repo.project,
            )
            .await
            .map_err(|e| map_error(&e, &pr_what(number, &repo)))?;
        Ok(())
    }

    async fn list_comments(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
    ) -> Result<Vec<Comment>, ProviderError> {
        let repo = self.repo(repo)?;
        let threads = self
            .git
            .pull_request_threads_client()
            .list(
                &self.organization,
                &repo.repository,
                pr_id(number)?,
                &repo.project,
            )
            .await
            .map_err(|e| map_error(&e, &pr_what(number, &repo)))?;
        let mut comments = Vec::new();
        for thread in threads.value {
            let thread = thread.comment_thread;
            if thread.is_deleted == Some(true) {
                continue;
            }
            let thread_id = thread.id.and_then(|id| u64::try_from(id).ok()).unwrap_or(0);
            for comment in thread.comments {
                // System comments are Azure DevOps' own ("pushed 2 commits", votes).
                if comment.is_deleted == Some(true)
                    || comment.comment_type == Some(comment::CommentType::System)
                {
                    continue;
                }
                if let Some(content) = comment.content {
                    comments.push(Comment {
                        id: thread_id,
                        body: content,
                    });
                }
            }
        }
        Ok(comments)
    }

    async fn close(&self, repo: &RepoSlug, number: PrNumber) -> Result<(), ProviderError> {
        let repo = self.repo(repo)?;
        let mut options = GitPullRequestUpdateOptions::new();
        options.status = Some(PullRequestStatus::Abandoned);
        self.patch(&repo, number, options).await?;
        Ok(())
    }

    async fn branch_tip(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
    ) -> Result<Option<CommitId>, ProviderError> {
        let repo = self.repo(repo)?;
        let what = format!("branch {branch} in {}", repo.slug);
        let Some(object_id) = self.current_ref(&repo, branch, &what).await? else {
            return Ok(None);
        };
        CommitId::parse(&object_id)
            .map(Some)
            .ok_or_else(|| ProviderError::Invalid {
                provider: PROVIDER,
                message: format!("{what}: {object_id:?} is not a commit id"),
            })
    }

    /// The refs update carries `expected` as its `oldObjectId`, so Azure DevOps deletes
    /// the branch only if it still points where Courier saw it.
    async fn delete_branch(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
        expected: &CommitId,
    ) -> Result<(), ProviderError> {
        let repo = self.repo(repo)?;
        let ref_name = branch.as_ref_name();
        let what = format!("branch {branch} in {}", repo.slug);
        if self.current_ref(&repo, branch, &what).await?.is_none() {
            return Ok(());
        }
        let update = GitRefUpdate {
            name: Some(ref_name.clone()),
            old_object_id: Some(expected.as_str().to_owned()),
            new_object_id: Some(ZERO_OBJECT_ID.to_owned()),
            ..GitRefUpdate::new()
        };
        let results = self
            .git
            .refs_client()
            .update_refs(
                &self.organization,
                vec![update],
                &repo.repository,
                &repo.project,
            )
            .await
            .map_err(|e| map_error(&e, &what))?;
        let Some(result) = results
            .value
            .into_iter()
            .find(|r| r.name.as_deref() == Some(ref_name.as_str()) || r.name.is_none())
        else {
            return Err(ProviderError::Invalid {
                provider: PROVIDER,
                message: format!("{what}: the refs update answered without a result"),
            });
        };
        if result.success == Some(true) {
            return Ok(());
        }
        let detail = result
            .custom_message
            .clone()
            .unwrap_or_else(|| format!("{:?}", result.update_status));
        Err(match result.update_status {
            // The branch is no longer where Courier saw it: leave whatever is there alone.
            Some(UpdateStatus::StaleOldObjectId) => ProviderError::Conflict {
                provider: PROVIDER,
                message: format!("{what} moved while Courier was deleting it ({detail})"),
            },
            Some(
                UpdateStatus::WritePermissionRequired
                | UpdateStatus::ForcePushRequired
                | UpdateStatus::RejectedByPolicy
                | UpdateStatus::RejectedByPlugin
                | UpdateStatus::Locked,
            ) => ProviderError::Forbidden {
                provider: PROVIDER,
                message: format!(
                    "{what} was not deleted ({detail}); deleting a branch needs the \
                     \"Force push (rewrite history and delete branches)\" permission \
                     on it, and no lock or policy in the way ({SCOPES_HINT})"
                ),
            },
            _ => ProviderError::Invalid {
                provider: PROVIDER,
                message: format!("{what} was not deleted ({detail})"),
            },
        })
    }

    async fn enable_auto_merge(
        &self,
        repo: &RepoSlug,
        pr: &PullRequest,
    ) -> Result<AutoMerge, ProviderError> {
        let repo_ref = self.repo(repo)?;
        let identity = match self.identity().await {
            Ok(identity) => identity,
            Err(error) if is_refusal(&error) => {
                return Ok(AutoMerge::Unavailable {
                    reason: format!("the PAT's identity could not be read: {error}"),
                });
            }
            Err(error) => return Err(error),
        };
        let mut options = GitPullRequestUpdateOptions::new();
        options.auto_complete_set_by = Some(IdentityRef::new(identity));
        match self.patch(&repo_ref, pr.number, options).await {
            Ok(updated) if updated.auto_complete_set_by.is_some() => Ok(AutoMerge::Enabled),
            Ok(_) => Ok(AutoMerge::Unavailable {
                reason: format!(
                    "Azure DevOps accepted the request but did not set auto-complete on \
                     pull request {}",
                    pr.number
                ),
            }),
            Err(error) if is_refusal(&error) => Ok(AutoMerge::Unavailable {
                reason: format!("Azure DevOps refused auto-complete: {error}"),
            }),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_collection_url_splits_root_and_collection() {
        let config = AzureConfig::server_collection(
            "https://tfs.example.com/tfs/Default%20Collection/",
            SecretString::from("t"),
        )
        .unwrap();
        assert_eq!(config.base_url.as_str(), "https://tfs.example.com/tfs");
        assert_eq!(config.organization, "Default Collection");
        assert!(
            AzureConfig::server_collection("https://tfs.example.com/", SecretString::from("t"))
                .is_err()
        );
    }

    #[test]
    fn base_urls_with_credentials_or_queries_are_refused() {
        let config = AzureConfig::new("org", SecretString::from("t"));
        assert!(
            config
                .clone()
                .with_base_url("https://u:p@dev.azure.com")
                .is_err()
        );
        assert!(
            config
                .clone()
                .with_base_url("https://dev.azure.com/?x=1")
                .is_err()
        );
        assert!(config.with_base_url("ftp://dev.azure.com").is_err());
    }

    #[test]
    fn names_become_single_path_segments() {
        assert_eq!(encode_segment("Design System"), "Design%20System");
        assert_eq!(encode_segment("a/b#c?d"), "a%2Fb%23c%3Fd");
        assert_eq!(encode_segment("Résumé"), "R%C3%A9sum%C3%A9");
    }

    #[test]
    fn identity_ids_are_guids() {
        assert!(is_identity_id("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
        assert!(!is_identity_id("alice@example.com"));
        assert!(!is_identity_id("3f2504e0-4f89-11d3-9a0c-0305e82c330"));
    }
}
