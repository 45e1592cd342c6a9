//! The top-level scalars and the `platform`, `webhook`, `admin` and `limits` sections.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{Validator, normalize};
use crate::config::raw::{RawAdmin, RawPlatform, RawWebhook};
use crate::config::{Admin, HostPattern, Limits, Platform, Store, Webhook};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_DATA_DIR: &str = "./.courier";
const DEFAULT_PLATFORM_API: &str = "https://api.supernova.io/api/v2";
const DEFAULT_DOWNLOAD_HOSTS: &[&str] = &["*.supernova.io"];
const MIN_WEBHOOK_TOKEN_CHARS: usize = 16;

impl Validator<'_> {
    pub(super) fn listen(&mut self, raw: Option<&str>) -> SocketAddr {
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

    pub(super) fn data_dir(&mut self, raw: Option<&str>) -> PathBuf {
        let raw = raw.unwrap_or(DEFAULT_DATA_DIR);
        self.path("data_dir", raw)
            .unwrap_or_else(|| self.base_dir.join(DEFAULT_DATA_DIR))
    }

    pub(super) fn store(&mut self, raw: Option<&SecretString>, data_dir: &Path) -> Store {
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

    pub(super) fn platform(&mut self, raw: Option<RawPlatform>) -> Platform {
        let raw = raw.unwrap_or(RawPlatform {
            api_url: None,
            token: None,
            download_hosts: None,
            insecure_hosts: Vec::new(),
            tls: None,
            proxy: None,
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
        let tls = raw
            .tls
            .as_ref()
            .and_then(|tls| self.tls("platform.tls", tls));
        let proxy = self
            .proxy("platform.proxy", raw.proxy.as_ref())
            .unwrap_or_default();
        Platform {
            api_url,
            token,
            download_hosts,
            insecure_hosts: self.insecure_hosts.clone(),
            tls,
            proxy,
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

    pub(super) fn webhook(
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

    pub(super) fn admin(
        &mut self,
        raw: Option<RawAdmin>,
        webhook: Option<&Webhook>,
    ) -> Option<Admin> {
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
        let viewer_tokens = if raw.viewer_tokens.is_empty() {
            Vec::new()
        } else {
            self.tokens("admin.viewer_tokens", &raw.viewer_tokens)
        };
        let reused = viewer_tokens.iter().any(|viewer| {
            let same = |t: &SecretString| t.expose_secret() == viewer.expose_secret();
            tokens.iter().any(same) || webhook.is_some_and(|w| w.tokens.iter().any(same))
        });
        if reused {
            self.problem(
                "admin.viewer_tokens",
                "must differ from every admin and webhook token: a viewer only reads",
            );
        }
        Some(Admin {
            tokens,
            viewer_tokens,
        })
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

    pub(super) fn limits(&mut self, limits: &Limits) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
