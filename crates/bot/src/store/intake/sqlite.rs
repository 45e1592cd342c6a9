//! SQLite's intake writer: one connection on an OS thread of its own (see the parent
//! module for why not sqlx).
//!
//! The thread takes whatever requests queued while it committed the last batch and
//! records them in one `BEGIN IMMEDIATE` transaction, each item in a savepoint, so an item
//! SQLite refuses is rolled back alone. Then one commit, synced (`synchronous = FULL`),
//! and only then the answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Mutex, mpsc};

use super::{Message, Request, serial_key, sql};
use crate::store::{DeliveryId, Inserted, JobId, MAX_BATCH, NewJob, StoreError, Timestamp};

/// The last id given to a serialisation key, and its update; no row locks are needed, as
/// this connection is SQLite's only writer while its transaction is open.
const LAST_ID: &str = "SELECT last_id FROM serial_keys WHERE serial_key = $1";
const SET_LAST_ID: &str = "INSERT INTO serial_keys (serial_key, last_id) VALUES ($1, $2) \
     ON CONFLICT (serial_key) DO UPDATE SET last_id = excluded.last_id";

/// Opens the writer's connection to the (already migrated) database at `path` and starts
/// its thread, which stops at `Message::Close` or when every sender is gone. Each batch
/// is written in the process's `write_turn` (see `Store`).
pub(in crate::store) fn start(
    path: &Path,
    rx: mpsc::Receiver<Message>,
    write_turn: Arc<Mutex<()>>,
) -> Result<(), StoreError> {
    let location = path.display().to_string();
    let conn = open(path).map_err(|e| StoreError::Open {
        location: location.clone(),
        reason: e.to_string(),
    })?;
    std::thread::Builder::new()
        .name("courier-intake".to_owned())
        .spawn(move || run(conn, rx, &write_turn))
        .map_err(|e| StoreError::Open {
            location,
            reason: format!("cannot start the intake writer thread: {e}"),
        })?;
    Ok(())
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // As the pool's connections: wait for another writer rather than fail, a sync per
    // commit, foreign keys enforced. WAL mode is a property of the file, set at open.
    // A 64 MiB page cache (SQLite's default is 2 MiB): the unique (workspace, job) index
    // is written at random places, and re-reading its pages from the file at every batch
    // showed in the intake profile. Each item's savepoint keeps its statement journal in
    // memory rather than a temporary file (pwrite calls in the same profile).
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; \
         PRAGMA temp_store = MEMORY",
    )?;
    Ok(conn)
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Message>, write_turn: &Mutex<()>) {
    let mut messages = Vec::with_capacity(MAX_BATCH);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.blocking_recv_many(&mut messages, MAX_BATCH) > 0 {
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
        if !batch.is_empty() {
            let results = {
                let _turn = write_turn.blocking_lock();
                commit(&conn, &batch)
            };
            for (request, result) in batch.drain(..).zip(results) {
                // A caller that gave up (its request timed out) still has its job
                // recorded: the platform will send it again and find it.
                let _ = request.reply.send(result);
            }
        }
        if let Some(ack) = closing {
            drop(conn);
            let _ = ack.send(());
            return;
        }
    }
}

/// One result per request, in order. A failure of the transaction itself (begin or
/// commit) fails every item.
fn commit(conn: &Connection, batch: &[Request]) -> Vec<Result<Inserted, StoreError>> {
    match record_batch(conn, batch) {
        Ok(results) => results,
        Err(e) => {
            if !conn.is_autocommit() {
                // Nothing of the batch may stay behind for the next one to commit.
                if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %rollback, "could not roll back a failed intake batch");
                }
            }
            let e = StoreError::from(e);
            tracing::error!(error = %e, items = batch.len(), "intake batch failed to commit");
            batch.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

fn record_batch(
    conn: &Connection,
    batch: &[Request],
) -> rusqlite::Result<Vec<Result<Inserted, StoreError>>> {
    let now = Timestamp::now().as_millis();
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        conn.prepare_cached("SAVEPOINT item")?.execute([])?;
        match record(conn, &request.job, now) {
            Ok(inserted) => results.push(Ok(inserted)),
            Err(e) => {
                conn.prepare_cached("ROLLBACK TO item")?.execute([])?;
                results.push(Err(e.into()));
            }
        }
        conn.prepare_cached("RELEASE item")?.execute([])?;
    }
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(results)
}

/// One job, as `Store::insert_job` documents it. A copy of a job earlier in the same
/// batch finds that one: it is answered as its duplicate.
fn record(conn: &Connection, job: &NewJob, now: i64) -> rusqlite::Result<Inserted> {
    let id = JobId::generate();
    let created = conn.prepare_cached(sql::INSERT_JOB)?.execute(params![
        id.as_str(),
        job.workspace_id,
        job.job_id,
        job.hook_id,
        job.design_system_id,
        job.status,
        i64::from(job.ignored),
        job.routing.kind(),
        job.routing.reason(),
        job.body,
        now,
        job.names.design_system,
        job.names.version,
        job.names.exporter,
    ])? == 1;
    if created {
        let deliveries = insert_deliveries(conn, &id, job, now)?;
        return Ok(Inserted {
            job: id,
            deliveries,
            duplicate: false,
        });
    }
    let existing = JobId::from_db(
        conn.prepare_cached(sql::FIND_JOB)?
            .query_row(params![job.workspace_id, job.job_id], |row| row.get(0))?,
    );
    if !job.ignored {
        let upgraded = conn.prepare_cached(sql::UPGRADE_JOB)?.execute(params![
            job.status,
            job.routing.kind(),
            job.routing.reason(),
            job.body,
            job.hook_id,
            job.design_system_id,
            now,
            job.names.design_system,
            job.names.version,
            job.names.exporter,
            existing.as_str(),
        ])?;
        if upgraded == 1 {
            let deliveries = insert_deliveries(conn, &existing, job, now)?;
            return Ok(Inserted {
                job: existing,
                deliveries,
                duplicate: false,
            });
        }
    }
    let deliveries = conn
        .prepare_cached(sql::JOB_DELIVERIES)?
        .query_map(params![existing.as_str()], |row| row.get(0))?
        .map(|id| id.map(DeliveryId::from_db))
        .collect::<rusqlite::Result<_>>()?;
    Ok(Inserted {
        job: existing,
        deliveries,
        duplicate: true,
    })
}

/// The job's deliveries, each id above every id its serialisation key was given before.
fn insert_deliveries(
    conn: &Connection,
    job_ref: &JobId,
    job: &NewJob,
    now: i64,
) -> rusqlite::Result<Vec<DeliveryId>> {
    let mut ids = Vec::with_capacity(job.deliveries.len());
    for d in &job.deliveries {
        let key = serial_key(d);
        let last: Option<String> = conn
            .prepare_cached(LAST_ID)?
            .query_row(params![key], |row| row.get(0))
            .optional()?;
        let id = DeliveryId::generate_after(last.as_deref().unwrap_or_default());
        conn.prepare_cached(SET_LAST_ID)?
            .execute(params![key, id.as_str()])?;
        conn.prepare_cached(sql::INSERT_DELIVERY)?.execute(params![
            id.as_str(),
            job_ref.as_str(),
            d.target_key,
            d.hook_id,
            d.repository,
            d.head_branch,
            key,
            now,
            d.connection,
        ])?;
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{job, requests};
    use super::*;
    use crate::store::{DeliveryState, Store};
    use courier_core::config::Store as StoreConfig;

    async fn store() -> (tempfile::TempDir, Store, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = Store::open(&StoreConfig::Sqlite { path: path.clone() })
            .await
            .unwrap();
        let conn = open(&path).unwrap();
        (dir, store, conn)
    }

    /// Positional binding is right only if every statement's placeholders first appear
    /// as `$1, $2, ...` (see `sql`).
    #[test]
    fn placeholders_are_numbered_in_order_of_appearance() {
        let conn = Connection::open_in_memory().unwrap();
        for migration in [
            include_str!("../../../migrations/0001_store.sql"),
            include_str!("../../../migrations/0002_timings.sql"),
            include_str!("../../../migrations/0003_tokens.sql"),
            include_str!("../../../migrations/0004_dashboard.sql"),
            include_str!("../../../migrations/0005_forge_calls.sql"),
        ] {
            conn.execute_batch(migration).unwrap();
        }
        for statement in sql::ALL.into_iter().chain([LAST_ID, SET_LAST_ID]) {
            let prepared = conn.prepare(statement).unwrap();
            for index in 1..=prepared.parameter_count() {
                assert_eq!(
                    prepared.parameter_name(index),
                    Some(format!("${index}").as_str()),
                    "{statement}"
                );
            }
        }
    }

    /// An answered webhook must survive a power loss: the connection `start` opens for
    /// the writer syncs every commit, in WAL mode, and keeps its savepoints in memory.
    #[tokio::test]
    async fn the_writer_connection_syncs_every_commit() {
        let (_dir, _store, conn) = store().await;
        let number = |name: &str| -> i64 {
            conn.pragma_query_value(None, name, |row| row.get(0))
                .unwrap()
        };
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(number("synchronous"), 2, "2 = FULL");
        assert_eq!(number("foreign_keys"), 1);
        assert_eq!(number("temp_store"), 2, "2 = MEMORY");
        assert_eq!(number("cache_size"), -65536);
    }

    /// The intake thread writes only in the process's write turn, like every other writer
    /// (`Store::write_turn`): while the turn is held, a webhook, a claim and a person's
    /// requeue all wait; once it is given up, each of them goes through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_writer_waits_for_the_write_turn() {
        let (_dir, store, _conn) = store().await;
        // A delivered delivery, for the requeue: whichever of the three goes first once
        // the turn is free, the others still succeed.
        let done = store.insert_job(job("done", &["t0"])).await.unwrap();
        let held = store.claim("w0", Duration::from_secs(60)).await.unwrap();
        let id = held.expect("the delivery is claimable").delivery.id;
        assert_eq!(id, done.deliveries[0]);
        store
            .finish(
                &id,
                "w0",
                crate::store::Finish::new(DeliveryState::Delivered),
            )
            .await
            .unwrap();
        let turn = store.write_turn().await;
        let insert = tokio::spawn({
            let store = store.clone();
            async move { store.insert_job(job("waiting", &["t1"])).await }
        });
        let claim = tokio::spawn({
            let store = store.clone();
            async move { store.claim("w1", Duration::from_secs(60)).await }
        });
        let requeue = tokio::spawn({
            let store = store.clone();
            async move { store.requeue(&id).await }
        });
        // Each would take milliseconds; with the turn held none may finish at all.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!insert.is_finished(), "the intake thread wrote out of turn");
        assert!(!claim.is_finished(), "a claim wrote out of turn");
        assert!(!requeue.is_finished(), "a requeue wrote out of turn");
        drop(turn);
        assert!(!insert.await.unwrap().unwrap().duplicate);
        claim.await.unwrap().unwrap();
        requeue.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_refused_item_fails_alone_and_the_rest_commit() {
        let (_dir, store, conn) = store().await;
        // The same target twice violates UNIQUE (job_ref, target_key) in the database;
        // `insert_job` would have refused it earlier.
        let (batch, _answers) = requests(vec![
            job("a", &["t0"]),
            job("bad", &["t0", "t0"]),
            job("a", &["t0"]),
            job("c", &["t0", "t1"]),
        ]);
        let results = commit(&conn, &batch);
        assert_eq!(results.len(), 4);
        let a = results[0].as_ref().expect("a is recorded");
        assert!(!a.duplicate);
        match &results[1] {
            Err(e @ StoreError::Sqlite(_)) => {
                assert!(e.to_string().contains("UNIQUE"), "{e}")
            }
            other => panic!("{other:?}"),
        }
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
        assert!(conn.is_autocommit(), "the batch's transaction is over");
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_item_and_leaves_nothing() {
        let (dir, store, conn) = store().await;
        // Another connection holds the write lock past the busy timeout: BEGIN IMMEDIATE
        // fails for the whole batch.
        conn.busy_timeout(Duration::from_millis(50)).unwrap();
        let blocker = Connection::open(dir.path().join("c.db")).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (batch, _answers) = requests(vec![job("x", &["t0"]), job("y", &[])]);
        let results = commit(&conn, &batch);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(StoreError::Sqlite(_)))),
            "{results:?}"
        );
        blocker.execute_batch("ROLLBACK").unwrap();

        // The writer is usable again, and nothing of the failed batch is there.
        assert!(conn.is_autocommit());
        assert!(store.find_job("ws", "x").await.unwrap().is_none());
        let results = commit(&conn, &batch);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    /// The two writers give the same answers to the same batch.
    #[tokio::test]
    async fn the_pooled_writer_finds_what_this_one_recorded() {
        let (_dir, store, conn) = store().await;
        let (batch, _answers) = requests(vec![job("x", &["t0"]), job("x", &["t0"]), job("y", &[])]);
        let here: Vec<_> = commit(&conn, &batch)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            here.iter().map(|a| a.duplicate).collect::<Vec<_>>(),
            vec![false, true, false]
        );
        for (request, mine) in batch.iter().zip(&here) {
            let theirs = store
                .insert_job_unbatched(request.job.clone())
                .await
                .unwrap();
            assert!(theirs.duplicate);
            assert_eq!(
                (&theirs.job, &theirs.deliveries),
                (&mine.job, &mine.deliveries)
            );
        }
    }
}
