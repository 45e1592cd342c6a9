//! HTTP pieces the forges share: an answer read whole and decoded from JSON, response
//! headers read as text, error chains on one line, path segments, and the client
//! builder every forge starts from.

use courier_core::proxy::Proxies;
use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::provider::ProviderError;

/// Who answered: the provider's name in errors, the forge's name in messages, and how the
/// forge's refusals map to [`ProviderError`] (each forge's `error::map_status`).
pub(crate) struct Forge {
    /// `github`, `gitlab`: [`ProviderError`]'s `provider`.
    pub provider: &'static str,
    /// `GitHub`, `GitLab`: how messages name it.
    pub name: &'static str,
    pub map_status: fn(StatusCode, &HeaderMap, &str, &str, SystemTime) -> ProviderError,
}

/// An answer read whole, whatever its status (the GitHub and GitLab clients read them
/// this way to keep the headers a refusal carries).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub forge: &'static Forge,
}

impl Answer {
    /// The body decoded as `T`; a body of another shape is [`ProviderError::Invalid`].
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, ProviderError> {
        let problem = format!(
            "{}'s answer did not have the expected shape",
            self.forge.name
        );
        decode_json(self.forge.provider, self.body.as_bytes(), what, &problem)
    }

    /// This answer if its status is a success, else the error it maps to.
    pub fn success(self, what: &str) -> Result<Answer, ProviderError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(self.error(what))
        }
    }

    /// The [`ProviderError`] this (non-success) answer maps to, rate-limit waits counted
    /// from now.
    pub fn error(&self, what: &str) -> ProviderError {
        (self.forge.map_status)(
            self.status,
            &self.headers,
            &self.body,
            what,
            SystemTime::now(),
        )
    }
}

/// `body` decoded as `T`; otherwise [`ProviderError::Invalid`] saying
/// `"{what}: {problem}: {serde's reason}"`.
pub(crate) fn decode_json<T: DeserializeOwned>(
    provider: &'static str,
    body: &[u8],
    what: &str,
    problem: &str,
) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| ProviderError::Invalid {
        provider,
        message: format!("{what}: {problem}: {e}"),
    })
}

/// Response headers as text, whichever HTTP stack read them: the `http` crate's map
/// (GitHub, GitLab) or azure_core's (Azure DevOps, whose impl lives in its module).
pub(crate) trait ResponseHeaders {
    /// The value of header `name` (lower case), trimmed; `None` when absent or not text.
    fn text(&self, name: &'static str) -> Option<&str>;
}

impl ResponseHeaders for HeaderMap {
    fn text(&self, name: &'static str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }
}

/// `text` followed by each cause of `error` that it does not already contain, joined with
/// `": "`: HTTP clients put the useful part (connection refused, timed out) a few sources
/// down, and their `Display` shows only the top.
pub(crate) fn with_causes(mut text: String, error: &dyn std::error::Error) -> String {
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters), so a
/// name ("Design System", "a/b#c") stays one segment.
pub(crate) fn encode_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A reqwest client builder for a forge: ring installed (azure_core's features link
/// aws-lc-rs in, which a client would otherwise fall back to), the connection's extra
/// certificate authorities (`tls.ca_file`, DER) trusted on top of the system's, and its
/// proxies (configured or the environment's, resolved at load) and no others.
pub(crate) fn client_builder(extra_roots: &[Vec<u8>], proxy: &Proxies) -> reqwest::ClientBuilder {
    let builder = courier_core::tls::client_builder(extra_roots);
    match proxy.for_reqwest() {
        Some(proxy) => builder.proxy(proxy),
        None => builder,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn refuse(
        status: StatusCode,
        _: &HeaderMap,
        body: &str,
        what: &str,
        _: SystemTime,
    ) -> ProviderError {
        ProviderError::Invalid {
            provider: "test",
            message: format!("{what}: {status} {body}"),
        }
    }

    static TEST_FORGE: Forge = Forge {
        provider: "test",
        name: "Test",
        map_status: refuse,
    };

    fn answer(status: StatusCode, body: &str) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: body.to_owned(),
            forge: &TEST_FORGE,
        }
    }

    #[test]
    fn answers_decode_or_say_whose_shape_was_wrong() {
        let ok = answer(StatusCode::OK, r#"{"n": 4}"#);
        let value: serde_json::Value = ok.json("get").unwrap();
        assert_eq!(value["n"], 4);
        let error = ok.json::<Vec<u8>>("list pulls").unwrap_err();
        let ProviderError::Invalid { provider, message } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*provider, "test");
        assert!(
            message.starts_with("list pulls: Test's answer did not have the expected shape: "),
            "{message}"
        );
    }

    #[test]
    fn non_success_answers_go_through_the_forges_mapping() {
        assert!(answer(StatusCode::CREATED, "{}").success("create").is_ok());
        let Err(error) = answer(StatusCode::NOT_FOUND, "gone").success("get #4") else {
            panic!("a 404 is not a success");
        };
        assert!(
            error.to_string().contains("get #4: 404 Not Found gone"),
            "{error}"
        );
    }

    #[test]
    fn headers_are_trimmed_text() {
        let mut map = HeaderMap::new();
        map.insert("retry-after", HeaderValue::from_static(" 7 "));
        map.insert("x-bytes", HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(map.text("retry-after"), Some("7"));
        assert_eq!(map.text("x-bytes"), None);
        assert_eq!(map.text("x-missing"), None);
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn causes_are_appended_once() {
        let error = Layer(
            "request failed: connect",
            Some(Box::new(Layer(
                "connect",
                Some(Box::new(Layer("connection refused", None))),
            ))),
        );
        assert_eq!(
            with_causes(error.to_string(), &error),
            "request failed: connect: connection refused"
        );
    }

    #[test]
    fn segments_keep_only_unreserved_characters() {
        assert_eq!(encode_segment("Design System"), "Design%20System");
        assert_eq!(encode_segment("a/b#c?d"), "a%2Fb%23c%3Fd");
        assert_eq!(encode_segment("Résumé-1.0_~"), "R%C3%A9sum%C3%A9-1.0_~");
    }
}
