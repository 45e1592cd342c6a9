//! The HTTP server: webhook intake, health, metrics and the operations API.
//!
//! Nothing slow happens in a request: intake authenticates, parses, routes (in memory),
//! commits the job to the store and answers; downloads, git and provider calls belong to
//! the workers.

mod api;
mod auth;
mod intake;
mod metrics;
mod ops;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use courier_core::config::Config;
use tokio::sync::Notify;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use metrics::Metrics;

use crate::store::Store;

/// The largest webhook body accepted; the platform's events are a few kilobytes, and
/// first-version events with inline logs stay well under this.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long one request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once; beyond that, callers wait in the listener's backlog.
pub const MAX_CONCURRENT_REQUESTS: usize = 512;

/// What every handler shares: one `Arc`, since axum clones the state for every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Woken when intake queues new deliveries, so idle workers claim them at once.
    pub work_available: Arc<Notify>,
    /// Set while the worker pool runs; `/readyz` reports it.
    pub workers_running: AtomicBool,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(config: Arc<Config>, store: Store) -> AppState {
        AppState::with_metrics(config, store, Metrics::new())
    }

    pub fn with_metrics(config: Arc<Config>, store: Store, metrics: Metrics) -> AppState {
        AppState(Arc::new(Shared {
            config,
            store,
            metrics: Arc::new(metrics),
            work_available: Arc::new(Notify::new()),
            workers_running: AtomicBool::new(false),
        }))
    }

    pub fn set_workers_running(&self, running: bool) {
        self.workers_running.store(running, Ordering::SeqCst);
    }
}

/// The whole HTTP surface as a router, for the server and for tests (`oneshot`).
pub fn create_app(state: AppState) -> Router {
    Router::new()
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
        .route("/api/deliveries/{id}/retry", post(api::retry_delivery))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(ConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
        .with_state(state)
}
