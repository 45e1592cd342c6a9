//! The GitHub provider on the real octocrab client against the stateful fake: every
//! `Provider` method, the error mapping, rate limits through the retry policy, GitHub App
//! tokens, the Enterprise URL layout, and the contract check (including proof that it
//! catches bad requests).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use courier_providers::github::{
    GitHubApp, GitHubAuth, GitHubProvider, GitHubSetupError, Installation,
};
use courier_providers::provider::{
    AutoMerge, BranchName, Decorations, NewPullRequest, PrNumber, PrState, Provider, ProviderError,
    PullRequestUpdate, RepoSlug,
};
use courier_providers::retry::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use common::contract::{Contract, RecordedRequest};
use common::github_fake::{Fault, GitHubFake};
use common::{TOKEN, bounded, fast_config, github};

const REPO: &str = "acme/web";
const PULLS: &str = "/repos/{owner}/{repo}/pulls";

fn repo() -> RepoSlug {
    RepoSlug::new(REPO)
}

fn branch(name: &str) -> BranchName {
    BranchName::new(name)
}

async fn fake_with_branch() -> GitHubFake {
    let fake = GitHubFake::start().await;
    fake.add_repo(REPO);
    fake.add_branch(REPO, "courier/tokens");
    fake
}

fn new_pr(title: &str) -> NewPullRequest {
    NewPullRequest {
        title: title.into(),
        body: "body".into(),
        head: branch("courier/tokens"),
        base: branch("main"),
        draft: true,
    }
}

#[tokio::test]
async fn every_provider_method_round_trips_through_octocrab() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gh = github(&fake);
        let head = branch("courier/tokens");
        let main = branch("main");

        assert_eq!(gh.find_open(&repo(), &head, &main).await.unwrap(), None);
        let pr = gh.create(&repo(), &new_pr("Tokens")).await.unwrap();
        assert_eq!(pr.state, PrState::Open);
        assert!(pr.draft);
        assert_eq!(pr.head, head);
        assert_eq!(fake.pr(REPO, pr.number.0).title, "Tokens");

        let found = gh.find_open(&repo(), &head, &main).await.unwrap().unwrap();
        assert_eq!(found.number, pr.number);
        // The base is part of the look-up.
        assert_eq!(
            gh.find_open(&repo(), &head, &branch("dev")).await.unwrap(),
            None
        );

        let updated = gh
            .update(
                &repo(),
                pr.number,
                &PullRequestUpdate {
                    title: None,
                    body: Some("new body".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (updated.title.as_str(), updated.body.as_str()),
            ("Tokens", "new body")
        );

        gh.comment(&repo(), pr.number, "hello").await.unwrap();
        let comments = gh.list_comments(&repo(), pr.number).await.unwrap();
        assert_eq!(comments.len(), 1);
        assert_eq!(comments[0].body, "hello");

        gh.close(&repo(), pr.number).await.unwrap();
        assert_eq!(fake.pr(REPO, pr.number.0).state, "closed");
        let closed = gh
            .find_closed_unmerged(&repo(), &head)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(closed.number, pr.number);
        assert_eq!(closed.state, PrState::Closed);

        gh.delete_branch(&repo(), &head, &common::any_sha())
            .await
            .unwrap();
        assert!(!fake.has_branch(REPO, "courier/tokens"));
        // Already gone (422 "Reference does not exist") is success.
        gh.delete_branch(&repo(), &head, &common::any_sha())
            .await
            .unwrap();

        let creds = gh.push_credentials(&repo()).await.unwrap();
        assert_eq!(creds.username, "x-access-token");
        assert_eq!(creds.token.expose_secret(), TOKEN);
        assert!(!format!("{creds:?}").contains(TOKEN));

        let lines = fake.request_lines();
        assert!(
            lines.contains(&"DELETE /repos/acme/web/git/refs/heads/courier/tokens".to_owned()),
            "{lines:?}"
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn merged_pull_requests_are_not_closed_unmerged() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        fake.seed_pr(REPO, "courier/tokens", "main", "old", "", "merged");
        let gh = github(&fake);
        assert_eq!(
            gh.find_closed_unmerged(&repo(), &branch("courier/tokens"))
                .await
                .unwrap(),
            None
        );
        let closed = fake.seed_pr(REPO, "courier/tokens", "main", "older", "", "closed");
        let found = gh
            .find_closed_unmerged(&repo(), &branch("courier/tokens"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.number, PrNumber(closed));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn decorations_apply_and_refusals_become_warnings() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        fake.add_collaborator(REPO, "alice");
        fake.add_team(REPO, "design");
        let gh = github(&fake);
        let pr = gh.create(&repo(), &new_pr("t")).await.unwrap();
        let warnings = gh
            .decorate(
                &repo(),
                pr.number,
                &Decorations {
                    labels: vec!["design-tokens".into(), "bot".into()],
                    reviewers: vec!["alice".into()],
                    team_reviewers: vec!["design".into()],
                    assignees: vec!["alice".into(), "mallory".into()],
                },
            )
            .await
            .unwrap();
        let state = fake.pr(REPO, pr.number.0);
        assert_eq!(state.labels, ["design-tokens", "bot"]);
        assert_eq!(state.reviewers, ["alice"]);
        assert_eq!(state.team_reviewers, ["design"]);
        assert_eq!(state.assignees, ["alice"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].0.contains("mallory"), "{warnings:?}");

        // A reviewer who is not a collaborator: GitHub answers 422; the delivery goes on.
        let warnings = gh
            .decorate(
                &repo(),
                pr.number,
                &Decorations {
                    reviewers: vec!["stranger".into()],
                    ..Decorations::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].0.contains("collaborator"), "{warnings:?}");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn auto_merge_enabled_or_unavailable_per_repository() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let gh = github(&fake);
        let pr = gh.create(&repo(), &new_pr("t")).await.unwrap();
        let refused = gh.enable_auto_merge(&repo(), &pr).await.unwrap();
        let AutoMerge::Unavailable { reason } = refused else {
            panic!("{refused:?}");
        };
        assert!(reason.contains("not allowed"), "{reason}");
        assert!(!fake.pr(REPO, pr.number.0).auto_merge);

        fake.set_auto_merge_allowed(REPO, true);
        assert_eq!(
            gh.enable_auto_merge(&repo(), &pr).await.unwrap(),
            AutoMerge::Enabled
        );
        assert!(fake.pr(REPO, pr.number.0).auto_merge);
        assert!(fake.request_lines().contains(&"POST /graphql".to_owned()));
        fake.assert_contract();
    })
    .await;
}

async fn single_error(fault: Fault, route: (&str, &str)) -> ProviderError {
    let fake = fake_with_branch().await;
    let gh = github(&fake);
    fake.enqueue_fault(route.0, route.1, fault);
    let error = if route.0 == "GET" {
        gh.find_open(&repo(), &branch("courier/tokens"), &branch("main"))
            .await
            .unwrap_err()
    } else {
        gh.create(&repo(), &new_pr("t")).await.unwrap_err()
    };
    fake.assert_contract();
    error
}

#[tokio::test]
async fn http_answers_map_to_typed_errors() {
    bounded(20, async {
        let e = single_error(Fault::status(401, "Bad credentials"), ("GET", PULLS)).await;
        assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
        assert!(!e.is_transient());

        let e = single_error(
            Fault::with_headers(
                403,
                "Resource not accessible by personal access token",
                &[("x-accepted-github-permissions", "pull_requests=write")],
            ),
            ("POST", PULLS),
        )
        .await;
        let ProviderError::Forbidden { message, .. } = &e else {
            panic!("{e:?}");
        };
        assert!(message.contains("pull_requests=write"), "{message}");

        let e = single_error(Fault::status(404, "Not Found"), ("GET", PULLS)).await;
        assert!(matches!(e, ProviderError::NotFound { .. }), "{e:?}");

        let e = single_error(Fault::status(409, "Conflict"), ("POST", PULLS)).await;
        assert!(matches!(e, ProviderError::Conflict { .. }), "{e:?}");

        let e = single_error(Fault::status(422, "Validation Failed"), ("POST", PULLS)).await;
        assert!(matches!(e, ProviderError::Invalid { .. }), "{e:?}");

        let e = single_error(Fault::status(500, "boom"), ("GET", PULLS)).await;
        assert!(matches!(e, ProviderError::Transient { .. }), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn already_exists_is_a_conflict_from_the_fakes_own_state() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let gh = github(&fake);
        gh.create(&repo(), &new_pr("first")).await.unwrap();
        let e = gh.create(&repo(), &new_pr("second")).await.unwrap_err();
        let ProviderError::Conflict { message, .. } = &e else {
            panic!("{e:?}");
        };
        assert!(message.contains("already exists"), "{message}");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn retry_after_is_honoured_by_the_retry_policy() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gh = github(&fake);
        let (r, h, m) = (repo(), branch("courier/tokens"), branch("main"));
        let new = new_pr("t");
        let _ = (&h, &m, &new);
        fake.enqueue_fault(
            "GET",
            PULLS,
            Fault::with_headers(429, "Too many requests", &[("retry-after", "1")]),
        );
        let started = Instant::now();
        let found = RetryPolicy::fast()
            .run("find", || gh.find_open(&r, &h, &m))
            .await
            .unwrap();
        assert_eq!(found, None);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(fake.requests().len(), 2);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn primary_rate_limit_waits_until_x_ratelimit_reset() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let gh = github(&fake);
        let (r, h, m) = (repo(), branch("courier/tokens"), branch("main"));
        let new = new_pr("t");
        let _ = (&h, &m, &new);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let reset = (now + 2).to_string();
        fake.enqueue_fault(
            "GET",
            PULLS,
            Fault::with_headers(
                403,
                "API rate limit exceeded",
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", &reset),
                ],
            ),
        );
        let started = Instant::now();
        RetryPolicy::fast()
            .run("find", || gh.find_open(&r, &h, &m))
            .await
            .unwrap();
        // Waited until the reset second had passed.
        let waited = started.elapsed();
        let reset_at = UNIX_EPOCH + Duration::from_secs(now + 2);
        assert!(SystemTime::now() >= reset_at, "{waited:?}");
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn secondary_rate_limit_without_header_asks_for_a_minute_and_the_cap_stops_it() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let gh = github(&fake);
        let (r, h, m) = (repo(), branch("courier/tokens"), branch("main"));
        let new = new_pr("t");
        let _ = (&h, &m, &new);
        fake.enqueue_fault(
            "POST",
            PULLS,
            Fault::status(403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."),
        );
        let started = Instant::now();
        let e = RetryPolicy::fast()
            .run("create", || gh.create(&r, &new))
            .await
            .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)), "{e:?}");
        // The fast policy caps waits at 5 s: it gives up at once instead of sleeping.
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(fake.requests().len(), 1);
        assert!(fake.prs(REPO).is_empty());
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let gh = github(&fake);
        let (r, h, m) = (repo(), branch("courier/tokens"), branch("main"));
        let new = new_pr("t");
        let _ = (&h, &m, &new);
        fake.enqueue_fault("POST", PULLS, Fault::status(502, "Bad Gateway"));
        fake.enqueue_fault("POST", PULLS, Fault::status(500, "Internal"));
        let pr = RetryPolicy::fast()
            .run("create", || gh.create(&r, &new))
            .await
            .unwrap();
        assert_eq!(fake.prs(REPO).len(), 1);
        assert_eq!(fake.prs(REPO)[0].number, pr.number.0);
        assert_eq!(fake.requests().len(), 3);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_hanging_server_is_a_transient_timeout_then_retried() {
    bounded(15, async {
        let fake = fake_with_branch().await;
        let gh = github(&fake);
        let (r, h, m) = (repo(), branch("courier/tokens"), branch("main"));
        let new = new_pr("t");
        let _ = (&h, &m, &new);
        fake.enqueue_fault("GET", PULLS, Fault::Hang);
        let started = Instant::now();
        let e = gh
            .find_open(&repo(), &branch("courier/tokens"), &branch("main"))
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::Transient { .. }), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );

        fake.enqueue_fault("GET", PULLS, Fault::Hang);
        let found = RetryPolicy::fast()
            .run("find", || gh.find_open(&r, &h, &m))
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
        let fake = GitHubFake::start().await;
        let config = fast_config(&fake, GitHubAuth::Token(SecretString::from(TOKEN)));
        drop(fake);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let gh = GitHubProvider::new(config).unwrap();
        let e = gh
            .find_open(&repo(), &branch("x"), &branch("main"))
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e:?}");
    })
    .await;
}

fn test_key() -> (String, String) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common");
    (
        std::fs::read_to_string(dir.join("test-only-github-app-key.pem")).unwrap(),
        std::fs::read_to_string(dir.join("test-only-github-app-key.pub.pem")).unwrap(),
    )
}

fn app_provider(fake: &GitHubFake, installation: Installation, margin: Duration) -> GitHubProvider {
    let key_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/common/test-only-github-app-key.pem");
    let app = GitHubApp::from_key_file(4242, &key_file, installation).unwrap();
    let mut config = fast_config(fake, GitHubAuth::App(app));
    config.token_refresh_margin = margin;
    GitHubProvider::new(config).unwrap()
}

#[tokio::test]
async fn app_tokens_are_minted_with_a_signed_jwt_cached_and_used_for_push() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let (_, public) = test_key();
        fake.register_app(4242, &public, Duration::from_secs(3600));
        fake.install_app(REPO, 77);
        let gh = app_provider(&fake, Installation::ByRepository, Duration::from_secs(300));

        let pr = gh.create(&repo(), &new_pr("t")).await.unwrap();
        gh.comment(&repo(), pr.number, "x").await.unwrap();
        let creds = gh.push_credentials(&repo()).await.unwrap();
        let minted = fake.minted_tokens();
        assert_eq!(minted.len(), 1, "cached token reused");
        assert_eq!(creds.username, "x-access-token");
        assert_eq!(creds.token.expose_secret(), minted[0]);
        let lines = fake.request_lines();
        assert_eq!(
            lines
                .iter()
                .filter(|l| *l == "GET /repos/acme/web/installation")
                .count(),
            1,
            "{lines:?}"
        );
        assert!(lines.contains(&"POST /app/installations/77/access_tokens".to_owned()));
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn app_tokens_are_refreshed_shortly_before_expiry() {
    bounded(20, async {
        let fake = fake_with_branch().await;
        let (_, public) = test_key();
        // Tokens live 3 s; the provider replaces them 2 s before expiry.
        fake.register_app(4242, &public, Duration::from_secs(3));
        fake.install_app(REPO, 77);
        let gh = app_provider(&fake, Installation::Id(77), Duration::from_secs(2));
        let head = branch("courier/tokens");
        gh.find_open(&repo(), &head, &branch("main")).await.unwrap();
        gh.find_open(&repo(), &head, &branch("main")).await.unwrap();
        assert_eq!(fake.minted_tokens().len(), 1);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        gh.find_open(&repo(), &head, &branch("main")).await.unwrap();
        assert_eq!(fake.minted_tokens().len(), 2);
        // A fixed installation id needs no look-up.
        assert!(
            !fake
                .request_lines()
                .iter()
                .any(|l| l.ends_with("/installation"))
        );
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn a_revoked_installation_token_is_dropped_and_the_next_call_mints_anew() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        let (_, public) = test_key();
        fake.register_app(4242, &public, Duration::from_secs(3600));
        fake.install_app(REPO, 77);
        let gh = app_provider(&fake, Installation::Id(77), Duration::from_secs(60));
        let head = branch("courier/tokens");
        gh.find_open(&repo(), &head, &branch("main")).await.unwrap();
        fake.revoke_minted_tokens();
        let e = gh
            .find_open(&repo(), &head, &branch("main"))
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
        gh.find_open(&repo(), &head, &branch("main")).await.unwrap();
        assert_eq!(fake.minted_tokens().len(), 2);
        fake.assert_contract();
    })
    .await;
}

#[tokio::test]
async fn app_with_a_key_the_forge_does_not_know_is_an_auth_error() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        // Registered with a different public key than the one signing.
        let other_public = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/common/test-only-unrelated-app-key.pub.pem"),
        )
        .unwrap();
        fake.register_app(4242, &other_public, Duration::from_secs(3600));
        fake.install_app(REPO, 77);
        let gh = app_provider(&fake, Installation::Id(77), Duration::from_secs(60));
        let e = gh.push_credentials(&repo()).await.unwrap_err();
        assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
        assert!(fake.minted_tokens().is_empty());
    })
    .await;
}

#[tokio::test]
async fn app_setup_errors_name_the_problem() {
    let missing = GitHubApp::from_key_file(
        1,
        std::path::Path::new("/nonexistent/key.pem"),
        Installation::ByRepository,
    )
    .unwrap_err();
    assert!(matches!(missing, GitHubSetupError::PrivateKey { .. }));
    let app = GitHubApp {
        app_id: 1,
        private_key_pem: SecretString::from("not a key"),
        installation: Installation::Id(1),
    };
    let e = GitHubProvider::new(courier_providers::github::GitHubConfig::new(
        GitHubAuth::App(app),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("RSA private key"), "{e}");
    let config = courier_providers::github::GitHubConfig::new(GitHubAuth::Token(
        SecretString::from("ghp_do_not_print_me"),
    ));
    assert!(!format!("{config:?}").contains("ghp_do_not_print_me"));
    assert!(
        courier_providers::github::GitHubConfig::new(GitHubAuth::Token(SecretString::from("t")))
            .with_api_url("not a url")
            .is_err()
    );
}

#[tokio::test]
async fn enterprise_server_paths_carry_the_api_v3_prefix() {
    bounded(20, async {
        let fake = GitHubFake::start_enterprise().await;
        fake.add_repo(REPO);
        fake.add_branch(REPO, "courier/tokens");
        fake.set_auto_merge_allowed(REPO, true);
        let (_, public) = test_key();
        fake.register_app(4242, &public, Duration::from_secs(3600));
        fake.install_app(REPO, 9);
        assert!(fake.api_url().ends_with("/api/v3"));
        let gh = app_provider(&fake, Installation::ByRepository, Duration::from_secs(60));
        let pr = gh.create(&repo(), &new_pr("t")).await.unwrap();
        assert_eq!(
            gh.enable_auto_merge(&repo(), &pr).await.unwrap(),
            AutoMerge::Enabled
        );
        let lines = fake.request_lines();
        assert!(
            lines.contains(&"POST /api/v3/repos/acme/web/pulls".to_owned()),
            "{lines:?}"
        );
        assert!(lines.contains(&"GET /api/v3/repos/acme/web/installation".to_owned()));
        assert!(lines.contains(&"POST /api/v3/app/installations/9/access_tokens".to_owned()));
        // GraphQL on GHES lives beside, not under, /api/v3.
        assert!(lines.contains(&"POST /api/graphql".to_owned()), "{lines:?}");
        fake.assert_contract();
    })
    .await;
}

fn request(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> RecordedRequest {
    RecordedRequest {
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
fn the_contract_checker_accepts_good_requests_and_catches_bad_ones() {
    let contract = Contract::github();
    // The shared copy's 30, and the Git database's blobs, trees and commits.
    assert_eq!(contract.operation_count(), 33);
    let good = [
        request(
            "POST",
            "/repos/acme/web/pulls",
            &[],
            Some(json!({"title": "t", "head": "h", "base": "main", "body": "b", "draft": false})),
        ),
        request(
            "GET",
            "/repos/acme/web/pulls",
            &[("state", "open"), ("head", "acme:h"), ("per_page", "100")],
            None,
        ),
        request(
            "DELETE",
            "/repos/acme/web/git/refs/heads/courier/a%20b",
            &[],
            None,
        ),
        request(
            "POST",
            "/repos/acme/web/pulls/3/requested_reviewers",
            &[],
            Some(json!({"team_reviewers": ["design"]})),
        ),
        request(
            "POST",
            "/repos/acme/web/issues/3/labels",
            &[],
            Some(json!({"labels": ["a"]})),
        ),
        request(
            "POST",
            "/repos/acme/web/git/trees",
            &[],
            Some(json!({"base_tree": "abc", "tree": [
                {"path": "a/b.css", "mode": "100644", "type": "blob", "sha": "def"},
                {"path": "a/c.css", "mode": "100644", "type": "blob", "sha": null},
            ]})),
        ),
        request(
            "POST",
            "/repos/acme/web/git/commits",
            &[],
            Some(json!({"message": "m", "tree": "abc", "parents": ["def"]})),
        ),
        request(
            "PATCH",
            "/repos/acme/web/git/refs/heads/courier/x",
            &[],
            Some(json!({"sha": "abc", "force": true})),
        ),
    ];
    for r in &good {
        assert_eq!(contract.check(r), vec![], "{r}");
    }
    assert_eq!(
        contract
            .operation_for("DELETE", "/repos/acme/web/git/refs/heads/a/b")
            .as_deref(),
        Some("DELETE /repos/{owner}/{repo}/git/refs/{ref}")
    );

    let bad: [(RecordedRequest, &str); 9] = [
        (
            request(
                "POST",
                "/repos/acme/web/git/trees",
                &[],
                Some(json!({"tree": [{"path": "a", "mode": "644", "type": "blob", "sha": "d"}]})),
            ),
            "not one of",
        ),
        (
            request(
                "POST",
                "/repos/acme/web/pulls",
                &[],
                Some(json!({"title": 5, "head": "h", "base": "m"})),
            ),
            "expected string",
        ),
        (
            request("POST", "/repos/acme/web/pull", &[], None),
            "no operation",
        ),
        (
            request("PUT", "/repos/acme/web/pulls", &[], None),
            "no operation",
        ),
        (
            request("GET", "/repos/acme/web/pulls", &[("state", "merged")], None),
            "not one of",
        ),
        (
            request("GET", "/repos/acme/web/pulls", &[("color", "red")], None),
            "not in the description",
        ),
        (
            request("GET", "/repos/acme/web/pulls/abc", &[], None),
            "not a valid integer",
        ),
        (
            request(
                "POST",
                "/repos/acme/web/issues/3/comments",
                &[],
                Some(json!({"text": "x"})),
            ),
            "required property `body`",
        ),
        (
            request(
                "POST",
                "/repos/acme/web/pulls/3/requested_reviewers",
                &[],
                Some(json!({})),
            ),
            "anyOf",
        ),
    ];
    for (r, expected) in &bad {
        let violations = contract.check(r);
        assert!(
            violations.iter().any(|v| v.problem.contains(expected)),
            "{r}: expected a violation mentioning {expected:?}, got {violations:?}"
        );
    }
    // Outside-the-description operations are skipped only when declared.
    let graphql = request("POST", "/graphql", &[], Some(json!({"query": "x"})));
    assert_eq!(
        contract.check_all(std::slice::from_ref(&graphql), &[("POST", "/graphql")]),
        vec![]
    );
    assert_eq!(contract.check_all(&[graphql], &[]).len(), 1);
}

#[tokio::test]
async fn the_fake_and_checker_together_catch_a_request_the_description_lacks() {
    bounded(10, async {
        let fake = fake_with_branch().await;
        fake.accept_token(TOKEN);
        // Not through the provider: a raw request Courier would never send.
        let url = format!("{}/repos/acme/web/pulls?bogus=1", fake.api_url());
        let mut stream = tokio::net::TcpStream::connect(url.trim_start_matches("http://").split('/').next().unwrap())
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /repos/acme/web/pulls?bogus=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.assert_contract()));
        let message = *outcome.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("`bogus` is not in the description"), "{message}");
    })
    .await;
}
