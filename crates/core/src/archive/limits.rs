//! The limits a result archive must stay within. Each default is documented on its field.

use serde::Deserialize;

/// Limits applied to every downloaded archive (config key `limits.archive`).
///
/// Sizes are checked twice: against what the archive declares (so an honest but
/// oversized archive is refused before any inflating) and against the bytes actually
/// produced while inflating (so a lying archive is refused as soon as it overshoots).
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
    /// Entries that inflate to at most this many bytes are exempt from the ratio check:
    /// a small file of repeated bytes legitimately compresses 1000:1 and cannot hurt.
    /// Default: 1 MiB.
    pub ratio_exempt_bytes: u64,
    /// Longest entry name, in bytes of UTF-8. Default: 1,024.
    pub max_path_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 50_000,
            max_total_bytes: 1 << 30,
            max_entry_bytes: 256 << 20,
            max_compression_ratio: 250,
            ratio_exempt_bytes: 1 << 20,
            max_path_bytes: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_keys_keep_their_defaults() {
        let limits: ArchiveLimits =
            serde_json::from_str(r#"{"max_entries": 10, "max_path_bytes": 200}"#).unwrap();
        assert_eq!(
            limits,
            ArchiveLimits {
                max_entries: 10,
                max_path_bytes: 200,
                ..ArchiveLimits::default()
            }
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<ArchiveLimits>(r#"{"max_entrys": 10}"#).unwrap_err();
        assert!(err.to_string().contains("max_entrys"), "{err}");
    }
}
