//! The HTTP layer under the Azure DevOps provider: the SDK's azure_core pipeline on a
//! reqwest client Courier builds (timeouts, rustls on the ring provider, no redirects,
//! no retries: the caller's retry policy decides), plus one policy that pins every
//! request to API version 7.1.

use courier_core::proxy::Proxies;
use std::sync::Arc;
use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, RawResponse, Request, RetryOptions, Transport, Url,
};
use azure_devops_rust_api::Credential;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::forge::http::client_builder;

/// The Git REST API version Courier speaks, and the one its contract tests check against.
pub(crate) const API_VERSION: &str = "7.1";

/// What a 203/302 from Azure DevOps means; [`super::error`] maps it to `Auth`.
pub(crate) const SIGN_IN_PAGE: &str =
    "Azure DevOps answered with its sign-in page instead of the API: the PAT was not accepted";

/// The generated client appends `api-version=7.1-preview` and joins its endpoint and the
/// organization with a `/` even when the endpoint's path already ends in one. This
/// per-call policy sets `api-version=7.1` on every request and drops the empty path
/// segment, so what goes on the wire is exactly the documented `/{organization}/...`.
#[derive(Debug)]
pub(crate) struct PinApiVersion;

// The trait is declared with an elided `Context` lifetime; spelling it out here makes
// async_trait bind it differently from the trait.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl Policy for PinApiVersion {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        normalise(request.url_mut());
        let response = next[0].send(ctx, request, &next[1..]).await?;
        // Azure DevOps answers a PAT it does not accept with 203 and its HTML sign-in
        // page (or a redirect to it) rather than 401. azure_core would take the 203 as
        // success and fail on the HTML; make it the authentication error it is.
        let status = response.status();
        if matches!(u16::from(status), 203 | 302) {
            return Err(azure_core::Error::with_message(
                ErrorKind::HttpResponse {
                    status,
                    error_code: Some(SIGN_IN_PAGE.to_owned()),
                    raw_response: None,
                },
                SIGN_IN_PAGE,
            ));
        }
        Ok(response)
    }
}

fn normalise(url: &mut Url) {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "api-version")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        query.append_pair("api-version", API_VERSION);
        for (k, v) in &pairs {
            query.append_pair(k, v);
        }
    }
    if url.path().contains("//") {
        let segments: Vec<String> = url
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        url.set_path(&format!("/{}", segments.join("/")));
    }
}

pub(crate) struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub request: Duration,
}

pub(crate) fn transport(
    timeouts: &Timeouts,
    extra_roots: &[Vec<u8>],
    proxy: &Proxies,
) -> Result<Transport, String> {
    // Ring, so the client never falls back to the aws-lc-rs azure_core's features link in.
    let client = client_builder(extra_roots, proxy)
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.read)
        .timeout(timeouts.request)
        // Azure DevOps answers an unauthenticated API call with a redirect to its sign-in
        // page; following it would turn an auth failure into a confusing HTML answer.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("courier/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Transport::new(Arc::new(client)))
}

pub(crate) fn client_options(transport: Transport) -> ClientOptions {
    ClientOptions {
        transport: Some(transport),
        retry: RetryOptions::none(),
        per_call_policies: vec![Arc::new(PinApiVersion)],
        ..ClientOptions::default()
    }
}

pub(crate) fn git_client(
    endpoint: &Url,
    token: &SecretString,
    transport: Transport,
) -> azure_devops_rust_api::git::Client {
    let pinned: Arc<dyn Policy> = Arc::new(PinApiVersion);
    azure_devops_rust_api::git::ClientBuilder::new(Credential::from_pat(
        token.expose_secret().to_owned(),
    ))
    .endpoint(endpoint.clone())
    .retry(RetryOptions::none())
    .transport(transport)
    .per_call_policies(vec![pinned])
    .build()
}

/// For the one call outside the Git area (`GET {org}/_apis/connectionData`): the same
/// azure_core pipeline, transport and policies as the generated client, with the PAT sent
/// the way the SDK sends it (Basic, empty user name).
pub(crate) struct RawApi {
    pipeline: Pipeline,
    authorization: SecretString,
}

impl RawApi {
    pub(crate) fn new(token: &SecretString, transport: Transport) -> RawApi {
        let options = client_options(transport);
        let pipeline = Pipeline::new(
            Some("courier"),
            Some(env!("CARGO_PKG_VERSION")),
            options,
            Vec::new(),
            Vec::new(),
            None,
        );
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!(":{}", token.expose_secret()));
        RawApi {
            pipeline,
            authorization: SecretString::from(format!("Basic {encoded}")),
        }
    }

    pub(crate) async fn get(&self, url: Url) -> azure_core::Result<RawResponse> {
        let mut request = Request::new(url, Method::Get);
        request.insert_header(
            "authorization",
            self.authorization.expose_secret().to_owned(),
        );
        request.insert_header("accept", "application/json");
        self.pipeline
            .send(&Context::default(), &mut request, None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_runs_on_ring_not_the_aws_lc_rs_that_azure_core_links_in() {
        transport(
            &Timeouts {
                connect: Duration::from_secs(1),
                read: Duration::from_secs(1),
                request: Duration::from_secs(1),
            },
            &[],
            &Proxies::direct(),
        )
        .unwrap();
        let installed = rustls::crypto::CryptoProvider::get_default().expect("a provider");
        let groups = |p: &rustls::crypto::CryptoProvider| {
            p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>()
        };
        // aws-lc-rs' default offers the post-quantum X25519MLKEM768 group; ring's does not.
        // (`rustls::crypto::aws_lc_rs` only exists because azure_core forces the feature:
        // when an SDK release stops doing so, this line stops compiling; drop it then.)
        assert_eq!(
            groups(installed),
            groups(&rustls::crypto::ring::default_provider())
        );
        assert_ne!(
            groups(installed),
            groups(&rustls::crypto::aws_lc_rs::default_provider())
        );
    }

    #[test]
    fn pins_the_version_and_drops_the_empty_segment() {
        let mut url = Url::parse(
            "http://127.0.0.1:1/org/p/_apis/git/repositories/r/pullrequests?api-version=7.1-preview&searchCriteria.status=active",
        )
        .unwrap();
        // What the SDK builds from an endpoint whose path is `/`.
        url.set_path("//org/p/_apis/git/repositories/r/pullrequests");
        normalise(&mut url);
        assert_eq!(url.path(), "/org/p/_apis/git/repositories/r/pullrequests");
        assert_eq!(
            url.query(),
            Some("api-version=7.1&searchCriteria.status=active")
        );
    }
}
