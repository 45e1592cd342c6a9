//! Hostile and broken archives, each built byte by byte here, each refused as a whole
//! with the rule it breaks and the entry it breaks it in.

mod support;

use courier_core::archive::{ArchiveError, ArchiveLimits};
use support::zip_bytes::{
    Archive, CENTRAL_SIG, Descriptor, EOCD_SIG, Entry, LOCAL_SIG, S_IFDIR, S_IFIFO, S_IFLNK, crc,
    put16, put32, zip64_field,
};
use support::{open_bytes, open_bytes_with};

/// Asserts the rejection's rule id, the entry it names, and that both are in the message.
#[track_caller]
fn assert_rule(
    result: Result<impl std::fmt::Debug, ArchiveError>,
    rule: &str,
    entry: Option<&str>,
) {
    let err = result.expect_err("archive must be rejected");
    let message = err.to_string();
    assert_eq!(err.rule(), rule, "{message}");
    assert_eq!(err.entry(), entry, "{message}");
    assert!(message.starts_with("archive rejected: "), "{message}");
    assert!(message.ends_with(&format!("(rule: {rule})")), "{message}");
    if let Some(entry) = entry {
        assert!(message.contains(&format!("entry {entry:?}: ")), "{message}");
    }
}

#[track_caller]
fn rejects(entries: Vec<Entry>, rule: &str, entry: Option<&str>) {
    assert_rule(open_bytes(&Archive::new(entries).bytes()), rule, entry);
}

fn ok() -> Entry {
    Entry::stored("ok.txt", b"fine")
}

// --- Names -----------------------------------------------------------------------

#[test]
fn parent_segment() {
    rejects(
        vec![ok(), Entry::stored("a/../b", b"x")],
        "parent_segment",
        Some("a/../b"),
    );
    rejects(
        vec![Entry::stored("../../etc/cron.d/x", b"x")],
        "parent_segment",
        Some("../../etc/cron.d/x"),
    );
}

#[test]
fn absolute_path() {
    rejects(
        vec![Entry::stored("/etc/passwd", b"x")],
        "absolute_path",
        Some("/etc/passwd"),
    );
}

#[test]
fn drive_letter() {
    rejects(
        vec![Entry::stored("C:/Windows/x", b"x")],
        "drive_letter",
        Some("C:/Windows/x"),
    );
    rejects(
        vec![Entry::stored("c:x", b"x")],
        "drive_letter",
        Some("c:x"),
    );
}

#[test]
fn unc_path() {
    rejects(
        vec![Entry::stored("//server/share/x", b"x")],
        "unc_path",
        Some("//server/share/x"),
    );
}

#[test]
fn backslash() {
    rejects(
        vec![Entry::stored("a\\..\\..\\b", b"x")],
        "backslash",
        Some("a\\..\\..\\b"),
    );
}

#[test]
fn nul_and_control_characters() {
    rejects(
        vec![Entry::stored("a\0.txt", b"x")],
        "control_character",
        Some("a\0.txt"),
    );
    rejects(
        vec![Entry::stored("a\x1b[2J.txt", b"x")],
        "control_character",
        Some("a\x1b[2J.txt"),
    );
    rejects(
        vec![Entry::stored("line\nbreak", b"x")],
        "control_character",
        Some("line\nbreak"),
    );
}

#[test]
fn flagged_utf8_name_that_is_not_utf8() {
    let entry = Entry::stored_raw(b"caf\xe9.txt", b"x");
    assert_ne!(entry.flags & (1 << 11), 0);
    rejects(vec![entry], "non_utf8_name", Some("caf\u{fffd}.txt"));
}

#[test]
fn cp437_name_with_high_bytes() {
    // CP437 0x82 is "é"; alone it is not UTF-8, and we do not guess code pages.
    let entry = Entry {
        flags: 0,
        ..Entry::stored_raw(b"caf\x82.txt", b"x")
    };
    rejects(vec![entry], "non_utf8_name", Some("caf\u{fffd}.txt"));
}

#[test]
fn path_too_long() {
    let long = format!("{}/x", "d".repeat(300));
    let limits = ArchiveLimits {
        max_path_bytes: 256,
        ..ArchiveLimits::default()
    };
    let bytes = Archive::new(vec![Entry::stored(&long, b"x")]).bytes();
    assert_rule(
        open_bytes_with(&bytes, &limits),
        "path_too_long",
        Some(&long),
    );
}

#[test]
fn git_directory_in_any_spelling() {
    for name in [
        ".git/config",
        "sub/.GIT/hooks/pre-commit",
        ".git./config",
        ".git /config",
        "GIT~1/config",
        "x/git~1/HEAD",
        ".g\u{200c}it/config",
    ] {
        rejects(
            vec![ok(), Entry::stored(name, b"x")],
            "git_component",
            Some(name),
        );
    }
}

#[test]
fn gitmodules_anywhere() {
    rejects(
        vec![Entry::stored("deep/er/.gitmodules", b"[submodule]")],
        "gitmodules",
        Some("deep/er/.gitmodules"),
    );
    rejects(
        vec![Entry::stored(".GitModules", b"x")],
        "gitmodules",
        Some(".GitModules"),
    );
}

// --- Entry kinds -------------------------------------------------------------------

#[test]
fn symlink() {
    let link = Entry {
        external_attrs: S_IFLNK << 16,
        ..Entry::stored("tokens.json", b"../../../../etc/passwd")
    };
    rejects(vec![ok(), link], "symlink", Some("tokens.json"));
}

#[test]
fn windows_reparse_point() {
    let junction = Entry {
        made_by: 10 << 8 | 20,
        external_attrs: 0x400 | 0x20,
        ..Entry::stored("link", b"C:\\Windows")
    };
    rejects(vec![junction], "symlink", Some("link"));
}

#[test]
fn fifo_is_not_a_regular_file() {
    let fifo = Entry {
        external_attrs: S_IFIFO << 16,
        ..Entry::stored("pipe", b"")
    };
    rejects(vec![fifo], "special_file", Some("pipe"));
}

#[test]
fn directory_attribute_on_a_file_name() {
    let odd = Entry {
        external_attrs: S_IFDIR << 16,
        ..Entry::stored("notadir", b"")
    };
    rejects(vec![odd], "type_mismatch", Some("notadir"));
}

#[test]
fn directory_with_content() {
    let dir = Entry {
        external_attrs: S_IFDIR << 16,
        ..Entry::stored("d/", b"hidden payload")
    };
    rejects(vec![dir], "type_mismatch", Some("d/"));
}

// --- Collisions --------------------------------------------------------------------

#[test]
fn duplicate_names() {
    rejects(
        vec![
            Entry::stored("a.txt", b"first"),
            ok(),
            Entry::stored("a.txt", b"second"),
        ],
        "duplicate",
        Some("a.txt"),
    );
}

#[test]
fn case_collision() {
    rejects(
        vec![
            Entry::stored("README.md", b"1"),
            Entry::stored("readme.MD", b"2"),
        ],
        "case_collision",
        Some("readme.MD"),
    );
    // Directories collide too: on a case-insensitive checkout these merge.
    rejects(
        vec![
            Entry::stored("Tokens/a", b"1"),
            Entry::stored("tokens/b", b"2"),
        ],
        "case_collision",
        Some("tokens/b"),
    );
}

#[test]
fn nfc_nfd_collision() {
    let nfc = "caf\u{e9}.css";
    let nfd = "cafe\u{301}.css";
    rejects(
        vec![Entry::stored(nfc, b"1"), Entry::stored(nfd, b"2")],
        "unicode_collision",
        Some(nfd),
    );
}

#[test]
fn file_shadowing_a_directory() {
    rejects(
        vec![Entry::stored("a", b"file"), Entry::stored("a/b", b"child")],
        "file_directory_conflict",
        Some("a/b"),
    );
    rejects(
        vec![Entry::stored("a/b", b"child"), Entry::stored("a", b"file")],
        "file_directory_conflict",
        Some("a"),
    );
}

// --- Unsupported features ---------------------------------------------------------------

#[test]
fn encrypted_flag() {
    let entry = Entry {
        flags: (1 << 11) | 1,
        ..Entry::stored("secret.txt", b"x")
    };
    rejects(vec![entry], "encrypted", Some("secret.txt"));
}

#[test]
fn aes_method_is_encryption() {
    let entry = Entry {
        method: 99,
        ..Entry::stored("aes.txt", b"x")
    };
    rejects(vec![entry], "encrypted", Some("aes.txt"));
}

#[test]
fn unsupported_method() {
    let entry = Entry {
        method: 12,
        ..Entry::stored("bzip2.txt", b"BZh9")
    };
    let err = open_bytes(&Archive::new(vec![entry]).bytes()).unwrap_err();
    assert!(err.to_string().contains("BZIP2"), "{err}");
    assert_rule(Err::<(), _>(err), "unsupported_method", Some("bzip2.txt"));
}

// --- Limits -----------------------------------------------------------------------

#[test]
fn too_many_entries() {
    let entries: Vec<Entry> = (0..5)
        .map(|i| Entry::stored(&format!("f{i}"), b"x"))
        .collect();
    let limits = ArchiveLimits {
        max_entries: 4,
        ..ArchiveLimits::default()
    };
    let bytes = Archive::new(entries).bytes();
    assert_rule(open_bytes_with(&bytes, &limits), "too_many_entries", None);
}

#[test]
fn entry_too_large() {
    let limits = ArchiveLimits {
        max_entry_bytes: 1000,
        ..ArchiveLimits::default()
    };
    let bytes = Archive::new(vec![ok(), Entry::deflated("big.txt", &[b'a'; 1001])]).bytes();
    assert_rule(
        open_bytes_with(&bytes, &limits),
        "entry_too_large",
        Some("big.txt"),
    );
}

#[test]
fn total_too_large() {
    let limits = ArchiveLimits {
        max_total_bytes: 2500,
        ..ArchiveLimits::default()
    };
    let entries = (0..3)
        .map(|i| Entry::deflated(&format!("f{i}"), &[b'a'; 1000]))
        .collect();
    let bytes = Archive::new(entries).bytes();
    assert_rule(
        open_bytes_with(&bytes, &limits),
        "total_too_large",
        Some("f2"),
    );
}

#[test]
fn bomb_with_high_ratio() {
    // 20 MiB of zeros deflates to about 20 KiB: a ratio near 1000.
    let bytes = Archive::new(vec![Entry::deflated("bomb.bin", &vec![0; 20 << 20])]).bytes();
    assert!(bytes.len() < 100_000);
    assert_rule(open_bytes(&bytes), "ratio", Some("bomb.bin"));
}

#[test]
fn small_files_are_exempt_from_the_ratio() {
    let bytes = Archive::new(vec![Entry::deflated("zeros.bin", &vec![0; 512 << 10])]).bytes();
    let export = open_bytes(&bytes).unwrap();
    assert_eq!(export.entries()[0].size, 512 << 10);
}

#[test]
fn bomb_lying_about_its_size_stops_at_the_declared_size() {
    // Declares 1 KiB (passes every declared-size limit), inflates to 64 MiB.
    let payload = vec![0; 64 << 20];
    let entry = Entry {
        uncompressed: 1024,
        crc: crc(&payload[..1024]),
        ..Entry::deflated("liar.bin", &payload)
    };
    let limits = ArchiveLimits {
        max_total_bytes: 1 << 20,
        ..ArchiveLimits::default()
    };
    let bytes = Archive::new(vec![entry]).bytes();
    assert_rule(
        open_bytes_with(&bytes, &limits),
        "size_mismatch",
        Some("liar.bin"),
    );
}

#[test]
fn declared_size_bomb() {
    let entry = Entry {
        uncompressed: 5 << 30,
        zip64: true,
        ..Entry::deflated("huge.bin", b"tiny")
    };
    let bytes = Archive {
        zip64_end: true,
        ..Archive::new(vec![entry])
    }
    .bytes();
    assert_rule(open_bytes(&bytes), "entry_too_large", Some("huge.bin"));
}

// --- Structure ----------------------------------------------------------------------

#[test]
fn overlapping_entries() {
    // The overlapping-file bomb: entry "b"'s local header and data lie inside entry
    // "a"'s data, so the same bytes are counted (and would be inflated) twice.
    let inner = Entry::stored("b", &[b'z'; 4096]);
    let mut nested = inner.local_header();
    nested.extend(&inner.data);
    let outer = Entry::stored("a", &nested);
    let hidden = Entry {
        write_local: false,
        central_offset: Some(30 + 1),
        ..inner
    };
    rejects(vec![outer, hidden], "overlap", Some("b"));
}

#[test]
fn two_records_one_local_header() {
    let a = Entry::deflated("a", &[b'q'; 10_000]);
    let alias = Entry {
        write_local: false,
        central_offset: Some(0),
        ..a.clone()
    };
    let alias = Entry {
        name: b"a2".to_vec(),
        ..alias
    };
    // The alias's own local header would have to say "a2"; it says "a".
    rejects(vec![a, alias], "local_header_mismatch", Some("a2"));
}

#[test]
fn local_name_differs_from_central_name() {
    let mut entry = Entry::stored("innocent.txt", b"x");
    entry.local.name = Some(b"../evil.sh".to_vec());
    rejects(vec![entry], "local_header_mismatch", Some("innocent.txt"));
}

#[test]
fn local_method_differs() {
    let mut entry = Entry::deflated("m.txt", b"some text some text");
    entry.local.method = Some(0);
    rejects(vec![entry], "local_header_mismatch", Some("m.txt"));
}

#[test]
fn local_sizes_differ_without_descriptor() {
    let mut entry = Entry::stored("s.txt", b"abc");
    entry.local.uncompressed = Some(2);
    rejects(vec![entry], "local_header_mismatch", Some("s.txt"));
}

#[test]
fn crc_mismatch() {
    let entry = Entry {
        crc: crc(b"other"),
        ..Entry::deflated("c.txt", b"content content content")
    };
    rejects(vec![ok(), entry], "crc", Some("c.txt"));
}

#[test]
fn stored_sizes_disagree() {
    let entry = Entry {
        compressed: 2,
        ..Entry::stored("s.bin", b"ab")
    };
    let entry = Entry {
        uncompressed: 3,
        ..entry
    };
    rejects(vec![entry], "size_mismatch", Some("s.bin"));
}

#[test]
fn deflate_shorter_than_declared() {
    // Declares one byte less than it inflates to: must not be accepted as a prefix.
    let data = b"0123456789".repeat(50);
    let entry = Entry {
        uncompressed: data.len() as u64 - 1,
        crc: crc(&data[..data.len() - 1]),
        ..Entry::deflated("short.txt", &data)
    };
    rejects(vec![entry], "size_mismatch", Some("short.txt"));
}

#[test]
fn truncated_deflate_stream() {
    // The compressed size stops before the deflate stream does.
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut entry = Entry::deflated("cut.bin", &data);
    entry.data.truncate(entry.data.len() / 2);
    entry.compressed = entry.data.len() as u64;
    rejects(vec![entry], "truncated", Some("cut.bin"));
}

#[test]
fn junk_after_deflate_stream() {
    let mut entry = Entry::deflated("tail.txt", b"hello hello hello");
    entry.data.extend(b"JUNK");
    entry.compressed = entry.data.len() as u64;
    rejects(vec![entry], "size_mismatch", Some("tail.txt"));
}

#[test]
fn corrupt_deflate_data() {
    let mut entry = Entry::deflated("bad.txt", b"hello");
    entry.data = vec![0xff; 16];
    entry.compressed = 16;
    rejects(vec![entry], "invalid_data", Some("bad.txt"));
}

#[test]
fn data_descriptor_lies() {
    let entry = Entry::deflated("dd.txt", &b"streamed ".repeat(100)).with_descriptor(true);
    let mut lying = entry.clone();
    if let Some(d) = lying.descriptor.as_mut() {
        d.uncompressed += 1;
    }
    rejects(vec![lying], "data_descriptor", Some("dd.txt"));
    // An honest one, with and without its signature, is fine.
    let unsigned = Entry::deflated("u.txt", b"x").with_descriptor(false);
    open_bytes(&Archive::new(vec![entry, unsigned]).bytes()).unwrap();
}

#[test]
fn data_descriptor_flag_disagrees() {
    let mut entry = Entry::deflated("f.txt", b"abc").with_descriptor(true);
    entry.local.flags = Some(1 << 11);
    rejects(vec![entry], "local_header_mismatch", Some("f.txt"));
}

#[test]
fn truncated_archive() {
    let bytes = Archive::new(vec![ok(), Entry::deflated("b.txt", &[1; 5000])]).bytes();
    assert_rule(open_bytes(&bytes[..bytes.len() - 30]), "truncated", None);
}

#[test]
fn not_a_zip() {
    assert_rule(
        open_bytes(b"this is a PDF, honest, and long enough"),
        "not_a_zip",
        None,
    );
    assert_rule(open_bytes(b""), "not_a_zip", None);
}

#[test]
fn entry_points_past_the_directory() {
    let entry = Entry {
        central_offset: Some(1 << 20),
        ..Entry::stored("far.txt", b"x")
    };
    rejects(vec![entry], "out_of_bounds", Some("far.txt"));
}

#[test]
fn data_runs_into_the_directory() {
    let entry = Entry {
        compressed: 500,
        uncompressed: 500,
        ..Entry::stored("long.bin", b"short")
    };
    rejects(vec![entry], "out_of_bounds", Some("long.bin"));
}

#[test]
fn central_directory_offset_out_of_range() {
    let archive = Archive {
        eocd_cd_offset: Some(0x7fff_0000),
        ..Archive::new(vec![ok()])
    };
    assert_rule(open_bytes(&archive.bytes()), "central_directory", None);
}

#[test]
fn prepended_data() {
    // `cat stub zip > sfx`: a self-extractor stub shifts everything, and the offsets
    // (relative to the original start) no longer add up.
    let mut bytes = b"MZ fake executable stub".to_vec();
    bytes.extend(Archive::new(vec![ok()]).bytes());
    assert_rule(open_bytes(&bytes), "central_directory", None);
}

#[test]
fn more_records_declared_than_present() {
    let archive = Archive {
        eocd_entries: Some(3),
        ..Archive::new(vec![ok(), Entry::stored("b", b"b")])
    };
    assert_rule(open_bytes(&archive.bytes()), "central_directory", None);
}

#[test]
fn fewer_records_declared_than_present() {
    // A reader that trusts the count would never see the second entry.
    let archive = Archive {
        eocd_entries: Some(1),
        ..Archive::new(vec![ok(), Entry::stored(".git/config", b"b")])
    };
    assert_rule(open_bytes(&archive.bytes()), "central_directory", None);
}

#[test]
fn trailing_data_after_end_record() {
    let archive = Archive {
        suffix: b"garbage".to_vec(),
        ..Archive::new(vec![ok()])
    };
    assert_rule(open_bytes(&archive.bytes()), "eocd", None);
}

#[test]
fn second_end_record_hidden_in_comment() {
    // A decoy end record inside the comment, pointing at a different directory: a
    // reader scanning from the back would pick it.
    let (real, layout) = Archive::new(vec![ok()]).build();
    let mut decoy = Vec::new();
    put32(&mut decoy, EOCD_SIG);
    put16(&mut decoy, 0);
    put16(&mut decoy, 0);
    put16(&mut decoy, 1);
    put16(&mut decoy, 1);
    put32(&mut decoy, (layout.eocd_offset - layout.cd_offset) as u32);
    put32(&mut decoy, 0);
    put16(&mut decoy, 0);
    let archive = Archive {
        comment: decoy,
        ..Archive::new(vec![ok()])
    };
    assert!(real.len() < archive.bytes().len());
    assert_rule(open_bytes(&archive.bytes()), "multiple_eocd", None);
}

#[test]
fn multi_disk() {
    let archive = Archive {
        eocd_disk: Some(1),
        ..Archive::new(vec![ok()])
    };
    assert_rule(open_bytes(&archive.bytes()), "multi_disk", None);
}

#[test]
fn bad_central_signature() {
    let (mut bytes, layout) = Archive::new(vec![ok(), Entry::stored("b", b"b")]).build();
    let at = layout.central_offsets[1] as usize;
    bytes[at..at + 4].copy_from_slice(&LOCAL_SIG.to_le_bytes());
    assert_rule(open_bytes(&bytes), "central_directory", None);
}

#[test]
fn local_header_signature_missing() {
    let (mut bytes, layout) = Archive::new(vec![ok(), Entry::stored("b", b"b")]).build();
    let at = layout.local_offsets[1] as usize;
    bytes[at..at + 4].copy_from_slice(&CENTRAL_SIG.to_le_bytes());
    assert_rule(open_bytes(&bytes), "local_header_mismatch", Some("b"));
}

// --- ZIP64 ------------------------------------------------------------------------

#[test]
fn zip64_sentinel_without_extra_field() {
    let mut entry = Entry::stored("z.txt", b"abc");
    entry.compressed = u64::from(u32::MAX);
    entry.uncompressed = u64::from(u32::MAX);
    rejects(vec![entry], "zip64", Some("z.txt"));
}

#[test]
fn local_zip64_field_missing_a_marked_size() {
    // Both sizes marked in the local header, one value in its ZIP64 field.
    let mut entry = Entry::stored("short.txt", b"abc");
    entry.local.compressed = Some(u32::MAX);
    entry.local.uncompressed = Some(u32::MAX);
    entry.local_extra = zip64_field(&[3]);
    rejects(vec![entry], "zip64", Some("short.txt"));
}

#[test]
fn zip64_extra_with_unmarked_values() {
    // The ZIP64 field offers a second, different size for an entry whose 32-bit size is
    // not marked: readers disagree on which one wins.
    let entry = Entry {
        central_extra: zip64_field(&[1 << 40]),
        ..Entry::stored("two-sizes.txt", b"abc")
    };
    rejects(vec![entry], "zip64", Some("two-sizes.txt"));
}

#[test]
fn zip64_end_record_disagrees() {
    let mut entries = vec![ok(), Entry::stored("b", b"b")];
    for e in &mut entries {
        e.zip64 = true;
    }
    let archive = Archive {
        zip64_end: true,
        zip64_entries: Some(1),
        eocd_entries: Some(2),
        ..Archive::new(entries)
    };
    assert_rule(open_bytes(&archive.bytes()), "zip64", None);
}

#[test]
fn zip64_locator_points_nowhere() {
    let entry = Entry {
        zip64: true,
        ..ok()
    };
    let (mut bytes, layout) = Archive {
        zip64_end: true,
        ..Archive::new(vec![entry])
    }
    .build();
    // The locator's record offset is the 8 bytes after its signature and disk number.
    let locator = layout.eocd_offset as usize - 20;
    bytes[locator + 8..locator + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_rule(open_bytes(&bytes), "zip64", None);
}

#[test]
fn malformed_extra_field() {
    let mut extra = Vec::new();
    put16(&mut extra, 0x5455);
    put16(&mut extra, 40);
    extra.extend([0; 5]);
    let entry = Entry {
        central_extra: extra,
        ..Entry::stored("x.txt", b"x")
    };
    rejects(vec![entry], "extra_field", Some("x.txt"));
}

// --- Policy -----------------------------------------------------------------------

#[test]
fn empty_archive_is_opened_but_can_be_refused() {
    let export = open_bytes(&Archive::new(vec![Entry::dir("only-a-dir/")]).bytes()).unwrap();
    assert!(export.is_empty());
    assert_rule(export.ensure_not_empty(), "empty", None);

    let none = open_bytes(&Archive::new(vec![]).bytes()).unwrap();
    assert!(none.is_empty());
    assert_rule(none.ensure_not_empty(), "empty", None);
}

#[test]
fn one_bad_entry_rejects_the_whole_archive() {
    let mut entries: Vec<Entry> = (0..50)
        .map(|i| Entry::deflated(&format!("good/{i}.txt"), format!("file {i}").as_bytes()))
        .collect();
    entries.insert(
        25,
        Entry {
            crc: 0xdead_beef,
            ..Entry::stored("good/bad.txt", b"x")
        },
    );
    rejects(entries, "crc", Some("good/bad.txt"));
}

#[test]
fn descriptor_with_real_values_in_local_header() {
    // Some writers set bit 3 yet still fill the local header: consistent, so accepted.
    let entry = Entry::stored("a", b"a");
    let manual = Entry {
        flags: entry.flags | (1 << 3),
        descriptor: Some(Descriptor {
            signature: true,
            wide: false,
            crc: crc(b"a"),
            compressed: 1,
            uncompressed: 1,
        }),
        ..entry
    };
    let export = open_bytes(&Archive::new(vec![manual]).bytes()).unwrap();
    assert_eq!(export.entries()[0].size, 1);
}

// --- Robustness -----------------------------------------------------------------------

/// Whatever the bytes, `open` either refuses the archive or returns an export whose
/// every entry streams back at its verified size. Never a panic, never a hang.
#[track_caller]
fn open_never_panics(bytes: &[u8]) {
    if let Ok(export) = open_bytes(bytes) {
        for (path, data) in support::read_all(&export) {
            assert_eq!(export.entry(&path).map(|e| e.size), Some(data.len() as u64));
        }
    }
}

fn sample_archive() -> Vec<u8> {
    let mut streamed = Entry::deflated("d/streamed.txt", &b"descriptor ".repeat(40));
    streamed = streamed.with_descriptor(true);
    let mut wide = Entry::deflated("z/wide.bin", &[9; 3000]);
    wide.zip64 = true;
    Archive {
        zip64_end: true,
        comment: b"comment".to_vec(),
        ..Archive::new(vec![
            Entry::dir("d/"),
            Entry::stored("d/a.txt", b"stored bytes"),
            Entry::deflated("d/b.txt", &b"deflated text ".repeat(100)),
            streamed,
            wide,
        ])
    }
    .bytes()
}

#[test]
fn every_truncation_is_refused_cleanly() {
    let bytes = sample_archive();
    open_bytes(&bytes).expect("the sample itself is valid");
    for len in 0..bytes.len() {
        assert!(
            open_bytes(&bytes[..len]).is_err(),
            "accepted a cut at {len}"
        );
    }
}

#[test]
fn random_byte_mutations_never_panic() {
    let bytes = sample_archive();
    let mut state = 0x853c_49e6_748f_ea9b_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut mutated = bytes.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % mutated.len() as u64) as usize;
            mutated[at] = match next() % 4 {
                0 => 0,
                1 => 0xff,
                _ => next() as u8,
            };
        }
        open_never_panics(&mutated);
    }
}
