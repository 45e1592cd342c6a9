//! The same scenarios through `courier serve` on each forge: GitHub, GitLab and Azure
//! DevOps, each a stateful fake driven by the real SDK client inside the real binary, with
//! the branch on a real smart-HTTP git server. A scenario is written once, over [`Forge`];
//! every request each fake received is checked against the forge's official description.

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use common::github::HEAD;
use common::serve::{ArtifactServer, ServeCommand, Server, seed_payload, wait_until, with_job_id};
use common::world::PushHold;
use courier_testkit::forges::azure_fake::{AzureFake, Route};
use courier_testkit::forges::fault::Fault;
use courier_testkit::forges::github_fake::GitHubFake;
use courier_testkit::forges::gitlab_fake::GitLabFake;
use courier_testkit::forges::hold::{Hold, HoldMode};
use courier_testkit::{BareRepo, GitServer, make_bare_repo, zip_bytes};

const TOKEN: &str = "forge-token-3f9a1c7e5b2d";
const HOOK_TOKEN: &str = "webhook-token-forges-0123";
const ADMIN_TOKEN: &str = "admin-token-forges-4567";
/// Bound on waiting for a held request to arrive or settle.
const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Kind {
    GitHub,
    GitLab,
    Azure,
}

enum Fake {
    GitHub(GitHubFake),
    GitLab(GitLabFake),
    Azure(AzureFake),
}

/// A pull (merge) request as the scenarios see it, whatever the forge.
#[derive(Debug)]
struct Pr {
    number: u64,
    open: bool,
    title: String,
    /// The branch it targets.
    base: String,
    /// The description as the forge stores it.
    body: String,
    comments: Vec<String>,
    labels: Vec<String>,
    /// As the forge stores them: GitHub logins, GitLab user ids, Azure identity ids.
    reviewers: Vec<String>,
    /// Set to merge (complete, on Azure) once its checks pass.
    auto_merge: bool,
}

/// One forge with a repository holding `tokens/colors.css`, the git server behind it,
/// the artifact server, and a configuration routing hook 5 to it.
struct Forge {
    kind: Kind,
    dir: tempfile::TempDir,
    _git: GitServer,
    repo: BareRepo,
    artifacts: ArtifactServer,
    /// Declared before the runtime that serves it, so it is dropped first.
    fake: Fake,
    _runtime: tokio::runtime::Runtime,
    config: PathBuf,
    /// The reviewer the target asks for, as the forge stores it.
    reviewer: String,
}

impl Forge {
    fn start(kind: Kind) -> Forge {
        Forge::on_store(kind, None)
    }

    /// The same with `store:` set (a PostgreSQL URL); `None`: SQLite in the data directory.
    fn on_store(kind: Kind, store: Option<String>) -> Forge {
        Forge::build(kind, store, "", None)
    }

    /// The same with more settings for the target (YAML lines, indented as its keys).
    fn with_target(kind: Kind, settings: &str) -> Forge {
        Forge::build(kind, None, settings, None)
    }

    /// A repository whose default branch is `default`, and a target that names no
    /// `branch`.
    fn with_default_branch(kind: Kind, default: &str) -> Forge {
        Forge::build(kind, None, "", Some(default))
    }

    fn build(
        kind: Kind,
        store: Option<String>,
        target_settings: &str,
        default_branch: Option<&str>,
    ) -> Forge {
        let store = store
            .map(|url| format!("store: {url}\n"))
            .unwrap_or_default();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        // Where each forge's clone URL puts the repository under `git_url`.
        let (slug, repo_dir) = match kind {
            Kind::GitHub => ("acme/web", root.join("acme")),
            Kind::GitLab => ("acme/design/web", root.join("acme/design")),
            Kind::Azure => ("Design/web", root.join("contoso/Design/_git")),
        };
        std::fs::create_dir_all(&repo_dir).unwrap();
        let repo = make_bare_repo(
            &repo_dir,
            "web",
            default_branch.unwrap_or("main"),
            &[("README.md", b"# web\n"), ("tokens/colors.css", b"old\n")],
        );
        let git = GitServer::start(&root, TOKEN);
        let artifacts = ArtifactServer::start(export_v1());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let git_url = git.url("");
        let git_url = git_url.trim_end_matches(".git");
        // The reviewer as the configuration names it, and as the forge stores it.
        let (fake, connection, (reviewer_name, reviewer)) = runtime.block_on(async {
            match kind {
                Kind::GitHub => {
                    let fake = GitHubFake::start().await;
                    fake.accept_token(TOKEN);
                    fake.add_repo(slug);
                    fake.add_branch(slug, HEAD);
                    fake.add_branch(slug, default_branch.unwrap_or("main"));
                    fake.add_collaborator(slug, "octocat");
                    let api = fake.api_url();
                    let yaml = format!("kind: github\n    api_url: {api}");
                    let reviewer = ("octocat".to_owned(), "octocat".to_owned());
                    (Fake::GitHub(fake), yaml, reviewer)
                }
                Kind::GitLab => {
                    let fake = GitLabFake::start().await;
                    fake.accept_token(TOKEN);
                    fake.add_project(slug);
                    fake.add_branch(slug, HEAD);
                    fake.add_branch(slug, default_branch.unwrap_or("main"));
                    let id = fake.add_user("designer", &[slug]);
                    let url = fake.base_url();
                    let reviewer = ("designer".to_owned(), id.to_string());
                    (
                        Fake::GitLab(fake),
                        format!("kind: gitlab\n    url: {url}"),
                        reviewer,
                    )
                }
                Kind::Azure => {
                    let fake = AzureFake::start("contoso").await;
                    fake.accept_token(TOKEN, "courier-identity");
                    fake.add_repo(slug);
                    fake.add_branch(slug, HEAD);
                    fake.add_branch(slug, default_branch.unwrap_or("main"));
                    let id = "5f0a2c1e-8b7d-4e3a-9c6f-0d1b2a3c4e5f";
                    fake.add_identity(id);
                    let url = fake.base_url();
                    let yaml = format!("kind: azure\n    organization: contoso\n    url: {url}");
                    (Fake::Azure(fake), yaml, (id.to_owned(), id.to_owned()))
                }
            }
        });
        let branch = match default_branch {
            None => "        branch: main\n",
            Some(_) => "",
        };
        let config = dir.path().join("courier.yaml");
        std::fs::write(
            &config,
            format!(
                r#"
listen: 127.0.0.1:0
data_dir: ./data
{store}workers: 2
webhook: {{ tokens: ["{HOOK_TOKEN}"] }}
admin: {{ tokens: ["{ADMIN_TOKEN}"] }}
platform:
  insecure_hosts: ["127.0.0.1"]
connections:
  forge:
    {connection}
    token: "${{TEST_FORGE_TOKEN}}"
    git_url: {git_url}
hooks:
  - match: {{ hook_id: "5" }}
    targets:
      - connection: forge
        repository: {slug}
{branch}        relative_path: tokens
        purge_directory: true
        pull_request_title: "Tokens {{{{ version.version }}}}"
        labels: [design-tokens]
        reviewers: [{reviewer_name}]
{target_settings}"#
            ),
        )
        .unwrap();
        Forge {
            kind,
            dir,
            _git: git,
            repo,
            artifacts,
            fake,
            _runtime: runtime,
            config,
            reviewer,
        }
    }

    fn slug(&self) -> &'static str {
        match self.kind {
            Kind::GitHub => "acme/web",
            Kind::GitLab => "acme/design/web",
            Kind::Azure => "Design/web",
        }
    }

    fn serve(&self) -> Server {
        self.serve_as("serve.log")
    }

    fn serve_as(&self, log: &str) -> Server {
        ServeCommand::new(self.dir.path(), &self.config, &self.dir.path().join(log))
            .env("TEST_FORGE_TOKEN", TOKEN)
            .start()
    }

    /// The seed's job with this id, its artifact on the local artifact server.
    fn job(&self, id: &str) -> String {
        with_job_id(&seed_payload(&self.artifacts.url()), id)
    }

    fn serve_export(&self, files: &[(&str, &[u8])]) {
        *self.artifacts.zip.lock().unwrap() = zip_bytes(files);
    }

    /// Pull requests from the head branch, oldest first.
    fn prs(&self) -> Vec<Pr> {
        let slug = self.slug();
        match &self.fake {
            Fake::GitHub(fake) => fake
                .prs(slug)
                .into_iter()
                .filter(|p| p.head == HEAD)
                .map(|p| Pr {
                    number: p.number,
                    open: p.state == "open",
                    title: p.title,
                    base: p.base,
                    body: p.body,
                    comments: p.comments.into_iter().map(|(_, body)| body).collect(),
                    labels: p.labels,
                    reviewers: p.reviewers,
                    auto_merge: p.auto_merge,
                })
                .collect(),
            Fake::GitLab(fake) => fake
                .mrs(slug)
                .into_iter()
                .filter(|m| m.source_branch == HEAD)
                .map(|m| Pr {
                    number: m.iid,
                    open: m.state == "opened",
                    title: m.title,
                    base: m.target_branch,
                    body: m.description,
                    comments: m
                        .notes
                        .into_iter()
                        .filter(|(_, _, system)| !system)
                        .map(|(_, body, _)| body)
                        .collect(),
                    labels: m.labels,
                    reviewers: m.reviewer_ids.iter().map(u64::to_string).collect(),
                    auto_merge: m.auto_merge,
                })
                .collect(),
            Fake::Azure(fake) => fake
                .prs()
                .into_iter()
                .filter(|p| p.source == format!("refs/heads/{HEAD}"))
                .map(|p| Pr {
                    number: p.id,
                    open: p.status == "active",
                    title: p.title,
                    base: p.target.trim_start_matches("refs/heads/").to_owned(),
                    body: p.description,
                    comments: p
                        .threads
                        .into_iter()
                        .flat_map(|t| t.comments.into_iter().map(|(_, text, _)| text))
                        .collect(),
                    labels: p.labels,
                    reviewers: p.reviewers,
                    auto_merge: p.auto_complete_set_by.is_some(),
                })
                .collect(),
        }
    }

    /// A pull request from the head branch opened by an earlier export.
    fn seed_open_pr(&self) -> u64 {
        let slug = self.slug();
        let (title, body) = ("Tokens v0.0", "The previous export.");
        match &self.fake {
            Fake::GitHub(fake) => fake.seed_pr(slug, HEAD, "main", title, body, "open"),
            Fake::GitLab(fake) => fake.seed_mr(slug, HEAD, "main", title, body, "opened"),
            Fake::Azure(fake) => fake.seed_pr(slug, HEAD, "main", title, body, "active"),
        }
    }

    /// The fakes model the forge's API, while the branch lives on the git server: after a
    /// push, tell the fake where the head branch now points, as the forge would know.
    fn sync_head(&self) {
        let tip = self
            .repo
            .rev_parse(HEAD)
            .expect("the head branch was pushed");
        match &self.fake {
            Fake::GitHub(fake) => fake.move_branch(self.slug(), HEAD, &tip),
            Fake::GitLab(fake) => fake.move_branch(self.slug(), HEAD, &tip),
            Fake::Azure(fake) => fake.move_branch(self.slug(), HEAD, &tip),
        }
    }

    fn has_head_branch(&self) -> bool {
        match &self.fake {
            Fake::GitHub(fake) => fake.has_branch(self.slug(), HEAD),
            Fake::GitLab(fake) => fake.has_branch(self.slug(), HEAD),
            Fake::Azure(fake) => fake.has_branch(self.slug(), HEAD),
        }
    }

    /// Holds the next pull request creation (see [`HoldMode`]).
    fn hold_create(&self, mode: HoldMode) -> Hold {
        self.hold(Step::Create, mode)
    }

    /// Holds the next call of one step of the pull request's life.
    fn hold(&self, step: Step, mode: HoldMode) -> Hold {
        match (&self.fake, route(self.kind, step)) {
            (Fake::GitHub(fake), Call::Rest(method, path)) => fake.hold(method, path, mode),
            (Fake::GitLab(fake), Call::Rest(method, path)) => fake.hold(method, path, mode),
            (Fake::Azure(fake), Call::Azure(route)) => fake.hold(route, mode),
            _ => unreachable!("route() answers each forge in its own kind"),
        }
    }

    /// Holds the next comment on a pull request.
    fn hold_comment(&self, mode: HoldMode) -> Hold {
        self.hold(Step::Comment, mode)
    }

    /// The next pull request creation is answered 429 with `Retry-After: seconds`.
    fn rate_limit_next_create(&self, seconds: u64) {
        let fault = Fault::with_headers(
            429,
            "Too many requests",
            &[("retry-after", &seconds.to_string())],
        );
        self.fault_next(Step::Create, fault);
    }

    /// The next call of `step` is answered with `fault`.
    fn fault_next(&self, step: Step, fault: Fault) {
        match (&self.fake, route(self.kind, step)) {
            (Fake::GitHub(fake), Call::Rest(method, path)) => {
                fake.enqueue_fault(method, path, fault)
            }
            (Fake::GitLab(fake), Call::Rest(method, path)) => {
                fake.enqueue_fault(method, path, fault)
            }
            (Fake::Azure(fake), Call::Azure(route)) => fake.enqueue_fault(route, fault),
            _ => unreachable!("route() answers each forge in its own kind"),
        }
    }

    fn assert_contract(&self) {
        match &self.fake {
            Fake::GitHub(fake) => fake.assert_contract(),
            Fake::GitLab(fake) => fake.assert_contract(),
            Fake::Azure(fake) => fake.assert_contract(),
        }
    }

    fn provider(&self) -> &'static str {
        match self.kind {
            Kind::GitHub => "github",
            Kind::GitLab => "gitlab",
            Kind::Azure => "azure",
        }
    }
}

fn export_v1() -> Vec<u8> {
    zip_bytes(&[
        ("colors.css", b":root { --primary: #1463ff; }\n"),
        ("nested/typography.css", b":root { --body: 16px; }\n"),
    ])
}

/// Open (labelled, with its reviewer), then update for a newer export, then close when an
/// export equals the base.
fn opens_updates_and_closes(kind: Kind) {
    let forge = Forge::start(kind);
    let server = forge.serve();

    let first = server.post_event(HOOK_TOKEN, &forge.job("6"));
    let detail = server.wait_finished(ADMIN_TOKEN, &first);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert_eq!(prs.len(), 1, "{kind:?}: {prs:?}");
    assert!(
        prs[0].open && prs[0].title == "Tokens v0.1",
        "{kind:?}: {prs:?}"
    );
    let number = prs[0].number;
    assert_eq!(
        prs[0].labels,
        ["design-tokens"],
        "{kind:?}: decorated: {prs:?}"
    );
    assert_eq!(
        prs[0].reviewers,
        std::slice::from_ref(&forge.reviewer),
        "{kind:?}: {prs:?}"
    );
    assert_eq!(
        detail["delivery"]["warnings"],
        serde_json::json!([]),
        "{kind:?}: {detail}"
    );
    assert!(
        detail["delivery"]["pr_url"].as_str().is_some(),
        "{kind:?}: the PR's page is recorded: {detail}"
    );

    forge.serve_export(&[
        ("colors.css", b":root { --primary: #0550ae; }\n"),
        ("nested/typography.css", b":root { --body: 16px; }\n"),
    ]);
    let second = server.post_event(HOOK_TOKEN, &forge.job("7"));
    let detail = server.wait_finished(ADMIN_TOKEN, &second);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert_eq!(prs.len(), 1, "{kind:?}: updated, not a second one: {prs:?}");
    assert_eq!(
        forge.repo.read_file(HEAD, "tokens/colors.css"),
        b":root { --primary: #0550ae; }\n"
    );

    forge.serve_export(&[("colors.css", b"old\n")]);
    forge.sync_head();
    let third = server.post_event(HOOK_TOKEN, &forge.job("8"));
    let detail = server.wait_finished(ADMIN_TOKEN, &third);
    assert_eq!(
        detail["delivery"]["state"], "no_changes",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].number == number && !prs[0].open,
        "{kind:?}: closed: {prs:?}"
    );
    assert!(
        !forge.has_head_branch(),
        "{kind:?}: the head branch is deleted"
    );

    let (_, metrics) = common::serve::http(server.addr, "GET", "/metrics", "", "");
    let line = format!(
        "courier_deliveries_total{{outcome=\"delivered\",provider=\"{}\"}} 2",
        forge.provider()
    );
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    assert!(!server.log().contains(TOKEN), "{kind:?}: the token leaked");
    forge.assert_contract();
}

/// A person's commit on the bot's branch survives an export that equals the base: the
/// pull request stays open with one comment saying why, however often it happens.
fn a_persons_commit_is_never_destroyed(kind: Kind) {
    let forge = Forge::start(kind);
    let server = forge.serve();
    let first = server.post_event(HOOK_TOKEN, &forge.job("6"));
    let detail = server.wait_finished(ADMIN_TOKEN, &first);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let fixup = forge.repo.commit(
        HEAD,
        &[(
            "tokens/colors.css",
            Some(b":root { --primary: #1463ff; } /* reviewed */\n"),
        )],
        "A reviewer's fix-up",
    );

    forge.sync_head();
    forge.serve_export(&[("colors.css", b"old\n")]);
    for job in ["7", "8"] {
        let id = server.post_event(HOOK_TOKEN, &forge.job(job));
        let detail = server.wait_finished(ADMIN_TOKEN, &id);
        assert_eq!(
            detail["delivery"]["state"], "no_changes",
            "{kind:?}: {detail}"
        );
        assert!(
            detail["delivery"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("did not make")),
            "{kind:?}: the delivery says why: {detail}"
        );
    }
    assert_eq!(
        forge.repo.rev_parse(HEAD),
        Some(fixup),
        "{kind:?}: the commit stays"
    );
    assert!(forge.has_head_branch(), "{kind:?}: the branch stays");
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].open,
        "{kind:?}: left open: {prs:?}"
    );
    let why: Vec<&String> = prs[0]
        .comments
        .iter()
        .filter(|c| c.contains("courier:converged-left-open"))
        .collect();
    assert_eq!(why.len(), 1, "{kind:?}: one comment: {:?}", prs[0].comments);
    forge.assert_contract();
}

/// The forge answers the pull request's creation with a rate limit longer than a worker
/// waits in place: the delivery goes back to the queue for the time asked (visible in the
/// API), without counting as a failed attempt, and completes once that time has passed.
fn a_rate_limit_is_waited_out(kind: Kind) {
    let forge = Forge::start(kind);
    forge.rate_limit_next_create(12);
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    let detail = || {
        server
            .request("GET", &format!("/api/deliveries/{id}"), ADMIN_TOKEN, "")
            .1
    };
    wait_until("the delivery to wait out the limit", || {
        detail()["delivery"]["state"] == "retrying"
    });
    let waiting = detail();
    assert!(
        waiting["delivery"]["next_attempt_at"].is_string(),
        "{kind:?}: {waiting}"
    );
    assert!(
        waiting["delivery"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("rate limited; retry after 12s")),
        "{kind:?}: {waiting}"
    );
    assert_eq!(
        waiting["attempts"][0]["outcome"], "rate_limited",
        "{kind:?}: {waiting}"
    );
    assert!(
        forge.prs().is_empty(),
        "{kind:?}: not before the time asked"
    );

    let done = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(done["delivery"]["state"], "delivered", "{kind:?}: {done}");
    let outcomes = Server::attempt_outcomes(&done);
    assert_eq!(outcomes, ["rate_limited", "delivered"], "{kind:?}: {done}");
    assert_eq!(forge.prs().len(), 1, "{kind:?}");
    assert_eq!(
        forge.repo.rev_parse(HEAD),
        done["delivery"]["commit"].as_str().map(str::to_owned)
    );
    let (_, metrics) = common::serve::http(server.addr, "GET", "/metrics", "", "");
    let line = format!(
        "courier_rate_limit_waits_total{{provider=\"{}\"}} 1",
        forge.provider()
    );
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    forge.assert_contract();
}

/// Where the first server is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// While downloading the artifact.
    Download,
    /// While the git server runs its `pre-receive` hook; `lands`: the push completes after
    /// Courier is gone (else it is let go only once the restart has delivered).
    Push { lands: bool },
    /// While the forge holds one call of the pull-request step, before or after applying
    /// it.
    Forge(Step, HoldMode),
}

/// A forge call of the pull-request step a kill can land in.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Looking up the head branch's open pull request.
    Lookup,
    Create,
    /// Putting the labels on the new pull request (its first decoration).
    Labels,
    /// A comment on the pull request (a failed job's report).
    Comment,
}

/// Where a fake serves a call: a REST method and path template (GitHub, GitLab), or an
/// Azure DevOps route.
enum Call {
    Rest(&'static str, &'static str),
    Azure(Route),
}

/// The call of `step` on each forge.
fn route(kind: Kind, step: Step) -> Call {
    use Call::{Azure, Rest};
    match (kind, step) {
        (Kind::GitHub, Step::Lookup) => Rest("GET", "/repos/{owner}/{repo}/pulls"),
        (Kind::GitHub, Step::Create) => Rest("POST", "/repos/{owner}/{repo}/pulls"),
        (Kind::GitHub, Step::Labels) => {
            Rest("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
        }
        (Kind::GitHub, Step::Comment) => Rest(
            "POST",
            "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        ),
        (Kind::GitLab, Step::Lookup) => Rest("GET", "/api/v4/projects/{id}/merge_requests"),
        (Kind::GitLab, Step::Create) => Rest("POST", "/api/v4/projects/{id}/merge_requests"),
        // GitLab adds labels by editing the merge request.
        (Kind::GitLab, Step::Labels) => Rest(
            "PUT",
            "/api/v4/projects/{id}/merge_requests/{merge_request_iid}",
        ),
        (Kind::GitLab, Step::Comment) => Rest(
            "POST",
            "/api/v4/projects/{id}/merge_requests/{noteable_id}/notes",
        ),
        (Kind::Azure, Step::Lookup) => Azure(Route::ListPullRequests),
        (Kind::Azure, Step::Create) => Azure(Route::CreatePullRequest),
        (Kind::Azure, Step::Labels) => Azure(Route::CreateLabel),
        (Kind::Azure, Step::Comment) => Azure(Route::CreateThread),
    }
}

/// Killed (SIGKILL) mid-delivery and started again on the same data: the delivery ends
/// exactly once, with one commit over the base and one pull request.
fn survives_a_kill(kind: Kind, at: KillAt) {
    survives_a_stop(Forge::start(kind), at, Stop::Kill);
}

/// [`survives_a_kill`] with the store on PostgreSQL, as replicas run it.
fn survives_a_kill_on_postgres(kind: Kind, at: KillAt) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(common::postgres_database_url()) else {
        return;
    };
    survives_a_stop(Forge::on_store(kind, Some(database)), at, Stop::Kill);
}

/// How the first server is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGKILL: nothing is cleaned up.
    Kill,
    /// SIGTERM: the server stops taking work and exits 0 after its grace period, leaving
    /// the delivery it could not finish to the next server.
    Terminate,
}

fn survives_a_stop(forge: Forge, at: KillAt, stop: Stop) {
    let kind = forge.kind;
    let (push, create) = match at {
        KillAt::Download => {
            forge.artifacts.stall.store(true, Ordering::SeqCst);
            (None, None)
        }
        KillAt::Push { .. } => {
            let control = forge.dir.path().join("push-hold");
            (Some(PushHold::arm(&forge.repo, &control)), None)
        }
        KillAt::Forge(step, mode) => (None, Some(forge.hold(step, mode))),
    };
    let first = forge.serve_as("first.log");
    let id = first.post_event(HOOK_TOKEN, &forge.job("6"));
    match (&push, &create) {
        (Some(push), _) => push.wait_arrived(),
        (_, Some(held)) => assert!(held.wait_arrived(WAIT), "{kind:?}: the {at:?} call arrived"),
        _ => wait_until("the download to start", || forge.artifacts.hits() >= 1),
    }
    match stop {
        Stop::Kill => first.kill_hard(),
        Stop::Terminate => first.terminate_cleanly(&format!("{kind:?}")),
    }
    match (at, &push) {
        (KillAt::Download, _) => forge.artifacts.stall.store(false, Ordering::SeqCst),
        (KillAt::Push { lands: true }, Some(push)) => {
            push.release();
            // The git server updates the ref once the hook is over.
            wait_until("the abandoned push to land", || {
                forge.repo.rev_parse(HEAD).is_some()
            });
        }
        _ => {}
    }
    let left_behind = forge.repo.rev_parse(HEAD);

    let second = forge.serve_as("second.log");
    let detail = second.wait_finished(ADMIN_TOKEN, &id);
    if let (KillAt::Push { lands: false }, Some(push)) = (at, &push) {
        // The killed run's push goes on only now: it must not land over the delivery.
        push.release();
    }
    if let Some(held) = &create {
        // Likewise its forge call: applied late (or already), it must not make a second
        // pull request or undo the restart's work.
        held.release();
        assert!(
            held.wait_settled(WAIT),
            "{kind:?}: the held {at:?} call settled"
        );
    }
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let commit = detail["delivery"]["commit"].as_str().unwrap();
    assert_eq!(
        forge.repo.rev_parse(HEAD).as_deref(),
        Some(commit),
        "{kind:?}"
    );
    if let Some(left) = left_behind {
        assert_eq!(
            commit, left,
            "{kind:?}: the restart built on the landed push"
        );
    }
    let count = courier_testkit::git(
        forge.repo.path.as_path(),
        ["rev-list", "--count", &format!("main..{HEAD}")],
    );
    assert_eq!(count.trim(), "1", "{kind:?}: one commit over the base");
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].open,
        "{kind:?}: one pull request: {prs:?}"
    );
    // Decorations are finished by the restart, whichever step the kill interrupted.
    assert_eq!(
        prs[0].labels,
        ["design-tokens"],
        "{kind:?}: decorated after the restart: {prs:?}"
    );
    let outcomes = Server::attempt_outcomes(&detail);
    assert_eq!(
        outcomes,
        ["lease_expired", "delivered"],
        "{kind:?}: {detail}"
    );
    forge.assert_contract();
}

/// Killed after the failure comment was made and before it was recorded: the restart
/// finds the comment and writes none of its own.
fn failure_comment_survives_a_kill(kind: Kind) {
    failure_comment_survives_a_kill_on(Forge::start(kind));
}

/// The same with the store on PostgreSQL.
fn failure_comment_survives_a_kill_on_postgres(kind: Kind) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(common::postgres_database_url()) else {
        return;
    };
    failure_comment_survives_a_kill_on(Forge::on_store(kind, Some(database)));
}

fn failure_comment_survives_a_kill_on(forge: Forge) {
    let kind = forge.kind;
    let number = forge.seed_open_pr();
    let held = forge.hold_comment(HoldMode::AfterApply);
    let first = forge.serve_as("first.log");
    let failed = forge
        .job("6")
        .replace("\"status\": \"Success\"", "\"status\": \"Failure\"");
    let id = first.post_event(HOOK_TOKEN, &failed);
    assert!(held.wait_arrived(WAIT), "{kind:?}: the comment was posted");
    first.kill_hard();

    let second = forge.serve_as("second.log");
    let detail = second.wait_finished(ADMIN_TOKEN, &id);
    held.release();
    assert!(held.wait_settled(WAIT));
    assert_eq!(
        detail["delivery"]["state"], "commented",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    let pr = prs.iter().find(|p| p.number == number).unwrap();
    let told = pr
        .comments
        .iter()
        .filter(|c| c.contains("The export for job `6` failed"))
        .count();
    assert_eq!(told, 1, "{kind:?}: {:?}", pr.comments);
    forge.assert_contract();
}

/// A failed job is told once on the open pull request, also when posted twice.
fn a_failed_job_is_told_once(kind: Kind) {
    let forge = Forge::start(kind);
    let number = forge.seed_open_pr();
    let server = forge.serve();
    let failed = forge
        .job("6")
        .replace("\"status\": \"Success\"", "\"status\": \"Failure\"");
    let id = server.post_event(HOOK_TOKEN, &failed);
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "commented",
        "{kind:?}: {detail}"
    );
    let (status, answer) = server.request("POST", "/webhooks/supernova", HOOK_TOKEN, &failed);
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate"))
    );

    let prs = forge.prs();
    let pr = prs.iter().find(|p| p.number == number).unwrap();
    let told: Vec<&String> = pr
        .comments
        .iter()
        .filter(|c| c.contains("The export for job `6` failed"))
        .collect();
    assert_eq!(told.len(), 1, "{kind:?}: {:?}", pr.comments);
    assert!(pr.open, "{kind:?}: left open");
    assert_eq!(forge.artifacts.hits(), 0, "{kind:?}: nothing downloaded");
    forge.assert_contract();
}

/// Another delivery opens the pull request between Courier's lookup and its create: the
/// forge answers "already exists", and Courier finds that one and updates it.
fn a_creation_race_ends_with_one_pull_request(kind: Kind) {
    let forge = Forge::start(kind);
    let create = forge.hold_create(HoldMode::BeforeApply);
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    assert!(create.wait_arrived(WAIT), "{kind:?}: the create arrived");
    let theirs = forge.seed_open_pr();
    create.release();
    assert!(create.wait_settled(WAIT));
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].number == theirs && prs[0].open,
        "{kind:?}: the one that won the race: {prs:?}"
    );
    assert_eq!(
        prs[0].title, "Tokens v0.1",
        "{kind:?}: updated to this export"
    );
    forge.assert_contract();
}

fn terminated_while_creating_the_pull_request(kind: Kind) {
    survives_a_stop(
        Forge::start(kind),
        KillAt::Forge(Step::Create, HoldMode::BeforeApply),
        Stop::Terminate,
    );
}

/// The description says what changed in the tokens against the base: a changed value,
/// a rename, an addition, in a table per file and theme; on Azure the whole description
/// stays within its 4,000 characters, cut at a row with "and N more". The deliveries API
/// has the same diff.
fn the_description_shows_token_changes(kind: Kind) {
    let forge = Forge::start(kind);
    let grays = |value: &str| {
        (0..200)
            .map(|i| format!("  --gray-{i:03}: {value};\n"))
            .collect::<String>()
    };
    let base = format!(
        ":root {{\n  --primary: #1463ff;\n  --radius-pill: 999px;\n{}}}\n[data-theme=\"dark\"] {{ --primary: #000000; }}\n",
        grays("#0969da")
    );
    forge.repo.commit(
        "main",
        &[("tokens/colors.css", Some(base.as_bytes()))],
        "Tokens as a person wrote them",
    );
    let export = format!(
        ":root {{\n  --primary: #0550ae;\n  --radius-full: 999px;\n{}}}\n[data-theme=\"dark\"] {{ --primary: #000000; }}\n",
        grays("#0550ae")
    );
    forge.serve_export(&[
        ("colors.css", export.as_bytes()),
        ("nested/typography.css", b":root { --body: 16px; }\n"),
        // Hostile and broken files: named in a note, never a failed delivery.
        ("broken.json", b"{ \"color\": { \"$value\": \"#fff\" "),
        (
            "z.css",
            b":root { --evil: <script>alert(1)</script>|`x`; }\n",
        ),
    ]);
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert_eq!(prs.len(), 1, "{kind:?}: {prs:?}");
    let body = &prs[0].body;
    assert!(
        body.contains("201 tokens changed, 2 added, 1 renamed in 3 files."),
        "{kind:?}: {body}"
    );
    assert!(
        body.contains("#### `tokens/colors.css` · `:root`"),
        "{kind:?}: {body}"
    );
    assert!(
        body.contains("| `gray-000` | changed | `#0969da` | `#0550ae` |"),
        "{kind:?}: {body}"
    );
    assert!(
        body.contains("- Could not read tokens in `tokens/broken.json`: "),
        "{kind:?}: {body}"
    );
    match kind {
        Kind::Azure => {
            assert!(
                body.chars().count() <= 4000,
                "{kind:?}: {}",
                body.chars().count()
            );
            assert!(
                body.contains("more token changes not shown here._"),
                "{kind:?}: {body}"
            );
            assert!(
                body.ends_with("-->"),
                "{kind:?}: the marker survives: {body}"
            );
        }
        Kind::GitHub | Kind::GitLab => {
            for row in [
                "| `primary` | changed | `#1463ff` | `#0550ae` |",
                "| `radius-full` | renamed from `radius-pill` | `999px` | `999px` |",
                "| `body` | added |  | `16px` |",
            ] {
                assert!(body.contains(row), "{kind:?}: {row} in {body}");
            }
            assert!(!body.contains("not shown here"), "{kind:?}: {body}");
            assert!(
                body.contains("| `evil` | added |  | `` <script>alert(1)</script>\\|`x` `` |"),
                "{kind:?}: values stay inside their code span: {body}"
            );
            assert!(
                !body.contains("data-theme"),
                "{kind:?}: unchanged theme listed: {body}"
            );
        }
    }
    let tokens = &detail["tokens"];
    assert_eq!(
        (
            &tokens["changed"],
            &tokens["added"],
            &tokens["renamed"],
            &tokens["files"]
        ),
        (
            &serde_json::json!(201),
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(3)
        ),
        "{kind:?}: {detail}"
    );
    assert_eq!(
        tokens["unreadable"][0]["path"], "tokens/broken.json",
        "{kind:?}: {detail}"
    );
    assert!(
        detail["delivery"]["timings"]["tokens"].is_u64(),
        "{kind:?}: the comparison is timed: {detail}"
    );
    forge.assert_contract();
}

/// A target with `auto_merge` asks the forge to merge the new pull request once its
/// checks pass (GitHub's auto-merge, GitLab's merge when the pipeline succeeds, Azure's
/// auto-complete), and records no warning where the repository allows it.
fn auto_merge_is_requested(kind: Kind) {
    let forge = Forge::with_target(kind, "        auto_merge: true\n");
    if let Fake::GitHub(fake) = &forge.fake {
        fake.set_auto_merge_allowed(forge.slug(), true);
    }
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    assert_eq!(
        detail["delivery"]["warnings"],
        serde_json::json!([]),
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].auto_merge,
        "{kind:?}: auto-merge requested: {prs:?}"
    );
    forge.assert_contract();
}

/// A target that names no `branch` delivers onto the repository's default branch (here
/// `trunk`) and opens its pull request against it; a failed job is told there.
fn the_default_branch_is_the_base(kind: Kind) {
    let forge = Forge::with_default_branch(kind, "trunk");
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].base == "trunk",
        "{kind:?}: {prs:?}"
    );
    let parent = courier_testkit::git(
        forge.repo.path.as_path(),
        ["rev-parse", &format!("{HEAD}^")],
    );
    assert_eq!(
        Some(parent.trim()),
        forge.repo.rev_parse("trunk").as_deref()
    );

    // A failed job finds that pull request against the same default branch.
    let failed = forge
        .job("7")
        .replace("\"status\": \"Success\"", "\"status\": \"Failure\"");
    let id = server.post_event(HOOK_TOKEN, &failed);
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "commented",
        "{kind:?}: {detail}"
    );
    forge.assert_contract();
}

/// The pull-request step keeps failing after the push (the forge answers 502 to every
/// try of the run): the delivery is retried later, finds its own commit on the branch,
/// opens the pull request and is recorded `delivered`, with one commit and one PR.
fn a_failing_pull_request_step_is_retried(kind: Kind) {
    let forge = Forge::start(kind);
    // A run tries a forge call 5 times before the attempt gives up.
    for _ in 0..5 {
        forge.fault_next(Step::Create, Fault::status(502, "Server Error"));
    }
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    assert_eq!(
        Server::attempt_outcomes(&detail),
        ["retry", "delivered"],
        "{kind:?}: {detail}"
    );
    assert!(
        detail["attempts"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("pull request step failed")),
        "{kind:?}: {detail}"
    );
    let count = courier_testkit::git(
        forge.repo.path.as_path(),
        ["rev-list", "--count", &format!("main..{HEAD}")],
    );
    assert_eq!(count.trim(), "1", "{kind:?}: one commit over the base");
    let prs = forge.prs();
    assert!(prs.len() == 1 && prs[0].open, "{kind:?}: {prs:?}");
    forge.assert_contract();
}

/// Each scenario once per forge: `scenario::github`, `scenario::gitlab`, `scenario::azure`.
macro_rules! on_each_forge {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn github() {
                super::$scenario(super::Kind::GitHub);
            }

            #[test]
            fn gitlab() {
                super::$scenario(super::Kind::GitLab);
            }

            #[test]
            fn azure() {
                super::$scenario(super::Kind::Azure);
            }
        }
    )*};
}

on_each_forge!(
    opens_updates_and_closes,
    the_default_branch_is_the_base,
    auto_merge_is_requested,
    the_description_shows_token_changes,
    a_persons_commit_is_never_destroyed,
    a_rate_limit_is_waited_out,
    a_failed_job_is_told_once,
    a_creation_race_ends_with_one_pull_request,
    failure_comment_survives_a_kill,
    failure_comment_survives_a_kill_on_postgres,
    terminated_while_creating_the_pull_request,
    a_failing_pull_request_step_is_retried,
);

/// The crash matrix: SIGKILL at each step, on each forge, on SQLite and on PostgreSQL:
/// `killed::STEP::{sqlite,postgres}::{github,gitlab,azure}`.
macro_rules! kill_matrix {
    ($($step:ident => $at:expr),* $(,)?) => {
        mod killed {$(
            mod $step {
                fn at() -> super::super::KillAt {
                    use super::super::*;
                    $at
                }

                kill_matrix!(@store sqlite, survives_a_kill);
                kill_matrix!(@store postgres, survives_a_kill_on_postgres);
            }
        )*}
    };
    (@store $store:ident, $run:ident) => {
        mod $store {
            use super::super::super::{Kind, $run};

            #[test]
            fn github() {
                $run(Kind::GitHub, super::at());
            }

            #[test]
            fn gitlab() {
                $run(Kind::GitLab, super::at());
            }

            #[test]
            fn azure() {
                $run(Kind::Azure, super::at());
            }
        }
    };
}

kill_matrix!(
    while_downloading => KillAt::Download,
    while_pushing => KillAt::Push { lands: false },
    after_the_push_landed => KillAt::Push { lands: true },
    before_the_pr_lookup => KillAt::Forge(Step::Lookup, HoldMode::BeforeApply),
    before_the_create_is_applied => KillAt::Forge(Step::Create, HoldMode::BeforeApply),
    after_the_create_was_applied => KillAt::Forge(Step::Create, HoldMode::AfterApply),
    before_the_labels_are_applied => KillAt::Forge(Step::Labels, HoldMode::BeforeApply),
    after_the_labels_were_applied => KillAt::Forge(Step::Labels, HoldMode::AfterApply),
);
