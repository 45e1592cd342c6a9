//! One GitHub target for the end-to-end tests (`github_e2e.rs`, `crash.rs`, ...): the
//! repository on the git server, the same repository in the GitHub fake, and the
//! configuration's connection and hook that route the first seed's job to it.

use std::path::Path;

use courier_testkit::forges::github_fake::GitHubFake;
use courier_testkit::{BareRepo, GitServer, make_bare_repo};

pub const REPO: &str = "acme/web";
/// The head branch routing gives hook 5's target (base `main`, path `tokens`).
pub const HEAD: &str = "courier/5/main-tokens-e0db30c6";

/// `acme/web` under `root` (the git server's root), with a file the export will replace.
pub fn web_repo(root: &Path) -> BareRepo {
    std::fs::create_dir_all(root.join("acme")).unwrap();
    make_bare_repo(
        &root.join("acme"),
        "web",
        "main",
        &[("README.md", b"# web\n"), ("tokens/colors.css", b"old\n")],
    )
}

/// The fake knows `acme/web` (with `main`) with `token`, the head branch, and the
/// reviewer. It models the API only; the branch Courier pushes lives on the git server.
pub fn prepare_fake(fake: &GitHubFake, token: &str) {
    fake.accept_token(token);
    fake.add_repo(REPO);
    fake.add_branch(REPO, HEAD);
    fake.add_collaborator(REPO, "octocat");
}

/// The `connections:` and `hooks:` of a configuration delivering hook 5 to `acme/web` on
/// GitHub (the API on `fake`, git on `git`), with the token from `TEST_GITHUB_TOKEN`.
pub fn target_yaml(fake: &GitHubFake, git: &GitServer) -> String {
    format!("{}{}", connection_yaml(fake, git), hooks_yaml())
}

/// The `connections:` section: one GitHub connection named `github`.
pub fn connection_yaml(fake: &GitHubFake, git: &GitServer) -> String {
    let api = fake.api_url();
    let git = git.url("");
    let git = git.trim_end_matches(".git");
    format!(
        r#"connections:
  github:
    kind: github
    token: "${{TEST_GITHUB_TOKEN}}"
    api_url: {api}
    git_url: {git}
"#
    )
}

/// The target every end-to-end test delivers to, as a `targets:` list item.
pub fn web_target_yaml() -> String {
    format!(
        r#"      - connection: github
        repository: {REPO}
        branch: main
        relative_path: tokens
        purge_directory: true
        pull_request_title: "Tokens {{{{ version.version }}}}: {{{{ export.files }}}} files"
        labels: [design-tokens]
        reviewers: [octocat]
"#
    )
}

/// The `hooks:` section routing hook 5 to [`web_target_yaml`].
pub fn hooks_yaml() -> String {
    format!(
        "hooks:\n  - match: {{ hook_id: \"5\" }}\n    targets:\n{}",
        web_target_yaml()
    )
}
