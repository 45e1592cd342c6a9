//! What happened at one target: one type from the git engine to the store, the API, the
//! CLI's `--json` and the metrics. The words people and scripts read are its
//! serialisation (`push`, `no_changes`, ...), never something compared later.

use std::fmt;
use std::time::Duration;

use courier_core::archive::ArchiveError;
use courier_core::download::DownloadError;
use courier_providers::api_commit::ApiCommitError;
use courier_providers::git::{self, GitError};
use courier_providers::provider::ProviderError;
use serde::{Serialize, Serializer};

/// What a delivery did (or, in a dry run, would do) at one target. The pull request's
/// part (opened, updated, closed) is [`PrAction`](courier_providers::pull_request::PrAction)
/// beside it in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new commit on the head branch.
    Pushed,
    /// The head branch already holds exactly this export.
    UpToDate,
    /// The export equals the base branch: nothing to propose (an open PR is closed).
    NoChanges,
    /// Someone else committed on the head branch; Courier did not push over it.
    BranchDiverged,
    /// A failed job was reported on the target's open pull request (once per job).
    Commented,
    /// A failed job, and the target has no open pull request to tell.
    NoOpenPullRequest,
    /// Deliberately not delivered: the platform does not confirm the job.
    Skipped,
    Failed(Failure),
}

impl Outcome {
    /// The documented word (`action` in reports).
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pushed => "push",
            Outcome::UpToDate => "up_to_date",
            Outcome::NoChanges => "no_changes",
            Outcome::BranchDiverged => "branch_diverged",
            Outcome::Commented => "commented",
            Outcome::NoOpenPullRequest => "no_open_pull_request",
            Outcome::Skipped => "skipped",
            Outcome::Failed(_) => "error",
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

impl From<&git::Outcome> for Outcome {
    fn from(outcome: &git::Outcome) -> Outcome {
        match outcome {
            git::Outcome::Push { .. } => Outcome::Pushed,
            git::Outcome::UpToDate { .. } => Outcome::UpToDate,
            git::Outcome::NoChanges { .. } => Outcome::NoChanges,
            git::Outcome::BranchDiverged { .. } => Outcome::BranchDiverged,
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.word())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Why a target (or a whole job) was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub cause: Cause,
    /// What happened, in words a person can act on. Never holds a secret: every error it
    /// is made from is scrubbed where it is made.
    pub message: String,
    /// The same delivery may succeed later without anyone changing anything.
    pub retryable: bool,
    /// When the other side asked to be called again no sooner than this.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn new(cause: Cause, message: impl Into<String>) -> Failure {
        Failure {
            cause,
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }

    /// `kind: message`, as the store records it.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.cause.word(), self.message)
    }
}

impl From<&GitError> for Failure {
    fn from(err: &GitError) -> Failure {
        Failure {
            cause: Cause::Git(err.kind()),
            message: err.to_string(),
            retryable: err.is_transient(),
            retry_after: None,
        }
    }
}

impl From<&ProviderError> for Failure {
    fn from(err: &ProviderError) -> Failure {
        Failure {
            cause: Cause::Provider(err.kind()),
            message: err.to_string(),
            retryable: err.is_transient(),
            retry_after: err.retry_after(),
        }
    }
}

impl From<&ApiCommitError> for Failure {
    fn from(err: &ApiCommitError) -> Failure {
        match err {
            ApiCommitError::Git(err) => Failure::from(err),
            ApiCommitError::Provider(err) => Failure::from(err),
            other => Failure {
                cause: Cause::Git(other.kind()),
                message: other.to_string(),
                retryable: other.is_transient(),
                retry_after: None,
            },
        }
    }
}

impl From<&DownloadError> for Failure {
    fn from(err: &DownloadError) -> Failure {
        Failure {
            cause: Cause::Download,
            message: format!("downloading the artifact: {err}"),
            retryable: err.is_transient(),
            retry_after: err.retry_after(),
        }
    }
}

impl From<&ArchiveError> for Failure {
    fn from(err: &ArchiveError) -> Failure {
        Failure::new(Cause::Archive, err.to_string())
    }
}

/// The kind of a [`Failure`]. Git and provider errors carry their own stable word
/// (`auth`, `rejected`, `provider_rate_limited`, ...), which is what `--json` and the store
/// show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The job's artifact could not be downloaded.
    Download,
    /// The platform API could not be asked about the job.
    Verify,
    /// The archive broke a rule and was rejected whole.
    Archive,
    /// Reading the artifact from disk failed.
    Io,
    /// The stored event cannot be used (purged, or no longer parses).
    Event,
    /// Routing could not resolve the target (its head branch template failed, say).
    Routing,
    /// The target is gone from the configuration, or now names another repository.
    TargetChanged,
    /// A commit message or pull request template failed to render.
    Template,
    /// The connection's client could not be built (a missing GitHub App key, say).
    ProviderSetup,
    /// The export breaks a rule of the target (an empty export for a purging target).
    Export,
    Git(&'static str),
    Provider(&'static str),
}

impl Cause {
    pub fn word(self) -> &'static str {
        match self {
            Cause::Download => "download",
            Cause::Verify => "verify",
            Cause::Archive => "archive",
            Cause::Io => "io",
            Cause::Event => "event",
            Cause::Routing => "routing",
            Cause::TargetChanged => "target_changed",
            Cause::Template => "template",
            Cause::ProviderSetup => "provider_setup",
            Cause::Export => "empty_export",
            Cause::Git(word) | Cause::Provider(word) => word,
        }
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.word())
    }
}
