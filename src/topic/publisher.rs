//! Publishers: typed `send`, raw bytes, and the in-place claim / commit grant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rkyv::rancor::Strategy;
use rkyv::ser::allocator::{Arena, SubAllocator};
use rkyv::ser::writer::Buffer;
use rkyv::util::AlignedVec;

use crate::error::{ArchiveError, AttachError, SendError};
use crate::event::{Event, RkyvError};
use crate::ring::{Claim, ClaimFail, ClaimLost, ProducerCursor, Ring};
use crate::sys::clock::RecordClock;
use crate::sys::fault::{self, Point};
use crate::sys::mapping::Mapping;
use crate::sys::sync::Ordering;
use crate::topic::wait::{Backoff, Wait};
use crate::topic::{OsLiveness, Payload, Topic};

/// A handle that publishes records on one topic. One per thread (it is `Send`, not
/// `Sync`); any number of publishers, in any processes, may share a topic, unless one
/// is [exclusive](Topic::exclusive_publisher).
///
/// Every publishing call (`send*`, `try_send*`, [`Grant::commit`]) may also fail with
/// [`SendError::ClaimLost`]: a subscriber turned the claim into a gap before the
/// commit, having judged this process dead (see the crate docs on crashes and
/// `fork()`). The record is then not published; a commit never reports success for
/// it.
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("shmbus-doc-pub-{}", std::process::id()));
/// let bus = shmbus::Bus::open_dir(&dir).unwrap();
/// let topic = bus.topic("bytes").capacity(1 << 16).open_or_create().unwrap();
/// let mut sub = topic.subscriber().open().unwrap();
/// let mut publisher = topic.publisher().unwrap();
/// let pos = publisher.send_bytes(7, b"hello").unwrap();
/// let ev = sub.try_recv_bytes().unwrap().unwrap();
/// assert_eq!((ev.position(), ev.type_id(), ev.bytes()), (pos, 7, &b"hello"[..]));
/// # drop(ev); drop(sub); drop(publisher); std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Publisher<E = crate::Raw> {
    topic: Topic<E>,
    ring: Arc<Ring<Mapping>>,
    cur: ProducerCursor,
    scratch: AlignedVec,
    arena: Arena,
    /// Batches: (start, len) of each payload in `scratch`.
    parts: Vec<(usize, usize)>,
    clock: RecordClock,
    wait: Wait,
    live: OsLiveness,
    /// Typed events: the archive size when it is all inline (serialised in place),
    /// `u32::MAX` when it is not, 0 before the first send.
    inline: u32,
}

impl<E: Payload> Topic<E> {
    /// Attach a publisher (takes a producer slot until dropped).
    ///
    /// Where the kernel has `membarrier`, its commits skip their fence before looking
    /// for sleeping subscribers, which issue that barrier themselves before they sleep
    /// (on this topic, for as long as it exists): the fence would wait for every line
    /// of the record to come back from readers that took it, which on a ring that
    /// stays in the publisher's caches sets its p99 (see docs/performance.md, store).
    ///
    /// # Errors
    ///
    /// [`AttachError::TooManyProducers`] when every slot is held by a live process.
    pub fn publisher(&self) -> Result<Publisher<E>, AttachError> {
        let light = crate::sys::os::light_wake();
        let (ring, mut cur) = self.attach_producer(|ring, slot| {
            ring.check_not_exclusive(slot)?;
            if light {
                ring.mark_light_shared();
            }
            Ok(())
        })?;
        cur.light_wake = light;
        Ok(self.publisher_in(ring, cur))
    }

    /// Attach the topic's only publisher, for the highest single-producer rate: its
    /// claims are plain stores instead of an atomic compare-and-swap, the check for
    /// subscribers joining at old positions runs once per eighth of the ring instead
    /// of once per claim, and (like a shared publisher, where the kernel has
    /// `membarrier`) a commit skips its fence before looking for sleeping subscribers.
    /// Until it is dropped (or its process dies), other publishers cannot attach.
    ///
    /// Subscribers joining while it publishes may start up to an eighth of the ring
    /// later than the oldest retained record.
    ///
    /// # Errors
    ///
    /// [`AttachError::PublishersAttached`] when other live publishers are attached,
    /// [`AttachError::ExclusivePublisher`] when another exclusive publisher holds the
    /// topic, [`AttachError::TooManyProducers`].
    pub fn exclusive_publisher(&self) -> Result<Publisher<E>, AttachError> {
        let light = crate::sys::os::light_wake();
        let (ring, mut cur) =
            self.attach_producer(|ring, slot| ring.claim_exclusive(slot, light))?;
        cur.exclusive = true;
        cur.light_wake = light;
        Ok(self.publisher_in(ring, cur))
    }

    /// Take a producer slot, then `check` it (the exclusivity rules); the slot is
    /// freed again if the check fails.
    fn attach_producer(
        &self,
        check: impl FnOnce(&Ring<Mapping>, usize) -> Result<(), AttachError>,
    ) -> Result<(Arc<Ring<Mapping>>, ProducerCursor), AttachError> {
        fault::init();
        let ring = self.writable_ring()?;
        let cur = ring.register_producer()?;
        if let Err(e) = check(&ring, cur.slot) {
            ring.free_producer(cur.slot);
            return Err(e);
        }
        Ok((ring, cur))
    }

    fn publisher_in(&self, ring: Arc<Ring<Mapping>>, cur: ProducerCursor) -> Publisher<E> {
        Publisher {
            topic: self.clone(),
            ring,
            cur,
            scratch: AlignedVec::new(),
            arena: Arena::new(),
            parts: Vec::new(),
            clock: RecordClock::new(),
            wait: Wait::Block,
            live: OsLiveness,
            inline: 0,
        }
    }
}

impl<E> Drop for Publisher<E> {
    fn drop(&mut self) {
        if self.cur.exclusive {
            self.ring.release_exclusive(self.cur.slot);
        }
        self.ring.free_producer(self.cur.slot);
    }
}

/// A lost claim as the caller sees it.
#[inline]
fn lost(r: Result<(), ClaimLost>, position: u64) -> Result<(), SendError> {
    r.map_err(|ClaimLost| SendError::ClaimLost { position })
}

/// An uncommitted claim: write the payload in place, then [`Grant::commit`]. Dropping
/// it uncommitted turns it into padding that subscribers skip.
pub struct Grant<'a, E> {
    publisher: &'a mut Publisher<E>,
    claim: Claim,
    type_id: u64,
    done: bool,
}

impl<E: Payload> Publisher<E> {
    /// Set how `send`/`claim` wait under back-pressure (default [`Wait::Block`], which
    /// backs off: spin, yield, then short sleeps).
    pub fn set_wait(&mut self, wait: Wait) {
        self.wait = wait;
    }

    /// The topic.
    pub fn topic(&self) -> &Topic<E> {
        &self.topic
    }

    /// Claim room for `len` payload bytes, waiting under back-pressure.
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`] if `len` exceeds the topic maximum.
    pub fn claim(&mut self, len: usize) -> Result<Grant<'_, E>, SendError> {
        self.claim_inner(len, None, true)
    }

    /// Claim room for `len` payload bytes without waiting.
    ///
    /// # Errors
    ///
    /// [`SendError::BackPressured`] if the ring is full for a live subscriber,
    /// [`SendError::TooLarge`] if `len` exceeds the topic maximum.
    pub fn try_claim(&mut self, len: usize) -> Result<Grant<'_, E>, SendError> {
        self.claim_inner(len, None, false)
    }

    fn claim_inner(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
        wait: bool,
    ) -> Result<Grant<'_, E>, SendError> {
        let claim = self.claim_raw(len, timeout, wait)?;
        Ok(Grant {
            publisher: self,
            claim,
            type_id: E::type_id(),
            done: false,
        })
    }

    #[inline]
    fn claim_raw(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
        wait: bool,
    ) -> Result<Claim, SendError> {
        let max = self.topic.max_payload();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let pos = self.claim_span(crate::ring::layout::record_size(len), timeout, wait)?;
        Ok(Claim { pos, len })
    }

    /// Claim `size` bytes of whole records (see [`Ring::try_claim_span`]), waiting
    /// under back-pressure as asked.
    #[inline]
    fn claim_span(
        &mut self,
        size: u64,
        timeout: Option<Duration>,
        wait: bool,
    ) -> Result<u64, SendError> {
        let ring = &self.ring;
        let mut backoff = Backoff::default();
        let mut started: Option<Instant> = None;
        loop {
            match ring.try_claim_span(&mut self.cur, size, &self.live) {
                Ok((pos, must_wait)) => {
                    fault::hit(Point::AfterClaim);
                    if must_wait {
                        ring.wait_writable(&mut self.cur, pos.wrapping_add(size), &self.live);
                    }
                    return Ok(pos);
                }
                Err(ClaimFail::Full) => {
                    if started.is_none() {
                        ring.count_stall(&mut self.cur);
                    }
                    if !wait {
                        return Err(SendError::BackPressured);
                    }
                    let t0 = *started.get_or_insert_with(Instant::now);
                    if let Some(limit) = timeout {
                        if t0.elapsed() >= limit {
                            return Err(SendError::Timeout);
                        }
                    }
                    backoff.pause(self.wait);
                }
            }
        }
    }

    #[inline]
    fn publish(
        &mut self,
        type_id: u64,
        payload: &[u8],
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<u64, SendError> {
        let claim = self.claim_raw(payload.len(), timeout, wait)?;
        let ring = &self.ring;
        // SAFETY: the claim owns these bytes until commit; producers map data read-write.
        unsafe { ring.payload_mut(claim.pos, payload.len()) }.copy_from_slice(payload);
        lost(ring.begin_commit(&mut self.cur, claim.pos), claim.pos)?;
        ring.write_header(claim.pos, claim.len, type_id, self.clock.now());
        fault::hit(Point::BeforeCommit);
        lost(ring.commit(&mut self.cur, claim), claim.pos)?;
        Ok(claim.pos)
    }

    /// Publish `n` payloads (`payload(i)`) as consecutive records, in spans of at most
    /// a quarter of the ring: per span one claim, one timestamp and at most one
    /// wake-up. Waits under back-pressure. Returns the position of the first record.
    fn publish_many<'p>(
        &mut self,
        type_id: u64,
        n: usize,
        payload: impl Fn(usize) -> &'p [u8],
    ) -> Result<u64, SendError> {
        let max = self.topic.max_payload();
        if let Some(len) = (0..n).map(|i| payload(i).len()).find(|&len| len > max) {
            return Err(SendError::TooLarge { len, max });
        }
        let span_max = (self.ring.p.capacity / 4).max(crate::ring::layout::record_size(max));
        let mut first = None;
        let mut i = 0;
        while i < n {
            let mut size = 0;
            let mut j = i;
            while j < n {
                let s = crate::ring::layout::record_size(payload(j).len());
                if j > i && size + s > span_max {
                    break;
                }
                size += s;
                j += 1;
            }
            let pos = self.claim_span(size, None, true)?;
            first.get_or_insert(pos);
            let ring = &self.ring;
            let ts = self.clock.now();
            lost(ring.begin_commit(&mut self.cur, pos), pos)?;
            let mut at = pos;
            let mut bytes = 0;
            for k in i..j {
                let p = payload(k);
                // SAFETY: the claim owns `[pos, pos + size)` until its records are
                // committed; producers map data read-write.
                unsafe { ring.payload_mut(at, p.len()) }.copy_from_slice(p);
                ring.write_header(at, p.len(), type_id, ts);
                fault::hit(Point::BeforeCommit);
                if ring.commit_record(at).is_err() {
                    // Lost from here on (an unblocker judged us dead): the records
                    // before `at` are published, this one and the rest are a gap.
                    ring.finish_claim(&mut self.cur, (k - i) as u64, bytes);
                    return Err(SendError::ClaimLost { position: at });
                }
                at += crate::ring::layout::record_size(p.len());
                bytes += p.len() as u64;
            }
            ring.finish_claim(&mut self.cur, (j - i) as u64, bytes);
            i = j;
        }
        Ok(first.unwrap_or_else(|| self.ring.tail().load(Ordering::Relaxed)))
    }

    /// Publish several raw payloads with one type id as consecutive records: one claim,
    /// one timestamp and at most one wake-up per span of up to a quarter of the ring,
    /// instead of one each per record. Waits under back-pressure. Returns the position
    /// of the first record (the tail position if `payloads` is empty).
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`] (nothing is published). An error from a later span
    /// leaves the earlier spans published.
    pub fn send_bytes_batch(&mut self, type_id: u64, payloads: &[&[u8]]) -> Result<u64, SendError> {
        self.publish_many(type_id, payloads.len(), |i| payloads[i])
    }

    /// Publish raw bytes with a type id, waiting under back-pressure. Returns the
    /// record's position.
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`].
    pub fn send_bytes(&mut self, type_id: u64, payload: &[u8]) -> Result<u64, SendError> {
        self.publish(type_id, payload, true, None)
    }

    /// Publish raw bytes without waiting.
    ///
    /// # Errors
    ///
    /// [`SendError::BackPressured`], [`SendError::TooLarge`].
    pub fn try_send_bytes(&mut self, type_id: u64, payload: &[u8]) -> Result<u64, SendError> {
        self.publish(type_id, payload, false, None)
    }

    /// Publish raw bytes, waiting at most `timeout` under back-pressure.
    ///
    /// # Errors
    ///
    /// [`SendError::Timeout`], [`SendError::TooLarge`].
    pub fn send_bytes_timeout(
        &mut self,
        type_id: u64,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<u64, SendError> {
        self.publish(type_id, payload, true, Some(timeout))
    }
}

impl<E: Event + 'static> Publisher<E> {
    fn serialize(&mut self, ev: &E) -> Result<(), SendError> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        match rkyv::api::high::to_bytes_in_with_alloc::<_, _, RkyvError>(
            ev,
            buf,
            self.arena.acquire(),
        ) {
            Ok(b) => {
                self.scratch = b;
                Ok(())
            }
            Err(e) => Err(SendError::Serialize(ArchiveError(e))),
        }
    }

    fn send_inner(
        &mut self,
        ev: &E,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<u64, SendError> {
        if self.inline == 0 {
            let root = E::schema().root();
            let size = std::mem::size_of::<E::Archived>();
            self.inline = if root.is_inline()
                && root.size() as usize == size
                && std::mem::align_of::<E::Archived>() <= 16
                && size <= self.topic.max_payload()
            {
                size as u32
            } else {
                u32::MAX
            };
        }
        if self.inline != u32::MAX {
            if let Some(pos) = self.send_in_place(ev, wait, timeout)? {
                return Ok(pos);
            }
        }
        self.serialize(ev)?;
        let scratch = std::mem::take(&mut self.scratch);
        let r = self.publish(E::TYPE_ID, &scratch, wait, timeout);
        self.scratch = scratch;
        r
    }

    /// An event whose archive is all inline (checked against the schema): claim the
    /// record and resolve the archive straight into it (no scratch buffer, no copy).
    /// `None`, before claiming anything, if serialising wanted to write out-of-line
    /// data after all; the caller then takes the general path.
    #[inline]
    fn send_in_place(
        &mut self,
        ev: &E,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<Option<u64>, SendError> {
        // Out-of-line data would go to this empty writer, and fail.
        let mut none = [0u8; 0];
        let mut ser =
            rkyv::ser::Serializer::new(Buffer::from(&mut none[..]), SubAllocator::empty(), ());
        let Ok(resolver) = ev.serialize(Strategy::<_, RkyvError>::wrap(&mut ser)) else {
            return Ok(None);
        };
        let size = std::mem::size_of::<E::Archived>();
        let claim = self.claim_raw(size, timeout, wait)?;
        let ring = &self.ring;
        // SAFETY: the claim owns these `size` bytes until commit (producers map data
        // read-write); payloads start 32-aligned, and the archive's alignment is at
        // most 16 (checked with the schema). The archive is zeroed first, so padding
        // is zero as in rkyv's own writer, and `resolve` then writes every field of an
        // all-inline archive at its final place (position 0: no relative pointers).
        unsafe {
            let out = ring
                .payload_mut(claim.pos, size)
                .as_mut_ptr()
                .cast::<E::Archived>();
            out.cast::<std::mem::MaybeUninit<E::Archived>>()
                .write(std::mem::MaybeUninit::zeroed());
            ev.resolve(resolver, rkyv::Place::new_unchecked(0, out));
        }
        lost(ring.begin_commit(&mut self.cur, claim.pos), claim.pos)?;
        ring.write_header(claim.pos, size, E::TYPE_ID, self.clock.now());
        fault::hit(Point::BeforeCommit);
        lost(ring.commit(&mut self.cur, claim), claim.pos)?;
        Ok(Some(claim.pos))
    }

    /// Serialise every event and publish them as consecutive records: one claim, one
    /// timestamp and at most one wake-up per span of up to a quarter of the ring. For
    /// producers with many small events at hand this is the fast path (see the
    /// throughput figures in docs/performance.md). Waits under back-pressure. Returns the
    /// position of the first record (the tail position if `events` is empty).
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`], [`SendError::Serialize`] (nothing is published). An
    /// error from a later span leaves the earlier spans published.
    pub fn send_batch(&mut self, events: &[E]) -> Result<u64, SendError> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        self.parts.clear();
        for ev in events {
            // Each archive starts 16-aligned so its internal alignment survives the
            // copy into the ring (payloads start 32-aligned there).
            while buf.len() % 16 != 0 {
                buf.push(0);
            }
            let start = buf.len();
            match rkyv::api::high::to_bytes_in_with_alloc::<_, _, RkyvError>(
                ev,
                buf,
                self.arena.acquire(),
            ) {
                Ok(b) => buf = b,
                Err(e) => {
                    self.scratch = AlignedVec::new();
                    return Err(SendError::Serialize(ArchiveError(e)));
                }
            }
            self.parts.push((start, buf.len() - start));
        }
        let parts = std::mem::take(&mut self.parts);
        let r = self.publish_many(E::TYPE_ID, parts.len(), |i| {
            let (start, len) = parts[i];
            &buf[start..start + len]
        });
        self.parts = parts;
        self.scratch = buf;
        r
    }

    /// Serialise `ev` with rkyv and publish it, waiting under back-pressure. Returns
    /// the record's position.
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`], [`SendError::Serialize`].
    pub fn send(&mut self, ev: &E) -> Result<u64, SendError> {
        self.send_inner(ev, true, None)
    }

    /// Publish without waiting.
    ///
    /// # Errors
    ///
    /// [`SendError::BackPressured`] when the ring is full for a live subscriber.
    pub fn try_send(&mut self, ev: &E) -> Result<u64, SendError> {
        self.send_inner(ev, false, None)
    }

    /// Publish, waiting at most `timeout` under back-pressure.
    ///
    /// # Errors
    ///
    /// [`SendError::Timeout`], [`SendError::TooLarge`], [`SendError::Serialize`].
    pub fn send_timeout(&mut self, ev: &E, timeout: Duration) -> Result<u64, SendError> {
        self.send_inner(ev, true, Some(timeout))
    }
}

impl<E: Payload> Grant<'_, E> {
    /// The record's position.
    pub fn position(&self) -> u64 {
        self.claim.pos
    }

    /// Set the type id written into the header (default: the topic's).
    pub fn set_type_id(&mut self, type_id: u64) {
        self.type_id = type_id;
    }

    /// The payload bytes to fill (their previous contents are unspecified).
    pub fn payload(&mut self) -> &mut [u8] {
        // SAFETY: the claim owns these bytes until commit or abort; the grant borrows
        // the publisher mutably, so no other claim of this handle can alias them.
        unsafe {
            self.publisher
                .ring
                .payload_mut(self.claim.pos, self.claim.len)
        }
    }

    /// Publish the record. Returns its position.
    ///
    /// # Errors
    ///
    /// [`SendError::ClaimLost`] if a subscriber turned the claim into a gap before
    /// this commit (it judged this producer dead after the topic's unblock timeout):
    /// the record is not published, and nothing more is written into the ring.
    pub fn commit(mut self) -> Result<u64, SendError> {
        self.done = true;
        let pos = self.claim.pos;
        let ts = self.publisher.clock.now();
        let ring = &self.publisher.ring;
        lost(ring.begin_commit(&mut self.publisher.cur, pos), pos)?;
        ring.write_header(pos, self.claim.len, self.type_id, ts);
        fault::hit(Point::BeforeCommit);
        lost(ring.commit(&mut self.publisher.cur, self.claim), pos)?;
        Ok(pos)
    }

    /// Give the claim up: it becomes padding that subscribers skip (as on drop).
    pub fn abort(self) {}
}

impl<E> Drop for Grant<'_, E> {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let ring = &self.publisher.ring;
            ring.abort(&mut self.publisher.cur, self.claim);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::Bus;

    /// Sleepers issue the barrier once a publisher that skips its fence has attached:
    /// an exclusive one while it holds the topic, a shared one for good.
    #[test]
    fn light_publishers_make_sleepers_issue_the_barrier() {
        let dir = std::env::temp_dir().join(format!("shmbus-light-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bus = Bus::open_dir(&dir).unwrap();
        let light = crate::sys::os::light_wake();
        let ex = bus.topic("ex").capacity(1 << 16).open_or_create().unwrap();
        let sh = bus.topic("sh").capacity(1 << 16).open_or_create().unwrap();
        assert!(!ex.inner.ring.light_producers());
        assert!(!sh.inner.ring.light_producers());
        let p = ex.exclusive_publisher().unwrap();
        assert_eq!(ex.inner.ring.light_producers(), light);
        drop(p);
        assert!(!ex.inner.ring.light_producers());
        let p = sh.publisher().unwrap();
        assert_eq!(p.cur.light_wake, light);
        assert_eq!(sh.inner.ring.light_producers(), light);
        drop(p);
        assert_eq!(sh.inner.ring.light_producers(), light);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
