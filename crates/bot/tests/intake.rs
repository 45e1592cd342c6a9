//! The HTTP surface through the real router (`create_app` + `tower::ServiceExt::oneshot`)
//! on a real SQLite store in a temporary directory: authentication, limits, parsing,
//! deduplication, health, metrics and the operations API.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use courier::server::ui::Dashboard;
use courier::server::{AppState, MAX_BODY_BYTES, create_app};
use courier::store::{DeliveryId, JobId, Routing, Store};
use courier_core::config::{Config, Store as StoreConfig};
use serde_json::Value;
use tower::ServiceExt as _;

const HOOK_TOKEN: &str = "webhook-token-0123456789";
const ROTATED_TOKEN: &str = "webhook-token-rotated-987654";
const ADMIN_TOKEN: &str = "admin-token-abcdef012345";
const SEED_V1: &str = include_str!("../../../tests/fixtures/payloads/v1-seed.json");

/// Every test is bounded: a hung request fails instead of stalling the suite.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

struct App {
    router: Router,
    state: AppState,
    _dir: tempfile::TempDir,
}

fn config_yaml(extra_webhook: &str, admin: bool) -> String {
    format!(
        r#"
listen: 127.0.0.1:8080
webhook:
  tokens: ["{HOOK_TOKEN}", "{ROTATED_TOKEN}"]
{extra_webhook}
{admin}
connections:
  server: {{ kind: git }}
hooks:
  - match: {{ hook_id: "5" }}
    targets:
      - connection: server
        repository: "https://git.example.com/web.git"
        branch: main
"#,
        admin = if admin {
            format!("admin: {{ tokens: [\"{ADMIN_TOKEN}\"] }}")
        } else {
            String::new()
        }
    )
}

async fn app_with(yaml: &str) -> App {
    let dir = tempfile::tempdir().unwrap();
    let config =
        Config::from_yaml_str(yaml, "config.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&StoreConfig::Sqlite {
        path: dir.path().join("courier.db"),
    })
    .await
    .unwrap();
    let state = AppState::new(Arc::new(config), store);
    App {
        // Offered the dashboard as `serve` does; it is mounted only with `admin.tokens`.
        router: create_app(
            state.clone(),
            Some(Dashboard::load(dir.path(), ([127, 0, 0, 1], 8080).into()).unwrap()),
        ),
        state,
        _dir: dir,
    }
}

async fn app() -> App {
    app_with(&config_yaml("", true)).await
}

/// The seed payload with another platform job id (and optionally status).
fn payload(job_id: &str, status: &str) -> String {
    let body = SEED_V1
        .replace("\"id\": \"6\"", &format!("\"id\": \"{job_id}\""))
        .replace(
            "\"status\": \"Success\"",
            &format!("\"status\": \"{status}\""),
        );
    assert!(body.contains(job_id) && body.contains(status));
    body
}

impl App {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
        let response = tokio::time::timeout(TEST_TIMEOUT, self.router.clone().oneshot(request))
            .await
            .expect("the request was answered in time")
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json, headers)
    }

    async fn post(&self, token: Option<&str>, body: impl Into<Body>) -> (StatusCode, Value) {
        let mut request =
            Request::post("/webhooks/supernova").header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let (status, json, _) = self.send(request.body(body.into()).unwrap()).await;
        (status, json)
    }

    async fn api(&self, method: &str, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let (status, json, _) = self.send(request.body(Body::empty()).unwrap()).await;
        (status, json)
    }
}

fn delivery_ids(answer: &Value) -> Vec<String> {
    answer["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("no deliveries in {answer}"))
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn webhook_authentication() {
    let app = app().await;

    let request = Request::post("/webhooks/supernova")
        .body(Body::from(payload("a1", "Success")))
        .unwrap();
    let (status, body, headers) = app.send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no header: {body}");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");

    let (status, _) = app
        .post(Some("webhook-token-wrong-0000"), payload("a1", "Success"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong token");

    // The admin token opens the API, never the webhook.
    let (status, _) = app.post(Some(ADMIN_TOKEN), payload("a1", "Success")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "admin token at the webhook"
    );

    let (status, answer) = app.post(Some(HOOK_TOKEN), payload("a1", "Success")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "accepted");
    assert_eq!(delivery_ids(&answer).len(), 1);

    // The second configured token works too (rotation).
    let (status, _) = app
        .post(Some(ROTATED_TOKEN), payload("a2", "Success"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "rotated token");

    // The token as the last path segment, for senders without headers.
    let request = Request::post(format!("/webhooks/supernova/{HOOK_TOKEN}"))
        .body(Body::from(payload("a3", "Success")))
        .unwrap();
    let (status, answer, _) = app.send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "path token: {answer}");
    let request = Request::post("/webhooks/supernova/not-a-token-at-all-000")
        .body(Body::from(payload("a4", "Success")))
        .unwrap();
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong path token");

    // Only the three accepted requests left a job.
    let (_, list) = app.api("GET", "/api/deliveries", Some(ADMIN_TOKEN)).await;
    let jobs: Vec<&str> = list["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(jobs.len(), 3, "{list}");
    for job in ["a1", "a2", "a3"] {
        assert!(jobs.contains(&job), "{jobs:?}");
    }

    // The webhook token does not open the API; no token does not either.
    let (status, _) = app.api("GET", "/api/deliveries", Some(HOOK_TOKEN)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.api("GET", "/api/deliveries", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_is_off_without_admin_tokens() {
    let app = app_with(&config_yaml("", false)).await;
    let (status, body) = app.api("GET", "/api/deliveries", Some(HOOK_TOKEN)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("admin.tokens"),
        "{body}"
    );
    // Nor is there a dashboard: it signs in with the admin tokens.
    for path in ["/", "/ui/", "/ui/sign-in"] {
        let (status, _) = app.api("GET", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = app_with(&config_yaml("", true))
        .await
        .api("GET", "/ui/sign-in", None)
        .await;
    assert_eq!(status, StatusCode::OK, "with admin tokens");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused() {
    let app = app().await;
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let (status, _) = app.post(Some(HOOK_TOKEN), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, answer) = app
        .post(
            Some(HOOK_TOKEN),
            r#"{"event":"job:updated","workspace":{"id":"1","name":"w"},"designSystem":{"id":[]}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "invalid payload");
    let path = answer["path"].as_str().unwrap();
    assert!(path.contains("designSystem"), "the JSON path: {answer}");

    let (status, answer) = app.post(Some(HOOK_TOKEN), "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));

    let (_, list) = app.api("GET", "/api/deliveries", Some(ADMIN_TOKEN)).await;
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn other_events_are_ignored_and_failed_jobs_queued_to_be_reported() {
    let app = app().await;
    let other = SEED_V1.replace("job:updated", "design_system:updated");
    let (status, answer) = app.post(Some(HOOK_TOKEN), other).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "ignored");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("design_system:updated")
    );

    // A job that ended without success gets a delivery per target, which tells the
    // target's open pull request.
    let (status, answer) = app.post(Some(HOOK_TOKEN), payload("f1", "Failed")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(delivery_ids(&answer).len(), 1, "{answer}");
    let job: JobId = answer["job"].as_str().unwrap().parse().unwrap();
    let detail = app
        .state
        .store
        .get_job(&job)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(detail.job.status, "Failed");
    assert!(!detail.job.ignored);
    assert_eq!(detail.deliveries.len(), 1);

    // One still in progress is recorded only.
    let (status, answer) = app
        .post(Some(HOOK_TOKEN), payload("p1", "InProgress"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert!(delivery_ids(&answer).is_empty(), "{answer}");
    let job: JobId = answer["job"].as_str().unwrap().parse().unwrap();
    let detail = app
        .state
        .store
        .get_job(&job)
        .await
        .unwrap()
        .expect("recorded");
    assert!(detail.job.ignored);
    assert!(detail.deliveries.is_empty());
}

#[tokio::test]
async fn allowlists_refuse_and_record() {
    let app = app_with(&config_yaml("  allowed_workspaces: [\"99\"]", true)).await;
    let (status, answer) = app.post(Some(HOOK_TOKEN), payload("w1", "Success")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("allowed_workspaces")
    );
    let job: JobId = answer["job"].as_str().unwrap().parse().unwrap();
    let detail = app
        .state
        .store
        .get_job(&job)
        .await
        .unwrap()
        .expect("recorded");
    assert!(detail.deliveries.is_empty());
    match &detail.job.routing {
        Routing::Unrouted { reason } => assert!(reason.contains("workspace 1"), "{reason}"),
        other => panic!("expected unrouted, got {other:?}"),
    }
}

#[tokio::test]
async fn the_same_job_twice_is_one_job() {
    let app = app().await;
    let (first_status, first) = app.post(Some(HOOK_TOKEN), payload("d1", "Success")).await;
    let (second_status, second) = app.post(Some(HOOK_TOKEN), payload("d1", "Success")).await;
    assert_eq!(first_status, StatusCode::ACCEPTED);
    assert_eq!(second_status, StatusCode::OK);
    assert_eq!(second["status"], "duplicate");
    assert_eq!(first["job"], second["job"]);
    assert_eq!(delivery_ids(&first), delivery_ids(&second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_copies_make_one_job() {
    let app = Arc::new(app().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let app = app.clone();
        tasks.spawn(async move { app.post(Some(HOOK_TOKEN), payload("c1", "Success")).await });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    let accepted = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    let duplicates = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((accepted, duplicates), (1, 49));
    let job = &answers[0].1["job"];
    let deliveries = delivery_ids(&answers[0].1);
    for (_, answer) in &answers {
        assert_eq!(&answer["job"], job);
        assert_eq!(delivery_ids(answer), deliveries);
    }
    let (_, list) = app.api("GET", "/api/deliveries", Some(ADMIN_TOKEN)).await;
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = app().await;
    let (status, _) = app.api("GET", "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app.api("GET", "/readyz", None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no workers yet: {body}"
    );
    assert_eq!(body["workers"], "stopped");
    assert_eq!(body["store"], "ok");
    app.state.set_workers_running(true);
    let (status, body) = app.api("GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");

    app.post(Some(HOOK_TOKEN), payload("m1", "Success")).await;
    app.post(Some(HOOK_TOKEN), payload("m1", "Success")).await;
    app.post(Some("nope-nope-nope-nope-nope"), payload("m2", "Success"))
        .await;
    let (status, text) = app.api("GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(
        text.contains("courier_webhooks_total{result=\"accepted\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("courier_webhooks_total{result=\"duplicate\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("courier_webhooks_total{result=\"unauthorized\"} 1"),
        "{text}"
    );
    assert!(text.contains("courier_queue_depth 1"), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn the_deliveries_api_lists_pages_shows_and_retries() {
    let app = app().await;
    let mut ids = Vec::new();
    for job in ["p1", "p2", "p3"] {
        let (_, answer) = app.post(Some(HOOK_TOKEN), payload(job, "Success")).await;
        ids.extend(delivery_ids(&answer));
    }
    assert_eq!(ids.len(), 3);

    let (status, page1) = app
        .api("GET", "/api/deliveries?limit=2", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK);
    let page1_ids: Vec<&str> = page1["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(page1_ids.len(), 2);
    let next = page1["next"].as_str().expect("a next cursor");
    let (_, page2) = app
        .api(
            "GET",
            &format!("/api/deliveries?limit=2&after={next}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    let page2_ids: Vec<&str> = page2["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(page2_ids.len(), 1, "{page2}");
    assert!(page2["next"].is_null());
    let mut all: Vec<String> = page1_ids
        .iter()
        .chain(&page2_ids)
        .map(|s| s.to_string())
        .collect();
    all.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(all, expected, "the pages cover every delivery once");

    // Finish one as failed through the store, as a worker would.
    let claimed = app
        .state
        .store
        .claim("test-worker", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a due delivery");
    let failed_id = claimed.delivery.id.clone();
    app.state
        .store
        .fail(&failed_id, "test-worker", "boom for the test")
        .await
        .unwrap();

    let (_, failed) = app
        .api("GET", "/api/deliveries?state=failed", Some(ADMIN_TOKEN))
        .await;
    let failed_list = failed["deliveries"].as_array().unwrap();
    assert_eq!(failed_list.len(), 1);
    assert_eq!(failed_list[0]["id"], failed_id.as_str());
    assert_eq!(failed_list[0]["last_error"], "boom for the test");
    // The three exports go to one branch: claiming took the newest and superseded the
    // two older ones (each export is a full snapshot).
    assert_eq!(failed_id.as_str(), ids[2]);
    let (_, superseded) = app
        .api("GET", "/api/deliveries?state=superseded", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(superseded["deliveries"].as_array().unwrap().len(), 2);
    let (_, queued) = app
        .api("GET", "/api/deliveries?state=queued", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(queued["deliveries"].as_array().unwrap().len(), 0);
    let (status, _) = app
        .api("GET", "/api/deliveries?state=nonsense", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, detail) = app
        .api(
            "GET",
            &format!("/api/deliveries/{failed_id}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["delivery"]["id"], failed_id.as_str());
    assert_eq!(detail["delivery"]["state"], "failed");
    assert_eq!(detail["job"]["job_id"], claimed.job.job_id.as_str());
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1);
    let (status, _) = app
        .api("GET", "/api/deliveries/NOT-AN-ID", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Retry needs the admin token, and puts the delivery back in the queue.
    let retry = format!("/api/deliveries/{failed_id}/retry");
    let (status, _) = app.api("POST", &retry, Some(HOOK_TOKEN)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, view) = app.api("POST", &retry, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    assert_eq!(view["state"], "queued");
    let id: DeliveryId = failed_id.as_str().parse().unwrap();
    let stored = app.state.store.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(stored.delivery.state.as_str(), "queued");
}
