//! Azure DevOps answers → [`ProviderError`].
//!
//! azure_core keeps the status, headers and body of a refused call in its typed error
//! (`ErrorKind::HttpResponse { raw_response }`), so the mapping reads them from there and
//! no lower-level request path is needed for errors.

use std::time::{Duration, SystemTime};

use azure_core::error::ErrorKind;
use azure_core::http::RawResponse;
use azure_core::http::headers::{HeaderName, Headers};
use serde_json::Value;

use crate::forge::http::{ResponseHeaders, with_causes};
// Waited when a 429 carries neither `Retry-After` nor `X-RateLimit-Reset`.
use crate::forge::rate_limit::{DEFAULT_RATE_LIMIT_WAIT, retry_after, until_reset};
use crate::provider::ProviderError;

pub(crate) const PROVIDER: &str = "azure";

/// Azure DevOps' code for "an active pull request for the source and target branch
/// already exists".
const ALREADY_EXISTS: &str = "TF401179";

/// What a PAT needs for every call Courier makes; named in 401/403 messages.
pub(crate) const SCOPES_HINT: &str = "the PAT needs the \"Code (Read & write)\" scope \
     (vso.code_write) and, on the repository, the Contribute and \"Contribute to pull \
     requests\" permissions (branch deletion also needs \"Force push\" on the branch)";

/// The parts of an Azure DevOps error body worth showing a person.
fn body_message(raw: &RawResponse) -> Option<String> {
    let body = raw.body();
    if body.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(body) {
        // `{"message": "TF401179: ...", "typeKey": "GitPullRequestExistsException", ...}`
        Ok(value) => value
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| Some(truncate(&value.to_string(), 300))),
        Err(_) => Some(truncate(&String::from_utf8_lossy(body), 300)),
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// azure_core's headers, read like the other forges' (trimmed text).
impl ResponseHeaders for Headers {
    fn text(&self, name: &'static str) -> Option<&str> {
        self.get_optional_str(&HeaderName::from_static(name))
            .map(str::trim)
    }
}

/// How long a 429 asks us to wait: `Retry-After` (seconds), else `X-RateLimit-Reset`
/// (epoch seconds) from now, else a minute.
pub(crate) fn rate_limit_wait(headers: &Headers, now: SystemTime) -> Duration {
    if let Some(secs) = retry_after(headers) {
        return Duration::from_secs(secs);
    }
    if let Some(wait) = until_reset(headers, "x-ratelimit-reset", now) {
        return Duration::from_secs(wait.max(1));
    }
    DEFAULT_RATE_LIMIT_WAIT
}

/// Maps one status + answer. `what` names the object for 404s ("pull request 7 in
/// proj/repo").
pub(crate) fn map_status(
    status: u16,
    headers: &Headers,
    message: Option<String>,
    what: &str,
) -> ProviderError {
    let message = message.unwrap_or_else(|| format!("HTTP {status}"));
    if message.contains(ALREADY_EXISTS) {
        return ProviderError::Conflict {
            provider: PROVIDER,
            message,
        };
    }
    // Azure DevOps also signals exhaustion with X-RateLimit-Remaining: 0 on a 429 or 503.
    let exhausted = headers.text("x-ratelimit-remaining") == Some("0");
    match status {
        // Set by the client's policy: Azure DevOps' sign-in page instead of a 401.
        203 | 302 => ProviderError::Auth {
            provider: PROVIDER,
            message: format!(
                "{message}; check that the PAT is valid and not expired ({SCOPES_HINT})"
            ),
        },
        401 => ProviderError::Auth {
            provider: PROVIDER,
            message: format!(
                "{message}; check that the PAT is valid and not expired ({SCOPES_HINT})"
            ),
        },
        403 => ProviderError::Forbidden {
            provider: PROVIDER,
            message: format!("{message}; {SCOPES_HINT}"),
        },
        404 => ProviderError::NotFound {
            provider: PROVIDER,
            what: format!("{what} ({message})"),
        },
        409 => ProviderError::Conflict {
            provider: PROVIDER,
            message,
        },
        429 => ProviderError::RateLimited {
            provider: PROVIDER,
            retry_after: rate_limit_wait(headers, SystemTime::now()),
        },
        503 if exhausted || headers.text("retry-after").is_some() => ProviderError::RateLimited {
            provider: PROVIDER,
            retry_after: rate_limit_wait(headers, SystemTime::now()),
        },
        400 | 422 => ProviderError::Invalid {
            provider: PROVIDER,
            message,
        },
        408 | 500..=599 => ProviderError::Transient {
            provider: PROVIDER,
            message: format!("HTTP {status}: {message}"),
        },
        _ => ProviderError::Invalid {
            provider: PROVIDER,
            message: format!("unexpected HTTP {status}: {message}"),
        },
    }
}

/// Maps an azure_core error from the SDK (or from our own pipeline call).
pub(crate) fn map_error(error: &azure_core::Error, what: &str) -> ProviderError {
    match error.kind() {
        ErrorKind::HttpResponse {
            status,
            raw_response,
            ..
        } => {
            let status = u16::from(*status);
            match raw_response {
                Some(raw) => map_status(status, raw.headers(), body_message(raw), what),
                None => map_status(status, &Headers::new(), Some(error.to_string()), what),
            }
        }
        // Connection refused/reset, timeouts (reqwest reports those as I/O): worth retrying.
        ErrorKind::Connection | ErrorKind::Io => ProviderError::Transient {
            provider: PROVIDER,
            message: format!("{what}: {}", describe(error)),
        },
        ErrorKind::DataConversion => ProviderError::Invalid {
            provider: PROVIDER,
            message: format!(
                "{what}: the answer is not what the Azure DevOps Git API 7.1 returns ({}); \
                 check the base URL points at Azure DevOps or an Azure DevOps Server collection",
                describe(error)
            ),
        },
        ErrorKind::Credential => ProviderError::Auth {
            provider: PROVIDER,
            message: describe(error),
        },
        _ => ProviderError::Invalid {
            provider: PROVIDER,
            message: format!("{what}: {}", describe(error)),
        },
    }
}

/// The error and its causes on one line (azure_core's Display shows only the top).
fn describe(error: &azure_core::Error) -> String {
    with_causes(error.to_string(), error)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> Headers {
        let mut headers = Headers::new();
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), value.to_string());
        }
        headers
    }

    #[test]
    fn already_exists_is_a_conflict_whatever_the_status() {
        for status in [400, 409] {
            let error = map_status(
                status,
                &Headers::new(),
                Some("TF401179: An active pull request for the source and target branch already exists.".into()),
                "pull request",
            );
            assert!(matches!(error, ProviderError::Conflict { .. }), "{error:?}");
        }
    }

    #[test]
    fn rate_limits_read_retry_after_then_reset_then_default() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            rate_limit_wait(&headers(&[("retry-after", "7")]), now),
            Duration::from_secs(7)
        );
        assert_eq!(
            rate_limit_wait(&headers(&[("x-ratelimit-reset", "1042")]), now),
            Duration::from_secs(42)
        );
        assert_eq!(
            rate_limit_wait(&Headers::new(), now),
            DEFAULT_RATE_LIMIT_WAIT
        );
    }

    #[test]
    fn forbidden_says_which_scope_is_missing() {
        let error = map_status(403, &Headers::new(), Some("TF401027: denied".into()), "x");
        let text = error.to_string();
        assert!(
            text.contains("TF401027") && text.contains("vso.code_write"),
            "{text}"
        );
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("ab", 2), "ab");
    }
}
