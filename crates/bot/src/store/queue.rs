//! Claiming deliveries and moving them through their states.

use std::time::Duration;

use sqlx::{Any, Row, Transaction};

use super::read::{fetch_delivery, fetch_job_and_body};
use super::{
    Backend, Claimed, DeliveryId, DeliveryState, DeliveryView, Finish, RunTimes, Store, StoreError,
    Timestamp,
};

/// A delivery is due: queued, retrying whose time has come, or running under an expired
/// lease (its worker is gone). `$1` is now.
macro_rules! due {
    () => {
        "(d.state = 'queued' \
          OR (d.state = 'retrying' AND d.next_attempt_at <= $1) \
          OR (d.state = 'running' AND d.lease_expires_at <= $1))"
    };
}

/// No other delivery for the same repository and head branch is running under a live
/// lease. (`r.state = 'running'` is the predicate of the small `deliveries_running`
/// index.) `$1` is now.
macro_rules! no_other_running {
    () => {
        "NOT EXISTS (SELECT 1 FROM deliveries r WHERE r.serial_key = d.serial_key \
           AND r.state = 'running' AND r.id <> d.id AND r.lease_expires_at > $1)"
    };
}

/// The unfinished deliveries of serialisation key `$3` with ids before (`<`) or after
/// (`>`) `$4`, read from the partial index of unfinished deliveries. Filtering a target's
/// deliveries by key and state instead would walk the target's whole history on every
/// claim (the `deliveries_by_target` index), which grew a claim to milliseconds.
macro_rules! unfinished_of_key {
    ($op:literal) => {
        concat!(
            "SELECT u.id FROM deliveries u WHERE u.serial_key = $3 AND u.id ",
            $op,
            " $4 AND u.state IN ('queued', 'retrying', 'running')"
        )
    };
}

/// The claimable deliveries, oldest first: for each serialisation key only its oldest
/// unfinished delivery (arrival order), if that one is due and nothing else of its key
/// runs. The keys are walked with a recursive query (a "loose index scan") over the
/// partial index of unfinished deliveries, so the cost grows with the number of branches
/// that have work, not with the history or the depth of the queue. The repeated
/// `state IN (...)` terms are what lets both databases use that partial index.
macro_rules! candidates {
    () => {
        concat!(
            "WITH RECURSIVE keys(k) AS ( \
               SELECT MIN(serial_key) FROM deliveries \
                 WHERE state IN ('queued', 'retrying', 'running') \
               UNION ALL \
               SELECT (SELECT MIN(serial_key) FROM deliveries \
                 WHERE state IN ('queued', 'retrying', 'running') AND serial_key > keys.k) \
               FROM keys WHERE keys.k IS NOT NULL) \
             SELECT d.id, d.state, d.hook_id, d.target_key, d.serial_key \
             FROM keys JOIN deliveries d ON d.id = ( \
               SELECT u.id FROM deliveries u WHERE u.serial_key = keys.k \
                 AND u.state IN ('queued', 'retrying', 'running') ORDER BY u.id LIMIT 1) \
             WHERE ",
            due!(),
            " AND ",
            no_other_running!(),
            " ORDER BY d.id LIMIT 8"
        )
    };
}

const CANDIDATES_SQLITE: &str = candidates!();
// Rows another replica is claiming are skipped rather than waited for.
const CANDIDATES_POSTGRES: &str = concat!(candidates!(), " FOR UPDATE OF d SKIP LOCKED");
/// The candidate `$2` is still the oldest unfinished of its key, due, and its key free.
const STILL_ELIGIBLE: &str = concat!(
    "SELECT d.id FROM deliveries d WHERE d.id = $2 AND ",
    due!(),
    " AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.serial_key = d.serial_key \
       AND o.state IN ('queued', 'retrying', 'running') AND o.id < d.id) AND ",
    no_other_running!()
);
/// Namespace of Courier's advisory locks (`pg_advisory_xact_lock(int, int)`); the second
/// key is the hash of the serialisation key.
const LOCK_NAMESPACE: i32 = 0x436f_7572; // "Cour"

struct Candidate {
    id: String,
    state: DeliveryState,
    hook_id: String,
    target_key: String,
    serial_key: String,
}

impl Store {
    /// Takes the oldest due delivery whose repository and head branch are free, and holds
    /// it for `owner` until `lease` from now. `None` when nothing is claimable.
    ///
    /// Due: `queued`; `retrying` whose `next_attempt_at` has come; `running` whose lease
    /// expired (the attempt it was in is closed as `lease_expired`). Free: no other
    /// delivery for the same repository and head branch is running under a live lease,
    /// and none older is unfinished, so a key's deliveries run one at a time in arrival
    /// order. Supersede: when the next in line is `queued` or `retrying` and a newer export
    /// for the same hook, target and branch is `queued`, every older waiting one of that
    /// target is marked `superseded` instead (each export is a full snapshot) and the
    /// newest goes next.
    ///
    /// `owner` must be unique per worker (e.g. replica id + worker number): only it may
    /// renew or finish the delivery.
    ///
    /// SQLite: one `BEGIN IMMEDIATE` transaction. PostgreSQL: candidates are locked with
    /// `FOR UPDATE SKIP LOCKED`; the claimer then takes a transaction-scoped advisory lock
    /// on the serialisation key (skipping keys another replica is claiming) and checks the
    /// candidate again in a fresh statement, which sees every claim committed for that key
    /// before the lock was granted. Replicas therefore claim concurrently without ever
    /// running two deliveries of one key.
    pub async fn claim(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        let backend = self.backend();
        let (_turn, mut tx) = self.begin_write(self.queue_pool()).await?;
        let now = Timestamp::now();
        let select = match backend {
            Backend::Sqlite => CANDIDATES_SQLITE,
            Backend::Postgres => CANDIDATES_POSTGRES,
        };
        // Every round that finds nothing to claim has superseded at least one delivery,
        // so this ends.
        loop {
            let rows = sqlx::query(select)
                .bind(now.as_millis())
                .fetch_all(&mut *tx)
                .await?;
            let mut candidates = Vec::with_capacity(rows.len());
            for row in rows {
                candidates.push(Candidate {
                    id: row.try_get("id")?,
                    state: row.try_get::<String, _>("state")?.parse()?,
                    hook_id: row.try_get("hook_id")?,
                    target_key: row.try_get("target_key")?,
                    serial_key: row.try_get("serial_key")?,
                });
            }
            let mut superseded_any = false;
            for c in &candidates {
                if backend == Backend::Postgres {
                    let locked: bool =
                        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, hashtext($2))")
                            .bind(LOCK_NAMESPACE)
                            .bind(&c.serial_key)
                            .fetch_one(&mut *tx)
                            .await?;
                    if !locked {
                        continue;
                    }
                    let still: Option<String> = sqlx::query_scalar(STILL_ELIGIBLE)
                        .bind(now.as_millis())
                        .bind(&c.id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if still.is_none() {
                        continue;
                    }
                }
                if matches!(c.state, DeliveryState::Queued | DeliveryState::Retrying)
                    && let Some(newest) = newest_queued(&mut tx, c).await?
                {
                    // Every waiting export of this target older than the newest, not
                    // only this one: the newest is now the next in line for the branch.
                    sqlx::query(concat!(
                        "UPDATE deliveries SET state = 'superseded', finished_at = $5, \
                         next_attempt_at = NULL, last_error = $6, superseded_by = $4 \
                         WHERE id IN (",
                        unfinished_of_key!("<"),
                        ") AND hook_id = $1 AND target_key = $2 \
                         AND state IN ('queued', 'retrying')"
                    ))
                    .bind(&c.hook_id)
                    .bind(&c.target_key)
                    .bind(&c.serial_key)
                    .bind(&newest)
                    .bind(now.as_millis())
                    .bind(format!("superseded by delivery {newest}"))
                    .execute(&mut *tx)
                    .await?;
                    superseded_any = true;
                    continue;
                }
                let claimed = take(&mut tx, c, owner, lease, now).await?;
                tx.commit().await?;
                return Ok(Some(claimed));
            }
            if !superseded_any {
                break;
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Extends the lease of a delivery `owner` holds to `lease` from now.
    pub async fn renew(
        &self,
        id: &DeliveryId,
        owner: &str,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let expires = Timestamp::now().plus(lease);
        let done = {
            let _turn = self.write_turn().await;
            sqlx::query(
                "UPDATE deliveries SET lease_expires_at = $3 \
                 WHERE id = $1 AND state = 'running' AND lease_owner = $2",
            )
            .bind(id.as_str())
            .bind(owner)
            .bind(expires.as_millis())
            .execute(self.queue_pool())
            .await?
            .rows_affected()
        };
        if done == 1 {
            Ok(())
        } else {
            Err(self.lease_lost(id, owner).await)
        }
    }

    /// Ends a delivery `owner` holds with its outcome. A stale owner (whose lease expired
    /// and was taken over, or who already finished) gets [`StoreError::LeaseLost`].
    pub async fn finish(
        &self,
        id: &DeliveryId,
        owner: &str,
        finish: Finish,
    ) -> Result<DeliveryView, StoreError> {
        let now = Timestamp::now();
        let state = finish.state;
        let warnings = serde_json::to_string(&finish.warnings)
            .map_err(|e| StoreError::Corrupt(format!("warnings not serialisable: {e}")))?;
        let files = finish.files;
        let timings = json_unless_empty("timings", &finish.timings, finish.timings.is_empty())?;
        let tokens = finish
            .tokens
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("tokens not serialisable: {e}")))?;
        let directories = (!finish.directories.is_empty())
            .then(|| {
                let listed = finish.directories.len().min(super::MAX_DIRECTORIES);
                serde_json::to_string(&finish.directories[..listed])
            })
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("directories not serialisable: {e}")))?;
        let forge_calls = json_unless_empty(
            "forge calls",
            &finish.forge_calls,
            finish.forge_calls.is_empty(),
        )?;
        let (_turn, mut tx) = self.begin_write(self.queue_pool()).await?;
        let done = sqlx::query(
            "UPDATE deliveries SET state = $3, lease_owner = NULL, lease_expires_at = NULL, \
             next_attempt_at = NULL, finished_at = $4, last_error = $5, \
             pr_url = COALESCE($6, pr_url), pushed_commit = COALESCE($7, pushed_commit), \
             files_added = $8, files_modified = $9, files_deleted = $10, warnings = $11, \
             timings = $12, tokens = $13, directories = $14, forge_calls = $15 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2",
        )
        .bind(id.as_str())
        .bind(owner)
        .bind(state.as_str())
        .bind(now.as_millis())
        .bind(finish.error.as_deref())
        .bind(finish.pr_url.as_deref())
        .bind(finish.commit.as_deref())
        .bind(files.map(|f| saturating_i64(f.added)))
        .bind(files.map(|f| saturating_i64(f.modified)))
        .bind(files.map(|f| saturating_i64(f.deleted)))
        .bind(warnings)
        .bind(timings)
        .bind(tokens)
        .bind(directories)
        .bind(forge_calls)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            drop(tx);
            return Err(self.lease_lost(id, owner).await);
        }
        close_attempt(&mut tx, id, now, state.as_str(), finish.error.as_deref()).await?;
        let view = fetch_delivery(&mut *tx, id)
            .await?
            .ok_or_else(|| StoreError::NoSuchDelivery(id.clone()))?;
        tx.commit().await?;
        Ok(view)
    }

    /// Ends the current attempt of a delivery `owner` holds with a permanent failure.
    pub async fn fail(
        &self,
        id: &DeliveryId,
        owner: &str,
        error: &str,
    ) -> Result<DeliveryView, StoreError> {
        let mut finish = Finish::new(DeliveryState::Failed);
        finish.error = Some(error.to_owned());
        self.finish(id, owner, finish).await
    }

    /// Releases a delivery `owner` holds after a transient failure; it becomes claimable
    /// again at `at` (the caller computes backoff and jitter). The run's `times` are kept,
    /// so the record says where the last run's time went whatever its outcome.
    pub async fn retry_later(
        &self,
        id: &DeliveryId,
        owner: &str,
        at: Timestamp,
        error: &str,
        times: &RunTimes,
    ) -> Result<DeliveryView, StoreError> {
        self.release_until(id, owner, at, error, times, Release::Retry)
            .await
    }

    /// Releases a delivery `owner` holds because the other side asked to be called again
    /// at `at` (a rate limit). Unlike [`Store::retry_later`] this attempt does not count
    /// towards the run's retry limit ([`Claimed::attempt_in_run`]): waiting out a limit is
    /// not failing. The attempt is recorded as `rate_limited`.
    pub async fn wait_until(
        &self,
        id: &DeliveryId,
        owner: &str,
        at: Timestamp,
        reason: &str,
        times: &RunTimes,
    ) -> Result<DeliveryView, StoreError> {
        self.release_until(id, owner, at, reason, times, Release::Wait)
            .await
    }

    async fn release_until(
        &self,
        id: &DeliveryId,
        owner: &str,
        at: Timestamp,
        error: &str,
        times: &RunTimes,
        release: Release,
    ) -> Result<DeliveryView, StoreError> {
        let now = Timestamp::now();
        let timings = json_unless_empty("timings", &times.timings, times.timings.is_empty())?;
        let forge_calls = json_unless_empty(
            "forge calls",
            &times.forge_calls,
            times.forge_calls.is_empty(),
        )?;
        let (_turn, mut tx) = self.begin_write(self.queue_pool()).await?;
        let done = sqlx::query(
            "UPDATE deliveries SET state = 'retrying', next_attempt_at = $3, last_error = $4, \
             lease_owner = NULL, lease_expires_at = NULL, run_base = run_base + $5, \
             timings = $6, forge_calls = $7 \
             WHERE id = $1 AND state = 'running' AND lease_owner = $2",
        )
        .bind(id.as_str())
        .bind(owner)
        .bind(at.as_millis())
        .bind(error)
        .bind(match release {
            Release::Retry => 0i64,
            Release::Wait => 1,
        })
        .bind(timings)
        .bind(forge_calls)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            drop(tx);
            return Err(self.lease_lost(id, owner).await);
        }
        let outcome = match release {
            Release::Retry => "retry",
            Release::Wait => "rate_limited",
        };
        close_attempt(&mut tx, id, now, outcome, Some(error)).await?;
        let view = fetch_delivery(&mut *tx, id)
            .await?
            .ok_or_else(|| StoreError::NoSuchDelivery(id.clone()))?;
        tx.commit().await?;
        Ok(view)
    }

    /// Puts a delivery back in the queue (`POST .../retry`, `courier replay`): finished
    /// (any outcome, superseded included) or retrying becomes `queued`, due now. It keeps
    /// its id, hence its place in arrival order: it runs before newer deliveries to the
    /// same branch, and is superseded if a newer one for its target is queued. Replaying
    /// a delivered one runs the pipeline again, which converges on the same branch and PR.
    /// Attempt numbers go on from where they were; [`Claimed::attempt_in_run`] starts
    /// again at 1, so a retry limit applies afresh.
    /// Already queued: unchanged. Running: [`StoreError::IllegalTransition`].
    pub async fn requeue(&self, id: &DeliveryId) -> Result<DeliveryView, StoreError> {
        let backend = self.backend();
        let (_turn, mut tx) = self.begin_write(self.pool()).await?;
        let current = fetch_delivery(&mut *tx, id)
            .await?
            .ok_or_else(|| StoreError::NoSuchDelivery(id.clone()))?;
        match current.state {
            DeliveryState::Queued => return Ok(current),
            DeliveryState::Running => {
                return Err(StoreError::IllegalTransition {
                    id: id.clone(),
                    from: current.state,
                    to: DeliveryState::Queued,
                });
            }
            _ => {}
        }
        if backend == Backend::Postgres {
            // Waits for a claim of the same key in flight, so that claim cannot miss it.
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(LOCK_NAMESPACE)
                .bind(format!("{}\n{}", current.repository, current.head_branch))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'queued', next_attempt_at = NULL, finished_at = NULL, \
             lease_owner = NULL, lease_expires_at = NULL, run_base = attempts \
             WHERE id = $1 AND state = $2",
        )
        .bind(id.as_str())
        .bind(current.state.as_str())
        .execute(&mut *tx)
        .await?;
        let view = fetch_delivery(&mut *tx, id)
            .await?
            .ok_or_else(|| StoreError::NoSuchDelivery(id.clone()))?;
        tx.commit().await?;
        Ok(view)
    }

    /// Requeues every delivery of a job that is not queued or running (for `courier
    /// replay <job-id>`); returns the job's deliveries afterwards.
    pub async fn requeue_job(&self, job: &super::JobId) -> Result<Vec<DeliveryView>, StoreError> {
        let detail = self
            .get_job(job)
            .await?
            .ok_or_else(|| StoreError::NoSuchJob(job.clone()))?;
        let mut out = Vec::with_capacity(detail.deliveries.len());
        for d in detail.deliveries {
            if d.state == DeliveryState::Running {
                out.push(d);
            } else {
                out.push(self.requeue(&d.id).await?);
            }
        }
        Ok(out)
    }

    /// Why `owner` cannot act on `id`: it is gone, or held by someone else, or not running.
    async fn lease_lost(&self, id: &DeliveryId, owner: &str) -> StoreError {
        match fetch_delivery(self.pool(), id).await {
            Ok(Some(d)) => StoreError::LeaseLost {
                id: id.clone(),
                owner: owner.to_owned(),
                state: d.state,
                holder: d.lease_owner,
            },
            Ok(None) => StoreError::NoSuchDelivery(id.clone()),
            Err(e) => e,
        }
    }
}

/// Why a running delivery goes back to waiting.
#[derive(Clone, Copy)]
enum Release {
    /// A failure worth trying again: counts towards the run's limit.
    Retry,
    /// The other side asked to be called again later: does not count.
    Wait,
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The newest queued delivery of an export (a successful job) for the same hook, target
/// and branch that arrived after `c`. A failed job's report never supersedes an export:
/// only a newer export makes an older one (or an older report) stale.
async fn newest_queued(
    tx: &mut Transaction<'_, Any>,
    c: &Candidate,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(concat!(
        "SELECT d.id FROM deliveries d WHERE d.id IN (",
        unfinished_of_key!(">"),
        ") AND d.hook_id = $1 AND d.target_key = $2 AND d.state = 'queued' \
         AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = d.job_ref AND LOWER(j.status) = 'success') \
         ORDER BY d.id DESC LIMIT 1"
    ))
    .bind(&c.hook_id)
    .bind(&c.target_key)
    .bind(&c.serial_key)
    .bind(&c.id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Marks the candidate running for `owner` and opens an attempt.
async fn take(
    tx: &mut Transaction<'_, Any>,
    c: &Candidate,
    owner: &str,
    lease: Duration,
    now: Timestamp,
) -> Result<Claimed, StoreError> {
    let id = DeliveryId::from_db(c.id.clone());
    if c.state == DeliveryState::Running {
        // The previous holder's lease ran out: its attempt ends here.
        sqlx::query(
            "UPDATE attempts SET finished_at = $2, outcome = 'lease_expired', \
             error = 'the worker stopped renewing its lease' \
             WHERE delivery_id = $1 AND finished_at IS NULL",
        )
        .bind(id.as_str())
        .bind(now.as_millis())
        .execute(&mut **tx)
        .await?;
    }
    let row = sqlx::query(
        "UPDATE deliveries SET state = 'running', attempts = attempts + 1, lease_owner = $2, \
         lease_expires_at = $3, next_attempt_at = NULL, started_at = COALESCE(started_at, $4) \
         WHERE id = $1 RETURNING attempts, run_base",
    )
    .bind(id.as_str())
    .bind(owner)
    .bind(now.plus(lease).as_millis())
    .bind(now.as_millis())
    .fetch_one(&mut **tx)
    .await?;
    let attempt: i64 = row.try_get("attempts")?;
    let run_base: i64 = row.try_get("run_base")?;
    sqlx::query(
        "INSERT INTO attempts (delivery_id, number, owner, started_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id.as_str())
    .bind(attempt)
    .bind(owner)
    .bind(now.as_millis())
    .execute(&mut **tx)
    .await?;
    let delivery = fetch_delivery(&mut **tx, &id)
        .await?
        .ok_or_else(|| StoreError::NoSuchDelivery(id.clone()))?;
    let (job, body) = fetch_job_and_body(&mut **tx, &delivery.job)
        .await?
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "delivery {id} refers to a missing job {}",
                delivery.job
            ))
        })?;
    Ok(Claimed {
        delivery,
        job,
        body,
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        attempt_in_run: u32::try_from(attempt - run_base).unwrap_or(u32::MAX),
    })
}

/// Closes the delivery's current attempt.
async fn close_attempt(
    tx: &mut Transaction<'_, Any>,
    id: &DeliveryId,
    now: Timestamp,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE attempts SET finished_at = $2, outcome = $3, error = $4 \
         WHERE delivery_id = $1 AND number = (SELECT attempts FROM deliveries WHERE id = $1)",
    )
    .bind(id.as_str())
    .bind(now.as_millis())
    .bind(outcome)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `value` as JSON, or NULL when there is nothing to keep.
fn json_unless_empty<T: serde::Serialize + ?Sized>(
    what: &str,
    value: &T,
    empty: bool,
) -> Result<Option<String>, StoreError> {
    if empty {
        return Ok(None);
    }
    serde_json::to_string(value)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("{what} not serialisable: {e}")))
}
