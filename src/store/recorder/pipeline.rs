//! The writes in flight and what they let the recorder commit: submitting to the
//! storage backend, reaping completions (short writes resubmitted, failed ones
//! retried), committing the completed prefix in the ring, and the syncs and retention
//! that go with it.

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::state::{Halt, Mark, Pending, Rec};
use super::syncs::Job;
use super::Fsync;
use crate::store::io_err;
use crate::store::retention::apply_retention;
use crate::store::storage::{Completion, Source, Write};

impl Rec {
    pub(super) fn write(
        &mut self,
        fd: RawFd,
        path: PathBuf,
        offset: u64,
        src: Source,
        commit: Option<(u64, Mark)>,
    ) {
        let tag = self.io.seq;
        self.io.seq += 1;
        self.io.order.push_back(Pending {
            tag,
            commit,
            done: false,
            path,
        });
        self.sync.dirty = true;
        self.submit(Write {
            fd,
            offset,
            src,
            done: 0,
            tag,
        });
    }

    pub(super) fn path_of(&self, tag: u64) -> PathBuf {
        self.io
            .order
            .iter()
            .find(|p| p.tag == tag)
            .map(|p| p.path.clone())
            .unwrap_or_default()
    }

    pub(super) fn submit(&mut self, w: Write) {
        if let Err(b) = self.io.storage.submit(w) {
            let (w, e) = *b;
            let path = self.path_of(w.tag);
            self.shared.report(io_err(&path, "submit write")(e));
            self.io.retry.push(w);
            self.io.retry_at = Instant::now() + self.cfg.retry_interval;
        }
    }

    pub(super) fn resubmit_due(&mut self) {
        if Instant::now() < self.io.retry_at {
            return;
        }
        for w in std::mem::take(&mut self.io.retry) {
            self.submit(w);
        }
    }

    /// Collect completions (waiting for one if `wait`), resubmit short writes, queue
    /// failed ones for retry, and commit the completed prefix.
    pub(super) fn pump(&mut self, wait: bool) -> Result<(), Halt> {
        let mut out: Vec<Completion> = Vec::new();
        let min = usize::from(wait && self.io.storage.in_flight() > 0);
        if let Err(e) = self.io.storage.reap(min, &mut out) {
            self.shared.report(io_err(&self.dir, "reap completions")(e));
            std::thread::sleep(self.cfg.retry_interval);
        }
        let completed = !out.is_empty();
        for (mut w, r) in out {
            match r {
                Ok(n) if n > 0 || w.complete() => {
                    w.done += n;
                    if w.complete() {
                        if let Some(p) = self.io.order.iter_mut().find(|p| p.tag == w.tag) {
                            p.done = true;
                        }
                        if let Source::Owned(b) = w.src {
                            if self.batch.spare.len() < self.cfg.max_in_flight {
                                self.batch.spare.push(b);
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
                    self.io.retry.push(w);
                    self.io.retry_at = Instant::now() + self.cfg.retry_interval;
                }
                Err(e) => {
                    let path = self.path_of(w.tag);
                    self.shared.report(io_err(&path, "write")(e));
                    self.io.retry.push(w);
                    self.io.retry_at = Instant::now() + self.cfg.retry_interval;
                }
            }
        }
        while self.io.order.front().is_some_and(|p| p.done) {
            if let Some(Pending {
                commit: Some((c, m)),
                ..
            }) = self.io.order.pop_front()
            {
                self.commits.unsynced = Some(c);
                self.commits.unsynced_mark = Some(m);
            }
        }
        self.try_commit();
        if completed {
            self.maybe_sync();
        }
        Ok(())
    }

    /// Sync the current segment's data and index on this thread.
    pub(super) fn sync_segment(&mut self) -> bool {
        if let Some(seg) = &self.files.seg {
            let r = self
                .sync
                .syncer
                .sync(seg.file.as_raw_fd())
                .and_then(|()| self.sync.syncer.sync(seg.idx_file.as_raw_fd()));
            if let Err(e) = r {
                self.shared.report(io_err(&seg.path, "sync")(e));
                return false;
            }
        }
        true
    }

    /// Commit the completed prefix (after a sync, with [`Fsync::EveryBatch`]), unless
    /// we were evicted: then the completed writes may hold overwritten bytes.
    pub(super) fn try_commit(&mut self) {
        let Some(c) = self.commits.unsynced else {
            return;
        };
        if !self.lossy && self.sub.as_ref().is_none_or(|s| s.is_evicted()) {
            return;
        }
        if self.cfg.fsync == Fsync::EveryBatch {
            if !self.sync_segment() {
                return;
            }
            self.sync.dirty = false;
        }
        self.commits.unsynced = None;
        if let Some(m) = self.commits.unsynced_mark.take() {
            self.commits.committed = m;
        }
        if let Some(sub) = self.sub.as_mut() {
            sub.commit_to(c);
        }
        self.shared.persisted.store(c, Ordering::Release);
    }

    /// Wait until every write is done. With `giving_up`, return as soon as the stop
    /// flag is set while writes are failing.
    pub(super) fn drain(&mut self, giving_up: bool) -> Result<(), Halt> {
        while self.io.storage.in_flight() > 0 || !self.io.retry.is_empty() {
            if !self.io.retry.is_empty() {
                if giving_up && self.stopping() {
                    return Err(Halt::Stop);
                }
                if self.io.storage.in_flight() == 0 {
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
    pub(super) fn maybe_sync(&mut self) {
        let Fsync::Interval(every) = self.cfg.fsync else {
            return;
        };
        if !self.sync.dirty || self.sync.last.elapsed() < every {
            return;
        }
        let Some(seg) = &self.files.seg else {
            return;
        };
        if !self.sync.thread.push(Job::Interval(seg.files())) {
            return; // the last one is still running: try again later
        }
        self.sync.dirty = false;
        self.sync.last = Instant::now();
    }

    pub(super) fn maybe_retention(&mut self) {
        let Some(policy) = &self.cfg.retention else {
            return;
        };
        if self.pace.last_retention.elapsed() < self.cfg.retention_every {
            return;
        }
        self.pace.last_retention = Instant::now();
        if let Err(e) = apply_retention(&self.topic, &self.store, policy) {
            self.shared.report(e);
        }
    }
}
