//! Retention: delete the oldest whole segments by age and by total size.
//!
//! The segment being written (the last one) is never deleted. By default a segment is
//! kept while any named subscriber of the topic (attached, detached or evicted) has not
//! read past its end, since such a subscriber resumes from the store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::format::names::list_segments;
use super::format::validate::read_footer;
use super::{io_err, StoreError};
use crate::topic::{Payload, Topic};

/// A retention policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Delete segments whose newest record is older than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest segments while the topic's segments take more than this.
    pub max_bytes: Option<u64>,
    /// Keep segments a named subscriber has not read past (default true).
    pub respect_subscribers: bool,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: None,
            max_bytes: None,
            respect_subscribers: true,
        }
    }
}

/// What retention did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segment files deleted (their indexes went too).
    pub deleted: Vec<PathBuf>,
    /// Bytes freed.
    pub freed: u64,
    /// The named subscriber (and its position) that stopped retention, if one did.
    pub held_by: Option<(String, u64)>,
}

/// Apply `policy` to `topic`'s segments in `store`.
///
/// # Errors
///
/// [`StoreError::Io`] if a file cannot be read or removed. A segment whose footer is
/// damaged stops retention (it is reported by recovery and verification instead).
pub fn apply_retention<E: Payload>(
    topic: &Topic<E>,
    store: &Path,
    policy: &Retention,
) -> Result<RetentionReport, StoreError> {
    let dir = super::topic_dir(store, topic.name());
    let segs = list_segments(&dir)?;
    let mut report = RetentionReport::default();
    let mut total: u64 = segs.iter().map(|s| s.len).sum();
    let now = crate::sys::os::now_ns();
    let cutoff = policy
        .max_age
        .map(|a| now.saturating_sub(a.as_nanos().min(u64::MAX as u128) as u64));
    let holder = if policy.respect_subscribers {
        topic
            .subscribers()
            .into_iter()
            .filter_map(|s| s.name.map(|n| (n, s.position)))
            .min_by_key(|(_, p)| *p)
    } else {
        None
    };
    for seg in segs.iter().take(segs.len().saturating_sub(1)) {
        let file = crate::store::format::validate::open_regular(&seg.path, false)
            .map_err(io_err(&seg.path, "open segment"))?;
        let Ok(Some((footer, _))) = read_footer(&seg.path, &file, seg.len) else {
            break;
        };
        let over = policy.max_bytes.is_some_and(|m| total > m);
        let old = cutoff.is_some_and(|c| footer.max_ts < c);
        if !over && !old {
            break;
        }
        if let Some((name, pos)) = &holder {
            if footer.end_pos > *pos {
                report.held_by = Some((name.clone(), *pos));
                break;
            }
        }
        std::fs::remove_file(&seg.path).map_err(io_err(&seg.path, "delete segment"))?;
        let _ = std::fs::remove_file(seg.idx_path());
        total -= seg.len;
        report.freed += seg.len;
        report.deleted.push(seg.path.clone());
    }
    Ok(report)
}
