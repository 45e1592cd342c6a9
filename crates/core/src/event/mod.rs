//! The platform's `job:updated` event, in both payload versions, normalised into one type.
//!
//! Parsing lives in `parse.rs`; this file is the shape the rest of Courier sees.

use serde::Serialize;
use url::Url;

/// An id and display name, as the platform sends for workspace, design system, exporter, hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// The design-system version the export was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRef {
    pub id: String,
    pub name: String,
    /// The version label, e.g. `v0.1`.
    pub version: String,
}

/// Which payload version the event came in; both normalise to [`JobEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadVersion {
    /// `job.logs[]` inline and `job.urls[]` (a signed URL fetched without credentials).
    V1,
    /// `job.logsUrl` and `job.s3.url`, fetched with the platform PAT.
    V2,
}

/// The job's status. Only [`JobStatus::Success`] is ever delivered; the rest are recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Success,
    Failure,
    Failed,
    Timeout,
    InProgress,
    /// A status this version of Courier does not know; recorded, never delivered.
    Unknown(String),
}

/// Where the job's result zip comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArtifactSource {
    /// First version: a signed URL from `job.urls[0]`, fetched without credentials.
    SignedUrl { url: Url },
    /// Newer version: `job.s3.url`. The platform PAT is attached only when the URL's
    /// origin is the configured platform API origin.
    PlatformUrl { url: Url },
    /// Newer version with no URL in the payload: the job's result endpoint under the
    /// configured platform API URL, fetched with the PAT.
    ResultEndpoint,
    /// No artifact (failed jobs, or a success that came without any URL in v1).
    None,
}

/// One line of the exporter's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub time: Option<String>,
    /// `info`, `warning`, `error`, ... as the platform sends it.
    pub level: String,
    pub message: String,
}

/// The job's log: inline (first version), behind a URL (newer version), or absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Logs {
    Inline { lines: Vec<LogLine> },
    Url { url: Url },
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: String,
    pub status: JobStatus,
    pub logs: Logs,
    pub artifact: ArtifactSource,
}

/// A normalised `job:updated` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobEvent {
    pub payload_version: PayloadVersion,
    pub workspace: Named,
    pub design_system: Named,
    pub version: VersionRef,
    pub exporter: Named,
    pub hook: Named,
    pub job: Job,
}

/// Any event the platform may POST. Events other than `job:updated` are recognised
/// and ignored, not errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event_kind", rename_all = "snake_case")]
pub enum Event {
    JobUpdated(Box<JobEvent>),
    Other { event: String },
}
