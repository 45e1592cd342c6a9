//! Errors a caller branches on: retry, look up instead of create, or stop and tell a person.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The token was refused (401). Permanent until someone changes the token.
    #[error("{provider}: authentication failed: {message}")]
    Auth {
        provider: &'static str,
        message: String,
    },
    /// The token is valid but lacks a permission (403 that is not a rate limit). The
    /// message says which scope or permission is missing when the forge tells us.
    #[error("{provider}: permission denied: {message}")]
    Forbidden {
        provider: &'static str,
        message: String,
    },
    /// The repository, pull request or branch does not exist, or the token cannot see it.
    #[error("{provider}: not found: {what}")]
    NotFound {
        provider: &'static str,
        what: String,
    },
    /// The object already exists (a pull request for this head) or changed under us.
    #[error("{provider}: conflict: {message}")]
    Conflict {
        provider: &'static str,
        message: String,
    },
    /// Too many requests; `retry_after` is how long the forge asked us to wait.
    #[error("{provider}: rate limited; retry after {}s", retry_after.as_secs())]
    RateLimited {
        provider: &'static str,
        retry_after: Duration,
    },
    /// A timeout, a connection failure or a 5xx: worth retrying.
    #[error("{provider}: temporary failure: {message}")]
    Transient {
        provider: &'static str,
        message: String,
    },
    /// The forge refused the request as invalid (422/400): retrying the same request fails
    /// the same way.
    #[error("{provider}: request refused: {message}")]
    Invalid {
        provider: &'static str,
        message: String,
    },
}

impl ProviderError {
    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Transient { .. } | ProviderError::RateLimited { .. }
        )
    }

    /// A stable word for the failure, for `--json` consumers and the store.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Auth { .. } => "provider_auth",
            ProviderError::Forbidden { .. } => "provider_forbidden",
            ProviderError::NotFound { .. } => "provider_not_found",
            ProviderError::Conflict { .. } => "provider_conflict",
            ProviderError::RateLimited { .. } => "provider_rate_limited",
            ProviderError::Transient { .. } => "provider_transient",
            ProviderError::Invalid { .. } => "provider_invalid",
        }
    }

    /// How long to wait before retrying, when the forge said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}
