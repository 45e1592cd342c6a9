//! `courier schema`: the configuration's JSON Schema, for editors and CI.

use clap::Args;

use super::Exit;

/// No options: the schema does not depend on any configuration. Editors read it from a
/// configuration's first line, `# yaml-language-server: $schema=PATH`.
#[derive(Debug, Args)]
pub struct SchemaArgs {}

/// Prints exactly what `deploy/courier.schema.json` holds (a test keeps the two equal), so
/// `courier schema > deploy/courier.schema.json` regenerates it.
pub fn run(_: &SchemaArgs) -> anyhow::Result<Exit> {
    let schema = serde_json::to_string_pretty(&courier_core::config::json_schema())?;
    println!("{schema}");
    Ok(Exit::Success)
}
