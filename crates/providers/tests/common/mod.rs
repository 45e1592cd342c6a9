//! Shared by the provider test binaries (`mod common;`): the forge fakes and the contract
//! checker (from the test kit), and small helpers.

#![allow(dead_code, unused_imports)]

pub use courier_testkit::forges::{azure_fake, contract, github_fake, gitlab_fake};

use std::future::Future;
use std::time::Duration;

use courier_providers::github::{GitHubAuth, GitHubConfig, GitHubProvider};
use secrecy::SecretString;

use self::github_fake::GitHubFake;

/// Every test body runs under this bound, so a hang fails instead of stalling CI.
pub async fn bounded<T>(limit_secs: u64, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(limit_secs), work)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {limit_secs}s"))
}

pub const TOKEN: &str = "ghp_test_token_not_a_secret";

/// Client timeouts short enough that a hanging fake fails a test in about a second.
pub fn fast_config(fake: &GitHubFake, auth: GitHubAuth) -> GitHubConfig {
    let mut config = GitHubConfig::new(auth)
        .with_api_url(&fake.api_url())
        .unwrap();
    config.connect_timeout = Duration::from_secs(2);
    config.read_timeout = Duration::from_millis(800);
    config.request_timeout = Duration::from_secs(2);
    config
}

/// A PAT provider against `fake`, which accepts [`TOKEN`].
pub fn github(fake: &GitHubFake) -> GitHubProvider {
    fake.accept_token(TOKEN);
    GitHubProvider::new(fast_config(
        fake,
        GitHubAuth::Token(SecretString::from(TOKEN)),
    ))
    .unwrap()
}

/// A commit id from 40 hex digits.
pub fn sha(hex: &str) -> courier_providers::git::CommitId {
    courier_providers::git::CommitId::parse(hex).unwrap_or_else(|| panic!("not a sha: {hex}"))
}

/// Some commit id, where the one given does not matter (GitHub's and GitLab's deletes do
/// not send it).
pub fn any_sha() -> courier_providers::git::CommitId {
    sha("00000000000000000000000000000000000000aa")
}

/// The export converged with the base; the head branch at `tip` holds Courier's commits
/// only.
pub fn converged(tip: &str) -> courier_providers::pull_request::GitOutcome {
    courier_providers::pull_request::GitOutcome::NoChanges {
        head: courier_providers::git::HeadBranch::Courier { tip: sha(tip) },
    }
}

/// The export converged with the base; the head branch at `tip` holds a commit someone
/// else made.
pub fn converged_over_foreign(tip: &str) -> courier_providers::pull_request::GitOutcome {
    courier_providers::pull_request::GitOutcome::NoChanges {
        head: courier_providers::git::HeadBranch::Foreign {
            tip: sha(tip),
            commits: vec![sha(tip)],
        },
    }
}
