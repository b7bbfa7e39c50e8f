//! The replay cursor: read a topic from a position or a time that may be only on disk,
//! then join the live ring with no gap and no duplicate.
//!
//! # Joining
//!
//! The cursor remembers `next`, the position after the last record it delivered. When
//! the segments hold nothing more at or after `next`, it opens a live subscriber at
//! `Start::Position(next)`. If the ring no longer holds `next` (producers moved on
//! while it read the disk), it reads the segments again: in a reliable topic the ring
//! only drops records the recorder has committed, so they are on disk by then. If the
//! disk holds no record at or after `next` either, then nothing but padding or gap
//! records lay between `next` and the ring's oldest position, and the cursor joins
//! there. (Without a recorder, in a lossy topic, that span may have held records: it
//! is counted in [`Replay::skipped_bytes`].)

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::segment::{list_segments, SegmentReader};
use super::StoreError;
use crate::bus::{Payload, Topic};
use crate::error::AttachError;
use crate::subscriber::{Start, Subscriber};

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayStart {
    /// The first record at or after this position.
    Position(u64),
    /// The first record, in log order, with a timestamp at or after this time (ns since
    /// the Unix epoch).
    Time(u64),
}

/// A record delivered by a [`Replay`]: borrowed from a mapped segment or from the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEvent<'a> {
    position: u64,
    timestamp: u64,
    type_id: u64,
    bytes: &'a [u8],
    next_position: u64,
    from_disk: bool,
}

impl<'a> ReplayEvent<'a> {
    /// The record's position.
    pub fn position(&self) -> u64 {
        self.position
    }
    /// Producer timestamp, ns since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
    /// Type id.
    pub fn type_id(&self) -> u64 {
        self.type_id
    }
    /// The payload.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Position of the next record.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }
    /// Whether it came from a segment (else from the live ring).
    pub fn from_disk(&self) -> bool {
        self.from_disk
    }
}

/// A cursor over a topic's stored and then live records.
pub struct Replay<E: Payload = crate::Raw> {
    topic: Topic<E>,
    dir: PathBuf,
    next: u64,
    seg: Option<(SegmentReader, u64)>,
    live: Option<Subscriber<E>>,
    from_disk: u64,
    skipped: u64,
}

impl<E: Payload> std::fmt::Debug for Replay<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("dir", &self.dir)
            .field("next", &self.next)
            .field("live", &self.live.is_some())
            .finish()
    }
}

enum Step {
    Disk(u64),
    Live,
}

impl<E: Payload> Replay<E> {
    /// Open a cursor on `topic` over the segments in `store`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] or [`StoreError::Corrupt`] reading the segments, attach
    /// errors when the start has to be found in the ring.
    pub fn open(
        topic: &Topic<E>,
        store: impl AsRef<Path>,
        start: ReplayStart,
    ) -> Result<Replay<E>, StoreError> {
        let dir = super::topic_dir(store.as_ref(), topic.name());
        super::check_store_dir(&dir)?;
        let mut r = Replay {
            topic: topic.clone(),
            dir,
            next: 0,
            seg: None,
            live: None,
            from_disk: 0,
            skipped: 0,
        };
        match start {
            ReplayStart::Position(p) => r.next = p,
            ReplayStart::Time(t) => r.next = r.find_time(t)?,
        }
        Ok(r)
    }

    /// The position of the first record at or after `t`: on disk, else in the ring,
    /// else the ring's tail.
    fn find_time(&mut self, t: u64) -> Result<u64, StoreError> {
        let segs = list_segments(&self.dir)?;
        let mut end = None;
        for s in &segs {
            let r = SegmentReader::open(&s.path)?;
            if r.summary().count > 0 {
                end = Some(r.summary().end_pos);
            }
            if r.summary().count > 0 && r.summary().max_ts >= t {
                if let Some((_, pos)) = r.seek_time(t)? {
                    return Ok(pos);
                }
            }
        }
        // Not on disk: scan the ring from the store's end.
        let start = match end {
            Some(e) => Start::Position(e),
            None => Start::Earliest,
        };
        let mut sub = self
            .topic
            .subscriber()
            .start(start)
            .accept_loss(true)
            .open()?;
        loop {
            match sub.try_recv_bytes()? {
                Some(ev) if ev.timestamp() >= t => return Ok(ev.position()),
                Some(_) => {}
                None => return Ok(sub.position()),
            }
        }
    }

    /// Position of the next record this cursor will deliver (or a position before it).
    pub fn position(&self) -> u64 {
        match &self.live {
            Some(s) => s.position(),
            None => self.next,
        }
    }

    /// Whether the cursor has joined the live ring.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Records delivered from disk so far.
    pub fn disk_records(&self) -> u64 {
        self.from_disk
    }

    /// Bytes of the log skipped when joining the ring because neither the disk nor the
    /// ring held them (only padding and gaps when a recorder covers the topic).
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// The next record: from disk without waiting, or from the ring waiting at most
    /// `timeout`. `Ok(None)` when nothing arrived in time.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a damaged segment (with path and offset), receive
    /// errors from the ring (an evicted cursor can be reopened at
    /// [`Replay::position`]).
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<ReplayEvent<'_>>, StoreError> {
        if self.live.is_none() {
            match self.advance()? {
                Step::Disk(off) => {
                    let Some((seg, _)) = self.seg.as_ref() else {
                        unreachable!("advance found a record")
                    };
                    let Some(r) = seg.validated_at(off) else {
                        unreachable!("validated by advance")
                    };
                    return Ok(Some(ReplayEvent {
                        position: r.position,
                        timestamp: r.timestamp,
                        type_id: r.type_id,
                        bytes: r.bytes,
                        next_position: r.next_position,
                        from_disk: true,
                    }));
                }
                Step::Live => {}
            }
        }
        let Some(s) = self.live.as_mut() else {
            unreachable!("joined above")
        };
        match s.recv_bytes_timeout(timeout) {
            Ok(Some(ev)) => Ok(Some(ReplayEvent {
                position: ev.position(),
                timestamp: ev.timestamp(),
                type_id: ev.type_id(),
                bytes: ev.bytes(),
                next_position: ev.next_position(),
                from_disk: false,
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Find the next record on disk, or join the ring.
    fn advance(&mut self) -> Result<Step, StoreError> {
        let mut reloaded = false;
        loop {
            if let Some((seg, off)) = self.seg.as_mut() {
                match seg.record_at(*off, self.next)? {
                    Some(r) => {
                        let at = *off;
                        *off = r.next_offset;
                        self.next = r.next_position;
                        self.from_disk += 1;
                        return Ok(Step::Disk(at));
                    }
                    None => {
                        let (sealed, base) = (seg.sealed(), seg.base());
                        self.seg = None;
                        if sealed && self.open_segment_after(base)? {
                            continue;
                        }
                    }
                }
            } else if self.open_segment_for(self.next)? {
                continue;
            }
            // Nothing more on disk right now: join the ring at `next`.
            match self
                .topic
                .subscriber()
                .start(Start::Position(self.next))
                .open()
            {
                Ok(s) => {
                    self.live = Some(s);
                    return Ok(Step::Live);
                }
                Err(AttachError::PositionLost { oldest, .. }) => {
                    // The recorder persisted it meanwhile: read the disk again. If the
                    // disk has nothing at or after `next`, only padding lay between.
                    if self.open_segment_for(self.next)? {
                        reloaded = false;
                        continue;
                    }
                    if reloaded {
                        self.skipped += oldest.saturating_sub(self.next);
                        self.next = oldest;
                    }
                    reloaded = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Open the segment holding the first record at or after `pos`; false if none.
    fn open_segment_for(&mut self, pos: u64) -> Result<bool, StoreError> {
        let segs = list_segments(&self.dir)?;
        let first = segs.partition_point(|s| s.base <= pos).saturating_sub(1);
        for s in segs.iter().skip(first) {
            let r = SegmentReader::open(&s.path)?;
            if let Some((off, _)) = r.seek_position(pos)? {
                self.seg = Some((r, off));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Open the first segment after the one at `base`; false if none.
    fn open_segment_after(&mut self, base: u64) -> Result<bool, StoreError> {
        let segs = list_segments(&self.dir)?;
        for s in segs.iter().filter(|s| s.base > base) {
            let r = SegmentReader::open(&s.path)?;
            if let Some((off, _)) = r.seek_position(self.next)? {
                self.seg = Some((r, off));
                return Ok(true);
            }
        }
        Ok(false)
    }
}
