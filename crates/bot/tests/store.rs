//! The store suite, run on SQLite and on a real PostgreSQL (see `common`).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TestStore};
use courier::store::{
    DeliveryFilter, DeliveryId, DeliveryState, FileCounts, Finish, JobNames, NewDelivery, NewJob,
    Page, Routing, RunTimes, Store, StoreError, Timestamp,
};
use courier_providers::forge_calls::CallSummary;

/// Each case runs once per backend, bounded in time.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let t = TestStore::new(Backend::Sqlite).await.expect("SQLite store");
                tokio::time::timeout(Duration::from_secs(120), super::$case(t))
                    .await
                    .expect("test timed out");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(t) = TestStore::new(Backend::Postgres).await else { return };
                tokio::time::timeout(Duration::from_secs(120), super::$case(t))
                    .await
                    .expect("test timed out");
            }
        }
    )*};
}

on_both!(
    insert_records_job_and_deliveries,
    duplicate_job_returns_existing_ids,
    fifty_concurrent_copies_make_one_job,
    ignored_job_is_upgraded_by_deliverable_copy,
    invalid_jobs_are_refused,
    claim_finish_records_outcome,
    illegal_transitions_are_refused,
    same_key_runs_in_arrival_order,
    different_keys_run_concurrently,
    expired_lease_is_reclaimed_and_stale_owner_refused,
    renewed_lease_is_not_reclaimed,
    newer_queued_export_supersedes_older,
    supersede_spares_another_hooks_delivery_to_the_same_branch,
    a_failure_report_never_supersedes_an_export,
    running_delivery_is_not_superseded,
    retry_later_waits_until_due,
    a_rate_limit_wait_does_not_count_towards_the_retry_limit,
    requeue_puts_finished_back,
    list_filters_and_pages,
    the_dashboard_reads_names_directories_and_each_targets_newest,
    metrics_reads,
    batched_inserts_answer_everyone,
    concurrent_workers_on_two_handles_never_overlap,
    bodies_are_forgotten_and_history_pruned,
    replicas_share_the_queue_and_take_over_a_dead_one,
);

fn job(job_id: &str, targets: &[(&str, &str, &str, &str)]) -> NewJob {
    NewJob {
        workspace_id: "ws1".into(),
        job_id: job_id.into(),
        hook_id: "5".into(),
        design_system_id: "ds1".into(),
        status: "Success".into(),
        ignored: false,
        body: format!(r#"{{"job":{{"id":"{job_id}"}}}}"#).into_bytes(),
        routing: if targets.is_empty() {
            Routing::BuildOnly
        } else {
            Routing::Routed
        },
        names: JobNames {
            design_system: format!("Design system of {job_id}"),
            version: "Release 1 v1.0".into(),
            exporter: "Tokens exporter".into(),
        },
        deliveries: targets
            .iter()
            .map(|(hook, key, repo, branch)| NewDelivery {
                target_key: (*key).into(),
                hook_id: (*hook).into(),
                repository: (*repo).into(),
                // The repository's name stands for its connection's here.
                connection: repo.rsplit('/').next().unwrap_or_default().into(),
                head_branch: (*branch).into(),
            })
            .collect(),
    }
}

/// One job with one delivery for hook `hook`, target `key`, to `repo`@`branch`.
async fn one(
    store: &Store,
    job_id: &str,
    hook: &str,
    key: &str,
    repo: &str,
    branch: &str,
) -> DeliveryId {
    let inserted = store
        .insert_job(job(job_id, &[(hook, key, repo, branch)]))
        .await
        .expect("insert");
    assert!(!inserted.duplicate);
    inserted
        .deliveries
        .into_iter()
        .next()
        .expect("one delivery")
}

const LEASE: Duration = Duration::from_secs(30);

async fn state_of(store: &Store, id: &DeliveryId) -> DeliveryState {
    store
        .get_delivery(id)
        .await
        .unwrap()
        .expect("delivery exists")
        .delivery
        .state
}

async fn insert_records_job_and_deliveries(t: TestStore) {
    let s = &t.store;
    let inserted = s
        .insert_job(job(
            "j1",
            &[
                ("5", "hooks[0].targets[0]", "acme/web", "courier/5-0"),
                ("5", "hooks[0].targets[1]", "acme/app", "courier/5-1"),
            ],
        ))
        .await
        .unwrap();
    assert!(!inserted.duplicate);
    assert_eq!(inserted.deliveries.len(), 2);
    assert!(
        inserted.deliveries[0] < inserted.deliveries[1],
        "ids follow arrival order"
    );

    let detail = s
        .get_job(&inserted.job)
        .await
        .unwrap()
        .expect("job recorded");
    assert_eq!(detail.job.job_id, "j1");
    assert_eq!(detail.job.workspace_id, "ws1");
    assert_eq!(detail.job.status, "Success");
    assert_eq!(detail.job.routing, Routing::Routed);
    assert!(!detail.job.ignored);
    let ids: Vec<_> = detail.deliveries.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids, inserted.deliveries);
    let d = &detail.deliveries[1];
    assert_eq!(
        (d.repository.as_str(), d.head_branch.as_str()),
        ("acme/app", "courier/5-1")
    );
    assert_eq!(d.state, DeliveryState::Queued);
    assert_eq!(d.attempts, 0);
    assert_eq!(d.job_id, "j1");

    let body = s.job_body(&inserted.job).await.unwrap().expect("body kept");
    assert_eq!(body, br#"{"job":{"id":"j1"}}"#);
    let found = s
        .find_job("ws1", "j1")
        .await
        .unwrap()
        .expect("found by platform id");
    assert_eq!(found.job.id, inserted.job);
    assert!(s.find_job("ws2", "j1").await.unwrap().is_none());

    // Build-only and unrouted jobs are recorded without deliveries.
    let mut unrouted = job("j2", &[]);
    unrouted.routing = Routing::Unrouted {
        reason: "no hook matches hook_id 9".into(),
    };
    let inserted = s.insert_job(unrouted).await.unwrap();
    assert!(inserted.deliveries.is_empty());
    let detail = s.get_job(&inserted.job).await.unwrap().unwrap();
    assert_eq!(
        detail.job.routing,
        Routing::Unrouted {
            reason: "no hook matches hook_id 9".into()
        }
    );
}

async fn duplicate_job_returns_existing_ids(t: TestStore) {
    let s = &t.store;
    let first = s
        .insert_job(job(
            "j1",
            &[("5", "t0", "acme/web", "b"), ("5", "t1", "acme/web", "c")],
        ))
        .await
        .unwrap();
    let again = s
        .insert_job(job(
            "j1",
            &[("5", "t0", "acme/web", "b"), ("5", "t1", "acme/web", "c")],
        ))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.job, first.job);
    assert_eq!(again.deliveries, first.deliveries);
    // The unbatched path agrees.
    let third = s
        .insert_job_unbatched(job("j1", &[("5", "t0", "acme/web", "b")]))
        .await
        .unwrap();
    assert!(third.duplicate);
    assert_eq!(third.deliveries, first.deliveries);
    assert_eq!(s.queue_depth().await.unwrap(), 2, "no new deliveries");
    // The same job id in another workspace is another job.
    let mut other = job("j1", &[("5", "t0", "acme/web", "b")]);
    other.workspace_id = "ws2".into();
    let other = s.insert_job(other).await.unwrap();
    assert!(!other.duplicate);
    assert_ne!(other.job, first.job);
}

async fn fifty_concurrent_copies_make_one_job(t: TestStore) {
    // Two handles on one database, as two replicas receiving copies of the same job.
    let stores = [t.store.clone(), t.reopen().await];
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let copy = job(
                "j-dup",
                &[("5", "t0", "acme/web", "b"), ("5", "t1", "acme/x", "b")],
            );
            if i % 3 == 0 {
                s.insert_job_unbatched(copy).await
            } else {
                s.insert_job(copy).await
            }
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().expect("every copy is answered"));
    }
    let fresh: Vec<_> = answers.iter().filter(|a| !a.duplicate).collect();
    assert_eq!(fresh.len(), 1, "exactly one copy creates the job");
    for a in &answers {
        assert_eq!(a.job, fresh[0].job);
        assert_eq!(a.deliveries, fresh[0].deliveries);
    }
    let counts = t.store.counts_by_state().await.unwrap();
    assert_eq!(counts[&DeliveryState::Queued], 2);
}

async fn ignored_job_is_upgraded_by_deliverable_copy(t: TestStore) {
    let s = &t.store;
    let mut running = job("j1", &[]);
    running.status = "InProgress".into();
    running.ignored = true;
    let first = s.insert_job(running.clone()).await.unwrap();
    assert!(first.deliveries.is_empty());
    // Another non-deliverable copy changes nothing.
    let again = s.insert_job(running).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.job, first.job);

    let done = s
        .insert_job(job("j1", &[("5", "t0", "acme/web", "b")]))
        .await
        .unwrap();
    assert!(!done.duplicate, "the deliverable copy is new work");
    assert_eq!(done.job, first.job, "same job record");
    assert_eq!(done.deliveries.len(), 1);
    let detail = s.get_job(&first.job).await.unwrap().unwrap();
    assert_eq!(detail.job.status, "Success");
    assert!(!detail.job.ignored);

    let late = s
        .insert_job(job("j1", &[("5", "t0", "acme/web", "b")]))
        .await
        .unwrap();
    assert!(late.duplicate);
    assert_eq!(late.deliveries, done.deliveries);
}

async fn invalid_jobs_are_refused(t: TestStore) {
    let s = &t.store;
    let twice = job(
        "j1",
        &[("5", "t0", "acme/web", "b"), ("5", "t0", "acme/app", "b")],
    );
    match s.insert_job(twice).await {
        Err(StoreError::InvalidJob { reason, .. }) => assert!(reason.contains("t0"), "{reason}"),
        other => panic!("expected InvalidJob, got {other:?}"),
    }
    let mut ignored_with_targets = job("j2", &[("5", "t0", "acme/web", "b")]);
    ignored_with_targets.ignored = true;
    assert!(matches!(
        s.insert_job(ignored_with_targets).await,
        Err(StoreError::InvalidJob { .. })
    ));
    let mut nul = job("j3", &[("5", "t0", "acme/web", "b")]);
    nul.job_id = "j\0-3".into();
    assert!(matches!(
        s.insert_job(nul).await,
        Err(StoreError::InvalidJob { .. })
    ));
    let long = job("j4", &[("5", "t0", "acme/web", &"b".repeat(5000))]);
    match s.insert_job(long).await {
        Err(StoreError::InvalidJob { reason, .. }) => {
            assert!(reason.contains("head branch"), "{reason}")
        }
        other => panic!("expected InvalidJob, got {other:?}"),
    }
    assert!(s.find_job("ws1", "j1").await.unwrap().is_none());
    // The store still takes good jobs afterwards.
    one(s, "j5", "5", "t0", "acme/web", "b").await;
}

async fn claim_finish_records_outcome(t: TestStore) {
    let s = &t.store;
    let id = one(s, "j1", "5", "t0", "acme/web", "courier/5").await;
    let before = Timestamp::now();
    let claimed = s.claim("w1", LEASE).await.unwrap().expect("claimable");
    assert_eq!(claimed.delivery.id, id);
    assert_eq!(claimed.attempt, 1);
    assert_eq!(claimed.delivery.state, DeliveryState::Running);
    assert_eq!(claimed.delivery.lease_owner.as_deref(), Some("w1"));
    let expiry = claimed.delivery.lease_expires_at.expect("lease set");
    assert!(expiry >= before.plus(LEASE), "lease runs from the claim");
    assert_eq!(claimed.job.job_id, "j1");
    assert_eq!(
        claimed.body.as_deref(),
        Some(br#"{"job":{"id":"j1"}}"#.as_slice())
    );
    assert!(
        s.claim("w2", LEASE).await.unwrap().is_none(),
        "nothing else to claim"
    );

    s.renew(&id, "w1", LEASE).await.unwrap();
    let finished = s
        .finish(
            &id,
            "w1",
            Finish {
                state: DeliveryState::Delivered,
                pr_url: Some("https://github.example/acme/web/pull/7".into()),
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                files: Some(FileCounts {
                    added: 3,
                    modified: 2,
                    deleted: 1,
                }),
                error: None,
                warnings: vec!["label `design` does not exist".into()],
                timings: [("push".to_owned(), 120), ("total".to_owned(), 900)].into(),
                tokens: Some(token_diff()),
                directories: Vec::new(),
                forge_calls: vec![CallSummary {
                    call: "create pull request".into(),
                    count: 1,
                    ms: 340,
                    retries: 1,
                    failed: 0,
                }],
            },
        )
        .await
        .unwrap();
    assert_eq!(finished.state, DeliveryState::Delivered);
    assert_eq!(finished.lease_owner, None);
    assert!(finished.finished_at.is_some());

    let detail = s.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(detail.forge_calls[0].call, "create pull request");
    assert_eq!(
        (detail.forge_calls.len(), detail.forge_calls[0].retries),
        (1, 1)
    );
    let d = &detail.delivery;
    assert_eq!(
        d.pr_url.as_deref(),
        Some("https://github.example/acme/web/pull/7")
    );
    assert_eq!(
        d.timings,
        Some([("push".to_owned(), 120), ("total".to_owned(), 900)].into())
    );
    assert_eq!(
        d.commit.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(
        d.files,
        Some(FileCounts {
            added: 3,
            modified: 2,
            deleted: 1
        })
    );
    assert_eq!(d.warnings, vec!["label `design` does not exist".to_owned()]);
    assert_eq!(detail.tokens, Some(token_diff()));
    assert_eq!(d.attempts, 1);
    assert!(d.started_at.is_some());
    assert_eq!(detail.job.job_id, "j1");
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].owner, "w1");
    assert_eq!(detail.attempts[0].outcome.as_deref(), Some("delivered"));
    assert!(detail.attempts[0].finished_at.is_some());

    // A permanent failure keeps its reason.
    let id2 = one(s, "j2", "5", "t0", "acme/web", "courier/5").await;
    let c = s.claim("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(c.delivery.id, id2);
    let failed = s
        .fail(&id2, "w1", "repository acme/web not found")
        .await
        .unwrap();
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("repository acme/web not found")
    );
    let detail = s.get_delivery(&id2).await.unwrap().unwrap();
    assert_eq!(
        detail.attempts[0].error.as_deref(),
        Some("repository acme/web not found")
    );

    // The view serialises with readable states and times.
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["delivery"]["state"], "failed");
    assert!(
        json["delivery"]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

async fn illegal_transitions_are_refused(t: TestStore) {
    let s = &t.store;
    let id = one(s, "j1", "5", "t0", "acme/web", "b").await;
    // Not claimed: nobody holds it.
    match s
        .finish(&id, "w1", Finish::new(DeliveryState::Delivered))
        .await
    {
        Err(StoreError::LeaseLost { state, holder, .. }) => {
            assert_eq!(state, DeliveryState::Queued);
            assert_eq!(holder, None);
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert!(matches!(
        s.renew(&id, "w1", LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        s.retry_later(&id, "w1", Timestamp::now(), "x", &RunTimes::default())
            .await,
        Err(StoreError::LeaseLost { .. })
    ));

    s.claim("w1", LEASE).await.unwrap().unwrap();
    // Running cannot be requeued.
    match s.requeue(&id).await {
        Err(StoreError::IllegalTransition { from, to, .. }) => {
            assert_eq!((from, to), (DeliveryState::Running, DeliveryState::Queued));
        }
        other => panic!("expected IllegalTransition, got {other:?}"),
    }
    // Someone else cannot finish it.
    match s
        .finish(&id, "w2", Finish::new(DeliveryState::Delivered))
        .await
    {
        Err(StoreError::LeaseLost {
            owner,
            holder,
            state,
            ..
        }) => {
            assert_eq!(owner, "w2");
            assert_eq!(holder.as_deref(), Some("w1"));
            assert_eq!(state, DeliveryState::Running);
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    s.finish(&id, "w1", Finish::new(DeliveryState::NoChanges))
        .await
        .unwrap();
    // Finished: not again, not renewed, not retried.
    assert!(matches!(
        s.finish(&id, "w1", Finish::new(DeliveryState::Delivered))
            .await,
        Err(StoreError::LeaseLost {
            state: DeliveryState::NoChanges,
            ..
        })
    ));
    assert!(matches!(
        s.renew(&id, "w1", LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(state_of(s, &id).await, DeliveryState::NoChanges);

    let unknown: DeliveryId = "01KAZZZZZZZZZZZZZZZZZZZZZZ".parse().unwrap();
    assert!(matches!(
        s.requeue(&unknown).await,
        Err(StoreError::NoSuchDelivery(_))
    ));
    assert!(matches!(
        s.renew(&unknown, "w1", LEASE).await,
        Err(StoreError::NoSuchDelivery(_))
    ));
    assert!(s.get_delivery(&unknown).await.unwrap().is_none());
}

async fn same_key_runs_in_arrival_order(t: TestStore) {
    let s = &t.store;
    // Three hooks deliver to the same repository and branch: one key, no superseding.
    let a = one(s, "j1", "1", "t0", "acme/web", "tokens").await;
    let b = one(s, "j2", "2", "t0", "acme/web", "tokens").await;
    let c = one(s, "j3", "3", "t0", "acme/web", "tokens").await;
    let mut order = Vec::new();
    for _ in 0..3 {
        let claimed = s.claim("w1", LEASE).await.unwrap().expect("next in line");
        assert!(
            s.claim("w2", LEASE).await.unwrap().is_none(),
            "a second delivery for the same branch must wait"
        );
        s.finish(
            &claimed.delivery.id,
            "w1",
            Finish::new(DeliveryState::Delivered),
        )
        .await
        .unwrap();
        order.push(claimed.delivery.id);
    }
    assert_eq!(order, vec![a, b, c]);
    assert!(s.claim("w1", LEASE).await.unwrap().is_none());
}

async fn different_keys_run_concurrently(t: TestStore) {
    let s = &t.store;
    let a1 = one(s, "j1", "1", "t0", "acme/web", "tokens").await;
    let a2 = one(s, "j2", "2", "t0", "acme/web", "tokens").await;
    let b1 = one(s, "j3", "3", "t0", "acme/web", "other-branch").await;
    let c1 = one(s, "j4", "4", "t0", "acme/app", "tokens").await;
    let first = s.claim("w1", LEASE).await.unwrap().unwrap();
    let second = s.claim("w2", LEASE).await.unwrap().unwrap();
    let third = s.claim("w3", LEASE).await.unwrap().unwrap();
    assert_eq!(
        [
            first.delivery.id,
            second.delivery.id,
            third.delivery.id.clone()
        ],
        [a1, b1, c1],
        "the oldest of each key, skipping the key in use"
    );
    assert!(
        s.claim("w4", LEASE).await.unwrap().is_none(),
        "{a2} waits for its branch"
    );
    s.finish(
        &third.delivery.id,
        "w3",
        Finish::new(DeliveryState::UpToDate),
    )
    .await
    .unwrap();
    assert!(
        s.claim("w4", LEASE).await.unwrap().is_none(),
        "another key finishing frees nothing"
    );
}

async fn expired_lease_is_reclaimed_and_stale_owner_refused(t: TestStore) {
    let s = &t.store;
    let id = one(s, "j1", "5", "t0", "acme/web", "b").await;
    let behind = one(s, "j2", "6", "t0", "acme/web", "b").await;
    let first = s
        .claim("w1", Duration::from_millis(1000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.delivery.id, id);
    assert!(
        s.claim("w2", LEASE).await.unwrap().is_none(),
        "lease still live"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let second = s
        .claim("w2", LEASE)
        .await
        .unwrap()
        .expect("expired lease is taken over");
    assert_eq!(
        second.delivery.id, id,
        "the crashed delivery, not the one behind it"
    );
    assert_eq!(second.attempt, 2);
    assert_eq!(second.delivery.lease_owner.as_deref(), Some("w2"));

    match s
        .finish(&id, "w1", Finish::new(DeliveryState::Delivered))
        .await
    {
        Err(StoreError::LeaseLost { holder, .. }) => assert_eq!(holder.as_deref(), Some("w2")),
        other => panic!("stale owner must be refused, got {other:?}"),
    }
    assert!(matches!(
        s.renew(&id, "w1", LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    s.finish(&id, "w2", Finish::new(DeliveryState::Delivered))
        .await
        .unwrap();

    let detail = s.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(detail.attempts.len(), 2);
    assert_eq!(detail.attempts[0].owner, "w1");
    assert_eq!(detail.attempts[0].outcome.as_deref(), Some("lease_expired"));
    assert_eq!(detail.attempts[1].outcome.as_deref(), Some("delivered"));
    assert_eq!(
        s.claim("w1", LEASE).await.unwrap().unwrap().delivery.id,
        behind
    );
}

async fn renewed_lease_is_not_reclaimed(t: TestStore) {
    let s = &t.store;
    let id = one(s, "j1", "5", "t0", "acme/web", "b").await;
    s.claim("w1", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    s.renew(&id, "w1", LEASE).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        s.claim("w2", LEASE).await.unwrap().is_none(),
        "renewed lease holds"
    );
    s.finish(&id, "w1", Finish::new(DeliveryState::Delivered))
        .await
        .unwrap();
}

async fn newer_queued_export_supersedes_older(t: TestStore) {
    let s = &t.store;
    let old1 = one(s, "j1", "5", "t0", "acme/web", "b").await;
    let old2 = one(s, "j2", "5", "t0", "acme/web", "b").await;
    let other_target = one(s, "j3", "5", "t1", "acme/app", "b").await;
    let newest = one(s, "j4", "5", "t0", "acme/web", "b").await;

    // Claims go in arrival order: the two old exports come first and are superseded on
    // the way, then the other target (which arrived before the newest export).
    let first = s.claim("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(
        first.delivery.id, other_target,
        "another target is not superseded"
    );
    let second = s.claim("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(
        second.delivery.id, newest,
        "only the newest export of a target is delivered"
    );
    assert!(s.claim("w3", LEASE).await.unwrap().is_none());
    for old in [&old1, &old2] {
        let d = s.get_delivery(old).await.unwrap().unwrap().delivery;
        assert_eq!(d.state, DeliveryState::Superseded);
        assert!(d.last_error.as_deref().unwrap().contains(newest.as_str()));
        assert_eq!(d.superseded_by.as_ref(), Some(&newest));
        assert!(d.finished_at.is_some());
        assert_eq!(d.attempts, 0);
    }
    let counts = s.counts_by_state().await.unwrap();
    assert_eq!(counts[&DeliveryState::Superseded], 2);
}

/// Two hooks delivering to one repository and branch share its queue, but a newer export
/// of one hook supersedes only that hook's older exports.
async fn supersede_spares_another_hooks_delivery_to_the_same_branch(t: TestStore) {
    let s = &t.store;
    let old = one(s, "j1", "5", "t0", "acme/web", "b").await;
    let other_hook = one(s, "j2", "6", "t0", "acme/web", "b").await;
    let newest = one(s, "j3", "5", "t0", "acme/web", "b").await;

    let first = s.claim("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(first.delivery.id, other_hook, "next in line on the branch");
    assert_eq!(state_of(s, &old).await, DeliveryState::Superseded);
    s.finish(&other_hook, "w1", Finish::new(DeliveryState::Delivered))
        .await
        .unwrap();
    let second = s.claim("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(second.delivery.id, newest);
    assert_eq!(state_of(s, &other_hook).await, DeliveryState::Delivered);
}

/// A failed job's report queued behind a waiting export does not make that export stale:
/// only a newer export does (and it makes an older report stale too).
async fn a_failure_report_never_supersedes_an_export(t: TestStore) {
    let s = &t.store;
    let export = one(s, "j1", "5", "t0", "acme/web", "b").await;
    let mut failed = job("j2", &[("5", "t0", "acme/web", "b")]);
    failed.status = "Failure".into();
    let report = s.insert_job(failed).await.unwrap().deliveries[0].clone();

    let first = s.claim("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(first.delivery.id, export, "the export is not superseded");
    s.finish(&export, "w1", Finish::new(DeliveryState::Delivered))
        .await
        .unwrap();
    let second = s.claim("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(second.delivery.id, report);
    s.finish(&report, "w1", Finish::new(DeliveryState::Commented))
        .await
        .unwrap();

    let mut failed = job("j3", &[("5", "t0", "acme/web", "b")]);
    failed.status = "Failure".into();
    let stale = s.insert_job(failed).await.unwrap().deliveries[0].clone();
    let newest = one(s, "j4", "5", "t0", "acme/web", "b").await;
    let third = s.claim("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(third.delivery.id, newest);
    assert_eq!(state_of(s, &stale).await, DeliveryState::Superseded);
}

async fn running_delivery_is_not_superseded(t: TestStore) {
    let s = &t.store;
    let running = one(s, "j1", "5", "t0", "acme/web", "b").await;
    s.claim("w1", LEASE).await.unwrap().unwrap();
    let newer = one(s, "j2", "5", "t0", "acme/web", "b").await;
    assert!(
        s.claim("w2", LEASE).await.unwrap().is_none(),
        "same branch is busy"
    );
    assert_eq!(state_of(s, &running).await, DeliveryState::Running);
    s.finish(&running, "w1", Finish::new(DeliveryState::Delivered))
        .await
        .unwrap();
    assert_eq!(
        s.claim("w2", LEASE).await.unwrap().unwrap().delivery.id,
        newer
    );

    // A retrying delivery with a newer export queued is superseded too.
    let r = one(s, "j3", "6", "t0", "acme/x", "b").await;
    s.claim("w3", LEASE).await.unwrap().unwrap();
    s.retry_later(&r, "w3", Timestamp::now(), "HTTP 503", &RunTimes::default())
        .await
        .unwrap();
    let r2 = one(s, "j4", "6", "t0", "acme/x", "b").await;
    assert_eq!(s.claim("w3", LEASE).await.unwrap().unwrap().delivery.id, r2);
    assert_eq!(state_of(s, &r).await, DeliveryState::Superseded);
}

async fn a_rate_limit_wait_does_not_count_towards_the_retry_limit(t: TestStore) {
    let s = &t.store;
    let id = one(s, "j1", "5", "t0", "acme/web", "b").await;
    s.claim("w1", LEASE).await.unwrap().unwrap();
    let at = Timestamp::now().plus(Duration::from_millis(300));
    let view = s
        .wait_until(
            &id,
            "w1",
            at,
            "provider_rate_limited: retry after 3600s",
            &RunTimes::default(),
        )
        .await
        .unwrap();
    assert_eq!(view.state, DeliveryState::Retrying);
    assert_eq!(view.next_attempt_at, Some(at));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = s.claim("w2", LEASE).await.unwrap().expect("due now");
    assert_eq!(
        (again.attempt, again.attempt_in_run),
        (2, 1),
        "the wait is in the history, not in the run's count"
    );
    let detail = s.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(detail.attempts[0].outcome.as_deref(), Some("rate_limited"));
}

async fn retry_later_waits_until_due(t: TestStore) {
    let s = &t.store;
    let id = one(s, "j1", "5", "t0", "acme/web", "b").await;
    let behind = one(s, "j2", "6", "t0", "acme/web", "b").await;
    s.claim("w1", LEASE).await.unwrap().unwrap();
    // What the failed run measured is kept for its record; only by the lease's holder.
    let times = RunTimes {
        timings: [
            ("pull_request".to_owned(), 31_000),
            ("total".to_owned(), 32_000),
        ]
        .into(),
        forge_calls: vec![CallSummary {
            call: "create pull request".into(),
            count: 1,
            ms: 31_000,
            retries: 4,
            failed: 1,
        }],
    };
    let at = Timestamp::now().plus(Duration::from_millis(1000));
    assert!(matches!(
        s.retry_later(&id, "w9", at, "GitHub answered 502", &times)
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    let view = s
        .retry_later(&id, "w1", at, "GitHub answered 502", &times)
        .await
        .unwrap();
    assert_eq!(view.state, DeliveryState::Retrying);
    assert_eq!(view.next_attempt_at, Some(at));
    assert_eq!(view.last_error.as_deref(), Some("GitHub answered 502"));
    assert_eq!(view.lease_owner, None);
    assert_eq!(view.timings.as_ref(), Some(&times.timings));
    let kept = s.get_delivery(&id).await.unwrap().unwrap().forge_calls;
    assert_eq!(kept, times.forge_calls);
    assert!(
        s.claim("w2", LEASE).await.unwrap().is_none(),
        "not due yet, and {behind} must not overtake it"
    );
    assert_eq!(s.queue_depth().await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = s.claim("w2", LEASE).await.unwrap().expect("due now");
    assert_eq!(again.delivery.id, id);
    assert_eq!((again.attempt, again.attempt_in_run), (2, 2));
    let detail = s.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(detail.attempts[0].outcome.as_deref(), Some("retry"));
    assert_eq!(
        detail.attempts[0].error.as_deref(),
        Some("GitHub answered 502")
    );
    assert_eq!(detail.attempts[1].finished_at, None);
}

async fn requeue_puts_finished_back(t: TestStore) {
    let s = &t.store;
    let id = one(s, "j1", "5", "t0", "acme/web", "b").await;
    s.claim("w1", LEASE).await.unwrap().unwrap();
    let mut done = Finish::new(DeliveryState::Delivered);
    done.pr_url = Some("https://github.example/acme/web/pull/1".into());
    s.finish(&id, "w1", done).await.unwrap();

    let requeued = s.requeue(&id).await.unwrap();
    assert_eq!(requeued.state, DeliveryState::Queued);
    assert_eq!(requeued.finished_at, None);
    assert_eq!(
        requeued.pr_url.as_deref(),
        Some("https://github.example/acme/web/pull/1"),
        "the PR it converges on is kept"
    );
    // Requeueing a queued delivery changes nothing.
    assert_eq!(s.requeue(&id).await.unwrap(), requeued);
    let again = s.claim("w2", LEASE).await.unwrap().unwrap();
    assert_eq!((again.delivery.id.clone(), again.attempt), (id.clone(), 2));
    assert_eq!(
        again.attempt_in_run, 1,
        "a retry limit starts afresh after a requeue"
    );
    s.fail(&id, "w2", "boom").await.unwrap();

    // A whole job.
    let job = s.get_delivery(&id).await.unwrap().unwrap().job.id;
    let all = s.requeue_job(&job).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, DeliveryState::Queued);
    let missing = "01KAZZZZZZZZZZZZZZZZZZZZZZ".parse().unwrap();
    assert!(matches!(
        s.requeue_job(&missing).await,
        Err(StoreError::NoSuchJob(_))
    ));
}

async fn list_filters_and_pages(t: TestStore) {
    let s = &t.store;
    let mut ids = Vec::new();
    for i in 0..7 {
        let repo = if i % 2 == 0 { "acme/web" } else { "acme/app" };
        let hook = if i < 4 { "5" } else { "6" };
        ids.push(
            one(
                s,
                &format!("j{i}"),
                hook,
                &format!("t{i}"),
                repo,
                &format!("b{i}"),
            )
            .await,
        );
    }
    // Make ids[0] delivered.
    let c = s.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(c.delivery.id, ids[0]);
    s.finish(&ids[0], "w", Finish::new(DeliveryState::Delivered))
        .await
        .unwrap();

    let all = s
        .list_deliveries(&DeliveryFilter::default(), &Page::default())
        .await
        .unwrap();
    let listed: Vec<_> = all.iter().map(|d| d.id.clone()).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);

    let by_state = |state| DeliveryFilter {
        state: Some(state),
        ..Default::default()
    };
    let delivered = s
        .list_deliveries(&by_state(DeliveryState::Delivered), &Page::default())
        .await
        .unwrap();
    assert_eq!(
        delivered.iter().map(|d| &d.id).collect::<Vec<_>>(),
        vec![&ids[0]]
    );
    let queued = s
        .list_deliveries(&by_state(DeliveryState::Queued), &Page::default())
        .await
        .unwrap();
    assert_eq!(queued.len(), 6);

    let web = DeliveryFilter {
        repository: Some("acme/web".into()),
        ..Default::default()
    };
    let web = s.list_deliveries(&web, &Page::default()).await.unwrap();
    assert_eq!(web.len(), 4);
    assert!(web.iter().all(|d| d.repository == "acme/web"));

    let hook6_app = DeliveryFilter {
        hook_id: Some("6".into()),
        repository: Some("acme/app".into()),
        state: Some(DeliveryState::Queued),
        ..Default::default()
    };
    let got = s
        .list_deliveries(&hook6_app, &Page::default())
        .await
        .unwrap();
    assert_eq!(got.iter().map(|d| &d.id).collect::<Vec<_>>(), vec![&ids[5]]);

    // Connection, the platform's job id, and free text in any case, with `%` and `_`
    // taken literally.
    let matching = |filter: DeliveryFilter| async move {
        let mut got: Vec<_> = s
            .list_deliveries(&filter, &Page::default())
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        got.reverse();
        got
    };
    let app = matching(DeliveryFilter {
        connection: Some("app".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(app, vec![ids[1].clone(), ids[3].clone(), ids[5].clone()]);
    let job3 = matching(DeliveryFilter {
        job_id: Some("j3".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(job3, vec![ids[3].clone()]);
    for (text, want) in [
        ("DESIGN SYSTEM OF J4", vec![ids[4].clone()]),
        ("b6", vec![ids[6].clone()]),
        ("tokens exporter", ids.clone()),
        ("release 1 V1.0", ids.clone()),
        ("%", vec![]),
        ("design_system", vec![]),
        ("nowhere", vec![]),
    ] {
        let got = matching(DeliveryFilter {
            text: Some(text.into()),
            ..Default::default()
        })
        .await;
        assert_eq!(got, want, "{text}");
    }

    // Pages of 3: 3 + 3 + 1, no overlap, same order as the whole list.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_deliveries(
                &DeliveryFilter::default(),
                &Page {
                    limit: 3,
                    after: after.clone(),
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|d| d.id.clone());
        paged.extend(page.into_iter().map(|d| d.id));
    }
    assert_eq!(paged, newest_first);
}

async fn bodies_are_forgotten_and_history_pruned(t: TestStore) {
    let s = &t.store;
    let done = one(s, "j1", "5", "t0", "acme/web", "b").await;
    let waiting = one(s, "j2", "6", "t0", "acme/web", "c").await;
    let mut build_only = job("j3", &[]);
    build_only.routing = Routing::BuildOnly;
    let build_only = s.insert_job(build_only).await.unwrap().job;
    let c = s.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(c.delivery.id, done);
    s.finish(&done, "w", Finish::new(DeliveryState::Delivered))
        .await
        .unwrap();
    let job_of = |id: &DeliveryId| {
        let id = id.clone();
        async move { s.get_delivery(&id).await.unwrap().unwrap().job.id }
    };
    let (done_job, waiting_job) = (job_of(&done).await, job_of(&waiting).await);

    // Nothing was received before the epoch.
    assert_eq!(s.forget_bodies(Timestamp(0)).await.unwrap(), 0);
    let later = Timestamp::now().plus(Duration::from_secs(1));
    assert_eq!(
        s.forget_bodies(later).await.unwrap(),
        2,
        "the settled job and the build-only one"
    );
    assert_eq!(s.job_body(&done_job).await.unwrap(), None);
    assert_eq!(s.job_body(&build_only).await.unwrap(), None);
    assert!(
        s.job_body(&waiting_job).await.unwrap().is_some(),
        "still needed"
    );

    let pruned = s.prune(later).await.unwrap();
    assert_eq!((pruned.jobs, pruned.deliveries, pruned.attempts), (2, 1, 1));
    assert!(s.get_delivery(&done).await.unwrap().is_none());
    assert!(s.get_job(&build_only).await.unwrap().is_none());
    assert!(s.get_delivery(&waiting).await.unwrap().is_some());
    assert!(s.get_job(&waiting_job).await.unwrap().is_some());
    // A pruned job is new work if the platform sends it again.
    let again = s
        .insert_job(job("j1", &[("5", "t0", "acme/web", "b")]))
        .await
        .unwrap();
    assert!(!again.duplicate);
}

async fn metrics_reads(t: TestStore) {
    let s = &t.store;
    s.ping().await.unwrap();
    assert_eq!(s.queue_depth().await.unwrap(), 0);
    assert_eq!(s.oldest_queued_age().await.unwrap(), None);
    let a = one(s, "j1", "5", "t0", "acme/web", "b").await;
    one(s, "j2", "5", "t1", "acme/web", "c").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let age = s
        .oldest_queued_age()
        .await
        .unwrap()
        .expect("something waits");
    assert!(
        age >= Duration::from_millis(50) && age < Duration::from_secs(60),
        "{age:?}"
    );
    s.claim("w", LEASE).await.unwrap().unwrap();
    s.finish(&a, "w", Finish::new(DeliveryState::BranchDiverged))
        .await
        .unwrap();
    assert_eq!(s.queue_depth().await.unwrap(), 1);
    let counts = s.counts_by_state().await.unwrap();
    assert_eq!(
        counts.len(),
        DeliveryState::ALL.len(),
        "every state reported"
    );
    assert_eq!(counts[&DeliveryState::Queued], 1);
    assert_eq!(counts[&DeliveryState::BranchDiverged], 1);
    assert_eq!(counts.values().sum::<u64>(), 2);
}

async fn batched_inserts_answer_everyone(t: TestStore) {
    let s = &t.store;
    // 300 distinct jobs and, mixed in, 5 copies each of 4 more: enough concurrency for
    // several to share a batch, duplicates inside one batch included.
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = s.clone();
        tasks.push(tokio::spawn(async move {
            (
                format!("d{i}"),
                store
                    .insert_job(job(
                        &format!("d{i}"),
                        &[("5", "t0", "acme/web", &format!("b{i}"))],
                    ))
                    .await,
            )
        }));
        if i % 60 == 0 {
            for _ in 0..5 {
                let store = s.clone();
                let k = i / 60;
                tasks.push(tokio::spawn(async move {
                    (
                        format!("dup{k}"),
                        store
                            .insert_job(job(&format!("dup{k}"), &[("5", "t0", "acme/dup", "b")]))
                            .await,
                    )
                }));
            }
        }
    }
    let mut by_job: HashMap<String, Vec<_>> = HashMap::new();
    for task in tasks {
        let (name, result) = task.await.unwrap();
        by_job
            .entry(name)
            .or_default()
            .push(result.expect("answered with success"));
    }
    assert_eq!(by_job.len(), 305);
    let mut all_deliveries = HashSet::new();
    for (name, answers) in &by_job {
        assert_eq!(
            answers.iter().filter(|a| !a.duplicate).count(),
            1,
            "{name}: one creator"
        );
        assert!(
            answers
                .iter()
                .all(|a| a.deliveries == answers[0].deliveries && a.job == answers[0].job)
        );
        assert_eq!(answers[0].deliveries.len(), 1);
        all_deliveries.insert(answers[0].deliveries[0].clone());
    }
    assert_eq!(all_deliveries.len(), 305);
    assert_eq!(s.queue_depth().await.unwrap(), 305);

    // Durable: a new handle (after this one closes) sees every row.
    s.close().await;
    let reopened = t.reopen().await;
    assert_eq!(reopened.queue_depth().await.unwrap(), 305);
    for answers in by_job.values() {
        assert!(reopened.get_job(&answers[0].job).await.unwrap().is_some());
    }
}

async fn concurrent_workers_on_two_handles_never_overlap(t: TestStore) {
    // 40 deliveries over 5 branches (each its own target, so nothing is superseded), by 6
    // workers on two handles (two replicas). Checks: each delivered exactly once, never
    // two running on one branch, and each branch's deliveries ran in arrival order.
    let stores = [t.store.clone(), t.reopen().await];
    let mut expected: HashMap<String, Vec<DeliveryId>> = HashMap::new();
    for i in 0..40 {
        let branch = format!("b{}", i % 5);
        let id = one(
            &stores[0],
            &format!("j{i}"),
            "5",
            &format!("t{i}"),
            "acme/web",
            &branch,
        )
        .await;
        expected.entry(branch).or_default().push(id);
    }
    let running: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let done: Arc<std::sync::Mutex<Vec<(String, DeliveryId)>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..6 {
        let s = stores[w % 2].clone();
        let running = running.clone();
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            let mut idle = 0;
            while idle < 20 {
                let Some(c) = s.claim(&owner, LEASE).await.expect("claim") else {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                idle = 0;
                let branch = c.delivery.head_branch.clone();
                assert!(
                    running.lock().unwrap().insert(branch.clone()),
                    "two deliveries on {branch} at once"
                );
                done.lock()
                    .unwrap()
                    .push((branch.clone(), c.delivery.id.clone()));
                tokio::time::sleep(Duration::from_millis(2)).await;
                running.lock().unwrap().remove(&branch);
                s.finish(
                    &c.delivery.id,
                    &owner,
                    Finish::new(DeliveryState::Delivered),
                )
                .await
                .expect("finish");
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let done = done.lock().unwrap().clone();
    assert_eq!(done.len(), 40, "each delivery exactly once");
    for (branch, ids) in &expected {
        let ran: Vec<_> = done
            .iter()
            .filter(|(b, _)| b == branch)
            .map(|(_, id)| id.clone())
            .collect();
        assert_eq!(&ran, ids, "arrival order on {branch}");
    }
    let counts = t.store.counts_by_state().await.unwrap();
    assert_eq!(counts[&DeliveryState::Delivered], 40);
}

/// Replicas (or a server and a CLI) starting together on a new database migrate it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_of_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = vec![courier_core::config::Store::Sqlite {
        path: dir.path().join("new.db"),
    }];
    if std::env::var_os("COURIER_SKIP_POSTGRES").is_none_or(|v| v != "1") {
        let server = common::pg_server().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
        configs.push(courier_core::config::Store::Postgres {
            url: secrecy::SecretString::from(server.create_database().await),
        });
    }
    for config in configs {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let config = config.clone();
                tokio::spawn(async move { Store::open(&config).await })
            })
            .collect();
        let mut stores = Vec::new();
        for open in opens {
            stores.push(open.await.unwrap().expect("every concurrent open succeeds"));
        }
        let id = one(&stores[0], "j1", "5", "t0", "acme/web", "b").await;
        assert_eq!(
            stores[3]
                .get_delivery(&id)
                .await
                .unwrap()
                .unwrap()
                .delivery
                .id,
            id
        );
    }
}

async fn replicas_share_the_queue_and_take_over_a_dead_one(t: TestStore) {
    // Three handles play three replicas. 200 jobs for 20 targets (one branch each) are
    // posted twice each, the copies to different replicas, while two workers per replica
    // deliver. Replica 0's workers die holding their first claim (no renew, no finish).
    const JOBS: usize = 200;
    const TARGETS: usize = 20;
    const DEAD_LEASE: Duration = Duration::from_millis(300);
    let replicas = [t.store.clone(), t.reopen().await, t.reopen().await];
    let intake_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    // (branch, delivery) in the order deliveries were finished as delivered.
    let delivered: Arc<std::sync::Mutex<Vec<(String, DeliveryId)>>> = Arc::default();
    let abandoned: Arc<std::sync::Mutex<Vec<DeliveryId>>> = Arc::default();
    // The live workers wait (bounded) until both dying workers hold a claim. Left to
    // race, the live ones could take every delivery first and leave nothing to abandon:
    // on SQLite, claims queue for the write lock behind the intake writers, and its busy
    // handler favours whoever asks again at once over a waiter asleep in its backoff.
    let dead_claimed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = std::time::Instant::now();

    let mut workers = Vec::new();
    for w in 0..6 {
        let s = replicas[w % 3].clone();
        let (intake_done, running, delivered, abandoned, dead_claimed) = (
            intake_done.clone(),
            running.clone(),
            delivered.clone(),
            abandoned.clone(),
            dead_claimed.clone(),
        );
        workers.push(tokio::spawn(async move {
            let owner = format!("replica-{}/worker-{w}", w % 3);
            let dies = w % 3 == 0;
            let mut idle = 0;
            loop {
                if !dies
                    && dead_claimed.load(std::sync::atomic::Ordering::SeqCst) < 2
                    && started.elapsed() < Duration::from_secs(30)
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                // Only the claim a worker dies with has a short lease: a live worker must
                // not lose its delivery to a slow machine.
                let lease = if dies { DEAD_LEASE } else { LEASE };
                let Some(c) = s.claim(&owner, lease).await.expect("claim") else {
                    if intake_done.load(std::sync::atomic::Ordering::SeqCst) {
                        idle += 1;
                        if idle > 40 {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                idle = 0;
                let branch = c.delivery.head_branch.clone();
                if dies {
                    abandoned.lock().unwrap().push(c.delivery.id);
                    dead_claimed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return; // holds the lease and vanishes
                }
                assert!(
                    running.lock().unwrap().insert(branch.clone()),
                    "two deliveries on {branch} at once"
                );
                tokio::time::sleep(Duration::from_millis(3)).await;
                // Recorded while this worker still holds the branch: recorded after the
                // finish, a slow task could be overtaken by the next delivery of the
                // branch (claimed, run and recorded in between) and the order check
                // below would fail although the store kept the order.
                delivered
                    .lock()
                    .unwrap()
                    .push((branch.clone(), c.delivery.id.clone()));
                running.lock().unwrap().remove(&branch);
                let mut done = Finish::new(DeliveryState::Delivered);
                done.pr_url = Some(format!("https://github.example/acme/web/pull/{branch}"));
                s.finish(&c.delivery.id, &owner, done)
                    .await
                    .expect("a live lease finishes");
            }
        }));
    }

    let mut posts = Vec::new();
    for i in 0..JOBS {
        for copy in 0..2 {
            let s = replicas[(i + copy) % 3].clone();
            posts.push(tokio::spawn(async move {
                let branch = format!("courier/t{}", i % TARGETS);
                let j = job(
                    &format!("job-{i}"),
                    &[("5", &format!("t{}", i % TARGETS), "acme/web", &branch)],
                );
                s.insert_job(j).await.expect("accepted")
            }));
        }
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut answers: HashMap<String, Vec<courier::store::Inserted>> = HashMap::new();
    for p in posts {
        let a = p.await.unwrap();
        answers.entry(a.job.to_string()).or_default().push(a);
    }
    intake_done.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    assert_eq!(answers.len(), JOBS, "one job per platform job");
    for copies in answers.values() {
        assert_eq!(copies.len(), 2);
        assert_eq!(copies.iter().filter(|a| !a.duplicate).count(), 1);
        assert_eq!(copies[0].deliveries, copies[1].deliveries);
    }
    let counts = t.store.counts_by_state().await.unwrap();
    assert_eq!(
        counts[&DeliveryState::Delivered] + counts[&DeliveryState::Superseded],
        JOBS as u64,
        "every delivery settled: {counts:?}"
    );
    assert_eq!(t.store.queue_depth().await.unwrap(), 0);
    assert_eq!(
        counts[&DeliveryState::Running],
        0,
        "the dead replica's claims were taken over"
    );

    let delivered = delivered.lock().unwrap().clone();
    let unique: HashSet<_> = delivered.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(unique.len(), delivered.len(), "nothing delivered twice");
    let all = t
        .store
        .list_deliveries(
            &DeliveryFilter::default(),
            &Page {
                limit: 500,
                after: None,
            },
        )
        .await
        .unwrap();
    let abandoned = abandoned.lock().unwrap().clone();
    assert!(!abandoned.is_empty(), "the dying workers claimed something");
    for id in &abandoned {
        let d = all.iter().find(|d| &d.id == id).unwrap();
        // Both dying workers may take the same delivery in turn (the second claiming
        // after the first one's short lease ran out); then one live worker finishes it.
        let dead_claims = abandoned.iter().filter(|a| *a == id).count() as u32;
        assert_eq!(
            (d.state, d.attempts),
            (DeliveryState::Delivered, dead_claims + 1),
            "{id}, abandoned by the dead replica, was taken over"
        );
    }
    for target in 0..TARGETS {
        let branch = format!("courier/t{target}");
        let order: Vec<_> = delivered
            .iter()
            .filter(|(b, _)| *b == branch)
            .map(|(_, id)| id.clone())
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "arrival order on {branch}"
        );
        let newest = all
            .iter()
            .filter(|d| d.head_branch == branch)
            .map(|d| &d.id)
            .max()
            .unwrap();
        assert_eq!(
            order.last(),
            Some(newest),
            "the newest export of {branch} is delivered"
        );
    }
}

#[tokio::test]
async fn sqlite_file_is_in_wal_mode_and_created_with_its_directory() {
    let t = TestStore::new(Backend::Sqlite).await.unwrap();
    let courier_core::config::Store::Sqlite { path } = &t.config else {
        unreachable!()
    };
    assert!(path.exists());
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

/// `sslmode=verify-full` connects over TLS and checks the server's certificate: accepted
/// with the right CA, refused with only the system's roots.
#[tokio::test]
async fn postgres_over_verified_tls() {
    if std::env::var_os("COURIER_SKIP_POSTGRES").is_some_and(|v| v == "1") {
        return;
    }
    let server = common::pg_server().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    let url = server.create_database().await;
    let verified = courier_core::config::Store::Postgres {
        url: secrecy::SecretString::from(format!(
            "{url}?sslmode=verify-full&sslrootcert={}",
            server.ca.display()
        )),
    };
    let store = Store::open(&verified)
        .await
        .expect("TLS with the server's CA");
    let id = one(&store, "j1", "5", "t0", "acme/web", "b").await;
    assert!(store.get_delivery(&id).await.unwrap().is_some());

    let unverifiable = courier_core::config::Store::Postgres {
        url: secrecy::SecretString::from(format!("{url}?sslmode=verify-full")),
    };
    let err = Store::open(&unverifiable)
        .await
        .expect_err("a self-signed certificate is not in the system's roots");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

#[tokio::test]
async fn postgres_errors_do_not_show_the_password() {
    let config = courier_core::config::Store::Postgres {
        url: secrecy::SecretString::from(
            "postgres://courier:hunter2-secret@127.0.0.1:1/courier?connect_timeout=2",
        ),
    };
    let err = Store::open(&config)
        .await
        .expect_err("nothing listens on port 1");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("127.0.0.1:1/courier"), "{text}");
}

/// A token diff as a delivery records it.
fn token_diff() -> courier_core::tokens::TokenDiff {
    let mut old = courier_core::tokens::FileTokens::default();
    let mut new = courier_core::tokens::FileTokens::default();
    old.insert(":root", "color.primary", "#0969DA");
    new.insert(":root", "color.primary", "#0550AE");
    new.insert("[data-theme=\"dark\"]", "space.4", "16px");
    let mut builder = courier_core::tokens::TokenDiffBuilder::new();
    builder.tokens("src/tokens/colors.css", &old, &new);
    builder.unreadable(
        "src/tokens/broken.json",
        "expected value at line 1 column 2",
    );
    builder.finish()
}

async fn the_dashboard_reads_names_directories_and_each_targets_newest(t: TestStore) {
    let s = &t.store;
    let older = one(s, "j1", "5", "t0", "acme/web", "b0").await;
    let c = s.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(c.delivery.id, older);
    let mut finish = Finish::new(DeliveryState::Failed);
    finish.directories = vec![courier_core::template::DirectoryChanges {
        name: "tokens/color".into(),
        added: 2,
        modified: 1,
        deleted: 0,
    }];
    s.finish(&older, "w", finish.clone()).await.unwrap();
    let newer = one(s, "j2", "5", "t0", "acme/web", "b0").await;
    let other = one(s, "j3", "5", "t1", "acme/app", "b1").await;

    let detail = s.get_delivery(&older).await.unwrap().unwrap();
    assert_eq!(detail.directories, finish.directories);
    let names = JobNames {
        design_system: "Design system of j1".into(),
        version: "Release 1 v1.0".into(),
        exporter: "Tokens exporter".into(),
    };
    assert_eq!(detail.delivery.names.as_ref(), Some(&names));
    assert_eq!(detail.job.names.as_ref(), Some(&names));
    assert_eq!(detail.delivery.connection.as_deref(), Some("web"));

    let newest = s.last_deliveries(&["t0", "t1", "t9"]).await.unwrap();
    let ids: Vec<_> = newest.iter().map(|(k, d)| (k.as_str(), &d.id)).collect();
    assert_eq!(ids, vec![("t0", &newer), ("t1", &other)]);

    let day_ago = Timestamp(Timestamp::now().as_millis() - 24 * 3600 * 1000);
    let counts = s.counts_since(day_ago).await.unwrap();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        vec![(DeliveryState::Queued, 2), (DeliveryState::Failed, 1)]
    );
    let later = Timestamp(Timestamp::now().as_millis() + 1000);
    assert!(s.counts_since(later).await.unwrap().is_empty());
}

/// A store written before migration 4 (the dashboard's columns) opens with this version:
/// its deliveries read back with their names, connection and directories unknown, the
/// filters still work over them, and new deliveries have the new columns.
#[tokio::test]
async fn a_store_from_before_the_dashboard_columns_is_migrated_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let old_migrations = dir.path().join("migrations");
    std::fs::create_dir(&old_migrations).unwrap();
    for file in ["0001_store.sql", "0002_timings.sql", "0003_tokens.sql"] {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        std::fs::copy(from.join(file), old_migrations.join(file)).unwrap();
    }
    let path = dir.path().join("courier.db");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old_migrations.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let (job, old) = ("01KA0000000000000000000001", "01KA0000000000000000000002");
    sqlx::query(
        "INSERT INTO jobs (id, workspace_id, job_id, hook_id, design_system_id, status, \
         ignored, routing, received_at, updated_at) \
         VALUES ($1, 'ws', 'old-job', '5', 'ds', 'Success', 0, 'routed', 1, 1)",
    )
    .bind(job)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO deliveries (id, job_ref, target_key, hook_id, repository, head_branch, \
         serial_key, state, attempts, created_at, finished_at) \
         VALUES ($1, $2, 't0', '5', 'acme/web', 'b', 'acme/web\nb', 'delivered', 1, 1, 2)",
    )
    .bind(old)
    .bind(job)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&courier_core::config::Store::Sqlite { path })
        .await
        .unwrap();
    let old: DeliveryId = old.parse().unwrap();
    let detail = store.get_delivery(&old).await.unwrap().unwrap();
    assert_eq!(detail.delivery.names, None);
    assert_eq!(detail.job.names, None);
    assert_eq!(detail.delivery.connection, None);
    assert_eq!(detail.delivery.superseded_by, None);
    assert!(detail.directories.is_empty());
    assert!(detail.forge_calls.is_empty());
    let new = one(&store, "new-job", "5", "t1", "acme/app", "c").await;
    let listed = |filter: DeliveryFilter| {
        let store = &store;
        async move {
            let page = store.list_deliveries(&filter, &Page::default()).await;
            page.unwrap().into_iter().map(|d| d.id).collect::<Vec<_>>()
        }
    };
    let text = |t: &str| DeliveryFilter {
        text: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(listed(text("acme/")).await, vec![new.clone(), old.clone()]);
    assert_eq!(listed(text("old-job")).await, vec![old.clone()]);
    let app = DeliveryFilter {
        connection: Some("app".into()),
        ..Default::default()
    };
    assert_eq!(listed(app).await, vec![new.clone()]);
    let newest = store.last_deliveries(&["t0", "t1"]).await.unwrap();
    assert_eq!(newest["t0"].id, old);
    assert!(newest["t1"].names.is_some());
}
