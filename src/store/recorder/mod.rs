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
//! the recorder computes the crc32c of each run (see [`super::format::index`]) and writes the
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
//! # Code
//!
//! This file is the API (configuration, spawning, the handle, the lock); the thread's
//! state is grouped by job in `state` (files, batch, writes in flight, commits, syncs,
//! pacing), its loop and batches are in `writer`, the writes in flight and commits in
//! `pipeline`, segment files (open, continue, seal) in `seal`, and the sync thread in
//! `syncs`.
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
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::format::index;
use super::format::names::lock_path;
use super::format::segment::{FOOTER_SIZE, SEG_HEADER, TRAILER_SIZE};
use super::recovery::{recover, RecoveryReport};
use super::retention::Retention;
use super::storage::{default_storage, Storage, StorageKind};
use super::{io_err, StoreError};
use crate::error::AttachError;
use crate::ring::layout::Mode;
use crate::topic::subscriber::{Start, Subscriber};
use crate::topic::wait::Wait;
use crate::topic::{Bus, Payload, Raw, Topic};

mod pipeline;
mod seal;
mod state;
mod syncs;
mod writer;

use state::{Batch, Commits, Files, Pace, Rec, Syncing, Writes};
use syncs::SyncThread;

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
            + crate::ring::layout::record_size(topic.max_payload())
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
        let now = Instant::now();
        let mut rec = Rec {
            sub: Some(sub),
            topic: raw,
            store: store.to_path_buf(),
            dir: dir.clone(),
            cfg: config,
            shared: shared.clone(),
            keep,
            lossy,
            files: Files {
                seg: None,
                prep: None,
                schema,
                type_id: meta.type_id,
                fingerprint: meta.fingerprint,
            },
            batch: Batch::default(),
            io: Writes {
                storage,
                seq: 0,
                order: VecDeque::new(),
                retry: Vec::new(),
                retry_at: now,
            },
            commits: Commits {
                committed: state::Mark::empty(0),
                unsynced: None,
                unsynced_mark: None,
                skip_below,
            },
            sync: Syncing {
                syncer,
                thread: syncs,
                last: now,
                dirty: false,
            },
            pace: Pace {
                idle_since: None,
                last_look: now,
                taken: 0,
                last_retention: now,
            },
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
