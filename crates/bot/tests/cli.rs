//! The `courier` binary end to end: `validate`, `inspect`, `dry-run` and `deliver`, run as
//! a user runs them, against a real smart-HTTP git server with token auth. What landed in
//! the repository is checked with the git CLI, not with libgit2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use courier_testkit::{BareRepo, GitServer, make_bare_repo, write_zip};
use serde_json::Value;

const GIT_TOKEN: &str = "git-token-3f9c2a7d51e84b06";
const SEED_V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/payloads/v1-seed.json"
);

struct Setup {
    dir: tempfile::TempDir,
    _server: GitServer,
    repo: BareRepo,
    config: PathBuf,
}

impl Setup {
    /// A repository `web` on the git server with a base branch `main`, and a config that
    /// routes hook 5 to `tokens/` of it with purge on.
    fn new() -> Setup {
        Setup::with_token(GIT_TOKEN)
    }

    fn with_token(config_token: &str) -> Setup {
        Setup::build(config_token, None)
    }

    /// A repository whose default branch is `default`, and a target without `branch`.
    fn on_default_branch(default: &str) -> Setup {
        Setup::build(GIT_TOKEN, Some(default))
    }

    fn build(config_token: &str, default_branch: Option<&str>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let repos = dir.path().join("repos");
        std::fs::create_dir_all(&repos).unwrap();
        let repo = make_bare_repo(
            &repos,
            "web",
            default_branch.unwrap_or("main"),
            &[("README.md", b"# web\n"), ("tokens/old.css", b"old\n")],
        );
        let branch = match default_branch {
            None => "        branch: main\n",
            Some(_) => "",
        };
        let server = GitServer::start(&repos, GIT_TOKEN);
        let config = dir.path().join("courier.yaml");
        std::fs::write(
            &config,
            format!(
                r#"
data_dir: ./data
platform:
  insecure_hosts: ["127.0.0.1"]
connections:
  server:
    kind: git
    token: "${{TEST_GIT_TOKEN}}"
hooks:
  - match: {{ hook_id: "5" }}
    targets:
      - connection: server
        repository: {url}
{branch}        relative_path: tokens
        purge_directory: true
        commit_message: "Tokens from {{{{ design_system.name }}}} {{{{ version.version }}}}"
"#,
                url = server.url("web"),
            ),
        )
        .unwrap();
        let setup = Setup {
            dir,
            _server: server,
            repo,
            config,
        };
        std::fs::write(setup.path("token"), config_token).unwrap();
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn zip(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let path = self.path(name);
        write_zip(&path, files);
        path
    }

    fn courier(&self, args: &[&str]) -> Output {
        let token = std::fs::read_to_string(self.path("token")).unwrap();
        courier_in(self.dir.path(), args, &[("TEST_GIT_TOKEN", token.as_str())])
    }

    /// `courier <command>` for the seed with the export in `zip`, on this configuration.
    fn invocation<'a>(&'a self, command: &'a str, zip: &'a Path) -> Vec<&'a str> {
        vec![
            command,
            "--config",
            self.config.to_str().unwrap(),
            "--payload",
            SEED_V1,
            "--artifact",
            zip.to_str().unwrap(),
        ]
    }

    /// What `dry-run` prints for a person (no `--json`).
    fn dry_run_text(&self, zip: &Path) -> String {
        text(&self.courier(&self.invocation("dry-run", zip)).stdout)
    }

    fn run(&self, command: &str, zip: &Path, extra: &[&str]) -> (Output, Value) {
        let mut args = self.invocation(command, zip);
        args.push("--json");
        args.extend_from_slice(extra);
        let out = self.courier(&args);
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{command} printed no JSON ({e}): stdout {} stderr {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
        (out, json)
    }
}

fn courier_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    courier_testkit::without_proxy_env(&mut cmd)
        .current_dir(cwd)
        .args(args)
        .env_remove("COURIER_CONFIG")
        .env_remove("COURIER_PAYLOAD")
        .env_remove("COURIER_ARTIFACT")
        .env("COURIER_LOG", "info")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run courier")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const HEAD: &str = "courier/5/main-tokens-e0db30c6";

fn tokens_v1() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("colors.css", b":root { --primary: #1463ff; }\n".as_slice()),
        (
            "nested/typography.css",
            b":root { --body: 16px; }\n".as_slice(),
        ),
    ]
}

#[test]
fn dry_run_plans_and_pushes_nothing() {
    let setup = Setup::new();
    let zip = setup.zip("export.zip", &tokens_v1());
    let (out, report) = setup.run("dry-run", &zip, &["--diff"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(report["mode"], "dry_run");
    assert_eq!(report["status"], "planned");
    let target = &report["targets"][0];
    assert_eq!(target["action"], "push");
    assert_eq!(target["pushed"], false);
    assert_eq!(target["head_branch"], HEAD);
    assert_eq!(
        target["files"]["added"],
        serde_json::json!(["tokens/colors.css", "tokens/nested/typography.css"])
    );
    assert_eq!(
        target["files"]["deleted"],
        serde_json::json!(["tokens/old.css"])
    );
    let diff = target["diff"].as_str().expect("a diff");
    assert!(diff.contains("+:root { --primary: #1463ff; }"), "{diff}");
    assert!(diff.contains("-old"), "{diff}");
    // Nothing reached the server: the branch does not exist there.
    assert_eq!(setup.repo.rev_parse(HEAD), None);
}

/// The dry run says what changed in the tokens against the base, in `--json` and in the
/// text a person reads; a value with a terminal escape is printed, not obeyed.
#[test]
fn dry_run_shows_the_token_changes() {
    let setup = Setup::new();
    setup.repo.commit(
        "main",
        &[(
            "tokens/colors.css",
            Some(b":root { --primary: #0969da; --radius-pill: 999px; --gone: 1px; }\n".as_slice()),
        )],
        "tokens a person wrote",
    );
    let zip = setup.zip(
        "export.zip",
        &[(
            "colors.css",
            b":root { --primary: #0550ae; --radius-full: 999px; --bell: \x1bcred; }\n".as_slice(),
        )],
    );
    let (out, report) = setup.run("dry-run", &zip, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let tokens = &report["targets"][0]["tokens"];
    assert_eq!(
        tokens["groups"],
        serde_json::json!([{
            "path": "tokens/colors.css",
            "context": ":root",
            "changes": [
                {"kind": "added", "name": "bell", "value": "\u{1b}cred"},
                {"kind": "removed", "name": "gone", "value": "1px"},
                {"kind": "changed", "name": "primary", "old": "#0969da", "new": "#0550ae"},
                {"kind": "renamed", "from": "radius-pill", "name": "radius-full", "value": "999px"},
            ],
        }]),
        "{report}"
    );
    assert_eq!(
        (
            &tokens["changed"],
            &tokens["added"],
            &tokens["removed"],
            &tokens["renamed"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1)
        )
    );

    let printed = setup.dry_run_text(&zip);
    for line in [
        "  tokens: 1 token changed, 1 added, 1 removed, 1 renamed in 1 file",
        "    tokens/colors.css (:root)",
        "      ~ primary: #0969da -> #0550ae",
        "      + bell: \\u{1b}cred",
        "      - gone: 1px",
        "      > radius-full (renamed from radius-pill): 999px",
    ] {
        assert!(printed.contains(line), "{line:?} in:\n{printed}");
    }
    assert!(!printed.contains('\x1b'), "{printed}");
}

/// A target without `branch` is delivered onto the repository's default branch (here
/// `trunk`, where the remote's HEAD points), while its head branch keeps the name it had
/// when `main` was the default, so upgrading opens no second pull request.
#[test]
fn without_a_branch_the_repository_default_branch_is_the_base() {
    let setup = Setup::on_default_branch("trunk");
    let zip = setup.zip("export.zip", &tokens_v1());
    let (out, report) = setup.run("deliver", &zip, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let target = &report["targets"][0];
    assert_eq!(target["base"], "trunk", "{report}");
    assert_eq!(target["head_branch"], HEAD, "{report}");
    assert_eq!(target["action"], "push", "{report}");
    let repo = &setup.repo;
    let parent = courier_testkit::git(repo.path.as_path(), ["rev-parse", &format!("{HEAD}^")]);
    assert_eq!(Some(parent.trim()), repo.rev_parse("trunk").as_deref());
    assert_eq!(
        repo.read_file(HEAD, "tokens/colors.css"),
        b":root { --primary: #1463ff; }\n"
    );
}

/// The text output lists the first 200 token changes of a target and counts the rest;
/// `--json` has them all.
#[test]
fn dry_run_text_lists_the_first_token_changes() {
    let setup = Setup::new();
    let css: String = (0..300)
        .map(|i| format!(":root {{ --t{i:03}: {i}px; }}\n"))
        .collect();
    let zip = setup.zip("export.zip", &[("colors.css", css.as_bytes())]);
    let (_, report) = setup.run("dry-run", &zip, &[]);
    let groups = &report["targets"][0]["tokens"]["groups"];
    assert_eq!(groups[0]["changes"].as_array().map(Vec::len), Some(300));
    let printed = setup.dry_run_text(&zip);
    let listed = printed
        .lines()
        .filter(|l| l.starts_with("      + t"))
        .count();
    assert_eq!(listed, 200, "{printed}");
    assert!(
        printed.contains("    ... and 100 more token changes (`--json` lists them all)"),
        "{printed}"
    );
}

#[test]
fn deliver_pushes_then_converges() {
    let setup = Setup::new();
    let zip = setup.zip("export.zip", &tokens_v1());

    let (out, report) = setup.run("deliver", &zip, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(report["status"], "delivered");
    let target = &report["targets"][0];
    assert_eq!(target["action"], "push");
    assert_eq!(target["pushed"], true);
    let pushed = target["commit"].as_str().unwrap().to_owned();
    assert_eq!(setup.repo.rev_parse(HEAD).as_deref(), Some(pushed.as_str()));
    assert_eq!(
        setup.repo.read_file(HEAD, "tokens/colors.css"),
        b":root { --primary: #1463ff; }\n"
    );
    assert_eq!(setup.repo.read_file(HEAD, "README.md"), b"# web\n");
    let paths: Vec<String> = setup
        .repo
        .ls_tree(HEAD)
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(
        !paths.iter().any(|p| p == "tokens/old.css"),
        "purge deletes old files: {paths:?}"
    );
    let message = setup.repo.message(HEAD);
    assert!(
        message.starts_with("Tokens from Example Design System v0.1"),
        "{message}"
    );
    // The trailer names the job and the target by its stable id (derived from the
    // connection, repository, base branch and path).
    let trailer = message.lines().last().unwrap();
    assert!(
        trailer.starts_with("Courier-Delivery: 1/6 server:") && trailer.ends_with("@main:tokens"),
        "{message}"
    );

    // The same export again: nothing to push, the branch stays where it is.
    let (out, report) = setup.run("deliver", &zip, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report["targets"][0]["action"], "up_to_date");
    assert_eq!(report["targets"][0]["pushed"], false);
    assert_eq!(setup.repo.rev_parse(HEAD).as_deref(), Some(pushed.as_str()));

    // A changed export replaces Courier's commit: still one commit on the base.
    let mut changed = tokens_v1();
    changed[0].1 = b":root { --primary: #ff0000; }\n";
    let zip2 = setup.zip("export2.zip", &changed);
    let (_, report) = setup.run("deliver", &zip2, &[]);
    assert_eq!(report["targets"][0]["action"], "push");
    let base = setup.repo.rev_parse("main").unwrap();
    assert_eq!(setup.repo.parents(HEAD), vec![base]);
    assert_eq!(
        setup.repo.read_file(HEAD, "tokens/colors.css"),
        b":root { --primary: #ff0000; }\n"
    );

    // An export equal to what the base already has: no changes.
    let zip3 = setup.zip("export3.zip", &[("old.css", b"old\n")]);
    let (_, report) = setup.run("deliver", &zip3, &[]);
    assert_eq!(report["targets"][0]["action"], "no_changes");
}

#[test]
fn a_wrong_token_fails_fast_with_auth_and_never_shows_the_token() {
    let wrong = "wrong-token-9d8c7b6a5f4e3d2c";
    let setup = Setup::with_token(wrong);
    let zip = setup.zip("export.zip", &tokens_v1());
    let started = Instant::now();
    let (out, report) = setup.run("deliver", &zip, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(report["status"], "failed");
    assert_eq!(report["targets"][0]["error_kind"], "auth");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(wrong), "the token leaked: {all}");
    assert_eq!(setup.repo.rev_parse(HEAD), None);
}

#[test]
fn the_token_never_lands_in_output_logs_or_the_cache() {
    let setup = Setup::new();
    let zip = setup.zip("export.zip", &tokens_v1());
    let (dry, _) = setup.run("dry-run", &zip, &["--diff"]);
    let (real, _) = setup.run("deliver", &zip, &[]);
    for out in [&dry, &real] {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains(GIT_TOKEN), "the token leaked: {all}");
    }
    let mut stack = vec![setup.path("data")];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let bytes = std::fs::read(&path).unwrap();
                let hit = bytes
                    .windows(GIT_TOKEN.len())
                    .any(|w| w == GIT_TOKEN.as_bytes());
                assert!(!hit, "the token is in {}", path.display());
            }
        }
    }
    assert!(files > 0, "the repository cache should exist under data/");
}

#[test]
fn inspect_reports_event_routing_and_export() {
    let setup = Setup::new();
    let zip = setup.zip("export.zip", &tokens_v1());
    let out = setup.courier(&[
        "inspect",
        "--payload",
        SEED_V1,
        "--artifact",
        zip.to_str().unwrap(),
        "--config",
        setup.config.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["deliverable"], true);
    assert_eq!(report["repaired"], true, "the v1 seed has a trailing comma");
    assert_eq!(report["routing"]["status"], "routed");
    assert_eq!(report["routing"]["targets"][0]["head_branch"], HEAD);
    assert_eq!(report["export"]["status"], "valid");
    assert_eq!(report["export"]["files"], 2);
}

/// An export with no file, for a target that purges its directory: `inspect` and
/// `deliver` give the same verdict, for the same reason.
#[test]
fn inspect_and_deliver_judge_an_empty_export_alike() {
    let setup = Setup::new();
    let zip = setup.zip("empty.zip", &[]);
    let out = setup.courier(&[
        "inspect",
        "--payload",
        SEED_V1,
        "--artifact",
        zip.to_str().unwrap(),
        "--config",
        setup.config.to_str().unwrap(),
        "--json",
    ]);
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(3), "{inspected}");
    assert_eq!(inspected["deliverable"], false);
    let reason = inspected["reason"].as_str().unwrap();
    assert!(reason.contains("the export holds no file"), "{reason}");

    let (out, delivered) = setup.run("deliver", &zip, &[]);
    assert_eq!(out.status.code(), Some(1), "{delivered}");
    let target = &delivered["targets"][0];
    assert_eq!(target["action"], "error");
    assert_eq!(target["error_kind"], "empty_export");
    let message = target["message"].as_str().unwrap();
    assert!(reason.ends_with(message), "{reason} / {message}");
    assert_eq!(setup.repo.rev_parse(HEAD), None, "nothing pushed");
}

#[test]
fn inspect_names_the_rule_of_a_hostile_archive() {
    let setup = Setup::new();
    let zip = setup.zip("evil.zip", &[("ok.css", b"x"), ("../escape.css", b"y")]);
    let out = setup.courier(&[
        "inspect",
        "--payload",
        SEED_V1,
        "--artifact",
        zip.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["export"]["status"], "rejected");
    assert_eq!(report["export"]["entry"], "../escape.css");
    assert_eq!(report["deliverable"], false);
}

#[test]
fn inspect_of_a_failed_job_says_why_it_is_not_delivered() {
    let setup = Setup::new();
    let body = std::fs::read_to_string(SEED_V1)
        .unwrap()
        .replace("\"Success\"", "\"Failed\"");
    std::fs::write(setup.path("failed.json"), body).unwrap();
    let out = setup.courier(&["inspect", "--payload", "failed.json"]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("would deliver: no: job 6 has status Failed"),
        "{stdout}"
    );
}

/// `deliver` treats a job by its status as the server does: a job still in progress has
/// nothing to deliver and nothing to report; one that failed is reported on the targets.
#[test]
fn deliver_reports_a_failed_job_but_not_one_in_progress() {
    let setup = Setup::new();
    let zip = setup.zip("export.zip", &tokens_v1());
    for (status, targets) in [("InProgress", 0), ("Failure", 1)] {
        let body = std::fs::read_to_string(SEED_V1)
            .unwrap()
            .replace("\"Success\"", &format!("\"{status}\""));
        std::fs::write(setup.path("job.json"), body).unwrap();
        let out = setup.courier(&[
            "deliver",
            "--config",
            setup.config.to_str().unwrap(),
            "--payload",
            "job.json",
            "--artifact",
            zip.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{status}: {}",
            text(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["status"], "nothing_to_deliver", "{status}: {report}");
        assert_eq!(
            report["targets"].as_array().unwrap().len(),
            targets,
            "{status}: {report}"
        );
    }
    assert_eq!(setup.repo.rev_parse(HEAD), None, "nothing pushed");
}

#[test]
fn a_malformed_payload_is_invalid_and_names_the_field() {
    let setup = Setup::new();
    std::fs::write(
        setup.path("bad.json"),
        br#"{"event":"job:updated","workspace":{"id":"1","name":"w"},"job":{"id":6}}"#,
    )
    .unwrap();
    let out = setup.courier(&["inspect", "--payload", "bad.json"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invalid payload: job.status: missing"),
        "{stderr}"
    );
}

#[test]
fn validate_prints_ok_or_every_problem() {
    let setup = Setup::new();
    let out = setup.courier(&["validate", "--config", setup.config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ok");

    std::fs::write(
        setup.path("bad.yaml"),
        "connections:\n  a: { kind: git }\nhooks:\n  - match: { hook_id: \"5\" }\n    targets:\n      - { connection: nope, repository: ./r.git, relative_path: ../up }\n",
    )
    .unwrap();
    let out = setup.courier(&["validate", "--config", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hooks[0].targets[0].connection"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hooks[0].targets[0].relative_path"),
        "{stderr}"
    );
}
