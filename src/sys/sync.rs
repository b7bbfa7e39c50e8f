//! The atomics facade: every atomic the ring protocol uses comes from here, so that
//! under `--cfg loom` the same protocol code runs on loom's model-checked atomics.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Spin-loop hint (a yield point under loom).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// Marks a store-buffering pair that relies on the single total order of `SeqCst`
/// accesses (a joiner's generation bump then tail load against a producer's tail CAS
/// then generation load). The `SeqCst` accesses on both sides already forbid the bad
/// outcome in the C++/Rust model, so this is a no-op. Loom, however, models `SeqCst`
/// accesses as `AcqRel` (see loom's README, "Limitations") but does model
/// `fence(SeqCst)`, so under loom this is a `SeqCst` fence: it gives the model the
/// guarantee the real accesses have, and nothing more.
#[inline(always)]
pub(crate) fn sc_pair_point() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}
