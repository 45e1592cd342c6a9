//! One target of a job: build the tree, push the head branch, then open, update or close
//! its pull request; or, for a failed job, tell its open pull request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use courier_core::archive::Export;
use courier_core::config::{Commits, Config, ConnectionKind, Target};
use courier_core::event::JobEvent;
use courier_core::routing::RoutedTarget;
use courier_core::template::{DirectoryChanges, ExportSummary as TemplateExport, TokenFacts};
use courier_providers::api_commit;
use courier_providers::connect::remote_for;
use courier_providers::forge_calls::{self, CallTimes};
use courier_providers::git::{self, Credentials, DeliverySpec, FileChanges, Remote, Signature};
use courier_providers::provider::{BranchName, Decorations, Provider, RepoSlug};
use courier_providers::pull_request::{self, FailureOutcome, FailureReport, PrSpec};

use super::outcome::{Cause, Failure, Outcome};
use super::report::{PullRequestReport, TargetReport, TargetView};
use super::timings::{Phase, Timings};
use super::{Deliverer, Mode, export_refusal};

impl Deliverer {
    /// Plans (and in [`Mode::Deliver`], pushes) one routed target, then opens, updates or
    /// closes its pull request (dry-run: plans that with read-only calls). An error becomes
    /// the report's outcome, so the other targets still run.
    #[tracing::instrument(skip_all, fields(job = %job.job.id, hook = %job.hook.id, target = %routed.target.id, repository = %routed.target.repository))]
    pub(super) async fn run_target(
        &self,
        job: &JobEvent,
        export: &Arc<Export>,
        routed: &RoutedTarget<'_>,
        mode: Mode,
        ahead: Option<Ahead>,
        started: Instant,
    ) -> TargetReport {
        let (ready, earlier) = match ahead {
            Some(Ahead { ready, calls }) => (Some(ready), calls),
            None => (None, CallTimes::default()),
        };
        let (mut report, calls) =
            forge_calls::recorded(self.deliver_target(job, export, routed, mode, started, ready))
                .await;
        report.timings.since(Phase::Total, started);
        report.forge_calls = earlier.then(calls);
        report
    }

    /// What a target needs before its export: its remote (a forge mints the push
    /// credentials) and its branches, fetched into the cache. `None` when the target
    /// cannot start (its forge client could not be built); its run says why.
    pub(super) async fn fetch_ahead(&self, routed: &RoutedTarget<'_>) -> Option<Ahead> {
        let target = routed.target;
        let provider = match self.provider(target) {
            None => None,
            Some(Ok(provider)) => Some(provider.clone()),
            Some(Err(_)) => return None,
        };
        let (ready, calls) = forge_calls::recorded(async {
            let remote = self.remote(target, provider.as_deref()).await?;
            let fetched = self
                .git
                .fetch(&remote, base_branch(target), &routed.head_branch)
                .await;
            Ok((remote, fetched))
        })
        .await;
        Some(Ahead { ready, calls })
    }

    async fn deliver_target(
        &self,
        job: &JobEvent,
        export: &Arc<Export>,
        routed: &RoutedTarget<'_>,
        mode: Mode,
        origin: Instant,
        ready: Option<Ready>,
    ) -> TargetReport {
        // On the clock of the whole run, so the phases add up to its total.
        let mut timings = Timings::starting_at(origin);
        let view = TargetView::new(&self.config, routed);
        let target = routed.target;
        if let Some(refusal) = export_refusal(target, export) {
            return TargetReport::failed(view, Failure::new(Cause::Export, refusal));
        }
        let provider = match self.provider(target) {
            None => None,
            Some(Ok(provider)) => Some(provider.clone()),
            Some(Err(why)) => {
                return TargetReport::failed(view, Failure::new(Cause::ProviderSetup, why));
            }
        };
        let (remote, fetched) = match ready {
            Some(Ok((remote, fetched))) => (Ok(remote), Some(fetched)),
            Some(Err(failure)) => (Err(failure), None),
            None => (self.remote(target, provider.as_deref()).await, None),
        };
        let spec = match remote.and_then(|remote| self.spec(job, export, routed, remote)) {
            Ok(spec) => spec,
            Err(failure) => return TargetReport::failed(view, failure),
        };
        // Fetched ahead, the plan counts from the target's start: it waited for the fetch.
        let started = match fetched {
            Some(_) => origin,
            None => Instant::now(),
        };
        let plan = match fetched {
            Some(Ok(fetched)) => self.git.plan_fetched(&spec, export.clone(), fetched).await,
            Some(Err(err)) => Err(err),
            None => self.git.plan(&spec, export.clone()).await,
        };
        timings.since(Phase::Plan, started);
        let plan = match plan {
            Ok(plan) => plan,
            Err(err) => return TargetReport::failed(view, Failure::from(&err)).timed(timings),
        };
        let parts = plan.timings();
        timings.record(Phase::Fetch, parts.fetch);
        timings.record(Phase::Build, parts.build);
        let diff = match mode {
            Mode::DryRun { diff: true } => match self.git.diff(&plan).await {
                Ok(diff) => Some(diff),
                Err(err) => return TargetReport::failed(view, Failure::from(&err)),
            },
            _ => None,
        };
        // What changed in the tokens, for the description and the report; a failure to
        // compare never fails the delivery.
        let started = Instant::now();
        let tokens = match self.git.token_diff(&plan).await {
            Ok(tokens) => Some(tokens),
            Err(err) => {
                tracing::warn!(error = %err, "tokens not compared");
                None
            }
        };
        timings.since(Phase::Tokens, started);
        // Configured, or the remote's default branch as the plan found it.
        let base = plan.base_branch().to_owned();
        let commit_message = Some(plan.commit_message().to_owned());
        let base_commit = Some(plan.base_commit().to_string());
        let pushed_earlier = matches!(plan.outcome(), git::Outcome::UpToDate { .. })
            && plan.head_delivery() == Some(spec.delivery_id.as_str());
        let (git_outcome, files, pushed) = match mode {
            Mode::DryRun { .. } => (plan.outcome().clone(), plan.files().clone(), false),
            Mode::Deliver => {
                let started = Instant::now();
                let pushed = match provider
                    .as_deref()
                    .filter(|_| api_commits(&self.config, target))
                {
                    Some(provider) => self.commit_through_api(provider, target, plan).await,
                    None => self.git.push(plan).await.map_err(|e| Failure::from(&e)),
                };
                timings.since(Phase::Push, started);
                match pushed {
                    Ok(done) => (done.outcome, done.files, done.pushed),
                    Err(failure) => {
                        return TargetReport::failed(view, failure).timed(timings);
                    }
                }
            }
        };
        let (commit, note) = match &git_outcome {
            git::Outcome::Push { commit, .. } | git::Outcome::UpToDate { commit } => {
                (Some(commit.to_string()), None)
            }
            git::Outcome::NoChanges { .. } => (
                None,
                Some("the export matches the base branch; nothing to push".to_owned()),
            ),
            git::Outcome::BranchDiverged { message } => (None, Some(message.clone())),
        };
        let outcome = Outcome::from(&git_outcome);
        let mut view = view;
        view.base = base.clone();
        let mut report = TargetReport {
            pushed,
            pushed_earlier,
            commit_message,
            commit,
            base_commit,
            files: Some(files),
            tokens,
            diff,
            note,
            timings,
            ..TargetReport::new(view, outcome.clone())
        };
        let Some(provider) = provider else {
            return report;
        };
        let step = pull_request::GitOutcome::from(&git_outcome);
        let mut facts = export_facts(export, report.files.as_ref());
        facts.notes = self.log_notes(job).await;
        if let Some(tokens) = &report.tokens {
            facts.tokens = TokenFacts::new(tokens.clone());
        }
        let mut pr = match self.pr_spec(job, routed, &base, &facts, provider.max_description_len())
        {
            Ok(pr) => pr,
            Err(err) => {
                report.outcome = Outcome::Failed(Failure::new(Cause::Template, format!("{err:#}")));
                return report;
            }
        };
        // Our own earlier run pushed this commit and may have opened the pull request
        // without getting to its labels and reviewers (a crash in between).
        pr.redecorate = report.pushed_earlier;
        let started = Instant::now();
        let result = match mode {
            Mode::DryRun { .. } => pull_request::plan(provider.as_ref(), &self.retry, &pr, step)
                .await
                .map(PullRequestReport::Planned),
            Mode::Deliver => {
                pull_request::open_or_update(provider.as_ref(), &self.retry, &pr, step)
                    .await
                    .map(PullRequestReport::Done)
            }
        };
        report.timings.since(Phase::PullRequest, started);
        match result {
            Ok(step) => report.pull_request = Some(step),
            Err(err) => {
                // The branch is pushed; what failed is the pull request. A retry converges:
                // the push is `up_to_date` and the PR is looked up again.
                let mut failure = Failure::from(&err);
                failure.message = format!("the pull request step failed: {err}");
                report.outcome = Outcome::Failed(failure);
            }
        }
        report
    }

    /// A failed export closes the loop: the open pull request of the target gets one
    /// comment with the failure and the last log lines (once per job: a run that finds
    /// its comment there does not write another); nothing is pushed.
    pub(super) async fn report_failure(
        &self,
        job: &JobEvent,
        routed: &RoutedTarget<'_>,
        log_tail: &[String],
        mode: Mode,
    ) -> TargetReport {
        let (mut report, calls) =
            forge_calls::recorded(self.tell_failure(job, routed, log_tail, mode)).await;
        report.forge_calls = calls;
        report
    }

    async fn tell_failure(
        &self,
        job: &JobEvent,
        routed: &RoutedTarget<'_>,
        log_tail: &[String],
        mode: Mode,
    ) -> TargetReport {
        let view = TargetView::new(&self.config, routed);
        let provider = match self.provider(routed.target) {
            None => {
                let mut report = TargetReport::new(view, Outcome::NoOpenPullRequest);
                report.note = Some("a git target has no pull request to tell".to_owned());
                return report;
            }
            Some(Ok(provider)) => provider.clone(),
            Some(Err(why)) => {
                return TargetReport::failed(view, Failure::new(Cause::ProviderSetup, why));
            }
        };
        let target = routed.target;
        let base = match self.base_branch(target, Some(provider.as_ref())).await {
            Ok(base) => base,
            Err(failure) => return TargetReport::failed(view, failure),
        };
        let mut view = view;
        view.base = base.clone();
        let failure = FailureReport {
            repo: RepoSlug::new(target.repository.clone()),
            head: BranchName::new(routed.head_branch.clone()),
            base: BranchName::new(base),
            job_id: job.job.id.clone(),
            message: format!(
                "The {} export of {} {} ended with status {}; this pull request still holds the previous export.",
                job.exporter.name, job.design_system.name, job.version.version, job.job.status
            ),
            last_log_lines: log_tail.to_vec(),
        };
        if let Mode::DryRun { .. } = mode {
            let mut report = TargetReport::new(view, Outcome::Commented);
            report.note = Some(format!(
                "would comment on the open pull request of {} (if any) with the failure",
                routed.head_branch
            ));
            return report;
        }
        match pull_request::report_failure(provider.as_ref(), &self.retry, &failure).await {
            Ok(outcome) => {
                let (word, note) = match &outcome {
                    FailureOutcome::Commented { pr } => {
                        (Outcome::Commented, format!("commented on #{pr}"))
                    }
                    FailureOutcome::AlreadyReported { pr } => (
                        Outcome::Commented,
                        format!("#{pr} already has this job's failure comment"),
                    ),
                    FailureOutcome::NoOpenPr => (
                        Outcome::NoOpenPullRequest,
                        format!("no open pull request from {}", routed.head_branch),
                    ),
                };
                let mut report = TargetReport::new(view, word);
                report.note = Some(note);
                report.pull_request = Some(PullRequestReport::FailureReported(outcome));
                report
            }
            Err(err) => TargetReport::failed(view, Failure::from(&err)),
        }
    }

    fn spec(
        &self,
        job: &JobEvent,
        export: &Export,
        routed: &RoutedTarget<'_>,
        remote: Remote,
    ) -> Result<DeliverySpec, Failure> {
        let target = routed.target;
        let facts = export_facts(export, None);
        let commit_message = self
            .config
            .templates
            .render_commit_message(target, job, Some(&facts))
            .context("rendering the commit message")
            .map_err(|e| Failure::new(Cause::Template, format!("{e:#}")))?;
        Ok(DeliverySpec {
            remote,
            base_branch: base_branch(target).map(str::to_owned),
            head_branch: routed.head_branch.clone(),
            relative_path: target.relative_path.clone(),
            purge: target.purge_directory,
            author: Signature {
                name: target.commit_author_name.clone(),
                email: target.commit_author_email.clone(),
            },
            commit_message,
            delivery_id: delivery_id(job, target),
            allow_protected_paths: target.allow_protected_paths,
            overwrite_diverged: target.overwrite_diverged,
            allow_empty_export: target.allow_empty_export,
            signing: target.signing.clone(),
        })
    }

    /// `commits: api`: the forge creates the planned commit through its API (and signs
    /// it) instead of receiving it by push.
    async fn commit_through_api(
        &self,
        provider: &dyn Provider,
        target: &Target,
        plan: git::Plan,
    ) -> Result<git::Delivered, Failure> {
        let commit = match self.git.hand_over(plan).await {
            Ok(git::ApiPlan::Nothing(delivered)) => return Ok(delivered),
            Ok(git::ApiPlan::Commit(commit)) => commit,
            Err(err) => return Err(Failure::from(&err)),
        };
        let repo = RepoSlug::new(target.repository.clone());
        api_commit::deliver(provider, &self.retry, &repo, commit)
            .await
            .map_err(|e| Failure::from(&e))
    }

    /// The target's remote with its push credentials.
    async fn remote(
        &self,
        target: &Target,
        provider: Option<&dyn Provider>,
    ) -> Result<Remote, Failure> {
        // Forges hand out the push credentials (a GitHub App mints a token); a plain git
        // remote uses its configured token, if any.
        let credentials = match provider {
            Some(provider) => {
                let repo = RepoSlug::new(target.repository.clone());
                let creds = self
                    .retry
                    .run("push credentials", || provider.push_credentials(&repo))
                    .await
                    .map_err(|e| Failure::from(&e))?;
                Some(Credentials {
                    username: creds.username,
                    token: creds.token,
                })
            }
            None => None,
        };
        remote_for(
            self.config.connection(target),
            target.clone_url(),
            credentials,
        )
        .map_err(|e| Failure::from(&e))
    }

    /// The base branch a target's pull request targets: as configured, or the
    /// repository's default branch read from the remote.
    async fn base_branch(
        &self,
        target: &Target,
        provider: Option<&dyn Provider>,
    ) -> Result<String, Failure> {
        if !target.branch_from_remote {
            return Ok(target.branch.clone());
        }
        let remote = self.remote(target, provider).await?;
        self.git
            .default_branch(&remote)
            .await
            .map_err(|e| Failure::from(&e))
    }

    fn pr_spec(
        &self,
        job: &JobEvent,
        routed: &RoutedTarget<'_>,
        base: &str,
        facts: &TemplateExport,
        max_description_len: usize,
    ) -> anyhow::Result<PrSpec> {
        let target = routed.target;
        let templates = &self.config.templates;
        let title = templates
            .render_pull_request_title(target, job, Some(facts))
            .context("rendering the pull request title")?;
        let marker = marker(job, target);
        // The description and its marker fit the forge's limit together.
        let limit = max_description_len.saturating_sub(marker.chars().count() + 2);
        let body = templates
            .render_pull_request_description(target, job, Some(facts), limit)
            .context("rendering the pull request description")?;
        let body = format!("{}\n\n{marker}", body.trim_end());
        Ok(PrSpec {
            repo: RepoSlug::new(target.repository.clone()),
            head: BranchName::new(routed.head_branch.clone()),
            base: BranchName::new(base.to_owned()),
            title,
            body,
            draft: target.draft,
            decorations: Decorations {
                labels: target.labels.clone(),
                reviewers: target.reviewers.clone(),
                team_reviewers: target.team_reviewers.clone(),
                assignees: target.assignees.clone(),
            },
            update_description: target.update_description,
            delete_branch_on_converge: target.delete_branch_on_converge,
            auto_merge: target.auto_merge,
            redecorate: false,
        })
    }
}

/// A target's remote and branches, fetched while its job's export was obtained
/// ([`Deliverer::fetch_ahead`]).
pub(super) struct Ahead {
    ready: Ready,
    /// The forge calls made for it: minting the push credentials.
    calls: CallTimes,
}

/// The remote with its push credentials and the fetch from it, or why there are no
/// credentials.
type Ready = Result<(Remote, Result<git::Fetched, git::GitError>), Failure>;

/// The branch a target's delivery is built on; `None`: the remote's default branch.
fn base_branch(target: &Target) -> Option<&str> {
    (!target.branch_from_remote).then_some(target.branch.as_str())
}

/// Whether the target's connection creates commits through the forge's API.
fn api_commits(config: &Config, target: &Target) -> bool {
    matches!(
        &config.connection(target).kind,
        ConnectionKind::Github(github) if github.commits == Commits::Api
    )
}

/// What templates may say about the export; the changes once the tree is built.
fn export_facts(export: &Export, files: Option<&FileChanges>) -> TemplateExport {
    let summary = export.summary();
    let mut facts = TemplateExport {
        files: summary.files,
        bytes: summary.bytes,
        ..TemplateExport::default()
    };
    if let Some(files) = files {
        facts.added = Some(files.added.len() as u64);
        facts.modified = Some(files.modified.len() as u64);
        facts.deleted = Some(files.deleted.len() as u64);
        facts.directories = changes_by_directory(files);
    }
    facts
}

/// The changes grouped by the directory that holds each file, sorted by directory.
pub fn changes_by_directory(files: &FileChanges) -> Vec<DirectoryChanges> {
    type Count = fn(&mut DirectoryChanges);
    let mut dirs: BTreeMap<&str, DirectoryChanges> = BTreeMap::new();
    let kinds: [(&[String], Count); 3] = [
        (&files.added, |d| d.added += 1),
        (&files.modified, |d| d.modified += 1),
        (&files.deleted, |d| d.deleted += 1),
    ];
    for (paths, count) in kinds {
        for path in paths {
            let dir = path.rsplit_once('/').map_or(".", |(dir, _)| dir);
            count(dirs.entry(dir).or_insert_with(|| DirectoryChanges {
                name: dir.to_owned(),
                ..DirectoryChanges::default()
            }));
        }
    }
    dirs.into_values().collect()
}

/// The hidden line at the end of every description Courier writes, naming the hook and
/// target, so a person (or a later Courier) can tell which configuration owns the PR.
fn marker(job: &JobEvent, target: &Target) -> String {
    format!(
        "<!-- courier: hook={} target={} -->",
        job.hook.id, target.id
    )
}

/// The `Courier-Delivery` trailer's value: the same for every delivery of one job to one
/// target (by its stable id), so a re-run of that job recognises its own commit.
fn delivery_id(job: &JobEvent, target: &Target) -> String {
    format!("{}/{} {}", job.workspace.id, job.job.id, target.id)
}
