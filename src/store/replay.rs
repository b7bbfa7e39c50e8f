//! The replay cursor: read a topic from a position or a time that may be only on disk,
//! then join the live ring with no gap and no duplicate.
//!
//! # Joining
//!
//! The cursor remembers `next`, the position after the last record it delivered. When
//! the segments hold nothing more at or after `next`, it attaches its live subscriber
//! at exactly `next`. If the ring no longer holds `next` (producers moved on while it
//! read the disk), the recorder had persisted it first (in a reliable topic the ring
//! only drops records the recorder has committed), so the cursor reads the disk again.
//! So that this does not turn into a chase with fast producers, it then attaches a
//! holding subscriber at the position of the topic's slowest subscriber (the recorder,
//! if it is behind everyone): from then on nothing at or after `hold` can leave the
//! ring, and everything before `hold` is on disk. It reads up to `hold` from disk,
//! attaches live at exactly `next` and lets the holder go: no gap, no duplicate. If
//! the disk holds no record between `next` and `hold`, then nothing but padding or gap
//! records lay there. (Without a recorder, in a lossy topic, that span may have held
//! records: it is counted in [`Replay::skipped_bytes`].)
//!
//! # Named replay: a durable subscriber that resumes from the store
//!
//! A named subscriber that was evicted, or whose process was away for long, finds its
//! position overwritten in the ring ([`AttachError::PositionLost`]).
//! [`Replay::named`] resumes it through the store: it reads the segments from the
//! name's durable position, then attaches the name to the live ring at exactly the
//! position after the last record it delivered, so the name sees every record once.
//!
//! While it reads from disk, the name's position stays in the ring's subscriber table
//! (where [`crate::Topic::subscribers`] shows it and retention respects it), marked
//! evicted so that it does not hold producers back; it advances as the reader
//! releases records (on the next call, or at once with [`Replay::commit`]), just as a
//! live named subscriber's does. A lock file in the store
//! ([`replay_lock_path`]) keeps two named replays of one name
//! apart; a process attaching the name directly meanwhile makes the replay fail with
//! [`AttachError::NameInUse`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::format::names::replay_lock_path;
use super::reader::StoreCursor;
use super::recorder::{lock_file, Lock};
use super::{io_err, StoreError};
use crate::error::AttachError;
use crate::topic::subscriber::{move_parked, park_named, Start, Subscriber};
use crate::topic::{Payload, SubscriberState, Topic};

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
    /// The records on disk; its position is `next`, the position after the last
    /// record delivered.
    disk: StoreCursor,
    live: Option<Subscriber<E>>,
    from_disk: u64,
    skipped: u64,
    named: Option<Named>,
    /// While joining: a subscriber holding the ring from its oldest record.
    holder: Option<Subscriber<E>>,
}

/// A named replay's durable name while it reads from disk.
struct Named {
    name: String,
    /// The name's slot in the ring's subscriber table.
    slot: usize,
    /// The position last published there.
    committed: u64,
    _lock: Lock,
}

impl<E: Payload> std::fmt::Debug for Replay<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("dir", &self.dir)
            .field("next", &self.disk.position())
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
            disk: StoreCursor::new(&dir, 0),
            dir,
            live: None,
            from_disk: 0,
            skipped: 0,
            named: None,
            holder: None,
        };
        match start {
            ReplayStart::Position(p) => r.disk.skip_to(p),
            ReplayStart::Time(t) => {
                let p = r.find_time(t)?;
                if p != r.disk.position() {
                    r.disk.skip_to(p);
                }
            }
        }
        Ok(r)
    }

    /// Open the named (durable) subscriber `name` of `topic`, reading from the
    /// segments in `store` what the ring no longer holds: from the name's committed
    /// position, or from `first` if the name is new. It joins the live ring as the
    /// named subscriber once the disk is exhausted, with no gap and no duplicate. See
    /// the [module docs](self).
    ///
    /// A record is released (and the name's position moves past it) on the next call
    /// to [`Replay::next_timeout`] or on [`Replay::commit`]; a successor of a process
    /// that dies resumes after the last released record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] if another named replay of this name runs on this store;
    /// [`StoreError::Attach`] with [`AttachError::NameInUse`] if a process has the name
    /// attached; store and attach errors as [`Replay::open`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use shmbus::store::{Replay, ReplayStart};
    /// use std::time::Duration;
    /// let topic = shmbus::Bus::open("market")?.topic("ticks").open()?;
    /// let mut r = Replay::named(&topic, "/var/lib/shmbus", "pricer", ReplayStart::Position(0))?;
    /// while let Some(ev) = r.next_timeout(Duration::from_secs(1))? {
    ///     println!("{} {} bytes (from disk: {})", ev.position(), ev.bytes().len(), ev.from_disk());
    /// }
    /// r.commit()?;
    /// # Ok(()) }
    /// ```
    pub fn named(
        topic: &Topic<E>,
        store: impl AsRef<Path>,
        name: &str,
        first: ReplayStart,
    ) -> Result<Replay<E>, StoreError> {
        let dir = super::topic_dir(store.as_ref(), topic.name());
        std::fs::create_dir_all(&dir).map_err(io_err(&dir, "create store directory"))?;
        let lock = lock_file(replay_lock_path(&dir, name))?;
        let mut r = Replay::open(topic, store, ReplayStart::Position(0))?;
        let exists = topic
            .subscribers()
            .iter()
            .any(|s| s.name.as_deref() == Some(name));
        let start = match (exists, first) {
            (true, _) => 0,
            (false, ReplayStart::Position(p)) => p,
            (false, ReplayStart::Time(t)) => r.find_time(t)?,
        };
        let opened = topic
            .subscriber()
            .named(name)
            .start(Start::Position(start))
            .open();
        match opened {
            Ok(s) => {
                r.disk.skip_to(s.position());
                r.live = Some(s);
                r.named = Some(Named {
                    name: name.to_string(),
                    slot: usize::MAX,
                    committed: r.disk.position(),
                    _lock: lock,
                });
            }
            Err(AttachError::PositionLost { requested, .. }) => {
                let (slot, pos) = park_named(topic, name, requested)?;
                r.disk.skip_to(pos);
                r.named = Some(Named {
                    name: name.to_string(),
                    slot,
                    committed: pos,
                    _lock: lock,
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(r)
    }

    /// Release every record delivered so far: a named replay publishes its position
    /// (where a successor resumes) at once. Nothing for an anonymous replay.
    ///
    /// # Errors
    ///
    /// [`AttachError::NameInUse`] if a process attached the name meanwhile.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(s) = self.live.as_mut() {
            s.commit();
            return Ok(());
        }
        self.publish_parked()
    }

    /// Disk phase of a named replay: move the name's position to `next`.
    fn publish_parked(&mut self) -> Result<(), StoreError> {
        let Some(n) = self.named.as_mut() else {
            return Ok(());
        };
        let next = self.disk.position();
        if n.committed == next {
            return Ok(());
        }
        if !move_parked(&self.topic, n.slot, n.committed, next) {
            return Err(AttachError::NameInUse(n.name.clone()).into());
        }
        n.committed = next;
        Ok(())
    }

    /// The position of the first record at or after `t`: on disk (the cursor is then
    /// there), else in the ring, else the ring's tail.
    fn find_time(&mut self, t: u64) -> Result<u64, StoreError> {
        if let Some(pos) = self.disk.seek_time(t)? {
            return Ok(pos);
        }
        let end = (self.disk.position() > 0).then(|| self.disk.position());
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
            None => self.disk.position(),
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
            // The previous record is released.
            self.publish_parked()?;
            match self.advance()? {
                Step::Disk(off) => {
                    let Some(r) = self.disk.record_at(off) else {
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
        loop {
            if let Some(off) = self.disk.advance()? {
                self.from_disk += 1;
                return Ok(Step::Disk(off));
            }
            let next = self.disk.position();
            // Nothing more on disk right now. A holder keeps the ring from `hold` on;
            // what is before it left the ring or is on disk.
            if let Some(hold) = self.holder.as_ref().map(|h| h.position()) {
                if hold > next {
                    if let Some(off) = self.disk.advance()? {
                        self.from_disk += 1;
                        return Ok(Step::Disk(off));
                    }
                    // Neither on disk nor in the ring: only padding and gaps lay there
                    // (or, without a recorder, records lost in a lossy topic).
                    self.skipped += hold - next;
                    self.disk.skip_to(hold);
                }
            }
            // Join at exactly `next` if the ring still has it (for a named replay this
            // first subscriber only holds it while the name attaches there).
            let attempt = self
                .topic
                .subscriber()
                .start(Start::Position(self.disk.position()))
                .manual_commit(self.named.is_some())
                .open();
            match attempt {
                Ok(s) => {
                    let live = match &self.named {
                        Some(n) => {
                            let name = n.name.clone();
                            self.publish_parked()?;
                            let named = self.topic.subscriber().named(&name).open()?;
                            drop(s);
                            named
                        }
                        None => s,
                    };
                    self.holder = None;
                    self.live = Some(live);
                    return Ok(Step::Live);
                }
                Err(AttachError::PositionLost { oldest, .. }) => {
                    // Producers moved past `next` while we read: the recorder persisted
                    // it first, so read the disk again.
                    if let Some(off) = self.disk.advance()? {
                        self.from_disk += 1;
                        return Ok(Step::Disk(off));
                    }
                    if self.holder.is_none() {
                        // Hold the ring at its slowest subscriber (the recorder, if it
                        // is behind everyone): nothing from there on can leave the ring,
                        // and everything before it is on disk. Then read up to it.
                        let slowest = self
                            .topic
                            .subscribers()
                            .iter()
                            .filter(|s| {
                                matches!(
                                    s.state,
                                    SubscriberState::Active | SubscriberState::Detached
                                )
                            })
                            .map(|s| s.position)
                            .min();
                        if let Some(m) = slowest {
                            match self
                                .topic
                                .subscriber()
                                .start(Start::Position(m))
                                .manual_commit(true)
                                .open()
                            {
                                Ok(h) => self.holder = Some(h),
                                Err(
                                    AttachError::PositionLost { .. }
                                    | AttachError::InvalidPosition(_),
                                ) => {}
                                Err(e) => return Err(e.into()),
                            }
                            continue;
                        }
                    }
                    // No subscriber holds the ring (no recorder): what left it is lost.
                    let next = self.disk.position();
                    self.skipped += oldest.saturating_sub(next);
                    self.disk.skip_to(next.max(oldest));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
