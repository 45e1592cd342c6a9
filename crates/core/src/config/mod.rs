//! Courier's configuration: YAML, `${VAR}` interpolation, validation that reports every
//! problem at once.
//!
//! Loading goes in two steps, as in ripgrep's low-level/high-level arguments: the
//! YAML is parsed into raw structs (`raw.rs`; unknown keys and type errors stop here,
//! with file, line and column), then validated into the types below (`validate/`),
//! collecting every problem with its key path. The types below are therefore always
//! valid: a [`Target`]'s connection exists, its templates compile, its clone URL is
//! known.
//!
//! The reference for every key is `docs/configuration.md`.

mod error;
mod interpolate;
mod locate;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;
use url::Url;

use crate::archive::ArchiveLimits;
use crate::download::DownloadLimits;
use crate::paths::RelPath;
use crate::template::{TargetFacts, TemplateField, Templates};

pub use error::{ConfigError, Location, Problem};
pub use interpolate::{InterpolationError, interpolate};
pub use raw::json_schema;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds. Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Directory for the bare-repository cache and the SQLite database, resolved
    /// against the configuration file's directory. Default: `./.courier`.
    pub data_dir: PathBuf,
    /// Where jobs and deliveries are stored. Default: SQLite at `{data_dir}/courier.db`.
    pub store: Store,
    /// How webhook requests are authenticated. `None` only when `listen` is a loopback
    /// address: the endpoint then accepts unauthenticated requests.
    pub webhook: Option<Webhook>,
    /// Who may use the operations API (`/api/...`). `None`: the API answers 403.
    pub admin: Option<Admin>,
    /// The design-system platform's API and where artifacts may be downloaded from.
    pub platform: Platform,
    /// Bounds on downloads and archives.
    pub limits: Limits,
    /// Deliveries run concurrently. Default: 4.
    pub workers: u32,
    /// Named credentials and endpoints, keyed by name.
    pub connections: BTreeMap<String, Connection>,
    /// Hook entries, in file order. A job is routed to every entry it matches.
    pub hooks: Vec<HookEntry>,
    /// Every target's compiled templates.
    pub templates: Templates,
}

/// The job and delivery store.
#[derive(Debug, Clone)]
pub enum Store {
    /// `sqlite://PATH` (relative paths resolve against the configuration file's directory).
    Sqlite { path: PathBuf },
    /// `postgres://...` or `postgresql://...`; secret because it may carry a password.
    Postgres { url: SecretString },
}

/// Webhook authentication (`webhook`).
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Accepted bearer tokens (or secret path segments); several allow rotation.
    /// Required, non-empty, each at least 16 characters.
    pub tokens: Vec<SecretString>,
    /// Workspace ids accepted; empty accepts any. Default: empty.
    pub allowed_workspaces: Vec<String>,
    /// Design-system ids accepted; empty accepts any. Default: empty.
    pub allowed_design_systems: Vec<String>,
    /// Re-read the job through the platform API (needs `platform.token`) before acting.
    /// Default: false.
    pub verify_with_platform: bool,
}

/// Operations API authentication (`admin`).
#[derive(Debug, Clone)]
pub struct Admin {
    /// Accepted bearer tokens for `/api/...`; distinct from the webhook tokens, so that
    /// whoever can send events cannot replay or read deliveries. Required, non-empty,
    /// each at least 16 characters.
    pub tokens: Vec<SecretString>,
    /// Tokens that may read (the API's `GET`s, the dashboard) but not retry. Distinct from
    /// the admin and webhook tokens. Default: none.
    pub viewer_tokens: Vec<SecretString>,
}

/// The design-system platform (`platform`).
#[derive(Debug, Clone)]
pub struct Platform {
    /// API base. Default: `https://api.supernova.io/api/v2`.
    pub api_url: Url,
    /// Personal access token, sent only to `api_url`'s origin. Default: none.
    pub token: Option<SecretString>,
    /// Hosts artifacts may be downloaded from (`*.` matches any subdomain).
    /// Default: `["*.supernova.io"]`.
    pub download_hosts: Vec<HostPattern>,
    /// Hosts allowed over plain `http://` and allowed to resolve to loopback or private
    /// addresses. Applies to downloads and to every URL in `connections`. Default: none.
    pub insecure_hosts: Vec<HostPattern>,
    /// Certificate authorities trusted for downloads and the platform API, on top of the
    /// system's. Default: none.
    pub tls: Option<TlsRoots>,
    /// The proxies downloads and the platform API go through: `platform.proxy`, or the
    /// environment's (`HTTPS_PROXY`, `NO_PROXY`, ...).
    pub proxy: crate::proxy::Proxies,
}

/// Certificate authorities trusted on top of the system's roots (never instead of them),
/// read from a PEM file at load.
#[derive(Clone)]
pub struct TlsRoots {
    pub ca_file: PathBuf,
    /// The certificates, DER-encoded.
    pub certs: Arc<Vec<Vec<u8>>>,
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TlsRoots({}, {} certificates)",
            self.ca_file.display(),
            self.certs.len()
        )
    }
}

/// A host name, or `*.` and a domain to match every subdomain of it (not the domain
/// itself). Compared case-insensitively; no scheme, port or path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(String);

impl HostPattern {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host);
        match self.0.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == self.0,
        }
    }
}

/// `limits`: both sections default independently, field by field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub archive: ArchiveLimits,
    pub download: DownloadLimits,
}

/// A named connection (`connections.NAME`).
#[derive(Debug, Clone)]
pub struct Connection {
    pub name: String,
    pub kind: ConnectionKind,
    /// The key its targets sign their commits with, unless they name their own.
    pub signing: Option<crate::signing::SigningKey>,
    /// Certificate authorities trusted for its API and git traffic, on top of the system's.
    pub tls: Option<TlsRoots>,
    /// The proxies its API and git traffic go through: its `proxy`, or the environment's.
    pub proxy: crate::proxy::Proxies,
}

/// What a connection talks to, with its kind's settings resolved.
#[derive(Debug, Clone)]
pub enum ConnectionKind {
    Github(GithubConnection),
    Gitlab(GitlabConnection),
    Azure(AzureConnection),
    Git(GitConnection),
}

impl ConnectionKind {
    /// `github`, `gitlab`, `azure` or `git`, as written in `kind:`.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionKind::Github(_) => "github",
            ConnectionKind::Gitlab(_) => "gitlab",
            ConnectionKind::Azure(_) => "azure",
            ConnectionKind::Git(_) => "git",
        }
    }

    /// Whether targets on this connection open pull/merge requests.
    pub fn opens_pull_requests(&self) -> bool {
        !matches!(self, ConnectionKind::Git(_))
    }
}

#[derive(Debug, Clone)]
pub struct GithubConnection {
    pub auth: GithubAuth,
    /// REST API base. Default: `https://api.github.com`; GitHub Enterprise Server:
    /// `https://HOST/api/v3`.
    pub api_url: Url,
    /// Base that clone URLs are built on (`{git_url}/{owner}/{repo}.git`). Default:
    /// `https://github.com/` for github.com, else `api_url` without `/api/v3`.
    pub git_url: Url,
    /// How the commit reaches the head branch. Default: [`Commits::Git`].
    pub commits: Commits,
}

/// How a github connection's commits reach the head branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Commits {
    /// Written by Courier and pushed with git.
    #[default]
    Git,
    /// Created through GitHub's Git database API, which signs it for the token's
    /// identity, so GitHub shows it as verified without a key of Courier's.
    Api,
}

#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// A personal access token (classic or fine-grained).
    Token(SecretString),
    /// A GitHub App installation.
    App(GithubApp),
}

#[derive(Debug, Clone)]
pub struct GithubApp {
    pub app_id: u64,
    /// PEM private key, resolved against the configuration file's directory.
    pub private_key_path: PathBuf,
    /// Default: looked up per repository.
    pub installation_id: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct GitlabConnection {
    /// Instance base. Default: `https://gitlab.com`.
    pub url: Url,
    /// Base clone URLs are built on. Default: `url`.
    pub git_url: Url,
    pub token: SecretString,
}

#[derive(Debug, Clone)]
pub struct AzureConnection {
    /// Organization (Azure DevOps Services) or collection (Azure DevOps Server).
    pub organization: String,
    /// Default: `https://dev.azure.com`.
    pub url: Url,
    /// Base clone URLs are built on. Default: `url`.
    pub git_url: Url,
    pub token: SecretString,
}

#[derive(Debug, Clone)]
pub struct GitConnection {
    /// Password or token for HTTP basic auth. Default: none (anonymous or `file://`).
    pub token: Option<SecretString>,
    /// User name sent with `token`. Default: none (the git layer picks one).
    pub username: Option<String>,
    /// How to reach `ssh://` and `user@host:path` repositories. Default: none (refused).
    pub ssh: Option<GitSsh>,
}

/// A git connection's SSH access: a private key and the host keys to trust.
#[derive(Debug, Clone)]
pub struct GitSsh {
    pub key: PathBuf,
    pub passphrase: Option<SecretString>,
    pub known_hosts: PathBuf,
}

/// One entry of `hooks`.
#[derive(Debug, Clone)]
pub struct HookEntry {
    /// Free text for logs and the deliveries list. Default: none.
    pub name: Option<String>,
    pub matcher: Match,
    /// Where the export goes; empty means "only build": the job is recorded, nothing is
    /// delivered.
    pub targets: Vec<Target>,
}

/// `match`: `any`, or keys that must all equal the event's values.
// One per hook entry, built once at load: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Any,
    Keys(MatchKeys),
}

/// The keys of a `match` mapping; at least one is set. Compared exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchKeys {
    pub workspace_id: Option<String>,
    pub workspace_name: Option<String>,
    pub hook_id: Option<String>,
    pub hook_name: Option<String>,
    pub exporter_id: Option<String>,
    pub exporter_name: Option<String>,
    pub design_system_id: Option<String>,
    pub design_system_name: Option<String>,
    pub version_id: Option<String>,
    pub version_name: Option<String>,
    /// The version label, e.g. `v0.1`.
    pub version: Option<String>,
}

/// One delivery target of a hook entry, validated. Defaults are those documented on
/// each field; key paths such as `hooks[0].targets[1]` are in [`Target::key`], the
/// stable identity in [`Target::id`].
#[derive(Debug, Clone)]
pub struct Target {
    /// Stable identity, unique in the configuration: what anything that outlives a
    /// configuration change (a queued delivery, a commit trailer, a pull request marker)
    /// names the target by. The `id` key, or by default what the target delivers to:
    /// `{connection}:{repository}@{branch}`, plus `:{relative_path}` when one is set.
    /// Never derived from the target's position, so reordering the file keeps it.
    pub id: String,
    /// `hooks[H].targets[T]`, the target's position in the file: for error messages and
    /// logs only, since it changes when entries or targets are reordered.
    pub key: String,
    pub hook_index: usize,
    pub target_index: usize,
    /// Name of the connection (a key of `connections`).
    pub connection: String,
    /// As written, normalised: GitHub `owner/repo`, GitLab `group/…/project`, Azure
    /// `project/repository`, git: the clone URL.
    pub repository: String,
    /// Base branch (the pull request's target) as configured. Not configured: `main`, the
    /// name the target's id and head branch are derived from (as they were when that was
    /// the default), while the base itself is the repository's default branch (see
    /// `branch_from_remote`).
    pub branch: String,
    /// `branch` was not configured: the delivery is built on, and the pull request
    /// targets, the repository's default branch, read from the remote's `HEAD`.
    pub branch_from_remote: bool,
    /// Head branch template. Default: `courier/{{ hook.id }}/<base branch and
    /// relative path>-<hash>`, unique per (hook, base branch, relative path).
    pub head_branch: String,
    /// Directory the export is written into. Default: none (the repository root).
    pub relative_path: Option<RelPath>,
    /// Delete files under `relative_path` that the export does not contain. Default: false.
    pub purge_directory: bool,
    /// Allow `purge_directory` without `relative_path`. Default: false.
    pub allow_purge_root: bool,
    /// Default: `Courier`.
    pub commit_author_name: String,
    /// Default: `courier@noreply.invalid`.
    pub commit_author_email: String,
    /// Template. Default: [`DEFAULT_COMMIT_MESSAGE`].
    pub commit_message: String,
    /// Template. Default: [`DEFAULT_PULL_REQUEST_TITLE`].
    pub pull_request_title: String,
    /// Template. Default: [`DEFAULT_PULL_REQUEST_DESCRIPTION`].
    pub pull_request_description: String,
    /// Default: none.
    pub labels: Vec<String>,
    /// User reviewers. Default: none.
    pub reviewers: Vec<String>,
    /// GitHub team slugs requested as reviewers. Default: none.
    pub team_reviewers: Vec<String>,
    /// Default: none.
    pub assignees: Vec<String>,
    /// Open the pull request as a draft. Default: false.
    pub draft: bool,
    /// Rewrite the title and description when an open pull request is updated. Default: true.
    pub update_description: bool,
    /// Delete the head branch when its pull request is closed because the export
    /// equals the base. Default: true.
    pub delete_branch_on_converge: bool,
    /// Ask the provider to merge when checks pass. Default: false.
    pub auto_merge: bool,
    /// Deliver an export with no files (with `purge_directory`, this empties the
    /// directory). Default: false.
    pub allow_empty_export: bool,
    /// Allow writing under protected paths such as `.github/`. Default: false.
    pub allow_protected_paths: bool,
    /// Replace the head branch even when someone else committed to it. Default: false.
    pub overwrite_diverged: bool,
    /// The key Courier signs its commits with, unlocked at load. Default: unsigned.
    pub signing: Option<crate::signing::SigningKey>,
    /// The URL the repository is fetched from and pushed to (never with credentials).
    pub clone_url: Url,
}

/// Default commit message template.
pub const DEFAULT_COMMIT_MESSAGE: &str = "Update {{ design_system.name }} ({{ version.name }}) from {{ exporter.name }}\n\nExported by Supernova job {{ job.id }} of hook \"{{ hook.name }}\" ({{ hook.id }}).";
/// Default pull request title template.
pub const DEFAULT_PULL_REQUEST_TITLE: &str =
    "{{ design_system.name }} {{ version.version }}: {{ exporter.name }} export";
/// Default pull request description template.
pub const DEFAULT_PULL_REQUEST_DESCRIPTION: &str = "This pull request was opened by Courier from a Supernova export.

| | |
| --- | --- |
| Design system | {{ design_system.name }} ({{ design_system.id }}) |
| Version | {{ version.name }} {{ version.version }} ({{ version.id }}) |
| Exporter | {{ exporter.name }} ({{ exporter.id }}) |
| Hook | {{ hook.name }} ({{ hook.id }}) |
| Job | {{ job.id }} |
| Path | {{ target.relative_path or \"(repository root)\" }} |
{% if export is defined %}| Export | {{ export.files }} {{ \"file\" if export.files == 1 else \"files\" }}, {{ export.bytes }} bytes |
{% if export.added is not none %}| Changes | {{ export.added }} added, {{ export.modified }} modified, {{ export.deleted }} deleted |
{% endif %}{% if export.tokens.summary %}
### Design tokens

{{ export.tokens.summary }}.

{{ export.tokens.table }}
{% endif %}{% if export.directories %}
| Directory | Added | Modified | Deleted |
| --- | ---: | ---: | ---: |
{% for dir in export.directories %}| `{{ dir.name }}` | {{ dir.added }} | {{ dir.modified }} | {{ dir.deleted }} |
{% endfor %}{% endif %}{% if export.notes %}
The exporter reported:
{% for note in export.notes %}
- {{ note }}{% endfor %}
{% endif %}{% endif %}
Changes pushed to this branch by people are not overwritten; Courier stops updating it instead.";
/// The base branch name a target without `branch` is identified and named by.
pub const DEFAULT_BRANCH_NAME: &str = "main";
/// Default author name.
pub const DEFAULT_AUTHOR_NAME: &str = "Courier";
/// Default author e-mail (the `.invalid` domain can never receive mail).
pub const DEFAULT_AUTHOR_EMAIL: &str = "courier@noreply.invalid";

impl Target {
    /// The clone URL (see [`Target::clone_url`] field). Kept as a method for callers
    /// holding the connection; the URL was resolved from it at load time.
    pub fn clone_url(&self) -> &Url {
        &self.clone_url
    }

    /// The facts templates see as `target.*`.
    pub fn facts(&self) -> TargetFacts {
        TargetFacts {
            connection: self.connection.clone(),
            repository: self.repository.clone(),
            branch: self.branch.clone(),
            relative_path: self.relative_path.as_ref().map(|p| p.to_string()),
        }
    }

    /// Name of one of this target's templates in [`Templates`].
    pub fn template_name(&self, field: TemplateField) -> String {
        format!("{}.{}", self.key, field.key())
    }
}

/// Configuration files are small; anything bigger is a mistake (or not YAML).
const MAX_CONFIG_BYTES: u64 = 4 << 20;

impl Config {
    /// Reads and validates the file at `path` with the process environment. Relative
    /// paths inside it resolve against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with an injected environment.
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
                size: meta.len(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let base_dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        validate::load(&text, &path.display().to_string(), &base_dir, env)
    }

    /// Parses and validates `text`; `source_name` names it in errors. Relative paths
    /// resolve against the current directory.
    pub fn from_yaml_str(
        text: &str,
        source_name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        validate::load(text, source_name, Path::new("."), env)
    }

    /// [`Config::from_yaml_str`] with relative paths resolved against `base_dir`.
    pub fn from_yaml_str_in(
        text: &str,
        source_name: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        validate::load(text, source_name, base_dir, env)
    }

    /// The connection a target uses; it exists by validation.
    pub fn connection(&self, target: &Target) -> &Connection {
        &self.connections[&target.connection]
    }

    /// Every target of every hook entry, in file order.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.hooks.iter().flat_map(|h| &h.targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let p = HostPattern("*.supernova.io".to_owned());
        assert!(p.matches("example.supernova.io"));
        assert!(p.matches("A.B.Supernova.IO"));
        assert!(!p.matches("supernova.io"));
        assert!(!p.matches("evilsupernova.io"));
        assert!(!p.matches("supernova.io.evil.com"));
        let exact = HostPattern("127.0.0.1".to_owned());
        assert!(exact.matches("127.0.0.1"));
        assert!(!exact.matches("127.0.0.10"));
        let v6 = HostPattern("::1".to_owned());
        assert!(v6.matches("[::1]"));
    }
}
