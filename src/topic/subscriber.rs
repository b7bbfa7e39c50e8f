//! Subscribers: broadcast readers with zero-copy (reliable) or copied-and-validated
//! (lossy) access, optional durable names, and wait strategies.

use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

use rkyv::util::AlignedVec;

use crate::error::{ArchiveError, AttachError, RecvError};
use crate::event::{Event, RkyvError};
use crate::ring::layout::*;
use crate::ring::{NamedTake, Read, RecordHeader};
use crate::sys::sync::Ordering;
use crate::topic::wait::{Backoff, Wait};
use crate::topic::{OsLiveness, Payload, Topic};

/// Where a new subscriber starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// Only records published after it joins (the default).
    #[default]
    Latest,
    /// The oldest record still in the ring.
    Earliest,
    /// A record position (e.g. one stored from an earlier event).
    Position(u64),
}

/// Configures a subscriber.
pub struct SubscriberBuilder<E> {
    topic: Topic<E>,
    name: Option<String>,
    start: Start,
    wait: Wait,
    accept_loss: bool,
    inspect: bool,
    manual_commit: bool,
}

impl<E: Payload> Topic<E> {
    /// Configure a subscriber (anonymous, starting at the latest record, blocking).
    pub fn subscriber(&self) -> SubscriberBuilder<E> {
        SubscriberBuilder {
            topic: self.clone(),
            name: None,
            start: Start::Latest,
            wait: Wait::Block,
            accept_loss: false,
            inspect: false,
            manual_commit: false,
        }
    }
}

impl<E: Payload> SubscriberBuilder<E> {
    /// A durable name: its position lives in the ring file, and a later subscriber with
    /// the same name resumes there (its `start` is used only the first time).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Where to start (default [`Start::Latest`]).
    pub fn start(mut self, start: Start) -> Self {
        self.start = start;
        self
    }

    /// Wait strategy (default [`Wait::Block`]).
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// If the start position was already overwritten, start at the oldest retained
    /// record instead of failing with [`AttachError::PositionLost`].
    pub fn accept_loss(mut self, yes: bool) -> Self {
        self.accept_loss = yes;
        self
    }

    /// An inspecting reader (a query, a `tail`, a monitor): it writes nothing into the
    /// ring but its own consumer slot (and the shared count of sleeping waiters while
    /// it blocks). At a claim that a dead producer abandoned it does not write the gap
    /// record that other subscribers write after the unblock timeout; it skips the
    /// same bytes on its own and counts them in [`Subscriber::gaps`].
    pub fn inspect(mut self, yes: bool) -> Self {
        self.inspect = yes;
        self
    }

    /// Publish the position only on [`Subscriber::commit`] / [`Subscriber::commit_to`],
    /// never implicitly on receive, on skip or on drop. A consumer that must not let
    /// producers overwrite a record before it has finished with it (the store's
    /// recorder, which commits only once a record is on disk) sets this.
    pub fn manual_commit(mut self, yes: bool) -> Self {
        self.manual_commit = yes;
        self
    }

    /// Attach.
    ///
    /// # Errors
    ///
    /// [`AttachError`]: no free slot, name in use or invalid, bad or lost position.
    pub fn open(self) -> Result<Subscriber<E>, AttachError> {
        let topic = self.topic;
        let ring = &topic.inner.ring;
        let mut resume = None;
        if let Some(name) = &self.name {
            if name.is_empty() || name.len() > MAX_NAME {
                return Err(AttachError::InvalidName(name.clone()));
            }
        }
        // Find our slot: the one carrying our name, else a free one.
        let slot = 'found: {
            if let Some(name) = &self.name {
                for i in 0..MAX_CONSUMERS {
                    if ring.consumer_name(i).as_deref() != Some(name.as_str()) {
                        continue;
                    }
                    match ring.try_take_named(i) {
                        NamedTake::Taken => {
                            resume = Some(ring.resume_position(i));
                            break 'found i;
                        }
                        NamedTake::Unclaimed => {}
                        NamedTake::InUse => return Err(AttachError::NameInUse(name.clone())),
                    }
                }
            }
            let (flags, name) = match &self.name {
                Some(n) => (C_FLAG_NAMED, n.as_bytes()),
                None => (0, &b""[..]),
            };
            match ring.take_free_consumer(flags, name) {
                Some(i) => break 'found i,
                None => return Err(AttachError::TooManySubscribers),
            }
        };
        let fail = |e| {
            ring.abandon_consumer(slot, self.name.is_some() && resume.is_some());
            Err(e)
        };
        // Trust no shared word a scribbler may have touched (see `Ring::check_words`).
        if let Err(bad) = ring.check_words(Some(slot)) {
            return fail(AttachError::CorruptWord {
                word: bad.word,
                value: bad.value,
            });
        }
        let tail = ring.tail_boundary();
        let want = match (resume, self.start) {
            (Some(p), _) => p,
            (None, Start::Latest) => tail,
            (None, Start::Earliest) => ring.earliest(),
            (None, Start::Position(p)) => {
                if p % RECORD_ALIGN != 0 || p > tail {
                    return fail(AttachError::InvalidPosition(p));
                }
                if p < tail
                    && !matches!(ring.read_at(p), Read::Record(_) | Read::Skip { .. })
                    && ring.intact(p)
                {
                    return fail(AttachError::InvalidPosition(p));
                }
                p
            }
        };
        ring.activate_consumer(slot, want);
        let at = if ring.p.mode == Mode::Reliable {
            ring.join(slot, want)
        } else {
            want
        };
        // `Start::Earliest` means the oldest boundary a joiner may take, and that can
        // move while it joins (see `Ring::join`): only an asked-for position is lost.
        let asked = resume.is_some() || matches!(self.start, Start::Position(_));
        if at != want && asked && !self.accept_loss {
            if resume.is_some() {
                // Keep the name's durable position (`join` moved it to `at`): it is where
                // a replay from the store resumes. Parked as evicted, it does not hold
                // producers back.
                ring.park_lost(slot, want);
                return Err(AttachError::PositionLost {
                    requested: want,
                    oldest: at,
                });
            }
            return fail(AttachError::PositionLost {
                requested: want,
                oldest: at,
            });
        }
        ring.set_progress(slot, at);
        let stride = release_stride(ring.p.capacity);
        Ok(Subscriber {
            topic,
            slot,
            pos: at,
            held: None,
            published: at,
            stride,
            wait: self.wait,
            buf: AlignedVec::new(),
            gaps: 0,
            gap_bytes: 0,
            blocked: None,
            named: self.name.is_some(),
            manual: self.manual_commit,
            inspect: self.inspect,
            live: OsLiveness,
            _e: PhantomData,
        })
    }
}

/// How far a subscriber reads before releasing its position to producers: an
/// eighth of the ring (at most 64 KiB), so a full ring still has most of its capacity
/// in use and producers re-read the position once per stride, not once per record.
fn release_stride(capacity: u64) -> u64 {
    (capacity / 8).clamp(RECORD_ALIGN, 64 * 1024)
}

/// Park the named subscriber `name`, which no process has attached, for a reader that
/// replays it from the store (see [`Ring::park_named`](crate::ring::Ring)).
pub(crate) fn park_named<E: Payload>(
    topic: &Topic<E>,
    name: &str,
    pos: u64,
) -> Result<(usize, u64), AttachError> {
    topic.inner.ring.park_named(name, pos)
}

/// Move the parked named subscriber in `slot` from position `from` to `to`. False if
/// a process attached it meanwhile or its position moved.
pub(crate) fn move_parked<E: Payload>(topic: &Topic<E>, slot: usize, from: u64, to: u64) -> bool {
    topic.inner.ring.move_parked(slot, from, to)
}

/// A subscriber: receives every record of its topic, in the topic's total order.
pub struct Subscriber<E = crate::Raw> {
    topic: Topic<E>,
    slot: usize,
    /// Next position to read.
    pos: u64,
    /// Position of the record lent out by the last receive, if any.
    held: Option<u64>,
    /// Last position released to producers (the slot's position word).
    published: u64,
    /// Without manual commit, the position is released to producers only once it has
    /// moved this many bytes, or when the subscriber catches up and would wait.
    stride: u64,
    wait: Wait,
    /// Lossy mode: payloads are copied here and validated.
    buf: AlignedVec,
    gaps: u64,
    gap_bytes: u64,
    /// (position, monotonic ns) since when we wait on a claimed, uncommitted record.
    blocked: Option<(u64, u64)>,
    named: bool,
    /// Publish the position only on an explicit commit.
    manual: bool,
    /// Never write a gap record (see [`SubscriberBuilder::inspect`]).
    inspect: bool,
    live: OsLiveness,
    _e: PhantomData<fn() -> E>,
}

/// A received raw record. Borrows the subscriber until dropped.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    header: RecordHeader,
    bytes: &'a [u8],
}

impl<'a> RawEvent<'a> {
    /// The record's position in the topic.
    pub fn position(&self) -> u64 {
        self.header.position
    }
    /// Producer timestamp, ns since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.header.timestamp
    }
    /// The record's type id.
    pub fn type_id(&self) -> u64 {
        self.header.type_id
    }
    /// The payload.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Position of the next record.
    pub fn next_position(&self) -> u64 {
        self.header.next()
    }
}

/// A received typed event: derefs to the archived value, zero-copy in reliable mode.
pub struct Received<'a, E: Event> {
    raw: RawEvent<'a>,
    archived: &'a E::Archived,
}

impl<'a, E: Event> Received<'a, E> {
    /// The record's position in the topic.
    pub fn position(&self) -> u64 {
        self.raw.position()
    }
    /// Producer timestamp, ns since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.raw.timestamp()
    }
    /// The record's type id.
    pub fn type_id(&self) -> u64 {
        self.raw.type_id()
    }
    /// The payload bytes (the rkyv archive).
    pub fn bytes(&self) -> &'a [u8] {
        self.raw.bytes()
    }
    /// The archived value.
    pub fn archived(&self) -> &'a E::Archived {
        self.archived
    }
}

impl<E: Event> Deref for Received<'_, E> {
    type Target = E::Archived;
    fn deref(&self) -> &E::Archived {
        self.archived
    }
}

enum Next {
    Got(RecordHeader),
    Empty,
}

impl<E: Payload> Subscriber<E> {
    /// The topic.
    pub fn topic(&self) -> &Topic<E> {
        &self.topic
    }

    /// Position of the next record this subscriber will read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Gap records skipped (claims of producers that died before committing), and the
    /// bytes they covered.
    pub fn gaps(&self) -> (u64, u64) {
        (self.gaps, self.gap_bytes)
    }

    /// Publish the current position now. Without manual commit, progress is also
    /// recorded on every receive (a named successor resumes after the last record
    /// handed out) and released to producers every few KiB and before waiting.
    pub fn commit(&mut self) {
        // `&mut self` proves no received event is still borrowed.
        self.held = None;
        self.publish(self.pos);
    }

    /// Publish `p`, a position this subscriber has finished with: at least the last
    /// published position and at most [`Subscriber::position`] (it is clamped to that
    /// range). With [`SubscriberBuilder::manual_commit`] this is how the position moves.
    pub fn commit_to(&mut self, p: u64) {
        self.held = None;
        let p = p.clamp(self.published.min(self.pos), self.pos);
        self.publish(p);
    }

    /// Records progress to `p` (every receive) and releases it to producers once it
    /// is a stride ahead of the last release. Producers read the released position
    /// each time they run into their limit, so releasing it per record would move its
    /// cache line between the cores once per record at full rate.
    #[inline]
    fn auto_publish(&mut self, p: u64) {
        if !self.manual {
            self.topic.inner.ring.set_progress(self.slot, p);
            if p.wrapping_sub(self.published) >= self.stride {
                self.release(p);
            }
        }
    }

    /// Progress and release both move to `p`.
    #[inline]
    fn publish(&mut self, p: u64) {
        if p != self.published {
            self.topic.inner.ring.set_progress(self.slot, p);
            self.release(p);
        }
    }

    #[inline]
    fn release(&mut self, p: u64) {
        if p != self.published {
            self.published = p;
            self.topic.inner.ring.release_position(self.slot, p);
        }
    }

    fn check_evicted(&self) -> Result<(), RecvError> {
        if !self.topic.inner.ring.consumer_is_mine(self.slot) {
            return Err(RecvError::Evicted);
        }
        Ok(())
    }

    /// Whether a producer evicted this subscriber (its slot is no longer its own).
    pub(crate) fn is_evicted(&self) -> bool {
        self.check_evicted().is_err()
    }

    /// Commit-word polls between two rounds of the idle bookkeeping in `next`.
    const FAST_POLLS: u32 = 64;

    /// Find the next data record, waiting per strategy until `deadline` (monotonic ns;
    /// None = forever; Some(0) = do not wait).
    fn next(&mut self, deadline: Option<u64>) -> Result<Next, RecvError> {
        // `&mut self` proves the previously received event is no longer borrowed.
        self.held = None;
        self.auto_publish(self.pos);
        let mut backoff = Backoff::default();
        let mut polls = 0u32;
        loop {
            let ring = &self.topic.inner.ring;
            match ring.read_at(self.pos) {
                Read::Record(h) => {
                    self.blocked = None;
                    if ring.p.mode == Mode::Lossy {
                        self.buf.clear();
                        self.buf.resize(h.len as usize, 0);
                        ring.copy_payload(h.position, &mut self.buf);
                        if !ring.still_valid(h.position) {
                            return Err(self.resync());
                        }
                    }
                    self.held = Some(h.position);
                    self.pos = h.next();
                    return Ok(Next::Got(h));
                }
                Read::Skip { next, gap } => {
                    if ring.p.mode == Mode::Lossy && !ring.still_valid(self.pos) {
                        return Err(self.resync());
                    }
                    if gap {
                        self.gaps += 1;
                        self.gap_bytes += next - self.pos;
                    }
                    self.pos = next;
                    self.auto_publish(self.pos);
                    self.blocked = None;
                }
                Read::Overwritten => return Err(self.resync()),
                Read::Corrupt(what) => {
                    if ring.p.mode == Mode::Lossy {
                        return Err(self.resync());
                    }
                    return Err(RecvError::Corrupt {
                        position: self.pos,
                        what,
                    });
                }
                Read::NotYet => {
                    // Caught up: release everything read, so producers see it before
                    // this subscriber spins or sleeps.
                    if !self.manual && self.published != self.pos {
                        self.release(self.pos);
                        continue;
                    }
                    // A subscriber that keeps up polls the commit word a few times
                    // before the bookkeeping below (getpid for the eviction check, a
                    // clock read, a load of the producers' tail line), which would
                    // delay noticing the next record and bounce the tail line.
                    let fast = deadline != Some(0) && self.wait != Wait::Block;
                    if fast && polls < Self::FAST_POLLS {
                        polls += 1;
                        std::hint::spin_loop();
                        continue;
                    }
                    polls = 0;
                    if ring.p.mode == Mode::Lossy && ring.lapped(self.pos) {
                        return Err(self.resync());
                    }
                    self.check_evicted()?;
                    let now = crate::sys::os::mono_ns();
                    if let Some(d) = deadline {
                        if now >= d {
                            return Ok(Next::Empty);
                        }
                    }
                    self.maybe_unblock(now)?;
                    self.idle(&mut backoff, deadline, now);
                }
            }
        }
    }

    /// Lossy mode: we were lapped. Jump to the oldest retained boundary.
    fn resync(&mut self) -> RecvError {
        let ring = &self.topic.inner.ring;
        let t = ring.tail_boundary();
        let at = ring.boundary_at_or_after(t.saturating_sub(ring.p.capacity).max(self.pos));
        // `at` is below `pos` only if the tail went backwards (a scribbled header).
        let missed = at.saturating_sub(self.pos);
        self.pos = at;
        self.publish(at);
        RecvError::Lagged {
            missed_bytes: missed,
            resumed_at: at,
        }
    }

    /// Blocked at `pos` below the tail: after the unblock timeout, check the shared
    /// words (a scribbled tail promises records that never come: a typed error, not
    /// a wait without end) and turn an abandoned claim into a gap.
    fn maybe_unblock(&mut self, now: u64) -> Result<(), RecvError> {
        let ring = &self.topic.inner.ring;
        if ring.tail().load(Ordering::Acquire) <= self.pos {
            self.blocked = None;
            return Ok(());
        }
        match self.blocked {
            Some((p, since)) if p == self.pos => {
                if now.saturating_sub(since) >= ring.p.unblock_timeout_ns {
                    if let Err(bad) = ring.check_words(None) {
                        return Err(RecvError::CorruptWord {
                            position: self.pos,
                            word: bad.word,
                            value: bad.value,
                        });
                    }
                    if !self.inspect {
                        ring.unblock(self.pos, &self.live);
                    } else if let Some(end) = ring.abandoned_gap(self.pos, &self.live) {
                        // Skip it as the gap it would become, writing nothing.
                        self.gaps += 1;
                        self.gap_bytes += end - self.pos;
                        self.pos = end;
                        self.auto_publish(end);
                    }
                    self.blocked = Some((self.pos, now));
                }
            }
            _ => self.blocked = Some((self.pos, now)),
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn idle(&mut self, backoff: &mut Backoff, deadline: Option<u64>, now: u64) {
        if self.wait != Wait::Block {
            backoff.pause(self.wait);
            return;
        }
        let until_deadline = deadline.map(|d| d.saturating_sub(now).max(1));
        self.topic
            .inner
            .ring
            .sleep(self.slot, self.pos, until_deadline);
    }

    #[inline]
    fn payload(&self, h: &RecordHeader) -> &[u8] {
        let ring = &self.topic.inner.ring;
        if ring.p.mode == Mode::Lossy {
            &self.buf[..]
        } else {
            // SAFETY: reliable mode; the record is committed (acquired commit word) and
            // our published position (≤ its position) keeps producers off it while the
            // returned borrow of `self` lives. Bounds were checked by `read_at`.
            unsafe { ring.payload(h.position, h.len as usize) }
        }
    }

    fn deadline(timeout: Duration) -> Option<u64> {
        Some(
            crate::sys::os::mono_ns()
                .saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    /// Receive the next record's raw bytes, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`RecvError::Evicted`], [`RecvError::Lagged`] (lossy), [`RecvError::Corrupt`].
    pub fn recv_bytes(&mut self) -> Result<RawEvent<'_>, RecvError> {
        match self.next(None)? {
            Next::Got(h) => Ok(RawEvent {
                header: h,
                bytes: self.payload(&h),
            }),
            Next::Empty => unreachable_empty(),
        }
    }

    /// Receive the next record's raw bytes if one is ready.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::recv_bytes`].
    pub fn try_recv_bytes(&mut self) -> Result<Option<RawEvent<'_>>, RecvError> {
        self.recv_bytes_deadline(Some(0))
    }

    /// Receive the next record's raw bytes, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::recv_bytes`].
    pub fn recv_bytes_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<RawEvent<'_>>, RecvError> {
        self.recv_bytes_deadline(Self::deadline(timeout))
    }

    fn recv_bytes_deadline(
        &mut self,
        deadline: Option<u64>,
    ) -> Result<Option<RawEvent<'_>>, RecvError> {
        match self.next(deadline)? {
            Next::Got(h) => Ok(Some(RawEvent {
                header: h,
                bytes: self.payload(&h),
            })),
            Next::Empty => Ok(None),
        }
    }
}

#[cold]
fn unreachable_empty<T>() -> T {
    // `next(None)` only returns once it has a record.
    panic!("shmbus internal error: a blocking receive returned empty")
}

impl<E: Event + 'static> Subscriber<E> {
    fn typed(&self, h: RecordHeader) -> Result<Received<'_, E>, RecvError> {
        if h.type_id != E::TYPE_ID {
            return Err(RecvError::WrongType {
                position: h.position,
                found: h.type_id,
            });
        }
        let bytes = self.payload(&h);
        let archived = if self.topic.inner.trusted {
            // SAFETY: the topic was opened trusted: the caller vouches that every
            // producer is trusted code publishing `E` (see `TopicBuilder::trusted`).
            unsafe { rkyv::access_unchecked::<E::Archived>(bytes) }
        } else {
            rkyv::access::<E::Archived, RkyvError>(bytes).map_err(|source| RecvError::Invalid {
                position: h.position,
                source: ArchiveError(source),
            })?
        };
        Ok(Received {
            raw: RawEvent { header: h, bytes },
            archived,
        })
    }

    /// Receive the next event, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`RecvError::Evicted`], [`RecvError::Lagged`] (lossy), [`RecvError::Invalid`] or
    /// [`RecvError::WrongType`] for a record that is not an `E` (it is skipped),
    /// [`RecvError::Corrupt`].
    pub fn recv(&mut self) -> Result<Received<'_, E>, RecvError> {
        match self.next(None)? {
            Next::Got(h) => self.typed(h),
            Next::Empty => unreachable_empty(),
        }
    }

    /// Receive the next event if one is ready.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::recv`].
    pub fn try_recv(&mut self) -> Result<Option<Received<'_, E>>, RecvError> {
        self.recv_deadline(Some(0))
    }

    /// Receive the next event, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::recv`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Received<'_, E>>, RecvError> {
        self.recv_deadline(Self::deadline(timeout))
    }

    fn recv_deadline(
        &mut self,
        deadline: Option<u64>,
    ) -> Result<Option<Received<'_, E>>, RecvError> {
        match self.next(deadline)? {
            Next::Got(h) => self.typed(h).map(Some),
            Next::Empty => Ok(None),
        }
    }

    /// Hand up to `max` ready events to `f` without waiting; returns how many.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::recv`]; events before the error were delivered.
    pub fn poll(
        &mut self,
        max: usize,
        mut f: impl FnMut(Received<'_, E>),
    ) -> Result<usize, RecvError> {
        let mut n = 0;
        while n < max {
            match self.try_recv()? {
                Some(ev) => f(ev),
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }
}

impl<E> Drop for Subscriber<E> {
    fn drop(&mut self) {
        let last = (!self.manual).then(|| self.held.unwrap_or(self.pos));
        self.topic
            .inner
            .ring
            .detach_consumer(self.slot, last, self.named);
    }
}
