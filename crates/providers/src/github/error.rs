//! GitHub's HTTP answers mapped to [`ProviderError`]. Kept apart from the transport so the
//! rules (which 403 is a rate limit, which 422 means "look it up") read in one place.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::forge::http::{Forge, ResponseHeaders};
use crate::forge::rate_limit::{retry_after, until_reset};
use crate::provider::ProviderError;

pub(crate) const PROVIDER: &str = "github";

/// GitHub, for the answers [`super::client::Api`] reads.
pub(crate) static FORGE: Forge = Forge {
    provider: PROVIDER,
    name: "GitHub",
    map_status,
};

/// GitHub asks integrators to wait at least a minute after a secondary rate limit when it
/// sends no `retry-after`.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorDetail>,
    #[serde(default)]
    documentation_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    resource: Option<String>,
}

impl ErrorBody {
    /// The top message and every detail, as one line a person can read.
    fn describe(&self) -> String {
        let mut text = if self.message.is_empty() {
            "no message".to_owned()
        } else {
            self.message.clone()
        };
        let details: Vec<String> = self
            .errors
            .iter()
            .map(|e| match (&e.message, &e.resource, &e.field, &e.code) {
                (Some(message), _, _, _) => message.clone(),
                (None, resource, field, code) => format!(
                    "{} {} {}",
                    resource.as_deref().unwrap_or(""),
                    field.as_deref().unwrap_or(""),
                    code.as_deref().unwrap_or("")
                )
                .trim()
                .to_owned(),
            })
            .filter(|d| !d.is_empty())
            .collect();
        if !details.is_empty() {
            text.push_str(": ");
            text.push_str(&details.join("; "));
        }
        text
    }

    fn mentions(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_lowercase();
        self.message.to_ascii_lowercase().contains(&needle)
            || self.errors.iter().any(|e| {
                e.message
                    .as_deref()
                    .is_some_and(|m| m.to_ascii_lowercase().contains(&needle))
            })
    }
}

/// A rate limit, if this answer is one: `retry-after` first, then the primary limit's
/// `x-ratelimit-remaining: 0` + `x-ratelimit-reset`, then the secondary limit's message.
fn rate_limit(
    status: StatusCode,
    headers: &HeaderMap,
    body: &ErrorBody,
    now: SystemTime,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(secs) = retry_after(headers) {
        return Some(Duration::from_secs(secs.max(1)));
    }
    if headers.text("x-ratelimit-remaining") == Some("0") {
        let wait = until_reset(headers, "x-ratelimit-reset", now)
            .unwrap_or(SECONDARY_LIMIT_WAIT.as_secs());
        // The reset is a whole second; one more avoids arriving a hair early.
        return Some(Duration::from_secs(wait + 1));
    }
    if body.mentions("secondary rate limit") || status == StatusCode::TOO_MANY_REQUESTS {
        return Some(SECONDARY_LIMIT_WAIT);
    }
    None
}

/// Maps a non-success answer. `what` names the object for `NotFound` ("pull request #4
/// in acme/web").
pub(crate) fn map_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    what: &str,
    now: SystemTime,
) -> ProviderError {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_else(|_| ErrorBody {
        message: body.chars().take(200).collect(),
        ..ErrorBody::default()
    });
    if let Some(retry_after) = rate_limit(status, headers, &parsed, now) {
        return ProviderError::RateLimited {
            provider: PROVIDER,
            retry_after,
        };
    }
    let described = parsed.describe();
    match status {
        StatusCode::UNAUTHORIZED => ProviderError::Auth {
            provider: PROVIDER,
            message: format!(
                "{what}: {described} (401); check the token, or the GitHub App's id and \
                 private key"
            ),
        },
        StatusCode::FORBIDDEN => {
            let mut message = format!("{what}: {described}");
            if let Some(needed) = headers.text("x-accepted-github-permissions") {
                message.push_str(&format!(
                    "; this call needs the GitHub App / fine-grained token permission(s) \
                     `{needed}`"
                ));
            }
            if let Some(scopes) = headers
                .text("x-accepted-oauth-scopes")
                .filter(|s| !s.is_empty())
            {
                let held = headers.text("x-oauth-scopes").unwrap_or("none");
                message.push_str(&format!(
                    "; a classic token needs one of the scopes `{scopes}` (it has `{held}`)"
                ));
            }
            if let Some(url) = &parsed.documentation_url {
                message.push_str(&format!(" (see {url})"));
            }
            ProviderError::Forbidden {
                provider: PROVIDER,
                message,
            }
        }
        StatusCode::NOT_FOUND => ProviderError::NotFound {
            provider: PROVIDER,
            what: format!(
                "{what} (GitHub answers 404 also when the token cannot see the repository)"
            ),
        },
        StatusCode::CONFLICT => ProviderError::Conflict {
            provider: PROVIDER,
            message: format!("{what}: {described}"),
        },
        StatusCode::UNPROCESSABLE_ENTITY if parsed.mentions("a pull request already exists") => {
            ProviderError::Conflict {
                provider: PROVIDER,
                message: format!("{what}: {described}"),
            }
        }
        s if s.is_server_error() => ProviderError::Transient {
            provider: PROVIDER,
            message: format!("{what}: GitHub answered {s}: {described}"),
        },
        s => ProviderError::Invalid {
            provider: PROVIDER,
            message: format!("{what}: GitHub answered {s}: {described}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::testing::{at, headers};

    #[test]
    fn primary_rate_limit_waits_until_the_reset() {
        let error = map_status(
            StatusCode::FORBIDDEN,
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1000120"),
            ]),
            r#"{"message":"API rate limit exceeded"}"#,
            "list",
            at(1_000_000),
        );
        assert_eq!(error.retry_after(), Some(Duration::from_secs(121)));
    }

    #[test]
    fn secondary_rate_limit_without_header_waits_a_minute() {
        let error = map_status(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            r#"{"message":"You have exceeded a secondary rate limit. Please wait."}"#,
            "create",
            at(0),
        );
        assert_eq!(error.retry_after(), Some(SECONDARY_LIMIT_WAIT));
    }

    #[test]
    fn plain_forbidden_names_the_missing_permission_and_scope() {
        let error = map_status(
            StatusCode::FORBIDDEN,
            &headers(&[
                ("x-accepted-github-permissions", "pull_requests=write"),
                ("x-accepted-oauth-scopes", "repo"),
                ("x-oauth-scopes", "read:org"),
            ]),
            r#"{"message":"Resource not accessible by integration"}"#,
            "create pull request in acme/web",
            at(0),
        );
        let ProviderError::Forbidden { message, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(message.contains("pull_requests=write"), "{message}");
        assert!(message.contains("`repo`"), "{message}");
        assert!(message.contains("`read:org`"), "{message}");
        assert!(!error.is_transient());
    }

    #[test]
    fn unprocessable_already_exists_is_a_conflict_other_is_invalid() {
        let exists = map_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &HeaderMap::new(),
            r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for acme:courier/x."}]}"#,
            "create",
            at(0),
        );
        assert!(
            matches!(exists, ProviderError::Conflict { .. }),
            "{exists:?}"
        );
        let other = map_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &HeaderMap::new(),
            r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","field":"base","code":"invalid"}]}"#,
            "create",
            at(0),
        );
        let ProviderError::Invalid { message, .. } = &other else {
            panic!("{other:?}");
        };
        assert!(message.contains("PullRequest base invalid"), "{message}");
    }

    #[test]
    fn server_errors_are_transient_and_non_json_bodies_survive() {
        let error = map_status(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            "<html>bad gateway</html>",
            "get",
            at(0),
        );
        assert!(error.is_transient());
        assert!(error.to_string().contains("bad gateway"), "{error}");
    }
}
