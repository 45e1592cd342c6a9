//! Recording jobs, with group commit.
//!
//! One synced commit per webhook caps intake at the disk's sync rate. Instead every
//! `insert_job` goes to one writer; while it commits a batch, new requests queue up, and
//! the next batch takes all of them (up to [`MAX_BATCH`]) into one transaction. An item
//! the database refuses fails alone (its caller gets the error) while the rest commit.
//! Nobody is answered before the commit.
//!
//! There are two writers, with the same statements ([`sql`]) and the same answers:
//!
//! - [`sqlite`]: SQLite's writer is one connection on an OS thread of its own, with
//!   cached prepared statements, each item in a savepoint. SQLite admits one writer at a
//!   time anyway, and through sqlx each statement hops to a connection thread and back
//!   with its arguments and rows converted to and from `Any`: at webhook rates that cost
//!   more than SQLite's own work (figures in `docs/benchmarks.md`).
//! - [`pooled`]: PostgreSQL's writer is a task on the sqlx pool, which writes a batch
//!   with a few multi-row statements (a round trip per statement matters there), and
//!   falls back to item-by-item savepoints when one of them fails.
//!
//! The store suite (`tests/store.rs`) runs on both backends, so both writers are held to
//! the same behaviour.

mod pooled;
mod sqlite;

use std::collections::HashSet;

use tokio::sync::oneshot;

use super::{Inserted, NewDelivery, NewJob, Store, StoreError};

pub(super) use pooled::run_writer as run_pooled_writer;
pub(super) use sqlite::start as start_sqlite_writer;

/// What the writers are sent.
pub(super) enum Message {
    // Boxed: a job is hundreds of bytes, the other message a pointer.
    Insert(Box<Request>),
    /// Record what was sent before this, then stop; answered once stopped.
    Close(oneshot::Sender<()>),
}

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
            .send(Message::Insert(Box::new(Request { job, reply })))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Store::insert_job`] in a transaction of its own on the sqlx pool, bypassing the
    /// group-commit writer: one synced commit per call. For tools and for comparison in
    /// benchmarks.
    pub async fn insert_job_unbatched(&self, job: NewJob) -> Result<Inserted, StoreError> {
        validate(&job)?;
        let _turn = self.write_turn().await;
        pooled::insert_unbatched(self.pool(), self.backend(), &job).await
    }

    /// Stops the intake writer after what was already sent to it is recorded.
    pub(super) async fn close_intake(&self) {
        let (ack, stopped) = oneshot::channel();
        if self.inner.intake.send(Message::Close(ack)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

/// The statements both writers run, with `$N` placeholders (PostgreSQL numbers them;
/// SQLite takes `$1` as a name). Each statement's placeholders first appear in the order
/// `$1, $2, ...`, because SQLite numbers names in order of first appearance and the
/// SQLite writer binds by position (checked by a test in `sqlite`).
mod sql {
    pub const INSERT_JOB: &str = "INSERT INTO jobs (id, workspace_id, job_id, hook_id, \
         design_system_id, status, ignored, routing, routing_reason, body, received_at, \
         updated_at, design_system_name, version_name, exporter_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14) \
         ON CONFLICT (workspace_id, job_id) DO NOTHING";
    pub const FIND_JOB: &str = "SELECT id FROM jobs WHERE workspace_id = $1 AND job_id = $2";
    /// Upgrades an ignored record; the `ignored = 1` condition makes exactly one of
    /// several concurrent upgraders win (the others see 0 rows once it commits).
    pub const UPGRADE_JOB: &str = "UPDATE jobs SET status = $1, ignored = 0, routing = $2, \
         routing_reason = $3, body = $4, hook_id = $5, design_system_id = $6, \
         updated_at = $7, design_system_name = $8, version_name = $9, exporter_name = $10 \
         WHERE id = $11 AND ignored = 1";
    pub const JOB_DELIVERIES: &str = "SELECT id FROM deliveries WHERE job_ref = $1 ORDER BY id";
    pub const INSERT_DELIVERY: &str = "INSERT INTO deliveries (id, job_ref, target_key, \
         hook_id, repository, head_branch, serial_key, state, attempts, created_at, \
         connection) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $9)";

    /// Every statement above, for the placeholder-order test.
    #[cfg(test)]
    pub const ALL: [&str; 5] = [
        INSERT_JOB,
        FIND_JOB,
        UPGRADE_JOB,
        JOB_DELIVERIES,
        INSERT_DELIVERY,
    ];
}

/// Longest identifier, key, repository or branch name the store takes, in bytes.
const MAX_TEXT: usize = 1024;

fn validate(job: &NewJob) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidJob {
        workspace_id: job.workspace_id.clone(),
        job_id: job.job_id.clone(),
        reason,
    };
    // Both backends must accept what one accepts: PostgreSQL stores no NUL in text and
    // cannot index very long values, so neither store takes them.
    let texts = [
        ("workspace id", job.workspace_id.as_str()),
        ("job id", &job.job_id),
        ("hook id", &job.hook_id),
        ("design system id", &job.design_system_id),
        ("status", &job.status),
    ]
    .into_iter()
    .chain(job.deliveries.iter().flat_map(|d| {
        [
            ("target key", d.target_key.as_str()),
            ("target hook id", &d.hook_id),
            ("repository", &d.repository),
            ("head branch", &d.head_branch),
        ]
    }));
    for (what, text) in texts {
        if text.contains('\0') {
            return Err(invalid(format!("the {what} contains a NUL character")));
        }
        if text.len() > MAX_TEXT {
            return Err(invalid(format!(
                "the {what} is {} bytes long (at most {MAX_TEXT})",
                text.len()
            )));
        }
    }
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

/// Deliveries to one repository and head branch run one at a time, in id order; this
/// key names them (see `serial_keys` in the schema).
fn serial_key(d: &NewDelivery) -> String {
    format!("{}\n{}", d.repository, d.head_branch)
}

#[cfg(test)]
mod test_support {
    //! Jobs and batches for the writers' tests, below `insert_job`'s validation, so
    //! that an item the database itself refuses can be put into a batch.

    use super::*;
    use crate::store::{JobNames, Routing};

    pub fn job(job_id: &str, keys: &[&str]) -> NewJob {
        NewJob {
            workspace_id: "ws".into(),
            job_id: job_id.into(),
            hook_id: "5".into(),
            design_system_id: "7".into(),
            status: "Success".into(),
            ignored: false,
            body: b"{}".to_vec(),
            routing: Routing::Routed,
            names: JobNames::default(),
            deliveries: keys
                .iter()
                .map(|k| NewDelivery {
                    target_key: (*k).into(),
                    hook_id: "5".into(),
                    repository: "acme/web".into(),
                    connection: "github".into(),
                    head_branch: format!("b-{k}"),
                })
                .collect(),
        }
    }

    pub fn requests(
        jobs: Vec<NewJob>,
    ) -> (
        Vec<Request>,
        Vec<oneshot::Receiver<Result<Inserted, StoreError>>>,
    ) {
        jobs.into_iter()
            .map(|job| {
                let (reply, answer) = oneshot::channel();
                (Request { job, reply }, answer)
            })
            .unzip()
    }
}
