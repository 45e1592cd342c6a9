//! The Azure DevOps provider, driven through the real `azure_devops_rust_api` client
//! against the stateful fake on 127.0.0.1: every Provider method, every error mapping,
//! rate limits through the shared retry policy, the Server collection layout, and the
//! open-or-update rules. Every test checks the requests against the Git 7.1 description.

mod common;

use std::time::{Duration, Instant};

use courier_providers::azure::{AzureConfig, AzureProvider, MAX_DESCRIPTION_CHARS};
use courier_providers::provider::{
    AutoMerge, BranchName, Decorations, NewPullRequest, PrNumber, PrState, Provider, ProviderError,
    PullRequestUpdate, RepoSlug,
};
use courier_providers::pull_request::{
    FailureOutcome, FailureReport, GitOutcome, LEFT_OPEN_MARKER, PlannedAction, PrAction, PrSpec,
    open_or_update, plan, report_failure,
};
use courier_providers::retry::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use common::azure_fake::{AzureFake, Fault, Route, ZERO};
use common::bounded;

const PAT: &str = "azdo_pat_test_not_a_secret";
const ME: &str = "6c8d5b1e-1f1a-4c39-9a57-0f1c2f7a0a01";
const ALICE: &str = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
/// A project name with a space: it must travel as one encoded path segment.
const SLUG: &str = "Design System/tokens";

fn slug() -> RepoSlug {
    RepoSlug::new(SLUG)
}

fn branch(name: &str) -> BranchName {
    BranchName::new(name)
}

fn fast(config: AzureConfig) -> AzureConfig {
    AzureConfig {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(800),
        request_timeout: Duration::from_secs(2),
        ..config
    }
}

fn provider(fake: &AzureFake) -> AzureProvider {
    fake.accept_token(PAT, ME);
    let config = AzureConfig::new(fake.organization(), SecretString::from(PAT))
        .with_base_url(&fake.base_url())
        .unwrap();
    AzureProvider::new(fast(config)).unwrap()
}

async fn fake_with_branch() -> AzureFake {
    let fake = AzureFake::start("contoso").await;
    fake.add_repo(SLUG);
    fake.add_branch(SLUG, "courier/tokens");
    fake
}

fn new_pr(draft: bool) -> NewPullRequest {
    NewPullRequest {
        title: "Design tokens 1.2".into(),
        body: "Exported by Courier".into(),
        head: branch("courier/tokens"),
        base: branch("main"),
        draft,
    }
}

#[tokio::test]
async fn every_provider_method_round_trips_through_the_sdk() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        assert_eq!(azure.kind(), "azure");

        let credentials = azure.push_credentials(&slug()).await.unwrap();
        assert_eq!(credentials.username, "courier");
        assert_eq!(credentials.token.expose_secret(), PAT);

        assert_eq!(
            azure
                .find_open(&slug(), &branch("courier/tokens"), &branch("main"))
                .await
                .unwrap(),
            None
        );
        let created = azure.create(&slug(), &new_pr(true)).await.unwrap();
        assert_eq!(created.state, PrState::Open);
        assert!(created.draft);
        assert_eq!(created.head, branch("courier/tokens"));
        assert_eq!(created.base, branch("main"));
        assert_eq!(
            created.url,
            format!(
                "{}/contoso/Design%20System/_git/tokens/pullrequest/{}",
                fake.base_url(),
                created.number
            )
        );
        let stored = fake.pr(created.number.0);
        assert_eq!(stored.source, "refs/heads/courier/tokens");
        assert_eq!(stored.target, "refs/heads/main");
        assert!(stored.draft);
        assert_eq!(stored.title, "Design tokens 1.2");
        assert_eq!(stored.description, "Exported by Courier");
        assert_eq!(stored.project, "Design System");

        let found = azure
            .find_open(&slug(), &branch("courier/tokens"), &branch("main"))
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(&created));
        // Another base is another pull request.
        fake.add_branch(SLUG, "release");
        assert_eq!(
            azure
                .find_open(&slug(), &branch("courier/tokens"), &branch("release"))
                .await
                .unwrap(),
            None
        );

        let updated = azure
            .update(
                &slug(),
                created.number,
                &PullRequestUpdate {
                    title: Some("Design tokens 1.3".into()),
                    body: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.title, "Design tokens 1.3");
        assert_eq!(updated.body, "Exported by Courier");
        assert_eq!(fake.pr(created.number.0).title, "Design tokens 1.3");
        // Nothing to rewrite: read, don't write.
        let patches_before = fake
            .request_lines()
            .iter()
            .filter(|l| l.starts_with("PATCH"))
            .count();
        let same = azure
            .update(&slug(), created.number, &PullRequestUpdate::default())
            .await
            .unwrap();
        assert_eq!(same, updated);
        let patches_after = fake
            .request_lines()
            .iter()
            .filter(|l| l.starts_with("PATCH"))
            .count();
        assert_eq!(patches_before, patches_after);

        azure
            .comment(&slug(), created.number, "first <!-- courier -->")
            .await
            .unwrap();
        fake.add_system_thread(created.number.0, "Courier Bot pushed 1 commit");
        azure
            .comment(&slug(), created.number, "second")
            .await
            .unwrap();
        let comments = azure.list_comments(&slug(), created.number).await.unwrap();
        let bodies: Vec<&str> = comments.iter().map(|c| c.body.as_str()).collect();
        assert_eq!(bodies, ["first <!-- courier -->", "second"]);
        assert_ne!(comments[0].id, comments[1].id);

        azure.close(&slug(), created.number).await.unwrap();
        assert_eq!(fake.pr(created.number.0).status, "abandoned");
        assert_eq!(
            azure
                .find_open(&slug(), &branch("courier/tokens"), &branch("main"))
                .await
                .unwrap(),
            None
        );
        let closed = azure
            .find_closed_unmerged(&slug(), &branch("courier/tokens"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(closed.number, created.number);
        assert_eq!(closed.state, PrState::Closed);

        let tip = common::sha(&fake.branch_tip(SLUG, "courier/tokens").unwrap());
        azure
            .delete_branch(&slug(), &branch("courier/tokens"), &tip)
            .await
            .unwrap();
        assert!(!fake.has_branch(SLUG, "courier/tokens"));
        // Already gone is success.
        azure
            .delete_branch(&slug(), &branch("courier/tokens"), &tip)
            .await
            .unwrap();

        let lines = fake.request_lines();
        assert!(
            lines.contains(
                &"POST /contoso/Design%20System/_apis/git/repositories/tokens/pullrequests"
                    .to_owned()
            ),
            "{lines:?}"
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn closed_unmerged_is_the_newest_abandoned_one_not_a_completed_one() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        let old = fake.seed_pr(SLUG, "courier/tokens", "main", "old", "", "abandoned");
        let newer = fake.seed_pr(SLUG, "courier/tokens", "main", "newer", "", "abandoned");
        fake.seed_pr(SLUG, "courier/tokens", "main", "merged", "", "completed");
        fake.seed_pr(SLUG, "courier/other", "main", "other", "", "abandoned");
        assert!(newer > old);
        let found = azure
            .find_closed_unmerged(&slug(), &branch("courier/tokens"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.number, PrNumber(newer));
        assert_eq!(found.title, "newer");
        assert_eq!(
            azure
                .find_closed_unmerged(&slug(), &branch("courier/none"))
                .await
                .unwrap(),
            None
        );
        let completed_only = fake.seed_pr(SLUG, "courier/done", "main", "done", "", "completed");
        let pr = azure
            .find_closed_unmerged(&slug(), &branch("courier/done"))
            .await
            .unwrap();
        assert_eq!(
            pr, None,
            "completed #{completed_only} is merged, not closed"
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn decorations_apply_and_refusals_become_warnings() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        fake.add_identity(ALICE);
        let pr = azure.create(&slug(), &new_pr(false)).await.unwrap();
        let unknown = "00000000-0000-4000-8000-00000000dead";
        let warnings = azure
            .decorate(
                &slug(),
                pr.number,
                &Decorations {
                    labels: vec!["design-tokens".into(), "automated".into(), " ".into()],
                    reviewers: vec![ALICE.into(), unknown.into(), "bob@example.com".into()],
                    team_reviewers: vec!["design".into()],
                    assignees: vec!["carol".into()],
                },
            )
            .await
            .unwrap();
        let stored = fake.pr(pr.number.0);
        assert_eq!(stored.labels, ["design-tokens", "automated"]);
        assert_eq!(stored.reviewers, [ALICE]);
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 5, "{text:#?}");
        assert!(
            text[0].contains("label \" \"") && text[0].contains("TF401463"),
            "{}",
            text[0]
        );
        assert!(
            text[1].contains(unknown) && text[1].contains("could not be found"),
            "{}",
            text[1]
        );
        assert!(
            text[2].contains("bob@example.com") && text[2].contains("identity id"),
            "{}",
            text[2]
        );
        assert!(
            text[3].contains("design") && text[3].contains("team"),
            "{}",
            text[3]
        );
        assert!(
            text[4].contains("carol") && text[4].contains("no assignees"),
            "{}",
            text[4]
        );
        // Re-applying is harmless (redeliveries decorate again).
        let again = azure
            .decorate(
                &slug(),
                pr.number,
                &Decorations {
                    labels: vec!["automated".into()],
                    reviewers: vec![ALICE.into()],
                    ..Decorations::default()
                },
            )
            .await
            .unwrap();
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(fake.pr(pr.number.0).labels, ["design-tokens", "automated"]);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn auto_complete_is_set_by_the_pats_identity_or_reported_unavailable() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        let pr = azure.create(&slug(), &new_pr(false)).await.unwrap();
        assert_eq!(
            azure.enable_auto_merge(&slug(), &pr).await.unwrap(),
            AutoMerge::Enabled
        );
        assert_eq!(
            fake.pr(pr.number.0).auto_complete_set_by.as_deref(),
            Some(ME)
        );

        // A draft cannot auto-complete; the refusal is a reason, not an error.
        fake.add_branch(SLUG, "courier/draft");
        let draft = azure
            .create(
                &slug(),
                &NewPullRequest {
                    head: branch("courier/draft"),
                    ..new_pr(true)
                },
            )
            .await
            .unwrap();
        match azure.enable_auto_merge(&slug(), &draft).await.unwrap() {
            AutoMerge::Unavailable { reason } => assert!(reason.contains("draft"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // The identity is looked up once per provider.
        let lookups = fake
            .request_lines()
            .iter()
            .filter(|l| l.ends_with("/_apis/connectionData"))
            .count();
        assert_eq!(lookups, 1);

        fake.add_repo("Design System/locked");
        fake.add_branch("Design System/locked", "courier/tokens");
        fake.refuse_auto_complete(
            "Design System/locked",
            "TF401027: You need the Git 'PullRequestContribute' permission to perform this action.",
        );
        let locked = RepoSlug::new("Design System/locked");
        let pr = azure.create(&locked, &new_pr(false)).await.unwrap();
        match azure.enable_auto_merge(&locked, &pr).await.unwrap() {
            AutoMerge::Unavailable { reason } => assert!(reason.contains("TF401027"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.pr(pr.number.0).auto_complete_set_by, None);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn delete_branch_compares_names_and_maps_refusals() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        // `filter=heads/courier/tokens` also lists this sibling: it must survive.
        fake.add_branch(SLUG, "courier/tokens-2");
        let tip = fake.branch_tip(SLUG, "courier/tokens").unwrap();
        azure
            .delete_branch(&slug(), &branch("courier/tokens"), &common::sha(&tip))
            .await
            .unwrap();
        assert!(!fake.has_branch(SLUG, "courier/tokens"));
        assert!(fake.has_branch(SLUG, "courier/tokens-2"));
        let update = fake
            .requests()
            .into_iter()
            .find(|r| r.method == "POST" && r.path.ends_with("/refs"))
            .unwrap();
        let body = update.body.unwrap();
        assert_eq!(body[0]["name"], "refs/heads/courier/tokens");
        assert_eq!(body[0]["newObjectId"], ZERO);
        assert_eq!(body[0]["oldObjectId"], tip.as_str(), "the tip Courier saw");

        fake.protect_branch(SLUG, "courier/tokens-2");
        let error = azure
            .delete_branch(
                &slug(),
                &branch("courier/tokens-2"),
                &common::sha(&fake.branch_tip(SLUG, "courier/tokens-2").unwrap()),
            )
            .await
            .unwrap_err();
        match &error {
            ProviderError::Forbidden { message, .. } => {
                assert!(
                    message.contains("TF402455") && message.contains("Force push"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(fake.has_branch(SLUG, "courier/tokens-2"));

        // Someone pushed between our read and our delete.
        fake.add_branch(SLUG, "courier/race");
        let seen = common::sha(&fake.branch_tip(SLUG, "courier/race").unwrap());
        fake.enqueue_fault(
            Route::UpdateRefs,
            Fault::Respond {
                status: 200,
                headers: vec![],
                body: json!({"count": 1, "value": [{
                    "name": "refs/heads/courier/race", "success": false,
                    "updateStatus": "staleOldObjectId"
                }]}),
            },
        );
        let error = azure
            .delete_branch(&slug(), &branch("courier/race"), &seen)
            .await
            .unwrap_err();
        assert!(matches!(error, ProviderError::Conflict { .. }), "{error:?}");
        // Without a scripted answer: the branch moved after Courier saw it, and the delete
        // it sends carries the tip it saw, so Azure DevOps refuses it.
        fake.push_to(SLUG, "courier/race");
        let error = azure
            .delete_branch(&slug(), &branch("courier/race"), &seen)
            .await
            .unwrap_err();
        assert!(matches!(error, ProviderError::Conflict { .. }), "{error:?}");
        assert!(fake.has_branch(SLUG, "courier/race"));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn long_descriptions_are_cut_once_and_compare_as_sent() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        assert_eq!(azure.max_description_len(), MAX_DESCRIPTION_CHARS);
        let retry = RetryPolicy::fast();
        let long = PrSpec {
            body: "é".repeat(MAX_DESCRIPTION_CHARS * 2),
            decorations: Decorations::default(),
            ..spec()
        };
        let created = open_or_update(&azure, &retry, &long, GitOutcome::Pushed)
            .await
            .unwrap();
        let PrAction::Created { pr } = &created.action else {
            panic!("{created:?}")
        };
        let stored = fake.pr(pr.number.0).description;
        assert_eq!(stored.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(
            stored.ends_with("(description truncated to the forge's 4000-character limit)"),
            "{stored}"
        );

        // The same delivery again: what Azure holds is what Courier would send, so the
        // pull request is not rewritten.
        let before = fake.request_lines().len();
        let again = open_or_update(&azure, &retry, &long, GitOutcome::UpToDate)
            .await
            .unwrap();
        assert!(
            matches!(again.action, PrAction::Unchanged { .. }),
            "{again:?}"
        );
        let later: Vec<String> = fake.request_lines()[before..].to_vec();
        assert!(
            later.iter().all(|l| !l.starts_with("PATCH")),
            "an unchanged delivery rewrote the pull request: {later:?}"
        );
        let planned = plan(&azure, &retry, &long, GitOutcome::UpToDate)
            .await
            .unwrap();
        assert_eq!(planned.action, PlannedAction::NothingToDo);
        fake.assert_contract();
    })
    .await;
}

/// One call to `find_open` answered by `fault`.
async fn single_error(fault: Fault) -> ProviderError {
    let fake = fake_with_branch().await;
    let azure = provider(&fake);
    fake.enqueue_fault(Route::ListPullRequests, fault);
    let error = azure
        .find_open(&slug(), &branch("courier/tokens"), &branch("main"))
        .await
        .unwrap_err();
    fake.assert_contract();
    error
}

#[tokio::test]
async fn http_answers_map_to_typed_errors() {
    bounded(30, async {
        let error = single_error(Fault::status(401, "TF400813: not authorized")).await;
        match &error {
            ProviderError::Auth { message, .. } => {
                assert!(
                    message.contains("TF400813") && message.contains("expired"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Azure DevOps' way of refusing a PAT: 203 with the HTML sign-in page.
        let error = single_error(Fault::Respond {
            status: 203,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: json!("<html><title>Azure DevOps Services | Sign In</title></html>"),
        })
        .await;
        match &error {
            ProviderError::Auth { message, .. } => {
                assert!(
                    message.contains("sign-in page") && message.contains("PAT"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        let error = single_error(Fault::status(
            403,
            "TF401027: You need the Git 'GenericRead' permission to perform this action.",
        ))
        .await;
        match &error {
            ProviderError::Forbidden { message, .. } => assert!(
                message.contains("GenericRead") && message.contains("Code (Read & write)"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        let error = single_error(Fault::status(404, "TF401019: no such repository")).await;
        match &error {
            ProviderError::NotFound { what, .. } => {
                assert!(
                    what.contains("courier/tokens") && what.contains("TF401019"),
                    "{what}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            single_error(Fault::status(409, "TF400898: conflict")).await,
            ProviderError::Conflict { .. }
        ));
        for status in [400, 422] {
            match single_error(Fault::status(status, "bad search criteria")).await {
                ProviderError::Invalid { message, .. } => {
                    assert!(message.contains("bad search criteria"), "{message}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert_eq!(
            single_error(Fault::with_headers(
                429,
                "slow down",
                &[("retry-after", "17")]
            ))
            .await,
            ProviderError::RateLimited {
                provider: "azure",
                retry_after: Duration::from_secs(17)
            }
        );
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 40;
        match single_error(Fault::with_headers(
            429,
            "slow down",
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset.to_string()),
            ],
        ))
        .await
        {
            ProviderError::RateLimited { retry_after, .. } => assert!(
                (Duration::from_secs(38)..=Duration::from_secs(40)).contains(&retry_after),
                "{retry_after:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            single_error(Fault::with_headers(503, "throttled", &[("retry-after", "3")])).await,
            ProviderError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(3)
        ));
        for status in [500, 502, 503] {
            let error = single_error(Fault::status(status, "TF246017: database unavailable")).await;
            assert!(
                matches!(error, ProviderError::Transient { .. }),
                "{status}: {error:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn already_exists_is_a_conflict_from_the_fakes_own_state() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        azure.create(&slug(), &new_pr(false)).await.unwrap();
        match azure.create(&slug(), &new_pr(false)).await.unwrap_err() {
            ProviderError::Conflict { message, .. } => {
                assert!(message.contains("TF401179"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.prs().len(), 1);
        // A missing repository or branch is not a conflict.
        let error = azure
            .create(&RepoSlug::new("Design System/nope"), &new_pr(false))
            .await
            .unwrap_err();
        assert!(matches!(error, ProviderError::NotFound { .. }), "{error:?}");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_wrong_pat_is_an_auth_error_that_never_shows_the_token() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        fake.accept_token(PAT, ME);
        let wrong = "azdo_wrong_pat_value";
        let config = AzureConfig::new("contoso", SecretString::from(wrong))
            .with_base_url(&fake.base_url())
            .unwrap();
        assert!(!format!("{config:?}").contains(wrong));
        let azure = AzureProvider::new(fast(config)).unwrap();
        assert!(!format!("{azure:?}").contains(wrong));
        let error = azure
            .find_open(&slug(), &branch("courier/tokens"), &branch("main"))
            .await
            .unwrap_err();
        assert!(matches!(error, ProviderError::Auth { .. }), "{error:?}");
        assert!(!error.to_string().contains(wrong));
        assert!(!format!("{error:?}").contains(wrong));
        // Recorded requests (what a log would show) carry no Authorization header.
        assert!(fake.requests().iter().all(|r| {
            r.headers
                .iter()
                .all(|(k, v)| k != "authorization" && !v.contains(wrong))
        }));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn retry_after_is_honoured_by_the_retry_policy() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        fake.enqueue_fault(
            Route::ListPullRequests,
            Fault::with_headers(
                429,
                "TF400733: request was blocked",
                &[("retry-after", "1")],
            ),
        );
        let (repo, head, base) = (slug(), branch("courier/tokens"), branch("main"));
        let started = Instant::now();
        let found = RetryPolicy::fast()
            .run("find", || azure.find_open(&repo, &head, &base))
            .await
            .unwrap();
        let waited = started.elapsed();
        assert_eq!(found, None);
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
        assert_eq!(fake.requests().len(), 2);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        fake.enqueue_fault(Route::CreatePullRequest, Fault::status(500, "TF246017"));
        fake.enqueue_fault(Route::CreatePullRequest, Fault::status(503, "TF246017"));
        let (repo, new) = (slug(), new_pr(false));
        let pr = RetryPolicy::fast()
            .run("create", || azure.create(&repo, &new))
            .await
            .unwrap();
        assert_eq!(fake.prs().len(), 1);
        assert_eq!(fake.pr(pr.number.0).title, "Design tokens 1.2");
        assert_eq!(fake.requests().len(), 3);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_hanging_server_is_a_transient_timeout_then_retried() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        fake.enqueue_fault(Route::ListThreads, Fault::Hang);
        let pr = azure.create(&slug(), &new_pr(false)).await.unwrap();
        let started = Instant::now();
        let error = azure.list_comments(&slug(), pr.number).await.unwrap_err();
        assert!(
            matches!(error, ProviderError::Transient { .. }),
            "{error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        fake.enqueue_fault(Route::ListThreads, Fault::Hang);
        let repo = slug();
        let comments = RetryPolicy::fast()
            .run("list", || azure.list_comments(&repo, pr.number))
            .await
            .unwrap();
        assert!(comments.is_empty());
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    bounded(10, async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let config = AzureConfig::new("contoso", SecretString::from(PAT))
            .with_base_url(&format!("http://{address}"))
            .unwrap();
        let azure = AzureProvider::new(fast(config)).unwrap();
        let error = azure
            .find_open(&slug(), &branch("courier/tokens"), &branch("main"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProviderError::Transient { .. }),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn azure_devops_server_collection_urls_work_end_to_end() {
    bounded(15, async {
        let fake = AzureFake::start_server("/tfs", "DefaultCollection").await;
        fake.add_repo(SLUG);
        fake.add_branch(SLUG, "courier/tokens");
        fake.accept_token(PAT, ME);
        let config =
            AzureConfig::server_collection(&fake.collection_url(), SecretString::from(PAT))
                .unwrap();
        assert_eq!(config.organization, "DefaultCollection");
        let azure = AzureProvider::new(fast(config)).unwrap();
        let pr = azure.create(&slug(), &new_pr(false)).await.unwrap();
        assert!(
            pr.url.starts_with(&format!(
                "{}/DefaultCollection/Design%20System/_git/tokens/pullrequest/",
                fake.base_url()
            )),
            "{}",
            pr.url
        );
        assert_eq!(
            azure.enable_auto_merge(&slug(), &pr).await.unwrap(),
            AutoMerge::Enabled
        );
        let tip = common::sha(&fake.branch_tip(SLUG, "courier/tokens").unwrap());
        azure
            .delete_branch(&slug(), &branch("courier/tokens"), &tip)
            .await
            .unwrap();
        let lines = fake.request_lines();
        assert!(
            lines.iter().all(|l| l.contains(" /tfs/DefaultCollection/")),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"GET /tfs/DefaultCollection/_apis/connectionData".to_owned()),
            "{lines:?}"
        );
        fake.assert_contract();
    })
    .await;
}

fn spec() -> PrSpec {
    PrSpec {
        repo: slug(),
        head: branch("courier/tokens"),
        base: branch("main"),
        title: "Design tokens 1.2".into(),
        body: "Export summary".into(),
        draft: false,
        decorations: Decorations {
            labels: vec!["design-tokens".into()],
            reviewers: vec![ALICE.into()],
            ..Decorations::default()
        },
        update_description: true,
        delete_branch_on_converge: true,
        auto_merge: false,
        redecorate: false,
    }
}

#[tokio::test]
async fn open_or_update_creates_updates_and_closes_on_azure() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        fake.add_identity(ALICE);
        let azure = provider(&fake);
        let retry = RetryPolicy::fast();

        let created = open_or_update(&azure, &retry, &spec(), GitOutcome::Pushed)
            .await
            .unwrap();
        let PrAction::Created { pr } = &created.action else {
            panic!("{created:?}")
        };
        let stored = fake.pr(pr.number.0);
        assert_eq!(stored.labels, ["design-tokens"]);
        assert_eq!(stored.reviewers, [ALICE]);
        assert!(created.warnings.is_empty(), "{:?}", created.warnings);
        // A first delivery costs five calls: two look-ups, the create, one per decoration.
        let repo = "/contoso/Design%20System/_apis/git/repositories/tokens";
        let number = pr.number;
        assert_eq!(
            fake.request_lines(),
            [
                format!("GET {repo}/pullrequests"),
                format!("GET {repo}/pullrequests"),
                format!("POST {repo}/pullrequests"),
                format!("POST {repo}/pullRequests/{number}/labels"),
                format!("PUT {repo}/pullRequests/{number}/reviewers/{ALICE}"),
            ]
        );

        let second = PrSpec {
            title: "Design tokens 1.3".into(),
            body: "New summary".into(),
            ..spec()
        };
        let updated = open_or_update(&azure, &retry, &second, GitOutcome::Pushed)
            .await
            .unwrap();
        assert!(matches!(&updated.action, PrAction::Updated { pr: p } if p.number == pr.number));
        assert_eq!(fake.pr(pr.number.0).title, "Design tokens 1.3");
        assert_eq!(fake.pr(pr.number.0).description, "New summary");

        // Human edits kept when the target says so.
        let keep = PrSpec {
            title: "Design tokens 1.4".into(),
            update_description: false,
            ..spec()
        };
        open_or_update(&azure, &retry, &keep, GitOutcome::Pushed)
            .await
            .unwrap();
        assert_eq!(fake.pr(pr.number.0).title, "Design tokens 1.3");

        let closed = open_or_update(
            &azure,
            &retry,
            &second,
            common::converged(&fake.branch_tip(SLUG, "courier/tokens").unwrap()),
        )
        .await
        .unwrap();
        assert!(matches!(&closed.action, PrAction::Closed { pr: p } if p.number == pr.number));
        let stored = fake.pr(pr.number.0);
        assert_eq!(stored.status, "abandoned");
        assert!(
            stored.threads.last().unwrap().comments[0]
                .1
                .contains("identical"),
            "{stored:?}"
        );
        assert!(!fake.has_branch(SLUG, "courier/tokens"));

        // The next export differs again: a new pull request mentions the abandoned one.
        fake.add_branch(SLUG, "courier/tokens");
        let again = open_or_update(&azure, &retry, &spec(), GitOutcome::Pushed)
            .await
            .unwrap();
        let PrAction::Created { pr: new } = &again.action else {
            panic!("{again:?}")
        };
        assert_eq!(again.supersedes, Some(pr.number));
        assert!(
            fake.pr(new.number.0)
                .description
                .contains(&format!("#{}", pr.number))
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn open_or_update_resolves_a_creation_race_and_warns_on_auto_complete() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        let retry = RetryPolicy::fast();
        // Another delivery wins the race: our lookup sees nothing, our create gets 409.
        fake.enqueue_fault(
            Route::ListPullRequests,
            Fault::Respond {
                status: 200,
                headers: vec![],
                body: json!({"count": 0, "value": []}),
            },
        );
        let theirs = fake.seed_pr(SLUG, "courier/tokens", "main", "theirs", "", "active");
        fake.refuse_auto_complete(
            SLUG,
            "TF401027: You need the Git 'PullRequestContribute' permission.",
        );
        let outcome = open_or_update(
            &azure,
            &retry,
            &PrSpec {
                auto_merge: true,
                ..spec()
            },
            GitOutcome::Pushed,
        )
        .await
        .unwrap();
        assert!(
            matches!(&outcome.action, PrAction::Updated { pr } if pr.number == PrNumber(theirs)),
            "{outcome:?}"
        );
        assert_eq!(fake.prs().len(), 1);
        assert_eq!(fake.pr(theirs).title, "Design tokens 1.2");
        assert!(matches!(
            outcome.auto_merge,
            Some(AutoMerge::Unavailable { .. })
        ));
        assert!(
            outcome
                .warnings
                .iter()
                .any(|w| w.0.contains("auto-merge") && w.0.contains("TF401027")),
            "{:?}",
            outcome.warnings
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn dry_run_plans_from_reads_only() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        let retry = RetryPolicy::fast();
        let old = fake.seed_pr(SLUG, "courier/tokens", "main", "old", "", "abandoned");
        let planned = plan(&azure, &retry, &spec(), GitOutcome::Pushed)
            .await
            .unwrap();
        assert_eq!(
            planned.action,
            PlannedAction::CreatePr {
                supersedes: Some(PrNumber(old))
            }
        );
        let open = fake.seed_pr(SLUG, "courier/tokens", "main", "open", "old text", "active");
        let planned = plan(&azure, &retry, &spec(), GitOutcome::Pushed)
            .await
            .unwrap();
        assert_eq!(
            planned.action,
            PlannedAction::UpdatePr {
                number: PrNumber(open),
                rewrites_text: true
            }
        );
        let planned = plan(
            &azure,
            &retry,
            &spec(),
            common::converged(&fake.branch_tip(SLUG, "courier/tokens").unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(
            planned.action,
            PlannedAction::ClosePr {
                number: PrNumber(open),
                deletes_branch: true
            }
        );
        let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
        assert!(methods.iter().all(|m| m == "GET"), "{methods:?}");
        assert_eq!(fake.pr(open).title, "open");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_failed_export_is_reported_once_per_job_on_the_open_pull_request() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        let retry = RetryPolicy::fast();
        let failure = FailureReport {
            repo: slug(),
            head: branch("courier/tokens"),
            base: branch("main"),
            job_id: "job-42".into(),
            message: "Exporter crashed".into(),
            last_log_lines: vec!["step 3/4".into(), "TypeError: x is undefined".into()],
        };
        assert_eq!(
            report_failure(&azure, &retry, &failure).await.unwrap(),
            FailureOutcome::NoOpenPr
        );
        let open = fake.seed_pr(SLUG, "courier/tokens", "main", "tokens", "", "active");
        // Azure DevOps' own thread on the pull request must not confuse the dedup.
        fake.add_system_thread(open, "Courier Bot pushed 1 commit");
        assert_eq!(
            report_failure(&azure, &retry, &failure).await.unwrap(),
            FailureOutcome::Commented { pr: PrNumber(open) }
        );
        assert_eq!(
            report_failure(&azure, &retry, &failure).await.unwrap(),
            FailureOutcome::AlreadyReported { pr: PrNumber(open) }
        );
        let threads = fake.pr(open).threads;
        assert_eq!(threads.len(), 2);
        let text = &threads[1].comments[0].1;
        assert!(
            text.contains("job-42") && text.contains("TypeError"),
            "{text}"
        );
        assert_eq!(threads[1].comments[0].2, "text");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn the_checker_catches_a_request_the_git_description_lacks() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        fake.accept_token(PAT, ME);
        // Not through the provider: requests Courier must never send.
        let origin = fake.base_url();
        let address = origin.trim_start_matches("http://");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for request in [
            "GET /contoso/p/_apis/git/repositories/r/pullrequests?api-version=7.1&searchCriteria.colour=red HTTP/1.1\r\n",
            "GET /contoso/p/_apis/git/repositories/r/pullrequests?api-version=7.1-preview HTTP/1.1\r\n",
            "DELETE /contoso/p/_apis/git/repositories/r/pullrequests/1?api-version=7.1 HTTP/1.1\r\n",
        ] {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream
                .write_all(format!("{request}host: x\r\nconnection: close\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.unwrap();
        }
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.assert_contract()));
        let message = *outcome.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("`searchCriteria.colour` is not in the description"), "{message}");
        assert!(message.contains("want [\"7.1\"]"), "{message}");
        assert!(message.contains("no operation DELETE"), "{message}");
        assert!(message.contains("no Authorization header"), "{message}");
    })
    .await;
}

fn recorded(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> common::contract::RecordedRequest {
    common::contract::RecordedRequest {
        method: method.into(),
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        headers: vec![],
        body,
    }
}

#[test]
fn the_git_description_accepts_what_courier_sends_and_flags_departures() {
    let contract = common::contract::Contract::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/contracts/azure-git.json"),
    );
    assert_eq!(contract.operation_count(), 16);
    let base = "/contoso/Design%20System/_apis/git/repositories/tokens";
    let v = [("api-version", "7.1")];
    let good = [
        recorded(
            "PATCH",
            &format!("{base}/pullrequests/7"),
            &v,
            Some(json!({"status": "abandoned"})),
        ),
        recorded(
            "PATCH",
            &format!("{base}/pullrequests/7"),
            &v,
            Some(json!({"autoCompleteSetBy": {"id": ME}})),
        ),
        recorded(
            "POST",
            &format!("{base}/refs"),
            &v,
            Some(json!([{"name": "refs/heads/x", "oldObjectId": "a", "newObjectId": ZERO}])),
        ),
    ];
    for r in &good {
        assert_eq!(contract.check(r), vec![], "{r}");
    }
    let bad = [
        (
            recorded(
                "PATCH",
                &format!("{base}/pullrequests/7"),
                &v,
                Some(json!({"status": "closed"})),
            ),
            "not one of",
        ),
        (
            recorded(
                "PATCH",
                &format!("{base}/pullrequests/seven"),
                &v,
                Some(json!({})),
            ),
            "not a valid integer",
        ),
        (
            recorded("GET", &format!("{base}/pullrequests"), &[], None),
            "`api-version` missing",
        ),
        (
            recorded(
                "POST",
                &format!("{base}/refs"),
                &v,
                Some(json!({"name": "refs/heads/x"})),
            ),
            "expected array",
        ),
        (
            recorded("POST", &format!("{base}/pullRequests/7/threads"), &v, None),
            "requires a JSON body",
        ),
        // The labels route is `pullRequests`; the PR routes are `pullrequests`.
        (
            recorded(
                "POST",
                &format!("{base}/pullrequests/7/labels"),
                &v,
                Some(json!({"name": "a"})),
            ),
            "no operation",
        ),
    ];
    for (r, expected) in &bad {
        let violations = contract.check(r);
        assert!(
            violations.iter().any(|x| x.problem.contains(expected)),
            "{r}: expected a violation mentioning {expected:?}, got {violations:?}"
        );
    }
}

#[tokio::test]
async fn a_converged_branch_with_someone_elses_commit_stays_active_with_one_comment() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        let retry = RetryPolicy::fast();
        let id = fake.seed_pr(SLUG, "courier/tokens", "main", "t", "b", "active");
        let tip = fake.branch_tip(SLUG, "courier/tokens").unwrap();
        for _ in 0..2 {
            let outcome = open_or_update(
                &azure,
                &retry,
                &spec(),
                common::converged_over_foreign(&tip),
            )
            .await
            .unwrap();
            assert!(
                matches!(&outcome.action, PrAction::LeftOpen { pr, .. } if pr.number == PrNumber(id)),
                "{outcome:?}"
            );
        }
        let stored = fake.pr(id);
        assert_eq!(stored.status, "active");
        assert_eq!(
            fake.branch_tip(SLUG, "courier/tokens").as_deref(),
            Some(tip.as_str())
        );
        let comments: Vec<&str> = stored
            .threads
            .iter()
            .flat_map(|t| t.comments.iter().map(|c| c.1.as_str()))
            .collect();
        assert_eq!(comments.len(), 1, "{comments:?}");
        assert!(comments[0].contains(LEFT_OPEN_MARKER));
        assert!(
            !fake
                .request_lines()
                .iter()
                .any(|l| l.starts_with("PATCH") || l.ends_with("/refs") && l.starts_with("POST")),
            "{:?}",
            fake.request_lines()
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_converged_branch_is_deleted_only_at_the_tip_courier_saw() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let azure = provider(&fake);
        let id = fake.seed_pr(SLUG, "courier/tokens", "main", "t", "b", "active");
        let seen = fake.branch_tip(SLUG, "courier/tokens").unwrap();
        fake.push_to(SLUG, "courier/tokens");
        let outcome = open_or_update(
            &azure,
            &RetryPolicy::fast(),
            &spec(),
            common::converged(&seen),
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome.action, PrAction::Closed { .. }),
            "{outcome:?}"
        );
        assert_eq!(fake.pr(id).status, "abandoned");
        assert!(fake.has_branch(SLUG, "courier/tokens"));
        assert!(
            outcome
                .warnings
                .iter()
                .any(|w| w.0.contains("was not deleted")),
            "{:?}",
            outcome.warnings
        );
        fake.assert_contract();
    })
    .await;
}
