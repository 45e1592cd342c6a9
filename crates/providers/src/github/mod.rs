//! GitHub (github.com and GitHub Enterprise Server) on octocrab.
//!
//! Every REST call is one documented in GitHub's OpenAPI description (the test suite
//! checks each request the fake receives against it); auto-merge is GraphQL
//! (`enablePullRequestAutoMerge`), which the REST description lacks.

mod app;
mod client;
mod error;
mod git_database;

use courier_core::proxy::Proxies;
use std::path::Path;
use std::time::Duration;

use http::{Method, StatusCode};
use octocrab::Octocrab;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use self::app::AppTokens;
use self::client::{Api, multi_segment, query};
use self::error::PROVIDER;
use crate::forge::decorations::refused_as_warning;
use crate::forge::http::encode_segment;
use crate::forge::paging::COMMENT_PAGES;
use crate::git::CommitId;
use crate::provider::{
    AutoMerge, BranchName, Comment, Decorations, GitDatabase, NewPullRequest, PrNumber, PrState,
    Provider, ProviderError, PullRequest, PullRequestUpdate, PushCredentials, RepoSlug, Warning,
};

/// GitHub refuses pull request bodies longer than this (characters).
pub const MAX_DESCRIPTION_CHARS: usize = 65_536;

/// How a GitHub App finds the installation whose token it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installation {
    Id(u64),
    /// `GET /repos/{owner}/{repo}/installation`, once per repository.
    ByRepository,
}

#[derive(Debug, Clone)]
pub enum GitHubAuth {
    /// A classic or fine-grained personal access token (or any bearer token).
    Token(SecretString),
    App(GitHubApp),
}

#[derive(Debug, Clone)]
pub struct GitHubApp {
    pub app_id: u64,
    /// The App's RSA private key, PEM (`-----BEGIN RSA PRIVATE KEY-----` or PKCS#8).
    pub private_key_pem: SecretString,
    pub installation: Installation,
}

impl GitHubApp {
    /// Reads the private key GitHub let you download for the App.
    pub fn from_key_file(
        app_id: u64,
        key_file: &Path,
        installation: Installation,
    ) -> Result<GitHubApp, GitHubSetupError> {
        let pem = std::fs::read_to_string(key_file).map_err(|e| GitHubSetupError::PrivateKey {
            path: key_file.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(GitHubApp {
            app_id,
            private_key_pem: SecretString::from(pem),
            installation,
        })
    }
}

#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// REST API root: `https://api.github.com` (default) or, for GitHub Enterprise
    /// Server, `https://HOST/api/v3`. GraphQL is derived from it (`/graphql`,
    /// `/api/graphql` on GHES).
    pub api_url: Url,
    pub auth: GitHubAuth,
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Longest silence while reading an answer. Default 30 s.
    pub read_timeout: Duration,
    /// Bound on one whole call. Default 60 s.
    pub request_timeout: Duration,
    /// An App installation token is replaced when it expires within this. Default 5 min.
    pub token_refresh_margin: Duration,
    /// Certificate authorities trusted on top of the system's (DER). Default: none.
    pub extra_roots: Vec<Vec<u8>>,
    /// The proxies its calls go through. Default: none (direct).
    pub proxy: Proxies,
}

impl GitHubConfig {
    pub fn new(auth: GitHubAuth) -> GitHubConfig {
        GitHubConfig {
            api_url: Url::parse("https://api.github.com").expect("constant URL"),
            auth,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            token_refresh_margin: Duration::from_secs(300),
            extra_roots: Vec::new(),
            proxy: Proxies::direct(),
        }
    }

    pub fn with_api_url(mut self, api_url: &str) -> Result<GitHubConfig, GitHubSetupError> {
        self.api_url = Url::parse(api_url).map_err(|e| GitHubSetupError::ApiUrl {
            url: api_url.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(self)
    }
}

/// What stops the provider from being built; a person fixes the configuration.
#[derive(Debug, thiserror::Error)]
pub enum GitHubSetupError {
    #[error("GitHub API URL {url:?} is not usable: {reason}")]
    ApiUrl { url: String, reason: String },
    #[error("GitHub App private key {path}: {reason}")]
    PrivateKey { path: String, reason: String },
    #[error("GitHub client could not be built: {0}")]
    Client(String),
}

enum Credentials {
    Token(SecretString),
    App(Box<AppTokens>),
}

pub struct GitHubProvider {
    api: Api,
    /// The REST root's path (`""` or `/api/v3`), prepended to every REST path. octocrab
    /// gets only the origin: its base-URI layer would also prefix the GraphQL path.
    rest_prefix: String,
    graphql_path: String,
    credentials: Credentials,
}

impl std::fmt::Debug for GitHubProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubProvider")
            .field("rest_prefix", &self.rest_prefix)
            .field(
                "auth",
                &match self.credentials {
                    Credentials::Token(_) => "token",
                    Credentials::App(_) => "app",
                },
            )
            .finish()
    }
}

/// octocrab always sends `user-agent: octocrab` and appends (never replaces) extra
/// headers, so Courier does not add its own: two user-agent lines would be worse.
fn build_client(
    origin: &str,
    config: &GitHubConfig,
    app: Option<&GitHubApp>,
) -> Result<Octocrab, GitHubSetupError> {
    let mut builder = Octocrab::builder()
        .base_uri(origin)
        .map_err(|e| GitHubSetupError::ApiUrl {
            url: origin.to_owned(),
            reason: e.to_string(),
        })?
        .set_connect_timeout(Some(config.connect_timeout))
        .set_read_timeout(Some(config.read_timeout))
        .set_write_timeout(Some(config.read_timeout));
    if let Some(app) = app {
        use secrecy::ExposeSecret;
        builder = builder
            .app_from_rsa_pem(
                octocrab::models::AppId(app.app_id),
                app.private_key_pem.expose_secret().as_bytes(),
            )
            .map_err(|e| GitHubSetupError::PrivateKey {
                path: format!("(App {})", app.app_id),
                reason: format!("not an RSA private key in PEM form: {e}"),
            })?;
    }
    if config.extra_roots.is_empty() && config.proxy.is_direct() {
        return builder
            .build()
            .map_err(|e| GitHubSetupError::Client(e.to_string()));
    }
    // octocrab's own hyper client trusts the system's roots only and knows no proxy; with
    // a private CA or a proxy it runs on a reqwest client that has both, same timeouts.
    let client = crate::forge::http::client_builder(&config.extra_roots, &config.proxy)
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .build()
        .map_err(|e| GitHubSetupError::Client(e.to_string()))?;
    builder
        .build_with_reqwest(client)
        .map_err(|e| GitHubSetupError::Client(e.to_string()))
}

impl GitHubProvider {
    /// Builds the octocrab clients (call inside a Tokio runtime: octocrab's service stack
    /// spawns on it). Nothing is sent until the first call; App tokens are minted lazily.
    pub fn new(config: GitHubConfig) -> Result<GitHubProvider, GitHubSetupError> {
        let url = &config.api_url;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(GitHubSetupError::ApiUrl {
                url: url.to_string(),
                reason: "expected an http(s) URL with a host".into(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(GitHubSetupError::ApiUrl {
                url: url.to_string(),
                reason: "credentials and query strings do not belong in the API URL".into(),
            });
        }
        let origin = url.origin().ascii_serialization();
        let rest_prefix = url.path().trim_end_matches('/').to_owned();
        let graphql_path = match rest_prefix.strip_suffix("/v3") {
            Some(root) => format!("{root}/graphql"),
            None => format!("{rest_prefix}/graphql"),
        };
        let api = Api {
            client: build_client(&origin, &config, None)?,
            request_timeout: config.request_timeout,
        };
        let credentials = match &config.auth {
            GitHubAuth::Token(token) => Credentials::Token(token.clone()),
            GitHubAuth::App(app) => Credentials::App(Box::new(AppTokens::new(
                Api {
                    client: build_client(&origin, &config, Some(app))?,
                    request_timeout: config.request_timeout,
                },
                app.installation,
                config.token_refresh_margin,
                rest_prefix.clone(),
            ))),
        };
        Ok(GitHubProvider {
            api,
            rest_prefix,
            graphql_path,
            credentials,
        })
    }

    async fn token(&self, repo: &RepoSlug) -> Result<SecretString, ProviderError> {
        match &self.credentials {
            Credentials::Token(token) => Ok(token.clone()),
            Credentials::App(app) => app.token_for(repo).await,
        }
    }

    fn repo_path(&self, repo: &RepoSlug, rest: &str) -> String {
        let (owner, name) = repo.split_last();
        format!(
            "{}/repos/{}/{}{rest}",
            self.rest_prefix,
            encode_segment(owner),
            encode_segment(name)
        )
    }

    /// One authenticated REST call; non-success answers become errors.
    async fn call(
        &self,
        repo: &RepoSlug,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<client::Answer, ProviderError> {
        self.call_raw(repo, method, path, body, what)
            .await?
            .success(what)
    }

    async fn call_raw(
        &self,
        repo: &RepoSlug,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<client::Answer, ProviderError> {
        let token = self.token(repo).await?;
        let answer = self.api.raw(method, path, body, Some(&token), what).await?;
        if answer.status == StatusCode::UNAUTHORIZED
            && let Credentials::App(app) = &self.credentials
        {
            app.forget(repo).await;
        }
        Ok(answer)
    }

    async fn list_pulls(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
        params: &[(&str, &str)],
        what: &str,
    ) -> Result<Vec<GhPull>, ProviderError> {
        let (owner, _) = repo.split_last();
        let head_filter = format!("{owner}:{}", head.as_str());
        let mut pairs = vec![("head", head_filter.as_str())];
        pairs.extend_from_slice(params);
        pairs.push(("per_page", "100"));
        let path = self.repo_path(repo, &format!("/pulls{}", query(&pairs)));
        let answer = self.call(repo, Method::GET, &path, None, what).await?;
        let pulls: Vec<GhPull> = answer.json(what)?;
        // The filter is GitHub's; checking again keeps a forge quirk from making Courier
        // update someone else's pull request.
        Ok(pulls
            .into_iter()
            .filter(|p| p.head.ref_name == head.as_str())
            .collect())
    }
}

#[derive(Deserialize)]
struct GhRef {
    #[serde(rename = "ref")]
    ref_name: String,
}

#[derive(Deserialize)]
struct GhPull {
    number: u64,
    html_url: String,
    state: String,
    title: String,
    #[serde(default)]
    body: Option<String>,
    head: GhRef,
    base: GhRef,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    merged_at: Option<String>,
    #[serde(default)]
    node_id: Option<String>,
}

impl From<GhPull> for PullRequest {
    fn from(pull: GhPull) -> PullRequest {
        let state = match (pull.state.as_str(), pull.merged_at.is_some()) {
            (_, true) => PrState::Merged,
            ("open", false) => PrState::Open,
            _ => PrState::Closed,
        };
        PullRequest {
            number: PrNumber(pull.number),
            url: pull.html_url,
            state,
            title: pull.title,
            body: pull.body.unwrap_or_default(),
            head: BranchName::new(pull.head.ref_name),
            base: BranchName::new(pull.base.ref_name),
            draft: pull.draft.unwrap_or(false),
        }
    }
}

#[derive(Deserialize)]
struct GhGitRef {
    object: GhGitObject,
}

#[derive(Deserialize)]
struct GhGitObject {
    sha: String,
}

#[derive(Deserialize)]
struct GhLogin {
    login: String,
}

#[derive(Deserialize)]
struct GhIssue {
    #[serde(default)]
    assignees: Vec<GhLogin>,
}

#[derive(Deserialize)]
struct GhComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
}

#[async_trait::async_trait]
impl Provider for GitHubProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn max_description_len(&self) -> usize {
        MAX_DESCRIPTION_CHARS
    }

    async fn push_credentials(&self, repo: &RepoSlug) -> Result<PushCredentials, ProviderError> {
        Ok(PushCredentials {
            // GitHub ignores the user name for token auth over HTTPS; `x-access-token` is
            // the one its docs give for App installation tokens and works for PATs too.
            username: "x-access-token".to_owned(),
            token: self.token(repo).await?,
        })
    }

    async fn find_open(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
        base: &BranchName,
    ) -> Result<Option<PullRequest>, ProviderError> {
        let what = format!("open pull requests from {head} into {base} in {repo}");
        let pulls = self
            .list_pulls(
                repo,
                head,
                &[("state", "open"), ("base", base.as_str())],
                &what,
            )
            .await?;
        Ok(pulls.into_iter().next().map(PullRequest::from))
    }

    async fn find_closed_unmerged(
        &self,
        repo: &RepoSlug,
        head: &BranchName,
    ) -> Result<Option<PullRequest>, ProviderError> {
        let what = format!("closed pull requests from {head} in {repo}");
        let pulls = self
            .list_pulls(
                repo,
                head,
                &[
                    ("state", "closed"),
                    ("sort", "created"),
                    ("direction", "desc"),
                ],
                &what,
            )
            .await?;
        Ok(pulls
            .into_iter()
            .find(|p| p.merged_at.is_none())
            .map(PullRequest::from))
    }

    async fn create(
        &self,
        repo: &RepoSlug,
        pr: &NewPullRequest,
    ) -> Result<PullRequest, ProviderError> {
        let what = format!(
            "create pull request from {} into {} in {repo}",
            pr.head, pr.base
        );
        let body = json!({
            "title": pr.title,
            "body": pr.body,
            "head": pr.head.as_str(),
            "base": pr.base.as_str(),
            "draft": pr.draft,
        });
        let answer = self
            .call(
                repo,
                Method::POST,
                &self.repo_path(repo, "/pulls"),
                Some(&body),
                &what,
            )
            .await?;
        Ok(answer.json::<GhPull>(&what)?.into())
    }

    async fn update(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest, ProviderError> {
        let what = format!("update pull request #{number} in {repo}");
        let mut body = serde_json::Map::new();
        if let Some(title) = &update.title {
            body.insert("title".into(), title.clone().into());
        }
        if let Some(text) = &update.body {
            body.insert("body".into(), text.clone().into());
        }
        let path = self.repo_path(repo, &format!("/pulls/{number}"));
        let answer = if body.is_empty() {
            self.call(repo, Method::GET, &path, None, &what).await?
        } else {
            let body = serde_json::Value::Object(body);
            self.call(repo, Method::PATCH, &path, Some(&body), &what)
                .await?
        };
        Ok(answer.json::<GhPull>(&what)?.into())
    }

    async fn decorate(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
        decorations: &Decorations,
    ) -> Result<Vec<Warning>, ProviderError> {
        let mut warnings = Vec::new();
        if !decorations.labels.is_empty() {
            let what = format!("add labels to #{number} in {repo}");
            let body = json!({ "labels": decorations.labels });
            let path = self.repo_path(repo, &format!("/issues/{number}/labels"));
            let result = self
                .call(repo, Method::POST, &path, Some(&body), &what)
                .await;
            refused_as_warning(result, &what, &mut warnings)?;
        }
        if !decorations.reviewers.is_empty() || !decorations.team_reviewers.is_empty() {
            let what = format!("request reviewers on #{number} in {repo}");
            let mut body = serde_json::Map::new();
            if !decorations.reviewers.is_empty() {
                body.insert("reviewers".into(), json!(decorations.reviewers));
            }
            if !decorations.team_reviewers.is_empty() {
                body.insert("team_reviewers".into(), json!(decorations.team_reviewers));
            }
            let body = serde_json::Value::Object(body);
            let path = self.repo_path(repo, &format!("/pulls/{number}/requested_reviewers"));
            let result = self
                .call(repo, Method::POST, &path, Some(&body), &what)
                .await;
            refused_as_warning(result, &what, &mut warnings)?;
        }
        if !decorations.assignees.is_empty() {
            let what = format!("assign #{number} in {repo}");
            let body = json!({ "assignees": decorations.assignees });
            let path = self.repo_path(repo, &format!("/issues/{number}/assignees"));
            let result = self
                .call(repo, Method::POST, &path, Some(&body), &what)
                .await;
            if let Some(answer) = refused_as_warning(result, &what, &mut warnings)? {
                // GitHub silently drops users who cannot be assigned; say which.
                let issue: GhIssue = answer.json(&what)?;
                let dropped: Vec<&str> = decorations
                    .assignees
                    .iter()
                    .filter(|a| {
                        !issue
                            .assignees
                            .iter()
                            .any(|g| g.login.eq_ignore_ascii_case(a))
                    })
                    .map(String::as_str)
                    .collect();
                if !dropped.is_empty() {
                    warnings.push(Warning(format!(
                        "{what}: GitHub did not assign {} (no access to the repository?)",
                        dropped.join(", ")
                    )));
                }
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
        let what = format!("comment on #{number} in {repo}");
        let path = self.repo_path(repo, &format!("/issues/{number}/comments"));
        self.call(
            repo,
            Method::POST,
            &path,
            Some(&json!({ "body": body })),
            &what,
        )
        .await?;
        Ok(())
    }

    async fn list_comments(
        &self,
        repo: &RepoSlug,
        number: PrNumber,
    ) -> Result<Vec<Comment>, ProviderError> {
        let what = &format!("comments of #{number} in {repo}");
        let comments: Vec<GhComment> = COMMENT_PAGES
            .read_all(|page| async move {
                let path = self.repo_path(
                    repo,
                    &format!("/issues/{number}/comments{}", query(&page.query_pairs())),
                );
                self.call(repo, Method::GET, &path, None, what)
                    .await?
                    .json(what)
            })
            .await?;
        Ok(comments
            .into_iter()
            .map(|c| Comment {
                id: c.id,
                body: c.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn close(&self, repo: &RepoSlug, number: PrNumber) -> Result<(), ProviderError> {
        let what = format!("close #{number} in {repo}");
        let path = self.repo_path(repo, &format!("/pulls/{number}"));
        self.call(
            repo,
            Method::PATCH,
            &path,
            Some(&json!({ "state": "closed" })),
            &what,
        )
        .await?;
        Ok(())
    }

    async fn branch_tip(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
    ) -> Result<Option<CommitId>, ProviderError> {
        let what = format!("branch {branch} in {repo}");
        let path = self.repo_path(
            repo,
            &format!("/git/ref/heads/{}", multi_segment(branch.as_str())),
        );
        let answer = self.call_raw(repo, Method::GET, &path, None, &what).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let found: GhGitRef = answer.success(&what)?.json(&what)?;
        CommitId::parse(&found.object.sha)
            .map(Some)
            .ok_or_else(|| ProviderError::Invalid {
                provider: PROVIDER,
                message: format!("{what}: {:?} is not a commit id", found.object.sha),
            })
    }

    /// GitHub has no conditional delete: the caller compares [`Provider::branch_tip`]
    /// with `expected` right before.
    async fn delete_branch(
        &self,
        repo: &RepoSlug,
        branch: &BranchName,
        _expected: &CommitId,
    ) -> Result<(), ProviderError> {
        let what = format!("delete branch {branch} in {repo}");
        let path = self.repo_path(
            repo,
            &format!("/git/refs/heads/{}", multi_segment(branch.as_str())),
        );
        let answer = self
            .call_raw(repo, Method::DELETE, &path, None, &what)
            .await?;
        let already_gone = answer.status == StatusCode::NOT_FOUND
            || (answer.status == StatusCode::UNPROCESSABLE_ENTITY
                && answer.body.contains("Reference does not exist"));
        if answer.status.is_success() || already_gone {
            Ok(())
        } else {
            Err(answer.error(&what))
        }
    }

    fn git_database(&self) -> Option<&dyn GitDatabase> {
        Some(self)
    }

    async fn enable_auto_merge(
        &self,
        repo: &RepoSlug,
        pr: &PullRequest,
    ) -> Result<AutoMerge, ProviderError> {
        let what = format!("enable auto-merge on #{} in {repo}", pr.number);
        // GraphQL wants the pull request's node id, which only the REST object carries.
        let path = self.repo_path(repo, &format!("/pulls/{}", pr.number));
        let pull: GhPull = self
            .call(repo, Method::GET, &path, None, &what)
            .await?
            .json(&what)?;
        let Some(node_id) = pull.node_id else {
            return Err(ProviderError::Invalid {
                provider: PROVIDER,
                message: format!("{what}: the pull request has no node_id"),
            });
        };
        let request = json!({
            "query": "mutation($pullRequestId: ID!) { enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId}) { pullRequest { number } } }",
            "variables": { "pullRequestId": node_id },
        });
        let answer = self
            .call(
                repo,
                Method::POST,
                &self.graphql_path,
                Some(&request),
                &what,
            )
            .await?;
        let reply: GraphQlReply = answer.json(&what)?;
        graphql_outcome(reply, &what)
    }
}

#[derive(Deserialize)]
struct GraphQlReply {
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: String,
}

/// GraphQL answers 200 with `errors`. UNPROCESSABLE is the repository or pull request
/// refusing auto-merge (not allowed in its settings, already mergeable, ...): a fact to
/// record, not a failure.
fn graphql_outcome(reply: GraphQlReply, what: &str) -> Result<AutoMerge, ProviderError> {
    let Some(first) = reply.errors.first() else {
        return Ok(AutoMerge::Enabled);
    };
    let message = reply
        .errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    match first.kind.as_deref() {
        Some("UNPROCESSABLE") => Ok(AutoMerge::Unavailable { reason: message }),
        Some("FORBIDDEN") => Err(ProviderError::Forbidden {
            provider: PROVIDER,
            message: format!(
                "{what}: {message}; auto-merge needs Pull requests and Contents write access"
            ),
        }),
        Some("NOT_FOUND") => Err(ProviderError::NotFound {
            provider: PROVIDER,
            what: format!("{what}: {message}"),
        }),
        _ => Err(ProviderError::Invalid {
            provider: PROVIDER,
            message: format!("{what}: {message}"),
        }),
    }
}
