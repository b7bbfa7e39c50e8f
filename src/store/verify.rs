//! Checking a topic's segments without changing anything: every header, footer, run
//! checksum, data checksum and index, through the store's one validator (the
//! [`SegmentReader`] and [`format::validate`](super::format::validate)). Repairing
//! what it finds is [`super::recovery`]'s job.

use std::path::{Path, PathBuf};

use super::format::names::list_segments;
use super::reader::SegmentReader;
use super::StoreError;

/// The outcome of checking one segment.
#[derive(Debug)]
pub struct SegmentCheck {
    /// The segment file.
    pub path: PathBuf,
    /// Whether it has a valid footer.
    pub sealed: bool,
    /// Valid records found.
    pub records: u64,
    /// Whether its index file was missing or damaged.
    pub index_damaged: bool,
    /// The first problem, with its offset.
    pub error: Option<StoreError>,
}

/// Check every segment of topic directory `dir` without changing anything: headers,
/// footers, every record's checksum, the data checksums and the indexes.
///
/// # Errors
///
/// [`StoreError::Io`] if the directory cannot be listed; problems with single segments
/// are reported in their [`SegmentCheck`].
pub fn verify_topic(dir: &Path) -> Result<Vec<SegmentCheck>, StoreError> {
    Ok(list_segments(dir)?
        .iter()
        .map(|seg| verify_segment(&seg.path))
        .collect())
}

/// Check one segment file (and its index) without changing anything, as
/// [`verify_topic`] does for each: for tools that report progress segment by segment.
pub fn verify_segment(path: &Path) -> SegmentCheck {
    let mut c = SegmentCheck {
        path: path.to_path_buf(),
        sealed: false,
        records: 0,
        index_damaged: false,
        error: None,
    };
    match SegmentReader::open(path) {
        Ok(r) => {
            c.sealed = r.sealed();
            c.index_damaged = r.index_rebuilt();
            match r.verify() {
                Ok(n) => c.records = n,
                Err(e) => c.error = Some(e),
            }
        }
        Err(e) => c.error = Some(e),
    }
    c
}
