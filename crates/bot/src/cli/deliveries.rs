//! `courier deliveries` and `courier replay`: read and requeue deliveries in the store,
//! without a running server (the store is shared, so a running server picks up a replay).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use super::Exit;
use crate::store::{
    DeliveryFilter, DeliveryId, DeliveryState, DeliveryView, JobId, Page, Store, StoreError,
};

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// The configuration file (YAML); its `store` is read.
    #[arg(long, short, env = "COURIER_CONFIG")]
    pub config: PathBuf,
    /// Only deliveries in this state (queued, running, retrying, delivered, no_changes,
    /// up_to_date, branch_diverged, commented, no_open_pull_request, skipped, failed,
    /// superseded).
    #[arg(long)]
    pub state: Option<DeliveryState>,
    /// Only deliveries of this hook id.
    #[arg(long)]
    pub hook: Option<String>,
    /// Only deliveries to this repository (as configured on the target).
    #[arg(long)]
    pub repository: Option<String>,
    /// Only deliveries through this connection (a key of `connections`).
    #[arg(long)]
    pub connection: Option<String>,
    /// Only deliveries of this job (the platform's job id).
    #[arg(long)]
    pub job: Option<String>,
    /// Only deliveries with this text in their repository, branch, target, hook, job id,
    /// connection, last error, or design system, version or exporter name (any case).
    #[arg(long)]
    pub search: Option<String>,
    /// Most deliveries to list, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print JSON (an array) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The configuration file (YAML); its `store` is used.
    #[arg(long, short, env = "COURIER_CONFIG")]
    pub config: PathBuf,
    /// A delivery id (requeues that delivery) or a job id (requeues every delivery of
    /// the job that is not running).
    pub id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

async fn open(config: &Path) -> anyhow::Result<Option<Store>> {
    let Ok(config) = super::load_config(config) else {
        return Ok(None);
    };
    Ok(Some(
        Store::open(&config.store)
            .await
            .context("opening the store")?,
    ))
}

pub async fn list(args: &DeliveriesArgs) -> anyhow::Result<Exit> {
    let Some(store) = open(&args.config).await? else {
        return Ok(Exit::Invalid);
    };
    let filter = DeliveryFilter {
        state: args.state,
        hook_id: args.hook.clone(),
        repository: args.repository.clone(),
        connection: args.connection.clone(),
        job_id: args.job.clone(),
        text: args.search.clone(),
    };
    let page = Page {
        limit: args.limit.max(1),
        after: None,
    };
    let deliveries = store
        .list_deliveries(&filter, &page)
        .await
        .context("listing deliveries")?;
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&deliveries)?);
    } else {
        print_table(&deliveries);
    }
    Ok(Exit::Success)
}

fn print_table(deliveries: &[DeliveryView]) {
    if deliveries.is_empty() {
        println!("no deliveries");
        return;
    }
    println!(
        "{:<26}  {:<15}  {:>3}  {:<10}  {:<10}  REPOSITORY / BRANCH",
        "DELIVERY", "STATE", "TRY", "JOB", "HOOK"
    );
    for d in deliveries {
        println!(
            "{:<26}  {:<15}  {:>3}  {:<10}  {:<10}  {} {}",
            d.id,
            d.state.as_str(),
            d.attempts,
            d.job_id,
            d.hook_id,
            d.repository,
            d.head_branch
        );
        if let Some(error) = &d.last_error {
            println!("{:28}{error}", "");
        }
    }
}

pub async fn replay(args: &ReplayArgs) -> anyhow::Result<Exit> {
    let Ok(id) = args.id.parse::<DeliveryId>() else {
        eprintln!("error: `{}` is not a delivery id or a job id", args.id);
        return Ok(Exit::Invalid);
    };
    let Some(store) = open(&args.config).await? else {
        return Ok(Exit::Invalid);
    };
    let result = requeue(&store, &id).await;
    store.close().await;
    let requeued = match result {
        Ok(requeued) => requeued,
        Err(err @ (StoreError::NoSuchDelivery(_) | StoreError::IllegalTransition { .. })) => {
            eprintln!("error: {err} (no delivery or job has this id)");
            return Ok(Exit::Invalid);
        }
        Err(err) => return Err(err).context("requeueing"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&requeued)?);
    } else {
        for d in &requeued {
            println!("{} {}", d.id, d.state.as_str());
        }
    }
    Ok(Exit::Success)
}

/// A delivery id first, then a job id: both are Courier ids of the same shape.
async fn requeue(store: &Store, id: &DeliveryId) -> Result<Vec<DeliveryView>, StoreError> {
    match store.requeue(id).await {
        Ok(view) => Ok(vec![view]),
        Err(StoreError::NoSuchDelivery(_)) => {
            let job: JobId = id
                .as_str()
                .parse()
                .map_err(|_| StoreError::NoSuchDelivery(id.clone()))?;
            match store.requeue_job(&job).await {
                Err(StoreError::NoSuchJob(_)) => Err(StoreError::NoSuchDelivery(id.clone())),
                other => other,
            }
        }
        Err(err) => Err(err),
    }
}
