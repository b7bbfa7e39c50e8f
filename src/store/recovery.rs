//! Recovery of a topic's segments (checking them without changing anything is
//! [`super::verify`]).
//!
//! After a crash the last segment is unsealed: preallocated, its records followed by
//! zeros, possibly ending in a torn batch. Recovery keeps the longest valid prefix:
//! the runs of its index that verify in order (structure: each commit word is
//! `position | committed`, lengths stay inside the run, positions are consecutive;
//! and the run's crc32c). Records after the last verified run are cut: the recorder
//! commits a batch only once its data and its index entries are written, so they
//! were never committed and the ring still holds them. If the index is missing
//! altogether, the records are kept by their structure alone and reported as
//! unverified.
//!
//! [`recover_topic`] then seals the tail (an offline repair, as `shmbus verify
//! --repair` wants); the recorder instead continues appending to it. Either way it
//! rebuilds damaged indexes and says what it did. A damaged sealed segment that is not
//! the last is an error naming the file and offset: recovery never throws away records
//! that later segments follow, with one exception below.
//!
//! # Unsealed segments before the last
//!
//! A segment that is not the last but has no footer on disk is what a power failure
//! leaves when the segment was sealed, and the next one created, before it was on
//! disk (only a power failure does: after a process crash the page cache still has
//! it):
//!
//! - if its runs all verify and what follows them is zeros or (a torn copy of) its
//!   footer, nothing is lost: recovery seals it again;
//! - if a run does not verify (and there is no footer), the segment was not synced
//!   from there on, and nothing in the later segments was synced either (a segment's
//!   syncs complete before those of the next). Recovery cuts it at that run and
//!   removes the later segments (reporting both): those records were within what a
//!   power failure may lose under the recorder's [`Fsync`](super::Fsync) policy.
//!
//! A segment before the last with a damaged footer and a run that does not verify
//! still is an error.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::index;
use super::format::names::{idx_tmp_path, list_segments, prepared_path};
use super::format::segment::{Summary, FOOTER_MAGIC, SEG_HEADER};
use super::format::validate::{
    check_header, open_regular, read_at_most, read_footer, read_index_file, scan_file,
};
use super::reader::SegmentReader;
use super::{io_err, StoreError};

/// What recovery found and did.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// Segments present after recovery.
    pub segments: usize,
    /// Position after the last stored record (None: the store is empty).
    pub end_position: Option<u64>,
    /// Segments that were unsealed (or had a damaged footer) and were sealed.
    pub sealed: Vec<PathBuf>,
    /// Torn or damaged tails that were cut off: file, offset of the cut, and why.
    pub truncated: Vec<(PathBuf, u64, String)>,
    /// Index files that were missing or damaged and were rebuilt.
    pub index_rebuilt: Vec<PathBuf>,
    /// Files removed: a preallocated next segment, segments holding no record.
    pub removed: Vec<PathBuf>,
    /// Unsealed segments without a usable index, whose records were kept by their
    /// structure alone.
    pub unverified: Vec<PathBuf>,
    /// The unsealed tail segment the recorder continues (it was not sealed).
    pub continued: Option<PathBuf>,
    pub(crate) tail: Option<OpenTail>,
}

/// The unsealed tail segment left open for the recorder, cut to its valid prefix.
#[derive(Debug, Clone)]
pub(crate) struct OpenTail {
    pub path: PathBuf,
    pub base: u64,
    pub summary: Summary,
    pub runs: usize,
}

impl RecoveryReport {
    /// Whether recovery changed nothing.
    pub fn clean(&self) -> bool {
        self.sealed.is_empty()
            && self.truncated.is_empty()
            && self.index_rebuilt.is_empty()
            && self.removed.is_empty()
            && self.unverified.is_empty()
    }
}

impl std::fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} segment(s)", self.segments)?;
        if let Some(e) = self.end_position {
            write!(f, ", stored up to position {e}")?;
        }
        for p in &self.sealed {
            write!(f, "; sealed {}", p.display())?;
        }
        for (p, off, why) in &self.truncated {
            write!(f, "; truncated {} at offset {off} ({why})", p.display())?;
        }
        for p in &self.index_rebuilt {
            write!(f, "; rebuilt index {}", p.display())?;
        }
        for p in &self.removed {
            write!(f, "; removed {}", p.display())?;
        }
        for p in &self.unverified {
            write!(f, "; kept {} by structure only (no index)", p.display())?;
        }
        if let Some(p) = &self.continued {
            write!(f, "; continuing {}", p.display())?;
        }
        Ok(())
    }
}

fn sync_file(path: &Path, f: &File, sync: bool) -> Result<(), StoreError> {
    if sync {
        f.sync_all().map_err(io_err(path, "sync"))?;
    }
    Ok(())
}

fn remove(path: &Path, report: &mut RecoveryReport) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            report.removed.push(path.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, "remove")(e)),
    }
}

/// Write a fresh index file for `entries`.
pub(crate) fn write_index(
    path: &Path,
    base: u64,
    entries: &[index::IndexEntry],
    sync: bool,
) -> Result<(), StoreError> {
    let tmp = idx_tmp_path(path);
    let bytes = index::encode(base, entries);
    let f = File::create(&tmp).map_err(io_err(&tmp, "create index"))?;
    f.write_all_at(&bytes, 0)
        .map_err(io_err(&tmp, "write index"))?;
    sync_file(&tmp, &f, sync)?;
    std::fs::rename(&tmp, path).map_err(io_err(path, "rename index"))?;
    Ok(())
}

/// Recover the segments in topic directory `dir`: remove leftovers, seal the unsealed
/// tail at its longest valid prefix, rebuild missing or damaged indexes. `schema` goes
/// into footers written here; with `sync` every change is synced.
///
/// # Errors
///
/// [`StoreError::Io`], or [`StoreError::Corrupt`] with path and offset for a damaged
/// segment that cannot be repaired without losing later data.
pub fn recover_topic(dir: &Path, schema: &[u8], sync: bool) -> Result<RecoveryReport, StoreError> {
    recover(dir, schema, sync, false)
}

/// [`recover_topic`], leaving the unsealed tail open (cut to its valid prefix, index
/// rewritten) when `continue_tail`: the recorder appends to it.
pub(crate) fn recover(
    dir: &Path,
    schema: &[u8],
    sync: bool,
    continue_tail: bool,
) -> Result<RecoveryReport, StoreError> {
    let mut report = RecoveryReport::default();
    remove(&prepared_path(dir), &mut report)?;
    let segs = list_segments(dir)?;
    let mut n = segs.len();
    for (i, seg) in segs.iter().enumerate() {
        if i >= n {
            break; // removed: they followed an unsealed segment cut short
        }
        let mut last = i + 1 == n;
        let path = &seg.path;
        let file = open_regular(path, true).map_err(io_err(path, "open segment"))?;
        let len = file.metadata().map_err(io_err(path, "stat segment"))?.len();
        let mut hb = [0u8; SEG_HEADER];
        let got = read_at_most(&file, &mut hb, 0).map_err(io_err(path, "read segment header"))?;
        let header = match check_header(path, &hb[..got]) {
            Ok(h) => h,
            Err(e) => {
                // Created and renamed, but the header never reached the disk.
                if last && hb[..got].iter().all(|&b| b == 0) {
                    remove(path, &mut report)?;
                    remove(&seg.idx_path(), &mut report)?;
                    continue;
                }
                return Err(e);
            }
        };
        if header.base != seg.base {
            return Err(StoreError::Corrupt {
                path: path.clone(),
                offset: 16,
                what: format!("header base {} disagrees with the file name", header.base),
            });
        }
        let footer = read_footer(path, &file, len);
        match footer {
            Ok(Some(_)) => {
                let r = SegmentReader::open(path)?;
                if r.index_rebuilt() {
                    write_index(&seg.idx_path(), seg.base, r.index(), sync)?;
                    report.index_rebuilt.push(seg.idx_path());
                }
                report.segments += 1;
                report.end_position = Some(r.summary().end_pos);
            }
            Ok(None) | Err(StoreError::Corrupt { .. }) => {
                let scan = scan_file(path, &file, len, seg.base, index::DEFAULT_INTERVAL)?;
                let (sum, entries, problem) = (scan.summary, scan.index, scan.problem);
                if scan.unverified && sum.count > 0 {
                    report.unverified.push(path.clone());
                }
                if let Some((off, what)) = problem {
                    if !last {
                        // Unsealed before the last: left by a power failure (see
                        // the module docs).
                        let mut magic = [0u8; 8];
                        let torn_footer = off == sum.data_end
                            && file.read_exact_at(&mut magic, off).is_ok()
                            && u64::from_le_bytes(magic) == FOOTER_MAGIC;
                        if !torn_footer && !matches!(footer, Ok(None)) {
                            return Err(StoreError::Corrupt {
                                path: path.clone(),
                                offset: off,
                                what: what.to_string(),
                            });
                        }
                        if !torn_footer {
                            for later in &segs[i + 1..] {
                                remove(&later.path, &mut report)?;
                                remove(&later.idx_path(), &mut report)?;
                            }
                            n = i + 1;
                            last = true;
                        }
                    }
                    report.truncated.push((path.clone(), off, what.to_string()));
                }
                if sum.count == 0 {
                    drop(file);
                    remove(path, &mut report)?;
                    remove(&seg.idx_path(), &mut report)?;
                    continue;
                }
                let idx_path = seg.idx_path();
                let idx_bytes = index::encode(seg.base, &entries);
                let idx_same = read_index_file(&idx_path, len).is_some_and(|b| b == idx_bytes);
                if last && continue_tail {
                    file.set_len(sum.data_end)
                        .map_err(io_err(path, "truncate segment"))?;
                    sync_file(path, &file, sync)?;
                    if !idx_same {
                        write_index(&idx_path, seg.base, &entries, sync)?;
                        report.index_rebuilt.push(idx_path);
                    }
                    report.continued = Some(path.clone());
                    report.tail = Some(OpenTail {
                        path: path.clone(),
                        base: seg.base,
                        summary: sum,
                        runs: entries.len(),
                    });
                    report.segments += 1;
                    report.end_position = Some(sum.end_pos);
                    continue;
                }
                let seal = sum.seal_bytes(schema);
                file.set_len(sum.data_end)
                    .map_err(io_err(path, "truncate segment"))?;
                file.write_all_at(&seal, sum.data_end)
                    .map_err(io_err(path, "write segment footer"))?;
                sync_file(path, &file, sync)?;
                if !idx_same {
                    write_index(&idx_path, seg.base, &entries, sync)?;
                    report.index_rebuilt.push(idx_path);
                }
                report.sealed.push(path.clone());
                report.segments += 1;
                report.end_position = Some(sum.end_pos);
            }
            Err(e) => return Err(e),
        }
    }
    if sync {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(report)
}
