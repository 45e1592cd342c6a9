//! The HTTP layer under the GitLab provider.
//!
//! Requests are shaped by the `gitlab` crate's endpoint builders (`api::Endpoint`: method,
//! path with the URL-encoded project id, query parameters, form-encoded body), which is
//! where that crate's knowledge of the API lives. They are sent by the workspace's reqwest
//! client rather than the crate's `AsyncGitlab`, because `AsyncGitlab`:
//! - has no connect, read or overall timeout, and no way to set one;
//! - calls `GET /api/v4/user` while it is being built (a network call at startup, to an
//!   endpoint GitLab's own API description lacks);
//! - takes a host, not a base URL, so a GitLab served under a path cannot be reached;
//! - turns non-success answers into errors that drop the headers (`Retry-After`,
//!   `RateLimit-Reset`) Courier's retry policy needs.
//!
//! Redirects are not followed: the `PRIVATE-TOKEN` header is not one reqwest strips on a
//! cross-origin redirect.

use std::time::Duration;

use courier_core::proxy::Proxies;
use gitlab::api::Endpoint;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::error::{FORGE, PROVIDER};
pub(crate) use crate::forge::http::Answer;
use crate::forge::http::{client_builder, with_causes};
use crate::provider::ProviderError;

pub(crate) struct Api {
    http: reqwest::Client,
    /// `<base>/api/v4/`, with the trailing slash endpoint paths are joined onto.
    rest_root: Url,
    token: HeaderValue,
}

/// GitLab's header for personal, project and group access tokens.
const PRIVATE_TOKEN: &str = "private-token";

impl Api {
    pub fn new(
        base_url: &Url,
        token: &SecretString,
        connect_timeout: Duration,
        read_timeout: Duration,
        request_timeout: Duration,
        extra_roots: &[Vec<u8>],
        proxy: &Proxies,
    ) -> Result<Api, String> {
        let mut token = HeaderValue::from_str(token.expose_secret().trim())
            .map_err(|_| "the token contains characters not allowed in an HTTP header")?;
        token.set_sensitive(true);
        if token.is_empty() {
            return Err("the token is empty".into());
        }
        let mut root = base_url.clone();
        let path = format!("{}/api/v4/", root.path().trim_end_matches('/'));
        root.set_path(&path);
        let http = client_builder(extra_roots, proxy)
            .user_agent(concat!("courier/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .timeout(request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Api {
            http,
            rest_root: root,
            token,
        })
    }

    /// Sends the request `endpoint` describes, with `extra` query pairs appended (paging,
    /// which the crate keeps in its own pager), and reads the answer whatever its status.
    /// Only transport failures and timeouts are errors (transient).
    pub async fn raw<E: Endpoint>(
        &self,
        endpoint: &E,
        extra: &[(&str, &str)],
        what: &str,
    ) -> Result<Answer, ProviderError> {
        let mut url =
            self.rest_root
                .join(&endpoint.endpoint())
                .map_err(|e| ProviderError::Invalid {
                    provider: PROVIDER,
                    message: format!("{what}: could not build the request URL: {e}"),
                })?;
        endpoint.parameters().add_to_url(&mut url);
        if !extra.is_empty() {
            url.query_pairs_mut().extend_pairs(extra.iter());
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut request = self
            .http
            .request(endpoint.method(), url)
            .header(PRIVATE_TOKEN, self.token.clone());
        let body = endpoint.body().map_err(|e| ProviderError::Invalid {
            provider: PROVIDER,
            message: format!("{what}: could not encode the request body: {e}"),
        })?;
        if let Some((mime, data)) = body {
            request = request.header(http::header::CONTENT_TYPE, mime).body(data);
        }
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body,
                forge: &FORGE,
            })
        };
        exchange.await.map_err(|error| ProviderError::Transient {
            provider: PROVIDER,
            message: format!("{what}: {}", describe_transport_error(&error)),
        })
    }
}

/// reqwest's error chain, flattened, a timeout said as one. URLs carry no secret (the
/// token is a header).
fn describe_transport_error(error: &reqwest::Error) -> String {
    let text = if error.is_timeout() {
        format!("no answer in time ({error})")
    } else {
        error.to_string()
    };
    with_causes(text, error)
}
