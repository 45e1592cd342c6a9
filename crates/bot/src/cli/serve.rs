//! `courier serve`: the HTTP server and the worker pool over one store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use courier_providers::retry::RetryPolicy;

use super::Exit;
use crate::context::Context;
use crate::delivery::Deliverer;
use crate::metrics::Metrics;
use crate::server::create_app;
use crate::server::ui::Dashboard;
use crate::store::Store;
use crate::worker::{WorkerOptions, WorkerPool};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (YAML).
    #[arg(long, short, env = "COURIER_CONFIG")]
    pub config: PathBuf,
    /// Address to listen on, overriding the configuration's `listen` (port 0 picks a
    /// free port; the bound address is printed on startup).
    #[arg(long, env = "COURIER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Seconds a worker's claim on a delivery lasts without renewal; after a crash, the
    /// delivery runs again this long after its last renewal.
    #[arg(long, env = "COURIER_LEASE_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_seconds: u64,
    /// Seconds running deliveries get to finish on SIGTERM/SIGINT before they are
    /// abandoned (to run again once their leases expire).
    #[arg(long, env = "COURIER_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
    /// This replica's name in logs (`replica`), metrics (`courier_replica_info`),
    /// `/readyz` and the store's lease owners. Letters, digits, `.`, `_` and `-`, at most
    /// 64 characters; e.g. the pod name. Default: `<hostname>-<pid>`.
    #[arg(long, env = "COURIER_REPLICA_ID", value_parser = parse_replica_id)]
    pub replica_id: Option<String>,
}

/// The longest replica id: it goes into every lease owner and log line.
pub const MAX_REPLICA_ID: usize = 64;

/// A replica id fit for a Prometheus label, a log field and a lease owner.
fn parse_replica_id(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > MAX_REPLICA_ID {
        return Err(format!(
            "must be 1 to {MAX_REPLICA_ID} characters long, not {}",
            text.len()
        ));
    }
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(bad) => Err(format!(
            "{bad:?} is not allowed: use letters, digits, `.`, `_` and `-`"
        )),
        None => Ok(text.to_owned()),
    }
}

pub async fn run(args: &ServeArgs) -> anyhow::Result<Exit> {
    let replica = args
        .replica_id
        .clone()
        .unwrap_or_else(crate::worker::default_replica_id);
    crate::logging::set_replica(&replica);
    // After the replica is named: every line of a server carries it.
    match courier_providers::git::engine_settings() {
        Some(engine) => tracing::info!("git engine: {engine}"),
        None => tracing::warn!(
            "git engine: libgit2 was not configured by `main` (pack maps and socket timeout at libgit2's defaults)"
        ),
    }
    let config = match super::load_config(&args.config) {
        Ok(config) => Arc::new(config),
        Err(exit) => return Ok(exit),
    };
    let store = Store::open(&config.store)
        .await
        .context("opening the store")?;
    let context = Context::with_metrics(
        config.clone(),
        store.clone(),
        Metrics::for_replica(&replica),
    );
    // A worker waits out only short rate limits in place; a longer one requeues the
    // delivery for the time asked, leaving the worker free for other work.
    let retry = RetryPolicy {
        max_rate_limit_wait: Duration::from_secs(10),
        ..RetryPolicy::default()
    };
    let deliverer = Arc::new(
        Deliverer::new(config.clone())?
            .with_retry_policy(retry)
            .with_metrics(context.metrics.clone()),
    );
    let mut options = WorkerOptions::from_config(&config);
    options.lease = Duration::from_secs(args.lease_seconds);
    options.replica_id = replica.clone();
    let addr = args.listen.unwrap_or(config.listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;

    // The dashboard signs in with the admin tokens: without them it does not exist, and
    // no session key is made.
    let dashboard = match &config.admin {
        Some(_) => Some(
            Dashboard::load(&config.data_dir, bound)
                .context("loading the dashboard's session key")?,
        ),
        None => None,
    };

    let workers = WorkerPool::spawn(context.clone(), deliverer, options);
    // On stdout as well as in the log: scripts and tests that pass port 0 read it there,
    // whatever the log level.
    println!("listening on {bound}");
    tracing::info!(
        address = %bound,
        workers = config.workers,
        backend = ?store.backend(),
        "listening on {bound}"
    );

    let served = axum::serve(listener, create_app(context.clone(), dashboard))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    tracing::info!("stopping: no new requests; waiting for running deliveries");
    workers
        .shutdown(Duration::from_secs(args.shutdown_grace_seconds))
        .await;
    store.close().await;
    served.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(Exit::Success)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_ids_are_short_and_plain() {
        assert_eq!(
            parse_replica_id("courier-7f9c.eu_1").unwrap(),
            "courier-7f9c.eu_1"
        );
        assert!(parse_replica_id("").is_err());
        assert!(parse_replica_id(&"a".repeat(MAX_REPLICA_ID + 1)).is_err());
        let err = parse_replica_id("web 1").unwrap_err();
        assert!(err.contains("' '"), "{err}");
        assert!(parse_replica_id("web\"1\"").is_err());
    }
}
