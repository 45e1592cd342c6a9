//! Downloading a job's result zip: streamed to a temp file, bounded, and only from allowed hosts.
//!
//! The rules, each enforced on every request and every redirect hop:
//!
//! * **Scheme.** `https` only; `http` only for hosts listed in `insecure_hosts`.
//! * **Hosts.** The URL's host must match `download_hosts` (`*.supernova.io` matches any
//!   subdomain on a dot boundary, other entries match exactly), or the request must go to
//!   the platform API origin (scheme, host and port of `platform_api`), which is always
//!   allowed. `insecure_hosts` does not allow a host by itself; it only relaxes the two
//!   rules below for a host that is allowed.
//! * **Addresses.** A host that is an IP literal, or a name that resolves at connect time
//!   to a loopback, private, link-local, unique-local, CGNAT, multicast, unspecified or
//!   IPv4-mapped address (see [`is_forbidden_address`]), is refused unless the host is in
//!   `insecure_hosts`. The check runs in the resolver the connection uses, so a name that
//!   answers differently the second time (DNS rebinding) gains nothing. No proxy is used
//!   (not even from `HTTP_PROXY`), so the address checked is the address connected to.
//! * **The PAT** (`Authorization: Bearer`) is attached only to requests for the platform
//!   API origin, only for the newer payload version's sources (`s3.url`, the result
//!   endpoint, `logsUrl`), and never again once a redirect chain has left that origin.
//!   First-version signed URLs are fetched without credentials.
//! * **Redirects** are followed by hand (at most `max_redirects`), each hop checked as above.
//! * **Size.** The body streams to a temp file; the bytes received are counted and the
//!   download stops past `max_bytes`; a `Content-Length` above it is refused before reading.
//! * **Time.** Connect and read timeouts per attempt, a total deadline over everything.
//! * **Retries** with exponential backoff after timeouts, connection errors and 5xx answers;
//!   never after a 4xx. A retry starts again from the first URL, not the last redirect.
//! * **Secrets.** Errors and logs name hosts, or URLs redacted by [`redact`]; never the
//!   query string of a signed URL, never the PAT.
//!
//! **Result endpoint (assumption).** The platform's page shows the newer version's result
//! as `GET {api}/.../jobs/{jobId}/result` with the page's own example path elided
//! (`{{wId}}/jobs/{{jobId}}/result`). Courier assumes
//! `{api_url}/codegen/workspaces/{workspace_id}/jobs/{job_id}/result`
//! ([`DEFAULT_RESULT_PATH`]); [`DownloadPolicy::result_path_template`] changes it.
//!
//! **Expired signed URLs.** A signed URL answered with 403 (fetched without the PAT) has
//! expired; when a PAT is configured, [`Downloader::fetch`] re-resolves the artifact
//! through the job's result endpoint, which answers with the zip or a fresh signed URL.
//! This is what lets a delivery retried hours later, or replayed, still find its export.

mod guard;
mod limits;
mod verify;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{self, HeaderValue};
use reqwest::{Client, Response, StatusCode, redirect};
use secrecy::{ExposeSecret, SecretString};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};
use url::Url;

use crate::event::{ArtifactSource, JobEvent, LogLine, SecretUrl, parse_log_lines, redact};
use crate::proxy::Proxies;

pub use guard::is_forbidden_address;
pub use limits::DownloadLimits;
pub use verify::{DEFAULT_JOB_PATH, JobCheck};

/// Where the newer version's result lives under the platform API URL when the payload has
/// no URL. Placeholders: `{workspace_id}`, `{job_id}`, `{design_system_id}`.
pub const DEFAULT_RESULT_PATH: &str = "codegen/workspaces/{workspace_id}/jobs/{job_id}/result";

const PLACEHOLDERS: [&str; 3] = ["{workspace_id}", "{job_id}", "{design_system_id}"];

/// Everything a [`Downloader`] needs, as plain values (the configuration builds it).
#[derive(Debug, Clone)]
pub struct DownloadPolicy {
    /// Hosts artifacts may come from: `*.supernova.io` (any subdomain) or exact hosts.
    pub download_hosts: Vec<String>,
    /// Hosts that may be reached over plain `http` and at non-public addresses (exact
    /// hosts only, e.g. `127.0.0.1` in tests). Must also be allowed to be reached at all.
    pub insecure_hosts: Vec<String>,
    /// The platform API URL, e.g. `https://api.supernova.io/api/v2`. Its origin receives
    /// the PAT and is always an allowed host.
    pub platform_api: Url,
    /// The platform personal access token, sent only to the platform API origin.
    pub platform_token: Option<SecretString>,
    pub limits: DownloadLimits,
    /// The result endpoint relative to `platform_api`; see [`DEFAULT_RESULT_PATH`].
    pub result_path_template: String,
    /// The job's own endpoint relative to `platform_api`, read to verify an event; see
    /// [`DEFAULT_JOB_PATH`].
    pub job_path_template: String,
    /// Where temp files go; the system temp dir when `None`.
    pub temp_dir: Option<PathBuf>,
    /// Certificate authorities trusted on top of the system's (DER).
    pub extra_roots: Vec<Vec<u8>>,
    /// The proxies requests go through. The proxy then resolves the artifact's host, so
    /// the check of its addresses is the proxy's; the host rules still apply.
    pub proxy: Proxies,
}

impl DownloadPolicy {
    /// A policy with no download hosts besides the platform API, no insecure hosts, no
    /// token, default limits and the default result path.
    pub fn new(platform_api: Url) -> Self {
        DownloadPolicy {
            download_hosts: Vec::new(),
            insecure_hosts: Vec::new(),
            platform_api,
            platform_token: None,
            limits: DownloadLimits::default(),
            result_path_template: DEFAULT_RESULT_PATH.to_owned(),
            job_path_template: DEFAULT_JOB_PATH.to_owned(),
            temp_dir: None,
            extra_roots: Vec::new(),
            proxy: Proxies::direct(),
        }
    }
}

/// The longest `Retry-After` a download waits out in place; beyond it the error goes back
/// to the caller (a worker requeues the delivery for that time rather than hold on).
pub const MAX_INLINE_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

/// A policy that cannot work; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("download policy: {0}")]
pub struct PolicyError(String);

/// Why a download failed. Messages name hosts, never query strings or tokens.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The event has no artifact to fetch (a failed job, or a success without any URL).
    #[error("the event has no artifact URL")]
    NoArtifact,
    #[error("host {host} is not in platform.download_hosts")]
    HostNotAllowed { host: String },
    #[error("host {host} is at non-public address {addr}; list it in insecure hosts to allow it")]
    AddressNotAllowed { host: String, addr: IpAddr },
    #[error("plain http to {host} refused: only https, unless the host is listed as insecure")]
    InsecureScheme { host: String },
    #[error("URL scheme `{scheme}` is not supported")]
    UnsupportedScheme { scheme: String },
    #[error("the artifact is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("HTTP {status} from {host}")]
    Http { status: u16, host: String },
    /// 429: the server asked to be called again later (`Retry-After` seconds, when sent).
    #[error("{host} is rate limiting downloads (HTTP 429){}", retry_after.map(|d| format!("; retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        host: String,
        retry_after: Option<Duration>,
    },
    /// 403 on a URL fetched without the PAT: a signed URL whose signature has expired (or
    /// was revoked). Re-reading the job through the API gives a fresh one.
    #[error("HTTP 403 from {host}: the signed URL has expired or was revoked")]
    Expired { host: String },
    #[error("{host} did not answer in time")]
    Timeout { host: String },
    #[error("the download did not finish within {secs} s")]
    Deadline { secs: u64 },
    #[error("connection to {host} failed: {reason}")]
    Connection { host: String, reason: String },
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: u32 },
    #[error("bad redirect from {host}: {reason}")]
    BadRedirect { host: String, reason: String },
    #[error("cannot build a platform API URL: {reason}")]
    ApiUrl { reason: String },
    #[error("writing the artifact to a temp file: {0}")]
    Io(#[from] std::io::Error),
}

impl DownloadError {
    /// Whether trying again may help: timeouts, connection errors, 5xx answers.
    pub fn is_transient(&self) -> bool {
        match self {
            DownloadError::Timeout { .. }
            | DownloadError::Connection { .. }
            | DownloadError::RateLimited { .. } => true,
            DownloadError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// How long the server asked to wait before the next try, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DownloadError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A downloaded artifact: a temp file (deleted on drop) and what is known about it.
#[derive(Debug)]
pub struct Artifact {
    file: NamedTempFile,
    len: u64,
    content_type: Option<String>,
    attempts: u32,
}

impl Artifact {
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Bytes received and written.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `Content-Type` the server sent, for the record (nothing is decided on it).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// How many attempts it took (1 without retries).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The open temp file, positioned at its end.
    pub fn file(&self) -> &std::fs::File {
        self.file.as_file()
    }

    pub fn into_temp_file(self) -> NamedTempFile {
        self.file
    }
}

/// Whether a request chain may carry the PAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// First-version signed URLs: never.
    Never,
    /// Newer version: to the platform API origin, until the chain leaves it.
    PlatformOrigin,
}

/// The HTTP client and the rules; cheap to share (`Arc`) between workers.
pub struct Downloader {
    client: Client,
    policy: DownloadPolicy,
    rules: guard::HostRules,
}

impl fmt::Debug for Downloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downloader")
            .field("platform_api", &redact(&self.policy.platform_api))
            .field("download_hosts", &self.policy.download_hosts)
            .field("insecure_hosts", &self.policy.insecure_hosts)
            .field("has_token", &self.policy.platform_token.is_some())
            .field("limits", &self.policy.limits)
            .finish()
    }
}

impl Downloader {
    pub fn new(policy: DownloadPolicy) -> Result<Self, PolicyError> {
        let rules = guard::HostRules::new(&policy.download_hosts, &policy.insecure_hosts)
            .map_err(PolicyError)?;
        let api = &policy.platform_api;
        let api_host = guard::host_key(api)
            .ok_or_else(|| PolicyError("platform API URL has no host".into()))?;
        match api.scheme() {
            "https" => {}
            "http" if rules.is_insecure(&api_host) => {}
            "http" => {
                return Err(PolicyError(format!(
                    "platform API URL uses plain http but {api_host} is not an insecure host"
                )));
            }
            other => return Err(PolicyError(format!("platform API URL scheme `{other}`"))),
        }
        if api.query().is_some() || !api.username().is_empty() || api.password().is_some() {
            return Err(PolicyError(
                "platform API URL must not carry a query string or credentials".into(),
            ));
        }
        check_template("result_path_template", &policy.result_path_template)
            .map_err(PolicyError)?;
        check_template("job_path_template", &policy.job_path_template).map_err(PolicyError)?;
        if let Some(token) = &policy.platform_token
            && bearer(token).is_none()
        {
            return Err(PolicyError(
                "platform token is empty or has characters not allowed in an HTTP header".into(),
            ));
        }
        let limits = &policy.limits;
        if limits.max_bytes == 0 || limits.max_log_bytes == 0 {
            return Err(PolicyError(
                "limits.download.max_bytes must be positive".into(),
            ));
        }
        if limits.total_timeout_secs == 0 || limits.read_timeout_secs == 0 {
            return Err(PolicyError(
                "limits.download timeouts must be positive".into(),
            ));
        }

        // Never the environment's proxies behind the policy's back: `proxy` already holds
        // them unless the configuration names its own.
        let mut builder = crate::tls::client_builder(&policy.extra_roots);
        if let Some(proxy) = policy.proxy.for_reqwest() {
            builder = builder.proxy(proxy);
        }
        let client = builder
            .redirect(redirect::Policy::none())
            .referer(false)
            .dns_resolver(rules.resolver(&policy.proxy.proxy_hosts()))
            .connect_timeout(limits.connect_timeout())
            .read_timeout(limits.read_timeout())
            .user_agent(concat!("courier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PolicyError(format!("building the HTTP client: {e}")))?;
        Ok(Downloader {
            client,
            policy,
            rules,
        })
    }

    pub fn policy(&self) -> &DownloadPolicy {
        &self.policy
    }

    /// Downloads the event's artifact into a temp file. See the module docs for the rules.
    #[tracing::instrument(skip_all, fields(workspace = %event.workspace.id, job = %event.job.id))]
    pub async fn fetch(
        &self,
        source: &ArtifactSource,
        event: &JobEvent,
    ) -> Result<Artifact, DownloadError> {
        let (start, auth, signed) = match source {
            ArtifactSource::SignedUrl { url } => (url.expose().clone(), Auth::Never, true),
            ArtifactSource::PlatformUrl { url } => {
                (url.expose().clone(), Auth::PlatformOrigin, true)
            }
            ArtifactSource::ResultEndpoint => {
                (self.result_url(event)?, Auth::PlatformOrigin, false)
            }
            ArtifactSource::None => return Err(DownloadError::NoArtifact),
        };
        let limit = self.policy.limits.max_bytes;
        let fetched = self
            .bounded(|| {
                let start = &start;
                async move {
                    let response = self.get(start, auth, signed, limit).await?;
                    self.stream_to_file(response, limit).await
                }
            })
            .await;
        let (mut artifact, attempts) = match fetched {
            Err(DownloadError::Expired { host })
                if self.policy.platform_token.is_some()
                    && !matches!(source, ArtifactSource::ResultEndpoint) =>
            {
                info!(%host, "the signed artifact URL has expired; re-resolving it through the platform API");
                let fresh = self.result_url(event)?;
                self.bounded(|| {
                    let fresh = &fresh;
                    async move {
                        let response = self.get(fresh, Auth::PlatformOrigin, false, limit).await?;
                        self.stream_to_file(response, limit).await
                    }
                })
                .await?
            }
            other => other?,
        };
        artifact.attempts = attempts;
        info!(
            bytes = artifact.len,
            attempts,
            from = %redact(&start),
            "artifact downloaded"
        );
        Ok(artifact)
    }

    /// Fetches a job log (`job.logsUrl`) under the same rules, capped at `max_log_bytes`.
    /// A JSON log (an array of lines like `job.logs[]`, or `{"logs": [...]}`) gives its
    /// lines; anything else is read as text, one [`LogLine`] per line, with no time or level.
    #[tracing::instrument(skip_all)]
    pub async fn fetch_logs(&self, url: &SecretUrl) -> Result<Vec<LogLine>, DownloadError> {
        let limit = self.policy.limits.max_log_bytes;
        let (body, _) = self
            .bounded(|| async move {
                let response = self
                    .get(url.expose(), Auth::PlatformOrigin, true, limit)
                    .await?;
                read_capped(response, limit).await
            })
            .await?;
        if let Some((lines, omitted)) = parse_log_lines(&body) {
            if omitted > 0 {
                debug!(omitted, "log lines beyond the cap dropped");
            }
            return Ok(lines);
        }
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .map(|line| LogLine {
                time: None,
                level: String::new(),
                message: line.to_owned(),
            })
            .collect())
    }

    /// The result endpoint of the event's job under the platform API URL. Ids are
    /// percent-encoded path segments, so an id cannot add or climb path segments.
    pub fn result_url(&self, event: &JobEvent) -> Result<Url, DownloadError> {
        self.platform_url(&self.policy.result_path_template, event)
    }

    /// `template` under the platform API URL, with the event's ids as path segments.
    fn platform_url(&self, template: &str, event: &JobEvent) -> Result<Url, DownloadError> {
        let bad = |reason: String| DownloadError::ApiUrl { reason };
        let mut url = self.policy.platform_api.clone();
        let template = template.trim_matches('/');
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| bad("the platform API URL cannot have a path".into()))?;
            segments.pop_if_empty();
            for part in template.split('/') {
                let value = match part {
                    "{workspace_id}" => event.workspace.id.as_str(),
                    "{job_id}" => event.job.id.as_str(),
                    "{design_system_id}" => event.design_system.id.as_str(),
                    literal => literal,
                };
                if value.is_empty() || value == "." || value == ".." {
                    return Err(bad(format!("path segment `{value}` from `{part}`")));
                }
                segments.push(value);
            }
        }
        Ok(url)
    }

    /// Runs `attempt` with retries and backoff, all under the total deadline. Returns the
    /// value and the number of attempts made.
    ///
    /// `attempt` returns an owning future (`move` of the references it needs) rather than
    /// being an async closure: an async closure's future borrows the closure for a
    /// higher-ranked lifetime, and rustc then cannot prove the download `Send`, which the
    /// workers' tasks need.
    async fn bounded<T, F, Fut>(&self, mut attempt: F) -> Result<(T, u32), DownloadError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DownloadError>>,
    {
        let limits = &self.policy.limits;
        let retrying = async {
            let mut made = 0;
            loop {
                made += 1;
                match attempt().await {
                    Ok(value) => return Ok((value, made)),
                    // A rate limit is waited out here only while the wait is short: a
                    // longer one goes back to the caller, who can requeue for it.
                    Err(e)
                        if e.retry_after()
                            .is_some_and(|w| w > MAX_INLINE_RATE_LIMIT_WAIT) =>
                    {
                        return Err(e);
                    }
                    Err(e) if e.is_transient() && made <= limits.retries => {
                        let wait = e.retry_after().unwrap_or_else(|| limits.backoff(made));
                        warn!(error = %e, attempt = made, wait_ms = wait.as_millis() as u64, "download attempt failed, retrying");
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(limits.total_timeout(), retrying)
            .await
            .unwrap_or(Err(DownloadError::Deadline {
                secs: limits.total_timeout_secs,
            }))
    }

    /// Checks one hop's URL against the rules; returns its host key.
    fn check_target(&self, url: &Url) -> Result<String, DownloadError> {
        let host = guard::host_key(url).ok_or_else(|| DownloadError::UnsupportedScheme {
            scheme: url.scheme().to_owned(),
        })?;
        let insecure = self.rules.is_insecure(&host);
        match url.scheme() {
            "https" => {}
            "http" if insecure => {}
            "http" => return Err(DownloadError::InsecureScheme { host }),
            other => {
                return Err(DownloadError::UnsupportedScheme {
                    scheme: other.to_owned(),
                });
            }
        }
        if !self.rules.host_allowed(&host) && url.origin() != self.policy.platform_api.origin() {
            return Err(DownloadError::HostNotAllowed { host });
        }
        if let Some(addr) = guard::literal_ip(url)
            && !insecure
            && is_forbidden_address(addr)
        {
            return Err(DownloadError::AddressNotAllowed { host, addr });
        }
        Ok(host)
    }

    /// One GET, following redirects by hand, up to a 2xx answer.
    async fn get(
        &self,
        start: &Url,
        auth: Auth,
        signed: bool,
        limit: u64,
    ) -> Result<Response, DownloadError> {
        let platform = self.policy.platform_api.origin();
        let mut url = start.clone();
        let mut token_allowed = auth == Auth::PlatformOrigin;
        let mut hops = 0u32;
        loop {
            let host = self.check_target(&url)?;
            token_allowed &= url.origin() == platform;
            let mut request = self.client.get(url.clone());
            let mut sent_token = false;
            if token_allowed && let Some(token) = &self.policy.platform_token {
                let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| DownloadError::Connection {
                        host: host.clone(),
                        reason: "the platform token is not a valid header value".into(),
                    })?;
                value.set_sensitive(true);
                request = request.header(header::AUTHORIZATION, value);
                sent_token = true;
            }
            debug!(url = %redact(&url), with_token = sent_token, "GET");
            let response = request
                .send()
                .await
                .map_err(|e| transport_error(e, &host))?;
            let status = response.status();
            if status.is_success() {
                if let Some(length) = response.content_length()
                    && length > limit
                {
                    return Err(DownloadError::TooLarge { limit });
                }
                return Ok(response);
            }
            if is_redirect(status) {
                hops += 1;
                if hops > self.policy.limits.max_redirects {
                    return Err(DownloadError::TooManyRedirects {
                        limit: self.policy.limits.max_redirects,
                    });
                }
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .ok_or_else(|| DownloadError::BadRedirect {
                        host: host.clone(),
                        reason: format!("{status} without a Location header"),
                    })?
                    .to_str()
                    .map_err(|_| DownloadError::BadRedirect {
                        host: host.clone(),
                        reason: "Location is not ASCII".into(),
                    })?;
                let next = url.join(location).map_err(|e| DownloadError::BadRedirect {
                    host: host.clone(),
                    reason: format!("Location is not a URL: {e}"),
                })?;
                debug!(from = %redact(&url), to = %redact(&next), "redirect");
                url = next;
                continue;
            }
            if status == StatusCode::FORBIDDEN && signed && !sent_token {
                return Err(DownloadError::Expired { host });
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Err(DownloadError::RateLimited { host, retry_after });
            }
            return Err(DownloadError::Http {
                status: status.as_u16(),
                host,
            });
        }
    }

    async fn stream_to_file(
        &self,
        mut response: Response,
        limit: u64,
    ) -> Result<Artifact, DownloadError> {
        let host = host_of(response.url());
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut builder = tempfile::Builder::new();
        builder.prefix("courier-artifact-").suffix(".zip");
        let file = match &self.policy.temp_dir {
            Some(dir) => builder.tempfile_in(dir)?,
            None => builder.tempfile()?,
        };
        let mut writer = tokio::io::BufWriter::with_capacity(
            256 << 10,
            tokio::fs::File::from_std(file.as_file().try_clone()?),
        );
        let mut len = 0u64;
        while let Some(chunk) = next_chunk(&mut response, &host).await? {
            len += chunk.len() as u64;
            if len > limit {
                return Err(DownloadError::TooLarge { limit });
            }
            writer.write_all(&chunk).await?;
        }
        writer.flush().await?;
        writer.into_inner().sync_data().await?;
        Ok(Artifact {
            file,
            len,
            content_type,
            attempts: 1,
        })
    }
}

fn check_template(name: &str, template: &str) -> Result<(), String> {
    let trimmed = template.trim_matches('/');
    if trimmed.is_empty() {
        return Err(format!("{name} is empty"));
    }
    for part in trimmed.split('/') {
        if PLACEHOLDERS.contains(&part) {
            continue;
        }
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("{name}: bad segment `{part}`"));
        }
        if part.contains(['{', '}', '?', '#', '%']) {
            return Err(format!(
                "{name}: `{part}` is neither a literal segment nor one of {}",
                PLACEHOLDERS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The `Authorization` value for the PAT, marked sensitive (kept out of hyper's debug
/// output and HTTP/2 header compression tables). `None` for a token no header can carry.
fn bearer(token: &SecretString) -> Option<HeaderValue> {
    let token = token.expose_secret().trim();
    if token.is_empty() {
        return None;
    }
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or("?").to_owned()
}

/// The whole body in memory, refused past `limit` bytes (for small answers: logs, JSON).
async fn read_capped(mut response: Response, limit: u64) -> Result<Vec<u8>, DownloadError> {
    let host = host_of(response.url());
    let mut body = Vec::new();
    while let Some(chunk) = next_chunk(&mut response, &host).await? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(DownloadError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn next_chunk(
    response: &mut Response,
    host: &str,
) -> Result<Option<bytes::Bytes>, DownloadError> {
    response.chunk().await.map_err(|e| transport_error(e, host))
}

/// A reqwest error as ours: the resolver's refusal comes back typed, the URL (and with it
/// any signature) is stripped before the error text is kept.
fn transport_error(e: reqwest::Error, host: &str) -> DownloadError {
    let e = e.without_url();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<guard::AddressRefused>() {
            return DownloadError::AddressNotAllowed {
                host: refused.host.clone(),
                addr: refused.addr,
            };
        }
        source = err.source();
    }
    if e.is_timeout() {
        return DownloadError::Timeout {
            host: host.to_owned(),
        };
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(err) = source {
        reason.push_str(": ");
        reason.push_str(&err.to_string());
        source = err.source();
    }
    DownloadError::Connection {
        host: host.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked() {
        assert!(check_template("t", DEFAULT_RESULT_PATH).is_ok());
        assert!(check_template("t", DEFAULT_JOB_PATH).is_ok());
        assert!(check_template("t", "/jobs/{job_id}/").is_ok());
        for bad in [
            "",
            "/",
            "a/../b",
            "jobs/{jobid}",
            "jobs/{job_id}?x=1",
            "a//b",
        ] {
            assert!(check_template("t", bad).is_err(), "{bad:?} accepted");
        }
    }
}
