//! Where a delivery goes: a clean clone URL and, separately, the credentials.

use courier_core::proxy::{Proxies, ProxyServer};
use std::fmt;
use std::sync::{Arc, OnceLock};

use secrecy::SecretString;
use url::Url;

use super::error::GitError;
use super::ssh::SshKey;

/// A token and the user name to send with it over HTTP Basic auth.
///
/// The user name depends on the provider: `x-access-token` for GitHub, `oauth2` for
/// GitLab, anything non-empty for Azure DevOps and plain git servers.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub token: SecretString,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// A repository to deliver to: its URL without any credentials, plus the credentials
/// libgit2 gets through its credential callback only.
#[derive(Clone, Debug)]
pub struct Remote {
    url: Url,
    credentials: Option<Credentials>,
    /// For `ssh://` remotes: the user to log in as, and the key.
    ssh: Option<(String, SshKey)>,
    /// Certificate authorities trusted on top of the system's (DER).
    extra_roots: Option<Arc<Vec<Vec<u8>>>>,
    /// The HTTP proxy fetch and push go through (its `Debug` hides the credentials).
    proxy: Option<ProxyServer>,
    /// The HTTP client of this remote's fetch and push, made at the first request
    /// (`smart_http.rs`) and shared by the clones a delivery makes, so that the push
    /// reuses the fetch's connection: one TCP and TLS handshake a delivery, not two.
    http: Arc<OnceLock<reqwest::Client>>,
}

impl Remote {
    /// Accepts `https://`, `http://` and `file://` URLs. A user name in the URL is
    /// dropped (the credentials carry it); a password in the URL is refused, because
    /// URLs end up in logs and stored state and a secret there would leak.
    pub fn new(url: &str, credentials: Option<Credentials>) -> Result<Remote, GitError> {
        let mut parsed = Url::parse(url).map_err(|e| GitError::InvalidRemote {
            reason: format!("not a URL ({e})"),
        })?;
        match parsed.scheme() {
            "https" | "http" | "file" => {}
            other => {
                return Err(GitError::InvalidRemote {
                    reason: format!(
                        "scheme `{other}` is not supported; use an https:// (or http://, file://) clone URL"
                    ),
                });
            }
        }
        if parsed.password().is_some() {
            return Err(GitError::InvalidRemote {
                reason: "the URL carries a password; remove it and configure the token as the connection's token".into(),
            });
        }
        if parsed.scheme() != "file" && parsed.host_str().is_none_or(str::is_empty) {
            return Err(GitError::InvalidRemote {
                reason: "the URL has no host".into(),
            });
        }
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme() == "http" && credentials.is_some() && !loopback {
            tracing::warn!(
                host = parsed.host_str().unwrap_or(""),
                "the token will travel unencrypted over plain http://; use https://"
            );
        }
        // Infallible for URLs with a host; file URLs have no user name to drop.
        let _ = parsed.set_username("");
        parsed.set_query(None);
        parsed.set_fragment(None);
        Ok(Remote {
            url: parsed,
            credentials,
            ssh: None,
            extra_roots: None,
            proxy: None,
            http: Arc::default(),
        })
    }

    /// An `ssh://[user@]host[:port]/path` remote reached with `key` (user `git` when the
    /// URL names none, as forges and Gerrit expect).
    pub fn ssh(url: &str, key: SshKey) -> Result<Remote, GitError> {
        let mut parsed = Url::parse(url).map_err(|e| GitError::InvalidRemote {
            reason: format!("not a URL ({e})"),
        })?;
        if parsed.scheme() != "ssh" || parsed.host_str().is_none_or(str::is_empty) {
            return Err(GitError::InvalidRemote {
                reason: "expected ssh://[user@]host[:port]/path".into(),
            });
        }
        if parsed.password().is_some() {
            return Err(GitError::InvalidRemote {
                reason: "the URL carries a password; SSH remotes authenticate with the key".into(),
            });
        }
        let user = match parsed.username() {
            "" => "git".to_owned(),
            user => user.to_owned(),
        };
        let _ = parsed.set_username("");
        parsed.set_query(None);
        parsed.set_fragment(None);
        Ok(Remote {
            url: parsed,
            credentials: None,
            ssh: Some((user, key)),
            extra_roots: None,
            proxy: None,
            http: Arc::default(),
        })
    }

    /// The URL libgit2 connects to: the clean one, plus the SSH user.
    pub(crate) fn connect_url(&self) -> String {
        match &self.ssh {
            Some((user, _)) => {
                let mut url = self.url.clone();
                let _ = url.set_username(user);
                url.to_string()
            }
            None => self.url.to_string(),
        }
    }

    /// The same remote, trusting these certificate authorities (DER) on top of the
    /// system's for HTTPS.
    pub fn with_extra_roots(mut self, roots: Arc<Vec<Vec<u8>>>) -> Remote {
        self.extra_roots = Some(roots);
        self.http = Arc::default();
        self
    }

    /// The same remote, reached through the proxy `proxies` picks for its URL, if any
    /// (none for `ssh://` and `file://`: libgit2 proxies HTTP only).
    pub fn with_proxies(mut self, proxies: &Proxies) -> Remote {
        self.proxy = proxies.for_url(&self.url).cloned();
        self.http = Arc::default();
        self
    }

    /// Where this remote's HTTP client is kept once made.
    pub(crate) fn http_client(&self) -> &OnceLock<reqwest::Client> {
        &self.http
    }

    pub(crate) fn proxy(&self) -> Option<&ProxyServer> {
        self.proxy.as_ref()
    }

    pub(crate) fn extra_roots(&self) -> Option<&[Vec<u8>]> {
        self.extra_roots.as_deref().map(Vec::as_slice)
    }

    pub(crate) fn port(&self) -> Option<u16> {
        self.url.port()
    }

    /// Reached over smart HTTP (`http://` or `https://`).
    pub(crate) fn is_http(&self) -> bool {
        matches!(self.url.scheme(), "http" | "https")
    }

    pub(crate) fn ssh_key(&self) -> Option<(&str, &SshKey)> {
        self.ssh.as_ref().map(|(user, key)| (user.as_str(), key))
    }

    /// The clean URL (no user name, no password): safe to log and store.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Where `url` (the one libgit2 asks credentials for, possibly after a redirect)
    /// points if not at this remote's host and port, as `host:port` (no path, no user):
    /// the token goes nowhere else. `None`: the same origin.
    pub(crate) fn foreign_origin(&self, url: &str) -> Option<String> {
        let origin = |u: &Url| {
            let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
            format!("{host}:{}", u.port_or_known_default().unwrap_or_default())
        };
        match Url::parse(url) {
            Ok(other) if origin(&other) == origin(&self.url) => None,
            Ok(other) => Some(origin(&other)),
            Err(_) => Some("a URL that does not parse".to_owned()),
        }
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    pub(crate) fn token(&self) -> Option<&SecretString> {
        self.credentials.as_ref().map(|c| &c.token)
    }

    /// libgit2 cannot negotiate a shallow fetch over its in-process `file://`
    /// transport ("shallow fetch is not supported by the local transport").
    pub(crate) fn supports_shallow(&self) -> bool {
        self.url.scheme() != "file"
    }

    /// The same repository spelled differently (`.git` suffix, trailing slash, case of
    /// the host, a user name) maps to the same key, so it shares one cache.
    pub(crate) fn normalised(&self) -> String {
        let host = self.url.host_str().unwrap_or("").to_ascii_lowercase();
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let path = self.url.path().trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        format!("{}://{host}{port}{path}", self.url.scheme())
    }

    /// Directory name of this remote's cache: readable host prefix plus a hash of the
    /// normalised URL. The hash is git's SHA-1 of the text, stable across releases.
    pub(crate) fn cache_key(&self) -> String {
        let normalised = self.normalised();
        let hash = git2::Oid::hash_object(git2::ObjectType::Blob, normalised.as_bytes())
            .map(|oid| oid.to_string())
            .unwrap_or_else(|_| "0".repeat(40));
        let host: String = self
            .url
            .host_str()
            .unwrap_or("local")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{host}-{}", &hash[..20])
    }
}

/// Checks a branch name the way `git check-ref-format --branch` would, via libgit2.
pub(crate) fn check_branch(name: &str, role: &str) -> Result<(), GitError> {
    let full = format!("refs/heads/{name}");
    if name.is_empty() || name.starts_with('-') || !git2::Reference::is_valid_name(&full) {
        return Err(GitError::InvalidRemote {
            reason: format!("`{name}` is not a valid {role} branch name"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_passwords_and_other_schemes() {
        let err = Remote::new("https://bot:hunter2@example.com/a/b.git", None).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(matches!(
            Remote::new("ssh://git@example.com/a/b.git", None),
            Err(GitError::InvalidRemote { .. })
        ));
        assert!(matches!(
            Remote::new("not a url", None),
            Err(GitError::InvalidRemote { .. })
        ));
    }

    #[test]
    fn drops_user_names_and_shares_keys_between_spellings() {
        let a = Remote::new("https://x-access-token@GitHub.com/acme/web.git", None).unwrap();
        let b = Remote::new("https://github.com/acme/web/", None).unwrap();
        let c = Remote::new("https://github.com/acme/other", None).unwrap();
        assert_eq!(a.url(), "https://github.com/acme/web.git");
        assert_eq!(a.cache_key(), b.cache_key());
        assert_ne!(a.cache_key(), c.cache_key());
        assert!(a.cache_key().starts_with("github.com-"));
    }

    #[test]
    fn debug_hides_the_token() {
        let creds = Credentials {
            username: "oauth2".into(),
            token: SecretString::from("glpat-secret"),
        };
        let remote = Remote::new("https://gitlab.example.com/g/p.git", Some(creds)).unwrap();
        let shown = format!("{remote:?}");
        assert!(
            !shown.contains("glpat-secret") && shown.contains("oauth2"),
            "{shown}"
        );
    }

    #[test]
    fn branch_names_are_checked() {
        assert!(check_branch("courier/hook-5", "head").is_ok());
        for bad in ["", "-x", "a..b", "a b", "x.lock", "a~1"] {
            assert!(check_branch(bad, "head").is_err(), "{bad}");
        }
    }
}
