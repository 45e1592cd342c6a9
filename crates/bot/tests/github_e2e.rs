//! `courier deliver` and `courier dry-run` end to end with a GitHub target: the branch goes
//! to a real smart-HTTP git server, the pull request to the stateful GitHub fake, driven
//! by the real octocrab client inside the real binary. Every request the fake receives is
//! checked against GitHub's official REST description when the fake is dropped.

use std::path::{Path, PathBuf};

mod common;

use common::forge::{Forge, HEAD, Kind, TOKEN};
use common::serve::SEED_V1;
use courier_testkit::write_zip;
use serde_json::Value;

const REPO: &str = "acme/web";

/// A GitHub target, and the seed's payload with its one log line as a warning (so the
/// description quotes it) in `payload.json`.
fn github() -> Forge {
    let forge = Forge::start(Kind::GitHub);
    let payload = SEED_V1.replace("\"type\": \"info\"", "\"type\": \"warning\"");
    std::fs::write(forge.dir.path().join("payload.json"), payload).unwrap();
    forge
}

/// `files` zipped as `name` in the world's directory.
fn zip(forge: &Forge, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let path = forge.dir.path().join(name);
    write_zip(&path, files);
    path
}

/// `courier <command> --json` for `payload.json` with the export in `zip`; its JSON
/// report, and its exit code.
fn run_with(forge: &Forge, command: &str, payload: &Path, zip: &Path) -> (Option<i32>, Value) {
    let payload = payload.to_str().unwrap();
    let zip = zip.to_str().unwrap();
    let out = forge.courier(&[command, "--json", "--payload", payload, "--artifact", zip]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(TOKEN), "the token leaked: {all}");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{command} printed no JSON ({e}): {all}"));
    (out.status.code(), report)
}

fn run(forge: &Forge, command: &str, zip: &Path) -> Value {
    run_with(forge, command, &forge.dir.path().join("payload.json"), zip).1
}

#[test]
fn deliver_opens_then_updates_then_closes_one_pull_request() {
    let setup = github();
    let v1 = zip(
        &setup,
        "v1.zip",
        &[("colors.css", b":root { --primary: blue; }\n")],
    );

    // A dry run plans the PR with read-only calls and changes nothing.
    let plan = run(&setup, "dry-run", &v1);
    let target = &plan["targets"][0];
    assert_eq!(target["action"], "push");
    assert_eq!(target["pull_request"]["action"], "create_pr");
    assert_eq!(target["pull_request"]["title"], "Tokens v0.1: 1 files");
    assert!(setup.github().prs(REPO).is_empty());
    assert_eq!(setup.repo.rev_parse(HEAD), None);

    // First delivery: the branch holds the export and one PR is opened, decorated.
    let first = run(&setup, "deliver", &v1);
    assert_eq!(first["status"], "delivered", "{first:#}");
    let target = &first["targets"][0];
    assert_eq!(target["pull_request"]["action"], "created");
    // Where the time went: the export's phases once for the job, the rest per target.
    for phase in ["download", "validate"] {
        assert!(first["timings"][phase].is_u64(), "{phase}: {first:#}");
    }
    for phase in ["plan", "fetch", "build", "push", "pull_request", "total"] {
        assert!(target["timings"][phase].is_u64(), "{phase}: {target:#}");
    }
    // And each forge call, by name, in the order first called.
    let calls: Vec<&str> = target["forge_calls"]
        .as_array()
        .unwrap_or_else(|| panic!("forge calls in {target:#}"))
        .iter()
        .map(|c| c["call"].as_str().unwrap())
        .collect();
    assert_eq!(
        calls,
        [
            "push credentials",
            "find open pull request",
            "find closed pull request",
            "create pull request",
            "decorate pull request"
        ],
        "{target:#}"
    );
    assert_eq!(
        setup.repo.read_file(HEAD, "tokens/colors.css"),
        b":root { --primary: blue; }\n"
    );
    let prs = setup.github().prs(REPO);
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
    let v2 = zip(
        &setup,
        "v2.zip",
        &[
            ("colors.css", b":root { --primary: red; }\n"),
            ("spacing.css", b":root { --gap: 4px; }\n"),
        ],
    );
    let second = run(&setup, "deliver", &v2);
    assert_eq!(second["targets"][0]["action"], "push");
    assert_eq!(second["targets"][0]["pull_request"]["action"], "updated");
    let prs = setup.github().prs(REPO);
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
    setup.github().move_branch(REPO, HEAD, &tip);
    let base = zip(&setup, "base.zip", &[("colors.css", b"old\n")]);
    let third = run(&setup, "deliver", &base);
    assert_eq!(third["targets"][0]["action"], "no_changes");
    assert_eq!(third["targets"][0]["pull_request"]["action"], "closed");
    let prs = setup.github().prs(REPO);
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].state, "closed");
    assert!(!prs[0].comments.is_empty(), "the close says why");
    assert!(!setup.github().has_branch(REPO, HEAD));

    setup.github().assert_contract();
}

#[test]
fn a_failed_job_comments_once_on_the_open_pull_request() {
    let setup = github();
    setup
        .github()
        .seed_pr(REPO, HEAD, "main", "Tokens", "body", "open");
    let failed = SEED_V1.replace("\"Success\"", "\"Failed\"");
    let payload = setup.dir.path().join("failed.json");
    std::fs::write(&payload, failed).unwrap();
    let zip = zip(&setup, "unused.zip", &[("a.css", b"a")]);
    let run = || {
        let (code, report) = run_with(&setup, "deliver", &payload, &zip);
        assert_eq!(code, Some(3), "a failed job exits 3: {report:#}");
        report
    };
    let first = run();
    assert_eq!(
        first["targets"][0]["pull_request"]["status"], "commented",
        "{first:#}"
    );
    assert_eq!(first["targets"][0]["pull_request"]["pr"], 1);
    let again = run();
    assert_eq!(
        again["targets"][0]["pull_request"]["status"], "already_reported",
        "{again:#}"
    );
    let pr = &setup.github().prs(REPO)[0];
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
