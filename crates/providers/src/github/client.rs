//! The HTTP layer under the GitHub provider: octocrab's client (its hyper + rustls stack,
//! base URI handling, JWT signing for Apps), driven through its raw `build_request` /
//! `execute` entry points. The typed octocrab calls turn every answer into an error that
//! drops the response headers, and Courier needs them (`retry-after`, `x-ratelimit-*`,
//! `x-accepted-github-permissions`), so responses are read here and mapped by
//! [`super::error::map_status`] (through [`Answer::success`]). Bodies are decoded into this
//! module's own small structs, which also keeps Courier independent of octocrab's model
//! churn.

use std::time::Duration;

use http::{HeaderValue, Method};
use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};

use super::error::{FORGE, PROVIDER};
pub(crate) use crate::forge::http::Answer;
use crate::forge::http::{encode_segment, with_causes};
use crate::provider::ProviderError;

pub(crate) struct Api {
    pub client: Octocrab,
    /// Bound on one whole call (connect, send, read the body); the client's own connect and
    /// read timeouts catch stalls inside it.
    pub request_timeout: Duration,
}

impl Api {
    /// Sends one request and reads the answer, whatever its status. Only transport
    /// failures and timeouts are errors (transient).
    pub async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        bearer: Option<&SecretString>,
        what: &str,
    ) -> Result<Answer, ProviderError> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(http::header::ACCEPT, "application/vnd.github+json");
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| ProviderError::Auth {
                    provider: PROVIDER,
                    message: "the token contains characters not allowed in an HTTP header".into(),
                })?;
            value.set_sensitive(true);
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        let request =
            self.client
                .build_request(builder, body)
                .map_err(|e| ProviderError::Invalid {
                    provider: PROVIDER,
                    message: format!("{what}: could not build the request: {e}"),
                })?;
        let exchange = async {
            let response = self.client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = self.client.body_to_string(response).await?;
            Ok::<_, octocrab::Error>(Answer {
                status,
                headers,
                body,
                forge: &FORGE,
            })
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(ProviderError::Transient {
                provider: PROVIDER,
                message: format!("{what}: {}", with_causes(error.to_string(), &error)),
            }),
            Err(_) => Err(ProviderError::Transient {
                provider: PROVIDER,
                message: format!(
                    "{what}: no complete answer within {}s",
                    self.request_timeout.as_secs_f32()
                ),
            }),
        }
    }

    /// [`Api::raw`], with non-success answers mapped to [`ProviderError`].
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        bearer: Option<&SecretString>,
        what: &str,
    ) -> Result<Answer, ProviderError> {
        self.raw(method, path_and_query, body, bearer, what)
            .await?
            .success(what)
    }
}

/// A branch name inside a path where GitHub expects its slashes as they are
/// (`git/refs/heads/feature/x`): each part encoded, slashes kept.
pub(crate) fn multi_segment(raw: &str) -> String {
    raw.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// `?a=b&c=d`, form-encoded.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    format!("?{}", serializer.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_branch_slashes_kept() {
        assert_eq!(encode_segment("a b/c%"), "a%20b%2Fc%25");
        assert_eq!(multi_segment("courier/tokens #1"), "courier/tokens%20%231");
        assert_eq!(
            query(&[("head", "acme:courier/x"), ("state", "open")]),
            "?head=acme%3Acourier%2Fx&state=open"
        );
    }
}
