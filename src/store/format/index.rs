//! Segment indexes: `<base position as 20 digits>.idx` next to each segment.
//!
//! The index is a list of **runs** that tile the segment's data from offset 64 to its
//! end: each run is a stretch of records with consecutive positions, written from one
//! contiguous range of the ring, and carries the crc32c of its bytes. The records
//! themselves are stored byte for byte as they were in the ring, so these checksums
//! (and the footer's checksum of all the data) are what detect damage.
//!
//! The recorder closes a run at the end of every batch it writes, where positions
//! jump (the ring's padding and gap records are not stored), where the ring wraps, and
//! once the run is [`DEFAULT_INTERVAL`] bytes long, so the index also serves seeking by
//! position or time: a binary search, then a scan of a few KiB. The recorder commits
//! a batch's position in the ring only once both its data and its index entries are
//! written, so every committed record is covered by a checksum.
//!
//! ## Header (32 bytes)
//!
//! | offset | size | field                             |
//! |-------:|-----:|-----------------------------------|
//! |      0 |    8 | magic `b"SHMBIDX\0"`               |
//! |      8 |    4 | format version ([`IDX_VERSION`])  |
//! |     12 |    4 | entry size (40)                   |
//! |     16 |    8 | base position of the segment      |
//! |     24 |    8 | reserved, zero                    |
//!
//! ## Entry (40 bytes each, after the header): one run
//!
//! | offset | size | field                                                          |
//! |-------:|-----:|----------------------------------------------------------------|
//! |      0 |    8 | position of the run's first record                             |
//! |      8 |    8 | file offset of the run in the segment                          |
//! |     16 |    8 | largest timestamp of the records before the run in the segment |
//! |     24 |    4 | run length in bytes (whole records)                            |
//! |     28 |    4 | crc32c of the run's bytes                                      |
//! |     32 |    4 | crc32c of bytes 0..32 of this entry                            |
//! |     36 |    4 | reserved, zero                                                 |
//!
//! Producer timestamps are only nearly ordered in a multi-producer log, so the entry
//! carries the running maximum, which never decreases: seeking to the first record
//! with a timestamp at or after `t` starts at the last entry whose maximum is below
//! `t` and is exact.
//!
//! A sealed segment's index can be rebuilt from its data once the footer's checksum
//! of the data verifies. An unsealed segment's index is what vouches for its records:
//! recovery keeps only the runs it covers (see [`crate::store::recovery`]).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `b"SHMBIDX\0"` as a little-endian u64.
pub const IDX_MAGIC: u64 = u64::from_le_bytes(*b"SHMBIDX\0");
/// The index format version.
pub const IDX_VERSION: u32 = 2;
/// Size of the index header.
pub const IDX_HEADER: usize = 32;
/// Size of one entry.
pub const ENTRY_SIZE: usize = 40;
/// Longest run the recorder writes before it starts a new index entry.
pub const DEFAULT_INTERVAL: u64 = 4096;

/// One index entry: a run of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct IndexEntry {
    /// Position of the run's first record.
    pub position: u64,
    /// File offset of the run.
    pub offset: u64,
    /// Largest timestamp before the run in its segment.
    pub max_ts_before: u64,
    /// Length of the run in bytes.
    pub len: u32,
    /// crc32c of the run's bytes.
    pub data_crc: u32,
    /// crc32c of the fields above.
    pub crc: u32,
    /// Zero.
    pub reserved: u32,
}

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct IdxHeader {
    magic: u64,
    version: u32,
    entry_size: u32,
    base: u64,
    reserved: u64,
}

const _: () = {
    assert!(core::mem::size_of::<IndexEntry>() == ENTRY_SIZE);
    assert!(core::mem::offset_of!(IndexEntry, len) == 24);
    assert!(core::mem::offset_of!(IndexEntry, data_crc) == 28);
    assert!(core::mem::offset_of!(IndexEntry, crc) == 32);
    assert!(core::mem::size_of::<IdxHeader>() == IDX_HEADER);
};

impl IndexEntry {
    /// An entry for the run of `len` bytes at file `offset` whose first record is at
    /// `position` and whose bytes have crc32c `data_crc`, with its own checksum.
    pub fn new(
        position: u64,
        offset: u64,
        max_ts_before: u64,
        len: u32,
        data_crc: u32,
    ) -> IndexEntry {
        let mut e = IndexEntry {
            position,
            offset,
            max_ts_before,
            len,
            data_crc,
            crc: 0,
            reserved: 0,
        };
        e.crc = crc32c::crc32c(&e.as_bytes()[..32]);
        e
    }

    /// File offset after the run.
    pub fn end(&self) -> u64 {
        self.offset + self.len as u64
    }
}

/// The header of the index of the segment starting at `base`.
pub fn header(base: u64) -> [u8; IDX_HEADER] {
    let h = IdxHeader {
        magic: IDX_MAGIC,
        version: IDX_VERSION,
        entry_size: ENTRY_SIZE as u32,
        base,
        reserved: 0,
    };
    let mut out = [0u8; IDX_HEADER];
    out.copy_from_slice(h.as_bytes());
    out
}

/// Append the bytes of `entries` to `out`.
pub fn encode_entries(out: &mut Vec<u8>, entries: &[IndexEntry]) {
    for e in entries {
        out.extend_from_slice(e.as_bytes());
    }
}

/// A complete index file.
pub fn encode(base: u64, entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = header(base).to_vec();
    encode_entries(&mut out, entries);
    out
}

/// Parse an index file, checking its header and every entry's checksum. Whether the
/// entries agree with the segment is for the caller to check.
///
/// # Errors
///
/// The byte offset and a description of the first problem.
pub fn parse(bytes: &[u8], base: u64) -> Result<Vec<IndexEntry>, (u64, &'static str)> {
    let (entries, problem) = parse_prefix(bytes, base)?;
    match problem {
        Some(p) => Err(p),
        None => Ok(entries),
    }
}

/// Parse an index file up to its first bad entry (a torn or damaged end): the valid
/// entries and, if it stopped early, where and why.
///
/// # Errors
///
/// A missing or bad header.
#[allow(clippy::type_complexity)]
pub fn parse_prefix(
    bytes: &[u8],
    base: u64,
) -> Result<(Vec<IndexEntry>, Option<(u64, &'static str)>), (u64, &'static str)> {
    let Ok((h, rest)) = IdxHeader::read_from_prefix(bytes) else {
        return Err((0, "index shorter than its header"));
    };
    if h.magic != IDX_MAGIC || h.version != IDX_VERSION || h.entry_size != ENTRY_SIZE as u32 {
        return Err((0, "bad index header"));
    }
    if h.base != base {
        return Err((16, "index belongs to another segment"));
    }
    let mut out = Vec::with_capacity(rest.len() / ENTRY_SIZE);
    for (i, chunk) in rest.chunks_exact(ENTRY_SIZE).enumerate() {
        let at = (IDX_HEADER + i * ENTRY_SIZE) as u64;
        let Ok(e) = IndexEntry::read_from_bytes(chunk) else {
            return Ok((out, Some((at, "unreadable entry"))));
        };
        if crc32c::crc32c(&chunk[..32]) != e.crc {
            return Ok((out, Some((at, "entry checksum mismatch"))));
        }
        out.push(e);
    }
    if rest.len() % ENTRY_SIZE != 0 {
        return Ok((
            out,
            Some((bytes.len() as u64, "index ends in a partial entry")),
        ));
    }
    Ok((out, None))
}
