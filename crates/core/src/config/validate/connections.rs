//! `connections`: each kind's required and refused keys, and its URLs.

use std::collections::BTreeMap;

use secrecy::SecretString;
use url::Url;

use super::Validator;
use super::naming::azure_name_ok;
use crate::config::raw::{IdString, RawCommits, RawConnection, RawGithubApp, RawKind, RawSsh};
use crate::config::{
    AzureConnection, Commits, Connection, ConnectionKind, GitConnection, GitSsh, GithubApp,
    GithubAuth, GithubConnection, GitlabConnection,
};

const DEFAULT_GITHUB_API: &str = "https://api.github.com";
const DEFAULT_GITLAB_URL: &str = "https://gitlab.com";
const DEFAULT_AZURE_URL: &str = "https://dev.azure.com";

impl Validator<'_> {
    pub(super) fn connections(
        &mut self,
        raw: Vec<(String, RawConnection)>,
    ) -> BTreeMap<String, Connection> {
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
            let signing = match &raw.signing {
                None => Some(None),
                Some(signing) => self
                    .signing_key(&format!("{path}.signing"), signing)
                    .map(Some),
            };
            let tls = match &raw.tls {
                None => Some(None),
                Some(tls) => self.tls(&format!("{path}.tls"), tls).map(Some),
            };
            let proxy = self.proxy(&format!("{path}.proxy"), raw.proxy.as_ref());
            match (self.connection_kind(&path, raw), signing, tls, proxy) {
                (Some(kind), Some(signing), Some(tls), Some(proxy)) => {
                    out.insert(
                        name.clone(),
                        Connection {
                            name,
                            kind,
                            signing,
                            tls,
                            proxy,
                        },
                    );
                }
                _ => self.broken_connections.push(name),
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
                        ("ssh", raw.ssh.is_some()),
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
                let commits = match raw.commits {
                    None | Some(RawCommits::Git) => Commits::Git,
                    Some(RawCommits::Api) => Commits::Api,
                };
                // GitHub signs what it creates; a key of Courier's would sign a commit
                // that is never sent.
                if commits == Commits::Api && raw.signing.is_some() {
                    self.problem(
                        format!("{path}.signing"),
                        "does not apply with `commits: api`: GitHub signs the commits it creates",
                    );
                }
                Some(ConnectionKind::Github(GithubConnection {
                    auth: auth?,
                    api_url: api_url?,
                    git_url: with_trailing_slash(git_url?),
                    commits,
                }))
            }
            RawKind::Gitlab => {
                self.not_for_kind(
                    path,
                    "gitlab",
                    &[
                        ("app", raw.app.is_some()),
                        ("api_url", raw.api_url.is_some()),
                        ("commits", raw.commits.is_some()),
                        ("organization", raw.organization.is_some()),
                        ("username", raw.username.is_some()),
                        ("ssh", raw.ssh.is_some()),
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
                        ("commits", raw.commits.is_some()),
                        ("username", raw.username.is_some()),
                        ("ssh", raw.ssh.is_some()),
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
                        ("commits", raw.commits.is_some()),
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
                let ssh = match &raw.ssh {
                    Some(ssh) => Some(self.git_ssh(&format!("{path}.ssh"), ssh)?),
                    None => None,
                };
                Some(ConnectionKind::Git(GitConnection {
                    token,
                    username,
                    ssh,
                }))
            }
        }
    }

    /// The key must exist and the `known_hosts` file must be readable now: both are read
    /// again at each connection, but a typo should stop the configuration, not a delivery.
    fn git_ssh(&mut self, path: &str, raw: &RawSsh) -> Option<GitSsh> {
        let key = self.path(&format!("{path}.key"), &raw.key);
        let known_hosts = self.path(&format!("{path}.known_hosts"), &raw.known_hosts);
        let passphrase = match &raw.passphrase {
            Some(p) => Some(self.secret(&format!("{path}.passphrase"), p)?),
            None => None,
        };
        let mut usable = true;
        if let Some(file) = &known_hosts
            && let Err(e) = std::fs::metadata(file)
        {
            self.problem(
                format!("{path}.known_hosts"),
                format!("cannot read {}: {e}", file.display()),
            );
            usable = false;
        }
        if let Some(file) = &key
            && let Err(e) = crate::signing::check_unlocks(file, passphrase.as_ref())
        {
            self.problem(format!("{path}.key"), e.to_string());
            usable = false;
        }
        if !usable {
            return None;
        }
        Some(GitSsh {
            key: key?,
            passphrase,
            known_hosts: known_hosts?,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
