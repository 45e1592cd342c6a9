//! The worker pool: tasks that claim deliveries from the store and run them through the
//! pipeline, one at a time each.
//!
//! Every step of a delivery converges (the head branch is deterministic, the pull request
//! is found by its head, an unchanged export pushes nothing), so a delivery may safely run
//! twice. That is what makes the crash story simple: a worker that dies, or loses its
//! lease, just stops; the lease expires and another worker runs the delivery again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use courier_core::config::{Config, Target};
use courier_core::event::{Event, JobEvent};
use courier_core::routing::{self, RoutedTarget, Routing};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::exports::ExportCache;
use crate::pipeline::{
    Mode, Pipeline, PipelineError, PullRequestReport, TargetReport, parse_payload,
};
use crate::server::{AppState, Metrics};
use crate::store::{Claimed, DeliveryState, FileCounts, Finish, Outcome, StoreError, Timestamp};

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
    state: AppState,
}

impl WorkerPool {
    /// Starts the workers and marks them running for `/readyz`.
    pub fn spawn(state: AppState, pipeline: Arc<Pipeline>, options: WorkerOptions) -> WorkerPool {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let prefix = owner_prefix(&options.replica_id);
        let exports = Arc::new(ExportCache::new());
        for n in 0..options.workers {
            let worker = Worker {
                owner: format!("{prefix}-{n}"),
                state: state.clone(),
                tools: Tools {
                    pipeline: pipeline.clone(),
                    exports: exports.clone(),
                    metrics: state.metrics.clone(),
                },
                options: options.clone(),
                stopped: stopped.clone(),
            };
            tasks.spawn(worker.run());
        }
        state.set_workers_running(true);
        WorkerPool { stop, tasks, state }
    }

    /// Stops claiming, and lets deliveries in progress finish within `grace`. Those still
    /// running after it are abandoned: their leases expire and another worker (this
    /// replica after a restart, or another one) runs them again.
    pub async fn shutdown(mut self, grace: Duration) {
        self.state.set_workers_running(false);
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                running = self.tasks.len(),
                "deliveries still running after the shutdown grace period; abandoning them (their leases will expire and they will run again)"
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
    state: AppState,
    tools: Tools,
    options: WorkerOptions,
    stopped: watch::Receiver<bool>,
}

/// What to do with a delivery after running it.
#[derive(Debug)]
enum Decision {
    Finish(Finish),
    /// Worth trying again later.
    Retry(String),
    /// Permanent: a person must act.
    Fail(String),
}

impl Worker {
    async fn run(mut self) {
        tracing::debug!(owner = %self.owner, "worker started");
        loop {
            if *self.stopped.borrow() {
                break;
            }
            // Registered before claiming, so a signal sent while we claim is not lost.
            let notify = self.state.work_available.clone();
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self
                .state
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

    /// Runs one claimed delivery while renewing its lease; stops it if the lease is lost.
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
            self.state.metrics.attempt_started();
            tokio::select! {
                (decision, provider) = self.process(&claimed) => {
                    self.record(&claimed, decision, provider, started).await;
                }
                err = self.keep_lease(&claimed) => {
                    tracing::warn!(error = %err, "lost the lease; stopping this delivery (another worker runs it)");
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
                .state
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

    /// Runs the delivery; returns what to record and the provider kind for metrics.
    async fn process(&self, claimed: &Claimed) -> (Decision, &'static str) {
        let config = self.tools.pipeline.config();
        let d = &claimed.delivery;
        let Some((hook_index, target_index, target)) = find_target(config, &d.target_key) else {
            return (
                Decision::Fail(format!(
                    "target {} is no longer in the configuration",
                    d.target_key
                )),
                "unknown",
            );
        };
        let provider = config.connection(target).kind.name();
        let job = match job_event(claimed) {
            Ok(job) => job,
            Err(reason) => return (Decision::Fail(reason), provider),
        };
        if d.head_branch.is_empty() {
            return (
                Decision::Fail(routing_failure(config, &job, target)),
                provider,
            );
        }
        let verify = config
            .webhook
            .as_ref()
            .is_some_and(|w| w.verify_with_platform);
        let delivered = deliver(
            self.tools.clone(),
            claimed.job.id.to_string(),
            job,
            (hook_index, target_index),
            d.head_branch.clone(),
            verify,
        )
        .await;
        match delivered {
            Ok(Delivered::Report(report)) => (decide(*report, d.commit.as_deref()), provider),
            Ok(Delivered::Refused(reason)) => {
                tracing::warn!(%reason, "the platform does not confirm the job; not delivered");
                let mut finish = Finish::new(Outcome::Skipped);
                finish.error = Some(reason);
                (Decision::Finish(finish), provider)
            }
            Err(err) if err.is_transient() => (Decision::Retry(err.to_string()), provider),
            Err(err) => (Decision::Fail(err.to_string()), provider),
        }
    }

    /// Writes the decision to the store, turning a retry into a failure once the run has
    /// used its attempts.
    async fn record(
        &self,
        claimed: &Claimed,
        decision: Decision,
        provider: &str,
        started: Instant,
    ) {
        let store = &self.state.store;
        let id = &claimed.delivery.id;
        let mut retry_at = None;
        let decision = match decision {
            Decision::Retry(reason) => {
                // The store counts attempts since the delivery was (re)queued.
                let n = claimed.attempt_in_run;
                if n >= MAX_ATTEMPTS_PER_RUN {
                    Decision::Fail(format!("gave up after {n} attempts: {reason}"))
                } else {
                    tracing::info!(error = %reason, attempt = n, "delivery will be retried");
                    retry_at = Some(Timestamp::now().plus(backoff(n)));
                    Decision::Retry(reason)
                }
            }
            other => other,
        };
        let (result, outcome) = match decision {
            Decision::Finish(finish) => {
                let outcome = DeliveryState::from(finish.outcome).as_str();
                (store.finish(id, &self.owner, finish).await, outcome)
            }
            Decision::Fail(reason) => {
                tracing::warn!(error = %reason, "delivery failed");
                (store.fail(id, &self.owner, &reason).await, "failed")
            }
            Decision::Retry(reason) => {
                let at = retry_at.unwrap_or_else(Timestamp::now);
                (
                    store.retry_later(id, &self.owner, at, &reason).await,
                    "retry",
                )
            }
        };
        self.state
            .metrics
            .delivery_finished(outcome, provider, started.elapsed().as_secs_f64());
        match result {
            Ok(view) => tracing::info!(state = %view.state, "delivery recorded"),
            Err(err) => tracing::warn!(error = %err, "could not record the delivery's outcome"),
        }
    }
}

/// What running a delivery came to, short of an error.
enum Delivered {
    Report(Box<TargetReport>),
    /// The platform API did not confirm the job (`webhook.verify_with_platform`).
    Refused(String),
}

/// What a delivery runs with, shared by the pool's workers.
#[derive(Clone)]
struct Tools {
    pipeline: Arc<Pipeline>,
    /// One download per job, whatever its number of targets.
    exports: Arc<ExportCache>,
    metrics: Arc<Metrics>,
}

/// Verifies the job with the platform when asked to, obtains its validated export (shared
/// with the job's other deliveries on this replica: [`ExportCache`]), then delivers it to
/// one target.
///
/// The pipeline's futures cannot be proven `Send` for every lifetime (a known compiler
/// limitation with higher-ranked lifetimes, hit by the download and by the provider calls
/// behind `&dyn Provider`), so they cannot run inside a spawned worker task; they run on a
/// blocking-pool thread that drives them on the same runtime instead. One thread per
/// delivery in flight, at most `workers` of them.
async fn deliver(
    tools: Tools,
    job_ref: String,
    job: JobEvent,
    (hook_index, target_index): (usize, usize),
    head_branch: String,
    verify: bool,
) -> Result<Delivered, PipelineError> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let Tools {
            pipeline,
            exports,
            metrics,
        } = tools;
        runtime.block_on(async {
            // Before the download: a job the platform does not know has nothing to fetch,
            // and an event describing one must not make Courier fetch anything.
            if verify && let Some(reason) = pipeline.verify(&job).await?.refusal() {
                return Ok(Delivered::Refused(reason));
            }
            let obtained = exports
                .get_or_obtain(&job_ref, || async {
                    let obtained = pipeline.obtain_export(&job, None).await?;
                    metrics.downloaded(obtained.export.summary().bytes);
                    Ok(obtained)
                })
                .await?;
            let routed = RoutedTarget {
                hook_index,
                target_index,
                target: &pipeline.config().hooks[hook_index].targets[target_index],
                head_branch,
            };
            Ok(Delivered::Report(Box::new(
                pipeline
                    .run_target(&job, &obtained.export, &routed, Mode::Deliver)
                    .await,
            )))
        })
    })
    .await
    .unwrap_or_else(|e| {
        Err(PipelineError::Io(std::io::Error::other(format!(
            "the delivery task failed: {e}"
        ))))
    })
}

/// The hook and target indices and the target with this key, in the current configuration.
fn find_target<'c>(config: &'c Config, key: &str) -> Option<(usize, usize, &'c Target)> {
    config.hooks.iter().enumerate().find_map(|(h, hook)| {
        hook.targets
            .iter()
            .enumerate()
            .find(|(_, t)| t.key == key)
            .map(|(t, target)| (h, t, target))
    })
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

/// Why routing could not resolve this target when the job arrived, worked out again.
fn routing_failure(config: &Config, job: &JobEvent, target: &Target) -> String {
    if let Routing::Routed(route) = routing::route(config, job)
        && let Some(failure) = route.failures.iter().find(|f| f.target.key == target.key)
    {
        return format!(
            "routing failed for target {}: {}",
            target.key, failure.error
        );
    }
    format!(
        "target {} could not be routed when the job arrived (no head branch); the configuration has changed since, so re-send the event",
        target.key
    )
}

/// What a target's report means for the store, given the commit the delivery has
/// recorded so far (from an earlier run it finished, if any).
fn decide(report: TargetReport, recorded_commit: Option<&str>) -> Decision {
    let files = report.files.as_ref().map(|f| FileCounts {
        added: f.added.len() as u64,
        modified: f.modified.len() as u64,
        deleted: f.deleted.len() as u64,
    });
    let outcome = match report.action {
        "push" => Outcome::Delivered,
        // The branch already holds this delivery's own commit, which the store does not
        // know: an attempt pushed it and never recorded the outcome (killed after the
        // push, or its pull request step failed and was retried). This delivery did
        // deliver the export. A replay of a finished delivery has recorded that commit,
        // and stays `up_to_date`: nothing new happened.
        "up_to_date" if report.pushed_earlier && report.commit.as_deref() != recorded_commit => {
            Outcome::Delivered
        }
        "up_to_date" => Outcome::UpToDate,
        "no_changes" => Outcome::NoChanges,
        "branch_diverged" => Outcome::BranchDiverged,
        _ => {
            let message = report
                .message
                .unwrap_or_else(|| "the delivery failed without a message".to_owned());
            let kind = report.error_kind.unwrap_or("error");
            // The pipeline knows which failures pass by themselves (timeouts, 5xx, rate
            // limits, a branch that moved under us): those are tried again later.
            return if report.retryable {
                Decision::Retry(format!("{kind}: {message}"))
            } else {
                Decision::Fail(format!("{kind}: {message}"))
            };
        }
    };
    let mut finish = Finish::new(outcome);
    if let Some(PullRequestReport::Done(pr)) = &report.pull_request {
        finish.warnings = pr.warnings.iter().map(ToString::to_string).collect();
    }
    finish.pr_url = report
        .pull_request
        .as_ref()
        .and_then(|pr| pr.url())
        .map(str::to_owned);
    finish.commit = report.commit;
    finish.files = files;
    if outcome == Outcome::BranchDiverged {
        finish.error = report.message;
    }
    Decision::Finish(finish)
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

    fn report(action: &'static str, kind: Option<&'static str>, retryable: bool) -> TargetReport {
        TargetReport {
            target: crate::pipeline::TargetView {
                target: "hooks[0].targets[0]".into(),
                connection: "c".into(),
                kind: "github",
                repository: "acme/web".into(),
                base: "main".into(),
                head_branch: "courier/5".into(),
                relative_path: None,
                purge_directory: false,
            },
            action,
            pushed: false,
            pushed_earlier: false,
            commit_message: None,
            commit: Some("0123".into()),
            base_commit: None,
            files: None,
            diff: None,
            message: Some("what happened".into()),
            error_kind: kind,
            retryable,
            pull_request: None,
        }
    }

    #[test]
    fn only_passing_failures_are_retried() {
        assert!(matches!(
            decide(report("error", Some("provider_rate_limited"), true), None),
            Decision::Retry(m) if m == "provider_rate_limited: what happened"
        ));
        assert!(matches!(
            decide(report("error", Some("auth"), false), None),
            Decision::Fail(m) if m == "auth: what happened"
        ));
        let Decision::Finish(finish) = decide(report("push", None, false), None) else {
            panic!("a push finishes the delivery");
        };
        assert_eq!(finish.outcome, Outcome::Delivered);
        assert_eq!(finish.commit.as_deref(), Some("0123"));
        let Decision::Finish(finish) = decide(report("branch_diverged", None, false), None) else {
            panic!("a diverged branch finishes the delivery");
        };
        assert_eq!(finish.error.as_deref(), Some("what happened"));
    }

    #[test]
    fn a_push_no_attempt_recorded_is_delivered_when_found_on_the_branch() {
        let ours = |recorded: Option<&str>| {
            let mut found = report("up_to_date", None, false);
            found.pushed_earlier = true;
            match decide(found, recorded) {
                Decision::Finish(finish) => finish,
                other => panic!("an up-to-date branch finishes the delivery: {other:?}"),
            }
        };
        // A crashed (or retried) attempt pushed "0123" and recorded nothing.
        let finish = ours(None);
        assert_eq!(finish.outcome, Outcome::Delivered);
        assert_eq!(finish.commit.as_deref(), Some("0123"));
        // An older commit of this delivery was recorded; the branch now holds a newer
        // one of it (the base moved, then the run died after pushing).
        assert_eq!(ours(Some("abcd")).outcome, Outcome::Delivered);
        // A replay of a finished delivery finds the commit it recorded: nothing new.
        assert_eq!(ours(Some("0123")).outcome, Outcome::UpToDate);
        // Another delivery's commit with the same export: up to date, whatever is recorded.
        let Decision::Finish(finish) = decide(report("up_to_date", None, false), None) else {
            panic!("an up-to-date branch finishes the delivery");
        };
        assert_eq!(finish.outcome, Outcome::UpToDate);
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
