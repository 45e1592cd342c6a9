//! One delivery, from a webhook body to pushed branches: the steps `inspect`, `dry-run`,
//! `deliver` and (later) the server's workers share, so that a dry run exercises exactly
//! the code a real delivery runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use courier_core::archive::{ArchiveError, Export};
use courier_core::config::{Config, ConnectionKind, GithubAuth, Target};
use courier_core::download::{Artifact, DownloadError, DownloadPolicy, Downloader, JobCheck};
use courier_core::event::{
    ArtifactSource, Event, EventError, JobEvent, LogLine, Logs, parse_event,
};
use courier_core::routing::{RouteFailure, RoutedTarget};
use courier_core::template::{DirectoryChanges, ExportSummary as TemplateExport};
use courier_providers::azure::{AzureConfig, AzureProvider};
use courier_providers::git::{
    Credentials, DeliverySpec, FileChanges, GitError, GitWorkspace, Outcome, Remote, Signature,
    Timeouts,
};
use courier_providers::github::{
    GitHubApp, GitHubAuth, GitHubConfig, GitHubProvider, Installation,
};
use courier_providers::gitlab::{GitLabConfig, GitLabProvider};
use courier_providers::provider::{BranchName, Decorations, Provider, ProviderError, RepoSlug};
use courier_providers::pull_request::{
    self, FailureOutcome, FailureReport, GitOutcome, PrOutcome, PrPlan, PrSpec,
};
use courier_providers::retry::RetryPolicy;
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
    /// One client per connection that opens pull requests, or why it could not be built
    /// (a missing GitHub App key, say): that fails the connection's targets, not the rest.
    providers: BTreeMap<String, Result<Arc<dyn Provider>, String>>,
    retry: RetryPolicy,
}

/// Most log warnings and errors quoted in a pull request description.
const MAX_NOTES: usize = 20;

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
    /// The platform API could not be asked about the job (not: it refused the job).
    #[error("verifying the job with the platform API: {0}")]
    Verify(DownloadError),
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("reading the artifact: {0}")]
    Io(#[from] std::io::Error),
}

impl PipelineError {
    /// Worth retrying later (a timeout, a 5xx); anything else needs a person.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Download(err) | PipelineError::Verify(err) => err.is_transient(),
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
    /// For `up_to_date`: the commit already on the head branch is this same delivery's
    /// (this job at this target, by its `Courier-Delivery` trailer), pushed by an earlier
    /// run of it: one that crashed or failed after its push, or the run a replay repeats.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pushed_earlier: bool,
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
    /// Whether the same delivery may succeed later without anyone changing anything.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
    /// What happened (deliver) or would happen (dry-run) to the pull request; absent for
    /// `git` targets, which open none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestReport>,
}

/// The pull-request step of a target's report.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PullRequestReport {
    Done(PrOutcome),
    Planned(PrPlan),
    FailureReported(FailureOutcome),
}

impl PullRequestReport {
    /// The page of the pull request acted on, if there is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            PullRequestReport::Done(outcome) => outcome.pull_request().map(|pr| pr.url.as_str()),
            _ => None,
        }
    }
}

impl TargetReport {
    fn new(target: TargetView, action: &'static str) -> TargetReport {
        TargetReport {
            target,
            action,
            pushed: false,
            pushed_earlier: false,
            commit_message: None,
            commit: None,
            base_commit: None,
            files: None,
            diff: None,
            message: None,
            error_kind: None,
            retryable: false,
            pull_request: None,
        }
    }

    fn failed(target: TargetView, kind: &'static str, message: String) -> TargetReport {
        TargetReport {
            message: Some(message),
            error_kind: Some(kind),
            ..TargetReport::new(target, "error")
        }
    }

    fn provider_failed(target: TargetView, err: &ProviderError) -> TargetReport {
        let mut report = TargetReport::failed(target, err.kind(), err.to_string());
        report.retryable = err.is_transient();
        report
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

    fn git_failed(target: TargetView, err: &GitError) -> TargetReport {
        let mut report = TargetReport::failed(target, err.kind(), err.to_string());
        report.retryable = err.is_transient();
        report
    }

    pub fn is_error(&self) -> bool {
        self.action == "error"
    }
}

impl Pipeline {
    pub fn new(config: Arc<Config>) -> anyhow::Result<Pipeline> {
        let policy = download_policy(&config);
        if let Some(tmp) = &policy.temp_dir {
            std::fs::create_dir_all(tmp)
                .with_context(|| format!("creating the download directory {}", tmp.display()))?;
        }
        let downloader =
            Downloader::new(policy).context("the platform/download settings cannot be used")?;
        let git = GitWorkspace::new(config.data_dir.join("repositories"), Timeouts::default())
            .context("preparing the repository cache")?;
        let providers = config
            .connections
            .iter()
            .filter_map(|(name, connection)| {
                provider_for(&connection.kind).map(|p| (name.clone(), p))
            })
            .collect();
        Ok(Pipeline {
            config,
            downloader,
            git,
            providers,
            retry: RetryPolicy::default(),
        })
    }

    /// Shorter waits between provider retries, for tests and the foreground CLI.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Pipeline {
        self.retry = retry;
        self
    }

    fn provider(&self, target: &Target) -> Option<Result<&Arc<dyn Provider>, &str>> {
        self.providers
            .get(&target.connection)
            .map(|p| p.as_ref().map_err(String::as_str))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the platform API says about the event's job (`webhook.verify_with_platform`).
    pub async fn verify(&self, job: &JobEvent) -> Result<JobCheck, PipelineError> {
        self.downloader
            .verify_job(job)
            .await
            .map_err(PipelineError::Verify)
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

    /// Plans (and in [`Mode::Deliver`], pushes) one routed target, then opens, updates or
    /// closes its pull request (dry-run: plans that with read-only calls). Never fails as a
    /// whole: an error becomes a report with `action: error`, so the other targets still run.
    #[tracing::instrument(skip_all, fields(job = %job.job.id, hook = %job.hook.id, target = %routed.target.key, repository = %routed.target.repository))]
    pub async fn run_target(
        &self,
        job: &JobEvent,
        export: &Arc<Export>,
        routed: &RoutedTarget<'_>,
        mode: Mode,
    ) -> TargetReport {
        let view = TargetView::new(&self.config, routed);
        let target = routed.target;
        let provider = match self.provider(target) {
            None => None,
            Some(Ok(provider)) => Some(provider.clone()),
            Some(Err(why)) => return TargetReport::failed(view, "provider_setup", why.to_owned()),
        };
        let spec = match self.spec(job, export, routed, provider.as_deref()).await {
            Ok(spec) => spec,
            Err(SpecError::Template(err)) => {
                return TargetReport::failed(view, "template", format!("{err:#}"));
            }
            Err(SpecError::Provider(err)) => return TargetReport::provider_failed(view, &err),
        };
        let plan = match self.git.plan(&spec, export.clone()).await {
            Ok(plan) => plan,
            Err(err) => return TargetReport::git_failed(view, &err),
        };
        let diff = match mode {
            Mode::DryRun { diff: true } => match self.git.diff(&plan).await {
                Ok(diff) => Some(diff),
                Err(err) => return TargetReport::git_failed(view, &err),
            },
            _ => None,
        };
        let commit_message = Some(plan.commit_message().to_owned());
        let base_commit = Some(plan.base_commit().to_string());
        let pushed_earlier = matches!(plan.outcome(), Outcome::UpToDate { .. })
            && plan.head_delivery() == Some(spec.delivery_id.as_str());
        let (outcome, files, pushed) = match mode {
            Mode::DryRun { .. } => (plan.outcome().clone(), plan.files().clone(), false),
            Mode::Deliver => match self.git.push(plan).await {
                Ok(done) => (done.outcome, done.files, done.pushed),
                Err(err) => return TargetReport::git_failed(view, &err),
            },
        };
        let (commit, message, git_outcome) = match &outcome {
            Outcome::Push { commit, .. } => (Some(commit.to_string()), None, GitOutcome::Pushed),
            Outcome::UpToDate { commit } => (Some(commit.to_string()), None, GitOutcome::UpToDate),
            Outcome::NoChanges => (
                None,
                Some("the export matches the base branch; nothing to push".to_owned()),
                GitOutcome::NoChanges,
            ),
            Outcome::BranchDiverged { message } => {
                (None, Some(message.clone()), GitOutcome::BranchDiverged)
            }
        };
        let mut report = TargetReport {
            target: view,
            action: outcome.action(),
            pushed,
            pushed_earlier,
            commit_message,
            commit,
            base_commit,
            files: Some(files),
            diff,
            message,
            error_kind: None,
            retryable: false,
            pull_request: None,
        };
        if let Some(provider) = provider {
            let mut facts = export_facts(export, report.files.as_ref());
            facts.notes = self.log_notes(job).await;
            let mut pr = match self.pr_spec(job, routed, &facts) {
                Ok(pr) => pr,
                Err(err) => {
                    return TargetReport::failed(report.target, "template", format!("{err:#}"));
                }
            };
            // Our own earlier run pushed this commit and may have opened the pull request
            // without getting to its labels and reviewers (a crash in between).
            pr.redecorate = report.pushed_earlier;
            let step = match mode {
                Mode::DryRun { .. } => {
                    pull_request::plan(provider.as_ref(), &self.retry, &pr, git_outcome)
                        .await
                        .map(PullRequestReport::Planned)
                }
                Mode::Deliver => {
                    pull_request::open_or_update(provider.as_ref(), &self.retry, &pr, git_outcome)
                        .await
                        .map(PullRequestReport::Done)
                }
            };
            match step {
                Ok(step) => report.pull_request = Some(step),
                Err(err) => {
                    // The branch is pushed; what failed is the pull request. A retry
                    // converges: the push is `up_to_date` and the PR is looked up again.
                    let kind = err.kind();
                    report.message = Some(format!("the pull request step failed: {err}"));
                    report.error_kind = Some(kind);
                    report.retryable = err.is_transient();
                    report.action = "error";
                }
            }
        }
        report
    }

    /// A failed export closes the loop: the open pull request of each routed target gets
    /// one comment with the failure and the last log lines; nothing is pushed.
    pub async fn report_failure(
        &self,
        job: &JobEvent,
        routed: &RoutedTarget<'_>,
        log_tail: &[String],
        mode: Mode,
    ) -> TargetReport {
        let view = TargetView::new(&self.config, routed);
        let mut report = TargetReport::new(view, "report_failure");
        report.message = Some(format!("job {} ended {}", job.job.id, job.job.status));
        let provider = match self.provider(routed.target) {
            None => {
                report.action = "nothing_to_do";
                return report;
            }
            Some(Ok(provider)) => provider.clone(),
            Some(Err(why)) => {
                return TargetReport::failed(report.target, "provider_setup", why.to_owned());
            }
        };
        let target = routed.target;
        let failure = FailureReport {
            repo: RepoSlug::new(target.repository.clone()),
            head: BranchName::new(routed.head_branch.clone()),
            base: BranchName::new(target.branch.clone()),
            job_id: job.job.id.clone(),
            message: format!(
                "The {} export of {} {} ended with status {}; this pull request still holds the previous export.",
                job.exporter.name, job.design_system.name, job.version.version, job.job.status
            ),
            last_log_lines: log_tail.to_vec(),
        };
        if let Mode::DryRun { .. } = mode {
            report.message = Some(format!(
                "would comment on the open pull request of {} (if any) with the failure",
                routed.head_branch
            ));
            return report;
        }
        match pull_request::report_failure(provider.as_ref(), &self.retry, &failure).await {
            Ok(outcome) => report.pull_request = Some(PullRequestReport::FailureReported(outcome)),
            Err(err) => return TargetReport::provider_failed(report.target, &err),
        }
        report
    }

    /// The last lines of the job's log: inline (first version) or fetched from `logsUrl`
    /// under the download rules. A log that cannot be fetched is reported, not fatal.
    pub async fn log_tail(&self, job: &JobEvent, lines: usize) -> Vec<String> {
        let all = match self.log_lines(job).await {
            Ok(all) => all,
            Err(err) => return vec![format!("(the job log could not be fetched: {err})")],
        };
        let skip = all.len().saturating_sub(lines);
        all[skip..]
            .iter()
            .map(|l| format!("[{}] {}", l.level, l.message))
            .collect()
    }

    /// The log's warnings and errors, for the pull request description. A log that cannot
    /// be fetched leaves the list empty (the delivery does not depend on it).
    async fn log_notes(&self, job: &JobEvent) -> Vec<String> {
        let lines = match self.log_lines(job).await {
            Ok(lines) => lines,
            Err(err) => {
                tracing::warn!(error = %err, "the job log could not be fetched for the description");
                return Vec::new();
            }
        };
        lines
            .into_iter()
            .filter(|l| {
                let level = l.level.to_ascii_lowercase();
                level.starts_with("warn") || level.starts_with("err")
            })
            .take(MAX_NOTES)
            .map(|l| format!("{}: {}", l.level, l.message))
            .collect()
    }

    async fn log_lines(&self, job: &JobEvent) -> Result<Vec<LogLine>, DownloadError> {
        match &job.job.logs {
            Logs::Inline { lines, .. } => Ok(lines.clone()),
            Logs::Url { url } => self.downloader.fetch_logs(url).await,
            Logs::None => Ok(Vec::new()),
        }
    }

    async fn spec(
        &self,
        job: &JobEvent,
        export: &Export,
        routed: &RoutedTarget<'_>,
        provider: Option<&dyn Provider>,
    ) -> Result<DeliverySpec, SpecError> {
        let target = routed.target;
        let facts = export_facts(export, None);
        let commit_message = self
            .config
            .templates
            .render_commit_message(target, job, Some(&facts))
            .context("rendering the commit message")?;
        // Forges hand out the push credentials (a GitHub App mints a token); a plain git
        // remote uses its configured token, if any.
        let credentials = match provider {
            Some(provider) => {
                let repo = RepoSlug::new(target.repository.clone());
                let creds = self
                    .retry
                    .run("push credentials", || provider.push_credentials(&repo))
                    .await
                    .map_err(SpecError::Provider)?;
                Some(Credentials {
                    username: creds.username,
                    token: creds.token,
                })
            }
            None => plain_git_credentials(&self.config.connection(target).kind),
        };
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

    fn pr_spec(
        &self,
        job: &JobEvent,
        routed: &RoutedTarget<'_>,
        facts: &TemplateExport,
    ) -> anyhow::Result<PrSpec> {
        let target = routed.target;
        let templates = &self.config.templates;
        let title = templates
            .render_pull_request_title(target, job, Some(facts))
            .context("rendering the pull request title")?;
        let body = templates
            .render_pull_request_description(target, job, Some(facts))
            .context("rendering the pull request description")?;
        let body = format!("{}\n\n{}", body.trim_end(), marker(job, target));
        Ok(PrSpec {
            repo: RepoSlug::new(target.repository.clone()),
            head: BranchName::new(routed.head_branch.clone()),
            base: BranchName::new(target.branch.clone()),
            title,
            body,
            draft: target.draft,
            decorations: Decorations {
                labels: target.labels.clone(),
                reviewers: target.reviewers.clone(),
                team_reviewers: target.team_reviewers.clone(),
                assignees: target.assignees.clone(),
            },
            update_description: target.update_description,
            delete_branch_on_converge: target.delete_branch_on_converge,
            auto_merge: target.auto_merge,
            redecorate: false,
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum SpecError {
    #[error(transparent)]
    Template(#[from] anyhow::Error),
    #[error(transparent)]
    Provider(ProviderError),
}

/// What templates may say about the export; the changes once the tree is built.
fn export_facts(export: &Export, files: Option<&FileChanges>) -> TemplateExport {
    let summary = export.summary();
    let mut facts = TemplateExport {
        files: summary.files,
        bytes: summary.bytes,
        ..TemplateExport::default()
    };
    if let Some(files) = files {
        facts.added = Some(files.added.len() as u64);
        facts.modified = Some(files.modified.len() as u64);
        facts.deleted = Some(files.deleted.len() as u64);
        facts.directories = changes_by_directory(files);
    }
    facts
}

/// The changes grouped by the directory that holds each file, sorted by directory.
fn changes_by_directory(files: &FileChanges) -> Vec<DirectoryChanges> {
    type Count = fn(&mut DirectoryChanges);
    let mut dirs: BTreeMap<&str, DirectoryChanges> = BTreeMap::new();
    let kinds: [(&[String], Count); 3] = [
        (&files.added, |d| d.added += 1),
        (&files.modified, |d| d.modified += 1),
        (&files.deleted, |d| d.deleted += 1),
    ];
    for (paths, count) in kinds {
        for path in paths {
            let dir = path.rsplit_once('/').map_or(".", |(dir, _)| dir);
            count(dirs.entry(dir).or_insert_with(|| DirectoryChanges {
                name: dir.to_owned(),
                ..DirectoryChanges::default()
            }));
        }
    }
    dirs.into_values().collect()
}

/// The hidden line at the end of every description Courier writes, naming the hook and
/// target, so a person (or a later Courier) can tell which configuration owns the PR.
fn marker(job: &JobEvent, target: &Target) -> String {
    format!(
        "<!-- courier: hook={} target={} -->",
        job.hook.id, target.key
    )
}

/// The `Courier-Delivery` trailer's value: the same for every delivery of one job to one
/// target, so a re-run of that job recognises its own commit.
fn delivery_id(job: &JobEvent, target: &Target) -> String {
    format!("{}/{} {}", job.workspace.id, job.job.id, target.key)
}

/// The push credentials of a plain `git` connection (forges give theirs through the
/// provider).
fn plain_git_credentials(kind: &ConnectionKind) -> Option<Credentials> {
    match kind {
        ConnectionKind::Git(git) => git.token.as_ref().map(|token| Credentials {
            username: git.username.clone().unwrap_or_else(|| "courier".to_owned()),
            token: token.clone(),
        }),
        _ => None,
    }
}

/// The pull-request client for a connection, or why it could not be built; `None` for
/// plain git connections.
fn provider_for(kind: &ConnectionKind) -> Option<Result<Arc<dyn Provider>, String>> {
    let built: Result<Arc<dyn Provider>, String> = match kind {
        ConnectionKind::Git(_) => return None,
        ConnectionKind::Github(github) => {
            let auth = match &github.auth {
                GithubAuth::Token(token) => Ok(GitHubAuth::Token(token.clone())),
                GithubAuth::App(app) => {
                    let installation = match app.installation_id {
                        Some(id) => Installation::Id(id),
                        None => Installation::ByRepository,
                    };
                    GitHubApp::from_key_file(app.app_id, &app.private_key_path, installation)
                        .map(GitHubAuth::App)
                        .map_err(|e| e.to_string())
                }
            };
            auth.and_then(|auth| {
                GitHubConfig::new(auth)
                    .with_api_url(github.api_url.as_str())
                    .and_then(GitHubProvider::new)
                    .map(|p| Arc::new(p) as Arc<dyn Provider>)
                    .map_err(|e| e.to_string())
            })
        }
        ConnectionKind::Gitlab(gitlab) => {
            GitLabConfig::new(gitlab.url.as_str(), gitlab.token.clone())
                .and_then(GitLabProvider::new)
                .map(|p| Arc::new(p) as Arc<dyn Provider>)
                .map_err(|e| e.to_string())
        }
        ConnectionKind::Azure(azure) => AzureConfig::new(&azure.organization, azure.token.clone())
            .with_base_url(azure.url.as_str())
            .and_then(AzureProvider::new)
            .map(|p| Arc::new(p) as Arc<dyn Provider>)
            .map_err(|e| e.to_string()),
    };
    Some(built)
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
