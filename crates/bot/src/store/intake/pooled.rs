//! PostgreSQL's intake writer: a task on the sqlx pool (see the parent module).
//!
//! A batch is written with a handful of multi-row statements, not several per item: each
//! statement is a round trip to the server. Should any of them fail, the batch is rolled
//! back and recorded again item by item, each in its own savepoint, so the item at fault
//! fails alone.

use std::collections::{HashMap, HashSet};

use sqlx::{Acquire, Any, AnyPool, AssertSqlSafe, Row, Transaction};
use tokio::sync::mpsc;

use super::{Message, Request, serial_key, sql};
use crate::store::{
    Backend, DeliveryId, Inserted, JobId, MAX_BATCH, NewDelivery, NewJob, StoreError, Timestamp,
};

/// One job in a transaction of its own (see `Store::insert_job_unbatched`).
pub(super) async fn insert_unbatched(
    pool: &AnyPool,
    backend: Backend,
    job: &NewJob,
) -> Result<Inserted, StoreError> {
    let mut tx = pool.begin_with(backend.begin_write()).await?;
    let inserted = insert_one(&mut tx, job, Timestamp::now()).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// The writer task: runs until every `Store` clone is gone.
pub(in crate::store) async fn run_writer(
    pool: AnyPool,
    backend: Backend,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut messages = Vec::with_capacity(MAX_BATCH);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut messages, MAX_BATCH).await > 0 {
        let mut closing = None;
        for message in messages.drain(..) {
            match message {
                Message::Insert(request) => batch.push(*request),
                Message::Close(ack) => {
                    closing = Some(ack);
                    break;
                }
            }
        }
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
        if let Some(ack) = closing {
            let _ = ack.send(());
            return;
        }
    }
}

/// Commits a batch: first all of it with multi-row statements (a handful of statements
/// per batch, not several per item); if any statement fails, the transaction is rolled
/// back and the batch runs again item by item, each in a savepoint, so the item at fault
/// fails alone. The outer error is a failure of the transaction itself (begin or commit),
/// which fails every item.
async fn commit_batch(
    pool: &AnyPool,
    backend: Backend,
    batch: &[Request],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    match commit_batch_together(pool, backend, batch).await {
        Ok(results) => Ok(results),
        Err(e) => {
            tracing::warn!(error = %e, items = batch.len(), "intake batch failed; recording its items one by one");
            commit_batch_item_by_item(pool, backend, batch).await
        }
    }
}

/// Rows per multi-row `INSERT` (15 and 9 parameters a row: well under SQLite's 32,766
/// and PostgreSQL's 65,535 parameter limits).
const JOB_ROWS: usize = 64;
const DELIVERY_ROWS: usize = 128;
const KEY_ROWS: usize = 256;

/// `(workspace_id, job_id)` of a job, the deduplication key.
fn key(job: &NewJob) -> (&str, &str) {
    (&job.workspace_id, &job.job_id)
}

async fn commit_batch_together(
    pool: &AnyPool,
    backend: Backend,
    batch: &[Request],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let now = Timestamp::now();
    // Copies of one job inside the batch: the first is recorded, the rest answered as its
    // duplicates.
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let leader: Vec<usize> = batch
        .iter()
        .enumerate()
        .map(|(i, r)| *first_of.entry(key(&r.job)).or_insert(i))
        .collect();
    // Inserted in key order: two replicas' batches holding copies of the same jobs then
    // wait for each other in one order, never in a cycle.
    let mut unique: Vec<usize> = (0..batch.len()).filter(|&i| leader[i] == i).collect();
    unique.sort_by_key(|&i| key(&batch[i].job));
    let ids: Vec<JobId> = unique.iter().map(|_| JobId::generate()).collect();

    let mut tx = pool.begin_with(backend.begin_write()).await?;
    let mut created: HashSet<String> = HashSet::new();
    for (chunk, chunk_ids) in unique.chunks(JOB_ROWS).zip(ids.chunks(JOB_ROWS)) {
        let mut sql = String::from(
            "INSERT INTO jobs (id, workspace_id, job_id, hook_id, design_system_id, status, \
             ignored, routing, routing_reason, body, received_at, updated_at, \
             design_system_name, version_name, exporter_name) VALUES ",
        );
        let mut params = Placeholders::new(backend);
        for row in 0..chunk.len() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            params.list(&mut sql, 15);
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (workspace_id, job_id) DO NOTHING RETURNING id");
        // Only placeholders are generated; every value is bound.
        let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
        for (&i, id) in chunk.iter().zip(chunk_ids) {
            let job = &batch[i].job;
            query = query
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
                .bind(now.as_millis())
                .bind(&job.names.design_system)
                .bind(&job.names.version)
                .bind(&job.names.exporter);
        }
        created.extend(query.fetch_all(&mut *tx).await?);
    }

    let mut answers: Vec<Option<Inserted>> = vec![None; batch.len()];
    let id_of: HashMap<usize, &JobId> = unique.iter().copied().zip(&ids).collect();
    // Deliveries of new jobs, in arrival (batch) order.
    let mut fresh: Vec<(usize, &JobId, &NewDelivery)> = Vec::new();
    for i in 0..batch.len() {
        let Some(&id) = id_of.get(&i) else { continue };
        let job = &batch[i].job;
        if created.contains(id.as_str()) {
            fresh.extend(job.deliveries.iter().map(|d| (i, id, d)));
            answers[i] = Some(Inserted {
                job: id.clone(),
                deliveries: Vec::with_capacity(job.deliveries.len()),
                duplicate: false,
            });
        } else {
            answers[i] = Some(recorded_before(&mut tx, job, now).await?);
        }
    }
    let delivery_ids = assign_ids(&mut tx, fresh.iter().map(|(_, _, d)| serial_key(d))).await?;
    let mut new_deliveries: Vec<(&JobId, &NewDelivery, DeliveryId)> =
        Vec::with_capacity(fresh.len());
    for ((i, job, d), delivery) in fresh.into_iter().zip(delivery_ids) {
        if let Some(answer) = answers[i].as_mut() {
            answer.deliveries.push(delivery.clone());
        }
        new_deliveries.push((job, d, delivery));
    }
    for chunk in new_deliveries.chunks(DELIVERY_ROWS) {
        let mut sql = String::from(
            "INSERT INTO deliveries (id, job_ref, target_key, hook_id, repository, head_branch, \
             serial_key, state, attempts, created_at, connection) VALUES ",
        );
        let mut params = Placeholders::new(backend);
        for row in 0..chunk.len() {
            if row > 0 {
                sql.push_str(", ");
            }
            // `state` and `attempts` are constants, after the seventh value.
            sql.push('(');
            params.list(&mut sql, 7);
            sql.push_str(", 'queued', 0, ");
            params.list(&mut sql, 2);
            sql.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (job, d, id) in chunk {
            query = query
                .bind(id.as_str())
                .bind(job.as_str())
                .bind(&d.target_key)
                .bind(&d.hook_id)
                .bind(&d.repository)
                .bind(&d.head_branch)
                .bind(serial_key(d))
                .bind(now.as_millis())
                .bind(&d.connection);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;

    Ok((0..batch.len())
        .map(|i| {
            let mut answer = answers[leader[i]]
                .clone()
                .ok_or_else(|| StoreError::Corrupt("intake batch lost an answer".to_owned()))?;
            if leader[i] != i {
                answer.duplicate = true;
            }
            Ok(answer)
        })
        .collect())
}

async fn commit_batch_item_by_item(
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

/// Bind placeholders for generated multi-row statements. PostgreSQL numbers them (`$1`);
/// SQLite gets anonymous `?`s, bound in order: sqlx looks each SQLite parameter up by name,
/// and SQLite finds a name by walking a list of all of them, so hundreds of `$N` in one
/// statement cost time quadratic in their number (8% of intake's CPU in a profile).
struct Placeholders {
    backend: Backend,
    next: usize,
}

impl Placeholders {
    fn new(backend: Backend) -> Placeholders {
        Placeholders { backend, next: 1 }
    }

    /// `count` placeholders, separated by commas.
    fn list(&mut self, sql: &mut String, count: usize) {
        for n in 0..count {
            if n > 0 {
                sql.push_str(", ");
            }
            match self.backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&self.next.to_string());
                }
            }
            self.next += 1;
        }
    }
}

async fn insert_one(
    tx: &mut Transaction<'_, Any>,
    job: &NewJob,
    now: Timestamp,
) -> Result<Inserted, StoreError> {
    let id = JobId::generate();
    let created = sqlx::query(sql::INSERT_JOB)
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
        .bind(&job.names.design_system)
        .bind(&job.names.version)
        .bind(&job.names.exporter)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        == 1;
    if created {
        let deliveries = insert_deliveries(tx, &id, job, now).await?;
        return Ok(Inserted {
            job: id,
            deliveries,
            duplicate: false,
        });
    }
    recorded_before(tx, job, now).await
}

/// The answer for a job whose key is already recorded: the existing ids, or, when the
/// record was ignored and this copy is deliverable, the upgraded record.
async fn recorded_before(
    tx: &mut Transaction<'_, Any>,
    job: &NewJob,
    now: Timestamp,
) -> Result<Inserted, StoreError> {
    // Under concurrency on PostgreSQL the insert waited for the other transaction, and
    // this statement (a new snapshot) sees its committed row.
    let row = sqlx::query(sql::FIND_JOB)
        .bind(&job.workspace_id)
        .bind(&job.job_id)
        .fetch_one(&mut **tx)
        .await?;
    let existing = JobId::from_db(row.try_get("id")?);
    if !job.ignored {
        let upgraded = sqlx::query(sql::UPGRADE_JOB)
            .bind(&job.status)
            .bind(job.routing.kind())
            .bind(job.routing.reason())
            .bind(&job.body)
            .bind(&job.hook_id)
            .bind(&job.design_system_id)
            .bind(now.as_millis())
            .bind(&job.names.design_system)
            .bind(&job.names.version)
            .bind(&job.names.exporter)
            .bind(existing.as_str())
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
    let deliveries: Vec<String> = sqlx::query_scalar(sql::JOB_DELIVERIES)
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
    let ids = assign_ids(tx, job.deliveries.iter().map(serial_key)).await?;
    for (d, id) in job.deliveries.iter().zip(&ids) {
        sqlx::query(sql::INSERT_DELIVERY)
            .bind(id.as_str())
            .bind(job_ref.as_str())
            .bind(&d.target_key)
            .bind(&d.hook_id)
            .bind(&d.repository)
            .bind(&d.head_branch)
            .bind(serial_key(d))
            .bind(now.as_millis())
            .bind(&d.connection)
            .execute(&mut **tx)
            .await?;
    }
    Ok(ids)
}

/// Ids for new deliveries with these serialisation keys, in this order: each above every
/// id its key was given before. The keys' `serial_keys` rows stay locked until the
/// transaction ends, so the next transaction for a key gives ids above these: per key,
/// id order is commit order. Rows are locked in key order, so concurrent batches never
/// wait for each other in a cycle.
async fn assign_ids(
    tx: &mut Transaction<'_, Any>,
    keys: impl Iterator<Item = String>,
) -> Result<Vec<DeliveryId>, StoreError> {
    let keys: Vec<String> = keys.collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut last: std::collections::BTreeMap<&str, String> =
        keys.iter().map(|k| (k.as_str(), String::new())).collect();
    let distinct: Vec<&str> = last.keys().copied().collect();
    for chunk in distinct.chunks(KEY_ROWS) {
        // The no-op update locks an existing row and returns its `last_id`.
        let mut sql = String::from("INSERT INTO serial_keys (serial_key, last_id) VALUES ");
        for row in 0..chunk.len() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, '')", row + 1));
        }
        sql.push_str(
            " ON CONFLICT (serial_key) DO UPDATE SET last_id = serial_keys.last_id \
             RETURNING serial_key, last_id",
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for k in chunk {
            query = query.bind(*k);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let key: String = row.try_get("serial_key")?;
            if let Some(slot) = last.get_mut(key.as_str()) {
                *slot = row.try_get("last_id")?;
            }
        }
    }
    let mut ids = Vec::with_capacity(keys.len());
    for k in &keys {
        let slot = last
            .get_mut(k.as_str())
            .ok_or_else(|| StoreError::Corrupt("a serialisation key went missing".to_owned()))?;
        let id = DeliveryId::generate_after(slot);
        *slot = id.as_str().to_owned();
        ids.push(id);
    }
    for chunk in distinct.chunks(KEY_ROWS) {
        let mut sql = String::from("INSERT INTO serial_keys (serial_key, last_id) VALUES ");
        for row in 0..chunk.len() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${})", 2 * row + 1, 2 * row + 2));
        }
        sql.push_str(" ON CONFLICT (serial_key) DO UPDATE SET last_id = excluded.last_id");
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for k in chunk {
            query = query.bind(*k).bind(last[k].clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{job, requests};
    use super::*;
    use crate::store::{DeliveryState, Store};
    use courier_core::config::Store as StoreConfig;

    #[tokio::test]
    async fn a_refused_item_fails_alone_and_the_rest_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::Sqlite {
            path: dir.path().join("c.db"),
        })
        .await
        .unwrap();
        // The same target twice violates UNIQUE (job_ref, target_key) in the database;
        // `insert_job` would have refused it earlier.
        let (batch, _answers) = requests(vec![
            job("a", &["t0"]),
            job("bad", &["t0", "t0"]),
            job("a", &["t0"]),
            job("c", &["t0", "t1"]),
        ]);
        let results = commit_batch(store.pool(), store.backend(), &batch)
            .await
            .unwrap();
        assert_eq!(results.len(), 4);
        let a = results[0].as_ref().expect("a is recorded");
        assert!(!a.duplicate);
        assert!(
            matches!(results[1], Err(StoreError::Database(_))),
            "{:?}",
            results[1]
        );
        let again = results[2].as_ref().expect("the copy of a is answered");
        assert!(again.duplicate);
        assert_eq!((&again.job, &again.deliveries), (&a.job, &a.deliveries));
        assert_eq!(
            results[3].as_ref().expect("c is recorded").deliveries.len(),
            2
        );

        assert!(
            store.find_job("ws", "bad").await.unwrap().is_none(),
            "nothing of the bad item is left"
        );
        assert!(store.find_job("ws", "a").await.unwrap().is_some());
        let counts = store.counts_by_state().await.unwrap();
        assert_eq!(counts[&DeliveryState::Queued], 3);
    }

    #[tokio::test]
    async fn both_paths_give_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::Sqlite {
            path: dir.path().join("c.db"),
        })
        .await
        .unwrap();
        let (batch, _answers) = requests(vec![job("x", &["t0"]), job("x", &["t0"]), job("y", &[])]);
        let together = commit_batch_together(store.pool(), store.backend(), &batch)
            .await
            .unwrap();
        let one_by_one = commit_batch_item_by_item(store.pool(), store.backend(), &batch)
            .await
            .unwrap();
        let together: Vec<_> = together.into_iter().map(Result::unwrap).collect();
        let one_by_one: Vec<_> = one_by_one.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            together.iter().map(|a| a.duplicate).collect::<Vec<_>>(),
            vec![false, true, false]
        );
        assert!(
            one_by_one.iter().all(|a| a.duplicate),
            "the second run finds everything"
        );
        for (t, o) in together.iter().zip(&one_by_one) {
            assert_eq!((&t.job, &t.deliveries), (&o.job, &o.deliveries));
        }
    }
}
