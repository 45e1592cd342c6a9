//! What can go wrong while delivering, typed where the caller branches on it.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// A failed git operation. Messages name the repository by its clean URL (never with
/// credentials) and say what a person can do about it. No message ever contains a
/// token: errors coming from libgit2 are scrubbed before they are wrapped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The remote URL or branch name cannot be used.
    #[error("invalid remote: {reason}")]
    InvalidRemote { reason: String },

    /// The server refused the credentials (or asked for some and none were configured).
    #[error(
        "authentication to {url} failed ({detail}); check that the token is valid, not expired, and may read and push to this repository"
    )]
    Auth { url: String, detail: String },

    /// The repository or the base branch does not exist (or the token cannot see it).
    #[error("{what} not found at {url}")]
    NotFound { url: String, what: String },

    /// The server refused to update the head branch (protected branch, pre-receive hook,
    /// non-fast-forward rule). `message` is what the server said, hook output included.
    #[error("the server rejected the update of {reference}: {message}")]
    Rejected { reference: String, message: String },

    /// The head branch changed on the remote between the plan and the push, so pushing
    /// would overwrite a commit nobody has looked at. Running the delivery again re-plans.
    #[error(
        "branch {branch} changed on the remote while this delivery was running (planned on {expected}, now {found}); nothing was pushed, run the delivery again"
    )]
    HeadMoved {
        branch: String,
        expected: String,
        found: String,
    },

    /// The repository's `.gitattributes` stores this path with Git LFS, which libgit2
    /// cannot write (it would commit the raw bytes where LFS pointers are expected).
    #[error(
        "{path} is stored with Git LFS (filter=lfs in .gitattributes) and Courier cannot write LFS pointers; deliver to a path not covered by the LFS patterns, or remove the pattern"
    )]
    Lfs { path: String },

    /// The export would add, change or delete CI configuration or submodule settings.
    #[error(
        "the export would change the protected path {path} (CI configuration or submodules); set allow_protected_paths on the target if this is intended"
    )]
    ProtectedPath { path: String },

    /// The export holds no file, which would delete everything at the target path.
    #[error(
        "the export holds no file, and delivering it would empty {path}; set allow_empty_export on the target if this is intended"
    )]
    EmptyExport { path: String },

    /// Reading an export entry failed.
    #[error("reading export entry {path}: {source}")]
    Export {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The operation did not finish in time; it has been told to stop.
    #[error("{operation} did not finish within {after:?}")]
    Timeout {
        operation: &'static str,
        after: Duration,
    },

    /// The local repository cache is damaged and rebuilding it did not help.
    #[error("the repository cache at {} is damaged: {detail}", path.display())]
    CacheCorrupt { path: PathBuf, detail: String },

    /// A network or server fault that may go away when retried.
    #[error("network error talking to {url}: {detail}")]
    Transient { url: String, detail: String },

    /// Anything else libgit2 or the file system reported.
    #[error("{detail}")]
    Other { detail: String },
}

impl GitError {
    /// Whether trying the same delivery again later can succeed without anyone
    /// changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GitError::Transient { .. } | GitError::Timeout { .. } | GitError::HeadMoved { .. }
        )
    }

    /// A stable word for the failure, for `--json` consumers and the store.
    pub fn kind(&self) -> &'static str {
        match self {
            GitError::InvalidRemote { .. } => "invalid_remote",
            GitError::Auth { .. } => "auth",
            GitError::NotFound { .. } => "not_found",
            GitError::Rejected { .. } => "rejected",
            GitError::HeadMoved { .. } => "head_moved",
            GitError::Lfs { .. } => "lfs",
            GitError::ProtectedPath { .. } => "protected_path",
            GitError::EmptyExport { .. } => "empty_export",
            GitError::Export { .. } => "export",
            GitError::Timeout { .. } => "timeout",
            GitError::CacheCorrupt { .. } => "cache_corrupt",
            GitError::Transient { .. } => "transient",
            GitError::Other { .. } => "git",
        }
    }

    pub(crate) fn other(context: &str, err: impl std::fmt::Display) -> GitError {
        GitError::Other {
            detail: format!("{context}: {err}"),
        }
    }
}

/// `message` with every occurrence of the token replaced. libgit2 never sees the token
/// in a URL, but a server may echo what it was sent, so nothing is trusted.
pub(crate) fn scrub(message: &str, token: Option<&SecretString>) -> String {
    let mut out = message.to_owned();
    if let Some(token) = token {
        let secret = token.expose_secret();
        if !secret.is_empty() {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

/// Server text (sideband, ref status) made safe to show: valid UTF-8, no control
/// characters but newlines, bounded.
pub(crate) fn printable(bytes: &[u8], token: Option<&SecretString>) -> String {
    const MAX: usize = 4096;
    let text = String::from_utf8_lossy(bytes);
    let mut cleaned: String = text
        .replace('\r', "\n")
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    cleaned = cleaned
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    if cleaned.len() > MAX {
        let mut cut = MAX;
        while !cleaned.is_char_boundary(cut) {
            cut -= 1;
        }
        cleaned.truncate(cut);
        cleaned.push_str(" [...]");
    }
    scrub(&cleaned, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_token_everywhere() {
        let token = SecretString::from("tok-123");
        assert_eq!(
            scrub("bad tok-123 and again tok-123", Some(&token)),
            "bad [redacted] and again [redacted]"
        );
        assert_eq!(scrub("nothing", None), "nothing");
    }

    #[test]
    fn printable_drops_control_characters_and_bounds_length() {
        let out = printable(b"remote: no\x1b[31m!\r\nremote: way\n\n", None);
        assert_eq!(out, "remote: no[31m!\nremote: way");
        let long = vec![b'a'; 10_000];
        assert!(printable(&long, None).len() < 4200);
    }
}
