//! The `courier` binary: parse the command line, set up logging, run, map the result to
//! an exit code. Everything else lives in the library so tests can drive it.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = courier::cli::Cli::parse();
    courier::logging::init(&cli.log);
    match courier::cli::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: what we were doing and why it failed.
            eprintln!("error: {err:#}");
            courier::cli::Exit::Failure.into()
        }
    }
}
