//! Archives that must be accepted, with their entries and bytes round-tripping exactly.

mod support;

use std::io::{Read, Seek, Write};
use std::process::Command;

use courier_core::archive::{ArchiveLimits, Export};
use support::zip_bytes::{Archive, Entry, zip64_field};
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

/// A directory, a stored file, `text` deflated and an empty deflated file.
fn mixed_entries(text: &str) -> Vec<Entry> {
    vec![
        Entry::dir("a/"),
        Entry::stored("a/stored.txt", b"plain"),
        Entry::deflated("a/b/deflated.txt", text.as_bytes()),
        Entry::deflated("empty-deflated", b""),
    ]
}

/// `count` files of `len` pseudo-random (incompressible) bytes, in seven directories,
/// alternately stored and deflated.
fn noise_entries(count: usize, len: usize) -> Vec<Entry> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..count)
        .map(|i| {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let name = format!("dir{}/file{i}.bin", i % 7);
            if i % 2 == 0 {
                Entry::stored(&name, &data)
            } else {
                Entry::deflated(&name, &data)
            }
        })
        .collect()
}

#[test]
fn raw_stored_and_deflate_round_trip() {
    let text = "token: value;\n".repeat(5000);
    let mut entries = mixed_entries(&text);
    entries.push(Entry::stored("\u{65e5}\u{672c}/\u{1f600}.json", b"{}"));
    let bytes = Archive::new(entries).bytes();
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

/// Builds an archive with the `zip` crate, as most Rust and many other tools would.
fn zip_crate_archive(large_file: bool) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "tokens/colors.json".into(),
            b"{\"red\": \"#f00\"}\n".repeat(300),
        ),
        ("tokens/spacing.json".into(), b"{}".to_vec()),
        (
            "assets/icon.bin".into(),
            (0..70_000u32)
                .map(|i| (i.wrapping_mul(40503) >> 7) as u8)
                .collect(),
        ),
        ("README.md".into(), Vec::new()),
        (
            "\u{00fc}ber/\u{0441}\u{043b}\u{043e}\u{0432}\u{043e}.txt".into(),
            "Unicode".into(),
        ),
    ];
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .add_directory("empty/", SimpleFileOptions::default())
        .unwrap();
    for (i, (name, data)) in files.iter().enumerate() {
        let method = if i % 2 == 0 {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .large_file(large_file);
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(data).unwrap();
    }
    let bytes = writer.finish().unwrap().into_inner();
    files.sort();
    (bytes, files)
}

#[test]
fn zip_crate_archive_round_trips() {
    let (bytes, files) = zip_crate_archive(false);
    let export = open_bytes(&bytes).unwrap();
    assert_eq!(read_all(&export), files);
}

#[test]
fn zip_crate_zip64_archive_round_trips() {
    let (bytes, files) = zip_crate_archive(true);
    let export = open_bytes(&bytes).unwrap();
    assert_eq!(read_all(&export), files);
}

/// Info-ZIP's `zip` writing to a pipe marks only the compressed size as ZIP64 in a local
/// header and stores only that value in its ZIP64 field (the real sizes follow the data in
/// a 64-bit descriptor). libarchive, Python and Go read it; so does Courier.
#[test]
fn a_local_zip64_field_holding_only_the_marked_size() {
    let data = b":root { --primary: #1463ff; }\n".repeat(40);
    let mut entry = Entry::deflated("tokens/colors.css", &data).with_descriptor(true);
    entry.local.compressed = Some(u32::MAX);
    entry.local_extra = zip64_field(&[0]);
    if let Some(descriptor) = entry.descriptor.as_mut() {
        descriptor.wide = true;
    }
    let export = open_bytes(&Archive::new(vec![entry]).bytes()).unwrap();
    assert_eq!(
        read_all(&export),
        vec![("tokens/colors.css".to_owned(), data)]
    );
}

#[test]
fn raw_zip64_archive_with_descriptors() {
    let mut entries = vec![
        Entry::deflated("z/a.txt", &b"zip64 ".repeat(1000)),
        Entry::stored("z/b.bin", &[1, 2, 3]),
    ];
    for e in &mut entries {
        e.zip64 = true;
    }
    let streamed = Entry {
        zip64: true,
        ..Entry::deflated("z/c.txt", b"streamed with a wide descriptor")
    }
    .with_descriptor(true);
    entries.push(streamed);
    let bytes = Archive {
        zip64_end: true,
        ..Archive::new(entries)
    }
    .bytes();
    let export = open_bytes(&bytes).unwrap();
    assert_eq!(
        read_all(&export),
        vec![
            ("z/a.txt".to_owned(), b"zip64 ".repeat(1000)),
            ("z/b.bin".to_owned(), vec![1, 2, 3]),
            (
                "z/c.txt".to_owned(),
                b"streamed with a wide descriptor".to_vec()
            ),
        ]
    );
}

#[test]
fn entries_are_sorted_and_summarised() {
    let bytes = Archive::new(vec![
        Entry::stored("b/2.txt", b"22"),
        Entry::dir("empty/"),
        Entry::stored("top.txt", b"1"),
        Entry::deflated("a/x/1.txt", b"333"),
        Entry::stored("b/1.txt", b"4444"),
    ])
    .bytes();
    let export = open_bytes(&bytes).unwrap();
    let paths: Vec<&str> = export.entries().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a/x/1.txt", "b/1.txt", "b/2.txt", "top.txt"]);
    assert_eq!(export.total_bytes(), 10);
    let summary = serde_json::to_value(export.summary()).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({
            "files": 4,
            "bytes": 10,
            "root_files": 1,
            "root_bytes": 1,
            "directories": [
                {"name": "a", "files": 1, "bytes": 3},
                {"name": "b", "files": 2, "bytes": 6},
            ],
        })
    );
    export.ensure_not_empty().unwrap();
}

#[test]
fn readers_work_concurrently() {
    let entries: Vec<Entry> = (0..16)
        .map(|i| {
            Entry::deflated(
                &format!("f{i:02}"),
                &format!("content {i} ").repeat(20_000).into_bytes(),
            )
        })
        .collect();
    let export = open_bytes(&Archive::new(entries).bytes()).unwrap();
    let expected = read_all(&export);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| read_all(&export))).collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), expected);
        }
    });
    // Interleaved reads on one thread do not disturb each other either.
    let mut a = export.open_entry(&export.entries()[0]).unwrap();
    let mut b = export.open_entry(&export.entries()[1]).unwrap();
    let (mut out_a, mut out_b) = (Vec::<u8>::new(), Vec::<u8>::new());
    let mut buf = [0u8; 1000];
    loop {
        let na = a.read(&mut buf).unwrap();
        out_a.extend(&buf[..na]);
        let nb = b.read(&mut buf).unwrap();
        out_b.extend(&buf[..nb]);
        if na == 0 && nb == 0 {
            break;
        }
    }
    assert_eq!(out_a, expected[0].1);
    assert_eq!(out_b, expected[1].1);
}

#[test]
fn from_an_anonymous_temp_file() {
    let bytes = Archive::new(vec![Entry::deflated("a.txt", b"anonymous")]).bytes();
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&bytes).unwrap();
    let export = Export::from_file(file, &ArchiveLimits::default()).unwrap();
    assert_eq!(
        read_all(&export),
        vec![("a.txt".to_owned(), b"anonymous".to_vec())]
    );
}

#[test]
fn a_file_changed_after_validation_is_caught_while_streaming() {
    let bytes = Archive::new(vec![Entry::stored("a.txt", &[b'a'; 5000])]).bytes();
    let zip = write_zip(&bytes);
    let export = Export::open(&zip.path, &ArchiveLimits::default()).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&zip.path)
        .unwrap();
    file.seek(std::io::SeekFrom::Start(100)).unwrap();
    file.write_all(b"b").unwrap();
    let mut reader = export.open_entry(&export.entries()[0]).unwrap();
    let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
    // Reading on after the failure keeps failing instead of reporting a clean end.
    assert!(reader.read(&mut [0; 16]).is_err());
    let inner = err
        .into_inner()
        .and_then(|e| e.downcast::<courier_core::archive::ArchiveError>().ok())
        .expect("an ArchiveError inside the io::Error");
    assert_eq!(inner.rule(), "crc");
    assert_eq!(inner.entry(), Some("a.txt"));
}

/// The id `git hash-object` gives each file's bytes, in the same order.
fn git_blob_ids(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = String::new();
    for (i, (_, bytes)) in files.iter().enumerate() {
        let path = dir.path().join(i.to_string());
        std::fs::write(&path, bytes).unwrap();
        paths.push_str(&format!("{}\n", path.display()));
    }
    let mut git = Command::new("git")
        .args(["hash-object", "--no-filters", "--stdin-paths"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the git CLI is installed");
    git.stdin
        .take()
        .unwrap()
        .write_all(paths.as_bytes())
        .unwrap();
    let out = git.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn hex(id: [u8; 20]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Validation hashes every entry as git would, stored or deflated, empty or spanning
/// many buffers, on one thread or several: a delivery trusts these ids to skip the
/// files the repository already holds.
#[test]
fn each_entry_carries_the_blob_id_git_gives_its_bytes() {
    let text = "token: value;\n".repeat(50_000);
    let mut entries = mixed_entries(&text);
    entries.push(Entry::stored("empty-stored", b""));
    let small = Archive::new(entries).bytes();
    // Above 8 MiB, so several threads validate it whatever the threshold is tuned to.
    let many = Archive::new(noise_entries(300, 40_000)).bytes();
    assert!(many.len() > 8 << 20, "enough data for the parallel path");
    for bytes in [small, many] {
        let export = open_bytes(&bytes).unwrap();
        let files = read_all(&export);
        let ours: Vec<String> = export
            .entries()
            .iter()
            .map(|e| hex(e.git_blob_id()))
            .collect();
        assert_eq!(ours, git_blob_ids(&files));
    }
}

#[test]
fn many_files_take_the_parallel_path() {
    // More than 1 MiB of (incompressible) data, so validation uses several threads;
    // results must not depend on it, and a fault is still found and named.
    let mut entries = noise_entries(300, 40_000);
    let export = open_bytes(&Archive::new(entries.clone()).bytes()).unwrap();
    assert_eq!(export.entries().len(), 300);
    assert_eq!(export.total_bytes(), 300 * 40_000);

    entries[250].crc ^= 1;
    let err = open_bytes(&Archive::new(entries).bytes()).unwrap_err();
    assert_eq!(err.rule(), "crc");
    assert_eq!(err.entry(), Some("dir5/file250.bin"));
}

#[test]
fn exports_and_readers_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Export>();
    send_sync::<courier_core::archive::ExportEntry>();
    send::<courier_core::archive::EntryReader<'static>>();
    send_sync::<courier_core::archive::ArchiveError>();
}

/// Runs the `zip` CLI in `src` with `args` and returns the archive it wrote to stdout
/// (a pipe, so it cannot seek back: every entry gets a data descriptor).
fn zip_cli_to_stdout(src: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("zip")
        .args(args)
        .current_dir(src)
        .output()
        .expect("the zip CLI is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs the `zip` CLI in `src`, writing to a file outside it, and returns the archive.
fn zip_cli_to_file(src: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.zip");
    let status = Command::new("zip")
        .arg(&out)
        .args(args)
        .current_dir(src)
        .status()
        .expect("the zip CLI is installed");
    assert!(status.success());
    std::fs::read(out).unwrap()
}

#[test]
fn zip_cli_streamed_archive_with_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("d/e")).unwrap();
    let text = "streamed through a pipe\n".repeat(400);
    std::fs::write(dir.path().join("d/e/t.txt"), &text).unwrap();
    std::fs::write(dir.path().join("d/raw.bin"), [0u8, 1, 2, 3]).unwrap();
    let bytes = zip_cli_to_stdout(dir.path(), &["-q", "-r", "-", "d"]);
    let export = open_bytes(&bytes).unwrap();
    assert_eq!(
        read_all(&export),
        vec![
            ("d/e/t.txt".to_owned(), text.into_bytes()),
            ("d/raw.bin".to_owned(), vec![0, 1, 2, 3]),
        ]
    );
}

#[test]
fn zip_cli_stored_archive() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.txt"), "stored, not deflated").unwrap();
    let bytes = zip_cli_to_file(dir.path(), &["-q", "-0", "s.txt"]);
    let export = open_bytes(&bytes).unwrap();
    assert_eq!(
        read_all(&export),
        vec![("s.txt".to_owned(), b"stored, not deflated".to_vec())]
    );
}

#[test]
fn zip_cli_symlink_is_refused() {
    // The real thing, not hand-made bytes: `zip -y` stores the link itself.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/a.txt"), "a").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("d/passwd")).unwrap();
    let bytes = zip_cli_to_file(dir.path(), &["-q", "-r", "-y", "d"]);
    let err = open_bytes(&bytes).unwrap_err();
    assert_eq!(err.rule(), "symlink", "{err}");
    assert_eq!(err.entry(), Some("d/passwd"));
}

#[test]
fn a_missing_file_is_an_io_error_not_a_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let err = Export::open(&dir.path().join("absent.zip"), &ArchiveLimits::default()).unwrap_err();
    assert_eq!(err.rule(), "io");
    assert!(!err.is_rejection());
    assert!(err.to_string().contains("absent.zip"), "{err}");
}

#[test]
fn lookup_by_path_and_foreign_entries() {
    let one = open_bytes(&Archive::new(vec![Entry::stored("a/x.txt", b"one")]).bytes()).unwrap();
    let two = open_bytes(
        &Archive::new(vec![
            Entry::stored("pad", &[0; 100]),
            Entry::stored("a/x.txt", b"two"),
        ])
        .bytes(),
    )
    .unwrap();
    assert_eq!(one.entry("a/x.txt").map(|e| e.size), Some(3));
    assert!(one.entry("a").is_none());
    assert!(one.entry("a/x.txt/").is_none());
    // Same path, different export: its offsets mean nothing in this file.
    let foreign = two.entry("a/x.txt").unwrap();
    let err = one.open_entry(foreign).err().expect("refused");
    assert_eq!(err.rule(), "not_in_export");
    assert!(!err.is_rejection());
}

#[test]
fn a_stored_zip_inside_the_zip_is_just_a_file() {
    // Its end record sits near the outer one; only the outer one fits the file's end.
    let inner = Archive {
        comment: b"inner comment".to_vec(),
        ..Archive::new(vec![Entry::stored("inner.txt", b"inner")])
    }
    .bytes();
    let outer = Archive::new(vec![
        Entry::stored("a.txt", b"a"),
        Entry::stored("nested.zip", &inner),
    ])
    .bytes();
    let export = open_bytes(&outer).unwrap();
    assert_eq!(
        read_all(&export),
        vec![
            ("a.txt".to_owned(), b"a".to_vec()),
            ("nested.zip".to_owned(), inner),
        ]
    );
}
