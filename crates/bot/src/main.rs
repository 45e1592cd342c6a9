//! The `courier` binary: parse the command line, set up logging, run, map the result to
//! an exit code. Everything else lives in the library so tests can drive it.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(unsafe_code)]
fn main() -> ExitCode {
    use courier_providers::git::{Timeouts, init_libgit2};
    // The deliveries use the default timeouts (`Deliverer::new`).
    let socket_timeout = Timeouts::default().network();
    // SAFETY: nothing has spawned a thread yet (the runtime starts in `run`), as
    // `init_libgit2` requires.
    if let Err(err) = unsafe { init_libgit2(socket_timeout) } {
        eprintln!("error: {err}");
        return courier::cli::Exit::Failure.into();
    }
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
