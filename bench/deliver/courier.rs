//! One delivery with Courier's git engine, for the delivery benchmark: validate the
//! zip, plan (fetch + build the tree), push. Prints `action millis`.
//!
//! deliver_bench_courier CACHE_DIR URL TOKEN BASE HEAD RELATIVE_PATH ZIP

use std::sync::Arc;
use std::time::Instant;

use courier_core::archive::{ArchiveLimits, Export};
use courier_core::paths::RelPath;
use courier_providers::git::{
    Credentials, DeliverySpec, GitWorkspace, Remote, Signature, Timeouts,
};
use secrecy::SecretString;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cache, url, token, base, head, path, zip] = args.as_slice() else {
        return Err(
            "usage: deliver_bench_courier CACHE_DIR URL TOKEN BASE HEAD RELATIVE_PATH ZIP".into(),
        );
    };
    let started = Instant::now();
    let limits = ArchiveLimits::default();
    let export = Export::open(zip.as_ref(), &limits)?;
    let remote = Remote::new(
        url,
        Some(Credentials {
            username: "x-access-token".into(),
            token: SecretString::from(token.as_str()),
        }),
    )?;
    let spec = DeliverySpec {
        remote,
        base_branch: base.clone(),
        head_branch: head.clone(),
        relative_path: Some(RelPath::parse(path)?),
        purge: true,
        author: Signature {
            name: "Courier Bench".into(),
            email: "bench@example.invalid".into(),
        },
        commit_message: "Benchmark delivery".into(),
        delivery_id: format!("bench-{head}"),
        allow_protected_paths: false,
        overwrite_diverged: false,
        allow_empty_export: false,
    };
    let workspace = GitWorkspace::new(cache, Timeouts::default())?;
    let plan = workspace.plan(&spec, Arc::new(export)).await?;
    let delivered = workspace.push(plan).await?;
    println!(
        "{} {}",
        delivered.outcome.action(),
        started.elapsed().as_millis()
    );
    Ok(())
}
