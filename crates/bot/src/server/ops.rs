//! Health, readiness and metrics.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use courier_core::config::Store as StoreConfig;
use secrecy::ExposeSecret as _;
use serde_json::json;

use super::AppState;
use crate::store::Backend;

/// How long a probe waits for the store. A probe must answer promptly (load balancers give
/// up after a second or two), and a store slower than this is as good as down to it. The
/// pool's own acquire timeout is far longer, so it is not what bounds a probe.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The process is up and serving HTTP.
pub async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
}

/// The store answers and the workers run: the replica can take traffic and work.
///
/// Also says which replica answered and which store it uses (backend, whether it answered
/// and how fast), so an operator behind a load balancer can tell replicas apart and spot
/// the one that cannot reach the database. Never the store's URL: it may hold a password.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let store = match tokio::time::timeout(STORE_PROBE_TIMEOUT, state.store.ping()).await {
        Ok(answer) => answer.map_err(|e| redact(&e.to_string(), &state.config.store)),
        Err(_) => Err(format!(
            "unreachable: no answer within {} ms",
            STORE_PROBE_TIMEOUT.as_millis()
        )),
    };
    let store_ms = started.elapsed().as_secs_f64() * 1000.0;
    let workers = state.workers_running.load(Ordering::SeqCst);
    let ready = store.is_ok() && workers;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "replica": state.metrics.replica(),
        "version": env!("CARGO_PKG_VERSION"),
        "store": match &store {
            Ok(()) => "ok",
            Err(e) => e.as_str(),
        },
        "backend": match state.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        "store_ms": (store_ms * 10.0).round() / 10.0,
        "workers": if workers { "running" } else { "stopped" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `message` with the store URL's password (raw or percent-encoded) masked. Database
/// drivers do not normally echo the URL, but a readiness endpoint is often public inside
/// a cluster, so this does not rely on it.
fn redact(message: &str, store: &StoreConfig) -> String {
    let StoreConfig::Postgres { url } = store else {
        return message.to_owned();
    };
    let Ok(parsed) = url::Url::parse(url.expose_secret()) else {
        return message.to_owned();
    };
    let Some(encoded) = parsed.password().filter(|p| !p.is_empty()) else {
        return message.to_owned();
    };
    let mut out = message.replace(encoded, "***");
    if let Ok(decoded) = percent_encoding::percent_decode_str(encoded).decode_utf8()
        && !decoded.is_empty()
    {
        out = out.replace(decoded.as_ref(), "***");
    }
    out
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let store = &state.store;
    let mut gauges = Vec::new();
    // The queue gauges come from the store; a store that does not answer in time leaves
    // them out rather than holding the scrape.
    let depth = tokio::time::timeout(STORE_PROBE_TIMEOUT, store.queue_depth())
        .await
        .ok()
        .and_then(Result::ok);
    let oldest = tokio::time::timeout(STORE_PROBE_TIMEOUT, store.oldest_queued_age())
        .await
        .ok()
        .and_then(Result::ok);
    if let Some(depth) = depth {
        gauges.push((
            "queue_depth",
            "Deliveries waiting (queued or retrying)",
            depth as f64,
        ));
    }
    if let Some(oldest) = oldest {
        gauges.push((
            "oldest_queued_age_seconds",
            "Age of the oldest waiting delivery (0 when none)",
            oldest.map_or(0.0, |d| d.as_secs_f64()),
        ));
    }
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

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn the_store_password_never_reaches_the_readiness_report() {
        let store = StoreConfig::Postgres {
            url: SecretString::from("postgres://courier:p%40ss%2Fw0rd@db:5432/courier"),
        };
        let text = redact(
            "connection to p@ss/w0rd failed (p%40ss%2Fw0rd); courier@db refused",
            &store,
        );
        assert_eq!(text, "connection to *** failed (***); courier@db refused");
        let sqlite = StoreConfig::Sqlite {
            path: "/var/lib/courier/courier.db".into(),
        };
        assert_eq!(redact("disk I/O error", &sqlite), "disk I/O error");
    }
}
