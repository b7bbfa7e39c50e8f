//! The event store: a recorder that persists a topic into checksummed, indexed segment
//! files, recovery of what a crash left behind, retention, and a replay cursor that
//! reads the segments and then joins the live ring.
//!
//! # Layout on disk
//!
//! Each topic has a directory in the store holding its segments, one index per
//! segment, a lock file and the preallocated next segment: see [`format`](mod@format), which holds
//! every byte table, every file name ([`format::names`]) and the one validator
//! ([`format::validate`]) of the store.
//!
//! A segment holds the topic's records byte for byte as they were in the ring (header
//! and payload, 64-byte aligned; the ring's padding and gap records are left out). The
//! recorder writes them straight from the ring mapping, with no copy (except for lossy
//! topics, see [`recorder`]). Positions in the headers are the ring positions, so a
//! reader maps a position to a file offset with the index and a short scan.
//!
//! # Checksums
//!
//! The records carry no checksum of their own. The index of a segment is a list of
//! **runs** (stretches of records with consecutive positions, at most 4 KiB by
//! default, closed at the end of every written batch) with the crc32c of each; a sealed
//! segment's footer also has the crc32c of all its data. A reader checks a run the
//! first time it reads a record in it; recovery keeps an unsealed segment's runs up to
//! the first that does not verify, and checks the structure of every record as well
//! (commit word `position | committed`, length within the run, consecutive positions).
//!
//! # Named subscribers resume from the store
//!
//! A named subscriber that was evicted or away for long gets
//! [`AttachError::PositionLost`] from the ring. [`Replay::named`] resumes it from the
//! segments at its durable position and then attaches it to the live ring, with no gap
//! and no duplicate, keeping its durable position up to date all along.
//!
//! # Examples
//!
//! ```
//! use shmbus::store::{Recorder, RecorderConfig, Replay, ReplayStart};
//! use std::time::Duration;
//!
//! let tmp = std::env::temp_dir().join(format!("shmbus-doc-store-{}", std::process::id()));
//! let bus = shmbus::Bus::open_dir(tmp.join("bus"))?;
//! let topic = bus.topic("t").capacity(1 << 16).open_or_create()?;
//! let rec = Recorder::spawn(&topic, tmp.join("store"), RecorderConfig::default())?;
//! let mut publisher = topic.publisher()?;
//! let last = publisher.send_bytes(1, b"persisted")?;
//! assert!(rec.wait_persisted(last + 64, Duration::from_secs(10)));
//! rec.stop()?;
//!
//! let mut replay = Replay::open(&topic, tmp.join("store"), ReplayStart::Position(0))?;
//! let ev = replay.next_timeout(Duration::from_secs(1))?.unwrap();
//! assert_eq!(ev.bytes(), b"persisted");
//! # drop(replay); drop(publisher); drop(topic);
//! # std::fs::remove_dir_all(&tmp)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{AttachError, OpenError, RecvError};

// Modules, each with one job:
// - `format/`: the bytes on disk (segment, index, file names, the one validator);
// - `reader`: reading segments, and the cursor shared by replay, query and CLI;
// - `storage/`: where the recorder's bytes go (io_uring, pwrite, fault injection);
// - `recorder/`: the recorder thread; `recovery`, `verify`, `retention`, `replay`.
pub mod format;
pub mod reader;
pub mod recorder;
pub mod recovery;
pub mod replay;
pub mod retention;
pub mod storage;
pub mod verify;

pub use format::names::{list_segments, topic_dir, SegmentInfo};
pub use format::segment::{StoredRecord, Summary};
pub use format::SegmentBuilder;
pub use reader::{Run, RunRecords, SegmentMeta, SegmentReader, StoreCursor, StoredTopic};
pub use recorder::{lock, Fsync, Lock, Recorder, RecorderConfig, RecorderHandle, RecorderStats};
pub use recovery::{recover_topic, RecoveryReport};
pub use replay::{Replay, ReplayEvent, ReplayStart};
pub use retention::{apply_retention, Retention, RetentionReport};
pub use storage::{
    buffered_writes_nowait, Fdatasync, PwriteStorage, Storage, StorageKind, Syncer, UringStorage,
    Write,
};
#[cfg(any(test, feature = "testing"))]
pub use storage::{FaultControl, FaultStorage};
pub use verify::{verify_segment, verify_topic, SegmentCheck};

/// A store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O call failed on `path`.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Another recorder holds this (topic, store).
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A segment or index file is damaged.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damage in the file.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The store holds records up to `stored_end`, but the topic can only resume the
    /// recorder at `resume`: records in between are lost (or the topic was recreated).
    Discontinuity {
        /// Next position after the last stored record.
        stored_end: u64,
        /// Where the topic lets the recorder continue.
        resume: u64,
    },
    /// A replay start that is neither on disk nor in the ring.
    NotStored {
        /// The requested position.
        requested: u64,
        /// The oldest position available, if any.
        earliest: Option<u64>,
    },
    /// A configuration value is out of range.
    InvalidConfig(String),
    /// Opening the topic failed.
    Open(OpenError),
    /// Attaching the recorder's or the replay's subscriber failed.
    Attach(AttachError),
    /// Receiving from the topic failed.
    Recv(RecvError),
    /// The recorder thread panicked or was stopped before it could finish.
    Stopped(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
            StoreError::Locked { path } => write!(
                f,
                "another recorder is running for this topic and store (lock {} is held)",
                path.display()
            ),
            StoreError::Corrupt { path, offset, what } => {
                write!(
                    f,
                    "{} is corrupt at offset {offset}: {what}",
                    path.display()
                )
            }
            StoreError::Discontinuity { stored_end, resume } => write!(
                f,
                "the store ends at position {stored_end} but the topic resumes at {resume}: \
                 records in between are not available"
            ),
            StoreError::NotStored {
                requested,
                earliest,
            } => match earliest {
                Some(e) => write!(
                    f,
                    "position {requested} is neither stored nor in the ring (earliest: {e})"
                ),
                None => write!(f, "position {requested} is neither stored nor in the ring"),
            },
            StoreError::InvalidConfig(w) => write!(f, "invalid store configuration: {w}"),
            StoreError::Open(e) => e.fmt(f),
            StoreError::Attach(e) => e.fmt(f),
            StoreError::Recv(e) => e.fmt(f),
            StoreError::Stopped(w) => write!(f, "recorder stopped: {w}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Open(e) => Some(e),
            StoreError::Attach(e) => Some(e),
            StoreError::Recv(e) => Some(e),
            _ => None,
        }
    }
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::Open(e)
    }
}
impl From<AttachError> for StoreError {
    fn from(e: AttachError) -> Self {
        StoreError::Attach(e)
    }
}
impl From<RecvError> for StoreError {
    fn from(e: RecvError) -> Self {
        StoreError::Recv(e)
    }
}

impl StoreError {
    /// The OS error number, for I/O errors.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            StoreError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Shorthand for a [`StoreError::Io`].
pub(crate) fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { path, op, source }
}

/// Refuse a topic's store directory that is world-writable or owned by another user
/// (the rule of [`crate::Bus`]: the caller's uid or root; a group-writable directory is
/// also accepted from a member of its group). A missing directory passes.
///
/// # Errors
///
/// [`StoreError::Open`] with [`OpenError::UnsafePermissions`], or [`StoreError::Io`].
pub(crate) fn check_store_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let md = match std::fs::symlink_metadata(dir) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, "stat store directory")(e)),
    };
    let refuse = |why: &str| {
        StoreError::Open(OpenError::UnsafePermissions {
            path: dir.to_path_buf(),
            why: why.into(),
        })
    };
    if !md.is_dir() {
        return Err(refuse("the store's topic directory is not a directory"));
    }
    if md.mode() & 0o002 != 0 {
        return Err(refuse("the store's topic directory is world-writable"));
    }
    crate::topic::check_owner(dir, &md, md.mode() & 0o020 != 0).map_err(StoreError::Open)
}
