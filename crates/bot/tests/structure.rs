//! Rules about the shape of `crates/bot/src` that the compiler does not check: deliveries
//! run as ordinary async tasks (so a lost lease or a shutdown can stop them), and what
//! happened to a delivery is a type, never a word compared later.

use std::path::{Path, PathBuf};

/// Every Rust source of the `courier` crate, with its path relative to `src/`.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    assert!(files.len() > 20, "found the sources");
    files
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(&src).unwrap().display().to_string();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// `(file, line)` of every line containing `needle`, outside `allowed` files.
fn found(needle: &str, allowed: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(name, _)| !allowed.contains(&name.as_str()))
        .flat_map(|(name, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| line.contains(needle) && !line.trim_start().starts_with("//"))
                .map(|(n, line)| format!("{name}:{}: {}", n + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn no_delivery_runs_on_a_thread_of_its_own() {
    // The runtime is entered once, where a command starts.
    assert_eq!(found("block_on(", &["cli/mod.rs"]), Vec::<String>::new());
    // Only the CPU-bound validation of a zip sits on the blocking pool (libgit2 does too,
    // inside the providers crate); never a whole delivery.
    assert_eq!(
        found("spawn_blocking", &["delivery/export.rs"]),
        Vec::<String>::new()
    );
}

#[test]
fn outcomes_are_never_compared_as_strings() {
    let words = [
        "push",
        "no_changes",
        "up_to_date",
        "branch_diverged",
        "error",
        "commented",
        "no_open_pull_request",
        "delivered",
        "failed",
        "skipped",
    ];
    let mut compared = Vec::new();
    for word in words {
        for pattern in [
            format!("== \"{word}\""),
            format!("!= \"{word}\""),
            format!("\"{word}\" =>"),
            format!("\"{word}\" |"),
        ] {
            // `DeliveryState::from_str` reads the store's own column back: its words are
            // the type's serialisation, in one place.
            compared.extend(found(&pattern, &["store/types.rs"]));
        }
    }
    assert_eq!(compared, Vec::<String>::new());
}
