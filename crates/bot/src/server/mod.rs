//! The HTTP server: webhook intake, health, metrics, the operations API and the dashboard.
//!
//! Nothing slow happens in a request: intake authenticates, parses, routes (in memory),
//! commits the job to the store and answers; downloads, git and provider calls belong to
//! the workers.

mod api;
mod auth;
mod intake;
mod ops;
pub mod ui;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use crate::context::Context;

/// The largest webhook body accepted; the platform's events are a few kilobytes, and
/// first-version events with inline logs stay well under this.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long one request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once; beyond that, callers wait in the listener's backlog.
pub const MAX_CONCURRENT_REQUESTS: usize = 512;

/// The server's state is the running instance's [`Context`]; the name stays for handlers.
pub type AppState = Context;

/// The whole HTTP surface as a router, for the server and for tests (`oneshot`). The
/// dashboard is mounted when given and `admin.tokens` is configured (it signs in with them).
pub fn create_app(state: AppState, dashboard: Option<ui::Dashboard>) -> Router {
    let router = Router::new()
        .route("/webhooks/supernova", post(intake::webhook))
        // For senders that cannot set headers: the token is the last path segment.
        // This route's path is never logged (see `intake`).
        .route(
            "/webhooks/supernova/{token}",
            post(intake::webhook_with_path_token),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/deliveries", get(api::list_deliveries))
        .route("/api/deliveries/{id}", get(api::get_delivery))
        .route("/api/deliveries/{id}/retry", post(api::retry_delivery));
    let router = match dashboard {
        Some(dashboard) if state.config.admin.is_some() => router.merge(ui::router(dashboard)),
        _ => router,
    };
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(ConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
        .with_state(state)
}
