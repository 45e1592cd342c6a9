//! `courier dry-run` and `courier deliver`: the delivery pipeline in the foreground, with
//! the writes off or on.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use courier_core::archive::ExportSummary;
use courier_core::config::Config;
use courier_core::event::{Event, JobEvent};
use courier_core::routing::{self, Routing};
use serde::Serialize;

use super::{Exit, load_config, read_payload};
use crate::pipeline::{
    Mode, Pipeline, PipelineError, PullRequestReport, TargetReport, parse_payload,
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

/// The report `dry-run` and `deliver` print; with `--json` this is the documented shape.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// `dry_run` or `deliver`.
    pub mode: &'static str,
    /// `planned` / `delivered` (every target went through), `partial` (some targets
    /// failed), `failed`, or `nothing_to_deliver`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSummary>,
    pub targets: Vec<TargetReport>,
}

#[derive(Debug, Serialize)]
pub struct JobSummary {
    pub workspace: String,
    pub design_system: String,
    pub version: String,
    pub exporter: String,
    pub hook: String,
    pub job: String,
    pub status: String,
}

impl JobSummary {
    fn new(job: &JobEvent) -> JobSummary {
        JobSummary {
            workspace: job.workspace.id.clone(),
            design_system: format!("{} ({})", job.design_system.name, job.design_system.id),
            version: format!("{} {}", job.version.name, job.version.version),
            exporter: format!("{} ({})", job.exporter.name, job.exporter.id),
            hook: format!("{} ({})", job.hook.name, job.hook.id),
            job: job.job.id.clone(),
            status: job.job.status.to_string(),
        }
    }
}

/// How much of a failed job's log goes into the pull request comment.
const FAILURE_LOG_LINES: usize = 20;

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
    let mode_name = match mode {
        Mode::DryRun { .. } => "dry_run",
        Mode::Deliver => "deliver",
    };
    let mut report = RunReport {
        mode: mode_name,
        status: "nothing_to_deliver",
        reason: None,
        job: None,
        export: None,
        targets: Vec::new(),
    };
    let (exit, report) = match &event {
        Event::Other { event } => {
            report.reason = Some(format!(
                "event `{event}` is ignored; only job:updated is delivered"
            ));
            (Exit::NothingToDeliver, report)
        }
        Event::JobUpdated(job) => {
            report.job = Some(JobSummary::new(job));
            run_job(&config, job, args, mode, report).await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(exit)
}

async fn run_job(
    config: &Arc<Config>,
    job: &JobEvent,
    args: &RunArgs,
    mode: Mode,
    mut report: RunReport,
) -> anyhow::Result<(Exit, RunReport)> {
    let route = match routing::route(config, job) {
        Routing::Unrouted { reason } => {
            report.reason = Some(reason);
            return Ok((Exit::NothingToDeliver, report));
        }
        Routing::Routed(route) if route.is_build_only() => {
            report.reason = Some("the matching hook entries have no targets (only build)".into());
            return Ok((Exit::NothingToDeliver, report));
        }
        Routing::Routed(route) => route,
    };
    let pipeline = Pipeline::new(config.clone())?;
    if !job.is_deliverable() {
        // Nothing to push; the targets' open pull requests hear about the failure.
        report.reason = Some(format!(
            "job {} has status {}; only successful jobs are delivered",
            job.job.id, job.job.status
        ));
        let tail = pipeline.log_tail(job, FAILURE_LOG_LINES).await;
        for routed in &route.targets {
            report
                .targets
                .push(pipeline.report_failure(job, routed, &tail, mode).await);
        }
        return Ok((Exit::NothingToDeliver, report));
    }
    let obtained = match pipeline.obtain_export(job, args.artifact.as_deref()).await {
        Ok(obtained) => obtained,
        Err(err) => {
            report.status = "failed";
            report.reason = Some(err.to_string());
            let exit = match err {
                PipelineError::Archive(_) => Exit::Invalid,
                _ => Exit::Failure,
            };
            return Ok((exit, report));
        }
    };
    report.export = Some(obtained.export.summary());
    for failure in &route.failures {
        report
            .targets
            .push(TargetReport::unroutable(config, failure));
    }
    for routed in &route.targets {
        report.targets.push(
            pipeline
                .run_target(job, &obtained.export, routed, mode)
                .await,
        );
    }
    let failed = report.targets.iter().filter(|t| t.is_error()).count();
    report.status = match (failed, mode) {
        (0, Mode::DryRun { .. }) => "planned",
        (0, Mode::Deliver) => "delivered",
        (n, _) if n == report.targets.len() => "failed",
        _ => "partial",
    };
    let exit = if failed == 0 {
        Exit::Success
    } else {
        Exit::Failure
    };
    Ok((exit, report))
}

fn print_text(report: &RunReport) {
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
        println!("  action: {}", target.action);
        if let Some(message) = &target.message {
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
        Some(reason) => println!("{}: {reason}", report.status),
        None => println!("{}", report.status),
    }
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
