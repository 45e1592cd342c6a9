//! Shared helpers for the archive tests.

#![allow(dead_code)]

pub mod zip_bytes;

use std::io::Read;
use std::path::{Path, PathBuf};

use courier_core::archive::{ArchiveError, ArchiveLimits, Export};

/// A temp dir holding one archive; the dir lets tests check nothing else appears in it.
pub struct ZipFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn write_zip(bytes: &[u8]) -> ZipFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.zip");
    std::fs::write(&path, bytes).unwrap();
    ZipFile { dir, path }
}

pub fn open_bytes(bytes: &[u8]) -> Result<Export, ArchiveError> {
    open_bytes_with(bytes, &ArchiveLimits::default())
}

pub fn open_bytes_with(bytes: &[u8], limits: &ArchiveLimits) -> Result<Export, ArchiveError> {
    let zip = write_zip(bytes);
    let export = Export::open(&zip.path, limits);
    assert_only_input(zip.dir.path());
    export
}

/// Every file with its streamed bytes, in the export's order.
pub fn read_all(export: &Export) -> Vec<(String, Vec<u8>)> {
    export
        .entries()
        .iter()
        .map(|entry| {
            let mut bytes = Vec::new();
            export
                .open_entry(entry)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            assert_eq!(bytes.len() as u64, entry.size, "{}", entry.path);
            (entry.path.to_string(), bytes)
        })
        .collect()
}

/// The directory holds the input archive and nothing else.
pub fn assert_only_input(dir: &Path) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        ["input.zip"],
        "something was written next to the input"
    );
}
