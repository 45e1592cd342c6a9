//! One delivery path. `courier deliver`, `courier dry-run` and the server's workers all
//! call [`Deliverer::run_job`], so a behaviour exists once: routing, the optional check
//! with the platform, the failure report on open pull requests, obtaining and validating
//! the export once per job, and each target. The worker adds only what is the worker's:
//! claiming, leases, recording and retry timing.
//!
//! Every step converges (deterministic head branch, pull request found by its head, an
//! unchanged export pushes nothing), so running a job again is safe; that is what lets a
//! worker simply stop when it loses its lease.

mod export;
mod logs;
mod outcome;
mod report;
mod target;
mod timings;
mod verdict;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use courier_core::config::{Config, Target};
use courier_core::download::{DownloadPolicy, Downloader};
use courier_core::event::{EventError, JobEvent, parse_event};
use courier_core::routing::{self, RoutedTarget, Routing};
use courier_providers::connect::provider_for;
use courier_providers::git::{GitWorkspace, Timeouts};
use courier_providers::provider::Provider;
use courier_providers::retry::RetryPolicy;

use crate::metrics::Metrics;

pub use export::{ExportCache, ObtainedExport, describe_artifact};
pub use outcome::{Cause, Failure, Outcome};
pub use report::{JobReport, JobStatus, JobSummary, PullRequestReport, TargetReport, TargetView};
pub use target::changes_by_directory;
pub use timings::{Phase, Timings};
pub use verdict::export_refusal;

/// How much of a failed job's log goes into the pull request comment.
const FAILURE_LOG_LINES: usize = 20;

/// A parsed webhook body.
#[derive(Debug)]
pub struct ParsedPayload {
    pub event: courier_core::event::Event,
    /// Trailing commas were removed before parsing (the platform's first-version example
    /// has one); worth a warning, not a refusal.
    pub repaired: bool,
}

/// Parses a webhook body, warning when it had to be repaired. Intake, the CLI and the
/// worker (re-reading a stored body) all parse through here.
pub fn parse_payload(body: &[u8]) -> Result<ParsedPayload, EventError> {
    let parsed = parse_event(body)?;
    if parsed.repaired {
        tracing::warn!("payload had trailing commas; parsed after removing them");
    }
    Ok(ParsedPayload {
        event: parsed.event,
        repaired: parsed.repaired,
    })
}

/// Whether a run may write: `DryRun` stops before any push or provider write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun { diff: bool },
    Deliver,
}

/// Which targets of the job to run, and where the export comes from.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub mode: Mode,
    /// A local zip instead of the job's artifact (`--artifact`).
    pub artifact: Option<&'a Path>,
    /// Only this queued delivery's target; `None`: every target the job routes to.
    pub queued: Option<Queued<'a>>,
}

/// A delivery as the store queued it: the target's id, and the repository and head branch
/// it was meant for at the time. The target is looked up by id in today's configuration,
/// and must still name that repository.
#[derive(Debug, Clone, Copy)]
pub struct Queued<'a> {
    /// Courier's id of the job: deliveries of one job share its export on this replica.
    pub job_ref: &'a str,
    pub target_id: &'a str,
    pub repository: &'a str,
    /// Empty when routing could not resolve the target when the job arrived.
    pub head_branch: &'a str,
}

/// The delivery path's dependencies, built once: the configuration, the artifact
/// downloader, the git workspace (with its repository cache), one forge client per
/// connection, and the exports shared between a job's deliveries.
pub struct Deliverer {
    config: Arc<Config>,
    downloader: Downloader,
    git: GitWorkspace,
    /// One client per connection that opens pull requests, or why it could not be built
    /// (a missing GitHub App key, say): that fails the connection's targets, not the rest.
    providers: BTreeMap<String, Result<Arc<dyn Provider>, String>>,
    retry: RetryPolicy,
    exports: ExportCache,
    metrics: Arc<Metrics>,
}

impl Deliverer {
    pub fn new(config: Arc<Config>) -> anyhow::Result<Deliverer> {
        let policy = download_policy(&config);
        if let Some(tmp) = &policy.temp_dir {
            std::fs::create_dir_all(tmp)
                .with_context(|| format!("creating the download directory {}", tmp.display()))?;
        }
        let downloader =
            Downloader::new(policy).context("the platform/download settings cannot be used")?;
        let git = GitWorkspace::new(config.data_dir.join("repositories"), Timeouts::default())
            .context("preparing the repository cache")?;
        let providers = config
            .connections
            .iter()
            .filter_map(|(name, connection)| {
                provider_for(&connection.kind, connection.tls.as_ref(), &connection.proxy)
                    .map(|p| (name.clone(), p))
            })
            .collect();
        Ok(Deliverer {
            config,
            downloader,
            git,
            providers,
            retry: RetryPolicy::default(),
            exports: ExportCache::new(),
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Shorter waits between provider retries, for tests and the foreground CLI.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Deliverer {
        self.retry = retry;
        self
    }

    /// Counts what the deliveries do in these metrics (the server's) rather than its own.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Deliverer {
        self.metrics = metrics;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs a job: routes it (or, for a queued delivery, finds its target), asks the
    /// platform about it when configured, then either reports a failed job on the
    /// targets' open pull requests, or obtains the export once and delivers it to each
    /// target. Never fails as a whole: what went wrong is in the report.
    pub async fn run_job(&self, job: &JobEvent, run: Run<'_>) -> JobReport {
        let mut report = JobReport::new(run.mode, Some(job));
        let (targets, unroutable) = match self.targets(job, run.queued) {
            Ok(found) => found,
            Err(Selection::Nothing(reason)) => {
                report.reason = Some(reason);
                return report;
            }
            Err(Selection::Changed(changed)) => {
                let (view, failure) = *changed;
                report.targets.push(TargetReport::failed(view, failure));
                report.settle(run.mode);
                return report;
            }
        };
        let verify = self
            .config
            .webhook
            .as_ref()
            .is_some_and(|w| w.verify_with_platform);
        // Before the download: a job the platform does not know has nothing to fetch, and
        // an event describing one must not make Courier fetch anything.
        if verify {
            match self.downloader.verify_job(job).await {
                Ok(check) => {
                    if let Some(reason) = check.refusal() {
                        tracing::warn!(%reason, "the platform does not confirm the job; not delivered");
                        for routed in &targets {
                            let mut skipped = TargetReport::new(
                                TargetView::new(&self.config, routed),
                                Outcome::Skipped,
                            );
                            skipped.note = Some(reason.clone());
                            report.targets.push(skipped);
                        }
                        report.reason = Some(reason);
                        return report;
                    }
                }
                Err(err) => {
                    let mut failure = Failure::from(&err);
                    failure.cause = Cause::Verify;
                    failure.message = format!("verifying the job with the platform API: {err}");
                    return self.fail_all(report, &targets, failure, run.mode);
                }
            }
        }
        if !job.is_deliverable() {
            report.reason = Some(format!(
                "job {} has status {}; only successful jobs are delivered",
                job.job.id, job.job.status
            ));
            // A job still running (or in a status Courier does not know) has nothing to
            // tell yet; the server records such a job without deliveries.
            if !job.job.status.ended_without_success() {
                return report;
            }
            // Nothing to push; the targets' open pull requests hear about the failure.
            let tail = self.log_tail(job, FAILURE_LOG_LINES).await;
            for routed in &targets {
                report
                    .targets
                    .push(self.report_failure(job, routed, &tail, run.mode).await);
            }
            return report;
        }
        // Also when the export was ready: see the first target's clock below.
        let obtain = async {
            let obtained = match run.queued {
                Some(queued) => {
                    self.exports
                        .get_or_obtain(queued.job_ref, || self.obtain_export(job, run.artifact))
                        .await
                }
                None => self
                    .obtain_export(job, run.artifact)
                    .await
                    .map(|obtained| (Arc::new(obtained), true)),
            };
            obtained.map(|obtained| (obtained, Instant::now()))
        };
        // The first target's branches are fetched while the export is downloaded and
        // validated: the fetch mostly waits on the remote, the validation on the CPU. Only
        // the first: a fetch holds its repository's lock until its target has run, and the
        // targets run one after another. An export that fails stops the fetch.
        let ahead = async {
            match targets.first() {
                Some(routed) => Ok(self.fetch_ahead(routed).await),
                None => Ok(None),
            }
        };
        let (((obtained, obtained_here), ready), mut ahead) = match tokio::try_join!(obtain, ahead)
        {
            Ok(both) => both,
            Err(failure) => return self.fail_all(report, &targets, failure, run.mode),
        };
        report.export = Some(obtained.export.summary());
        // Once per job: a delivery that shared another's export did not download it.
        if obtained_here {
            report.timings.extend(&obtained.timings);
        }
        report.targets.extend(unroutable);
        for routed in &targets {
            let ahead = ahead.take();
            // The first target's clock starts when the export was ready: a fetch that
            // outlasted the export is then waited for in its plan, and the job's phases
            // still add up to its time.
            let started = if ahead.is_some() {
                ready
            } else {
                Instant::now()
            };
            report.targets.push(
                self.run_target(job, &obtained.export, routed, run.mode, ahead, started)
                    .await,
            );
        }
        report.settle(run.mode);
        report
    }

    /// Every target fails the same way (the download or the check with the platform).
    fn fail_all(
        &self,
        mut report: JobReport,
        targets: &[RoutedTarget<'_>],
        failure: Failure,
        mode: Mode,
    ) -> JobReport {
        report.reason = Some(failure.message.clone());
        report.cause = Some(failure.cause);
        for routed in targets {
            report.targets.push(TargetReport::failed(
                TargetView::new(&self.config, routed),
                failure.clone(),
            ));
        }
        report.settle(mode);
        report.status = JobStatus::Failed;
        report
    }

    /// The targets to run, with reports for those routing could not resolve.
    fn targets<'c>(
        &'c self,
        job: &JobEvent,
        queued: Option<Queued<'_>>,
    ) -> Result<(Vec<RoutedTarget<'c>>, Vec<TargetReport>), Selection> {
        let config = &*self.config;
        if let Some(queued) = queued {
            return self
                .queued_target(job, queued)
                .map(|t| (vec![t], Vec::new()));
        }
        match routing::route(config, job) {
            Routing::Unrouted { reason } => Err(Selection::Nothing(reason)),
            Routing::Routed(route) if route.is_build_only() => Err(Selection::Nothing(
                "the matching hook entries have no targets (only build)".into(),
            )),
            Routing::Routed(route) => {
                let unroutable = route
                    .failures
                    .iter()
                    .map(|failure| {
                        let routed = RoutedTarget {
                            hook_index: failure.hook_index,
                            target_index: failure.target_index,
                            target: failure.target,
                            head_branch: String::new(),
                        };
                        TargetReport::failed(
                            TargetView::new(config, &routed),
                            Failure::new(Cause::Routing, failure.error.to_string()),
                        )
                    })
                    .collect();
                Ok((route.targets, unroutable))
            }
        }
    }

    /// The queued delivery's target in today's configuration, found by its stable id. A
    /// target that is gone, or that now names another repository, fails the delivery with
    /// that reason: a delivery never goes anywhere but where it was queued for.
    fn queued_target<'c>(
        &'c self,
        job: &JobEvent,
        queued: Queued<'_>,
    ) -> Result<RoutedTarget<'c>, Selection> {
        let config = &*self.config;
        let gone = |why: String| {
            Selection::Changed(Box::new((
                TargetView {
                    target: queued.target_id.to_owned(),
                    key: String::new(),
                    connection: String::new(),
                    kind: "unknown",
                    repository: queued.repository.to_owned(),
                    base: String::new(),
                    head_branch: queued.head_branch.to_owned(),
                    relative_path: None,
                    purge_directory: false,
                },
                Failure::new(Cause::TargetChanged, why),
            )))
        };
        let Some(target) = find_target(config, queued) else {
            return Err(gone(format!(
                "target {} is no longer in the configuration; this delivery was for {}",
                queued.target_id, queued.repository
            )));
        };
        if target.repository != queued.repository {
            return Err(gone(format!(
                "target {} now delivers to {}, but this delivery was queued for {}; re-send the event to deliver with the new configuration",
                queued.target_id, target.repository, queued.repository
            )));
        }
        let routed = RoutedTarget {
            hook_index: target.hook_index,
            target_index: target.target_index,
            target,
            head_branch: queued.head_branch.to_owned(),
        };
        if queued.head_branch.is_empty() {
            return Err(Selection::Changed(Box::new((
                TargetView::new(config, &routed),
                Failure::new(Cause::Routing, routing_failure(config, job, target)),
            ))));
        }
        Ok(routed)
    }

    fn provider(&self, target: &Target) -> Option<Result<&Arc<dyn Provider>, &str>> {
        self.providers
            .get(&target.connection)
            .map(|p| p.as_ref().map_err(String::as_str))
    }
}

/// Why [`Deliverer::targets`] found nothing to run.
enum Selection {
    /// Nothing routed: not a failure (unrouted, only build).
    Nothing(String),
    /// The queued delivery's target cannot be used.
    Changed(Box<(TargetView, Failure)>),
}

/// The target a queued delivery names: by its stable id; a delivery queued before targets
/// had ids names a position (`hooks[H].targets[T]`), which counts only while the target
/// there still has the repository the delivery was queued for.
fn find_target<'c>(config: &'c Config, queued: Queued<'_>) -> Option<&'c Target> {
    let all = || config.hooks.iter().flat_map(|hook| hook.targets.iter());
    all()
        .find(|t| t.id == queued.target_id)
        .or_else(|| all().find(|t| t.key == queued.target_id && t.repository == queued.repository))
}

/// Why routing could not resolve this target when the job arrived, worked out again.
fn routing_failure(config: &Config, job: &JobEvent, target: &Target) -> String {
    if let Routing::Routed(route) = routing::route(config, job)
        && let Some(failure) = route.failures.iter().find(|f| f.target.id == target.id)
    {
        return format!("routing failed for target {}: {}", target.id, failure.error);
    }
    format!(
        "target {} could not be routed when the job arrived (no head branch); the configuration has changed since, so re-send the event",
        target.id
    )
}

/// The downloader's rules, from the configuration's `platform` and `limits` sections.
fn download_policy(config: &Config) -> DownloadPolicy {
    let platform = &config.platform;
    let mut policy = DownloadPolicy::new(platform.api_url.clone());
    // An insecure host is one the operator named explicitly: it may serve artifacts too.
    let insecure: Vec<String> = platform
        .insecure_hosts
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    policy.download_hosts = platform
        .download_hosts
        .iter()
        .map(|p| p.as_str().to_owned())
        .chain(insecure.iter().cloned())
        .collect();
    policy.insecure_hosts = insecure;
    policy.platform_token = platform.token.clone();
    policy.extra_roots = platform
        .tls
        .as_ref()
        .map(|tls| tls.certs.to_vec())
        .unwrap_or_default();
    policy.proxy = platform.proxy.clone();
    policy.limits = config.limits.download.clone();
    policy.temp_dir = Some(config.data_dir.join("tmp"));
    policy
}
