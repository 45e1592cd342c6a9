//! An export's new blobs, written to the cache as one pack instead of one loose file each.
//!
//! A loose object is a file of its own: for a fresh export of 2,000 files, creating them
//! (and the directory locking of two writer threads in the same `objects/xx/`) was most
//! of the tree build, and the push read each one back. Here every writer thread appends
//! pack entries to one unnamed temporary file (a [`Spool`]); once all are done, the
//! spools are streamed behind a pack header into libgit2's pack writer, which indexes
//! the pack and moves it into `objects/pack/` only once it is complete, so an export
//! refused while its blobs are written (a short entry, a cancel) leaves no object behind.
//!
//! Entries are compressed for speed: the cache is scratch space, and the push builds its
//! own pack from the objects' contents.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use git2::{Odb, Oid};
use sha1::{Digest, Sha1};

/// The pack entry type of a blob.
const OBJ_BLOB: u8 = 3;

/// Pack entries written by one thread, in an unnamed temporary file next to the
/// objects (gone with the process, whatever happens to it).
pub(crate) struct Spool {
    file: File,
    count: u32,
}

/// Blob ids some spool of this build already holds: an export may hold the same bytes
/// under several names, and a pack holds each object once.
#[derive(Default)]
pub(crate) struct Claimed(Mutex<HashSet<Oid>>);

impl Claimed {
    /// True for the first caller with `oid`.
    fn claim(&self, oid: Oid) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(oid)
    }
}

/// What became of one blob.
#[derive(Debug)]
pub(crate) enum Added {
    /// Spooled: the pack will hold it.
    New(Oid),
    /// The cache or another spool already holds it: nothing written.
    Known(Oid),
}

/// Why a streamed blob was not spooled.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// Reading the export entry failed.
    Read(io::Error),
    /// The entry held this many bytes, not the size the archive gave.
    Length(u64),
    /// Writing the spool failed.
    Write(io::Error),
}

impl Added {
    pub(crate) fn oid(&self) -> Oid {
        match self {
            Added::New(oid) | Added::Known(oid) => *oid,
        }
    }
}

impl Spool {
    pub(crate) fn new(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile_in(dir)?,
            count: 0,
        })
    }

    /// Adds `bytes` as a blob unless the object database or another spool has it.
    pub(crate) fn add(
        &mut self,
        odb: &Odb<'_>,
        claimed: &Claimed,
        bytes: &[u8],
    ) -> io::Result<Added> {
        let mut hasher = blob_hasher(bytes.len() as u64);
        hasher.update(bytes);
        let oid = finish(hasher);
        if known(odb, oid) || !claimed.claim(oid) {
            return Ok(Added::Known(oid));
        }
        self.write_header(bytes.len() as u64)?;
        let mut encoder = ZlibEncoder::new(&mut self.file, Compression::fast());
        encoder.write_all(bytes)?;
        encoder.finish()?;
        self.count += 1;
        Ok(Added::New(oid))
    }

    /// Adds exactly `size` bytes read from `reader`, hashing while compressing (a large
    /// file is read once); the entry is taken back if the blob turns out to be known or
    /// the reader held another number of bytes.
    pub(crate) fn add_stream(
        &mut self,
        odb: &Odb<'_>,
        claimed: &Claimed,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<Added, StreamError> {
        let start = self.file.stream_position().map_err(StreamError::Write)?;
        let copied = self.spool_stream(size, reader);
        let oid = match copied {
            Ok((copied, oid)) if copied == size => oid,
            Ok((copied, _)) => {
                self.rewind(start).map_err(StreamError::Write)?;
                return Err(StreamError::Length(copied));
            }
            Err(err) => {
                self.rewind(start).map_err(StreamError::Write)?;
                return Err(err);
            }
        };
        if known(odb, oid) || !claimed.claim(oid) {
            self.rewind(start).map_err(StreamError::Write)?;
            return Ok(Added::Known(oid));
        }
        self.count += 1;
        Ok(Added::New(oid))
    }

    /// Writes the entry; returns how many bytes the reader held (one past `size` is
    /// read, so a longer entry is caught) and their blob id.
    fn spool_stream(
        &mut self,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(u64, Oid), StreamError> {
        self.write_header(size).map_err(StreamError::Write)?;
        let mut hasher = blob_hasher(size);
        let mut encoder = ZlibEncoder::new(&mut self.file, Compression::fast());
        let mut buf = vec![0u8; 64 * 1024];
        let mut copied = 0u64;
        let mut limited = reader.take(size + 1);
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StreamError::Read(e)),
            };
            hasher.update(&buf[..n]);
            encoder.write_all(&buf[..n]).map_err(StreamError::Write)?;
            copied += n as u64;
        }
        encoder.finish().map_err(StreamError::Write)?;
        Ok((copied, finish(hasher)))
    }

    fn rewind(&mut self, to: u64) -> io::Result<()> {
        self.file.set_len(to)?;
        self.file.seek(SeekFrom::Start(to)).map(drop)
    }

    /// A pack entry header: the type and the size, 4 bits then 7 bits a byte.
    fn write_header(&mut self, size: u64) -> io::Result<()> {
        let mut header = Vec::with_capacity(10);
        let mut byte = (OBJ_BLOB << 4) | (size & 0x0f) as u8;
        let mut rest = size >> 4;
        while rest != 0 {
            header.push(byte | 0x80);
            byte = (rest & 0x7f) as u8;
            rest >>= 7;
        }
        header.push(byte);
        self.file.write_all(&header)
    }
}

/// Whether the cache holds `oid`, without libgit2 rereading `objects/pack/` on every
/// miss (most blobs of a fresh export are misses). The handle is opened or refreshed
/// after the fetch, so a miss is real; at worst a blob is stored twice.
fn known(odb: &Odb<'_>, oid: Oid) -> bool {
    odb.exists_ext(oid, git2::OdbLookupFlags::NO_REFRESH)
}

/// The SHA-1 of a blob, started on git's object header.
fn blob_hasher(size: u64) -> Sha1 {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {size}\0").as_bytes());
    hasher
}

fn finish(hasher: Sha1) -> Oid {
    Oid::from_bytes(&hasher.finalize()).expect("a SHA-1 is 20 bytes")
}

/// Writes the spooled entries into `odb` as one pack (none if no spool holds any).
/// Returns how many objects it holds.
pub(crate) fn commit(odb: &Odb<'_>, spools: Vec<Spool>) -> Result<u32, git2::Error> {
    let count: u32 = spools.iter().map(|s| s.count).sum();
    if count == 0 {
        return Ok(0);
    }
    let io_err = |e: io::Error| git2::Error::from_str(&format!("writing the export's pack: {e}"));
    let mut writer = odb.packwriter()?;
    let mut out = Hashing {
        inner: &mut writer,
        hasher: Sha1::new(),
    };
    let mut header = Vec::with_capacity(12);
    header.extend_from_slice(b"PACK");
    header.extend_from_slice(&2u32.to_be_bytes());
    header.extend_from_slice(&count.to_be_bytes());
    out.write_all(&header).map_err(io_err)?;
    for mut spool in spools {
        spool.file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        io::copy(&mut spool.file, &mut out).map_err(io_err)?;
    }
    let trailer = out.hasher.finalize();
    writer.write_all(&trailer).map_err(io_err)?;
    writer.commit()?;
    odb.refresh()?;
    Ok(count)
}

/// A writer that also hashes what goes through it (the pack's trailing checksum).
struct Hashing<'a, W: Write> {
    inner: &'a mut W,
    hasher: Sha1,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{ObjectType, Repository};

    fn bare() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        (dir, repo)
    }

    #[test]
    fn spooled_blobs_land_as_one_pack_git_reads() {
        let (dir, repo) = bare();
        let odb = repo.odb().unwrap();
        let claimed = Claimed::default();
        let known = odb.write(ObjectType::Blob, b"already here\n").unwrap();
        let mut first = Spool::new(dir.path()).unwrap();
        let mut second = Spool::new(dir.path()).unwrap();
        // Sizes on both sides of the 4-bit and 7-bit steps of the entry header.
        // (13 and 1,200,009 bytes: each size's low 4 bits go in the first header byte.)
        let mut big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        big.extend_from_slice(b"012345678");
        let small = first.add(&odb, &claimed, b"hello, world\n").unwrap();
        let empty = second.add(&odb, &claimed, b"").unwrap();
        let streamed = second
            .add_stream(&odb, &claimed, big.len() as u64, &mut &big[..])
            .unwrap();
        assert!(matches!(small, Added::New(_)) && matches!(streamed, Added::New(_)));
        assert!(
            matches!(first.add(&odb, &claimed, b"already here\n").unwrap(), Added::Known(oid) if oid == known)
        );
        // The same bytes twice in one build: written once.
        assert!(matches!(
            second.add(&odb, &claimed, b"hello, world\n").unwrap(),
            Added::Known(_)
        ));
        let again = first
            .add_stream(&odb, &claimed, big.len() as u64, &mut &big[..])
            .unwrap();
        assert!(matches!(again, Added::Known(oid) if oid == streamed.oid()));

        assert_eq!(commit(&odb, vec![first, second]).unwrap(), 3);
        for (added, bytes) in [
            (&small, &b"hello, world\n"[..]),
            (&empty, &b""[..]),
            (&streamed, &big[..]),
        ] {
            assert_eq!(
                added.oid(),
                Oid::hash_object(ObjectType::Blob, bytes).unwrap()
            );
            let object = odb.read(added.oid()).unwrap();
            assert_eq!(object.data(), bytes);
        }
        let packs: Vec<_> = std::fs::read_dir(dir.path().join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pack"))
            .collect();
        assert_eq!(packs.len(), 1);
        // git itself checks the pack's entries and trailer.
        let out = std::process::Command::new("git")
            .arg("verify-pack")
            .arg("-v")
            .arg(&packs[0])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        assert_eq!(listing.matches(" blob ").count(), 3, "{listing}");
    }

    #[test]
    fn a_stream_of_the_wrong_length_is_taken_back() {
        let (dir, repo) = bare();
        let odb = repo.odb().unwrap();
        let claimed = Claimed::default();
        let mut spool = Spool::new(dir.path()).unwrap();
        let short = spool.add_stream(&odb, &claimed, 10, &mut &b"short"[..]);
        assert!(matches!(short, Err(StreamError::Length(5))), "{short:?}");
        let long = spool.add_stream(&odb, &claimed, 2, &mut &b"longer"[..]);
        assert!(matches!(long, Err(StreamError::Length(3))), "{long:?}");
        assert_eq!(spool.file.stream_position().unwrap(), 0);
        // Nothing spooled: no pack at all.
        assert_eq!(commit(&odb, vec![spool]).unwrap(), 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("objects/pack"))
                .unwrap()
                .count(),
            0
        );
    }
}
