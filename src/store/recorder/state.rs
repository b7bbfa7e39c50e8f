//! The recorder thread's state, grouped by job: the topic and settings at the top, then
//! the files being written ([`Files`]), the batch being gathered ([`Batch`]), the
//! writes in flight ([`Writes`]), what is committed ([`Commits`]), syncing
//! ([`Syncing`]) and the pacing of an idle recorder ([`Pace`]).

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::syncs::{self, SyncThread};
use super::{Lock, RecorderConfig, Shared};
use crate::store::format::index::{self, IndexEntry};
use crate::store::format::segment::Summary;
use crate::store::storage::{Storage, Syncer, Write};
use crate::store::StoreError;
use crate::topic::subscriber::Subscriber;
use crate::topic::{Raw, Topic};

/// The recorder thread's state.
pub(super) struct Rec {
    /// Always `Some`, except while an evicted subscriber is replaced (the old one must
    /// be dropped before the new one takes the slot, or its drop would detach it).
    pub(super) sub: Option<Subscriber<Raw>>,
    pub(super) topic: Topic<Raw>,
    pub(super) store: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) cfg: RecorderConfig,
    pub(super) shared: Arc<Shared>,
    /// Keeps the ring mapping alive while writes read from it.
    pub(super) keep: Arc<dyn Send + Sync>,
    pub(super) lossy: bool,
    pub(super) files: Files,
    pub(super) batch: Batch,
    pub(super) io: Writes,
    pub(super) commits: Commits,
    pub(super) sync: Syncing,
    pub(super) pace: Pace,
    pub(super) _lock: Lock,
}

/// The segment files: the one being written, the next one prepared ahead, and what
/// goes into their headers and footers.
pub(super) struct Files {
    pub(super) seg: Option<Seg>,
    pub(super) prep: Option<(File, PathBuf)>,
    /// The topic's encoded schema, for the footers.
    pub(super) schema: Vec<u8>,
    pub(super) type_id: u64,
    pub(super) fingerprint: u64,
}

/// The batch being gathered, and its buffers.
#[derive(Default)]
pub(super) struct Batch {
    /// Its extents (one write each), and its size.
    pub(super) extents: Vec<Extent>,
    pub(super) bytes: usize,
    /// Records and payload bytes in the batch (counted in the stats once written).
    pub(super) records: u64,
    pub(super) payload: u64,
    /// The run being gathered (`crc` not yet set).
    pub(super) run: Option<IndexEntry>,
    /// The position the batch lets us commit once written.
    pub(super) commit: Option<u64>,
    /// The index entries of its closed runs.
    pub(super) idx: Vec<u8>,
    /// A lossy topic's record, copied out of the ring.
    pub(super) scratch: Vec<u8>,
    /// Buffers of completed owned writes, for reuse.
    pub(super) spare: Vec<Vec<u8>>,
}

/// The writes handed to the storage backend, in submission order.
pub(super) struct Writes {
    pub(super) storage: Box<dyn Storage>,
    /// The next write's tag.
    pub(super) seq: u64,
    pub(super) order: VecDeque<Pending>,
    /// Failed writes waiting for `retry_at`.
    pub(super) retry: Vec<Write>,
    pub(super) retry_at: Instant,
}

/// What is committed in the ring, and what is written but not yet committed.
pub(super) struct Commits {
    /// The current segment as of the last commit.
    pub(super) committed: Mark,
    /// The position the completed writes let us commit, and the segment's state then.
    pub(super) unsynced: Option<u64>,
    pub(super) unsynced_mark: Option<Mark>,
    /// Records below this position were stored by a previous recorder.
    pub(super) skip_below: u64,
}

/// Syncing to stable storage.
pub(super) struct Syncing {
    /// Syncs on this thread ([`Fsync::EveryBatch`](super::Fsync::EveryBatch)).
    pub(super) syncer: Arc<dyn Syncer>,
    /// Syncs sealed segments (and, with [`Fsync::Interval`](super::Fsync::Interval),
    /// the current one) while this thread writes on.
    pub(super) thread: SyncThread,
    /// When the current segment was last handed to the sync thread.
    pub(super) last: Instant,
    /// Written since then.
    pub(super) dirty: bool,
}

/// The pacing of a caught-up recorder (see the module docs on waiting), and of
/// retention.
pub(super) struct Pace {
    /// When the recorder last found nothing new, if it has found nothing since.
    pub(super) idle_since: Option<Instant>,
    /// When it last looked at the ring after a sleep, and the record bytes it has
    /// taken since (the arrival rate that sets the next sleep).
    pub(super) last_look: Instant,
    pub(super) taken: u64,
    pub(super) last_retention: Instant,
}

/// The segment being written.
pub(super) struct Seg {
    pub(super) base: u64,
    pub(super) path: PathBuf,
    /// Shared with the sync thread, which may still sync the files after the segment
    /// is sealed.
    pub(super) file: Arc<File>,
    pub(super) idx_path: PathBuf,
    pub(super) idx_file: Arc<File>,
    pub(super) idx_len: u64,
    pub(super) sum: Summary,
}

impl Seg {
    /// The data file, then the index, for the sync thread.
    pub(super) fn files(&self) -> Vec<syncs::SegFile> {
        vec![
            (self.file.clone(), self.path.clone()),
            (self.idx_file.clone(), self.idx_path.clone()),
        ]
    }
}

/// The state of the current segment as of a commit: what a rollback returns to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    pub(super) base: u64,
    pub(super) idx_len: u64,
    pub(super) sum: Summary,
}

impl Mark {
    pub(super) fn empty(base: u64) -> Mark {
        Mark {
            base,
            idx_len: index::IDX_HEADER as u64,
            sum: Summary::new(),
        }
    }
}

/// One write in submission order: its tag, the position it lets us commit (with the
/// segment's state then), whether done.
pub(super) struct Pending {
    pub(super) tag: u64,
    pub(super) commit: Option<(u64, Mark)>,
    pub(super) done: bool,
    pub(super) path: PathBuf,
}

/// A contiguous part of a batch: one write.
pub(super) enum Extent {
    /// `len` bytes of the ring mapping at address `ptr`.
    Mapped { ptr: usize, len: usize, off: u64 },
    /// Copied records (lossy topics).
    Owned { buf: Vec<u8>, off: u64 },
}

/// Why the loop gave up.
pub(super) enum Halt {
    Stop,
    /// The subscriber was evicted with writes not yet committed.
    Evicted,
    Fatal(StoreError),
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        Halt::Fatal(e)
    }
}
