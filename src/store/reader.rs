//! Reading the store: [`SegmentReader`], a validated view of one segment, and the
//! store cursor ([`StoredTopic`], [`StoreCursor`]) that seeks by position or time and
//! iterates records across a topic's segments. [`Replay`](super::Replay), the query
//! engine's store source and the CLI all read the store through these, and these
//! check the files through [`format::validate`](super::format::validate).
//!
//! # The cursor across segments
//!
//! A [`StoreCursor`] remembers the position after the last record it delivered. Once a
//! sealed segment is exhausted it goes on in the next segment that holds a record at or
//! after that position. An unsealed segment (the recorder's tail) is read as it was
//! when it was opened: once it is exhausted, the cursor reports the end
//! ([`StoreCursor::next_record`] returns `Ok(None)`) and the next call lists the
//! segments again and opens the one holding that position, which sees whatever the
//! recorder wrote (or sealed) since. Segments after an exhausted unsealed one (what a
//! crash leaves before recovery) are read at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::format::index::{self, IndexEntry};
use super::format::names::{idx_path, list_segments, topic_dir, SegmentInfo};
use super::format::segment::{
    decode, Decoded, SegHeader, StoredRecord, Summary, FLAG_MASK, FOOTER_SIZE, SEG_HEADER,
};
use super::format::validate::{
    check_run, check_runs, corrupt, open_segment, runs_by_structure, scan_file, sealed_index,
    Opened,
};
use super::{io_err, ReplayStart, StoreError};
use crate::ring::layout::{record_size, RECORD_HEADER};
use crate::schema::Schema;

mod run;
pub use run::{Records, Run, RunRecords};

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
    /// The schema after the footer, for a sealed segment.
    schema: Option<Vec<u8>>,
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
            .field("sealed", &self.schema.is_some())
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
        let Opened {
            file,
            len,
            header,
            footer,
        } = open_segment(path)?;
        if let Some((summary, schema)) = footer {
            // SAFETY: sealed segments are never written or truncated again (only
            // unlinked, which keeps the mapping valid); every read through the mapping
            // is bounds-checked and every run is checksummed before a record in it is
            // handed out.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path, "map segment"))?;
            let mut r = SegmentReader {
                path: path.to_path_buf(),
                bytes: Bytes::Map(map),
                header,
                schema: Some(schema),
                summary,
                index: Vec::new(),
                checked: Vec::new(),
                index_rebuilt: false,
                unverified: false,
            };
            let (index, rebuilt) =
                sealed_index(path, &idx_path(path), r.data(), header.base, &summary)?;
            r.checked = index.iter().map(|_| AtomicBool::new(rebuilt)).collect();
            r.index = index;
            r.index_rebuilt = rebuilt;
            Ok(r)
        } else {
            let scan = scan_file(path, &file, len, header.base, index::DEFAULT_INTERVAL)?;
            let checked = scan.index.iter().map(|_| AtomicBool::new(true)).collect();
            Ok(SegmentReader {
                path: path.to_path_buf(),
                bytes: Bytes::Owned(scan.bytes),
                header,
                schema: None,
                summary: scan.summary,
                index: scan.index,
                checked,
                index_rebuilt: scan.unverified,
                unverified: scan.unverified,
            })
        }
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
        self.schema.is_some()
    }
    /// The footer's (or for the tail, the scanned) record summary.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
    /// The schema stored in the footer (empty for raw topics or unsealed segments).
    pub fn schema_bytes(&self) -> &[u8] {
        self.schema.as_deref().unwrap_or(&[])
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
        self.first_from_run(i, |r| r.position >= pos)
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
        self.first_from_run(i, |r| r.timestamp >= ts)
    }

    /// File offset and position of the first record, from the start of the run before
    /// run `i` (or of the data), for which `hit` holds.
    fn first_from_run(
        &self,
        i: usize,
        hit: impl Fn(&StoredRecord<'_>) -> bool,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let (mut off, mut min) = match i.checked_sub(1) {
            None => (SEG_HEADER as u64, self.header.base),
            Some(j) => (self.index[j].offset, self.index[j].position),
        };
        while let Some(r) = self.record_at(off, min)? {
            if hit(&r) {
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
        if self.sealed() {
            let f = &self.summary;
            if sum.count != f.count
                || (sum.count > 0 && (sum.last_pos, sum.end_pos) != (f.last_pos, f.end_pos))
            {
                return Err(corrupt(
                    &self.path,
                    f.data_end,
                    "footer disagrees with the records",
                ));
            }
            if sum.crc != f.crc {
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

/// A topic's segments in a store, read without a live topic: its stored schema, where
/// its records end, and cursors over them.
///
/// # Examples
///
/// ```
/// use shmbus::store::{ReplayStart, SegmentBuilder, StoredTopic};
///
/// let store = std::env::temp_dir().join(format!("shmbus-doc-stored-{}", std::process::id()));
/// let mut b = SegmentBuilder::new(0, 0, 0);
/// for i in 0..10u64 {
///     b.push(1_000 + i, 0, &i.to_le_bytes());
/// }
/// b.write(&store.join("t"), &[])?;
/// let topic = StoredTopic::new(&store, "t");
/// assert_eq!(topic.end(), 640);
/// let mut c = topic.cursor(ReplayStart::Time(1_005))?;
/// let mut seen = Vec::new();
/// while let Some(r) = c.next_record()? {
///     seen.push(r.position);
/// }
/// assert_eq!(seen, [320, 384, 448, 512, 576]);
/// # std::fs::remove_dir_all(&store)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTopic {
    dir: PathBuf,
}

/// One segment's header and footer, as [`StoredTopic::peek_segments`] reads them.
#[derive(Debug, Clone)]
pub struct SegmentMeta {
    /// The segment file.
    pub info: SegmentInfo,
    /// The topic's event type id recorded in the header.
    pub type_id: u64,
    /// The footer's summary, if the segment is sealed.
    pub footer: Option<Summary>,
    /// The schema after the footer (empty for raw topics or unsealed segments).
    pub schema: Vec<u8>,
}

impl SegmentMeta {
    /// File offset of the stored schema (after the footer), for error messages.
    pub fn schema_offset(&self) -> u64 {
        self.footer.map_or(0, |f| f.data_end + FOOTER_SIZE as u64)
    }
}

impl StoredTopic {
    /// The topic `topic` of the store at `store`.
    pub fn new(store: &Path, topic: &str) -> StoredTopic {
        StoredTopic::from_dir(topic_dir(store, topic))
    }

    /// The topic whose store directory is `dir`.
    pub fn from_dir(dir: impl Into<PathBuf>) -> StoredTopic {
        StoredTopic { dir: dir.into() }
    }

    /// The topic's directory in the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its segments, by base position (none if the directory is missing).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if the directory cannot be read.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        list_segments(&self.dir)
    }

    /// Every segment's header and footer, checked by the store's validator but without
    /// reading the records (two small reads per segment). A segment deleted since the
    /// listing (by retention) is left out.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`], or [`StoreError::Corrupt`] for a damaged header or footer.
    pub fn peek_segments(&self) -> Result<Vec<SegmentMeta>, StoreError> {
        let mut out = Vec::new();
        for info in self.segments()? {
            let opened = match open_segment(&info.path) {
                Ok(o) => o,
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let (footer, schema) = match opened.footer {
                Some((f, s)) => (Some(f), s),
                None => (None, Vec::new()),
            };
            out.push(SegmentMeta {
                info,
                type_id: opened.header.type_id,
                footer,
                schema,
            });
        }
        Ok(out)
    }

    /// The schema and event type id recorded in the segments: the schema of the first
    /// sealed segment that carries one, and the type id of the last segment read;
    /// `(None, type id)` for raw topics or when only an unsealed segment exists.
    /// Segments that cannot be opened are passed over.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if the directory cannot be read; [`StoreError::Corrupt`] for
    /// a stored schema that does not decode (path and offset).
    pub fn schema(&self) -> Result<(Option<Schema>, u64), StoreError> {
        let mut type_id = 0;
        for s in self.segments()? {
            let Ok(Opened { header, footer, .. }) = open_segment(&s.path) else {
                continue;
            };
            type_id = header.type_id;
            if let Some((f, bytes)) = footer.filter(|(_, b)| !b.is_empty()) {
                let schema = Schema::decode(&bytes).map_err(|e| {
                    corrupt(
                        &s.path,
                        f.data_end + FOOTER_SIZE as u64 + e.offset().unwrap_or(0) as u64,
                        format!("stored schema is damaged: {e}"),
                    )
                })?;
                return Ok((Some(schema), type_id));
            }
        }
        Ok((None, type_id))
    }

    /// The position after the last stored record (0 if nothing is stored or the
    /// segments cannot be read).
    pub fn end(&self) -> u64 {
        let Ok(segs) = self.segments() else {
            return 0;
        };
        segs.iter()
            .rev()
            .filter_map(|s| SegmentReader::open(&s.path).ok())
            .map(|r| r.summary().end_pos)
            .find(|&e| e > 0)
            .unwrap_or(0)
    }

    /// A cursor at the first stored record at or after `start`.
    ///
    /// # Errors
    ///
    /// As [`StoreCursor::seek_time`] for a time; none for a position (the segments are
    /// read on the first [`StoreCursor::next_record`]).
    pub fn cursor(&self, start: ReplayStart) -> Result<StoreCursor, StoreError> {
        let mut c = StoreCursor::new(&self.dir, 0);
        match start {
            ReplayStart::Position(p) => c.skip_to(p),
            ReplayStart::Time(t) => {
                c.seek_time(t)?;
            }
        }
        Ok(c)
    }
}

/// A cursor over a topic's stored records, in log order, across its segments (see the
/// [module docs](self)). Every record it hands out has been validated: its run's
/// checksum and its structure.
#[derive(Debug)]
pub struct StoreCursor {
    dir: PathBuf,
    /// The least position of the next record: after the last one delivered.
    next: u64,
    /// The segment being read and the file offset of its next record.
    seg: Option<(SegmentReader, u64)>,
}

impl StoreCursor {
    /// A cursor on the topic directory `dir` at the first record at or after `position`.
    /// Reads nothing yet.
    pub fn new(dir: &Path, position: u64) -> StoreCursor {
        StoreCursor {
            dir: dir.to_path_buf(),
            next: position,
            seg: None,
        }
    }

    /// The position after the last record delivered (or the position sought).
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Move to the first record at or after `position` (forgets the open segment).
    pub fn skip_to(&mut self, position: u64) {
        self.next = position;
        self.seg = None;
    }

    /// Move to the first record, in log order, with a timestamp at or after `ts`. Returns
    /// its position, or `None` when every stored record is older: the cursor is then at
    /// the end of the store (its position unchanged if nothing is stored).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] or [`StoreError::Corrupt`] reading the segments.
    pub fn seek_time(&mut self, ts: u64) -> Result<Option<u64>, StoreError> {
        self.seg = None;
        for s in list_segments(&self.dir)? {
            let r = SegmentReader::open(&s.path)?;
            let sum = *r.summary();
            if sum.count == 0 {
                continue;
            }
            self.next = sum.end_pos;
            if sum.max_ts >= ts {
                if let Some((off, pos)) = r.seek_time(ts)? {
                    self.next = pos;
                    self.seg = Some((r, off));
                    return Ok(Some(pos));
                }
            }
        }
        Ok(None)
    }

    /// The next stored record, or `Ok(None)` when the store holds nothing more right
    /// now (call again later to see what the recorder added).
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a damaged segment (path and offset), or
    /// [`StoreError::Io`].
    pub fn next_record(&mut self) -> Result<Option<StoredRecord<'_>>, StoreError> {
        let Some(off) = self.advance()? else {
            return Ok(None);
        };
        Ok(self.record_at(off))
    }

    /// Find the next record and move past it; returns its file offset in the open
    /// segment (read it with [`StoreCursor::record_at`]).
    pub(crate) fn advance(&mut self) -> Result<Option<u64>, StoreError> {
        loop {
            let Some((seg, off)) = self.seg.as_mut() else {
                if self.open_for(self.next)? {
                    continue;
                }
                return Ok(None);
            };
            if let Some(r) = seg.record_at(*off, self.next)? {
                let at = *off;
                *off = r.next_offset;
                self.next = r.next_position;
                return Ok(Some(at));
            }
            let (sealed, base) = (seg.sealed(), seg.base());
            self.seg = None;
            if sealed {
                if self.open_after(base)? {
                    continue;
                }
            } else if list_segments(&self.dir)?.iter().any(|s| s.base > base)
                && self.open_for(self.next)?
            {
                // Sealed since it was opened, or left unsealed by a crash: read it
                // again from the cursor's position, then the segments after it.
                continue;
            }
            return Ok(None);
        }
    }

    /// The record at file offset `off` of the open segment, which
    /// [`StoreCursor::advance`] returned.
    pub(crate) fn record_at(&self, off: u64) -> Option<StoredRecord<'_>> {
        self.seg.as_ref().and_then(|(s, _)| s.validated_at(off))
    }

    /// Open the segment holding the first record at or after `pos`; false if none.
    fn open_for(&mut self, pos: u64) -> Result<bool, StoreError> {
        let segs = list_segments(&self.dir)?;
        let first = segs.partition_point(|s| s.base <= pos).saturating_sub(1);
        for s in segs.iter().skip(first) {
            let r = SegmentReader::open(&s.path)?;
            if let Some((off, _)) = r.seek_position(pos)? {
                self.seg = Some((r, off));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Open the first segment after the one at `base` holding a record at or after the
    /// cursor's position; false if none.
    fn open_after(&mut self, base: u64) -> Result<bool, StoreError> {
        let segs = list_segments(&self.dir)?;
        for s in segs.iter().filter(|s| s.base > base) {
            let r = SegmentReader::open(&s.path)?;
            if let Some((off, _)) = r.seek_position(self.next)? {
                self.seg = Some((r, off));
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SegmentBuilder;

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
    fn the_cursor_seeks_and_crosses_segments() {
        let dir = temp_dir("cursor");
        // Three segments of 10 records each (64 bytes apart), timestamps 100 + index,
        // the second one starting after a gap.
        let mut base = 0;
        let mut all = Vec::new();
        for s in 0..3u64 {
            let mut b = SegmentBuilder::new(base, 0, 0);
            for i in 0..10u64 {
                let n = s * 10 + i;
                all.push((b.push(100 + n, 0, &n.to_le_bytes()), 100 + n));
            }
            base = b.next_position() + if s == 0 { 640 } else { 0 };
            b.write(&dir, &[]).unwrap();
        }
        let topic = StoredTopic::from_dir(&dir);
        assert_eq!(topic.segments().unwrap().len(), 3);
        assert_eq!(topic.end(), all.last().unwrap().0 + 64);
        assert_eq!(topic.schema().unwrap(), (None, 0));
        let read = |start| {
            let mut c = topic.cursor(start).unwrap();
            let mut out = Vec::new();
            while let Some(r) = c.next_record().unwrap() {
                out.push(r.position);
            }
            assert_eq!(c.position(), topic.end());
            out
        };
        let positions: Vec<u64> = all.iter().map(|(p, _)| *p).collect();
        assert_eq!(read(ReplayStart::Position(0)), positions);
        // Inside the gap: the second segment's first record.
        assert_eq!(read(ReplayStart::Position(640 + 64)), positions[10..]);
        assert_eq!(read(ReplayStart::Time(115)), positions[15..]);
        assert!(read(ReplayStart::Time(1_000)).is_empty());
        let mut c = StoreCursor::new(&dir, 0);
        assert_eq!(c.seek_time(1_000).unwrap(), None);
        assert_eq!(c.position(), topic.end());
        assert_eq!(c.seek_time(0).unwrap(), Some(0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
