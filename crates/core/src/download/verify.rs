//! Verifying an event against the platform: the platform signs nothing, so a holder of the
//! webhook token could describe any job. With `webhook.verify_with_platform`, the job is
//! read back through the platform API with the PAT before anything is delivered, and the
//! event is believed only if the platform knows the job and gives it the same status.
//!
//! **Endpoint and shape (assumption).** The platform's pages document the result endpoint
//! only. Courier reads `{api_url}/codegen/workspaces/{workspace_id}/jobs/{job_id}`
//! ([`DEFAULT_JOB_PATH`]; [`DownloadPolicy::job_path_template`](super::DownloadPolicy)
//! changes it) and takes the job's status from `status`, `job.status`, `result.status` or
//! `result.job.status` of the JSON answer, whichever is present first. 404 means the job
//! does not exist.

use reqwest::StatusCode;
use serde_json::Value;
use tracing::info;

use super::{Auth, DownloadError, Downloader, JobEvent, host_of, read_capped};
use crate::event::JobStatus;

/// Where the job lives under the platform API URL. Placeholders as for the result path.
pub const DEFAULT_JOB_PATH: &str = "codegen/workspaces/{workspace_id}/jobs/{job_id}";

/// What the platform says about the event's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCheck {
    /// The platform knows the job, with the event's status.
    Confirmed,
    /// The platform answered 404: no such job in that workspace.
    Unknown,
    /// The platform knows the job with another status.
    StatusDiffers { platform: String, event: String },
}

impl JobCheck {
    /// Why delivery is refused, for the record; `None` when confirmed.
    pub fn refusal(&self) -> Option<String> {
        match self {
            JobCheck::Confirmed => None,
            JobCheck::Unknown => {
                Some("the platform API does not know this job; it is not delivered".to_owned())
            }
            JobCheck::StatusDiffers { platform, event } => Some(format!(
                "the platform API gives the job status `{platform}`, the event said `{event}`; it is not delivered"
            )),
        }
    }
}

impl Downloader {
    /// Reads the event's job from the platform API with the PAT, under the same host,
    /// redirect, size and time rules as downloads, and compares its status. Transient
    /// failures (timeouts, 5xx) are retried and then returned as errors, so the caller can
    /// try again later rather than refuse a genuine job.
    #[tracing::instrument(skip_all, fields(workspace = %event.workspace.id, job = %event.job.id))]
    pub async fn verify_job(&self, event: &JobEvent) -> Result<JobCheck, DownloadError> {
        if self.policy.platform_token.is_none() {
            // Unauthenticated, the API would answer 401 for every job: refusing them all
            // would look like an attack. The configuration refuses this combination.
            return Err(DownloadError::ApiUrl {
                reason: "verifying a job needs the platform PAT (platform.token)".to_owned(),
            });
        }
        let url = self.platform_url(&self.policy.job_path_template, event)?;
        let limit = self.policy.limits.max_log_bytes;
        let (body, _) = self
            .bounded(|| {
                let url = &url;
                async move {
                    let response = match self.get(url, Auth::PlatformOrigin, false, limit).await {
                        Ok(response) => response,
                        Err(DownloadError::Http { status: 404, .. }) => return Ok(None),
                        Err(e) => return Err(e),
                    };
                    let host = host_of(response.url());
                    Ok(Some((read_capped(response, limit).await?, host)))
                }
            })
            .await?;
        let Some((body, host)) = body else {
            info!("the platform does not know the job");
            return Ok(JobCheck::Unknown);
        };
        let status = job_status(&body).ok_or_else(|| DownloadError::Http {
            // The answer is 2xx but says nothing we can compare: as unusable as a 502.
            status: StatusCode::BAD_GATEWAY.as_u16(),
            host: format!("{host} (the job's JSON has no status field)"),
        })?;
        let platform = JobStatus::from_platform(&status);
        if platform == event.job.status {
            Ok(JobCheck::Confirmed)
        } else {
            info!(platform = %platform, event = %event.job.status, "the platform gives the job another status");
            Ok(JobCheck::StatusDiffers {
                platform: platform.as_str().to_owned(),
                event: event.job.status.as_str().to_owned(),
            })
        }
    }
}

/// The status string of a job answer, wherever the known shapes put it.
fn job_status(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    [
        "/status",
        "/job/status",
        "/result/status",
        "/result/job/status",
    ]
    .into_iter()
    .find_map(|pointer| value.pointer(pointer)?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_found_in_each_known_shape() {
        for body in [
            r#"{"status":"Success"}"#,
            r#"{"job":{"id":"1","status":"Success"}}"#,
            r#"{"result":{"status":"Success"}}"#,
            r#"{"result":{"job":{"status":"Success"}}}"#,
        ] {
            assert_eq!(
                job_status(body.as_bytes()).as_deref(),
                Some("Success"),
                "{body}"
            );
        }
        assert_eq!(job_status(br#"{"job":{"state":"done"}}"#), None);
        assert_eq!(job_status(br#"{"status":3}"#), None);
        assert_eq!(job_status(b"<html>"), None);
    }
}
