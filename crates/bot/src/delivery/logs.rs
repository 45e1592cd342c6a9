//! The job's log, as far as a delivery uses it: its last lines for a failure comment, and
//! its warnings and errors for the pull request description.

use courier_core::download::DownloadError;
use courier_core::event::{JobEvent, LogLine, Logs};

use super::Deliverer;

/// Most log warnings and errors quoted in a pull request description.
const MAX_NOTES: usize = 20;

impl Deliverer {
    /// The last lines of the job's log: inline (first version) or fetched from `logsUrl`
    /// under the download rules. A log that cannot be fetched is reported, not fatal.
    pub(super) async fn log_tail(&self, job: &JobEvent, lines: usize) -> Vec<String> {
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
    pub(super) async fn log_notes(&self, job: &JobEvent) -> Vec<String> {
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
}
