//! Every file name of the store, built and parsed here and nowhere else.
//!
//! | path under the store                        | what                                         |
//! |---------------------------------------------|----------------------------------------------|
//! | `<topic>/`                                  | the topic's directory ([`topic_dir`])        |
//! | `<topic>/<base position:020>.seg`           | a segment ([`seg_name`], [`parse_seg_name`]) |
//! | `<topic>/<base position:020>.idx`           | its index ([`idx_name`], [`idx_path`])       |
//! | `<topic>/<base position:020>.idx.tmp`       | an index being rewritten ([`idx_tmp_path`])  |
//! | `<topic>/.next.prep`                        | the next segment, preallocated ahead ([`prepared_path`]) |
//! | `<topic>/.lock`                             | flock of the one recorder ([`lock_path`])    |
//! | `<topic>/.replay-<hex name>.lock`           | flock of a named replay ([`replay_lock_path`]) |

use std::path::{Path, PathBuf};

use crate::store::{io_err, StoreError};

/// Extension of segment files.
const SEG_EXT: &str = "seg";
/// Extension of index files.
const IDX_EXT: &str = "idx";
/// Extension of an index file being rewritten.
const IDX_TMP_EXT: &str = "idx.tmp";
/// The preallocated next segment.
const PREPARED: &str = ".next.prep";
/// The recorder's lock file.
const LOCK: &str = ".lock";
/// Digits of the base position in a segment's or index's name.
const BASE_DIGITS: usize = 20;

/// Directory of one topic in a store.
pub fn topic_dir(store: &Path, topic: &str) -> PathBuf {
    store.join(topic)
}

/// File name of the segment starting at `base`.
pub fn seg_name(base: u64) -> String {
    format!("{base:020}.{SEG_EXT}")
}

/// File name of the index of the segment starting at `base`.
pub fn idx_name(base: u64) -> String {
    format!("{base:020}.{IDX_EXT}")
}

/// The index file of the segment file `seg`.
pub fn idx_path(seg: &Path) -> PathBuf {
    seg.with_extension(IDX_EXT)
}

/// The temporary name an index is written under before it is renamed over `idx`.
pub fn idx_tmp_path(idx: &Path) -> PathBuf {
    idx.with_extension(IDX_TMP_EXT)
}

/// The base position of a segment file name (`<20 digits>.seg`), or `None` if the name
/// is not a segment's.
pub fn parse_seg_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEG_EXT)?.strip_suffix('.')?;
    if stem.len() != BASE_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Whether `name` is a file the store keeps in a topic directory: a segment, an index,
/// or the recorder's lock (not temporaries or the prepared next segment).
pub fn is_store_file(name: &str) -> bool {
    name.ends_with(&format!(".{SEG_EXT}")) || name.ends_with(&format!(".{IDX_EXT}")) || name == LOCK
}

/// The next segment, preallocated ahead by the recorder (removed by recovery).
pub fn prepared_path(dir: &Path) -> PathBuf {
    dir.join(PREPARED)
}

/// The recorder's lock file in topic directory `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join(LOCK)
}

/// The lock file of the named replay `name` in topic directory `dir` (the name in hex).
pub fn replay_lock_path(dir: &Path, name: &str) -> PathBuf {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    dir.join(format!(".replay-{hex}.lock"))
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
        idx_path(&self.path)
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
        let Some(base) = name.to_str().and_then(parse_seg_name) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(seg_name(128), "00000000000000000128.seg");
        assert_eq!(parse_seg_name(&seg_name(128)), Some(128));
        assert_eq!(parse_seg_name(&idx_name(128)), None);
        assert_eq!(parse_seg_name("128.seg"), None);
        assert_eq!(parse_seg_name("0000000000000000012x.seg"), None);
        let seg = Path::new("/s/t").join(seg_name(64));
        assert_eq!(idx_path(&seg), Path::new("/s/t").join(idx_name(64)));
        assert!(is_store_file(&idx_name(64)) && is_store_file(".lock"));
        assert!(!is_store_file(".next.prep"));
        assert_eq!(
            replay_lock_path(Path::new("d"), "ab"),
            Path::new("d/.replay-6162.lock")
        );
    }
}
