//! Open or update the pull request for one delivery, written once over `&dyn Provider`.
//!
//! The rules (issue 4): look the open pull request up by its head branch; none → create
//! and decorate; one → update (title and description only when `update_description`); a
//! creation that races another ("already exists") → look it up and update; a pull request
//! from that branch closed without merge → a new one whose description says which it
//! supersedes; an export that converged with the base → close with a comment and delete
//! the head branch, but only when every commit on it is Courier's own and the branch has not
//! moved since the git engine looked; a converged branch holding someone else's commits
//! leaves the pull request open, with one comment saying why. Descriptions are cut to the
//! forge's limit ([`fit_description`]) before they are sent or compared. Every provider call
//! goes through the [`RetryPolicy`].

use std::fmt;

use serde::Serialize;

use crate::git::{self, CommitId, HeadBranch};
use crate::provider::{
    AutoMerge, BranchName, Decorations, NewPullRequest, PrNumber, PrState, Provider, ProviderError,
    PullRequest, PullRequestUpdate, RepoSlug, Warning,
};
use crate::retry::RetryPolicy;

/// What the git engine did with the export on the head branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GitOutcome {
    /// A new commit was pushed to the head branch.
    Pushed,
    /// The head branch already held exactly this export (a redelivery).
    UpToDate,
    /// The export equals the base branch's content: nothing left to propose. `head` is
    /// what the engine saw of the head branch; only a branch holding Courier's commits
    /// alone is closed and deleted.
    NoChanges { head: HeadBranch },
    /// Someone else committed to the head branch; Courier did not push over it.
    BranchDiverged,
}

impl From<&git::Outcome> for GitOutcome {
    fn from(outcome: &git::Outcome) -> GitOutcome {
        match outcome {
            git::Outcome::Push { .. } => GitOutcome::Pushed,
            git::Outcome::UpToDate { .. } => GitOutcome::UpToDate,
            git::Outcome::NoChanges { head } => GitOutcome::NoChanges { head: head.clone() },
            git::Outcome::BranchDiverged { .. } => GitOutcome::BranchDiverged,
        }
    }
}

/// One target's pull request, as configured and rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrSpec {
    pub repo: RepoSlug,
    pub head: BranchName,
    pub base: BranchName,
    pub title: String,
    pub body: String,
    pub draft: bool,
    pub decorations: Decorations,
    /// Rewrite title and description of an existing pull request (default true); false
    /// keeps human edits.
    pub update_description: bool,
    /// Delete the head branch when closing a converged pull request (default true).
    pub delete_branch_on_converge: bool,
    pub auto_merge: bool,
    /// Apply the decorations to an open pull request found for the head too (they only add:
    /// labels, reviewers, assignees). Set when this delivery's own earlier run pushed the
    /// head commit: that run may have created the pull request and stopped (a crash)
    /// before decorating it. Otherwise a found pull request is left to the people on it.
    pub redecorate: bool,
}

impl PrSpec {
    /// A spec with the documented defaults: not a draft, no decorations,
    /// `update_description` and `delete_branch_on_converge` on, auto-merge off.
    pub fn new(
        repo: RepoSlug,
        head: BranchName,
        base: BranchName,
        title: impl Into<String>,
        body: impl Into<String>,
    ) -> PrSpec {
        PrSpec {
            repo,
            head,
            base,
            title: title.into(),
            body: body.into(),
            draft: false,
            decorations: Decorations::default(),
            update_description: true,
            delete_branch_on_converge: true,
            auto_merge: false,
            redecorate: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PrAction {
    Created {
        pr: PullRequest,
    },
    Updated {
        pr: PullRequest,
    },
    Unchanged {
        pr: PullRequest,
    },
    Closed {
        pr: PullRequest,
    },
    /// The export converged with the base, but the branch holds commits Courier did not
    /// make: the pull request and its branch were left as they are (`reason` says so).
    LeftOpen {
        pr: PullRequest,
        reason: String,
    },
    NothingToDo,
}

/// The result of [`open_or_update`], recorded with the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrOutcome {
    #[serde(flatten)]
    pub action: PrAction,
    /// The pull request closed without merge that a newly created one supersedes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<PrNumber>,
    /// `None` when auto-merge was not asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_merge: Option<AutoMerge>,
    pub warnings: Vec<Warning>,
}

impl PrOutcome {
    /// The pull request acted on, if any.
    pub fn pull_request(&self) -> Option<&PullRequest> {
        match &self.action {
            PrAction::Created { pr }
            | PrAction::Updated { pr }
            | PrAction::Unchanged { pr }
            | PrAction::Closed { pr }
            | PrAction::LeftOpen { pr, .. } => Some(pr),
            PrAction::NothingToDo => None,
        }
    }
}

/// The line Courier adds to a new pull request's description when an earlier one from
/// the same branch was closed without merge.
pub fn supersedes_line(old: PrNumber) -> String {
    format!("Supersedes #{old}, which was closed without merging.")
}

fn body_superseding(body: &str, old: Option<&PullRequest>) -> String {
    match old {
        Some(old) => format!("{}\n\n{body}", supersedes_line(old.number)),
        None => body.to_owned(),
    }
}

/// A description as the forge will hold it: at most `max` characters, cut at a char
/// boundary with a note saying so at the end. The one place bodies are cut, before they
/// are created, updated or compared with what the forge holds.
pub fn fit_description(body: &str, max: usize) -> String {
    if body.chars().count() <= max {
        return body.to_owned();
    }
    let note = format!("\n\n… (description truncated to the forge's {max}-character limit)");
    let keep = max.saturating_sub(note.chars().count());
    let cut = body
        .char_indices()
        .nth(keep)
        .map_or(body.len(), |(index, _)| index);
    let mut fitted = format!("{}{note}", &body[..cut]);
    if fitted.chars().count() > max {
        // A limit shorter than the note itself: the note gives way.
        fitted = fitted.chars().take(max).collect();
    }
    fitted
}

/// The hidden marker of Courier's comment on a converged pull request it left open
/// because its branch holds someone else's commits; one such comment per pull request.
pub const LEFT_OPEN_MARKER: &str = "<!-- courier:converged-left-open -->";

/// Why Courier leaves a converged pull request open; posted once (found again by
/// [`LEFT_OPEN_MARKER`]).
pub fn left_open_comment(spec: &PrSpec, foreign: usize) -> String {
    format!(
        "{LEFT_OPEN_MARKER}\nThe latest export is identical to what `{base}` already \
         contains, so Courier has nothing left to propose here. But the branch `{head}` \
         holds {foreign} commit(s) Courier did not make, so Courier left this pull request \
         and the branch alone. A person can close it (and delete the branch) once that work \
         is no longer needed.",
        base = spec.base,
        head = spec.head,
    )
}

fn left_open_reason(spec: &PrSpec, number: PrNumber, tip: &CommitId, foreign: usize) -> String {
    format!(
        "the export equals {base}, but branch {head} (at {tip}) holds {foreign} commit(s) \
         Courier did not make; pull request #{number} and the branch were left open",
        base = spec.base,
        head = spec.head,
        tip = &tip.as_str()[..12.min(tip.as_str().len())],
    )
}

/// Why Courier closes a converged pull request; posted as a comment before closing.
/// `deletes_branch`: the head branch is to be deleted too.
pub fn converged_comment(spec: &PrSpec, deletes_branch: bool) -> String {
    let branch = if deletes_branch {
        format!(" The branch `{}` is deleted.", spec.head)
    } else {
        String::new()
    };
    format!(
        "Courier is closing this pull request: the latest export is identical to what \
         `{}` already contains, so there is nothing left to merge.{branch} A later export \
         that differs opens a new pull request.",
        spec.base
    )
}

/// Creates, updates or closes the target's pull request after the git step.
pub async fn open_or_update(
    provider: &dyn Provider,
    retry: &RetryPolicy,
    spec: &PrSpec,
    git: GitOutcome,
) -> Result<PrOutcome, ProviderError> {
    let repo = &spec.repo;
    let open = retry
        .run("find open pull request", || {
            provider.find_open(repo, &spec.head, &spec.base)
        })
        .await?;
    let max = provider.max_description_len();
    let body = fit_description(&spec.body, max);
    let mut outcome = PrOutcome {
        action: PrAction::NothingToDo,
        supersedes: None,
        auto_merge: None,
        warnings: Vec::new(),
    };
    let pushed = git == GitOutcome::Pushed;
    match (git, open) {
        (
            GitOutcome::NoChanges {
                head: HeadBranch::Foreign { tip, commits },
            },
            Some(pr),
        ) => {
            let comments = retry
                .run("list comments", || provider.list_comments(repo, pr.number))
                .await?;
            if !comments.iter().any(|c| c.body.contains(LEFT_OPEN_MARKER)) {
                let comment = left_open_comment(spec, commits.len());
                retry
                    .run("comment on converged pull request left open", || {
                        provider.comment(repo, pr.number, &comment)
                    })
                    .await?;
            }
            let reason = left_open_reason(spec, pr.number, &tip, commits.len());
            outcome.warnings.push(Warning(reason.clone()));
            outcome.action = PrAction::LeftOpen { pr, reason };
        }
        (GitOutcome::NoChanges { head }, Some(mut pr)) => {
            let delete = head.tip().filter(|_| spec.delete_branch_on_converge);
            let comment = converged_comment(spec, delete.is_some());
            retry
                .run("comment on converged pull request", || {
                    provider.comment(repo, pr.number, &comment)
                })
                .await?;
            retry
                .run("close converged pull request", || {
                    provider.close(repo, pr.number)
                })
                .await?;
            if let Some(tip) = delete {
                delete_converged_branch(provider, retry, spec, tip, &mut outcome.warnings).await?;
            }
            pr.state = PrState::Closed;
            outcome.action = PrAction::Closed { pr };
        }
        (GitOutcome::NoChanges { .. }, None) => {}
        (GitOutcome::BranchDiverged, open) => {
            outcome.warnings.push(Warning(format!(
                "branch {} has commits Courier did not make; it was not pushed and the pull \
                 request was left as it is",
                spec.head
            )));
            if let Some(pr) = open {
                outcome.action = PrAction::Unchanged { pr };
            }
        }
        (GitOutcome::Pushed | GitOutcome::UpToDate, Some(pr)) => {
            if spec.redecorate {
                decorate(provider, retry, spec, pr.number, &mut outcome.warnings).await;
            }
            outcome.action = update_existing(provider, retry, spec, &body, pr, pushed).await?;
        }
        (GitOutcome::Pushed | GitOutcome::UpToDate, None) => {
            let closed = retry
                .run("find closed pull request", || {
                    provider.find_closed_unmerged(repo, &spec.head)
                })
                .await?;
            let new = NewPullRequest {
                title: spec.title.clone(),
                body: fit_description(&body_superseding(&spec.body, closed.as_ref()), max),
                head: spec.head.clone(),
                base: spec.base.clone(),
                draft: spec.draft,
            };
            match retry
                .run("create pull request", || provider.create(repo, &new))
                .await
            {
                Ok(pr) => {
                    outcome.supersedes = closed.map(|c| c.number);
                    decorate(provider, retry, spec, pr.number, &mut outcome.warnings).await;
                    outcome.action = PrAction::Created { pr };
                }
                Err(ProviderError::Conflict { message, .. }) => {
                    // Another delivery created it between our lookup and our create.
                    tracing::info!(%message, "pull request created concurrently; updating it");
                    let pr = retry
                        .run("find raced pull request", || {
                            provider.find_open(repo, &spec.head, &spec.base)
                        })
                        .await?
                        .ok_or_else(|| ProviderError::Conflict {
                            provider: provider.kind(),
                            message: format!(
                                "{message}; yet no open pull request from {} into {} was \
                                 found (is one open against another base?)",
                                spec.head, spec.base
                            ),
                        })?;
                    outcome.action =
                        update_existing(provider, retry, spec, &body, pr, pushed).await?;
                }
                Err(other) => return Err(other),
            }
        }
    }
    if spec.auto_merge
        && let PrAction::Created { pr } | PrAction::Updated { pr } | PrAction::Unchanged { pr } =
            &outcome.action
    {
        // Auto-merge is a convenience: whatever stops it, the pull request stands.
        let result = retry
            .run("enable auto-merge", || provider.enable_auto_merge(repo, pr))
            .await;
        match result {
            Ok(state) => {
                if let AutoMerge::Unavailable { reason } = &state {
                    outcome.warnings.push(Warning(format!(
                        "auto-merge not enabled on #{}: {reason}",
                        pr.number
                    )));
                }
                outcome.auto_merge = Some(state);
            }
            Err(error) => {
                outcome.warnings.push(Warning(format!(
                    "auto-merge not enabled on #{}: {error}",
                    pr.number
                )));
                outcome.auto_merge = Some(AutoMerge::Unavailable {
                    reason: error.to_string(),
                });
            }
        }
    }
    Ok(outcome)
}

/// Deletes the converged head branch if it still points at `tip`, the commit the git
/// engine saw holding only Courier's work. GitHub and GitLab cannot delete conditionally,
/// so the tip is read again right before; Azure DevOps' delete itself carries `tip`. A
/// branch that moved is left alone, with a warning: whatever was pushed is someone's.
async fn delete_converged_branch(
    provider: &dyn Provider,
    retry: &RetryPolicy,
    spec: &PrSpec,
    tip: &CommitId,
    warnings: &mut Vec<Warning>,
) -> Result<(), ProviderError> {
    let repo = &spec.repo;
    let now = retry
        .run("read converged branch", || {
            provider.branch_tip(repo, &spec.head)
        })
        .await?;
    let moved = |now: &str| {
        Warning(format!(
            "branch {} was not deleted: it moved from {tip} to {now} after Courier looked \
             at it, and Courier does not delete what it did not write",
            spec.head
        ))
    };
    match now {
        None => {}
        Some(now) if now != *tip => warnings.push(moved(now.as_str())),
        Some(_) => {
            match retry
                .run("delete converged branch", || {
                    provider.delete_branch(repo, &spec.head, tip)
                })
                .await
            {
                Ok(()) => {}
                Err(ProviderError::Conflict { message, .. }) => {
                    warnings.push(moved(&format!("another commit ({message})")))
                }
                Err(other) => return Err(other),
            }
        }
    }
    Ok(())
}

/// Applies the spec's labels, reviewers and assignees. The pull request exists by now, so
/// a forge that keeps failing these calls costs the decorations (a warning), not the
/// delivery.
async fn decorate(
    provider: &dyn Provider,
    retry: &RetryPolicy,
    spec: &PrSpec,
    number: PrNumber,
    warnings: &mut Vec<Warning>,
) {
    if spec.decorations == Decorations::default() {
        return;
    }
    match retry
        .run("decorate pull request", || {
            provider.decorate(&spec.repo, number, &spec.decorations)
        })
        .await
    {
        Ok(more) => warnings.extend(more),
        Err(error) => warnings.push(Warning(format!(
            "labels, reviewers and assignees not applied to #{number}: {error}"
        ))),
    }
}

/// Title and description to write onto an existing pull request, if any differ and the
/// target wants them rewritten. `body` is the spec's, already cut to the forge's limit.
fn pending_update(spec: &PrSpec, body: &str, pr: &PullRequest) -> Option<PullRequestUpdate> {
    if !spec.update_description {
        return None;
    }
    let update = PullRequestUpdate {
        title: (pr.title != spec.title).then(|| spec.title.clone()),
        body: (pr.body != body).then(|| body.to_owned()),
    };
    (update.title.is_some() || update.body.is_some()).then_some(update)
}

async fn update_existing(
    provider: &dyn Provider,
    retry: &RetryPolicy,
    spec: &PrSpec,
    body: &str,
    pr: PullRequest,
    pushed: bool,
) -> Result<PrAction, ProviderError> {
    match pending_update(spec, body, &pr) {
        Some(update) => {
            let pr = retry
                .run("update pull request", || {
                    provider.update(&spec.repo, pr.number, &update)
                })
                .await?;
            Ok(PrAction::Updated { pr })
        }
        // New commits on the branch change the pull request even when its text stays.
        None if pushed => Ok(PrAction::Updated { pr }),
        None => Ok(PrAction::Unchanged { pr }),
    }
}

/// What [`plan`] would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PlannedAction {
    CreatePr {
        #[serde(skip_serializing_if = "Option::is_none")]
        supersedes: Option<PrNumber>,
    },
    UpdatePr {
        number: PrNumber,
        /// False when the title and description would be left as they are.
        rewrites_text: bool,
    },
    ClosePr {
        number: PrNumber,
        deletes_branch: bool,
    },
    /// The export converged with the base, but the branch holds commits Courier did not
    /// make: the pull request and the branch stay.
    LeavePrOpen {
        number: PrNumber,
        /// False when Courier's explanation is already on the pull request.
        comments: bool,
    },
    NothingToDo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrPlan {
    #[serde(flatten)]
    pub action: PlannedAction,
    /// The title and description the pull request would get (for a close: the comment).
    pub title: String,
    pub body: String,
}

impl fmt::Display for PlannedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlannedAction::CreatePr { supersedes: None } => f.write_str("create PR"),
            PlannedAction::CreatePr {
                supersedes: Some(old),
            } => write!(f, "create PR (supersedes #{old})"),
            PlannedAction::UpdatePr { number, .. } => write!(f, "update PR #{number}"),
            PlannedAction::ClosePr { number, .. } => write!(f, "close PR #{number}"),
            PlannedAction::LeavePrOpen { number, .. } => write!(f, "leave PR #{number} open"),
            PlannedAction::NothingToDo => f.write_str("nothing to do"),
        }
    }
}

/// The dry-run of [`open_or_update`]: the same decisions from read-only calls.
pub async fn plan(
    provider: &dyn Provider,
    retry: &RetryPolicy,
    spec: &PrSpec,
    git: GitOutcome,
) -> Result<PrPlan, ProviderError> {
    let repo = &spec.repo;
    let open = retry
        .run("find open pull request", || {
            provider.find_open(repo, &spec.head, &spec.base)
        })
        .await?;
    let max = provider.max_description_len();
    let fitted = fit_description(&spec.body, max);
    let (action, title, body) = match (git, open) {
        (
            GitOutcome::NoChanges {
                head: HeadBranch::Foreign { commits, .. },
            },
            Some(pr),
        ) => {
            let comments = retry
                .run("list comments", || provider.list_comments(repo, pr.number))
                .await?;
            let commented = comments.iter().any(|c| c.body.contains(LEFT_OPEN_MARKER));
            (
                PlannedAction::LeavePrOpen {
                    number: pr.number,
                    comments: !commented,
                },
                pr.title.clone(),
                left_open_comment(spec, commits.len()),
            )
        }
        (GitOutcome::NoChanges { head }, Some(pr)) => {
            let deletes_branch = spec.delete_branch_on_converge && head.tip().is_some();
            (
                PlannedAction::ClosePr {
                    number: pr.number,
                    deletes_branch,
                },
                pr.title.clone(),
                converged_comment(spec, deletes_branch),
            )
        }
        (GitOutcome::NoChanges { .. } | GitOutcome::BranchDiverged, _) => {
            (PlannedAction::NothingToDo, spec.title.clone(), fitted)
        }
        (git @ (GitOutcome::Pushed | GitOutcome::UpToDate), Some(pr)) => {
            let update = pending_update(spec, &fitted, &pr);
            let rewrites_text = update.is_some();
            if !rewrites_text && git == GitOutcome::UpToDate {
                (
                    PlannedAction::NothingToDo,
                    pr.title.clone(),
                    pr.body.clone(),
                )
            } else if rewrites_text {
                (
                    PlannedAction::UpdatePr {
                        number: pr.number,
                        rewrites_text,
                    },
                    spec.title.clone(),
                    fitted,
                )
            } else {
                (
                    PlannedAction::UpdatePr {
                        number: pr.number,
                        rewrites_text,
                    },
                    pr.title.clone(),
                    pr.body.clone(),
                )
            }
        }
        (GitOutcome::Pushed | GitOutcome::UpToDate, None) => {
            let closed = retry
                .run("find closed pull request", || {
                    provider.find_closed_unmerged(repo, &spec.head)
                })
                .await?;
            (
                PlannedAction::CreatePr {
                    supersedes: closed.as_ref().map(|c| c.number),
                },
                spec.title.clone(),
                fit_description(&body_superseding(&spec.body, closed.as_ref()), max),
            )
        }
    };
    Ok(PrPlan {
        action,
        title,
        body,
    })
}

/// A failed export, reported on the target's open pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    pub repo: RepoSlug,
    pub head: BranchName,
    pub base: BranchName,
    pub job_id: String,
    pub message: String,
    /// The tail of the job's log, oldest first.
    pub last_log_lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FailureOutcome {
    Commented {
        pr: PrNumber,
    },
    /// This job's failure is already on the pull request (a redelivered webhook).
    AlreadyReported {
        pr: PrNumber,
    },
    NoOpenPr,
}

/// The hidden marker that identifies Courier's comment for one failed job.
pub fn failure_marker(job_id: &str) -> String {
    // `--` would end the HTML comment early; job ids are opaque, so neutralise it.
    format!(
        "<!-- courier:export-failed job={} -->",
        job_id.replace("--", "- -")
    )
}

/// Comments the failure on the open pull request, once per job; pushes nothing.
pub async fn report_failure(
    provider: &dyn Provider,
    retry: &RetryPolicy,
    failure: &FailureReport,
) -> Result<FailureOutcome, ProviderError> {
    let repo = &failure.repo;
    let Some(pr) = retry
        .run("find open pull request", || {
            provider.find_open(repo, &failure.head, &failure.base)
        })
        .await?
    else {
        return Ok(FailureOutcome::NoOpenPr);
    };
    let marker = failure_marker(&failure.job_id);
    let comments = retry
        .run("list comments", || provider.list_comments(repo, pr.number))
        .await?;
    if comments.iter().any(|c| c.body.contains(&marker)) {
        return Ok(FailureOutcome::AlreadyReported { pr: pr.number });
    }
    let mut body = format!(
        "{marker}\n**The export for job `{}` failed**; this pull request still shows the \
         previous export.\n\n> {}\n",
        failure.job_id,
        failure.message.replace('\n', "\n> ")
    );
    if !failure.last_log_lines.is_empty() {
        // A fence longer than any backtick run in the log keeps the log from closing it.
        let longest = failure
            .last_log_lines
            .iter()
            .map(|l| longest_backtick_run(l))
            .max()
            .unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        body.push_str(&format!(
            "\nLast log lines:\n{fence}\n{}\n{fence}\n",
            failure.last_log_lines.join("\n")
        ));
    }
    retry
        .run("comment failure", || {
            provider.comment(repo, pr.number, &body)
        })
        .await?;
    Ok(FailureOutcome::Commented { pr: pr.number })
}

fn longest_backtick_run(line: &str) -> usize {
    line.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_marker_cannot_close_its_html_comment_early() {
        let marker = failure_marker("a-->b");
        assert_eq!(marker.matches("-->").count(), 1, "{marker}");
        assert!(marker.ends_with("-->"));
    }

    #[test]
    fn planned_actions_read_as_the_issue_says() {
        assert_eq!(
            PlannedAction::CreatePr { supersedes: None }.to_string(),
            "create PR"
        );
        assert_eq!(
            PlannedAction::UpdatePr {
                number: PrNumber(4),
                rewrites_text: true
            }
            .to_string(),
            "update PR #4"
        );
        assert_eq!(
            PlannedAction::ClosePr {
                number: PrNumber(4),
                deletes_branch: true
            }
            .to_string(),
            "close PR #4"
        );
        assert_eq!(PlannedAction::NothingToDo.to_string(), "nothing to do");
    }

    #[test]
    fn long_descriptions_are_cut_to_the_limit_with_a_note() {
        let long = "é".repeat(4010);
        let fitted = fit_description(&long, 4000);
        assert_eq!(fitted.chars().count(), 4000);
        assert!(
            fitted.ends_with("… (description truncated to the forge's 4000-character limit)"),
            "{fitted}"
        );
        assert_eq!(
            fit_description(&fitted, 4000),
            fitted,
            "cutting twice changes nothing"
        );
        assert_eq!(fit_description("short", 4000), "short");
        assert_eq!(fit_description("abcdef", 3).chars().count(), 3);
    }

    #[test]
    fn backtick_runs_are_measured() {
        assert_eq!(longest_backtick_run("a ``` b ` c"), 3);
        assert_eq!(longest_backtick_run("plain"), 0);
    }
}
