//! Routing a job to hook entries and targets, and rendering a routed target's texts.

use courier_core::config::Config;
use courier_core::event::{
    ArtifactSource, Job, JobEvent, JobStatus, Logs, Named, PayloadVersion, VersionRef,
};
use courier_core::routing::{RouteError, Routing, route};
use courier_core::template::{ExportSummary, TemplateError, TokenFacts};
use courier_core::tokens::{FileTokens, TokenDiffBuilder};

fn named(id: &str, name: &str) -> Named {
    Named {
        id: id.to_owned(),
        name: name.to_owned(),
    }
}

fn event() -> JobEvent {
    JobEvent {
        payload_version: PayloadVersion::V1,
        workspace: named("w1", "Acme"),
        design_system: named("ds2", "Acme DS"),
        version: VersionRef {
            id: "v3".to_owned(),
            name: "Release".to_owned(),
            version: "1.4.0".to_owned(),
        },
        exporter: named("e4", "Tokens"),
        hook: named("h5", "Web tokens"),
        job: Job {
            id: "j6".to_owned(),
            status: JobStatus::Success,
            logs: Logs::None,
            artifact: ArtifactSource::None,
        },
    }
}

fn config(hooks: &str) -> Config {
    let yaml = format!(
        "connections:\n  github: {{ kind: github, token: t }}\n  gitlab: {{ kind: gitlab, token: t }}\nhooks:\n{hooks}"
    );
    Config::from_yaml_str(&yaml, "routing.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn routed_keys(routing: &Routing<'_>) -> Vec<String> {
    match routing {
        Routing::Routed(route) => route.targets.iter().map(|t| t.target.key.clone()).collect(),
        Routing::Unrouted { reason } => panic!("unrouted: {reason}"),
    }
}

#[test]
fn every_match_key_compares_its_own_field() {
    let keys = [
        ("workspace_id", "w1"),
        ("workspace_name", "Acme"),
        ("hook_id", "h5"),
        ("hook_name", "Web tokens"),
        ("exporter_id", "e4"),
        ("exporter_name", "Tokens"),
        ("design_system_id", "ds2"),
        ("design_system_name", "Acme DS"),
        ("version_id", "v3"),
        ("version_name", "Release"),
        ("version", "1.4.0"),
    ];
    for (key, value) in keys {
        let hit = config(&format!(
            "  - match: {{ {key}: \"{value}\" }}\n    targets:\n      - {{ connection: github, repository: acme/web }}\n"
        ));
        assert_eq!(
            routed_keys(&route(&hit, &event())),
            ["hooks[0].targets[0]"],
            "{key}"
        );
        // Exact comparison: another value, or the same in another case, does not match.
        for other in ["other", &value.to_uppercase()] {
            if other == value {
                continue;
            }
            let miss = config(&format!(
                "  - match: {{ {key}: \"{other}\" }}\n    targets: []\n"
            ));
            assert!(
                matches!(route(&miss, &event()), Routing::Unrouted { .. }),
                "{key}={other}"
            );
        }
    }
}

#[test]
fn all_keys_of_an_entry_must_match() {
    let c = config(
        r#"  - match: { hook_id: h5, exporter_id: e999 }
    targets: []
  - match: { hook_id: h5, exporter_id: e4, version: 1.4.0 }
    targets:
      - { connection: github, repository: acme/web }
"#,
    );
    let Routing::Routed(r) = route(&c, &event()) else {
        panic!("expected routed")
    };
    assert_eq!(r.hook_indices, [1]);
    assert_eq!(r.targets.len(), 1);
}

#[test]
fn a_job_fans_out_to_every_matching_entry_and_target() {
    let c = config(
        r#"  - name: tokens
    match: { exporter_id: e4 }
    targets:
      - { connection: github, repository: acme/web, relative_path: src/tokens }
      - { connection: github, repository: acme/web, relative_path: docs/tokens }
      - { connection: gitlab, repository: acme/mobile/app }
  - name: not this one
    match: { exporter_id: e5 }
    targets:
      - { connection: github, repository: acme/other }
  - name: releases
    match: { version_name: Release }
    targets:
      - { connection: github, repository: acme/web, branch: release, relative_path: src/tokens }
"#,
    );
    let routing = route(&c, &event());
    assert_eq!(
        routed_keys(&routing),
        [
            "hooks[0].targets[0]",
            "hooks[0].targets[1]",
            "hooks[0].targets[2]",
            "hooks[2].targets[0]"
        ]
    );
    let Routing::Routed(r) = routing else {
        unreachable!()
    };
    assert_eq!(r.hook_indices, [0, 2]);
    assert!(r.failures.is_empty());
    assert!(!r.is_build_only());
    // Default head branches: per hook, distinct per base branch and path.
    let branches: Vec<&str> = r.targets.iter().map(|t| t.head_branch.as_str()).collect();
    for b in &branches {
        assert!(b.starts_with("courier/h5/"), "{b}");
    }
    assert!(branches[0].starts_with("courier/h5/main-src-tokens-"));
    assert!(branches[1].starts_with("courier/h5/main-docs-tokens-"));
    assert!(branches[3].starts_with("courier/h5/release-src-tokens-"));
    let mut unique = branches.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), branches.len());
    assert_eq!(r.targets[3].hook_index, 2);
    assert_eq!(r.targets[3].target_index, 0);
}

#[test]
fn no_match_says_what_the_job_had() {
    let c = config(
        "  - match: { hook_id: h1 }\n    targets: []\n  - match: { exporter_name: Icons }\n    targets: []\n",
    );
    let Routing::Unrouted { reason } = route(&c, &event()) else {
        panic!("expected unrouted")
    };
    assert_eq!(
        reason,
        "no hook entry matched (checked 2 entries): the job had hook \"h5\" \"Web tokens\", \
         exporter \"e4\" \"Tokens\", design system \"ds2\" \"Acme DS\", \
         version \"v3\" \"Release\" \"1.4.0\", workspace \"w1\" \"Acme\""
    );
}

#[test]
fn unrouted_reason_caps_long_names() {
    let c = config("  - match: { hook_id: h1 }\n    targets: []\n");
    let mut e = event();
    e.hook.name = "x".repeat(500);
    let Routing::Unrouted { reason } = route(&c, &e) else {
        panic!("expected unrouted")
    };
    assert!(reason.len() < 400, "{reason}");
    assert!(reason.contains(&format!("\"{}\"…", "x".repeat(80))));
}

#[test]
fn an_entry_without_targets_only_builds() {
    let c = config("  - match: any\n    targets: []\n");
    let Routing::Routed(r) = route(&c, &event()) else {
        panic!("expected routed")
    };
    assert_eq!(r.hook_indices, [0]);
    assert!(r.is_build_only());
}

#[test]
fn a_branch_the_event_makes_invalid_fails_that_target_only() {
    let c = config(
        r#"  - match: any
    targets:
      - { connection: github, repository: acme/a, head_branch: "courier/{{ exporter.id }}" }
      - { connection: github, repository: acme/b }
"#,
    );
    let mut e = event();
    e.exporter.id = "bad id".to_owned();
    let Routing::Routed(r) = route(&c, &e) else {
        panic!("expected routed")
    };
    assert_eq!(r.targets.len(), 1);
    assert_eq!(r.targets[0].target.repository, "acme/b");
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].target.key, "hooks[0].targets[0]");
    assert!(!r.is_build_only());
    let RouteError::HeadBranch(TemplateError::InvalidBranch { branch, .. }) = &r.failures[0].error
    else {
        panic!("{:?}", r.failures[0].error)
    };
    assert_eq!(branch, "courier/bad id");
    assert!(
        r.failures[0].error.to_string().starts_with(
            "hooks[0].targets[0].head_branch: rendered branch name \"courier/bad id\""
        ),
        "{}",
        r.failures[0].error
    );
}

#[test]
fn two_entries_claiming_one_branch_for_the_same_job_is_a_failure_not_a_fight() {
    // Allowed at load time (the branches differ unless both entries match one job).
    let c = config(
        r#"  - match: { hook_id: h5 }
    targets:
      - { connection: github, repository: acme/web, head_branch: "tokens/{{ hook.id }}" }
  - match: { exporter_id: e4 }
    targets:
      - { connection: github, repository: acme/web, head_branch: "tokens/{{ hook.id }}", relative_path: x }
"#,
    );
    let Routing::Routed(r) = route(&c, &event()) else {
        panic!("expected routed")
    };
    assert_eq!(r.targets.len(), 1);
    assert_eq!(r.targets[0].target.key, "hooks[0].targets[0]");
    assert_eq!(
        r.failures[0].error,
        RouteError::BranchTaken {
            target: "hooks[1].targets[0]".to_owned(),
            other: "hooks[0].targets[0]".to_owned(),
            repository: "acme/web".to_owned(),
            head_branch: "tokens/h5".to_owned(),
        }
    );
    // A job matching only one of them is delivered normally.
    let mut e = event();
    e.exporter.id = "e0".to_owned();
    let Routing::Routed(r) = route(&c, &e) else {
        panic!("expected routed")
    };
    assert_eq!(r.targets.len(), 1);
    assert!(r.failures.is_empty());
}

#[test]
fn routed_targets_render_their_texts() {
    let c = config(
        r#"  - match: any
    targets:
      - connection: github
        repository: acme/web
        relative_path: src/tokens
        commit_message: |
          Tokens {{ version.version }} ({{ export.files }} files)

          Job {{ job.id }}: {{ job.status }}
        pull_request_title: "  {{ design_system.name }}
          {{ version.version }}  "
      - connection: github
        repository: acme/app
"#,
    );
    let e = event();
    let export = ExportSummary {
        files: 12,
        bytes: 3400,
        added: Some(2),
        modified: Some(3),
        deleted: Some(1),
        ..ExportSummary::default()
    };
    let t = &c.hooks[0].targets[0];
    assert_eq!(
        c.templates
            .render_commit_message(t, &e, Some(&export))
            .unwrap(),
        "Tokens 1.4.0 (12 files)\n\nJob j6: success"
    );
    // Titles are one line.
    assert_eq!(
        c.templates
            .render_pull_request_title(t, &e, Some(&export))
            .unwrap(),
        "Acme DS 1.4.0"
    );
    // Without the export, a template that needs it fails instead of printing nothing.
    assert!(matches!(
        c.templates.render_commit_message(t, &e, None),
        Err(TemplateError::Render { .. })
    ));

    // The defaults.
    let d = &c.hooks[0].targets[1];
    assert_eq!(
        c.templates.render_commit_message(d, &e, None).unwrap(),
        "Update Acme DS (Release) from Tokens\n\nExported by Supernova job j6 of hook \"Web tokens\" (h5)."
    );
    assert_eq!(
        c.templates.render_pull_request_title(d, &e, None).unwrap(),
        "Acme DS 1.4.0: Tokens export"
    );
    let with = c
        .templates
        .render_pull_request_description(d, &e, Some(&export), usize::MAX)
        .unwrap();
    // The export's size and the delivery's changes are said apart: 12 files exported,
    // while the delivery added, changed and deleted a few.
    assert!(with.contains("| Export | 12 files, 3400 bytes |"), "{with}");
    assert!(
        with.contains("| Changes | 2 added, 3 modified, 1 deleted |"),
        "{with}"
    );
    assert!(!with.contains("Design tokens"), "{with}");
    assert!(with.contains("| Path | (repository root) |"), "{with}");
    let without = c
        .templates
        .render_pull_request_description(d, &e, None, usize::MAX)
        .unwrap();
    assert!(!without.contains("| Export |"), "{without}");
    assert!(without.contains("| Hook | Web tokens (h5) |"), "{without}");
    assert_eq!(
        c.templates.render_branch(d, &e).unwrap(),
        route_branch(&c, 1)
    );
}

/// The default description shows the token changes, and a long list is cut at a row
/// so the whole text fits the forge's limit (Azure's 4,000 characters here).
#[test]
fn the_default_description_shows_token_changes_within_the_limit() {
    let c = config(
        r#"  - match: any
    targets:
      - connection: github
        repository: acme/app
"#,
    );
    let e = event();
    let mut old = FileTokens::default();
    let mut new = FileTokens::default();
    for i in 0..300 {
        old.insert(":root", format!("color.gray.{i:03}"), "#0969DA");
        new.insert(":root", format!("color.gray.{i:03}"), "#0550AE");
    }
    new.insert(":root", "space.4", "16px");
    let mut builder = TokenDiffBuilder::new();
    builder.tokens("src/tokens/colors.css", &old, &new);
    let export = ExportSummary {
        files: 2,
        bytes: 100,
        added: Some(0),
        modified: Some(1),
        deleted: Some(0),
        tokens: TokenFacts::new(builder.finish()),
        ..ExportSummary::default()
    };
    let d = &c.hooks[0].targets[0];
    let render = |limit| {
        c.templates
            .render_pull_request_description(d, &e, Some(&export), limit)
            .unwrap()
    };
    let whole = render(usize::MAX);
    assert!(
        whole.contains("300 tokens changed, 1 added in 1 file."),
        "{whole}"
    );
    assert!(
        whole.contains("| `color.gray.000` | changed | `#0969DA` | `#0550AE` |"),
        "{whole}"
    );
    assert!(
        whole.contains("| `space.4` | added |  | `16px` |"),
        "{whole}"
    );
    assert!(!whole.contains("more token changes"), "{whole}");
    let azure = render(4000);
    assert!(azure.chars().count() <= 4000, "{}", azure.chars().count());
    assert!(azure.contains("300 tokens changed, 1 added in 1 file."));
    let shown = azure.lines().filter(|l| l.starts_with("| `")).count();
    assert!(shown > 10, "{azure}");
    assert!(
        azure.contains(&format!(
            "_…and {} more token changes not shown here._",
            301 - shown
        )),
        "{azure}"
    );
}

/// A template lays out the token changes its own way from `export.tokens`.
#[test]
fn a_template_can_walk_the_token_changes() {
    let c = config(
        r#"  - match: any
    targets:
      - connection: github
        repository: acme/app
        pull_request_description: |
          {{ export.tokens.changed }} changed.
          {% for g in export.tokens.groups %}{{ g.path }} {{ g.context }}:{% for t in g.changes %} {{ t.kind }} {{ t.name }}{% if t.kind == "changed" %} {{ t.old }}->{{ t.new }}{% endif %}{% endfor %}
          {% endfor %}{% for n in export.tokens.unreadable %}{{ n.path }}: {{ n.reason }}{% endfor %}
"#,
    );
    let mut old = FileTokens::default();
    let mut new = FileTokens::default();
    old.insert(":root", "color.primary", "#0969DA");
    new.insert(":root", "color.primary", "#0550AE");
    new.insert(":root", "space.4", "16px");
    let mut builder = TokenDiffBuilder::new();
    builder.tokens("colors.css", &old, &new);
    builder.unreadable("broken.json", "expected value");
    let export = ExportSummary {
        tokens: TokenFacts::new(builder.finish()),
        ..ExportSummary::default()
    };
    let text = c
        .templates
        .render_pull_request_description(&c.hooks[0].targets[0], &event(), Some(&export), 4000)
        .unwrap();
    assert_eq!(
        text,
        "1 changed.\ncolors.css :root: changed color.primary #0969DA->#0550AE added space.4\nbroken.json: expected value"
    );
}

fn route_branch(c: &Config, target_index: usize) -> String {
    let Routing::Routed(r) = route(c, &event()) else {
        panic!("expected routed")
    };
    r.targets[target_index].head_branch.clone()
}
