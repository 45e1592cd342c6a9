//! `courier deliver` and `courier dry-run` end to end with a GitHub target: the branch goes
//! to a real smart-HTTP git server, the pull request to the stateful GitHub fake, driven
//! by the real octocrab client inside the real binary. Every request the fake receives is
//! checked against GitHub's official REST description when the fake is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::github::{self, HEAD, REPO};
use common::serve::SEED_V1;
use courier_testkit::forges::github_fake::GitHubFake;
use courier_testkit::{BareRepo, GitServer, write_zip};
use serde_json::Value;

/// GitHub takes the same token for the API and for git over HTTPS.
const TOKEN: &str = "ghp_e2e_token_5a1f9c3b7d2e";

struct Setup {
    dir: tempfile::TempDir,
    _server: GitServer,
    repo: BareRepo,
    fake: GitHubFake,
    config: PathBuf,
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        let repo = github::web_repo(&root);
        let server = GitServer::start(&root, TOKEN);
        let fake = GitHubFake::start().await;
        github::prepare_fake(&fake, TOKEN);
        let config = dir.path().join("courier.yaml");
        std::fs::write(
            &config,
            format!(
                r#"
data_dir: ./data
platform:
  insecure_hosts: ["127.0.0.1"]
{github}"#,
                github = github::target_yaml(&fake, &server),
            ),
        )
        .unwrap();
        // The seed's one log line, as a warning, so the description quotes it.
        let payload = SEED_V1.replace("\"type\": \"info\"", "\"type\": \"warning\"");
        std::fs::write(dir.path().join("payload.json"), payload).unwrap();
        Setup {
            dir,
            _server: server,
            repo,
            fake,
            config,
        }
    }

    fn zip(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let path = self.dir.path().join(name);
        write_zip(&path, files);
        path
    }

    async fn run(&self, command: &str, zip: &Path) -> Value {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_courier"))
            .current_dir(self.dir.path())
            .args([command, "--config"])
            .arg(&self.config)
            .arg("--payload")
            .arg(self.dir.path().join("payload.json"))
            .arg("--artifact")
            .arg(zip)
            .arg("--json")
            .env("TEST_GITHUB_TOKEN", TOKEN)
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("COURIER_CONFIG")
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), out)
            .await
            .expect("courier finished in time")
            .expect("courier ran");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(TOKEN), "the token leaked: {all}");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command} printed no JSON ({e}): {all}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_opens_then_updates_then_closes_one_pull_request() {
    let setup = Setup::new().await;
    let v1 = setup.zip("v1.zip", &[("colors.css", b":root { --primary: blue; }\n")]);

    // A dry run plans the PR with read-only calls and changes nothing.
    let plan = setup.run("dry-run", &v1).await;
    let target = &plan["targets"][0];
    assert_eq!(target["action"], "push");
    assert_eq!(target["pull_request"]["action"], "create_pr");
    assert_eq!(target["pull_request"]["title"], "Tokens v0.1: 1 files");
    assert!(setup.fake.prs(REPO).is_empty());
    assert_eq!(setup.repo.rev_parse(HEAD), None);

    // First delivery: the branch holds the export and one PR is opened, decorated.
    let first = setup.run("deliver", &v1).await;
    assert_eq!(first["status"], "delivered", "{first:#}");
    let target = &first["targets"][0];
    assert_eq!(target["pull_request"]["action"], "created");
    // Where the time went: the export's phases once for the job, the rest per target.
    for phase in ["download", "validate"] {
        assert!(first["timings"][phase].is_u64(), "{phase}: {first:#}");
    }
    for phase in ["plan", "push", "pull_request", "total"] {
        assert!(target["timings"][phase].is_u64(), "{phase}: {target:#}");
    }
    assert_eq!(
        setup.repo.read_file(HEAD, "tokens/colors.css"),
        b":root { --primary: blue; }\n"
    );
    let prs = setup.fake.prs(REPO);
    assert_eq!(prs.len(), 1);
    let pr = &prs[0];
    assert_eq!((pr.head.as_str(), pr.base.as_str()), (HEAD, "main"));
    assert_eq!(pr.state, "open");
    assert_eq!(pr.title, "Tokens v0.1: 1 files");
    assert_eq!(pr.labels, vec!["design-tokens".to_owned()]);
    // The default description: changes by directory, the log's warnings, and the hidden
    // marker naming hook and target.
    assert!(pr.body.contains("| `tokens` | 0 | 1 | 0 |"), "{}", pr.body);
    assert!(
        pr.body
            .contains("- warning: Finished exporting source colors.pr"),
        "{}",
        pr.body
    );
    assert!(
        pr.body
            .ends_with("<!-- courier: hook=5 target=github:acme/web@main:tokens -->"),
        "{}",
        pr.body
    );
    assert_eq!(pr.reviewers, vec!["octocat".to_owned()]);
    assert_eq!(
        target["pull_request"]["pr"]["url"]
            .as_str()
            .map(|u| u.ends_with(&format!("/pull/{}", pr.number))),
        Some(true),
        "{target:#}"
    );

    // A changed export updates the same PR; no second one.
    let v2 = setup.zip(
        "v2.zip",
        &[
            ("colors.css", b":root { --primary: red; }\n"),
            ("spacing.css", b":root { --gap: 4px; }\n"),
        ],
    );
    let second = setup.run("deliver", &v2).await;
    assert_eq!(second["targets"][0]["action"], "push");
    assert_eq!(second["targets"][0]["pull_request"]["action"], "updated");
    let prs = setup.fake.prs(REPO);
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].title, "Tokens v0.1: 2 files");
    assert_eq!(
        setup.repo.read_file(HEAD, "tokens/spacing.css"),
        b":root { --gap: 4px; }\n"
    );

    // An export equal to the base: the PR is closed with a comment, its branch deleted
    // (only while it is still where Courier left it: the fake models the API, the branch
    // lives on the git server, so the fake is told where it points, as GitHub would know).
    let tip = setup.repo.rev_parse(HEAD).unwrap();
    setup.fake.move_branch(REPO, HEAD, &tip);
    let base = setup.zip("base.zip", &[("colors.css", b"old\n")]);
    let third = setup.run("deliver", &base).await;
    assert_eq!(third["targets"][0]["action"], "no_changes");
    assert_eq!(third["targets"][0]["pull_request"]["action"], "closed");
    let prs = setup.fake.prs(REPO);
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].state, "closed");
    assert!(!prs[0].comments.is_empty(), "the close says why");
    assert!(!setup.fake.has_branch(REPO, HEAD));

    setup.fake.assert_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_comments_once_on_the_open_pull_request() {
    let setup = Setup::new().await;
    setup
        .fake
        .seed_pr(REPO, HEAD, "main", "Tokens", "body", "open");
    let failed = SEED_V1.replace("\"Success\"", "\"Failed\"");
    let payload = setup.dir.path().join("failed.json");
    std::fs::write(&payload, failed).unwrap();
    let zip = setup.zip("unused.zip", &[("a.css", b"a")]);
    let run = |payload: PathBuf| {
        let setup = &setup;
        let zip = zip.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_courier"))
                .current_dir(setup.dir.path())
                .args(["deliver", "--json", "--config"])
                .arg(&setup.config)
                .arg("--payload")
                .arg(&payload)
                .arg("--artifact")
                .arg(&zip)
                .env("TEST_GITHUB_TOKEN", TOKEN)
                .env("HOME", setup.dir.path())
                .output()
                .await
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(3),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        }
    };
    let first = run(payload.clone()).await;
    assert_eq!(
        first["targets"][0]["pull_request"]["status"], "commented",
        "{first:#}"
    );
    assert_eq!(first["targets"][0]["pull_request"]["pr"], 1);
    let again = run(payload).await;
    assert_eq!(
        again["targets"][0]["pull_request"]["status"], "already_reported",
        "{again:#}"
    );
    let pr = &setup.fake.prs(REPO)[0];
    assert_eq!(pr.comments.len(), 1, "one comment per job");
    assert!(
        pr.comments[0]
            .1
            .contains("Finished exporting source colors"),
        "the log tail is quoted"
    );
    assert_eq!(
        setup.repo.rev_parse(HEAD),
        None,
        "nothing is pushed for a failed job"
    );
}
