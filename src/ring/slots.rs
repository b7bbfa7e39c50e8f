//! Slots: every transition of a producer or consumer slot's owner word, and every other
//! read or write of the slot tables and of the header's shared words outside the
//! claim/commit/read protocol (`protocol`) and the futex handshake (`wake`).
//!
//! The handles in [`crate::topic`] call these functions; none of them touches a slot
//! word itself. Field offsets are in [`crate::ring::layout`].
//!
//! # Consumer slot states
//!
//! ```text
//! FREE --take_free_consumer--> JOINING --activate_consumer--> ACTIVE
//! ACTIVE --detach_consumer--> FREE (anonymous) | DETACHED (named)
//! ACTIVE --producer evicts (protocol)--> EVICTED
//! DETACHED | EVICTED | ACTIVE of a dead process --try_take_named--> ACTIVE (same name)
//! DETACHED | EVICTED --park_named--> EVICTED (held for a store replay, `move_parked`)
//! ```
//!
//! # Producer slots and counters
//!
//! A producer slot's record, byte and stall counters are never reset: a new owner
//! continues the counts of the slot's previous owners and remembers where it started
//! (the base words), so the topic's totals (the sum over every slot) only ever grow,
//! whatever publishers come and go or die, as a Prometheus counter must.

use crate::error::AttachError;
use crate::ring::layout::*;
use crate::ring::Ring;
use crate::ring::{my_owner, owner, owner_pid, owner_start, owner_state, Memory, ProducerCursor};
use crate::sys::sync::{fence, Ordering};

/// The ring header's shared words other than the tail and the counters: a racy
/// snapshot for tools (`shmbus info`), never a basis for synchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderWords {
    /// Limit cache: the claim end producers may reach before rescanning subscribers.
    pub limit: u64,
    /// Consumer generation: bumped whenever a subscriber joins.
    pub consumer_generation: u64,
    /// Futex sequence word that sleeping subscribers wait on.
    pub futex_seq: u32,
    /// Subscribers announced as sleeping on the futex.
    pub sleepers: u32,
    /// Pid of the subscriber turning a dead producer's claim into a gap (0 when free).
    pub unblock_holder: u32,
    /// Producer slots taken over from dead processes.
    pub reaped_producers: u64,
}

/// Counters of a topic (a racy snapshot). Records, bytes and stalls count every
/// publisher the topic ever had: they never decrease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicStats {
    /// Next position to be claimed.
    pub tail: u64,
    /// Records published, by every publisher the topic ever had.
    pub records: u64,
    /// Payload bytes published, by every publisher the topic ever had.
    pub bytes: u64,
    /// Back-pressure stalls, of every publisher the topic ever had.
    pub stalls: u64,
    /// Gap records written for dead producers' claims.
    pub gaps: u64,
    /// Bytes covered by gap records.
    pub gap_bytes: u64,
    /// Subscribers evicted.
    pub evictions: u64,
}

/// An attached producer slot, as tools see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProducerView {
    pub owner: u64,
    /// This owner's records, bytes and stalls (since it took the slot).
    pub records: u64,
    pub bytes: u64,
    pub stalls: u64,
    pub claim: Option<u64>,
}

/// A taken consumer slot, as tools see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsumerView {
    pub owner: u64,
    /// The furthest of its released position and its progress.
    pub position: u64,
    pub heartbeat_ns: u64,
}

/// What [`Ring::try_take_named`] found in a slot carrying the wanted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NamedTake {
    /// The slot is ours now (active); it holds the name's resume position.
    Taken,
    /// Free or being set up: not the name's slot after all.
    Unclaimed,
    /// A live process holds the name, or is taking it right now.
    InUse,
}

/// Set up the words of a new ring file's slot tables (no claim intents). The file is
/// still private to its creator.
pub(crate) fn init_slots(mem: &impl Memory) {
    for i in 0..MAX_PRODUCERS {
        mem.word(producer_slot(i) + P_CLAIM)
            .store(NO_CLAIM, Ordering::Relaxed);
    }
}

/// Publish a fully initialised ring file: store the ready state last.
pub(crate) fn publish_ready(mem: &impl Memory) {
    // Release: everything written before is visible to whoever acquires the ready state.
    mem.word32(OFF_READY).store(READY, Ordering::Release);
}

impl<M: Memory> Ring<M> {
    // ------------------------------------------------------------ consumer slots

    /// The owner word of consumer slot `i`.
    pub fn consumer_owner(&self, i: usize) -> u64 {
        self.cword(i, C_OWNER).load(Ordering::SeqCst)
    }

    /// The name of consumer slot `i`, if it is a named one.
    pub fn consumer_name(&self, i: usize) -> Option<String> {
        let flags = self
            .mem
            .word32(consumer_slot(i) + C_FLAGS)
            .load(Ordering::Acquire);
        if flags & C_FLAG_NAMED == 0 {
            return None;
        }
        let len = (self
            .mem
            .word32(consumer_slot(i) + C_NAME_LEN)
            .load(Ordering::Acquire) as usize)
            .min(MAX_NAME);
        let mut buf = [0u8; MAX_NAME];
        self.mem.read(consumer_slot(i) + C_NAME, &mut buf[..len]);
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    /// The slot of the named subscriber `name` (attached, detached or evicted), if the
    /// topic has one.
    pub fn named_consumer(&self, name: &str) -> Option<usize> {
        (0..MAX_CONSUMERS).find(|&i| {
            self.consumer_name(i).as_deref() == Some(name)
                && !matches!(
                    owner_state(self.consumer_owner(i)),
                    SLOT_FREE | SLOT_JOINING
                )
        })
    }

    /// Take back slot `i`, which carries the name being attached, if no live process
    /// holds it.
    pub fn try_take_named(&self, i: usize) -> NamedTake {
        let ow = self.cword(i, C_OWNER);
        let mut o = ow.load(Ordering::SeqCst);
        let mut retried = false;
        loop {
            let st = owner_state(o);
            if st == SLOT_JOINING && retried {
                // Another process is taking this name right now.
                return NamedTake::InUse;
            }
            if st == SLOT_FREE || st == SLOT_JOINING {
                return NamedTake::Unclaimed;
            }
            if st == SLOT_ACTIVE && crate::sys::os::alive(owner_pid(o), owner_start(o)) {
                return NamedTake::InUse;
            }
            // Straight to active, not through "joining": producers ignore joining
            // slots, and the position this slot holds must stay protected while it
            // changes hands (a held name would otherwise lose records it never
            // received).
            match ow.compare_exchange(o, my_owner(SLOT_ACTIVE), Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    self.clear_sleeping(i);
                    return NamedTake::Taken;
                }
                // A producer retired the dead owner's slot (detached or evicted it) at
                // this moment: judge the new state.
                Err(now) => {
                    o = now;
                    retried = true;
                }
            }
        }
    }

    /// Take a free consumer slot (it is left joining) and write its flags and name.
    pub fn take_free_consumer(&self, flags: u32, name: &[u8]) -> Option<usize> {
        let i = (0..MAX_CONSUMERS).find(|&i| {
            let ow = self.cword(i, C_OWNER);
            ow.load(Ordering::Relaxed) == SLOT_FREE
                && ow
                    .compare_exchange(
                        SLOT_FREE,
                        my_owner(SLOT_JOINING),
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    )
                    .is_ok()
        })?;
        self.write_consumer_name(i, flags, name);
        Some(i)
    }

    fn write_consumer_name(&self, slot: usize, flags: u32, name: &[u8]) {
        let base = consumer_slot(slot);
        let mut buf = [0u8; MAX_NAME];
        buf[..name.len()].copy_from_slice(name);
        for (k, chunk) in buf.chunks(8).enumerate() {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            self.mem
                .word(base + C_NAME + k * 8)
                .store(w, Ordering::Relaxed);
        }
        self.mem
            .word32(base + C_NAME_LEN)
            .store(name.len() as u32, Ordering::Relaxed);
        self.mem
            .word32(base + C_FLAGS)
            .store(flags, Ordering::Release);
    }

    /// Give up slot `i` during a failed attach: a named slot taken back keeps its name
    /// (detached); any other becomes free.
    pub fn abandon_consumer(&self, i: usize, keep_name: bool) {
        let new = if keep_name {
            owner(0, 0, SLOT_DETACHED)
        } else {
            SLOT_FREE
        };
        self.cword(i, C_OWNER).store(new, Ordering::SeqCst);
    }

    /// Make slot `i` this process's active subscriber at `want`, before it joins.
    pub fn activate_consumer(&self, i: usize, want: u64) {
        self.cword(i, C_POSITION).store(want, Ordering::SeqCst);
        self.cword(i, C_PROGRESS).store(want, Ordering::Relaxed);
        self.cword(i, C_HEARTBEAT)
            .store(crate::sys::os::now_ns(), Ordering::Relaxed);
        self.cword(i, C_START)
            .store(crate::sys::os::own_start_time(), Ordering::Relaxed);
        self.cword(i, C_OWNER)
            .store(my_owner(SLOT_ACTIVE), Ordering::SeqCst);
    }

    /// A named subscriber could not resume at `want` (overwritten): keep `want` as the
    /// name's durable position and park the slot as evicted, so it does not hold
    /// producers back.
    pub fn park_lost(&self, i: usize, want: u64) {
        self.cword(i, C_POSITION).store(want, Ordering::SeqCst);
        self.cword(i, C_OWNER)
            .store(owner(0, 0, SLOT_EVICTED), Ordering::SeqCst);
    }

    /// Record progress: the exact position after the last record handed out.
    #[inline]
    pub fn set_progress(&self, i: usize, p: u64) {
        self.cword(i, C_PROGRESS).store(p, Ordering::Release);
    }

    /// Release `p` to producers: they never overwrite from there on.
    #[inline]
    pub fn release_position(&self, i: usize, p: u64) {
        self.cword(i, C_POSITION).store(p, Ordering::Release);
    }

    /// Whether slot `i` is still this process's active subscriber (not evicted).
    pub fn consumer_is_mine(&self, i: usize) -> bool {
        let o = self.cword(i, C_OWNER).load(Ordering::Acquire);
        owner_state(o) == SLOT_ACTIVE && owner_pid(o) == crate::sys::os::pid()
    }

    /// Record that the subscriber in slot `i` is alive (it is about to sleep).
    pub fn consumer_heartbeat(&self, i: usize) {
        self.cword(i, C_HEARTBEAT)
            .store(crate::sys::os::now_ns(), Ordering::Relaxed);
    }

    /// Where a named subscriber taking slot `i` back resumes: after the last record its
    /// predecessor was handed (its progress, never behind its released position), at a
    /// boundary even if the slot was scribbled on (see `tail_boundary`).
    pub fn resume_position(&self, i: usize) -> u64 {
        let released = self.cword(i, C_POSITION).load(Ordering::SeqCst);
        let progress = self.cword(i, C_PROGRESS).load(Ordering::SeqCst);
        released.max(progress) & !(RECORD_ALIGN - 1)
    }

    /// Park the named subscriber `name`, which no process has attached, for a reader
    /// that replays it from the store: create it at `pos` if the name is new (else keep
    /// its position), and mark it evicted, so that its position, which the ring no
    /// longer holds, does not hold producers back. Returns its slot and position.
    ///
    /// The position stays where a later attach with the name resumes;
    /// [`Ring::move_parked`] advances it.
    pub fn park_named(&self, name: &str, pos: u64) -> Result<(usize, u64), AttachError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(AttachError::InvalidName(name.to_string()));
        }
        let parked = owner(0, 0, SLOT_EVICTED);
        if let Some(i) = self.named_consumer(name) {
            let ow = self.cword(i, C_OWNER);
            let o = ow.load(Ordering::SeqCst);
            match owner_state(o) {
                SLOT_EVICTED | SLOT_DETACHED => {
                    if ow
                        .compare_exchange(o, parked, Ordering::SeqCst, Ordering::Relaxed)
                        .is_err()
                    {
                        return Err(AttachError::NameInUse(name.to_string()));
                    }
                    // Both words hold the resume position from here on.
                    let at = self.resume_position(i);
                    self.cword(i, C_POSITION).store(at, Ordering::SeqCst);
                    self.cword(i, C_PROGRESS).store(at, Ordering::SeqCst);
                    return Ok((i, at));
                }
                _ => return Err(AttachError::NameInUse(name.to_string())),
            }
        }
        let i = self
            .take_free_consumer(C_FLAG_NAMED, name.as_bytes())
            .ok_or(AttachError::TooManySubscribers)?;
        self.cword(i, C_POSITION).store(pos, Ordering::SeqCst);
        self.cword(i, C_PROGRESS).store(pos, Ordering::SeqCst);
        self.cword(i, C_HEARTBEAT)
            .store(crate::sys::os::now_ns(), Ordering::Relaxed);
        self.cword(i, C_OWNER).store(parked, Ordering::SeqCst);
        Ok((i, pos))
    }

    /// Move the parked named subscriber in `slot` from position `from` to `to`. False if
    /// a process attached it meanwhile or its position moved.
    pub fn move_parked(&self, slot: usize, from: u64, to: u64) -> bool {
        if owner_state(self.consumer_owner(slot)) != SLOT_EVICTED {
            return false;
        }
        if self
            .cword(slot, C_POSITION)
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.cword(slot, C_PROGRESS).store(to, Ordering::SeqCst);
        // An attach that raced with the move must see the new position or fail us.
        owner_state(self.consumer_owner(slot)) == SLOT_EVICTED
    }

    /// The subscriber in slot `i` detaches. `last` (if any) is published as both its
    /// progress and its released position first; a named slot keeps its name and
    /// position (detached, or evicted if it was), an anonymous one is freed. Nothing
    /// happens if another process owns the slot by now.
    pub fn detach_consumer(&self, i: usize, last: Option<u64>, named: bool) {
        let ow = self.cword(i, C_OWNER);
        let o = ow.load(Ordering::SeqCst);
        if owner_pid(o) != crate::sys::os::pid() {
            return;
        }
        if let Some(p) = last.filter(|_| owner_state(o) == SLOT_ACTIVE) {
            self.set_progress(i, p);
            self.release_position(i, p);
        }
        let new = if named {
            self.consumer_heartbeat(i);
            if owner_state(o) == SLOT_EVICTED {
                owner(0, 0, SLOT_EVICTED)
            } else {
                owner(0, 0, SLOT_DETACHED)
            }
        } else {
            SLOT_FREE
        };
        // Only if nobody (a producer evicting us) changed it meanwhile.
        let _ = ow.compare_exchange(o, new, Ordering::SeqCst, Ordering::Relaxed);
    }

    /// Consumer slot `i` as tools see it, unless it is free or being set up.
    pub fn consumer_view(&self, i: usize) -> Option<ConsumerView> {
        let o = self.cword(i, C_OWNER).load(Ordering::Acquire);
        if !matches!(owner_state(o), SLOT_ACTIVE | SLOT_EVICTED | SLOT_DETACHED) {
            return None;
        }
        let position = self
            .cword(i, C_POSITION)
            .load(Ordering::Acquire)
            .max(self.cword(i, C_PROGRESS).load(Ordering::Acquire));
        Some(ConsumerView {
            owner: o,
            position,
            heartbeat_ns: self.cword(i, C_HEARTBEAT).load(Ordering::Relaxed),
        })
    }

    // ------------------------------------------------------------ producer slots

    /// Register a producer slot for this process: a free one, else (second pass) one
    /// whose owner died. Returns its cursor, whose counters continue the slot's.
    pub fn register_producer(&self) -> Result<ProducerCursor, AttachError> {
        let me = my_owner(SLOT_ACTIVE);
        for pass in 0..2 {
            for i in 0..MAX_PRODUCERS {
                let ow = self.pword(i, P_OWNER);
                let o = ow.load(Ordering::Acquire);
                let free = owner_state(o) == SLOT_FREE
                    || (pass == 1 && !crate::sys::os::alive(owner_pid(o), owner_start(o)));
                if free
                    && ow
                        .compare_exchange(o, me, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    if o != SLOT_FREE {
                        self.mem.word(OFF_REAPED).fetch_add(1, Ordering::Relaxed);
                    }
                    self.pword(i, P_START)
                        .store(crate::sys::os::own_start_time(), Ordering::Release);
                    self.pword(i, P_HEARTBEAT)
                        .store(crate::sys::os::now_ns(), Ordering::Relaxed);
                    self.pword(i, P_CLAIM).store(NO_CLAIM, Ordering::Release);
                    let mut cur = ProducerCursor::new(i);
                    cur.records = self.pword(i, P_RECORDS).load(Ordering::Relaxed);
                    cur.bytes = self.pword(i, P_BYTES).load(Ordering::Relaxed);
                    cur.stalls = self.pword(i, P_STALLS).load(Ordering::Relaxed);
                    for (base, v) in [
                        (P_BASE_RECORDS, cur.records),
                        (P_BASE_BYTES, cur.bytes),
                        (P_BASE_STALLS, cur.stalls),
                    ] {
                        self.pword(i, base).store(v, Ordering::Relaxed);
                    }
                    return Ok(cur);
                }
            }
        }
        Err(AttachError::TooManyProducers)
    }

    /// Free producer slot `slot`: its publisher detaches (or could not attach after
    /// all). Its claim intent is cleared first.
    pub fn free_producer(&self, slot: usize) {
        self.pword(slot, P_CLAIM).store(NO_CLAIM, Ordering::Release);
        self.pword(slot, P_OWNER)
            .store(SLOT_FREE, Ordering::Release);
    }

    /// A producer was held back by a full ring: count the stall and show it is alive.
    pub fn count_stall(&self, cur: &mut ProducerCursor) {
        cur.stalls = cur.stalls.wrapping_add(1);
        self.pword(cur.slot, P_STALLS)
            .store(cur.stalls, Ordering::Relaxed);
        self.pword(cur.slot, P_HEARTBEAT)
            .store(crate::sys::os::now_ns(), Ordering::Relaxed);
    }

    /// Producer slot `i` as tools see it, if a producer holds it.
    pub fn producer_view(&self, i: usize) -> Option<ProducerView> {
        let o = self.pword(i, P_OWNER).load(Ordering::Acquire);
        if owner_state(o) != SLOT_ACTIVE {
            return None;
        }
        let claim = self.pword(i, P_CLAIM).load(Ordering::Relaxed);
        let since = |f, base| {
            self.pword(i, f)
                .load(Ordering::Relaxed)
                .saturating_sub(self.pword(i, base).load(Ordering::Relaxed))
        };
        Some(ProducerView {
            owner: o,
            records: since(P_RECORDS, P_BASE_RECORDS),
            bytes: since(P_BYTES, P_BASE_BYTES),
            stalls: since(P_STALLS, P_BASE_STALLS),
            claim: (claim != NO_CLAIM).then_some(claim),
        })
    }

    /// The topic's counters: records, bytes and stalls over every producer slot that
    /// was ever used (they never decrease), and the rare counters.
    pub fn counters(&self) -> TopicStats {
        let mut c = TopicStats {
            tail: self.tail().load(Ordering::Acquire),
            ..TopicStats::default()
        };
        for i in 0..MAX_PRODUCERS {
            // Saturating: a scribbled counter must not wrap the total (or panic).
            let word = |f| self.pword(i, f).load(Ordering::Relaxed);
            c.records = c.records.saturating_add(word(P_RECORDS));
            c.bytes = c.bytes.saturating_add(word(P_BYTES));
            c.stalls = c.stalls.saturating_add(word(P_STALLS));
        }
        c.gaps = self.mem.word(OFF_GAPS).load(Ordering::Relaxed);
        c.gap_bytes = self.mem.word(OFF_GAP_BYTES).load(Ordering::Relaxed);
        c.evictions = self.mem.word(OFF_EVICTIONS).load(Ordering::Relaxed);
        c
    }

    /// A snapshot of the header's shared words (see [`HeaderWords`]).
    pub fn header_words(&self) -> HeaderWords {
        let m = &self.mem;
        HeaderWords {
            limit: m.word(OFF_LIMIT).load(Ordering::Relaxed),
            consumer_generation: m.word(OFF_GEN).load(Ordering::Relaxed),
            futex_seq: m.word32(OFF_FUTEX_SEQ).load(Ordering::Relaxed),
            sleepers: m.word32(OFF_FUTEX_WAITERS).load(Ordering::Relaxed),
            unblock_holder: owner_pid(m.word(OFF_UNBLOCK_LOCK).load(Ordering::Relaxed)),
            reaped_producers: m.word(OFF_REAPED).load(Ordering::Relaxed),
        }
    }

    // ------------------------------------------------------- exclusive publishers

    /// Whether the exclusive-producer word `w` names a live producer other than the
    /// one in slot `mine`: its slot must still be held by the process the word names
    /// (a slot reused after the holder died is not the holder).
    fn exclusive_holder_alive(&self, w: u64, mine: usize) -> bool {
        let Some((slot, pid)) = exclusive_holder(w).filter(|&(slot, _)| slot != mine) else {
            return false;
        };
        let o = self.pword(slot, P_OWNER).load(Ordering::SeqCst);
        owner_state(o) == SLOT_ACTIVE
            && owner_pid(o) == pid
            && crate::sys::os::alive(owner_pid(o), owner_start(o))
    }

    /// A shared publisher in slot `slot` just registered: refuse if an exclusive one
    /// holds the topic, and clear the word if it names one that died. (Dekker with
    /// [`Ring::claim_exclusive`]: each side publishes itself, fences, then looks for
    /// the other.)
    pub fn check_not_exclusive(&self, slot: usize) -> Result<(), AttachError> {
        fence(Ordering::SeqCst);
        let word = self.mem.word(OFF_EXCLUSIVE);
        let w = word.load(Ordering::SeqCst);
        if self.exclusive_holder_alive(w, slot) {
            return Err(AttachError::ExclusivePublisher);
        }
        if w != 0 {
            // Its pid is in the word, so a new holder never has the same value.
            let _ = word.compare_exchange(w, 0, Ordering::SeqCst, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A shared publisher of this process will skip its commits' fence before the
    /// waiter check (see `Ring::wake_from`): mark the topic, for good, so that every
    /// sleeper issues the barrier in its place. A sleeper that loaded the mark before
    /// this store announced itself before it too, and the fence after it makes this
    /// publisher's waiter checks see that announcement.
    pub fn mark_light_shared(&self) {
        self.mem
            .word(OFF_LIGHT_SHARED)
            .fetch_or(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Make the publisher in slot `slot` the topic's only one: take the exclusive word
    /// (from nobody, or from a holder that died), then check that no other live
    /// producer is attached.
    pub fn claim_exclusive(&self, slot: usize, light: bool) -> Result<(), AttachError> {
        let word = self.mem.word(OFF_EXCLUSIVE);
        let me = exclusive_word(slot, crate::sys::os::pid(), light);
        loop {
            let w = word.load(Ordering::SeqCst);
            if self.exclusive_holder_alive(w, slot) {
                return Err(AttachError::ExclusivePublisher);
            }
            if word
                .compare_exchange(w, me, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        fence(Ordering::SeqCst);
        for i in (0..MAX_PRODUCERS).filter(|&i| i != slot) {
            let o = self.pword(i, P_OWNER).load(Ordering::SeqCst);
            if owner_state(o) == SLOT_ACTIVE && crate::sys::os::alive(owner_pid(o), owner_start(o))
            {
                let _ = word.compare_exchange(me, 0, Ordering::SeqCst, Ordering::Relaxed);
                return Err(AttachError::PublishersAttached);
            }
        }
        Ok(())
    }

    /// The exclusive publisher in slot `slot` detaches: clear the exclusive word if it
    /// still names that slot.
    pub fn release_exclusive(&self, slot: usize) {
        let word = self.mem.word(OFF_EXCLUSIVE);
        let w = word.load(Ordering::SeqCst);
        if exclusive_holder(w).is_some_and(|(s, _)| s == slot) {
            let _ = word.compare_exchange(w, 0, Ordering::SeqCst, Ordering::Relaxed);
        }
    }
}
