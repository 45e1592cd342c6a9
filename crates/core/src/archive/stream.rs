//! Inflating one entry with its size and CRC checked: the same code runs for
//! validation and for every later read, so what a caller streams is exactly what was
//! validated (or an error, if the file changed underneath).

use std::borrow::Cow;
use std::fs::File;

use flate2::{Decompress, FlushDecompress, Status};

use super::error::{ArchiveError, Rule};
use super::source::read_exact_at;

/// How an entry's bytes are stored; only these two are supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Stored,
    Deflate,
}

/// Everything needed to read an entry back, fixed at validation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub data_start: u64,
    pub compressed: u64,
    pub uncompressed: u64,
    pub crc: u32,
    pub method: Method,
}

/// The reusable, allocation-heavy part of a stream: an inflater (made on first use, so
/// Stored entries never pay for one) and an input buffer.
pub(crate) struct Scratch {
    inflate: Option<Box<Decompress>>,
    input: Box<[u8]>,
}

impl Scratch {
    pub(crate) fn new(input_len: usize) -> Self {
        Scratch {
            inflate: None,
            input: vec![0; input_len].into_boxed_slice(),
        }
    }
}

/// A pull-based, verifying reader of one entry.
pub(crate) struct EntryStream<'a> {
    file: &'a File,
    name: Cow<'a, str>,
    loc: Location,
    scratch: Scratch,
    /// Next compressed byte to read from the file.
    next: u64,
    /// Compressed bytes not yet read from the file.
    unread: u64,
    in_start: usize,
    in_end: usize,
    produced: u64,
    crc: crc32fast::Hasher,
    done: bool,
    /// A rejection, repeated by every later read: after one the position is
    /// meaningless, so reading on must not look like progress.
    failed: Option<(Rule, String)>,
}

impl<'a> EntryStream<'a> {
    pub(crate) fn new(
        file: &'a File,
        name: Cow<'a, str>,
        loc: Location,
        mut scratch: Scratch,
    ) -> Self {
        if let Some(inflate) = scratch.inflate.as_mut() {
            inflate.reset(false);
        }
        EntryStream {
            file,
            name,
            loc,
            scratch,
            next: loc.data_start,
            unread: loc.compressed,
            in_start: 0,
            in_end: 0,
            produced: 0,
            crc: crc32fast::Hasher::new(),
            done: false,
            failed: None,
        }
    }

    pub(crate) fn into_scratch(self) -> Scratch {
        self.scratch
    }

    fn reject(&self, rule: Rule, detail: String) -> ArchiveError {
        ArchiveError::rejected(Some(&self.name), rule, detail)
    }

    /// How many compressed bytes the next file read takes.
    fn chunk_len(&self, buf_len: usize) -> usize {
        usize::try_from(self.unread)
            .unwrap_or(usize::MAX)
            .min(buf_len)
    }

    /// Fills `out` with the next verified bytes; `Ok(0)` only at the verified end.
    pub(crate) fn read(&mut self, out: &mut [u8]) -> Result<usize, ArchiveError> {
        if let Some((rule, detail)) = &self.failed {
            return Err(self.reject(*rule, detail.clone()));
        }
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let result = match self.loc.method {
            Method::Stored => self.read_stored(out),
            Method::Deflate => self.read_deflate(out),
        };
        // I/O errors are not recorded: they leave the position untouched, so a retry
        // is sound.
        if let Err(ArchiveError::Rejected { rule, detail, .. }) = &result {
            self.failed = Some((*rule, detail.clone()));
        }
        result
    }

    fn read_stored(&mut self, out: &mut [u8]) -> Result<usize, ArchiveError> {
        let n = self.chunk_len(out.len());
        if n == 0 {
            self.finish()?;
            return Ok(0);
        }
        read_exact_at(self.file, &mut out[..n], self.next).map_err(|e| self.io_error(e))?;
        self.next += n as u64;
        self.unread -= n as u64;
        self.account(&out[..n])?;
        if self.unread == 0 {
            self.finish()?;
        }
        Ok(n)
    }

    fn read_deflate(&mut self, out: &mut [u8]) -> Result<usize, ArchiveError> {
        loop {
            if self.in_start == self.in_end && self.unread > 0 {
                let n = self.chunk_len(self.scratch.input.len());
                read_exact_at(self.file, &mut self.scratch.input[..n], self.next)
                    .map_err(|e| self.io_error(e))?;
                self.next += n as u64;
                self.unread -= n as u64;
                self.in_start = 0;
                self.in_end = n;
            }
            let inflate = self
                .scratch
                .inflate
                .get_or_insert_with(|| Box::new(Decompress::new(false)));
            let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
            let status = inflate
                .decompress(
                    &self.scratch.input[self.in_start..self.in_end],
                    out,
                    FlushDecompress::None,
                )
                .map_err(|e| {
                    ArchiveError::rejected(
                        Some(&self.name),
                        Rule::InvalidData,
                        format!("corrupt deflate data: {e}"),
                    )
                })?;
            let consumed = (inflate.total_in() - in_before) as usize;
            let produced = (inflate.total_out() - out_before) as usize;
            self.in_start += consumed;
            self.account(&out[..produced])?;
            let input_left = self.in_start < self.in_end || self.unread > 0;
            if status == Status::StreamEnd {
                if input_left {
                    return Err(self.reject(
                        Rule::SizeMismatch,
                        format!(
                            "deflate stream ends before the {} compressed bytes the central \
                             directory declares",
                            self.loc.compressed
                        ),
                    ));
                }
                self.finish()?;
                return Ok(produced);
            }
            if produced > 0 {
                return Ok(produced);
            }
            if !input_left {
                return Err(self.reject(
                    Rule::Truncated,
                    format!(
                        "deflate stream is cut short: it does not end within its {} compressed \
                         bytes",
                        self.loc.compressed
                    ),
                ));
            }
            if consumed == 0 {
                // Input available, room for output, and still no progress: zlib only
                // does this on a stream it cannot make sense of.
                return Err(self.reject(
                    Rule::InvalidData,
                    "deflate stream makes no progress".to_owned(),
                ));
            }
        }
    }

    /// Counts and hashes freshly produced bytes, refusing to go past the declared size.
    fn account(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.produced += bytes.len() as u64;
        if self.produced > self.loc.uncompressed {
            return Err(self.reject(
                Rule::SizeMismatch,
                format!(
                    "inflates to more than the {} bytes the central directory declares",
                    self.loc.uncompressed
                ),
            ));
        }
        self.crc.update(bytes);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ArchiveError> {
        self.done = true;
        if self.produced != self.loc.uncompressed {
            return Err(self.reject(
                Rule::SizeMismatch,
                format!(
                    "holds {} bytes but the central directory declares {}",
                    self.produced, self.loc.uncompressed
                ),
            ));
        }
        let actual = self.crc.clone().finalize();
        if actual != self.loc.crc {
            return Err(self.reject(
                Rule::Crc,
                format!(
                    "CRC-32 of the data is {actual:08x}, the archive declares {:08x}",
                    self.loc.crc
                ),
            ));
        }
        Ok(())
    }

    fn io_error(&self, e: std::io::Error) -> ArchiveError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            // Offsets were checked against the file length at validation, so this means
            // the file shrank since.
            return self.reject(
                Rule::Truncated,
                "the archive file ends inside this entry's data".to_owned(),
            );
        }
        ArchiveError::io(format!("entry {:?}", self.name), e)
    }

    pub(crate) fn produced(&self) -> u64 {
        self.produced
    }
}
