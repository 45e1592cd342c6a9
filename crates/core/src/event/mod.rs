//! The platform's `job:updated` event, in both payload versions, normalised into one type.
//!
//! Parsing lives in [`parse`](self::parse_event); this file is the shape the rest of
//! Courier sees. Every URL that came from a payload is a [`SecretUrl`]: signed URLs carry
//! their signature in the query string, so the normalised event can be logged, printed
//! with `{:?}` or serialised without leaking it. Only the downloader asks for the real URL.
//!
//! Serialising a [`JobEvent`] therefore loses the signature on purpose: it is a record, not
//! a way to store the event for later. Keep the raw body (it is what the platform signed
//! nothing over anyway) and parse it again when the artifact is fetched.

mod parse;

use std::fmt;

use serde::{Serialize, Serializer};
use url::Url;

pub(crate) use parse::parse_log_lines;
pub use parse::{
    EventError, EventErrorKind, MAX_ID_CHARS, MAX_LOG_LINES, MAX_NAME_CHARS, MAX_STATUS_CHARS,
    ParsedEvent, parse_event,
};

/// A URL from a payload whose query string (signatures, tokens) and userinfo must never be
/// shown. `Debug`, `Display` and `Serialize` print the redacted form
/// (`https://host/path?<redacted>`); [`SecretUrl::expose`] gives the real URL to the one
/// caller that needs it, the downloader.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretUrl(Url);

impl SecretUrl {
    pub fn new(url: Url) -> Self {
        SecretUrl(url)
    }

    /// The real URL, query string included. Do not log it.
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// The host, for error messages and logs (never secret).
    pub fn host_str(&self) -> Option<&str> {
        self.0.host_str()
    }

    /// The redacted form: scheme, host, port and path; the query (if any) replaced by
    /// `<redacted>`; userinfo and fragment dropped.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

/// The redacted form of any URL, see [`SecretUrl::redacted`]. Public so that the downloader
/// can name redirect targets the same way.
pub fn redact(url: &Url) -> String {
    let mut shown = String::with_capacity(url.as_str().len().min(256));
    shown.push_str(url.scheme());
    shown.push_str("://");
    if let Some(host) = url.host_str() {
        shown.push_str(host);
    }
    if let Some(port) = url.port() {
        shown.push(':');
        shown.push_str(&port.to_string());
    }
    shown.push_str(url.path());
    if url.query().is_some() {
        shown.push_str("?<redacted>");
    }
    shown
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// An id and display name, as the platform sends for workspace, design system, exporter, hook.
///
/// Ids arrive as JSON strings or integers; integers are normalised to their decimal string,
/// so `"id": 5` and `"id": "5"` are the same id (routing and de-duplication compare strings).
/// A missing or `null` name is the empty string: a display name never blocks a delivery.
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
    /// The version label, e.g. `v0.1`; empty when the payload has none.
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
///
/// Matching is ASCII case-insensitive (`success` is `Success`). A status this version of
/// Courier does not know is [`JobStatus::Unknown`], kept verbatim, recorded and never
/// delivered: refusing the whole event would lose the record of a job the platform ran.
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

impl JobStatus {
    /// Parses a status string; never fails (see [`JobStatus::Unknown`]).
    pub fn from_platform(s: &str) -> JobStatus {
        const KNOWN: [(&str, JobStatus); 5] = [
            ("Success", JobStatus::Success),
            ("Failure", JobStatus::Failure),
            ("Failed", JobStatus::Failed),
            ("Timeout", JobStatus::Timeout),
            ("InProgress", JobStatus::InProgress),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, status)| status)
            .unwrap_or_else(|| JobStatus::Unknown(s.to_owned()))
    }

    /// The platform's spelling (`Success`, `InProgress`, ...), or the unknown string as sent.
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Success => "Success",
            JobStatus::Failure => "Failure",
            JobStatus::Failed => "Failed",
            JobStatus::Timeout => "Timeout",
            JobStatus::InProgress => "InProgress",
            JobStatus::Unknown(s) => s,
        }
    }

    /// Whether a job with this status is delivered (only `Success`).
    pub fn is_success(&self) -> bool {
        matches!(self, JobStatus::Success)
    }

    /// Whether the job is over without an export (`Failure`, `Failed`, `Timeout`): what
    /// Courier reports on the targets' open pull requests. `InProgress` and unknown
    /// statuses are neither this nor a success.
    pub fn ended_without_success(&self) -> bool {
        matches!(
            self,
            JobStatus::Failure | JobStatus::Failed | JobStatus::Timeout
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the job's result zip comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArtifactSource {
    /// First version: a signed URL from `job.urls[0]`, fetched without credentials.
    SignedUrl { url: SecretUrl },
    /// Newer version: `job.s3.url`. The platform PAT is attached only when the URL's
    /// origin is the configured platform API origin.
    PlatformUrl { url: SecretUrl },
    /// Newer version with no URL in the payload (missing, `null` or `""`): the job's result
    /// endpoint under the configured platform API URL, fetched with the PAT.
    ResultEndpoint,
    /// No artifact: every job that did not succeed, and a first-version success that came
    /// without any URL.
    None,
}

/// One line of the exporter's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub time: Option<String>,
    /// `info`, `warning`, `error`, ... as the platform sends it (its `type` field); empty
    /// when absent.
    pub level: String,
    pub message: String,
}

/// The job's log: inline (first version), behind a URL (newer version), or absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Logs {
    /// The first [`MAX_LOG_LINES`] lines; `omitted` counts the lines dropped after them
    /// (they are skipped while parsing, never held in memory).
    Inline {
        lines: Vec<LogLine>,
        omitted: u64,
    },
    /// Fetched with the PAT when the URL is on the platform API origin.
    Url {
        url: SecretUrl,
    },
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

impl JobEvent {
    /// Whether this event leads to a delivery: the job succeeded. (Whether it has an
    /// artifact is the downloader's question: [`ArtifactSource::None`] on a success is an
    /// error there, not a silent skip.)
    pub fn is_deliverable(&self) -> bool {
        self.job.status.is_success()
    }
}

/// Any event the platform may POST. Events other than `job:updated` are recognised
/// and ignored, not errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event_kind", rename_all = "snake_case")]
pub enum Event {
    JobUpdated(Box<JobEvent>),
    Other { event: String },
}
