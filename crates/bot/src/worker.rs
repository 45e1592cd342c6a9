//! The worker pool: tasks that claim deliveries from the store and run each through the
//! one delivery path ([`Deliverer::run_job`]), one at a time each. What is the worker's
//! own: claiming, the lease, recording the outcome, and when to try again.
//!
//! Every step of a delivery converges (the head branch is deterministic, the pull request
//! is found by its head, an unchanged export pushes nothing), so a delivery may safely run
//! twice. That is what makes the crash story simple: a worker that dies, or loses its
//! lease, just stops; the lease expires and another worker runs the delivery again.
//!
//! A delivery runs as part of its worker's task, so stopping it is dropping its future:
//! it stops at its next await point, before any further write. Its blocking parts (zip
//! validation, libgit2) are told to stop too. At most `workers` deliveries run at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use courier_core::config::Config;
use courier_core::event::{Event, JobEvent};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::context::Context;
use crate::delivery::{
    Deliverer, Failure, Mode, Outcome, Phase, PullRequestReport, Queued, Run, TargetReport,
    parse_payload,
};
use crate::store::{Claimed, DeliveryState, FileCounts, Finish, RunTimes, StoreError, Timestamp};
use courier_providers::pull_request::PrAction;

/// How long a claim holds a delivery without renewal. Renewed every third of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How often an idle worker looks for due work when nobody signals (retries coming due,
/// leases expiring, other replicas' intake).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// First retry delay; doubled per attempt in the run, with jitter.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(600);
/// Attempts in one run (since the delivery was queued) before a transient error is final.
pub const MAX_ATTEMPTS_PER_RUN: u32 = 6;

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Number of concurrent workers (the configuration's `workers`).
    pub workers: u32,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// This replica's name (`courier serve --replica-id`): the start of every lease owner
    /// it writes, so `lease_owner` and the attempts say which replica ran what.
    pub replica_id: String,
}

impl WorkerOptions {
    pub fn from_config(config: &Config) -> WorkerOptions {
        WorkerOptions {
            workers: config.workers.max(1),
            lease: DEFAULT_LEASE,
            poll_interval: POLL_INTERVAL,
            replica_id: default_replica_id(),
        }
    }
}

/// The running pool. Dropping it without [`WorkerPool::shutdown`] aborts the workers.
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    context: Context,
}

impl WorkerPool {
    /// Starts the workers and marks them running for `/readyz`.
    pub fn spawn(
        context: Context,
        deliverer: Arc<Deliverer>,
        options: WorkerOptions,
    ) -> WorkerPool {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let prefix = owner_prefix(&options.replica_id);
        for n in 0..options.workers {
            let worker = Worker {
                owner: format!("{prefix}-{n}"),
                context: context.clone(),
                deliverer: deliverer.clone(),
                options: options.clone(),
                stopped: stopped.clone(),
            };
            tasks.spawn(worker.run());
        }
        context.set_workers_running(true);
        WorkerPool {
            stop,
            tasks,
            context,
        }
    }

    /// Stops claiming, and lets deliveries in progress finish within `grace`. Those still
    /// running after it are stopped at their next await point: their leases expire and
    /// another worker (this replica after a restart, or another one) runs them again.
    pub async fn shutdown(mut self, grace: Duration) {
        self.context.set_workers_running(false);
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                running = self.tasks.len(),
                "deliveries still running after the shutdown grace period; stopping them (their leases will expire and they will run again)"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

/// `<hostname>-<pid>`: unique among the processes running at one time (a host runs one
/// process per pid; in a container the hostname is the pod's or container's name).
pub fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "courier".to_owned());
    format!("{host}-{}", std::process::id())
}

/// `<replica>-<random>`: the workers' lease owners are this plus `-<n>`.
///
/// The random part keeps owners unique per process even when two replicas are given the
/// same id by mistake (one `COURIER_REPLICA_ID` in a Deployment template) or a replica
/// restarts under its old id while its dead predecessor's leases are still live: the store
/// lets only the exact owner renew or finish a delivery, and that is what tells a worker
/// whose lease was taken over to stop.
fn owner_prefix(replica_id: &str) -> String {
    format!("{replica_id}-{:08x}", fastrand::u32(..))
}

struct Worker {
    owner: String,
    context: Context,
    deliverer: Arc<Deliverer>,
    options: WorkerOptions,
    stopped: watch::Receiver<bool>,
}

/// What to do with a delivery after running it.
#[derive(Debug)]
enum Decision {
    /// A final state, a permanent failure included ([`Decision::failed`]).
    Finish(Box<Finish>),
    /// Worth trying again later.
    Retry(Failure),
    /// The other side asked to be called again after this long (a rate limit): requeued
    /// for then, without using up an attempt, and the worker is free meanwhile.
    Wait(Failure, Duration),
}

impl Decision {
    /// Permanent: a person must act.
    fn failed(reason: String) -> Decision {
        let mut finish = Finish::new(DeliveryState::Failed);
        finish.error = Some(reason);
        Decision::Finish(Box::new(finish))
    }
}

impl Worker {
    async fn run(mut self) {
        tracing::debug!(owner = %self.owner, "worker started");
        loop {
            if *self.stopped.borrow() {
                break;
            }
            // Registered before claiming, so a signal sent while we claim is not lost.
            let notify = self.context.work_available.clone();
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self
                .context
                .store
                .claim(&self.owner, self.options.lease)
                .await
            {
                Ok(Some(claimed)) => {
                    self.run_claimed(claimed).await;
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::error!(error = %err, "claiming a delivery failed"),
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(self.options.poll_interval) => {}
                _ = self.stopped.changed() => {}
            }
        }
        tracing::debug!(owner = %self.owner, "worker stopped");
    }

    /// Runs one claimed delivery while renewing its lease. If the lease is lost, the
    /// delivery's future is dropped: it stops at its next await point and records nothing.
    async fn run_claimed(&self, claimed: Claimed) {
        let d = &claimed.delivery;
        let span = tracing::info_span!(
            "delivery",
            delivery = %d.id,
            job = %claimed.job.job_id,
            hook = %d.hook_id,
            target = %d.target_key,
            repository = %d.repository,
            attempt = claimed.attempt,
        );
        async {
            let started = Instant::now();
            let metrics = &self.context.metrics;
            metrics.attempt_started();
            let _running = metrics.delivery_running();
            tokio::select! {
                (decision, provider, measured) = self.process(&claimed) => {
                    self.record(&claimed, decision, provider, measured, started).await;
                }
                err = self.keep_lease(&claimed) => {
                    tracing::warn!(error = %err, "lost the lease; stopping this delivery (another worker runs it)");
                    metrics.lease_lost();
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Renews the lease every third of it; returns only when it is lost.
    async fn keep_lease(&self, claimed: &Claimed) -> StoreError {
        let id = &claimed.delivery.id;
        loop {
            tokio::time::sleep(self.options.lease / 3).await;
            match self
                .context
                .store
                .renew(id, &self.owner, self.options.lease)
                .await
            {
                Ok(()) => {}
                Err(err @ (StoreError::LeaseLost { .. } | StoreError::NoSuchDelivery(_))) => {
                    return err;
                }
                // The store hiccuped: keep going; the next renewal may succeed before the
                // lease runs out, and if not, the finish will report the loss.
                Err(err) => tracing::warn!(error = %err, "renewing the lease failed"),
            }
        }
    }

    /// Runs the delivery; returns what to record, the provider kind for metrics and what
    /// the run measured.
    async fn process(&self, claimed: &Claimed) -> (Decision, &'static str, RunTimes) {
        let d = &claimed.delivery;
        let job = match job_event(claimed) {
            Ok(job) => job,
            Err(reason) => return (Decision::failed(reason), "unknown", RunTimes::default()),
        };
        let run = Run {
            mode: Mode::Deliver,
            artifact: None,
            queued: Some(Queued {
                job_ref: claimed.job.id.as_str(),
                target_id: &d.target_key,
                repository: &d.repository,
                head_branch: &d.head_branch,
            }),
        };
        let mut report = self.deliverer.run_job(&job, run).await;
        let Some(mut target) = report.targets.pop() else {
            // Routing found nothing for a queued target: only a changed configuration
            // (the job now matches no hook, or only build) can do that.
            let reason = report
                .reason
                .unwrap_or_else(|| "the job no longer routes to this target".to_owned());
            return (Decision::failed(reason), "unknown", RunTimes::default());
        };
        let provider = target.target.kind;
        // The job's phases (the export, shared by its deliveries) with this target's.
        let mut timings = report.timings;
        timings.extend(&target.timings);
        target.timings = timings;
        // The attempt as a whole is `courier_delivery_duration_seconds`.
        for (phase, took) in target.timings.iter().filter(|(p, _)| *p != Phase::Total) {
            self.context.metrics.phase(phase.word(), took.as_secs_f64());
        }
        for call in target.forge_calls.iter() {
            let seconds = call.took.as_secs_f64();
            self.context
                .metrics
                .forge_call(provider, &call.call, seconds);
        }
        let measured = RunTimes {
            timings: target.timings.millis(),
            forge_calls: target.forge_calls.summary(),
        };
        (decide(target, d.commit.as_deref()), provider, measured)
    }

    /// Writes the decision to the store, turning a retry into a failure once the run has
    /// used its attempts.
    async fn record(
        &self,
        claimed: &Claimed,
        decision: Decision,
        provider: &str,
        mut measured: RunTimes,
        started: Instant,
    ) {
        let store = &self.context.store;
        let id = &claimed.delivery.id;
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        measured
            .timings
            .insert(Phase::Total.word().to_owned(), took);
        let decision = match decision {
            Decision::Retry(failure) if claimed.attempt_in_run >= MAX_ATTEMPTS_PER_RUN => {
                Decision::failed(format!(
                    "gave up after {} attempts: {}",
                    claimed.attempt_in_run,
                    failure.summary()
                ))
            }
            other => other,
        };
        let (result, outcome) = match decision {
            Decision::Finish(mut finish) => {
                if let (DeliveryState::Failed, Some(reason)) = (finish.state, &finish.error) {
                    tracing::warn!(error = %reason, "delivery failed");
                }
                finish.timings = measured.timings;
                finish.forge_calls = measured.forge_calls;
                let state = finish.state;
                (store.finish(id, &self.owner, *finish).await, state.as_str())
            }
            Decision::Wait(failure, wait) => {
                let reason = failure.summary();
                let at = Timestamp::now().plus(wait_with_jitter(wait));
                tracing::info!(error = %reason, until = %at, "waiting out a rate limit");
                self.context.metrics.rate_limit_wait(provider);
                (
                    store
                        .wait_until(id, &self.owner, at, &reason, &measured)
                        .await,
                    "rate_limited",
                )
            }
            Decision::Retry(failure) => {
                let n = claimed.attempt_in_run;
                let reason = failure.summary();
                tracing::info!(error = %reason, attempt = n, "delivery will be retried");
                let at = Timestamp::now().plus(backoff(n));
                (
                    store
                        .retry_later(id, &self.owner, at, &reason, &measured)
                        .await,
                    "retry",
                )
            }
        };
        self.context
            .metrics
            .delivery_finished(outcome, provider, started.elapsed().as_secs_f64());
        match result {
            Ok(view) => tracing::info!(state = %view.state, "delivery recorded"),
            Err(err) => tracing::warn!(error = %err, "could not record the delivery's outcome"),
        }
    }
}

/// The job event stored with the delivery.
fn job_event(claimed: &Claimed) -> Result<JobEvent, String> {
    let Some(body) = &claimed.body else {
        return Err("the webhook body is no longer stored; re-send the event".to_owned());
    };
    match parse_payload(body) {
        Ok(parsed) => match parsed.event {
            Event::JobUpdated(job) => Ok(*job),
            Event::Other { event } => {
                Err(format!("the stored event is `{event}`, not job:updated"))
            }
        },
        Err(err) => Err(format!("the stored webhook body no longer parses: {err}")),
    }
}

/// What a target's report means for the store, given the commit the delivery has
/// recorded so far (from an earlier run it finished, if any).
fn decide(report: TargetReport, recorded_commit: Option<&str>) -> Decision {
    let state = match &report.outcome {
        Outcome::Pushed => DeliveryState::Delivered,
        // The branch already holds this delivery's own commit, which the store does not
        // know: an attempt pushed it and never recorded the outcome (killed after the
        // push, or its pull request step failed and was retried). This delivery did
        // deliver the export. A replay of a finished delivery has recorded that commit,
        // and stays `up_to_date`: nothing new happened.
        Outcome::UpToDate
            if report.pushed_earlier && report.commit.as_deref() != recorded_commit =>
        {
            DeliveryState::Delivered
        }
        Outcome::UpToDate => DeliveryState::UpToDate,
        Outcome::NoChanges => DeliveryState::NoChanges,
        Outcome::BranchDiverged => DeliveryState::BranchDiverged,
        Outcome::Commented => DeliveryState::Commented,
        Outcome::NoOpenPullRequest => DeliveryState::NoOpenPullRequest,
        Outcome::Skipped => DeliveryState::Skipped,
        // "Come back at T": waited out, not counted as a failure.
        Outcome::Failed(
            failure @ Failure {
                retryable: true,
                retry_after: Some(wait),
                ..
            },
        ) => {
            return Decision::Wait(failure.clone(), *wait);
        }
        // The delivery knows which failures pass by themselves (timeouts, 5xx, a branch
        // that moved under us): those are tried again later.
        Outcome::Failed(failure) if failure.retryable => {
            return Decision::Retry(failure.clone());
        }
        Outcome::Failed(failure) => return Decision::failed(failure.summary()),
    };
    let mut finish = Finish::new(state);
    let mut left_open = None;
    if let Some(PullRequestReport::Done(pr)) = &report.pull_request {
        finish.warnings = pr.warnings.iter().map(ToString::to_string).collect();
        if let PrAction::LeftOpen { reason, .. } = &pr.action {
            left_open = Some(reason.clone());
        }
    }
    finish.pr_url = report
        .pull_request
        .as_ref()
        .and_then(|pr| pr.url())
        .map(str::to_owned);
    finish.files = report.files.as_ref().map(|f| FileCounts {
        added: f.added.len() as u64,
        modified: f.modified.len() as u64,
        deleted: f.deleted.len() as u64,
    });
    finish.directories = report
        .files
        .as_ref()
        .map(crate::delivery::changes_by_directory)
        .unwrap_or_default();
    // A note on what was left alone (a diverged branch, a skipped job, where the failure
    // was told) is kept where people read errors.
    if !matches!(
        state,
        DeliveryState::Delivered | DeliveryState::UpToDate | DeliveryState::NoChanges
    ) {
        finish.error = report.message().map(str::to_owned);
    }
    // A converged pull request left open for a person's commits says why.
    if left_open.is_some() {
        finish.error = left_open;
    }
    // The record keeps the counts whole but lists a bounded number of changes.
    finish.tokens = report
        .tokens
        .clone()
        .filter(|t| !t.is_empty())
        .map(|t| t.capped(1000));
    finish.commit = report.commit;
    Decision::Finish(Box::new(finish))
}

/// A rate limit's wait plus up to a tenth more (at least a second), so deliveries limited
/// together do not all come back at the same instant.
fn wait_with_jitter(wait: Duration) -> Duration {
    let spread = (wait / 10).max(Duration::from_secs(1));
    wait + spread.mul_f64(fastrand::f64())
}

/// Delay before attempt `n + 1`: exponential from [`BACKOFF_BASE`], capped at
/// [`BACKOFF_MAX`], with jitter in its upper half so that deliveries failing together
/// (a provider outage) do not all come back at the same instant.
pub fn backoff(n: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(2u32.saturating_pow(n.saturating_sub(1)));
    let capped = exp.min(BACKOFF_MAX);
    capped.mul_f64(0.5 + fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Cause, TargetView};

    fn report(outcome: Outcome) -> TargetReport {
        let view = TargetView {
            target: "github:acme/web@main".into(),
            key: "hooks[0].targets[0]".into(),
            connection: "c".into(),
            kind: "github",
            repository: "acme/web".into(),
            base: "main".into(),
            head_branch: "courier/5".into(),
            relative_path: None,
            purge_directory: false,
        };
        let mut report = TargetReport::new(view, outcome);
        report.commit = Some("0123".into());
        report.note = Some("what happened".into());
        report
    }

    fn failed(cause: Cause, retryable: bool) -> Outcome {
        let mut failure = Failure::new(cause, "what happened");
        failure.retryable = retryable;
        Outcome::Failed(failure)
    }

    #[test]
    fn only_passing_failures_are_retried() {
        assert!(matches!(
            decide(report(failed(Cause::Provider("provider_rate_limited"), true)), None),
            Decision::Retry(f) if f.summary() == "provider_rate_limited: what happened"
        ));
        assert!(matches!(
            decide(report(failed(Cause::Git("auth"), false)), None),
            Decision::Finish(f) if f.state == DeliveryState::Failed
                && f.error.as_deref() == Some("auth: what happened")
        ));
        let Decision::Finish(finish) = decide(report(Outcome::Pushed), None) else {
            panic!("a push finishes the delivery");
        };
        assert_eq!(finish.state, DeliveryState::Delivered);
        assert_eq!(finish.commit.as_deref(), Some("0123"));
        assert_eq!(finish.error, None);
        let Decision::Finish(finish) = decide(report(Outcome::BranchDiverged), None) else {
            panic!("a diverged branch finishes the delivery");
        };
        assert_eq!(finish.error.as_deref(), Some("what happened"));
    }

    #[test]
    fn a_rate_limit_is_waited_for_as_long_as_asked() {
        let mut failure = Failure::new(Cause::Provider("provider_rate_limited"), "slow down");
        failure.retryable = true;
        failure.retry_after = Some(Duration::from_secs(3600));
        assert!(matches!(
            decide(report(Outcome::Failed(failure)), None),
            Decision::Wait(_, wait) if wait == Duration::from_secs(3600)
        ));
    }

    #[test]
    fn failure_reports_are_recorded_as_such() {
        for (outcome, state) in [
            (Outcome::Commented, DeliveryState::Commented),
            (Outcome::NoOpenPullRequest, DeliveryState::NoOpenPullRequest),
            (Outcome::Skipped, DeliveryState::Skipped),
        ] {
            let Decision::Finish(finish) = decide(report(outcome), None) else {
                panic!("{state} finishes the delivery");
            };
            assert_eq!(finish.state, state);
            assert_eq!(finish.error.as_deref(), Some("what happened"));
        }
    }

    #[test]
    fn a_push_no_attempt_recorded_is_delivered_when_found_on_the_branch() {
        let ours = |recorded: Option<&str>| {
            let mut found = report(Outcome::UpToDate);
            found.pushed_earlier = true;
            match decide(found, recorded) {
                Decision::Finish(finish) => finish,
                other => panic!("an up-to-date branch finishes the delivery: {other:?}"),
            }
        };
        // A crashed (or retried) attempt pushed "0123" and recorded nothing.
        let finish = ours(None);
        assert_eq!(finish.state, DeliveryState::Delivered);
        assert_eq!(finish.commit.as_deref(), Some("0123"));
        // An older commit of this delivery was recorded; the branch now holds a newer
        // one of it (the base moved, then the run died after pushing).
        assert_eq!(ours(Some("abcd")).state, DeliveryState::Delivered);
        // A replay of a finished delivery finds the commit it recorded: nothing new.
        assert_eq!(ours(Some("0123")).state, DeliveryState::UpToDate);
        // Another delivery's commit with the same export: up to date, whatever is recorded.
        let Decision::Finish(finish) = decide(report(Outcome::UpToDate), None) else {
            panic!("an up-to-date branch finishes the delivery");
        };
        assert_eq!(finish.state, DeliveryState::UpToDate);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 1..=20 {
            let d = backoff(n);
            let full = BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(n - 1))
                .min(BACKOFF_MAX);
            assert!(d >= full / 2 && d <= full, "attempt {n}: {d:?} vs {full:?}");
        }
        assert!(backoff(1) <= Duration::from_secs(5));
        assert!(backoff(30) >= Duration::from_secs(300));
    }
}
