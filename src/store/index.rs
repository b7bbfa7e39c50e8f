//! Sparse segment indexes: `<base position as 20 digits>.idx` next to each segment.
//!
//! An entry is written for the first record of the segment and then for the first
//! record at least [`DEFAULT_INTERVAL`] bytes after the previous entry, so seeking by
//! position or time is a binary search followed by a scan of a few KiB. The index is
//! derived data: a missing, truncated or damaged index is rebuilt from the segment.
//!
//! ## Header (32 bytes)
//!
//! | offset | size | field                             |
//! |-------:|-----:|-----------------------------------|
//! |      0 |    8 | magic `b"SHMBIDX\0"`               |
//! |      8 |    4 | format version ([`IDX_VERSION`])  |
//! |     12 |    4 | entry size (32)                   |
//! |     16 |    8 | base position of the segment      |
//! |     24 |    8 | reserved, zero                    |
//!
//! ## Entry (32 bytes each, after the header)
//!
//! | offset | size | field                                                          |
//! |-------:|-----:|----------------------------------------------------------------|
//! |      0 |    8 | position of the record                                         |
//! |      8 |    8 | file offset of the record in the segment                       |
//! |     16 |    8 | largest timestamp of the records before it in the segment      |
//! |     24 |    4 | crc32c of bytes 0..24                                          |
//! |     28 |    4 | reserved, zero                                                 |
//!
//! Producer timestamps are only nearly ordered in a multi-producer log, so the entry
//! carries the running maximum, which never decreases: seeking to the first record
//! with a timestamp at or after `t` starts at the last entry whose maximum is below
//! `t` and is exact.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `b"SHMBIDX\0"` as a little-endian u64.
pub const IDX_MAGIC: u64 = u64::from_le_bytes(*b"SHMBIDX\0");
/// The index format version.
pub const IDX_VERSION: u32 = 1;
/// Size of the index header.
pub const IDX_HEADER: usize = 32;
/// Size of one entry.
pub const ENTRY_SIZE: usize = 32;
/// Bytes of segment data between index entries.
pub const DEFAULT_INTERVAL: u64 = 4096;

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct IndexEntry {
    /// Position of the record.
    pub position: u64,
    /// File offset of the record.
    pub offset: u64,
    /// Largest timestamp before the record in its segment.
    pub max_ts_before: u64,
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
    assert!(core::mem::offset_of!(IndexEntry, crc) == 24);
    assert!(core::mem::size_of::<IdxHeader>() == IDX_HEADER);
};

impl IndexEntry {
    /// An entry with its checksum.
    pub fn new(position: u64, offset: u64, max_ts_before: u64) -> IndexEntry {
        let mut e = IndexEntry {
            position,
            offset,
            max_ts_before,
            crc: 0,
            reserved: 0,
        };
        e.crc = crc32c::crc32c(&e.as_bytes()[..24]);
        e
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
    let Ok((h, rest)) = IdxHeader::read_from_prefix(bytes) else {
        return Err((0, "index shorter than its header"));
    };
    if h.magic != IDX_MAGIC || h.version != IDX_VERSION || h.entry_size != ENTRY_SIZE as u32 {
        return Err((0, "bad index header"));
    }
    if h.base != base {
        return Err((16, "index belongs to another segment"));
    }
    if rest.len() % ENTRY_SIZE != 0 {
        return Err((bytes.len() as u64, "index ends in a partial entry"));
    }
    let mut out = Vec::with_capacity(rest.len() / ENTRY_SIZE);
    for (i, chunk) in rest.chunks_exact(ENTRY_SIZE).enumerate() {
        let Ok(e) = IndexEntry::read_from_bytes(chunk) else {
            return Err(((IDX_HEADER + i * ENTRY_SIZE) as u64, "unreadable entry"));
        };
        if crc32c::crc32c(&chunk[..24]) != e.crc {
            return Err((
                (IDX_HEADER + i * ENTRY_SIZE) as u64,
                "entry checksum mismatch",
            ));
        }
        out.push(e);
    }
    Ok(out)
}
