//! One delivery, from a webhook body to pushed branches: the steps `inspect`, `dry-run`,
//! `deliver` and (later) the server's workers share, so that a dry run exercises exactly
//! the code a real delivery runs.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use courier_core::archive::{ArchiveError, Export};
use courier_core::config::{Config, ConnectionKind, GithubAuth, Target};
use courier_core::download::{Artifact, DownloadError, DownloadPolicy, Downloader};
use courier_core::event::{ArtifactSource, Event, EventError, JobEvent, parse_event};
use courier_core::routing::{RouteFailure, RoutedTarget};
use courier_core::template::ExportSummary as TemplateExport;
use courier_providers::git::{
    Credentials, DeliverySpec, FileChanges, GitError, GitWorkspace, Outcome, Remote, Signature,
    Timeouts,
};
use secrecy::SecretString;
use serde::Serialize;

/// A parsed webhook body.
#[derive(Debug)]
pub struct ParsedPayload {
    pub event: Event,
    /// Trailing commas were removed before parsing (the platform's first-version example
    /// has one); worth a warning, not a refusal.
    pub repaired: bool,
}

pub fn parse_payload(body: &[u8]) -> Result<ParsedPayload, EventError> {
    let parsed = parse_event(body)?;
    if parsed.repaired {
        tracing::warn!("payload had trailing commas; parsed after removing them");
    }
    Ok(ParsedPayload {
        event: parsed.event,
        repaired: parsed.repaired,
    })
}

/// Where an artifact comes from, for people: hosts and paths, never signatures.
pub fn describe_artifact(source: &ArtifactSource) -> String {
    match source {
        ArtifactSource::SignedUrl { url } => format!("signed URL {url}"),
        ArtifactSource::PlatformUrl { url } => {
            format!("platform URL {url} (with the PAT on the API origin)")
        }
        ArtifactSource::ResultEndpoint => {
            "the job's result endpoint on the platform API".to_owned()
        }
        ArtifactSource::None => "none".to_owned(),
    }
}

/// A routed target as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    /// Stable identifier of the target within the configuration.
    pub target: String,
    pub connection: String,
    pub kind: &'static str,
    pub repository: String,
    /// The pull request's base.
    pub base: String,
    pub head_branch: String,
    pub relative_path: Option<String>,
    pub purge_directory: bool,
}

impl TargetView {
    pub fn new(config: &Config, routed: &RoutedTarget<'_>) -> TargetView {
        let target = routed.target;
        TargetView {
            target: target.key.clone(),
            connection: target.connection.clone(),
            kind: config.connection(target).kind.name(),
            repository: target.repository.clone(),
            base: target.branch.clone(),
            head_branch: routed.head_branch.clone(),
            relative_path: target.relative_path.as_ref().map(|p| p.to_string()),
            purge_directory: target.purge_directory,
        }
    }
}

impl fmt::Display for TargetView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}): {} -> {} at {}{}",
            self.kind,
            self.repository,
            self.connection,
            self.head_branch,
            self.base,
            self.relative_path.as_deref().unwrap_or("(repository root)"),
            if self.purge_directory { ", purge" } else { "" },
        )
    }
}

/// The steps of a delivery with their dependencies built once: the configuration, the
/// artifact downloader and the git workspace (with its repository cache).
pub struct Pipeline {
    config: Arc<Config>,
    downloader: Downloader,
    git: GitWorkspace,
}

/// Whether a run may write: `DryRun` stops before any push or provider write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun { diff: bool },
    Deliver,
}

/// Why a whole delivery (not one target) could not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("downloading the artifact: {0}")]
    Download(#[from] DownloadError),
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("reading the artifact: {0}")]
    Io(#[from] std::io::Error),
}

impl PipelineError {
    /// Worth retrying later (a timeout, a 5xx); anything else needs a person.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Download(err) => err.is_transient(),
            PipelineError::Archive(_) => false,
            PipelineError::Io(_) => true,
        }
    }
}

/// A validated export and the file it streams from. The download's temp file lives
/// exactly as long as the export that reads it.
pub struct ObtainedExport {
    pub export: Arc<Export>,
    /// Where it came from, for reports: the `--artifact` path or the redacted source.
    pub origin: String,
    _artifact: Option<Artifact>,
}

/// What happened (or would happen) at one target.
#[derive(Debug, Serialize)]
pub struct TargetReport {
    #[serde(flatten)]
    pub target: TargetView,
    /// `push`, `no_changes`, `up_to_date`, `branch_diverged`, or `error`.
    pub action: &'static str,
    /// Whether anything was sent to the remote (always false in a dry run).
    pub pushed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
    /// The commit pushed (or that would be pushed), or the one already on the branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileChanges>,
    /// Unified diff of the change (`dry-run --diff` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why the branch was left alone, or what failed, in words a person can act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The error's kind, for scripts (`auth`, `rejected`, `protected_path`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
}

impl TargetReport {
    fn failed(target: TargetView, kind: &'static str, message: String) -> TargetReport {
        TargetReport {
            target,
            action: "error",
            pushed: false,
            commit_message: None,
            commit: None,
            base_commit: None,
            files: None,
            diff: None,
            message: Some(message),
            error_kind: Some(kind),
        }
    }

    /// A target routing could not resolve (its head branch template failed, say).
    pub fn unroutable(config: &Config, failure: &RouteFailure<'_>) -> TargetReport {
        let routed = RoutedTarget {
            hook_index: failure.hook_index,
            target_index: failure.target_index,
            target: failure.target,
            head_branch: String::new(),
        };
        TargetReport::failed(
            TargetView::new(config, &routed),
            "routing",
            failure.error.to_string(),
        )
    }

    pub fn is_error(&self) -> bool {
        self.action == "error"
    }
}

impl Pipeline {
    pub fn new(config: Arc<Config>) -> anyhow::Result<Pipeline> {
        let downloader = Downloader::new(download_policy(&config))
            .context("the platform/download settings cannot be used")?;
        let git = GitWorkspace::new(config.data_dir.join("repositories"), Timeouts::default())
            .context("preparing the repository cache")?;
        Ok(Pipeline {
            config,
            downloader,
            git,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The export to deliver: the local zip when one is given (`--artifact`), otherwise
    /// the job's artifact, downloaded under the configured rules. Validated either way.
    pub async fn obtain_export(
        &self,
        job: &JobEvent,
        local: Option<&Path>,
    ) -> Result<ObtainedExport, PipelineError> {
        let limits = self.config.limits.archive.clone();
        let (file, origin, artifact) = match local {
            Some(path) => (std::fs::File::open(path)?, path.display().to_string(), None),
            None => {
                let artifact = self.downloader.fetch(&job.job.artifact, job).await?;
                let file = artifact.file().try_clone()?;
                (file, describe_artifact(&job.job.artifact), Some(artifact))
            }
        };
        // Inflating every entry is CPU work: keep it off the async workers.
        let export = tokio::task::spawn_blocking(move || Export::from_file(file, &limits))
            .await
            .map_err(|e| std::io::Error::other(format!("validation task failed: {e}")))??;
        Ok(ObtainedExport {
            export: Arc::new(export),
            origin,
            _artifact: artifact,
        })
    }

    /// Plans (and in [`Mode::Deliver`], pushes) one routed target. Never fails as a whole:
    /// an error becomes a report with `action: error`, so the other targets still run.
    #[tracing::instrument(skip_all, fields(job = %job.job.id, hook = %job.hook.id, target = %routed.target.key, repository = %routed.target.repository))]
    pub async fn run_target(
        &self,
        job: &JobEvent,
        export: &Arc<Export>,
        routed: &RoutedTarget<'_>,
        mode: Mode,
    ) -> TargetReport {
        let view = TargetView::new(&self.config, routed);
        let spec = match self.spec(job, export, routed) {
            Ok(spec) => spec,
            Err(err) => return TargetReport::failed(view, "template", format!("{err:#}")),
        };
        let plan = match self.git.plan(&spec, export.clone()).await {
            Ok(plan) => plan,
            Err(err) => return TargetReport::failed(view, git_error_kind(&err), err.to_string()),
        };
        let diff = match mode {
            Mode::DryRun { diff: true } => match self.git.diff(&plan).await {
                Ok(diff) => Some(diff),
                Err(err) => {
                    return TargetReport::failed(view, git_error_kind(&err), err.to_string());
                }
            },
            _ => None,
        };
        let commit_message = Some(plan.commit_message().to_owned());
        let base_commit = Some(plan.base_commit().to_string());
        let (outcome, files, pushed) = match mode {
            Mode::DryRun { .. } => (plan.outcome().clone(), plan.files().clone(), false),
            Mode::Deliver => match self.git.push(plan).await {
                Ok(done) => (done.outcome, done.files, done.pushed),
                Err(err) => {
                    return TargetReport::failed(view, git_error_kind(&err), err.to_string());
                }
            },
        };
        let (commit, message) = match &outcome {
            Outcome::Push { commit, .. } | Outcome::UpToDate { commit } => {
                (Some(commit.to_string()), None)
            }
            Outcome::NoChanges => (
                None,
                Some("the export matches the base branch; nothing to push".to_owned()),
            ),
            Outcome::BranchDiverged { message } => (None, Some(message.clone())),
        };
        TargetReport {
            target: view,
            action: outcome.action(),
            pushed,
            commit_message,
            commit,
            base_commit,
            files: Some(files),
            diff,
            message,
            error_kind: None,
        }
    }

    fn spec(
        &self,
        job: &JobEvent,
        export: &Export,
        routed: &RoutedTarget<'_>,
    ) -> anyhow::Result<DeliverySpec> {
        let target = routed.target;
        let summary = export.summary();
        let facts = TemplateExport {
            files: summary.files,
            bytes: summary.bytes,
            ..TemplateExport::default()
        };
        let commit_message = self
            .config
            .templates
            .render_commit_message(target, job, Some(&facts))
            .context("rendering the commit message")?;
        let credentials = push_credentials(&self.config.connection(target).kind)?;
        let remote = Remote::new(target.clone_url().as_str(), credentials)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(DeliverySpec {
            remote,
            base_branch: target.branch.clone(),
            head_branch: routed.head_branch.clone(),
            relative_path: target.relative_path.clone(),
            purge: target.purge_directory,
            author: Signature {
                name: target.commit_author_name.clone(),
                email: target.commit_author_email.clone(),
            },
            commit_message,
            delivery_id: delivery_id(job, target),
            allow_protected_paths: target.allow_protected_paths,
            overwrite_diverged: target.overwrite_diverged,
            allow_empty_export: target.allow_empty_export,
        })
    }
}

/// The `Courier-Delivery` trailer's value: the same for every delivery of one job to one
/// target, so a re-run of that job recognises its own commit.
fn delivery_id(job: &JobEvent, target: &Target) -> String {
    format!("{}/{} {}", job.workspace.id, job.job.id, target.key)
}

/// The user name and token git pushes with, per connection kind.
fn push_credentials(kind: &ConnectionKind) -> anyhow::Result<Option<Credentials>> {
    let token = |username: &str, token: &SecretString| {
        Some(Credentials {
            username: username.to_owned(),
            token: token.clone(),
        })
    };
    Ok(match kind {
        ConnectionKind::Github(github) => match &github.auth {
            GithubAuth::Token(secret) => token("x-access-token", secret),
            GithubAuth::App(_) => anyhow::bail!(
                "GitHub App connections mint their push token through the GitHub provider, which is not available in this build"
            ),
        },
        ConnectionKind::Gitlab(gitlab) => token("oauth2", &gitlab.token),
        // Azure DevOps accepts any user name with a PAT.
        ConnectionKind::Azure(azure) => token("courier", &azure.token),
        ConnectionKind::Git(git) => match &git.token {
            Some(secret) => token(git.username.as_deref().unwrap_or("courier"), secret),
            None => None,
        },
    })
}

/// The downloader's rules, from the configuration's `platform` and `limits` sections.
fn download_policy(config: &Config) -> DownloadPolicy {
    let platform = &config.platform;
    let mut policy = DownloadPolicy::new(platform.api_url.clone());
    // An insecure host is one the operator named explicitly: it may serve artifacts too.
    let insecure: Vec<String> = platform
        .insecure_hosts
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    policy.download_hosts = platform
        .download_hosts
        .iter()
        .map(|p| p.as_str().to_owned())
        .chain(insecure.iter().cloned())
        .collect();
    policy.insecure_hosts = insecure;
    policy.platform_token = platform.token.clone();
    policy.limits = config.limits.download.clone();
    policy.temp_dir = Some(config.data_dir.join("tmp"));
    policy
}

/// A stable word for each git failure, for `--json` consumers and the store.
fn git_error_kind(err: &GitError) -> &'static str {
    match err {
        GitError::InvalidRemote { .. } => "invalid_remote",
        GitError::Auth { .. } => "auth",
        GitError::NotFound { .. } => "not_found",
        GitError::Rejected { .. } => "rejected",
        GitError::HeadMoved { .. } => "head_moved",
        GitError::Lfs { .. } => "lfs",
        GitError::ProtectedPath { .. } => "protected_path",
        GitError::EmptyExport { .. } => "empty_export",
        GitError::Export { .. } => "export",
        GitError::Timeout { .. } => "timeout",
        GitError::CacheCorrupt { .. } => "cache_corrupt",
        GitError::Transient { .. } => "transient",
        _ => "git",
    }
}
