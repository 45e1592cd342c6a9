//! Bounds on one artifact download. Each default is documented on its field.

use std::time::Duration;

use serde::Deserialize;

/// Limits applied to every artifact download (config key `limits.download`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadLimits {
    /// Most bytes received for one artifact, counted on the bytes actually received (a
    /// `Content-Length` above it is refused before reading). Default: 512 MiB.
    pub max_bytes: u64,
    /// Most bytes received for one job log (`job.logsUrl`). Default: 16 MiB.
    pub max_log_bytes: u64,
    /// Seconds to establish a connection (TCP and TLS). Default: 10.
    pub connect_timeout_secs: u64,
    /// Seconds without any byte received (waiting for the answer's headers, or between two
    /// reads of its body) before the attempt fails. Default: 30.
    pub read_timeout_secs: u64,
    /// Seconds for the whole download, redirects, retries and backoff included. Default: 300.
    pub total_timeout_secs: u64,
    /// Retries after a timeout, a connection error or a 5xx answer (never after a 4xx).
    /// Default: 3.
    pub retries: u32,
    /// Milliseconds before the first retry; doubled for each further one. Default: 500.
    pub retry_backoff_ms: u64,
    /// Longest wait between two attempts, in milliseconds. Default: 8,000.
    pub retry_backoff_max_ms: u64,
    /// Redirects followed (each to an allowed host only, each hop checked again). Default: 5.
    pub max_redirects: u32,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            max_bytes: 512 << 20,
            max_log_bytes: 16 << 20,
            connect_timeout_secs: 10,
            read_timeout_secs: 30,
            total_timeout_secs: 300,
            retries: 3,
            retry_backoff_ms: 500,
            retry_backoff_max_ms: 8_000,
            max_redirects: 5,
        }
    }
}

impl DownloadLimits {
    /// The wait before retry number `retry` (1-based): exponential, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u64 << retry.saturating_sub(1).min(20);
        Duration::from_millis(
            self.retry_backoff_ms
                .saturating_mul(factor)
                .min(self.retry_backoff_max_ms),
        )
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    pub(crate) fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_secs)
    }

    pub(crate) fn total_timeout(&self) -> Duration {
        Duration::from_secs(self.total_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let limits = DownloadLimits::default();
        let waits: Vec<u64> = (1..=6)
            .map(|r| limits.backoff(r).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1_000, 2_000, 4_000, 8_000, 8_000]);
        assert_eq!(limits.backoff(u32::MAX), Duration::from_millis(8_000));
    }

    #[test]
    fn unknown_keys_are_refused_and_missing_keys_default() {
        let parsed: DownloadLimits = serde_json::from_str(r#"{"retries": 1}"#).unwrap();
        assert_eq!(parsed.retries, 1);
        assert_eq!(parsed.max_bytes, 512 << 20);
        assert!(serde_json::from_str::<DownloadLimits>(r#"{"retry": 1}"#).is_err());
    }
}
