//! Archives that must be accepted, with their entries and bytes round-tripping exactly.

mod support;

use std::process::Command;

use courier_core::archive::{ArchiveLimits, Export};
use support::zip_bytes::{Archive, Entry};
use support::{assert_only_input, open_bytes, read_all, write_zip};

#[test]
fn zip_cli_archive_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("d/sub/deeper")).unwrap();
    std::fs::create_dir_all(src.join("d/empty")).unwrap();
    let nums: String = (1..20_000).map(|i| format!("{i}\n")).collect();
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("d/sub/nums.txt"), &nums).unwrap();
    std::fs::write(src.join("d/noise.bin"), &noise).unwrap();
    std::fs::write(src.join("d/zero"), b"").unwrap();
    std::fs::write(src.join("d/sub/deeper/caf\u{e9}.txt"), "\u{e9}").unwrap();
    let zip = dir.path().join("out.zip");
    let status = Command::new("zip")
        .args(["-q", "-r"])
        .arg(&zip)
        .arg("d")
        .current_dir(&src)
        .status()
        .expect("the zip CLI is installed");
    assert!(status.success());

    let export = Export::open(&zip, &ArchiveLimits::default()).unwrap();
    let files = read_all(&export);
    let expected: Vec<(String, Vec<u8>)> = vec![
        ("d/noise.bin".into(), noise),
        ("d/sub/deeper/caf\u{e9}.txt".into(), "\u{e9}".into()),
        ("d/sub/nums.txt".into(), nums.into_bytes()),
        ("d/zero".into(), Vec::new()),
    ];
    assert_eq!(files, expected);
}

#[test]
fn raw_stored_and_deflate_round_trip() {
    let text = "token: value;\n".repeat(5000);
    let bytes = Archive::new(vec![
        Entry::dir("a/"),
        Entry::stored("a/stored.txt", b"plain"),
        Entry::deflated("a/b/deflated.txt", text.as_bytes()),
        Entry::deflated("empty-deflated", b""),
        Entry::stored("\u{65e5}\u{672c}/\u{1f600}.json", b"{}"),
    ])
    .bytes();
    let export = open_bytes(&bytes).unwrap();
    assert_eq!(
        read_all(&export),
        vec![
            ("a/b/deflated.txt".to_owned(), text.into_bytes()),
            ("a/stored.txt".to_owned(), b"plain".to_vec()),
            ("empty-deflated".to_owned(), Vec::new()),
            ("\u{65e5}\u{672c}/\u{1f600}.json".to_owned(), b"{}".to_vec()),
        ]
    );
}

#[test]
fn streaming_reads_leave_nothing_on_disk() {
    let bytes = Archive::new(vec![Entry::deflated("x/y.txt", &[7u8; 10_000])]).bytes();
    let zip = write_zip(&bytes);
    let export = Export::open(&zip.path, &ArchiveLimits::default()).unwrap();
    assert_eq!(
        read_all(&export),
        vec![("x/y.txt".to_owned(), vec![7u8; 10_000])]
    );
    assert_only_input(zip.dir.path());
}
