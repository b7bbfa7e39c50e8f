//! The recorder's loop and its batches: receive records, gather them into batches
//! straight from the ring mapping (checksumming each run on the way), hand a batch to
//! the storage when it is full or the recorder is caught up, and pace a caught-up
//! recorder (see the module docs on waiting). An eviction cuts back to the last commit.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::attach;
use super::state::{Extent, Halt, Mark, Rec};
use crate::error::RecvError;
use crate::store::format::index::{self, IndexEntry};
use crate::store::format::segment::{encode_record, FOOTER_SIZE, TRAILER_SIZE};
use crate::store::storage::{Mapped, Source};
use crate::store::{io_err, StoreError};

/// How long a caught-up recorder sleeps between looks at the ring: long enough that
/// its looks come rarely (each takes the lines the publisher just wrote, the next
/// record's commit word among them, and a shared publisher, whose commit fences, waits
/// to take them back; on a ring small enough to stay in its caches the more often a
/// reader looks the more it costs, see docs/performance.md, store), short enough that
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

impl Rec {
    pub(super) fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    pub(super) fn run(&mut self) -> Result<(), StoreError> {
        let r = self.record();
        // Wait for the syncs still to do (giving up those that fail).
        let synced = self.sync.thread.finish();
        r.and(synced)
    }

    pub(super) fn record(&mut self) -> Result<(), StoreError> {
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
            if self.files.seg.is_some() {
                match self.seal() {
                    Err(Halt::Fatal(e)) => return Err(e),
                    Err(Halt::Evicted) => self.abandon_uncommitted()?,
                    _ => {}
                }
            }
        }
        if let Some((_, p)) = self.files.prep.take() {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    pub(super) fn main_loop(&mut self) -> Result<(), Halt> {
        loop {
            if self.stopping() {
                return Ok(());
            }
            self.pump(false)?;
            if !self.io.retry.is_empty() {
                // The storage is failing: retry, take nothing new meanwhile.
                self.resubmit_due();
                std::thread::sleep(self.cfg.retry_interval.min(Duration::from_millis(10)));
                continue;
            }
            self.try_commit();
            let idle = self.batch.extents.is_empty() && self.io.storage.in_flight() == 0;
            let Some(sub) = self.sub.as_mut() else {
                return Err(Halt::Fatal(StoreError::Stopped(
                    "the recorder lost its subscriber".into(),
                )));
            };
            // After a while of idleness, wait in the subscriber (which also turns a
            // dead producer's abandoned claim into a gap).
            let long_idle = idle
                && self
                    .pace
                    .idle_since
                    .is_some_and(|t| t.elapsed() >= IDLE_BEFORE_BLOCK);
            let got = if long_idle {
                // Stays in this mode (`idle_since` is kept) until a record arrives.
                sub.recv_bytes_timeout(IDLE_BLOCK)
            } else {
                sub.try_recv_bytes()
            };
            if !matches!(got, Ok(None)) {
                self.pace.idle_since = None;
            }
            let r = match got {
                Ok(Some(ev)) => {
                    let (pos, ts, next) = (ev.position(), ev.timestamp(), ev.next_position());
                    let len = ev.bytes().len() as u64;
                    self.pace.taken += next.saturating_sub(pos);
                    if self.lossy {
                        // Lossy: the subscriber copied and re-validated the payload;
                        // write that copy (the ring may be overwritten at any time).
                        self.batch.scratch.clear();
                        encode_record(&mut self.batch.scratch, pos, ts, ev.type_id(), ev.bytes());
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
                            self.pace.idle_since.get_or_insert(now);
                        }
                        // The records taken since the last catch-up came during the
                        // sleep before and the work since: the rate that sets this one.
                        let window = now - self.pace.last_look;
                        std::thread::sleep(idle_sleep(capacity, self.pace.taken, window));
                        self.pace.last_look = now;
                        self.pace.taken = 0;
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
            if self.batch.bytes >= self.cfg.write_size {
                self.flush()?;
            }
            while self.io.storage.in_flight() >= self.cfg.max_in_flight {
                self.pump(true)?;
            }
        }
    }

    /// What to do about a receive error (errors that can wait are only reported).
    pub(super) fn recv_failed(&mut self, e: RecvError) -> Result<(), Halt> {
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
    pub(super) fn evicted(&mut self) -> Result<(), Halt> {
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
    pub(super) fn abandon_uncommitted(&mut self) -> Result<(), StoreError> {
        self.batch.extents.clear();
        self.batch.bytes = 0;
        self.batch.records = 0;
        self.batch.payload = 0;
        self.batch.run = None;
        self.batch.idx.clear();
        self.batch.commit = None;
        // The writes may keep failing: give up on them (they are discarded anyway).
        let mut out = Vec::new();
        while self.io.storage.in_flight() > 0 {
            if self.io.storage.reap(1, &mut out).is_err() {
                break;
            }
            out.clear();
        }
        self.io.retry.clear();
        self.io.order.clear();
        self.commits.unsynced = None;
        self.commits.unsynced_mark = None;
        let Some(seg) = self.files.seg.as_mut() else {
            return Ok(());
        };
        let m = if self.commits.committed.base == seg.base {
            self.commits.committed
        } else {
            Mark::empty(seg.base)
        };
        if m.sum.count == 0 {
            let (p, ip) = (seg.path.clone(), seg.idx_path.clone());
            self.files.seg = None;
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
        if let Err(e) = self.io.storage.allocate(fd, self.cfg.segment_size) {
            let p = seg.path.clone();
            self.shared.report(io_err(&p, "preallocate segment")(e));
        }
        Ok(())
    }

    /// Take the record at `pos` (just received; in `scratch` for a lossy topic).
    pub(super) fn accept(&mut self, pos: u64, ts: u64, next: u64, len: u64) -> Result<(), Halt> {
        if pos < self.commits.skip_below {
            // Already stored by the previous recorder.
            if self.io.order.is_empty() && self.batch.extents.is_empty() {
                if let Some(sub) = self.sub.as_mut() {
                    sub.commit_to(next);
                }
                self.shared.persisted.store(next, Ordering::Release);
            }
            return Ok(());
        }
        let size = next - pos;
        let reserve = (FOOTER_SIZE + TRAILER_SIZE + self.files.schema.len()) as u64;
        let full = self.files.seg.as_ref().is_some_and(|s| {
            s.sum.count > 0 && s.sum.data_end + size + reserve > self.cfg.segment_size
        });
        if full {
            self.seal()?;
        }
        if self.files.seg.is_none() {
            self.open_segment(pos)?;
        }
        let mapped = if self.lossy {
            None
        } else {
            // SAFETY: the record at `pos` is committed (we just received it) and lies
            // inside the data region (a record never straddles its end). In a reliable
            // topic our published position, which stays at or before `pos` until the
            // write of this batch completes, keeps producers off it; that we were not
            // evicted meanwhile is checked before the batch is committed.
            let b = unsafe { self.topic.record_bytes(pos, size as usize) };
            Some(b.as_ptr() as usize)
        };
        let contiguous = match (self.batch.extents.last(), mapped) {
            (Some(Extent::Mapped { ptr, len, .. }), Some(p)) => ptr + len == p,
            (Some(Extent::Owned { .. }), None) => true,
            _ => false,
        };
        let interval = self.cfg.index_interval;
        let split = self.batch.run.as_ref().is_some_and(|r| {
            r.position + r.len as u64 != pos
                || r.len as u64 >= interval
                || r.len as u64 + size > u32::MAX as u64
                || !contiguous
        });
        if split {
            self.close_run();
        }
        let Some(seg) = self.files.seg.as_mut() else {
            unreachable!("opened above")
        };
        let off = seg.sum.data_end;
        let run = self.batch.run.get_or_insert(IndexEntry {
            position: pos,
            offset: off,
            max_ts_before: seg.sum.max_ts,
            len: 0,
            data_crc: 0,
            crc: 0,
            reserved: 0,
        });
        let bytes: &[u8] = match mapped {
            // SAFETY: as for `record_bytes` above; the mapping lives as long as `self.topic`.
            Some(p) => unsafe { std::slice::from_raw_parts(p as *const u8, size as usize) },
            None => &self.batch.scratch,
        };
        run.data_crc = crc32c::crc32c_append(run.data_crc, bytes);
        run.len += size as u32;
        match (self.batch.extents.last_mut(), mapped) {
            (Some(Extent::Mapped { len, .. }), Some(_)) if contiguous => *len += size as usize,
            (Some(Extent::Owned { buf, .. }), None) => buf.extend_from_slice(bytes),
            (_, Some(p)) => self.batch.extents.push(Extent::Mapped {
                ptr: p,
                len: size as usize,
                off,
            }),
            (_, None) => {
                let mut buf = self.batch.spare.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(bytes);
                self.batch.extents.push(Extent::Owned { buf, off });
            }
        }
        seg.sum.add(pos, ts, size);
        self.batch.bytes += size as usize;
        self.batch.commit = Some(next);
        self.batch.records += 1;
        self.batch.payload += len;
        Ok(())
    }

    /// Close the run being gathered: stage its index entry.
    pub(super) fn close_run(&mut self) {
        let Some(r) = self.batch.run.take() else {
            return;
        };
        let e = IndexEntry::new(r.position, r.offset, r.max_ts_before, r.len, r.data_crc);
        index::encode_entries(&mut self.batch.idx, &[e]);
        if let Some(seg) = self.files.seg.as_mut() {
            seg.sum.add_crc(e.data_crc, e.len as u64);
        }
    }

    /// Submit the batch: its extents, then its index entries, which carry the commit.
    pub(super) fn flush(&mut self) -> Result<(), Halt> {
        if self.batch.extents.is_empty() {
            return Ok(());
        }
        self.close_run();
        let Some(seg) = self.files.seg.as_mut() else {
            return Ok(());
        };
        let (fd, path) = (seg.file.as_raw_fd(), seg.path.clone());
        let (ifd, ipath, ioff) = (seg.idx_file.as_raw_fd(), seg.idx_path.clone(), seg.idx_len);
        let ib = std::mem::take(&mut self.batch.idx);
        seg.idx_len += ib.len() as u64;
        let mark = Mark {
            base: seg.base,
            idx_len: seg.idx_len,
            sum: seg.sum,
        };
        let commit = self.batch.commit.take().map(|c| (c, mark));
        for ext in std::mem::take(&mut self.batch.extents) {
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
        self.batch.bytes = 0;
        let sh = &self.shared;
        sh.records
            .fetch_add(std::mem::take(&mut self.batch.records), Ordering::Relaxed);
        sh.bytes
            .fetch_add(std::mem::take(&mut self.batch.payload), Ordering::Relaxed);
        self.write(ifd, ipath, ioff, Source::Owned(ib), commit);
        Ok(())
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
