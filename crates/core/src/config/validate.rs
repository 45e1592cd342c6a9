//! Raw configuration to validated [`Config`], collecting every problem.
//!
//! Each check pushes a [`Problem`] with the key path and carries on with a
//! placeholder, so one run reports everything wrong with the file. The placeholders
//! never escape: any problem turns the result into [`ConfigError::Invalid`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::error::{ConfigError, Location, Problem};
use super::interpolate::interpolate;
use super::locate::locate;
use super::raw::{
    IdString, RawAdmin, RawConfig, RawConnection, RawGithubApp, RawHook, RawKind, RawMatch,
    RawPlatform, RawTarget, RawWebhook,
};
use super::{
    Admin, AzureConnection, Config, Connection, ConnectionKind, DEFAULT_AUTHOR_EMAIL,
    DEFAULT_AUTHOR_NAME, DEFAULT_COMMIT_MESSAGE, DEFAULT_PULL_REQUEST_DESCRIPTION,
    DEFAULT_PULL_REQUEST_TITLE, GitConnection, GithubApp, GithubAuth, GithubConnection,
    GitlabConnection, HookEntry, HostPattern, Limits, Match, MatchKeys, Platform, Store, Target,
    Webhook,
};
use crate::paths::RelPath;
use crate::template::{TemplateField, Templates, check_branch_name};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_DATA_DIR: &str = "./.courier";
const DEFAULT_PLATFORM_API: &str = "https://api.supernova.io/api/v2";
const DEFAULT_DOWNLOAD_HOSTS: &[&str] = &["*.supernova.io"];
const DEFAULT_GITHUB_API: &str = "https://api.github.com";
const DEFAULT_GITLAB_URL: &str = "https://gitlab.com";
const DEFAULT_AZURE_URL: &str = "https://dev.azure.com";
const DEFAULT_WORKERS: u32 = 4;
const MAX_WORKERS: u32 = 256;
const MIN_WEBHOOK_TOKEN_CHARS: usize = 16;

pub(super) fn load(
    text: &str,
    source_name: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        source_name: source_name.to_owned(),
        problems,
    };
    let raw = parse(text).map_err(|p| invalid(vec![p]))?;
    let mut v = Validator {
        env,
        base_dir,
        problems: Vec::new(),
        templates: Templates::new(),
        insecure_hosts: Vec::new(),
        broken_connections: Vec::new(),
    };
    let config = v.config(raw);
    if v.problems.is_empty() {
        return Ok(config);
    }
    for problem in &mut v.problems {
        if problem.location.is_none() {
            problem.location = locate(text, &problem.path);
        }
    }
    // Top to bottom, the order a person fixes them in.
    v.problems
        .sort_by_key(|p| p.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
    Err(invalid(v.problems))
}

fn parse(text: &str) -> Result<RawConfig, Problem> {
    if text.trim().is_empty() {
        return Err(Problem::at(
            "",
            "the configuration is empty; at least one entry under `hooks` is required",
        ));
    }
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        // serde_path_to_error writes `?` for a position it could not name (inside a
        // YAML syntax error); the location says more.
        let path = error.path().to_string();
        let mut path = path.trim_end_matches(".?").to_owned();
        if path == "." || path == "?" {
            path.clear();
        }
        let inner = error.into_inner();
        let location = inner.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        });
        let mut message = inner.to_string();
        // serde_norway appends the position and prefixes its own key path; both are
        // printed from the structured fields instead.
        if let Some(loc) = location {
            let at = format!(" at line {} column {}", loc.line, loc.column);
            message = message.replacen(&at, "", 1);
        }
        // Its key path is the parent of ours for an unknown key, ours otherwise.
        let mut prefix = path.as_str();
        while !prefix.is_empty() {
            if let Some(stripped) = message.strip_prefix(&format!("{prefix}: ")) {
                message = stripped.to_owned();
                break;
            }
            prefix = &prefix[..prefix.rfind(['.', '[']).unwrap_or(0)];
        }
        Problem {
            path,
            location,
            message,
        }
    })
}

struct Validator<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    base_dir: &'a Path,
    problems: Vec<Problem>,
    templates: Templates,
    insecure_hosts: Vec<HostPattern>,
    /// Connections that exist but failed validation: targets naming them are not
    /// "unknown connection" errors (the connection's own problem is reported).
    broken_connections: Vec<String>,
}

/// What the duplicate check needs to know about one target.
struct BranchClaim {
    key: String,
    hook_index: usize,
    clone_url: String,
    sample_branch: String,
    uses_event: bool,
}

impl Validator<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::at(path, message));
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let listen = self.listen(raw.listen.as_deref());
        let data_dir = self.data_dir(raw.data_dir.as_deref());
        let store = self.store(raw.store.as_ref(), &data_dir);
        let platform = self.platform(raw.platform);
        let webhook = self.webhook(raw.webhook, listen, &platform);
        let admin = self.admin(raw.admin, webhook.as_ref());
        let limits = Limits {
            archive: raw.limits.archive,
            download: raw.limits.download,
        };
        self.limits(&limits);
        let workers = raw.workers.unwrap_or(DEFAULT_WORKERS);
        if workers == 0 || workers > MAX_WORKERS {
            self.problem("workers", format!("must be between 1 and {MAX_WORKERS}"));
        }
        let connections = self.connections(raw.connections);
        let hooks = self.hooks(raw.hooks, &connections);
        Config {
            listen,
            data_dir,
            store,
            webhook,
            admin,
            platform,
            limits,
            workers,
            connections,
            hooks,
            templates: std::mem::take(&mut self.templates),
        }
    }

    // ---- strings -------------------------------------------------------------------

    /// Interpolates a string value; `None` (with a problem recorded) on failure.
    fn text(&mut self, path: &str, raw: &str) -> Option<String> {
        match interpolate(raw, self.env) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(path, e.to_string());
                None
            }
        }
    }

    /// Interpolates a string that must not be empty.
    fn non_empty(&mut self, path: &str, raw: &str) -> Option<String> {
        let s = self.text(path, raw)?;
        if s.trim().is_empty() {
            self.problem(path, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn id(&mut self, path: &str, raw: &IdString) -> Option<String> {
        self.non_empty(path, &raw.0)
    }

    fn list(&mut self, path: &str, raw: Option<&Vec<String>>) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in raw.into_iter().flatten().enumerate() {
            if let Some(s) = self.non_empty(&format!("{path}[{i}]"), item) {
                out.push(s);
            }
        }
        out
    }

    /// Interpolates a secret without ever copying its value into a message.
    fn secret(&mut self, path: &str, raw: &SecretString) -> Option<SecretString> {
        let value = self.text(path, raw.expose_secret())?;
        if value.trim().is_empty() {
            self.problem(path, "must not be empty");
            return None;
        }
        Some(SecretString::from(value))
    }

    fn path(&mut self, path: &str, raw: &str) -> Option<PathBuf> {
        let s = self.non_empty(path, raw)?;
        Some(normalize(&self.base_dir.join(s)))
    }

    /// An http(s) base URL: https, or http to an insecure host; no credentials,
    /// query or fragment.
    fn url(&mut self, path: &str, raw: &str) -> Option<Url> {
        let s = self.non_empty(path, raw)?;
        let url = match Url::parse(&s) {
            Ok(url) => url,
            Err(e) => {
                self.problem(path, format!("not a valid URL: {e}"));
                return None;
            }
        };
        match url.scheme() {
            "https" => {}
            "http" => {
                let host = url.host_str().unwrap_or_default();
                if !self.insecure_hosts.iter().any(|p| p.matches(host)) {
                    self.problem(
                        path,
                        format!(
                            "plain http is allowed only for hosts listed in platform.insecure_hosts (`{host}` is not)"
                        ),
                    );
                    return None;
                }
            }
            other => {
                self.problem(
                    path,
                    format!("scheme `{other}` is not supported; use https"),
                );
                return None;
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            self.problem(path, "URL has no host");
            return None;
        }
        if !self.no_credentials_in(path, &url) {
            return None;
        }
        if url.query().is_some() || url.fragment().is_some() {
            self.problem(path, "must not have a query or fragment");
            return None;
        }
        Some(url)
    }

    fn no_credentials_in(&mut self, path: &str, url: &Url) -> bool {
        if !url.username().is_empty() || url.password().is_some() {
            self.problem(
                path,
                "must not contain credentials; put them in the connection's `token`/`username`",
            );
            return false;
        }
        true
    }

    // ---- top level -----------------------------------------------------------------

    fn listen(&mut self, raw: Option<&str>) -> SocketAddr {
        let fallback: SocketAddr = DEFAULT_LISTEN.parse().expect("default listen address");
        let Some(raw) = raw else {
            return fallback;
        };
        let Some(s) = self.non_empty("listen", raw) else {
            return fallback;
        };
        match s.parse() {
            Ok(addr) => addr,
            Err(_) => {
                self.problem(
                    "listen",
                    format!("`{s}` is not an IP:PORT address such as 127.0.0.1:8080 or [::]:8080"),
                );
                fallback
            }
        }
    }

    fn data_dir(&mut self, raw: Option<&str>) -> PathBuf {
        let raw = raw.unwrap_or(DEFAULT_DATA_DIR);
        self.path("data_dir", raw)
            .unwrap_or_else(|| self.base_dir.join(DEFAULT_DATA_DIR))
    }

    fn store(&mut self, raw: Option<&SecretString>, data_dir: &Path) -> Store {
        let fallback = Store::Sqlite {
            path: data_dir.join("courier.db"),
        };
        let Some(raw) = raw else {
            return fallback;
        };
        let Some(value) = self.secret("store", raw) else {
            return fallback;
        };
        let text = value.expose_secret();
        if let Some(path) = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            if path.is_empty() || path.starts_with(":memory:") {
                self.problem(
                    "store",
                    "sqlite store needs a file path (sqlite://PATH); an in-memory database would lose every job on restart",
                );
                return fallback;
            }
            return Store::Sqlite {
                path: normalize(&self.base_dir.join(path)),
            };
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            // The URL may hold a password: report the parser's reason, never the input.
            if let Err(e) = Url::parse(text) {
                self.problem("store", format!("not a valid PostgreSQL URL: {e}"));
                return fallback;
            }
            return Store::Postgres { url: value };
        }
        self.problem(
            "store",
            "expected `sqlite://PATH` or `postgres://USER@HOST/DATABASE`",
        );
        fallback
    }

    fn platform(&mut self, raw: Option<RawPlatform>) -> Platform {
        let raw = raw.unwrap_or(RawPlatform {
            api_url: None,
            token: None,
            download_hosts: None,
            insecure_hosts: Vec::new(),
        });
        // Insecure hosts first: every URL check below depends on them. They lift the SSRF
        // guard, so each one is named: no wildcards.
        self.insecure_hosts = self.host_patterns("platform.insecure_hosts", &raw.insecure_hosts);
        for (i, pattern) in self.insecure_hosts.clone().iter().enumerate() {
            if pattern.as_str().starts_with("*.") {
                self.problem(
                    format!("platform.insecure_hosts[{i}]"),
                    "name each host: a wildcard would let every matching host reach private addresses",
                );
            }
        }
        let download_hosts = match &raw.download_hosts {
            Some(hosts) => {
                if hosts.is_empty() {
                    self.problem(
                        "platform.download_hosts",
                        "must list at least one host, or be left out for the default",
                    );
                }
                self.host_patterns("platform.download_hosts", hosts)
            }
            None => DEFAULT_DOWNLOAD_HOSTS
                .iter()
                .map(|h| HostPattern((*h).to_owned()))
                .collect(),
        };
        let api_url = raw
            .api_url
            .as_deref()
            .and_then(|u| self.url("platform.api_url", u))
            .unwrap_or_else(|| Url::parse(DEFAULT_PLATFORM_API).expect("default platform URL"));
        let token = raw
            .token
            .as_ref()
            .and_then(|t| self.secret("platform.token", t));
        Platform {
            api_url,
            token,
            download_hosts,
            insecure_hosts: self.insecure_hosts.clone(),
        }
    }

    fn host_patterns(&mut self, path: &str, raw: &[String]) -> Vec<HostPattern> {
        let mut out = Vec::new();
        for (i, item) in raw.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let Some(s) = self.non_empty(&item_path, item) else {
                continue;
            };
            match host_pattern(&s) {
                Ok(p) => out.push(p),
                Err(why) => self.problem(item_path, why),
            }
        }
        out
    }

    fn webhook(
        &mut self,
        raw: Option<RawWebhook>,
        listen: SocketAddr,
        platform: &Platform,
    ) -> Option<Webhook> {
        let Some(raw) = raw else {
            if !listen.ip().is_loopback() {
                self.problem(
                    "webhook",
                    format!(
                        "required when `listen` ({listen}) is not a loopback address: without `webhook.tokens` anyone who can reach Courier could submit jobs"
                    ),
                );
            }
            return None;
        };
        let tokens = self.tokens("webhook.tokens", &raw.tokens);
        let allowed_workspaces = raw
            .allowed_workspaces
            .iter()
            .enumerate()
            .filter_map(|(i, id)| self.id(&format!("webhook.allowed_workspaces[{i}]"), id))
            .collect();
        let allowed_design_systems = raw
            .allowed_design_systems
            .iter()
            .enumerate()
            .filter_map(|(i, id)| self.id(&format!("webhook.allowed_design_systems[{i}]"), id))
            .collect();
        if raw.verify_with_platform && platform.token.is_none() {
            self.problem(
                "webhook.verify_with_platform",
                "needs `platform.token` to read the job back from the platform",
            );
        }
        Some(Webhook {
            tokens,
            allowed_workspaces,
            allowed_design_systems,
            verify_with_platform: raw.verify_with_platform,
        })
    }

    fn admin(&mut self, raw: Option<RawAdmin>, webhook: Option<&Webhook>) -> Option<Admin> {
        let raw = raw?;
        let tokens = self.tokens("admin.tokens", &raw.tokens);
        let shared = tokens.iter().any(|admin| {
            webhook.is_some_and(|w| {
                w.tokens
                    .iter()
                    .any(|hook| hook.expose_secret() == admin.expose_secret())
            })
        });
        if shared {
            self.problem(
                "admin.tokens",
                "must differ from every webhook token: whoever sends events must not be able to read or replay deliveries",
            );
        }
        Some(Admin { tokens })
    }

    /// A non-empty list of secrets, each long enough to resist guessing.
    fn tokens(&mut self, path: &str, raw: &[SecretString]) -> Vec<SecretString> {
        if raw.is_empty() {
            self.problem(path, "must list at least one token");
        }
        let mut tokens = Vec::new();
        for (i, token) in raw.iter().enumerate() {
            let item = format!("{path}[{i}]");
            let Some(token) = self.secret(&item, token) else {
                continue;
            };
            if token.expose_secret().chars().count() < MIN_WEBHOOK_TOKEN_CHARS {
                self.problem(
                    item,
                    format!(
                        "too short: use at least {MIN_WEBHOOK_TOKEN_CHARS} random characters (e.g. `openssl rand -hex 32`)"
                    ),
                );
                continue;
            }
            tokens.push(token);
        }
        tokens
    }

    fn limits(&mut self, limits: &Limits) {
        let a = &limits.archive;
        let d = &limits.download;
        let positive = [
            ("limits.archive.max_entries", a.max_entries),
            ("limits.archive.max_total_bytes", a.max_total_bytes),
            ("limits.archive.max_entry_bytes", a.max_entry_bytes),
            (
                "limits.archive.max_compression_ratio",
                a.max_compression_ratio,
            ),
            ("limits.download.max_bytes", d.max_bytes),
            (
                "limits.download.connect_timeout_secs",
                d.connect_timeout_secs,
            ),
            ("limits.download.read_timeout_secs", d.read_timeout_secs),
            ("limits.download.total_timeout_secs", d.total_timeout_secs),
        ];
        for (path, value) in positive {
            if value == 0 {
                self.problem(path, "must be greater than 0");
            }
        }
        if a.max_entry_bytes > a.max_total_bytes && a.max_total_bytes > 0 {
            self.problem(
                "limits.archive.max_entry_bytes",
                "is larger than limits.archive.max_total_bytes",
            );
        }
    }

    // ---- connections ---------------------------------------------------------------

    fn connections(&mut self, raw: Vec<(String, RawConnection)>) -> BTreeMap<String, Connection> {
        let mut out = BTreeMap::new();
        for (name, raw) in raw {
            let path = format!("connections.{name}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                self.problem(
                    &path,
                    "connection names use letters, digits, `_` and `-` only",
                );
            }
            match self.connection_kind(&path, raw) {
                Some(kind) => {
                    out.insert(name.clone(), Connection { name, kind });
                }
                None => self.broken_connections.push(name),
            }
        }
        out
    }

    fn not_for_kind(&mut self, path: &str, kind: &str, checks: &[(&str, bool)]) {
        for (key, present) in checks {
            if *present {
                self.problem(
                    format!("{path}.{key}"),
                    format!("does not apply to a `{kind}` connection"),
                );
            }
        }
    }

    fn required_secret(
        &mut self,
        path: &str,
        kind: &str,
        raw: Option<&SecretString>,
    ) -> Option<SecretString> {
        match raw {
            Some(t) => self.secret(&format!("{path}.token"), t),
            None => {
                self.problem(
                    format!("{path}.token"),
                    format!("required for a `{kind}` connection"),
                );
                None
            }
        }
    }

    fn connection_kind(&mut self, path: &str, raw: RawConnection) -> Option<ConnectionKind> {
        match raw.kind {
            RawKind::Github => {
                self.not_for_kind(
                    path,
                    "github",
                    &[
                        ("url", raw.url.is_some()),
                        ("organization", raw.organization.is_some()),
                        ("username", raw.username.is_some()),
                    ],
                );
                let auth = match (&raw.token, &raw.app) {
                    (Some(_), Some(_)) => {
                        self.problem(path, "set either `token` or `app`, not both");
                        None
                    }
                    (None, None) => {
                        self.problem(
                            path,
                            "a `github` connection needs `token` (a personal access token) or `app`",
                        );
                        None
                    }
                    (Some(token), None) => self
                        .secret(&format!("{path}.token"), token)
                        .map(GithubAuth::Token),
                    (None, Some(app)) => self.github_app(&format!("{path}.app"), app),
                };
                let api_url = match &raw.api_url {
                    Some(u) => self.url(&format!("{path}.api_url"), u),
                    None => Some(Url::parse(DEFAULT_GITHUB_API).expect("default GitHub API")),
                };
                let git_url = match (&raw.git_url, &api_url) {
                    (Some(u), _) => self.url(&format!("{path}.git_url"), u),
                    (None, Some(api)) => Some(github_git_base(api)),
                    (None, None) => None,
                };
                Some(ConnectionKind::Github(GithubConnection {
                    auth: auth?,
                    api_url: api_url?,
                    git_url: with_trailing_slash(git_url?),
                }))
            }
            RawKind::Gitlab => {
                self.not_for_kind(
                    path,
                    "gitlab",
                    &[
                        ("app", raw.app.is_some()),
                        ("api_url", raw.api_url.is_some()),
                        ("organization", raw.organization.is_some()),
                        ("username", raw.username.is_some()),
                    ],
                );
                let token = self.required_secret(path, "gitlab", raw.token.as_ref());
                let url = match &raw.url {
                    Some(u) => self.url(&format!("{path}.url"), u),
                    None => Some(Url::parse(DEFAULT_GITLAB_URL).expect("default GitLab URL")),
                };
                let git_url = match &raw.git_url {
                    Some(u) => self.url(&format!("{path}.git_url"), u),
                    None => url.clone(),
                };
                Some(ConnectionKind::Gitlab(GitlabConnection {
                    url: url?,
                    git_url: with_trailing_slash(git_url?),
                    token: token?,
                }))
            }
            RawKind::Azure => {
                self.not_for_kind(
                    path,
                    "azure",
                    &[
                        ("app", raw.app.is_some()),
                        ("api_url", raw.api_url.is_some()),
                        ("username", raw.username.is_some()),
                    ],
                );
                let token = self.required_secret(path, "azure", raw.token.as_ref());
                let organization = match &raw.organization {
                    Some(o) => self
                        .non_empty(&format!("{path}.organization"), o)
                        .and_then(|o| {
                            if azure_name_ok(&o) {
                                Some(o)
                            } else {
                                self.problem(
                                    format!("{path}.organization"),
                                    "not a valid Azure DevOps organization name",
                                );
                                None
                            }
                        }),
                    None => {
                        self.problem(
                            format!("{path}.organization"),
                            "required for an `azure` connection",
                        );
                        None
                    }
                };
                let url = match &raw.url {
                    Some(u) => self.url(&format!("{path}.url"), u),
                    None => Some(Url::parse(DEFAULT_AZURE_URL).expect("default Azure URL")),
                };
                let git_url = match &raw.git_url {
                    Some(u) => self.url(&format!("{path}.git_url"), u),
                    None => url.clone(),
                };
                Some(ConnectionKind::Azure(AzureConnection {
                    organization: organization?,
                    url: url?,
                    git_url: with_trailing_slash(git_url?),
                    token: token?,
                }))
            }
            RawKind::Git => {
                self.not_for_kind(
                    path,
                    "git",
                    &[
                        ("app", raw.app.is_some()),
                        ("api_url", raw.api_url.is_some()),
                        ("git_url", raw.git_url.is_some()),
                        ("url", raw.url.is_some()),
                        ("organization", raw.organization.is_some()),
                    ],
                );
                let token = match &raw.token {
                    Some(t) => Some(self.secret(&format!("{path}.token"), t)?),
                    None => None,
                };
                let username = match &raw.username {
                    Some(u) => Some(self.non_empty(&format!("{path}.username"), u)?),
                    None => None,
                };
                Some(ConnectionKind::Git(GitConnection { token, username }))
            }
        }
    }

    fn github_app(&mut self, path: &str, raw: &RawGithubApp) -> Option<GithubAuth> {
        let number = |v: &mut Self, key: &str, raw: &IdString| -> Option<u64> {
            let p = format!("{path}.{key}");
            let s = v.id(&p, raw)?;
            match s.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    v.problem(p, "must be a positive integer");
                    None
                }
            }
        };
        let app_id = number(self, "app_id", &raw.app_id);
        let installation_id = raw
            .installation_id
            .as_ref()
            .map(|id| number(self, "installation_id", id));
        let private_key_path =
            self.path(&format!("{path}.private_key_path"), &raw.private_key_path);
        Some(GithubAuth::App(GithubApp {
            app_id: app_id?,
            private_key_path: private_key_path?,
            installation_id: installation_id.map_or(Some(None), |id| id.map(Some))?,
        }))
    }

    // ---- hooks ---------------------------------------------------------------------

    fn hooks(
        &mut self,
        raw: Vec<RawHook>,
        connections: &BTreeMap<String, Connection>,
    ) -> Vec<HookEntry> {
        if raw.is_empty() {
            self.problem(
                "hooks",
                "at least one hook entry is required (`match: any` with `targets: []` records every job without delivering)",
            );
        }
        let mut hooks = Vec::new();
        let mut claims = Vec::new();
        for (h, raw_hook) in raw.into_iter().enumerate() {
            let path = format!("hooks[{h}]");
            let name = raw_hook
                .name
                .as_deref()
                .and_then(|n| self.non_empty(&format!("{path}.name"), n));
            let matcher = self.matcher(&format!("{path}.match"), raw_hook.matcher);
            let mut targets = Vec::new();
            for (t, raw_target) in raw_hook.targets.iter().enumerate() {
                if let Some(target) = self.target(h, t, raw_target, connections) {
                    let name = target.template_name(TemplateField::HeadBranch);
                    if let Some(sample_branch) =
                        self.templates.render_sample_branch(&name, &target.facts())
                    {
                        claims.push(BranchClaim {
                            key: target.key.clone(),
                            hook_index: h,
                            clone_url: target.clone_url.to_string(),
                            sample_branch,
                            uses_event: self.templates.uses_event(&name),
                        });
                    }
                    targets.push(target);
                }
            }
            hooks.push(HookEntry {
                name,
                matcher,
                targets,
            });
        }
        self.duplicate_branches(&claims);
        hooks
    }

    /// Two targets pushing to one branch of one repository would overwrite each other.
    /// Within a hook entry every target sees the same job, so equal sample branches
    /// mean equal branches for every job. Across entries that holds only when the
    /// template does not depend on the event; other overlaps are found at routing time.
    fn duplicate_branches(&mut self, claims: &[BranchClaim]) {
        for (i, b) in claims.iter().enumerate() {
            let Some(a) = claims[..i].iter().find(|a| {
                a.clone_url == b.clone_url
                    && a.sample_branch == b.sample_branch
                    && (a.hook_index == b.hook_index || (!a.uses_event && !b.uses_event))
            }) else {
                continue;
            };
            let message = if a.hook_index == b.hook_index {
                format!(
                    "duplicate of {}: same repository and head branch (`{}` for the sample event); give one of them a different `relative_path`, `branch` or `head_branch`",
                    a.key, b.sample_branch
                )
            } else {
                format!(
                    "pushes to the same repository and head branch `{}` as {} in another hook entry; give one of them a different `head_branch`",
                    b.sample_branch, a.key
                )
            };
            self.problem(format!("{}.head_branch", b.key), message);
        }
    }

    fn matcher(&mut self, path: &str, raw: RawMatch) -> Match {
        let keys = match raw {
            RawMatch::Any => return Match::Any,
            RawMatch::Keys(keys) => keys,
        };
        let id = |v: &mut Self, key: &str, raw: &Option<IdString>| -> Option<String> {
            raw.as_ref().and_then(|r| v.id(&format!("{path}.{key}"), r))
        };
        let mut out = MatchKeys {
            workspace_id: id(self, "workspace_id", &keys.workspace_id),
            hook_id: id(self, "hook_id", &keys.hook_id),
            exporter_id: id(self, "exporter_id", &keys.exporter_id),
            design_system_id: id(self, "design_system_id", &keys.design_system_id),
            version_id: id(self, "version_id", &keys.version_id),
            ..MatchKeys::default()
        };
        let name = |v: &mut Self, key: &str, raw: &Option<String>| -> Option<String> {
            raw.as_ref()
                .and_then(|r| v.non_empty(&format!("{path}.{key}"), r))
        };
        out.workspace_name = name(self, "workspace_name", &keys.workspace_name);
        out.hook_name = name(self, "hook_name", &keys.hook_name);
        out.exporter_name = name(self, "exporter_name", &keys.exporter_name);
        out.design_system_name = name(self, "design_system_name", &keys.design_system_name);
        out.version_name = name(self, "version_name", &keys.version_name);
        out.version = name(self, "version", &keys.version);
        let given = [
            keys.workspace_id.is_some(),
            keys.hook_id.is_some(),
            keys.exporter_id.is_some(),
            keys.design_system_id.is_some(),
            keys.version_id.is_some(),
            keys.workspace_name.is_some(),
            keys.hook_name.is_some(),
            keys.exporter_name.is_some(),
            keys.design_system_name.is_some(),
            keys.version_name.is_some(),
            keys.version.is_some(),
        ];
        if !given.contains(&true) {
            self.problem(
                path,
                "no keys given, which would match every job; write `match: any` if that is intended",
            );
        }
        Match::Keys(out)
    }

    fn target(
        &mut self,
        h: usize,
        t: usize,
        raw: &RawTarget,
        connections: &BTreeMap<String, Connection>,
    ) -> Option<Target> {
        let key = format!("hooks[{h}].targets[{t}]");
        let p = |field: &str| format!("{key}.{field}");

        let connection_name = self.non_empty(&p("connection"), &raw.connection);
        let connection = connection_name.as_ref().and_then(|name| {
            let found = connections.get(name);
            if found.is_none() && !self.broken_connections.contains(name) {
                let known: Vec<&str> = connections.keys().map(String::as_str).collect();
                let defined = if known.is_empty() {
                    "no connections are defined".to_owned()
                } else {
                    format!("defined: {}", known.join(", "))
                };
                self.problem(
                    p("connection"),
                    format!("unknown connection `{name}` ({defined})"),
                );
            }
            found
        });
        let repository = self.non_empty(&p("repository"), &raw.repository);
        let resolved = match (connection, repository) {
            (Some(c), Some(r)) => self.repository(&p("repository"), c, &r),
            _ => None,
        };

        let branch = match &raw.branch {
            Some(b) => self.non_empty(&p("branch"), b).and_then(|b| {
                check_branch_name(&b)
                    .map_err(|rule| {
                        self.problem(p("branch"), format!("not a valid branch name: {rule}"))
                    })
                    .ok()
                    .map(|()| b)
            }),
            None => Some("main".to_owned()),
        };

        let relative_path = match &raw.relative_path {
            Some(rp) => match self.text(&p("relative_path"), rp) {
                // An empty or `/` path is how people write "the root".
                Some(s) if s.is_empty() || s == "/" => Some(None),
                Some(s) => match RelPath::parse(&s) {
                    Ok(path) => Some(Some(path)),
                    Err(rule) => {
                        self.problem(p("relative_path"), rule.to_string());
                        None
                    }
                },
                None => None,
            },
            None => Some(None),
        };

        let purge_directory = raw.purge_directory.unwrap_or(false);
        let allow_purge_root = raw.allow_purge_root.unwrap_or(false);
        if purge_directory && !allow_purge_root && matches!(relative_path, Some(None)) {
            self.problem(
                p("purge_directory"),
                "would delete every file of the repository that the export does not contain, because `relative_path` is the repository root; set `allow_purge_root: true` if that is intended",
            );
        }

        let commit_author_name = match &raw.commit_author_name {
            Some(n) => self.non_empty(&p("commit_author_name"), n).and_then(|n| {
                if n.contains(['<', '>', '\n']) {
                    self.problem(
                        p("commit_author_name"),
                        "must not contain `<`, `>` or a newline",
                    );
                    None
                } else {
                    Some(n)
                }
            }),
            None => Some(DEFAULT_AUTHOR_NAME.to_owned()),
        };
        let commit_author_email = match &raw.commit_author_email {
            Some(e) => self.non_empty(&p("commit_author_email"), e).and_then(|e| {
                let ok = e
                    .split_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
                    && !e.contains(['<', '>', ' ', '\n']);
                if ok {
                    Some(e)
                } else {
                    self.problem(p("commit_author_email"), "not an e-mail address");
                    None
                }
            }),
            None => Some(DEFAULT_AUTHOR_EMAIL.to_owned()),
        };

        // Kind-specific keys: refuse what the connection's kind would silently ignore.
        if let Some(conn) = connection {
            let pr_only: [(&str, bool); 9] = [
                ("pull_request_title", raw.pull_request_title.is_some()),
                (
                    "pull_request_description",
                    raw.pull_request_description.is_some(),
                ),
                ("labels", raw.labels.is_some()),
                ("reviewers", raw.reviewers.is_some()),
                ("team_reviewers", raw.team_reviewers.is_some()),
                ("assignees", raw.assignees.is_some()),
                ("draft", raw.draft.is_some()),
                ("update_description", raw.update_description.is_some()),
                ("auto_merge", raw.auto_merge.is_some()),
            ];
            match &conn.kind {
                ConnectionKind::Git(_) => {
                    for (field, present) in pr_only {
                        if present {
                            self.problem(
                                p(field),
                                "does not apply to a `git` connection (it pushes a branch and opens no pull request)",
                            );
                        }
                    }
                }
                ConnectionKind::Github(_) => {}
                ConnectionKind::Gitlab(_) | ConnectionKind::Azure(_) => {
                    if raw.team_reviewers.is_some() {
                        self.problem(
                            p("team_reviewers"),
                            format!(
                                "only GitHub has team reviewers; not a `{}` connection",
                                conn.kind.name()
                            ),
                        );
                    }
                }
            }
        }

        let labels = self.list(&p("labels"), raw.labels.as_ref());
        let reviewers = self.list(&p("reviewers"), raw.reviewers.as_ref());
        let team_reviewers = self.list(&p("team_reviewers"), raw.team_reviewers.as_ref());
        let assignees = self.list(&p("assignees"), raw.assignees.as_ref());

        let relative_for_default = relative_path.clone().flatten();
        let head_branch = match &raw.head_branch {
            Some(hb) => self.non_empty(&p("head_branch"), hb),
            None => branch
                .as_deref()
                .map(|b| default_head_branch(b, relative_for_default.as_ref())),
        };
        let commit_message = self.template_source(
            &p("commit_message"),
            raw.commit_message.as_deref(),
            DEFAULT_COMMIT_MESSAGE,
        );
        let pull_request_title = self.template_source(
            &p("pull_request_title"),
            raw.pull_request_title.as_deref(),
            DEFAULT_PULL_REQUEST_TITLE,
        );
        let pull_request_description = self.template_source(
            &p("pull_request_description"),
            raw.pull_request_description.as_deref(),
            DEFAULT_PULL_REQUEST_DESCRIPTION,
        );

        // Templates are compiled before the early returns below, so that one run
        // reports a template problem together with any other problem of the target.
        let mut templates_ok = true;
        let sources = [
            (TemplateField::HeadBranch, &head_branch),
            (TemplateField::CommitMessage, &commit_message),
            (TemplateField::PullRequestTitle, &pull_request_title),
            (
                TemplateField::PullRequestDescription,
                &pull_request_description,
            ),
        ];
        for (field, source) in sources {
            let Some(source) = source else { continue };
            let name = format!("{key}.{}", field.key());
            if let Err(e) = self.templates.add(&name, field, source) {
                self.problem(name, template_message(&e));
                templates_ok = false;
            }
        }
        if !templates_ok {
            return None;
        }

        let (repository, clone_url) = resolved?;
        let target = Target {
            key: key.clone(),
            hook_index: h,
            target_index: t,
            connection: connection_name?,
            repository,
            branch: branch?,
            head_branch: head_branch?,
            relative_path: relative_path?,
            purge_directory,
            allow_purge_root,
            commit_author_name: commit_author_name?,
            commit_author_email: commit_author_email?,
            commit_message: commit_message?,
            pull_request_title: pull_request_title?,
            pull_request_description: pull_request_description?,
            labels,
            reviewers,
            team_reviewers,
            assignees,
            draft: raw.draft.unwrap_or(false),
            update_description: raw.update_description.unwrap_or(true),
            delete_branch_on_converge: raw.delete_branch_on_converge.unwrap_or(true),
            auto_merge: raw.auto_merge.unwrap_or(false),
            allow_empty_export: raw.allow_empty_export.unwrap_or(false),
            allow_protected_paths: raw.allow_protected_paths.unwrap_or(false),
            overwrite_diverged: raw.overwrite_diverged.unwrap_or(false),
            clone_url,
        };
        Some(target)
    }

    fn template_source(&mut self, path: &str, raw: Option<&str>, default: &str) -> Option<String> {
        match raw {
            Some(s) => self.non_empty(path, s),
            None => Some(default.to_owned()),
        }
    }

    /// Checks `repository` against the connection's kind; returns it normalised and
    /// the clone URL.
    fn repository(
        &mut self,
        path: &str,
        connection: &Connection,
        repository: &str,
    ) -> Option<(String, Url)> {
        let repository = repository.trim();
        let segments: Vec<&str> = repository.split('/').collect();
        let bad = |v: &mut Self, message: String| {
            v.problem(path, message);
            None
        };
        match &connection.kind {
            ConnectionKind::Github(gh) => {
                let [owner, repo] = segments.as_slice() else {
                    return bad(self, format!("`{repository}` is not `owner/repo`"));
                };
                if !github_owner_ok(owner) {
                    return bad(self, format!("`{owner}` is not a valid GitHub owner name"));
                }
                if let Some(why) = github_repo_problem(repo) {
                    return bad(self, format!("`{repo}` {why}"));
                }
                let url = join_segments(&gh.git_url, &[owner, &format!("{repo}.git")]);
                Some((repository.to_owned(), url))
            }
            ConnectionKind::Gitlab(gl) => {
                if segments.len() < 2 {
                    return bad(
                        self,
                        format!(
                            "`{repository}` is not `group/project` (or `group/subgroup/…/project`)"
                        ),
                    );
                }
                for segment in &segments {
                    if let Some(why) = gitlab_segment_problem(segment) {
                        return bad(self, format!("`{segment}` {why}"));
                    }
                }
                let mut parts: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
                if let Some(last) = parts.last_mut() {
                    last.push_str(".git");
                }
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                Some((repository.to_owned(), join_segments(&gl.git_url, &refs)))
            }
            ConnectionKind::Azure(az) => {
                let [project, repo] = segments.as_slice() else {
                    return bad(self, format!("`{repository}` is not `project/repository`"));
                };
                for name in [project, repo] {
                    if !azure_name_ok(name) {
                        return bad(
                            self,
                            format!(
                                "`{name}` is not a valid Azure DevOps project or repository name"
                            ),
                        );
                    }
                }
                let url = join_segments(&az.git_url, &[&az.organization, project, "_git", repo]);
                Some((repository.to_owned(), url))
            }
            ConnectionKind::Git(_) => {
                let url = self.git_remote(path, repository)?;
                Some((url.to_string(), url))
            }
        }
    }

    /// A plain git remote: an https/http/file URL, or a filesystem path resolved
    /// against the configuration file's directory.
    fn git_remote(&mut self, path: &str, repository: &str) -> Option<Url> {
        if !repository.contains("://") {
            let absolute = match std::path::absolute(self.base_dir.join(repository)) {
                Ok(p) => normalize(&p),
                Err(e) => {
                    self.problem(path, format!("cannot resolve path: {e}"));
                    return None;
                }
            };
            return match Url::from_file_path(&absolute) {
                Ok(url) => Some(url),
                Err(()) => {
                    self.problem(path, "cannot be turned into a file:// URL");
                    None
                }
            };
        }
        let url = match Url::parse(repository) {
            Ok(u) => u,
            Err(e) => {
                self.problem(path, format!("not a valid URL: {e}"));
                return None;
            }
        };
        match url.scheme() {
            "file" => {
                if url
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    self.problem(
                        path,
                        "a file:// URL must be absolute (file:///srv/repo.git); write a plain path for one relative to the configuration file",
                    );
                    return None;
                }
                Some(url)
            }
            "https" | "http" => self.url(path, repository),
            other => {
                self.problem(
                    path,
                    format!("scheme `{other}` is not supported; use https://, http:// (insecure hosts only), file:// or a path"),
                );
                None
            }
        }
    }
}

fn template_message(e: &crate::template::TemplateError) -> String {
    use crate::template::TemplateError;
    match e {
        TemplateError::Invalid { message, .. } | TemplateError::Render { message, .. } => {
            message.clone()
        }
        TemplateError::InvalidBranch { branch, rule, .. } => format!(
            "renders `{branch}` for a sample event, which is not a valid branch name: {rule}"
        ),
        TemplateError::Unknown(name) => format!("template {name} is missing"),
    }
}

/// `courier/{{ hook.id }}/<slug>-<hash>`: one branch per hook and per (base branch,
/// relative path), so that targets into one repository never share a branch. The
/// hash keeps two paths that slug alike (`a-b` and `a/b`) apart; it is CRC-32, fixed
/// forever, because changing it would orphan every open pull request.
fn default_head_branch(branch: &str, relative_path: Option<&RelPath>) -> String {
    let identity = format!(
        "{branch}\0{}",
        relative_path.map(RelPath::as_str).unwrap_or_default()
    );
    let hash = crc32fast::hash(identity.as_bytes());
    let mut slug = String::new();
    let readable = match relative_path {
        Some(p) => format!("{branch}-{p}"),
        None => branch.to_owned(),
    };
    for c in readable.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            c
        } else {
            '-'
        };
        // No `..` (invalid in refs) and no runs of `-`.
        if (c == '-' || c == '.') && slug.ends_with(['-', '.']) {
            continue;
        }
        slug.push(c);
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches(['-', '.']);
    format!("courier/{{{{ hook.id }}}}/{slug}-{hash:08x}")
}

/// github.com's API lives on another host; GitHub Enterprise Server serves the API
/// under `/api/v3` on the web host.
fn github_git_base(api: &Url) -> Url {
    if api.host_str() == Some("api.github.com") {
        return Url::parse("https://github.com/").expect("github.com");
    }
    let mut base = api.clone();
    let trimmed = base
        .path()
        .trim_end_matches('/')
        .strip_suffix("/api/v3")
        .map(str::to_owned);
    if let Some(prefix) = trimmed {
        base.set_path(&prefix);
    }
    base
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// `base` with `segments` appended as path segments (percent-encoded as needed, so an
/// Azure project with a space stays one segment).
fn join_segments(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// Lexical normalisation (`a/./b/../c` → `a/c`) without touching the filesystem, so
/// paths in errors and URLs are the ones a person would write.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn host_pattern(raw: &str) -> Result<HostPattern, String> {
    let lowered = raw.trim().to_ascii_lowercase();
    if lowered.contains("://") || lowered.contains('/') {
        return Err(format!(
            "`{raw}` is not a host name: no scheme or path (e.g. `files.example.com` or `*.example.com`)"
        ));
    }
    let unbracketed = lowered
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&lowered);
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Ok(HostPattern(unbracketed.to_owned()));
    }
    let domain = lowered.strip_prefix("*.").unwrap_or(&lowered);
    let labels_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !labels_ok {
        return Err(format!(
            "`{raw}` is not a host name or `*.domain` pattern (no port; `*` only as the first label)"
        ));
    }
    Ok(HostPattern(lowered))
}

fn github_owner_ok(owner: &str) -> bool {
    (1..=39).contains(&owner.len())
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-')
}

fn github_repo_problem(repo: &str) -> Option<&'static str> {
    if repo.is_empty() || repo.len() > 100 {
        return Some("is not a valid GitHub repository name");
    }
    if repo == "." || repo == ".." {
        return Some("is not a valid GitHub repository name");
    }
    if !repo
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Some("is not a valid GitHub repository name (letters, digits, `-`, `_`, `.`)");
    }
    if repo.ends_with(".git") {
        return Some("should be written without the `.git` suffix");
    }
    None
}

fn gitlab_segment_problem(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        return Some("is empty: GitLab paths are `group/…/project`");
    }
    if !segment
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || segment.starts_with(['-', '.'])
    {
        return Some(
            "is not a valid GitLab path segment (letters, digits, `-`, `_`, `.`, not starting with `-` or `.`)",
        );
    }
    if segment.ends_with(".git") || segment.ends_with(".atom") {
        return Some("should be written without the `.git`/`.atom` suffix");
    }
    None
}

/// Azure DevOps names: no control characters, none of its reserved characters, not
/// ending in `.`, no surrounding whitespace.
fn azure_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.trim() == name
        && !name.ends_with('.')
        && !name.starts_with('_')
        && !name.chars().any(|c| {
            c.is_control()
                || matches!(
                    c,
                    '\\' | '/'
                        | ':'
                        | '*'
                        | '?'
                        | '"'
                        | '<'
                        | '>'
                        | '|'
                        | ';'
                        | '#'
                        | '$'
                        | '{'
                        | '}'
                        | ','
                        | '+'
                        | '='
                        | '['
                        | ']'
                        | '%'
                        | '&'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_head_branches_are_valid_and_distinct() {
        let rp = |s: &str| RelPath::parse(s).unwrap();
        let cases = [
            default_head_branch("main", None),
            default_head_branch("main", Some(&rp("src/tokens"))),
            default_head_branch("main", Some(&rp("src-tokens"))),
            default_head_branch("develop", Some(&rp("src/tokens"))),
            default_head_branch("release/1.x", Some(&rp("a..b/.x"))),
        ];
        // Pinned: changing the scheme would orphan every open pull request
        // (CRC-32 of "main\0", as computed by zlib).
        assert_eq!(cases[0], "courier/{{ hook.id }}/main-98626201");
        assert!(cases[1].starts_with("courier/{{ hook.id }}/main-src-tokens-"));
        for (i, a) in cases.iter().enumerate() {
            let rendered = a.replace("{{ hook.id }}", "5");
            assert_eq!(check_branch_name(&rendered), Ok(()), "{rendered}");
            for b in &cases[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn github_git_base_for_dotcom_and_enterprise() {
        let base = |s: &str| github_git_base(&Url::parse(s).unwrap()).to_string();
        assert_eq!(base("https://api.github.com"), "https://github.com/");
        assert_eq!(
            base("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/"
        );
        assert_eq!(
            base("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com/"
        );
        assert_eq!(base("http://127.0.0.1:9000/"), "http://127.0.0.1:9000/");
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("./x")), PathBuf::from("x"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }

    #[test]
    fn host_pattern_rules() {
        assert_eq!(
            host_pattern("*.Supernova.io").unwrap().as_str(),
            "*.supernova.io"
        );
        assert_eq!(host_pattern("[::1]").unwrap().as_str(), "::1");
        assert!(host_pattern("https://x.io").is_err());
        assert!(host_pattern("x.io:443").is_err());
        assert!(host_pattern("a.*.io").is_err());
        assert!(host_pattern("*").is_err());
    }
}
