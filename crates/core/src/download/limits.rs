//! Bounds on one artifact download. Each default is documented on its field.

use serde::Deserialize;

/// Limits applied to every artifact download (config key `limits.download`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadLimits {
    /// Most bytes received for one artifact, counted on the wire. Default: 512 MiB.
    pub max_bytes: u64,
    /// Seconds to establish a connection. Default: 10.
    pub connect_timeout_secs: u64,
    /// Seconds without any byte received before giving up. Default: 30.
    pub read_timeout_secs: u64,
    /// Seconds for the whole download, retries included. Default: 300.
    pub total_timeout_secs: u64,
    /// Retries after a timeout or a 5xx answer. Default: 3.
    pub retries: u32,
    /// Redirects followed (each to an allowed host only). Default: 5.
    pub max_redirects: u32,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            max_bytes: 512 << 20,
            connect_timeout_secs: 10,
            read_timeout_secs: 30,
            total_timeout_secs: 300,
            retries: 3,
            max_redirects: 5,
        }
    }
}
