//! GitLab's HTTP answers mapped to [`ProviderError`]. Kept apart from the transport so the
//! rules (what a 403 tells about the token, which 409 means "look it up") read in one place.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::forge::http::Forge;
// GitLab's rate limiter sends `Retry-After` (and `RateLimit-Reset`) with every 429; when
// a proxy in front of it answers 429 bare, Courier waits the default.
use crate::forge::rate_limit::{DEFAULT_RATE_LIMIT_WAIT, retry_after, until_reset};
use crate::provider::ProviderError;

pub(crate) const PROVIDER: &str = "gitlab";

/// GitLab, for the answers [`super::client::Api`] reads.
pub(crate) static FORGE: Forge = Forge {
    provider: PROVIDER,
    name: "GitLab",
    map_status,
};

/// What a GitLab error body says, as one line. GitLab's `message` is a string
/// (`"404 Project Not Found"`), a list (`["Another open merge request already exists…"]`)
/// or an object of field → list (`{"title": ["can't be blank"]}`); OAuth-style answers
/// carry `error` / `error_description` (and `scope`, on a 403 for a missing scope).
pub(crate) struct ErrorBody {
    pub text: String,
    /// The scope a 403 `insufficient_scope` answer names.
    pub scope: Option<String>,
}

impl ErrorBody {
    pub fn parse(body: &str) -> ErrorBody {
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            let text: String = body.trim().chars().take(200).collect();
            return ErrorBody {
                text: if text.is_empty() {
                    "no message".into()
                } else {
                    text
                },
                scope: None,
            };
        };
        let mut parts = Vec::new();
        if let Some(message) = value.get("message") {
            flatten(message, None, &mut parts);
        }
        for key in ["error", "error_description"] {
            if let Some(text) = value.get(key).and_then(Value::as_str) {
                parts.push(text.to_owned());
            }
        }
        let scope = value
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_owned);
        ErrorBody {
            text: if parts.is_empty() {
                "no message".into()
            } else {
                parts.join("; ")
            },
            scope,
        }
    }

    fn mentions(&self, needle: &str) -> bool {
        self.text
            .to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
    }
}

fn flatten(value: &Value, field: Option<&str>, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(match field {
            Some(field) => format!("{field} {text}"),
            None => text.clone(),
        }),
        Value::Array(items) => items.iter().for_each(|v| flatten(v, field, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| flatten(v, Some(k), out)),
        Value::Null => {}
        other => out.push(other.to_string()),
    }
}

/// `Retry-After` (seconds) first, then `RateLimit-Reset` (epoch seconds, GitLab's own
/// header), then a minute.
fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> Duration {
    if let Some(secs) = retry_after(headers) {
        return Duration::from_secs(secs.max(1));
    }
    if let Some(wait) = until_reset(headers, "ratelimit-reset", now) {
        // The reset is a whole second; one more avoids arriving a hair early.
        return Duration::from_secs(wait + 1);
    }
    DEFAULT_RATE_LIMIT_WAIT
}

/// Maps a non-success answer. `what` names the operation and object ("create merge request
/// from courier/x into main in acme/web").
pub(crate) fn map_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    what: &str,
    now: SystemTime,
) -> ProviderError {
    let parsed = ErrorBody::parse(body);
    let text = &parsed.text;
    match status {
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            provider: PROVIDER,
            retry_after: rate_limit_wait(headers, now),
        },
        StatusCode::UNAUTHORIZED => ProviderError::Auth {
            provider: PROVIDER,
            message: format!("{what}: {text} (401); the access token is wrong, expired or revoked"),
        },
        StatusCode::FORBIDDEN => {
            let advice = match parsed.scope.as_deref() {
                Some(scope) => format!(
                    "the token lacks the `{scope}` scope; create a personal, project or group \
                     access token with `{scope}`"
                ),
                None if parsed.mentions("insufficient_scope") => {
                    "the token lacks a scope this call needs; Courier needs `api`".into()
                }
                None => "the token's user (or bot user) needs at least the Developer role on \
                         the project, and the token the `api` scope"
                    .into(),
            };
            ProviderError::Forbidden {
                provider: PROVIDER,
                message: format!("{what}: {text}; {advice}"),
            }
        }
        StatusCode::NOT_FOUND => ProviderError::NotFound {
            provider: PROVIDER,
            what: format!(
                "{what}: {text} (GitLab answers 404 also when the token cannot see the project)"
            ),
        },
        StatusCode::CONFLICT => ProviderError::Conflict {
            provider: PROVIDER,
            message: format!("{what}: {text}"),
        },
        // Older GitLab answered "already exists" with 422 before it moved to 409.
        StatusCode::UNPROCESSABLE_ENTITY if parsed.mentions("already exists") => {
            ProviderError::Conflict {
                provider: PROVIDER,
                message: format!("{what}: {text}"),
            }
        }
        s if s.is_server_error() => ProviderError::Transient {
            provider: PROVIDER,
            message: format!("{what}: GitLab answered {s}: {text}"),
        },
        s => ProviderError::Invalid {
            provider: PROVIDER,
            message: format!("{what}: GitLab answered {s}: {text}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::testing::{at, headers};

    #[test]
    fn rate_limit_prefers_retry_after_then_reset_then_a_minute() {
        let retry = map_status(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "7"), ("ratelimit-reset", "1000100")]),
            "Retry later",
            "list",
            at(1_000_000),
        );
        assert_eq!(retry.retry_after(), Some(Duration::from_secs(7)));
        let reset = map_status(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "1000100")]),
            "Retry later",
            "list",
            at(1_000_000),
        );
        assert_eq!(reset.retry_after(), Some(Duration::from_secs(101)));
        let bare = map_status(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            "",
            "list",
            at(0),
        );
        assert_eq!(bare.retry_after(), Some(DEFAULT_RATE_LIMIT_WAIT));
    }

    #[test]
    fn insufficient_scope_names_the_scope() {
        let error = map_status(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api"}"#,
            "create merge request in acme/web",
            at(0),
        );
        let ProviderError::Forbidden { message, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(message.contains("`api` scope"), "{message}");
        assert!(message.contains("higher privileges"), "{message}");
        let role = map_status(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            r#"{"message":"403 Forbidden"}"#,
            "close !3 in acme/web",
            at(0),
        );
        assert!(role.to_string().contains("Developer role"), "{role}");
    }

    #[test]
    fn message_shapes_are_flattened_and_already_exists_is_a_conflict() {
        let list = map_status(
            StatusCode::CONFLICT,
            &HeaderMap::new(),
            r#"{"message":["Another open merge request already exists for this source branch: !7"]}"#,
            "create",
            at(0),
        );
        assert!(matches!(list, ProviderError::Conflict { .. }), "{list:?}");
        assert!(list.to_string().contains("!7"), "{list}");
        let fields = map_status(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            r#"{"message":{"title":["can't be blank"],"target_branch":["is invalid"]}}"#,
            "create",
            at(0),
        );
        let ProviderError::Invalid { message, .. } = &fields else {
            panic!("{fields:?}");
        };
        assert!(message.contains("title can't be blank"), "{message}");
        assert!(message.contains("target_branch is invalid"), "{message}");
        let old = map_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &HeaderMap::new(),
            r#"{"message":["Another open merge request already exists for this source branch"]}"#,
            "create",
            at(0),
        );
        assert!(matches!(old, ProviderError::Conflict { .. }), "{old:?}");
    }

    #[test]
    fn server_errors_are_transient_and_html_bodies_survive() {
        let error = map_status(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            "<html>502 Whoops, GitLab is taking too much time</html>",
            "get",
            at(0),
        );
        assert!(error.is_transient());
        assert!(error.to_string().contains("Whoops"), "{error}");
    }
}
