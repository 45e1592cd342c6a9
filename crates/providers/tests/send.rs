//! The bot runs deliveries inside `tokio::spawn`, which needs `Send` futures. This file
//! only compiles while the futures of the pull-request flow, the retry policy and the git
//! workspace are `Send`; the one runtime test drives `open_or_update` on a spawned task
//! against the GitHub fake.

mod common;

use std::future::Future;
use std::sync::Arc;

use courier_core::archive::Export;
use courier_providers::git::{DeliverySpec, GitWorkspace, Plan};
use courier_providers::provider::{BranchName, PrNumber, Provider, RepoSlug};
use courier_providers::pull_request::{
    FailureReport, GitOutcome, PrAction, PrSpec, open_or_update, plan, report_failure,
};
use courier_providers::retry::RetryPolicy;

use common::github_fake::GitHubFake;
use common::{bounded, github};

fn assert_send<T: Send>(_: &T) {}

/// Never called: building these futures is the test.
#[allow(dead_code, clippy::too_many_arguments)]
fn futures_with_borrowed_arguments_are_send(
    provider: &dyn Provider,
    retry: &RetryPolicy,
    spec: &PrSpec,
    failure: &FailureReport,
    workspace: &GitWorkspace,
    delivery: &DeliverySpec,
    export: Arc<Export>,
    planned: Plan,
    other_plan: &Plan,
) {
    assert_send(&open_or_update(provider, retry, spec, GitOutcome::Pushed));
    assert_send(&plan(provider, retry, spec, GitOutcome::Pushed));
    assert_send(&report_failure(provider, retry, failure));
    assert_send(&retry.run("find open pull request", || {
        provider.find_open(&spec.repo, &spec.head, &spec.base)
    }));
    assert_send(&retry.run("list comments", || {
        provider.list_comments(&spec.repo, PrNumber(1))
    }));
    assert_send(&workspace.plan(delivery, export));
    assert_send(&workspace.push(planned));
    assert_send(&workspace.diff(other_plan));
}

/// Takes what `tokio::spawn` takes (`Send + 'static`) without running it.
fn spawnable<F: Future + Send + 'static>(_: F) {}

/// Never called: each block below owns what it uses, as a spawned task does.
#[allow(dead_code)]
fn owned_tasks_are_spawnable(
    provider: Arc<dyn Provider>,
    retry: RetryPolicy,
    spec: PrSpec,
    failure: FailureReport,
    workspace: Arc<GitWorkspace>,
    delivery: DeliverySpec,
    export: Arc<Export>,
) {
    {
        let (provider, retry, spec) = (provider.clone(), retry.clone(), spec.clone());
        spawnable(async move {
            let planned = plan(&*provider, &retry, &spec, GitOutcome::UpToDate).await;
            let done = open_or_update(&*provider, &retry, &spec, GitOutcome::Pushed).await;
            (planned, done)
        });
    }
    {
        let (provider, retry) = (provider.clone(), retry.clone());
        spawnable(async move { report_failure(provider.as_ref(), &retry, &failure).await });
    }
    {
        // The closure shape `pull_request` itself uses, written in the spawned task.
        let (provider, retry, spec) = (provider.clone(), retry.clone(), spec.clone());
        spawnable(async move {
            let repo = &spec.repo;
            let open = retry
                .run("find open pull request", || {
                    provider.find_open(repo, &spec.head, &spec.base)
                })
                .await?;
            retry
                .run("list comments", || {
                    provider.list_comments(repo, PrNumber(1))
                })
                .await?;
            Ok::<_, courier_providers::provider::ProviderError>(open)
        });
    }
    spawnable(async move {
        let plan = workspace.plan(&delivery, export).await?;
        let diff = workspace.diff(&plan).await?;
        let delivered = workspace.push(plan).await?;
        Ok::<_, courier_providers::git::GitError>((diff, delivered))
    });
}

/// What the bot writes: a spawned task owning its provider, policy and spec.
#[tokio::test]
async fn open_or_update_runs_on_a_spawned_task() {
    bounded(20, async {
        let fake = GitHubFake::start().await;
        fake.add_repo("acme/web");
        fake.add_branch("acme/web", "courier/tokens");
        let provider: Arc<dyn Provider> = Arc::new(github(&fake));
        let retry = RetryPolicy::fast();
        let spec = PrSpec::new(
            RepoSlug::new("acme/web"),
            BranchName::new("courier/tokens"),
            BranchName::new("main"),
            "Tokens",
            "body",
        );
        let task = tokio::spawn(async move {
            open_or_update(&*provider, &retry, &spec, GitOutcome::Pushed).await
        });
        let outcome = task.await.expect("the task ran").expect("a pull request");
        assert!(
            matches!(outcome.action, PrAction::Created { .. }),
            "{outcome:?}"
        );
    })
    .await;
}
