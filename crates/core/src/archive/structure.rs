//! The zip container: end records, the central directory and local headers.
//!
//! Parsing is deliberately stricter than APPNOTE requires. Wherever two readers could
//! disagree about what an archive contains (which end record counts, whether a ZIP64
//! value or the 32-bit one applies, where an entry's data starts), the archive is
//! refused instead of picking one reading: an archive that means different things to
//! different tools is hostile by definition.

use std::fs::File;
use std::io::{BufReader, Read};

use super::error::{ArchiveError, Rule};
use super::source::{Fields, RangeReader, read_exact_at};

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;

const EOCD_LEN: u64 = 22;
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_MIN_LEN: u64 = 56;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;
const MAX_COMMENT: u64 = 0xffff;

const U16_SENTINEL: u16 = 0xffff;
const U32_SENTINEL: u32 = 0xffff_ffff;

const ZIP64_EXTRA_ID: u16 = 0x0001;

pub(crate) const FLAG_ENCRYPTED: u16 = 1 << 0;
pub(crate) const FLAG_DESCRIPTOR: u16 = 1 << 3;
pub(crate) const FLAG_PATCHED: u16 = 1 << 5;
pub(crate) const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
pub(crate) const FLAG_UTF8: u16 = 1 << 11;
pub(crate) const FLAG_MASKED_HEADER: u16 = 1 << 13;

/// Flags whose meaning changes how the entry is read; local and central copies must agree.
const FLAGS_THAT_MUST_AGREE: u16 = FLAG_ENCRYPTED
    | FLAG_DESCRIPTOR
    | FLAG_PATCHED
    | FLAG_STRONG_ENCRYPTION
    | FLAG_UTF8
    | FLAG_MASKED_HEADER;

pub(crate) const METHOD_STORED: u16 = 0;
pub(crate) const METHOD_DEFLATE: u16 = 8;
pub(crate) const METHOD_AES: u16 = 99;

fn reject(rule: Rule, detail: impl Into<String>) -> ArchiveError {
    ArchiveError::rejected(None, rule, detail)
}

fn read_at(file: &File, buf: &mut [u8], offset: u64, what: &str) -> Result<(), ArchiveError> {
    read_exact_at(file, buf, offset).map_err(|e| ArchiveError::io(what.to_owned(), e))
}

/// Where the central directory is, as stated by the end record(s) and checked against
/// the file's layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Directory {
    pub offset: u64,
    pub size: u64,
    pub entries: u64,
}

/// Finds and cross-checks the end of central directory record (and its ZIP64 twin).
pub(crate) fn read_directory(file: &File, file_len: u64) -> Result<Directory, ArchiveError> {
    if file_len < EOCD_LEN {
        return Err(reject(
            Rule::NotAZip,
            format!("file is {file_len} bytes, too short to be a zip archive"),
        ));
    }
    let window_start = file_len.saturating_sub(EOCD_LEN + MAX_COMMENT);
    let mut tail = vec![0; (file_len - window_start) as usize];
    read_at(file, &mut tail, window_start, "end of central directory")?;

    let signatures: Vec<usize> = (0..=tail.len() - EOCD_LEN as usize)
        .filter(|&p| tail[p..p + 4] == EOCD_SIG.to_le_bytes())
        .collect();
    if signatures.is_empty() {
        let mut head = [0; 4];
        let starts_like_zip = file_len >= 4
            && read_exact_at(file, &mut head, 0).is_ok()
            && head == LOCAL_SIG.to_le_bytes();
        return Err(if starts_like_zip {
            reject(
                Rule::Truncated,
                "no end of central directory record: the archive is cut short",
            )
        } else {
            reject(
                Rule::NotAZip,
                "no end of central directory record: not a zip archive",
            )
        });
    }
    // The one true end record is the one whose comment ends exactly at the end of the
    // file. Readers that scan from the front, or stop at the first signature found from
    // the back, would pick others; refusing ambiguity keeps us in agreement with all of them.
    let exact: Vec<usize> = signatures
        .iter()
        .copied()
        .filter(|&p| {
            let comment = u16::from_le_bytes([tail[p + 20], tail[p + 21]]) as usize;
            p + EOCD_LEN as usize + comment == tail.len()
        })
        .collect();
    let eocd_rel = match exact.as_slice() {
        [] => {
            return Err(reject(
                Rule::Eocd,
                "the end of central directory record's comment length does not reach the end \
                 of the file (trailing data, or a cut-off comment)",
            ));
        }
        [one] => *one,
        _ => {
            return Err(reject(
                Rule::MultipleEocd,
                "more than one end of central directory record fits the end of the file",
            ));
        }
    };
    if signatures.iter().any(|&p| p > eocd_rel) {
        return Err(reject(
            Rule::MultipleEocd,
            "the archive comment contains another end of central directory record",
        ));
    }
    let eocd_pos = window_start + eocd_rel as u64;
    let mut f = Fields::new(&tail[eocd_rel + 4..eocd_rel + EOCD_LEN as usize]);
    let disk = f.u16().unwrap_or_default();
    let cd_disk = f.u16().unwrap_or_default();
    let entries_here = f.u16().unwrap_or_default();
    let entries_total = f.u16().unwrap_or_default();
    let cd_size = f.u32().unwrap_or_default();
    let cd_offset = f.u32().unwrap_or_default();

    let zip64 = read_zip64_end(file, eocd_pos)?;
    let (dir, cd_end) = match zip64 {
        Some((z, z_pos)) => {
            let agrees16 = |v: u16, z: u64| v == U16_SENTINEL || u64::from(v) == z;
            let agrees32 = |v: u32, z: u64| v == U32_SENTINEL || u64::from(v) == z;
            if !(agrees16(disk, 0)
                && agrees16(cd_disk, 0)
                && agrees16(entries_here, z.entries)
                && agrees16(entries_total, z.entries)
                && agrees32(cd_size, z.size)
                && agrees32(cd_offset, z.offset))
            {
                return Err(reject(
                    Rule::Zip64,
                    "the end record and the ZIP64 end record disagree",
                ));
            }
            (z, z_pos)
        }
        None => {
            if disk != 0 || cd_disk != 0 || entries_here != entries_total {
                return Err(reject(
                    Rule::MultiDisk,
                    "multi-disk (split or spanned) archives are not supported",
                ));
            }
            let dir = Directory {
                offset: u64::from(cd_offset),
                size: u64::from(cd_size),
                entries: u64::from(entries_total),
            };
            (dir, eocd_pos)
        }
    };
    // The directory must end exactly where the end record(s) begin. A gap or overlap
    // means prepended data (self-extractors), tampered offsets, or a second directory.
    if dir.offset.checked_add(dir.size) != Some(cd_end) {
        return Err(reject(
            Rule::CentralDirectory,
            format!(
                "central directory at offset {} with size {} does not end at offset {cd_end}, \
                 where the end record begins",
                dir.offset, dir.size
            ),
        ));
    }
    if dir.entries.saturating_mul(CENTRAL_LEN as u64) > dir.size {
        return Err(reject(
            Rule::CentralDirectory,
            format!(
                "central directory of {} bytes cannot hold the {} entries the end record declares",
                dir.size, dir.entries
            ),
        ));
    }
    Ok(dir)
}

/// The ZIP64 end record, when a locator sits right before the end record; also returns
/// the offset where the ZIP64 end record starts (which is where the directory must end).
fn read_zip64_end(file: &File, eocd_pos: u64) -> Result<Option<(Directory, u64)>, ArchiveError> {
    let Some(locator_pos) = eocd_pos.checked_sub(ZIP64_LOCATOR_LEN) else {
        return Ok(None);
    };
    let mut loc = [0; ZIP64_LOCATOR_LEN as usize];
    read_at(file, &mut loc, locator_pos, "ZIP64 end locator")?;
    let mut f = Fields::new(&loc);
    if f.u32() != Some(ZIP64_LOCATOR_SIG) {
        return Ok(None);
    }
    let disk = f.u32().unwrap_or_default();
    let record_pos = f.u64().unwrap_or_default();
    let disks = f.u32().unwrap_or_default();
    if disk != 0 || disks > 1 {
        return Err(reject(
            Rule::MultiDisk,
            "multi-disk (split or spanned) archives are not supported",
        ));
    }
    if record_pos
        .checked_add(ZIP64_EOCD_MIN_LEN)
        .is_none_or(|end| end > locator_pos)
    {
        return Err(reject(
            Rule::Zip64,
            format!("ZIP64 end record offset {record_pos} is out of range"),
        ));
    }
    let mut rec = [0; ZIP64_EOCD_MIN_LEN as usize];
    read_at(file, &mut rec, record_pos, "ZIP64 end record")?;
    let mut f = Fields::new(&rec);
    if f.u32() != Some(ZIP64_EOCD_SIG) {
        return Err(reject(
            Rule::Zip64,
            format!("no ZIP64 end record at offset {record_pos}"),
        ));
    }
    let record_size = f.u64().unwrap_or_default();
    let _made_by = f.u16();
    let _needed = f.u16();
    let disk = f.u32().unwrap_or_default();
    let cd_disk = f.u32().unwrap_or_default();
    let entries_here = f.u64().unwrap_or_default();
    let entries = f.u64().unwrap_or_default();
    let size = f.u64().unwrap_or_default();
    let offset = f.u64().unwrap_or_default();
    // The record (plus its extensible data) must end exactly at the locator.
    if record_pos
        .checked_add(12)
        .and_then(|p| p.checked_add(record_size))
        != Some(locator_pos)
    {
        return Err(reject(
            Rule::Zip64,
            "ZIP64 end record's size does not reach the ZIP64 locator",
        ));
    }
    if disk != 0 || cd_disk != 0 || entries_here != entries {
        return Err(reject(
            Rule::MultiDisk,
            "multi-disk (split or spanned) archives are not supported",
        ));
    }
    Ok(Some((
        Directory {
            offset,
            size,
            entries,
        },
        record_pos,
    )))
}

/// One central directory record, with ZIP64 values already resolved.
#[derive(Debug, Clone)]
pub(crate) struct CentralRecord {
    /// The name's bytes; taken by [`decode_name`](super::names::decode_name).
    pub raw_name: Vec<u8>,
    pub version_made_by: u16,
    pub flags: u16,
    pub method: u16,
    pub crc: u32,
    pub compressed: u64,
    pub uncompressed: u64,
    pub local_offset: u64,
    pub external_attrs: u32,
    /// The record carried a ZIP64 extra field (so a data descriptor uses 8-byte sizes).
    pub zip64: bool,
}

/// Streams the central directory's records, checking each one's framing.
pub(crate) struct CentralReader<'a> {
    reader: BufReader<RangeReader<'a>>,
    left: u64,
    consumed: u64,
    dir: Directory,
}

impl<'a> CentralReader<'a> {
    pub(crate) fn new(file: &'a File, dir: Directory) -> Self {
        CentralReader {
            reader: BufReader::with_capacity(
                64 * 1024,
                RangeReader::new(file, dir.offset, dir.offset + dir.size),
            ),
            left: dir.entries,
            consumed: 0,
            dir,
        }
    }

    /// The next record, or `None` once the declared count has been read (at which point
    /// the directory must also be used up exactly).
    pub(crate) fn next_record(&mut self) -> Result<Option<CentralRecord>, ArchiveError> {
        if self.left == 0 {
            if self.consumed != self.dir.size {
                return Err(reject(
                    Rule::CentralDirectory,
                    format!(
                        "central directory holds {} bytes after its {} declared entries",
                        self.dir.size - self.consumed,
                        self.dir.entries
                    ),
                ));
            }
            return Ok(None);
        }
        self.left -= 1;
        let index = self.dir.entries - self.left;
        let short = |_| {
            reject(
                Rule::CentralDirectory,
                format!(
                    "central directory ends inside record {index} of {}",
                    self.dir.entries
                ),
            )
        };
        let mut fixed = [0; CENTRAL_LEN];
        self.reader.read_exact(&mut fixed).map_err(short)?;
        let mut f = Fields::new(&fixed);
        if f.u32() != Some(CENTRAL_SIG) {
            return Err(reject(
                Rule::CentralDirectory,
                format!("record {index} of the central directory has no valid signature"),
            ));
        }
        let version_made_by = f.u16().unwrap_or_default();
        let _version_needed = f.u16();
        let flags = f.u16().unwrap_or_default();
        let method = f.u16().unwrap_or_default();
        let _time = f.u16();
        let _date = f.u16();
        let crc = f.u32().unwrap_or_default();
        let compressed32 = f.u32().unwrap_or_default();
        let uncompressed32 = f.u32().unwrap_or_default();
        let name_len = f.u16().unwrap_or_default() as usize;
        let extra_len = f.u16().unwrap_or_default() as usize;
        let comment_len = f.u16().unwrap_or_default() as usize;
        let disk16 = f.u16().unwrap_or_default();
        let _internal = f.u16();
        let external_attrs = f.u32().unwrap_or_default();
        let offset32 = f.u32().unwrap_or_default();

        let mut var = vec![0; name_len + extra_len + comment_len];
        self.reader.read_exact(&mut var).map_err(short)?;
        self.consumed += (CENTRAL_LEN + var.len()) as u64;
        let raw_name = var[..name_len].to_vec();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let extra = &var[name_len..name_len + extra_len];

        let zip64_field = find_extra(extra, ZIP64_EXTRA_ID)
            .map_err(|detail| ArchiveError::rejected(Some(&name), Rule::ExtraField, detail))?;
        // APPNOTE 4.5.3: the ZIP64 field holds exactly the values whose 32-bit field is
        // the sentinel, in this order. Anything else is a second opinion about sizes.
        let mut z = zip64_field.map(Fields::new);
        let mut from_zip64 = |sentinel: bool, wide: bool| -> Result<Option<u64>, ArchiveError> {
            if !sentinel {
                return Ok(None);
            }
            let value = match z.as_mut() {
                Some(f) if wide => f.u64(),
                Some(f) => f.u32().map(u64::from),
                None => None,
            };
            value.map(Some).ok_or_else(|| {
                ArchiveError::rejected(
                    Some(&name),
                    Rule::Zip64,
                    "a size or offset is marked as ZIP64 but the ZIP64 extra field lacks it",
                )
            })
        };
        let uncompressed =
            from_zip64(uncompressed32 == U32_SENTINEL, true)?.unwrap_or(u64::from(uncompressed32));
        let compressed =
            from_zip64(compressed32 == U32_SENTINEL, true)?.unwrap_or(u64::from(compressed32));
        let local_offset =
            from_zip64(offset32 == U32_SENTINEL, true)?.unwrap_or(u64::from(offset32));
        let disk = from_zip64(disk16 == U16_SENTINEL, false)?.unwrap_or(u64::from(disk16));
        if z.as_ref().is_some_and(|f| f.remaining() != 0) {
            return Err(ArchiveError::rejected(
                Some(&name),
                Rule::Zip64,
                "the ZIP64 extra field holds values the record does not mark as ZIP64",
            ));
        }
        if disk != 0 {
            return Err(ArchiveError::rejected(
                Some(&name),
                Rule::MultiDisk,
                "entry lives on another disk of a multi-disk archive",
            ));
        }
        Ok(Some(CentralRecord {
            raw_name,
            version_made_by,
            flags,
            method,
            crc,
            compressed,
            uncompressed,
            local_offset,
            external_attrs,
            zip64: zip64_field.is_some(),
        }))
    }
}

/// The data of extra field `id`, checking that the whole extra area is well framed and
/// that `id` appears at most once.
fn find_extra(extra: &[u8], id: u16) -> Result<Option<&[u8]>, String> {
    let mut f = Fields::new(extra);
    let mut found = None;
    while f.remaining() > 0 {
        let (Some(this), Some(len)) = (f.u16(), f.u16()) else {
            return Err("extra field area ends inside a field header".to_owned());
        };
        let Some(data) = f.bytes(len as usize) else {
            return Err(format!(
                "extra field 0x{this:04x} claims {len} bytes but the area ends first"
            ));
        };
        if this == id {
            if found.is_some() {
                return Err(format!("extra field 0x{this:04x} appears twice"));
            }
            found = Some(data);
        }
    }
    Ok(found)
}

/// Where an entry's bytes are, once its local header has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataSpan {
    /// Offset of the first compressed byte.
    pub data_start: u64,
    /// Offset just past everything the entry occupies (data and data descriptor).
    pub end: u64,
}

/// Reads the local header at `rec.local_offset`, checks it against the central record
/// (whose decoded name is `name`),
/// checks the data descriptor if there is one, and returns where the data lives.
/// Everything must lie before `limit` (the start of the central directory).
pub(crate) fn check_local(
    file: &File,
    rec: &CentralRecord,
    name: &str,
    limit: u64,
) -> Result<DataSpan, ArchiveError> {
    let rejected = |rule: Rule, detail: String| ArchiveError::rejected(Some(name), rule, detail);
    let lh = rec.local_offset;
    if lh
        .checked_add(LOCAL_LEN as u64)
        .is_none_or(|end| end > limit)
    {
        return Err(rejected(
            Rule::OutOfBounds,
            format!("local header offset {lh} lies outside the entry area (which ends at {limit})"),
        ));
    }
    let mut fixed = [0; LOCAL_LEN];
    read_at(file, &mut fixed, lh, "local header")?;
    let mut f = Fields::new(&fixed);
    if f.u32() != Some(LOCAL_SIG) {
        return Err(rejected(
            Rule::LocalHeaderMismatch,
            format!("no local header at offset {lh}"),
        ));
    }
    let _version_needed = f.u16();
    let flags = f.u16().unwrap_or_default();
    let method = f.u16().unwrap_or_default();
    let _time = f.u16();
    let _date = f.u16();
    let crc = f.u32().unwrap_or_default();
    let compressed32 = f.u32().unwrap_or_default();
    let uncompressed32 = f.u32().unwrap_or_default();
    let name_len = f.u16().unwrap_or_default() as u64;
    let extra_len = f.u16().unwrap_or_default() as u64;
    let data_start = lh + LOCAL_LEN as u64 + name_len + extra_len;
    if data_start > limit {
        return Err(rejected(
            Rule::OutOfBounds,
            "local header runs into the central directory".to_owned(),
        ));
    }
    let mut var = vec![0; (name_len + extra_len) as usize];
    read_at(file, &mut var, lh + LOCAL_LEN as u64, "local header")?;
    let (local_name, extra) = var.split_at(name_len as usize);
    if local_name != name.as_bytes() {
        return Err(rejected(
            Rule::LocalHeaderMismatch,
            format!(
                "local header names the entry {:?}",
                String::from_utf8_lossy(local_name)
            ),
        ));
    }
    if flags & FLAGS_THAT_MUST_AGREE != rec.flags & FLAGS_THAT_MUST_AGREE {
        return Err(rejected(
            Rule::LocalHeaderMismatch,
            format!(
                "local header flags 0x{flags:04x} disagree with the central directory's 0x{:04x}",
                rec.flags
            ),
        ));
    }
    if method != rec.method {
        return Err(rejected(
            Rule::LocalHeaderMismatch,
            format!(
                "local header says compression method {method}, the central directory {}",
                rec.method
            ),
        ));
    }
    // Local extra fields are not framed as strictly as central ones in the wild
    // (alignment padding), so only the ZIP64 field is looked for, and only when needed.
    let local_zip64 = find_extra(extra, ZIP64_EXTRA_ID).ok().flatten();
    let mut sizes = (u64::from(uncompressed32), u64::from(compressed32));
    let marked = (uncompressed32 == U32_SENTINEL, compressed32 == U32_SENTINEL);
    if marked.0 || marked.1 {
        sizes = local_zip64_sizes(local_zip64, marked, sizes).ok_or_else(|| {
            rejected(
                Rule::Zip64,
                "local header marks its sizes as ZIP64 but its ZIP64 extra field does not \
                 hold them"
                    .to_owned(),
            )
        })?;
    }
    let has_descriptor = rec.flags & FLAG_DESCRIPTOR != 0;
    let agrees = if has_descriptor {
        // Streaming writers leave these zero and put the truth in the descriptor.
        (crc == 0 || crc == rec.crc)
            && (sizes.0 == 0 || sizes.0 == rec.uncompressed)
            && (sizes.1 == 0 || sizes.1 == rec.compressed)
    } else {
        crc == rec.crc && sizes == (rec.uncompressed, rec.compressed)
    };
    if !agrees {
        return Err(rejected(
            Rule::LocalHeaderMismatch,
            format!(
                "local header declares crc {crc:08x}, {} bytes from {}; the central directory \
                 {:08x}, {} bytes from {}",
                sizes.0, sizes.1, rec.crc, rec.uncompressed, rec.compressed
            ),
        ));
    }
    let data_end = data_start
        .checked_add(rec.compressed)
        .filter(|&end| end <= limit)
        .ok_or_else(|| {
            rejected(
                Rule::OutOfBounds,
                format!(
                    "{} compressed bytes from offset {data_start} run past the entry area \
                     (which ends at {limit})",
                    rec.compressed
                ),
            )
        })?;
    let end = if has_descriptor {
        let wide = rec.zip64 || local_zip64.is_some();
        data_end + check_descriptor(file, rec, name, data_end, limit, wide)?
    } else {
        data_end
    };
    Ok(DataSpan { data_start, end })
}

/// The sizes a local header's ZIP64 field gives for the sizes it marks (0xFFFFFFFF),
/// `None` when it does not hold them. The format asks for both sizes there; Info-ZIP's
/// `zip` writing to a pipe stores only the one it marks (the compressed size, with a data
/// descriptor after the data), as the central directory does. Both layouts are read; a
/// field too short for what is marked is refused.
fn local_zip64_sizes(
    field: Option<&[u8]>,
    (uncompressed_marked, compressed_marked): (bool, bool),
    (uncompressed, compressed): (u64, u64),
) -> Option<(u64, u64)> {
    let field = field?;
    let mut f = Fields::new(field);
    if field.len() >= 16 {
        // Both, in the order the format gives.
        return Some((f.u64()?, f.u64()?));
    }
    // Only the one marked, as the central directory would hold it.
    match (uncompressed_marked, compressed_marked, field.len()) {
        (true, false, 8) => Some((f.u64()?, compressed)),
        (false, true, 8) => Some((uncompressed, f.u64()?)),
        _ => None,
    }
}

/// Checks the data descriptor after an entry's data and returns its length.
fn check_descriptor(
    file: &File,
    rec: &CentralRecord,
    name: &str,
    at: u64,
    limit: u64,
    wide: bool,
) -> Result<u64, ArchiveError> {
    let body = if wide { 20 } else { 12 };
    let mut buf = [0u8; 24];
    let avail = usize::try_from(limit - at).unwrap_or(usize::MAX).min(24);
    read_at(file, &mut buf[..avail], at, "data descriptor")?;
    let buf = &buf[..avail];
    // The signature is optional, and a CRC can equal it by chance; a descriptor with the
    // signature is preferred only when what follows it parses as the expected CRC.
    let with_sig = buf.len() >= 4 + body
        && buf[..4] == DESCRIPTOR_SIG.to_le_bytes()
        && buf[4..8] == rec.crc.to_le_bytes();
    let (skip, len) = if with_sig { (4, 4 + body) } else { (0, body) };
    let Some(fields) = buf.get(skip..len) else {
        return Err(ArchiveError::rejected(
            Some(name),
            Rule::OutOfBounds,
            "data descriptor runs into the central directory",
        ));
    };
    let mut f = Fields::new(fields);
    let crc = f.u32().unwrap_or_default();
    let (c, u) = if wide {
        (f.u64().unwrap_or_default(), f.u64().unwrap_or_default())
    } else {
        (
            u64::from(f.u32().unwrap_or_default()),
            u64::from(f.u32().unwrap_or_default()),
        )
    };
    if (crc, c, u) != (rec.crc, rec.compressed, rec.uncompressed) {
        return Err(ArchiveError::rejected(
            Some(name),
            Rule::DataDescriptor,
            format!(
                "data descriptor declares crc {crc:08x}, {u} bytes from {c}; the central \
                 directory {:08x}, {} bytes from {}",
                rec.crc, rec.uncompressed, rec.compressed
            ),
        ));
    }
    Ok(len as u64)
}
