//! Intake throughput of the SQLite store with durable commits: 64 concurrent callers,
//! one synced transaction per insert against the group-commit writer. Also how long
//! claims take with a deep queue. Ignored by default; run with
//!
//! ```text
//! cargo test -p courier --test store_bench -- --ignored --nocapture
//! ```
//!
//! (in a debug build the figures are about the disk's sync rate, which dominates; a
//! release build only lowers the CPU part). The database lives under `$COURIER_BENCH_DIR`
//! or the system temporary directory, which must be on a real disk for the figures to
//! mean anything (tmpfs makes syncs free).

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestStore};
use courier::store::{
    DeliveryState, Finish, Inserted, JobNames, NewDelivery, NewJob, Routing, Store, StoreError,
};

const CALLERS: usize = 64;

fn job(n: usize) -> NewJob {
    NewJob {
        workspace_id: "1".into(),
        job_id: format!("bench-{n}"),
        hook_id: "5".into(),
        design_system_id: "7".into(),
        status: "Success".into(),
        ignored: false,
        // About the size of a real `job:updated` body.
        body: vec![b'x'; 2048],
        routing: Routing::Routed,
        names: JobNames::default(),
        deliveries: vec![NewDelivery {
            // A target per job: nothing is superseded, every delivery is claimed.
            target_key: format!("t{n}"),
            hook_id: "5".into(),
            repository: "acme/web".into(),
            connection: "github".into(),
            head_branch: format!("courier/{}", n % 50),
        }],
    }
}

/// Inserts `total` distinct jobs from `CALLERS` concurrent tasks; returns inserts/s and
/// the 99th percentile latency of one insert.
async fn run(store: &Store, total: usize, offset: usize, batched: bool) -> (f64, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CALLERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = c;
            while n < total {
                let t = Instant::now();
                let r: Result<Inserted, StoreError> = if batched {
                    store.insert_job(job(offset + n)).await
                } else {
                    store.insert_job_unbatched(job(offset + n)).await
                };
                assert!(!r.expect("insert").duplicate);
                latencies.push(t.elapsed());
                n += CALLERS;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    (total as f64 / elapsed.as_secs_f64(), p99)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn sqlite_intake_single_vs_batched() {
    let t = TestStore::new(Backend::Sqlite).await.unwrap();
    let (single, single_p99) = run(&t.store, 1_000, 0, false).await;
    let (batched, batched_p99) = run(&t.store, 10_000, 1_000, true).await;
    println!(
        "SQLite, synchronous=FULL, {CALLERS} concurrent callers:\n  \
         one transaction per insert: {single:>8.0} inserts/s, p99 {single_p99:?}\n  \
         group commit:               {batched:>8.0} inserts/s, p99 {batched_p99:?}\n  \
         ratio: {:.1}x",
        batched / single
    );
    assert!(
        batched > single,
        "group commit must beat one commit per insert"
    );

    // Claiming through a deep queue: 11,000 queued deliveries over 50 branches.
    let (mut claiming, mut finishing) = (Duration::ZERO, Duration::ZERO);
    let rounds = 300;
    for _ in 0..rounds {
        let t0 = Instant::now();
        let c = t
            .store
            .claim("bench", Duration::from_secs(60))
            .await
            .unwrap()
            .expect("claimable");
        let t1 = Instant::now();
        t.store
            .finish(
                &c.delivery.id,
                "bench",
                Finish::new(DeliveryState::Delivered),
            )
            .await
            .unwrap();
        claiming += t1 - t0;
        finishing += t1.elapsed();
    }
    println!(
        "  with ~11,000 queued, one worker: claim {:?}, finish {:?} (each a synced commit)",
        claiming / rounds,
        finishing / rounds
    );
}
