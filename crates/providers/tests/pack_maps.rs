//! libgit2 keeps a bounded part of a pack mapped, whatever the pack weighs.
//!
//! Its own test binary with a single test: `init_libgit2` sets process-wide libgit2
//! globals and may only run while no other thread uses libgit2.

mod git_env;

use std::io::Write;
use std::process::Stdio;

use courier_providers::git::{PACK_MAP_LIMIT, PACK_MAP_WINDOW, init_libgit2};
use git_env::noise;

const BLOBS: usize = 24;
const BLOB_SIZE: usize = 4 << 20;

/// Pages of mapped files in this process's resident set, in bytes.
fn resident_file_pages() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("RssFile:"))
        .expect("RssFile in /proc/self/status");
    let kb: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("RssFile in kB");
    kb * 1024
}

#[test]
fn reading_a_whole_pack_keeps_a_bounded_part_of_it_mapped() {
    // SAFETY: this binary's only test, run before anything here touches libgit2.
    #[allow(unsafe_code)]
    unsafe { init_libgit2(courier_providers::git::Timeouts::default().network()) }
        .expect("configuring libgit2");

    // One pack of incompressible blobs, written by the git CLI (stored, not deflated, so
    // the pack weighs what the blobs weigh).
    let dir = tempfile::tempdir().expect("temporary directory");
    let repo = git2::Repository::init_bare(dir.path()).expect("init");
    let mut import = courier_testkit::git_command(dir.path())
        .args([
            "-c",
            "core.compression=0",
            "-c",
            "pack.compression=0",
            "-c",
            "fastimport.unpackLimit=0",
            "fast-import",
            "--quiet",
        ])
        .env("GIT_DIR", dir.path())
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    let mut ids = Vec::new();
    {
        let mut stdin = import.stdin.take().expect("stdin");
        for seed in 0..BLOBS {
            let data = noise(BLOB_SIZE, 2 * seed as u64 + 1);
            ids.push(git2::Oid::hash_object(git2::ObjectType::Blob, &data).expect("hashing"));
            write!(stdin, "blob\ndata {}\n", data.len()).expect("writing to fast-import");
            stdin.write_all(&data).expect("writing to fast-import");
            stdin.write_all(b"\n").expect("writing to fast-import");
        }
    }
    assert!(import.wait().expect("git fast-import").success());
    let pack_size: u64 = std::fs::read_dir(dir.path().join("objects/pack"))
        .expect("objects/pack")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .map(|e| e.metadata().expect("pack metadata").len())
        .sum();
    let bound = PACK_MAP_LIMIT + 2 * PACK_MAP_WINDOW;
    assert!(
        pack_size as usize > 2 * bound,
        "the pack ({pack_size} bytes) must be well over the bound ({bound} bytes) to show anything"
    );

    let before = resident_file_pages();
    let odb = repo.odb().expect("odb");
    odb.refresh().expect("rereading objects/pack");
    let mut read = 0;
    for id in &ids {
        read += odb.read(*id).expect("reading a blob from the pack").len();
    }
    let grown = resident_file_pages().saturating_sub(before);
    assert_eq!(read, BLOBS * BLOB_SIZE);
    assert!(
        grown <= bound,
        "reading a {pack_size}-byte pack left {grown} bytes of mapped files resident (bound: {bound})"
    );
}
