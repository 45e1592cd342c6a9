//! `courier inspect`: what Courier makes of an event, without touching any repository.

use std::path::PathBuf;

use clap::Args;
use courier_core::archive::Export;
use courier_core::config::Config;
use courier_core::event::{Event, JobEvent};
use courier_core::routing::{self, Routing};
use serde::Serialize;

use super::{Exit, load_config, read_payload};
use crate::delivery::{ParsedPayload, TargetView, export_refusal, parse_payload};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The webhook body to inspect (JSON), or `-` for standard input.
    #[arg(long, short, env = "COURIER_PAYLOAD")]
    pub payload: PathBuf,
    /// A result zip to validate and summarise (nothing is downloaded by `inspect`).
    #[arg(long, short, env = "COURIER_ARTIFACT")]
    pub artifact: Option<PathBuf>,
    /// A configuration to route the event with.
    #[arg(long, short, env = "COURIER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` shape. Field names are part of the interface (see README).
#[derive(Debug, Serialize)]
struct Inspection {
    /// Whether Courier would deliver this event (given the config and artifact passed).
    deliverable: bool,
    /// Why not, when it would not.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The body had trailing commas that Courier removed before parsing.
    repaired: bool,
    event: Event,
    /// `null` when no `--config` was given.
    routing: Option<RoutingView>,
    /// `null` when no `--artifact` was given.
    export: Option<ExportView>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum RoutingView {
    Routed {
        targets: Vec<TargetView>,
        failures: Vec<FailureView>,
    },
    BuildOnly,
    Unrouted {
        reason: String,
    },
}

#[derive(Debug, Serialize)]
struct FailureView {
    target: String,
    error: String,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ExportView {
    Valid {
        #[serde(flatten)]
        summary: courier_core::archive::ExportSummary,
    },
    Rejected {
        rule: &'static str,
        entry: Option<String>,
        message: String,
    },
}

pub async fn run(args: &InspectArgs) -> anyhow::Result<Exit> {
    let body = read_payload(&args.payload)?;
    let parsed = match parse_payload(&body) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("invalid payload: {err}");
            return Ok(Exit::Invalid);
        }
    };
    let config = match &args.config {
        Some(path) => match load_config(path) {
            Ok(config) => Some(config),
            Err(exit) => return Ok(exit),
        },
        None => None,
    };
    let ParsedPayload { event, repaired } = parsed;

    let routing = match (&config, &event) {
        (Some(config), Event::JobUpdated(job)) => Some(routing_view(config, job)),
        _ => None,
    };
    let opened = args.artifact.as_ref().map(|path| {
        let limits = config
            .as_ref()
            .map(|c| c.limits.archive.clone())
            .unwrap_or_default();
        Export::open(path, &limits)
    });
    // The targets' own rules on the export, judged as a delivery judges them.
    let refusal = match (&config, &event, &opened) {
        (Some(config), Event::JobUpdated(job), Some(Ok(export))) => refusal(config, job, export),
        _ => None,
    };
    let export = opened.map(|opened| match opened {
        Ok(export) => ExportView::Valid {
            summary: export.summary(),
        },
        Err(err) => ExportView::Rejected {
            rule: err.rule(),
            entry: err.entry().map(str::to_owned),
            message: err.to_string(),
        },
    });

    let reason = why_not(&event, routing.as_ref(), export.as_ref()).or(refusal);
    let inspection = Inspection {
        deliverable: reason.is_none(),
        reason,
        repaired,
        event,
        routing,
        export,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
    } else {
        print_text(&inspection);
    }
    Ok(match (&inspection.export, inspection.deliverable) {
        (Some(ExportView::Rejected { .. }), _) => Exit::Invalid,
        (_, true) => Exit::Success,
        (_, false) => Exit::NothingToDeliver,
    })
}

fn routing_view(config: &Config, job: &JobEvent) -> RoutingView {
    match routing::route(config, job) {
        Routing::Unrouted { reason } => RoutingView::Unrouted { reason },
        Routing::Routed(route) if route.is_build_only() => RoutingView::BuildOnly,
        Routing::Routed(route) => RoutingView::Routed {
            targets: route
                .targets
                .iter()
                .map(|t| TargetView::new(config, t))
                .collect(),
            failures: route
                .failures
                .iter()
                .map(|f| FailureView {
                    target: f.target.id.clone(),
                    error: f.error.to_string(),
                })
                .collect(),
        },
    }
}

/// The first routed target that would refuse this export, and why.
fn refusal(config: &Config, job: &JobEvent, export: &Export) -> Option<String> {
    let Routing::Routed(route) = routing::route(config, job) else {
        return None;
    };
    route.targets.iter().find_map(|routed| {
        export_refusal(routed.target, export)
            .map(|why| format!("target {}: {why}", routed.target.id))
    })
}

/// The first reason the event would not be delivered, in the order a person fixes them.
fn why_not(
    event: &Event,
    routing: Option<&RoutingView>,
    export: Option<&ExportView>,
) -> Option<String> {
    let job = match event {
        Event::JobUpdated(job) => job,
        Event::Other { event } => {
            return Some(format!(
                "event `{event}` is not a job:updated event; Courier ignores it"
            ));
        }
    };
    if !job.is_deliverable() {
        return Some(format!(
            "job {} has status {}; only successful jobs are delivered",
            job.job.id, job.job.status
        ));
    }
    match routing {
        Some(RoutingView::Unrouted { reason }) => return Some(reason.clone()),
        Some(RoutingView::BuildOnly) => {
            return Some("the matching hook entries have no targets (only build)".to_owned());
        }
        Some(RoutingView::Routed { targets, .. }) if targets.is_empty() => {
            return Some("every routed target failed to resolve (see failures)".to_owned());
        }
        _ => {}
    }
    if let Some(ExportView::Rejected { message, .. }) = export {
        return Some(message.clone());
    }
    None
}

fn print_text(inspection: &Inspection) {
    match &inspection.event {
        Event::Other { event } => println!("event: {event} (ignored)"),
        Event::JobUpdated(job) => {
            println!(
                "event: job:updated ({:?} payload{})",
                job.payload_version,
                if inspection.repaired {
                    ", trailing commas repaired"
                } else {
                    ""
                }
            );
            println!(
                "  workspace:     {} ({})",
                job.workspace.name, job.workspace.id
            );
            println!(
                "  design system: {} ({})",
                job.design_system.name, job.design_system.id
            );
            println!(
                "  version:       {} {} ({})",
                job.version.name, job.version.version, job.version.id
            );
            println!(
                "  exporter:      {} ({})",
                job.exporter.name, job.exporter.id
            );
            println!("  hook:          {} ({})", job.hook.name, job.hook.id);
            println!("  job:           {} status {}", job.job.id, job.job.status);
            println!(
                "  artifact:      {}",
                crate::delivery::describe_artifact(&job.job.artifact)
            );
        }
    }
    match &inspection.routing {
        None => println!("routing: not checked (pass --config)"),
        Some(RoutingView::Unrouted { reason }) => println!("routing: unrouted: {reason}"),
        Some(RoutingView::BuildOnly) => println!("routing: only build (no targets)"),
        Some(RoutingView::Routed { targets, failures }) => {
            println!("routing: {} target(s)", targets.len());
            for t in targets {
                println!("  - {t}");
            }
            for f in failures {
                println!("  ! {}: {}", f.target, f.error);
            }
        }
    }
    match &inspection.export {
        None => println!("export: not checked (pass --artifact)"),
        Some(ExportView::Rejected { message, .. }) => println!("export: rejected: {message}"),
        Some(ExportView::Valid { summary }) => {
            println!("export: {} file(s), {} bytes", summary.files, summary.bytes);
            if summary.root_files > 0 {
                println!(
                    "  {:<24} {:>6} files {:>12} bytes",
                    "(top level)", summary.root_files, summary.root_bytes
                );
            }
            for dir in &summary.directories {
                println!(
                    "  {:<24} {:>6} files {:>12} bytes",
                    format!("{}/", dir.name),
                    dir.files,
                    dir.bytes
                );
            }
        }
    }
    match &inspection.reason {
        None => println!("would deliver: yes"),
        Some(reason) => println!("would deliver: no: {reason}"),
    }
}
