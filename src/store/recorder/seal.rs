//! Segment files of the recorder: opening a new segment from the one prepared ahead,
//! continuing the tail recovery left open, and sealing (footer, cut, hand-off to the
//! sync thread).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::state::{Halt, Mark, Rec, Seg};
use super::syncs::Job;
use super::Fsync;
use crate::store::format::index;
use crate::store::format::names::{idx_name, idx_path, prepared_path, seg_name};
use crate::store::format::segment::{header_bytes, Summary};
use crate::store::recovery::OpenTail;
use crate::store::storage::Source;
use crate::store::{io_err, StoreError};

impl Rec {
    /// Seal the current segment: write and commit everything, then the footer, cut the
    /// preallocated rest, and hand the files to the sync thread (waiting first if too
    /// many sealed segments wait for their sync).
    pub(super) fn seal(&mut self) -> Result<(), Halt> {
        self.flush()?;
        self.drain(true)?;
        self.try_commit();
        while self.commits.unsynced.is_some() {
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
        let Some(seg) = self.files.seg.as_ref() else {
            return Ok(());
        };
        let seal = seg.sum.seal_bytes(&self.files.schema);
        let end = seg.sum.data_end + seal.len() as u64;
        let (fd, path, off) = (seg.file.as_raw_fd(), seg.path.clone(), seg.sum.data_end);
        self.write(fd, path.clone(), off, Source::Owned(seal), None);
        self.drain(true)?;
        loop {
            let Some(seg) = self.files.seg.as_ref() else {
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
        if let Some(seg) = self.files.seg.take() {
            if self.cfg.fsync != Fsync::Never {
                let stop = &self.shared.stop;
                self.sync
                    .thread
                    .wait_for_room(|| stop.load(Ordering::SeqCst));
                self.sync.thread.push(Job::Seal(seg.files()));
            }
        }
        Ok(())
    }

    /// Start the segment whose first record is at `base`, using the prepared file.
    pub(super) fn open_segment(&mut self, base: u64) -> Result<(), Halt> {
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

    pub(super) fn try_open_segment(&mut self, base: u64) -> Result<(), StoreError> {
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
        let sh = header_bytes(base, self.files.type_id, self.files.fingerprint);
        let (file, tmp) = match self.files.prep.take() {
            Some((f, p)) => (f, p),
            None => {
                let p = prepared_path(&self.dir);
                (self.new_file(&p)?, p)
            }
        };
        if let Err(e) = file.write_all_at(&sh, 0) {
            self.files.prep = Some((file, tmp));
            return Err(io_err(&path, "write segment header")(e));
        }
        if let Err(e) = std::fs::rename(&tmp, &path) {
            self.files.prep = Some((file, tmp));
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
                    self.sync
                        .thread
                        .push(Job::Dir((Arc::new(d), self.dir.clone())));
                }
                Err(e) => self
                    .shared
                    .report(io_err(&self.dir, "open store directory")(e)),
            },
        }
        self.files.seg = Some(Seg {
            base,
            path: path.clone(),
            file: Arc::new(file),
            idx_path: idx_path.clone(),
            idx_file: Arc::new(idx_file),
            idx_len: index::IDX_HEADER as u64,
            sum: Summary::new(),
        });
        self.commits.committed = Mark::empty(base);
        self.shared.segments.fetch_add(1, Ordering::Relaxed);
        self.prepare_next();
        Ok(())
    }

    /// Prepare the next segment now so the next rollover does not wait for allocation.
    pub(super) fn prepare_next(&mut self) {
        if self.files.prep.is_some() {
            return;
        }
        let prep = prepared_path(&self.dir);
        match self.new_file(&prep) {
            Ok(f) => self.files.prep = Some((f, prep)),
            Err(e) => self.shared.report(e),
        }
    }

    /// Continue the unsealed tail segment recovery left open.
    pub(super) fn continue_segment(&mut self, tail: &OpenTail) -> Result<(), StoreError> {
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
            .io
            .storage
            .allocate(file.as_raw_fd(), self.cfg.segment_size)
        {
            self.shared
                .report(io_err(&tail.path, "preallocate segment")(e));
        }
        let idx_len = (index::IDX_HEADER + tail.runs * index::ENTRY_SIZE) as u64;
        self.files.seg = Some(Seg {
            base: tail.base,
            path: tail.path.clone(),
            file: Arc::new(file),
            idx_path,
            idx_file: Arc::new(idx_file),
            idx_len,
            sum: tail.summary,
        });
        self.commits.committed = Mark {
            base: tail.base,
            idx_len,
            sum: tail.summary,
        };
        self.prepare_next();
        Ok(())
    }

    pub(super) fn new_file(&mut self, path: &Path) -> Result<File, StoreError> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_err(path, "create segment"))?;
        if let Err(e) = self
            .io
            .storage
            .allocate(f.as_raw_fd(), self.cfg.segment_size)
        {
            // Not fatal: writes will tell if the space is really missing.
            self.shared.report(io_err(path, "preallocate segment")(e));
        }
        Ok(f)
    }
}
