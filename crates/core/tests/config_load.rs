//! Valid configurations: defaults, resolved values, and every shipped example.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod deploy_configs;

use courier_core::config::{
    Commits, Config, ConnectionKind, DEFAULT_AUTHOR_EMAIL, GithubAuth, Match, Store,
};
use courier_core::signing::{SigningFormat, SigningKey};
use deploy_configs::fake_env;
use secrecy::ExposeSecret;

fn env(name: &str) -> Option<String> {
    match name {
        "GITHUB_TOKEN" => Some("ghp_very-secret-value".to_owned()),
        "WEBHOOK_TOKEN" => Some("0123456789abcdef0123456789abcdef".to_owned()),
        _ => None,
    }
}

fn load(yaml: &str) -> Config {
    Config::from_yaml_str_in(yaml, "config.yaml", Path::new("/etc/courier"), &env)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = load(
        r#"
connections:
  github: { kind: github, token: "${GITHUB_TOKEN}" }
hooks:
  - match: { hook_id: 5 }
    targets:
      - connection: github
        repository: acme/web
"#,
    );
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.data_dir, PathBuf::from("/etc/courier/.courier"));
    match &c.store {
        Store::Sqlite { path } => assert_eq!(path, Path::new("/etc/courier/.courier/courier.db")),
        other => panic!("{other:?}"),
    }
    assert!(c.webhook.is_none());
    assert_eq!(c.workers, 4);
    assert_eq!(
        c.platform.api_url.as_str(),
        "https://api.supernova.io/api/v2"
    );
    assert!(c.platform.token.is_none());
    let hosts: Vec<&str> = c
        .platform
        .download_hosts
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(hosts, ["*.supernova.io"]);
    assert!(c.platform.download_hosts[0].matches("example.supernova.io"));
    assert!(!c.platform.download_hosts[0].matches("example.com"));
    assert_eq!(c.limits, Default::default());

    // An unquoted id is read as the string the platform sends.
    let Match::Keys(keys) = &c.hooks[0].matcher else {
        panic!("expected keys")
    };
    assert_eq!(keys.hook_id.as_deref(), Some("5"));

    let t = &c.hooks[0].targets[0];
    assert_eq!(t.key, "hooks[0].targets[0]");
    assert_eq!(t.id, "github:acme/web@main");
    assert_eq!(t.branch, "main");
    assert!(t.head_branch.starts_with("courier/{{ hook.id }}/main-"));
    assert_eq!(t.relative_path, None);
    assert!(!t.purge_directory && !t.allow_purge_root);
    assert_eq!(t.commit_author_name, "Courier");
    assert_eq!(t.commit_author_email, DEFAULT_AUTHOR_EMAIL);
    assert!(t.labels.is_empty() && t.reviewers.is_empty());
    assert!(t.team_reviewers.is_empty() && t.assignees.is_empty());
    assert!(!t.draft && t.update_description && t.delete_branch_on_converge);
    assert!(!t.auto_merge && !t.allow_empty_export);
    assert!(!t.allow_protected_paths && !t.overwrite_diverged);
    assert_eq!(t.clone_url().as_str(), "https://github.com/acme/web.git");

    let conn = c.connection(t);
    let ConnectionKind::Github(gh) = &conn.kind else {
        panic!("expected github")
    };
    assert_eq!(gh.api_url.as_str(), "https://api.github.com/");
    match &gh.auth {
        GithubAuth::Token(token) => assert_eq!(token.expose_secret(), "ghp_very-secret-value"),
        GithubAuth::App(_) => panic!("expected a token"),
    }
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let c = load(
        r#"
store: "postgres://courier:hunter2@db/courier"
webhook: { tokens: ["${WEBHOOK_TOKEN}"] }
platform: { token: "${GITHUB_TOKEN}" }
connections:
  github: { kind: github, token: "${GITHUB_TOKEN}" }
  gitlab: { kind: gitlab, token: "glpat-literal-secret" }
hooks:
  - match: any
    targets: []
"#,
    );
    let debug = format!("{c:?}");
    for secret in [
        "hunter2",
        "ghp_very-secret-value",
        "0123456789abcdef",
        "glpat-literal-secret",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    let Store::Postgres { url } = &c.store else {
        panic!("expected postgres")
    };
    assert_eq!(url.expose_secret(), "postgres://courier:hunter2@db/courier");
}

#[test]
fn environment_values_cannot_inject_yaml() {
    // Interpolation happens on parsed strings: a value that looks like YAML stays text.
    let tricky = "aaaaaaaaaaaaaaaa\"]\nworkers: 0\nlisten: 0.0.0.0:1";
    let env = |name: &str| (name == "TOKEN").then(|| tricky.to_owned());
    let c = Config::from_yaml_str(
        "webhook:\n  tokens: [\"${TOKEN}\"]\nhooks:\n  - match: any\n    targets: []\n",
        "config.yaml",
        &env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.workers, 4);
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    let tokens = &c.webhook.as_ref().unwrap().tokens;
    assert_eq!(tokens[0].expose_secret(), tricky);
}

#[test]
fn escapes_keep_a_literal_dollar() {
    let c = load(
        r#"
connections:
  gitlab: { kind: gitlab, token: "p$$w${GITHUB_TOKEN}$${NOT_A_VAR}$x" }
hooks:
  - match: any
    targets: []
"#,
    );
    let ConnectionKind::Gitlab(gl) = &c.connections["gitlab"].kind else {
        panic!("expected gitlab")
    };
    assert_eq!(
        gl.token.expose_secret(),
        "p$wghp_very-secret-value${NOT_A_VAR}$x"
    );
}

#[test]
fn clone_urls_for_every_kind() {
    let c = load(
        r#"
platform:
  insecure_hosts: [127.0.0.1]
connections:
  github: { kind: github, token: t }
  ghes: { kind: github, token: t, api_url: "https://ghe.example.com/api/v3" }
  fake: { kind: github, token: t, api_url: "http://127.0.0.1:9000", git_url: "http://127.0.0.1:9001/git" }
  gitlab: { kind: gitlab, token: t, url: "https://example.com/gitlab" }
  ado: { kind: azure, organization: acme, token: t }
  tfs: { kind: azure, organization: DefaultCollection, token: t, url: "https://tfs.example.com/tfs/" }
  git: { kind: git }
hooks:
  - match: any
    targets:
      - { connection: github, repository: acme/web }
      - { connection: ghes, repository: design/icons }
      - { connection: fake, repository: acme/web }
      - { connection: gitlab, repository: platform/mobile/tokens }
      - { connection: ado, repository: "Design System/web" }
      - { connection: tfs, repository: Apps/desktop }
      - { connection: git, repository: "https://git.example.com/tokens.git" }
      - { connection: git, repository: "http://127.0.0.1:8081/tokens.git" }
      - { connection: git, repository: "./repos/../remote.git" }
      - { connection: git, repository: "file:///srv/git/remote.git" }
"#,
    );
    let urls: Vec<&str> = c.hooks[0]
        .targets
        .iter()
        .map(|t| t.clone_url().as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "https://github.com/acme/web.git",
            "https://ghe.example.com/design/icons.git",
            "http://127.0.0.1:9001/git/acme/web.git",
            "https://example.com/gitlab/platform/mobile/tokens.git",
            "https://dev.azure.com/acme/Design%20System/_git/web",
            "https://tfs.example.com/tfs/DefaultCollection/Apps/_git/desktop",
            "https://git.example.com/tokens.git",
            "http://127.0.0.1:8081/tokens.git",
            "file:///etc/courier/remote.git",
            "file:///srv/git/remote.git",
        ]
    );
}

#[test]
fn github_app_paths_resolve_against_the_config_directory() {
    let c = load(
        r#"
connections:
  app:
    kind: github
    app: { app_id: "123", private_key_path: keys/app.pem, installation_id: 9 }
hooks:
  - match: any
    targets: []
"#,
    );
    let ConnectionKind::Github(gh) = &c.connections["app"].kind else {
        panic!("expected github")
    };
    let GithubAuth::App(app) = &gh.auth else {
        panic!("expected an app")
    };
    assert_eq!(app.app_id, 123);
    assert_eq!(app.installation_id, Some(9));
    assert_eq!(
        app.private_key_path,
        PathBuf::from("/etc/courier/keys/app.pem")
    );
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("courier.yaml");
    std::fs::write(
        &path,
        "connections:\n  local: { kind: git }\nhooks:\n  - match: any\n    targets:\n      - { connection: local, repository: remote.git }\n",
    )
    .unwrap();
    let c = Config::load_with_env(&path, &env).unwrap_or_else(|e| panic!("{e}"));
    let want = url::Url::from_file_path(dir.path().join("remote.git")).unwrap();
    assert_eq!(c.hooks[0].targets[0].clone_url(), &want);
    assert_eq!(c.data_dir, dir.path().join(".courier"));

    let missing = dir.path().join("nope.yaml");
    let err = Config::load(&missing).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read configuration file {}",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn every_shipped_example_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples");
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let config = Config::load_with_env(&deploy_configs::loadable(&path).path, &fake_env)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!config.hooks.is_empty(), "{}", path.display());
        loaded.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            config,
        ));
    }
    loaded.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "azure.yaml",
            "behind-a-proxy.yaml",
            "fan-out.yaml",
            "github-app.yaml",
            "github-verified-commits.yaml",
            "github.yaml",
            "gitlab.yaml",
            "quickstart.yaml",
            "signed-commits.yaml"
        ]
    );
    let by_name = |n: &str| &loaded.iter().find(|(name, _)| name == n).unwrap().1;

    let quick = by_name("quickstart.yaml");
    let url = quick.hooks[0].targets[0].clone_url();
    assert_eq!(url.scheme(), "file");
    assert!(url.path().ends_with("/deploy/examples/remote.git"), "{url}");

    let fan = by_name("fan-out.yaml");
    assert_eq!(fan.targets().count(), 5);
    assert_eq!(fan.limits.archive.max_entries, 20_000);
    assert_eq!(fan.limits.download.max_bytes, 256 << 20);
    assert_eq!(fan.hooks[2].matcher, Match::Any);
    assert!(fan.hooks[2].targets.is_empty());

    let verified = by_name("github-verified-commits.yaml");
    assert!(matches!(
        &verified.connection(&verified.hooks[0].targets[0]).kind,
        ConnectionKind::Github(github) if github.commits == Commits::Api
    ));

    let app = by_name("github-app.yaml");
    assert!(matches!(app.store, Store::Postgres { .. }));
    assert_eq!(
        app.hooks[0].targets[0].clone_url().as_str(),
        "https://github.example.com/design/icons.git"
    );
    assert_eq!(
        by_name("azure.yaml").hooks[0].targets[0]
            .clone_url()
            .as_str(),
        "https://dev.azure.com/acme/Design%20System/_git/web"
    );
    assert_eq!(
        by_name("gitlab.yaml").hooks[0].targets[0]
            .clone_url()
            .as_str(),
        "https://gitlab.example.com/platform/mobile/design-tokens.git"
    );

    // The connection's OpenPGP key signs the first target, the target's own SSH key the
    // second.
    let signed = &by_name("signed-commits.yaml").hooks[0].targets;
    let formats: Vec<_> = signed
        .iter()
        .map(|t| t.signing.as_ref().map(SigningKey::format))
        .collect();
    assert_eq!(
        formats,
        [Some(SigningFormat::OpenPgp), Some(SigningFormat::Ssh)]
    );
}

#[test]
fn admin_tokens_are_loaded_and_must_be_distinct_and_long() {
    let env = |name: &str| match name {
        "HOOK" => Some("webhook-token-0123456789".to_owned()),
        "ADMIN" => Some("admin-token-0123456789ab".to_owned()),
        _ => None,
    };
    let ok = "webhook: { tokens: [\"${HOOK}\"] }\nadmin: { tokens: [\"${ADMIN}\", \"second-admin-token-xyz\"] }\nhooks:\n  - match: any\n    targets: []\n";
    let config = Config::from_yaml_str(ok, "config.yaml", &env).expect("valid config");
    let admin = config.admin.as_ref().expect("admin section");
    let tokens: Vec<&str> = admin.tokens.iter().map(|t| t.expose_secret()).collect();
    assert_eq!(
        tokens,
        ["admin-token-0123456789ab", "second-admin-token-xyz"]
    );
    // Secrets stay out of Debug output.
    assert!(!format!("{config:?}").contains("admin-token-0123456789ab"));

    let shared = "webhook: { tokens: [\"${HOOK}\"] }\nadmin: { tokens: [\"${HOOK}\"] }\nhooks:\n  - match: any\n    targets: []\n";
    let err = Config::from_yaml_str(shared, "config.yaml", &env)
        .expect_err("an admin token equal to a webhook token is refused")
        .to_string();
    assert!(err.contains("admin.tokens"), "{err}");
    assert!(
        err.contains("must differ from every webhook token"),
        "{err}"
    );
    assert!(
        !err.contains("webhook-token-0123456789"),
        "the token leaked: {err}"
    );

    // Viewer tokens read only: none may be an admin's or a webhook's token.
    for reused in ["${ADMIN}", "${HOOK}"] {
        let yaml = format!(
            "webhook: {{ tokens: [\"${{HOOK}}\"] }}\nadmin: {{ tokens: [\"${{ADMIN}}\"], viewer_tokens: [\"{reused}\"] }}\nhooks:\n  - match: any\n    targets: []\n"
        );
        let err = Config::from_yaml_str(&yaml, "config.yaml", &env)
            .expect_err("a viewer token equal to an admin or webhook token is refused")
            .to_string();
        assert!(
            err.contains("admin.viewer_tokens") && err.contains("a viewer only reads"),
            "{err}"
        );
    }
    let viewers = "admin: { tokens: [\"${ADMIN}\"], viewer_tokens: [\"viewer-token-0123456789\"] }\nhooks:\n  - match: any\n    targets: []\n";
    let config = Config::from_yaml_str(viewers, "config.yaml", &env).expect("valid config");
    assert_eq!(config.admin.unwrap().viewer_tokens.len(), 1);

    let short = "admin: { tokens: [\"too-short\"] }\nhooks:\n  - match: any\n    targets: []\n";
    let err = Config::from_yaml_str(short, "config.yaml", &env)
        .expect_err("a short admin token is refused")
        .to_string();
    assert!(err.contains("admin.tokens"), "{err}");
    assert!(!err.contains("too-short"), "the token leaked: {err}");

    let empty = "admin: { tokens: [] }\nhooks:\n  - match: any\n    targets: []\n";
    let err = Config::from_yaml_str(empty, "config.yaml", &env)
        .expect_err("an empty admin token list is refused")
        .to_string();
    assert!(err.contains("must list at least one token"), "{err}");

    let none = "hooks:\n  - match: any\n    targets: []\n";
    let config = Config::from_yaml_str(none, "config.yaml", &env).unwrap();
    assert!(config.admin.is_none());
}

#[test]
fn target_ids_are_explicit_or_derived_from_what_is_delivered() {
    let c = load(
        r#"
connections:
  github: { kind: github, token: t }
  git: { kind: git }
hooks:
  - match: any
    targets:
      - { connection: github, repository: " acme/web ", relative_path: src/tokens/ }
      - { connection: github, repository: acme/web, branch: release/1.x, relative_path: / }
      - { id: "web-icons@main", connection: github, repository: acme/icons }
      - { connection: git, repository: "./repos/../remote.git" }
"#,
    );
    let ids: Vec<(&str, &str)> = c
        .targets()
        .map(|t| (t.id.as_str(), t.key.as_str()))
        .collect();
    // The normalised values: repository trimmed, trailing `/` and a root path dropped,
    // a git path resolved to its URL.
    assert_eq!(
        ids,
        [
            ("github:acme/web@main:src/tokens", "hooks[0].targets[0]"),
            ("github:acme/web@release/1.x", "hooks[0].targets[1]"),
            ("web-icons@main", "hooks[0].targets[2]"),
            (
                "git:file:///etc/courier/remote.git@main",
                "hooks[0].targets[3]"
            ),
        ]
    );
}

#[test]
fn reordering_targets_and_hook_entries_keeps_every_id() {
    let before = load(
        r#"
connections:
  github: { kind: github, token: t }
hooks:
  - name: tokens
    match: { exporter_id: "1" }
    targets:
      - { connection: github, repository: acme/web, relative_path: src/tokens }
      - { connection: github, repository: acme/app }
  - name: icons
    match: { exporter_id: "2" }
    targets:
      - { id: icons, connection: github, repository: acme/web, relative_path: src/icons }
"#,
    );
    let after = load(
        r#"
connections:
  github: { kind: github, token: t }
hooks:
  - name: icons
    match: { exporter_id: "2" }
    targets:
      - { id: icons, connection: github, repository: acme/web, relative_path: src/icons }
  - name: tokens
    match: { exporter_id: "1" }
    targets:
      - { connection: github, repository: acme/app }
      - { connection: github, repository: acme/web, relative_path: src/tokens }
"#,
    );
    // What each target delivers, by id: the same on both sides, though every key moved.
    let by_id = |c: &Config| -> BTreeMap<String, (String, Option<String>, String)> {
        c.targets()
            .map(|t| {
                let path = t.relative_path.as_ref().map(|p| p.to_string());
                (t.id.clone(), (t.repository.clone(), path, t.key.clone()))
            })
            .collect()
    };
    let (before, after) = (by_id(&before), by_id(&after));
    assert_eq!(before.len(), 3);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (id, (repository, path, key)) in &before {
        let (repository_after, path_after, key_after) = &after[id];
        assert_eq!((repository, path), (repository_after, path_after), "{id}");
        assert_ne!(key, key_after, "{id}");
    }
}

/// An unusable proxy variable in the environment is one problem naming the variable, however
/// many settings fall back to the environment; a `proxy` block takes its place.
#[test]
fn a_broken_proxy_environment_is_reported_once() {
    let env = |name: &str| (name == "HTTPS_PROXY").then(|| "socks5://proxy:1080".to_owned());
    let yaml = "connections:\n  a: { kind: git }\n  b: { kind: git }\nhooks:\n  - match: any\n    targets: []\n";
    let err = Config::from_yaml_str(yaml, "config.yaml", &env)
        .expect_err("a SOCKS proxy is refused")
        .to_string();
    assert_eq!(err.matches("HTTPS_PROXY").count(), 1, "{err}");
    assert!(err.contains("`socks5` proxies are not supported"), "{err}");
}
