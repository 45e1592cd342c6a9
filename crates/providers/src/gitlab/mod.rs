//! GitLab (gitlab.com and self-managed) merge requests, on the `gitlab` crate's endpoints.
//!
//! Requests are built by the crate's endpoint types and sent by [`client::Api`] (which says
//! why not by the crate's own client). Every call is in GitLab's REST v4 description except
//! three the description lacks: `GET /users?username=` (reviewer and assignee names to
//! ids) and the merge request Notes API (list and create comments); docs/providers.md
//! lists them.

mod client;
mod error;

use courier_core::proxy::Proxies;
use std::collections::BTreeSet;
use std::time::Duration;

use gitlab::api::common::SortOrder;
use gitlab::api::common::{NameOrId, path_escaped};
use gitlab::api::projects::merge_requests::notes::{
    CreateMergeRequestNote, MergeRequestNotes, NoteOrderBy,
};
use gitlab::api::projects::merge_requests::{
    CreateMergeRequest, EditMergeRequest, MergeMergeRequest, MergeRequest, MergeRequestOrderBy,
    MergeRequestState, MergeRequestStateEvent, MergeRequests,
};
use gitlab::api::projects::repository::branches::Branch;
use gitlab::api::users::Users;
use gitlab::api::{BodyError, Endpoint, QueryParams};
use http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use self::client::{Answer, Api};
use self::error::{ErrorBody, PROVIDER};
use crate::forge::decorations::refused_as_warning;
use crate::forge::paging::COMMENT_PAGES;
use crate::git::CommitId;
use crate::provider::{
    AutoMerge, BranchName, Comment, Decorations, NewPullRequest, PrNumber, PrState, Provider,
    ProviderError, PullRequest, PullRequestUpdate, PushCredentials, RepoSlug, Warning,
};

/// GitLab refuses merge request descriptions longer than this (characters).
pub const MAX_DESCRIPTION_CHARS: usize = 1_000_000;

#[derive(Debug, Clone)]
pub struct GitLabConfig {
    /// The instance's root: `https://gitlab.com`, `https://gitlab.example.com`, or
    /// `https://example.com/gitlab` for an instance served under a path. The REST API is
    /// `<base_url>/api/v4`.
    pub base_url: Url,
    /// A personal, project or group access token with the `api` scope, sent as
    /// `PRIVATE-TOKEN`; also the password for pushes (user name `oauth2`).
    pub token: SecretString,
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

impl GitLabConfig {
    pub fn new(base_url: &str, token: SecretString) -> Result<GitLabConfig, GitLabSetupError> {
        let parsed = Url::parse(base_url).map_err(|e| GitLabSetupError::BaseUrl {
            url: base_url.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(GitLabConfig {
            base_url: parsed,
            token,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            extra_roots: Vec::new(),
            proxy: Proxies::direct(),
        })
    }
}

/// What stops the provider from being built; a person fixes the configuration.
#[derive(Debug, thiserror::Error)]
pub enum GitLabSetupError {
    #[error("GitLab base URL {url:?} is not usable: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("GitLab token: {0}")]
    Token(String),
    #[error("GitLab client could not be built: {0}")]
    Client(String),
}

pub struct GitLabProvider {
    api: Api,
    base_url: Url,
    token: SecretString,
}

impl std::fmt::Debug for GitLabProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLabProvider")
            .field("base_url", &self.base_url.as_str())
            .field("token", &"[redacted]")
            .finish()
    }
}

impl GitLabProvider {
    pub fn new(config: GitLabConfig) -> Result<GitLabProvider, GitLabSetupError> {
        let url = &config.base_url;
        let bad = |reason: &str| GitLabSetupError::BaseUrl {
            url: url.to_string(),
            reason: reason.to_owned(),
        };
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(bad("expected an http(s) URL with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in the URL; set the token"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a query string or fragment does not belong in the URL"));
        }
        if url.path().trim_end_matches('/').ends_with("/api/v4") {
            return Err(bad(
                "give the instance's root URL; Courier appends /api/v4 itself",
            ));
        }
        let api = Api::new(
            url,
            &config.token,
            config.connect_timeout,
            config.read_timeout,
            config.request_timeout,
            &config.extra_roots,
            &config.proxy,
        )
        .map_err(|reason| {
            if reason.starts_with("the token") {
                GitLabSetupError::Token(reason)
            } else {
                GitLabSetupError::Client(reason)
            }
        })?;
        Ok(GitLabProvider {
            api,
            base_url: config.base_url.clone(),
            token: config.token,
        })
    }

    /// One call; non-success answers become errors.
    async fn call<E: Endpoint + Sync>(
        &self,
        endpoint: &E,
        extra: &[(&str, &str)],
        what: &str,
    ) -> Result<Answer, ProviderError> {
        self.api.raw(endpoint, extra, what).await?.success(what)
    }

    async fn get_mr(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        what: &str,
    ) -> Result<GlMergeRequest, ProviderError> {
        let endpoint = MergeRequest::builder()
            .project(repo.as_str())
            .merge_request(number.0)
            .build()
            .map_err(built(what))?;
        self.call(&endpoint, &[], what).await?.json(what)
    }

    async fn edit(
        &self,
        endpoint: EditMergeRequest<'_>,
        what: &str,
    ) -> Result<GlMergeRequest, ProviderError> {
        self.call(&endpoint, &[], what).await?.json(what)
    }

    /// Merge requests from `head` in `repo`'s own project (not from forks, whose branch
    /// names nobody controls), newest first.
    async fn list_mrs(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
        base: Option<&BranchName>,
        state: MergeRequestState,
        what: &str,
    ) -> Result<Vec<GlMergeRequest>, ProviderError> {
        let mut builder = MergeRequests::builder();
        builder
            .project(repo.as_str())
            .source_branch(head.as_str())
            .state(state)
            .order_by(MergeRequestOrderBy::CreatedAt)
            .sort(SortOrder::Descending);
        if let Some(base) = base {
            builder.target_branch(base.as_str());
        }
        let endpoint = builder.build().map_err(built(what))?;
        let answer = self.call(&endpoint, &[("per_page", "100")], what).await?;
        let mrs: Vec<GlMergeRequest> = answer.json(what)?;
        // The filters are GitLab's; checking again keeps a forge quirk from making Courier
        // update someone else's merge request.
        Ok(mrs
            .into_iter()
            .filter(|mr| {
                mr.source_branch == head.as_str()
                    && base.is_none_or(|b| mr.target_branch == b.as_str())
                    && mr.source_project_id == mr.target_project_id
            })
            .collect())
    }

    /// User ids for user names, via `GET /users?username=`. Unknown names become warnings.
    async fn user_ids(
        &self,
        names: &[String],
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<(String, u64)>, ProviderError> {
        let mut found = Vec::new();
        for name in names {
            if found.iter().any(|(n, _): &(String, u64)| n == name) {
                continue;
            }
            let what = format!("look up GitLab user {name}");
            let name_only = name.trim_start_matches('@');
            let endpoint = Users::builder()
                .username(name_only)
                .build()
                .map_err(built(&what))?;
            let result = self.call(&endpoint, &[], &what).await;
            let Some(answer) = refused_as_warning(result, &what, warnings)? else {
                continue;
            };
            let users: Vec<GlUser> = answer.json(&what)?;
            match users
                .into_iter()
                .find(|u| u.username.eq_ignore_ascii_case(name_only))
            {
                Some(user) => found.push((name.clone(), user.id)),
                None => warnings.push(Warning(format!("{what}: no such user"))),
            }
        }
        Ok(found)
    }
}

/// A builder that refused our own input (a missing field): a bug or an empty name.
fn built<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> ProviderError + '_ {
    move |e| ProviderError::Invalid {
        provider: PROVIDER,
        message: format!("{what}: could not build the request: {e}"),
    }
}

#[derive(Deserialize)]
struct GlUser {
    id: u64,
    username: String,
}

#[derive(Deserialize)]
struct GlMergeRequest {
    iid: u64,
    web_url: String,
    state: String,
    title: String,
    #[serde(default)]
    description: Option<String>,
    source_branch: String,
    target_branch: String,
    #[serde(default)]
    source_project_id: Option<u64>,
    #[serde(default)]
    target_project_id: Option<u64>,
    #[serde(default)]
    draft: Option<bool>,
    /// The name before GitLab 14 (and still sent alongside `draft`).
    #[serde(default)]
    work_in_progress: Option<bool>,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    reviewers: Vec<GlUser>,
    #[serde(default)]
    assignees: Vec<GlUser>,
}

impl GlMergeRequest {
    fn is_draft(&self) -> bool {
        self.draft.or(self.work_in_progress).unwrap_or(false)
    }
}

/// GitLab marks a draft by a title prefix; these are the ones it recognises.
const DRAFT_PREFIXES: &[&str] = &["draft:", "[draft]", "(draft)"];

fn strip_draft_prefix(title: &str) -> &str {
    for prefix in DRAFT_PREFIXES {
        if title.len() >= prefix.len()
            && title.is_char_boundary(prefix.len())
            && title[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            return title[prefix.len()..].trim_start();
        }
    }
    title
}

fn draft_title(title: &str) -> String {
    format!("Draft: {}", strip_draft_prefix(title))
}

impl From<GlMergeRequest> for PullRequest {
    fn from(mr: GlMergeRequest) -> PullRequest {
        let draft = mr.is_draft();
        let state = match mr.state.as_str() {
            "merged" => PrState::Merged,
            // `locked` is a transient state while GitLab merges.
            "opened" | "locked" => PrState::Open,
            _ => PrState::Closed,
        };
        // The draft flag is its own field here; the title is what Courier rendered, so
        // comparing it with the next rendering does not see a difference that is not one.
        let title = if draft {
            strip_draft_prefix(&mr.title).to_owned()
        } else {
            mr.title
        };
        PullRequest {
            number: PrNumber(mr.iid),
            url: mr.web_url,
            state,
            title,
            body: mr.description.unwrap_or_default(),
            head: BranchName::new(mr.source_branch),
            base: BranchName::new(mr.target_branch),
            draft,
        }
    }
}

#[derive(Deserialize)]
struct GlBranch {
    commit: GlCommit,
}

#[derive(Deserialize)]
struct GlCommit {
    id: String,
}

#[derive(Deserialize)]
struct GlNote {
    id: u64,
    #[serde(default)]
    body: String,
    /// GitLab's own notes ("added 1 commit", "requested review from …").
    #[serde(default)]
    system: bool,
}

/// `DELETE /projects/:id/repository/branches/:branch` with the branch escaped as one path
/// segment. The crate's `DeleteBranch` (0.1905.0) puts the name in unescaped, so
/// `courier/tokens` becomes two segments, which GitLab's route (`branch` matches no `/`)
/// answers 404 for; its `Branch` endpoint escapes, this one mirrors that.
struct DeleteBranchEscaped<'a> {
    project: NameOrId<'a>,
    branch: &'a str,
}

impl Endpoint for DeleteBranchEscaped<'_> {
    fn method(&self) -> http::Method {
        http::Method::DELETE
    }

    fn endpoint(&self) -> std::borrow::Cow<'static, str> {
        format!(
            "projects/{}/repository/branches/{}",
            self.project,
            path_escaped(self.branch)
        )
        .into()
    }

    fn parameters(&self) -> QueryParams<'_> {
        QueryParams::default()
    }

    fn body(&self) -> Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        Ok(None)
    }
}

/// The answers GitLab gives a merge it will not do or schedule: 405 (not open, a draft,
/// the project requires something that is missing), 406 (conflicts), 409 (the head moved:
/// `sha` no longer matches), 422 (refused as invalid), and 401, which the merge endpoint
/// answers when the token's user may not merge.
fn auto_merge_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::UNAUTHORIZED
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_ACCEPTABLE
            | StatusCode::CONFLICT
            | StatusCode::UNPROCESSABLE_ENTITY
    )
}

#[async_trait::async_trait]
impl Provider for GitLabProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn max_description_len(&self) -> usize {
        MAX_DESCRIPTION_CHARS
    }

    async fn push_credentials(&self, _repo: &RepoSlug) -> Result<PushCredentials, ProviderError> {
        Ok(PushCredentials {
            // GitLab accepts any user name with an access token over HTTPS; `oauth2` is the
            // one its docs give and works for personal, project and group tokens.
            username: "oauth2".to_owned(),
            token: self.token.clone(),
        })
    }

    async fn find_open(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
        base: &BranchName,
    ) -> Result<Option<PullRequest>, ProviderError> {
        let what = format!("open merge requests from {head} into {base} in {repo}");
        let mrs = self
            .list_mrs(repo, head, Some(base), MergeRequestState::Opened, &what)
            .await?;
        Ok(mrs.into_iter().next().map(PullRequest::from))
    }

    async fn find_closed_unmerged(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
    ) -> Result<Option<PullRequest>, ProviderError> {
        // GitLab's `closed` state excludes merged merge requests.
        let what = format!("closed merge requests from {head} in {repo}");
        let mrs = self
            .list_mrs(repo, head, None, MergeRequestState::Closed, &what)
            .await?;
        Ok(mrs.into_iter().next().map(PullRequest::from))
    }

    async fn create(
        &self,
        repo: &RepoSlug,
        pr: &NewPullRequest,
    ) -> Result<PullRequest, ProviderError> {
        let what = format!(
            "create merge request from {} into {} in {repo}",
            pr.head, pr.base
        );
        // The API has no draft field; a `Draft:` title prefix is how GitLab marks one.
        let title = if pr.draft {
            draft_title(&pr.title)
        } else {
            pr.title.clone()
        };
        let endpoint = CreateMergeRequest::builder()
            .project(repo.as_str())
            .source_branch(pr.head.as_str())
            .target_branch(pr.base.as_str())
            .title(title.as_str())
            .description(pr.body.as_str())
            .build()
            .map_err(built(&what))?;
        let answer = self.call(&endpoint, &[], &what).await?;
        Ok(answer.json::<GlMergeRequest>(&what)?.into())
    }

    async fn update(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest, ProviderError> {
        let what = format!("update merge request !{number} in {repo}");
        if update.title.is_none() && update.body.is_none() {
            return Ok(self.get_mr(repo, number, &what).await?.into());
        }
        // A new title without the prefix would take a draft out of draft; whether it is
        // one is the forge's (a person may have marked it ready), so ask.
        let title = match &update.title {
            Some(title) => {
                let current = self.get_mr(repo, number, &what).await?;
                Some(if current.is_draft() {
                    draft_title(title)
                } else {
                    title.clone()
                })
            }
            None => None,
        };
        let mut builder = EditMergeRequest::builder();
        builder.project(repo.as_str()).merge_request(number.0);
        if let Some(title) = &title {
            builder.title(title.as_str());
        }
        if let Some(body) = &update.body {
            builder.description(body.as_str());
        }
        let endpoint = builder.build().map_err(built(&what))?;
        Ok(self.edit(endpoint, &what).await?.into())
    }

    async fn decorate(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        decorations: &Decorations,
    ) -> Result<Vec<Warning>, ProviderError> {
        let mut warnings = Vec::new();
        if !decorations.labels.is_empty() {
            // `add_labels` keeps the labels people put on; GitLab creates unknown ones.
            let what = format!("add labels to !{number} in {repo}");
            let mut builder = EditMergeRequest::builder();
            builder.project(repo.as_str()).merge_request(number.0);
            for label in &decorations.labels {
                builder.add_label(label.as_str());
            }
            let endpoint = builder.build().map_err(built(&what))?;
            let result = self.call(&endpoint, &[], &what).await;
            refused_as_warning(result, &what, &mut warnings)?;
        }
        if !decorations.team_reviewers.is_empty() {
            warnings.push(Warning(format!(
                "GitLab has no team reviewers; not requested: {}",
                decorations.team_reviewers.join(", ")
            )));
        }
        if decorations.reviewers.is_empty() && decorations.assignees.is_empty() {
            return Ok(warnings);
        }
        // One look-up per name, even when someone is both reviewer and assignee.
        let names: Vec<String> = decorations
            .reviewers
            .iter()
            .chain(&decorations.assignees)
            .cloned()
            .collect();
        let known = self.user_ids(&names, &mut warnings).await?;
        let pick = |wanted: &[String]| -> Vec<(String, u64)> {
            known
                .iter()
                .filter(|(name, _)| wanted.contains(name))
                .cloned()
                .collect()
        };
        let (reviewers, assignees) = (pick(&decorations.reviewers), pick(&decorations.assignees));
        if reviewers.is_empty() && assignees.is_empty() {
            return Ok(warnings);
        }
        // `reviewer_ids` / `assignee_ids` replace the lists; add to what is there so people
        // someone added by hand stay.
        let what = format!("request reviewers and assignees on !{number} in {repo}");
        let current = self.get_mr(repo, number, &what).await?;
        let merge = |existing: &[GlUser], new: &[(String, u64)]| -> Option<Vec<u64>> {
            if new.is_empty() {
                return None;
            }
            let mut ids: BTreeSet<u64> = existing.iter().map(|u| u.id).collect();
            ids.extend(new.iter().map(|(_, id)| *id));
            Some(ids.into_iter().collect())
        };
        let mut builder = EditMergeRequest::builder();
        builder.project(repo.as_str()).merge_request(number.0);
        if let Some(ids) = merge(&current.reviewers, &reviewers) {
            builder.reviewers(ids.into_iter());
        }
        if let Some(ids) = merge(&current.assignees, &assignees) {
            builder.assignees(ids.into_iter());
        }
        let endpoint = builder.build().map_err(built(&what))?;
        let result = self.call(&endpoint, &[], &what).await;
        if let Some(answer) = refused_as_warning(result, &what, &mut warnings)? {
            // GitLab silently drops users it cannot assign (no access to the project).
            let mr: GlMergeRequest = answer.json(&what)?;
            let dropped: Vec<&str> = reviewers
                .iter()
                .filter(|(_, id)| !mr.reviewers.iter().any(|u| u.id == *id))
                .chain(
                    assignees
                        .iter()
                        .filter(|(_, id)| !mr.assignees.iter().any(|u| u.id == *id)),
                )
                .map(|(name, _)| name.as_str())
                .collect();
            if !dropped.is_empty() {
                warnings.push(Warning(format!(
                    "{what}: GitLab did not add {} (no access to the project?)",
                    dropped.join(", ")
                )));
            }
        }
        Ok(warnings)
    }

    async fn comment(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        body: &str,
    ) -> Result<(), ProviderError> {
        let what = format!("comment on !{number} in {repo}");
        let endpoint = CreateMergeRequestNote::builder()
            .project(repo.as_str())
            .merge_request(number.0)
            .body(body)
            .build()
            .map_err(built(&what))?;
        self.call(&endpoint, &[], &what).await?;
        Ok(())
    }

    async fn list_comments(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
    ) -> Result<Vec<Comment>, ProviderError> {
        let what = format!("comments of !{number} in {repo}");
        let endpoint = MergeRequestNotes::builder()
            .project(repo.as_str())
            .merge_request(number.0)
            .order_by(NoteOrderBy::CreatedAt)
            .sort(SortOrder::Ascending)
            .build()
            .map_err(built(&what))?;
        let (endpoint, what) = (&endpoint, &what);
        let notes: Vec<GlNote> = COMMENT_PAGES
            .read_all(|page| async move {
                self.call(endpoint, &page.query_pairs(), what)
                    .await?
                    .json(what)
            })
            .await?;
        Ok(notes
            .into_iter()
            .filter(|n| !n.system)
            .map(|n| Comment {
                id: n.id,
                body: n.body,
            })
            .collect())
    }

    async fn close(&self, repo: &RepoSlug, number: PrNumber) -> Result<(), ProviderError> {
        let what = format!("close !{number} in {repo}");
        let endpoint = EditMergeRequest::builder()
            .project(repo.as_str())
            .merge_request(number.0)
            .state_event(MergeRequestStateEvent::Close)
            .build()
            .map_err(built(&what))?;
        self.edit(endpoint, &what).await?;
        Ok(())
    }

    async fn branch_tip(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
    ) -> Result<Option<CommitId>, ProviderError> {
        let what = format!("branch {branch} in {repo}");
        let endpoint = Branch::builder()
            .project(repo.as_str())
            .branch(branch.as_str())
            .build()
            .map_err(built(&what))?;
        let answer = self.api.raw(&endpoint, &[], &what).await?;
        if answer.status == StatusCode::NOT_FOUND
            && ErrorBody::parse(&answer.body)
                .text
                .to_ascii_lowercase()
                .contains("branch not found")
        {
            return Ok(None);
        }
        let found: GlBranch = answer.success(&what)?.json(&what)?;
        CommitId::parse(&found.commit.id)
            .map(Some)
            .ok_or_else(|| ProviderError::Invalid {
                provider: PROVIDER,
                message: format!("{what}: {:?} is not a commit id", found.commit.id),
            })
    }

    /// GitLab has no conditional branch delete: the caller compares
    /// [`Provider::branch_tip`] with `expected` right before.
    async fn delete_branch(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
        _expected: &CommitId,
    ) -> Result<(), ProviderError> {
        let what = format!("delete branch {branch} in {repo}");
        let endpoint = DeleteBranchEscaped {
            project: NameOrId::from(repo.as_str()),
            branch: branch.as_str(),
        };
        let answer = self.api.raw(&endpoint, &[], &what).await?;
        // "404 Branch Not Found" is already gone, which is what was asked. Other 404s (an
        // unknown project, a path GitLab has no route for) are not success.
        let already_gone = answer.status == StatusCode::NOT_FOUND
            && ErrorBody::parse(&answer.body)
                .text
                .to_ascii_lowercase()
                .contains("branch not found");
        if answer.status.is_success() || already_gone {
            Ok(())
        } else {
            Err(answer.error(&what))
        }
    }

    async fn enable_auto_merge(
        &self,
        repo: &RepoSlug,
        pr: &PullRequest,
    ) -> Result<AutoMerge, ProviderError> {
        let what = format!("merge !{} in {repo} when its pipeline succeeds", pr.number);
        // Pin the merge to the commit Courier looked at: if someone pushes after it, GitLab
        // refuses instead of merging their commit unreviewed.
        let current = self.get_mr(repo, pr.number, &what).await?;
        if current.state != "opened" {
            return Ok(AutoMerge::Unavailable {
                reason: format!("the merge request is {}", current.state),
            });
        }
        let mut builder = MergeMergeRequest::builder();
        builder
            .project(repo.as_str())
            .merge_request(pr.number.0)
            .merge_when_pipeline_succeeds(true);
        if let Some(sha) = &current.sha {
            builder.sha(sha.as_str());
        }
        let endpoint = builder.build().map_err(built(&what))?;
        let answer = self.api.raw(&endpoint, &[], &what).await?;
        if answer.status.is_success() {
            return Ok(AutoMerge::Enabled);
        }
        if auto_merge_refusal(answer.status) {
            let text = ErrorBody::parse(&answer.body).text;
            return Ok(AutoMerge::Unavailable {
                reason: format!("GitLab answered {}: {text}", answer.status),
            });
        }
        Err(answer.error(&what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_prefixes_are_recognised_and_not_doubled() {
        assert_eq!(strip_draft_prefix("Draft: Tokens 1.2"), "Tokens 1.2");
        assert_eq!(strip_draft_prefix("[DRAFT] Tokens"), "Tokens");
        assert_eq!(strip_draft_prefix("(draft)Tokens"), "Tokens");
        assert_eq!(strip_draft_prefix("Drafting tokens"), "Drafting tokens");
        assert_eq!(strip_draft_prefix("É"), "É");
        assert_eq!(draft_title("Draft: Tokens"), "Draft: Tokens");
        assert_eq!(draft_title("Tokens"), "Draft: Tokens");
    }

    /// aws-lc-rs is compiled in (the crate forces it, see client.rs); the clients must
    /// still run on ring, the one provider the rest of Courier uses.
    #[test]
    fn https_clients_run_on_ring() {
        let config = GitLabConfig::new("https://gitlab.example.com", "glpat-x".into()).unwrap();
        GitLabProvider::new(config).unwrap();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("a provider");
        assert_eq!(format!("{:?}", provider.secure_random), "Ring");
    }

    #[test]
    fn base_url_must_be_the_instance_root_without_secrets() {
        let token = || SecretString::from("glpat-x");
        for bad in [
            "ftp://gitlab.example.com",
            "https://user:pw@gitlab.example.com",
            "https://gitlab.example.com/api/v4",
            "https://gitlab.example.com/?private_token=x",
        ] {
            let config = GitLabConfig::new(bad, token()).unwrap();
            let error = GitLabProvider::new(config).unwrap_err();
            assert!(matches!(error, GitLabSetupError::BaseUrl { .. }), "{bad}");
        }
        let config = GitLabConfig::new("https://example.com/gitlab", token()).unwrap();
        assert!(!format!("{config:?}").contains("glpat"), "{config:?}");
        let provider = GitLabProvider::new(config).unwrap();
        let shown = format!("{provider:?}");
        assert!(!shown.contains("glpat"), "{shown}");
        let bad_token = GitLabConfig::new("https://gitlab.example.com", "a\nb".into()).unwrap();
        assert!(matches!(
            GitLabProvider::new(bad_token),
            Err(GitLabSetupError::Token(_))
        ));
    }
}
