//! The configuration exactly as written: every string still uninterpolated, nothing
//! checked beyond its YAML type. `validate.rs` turns this into [`super::Config`].
//!
//! Everything here is a plain struct with `deny_unknown_fields` (no `flatten`, no
//! internally tagged enums): those would buffer the input and lose the line and
//! column of an unknown key.

use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::archive::ArchiveLimits;
use crate::download::DownloadLimits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub store: Option<SecretString>,
    pub webhook: Option<RawWebhook>,
    pub admin: Option<RawAdmin>,
    pub platform: Option<RawPlatform>,
    #[serde(default)]
    pub limits: RawLimits,
    pub workers: Option<u32>,
    #[serde(default, deserialize_with = "unique_map")]
    pub connections: Vec<(String, RawConnection)>,
    #[serde(default)]
    pub hooks: Vec<RawHook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    #[serde(default)]
    pub tokens: Vec<SecretString>,
    #[serde(default)]
    pub allowed_workspaces: Vec<IdString>,
    #[serde(default)]
    pub allowed_design_systems: Vec<IdString>,
    #[serde(default)]
    pub verify_with_platform: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    #[serde(default)]
    pub tokens: Vec<SecretString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlatform {
    pub api_url: Option<String>,
    pub token: Option<SecretString>,
    pub download_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub insecure_hosts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    #[serde(default)]
    pub archive: ArchiveLimits,
    #[serde(default)]
    pub download: DownloadLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawKind {
    Github,
    Gitlab,
    Azure,
    Git,
}

/// One struct for every kind so that an unknown key keeps its location; which keys
/// apply to which kind is checked during validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnection {
    pub kind: RawKind,
    pub token: Option<SecretString>,
    pub app: Option<RawGithubApp>,
    pub api_url: Option<String>,
    pub git_url: Option<String>,
    pub url: Option<String>,
    pub organization: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGithubApp {
    pub app_id: IdString,
    pub private_key_path: String,
    pub installation_id: Option<IdString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHook {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    pub targets: Vec<RawTarget>,
}

// One per hook entry, parsed once: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum RawMatch {
    Any,
    Keys(RawMatchKeys),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatchKeys {
    pub workspace_id: Option<IdString>,
    pub workspace_name: Option<String>,
    pub hook_id: Option<IdString>,
    pub hook_name: Option<String>,
    pub exporter_id: Option<IdString>,
    pub exporter_name: Option<String>,
    pub design_system_id: Option<IdString>,
    pub design_system_name: Option<String>,
    pub version_id: Option<IdString>,
    pub version_name: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub connection: String,
    pub repository: String,
    pub branch: Option<String>,
    pub head_branch: Option<String>,
    pub relative_path: Option<String>,
    pub purge_directory: Option<bool>,
    pub allow_purge_root: Option<bool>,
    pub commit_author_name: Option<String>,
    pub commit_author_email: Option<String>,
    pub commit_message: Option<String>,
    pub pull_request_title: Option<String>,
    pub pull_request_description: Option<String>,
    pub labels: Option<Vec<String>>,
    pub reviewers: Option<Vec<String>>,
    pub team_reviewers: Option<Vec<String>>,
    pub assignees: Option<Vec<String>>,
    pub draft: Option<bool>,
    pub update_description: Option<bool>,
    pub delete_branch_on_converge: Option<bool>,
    pub auto_merge: Option<bool>,
    pub allow_empty_export: Option<bool>,
    pub allow_protected_paths: Option<bool>,
    pub overwrite_diverged: Option<bool>,
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
