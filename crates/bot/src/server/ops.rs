//! Health, readiness and metrics.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
}

/// The store answers and the workers run: the replica can take traffic and work.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.ping().await;
    let workers = state.workers_running.load(Ordering::SeqCst);
    let ready = store.is_ok() && workers;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": match &store { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
        "backend": format!("{:?}", state.store.backend()).to_lowercase(),
        "workers": if workers { "running" } else { "stopped" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let store = &state.store;
    let mut gauges = Vec::new();
    let depth = store.queue_depth().await.ok();
    let oldest = store.oldest_queued_age().await.ok().flatten();
    if let Some(depth) = depth {
        gauges.push((
            "queue_depth",
            "Deliveries waiting (queued or retrying)",
            depth as f64,
        ));
    }
    gauges.push((
        "oldest_queued_age_seconds",
        "Age of the oldest waiting delivery (0 when none)",
        oldest.map_or(0.0, |d| d.as_secs_f64()),
    ));
    let text = state.metrics.render(&gauges);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
