//! THE validator of the store's files: every reader of segments and indexes (the
//! [`SegmentReader`](crate::store::SegmentReader), recovery, verification, retention,
//! the query engine's store source) checks them through these functions, so one file
//! is judged the same way everywhere.
//!
//! - `open_segment`: header and footer (two small reads, no records);
//! - `sealed_index`: a sealed segment's index, or one rebuilt from its records once
//!   the footer's checksum of the data verifies;
//! - `scan_file`: an unsealed segment's valid prefix (the runs of its index that
//!   verify, or the records' structure alone without an index);
//! - `check_runs` / `check_run`: runs against the data (checksum, then structure);
//! - `runs_by_structure`: cut records into runs from their structure alone.
//!
//! Problems inside a file are `(offset, what)` pairs until they meet a path, where
//! they become [`StoreError::Corrupt`].

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use zerocopy::FromBytes;

use super::index::{self, IndexEntry};
use super::names::idx_path;
use super::segment::{
    decode, decode_footer, Decoded, SegHeader, Summary, Trailer, COMMITTED, FOOTER_SIZE,
    SEG_HEADER, SEG_MAGIC, SEG_VERSION, TRAILER_MAGIC, TRAILER_SIZE,
};
use crate::ring::layout::{RECORD_ALIGN, RECORD_HEADER};
use crate::store::{io_err, StoreError};

pub(crate) fn corrupt(path: &Path, offset: u64, what: impl Into<String>) -> StoreError {
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
        return Err(corrupt(path, 0, "not a shmbus segment (bad magic)"));
    }
    if h.version != SEG_VERSION {
        return Err(corrupt(
            path,
            8,
            format!("unsupported segment version {}", h.version),
        ));
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
) -> Result<Option<(Summary, Vec<u8>)>, StoreError> {
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
    let (sum, schema) = decode_footer(&fb).map_err(|(at, what)| corrupt(path, off + at, what))?;
    if sum.data_end != off {
        return Err(corrupt(
            path,
            off + 64,
            "footer data end disagrees with the trailer",
        ));
    }
    Ok(Some((sum, schema.to_vec())))
}

/// A segment file opened and its header and footer checked: what [`open_segment`]
/// returns, before any record is read.
pub(crate) struct Opened {
    /// The file, open for reading.
    pub file: File,
    /// Its length.
    pub len: u64,
    /// Its header.
    pub header: SegHeader,
    /// Its footer's summary and the schema after it, if it is sealed.
    pub footer: Option<(Summary, Vec<u8>)>,
}

/// Opens a store file (`write` for recovery's repairs): never blocks and never takes
/// anything but a regular file. `O_NONBLOCK` makes `open` return at once on a FIFO
/// planted in place of a segment or an index (it would otherwise wait for a writer
/// forever); the file type is then checked on the open file, so a FIFO, a device (a
/// link to `/dev/zero`), a socket or a directory is refused with an error that says so.
/// On a regular file `O_NONBLOCK` changes nothing.
///
/// # Errors
///
/// The open's own error, or `InvalidInput` ("not a regular file") for any other type.
pub(crate) fn open_regular(path: &Path, write: bool) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not a regular file ({kind:?})"),
        ));
    }
    Ok(file)
}

/// The bytes of the index of a segment of `seg_len` bytes, if the index is a regular
/// file no larger than the format allows for that segment: one entry per run of at
/// least one record, so never more entries than the segment has 64-byte record slots.
/// Anything else (missing, a FIFO, a device, a sparse file of gigabytes) is `None`,
/// which every reader treats as a missing index, without reading more than that bound.
pub(crate) fn read_index_file(idx: &Path, seg_len: u64) -> Option<Vec<u8>> {
    let max = index::IDX_HEADER as u64 + (seg_len / RECORD_ALIGN + 1) * index::ENTRY_SIZE as u64;
    let file = open_regular(idx, false).ok()?;
    if file.metadata().ok()?.len() > max {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max).then_some(bytes)
}

/// Open the segment file at `path` and check its header and (if it has a trailer) its
/// footer: magic, version, header size, aligned base, footer checksum, and that a
/// sealed segment's first record is at its base. Reads two small pieces of the file,
/// not its records: the readers check those run by run.
///
/// # Errors
///
/// [`StoreError::Io`], or [`StoreError::Corrupt`] with path and offset.
pub(crate) fn open_segment(path: &Path) -> Result<Opened, StoreError> {
    let file = open_regular(path, false).map_err(io_err(path, "open segment"))?;
    let len = file.metadata().map_err(io_err(path, "stat segment"))?.len();
    let mut hb = [0u8; SEG_HEADER];
    let n = read_at_most(&file, &mut hb, 0).map_err(io_err(path, "read segment header"))?;
    let header = check_header(path, &hb[..n])?;
    let footer = read_footer(path, &file, len)?;
    if let Some((f, _)) = &footer {
        if f.count > 0 && f.first_pos != header.base {
            return Err(corrupt(
                path,
                f.data_end + 16,
                "footer first position is not the base",
            ));
        }
    }
    Ok(Opened {
        file,
        len,
        header,
        footer,
    })
}

/// The index of a sealed segment whose records are `data` (its bytes from offset 0 to
/// the footer) and whose footer is `sum`: the `.idx` file at `idx_path` if it is intact
/// and tiles the data, else one rebuilt from the records once the footer's checksum
/// of all the data verifies. Returns the index and whether it was rebuilt (a rebuilt
/// index's runs are verified).
///
/// # Errors
///
/// [`StoreError::Corrupt`] at `path` if the index had to be rebuilt and the data does
/// not match the footer.
pub(crate) fn sealed_index(
    path: &Path,
    idx_path: &Path,
    data: &[u8],
    base: u64,
    sum: &Summary,
) -> Result<(Vec<IndexEntry>, bool), StoreError> {
    let loaded = read_index_file(idx_path, data.len() as u64)
        .and_then(|b| index::parse(&b, base).ok())
        .filter(|entries| index_consistent(data, base, sum, entries));
    if let Some(e) = loaded {
        return Ok((e, false));
    }
    // Rebuild from the data, which only the footer's checksum vouches for.
    let crc = crc32c::crc32c(data.get(SEG_HEADER..).unwrap_or_default());
    if crc != sum.crc {
        return Err(corrupt(
            path,
            sum.data_end + 72,
            "data checksum mismatch (and the index is missing or damaged)",
        ));
    }
    let (runs, found, problem) = runs_by_structure(data, data.len(), base, index::DEFAULT_INTERVAL);
    if let Some((off, what)) = problem {
        return Err(corrupt(path, off, what));
    }
    if found.data_end != sum.data_end || found.count != sum.count {
        return Err(corrupt(
            path,
            found.data_end,
            "footer disagrees with the records",
        ));
    }
    Ok((runs, true))
}

/// The runs tile the data in order, each starting at a record with its position.
fn index_consistent(data: &[u8], base: u64, sum: &Summary, entries: &[IndexEntry]) -> bool {
    if sum.count == 0 {
        return entries.is_empty();
    }
    let mut at = SEG_HEADER as u64;
    let mut prev: Option<&IndexEntry> = None;
    for e in entries {
        if e.offset != at || e.len == 0 || e.len as u64 % RECORD_ALIGN != 0 {
            return false;
        }
        match prev {
            None if e.position != base => return false,
            Some(p)
                if e.position < p.position + p.len as u64 || e.max_ts_before < p.max_ts_before =>
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
    at == sum.data_end
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
    let idx = read_index_file(&idx_path(path), len);
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
