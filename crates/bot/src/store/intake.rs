//! Recording jobs, with group commit.
//!
//! One synced commit per webhook caps intake at the disk's sync rate. Instead every
//! `insert_job` goes to one writer task; while it commits a batch, new requests queue up,
//! and the next batch takes all of them (up to [`MAX_BATCH`]) into one transaction. Each
//! item runs inside its own savepoint, so an item that fails is rolled back alone and its
//! caller gets the error while the rest commit. Nobody is answered before the commit.

use std::collections::HashSet;

use sqlx::{Acquire, Any, AnyPool, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{
    Backend, DeliveryId, Inserted, JobId, MAX_BATCH, NewJob, Store, StoreError, Timestamp,
};

pub(super) struct Request {
    job: NewJob,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

impl Store {
    /// Records a job and its deliveries, durably, before returning.
    ///
    /// The same `(workspace_id, job_id)` again creates nothing and returns the existing
    /// ids with `duplicate: true` — also when the copies arrive concurrently, on any
    /// replica. One exception: if the recorded copy was `ignored` (not deliverable, e.g.
    /// `InProgress`) and this one is not, the record is upgraded to this copy (status,
    /// body, routing) and its deliveries are created (`duplicate: false`).
    ///
    /// Goes through the group-commit writer (see the module documentation).
    pub async fn insert_job(&self, job: NewJob) -> Result<Inserted, StoreError> {
        validate(&job)?;
        let (reply, answer) = oneshot::channel();
        self.inner
            .intake
            .send(Request { job, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Store::insert_job`] in a transaction of its own, bypassing the group-commit
    /// writer: one synced commit per call. For tools and for comparison in benchmarks.
    pub async fn insert_job_unbatched(&self, job: NewJob) -> Result<Inserted, StoreError> {
        validate(&job)?;
        let mut tx = self.pool().begin_with(self.backend().begin_write()).await?;
        let inserted = insert_one(&mut tx, &job, Timestamp::now()).await?;
        tx.commit().await?;
        Ok(inserted)
    }
}

fn validate(job: &NewJob) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidJob {
        workspace_id: job.workspace_id.clone(),
        job_id: job.job_id.clone(),
        reason,
    };
    if job.ignored && !job.deliveries.is_empty() {
        return Err(invalid("an ignored job cannot have deliveries".to_owned()));
    }
    let mut keys = HashSet::new();
    for d in &job.deliveries {
        if !keys.insert(d.target_key.as_str()) {
            return Err(invalid(format!("target `{}` appears twice", d.target_key)));
        }
        if d.repository.contains('\n') || d.head_branch.contains('\n') {
            return Err(invalid(format!(
                "target `{}` has a line break in its repository or branch",
                d.target_key
            )));
        }
    }
    Ok(())
}

/// The writer task: runs until every `Store` clone is gone.
pub(super) async fn run_writer(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A caller that gave up (its request timed out) still gets its job recorded: the
        // platform will send it again and find it.
        match commit_batch(&pool, backend, &batch).await {
            Ok(results) => {
                for (request, result) in batch.drain(..).zip(results) {
                    let _ = request.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, items = batch.len(), "intake batch failed to commit");
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One transaction for the whole batch; per item a savepoint. The outer error is for a
/// failure of the transaction itself (begin or commit), which fails every item.
async fn commit_batch(
    pool: &AnyPool,
    backend: Backend,
    batch: &[Request],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let now = Timestamp::now();
    let mut tx = pool.begin_with(backend.begin_write()).await?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        // `Transaction::begin` on a transaction is a savepoint in sqlx.
        let mut item = tx.begin().await?;
        match insert_one(&mut item, &request.job, now).await {
            Ok(inserted) => {
                item.commit().await?;
                results.push(Ok(inserted));
            }
            Err(e) => {
                item.rollback().await?;
                results.push(Err(e));
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

async fn insert_one(
    tx: &mut Transaction<'_, Any>,
    job: &NewJob,
    now: Timestamp,
) -> Result<Inserted, StoreError> {
    let id = JobId::generate();
    let created: Option<String> = sqlx::query_scalar(
        "INSERT INTO jobs (id, workspace_id, job_id, hook_id, design_system_id, status, \
         ignored, routing, routing_reason, body, received_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
         ON CONFLICT (workspace_id, job_id) DO NOTHING RETURNING id",
    )
    .bind(id.as_str())
    .bind(&job.workspace_id)
    .bind(&job.job_id)
    .bind(&job.hook_id)
    .bind(&job.design_system_id)
    .bind(&job.status)
    .bind(i64::from(job.ignored))
    .bind(job.routing.kind())
    .bind(job.routing.reason())
    .bind(&job.body)
    .bind(now.as_millis())
    .fetch_optional(&mut **tx)
    .await?;
    if created.is_some() {
        let deliveries = insert_deliveries(tx, &id, job, now).await?;
        return Ok(Inserted {
            job: id,
            deliveries,
            duplicate: false,
        });
    }

    // Already recorded. Under concurrency on PostgreSQL the insert above waited for the
    // other transaction and this statement sees its committed row.
    let row = sqlx::query("SELECT id FROM jobs WHERE workspace_id = $1 AND job_id = $2")
        .bind(&job.workspace_id)
        .bind(&job.job_id)
        .fetch_one(&mut **tx)
        .await?;
    let existing = JobId::from_db(row.try_get("id")?);
    if !job.ignored {
        // Upgrade an ignored record; the `ignored = 1` condition makes exactly one of
        // several concurrent upgraders win (the others see 0 rows once it commits).
        let upgraded = sqlx::query(
            "UPDATE jobs SET status = $2, ignored = 0, routing = $3, routing_reason = $4, \
             body = $5, hook_id = $6, design_system_id = $7, updated_at = $8 \
             WHERE id = $1 AND ignored = 1",
        )
        .bind(existing.as_str())
        .bind(&job.status)
        .bind(job.routing.kind())
        .bind(job.routing.reason())
        .bind(&job.body)
        .bind(&job.hook_id)
        .bind(&job.design_system_id)
        .bind(now.as_millis())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if upgraded == 1 {
            let deliveries = insert_deliveries(tx, &existing, job, now).await?;
            return Ok(Inserted {
                job: existing,
                deliveries,
                duplicate: false,
            });
        }
    }
    let deliveries: Vec<String> =
        sqlx::query_scalar("SELECT id FROM deliveries WHERE job_ref = $1 ORDER BY id")
            .bind(existing.as_str())
            .fetch_all(&mut **tx)
            .await?;
    Ok(Inserted {
        job: existing,
        deliveries: deliveries.into_iter().map(DeliveryId::from_db).collect(),
        duplicate: true,
    })
}

async fn insert_deliveries(
    tx: &mut Transaction<'_, Any>,
    job_ref: &JobId,
    job: &NewJob,
    now: Timestamp,
) -> Result<Vec<DeliveryId>, StoreError> {
    let mut ids = Vec::with_capacity(job.deliveries.len());
    for d in &job.deliveries {
        let id = DeliveryId::generate();
        sqlx::query(
            "INSERT INTO deliveries (id, job_ref, target_key, hook_id, repository, head_branch, \
             serial_key, state, attempts, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8)",
        )
        .bind(id.as_str())
        .bind(job_ref.as_str())
        .bind(&d.target_key)
        .bind(&d.hook_id)
        .bind(&d.repository)
        .bind(&d.head_branch)
        .bind(format!("{}\n{}", d.repository, d.head_branch))
        .bind(now.as_millis())
        .execute(&mut **tx)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}
