//! Segment files: `<store>/<topic>/<base position as 20 digits>.seg`.
//!
//! All fields are little-endian. A segment is a header, the records, and (once sealed)
//! a footer and a trailer. Until it is sealed the file is preallocated: the records are
//! followed by zeros, and a zero commit word marks the end of the data.
//!
//! ## Header (64 bytes, offset 0)
//!
//! | offset | size | field                                              |
//! |-------:|-----:|----------------------------------------------------|
//! |      0 |    8 | magic `b"SHMBSEG\0"`                                |
//! |      8 |    4 | format version ([`SEG_VERSION`])                   |
//! |     12 |    4 | header size (64)                                   |
//! |     16 |    8 | base position: the position of the first record    |
//! |     24 |    8 | creation time, ns since the Unix epoch             |
//! |     32 |    8 | topic event type id (0 = raw bytes)                |
//! |     40 |    8 | topic schema fingerprint (0 = raw bytes)           |
//! |     48 |   16 | reserved, zero                                     |
//!
//! ## Record (from offset 64, each 64-byte aligned, `record_size(len)` bytes)
//!
//! The ring's record header and payload, byte for byte, zero padded to 64 bytes, except
//! that the ring's reserved word (offset 12) holds the record's crc32c.
//!
//! | offset | size | field                                                            |
//! |-------:|-----:|------------------------------------------------------------------|
//! |      0 |    8 | commit word: `position \| 1` (only data records are stored)     |
//! |      8 |    4 | payload length                                                   |
//! |     12 |    4 | crc32c of the 32 header bytes (this word zero) and the payload   |
//! |     16 |    8 | type id                                                          |
//! |     24 |    8 | producer timestamp, ns since the Unix epoch                      |
//! |     32 |  len | payload                                                          |
//!
//! Positions strictly increase; they need not be contiguous (the ring's padding and gap
//! records are not stored).
//!
//! ## Footer (96 bytes at the end of the data, written when the segment is sealed)
//!
//! | offset | size | field                                                   |
//! |-------:|-----:|---------------------------------------------------------|
//! |      0 |    8 | magic `b"SHMBFOOT"`                                      |
//! |      8 |    8 | record count                                            |
//! |     16 |    8 | first position                                          |
//! |     24 |    8 | last position                                           |
//! |     32 |    8 | end position (the position after the last record)       |
//! |     40 |    8 | first timestamp                                         |
//! |     48 |    8 | last timestamp                                          |
//! |     56 |    8 | largest timestamp                                       |
//! |     64 |    8 | data end: file offset of this footer                    |
//! |     72 |    4 | crc32c of the data (offsets 64 to data end)             |
//! |     76 |    4 | schema length                                           |
//! |     80 |    4 | crc32c of the footer (this word zero) and the schema    |
//! |     84 |   12 | reserved, zero                                          |
//! |     96 |    n | the topic's encoded schema ([`crate::schema::Schema`])   |
//!
//! ## Trailer (the last 16 bytes of a sealed file)
//!
//! | offset | size | field                    |
//! |-------:|-----:|--------------------------|
//! |      0 |    8 | file offset of the footer |
//! |      8 |    8 | magic `b"SHMBEND\0"`      |

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::index::{self, IndexEntry};
use super::{io_err, StoreError};
use crate::layout::{record_size, RECORD_ALIGN, RECORD_HEADER};

/// `b"SHMBSEG\0"` as a little-endian u64.
pub const SEG_MAGIC: u64 = u64::from_le_bytes(*b"SHMBSEG\0");
/// The segment format version.
pub const SEG_VERSION: u32 = 1;
/// Size of the segment header; the first record starts here.
pub const SEG_HEADER: usize = 64;
/// `b"SHMBFOOT"` as a little-endian u64.
pub const FOOTER_MAGIC: u64 = u64::from_le_bytes(*b"SHMBFOOT");
/// Size of the fixed part of the footer.
pub const FOOTER_SIZE: usize = 96;
/// `b"SHMBEND\0"` as a little-endian u64.
pub const TRAILER_MAGIC: u64 = u64::from_le_bytes(*b"SHMBEND\0");
/// Size of the trailer.
pub const TRAILER_SIZE: usize = 16;

/// Commit-word flag of a committed record (the only flag a stored record carries).
const COMMITTED: u64 = 1;
const FLAG_MASK: u64 = RECORD_ALIGN - 1;
/// Offset of the checksum word in a stored record header.
const R_CRC: usize = 12;

/// The segment header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SegHeader {
    /// [`SEG_MAGIC`].
    pub magic: u64,
    /// [`SEG_VERSION`].
    pub version: u32,
    /// [`SEG_HEADER`].
    pub header_size: u32,
    /// Position of the first record.
    pub base: u64,
    /// Creation time, ns since the Unix epoch.
    pub created_ns: u64,
    /// Topic event type id.
    pub type_id: u64,
    /// Topic schema fingerprint.
    pub fingerprint: u64,
    /// Zero.
    pub reserved: [u8; 16],
}

/// The fixed part of a sealed segment's footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Footer {
    /// [`FOOTER_MAGIC`].
    pub magic: u64,
    /// Records in the segment.
    pub count: u64,
    /// Position of the first record.
    pub first_pos: u64,
    /// Position of the last record.
    pub last_pos: u64,
    /// Position after the last record.
    pub end_pos: u64,
    /// Timestamp of the first record.
    pub first_ts: u64,
    /// Timestamp of the last record.
    pub last_ts: u64,
    /// Largest timestamp in the segment.
    pub max_ts: u64,
    /// File offset of the footer (end of the records).
    pub data_end: u64,
    /// crc32c of the records.
    pub data_crc: u32,
    /// Length of the schema that follows.
    pub schema_len: u32,
    /// crc32c of the footer (with this field zero) and the schema.
    pub footer_crc: u32,
    /// Zero.
    pub reserved: [u8; 12],
}

/// The trailer of a sealed segment.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Trailer {
    /// File offset of the footer.
    pub footer_off: u64,
    /// [`TRAILER_MAGIC`].
    pub magic: u64,
}

const _: () = {
    assert!(core::mem::size_of::<SegHeader>() == SEG_HEADER);
    assert!(core::mem::offset_of!(SegHeader, base) == 16);
    assert!(core::mem::offset_of!(SegHeader, fingerprint) == 40);
    assert!(core::mem::size_of::<Footer>() == FOOTER_SIZE);
    assert!(core::mem::offset_of!(Footer, data_end) == 64);
    assert!(core::mem::offset_of!(Footer, data_crc) == 72);
    assert!(core::mem::offset_of!(Footer, footer_crc) == 80);
    assert!(core::mem::size_of::<Trailer>() == TRAILER_SIZE);
    assert!(SEG_HEADER as u64 % RECORD_ALIGN == 0);
};

/// File name of the segment starting at `base`.
pub fn seg_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// File name of the index of the segment starting at `base`.
pub fn idx_name(base: u64) -> String {
    format!("{base:020}.idx")
}

/// A segment found in a topic directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Position of its first record.
    pub base: u64,
    /// The `.seg` file.
    pub path: PathBuf,
    /// File size in bytes.
    pub len: u64,
}

impl SegmentInfo {
    /// The `.idx` file next to it.
    pub fn idx_path(&self) -> PathBuf {
        self.path.with_extension("idx")
    }
}

/// The segments of a topic directory, by base position. A missing directory is empty.
///
/// # Errors
///
/// [`StoreError::Io`] if the directory cannot be read.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentInfo>, StoreError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir, "read store directory")(e)),
    };
    for e in rd {
        let e = e.map_err(io_err(dir, "read store directory"))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".seg") else {
            continue;
        };
        if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(base) = stem.parse::<u64>() else {
            continue;
        };
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        out.push(SegmentInfo {
            base,
            path: e.path(),
            len,
        });
    }
    out.sort_by_key(|s| s.base);
    Ok(out)
}

/// Encode a record as stored: the ring header with the checksum in its reserved word,
/// the payload, and zero padding. Appends `record_size(payload.len())` bytes to `out`.
pub fn encode_record(
    out: &mut Vec<u8>,
    position: u64,
    timestamp: u64,
    type_id: u64,
    payload: &[u8],
) {
    let start = out.len();
    let mut h = [0u8; RECORD_HEADER];
    h[0..8].copy_from_slice(&(position | COMMITTED).to_le_bytes());
    h[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[16..24].copy_from_slice(&type_id.to_le_bytes());
    h[24..32].copy_from_slice(&timestamp.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h), payload);
    h[R_CRC..R_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.resize(start + record_size(payload.len()) as usize, 0);
}

/// A record read from a segment. Borrows the segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRecord<'a> {
    /// The record's position in the topic.
    pub position: u64,
    /// Producer timestamp, ns since the Unix epoch.
    pub timestamp: u64,
    /// Type id.
    pub type_id: u64,
    /// The payload.
    pub bytes: &'a [u8],
    /// Position after this record.
    pub next_position: u64,
    /// File offset of the record.
    pub offset: u64,
    /// File offset of the next record.
    pub next_offset: u64,
}

/// What is at a file offset of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid record.
    Record(StoredRecord<'a>),
    /// A zero commit word or too few bytes for a header: the clean end of the data.
    End,
    /// Something that is not a valid record.
    Bad(&'static str),
}

/// Decode the record at `buf[at..]` (the file offset of `buf[0]` is `base_off`), which
/// must have a position of at least `min_pos`. Checks everything, trusts nothing.
pub fn decode(buf: &[u8], at: usize, base_off: u64, min_pos: u64) -> Decoded<'_> {
    let Some(rest) = buf.get(at..) else {
        return Decoded::End;
    };
    if rest.len() < RECORD_HEADER {
        if rest.iter().all(|&b| b == 0) {
            return Decoded::End;
        }
        return Decoded::Bad("truncated record header");
    }
    let word = u64::from_le_bytes(rest[0..8].try_into().unwrap_or_default());
    if word == 0 {
        return Decoded::End;
    }
    if word & FLAG_MASK != COMMITTED {
        return Decoded::Bad("commit word is not a committed data record");
    }
    let position = word & !FLAG_MASK;
    if position < min_pos {
        return Decoded::Bad("position does not increase");
    }
    let len = u32::from_le_bytes(rest[8..12].try_into().unwrap_or_default()) as usize;
    let size = record_size(len);
    if size > rest.len() as u64 {
        return Decoded::Bad("record extends past the end of the data");
    }
    if position.checked_add(size).is_none() {
        return Decoded::Bad("position of the next record overflows");
    }
    let stored_crc = u32::from_le_bytes(rest[R_CRC..R_CRC + 4].try_into().unwrap_or_default());
    let mut h = [0u8; RECORD_HEADER];
    h.copy_from_slice(&rest[..RECORD_HEADER]);
    h[R_CRC..R_CRC + 4].fill(0);
    let payload = &rest[RECORD_HEADER..RECORD_HEADER + len];
    if crc32c::crc32c_append(crc32c::crc32c(&h), payload) != stored_crc {
        return Decoded::Bad("record checksum mismatch");
    }
    if rest[RECORD_HEADER + len..size as usize]
        .iter()
        .any(|&b| b != 0)
    {
        return Decoded::Bad("record padding is not zero");
    }
    let offset = base_off + at as u64;
    Decoded::Record(StoredRecord {
        position,
        timestamp: u64::from_le_bytes(rest[24..32].try_into().unwrap_or_default()),
        type_id: u64::from_le_bytes(rest[16..24].try_into().unwrap_or_default()),
        bytes: payload,
        next_position: position + size,
        offset,
        next_offset: offset + size,
    })
}

/// Running summary of a segment's records (what the footer records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records.
    pub count: u64,
    /// First position.
    pub first_pos: u64,
    /// Last position.
    pub last_pos: u64,
    /// Position after the last record.
    pub end_pos: u64,
    /// First timestamp.
    pub first_ts: u64,
    /// Last timestamp.
    pub last_ts: u64,
    /// Largest timestamp.
    pub max_ts: u64,
    /// File offset after the last record.
    pub data_end: u64,
    /// crc32c of the records so far.
    pub crc: u32,
}

impl Summary {
    /// An empty segment's summary.
    pub fn new() -> Summary {
        Summary {
            data_end: SEG_HEADER as u64,
            ..Default::default()
        }
    }

    /// Account for a record whose stored bytes are `bytes`.
    pub fn add(&mut self, position: u64, timestamp: u64, bytes: &[u8]) {
        if self.count == 0 {
            self.first_pos = position;
            self.first_ts = timestamp;
        }
        self.count += 1;
        self.last_pos = position;
        self.last_ts = timestamp;
        self.max_ts = self.max_ts.max(timestamp);
        self.end_pos = position + bytes.len() as u64;
        self.data_end += bytes.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
    }

    /// The footer, schema and trailer that seal a segment with this summary.
    pub fn seal_bytes(&self, schema: &[u8]) -> Vec<u8> {
        let mut f = Footer {
            magic: FOOTER_MAGIC,
            count: self.count,
            first_pos: self.first_pos,
            last_pos: self.last_pos,
            end_pos: self.end_pos,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            max_ts: self.max_ts,
            data_end: self.data_end,
            data_crc: self.crc,
            schema_len: schema.len() as u32,
            footer_crc: 0,
            reserved: [0; 12],
        };
        f.footer_crc = crc32c::crc32c_append(crc32c::crc32c(f.as_bytes()), schema);
        let mut out = Vec::with_capacity(FOOTER_SIZE + schema.len() + TRAILER_SIZE);
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(schema);
        let t = Trailer {
            footer_off: self.data_end,
            magic: TRAILER_MAGIC,
        };
        out.extend_from_slice(t.as_bytes());
        out
    }
}

/// A segment header for a new segment.
pub fn header_bytes(base: u64, type_id: u64, fingerprint: u64) -> [u8; SEG_HEADER] {
    let h = SegHeader {
        magic: SEG_MAGIC,
        version: SEG_VERSION,
        header_size: SEG_HEADER as u32,
        base,
        created_ns: crate::os::now_ns(),
        type_id,
        fingerprint,
        reserved: [0; 16],
    };
    let mut out = [0u8; SEG_HEADER];
    out.copy_from_slice(h.as_bytes());
    out
}

fn corrupt(path: &Path, offset: u64, what: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: what.into(),
    }
}

/// Check a segment header.
pub(crate) fn check_header(path: &Path, bytes: &[u8]) -> Result<SegHeader, StoreError> {
    let Ok((h, _)) = SegHeader::read_from_prefix(bytes) else {
        return Err(corrupt(path, 0, "file shorter than the segment header"));
    };
    if h.magic != SEG_MAGIC {
        return Err(corrupt(path, 0, "bad segment magic"));
    }
    if h.version != SEG_VERSION {
        return Err(corrupt(path, 8, format!("segment version {}", h.version)));
    }
    if h.header_size != SEG_HEADER as u32 {
        return Err(corrupt(path, 12, "bad header size"));
    }
    if h.base % RECORD_ALIGN != 0 {
        return Err(corrupt(path, 16, "base position is not 64-byte aligned"));
    }
    Ok(h)
}

/// Read and check the footer of a file of `len` bytes. `Ok(None)`: no trailer (unsealed).
pub(crate) fn read_footer(
    path: &Path,
    file: &File,
    len: u64,
) -> Result<Option<(Footer, Vec<u8>)>, StoreError> {
    if len < (SEG_HEADER + FOOTER_SIZE + TRAILER_SIZE) as u64 {
        return Ok(None);
    }
    let mut t = [0u8; TRAILER_SIZE];
    file.read_exact_at(&mut t, len - TRAILER_SIZE as u64)
        .map_err(io_err(path, "read segment trailer"))?;
    let Ok(trailer) = Trailer::read_from_bytes(&t[..]) else {
        return Ok(None);
    };
    if trailer.magic != TRAILER_MAGIC {
        return Ok(None);
    }
    let toff = len - TRAILER_SIZE as u64;
    let off = trailer.footer_off;
    if off < SEG_HEADER as u64 || off % RECORD_ALIGN != 0 || off + FOOTER_SIZE as u64 > toff {
        return Err(corrupt(path, toff, "trailer points outside the file"));
    }
    let mut fb = vec![0u8; (toff - off) as usize];
    file.read_exact_at(&mut fb, off)
        .map_err(io_err(path, "read segment footer"))?;
    let Ok((mut f, schema)) = Footer::read_from_prefix(&fb[..]) else {
        return Err(corrupt(path, off, "footer truncated"));
    };
    if f.magic != FOOTER_MAGIC {
        return Err(corrupt(path, off, "bad footer magic"));
    }
    if f.schema_len as usize != schema.len() {
        return Err(corrupt(path, off + 76, "footer schema length mismatch"));
    }
    let stored = f.footer_crc;
    f.footer_crc = 0;
    if crc32c::crc32c_append(crc32c::crc32c(f.as_bytes()), schema) != stored {
        return Err(corrupt(path, off + 80, "footer checksum mismatch"));
    }
    f.footer_crc = stored;
    if f.data_end != off {
        return Err(corrupt(
            path,
            off + 64,
            "footer data end disagrees with the trailer",
        ));
    }
    Ok(Some((f, schema.to_vec())))
}

/// Read the valid prefix of an unsealed segment with `pread`, up to the first zero
/// commit word or invalid record. Returns the bytes (header included), the summary and
/// the sparse index, and the problem that stopped the scan if it was not a clean end.
pub(crate) fn scan_file(
    path: &Path,
    file: &File,
    len: u64,
    base: u64,
    interval: u64,
) -> Result<Scan, StoreError> {
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; (len.min(CHUNK as u64)) as usize];
    let n = read_at_most(file, &mut buf, 0).map_err(io_err(path, "read segment"))?;
    buf.truncate(n);
    let mut sum = Summary::new();
    let mut idx = Vec::new();
    let mut at = SEG_HEADER;
    let mut min_pos = base;
    let mut last_entry: Option<u64> = None;
    let mut file_end = n as u64;
    loop {
        // Make sure a whole header, and then a whole record, are in the buffer.
        let need_more = |buf: &Vec<u8>, at: usize| -> usize {
            if buf.len() < at + RECORD_HEADER {
                return at + RECORD_HEADER;
            }
            let l = u32::from_le_bytes(buf[at + 8..at + 12].try_into().unwrap_or_default());
            at + record_size(l as usize).min(len) as usize
        };
        let mut want = need_more(&buf, at);
        while want > buf.len() && file_end < len {
            let extra = ((want - buf.len()).max(CHUNK) as u64).min(len - file_end) as usize;
            let old = buf.len();
            buf.resize(old + extra, 0);
            let n = read_at_most(file, &mut buf[old..], file_end)
                .map_err(io_err(path, "read segment"))?;
            buf.truncate(old + n);
            file_end += n as u64;
            if n == 0 {
                break;
            }
            want = need_more(&buf, at);
        }
        match decode(&buf, at, 0, min_pos) {
            Decoded::Record(r) => {
                if sum.count == 0 && r.position != base {
                    buf.truncate(at);
                    return Ok(Scan::new(
                        buf,
                        sum,
                        idx,
                        Some((at as u64, "first record is not at the base position")),
                    ));
                }
                if last_entry.is_none_or(|e| r.offset - e >= interval) {
                    idx.push(IndexEntry::new(r.position, r.offset, sum.max_ts));
                    last_entry = Some(r.offset);
                }
                let end = r.next_offset as usize;
                let (pos, ts, np) = (r.position, r.timestamp, r.next_position);
                sum.add(pos, ts, &buf[at..end]);
                min_pos = np;
                at = end;
            }
            Decoded::End => {
                buf.truncate(at);
                return Ok(Scan::new(buf, sum, idx, None));
            }
            Decoded::Bad(what) => {
                buf.truncate(at);
                return Ok(Scan::new(buf, sum, idx, Some((at as u64, what))));
            }
        }
    }
}

/// The result of [`scan_file`].
pub(crate) struct Scan {
    /// The valid prefix, header included.
    pub bytes: Vec<u8>,
    /// Its records.
    pub summary: Summary,
    /// Its sparse index.
    pub index: Vec<IndexEntry>,
    /// Offset and description of what stopped the scan, unless a clean end.
    pub problem: Option<(u64, &'static str)>,
}

impl Scan {
    fn new(
        bytes: Vec<u8>,
        summary: Summary,
        index: Vec<IndexEntry>,
        problem: Option<(u64, &'static str)>,
    ) -> Scan {
        Scan {
            bytes,
            summary,
            index,
            problem,
        }
    }
}

/// `pread` until `buf` is full or end of file; returns the bytes read.
pub(crate) fn read_at_most(file: &File, buf: &mut [u8], mut off: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], off) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                off += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

enum Bytes {
    /// A sealed segment: never written again (only deleted), so it is safe to map.
    Map(memmap2::Mmap),
    /// An unsealed segment's valid prefix, read with `pread`: the recorder may still
    /// append to it or truncate it, which would make a mapping fault.
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A validated view of one segment: sealed segments are memory-mapped (zero-copy);
/// the unsealed tail is read up to its last complete record.
pub struct SegmentReader {
    path: PathBuf,
    bytes: Bytes,
    header: SegHeader,
    footer: Option<(Footer, Vec<u8>)>,
    summary: Summary,
    index: Vec<IndexEntry>,
    index_rebuilt: bool,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("path", &self.path)
            .field("sealed", &self.footer.is_some())
            .field("summary", &self.summary)
            .finish()
    }
}

impl SegmentReader {
    /// Open and validate a segment: header, footer (if sealed) and index (rebuilt in
    /// memory from the records if missing or damaged). Records are checked one by one
    /// as they are read; [`SegmentReader::verify`] checks them all.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`], or [`StoreError::Corrupt`] with the path and offset of the
    /// damage.
    pub fn open(path: &Path) -> Result<SegmentReader, StoreError> {
        let file = File::open(path).map_err(io_err(path, "open segment"))?;
        let len = file.metadata().map_err(io_err(path, "stat segment"))?.len();
        let mut hb = [0u8; SEG_HEADER];
        let n = read_at_most(&file, &mut hb, 0).map_err(io_err(path, "read segment header"))?;
        let header = check_header(path, &hb[..n])?;
        let footer = read_footer(path, &file, len)?;
        if let Some((f, _)) = &footer {
            // SAFETY: sealed segments are never written or truncated again (only
            // unlinked, which keeps the mapping valid); every read through the mapping
            // is bounds-checked and every record is checksummed before it is handed out.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path, "map segment"))?;
            let summary = Summary {
                count: f.count,
                first_pos: f.first_pos,
                last_pos: f.last_pos,
                end_pos: f.end_pos,
                first_ts: f.first_ts,
                last_ts: f.last_ts,
                max_ts: f.max_ts,
                data_end: f.data_end,
                crc: f.data_crc,
            };
            if f.count > 0 && f.first_pos != header.base {
                return Err(corrupt(
                    path,
                    f.data_end + 16,
                    "footer first position is not the base",
                ));
            }
            let mut r = SegmentReader {
                path: path.to_path_buf(),
                bytes: Bytes::Map(map),
                header,
                footer,
                summary,
                index: Vec::new(),
                index_rebuilt: false,
            };
            r.load_index();
            Ok(r)
        } else {
            let scan = scan_file(path, &file, len, header.base, index::DEFAULT_INTERVAL)?;
            Ok(SegmentReader {
                path: path.to_path_buf(),
                bytes: Bytes::Owned(scan.bytes),
                header,
                footer: None,
                summary: scan.summary,
                index: scan.index,
                index_rebuilt: false,
            })
        }
    }

    fn load_index(&mut self) {
        let idx_path = self.path.with_extension("idx");
        let loaded = std::fs::read(&idx_path)
            .ok()
            .and_then(|b| index::parse(&b, self.header.base).ok())
            .filter(|entries| self.index_consistent(entries));
        match loaded {
            Some(e) => self.index = e,
            None => {
                self.index = self.rebuild_index(index::DEFAULT_INTERVAL);
                self.index_rebuilt = true;
            }
        }
    }

    /// Every entry points at a record with its position, in order, within the data.
    fn index_consistent(&self, entries: &[IndexEntry]) -> bool {
        if self.summary.count == 0 {
            return entries.is_empty();
        }
        if entries.first().map(|e| (e.offset, e.position))
            != Some((SEG_HEADER as u64, self.header.base))
        {
            return false;
        }
        let data = self.data();
        let mut prev: Option<&IndexEntry> = None;
        for e in entries {
            if let Some(p) = prev {
                if e.offset <= p.offset
                    || e.position <= p.position
                    || e.max_ts_before < p.max_ts_before
                {
                    return false;
                }
            }
            if e.offset >= self.summary.data_end || e.offset % RECORD_ALIGN != 0 {
                return false;
            }
            let at = e.offset as usize;
            let Some(w) = data.get(at..at + 8) else {
                return false;
            };
            if u64::from_le_bytes(w.try_into().unwrap_or_default()) != e.position | COMMITTED {
                return false;
            }
            prev = Some(e);
        }
        true
    }

    /// Rebuild the sparse index by reading every record (stops at the first bad one).
    pub fn rebuild_index(&self, interval: u64) -> Vec<IndexEntry> {
        let mut out = Vec::new();
        let mut last: Option<u64> = None;
        let mut max_ts = 0;
        let mut off = SEG_HEADER as u64;
        let mut min_pos = self.header.base;
        while let Ok(Some(r)) = self.record_at(off, min_pos) {
            if last.is_none_or(|l| r.offset - l >= interval) {
                out.push(IndexEntry::new(r.position, r.offset, max_ts));
                last = Some(r.offset);
            }
            max_ts = max_ts.max(r.timestamp);
            off = r.next_offset;
            min_pos = r.next_position;
        }
        out
    }

    /// The bytes of the records.
    fn data(&self) -> &[u8] {
        let s = self.bytes.as_slice();
        &s[..(self.summary.data_end as usize).min(s.len())]
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Position of the first record.
    pub fn base(&self) -> u64 {
        self.header.base
    }
    /// Whether the segment has a valid footer.
    pub fn sealed(&self) -> bool {
        self.footer.is_some()
    }
    /// The footer's (or for the tail, the scanned) record summary.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
    /// The schema stored in the footer (empty for raw topics or unsealed segments).
    pub fn schema_bytes(&self) -> &[u8] {
        self.footer.as_ref().map(|(_, s)| &s[..]).unwrap_or(&[])
    }
    /// The topic's event type id recorded in the header.
    pub fn type_id(&self) -> u64 {
        self.header.type_id
    }
    /// The sparse index in use.
    pub fn index(&self) -> &[IndexEntry] {
        &self.index
    }
    /// Whether the `.idx` file was missing or damaged and the index was rebuilt.
    pub fn index_rebuilt(&self) -> bool {
        self.index_rebuilt
    }

    /// The record at file offset `off` (`Ok(None)` at the end of the data). `min_pos`
    /// is the least position it may have (the previous record's next position).
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the bytes there are not a valid record.
    pub fn record_at(
        &self,
        off: u64,
        min_pos: u64,
    ) -> Result<Option<StoredRecord<'_>>, StoreError> {
        let data = self.data();
        if off >= data.len() as u64 {
            return Ok(None);
        }
        match decode(data, off as usize, 0, min_pos) {
            Decoded::Record(r) => Ok(Some(r)),
            Decoded::End => {
                if self.sealed() {
                    Err(corrupt(
                        &self.path,
                        off,
                        "zero record header inside a sealed segment",
                    ))
                } else {
                    Ok(None)
                }
            }
            Decoded::Bad(what) => Err(corrupt(&self.path, off, what)),
        }
    }

    /// The record at `off`, which an earlier [`SegmentReader::record_at`] validated:
    /// only the header fields are parsed again (bounds are still checked).
    pub(crate) fn validated_at(&self, off: u64) -> Option<StoredRecord<'_>> {
        let data = self.data();
        let at = off as usize;
        let h = data.get(at..at + RECORD_HEADER)?;
        let word = u64::from_le_bytes(h[0..8].try_into().ok()?);
        let len = u32::from_le_bytes(h[8..12].try_into().ok()?) as usize;
        let size = record_size(len);
        let position = word & !FLAG_MASK;
        Some(StoredRecord {
            position,
            timestamp: u64::from_le_bytes(h[24..32].try_into().ok()?),
            type_id: u64::from_le_bytes(h[16..24].try_into().ok()?),
            bytes: data.get(at + RECORD_HEADER..at + RECORD_HEADER + len)?,
            next_position: position + size,
            offset: off,
            next_offset: off + size,
        })
    }

    /// File offset of the first record with a position at or after `pos`
    /// (`Ok(None)`: every record here is before `pos`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a damaged record on the way.
    pub fn seek_position(&self, pos: u64) -> Result<Option<(u64, u64)>, StoreError> {
        let i = self.index.partition_point(|e| e.position <= pos);
        let (mut off, mut min) = if i == 0 {
            (SEG_HEADER as u64, self.header.base)
        } else {
            (self.index[i - 1].offset, self.index[i - 1].position)
        };
        while let Some(r) = self.record_at(off, min)? {
            if r.position >= pos {
                return Ok(Some((r.offset, r.position)));
            }
            off = r.next_offset;
            min = r.next_position;
        }
        Ok(None)
    }

    /// File offset and position of the first record (in log order) with a timestamp at
    /// or after `ts` (`Ok(None)`: none here).
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a damaged record on the way.
    pub fn seek_time(&self, ts: u64) -> Result<Option<(u64, u64)>, StoreError> {
        // `max_ts_before` never decreases: every record before an entry whose value
        // is below `ts` is older than `ts`.
        let i = self.index.partition_point(|e| e.max_ts_before < ts);
        let (mut off, mut min) = if i == 0 {
            (SEG_HEADER as u64, self.header.base)
        } else {
            (self.index[i - 1].offset, self.index[i - 1].position)
        };
        while let Some(r) = self.record_at(off, min)? {
            if r.timestamp >= ts {
                return Ok(Some((r.offset, r.position)));
            }
            off = r.next_offset;
            min = r.next_position;
        }
        Ok(None)
    }

    /// Iterate over the records from the start. Stops at the first damaged record,
    /// which it yields as an error.
    pub fn iter(&self) -> Records<'_> {
        Records {
            seg: self,
            off: SEG_HEADER as u64,
            min: self.header.base,
            done: false,
        }
    }

    /// Check every record and, for a sealed segment, the footer's count, positions and
    /// data checksum.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] with the offset of the first problem.
    pub fn verify(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        let mut crc = 0;
        let mut last = None;
        for r in self.iter() {
            let r = r?;
            crc =
                crc32c::crc32c_append(crc, &self.data()[r.offset as usize..r.next_offset as usize]);
            last = Some(r);
            n += 1;
        }
        if let Some((f, _)) = &self.footer {
            let end = last.map(|r| r.next_offset).unwrap_or(SEG_HEADER as u64);
            if end != f.data_end {
                return Err(corrupt(&self.path, end, "records end before the footer"));
            }
            if n != f.count
                || last.map(|r| (r.position, r.next_position))
                    != (n > 0).then_some((f.last_pos, f.end_pos))
            {
                return Err(corrupt(
                    &self.path,
                    f.data_end,
                    "footer disagrees with the records",
                ));
            }
            if crc != f.data_crc {
                return Err(corrupt(
                    &self.path,
                    f.data_end + 72,
                    "data checksum mismatch",
                ));
            }
        }
        Ok(n)
    }
}

/// Iterator over a segment's records.
pub struct Records<'a> {
    seg: &'a SegmentReader,
    off: u64,
    min: u64,
    done: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<StoredRecord<'a>, StoreError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.seg.record_at(self.off, self.min) {
            Ok(Some(r)) => {
                self.off = r.next_offset;
                self.min = r.next_position;
                Some(Ok(r))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
