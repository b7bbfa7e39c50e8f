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

//!
//! ## One type for the footer's content
//!
//! [`Summary`] is what a footer records, and the only type readers see: the recorder
//! and recovery keep it up to date record by record, [`Summary::seal_bytes`] encodes
//! it as the footer, and [`decode_footer`] gives it back. `FooterLayout`, private to
//! this module, is only the footer's byte layout (with the magic, the schema length,
//! the footer checksum and an unaligned smallest timestamp, none of which a reader
//! needs once the footer has been checked).

use std::path::{Path, PathBuf};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::crc::crc_combine;
use super::index;
use super::names::{idx_name, seg_name};
use super::validate::runs_by_structure;
use crate::ring::layout::{record_size, RECORD_ALIGN, RECORD_HEADER};
use crate::store::{io_err, StoreError};

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
pub(crate) const COMMITTED: u64 = 1;
/// The flag bits of a commit word.
pub(crate) const FLAG_MASK: u64 = RECORD_ALIGN - 1;

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

/// The byte layout of the fixed part of a sealed segment's footer (see the table
/// above). Only [`Summary::seal_bytes`] and [`decode_footer`] touch it.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct FooterLayout {
    magic: u64,
    count: u64,
    first_pos: u64,
    last_pos: u64,
    end_pos: u64,
    first_ts: u64,
    last_ts: u64,
    max_ts: u64,
    data_end: u64,
    data_crc: u32,
    schema_len: u32,
    footer_crc: u32,
    /// Little-endian, unaligned.
    min_ts_le: [u8; 8],
    reserved: [u8; 4],
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
    assert!(core::mem::size_of::<FooterLayout>() == FOOTER_SIZE);
    assert!(core::mem::offset_of!(FooterLayout, data_end) == 64);
    assert!(core::mem::offset_of!(FooterLayout, data_crc) == 72);
    assert!(core::mem::offset_of!(FooterLayout, schema_len) == 76);
    assert!(core::mem::offset_of!(FooterLayout, footer_crc) == 80);
    assert!(core::mem::offset_of!(FooterLayout, min_ts_le) == 84);
    assert!(core::mem::size_of::<Trailer>() == TRAILER_SIZE);
    assert!(SEG_HEADER as u64 % RECORD_ALIGN == 0);
};

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

/// A segment's records in summary: kept up to date as records are written or scanned,
/// and what a sealed segment's footer records (see [`Summary::seal_bytes`],
/// [`decode_footer`]).
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
        let mut f = FooterLayout {
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

/// Decode and check a footer: `bytes` runs from the footer's first byte to the
/// trailer (footer, then schema). Returns the summary and the schema.
///
/// # Errors
///
/// The offset in `bytes` and a description of the first problem: too short, bad
/// magic, schema length, footer checksum.
pub fn decode_footer(bytes: &[u8]) -> Result<(Summary, &[u8]), (u64, &'static str)> {
    let Ok((mut f, schema)) = FooterLayout::read_from_prefix(bytes) else {
        return Err((0, "footer truncated"));
    };
    if f.magic != FOOTER_MAGIC {
        return Err((0, "bad footer magic"));
    }
    if f.schema_len as usize != schema.len() {
        return Err((76, "footer schema length mismatch"));
    }
    let stored = f.footer_crc;
    f.footer_crc = 0;
    if crc32c::crc32c_append(crc32c::crc32c(f.as_bytes()), schema) != stored {
        return Err((80, "footer checksum mismatch"));
    }
    let sum = Summary {
        count: f.count,
        first_pos: f.first_pos,
        last_pos: f.last_pos,
        end_pos: f.end_pos,
        first_ts: f.first_ts,
        last_ts: f.last_ts,
        max_ts: f.max_ts,
        min_ts: u64::from_le_bytes(f.min_ts_le),
        data_end: f.data_end,
        crc: f.data_crc,
    };
    Ok((sum, schema))
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
/// writes reads back through [`SegmentReader`](crate::store::SegmentReader) exactly like a recorder's segment.
///
/// # Examples
///
/// ```
/// use shmbus::store::SegmentBuilder;
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
