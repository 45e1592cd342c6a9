//! A world for `courier serve` against GitHub: a real smart-HTTP git server holding
//! `acme/web`, the stateful GitHub fake (on a runtime of its own, so the test thread may
//! block while it answers), the artifact server, and a configuration routing hook 5 to
//! `acme/web`. Tests start servers on it, post events, and read the results back from
//! the git server and the fake.

use std::path::{Path, PathBuf};

use courier_testkit::forges::github_fake::GitHubFake;
use courier_testkit::{BareRepo, GitServer, install_pre_receive_hook, make_bare_repo, zip_bytes};

use super::github::{self, HEAD, REPO};
use super::serve::{ArtifactServer, ServeCommand, Server, seed_payload, wait_until};

/// GitHub takes the same token for the API and for git over HTTPS.
pub const TOKEN: &str = "ghp_world_token_7c41e9a05b3d";
pub const HOOK_TOKEN: &str = "webhook-token-0123456789";
pub const ADMIN_TOKEN: &str = "admin-token-abcdef012345";

pub struct World {
    pub dir: tempfile::TempDir,
    pub git: GitServer,
    pub repo: BareRepo,
    pub artifacts: ArtifactServer,
    /// Declared before the runtime that serves it, so it is dropped first.
    pub fake: GitHubFake,
    _runtime: tokio::runtime::Runtime,
    pub config: PathBuf,
    /// `store:` of the configuration; `None`: SQLite under the data directory.
    store: Option<String>,
}

impl World {
    /// The world with the export the crash tests deliver: `colors.css` (replacing the
    /// repository's) and `nested/typography.css`.
    pub fn new() -> World {
        World::on_store(None)
    }

    /// The same on another store (a PostgreSQL URL, for several replicas).
    pub fn on_store(store: Option<String>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        let repo = github::web_repo(&root);
        let git = GitServer::start(&root, TOKEN);
        let artifacts = ArtifactServer::start(zip_bytes(&[
            ("colors.css", b":root { --primary: #1463ff; }\n"),
            ("nested/typography.css", b":root { --body: 16px; }\n"),
        ]));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(GitHubFake::start());
        github::prepare_fake(&fake, TOKEN);
        let config = dir.path().join("courier.yaml");
        let world = World {
            dir,
            git,
            repo,
            artifacts,
            fake,
            _runtime: runtime,
            config,
            store,
        };
        world.write_config(2, &github::hooks_yaml());
        world
    }

    /// Writes the configuration with `workers` and these `hooks:` (see
    /// [`github::hooks_yaml`]), over the GitHub connection `github`.
    pub fn write_config(&self, workers: u32, hooks: &str) {
        let store = self
            .store
            .as_deref()
            .map(|url| format!("store: {url}\n"))
            .unwrap_or_default();
        std::fs::write(
            &self.config,
            format!(
                r#"
listen: 127.0.0.1:0
data_dir: ./data
{store}workers: {workers}
webhook: {{ tokens: ["{HOOK_TOKEN}"] }}
admin: {{ tokens: ["{ADMIN_TOKEN}"] }}
platform:
  insecure_hosts: ["127.0.0.1"]
{connection}{hooks}"#,
                connection = github::connection_yaml(&self.fake, &self.git),
            ),
        )
        .unwrap();
    }

    /// Holds the first push to `acme/web` (see [`PushHold`]).
    pub fn hold_first_push(&self) -> PushHold {
        PushHold::arm(&self.repo, &self.dir.path().join("push-hold"))
    }

    /// Another repository, on the git server (with `main`) and in the fake.
    pub fn add_repo(&self, slug: &str) -> BareRepo {
        let (owner, name) = slug.split_once('/').unwrap();
        let dir = self.git.root().join(owner);
        std::fs::create_dir_all(&dir).unwrap();
        let repo = make_bare_repo(&dir, name, "main", &[("README.md", b"# other\n")]);
        self.fake.add_repo(slug);
        repo
    }

    /// The first seed's payload, its artifact URL pointing at the local artifact server.
    pub fn payload(&self) -> String {
        seed_payload(&self.artifacts.url())
    }

    pub fn serve(&self, log_name: &str) -> Server {
        self.serve_command(log_name).start()
    }

    pub fn serve_command(&self, log_name: &str) -> ServeCommand {
        ServeCommand::new(
            self.dir.path(),
            &self.config,
            &self.dir.path().join(log_name),
        )
        .env("TEST_GITHUB_TOKEN", TOKEN)
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
        .env("TEST_GITHUB_TOKEN", TOKEN)
        .arg("--replica-id")
        .arg(name)
    }

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

    /// The pull requests from the target's head branch.
    pub fn head_prs(&self) -> Vec<courier_testkit::forges::github_fake::FakePr> {
        self.fake
            .prs(REPO)
            .into_iter()
            .filter(|p| p.head == HEAD)
            .collect()
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
        ("GitHub token", TOKEN),
        ("webhook token", HOOK_TOKEN),
        ("admin token", ADMIN_TOKEN),
    ] {
        assert!(!log.contains(secret), "the {what} leaked into the log");
    }
}
