//! Every configuration error a person can make, as they will read it. Snapshots live
//! in `tests/snapshots/`; run with `INSTA_UPDATE=no` to check them without rewriting.

use courier_core::config::{Config, ConfigError};

/// A fake environment: only the variables named here exist.
fn env(name: &str) -> Option<String> {
    match name {
        "GITHUB_TOKEN" => Some("ghp_do-not-print-me".to_owned()),
        "WEBHOOK_TOKEN" => Some("0123456789abcdef0123".to_owned()),
        "SHORT" => Some("short-secret".to_owned()),
        "BAD_PATH" => Some("../escape".to_owned()),
        _ => None,
    }
}

fn error(yaml: &str) -> ConfigError {
    match Config::from_yaml_str(yaml, "config.yaml", &env) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e,
    }
}

fn check(name: &str, yaml: &str) {
    let e = error(yaml);
    let text = e.to_string();
    // Whatever went wrong, no secret from the environment is ever printed.
    assert!(!text.contains("do-not-print-me"), "{text}");
    assert!(!text.contains("short-secret"), "{text}");
    insta::assert_snapshot!(name, text, yaml);
}

#[test]
fn unknown_top_level_key() {
    check(
        "unknown_top_level_key",
        "listen: 127.0.0.1:8080\nworkerz: 2\nhooks:\n  - match: any\n    targets: []\n",
    );
}

#[test]
fn unknown_nested_key_has_line_column_and_path() {
    check(
        "unknown_nested_key",
        r#"
connections:
  github: { kind: github, token: x }
hooks:
  - match: { hook_id: 5 }
    targets:
      - connection: github
        repository: acme/web
        relative_dir: src
"#,
    );
}

#[test]
fn unknown_match_key() {
    check(
        "unknown_match_key",
        "hooks:\n  - match: { hook: 5 }\n    targets: []\n",
    );
}

#[test]
fn unknown_connection_kind() {
    check(
        "unknown_connection_kind",
        "connections:\n  bb: { kind: bitbucket, token: x }\nhooks:\n  - match: any\n    targets: []\n",
    );
}

#[test]
fn yaml_syntax_error() {
    check(
        "yaml_syntax_error",
        "hooks:\n  - match: { hook_id: 5\n    targets: []\n",
    );
}

#[test]
fn yaml_type_error() {
    check(
        "yaml_type_error",
        "workers: many\nhooks:\n  - match: any\n    targets: []\n",
    );
}

#[test]
fn duplicate_connection_name() {
    check(
        "duplicate_connection_name",
        "connections:\n  gh: { kind: github, token: a }\n  gh: { kind: github, token: b }\nhooks:\n  - match: any\n    targets: []\n",
    );
}

#[test]
fn targets_key_is_required() {
    check("missing_targets", "hooks:\n  - match: any\n");
}

#[test]
fn empty_file() {
    check("empty_file", "\n# nothing\n");
}

#[test]
fn unset_environment_variable_names_key_and_variable() {
    check(
        "unset_env_var",
        r#"
connections:
  github: { kind: github, token: "${GITHUB_TOKN}" }
hooks:
  - match: any
    targets: []
"#,
    );
}

#[test]
fn bad_interpolation_syntax() {
    check(
        "bad_interpolation",
        r#"
connections:
  a: { kind: github, token: "${GITHUB_TOKEN" }
  b: { kind: github, token: "${GITHUB-TOKEN}" }
hooks:
  - match: any
    targets: []
"#,
    );
}

#[test]
fn relative_path_rules() {
    check(
        "relative_path_rules",
        r#"
connections:
  github: { kind: github, token: t }
hooks:
  - match: any
    targets:
      - { connection: github, repository: acme/a, relative_path: /etc }
      - { connection: github, repository: acme/b, relative_path: "src/../.." }
      - { connection: github, repository: acme/c, relative_path: "src/.git/hooks" }
      - { connection: github, repository: acme/d, relative_path: 'src\tokens' }
      - { connection: github, repository: acme/e, relative_path: "${BAD_PATH}" }
"#,
    );
}

#[test]
fn purge_at_root_needs_opt_in() {
    check(
        "purge_root",
        r#"
connections:
  github: { kind: github, token: t }
hooks:
  - match: any
    targets:
      - { connection: github, repository: acme/a, purge_directory: true }
      - { connection: github, repository: acme/b, purge_directory: true, relative_path: "/" }
"#,
    );
}

#[test]
fn unknown_connection() {
    check(
        "unknown_connection",
        r#"
connections:
  github: { kind: github, token: t }
  gitlab: { kind: gitlab, token: t }
hooks:
  - match: any
    targets:
      - { connection: gihtub, repository: acme/a }
"#,
    );
}

#[test]
fn repository_shapes_per_kind() {
    check(
        "repository_shapes",
        r#"
platform:
  insecure_hosts: [127.0.0.1]
connections:
  github: { kind: github, token: t }
  gitlab: { kind: gitlab, token: t }
  ado: { kind: azure, organization: acme, token: t }
  git: { kind: git }
hooks:
  - match: any
    targets:
      - { connection: github, repository: acme }
      - { connection: github, repository: acme/web/extra }
      - { connection: github, repository: acme/web.git }
      - { connection: github, repository: "ac me/web" }
      - { connection: gitlab, repository: project-only }
      - { connection: gitlab, repository: "group//project" }
      - { connection: ado, repository: "Design System" }
      - { connection: ado, repository: "Design System/we|b" }
      - { connection: git, repository: "ssh://git@example.com/repo.git" }
      - { connection: git, repository: "http://example.com/repo.git" }
      - { connection: git, repository: "file://relative/repo.git" }
      - { connection: git, repository: "https://user:pw@example.com/repo.git" }
"#,
    );
}

#[test]
fn connection_kinds_need_their_fields() {
    check(
        "connection_fields",
        r#"
connections:
  gh-none: { kind: github }
  gh-both:
    kind: github
    token: t
    app: { app_id: 1, private_key_path: key.pem }
  gh-extra: { kind: github, token: t, organization: acme, url: "https://github.com" }
  gh-app:
    kind: github
    app: { app_id: zero, private_key_path: "", installation_id: -3 }
  gl: { kind: gitlab, url: "ftp://gitlab.example.com" }
  ado: { kind: azure, token: t }
  git: { kind: git, api_url: "https://x.example.com", username: "" }
hooks:
  - match: any
    targets: []
"#,
    );
}

#[test]
fn commits_through_the_api_are_githubs_and_sign_themselves() {
    check(
        "commits_api",
        r#"
connections:
  gh: { kind: github, token: t, commits: api, signing: { format: ssh, key: keys/k } }
  gl: { kind: gitlab, token: t, commits: api }
  git: { kind: git, commits: git }
hooks:
  - match: any
    targets: []
"#,
    );
}

#[test]
fn invalid_urls() {
    check(
        "invalid_urls",
        r#"
platform:
  api_url: "not a url"
  download_hosts: ["https://files.example.com/x", "*", "files.example.com:443"]
connections:
  ghes: { kind: github, token: t, api_url: "http://ghe.example.com/api/v3" }
  gl: { kind: gitlab, token: t, url: "https://gitlab.example.com/?x=1" }
  ado: { kind: azure, organization: acme, token: t, url: "https://user@dev.azure.com" }
hooks:
  - match: any
    targets: []
"#,
    );
}

#[test]
fn webhook_rules() {
    check(
        "webhook_rules",
        r#"
listen: 0.0.0.0:8080
webhook:
  tokens: []
  verify_with_platform: true
hooks:
  - match: any
    targets: []
"#,
    );
    check(
        "webhook_short_token",
        r#"
webhook:
  tokens: ["${SHORT}", ""]
  allowed_workspaces: [""]
hooks:
  - match: any
    targets: []
"#,
    );
    check(
        "webhook_required_off_loopback",
        "listen: \"[::]:8080\"\nhooks:\n  - match: any\n    targets: []\n",
    );
}

#[test]
fn top_level_values() {
    check(
        "top_level_values",
        r#"
listen: localhost
store: mysql://db/courier
workers: 0
limits:
  archive: { max_entries: 0, max_entry_bytes: 2048, max_total_bytes: 1024 }
  download: { max_bytes: 0 }
hooks: []
"#,
    );
}

#[test]
fn store_url_password_is_not_echoed() {
    let e = error(
        "store: \"postgres://courier:hunter2@[bad/courier\"\nhooks:\n  - match: any\n    targets: []\n",
    );
    let text = e.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    insta::assert_snapshot!("store_invalid_postgres", text);
}

#[test]
fn empty_match_needs_any() {
    check(
        "empty_match",
        "hooks:\n  - match: {}\n    targets: []\n  - match: { hook_id: \"\" }\n    targets: []\n",
    );
}

#[test]
fn templates_are_checked_at_load() {
    check(
        "template_errors",
        r#"
connections:
  github: { kind: github, token: t }
hooks:
  - match: any
    targets:
      - connection: github
        repository: acme/a
        commit_message: "Update {{ design_sytem.name }}"
        pull_request_title: "{{ hook.id "
        pull_request_description: "{% for x in export.files %}{{ x }}{% endfor %}"
      - connection: github
        repository: acme/b
        head_branch: "courier/{{ hook.name }}"
      - connection: github
        repository: acme/c
        head_branch: "courier/{{ export.files }}"
      - connection: github
        repository: acme/d
        branch: "feature..x"
"#,
    );
}

#[test]
fn pull_request_keys_do_not_apply_to_git_targets() {
    check(
        "git_target_pr_keys",
        r#"
connections:
  git: { kind: git }
  gl: { kind: gitlab, token: t }
hooks:
  - match: any
    targets:
      - connection: git
        repository: /srv/repo.git
        labels: [x]
        draft: false
        pull_request_title: t
      - connection: gl
        repository: a/b
        team_reviewers: [core]
      - connection: gl
        repository: a/c
        commit_author_email: nobody
        commit_author_name: "A <b>"
"#,
    );
}

#[test]
fn duplicate_targets() {
    check(
        "duplicate_targets",
        r#"
connections:
  github: { kind: github, token: t }
  github2: { kind: github, token: u }
hooks:
  - match: { hook_id: "1" }
    targets:
      - { connection: github, repository: acme/web, relative_path: src }
      # Same repository through another connection, same path: same branch.
      - { connection: github2, repository: acme/web, relative_path: src/ }
      # Same head branch template that ignores the path.
      - { connection: github, repository: acme/app, relative_path: a, head_branch: "tokens-{{ hook.id }}" }
      - { connection: github, repository: acme/app, relative_path: b, head_branch: "tokens-{{ hook.id }}" }
  - match: { hook_id: "2" }
    targets:
      # A constant branch is the same for every job of every entry.
      - { connection: github, repository: acme/lib, head_branch: design-tokens }
  - match: { hook_id: "3" }
    targets:
      - { connection: github, repository: acme/lib, head_branch: design-tokens, id: lib-3 }
      # Event-dependent branches in different entries are only checked when routing.
      - { connection: github, repository: acme/web, relative_path: src, id: web-src-3 }
"#,
    );
}

#[test]
fn duplicate_target_ids() {
    check(
        "duplicate_target_ids",
        r#"
connections:
  github: { kind: github, token: t }
hooks:
  - match: { hook_id: "1" }
    targets:
      - { connection: github, repository: acme/web, relative_path: src }
      - { id: web, connection: github, repository: acme/web, relative_path: docs }
  - match: { hook_id: "2" }
    targets:
      # Another entry delivering to the same place derives the same id.
      - connection: github
        repository: acme/web
        relative_path: src/
        head_branch: "tokens-{{ hook.id }}"
      # An explicit id may clash with another explicit one, or with a derived one.
      - { id: web, connection: github, repository: acme/app }
      - { id: "github:acme/web@main:src", connection: github, repository: acme/lib }
"#,
    );
}

#[test]
fn invalid_target_ids() {
    let long = "a".repeat(101);
    check(
        "invalid_target_ids",
        &format!(
            r#"
connections:
  github: {{ kind: github, token: t }}
hooks:
  - match: any
    targets:
      - {{ id: "", connection: github, repository: acme/a }}
      - {{ id: "web tokens", connection: github, repository: acme/b }}
      - {{ id: "tökens", connection: github, repository: acme/c }}
      - {{ id: {long}, connection: github, repository: acme/d }}
      - {{ id: "${{UNSET}}", connection: github, repository: acme/e }}
      # Reported together with the target's other problems.
      - {{ id: "a#b", connection: nowhere, repository: acme/f }}
"#
        ),
    );
}

#[test]
fn many_problems_are_reported_at_once() {
    let e = error(
        r#"
listen: nowhere
webhook:
  tokens: ["${WEBHOOK_TOKEN}", "${NOPE}"]
connections:
  github: { kind: github, token: "${GITHUB_TOKEN}" }
  ado: { kind: azure, token: "${ADO_PAT}" }
hooks:
  - match: { hook_id: 5 }
    targets:
      - connection: github
        repository: acme
        relative_path: ../up
        pull_request_title: "{{ hook.nmae }}"
      - connection: gitlab
        repository: acme/web
      - connection: github
        repository: acme/web
        purge_directory: true
        commit_message: "{{ nope }}"
"#,
    );
    let count = e.problems().len();
    assert!(count >= 7, "{e}");
    insta::assert_snapshot!("many_problems", e.to_string());
}

#[test]
fn a_target_on_a_broken_connection_is_not_an_unknown_connection() {
    let e = error(
        r#"
connections:
  gl: { kind: gitlab }
hooks:
  - match: any
    targets:
      - { connection: gl, repository: a/b }
"#,
    );
    assert_eq!(
        e.to_string(),
        "invalid configuration config.yaml: 1 problem\n\
         config.yaml:3:7: connections.gl.token: required for a `gitlab` connection"
    );
}

#[test]
fn insecure_hosts_must_be_named_one_by_one() {
    let err = error(
        r#"
platform:
  insecure_hosts: ["127.0.0.1", "*.corp.example"]
hooks:
  - { match: any, targets: [] }
"#,
    );
    let problems = err.problems();
    assert_eq!(problems.len(), 1, "{err}");
    assert_eq!(problems[0].path, "platform.insecure_hosts[1]");
    assert!(problems[0].message.contains("name each host"), "{err}");
}

/// A `tls.ca_file` that is missing, or holds no certificate, stops the configuration with
/// the file's path; so do a missing SSH key or known_hosts file.
#[test]
fn unreadable_certificate_authorities_and_ssh_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let yaml = format!(
        r#"
platform:
  tls: {{ ca_file: {missing} }}
connections:
  ghes: {{ kind: github, token: x, tls: {{ ca_file: {not_pem} }} }}
  gerrit: {{ kind: git, ssh: {{ key: {missing}, known_hosts: {missing} }} }}
hooks: []
"#,
        missing = dir.path().join("missing.pem").display(),
        not_pem = not_pem.display(),
    );
    let text = error(&yaml).to_string();
    for (key, why) in [
        ("platform.tls.ca_file", "cannot read"),
        ("connections.ghes.tls.ca_file", "holds no PEM certificate"),
        ("connections.gerrit.ssh.key", "cannot read"),
        ("connections.gerrit.ssh.known_hosts", "cannot read"),
    ] {
        assert!(
            text.lines().any(|l| l.contains(key) && l.contains(why)),
            "{key}: {why} in:\n{text}"
        );
    }
}
