//! A raw zip writer for tests: every header field can be set to a lie, and the layout
//! of what was written is returned so a test can patch bytes at known offsets.
//!
//! Defaults produce an ordinary, valid archive; each test changes exactly the fields its
//! attack needs.

#![allow(dead_code)]

use std::io::Write;

pub const LOCAL_SIG: u32 = 0x0403_4b50;
pub const CENTRAL_SIG: u32 = 0x0201_4b50;
pub const EOCD_SIG: u32 = 0x0605_4b50;
pub const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
pub const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
pub const DESCRIPTOR_SIG: u32 = 0x0807_4b50;

pub const UNIX: u16 = 3 << 8 | 20;
pub const S_IFREG: u32 = 0o100_644;
pub const S_IFDIR: u32 = 0o040_755;
pub const S_IFLNK: u32 = 0o120_777;
pub const S_IFIFO: u32 = 0o010_644;

pub fn crc(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Raw deflate (no zlib header), as zip stores it.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// What the local header says, when it differs from the central record.
#[derive(Clone, Debug, Default)]
pub struct LocalOverrides {
    pub name: Option<Vec<u8>>,
    pub flags: Option<u16>,
    pub method: Option<u16>,
    pub crc: Option<u32>,
    pub compressed: Option<u32>,
    pub uncompressed: Option<u32>,
}

/// A data descriptor written after the entry's data.
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub signature: bool,
    pub wide: bool,
    pub crc: u32,
    pub compressed: u64,
    pub uncompressed: u64,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    /// The bytes written after the local header (already compressed for Deflate).
    pub data: Vec<u8>,
    pub method: u16,
    pub flags: u16,
    pub crc: u32,
    pub compressed: u64,
    pub uncompressed: u64,
    pub made_by: u16,
    pub external_attrs: u32,
    pub central_extra: Vec<u8>,
    pub local_extra: Vec<u8>,
    pub local: LocalOverrides,
    pub descriptor: Option<Descriptor>,
    /// Write sizes and offset as ZIP64 (sentinels plus a ZIP64 extra field) in the
    /// central record and local header.
    pub zip64: bool,
    /// Skip the local header and data: the central record points at `central_offset`.
    pub write_local: bool,
    /// The local header offset the central record states, instead of the real one.
    pub central_offset: Option<u64>,
}

impl Entry {
    pub fn stored(name: &str, data: &[u8]) -> Entry {
        Entry::stored_raw(name.as_bytes(), data)
    }

    pub fn stored_raw(name: &[u8], data: &[u8]) -> Entry {
        Entry {
            name: name.to_vec(),
            data: data.to_vec(),
            method: 0,
            flags: 1 << 11,
            crc: crc(data),
            compressed: data.len() as u64,
            uncompressed: data.len() as u64,
            made_by: UNIX,
            external_attrs: S_IFREG << 16,
            central_extra: Vec::new(),
            local_extra: Vec::new(),
            local: LocalOverrides::default(),
            descriptor: None,
            zip64: false,
            write_local: true,
            central_offset: None,
        }
    }

    pub fn deflated(name: &str, data: &[u8]) -> Entry {
        let packed = deflate(data);
        Entry {
            method: 8,
            compressed: packed.len() as u64,
            data: packed,
            ..Entry::stored(name, data)
        }
    }

    pub fn dir(name: &str) -> Entry {
        Entry {
            external_attrs: (S_IFDIR << 16) | 0x10,
            ..Entry::stored(name, b"")
        }
    }

    /// Moves crc and sizes into a data descriptor (zeros in the local header), the way
    /// streaming writers do.
    pub fn with_descriptor(mut self, signature: bool) -> Entry {
        self.flags |= 1 << 3;
        self.descriptor = Some(Descriptor {
            signature,
            wide: self.zip64,
            crc: self.crc,
            compressed: self.compressed,
            uncompressed: self.uncompressed,
        });
        self.local.crc = Some(0);
        self.local.compressed = Some(0);
        self.local.uncompressed = Some(0);
        self
    }

    /// The local header (and nothing else) this entry writes.
    pub fn local_header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let name = self.local.name.clone().unwrap_or_else(|| self.name.clone());
        let mut extra = self.local_extra.clone();
        let (c32, u32_) = if self.zip64 {
            extra.extend(zip64_field(&[self.uncompressed, self.compressed]));
            (u32::MAX, u32::MAX)
        } else {
            (self.compressed as u32, self.uncompressed as u32)
        };
        put32(&mut out, LOCAL_SIG);
        put16(&mut out, 20);
        put16(&mut out, self.local.flags.unwrap_or(self.flags));
        put16(&mut out, self.local.method.unwrap_or(self.method));
        put16(&mut out, 0);
        put16(&mut out, 0x21);
        put32(&mut out, self.local.crc.unwrap_or(self.crc));
        put32(&mut out, self.local.compressed.unwrap_or(c32));
        put32(&mut out, self.local.uncompressed.unwrap_or(u32_));
        put16(&mut out, name.len() as u16);
        put16(&mut out, extra.len() as u16);
        out.extend(&name);
        out.extend(&extra);
        out
    }
}

/// A ZIP64 extended information extra field holding `values`.
pub fn zip64_field(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    put16(&mut out, 0x0001);
    put16(&mut out, (values.len() * 8) as u16);
    for v in values {
        out.extend(v.to_le_bytes());
    }
    out
}

/// End-of-archive options.
#[derive(Clone, Debug, Default)]
pub struct Archive {
    pub entries: Vec<Entry>,
    /// Bytes before the first entry (a self-extractor stub).
    pub prefix: Vec<u8>,
    pub comment: Vec<u8>,
    /// Bytes after the end record.
    pub suffix: Vec<u8>,
    /// Write a ZIP64 end record and locator, with sentinels in the classic end record.
    pub zip64_end: bool,
    /// Override the classic end record's entry counts.
    pub eocd_entries: Option<u16>,
    /// Override the classic end record's directory offset.
    pub eocd_cd_offset: Option<u32>,
    /// Override the ZIP64 end record's entry count.
    pub zip64_entries: Option<u64>,
    /// Override the classic end record's disk numbers.
    pub eocd_disk: Option<u16>,
}

/// Where things landed in a built archive.
#[derive(Clone, Debug)]
pub struct Layout {
    pub local_offsets: Vec<u64>,
    pub data_offsets: Vec<u64>,
    pub central_offsets: Vec<u64>,
    pub cd_offset: u64,
    pub eocd_offset: u64,
}

impl Archive {
    pub fn new(entries: Vec<Entry>) -> Archive {
        Archive {
            entries,
            ..Archive::default()
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.build().0
    }

    pub fn build(&self) -> (Vec<u8>, Layout) {
        let mut out = self.prefix.clone();
        let mut local_offsets = Vec::new();
        let mut data_offsets = Vec::new();
        for e in &self.entries {
            local_offsets.push(out.len() as u64);
            if !e.write_local {
                data_offsets.push(0);
                continue;
            }
            out.extend(e.local_header());
            data_offsets.push(out.len() as u64);
            out.extend(&e.data);
            if let Some(d) = &e.descriptor {
                if d.signature {
                    put32(&mut out, DESCRIPTOR_SIG);
                }
                put32(&mut out, d.crc);
                if d.wide {
                    out.extend(d.compressed.to_le_bytes());
                    out.extend(d.uncompressed.to_le_bytes());
                } else {
                    put32(&mut out, d.compressed as u32);
                    put32(&mut out, d.uncompressed as u32);
                }
            }
        }
        let cd_offset = out.len() as u64;
        let mut central_offsets = Vec::new();
        for (e, &local) in self.entries.iter().zip(&local_offsets) {
            central_offsets.push(out.len() as u64);
            let offset = e.central_offset.unwrap_or(local);
            let mut extra = e.central_extra.clone();
            let (c32, u32_, o32) = if e.zip64 {
                extra.extend(zip64_field(&[e.uncompressed, e.compressed, offset]));
                (u32::MAX, u32::MAX, u32::MAX)
            } else {
                (e.compressed as u32, e.uncompressed as u32, offset as u32)
            };
            put32(&mut out, CENTRAL_SIG);
            put16(&mut out, e.made_by);
            put16(&mut out, if e.zip64 { 45 } else { 20 });
            put16(&mut out, e.flags);
            put16(&mut out, e.method);
            put16(&mut out, 0);
            put16(&mut out, 0x21);
            put32(&mut out, e.crc);
            put32(&mut out, c32);
            put32(&mut out, u32_);
            put16(&mut out, e.name.len() as u16);
            put16(&mut out, extra.len() as u16);
            put16(&mut out, 0);
            put16(&mut out, 0);
            put16(&mut out, 0);
            put32(&mut out, e.external_attrs);
            put32(&mut out, o32);
            out.extend(&e.name);
            out.extend(&extra);
        }
        let cd_size = out.len() as u64 - cd_offset;
        let count = self.entries.len() as u64;
        if self.zip64_end {
            let record = out.len() as u64;
            put32(&mut out, ZIP64_EOCD_SIG);
            out.extend(44u64.to_le_bytes());
            put16(&mut out, 45);
            put16(&mut out, 45);
            put32(&mut out, 0);
            put32(&mut out, 0);
            let n = self.zip64_entries.unwrap_or(count);
            out.extend(n.to_le_bytes());
            out.extend(n.to_le_bytes());
            out.extend(cd_size.to_le_bytes());
            out.extend(cd_offset.to_le_bytes());
            put32(&mut out, ZIP64_LOCATOR_SIG);
            put32(&mut out, 0);
            out.extend(record.to_le_bytes());
            put32(&mut out, 1);
        }
        let eocd_offset = out.len() as u64;
        let (n16, size32, off32) = if self.zip64_end {
            (u16::MAX, u32::MAX, u32::MAX)
        } else {
            (count as u16, cd_size as u32, cd_offset as u32)
        };
        put32(&mut out, EOCD_SIG);
        put16(&mut out, self.eocd_disk.unwrap_or(0));
        put16(&mut out, self.eocd_disk.unwrap_or(0));
        put16(&mut out, self.eocd_entries.unwrap_or(n16));
        put16(&mut out, self.eocd_entries.unwrap_or(n16));
        put32(&mut out, size32);
        put32(&mut out, self.eocd_cd_offset.unwrap_or(off32));
        put16(&mut out, self.comment.len() as u16);
        out.extend(&self.comment);
        out.extend(&self.suffix);
        let layout = Layout {
            local_offsets,
            data_offsets,
            central_offsets,
            cd_offset,
            eocd_offset,
        };
        (out, layout)
    }
}

pub fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend(v.to_le_bytes());
}

pub fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend(v.to_le_bytes());
}
