//! From a configured connection (`connections:` in courier.yaml) to what delivers to it:
//! the pull-request [`Provider`] of a forge connection, and the [`Remote`] a target pushes
//! to (forges give their push credentials through the provider).

use std::sync::Arc;

use courier_core::config::{Connection, ConnectionKind, GithubAuth, TlsRoots};
use courier_core::proxy::Proxies;
use url::Url;

use crate::azure::{AzureConfig, AzureProvider};
use crate::git::{Credentials, GitError, Remote, SshKey};
use crate::github::{GitHubApp, GitHubAuth, GitHubConfig, GitHubProvider, Installation};
use crate::gitlab::{GitLabConfig, GitLabProvider};
use crate::provider::Provider;

/// The push credentials of a plain `git` connection: its token, with its user name or
/// `courier`. `None` for a `git` connection without a token (anonymous, `file://`) and
/// for forge connections, whose provider gives them ([`Provider::push_credentials`]).
pub fn plain_git_credentials(kind: &ConnectionKind) -> Option<Credentials> {
    match kind {
        ConnectionKind::Git(git) => git.token.as_ref().map(|token| Credentials {
            username: git.username.clone().unwrap_or_else(|| "courier".to_owned()),
            token: token.clone(),
        }),
        _ => None,
    }
}

/// The remote a target of `connection` pushes to at `url`: over SSH with the connection's
/// key for an `ssh://` URL, otherwise with `credentials` (a forge's, from its provider) or
/// a plain `git` connection's token; trusting the connection's certificate authorities on
/// top of the system's.
pub fn remote_for(
    connection: &Connection,
    url: &Url,
    credentials: Option<Credentials>,
) -> Result<Remote, GitError> {
    if url.scheme() == "ssh" {
        // Validation refuses an ssh:// repository on a connection without `ssh`.
        let ssh = match &connection.kind {
            ConnectionKind::Git(git) => git.ssh.as_ref(),
            _ => None,
        }
        .ok_or_else(|| GitError::InvalidRemote {
            reason: "an SSH repository needs the connection's `ssh` key and `known_hosts`".into(),
        })?;
        let key = SshKey {
            key: ssh.key.clone(),
            passphrase: ssh.passphrase.clone(),
            known_hosts: ssh.known_hosts.clone(),
        };
        return Remote::ssh(url.as_str(), key);
    }
    // libgit2 tunnels https:// through a proxy but sends plain http:// straight to the
    // server, proxy or not: refuse rather than silently go around the company's proxy.
    if url.scheme() == "http" && connection.proxy.for_url(url).is_some() {
        return Err(GitError::InvalidRemote {
            reason: format!(
                "git over plain http:// does not go through a proxy (libgit2 proxies https:// only); use https://, or list {} in no_proxy / NO_PROXY",
                url.host_str().unwrap_or("the host")
            ),
        });
    }
    let credentials = credentials.or_else(|| plain_git_credentials(&connection.kind));
    let remote = Remote::new(url.as_str(), credentials)?.with_proxies(&connection.proxy);
    Ok(match &connection.tls {
        Some(tls) => remote.with_extra_roots(tls.certs.clone()),
        None => remote,
    })
}

/// The pull-request client for a connection, or why it could not be built (a GitHub App
/// key file that cannot be read, an unusable URL or token), as text for a person; `None`
/// for plain `git` connections, which have no pull requests.
///
/// Sends nothing. Call it inside a Tokio runtime: the GitHub client spawns on it.
/// `tls`: the connection's certificate authorities, trusted on top of the system's;
/// `proxy`: the proxies its calls go through.
pub fn provider_for(
    kind: &ConnectionKind,
    tls: Option<&TlsRoots>,
    proxy: &Proxies,
) -> Option<Result<Arc<dyn Provider>, String>> {
    let extra_roots = tls.map(|t| t.certs.to_vec()).unwrap_or_default();
    let built: Result<Arc<dyn Provider>, String> = match kind {
        ConnectionKind::Git(_) => return None,
        ConnectionKind::Github(github) => {
            let auth = match &github.auth {
                GithubAuth::Token(token) => Ok(GitHubAuth::Token(token.clone())),
                GithubAuth::App(app) => {
                    let installation = match app.installation_id {
                        Some(id) => Installation::Id(id),
                        None => Installation::ByRepository,
                    };
                    GitHubApp::from_key_file(app.app_id, &app.private_key_path, installation)
                        .map(GitHubAuth::App)
                        .map_err(|e| e.to_string())
                }
            };
            auth.and_then(|auth| {
                GitHubConfig::new(auth)
                    .with_api_url(github.api_url.as_str())
                    .map(|config| GitHubConfig {
                        extra_roots: extra_roots.clone(),
                        proxy: proxy.clone(),
                        ..config
                    })
                    .and_then(GitHubProvider::new)
                    .map(|p| Arc::new(p) as Arc<dyn Provider>)
                    .map_err(|e| e.to_string())
            })
        }
        ConnectionKind::Gitlab(gitlab) => {
            GitLabConfig::new(gitlab.url.as_str(), gitlab.token.clone())
                .map(|config| GitLabConfig {
                    extra_roots: extra_roots.clone(),
                    proxy: proxy.clone(),
                    ..config
                })
                .and_then(GitLabProvider::new)
                .map(|p| Arc::new(p) as Arc<dyn Provider>)
                .map_err(|e| e.to_string())
        }
        ConnectionKind::Azure(azure) => AzureConfig::new(&azure.organization, azure.token.clone())
            .with_base_url(azure.url.as_str())
            .map(|config| AzureConfig {
                extra_roots: extra_roots.clone(),
                proxy: proxy.clone(),
                ..config
            })
            .and_then(AzureProvider::new)
            .map(|p| Arc::new(p) as Arc<dyn Provider>)
            .map_err(|e| e.to_string()),
    };
    Some(built)
}
