//! What a run of a job reports: per target, and for the job as a whole. `dry-run` and
//! `deliver` print these (`--json` is the documented shape); the worker records them.

use std::fmt;
use std::ops::Not;

use courier_core::archive::ExportSummary;
use courier_core::config::Config;
use courier_core::event::JobEvent;
use courier_core::routing::RoutedTarget;
use courier_core::tokens::TokenDiff;
use courier_providers::forge_calls::CallTimes;
use courier_providers::git::FileChanges;
use courier_providers::pull_request::{FailureOutcome, PrOutcome, PrPlan};
use serde::{Serialize, Serializer};

use super::Mode;
use super::outcome::{Cause, Failure, Outcome};
use super::timings::Timings;

/// A routed target as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    /// The target's stable id (`id` in the configuration, or derived from what it is).
    pub target: String,
    /// Where it stands in the configuration now (`hooks[H].targets[T]`), for people.
    pub key: String,
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
            target: target.id.clone(),
            key: target.key.clone(),
            connection: target.connection.clone(),
            kind: config.connection(target).kind.name(),
            repository: target.repository.clone(),
            // Read from the remote when the delivery runs; the run's report says which.
            base: if target.branch_from_remote {
                "(the repository's default branch)".to_owned()
            } else {
                target.branch.clone()
            },
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

/// What happened (or would happen) at one target.
#[derive(Debug)]
pub struct TargetReport {
    pub target: TargetView,
    pub outcome: Outcome,
    /// Whether anything was sent to the remote (always false in a dry run).
    pub pushed: bool,
    /// For `up_to_date`: the commit already on the head branch is this same delivery's
    /// (this job at this target, by its `Courier-Delivery` trailer), pushed by an earlier
    /// run of it: one that crashed or failed after its push, or the run a replay repeats.
    pub pushed_earlier: bool,
    pub commit_message: Option<String>,
    /// The commit pushed (or that would be pushed), or the one already on the branch.
    pub commit: Option<String>,
    pub base_commit: Option<String>,
    pub files: Option<FileChanges>,
    /// What changed in the design tokens of those files.
    pub tokens: Option<TokenDiff>,
    /// Unified diff of the change (`dry-run --diff` only).
    pub diff: Option<String>,
    /// Why the branch was left alone, or what will be done, in words; a failure's message
    /// is its own.
    pub note: Option<String>,
    /// What happened (deliver) or would happen (dry-run) to the pull request; absent for
    /// `git` targets, which open none.
    pub pull_request: Option<PullRequestReport>,
    /// How long this target's phases took (`plan`, `push`, `pull_request`, `total`).
    pub timings: Timings,
    /// How long each forge call took, its retries included.
    pub forge_calls: CallTimes,
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
    pub fn new(target: TargetView, outcome: Outcome) -> TargetReport {
        TargetReport {
            target,
            outcome,
            pushed: false,
            pushed_earlier: false,
            commit_message: None,
            commit: None,
            base_commit: None,
            files: None,
            tokens: None,
            diff: None,
            note: None,
            pull_request: None,
            timings: Timings::default(),
            forge_calls: CallTimes::default(),
        }
    }

    pub fn failed(target: TargetView, failure: Failure) -> TargetReport {
        TargetReport::new(target, Outcome::Failed(failure))
    }

    /// The same report with these phase timings.
    pub fn timed(mut self, timings: Timings) -> TargetReport {
        self.timings = timings;
        self
    }

    pub fn is_error(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }

    /// The failure's message, or the note.
    pub fn message(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Failed(failure) => Some(&failure.message),
            _ => self.note.as_deref(),
        }
    }
}

/// The documented JSON shape: `action` is the outcome's word, and a failure spreads into
/// `message`, `error_kind` and `retryable`.
impl Serialize for TargetReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(flatten)]
            target: &'a TargetView,
            action: &'a Outcome,
            pushed: bool,
            #[serde(skip_serializing_if = "Not::not")]
            pushed_earlier: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            commit_message: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            commit: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            base_commit: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            files: Option<&'a FileChanges>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tokens: Option<&'a TokenDiff>,
            #[serde(skip_serializing_if = "Option::is_none")]
            diff: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error_kind: Option<Cause>,
            #[serde(skip_serializing_if = "Not::not")]
            retryable: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            pull_request: Option<&'a PullRequestReport>,
            #[serde(skip_serializing_if = "Timings::is_empty")]
            timings: &'a Timings,
            #[serde(skip_serializing_if = "CallTimes::is_empty")]
            forge_calls: &'a CallTimes,
        }
        let failure = self.outcome.failure();
        Wire {
            target: &self.target,
            action: &self.outcome,
            pushed: self.pushed,
            pushed_earlier: self.pushed_earlier,
            commit_message: self.commit_message.as_deref(),
            commit: self.commit.as_deref(),
            base_commit: self.base_commit.as_deref(),
            files: self.files.as_ref(),
            tokens: self.tokens.as_ref(),
            diff: self.diff.as_deref(),
            message: self.message(),
            error_kind: failure.map(|f| f.cause),
            retryable: failure.is_some_and(|f| f.retryable),
            pull_request: self.pull_request.as_ref(),
            timings: &self.timings,
            forge_calls: &self.forge_calls,
        }
        .serialize(s)
    }
}

/// How a run of a job ended, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Dry run: every target could go ahead.
    Planned,
    /// Every target went through.
    Delivered,
    /// Some targets failed.
    Partial,
    Failed,
    /// Nothing to push: unrouted, only build, a failed job, not confirmed by the platform.
    NothingToDeliver,
}

impl JobStatus {
    pub fn word(self) -> &'static str {
        match self {
            JobStatus::Planned => "planned",
            JobStatus::Delivered => "delivered",
            JobStatus::Partial => "partial",
            JobStatus::Failed => "failed",
            JobStatus::NothingToDeliver => "nothing_to_deliver",
        }
    }
}

/// The report `dry-run` and `deliver` print; with `--json` this is the documented shape.
#[derive(Debug, Serialize)]
pub struct JobReport {
    /// `dry_run` or `deliver`.
    pub mode: &'static str,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What stopped the whole job, when something did (for the exit code).
    #[serde(skip)]
    pub cause: Option<Cause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSummary>,
    /// How long obtaining the export took (`download`, `validate`): absent for a delivery
    /// that shared an export another delivery of its job obtained.
    #[serde(skip_serializing_if = "Timings::is_empty")]
    pub timings: Timings,
    pub targets: Vec<TargetReport>,
}

impl JobReport {
    pub fn new(mode: Mode, job: Option<&JobEvent>) -> JobReport {
        JobReport {
            mode: match mode {
                Mode::DryRun { .. } => "dry_run",
                Mode::Deliver => "deliver",
            },
            status: JobStatus::NothingToDeliver,
            reason: None,
            cause: None,
            job: job.map(JobSummary::new),
            export: None,
            timings: Timings::default(),
            targets: Vec::new(),
        }
    }

    /// The status the targets' outcomes add up to.
    pub(super) fn settle(&mut self, mode: Mode) {
        let failed = self.targets.iter().filter(|t| t.is_error()).count();
        self.status = match (failed, mode) {
            (0, Mode::DryRun { .. }) => JobStatus::Planned,
            (0, Mode::Deliver) => JobStatus::Delivered,
            (n, _) if n == self.targets.len() => JobStatus::Failed,
            _ => JobStatus::Partial,
        };
    }
}

#[derive(Debug, Serialize)]
pub struct JobSummary {
    pub workspace: String,
    pub design_system: String,
    pub version: String,
    pub exporter: String,
    pub hook: String,
    pub job: String,
    pub status: String,
}

impl JobSummary {
    fn new(job: &JobEvent) -> JobSummary {
        JobSummary {
            workspace: job.workspace.id.clone(),
            design_system: format!("{} ({})", job.design_system.name, job.design_system.id),
            version: format!("{} {}", job.version.name, job.version.version),
            exporter: format!("{} ({})", job.exporter.name, job.exporter.id),
            hook: format!("{} ({})", job.hook.name, job.hook.id),
            job: job.job.id.clone(),
            status: job.job.status.to_string(),
        }
    }
}
