//! Keeping the store from holding more, or longer, than it needs.

use serde::Serialize;

use super::{Store, StoreError, Timestamp};

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub jobs: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

impl Store {
    /// Clears the webhook body (and with it the signed artifact URL) of every job received
    /// before `received_before` none of whose deliveries is still queued, retrying or
    /// running. Such a job can still be replayed only where the worker can re-resolve the
    /// artifact through the platform API ([`Claimed::body`](super::Claimed::body) is
    /// `None`). Returns how many bodies were cleared.
    pub async fn forget_bodies(&self, received_before: Timestamp) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE jobs SET body = NULL WHERE received_at < $1 AND body IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.job_ref = jobs.id \
               AND d.state IN ('queued', 'retrying', 'running'))",
        )
        .bind(received_before.as_millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes history: deliveries finished before `before` (with their attempts), then
    /// jobs received before `before` that have no delivery left. A job deleted here is no
    /// longer recognised as a duplicate, so `before` should lie well beyond the time the
    /// platform may send a job again (hours): days or weeks, not minutes.
    pub async fn prune(&self, before: Timestamp) -> Result<Pruned, StoreError> {
        let (_turn, mut tx) = self.begin_write(self.pool()).await?;
        let attempts = sqlx::query(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries \
             WHERE finished_at < $1 AND state NOT IN ('queued', 'retrying', 'running'))",
        )
        .bind(before.as_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE finished_at < $1 \
             AND state NOT IN ('queued', 'retrying', 'running')",
        )
        .bind(before.as_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let jobs = sqlx::query(
            "DELETE FROM jobs WHERE received_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.job_ref = jobs.id)",
        )
        .bind(before.as_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Pruned {
            jobs,
            deliveries,
            attempts,
        })
    }
}
