//! `courier dry-run` and `courier deliver`: the delivery pipeline in the foreground, with
//! the writes off or on.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use courier_core::event::Event;
use courier_core::tokens::{TokenChange, TokenDiff};

use super::{Exit, load_config, read_payload};
use crate::delivery::{
    Cause, Deliverer, JobReport, JobStatus, Mode, PullRequestReport, Run, parse_payload,
};

#[derive(Debug, Args)]
pub struct DryRunArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Include a unified diff of each target's change.
    #[arg(long)]
    pub diff: bool,
}

#[derive(Debug, Args)]
pub struct DeliverArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (YAML).
    #[arg(long, short, env = "COURIER_CONFIG")]
    pub config: PathBuf,
    /// The webhook body (JSON), or `-` for standard input.
    #[arg(long, short, env = "COURIER_PAYLOAD")]
    pub payload: PathBuf,
    /// Use this result zip instead of downloading the job's artifact.
    #[arg(long, short, env = "COURIER_ARTIFACT")]
    pub artifact: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn dry_run(args: &DryRunArgs) -> anyhow::Result<Exit> {
    run(&args.run, Mode::DryRun { diff: args.diff }).await
}

pub async fn deliver(args: &DeliverArgs) -> anyhow::Result<Exit> {
    run(&args.run, Mode::Deliver).await
}

async fn run(args: &RunArgs, mode: Mode) -> anyhow::Result<Exit> {
    let config = match load_config(&args.config) {
        Ok(config) => Arc::new(config),
        Err(exit) => return Ok(exit),
    };
    let body = read_payload(&args.payload)?;
    let event = match parse_payload(&body) {
        Ok(parsed) => parsed.event,
        Err(err) => {
            eprintln!("invalid payload: {err}");
            return Ok(Exit::Invalid);
        }
    };
    let report = match &event {
        Event::Other { event } => {
            let mut report = JobReport::new(mode, None);
            report.reason = Some(format!(
                "event `{event}` is ignored; only job:updated is delivered"
            ));
            report
        }
        Event::JobUpdated(job) => {
            let run = Run {
                mode,
                artifact: args.artifact.as_deref(),
                queued: None,
            };
            Deliverer::new(config)?.run_job(job, run).await
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(exit_code(&report))
}

/// Scripts branch on the exit code: an archive the rules reject is invalid input, any
/// other failure a failure while running.
fn exit_code(report: &JobReport) -> Exit {
    match report.status {
        JobStatus::Planned | JobStatus::Delivered => Exit::Success,
        JobStatus::NothingToDeliver => Exit::NothingToDeliver,
        JobStatus::Failed if report.cause == Some(Cause::Archive) => Exit::Invalid,
        JobStatus::Failed | JobStatus::Partial => Exit::Failure,
    }
}

fn print_text(report: &JobReport) {
    let writes = if report.mode == "dry_run" {
        " (dry run: nothing is pushed)"
    } else {
        ""
    };
    if let Some(job) = &report.job {
        println!(
            "job {} of hook {}: {} {} by {}{writes}",
            job.job, job.hook, job.design_system, job.version, job.exporter
        );
    }
    if let Some(export) = &report.export {
        println!("export: {} file(s), {} bytes", export.files, export.bytes);
    }
    for target in &report.targets {
        println!();
        println!("target {}", target.target);
        println!("  action: {}", target.outcome);
        if let Some(message) = target.message() {
            println!("  {message}");
        }
        if let Some(commit) = &target.commit {
            println!(
                "  commit: {commit}{}",
                if target.pushed { " (pushed)" } else { "" }
            );
        }
        if let Some(message) = &target.commit_message {
            let subject = message.lines().next().unwrap_or_default();
            println!("  commit message: {subject}");
        }
        if let Some(files) = &target.files {
            println!(
                "  files: {} added, {} modified, {} deleted",
                files.added.len(),
                files.modified.len(),
                files.deleted.len()
            );
            for (sign, paths) in [
                ("+", &files.added),
                ("~", &files.modified),
                ("-", &files.deleted),
            ] {
                for path in paths {
                    println!("    {sign} {path}");
                }
            }
        }
        if let Some(tokens) = target.tokens.as_ref().filter(|t| !t.is_empty()) {
            print_tokens(tokens);
        }
        if let Some(pr) = &target.pull_request {
            print_pull_request(pr);
        }
        if let Some(diff) = &target.diff {
            println!();
            print!("{diff}");
        }
    }
    println!();
    match &report.reason {
        Some(reason) => println!("{}: {reason}", report.status.word()),
        None => println!("{}", report.status.word()),
    }
}

/// The token changes, one line each: `~` changed, `+` added, `-` removed, `>` renamed.
fn print_tokens(tokens: &TokenDiff) {
    println!(
        "  tokens: {}",
        courier_core::tokens::render::summary(tokens)
    );
    for note in &tokens.unreadable {
        let line = format!("could not read tokens in {}: {}", note.path, note.reason);
        println!("    {}", printable(&line));
    }
    for note in &tokens.skipped {
        println!("    not read for tokens: {} ({})", note.path, note.reason);
    }
    // A person reads the first changes; `--json` has them all.
    let mut shown = 0;
    'groups: for group in &tokens.groups {
        match group.context.as_str() {
            "" => println!("    {}", group.path),
            context => println!("    {} ({})", group.path, printable(context)),
        }
        for change in &group.changes {
            if shown == MAX_PRINTED_CHANGES {
                break 'groups;
            }
            shown += 1;
            let line = match change {
                TokenChange::Changed { name, old, new } => format!("~ {name}: {old} -> {new}"),
                TokenChange::Added { name, value } => format!("+ {name}: {value}"),
                TokenChange::Removed { name, value } => format!("- {name}: {value}"),
                TokenChange::Renamed { from, name, value } => {
                    format!("> {name} (renamed from {from}): {value}")
                }
            };
            println!("      {}", printable(&line));
        }
    }
    let total: usize = tokens.groups.iter().map(|g| g.changes.len()).sum();
    if total > shown {
        println!(
            "    ... and {} more token changes (`--json` lists them all)",
            total - shown
        );
    }
}

/// Token changes printed per target in text output.
const MAX_PRINTED_CHANGES: usize = 200;

/// A line from an export as the terminal should see it: control characters (escape
/// sequences among them) written out, not obeyed.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn print_pull_request(pr: &PullRequestReport) {
    use courier_providers::pull_request::{FailureOutcome, PrAction};
    match pr {
        PullRequestReport::Planned(plan) => {
            println!("  pull request: {} ({:?})", plan.action, plan.title);
        }
        PullRequestReport::Done(outcome) => {
            let what = match &outcome.action {
                PrAction::Created { .. } => "created",
                PrAction::Updated { .. } => "updated",
                PrAction::Unchanged { .. } => "unchanged",
                PrAction::Closed { .. } => "closed",
                PrAction::LeftOpen { .. } => {
                    "left open (the branch holds commits Courier did not make)"
                }
                PrAction::NothingToDo => "nothing to do",
            };
            match outcome.pull_request() {
                Some(pr) => println!("  pull request: {what} #{} {}", pr.number, pr.url),
                None => println!("  pull request: {what}"),
            }
            for warning in &outcome.warnings {
                println!("  warning: {warning}");
            }
        }
        PullRequestReport::FailureReported(outcome) => match outcome {
            FailureOutcome::Commented { pr } => println!("  pull request #{pr}: failure commented"),
            FailureOutcome::AlreadyReported { pr } => {
                println!("  pull request #{pr}: failure already commented")
            }
            FailureOutcome::NoOpenPr => println!("  no open pull request to tell"),
        },
    }
}
