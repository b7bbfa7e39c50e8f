//! The recorder: a named subscriber that persists every record of a topic into
//! segments, advancing its position only once the records before it are written.
//!
//! # Pipeline
//!
//! Records are received (manual commit: the position in the ring does not move on
//! receive) and copied once, straight from the ring mapping, into a staging buffer,
//! stamping each record's crc32c on the way (so writes are not issued from the
//! mapping itself; the copy runs at memory speed). The buffer is written in chunks of
//! [`RecorderConfig::write_size`] through a [`Storage`] backend, up to
//! [`RecorderConfig::max_in_flight`] at once. Writes may complete out of order; the
//! position is committed to the end of the longest prefix of completed writes. A
//! failed write (EIO, ENOSPC, ...) is reported to the owner through
//! [`RecorderHandle::take_errors`] and retried every [`RecorderConfig::retry_interval`];
//! meanwhile nothing new is received, and in a reliable topic the ring keeps every
//! unpersisted record (producers wait once it is full).
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
//! - [`Fsync::Interval`]: at most the last interval's records.
//! - [`Fsync::EveryBatch`]: nothing the recorder committed: each batch is synced before
//!   its position is committed, so the ring still holds anything not yet on stable
//!   storage (but the ring itself, in `/dev/shm`, does not survive a power failure).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::index::{self, IndexEntry};
use super::recovery::{recover_topic, RecoveryReport};
use super::retention::{apply_retention, Retention};
use super::segment::{self, encode_record, Summary, FOOTER_SIZE, SEG_HEADER, TRAILER_SIZE};
use super::storage::{default_storage, Completion, Storage, Write};
use super::{io_err, StoreError};
use crate::bus::{Bus, Payload, Raw, Topic};
use crate::error::{AttachError, RecvError};
use crate::subscriber::{Start, Subscriber};

/// When the recorder syncs segment data to stable storage. See the [module
/// docs](self) for what each policy can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Never sync; the kernel writes back when it likes.
    Never,
    /// Sync at most this often while data is being written.
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
    /// Bytes per write (default 256 KiB).
    pub write_size: usize,
    /// Writes in flight at once (default 8).
    pub max_in_flight: usize,
    /// Sync policy (default every second).
    pub fsync: Fsync,
    /// Bytes between index entries (default 4 KiB).
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

struct Lock {
    _file: File,
}

fn lock(dir: &Path) -> Result<Lock, StoreError> {
    let path = dir.join(".lock");
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
    /// `<store>/<topic name>/`) on a background thread, with io_uring if available.
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
        Recorder::spawn_with(topic, store, config, default_storage())
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
        let dir = super::topic_dir(store.as_ref(), topic.name());
        std::fs::create_dir_all(&dir).map_err(io_err(&dir, "create store directory"))?;
        super::check_store_dir(&dir)?;
        let lock = lock(&dir)?;
        let schema = topic.schema().map(|s| s.encode()).unwrap_or_default();
        let report = recover_topic(&dir, &schema, config.fsync != Fsync::Never)?;
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
        let mut rec = Rec {
            sub,
            topic: raw,
            store: store.as_ref().to_path_buf(),
            dir: dir.clone(),
            cfg: config,
            storage,
            shared: shared.clone(),
            schema,
            type_id: meta.type_id,
            fingerprint: meta.fingerprint,
            seg: None,
            prep: None,
            staging: Vec::new(),
            staging_off: 0,
            staging_commit: None,
            idx_staging: Vec::new(),
            scratch: Vec::new(),
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
            _lock: lock,
        };
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

    /// Stop: write what was received, seal the current segment and return the counters.
    /// If writes keep failing it gives up on them (they stay in the ring, uncommitted,
    /// for the next recorder).
    ///
    /// # Errors
    ///
    /// The error that ended the recorder, if it failed.
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
    file: File,
    idx_path: PathBuf,
    idx_file: File,
    idx_len: u64,
    sum: Summary,
    last_entry: Option<u64>,
}

/// One write in submission order: its tag, the position it lets us commit, whether done.
struct Pending {
    tag: u64,
    commit: Option<u64>,
    done: bool,
    path: PathBuf,
}

struct Rec {
    sub: Subscriber<Raw>,
    topic: Topic<Raw>,
    store: PathBuf,
    dir: PathBuf,
    cfg: RecorderConfig,
    storage: Box<dyn Storage>,
    shared: Arc<Shared>,
    schema: Vec<u8>,
    type_id: u64,
    fingerprint: u64,
    seg: Option<Seg>,
    prep: Option<(File, PathBuf)>,
    staging: Vec<u8>,
    staging_off: u64,
    staging_commit: Option<u64>,
    idx_staging: Vec<u8>,
    scratch: Vec<u8>,
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
    _lock: Lock,
}

/// Why the loop gave up.
enum Halt {
    Stop,
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
        let r = self.main_loop();
        match r {
            Ok(()) | Err(Halt::Stop) => {}
            Err(Halt::Fatal(e)) => return Err(e),
        }
        // Stopping: write what we have, then seal, giving up if writes keep failing.
        if self.flush().is_ok() && self.drain(true).is_ok() {
            self.try_commit();
            if self.seg.is_some() {
                if let Err(Halt::Fatal(e)) = self.seal() {
                    return Err(e);
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
            let idle = self.staging.is_empty() && self.storage.in_flight() == 0;
            let got = if idle {
                self.sub.recv_bytes_timeout(Duration::from_millis(20))
            } else {
                self.sub.try_recv_bytes()
            };
            match got {
                Ok(Some(ev)) => {
                    let (pos, ts, next) = (ev.position(), ev.timestamp(), ev.next_position());
                    self.scratch.clear();
                    encode_record(&mut self.scratch, pos, ts, ev.type_id(), ev.bytes());
                    let len = ev.bytes().len() as u64;
                    self.accept(pos, ts, next, len)?;
                }
                Ok(None) => {
                    self.flush()?;
                    if self.storage.in_flight() > 0 {
                        // Nothing to receive: wait for a write instead of spinning.
                        self.pump(true)?;
                    }
                    self.maybe_sync();
                    self.maybe_retention();
                }
                Err(e) => self.recv_failed(e)?,
            }
            if self.staging.len() >= self.cfg.write_size {
                self.flush()?;
            }
            while self.storage.in_flight() >= self.cfg.max_in_flight {
                self.pump(true)?;
            }
            self.maybe_sync();
        }
    }

    fn recv_failed(&mut self, e: RecvError) -> Result<(), Halt> {
        match e {
            RecvError::Evicted => {
                self.shared.report(StoreError::Recv(RecvError::Evicted));
                // Write out what we hold, then take our slot back where we committed.
                self.flush()?;
                self.drain(false)?;
                self.try_commit();
                let end = self.shared.persisted.load(Ordering::Acquire);
                let (sub, _) = attach(&self.topic, &self.cfg, Some(end), self.cfg.accept_loss)?;
                if sub.position() != end {
                    self.shared.report(StoreError::Discontinuity {
                        stored_end: end,
                        resume: sub.position(),
                    });
                }
                self.sub = sub;
                Ok(())
            }
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

    /// Take the record now in `scratch`.
    fn accept(&mut self, pos: u64, ts: u64, next: u64, len: u64) -> Result<(), Halt> {
        if pos < self.skip_below {
            // Already stored by the previous recorder.
            if self.order.is_empty() && self.staging.is_empty() {
                self.sub.commit_to(next);
                self.shared.persisted.store(next, Ordering::Release);
            }
            return Ok(());
        }
        let size = self.scratch.len() as u64;
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
        let Some(seg) = self.seg.as_mut() else {
            unreachable!("opened above")
        };
        let off = seg.sum.data_end;
        if seg
            .last_entry
            .is_none_or(|l| off - l >= self.cfg.index_interval)
        {
            index::encode_entries(
                &mut self.idx_staging,
                &[IndexEntry::new(pos, off, seg.sum.max_ts)],
            );
            seg.last_entry = Some(off);
        }
        if self.staging.is_empty() {
            self.staging_off = off;
        }
        self.staging.extend_from_slice(&self.scratch);
        seg.sum.add(pos, ts, &self.scratch);
        self.staging_commit = Some(next);
        self.shared.records.fetch_add(1, Ordering::Relaxed);
        self.shared.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    fn buffer(&mut self) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b.reserve(self.cfg.write_size + 4096);
        b
    }

    /// Submit the staged records (and index entries).
    fn flush(&mut self) -> Result<(), Halt> {
        if self.staging.is_empty() {
            return Ok(());
        }
        let Some(seg) = self.seg.as_ref() else {
            return Ok(());
        };
        let (fd, path) = (seg.file.as_raw_fd(), seg.path.clone());
        let (ifd, ipath, ioff) = (seg.idx_file.as_raw_fd(), seg.idx_path.clone(), seg.idx_len);
        let fresh = self.buffer();
        let buf = std::mem::replace(&mut self.staging, fresh);
        let commit = self.staging_commit.take();
        self.write(fd, path, self.staging_off, buf, commit);
        if !self.idx_staging.is_empty() {
            let ib = std::mem::take(&mut self.idx_staging);
            if let Some(seg) = self.seg.as_mut() {
                seg.idx_len += ib.len() as u64;
            }
            self.write(ifd, ipath, ioff, ib, None);
        }
        Ok(())
    }

    fn write(&mut self, fd: RawFd, path: PathBuf, offset: u64, buf: Vec<u8>, commit: Option<u64>) {
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
            buf,
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
        for (mut w, r) in out {
            match r {
                Ok(n) if n > 0 || w.complete() => {
                    w.done += n;
                    if w.complete() {
                        if let Some(p) = self.order.iter_mut().find(|p| p.tag == w.tag) {
                            p.done = true;
                        }
                        if self.spare.len() < self.cfg.max_in_flight {
                            self.spare.push(w.buf);
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
                commit: Some(c), ..
            }) = self.order.pop_front()
            {
                self.unsynced_commit = Some(c);
            }
        }
        self.try_commit();
        Ok(())
    }

    /// Commit the completed prefix (after a sync, with [`Fsync::EveryBatch`]).
    fn try_commit(&mut self) {
        let Some(c) = self.unsynced_commit else {
            return;
        };
        if self.cfg.fsync == Fsync::EveryBatch {
            if let Some(seg) = &self.seg {
                if let Err(e) = self.storage.sync(seg.file.as_raw_fd()) {
                    self.shared.report(io_err(&seg.path, "sync")(e));
                    return;
                }
            }
            self.dirty = false;
        }
        self.unsynced_commit = None;
        self.sub.commit_to(c);
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

    fn maybe_sync(&mut self) {
        let Fsync::Interval(every) = self.cfg.fsync else {
            return;
        };
        if !self.dirty || self.last_sync.elapsed() < every {
            return;
        }
        if let Some(seg) = &self.seg {
            if let Err(e) = self.storage.sync(seg.file.as_raw_fd()) {
                self.shared.report(io_err(&seg.path, "sync")(e));
                return;
            }
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

    /// Seal the current segment: write everything, then the footer, cut the
    /// preallocated rest, sync.
    fn seal(&mut self) -> Result<(), Halt> {
        self.flush()?;
        self.drain(true)?;
        self.try_commit();
        let Some(seg) = self.seg.as_ref() else {
            return Ok(());
        };
        let seal = seg.sum.seal_bytes(&self.schema);
        let end = seg.sum.data_end + seal.len() as u64;
        let (fd, path, off) = (seg.file.as_raw_fd(), seg.path.clone(), seg.sum.data_end);
        self.write(fd, path.clone(), off, seal, None);
        self.drain(true)?;
        loop {
            let Some(seg) = self.seg.as_ref() else {
                return Ok(());
            };
            let r = seg.file.set_len(end).and_then(|()| match self.cfg.fsync {
                Fsync::Never => Ok(()),
                _ => self
                    .storage
                    .sync(seg.file.as_raw_fd())
                    .and_then(|()| self.storage.sync(seg.idx_file.as_raw_fd())),
            });
            match r {
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
        self.seg = None;
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
        let path = self.dir.join(segment::seg_name(base));
        let file = match self.prep.take() {
            Some((f, p)) => {
                std::fs::rename(&p, &path).map_err(io_err(&path, "rename prepared segment"))?;
                f
            }
            None => self.new_file(&path)?,
        };
        let idx_path = self.dir.join(segment::idx_name(base));
        let idx_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&idx_path)
            .map_err(io_err(&idx_path, "create index"))?;
        if self.cfg.fsync != Fsync::Never {
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        let mut sum = Summary::new();
        sum.data_end = SEG_HEADER as u64;
        self.seg = Some(Seg {
            base,
            path: path.clone(),
            file,
            idx_path: idx_path.clone(),
            idx_file,
            idx_len: 0,
            sum,
            last_entry: None,
        });
        self.shared.segments.fetch_add(1, Ordering::Relaxed);
        // Index header, then the segment header staged before the first record.
        let ifd = self
            .seg
            .as_ref()
            .map(|s| s.idx_file.as_raw_fd())
            .unwrap_or(-1);
        self.write(ifd, idx_path, 0, index::header(base).to_vec(), None);
        if let Some(s) = self.seg.as_mut() {
            s.idx_len = index::IDX_HEADER as u64;
        }
        let mut b = self.buffer();
        b.extend_from_slice(&segment::header_bytes(base, self.type_id, self.fingerprint));
        self.staging = b;
        self.staging_off = 0;
        // Prepare the next one now so the next rollover does not wait for allocation.
        let prep = self.dir.join(".next.prep");
        match self.new_file(&prep) {
            Ok(f) => self.prep = Some((f, prep)),
            Err(e) => self.shared.report(e),
        }
        debug_assert!(self.seg.as_ref().is_some_and(|s| s.base == base));
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
