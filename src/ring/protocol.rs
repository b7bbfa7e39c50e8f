//! The ring protocol: claim, commit, read, back-pressure, joining, eviction and
//! unblocking of abandoned claims.
//!
//! Everything here works on a `Memory` trait: the real ring file mapping, or, under
//! `--cfg loom`, a model of it whose words are loom atomics. The protocol is the same.
//!
//! # Claims
//!
//! A producer reads the tail `t`, computes the end of its claim (a padding record to
//! the end of the lap first if the record would straddle it), writes `t` into its
//! slot's *claim intent*, and CASes the tail from `t` to the end. The intent is what
//! lets a consumer find the boundaries of an abandoned claim later.
//!
//! # Back-pressure and joining (reliable mode)
//!
//! A claim may end at most one capacity past the slowest live consumer position.
//! Producers cache that limit and rescan the consumer table only when they reach it.
//! A consumer joining at an old position publishes its slot, bumps the consumer
//! generation (SeqCst) and then reads the tail (SeqCst); a producer reads the
//! generation (SeqCst) right after its tail CAS (SeqCst). In the single total order
//! of those operations either the producer sees the new generation (and rescans,
//! seeing the joiner, before writing anything) or the joiner sees the producer's claim
//! in the tail and starts no earlier than `tail - capacity`. So no byte a consumer
//! still needs is ever overwritten.
//!
//! # Abandoned claims
//!
//! A consumer blocked at `p` for longer than the unblock timeout takes the unblock
//! lock and, if no live producer's intent is `p`, writes a gap record from `p` to the
//! first known boundary after it: a committed record, any producer's claim intent, or
//! the tail. Every record start in that range is such a boundary, because a claim's
//! intent stays in its slot until its commit word is stored.
//!
//! # One decision per record: commit or gap
//!
//! "Dead" is a judgement from outside (pid and start time, see `sys::os`), and a
//! judgement can be wrong: a child forked without `exec` that registered its parent's
//! identity, a producer in another PID namespace, a `/proc` that hides processes. So
//! the unblocker and a producer judged dead never both publish the record at `p`:
//! each moves the commit word at `p` with one CAS from whatever an earlier lap left
//! there, and exactly one CAS succeeds.
//!
//! - The producer ([`Ring::commit_record`]) moves it to `p | COMMITTED`. It fails if
//!   the word is already tagged with `p` (a gap, pending or written) or belongs to a
//!   later lap's record (lossy mode, or a producer stalled for a lap); it then clears
//!   its intent, commits nothing more of its claim, and reports the loss
//!   (`SendError::ClaimLost`, `SHMBUS_ERR_CLAIM_LOST`), never success.
//! - The unblocker moves it to `p | GAP` without `COMMITTED`: a *pending* gap, which
//!   readers treat as "not yet" and which makes the producer's CAS fail. Only then does
//!   it write the gap's length and store `p | COMMITTED | GAP` (release).
//!
//! The padding a claim puts in front of its span at the end of a lap is written at
//! commit time ([`Ring::begin_commit`]) and decided the same way, so a claim whose
//! padding position became a gap is lost as a whole, before any of its records.
//!
//! Which bytes may a producer still write after it lost? Its payload (written before
//! the CAS, by `send`'s copy or by a grant's holder) lies inside the gap: a gap runs
//! from `p` to the next boundary, at or after the claim's end, and readers never read
//! a gap's bytes past its header. Its record header (length, type, time: written
//! before the CAS, so that a reader who acquires the commit word sees it) may land
//! on the gap's header after the gap's length was written. That is harmless by
//! construction: readers read only the length of a gap, and the producer's length
//! is its own record's, which ends at a record boundary inside the claim, so a reader
//! that reads it skips a shorter stretch and meets the rest of the claim as records
//! that are never committed, which become gaps in turn. The commit word, the one
//! thing that decides, is never written by the loser. What no protocol can stop is a
//! producer wrongly judged dead that stalls until a later lap reuses its bytes and
//! then writes into them; the fork-safe identity of `sys::os` keeps that judgement
//! right on one PID namespace.
//!
use crate::ring::layout::*;
use crate::sys::sync::{fence, sc_pair_point, spin_hint, AtomicU32, AtomicU64, Ordering};

/// Where the ring's words and bytes live.
///
/// Offsets are byte offsets into the ring file (header then data).
pub(crate) trait Memory {
    /// The 8-byte aligned atomic word at `off`.
    fn word(&self, off: usize) -> &AtomicU64;
    /// The 4-byte aligned atomic word at `off`.
    fn word32(&self, off: usize) -> &AtomicU32;
    /// Copy `src` into the data region at `off`.
    ///
    /// # Safety
    ///
    /// The caller owns `[off, off + src.len())` by a committed-not-yet claim.
    unsafe fn write(&self, off: usize, src: &[u8]);
    /// Copy bytes at `off` into `dst` (racy reads are allowed: lossy readers validate).
    fn read(&self, off: usize, dst: &mut [u8]);
    /// CAS the commit word at `off` in the data region from `current` to `new`
    /// (SeqCst), as a consumer that may map the data read-only (the unblocker's half
    /// of a record's one decision). Returns whether it succeeded.
    fn cas_data_word(&self, off: usize, current: u64, new: u64) -> bool;
    /// Store a record header's length then its commit word (release), as a consumer
    /// that may map the data read-only (used to write gap records).
    fn store_gap(&self, off: usize, len: u32, commit: u64);
}

/// Static parameters of a ring, read from its header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub capacity: u64,
    pub mode: Mode,
    pub max_payload: usize,
    pub consumer_timeout_ns: u64,
    pub unblock_timeout_ns: u64,
    pub hold_named: bool,
}

/// A ring: parameters plus the memory that holds it.
pub(crate) struct Ring<M> {
    pub mem: M,
    pub p: Params,
    mask: u64,
}

/// Outcome of reading the record at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// A committed data record.
    Record(RecordHeader),
    /// Padding or a gap: skip to `next`.
    Skip { next: u64, gap: bool },
    /// Nothing committed here yet.
    NotYet,
    /// Lossy mode: the position was overwritten by a later lap.
    Overwritten,
    /// The header is malformed.
    Corrupt(&'static str),
}

/// A committed record's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// The record's position.
    pub position: u64,
    /// Payload length.
    pub len: u32,
    /// Type id.
    pub type_id: u64,
    /// Producer timestamp, ns since the Unix epoch.
    pub timestamp: u64,
}

impl RecordHeader {
    /// Position of the next record.
    pub fn next(&self) -> u64 {
        // Wrapping: a position this large only comes from a scribbled header, and a
        // wrapped one stays 64-aligned (memory-safe) where a saturated one would not.
        self.position.wrapping_add(record_size(self.len as usize))
    }
}

/// A claim made by a producer, not yet committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    /// Position of the record.
    pub pos: u64,
    /// Payload length.
    pub len: usize,
}

/// A producer's private view: its slot and cached cursors.
///
/// `limit` may be stale low (the producer rescans when it reaches it) but never stale
/// high except across a consumer join, which the generation check catches.
#[derive(Debug)]
pub(crate) struct ProducerCursor {
    pub slot: usize,
    pub limit: u64,
    pub gen: u64,
    pub records: u64,
    pub bytes: u64,
    pub stalls: u64,
    /// Consumer slot -> (position, monotonic ns first seen there) for stuck detection.
    pub stuck: Vec<(u64, u64)>,
    pub last_resolve_ns: u64,
    /// The only producer of the ring (see [`Ring::try_claim_span`]): claims are plain
    /// tail stores, and the joiner check runs once per horizon step, not per claim.
    pub exclusive: bool,
    /// Exclusive producers: the horizon this producer published and checked joiners
    /// against; claims ending at or before it need no check.
    pub horizon: u64,
    /// Sleepers force the wake-up barrier with `membarrier` (this process registered
    /// for it), so a commit needs no fence of its own before the waiter check.
    pub light_wake: bool,
}

impl ProducerCursor {
    pub fn new(slot: usize) -> Self {
        ProducerCursor {
            slot,
            limit: 0,
            gen: u64::MAX,
            records: 0,
            bytes: 0,
            stalls: 0,
            stuck: vec![(u64::MAX, 0); MAX_CONSUMERS],
            last_resolve_ns: 0,
            exclusive: false,
            horizon: 0,
            light_wake: false,
        }
    }
}

/// Why a claim could not be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimFail {
    /// Reliable mode: a live consumer is a full ring behind.
    Full,
}

/// A shared word that breaks the ring's invariants (see [`Ring::check_words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadWord {
    /// Which word, in words.
    pub word: String,
    /// The value found.
    pub value: u64,
    /// A check that an honest ring can fail for a moment (see [`Ring::check_words`]).
    pub transient: bool,
}

impl BadWord {
    fn new(word: &str, value: u64) -> BadWord {
        BadWord {
            word: word.to_string(),
            value,
            transient: false,
        }
    }
}

/// A producer's claim was turned into a gap before it committed (see
/// [`Ring::begin_commit`]); nothing of it may be written any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClaimLost;

/// Owner word of a slot: `pid << 32 | start28 << 4 | state`, where `start28` is the
/// low 28 bits of the owner's process start time. Pid and start time in one word let
/// anyone judge liveness from a single load, with no window where they disagree.
pub(crate) fn owner(pid: u32, start: u64, state: u64) -> u64 {
    ((pid as u64) << 32) | ((start & START_MASK) << 4) | (state & 0xf)
}
/// This process's owner word in `state`.
pub(crate) fn my_owner(state: u64) -> u64 {
    owner(
        crate::sys::os::pid(),
        crate::sys::os::own_start_time(),
        state,
    )
}
pub(crate) fn owner_pid(word: u64) -> u32 {
    (word >> 32) as u32
}
pub(crate) fn owner_start(word: u64) -> u64 {
    (word >> 4) & START_MASK
}
pub(crate) fn owner_state(word: u64) -> u64 {
    word & 0xf
}
/// Bits of the process start time kept in owner words.
pub(crate) const START_MASK: u64 = 0x0fff_ffff;

/// Liveness oracle: the real one asks the OS; the loom model says everyone is alive
/// unless told otherwise.
pub(crate) trait Liveness {
    /// Whether process `pid` whose start time has low 28 bits `start28` still runs.
    fn alive(&self, pid: u32, start28: u64) -> bool;
    fn now_ns(&self) -> u64;
}

impl<M: Memory> Ring<M> {
    pub fn new(mem: M, p: Params) -> Self {
        // A claim of padding plus a record must fit behind a caught-up consumer
        // (pad + size <= capacity), or a producer could wait forever at the wrap.
        debug_assert!(record_size(p.max_payload) <= p.capacity / 2);
        Ring {
            mem,
            p,
            mask: p.capacity - 1,
        }
    }

    /// File offset of a position's bytes.
    #[inline]
    pub fn data_off(&self, pos: u64) -> usize {
        HEADER_SIZE + (pos & self.mask) as usize
    }

    #[inline]
    pub fn tail(&self) -> &AtomicU64 {
        self.mem.word(OFF_TAIL)
    }

    #[inline]
    fn commit_word(&self, pos: u64) -> &AtomicU64 {
        self.mem.word(self.data_off(pos))
    }

    /// Producer slot word.
    #[inline]
    pub fn pword(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.mem.word(producer_slot(slot) + field)
    }

    /// Consumer slot word.
    #[inline]
    pub fn cword(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.mem.word(consumer_slot(slot) + field)
    }

    // ---------------------------------------------------------------- producers

    /// Try to claim room for a record of `len` payload bytes (len ≤ max_payload).
    ///
    /// On success the claim is owned: the caller must write and [`Ring::commit`] it.
    /// If the claim crossed the end of the lap, the padding record is already
    /// committed. `must_wait` is set when a consumer joined concurrently and the claim
    /// must not be written until [`Ring::wait_writable`] says so. (The loom model's
    /// entry point; publishers claim spans.)
    #[cfg(all(loom, test))]
    #[inline]
    pub fn try_claim(
        &self,
        cur: &mut ProducerCursor,
        len: usize,
        live: &impl Liveness,
    ) -> Result<(Claim, bool), ClaimFail> {
        let (pos, must_wait) = self.try_claim_span(cur, record_size(len), live)?;
        Ok((Claim { pos, len }, must_wait))
    }

    /// Claim `size` bytes (whole records, laid out by the caller, none crossing the
    /// end of the lap: the span is placed at the start of the next lap if it does not
    /// fit). Returns the span's position and `must_wait` as [`Ring::try_claim`]. The
    /// caller commits every record in order, then calls [`Ring::finish_claim`].
    #[inline]
    pub fn try_claim_span(
        &self,
        cur: &mut ProducerCursor,
        size: u64,
        live: &impl Liveness,
    ) -> Result<(u64, bool), ClaimFail> {
        if cur.exclusive {
            return self.try_claim_exclusive(cur, size, live);
        }
        let reliable = self.p.mode == Mode::Reliable;
        let intent = self.pword(cur.slot, P_CLAIM);
        let (start, end) = loop {
            let t = self.tail().load(Ordering::Relaxed);
            if t & FLAG_MASK != 0 {
                // Honest tails are record boundaries. A scribbled one is rounded up
                // first: a record starting unaligned could put its header past the end
                // of the mapping. (Readers skip the bytes in between as a gap.)
                let up = t.wrapping_add(FLAG_MASK) & !FLAG_MASK;
                let _ = self
                    .tail()
                    .compare_exchange(t, up, Ordering::SeqCst, Ordering::Relaxed);
                continue;
            }
            let end = self.span_end(t, size);
            if reliable {
                self.make_room(cur, end, live)?;
            }
            // Relaxed: the SeqCst CAS below orders it before the tail update (the
            // release half of the pair that `unblock` acquires with its tail load).
            intent.store(t, Ordering::Relaxed);
            if self
                .tail()
                .compare_exchange_weak(t, end, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                break (t, end);
            }
            spin_hint();
        };
        let mut must_wait = false;
        if reliable {
            // Pairs with the joiner's SeqCst generation bump (see module docs).
            sc_pair_point();
            let gen = self.mem.word(OFF_GEN).load(Ordering::SeqCst);
            if gen != cur.gen {
                self.refresh_limit(cur);
                must_wait = end > cur.limit;
            }
        }
        self.pad_to(cur, start, end, size, must_wait, live)
    }

    /// The exclusive producer's claim: nobody else moves the tail, so it is a plain
    /// store, not a CAS. Joiners are kept safe by the *horizon* instead of a
    /// generation check after every claim: before writing past the horizon, the
    /// producer publishes a new one (up to an eighth of the ring ahead, within its
    /// limit), then checks the generation (a SeqCst pair with [`Ring::join`], which
    /// reads the horizon after its generation bump and joins no earlier than one
    /// capacity before it). Either the producer sees the joiner (and rescans before
    /// writing), or the joiner starts past every byte the producer writes before its
    /// next check.
    #[inline]
    fn try_claim_exclusive(
        &self,
        cur: &mut ProducerCursor,
        size: u64,
        live: &impl Liveness,
    ) -> Result<(u64, bool), ClaimFail> {
        let reliable = self.p.mode == Mode::Reliable;
        // Only this producer stores the tail; a scribbled one is rounded up (as in the
        // shared path: readers skip the bytes in between as a gap).
        let t = self.tail().load(Ordering::Relaxed);
        let t = t.wrapping_add(FLAG_MASK) & !FLAG_MASK;
        let end = self.span_end(t, size);
        let mut must_wait = false;
        if reliable {
            self.make_room(cur, end, live)?;
            if end > cur.horizon {
                let lead = (self.p.capacity / 8).max(2 * RECORD_ALIGN);
                let h = end.saturating_add(lead).min(cur.limit).max(end);
                self.mem.word(OFF_HORIZON).store(h, Ordering::SeqCst);
                // Pairs with the joiner's generation bump then horizon load.
                fence(Ordering::SeqCst);
                let gen = self.mem.word(OFF_GEN).load(Ordering::SeqCst);
                if gen != cur.gen {
                    self.refresh_limit(cur);
                    must_wait = end > cur.limit;
                }
                cur.horizon = h;
            }
        }
        self.pword(cur.slot, P_CLAIM).store(t, Ordering::Relaxed);
        // Release: the intent is visible to whoever sees the new tail (`unblock`).
        self.tail().store(end, Ordering::Release);
        // The tail store comes before the record bytes for a lossy reader that copies
        // them and then checks the tail (`still_valid`): free on x86.
        fence(Ordering::Release);

        self.pad_to(cur, t, end, size, must_wait, live)
    }

    /// The end of a span of `size` bytes claimed at tail `t`: after padding to the end
    /// of the lap if the span does not fit before it. Wrapping (what release builds do
    /// anyway): only a scribbled tail gets that far.
    #[inline]
    fn span_end(&self, t: u64, size: u64) -> u64 {
        let off = t & self.mask;
        let pad = if off + size > self.p.capacity {
            self.p.capacity - off
        } else {
            0
        };
        t.wrapping_add(pad).wrapping_add(size)
    }

    /// Reliable mode: whether a claim may end at `end`. Past the cached limit, rescan
    /// the consumer table, then evict blockers that are dead or stuck; `Full` if a live
    /// consumer is still a full ring behind.
    #[inline]
    fn make_room(
        &self,
        cur: &mut ProducerCursor,
        end: u64,
        live: &impl Liveness,
    ) -> Result<(), ClaimFail> {
        if end > cur.limit {
            self.refresh_limit(cur);
            if end > cur.limit {
                self.resolve_blockers(cur, end, live);
                if end > cur.limit {
                    return Err(ClaimFail::Full);
                }
            }
        }
        Ok(())
    }

    /// After a claim of `[start, end)`: return the span's position. The padding to
    /// the end of the lap in front of the span, if any, is written by
    /// [`Ring::begin_commit`], once the claim is decided (it overwrites old bytes, so a
    /// joiner that forced `must_wait` holds it back like the span itself).
    #[inline]
    fn pad_to(
        &self,
        _cur: &mut ProducerCursor,
        _start: u64,
        end: u64,
        size: u64,
        must_wait: bool,
        _live: &impl Liveness,
    ) -> Result<(u64, bool), ClaimFail> {
        Ok((end.wrapping_sub(size), must_wait))
    }

    /// Rescan the consumer table: the new limit is the slowest live position plus
    /// one capacity (unbounded with no consumers).
    pub fn refresh_limit(&self, cur: &mut ProducerCursor) {
        // Read the generation first: a consumer that joins after this read bumps it,
        // and the producer will rescan after its next claim.
        cur.gen = self.mem.word(OFF_GEN).load(Ordering::SeqCst);
        let mut min = u64::MAX;
        for i in 0..MAX_CONSUMERS {
            let o = self.cword(i, C_OWNER).load(Ordering::SeqCst);
            let st = owner_state(o);
            if st == SLOT_ACTIVE || st == SLOT_DETACHED {
                min = min.min(self.cword(i, C_POSITION).load(Ordering::SeqCst));
            }
        }
        cur.limit = min.saturating_add(self.p.capacity);
        // Shared for inspection only; a producer spinning at a full ring must not keep
        // taking this line with a locked instruction when nothing changed.
        let shared = self.mem.word(OFF_LIMIT);
        let limit = cur.limit.min(u64::MAX - 1);
        if shared.load(Ordering::Relaxed) < limit {
            shared.fetch_max(limit, Ordering::Relaxed);
        }
    }

    /// A producer blocked short of `end`: evict consumers that are dead, detached for
    /// too long, or stuck for longer than the consumer timeout. Rate-limited.
    pub fn resolve_blockers(&self, cur: &mut ProducerCursor, end: u64, live: &impl Liveness) {
        let now = live.now_ns();
        if now.saturating_sub(cur.last_resolve_ns) < 1_000_000 {
            return;
        }
        cur.last_resolve_ns = now;
        let mut changed = false;
        for i in 0..MAX_CONSUMERS {
            let ow = self.cword(i, C_OWNER);
            let o = ow.load(Ordering::SeqCst);
            let st = owner_state(o);
            if st != SLOT_ACTIVE && st != SLOT_DETACHED {
                cur.stuck[i] = (u64::MAX, 0);
                continue;
            }
            let pos = self.cword(i, C_POSITION).load(Ordering::SeqCst);
            if pos.saturating_add(self.p.capacity) >= end {
                cur.stuck[i] = (u64::MAX, 0);
                continue;
            }
            let named = self
                .mem
                .word32(consumer_slot(i) + C_FLAGS)
                .load(Ordering::Relaxed)
                & C_FLAG_NAMED
                != 0;
            let hold = named && self.p.hold_named;
            let timeout = self.p.consumer_timeout_ns;
            if st == SLOT_ACTIVE {
                if !live.alive(owner_pid(o), owner_start(o)) {
                    // Dead. A named one keeps its name and position, with the grace of
                    // the timeout; an anonymous one is freed.
                    changed |= if named {
                        self.cword(i, C_HEARTBEAT).store(now, Ordering::Relaxed);
                        self.retire(i, o, owner(0, 0, SLOT_DETACHED), false)
                    } else {
                        self.retire(i, o, SLOT_FREE, true)
                    };
                    continue;
                }
                // Alive: stuck if its progress has not moved for the timeout (its
                // released position moves only once per stride).
                let progress = self.cword(i, C_PROGRESS).load(Ordering::Relaxed);
                let (seen, since) = cur.stuck[i];
                if seen != progress {
                    cur.stuck[i] = (progress, now);
                } else if !hold && now.saturating_sub(since) >= timeout {
                    changed |= self.retire(i, o, (o & !0xf) | SLOT_EVICTED, true);
                }
            } else {
                // Detached named subscriber: held for the timeout after it left.
                let since = self.cword(i, C_HEARTBEAT).load(Ordering::Relaxed);
                if !hold && now.saturating_sub(since) >= timeout {
                    changed |= self.retire(i, o, owner(0, 0, SLOT_EVICTED), true);
                }
            }
        }
        if changed {
            self.refresh_limit(cur);
        }
    }

    /// Move consumer slot `i` from owner word `o` to `new` (evicting, detaching or
    /// freeing it). On success count an eviction if asked, and take back a futex-waiter
    /// announcement its owner may have died with. Returns whether the CAS won.
    fn retire(&self, i: usize, o: u64, new: u64, count: bool) -> bool {
        let won = self
            .cword(i, C_OWNER)
            .compare_exchange(o, new, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        if won {
            if count {
                self.mem.word(OFF_EVICTIONS).fetch_add(1, Ordering::Relaxed);
            }
            self.clear_sleeping(i);
        }
        won
    }

    /// Wait (spinning politely) until the claim ending at `end` may be written.
    pub fn wait_writable(&self, cur: &mut ProducerCursor, end: u64, live: &impl Liveness) {
        let mut spins = 0u32;
        while end > cur.limit {
            self.refresh_limit(cur);
            if end <= cur.limit {
                break;
            }
            self.resolve_blockers(cur, end, live);
            spins += 1;
            if spins < 64 {
                spin_hint();
            } else {
                #[cfg(not(loom))]
                std::thread::yield_now();
                #[cfg(loom)]
                loom::thread::yield_now();
            }
        }
    }

    /// Write a record header's length, type and timestamp (not the commit word).
    #[inline]
    pub fn write_header(&self, pos: u64, len: usize, type_id: u64, ts: u64) {
        let off = self.data_off(pos);
        let mut h = [0u8; RECORD_HEADER - R_LEN];
        h[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        h[R_TYPE - R_LEN..R_TYPE - R_LEN + 8].copy_from_slice(&type_id.to_le_bytes());
        h[R_TIME - R_LEN..R_TIME - R_LEN + 8].copy_from_slice(&ts.to_le_bytes());
        // SAFETY: the header lies inside the caller's claim.
        unsafe { self.mem.write(off + R_LEN, &h) };
    }

    /// Before a producer writes the headers of a claim: if the claim crossed the end
    /// of the lap, write and commit the padding in front of the span at `pos` (its
    /// commit word decided as in [`Ring::commit_record`]). Fails, with the intent
    /// cleared, if an unblocker turned the padding's position into a gap first: the
    /// whole claim is then lost, and the producer writes nothing more.
    #[inline]
    pub fn begin_commit(&self, cur: &mut ProducerCursor, pos: u64) -> Result<(), ClaimLost> {
        let start = self.pword(cur.slot, P_CLAIM).load(Ordering::Relaxed);
        if start < pos && pos - start <= self.p.capacity {
            self.write_header(start, (pos - start) as usize - RECORD_HEADER, 0, 0);
            if self.decide(start, start | COMMITTED | PADDING).is_err() {
                self.lose_claim(cur);
                return Err(ClaimLost);
            }
        }
        Ok(())
    }

    /// The record's one decision (see the module docs): move the commit word at
    /// `pos` from whatever an earlier lap left there to `to` with a CAS (release:
    /// pairs with the consumer's acquire load in `read_at`). Fails if an unblocker
    /// tagged the word with `pos` first (a gap, pending or written), or if a later
    /// lap's record already owns the word.
    #[inline]
    fn decide(&self, pos: u64, to: u64) -> Result<(), ClaimLost> {
        let word = self.commit_word(pos);
        let mut w = word.load(Ordering::Relaxed);
        loop {
            let at = w & !FLAG_MASK;
            // Tagged with `pos` means flags too: a fresh ring is all zeros, which
            // reads as position 0 with no flags.
            // A later lap's record: committed, same offset, and already claimed (below
            // the tail). Old payload bytes can look like anything, but hardly like a
            // position between ours and the tail; the tail is loaded only then.
            if (at == pos && w & (COMMITTED | GAP) != 0)
                || (w & COMMITTED != 0
                    && at > pos
                    && (at - pos) & self.mask == 0
                    && at < self.tail().load(Ordering::Relaxed))
            {
                return Err(ClaimLost);
            }
            match word.compare_exchange_weak(w, to, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => w = now,
            }
        }
    }

    /// A claim was lost: clear the intent (nothing of it is written any more).
    #[cold]
    fn lose_claim(&self, cur: &mut ProducerCursor) {
        self.pword(cur.slot, P_CLAIM)
            .store(NO_CLAIM, Ordering::Release);
    }

    /// Publish a written claim: store its commit word (release), clear the intent,
    /// and wake sleeping consumers if any announced themselves. The caller won the
    /// claim with [`Ring::begin_commit`] before writing the header.
    ///
    /// Fails (the record is not published, the intent is cleared) if an unblocker
    /// turned the claim into a gap first.
    #[inline]
    pub fn commit(&self, cur: &mut ProducerCursor, claim: Claim) -> Result<(), ClaimLost> {
        if let Err(lost) = self.commit_record(claim.pos) {
            self.lose_claim(cur);
            return Err(lost);
        }
        self.finish_claim(cur, 1, claim.len as u64);
        Ok(())
    }

    /// Publish one written record of a claim (its commit word, release), unless an
    /// unblocker turned it into a gap first (then the caller must clear its intent,
    /// commit nothing more of the claim, and report the loss).
    #[inline]
    pub fn commit_record(&self, pos: u64) -> Result<(), ClaimLost> {
        self.decide(pos, pos | COMMITTED)
    }

    /// End a claim whose records are all committed: clear the intent, count them, and
    /// wake sleeping consumers if any announced themselves.
    #[inline]
    pub fn finish_claim(&self, cur: &mut ProducerCursor, records: u64, bytes: u64) {
        // Release: a consumer that sees the intent cleared also sees the commits.
        self.pword(cur.slot, P_CLAIM)
            .store(NO_CLAIM, Ordering::Release);
        // Wrapping: a slot's counts continue its previous owners', which a scribbled
        // header may have left anywhere.
        cur.records = cur.records.wrapping_add(records);
        cur.bytes = cur.bytes.wrapping_add(bytes);
        self.pword(cur.slot, P_RECORDS)
            .store(cur.records, Ordering::Relaxed);
        self.pword(cur.slot, P_BYTES)
            .store(cur.bytes, Ordering::Relaxed);
        self.wake_from(cur.light_wake);
    }

    /// Turn an owned claim into padding (an abandoned grant). If an unblocker turned
    /// it into a gap meanwhile, there is nothing left to do.
    pub fn abort(&self, cur: &mut ProducerCursor, claim: Claim) {
        if self.begin_commit(cur, claim.pos).is_err() {
            return;
        }
        self.write_header(claim.pos, claim.len, 0, 0);
        if self
            .decide(claim.pos, claim.pos | COMMITTED | PADDING)
            .is_err()
        {
            self.lose_claim(cur);
            return;
        }
        self.pword(cur.slot, P_CLAIM)
            .store(NO_CLAIM, Ordering::Release);
        self.wake_from(cur.light_wake);
    }

    // ---------------------------------------------------------------- consumers

    /// Read the record header at `pos`.
    #[inline]
    pub fn read_at(&self, pos: u64) -> Read {
        let w = self.commit_word(pos).load(Ordering::Acquire);
        if w & !FLAG_MASK != pos || w & COMMITTED == 0 {
            if self.p.mode == Mode::Lossy && w & COMMITTED != 0 && w & !FLAG_MASK > pos {
                return Read::Overwritten;
            }
            return Read::NotYet;
        }
        let off = self.data_off(pos);
        let mut h = [0u8; RECORD_HEADER - R_LEN];
        self.mem.read(off + R_LEN, &mut h);
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let room = self.p.capacity - (pos & self.mask) - RECORD_HEADER as u64;
        if len as u64 > room {
            if self.p.mode == Mode::Lossy && self.commit_word(pos).load(Ordering::Acquire) != w {
                return Read::Overwritten;
            }
            return Read::Corrupt("length runs past the end of the lap");
        }
        let next = pos.wrapping_add(record_size(len as usize));
        if w & (PADDING | GAP) != 0 {
            return Read::Skip {
                next,
                gap: w & GAP != 0,
            };
        }
        Read::Record(RecordHeader {
            position: pos,
            len,
            type_id: u64::from_le_bytes(
                h[R_TYPE - R_LEN..R_TYPE - R_LEN + 8]
                    .try_into()
                    .unwrap_or_default(),
            ),
            timestamp: u64::from_le_bytes(
                h[R_TIME - R_LEN..R_TIME - R_LEN + 8]
                    .try_into()
                    .unwrap_or_default(),
            ),
        })
    }

    /// Lossy readers: true if bytes read from `[pos, next)` were not overwritten.
    /// Call after copying them out.
    #[inline]
    pub fn still_valid(&self, pos: u64) -> bool {
        // Acquire fence: if any byte we copied came from a later lap's write, the
        // claim that preceded that write is visible in the tail.
        fence(Ordering::Acquire);
        self.tail().load(Ordering::Relaxed) <= pos.saturating_add(self.p.capacity)
    }

    /// Lossy readers: whether producers have lapped a reader at `pos`.
    pub fn lapped(&self, pos: u64) -> bool {
        self.tail().load(Ordering::Acquire) > pos.saturating_add(self.p.capacity)
    }

    /// A record boundary at or after `floor`, reached by walking record lengths from
    /// the start of `floor`'s lap (every lap start is a boundary: records never
    /// straddle the end). Each step is re-validated against concurrent overwrites;
    /// if the chain breaks, the next lap start is used.
    pub fn boundary_at_or_after(&self, floor: u64) -> u64 {
        let t = self.tail_boundary();
        if floor >= t {
            return t;
        }
        let lap = floor & !self.mask;
        let fallback = lap.saturating_add(self.p.capacity).min(t);
        let mut q = lap;
        while q < floor {
            let next = match self.read_at(q) {
                Read::Record(h) => h.next(),
                Read::Skip { next, .. } => next,
                _ => return fallback,
            };
            if !self.still_valid(q) {
                return fallback;
            }
            q = next;
        }
        q
    }

    /// Whether the bytes at `pos` are still intact (not overwritten by a later lap).
    pub fn intact(&self, pos: u64) -> bool {
        self.tail_boundary() <= pos.saturating_add(self.p.capacity)
    }

    /// The tail as a record boundary for a reader: honest tails are multiples of
    /// [`RECORD_ALIGN`]; the low bits of a scribbled one are dropped, so a reader never
    /// takes an unaligned position (whose commit word could straddle the mapping's end).
    pub fn tail_boundary(&self) -> u64 {
        self.tail().load(Ordering::SeqCst) & !FLAG_MASK
    }

    /// Oldest retained boundary.
    pub fn earliest(&self) -> u64 {
        let t = self.tail_boundary();
        if t <= self.p.capacity {
            0
        } else {
            self.boundary_at_or_after(t - self.p.capacity)
        }
    }

    /// Consumer slot `slot` joins at `want` (a boundary) and publishes it. Returns the
    /// position actually taken: `want`, or a later boundary if `want` was overwritten.
    pub fn join(&self, slot: usize, want: u64) -> u64 {
        let mut at = want;
        loop {
            self.cword(slot, C_POSITION).store(at, Ordering::SeqCst);
            // Pairs with the producers' generation load after their tail CAS.
            self.mem.word(OFF_GEN).fetch_add(1, Ordering::SeqCst);
            sc_pair_point();
            // An exclusive producer may write up to its horizon before it checks the
            // generation again (see `try_claim_exclusive`). An honest horizon is at
            // most a claim plus an eighth of the ring past the tail; a scribbled one is
            // cut there, so the loop ends.
            let t = self.tail_boundary();
            let h = self.mem.word(OFF_HORIZON).load(Ordering::SeqCst) & !FLAG_MASK;
            let t = t.max(h.min(t.saturating_add(self.p.capacity / 2)));
            if t <= at.saturating_add(self.p.capacity) {
                return at;
            }
            at = self.boundary_at_or_after(t.saturating_sub(self.p.capacity));
        }
    }

    /// Check the shared words a reader trusts against the ring's own invariants before
    /// it waits on them or acts on them: every live or held consumer position is a
    /// record boundary at or below the tail; the tail is a record boundary; and in
    /// reliable mode the tail is within reach of the slowest such consumer: one
    /// capacity, plus what producers that had not yet seen a joiner may have claimed
    /// past it (a span, at most half a ring with its padding, per producer).
    ///
    /// A scribbled tail (`u64::MAX`, `1 << 40`) or consumer position fails here, so a
    /// reader reports it instead of waiting for records that will never come, and no
    /// gap is ever written on the strength of it.
    ///
    /// The reach check can fail for a moment without a scribbler: a named slot that
    /// is taken over holds its old (possibly lapped) position until its new owner
    /// joins. So a failing reach check is confirmed once more after a pause longer
    /// than that window, and `own` (the caller's slot, mid-join) is left out.
    pub fn check_words(&self, own: Option<usize>) -> Result<(), BadWord> {
        match self.check_words_once(own) {
            Err(bad) if bad.transient => {
                #[cfg(not(loom))]
                std::thread::sleep(std::time::Duration::from_millis(20));
                self.check_words_once(own)
            }
            r => r,
        }
    }

    fn check_words_once(&self, own: Option<usize>) -> Result<(), BadWord> {
        let mut min = u64::MAX;
        let mut positions = [(usize::MAX, 0u64); MAX_CONSUMERS];
        for (i, slot) in positions.iter_mut().enumerate() {
            let st = owner_state(self.cword(i, C_OWNER).load(Ordering::SeqCst));
            if (st == SLOT_ACTIVE || st == SLOT_DETACHED) && own != Some(i) {
                *slot = (i, self.cword(i, C_POSITION).load(Ordering::SeqCst));
            }
        }
        // Loaded after the positions: the tail only grows, and every position was at
        // or below it when loaded.
        let t = self.tail().load(Ordering::SeqCst);
        if t & FLAG_MASK != 0 {
            return Err(BadWord::new("tail", t));
        }
        for &(i, p) in positions.iter().filter(|(i, _)| *i != usize::MAX) {
            if p & FLAG_MASK != 0 || p > t {
                return Err(BadWord {
                    word: format!("consumer {i} position (tail {t})"),
                    value: p,
                    transient: false,
                });
            }
            min = min.min(p);
        }
        let slack = self.p.capacity.saturating_mul(1 + MAX_PRODUCERS as u64 / 2);
        if self.p.mode == Mode::Reliable && min != u64::MAX && t - min > slack {
            return Err(BadWord {
                word: format!("tail (slowest consumer at {min})"),
                value: t,
                transient: true,
            });
        }
        Ok(())
    }

    /// A consumer blocked at `pos` (claimed but not committed) for longer than the
    /// unblock timeout calls this. If the claim's producer is dead, it becomes a gap
    /// record. Returns true if a record (gap or real) is now committed at `pos`.
    pub fn unblock(&self, pos: u64, live: &impl Liveness) -> bool {
        let t = self.tail_boundary();
        if pos >= t {
            return false;
        }
        // Never write a gap on the strength of scribbled words.
        if self.check_words_once(None).is_err() {
            return false;
        }
        let me = my_owner(SLOT_ACTIVE);
        let lock = self.mem.word(OFF_UNBLOCK_LOCK);
        let cur = lock.load(Ordering::SeqCst);
        // Steal the lock only from a dead holder.
        if cur != 0 && live.alive(owner_pid(cur), owner_start(cur)) {
            return false;
        }
        if lock
            .compare_exchange(cur, me, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let done = self.unblock_locked(pos, t, live);
        lock.store(0, Ordering::SeqCst);
        done
    }

    /// If the claim holding `pos` (not committed, below the tail `t`) is abandoned
    /// (no live producer's intent holds it), the end of the gap that replaces it: the
    /// first known boundary after `pos` (a committed record, another claim's intent,
    /// the tail, the end of the lap). `None` while a live producer holds it. Reads
    /// only.
    fn abandoned_end(&self, pos: u64, t: u64, live: &impl Liveness) -> Option<u64> {
        // Claims are disjoint spans, one or more records each: the one holding `pos`
        // is the one with the greatest intent at or before it.
        let mut end = t;
        let mut holder: Option<(u64, u64)> = None;
        for i in 0..MAX_PRODUCERS {
            let o = self.pword(i, P_OWNER).load(Ordering::SeqCst);
            let intent = self.pword(i, P_CLAIM).load(Ordering::SeqCst);
            // Honest intents are record boundaries; an unaligned one was scribbled and
            // would make a gap shorter than a record header.
            if intent == NO_CLAIM || intent & FLAG_MASK != 0 {
                continue;
            }
            if intent <= pos && holder.is_none_or(|(at, _)| intent > at) {
                holder = Some((intent, o));
            }
            if intent > pos && intent < end {
                end = intent;
            }
        }
        if let Some((_, o)) = holder {
            if owner_state(o) == SLOT_ACTIVE && live.alive(owner_pid(o), owner_start(o)) {
                return None; // a live producer is writing it
            }
        }
        // Never past the end of the lap: the lap start is a boundary.
        let lap_end = (pos & !self.mask).saturating_add(self.p.capacity);
        end = end.min(lap_end);
        let mut q = pos + RECORD_ALIGN;
        while q < end {
            let w = self.commit_word(q).load(Ordering::SeqCst);
            if w & COMMITTED != 0 && w & !FLAG_MASK == q {
                end = q;
                break;
            }
            q += RECORD_ALIGN;
        }
        Some(end)
    }

    /// For a reader that writes nothing into the ring but its own consumer slot (an
    /// inspecting subscriber): if the record at `pos` is an abandoned claim that an
    /// unblocker would turn into a gap, where that gap would end. The reader skips
    /// to it on its own instead of writing the gap. `None` if the shared words fail
    /// [`Ring::check_words`], if `pos` is not below the tail, or if the claim is
    /// committed or held by a live producer.
    pub fn abandoned_gap(&self, pos: u64, live: &impl Liveness) -> Option<u64> {
        self.check_words(None).ok()?;
        let t = self.tail_boundary();
        if pos >= t || !matches!(self.read_at(pos), Read::NotYet) {
            return None;
        }
        self.abandoned_end(pos, t, live)
    }

    fn unblock_locked(&self, pos: u64, t: u64, live: &impl Liveness) -> bool {
        if !matches!(self.read_at(pos), Read::NotYet) {
            return true;
        }
        let Some(end) = self.abandoned_end(pos, t, live) else {
            return false; // a live producer is writing it
        };
        // The record's one decision, unblocker side (pairs with the producer's CAS in
        // `decide`): tag the commit word with `pos` as a pending gap, not committed,
        // so readers still wait and the producer's commit fails; then write the gap.
        // A pending gap left by an unblocker that died here is finished as it is.
        let word = self.commit_word(pos);
        let w = word.load(Ordering::SeqCst);
        if w & !FLAG_MASK == pos && w & (COMMITTED | GAP) != 0 {
            if w & COMMITTED != 0 {
                return true;
            }
        } else if !self.mem.cas_data_word(self.data_off(pos), w, pos | GAP) {
            // The producer committed (or the word moved): look again next time.
            return !matches!(self.read_at(pos), Read::NotYet);
        }
        let len = (end - pos) as usize - RECORD_HEADER;
        self.mem
            .store_gap(self.data_off(pos), len as u32, pos | COMMITTED | GAP);
        self.mem.word(OFF_GAPS).fetch_add(1, Ordering::Relaxed);
        self.mem
            .word(OFF_GAP_BYTES)
            .fetch_add(end - pos, Ordering::Relaxed);
        self.wake();
        true
    }
}

impl<M: Memory> Ring<M> {
    /// Copy the payload of the record at `pos` into `dst` (racy: a lossy reader
    /// re-validates the record with [`Ring::still_valid`] afterwards).
    pub fn copy_payload(&self, pos: u64, dst: &mut [u8]) {
        self.mem.read(self.data_off(pos) + RECORD_HEADER, dst);
    }
}

impl Ring<crate::sys::mapping::Mapping> {
    /// The `len` payload bytes of the record at `pos`.
    ///
    /// # Safety
    ///
    /// The record is committed (its commit word was acquired by [`Ring::read_at`], which
    /// also checked `len` against the lap), and the caller's published position, at or
    /// before `pos`, keeps producers off it for the lifetime the caller gives the slice.
    #[inline]
    pub unsafe fn payload(&self, pos: u64, len: usize) -> &[u8] {
        // SAFETY: guaranteed by the caller.
        unsafe { self.mem.data_slice(self.data_off(pos) + RECORD_HEADER, len) }
    }

    /// The whole record at `pos`, header and payload: `size` bytes (its
    /// [`record_size`]).
    ///
    /// # Safety
    ///
    /// As [`Ring::payload`].
    #[inline]
    pub unsafe fn record_bytes(&self, pos: u64, size: usize) -> &[u8] {
        // SAFETY: guaranteed by the caller; a record never straddles the lap's end.
        unsafe { self.mem.data_slice(self.data_off(pos), size) }
    }

    /// The `len` payload bytes of the claim at `pos`, to fill.
    ///
    /// # Safety
    ///
    /// The caller owns the bytes through an uncommitted claim that it does not let
    /// alias, and maps the data region read-write.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn payload_mut(&self, pos: u64, len: usize) -> &mut [u8] {
        // SAFETY: guaranteed by the caller.
        unsafe {
            self.mem
                .data_slice_mut(self.data_off(pos) + RECORD_HEADER, len)
        }
    }
}
