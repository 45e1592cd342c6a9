//! The downloader against real HTTP servers on 127.0.0.1: credentials, caps, timeouts,
//! retries, redirects and the host and address rules. Every test is bounded by a timeout.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use courier_core::download::{
    DownloadError, DownloadLimits, DownloadPolicy, Downloader, JobCheck, PolicyError,
};
use courier_core::event::{ArtifactSource, Event, JobEvent, SecretUrl, parse_event};
use futures_util::stream;
use secrecy::SecretString;
use url::Url;

const PAT: &str = "pat-0123456789";
const ZIP: &[u8] = b"PK\x03\x04 not really a zip, but the downloader does not care";

/// What one server saw: per path, the `Authorization` header of each request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, Vec<Option<String>>>>>);

impl Seen {
    fn record(&self, path: &str, headers: &HeaderMap) -> usize {
        let auth = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let mut seen = self.0.lock().unwrap();
        let entry = seen.entry(path.to_owned()).or_default();
        entry.push(auth);
        entry.len()
    }

    fn auth(&self, path: &str) -> Vec<Option<String>> {
        self.0
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    fn count(&self, path: &str) -> usize {
        self.auth(path).len()
    }

    fn total(&self) -> usize {
        self.0.lock().unwrap().values().map(Vec::len).sum()
    }
}

fn chunked(chunks: Vec<Bytes>) -> Body {
    Body::from_stream(stream::iter(chunks.into_iter().map(Ok::<_, Infallible>)))
}

/// Sends `first`, then one byte every `every` for `count` times.
fn trickle(first: &'static [u8], every: Duration, count: usize) -> Body {
    let s = stream::unfold((true, count), move |(start, left)| async move {
        if start {
            return Some((
                Ok::<_, Infallible>(Bytes::from_static(first)),
                (false, left),
            ));
        }
        if left == 0 {
            return None;
        }
        tokio::time::sleep(every).await;
        Some((Ok(Bytes::from_static(b"x")), (false, left - 1)))
    });
    Body::from_stream(s)
}

fn query(req: &Request, key: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn handler(State(seen): State<Seen>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let n = seen.record(&path, req.headers());
    let redirect = |to: String| {
        (
            StatusCode::FOUND,
            [(header::LOCATION, HeaderValue::try_from(to).unwrap())],
        )
            .into_response()
    };
    match path.as_str() {
        p if p.ends_with("/result") || p.starts_with("/zip") => ZIP.into_response(),
        // The job endpoint, by job id: what the platform says about each test's job.
        p if p.contains("/jobs/") => match p.rsplit('/').next().unwrap() {
            "missing" => StatusCode::NOT_FOUND.into_response(),
            "running" => r#"{"job":{"id":"running","status":"InProgress"}}"#.into_response(),
            "shapeless" => r#"{"job":{"id":"shapeless","state":"done"}}"#.into_response(),
            "flaky" if n == 1 => StatusCode::BAD_GATEWAY.into_response(),
            "down" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            "forbidden" => StatusCode::FORBIDDEN.into_response(),
            _ => r#"{"result":{"job":{"status":"Success"}}}"#.into_response(),
        },
        "/256mib" => {
            let chunk = Bytes::from(vec![0x5au8; 64 << 10]);
            Body::from_stream(stream::iter(
                std::iter::repeat_n(chunk, 4096).map(Ok::<_, Infallible>),
            ))
            .into_response()
        }
        "/text" => ([(header::CONTENT_TYPE, "text/plain")], "hello, not a zip").into_response(),
        "/big-chunked" => chunked(vec![Bytes::from(vec![7u8; 64 << 10]); 32]).into_response(),
        "/big-declared" => (
            [(header::CONTENT_LENGTH, "100000000")],
            trickle(b"PK", Duration::from_secs(60), 1),
        )
            .into_response(),
        "/flaky" => match n {
            1 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            2 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            _ => ZIP.into_response(),
        },
        "/always-503" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "/busy" if n == 1 => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response(),
        "/busy" => ZIP.into_response(),
        "/busy-for-an-hour" => {
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "3600")]).into_response()
        }
        "/404" => StatusCode::NOT_FOUND.into_response(),
        "/403" => StatusCode::FORBIDDEN.into_response(),
        "/slow-headers" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ZIP.into_response()
        }
        "/slow-body" => trickle(b"PK", Duration::from_secs(5), 1).into_response(),
        "/trickle" => trickle(b"PK", Duration::from_millis(200), 100).into_response(),
        "/redirect" => redirect(query(&req, "to").unwrap()),
        "/loop" => redirect("/loop".into()),
        "/logs.json" => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"[{"time": "t1", "type": "info", "message": "one"}, {"type": "error", "message": "two"}]"#,
        )
            .into_response(),
        "/logs.txt" => "line one\nline two\n".into_response(),
        _ => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

/// A server on 127.0.0.1:0 and what it saw.
async fn server() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new().fallback(handler).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn test_limits() -> DownloadLimits {
    DownloadLimits {
        max_bytes: 1 << 20,
        max_log_bytes: 1 << 10,
        connect_timeout_secs: 1,
        read_timeout_secs: 1,
        total_timeout_secs: 5,
        retries: 3,
        retry_backoff_ms: 10,
        retry_backoff_max_ms: 40,
        max_redirects: 3,
    }
}

fn policy(api: SocketAddr, temp: &Path) -> DownloadPolicy {
    let mut policy = DownloadPolicy::new(format!("http://{api}/api/v2").parse().unwrap());
    policy.download_hosts = vec!["127.0.0.1".into()];
    policy.insecure_hosts = vec!["127.0.0.1".into()];
    policy.platform_token = Some(SecretString::from(PAT));
    policy.limits = test_limits();
    policy.temp_dir = Some(temp.to_owned());
    policy
}

/// The usual set-up: a server, and a downloader under [`policy`] writing to a temp dir
/// that lives as long as its binding.
struct Fixture {
    api: SocketAddr,
    seen: Seen,
    dl: Downloader,
    temp: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let (api, seen) = server().await;
    let temp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(policy(api, temp.path())).unwrap();
    Fixture {
        api,
        seen,
        dl,
        temp,
    }
}

fn event() -> JobEvent {
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/payloads/v2-seed.json"),
    )
    .unwrap();
    match parse_event(&body).unwrap().event {
        Event::JobUpdated(e) => *e,
        other => panic!("{other:?}"),
    }
}

fn url(s: String) -> SecretUrl {
    SecretUrl::new(Url::parse(&s).unwrap())
}

fn signed(s: String) -> ArtifactSource {
    ArtifactSource::SignedUrl { url: url(s) }
}

fn platform(s: String) -> ArtifactSource {
    ArtifactSource::PlatformUrl { url: url(s) }
}

/// Runs a test body with a deadline, so that no test can hang the suite.
async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test took longer than 30 s");
}

fn temp_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

const BEARER: &str = "Bearer pat-0123456789";

#[tokio::test]
async fn v1_signed_url_is_fetched_without_credentials() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp,
        } = fixture().await;
        // Even on the platform origin, a first-version signed URL carries no PAT.
        let source = signed(format!("http://{api}/zip?X-Amz-Signature=abc"));
        let artifact = dl.fetch(&source, &event()).await.unwrap();
        assert_eq!(std::fs::read(artifact.path()).unwrap(), ZIP);
        assert_eq!(artifact.len(), ZIP.len() as u64);
        assert_eq!(artifact.attempts(), 1);
        assert!(artifact.path().starts_with(temp.path()));
        assert_eq!(seen.auth("/zip"), vec![None]);
        let path = artifact.path().to_owned();
        drop(artifact);
        assert!(!path.exists(), "the temp file goes with the artifact");
    })
    .await;
}

#[tokio::test]
async fn v2_result_endpoint_gets_the_pat_on_the_platform_origin() {
    bounded(async {
        let Fixture {
            api: _,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        let artifact = dl
            .fetch(&ArtifactSource::ResultEndpoint, &event())
            .await
            .unwrap();
        assert_eq!(std::fs::read(artifact.path()).unwrap(), ZIP);
        let path = "/api/v2/codegen/workspaces/1/jobs/6/result";
        assert_eq!(seen.auth(path), vec![Some(BEARER.to_owned())]);
    })
    .await;
}

#[tokio::test]
async fn v2_s3_url_on_the_platform_origin_gets_the_pat() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        dl.fetch(&platform(format!("http://{api}/zip")), &event())
            .await
            .unwrap();
        assert_eq!(seen.auth("/zip"), vec![Some(BEARER.to_owned())]);
    })
    .await;
}

#[tokio::test]
async fn v2_s3_url_on_another_origin_gets_no_pat() {
    bounded(async {
        let (api, api_seen) = server().await;
        let (s3, s3_seen) = server().await; // same host, other port: another origin
        let temp = tempfile::tempdir().unwrap();
        let dl = Downloader::new(policy(api, temp.path())).unwrap();
        let artifact = dl
            .fetch(&platform(format!("http://{s3}/zip?sig=1")), &event())
            .await
            .unwrap();
        assert_eq!(artifact.len(), ZIP.len() as u64);
        assert_eq!(s3_seen.auth("/zip"), vec![None]);
        assert_eq!(api_seen.total(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_redirect_off_the_platform_origin_drops_the_pat_for_good() {
    bounded(async {
        let (api, api_seen) = server().await;
        let (other, other_seen) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let dl = Downloader::new(policy(api, temp.path())).unwrap();
        // API -> other origin -> back to the API: only the first hop carries the PAT.
        let back = format!("http://{api}/zip-after-bounce");
        let via_other = format!("http://{other}/redirect?to={}", enc(&back));
        let start = format!("http://{api}/redirect?to={}", enc(&via_other));
        dl.fetch(&platform(start), &event()).await.unwrap();
        assert_eq!(api_seen.auth("/redirect"), vec![Some(BEARER.to_owned())]);
        assert_eq!(other_seen.auth("/redirect"), vec![None]);
        assert_eq!(api_seen.auth("/zip-after-bounce"), vec![None]);
    })
    .await;
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_refused_and_leaves_no_file() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp,
        } = fixture().await;
        let err = dl
            .fetch(&signed(format!("http://{api}/big-chunked")), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::TooLarge { limit } if limit == 1 << 20),
            "{err:?}"
        );
        assert_eq!(seen.count("/big-chunked"), 1, "a size fault is not retried");
        assert!(temp_is_empty(temp.path()), "the partial file is removed");
    })
    .await;
}

#[tokio::test]
async fn a_content_length_over_the_cap_is_refused_before_reading() {
    bounded(async {
        let Fixture {
            api,
            seen: _,
            dl,
            temp,
        } = fixture().await;
        let started = std::time::Instant::now();
        let err = dl
            .fetch(&signed(format!("http://{api}/big-declared")), &event())
            .await
            .unwrap_err();
        assert!(matches!(err, DownloadError::TooLarge { .. }), "{err:?}");
        // The body stalls after two bytes; refusing on the header does not wait for it.
        assert!(started.elapsed() < Duration::from_millis(900));
        assert!(temp_is_empty(temp.path()));
    })
    .await;
}

#[tokio::test]
async fn a_500_then_503_is_retried_until_it_succeeds() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        let artifact = dl
            .fetch(&signed(format!("http://{api}/flaky")), &event())
            .await
            .unwrap();
        assert_eq!(seen.count("/flaky"), 3);
        assert_eq!(artifact.attempts(), 3);
        assert_eq!(std::fs::read(artifact.path()).unwrap(), ZIP);
    })
    .await;
}

/// A 429 is a wait, not a refusal: a short `Retry-After` is waited out in place, a long
/// one goes back to the caller with the time asked for (a worker requeues for it).
#[tokio::test]
async fn a_429_waits_as_long_as_asked_or_hands_the_wait_back() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        let started = std::time::Instant::now();
        let artifact = dl
            .fetch(&signed(format!("http://{api}/busy")), &event())
            .await
            .unwrap();
        assert_eq!(artifact.attempts(), 2);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited as asked"
        );

        let err = dl
            .fetch(&signed(format!("http://{api}/busy-for-an-hour")), &event())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
        assert_eq!(seen.count("/busy-for-an-hour"), 1, "not retried in place");
        assert!(err.to_string().contains("retry after 3600 s"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn retries_stop_after_the_configured_count() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        let err = dl
            .fetch(&signed(format!("http://{api}/always-503")), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::Http { status: 503, .. }),
            "{err:?}"
        );
        assert!(err.is_transient());
        assert_eq!(
            seen.count("/always-503"),
            4,
            "one attempt and three retries"
        );
    })
    .await;
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        let err = dl
            .fetch(&signed(format!("http://{api}/404")), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::Http { status: 404, .. }),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert_eq!(seen.count("/404"), 1);

        // 403 with the PAT is a plain 403 (the token is wrong or lacks access).
        let err = dl
            .fetch(&platform(format!("http://{api}/403")), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::Http { status: 403, .. }),
            "{err:?}"
        );
        assert_eq!(seen.count("/403"), 1);
    })
    .await;
}

#[tokio::test]
async fn slow_headers_and_a_stalled_body_hit_the_read_timeout() {
    bounded(async {
        let (api, seen) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let mut policy = policy(api, temp.path());
        policy.limits.retries = 1;
        let dl = Downloader::new(policy).unwrap();
        for path in ["/slow-headers", "/slow-body"] {
            let started = std::time::Instant::now();
            let err = dl
                .fetch(&signed(format!("http://{api}{path}")), &event())
                .await
                .unwrap_err();
            assert!(
                matches!(err, DownloadError::Timeout { .. }),
                "{path}: {err:?}"
            );
            assert_eq!(seen.count(path), 2, "{path}: a timeout is retried once");
            // Two attempts of ~1 s each, well before the server's 5 s.
            let took = started.elapsed();
            assert!(
                took >= Duration::from_secs(2) && took < Duration::from_secs(4),
                "{took:?}"
            );
        }
        assert!(temp_is_empty(temp.path()));
    })
    .await;
}

#[tokio::test]
async fn a_trickling_body_hits_the_total_deadline() {
    bounded(async {
        let (api, _) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let mut policy = policy(api, temp.path());
        policy.limits.total_timeout_secs = 2;
        let dl = Downloader::new(policy).unwrap();
        let started = std::time::Instant::now();
        let err = dl
            .fetch(&signed(format!("http://{api}/trickle")), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::Deadline { secs: 2 }),
            "{err:?}"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert!(temp_is_empty(temp.path()));
    })
    .await;
}

#[tokio::test]
async fn a_redirect_to_a_host_not_allowed_is_refused() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        let to = enc("https://evil.example.com/steal?sig=x");
        let err = dl
            .fetch(&signed(format!("http://{api}/redirect?to={to}")), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DownloadError::HostNotAllowed { host } if host == "evil.example.com"),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("sig=x"));
        assert_eq!(seen.count("/redirect"), 1);

        // Schemes other than http(s) and the cloud metadata address, as redirect targets.
        for (to, expected) in [
            ("file:///etc/passwd", "UnsupportedScheme"),
            ("javascript:alert(1)", "UnsupportedScheme"),
            (
                "https://169.254.169.254/latest/meta-data/",
                "HostNotAllowed",
            ),
        ] {
            let err = dl
                .fetch(
                    &signed(format!("http://{api}/redirect?to={}", enc(to))),
                    &event(),
                )
                .await
                .unwrap_err();
            assert!(format!("{err:?}").starts_with(expected), "{to}: {err:?}");
        }
        assert_eq!(seen.count("/redirect"), 4);
    })
    .await;
}

#[tokio::test]
async fn a_redirect_loop_is_capped() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        let err = dl
            .fetch(&signed(format!("http://{api}/loop")), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::TooManyRedirects { limit: 3 }),
            "{err:?}"
        );
        assert_eq!(
            seen.count("/loop"),
            4,
            "the first request and three redirects"
        );
    })
    .await;
}

#[tokio::test]
async fn plain_http_is_refused_for_a_host_not_listed_as_insecure() {
    bounded(async {
        let (api, seen) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let mut policy = policy(api, temp.path());
        policy.download_hosts.push("localhost".into());
        let dl = Downloader::new(policy).unwrap();
        let err = dl
            .fetch(
                &signed(format!("http://localhost:{}/zip", api.port())),
                &event(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DownloadError::InsecureScheme { host } if host == "localhost"),
            "{err:?}"
        );
        // And a redirect down to http is refused the same way.
        let to = enc(&format!("http://localhost:{}/zip", api.port()));
        let err = dl
            .fetch(&signed(format!("http://{api}/redirect?to={to}")), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::InsecureScheme { .. }),
            "{err:?}"
        );
        assert_eq!(seen.count("/zip"), 0);
    })
    .await;
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_connect_time() {
    bounded(async {
        let (api, seen) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let mut policy = policy(api, temp.path());
        policy.download_hosts.push("localhost".into());
        let dl = Downloader::new(policy).unwrap();
        let err = dl
            .fetch(
                &signed(format!("https://localhost:{}/zip?sig=s3cr3t", api.port())),
                &event(),
            )
            .await
            .unwrap_err();
        match &err {
            DownloadError::AddressNotAllowed { host, addr } => {
                assert_eq!(host, "localhost");
                assert!(addr.is_loopback(), "{addr}");
            }
            other => panic!("expected AddressNotAllowed, got {other:?}"),
        }
        assert!(!err.is_transient(), "a refused address is not retried");
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
        assert_eq!(seen.total(), 0);
    })
    .await;
}

#[tokio::test]
async fn ip_literals_are_checked_without_the_resolver() {
    bounded(async {
        let (api, seen) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let mut policy = policy(api, temp.path());
        policy.download_hosts.extend(["127.0.0.2".into(), "::ffff:7f00:1".into()]);
        let dl = Downloader::new(policy).unwrap();
        for (u, ip) in [
            (format!("https://127.0.0.2:{}/zip", api.port()), "127.0.0.2"),
            (format!("https://[::ffff:127.0.0.1]:{}/zip", api.port()), "::ffff:127.0.0.1"),
        ] {
            let err = dl.fetch(&signed(u), &event()).await.unwrap_err();
            assert!(
                matches!(&err, DownloadError::AddressNotAllowed { addr, .. } if addr.to_string() == ip),
                "{err:?}"
            );
        }
        assert_eq!(seen.total(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_name_listed_as_insecure_may_resolve_to_loopback() {
    bounded(async {
        let (api, seen) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let mut policy = policy(api, temp.path());
        policy.download_hosts.push("localhost".into());
        policy.insecure_hosts.push("localhost".into());
        let dl = Downloader::new(policy).unwrap();
        dl.fetch(
            &signed(format!("http://localhost:{}/zip", api.port())),
            &event(),
        )
        .await
        .unwrap();
        assert_eq!(seen.count("/zip"), 1);
    })
    .await;
}

#[tokio::test]
async fn hosts_outside_the_allowlist_are_refused_before_any_request() {
    bounded(async {
        let Fixture {
            api: _,
            seen: _,
            dl,
            temp: _temp,
        } = fixture().await;
        let err = dl
            .fetch(&signed("https://files.example.net/r.zip".into()), &event())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DownloadError::HostNotAllowed { host } if host == "files.example.net")
        );
        assert_eq!(
            err.to_string(),
            "host files.example.net is not in platform.download_hosts"
        );
    })
    .await;
}

#[tokio::test]
async fn a_body_that_is_not_a_zip_is_still_downloaded() {
    bounded(async {
        let Fixture {
            api,
            seen: _,
            dl,
            temp: _temp,
        } = fixture().await;
        let artifact = dl
            .fetch(&signed(format!("http://{api}/text")), &event())
            .await
            .unwrap();
        assert_eq!(std::fs::read(artifact.path()).unwrap(), b"hello, not a zip");
        assert_eq!(artifact.content_type(), Some("text/plain"));
    })
    .await;
}

#[tokio::test]
async fn connection_errors_are_retried_and_never_show_the_signature() {
    bounded(async {
        let (api, _) = server().await;
        // A port nobody listens on: bind, note, close.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let temp = tempfile::tempdir().unwrap();
        let mut policy = policy(api, temp.path());
        policy.limits.retries = 2;
        let dl = Downloader::new(policy).unwrap();
        let started = std::time::Instant::now();
        let err = dl
            .fetch(
                &signed(format!("http://{closed}/zip?X-Amz-Signature=s3cr3t")),
                &event(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, DownloadError::Connection { .. }), "{err:?}");
        assert!(err.is_transient());
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("Signature"),
            "{shown}"
        );
        // Two backoffs of 10 and 20 ms: retried, and quickly.
        assert!(started.elapsed() < Duration::from_secs(2));
    })
    .await;
}

#[tokio::test]
async fn no_artifact_is_an_error_not_a_request() {
    bounded(async {
        let Fixture {
            api: _,
            seen,
            dl,
            temp: _temp,
        } = fixture().await;
        let err = dl.fetch(&ArtifactSource::None, &event()).await.unwrap_err();
        assert!(matches!(err, DownloadError::NoArtifact));
        assert_eq!(seen.total(), 0);
    })
    .await;
}

#[tokio::test]
async fn logs_are_fetched_with_the_pat_and_parsed() {
    bounded(async {
        let (api, seen) = server().await;
        let (other, other_seen) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let dl = Downloader::new(policy(api, temp.path())).unwrap();

        let lines = dl
            .fetch_logs(&url(format!("http://{api}/logs.json")))
            .await
            .unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].time.as_deref(), lines[0].level.as_str()),
            (Some("t1"), "info")
        );
        assert_eq!(
            (lines[1].level.as_str(), lines[1].message.as_str()),
            ("error", "two")
        );
        assert_eq!(seen.auth("/logs.json"), vec![Some(BEARER.to_owned())]);

        let lines = dl
            .fetch_logs(&url(format!("http://{other}/logs.txt")))
            .await
            .unwrap();
        let messages: Vec<_> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["line one", "line two"]);
        assert_eq!(
            other_seen.auth("/logs.txt"),
            vec![None],
            "no PAT off the platform origin"
        );

        // The log cap (1 KiB here) is separate from the artifact cap.
        let err = dl
            .fetch_logs(&url(format!("http://{api}/big-chunked")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::TooLarge { limit: 1024 }),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_result_url_percent_encodes_ids() {
    let temp = tempfile::tempdir().unwrap();
    let api: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let dl = Downloader::new(policy(api, temp.path())).unwrap();
    let mut e = event();
    e.job.id = "a/../b?c#d".into();
    assert_eq!(
        dl.result_url(&e).unwrap().as_str(),
        "http://127.0.0.1:9/api/v2/codegen/workspaces/1/jobs/a%2F..%2Fb%3Fc%23d/result"
    );
    e.job.id = "..".into();
    assert!(matches!(
        dl.result_url(&e),
        Err(DownloadError::ApiUrl { .. })
    ));

    let mut custom = policy(api, temp.path());
    custom.platform_api = "http://127.0.0.1:9/api/v2/".parse().unwrap();
    custom.result_path_template = "/exports/{design_system_id}/{job_id}".into();
    let dl = Downloader::new(custom).unwrap();
    assert_eq!(
        dl.result_url(&event()).unwrap().as_str(),
        "http://127.0.0.1:9/api/v2/exports/2/6"
    );
}

#[test]
fn policies_that_cannot_work_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let api: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let refuse = |edit: &dyn Fn(&mut DownloadPolicy)| -> PolicyError {
        let mut p = policy(api, temp.path());
        edit(&mut p);
        Downloader::new(p).unwrap_err()
    };
    let e = refuse(&|p| p.insecure_hosts.clear());
    assert!(e.to_string().contains("plain http"), "{e}");
    let e = refuse(&|p| p.platform_api = "ftp://api.example.com/".parse().unwrap());
    assert!(e.to_string().contains("scheme"), "{e}");
    let e = refuse(&|p| p.download_hosts = vec!["*".into()]);
    assert!(e.to_string().contains("`*`"), "{e}");
    let e = refuse(&|p| p.result_path_template = "jobs/{jobId}".into());
    assert!(e.to_string().contains("result_path_template"), "{e}");
    let e = refuse(&|p| p.platform_api = "https://u:p@api.example.com/".parse().unwrap());
    assert!(e.to_string().contains("credentials"), "{e}");
    let e = refuse(&|p| p.platform_token = Some(SecretString::from("SECRETTOKEN\nX-Evil: 1")));
    assert!(e.to_string().contains("platform token"), "{e}");
    assert!(!e.to_string().contains("SECRETTOKEN"), "{e}");

    // The Debug of a downloader shows whether there is a token, not the token.
    let dl = Downloader::new(policy(api, temp.path())).unwrap();
    let shown = format!("{dl:?}");
    assert!(
        shown.contains("has_token: true") && !shown.contains(PAT),
        "{shown}"
    );
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A figure, not a check run by default: `cargo test -p courier-core --test download
/// -- --ignored --nocapture streaming`. Shows that a 256 MiB artifact goes to disk without
/// passing through memory (peak RSS grows by far less than the artifact).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run alone"]
async fn streaming_256_mib_keeps_memory_flat() {
    bounded(async {
        let (api, _) = server().await;
        let temp = tempfile::tempdir().unwrap();
        let mut policy = policy(api, temp.path());
        policy.limits.max_bytes = 1 << 30;
        policy.limits.total_timeout_secs = 25;
        let dl = Downloader::new(policy).unwrap();
        let before = peak_rss_kib();
        let started = std::time::Instant::now();
        let artifact = dl
            .fetch(&signed(format!("http://{api}/256mib")), &event())
            .await
            .unwrap();
        let took = started.elapsed();
        let grew = peak_rss_kib().saturating_sub(before);
        assert_eq!(artifact.len(), 256 << 20);
        assert_eq!(std::fs::metadata(artifact.path()).unwrap().len(), 256 << 20);
        println!(
            "256 MiB in {took:?} ({:.0} MiB/s), peak RSS grew by {} KiB",
            256.0 / took.as_secs_f64(),
            grew
        );
        assert!(grew < 64 << 10, "peak RSS grew by {grew} KiB");
    })
    .await;
}

#[tokio::test]
async fn an_expired_signed_url_is_re_resolved_through_the_result_endpoint() {
    bounded(async {
        let Fixture {
            api,
            seen,
            dl,
            temp,
        } = fixture().await;
        let job = event();
        // 403 on a signed URL fetched without the PAT: the signature has expired. With a
        // PAT, the job's result endpoint gives the artifact again.
        let artifact = dl
            .fetch(
                &signed(format!("http://{api}/403?X-Amz-Signature=secret")),
                &job,
            )
            .await
            .unwrap();
        assert_eq!(std::fs::read(artifact.path()).unwrap(), ZIP);
        assert_eq!(seen.auth("/403"), vec![None], "the signed URL gets no PAT");
        let result = dl.result_url(&job).unwrap();
        assert_eq!(
            seen.auth(result.path()),
            vec![Some(format!("Bearer {PAT}"))],
            "the result endpoint is asked once, with the PAT"
        );
        drop(artifact);

        // Without a PAT there is nothing to re-resolve with: the error says what happened,
        // without the signature.
        let mut no_pat = policy(api, temp.path());
        no_pat.platform_token = None;
        let dl = Downloader::new(no_pat).unwrap();
        let err = dl
            .fetch(
                &signed(format!("http://{api}/403?X-Amz-Signature=secret")),
                &job,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, DownloadError::Expired { .. }), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("secret"));
        assert_eq!(seen.count("/403"), 2);
        assert_eq!(seen.count(result.path()), 1, "no second re-resolution");
    })
    .await;
}

fn job_with_id(id: &str) -> JobEvent {
    let mut job = event();
    job.job.id = id.to_owned();
    job
}

#[tokio::test]
async fn verifying_a_job_asks_the_platform_with_the_pat() {
    bounded(async {
        let Fixture { seen, dl, .. } = fixture().await;
        let job = job_with_id("42");
        assert_eq!(dl.verify_job(&job).await.unwrap(), JobCheck::Confirmed);
        let path = format!("/api/v2/codegen/workspaces/{}/jobs/42", job.workspace.id);
        assert_eq!(seen.auth(&path), vec![Some(format!("Bearer {PAT}"))]);

        let check = dl.verify_job(&job_with_id("missing")).await.unwrap();
        assert_eq!(check, JobCheck::Unknown);
        assert!(check.refusal().unwrap().contains("does not know"));

        let check = dl.verify_job(&job_with_id("running")).await.unwrap();
        assert_eq!(
            check,
            JobCheck::StatusDiffers {
                platform: "InProgress".into(),
                event: "Success".into()
            }
        );
        assert!(check.refusal().unwrap().contains("`InProgress`"));

        // A passing 502 is retried; an API that stays down, or answers without a status,
        // is an error to retry later, never a refusal of a genuine job.
        assert_eq!(
            dl.verify_job(&job_with_id("flaky")).await.unwrap(),
            JobCheck::Confirmed
        );
        let down = dl.verify_job(&job_with_id("down")).await.unwrap_err();
        assert!(down.is_transient(), "{down:?}");
        let shapeless = dl.verify_job(&job_with_id("shapeless")).await.unwrap_err();
        assert!(shapeless.to_string().contains("no status"), "{shapeless}");
        // A PAT the platform refuses is not a refusal of the job either: a person must act.
        let forbidden = dl.verify_job(&job_with_id("forbidden")).await.unwrap_err();
        assert!(
            matches!(forbidden, DownloadError::Http { status: 403, .. }),
            "{forbidden:?}"
        );
        assert!(!forbidden.is_transient());
    })
    .await;
}
