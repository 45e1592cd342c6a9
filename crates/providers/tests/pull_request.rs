//! Open-or-update, dry-run planning and failure reports, written over `&dyn Provider`,
//! driven here through the real GitHub provider (octocrab) against the stateful fake.

mod common;

use courier_providers::provider::{BranchName, Decorations, PrNumber, PrState, Provider, RepoSlug};
use courier_providers::pull_request::{
    FailureOutcome, FailureReport, GitOutcome, LEFT_OPEN_MARKER, PlannedAction, PrAction, PrSpec,
    open_or_update, plan, report_failure, supersedes_line,
};
use courier_providers::retry::RetryPolicy;
use serde_json::json;

use common::github_fake::{Fault, GitHubFake};
use common::{bounded, github};

const REPO: &str = "acme/web";
const HEAD: &str = "courier/tokens";

fn spec(title: &str, body: &str) -> PrSpec {
    let mut spec = PrSpec::new(
        RepoSlug::new(REPO),
        BranchName::new(HEAD),
        BranchName::new("main"),
        title,
        body,
    );
    spec.decorations = Decorations {
        labels: vec!["design-tokens".into()],
        reviewers: vec!["alice".into()],
        team_reviewers: vec![],
        assignees: vec!["alice".into()],
    };
    spec
}

async fn setup() -> (GitHubFake, Box<dyn Provider>) {
    let fake = GitHubFake::start().await;
    fake.add_repo(REPO);
    fake.add_branch(REPO, HEAD);
    fake.add_collaborator(REPO, "alice");
    let provider: Box<dyn Provider> = Box::new(github(&fake));
    (fake, provider)
}

fn writes(fake: &GitHubFake) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn creates_then_updates_then_leaves_alone() {
    bounded(20, async {
        let (fake, gh) = setup().await;
        let retry = RetryPolicy::fast();
        let first = open_or_update(
            gh.as_ref(),
            &retry,
            &spec("Tokens v1", "one"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        let PrAction::Created { pr } = &first.action else {
            panic!("{first:?}");
        };
        assert!(first.warnings.is_empty(), "{:?}", first.warnings);
        let state = fake.pr(REPO, pr.number.0);
        assert_eq!(
            (state.title.as_str(), state.body.as_str()),
            ("Tokens v1", "one")
        );
        assert_eq!(state.labels, ["design-tokens"]);
        assert_eq!(state.reviewers, ["alice"]);
        assert_eq!(state.assignees, ["alice"]);

        // A new export: same pull request, rewritten text.
        let second = open_or_update(
            gh.as_ref(),
            &retry,
            &spec("Tokens v2", "two"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        let PrAction::Updated { pr: updated } = &second.action else {
            panic!("{second:?}");
        };
        assert_eq!(updated.number, pr.number);
        assert_eq!(fake.prs(REPO).len(), 1);
        assert_eq!(fake.pr(REPO, pr.number.0).body, "two");

        // A redelivered webhook: nothing changes, nothing is written.
        let before = writes(&fake).len();
        let third = open_or_update(
            gh.as_ref(),
            &retry,
            &spec("Tokens v2", "two"),
            GitOutcome::UpToDate,
        )
        .await
        .unwrap();
        assert!(
            matches!(third.action, PrAction::Unchanged { .. }),
            "{third:?}"
        );
        assert_eq!(writes(&fake).len(), before);

        let serialised = serde_json::to_value(&third).unwrap();
        assert_eq!(serialised["action"], "unchanged");
        assert_eq!(serialised["pr"]["number"], json!(pr.number.0));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn update_description_false_keeps_human_edits() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        let number = fake.seed_pr(
            REPO,
            HEAD,
            "main",
            "Edited by a human",
            "human text",
            "open",
        );
        let mut target = spec("Tokens v3", "generated");
        target.update_description = false;
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &target,
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        let PrAction::Updated { pr } = &outcome.action else {
            panic!("{outcome:?}");
        };
        assert_eq!(pr.number, PrNumber(number));
        assert_eq!(fake.pr(REPO, number).title, "Edited by a human");
        assert_eq!(fake.pr(REPO, number).body, "human text");
        assert!(writes(&fake).is_empty(), "{:?}", writes(&fake));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_creation_race_is_resolved_by_updating_the_winner() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        // Another delivery opened the PR between our look-up (stale: empty) and our create.
        let winner = fake.seed_pr(REPO, HEAD, "main", "winner", "theirs", "open");
        fake.enqueue_fault(
            "GET",
            "/repos/{owner}/{repo}/pulls",
            Fault::Respond {
                status: 200,
                headers: vec![],
                body: json!([]),
            },
        );
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("ours", "ours"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        let PrAction::Updated { pr } = &outcome.action else {
            panic!("{outcome:?}");
        };
        assert_eq!(pr.number, PrNumber(winner));
        assert_eq!(fake.prs(REPO).len(), 1, "no second pull request");
        assert_eq!(fake.pr(REPO, winner).body, "ours");
        // The create was attempted once and answered 422 by the fake's own state.
        assert_eq!(
            writes(&fake)
                .iter()
                .filter(|w| *w == "POST /repos/acme/web/pulls")
                .count(),
            1
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_pull_request_closed_without_merge_is_superseded_by_a_new_one() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        let old = fake.seed_pr(REPO, HEAD, "main", "old", "old", "closed");
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("new", "fresh body"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        let PrAction::Created { pr } = &outcome.action else {
            panic!("{outcome:?}");
        };
        assert_ne!(pr.number, PrNumber(old));
        assert_eq!(outcome.supersedes, Some(PrNumber(old)));
        let body = fake.pr(REPO, pr.number.0).body;
        assert!(body.starts_with(&supersedes_line(PrNumber(old))), "{body}");
        assert!(body.contains(&format!("#{old}")));
        assert!(body.ends_with("fresh body"));
        assert_eq!(
            fake.pr(REPO, old).state,
            "closed",
            "the old one stays closed"
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_merged_pull_request_is_not_mentioned() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        fake.seed_pr(REPO, HEAD, "main", "old", "old", "merged");
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("new", "body"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert!(matches!(outcome.action, PrAction::Created { .. }));
        assert_eq!(outcome.supersedes, None);
        assert_eq!(outcome.pull_request().unwrap().body, "body");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn converged_exports_close_with_a_comment_and_delete_the_branch() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        let number = fake.seed_pr(REPO, HEAD, "main", "t", "b", "open");
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("t", "b"),
            common::converged(&fake.branch_tip(REPO, HEAD).unwrap()),
        )
        .await
        .unwrap();
        let PrAction::Closed { pr } = &outcome.action else {
            panic!("{outcome:?}");
        };
        assert_eq!((pr.number, pr.state), (PrNumber(number), PrState::Closed));
        let state = fake.pr(REPO, number);
        assert_eq!(state.state, "closed");
        assert!(!state.merged);
        assert_eq!(state.comments.len(), 1);
        assert!(
            state.comments[0]
                .1
                .contains("identical to what `main` already contains")
        );
        assert!(!fake.has_branch(REPO, HEAD));
        assert_eq!(
            writes(&fake),
            [
                format!("POST /repos/acme/web/issues/{number}/comments"),
                format!("PATCH /repos/acme/web/pulls/{number}"),
                format!("DELETE /repos/acme/web/git/refs/heads/{HEAD}"),
            ]
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn converged_exports_keep_the_branch_when_told_and_do_nothing_without_a_pr() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("t", "b"),
            common::converged(&fake.branch_tip(REPO, HEAD).unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(outcome.action, PrAction::NothingToDo);
        assert!(writes(&fake).is_empty());

        let number = fake.seed_pr(REPO, HEAD, "main", "t", "b", "open");
        let mut keep = spec("t", "b");
        keep.delete_branch_on_converge = false;
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &keep,
            common::converged(&fake.branch_tip(REPO, HEAD).unwrap()),
        )
        .await
        .unwrap();
        assert!(matches!(outcome.action, PrAction::Closed { .. }));
        assert_eq!(fake.pr(REPO, number).state, "closed");
        assert!(fake.has_branch(REPO, HEAD));
        assert!(!fake.pr(REPO, number).comments[0].1.contains("deleted"));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_diverged_branch_leaves_the_pull_request_alone_with_a_warning() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        fake.seed_pr(REPO, HEAD, "main", "t", "b", "open");
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("new", "new"),
            GitOutcome::BranchDiverged,
        )
        .await
        .unwrap();
        assert!(matches!(outcome.action, PrAction::Unchanged { .. }));
        assert_eq!(outcome.warnings.len(), 1);
        assert!(
            outcome.warnings[0]
                .0
                .contains("commits Courier did not make")
        );
        assert!(writes(&fake).is_empty());
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn auto_merge_refusal_is_a_warning_and_permission_is_enabled() {
    bounded(15, async {
        let (fake, gh) = setup().await;
        let mut target = spec("t", "b");
        target.auto_merge = true;
        let refused = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &target,
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert!(matches!(refused.action, PrAction::Created { .. }));
        assert!(
            refused
                .warnings
                .iter()
                .any(|w| w.0.contains("auto-merge not enabled")),
            "{:?}",
            refused.warnings
        );
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(json["auto_merge"]["status"], "unavailable");

        fake.set_auto_merge_allowed(REPO, true);
        let enabled = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &target,
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert!(enabled.warnings.is_empty(), "{:?}", enabled.warnings);
        let number = enabled.pull_request().unwrap().number.0;
        assert!(fake.pr(REPO, number).auto_merge);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn transient_failures_mid_flow_are_retried_without_duplicates() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        fake.enqueue_fault(
            "GET",
            "/repos/{owner}/{repo}/pulls",
            Fault::status(503, "unavailable"),
        );
        fake.enqueue_fault(
            "POST",
            "/repos/{owner}/{repo}/pulls",
            Fault::status(500, "boom"),
        );
        fake.enqueue_fault(
            "POST",
            "/repos/{owner}/{repo}/issues/{issue_number}/labels",
            Fault::with_headers(429, "slow down", &[("retry-after", "1")]),
        );
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("t", "b"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert!(matches!(outcome.action, PrAction::Created { .. }));
        assert_eq!(fake.prs(REPO).len(), 1);
        assert_eq!(fake.prs(REPO)[0].labels, ["design-tokens"]);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn decorations_failing_for_good_cost_a_warning_not_the_pull_request() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        for _ in 0..4 {
            fake.enqueue_fault(
                "POST",
                "/repos/{owner}/{repo}/issues/{issue_number}/labels",
                Fault::status(502, "Bad Gateway"),
            );
        }
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("t", "b"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        let PrAction::Created { pr } = &outcome.action else {
            panic!("{outcome:?}");
        };
        assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
        assert!(
            outcome.warnings[0].0.contains("not applied"),
            "{:?}",
            outcome.warnings
        );
        assert!(fake.pr(REPO, pr.number.0).labels.is_empty());
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn permanent_failures_stop_the_flow_with_the_typed_error() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        fake.enqueue_fault(
            "POST",
            "/repos/{owner}/{repo}/pulls",
            Fault::with_headers(
                403,
                "Resource not accessible by integration",
                &[("x-accepted-github-permissions", "pull_requests=write")],
            ),
        );
        let error = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("t", "b"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("pull_requests=write"), "{error}");
        assert_eq!(
            writes(&fake).len(),
            1,
            "a permission error is not retried: {:?}",
            writes(&fake)
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn plan_reports_each_action_from_read_only_calls() {
    bounded(15, async {
        let (fake, gh) = setup().await;
        let retry = RetryPolicy::fast();
        let create = plan(gh.as_ref(), &retry, &spec("T", "B"), GitOutcome::Pushed)
            .await
            .unwrap();
        assert_eq!(create.action.to_string(), "create PR");
        assert_eq!((create.title.as_str(), create.body.as_str()), ("T", "B"));

        let number = fake.seed_pr(REPO, HEAD, "main", "old title", "old body", "open");
        let update = plan(gh.as_ref(), &retry, &spec("T", "B"), GitOutcome::Pushed)
            .await
            .unwrap();
        assert_eq!(update.action.to_string(), format!("update PR #{number}"));
        assert_eq!(update.body, "B");
        let redelivery = plan(
            gh.as_ref(),
            &retry,
            &spec("old title", "old body"),
            GitOutcome::UpToDate,
        )
        .await
        .unwrap();
        assert_eq!(redelivery.action, PlannedAction::NothingToDo);

        let close = plan(
            gh.as_ref(),
            &retry,
            &spec("T", "B"),
            common::converged(&fake.branch_tip(REPO, HEAD).unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(close.action.to_string(), format!("close PR #{number}"));
        assert!(close.body.contains("nothing left to merge"));

        let json = serde_json::to_value(&close).unwrap();
        assert_eq!(json["action"], "close_pr");
        assert_eq!(json["number"], json!(number));

        assert!(
            writes(&fake).is_empty(),
            "dry-run wrote: {:?}",
            writes(&fake)
        );
        assert_eq!(fake.pr(REPO, number).title, "old title");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn plan_mentions_the_superseded_pull_request() {
    bounded(10, async {
        let (fake, gh) = setup().await;
        let old = fake.seed_pr(REPO, HEAD, "main", "old", "old", "closed");
        let planned = plan(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("T", "B"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert_eq!(
            planned.action.to_string(),
            format!("create PR (supersedes #{old})")
        );
        assert!(planned.body.contains(&format!("#{old}")));
        assert!(writes(&fake).is_empty());
        fake.assert_contract();
    })
    .await;
}

fn failure(job: &str) -> FailureReport {
    FailureReport {
        repo: RepoSlug::new(REPO),
        head: BranchName::new(HEAD),
        base: BranchName::new("main"),
        job_id: job.into(),
        message: "exporter crashed".into(),
        last_log_lines: vec![
            "step 3: resolving tokens".into(),
            "error: ```unexpected``` token".into(),
        ],
    }
}

#[tokio::test]
async fn failed_exports_are_commented_once_per_job() {
    bounded(15, async {
        let (fake, gh) = setup().await;
        let retry = RetryPolicy::fast();
        assert_eq!(
            report_failure(gh.as_ref(), &retry, &failure("job-1"))
                .await
                .unwrap(),
            FailureOutcome::NoOpenPr
        );
        assert!(writes(&fake).is_empty());

        let number = fake.seed_pr(REPO, HEAD, "main", "t", "b", "open");
        let pr = PrNumber(number);
        assert_eq!(
            report_failure(gh.as_ref(), &retry, &failure("job-1"))
                .await
                .unwrap(),
            FailureOutcome::Commented { pr }
        );
        // The webhook is redelivered: no second comment.
        assert_eq!(
            report_failure(gh.as_ref(), &retry, &failure("job-1"))
                .await
                .unwrap(),
            FailureOutcome::AlreadyReported { pr }
        );
        // Another failed job is its own comment.
        assert_eq!(
            report_failure(gh.as_ref(), &retry, &failure("job-2"))
                .await
                .unwrap(),
            FailureOutcome::Commented { pr }
        );
        let comments = fake.pr(REPO, number).comments;
        assert_eq!(comments.len(), 2);
        let first = &comments[0].1;
        assert!(
            first.contains("job-1") && first.contains("exporter crashed"),
            "{first}"
        );
        assert!(first.contains("step 3: resolving tokens"));
        // The log's own triple backticks cannot close the fence.
        assert!(first.contains("````\nstep 3"), "{first}");
        // Nothing but comments was written: no push, no PR change.
        assert!(
            writes(&fake).iter().all(|w| w.ends_with("/comments")),
            "{:?}",
            writes(&fake)
        );
        assert_eq!(fake.pr(REPO, number).body, "b");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn failure_markers_are_found_beyond_the_first_page_of_comments() {
    bounded(30, async {
        let (fake, gh) = setup().await;
        let number = fake.seed_pr(REPO, HEAD, "main", "t", "b", "open");
        let retry = RetryPolicy::fast();
        report_failure(gh.as_ref(), &retry, &failure("job-9"))
            .await
            .unwrap();
        // 120 human comments push the next job's marker onto the second page of 100.
        for i in 0..120 {
            gh.comment(
                &RepoSlug::new(REPO),
                PrNumber(number),
                &format!("human {i}"),
            )
            .await
            .unwrap();
        }
        report_failure(gh.as_ref(), &retry, &failure("job-10"))
            .await
            .unwrap();
        assert_eq!(
            report_failure(gh.as_ref(), &retry, &failure("job-10"))
                .await
                .unwrap(),
            FailureOutcome::AlreadyReported {
                pr: PrNumber(number)
            }
        );
        let pages: Vec<String> = fake
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/comments"))
            .flat_map(|r| {
                r.query
                    .iter()
                    .filter(|(k, _)| k == "page")
                    .map(|(_, v)| v.clone())
            })
            .collect();
        assert!(pages.contains(&"2".to_owned()), "{pages:?}");
        assert_eq!(fake.pr(REPO, number).comments.len(), 122);
        fake.assert_contract();
    })
    .await;
}

/// A found pull request is decorated only when the delivery's own earlier run may have
/// created it and stopped before decorating (`redecorate`); otherwise it is left to people.
#[tokio::test]
async fn an_open_pull_request_is_decorated_again_only_when_asked() {
    bounded(20, async {
        let (fake, gh) = setup().await;
        let retry = RetryPolicy::fast();
        let number = fake.seed_pr(REPO, HEAD, "main", "Tokens v1", "one", "open");

        let left = open_or_update(
            gh.as_ref(),
            &retry,
            &spec("Tokens v1", "one"),
            GitOutcome::UpToDate,
        )
        .await
        .unwrap();
        assert!(
            matches!(left.action, PrAction::Unchanged { .. }),
            "{left:?}"
        );
        assert!(fake.pr(REPO, number).labels.is_empty());
        assert!(writes(&fake).is_empty(), "{:?}", writes(&fake));

        let mut resumed = spec("Tokens v1", "one");
        resumed.redecorate = true;
        let outcome = open_or_update(gh.as_ref(), &retry, &resumed, GitOutcome::UpToDate)
            .await
            .unwrap();
        assert!(
            matches!(outcome.action, PrAction::Unchanged { .. }),
            "{outcome:?}"
        );
        let state = fake.pr(REPO, number);
        assert_eq!(state.labels, ["design-tokens"]);
        assert_eq!(state.reviewers, ["alice"]);
        assert_eq!(state.assignees, ["alice"]);
        assert_eq!(fake.prs(REPO).len(), 1, "no second pull request");
    })
    .await;
}

#[tokio::test]
async fn a_converged_branch_with_someone_elses_commit_stays_open_with_one_comment() {
    bounded(15, async {
        let (fake, gh) = setup().await;
        let number = fake.seed_pr(REPO, HEAD, "main", "t", "b", "open");
        let tip = fake.branch_tip(REPO, HEAD).unwrap();
        let retry = RetryPolicy::fast();
        let mut auto = spec("t", "b");
        auto.auto_merge = true;
        for _ in 0..2 {
            let outcome = open_or_update(
                gh.as_ref(),
                &retry,
                &auto,
                common::converged_over_foreign(&tip),
            )
            .await
            .unwrap();
            assert!(
                matches!(&outcome.action, PrAction::LeftOpen { pr, .. } if pr.number == PrNumber(number)),
                "{outcome:?}"
            );
            let PrAction::LeftOpen { reason, .. } = &outcome.action else {
                panic!("left open: {outcome:?}");
            };
            assert!(reason.contains("did not make"), "{reason}");
            assert!(outcome.warnings.iter().any(|w| &w.0 == reason));
            assert_eq!(outcome.auto_merge, None, "no auto-merge on a PR left open");
        }
        let state = fake.pr(REPO, number);
        assert_eq!(state.state, "open");
        assert!(fake.has_branch(REPO, HEAD));
        assert_eq!(state.comments.len(), 1, "{:?}", state.comments);
        assert!(state.comments[0].1.contains(LEFT_OPEN_MARKER));
        assert!(state.comments[0].1.contains("did not make"));
        assert_eq!(
            writes(&fake),
            [format!("POST /repos/acme/web/issues/{number}/comments")]
        );

        let planned = plan(
            gh.as_ref(),
            &retry,
            &spec("t", "b"),
            common::converged_over_foreign(&tip),
        )
        .await
        .unwrap();
        assert_eq!(
            planned.action,
            PlannedAction::LeavePrOpen {
                number: PrNumber(number),
                comments: false
            }
        );
        assert_eq!(planned.action.to_string(), format!("leave PR #{number} open"));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_converged_branch_that_moved_before_the_delete_is_kept() {
    bounded(15, async {
        let (fake, gh) = setup().await;
        let number = fake.seed_pr(REPO, HEAD, "main", "t", "b", "open");
        let seen = fake.branch_tip(REPO, HEAD).unwrap();
        // Someone pushes after the git engine looked and before the delete.
        let pushed = "fedcba9876543210fedcba9876543210fedcba98";
        fake.move_branch(REPO, HEAD, pushed);
        let outcome = open_or_update(
            gh.as_ref(),
            &RetryPolicy::fast(),
            &spec("t", "b"),
            common::converged(&seen),
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome.action, PrAction::Closed { .. }),
            "{outcome:?}"
        );
        assert_eq!(fake.pr(REPO, number).state, "closed");
        assert_eq!(fake.branch_tip(REPO, HEAD).as_deref(), Some(pushed));
        assert!(
            outcome
                .warnings
                .iter()
                .any(|w| w.0.contains("was not deleted") && w.0.contains(pushed)),
            "{:?}",
            outcome.warnings
        );
        assert!(
            !writes(&fake).iter().any(|w| w.starts_with("DELETE")),
            "{:?}",
            writes(&fake)
        );
        fake.assert_contract();
    })
    .await;
}
