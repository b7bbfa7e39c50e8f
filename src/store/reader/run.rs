//! Runs of a segment's index, for readers that walk records themselves ([`Run`],
//! [`RunRecords`]), and the plain iterator over a segment's records ([`Records`]).

use std::path::Path;
use std::sync::atomic::Ordering;

use super::SegmentReader;
use crate::store::format::index::IndexEntry;
use crate::store::format::segment::{decode, Decoded, StoredRecord};
use crate::store::format::validate::corrupt;
use crate::store::StoreError;

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
/// use shmbus::store::SegmentBuilder;
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
    pub(super) seg: &'a SegmentReader,
    pub(super) i: usize,
    pub(super) entry: IndexEntry,
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
    pub(super) seg: &'a SegmentReader,
    pub(super) off: u64,
    pub(super) min: u64,
    pub(super) done: bool,
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
