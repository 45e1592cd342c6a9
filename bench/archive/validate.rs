//! Validates an archive with `Export::open` (the full pass: structure, names, limits,
//! inflate and CRC of every entry) and prints what it found and how long it took.
//!
//! Usage: `archive_bench_validate ARCHIVE.zip [--stream]`
//!
//! With `--stream`, every entry is then also streamed once through `open_entry`, as a
//! delivery would, to show the cost of the second, verifying read.

use std::time::Instant;

use courier_core::archive::{ArchiveLimits, Export};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: archive_bench_validate ARCHIVE.zip [--stream]");
        std::process::exit(2);
    };
    let stream = args.next().as_deref() == Some("--stream");
    let start = Instant::now();
    let export = match Export::open(path.as_ref(), &ArchiveLimits::default()) {
        Ok(export) => export,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(1);
        }
    };
    let validated = start.elapsed();
    let summary = export.summary();
    print!(
        "{} files, {} bytes, validated in {:.3}s",
        summary.files,
        summary.bytes,
        validated.as_secs_f64()
    );
    if stream {
        let start = Instant::now();
        let mut sink = std::io::sink();
        let mut streamed = 0;
        for entry in export.entries() {
            let mut reader = export.open_entry(entry).expect("open entry");
            streamed += std::io::copy(&mut reader, &mut sink).expect("stream entry");
        }
        print!(
            ", streamed {streamed} bytes in {:.3}s",
            start.elapsed().as_secs_f64()
        );
    }
    println!();
}
