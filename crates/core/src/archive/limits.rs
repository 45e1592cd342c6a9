//! The limits a result archive must stay within. Each default is documented on its field.

use serde::Deserialize;

/// Limits applied to every downloaded archive (config key `limits.archive`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveLimits {
    /// Most entries (files and directories) an archive may hold. Default: 50,000.
    pub max_entries: u64,
    /// Most uncompressed bytes over all entries, counted while inflating. Default: 1 GiB.
    pub max_total_bytes: u64,
    /// Most uncompressed bytes of one entry, counted while inflating. Default: 256 MiB.
    pub max_entry_bytes: u64,
    /// Highest uncompressed/compressed ratio of one entry. Default: 250.
    pub max_compression_ratio: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 50_000,
            max_total_bytes: 1 << 30,
            max_entry_bytes: 256 << 20,
            max_compression_ratio: 250,
        }
    }
}
