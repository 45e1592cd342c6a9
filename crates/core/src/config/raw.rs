//! The configuration exactly as written: every string still uninterpolated, nothing
//! checked beyond its YAML type. `validate/` turns this into [`super::Config`].
//!
//! Everything here is a plain struct with `deny_unknown_fields` (no `flatten`, no
//! internally tagged enums): those would buffer the input and lose the line and
//! column of an unknown key.
//!
//! The same types derive the configuration's JSON Schema ([`json_schema`]), so the schema
//! describes exactly what is parsed: `deny_unknown_fields` becomes
//! `additionalProperties: false`. The `///` comments on fields are the schema's
//! descriptions, read by editors; what only validation checks (lengths, URL shapes, which
//! keys apply to which connection kind) is said there rather than encoded.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::archive::ArchiveLimits;
use crate::download::DownloadLimits;

/// Courier's configuration file. Any string value may contain `${NAME}`, replaced by
/// the environment variable's value when the file is loaded (`$$` is a literal `$`).
/// Reference: docs/configuration.md.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Courier configuration")]
pub(super) struct RawConfig {
    /// Address the HTTP server binds, as IP:PORT (`[::]:8080` for every address).
    #[schemars(extend("default" = "127.0.0.1:8080"))]
    pub listen: Option<String>,
    /// Directory of the bare-repository cache and the SQLite database, relative to the
    /// configuration file's directory.
    #[schemars(extend("default" = "./.courier"))]
    pub data_dir: Option<String>,
    /// Where jobs and deliveries are stored: `sqlite://PATH` (one instance) or
    /// `postgres://USER:PASSWORD@HOST/DB` (several replicas). Secret: may hold a password.
    /// Default: `sqlite://{data_dir}/courier.db`.
    #[schemars(with = "Option<String>")]
    pub store: Option<SecretString>,
    /// Webhook authentication. Required when `listen` is not a loopback address.
    pub webhook: Option<RawWebhook>,
    /// Who may use the operations API (`/api/...`); without it the API answers 403.
    pub admin: Option<RawAdmin>,
    /// The design-system platform's API and the hosts artifacts may come from.
    pub platform: Option<RawPlatform>,
    /// Bounds on downloads and archives; every field defaults on its own.
    #[serde(default)]
    pub limits: RawLimits,
    /// Deliveries run concurrently by one process, 1 to 256.
    #[schemars(range(min = 1, max = 256), extend("default" = 4))]
    pub workers: Option<u32>,
    /// Credentials and endpoints by name (letters, digits, `_`, `-`), referred to by
    /// targets. A name given twice is an error.
    #[serde(default, deserialize_with = "unique_map")]
    #[schemars(schema_with = "connections_schema")]
    pub connections: Vec<(String, RawConnection)>,
    /// Which jobs go where. Required, at least one.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub hooks: Vec<RawHook>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Webhook")]
pub(super) struct RawWebhook {
    /// Accepted tokens (each at least 16 characters), sent as `Authorization: Bearer
    /// TOKEN` or as the last path segment. Several tokens allow rotation.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub tokens: Vec<SecretString>,
    /// Workspace ids accepted; empty accepts any.
    #[serde(default)]
    pub allowed_workspaces: Vec<IdString>,
    /// Design-system ids accepted; empty accepts any.
    #[serde(default)]
    pub allowed_design_systems: Vec<IdString>,
    /// Re-read the job through the platform API before acting on it. Needs
    /// `platform.token`.
    #[serde(default)]
    pub verify_with_platform: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Admin")]
pub(super) struct RawAdmin {
    /// Bearer tokens for `/api/...`, each at least 16 characters and none equal to a
    /// webhook token.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub tokens: Vec<SecretString>,
    /// Read-only tokens: the API's `GET`s and the dashboard without Retry. Each at least
    /// 16 characters, none equal to an admin or webhook token.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub viewer_tokens: Vec<SecretString>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Platform")]
pub(super) struct RawPlatform {
    /// API base URL (the newer payload version's logs and results are fetched from it).
    #[schemars(extend("default" = "https://api.supernova.io/api/v2"))]
    pub api_url: Option<String>,
    /// Personal access token, sent only to `api_url`'s origin.
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
    /// Hosts an artifact may be downloaded from, redirects included. `*.example.com`
    /// matches every subdomain of example.com, not example.com itself.
    #[schemars(extend("default" = ["*.supernova.io"]))]
    pub download_hosts: Option<Vec<String>>,
    /// Hosts allowed over plain `http://` and allowed to resolve to loopback or private
    /// addresses (downloads, connections and `git` targets). For tests and closed networks.
    #[serde(default)]
    pub insecure_hosts: Vec<String>,
    /// More certificate authorities to trust for downloads and the platform API.
    pub tls: Option<RawTls>,
    /// The proxy for downloads and the platform API. Default: the environment's
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).
    pub proxy: Option<RawProxy>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Proxy")]
pub(super) struct RawProxy {
    /// `http://host:port` (or `https://`) of the proxy, without credentials.
    pub url: String,
    /// User name sent to the proxy (HTTP basic).
    pub username: Option<String>,
    /// Password sent to the proxy (use `${VAR}`); needs `username`.
    #[schemars(with = "Option<String>")]
    pub password: Option<SecretString>,
    /// Hosts reached directly: a name (and its subdomains), an address, a network
    /// (`10.0.0.0/8`), `host:port`, or `*` for every host.
    #[serde(default)]
    pub no_proxy: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Tls")]
pub(super) struct RawTls {
    /// PEM file of certificate authorities trusted on top of the system's (a company's
    /// private CA), relative to the configuration file's directory.
    pub ca_file: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Limits")]
pub(super) struct RawLimits {
    /// Bounds on the result archive.
    #[serde(default)]
    #[schemars(schema_with = "archive_limits_schema")]
    pub archive: ArchiveLimits,
    /// Bounds on every download (artifact and job log).
    #[serde(default)]
    #[schemars(schema_with = "download_limits_schema")]
    pub download: DownloadLimits,
}

/// The forge a connection talks to; `git` is a plain remote (push only, no pull request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "ConnectionKind")]
pub(super) enum RawKind {
    Github,
    Gitlab,
    Azure,
    Git,
}

// One struct for every kind so that an unknown key keeps its location; which keys
// apply to which kind is checked during validation.
/// Credentials and endpoints of one forge. Which keys apply depends on `kind`
/// (docs/configuration.md#connections); a key that does not apply is an error.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Connection", transform = connection_kinds)]
pub(super) struct RawConnection {
    /// Which forge: `github`, `gitlab`, `azure`, or `git` (a plain remote).
    pub kind: RawKind,
    /// Access token (github: PAT; gitlab: project/group/personal token; azure: PAT;
    /// git: sent as HTTP basic password).
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
    /// github only: authenticate as a GitHub App instead of with `token`.
    pub app: Option<RawGithubApp>,
    /// github only: API base. Default `https://api.github.com`; GitHub Enterprise
    /// Server: `https://HOST/api/v3`.
    pub api_url: Option<String>,
    /// github only: how the commit reaches the head branch. `git` (default): pushed with
    /// git. `api`: created through GitHub's API, which signs it ("Verified").
    pub commits: Option<RawCommits>,
    /// Base of clone URLs. Default: github: derived from `api_url`; gitlab, azure: `url`.
    pub git_url: Option<String>,
    /// gitlab: instance URL (default `https://gitlab.com`); azure: organisation host
    /// (default `https://dev.azure.com`).
    pub url: Option<String>,
    /// azure only: the Azure DevOps organisation.
    pub organization: Option<String>,
    /// git only: HTTP basic user name sent with `token`.
    pub username: Option<String>,
    /// Sign the commits of every target on this connection (a target's own `signing`
    /// takes precedence).
    pub signing: Option<RawSigning>,
    /// git only: the key for `ssh://` and `user@host:path` repositories.
    pub ssh: Option<RawSsh>,
    /// More certificate authorities to trust for this connection's API and git traffic.
    pub tls: Option<RawTls>,
    /// The proxy for this connection's API and git traffic (not SSH). Default: the
    /// environment's (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).
    pub proxy: Option<RawProxy>,
}

/// How a github connection's commits reach the head branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "Commits")]
pub(super) enum RawCommits {
    Git,
    Api,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ssh")]
pub(super) struct RawSsh {
    /// OpenSSH private key (a deploy key), relative to the configuration file's directory.
    pub key: String,
    /// The key's passphrase, when it has one (use `${VAR}`).
    #[schemars(with = "Option<String>")]
    pub passphrase: Option<SecretString>,
    /// The `known_hosts` file the servers' host keys are checked against, relative to the
    /// configuration file's directory. An unknown host is refused.
    pub known_hosts: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GithubApp")]
pub(super) struct RawGithubApp {
    /// The GitHub App's id.
    pub app_id: IdString,
    /// PEM private key of the App, relative to the configuration file's directory.
    pub private_key_path: String,
    /// Installation id. Default: looked up per repository.
    pub installation_id: Option<IdString>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Hook")]
pub(super) struct RawHook {
    /// A name for logs and the operations API.
    pub name: Option<String>,
    /// Which jobs this hook takes: `any`, or keys that must all equal the job's.
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    /// Where the export goes; an empty list acknowledges matching jobs without delivering.
    pub targets: Vec<RawTarget>,
}

// One per hook entry, parsed once: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum RawMatch {
    Any,
    Keys(RawMatchKeys),
}

/// Keys that must all equal the job's (ids compared as strings, names exactly).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MatchKeys")]
pub(super) struct RawMatchKeys {
    /// The job's `workspace.id`.
    pub workspace_id: Option<IdString>,
    /// The job's `workspace.name`.
    pub workspace_name: Option<String>,
    /// The job's `hook.id`.
    pub hook_id: Option<IdString>,
    /// The job's `hook.name`.
    pub hook_name: Option<String>,
    /// The job's `exporter.id`.
    pub exporter_id: Option<IdString>,
    /// The job's `exporter.name`.
    pub exporter_name: Option<String>,
    /// The job's `designSystem.id`.
    pub design_system_id: Option<IdString>,
    /// The job's `designSystem.name`.
    pub design_system_name: Option<String>,
    /// The job's `designSystemVersion.id`.
    pub version_id: Option<IdString>,
    /// The job's `designSystemVersion.name`.
    pub version_name: Option<String>,
    /// The job's `designSystemVersion.version` (the label, e.g. `v0.1`).
    pub version: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Target")]
pub(super) struct RawTarget {
    /// Stable identity of this target, named by queued deliveries, the `Courier-Delivery`
    /// commit trailer and the pull request marker. At most 100 ASCII letters, digits and
    /// `-_.:/@`; unique in the file. Default: `CONNECTION:REPOSITORY@BRANCH`, plus
    /// `:RELATIVE_PATH` when one is set.
    pub id: Option<String>,
    /// Name of an entry under `connections`.
    pub connection: String,
    /// `OWNER/NAME` (github), a project path (gitlab), `PROJECT/REPO` (azure), or a URL
    /// or path relative to the configuration file (git).
    pub repository: String,
    /// Base branch: the pull request's target, and what the head branch is rebuilt from.
    /// Default: the repository's default branch (where the remote's HEAD points).
    pub branch: Option<String>,
    /// Branch Courier pushes (a template). Default: `courier/{{ hook.id }}/<base>-<path>-<hash>`,
    /// distinct per hook, base branch and relative path.
    pub head_branch: Option<String>,
    /// Directory of the repository the export is written to (a template). Default: the
    /// repository root.
    pub relative_path: Option<String>,
    /// Delete files under `relative_path` that the export no longer contains.
    #[schemars(extend("default" = false))]
    pub purge_directory: Option<bool>,
    /// Allow `purge_directory` with `relative_path` at the repository root.
    #[schemars(extend("default" = false))]
    pub allow_purge_root: Option<bool>,
    /// Commit author name (a template).
    #[schemars(extend("default" = "Courier"))]
    pub commit_author_name: Option<String>,
    /// Commit author e-mail (a template).
    #[schemars(extend("default" = "courier@noreply.invalid"))]
    pub commit_author_email: Option<String>,
    /// Commit message (a template).
    pub commit_message: Option<String>,
    /// Pull request title (a template).
    pub pull_request_title: Option<String>,
    /// Pull request description (a template).
    pub pull_request_description: Option<String>,
    /// Labels of the pull request.
    pub labels: Option<Vec<String>>,
    /// Reviewers: user names (GitHub, GitLab) or user e-mails/ids (Azure).
    pub reviewers: Option<Vec<String>>,
    /// GitHub team slugs requested as reviewers; github only.
    pub team_reviewers: Option<Vec<String>>,
    /// Assignees of the pull request.
    pub assignees: Option<Vec<String>>,
    /// Open pull requests as drafts.
    #[schemars(extend("default" = false))]
    pub draft: Option<bool>,
    /// Rewrite title and description when an open pull request is updated (`false` keeps
    /// people's edits).
    #[schemars(extend("default" = true))]
    pub update_description: Option<bool>,
    /// Close the pull request and delete the head branch when the base already holds the
    /// export.
    #[schemars(extend("default" = true))]
    pub delete_branch_on_converge: Option<bool>,
    /// Ask the forge to merge the pull request once its checks pass.
    #[schemars(extend("default" = false))]
    pub auto_merge: Option<bool>,
    /// Deliver an export with no files (with `purge_directory`, deletes everything under
    /// `relative_path`).
    #[schemars(extend("default" = false))]
    pub allow_empty_export: Option<bool>,
    /// Allow the export to change CI or submodule files: `.github/workflows/`,
    /// `.gitlab-ci.yml`, `azure-pipelines.yml`, `.gitmodules`.
    #[schemars(extend("default" = false))]
    pub allow_protected_paths: Option<bool>,
    /// Overwrite a head branch someone else has pushed to (otherwise the delivery stops as
    /// `branch_diverged`).
    #[schemars(extend("default" = false))]
    pub overwrite_diverged: Option<bool>,
    /// Sign Courier's commits (for branch protections that require signed commits).
    pub signing: Option<RawSigning>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Signing")]
pub(super) struct RawSigning {
    /// The signature format: `ssh` (git's `gpg.format=ssh`) or `openpgp` (git's default,
    /// `gpg.format=openpgp`).
    pub format: RawSigningFormat,
    /// The private key, relative to the configuration file's directory: an OpenSSH Ed25519
    /// key for `ssh`, an ASCII-armored OpenPGP secret key (`gpg --armor
    /// --export-secret-keys`) for `openpgp`.
    pub key: String,
    /// The key's passphrase, when it has one (use `${VAR}`).
    #[schemars(with = "Option<String>")]
    pub passphrase: Option<SecretString>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawSigningFormat {
    Ssh,
    #[serde(rename = "openpgp")]
    OpenPgp,
}

/// An id the platform sends as a string; YAML writers naturally leave `hook_id: 5`
/// unquoted, which would otherwise be an integer and a confusing type error.
#[derive(Debug, Clone)]
pub(super) struct IdString(pub String);

impl<'de> Deserialize<'de> for IdString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id (a string or an integer)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdString, E> {
                Ok(IdString(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdString, E> {
                Ok(IdString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdString, E> {
                Ok(IdString(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of match keys, or `any`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMatch, E> {
                if v == "any" {
                    Ok(RawMatch::Any)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawMatch, A::Error> {
                // Delegating to the derived impl over the same map access keeps the
                // parser's locations for unknown keys.
                RawMatchKeys::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawMatch::Keys)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A mapping kept in file order, refusing a key given twice (which YAML parsers
/// otherwise resolve silently, last one wins).
fn unique_map<'de, D, T>(deserializer: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<(String, T)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping of names")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, T)> = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.iter().any(|(k, _)| *k == key) {
                    return Err(de::Error::custom(format_args!("`{key}` is defined twice")));
                }
                let value = map.next_value()?;
                out.push((key, value));
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(V(std::marker::PhantomData))
}

/// The configuration's JSON Schema (draft-07, which editors' YAML plugins understand
/// best), derived from the types above. `deploy/courier.schema.json` is this, pretty
/// printed; a test fails when the two differ.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    generator.into_root_schema_for::<RawConfig>().to_value()
}

impl JsonSchema for IdString {
    fn schema_name() -> Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An id as the platform sends it; an unquoted number is read as its decimal text.",
            "type": ["string", "integer"],
        })
    }
}

impl JsonSchema for RawMatch {
    fn schema_name() -> Cow<'static, str> {
        "Match".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let keys = generator.subschema_for::<RawMatchKeys>();
        json_schema!({
            "description": "`any`, or a mapping of keys that must all equal the job's (an empty mapping is an error).",
            "oneOf": [{ "const": "any" }, keys],
        })
    }
}

/// Which keys each connection kind refuses or needs, as `if kind = K then ...` clauses, so
/// that editors flag `organization` on a `github` connection the way
/// `validate/connections.rs` does.
/// A test loads every kind with every key and compares the loader's verdict with this.
fn connection_kinds(schema: &mut Schema) {
    let rules: [(&str, &[&str], &[&str]); 4] = [
        ("github", &["url", "organization", "username"], &[]),
        (
            "gitlab",
            &["app", "api_url", "commits", "organization", "username"],
            &["token"],
        ),
        (
            "azure",
            &["app", "api_url", "commits", "username"],
            &["token", "organization"],
        ),
        (
            "git",
            &[
                "app",
                "api_url",
                "commits",
                "git_url",
                "url",
                "organization",
            ],
            &[],
        ),
    ];
    let clauses: Vec<serde_json::Value> = rules
        .iter()
        .map(|(kind, refused, required)| {
            let refused: serde_json::Map<String, serde_json::Value> = refused
                .iter()
                .map(|key| ((*key).to_owned(), serde_json::Value::Bool(false)))
                .collect();
            serde_json::json!({
                "if": { "properties": { "kind": { "const": kind } }, "required": ["kind"] },
                "then": { "properties": refused, "required": required },
            })
        })
        .collect();
    schema.insert("allOf".to_owned(), clauses.into());
}

fn connections_schema(generator: &mut SchemaGenerator) -> Schema {
    let connection = generator.subschema_for::<RawConnection>();
    json_schema!({
        "type": "object",
        "additionalProperties": connection,
        "default": {},
    })
}

/// `ArchiveLimits` lives with the archive code and carries no schema derive; this lists
/// its fields with their real defaults. A test compares the property names with the
/// fields serde accepts, so a field added there cannot be missing here.
fn archive_limits_schema(_: &mut SchemaGenerator) -> Schema {
    let d = ArchiveLimits::default();
    limits_schema(&[
        (
            "max_entries",
            "Entries (files and directories) in one archive.",
            d.max_entries,
            1,
        ),
        (
            "max_total_bytes",
            "Uncompressed bytes over all entries.",
            d.max_total_bytes,
            1,
        ),
        (
            "max_entry_bytes",
            "Uncompressed bytes of one entry; at most `max_total_bytes`.",
            d.max_entry_bytes,
            1,
        ),
        (
            "max_compression_ratio",
            "Highest uncompressed/compressed ratio of one entry.",
            d.max_compression_ratio,
            1,
        ),
        (
            "ratio_exempt_bytes",
            "Entries inflating to at most this many bytes are exempt from the ratio check.",
            d.ratio_exempt_bytes,
            0,
        ),
        (
            "max_path_bytes",
            "Longest entry name, in bytes of UTF-8.",
            d.max_path_bytes,
            0,
        ),
    ])
}

/// As [`archive_limits_schema`], for `DownloadLimits`.
fn download_limits_schema(_: &mut SchemaGenerator) -> Schema {
    let d = DownloadLimits::default();
    limits_schema(&[
        (
            "max_bytes",
            "Bytes received for one artifact.",
            d.max_bytes,
            1,
        ),
        (
            "max_log_bytes",
            "Bytes received for one job log.",
            d.max_log_bytes,
            0,
        ),
        (
            "connect_timeout_secs",
            "Seconds to establish a connection (TCP and TLS).",
            d.connect_timeout_secs,
            1,
        ),
        (
            "read_timeout_secs",
            "Seconds without a byte received before the attempt fails.",
            d.read_timeout_secs,
            1,
        ),
        (
            "total_timeout_secs",
            "Seconds for the whole download, redirects, retries and backoff included.",
            d.total_timeout_secs,
            1,
        ),
        (
            "retries",
            "Retries after a timeout, a connection error or a 5xx answer (never after a 4xx).",
            u64::from(d.retries),
            0,
        ),
        (
            "retry_backoff_ms",
            "Milliseconds before the first retry; doubled for each further one.",
            d.retry_backoff_ms,
            0,
        ),
        (
            "retry_backoff_max_ms",
            "Longest wait between two attempts, in milliseconds.",
            d.retry_backoff_max_ms,
            0,
        ),
        (
            "max_redirects",
            "Redirects followed, each to an allowed host only.",
            u64::from(d.max_redirects),
            0,
        ),
    ])
}

/// (name, description, default, minimum): validation refuses 0 for sizes and timeouts
/// only; a retry or redirect count, a backoff or an exemption may be 0.
fn limits_schema(fields: &[(&str, &str, u64, u64)]) -> Schema {
    let properties: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|&(name, description, default, minimum)| {
            let property = serde_json::json!({
                "description": description,
                "type": "integer",
                "minimum": minimum,
                "default": default,
            });
            (name.to_owned(), property)
        })
        .collect();
    json_schema!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
        "default": {},
    })
}
