//! The recorder: a named subscriber that persists every record of a topic into
//! segments, advancing its position only once the records before it are written.
//!
//! # Pipeline
//!
//! Records are received (manual commit: the position in the ring does not move on
//! receive) and written byte for byte **straight from the ring mapping**: a batch of
//! up to [`RecorderConfig::write_size`] bytes is one write whose source is the mapped
//! ring memory, or two where the ring wraps (or where a padding or gap record, which is
//! not stored, splits it). No record is copied. This is sound because in a reliable
//! topic producers cannot overwrite a record until the recorder commits past it, and
//! it commits only once the writes are complete; and because a completed write is
//! trusted only if the recorder was not evicted meanwhile (an evicted recorder rolls
//! the segment back to its last commit, see below).
//!
//! The one copy left is for **lossy** topics: producers there never wait, so a record
//! can be overwritten while a write reads it; the subscriber copies and re-validates
//! each record, and the recorder writes that copy.
//!
//! Checksums are not in the records: while reading a record's bytes for its batch,
//! the recorder computes the crc32c of each run (see [`super::index`]) and writes the
//! runs' index entries with the batch. Writes go through a [`Storage`] backend, up to
//! [`RecorderConfig::max_in_flight`] at once, and may complete out of order; the
//! position is committed to the end of the longest prefix of completed batches (data
//! and index entries both written). A failed write (EIO, ENOSPC, ...) is reported to
//! the owner through [`RecorderHandle::take_errors`] and retried every
//! [`RecorderConfig::retry_interval`]; meanwhile nothing new is received, and in a
//! reliable topic the ring keeps every unpersisted record (producers wait once it is
//! full).
//!
//! A recorder **evicted** while writes were in flight (a producer declared it stuck)
//! cannot trust them: producers may have overwritten the ring memory they read. It
//! waits for them, cuts the segment and its index back to the last commit, and
//! attaches again at the position after it ([`StoreError::Discontinuity`] if the ring
//! no longer holds it).
//!
//! # Waiting
//!
//! While records keep coming the recorder never sleeps on the topic's futex: a
//! subscriber asleep there makes every publish pay a wake-up system call, which would
//! put the recorder in the publishers' latency. Once caught up it looks at the ring
//! again after 50 µs sleeps (rather than polling the next record's commit word, a cache
//! line the publisher is about to write). After about 10 ms of idleness it blocks on
//! the futex ([`Wait::Block`], up to 100 ms at a time for its sync and retention
//! duties), so an idle recorder uses no CPU; the first publish after an idle spell pays
//! the one wake-up.
//!
//! # Restart
//!
//! A recorder that was killed leaves its segment unsealed. The next one recovers it
//! (keeps the runs that verify) and **continues that segment** until it reaches
//! [`RecorderConfig::segment_size`]; a recorder that was stopped sealed its segment, and
//! the next one starts a new segment.
//!
//! # Syncing
//!
//! Sealing a segment does not wait for the disk: once its footer is written and the
//! preallocated rest cut off, its files go to the recorder's **sync thread**, which
//! `fdatasync`s them while the recorder goes on with the next segment (prepared
//! ahead), so the disk writes one segment while the recorder fills the next. With
//! [`Fsync::Interval`] the periodic syncs of the current segment, and of the store
//! directory once a new segment has its name, go to the same thread; it runs its jobs
//! in order, so a sync never completes before an earlier one. A failed sync is
//! reported through [`RecorderHandle::take_errors`] with the file's path and retried
//! every [`RecorderConfig::retry_interval`]; while two sealed segments wait for their
//! sync the recorder waits before handing over a third, so a failing or slow disk
//! holds the recorder back (and a reliable topic's ring keeps what comes meanwhile)
//! instead of piling up unsynced segments. [`RecorderHandle::stop`] waits for the
//! syncs still to do, gives up one that fails then and returns it as its error. With
//! [`Fsync::EveryBatch`] the sync before each commit stays on the recorder's thread.
//!
//! # Durability ([`Fsync`])
//!
//! A crash of the recorder's process alone loses nothing that was committed to the
//! topic, whatever the policy: completed writes are in the kernel's page cache, and
//! what was not yet written is still in the ring, where the restarted recorder picks
//! it up. A power failure (or kernel crash) loses what was not synced:
//!
//! - [`Fsync::Never`]: everything the kernel had not yet written back (typically up to
//!   30 s), and possibly segments whose directory entries were not yet written.
//! - [`Fsync::Interval`]: what was written since the last completed sync began: about
//!   one interval plus the time a sync takes (the recorder does not wait for it),
//!   including the end of a segment sealed meanwhile. If syncs fail or the disk falls
//!   behind, at most the two sealed segments waiting for their syncs and the current
//!   one.
//! - [`Fsync::EveryBatch`]: nothing the recorder committed: each batch (data and index
//!   entries) is synced before its position is committed, so the ring still holds
//!   anything not yet on stable storage (but the ring itself, in `/dev/shm`, does not
//!   survive a power failure). A segment is sealed only once its records are
//!   committed; a footer that the power failure lost is rewritten by recovery.
//!
//! Data and index are synced together, so what survives a power failure is always
//! covered by checksums; recovery cuts whatever a torn batch left. A sealed segment
//! whose sync had not completed may have lost its footer or its last pages while the
//! next segment exists; recovery then keeps the records up to the first hole and
//! removes the later segments (see [`super::recovery`]). A segment whose footer
//! reached the disk before some of its pages did is not detected by recovery: reading
//! those records fails their run checksum (`shmbus verify` names the file and offset).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::format::index::{self, IndexEntry};
use super::format::names::{idx_name, idx_path, lock_path, prepared_path, seg_name};
use super::format::segment::{
    encode_record, header_bytes, Summary, FOOTER_SIZE, SEG_HEADER, TRAILER_SIZE,
};
use super::recovery::{recover, OpenTail, RecoveryReport};
use super::retention::{apply_retention, Retention};
use super::storage::{
    default_storage, Completion, Mapped, Source, Storage, StorageKind, Syncer, Write,
};
use super::{io_err, StoreError};
use crate::bus::{Bus, Payload, Raw, Topic};
use crate::error::{AttachError, RecvError};
use crate::layout::Mode;
use crate::subscriber::{Start, Subscriber};
use crate::wait::Wait;

mod syncs;
use syncs::{Job, SyncThread};

/// When the recorder syncs segment data to stable storage. See the [module
/// docs](self) for what each policy can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Never sync; the kernel writes back when it likes.
    Never,
    /// Sync at most this often while data is being written (on the recorder's sync
    /// thread: the recorder does not wait for it).
    Interval(Duration),
    /// Sync every completed write before committing its position.
    EveryBatch,
}

/// Recorder settings.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Name of the recorder's durable subscriber (default `"shmbus-recorder"`).
    pub name: String,
    /// Segment size: a segment is sealed before a record would take it past this.
    /// Default 64 MiB.
    pub segment_size: u64,
    /// Bytes per batch: a batch is written (from the ring) once it reaches this size,
    /// or when nothing more is ready (default 256 KiB).
    pub write_size: usize,
    /// Writes in flight at once (default 8).
    pub max_in_flight: usize,
    /// Sync policy (default every second).
    pub fsync: Fsync,
    /// Longest run of records one index entry (and checksum) covers (default 4 KiB).
    pub index_interval: u64,
    /// How long to wait before retrying a failed write (default 50 ms).
    pub retry_interval: Duration,
    /// Where to start when the store is empty and the name is new (default the
    /// oldest record in the ring).
    pub start: Start,
    /// Continue (reporting it) if records between the store's end and the ring were
    /// lost, instead of failing. Default false.
    pub accept_loss: bool,
    /// Retention to apply while recording (default none).
    pub retention: Option<Retention>,
    /// How often to apply it (default 10 s).
    pub retention_every: Duration,
    /// The storage backend [`Recorder::spawn`] writes through (default
    /// [`StorageKind::Auto`]: io_uring where the file system takes buffered writes
    /// without blocking, `pwrite` where it does not). [`Recorder::spawn_with`] takes
    /// a backend instead.
    pub storage: StorageKind,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            name: "shmbus-recorder".into(),
            segment_size: 64 << 20,
            write_size: 256 << 10,
            max_in_flight: 8,
            fsync: Fsync::Interval(Duration::from_secs(1)),
            index_interval: index::DEFAULT_INTERVAL,
            retry_interval: Duration::from_millis(50),
            start: Start::Earliest,
            accept_loss: false,
            retention: None,
            retention_every: Duration::from_secs(10),
            storage: StorageKind::Auto,
        }
    }
}

/// Counters of a running recorder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecorderStats {
    /// Records written.
    pub records: u64,
    /// Payload bytes written.
    pub bytes: u64,
    /// Segments created.
    pub segments: u64,
    /// Errors reported.
    pub errors: u64,
    /// Everything before this position is persisted (and committed in the ring).
    pub persisted: u64,
    /// The storage backend in use.
    pub storage: &'static str,
}

const MAX_KEPT_ERRORS: usize = 1024;
/// How long a caught-up recorder sleeps between looks at the ring: long enough that
/// its looks come rarely (each takes the lines the publisher just wrote, the next
/// record's commit word among them, and a shared publisher, whose commit fences, waits
/// to take them back; on a ring small enough to stay in its caches the more often a
/// reader looks the more it costs, see the README's Store section), short enough that
/// an eighth of the ring at most arrives meanwhile at the rate it saw (see
/// `idle_sleep`), and never longer than the whole ring takes to fill at
/// [`BURST_BYTES_PER_NS`], so that a burst after a quiet spell finds room.
const IDLE_SLEEP_MIN: Duration = Duration::from_micros(20);
const IDLE_SLEEP_MAX: Duration = Duration::from_millis(4);
/// A publisher's burst rate, for the longest sleep: 1 GB/s (1 KiB records from one
/// publisher at full speed reach about that here).
const BURST_BYTES_PER_NS: u64 = 1;
/// After this long without a record, it waits in the subscriber instead.
const IDLE_BEFORE_BLOCK: Duration = Duration::from_millis(10);
/// How long an idle recorder blocks on the topic's futex at a time.
const IDLE_BLOCK: Duration = Duration::from_millis(100);

struct Shared {
    stop: AtomicBool,
    persisted: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    segments: AtomicU64,
    error_count: AtomicU64,
    errors: Mutex<Vec<StoreError>>,
    storage: &'static str,
}

impl Shared {
    fn report(&self, e: StoreError) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let mut v = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < MAX_KEPT_ERRORS {
            v.push(e);
        }
    }
}

/// Starts recorders.
#[derive(Debug)]
pub struct Recorder;

/// A running recorder. Dropping it stops the recorder (as [`RecorderHandle::stop`]).
pub struct RecorderHandle {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<Result<(), StoreError>>>,
    report: RecoveryReport,
    dir: PathBuf,
}

impl std::fmt::Debug for RecorderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderHandle")
            .field("dir", &self.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

/// An exclusive `flock`, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Take the recorder lock of a topic's store directory `dir` (its `.lock` file)
/// without waiting, as a recorder does: whoever holds it may change the segments.
///
/// # Errors
///
/// [`StoreError::Locked`] if a recorder (or another holder) has it; I/O errors.
pub fn lock(dir: &Path) -> Result<Lock, StoreError> {
    lock_file(lock_path(dir))
}

/// Take the exclusive lock of file `path` (created if missing) without waiting.
pub(crate) fn lock_file(path: PathBuf) -> Result<Lock, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path, "open lock file"))?;
    // SAFETY: flock on a descriptor we own; released when it is closed.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(StoreError::Locked { path });
        }
        return Err(io_err(&path, "lock")(e));
    }
    Ok(Lock { _file: file })
}

impl Recorder {
    /// Start recording `topic` into `store` (the topic's segments go to
    /// `<store>/<topic name>/`) on a background thread, through the backend
    /// [`RecorderConfig::storage`] picks for that directory.
    ///
    /// Before it returns, it takes the (topic, store) lock, recovers what a previous
    /// recorder left (see [`RecorderHandle::recovery`]) and attaches its subscriber,
    /// resuming exactly where the store ends.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] if another recorder holds this topic and store;
    /// [`StoreError::Corrupt`] for damage recovery cannot repair;
    /// [`StoreError::Discontinuity`] if the ring no longer holds the records after
    /// the store's end (unless [`RecorderConfig::accept_loss`]); I/O and attach errors.
    pub fn spawn<E: Payload>(
        topic: &Topic<E>,
        store: impl AsRef<Path>,
        config: RecorderConfig,
    ) -> Result<RecorderHandle, StoreError> {
        Recorder::start(topic, store.as_ref(), config, None)
    }

    /// [`Recorder::spawn`] with an explicit storage backend.
    ///
    /// # Errors
    ///
    /// As [`Recorder::spawn`].
    pub fn spawn_with<E: Payload>(
        topic: &Topic<E>,
        store: impl AsRef<Path>,
        config: RecorderConfig,
        storage: Box<dyn Storage>,
    ) -> Result<RecorderHandle, StoreError> {
        Recorder::start(topic, store.as_ref(), config, Some(storage))
    }

    /// [`Recorder::spawn_with`], or with the backend [`RecorderConfig::storage`]
    /// picks for the topic's store directory where `storage` is `None`.
    fn start<E: Payload>(
        topic: &Topic<E>,
        store: &Path,
        config: RecorderConfig,
        storage: Option<Box<dyn Storage>>,
    ) -> Result<RecorderHandle, StoreError> {
        let c = &config;
        let min_seg = (SEG_HEADER + FOOTER_SIZE + TRAILER_SIZE) as u64
            + crate::layout::record_size(topic.max_payload())
            + topic.schema().map(|s| s.encode().len() as u64).unwrap_or(0);
        if c.segment_size < min_seg {
            return Err(StoreError::InvalidConfig(format!(
                "segment size {} is below {min_seg}, the least that holds a largest record",
                c.segment_size
            )));
        }
        if c.write_size == 0 || c.max_in_flight == 0 || c.index_interval == 0 {
            return Err(StoreError::InvalidConfig(
                "write size, writes in flight and index interval must be positive".into(),
            ));
        }
        let dir = super::topic_dir(store, topic.name());
        std::fs::create_dir_all(&dir).map_err(io_err(&dir, "create store directory"))?;
        super::check_store_dir(&dir)?;
        let lock = lock(&dir)?;
        let storage = storage.unwrap_or_else(|| default_storage(&dir, config.storage));
        let schema = topic.schema().map(|s| s.encode()).unwrap_or_default();
        let report = recover(&dir, &schema, config.fsync != Fsync::Never, true)?;
        // The thread works on a raw view of the same ring.
        let bus_dir = topic
            .path()
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let raw: Topic<Raw> = Bus::open_dir(&bus_dir)?.topic(topic.name()).open()?;
        let (sub, skip_below) = attach(&raw, &config, report.end_position, config.accept_loss)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            persisted: AtomicU64::new(skip_below.max(sub.position())),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            error_count: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            storage: storage.name(),
        });
        let meta = topic.meta();
        let keep: Arc<dyn Send + Sync> = raw.inner.clone();
        let lossy = raw.mode() == Mode::Lossy;
        let syncer = storage.syncer();
        let syncs = SyncThread::spawn(
            format!("shmbus-sync-{}", topic.name()),
            syncer.clone(),
            shared.clone(),
            config.retry_interval,
        )
        .map_err(io_err(&dir, "spawn sync thread"))?;
        let mut rec = Rec {
            sub: Some(sub),
            topic: raw,
            store: store.to_path_buf(),
            dir: dir.clone(),
            cfg: config,
            storage,
            syncer,
            syncs,
            shared: shared.clone(),
            schema,
            type_id: meta.type_id,
            fingerprint: meta.fingerprint,
            seg: None,
            prep: None,
            batch: Vec::new(),
            batch_bytes: 0,
            batch_records: 0,
            batch_payload: 0,
            run: None,
            staging_commit: None,
            idx_staging: Vec::new(),
            scratch: Vec::new(),
            keep,
            lossy,
            committed: Mark::empty(0),
            unsynced_mark: None,
            seq: 0,
            order: VecDeque::new(),
            retry: Vec::new(),
            retry_at: Instant::now(),
            skip_below,
            last_sync: Instant::now(),
            dirty: false,
            unsynced_commit: None,
            last_retention: Instant::now(),
            spare: Vec::new(),
            idle_since: None,
            last_look: Instant::now(),
            taken: 0,
            _lock: lock,
        };
        if let Some(tail) = &report.tail {
            rec.continue_segment(tail)?;
        }
        let thread = std::thread::Builder::new()
            .name(format!("shmbus-rec-{}", topic.name()))
            .spawn(move || {
                let r = rec.run();
                if let Err(e) = &r {
                    rec.shared.report(StoreError::Stopped(e.to_string()));
                }
                r
            })
            .map_err(io_err(&dir, "spawn recorder thread"))?;
        Ok(RecorderHandle {
            shared,
            thread: Some(thread),
            report,
            dir,
        })
    }
}

/// Attach the recorder's subscriber so that it resumes at the store's end `end`.
/// Returns it and the position below which records are already stored.
fn attach(
    topic: &Topic<Raw>,
    cfg: &RecorderConfig,
    end: Option<u64>,
    accept_loss: bool,
) -> Result<(Subscriber<Raw>, u64), StoreError> {
    let start = match end {
        Some(e) => Start::Position(e),
        None => cfg.start,
    };
    let opened = topic
        .subscriber()
        .named(&cfg.name)
        .manual_commit(true)
        // Only the long-idle receive waits (see the module docs on waiting): it blocks
        // on the futex, so an idle recorder uses no CPU.
        .wait(Wait::Block)
        .start(start)
        .accept_loss(accept_loss)
        .open();
    let sub = match opened {
        Ok(s) => s,
        Err(AttachError::InvalidPosition(p)) => {
            return Err(StoreError::Discontinuity {
                stored_end: p,
                resume: topic.tail(),
            })
        }
        Err(AttachError::PositionLost { requested, oldest }) => {
            return Err(StoreError::Discontinuity {
                stored_end: requested,
                resume: oldest,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let e = end.unwrap_or(0);
    if end.is_some() && sub.position() > e && !accept_loss {
        return Err(StoreError::Discontinuity {
            stored_end: e,
            resume: sub.position(),
        });
    }
    Ok((sub, e))
}

impl RecorderHandle {
    /// What recovery found and did when this recorder started.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The topic's directory in the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything before this position is written (and committed in the ring).
    pub fn persisted(&self) -> u64 {
        self.shared.persisted.load(Ordering::Acquire)
    }

    /// Wait until everything before `position` is persisted; false on timeout.
    pub fn wait_persisted(&self, position: u64, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while self.persisted() < position {
            if t0.elapsed() >= timeout || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return self.persisted() >= position;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Counters.
    pub fn stats(&self) -> RecorderStats {
        let s = &self.shared;
        RecorderStats {
            records: s.records.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            segments: s.segments.load(Ordering::Relaxed),
            errors: s.error_count.load(Ordering::Relaxed),
            persisted: self.persisted(),
            storage: s.storage,
        }
    }

    /// Errors reported since the last call (I/O failures being retried, records lost
    /// in a lossy topic, re-attachments). At most 1024 are kept between calls; see
    /// [`RecorderStats::errors`] for the count.
    pub fn take_errors(&self) -> Vec<StoreError> {
        std::mem::take(&mut *self.shared.errors.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether the recorder thread has ended (stopped or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stop: write what was received, seal the current segment, wait for the syncs of
    /// sealed segments still to do, and return the counters. If writes keep failing it
    /// gives up on them (they stay in the ring, uncommitted, for the next recorder).
    ///
    /// # Errors
    ///
    /// The error that ended the recorder, if it failed; otherwise the first sync that
    /// failed while stopping and was given up (a [`StoreError::Io`] naming the file,
    /// whose data may then not be on stable storage; every failure was also counted in
    /// [`RecorderStats::errors`]).
    pub fn stop(mut self) -> Result<RecorderStats, StoreError> {
        self.finish()?;
        Ok(self.stats())
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => match t.join() {
                Ok(r) => r,
                Err(_) => Err(StoreError::Stopped("the recorder thread panicked".into())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for RecorderHandle {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The segment being written.
struct Seg {
    base: u64,
    path: PathBuf,
    /// Shared with the sync thread, which may still sync the files after the segment
    /// is sealed.
    file: Arc<File>,
    idx_path: PathBuf,
    idx_file: Arc<File>,
    idx_len: u64,
    sum: Summary,
}

impl Seg {
    /// The data file, then the index, for the sync thread.
    fn files(&self) -> Vec<syncs::SegFile> {
        vec![
            (self.file.clone(), self.path.clone()),
            (self.idx_file.clone(), self.idx_path.clone()),
        ]
    }
}

/// The state of the current segment as of a commit: what a rollback returns to.
#[derive(Debug, Clone, Copy)]
struct Mark {
    base: u64,
    idx_len: u64,
    sum: Summary,
}

impl Mark {
    fn empty(base: u64) -> Mark {
        Mark {
            base,
            idx_len: index::IDX_HEADER as u64,
            sum: Summary::new(),
        }
    }
}

/// One write in submission order: its tag, the position it lets us commit (with the
/// segment's state then), whether done.
struct Pending {
    tag: u64,
    commit: Option<(u64, Mark)>,
    done: bool,
    path: PathBuf,
}

/// A contiguous part of a batch: one write.
enum Extent {
    /// `len` bytes of the ring mapping at address `ptr`.
    Mapped { ptr: usize, len: usize, off: u64 },
    /// Copied records (lossy topics).
    Owned { buf: Vec<u8>, off: u64 },
}

struct Rec {
    /// Always `Some`, except while an evicted subscriber is replaced (the old one must
    /// be dropped before the new one takes the slot, or its drop would detach it).
    sub: Option<Subscriber<Raw>>,
    topic: Topic<Raw>,
    store: PathBuf,
    dir: PathBuf,
    cfg: RecorderConfig,
    storage: Box<dyn Storage>,
    /// Syncs on this thread ([`Fsync::EveryBatch`]).
    syncer: Arc<dyn Syncer>,
    /// Syncs sealed segments (and, with [`Fsync::Interval`], the current one) while
    /// this thread writes on.
    syncs: SyncThread,
    shared: Arc<Shared>,
    schema: Vec<u8>,
    type_id: u64,
    fingerprint: u64,
    seg: Option<Seg>,
    prep: Option<(File, PathBuf)>,
    /// The batch being gathered, and its size.
    batch: Vec<Extent>,
    batch_bytes: usize,
    /// Records and payload bytes in the batch (counted in the stats once written).
    batch_records: u64,
    batch_payload: u64,
    /// The run being gathered (`crc` not yet set).
    run: Option<IndexEntry>,
    staging_commit: Option<u64>,
    idx_staging: Vec<u8>,
    scratch: Vec<u8>,
    /// Keeps the ring mapping alive while writes read from it.
    keep: Arc<dyn Send + Sync>,
    lossy: bool,
    /// The current segment as of the last commit.
    committed: Mark,
    unsynced_mark: Option<Mark>,
    seq: u64,
    order: VecDeque<Pending>,
    retry: Vec<Write>,
    retry_at: Instant,
    skip_below: u64,
    last_sync: Instant,
    dirty: bool,
    unsynced_commit: Option<u64>,
    last_retention: Instant,
    spare: Vec<Vec<u8>>,
    /// When the recorder last found nothing new, if it has found nothing since.
    idle_since: Option<Instant>,
    /// When it last looked at the ring after a sleep, and the record bytes it has
    /// taken since (the arrival rate that sets the next sleep).
    last_look: Instant,
    taken: u64,
    _lock: Lock,
}

/// How long a caught-up recorder sleeps, having taken `taken` bytes of records in
/// the `window` since it last caught up (its sleep then, and the work since): as long
/// as an eighth of the ring takes to arrive at that rate, within [`IDLE_SLEEP_MIN`]
/// and the longest sleep for this ring (at most [`IDLE_SLEEP_MAX`], and no longer than
/// the ring takes to fill at [`BURST_BYTES_PER_NS`]).
fn idle_sleep(capacity: u64, taken: u64, window: Duration) -> Duration {
    let longest =
        Duration::from_nanos(capacity / BURST_BYTES_PER_NS).clamp(IDLE_SLEEP_MIN, IDLE_SLEEP_MAX);
    if taken == 0 {
        return longest;
    }
    let ns = u128::from(capacity / 8) * window.as_nanos() / u128::from(taken);
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)).clamp(IDLE_SLEEP_MIN, longest)
}

/// Why the loop gave up.
enum Halt {
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

impl Rec {
    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn run(&mut self) -> Result<(), StoreError> {
        let r = self.record();
        // Wait for the syncs still to do (giving up those that fail).
        let synced = self.syncs.finish();
        r.and(synced)
    }

    fn record(&mut self) -> Result<(), StoreError> {
        let r = self.main_loop();
        match r {
            Ok(()) | Err(Halt::Stop) => {}
            Err(Halt::Evicted) => {
                self.abandon_uncommitted()?;
                return Ok(());
            }
            Err(Halt::Fatal(e)) => return Err(e),
        }
        // Stopping: write what we have, then seal, giving up if writes keep failing.
        if self.flush().is_ok() && self.drain(true).is_ok() {
            self.try_commit();
            if self.seg.is_some() {
                match self.seal() {
                    Err(Halt::Fatal(e)) => return Err(e),
                    Err(Halt::Evicted) => self.abandon_uncommitted()?,
                    _ => {}
                }
            }
        }
        if let Some((_, p)) = self.prep.take() {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    fn main_loop(&mut self) -> Result<(), Halt> {
        loop {
            if self.stopping() {
                return Ok(());
            }
            self.pump(false)?;
            if !self.retry.is_empty() {
                // The storage is failing: retry, take nothing new meanwhile.
                self.resubmit_due();
                std::thread::sleep(self.cfg.retry_interval.min(Duration::from_millis(10)));
                continue;
            }
            self.try_commit();
            let idle = self.batch.is_empty() && self.storage.in_flight() == 0;
            let Some(sub) = self.sub.as_mut() else {
                return Err(Halt::Fatal(StoreError::Stopped(
                    "the recorder lost its subscriber".into(),
                )));
            };
            // After a while of idleness, wait in the subscriber (which also turns a
            // dead producer's abandoned claim into a gap).
            let long_idle = idle
                && self
                    .idle_since
                    .is_some_and(|t| t.elapsed() >= IDLE_BEFORE_BLOCK);
            let got = if long_idle {
                // Stays in this mode (`idle_since` is kept) until a record arrives.
                sub.recv_bytes_timeout(IDLE_BLOCK)
            } else {
                sub.try_recv_bytes()
            };
            if !matches!(got, Ok(None)) {
                self.idle_since = None;
            }
            let r = match got {
                Ok(Some(ev)) => {
                    let (pos, ts, next) = (ev.position(), ev.timestamp(), ev.next_position());
                    let len = ev.bytes().len() as u64;
                    self.taken += next.saturating_sub(pos);
                    if self.lossy {
                        // Lossy: the subscriber copied and re-validated the payload;
                        // write that copy (the ring may be overwritten at any time).
                        self.scratch.clear();
                        encode_record(&mut self.scratch, pos, ts, ev.type_id(), ev.bytes());
                    }
                    self.accept(pos, ts, next, len)
                }
                Ok(None) => {
                    if !long_idle {
                        // Caught up: hand the batch to the storage, then sleep while it
                        // is written and more records arrive (the loop reaps after).
                        // Polling the next record's commit word instead, or waiting for
                        // each write and taking the few records that came meanwhile,
                        // would chase the publisher: every look takes the line it
                        // writes next, and every tiny write wakes the kernel's worker.
                        let capacity = sub.topic().capacity();
                        self.flush()?;
                        let now = Instant::now();
                        if idle {
                            self.idle_since.get_or_insert(now);
                        }
                        // The records taken since the last catch-up came during the
                        // sleep before and the work since: the rate that sets this one.
                        let window = now - self.last_look;
                        std::thread::sleep(idle_sleep(capacity, self.taken, window));
                        self.last_look = now;
                        self.taken = 0;
                    }
                    self.maybe_sync();
                    self.maybe_retention();
                    Ok(())
                }
                Err(e) => self.recv_failed(e),
            };
            match r {
                Ok(()) => {}
                Err(Halt::Evicted) => self.evicted()?,
                Err(h) => return Err(h),
            }
            if self.batch_bytes >= self.cfg.write_size {
                self.flush()?;
            }
            while self.storage.in_flight() >= self.cfg.max_in_flight {
                self.pump(true)?;
            }
        }
    }

    /// What to do about a receive error (errors that can wait are only reported).
    fn recv_failed(&mut self, e: RecvError) -> Result<(), Halt> {
        match e {
            RecvError::Evicted => Err(Halt::Evicted),
            RecvError::Lagged { .. } => {
                self.shared.report(StoreError::Recv(e));
                Ok(())
            }
            e => {
                self.shared.report(StoreError::Recv(e));
                std::thread::sleep(Duration::from_millis(10));
                Ok(())
            }
        }
    }

    /// Evicted: trust nothing written since the last commit (producers may have
    /// overwritten the ring memory those writes read), cut it off, and take our slot
    /// back where we committed.
    fn evicted(&mut self) -> Result<(), Halt> {
        self.shared.report(StoreError::Recv(RecvError::Evicted));
        self.abandon_uncommitted()?;
        let end = self.shared.persisted.load(Ordering::Acquire);
        // Let the evicted subscriber go first: its drop would detach a successor that
        // took the same slot.
        self.sub = None;
        let (sub, _) = attach(&self.topic, &self.cfg, Some(end), self.cfg.accept_loss)?;
        if sub.position() != end {
            self.shared.report(StoreError::Discontinuity {
                stored_end: end,
                resume: sub.position(),
            });
        }
        self.sub = Some(sub);
        Ok(())
    }

    /// Drop the batch being gathered, wait for the writes in flight without committing
    /// them, and cut the current segment back to its last commit.
    fn abandon_uncommitted(&mut self) -> Result<(), StoreError> {
        self.batch.clear();
        self.batch_bytes = 0;
        self.batch_records = 0;
        self.batch_payload = 0;
        self.run = None;
        self.idx_staging.clear();
        self.staging_commit = None;
        // The writes may keep failing: give up on them (they are discarded anyway).
        let mut out = Vec::new();
        while self.storage.in_flight() > 0 {
            if self.storage.reap(1, &mut out).is_err() {
                break;
            }
            out.clear();
        }
        self.retry.clear();
        self.order.clear();
        self.unsynced_commit = None;
        self.unsynced_mark = None;
        let Some(seg) = self.seg.as_mut() else {
            return Ok(());
        };
        let m = if self.committed.base == seg.base {
            self.committed
        } else {
            Mark::empty(seg.base)
        };
        if m.sum.count == 0 {
            let (p, ip) = (seg.path.clone(), seg.idx_path.clone());
            self.seg = None;
            std::fs::remove_file(&p).map_err(io_err(&p, "remove segment"))?;
            let _ = std::fs::remove_file(&ip);
            return Ok(());
        }
        seg.file
            .set_len(m.sum.data_end)
            .map_err(io_err(&seg.path, "cut segment back to its last commit"))?;
        seg.idx_file
            .set_len(m.idx_len)
            .map_err(io_err(&seg.idx_path, "cut index back to its last commit"))?;
        seg.sum = m.sum;
        seg.idx_len = m.idx_len;
        let fd = seg.file.as_raw_fd();
        if let Err(e) = self.storage.allocate(fd, self.cfg.segment_size) {
            let p = seg.path.clone();
            self.shared.report(io_err(&p, "preallocate segment")(e));
        }
        Ok(())
    }

    /// Take the record at `pos` (just received; in `scratch` for a lossy topic).
    fn accept(&mut self, pos: u64, ts: u64, next: u64, len: u64) -> Result<(), Halt> {
        if pos < self.skip_below {
            // Already stored by the previous recorder.
            if self.order.is_empty() && self.batch.is_empty() {
                if let Some(sub) = self.sub.as_mut() {
                    sub.commit_to(next);
                }
                self.shared.persisted.store(next, Ordering::Release);
            }
            return Ok(());
        }
        let size = next - pos;
        let reserve = (FOOTER_SIZE + TRAILER_SIZE + self.schema.len()) as u64;
        let full = self.seg.as_ref().is_some_and(|s| {
            s.sum.count > 0 && s.sum.data_end + size + reserve > self.cfg.segment_size
        });
        if full {
            self.seal()?;
        }
        if self.seg.is_none() {
            self.open_segment(pos)?;
        }
        let mapped = if self.lossy {
            None
        } else {
            let ring = &self.topic.inner.ring;
            // SAFETY: the record at `pos` is committed (we just received it) and lies
            // inside the data region (a record never straddles its end). In a reliable
            // topic our published position, which stays at or before `pos` until the
            // write of this batch completes, keeps producers off it; that we were not
            // evicted meanwhile is checked before the batch is committed.
            let b = unsafe { ring.mem.data_slice(ring.data_off(pos), size as usize) };
            Some(b.as_ptr() as usize)
        };
        let contiguous = match (self.batch.last(), mapped) {
            (Some(Extent::Mapped { ptr, len, .. }), Some(p)) => ptr + len == p,
            (Some(Extent::Owned { .. }), None) => true,
            _ => false,
        };
        let interval = self.cfg.index_interval;
        let split = self.run.as_ref().is_some_and(|r| {
            r.position + r.len as u64 != pos
                || r.len as u64 >= interval
                || r.len as u64 + size > u32::MAX as u64
                || !contiguous
        });
        if split {
            self.close_run();
        }
        let Some(seg) = self.seg.as_mut() else {
            unreachable!("opened above")
        };
        let off = seg.sum.data_end;
        let run = self.run.get_or_insert(IndexEntry {
            position: pos,
            offset: off,
            max_ts_before: seg.sum.max_ts,
            len: 0,
            data_crc: 0,
            crc: 0,
            reserved: 0,
        });
        let bytes: &[u8] = match mapped {
            // SAFETY: as for `data_slice` above; the mapping lives as long as `self.topic`.
            Some(p) => unsafe { std::slice::from_raw_parts(p as *const u8, size as usize) },
            None => &self.scratch,
        };
        run.data_crc = crc32c::crc32c_append(run.data_crc, bytes);
        run.len += size as u32;
        match (self.batch.last_mut(), mapped) {
            (Some(Extent::Mapped { len, .. }), Some(_)) if contiguous => *len += size as usize,
            (Some(Extent::Owned { buf, .. }), None) => buf.extend_from_slice(bytes),
            (_, Some(p)) => self.batch.push(Extent::Mapped {
                ptr: p,
                len: size as usize,
                off,
            }),
            (_, None) => {
                let mut buf = self.spare.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(bytes);
                self.batch.push(Extent::Owned { buf, off });
            }
        }
        seg.sum.add(pos, ts, size);
        self.batch_bytes += size as usize;
        self.staging_commit = Some(next);
        self.batch_records += 1;
        self.batch_payload += len;
        Ok(())
    }

    /// Close the run being gathered: stage its index entry.
    fn close_run(&mut self) {
        let Some(r) = self.run.take() else { return };
        let e = IndexEntry::new(r.position, r.offset, r.max_ts_before, r.len, r.data_crc);
        index::encode_entries(&mut self.idx_staging, &[e]);
        if let Some(seg) = self.seg.as_mut() {
            seg.sum.add_crc(e.data_crc, e.len as u64);
        }
    }

    /// Submit the batch: its extents, then its index entries, which carry the commit.
    fn flush(&mut self) -> Result<(), Halt> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.close_run();
        let Some(seg) = self.seg.as_mut() else {
            return Ok(());
        };
        let (fd, path) = (seg.file.as_raw_fd(), seg.path.clone());
        let (ifd, ipath, ioff) = (seg.idx_file.as_raw_fd(), seg.idx_path.clone(), seg.idx_len);
        let ib = std::mem::take(&mut self.idx_staging);
        seg.idx_len += ib.len() as u64;
        let mark = Mark {
            base: seg.base,
            idx_len: seg.idx_len,
            sum: seg.sum,
        };
        let commit = self.staging_commit.take().map(|c| (c, mark));
        for ext in std::mem::take(&mut self.batch) {
            let (src, off) = match ext {
                Extent::Mapped { ptr, len, off } => {
                    // SAFETY: a range of the ring mapping holding committed records
                    // that producers cannot overwrite before we commit past them (see
                    // `accept`); `keep` keeps the mapping alive.
                    let m = unsafe { Mapped::new(ptr as *const u8, len, self.keep.clone()) };
                    (Source::Mapped(m), off)
                }
                Extent::Owned { buf, off } => (Source::Owned(buf), off),
            };
            self.write(fd, path.clone(), off, src, None);
        }
        self.batch_bytes = 0;
        let sh = &self.shared;
        sh.records
            .fetch_add(std::mem::take(&mut self.batch_records), Ordering::Relaxed);
        sh.bytes
            .fetch_add(std::mem::take(&mut self.batch_payload), Ordering::Relaxed);
        self.write(ifd, ipath, ioff, Source::Owned(ib), commit);
        Ok(())
    }

    fn write(
        &mut self,
        fd: RawFd,
        path: PathBuf,
        offset: u64,
        src: Source,
        commit: Option<(u64, Mark)>,
    ) {
        let tag = self.seq;
        self.seq += 1;
        self.order.push_back(Pending {
            tag,
            commit,
            done: false,
            path,
        });
        self.dirty = true;
        self.submit(Write {
            fd,
            offset,
            src,
            done: 0,
            tag,
        });
    }

    fn path_of(&self, tag: u64) -> PathBuf {
        self.order
            .iter()
            .find(|p| p.tag == tag)
            .map(|p| p.path.clone())
            .unwrap_or_default()
    }

    fn submit(&mut self, w: Write) {
        if let Err(b) = self.storage.submit(w) {
            let (w, e) = *b;
            let path = self.path_of(w.tag);
            self.shared.report(io_err(&path, "submit write")(e));
            self.retry.push(w);
            self.retry_at = Instant::now() + self.cfg.retry_interval;
        }
    }

    fn resubmit_due(&mut self) {
        if Instant::now() < self.retry_at {
            return;
        }
        for w in std::mem::take(&mut self.retry) {
            self.submit(w);
        }
    }

    /// Collect completions (waiting for one if `wait`), resubmit short writes, queue
    /// failed ones for retry, and commit the completed prefix.
    fn pump(&mut self, wait: bool) -> Result<(), Halt> {
        let mut out: Vec<Completion> = Vec::new();
        let min = usize::from(wait && self.storage.in_flight() > 0);
        if let Err(e) = self.storage.reap(min, &mut out) {
            self.shared.report(io_err(&self.dir, "reap completions")(e));
            std::thread::sleep(self.cfg.retry_interval);
        }
        let completed = !out.is_empty();
        for (mut w, r) in out {
            match r {
                Ok(n) if n > 0 || w.complete() => {
                    w.done += n;
                    if w.complete() {
                        if let Some(p) = self.order.iter_mut().find(|p| p.tag == w.tag) {
                            p.done = true;
                        }
                        if let Source::Owned(b) = w.src {
                            if self.spare.len() < self.cfg.max_in_flight {
                                self.spare.push(b);
                            }
                        }
                    } else {
                        self.submit(w); // short write: the rest
                    }
                }
                Ok(_) => {
                    let path = self.path_of(w.tag);
                    self.shared
                        .report(io_err(&path, "write")(std::io::Error::new(
                            std::io::ErrorKind::WriteZero,
                            "write returned 0 bytes",
                        )));
                    self.retry.push(w);
                    self.retry_at = Instant::now() + self.cfg.retry_interval;
                }
                Err(e) => {
                    let path = self.path_of(w.tag);
                    self.shared.report(io_err(&path, "write")(e));
                    self.retry.push(w);
                    self.retry_at = Instant::now() + self.cfg.retry_interval;
                }
            }
        }
        while self.order.front().is_some_and(|p| p.done) {
            if let Some(Pending {
                commit: Some((c, m)),
                ..
            }) = self.order.pop_front()
            {
                self.unsynced_commit = Some(c);
                self.unsynced_mark = Some(m);
            }
        }
        self.try_commit();
        if completed {
            self.maybe_sync();
        }
        Ok(())
    }

    /// Sync the current segment's data and index on this thread.
    fn sync_segment(&mut self) -> bool {
        if let Some(seg) = &self.seg {
            let r = self
                .syncer
                .sync(seg.file.as_raw_fd())
                .and_then(|()| self.syncer.sync(seg.idx_file.as_raw_fd()));
            if let Err(e) = r {
                self.shared.report(io_err(&seg.path, "sync")(e));
                return false;
            }
        }
        true
    }

    /// Commit the completed prefix (after a sync, with [`Fsync::EveryBatch`]), unless
    /// we were evicted: then the completed writes may hold overwritten bytes.
    fn try_commit(&mut self) {
        let Some(c) = self.unsynced_commit else {
            return;
        };
        if !self.lossy && self.sub.as_ref().is_none_or(|s| s.is_evicted()) {
            return;
        }
        if self.cfg.fsync == Fsync::EveryBatch {
            if !self.sync_segment() {
                return;
            }
            self.dirty = false;
        }
        self.unsynced_commit = None;
        if let Some(m) = self.unsynced_mark.take() {
            self.committed = m;
        }
        if let Some(sub) = self.sub.as_mut() {
            sub.commit_to(c);
        }
        self.shared.persisted.store(c, Ordering::Release);
    }

    /// Wait until every write is done. With `giving_up`, return as soon as the stop
    /// flag is set while writes are failing.
    fn drain(&mut self, giving_up: bool) -> Result<(), Halt> {
        while self.storage.in_flight() > 0 || !self.retry.is_empty() {
            if !self.retry.is_empty() {
                if giving_up && self.stopping() {
                    return Err(Halt::Stop);
                }
                if self.storage.in_flight() == 0 {
                    std::thread::sleep(self.cfg.retry_interval.min(Duration::from_millis(10)));
                }
                self.resubmit_due();
            }
            self.pump(true)?;
        }
        Ok(())
    }

    /// With [`Fsync::Interval`], once an interval has passed since the last sync,
    /// have the sync thread sync the current segment (after any sealed segment still
    /// waiting for its sync); a failure is reported and retried there.
    fn maybe_sync(&mut self) {
        let Fsync::Interval(every) = self.cfg.fsync else {
            return;
        };
        if !self.dirty || self.last_sync.elapsed() < every {
            return;
        }
        let Some(seg) = &self.seg else {
            return;
        };
        if !self.syncs.push(Job::Interval(seg.files())) {
            return; // the last one is still running: try again later
        }
        self.dirty = false;
        self.last_sync = Instant::now();
    }

    fn maybe_retention(&mut self) {
        let Some(policy) = &self.cfg.retention else {
            return;
        };
        if self.last_retention.elapsed() < self.cfg.retention_every {
            return;
        }
        self.last_retention = Instant::now();
        if let Err(e) = apply_retention(&self.topic, &self.store, policy) {
            self.shared.report(e);
        }
    }

    /// Seal the current segment: write and commit everything, then the footer, cut the
    /// preallocated rest, and hand the files to the sync thread (waiting first if too
    /// many sealed segments wait for their sync).
    fn seal(&mut self) -> Result<(), Halt> {
        self.flush()?;
        self.drain(true)?;
        self.try_commit();
        while self.unsynced_commit.is_some() {
            if self.sub.as_ref().is_none_or(|s| s.is_evicted()) {
                // Its last writes cannot be trusted: the caller cuts them off.
                return Err(Halt::Evicted);
            }
            // With `EveryBatch`, the sync before the commit failed (and was reported):
            // the segment's records must be committed, after a sync of this segment,
            // before it is sealed and the next one is synced instead.
            if self.stopping() {
                return Err(Halt::Stop);
            }
            std::thread::sleep(self.cfg.retry_interval);
            self.try_commit();
        }
        let Some(seg) = self.seg.as_ref() else {
            return Ok(());
        };
        let seal = seg.sum.seal_bytes(&self.schema);
        let end = seg.sum.data_end + seal.len() as u64;
        let (fd, path, off) = (seg.file.as_raw_fd(), seg.path.clone(), seg.sum.data_end);
        self.write(fd, path.clone(), off, Source::Owned(seal), None);
        self.drain(true)?;
        loop {
            let Some(seg) = self.seg.as_ref() else {
                return Ok(());
            };
            match seg.file.set_len(end) {
                Ok(()) => break,
                Err(e) => {
                    self.shared.report(io_err(&path, "seal segment")(e));
                    if self.stopping() {
                        return Err(Halt::Stop);
                    }
                    std::thread::sleep(self.cfg.retry_interval);
                }
            }
        }
        if let Some(seg) = self.seg.take() {
            if self.cfg.fsync != Fsync::Never {
                let stop = &self.shared.stop;
                self.syncs.wait_for_room(|| stop.load(Ordering::SeqCst));
                self.syncs.push(Job::Seal(seg.files()));
            }
        }
        Ok(())
    }

    /// Start the segment whose first record is at `base`, using the prepared file.
    fn open_segment(&mut self, base: u64) -> Result<(), Halt> {
        loop {
            match self.try_open_segment(base) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.shared.report(e);
                    if self.stopping() {
                        return Err(Halt::Stop);
                    }
                    std::thread::sleep(self.cfg.retry_interval);
                }
            }
        }
    }

    fn try_open_segment(&mut self, base: u64) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let path = self.dir.join(seg_name(base));
        // Both headers are in place before the segment appears under its name, so a
        // reader never finds a segment without them.
        let idx_path = self.dir.join(idx_name(base));
        let idx_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&idx_path)
            .map_err(io_err(&idx_path, "create index"))?;
        idx_file
            .write_all_at(&index::header(base), 0)
            .map_err(io_err(&idx_path, "write index header"))?;
        let sh = header_bytes(base, self.type_id, self.fingerprint);
        let (file, tmp) = match self.prep.take() {
            Some((f, p)) => (f, p),
            None => {
                let p = prepared_path(&self.dir);
                (self.new_file(&p)?, p)
            }
        };
        if let Err(e) = file.write_all_at(&sh, 0) {
            self.prep = Some((file, tmp));
            return Err(io_err(&path, "write segment header")(e));
        }
        if let Err(e) = std::fs::rename(&tmp, &path) {
            self.prep = Some((file, tmp));
            return Err(io_err(&path, "rename prepared segment")(e));
        }
        // The new name must be on disk before the segment's data is synced. With
        // `EveryBatch` that happens here, on the way to a commit; with `Interval` the
        // sync thread does it before the segment's own syncs (this thread would wait
        // for a journal commit meanwhile, often behind the sealed segment's sync).
        match self.cfg.fsync {
            Fsync::Never => {}
            Fsync::EveryBatch => {
                if let Ok(d) = File::open(&self.dir) {
                    let _ = d.sync_all();
                }
            }
            Fsync::Interval(_) => match File::open(&self.dir) {
                Ok(d) => {
                    self.syncs.push(Job::Dir((Arc::new(d), self.dir.clone())));
                }
                Err(e) => self
                    .shared
                    .report(io_err(&self.dir, "open store directory")(e)),
            },
        }
        self.seg = Some(Seg {
            base,
            path: path.clone(),
            file: Arc::new(file),
            idx_path: idx_path.clone(),
            idx_file: Arc::new(idx_file),
            idx_len: index::IDX_HEADER as u64,
            sum: Summary::new(),
        });
        self.committed = Mark::empty(base);
        self.shared.segments.fetch_add(1, Ordering::Relaxed);
        self.prepare_next();
        Ok(())
    }

    /// Prepare the next segment now so the next rollover does not wait for allocation.
    fn prepare_next(&mut self) {
        if self.prep.is_some() {
            return;
        }
        let prep = prepared_path(&self.dir);
        match self.new_file(&prep) {
            Ok(f) => self.prep = Some((f, prep)),
            Err(e) => self.shared.report(e),
        }
    }

    /// Continue the unsealed tail segment recovery left open.
    fn continue_segment(&mut self, tail: &OpenTail) -> Result<(), StoreError> {
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .map_err(io_err(p, "open segment to continue it"))
        };
        let file = open(&tail.path)?;
        let idx_path = idx_path(&tail.path);
        let idx_file = open(&idx_path)?;
        if let Err(e) = self
            .storage
            .allocate(file.as_raw_fd(), self.cfg.segment_size)
        {
            self.shared
                .report(io_err(&tail.path, "preallocate segment")(e));
        }
        let idx_len = (index::IDX_HEADER + tail.runs * index::ENTRY_SIZE) as u64;
        self.seg = Some(Seg {
            base: tail.base,
            path: tail.path.clone(),
            file: Arc::new(file),
            idx_path,
            idx_file: Arc::new(idx_file),
            idx_len,
            sum: tail.summary,
        });
        self.committed = Mark {
            base: tail.base,
            idx_len,
            sum: tail.summary,
        };
        self.prepare_next();
        Ok(())
    }

    fn new_file(&mut self, path: &Path) -> Result<File, StoreError> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_err(path, "create segment"))?;
        if let Err(e) = self.storage.allocate(f.as_raw_fd(), self.cfg.segment_size) {
            // Not fatal: writes will tell if the space is really missing.
            self.shared.report(io_err(path, "preallocate segment")(e));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_up_recorder_sleeps_while_an_eighth_of_the_ring_arrives() {
        let ms = Duration::from_millis;
        // Nothing arrived: the longest sleep for the ring, which a burst at 1 GB/s
        // would not fill: about 1 ms for 1 MiB, at most 4 ms.
        assert_eq!(idle_sleep(1 << 20, 0, ms(1)), Duration::from_nanos(1 << 20));
        assert_eq!(idle_sleep(64 << 20, 0, ms(1)), IDLE_SLEEP_MAX);
        // 4 MiB ring, 100 KiB in 1 ms: an eighth (512 KiB) takes 5.12 ms, cut to 4 ms.
        assert_eq!(idle_sleep(4 << 20, 100 << 10, ms(1)), IDLE_SLEEP_MAX);
        // 64 MiB ring, 4 MiB in 1 ms: an eighth takes 2 ms.
        assert_eq!(idle_sleep(64 << 20, 4 << 20, ms(1)), ms(2));
        // 1 MiB ring, 16 KiB in 1 ms: an eighth (128 KiB) takes 8 ms, cut to the
        // ring's longest.
        assert_eq!(
            idle_sleep(1 << 20, 16 << 10, ms(1)),
            Duration::from_nanos(1 << 20)
        );
        // 512 KiB in 1 ms: an eighth takes 250 µs.
        assert_eq!(
            idle_sleep(1 << 20, 512 << 10, ms(1)),
            Duration::from_micros(250)
        );
        // A fast stream into a small ring: never below the shortest sleep.
        assert_eq!(idle_sleep(64 << 10, 1 << 30, ms(1)), IDLE_SLEEP_MIN);
    }
}
