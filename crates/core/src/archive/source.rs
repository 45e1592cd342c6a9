//! Positional reads from the archive file.
//!
//! Every read names its offset, so one `File` serves any number of threads at once
//! without a shared cursor, and nothing ever seeks.

use std::fs::File;
use std::io;

/// Fills `buf` from `offset`; a short file is `UnexpectedEof`.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fills `buf` from `offset`; a short file is `UnexpectedEof`.
#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    // `seek_read` moves the handle's cursor, which is harmless here: no code in this
    // module reads through the cursor.
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A `Read` over `[pos, end)` of the file, for parsing the central directory through a
/// `BufReader` instead of loading it whole.
pub(crate) struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl<'a> RangeReader<'a> {
    pub(crate) fn new(file: &'a File, start: u64, end: u64) -> Self {
        RangeReader {
            file,
            pos: start,
            end,
        }
    }
}

impl io::Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        read_exact_at(self.file, &mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Little-endian field access over a byte slice that never panics: reading past the
/// end yields `None`, which callers turn into a rejection.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.bytes(2)
            .map(|b| u16::from_le_bytes(b.try_into().expect("2 bytes")))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.bytes(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}
