//! One target for the end-to-end tests of the `courier` binary, on any forge: a repository
//! on a real smart-HTTP git server (`tokens/colors.css` holding `old`), the forge's
//! stateful fake (GitHub, GitLab, Azure DevOps; none for plain git) on a runtime of its
//! own so the test thread may block while it answers, the artifact server, and a
//! configuration routing hook 5 to the repository. Every suite that runs `courier serve`
//! or `courier deliver` against a forge builds its world here ([`Forge::builder`]).

use std::path::{Path, PathBuf};

use courier_testkit::forges::azure_fake::{AzureFake, Route};
use courier_testkit::forges::fault::Fault;
use courier_testkit::forges::github_fake::GitHubFake;
use courier_testkit::forges::gitlab_fake::GitLabFake;
use courier_testkit::forges::hold::{Hold, HoldMode};
use courier_testkit::{BareRepo, GitServer, install_pre_receive_hook, make_bare_repo, zip_bytes};

use super::serve::{
    ArtifactServer, PLATFORM_TOKEN, ServeCommand, Server, seed_payload, wait_until, with_job_id,
};
use super::test_ca;
use serde_json::Value;

use super::tls::TlsFront;

/// The forges take the same token for the API and for git over HTTPS.
pub const TOKEN: &str = "forge-token-3f9a1c7e5b2d";
pub const HOOK_TOKEN: &str = "webhook-token-0123456789";
pub const ADMIN_TOKEN: &str = "admin-token-abcdef012345";
/// A read-only token (`admin.viewer_tokens`): the API's reads and the dashboard, no retry.
pub const VIEWER_TOKEN: &str = "viewer-token-0123456789abcdef";
/// The head branch routing gives hook 5's target (base `main`, path `tokens`), on every
/// forge.
pub const HEAD: &str = "courier/5/main-tokens-e0db30c6";
/// What the target's `colors.css` holds on the base branch.
pub const BASE_COLORS: &[u8] = b"old\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A plain git server: Courier pushes and opens nothing.
    Git,
    GitHub,
    GitLab,
    Azure,
}

impl Kind {
    /// The connection's `kind:`, which also names the connection (and so starts the
    /// target's key: `github:acme/web@main:tokens`).
    pub fn provider(self) -> &'static str {
        match self {
            Kind::Git => "git",
            Kind::GitHub => "github",
            Kind::GitLab => "gitlab",
            Kind::Azure => "azure",
        }
    }

    /// The repository as the configuration names it on this forge (plain git: its path on
    /// the git server).
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Git => "web",
            Kind::GitHub => "acme/web",
            Kind::GitLab => "acme/design/web",
            Kind::Azure => "Design/web",
        }
    }

    /// Where the forge's clone URL puts a repository `owner/name` (GitHub), `group/.../name`
    /// (GitLab) or `project/name` (Azure) under the git server's root.
    fn repo_dir(self, root: &Path, slug: &str) -> (PathBuf, String) {
        let (parent, name) = slug.rsplit_once('/').unwrap_or(("", slug));
        let dir = match self {
            Kind::Azure => root.join("contoso").join(parent).join("_git"),
            _ => root.join(parent),
        };
        (dir, name.to_owned())
    }
}

enum Fake {
    None,
    GitHub(GitHubFake),
    GitLab(GitLabFake),
    Azure(AzureFake),
}

/// A pull (merge) request as the scenarios see it, whatever the forge.
#[derive(Debug)]
pub struct Pr {
    pub number: u64,
    pub open: bool,
    pub title: String,
    /// The branch it targets.
    pub base: String,
    /// The description as the forge stores it.
    pub body: String,
    pub comments: Vec<String>,
    pub labels: Vec<String>,
    /// As the forge stores them: GitHub logins, GitLab user ids, Azure identity ids.
    pub reviewers: Vec<String>,
    /// Set to merge (complete, on Azure) once its checks pass.
    pub auto_merge: bool,
}

/// A forge call of the pull-request step a test can hold or fault.
#[derive(Clone, Copy, Debug)]
pub enum Step {
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
        (Kind::Git, _) => panic!("plain git has no forge API"),
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

/// The export the tests deliver first: `colors.css` (replacing the repository's) and
/// `nested/typography.css`.
pub fn export_v1() -> Vec<u8> {
    zip_bytes(&[
        ("colors.css", b":root { --primary: #1463ff; }\n"),
        ("nested/typography.css", b":root { --body: 16px; }\n"),
    ])
}

/// How to build a [`Forge`]; [`Forge::builder`].
pub struct Builder {
    kind: Kind,
    store: Option<String>,
    target_settings: String,
    default_branch: Option<String>,
    verify_with_platform: bool,
    connection_settings: String,
    behind_tls: bool,
    tls_clients_from: Option<String>,
    api_commits: bool,
}

impl Builder {
    /// More settings for the connection (YAML lines, indented as its keys).
    pub fn connection(mut self, settings: &str) -> Builder {
        self.connection_settings.push_str(settings);
        self
    }

    /// `store:` set (a PostgreSQL URL); `None`: SQLite in the data directory.
    pub fn store(mut self, store: Option<String>) -> Builder {
        self.store = store;
        self
    }

    /// More settings for the target (YAML lines, indented as its keys).
    pub fn target(mut self, settings: &str) -> Builder {
        self.target_settings.push_str(settings);
        self
    }

    /// A repository whose default branch is `default`, and a target that names no
    /// `branch`.
    pub fn default_branch(mut self, default: &str) -> Builder {
        self.default_branch = Some(default.to_owned());
        self
    }

    /// The platform API (on the artifact server) with its PAT, and
    /// `webhook.verify_with_platform`.
    pub fn verify_with_platform(mut self) -> Builder {
        self.verify_with_platform = true;
        self
    }

    /// GitHub only: `commits: api` on the connection, and the fake's repository backed by
    /// the git server's, so the commits its Git database API creates are real ones.
    pub fn api_commits(mut self) -> Builder {
        assert_eq!(
            self.kind,
            Kind::GitHub,
            "only GitHub creates commits through its API"
        );
        self.api_commits = true;
        self.connection_settings.push_str("    commits: api\n");
        self
    }

    /// The forge's API and the git server reached over HTTPS only, through TLS fronts
    /// with a test CA's certificate, and the connection trusting that CA (`tls.ca_file`).
    pub fn behind_tls(mut self) -> Builder {
        self.behind_tls = true;
        self
    }

    /// [`Builder::behind_tls`], with TLS fronts that accept connections from `ip` only
    /// (another loopback address, which a proxy binds): whatever reaches the forge or the
    /// git server came through the proxy.
    pub fn behind_tls_reached_from(mut self, ip: &str) -> Builder {
        self.behind_tls = true;
        self.tls_clients_from = Some(ip.to_owned());
        self
    }

    pub fn start(mut self) -> Forge {
        let kind = self.kind;
        let slug = kind.slug();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        let (repo_dir, name) = kind.repo_dir(&root, slug);
        std::fs::create_dir_all(&repo_dir).unwrap();
        let base = self.default_branch.as_deref().unwrap_or("main");
        let repo = make_bare_repo(
            &repo_dir,
            &name,
            base,
            &[
                ("README.md", b"# web\n"),
                ("tokens/colors.css", BASE_COLORS),
            ],
        );
        let git = GitServer::start(&root, TOKEN);
        let artifacts = ArtifactServer::start(export_v1());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let ca = self.behind_tls.then(|| {
            let tls = dir.path().join("tls");
            std::fs::create_dir_all(&tls).unwrap();
            let ca = test_ca(&tls).unwrap();
            self.connection_settings
                .push_str(&format!("    tls: {{ ca_file: {} }}\n", ca.ca.display()));
            ca
        });
        let mut fronts = Vec::new();
        // `url` as the configuration names it: through a TLS front when behind TLS.
        let mut reach = |url: String| match &ca {
            None => url,
            Some(ca) => {
                let port = url
                    .strip_prefix("http://127.0.0.1:")
                    .and_then(|rest| rest.split('/').next())
                    .and_then(|port| port.parse().ok())
                    .expect("a URL on 127.0.0.1");
                let front = TlsFront::start(ca, port, self.tls_clients_from.as_deref());
                let url = front.https(&url);
                fronts.push(front);
                url
            }
        };
        let git_url = reach(git.url(""));
        let git_url = git_url.trim_end_matches(".git").to_owned();
        // The fake, the connection's settings, and the reviewer as the configuration
        // names it and as the forge stores it.
        let (fake, connection, (reviewer_name, reviewer)) = runtime.block_on(async {
            match kind {
                Kind::Git => (Fake::None, String::new(), (String::new(), String::new())),
                Kind::GitHub => {
                    let fake = GitHubFake::start().await;
                    fake.accept_token(TOKEN);
                    fake.add_repo(slug);
                    fake.add_branch(slug, HEAD);
                    fake.add_branch(slug, base);
                    fake.add_collaborator(slug, "octocat");
                    if self.api_commits {
                        fake.back_with_git(slug, &repo.path);
                    }
                    let api = reach(fake.api_url());
                    let yaml = format!("    api_url: {api}\n    git_url: {git_url}\n");
                    let reviewer = ("octocat".to_owned(), "octocat".to_owned());
                    (Fake::GitHub(fake), yaml, reviewer)
                }
                Kind::GitLab => {
                    let fake = GitLabFake::start().await;
                    fake.accept_token(TOKEN);
                    fake.add_project(slug);
                    fake.add_branch(slug, HEAD);
                    fake.add_branch(slug, base);
                    let id = fake.add_user("designer", &[slug]);
                    let url = reach(fake.base_url());
                    let yaml = format!("    url: {url}\n    git_url: {git_url}\n");
                    (
                        Fake::GitLab(fake),
                        yaml,
                        ("designer".to_owned(), id.to_string()),
                    )
                }
                Kind::Azure => {
                    let fake = AzureFake::start("contoso").await;
                    fake.accept_token(TOKEN, "courier-identity");
                    fake.add_repo(slug);
                    fake.add_branch(slug, HEAD);
                    fake.add_branch(slug, base);
                    let id = "5f0a2c1e-8b7d-4e3a-9c6f-0d1b2a3c4e5f";
                    fake.add_identity(id);
                    let url = reach(fake.base_url());
                    let yaml = format!(
                        "    organization: contoso\n    url: {url}\n    git_url: {git_url}\n"
                    );
                    (Fake::Azure(fake), yaml, (id.to_owned(), id.to_owned()))
                }
            }
        });
        let provider = kind.provider();
        let repository = match kind {
            Kind::Git => git.url(slug),
            _ => slug.to_owned(),
        };
        let mut target = format!(
            "      - connection: {provider}\n        repository: {repository}\n{branch}        relative_path: tokens\n        purge_directory: true\n",
            branch = match self.default_branch {
                None => "        branch: main\n",
                Some(_) => "",
            },
        );
        if kind != Kind::Git {
            target.push_str(&format!(
                "        pull_request_title: \"Tokens {{{{ version.version }}}}: {{{{ export.files }}}} files\"\n        labels: [design-tokens]\n        reviewers: [{reviewer_name}]\n"
            ));
        }
        target.push_str(&self.target_settings);
        let platform = if self.verify_with_platform {
            format!(
                "  api_url: {}\n  token: \"${{TEST_PLATFORM_TOKEN}}\"\n",
                artifacts.api_url()
            )
        } else {
            String::new()
        };
        let config = dir.path().join("courier.yaml");
        let forge = Forge {
            kind,
            dir,
            git,
            repo,
            artifacts,
            fake,
            _runtime: runtime,
            _fronts: fronts,
            config,
            reviewer,
            store: self.store,
            settings: format!(
                "webhook: {{ tokens: [\"{HOOK_TOKEN}\"], verify_with_platform: {verify} }}\nadmin: {{ tokens: [\"{ADMIN_TOKEN}\"], viewer_tokens: [\"{VIEWER_TOKEN}\"] }}\nplatform:\n  insecure_hosts: [\"127.0.0.1\"]\n{platform}connections:\n  {provider}:\n    kind: {provider}\n    token: \"${{TEST_FORGE_TOKEN}}\"\n{connection}{}",
                self.connection_settings,
                verify = self.verify_with_platform,
            ),
            target,
        };
        forge.write_config(2, &forge.hooks(&[forge.target_yaml()]));
        forge
    }
}

/// One forge with a repository holding `tokens/colors.css`, the git server behind it,
/// the artifact server, and a configuration routing hook 5 to it.
pub struct Forge {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub git: GitServer,
    pub repo: BareRepo,
    pub artifacts: ArtifactServer,
    /// Declared before the runtime that serves it, so it is dropped first.
    fake: Fake,
    _runtime: tokio::runtime::Runtime,
    /// TLS in front of the fake and the git server, when built [`Builder::behind_tls`].
    _fronts: Vec<TlsFront>,
    pub config: PathBuf,
    /// The reviewer the target asks for, as the forge stores it.
    pub reviewer: String,
    store: Option<String>,
    /// The configuration's settings up to and with `connections:`.
    settings: String,
    /// The target of hook 5, as an item of a `targets:` list.
    target: String,
}

impl Forge {
    pub fn builder(kind: Kind) -> Builder {
        Builder {
            kind,
            store: None,
            target_settings: String::new(),
            default_branch: None,
            verify_with_platform: false,
            connection_settings: String::new(),
            behind_tls: false,
            tls_clients_from: None,
            api_commits: false,
        }
    }

    pub fn start(kind: Kind) -> Forge {
        Forge::builder(kind).start()
    }

    /// The same with `store:` set (a PostgreSQL URL); `None`: SQLite in the data directory.
    pub fn on_store(kind: Kind, store: Option<String>) -> Forge {
        Forge::builder(kind).store(store).start()
    }

    /// The same with more settings for the target (YAML lines, indented as its keys).
    pub fn with_target(kind: Kind, settings: &str) -> Forge {
        Forge::builder(kind).target(settings).start()
    }

    /// A repository whose default branch is `default`, and a target that names no
    /// `branch`.
    pub fn with_default_branch(kind: Kind, default: &str) -> Forge {
        Forge::builder(kind).default_branch(default).start()
    }

    pub fn slug(&self) -> &'static str {
        self.kind.slug()
    }

    pub fn provider(&self) -> &'static str {
        self.kind.provider()
    }

    /// The target every test delivers to, as a `targets:` list item.
    pub fn target_yaml(&self) -> String {
        self.target.clone()
    }

    /// A `hooks:` section routing hook 5 to these `targets:` items.
    pub fn hooks(&self, targets: &[String]) -> String {
        format!(
            "hooks:\n  - match: {{ hook_id: \"5\" }}\n    targets:\n{}",
            targets.concat()
        )
    }

    /// Writes the configuration with `workers` and this `hooks:` section (see
    /// [`Forge::hooks`]).
    pub fn write_config(&self, workers: u32, hooks: &str) {
        let store = self
            .store
            .as_deref()
            .map(|url| format!("store: {url}\n"))
            .unwrap_or_default();
        std::fs::write(
            &self.config,
            format!(
                "listen: 127.0.0.1:0\ndata_dir: ./data\n{store}workers: {workers}\n{}{hooks}",
                self.settings
            ),
        )
        .unwrap();
    }

    /// The GitHub fake, for a test about GitHub alone.
    pub fn github(&self) -> &GitHubFake {
        match &self.fake {
            Fake::GitHub(fake) => fake,
            _ => panic!("{:?} is not GitHub", self.kind),
        }
    }

    pub fn serve(&self) -> Server {
        self.serve_as("serve.log")
    }

    pub fn serve_as(&self, log: &str) -> Server {
        self.serve_command(log).start()
    }

    pub fn serve_command(&self, log: &str) -> ServeCommand {
        ServeCommand::new(self.dir.path(), &self.config, &self.dir.path().join(log))
            .env("TEST_FORGE_TOKEN", TOKEN)
            .env("TEST_PLATFORM_TOKEN", PLATFORM_TOKEN)
    }

    /// `courier serve` as replica `name`: its own data directory (repository cache,
    /// downloads), as each replica has in a deployment, over the shared store.
    pub fn replica(&self, name: &str) -> ServeCommand {
        let config = self.dir.path().join(format!("courier-{name}.yaml"));
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains("data_dir: ./data\n"));
        std::fs::write(
            &config,
            text.replace("data_dir: ./data\n", &format!("data_dir: ./data-{name}\n")),
        )
        .unwrap();
        ServeCommand::new(
            self.dir.path(),
            &config,
            &self.dir.path().join(format!("{name}.log")),
        )
        .env("TEST_FORGE_TOKEN", TOKEN)
        .arg("--replica-id")
        .arg(name)
    }

    /// `courier <args>` (`deliver`, `dry-run`, ...) with this configuration, as an operator
    /// runs it in this world's directory.
    pub fn courier(&self, args: &[&str]) -> std::process::Output {
        self.courier_with(args, &[])
    }

    /// [`Forge::courier`] with more environment variables.
    pub fn courier_with(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        courier_testkit::without_proxy_env(&mut std::process::Command::new(env!(
            "CARGO_BIN_EXE_courier"
        )))
        .current_dir(self.dir.path())
        .args(args)
        .arg("--config")
        .arg(&self.config)
        .env("TEST_FORGE_TOKEN", TOKEN)
        .env("TEST_PLATFORM_TOKEN", PLATFORM_TOKEN)
        .env("HOME", self.dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("COURIER_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("courier ran")
    }

    /// The seed's payload, its artifact URL pointing at the local artifact server.
    pub fn payload(&self) -> String {
        seed_payload(&self.artifacts.url())
    }

    /// The seed's job with this id, its artifact on the local artifact server.
    pub fn job(&self, id: &str) -> String {
        with_job_id(&self.payload(), id)
    }

    /// Posts the seed's job `job` to `server`, waits until its delivery is over and checks
    /// it ended `state`; returns the delivery's detail (`delivery.id` is its id).
    pub fn deliver_job(&self, server: &Server, job: &str, state: &str) -> Value {
        let id = server.post_event(HOOK_TOKEN, &self.job(job));
        let detail = server.wait_finished(ADMIN_TOKEN, &id);
        assert_eq!(
            detail["delivery"]["state"], state,
            "{:?}: job {job}: {detail}",
            self.kind
        );
        detail
    }

    /// The export the artifact server gives the next jobs.
    pub fn serve_export(&self, files: &[(&str, &[u8])]) {
        *self.artifacts.zip.lock().unwrap() = zip_bytes(files);
    }

    /// The slug of another repository next to this forge's (`name` in its place).
    pub fn sibling(&self, name: &str) -> String {
        let slug = self.slug();
        match slug.rsplit_once('/') {
            Some((parent, _)) => format!("{parent}/{name}"),
            None => name.to_owned(),
        }
    }

    /// The target's stable id: `{connection}:{repository}@main:tokens`.
    pub fn target_key(&self) -> String {
        format!("{}:{}@main:tokens", self.provider(), self.slug())
    }

    /// How many pull requests repository `slug` has, from any branch.
    pub fn pr_count(&self, slug: &str) -> usize {
        match &self.fake {
            Fake::None => 0,
            Fake::GitHub(fake) => fake.prs(slug).len(),
            Fake::GitLab(fake) => fake.mrs(slug).len(),
            Fake::Azure(fake) => {
                let (project, repo) = slug.split_once('/').unwrap();
                fake.prs()
                    .iter()
                    .filter(|p| p.project == project && p.repository == repo)
                    .count()
            }
        }
    }

    /// The port of the forge's API as the configuration names it (a TLS front's, when
    /// behind TLS); `None` for a plain git target.
    pub fn api_port(&self) -> Option<u16> {
        self.connection_port(&["api_url", "url"])
    }

    /// The port of the git server as the connection's `git_url` names it.
    pub fn git_port(&self) -> Option<u16> {
        self.connection_port(&["git_url"])
    }

    fn connection_port(&self, keys: &[&str]) -> Option<u16> {
        let text = std::fs::read_to_string(&self.config).ok()?;
        let url = text.lines().find_map(|line| {
            let (key, value) = line.trim().split_once(": ")?;
            (line.starts_with("    ") && keys.contains(&key)).then(|| value.to_owned())
        })?;
        url::Url::parse(&url).ok()?.port()
    }

    /// `"METHOD /path"` of every request the fake received so far.
    pub fn request_lines(&self) -> Vec<String> {
        match &self.fake {
            Fake::None => Vec::new(),
            Fake::GitHub(fake) => fake.request_lines(),
            Fake::GitLab(fake) => fake.request_lines(),
            Fake::Azure(fake) => fake.request_lines(),
        }
    }

    /// Another repository, on the git server (with `main`) and in the fake.
    pub fn add_repo(&self, slug: &str) -> BareRepo {
        let (dir, name) = self.kind.repo_dir(self.git.root(), slug);
        std::fs::create_dir_all(&dir).unwrap();
        let repo = make_bare_repo(&dir, &name, "main", &[("README.md", b"# other\n")]);
        match &self.fake {
            Fake::None => {}
            Fake::GitHub(fake) => fake.add_repo(slug),
            Fake::GitLab(fake) => {
                fake.add_project(slug);
            }
            Fake::Azure(fake) => fake.add_repo(slug),
        }
        repo
    }

    /// Holds the first push to the repository (see [`PushHold`]).
    pub fn hold_first_push(&self) -> PushHold {
        PushHold::arm(&self.repo, &self.dir.path().join("push-hold"))
    }

    /// How many commits the head branch has over `main`.
    pub fn commits_on_head(&self) -> String {
        courier_testkit::git(
            self.repo.path.as_path(),
            ["rev-list", "--count", &format!("main..{HEAD}")],
        )
        .trim()
        .to_owned()
    }

    pub fn head_message(&self) -> String {
        courier_testkit::git(self.repo.path.as_path(), ["log", "-1", "--format=%B", HEAD])
    }

    /// Pull requests from the head branch, oldest first.
    pub fn prs(&self) -> Vec<Pr> {
        let slug = self.slug();
        match &self.fake {
            Fake::None => Vec::new(),
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
    pub fn seed_open_pr(&self) -> u64 {
        let slug = self.slug();
        let (title, body) = ("Tokens v0.0", "The previous export.");
        match &self.fake {
            Fake::None => panic!("plain git has no pull requests"),
            Fake::GitHub(fake) => fake.seed_pr(slug, HEAD, "main", title, body, "open"),
            Fake::GitLab(fake) => fake.seed_mr(slug, HEAD, "main", title, body, "opened"),
            Fake::Azure(fake) => fake.seed_pr(slug, HEAD, "main", title, body, "active"),
        }
    }

    /// The fakes model the forge's API, while the branch lives on the git server: after a
    /// push, tell the fake where the head branch now points, as the forge would know.
    pub fn sync_head(&self) {
        let tip = self
            .repo
            .rev_parse(HEAD)
            .expect("the head branch was pushed");
        match &self.fake {
            Fake::None => {}
            Fake::GitHub(fake) => fake.move_branch(self.slug(), HEAD, &tip),
            Fake::GitLab(fake) => fake.move_branch(self.slug(), HEAD, &tip),
            Fake::Azure(fake) => fake.move_branch(self.slug(), HEAD, &tip),
        }
    }

    /// Whether the forge still has the head branch (plain git: the git server).
    pub fn has_head_branch(&self) -> bool {
        match &self.fake {
            Fake::None => self.repo.rev_parse(HEAD).is_some(),
            Fake::GitHub(fake) => fake.has_branch(self.slug(), HEAD),
            Fake::GitLab(fake) => fake.has_branch(self.slug(), HEAD),
            Fake::Azure(fake) => fake.has_branch(self.slug(), HEAD),
        }
    }

    /// Holds the next pull request creation (see [`HoldMode`]).
    pub fn hold_create(&self, mode: HoldMode) -> Hold {
        self.hold(Step::Create, mode)
    }

    /// Holds the next comment on a pull request.
    pub fn hold_comment(&self, mode: HoldMode) -> Hold {
        self.hold(Step::Comment, mode)
    }

    /// Holds the next call of one step of the pull request's life.
    pub fn hold(&self, step: Step, mode: HoldMode) -> Hold {
        match (&self.fake, route(self.kind, step)) {
            (Fake::GitHub(fake), Call::Rest(method, path)) => fake.hold(method, path, mode),
            (Fake::GitLab(fake), Call::Rest(method, path)) => fake.hold(method, path, mode),
            (Fake::Azure(fake), Call::Azure(route)) => fake.hold(route, mode),
            _ => unreachable!("route() answers each forge in its own kind"),
        }
    }

    /// The next pull request creation is answered 429 with `Retry-After: seconds`.
    pub fn rate_limit_next_create(&self, seconds: u64) {
        let fault = Fault::with_headers(
            429,
            "Too many requests",
            &[("retry-after", &seconds.to_string())],
        );
        self.fault_next(Step::Create, fault);
    }

    /// The next call of `step` is answered with `fault`.
    pub fn fault_next(&self, step: Step, fault: Fault) {
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

    /// Every request the fake received conforms to the forge's official description.
    pub fn assert_contract(&self) {
        match &self.fake {
            Fake::None => {}
            Fake::GitHub(fake) => fake.assert_contract(),
            Fake::GitLab(fake) => fake.assert_contract(),
            Fake::Azure(fake) => fake.assert_contract(),
        }
    }
}

/// The first push to a repository, held by its `pre-receive` hook (after the pack is
/// received, before any ref moves) until released; later pushes pass.
pub struct PushHold {
    /// `armed` is taken by the first push, which then waits while `holding` exists and
    /// writes `done` when let go.
    control: PathBuf,
}

impl PushHold {
    pub fn arm(repo: &BareRepo, control: &Path) -> PushHold {
        std::fs::create_dir_all(control).unwrap();
        std::fs::write(control.join("armed"), b"").unwrap();
        install_pre_receive_hook(
            repo,
            &format!(
                r#"cat >/dev/null
control='{}'
if mv "$control/armed" "$control/holding" 2>/dev/null; then
  while [ -e "$control/holding" ]; do sleep 0.05; done
  touch "$control/done"
fi
exit 0"#,
                control.display()
            ),
        );
        PushHold {
            control: control.to_owned(),
        }
    }

    pub fn wait_arrived(&self) {
        wait_until("the push to reach the hook", || {
            self.control.join("holding").exists()
        });
    }

    /// Lets the held push go on, and waits until its hook is over.
    pub fn release(&self) {
        std::fs::remove_file(self.control.join("holding")).unwrap();
        wait_until("the held push to finish its hook", || {
            self.control.join("done").exists()
        });
    }
}

/// No secret in a server's log.
pub fn assert_no_secrets(server: &Server) {
    let log = server.log();
    for (what, secret) in [
        ("forge token", TOKEN),
        ("webhook token", HOOK_TOKEN),
        ("admin token", ADMIN_TOKEN),
        ("viewer token", VIEWER_TOKEN),
        ("platform token", PLATFORM_TOKEN),
    ] {
        assert!(!log.contains(secret), "the {what} leaked into the log");
    }
}
