//! Logging set-up: human-readable by default, JSON lines on request, always to stderr so
//! that `--json` reports on stdout stay machine-readable.
//!
//! A server names its replica once ([`set_replica`]) and from then on every line carries
//! it: a `replica` key in JSON, a `replica=` prefix in the human format. It is set on the
//! formatter rather than as a span field because most of a server's work runs in tasks
//! (connections, workers, blocking git threads) that do not inherit the span of `main`.

use std::ffi::OsStr;
use std::fmt;
use std::io::IsTerminal;
use std::sync::OnceLock;

use clap::{Args, ValueEnum};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Full, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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

static REPLICA: OnceLock<String> = OnceLock::new();

/// Names this process's replica on every log line from now on. The first call wins (a
/// process is one replica); later calls are ignored.
pub fn set_replica(replica: &str) {
    let _ = REPLICA.set(replica.to_owned());
}

pub fn init(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("warn"));
    let no_color = std::env::var_os("NO_COLOR");
    let ansi = use_colour(std::io::stderr().is_terminal(), no_color.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A second init (tests calling the CLI in one process) is harmless: keep the first.
    let _ = match args.log_format {
        LogFormat::Human => builder
            .event_format(WithReplica(Format::<Full>::default()))
            .try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(WithReplica(Format::<Full>::default().json()))
            .try_init(),
    };
}

/// Colour codes only on a terminal: in a file or a log collector they are noise. A
/// non-empty `NO_COLOR` turns them off anywhere (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// The standard formats, with the replica added to each line once it is known.
struct WithReplica<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithReplica<Format<F>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    Format<F>: FormatEvent<S, N>,
    F: ReplicaStyle,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(replica) = REPLICA.get() else {
            return self.0.format_event(ctx, writer, event);
        };
        if !F::INSIDE {
            write!(writer, "replica={replica} ")?;
            return self.0.format_event(ctx, writer, event);
        }
        // The inner format writes one whole line; it is built in memory so the replica can
        // go inside the JSON object (which has no colours to lose on the way).
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&F::with_replica(line, replica))
    }
}

/// Where each format puts the replica.
trait ReplicaStyle {
    /// Whether the replica goes inside the formatted line (else in front of it).
    const INSIDE: bool;
    fn with_replica(line: String, replica: &str) -> String;
}

impl ReplicaStyle for Full {
    const INSIDE: bool = false;
    fn with_replica(line: String, replica: &str) -> String {
        format!("replica={replica} {line}")
    }
}

impl ReplicaStyle for Json {
    const INSIDE: bool = true;
    fn with_replica(line: String, replica: &str) -> String {
        match line.strip_prefix('{') {
            Some(rest) => {
                let key = serde_json::to_string(replica).unwrap_or_else(|_| "\"?\"".to_owned());
                let sep = if rest.starts_with('}') { "" } else { "," };
                format!("{{\"replica\":{key}{sep}{rest}")
            }
            None => line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let set = |v: &'static str| Some(OsStr::new(v));
        assert!(use_colour(true, None));
        assert!(use_colour(true, set("")));
        assert!(!use_colour(true, set("1")));
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, set("")));
    }

    #[test]
    fn the_replica_goes_into_the_json_object_and_in_front_of_a_human_line() {
        let json = Json::with_replica(
            "{\"timestamp\":\"t\",\"level\":\"INFO\"}\n".to_owned(),
            "web-\"1\"",
        );
        let parsed: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(parsed["replica"], "web-\"1\"");
        assert_eq!(parsed["level"], "INFO");
        assert_eq!(
            Json::with_replica("{}\n".to_owned(), "r"),
            "{\"replica\":\"r\"}\n"
        );
        assert_eq!(
            Full::with_replica("2026 INFO courier: hi\n".to_owned(), "r1"),
            "replica=r1 2026 INFO courier: hi\n"
        );
    }
}
