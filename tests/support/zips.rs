//! Result archives for tests, built in memory from `(path, bytes)` lists.

use std::io::{Cursor, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;

/// A zip holding `files` in the given order, deflated, each entry a regular file
/// (mode 0644, so that `unzip` extracts what Courier writes: non-executable files).
/// A path ending in `/` becomes a directory entry.
pub fn zip_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (path, bytes) in files {
        if let Some(dir) = path.strip_suffix('/') {
            writer
                .add_directory(dir, options.unix_permissions(0o755))
                .expect("zip directory entry");
        } else {
            writer.start_file(*path, options).expect("zip file entry");
            writer.write_all(bytes).expect("zip entry bytes");
        }
    }
    writer.finish().expect("finish zip").into_inner()
}

/// Writes [`zip_bytes`]`(files)` to `path`.
pub fn write_zip(path: &Path, files: &[(&str, &[u8])]) {
    std::fs::write(path, zip_bytes(files)).expect("write zip");
}
