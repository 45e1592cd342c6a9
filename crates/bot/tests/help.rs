//! `courier --help` and every subcommand's help, through the real binary, as snapshots: a
//! change to a flag, an env var, a default or a doc comment shows up in review as a diff
//! of what users read. Accept a deliberate change with `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test -p courier --test help`).

use std::process::Command;

/// Every subcommand users can call; `help_lists_exactly_these_commands` keeps it complete.
const COMMANDS: &[&str] = &[
    "validate",
    "inspect",
    "dry-run",
    "deliver",
    "serve",
    "deliveries",
    "replay",
    "schema",
];

/// The help text for `args`, as a user with a 100-column terminal and none of Courier's
/// environment variables set would see it (clap prints set values next to `[env: ...]`).
fn help(args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_courier"));
    command
        .args(args)
        .env("COLUMNS", "100")
        .env_remove("NO_COLOR");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("COURIER_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("running courier");
    assert!(output.status.success(), "courier {args:?}: {output:?}");
    assert!(
        output.stderr.is_empty(),
        "courier {args:?} wrote to stderr: {output:?}"
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

#[test]
fn top_level_help() {
    insta::assert_snapshot!("courier", help(&["--help"]));
}

#[test]
fn subcommand_help() {
    for command in COMMANDS {
        let text = help(&[command, "--help"]);
        // Nothing wider than the terminal: clap wraps at COLUMNS, so a long line means
        // wrapping broke (or an unbreakable token crept into a doc comment).
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "courier {command} --help: {line:?}"
            );
        }
        insta::assert_snapshot!(format!("courier-{command}"), text);
    }
}

#[test]
fn help_lists_exactly_these_commands() {
    let text = help(&["--help"]);
    let listed: Vec<&str> = text
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert_eq!(listed, COMMANDS);
}

#[test]
fn every_flag_with_an_env_var_says_so() {
    // The README's flag table promises these variables; help is where users check them.
    let mut seen = std::collections::BTreeSet::new();
    for command in COMMANDS {
        // clap may wrap between `[env:` and the name.
        let text = help(&[command, "--help"])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for piece in text.split("[env: ").skip(1) {
            seen.insert(piece.split('=').next().unwrap().to_owned());
        }
    }
    // And the README's flag table documents every one of them.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for var in &seen {
        assert!(
            readme.contains(&format!("| `{var}` |")),
            "{var} (in --help) has no row in the README's flags table"
        );
    }
    for var in [
        "COURIER_CONFIG",
        "COURIER_PAYLOAD",
        "COURIER_ARTIFACT",
        "COURIER_LISTEN",
        "COURIER_LOG",
        "COURIER_LOG_FORMAT",
        "COURIER_LEASE_SECONDS",
        "COURIER_SHUTDOWN_GRACE_SECONDS",
    ] {
        assert!(
            seen.contains(var),
            "{var} is not in any help text: {seen:?}"
        );
    }
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let output = Command::new(env!("CARGO_BIN_EXE_courier"))
        .arg("schema")
        .output()
        .expect("running courier schema");
    assert!(output.status.success(), "{output:?}");
    let committed = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/courier.schema.json"),
    )
    .unwrap();
    assert!(
        output.stdout == committed,
        "`courier schema` differs from deploy/courier.schema.json: regenerate it with \
         `courier schema > deploy/courier.schema.json`"
    );
}
