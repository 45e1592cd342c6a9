//! Logging set-up: human-readable by default, JSON lines on request, always to stderr so
//! that `--json` reports on stdout stay machine-readable.

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "COURIER_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` syntax (e.g. `info`, `courier=debug,courier_providers=trace`).
    #[arg(long, global = true, env = "COURIER_LOG", default_value = "warn")]
    pub log: String,
}

pub fn init(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling the CLI in one process) is harmless: keep the first.
    let _ = match args.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
