//! Segment files: `<store>/<topic>/<base position as 20 digits>.seg`.
//!
//! All fields are little-endian. A segment is a header, the records, and (once sealed)
//! a footer and a trailer. Until it is sealed the file is preallocated: the records are
//! followed by zeros. The records are checksummed in runs by the segment's index (see
//! [`super::index`]) and, once sealed, as a whole by the footer.
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
//! The ring's records, byte for byte as they were in the ring (the recorder writes
//! them straight from the ring's mapping): header, payload, and the bytes up to the
//! next 64-byte boundary, which are whatever the ring held there (not necessarily zero).
//!
//! | offset | size | field                                                            |
//! |-------:|-----:|------------------------------------------------------------------|
//! |      0 |    8 | commit word: `position \| 1` (only data records are stored)     |
//! |      8 |    4 | payload length                                                   |
//! |     12 |    4 | reserved (zero in the ring)                                      |
//! |     16 |    8 | type id                                                          |
//! |     24 |    8 | producer timestamp, ns since the Unix epoch                      |
//! |     32 |  len | payload                                                          |
//!
//! Positions strictly increase. Inside one index run they are consecutive (each record
//! at the position after the previous one); between runs they may jump, because the
//! ring's padding and gap records are not stored.
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
//! |     84 |    8 | smallest timestamp (0: not recorded, as in older files) |
//! |     92 |    4 | reserved, zero                                          |
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
use std::sync::atomic::{AtomicBool, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::index::{self, IndexEntry};
use super::{io_err, StoreError};
use crate::ring::layout::{record_size, RECORD_ALIGN, RECORD_HEADER};

/// `b"SHMBSEG\0"` as a little-endian u64.
pub const SEG_MAGIC: u64 = u64::from_le_bytes(*b"SHMBSEG\0");
/// The segment format version.
pub const SEG_VERSION: u32 = 2;
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
    /// Smallest timestamp in the segment, little-endian, unaligned (see
    /// [`Footer::min_ts`]).
    pub min_ts_le: [u8; 8],
    /// Zero.
    pub reserved: [u8; 4],
}

impl Footer {
    /// Smallest timestamp in the segment (0 in footers written before it was kept:
    /// readers then know nothing of it).
    pub fn min_ts(&self) -> u64 {
        u64::from_le_bytes(self.min_ts_le)
    }
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

/// Encode a record as the ring holds it (header with a zero reserved word, payload,
/// zero padding). Appends `record_size(payload.len())` bytes to `out`. The recorder uses
/// it for lossy topics, whose records it must copy out of the ring and re-validate.
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
    /// A structurally valid record.
    Record(StoredRecord<'a>),
    /// A zero commit word or too few bytes for a header: the clean end of the data.
    End,
    /// Something that is not a valid record.
    Bad(&'static str),
}

/// Decode the record header at `buf[at..limit]` (the file offset of `buf[0]` is
/// `base_off`). With `expect` the record must be at exactly that position (inside a
/// run), else at `min_pos` or later. Checks the structure only: commit word, length
/// bounds, position; checksums are the caller's (per run).
#[inline]
pub fn decode(
    buf: &[u8],
    at: usize,
    limit: usize,
    base_off: u64,
    min_pos: u64,
    expect: Option<u64>,
) -> Decoded<'_> {
    let limit = limit.min(buf.len());
    let Some(rest) = buf.get(at..limit) else {
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
    if let Some(e) = expect {
        if position != e {
            return Decoded::Bad("position is not the one after the previous record");
        }
    } else if position < min_pos {
        return Decoded::Bad("position does not increase");
    }
    let len = u32::from_le_bytes(rest[8..12].try_into().unwrap_or_default()) as usize;
    let size = record_size(len);
    if size > rest.len() as u64 {
        return Decoded::Bad("record extends past the end of its run");
    }
    if position.checked_add(size).is_none() {
        return Decoded::Bad("position of the next record overflows");
    }
    let offset = base_off + at as u64;
    Decoded::Record(StoredRecord {
        position,
        timestamp: u64::from_le_bytes(rest[24..32].try_into().unwrap_or_default()),
        type_id: u64::from_le_bytes(rest[16..24].try_into().unwrap_or_default()),
        bytes: &rest[RECORD_HEADER..RECORD_HEADER + len],
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
    /// Smallest timestamp (0 when unknown or empty).
    pub min_ts: u64,
    /// File offset after the last record.
    pub data_end: u64,
    /// crc32c of the records (see [`Summary::add_crc`]).
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

    /// Account for a record of `size` stored bytes (its checksum goes in with its run).
    pub fn add(&mut self, position: u64, timestamp: u64, size: u64) {
        if self.count == 0 {
            self.first_pos = position;
            self.first_ts = timestamp;
            self.min_ts = timestamp;
        }
        self.min_ts = self.min_ts.min(timestamp);
        self.count += 1;
        self.last_pos = position;
        self.last_ts = timestamp;
        self.max_ts = self.max_ts.max(timestamp);
        self.end_pos = position + size;
        self.data_end += size;
    }

    /// Fold the checksum of the next `len` bytes of the data into the data checksum.
    pub fn add_crc(&mut self, crc: u32, len: u64) {
        self.crc = crc_combine(self.crc, crc, len);
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
            min_ts_le: self.min_ts.to_le_bytes(),
            reserved: [0; 4],
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
        created_ns: crate::sys::os::now_ns(),
        type_id,
        fingerprint,
        reserved: [0; 16],
    };
    let mut out = [0u8; SEG_HEADER];
    out.copy_from_slice(h.as_bytes());
    out
}

/// Builds a sealed segment and its index in memory with the store's own encoding, for
/// programs that write a store without a ring (benchmarks, test fixtures): the records
/// as the ring holds them ([`encode_record`]), runs cut the way a rebuilt index cuts
/// them (at position jumps and every `interval` bytes, [`index::DEFAULT_INTERVAL`] by
/// default) with their checksums, and the footer with the data checksum. What it
/// writes reads back through [`SegmentReader`] exactly like a recorder's segment.
///
/// # Examples
///
/// ```
/// use shmbus::store::segment::SegmentBuilder;
///
/// let dir = std::env::temp_dir().join(format!("shmbus-doc-builder-{}", std::process::id()));
/// let mut b = SegmentBuilder::new(0, 0, 0);
/// assert_eq!(b.push(1_000, 7, b"first"), 0);
/// assert_eq!(b.push(2_000, 7, b"second"), 64);
/// b.skip_to(256); // a gap, as the ring's padding records leave
/// assert_eq!(b.push(3_000, 7, b"third"), 256);
/// let path = b.write(&dir, &[])?;
/// let seg = shmbus::store::SegmentReader::open(&path)?;
/// assert_eq!(seg.verify()?, 3);
/// assert_eq!(seg.index().len(), 2); // two runs: the gap splits them
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentBuilder {
    base: u64,
    next: u64,
    interval: u64,
    data: Vec<u8>,
}

impl SegmentBuilder {
    /// A segment whose first record will be at `base` (64-byte aligned), of a topic
    /// with event type id `type_id` and schema fingerprint `fingerprint` (0 and 0 for
    /// raw bytes).
    ///
    /// # Panics
    ///
    /// If `base` is not a multiple of 64.
    pub fn new(base: u64, type_id: u64, fingerprint: u64) -> SegmentBuilder {
        assert!(
            base % RECORD_ALIGN == 0,
            "base {base} is not 64-byte aligned"
        );
        SegmentBuilder {
            base,
            next: base,
            interval: index::DEFAULT_INTERVAL,
            data: header_bytes(base, type_id, fingerprint).to_vec(),
        }
    }

    /// Cut runs once they are `interval` bytes long (default
    /// [`index::DEFAULT_INTERVAL`]).
    pub fn with_interval(mut self, interval: u64) -> SegmentBuilder {
        self.interval = interval.max(RECORD_ALIGN);
        self
    }

    /// Append a record at the next position; returns its position.
    pub fn push(&mut self, timestamp: u64, type_id: u64, payload: &[u8]) -> u64 {
        let position = self.next;
        encode_record(&mut self.data, position, timestamp, type_id, payload);
        self.next = position + record_size(payload.len());
        position
    }

    /// Leave the positions up to `position` out (as the ring's padding and gap records
    /// are); the next record is at `position`.
    ///
    /// # Panics
    ///
    /// If `position` is before the next position or not 64-byte aligned.
    pub fn skip_to(&mut self, position: u64) {
        assert!(
            position >= self.next && position % RECORD_ALIGN == 0,
            "cannot skip to position {position} from {}",
            self.next
        );
        self.next = position;
    }

    /// The position the next record gets (the next segment's base once this one is
    /// finished).
    pub fn next_position(&self) -> u64 {
        self.next
    }

    /// Bytes so far: the segment header and the records.
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.data.len() == SEG_HEADER
    }

    /// The sealed segment file (footer with `schema`, the topic's encoded schema or
    /// empty for raw topics) and its index file.
    pub fn finish(self, schema: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut data = self.data;
        let (runs, sum, problem) = runs_by_structure(&data, data.len(), self.base, self.interval);
        debug_assert!(problem.is_none(), "{problem:?}");
        debug_assert_eq!(sum.data_end, data.len() as u64);
        data.extend_from_slice(&sum.seal_bytes(schema));
        (data, index::encode(self.base, &runs))
    }

    /// [`SegmentBuilder::finish`] and write the two files into the topic directory
    /// `dir` (created if missing) as `<base>.seg` and `<base>.idx`; returns the
    /// segment's path.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if a file cannot be written.
    pub fn write(self, dir: &Path, schema: &[u8]) -> Result<PathBuf, StoreError> {
        let base = self.base;
        let (seg, idx) = self.finish(schema);
        std::fs::create_dir_all(dir).map_err(io_err(dir, "create store directory"))?;
        let idx_path = dir.join(idx_name(base));
        std::fs::write(&idx_path, idx).map_err(io_err(&idx_path, "write index"))?;
        let path = dir.join(seg_name(base));
        std::fs::write(&path, seg).map_err(io_err(&path, "write segment"))?;
        Ok(path)
    }
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

/// Walk the records of `data` (a segment's bytes from offset 0) from the header to
/// `end` by their structure alone, and cut them into runs the way the recorder does: at
/// position jumps and once a run is `interval` bytes long. Returns the runs with their
/// checksums, the summary, and what stopped the walk unless it was a clean end (a zero
/// commit word or `end`).
#[allow(clippy::type_complexity)]
pub(crate) fn runs_by_structure(
    data: &[u8],
    end: usize,
    base: u64,
    interval: u64,
) -> (Vec<IndexEntry>, Summary, Option<(u64, &'static str)>) {
    let end = end.min(data.len());
    let mut sum = Summary::new();
    let mut runs: Vec<IndexEntry> = Vec::new();
    let mut cur: Option<IndexEntry> = None;
    let mut at = SEG_HEADER;
    let mut min_pos = base;
    let close = |cur: &mut Option<IndexEntry>, runs: &mut Vec<IndexEntry>, sum: &mut Summary| {
        if let Some(r) = cur.take() {
            let e = IndexEntry::new(r.position, r.offset, r.max_ts_before, r.len, r.data_crc);
            sum.add_crc(e.data_crc, e.len as u64);
            runs.push(e);
        }
    };
    let problem = loop {
        match decode(data, at, end, 0, min_pos, None) {
            Decoded::Record(r) => {
                if sum.count == 0 && r.position != base {
                    break Some((at as u64, "first record is not at the base position"));
                }
                let size = r.next_offset - r.offset;
                let split = cur.as_ref().is_some_and(|c| {
                    c.position + c.len as u64 != r.position
                        || c.len as u64 >= interval
                        || c.len as u64 + size > u32::MAX as u64
                });
                if split {
                    close(&mut cur, &mut runs, &mut sum);
                }
                let c = cur.get_or_insert(IndexEntry {
                    position: r.position,
                    offset: r.offset,
                    max_ts_before: sum.max_ts,
                    len: 0,
                    data_crc: 0,
                    crc: 0,
                    reserved: 0,
                });
                c.len += size as u32;
                let bytes = &data[at..r.next_offset as usize];
                c.data_crc = crc32c::crc32c_append(c.data_crc, bytes);
                sum.add(r.position, r.timestamp, size);
                min_pos = r.next_position;
                at = r.next_offset as usize;
            }
            Decoded::End => break None,
            Decoded::Bad(what) => break Some((at as u64, what)),
        }
    };
    close(&mut cur, &mut runs, &mut sum);
    (runs, sum, problem)
}

/// Check the run `e` of `data` (a segment's bytes from offset 0): its checksum, then
/// that its records tile it with consecutive positions. Adds them to `sum`.
pub(crate) fn check_run(
    data: &[u8],
    e: &IndexEntry,
    sum: &mut Summary,
) -> Result<(), (u64, &'static str)> {
    let (off, end) = (e.offset as usize, e.end() as usize);
    if e.len == 0 || e.len as u64 % RECORD_ALIGN != 0 || e.offset % RECORD_ALIGN != 0 {
        return Err((e.offset, "index run has a bad length or offset"));
    }
    let Some(bytes) = data.get(off..end) else {
        return Err((e.offset, "index run extends past the data"));
    };
    if crc32c::crc32c(bytes) != e.data_crc {
        return Err((e.offset, "run checksum mismatch"));
    }
    let mut at = off;
    let mut expect = e.position;
    while at < end {
        match decode(data, at, end, 0, 0, Some(expect)) {
            Decoded::Record(r) => {
                sum.add(r.position, r.timestamp, r.next_offset - r.offset);
                expect = r.next_position;
                at = r.next_offset as usize;
            }
            Decoded::End => return Err((at as u64, "zero record header inside a run")),
            Decoded::Bad(what) => return Err((at as u64, what)),
        }
    }
    sum.add_crc(e.data_crc, e.len as u64);
    Ok(())
}

/// The reflected CRC-32C polynomial.
const CRC32C_POLY: u32 = 0x82f6_3b78;

/// `a * b` modulo the CRC-32C polynomial (reflected bit order: bit 31 is `x^0`).
fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                return p;
            }
        }
        m >>= 1;
        if m == 0 {
            return p;
        }
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC32C_POLY
        } else {
            b >> 1
        };
    }
}

/// `x^(8 * len)` modulo the polynomial: the operator that shifts a CRC past `len`
/// bytes.
fn shift_op(len: u64) -> u32 {
    // x^(2^k) for k = 3 (one byte) upwards, by repeated squaring.
    let mut sq = 1u32 << 30; // x^1
    for _ in 0..3 {
        sq = multmodp(sq, sq);
    }
    let mut p = 1u32 << 31; // x^0
    let mut n = len;
    while n != 0 {
        if n & 1 != 0 {
            p = multmodp(sq, p);
        }
        sq = multmodp(sq, sq);
        n >>= 1;
    }
    p
}

/// The crc32c of `A ++ B` from `crc32c(A)`, `crc32c(B)` and `B`'s length, as zlib's
/// `crc32_combine` does it. The shift operators of the run lengths the recorder
/// writes (multiples of 64 up to 64 KiB) are cached, so combining costs one
/// multiplication (`crc32c::crc32c_combine` recomputes them, which costs more than
/// checksumming the run again).
pub(crate) fn crc_combine(crc1: u32, crc2: u32, len2: u64) -> u32 {
    const CACHED: usize = 1024;
    static OPS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    let op = if len2 % 64 == 0 && ((len2 / 64) as usize) < CACHED {
        OPS.get_or_init(|| (0..CACHED as u64).map(|i| shift_op(i * 64)).collect())
            [(len2 / 64) as usize]
    } else {
        shift_op(len2)
    };
    multmodp(op, crc1) ^ crc2
}

/// Check `entries` (an index) against `data` (a segment's bytes from offset 0) in
/// order, stopping at the first run that is not valid: the runs must tile the data
/// from the header on, start at `base`, move forward, carry the running maximum
/// timestamp, and verify ([`check_run`]). Returns the number of valid runs, their
/// summary, and the problem that stopped the check.
pub(crate) fn check_runs(
    data: &[u8],
    entries: &[IndexEntry],
    base: u64,
) -> (usize, Summary, Option<(u64, &'static str)>) {
    let mut sum = Summary::new();
    for (i, e) in entries.iter().enumerate() {
        let problem = if e.offset != sum.data_end {
            Some((
                sum.data_end,
                "index run does not start where the previous one ended",
            ))
        } else if (sum.count == 0 && e.position != base)
            || (sum.count > 0 && e.position < sum.end_pos)
        {
            Some((e.offset, "index run position does not move forward"))
        } else if e.max_ts_before != sum.max_ts {
            Some((e.offset, "index run timestamp disagrees with the records"))
        } else {
            let mut next = sum;
            match check_run(data, e, &mut next) {
                Ok(()) => {
                    sum = next;
                    None
                }
                Err(p) => Some(p),
            }
        };
        if problem.is_some() {
            return (i, sum, problem);
        }
    }
    (entries.len(), sum, None)
}

/// Read the valid prefix of an unsealed segment with `pread`: the runs of its index
/// that verify, in order. Records after the last verified run are not part of it
/// (their batch was never committed, or was torn). Without a readable index the
/// records are kept by their structure alone and the scan says so (`unverified`).
pub(crate) fn scan_file(
    path: &Path,
    file: &File,
    len: u64,
    base: u64,
    interval: u64,
) -> Result<Scan, StoreError> {
    let idx = std::fs::read(path.with_extension("idx")).ok();
    let parsed = match idx.as_deref() {
        // Created, header not written yet (only after a crash): no run is covered.
        Some([]) => Some((Vec::new(), None)),
        Some(b) => index::parse_prefix(b, base).ok(),
        None => None,
    };
    let Some((entries, _)) = parsed else {
        // No usable index: the structure is all there is to go by.
        let mut buf = vec![0u8; len as usize];
        let n = read_at_most(file, &mut buf, 0).map_err(io_err(path, "read segment"))?;
        buf.truncate(n);
        let (runs, sum, problem) = runs_by_structure(&buf, n, base, interval);
        buf.truncate(sum.data_end as usize);
        return Ok(Scan {
            bytes: buf,
            summary: sum,
            index: runs,
            problem,
            unverified: true,
        });
    };
    // Read up to the end of the last run, plus one record header to see whether
    // records follow that no run covers.
    let want = entries
        .iter()
        .map(|e| e.end())
        .max()
        .unwrap_or(SEG_HEADER as u64)
        .max(SEG_HEADER as u64)
        + RECORD_HEADER as u64;
    let mut buf = vec![0u8; want.min(len) as usize];
    let n = read_at_most(file, &mut buf, 0).map_err(io_err(path, "read segment"))?;
    buf.truncate(n);
    let (ok, sum, mut problem) = check_runs(&buf, &entries, base);
    let end = sum.data_end as usize;
    if problem.is_none()
        && buf
            .get(end..end + 8)
            .is_some_and(|w| w.iter().any(|&b| b != 0))
    {
        problem = Some((
            end as u64,
            "records not covered by the index (their batch was never committed)",
        ));
    }
    buf.truncate(end);
    let mut index = entries;
    index.truncate(ok);
    Ok(Scan {
        bytes: buf,
        summary: sum,
        index,
        problem,
        unverified: false,
    })
}

/// The result of [`scan_file`].
pub(crate) struct Scan {
    /// The valid prefix, header included.
    pub bytes: Vec<u8>,
    /// Its records.
    pub summary: Summary,
    /// Its runs.
    pub index: Vec<IndexEntry>,
    /// Offset and description of what stopped the scan, unless a clean end.
    pub problem: Option<(u64, &'static str)>,
    /// No index vouched for the records: they were kept by their structure alone.
    pub unverified: bool,
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
/// the unsealed tail is read up to its last verified run.
///
/// Each run of records is checked against its checksum the first time a record in it
/// is read, so a record handed out has always been verified.
pub struct SegmentReader {
    path: PathBuf,
    bytes: Bytes,
    header: SegHeader,
    footer: Option<(Footer, Vec<u8>)>,
    summary: Summary,
    index: Vec<IndexEntry>,
    checked: Vec<AtomicBool>,
    index_rebuilt: bool,
    unverified: bool,
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
    /// memory if missing or damaged, once the footer's checksum of the data verifies).
    /// Runs of records are checked as they are read; [`SegmentReader::verify`] checks
    /// them all.
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
            // is bounds-checked and every run is checksummed before a record in it is
            // handed out.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path, "map segment"))?;
            let summary = Summary {
                count: f.count,
                first_pos: f.first_pos,
                last_pos: f.last_pos,
                end_pos: f.end_pos,
                first_ts: f.first_ts,
                last_ts: f.last_ts,
                max_ts: f.max_ts,
                min_ts: f.min_ts(),
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
                checked: Vec::new(),
                index_rebuilt: false,
                unverified: false,
            };
            r.load_index()?;
            Ok(r)
        } else {
            let scan = scan_file(path, &file, len, header.base, index::DEFAULT_INTERVAL)?;
            let checked = scan.index.iter().map(|_| AtomicBool::new(true)).collect();
            Ok(SegmentReader {
                path: path.to_path_buf(),
                bytes: Bytes::Owned(scan.bytes),
                header,
                footer: None,
                summary: scan.summary,
                index: scan.index,
                checked,
                index_rebuilt: scan.unverified,
                unverified: scan.unverified,
            })
        }
    }

    fn load_index(&mut self) -> Result<(), StoreError> {
        let idx_path = self.path.with_extension("idx");
        let loaded = std::fs::read(&idx_path)
            .ok()
            .and_then(|b| index::parse(&b, self.header.base).ok())
            .filter(|entries| self.index_consistent(entries));
        match loaded {
            Some(e) => {
                self.checked = e.iter().map(|_| AtomicBool::new(false)).collect();
                self.index = e;
            }
            None => {
                // Rebuild from the data, which only the footer's checksum vouches for.
                let data = self.data();
                let crc = crc32c::crc32c(data.get(SEG_HEADER..).unwrap_or_default());
                if crc != self.summary.crc {
                    return Err(corrupt(
                        &self.path,
                        self.summary.data_end + 72,
                        "data checksum mismatch (and the index is missing or damaged)",
                    ));
                }
                let end = data.len();
                let (runs, sum, problem) =
                    runs_by_structure(data, end, self.header.base, index::DEFAULT_INTERVAL);
                if let Some((off, what)) = problem {
                    return Err(corrupt(&self.path, off, what));
                }
                if sum.data_end != self.summary.data_end || sum.count != self.summary.count {
                    return Err(corrupt(
                        &self.path,
                        sum.data_end,
                        "footer disagrees with the records",
                    ));
                }
                self.checked = runs.iter().map(|_| AtomicBool::new(true)).collect();
                self.index = runs;
                self.index_rebuilt = true;
            }
        }
        Ok(())
    }

    /// The runs tile the data in order, each starting at a record with its position.
    fn index_consistent(&self, entries: &[IndexEntry]) -> bool {
        if self.summary.count == 0 {
            return entries.is_empty();
        }
        let data = self.data();
        let mut at = SEG_HEADER as u64;
        let mut prev: Option<&IndexEntry> = None;
        for e in entries {
            if e.offset != at || e.len == 0 || e.len as u64 % RECORD_ALIGN != 0 {
                return false;
            }
            match prev {
                None if e.position != self.header.base => return false,
                Some(p)
                    if e.position < p.position + p.len as u64
                        || e.max_ts_before < p.max_ts_before =>
                {
                    return false
                }
                _ => {}
            }
            let o = e.offset as usize;
            let Some(w) = data.get(o..o + 8) else {
                return false;
            };
            if u64::from_le_bytes(w.try_into().unwrap_or_default()) != e.position | COMMITTED {
                return false;
            }
            at = e.end();
            prev = Some(e);
        }
        at == self.summary.data_end
    }

    /// Rebuild the index (runs of at most `interval` bytes) by walking the records'
    /// structure (stops at the first bad one). The checksums are of the bytes as they
    /// are: check the data first ([`SegmentReader::verify`]).
    pub fn rebuild_index(&self, interval: u64) -> Vec<IndexEntry> {
        let data = self.data();
        runs_by_structure(data, data.len(), self.header.base, interval).0
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
    /// The index (runs) in use.
    pub fn index(&self) -> &[IndexEntry] {
        &self.index
    }
    /// Whether the `.idx` file was missing or damaged and the index was rebuilt.
    pub fn index_rebuilt(&self) -> bool {
        self.index_rebuilt
    }
    /// Whether this unsealed segment had no usable index, so its records were checked
    /// by their structure only (no checksum vouches for them).
    pub fn unverified(&self) -> bool {
        self.unverified
    }

    /// Verify run `i` once (its checksum and its records' structure). The flag it
    /// sets is shared with [`Run::verify`], which checks the checksum alone: every
    /// record handed out has its own structure checked when it is decoded.
    fn check_run(&self, i: usize) -> Result<(), StoreError> {
        if self.checked[i].load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut sum = Summary::new();
        check_run(self.data(), &self.index[i], &mut sum)
            .map_err(|(off, what)| corrupt(&self.path, off, what))?;
        self.checked[i].store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The record at file offset `off` (`Ok(None)` at the end of the data). `min_pos`
    /// is the least position it may have (the previous record's next position).
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the bytes there are not a valid record or its run
    /// does not verify.
    pub fn record_at(
        &self,
        off: u64,
        min_pos: u64,
    ) -> Result<Option<StoredRecord<'_>>, StoreError> {
        let data = self.data();
        if off >= data.len() as u64 {
            return Ok(None);
        }
        let i = self.index.partition_point(|e| e.offset <= off);
        let Some(e) = i.checked_sub(1).map(|i| self.index[i]) else {
            return Err(corrupt(&self.path, off, "offset before the first run"));
        };
        if off >= e.end() {
            return Err(corrupt(&self.path, off, "offset outside the index runs"));
        }
        self.check_run(i - 1)?;
        let expect = e.position + (off - e.offset);
        match decode(
            data,
            off as usize,
            e.end() as usize,
            0,
            min_pos,
            Some(expect),
        ) {
            Decoded::Record(r) if r.position >= min_pos => Ok(Some(r)),
            Decoded::Record(_) => Err(corrupt(&self.path, off, "position does not increase")),
            Decoded::End => Err(corrupt(&self.path, off, "zero record header inside a run")),
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

    /// Run `i` of the index in use, for readers that walk a run's records themselves
    /// and checksum only the runs whose payloads they read (see [`Run`]); `None` past
    /// the last run.
    pub fn run(&self, i: usize) -> Option<Run<'_>> {
        let entry = *self.index.get(i)?;
        Some(Run {
            seg: self,
            i,
            entry,
        })
    }

    /// The number of the run that holds file offset `off`, if one does.
    pub fn run_at(&self, off: u64) -> Option<usize> {
        let i = self
            .index
            .partition_point(|e| e.offset <= off)
            .checked_sub(1)?;
        (off < self.index[i].end()).then_some(i)
    }

    /// File offset and position of the first record with a position at or after
    /// `pos` (`Ok(None)`: every record here is before `pos`).
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

    /// Check every run (checksum and records) and, for a sealed segment, the footer's
    /// count, positions and data checksum. Returns the number of records.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] with the offset of the first problem.
    pub fn verify(&self) -> Result<u64, StoreError> {
        let (ok, sum, problem) = check_runs(self.data(), &self.index, self.header.base);
        if let Some((off, what)) = problem {
            return Err(corrupt(&self.path, off, what));
        }
        for c in &self.checked[..ok] {
            c.store(true, Ordering::Relaxed);
        }
        if sum.data_end != self.summary.data_end {
            return Err(corrupt(
                &self.path,
                sum.data_end,
                "records end before the footer",
            ));
        }
        if let Some((f, _)) = &self.footer {
            if sum.count != f.count
                || (sum.count > 0 && (sum.last_pos, sum.end_pos) != (f.last_pos, f.end_pos))
            {
                return Err(corrupt(
                    &self.path,
                    f.data_end,
                    "footer disagrees with the records",
                ));
            }
            if sum.crc != f.data_crc {
                return Err(corrupt(
                    &self.path,
                    f.data_end + 72,
                    "data checksum mismatch",
                ));
            }
        }
        Ok(sum.count)
    }
}

/// One run of a segment's index (records with consecutive positions and one crc32c),
/// for readers that walk the records themselves and checksum only what they use, such
/// as the query engine. ([`SegmentReader::record_at`] does both for every record.)
///
/// - [`Run::records_from`] checks each record's **structure** as it goes: its commit
///   word is `position | 1` at exactly the position the run's layout gives
///   (consecutive from the run's first record) and its length keeps it inside the run.
///   That is all a reader of header fields alone may rely on: no checksum covers them
///   until the run is verified.
/// - [`Run::verify`] checks the run's crc32c from the index (once per reader; the
///   result is shared with [`SegmentReader::record_at`]). Call it before using any
///   payload of the run.
///
/// Runs of an [`unverified`](SegmentReader::unverified) segment (an unsealed segment
/// whose index was missing) were cut from the records' structure and carry checksums
/// of the bytes as they were read: they count as verified and vouch for nothing.
///
/// # Examples
///
/// ```
/// use shmbus::store::segment::SegmentBuilder;
///
/// let dir = std::env::temp_dir().join(format!("shmbus-doc-run-{}", std::process::id()));
/// let mut b = SegmentBuilder::new(0, 0, 0);
/// for i in 0..100u64 {
///     b.push(i, 1, &i.to_le_bytes());
/// }
/// let seg = shmbus::store::SegmentReader::open(&b.write(&dir, &[])?)?;
/// let mut sum = 0;
/// for i in 0..seg.index().len() {
///     let run = seg.run(i).unwrap();
///     run.verify()?; // before reading payloads
///     for rec in run.records() {
///         sum += u64::from_le_bytes(rec?.bytes.try_into()?);
///     }
/// }
/// assert_eq!(sum, 4950);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    seg: &'a SegmentReader,
    i: usize,
    entry: IndexEntry,
}

impl<'a> Run<'a> {
    /// Its index entry.
    pub fn entry(&self) -> &IndexEntry {
        &self.entry
    }

    /// Whether its checksum has been verified (see [`Run`] for unverified segments).
    #[inline]
    pub fn is_verified(&self) -> bool {
        self.seg.checked[self.i].load(Ordering::Relaxed)
    }

    /// Check the run's bytes against the crc32c in the index, unless that was done
    /// already.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] at the run's offset: `run checksum mismatch`.
    pub fn verify(&self) -> Result<(), StoreError> {
        if self.is_verified() {
            return Ok(());
        }
        let e = &self.entry;
        let Some(bytes) = self.seg.data().get(e.offset as usize..e.end() as usize) else {
            return Err(corrupt(
                &self.seg.path,
                e.offset,
                "index run extends past the data",
            ));
        };
        if crc32c::crc32c(bytes) != e.data_crc {
            return Err(corrupt(&self.seg.path, e.offset, "run checksum mismatch"));
        }
        self.seg.checked[self.i].store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Its records, structure-checked (not checksummed, see [`Run`]).
    pub fn records(&self) -> RunRecords<'a> {
        self.records_from(self.entry.offset)
    }

    /// Its records from file offset `off` (the offset of one of them, as
    /// [`SegmentReader::seek_position`] returns), structure-checked.
    pub fn records_from(&self, off: u64) -> RunRecords<'a> {
        let e = &self.entry;
        let off = off.clamp(e.offset, e.end());
        RunRecords {
            path: &self.seg.path,
            data: self.seg.data(),
            at: off as usize,
            end: e.end() as usize,
            expect: e.position + (off - e.offset),
        }
    }
}

/// Iterator over a run's records from [`Run::records_from`]. Stops after the first
/// damaged record, which it yields as [`StoreError::Corrupt`] with its offset.
#[derive(Debug, Clone)]
pub struct RunRecords<'a> {
    path: &'a Path,
    data: &'a [u8],
    at: usize,
    end: usize,
    expect: u64,
}

impl<'a> Iterator for RunRecords<'a> {
    type Item = Result<StoredRecord<'a>, StoreError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let at = self.at;
        let what = match decode(self.data, at, self.end, 0, 0, Some(self.expect)) {
            Decoded::Record(r) => {
                self.at = r.next_offset as usize;
                self.expect = r.next_position;
                return Some(Ok(r));
            }
            Decoded::End => "zero record header inside a run",
            Decoded::Bad(what) => what,
        };
        self.at = self.end;
        Some(Err(corrupt(self.path, at as u64, what)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shmbus-seg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn runs_check_structure_as_they_go_and_checksums_on_demand() {
        let dir = temp_dir("runs");
        let mut b = SegmentBuilder::new(0, 9, 0);
        for i in 0..200u64 {
            b.push(1000 + i, 9, &[i as u8; 80]);
        }
        let path = b.write(&dir, &[]).unwrap();
        let seg = SegmentReader::open(&path).unwrap();
        assert_eq!(seg.verify().unwrap(), 200);
        assert!(seg.index().len() > 1);
        let all: Vec<u64> = (0..seg.index().len())
            .flat_map(|i| seg.run(i).unwrap().records().map(|r| r.unwrap().position))
            .collect();
        assert_eq!(all, (0..200).map(|i| i * 128).collect::<Vec<_>>());
        // From a record inside the second run.
        let e = seg.index()[1];
        let i = seg.run_at(e.offset + 128).unwrap();
        assert_eq!(i, 1);
        let first = seg.run(i).unwrap().records_from(e.offset + 128).next();
        assert_eq!(first.unwrap().unwrap().position, e.position + 128);
        assert_eq!(seg.run_at(seg.summary().data_end), None);

        // A flipped payload byte: the structure walk passes, the run's checksum not.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = (e.offset + 128) as usize;
        bytes[at + 40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let seg = SegmentReader::open(&path).unwrap();
        let run = seg.run(1).unwrap();
        assert!(!run.is_verified());
        assert!(run.records().all(|r| r.is_ok()));
        match run.verify() {
            Err(StoreError::Corrupt { offset, what, .. }) => {
                assert_eq!((offset, what.as_str()), (e.offset, "run checksum mismatch"))
            }
            other => panic!("{other:?}"),
        }
        assert!(seg.run(0).unwrap().verify().is_ok());

        // A broken commit word: the structure walk stops there.
        bytes[at] = 0x02;
        std::fs::write(&path, &bytes).unwrap();
        let seg = SegmentReader::open(&path).unwrap();
        let err = seg.run(1).unwrap().records().find_map(|r| r.err());
        match err {
            Some(StoreError::Corrupt { offset, what, .. }) => assert_eq!(
                (offset, what.as_str()),
                (at as u64, "commit word is not a committed data record")
            ),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn crc_combine_matches_a_single_pass() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for split in [0, 1, 63, 64, 1000, 4096, 4999, 5000] {
            let (a, b) = data.split_at(split);
            let c = super::crc_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len() as u64);
            assert_eq!(c, crc32c::crc32c(&data), "split at {split}");
        }
    }
}
