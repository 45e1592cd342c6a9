//! `courier validate`: load a configuration and report every problem in it.

use std::path::PathBuf;

use clap::Args;
use courier_core::config::Config;

use super::Exit;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The configuration file (YAML).
    #[arg(long, short, env = "COURIER_CONFIG")]
    pub config: PathBuf,
}

pub fn run(args: &ValidateArgs) -> anyhow::Result<Exit> {
    match Config::load(&args.config) {
        Ok(_) => {
            println!("ok");
            Ok(Exit::Success)
        }
        Err(problems) => {
            // Every problem, one per line, each with its location and key path.
            eprintln!("{problems}");
            Ok(Exit::Invalid)
        }
    }
}
