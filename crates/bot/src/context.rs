//! What a running Courier shares between its HTTP server and its workers: the
//! configuration, the store, the metrics and the signal that new work is queued. It lives
//! here, beside both, so that neither reaches into the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use courier_core::config::Config;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::store::Store;

/// One `Arc`, cloned into every request handler and worker.
#[derive(Clone)]
pub struct Context(Arc<Shared>);

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Woken when intake queues new deliveries, so idle workers claim them at once.
    pub work_available: Arc<Notify>,
    /// Set while the worker pool runs; `/readyz` reports it.
    pub workers_running: AtomicBool,
}

impl std::ops::Deref for Context {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Context {
    pub fn new(config: Arc<Config>, store: Store) -> Context {
        Context::with_metrics(config, store, Metrics::new())
    }

    pub fn with_metrics(config: Arc<Config>, store: Store, metrics: Metrics) -> Context {
        Context(Arc::new(Shared {
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
