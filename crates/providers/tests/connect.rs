//! Building what delivers to a configured connection: `connect::provider_for` and
//! `connect::plain_git_credentials`.

use std::path::PathBuf;

use courier_core::config::{
    AzureConnection, Commits, Connection, ConnectionKind, GitConnection, GithubApp, GithubAuth,
    GithubConnection, GitlabConnection,
};
use courier_core::proxy::Proxies;
use courier_providers::connect::{plain_git_credentials, provider_for, remote_for};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

fn github(auth: GithubAuth) -> ConnectionKind {
    ConnectionKind::Github(GithubConnection {
        auth,
        api_url: url("https://api.github.com"),
        git_url: url("https://github.com/"),
        commits: Commits::Git,
    })
}

fn git(token: Option<&str>, username: Option<&str>) -> ConnectionKind {
    ConnectionKind::Git(GitConnection {
        token: token.map(SecretString::from),
        username: username.map(str::to_owned),
        ssh: None,
    })
}

#[test]
fn a_github_app_whose_key_file_is_missing_is_an_error_naming_the_file() {
    let key = PathBuf::from("/nonexistent/courier-test/app-key.pem");
    let kind = github(GithubAuth::App(GithubApp {
        app_id: 42,
        private_key_path: key.clone(),
        installation_id: None,
    }));
    let Some(Err(message)) = provider_for(&kind, None, &Proxies::direct()) else {
        panic!("a missing key file must be an error");
    };
    assert!(
        message.contains(&key.display().to_string()),
        "the error should name the key file: {message}"
    );
}

#[test]
fn a_plain_git_connection_has_no_provider() {
    assert!(provider_for(&git(None, None), None, &Proxies::direct()).is_none());
    assert!(provider_for(&git(Some("t"), Some("bot")), None, &Proxies::direct()).is_none());
}

#[test]
fn plain_git_credentials_are_the_token_with_its_user_or_courier() {
    let named = plain_git_credentials(&git(Some("s3cret"), Some("deploy"))).unwrap();
    assert_eq!(named.username, "deploy");
    assert_eq!(named.token.expose_secret(), "s3cret");
    let unnamed = plain_git_credentials(&git(Some("s3cret"), None)).unwrap();
    assert_eq!(unnamed.username, "courier");
    assert!(plain_git_credentials(&git(None, Some("deploy"))).is_none());
    let forge = github(GithubAuth::Token(SecretString::from("ghp_x")));
    assert!(plain_git_credentials(&forge).is_none());
}

/// Each forge connection builds its provider (nothing is sent); the GitHub client needs
/// the runtime.
#[tokio::test]
async fn forge_connections_build_their_providers() {
    let kinds = [
        github(GithubAuth::Token(SecretString::from("ghp_x"))),
        ConnectionKind::Gitlab(GitlabConnection {
            url: url("https://gitlab.example.com"),
            git_url: url("https://gitlab.example.com"),
            token: SecretString::from("glpat-x"),
        }),
        ConnectionKind::Azure(AzureConnection {
            organization: "contoso".into(),
            url: url("https://dev.azure.com"),
            git_url: url("https://dev.azure.com"),
            token: SecretString::from("pat"),
        }),
    ];
    let built: Vec<&str> = kinds
        .iter()
        .map(|kind| match provider_for(kind, None, &Proxies::direct()) {
            Some(Ok(provider)) => provider.kind(),
            Some(Err(e)) => panic!("{e}"),
            None => panic!("a forge connection has a provider"),
        })
        .collect();
    assert_eq!(built, ["github", "gitlab", "azure"]);

    let bad_gitlab = ConnectionKind::Gitlab(GitlabConnection {
        url: url("https://gitlab.example.com/api/v4"),
        git_url: url("https://gitlab.example.com"),
        token: SecretString::from("glpat-x"),
    });
    let Some(Err(message)) = provider_for(&bad_gitlab, None, &Proxies::direct()) else {
        panic!("an API URL instead of the instance root must be refused");
    };
    assert!(message.contains("/api/v4"), "{message}");
}

/// libgit2 sends plain http:// git traffic past a configured proxy; a remote that would do
/// so is refused with what to do instead, and `no_proxy` lets it through directly.
#[test]
fn a_plain_http_remote_behind_a_proxy_is_refused_not_sent_around_it() {
    let connection = |no_proxy: &[String]| Connection {
        name: "git".into(),
        kind: git(Some("t"), None),
        signing: None,
        tls: None,
        proxy: Proxies::configured("http://proxy.acme.internal:3128", None, no_proxy).unwrap(),
    };
    let plain = url("http://git.acme.internal/web.git");
    let err = remote_for(&connection(&[]), &plain, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("use https://") && err.contains("git.acme.internal"),
        "{err}"
    );
    assert!(remote_for(&connection(&["git.acme.internal".into()]), &plain, None).is_ok());
    let tls = url("https://git.acme.internal/web.git");
    assert!(remote_for(&connection(&[]), &tls, None).is_ok());
}
