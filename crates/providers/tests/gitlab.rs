//! The GitLab provider (the `gitlab` crate's endpoints, sent by the provider's client)
//! against the stateful fake: every `Provider` method, nested-group project paths, drafts,
//! decorations, notes, auto-merge, the error mapping, rate limits through the retry policy,
//! timeouts, an instance under a path, and the contract check (including proof that it
//! catches bad requests).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use courier_providers::gitlab::{GitLabConfig, GitLabProvider, GitLabSetupError};
use courier_providers::provider::{
    AutoMerge, BranchName, Decorations, NewPullRequest, PrNumber, PrState, Provider, ProviderError,
    PullRequestUpdate, RepoSlug,
};
use courier_providers::retry::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use common::bounded;
use common::gitlab_fake::{Fault, GitLabFake, gitlab_description, typed_body};

const PROJECT: &str = "acme/design/web";
const TOKEN: &str = "glpat-test-token-not-a-secret";
const HEAD: &str = "courier/tokens";
const MRS: &str = "/api/v4/projects/{id}/merge_requests";
const MR: &str = "/api/v4/projects/{id}/merge_requests/{merge_request_iid}";
const MERGE: &str = "/api/v4/projects/{id}/merge_requests/{merge_request_iid}/merge";
const NOTES: &str = "/api/v4/projects/{id}/merge_requests/{noteable_id}/notes";
const BRANCH: &str = "/api/v4/projects/{id}/repository/branches/{branch}";

fn project() -> RepoSlug {
    RepoSlug::new(PROJECT)
}

fn branch(name: &str) -> BranchName {
    BranchName::new(name)
}

fn config(fake: &GitLabFake) -> GitLabConfig {
    let mut config = GitLabConfig::new(&fake.base_url(), SecretString::from(TOKEN)).unwrap();
    config.connect_timeout = Duration::from_secs(2);
    config.read_timeout = Duration::from_millis(800);
    config.request_timeout = Duration::from_secs(2);
    config
}

fn gitlab(fake: &GitLabFake) -> GitLabProvider {
    fake.accept_token(TOKEN);
    GitLabProvider::new(config(fake)).unwrap()
}

async fn fake_with_branch() -> GitLabFake {
    let fake = GitLabFake::start().await;
    fake.add_project(PROJECT);
    fake.add_branch(PROJECT, HEAD);
    fake
}

fn new_mr(title: &str, draft: bool) -> NewPullRequest {
    NewPullRequest {
        title: title.into(),
        body: "Exported tokens.".into(),
        head: branch(HEAD),
        base: branch("main"),
        draft,
    }
}

#[tokio::test]
async fn every_provider_method_round_trips_through_the_gitlab_endpoints() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        let (head, main) = (branch(HEAD), branch("main"));
        assert_eq!(gl.kind(), "gitlab");
        assert_eq!(gl.find_open(&project(), &head, &main).await.unwrap(), None);

        let created = gl
            .create(&project(), &new_mr("Tokens 1.0", false))
            .await
            .unwrap();
        assert_eq!(created.number, PrNumber(1));
        assert_eq!(created.state, PrState::Open);
        assert_eq!(
            (created.head.as_str(), created.base.as_str()),
            (HEAD, "main")
        );
        assert!(!created.draft);
        assert!(
            created.url.ends_with("/acme/design/web/-/merge_requests/1"),
            "{}",
            created.url
        );
        // Nested groups: the project id is the whole path, one URL-encoded segment.
        assert!(
            fake.request_lines()
                .contains(&"POST /api/v4/projects/acme%2Fdesign%2Fweb/merge_requests".to_owned()),
            "{:?}",
            fake.request_lines()
        );

        let found = gl.find_open(&project(), &head, &main).await.unwrap();
        assert_eq!(found.as_ref(), Some(&created));
        let list = fake
            .requests()
            .into_iter()
            .find(|r| r.method == "GET")
            .unwrap();
        for pair in [
            ("source_branch", HEAD),
            ("target_branch", "main"),
            ("state", "opened"),
        ] {
            assert!(
                list.query.contains(&(pair.0.to_owned(), pair.1.to_owned())),
                "{list}"
            );
        }

        let updated = gl
            .update(
                &project(),
                created.number,
                &PullRequestUpdate {
                    title: Some("Tokens 1.1".into()),
                    body: Some("New body".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (updated.title.as_str(), updated.body.as_str()),
            ("Tokens 1.1", "New body")
        );
        let unchanged = gl
            .update(&project(), created.number, &PullRequestUpdate::default())
            .await
            .unwrap();
        assert_eq!(unchanged, updated);

        gl.comment(&project(), created.number, "<!-- courier:x --> hello")
            .await
            .unwrap();
        let comments = gl.list_comments(&project(), created.number).await.unwrap();
        assert_eq!(comments.len(), 1);
        assert_eq!(comments[0].body, "<!-- courier:x --> hello");

        let credentials = gl.push_credentials(&project()).await.unwrap();
        assert_eq!(credentials.username, "oauth2");
        assert_eq!(credentials.token.expose_secret(), TOKEN);
        assert!(!format!("{credentials:?}").contains(TOKEN));

        gl.close(&project(), created.number).await.unwrap();
        assert_eq!(fake.mr(PROJECT, 1).state, "closed");
        assert_eq!(gl.find_open(&project(), &head, &main).await.unwrap(), None);
        let closed = gl
            .find_closed_unmerged(&project(), &head)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (closed.number, closed.state),
            (PrNumber(1), PrState::Closed)
        );

        gl.delete_branch(&project(), &head, &common::any_sha())
            .await
            .unwrap();
        assert!(
            !fake.has_branch(PROJECT, HEAD),
            "{:?}",
            fake.request_lines()
        );
        assert!(
            fake.request_lines().contains(
                &"DELETE /api/v4/projects/acme%2Fdesign%2Fweb/repository/branches/courier%2Ftokens"
                    .to_owned()
            ),
            "{:?}",
            fake.request_lines()
        );
        // Already gone (GitLab: 404 Branch Not Found) is what was asked.
        gl.delete_branch(&project(), &head, &common::any_sha())
            .await
            .unwrap();

        // The token travels only in PRIVATE-TOKEN, which the fake does not record.
        for request in fake.requests() {
            let shown = format!("{request:?}");
            assert!(!shown.contains(TOKEN), "{shown}");
            assert!(request.query.iter().all(|(k, _)| k != "private_token"));
        }
        assert!(!format!("{gl:?}").contains(TOKEN));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn drafts_use_the_title_prefix_and_updates_keep_it() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        let created = gl
            .create(&project(), &new_mr("Tokens 2.0", true))
            .await
            .unwrap();
        assert!(created.draft);
        // Normalised: the prefix is GitLab's way to say draft, not part of the title.
        assert_eq!(created.title, "Tokens 2.0");
        assert_eq!(fake.mr(PROJECT, 1).title, "Draft: Tokens 2.0");
        let create = fake
            .requests()
            .into_iter()
            .find(|r| r.method == "POST")
            .unwrap();
        let body = create.body.unwrap();
        assert_eq!(body["title"], "Draft: Tokens 2.0");
        assert!(body.get("draft").is_none(), "{body}");

        let updated = gl
            .update(
                &project(),
                created.number,
                &PullRequestUpdate {
                    title: Some("Tokens 2.1".into()),
                    body: None,
                },
            )
            .await
            .unwrap();
        assert!(updated.draft);
        assert_eq!(fake.mr(PROJECT, 1).title, "Draft: Tokens 2.1");

        // A person marked it ready: Courier's next title does not make it a draft again.
        let iid = fake.seed_mr(PROJECT, "courier/other", "main", "Ready one", "", "opened");
        let ready = gl
            .update(
                &project(),
                PrNumber(iid),
                &PullRequestUpdate {
                    title: Some("Tokens 2.2".into()),
                    body: None,
                },
            )
            .await
            .unwrap();
        assert!(!ready.draft);
        assert_eq!(fake.mr(PROJECT, iid).title, "Tokens 2.2");

        // Body-only updates need no look-up first.
        let before = fake.requests().len();
        gl.update(
            &project(),
            PrNumber(iid),
            &PullRequestUpdate {
                title: None,
                body: Some("b".into()),
            },
        )
        .await
        .unwrap();
        assert_eq!(fake.requests().len(), before + 1);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn lookups_ignore_other_targets_forks_and_merged_requests() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        fake.add_branch(PROJECT, "release");
        fake.seed_mr(PROJECT, HEAD, "release", "other target", "", "opened");
        fake.seed_fork_mr(PROJECT, HEAD, "main", "from a fork, same branch name");
        let (head, main) = (branch(HEAD), branch("main"));
        assert_eq!(gl.find_open(&project(), &head, &main).await.unwrap(), None);

        let merged = fake.seed_mr(PROJECT, HEAD, "main", "merged", "", "merged");
        let old = fake.seed_mr(PROJECT, HEAD, "main", "closed old", "", "closed");
        let newer = fake.seed_mr(PROJECT, HEAD, "main", "closed newer", "", "closed");
        let closed = gl
            .find_closed_unmerged(&project(), &head)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(closed.number, PrNumber(newer));
        assert_ne!(closed.number, PrNumber(old));
        assert_ne!(closed.number, PrNumber(merged));

        let open = fake.seed_mr(PROJECT, HEAD, "main", "[Draft] ours", "d", "opened");
        let found = gl
            .find_open(&project(), &head, &main)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.number, PrNumber(open));
        assert!(found.draft);
        assert_eq!(found.title, "ours");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn decorations_add_to_what_people_set_and_refusals_become_warnings() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        let alice = fake.add_user("alice", &[PROJECT]);
        let bob = fake.add_user("bob", &[PROJECT]);
        let carol = fake.add_user("carol", &[PROJECT]);
        let outsider = fake.add_user("outsider", &[]);
        let iid = gl
            .create(&project(), &new_mr("t", false))
            .await
            .unwrap()
            .number;
        fake.decorate_by_hand(PROJECT, iid.0, Some("needs-design"), Some(carol), None);

        let warnings = gl
            .decorate(
                &project(),
                iid,
                &Decorations {
                    labels: vec!["design-tokens".into(), "automated".into()],
                    reviewers: vec!["alice".into(), "ghost".into(), "outsider".into()],
                    team_reviewers: vec!["design".into()],
                    assignees: vec!["@bob".into()],
                },
            )
            .await
            .unwrap();
        let mr = fake.mr(PROJECT, iid.0);
        assert_eq!(mr.labels, ["needs-design", "design-tokens", "automated"]);
        assert_eq!(mr.reviewer_ids, [alice, carol]);
        assert_eq!(mr.assignee_ids, [bob]);
        assert!(!mr.reviewer_ids.contains(&outsider));
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text.iter()
                .any(|w| w.contains("ghost") && w.contains("no such user")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|w| w.contains("no team reviewers") && w.contains("design")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|w| w.contains("did not add outsider")),
            "{text:?}"
        );

        let put = fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .collect::<Vec<_>>();
        assert_eq!(put.len(), 2);
        assert_eq!(
            put[0].body.as_ref().unwrap()["add_labels"],
            "design-tokens,automated"
        );

        // A refused label call is a warning; the people are still requested.
        fake.enqueue_fault("PUT", MR, Fault::status(403, "403 Forbidden"));
        let warnings = gl
            .decorate(
                &project(),
                iid,
                &Decorations {
                    labels: vec!["x".into()],
                    reviewers: vec!["bob".into()],
                    ..Decorations::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(fake.mr(PROJECT, iid.0).reviewer_ids.contains(&bob));

        // A failing forge is an error, for the retry policy.
        fake.enqueue_fault("PUT", MR, Fault::status(503, "down"));
        let error = gl
            .decorate(
                &project(),
                iid,
                &Decorations {
                    labels: vec!["x".into()],
                    ..Decorations::default()
                },
            )
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn comments_are_read_across_pages_without_system_notes() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        let iid = gl
            .create(&project(), &new_mr("t", false))
            .await
            .unwrap()
            .number;
        for n in 0..130 {
            fake.add_note(PROJECT, iid.0, &format!("note {n}"), false);
            if n % 10 == 0 {
                fake.add_note(PROJECT, iid.0, "added 1 commit", true);
            }
        }
        let comments = gl.list_comments(&project(), iid).await.unwrap();
        assert_eq!(comments.len(), 130);
        assert_eq!(comments[0].body, "note 0");
        assert_eq!(comments[129].body, "note 129");
        assert!(comments.iter().all(|c| c.body != "added 1 commit"));
        let pages = fake
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/notes"))
            .count();
        assert_eq!(pages, 2);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn auto_merge_is_enabled_pinned_to_the_head_or_unavailable() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        let pr = gl.create(&project(), &new_mr("t", false)).await.unwrap();
        assert_eq!(
            gl.enable_auto_merge(&project(), &pr).await.unwrap(),
            AutoMerge::Enabled
        );
        let mr = fake.mr(PROJECT, pr.number.0);
        assert!(mr.auto_merge);
        assert_eq!(mr.state, "opened");
        let merge = fake
            .requests()
            .into_iter()
            .find(|r| r.path.ends_with("/merge"))
            .unwrap();
        let body = merge.body.unwrap();
        assert_eq!(body["merge_when_pipeline_succeeds"], "true");
        assert_eq!(body["sha"], mr.sha.as_str());

        // The project does not allow it (no pipeline, or settings): a reason, not a failure.
        fake.set_auto_merge_allowed(PROJECT, false);
        let AutoMerge::Unavailable { reason } =
            gl.enable_auto_merge(&project(), &pr).await.unwrap()
        else {
            panic!("expected unavailable");
        };
        assert!(reason.contains("405"), "{reason}");

        // Someone pushed between Courier's look-up and the merge call.
        fake.set_auto_merge_allowed(PROJECT, true);
        fake.enqueue_fault(
            "PUT",
            MERGE,
            Fault::status(409, "SHA does not match HEAD of source branch"),
        );
        let AutoMerge::Unavailable { reason } =
            gl.enable_auto_merge(&project(), &pr).await.unwrap()
        else {
            panic!("expected unavailable");
        };
        assert!(reason.contains("SHA does not match"), "{reason}");

        // The merge endpoint answers 401 when the token's user may not merge.
        fake.enqueue_fault("PUT", MERGE, Fault::status(401, "401 Unauthorized"));
        let AutoMerge::Unavailable { reason } =
            gl.enable_auto_merge(&project(), &pr).await.unwrap()
        else {
            panic!("expected unavailable");
        };
        assert!(reason.contains("401"), "{reason}");

        // A closed merge request: said so without asking GitLab to merge.
        gl.close(&project(), pr.number).await.unwrap();
        let merges_before = fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/merge"))
            .count();
        let AutoMerge::Unavailable { reason } =
            gl.enable_auto_merge(&project(), &pr).await.unwrap()
        else {
            panic!("expected unavailable");
        };
        assert!(reason.contains("closed"), "{reason}");
        let merges_after = fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/merge"))
            .count();
        assert_eq!(merges_before, merges_after);

        // A forge failure stays an error.
        let reopened = fake.seed_mr(PROJECT, "courier/b", "main", "b", "", "opened");
        let pr_b = gl
            .find_open(&project(), &branch("courier/b"), &branch("main"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pr_b.number, PrNumber(reopened));
        fake.enqueue_fault("PUT", MERGE, Fault::status(502, "bad gateway"));
        assert!(
            gl.enable_auto_merge(&project(), &pr_b)
                .await
                .unwrap_err()
                .is_transient()
        );
        fake.assert_contract();
    })
    .await;
}

/// One call answered by `fault`: a list (GET) or a create (POST).
async fn single_error(fault: Fault, method: &str) -> ProviderError {
    let fake = fake_with_branch().await;
    let gl = gitlab(&fake);
    fake.enqueue_fault(method, MRS, fault);
    let error = if method == "GET" {
        gl.find_open(&project(), &branch(HEAD), &branch("main"))
            .await
            .unwrap_err()
    } else {
        gl.create(&project(), &new_mr("t", false))
            .await
            .unwrap_err()
    };
    fake.assert_contract();
    error
}

#[tokio::test]
async fn http_answers_map_to_typed_errors() {
    bounded(30, async {
        let e = single_error(Fault::status(401, "401 Unauthorized"), "GET").await;
        assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
        assert!(!e.is_transient());

        let e = single_error(
            Fault::Respond {
                status: 403,
                headers: vec![],
                body: json!({
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": "api",
                }),
            },
            "POST",
        )
        .await;
        let ProviderError::Forbidden { message, .. } = &e else {
            panic!("{e:?}");
        };
        assert!(message.contains("lacks the `api` scope"), "{message}");

        let e = single_error(Fault::status(403, "403 Forbidden"), "POST").await;
        assert!(e.to_string().contains("Developer role"), "{e}");

        let e = single_error(Fault::status(404, "404 Project Not Found"), "GET").await;
        assert!(matches!(e, ProviderError::NotFound { .. }), "{e:?}");

        let e = single_error(Fault::status(409, "409 Conflict"), "POST").await;
        assert!(matches!(e, ProviderError::Conflict { .. }), "{e:?}");

        let e = single_error(Fault::status(422, "Unprocessable"), "POST").await;
        assert!(matches!(e, ProviderError::Invalid { .. }), "{e:?}");

        let e = single_error(Fault::status(400, "title is missing"), "POST").await;
        assert!(matches!(e, ProviderError::Invalid { .. }), "{e:?}");

        let e = single_error(Fault::status(500, "500 Internal Server Error"), "GET").await;
        assert!(matches!(e, ProviderError::Transient { .. }), "{e:?}");

        let e = single_error(
            Fault::with_headers(429, "Retry later", &[("retry-after", "17")]),
            "GET",
        )
        .await;
        assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
    })
    .await;
}

#[tokio::test]
async fn errors_from_the_fakes_own_state() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        gl.create(&project(), &new_mr("first", false))
            .await
            .unwrap();
        // GitLab's "already exists" is a 409, from its own state here.
        let e = gl
            .create(&project(), &new_mr("second", false))
            .await
            .unwrap_err();
        let ProviderError::Conflict { message, .. } = &e else {
            panic!("{e:?}");
        };
        assert!(
            message.contains("already exists") && message.contains("!1"),
            "{message}"
        );

        let unknown = RepoSlug::new("acme/nope");
        let e = gl
            .find_open(&unknown, &branch(HEAD), &branch("main"))
            .await
            .unwrap_err();
        let ProviderError::NotFound { what, .. } = &e else {
            panic!("{e:?}");
        };
        assert!(
            what.contains("404 Project Not Found") && what.contains("acme/nope"),
            "{what}"
        );

        let e = gl
            .update(
                &project(),
                PrNumber(99),
                &PullRequestUpdate {
                    title: None,
                    body: Some("x".into()),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound { .. }), "{e:?}");

        let wrong = GitLabProvider::new(
            GitLabConfig::new(&fake.base_url(), SecretString::from("glpat-wrong")).unwrap(),
        )
        .unwrap();
        let e = wrong
            .find_open(&project(), &branch(HEAD), &branch("main"))
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
        assert!(!e.to_string().contains("glpat-wrong"), "{e}");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn rate_limits_are_honoured_by_the_retry_policy() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        let (p, h, m) = (project(), branch(HEAD), branch("main"));
        fake.enqueue_fault(
            "GET",
            MRS,
            Fault::with_headers(429, "Retry later", &[("retry-after", "1")]),
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        fake.enqueue_fault(
            "GET",
            MRS,
            Fault::with_headers(
                429,
                "Retry later",
                &[
                    ("ratelimit-remaining", "0"),
                    ("ratelimit-reset", &(now + 1).to_string()),
                ],
            ),
        );
        let started = Instant::now();
        let found = RetryPolicy::fast()
            .run("find", || gl.find_open(&p, &h, &m))
            .await
            .unwrap();
        assert_eq!(found, None);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(2), "{waited:?}");
        assert_eq!(fake.requests().len(), 3);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_hanging_server_is_a_transient_timeout_then_retried() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        fake.enqueue_fault("GET", MRS, Fault::Hang);
        let started = Instant::now();
        let e = gl
            .find_open(&project(), &branch(HEAD), &branch("main"))
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::Transient { .. }), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        fake.enqueue_fault("GET", MRS, Fault::Hang);
        fake.enqueue_fault("GET", MRS, Fault::status(500, "boom"));
        let (p, h, m) = (project(), branch(HEAD), branch("main"));
        let found = RetryPolicy::fast()
            .run("find", || gl.find_open(&p, &h, &m))
            .await
            .unwrap();
        assert_eq!(found, None);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    bounded(10, async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let gl = GitLabProvider::new(GitLabConfig::new(&url, SecretString::from(TOKEN)).unwrap())
            .unwrap();
        let e = gl.close(&project(), PrNumber(1)).await.unwrap_err();
        assert!(matches!(e, ProviderError::Transient { .. }), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn an_instance_under_a_path_is_reached_there() {
    bounded(20, async {
        let fake = GitLabFake::start_at("/gitlab").await;
        fake.add_project(PROJECT);
        fake.add_branch(PROJECT, HEAD);
        let gl = gitlab(&fake);
        let pr = gl.create(&project(), &new_mr("t", false)).await.unwrap();
        assert!(
            pr.url
                .contains("/gitlab/acme/design/web/-/merge_requests/1"),
            "{}",
            pr.url
        );
        gl.comment(&project(), pr.number, "hi").await.unwrap();
        assert!(
            fake.request_lines()
                .iter()
                .all(|l| l.contains(" /gitlab/api/v4/")),
            "{:?}",
            fake.request_lines()
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn setup_errors_name_the_problem() {
    let e = GitLabConfig::new("not a url", SecretString::from(TOKEN)).unwrap_err();
    assert!(matches!(e, GitLabSetupError::BaseUrl { .. }), "{e:?}");
    let config = GitLabConfig::new("https://gitlab.example.com", SecretString::from("")).unwrap();
    let e = GitLabProvider::new(config).unwrap_err();
    assert!(matches!(e, GitLabSetupError::Token(_)), "{e:?}");
}

/// The checker is only worth its zero if it can say no: requests the description forbids,
/// sent by hand to the fake, are reported, form bodies included.
#[tokio::test]
async fn the_fake_and_checker_together_catch_bad_requests() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        fake.accept_token(TOKEN);
        let iid = fake.seed_mr(PROJECT, HEAD, "main", "t", "", "opened");
        let http = reqwest::Client::new();
        let base = fake.base_url();
        let send = |method: reqwest::Method, path: String, form: Option<&'static str>| {
            let mut request = http
                .request(method, format!("{base}{path}"))
                .header("private-token", TOKEN);
            if let Some(form) = form {
                request = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form);
            }
            request.send()
        };
        let project_path = "/api/v4/projects/acme%2Fdesign%2Fweb";
        // An integer field that is not one, and a boolean that is not one.
        send(
            reqwest::Method::PUT,
            format!("{project_path}/merge_requests/{iid}"),
            Some("reviewer_ids%5B%5D=alice&squash=maybe"),
        )
        .await
        .unwrap();
        // An undocumented query parameter on a documented operation.
        send(
            reqwest::Method::GET,
            format!("{project_path}/merge_requests?state=open"),
            None,
        )
        .await
        .unwrap();
        // A note without a body, and listing every user.
        send(
            reqwest::Method::POST,
            format!("{project_path}/merge_requests/{iid}/notes"),
            Some("internal=true"),
        )
        .await
        .unwrap();
        send(reqwest::Method::GET, "/api/v4/users".into(), None)
            .await
            .unwrap();
        let violations = fake.contract_violations();
        let all = violations.join("\n");
        assert!(all.contains("reviewer_ids[0]: expected integer"), "{all}");
        assert!(all.contains("squash: expected boolean"), "{all}");
        assert!(all.contains("`open` is not one of"), "{all}");
        assert!(all.contains("`body` missing"), "{all}");
        assert!(all.contains("without `username`"), "{all}");
        assert_eq!(violations.len(), 5, "{all}");
    })
    .await;
}

#[test]
fn form_bodies_are_typed_by_the_description_before_checking() {
    let doc = gitlab_description();
    let typed = typed_body(
        &doc,
        "PUT /api/v4/projects/{id}/merge_requests/{merge_request_iid}",
        &json!({
            "add_labels": "a,b",
            "reviewer_ids": ["3", "4"],
            "squash": "true",
            "title": "123",
            "unknown": "x",
        }),
    );
    assert_eq!(
        typed,
        json!({
            "add_labels": ["a", "b"],
            "reviewer_ids": [3, 4],
            "squash": true,
            "title": "123",
            "unknown": "x",
        })
    );
}

#[tokio::test]
async fn only_a_missing_branch_counts_as_deleted_and_note_failures_are_typed() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        fake.enqueue_fault("DELETE", BRANCH, Fault::status(403, "403 Forbidden"));
        let e = gl
            .delete_branch(&project(), &branch(HEAD), &common::any_sha())
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::Forbidden { .. }), "{e:?}");
        fake.enqueue_fault("DELETE", BRANCH, Fault::status(500, "boom"));
        let e = gl
            .delete_branch(&project(), &branch(HEAD), &common::any_sha())
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert!(fake.has_branch(PROJECT, HEAD));

        let iid = gl
            .create(&project(), &new_mr("t", false))
            .await
            .unwrap()
            .number;
        fake.enqueue_fault("POST", NOTES, Fault::status(404, "404 Not found"));
        let e = gl.comment(&project(), iid, "x").await.unwrap_err();
        assert!(matches!(e, ProviderError::NotFound { .. }), "{e:?}");
        fake.enqueue_fault(
            "GET",
            NOTES,
            Fault::with_headers(429, "Retry later", &[("retry-after", "3")]),
        );
        let e = gl.list_comments(&project(), iid).await.unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_404_that_is_not_a_missing_branch_is_not_success() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gl = gitlab(&fake);
        let e = gl
            .delete_branch(
                &RepoSlug::new("acme/gone"),
                &branch(HEAD),
                &common::any_sha(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound { .. }), "{e:?}");
        fake.enqueue_fault(
            "DELETE",
            BRANCH,
            Fault::Respond {
                status: 404,
                headers: vec![],
                body: json!({ "error": "404 Not Found" }),
            },
        );
        let e = gl
            .delete_branch(&project(), &branch(HEAD), &common::any_sha())
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound { .. }), "{e:?}");
        // Branch names with characters that mean something in a URL stay one segment.
        fake.add_branch(PROJECT, "courier/tokens #2?x");
        gl.delete_branch(
            &project(),
            &branch("courier/tokens #2?x"),
            &common::any_sha(),
        )
        .await
        .unwrap();
        assert!(!fake.has_branch(PROJECT, "courier/tokens #2?x"));
        fake.assert_contract();
    })
    .await;
}
