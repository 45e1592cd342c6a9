//! The command line: one subcommand per file, all sharing the exit-code convention below.

mod deliver;
mod deliveries;
mod inspect;
mod schema;
mod serve;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::logging::LogArgs;

/// Courier delivers design-system exports into git repositories as pull requests.
#[derive(Debug, Parser)]
#[command(
    name = "courier",
    version,
    propagate_version = true,
    // The logging flags are global: listed after each command's own, under their heading.
    next_display_order = 100,
    next_help_heading = "Logging",
    after_help = "The platform's webhook goes to `courier serve`; the other commands check a \
                  configuration, show what an event would do, and run or inspect deliveries by hand.\n\n\
                  Exit codes: 0 done, 1 failed while running, 2 invalid input (configuration, \
                  payload, archive), 3 nothing to deliver.\n\
                  Configuration: docs/configuration.md; its JSON Schema: `courier schema`."
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a configuration file: prints `ok`, or every problem found (exit 2).
    Validate(validate::ValidateArgs),
    /// Show what Courier makes of an event: the normalised job, the targets it routes to
    /// and the export's summary. Exit 0 when it would deliver.
    Inspect(inspect::InspectArgs),
    /// Run the whole delivery pipeline with every write switched off, and print the plan:
    /// per target the action, branch, commit message and files (optionally a diff).
    DryRun(deliver::DryRunArgs),
    /// Run one delivery for real, in the foreground, and print what was done.
    Deliver(deliver::DeliverArgs),
    /// Run the server: webhook intake, the operations API, and the delivery workers.
    Serve(serve::ServeArgs),
    /// List deliveries recorded in the store, newest first.
    Deliveries(deliveries::DeliveriesArgs),
    /// Put a delivery (or every delivery of a job) back in the queue; a running server
    /// picks it up.
    Replay(deliveries::ReplayArgs),
    /// Print the configuration's JSON Schema (deploy/courier.schema.json), for editors and
    /// CI.
    Schema(schema::SchemaArgs),
}

/// What the process exits with. Scripts branch on these, so they are part of the interface
/// (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Valid and done (or, for `inspect`/`dry-run`, it would deliver).
    Success = 0,
    /// Something failed while running (network, git, provider).
    Failure = 1,
    /// The input is invalid: configuration problems, a malformed payload, a rejected archive.
    Invalid = 2,
    /// Valid input that leads to no delivery: a failed job, or no target routed.
    NothingToDeliver = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Runs the parsed command. Errors that reach here are failures while running; invalid
/// input is reported by the commands themselves with [`Exit::Invalid`].
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Inspect(args) => runtime()?.block_on(inspect::run(&args)),
        Command::DryRun(args) => runtime()?.block_on(deliver::dry_run(&args)),
        Command::Deliver(args) => runtime()?.block_on(deliver::deliver(&args)),
        Command::Serve(args) => {
            let runtime = runtime()?;
            let exit = runtime.block_on(serve::run(&args));
            // A download abandoned at the end of the shutdown grace period must not keep
            // the process alive: its lease expires and another worker redoes it.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            exit
        }
        Command::Deliveries(args) => runtime()?.block_on(deliveries::list(&args)),
        Command::Replay(args) => runtime()?.block_on(deliveries::replay(&args)),
        Command::Schema(args) => schema::run(&args),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Loads the configuration, or prints every problem in it and says to exit with
/// [`Exit::Invalid`]: each command reports a bad configuration the same way.
fn load_config(path: &std::path::Path) -> Result<courier_core::config::Config, Exit> {
    courier_core::config::Config::load(path).map_err(|problems| {
        eprintln!("{problems}");
        Exit::Invalid
    })
}

/// Where a payload comes from: a file, or `-` for standard input.
fn read_payload(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    use std::io::Read as _;
    if path.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .context("reading the payload from stdin")?;
        Ok(body)
    } else {
        std::fs::read(path).with_context(|| format!("reading the payload {}", path.display()))
    }
}
