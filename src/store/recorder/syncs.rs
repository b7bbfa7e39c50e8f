//! The recorder's sync thread: it makes segments durable while the recorder writes on.
//!
//! The recorder hands it jobs in order: a sealed segment's data and index to sync, and
//! with [`Fsync::Interval`](super::Fsync::Interval) the store directory once a new
//! segment has its name, and the current segment once an interval has passed. It runs
//! them one at a time, in that order, so a later sync never completes before an
//! earlier one.
//!
//! A failed sync is reported to the owner (with the file's path) and retried every
//! retry interval; while [`MAX_SEALS`] sealed segments wait for their sync, the
//! recorder waits before handing over another, so a failing or slow disk holds the
//! recorder back after a bounded amount of unsynced data instead of piling it up.
//! Once the recorder is stopping, a sync that fails is given up (reported) and the
//! next job is tried: [`SyncThread::finish`] returns the first sync given up.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Shared;
use crate::store::storage::Syncer;
use crate::store::{io_err, StoreError};

/// Sealed segments that may wait for their sync before the recorder waits too.
pub(super) const MAX_SEALS: usize = 2;

/// A file of a segment (or the store directory) and its path (for messages).
pub(super) type SegFile = (Arc<File>, PathBuf);

/// What to do with a segment's files.
pub(super) enum Job {
    /// A sealed segment: sync its data, then its index.
    Seal(Vec<SegFile>),
    /// The segment being written: sync its data, then its index.
    Interval(Vec<SegFile>),
    /// The store directory, after a segment was renamed into it.
    Dir(SegFile),
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Seal jobs queued or running.
    seals: usize,
    /// An interval job is queued or running.
    interval: bool,
    /// No more jobs come; give up syncs that fail.
    closed: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Signalled when a job is queued, when one is done and when the thread is closed.
    cv: Condvar,
    syncer: Arc<dyn Syncer>,
    shared: Arc<Shared>,
    retry: Duration,
}

/// The sync thread and its queue.
pub(super) struct SyncThread {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
}

impl SyncThread {
    /// Start the thread.
    pub(super) fn spawn(
        name: String,
        syncer: Arc<dyn Syncer>,
        shared: Arc<Shared>,
        retry: Duration,
    ) -> io::Result<SyncThread> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            syncer,
            shared,
            retry,
        });
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || i.run())?;
        Ok(SyncThread {
            inner,
            thread: Some(thread),
        })
    }

    /// Queue a job. An interval sync is not queued while one is waiting or running
    /// (the recorder asks again later); returns whether the job was queued.
    pub(super) fn push(&self, job: Job) -> bool {
        let mut s = self.inner.lock();
        match &job {
            Job::Seal(_) => s.seals += 1,
            Job::Interval(_) if s.interval => return false,
            Job::Interval(_) => s.interval = true,
            Job::Dir(_) => {}
        }
        s.jobs.push_back(job);
        self.inner.cv.notify_all();
        true
    }

    /// Wait until fewer than [`MAX_SEALS`] sealed segments wait for their sync, or
    /// `stop()` says to stop waiting (or the thread ended, which only a panic does).
    pub(super) fn wait_for_room(&self, stop: impl Fn() -> bool) {
        let ended = || self.thread.as_ref().is_none_or(|t| t.is_finished());
        let mut s = self.inner.lock();
        while s.seals >= MAX_SEALS && !stop() && !ended() {
            s = self
                .inner
                .cv
                .wait_timeout(s, Duration::from_millis(10))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Run the jobs still queued (giving up syncs that fail), then end the thread.
    ///
    /// # Errors
    ///
    /// The first sync that was given up: that file may not be on stable storage.
    pub(super) fn finish(&mut self) -> Result<(), StoreError> {
        {
            let mut s = self.inner.lock();
            s.closed = true;
            self.inner.cv.notify_all();
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(StoreError::Stopped("the sync thread panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn giving_up(&self) -> bool {
        self.lock().closed || self.shared.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn run(&self) -> Result<(), StoreError> {
        let mut first_lost = None;
        loop {
            let job = {
                let mut s = self.lock();
                loop {
                    if let Some(j) = s.jobs.pop_front() {
                        break j;
                    }
                    if s.closed {
                        return first_lost.map_or(Ok(()), Err);
                    }
                    s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
                }
            };
            let r = match &job {
                Job::Seal(files) => self.sync_files(files, "sync sealed segment"),
                Job::Interval(files) => self.sync_files(files, "sync"),
                Job::Dir(dir) => self.sync_files(std::slice::from_ref(dir), "sync directory"),
            };
            if let Err(e) = r {
                first_lost.get_or_insert(e);
            }
            let mut s = self.lock();
            match job {
                Job::Seal(_) => s.seals -= 1,
                Job::Interval(_) => s.interval = false,
                Job::Dir(_) => {}
            }
            self.cv.notify_all();
        }
    }

    /// Sync each file in turn, retrying a failure (reported each time) until it
    /// succeeds or the recorder is stopping.
    fn sync_files(&self, files: &[SegFile], what: &'static str) -> Result<(), StoreError> {
        for (file, path) in files {
            loop {
                let e = match self.syncer.sync(file.as_raw_fd()) {
                    Ok(()) => break,
                    Err(e) => e,
                };
                let copy = match e.raw_os_error() {
                    Some(n) => io::Error::from_raw_os_error(n),
                    None => io::Error::new(e.kind(), e.to_string()),
                };
                self.shared.report(io_err(path, what)(e));
                if self.giving_up() {
                    return Err(io_err(path, "sync (given up when stopping)")(copy));
                }
                let s = self.lock();
                // Woken early when the recorder closes the thread.
                let _ = self.cv.wait_timeout_while(s, self.retry, |s| !s.closed);
            }
        }
        Ok(())
    }
}
