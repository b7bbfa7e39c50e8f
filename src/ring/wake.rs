//! Waking: both halves of the futex handshake between a subscriber going to sleep and
//! the producers that wake it.
//!
//! A sleeper sets its slot's sleeping flag, increments the waiter count and reads the
//! futex sequence (all `SeqCst`), re-checks the commit word it waits on, and only then
//! sleeps on the sequence word. A producer, after its commit, orders the commit store
//! before its load of the waiter count (a `SeqCst` fence, or, for a *light* producer,
//! the sleeper's `membarrier` in its place) and, if anyone waits, bumps the sequence and
//! issues `FUTEX_WAKE`. Either the sleeper's re-check sees the commit, or the producer
//! sees the waiter (Dekker): no wake-up is lost. Producers pay for the system call only
//! when someone sleeps.

use std::time::Duration;

use crate::ring::layout::*;
use crate::ring::{Memory, Read, Ring};
use crate::sys::sync::{fence, Ordering};

impl<M: Memory> Ring<M> {
    /// Sleep until a producer may have committed the record at `pos` (which was not
    /// committed a moment ago), for at most about half the unblock timeout (so the
    /// caller can check for abandoned claims) and at most `max_ns` if given. The
    /// subscriber in slot `slot` announces itself first and re-checks `pos`, so a
    /// commit that lands meanwhile is never slept through.
    pub fn sleep(&self, slot: usize, pos: u64, max_ns: Option<u64>) {
        // Announce, then re-check (Dekker with the producer's fence-then-load in wake).
        let flags = self.mem.word32(consumer_slot(slot) + C_FLAGS);
        let waiters = self.mem.word32(OFF_FUTEX_WAITERS);
        let seq_word = self.mem.word32(OFF_FUTEX_SEQ);
        flags.fetch_or(C_FLAG_SLEEPING, Ordering::SeqCst);
        waiters.fetch_add(1, Ordering::SeqCst);
        let seq = seq_word.load(Ordering::SeqCst);
        // A producer with a light wake (exclusive, or shared on a marked topic) skips
        // its fence before the waiter check: the barrier runs here, on its threads,
        // instead (see `Ring::wake_from`). A producer that attaches after these loads
        // fences on attach and so sees the announcement above.
        let light = self.light_producers();
        let barrier = !light || crate::sys::os::heavy_barrier();
        if matches!(self.read_at(pos), Read::NotYet) {
            self.consumer_heartbeat(slot);
            // Wake up in time to check for abandoned claims and deadlines; soon if the
            // barrier could not be issued (the producer may have missed us).
            let cap = if barrier { 1_000_000_000 } else { 10_000_000 };
            let mut ns = (self.p.unblock_timeout_ns / 2).clamp(1_000_000, cap);
            if let Some(m) = max_ns {
                ns = ns.min(m);
            }
            crate::sys::os::futex_wait(seq_word, seq, Duration::from_nanos(ns));
        }
        if flags.fetch_and(!C_FLAG_SLEEPING, Ordering::SeqCst) & C_FLAG_SLEEPING != 0 {
            waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// If consumer slot `i` is announced as a futex waiter, withdraw the announcement
    /// (exactly once: the sleeper withdraws it itself only if the bit is still set).
    pub fn clear_sleeping(&self, i: usize) {
        let flags = self.mem.word32(consumer_slot(i) + C_FLAGS);
        if flags.fetch_and(!C_FLAG_SLEEPING, Ordering::SeqCst) & C_FLAG_SLEEPING != 0 {
            self.mem
                .word32(OFF_FUTEX_WAITERS)
                .fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether a producer may skip its fence before the waiter check, so that a
    /// sleeper must issue the wake-up barrier: a light exclusive producer holds the
    /// topic, or a light shared one has attached since the topic was created.
    pub fn light_producers(&self) -> bool {
        self.mem.word(OFF_EXCLUSIVE).load(Ordering::SeqCst) & EXCLUSIVE_LIGHT != 0
            || self.mem.word(OFF_LIGHT_SHARED).load(Ordering::SeqCst) != 0
    }

    /// Wake sleepers. The SeqCst fence orders the commit store before the waiter
    /// count load (Dekker with the sleeper's increment-then-recheck).
    #[inline]
    pub fn wake(&self) {
        self.wake_from(false);
    }

    /// Wake sleepers, from a producer. With `light`, the producer's process is
    /// registered for `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` and every sleeper
    /// issues that barrier between announcing itself and re-checking the commit word
    /// (or sleeps with a short timeout when it cannot): the barrier then runs on this
    /// thread in the sleeper's place, so a compiler fence is enough here. Without it,
    /// the SeqCst fence orders the commit store before the waiter count load (Dekker
    /// with the sleeper's increment-then-recheck).
    #[inline]
    pub fn wake_from(&self, light: bool) {
        if light {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        if self.mem.word32(OFF_FUTEX_WAITERS).load(Ordering::Relaxed) != 0 {
            self.mem
                .word32(OFF_FUTEX_SEQ)
                .fetch_add(1, Ordering::SeqCst);
            #[cfg(not(loom))]
            self.futex_wake();
        }
    }

    #[cfg(not(loom))]
    fn futex_wake(&self) {
        let w = self.mem.word32(OFF_FUTEX_SEQ);
        crate::sys::os::futex_wake_all(w);
    }
}
