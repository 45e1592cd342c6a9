//! Open-or-update and failure reports (`pull_request.rs`, written over `&dyn Provider`),
//! driven through the GitLab provider against the stateful GitLab fake: the rules
//! on merge requests.

mod common;

use std::time::Duration;

use courier_providers::gitlab::{GitLabConfig, GitLabProvider};
use courier_providers::provider::{
    AutoMerge, BranchName, Decorations, PrNumber, Provider, ProviderError, RepoSlug,
};
use courier_providers::pull_request::{
    FailureOutcome, FailureReport, GitOutcome, LEFT_OPEN_MARKER, PlannedAction, PrAction, PrSpec,
    open_or_update, plan, report_failure, supersedes_line,
};
use courier_providers::retry::RetryPolicy;
use secrecy::SecretString;
use serde_json::json;

use common::bounded;
use common::gitlab_fake::{Fault, GitLabFake};

const PROJECT: &str = "acme/design/web";
const HEAD: &str = "courier/tokens";
const TOKEN: &str = "glpat-test-token-not-a-secret";
const MRS: &str = "/api/v4/projects/{id}/merge_requests";
const MR: &str = "/api/v4/projects/{id}/merge_requests/{merge_request_iid}";

fn spec(title: &str, body: &str) -> PrSpec {
    PrSpec {
        repo: RepoSlug::new(PROJECT),
        head: BranchName::new(HEAD),
        base: BranchName::new("main"),
        title: title.into(),
        body: body.into(),
        draft: false,
        decorations: Decorations {
            labels: vec!["design-tokens".into()],
            reviewers: vec!["alice".into()],
            team_reviewers: vec![],
            assignees: vec!["alice".into()],
        },
        update_description: true,
        delete_branch_on_converge: true,
        auto_merge: false,
        redecorate: false,
    }
}

async fn setup() -> (GitLabFake, Box<dyn Provider>, u64) {
    let fake = GitLabFake::start().await;
    fake.add_project(PROJECT);
    fake.add_branch(PROJECT, HEAD);
    let alice = fake.add_user("alice", &[PROJECT]);
    fake.accept_token(TOKEN);
    let mut config = GitLabConfig::new(&fake.base_url(), SecretString::from(TOKEN)).unwrap();
    config.read_timeout = Duration::from_millis(800);
    config.request_timeout = Duration::from_secs(2);
    let provider: Box<dyn Provider> = Box::new(GitLabProvider::new(config).unwrap());
    (fake, provider, alice)
}

fn writes(fake: &GitLabFake) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn creates_decorates_then_updates_then_leaves_alone() {
    bounded(20, async {
        let (fake, gl, alice) = setup().await;
        let retry = RetryPolicy::fast();
        let mut first_spec = spec("Tokens v1", "one");
        first_spec.draft = true;
        let first = open_or_update(gl.as_ref(), &retry, &first_spec, GitOutcome::Pushed)
            .await
            .unwrap();
        let PrAction::Created { pr } = &first.action else {
            panic!("{first:?}");
        };
        assert!(first.warnings.is_empty(), "{:?}", first.warnings);
        let mr = fake.mr(PROJECT, pr.number.0);
        assert_eq!(
            (mr.title.as_str(), mr.description.as_str()),
            ("Draft: Tokens v1", "one")
        );
        assert_eq!(mr.labels, ["design-tokens"]);
        assert_eq!(
            (mr.reviewer_ids.as_slice(), mr.assignee_ids.as_slice()),
            ([alice].as_slice(), [alice].as_slice())
        );
        // Reviewer and assignee are one person: looked up once.
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| r.path == "/api/v4/users")
            .count();
        assert_eq!(lookups, 1);

        // The same export again: the draft's title compares equal, nothing is rewritten.
        let again = open_or_update(gl.as_ref(), &retry, &first_spec, GitOutcome::UpToDate)
            .await
            .unwrap();
        assert!(
            matches!(again.action, PrAction::Unchanged { .. }),
            "{again:?}"
        );

        let writes_before = writes(&fake).len();
        let second = open_or_update(
            gl.as_ref(),
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
        assert_eq!(fake.mrs(PROJECT).len(), 1, "no second merge request");
        // Still a draft: the prefix is kept by the provider even though this spec says
        // draft: false (draft is only chosen at creation).
        assert_eq!(fake.mr(PROJECT, pr.number.0).title, "Draft: Tokens v2");
        assert_eq!(fake.mr(PROJECT, pr.number.0).description, "two");
        assert_eq!(writes(&fake).len(), writes_before + 1);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn update_description_false_keeps_human_edits() {
    bounded(20, async {
        let (fake, gl, _) = setup().await;
        let iid = fake.seed_mr(
            PROJECT,
            HEAD,
            "main",
            "A person's title",
            "edited",
            "opened",
        );
        let mut keep = spec("Tokens v3", "three");
        keep.update_description = false;
        let outcome = open_or_update(gl.as_ref(), &RetryPolicy::fast(), &keep, GitOutcome::Pushed)
            .await
            .unwrap();
        assert!(
            matches!(outcome.action, PrAction::Updated { .. }),
            "{outcome:?}"
        );
        let mr = fake.mr(PROJECT, iid);
        assert_eq!(
            (mr.title.as_str(), mr.description.as_str()),
            ("A person's title", "edited")
        );
        assert!(writes(&fake).is_empty(), "{:?}", writes(&fake));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_creation_race_answered_409_is_resolved_by_updating_the_winner() {
    bounded(20, async {
        let (fake, gl, _) = setup().await;
        // Another delivery opened it between our look-up (stale: empty) and our create.
        let winner = fake.seed_mr(PROJECT, HEAD, "main", "winner", "theirs", "opened");
        fake.enqueue_fault(
            "GET",
            MRS,
            Fault::Respond {
                status: 200,
                headers: vec![],
                body: json!([]),
            },
        );
        let outcome = open_or_update(
            gl.as_ref(),
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
        assert_eq!(fake.mrs(PROJECT).len(), 1, "no second merge request");
        assert_eq!(fake.mr(PROJECT, winner).description, "ours");
        let creates = writes(&fake)
            .iter()
            .filter(|w| *w == "POST /api/v4/projects/acme%2Fdesign%2Fweb/merge_requests")
            .count();
        assert_eq!(
            creates, 1,
            "answered 409 by the fake's own state, not retried"
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_merge_request_closed_without_merge_is_superseded() {
    bounded(20, async {
        let (fake, gl, _) = setup().await;
        let old = fake.seed_mr(PROJECT, HEAD, "main", "old", "old", "closed");
        fake.seed_mr(PROJECT, HEAD, "main", "merged long ago", "", "merged");
        let outcome = open_or_update(
            gl.as_ref(),
            &RetryPolicy::fast(),
            &spec("new", "fresh"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        let PrAction::Created { pr } = &outcome.action else {
            panic!("{outcome:?}");
        };
        assert_eq!(outcome.supersedes, Some(PrNumber(old)));
        let description = fake.mr(PROJECT, pr.number.0).description;
        assert!(
            description.starts_with(&supersedes_line(PrNumber(old))),
            "{description}"
        );
        assert!(description.ends_with("fresh"), "{description}");
        assert_eq!(fake.mr(PROJECT, old).state, "closed");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn converged_exports_close_with_a_note_and_delete_the_branch() {
    bounded(20, async {
        let (fake, gl, _) = setup().await;
        let iid = fake.seed_mr(PROJECT, HEAD, "main", "t", "b", "opened");
        let outcome = open_or_update(
            gl.as_ref(),
            &RetryPolicy::fast(),
            &spec("t", "b"),
            common::converged(&fake.branch_tip(PROJECT, HEAD).unwrap()),
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome.action, PrAction::Closed { .. }),
            "{outcome:?}"
        );
        let mr = fake.mr(PROJECT, iid);
        assert_eq!(mr.state, "closed");
        let notes: Vec<&str> = mr
            .notes
            .iter()
            .filter(|n| !n.2)
            .map(|n| n.1.as_str())
            .collect();
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("identical to what `main` already contains"),
            "{}",
            notes[0]
        );
        assert!(!fake.has_branch(PROJECT, HEAD));
        assert_eq!(
            writes(&fake),
            [
                "POST /api/v4/projects/acme%2Fdesign%2Fweb/merge_requests/1/notes",
                "PUT /api/v4/projects/acme%2Fdesign%2Fweb/merge_requests/1",
                "DELETE /api/v4/projects/acme%2Fdesign%2Fweb/repository/branches/courier%2Ftokens",
            ]
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn auto_merge_refusal_is_a_warning_and_allowed_is_enabled() {
    bounded(20, async {
        let (fake, gl, _) = setup().await;
        let mut wants = spec("t", "b");
        wants.auto_merge = true;
        fake.set_auto_merge_allowed(PROJECT, false);
        let refused = open_or_update(
            gl.as_ref(),
            &RetryPolicy::fast(),
            &wants,
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert!(
            matches!(refused.action, PrAction::Created { .. }),
            "{refused:?}"
        );
        assert!(
            matches!(refused.auto_merge, Some(AutoMerge::Unavailable { .. })),
            "{refused:?}"
        );
        assert_eq!(refused.warnings.len(), 1, "{:?}", refused.warnings);
        assert!(refused.warnings[0].0.contains("auto-merge not enabled"));

        fake.set_auto_merge_allowed(PROJECT, true);
        let enabled = open_or_update(
            gl.as_ref(),
            &RetryPolicy::fast(),
            &wants,
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert_eq!(enabled.auto_merge, Some(AutoMerge::Enabled));
        assert!(fake.mr(PROJECT, 1).auto_merge);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn transient_failures_mid_flow_are_retried_and_permanent_ones_stop_it() {
    bounded(20, async {
        let (fake, gl, _) = setup().await;
        fake.enqueue_fault("POST", MRS, Fault::status(502, "502 Bad Gateway"));
        fake.enqueue_fault(
            "PUT",
            MR,
            Fault::with_headers(429, "Retry later", &[("retry-after", "1")]),
        );
        let outcome = open_or_update(
            gl.as_ref(),
            &RetryPolicy::fast(),
            &spec("t", "b"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome.action, PrAction::Created { .. }),
            "{outcome:?}"
        );
        assert_eq!(fake.mrs(PROJECT).len(), 1);
        assert_eq!(fake.mr(PROJECT, 1).labels, ["design-tokens"]);

        fake.enqueue_fault(
            "PUT",
            MR,
            Fault::Respond {
                status: 403,
                headers: vec![],
                body: json!({ "error": "insufficient_scope", "scope": "api" }),
            },
        );
        let error = open_or_update(
            gl.as_ref(),
            &RetryPolicy::fast(),
            &spec("t2", "b2"),
            GitOutcome::Pushed,
        )
        .await
        .unwrap_err();
        let ProviderError::Forbidden { message, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(message.contains("`api`"), "{message}");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn failed_exports_are_noted_once_per_job() {
    bounded(20, async {
        let (fake, gl, _) = setup().await;
        let retry = RetryPolicy::fast();
        let failure = |job: &str| FailureReport {
            repo: RepoSlug::new(PROJECT),
            head: BranchName::new(HEAD),
            base: BranchName::new("main"),
            job_id: job.into(),
            message: "exporter crashed".into(),
            last_log_lines: vec!["step 3: resolving tokens".into()],
        };
        assert_eq!(
            report_failure(gl.as_ref(), &retry, &failure("job-1"))
                .await
                .unwrap(),
            FailureOutcome::NoOpenPr
        );
        let iid = fake.seed_mr(PROJECT, HEAD, "main", "t", "b", "opened");
        let pr = PrNumber(iid);
        // GitLab's own system notes sit between ours; they are not read as comments.
        fake.add_note(PROJECT, iid, "added 1 commit", true);
        assert_eq!(
            report_failure(gl.as_ref(), &retry, &failure("job-1"))
                .await
                .unwrap(),
            FailureOutcome::Commented { pr }
        );
        assert_eq!(
            report_failure(gl.as_ref(), &retry, &failure("job-1"))
                .await
                .unwrap(),
            FailureOutcome::AlreadyReported { pr }
        );
        assert_eq!(
            report_failure(gl.as_ref(), &retry, &failure("job-2"))
                .await
                .unwrap(),
            FailureOutcome::Commented { pr }
        );
        let ours: Vec<String> = fake
            .mr(PROJECT, iid)
            .notes
            .into_iter()
            .filter(|n| !n.2)
            .map(|n| n.1)
            .collect();
        assert_eq!(ours.len(), 2);
        assert!(
            ours[0].contains("job-1") && ours[0].contains("step 3"),
            "{}",
            ours[0]
        );
        assert!(
            writes(&fake).iter().all(|w| w.ends_with("/notes")),
            "{:?}",
            writes(&fake)
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn dry_run_plans_from_read_only_calls() {
    bounded(20, async {
        let (fake, gl, _) = setup().await;
        let retry = RetryPolicy::fast();
        let old = fake.seed_mr(PROJECT, HEAD, "main", "old", "old", "closed");
        let create = plan(gl.as_ref(), &retry, &spec("T", "B"), GitOutcome::Pushed)
            .await
            .unwrap();
        assert_eq!(
            create.action,
            PlannedAction::CreatePr {
                supersedes: Some(PrNumber(old))
            }
        );
        let open = fake.seed_mr(PROJECT, HEAD, "main", "Draft: T", "B", "opened");
        // A draft with the same text: a redelivery changes nothing.
        let same = plan(gl.as_ref(), &retry, &spec("T", "B"), GitOutcome::UpToDate)
            .await
            .unwrap();
        assert_eq!(same.action, PlannedAction::NothingToDo);
        let update = plan(gl.as_ref(), &retry, &spec("T2", "B"), GitOutcome::Pushed)
            .await
            .unwrap();
        assert_eq!(
            update.action,
            PlannedAction::UpdatePr {
                number: PrNumber(open),
                rewrites_text: true
            }
        );
        let close = plan(
            gl.as_ref(),
            &retry,
            &spec("T", "B"),
            common::converged(&fake.branch_tip(PROJECT, HEAD).unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(
            close.action,
            PlannedAction::ClosePr {
                number: PrNumber(open),
                deletes_branch: true
            }
        );
        assert!(
            writes(&fake).is_empty(),
            "dry-run wrote: {:?}",
            writes(&fake)
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_converged_branch_with_someone_elses_commit_stays_open_with_one_note() {
    bounded(15, async {
        let (fake, gl, _) = setup().await;
        let iid = fake.seed_mr(PROJECT, HEAD, "main", "t", "b", "opened");
        let tip = fake.branch_tip(PROJECT, HEAD).unwrap();
        for _ in 0..2 {
            let outcome = open_or_update(
                gl.as_ref(),
                &RetryPolicy::fast(),
                &spec("t", "b"),
                common::converged_over_foreign(&tip),
            )
            .await
            .unwrap();
            assert!(
                matches!(&outcome.action, PrAction::LeftOpen { pr, .. } if pr.number == PrNumber(iid)),
                "{outcome:?}"
            );
            assert!(!outcome.warnings.is_empty());
        }
        let mr = fake.mr(PROJECT, iid);
        assert_eq!(mr.state, "opened");
        assert!(fake.has_branch(PROJECT, HEAD));
        let notes: Vec<&str> = mr
            .notes
            .iter()
            .filter(|n| !n.2)
            .map(|n| n.1.as_str())
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains(LEFT_OPEN_MARKER) && notes[0].contains("did not make"));
        assert!(
            !writes(&fake)
                .iter()
                .any(|w| w.starts_with("DELETE") || w.starts_with("PUT")),
            "{:?}",
            writes(&fake)
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_converged_branch_that_moved_before_the_delete_is_kept() {
    bounded(15, async {
        let (fake, gl, _) = setup().await;
        let iid = fake.seed_mr(PROJECT, HEAD, "main", "t", "b", "opened");
        let seen = fake.branch_tip(PROJECT, HEAD).unwrap();
        let pushed = "fedcba9876543210fedcba9876543210fedcba98";
        fake.move_branch(PROJECT, HEAD, pushed);
        let outcome = open_or_update(
            gl.as_ref(),
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
        assert_eq!(fake.mr(PROJECT, iid).state, "closed");
        assert_eq!(fake.branch_tip(PROJECT, HEAD).as_deref(), Some(pushed));
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
