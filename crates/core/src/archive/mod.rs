//! Turning a downloaded result zip into a validated [`Export`] without writing any entry to disk.
//!
//! The archive is hostile input. [`Export::open`] reads the zip structure itself (end
//! records, central directory, local headers), applies every name, kind and limit rule,
//! then inflates every entry once, counting real bytes and checking sizes and CRCs, in
//! fixed-size buffers. The same pass hashes each file as git would
//! ([`ExportEntry::git_blob_id`]), so a delivery can skip the files a repository already
//! holds without inflating them again. Any fault rejects the whole archive with an
//! [`ArchiveError`] that names the entry and a stable [`Rule`] identifier. Nothing is
//! extracted: entries are streamed later with [`Export::open_entry`], which checks size
//! and CRC again.
//!
//! `Export::open` blocks (file reads, inflating on up to four threads); call it from
//! `spawn_blocking` in async code. Memory does not grow with the archive's bytes: the
//! data pass uses a few fixed buffers per thread. It grows with the central directory
//! (about 150 bytes plus twice the name per entry), which [`ArchiveLimits::max_entries`]
//! and [`ArchiveLimits::max_path_bytes`] bound.
//!
//! # Rules
//!
//! | rule id | refused |
//! | --- | --- |
//! | `parent_segment`, `empty_segment`, `absolute_path`, `drive_letter`, `unc_path`, `backslash`, `control_character`, `empty_path` | names that could escape or mean different things on different systems ([`RelPath`]) |
//! | `git_component`, `gitmodules` | `.git` in any spelling git itself guards against (`.GIT`, `.git.`, `GIT~1`, ...), `.gitmodules` anywhere |
//! | `non_utf8_name` | a name that is not valid UTF-8, flagged or not (see below) |
//! | `path_too_long` | a name longer than `max_path_bytes` |
//! | `symlink`, `special_file`, `type_mismatch` | symbolic links (unix mode, Windows reparse point), devices/FIFOs/sockets, directory attributes on a file name (or the reverse), directories with content |
//! | `duplicate`, `case_collision`, `unicode_collision`, `file_directory_conflict` | two entries that land on one file in a checkout on Windows or macOS |
//! | `encrypted`, `unsupported_method`, `multi_disk` | encryption of any kind, methods other than Stored and Deflate, split archives |
//! | `too_many_entries`, `entry_too_large`, `total_too_large`, `ratio` | the [`ArchiveLimits`], checked on declared sizes and again on inflated bytes |
//! | `not_a_zip`, `truncated`, `eocd`, `multiple_eocd`, `central_directory`, `zip64`, `extra_field` | a missing, ambiguous or inconsistent end record or directory (trailing or prepended data, a decoy end record in the comment, counts or offsets that do not add up, ZIP64 values that disagree) |
//! | `local_header_mismatch`, `out_of_bounds`, `overlap`, `data_descriptor` | local headers that disagree with the directory, entries pointing outside the entry area, entries sharing bytes (the overlapping-file zip bomb), data descriptors that lie |
//! | `size_mismatch`, `crc`, `invalid_data` | data that does not inflate to exactly the declared size and CRC-32 |
//! | `empty` | only from [`Export::ensure_not_empty`]: `open` accepts an archive without files |
//!
//! Names: with the UTF-8 flag a name must be valid UTF-8. Without it APPNOTE says CP437,
//! but Info-ZIP `zip` and macOS write UTF-8 without the flag, so a flagless name is
//! accepted when it is valid UTF-8 (ASCII always is, and reads the same in CP437); any
//! other flagless name is refused rather than decoded by guesswork.
//!
//! Only Stored and Deflate entries are supported. ZIP64 is supported when its fields
//! are consistent.

mod error;
mod limits;
mod names;
mod source;
mod stream;
mod structure;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;
use sha1::{Digest, Sha1};

pub use error::{ArchiveError, Rule};
pub use limits::ArchiveLimits;

use crate::paths::RelPath;
use names::Kind;
use stream::{EntryStream, Location, Method, Scratch};
use structure::{
    CentralReader, CentralRecord, FLAG_ENCRYPTED, FLAG_MASKED_HEADER, FLAG_PATCHED,
    FLAG_STRONG_ENCRYPTION, METHOD_AES, METHOD_DEFLATE, METHOD_STORED,
};

/// Input buffer of a stream opened with [`Export::open_entry`].
const READER_BUFFER: usize = 64 * 1024;
/// Buffers of the validation pass; larger ones amortise per-call overhead in zlib.
const VALIDATE_BUFFER: usize = 256 * 1024;
/// Below this much compressed data, threads cost more than they save. A thread costs
/// tens of microseconds; 1 MiB of compressed tokens inflates and hashes in a few
/// milliseconds. Measured on a 2,000-file export (5.3 MB, 20 MB inflated), validation
/// took 35 ms on one thread and 20-25 ms on two (it was single-threaded below 8 MiB).
const PARALLEL_THRESHOLD: u64 = 1 << 20;
const MAX_THREADS: usize = 4;

/// A validated result archive: its files, each with a normalised path and verified size.
///
/// The `Export` keeps the archive file open for its whole life and reads it by offset;
/// it never writes anything. The file belongs to the caller (typically a temp file from
/// the download step) and must outlive the delivery and stay unmodified: on Unix it may
/// be unlinked once opened. Should it change anyway, streaming fails with a size or CRC
/// rejection rather than handing out unverified bytes as complete.
///
/// An archive with no files is accepted by [`Export::open`]; whether that is acceptable
/// is the caller's decision per target (an empty export with `purge_directory` would
/// delete everything at the path), see [`Export::ensure_not_empty`].
pub struct Export {
    file: File,
    origin: String,
    entries: Vec<ExportEntry>,
    total_bytes: u64,
}

/// One file of an [`Export`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportEntry {
    /// The entry's name, validated and normalised.
    pub path: RelPath,
    /// The real uncompressed size, verified by inflating the entry.
    pub size: u64,
    loc: Location,
    blob_id: [u8; 20],
}

impl ExportEntry {
    /// The id git gives these bytes as a blob (SHA-1 of `blob <size>\0` and the bytes),
    /// computed while validation inflated the entry. A delivery skips the entries the
    /// repository already holds by this id, without inflating them a second time.
    pub fn git_blob_id(&self) -> [u8; 20] {
        self.blob_id
    }
}

/// A JSON-friendly overview of an export, for logs and pull-request descriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Number of files (directories are not counted: they produce nothing).
    pub files: u64,
    /// Sum of the files' uncompressed sizes.
    pub bytes: u64,
    /// Files directly at the top level.
    pub root_files: u64,
    /// Bytes of the files directly at the top level.
    pub root_bytes: u64,
    /// Each top-level directory with the files and bytes beneath it, sorted by name.
    pub directories: Vec<DirectorySummary>,
}

/// Files and bytes beneath one top-level directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectorySummary {
    pub name: String,
    pub files: u64,
    pub bytes: u64,
}

/// A central record that passed the name and limit rules, waiting for its data check.
/// The name is kept only as the `RelPath` (memory is per entry, so no second copy).
struct Pending {
    path: RelPath,
    kind: Kind,
    rec: CentralRecord,
}

impl Pending {
    /// The name as the archive spells it, for messages and the local header check.
    fn name(&self) -> String {
        names::entry_name(&self.path, self.kind)
    }
}

impl Export {
    /// Opens and fully validates the zip at `zip`. See the module docs for the rules.
    pub fn open(zip: &Path, limits: &ArchiveLimits) -> Result<Export, ArchiveError> {
        let origin = zip.display().to_string();
        let file = File::open(zip).map_err(|e| ArchiveError::io(origin.clone(), e))?;
        Export::validate(file, origin, limits)
    }

    /// Like [`Export::open`], for an already open file (e.g. an anonymous temp file).
    /// Reads are positional, so the file's cursor is irrelevant.
    pub fn from_file(file: File, limits: &ArchiveLimits) -> Result<Export, ArchiveError> {
        Export::validate(file, "<open file>".to_owned(), limits)
    }

    /// The files, sorted by path. Directories are not listed.
    pub fn entries(&self) -> &[ExportEntry] {
        &self.entries
    }

    /// The file at `path` (normalised, `/`-separated, no trailing `/`), if any.
    pub fn entry(&self, path: &str) -> Option<&ExportEntry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// True when the archive holds no files (it may still hold directories).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the files' verified sizes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Refuses an export without files (rule `empty`). For targets where an empty
    /// export would be destructive, e.g. with `purge_directory`.
    pub fn ensure_not_empty(&self) -> Result<(), ArchiveError> {
        if self.is_empty() {
            return Err(ArchiveError::rejected(
                None,
                Rule::Empty,
                "the archive holds no files",
            ));
        }
        Ok(())
    }

    /// Streams one entry's bytes, inflating as it goes and checking size and CRC again
    /// at the end; a failure surfaces as an `io::Error` wrapping the [`ArchiveError`]
    /// (kind `InvalidData`). Each reader reads the file by offset, so any number can be
    /// used at once, from any threads. `entry` must come from this export's
    /// [`entries`](Export::entries); another export's entry is refused with
    /// [`ArchiveError::NotInExport`] rather than read at offsets meant for another file.
    pub fn open_entry(&self, entry: &ExportEntry) -> Result<EntryReader<'_>, ArchiveError> {
        if self.entry(entry.path.as_str()) != Some(entry) {
            return Err(ArchiveError::NotInExport {
                entry: entry.path.to_string(),
            });
        }
        let input = match entry.loc.method {
            Method::Stored => 0,
            Method::Deflate => READER_BUFFER,
        };
        Ok(EntryReader {
            stream: EntryStream::new(
                &self.file,
                Cow::Owned(entry.path.as_str().to_owned()),
                entry.loc,
                Scratch::new(input),
            ),
        })
    }

    pub fn summary(&self) -> ExportSummary {
        let mut summary = ExportSummary {
            files: 0,
            bytes: 0,
            root_files: 0,
            root_bytes: 0,
            directories: Vec::new(),
        };
        let mut dirs: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for entry in &self.entries {
            summary.files += 1;
            summary.bytes += entry.size;
            let top = entry.path.first_component();
            if top.len() == entry.path.as_str().len() {
                summary.root_files += 1;
                summary.root_bytes += entry.size;
            } else {
                let slot = dirs.entry(top).or_default();
                slot.0 += 1;
                slot.1 += entry.size;
            }
        }
        summary.directories = dirs
            .into_iter()
            .map(|(name, (files, bytes))| DirectorySummary {
                name: name.to_owned(),
                files,
                bytes,
            })
            .collect();
        summary
    }

    fn validate(
        file: File,
        origin: String,
        limits: &ArchiveLimits,
    ) -> Result<Export, ArchiveError> {
        let len = file
            .metadata()
            .map_err(|e| ArchiveError::io(origin.clone(), e))?
            .len();
        let dir = structure::read_directory(&file, len)?;
        if dir.entries > limits.max_entries {
            return Err(ArchiveError::rejected(
                None,
                Rule::TooManyEntries,
                format!(
                    "the archive declares {} entries, the limit is {}",
                    dir.entries, limits.max_entries
                ),
            ));
        }
        let pending = read_central(&file, dir, limits)?;
        let located = locate(&file, pending, dir.offset)?;
        let blob_ids = verify_data(&file, &located, limits)?;

        let mut entries: Vec<ExportEntry> = located
            .into_iter()
            .zip(blob_ids)
            .filter(|((p, _), _)| p.kind == Kind::File)
            .map(|((p, loc), blob_id)| ExportEntry {
                path: p.path,
                size: loc.uncompressed,
                loc,
                blob_id,
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let total_bytes = entries.iter().map(|e| e.size).sum();
        Ok(Export {
            file,
            origin,
            entries,
            total_bytes,
        })
    }
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("origin", &self.origin)
            .field("files", &self.entries.len())
            .field("total_bytes", &self.total_bytes)
            .finish_non_exhaustive()
    }
}

/// A verifying reader of one entry, from [`Export::open_entry`].
pub struct EntryReader<'a> {
    stream: EntryStream<'a>,
}

impl io::Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf).map_err(io::Error::from)
    }
}

/// Reads the central directory, applying every rule that needs only the record.
fn read_central(
    file: &File,
    dir: structure::Directory,
    limits: &ArchiveLimits,
) -> Result<Vec<Pending>, ArchiveError> {
    let mut reader = CentralReader::new(file, dir);
    // The count was checked against the limit, and each record takes at least 46
    // bytes of a directory that fits in the file, so this allocation is bounded.
    let mut pending = Vec::with_capacity(dir.entries as usize);
    let mut declared_total: u64 = 0;
    while let Some(mut rec) = reader.next_record()? {
        let name = names::decode_name(&mut rec)?;
        let reject = |rule, detail: String| ArchiveError::rejected(Some(&name), rule, detail);
        if name.len() as u64 > limits.max_path_bytes {
            return Err(reject(
                Rule::PathTooLong,
                format!(
                    "name is {} bytes long, the limit is {}",
                    name.len(),
                    limits.max_path_bytes
                ),
            ));
        }
        let path =
            RelPath::parse(&name).map_err(|rule| reject((&rule).into(), rule.to_string()))?;
        if rec.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADER) != 0
            || rec.method == METHOD_AES
        {
            return Err(reject(Rule::Encrypted, "entry is encrypted".to_owned()));
        }
        if rec.flags & FLAG_PATCHED != 0 {
            return Err(reject(
                Rule::UnsupportedMethod,
                "entry uses compressed patched data".to_owned(),
            ));
        }
        let method = match rec.method {
            METHOD_STORED => Method::Stored,
            METHOD_DEFLATE => Method::Deflate,
            other => {
                return Err(reject(
                    Rule::UnsupportedMethod,
                    format!(
                        "compression method {other} ({}) is not supported; only Stored and Deflate are",
                        method_name(other)
                    ),
                ));
            }
        };
        let kind = names::entry_kind(&rec, &name)?;

        // Declared sizes are checked here so an honest oversized archive is refused
        // before any inflating; the stream later refuses to produce more than declared.
        if kind == Kind::Directory && rec.uncompressed != 0 {
            return Err(reject(
                Rule::TypeMismatch,
                format!(
                    "directory entry declares {} bytes of content",
                    rec.uncompressed
                ),
            ));
        }
        if method == Method::Stored && rec.compressed != rec.uncompressed {
            return Err(reject(
                Rule::SizeMismatch,
                format!(
                    "stored entry declares {} bytes but occupies {}",
                    rec.uncompressed, rec.compressed
                ),
            ));
        }
        if rec.uncompressed > limits.max_entry_bytes {
            return Err(reject(
                Rule::EntryTooLarge,
                format!(
                    "entry declares {} bytes, the limit is {}",
                    rec.uncompressed, limits.max_entry_bytes
                ),
            ));
        }
        declared_total = declared_total.saturating_add(rec.uncompressed);
        if declared_total > limits.max_total_bytes {
            return Err(reject(
                Rule::TotalTooLarge,
                format!(
                    "entries declare more than {} bytes in total, the limit",
                    limits.max_total_bytes
                ),
            ));
        }
        if exceeds_ratio(rec.uncompressed, rec.compressed, limits) {
            return Err(reject(
                Rule::Ratio,
                format!(
                    "entry declares {} bytes from {} compressed, above the ratio limit of {}",
                    rec.uncompressed, rec.compressed, limits.max_compression_ratio
                ),
            ));
        }
        pending.push(Pending { path, kind, rec });
    }
    names::check_collisions(pending.iter().map(|p| (&p.path, p.kind)))?;
    Ok(pending)
}

fn method_name(method: u16) -> &'static str {
    match method {
        1 => "Shrink",
        6 => "Implode",
        9 => "Deflate64",
        12 => "BZIP2",
        14 => "LZMA",
        93 => "Zstandard",
        95 => "XZ",
        _ => "unknown",
    }
}

fn exceeds_ratio(uncompressed: u64, compressed: u64, limits: &ArchiveLimits) -> bool {
    uncompressed > limits.ratio_exempt_bytes
        && uncompressed
            > compressed
                .max(1)
                .saturating_mul(limits.max_compression_ratio)
}

/// Checks every local header and data descriptor and refuses entries whose bytes
/// overlap (the overlapping-file zip bomb) or leave the entry area before `cd_offset`.
/// Returns the entries in file order, which is the cheapest order to inflate them in.
fn locate(
    file: &File,
    mut pending: Vec<Pending>,
    cd_offset: u64,
) -> Result<Vec<(Pending, Location)>, ArchiveError> {
    pending.sort_by_key(|p| p.rec.local_offset);
    let mut out: Vec<(Pending, Location)> = Vec::with_capacity(pending.len());
    let mut prev_end: Option<(u64, usize)> = None;
    for p in pending {
        let name = p.name();
        let span = structure::check_local(file, &p.rec, &name, cd_offset)?;
        if let Some((end, prev)) = prev_end
            && p.rec.local_offset < end
        {
            return Err(ArchiveError::rejected(
                Some(&name),
                Rule::Overlap,
                format!(
                    "its bytes (from offset {}) overlap those of entry {:?} (up to offset {end})",
                    p.rec.local_offset,
                    out[prev].0.name()
                ),
            ));
        }
        prev_end = Some((span.end, out.len()));
        let loc = Location {
            data_start: span.data_start,
            compressed: p.rec.compressed,
            uncompressed: p.rec.uncompressed,
            crc: p.rec.crc,
            method: if p.rec.method == METHOD_STORED {
                Method::Stored
            } else {
                Method::Deflate
            },
        };
        out.push((p, loc));
    }
    Ok(out)
}

/// Inflates every entry once, counting real bytes against the limits and checking
/// sizes and CRCs, and returns each entry's git blob id (in `entries`' order). Memory
/// is a few fixed buffers per thread, whatever the archive's size.
fn verify_data(
    file: &File,
    entries: &[(Pending, Location)],
    limits: &ArchiveLimits,
) -> Result<Vec<[u8; 20]>, ArchiveError> {
    let compressed: u64 = entries.iter().map(|(_, loc)| loc.compressed).sum();
    let threads = if compressed < PARALLEL_THRESHOLD {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS)
            .min(entries.len().max(1))
    };
    let shared = Shared {
        file,
        entries,
        limits,
        next: AtomicUsize::new(0),
        total: AtomicU64::new(0),
        abort: AtomicBool::new(false),
    };
    let results: Vec<WorkerResult> = if threads == 1 {
        vec![shared.work()]
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| shared.work()))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut ids = vec![[0u8; 20]; entries.len()];
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(done) => done.into_iter().for_each(|(index, id)| ids[index] = id),
            Err(failure) => failures.push(failure),
        }
    }
    // With several threads more than one fault may be found; report the one earliest
    // in the file so that the message is as stable as it can be.
    failures.sort_by_key(|(index, _)| *index);
    match failures.into_iter().next() {
        Some((_, err)) => Err(err),
        None => Ok(ids),
    }
}

/// One validation thread's outcome: the blob id of each entry it verified, or the
/// first fault it found; both by index into the entries.
type WorkerResult = Result<Vec<(usize, [u8; 20])>, (usize, ArchiveError)>;

struct Shared<'a> {
    file: &'a File,
    entries: &'a [(Pending, Location)],
    limits: &'a ArchiveLimits,
    next: AtomicUsize,
    total: AtomicU64,
    abort: AtomicBool,
}

impl Shared<'_> {
    /// Takes entries one at a time until none are left or another worker failed;
    /// returns the blob id of each entry it verified.
    fn work(&self) -> WorkerResult {
        let mut scratch = Scratch::new(VALIDATE_BUFFER);
        let mut out = vec![0u8; VALIDATE_BUFFER];
        let mut ids = Vec::new();
        loop {
            if self.abort.load(Ordering::Relaxed) {
                return Ok(ids);
            }
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some((pending, loc)) = self.entries.get(index) else {
                return Ok(ids);
            };
            match self.verify_one(pending, loc, scratch, &mut out) {
                Ok(Some((back, id))) => {
                    scratch = back;
                    ids.push((index, id));
                }
                Ok(None) => return Ok(ids),
                Err(err) => {
                    self.abort.store(true, Ordering::Relaxed);
                    return Err((index, err));
                }
            }
        }
    }

    /// Inflates one entry and hashes it as a git blob; `Ok(None)` when another worker
    /// asked everyone to stop.
    fn verify_one(
        &self,
        pending: &Pending,
        loc: &Location,
        scratch: Scratch,
        out: &mut [u8],
    ) -> Result<Option<(Scratch, [u8; 20])>, ArchiveError> {
        let limits = self.limits;
        let name = pending.name();
        let reject = |rule, detail: String| ArchiveError::rejected(Some(&name), rule, detail);
        let mut stream = EntryStream::new(self.file, Cow::Borrowed(&name), *loc, scratch);
        // The declared size: the stream fails unless exactly that many bytes come out.
        let mut blob = Sha1::new();
        blob.update(format!("blob {}\0", loc.uncompressed).as_bytes());
        loop {
            let n = stream.read(out)?;
            if n == 0 {
                return Ok(Some((stream.into_scratch(), blob.finalize().into())));
            }
            blob.update(&out[..n]);
            let n = n as u64;
            let produced = stream.produced();
            if produced > limits.max_entry_bytes {
                return Err(reject(
                    Rule::EntryTooLarge,
                    format!(
                        "entry inflates past the limit of {} bytes",
                        limits.max_entry_bytes
                    ),
                ));
            }
            let total = self.total.fetch_add(n, Ordering::Relaxed) + n;
            if total > limits.max_total_bytes {
                return Err(reject(
                    Rule::TotalTooLarge,
                    format!(
                        "entries inflate past the limit of {} bytes in total",
                        limits.max_total_bytes
                    ),
                ));
            }
            if exceeds_ratio(produced, loc.compressed, limits) {
                return Err(reject(
                    Rule::Ratio,
                    format!(
                        "entry inflates to more than {} times its {} compressed bytes",
                        limits.max_compression_ratio, loc.compressed
                    ),
                ));
            }
            if self.abort.load(Ordering::Relaxed) {
                return Ok(None);
            }
        }
    }
}
